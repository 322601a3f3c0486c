//! Task networking, awsvpc-like: every runc task gets a network namespace of its own
//! (`berth-<id8>`), a veth pair into the `berth0` bridge (10.88.0.1/16 on the host) and an address
//! from 10.88.0.0/16. Addresses are recorded in `<state>/network/ips.json` so they survive agent
//! restarts. Setup and teardown speak rtnetlink directly (`netlink`), no `ip` command per task.

use crate::netlink::{link_index, Netlink};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
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
    #[error("{operation} failed: {message}")]
    Netlink { operation: String, message: String },
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
        PathBuf::from(NETNS_DIR).join(&self.netns)
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

/// Addresses of 10.88.0.0/16 handed to tasks, persisted in one file. The bridge is shared by
/// every agent on the host (several state directories, e.g. test clusters), so each address is
/// also claimed host-wide: an empty file named after it under `/run/berth/addresses`, made with
/// `O_EXCL`, gone at reboot with the namespaces themselves.
pub struct IpAllocator {
    path: PathBuf,
    inner: Mutex<Allocations>,
    /// Where host-wide claims live (None: no claims, for tests of the allocation order).
    claims: Option<PathBuf>,
}

/// The host-wide claims directory.
pub const CLAIMS_DIR: &str = "/run/berth/addresses";

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
            claims: Some(PathBuf::from(CLAIMS_DIR)),
        }
    }

    /// Like `load`, with the host-wide claims kept in `claims` (None: none).
    pub fn load_with_claims(path: impl Into<PathBuf>, claims: Option<PathBuf>) -> IpAllocator {
        IpAllocator {
            claims,
            ..Self::load(path)
        }
    }

    /// Claims `ip` host-wide; false when another allocator holds it. Without a usable claims
    /// directory every address counts as free.
    fn claim(&self, ip: Ipv4Addr, owner: &str) -> bool {
        use std::io::Write;
        let Some(dir) = &self.claims else {
            return true;
        };
        if std::fs::create_dir_all(dir).is_err() {
            return true;
        }
        match std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(dir.join(ip.to_string()))
        {
            Ok(mut f) => {
                let _ = writeln!(f, "{owner}");
                true
            }
            Err(e) => e.kind() != std::io::ErrorKind::AlreadyExists,
        }
    }

    /// Where a new allocator starts looking: 10.88.0.2, or with host-wide claims a random
    /// address, so addresses held by namespaces nobody claimed (left by an older agent) are
    /// unlikely to be met.
    fn first_candidate(&self) -> u32 {
        use std::hash::{BuildHasher, Hasher};
        if self.claims.is_none() {
            return FIRST;
        }
        let random = std::collections::hash_map::RandomState::new()
            .build_hasher()
            .finish();
        FIRST + (random % u64::from(LAST - FIRST + 1)) as u32
    }

    fn unclaim(&self, ip: Ipv4Addr) {
        if let Some(dir) = &self.claims {
            let _ = std::fs::remove_file(dir.join(ip.to_string()));
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
        crate::state::write_json_unsynced(&self.path, a).map_err(err)
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
            .unwrap_or_else(|| self.first_candidate());
        let span = LAST - FIRST + 1;
        let owner = format!("{} {task_id}", self.path.display());
        let found = (0..span)
            .map(|i| FIRST + (start - FIRST + i) % span)
            .find(|c| {
                !used.contains(c)
                    && (c & 0xff) != 0
                    && (c & 0xff) != 0xff
                    && self.claim(Ipv4Addr::from(*c), &owner)
            })
            .ok_or(NetworkError::Exhausted)?;
        let ip = Ipv4Addr::from(found);
        a.by_task.insert(task_id.to_string(), ip);
        a.last = Some(ip);
        if let Err(e) = self.save(&a) {
            a.by_task.remove(task_id);
            self.unclaim(ip);
            return Err(e);
        }
        Ok(ip)
    }

    /// Frees the task's address.
    pub fn release(&self, task_id: &str) {
        let mut a = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(ip) = a.by_task.remove(task_id) {
            self.unclaim(ip);
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

fn netlink_err(operation: impl Into<String>) -> impl FnOnce(std::io::Error) -> NetworkError {
    let operation = operation.into();
    move |e| NetworkError::Netlink {
        operation,
        message: e.to_string(),
    }
}

/// Creates the `berth0` bridge with 10.88.0.1/16 when missing, brings it up and enables
/// forwarding on it (only on it). Returns its link index.
fn ensure_bridge_with(host: &mut Netlink) -> Result<u32, NetworkError> {
    if link_index(BRIDGE).is_none() {
        match host.add_link(BRIDGE, "bridge") {
            // Another agent may have made it meanwhile.
            Err(e) if e.raw_os_error() != Some(libc::EEXIST) => {
                return Err(netlink_err(format!("creating the bridge {BRIDGE}"))(e))
            }
            _ => {}
        }
    }
    let index = link_index(BRIDGE).ok_or_else(|| NetworkError::Netlink {
        operation: format!("finding the bridge {BRIDGE}"),
        message: "no such device".into(),
    })?;
    match host.add_address(index, GATEWAY, PREFIX_LEN) {
        Err(e) if e.raw_os_error() != Some(libc::EEXIST) => {
            return Err(netlink_err(format!(
                "adding {GATEWAY}/{PREFIX_LEN} to {BRIDGE}"
            ))(e))
        }
        _ => {}
    }
    host.set_up(index)
        .map_err(netlink_err(format!("bringing {BRIDGE} up")))?;
    let forwarding = Path::new("/proc/sys/net/ipv4/conf")
        .join(BRIDGE)
        .join("forwarding");
    if let Err(e) = std::fs::write(&forwarding, b"1") {
        tracing::warn!(path = %forwarding.display(), error = %e, "cannot enable forwarding on the bridge");
    }
    Ok(index)
}

/// Creates the `berth0` bridge with 10.88.0.1/16 when missing, brings it up and enables
/// forwarding on it (only on it).
pub fn ensure_bridge() -> Result<(), NetworkError> {
    let mut host = Netlink::open().map_err(netlink_err("opening a netlink socket"))?;
    ensure_bridge_with(&mut host).map(|_| ())
}

/// Where named namespaces are bind-mounted (as `ip netns` does).
const NETNS_DIR: &str = "/var/run/netns";

/// Makes the namespace directory a shared mount, as `ip netns add` does, so that unmounting a
/// namespace here also unmounts the copies in mount namespaces made since (containers'), and the
/// namespace really goes away.
fn prepare_netns_dir() -> Result<(), NetworkError> {
    use nix::mount::{mount, MsFlags};
    static ONCE: Mutex<bool> = Mutex::new(false);
    let mut done = ONCE.lock().unwrap_or_else(|p| p.into_inner());
    if *done {
        return Ok(());
    }
    let err = |what: &str, e: nix::Error| NetworkError::Netlink {
        operation: format!("{what} {NETNS_DIR}"),
        message: e.desc().to_string(),
    };
    std::fs::create_dir_all(NETNS_DIR).map_err(netlink_err(format!("creating {NETNS_DIR}")))?;
    let shared = || {
        mount(
            None::<&str>,
            NETNS_DIR,
            Some("none"),
            MsFlags::MS_SHARED | MsFlags::MS_REC,
            None::<&str>,
        )
    };
    if let Err(e) = shared() {
        if e != nix::Error::EINVAL {
            return Err(err("making shared", e));
        }
        // Not a mount point yet: bind it onto itself first.
        mount(
            Some(NETNS_DIR),
            NETNS_DIR,
            Some("none"),
            MsFlags::MS_BIND | MsFlags::MS_REC,
            None::<&str>,
        )
        .map_err(|e| err("bind-mounting", e))?;
        shared().map_err(|e| err("making shared", e))?;
    }
    *done = true;
    Ok(())
}

/// Creates the task's namespace and veth pair (replacing leftovers of an earlier try), with the
/// address on `eth0`, `lo` up and a default route via the bridge. Uses netlink directly; the
/// namespace is made by a short-lived thread of its own (`unshare` changes only the calling
/// thread's namespace), which also configures the inside.
pub fn setup_task(net: &TaskNetwork) -> Result<(), NetworkError> {
    let owned = net.clone();
    let thread = std::thread::Builder::new()
        .name("berth-netns".into())
        .spawn(move || setup_in_own_thread(&owned))
        .map_err(netlink_err("starting the namespace thread"))?;
    thread.join().unwrap_or_else(|_| {
        Err(NetworkError::Netlink {
            operation: "setting up the task network".into(),
            message: "the namespace thread panicked".into(),
        })
    })
}

/// The body of `setup_task`; leaves the calling thread in the task's namespace.
fn setup_in_own_thread(net: &TaskNetwork) -> Result<(), NetworkError> {
    use std::os::fd::AsRawFd;
    let mut host = Netlink::open().map_err(netlink_err("opening a netlink socket"))?;
    let bridge = ensure_bridge_with(&mut host)?;
    teardown_with(&mut host, net);
    prepare_netns_dir()?;
    let path = net.netns_path();
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&path)
        .map_err(netlink_err(format!("creating {}", path.display())))?;
    let result = (|| {
        let nix_err = |what: String| {
            move |e: nix::Error| NetworkError::Netlink {
                operation: what,
                message: e.desc().to_string(),
            }
        };
        nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWNET)
            .map_err(nix_err("creating a network namespace".into()))?;
        nix::mount::mount(
            Some("/proc/thread-self/ns/net"),
            &path,
            Some("none"),
            nix::mount::MsFlags::MS_BIND,
            None::<&str>,
        )
        .map_err(nix_err(format!(
            "bind-mounting the namespace at {}",
            path.display()
        )))?;
        let ns = std::fs::File::open(&path)
            .map_err(netlink_err(format!("opening {}", path.display())))?;
        host.add_veth(&net.veth, bridge, "eth0", ns.as_raw_fd())
            .map_err(netlink_err(format!(
                "creating the veth pair {}/eth0",
                net.veth
            )))?;
        // From here on the socket and the interface lookups are inside the namespace.
        let mut inside = Netlink::open().map_err(netlink_err("opening a netlink socket"))?;
        let index = |name: &str| {
            link_index(name).ok_or_else(|| NetworkError::Netlink {
                operation: format!("finding {name} in {}", net.netns),
                message: "no such device".into(),
            })
        };
        let (lo, eth0) = (index("lo")?, index("eth0")?);
        inside
            .add_address(eth0, net.ip, PREFIX_LEN)
            .map_err(netlink_err(format!(
                "adding {}/{PREFIX_LEN} to eth0",
                net.ip
            )))?;
        inside
            .set_up(eth0)
            .map_err(netlink_err("bringing eth0 up"))?;
        inside.set_up(lo).map_err(netlink_err("bringing lo up"))?;
        inside
            .add_default_route(GATEWAY)
            .map_err(netlink_err(format!(
                "adding the default route via {GATEWAY}"
            )))?;
        Ok(())
    })();
    if result.is_err() {
        teardown_with(&mut host, net);
    }
    result
}

/// Removes the task's namespace (its end of the veth pair goes with it) and the host end if left.
pub fn teardown_task(net: &TaskNetwork) {
    match Netlink::open() {
        Ok(mut host) => teardown_with(&mut host, net),
        Err(error) => {
            tracing::warn!(%error, "cannot open a netlink socket to remove a task network")
        }
    }
}

fn teardown_with(host: &mut Netlink, net: &TaskNetwork) {
    // Deleting the host end deletes the pair at once; the namespace itself may be freed later.
    if let Err(e) = host.delete_link(&net.veth) {
        if e.raw_os_error() != Some(libc::ENODEV) {
            tracing::warn!(veth = %net.veth, error = %e, "cannot delete a task's veth");
        }
    }
    let path = net.netns_path();
    let _ = nix::mount::umount2(&path, nix::mount::MntFlags::MNT_DETACH);
    if let Err(e) = std::fs::remove_file(&path) {
        if e.kind() != std::io::ErrorKind::NotFound {
            tracing::warn!(path = %path.display(), error = %e, "cannot remove a task's namespace");
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn addresses_are_distinct_persisted_and_not_reused_at_once() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("network/ips.json");
        let alloc = IpAllocator::load_with_claims(&path, None);
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
        let again = IpAllocator::load_with_claims(&path, None);
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
        let alloc = IpAllocator::load_with_claims(dir.path().join("ips.json"), None);
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
        let alloc = IpAllocator::load_with_claims(file.join("ips.json"), None);
        assert!(matches!(
            alloc.allocate("t"),
            Err(NetworkError::Persist { .. })
        ));
        assert_eq!(alloc.get("t"), None);
    }

    #[test]
    fn agents_sharing_the_host_never_share_an_address() {
        let dir = tempfile::tempdir().unwrap();
        let claims = Some(dir.path().join("claims"));
        let a = IpAllocator::load_with_claims(dir.path().join("a/ips.json"), claims.clone());
        let b = IpAllocator::load_with_claims(dir.path().join("b/ips.json"), claims.clone());
        // Both start at the same place (as two fresh agents could).
        a.inner.lock().unwrap().last = Some(Ipv4Addr::new(10, 88, 0, 9));
        b.inner.lock().unwrap().last = Some(Ipv4Addr::new(10, 88, 0, 9));
        let mut seen = std::collections::BTreeSet::new();
        for i in 0..20 {
            assert!(seen.insert(a.allocate(&format!("a{i}")).unwrap()));
            assert!(seen.insert(b.allocate(&format!("b{i}")).unwrap()));
        }
        // A released address is claimable again.
        let ip = a.get("a0").unwrap();
        a.release("a0");
        assert!(!dir.path().join("claims").join(ip.to_string()).exists());
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
