//! The controllers: one loop that, on every change or every 100 ms, drains and stops tasks that
//! should stop, registers running tasks with their target groups, and runs the service scheduler
//! for every service. A failed pass is logged and retried on the next tick; it never ends the loop.

use crate::ecs::{new_task, push_event, request_stop};
use crate::state::{ControlPlane, ServiceRecord, State, SERVICES, TASKS};
use berth_elb::requests::TargetDescription;
use berth_model::ecs::{stop_code, task_status};
use berth_model::now;
use berth_scheduler::{decide, Backoff, Health, Phase, ServiceView, StopReason, TaskView};
use std::time::Duration;

/// A task healthy for this long resets the restart throttle.
const PROVEN_AFTER_SECONDS: f64 = 10.0;

/// How often the controllers run when nothing wakes them.
const TICK: Duration = Duration::from_millis(100);

impl ControlPlane {
    /// Runs the controllers until `shutdown` resolves.
    pub async fn run_controllers(&self, shutdown: impl std::future::Future<Output = ()>) {
        tokio::pin!(shutdown);
        let mut last_metrics = 0i64;
        let mut last_retention = 0i64;
        loop {
            let second = berth_model::now().floor() as i64;
            if second != last_metrics {
                last_metrics = second;
                self.record_service_metrics();
            }
            if second - last_retention >= 60 {
                last_retention = second;
                if let Err(e) = self.logs().enforce_retention(second * 1000) {
                    tracing::warn!(error = %e, "log retention pass failed; retrying in a minute");
                }
            }
            tokio::select! {
                _ = &mut shutdown => return,
                _ = self.inner.kick.notified() => {}
                _ = tokio::time::sleep(TICK) => {}
            }
            if let Err(e) = self.reconcile_once() {
                tracing::warn!(error = %e, "reconcile pass failed; retrying");
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
        }
    }

    /// One pass of every controller.
    pub fn reconcile_once(&self) -> Result<(), crate::ApiError> {
        self.mutate(|st, cp| {
            let t = now();
            drive_stopping_tasks(st, t);
            release_stopped_targets(st, t);
            register_running_tasks(st);
            let keys: Vec<String> = st.services.keys().cloned().collect();
            for key in keys {
                schedule_service(st, cp, &key, t);
            }
            Ok(())
        })
    }
}

fn phase(status: &str, desired: &str) -> Phase {
    if status == task_status::STOPPED {
        Phase::Stopped
    } else if desired == task_status::STOPPED {
        Phase::Stopping
    } else if status == task_status::RUNNING {
        Phase::Running
    } else {
        Phase::Pending
    }
}

/// Tasks asked to stop: deregister their targets, wait for draining, then tell the agent.
fn drive_stopping_tasks(st: &mut State, t: f64) {
    let ids: Vec<String> = st
        .tasks
        .values()
        .filter(|r| {
            r.task.desired_status == task_status::STOPPED && r.agent_desired == task_status::RUNNING
        })
        .map(|r| r.id.clone())
        .collect();
    for id in ids {
        let Some(rec) = st.tasks.get(&id).cloned() else {
            continue;
        };
        let mut rec = rec;
        if rec.task.last_status == task_status::PROVISIONING {
            // The agent never reported the task: nothing runs, so it is stopped here. Should the
            // agent have started it meanwhile, it stops it once the task leaves its assignments.
            rec.task.last_status = task_status::STOPPED.into();
            rec.task.stopped_at = Some(t);
            rec.agent_desired = task_status::STOPPED.into();
            rec.reported_stopped = true;
        } else if rec.targets.is_empty()
            || rec.task.last_status != task_status::RUNNING && rec.draining_since.is_none()
        {
            rec.agent_desired = task_status::STOPPED.into();
            deregister(st, &rec.targets, t);
            rec.targets.clear();
        } else if rec.draining_since.is_none() {
            deregister(st, &rec.targets, t);
            rec.draining_since = Some(t);
            rec.task.last_status = task_status::DEACTIVATING.into();
            if let Some(svc) = rec.service.clone() {
                let key = crate::state::service_key(&rec.cluster, &svc);
                if let Some(s) = st.services.get_mut(&key) {
                    push_event(
                        s,
                        format!("(service {svc}) has begun draining connections on 1 tasks."),
                    );
                    st.touch(SERVICES, &key);
                }
            }
        } else {
            let drained = rec.targets.iter().all(|(tg, ip, port)| {
                st.elb.drain_finished(tg, ip, *port, t)
                    || st.elb.target_state(tg, ip, *port).is_none()
            });
            if drained {
                rec.targets.clear();
                rec.agent_desired = task_status::STOPPED.into();
                rec.task.last_status = task_status::STOPPING.into();
            }
        }
        if st
            .tasks
            .get(&id)
            .map(|r| (&r.agent_desired, &r.task, &r.targets, r.draining_since))
            != Some((
                &rec.agent_desired,
                &rec.task,
                &rec.targets,
                rec.draining_since,
            ))
        {
            st.tasks.insert(id.clone(), rec);
            st.touch(TASKS, &id);
        }
    }
}

/// Deregisters targets (they drain in the proxy until `remove_drained` takes them out).
fn deregister(st: &mut State, targets: &[(String, String, u16)], t: f64) {
    for (tg, ip, port) in targets {
        if st
            .elb
            .deregister_targets(tg, &[TargetDescription::new(ip.clone(), *port)], t)
            .is_ok()
        {
            st.elb_dirty = true;
        }
    }
}

/// Tasks that stopped on their own still holding targets: deregister them.
fn release_stopped_targets(st: &mut State, t: f64) {
    let ids: Vec<String> = st
        .tasks
        .values()
        .filter(|r| r.task.last_status == task_status::STOPPED && !r.targets.is_empty())
        .map(|r| r.id.clone())
        .collect();
    for id in ids {
        let targets = st
            .tasks
            .get_mut(&id)
            .map(|r| std::mem::take(&mut r.targets))
            .unwrap_or_default();
        deregister(st, &targets, t);
        st.touch(TASKS, &id);
    }
    if !st.elb.remove_drained(t).is_empty() {
        st.elb_dirty = true;
    }
}

/// Running service tasks with load balancers get their targets registered.
fn register_running_tasks(st: &mut State) {
    let mut updates = Vec::new();
    for rec in st.tasks.values() {
        if rec.task.last_status != task_status::RUNNING
            || rec.task.desired_status != task_status::RUNNING
            || !rec.targets.is_empty()
        {
            continue;
        }
        let Some(svc) = &rec.service else { continue };
        let Some(s) = st
            .services
            .get(&crate::state::service_key(&rec.cluster, svc))
        else {
            continue;
        };
        if s.service.load_balancers.is_empty() {
            continue;
        }
        let ip = st
            .nodes
            .get(&rec.node)
            .map(|n| n.host_ip.clone())
            .filter(|ip| !ip.is_empty())
            .unwrap_or_else(|| "127.0.0.1".into());
        let mut targets = Vec::new();
        for lb in &s.service.load_balancers {
            let tg = crate::shift::target_group_for(s, lb, rec.deployment_id.as_deref());
            let (Some(tg), Some(name), Some(port)) = (&tg, &lb.container_name, lb.container_port)
            else {
                continue;
            };
            let binding = rec
                .task
                .containers
                .iter()
                .find(|c| &c.name == name)
                .and_then(|c| c.network_bindings.iter().find(|b| b.container_port == port));
            if let Some(b) = binding {
                // A task with its own address (awsvpc-like) is reached at its binding's IP.
                let ip = match b.bind_ip.as_str() {
                    "" | "0.0.0.0" => ip.clone(),
                    own => own.to_string(),
                };
                targets.push((tg.clone(), ip, b.host_port));
            }
        }
        if !targets.is_empty() {
            updates.push((rec.id.clone(), targets));
        }
    }
    for (id, targets) in updates {
        for (tg, ip, port) in &targets {
            if st
                .elb
                .register_targets(tg, &[TargetDescription::new(ip.clone(), *port)])
                .is_ok()
            {
                st.elb_dirty = true;
            }
        }
        if let Some(rec) = st.tasks.get_mut(&id) {
            rec.targets = targets;
            st.touch(TASKS, &id);
        }
    }
}

/// The health of a task as its service sees it: container checks, then target health, with the
/// grace period during which failures are not held against a new task.
fn task_health(st: &State, rec: &crate::state::TaskRecord, grace: f64, t: f64) -> Health {
    let in_grace = rec.task.started_at.is_some_and(|s| t - s < grace);
    let mut health = match rec.task.health_status.as_deref() {
        Some("UNHEALTHY") => Health::Unhealthy,
        Some("HEALTHY") => Health::Healthy,
        _ => {
            // Whether the task has container health checks comes from its task definition: the
            // agent may report UNKNOWN for containers that have none.
            let has_checks = crate::ecs::find_task_definition(st, &rec.task.task_definition_arn)
                .map(|td| {
                    td.container_definitions
                        .iter()
                        .any(|c| c.health_check.is_some())
                })
                .unwrap_or(false);
            if has_checks {
                Health::Unknown
            } else {
                Health::Healthy
            }
        }
    };
    if health == Health::Healthy && !rec.targets.is_empty() {
        for (tg, ip, port) in &rec.targets {
            match st
                .elb
                .target_state(tg, ip, *port)
                .map(|s| s.state)
                .as_deref()
            {
                Some("healthy") | Some("unavailable") => {}
                Some("unhealthy") => health = Health::Unhealthy,
                _ => health = Health::Unknown,
            }
        }
    } else if health == Health::Healthy {
        // Service with load balancers whose targets are not registered yet.
        let wants_lb = rec
            .service
            .as_ref()
            .and_then(|s| st.services.get(&crate::state::service_key(&rec.cluster, s)))
            .is_some_and(|s| !s.service.load_balancers.is_empty());
        if wants_lb {
            health = Health::Unknown;
        }
    }
    if in_grace && health == Health::Unhealthy {
        Health::Unknown
    } else {
        health
    }
}

fn schedule_service(st: &mut State, cp: &ControlPlane, key: &str, t: f64) {
    let Some(before) = st.services.get(key).cloned() else {
        return;
    };
    if before.service.status == "INACTIVE" {
        return;
    }
    let mut rec: ServiceRecord = before.clone();
    let name = rec.service.service_name.clone();
    let grace = f64::from(rec.service.health_check_grace_period_seconds.unwrap_or(0));
    let task_ids: Vec<String> = st
        .tasks
        .values()
        .filter(|r| r.cluster == rec.cluster && r.service.as_deref() == Some(name.as_str()))
        .map(|r| r.id.clone())
        .collect();

    // Backoff bookkeeping from what happened to the tasks since the last pass.
    let mut backoff = Backoff {
        consecutive_failures: rec.backoff_failures,
        next_start_at: rec.backoff_until,
    };
    for id in &task_ids {
        let Some(r) = st.tasks.get(id) else { continue };
        if r.failure_counted {
            continue;
        }
        let stopped = r.task.last_status == task_status::STOPPED;
        let failed = stopped
            && matches!(
                r.task.stop_code.as_deref(),
                Some(stop_code::TASK_FAILED_TO_START) | Some(stop_code::ESSENTIAL_CONTAINER_EXITED)
            )
            || r.task
                .stopped_reason
                .as_deref()
                .is_some_and(|s| s.starts_with("Task failed"));
        // A task proves the service can start tasks once it has been healthy for a while; a task
        // that runs for a moment and then exits must not reset the throttle.
        let proven = !r.success_counted
            && r.task.last_status == task_status::RUNNING
            && r.task
                .started_at
                .is_some_and(|s| t - s >= PROVEN_AFTER_SECONDS)
            && task_health(st, r, grace, t) == Health::Healthy;
        if failed {
            backoff = backoff.after_failure(t);
            if let Some(d) = rec
                .service
                .deployments
                .iter_mut()
                .find(|d| Some(&d.id) == r.deployment_id.as_ref())
            {
                d.failed_tasks += 1;
            }
            if let Some(r) = st.tasks.get_mut(id) {
                r.failure_counted = true;
                st.touch(TASKS, id);
            }
        } else if proven {
            if backoff.consecutive_failures > 0 {
                backoff = backoff.after_success();
            }
            if let Some(r) = st.tasks.get_mut(id) {
                r.success_counted = true;
                st.touch(TASKS, id);
            }
        } else if stopped {
            // Stopped on request (scale-in, replacement): neither a failure nor a success.
            if let Some(r) = st.tasks.get_mut(id) {
                r.failure_counted = true;
                st.touch(TASKS, id);
            }
        }
    }

    let views: Vec<TaskView> = task_ids
        .iter()
        .filter_map(|id| st.tasks.get(id))
        .map(|r| TaskView {
            id: r.id.clone(),
            deployment_id: r.deployment_id.clone().unwrap_or_default(),
            phase: phase(&r.task.last_status, &r.task.desired_status),
            health: task_health(st, r, grace, t),
            created_at: r.task.created_at,
        })
        .collect();
    // A traffic-shifting deployment moves along before the tasks are scheduled.
    if let Some(shift) = rec.shift.clone() {
        let green_ready = views
            .iter()
            .filter(|v| {
                v.deployment_id == shift.green
                    && v.phase == Phase::Running
                    && v.health == Health::Healthy
            })
            .count() as u32
            >= rec.service.desired_count;
        let blue_active = views
            .iter()
            .filter(|v| v.deployment_id == shift.blue && v.phase != Phase::Stopped)
            .count();
        // A new set that failed without a rollback keeps the traffic where it is.
        let green_failed = rec
            .service
            .deployments
            .iter()
            .any(|d| d.id == shift.green && d.rollout_state.as_deref() == Some("FAILED"));
        if !green_failed {
            crate::shift::advance(st, &mut rec, green_ready, blue_active, t);
        }
    }
    let primary = rec
        .service
        .deployments
        .iter()
        .find(|d| d.status == "PRIMARY")
        .map(|d| d.id.clone())
        .unwrap_or_default();
    let view = ServiceView {
        desired_count: rec.service.desired_count,
        minimum_healthy_percent: rec
            .service
            .deployment_configuration
            .minimum_healthy_percent(),
        maximum_percent: rec.service.deployment_configuration.maximum_percent(),
        primary_deployment: primary.clone(),
        tasks: views.clone(),
        backoff,
    };
    // Starts per deployment: (deployment id, task definition, count).
    let mut starts: Vec<(String, String, u32)> = Vec::new();
    let mut decision = match rec.shift.clone() {
        None => {
            let d = decide(&view, t);
            starts.push((
                primary.clone(),
                rec.service.task_definition.clone(),
                d.start,
            ));
            d
        }
        Some(shift) => {
            // Green and blue are scheduled as two task sets; anything else is stopped.
            let set = |dep: &str, desired: u32| ServiceView {
                desired_count: desired,
                minimum_healthy_percent: 100,
                maximum_percent: 200,
                primary_deployment: dep.to_string(),
                tasks: views
                    .iter()
                    .filter(|v| v.deployment_id == dep)
                    .cloned()
                    .collect(),
                backoff,
            };
            let green = decide(&set(&shift.green, rec.service.desired_count), t);
            let blue = decide(
                &set(
                    &shift.blue,
                    crate::shift::blue_desired(&shift, rec.service.desired_count),
                ),
                t,
            );
            starts.push((
                shift.green.clone(),
                rec.service.task_definition.clone(),
                green.start,
            ));
            starts.push((
                shift.blue.clone(),
                shift.blue_task_definition.clone(),
                blue.start,
            ));
            let mut stop = green.stop;
            stop.extend(blue.stop);
            for v in views
                .iter()
                .filter(|v| v.deployment_id != shift.green && v.deployment_id != shift.blue)
            {
                if matches!(v.phase, Phase::Pending | Phase::Running) {
                    stop.push((v.id.clone(), StopReason::Replaced));
                }
            }
            berth_scheduler::Decision {
                start: green.start + blue.start,
                stop,
                throttled_for: green.throttled_for,
                steady: false,
            }
        }
    };

    // A deployment the circuit breaker or an alarm failed (without rollback) starts no more tasks.
    let primary_failed = rec
        .service
        .deployments
        .iter()
        .any(|d| d.status == "PRIMARY" && d.rollout_state.as_deref() == Some("FAILED"));
    if primary_failed {
        decision.start = 0;
        decision.throttled_for = None;
        starts.clear();
    }

    let mut stopped_ids = Vec::new();
    for (id, why) in &decision.stop {
        let (reason, code) = match why {
            StopReason::Unhealthy => {
                let lb_fail = st
                    .tasks
                    .get(id)
                    .is_some_and(|r| r.task.health_status.as_deref() != Some("UNHEALTHY"));
                if lb_fail {
                    (
                        "Task failed ELB health checks".to_string(),
                        stop_code::SERVICE_SCHEDULER_INITIATED,
                    )
                } else {
                    (
                        "Task failed container health checks".to_string(),
                        stop_code::SERVICE_SCHEDULER_INITIATED,
                    )
                }
            }
            StopReason::Replaced | StopReason::ScaleIn => (
                format!("Scaling activity initiated by (deployment {primary})"),
                stop_code::SERVICE_SCHEDULER_INITIATED,
            ),
        };
        if *why == StopReason::Unhealthy {
            push_event(&mut rec, format!("(service {name}) (task {id}) has been stopped because it failed health checks."));
            backoff = backoff.after_failure(t);
            if let Some(d) = st.tasks.get(id).and_then(|r| r.deployment_id.clone()) {
                if let Some(dep) = rec.service.deployments.iter_mut().find(|x| x.id == d) {
                    dep.failed_tasks += 1;
                }
            }
        }
        request_stop(st, id, &reason, code);
        if let Some(r) = st.tasks.get_mut(id) {
            r.failure_counted = true;
        }
        stopped_ids.push(id.clone());
    }
    if !stopped_ids.is_empty() {
        let list: Vec<String> = stopped_ids.iter().map(|i| format!("(task {i})")).collect();
        push_event(
            &mut rec,
            format!(
                "(service {name}) has stopped {} running tasks: {}.",
                stopped_ids.len(),
                list.join(" ")
            ),
        );
    }

    let mut started = Vec::new();
    for (dep, td_arn, n) in starts.iter().filter(|s| s.2 > 0) {
        match crate::ecs::find_task_definition(st, td_arn) {
            Ok(td) => {
                for _ in 0..*n {
                    let task = new_task(
                        st,
                        cp,
                        &rec.cluster,
                        &td,
                        Some(&name),
                        Some(dep),
                        Some(dep.clone()),
                        format!("service:{name}"),
                        vec![],
                    );
                    started.push(format!("(task {})", task.id));
                }
            }
            Err(e) => tracing::warn!(service = %name, error = %e, "cannot start tasks"),
        }
    }
    if !started.is_empty() {
        push_event(
            &mut rec,
            format!(
                "(service {name}) has started {} tasks: {}.",
                started.len(),
                started.join(" ")
            ),
        );
        rec.throttle_reported = false;
    }
    if let Some(wait) = decision.throttled_for {
        if !rec.throttle_reported {
            push_event(
                &mut rec,
                format!(
                    "(service {name}) is unable to consistently start tasks successfully: {} failures in a row. Retrying in {:.1}s.",
                    backoff.consecutive_failures, wait
                ),
            );
            rec.throttle_reported = true;
        }
    }

    circuit_breaker(st, &mut rec, &name, t);
    if let Some(alarms) = cp.alarms() {
        deployment_alarms(st, &mut rec, &name, alarms, t);
    }

    // Counts per deployment, rollout state, and retirement of drained deployments.
    let tasks: Vec<&crate::state::TaskRecord> =
        task_ids.iter().filter_map(|id| st.tasks.get(id)).collect();
    let count = |dep: Option<&str>, status: &[&str]| {
        tasks
            .iter()
            .filter(|r| dep.is_none_or(|d| r.deployment_id.as_deref() == Some(d)))
            .filter(|r| r.task.desired_status == task_status::RUNNING)
            .filter(|r| status.contains(&r.task.last_status.as_str()))
            .count() as u32
    };
    let pending = [
        task_status::PROVISIONING,
        task_status::PENDING,
        task_status::ACTIVATING,
    ];
    rec.service.running_count = count(None, &[task_status::RUNNING]);
    rec.service.pending_count = count(None, &pending);
    let active_of = |dep: &str| {
        tasks
            .iter()
            .filter(|r| {
                r.deployment_id.as_deref() == Some(dep)
                    && r.task.last_status != task_status::STOPPED
            })
            .count()
    };
    for d in rec.service.deployments.iter_mut() {
        let (running, pend) = (
            count(Some(&d.id), &[task_status::RUNNING]),
            count(Some(&d.id), &pending),
        );
        if (running, pend) != (d.running_count, d.pending_count) {
            d.running_count = running;
            d.pending_count = pend;
            d.updated_at = t;
        }
    }
    rec.service
        .deployments
        .retain(|d| d.status == "PRIMARY" || active_of(&d.id) > 0);
    if decision.steady && !rec.steady {
        if let Some(d) = rec
            .service
            .deployments
            .iter_mut()
            .find(|d| d.status == "PRIMARY")
        {
            if d.rollout_state.as_deref() == Some("IN_PROGRESS") {
                d.rollout_state = Some("COMPLETED".into());
                d.rollout_state_reason = Some(format!("ECS deployment {} completed.", d.id));
                d.updated_at = t;
                let id = d.id.clone();
                let td = d.task_definition.clone();
                push_event(
                    &mut rec,
                    format!("(service {name}) (deployment {id}) deployment completed."),
                );
                rec.last_completed_task_definition = Some(td);
                let mut rolled_back = None;
                if let Some(h) = rec.history.iter_mut().find(|h| h.id == id) {
                    h.status = "SUCCESSFUL".into();
                    h.finished_at = Some(t);
                    rolled_back = h.rollback_of.clone();
                }
                if let Some(old) = rolled_back {
                    if let Some(h) = rec
                        .history
                        .iter_mut()
                        .find(|h| h.id == old && h.status == "ROLLBACK_IN_PROGRESS")
                    {
                        h.status = "ROLLBACK_SUCCESSFUL".into();
                        h.finished_at = Some(t);
                    }
                }
            }
        }
        push_event(
            &mut rec,
            format!("(service {name}) has reached a steady state."),
        );
        for h in rec
            .history
            .iter_mut()
            .filter(|h| h.status == "ROLLBACK_IN_PROGRESS")
        {
            h.status = "ROLLBACK_SUCCESSFUL".into();
            h.finished_at = Some(t);
        }
    }
    rec.steady = decision.steady;
    if rec.service.status == "DRAINING"
        && tasks
            .iter()
            .all(|r| r.task.last_status == task_status::STOPPED)
    {
        rec.service.status = "INACTIVE".into();
        rec.service.deployments.clear();
    }
    rec.backoff_failures = backoff.consecutive_failures;
    rec.backoff_until = backoff.next_start_at;
    // Every field counts: the traffic shift's stage and the history must be persisted too.
    let changed = rec != before;
    if changed {
        st.services.insert(key.to_string(), rec);
        st.touch(SERVICES, key);
    }
}

/// ECS's deployment circuit breaker: the primary deployment fails once its failed tasks reach
/// half the desired count (rounded up, at least 3, at most 200); with rollback the service goes
/// back to the task definition of the last completed deployment.
fn circuit_breaker(st: &mut State, rec: &mut ServiceRecord, name: &str, t: f64) {
    let cb = rec
        .service
        .deployment_configuration
        .deployment_circuit_breaker
        .clone()
        .unwrap_or_default();
    if !cb.enable {
        return;
    }
    let threshold = failure_threshold(rec.service.desired_count);
    let Some(d) = in_progress_primary(rec) else {
        return;
    };
    if d.failed_tasks < threshold {
        return;
    }
    let reason = format!(
        "ECS deployment circuit breaker: {} tasks failed to start or failed their health checks (threshold {threshold}).",
        d.failed_tasks
    );
    let failure = Failure {
        reason,
        rollback: cb.rollback,
        trigger: "circuit breaker",
    };
    fail_deployment(st, rec, name, &d.id, failure, t);
}

/// ECS's deployment alarms (`deploymentConfiguration.alarms`): a deployment in progress fails once
/// one of the named alarms went into ALARM after it started; with `rollback` the service goes
/// back (a traffic shift switches back at once, a rolling deployment returns to the last
/// completed task definition). A rollback itself is not failed by the alarm that caused it.
fn deployment_alarms(
    st: &mut State,
    rec: &mut ServiceRecord,
    name: &str,
    alarms: &berth_metrics::AlarmManager,
    t: f64,
) {
    let Some(cfg) = rec
        .service
        .deployment_configuration
        .alarms
        .clone()
        .filter(|a| a.enable && !a.alarm_names.is_empty())
    else {
        return;
    };
    let Some(d) = in_progress_primary(rec) else {
        return;
    };
    let is_rollback = rec
        .history
        .iter()
        .any(|h| h.id == d.id && h.rollback_of.is_some());
    if is_rollback {
        return;
    }
    let firing = cfg.alarm_names.iter().find_map(|n| {
        let a = alarms.get(n)?;
        (a.state.value == berth_metrics::alarm::StateValue::ALARM
            && a.state.transitioned >= d.created_at - 1.0)
            .then(|| {
                format!(
                    "the deployment alarm {n} went into ALARM: {}",
                    a.state.reason
                )
            })
    });
    let Some(reason) = firing else { return };
    let failure = Failure {
        reason,
        rollback: cfg.rollback,
        trigger: "deployment alarm",
    };
    fail_deployment(st, rec, name, &d.id, failure, t);
}

/// The primary deployment while it rolls out.
fn in_progress_primary(rec: &ServiceRecord) -> Option<berth_model::ecs::Deployment> {
    rec.service
        .deployments
        .iter()
        .find(|d| d.status == "PRIMARY" && d.rollout_state.as_deref() == Some("IN_PROGRESS"))
        .cloned()
}

/// Why and how a deployment fails.
struct Failure {
    /// The deployment's rollout state reason and the history's status reason.
    reason: String,
    /// Whether the service goes back to where it was.
    rollback: bool,
    /// The rollback deployment's trigger in the history (`circuit breaker`, `deployment alarm`).
    trigger: &'static str,
}

/// Fails the deployment `failed_id`. The new set of a traffic shift is rolled back by switching
/// traffic to the old set at once; otherwise a rollback starts a deployment of the last completed
/// task definition that adopts the tasks still running it. Without a rollback (or nothing to go
/// back to) the deployment stays FAILED and starts no more tasks.
fn fail_deployment(
    st: &mut State,
    rec: &mut ServiceRecord,
    name: &str,
    failed_id: &str,
    failure: Failure,
    t: f64,
) {
    let Failure {
        reason,
        rollback,
        trigger,
    } = failure;
    if rollback && rec.shift.as_ref().is_some_and(|s| s.green == failed_id) {
        crate::shift::rollback(st, rec, &reason, t);
        return;
    }
    let Some(failed_td) = rec
        .service
        .deployments
        .iter()
        .find(|d| d.id == failed_id)
        .map(|d| d.task_definition.clone())
    else {
        return;
    };
    for d in rec
        .service
        .deployments
        .iter_mut()
        .filter(|d| d.id == failed_id)
    {
        d.rollout_state = Some("FAILED".into());
        d.rollout_state_reason = Some(reason.clone());
        d.updated_at = t;
    }
    push_event(
        rec,
        format!("(service {name}) (deployment {failed_id}) deployment failed: {reason}"),
    );
    let target = rec
        .last_completed_task_definition
        .clone()
        .filter(|td| *td != failed_td)
        .filter(|_| rollback && rec.shift.is_none());
    if let Some(h) = rec.history.iter_mut().find(|h| h.id == failed_id) {
        h.status = if target.is_some() {
            "ROLLBACK_IN_PROGRESS"
        } else {
            "STOPPED"
        }
        .into();
        h.status_reason = Some(reason);
        if target.is_none() {
            h.finished_at = Some(t);
        }
    }
    let Some(td) = target else { return };
    for d in rec
        .service
        .deployments
        .iter_mut()
        .filter(|d| d.status == "PRIMARY")
    {
        d.status = "ACTIVE".into();
    }
    let dep = crate::ecs::new_deployment(&td, rec.service.desired_count, t);
    push_event(
        rec,
        format!(
            "(service {name}) rolling back to deployment {} ({}).",
            dep.id, td
        ),
    );
    rec.history.insert(
        0,
        crate::ecs::history_entry(&dep, "berth", trigger, Some(failed_id.to_string())),
    );
    rec.history.truncate(crate::state::MAX_HISTORY);
    adopt_tasks(st, rec, &td, &dep.id);
    rec.service.task_definition = td;
    rec.service.deployments.insert(0, dep);
    rec.steady = false;
    rec.backoff_failures = 0;
    rec.backoff_until = 0.0;
}

/// A rollback adopts the running tasks of older deployments that run the task definition it goes
/// back to: they keep running (nothing restarts) and count for the new deployment at once.
pub(crate) fn adopt_tasks(
    st: &mut State,
    rec: &ServiceRecord,
    task_definition: &str,
    deployment: &str,
) {
    let ids: Vec<String> = st
        .tasks
        .values()
        .filter(|r| {
            r.cluster == rec.cluster
                && r.service.as_deref() == Some(rec.service.service_name.as_str())
        })
        .filter(|r| {
            r.task.task_definition_arn == task_definition
                && r.task.desired_status == task_status::RUNNING
        })
        .map(|r| r.id.clone())
        .collect();
    for id in ids {
        if let Some(r) = st.tasks.get_mut(&id) {
            r.deployment_id = Some(deployment.to_string());
            st.touch(TASKS, &id);
        }
    }
}

/// The circuit breaker's failure threshold for a desired count.
pub fn failure_threshold(desired: u32) -> u32 {
    desired.div_ceil(2).clamp(3, 200)
}

#[cfg(test)]
mod tests;
