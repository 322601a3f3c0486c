//! `berth up`, `berth down` and `berth status`: a single-node cluster of separate processes
//! (server, agent, proxy) started from this binary, found again through `<state-dir>/run/`.

use crate::client::Client;
use crate::config::Global;
use anyhow::{bail, Context};
use serde_json::Value;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const COMPONENTS: [&str; 3] = ["server", "agent", "proxy"];

fn run_dir(g: &Global) -> PathBuf {
    g.state_dir().join("run")
}

/// The pid in `<run>/<name>.pid` if that process is alive and is a berth process.
pub(crate) fn live_pid(g: &Global, name: &str) -> Option<i32> {
    let pid: i32 = std::fs::read_to_string(run_dir(g).join(format!("{name}.pid")))
        .ok()?
        .trim()
        .parse()
        .ok()?;
    is_berth_process(pid).then_some(pid)
}

fn is_berth_process(pid: i32) -> bool {
    let Ok(cmdline) = std::fs::read(format!("/proc/{pid}/cmdline")) else {
        return false;
    };
    let exe = std::fs::read_link(format!("/proc/{pid}/exe")).ok();
    let mine = std::env::current_exe().ok();
    exe.is_some() && exe == mine || String::from_utf8_lossy(&cmdline).contains("berth")
}

fn spawn_component(
    g: &Global,
    name: &str,
    extra: &[&str],
    env: &[(&str, &str)],
) -> anyhow::Result<u32> {
    let exe = std::env::current_exe().context("finding the berth executable")?;
    let dir = run_dir(g);
    std::fs::create_dir_all(&dir)?;
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(dir.join(format!("{name}.log")))?;
    let mut cmd = Command::new(exe);
    cmd.arg(name)
        .arg("--state-dir")
        .arg(g.state_dir())
        .arg("--api-addr")
        .arg(g.api_addr())
        .args(extra)
        .envs(env.iter().copied())
        .stdin(Stdio::null())
        .stdout(log.try_clone()?)
        .stderr(log)
        // Its own process group: Ctrl-C in this terminal reaches `up`, which stops things in order.
        .process_group(0);
    let child = cmd
        .spawn()
        .with_context(|| format!("starting berth {name}"))?;
    Ok(child.id())
}

fn wait_until(what: &str, timeout: Duration, mut ok: impl FnMut() -> bool) -> anyhow::Result<()> {
    let start = Instant::now();
    while start.elapsed() < timeout {
        if ok() {
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    bail!("{what} did not come up within {}s", timeout.as_secs())
}

pub fn up(g: &Global, dir: Option<PathBuf>, detach: bool) -> anyhow::Result<i32> {
    let mut g = g.clone();
    // Pin the address so every component and later command agree on it.
    g.api_addr = Some(g.api_addr());
    let state = g.state_dir();
    std::fs::create_dir_all(&state)
        .with_context(|| format!("creating the state directory {}", state.display()))?;
    // A fresh state directory: the server will create the admin user with a token made here,
    // saved in the user's credentials file and shown once.
    let bootstrap = (!state.join("iam/iam.json").exists() && live_pid(&g, "server").is_none())
        .then(|| {
            g.token
                .clone()
                .filter(|t| !t.is_empty())
                .unwrap_or_else(berth_iam::new_token)
        });
    if let Some(token) = &bootstrap {
        let path = crate::config::credentials::save(&g.api_url(), token)?;
        crate::client::use_token(token.clone());
        eprintln!(
            "created the admin credential for {} (saved in {}; shown only now):\n    {token}",
            g.api_url(),
            path.display()
        );
    }
    let client = Client::new(g.api_url())?;
    for name in COMPONENTS {
        if live_pid(&g, name).is_none() {
            if name == "server" && client.healthy() {
                bail!("something else already answers on {}; pass --api-addr to choose another address", g.api_url());
            }
            let env: Vec<(&str, &str)> = match (&bootstrap, name) {
                (Some(t), "server") => vec![("BERTH_BOOTSTRAP_TOKEN", t.as_str())],
                _ => vec![],
            };
            spawn_component(&g, name, &[], &env)?;
            eprintln!(
                "started berth {name} (log: {})",
                run_dir(&g).join(format!("{name}.log")).display()
            );
        } else {
            eprintln!("berth {name} is already running");
        }
        if name == "server" {
            wait_until("the server", Duration::from_secs(15), || client.healthy())?;
        }
    }
    let stack = crate::cmd_apply::stack_path(dir);
    if stack.exists() {
        eprintln!("applying {}", stack.display());
        crate::cmd_apply::apply(&g, Some(stack), true)?;
    } else {
        eprintln!(
            "no stack file at {}; apply one later with `berth apply FILE`",
            stack.display()
        );
    }
    print_endpoints(&g, &client)?;
    if detach {
        return Ok(0);
    }
    eprintln!("\nwatching (Ctrl-C stops the cluster; `berth up -d` leaves it running)\n");
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let interrupted = rt.block_on(async {
        loop {
            let _ = summary(&g, &client);
            tokio::select! {
                _ = tokio::signal::ctrl_c() => return true,
                _ = crate::components::termination() => return true,
                _ = tokio::time::sleep(Duration::from_secs(2)) => {}
            }
        }
    });
    if interrupted {
        eprintln!("\nstopping…");
        down(&g)?;
    }
    Ok(0)
}

fn print_endpoints(g: &Global, client: &Client) -> anyhow::Result<()> {
    wait_until("the proxy", Duration::from_secs(5), || {
        client
            .get("/berth/v1/status")
            .map(|s| {
                s["components"]["proxies"]
                    .as_array()
                    .is_some_and(|p| !p.is_empty())
            })
            .unwrap_or(false)
    })
    .ok();
    let st = client.get("/berth/v1/status")?;
    println!(
        "API:        {}   (aws ... --endpoint-url {})",
        g.api_url(),
        g.api_url()
    );
    for l in st["listeners"].as_array().into_iter().flatten() {
        println!("Listener:   http://{}", l["bind"].as_str().unwrap_or("-"));
    }
    if let Some(d) = st["dashboard"].as_str().filter(|d| !d.is_empty()) {
        println!("Dashboard:  {d}");
    }
    println!("State:      {}", g.state_dir().display());
    Ok(())
}

fn summary(g: &Global, client: &Client) -> anyhow::Result<()> {
    let svcs = crate::cmd_ecs::all_services(client, &g.cluster)?;
    let line: Vec<String> = svcs
        .iter()
        .map(|s| {
            format!(
                "{} {}/{}{}",
                s["serviceName"].as_str().unwrap_or("-"),
                s["runningCount"],
                s["desiredCount"],
                if s["deployments"].as_array().map(|d| d.len()).unwrap_or(0) > 1 {
                    " (deploying)"
                } else {
                    ""
                }
            )
        })
        .collect();
    let now = berth_model::now() as u64;
    eprintln!(
        "[{:02}:{:02}:{:02}] {}",
        (now / 3600) % 24,
        (now / 60) % 60,
        now % 60,
        if line.is_empty() {
            "no services".into()
        } else {
            line.join("  ")
        }
    );
    Ok(())
}

fn signal(pid: i32, sig: nix::sys::signal::Signal) {
    let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), sig);
}

fn wait_gone(pid: i32, timeout: Duration) -> bool {
    let start = Instant::now();
    while start.elapsed() < timeout {
        if !Path::new(&format!("/proc/{pid}")).exists() || is_zombie(pid) {
            return true;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    false
}

fn is_zombie(pid: i32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .map(|s| {
            s.rsplit(')')
                .next()
                .is_some_and(|rest| rest.trim_start().starts_with('Z'))
        })
        .unwrap_or(true)
}

/// Shim pids of every task the agent runs (from each container's `shim.json`).
fn shim_pids(g: &Global) -> Vec<i32> {
    let mut out = Vec::new();
    let Ok(tasks) = std::fs::read_dir(g.state_dir().join("agent/tasks")) else {
        return out;
    };
    for t in tasks.flatten() {
        let Ok(containers) = std::fs::read_dir(t.path()) else {
            continue;
        };
        for c in containers.flatten() {
            let Ok(text) = std::fs::read_to_string(c.path().join("shim.json")) else {
                continue;
            };
            let pid = serde_json::from_str::<Value>(&text)
                .ok()
                .and_then(|v| v["shim_pid"].as_i64());
            if let Some(pid) = pid.and_then(|p| i32::try_from(p).ok()) {
                if is_berth_process(pid) {
                    out.push(pid);
                }
            }
        }
    }
    out
}

pub fn down(g: &Global) -> anyhow::Result<i32> {
    use nix::sys::signal::Signal::{SIGKILL, SIGTERM};
    // The server first (no new tasks get scheduled), then agent and proxy, then the tasks.
    for name in COMPONENTS {
        if let Some(pid) = live_pid(g, name) {
            signal(pid, SIGTERM);
            if !wait_gone(pid, Duration::from_secs(10)) {
                signal(pid, SIGKILL);
                wait_gone(pid, Duration::from_secs(2));
            }
            eprintln!("stopped berth {name}");
        }
        let _ = std::fs::remove_file(run_dir(g).join(format!("{name}.pid")));
    }
    let shims = shim_pids(g);
    for &pid in &shims {
        signal(pid, SIGTERM);
    }
    for &pid in &shims {
        // The shim itself escalates to SIGKILL after the container's stopTimeout.
        if !wait_gone(pid, Duration::from_secs(130)) {
            signal(pid, SIGKILL);
        }
    }
    if !shims.is_empty() {
        eprintln!("stopped {} task containers", shims.len());
    }
    // With the agent gone, nobody else removes the stopped tasks' namespaces and veths.
    let networks = berth_agent::release_leftovers(&g.state_dir().join("agent"));
    if networks > 0 {
        eprintln!("removed {networks} task networks");
    }
    let _ = std::fs::remove_file(g.addr_file());
    Ok(0)
}

pub fn status(g: &Global) -> anyhow::Result<i32> {
    let client = Client::new(g.api_url())?;
    let st: Value = client.get("/berth/v1/status")?;
    if g.json() {
        crate::output::json(&st);
        return Ok(0);
    }
    println!("server   healthy  {}", st["api"].as_str().unwrap_or("-"));
    for a in st["components"]["agents"].as_array().into_iter().flatten() {
        println!(
            "agent    {}  node {}",
            if a["healthy"] == true {
                "healthy"
            } else {
                "stale  "
            },
            a["id"].as_str().unwrap_or("-")
        );
    }
    for p in st["components"]["proxies"].as_array().into_iter().flatten() {
        println!(
            "proxy    {}  {} (config v{})",
            if p["healthy"] == true {
                "healthy"
            } else {
                "stale  "
            },
            p["id"].as_str().unwrap_or("-"),
            p["configVersion"]
        );
    }
    for l in st["listeners"].as_array().into_iter().flatten() {
        println!("listener http://{}", l["bind"].as_str().unwrap_or("-"));
    }
    Ok(0)
}
