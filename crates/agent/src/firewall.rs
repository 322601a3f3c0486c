//! Task isolation: security-group-like filtering of traffic between awsvpc tasks on the `berth0`
//! bridge, with an nftables table of the `bridge` family (no `br_netfilter` needed).
//!
//! A task of service S accepts bridged traffic from tasks of S itself, and from tasks of another
//! service T only on the ports S's ingress rules open for T (TCP and UDP); every other frame
//! from another task is dropped (ARP passes). The host and the proxy reach tasks through the
//! bridge's own address (routed, the bridge's output hook), which the table does not touch. A
//! standalone task (RunTask) is a group of its own.
//!
//! The kernel here has no bridge connection tracking, so replies are allowed statelessly: when S
//! opens port P to T, frames from S's tasks to T's tasks with source port P pass, for TCP only
//! when they are not a bare SYN (so S cannot open connections to T from port P).
//!
//! Frames the host itself sends to a task (the bridge's output hook) pass unless they carry another
//! task's address: a task routing through the host cannot get around the rules.
//!
//! Each agent owns one table, `bridge berth_<8 hex of its state directory>`; several agents on one
//! host (test clusters) keep out of each other's way. Its chains refer to named sets of bridge
//! ports (one per service, one of standalone tasks, one of all tasks): a task that joins or
//! leaves a service already present, and any standalone task, only adds or deletes set elements
//! (a small `nft` transaction of a few milliseconds); a new service or new rules rewrite the
//! table atomically. A gone task stops being a member at once, but its port's name leaves the sets
//! only once tasks stop coming and going for a second (deleting elements costs the kernel an RCU
//! grace period, which a task start should not wait for). The table stays, with empty sets, while the agent runs; tables of agents
//! whose state directory is gone are removed when an agent starts.

use crate::network::{GATEWAY, PREFIX_LEN};
use berth_model::ecs::{IngressRule, PortRange};
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// One awsvpc task as the firewall sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Member {
    /// The host end of the task's veth pair (its bridge port).
    pub veth: String,
    /// The task's service; `None` for a standalone task.
    pub service: Option<String>,
    /// Its service's ingress rules.
    pub ingress: Vec<IngressRule>,
}

/// The table name of the agent whose state directory is `state_dir`.
pub fn table_name(state_dir: &Path) -> String {
    let mut h: u32 = 0x811c_9dc5;
    for b in state_dir.to_string_lossy().bytes() {
        h ^= u32::from(b);
        h = h.wrapping_mul(0x0100_0193);
    }
    format!("berth_{h:08x}")
}

/// The set of the bridge ports of every standalone task: nothing bridged reaches them.
const SOLO: &str = "standalone";
/// The set of every task's bridge port.
const ALL: &str = "tasks";

fn quoted(names: &BTreeSet<String>) -> String {
    let quoted: Vec<String> = names.iter().map(|n| format!("\"{n}\"")).collect();
    format!("{{ {} }}", quoted.join(", "))
}

fn ports(ranges: &BTreeSet<PortRange>) -> String {
    let list: Vec<String> = ranges.iter().map(|p| p.to_string()).collect();
    format!("{{ {} }}", list.join(", "))
}

/// What the table holds: its chains, which depend only on the services that have tasks here and
/// their rules, and the elements of its sets (the tasks' bridge ports), which change with every
/// task. A task of a service already present, or a standalone task, changes only elements: a
/// few set elements added in one small transaction instead of the table rewritten.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    /// The chains, in nft syntax (inside the table block).
    chains: String,
    /// Set name → bridge ports. Always has `tasks` and `standalone`, and `m_<i>` per service.
    sets: BTreeMap<String, BTreeSet<String>>,
}

/// The plan that filters between `members` (task id → member).
pub fn plan(members: &BTreeMap<String, Member>) -> Plan {
    // Service → its tasks' bridge ports and the union of its members' rules (members of one
    // service differ only while an update reaches them).
    let mut ports_of: BTreeMap<&str, BTreeSet<String>> = BTreeMap::new();
    let mut allowed: BTreeMap<&str, BTreeMap<&str, BTreeSet<PortRange>>> = BTreeMap::new();
    let mut sets: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    sets.insert(SOLO.into(), BTreeSet::new());
    sets.insert(ALL.into(), BTreeSet::new());
    for m in members.values() {
        sets.entry(ALL.into()).or_default().insert(m.veth.clone());
        let Some(service) = m.service.as_deref() else {
            sets.entry(SOLO.into()).or_default().insert(m.veth.clone());
            continue;
        };
        ports_of.entry(service).or_default().insert(m.veth.clone());
        let rules = allowed.entry(service).or_default();
        for r in &m.ingress {
            rules
                .entry(r.from_service.as_str())
                .or_default()
                .extend(r.ports.iter().copied());
        }
    }
    let index: BTreeMap<&str, usize> = ports_of.keys().enumerate().map(|(i, g)| (*g, i)).collect();
    for (g, veths) in &ports_of {
        sets.insert(format!("m_{}", index[g]), veths.clone());
    }

    let mut out = String::from(
        "  chain forward {\n    type filter hook forward priority 0; policy accept;\n",
    );
    out.push_str("    ether type arp accept\n");
    // A standalone task is a group of its own: no other task's frame reaches it (a task's own
    // frames never come back to it through the bridge).
    out.push_str(&format!("    oifname @{SOLO} drop\n"));
    for g in ports_of.keys() {
        let i = index[g];
        out.push_str(&format!(
            "    oifname @m_{i} jump in_{i} comment \"service {g}\"\n"
        ));
    }
    out.push_str("  }\n");
    // A task that routes through the host (its own route via the gateway, with NET_ADMIN) must
    // not get around the chains: frames the host sends to a task carry the gateway's address.
    out.push_str(&format!(
        "  chain output {{\n    type filter hook output priority 0; policy accept;\n    oifname @{ALL} ip saddr {}/{} ip saddr != {} drop\n  }}\n",
        std::net::Ipv4Addr::from(u32::from(GATEWAY) & !0xffff),
        PREFIX_LEN,
        GATEWAY
    ));
    for g in ports_of.keys() {
        let i = index[g];
        out.push_str(&format!("  chain in_{i} {{\n    iifname @m_{i} accept\n"));
        // Other services this one lets in.
        for (from, range) in allowed.get(g).into_iter().flatten() {
            let Some(j) = index.get(from).filter(|_| from != g) else {
                continue;
            };
            for proto in ["tcp", "udp"] {
                out.push_str(&format!(
                    "    iifname @m_{j} {proto} dport {} accept\n",
                    ports(range)
                ));
            }
        }
        // Replies of services that let this one in.
        for (other, rules) in &allowed {
            if other == g {
                continue;
            }
            let (Some(range), Some(j)) = (rules.get(g), index.get(other)) else {
                continue;
            };
            out.push_str(&format!(
                "    iifname @m_{j} tcp sport {} tcp flags & (syn | ack) != syn accept\n",
                ports(range)
            ));
            out.push_str(&format!(
                "    iifname @m_{j} udp sport {} accept\n",
                ports(range)
            ));
        }
        out.push_str("    drop\n  }\n");
    }
    Plan { chains: out, sets }
}

/// The nft script that replaces table `table` as a whole with `plan`, in one transaction.
pub fn full_script(table: &str, owner: &str, plan: &Plan) -> String {
    let mut out = String::new();
    // Declaring the table first makes the delete succeed when it does not exist yet.
    out.push_str(&format!(
        "table bridge {table}\ndelete table bridge {table}\ntable bridge {table} {{\n  comment \"{}\"\n",
        owner.replace(['"', '\\', '\n'], "_")
    ));
    for (name, elements) in &plan.sets {
        out.push_str(&format!("  set {name} {{\n    type ifname\n"));
        if !elements.is_empty() {
            out.push_str(&format!("    elements = {}\n", quoted(elements)));
        }
        out.push_str("  }\n");
    }
    out.push_str(&plan.chains);
    out.push_str("}\n");
    out
}

/// The nft script that turns `old` into `new` by adding and deleting set elements only, in one
/// transaction: `None` when the chains differ (the table is to be replaced), empty when nothing
/// changes.
pub fn delta_script(table: &str, old: &Plan, new: &Plan) -> Option<String> {
    if old.chains != new.chains || !old.sets.keys().eq(new.sets.keys()) {
        return None;
    }
    let mut out = String::new();
    for (name, now) in &new.sets {
        let before = &old.sets[name];
        let gone: BTreeSet<String> = before.difference(now).cloned().collect();
        let added: BTreeSet<String> = now.difference(before).cloned().collect();
        if !gone.is_empty() {
            out.push_str(&format!(
                "delete element bridge {table} {name} {}\n",
                quoted(&gone)
            ));
        }
        if !added.is_empty() {
            out.push_str(&format!(
                "add element bridge {table} {name} {}\n",
                quoted(&added)
            ));
        }
    }
    Some(out)
}

/// The agent's tasks as the firewall knows them, and the table it last applied.
pub struct Firewall {
    table: String,
    /// The agent's state directory, the table's comment: a table whose directory is gone was left
    /// by a killed agent and is removed.
    owner: String,
    inner: Mutex<State>,
}

#[derive(Default)]
struct State {
    members: BTreeMap<String, Member>,
    /// The plan the table holds; `None`: nothing applied yet (or the last change failed).
    applied: Option<Plan>,
    /// Elements of tasks that are gone, still in the table (their deletion is deferred).
    stale: usize,
    /// When a task last came or went.
    last_change: Option<Instant>,
    /// Whether a thread waits to delete the stale elements.
    flusher: bool,
    /// Whether the lack of `nft` was already logged.
    warned: bool,
}

/// Stale elements are deleted once no task came or went for this long...
const QUIET: Duration = Duration::from_secs(1);
/// ...or once there are this many.
const MAX_STALE: usize = 64;

/// `plan`, keeping the elements of `applied` that belong to no task any more: deleting set
/// elements makes the kernel wait for an RCU grace period (~15–20 ms here, against ~4 ms for an
/// addition), so a task start does not pay for the deletion of the task that went before it.
/// A stale element is a bridge port name no interface has; should a new task get that name, it
/// is live again and put where its task belongs.
pub fn keep_stale(plan: &Plan, applied: &Plan) -> Plan {
    if plan.chains != applied.chains || !plan.sets.keys().eq(applied.sets.keys()) {
        return plan.clone();
    }
    let live = &plan.sets[ALL];
    let mut kept = plan.clone();
    for (name, elements) in &applied.sets {
        let set = kept.sets.entry(name.clone()).or_default();
        set.extend(elements.iter().filter(|e| !live.contains(*e)).cloned());
    }
    kept
}

fn stale_count(target: &Plan, plan: &Plan) -> usize {
    target
        .sets
        .iter()
        .map(|(name, set)| {
            set.len()
                - plan
                    .sets
                    .get(name)
                    .map_or(0, |p| set.intersection(p).count())
        })
        .sum()
}

impl Firewall {
    pub fn new(state_dir: &Path) -> Firewall {
        Firewall {
            table: table_name(state_dir),
            owner: state_dir.to_string_lossy().into_owned(),
            inner: Mutex::default(),
        }
    }

    /// The nftables table this agent owns.
    pub fn table(&self) -> &str {
        &self.table
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Adds (or replaces) a task and applies the result.
    pub fn admit(self: &Arc<Self>, task_id: &str, member: Member) {
        let mut st = self.lock();
        st.members.insert(task_id.to_string(), member);
        self.changed(&mut st);
    }

    /// New service or rules of a task already admitted (an UpdateService changed them).
    pub fn update(self: &Arc<Self>, task_id: &str, service: Option<&str>, ingress: &[IngressRule]) {
        let mut st = self.lock();
        let Some(m) = st.members.get_mut(task_id) else {
            return;
        };
        if m.service.as_deref() == service && m.ingress == ingress {
            return;
        }
        m.service = service.map(str::to_string);
        m.ingress = ingress.to_vec();
        self.changed(&mut st);
    }

    /// Removes a task (its network goes away): it is filtered no more at once; its bridge port's
    /// name leaves the sets a little later (see [`keep_stale`]).
    pub fn remove(self: &Arc<Self>, task_id: &str) {
        let mut st = self.lock();
        if st.members.remove(task_id).is_some() || st.applied.is_none() {
            self.changed(&mut st);
        }
    }

    /// Applies a change of tasks, deferring deletions, and schedules them.
    fn changed(self: &Arc<Self>, st: &mut State) {
        st.last_change = Some(Instant::now());
        self.apply(st, true);
        if st.stale == 0 || st.flusher {
            return;
        }
        st.flusher = true;
        let me = Arc::clone(self);
        let spawned = std::thread::Builder::new()
            .name("berth-firewall".into())
            .spawn(move || loop {
                std::thread::sleep(QUIET);
                let mut st = me.lock();
                let quiet = st.last_change.is_none_or(|t| t.elapsed() >= QUIET);
                if quiet || st.stale >= MAX_STALE || st.stale == 0 {
                    me.apply(&mut st, false);
                    st.flusher = false;
                    return;
                }
            });
        if spawned.is_err() {
            st.flusher = false;
            self.apply(st, false);
        }
    }

    /// Replaces the table as a whole even when nothing changed since the last time (at start, to
    /// replace what an earlier agent left), and removes the tables of agents that are gone.
    pub fn sync(&self) {
        remove_stale_tables(&self.table);
        let mut st = self.lock();
        st.applied = None;
        self.apply(&mut st, false);
    }

    /// Makes the table hold the tasks' plan (with `defer_deletes`, keeping stale elements).
    fn apply(&self, st: &mut State, defer_deletes: bool) {
        let started = Instant::now();
        let plan = plan(&st.members);
        let target = match (&st.applied, defer_deletes) {
            (Some(old), true) => keep_stale(&plan, old),
            _ => plan.clone(),
        };
        let delta = st
            .applied
            .as_ref()
            .and_then(|old| delta_script(&self.table, old, &target));
        let (target, result) = match delta {
            Some(script) if script.is_empty() => {
                st.stale = stale_count(&target, &plan);
                return;
            }
            // Only elements change; should that fail (the table was removed by hand, say), the
            // table is replaced as a whole.
            Some(script) => match run_nft(&script) {
                Ok(()) => (target, Ok(())),
                Err(_) => (
                    plan.clone(),
                    run_nft(&full_script(&self.table, &self.owner, &plan)),
                ),
            },
            None => (
                plan.clone(),
                run_nft(&full_script(&self.table, &self.owner, &plan)),
            ),
        };
        match result {
            Ok(()) => {
                tracing::debug!(table = %self.table, tasks = st.members.len(), nft_ms = started.elapsed().as_secs_f64() * 1e3, "task firewall applied");
                st.stale = stale_count(&target, &plan);
                st.applied = Some(target);
            }
            Err(error) => {
                if !st.warned || !st.members.is_empty() {
                    tracing::warn!(table = %self.table, %error, "cannot apply the task firewall: traffic between tasks is not filtered");
                }
                st.warned = true;
                st.applied = None;
                st.stale = 0;
            }
        }
    }

    /// Deletes the table (the agent stops with no task left).
    pub fn delete(&self) {
        let mut st = self.lock();
        if st.members.is_empty() && st.applied.is_some() {
            let _ = run_nft(&format!(
                "table bridge {t}\ndelete table bridge {t}\n",
                t = self.table
            ));
            st.applied = None;
            st.stale = 0;
        }
    }
}

/// Tables `berth_*` in `ruleset` (`nft list ruleset bridge`) other than `own` whose owner (the
/// comment) no longer exists.
pub fn stale_tables(ruleset: &str, own: &str, exists: impl Fn(&str) -> bool) -> Vec<String> {
    let mut out = Vec::new();
    let mut lines = ruleset.lines().map(str::trim).peekable();
    while let Some(line) = lines.next() {
        let Some(name) = line
            .strip_prefix("table bridge ")
            .and_then(|r| r.strip_suffix(" {"))
            .filter(|n| n.starts_with("berth_") && *n != own)
        else {
            continue;
        };
        let owner = lines
            .peek()
            .and_then(|l| l.strip_prefix("comment \""))
            .and_then(|l| l.strip_suffix('"'));
        if let Some(owner) = owner {
            if !exists(owner) {
                out.push(name.to_string());
            }
        }
    }
    out
}

fn remove_stale_tables(own: &str) {
    let Ok(out) = std::process::Command::new("nft")
        .args(["list", "ruleset", "bridge"])
        .output()
    else {
        return;
    };
    let text = String::from_utf8_lossy(&out.stdout);
    for table in stale_tables(&text, own, |p| Path::new(p).exists()) {
        tracing::info!(%table, "removing the task firewall of an agent whose state is gone");
        let _ = run_nft(&format!("delete table bridge {table}\n"));
    }
}

fn run_nft(script: &str) -> Result<(), String> {
    use std::io::Write;
    use std::process::{Command, Stdio};
    let mut child = Command::new("nft")
        .args(["-f", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot run nft: {e}"))?;
    if let Some(mut input) = child.stdin.take() {
        input
            .write_all(script.as_bytes())
            .map_err(|e| format!("cannot write to nft: {e}"))?;
    }
    let out = child
        .wait_with_output()
        .map_err(|e| format!("nft failed: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "nft -f: {}: {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn member(veth: &str, service: Option<&str>, ingress: &[(&str, &[(u16, u16)])]) -> Member {
        Member {
            veth: veth.into(),
            service: service.map(str::to_string),
            ingress: ingress
                .iter()
                .map(|(from, ports)| IngressRule {
                    from_service: from.to_string(),
                    ports: ports
                        .iter()
                        .map(|(from, to)| PortRange {
                            from: *from,
                            to: *to,
                        })
                        .collect(),
                })
                .collect(),
        }
    }

    fn render(members: &BTreeMap<String, Member>) -> String {
        full_script("berth_t", "/state/agent", &plan(members))
    }

    #[test]
    fn no_tasks_empty_sets() {
        let script = render(&BTreeMap::new());
        assert!(
            script.contains("  set tasks {\n    type ifname\n  }\n"),
            "{script}"
        );
        assert!(
            script.contains("  set standalone {\n    type ifname\n  }\n"),
            "{script}"
        );
        assert!(!script.contains("chain in_"), "{script}");
    }

    #[test]
    fn services_are_isolated_except_where_ingress_opens() {
        let mut members = BTreeMap::new();
        members.insert("a1".to_string(), member("vb-a1", Some("a"), &[]));
        members.insert("a2".to_string(), member("vb-a2", Some("a"), &[]));
        members.insert(
            "b1".to_string(),
            member(
                "vb-b1",
                Some("b"),
                &[("a", &[(8080, 8080), (9000, 9100)]), ("gone", &[(1, 2)])],
            ),
        );
        members.insert("c1".to_string(), member("vb-c1", Some("c"), &[]));
        members.insert(
            "solo".to_string(),
            member("vb-solo", None, &[("a", &[(1, 1)])]),
        );
        let script = render(&members);
        let expected = r#"table bridge berth_t
delete table bridge berth_t
table bridge berth_t {
  comment "/state/agent"
  set m_0 {
    type ifname
    elements = { "vb-a1", "vb-a2" }
  }
  set m_1 {
    type ifname
    elements = { "vb-b1" }
  }
  set m_2 {
    type ifname
    elements = { "vb-c1" }
  }
  set standalone {
    type ifname
    elements = { "vb-solo" }
  }
  set tasks {
    type ifname
    elements = { "vb-a1", "vb-a2", "vb-b1", "vb-c1", "vb-solo" }
  }
  chain forward {
    type filter hook forward priority 0; policy accept;
    ether type arp accept
    oifname @standalone drop
    oifname @m_0 jump in_0 comment "service a"
    oifname @m_1 jump in_1 comment "service b"
    oifname @m_2 jump in_2 comment "service c"
  }
  chain output {
    type filter hook output priority 0; policy accept;
    oifname @tasks ip saddr 10.88.0.0/16 ip saddr != 10.88.0.1 drop
  }
  chain in_0 {
    iifname @m_0 accept
    iifname @m_1 tcp sport { 8080, 9000-9100 } tcp flags & (syn | ack) != syn accept
    iifname @m_1 udp sport { 8080, 9000-9100 } accept
    drop
  }
  chain in_1 {
    iifname @m_1 accept
    iifname @m_0 tcp dport { 8080, 9000-9100 } accept
    iifname @m_0 udp dport { 8080, 9000-9100 } accept
    drop
  }
  chain in_2 {
    iifname @m_2 accept
    drop
  }
}
"#;
        assert_eq!(script, expected);
    }

    #[test]
    fn rules_of_one_service_are_merged_and_apply_only_to_services_present() {
        let mut members = BTreeMap::new();
        members.insert(
            "b1".to_string(),
            member("vb-b1", Some("b"), &[("a", &[(80, 80)])]),
        );
        members.insert(
            "b2".to_string(),
            member("vb-b2", Some("b"), &[("a", &[(81, 81)])]),
        );
        let script = render(&members);
        // No task of `a` runs: nothing is opened, b's tasks still talk to each other.
        assert!(
            script.contains("elements = { \"vb-b1\", \"vb-b2\" }"),
            "{script}"
        );
        assert!(script.contains("iifname @m_0 accept"), "{script}");
        assert!(!script.contains("dport"), "{script}");
        members.insert("a1".to_string(), member("vb-a1", Some("a"), &[]));
        let script = render(&members);
        assert!(
            script.contains("iifname @m_0 tcp dport { 80, 81 } accept"),
            "{script}"
        );
    }

    #[test]
    fn tasks_joining_present_services_or_standalone_change_only_elements() {
        let mut members = BTreeMap::new();
        members.insert("a1".to_string(), member("vb-a1", Some("a"), &[]));
        members.insert("s1".to_string(), member("vb-s1", None, &[]));
        let before = plan(&members);
        members.insert("a2".to_string(), member("vb-a2", Some("a"), &[]));
        members.insert("s2".to_string(), member("vb-s2", None, &[]));
        members.remove("s1");
        let after = plan(&members);
        let delta = delta_script("berth_t", &before, &after).unwrap();
        assert_eq!(
            delta,
            "add element bridge berth_t m_0 { \"vb-a2\" }\n\
             delete element bridge berth_t standalone { \"vb-s1\" }\n\
             add element bridge berth_t standalone { \"vb-s2\" }\n\
             delete element bridge berth_t tasks { \"vb-s1\" }\n\
             add element bridge berth_t tasks { \"vb-a2\", \"vb-s2\" }\n"
        );
        assert_eq!(delta_script("berth_t", &after, &after), Some(String::new()));
        // A new service, or new rules, change the chains: the table is replaced.
        members.insert("b1".to_string(), member("vb-b1", Some("b"), &[]));
        assert_eq!(delta_script("berth_t", &after, &plan(&members)), None);
        members.remove("b1");
        members.insert(
            "a2".to_string(),
            member("vb-a2", Some("a"), &[("a", &[(1, 1)])]),
        );
        members.insert("c1".to_string(), member("vb-c1", Some("c"), &[]));
        let with_c = plan(&members);
        members.insert(
            "a3".to_string(),
            member("vb-a3", Some("a"), &[("c", &[(1, 1)])]),
        );
        assert_eq!(delta_script("berth_t", &with_c, &plan(&members)), None);
    }

    #[test]
    fn gone_tasks_stay_in_the_sets_until_flushed_unless_their_name_is_live_again() {
        let mut members = BTreeMap::new();
        members.insert("a1".to_string(), member("vb-1", Some("a"), &[]));
        members.insert("s1".to_string(), member("vb-2", None, &[]));
        let applied = plan(&members);
        members.remove("s1");
        members.insert("s3".to_string(), member("vb-3", None, &[]));
        let now = plan(&members);
        let kept = keep_stale(&now, &applied);
        assert!(kept.sets[SOLO].contains("vb-2") && kept.sets[ALL].contains("vb-2"));
        assert_eq!(stale_count(&kept, &now), 2);
        // Only the addition goes to the kernel.
        let delta = delta_script("t", &applied, &kept).unwrap();
        assert!(!delta.contains("delete"), "{delta}");
        assert!(
            delta.contains("add element bridge t standalone { \"vb-3\" }"),
            "{delta}"
        );
        // A new task of another group whose port has the stale name takes it over at once.
        members.insert("a2".to_string(), member("vb-2", Some("a"), &[]));
        let now = plan(&members);
        let kept2 = keep_stale(&now, &kept);
        assert!(!kept2.sets[SOLO].contains("vb-2"), "{kept2:?}");
        assert!(kept2.sets["m_0"].contains("vb-2"));
        assert_eq!(stale_count(&kept2, &now), 0);
        // New chains: no stale element survives the rewrite.
        members.insert("b1".to_string(), member("vb-4", Some("b"), &[]));
        let now = plan(&members);
        assert_eq!(keep_stale(&now, &kept), now);
    }

    fn kernel_table(table: &str) -> String {
        let out = std::process::Command::new("nft")
            .args(["list", "table", "bridge", table])
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// The scripts are valid for the kernel's nftables: a table is made, elements come and go
    /// without a rewrite, and a new service rewrites it. Needs root and `nft` (CI has both).
    #[test]
    fn the_kernel_takes_the_table_and_its_element_changes() {
        if std::process::Command::new("nft")
            .args(["list", "tables"])
            .output()
            .map_or(true, |o| !o.status.success())
        {
            eprintln!("SKIPPED: needs root and nft");
            return;
        }
        let dir = tempfile::tempdir().unwrap();
        let fw = Arc::new(Firewall::new(dir.path()));
        fw.sync();
        let t = fw.table().to_string();
        assert!(
            kernel_table(&t).contains("set standalone"),
            "{}",
            kernel_table(&t)
        );
        fw.admit("s1", member("vb-t-s1", None, &[]));
        fw.admit("a1", member("vb-t-a1", Some("a"), &[]));
        fw.admit("a2", member("vb-t-a2", Some("a"), &[("b", &[(80, 81)])]));
        fw.admit("b1", member("vb-t-b1", Some("b"), &[]));
        let listed = kernel_table(&t);
        assert!(listed.contains("\"vb-t-s1\""), "{listed}");
        assert!(listed.contains("tcp dport 80-81 accept"), "{listed}");
        fw.remove("a1");
        fw.remove("s1");
        // The deletions come once no task came or went for a second.
        let deadline = Instant::now() + Duration::from_secs(10);
        let listed = loop {
            let listed = kernel_table(&t);
            if !listed.contains("vb-t-s1") || Instant::now() > deadline {
                break listed;
            }
            std::thread::sleep(Duration::from_millis(100));
        };
        assert!(
            !listed.contains("vb-t-s1") && !listed.contains("vb-t-a1"),
            "{listed}"
        );
        assert!(listed.contains("\"vb-t-a2\""), "{listed}");
        // Removed by hand: the next change puts the whole table back.
        std::process::Command::new("nft")
            .args(["delete", "table", "bridge", &t])
            .status()
            .unwrap();
        fw.admit("s2", member("vb-t-s2", None, &[]));
        let listed = kernel_table(&t);
        assert!(
            listed.contains("\"vb-t-s2\"") && listed.contains("\"vb-t-a2\""),
            "{listed}"
        );
        for id in ["a2", "b1", "s2"] {
            fw.remove(id);
        }
        fw.delete();
        assert_eq!(kernel_table(&t), "");
    }

    #[test]
    fn tables_of_agents_whose_state_is_gone_are_stale() {
        let ruleset = "table bridge berth_aaaa {\n\tcomment \"/gone/agent\"\n\tchain forward {\n\t}\n}\ntable bridge berth_bbbb {\n\tcomment \"/here/agent\"\n}\ntable bridge berth_mine {\n\tcomment \"/gone/too\"\n}\ntable bridge other {\n\tcomment \"/gone/x\"\n}\n";
        let stale = stale_tables(ruleset, "berth_mine", |p| p.starts_with("/here"));
        assert_eq!(stale, vec!["berth_aaaa".to_string()]);
    }

    #[test]
    fn table_names_differ_per_state_dir_and_are_nft_identifiers() {
        let a = table_name(Path::new("/tmp/a/agent"));
        let b = table_name(Path::new("/tmp/b/agent"));
        assert_ne!(a, b);
        assert!(a.starts_with("berth_") && a.len() == 14);
        assert!(a.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'));
    }
}
