//! The control plane's side of the agent protocol: what each node should run, and folding the
//! agents' reports into task state.

use crate::error::ApiError;
use crate::state::{ControlPlane, State, TASKS};
use berth_model::ecs::task_status;
use berth_model::now;
use berth_model::protocol::agent::{Assignments, LogShipment, Report, TaskAssignment};

/// A node that has not reported for this long is not given new tasks.
const NODE_STALE_SECONDS: f64 = 30.0;

/// The node new tasks go to: the live node with the fewest active tasks, else `local`.
pub(crate) fn pick_node(st: &State) -> String {
    let t = now();
    st.nodes
        .iter()
        .filter(|(_, n)| t - n.last_seen < NODE_STALE_SECONDS)
        .min_by_key(|(id, _)| {
            st.tasks
                .values()
                .filter(|r| &r.node == *id && r.task.last_status != task_status::STOPPED)
                .count()
        })
        .map(|(id, _)| id.clone())
        .unwrap_or_else(|| "local".to_string())
}

/// Default reservations when a task definition sets none (Fargate's smallest task size).
const DEFAULT_CPU_UNITS: f64 = 256.0;
const DEFAULT_MEMORY_MIB: f64 = 512.0;

/// Folds a task report's usage figures into CPU and memory utilization, ECS's way: usage relative
/// to what the task reserved (task-level cpu/memory, else the containers', else Fargate's minimum).
/// CPU is the rate of CPU time between this sample and the previous one, timed with the agent's
/// sample instants (`usage_sampled_at`; the arrival time `t` for agents that send none). True when
/// the task has a new figure.
fn record_usage(
    st: &mut State,
    id: &str,
    r: &berth_model::protocol::agent::TaskReport,
    t: f64,
) -> bool {
    if r.last_status == task_status::STOPPED {
        st.usage.remove(id);
        return false;
    }
    let cpu: Option<f64> = r.containers.iter().map(|c| c.cpu_seconds_total).sum();
    let mem: Option<u64> = r.containers.iter().map(|c| c.memory_bytes).sum();
    if cpu.is_none() && mem.is_none() {
        return false;
    }
    let at = r.usage_sampled_at.unwrap_or(t);
    let prev = st.usage.get(id).cloned().unwrap_or_default();
    if prev.at > 0.0 && at <= prev.at {
        return false; // the same sample again (a full report), or an older one
    }
    let Some(rec) = st.tasks.get(id) else {
        return false;
    };
    let (cpu_units, memory_mib) = reservations(st, &rec.task.task_definition_arn);
    let mut u = crate::telemetry::TaskUsage {
        at,
        cpu_units,
        memory_mib,
        ..prev.clone()
    };
    if let Some(c) = cpu {
        u.cpu_percent = (prev.at > 0.0 && c >= prev.cpu_seconds)
            .then(|| {
                let cores = (c - prev.cpu_seconds) / (at - prev.at);
                100.0 * cores / (cpu_units / 1024.0)
            })
            // CPU time going backwards (a process of the group ended): keep the last figure.
            .or(prev.cpu_percent);
        u.cpu_seconds = c;
    }
    if let Some(m) = mem {
        u.memory_percent = Some(100.0 * (m as f64 / 1048576.0) / memory_mib);
    }
    st.usage.insert(id.to_string(), u);
    true
}

/// The CPU units and MiB of memory a task of this definition reserves.
fn reservations(st: &State, task_definition_arn: &str) -> (f64, f64) {
    let td = crate::ecs::find_task_definition(st, task_definition_arn).ok();
    let cpu_units = td
        .as_ref()
        .and_then(|td| td.cpu_units())
        .map(f64::from)
        .or_else(|| {
            let sum: u32 = td
                .as_ref()?
                .container_definitions
                .iter()
                .map(|c| c.cpu)
                .sum();
            (sum > 0).then_some(f64::from(sum))
        })
        .unwrap_or(DEFAULT_CPU_UNITS);
    let memory_mib = td
        .as_ref()
        .and_then(|td| td.memory_mib())
        .map(f64::from)
        .or_else(|| {
            let sum: u32 = td
                .as_ref()?
                .container_definitions
                .iter()
                .filter_map(|c| c.memory.or(c.memory_reservation))
                .sum();
            (sum > 0).then_some(f64::from(sum))
        })
        .unwrap_or(DEFAULT_MEMORY_MIB);
    (cpu_units, memory_mib)
}

impl ControlPlane {
    /// What `node` should run now.
    pub fn assignments(&self, node: &str) -> Assignments {
        let version = self.version();
        let mut assignments = self.read(|st| {
            let tasks = st
                .tasks
                .values()
                .filter(|t| t.node == node && !t.reported_stopped)
                .filter_map(|t| {
                    let td =
                        crate::ecs::find_task_definition(st, &t.task.task_definition_arn).ok()?;
                    let ingress = t
                        .service
                        .as_ref()
                        .and_then(|s| st.services.get(&crate::state::service_key(&t.cluster, s)))
                        .map(|rec| berth_model::ecs::service_ingress(&rec.service))
                        .unwrap_or_default();
                    Some(TaskAssignment {
                        task_arn: t.task.task_arn.clone(),
                        task_id: t.id.clone(),
                        cluster: t.cluster.clone(),
                        task_definition: td,
                        desired_status: t.agent_desired.clone(),
                        environment_overrides: t.environment_overrides.clone(),
                        log_group: t.log_group.clone(),
                        secrets: Vec::new(),
                        service_name: t.service.clone(),
                        ingress,
                    })
                })
                .collect();
            Assignments { version, tasks }
        });
        self.fill_secrets(&mut assignments.tasks);
        assignments
    }

    /// Folds an agent's report into the tasks it names.
    pub fn apply_report(&self, report: Report) -> Result<(), ApiError> {
        let t = now();
        let mut measured = Vec::new();
        let result = self.mutate(|st, _| {
            let node = st.nodes.entry(report.node_id.clone()).or_default();
            node.last_seen = t;
            node.host_ip = report.host_ip.clone();
            let reported: std::collections::BTreeSet<&str> =
                report.tasks.iter().map(|r| r.task_arn.as_str()).collect();
            for r in &report.tasks {
                let id = berth_model::arn::name_of(&r.task_arn).to_string();
                if record_usage(st, &id, r, t) {
                    measured.push(id.clone());
                }
                let Some(rec) = st.tasks.get_mut(&id) else {
                    continue;
                };
                if rec.node != report.node_id || rec.reported_stopped {
                    continue;
                }
                let before = rec.task.clone();
                let task = &mut rec.task;
                if task.last_status != task_status::STOPPED {
                    // DEACTIVATING is the control plane's own state while draining.
                    if !(task.last_status == task_status::DEACTIVATING
                        && r.last_status == task_status::RUNNING)
                    {
                        task.last_status = r.last_status.clone();
                    }
                }
                task.health_status = r.health_status.clone().or(task.health_status.take());
                task.pull_started_at = r.pull_started_at.or(task.pull_started_at);
                task.pull_stopped_at = r.pull_stopped_at.or(task.pull_stopped_at);
                task.started_at = r.started_at.or(task.started_at);
                task.execution_stopped_at = r.execution_stopped_at.or(task.execution_stopped_at);
                for c in &r.containers {
                    if let Some(tc) = task.containers.iter_mut().find(|tc| tc.name == c.name) {
                        tc.last_status = c.last_status.clone();
                        tc.exit_code = c.exit_code.or(tc.exit_code);
                        tc.reason = c.reason.clone().or(tc.reason.take());
                        tc.health_status = c.health_status.clone().or(tc.health_status.take());
                        if !c.network_bindings.is_empty() {
                            tc.network_bindings = c.network_bindings.clone();
                        }
                        tc.runtime_id = c.runtime_id.clone().or(tc.runtime_id.take());
                    }
                }
                if r.last_status == task_status::STOPPED {
                    // The task stopped on its own (not asked to): record why, as ECS does.
                    if task.desired_status != task_status::STOPPED {
                        task.desired_status = task_status::STOPPED.into();
                        task.stopped_reason = r.stopped_reason.clone();
                        task.stop_code = r.stop_code.clone();
                        task.stopping_at = Some(t);
                    }
                    task.stopped_at.get_or_insert(t);
                    task.execution_stopped_at.get_or_insert(t);
                    rec.reported_stopped = true;
                    rec.agent_desired = task_status::STOPPED.into();
                }
                if rec.task != before {
                    rec.task.version += 1;
                    st.touch(TASKS, &id);
                }
            }
            if report.full {
                // Tasks the agent once ran but no longer knows were lost with their node state.
                let lost: Vec<String> = st
                    .tasks
                    .values()
                    .filter(|t| t.node == report.node_id && !t.reported_stopped)
                    .filter(|t| t.task.last_status != task_status::PROVISIONING)
                    .filter(|t| !reported.contains(t.task.task_arn.as_str()))
                    .map(|t| t.id.clone())
                    .collect();
                for id in lost {
                    if let Some(rec) = st.tasks.get_mut(&id) {
                        rec.task.last_status = task_status::STOPPED.into();
                        rec.task.desired_status = task_status::STOPPED.into();
                        rec.task.stopped_reason.get_or_insert_with(|| {
                            "Task lost: its node agent no longer runs it".into()
                        });
                        rec.task
                            .stop_code
                            .get_or_insert_with(|| "TaskFailedToStart".into());
                        rec.task.stopped_at = Some(t);
                        rec.reported_stopped = true;
                        rec.task.version += 1;
                        st.touch(TASKS, &id);
                    }
                }
            }
            Ok(())
        });
        self.record_usage_metrics(&measured);
        result
    }

    /// Stores shipped log lines.
    pub fn ship_logs(&self, shipment: LogShipment) -> Result<(), ApiError> {
        for batch in shipment.batches {
            self.inner
                .logs
                .append(&batch.log_group, &batch.log_stream, &batch.events)
                .map_err(|e| ApiError::server(format!("log store: {e}")))?;
        }
        Ok(())
    }
}
