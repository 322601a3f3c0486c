//! Metrics the control plane records: the proxy's load balancer metrics as they arrive, and every
//! second each service's task counts (ECS/ContainerInsights) and CPU and memory utilization
//! (AWS/ECS, ECS's definition: usage relative to the reserved CPU units and memory).

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

    /// One second's service metrics.
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
                // Utilization: the tasks' usage over their reservations, averaged over running tasks.
                let mut cpu = Vec::new();
                let mut mem = Vec::new();
                for task in st.tasks.values().filter(|r| {
                    r.cluster == rec.cluster
                        && r.service.as_deref() == Some(rec.service.service_name.as_str())
                        && r.task.last_status == task_status::RUNNING
                }) {
                    if let Some(u) = st.usage.get(&task.id) {
                        if let Some(c) = u.cpu_percent {
                            cpu.push(c);
                        }
                        if let Some(m) = u.memory_percent {
                            mem.push(m);
                        }
                    }
                }
                if !cpu.is_empty() {
                    put(
                        "AWS/ECS",
                        "CPUUtilization",
                        "Percent",
                        cpu.iter().sum::<f64>() / cpu.len() as f64,
                    );
                }
                if !mem.is_empty() {
                    put(
                        "AWS/ECS",
                        "MemoryUtilization",
                        "Percent",
                        mem.iter().sum::<f64>() / mem.len() as f64,
                    );
                }
            }
            // Per task, with the task id as a dimension (berth's addition, for the dashboard).
            for (id, u) in &st.usage {
                let Some(task) = st
                    .tasks
                    .get(id)
                    .filter(|r| r.task.last_status == task_status::RUNNING)
                else {
                    continue;
                };
                let dims = || {
                    vec![
                        Dimension::new("ClusterName", task.cluster.clone()),
                        Dimension::new("ServiceName", task.service.clone().unwrap_or_default()),
                        Dimension::new("TaskId", id.clone()),
                    ]
                };
                if let Some(c) = u.cpu_percent {
                    data.push(MetricDatum {
                        id: MetricId::new("AWS/ECS", "CPUUtilization", dims()),
                        unit: Some("Percent".into()),
                        timestamp: t,
                        sample: Sample::Value(c),
                    });
                }
                if let Some(m) = u.memory_percent {
                    data.push(MetricDatum {
                        id: MetricId::new("AWS/ECS", "MemoryUtilization", dims()),
                        unit: Some("Percent".into()),
                        timestamp: t,
                        sample: Sample::Value(m),
                    });
                }
            }
            data
        });
        store.put(&data);
    }
}

/// A task's latest resource usage, from the agent's reports (runtime only).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TaskUsage {
    pub cpu_seconds: f64,
    pub at: f64,
    pub cpu_percent: Option<f64>,
    pub memory_percent: Option<f64>,
}
