//! Secrets Manager for berth: secrets encrypted at rest under per-secret data keys wrapped by a
//! master key, versions with staging labels (AWSCURRENT/AWSPREVIOUS/AWSPENDING), the Secrets
//! Manager API (`call`), rotation by command or webhook on a schedule (`run`), injection into
//! tasks (`resolve_value_from`) and an append-only audit log of every read of a value.
//!
//! **Invariant**: no plaintext value is written to disk, to logs, or into any error or response
//! other than GetSecretValue's.

mod api;
pub mod crypto;
pub mod error;
mod rotation;
pub mod schedule;
mod store;
pub mod value_from;

#[cfg(test)]
mod tests;

pub use error::SecretsError;
pub use store::{append_line, write_private};

use crypto::{KeyBytes, Sealed};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};
use store::SecretRecord;
use zeroize::Zeroizing;

/// Staging label of the version in use.
pub const AWSCURRENT: &str = "AWSCURRENT";
/// Staging label of the version in use before the current one.
pub const AWSPREVIOUS: &str = "AWSPREVIOUS";
/// Staging label of the version a rotation is creating.
pub const AWSPENDING: &str = "AWSPENDING";

/// Where the master key comes from.
#[derive(Debug, Clone)]
pub enum MasterKeySource {
    /// 32 bytes in base64 (as in `BERTH_MASTER_KEY`).
    Base64(Zeroizing<String>),
    /// A file holding 32 raw bytes or their base64 (as named by `BERTH_MASTER_KEY_FILE`).
    File(PathBuf),
    /// `<dir>/master.key`, created with 32 random bytes and mode 0600 on first start.
    StateDir,
}

impl MasterKeySource {
    /// `BERTH_MASTER_KEY`, else `BERTH_MASTER_KEY_FILE`, else the state directory's key file.
    pub fn from_env() -> MasterKeySource {
        if let Ok(k) = std::env::var("BERTH_MASTER_KEY") {
            return MasterKeySource::Base64(Zeroizing::new(k));
        }
        match std::env::var_os("BERTH_MASTER_KEY_FILE") {
            Some(p) => MasterKeySource::File(PathBuf::from(p)),
            None => MasterKeySource::StateDir,
        }
    }

    fn load(&self, dir: &Path) -> Result<KeyBytes, SecretsError> {
        match self {
            MasterKeySource::Base64(text) => KeyBytes::from_base64(text).ok_or_else(|| {
                SecretsError::InvalidParameter(
                    "BERTH_MASTER_KEY: expected 32 bytes in base64".into(),
                )
            }),
            MasterKeySource::File(path) => key_from_file(path)?.ok_or_else(|| {
                SecretsError::InvalidParameter(format!(
                    "{}: expected 32 bytes (raw or base64)",
                    path.display()
                ))
            }),
            MasterKeySource::StateDir => {
                let path = dir.join("master.key");
                if path.exists() {
                    return key_from_file(&path)?.ok_or_else(|| {
                        SecretsError::Internal(format!("{}: expected 32 bytes", path.display()))
                    });
                }
                let key = KeyBytes::random();
                store::write_private(&path, key.bytes())?;
                Ok(key)
            }
        }
    }
}

fn key_from_file(path: &Path) -> Result<Option<KeyBytes>, SecretsError> {
    let raw = Zeroizing::new(
        std::fs::read(path).map_err(|e| SecretsError::io(&path.display().to_string(), e))?,
    );
    if let Some(k) = KeyBytes::from_slice(&raw) {
        return Ok(Some(k));
    }
    Ok(std::str::from_utf8(&raw)
        .ok()
        .and_then(KeyBytes::from_base64))
}

/// Called with a secret's ARN after a rotation finished.
pub type RotatedHook = Arc<dyn Fn(&str) + Send + Sync>;

pub(crate) struct Inner {
    dir: PathBuf,
    master: KeyBytes,
    region: String,
    account: String,
    records: Mutex<BTreeMap<String, SecretRecord>>,
    hooks: Mutex<Vec<RotatedHook>>,
    audit: Mutex<()>,
    /// Serialises rotations (each runs steps outside the records lock).
    rotating: Mutex<()>,
}

/// The secret store; cheap to clone.
#[derive(Clone)]
pub struct Secrets {
    pub(crate) inner: Arc<Inner>,
}

/// A decrypted value: text (SecretString) or bytes (SecretBinary); wiped when dropped.
pub(crate) struct Plain {
    pub binary: bool,
    pub bytes: Zeroizing<Vec<u8>>,
}

impl Secrets {
    /// Opens (creating) the store under `dir` for the region and account in `BERTH_REGION` /
    /// `BERTH_ACCOUNT_ID` (default us-east-1 / 000000000000).
    pub fn open(dir: PathBuf, master_key: MasterKeySource) -> Result<Secrets, SecretsError> {
        let region = std::env::var("BERTH_REGION").unwrap_or_else(|_| "us-east-1".into());
        let account = std::env::var("BERTH_ACCOUNT_ID").unwrap_or_else(|_| "000000000000".into());
        Self::open_in(dir, master_key, &region, &account)
    }

    /// Opens (creating) the store under `dir`, naming ARNs with `region` and `account`. Fails
    /// when the master key is not the one the store was created with.
    pub fn open_in(
        dir: PathBuf,
        master_key: MasterKeySource,
        region: &str,
        account: &str,
    ) -> Result<Secrets, SecretsError> {
        std::fs::create_dir_all(dir.join("secrets"))
            .map_err(|e| SecretsError::io(&dir.display().to_string(), e))?;
        let master = master_key.load(&dir)?;
        store::check_master_key(&dir, &master)?;
        let records = store::load_all(&dir)?;
        Ok(Secrets {
            inner: Arc::new(Inner {
                dir,
                master,
                region: region.into(),
                account: account.into(),
                records: Mutex::new(records),
                hooks: Mutex::new(Vec::new()),
                audit: Mutex::new(()),
                rotating: Mutex::new(()),
            }),
        })
    }

    /// The directory the store keeps its files in.
    /// Seals `plaintext` under the master key, bound to `aad` (for other credential stores,
    /// such as access-key secrets).
    pub fn seal_with_master(&self, plaintext: &[u8], aad: &str) -> Result<Sealed, SecretsError> {
        crypto::seal(&self.inner.master, plaintext, aad)
    }

    /// Opens what [`Secrets::seal_with_master`] sealed with the same `aad`.
    pub fn open_with_master(
        &self,
        sealed: &Sealed,
        aad: &str,
    ) -> Result<Zeroizing<Vec<u8>>, SecretsError> {
        crypto::open(&self.inner.master, sealed, aad, aad)
    }

    pub fn dir(&self) -> &Path {
        &self.inner.dir
    }

    /// Registers a hook called with a secret's ARN after each rotation finishes.
    pub fn on_rotated(&self, f: RotatedHook) {
        lock(&self.inner.hooks).push(f);
    }

    pub(crate) fn records(&self) -> MutexGuard<'_, BTreeMap<String, SecretRecord>> {
        lock(&self.inner.records)
    }

    /// Runs a Secrets Manager operation for `actor` (access key id, or `task:<id>`).
    pub fn call(
        &self,
        operation: &str,
        input: serde_json::Value,
        actor: &str,
    ) -> Result<serde_json::Value, SecretsError> {
        api::call(self, operation, &input, actor)
    }

    /// The value a task's `secrets[].valueFrom` names (a whole secret or one JSON key of it),
    /// recorded in the audit log with actor `task:<task_id>`.
    pub fn resolve_value_from(
        &self,
        value_from: &str,
        task_id: &str,
    ) -> Result<Zeroizing<String>, SecretsError> {
        let v = value_from::parse(value_from)?;
        let (arn, version_id, plain) = self.read_value(
            &v.secret_id,
            v.version_id.as_deref(),
            v.version_stage.as_deref(),
        )?;
        self.audit(
            &format!("task:{task_id}"),
            &arn,
            &version_id,
            "InjectSecret",
        );
        let text = Zeroizing::new(String::from_utf8(plain.bytes.to_vec()).map_err(|_| {
            SecretsError::InvalidRequest(format!(
                "{arn}: a binary secret can't be injected as an environment variable"
            ))
        })?);
        match &v.json_key {
            Some(k) => value_from::json_key(&text, k).map(Zeroizing::new),
            None => Ok(text),
        }
    }

    /// Decrypts the version of a secret chosen by id or stage (default AWSCURRENT); returns the
    /// ARN, version id and value. Marks the secret accessed.
    pub(crate) fn read_value(
        &self,
        secret_id: &str,
        version_id: Option<&str>,
        version_stage: Option<&str>,
    ) -> Result<(String, String, Plain), SecretsError> {
        let mut records = self.records();
        let arn = store::find(&records, secret_id)?;
        let rec = records.get_mut(&arn).ok_or_else(SecretsError::not_found)?;
        if rec.deleted.is_some() {
            return Err(SecretsError::deleted());
        }
        let vid = match (version_id, version_stage) {
            (Some(id), stage) => {
                let v = rec
                    .versions
                    .get(id)
                    .ok_or_else(|| SecretsError::NotFound(format!(" version {id:?}.")))?;
                if let Some(s) = stage {
                    if !v.stages.iter().any(|x| x == s) {
                        return Err(SecretsError::InvalidRequest(format!(
                            "You provided a VersionStage ({s}) that is not attached to VersionId {id}."
                        )));
                    }
                }
                id.to_string()
            }
            (None, stage) => {
                let s = stage.unwrap_or(AWSCURRENT);
                rec.version_with(s).ok_or_else(|| {
                    SecretsError::NotFound(format!(" value for staging label: {s}"))
                })?
            }
        };
        let plain = self.decrypt(rec, &vid)?;
        rec.last_accessed = Some(day_of(now()));
        Ok((arn, vid, plain))
    }

    pub(crate) fn decrypt(&self, rec: &SecretRecord, vid: &str) -> Result<Plain, SecretsError> {
        let dk = crypto::unwrap_data_key(&self.inner.master, &rec.data_key, &rec.arn)?;
        let v = rec.versions.get(vid).ok_or_else(SecretsError::not_found)?;
        let bytes = crypto::open(
            &dk,
            &v.value,
            &value_aad(&rec.arn, vid),
            &format!("version {vid} of {}", rec.arn),
        )?;
        Ok(Plain {
            binary: v.binary,
            bytes,
        })
    }

    pub(crate) fn encrypt(
        &self,
        rec: &SecretRecord,
        vid: &str,
        plaintext: &[u8],
    ) -> Result<Sealed, SecretsError> {
        let dk = crypto::unwrap_data_key(&self.inner.master, &rec.data_key, &rec.arn)?;
        crypto::seal(&dk, plaintext, &value_aad(&rec.arn, vid))
    }

    /// Appends one read to `<dir>/audit.jsonl` (never the value).
    pub(crate) fn audit(&self, actor: &str, arn: &str, version_id: &str, operation: &str) {
        let t = now();
        let line = serde_json::json!({
            "time": chrono::DateTime::<chrono::Utc>::from_timestamp_millis((t * 1000.0) as i64)
                .map(|d| d.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)),
            "epochSeconds": t,
            "actor": actor,
            "secretArn": arn,
            "versionId": version_id,
            "operation": operation,
        });
        let _guard = lock(&self.inner.audit);
        if let Err(e) = store::append_line(&self.inner.dir.join("audit.jsonl"), &line.to_string()) {
            tracing::error!(error = %e, secret = arn, "cannot append to the secrets audit log");
        }
    }

    pub(crate) fn notify_rotated(&self, arn: &str) {
        let hooks: Vec<RotatedHook> = lock(&self.inner.hooks).clone();
        for h in hooks {
            h(arn);
        }
    }

    /// Rotates secrets whose schedule is due and purges secrets past their deletion date, until
    /// `shutdown` turns true.
    pub async fn run(self, shutdown: tokio::sync::watch::Receiver<bool>) {
        self.run_every(std::time::Duration::from_secs(30), shutdown)
            .await
    }

    /// `run` with a chosen check interval.
    pub async fn run_every(
        self,
        every: std::time::Duration,
        mut shutdown: tokio::sync::watch::Receiver<bool>,
    ) {
        let mut tick = tokio::time::interval(every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
        loop {
            tokio::select! {
                _ = tick.tick() => {
                    let s = self.clone();
                    if let Err(e) = tokio::task::spawn_blocking(move || s.housekeeping(now())).await {
                        tracing::error!(error = %e, "secrets housekeeping panicked");
                    }
                }
                r = shutdown.changed() => {
                    if r.is_err() || *shutdown.borrow() {
                        break;
                    }
                }
            }
        }
    }

    /// One pass of the schedule loop at time `t`: purge, then rotate what is due.
    pub fn housekeeping(&self, t: f64) {
        if let Err(e) = store::purge_expired(self, t) {
            tracing::warn!(error = %e, "cannot purge deleted secrets");
        }
        let due: Vec<String> = self
            .records()
            .values()
            .filter(|r| r.deleted.is_none() && r.rotation_enabled)
            .filter(|r| r.next_rotation.is_some_and(|n| n <= t))
            .map(|r| r.arn.clone())
            .collect();
        for arn in due {
            let token = uuid::Uuid::new_v4().to_string();
            match rotation::rotate(self, &arn, &token) {
                Ok(()) => {
                    tracing::info!(secret = %arn, version = %token, "secret rotated on schedule")
                }
                Err(e) => {
                    tracing::warn!(secret = %arn, error = %e, "scheduled rotation failed; retrying in an hour");
                    let _ = store::update(self, &arn, |r| {
                        r.next_rotation = Some(t + 3600.0);
                        Ok(())
                    });
                }
            }
        }
    }
}

pub(crate) fn value_aad(arn: &str, vid: &str) -> String {
    format!("value:{arn}:{vid}")
}

pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // Every change is written to disk before memory is updated, so a poisoned lock holds
    // consistent data.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// Seconds since the Unix epoch.
pub fn now() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}

/// Secrets Manager reports LastAccessedDate rounded down to the day.
fn day_of(t: f64) -> f64 {
    (t / 86400.0).floor() * 86400.0
}

impl Secrets {
    /// The name of the secret with this ARN.
    pub fn name_of(&self, arn: &str) -> Option<String> {
        self.records().get(arn).map(|r| r.name.clone())
    }
}
