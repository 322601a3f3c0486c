//! The report board (the latest state of every task on this node) and the loop that sends it to the
//! control plane: a full report at start and every 5 s, changed tasks as soon as they change.
//! Changes made while a report is on its way are batched into the next one.

use crate::client::{Backoff, ControlPlane};
use berth_model::protocol::agent::{Report, TaskReport};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Mutex;
use std::time::Duration;
use tokio::sync::{watch, Notify};

/// Period of full reports.
const FULL_EVERY: Duration = Duration::from_secs(5);

#[derive(Debug, Default)]
struct Board {
    tasks: BTreeMap<String, TaskReport>,
    dirty: BTreeSet<String>,
    /// Taken for a report that is being sent.
    in_flight: BTreeSet<String>,
}

/// Latest report of every task, and which changed since they were last sent.
#[derive(Debug, Default)]
pub struct ReportBoard {
    inner: Mutex<Board>,
    changed: Notify,
}

impl ReportBoard {
    fn lock(&self) -> std::sync::MutexGuard<'_, Board> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Records a task's state; wakes the reporter when it differs from the last one.
    pub fn publish(&self, report: TaskReport) {
        let mut board = self.lock();
        if board.tasks.get(&report.task_arn) != Some(&report) {
            board.dirty.insert(report.task_arn.clone());
            board.tasks.insert(report.task_arn.clone(), report);
            drop(board);
            self.changed.notify_one();
        }
    }

    /// Forgets a task (its directory is gone).
    pub fn remove(&self, task_arn: &str) {
        let mut board = self.lock();
        board.tasks.remove(task_arn);
        board.dirty.remove(task_arn);
    }

    /// Whether the control plane has the task's latest report (none waits or is being sent), so
    /// the task may be forgotten without losing its last state.
    pub fn settled(&self, task_arn: &str) -> bool {
        let board = self.lock();
        !board.dirty.contains(task_arn) && !board.in_flight.contains(task_arn)
    }

    /// The latest report of one task.
    pub fn get(&self, task_arn: &str) -> Option<TaskReport> {
        self.lock().tasks.get(task_arn).cloned()
    }

    fn take_dirty(&self) -> Vec<TaskReport> {
        let mut board = self.lock();
        let dirty = std::mem::take(&mut board.dirty);
        let taken: Vec<TaskReport> = dirty
            .iter()
            .filter_map(|arn| board.tasks.get(arn).cloned())
            .collect();
        board.in_flight = taken.iter().map(|t| t.task_arn.clone()).collect();
        taken
    }

    fn take_all(&self) -> Vec<TaskReport> {
        let mut board = self.lock();
        board.dirty.clear();
        let taken: Vec<TaskReport> = board.tasks.values().cloned().collect();
        board.in_flight = taken.iter().map(|t| t.task_arn.clone()).collect();
        taken
    }

    /// The report being sent is done (delivered or not).
    fn sent(&self) {
        self.lock().in_flight.clear();
    }

    fn mark_dirty(&self, reports: &[TaskReport]) {
        let mut board = self.lock();
        for r in reports {
            if board.tasks.contains_key(&r.task_arn) {
                board.dirty.insert(r.task_arn.clone());
            }
        }
        drop(board);
        self.changed.notify_one();
    }
}

/// Sends reports until shutdown. Never gives up on errors: failed tasks are sent again.
pub async fn report_loop(
    client: ControlPlane,
    board: std::sync::Arc<ReportBoard>,
    node_id: String,
    host_ip: String,
    mut shutdown: watch::Receiver<bool>,
) {
    let mut full_tick = tokio::time::interval(FULL_EVERY);
    full_tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut backoff = Backoff::default();
    loop {
        let full = tokio::select! {
            _ = full_tick.tick() => true,
            _ = board.changed.notified() => {
                // Let changes made in the same moment (other tasks' steps) join this report.
                tokio::task::yield_now().await;
                false
            }
            _ = shutdown.changed() => return,
        };
        let tasks = if full {
            board.take_all()
        } else {
            board.take_dirty()
        };
        if !full && tasks.is_empty() {
            continue;
        }
        let report = Report {
            node_id: node_id.clone(),
            full,
            tasks,
            host_ip: host_ip.clone(),
        };
        let result = client.report(&report).await;
        if result.is_err() {
            board.mark_dirty(&report.tasks);
        }
        board.sent();
        match result {
            Ok(()) => backoff.reset(),
            Err(error) => {
                let delay = backoff.next_delay();
                tracing::warn!(%error, retry_in_ms = delay.as_millis() as u64, "report failed");
                tokio::select! {
                    _ = tokio::time::sleep(delay) => {}
                    _ = shutdown.changed() => return,
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn task(arn: &str, status: &str) -> TaskReport {
        TaskReport {
            task_arn: arn.into(),
            last_status: status.into(),
            ..Default::default()
        }
    }

    #[test]
    fn only_changes_are_dirty_and_failures_are_resent() {
        let board = ReportBoard::default();
        board.publish(task("a", "PENDING"));
        board.publish(task("b", "PENDING"));
        assert_eq!(board.take_dirty().len(), 2);
        board.publish(task("a", "PENDING"));
        assert!(
            board.take_dirty().is_empty(),
            "an unchanged report is not dirty"
        );
        board.publish(task("a", "RUNNING"));
        let dirty = board.take_dirty();
        assert_eq!(dirty, vec![task("a", "RUNNING")]);
        assert!(!board.settled("a"), "being sent");
        board.sent();
        assert!(board.settled("a") && board.settled("b"));
        board.mark_dirty(&dirty);
        assert_eq!(board.take_dirty(), vec![task("a", "RUNNING")]);
        assert_eq!(board.take_all().len(), 2);
        board.remove("a");
        board.mark_dirty(&dirty);
        assert!(
            board.take_dirty().is_empty(),
            "a removed task is not resent"
        );
        assert_eq!(board.get("b"), Some(task("b", "PENDING")));
    }
}
