//! The shim's runc mode (`berth shim --runc-bundle B --runc-id ID ...`): the shim becomes a child
//! subreaper, runs `runc run --detach` with its own stdout/stderr pipes (runc passes them through
//! to the container, so the shim captures the lines as for a process), and then waits for the
//! container's init, which is re-parented to the shim. The bundle (`config.json` on a tmpfs) is
//! removed once runc has read it. SIGTERM becomes `runc kill ID TERM`, then `runc kill ID KILL`
//! after the stop timeout. When init exits, the container's memory cgroup (kept until `runc
//! delete`) tells whether the OOM killer struck; then `runc delete`, the rootfs is unmounted and
//! `exit.json` written.
//!
//! Why a detached run and not a foreground `runc run`: the foreground one deletes the container
//! (and its cgroup, with the OOM counter) before it returns; detached, the shim itself reaps init
//! and reads the counter first. One `runc run --detach` rather than `runc create` + `runc start`
//! saves a runc start-up per container; the memory cgroup's directory is known beforehand (runc
//! nests the relative cgroups path under the shim's cgroup). Stdio passes through without a
//! console, so log capture is the same as for processes, and the container survives an agent
//! restart because the shim does.

use crate::shim::{futures_select_any, spawn_reader, RuncTarget, ShimArgs};
use crate::state::{self, ExitRecord};
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::Pid;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::signal::unix::{signal, SignalKind};

/// Where runc keeps container state when run as root with its default `--root`.
const RUNC_ROOT: &str = "/run/runc";

/// The last error runc logged (its `--log` file, JSON lines), or a fallback text.
pub fn runc_error(log: &Path, fallback: &str) -> String {
    let text = std::fs::read_to_string(log).unwrap_or_default();
    text.lines()
        .rev()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .find(|v| v.get("level").and_then(|l| l.as_str()) == Some("error"))
        .and_then(|v| v.get("msg").and_then(|m| m.as_str()).map(str::to_string))
        .unwrap_or_else(|| fallback.to_string())
}

fn runc(args: &ShimArgs) -> Command {
    let mut cmd = Command::new(&args.exe);
    cmd.arg("--log")
        .arg(args.dir.join("runc.log"))
        .arg("--log-format")
        .arg("json");
    cmd
}

fn runc_quiet(args: &ShimArgs, what: &[&str]) -> bool {
    runc(args)
        .args(what)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .map(|s| s.success())
        .unwrap_or(false)
}

fn fail(args: &ShimArgs, target: &RuncTarget, message: String) -> std::io::Result<()> {
    runc_quiet(args, &["delete", "--force", &target.id]);
    let _ = std::fs::remove_dir_all(&target.bundle);
    crate::image::release_rootfs(&args.dir);
    let rec = ExitRecord {
        start_error: Some(message),
        finished_at_ms: state::now_ms(),
        ..Default::default()
    };
    state::write_json_atomic(&args.dir.join("exit.json"), &rec)
}

/// Runs the container of `target` to its end; see the module docs.
pub fn run(args: &ShimArgs, target: &RuncTarget) -> std::io::Result<()> {
    let _ = nix::unistd::setsid();
    let _ = nix::sys::prctl::set_child_subreaper(true);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let mut signals = Vec::new();
    for kind in [
        SignalKind::terminate(),
        SignalKind::interrupt(),
        SignalKind::hangup(),
        SignalKind::quit(),
    ] {
        signals.push(runtime.block_on(async { signal(kind) })?);
    }
    let mut sigchld = runtime.block_on(async { signal(SignalKind::child()) })?;

    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(args.dir.join("log.jsonl"))?;
    let log = Arc::new(Mutex::new(log));
    // A container of this id left by an earlier try would make create fail. runc keeps its state
    // under /run/runc/<id> (the shim runs runc as root with the default root); only then is a
    // `runc delete` worth its start-up time.
    if Path::new(RUNC_ROOT).join(&target.id).exists() {
        runc_quiet(args, &["delete", "--force", &target.id]);
    }
    let pid_file = args.dir.join("init.pid");
    let _ = std::fs::remove_file(&pid_file);
    // The memory cgroup outlives init until `runc delete`; where runc makes it is known before
    // the container runs (a container that is OOM-killed at once has it too).
    let memcg: Option<(PathBuf, bool)> =
        crate::stats::nested_cgroup_dir(&crate::driver::runc::cgroups_path(&target.id), "memory");
    // One runc process creates and starts the container (`run --detach`, not `create` then
    // `start`: a runc start-up fewer on every container start).
    let mut run = match runc(args)
        .arg("run")
        .arg("--detach")
        .arg("--bundle")
        .arg(&target.bundle)
        .arg("--pid-file")
        .arg(&pid_file)
        .arg(&target.id)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
    {
        Ok(c) => c,
        Err(e) => return fail(args, target, format!("{}: {e}", args.exe.display())),
    };
    let (done_tx, done_rx) = std::sync::mpsc::channel::<()>();
    let mut readers = 0;
    if let Some(out) = run.stdout.take() {
        readers += 1;
        spawn_reader(out, "stdout", log.clone(), done_tx.clone());
    }
    if let Some(err) = run.stderr.take() {
        readers += 1;
        spawn_reader(err, "stderr", log.clone(), done_tx.clone());
    }
    drop(done_tx);
    let ran = run.wait();
    // runc has read config.json (with the environment and its secrets): it goes now.
    let _ = std::fs::remove_dir_all(&target.bundle);
    let ran = ran?;
    if !ran.success() {
        let message = runc_error(&args.dir.join("runc.log"), &format!("runc run: {ran}"));
        return fail(args, target, message);
    }
    let init = match std::fs::read_to_string(&pid_file)
        .ok()
        .and_then(|s| s.trim().parse::<i32>().ok())
    {
        Some(pid) => pid,
        None => return fail(args, target, "runc run wrote no pid file".into()),
    };
    state::write_atomic_unsynced(&args.dir.join("child.pid"), init.to_string().as_bytes())?;

    let mut deadline: Option<tokio::time::Instant> = None;
    let status = runtime.block_on(async {
        let mut poll = tokio::time::interval(Duration::from_millis(100));
        loop {
            // Reap init and any orphans re-parented here (container processes as init dies).
            loop {
                match waitpid(Pid::from_raw(-1), Some(WaitPidFlag::WNOHANG)) {
                    Ok(WaitStatus::Exited(pid, code)) if pid.as_raw() == init => {
                        return (Some(code), None)
                    }
                    Ok(WaitStatus::Signaled(pid, sig, _)) if pid.as_raw() == init => {
                        return (Some(128 + sig as i32), Some(sig as i32))
                    }
                    Ok(WaitStatus::Exited(..) | WaitStatus::Signaled(..)) => continue,
                    Ok(_) => break,
                    // No children at all: init is not ours (subreaper unavailable); watch /proc.
                    Err(_) => {
                        if crate::state::proc_start_time(init).is_none() {
                            return (None, None);
                        }
                        break;
                    }
                }
            }
            let term = futures_select_any(&mut signals);
            let kill_at = async {
                match deadline {
                    Some(d) => tokio::time::sleep_until(d).await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                _ = sigchld.recv() => {}
                _ = poll.tick() => {}
                _ = term, if deadline.is_none() => {
                    runc_quiet(args, &["kill", &target.id, "TERM"]);
                    deadline = Some(tokio::time::Instant::now() + args.stop_timeout);
                }
                _ = kill_at => {
                    if !runc_quiet(args, &["kill", "--all", &target.id, "KILL"]) {
                        let _ = nix::sys::signal::kill(Pid::from_raw(init), nix::sys::signal::Signal::SIGKILL);
                    }
                    deadline = Some(tokio::time::Instant::now() + Duration::from_secs(3600));
                }
            }
        }
    });
    let oom_killed = memcg
        .as_ref()
        .and_then(|(dir, v2)| crate::stats::oom_kills(dir, *v2))
        .is_some_and(|n| n > 0);
    runc_quiet(args, &["delete", "--force", &target.id]);
    crate::image::release_rootfs(&args.dir);
    let deadline = std::time::Instant::now() + Duration::from_secs(2);
    for _ in 0..readers {
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        if done_rx.recv_timeout(left).is_err() {
            break;
        }
    }
    let rec = ExitRecord {
        exit_code: status.0,
        signal: status.1,
        start_error: None,
        finished_at_ms: state::now_ms(),
        oom_killed,
    };
    state::write_json_atomic(&args.dir.join("exit.json"), &rec)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn runc_errors_come_from_its_json_log() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("runc.log");
        assert_eq!(runc_error(&log, "fallback"), "fallback");
        std::fs::write(
            &log,
            "{\"level\":\"warning\",\"msg\":\"w\"}\n{\"level\":\"error\",\"msg\":\"exec: \\\"nope\\\": executable file not found in $PATH\"}\nnot json\n",
        )
        .unwrap();
        assert_eq!(
            runc_error(&log, "fallback"),
            "exec: \"nope\": executable file not found in $PATH"
        );
    }
}
