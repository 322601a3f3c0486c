//! The agent's files on disk: atomic writes, JSON records, and process identity checks via /proc.

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use std::io::{self, Write};
use std::path::Path;

/// Writes `bytes` to `path` atomically: a sibling temporary file, fsync, then rename.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = path.with_file_name(format!(".{name}.{}.tmp", std::process::id()));
    {
        let mut file = std::fs::File::create(&tmp)?;
        file.write_all(bytes)?;
        file.sync_all()?;
    }
    std::fs::rename(&tmp, path)
}

/// Serializes `value` as JSON and writes it atomically.
pub fn write_json_atomic<T: Serialize>(path: &Path, value: &T) -> io::Result<()> {
    let bytes = serde_json::to_vec_pretty(value).map_err(io::Error::other)?;
    write_atomic(path, &bytes)
}

/// Writes `bytes` to `path` atomically (a reader sees the old file or the new one, also after the
/// agent or a shim crashes) without waiting for the disk: for records of running processes (pid
/// files, task status, a container's bundle), which a power loss ends anyway. An fsync costs
/// milliseconds to tens of milliseconds on a busy disk, and a container start writes several.
pub fn write_atomic_unsynced(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = path.with_file_name(format!(".{name}.{}.tmp", std::process::id()));
    std::fs::write(&tmp, bytes)?;
    std::fs::rename(&tmp, path)
}

/// Serializes `value` as JSON and writes it like `write_atomic_unsynced`.
pub fn write_json_unsynced<T: Serialize>(path: &Path, value: &T) -> io::Result<()> {
    let bytes = serde_json::to_vec_pretty(value).map_err(io::Error::other)?;
    write_atomic_unsynced(path, &bytes)
}

/// Reads a JSON file; `Ok(None)` when it does not exist.
pub fn read_json<T: DeserializeOwned>(path: &Path) -> io::Result<Option<T>> {
    match std::fs::read(path) {
        Ok(bytes) => serde_json::from_slice(&bytes)
            .map(Some)
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e),
    }
}

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// The kernel's start time of a process (field 22 of /proc/PID/stat, clock ticks since boot), or
/// `None` when the process does not exist or is a zombie.
pub fn proc_start_time(pid: i32) -> Option<u64> {
    if pid <= 0 {
        return None;
    }
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) is in parentheses and may itself contain spaces or ')'.
    let rest = &stat[stat.rfind(')')? + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // fields[0] is field 3 (state); field 22 is fields[19].
    if matches!(fields.first(), Some(&"Z") | Some(&"X")) {
        return None;
    }
    fields.get(19)?.parse().ok()
}

/// Whether `pid` is alive and is the same process as when `start_time` was recorded.
pub fn process_matches(pid: i32, start_time: u64) -> bool {
    proc_start_time(pid) == Some(start_time)
}

/// What the shim records after its child exits (`exit.json`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct ExitRecord {
    /// The exit code, or 128 + signal number when the child was killed by a signal (as Docker does).
    pub exit_code: Option<i32>,
    /// The signal that killed the child, if any.
    pub signal: Option<i32>,
    /// Set when the child could not be started at all.
    pub start_error: Option<String>,
    /// Milliseconds since the epoch.
    pub finished_at_ms: i64,
    /// The memory cgroup's OOM killer struck the container (runc containers only).
    #[serde(default)]
    pub oom_killed: bool,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn atomic_write_replaces_and_reads_back() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.json");
        assert_eq!(read_json::<ExitRecord>(&path).unwrap(), None);
        let rec = ExitRecord {
            exit_code: Some(3),
            ..Default::default()
        };
        write_json_atomic(&path, &rec).unwrap();
        write_json_atomic(&path, &rec).unwrap();
        assert_eq!(read_json::<ExitRecord>(&path).unwrap(), Some(rec));
        // No temporary files are left behind.
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
        std::fs::write(&path, b"{not json").unwrap();
        assert!(read_json::<ExitRecord>(&path).is_err());
    }

    #[test]
    fn start_time_identifies_this_process_only() {
        let me = std::process::id() as i32;
        let t = proc_start_time(me).unwrap();
        assert!(process_matches(me, t));
        assert!(!process_matches(me, t + 1));
        assert_eq!(proc_start_time(0), None);
        assert_eq!(proc_start_time(i32::MAX), None);
    }
}
