//! berth-autoscaling: Application Auto Scaling for ECS services — scalable targets, target tracking
//! and step scaling policies, scheduled actions and scaling activities, over the control plane and
//! berth's CloudWatch. The API is `AnyScaleFrontendService` (awsJson 1.1) through [`AutoScaling::call`];
//! [`AutoScaling::run`] is the loop that evaluates policies and schedules every second.
//!
//! Decisions are pure ([`decide`], [`schedule`]); [`evaluate`] gathers their inputs (alarm states,
//! the metric store's 1-second data, the service's counts) and applies them with ECS UpdateService.

pub mod api;
pub mod decide;
pub mod error;
pub mod evaluate;
pub mod model;
pub mod schedule;

pub use error::AutoScalingError;

use berth_control::ControlPlane;
use berth_metrics::CloudWatch;
use model::{Activity, ScalableTarget, ScalingPolicy, ScheduledAction};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;
use tokio::sync::watch;

/// Activities kept per scalable target (newest first).
pub const ACTIVITIES_PER_TARGET: usize = 1000;

/// Everything Application Auto Scaling keeps, written to `autoscaling.json` after every change.
#[derive(Debug, Default, Clone, Serialize, Deserialize)]
pub(crate) struct Book {
    /// By resource id.
    pub(crate) targets: BTreeMap<String, ScalableTarget>,
    /// By `resource id` + `|` + policy name.
    pub(crate) policies: BTreeMap<String, ScalingPolicy>,
    /// By `resource id` + `|` + action name.
    pub(crate) scheduled: BTreeMap<String, ScheduledAction>,
    /// By resource id, newest first.
    pub(crate) activities: BTreeMap<String, VecDeque<Activity>>,
}

pub(crate) fn key(resource_id: &str, name: &str) -> String {
    format!("{resource_id}|{name}")
}

struct Inner {
    file: PathBuf,
    cp: ControlPlane,
    cloudwatch: CloudWatch,
    book: Mutex<Book>,
    /// Per ALB resource label, the last second whose RequestCountPerTarget was published (runtime).
    published: Mutex<HashMap<String, i64>>,
}

/// Application Auto Scaling; cheap to clone.
#[derive(Clone)]
pub struct AutoScaling {
    inner: Arc<Inner>,
}

impl AutoScaling {
    /// Opens (or starts empty) the state under `path` (a directory, created if needed).
    pub fn open(
        path: PathBuf,
        cp: ControlPlane,
        cloudwatch: CloudWatch,
    ) -> Result<AutoScaling, AutoScalingError> {
        std::fs::create_dir_all(&path).map_err(|e| {
            AutoScalingError::Internal(format!("cannot create {}: {e}", path.display()))
        })?;
        let file = path.join("autoscaling.json");
        let book = match std::fs::read(&file) {
            Ok(bytes) => serde_json::from_slice(&bytes).map_err(|e| {
                AutoScalingError::Internal(format!(
                    "{}: not berth auto scaling JSON: {e}",
                    file.display()
                ))
            })?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Book::default(),
            Err(e) => {
                return Err(AutoScalingError::Internal(format!(
                    "{}: {e}",
                    file.display()
                )))
            }
        };
        Ok(AutoScaling {
            inner: Arc::new(Inner {
                file,
                cp,
                cloudwatch,
                book: Mutex::new(book),
                published: Mutex::new(HashMap::new()),
            }),
        })
    }

    /// Runs one Application Auto Scaling operation (awsJson 1.1 input and output).
    pub fn call(
        &self,
        operation: &str,
        input: serde_json::Value,
    ) -> Result<serde_json::Value, AutoScalingError> {
        api::call(self, operation, input, berth_model::now())
    }

    /// Evaluates policies and scheduled actions every second (and at once when an alarm changes
    /// state) until `shutdown` turns true or its sender is dropped.
    pub async fn run(self, mut shutdown: watch::Receiver<bool>) {
        let mut alarm_changes = self.inner.cloudwatch.alarms.subscribe();
        let mut listening = true;
        let mut tick = tokio::time::interval(Duration::from_secs(1));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
        loop {
            tokio::select! {
                _ = tick.tick() => self.evaluate_blocking().await,
                change = alarm_changes.recv(), if listening => match change {
                    Ok(_) | Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => self.evaluate_blocking().await,
                    Err(tokio::sync::broadcast::error::RecvError::Closed) => listening = false,
                },
                changed = shutdown.changed() => {
                    if changed.is_err() || *shutdown.borrow() {
                        return;
                    }
                }
            }
        }
    }

    async fn evaluate_blocking(&self) {
        let me = self.clone();
        // Evaluation reads the metric store and writes the control plane's store: off the workers.
        if let Err(error) =
            tokio::task::spawn_blocking(move || me.evaluate_at(berth_model::now())).await
        {
            tracing::warn!(%error, "auto scaling evaluation panicked; continuing");
        }
    }

    pub(crate) fn cp(&self) -> &ControlPlane {
        &self.inner.cp
    }

    pub(crate) fn cloudwatch(&self) -> &CloudWatch {
        &self.inner.cloudwatch
    }

    pub(crate) fn lock(&self) -> MutexGuard<'_, Book> {
        // Every change is complete between statements; keep serving after a panic elsewhere.
        self.inner.book.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub(crate) fn published(&self) -> MutexGuard<'_, HashMap<String, i64>> {
        self.inner
            .published
            .lock()
            .unwrap_or_else(|e| e.into_inner())
    }

    /// Writes the book atomically (called with the lock held, so writes never reorder).
    pub(crate) fn persist(&self, book: &Book) -> Result<(), AutoScalingError> {
        let json = serde_json::to_vec_pretty(book)
            .map_err(|e| AutoScalingError::Internal(e.to_string()))?;
        berth_metrics::alarm::manager::write_atomically(&self.inner.file, &json)
            .map_err(|e| AutoScalingError::Internal(format!("{}: {e}", self.inner.file.display())))
    }

    pub(crate) fn arns(&self) -> &berth_model::Arns {
        self.inner.cp.arns()
    }
}
