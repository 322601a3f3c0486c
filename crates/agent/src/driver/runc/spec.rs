//! The OCI runtime config (`config.json`) of a runc container, made from the image config and the
//! ECS container definition: argv, environment, user, limits, capabilities, seccomp, mounts,
//! namespaces.
//! Hand-written serde structs for the part of the runtime spec berth uses.

use super::seccomp::{self, Seccomp};
use berth_model::ecs::ContainerDefinition;
use berth_model::linux::LinuxSettings;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// Default PATH when neither the image nor the task sets one.
pub const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
/// CFS period used for CPU quotas, in microseconds.
pub const CFS_PERIOD: u64 = 100_000;

const MASKED: [&str; 10] = [
    "/proc/acpi",
    "/proc/asound",
    "/proc/kcore",
    "/proc/keys",
    "/proc/latency_stats",
    "/proc/timer_list",
    "/proc/timer_stats",
    "/proc/sched_debug",
    "/sys/firmware",
    "/proc/scsi",
];
const READONLY: [&str; 5] = [
    "/proc/bus",
    "/proc/fs",
    "/proc/irq",
    "/proc/sys",
    "/proc/sysrq-trigger",
];

/// `config.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Spec {
    pub oci_version: String,
    pub process: Process,
    pub root: Root,
    pub hostname: String,
    pub mounts: Vec<Mount>,
    pub linux: Linux,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Process {
    pub terminal: bool,
    pub user: User,
    pub args: Vec<String>,
    pub env: Vec<String>,
    pub cwd: String,
    pub capabilities: Capabilities,
    pub rlimits: Vec<Rlimit>,
    pub no_new_privileges: bool,
}

/// The user a container process runs as.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct User {
    pub uid: u32,
    pub gid: u32,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub additional_gids: Vec<u32>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Capabilities {
    pub bounding: Vec<String>,
    pub effective: Vec<String>,
    pub permitted: Vec<String>,
    pub inheritable: Vec<String>,
}

/// A POSIX resource limit (`RLIMIT_NOFILE`, …).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Rlimit {
    #[serde(rename = "type")]
    pub kind: String,
    pub hard: u64,
    pub soft: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Root {
    pub path: String,
    pub readonly: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Mount {
    pub destination: String,
    #[serde(rename = "type")]
    pub kind: String,
    pub source: String,
    pub options: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Linux {
    pub resources: Resources,
    pub cgroups_path: String,
    pub namespaces: Vec<Namespace>,
    pub masked_paths: Vec<String>,
    pub readonly_paths: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seccomp: Option<Seccomp>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Namespace {
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct Resources {
    pub devices: Vec<DeviceRule>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory: Option<Memory>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpu: Option<Cpu>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pids: Option<Pids>,
}

/// The pids cgroup limit.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct Pids {
    pub limit: i64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DeviceRule {
    pub allow: bool,
    pub access: String,
}

/// Memory limits in bytes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct Memory {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limit: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reservation: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub swap: Option<i64>,
}

/// CPU shares and CFS quota.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct Cpu {
    pub shares: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quota: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub period: Option<u64>,
}

/// What the spec is made from, besides the container definition.
#[derive(Debug, Clone, PartialEq)]
pub struct SpecInput<'a> {
    pub definition: &'a ContainerDefinition,
    /// The OCI image config JSON.
    pub image_config: &'a serde_json::Value,
    /// The container's environment from the agent (definition, overrides, PORT, BERTH_*).
    pub env: &'a [(String, String)],
    /// The resolved user (see [`resolve_user`]) and its home directory.
    pub user: User,
    pub home: String,
    pub hostname: String,
    /// Task-level `cpu` units and `memory` MiB.
    pub task_cpu: Option<u32>,
    pub task_memory: Option<u32>,
    /// The container's network namespace.
    pub network: NetworkNamespace,
    /// The root filesystem (absolute: the bundle holding `config.json` lives elsewhere).
    pub rootfs: PathBuf,
    /// The runc cgroup path (relative to the runtime's own cgroup).
    pub cgroups_path: String,
    /// Files bind-mounted read-only over the image's (`/etc/hosts`, `/etc/resolv.conf`, …).
    pub etc_files: Vec<(String, PathBuf)>,
    /// Whether the kernel accounts swap (memory.memsw); swap is then limited to the memory limit.
    pub swap_accounting: bool,
    /// The NOFILE limit (soft, hard) when `ulimits` sets none: the agent's own, as Docker does.
    pub default_nofile: (u64, u64),
}

/// Which network namespace a container gets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NetworkNamespace {
    /// The host's (`networkMode: host` only).
    Host,
    /// The task's own namespace at this path (awsvpc, bridge).
    Join(PathBuf),
    /// A new namespace with only loopback (`networkMode: none`).
    Empty,
}

/// Why a spec cannot be made; each message names the field.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum SpecError {
    #[error("the container has no command: neither entryPoint/command nor the image's Entrypoint/Cmd give one")]
    NoCommand,
    #[error("workingDirectory: expected an absolute path, found {0:?}")]
    RelativeCwd(String),
    #[error("ulimits: {0}")]
    Ulimits(String),
    #[error("user: {0}")]
    User(String),
    #[error("{0}")]
    Linux(String),
}

fn image_strings(config: &serde_json::Value, field: &str) -> Option<Vec<String>> {
    config
        .pointer(&format!("/config/{field}"))
        .and_then(|v| v.as_array())
        .map(|a| {
            a.iter()
                .filter_map(|s| s.as_str().map(str::to_string))
                .collect()
        })
}

fn image_string(config: &serde_json::Value, field: &str) -> Option<String> {
    config
        .pointer(&format!("/config/{field}"))
        .and_then(|v| v.as_str())
        .filter(|s| !s.is_empty())
        .map(str::to_string)
}

/// The argv, as Docker (and so ECS) merges it: `entryPoint` set → `entryPoint ++ command` (the
/// image's Cmd is not used); else the image's Entrypoint followed by `command`, or by the image's
/// Cmd when `command` is empty.
pub fn container_args(def: &ContainerDefinition, image_config: &serde_json::Value) -> Vec<String> {
    if !def.entry_point.is_empty() {
        return def
            .entry_point
            .iter()
            .chain(&def.command)
            .cloned()
            .collect();
    }
    let mut args = image_strings(image_config, "Entrypoint").unwrap_or_default();
    if def.command.is_empty() {
        args.extend(image_strings(image_config, "Cmd").unwrap_or_default());
    } else {
        args.extend(def.command.iter().cloned());
    }
    args
}

/// The environment: the image's Env, then the agent's (later values win), HOSTNAME and HOME when
/// missing, PATH defaulted.
pub fn container_env(
    image_config: &serde_json::Value,
    env: &[(String, String)],
    hostname: &str,
    home: &str,
) -> Vec<String> {
    let mut out: Vec<(String, String)> = vec![("HOSTNAME".into(), hostname.into())];
    let mut set = |k: &str, v: &str| {
        out.retain(|(key, _)| key != k);
        out.push((k.to_string(), v.to_string()));
    };
    for kv in image_strings(image_config, "Env").unwrap_or_default() {
        let (k, v) = kv.split_once('=').unwrap_or((kv.as_str(), ""));
        set(k, v);
    }
    for (k, v) in env {
        set(k, v);
    }
    if !out.iter().any(|(k, _)| k == "PATH") {
        out.push(("PATH".into(), DEFAULT_PATH.into()));
    }
    if !out.iter().any(|(k, _)| k == "HOME") {
        out.push(("HOME".into(), home.into()));
    }
    out.into_iter().map(|(k, v)| format!("{k}={v}")).collect()
}

/// The user spec in effect: the definition's `user`, else the image's `User`, else root.
pub fn user_spec(def: &ContainerDefinition, image_config: &serde_json::Value) -> String {
    def.user
        .clone()
        .filter(|u| !u.is_empty())
        .or_else(|| image_string(image_config, "User"))
        .unwrap_or_else(|| "0".into())
}

/// A line of /etc/passwd: name, uid, gid, home.
fn passwd_entries(text: &str) -> Vec<(String, u32, u32, String)> {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| {
            let f: Vec<&str> = l.split(':').collect();
            Some((
                f.first()?.to_string(),
                f.get(2)?.parse().ok()?,
                f.get(3)?.parse().ok()?,
                f.get(5).unwrap_or(&"/").to_string(),
            ))
        })
        .collect()
}

/// A line of /etc/group: name, gid, members.
fn group_entries(text: &str) -> Vec<(String, u32, Vec<String>)> {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| {
            let f: Vec<&str> = l.split(':').collect();
            Some((
                f.first()?.to_string(),
                f.get(2)?.parse().ok()?,
                f.get(3)
                    .map(|m| {
                        m.split(',')
                            .filter(|s| !s.is_empty())
                            .map(str::to_string)
                            .collect()
                    })
                    .unwrap_or_default(),
            ))
        })
        .collect()
}

/// Resolves `user` (`uid`, `uid:gid`, `name`, `name:group`) with the image's /etc/passwd and
/// /etc/group texts (empty when the image has none). A bare uid not in passwd gets gid 0; a
/// user listed in passwd also gets the groups that name it as a member. Returns the user and home.
pub fn resolve_user(spec: &str, passwd: &str, group: &str) -> Result<(User, String), SpecError> {
    let (user_part, group_part) = match spec.split_once(':') {
        Some((u, g)) => (u, Some(g)),
        None => (spec, None),
    };
    if user_part.is_empty() {
        return Err(SpecError::User(format!(
            "expected uid, uid:gid, name or name:group, found {spec:?}"
        )));
    }
    let users = passwd_entries(passwd);
    let groups = group_entries(group);
    let entry = match user_part.parse::<u32>() {
        Ok(uid) => {
            users
                .iter()
                .find(|u| u.1 == uid)
                .cloned()
                .or(Some((String::new(), uid, 0, "/".into())))
        }
        Err(_) => users.iter().find(|u| u.0 == user_part).cloned(),
    };
    let Some((name, uid, primary_gid, home)) = entry else {
        return Err(SpecError::User(format!(
            "unable to find user {user_part}: no matching entries in the image's /etc/passwd"
        )));
    };
    let gid = match group_part {
        None => primary_gid,
        Some(g) => match g.parse::<u32>() {
            Ok(gid) => gid,
            Err(_) => groups
                .iter()
                .find(|e| e.0 == g)
                .map(|e| e.1)
                .ok_or_else(|| {
                    SpecError::User(format!(
                        "unable to find group {g}: no matching entries in the image's /etc/group"
                    ))
                })?,
        },
    };
    let mut additional_gids: Vec<u32> = if name.is_empty() {
        Vec::new()
    } else {
        groups
            .iter()
            .filter(|e| e.2.contains(&name) && e.1 != gid)
            .map(|e| e.1)
            .collect()
    };
    additional_gids.sort_unstable();
    additional_gids.dedup();
    Ok((
        User {
            uid,
            gid,
            additional_gids,
        },
        if home.is_empty() { "/".into() } else { home },
    ))
}

/// Reads `/etc/<name>` of a root filesystem without following symlinks out of it; empty when absent.
pub fn read_etc(rootfs: &Path, name: &str) -> String {
    let etc = rootfs.join("etc");
    let file = etc.join(name);
    let plain = |p: &Path| {
        std::fs::symlink_metadata(p)
            .map(|m| !m.file_type().is_symlink())
            .unwrap_or(false)
    };
    if plain(&etc) && plain(&file) {
        std::fs::read_to_string(file).unwrap_or_default()
    } else {
        String::new()
    }
}

/// ECS `ulimits` (`[{name, softLimit, hardLimit}]`) as rlimits; NOFILE defaults to
/// `default_nofile` (soft, hard).
pub fn rlimits(
    def: &ContainerDefinition,
    default_nofile: (u64, u64),
) -> Result<Vec<Rlimit>, SpecError> {
    let mut out = vec![Rlimit {
        kind: "RLIMIT_NOFILE".into(),
        hard: default_nofile.1,
        soft: default_nofile.0,
    }];
    let Some(list) = def.extra.get("ulimits") else {
        return Ok(out);
    };
    let Some(list) = list.as_array() else {
        return Err(SpecError::Ulimits(format!("expected a list, found {list}")));
    };
    let mut errors = Vec::new();
    for (i, u) in list.iter().enumerate() {
        let name = u.get("name").and_then(|v| v.as_str()).unwrap_or("");
        let soft = u.get("softLimit").and_then(|v| v.as_i64());
        let hard = u.get("hardLimit").and_then(|v| v.as_i64());
        let known = [
            "core",
            "cpu",
            "data",
            "fsize",
            "locks",
            "memlock",
            "msgqueue",
            "nice",
            "nofile",
            "nproc",
            "rss",
            "rtprio",
            "rttime",
            "sigpending",
            "stack",
        ];
        if !known.contains(&name) {
            errors.push(format!(
                "[{i}].name: expected one of {}, found {name:?}",
                known.join(", ")
            ));
            continue;
        }
        let (Some(soft), Some(hard)) = (soft, hard) else {
            errors.push(format!("[{i}]: expected softLimit and hardLimit integers"));
            continue;
        };
        // ECS uses -1 for unlimited.
        let lim = |v: i64| if v < 0 { u64::MAX } else { v as u64 };
        if lim(soft) > lim(hard) {
            errors.push(format!("[{i}]: softLimit {soft} exceeds hardLimit {hard}"));
            continue;
        }
        let kind = format!("RLIMIT_{}", name.to_uppercase());
        out.retain(|r| r.kind != kind);
        out.push(Rlimit {
            kind,
            hard: lim(hard),
            soft: lim(soft),
        });
    }
    if errors.is_empty() {
        Ok(out)
    } else {
        Err(SpecError::Ulimits(errors.join("; ")))
    }
}

/// CPU shares and quota: container `cpu` units, else the task's; shares = units (min 2) and a
/// CFS quota of units/1024 cores. None when neither is set.
pub fn cpu_resources(container_cpu: u32, task_cpu: Option<u32>) -> Option<Cpu> {
    let units = Some(container_cpu)
        .filter(|c| *c > 0)
        .or(task_cpu.filter(|c| *c > 0))?;
    Some(Cpu {
        shares: u64::from(units).max(2),
        quota: Some((CFS_PERIOD * u64::from(units) / 1024).max(1000) as i64),
        period: Some(CFS_PERIOD),
    })
}

/// Memory limits: container `memory` MiB (else the task's) as the hard limit,
/// `memoryReservation` as the soft limit. Swap is capped at the limit (no swap) when accounted,
/// plus `linuxParameters.maxSwap` MiB when given.
pub fn memory_resources(
    def: &ContainerDefinition,
    task_memory: Option<u32>,
    swap_accounting: bool,
    max_swap_mib: u64,
) -> Option<Memory> {
    const MIB: i64 = 1024 * 1024;
    let limit = def.memory.or(task_memory).map(|m| i64::from(m) * MIB);
    let reservation = def.memory_reservation.map(|m| i64::from(m) * MIB);
    if limit.is_none() && reservation.is_none() {
        return None;
    }
    let max_swap = i64::try_from(max_swap_mib).unwrap_or(i64::MAX / MIB);
    Some(Memory {
        limit,
        reservation,
        swap: limit
            .filter(|_| swap_accounting)
            .map(|l| l.saturating_add(max_swap.saturating_mul(MIB))),
    })
}

fn mount(dest: &str, kind: &str, source: &str, options: &[&str]) -> Mount {
    Mount {
        destination: dest.into(),
        kind: kind.into(),
        source: source.into(),
        options: options.iter().map(|s| s.to_string()).collect(),
    }
}

/// Builds the runtime spec.
pub fn build_spec(input: &SpecInput<'_>) -> Result<Spec, SpecError> {
    let def = input.definition;
    let args = container_args(def, input.image_config);
    if args.first().is_none_or(|a| a.is_empty()) {
        return Err(SpecError::NoCommand);
    }
    let cwd = def
        .working_directory
        .clone()
        .filter(|d| !d.is_empty())
        .or_else(|| image_string(input.image_config, "WorkingDir"))
        .unwrap_or_else(|| "/".into());
    if !cwd.starts_with('/') {
        return Err(SpecError::RelativeCwd(cwd));
    }
    let settings: LinuxSettings = berth_model::linux::linux_settings(def).map_err(|e| {
        SpecError::Linux(
            e.0.iter()
                .map(|e| e.to_string())
                .collect::<Vec<_>>()
                .join("; "),
        )
    })?;
    let caps: Vec<String> = settings
        .capabilities
        .iter()
        .map(|c| format!("CAP_{c}"))
        .collect();
    let shm_size = format!("size={}k", settings.shared_memory_mib.unwrap_or(64) * 1024);
    let mut mounts = vec![
        mount("/proc", "proc", "proc", &[]),
        mount(
            "/dev",
            "tmpfs",
            "tmpfs",
            &["nosuid", "strictatime", "mode=755", "size=65536k"],
        ),
        mount(
            "/dev/pts",
            "devpts",
            "devpts",
            &[
                "nosuid",
                "noexec",
                "newinstance",
                "ptmxmode=0666",
                "mode=0620",
                "gid=5",
            ],
        ),
        mount(
            "/dev/shm",
            "tmpfs",
            "shm",
            &["nosuid", "noexec", "nodev", "mode=1777", &shm_size],
        ),
        mount(
            "/dev/mqueue",
            "mqueue",
            "mqueue",
            &["nosuid", "noexec", "nodev"],
        ),
        mount(
            "/sys",
            "sysfs",
            "sysfs",
            &["nosuid", "noexec", "nodev", "ro"],
        ),
        mount(
            "/sys/fs/cgroup",
            "cgroup",
            "cgroup",
            &["nosuid", "noexec", "nodev", "relatime", "ro"],
        ),
    ];
    if !settings.tmpfs.iter().any(|t| t.container_path == "/tmp") {
        mounts.push(mount(
            "/tmp",
            "tmpfs",
            "tmpfs",
            &["nosuid", "nodev", "mode=1777"],
        ));
    }
    for t in &settings.tmpfs {
        let mut options = vec!["nosuid".to_string(), "nodev".to_string()];
        options.extend(t.mount_options.iter().cloned());
        options.push(format!("size={}k", t.size_mib.saturating_mul(1024)));
        mounts.push(Mount {
            destination: t.container_path.clone(),
            kind: "tmpfs".into(),
            source: "tmpfs".into(),
            options,
        });
    }
    for (dest, src) in &input.etc_files {
        mounts.push(Mount {
            destination: dest.clone(),
            kind: "bind".into(),
            source: src.display().to_string(),
            options: vec!["rbind".into(), "ro".into()],
        });
    }
    let mut namespaces: Vec<Namespace> = ["pid", "ipc", "uts", "mount"]
        .iter()
        .map(|k| Namespace {
            kind: k.to_string(),
            path: None,
        })
        .collect();
    match &input.network {
        NetworkNamespace::Host => {}
        NetworkNamespace::Join(path) => namespaces.push(Namespace {
            kind: "network".into(),
            path: Some(path.display().to_string()),
        }),
        NetworkNamespace::Empty => namespaces.push(Namespace {
            kind: "network".into(),
            path: None,
        }),
    }
    Ok(Spec {
        oci_version: "1.0.2".into(),
        process: Process {
            terminal: false,
            user: input.user.clone(),
            args,
            env: container_env(input.image_config, input.env, &input.hostname, &input.home),
            cwd,
            capabilities: Capabilities {
                bounding: caps.clone(),
                effective: caps.clone(),
                permitted: caps.clone(),
                inheritable: Vec::new(),
            },
            rlimits: rlimits(def, input.default_nofile)?,
            no_new_privileges: true,
        },
        root: Root {
            path: input.rootfs.display().to_string(),
            readonly: def.readonly_root_filesystem.unwrap_or(false),
        },
        hostname: input.hostname.clone(),
        mounts,
        linux: Linux {
            resources: Resources {
                devices: vec![DeviceRule {
                    allow: false,
                    access: "rwm".into(),
                }],
                memory: memory_resources(
                    def,
                    input.task_memory,
                    input.swap_accounting,
                    settings.max_swap_mib,
                ),
                cpu: cpu_resources(def.cpu, input.task_cpu),
                pids: settings.pids_limit.map(|n| Pids {
                    limit: i64::try_from(n).unwrap_or(i64::MAX),
                }),
            },
            cgroups_path: input.cgroups_path.clone(),
            namespaces,
            masked_paths: MASKED.iter().map(|s| s.to_string()).collect(),
            readonly_paths: READONLY.iter().map(|s| s.to_string()).collect(),
            seccomp: Some(seccomp::default_profile(&settings.capabilities)),
        },
    })
}

#[cfg(test)]
mod tests;
