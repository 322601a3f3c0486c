//! The image cache of the runc driver: pulls images from a berth registry into a content-addressed
//! blob store (`<images>/blobs/sha256/<hex>`), unpacks each layer once into a content-addressed
//! layer directory shared by all tasks (`<images>/layers/<diff-id hex>`, whiteouts kept in
//! overlayfs form), and makes a task's writable root filesystem from them: an overlay mount when
//! the kernel allows it here, else a copy with the whiteouts applied.
//!
//! Whiteouts: an OCI `.wh.<name>` entry becomes a character device 0/0 named `<name>` and an
//! opaque marker `.wh..wh..opq` becomes the `trusted.overlay.opaque=y` attribute of its directory,
//! which is what overlayfs reads in a lower directory; the copy fallback interprets the same marks.

use berth_registry::digest::Hasher;
use berth_registry::{Digest, PulledImage};
use std::collections::HashMap;
use std::io::{self, Read};
use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
use std::path::{Component, Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Instant;

/// The xattr overlayfs reads to hide a lower directory's contents.
pub const OPAQUE_XATTR: &str = "trusted.overlay.opaque";
const WHITEOUT_PREFIX: &str = ".wh.";
const OPAQUE_MARKER: &str = ".wh..wh..opq";

/// Why an image could not be made ready.
#[derive(Debug, thiserror::Error)]
pub enum ImageError {
    #[error("{0}")]
    Pull(#[from] berth_registry::RegistryError),
    #[error("layer {digest}: {message}")]
    Layer { digest: String, message: String },
    #[error("{context}: {source}")]
    Io {
        context: String,
        #[source]
        source: io::Error,
    },
}

fn io_err(context: impl std::fmt::Display) -> impl FnOnce(io::Error) -> ImageError {
    move |source| ImageError::Io {
        context: context.to_string(),
        source,
    }
}

/// An image whose layers are unpacked and ready to be a root filesystem.
#[derive(Debug, Clone, PartialEq)]
pub struct PreparedImage {
    /// `host:port/repo@sha256:…`.
    pub reference: String,
    pub manifest_digest: String,
    /// The OCI image config (`config.Entrypoint`, `config.Cmd`, `config.Env`, …).
    pub config: serde_json::Value,
    /// Unpacked layer directories, base first.
    pub layers: Vec<PathBuf>,
}

/// One reference's last result, and a lock so only one pull of it runs at a time.
#[derive(Default)]
struct Slot {
    lock: tokio::sync::Mutex<()>,
    last: Mutex<Option<(Instant, Arc<PreparedImage>)>>,
}

/// Pulls and unpacks images under one directory; shared by every task of an agent.
pub struct ImageStore {
    root: PathBuf,
    slots: Mutex<HashMap<String, Arc<Slot>>>,
}

impl ImageStore {
    /// A store under `root` (`<state>/images`).
    pub fn new(root: impl Into<PathBuf>) -> ImageStore {
        ImageStore {
            root: root.into(),
            slots: Mutex::default(),
        }
    }

    /// The unpacked-layer cache directory.
    pub fn layers_dir(&self) -> PathBuf {
        self.root.join("layers")
    }

    /// Pulls `reference` (verifying every digest) and unpacks its layers, once per image even when
    /// many tasks ask at the same time: a caller that waited for another's pull uses its result.
    /// When the registry cannot be reached, the last image pulled for the reference is used (as
    /// ECS does with a cached image).
    pub async fn ensure(&self, reference: &str) -> Result<Arc<PreparedImage>, ImageError> {
        let asked = Instant::now();
        let slot = self
            .slots
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .entry(reference.to_string())
            .or_default()
            .clone();
        let _guard = slot.lock.lock().await;
        let last = slot.last.lock().unwrap_or_else(|p| p.into_inner()).clone();
        if let Some((finished, image)) = &last {
            // Another caller pulled while this one waited, or the reference names a digest.
            if *finished >= asked || reference.contains("@sha256:") {
                return Ok(image.clone());
            }
        }
        let pulled = match berth_registry::pull(reference, &self.root).await {
            Ok(p) => p,
            Err(error) => match last {
                Some((_, image)) if matches!(error, berth_registry::RegistryError::Http { .. }) => {
                    tracing::warn!(%reference, %error, "pull failed; using the cached image");
                    return Ok(image);
                }
                _ => return Err(error.into()),
            },
        };
        let layers_dir = self.layers_dir();
        let image = tokio::task::spawn_blocking(move || unpack_image(&pulled, &layers_dir)).await;
        let image = match image {
            Ok(r) => Arc::new(r?),
            Err(e) => {
                return Err(ImageError::Io {
                    context: "unpacking layers".into(),
                    source: io::Error::other(e.to_string()),
                })
            }
        };
        *slot.last.lock().unwrap_or_else(|p| p.into_inner()) =
            Some((Instant::now(), image.clone()));
        Ok(image)
    }
}

/// Unpacks every layer of a pulled image into `layers_dir` (skipping layers already there).
pub fn unpack_image(pulled: &PulledImage, layers_dir: &Path) -> Result<PreparedImage, ImageError> {
    std::fs::create_dir_all(layers_dir)
        .map_err(io_err(format!("creating {}", layers_dir.display())))?;
    let diff_ids: Vec<Option<Digest>> = pulled
        .config
        .pointer("/rootfs/diff_ids")
        .and_then(|v| v.as_array())
        .map(|a| {
            a.iter()
                .map(|d| d.as_str().and_then(|s| Digest::parse(s).ok()))
                .collect()
        })
        .unwrap_or_default();
    let mut layers = Vec::new();
    for (i, layer) in pulled.layers.iter().enumerate() {
        let diff_id = diff_ids.get(i).cloned().flatten();
        let key = diff_id.as_ref().unwrap_or(&layer.digest).hex().to_string();
        let dest = layers_dir.join(&key);
        if !dest.is_dir() {
            let tmp = layers_dir.join(format!(".tmp-{key}-{}", std::process::id()));
            let _ = std::fs::remove_dir_all(&tmp);
            let result = unpack_layer_file(&layer.path, &tmp, diff_id.as_ref()).and_then(|()| {
                match std::fs::rename(&tmp, &dest) {
                    Ok(()) => Ok(()),
                    // Another agent thread unpacked the same layer first.
                    Err(_) if dest.is_dir() => Ok(()),
                    Err(e) => Err(io_err(format!("storing {}", dest.display()))(e)),
                }
            });
            let _ = std::fs::remove_dir_all(&tmp);
            result.map_err(|e| ImageError::Layer {
                digest: layer.digest.to_string(),
                message: e.to_string(),
            })?;
        }
        layers.push(dest);
    }
    Ok(PreparedImage {
        reference: pulled.reference.clone(),
        manifest_digest: pulled.manifest_digest.to_string(),
        config: pulled.config.clone(),
        layers,
    })
}

/// A reader that hashes what passes through it.
struct HashingReader<R> {
    inner: R,
    hasher: Hasher,
}

impl<R: Read> Read for HashingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hasher.update(&buf[..n]);
        Ok(n)
    }
}

/// Unpacks one layer blob (gzip or plain tar) into `dest`, checking its uncompressed digest.
pub fn unpack_layer_file(
    blob: &Path,
    dest: &Path,
    diff_id: Option<&Digest>,
) -> Result<(), ImageError> {
    let mut file =
        std::fs::File::open(blob).map_err(io_err(format!("opening {}", blob.display())))?;
    let mut magic = [0u8; 4];
    let n = file.read(&mut magic).map_err(io_err("reading a layer"))?;
    let file = std::fs::File::open(blob).map_err(io_err(format!("opening {}", blob.display())))?;
    let reader: Box<dyn Read> = if n >= 2 && magic[..2] == [0x1f, 0x8b] {
        Box::new(flate2::read::GzDecoder::new(io::BufReader::new(file)))
    } else if n == 4 && magic == [0x28, 0xb5, 0x2f, 0xfd] {
        return Err(ImageError::Layer {
            digest: blob.display().to_string(),
            message: "zstd layers are not supported; push gzip or plain tar layers".into(),
        });
    } else {
        Box::new(io::BufReader::new(file))
    };
    let mut hashing = HashingReader {
        inner: reader,
        hasher: Hasher::default(),
    };
    unpack_layer(&mut hashing, dest)?;
    // The tar reader may stop before the end padding; the digest covers the whole stream.
    io::copy(&mut hashing, &mut io::sink()).map_err(io_err("reading a layer"))?;
    let (actual, _) = hashing.hasher.finish();
    if let Some(expected) = diff_id {
        if actual != *expected {
            return Err(ImageError::Layer {
                digest: blob.display().to_string(),
                message: format!(
                    "diff id mismatch: the config says {expected}, the layer is {actual}"
                ),
            });
        }
    }
    Ok(())
}

/// A path inside an archive, made relative, with no `..` (entries escaping the root are refused).
fn clean_entry_path(path: &Path) -> Option<PathBuf> {
    let mut out = PathBuf::new();
    for c in path.components() {
        match c {
            Component::Normal(p) => out.push(p),
            Component::CurDir | Component::RootDir => {}
            Component::ParentDir | Component::Prefix(_) => return None,
        }
    }
    Some(out)
}

/// Unpacks a tar stream into `dest` with whiteouts in overlayfs form (see the module docs).
/// Device nodes are skipped (the runtime provides /dev).
pub fn unpack_layer(reader: impl Read, dest: &Path) -> Result<(), ImageError> {
    std::fs::create_dir_all(dest).map_err(io_err(format!("creating {}", dest.display())))?;
    let mut archive = tar::Archive::new(reader);
    archive.set_preserve_permissions(true);
    archive.set_preserve_ownerships(true);
    archive.set_preserve_mtime(true);
    archive.set_unpack_xattrs(true);
    archive.set_overwrite(true);
    let entries = archive.entries().map_err(io_err("reading a layer"))?;
    for entry in entries {
        let mut entry = entry.map_err(io_err("reading a layer entry"))?;
        let raw = entry
            .path()
            .map_err(io_err("reading an entry path"))?
            .into_owned();
        let Some(path) = clean_entry_path(&raw) else {
            return Err(ImageError::Layer {
                digest: dest.display().to_string(),
                message: format!("entry {} escapes the root", raw.display()),
            });
        };
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let parent = path.parent().map(Path::to_path_buf).unwrap_or_default();
        if name == OPAQUE_MARKER {
            let dir = dest.join(&parent);
            std::fs::create_dir_all(&dir).map_err(io_err(format!("creating {}", dir.display())))?;
            xattr::set(&dir, OPAQUE_XATTR, b"y")
                .map_err(io_err(format!("marking {} opaque", dir.display())))?;
            continue;
        }
        if let Some(hidden) = name.strip_prefix(WHITEOUT_PREFIX) {
            let dir = dest.join(&parent);
            std::fs::create_dir_all(&dir).map_err(io_err(format!("creating {}", dir.display())))?;
            let target = dir.join(hidden);
            let _ = remove_any(&target);
            make_whiteout(&target)?;
            continue;
        }
        let kind = entry.header().entry_type();
        if kind.is_character_special() || kind.is_block_special() {
            tracing::debug!(path = %path.display(), "layer: skipping a device node");
            continue;
        }
        // A directory entry over an existing file (or the reverse) replaces it.
        let target = dest.join(&path);
        if let Ok(meta) = std::fs::symlink_metadata(&target) {
            if meta.is_dir() != kind.is_dir() {
                let _ = remove_any(&target);
            }
        }
        if let Err(e) = entry.unpack_in(dest) {
            if kind.is_hard_link() {
                tracing::warn!(path = %path.display(), error = %e, "layer: skipping a hard link to a file not in this layer");
                continue;
            }
            return Err(io_err(format!("unpacking {}", path.display()))(e));
        }
    }
    Ok(())
}

fn make_whiteout(path: &Path) -> Result<(), ImageError> {
    use nix::sys::stat::{makedev, mknod, Mode, SFlag};
    mknod(path, SFlag::S_IFCHR, Mode::empty(), makedev(0, 0))
        .map_err(|e| io_err(format!("creating the whiteout {}", path.display()))(e.into()))
}

fn remove_any(path: &Path) -> io::Result<()> {
    match std::fs::symlink_metadata(path) {
        Ok(m) if m.is_dir() => std::fs::remove_dir_all(path),
        Ok(_) => std::fs::remove_file(path),
        Err(e) => Err(e),
    }
}

/// Whether `meta` is an overlayfs whiteout (a character device 0/0).
fn is_whiteout(meta: &std::fs::Metadata) -> bool {
    meta.file_type().is_char_device() && meta.rdev() == 0
}

/// How a task's root filesystem was made.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RootfsMode {
    Overlay,
    Copy,
}

/// Whether an overlay mount with lower, upper and work directories under `scratch` works here.
pub fn overlay_supported(scratch: &Path) -> bool {
    let base = scratch.join(format!(".overlay-probe-{}", std::process::id()));
    let dirs = ["l", "u", "w", "m"].map(|d| base.join(d));
    let ok = dirs.iter().all(|d| std::fs::create_dir_all(d).is_ok())
        && mount_overlay(&[dirs[0].clone()], &dirs[1], &dirs[2], &dirs[3]).is_ok();
    if ok {
        let _ = nix::mount::umount2(&dirs[3], nix::mount::MntFlags::MNT_DETACH);
    }
    let _ = std::fs::remove_dir_all(&base);
    ok
}

/// Mounts an overlay at `target`; `lowers` base first.
pub fn mount_overlay(
    lowers: &[PathBuf],
    upper: &Path,
    work: &Path,
    target: &Path,
) -> io::Result<()> {
    let lower: Vec<String> = lowers
        .iter()
        .rev()
        .map(|p| p.display().to_string())
        .collect();
    let options = format!(
        "lowerdir={},upperdir={},workdir={}",
        lower.join(":"),
        upper.display(),
        work.display()
    );
    nix::mount::mount(
        Some("overlay"),
        target,
        Some("overlay"),
        nix::mount::MsFlags::empty(),
        Some(options.as_str()),
    )
    .map_err(io::Error::from)
}

/// Makes `<bundle>/rootfs` from the image's layers: an overlay (upper and work dirs in the
/// bundle) or, when `overlay` is false, a copy. A leftover mount from an earlier try is removed.
pub fn prepare_rootfs(
    image: &PreparedImage,
    bundle: &Path,
    overlay: bool,
) -> Result<RootfsMode, ImageError> {
    let rootfs = bundle.join("rootfs");
    release_rootfs(bundle);
    for d in ["upper", "work", "rootfs"] {
        let p = bundle.join(d);
        let _ = remove_any(&p);
        std::fs::create_dir_all(&p).map_err(io_err(format!("creating {}", p.display())))?;
    }
    if overlay && !image.layers.is_empty() {
        mount_overlay(
            &image.layers,
            &bundle.join("upper"),
            &bundle.join("work"),
            &rootfs,
        )
        .map_err(io_err(format!(
            "mounting the overlay at {}",
            rootfs.display()
        )))?;
        return Ok(RootfsMode::Overlay);
    }
    for layer in &image.layers {
        apply_layer_copy(layer, &rootfs)?;
    }
    Ok(RootfsMode::Copy)
}

/// Unmounts `<bundle>/rootfs` if it is a mount (lazily, so a busy mount goes once unused).
pub fn release_rootfs(bundle: &Path) {
    let rootfs = bundle.join("rootfs");
    if is_mount_point(&rootfs) {
        if let Err(e) = nix::mount::umount2(&rootfs, nix::mount::MntFlags::MNT_DETACH) {
            tracing::warn!(path = %rootfs.display(), error = %e, "cannot unmount a task rootfs");
        }
    }
}

/// Whether `path` is listed as a mount point in /proc/self/mountinfo.
pub fn is_mount_point(path: &Path) -> bool {
    let Ok(info) = std::fs::read_to_string("/proc/self/mountinfo") else {
        return false;
    };
    let want = path.display().to_string();
    info.lines()
        .filter_map(|l| l.split(' ').nth(4))
        .any(|m| unescape_mountinfo(m) == want)
}

fn unescape_mountinfo(s: &str) -> String {
    s.replace("\\040", " ")
        .replace("\\011", "\t")
        .replace("\\012", "\n")
        .replace("\\134", "\\")
}

/// Applies one unpacked layer onto `target` as overlayfs would show it: whiteouts delete,
/// opaque directories hide what lower layers had there, everything else is copied over.
pub fn apply_layer_copy(layer: &Path, target: &Path) -> Result<(), ImageError> {
    let mut children: Vec<_> = std::fs::read_dir(layer)
        .map_err(io_err(format!("listing {}", layer.display())))?
        .collect::<Result<_, _>>()
        .map_err(io_err(format!("listing {}", layer.display())))?;
    children.sort_by_key(|e| e.file_name());
    for child in children {
        let src = child.path();
        let dst = target.join(child.file_name());
        let meta = std::fs::symlink_metadata(&src)
            .map_err(io_err(format!("reading {}", src.display())))?;
        if is_whiteout(&meta) {
            let _ = remove_any(&dst);
            continue;
        }
        let ft = meta.file_type();
        if ft.is_dir() {
            let opaque = xattr::get(&src, OPAQUE_XATTR).ok().flatten().as_deref() == Some(b"y");
            match std::fs::symlink_metadata(&dst) {
                Ok(m) if m.is_dir() && opaque => {
                    std::fs::remove_dir_all(&dst)
                        .map_err(io_err(format!("clearing {}", dst.display())))?;
                }
                Ok(m) if !m.is_dir() => {
                    let _ = remove_any(&dst);
                }
                _ => {}
            }
            if !dst.is_dir() {
                std::fs::create_dir(&dst).map_err(io_err(format!("creating {}", dst.display())))?;
            }
            copy_attrs(&meta, &dst)?;
            apply_layer_copy(&src, &dst)?;
            continue;
        }
        let _ = remove_any(&dst);
        if ft.is_symlink() {
            let to =
                std::fs::read_link(&src).map_err(io_err(format!("reading {}", src.display())))?;
            std::os::unix::fs::symlink(&to, &dst)
                .map_err(io_err(format!("creating {}", dst.display())))?;
            let _ = std::os::unix::fs::lchown(&dst, Some(meta.uid()), Some(meta.gid()));
        } else if ft.is_file() {
            std::fs::copy(&src, &dst).map_err(io_err(format!("copying {}", src.display())))?;
            copy_attrs(&meta, &dst)?;
        }
    }
    Ok(())
}

fn copy_attrs(meta: &std::fs::Metadata, dst: &Path) -> Result<(), ImageError> {
    std::os::unix::fs::chown(dst, Some(meta.uid()), Some(meta.gid()))
        .map_err(io_err(format!("chown {}", dst.display())))?;
    std::fs::set_permissions(dst, std::fs::Permissions::from_mode(meta.mode() & 0o7777))
        .map_err(io_err(format!("chmod {}", dst.display())))
}

#[cfg(test)]
mod tests;
