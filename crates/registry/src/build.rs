//! `berth image build`: makes an OCI image from a base (a rootfs directory, a rootfs tarball or
//! `scratch`) plus added files and a config, as deterministic gzip layers (sorted entries, mtime 0,
//! uid/gid 0) in an OCI image layout, and pushes it to a registry over plain HTTP.

use crate::digest::{Digest, HashingWriter};
use crate::manifest::{Descriptor, OCI_CONFIG, OCI_INDEX, OCI_LAYER_GZIP, OCI_MANIFEST};
use crate::reference::{ImageReference, Tagged};
use crate::{io_error, RegistryError};
use flate2::write::GzEncoder;
use flate2::Compression;
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::fs;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

/// What the image starts from.
#[derive(Debug, Clone, PartialEq)]
pub enum Base {
    /// No base layer.
    Scratch,
    /// A root filesystem directory, packed as one layer.
    Dir(PathBuf),
    /// A root filesystem tarball (plain or gzip), used as one layer.
    Tarball(PathBuf),
}

impl Base {
    /// `scratch`, a directory, or a tarball path.
    pub fn parse(text: &str) -> Base {
        if text == "scratch" {
            Base::Scratch
        } else if Path::new(text).is_dir() {
            Base::Dir(PathBuf::from(text))
        } else {
            Base::Tarball(PathBuf::from(text))
        }
    }
}

/// A file or directory added to the image: `--add SRC:DEST`.
#[derive(Debug, Clone, PartialEq)]
pub struct AddFile {
    pub src: PathBuf,
    /// Absolute path in the image; a trailing `/` puts SRC inside it under its own name.
    pub dest: String,
}

impl AddFile {
    /// Parses `SRC:DEST`, DEST absolute.
    pub fn parse(text: &str) -> Result<AddFile, RegistryError> {
        match text.rsplit_once(':') {
            Some((src, dest)) if !src.is_empty() && dest.starts_with('/') => Ok(AddFile {
                src: PathBuf::from(src),
                dest: dest.to_string(),
            }),
            _ => Err(RegistryError::Build(format!(
                "--add {text:?}: expected SRC:DEST with an absolute DEST, e.g. target/debug/berth:/usr/local/bin/berth"
            ))),
        }
    }
}

/// The image's runtime config (OCI `config` section).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ImageConfig {
    pub entrypoint: Option<Vec<String>>,
    pub cmd: Option<Vec<String>>,
    /// `KEY=value`; a default PATH is added when none is given.
    pub env: Vec<String>,
    pub user: Option<String>,
    pub working_dir: Option<String>,
    /// `8080/tcp`, `53/udp`, or a bare port (tcp).
    pub exposed_ports: Vec<String>,
    pub labels: BTreeMap<String, String>,
}

/// Everything `build_image` needs.
#[derive(Debug, Clone)]
pub struct BuildOptions {
    pub base: Base,
    pub add: Vec<AddFile>,
    pub config: ImageConfig,
    /// Where to push, `host:port/repo:tag` (plain http); None builds only.
    pub push: Option<String>,
    /// Where to write the OCI image layout; None uses a temporary directory.
    pub layout: Option<PathBuf>,
}

/// The result of a build.
#[derive(Debug, Clone)]
pub struct BuiltImage {
    pub manifest_digest: Digest,
    pub manifest: Vec<u8>,
    pub config_digest: Digest,
    pub layers: Vec<Descriptor>,
    /// The OCI layout written, when one was asked for.
    pub layout: Option<PathBuf>,
    /// `host:port/repo@sha256:…` when pushed.
    pub pushed: Option<String>,
}

/// A tar entry to write.
#[derive(Debug, Clone)]
enum Entry {
    Dir { mode: u32 },
    File { src: PathBuf, mode: u32 },
    Symlink { target: PathBuf },
}

/// Builds the image (and pushes it when `opts.push` is set). Blocking: runs its own runtime for
/// the push on a separate thread, so it may be called from sync code or `spawn_blocking`.
pub fn build_image(opts: BuildOptions) -> Result<BuiltImage, RegistryError> {
    let target = opts
        .push
        .as_deref()
        .map(ImageReference::parse)
        .transpose()
        .map_err(RegistryError::Reference)?;
    let temp;
    let layout = match &opts.layout {
        Some(dir) => dir.clone(),
        None => {
            temp = tempfile::tempdir().map_err(io_error("creating a build directory"))?;
            temp.path().to_path_buf()
        }
    };
    let blobs = layout.join("blobs/sha256");
    fs::create_dir_all(&blobs).map_err(io_error(format!("creating {}", blobs.display())))?;

    let mut layers = Vec::new();
    let mut diff_ids = Vec::new();
    let mut history = Vec::new();
    match &opts.base {
        Base::Scratch => {}
        Base::Dir(dir) => {
            let mut entries = BTreeMap::new();
            walk(dir, "", &mut entries)?;
            let (d, diff) = write_layer(&entries, &blobs)?;
            layers.push(d);
            diff_ids.push(diff);
            history.push(json!({"created": "1970-01-01T00:00:00Z", "created_by": format!("berth image build: base {}", dir.display())}));
        }
        Base::Tarball(path) => {
            let (d, diff) = tarball_layer(path, &blobs)?;
            layers.push(d);
            diff_ids.push(diff);
            history.push(json!({"created": "1970-01-01T00:00:00Z", "created_by": format!("berth image build: base {}", path.display())}));
        }
    }
    if !opts.add.is_empty() {
        let mut entries = BTreeMap::new();
        for add in &opts.add {
            add_entries(add, &mut entries)?;
        }
        let (d, diff) = write_layer(&entries, &blobs)?;
        layers.push(d);
        diff_ids.push(diff);
        let added: Vec<String> = opts
            .add
            .iter()
            .map(|a| format!("{}:{}", a.src.display(), a.dest))
            .collect();
        history.push(json!({"created": "1970-01-01T00:00:00Z", "created_by": format!("berth image build: add {}", added.join(" "))}));
    }

    let config = config_json(&opts.config, &diff_ids, history);
    let config_bytes = serde_json::to_vec(&config)
        .map_err(|e| RegistryError::Build(format!("encoding the config: {e}")))?;
    let config_digest = write_blob(&blobs, &config_bytes)?;
    let manifest = json!({
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": { "mediaType": OCI_CONFIG, "digest": config_digest.to_string(), "size": config_bytes.len() },
        "layers": layers,
    });
    let manifest_bytes = serde_json::to_vec(&manifest)
        .map_err(|e| RegistryError::Build(format!("encoding the manifest: {e}")))?;
    let manifest_digest = write_blob(&blobs, &manifest_bytes)?;
    let ref_name = match &target {
        Some(ImageReference {
            reference: Tagged::Tag(t),
            ..
        }) => t.clone(),
        _ => "latest".to_string(),
    };
    let index = json!({
        "schemaVersion": 2,
        "mediaType": OCI_INDEX,
        "manifests": [{
            "mediaType": OCI_MANIFEST,
            "digest": manifest_digest.to_string(),
            "size": manifest_bytes.len(),
            "annotations": { "org.opencontainers.image.ref.name": ref_name },
        }],
    });
    fs::write(
        layout.join("oci-layout"),
        br#"{"imageLayoutVersion":"1.0.0"}"#,
    )
    .map_err(io_error("writing oci-layout"))?;
    fs::write(layout.join("index.json"), index.to_string())
        .map_err(io_error("writing index.json"))?;

    let pushed = match opts.push.as_deref() {
        Some(reference) => {
            let (layout, manifest, reference) = (
                layout.clone(),
                manifest_bytes.clone(),
                reference.to_string(),
            );
            let digest = run_async(async move {
                crate::client::push_layout(&layout, &manifest, &reference).await
            })??;
            let target = target
                .as_ref()
                .map(|t| format!("{}/{}@{digest}", t.host, t.repository));
            target
        }
        None => None,
    };
    Ok(BuiltImage {
        manifest_digest,
        manifest: manifest_bytes,
        config_digest,
        layers,
        layout: opts.layout.clone(),
        pushed,
    })
}

/// Runs a future to completion on a fresh current-thread runtime in its own thread.
fn run_async<T: Send + 'static>(
    future: impl std::future::Future<Output = T> + Send + 'static,
) -> Result<T, RegistryError> {
    std::thread::scope(|scope| {
        scope
            .spawn(|| {
                let runtime = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .map_err(io_error("starting a runtime for the push"))?;
                Ok(runtime.block_on(future))
            })
            .join()
            .unwrap_or_else(|_| Err(RegistryError::Build("the push thread panicked".into())))
    })
}

fn config_json(config: &ImageConfig, diff_ids: &[Digest], history: Vec<Value>) -> Value {
    let mut env = config.env.clone();
    if !env.iter().any(|e| e.starts_with("PATH=")) {
        env.insert(
            0,
            "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin".into(),
        );
    }
    let mut runtime = serde_json::Map::new();
    if let Some(user) = &config.user {
        runtime.insert("User".into(), json!(user));
    }
    if !config.exposed_ports.is_empty() {
        let ports: serde_json::Map<String, Value> = config
            .exposed_ports
            .iter()
            .map(|p| {
                (
                    if p.contains('/') {
                        p.clone()
                    } else {
                        format!("{p}/tcp")
                    },
                    json!({}),
                )
            })
            .collect();
        runtime.insert("ExposedPorts".into(), Value::Object(ports));
    }
    runtime.insert("Env".into(), json!(env));
    if let Some(entrypoint) = &config.entrypoint {
        runtime.insert("Entrypoint".into(), json!(entrypoint));
    }
    if let Some(cmd) = &config.cmd {
        runtime.insert("Cmd".into(), json!(cmd));
    }
    if let Some(dir) = &config.working_dir {
        runtime.insert("WorkingDir".into(), json!(dir));
    }
    if !config.labels.is_empty() {
        runtime.insert("Labels".into(), json!(config.labels));
    }
    json!({
        "created": "1970-01-01T00:00:00Z",
        "architecture": host_architecture(),
        "os": "linux",
        "config": runtime,
        "rootfs": { "type": "layers", "diff_ids": diff_ids.iter().map(Digest::to_string).collect::<Vec<_>>() },
        "history": history,
    })
}

/// The OCI name of this machine's architecture.
pub fn host_architecture() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        "arm" => "arm",
        "riscv64" => "riscv64",
        "powerpc64" => "ppc64le",
        "s390x" => "s390x",
        _ => "amd64",
    }
}

/// Adds the entries under `dir` (recursively, symlinks kept as links) at `prefix`.
fn walk(
    dir: &Path,
    prefix: &str,
    entries: &mut BTreeMap<String, Entry>,
) -> Result<(), RegistryError> {
    let mut children: Vec<_> = fs::read_dir(dir)
        .map_err(io_error(format!("listing {}", dir.display())))?
        .collect::<Result<_, _>>()
        .map_err(io_error(format!("listing {}", dir.display())))?;
    children.sort_by_key(|e| e.file_name());
    for child in children {
        let name = child.file_name().to_string_lossy().into_owned();
        let path = if prefix.is_empty() {
            name
        } else {
            format!("{prefix}/{name}")
        };
        add_path(&child.path(), &path, false, entries)?;
    }
    Ok(())
}

/// Adds `src` at `path`; `follow` follows a symlink at `src` itself (for `--add` sources).
fn add_path(
    src: &Path,
    path: &str,
    follow: bool,
    entries: &mut BTreeMap<String, Entry>,
) -> Result<(), RegistryError> {
    use std::os::unix::fs::PermissionsExt;
    let meta = if follow {
        fs::metadata(src)
    } else {
        fs::symlink_metadata(src)
    }
    .map_err(io_error(format!("reading {}", src.display())))?;
    let mode = meta.permissions().mode() & 0o7777;
    if meta.file_type().is_symlink() {
        let target =
            fs::read_link(src).map_err(io_error(format!("reading link {}", src.display())))?;
        entries.insert(path.to_string(), Entry::Symlink { target });
    } else if meta.is_dir() {
        entries.insert(path.to_string(), Entry::Dir { mode });
        walk(src, path, entries)?;
    } else if meta.is_file() {
        entries.insert(
            path.to_string(),
            Entry::File {
                src: src.to_path_buf(),
                mode,
            },
        );
    } else {
        tracing::warn!(path = %src.display(), "image build: skipping a special file (device, fifo or socket)");
    }
    Ok(())
}

fn add_entries(add: &AddFile, entries: &mut BTreeMap<String, Entry>) -> Result<(), RegistryError> {
    let mut dest = add.dest.trim_start_matches('/').to_string();
    if dest.is_empty() || add.dest.ends_with('/') {
        let name = add.src.file_name().ok_or_else(|| {
            RegistryError::Build(format!(
                "--add {}: the source has no file name",
                add.src.display()
            ))
        })?;
        dest = format!("{}{}", dest, name.to_string_lossy())
            .trim_start_matches('/')
            .to_string();
    }
    let dest = dest.trim_end_matches('/').to_string();
    // Parent directories, so the layer unpacks on an empty root.
    let mut parent = String::new();
    for part in dest
        .split('/')
        .collect::<Vec<_>>()
        .iter()
        .rev()
        .skip(1)
        .rev()
    {
        parent = if parent.is_empty() {
            part.to_string()
        } else {
            format!("{parent}/{part}")
        };
        entries
            .entry(parent.clone())
            .or_insert(Entry::Dir { mode: 0o755 });
    }
    add_path(&add.src, &dest, true, entries)
}

fn tar_header(kind: tar::EntryType, mode: u32, size: u64) -> tar::Header {
    let mut header = tar::Header::new_gnu();
    header.set_entry_type(kind);
    header.set_mode(mode);
    header.set_uid(0);
    header.set_gid(0);
    header.set_mtime(0);
    header.set_size(size);
    header
}

/// Writes `entries` as a gzip tar layer into `blobs`; returns its descriptor and diff id.
fn write_layer(
    entries: &BTreeMap<String, Entry>,
    blobs: &Path,
) -> Result<(Descriptor, Digest), RegistryError> {
    let tmp = blobs.join(format!(".layer-{}", uuid::Uuid::new_v4().simple()));
    let result = (|| {
        let file =
            fs::File::create(&tmp).map_err(io_error(format!("creating {}", tmp.display())))?;
        let compressed = HashingWriter::new(file);
        let gzip = GzEncoder::new(compressed, Compression::default());
        let mut builder = tar::Builder::new(HashingWriter::new(gzip));
        let err = |path: &str| io_error(format!("adding {path} to a layer"));
        for (path, entry) in entries {
            match entry {
                Entry::Dir { mode } => {
                    let mut h = tar_header(tar::EntryType::Directory, *mode, 0);
                    builder
                        .append_data(&mut h, format!("{path}/"), std::io::empty())
                        .map_err(err(path))?;
                }
                Entry::File { src, mode } => {
                    let file = fs::File::open(src)
                        .map_err(io_error(format!("opening {}", src.display())))?;
                    let size = file
                        .metadata()
                        .map_err(io_error(format!("reading {}", src.display())))?
                        .len();
                    let mut h = tar_header(tar::EntryType::Regular, *mode, size);
                    builder
                        .append_data(&mut h, path, file.take(size))
                        .map_err(err(path))?;
                }
                Entry::Symlink { target } => {
                    let mut h = tar_header(tar::EntryType::Symlink, 0o777, 0);
                    builder
                        .append_link(&mut h, path, target)
                        .map_err(err(path))?;
                }
            }
        }
        let uncompressed = builder
            .into_inner()
            .map_err(io_error("finishing a layer"))?;
        let (diff_id, _, gzip) = uncompressed.into_parts();
        let compressed = gzip.finish().map_err(io_error("compressing a layer"))?;
        let (digest, size, file) = compressed.into_parts();
        file.sync_all().map_err(io_error("syncing a layer"))?;
        let dest = blobs.join(digest.hex());
        fs::rename(&tmp, &dest).map_err(io_error(format!("storing {}", dest.display())))?;
        Ok((
            Descriptor {
                media_type: OCI_LAYER_GZIP.to_string(),
                digest,
                size,
                urls: None,
                annotations: None,
                platform: None,
            },
            diff_id,
        ))
    })();
    let _ = fs::remove_file(&tmp);
    result
}

/// A base tarball as a layer: a gzip tarball is used as it is, a plain one is compressed.
fn tarball_layer(path: &Path, blobs: &Path) -> Result<(Descriptor, Digest), RegistryError> {
    let mut magic = [0u8; 2];
    let mut file = fs::File::open(path).map_err(io_error(format!("opening {}", path.display())))?;
    let n = file
        .read(&mut magic)
        .map_err(io_error(format!("reading {}", path.display())))?;
    let gzipped = n == 2 && magic == [0x1f, 0x8b];
    let (digest, size, diff_id) = if gzipped {
        let (digest, size) = Digest::of_reader(
            fs::File::open(path).map_err(io_error(format!("opening {}", path.display())))?,
        )
        .map_err(io_error(format!("reading {}", path.display())))?;
        let decoder = flate2::read::GzDecoder::new(
            fs::File::open(path).map_err(io_error(format!("opening {}", path.display())))?,
        );
        let (diff_id, _) = Digest::of_reader(decoder)
            .map_err(io_error(format!("decompressing {}", path.display())))?;
        fs::copy(path, blobs.join(digest.hex()))
            .map_err(io_error(format!("copying {}", path.display())))?;
        (digest, size, diff_id)
    } else {
        let tmp = blobs.join(format!(".layer-{}", uuid::Uuid::new_v4().simple()));
        let out =
            fs::File::create(&tmp).map_err(io_error(format!("creating {}", tmp.display())))?;
        let mut writer = HashingWriter::new(GzEncoder::new(
            HashingWriter::new(out),
            Compression::default(),
        ));
        std::io::copy(
            &mut fs::File::open(path).map_err(io_error(format!("opening {}", path.display())))?,
            &mut writer,
        )
        .map_err(io_error(format!("compressing {}", path.display())))?;
        let (diff_id, _, gzip) = writer.into_parts();
        let (digest, size, file) = gzip
            .finish()
            .map_err(io_error("compressing a layer"))?
            .into_parts();
        file.sync_all().map_err(io_error("syncing a layer"))?;
        fs::rename(&tmp, blobs.join(digest.hex())).map_err(io_error("storing a layer"))?;
        (digest, size, diff_id)
    };
    Ok((
        Descriptor {
            media_type: OCI_LAYER_GZIP.to_string(),
            digest,
            size,
            urls: None,
            annotations: None,
            platform: None,
        },
        diff_id,
    ))
}

fn write_blob(blobs: &Path, bytes: &[u8]) -> Result<Digest, RegistryError> {
    let digest = Digest::of(bytes);
    let path = blobs.join(digest.hex());
    let mut file =
        fs::File::create(&path).map_err(io_error(format!("creating {}", path.display())))?;
    file.write_all(bytes)
        .map_err(io_error(format!("writing {}", path.display())))?;
    Ok(digest)
}

#[cfg(test)]
mod tests;
