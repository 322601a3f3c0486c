//! The Linux security settings of a container definition, parsed and checked into
//! [`LinuxSettings`]: `linuxParameters` (`capabilities.add/drop`, `tmpfs`, `sharedMemorySize`,
//! `maxSwap`, `initProcessEnabled`) and the `berth.pids-limit` docker label (the container's
//! process limit; ECS has no field for it).

use crate::ecs::ContainerDefinition;
use crate::validate::FieldErrors;
use serde_json::Value;

/// Capability names ECS accepts in `linuxParameters.capabilities` (Linux's, without `CAP_`),
/// plus `ALL`.
pub const CAPABILITIES: &[&str] = &[
    "ALL",
    "AUDIT_CONTROL",
    "AUDIT_READ",
    "AUDIT_WRITE",
    "BLOCK_SUSPEND",
    "BPF",
    "CHECKPOINT_RESTORE",
    "CHOWN",
    "DAC_OVERRIDE",
    "DAC_READ_SEARCH",
    "FOWNER",
    "FSETID",
    "IPC_LOCK",
    "IPC_OWNER",
    "KILL",
    "LEASE",
    "LINUX_IMMUTABLE",
    "MAC_ADMIN",
    "MAC_OVERRIDE",
    "MKNOD",
    "NET_ADMIN",
    "NET_BIND_SERVICE",
    "NET_BROADCAST",
    "NET_RAW",
    "PERFMON",
    "SETFCAP",
    "SETGID",
    "SETPCAP",
    "SETUID",
    "SYS_ADMIN",
    "SYS_BOOT",
    "SYS_CHROOT",
    "SYS_MODULE",
    "SYS_NICE",
    "SYS_PACCT",
    "SYS_PTRACE",
    "SYS_RAWIO",
    "SYS_RESOURCE",
    "SYS_TIME",
    "SYS_TTY_CONFIG",
    "SYSLOG",
    "WAKE_ALARM",
];

/// The capabilities a container has by default: Docker's set without `NET_RAW`.
pub const DEFAULT_CAPABILITIES: &[&str] = &[
    "CHOWN",
    "DAC_OVERRIDE",
    "FSETID",
    "FOWNER",
    "MKNOD",
    "SETGID",
    "SETUID",
    "SETFCAP",
    "SETPCAP",
    "NET_BIND_SERVICE",
    "SYS_CHROOT",
    "KILL",
    "AUDIT_WRITE",
];

/// Mount options ECS accepts in `linuxParameters.tmpfs[].mountOptions` (`mode`, `uid`, `gid`,
/// `nr_inodes`, `nr_blocks` and `mpol` take `=value`).
pub const TMPFS_OPTIONS: &[&str] = &[
    "defaults",
    "ro",
    "rw",
    "suid",
    "nosuid",
    "dev",
    "nodev",
    "exec",
    "noexec",
    "sync",
    "async",
    "dirsync",
    "mand",
    "nomand",
    "atime",
    "noatime",
    "diratime",
    "nodiratime",
    "relatime",
    "norelatime",
    "strictatime",
    "nostrictatime",
    "private",
    "rprivate",
    "shared",
    "rshared",
    "slave",
    "rslave",
    "unbindable",
    "runbindable",
];
const TMPFS_VALUE_OPTIONS: &[&str] = &["mode", "uid", "gid", "nr_inodes", "nr_blocks", "mpol"];

/// The docker label that sets a container's process (pids cgroup) limit; `-1` = unlimited.
pub const PIDS_LIMIT_LABEL: &str = "berth.pids-limit";
/// The process limit of a container without the label.
pub const DEFAULT_PIDS_LIMIT: u64 = 1024;

/// A tmpfs mount from `linuxParameters.tmpfs`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tmpfs {
    pub container_path: String,
    pub size_mib: u64,
    pub mount_options: Vec<String>,
}

/// The checked Linux settings of one container.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LinuxSettings {
    /// Capabilities, by ECS name (no `CAP_` prefix), the container has: the defaults with
    /// `add`/`drop` applied.
    pub capabilities: Vec<String>,
    pub tmpfs: Vec<Tmpfs>,
    /// `/dev/shm` size in MiB.
    pub shared_memory_mib: Option<u64>,
    /// Swap in MiB on top of the memory limit.
    pub max_swap_mib: u64,
    /// The process limit; None = unlimited.
    pub pids_limit: Option<u64>,
}

fn strings(v: &Value, path: &str, errs: &mut FieldErrors) -> Vec<String> {
    match v {
        Value::Null => Vec::new(),
        Value::Array(items) => items
            .iter()
            .enumerate()
            .filter_map(|(i, s)| match s.as_str() {
                Some(s) => Some(s.to_string()),
                None => {
                    errs.push(
                        format!("{path}[{i}]"),
                        format!("expected a string, found {s}"),
                    );
                    None
                }
            })
            .collect(),
        other => {
            errs.push(path, format!("expected a list of strings, found {other}"));
            Vec::new()
        }
    }
}

fn capability_list(v: &Value, path: &str, errs: &mut FieldErrors) -> Vec<String> {
    let mut out = Vec::new();
    for (i, name) in strings(v, path, errs).into_iter().enumerate() {
        let bare = name
            .strip_prefix("CAP_")
            .unwrap_or(&name)
            .to_ascii_uppercase();
        if CAPABILITIES.contains(&bare.as_str()) {
            out.push(bare);
        } else {
            errs.push(
                format!("{path}[{i}]"),
                format!("expected a capability like NET_ADMIN or ALL, found {name:?}"),
            );
        }
    }
    out
}

/// Docker's rule: `drop: [ALL]` starts from nothing, `add: [ALL]` gives everything; otherwise the
/// defaults plus `add` minus `drop`. Names are returned in [`CAPABILITIES`] order.
pub fn apply_capabilities(add: &[String], drop: &[String]) -> Vec<String> {
    let has = |l: &[String], c: &str| l.iter().any(|x| x == c);
    CAPABILITIES
        .iter()
        .filter(|c| **c != "ALL")
        .filter(|c| {
            let base = DEFAULT_CAPABILITIES.contains(c) && !has(drop, "ALL");
            let added = has(add, "ALL") || has(add, c);
            let dropped = has(drop, c) && !has(add, c);
            (base || added) && !dropped
        })
        .map(|c| c.to_string())
        .collect()
}

fn absolute_clean_path(p: &str) -> bool {
    p.starts_with('/')
        && p.len() <= 4096
        && !p.contains('\0')
        && p.split('/').all(|seg| seg != ".." && seg != ".")
}

fn positive_int(v: &Value) -> Option<u64> {
    v.as_u64().filter(|n| *n > 0)
}

/// Parses and checks the container's Linux settings; errors carry field paths relative to the
/// container definition (`linuxParameters.capabilities.add[0]`).
pub fn linux_settings(def: &ContainerDefinition) -> Result<LinuxSettings, FieldErrors> {
    let mut errs = FieldErrors::default();
    let lp = def.extra.get("linuxParameters").unwrap_or(&Value::Null);
    if !lp.is_null() && !lp.is_object() {
        errs.push("linuxParameters", format!("expected an object, found {lp}"));
    }
    let field = |f: &str| lp.get(f).unwrap_or(&Value::Null);
    let caps = field("capabilities");
    if !caps.is_null() && !caps.is_object() {
        errs.push(
            "linuxParameters.capabilities",
            format!("expected an object with add and drop, found {caps}"),
        );
    }
    let add = capability_list(
        caps.get("add").unwrap_or(&Value::Null),
        "linuxParameters.capabilities.add",
        &mut errs,
    );
    let drop = capability_list(
        caps.get("drop").unwrap_or(&Value::Null),
        "linuxParameters.capabilities.drop",
        &mut errs,
    );
    let mut tmpfs = Vec::new();
    match field("tmpfs") {
        Value::Null => {}
        Value::Array(items) => {
            for (i, t) in items.iter().enumerate() {
                let path = format!("linuxParameters.tmpfs[{i}]");
                let container_path = t.get("containerPath").and_then(|v| v.as_str());
                match container_path {
                    Some(p) if absolute_clean_path(p) && p != "/" => {}
                    _ => errs.push(
                        format!("{path}.containerPath"),
                        format!(
                            "expected an absolute path without . or .. segments, found {}",
                            t.get("containerPath").unwrap_or(&Value::Null)
                        ),
                    ),
                }
                let size = t.get("size").and_then(positive_int);
                if size.is_none() {
                    errs.push(
                        format!("{path}.size"),
                        format!(
                            "expected a size in MiB above 0, found {}",
                            t.get("size").unwrap_or(&Value::Null)
                        ),
                    );
                }
                let options = strings(
                    t.get("mountOptions").unwrap_or(&Value::Null),
                    &format!("{path}.mountOptions"),
                    &mut errs,
                );
                for (j, o) in options.iter().enumerate() {
                    let ok = match o.split_once('=') {
                        Some((k, v)) => {
                            TMPFS_VALUE_OPTIONS.contains(&k)
                                && !v.is_empty()
                                && v.chars().all(|c| c.is_ascii_alphanumeric() || c == ':')
                        }
                        None => TMPFS_OPTIONS.contains(&o.as_str()),
                    };
                    if !ok {
                        errs.push(
                            format!("{path}.mountOptions[{j}]"),
                            format!("expected a tmpfs mount option like nosuid or mode=1777, found {o:?}"),
                        );
                    }
                }
                if let (Some(p), Some(size)) = (container_path, size) {
                    tmpfs.push(Tmpfs {
                        container_path: p.to_string(),
                        size_mib: size,
                        mount_options: options,
                    });
                }
            }
        }
        other => errs.push(
            "linuxParameters.tmpfs",
            format!("expected a list of {{containerPath, size, mountOptions}}, found {other}"),
        ),
    }
    let shared_memory_mib = match field("sharedMemorySize") {
        Value::Null => None,
        v => {
            if positive_int(v).is_none() {
                errs.push(
                    "linuxParameters.sharedMemorySize",
                    format!("expected a size in MiB above 0, found {v}"),
                );
            }
            positive_int(v)
        }
    };
    let max_swap_mib = match field("maxSwap") {
        Value::Null => 0,
        v => match v.as_i64() {
            Some(n) if n >= 0 => n as u64,
            _ => {
                errs.push(
                    "linuxParameters.maxSwap",
                    format!("expected MiB of 0 or more, found {v}"),
                );
                0
            }
        },
    };
    match field("initProcessEnabled") {
        Value::Null | Value::Bool(_) => {}
        v => errs.push(
            "linuxParameters.initProcessEnabled",
            format!("expected true or false, found {v}"),
        ),
    }
    let label = def
        .extra
        .get("dockerLabels")
        .and_then(|l| l.get(PIDS_LIMIT_LABEL));
    let pids_limit = match label {
        None => Some(DEFAULT_PIDS_LIMIT),
        Some(v) => {
            let text = v.as_str().map(str::trim).unwrap_or("");
            match text.parse::<i64>() {
                Ok(-1) => None,
                Ok(n) if n > 0 => Some(n as u64),
                _ => {
                    errs.push(
                        format!("dockerLabels.{PIDS_LIMIT_LABEL}"),
                        format!(
                            "expected a process count above 0 or \"-1\" (unlimited), found {v}"
                        ),
                    );
                    Some(DEFAULT_PIDS_LIMIT)
                }
            }
        }
    };
    errs.into_result()?;
    Ok(LinuxSettings {
        capabilities: apply_capabilities(&add, &drop),
        tmpfs,
        shared_memory_mib,
        max_swap_mib,
        pids_limit,
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use serde_json::json;

    fn def(v: Value) -> ContainerDefinition {
        serde_json::from_value(v).unwrap()
    }

    fn strs(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn capabilities_follow_dockers_add_and_drop_rules() {
        let defaults = apply_capabilities(&[], &[]);
        assert_eq!(defaults.len(), DEFAULT_CAPABILITIES.len());
        assert!(!defaults.contains(&"NET_RAW".to_string()));
        let c = apply_capabilities(&strs(&["NET_ADMIN"]), &strs(&["CHOWN"]));
        assert!(c.contains(&"NET_ADMIN".to_string()) && !c.contains(&"CHOWN".to_string()));
        assert_eq!(c.len(), DEFAULT_CAPABILITIES.len());
        assert_eq!(
            apply_capabilities(&strs(&["NET_BIND_SERVICE"]), &strs(&["ALL"])),
            strs(&["NET_BIND_SERVICE"])
        );
        assert_eq!(
            apply_capabilities(&strs(&["ALL"]), &[]).len(),
            CAPABILITIES.len() - 1
        );
    }

    #[test]
    fn settings_parse_with_defaults() {
        let s = linux_settings(&def(json!({"name": "c", "image": "i"}))).unwrap();
        assert_eq!(s.pids_limit, Some(DEFAULT_PIDS_LIMIT));
        assert!(s.tmpfs.is_empty() && s.shared_memory_mib.is_none());
        let s = linux_settings(&def(json!({
            "name": "c", "image": "i",
            "dockerLabels": {"berth.pids-limit": "-1"},
            "linuxParameters": {
                "capabilities": {"add": ["CAP_SYS_PTRACE", "net_admin"], "drop": ["MKNOD"]},
                "tmpfs": [{"containerPath": "/run", "size": 8, "mountOptions": ["noexec", "mode=0755"]}],
                "sharedMemorySize": 128, "maxSwap": 32, "initProcessEnabled": true
            }
        })))
        .unwrap();
        assert_eq!(s.pids_limit, None);
        assert!(s.capabilities.contains(&"SYS_PTRACE".to_string()));
        assert!(s.capabilities.contains(&"NET_ADMIN".to_string()));
        assert!(!s.capabilities.contains(&"MKNOD".to_string()));
        assert_eq!(
            s.tmpfs,
            vec![Tmpfs {
                container_path: "/run".into(),
                size_mib: 8,
                mount_options: strs(&["noexec", "mode=0755"])
            }]
        );
        assert_eq!((s.shared_memory_mib, s.max_swap_mib), (Some(128), 32));
    }

    #[test]
    fn bad_settings_name_every_field() {
        let err = linux_settings(&def(json!({
            "name": "c", "image": "i",
            "dockerLabels": {"berth.pids-limit": "lots"},
            "linuxParameters": {
                "capabilities": {"add": ["SUPERPOWER", 3], "drop": "ALL"},
                "tmpfs": [{"containerPath": "/a/../etc", "size": 0, "mountOptions": ["size=1g", "mode=07,55"]}],
                "sharedMemorySize": -1, "maxSwap": "x", "initProcessEnabled": "yes"
            }
        })))
        .unwrap_err();
        let paths: Vec<&str> = err.0.iter().map(|e| e.path.as_str()).collect();
        assert_eq!(
            paths,
            vec![
                "linuxParameters.capabilities.add[1]",
                "linuxParameters.capabilities.add[0]",
                "linuxParameters.capabilities.drop",
                "linuxParameters.tmpfs[0].containerPath",
                "linuxParameters.tmpfs[0].size",
                "linuxParameters.tmpfs[0].mountOptions[0]",
                "linuxParameters.tmpfs[0].mountOptions[1]",
                "linuxParameters.sharedMemorySize",
                "linuxParameters.maxSwap",
                "linuxParameters.initProcessEnabled",
                "dockerLabels.berth.pids-limit",
            ],
            "{err}"
        );
        assert!(err.to_string().contains("found \"SUPERPOWER\""), "{err}");
    }
}
