//! Metrics the control plane records: the proxy's load balancer metrics as they arrive, every
//! second each service's task counts (ECS/ContainerInsights), and CPU and memory utilization
//! (AWS/ECS) whenever an agent reports a new usage sample (every 0.5 s per task).
//!
//! Utilization is ECS's: for a service, the CPU units (memory) its running tasks use over the CPU
//! units (memory) they reserve, in percent, with dimensions ClusterName and ServiceName; a task
//! with cpu 256 (a quarter of a core) using a whole core shows 400%. berth also keeps each task's
//! figure, with a TaskId dimension added.

use crate::state::ControlPlane;
use berth_metrics::{Dimension, MetricDatum, MetricId, MetricStore, Sample};
use berth_model::ecs::task_status;
use berth_model::protocol::proxy::MetricSample;

impl ControlPlane {
    /// Records metrics into `store` from now on.
    pub fn attach_metrics(&self, store: MetricStore) {
        self.inner.logs.attach_metrics(store.clone());
        let _ = self.inner.metrics.set(store);
    }

    /// Watches these alarms for deployments (`deploymentConfiguration.alarms`).
    pub fn attach_alarms(&self, alarms: berth_metrics::AlarmManager) {
        let _ = self.inner.alarms.set(alarms);
    }

    /// The attached alarm manager, if any.
    pub fn alarms(&self) -> Option<&berth_metrics::AlarmManager> {
        self.inner.alarms.get()
    }

    /// The attached metric store, if any.
    pub fn metrics(&self) -> Option<&MetricStore> {
        self.inner.metrics.get()
    }

    pub(crate) fn record_proxy_metrics(&self, samples: &[MetricSample]) {
        let Some(store) = self.metrics() else { return };
        let data: Vec<MetricDatum> = samples
            .iter()
            .map(|s| MetricDatum {
                id: MetricId::new(
                    s.namespace.clone(),
                    s.name.clone(),
                    s.dimensions
                        .iter()
                        .map(|(k, v)| Dimension::new(k.clone(), v.clone()))
                        .collect(),
                ),
                unit: Some(s.unit.clone()),
                timestamp: s.timestamp.floor() as i64,
                sample: Sample::Values {
                    values: s.values.clone(),
                    counts: s.counts.clone(),
                },
            })
            .collect();
        store.put(&data);
    }

    /// Records the utilization of these tasks (which have a new usage figure) and of their
    /// services.
    pub(crate) fn record_usage_metrics(&self, task_ids: &[String]) {
        if task_ids.is_empty() {
            return;
        }
        let Some(store) = self.metrics() else { return };
        let t = berth_model::now().floor() as i64;
        let data = self.read(|st| {
            let mut data = Vec::new();
            let mut put = |name: &str, dims: Vec<Dimension>, v: Option<f64>| {
                if let Some(v) = v {
                    data.push(MetricDatum {
                        id: MetricId::new("AWS/ECS", name, dims),
                        unit: Some("Percent".into()),
                        timestamp: t,
                        sample: Sample::Value(v),
                    });
                }
            };
            let running = |id: &String| {
                st.tasks
                    .get(id)
                    .filter(|r| r.task.last_status == task_status::RUNNING)
            };
            let mut services = std::collections::BTreeSet::new();
            for id in task_ids {
                let (Some(task), Some(u)) = (running(id), st.usage.get(id)) else {
                    continue;
                };
                let service = task.service.clone().unwrap_or_default();
                let dims = || {
                    vec![
                        Dimension::new("ClusterName", task.cluster.clone()),
                        Dimension::new("ServiceName", service.clone()),
                        Dimension::new("TaskId", id.clone()),
                    ]
                };
                put("CPUUtilization", dims(), u.cpu_percent);
                put("MemoryUtilization", dims(), u.memory_percent);
                if task.service.is_some() {
                    services.insert((task.cluster.clone(), service));
                }
            }
            for (cluster, service) in services {
                let usage = st
                    .tasks
                    .values()
                    .filter(|r| {
                        r.cluster == cluster
                            && r.service.as_deref() == Some(service.as_str())
                            && r.task.last_status == task_status::RUNNING
                    })
                    .filter_map(|r| st.usage.get(&r.id));
                let (cpu, mem) = service_utilization(usage);
                let dims = || {
                    vec![
                        Dimension::new("ClusterName", cluster.clone()),
                        Dimension::new("ServiceName", service.clone()),
                    ]
                };
                put("CPUUtilization", dims(), cpu);
                put("MemoryUtilization", dims(), mem);
            }
            data
        });
        store.put(&data);
    }

    /// One second's service task counts.
    pub fn record_service_metrics(&self) {
        let Some(store) = self.metrics() else { return };
        let t = berth_model::now().floor() as i64;
        let data = self.read(|st| {
            let mut data = Vec::new();
            for rec in st
                .services
                .values()
                .filter(|s| s.service.status == "ACTIVE")
            {
                let dims = || {
                    vec![
                        Dimension::new("ClusterName", rec.cluster.clone()),
                        Dimension::new("ServiceName", rec.service.service_name.clone()),
                    ]
                };
                let mut put = |ns: &str, name: &str, unit: &str, v: f64| {
                    data.push(MetricDatum {
                        id: MetricId::new(ns, name, dims()),
                        unit: Some(unit.into()),
                        timestamp: t,
                        sample: Sample::Value(v),
                    })
                };
                put(
                    "ECS/ContainerInsights",
                    "DesiredTaskCount",
                    "Count",
                    f64::from(rec.service.desired_count),
                );
                put(
                    "ECS/ContainerInsights",
                    "RunningTaskCount",
                    "Count",
                    f64::from(rec.service.running_count),
                );
                put(
                    "ECS/ContainerInsights",
                    "PendingTaskCount",
                    "Count",
                    f64::from(rec.service.pending_count),
                );
            }
            data
        });
        store.put(&data);
    }
}

/// A task's latest resource usage, from the agent's reports (runtime only).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TaskUsage {
    /// CPU time used so far by the task's containers, in seconds.
    pub cpu_seconds: f64,
    /// When that was sampled (the agent's clock).
    pub at: f64,
    /// CPU used between the last two samples, in percent of the reservation.
    pub cpu_percent: Option<f64>,
    /// Memory in use, in percent of the reservation.
    pub memory_percent: Option<f64>,
    /// The task's CPU reservation, in CPU units (1024 = one core).
    pub cpu_units: f64,
    /// The task's memory reservation, in MiB.
    pub memory_mib: f64,
}

/// A service's utilization over its running tasks' latest usage: used over reserved, in percent
/// (CPU, memory); None where no task has a figure.
pub fn service_utilization<'a>(
    usage: impl IntoIterator<Item = &'a TaskUsage>,
) -> (Option<f64>, Option<f64>) {
    let (mut cpu_used, mut cpu_reserved) = (0.0, 0.0);
    let (mut mem_used, mut mem_reserved) = (0.0, 0.0);
    for u in usage {
        if let Some(c) = u.cpu_percent {
            cpu_used += c * u.cpu_units;
            cpu_reserved += u.cpu_units;
        }
        if let Some(m) = u.memory_percent {
            mem_used += m * u.memory_mib;
            mem_reserved += u.memory_mib;
        }
    }
    (
        (cpu_reserved > 0.0).then(|| cpu_used / cpu_reserved),
        (mem_reserved > 0.0).then(|| mem_used / mem_reserved),
    )
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests;
