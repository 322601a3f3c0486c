//! The store's files: one JSON record per secret under `<dir>/secrets/` (metadata, the wrapped
//! data key, and sealed versions), written atomically; the master key check; the audit log.

use crate::crypto::{self, KeyBytes, Sealed};
use crate::error::SecretsError;
use crate::{lock, Secrets};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};

/// A secret as stored: never holds a plaintext value.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct SecretRecord {
    pub arn: String,
    pub name: String,
    pub description: Option<String>,
    pub kms_key_id: Option<String>,
    #[serde(default)]
    pub tags: Vec<serde_json::Value>,
    pub created: f64,
    pub last_changed: f64,
    pub last_accessed: Option<f64>,
    /// When DeleteSecret was called.
    pub deleted: Option<f64>,
    /// When the secret goes for good.
    pub deletion: Option<f64>,
    #[serde(default)]
    pub rotation_enabled: bool,
    pub rotation_lambda: Option<String>,
    pub rotation_rules: Option<serde_json::Value>,
    pub last_rotated: Option<f64>,
    pub next_rotation: Option<f64>,
    /// The secret's data key, wrapped by the master key.
    pub data_key: Sealed,
    /// Versions by id.
    pub versions: BTreeMap<String, VersionRecord>,
}

/// One version of a secret.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct VersionRecord {
    pub stages: Vec<String>,
    pub created: f64,
    /// SecretBinary (true) or SecretString.
    pub binary: bool,
    /// The value sealed under the data key.
    pub value: Sealed,
}

impl SecretRecord {
    /// The id of the version holding `stage`.
    pub fn version_with(&self, stage: &str) -> Option<String> {
        self.versions
            .iter()
            .find(|(_, v)| v.stages.iter().any(|s| s == stage))
            .map(|(id, _)| id.clone())
    }

    /// Attaches `stages` to version `vid`, moving them off other versions; AWSCURRENT moving
    /// leaves AWSPREVIOUS on the version that had it. Versions left without a label are dropped.
    pub fn move_stages(&mut self, vid: &str, stages: &[String]) {
        for stage in stages {
            let holder = self.version_with(stage);
            if holder.as_deref() == Some(vid) {
                continue;
            }
            if let Some(old) = &holder {
                if let Some(v) = self.versions.get_mut(old) {
                    v.stages.retain(|s| s != stage);
                }
            }
            if stage == crate::AWSCURRENT {
                for v in self.versions.values_mut() {
                    v.stages.retain(|s| s != crate::AWSPREVIOUS);
                }
                if let Some(v) = holder.and_then(|old| self.versions.get_mut(&old)) {
                    v.stages.push(crate::AWSPREVIOUS.into());
                }
            }
            if let Some(v) = self.versions.get_mut(vid) {
                v.stages.push(stage.clone());
            }
        }
        self.versions.retain(|_, v| !v.stages.is_empty());
    }

    /// The ARN without its 6-character random suffix (a partial ARN).
    pub fn partial_arn(&self) -> &str {
        self.arn
            .get(..self.arn.len().saturating_sub(7))
            .unwrap_or(&self.arn)
    }
}

/// The ARN of the secret `id` names: its name, full ARN or partial ARN.
pub(crate) fn find(
    records: &BTreeMap<String, SecretRecord>,
    id: &str,
) -> Result<String, SecretsError> {
    if records.contains_key(id) {
        return Ok(id.to_string());
    }
    records
        .values()
        .find(|r| r.name == id)
        .or_else(|| {
            id.starts_with("arn:")
                .then(|| records.values().find(|r| r.partial_arn() == id))
                .flatten()
        })
        .map(|r| r.arn.clone())
        .ok_or_else(SecretsError::not_found)
}

fn record_path(dir: &Path, arn: &str) -> PathBuf {
    let digest = Sha256::digest(arn.as_bytes());
    let hex: String = digest.iter().take(16).map(|b| format!("{b:02x}")).collect();
    dir.join("secrets").join(format!("{hex}.json"))
}

/// Writes `bytes` atomically (temp file, fsync, rename) with mode 0600.
pub fn write_private(path: &Path, bytes: &[u8]) -> Result<(), SecretsError> {
    use std::os::unix::fs::OpenOptionsExt;
    let io = |e| SecretsError::io(&path.display().to_string(), e);
    let tmp = path.with_extension("tmp");
    {
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&tmp)
            .map_err(io)?;
        f.write_all(bytes).map_err(io)?;
        f.sync_all().map_err(io)?;
    }
    std::fs::rename(&tmp, path).map_err(io)?;
    if let Some(parent) = path.parent() {
        if let Ok(d) = std::fs::File::open(parent) {
            let _ = d.sync_all();
        }
    }
    Ok(())
}

/// Persists one record.
pub(crate) fn save(dir: &Path, rec: &SecretRecord) -> Result<(), SecretsError> {
    let bytes =
        serde_json::to_vec_pretty(rec).map_err(|e| SecretsError::Internal(e.to_string()))?;
    write_private(&record_path(dir, &rec.arn), &bytes)
}

/// Removes one record's file.
pub(crate) fn remove(dir: &Path, arn: &str) -> Result<(), SecretsError> {
    let path = record_path(dir, arn);
    match std::fs::remove_file(&path) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
            Err(SecretsError::io(&path.display().to_string(), e))
        }
        _ => Ok(()),
    }
}

/// Loads every record.
pub(crate) fn load_all(dir: &Path) -> Result<BTreeMap<String, SecretRecord>, SecretsError> {
    let mut out = BTreeMap::new();
    let sdir = dir.join("secrets");
    let entries =
        std::fs::read_dir(&sdir).map_err(|e| SecretsError::io(&sdir.display().to_string(), e))?;
    for entry in entries.flatten() {
        let path = entry.path();
        if path.extension().and_then(|e| e.to_str()) != Some("json") {
            continue;
        }
        let bytes =
            std::fs::read(&path).map_err(|e| SecretsError::io(&path.display().to_string(), e))?;
        let rec: SecretRecord = serde_json::from_slice(&bytes).map_err(|e| {
            SecretsError::Internal(format!("corrupt record {}: {e}", path.display()))
        })?;
        out.insert(rec.arn.clone(), rec);
    }
    Ok(out)
}

const KEY_CHECK: &[u8] = b"berth-secrets master key check";

/// Verifies `master` against `<dir>/keycheck.json` (written on first start).
pub(crate) fn check_master_key(dir: &Path, master: &KeyBytes) -> Result<(), SecretsError> {
    let path = dir.join("keycheck.json");
    match std::fs::read(&path) {
        Ok(bytes) => {
            let sealed: Sealed = serde_json::from_slice(&bytes)
                .map_err(|e| SecretsError::Internal(format!("corrupt {}: {e}", path.display())))?;
            let plain = crypto::open(master, &sealed, "keycheck", "the secret store")?;
            if plain.as_slice() != KEY_CHECK {
                return Err(SecretsError::Decrypt("the secret store".into()));
            }
            Ok(())
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let sealed = crypto::seal(master, KEY_CHECK, "keycheck")?;
            let bytes =
                serde_json::to_vec(&sealed).map_err(|e| SecretsError::Internal(e.to_string()))?;
            write_private(&path, &bytes)
        }
        Err(e) => Err(SecretsError::io(&path.display().to_string(), e)),
    }
}

/// Appends one line (O_APPEND, fsync) to a file created with mode 0600.
pub fn append_line(path: &Path, line: &str) -> std::io::Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = std::fs::OpenOptions::new()
        .append(true)
        .create(true)
        .mode(0o600)
        .open(path)?;
    f.write_all(format!("{line}\n").as_bytes())?;
    f.sync_data()
}

/// Changes one record: on a copy, written to disk, then kept in memory.
pub(crate) fn update<R>(
    s: &Secrets,
    arn: &str,
    f: impl FnOnce(&mut SecretRecord) -> Result<R, SecretsError>,
) -> Result<R, SecretsError> {
    let mut records = s.records();
    let mut rec = records
        .get(arn)
        .cloned()
        .ok_or_else(SecretsError::not_found)?;
    let r = f(&mut rec)?;
    save(&s.inner.dir, &rec)?;
    records.insert(arn.to_string(), rec);
    Ok(r)
}

/// Deletes for good the secrets whose recovery window ended by `t`.
pub(crate) fn purge_expired(s: &Secrets, t: f64) -> Result<(), SecretsError> {
    let mut records = lock(&s.inner.records);
    let expired: Vec<String> = records
        .values()
        .filter(|r| r.deletion.is_some_and(|d| d <= t))
        .map(|r| r.arn.clone())
        .collect();
    for arn in expired {
        remove(&s.inner.dir, &arn)?;
        records.remove(&arn);
        tracing::info!(secret = %arn, "secret deleted at the end of its recovery window");
    }
    Ok(())
}
