//! The default seccomp profile of every runc container (`linux.seccomp` in `config.json`), in the
//! spirit of Docker's: every syscall is allowed except a deny-list of ones that reach the kernel's
//! global state (modules, kexec, clocks, swap, reboot, keyrings, BPF, perf), make or join
//! namespaces (`unshare`, `setns`, `clone` with namespace flags), mount file systems, or look into
//! other processes (`ptrace`, `process_vm_*`). Denied calls fail with EPERM; `clone3`, whose flags
//! a filter cannot see, fails with ENOSYS so C libraries fall back to `clone`.
//!
//! Unlike Docker, adding `SYS_ADMIN` does not lift the mount and namespace rules: a berth task
//! never mounts or unshares. A few rules are lifted by the capability that guards the same
//! operation (`SYS_PTRACE` allows `ptrace`, `SYS_TIME` the clock calls, and so on).

use serde::{Deserialize, Serialize};

const EPERM: u32 = 1;
const ENOSYS: u32 = 38;

/// `linux.seccomp`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Seccomp {
    pub default_action: String,
    pub architectures: Vec<String>,
    pub syscalls: Vec<SyscallRule>,
}

/// One rule: these syscalls (when `args` match) get `action`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SyscallRule {
    pub names: Vec<String>,
    pub action: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub errno_ret: Option<u32>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub args: Vec<SyscallArg>,
}

/// A condition on a syscall argument.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SyscallArg {
    pub index: u32,
    pub value: u64,
    pub value_two: u64,
    pub op: String,
}

/// Denied syscalls and the capability (ECS name) that lifts the rule, if any.
const DENIED: &[(&[&str], Option<&str>)] = &[
    (
        &[
            "mount",
            "umount",
            "umount2",
            "move_mount",
            "open_tree",
            "fsopen",
            "fsconfig",
            "fsmount",
            "fspick",
            "mount_setattr",
            "pivot_root",
            "unshare",
            "setns",
            "name_to_handle_at",
            "open_by_handle_at",
        ],
        None,
    ),
    (
        &[
            "init_module",
            "finit_module",
            "delete_module",
            "create_module",
            "query_module",
            "get_kernel_syms",
            "kexec_load",
            "kexec_file_load",
        ],
        None,
    ),
    (
        &[
            "bpf",
            "perf_event_open",
            "userfaultfd",
            "add_key",
            "request_key",
            "keyctl",
            "lookup_dcookie",
            "nfsservctl",
            "quotactl",
            "quotactl_fd",
            "swapon",
            "swapoff",
            "sysfs",
            "_sysctl",
            "uselib",
            "ustat",
            "vm86",
            "vm86old",
            "iopl",
            "ioperm",
            "fanotify_init",
        ],
        None,
    ),
    (
        &["ptrace", "process_vm_readv", "process_vm_writev", "kcmp"],
        Some("SYS_PTRACE"),
    ),
    (
        &["settimeofday", "stime", "clock_settime", "clock_adjtime"],
        Some("SYS_TIME"),
    ),
    (&["reboot"], Some("SYS_BOOT")),
    (&["acct"], Some("SYS_PACCT")),
    (
        &["mbind", "set_mempolicy", "get_mempolicy", "move_pages"],
        Some("SYS_NICE"),
    ),
];

/// `clone` flags that make namespaces.
const CLONE_NAMESPACE_FLAGS: &[u64] = &[
    0x0002_0000, // CLONE_NEWNS
    0x0200_0000, // CLONE_NEWCGROUP
    0x0400_0000, // CLONE_NEWUTS
    0x0800_0000, // CLONE_NEWIPC
    0x1000_0000, // CLONE_NEWUSER
    0x2000_0000, // CLONE_NEWPID
    0x4000_0000, // CLONE_NEWNET
];

/// The seccomp architectures of the machine this agent runs on (with its 32-bit companions).
pub fn architectures() -> Vec<String> {
    let names: &[&str] = match std::env::consts::ARCH {
        "x86_64" => &["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"],
        "aarch64" => &["SCMP_ARCH_AARCH64", "SCMP_ARCH_ARM"],
        "x86" => &["SCMP_ARCH_X86"],
        "arm" => &["SCMP_ARCH_ARM"],
        "riscv64" => &["SCMP_ARCH_RISCV64"],
        "powerpc64" => &["SCMP_ARCH_PPC64", "SCMP_ARCH_PPC"],
        "s390x" => &["SCMP_ARCH_S390X", "SCMP_ARCH_S390"],
        _ => &[],
    };
    names.iter().map(|s| s.to_string()).collect()
}

fn deny(names: &[&str], errno: u32) -> SyscallRule {
    SyscallRule {
        names: names.iter().map(|s| s.to_string()).collect(),
        action: "SCMP_ACT_ERRNO".into(),
        errno_ret: Some(errno),
        args: Vec::new(),
    }
}

/// The default profile for a container holding `capabilities` (ECS names).
pub fn default_profile(capabilities: &[String]) -> Seccomp {
    let mut syscalls: Vec<SyscallRule> = DENIED
        .iter()
        .filter(|(_, lifted_by)| lifted_by.is_none_or(|cap| !capabilities.iter().any(|c| c == cap)))
        .map(|(names, _)| deny(names, EPERM))
        .collect();
    // s390 passes clone's flags second; everywhere else they come first.
    let flags_index = if std::env::consts::ARCH.starts_with("s390") {
        1
    } else {
        0
    };
    for flag in CLONE_NAMESPACE_FLAGS {
        syscalls.push(SyscallRule {
            args: vec![SyscallArg {
                index: flags_index,
                value: *flag,
                value_two: *flag,
                op: "SCMP_CMP_MASKED_EQ".into(),
            }],
            ..deny(&["clone"], EPERM)
        });
    }
    syscalls.push(deny(&["clone3"], ENOSYS));
    Seccomp {
        default_action: "SCMP_ACT_ALLOW".into(),
        architectures: architectures(),
        syscalls,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn denied(p: &Seccomp) -> Vec<String> {
        p.syscalls
            .iter()
            .filter(|r| r.args.is_empty())
            .flat_map(|r| r.names.clone())
            .collect()
    }

    #[test]
    fn dangerous_syscalls_are_denied_and_capabilities_lift_their_own_rules() {
        let p = default_profile(&[]);
        assert_eq!(p.default_action, "SCMP_ACT_ALLOW");
        let names = denied(&p);
        for n in [
            "mount",
            "umount2",
            "kexec_load",
            "init_module",
            "ptrace",
            "bpf",
            "unshare",
            "setns",
            "keyctl",
            "clone3",
        ] {
            assert!(names.contains(&n.to_string()), "{n} is denied");
        }
        let namespace_clones = p
            .syscalls
            .iter()
            .filter(|r| r.names == ["clone"] && r.args.len() == 1)
            .count();
        assert_eq!(namespace_clones, 7);
        let with_ptrace = denied(&default_profile(&["SYS_PTRACE".into()]));
        assert!(!with_ptrace.contains(&"ptrace".to_string()));
        let with_admin = denied(&default_profile(&["SYS_ADMIN".into()]));
        assert!(
            with_admin.contains(&"mount".to_string())
                && with_admin.contains(&"unshare".to_string()),
            "SYS_ADMIN does not lift the mount and namespace rules"
        );
        let json = serde_json::to_value(&p).unwrap_or_default();
        assert_eq!(json["syscalls"][0]["errnoRet"], 1);
        assert_eq!(json["syscalls"][0]["action"], "SCMP_ACT_ERRNO");
    }
}
