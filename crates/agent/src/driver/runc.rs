//! The runc driver: runs images from a berth registry as OCI containers with `runc`, each under a
//! shim in runc mode (see `shim_runc`). The container's directory holds `rootfs/` (an overlay of
//! the cached layers, or a copy), `upper/` and `work/`, and the `hosts`, `hostname` and
//! `resolv.conf` files bind-mounted into `/etc`.
//!
//! The runtime config (`config.json`) holds the container's environment, secrets included, so it
//! never touches the disk: it is written to a bundle directory on a private tmpfs
//! ([`RUN_DIR`]`/bundles/<container id>`, mode 0700) and removed as soon as `runc run --detach` has
//! read it.

pub mod seccomp;
pub mod spec;

use super::{
    child_pid, spawn_shim, ContainerState, Driver, RuntimeHandle, StartError, StartRequest,
};
use crate::image::{ImageStore, RootfsMode};
use crate::shim::{RuncTarget, ShimArgs};
use crate::state::{self, ExitRecord};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// A tmpfs the agent mounts (when it is not one already) for the runtime configs.
pub const RUN_DIR: &str = "/run/berth";

/// The ECS reason of a container the OOM killer stopped.
pub const OOM_REASON: &str = "OutOfMemoryError: Container killed due to memory usage";

/// Runs containers with runc.
pub struct RuncDriver {
    /// The runc binary.
    pub runc: PathBuf,
    /// The executable started as `<shim_exe> shim ...`.
    pub shim_exe: PathBuf,
    /// The image cache.
    pub images: Arc<ImageStore>,
    /// Whether task root filesystems are overlay mounts (else copies).
    pub overlay: bool,
    /// Where bundles (`config.json`) are written: a directory on a tmpfs.
    pub bundles: PathBuf,
    swap_accounting: bool,
}

/// Creates `dir` (and parents) and makes it private to root (mode 0700).
fn private_dir(dir: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::create_dir_all(dir)?;
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))
}

/// Whether `path` is on a memory file system (tmpfs or ramfs).
pub fn is_tmpfs(path: &Path) -> bool {
    use nix::sys::statfs::{statfs, TMPFS_MAGIC};
    const RAMFS_MAGIC: nix::sys::statfs::FsType = nix::sys::statfs::FsType(0x8584_58f6);
    statfs(path)
        .map(|s| s.filesystem_type() == TMPFS_MAGIC || s.filesystem_type() == RAMFS_MAGIC)
        .unwrap_or(false)
}

/// Mounts a private tmpfs (mode 0700) at `dir` unless it is on one already. Agents starting at
/// the same time take a lock first, so no one mounts over another's tmpfs.
pub fn ensure_tmpfs(dir: &Path) -> std::io::Result<()> {
    private_dir(dir)?;
    if is_tmpfs(dir) {
        return Ok(());
    }
    let lock_path = dir.with_extension("lock");
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&lock_path)?;
    let _lock = nix::fcntl::Flock::lock(file, nix::fcntl::FlockArg::LockExclusive)
        .map_err(|(_, e)| std::io::Error::from(e))?;
    if is_tmpfs(dir) {
        return Ok(());
    }
    nix::mount::mount(
        Some("tmpfs"),
        dir,
        Some("tmpfs"),
        nix::mount::MsFlags::MS_NOSUID
            | nix::mount::MsFlags::MS_NODEV
            | nix::mount::MsFlags::MS_NOEXEC,
        Some("mode=0700,size=64m"),
    )
    .map_err(std::io::Error::from)
}

/// Finds `name` on `PATH`.
pub fn find_on_path(name: &str) -> Option<PathBuf> {
    let path = std::env::var("PATH").unwrap_or_default();
    path.split(':')
        .filter(|d| !d.is_empty())
        .map(|d| Path::new(d).join(name))
        .find(|p| p.is_file())
}

/// The cgroups path of container `id` (relative: runc nests it under the shim's own cgroup).
pub fn cgroups_path(id: &str) -> String {
    format!("berth/{id}")
}

impl RuncDriver {
    /// The driver, when this agent can run containers: `runc` on PATH (or `$BERTH_RUNC`) and
    /// root. Otherwise the reason, naming what is missing. Probes overlay support under
    /// `state_dir/images`.
    pub fn detect(shim_exe: &Path, state_dir: &Path) -> Result<RuncDriver, String> {
        let runc = match std::env::var_os("BERTH_RUNC") {
            Some(p) if !p.is_empty() => PathBuf::from(p),
            _ => find_on_path("runc").ok_or_else(|| {
                "runc is not installed (no `runc` on PATH); install it (e.g. `apt-get install runc`)"
                    .to_string()
            })?,
        };
        if !nix::unistd::geteuid().is_root() {
            return Err("the agent does not run as root, which runc containers need".into());
        }
        let images_dir = state_dir.join("images");
        std::fs::create_dir_all(&images_dir)
            .map_err(|e| format!("cannot create {}: {e}", images_dir.display()))?;
        let overlay = crate::image::overlay_supported(&images_dir);
        let run_dir = PathBuf::from(RUN_DIR);
        ensure_tmpfs(&run_dir).map_err(|e| {
            format!(
                "cannot mount a tmpfs at {} for container configs: {e}",
                run_dir.display()
            )
        })?;
        let bundles = run_dir.join("bundles");
        private_dir(&bundles).map_err(|e| format!("cannot create {}: {e}", bundles.display()))?;
        tracing::info!(runc = %runc.display(), overlay, bundles = %bundles.display(), "runc driver ready");
        Ok(RuncDriver {
            runc,
            shim_exe: shim_exe.to_path_buf(),
            images: Arc::new(ImageStore::new(images_dir)),
            overlay,
            bundles,
            swap_accounting: Path::new("/sys/fs/cgroup/memory/memory.memsw.limit_in_bytes")
                .exists(),
        })
    }

    /// The runc container id of the container whose directory is `dir`
    /// (`<tasks>/<task id>/<container name>`): `berth-<task id>-<name>`.
    pub fn container_id(dir: &Path) -> String {
        let name = dir
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let task = dir
            .parent()
            .and_then(|p| p.file_name())
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        format!("berth-{task}-{name}")
    }

    fn runc_state(&self, id: &str) -> Option<serde_json::Value> {
        let out = std::process::Command::new(&self.runc)
            .args(["state", id])
            .stdin(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .output()
            .ok()?;
        if !out.status.success() {
            return None;
        }
        serde_json::from_slice(&out.stdout).ok()
    }

    fn write_etc_files(
        &self,
        request: &StartRequest,
        hostname: &str,
    ) -> Result<Vec<(String, PathBuf)>, StartError> {
        let dir = &request.dir;
        let ip = request.network.as_ref().map(|n| n.ip.to_string());
        let mut hosts =
            String::from("127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n");
        match &ip {
            Some(ip) => hosts.push_str(&format!("{ip}\t{hostname}\n")),
            None => hosts.push_str(&format!("127.0.1.1\t{hostname}\n")),
        }
        let resolv = std::fs::read_to_string("/etc/resolv.conf").unwrap_or_default();
        let files = [
            ("hosts", hosts),
            ("hostname", format!("{hostname}\n")),
            ("resolv.conf", resolv),
        ];
        let mut out = Vec::new();
        for (name, text) in files {
            let path = dir.join(name);
            std::fs::write(&path, text)
                .map_err(|e| StartError::CannotStart(format!("{}: {e}", path.display())))?;
            out.push((format!("/etc/{name}"), path));
        }
        Ok(out)
    }
}

/// The container's network namespace: the host's only for `networkMode: host`; a task that should
/// have its own but has none is refused rather than run in the host's network.
pub fn network_namespace(request: &StartRequest) -> Result<spec::NetworkNamespace, StartError> {
    match (&request.network, request.host_network, request.no_network) {
        (None, true, _) => Ok(spec::NetworkNamespace::Host),
        (Some(net), false, false) => Ok(spec::NetworkNamespace::Join(net.netns_path())),
        (None, false, true) => Ok(spec::NetworkNamespace::Empty),
        _ => Err(StartError::CannotStart(
            "the task has no network namespace of its own; refusing to run it in the host's network"
                .into(),
        )),
    }
}

impl Driver for RuncDriver {
    fn start(&self, request: &StartRequest) -> Result<RuntimeHandle, StartError> {
        let def = &request.definition;
        let network = network_namespace(request)?;
        let image = request
            .image
            .as_ref()
            .ok_or_else(|| StartError::CannotPull(format!("image {} was not pulled", def.image)))?;
        let dir = &request.dir;
        let began = std::time::Instant::now();
        std::fs::create_dir_all(dir)
            .map_err(|e| StartError::CannotStart(format!("{}: {e}", dir.display())))?;
        let mode = crate::image::prepare_rootfs(image, dir, self.overlay)
            .map_err(|e| StartError::CannotStart(format!("preparing the root filesystem: {e}")))?;
        let result = (|| {
            let rootfs = dir.join("rootfs");
            let (user, home) = spec::resolve_user(
                &spec::user_spec(def, &image.config),
                &spec::read_etc(&rootfs, "passwd"),
                &spec::read_etc(&rootfs, "group"),
            )
            .map_err(|e| StartError::CannotStart(e.to_string()))?;
            let hostname: String = request.task_id.chars().take(12).collect();
            let etc_files = self.write_etc_files(request, &hostname)?;
            let id = Self::container_id(dir);
            let spec = spec::build_spec(&spec::SpecInput {
                definition: def,
                image_config: &image.config,
                env: &request.env,
                user,
                home,
                hostname,
                task_cpu: request.task_cpu,
                task_memory: request.task_memory,
                network,
                rootfs: rootfs.clone(),
                cgroups_path: cgroups_path(&id),
                etc_files,
                swap_accounting: self.swap_accounting,
                default_nofile: nix::sys::resource::getrlimit(
                    nix::sys::resource::Resource::RLIMIT_NOFILE,
                )
                .unwrap_or((1024, 4096)),
            })
            .map_err(|e| StartError::CannotStart(e.to_string()))?;
            let bundle = self.bundles.join(&id);
            let _ = std::fs::remove_dir_all(&bundle);
            private_dir(&bundle)
                .and_then(|()| state::write_json_unsynced(&bundle.join("config.json"), &spec))
                .map_err(|e| {
                    let _ = std::fs::remove_dir_all(&bundle);
                    StartError::CannotStart(format!(
                        "writing {}/config.json: {e}",
                        bundle.display()
                    ))
                })?;
            for stale in ["exit.json", "child.pid", "init.pid", "config.json"] {
                let _ = std::fs::remove_file(dir.join(stale));
            }
            let args = ShimArgs {
                dir: dir.clone(),
                exe: self.runc.clone(),
                argv: Vec::new(),
                cwd: None,
                stop_timeout: def.stop_timeout().duration(),
                runc: Some(RuncTarget {
                    bundle: bundle.clone(),
                    id,
                }),
            };
            let path = std::env::var("PATH").unwrap_or_default();
            let bundle_ms = began.elapsed().as_secs_f64() * 1e3;
            let handle = spawn_shim(&self.shim_exe, &args, &path, &[]).inspect_err(|_| {
                let _ = std::fs::remove_dir_all(&bundle);
            });
            tracing::debug!(
                bundle_ms,
                total_ms = began.elapsed().as_secs_f64() * 1e3,
                "container bundle ready and shim started"
            );
            handle
        })();
        if result.is_err() && mode == RootfsMode::Overlay {
            crate::image::release_rootfs(dir);
        }
        result
    }

    fn stop(&self, handle: &RuntimeHandle) {
        if state::process_matches(handle.shim_pid, handle.shim_start_time) {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(handle.shim_pid),
                nix::sys::signal::Signal::SIGTERM,
            );
            return;
        }
        // No shim (it was killed): stop the container directly.
        let id = Self::container_id(&handle.dir);
        let _ = std::process::Command::new(&self.runc)
            .args(["kill", "--all", &id, "KILL"])
            .stdin(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .status();
    }

    fn inspect(&self, handle: &RuntimeHandle) -> ContainerState {
        let exit_path = handle.dir.join("exit.json");
        if let Ok(Some(rec)) = state::read_json::<ExitRecord>(&exit_path) {
            return ContainerState::Exited(rec);
        }
        if handle.shim_start_time != 0
            && state::process_matches(handle.shim_pid, handle.shim_start_time)
        {
            return match child_pid(&handle.dir) {
                Some(pid) => ContainerState::Running { pid },
                None => ContainerState::Starting,
            };
        }
        if let Ok(Some(rec)) = state::read_json::<ExitRecord>(&exit_path) {
            return ContainerState::Exited(rec);
        }
        // The shim is gone without a record: ask runc.
        let id = Self::container_id(&handle.dir);
        match self.runc_state(&id) {
            Some(st) if st.get("status").and_then(|s| s.as_str()) == Some("running") => {
                let pid = st.get("pid").and_then(|p| p.as_i64()).unwrap_or(0) as i32;
                ContainerState::Running { pid }
            }
            Some(_) => {
                let _ = std::process::Command::new(&self.runc)
                    .args(["delete", "--force", &id])
                    .stderr(std::process::Stdio::null())
                    .status();
                crate::image::release_rootfs(&handle.dir);
                ContainerState::Lost
            }
            None => ContainerState::Lost,
        }
    }

    fn adopt(&self, dir: &Path) -> Option<RuntimeHandle> {
        let mut handle: RuntimeHandle = state::read_json(&dir.join("shim.json")).ok().flatten()?;
        handle.dir = dir.to_path_buf();
        Some(handle)
    }

    fn stats(&self, handle: &RuntimeHandle) -> Option<crate::stats::Sample> {
        crate::stats::cgroup_sample(child_pid(&handle.dir)?)
    }
}
