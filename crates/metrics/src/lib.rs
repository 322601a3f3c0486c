//! berth-metrics: berth's CloudWatch — a durable time-series store, alarms and dashboards.

pub mod alarm;
pub mod dashboards;
pub mod histogram;
pub mod prometheus;
pub mod store;
pub mod types;

pub use alarm::{AlarmManager, AlarmStateChange};
pub use dashboards::Dashboards;
pub use store::MetricStore;
pub use types::*;

use std::path::Path;

/// Everything berth's CloudWatch API serves, opened from one directory.
#[derive(Debug, Clone)]
pub struct CloudWatch {
    /// Metric data.
    pub metrics: MetricStore,
    /// Metric and composite alarms.
    pub alarms: AlarmManager,
    /// Dashboards.
    pub dashboards: Dashboards,
}

/// Why the CloudWatch state could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    /// The metric store failed.
    #[error("metrics: {0}")]
    Metrics(#[from] StoreError),
    /// The alarm file failed.
    #[error("alarms: {0}")]
    Alarms(#[from] alarm::PersistError),
}

impl CloudWatch {
    /// Opens `dir/metrics`, `dir/alarms.json` and `dir/dashboards.json`.
    pub fn open(dir: impl AsRef<Path>, retention: Retention) -> Result<CloudWatch, OpenError> {
        let dir = dir.as_ref();
        let metrics = MetricStore::open(dir.join("metrics"), retention)?;
        let alarms = AlarmManager::open(dir.join("alarms.json"), metrics.clone())?;
        let dashboards = Dashboards::open(dir.join("dashboards.json"))?;
        Ok(CloudWatch {
            metrics,
            alarms,
            dashboards,
        })
    }
}
