//! Wakes a task when a file appears in one of its container directories (inotify): the shim's
//! `child.pid` and `exit.json` are written by rename, so the task sees a container start or exit
//! as it happens instead of on its next poll.

use nix::sys::inotify::{AddWatchFlags, InitFlags, Inotify};
use std::os::fd::{AsFd, AsRawFd, RawFd};
use std::path::Path;
use std::sync::Arc;
use tokio::io::unix::AsyncFd;
use tokio::sync::Notify;
use tokio::task::JoinHandle;

struct Fd(Inotify);

impl AsRawFd for Fd {
    fn as_raw_fd(&self) -> RawFd {
        self.0.as_fd().as_raw_fd()
    }
}

/// An inotify instance whose events wake one `Notify`; stops when dropped.
pub struct DirWatch {
    fd: Arc<AsyncFd<Fd>>,
    reader: JoinHandle<()>,
}

impl DirWatch {
    /// A watch that calls `wake.notify_one()` on every batch of events. Needs a tokio runtime.
    pub fn new(wake: Arc<Notify>) -> std::io::Result<DirWatch> {
        let inotify = Inotify::init(InitFlags::IN_NONBLOCK | InitFlags::IN_CLOEXEC)
            .map_err(std::io::Error::from)?;
        // `AsyncFd::new` is deprecated for fds that may close under it; this one is owned by the
        // wrapped `Inotify` and lives exactly as long as the `AsyncFd` (the safe-code alternative,
        // `register`, is `unsafe` for the same condition).
        #[allow(deprecated)]
        let fd = Arc::new(AsyncFd::new(Fd(inotify))?);
        let reading = fd.clone();
        let reader = tokio::spawn(async move {
            loop {
                let Ok(mut ready) = reading.readable().await else {
                    return;
                };
                // Drain every queued event; one wake covers them all.
                loop {
                    match reading.get_ref().0.read_events() {
                        Ok(events) if !events.is_empty() => continue,
                        Ok(_) | Err(nix::Error::EAGAIN) => break,
                        Err(error) => {
                            tracing::warn!(%error, "inotify read failed");
                            return;
                        }
                    }
                }
                ready.clear_ready();
                wake.notify_one();
            }
        });
        Ok(DirWatch { fd, reader })
    }

    /// Watches `dir` for files created, written or renamed into it.
    pub fn add(&self, dir: &Path) -> std::io::Result<()> {
        self.fd
            .get_ref()
            .0
            .add_watch(
                dir,
                AddWatchFlags::IN_CREATE
                    | AddWatchFlags::IN_CLOSE_WRITE
                    | AddWatchFlags::IN_MOVED_TO,
            )
            .map(|_| ())
            .map_err(std::io::Error::from)
    }
}

impl Drop for DirWatch {
    fn drop(&mut self) {
        self.reader.abort();
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use std::time::Duration;

    #[tokio::test]
    async fn a_file_renamed_into_a_watched_directory_wakes() {
        let dir = tempfile::tempdir().unwrap();
        let wake = Arc::new(Notify::new());
        let watch = DirWatch::new(wake.clone()).unwrap();
        watch.add(dir.path()).unwrap();
        crate::state::write_atomic(&dir.path().join("child.pid"), b"42").unwrap();
        tokio::time::timeout(Duration::from_secs(5), wake.notified())
            .await
            .expect("woken by the rename");
    }
}
