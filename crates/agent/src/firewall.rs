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
//! Each agent owns one table, `bridge berth_<8 hex of its state directory>`, rewritten
//! atomically with `nft -f` whenever its tasks or their rules change and deleted when it has no
//! task left; several agents on one host (test clusters) keep out of each other's way.

use crate::network::{GATEWAY, PREFIX_LEN};
use berth_model::ecs::{IngressRule, PortRange};
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::sync::Mutex;

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

fn group_of(task_id: &str, m: &Member) -> String {
    match &m.service {
        Some(s) => format!("service {s}"),
        None => format!("task {task_id}"),
    }
}

fn set(names: &BTreeSet<&str>) -> String {
    let quoted: Vec<String> = names.iter().map(|n| format!("\"{n}\"")).collect();
    format!("{{ {} }}", quoted.join(", "))
}

fn ports(ranges: &BTreeSet<PortRange>) -> String {
    let list: Vec<String> = ranges.iter().map(|p| p.to_string()).collect();
    format!("{{ {} }}", list.join(", "))
}

/// The nft script that makes table `table` filter between `members` (task id → member): it
/// replaces the table as a whole, in one transaction. `None` when there is no member (the table
/// is to be deleted).
pub fn render(table: &str, owner: &str, members: &BTreeMap<String, Member>) -> Option<String> {
    if members.is_empty() {
        return None;
    }
    // Group → its tasks' bridge ports and the union of its members' rules (members of one
    // service differ only while an update reaches them).
    let mut ports_of: BTreeMap<String, BTreeSet<&str>> = BTreeMap::new();
    let mut allowed: BTreeMap<String, BTreeMap<String, BTreeSet<PortRange>>> = BTreeMap::new();
    for (id, m) in members {
        let g = group_of(id, m);
        ports_of
            .entry(g.clone())
            .or_default()
            .insert(m.veth.as_str());
        let rules = allowed.entry(g).or_default();
        if m.service.is_some() {
            for r in &m.ingress {
                rules
                    .entry(format!("service {}", r.from_service))
                    .or_default()
                    .extend(r.ports.iter().copied());
            }
        }
    }
    let mut out = String::new();
    // Declaring the table first makes the delete succeed when it does not exist yet.
    out.push_str(&format!(
        "table bridge {table}\ndelete table bridge {table}\ntable bridge {table} {{\n  comment \"{}\"\n",
        owner.replace(['"', '\\', '\n'], "_")
    ));
    out.push_str("  chain forward {\n    type filter hook forward priority 0; policy accept;\n");
    out.push_str("    ether type arp accept\n");
    let index: BTreeMap<&String, usize> =
        ports_of.keys().enumerate().map(|(i, g)| (g, i)).collect();
    for (g, veths) in &ports_of {
        out.push_str(&format!(
            "    oifname {} jump in_{} comment \"{g}\"\n",
            set(veths),
            index[g]
        ));
    }
    out.push_str("  }\n");
    // A task that routes through the host (its own route via the gateway, with NET_ADMIN) must
    // not get around the chains: frames the host sends to a task carry the gateway's address.
    let all: BTreeSet<&str> = ports_of.values().flatten().copied().collect();
    out.push_str(&format!(
        "  chain output {{\n    type filter hook output priority 0; policy accept;\n    oifname {} ip saddr {}/{} ip saddr != {} drop\n  }}\n",
        set(&all),
        std::net::Ipv4Addr::from(u32::from(GATEWAY) & !0xffff),
        PREFIX_LEN,
        GATEWAY
    ));
    for (g, veths) in &ports_of {
        out.push_str(&format!("  chain in_{} {{\n", index[g]));
        out.push_str(&format!("    iifname {} accept\n", set(veths)));
        // Other services this group lets in.
        for (from, range) in allowed.get(g).into_iter().flatten() {
            let Some(src) = ports_of.get(from).filter(|_| from != g) else {
                continue;
            };
            for proto in ["tcp", "udp"] {
                out.push_str(&format!(
                    "    iifname {} {proto} dport {} accept\n",
                    set(src),
                    ports(range)
                ));
            }
        }
        // Replies of services that let this group in.
        for (other, rules) in &allowed {
            if other == g {
                continue;
            }
            let (Some(range), Some(src)) = (rules.get(g), ports_of.get(other)) else {
                continue;
            };
            out.push_str(&format!(
                "    iifname {} tcp sport {} tcp flags & (syn | ack) != syn accept\n",
                set(src),
                ports(range)
            ));
            out.push_str(&format!(
                "    iifname {} udp sport {} accept\n",
                set(src),
                ports(range)
            ));
        }
        out.push_str("    drop\n  }\n");
    }
    out.push_str("}\n");
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
    /// The script last applied (`Some(None)`: the table was deleted); `None`: nothing applied yet.
    applied: Option<Option<String>>,
    /// Whether the lack of `nft` was already logged.
    warned: bool,
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

    /// Adds (or replaces) a task and applies the result.
    pub fn admit(&self, task_id: &str, member: Member) {
        let mut st = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        st.members.insert(task_id.to_string(), member);
        self.apply(&mut st);
    }

    /// New service or rules of a task already admitted (an UpdateService changed them).
    pub fn update(&self, task_id: &str, service: Option<&str>, ingress: &[IngressRule]) {
        let mut st = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        let Some(m) = st.members.get_mut(task_id) else {
            return;
        };
        if m.service.as_deref() == service && m.ingress == ingress {
            return;
        }
        m.service = service.map(str::to_string);
        m.ingress = ingress.to_vec();
        self.apply(&mut st);
    }

    /// Removes a task (its network goes away) and applies the result.
    pub fn remove(&self, task_id: &str) {
        let mut st = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        if st.members.remove(task_id).is_some() || st.applied.is_none() {
            self.apply(&mut st);
        }
    }

    /// Applies the current state even when nothing changed since the last time (at start, to
    /// replace what an earlier agent left).
    pub fn sync(&self) {
        let mut st = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        st.applied = None;
        self.apply(&mut st);
    }

    fn apply(&self, st: &mut State) {
        remove_stale_tables(&self.table);
        let script = render(&self.table, &self.owner, &st.members);
        if st.applied.as_ref() == Some(&script) {
            return;
        }
        let text = script.clone().unwrap_or_else(|| {
            format!(
                "table bridge {t}\ndelete table bridge {t}\n",
                t = self.table
            )
        });
        match run_nft(&text) {
            Ok(()) => {
                tracing::debug!(table = %self.table, tasks = st.members.len(), "task firewall applied");
                st.applied = Some(script);
            }
            Err(error) => {
                if !st.warned || !st.members.is_empty() {
                    tracing::warn!(table = %self.table, %error, "cannot apply the task firewall: traffic between tasks is not filtered");
                }
                st.warned = true;
            }
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

    #[test]
    fn no_tasks_no_table() {
        assert_eq!(render("berth_x", "/s", &BTreeMap::new()), None);
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
        let script = render("berth_t", "/state/agent", &members).unwrap();
        let expected = r#"table bridge berth_t
delete table bridge berth_t
table bridge berth_t {
  comment "/state/agent"
  chain forward {
    type filter hook forward priority 0; policy accept;
    ether type arp accept
    oifname { "vb-a1", "vb-a2" } jump in_0 comment "service a"
    oifname { "vb-b1" } jump in_1 comment "service b"
    oifname { "vb-c1" } jump in_2 comment "service c"
    oifname { "vb-solo" } jump in_3 comment "task solo"
  }
  chain output {
    type filter hook output priority 0; policy accept;
    oifname { "vb-a1", "vb-a2", "vb-b1", "vb-c1", "vb-solo" } ip saddr 10.88.0.0/16 ip saddr != 10.88.0.1 drop
  }
  chain in_0 {
    iifname { "vb-a1", "vb-a2" } accept
    iifname { "vb-b1" } tcp sport { 8080, 9000-9100 } tcp flags & (syn | ack) != syn accept
    iifname { "vb-b1" } udp sport { 8080, 9000-9100 } accept
    drop
  }
  chain in_1 {
    iifname { "vb-b1" } accept
    iifname { "vb-a1", "vb-a2" } tcp dport { 8080, 9000-9100 } accept
    iifname { "vb-a1", "vb-a2" } udp dport { 8080, 9000-9100 } accept
    drop
  }
  chain in_2 {
    iifname { "vb-c1" } accept
    drop
  }
  chain in_3 {
    iifname { "vb-solo" } accept
    drop
  }
}
"#;
        assert_eq!(script, expected);
    }

    #[test]
    fn rules_of_one_service_are_merged_and_a_lone_task_still_gets_a_chain() {
        let mut members = BTreeMap::new();
        members.insert(
            "b1".to_string(),
            member("vb-b1", Some("b"), &[("a", &[(80, 80)])]),
        );
        members.insert(
            "b2".to_string(),
            member("vb-b2", Some("b"), &[("a", &[(81, 81)])]),
        );
        let script = render("t", "/s", &members).unwrap();
        // No task of `a` runs: nothing is opened, b's tasks still talk to each other.
        assert!(script.contains("iifname { \"vb-b1\", \"vb-b2\" } accept"));
        assert!(!script.contains("dport"), "{script}");
        members.insert("a1".to_string(), member("vb-a1", Some("a"), &[]));
        let script = render("t", "/s", &members).unwrap();
        assert!(
            script.contains("iifname { \"vb-a1\" } tcp dport { 80, 81 } accept"),
            "{script}"
        );
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
