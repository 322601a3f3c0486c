//! Container resource usage: CPU time and memory from a container's cgroups (v1 `cpuacct` and
//! `memory`, or the v2 unified hierarchy), or from /proc for a process tree.

use std::path::{Path, PathBuf};

/// One observation of a container's usage.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Sample {
    /// CPU time used since the container started, in seconds.
    pub cpu_seconds_total: f64,
    /// Memory in use now, in bytes (without inactive page cache for cgroups; RSS for processes).
    pub memory_bytes: u64,
}

/// A mounted cgroup hierarchy: its mount point, its root within the hierarchy, and either the v1
/// controllers it carries or none for v2.
#[derive(Debug, Clone, PartialEq)]
struct Hierarchy {
    mount_point: PathBuf,
    root: String,
    controllers: Vec<String>,
    v2: bool,
}

fn hierarchies(mountinfo: &str) -> Vec<Hierarchy> {
    let mut out = Vec::new();
    for line in mountinfo.lines() {
        let Some((left, right)) = line.split_once(" - ") else {
            continue;
        };
        let l: Vec<&str> = left.split(' ').collect();
        let r: Vec<&str> = right.split(' ').collect();
        let (Some(root), Some(mount_point), Some(fstype)) = (l.get(3), l.get(4), r.first()) else {
            continue;
        };
        let v2 = *fstype == "cgroup2";
        if *fstype != "cgroup" && !v2 {
            continue;
        }
        let controllers = if v2 {
            Vec::new()
        } else {
            r.get(2)
                .map(|o| o.split(',').map(str::to_string).collect())
                .unwrap_or_default()
        };
        out.push(Hierarchy {
            mount_point: PathBuf::from(mount_point),
            root: root.to_string(),
            controllers,
            v2,
        });
    }
    out
}

/// The directory of `pid`'s cgroup for a v1 `controller` (e.g. `memory`), or its v2 cgroup when
/// `controller` is None or no v1 hierarchy carries it.
fn cgroup_dir_from(
    proc_cgroup: &str,
    mountinfo: &str,
    controller: Option<&str>,
) -> Option<(PathBuf, bool)> {
    let hs = hierarchies(mountinfo);
    let join = |h: &Hierarchy, path: &str| {
        let rel = path
            .strip_prefix(h.root.as_str())
            .filter(|_| h.root != "/")
            .unwrap_or(path);
        h.mount_point.join(rel.trim_start_matches('/'))
    };
    if let Some(c) = controller {
        for line in proc_cgroup.lines() {
            let mut f = line.splitn(3, ':');
            let (_, ctrls, path) = (f.next()?, f.next()?, f.next()?);
            if ctrls.split(',').any(|x| x == c) {
                if let Some(h) = hs
                    .iter()
                    .find(|h| !h.v2 && h.controllers.iter().any(|x| x == c))
                {
                    return Some((join(h, path), false));
                }
            }
        }
    }
    let path = proc_cgroup.lines().find_map(|l| l.strip_prefix("0::"))?;
    let h = hs.iter().find(|h| h.v2)?;
    Some((join(h, path), true))
}

/// `proc_cgroup` (a `/proc/<pid>/cgroup` text) with `relative` appended to every hierarchy's path.
fn nest(proc_cgroup: &str, relative: &str) -> String {
    let relative = relative.trim_matches('/');
    proc_cgroup
        .lines()
        .map(|l| format!("{}/{relative}\n", l.trim_end_matches('/')))
        .collect()
}

/// The cgroup directory runc makes for the relative cgroups path `relative` when this process
/// starts it (runc nests a relative path under the cgroup of its caller), for a v1 controller (or
/// the v2 cgroup); known before the container runs, so even a container gone at once has it.
pub fn nested_cgroup_dir(relative: &str, controller: &str) -> Option<(PathBuf, bool)> {
    let own = std::fs::read_to_string("/proc/self/cgroup").ok()?;
    let mountinfo = std::fs::read_to_string("/proc/self/mountinfo").ok()?;
    cgroup_dir_from(&nest(&own, relative), &mountinfo, Some(controller))
}

/// The cgroup directory of a process for a v1 controller (or its v2 cgroup); `bool` is v2.
pub fn cgroup_dir(pid: i32, controller: &str) -> Option<(PathBuf, bool)> {
    let proc_cgroup = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).ok()?;
    let mountinfo = std::fs::read_to_string("/proc/self/mountinfo").ok()?;
    cgroup_dir_from(&proc_cgroup, &mountinfo, Some(controller))
}

fn read_u64(path: &Path) -> Option<u64> {
    std::fs::read_to_string(path).ok()?.trim().parse().ok()
}

/// A `key value` line of a flat-keyed cgroup file (`memory.stat`, `cpu.stat`, `memory.events`).
pub fn keyed(text: &str, key: &str) -> Option<u64> {
    text.lines().find_map(|l| {
        let (k, v) = l.split_once(' ')?;
        (k == key).then(|| v.trim().parse().ok()).flatten()
    })
}

/// Usage of the cgroup `pid` is in.
pub fn cgroup_sample(pid: i32) -> Option<Sample> {
    let (cpu_dir, cpu_v2) = cgroup_dir(pid, "cpuacct")?;
    let cpu_seconds_total = if cpu_v2 {
        let stat = std::fs::read_to_string(cpu_dir.join("cpu.stat")).ok()?;
        keyed(&stat, "usage_usec")? as f64 / 1e6
    } else {
        read_u64(&cpu_dir.join("cpuacct.usage"))? as f64 / 1e9
    };
    let (mem_dir, mem_v2) = cgroup_dir(pid, "memory")?;
    let (usage, stat, inactive_key) = if mem_v2 {
        (
            read_u64(&mem_dir.join("memory.current"))?,
            std::fs::read_to_string(mem_dir.join("memory.stat")).unwrap_or_default(),
            "inactive_file",
        )
    } else {
        (
            read_u64(&mem_dir.join("memory.usage_in_bytes"))?,
            std::fs::read_to_string(mem_dir.join("memory.stat")).unwrap_or_default(),
            "total_inactive_file",
        )
    };
    let inactive = keyed(&stat, inactive_key).unwrap_or(0);
    Some(Sample {
        cpu_seconds_total,
        memory_bytes: usage.saturating_sub(inactive),
    })
}

/// How many OOM kills the memory cgroup in `dir` has seen (`oom_kill` of `memory.oom_control`
/// on v1, of `memory.events` on v2).
pub fn oom_kills(dir: &Path, v2: bool) -> Option<u64> {
    let file = if v2 {
        "memory.events"
    } else {
        "memory.oom_control"
    };
    keyed(&std::fs::read_to_string(dir.join(file)).ok()?, "oom_kill")
}

/// Fields 3.. of /proc/PID/stat (after the command name).
fn stat_fields(pid: i32) -> Option<Vec<String>> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = &stat[stat.rfind(')')? + 1..];
    Some(rest.split_whitespace().map(str::to_string).collect())
}

/// Usage of the process group `pgid` (the shim makes the container's process a group leader):
/// utime+stime (and reaped children's) of its live members, and their summed RSS.
pub fn process_group_sample(pgid: i32) -> Option<Sample> {
    let ticks = nix::unistd::sysconf(nix::unistd::SysconfVar::CLK_TCK)
        .ok()
        .flatten()
        .unwrap_or(100) as f64;
    let page = nix::unistd::sysconf(nix::unistd::SysconfVar::PAGE_SIZE)
        .ok()
        .flatten()
        .unwrap_or(4096) as u64;
    let mut found = false;
    let mut sample = Sample::default();
    for entry in std::fs::read_dir("/proc").ok()?.flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<i32>() else {
            continue;
        };
        let Some(f) = stat_fields(pid) else { continue };
        // f[0] = state (field 3), f[2] = pgrp (5), f[11..15] = utime stime cutime cstime (14-17),
        // f[21] = rss in pages (24).
        if f.get(2).and_then(|g| g.parse::<i32>().ok()) != Some(pgid) || f[0] == "Z" {
            continue;
        }
        found = true;
        let n = |i: usize| f.get(i).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0);
        sample.cpu_seconds_total += (n(11) + n(12) + n(13) + n(14)) as f64 / ticks;
        sample.memory_bytes += n(21) * page;
    }
    found.then_some(sample)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn a_relative_cgroups_path_nests_under_every_hierarchy_of_the_caller() {
        let own = "4:memory:/process_api/ab\n3:cpu,cpuacct:/\n0::/user.slice/x.scope\n";
        assert_eq!(
            nest(own, "berth/c1"),
            "4:memory:/process_api/ab/berth/c1\n3:cpu,cpuacct:/berth/c1\n0::/user.slice/x.scope/berth/c1\n"
        );
    }

    const MOUNTINFO: &str = "\
30 25 0:26 / /sys/fs/cgroup/cpu rw,relatime shared:5 - cgroup cgroup rw,cpu
31 25 0:27 / /sys/fs/cgroup/cpuacct rw,relatime shared:6 - cgroup cgroup rw,cpuacct
33 25 0:29 / /sys/fs/cgroup/memory rw,relatime shared:8 - cgroup cgroup rw,memory
40 25 0:35 / /sys/fs/cgroup/unified rw,relatime shared:9 - cgroup2 cgroup2 rw
22 1 8:1 / / rw,relatime - ext4 /dev/vda rw
";

    #[test]
    fn v1_controllers_and_v2_paths_are_found() {
        let cg = "4:memory:/process_api/x/berth/c1\n2:cpuacct:/berth/c1\n0::/berth/c1\n";
        assert_eq!(
            cgroup_dir_from(cg, MOUNTINFO, Some("memory")),
            Some((
                PathBuf::from("/sys/fs/cgroup/memory/process_api/x/berth/c1"),
                false
            ))
        );
        assert_eq!(
            cgroup_dir_from(cg, MOUNTINFO, Some("cpuacct")),
            Some((PathBuf::from("/sys/fs/cgroup/cpuacct/berth/c1"), false))
        );
        // A controller no v1 hierarchy carries falls back to the unified hierarchy.
        assert_eq!(
            cgroup_dir_from(cg, MOUNTINFO, Some("pids")),
            Some((PathBuf::from("/sys/fs/cgroup/unified/berth/c1"), true))
        );
        assert_eq!(cgroup_dir_from("", MOUNTINFO, Some("memory")), None);
    }

    #[test]
    fn keyed_files_parse() {
        let text = "oom_kill_disable 0\nunder_oom 0\noom_kill 2\n";
        assert_eq!(keyed(text, "oom_kill"), Some(2));
        assert_eq!(keyed(text, "missing"), None);
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("memory.oom_control"), text).unwrap();
        assert_eq!(oom_kills(dir.path(), false), Some(2));
        assert_eq!(oom_kills(dir.path(), true), None);
    }

    #[test]
    fn this_process_group_is_measured() {
        let me = nix::unistd::getpgrp().as_raw();
        let s = process_group_sample(me).unwrap();
        assert!(s.memory_bytes > 0 && s.cpu_seconds_total >= 0.0, "{s:?}");
        assert_eq!(process_group_sample(i32::MAX), None);
    }
}
