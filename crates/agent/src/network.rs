//! Task networking, awsvpc-like: every runc task gets a network namespace of its own
//! (`berth-<id8>`), a veth pair into the `berth0` bridge (10.88.0.1/16 on the host) and an address
//! from 10.88.0.0/16. Addresses are recorded in `<state>/network/ips.json` so they survive agent
//! restarts. Setup and teardown use the `ip` command (iproute2).

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Mutex;

/// The bridge every task's veth is attached to.
pub const BRIDGE: &str = "berth0";
/// The bridge's (host side) address, the tasks' default gateway.
pub const GATEWAY: Ipv4Addr = Ipv4Addr::new(10, 88, 0, 1);
/// Prefix length of the task subnet 10.88.0.0/16.
pub const PREFIX_LEN: u8 = 16;

/// Why a task's network could not be set up.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum NetworkError {
    #[error("no free address left in 10.88.0.0/16")]
    Exhausted,
    #[error("`{command}` failed: {message}")]
    Command { command: String, message: String },
    #[error("cannot record addresses in {path}: {message}")]
    Persist { path: String, message: String },
}

/// A task's network as set up on this host (recorded in the task directory as `network.json`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TaskNetwork {
    pub ip: Ipv4Addr,
    /// `berth-<id8>`.
    pub netns: String,
    /// The host end of the veth pair.
    pub veth: String,
}

impl TaskNetwork {
    /// The namespace's bind-mount path, which the runtime spec joins.
    pub fn netns_path(&self) -> PathBuf {
        PathBuf::from("/var/run/netns").join(&self.netns)
    }
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct Allocations {
    /// task id → address.
    by_task: BTreeMap<String, Ipv4Addr>,
    /// The last address handed out; the next search starts after it, so addresses are not reused
    /// at once.
    last: Option<Ipv4Addr>,
}

/// Addresses of 10.88.0.0/16 handed to tasks, persisted in one file.
pub struct IpAllocator {
    path: PathBuf,
    inner: Mutex<Allocations>,
}

const FIRST: u32 = u32::from_be_bytes([10, 88, 0, 2]);
const LAST: u32 = u32::from_be_bytes([10, 88, 255, 254]);

impl IpAllocator {
    /// Loads the allocations recorded at `path` (none when the file does not exist).
    pub fn load(path: impl Into<PathBuf>) -> IpAllocator {
        let path = path.into();
        let mut inner = crate::state::read_json::<Allocations>(&path)
            .ok()
            .flatten()
            .unwrap_or_default();
        if inner.last.is_none() {
            // A new state directory starts at an address of its own (from a hash of its path), so
            // agents of several state directories on one host (test clusters) rarely hand out the
            // same address, nor one a namespace left behind by a killed agent still holds.
            let mut h: u32 = 0x811c_9dc5;
            for b in path.to_string_lossy().bytes() {
                h ^= u32::from(b);
                h = h.wrapping_mul(0x0100_0193);
            }
            inner.last = Some(Ipv4Addr::from(FIRST + h % (LAST - FIRST)));
        }
        IpAllocator {
            path,
            inner: Mutex::new(inner),
        }
    }

    fn save(&self, a: &Allocations) -> Result<(), NetworkError> {
        let err = |e: std::io::Error| NetworkError::Persist {
            path: self.path.display().to_string(),
            message: e.to_string(),
        };
        if let Some(dir) = self.path.parent() {
            std::fs::create_dir_all(dir).map_err(err)?;
        }
        crate::state::write_json_atomic(&self.path, a).map_err(err)
    }

    /// The task's address: the one it already has, else the next free one (recorded before it is
    /// returned).
    pub fn allocate(&self, task_id: &str) -> Result<Ipv4Addr, NetworkError> {
        let mut a = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(ip) = a.by_task.get(task_id) {
            return Ok(*ip);
        }
        let used: std::collections::BTreeSet<u32> =
            a.by_task.values().map(|ip| u32::from(*ip)).collect();
        let start = a
            .last
            .map(u32::from)
            .filter(|l| (FIRST..=LAST).contains(l))
            .map(|l| l + 1)
            .unwrap_or(FIRST);
        let span = LAST - FIRST + 1;
        let found = (0..span)
            .map(|i| FIRST + (start - FIRST + i) % span)
            .find(|c| !used.contains(c) && (c & 0xff) != 0 && (c & 0xff) != 0xff)
            .ok_or(NetworkError::Exhausted)?;
        let ip = Ipv4Addr::from(found);
        a.by_task.insert(task_id.to_string(), ip);
        a.last = Some(ip);
        if let Err(e) = self.save(&a) {
            a.by_task.remove(task_id);
            return Err(e);
        }
        Ok(ip)
    }

    /// Frees the task's address.
    pub fn release(&self, task_id: &str) {
        let mut a = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        if a.by_task.remove(task_id).is_some() {
            if let Err(error) = self.save(&a) {
                tracing::warn!(%error, "cannot record a released address");
            }
        }
    }

    /// The address recorded for a task.
    pub fn get(&self, task_id: &str) -> Option<Ipv4Addr> {
        self.inner
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .by_task
            .get(task_id)
            .copied()
    }
}

/// Eight characters naming a task in interface and namespace names: the id's first eight when it
/// is a hex id (as ECS task ids are), else a hash of it.
pub fn short_id(task_id: &str) -> String {
    if task_id.len() >= 8
        && task_id[..8]
            .bytes()
            .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
    {
        return task_id[..8].to_string();
    }
    // FNV-1a, 32 bits.
    let mut h: u32 = 0x811c_9dc5;
    for b in task_id.bytes() {
        h ^= u32::from(b);
        h = h.wrapping_mul(0x0100_0193);
    }
    format!("{h:08x}")
}

/// The names a task's network gets.
pub fn task_names(task_id: &str, ip: Ipv4Addr) -> TaskNetwork {
    let id8 = short_id(task_id);
    TaskNetwork {
        ip,
        netns: format!("berth-{id8}"),
        veth: format!("vb-{id8}"),
    }
}

fn run_ip(args: &[&str], stdin: Option<&str>) -> Result<String, NetworkError> {
    use std::io::Write;
    let command = format!("ip {}", args.join(" "));
    let mut cmd = Command::new("ip");
    cmd.args(args)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .stdin(if stdin.is_some() {
            std::process::Stdio::piped()
        } else {
            std::process::Stdio::null()
        });
    let fail = |message: String| NetworkError::Command {
        command: command.clone(),
        message,
    };
    let mut child = cmd.spawn().map_err(|e| fail(e.to_string()))?;
    if let (Some(text), Some(mut input)) = (stdin, child.stdin.take()) {
        input
            .write_all(text.as_bytes())
            .map_err(|e| fail(e.to_string()))?;
    }
    let out = child.wait_with_output().map_err(|e| fail(e.to_string()))?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        Err(fail(format!(
            "{}: {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        )))
    }
}

/// Creates the `berth0` bridge with 10.88.0.1/16 when missing, brings it up and enables
/// forwarding on it (only on it).
pub fn ensure_bridge() -> Result<(), NetworkError> {
    if run_ip(&["link", "show", BRIDGE], None).is_err() {
        if let Err(e) = run_ip(&["link", "add", BRIDGE, "type", "bridge"], None) {
            // Another agent may have made it meanwhile.
            if run_ip(&["link", "show", BRIDGE], None).is_err() {
                return Err(e);
            }
        }
    }
    let cidr = format!("{GATEWAY}/{PREFIX_LEN}");
    let addrs = run_ip(&["-4", "addr", "show", "dev", BRIDGE], None)?;
    if !addrs.contains(&format!("inet {cidr}")) {
        run_ip(&["addr", "add", &cidr, "dev", BRIDGE], None)?;
    }
    run_ip(&["link", "set", BRIDGE, "up"], None)?;
    let forwarding = Path::new("/proc/sys/net/ipv4/conf")
        .join(BRIDGE)
        .join("forwarding");
    if let Err(e) = std::fs::write(&forwarding, b"1") {
        tracing::warn!(path = %forwarding.display(), error = %e, "cannot enable forwarding on the bridge");
    }
    Ok(())
}

/// Creates the task's namespace and veth pair (replacing leftovers of an earlier try), with the
/// address on `eth0`, `lo` up and a default route via the bridge.
pub fn setup_task(net: &TaskNetwork) -> Result<(), NetworkError> {
    ensure_bridge()?;
    teardown_task(net);
    run_ip(&["netns", "add", &net.netns], None)?;
    let result = (|| {
        let host = format!(
            "link add {veth} type veth peer name eth0 netns {ns}\nlink set {veth} master {BRIDGE}\nlink set {veth} up\n",
            veth = net.veth,
            ns = net.netns
        );
        run_ip(&["-batch", "-"], Some(&host))?;
        let inside = format!(
            "addr add {ip}/{PREFIX_LEN} dev eth0\nlink set eth0 up\nlink set lo up\nroute add default via {GATEWAY}\n",
            ip = net.ip
        );
        run_ip(&["-n", &net.netns, "-batch", "-"], Some(&inside))?;
        Ok(())
    })();
    if result.is_err() {
        teardown_task(net);
    }
    result
}

/// Removes the task's namespace (its end of the veth pair goes with it) and the host end if left.
pub fn teardown_task(net: &TaskNetwork) {
    let _ = run_ip(&["netns", "del", &net.netns], None);
    let _ = run_ip(&["link", "del", &net.veth], None);
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn addresses_are_distinct_persisted_and_not_reused_at_once() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("network/ips.json");
        let alloc = IpAllocator::load(&path);
        alloc.inner.lock().unwrap().last = None;
        let a = alloc.allocate("task-a").unwrap();
        let b = alloc.allocate("task-b").unwrap();
        assert_eq!(a, Ipv4Addr::new(10, 88, 0, 2));
        assert_eq!(b, Ipv4Addr::new(10, 88, 0, 3));
        assert_eq!(alloc.allocate("task-a").unwrap(), a, "idempotent per task");
        alloc.release("task-a");
        let c = alloc.allocate("task-c").unwrap();
        assert_eq!(
            c,
            Ipv4Addr::new(10, 88, 0, 4),
            "a freed address is not handed out at once"
        );
        // A restarted agent sees the same allocations and continues after the last one.
        let again = IpAllocator::load(&path);
        assert_eq!(again.get("task-b"), Some(b));
        assert_eq!(again.get("task-a"), None);
        assert_eq!(
            again.allocate("task-d").unwrap(),
            Ipv4Addr::new(10, 88, 0, 5)
        );
    }

    #[test]
    fn allocation_skips_network_and_broadcast_like_addresses_and_wraps() {
        let dir = tempfile::tempdir().unwrap();
        let alloc = IpAllocator::load(dir.path().join("ips.json"));
        alloc.inner.lock().unwrap().last = Some(Ipv4Addr::new(10, 88, 0, 254));
        assert_eq!(alloc.allocate("x").unwrap(), Ipv4Addr::new(10, 88, 1, 1));
        alloc.inner.lock().unwrap().last = Some(Ipv4Addr::new(10, 88, 255, 254));
        assert_eq!(
            alloc.allocate("y").unwrap(),
            Ipv4Addr::new(10, 88, 0, 2),
            "wraps around"
        );
    }

    #[test]
    fn new_state_directories_start_at_different_addresses() {
        let dir = tempfile::tempdir().unwrap();
        let one = IpAllocator::load(dir.path().join("one/ips.json"));
        let two = IpAllocator::load(dir.path().join("two/ips.json"));
        let (a, b) = (one.allocate("t").unwrap(), two.allocate("t").unwrap());
        assert_ne!(a, b);
        for ip in [a, b] {
            assert!((FIRST..=LAST).contains(&u32::from(ip)), "{ip}");
        }
    }

    #[test]
    fn unwritable_state_fails_and_allocates_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("file");
        std::fs::write(&file, b"x").unwrap();
        let alloc = IpAllocator::load(file.join("ips.json"));
        assert!(matches!(
            alloc.allocate("t"),
            Err(NetworkError::Persist { .. })
        ));
        assert_eq!(alloc.get("t"), None);
    }

    #[test]
    fn names_fit_interface_limits() {
        assert_eq!(short_id("0123abcd99887766"), "0123abcd");
        let odd = short_id("t-runc-hello");
        assert_eq!(odd.len(), 8);
        assert_ne!(odd, short_id("t-runc-hellp"));
        let n = task_names("t-runc-hello", Ipv4Addr::new(10, 88, 0, 9));
        assert!(n.veth.len() <= 15 && n.netns.starts_with("berth-"));
        assert_eq!(
            n.netns_path(),
            PathBuf::from(format!("/var/run/netns/{}", n.netns))
        );
    }
}
