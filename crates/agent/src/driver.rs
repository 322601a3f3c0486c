//! Container drivers behind one small trait. The process driver runs `process://<exe>` images as
//! local processes, each under its own shim (`berth shim ...`); a runc driver can sit beside it.

use crate::shim::ShimArgs;
use crate::state::{self, ExitRecord};
use berth_model::ecs::ContainerDefinition;
use serde::{Deserialize, Serialize};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Image scheme of the process driver.
pub const PROCESS_SCHEME: &str = "process://";

/// Why a container could not be started; the message becomes the container and task reason.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum StartError {
    #[error("CannotPullContainerError: {0}")]
    CannotPull(String),
    #[error("CannotStartContainerError: {0}")]
    CannotStart(String),
}

/// Everything a driver needs to start one container.
#[derive(Debug, Clone)]
pub struct StartRequest {
    pub definition: ContainerDefinition,
    /// The container's own directory (logs, pid files, exit record).
    pub dir: PathBuf,
    /// The container's environment (definition, overrides, PORT variables, BERTH_*), without PATH.
    pub env: Vec<(String, String)>,
    /// The task's id (container ids and hostnames derive from it).
    pub task_id: String,
    /// Task-level `cpu` units and `memory` MiB.
    pub task_cpu: Option<u32>,
    pub task_memory: Option<u32>,
    /// The task's own network (namespace and address).
    pub network: Option<crate::network::TaskNetwork>,
    /// `networkMode: host`: the container shares the host's network (and `network` is None).
    pub host_network: bool,
    /// `networkMode: none`: the container gets a namespace with only loopback.
    pub no_network: bool,
    /// The pulled, unpacked image (runc containers).
    pub image: Option<std::sync::Arc<crate::image::PreparedImage>>,
}

/// How to find a started container again, also after an agent restart (stored as `shim.json`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RuntimeHandle {
    pub dir: PathBuf,
    pub shim_pid: i32,
    /// Start time of the shim process (ticks since boot), to tell it from a later process that reuses the pid.
    pub shim_start_time: u64,
}

/// What a driver observes about a container.
#[derive(Debug, Clone, PartialEq)]
pub enum ContainerState {
    /// Started, but the process is not known to run yet.
    Starting,
    /// The container's main process runs with this pid.
    Running { pid: i32 },
    /// The process exited (or could not start); see the record.
    Exited(ExitRecord),
    /// The runtime vanished without recording an exit.
    Lost,
}

/// A container runtime: starts, stops, inspects and re-adopts containers.
pub trait Driver: Send + Sync {
    /// Starts a container; on success it may still be `Starting` for a moment.
    fn start(&self, request: &StartRequest) -> Result<RuntimeHandle, StartError>;
    /// Asks the container to stop: SIGTERM, then SIGKILL after its stop timeout.
    fn stop(&self, handle: &RuntimeHandle);
    /// Observes a container.
    fn inspect(&self, handle: &RuntimeHandle) -> ContainerState;
    /// Finds the container recorded in `dir` (after an agent restart), if it was ever started.
    fn adopt(&self, dir: &Path) -> Option<RuntimeHandle>;
    /// The container's resource usage now, if it runs and can be measured.
    fn stats(&self, _handle: &RuntimeHandle) -> Option<crate::stats::Sample> {
        None
    }
}

/// The pid in `<dir>/child.pid`, written by the shim once the container's process runs.
pub fn child_pid(dir: &Path) -> Option<i32> {
    std::fs::read_to_string(dir.join("child.pid"))
        .ok()
        .and_then(|s| s.trim().parse::<i32>().ok())
}

/// Starts `<shim_exe> shim <args>` with a clean environment (`PATH` plus `env`), its stderr in
/// `shim.log`, records it as `shim.json` and returns its handle.
pub(crate) fn spawn_shim(
    shim_exe: &Path,
    args: &ShimArgs,
    path: &str,
    env: &[(String, String)],
) -> Result<RuntimeHandle, StartError> {
    let shim_log = std::fs::File::create(args.dir.join("shim.log"))
        .map_err(|e| StartError::CannotStart(format!("shim log: {e}")))?;
    let mut cmd = std::process::Command::new(shim_exe);
    cmd.arg("shim")
        .args(args.to_args())
        .env_clear()
        .env("PATH", path)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(shim_log);
    cmd.envs(env.iter().map(|(k, v)| (k, v)));
    let mut child = cmd.spawn().map_err(|e| {
        StartError::CannotStart(format!("cannot run the shim {}: {e}", shim_exe.display()))
    })?;
    let shim_pid = child.id() as i32;
    // Reap the shim when it exits; it outlives this agent when the agent stops first.
    std::thread::spawn(move || {
        let _ = child.wait();
    });
    let shim_start_time = state::proc_start_time(shim_pid).unwrap_or(0);
    let handle = RuntimeHandle {
        dir: args.dir.clone(),
        shim_pid,
        shim_start_time,
    };
    if let Err(e) = state::write_json_unsynced(&args.dir.join("shim.json"), &handle) {
        tracing::warn!(dir = %args.dir.display(), error = %e, "cannot record the shim");
    }
    Ok(handle)
}

/// Runs `process://` images as local processes under a shim.
#[derive(Debug, Clone)]
pub struct ProcessDriver {
    /// The executable started as `<shim_exe> shim ...`; also what the image name `berth` means.
    pub shim_exe: PathBuf,
}

/// The resolved executable and argv of a process container.
#[derive(Debug, Clone, PartialEq)]
pub struct ProcessCommand {
    pub exe: PathBuf,
    pub argv: Vec<String>,
}

/// `PATH` for containers: the directory of the berth executable, then the agent's own PATH.
pub fn container_path(berth_exe: &Path, agent_path: &str) -> String {
    match berth_exe.parent().filter(|p| !p.as_os_str().is_empty()) {
        Some(dir) if agent_path.is_empty() => dir.display().to_string(),
        Some(dir) => format!("{}:{agent_path}", dir.display()),
        None => agent_path.to_string(),
    }
}

/// Resolves the executable and argv of a `process://` container: entryPoint ++ command when
/// entryPoint is set (entryPoint[0] replaces the image's exe), else `[exe] ++ command`; an image
/// `process://` without exe takes it from command[0]. `berth` is the berth binary; names without
/// `/` are looked up on `path`; relative paths are taken from `cwd`.
pub fn process_command(
    definition: &ContainerDefinition,
    berth_exe: &Path,
    path: &str,
    cwd: Option<&Path>,
) -> Result<ProcessCommand, StartError> {
    let image_exe = definition
        .image
        .strip_prefix(PROCESS_SCHEME)
        .ok_or_else(|| {
            StartError::CannotPull(format!(
                "image {} needs the container driver (runc), which this agent does not have",
                definition.image
            ))
        })?;
    let argv: Vec<String> = if !definition.entry_point.is_empty() {
        definition
            .entry_point
            .iter()
            .chain(&definition.command)
            .cloned()
            .collect()
    } else if !image_exe.is_empty() {
        std::iter::once(image_exe.to_string())
            .chain(definition.command.iter().cloned())
            .collect()
    } else {
        definition.command.clone()
    };
    let name = match argv.first() {
        Some(n) if !n.is_empty() => n.clone(),
        _ => {
            return Err(StartError::CannotStart(format!(
                "image {} names no executable and neither entryPoint nor command give one",
                definition.image
            )))
        }
    };
    let exe = resolve_exe(&name, berth_exe, path, cwd)?;
    Ok(ProcessCommand { exe, argv })
}

fn resolve_exe(
    name: &str,
    berth_exe: &Path,
    path: &str,
    cwd: Option<&Path>,
) -> Result<PathBuf, StartError> {
    if name == "berth" {
        return Ok(berth_exe.to_path_buf());
    }
    if name.contains('/') {
        let p = PathBuf::from(name);
        let p = match (p.is_relative(), cwd) {
            (true, Some(dir)) => dir.join(p),
            _ => p,
        };
        return check_executable(&p).map(|()| p);
    }
    let mut first_error = None;
    for dir in path.split(':').filter(|d| !d.is_empty()) {
        let candidate = Path::new(dir).join(name);
        match check_executable(&candidate) {
            Ok(()) => return Ok(candidate),
            Err(e) if candidate.exists() && first_error.is_none() => first_error = Some(e),
            Err(_) => {}
        }
    }
    Err(first_error.unwrap_or_else(|| {
        StartError::CannotStart(format!(
            "exec: {name:?}: executable file not found in $PATH ({path})"
        ))
    }))
}

fn check_executable(path: &Path) -> Result<(), StartError> {
    let meta = std::fs::metadata(path)
        .map_err(|e| StartError::CannotStart(format!("{}: {e}", path.display())))?;
    if meta.is_dir() {
        return Err(StartError::CannotStart(format!(
            "{}: is a directory",
            path.display()
        )));
    }
    if meta.permissions().mode() & 0o111 == 0 {
        let e = std::io::Error::from_raw_os_error(libc::EACCES);
        return Err(StartError::CannotStart(format!("{}: {e}", path.display())));
    }
    Ok(())
}

/// The few variables of the agent's own environment a process container inherits besides PATH.
const INHERITED: &[&str] = &["HOME", "LANG", "TMPDIR", "TZ"];

impl Driver for ProcessDriver {
    fn start(&self, request: &StartRequest) -> Result<RuntimeHandle, StartError> {
        let def = &request.definition;
        let agent_path = std::env::var("PATH").unwrap_or_default();
        let path = container_path(&self.shim_exe, &agent_path);
        let cwd = def.working_directory.as_ref().map(PathBuf::from);
        if let Some(dir) = &cwd {
            if !dir.is_dir() {
                return Err(StartError::CannotStart(format!(
                    "working directory {}: {}",
                    dir.display(),
                    std::fs::metadata(dir)
                        .err()
                        .map(|e| e.to_string())
                        .unwrap_or_else(|| "not a directory".into())
                )));
            }
        }
        let container_env_path = request
            .env
            .iter()
            .rev()
            .find(|(k, _)| k == "PATH")
            .map(|(_, v)| v.clone());
        let lookup_path = container_env_path.clone().unwrap_or_else(|| path.clone());
        let command = process_command(def, &self.shim_exe, &lookup_path, cwd.as_deref())?;
        std::fs::create_dir_all(&request.dir)
            .map_err(|e| StartError::CannotStart(format!("{}: {e}", request.dir.display())))?;
        let args = ShimArgs {
            dir: request.dir.clone(),
            exe: command.exe,
            argv: command.argv,
            cwd,
            stop_timeout: def.stop_timeout().duration(),
            runc: None,
        };
        let mut env: Vec<(String, String)> = INHERITED
            .iter()
            .filter_map(|k| std::env::var(k).ok().map(|v| (k.to_string(), v)))
            .collect();
        env.extend(request.env.iter().cloned());
        spawn_shim(&self.shim_exe, &args, &path, &env)
    }

    fn stop(&self, handle: &RuntimeHandle) {
        if state::process_matches(handle.shim_pid, handle.shim_start_time) {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(handle.shim_pid),
                nix::sys::signal::Signal::SIGTERM,
            );
        }
    }

    fn inspect(&self, handle: &RuntimeHandle) -> ContainerState {
        let exit_path = handle.dir.join("exit.json");
        match state::read_json::<ExitRecord>(&exit_path) {
            Ok(Some(rec)) => return ContainerState::Exited(rec),
            Ok(None) => {}
            Err(e) => {
                tracing::warn!(path = %exit_path.display(), error = %e, "unreadable exit record")
            }
        }
        let child_pid = child_pid(&handle.dir);
        let shim_alive = handle.shim_start_time != 0
            && state::process_matches(handle.shim_pid, handle.shim_start_time);
        if shim_alive {
            return match child_pid {
                Some(pid) => ContainerState::Running { pid },
                None => ContainerState::Starting,
            };
        }
        // The shim may have written exit.json just before exiting.
        match state::read_json::<ExitRecord>(&exit_path) {
            Ok(Some(rec)) => ContainerState::Exited(rec),
            _ => ContainerState::Lost,
        }
    }

    fn adopt(&self, dir: &Path) -> Option<RuntimeHandle> {
        let mut handle: RuntimeHandle = state::read_json(&dir.join("shim.json")).ok().flatten()?;
        handle.dir = dir.to_path_buf();
        Some(handle)
    }

    fn stats(&self, handle: &RuntimeHandle) -> Option<crate::stats::Sample> {
        // The shim makes the child a process group leader; its group is the container.
        crate::stats::process_group_sample(child_pid(&handle.dir)?)
    }
}

pub mod runc;

/// How long a started container may stay `Starting` before it counts as failed to start.
pub const START_TIMEOUT: Duration = Duration::from_secs(10);

#[cfg(test)]
mod tests;
