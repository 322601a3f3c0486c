//! The registry's storage: content-addressed blobs, uploads, and one JSON metadata file per
//! repository (tags, images, settings), all written atomically (temp file, fsync, rename) so a
//! crash never leaves a half-written blob or metadata file behind.

use crate::digest::{Digest, Hasher};
use crate::lifecycle::{self, Expiry, ImageInfo};
use crate::manifest::{parse_manifest, ManifestBodySummary};
use crate::reference::{check_repository_name, Tagged};
use crate::{io_error, RegistryError};
use berth_model::Arns;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

/// The image registry: cheap to clone, all clones share the same storage.
#[derive(Clone)]
pub struct Registry {
    inner: Arc<Inner>,
}

struct Inner {
    root: PathBuf,
    arns: Arns,
    registry_host: String,
    state: Mutex<State>,
}

pub(crate) struct State {
    pub(crate) repos: BTreeMap<String, Repository>,
    /// Blobs of images deleted since the last collection: freed without waiting for the grace.
    orphans: BTreeSet<Digest>,
    /// How old an unreferenced blob must be before collection frees it.
    gc_grace: Duration,
    /// Running digests of uploads whose every byte arrived through this process, by upload id:
    /// finishing such an upload need not read its file again.
    upload_hashers: HashMap<String, Hasher>,
}

/// `MUTABLE` or `IMMUTABLE`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum TagMutability {
    Mutable,
    Immutable,
}

impl TagMutability {
    pub fn as_str(self) -> &'static str {
        match self {
            TagMutability::Mutable => "MUTABLE",
            TagMutability::Immutable => "IMMUTABLE",
        }
    }
}

/// A repository's metadata, stored as `repositories/<name with / as +>.json`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct Repository {
    pub name: String,
    pub created_at: f64,
    pub image_tag_mutability: TagMutability,
    pub scan_on_push: bool,
    pub lifecycle_policy: Option<String>,
    pub lifecycle_last_evaluated_at: Option<f64>,
    pub tags: BTreeMap<String, Digest>,
    pub manifests: BTreeMap<Digest, ManifestRecord>,
    pub preview: Option<LifecyclePreview>,
}

/// What the registry remembers of one manifest (an "image" in ECR's words).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct ManifestRecord {
    pub media_type: String,
    pub size: u64,
    pub pushed_at: f64,
    /// Blobs (config and layers) this manifest references.
    pub blobs: Vec<Digest>,
    /// Child manifests, for an index.
    pub children: Vec<Digest>,
    pub artifact_media_type: Option<String>,
    pub image_size: u64,
    pub scan_completed_at: Option<f64>,
    pub last_pulled_at: Option<f64>,
}

/// The stored result of StartLifecyclePolicyPreview.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct LifecyclePreview {
    pub policy_text: String,
    pub results: Vec<PreviewResult>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct PreviewResult {
    pub digest: String,
    pub tags: Vec<String>,
    pub pushed_at: f64,
    pub applied_rule_priority: u32,
}

impl Repository {
    pub(crate) fn new(name: &str, now: f64) -> Repository {
        Repository {
            name: name.to_string(),
            created_at: now,
            image_tag_mutability: TagMutability::Mutable,
            scan_on_push: false,
            lifecycle_policy: None,
            lifecycle_last_evaluated_at: None,
            tags: BTreeMap::new(),
            manifests: BTreeMap::new(),
            preview: None,
        }
    }

    /// The tags pointing at `digest`, sorted.
    pub(crate) fn tags_of(&self, digest: &Digest) -> Vec<String> {
        self.tags
            .iter()
            .filter(|(_, d)| *d == digest)
            .map(|(t, _)| t.clone())
            .collect()
    }

    /// Child manifests referenced by an index of this repository.
    fn children(&self) -> BTreeSet<Digest> {
        self.manifests
            .values()
            .flat_map(|m| m.children.iter().cloned())
            .collect()
    }

    /// The images lifecycle policies consider: every manifest that is not an index's child.
    pub(crate) fn lifecycle_images(&self) -> Vec<ImageInfo> {
        let children = self.children();
        self.manifests
            .iter()
            .filter(|(d, _)| !children.contains(*d) || !self.tags_of(d).is_empty())
            .map(|(d, m)| ImageInfo {
                digest: d.to_string(),
                tags: self.tags_of(d),
                pushed_at: m.pushed_at,
            })
            .collect()
    }

    /// Removes an image and its tags, and the children of an index that nothing else keeps;
    /// returns the blobs and manifests that may now be unreferenced.
    pub(crate) fn remove_image(&mut self, digest: &Digest) -> Vec<Digest> {
        let mut freed = Vec::new();
        let mut queue = vec![digest.clone()];
        while let Some(d) = queue.pop() {
            let Some(record) = self.manifests.remove(&d) else {
                continue;
            };
            self.tags.retain(|_, t| *t != d);
            freed.push(d.clone());
            freed.extend(record.blobs);
            let still_referenced = self.children();
            for child in record.children {
                if !still_referenced.contains(&child) && self.tags_of(&child).is_empty() {
                    queue.push(child);
                }
            }
        }
        freed
    }
}

/// What a garbage collection freed.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct GcReport {
    pub freed_blobs: u64,
    pub freed_bytes: u64,
}

fn file_name_of(repository: &str) -> String {
    // '+' never appears in a valid repository name, so this is reversible.
    format!("{}.json", repository.replace('/', "+"))
}

impl Registry {
    /// Opens (creating if needed) a registry stored under `root`. `registry_host` is the
    /// `host:port` clients use, for repository URIs.
    pub fn open(
        root: PathBuf,
        arns: Arns,
        registry_host: String,
    ) -> Result<Registry, RegistryError> {
        for dir in ["blobs/sha256", "uploads", "repositories", "tmp"] {
            let path = root.join(dir);
            fs::create_dir_all(&path).map_err(io_error(format!("creating {}", path.display())))?;
        }
        // Leftovers of writes interrupted by a crash.
        let tmp = root.join("tmp");
        for entry in fs::read_dir(&tmp)
            .map_err(io_error(format!("listing {}", tmp.display())))?
            .flatten()
        {
            let _ = fs::remove_file(entry.path());
        }
        let mut repos = BTreeMap::new();
        let dir = root.join("repositories");
        for entry in fs::read_dir(&dir).map_err(io_error(format!("listing {}", dir.display())))? {
            let path = entry
                .map_err(io_error(format!("listing {}", dir.display())))?
                .path();
            if path.extension().and_then(|e| e.to_str()) != Some("json") {
                continue;
            }
            let bytes = fs::read(&path).map_err(io_error(format!("reading {}", path.display())))?;
            let repo: Repository =
                serde_json::from_slice(&bytes).map_err(|e| RegistryError::Io {
                    context: format!("parsing {}", path.display()),
                    source: std::io::Error::new(std::io::ErrorKind::InvalidData, e),
                })?;
            repos.insert(repo.name.clone(), repo);
        }
        Ok(Registry {
            inner: Arc::new(Inner {
                root,
                arns,
                registry_host,
                state: Mutex::new(State {
                    repos,
                    orphans: BTreeSet::new(),
                    gc_grace: Duration::from_secs(3600),
                    upload_hashers: HashMap::new(),
                }),
            }),
        })
    }

    /// Sets how old a never-referenced blob or an abandoned upload must be before [`Registry::gc`]
    /// frees it (default one hour).
    pub fn set_gc_grace(&self, grace: Duration) {
        self.state().gc_grace = grace;
    }

    pub(crate) fn arns(&self) -> &Arns {
        &self.inner.arns
    }
    pub(crate) fn registry_host(&self) -> &str {
        &self.inner.registry_host
    }

    pub(crate) fn state(&self) -> MutexGuard<'_, State> {
        // A panic while holding the lock leaves the in-memory state as consistent as the last
        // completed write; keep serving.
        self.inner.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Writes a repository's metadata file atomically.
    pub(crate) fn save_repository(&self, repo: &Repository) -> Result<(), RegistryError> {
        let bytes = serde_json::to_vec_pretty(repo).map_err(|e| RegistryError::Io {
            context: format!("encoding repository {}", repo.name),
            source: std::io::Error::other(e),
        })?;
        let dest = self
            .inner
            .root
            .join("repositories")
            .join(file_name_of(&repo.name));
        self.write_atomic(&dest, &bytes)
    }

    /// Removes a repository's metadata file.
    pub(crate) fn remove_repository_file(&self, name: &str) -> Result<(), RegistryError> {
        let path = self
            .inner
            .root
            .join("repositories")
            .join(file_name_of(name));
        match fs::remove_file(&path) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(io_error(format!("removing {}", path.display()))(e)),
        }
    }

    fn write_atomic(&self, dest: &Path, bytes: &[u8]) -> Result<(), RegistryError> {
        let tmp = self
            .inner
            .root
            .join("tmp")
            .join(uuid::Uuid::new_v4().to_string());
        let result = (|| {
            let mut file = fs::File::create(&tmp)?;
            file.write_all(bytes)?;
            file.sync_all()?;
            fs::rename(&tmp, dest)?;
            sync_dir(dest)
        })();
        if result.is_err() {
            let _ = fs::remove_file(&tmp);
        }
        result.map_err(io_error(format!("writing {}", dest.display())))
    }

    /// Where a blob is (or would be) stored.
    pub fn blob_path(&self, digest: &Digest) -> PathBuf {
        self.inner.root.join("blobs/sha256").join(digest.hex())
    }

    /// The size of a stored blob, or None.
    pub fn blob_size(&self, digest: &Digest) -> Option<u64> {
        fs::metadata(self.blob_path(digest))
            .ok()
            .filter(|m| m.is_file())
            .map(|m| m.len())
    }

    /// Starts a blob upload; returns its id.
    pub fn start_upload(&self) -> Result<String, RegistryError> {
        let id = uuid::Uuid::new_v4().to_string();
        let path = self.upload_path(&id);
        fs::File::create(&path).map_err(io_error(format!("creating {}", path.display())))?;
        Ok(id)
    }

    /// The data file of an upload. `id` must be a UUID (checked by [`Registry::upload_size`]).
    pub(crate) fn upload_path(&self, id: &str) -> PathBuf {
        self.inner.root.join("uploads").join(id)
    }

    /// How many bytes an upload holds so far; BLOB_UPLOAD_UNKNOWN if there is no such upload.
    pub fn upload_size(&self, id: &str) -> Result<u64, RegistryError> {
        if uuid::Uuid::parse_str(id).is_err() {
            return Err(RegistryError::BlobUploadUnknown(id.to_string()));
        }
        fs::metadata(self.upload_path(id))
            .map(|m| m.len())
            .map_err(|_| RegistryError::BlobUploadUnknown(id.to_string()))
    }

    /// Cancels an upload.
    pub fn cancel_upload(&self, id: &str) -> Result<(), RegistryError> {
        self.upload_size(id)?;
        self.state().upload_hashers.remove(id);
        let _ = fs::remove_file(self.upload_path(id));
        Ok(())
    }

    /// Takes the running digest of an upload's bytes so far, if this process saw them all.
    pub(crate) fn take_upload_hasher(&self, id: &str) -> Option<Hasher> {
        self.state().upload_hashers.remove(id)
    }

    /// Keeps the running digest of an upload (of exactly the bytes its file holds).
    pub(crate) fn keep_upload_hasher(&self, id: &str, hasher: Hasher) {
        self.state().upload_hashers.insert(id.to_string(), hasher);
    }

    /// Completes an upload: hashes it, and only if it matches `expected` makes it the blob
    /// (fsync, then rename). A mismatching upload is deleted and nothing is stored.
    pub fn finish_upload(&self, id: &str, expected: &Digest) -> Result<u64, RegistryError> {
        let size_now = self.upload_size(id)?;
        let path = self.upload_path(id);
        let hashed = self
            .take_upload_hasher(id)
            .filter(|h| h.n_bytes() == size_now);
        let result = (|| {
            let file =
                fs::File::open(&path).map_err(io_error(format!("opening {}", path.display())))?;
            let (actual, size) = match hashed {
                // Hashed as it arrived.
                Some(hasher) => hasher.finish(),
                None => Digest::of_reader(std::io::BufReader::with_capacity(1 << 20, &file))
                    .map_err(io_error(format!("reading {}", path.display())))?,
            };
            if actual != *expected {
                return Err(RegistryError::DigestInvalid {
                    expected: expected.to_string(),
                    actual: actual.to_string(),
                });
            }
            file.sync_all()
                .map_err(io_error(format!("syncing {}", path.display())))?;
            let dest = self.blob_path(expected);
            if dest.exists() {
                let _ = fs::remove_file(&path);
            } else {
                fs::rename(&path, &dest)
                    .map_err(io_error(format!("storing {}", dest.display())))?;
                sync_dir(&dest).map_err(io_error(format!("syncing {}", dest.display())))?;
            }
            Ok(size)
        })();
        if result.is_err() {
            let _ = fs::remove_file(&path);
        } else {
            self.state().orphans.remove(expected);
        }
        result
    }

    /// Stores `bytes` as a blob after checking they hash to `expected`.
    pub fn put_blob(&self, expected: &Digest, bytes: &[u8]) -> Result<(), RegistryError> {
        let id = self.start_upload()?;
        let path = self.upload_path(&id);
        fs::write(&path, bytes).map_err(io_error(format!("writing {}", path.display())))?;
        self.finish_upload(&id, expected).map(|_| ())
    }

    /// Deletes a blob that no manifest references; refuses (UNSUPPORTED) one that is referenced.
    pub fn delete_blob(&self, digest: &Digest) -> Result<(), RegistryError> {
        let state = self.state();
        if self.blob_size(digest).is_none() {
            return Err(RegistryError::BlobUnknown(digest.clone()));
        }
        if marked(&state).contains(digest) {
            return Err(RegistryError::Unsupported(format!(
                "blob {digest} is referenced by a manifest; delete the manifest first"
            )));
        }
        let path = self.blob_path(digest);
        fs::remove_file(&path).map_err(io_error(format!("removing {}", path.display())))
    }

    /// Stores a manifest under `repository` (created if needed) and, for a tag reference, tags it.
    /// Checks the digest (for a digest reference), that every referenced blob or child manifest is
    /// present, and tag immutability.
    pub fn put_manifest(
        &self,
        repository: &str,
        reference: &Tagged,
        content_type: Option<&str>,
        bytes: &[u8],
    ) -> Result<Digest, RegistryError> {
        check_repository_name(repository).map_err(RegistryError::NameInvalid)?;
        let digest = Digest::of(bytes);
        if let Tagged::Digest(expected) = reference {
            if *expected != digest {
                return Err(RegistryError::DigestInvalid {
                    expected: expected.to_string(),
                    actual: digest.to_string(),
                });
            }
        }
        let parsed = parse_manifest(content_type, bytes)?;
        // Store the manifest bytes as a blob, like any other content (collected after the grace
        // period if the manifest is refused below).
        if self.blob_size(&digest).is_none() {
            self.put_blob(&digest, bytes)?;
        }
        let now = berth_model::now();
        let mut state = self.state();
        let existing = state.repos.get(repository);
        let (blobs, children, artifact_media_type, image_size) = match parsed.body {
            ManifestBodySummary::Image {
                blobs,
                config_media_type,
                image_size,
            } => {
                if let Some(missing) = blobs.iter().find(|b| self.blob_size(b).is_none()) {
                    return Err(RegistryError::ManifestBlobUnknown(missing.clone()));
                }
                (blobs, Vec::new(), Some(config_media_type), image_size)
            }
            ManifestBodySummary::Index { children } => {
                let known = |d: &Digest| existing.is_some_and(|r| r.manifests.contains_key(d));
                if let Some(missing) = children.iter().find(|c| !known(&c.digest)) {
                    return Err(RegistryError::ManifestBlobUnknown(missing.digest.clone()));
                }
                let size = children.iter().map(|c| c.size).sum();
                (
                    Vec::new(),
                    children.into_iter().map(|c| c.digest).collect(),
                    None,
                    size,
                )
            }
        };
        if let (Tagged::Tag(tag), Some(repo)) = (reference, existing) {
            if repo.image_tag_mutability == TagMutability::Immutable
                && repo.tags.get(tag).is_some_and(|d| *d != digest)
            {
                return Err(RegistryError::TagImmutable {
                    repository: repository.to_string(),
                    tag: tag.clone(),
                });
            }
        }
        let mut repo = existing
            .cloned()
            .unwrap_or_else(|| Repository::new(repository, now));
        if repo.manifests.contains_key(&digest) {
            if let Some(m) = repo.manifests.get_mut(&digest) {
                // Re-pushing the same image keeps its record; only a tag may be added.
                m.media_type = parsed.media_type.clone();
            }
        } else {
            repo.manifests.insert(
                digest.clone(),
                ManifestRecord {
                    media_type: parsed.media_type,
                    size: bytes.len() as u64,
                    pushed_at: now,
                    blobs,
                    children,
                    artifact_media_type,
                    image_size,
                    scan_completed_at: repo.scan_on_push.then_some(now),
                    last_pulled_at: None,
                },
            );
        }
        if let Tagged::Tag(tag) = reference {
            repo.tags.insert(tag.clone(), digest.clone());
        }
        self.save_repository(&repo)?;
        state.orphans.remove(&digest);
        state.repos.insert(repository.to_string(), repo);
        Ok(digest)
    }

    /// A manifest's media type, digest and bytes.
    pub fn get_manifest(
        &self,
        repository: &str,
        reference: &Tagged,
    ) -> Result<(String, Digest, Vec<u8>), RegistryError> {
        let (media_type, digest) = {
            let state = self.state();
            let repo = state
                .repos
                .get(repository)
                .ok_or_else(|| RegistryError::NameUnknown(repository.to_string()))?;
            let unknown = || RegistryError::ManifestUnknown {
                repository: repository.to_string(),
                reference: reference.as_path(),
            };
            let digest = match reference {
                Tagged::Tag(t) => repo.tags.get(t).cloned().ok_or_else(unknown)?,
                Tagged::Digest(d) => d.clone(),
            };
            let record = repo.manifests.get(&digest).ok_or_else(unknown)?;
            (record.media_type.clone(), digest)
        };
        let path = self.blob_path(&digest);
        let bytes = fs::read(&path).map_err(io_error(format!("reading {}", path.display())))?;
        Ok((media_type, digest, bytes))
    }

    /// Records that an image was pulled (ECR's lastRecordedPullTime).
    pub(crate) fn record_pull(&self, repository: &str, digest: &Digest) {
        let mut state = self.state();
        if let Some(m) = state
            .repos
            .get_mut(repository)
            .and_then(|r| r.manifests.get_mut(digest))
        {
            // Kept in memory only: a pull should not cost a disk write.
            m.last_pulled_at = Some(berth_model::now());
        }
    }

    /// Deletes a manifest by digest (with its tags), or only a tag; then collects garbage.
    pub fn delete_manifest(
        &self,
        repository: &str,
        reference: &Tagged,
    ) -> Result<(), RegistryError> {
        {
            let mut state = self.state();
            let mut repo = state
                .repos
                .get(repository)
                .cloned()
                .ok_or_else(|| RegistryError::NameUnknown(repository.to_string()))?;
            let unknown = || RegistryError::ManifestUnknown {
                repository: repository.to_string(),
                reference: reference.as_path(),
            };
            let freed = match reference {
                Tagged::Tag(t) => {
                    repo.tags.remove(t).ok_or_else(unknown)?;
                    Vec::new()
                }
                Tagged::Digest(d) => {
                    if !repo.manifests.contains_key(d) {
                        return Err(unknown());
                    }
                    repo.remove_image(d)
                }
            };
            self.save_repository(&repo)?;
            state.repos.insert(repository.to_string(), repo);
            state.orphans.extend(freed);
        }
        self.gc();
        Ok(())
    }

    /// The tags of a repository, sorted.
    pub fn tags(&self, repository: &str) -> Result<Vec<String>, RegistryError> {
        let state = self.state();
        let repo = state
            .repos
            .get(repository)
            .ok_or_else(|| RegistryError::NameUnknown(repository.to_string()))?;
        Ok(repo.tags.keys().cloned().collect())
    }

    /// Marks the orphans of removed images, for the next collection.
    pub(crate) fn add_orphans(state: &mut State, freed: Vec<Digest>) {
        state.orphans.extend(freed);
    }

    /// Frees blobs that no manifest of any repository references: blobs of deleted images at
    /// once, other unreferenced blobs (and abandoned uploads) once older than the grace period.
    pub fn gc(&self) -> GcReport {
        let mut report = GcReport::default();
        let mut state = self.state();
        let marked = marked(&state);
        let grace = state.gc_grace;
        let is_old = |path: &Path| {
            fs::metadata(path)
                .and_then(|m| m.modified())
                .ok()
                .and_then(|t| t.elapsed().ok())
                .is_some_and(|age| age >= grace)
        };
        let dir = self.inner.root.join("blobs/sha256");
        let entries = match fs::read_dir(&dir) {
            Ok(entries) => entries,
            Err(error) => {
                tracing::warn!(error = %error, dir = %dir.display(), "registry gc: cannot list blobs");
                return report;
            }
        };
        for entry in entries.flatten() {
            let path = entry.path();
            let Some(digest) = entry
                .file_name()
                .to_str()
                .and_then(|h| Digest::parse(&format!("sha256:{h}")).ok())
            else {
                continue;
            };
            if marked.contains(&digest) || !(state.orphans.contains(&digest) || is_old(&path)) {
                continue;
            }
            let size = entry.metadata().map(|m| m.len()).unwrap_or(0);
            match fs::remove_file(&path) {
                Ok(()) => {
                    report.freed_blobs += 1;
                    report.freed_bytes += size;
                }
                Err(error) => {
                    tracing::warn!(error = %error, blob = %digest, "registry gc: cannot remove blob")
                }
            }
        }
        state.orphans.clear();
        let uploads = self.inner.root.join("uploads");
        for entry in fs::read_dir(&uploads).into_iter().flatten().flatten() {
            if is_old(&entry.path()) {
                let _ = fs::remove_file(entry.path());
            }
        }
        state
            .upload_hashers
            .retain(|id, _| uploads.join(id).exists());
        if report.freed_blobs > 0 {
            tracing::info!(
                freed_blobs = report.freed_blobs,
                freed_bytes = report.freed_bytes,
                "registry gc"
            );
        }
        report
    }

    /// Applies a repository's lifecycle policy now: deletes the images it expires, then collects
    /// garbage. A repository without a policy expires nothing.
    pub fn apply_lifecycle(&self, repository: &str) -> Result<Vec<Expiry>, RegistryError> {
        let expired = {
            let mut state = self.state();
            let mut repo = state
                .repos
                .get(repository)
                .cloned()
                .ok_or_else(|| RegistryError::NameUnknown(repository.to_string()))?;
            let Some(text) = repo.lifecycle_policy.clone() else {
                return Ok(Vec::new());
            };
            let policy =
                lifecycle::parse_policy(&text).map_err(|e| RegistryError::Denied(e.join("; ")))?;
            let now = berth_model::now();
            let expired = lifecycle::evaluate(&policy, &repo.lifecycle_images(), now);
            let mut freed = Vec::new();
            for e in &expired {
                if let Ok(d) = Digest::parse(&e.digest) {
                    freed.extend(repo.remove_image(&d));
                }
            }
            repo.lifecycle_last_evaluated_at = Some(now);
            self.save_repository(&repo)?;
            state.repos.insert(repository.to_string(), repo);
            Registry::add_orphans(&mut state, freed);
            expired
        };
        if !expired.is_empty() {
            tracing::info!(
                repository,
                n_expired = expired.len(),
                "lifecycle policy expired images"
            );
            self.gc();
        }
        Ok(expired)
    }

    /// Applies every repository's lifecycle policy.
    pub fn apply_lifecycle_all(&self) -> usize {
        let names: Vec<String> = self
            .state()
            .repos
            .values()
            .filter(|r| r.lifecycle_policy.is_some())
            .map(|r| r.name.clone())
            .collect();
        let mut n_expired = 0;
        for name in names {
            match self.apply_lifecycle(&name) {
                Ok(expired) => n_expired += expired.len(),
                Err(error) => {
                    tracing::warn!(repository = %name, error = %error, "lifecycle policy failed")
                }
            }
        }
        n_expired
    }
}

/// Every blob a manifest of some repository references, and the manifests themselves.
fn marked(state: &State) -> BTreeSet<Digest> {
    let mut marked = BTreeSet::new();
    for repo in state.repos.values() {
        for (digest, m) in &repo.manifests {
            marked.insert(digest.clone());
            marked.extend(m.blobs.iter().cloned());
        }
    }
    marked
}

/// Syncs the directory holding `path`, so a rename into it survives a crash.
fn sync_dir(path: &Path) -> std::io::Result<()> {
    match path.parent() {
        Some(dir) => fs::File::open(dir)?.sync_all(),
        None => Ok(()),
    }
}

/// Applies every repository's lifecycle policy every `every`, until the task is aborted.
pub fn spawn_lifecycle(registry: Registry, every: Duration) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut ticker = tokio::time::interval(every);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            ticker.tick().await;
            let registry = registry.clone();
            if let Err(error) =
                tokio::task::spawn_blocking(move || registry.apply_lifecycle_all()).await
            {
                tracing::warn!(error = %error, "lifecycle run panicked");
            }
        }
    })
}

#[cfg(test)]
mod tests;
