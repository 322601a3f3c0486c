//! The shim (`berth shim ...`), like containerd-shim: one per container process. It starts the
//! child in its own session and process group, writes its pid, captures stdout/stderr line by line
//! into `log.jsonl`, forwards SIGTERM (then SIGKILL after the stop timeout) to the child's group,
//! records `exit.json` when the child exits and leaves no process of the group behind. Because the
//! shim, not the agent, is the child's parent, containers survive an agent restart.

use crate::state::{self, ExitRecord};
use nix::sys::signal::{killpg, Signal};
use nix::unistd::Pid;
use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::signal::unix::{signal, Signal as Stream, SignalKind};

/// Longest message of one log event; longer lines are split.
pub const MAX_LINE: usize = 64 * 1024;

/// The shim's command line: `--dir D --exe E --stop-timeout SECS [--cwd C] -- argv...`.
#[derive(Debug, Clone, PartialEq)]
pub struct ShimArgs {
    /// The container directory (child.pid, log.jsonl, exit.json).
    pub dir: PathBuf,
    /// The executable to run.
    pub exe: PathBuf,
    /// Its argv, argv[0] included.
    pub argv: Vec<String>,
    /// Working directory of the child.
    pub cwd: Option<PathBuf>,
    /// SIGTERM-to-SIGKILL grace.
    pub stop_timeout: Duration,
    /// Run a runc container instead of `exe` (which is then the runc binary; argv may be empty).
    pub runc: Option<RuncTarget>,
}

/// The runc container a shim runs: `runc run --detach` of the bundle, wait, `runc delete`.
#[derive(Debug, Clone, PartialEq)]
pub struct RuncTarget {
    pub bundle: PathBuf,
    pub id: String,
}

/// Bad shim arguments.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ShimError {
    #[error("shim: unknown argument {0:?}")]
    Unknown(String),
    #[error("shim: {0} needs a value")]
    MissingValue(&'static str),
    #[error("shim: missing required {0}")]
    Missing(&'static str),
    #[error("shim: --stop-timeout expected seconds (>= 0), found {0:?}")]
    BadTimeout(String),
}

impl ShimArgs {
    /// Parses the arguments that follow `shim`.
    pub fn parse(args: Vec<String>) -> Result<ShimArgs, ShimError> {
        let mut it = args.into_iter();
        let (mut dir, mut exe, mut cwd, mut stop_timeout) = (None, None, None, None);
        let (mut bundle, mut id) = (None, None);
        let mut argv = Vec::new();
        while let Some(arg) = it.next() {
            let mut value = |name: &'static str| it.next().ok_or(ShimError::MissingValue(name));
            match arg.as_str() {
                "--dir" => dir = Some(PathBuf::from(value("--dir")?)),
                "--exe" => exe = Some(PathBuf::from(value("--exe")?)),
                "--cwd" => cwd = Some(PathBuf::from(value("--cwd")?)),
                "--runc-bundle" => bundle = Some(PathBuf::from(value("--runc-bundle")?)),
                "--runc-id" => id = Some(value("--runc-id")?),
                "--stop-timeout" => {
                    let v = value("--stop-timeout")?;
                    let secs: f64 = v.parse().map_err(|_| ShimError::BadTimeout(v.clone()))?;
                    if !(secs.is_finite() && secs >= 0.0) {
                        return Err(ShimError::BadTimeout(v));
                    }
                    stop_timeout = Some(Duration::from_secs_f64(secs));
                }
                "--" => {
                    argv = it.by_ref().collect();
                    break;
                }
                _ => return Err(ShimError::Unknown(arg)),
            }
        }
        let runc = match (bundle, id) {
            (Some(bundle), Some(id)) => Some(RuncTarget { bundle, id }),
            (None, None) => None,
            (Some(_), None) => return Err(ShimError::Missing("--runc-id")),
            (None, Some(_)) => return Err(ShimError::Missing("--runc-bundle")),
        };
        if argv.is_empty() && runc.is_none() {
            return Err(ShimError::Missing("argv after --"));
        }
        Ok(ShimArgs {
            dir: dir.ok_or(ShimError::Missing("--dir"))?,
            exe: exe.ok_or(ShimError::Missing("--exe"))?,
            argv,
            cwd,
            stop_timeout: stop_timeout.unwrap_or(Duration::from_secs(30)),
            runc,
        })
    }

    /// The arguments that `parse` reads back.
    pub fn to_args(&self) -> Vec<String> {
        let mut out = vec![
            "--dir".to_string(),
            self.dir.display().to_string(),
            "--exe".into(),
            self.exe.display().to_string(),
            "--stop-timeout".into(),
            self.stop_timeout.as_secs_f64().to_string(),
        ];
        if let Some(cwd) = &self.cwd {
            out.push("--cwd".into());
            out.push(cwd.display().to_string());
        }
        if let Some(r) = &self.runc {
            out.push("--runc-bundle".into());
            out.push(r.bundle.display().to_string());
            out.push("--runc-id".into());
            out.push(r.id.clone());
        }
        out.push("--".into());
        out.extend(self.argv.iter().cloned());
        out
    }
}

/// Entry point of `berth shim <args...>`; returns the process exit code.
pub fn shim_main(args: Vec<String>) -> i32 {
    let args = match ShimArgs::parse(args) {
        Ok(a) => a,
        Err(e) => {
            eprintln!("{e}");
            return 2;
        }
    };
    let result = match &args.runc {
        Some(target) => crate::shim_runc::run(&args, target),
        None => run_shim(&args),
    };
    match result {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("shim: {e}");
            1
        }
    }
}

fn run_shim(args: &ShimArgs) -> std::io::Result<()> {
    // Own session: the agent's terminal or process group going away does not touch us.
    let _ = nix::unistd::setsid();
    // Signal handlers are registered before the child is spawned (exec resets them in the child).
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
    let mut cmd = std::process::Command::new(&args.exe);
    if let Some((argv0, rest)) = args.argv.split_first() {
        cmd.arg0(argv0).args(rest);
    }
    cmd.process_group(0)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    if let Some(cwd) = &args.cwd {
        cmd.current_dir(cwd);
    }
    let mut child = match cmd.spawn() {
        Ok(c) => c,
        Err(e) => {
            let rec = ExitRecord {
                start_error: Some(format!("{}: {e}", args.exe.display())),
                finished_at_ms: state::now_ms(),
                ..Default::default()
            };
            return state::write_json_atomic(&args.dir.join("exit.json"), &rec);
        }
    };
    let pid = child.id() as i32;
    let group = Pid::from_raw(pid);
    state::write_atomic_unsynced(&args.dir.join("child.pid"), pid.to_string().as_bytes())?;

    let (done_tx, done_rx) = std::sync::mpsc::channel::<()>();
    let mut readers = 0;
    if let Some(out) = child.stdout.take() {
        readers += 1;
        spawn_reader(out, "stdout", log.clone(), done_tx.clone());
    }
    if let Some(err) = child.stderr.take() {
        readers += 1;
        spawn_reader(err, "stderr", log.clone(), done_tx.clone());
    }
    drop(done_tx);

    let mut deadline: Option<tokio::time::Instant> = None;
    let status = runtime.block_on(async {
        let mut poll = tokio::time::interval(Duration::from_millis(100));
        loop {
            if let Some(status) = child.try_wait()? {
                return Ok::<_, std::io::Error>(status);
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
                    let _ = killpg(group, Signal::SIGTERM);
                    deadline = Some(tokio::time::Instant::now() + args.stop_timeout);
                }
                _ = kill_at => {
                    let _ = killpg(group, Signal::SIGKILL);
                    deadline = Some(tokio::time::Instant::now() + Duration::from_secs(3600));
                }
            }
        }
    })?;
    // No orphans: whatever is left of the child's process group goes with it.
    let _ = killpg(group, Signal::SIGKILL);
    // Let the readers drain what the child wrote (bounded: a process that left the group may hold
    // the pipe open).
    let deadline = std::time::Instant::now() + Duration::from_secs(2);
    for _ in 0..readers {
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        if done_rx.recv_timeout(left).is_err() {
            break;
        }
    }
    let rec = ExitRecord {
        exit_code: status.code().or(status.signal().map(|s| 128 + s)),
        signal: status.signal(),
        start_error: None,
        finished_at_ms: state::now_ms(),
        oom_killed: false,
    };
    state::write_json_atomic(&args.dir.join("exit.json"), &rec)
}

/// Completes when any of the signal streams receives a signal.
pub(crate) async fn futures_select_any(signals: &mut [Stream]) {
    std::future::poll_fn(|cx| {
        for s in signals.iter_mut() {
            if s.poll_recv(cx).is_ready() {
                return std::task::Poll::Ready(());
            }
        }
        std::task::Poll::Pending
    })
    .await
}

pub(crate) fn spawn_reader(
    stream: impl Read + Send + 'static,
    name: &'static str,
    log: Arc<Mutex<std::fs::File>>,
    done: std::sync::mpsc::Sender<()>,
) {
    std::thread::spawn(move || {
        let mut reader = BufReader::with_capacity(64 * 1024, stream);
        let mut buf = Vec::new();
        loop {
            buf.clear();
            match reader
                .by_ref()
                .take(MAX_LINE as u64)
                .read_until(b'\n', &mut buf)
            {
                Ok(0) | Err(_) => break,
                Ok(_) => {
                    while matches!(buf.last(), Some(b'\n') | Some(b'\r')) {
                        buf.pop();
                    }
                    let line = serde_json::json!({
                        "t": state::now_ms(),
                        "s": name,
                        "m": String::from_utf8_lossy(&buf),
                    });
                    let mut text = line.to_string();
                    text.push('\n');
                    let mut file = log.lock().unwrap_or_else(|p| p.into_inner());
                    let _ = file.write_all(text.as_bytes());
                }
            }
        }
        let _ = done.send(());
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strings(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn args_round_trip() {
        let a = ShimArgs {
            dir: "/s/t/c".into(),
            exe: "/bin/sh".into(),
            argv: strings(&["sh", "-c", "echo --dir"]),
            cwd: Some("/tmp".into()),
            stop_timeout: Duration::from_millis(2500),
            runc: None,
        };
        assert_eq!(ShimArgs::parse(a.to_args()).unwrap(), a);
        let b = ShimArgs {
            cwd: None,
            stop_timeout: Duration::ZERO,
            ..a
        };
        assert_eq!(ShimArgs::parse(b.to_args()).unwrap(), b);
        let c = ShimArgs {
            argv: vec![],
            runc: Some(RuncTarget {
                bundle: "/s/t/c".into(),
                id: "berth-t-c".into(),
            }),
            ..b
        };
        assert_eq!(ShimArgs::parse(c.to_args()).unwrap(), c);
    }

    #[test]
    fn bad_args_are_refused() {
        let p = |v: &[&str]| ShimArgs::parse(strings(v)).unwrap_err();
        assert_eq!(
            p(&["--dir", "/d", "--exe", "/x"]),
            ShimError::Missing("argv after --")
        );
        assert_eq!(p(&["--exe", "/x", "--", "x"]), ShimError::Missing("--dir"));
        assert_eq!(p(&["--bogus"]), ShimError::Unknown("--bogus".into()));
        assert_eq!(p(&["--dir"]), ShimError::MissingValue("--dir"));
        assert_eq!(
            p(&["--dir", "/d", "--exe", "/x", "--runc-id", "i"]),
            ShimError::Missing("--runc-bundle")
        );
        assert_eq!(
            p(&["--stop-timeout", "-1"]),
            ShimError::BadTimeout("-1".into())
        );
        assert_eq!(
            p(&["--stop-timeout", "soon"]),
            ShimError::BadTimeout("soon".into())
        );
        assert_eq!(shim_main(strings(&["--bogus"])), 2);
    }
}
