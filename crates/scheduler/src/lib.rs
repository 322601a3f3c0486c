//! The service scheduler as a pure function: (service, its tasks, now) → actions. It decides how many
//! tasks to start for which deployment and which tasks to stop, bounded by ECS's
//! minimumHealthyPercent / maximumPercent, and throttles restarts of tasks that keep failing.
//! No IO, no clock: everything comes in as arguments.

#[cfg(test)]
mod tests;

/// Where a task is in its life, as the scheduler needs to know it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// Not running yet (PROVISIONING, PENDING, ACTIVATING).
    Pending,
    /// RUNNING.
    Running,
    /// Asked to stop (desired STOPPED) but not STOPPED yet, e.g. draining.
    Stopping,
    /// STOPPED.
    Stopped,
}

/// A running task's health as far as the service is concerned (container checks and target health).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Health {
    Healthy,
    Unhealthy,
    /// Not known yet (checks still starting, grace period).
    Unknown,
}

/// One task of the service.
#[derive(Debug, Clone, PartialEq)]
pub struct TaskView {
    pub id: String,
    pub deployment_id: String,
    pub phase: Phase,
    pub health: Health,
    /// When the task was created (seconds); newer tasks are stopped first on scale-in.
    pub created_at: f64,
}

impl TaskView {
    fn active(&self) -> bool {
        matches!(self.phase, Phase::Pending | Phase::Running)
    }
    fn healthy(&self) -> bool {
        self.phase == Phase::Running && self.health == Health::Healthy
    }
}

/// Exponential start throttling after repeated task failures.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Backoff {
    pub consecutive_failures: u32,
    /// No task is started before this time.
    pub next_start_at: f64,
}

/// Throttling starts after this many failures in a row.
pub const BACKOFF_AFTER_FAILURES: u32 = 3;
/// First delay once throttling starts, doubled per further failure.
pub const BACKOFF_BASE_SECONDS: f64 = 1.0;
/// Longest delay between start attempts.
pub const BACKOFF_MAX_SECONDS: f64 = 60.0;

impl Backoff {
    /// The state after a task of the service failed (did not start, or exited / turned unhealthy).
    pub fn after_failure(self, now: f64) -> Backoff {
        let n = self.consecutive_failures.saturating_add(1);
        let delay = if n < BACKOFF_AFTER_FAILURES {
            0.0
        } else {
            let exp = (n - BACKOFF_AFTER_FAILURES).min(16);
            (BACKOFF_BASE_SECONDS * f64::from(1u32 << exp)).min(BACKOFF_MAX_SECONDS)
        };
        Backoff {
            consecutive_failures: n,
            next_start_at: now + delay,
        }
    }
    /// The state after a task became healthy: throttling ends.
    pub fn after_success(self) -> Backoff {
        Backoff::default()
    }
    /// Seconds to wait before the next start, if throttled.
    pub fn delay(&self, now: f64) -> Option<f64> {
        (self.next_start_at > now).then_some(self.next_start_at - now)
    }
}

/// What the scheduler needs to know about a service.
#[derive(Debug, Clone, PartialEq)]
pub struct ServiceView {
    pub desired_count: u32,
    pub minimum_healthy_percent: u32,
    pub maximum_percent: u32,
    /// The deployment new tasks belong to.
    pub primary_deployment: String,
    pub tasks: Vec<TaskView>,
    pub backoff: Backoff,
}

/// Why the scheduler stops a task.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StopReason {
    /// The task failed its health checks.
    Unhealthy,
    /// The task belongs to an older deployment.
    Replaced,
    /// There are more tasks than desired.
    ScaleIn,
}

/// What to do now.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Decision {
    /// Start this many tasks of the primary deployment.
    pub start: u32,
    /// Stop these tasks.
    pub stop: Vec<(String, StopReason)>,
    /// Starts are throttled for this many more seconds.
    pub throttled_for: Option<f64>,
    /// One deployment with `desired_count` healthy tasks and nothing else running.
    pub steady: bool,
}

/// Largest number of tasks that may be active at once (ECS rounds maximumPercent down), never below 1
/// while anything is desired, so that `desiredCount 1, maximumPercent 100` can still replace its task.
pub fn max_active(desired: u32, maximum_percent: u32) -> u32 {
    let m = (u64::from(desired) * u64::from(maximum_percent) / 100) as u32;
    if desired > 0 {
        m.max(desired).max(1)
    } else {
        0
    }
}

/// Smallest number of tasks that must stay healthy (ECS rounds minimumHealthyPercent up).
pub fn min_healthy(desired: u32, minimum_healthy_percent: u32) -> u32 {
    let p = u64::from(desired) * u64::from(minimum_healthy_percent.min(100));
    p.div_ceil(100) as u32
}

/// One scheduling step for one service.
pub fn decide(service: &ServiceView, now: f64) -> Decision {
    let mut decision = Decision::default();
    let desired = service.desired_count;
    let max_total = max_active(desired, service.maximum_percent);
    let min_ok = min_healthy(desired, service.minimum_healthy_percent);
    let is_primary = |t: &TaskView| t.deployment_id == service.primary_deployment;

    // Unhealthy tasks never count towards availability: replace them at once.
    let mut stopped: Vec<&str> = Vec::new();
    for t in service
        .tasks
        .iter()
        .filter(|t| t.phase == Phase::Running && t.health == Health::Unhealthy)
    {
        decision.stop.push((t.id.clone(), StopReason::Unhealthy));
        stopped.push(&t.id);
    }

    // Scale-in of the primary deployment: stop the least useful extras (not healthy, then newest).
    let mut primary: Vec<&TaskView> = service
        .tasks
        .iter()
        .filter(|t| is_primary(t) && t.active() && !stopped.contains(&t.id.as_str()))
        .collect();
    if primary.len() as u32 > desired {
        primary.sort_by(|a, b| {
            a.healthy()
                .cmp(&b.healthy())
                .then(b.created_at.total_cmp(&a.created_at))
        });
        let extra = primary.len() - desired as usize;
        for t in primary.drain(..extra) {
            decision.stop.push((t.id.clone(), StopReason::ScaleIn));
            stopped.push(&t.id);
        }
    }

    // Old deployments: pending tasks go at once; running ones only while the service keeps
    // `min_ok` healthy tasks.
    let healthy_now = service
        .tasks
        .iter()
        .filter(|t| t.healthy() && !stopped.contains(&t.id.as_str()))
        .count() as u32;
    let mut budget = healthy_now.saturating_sub(min_ok);
    let mut old: Vec<&TaskView> = service
        .tasks
        .iter()
        .filter(|t| !is_primary(t) && t.active() && !stopped.contains(&t.id.as_str()))
        .collect();
    old.sort_by(|a, b| {
        a.healthy()
            .cmp(&b.healthy())
            .then(a.created_at.total_cmp(&b.created_at))
    });
    for t in old {
        let free = t.phase == Phase::Pending;
        if free || budget > 0 {
            if !free {
                budget -= 1;
            }
            decision.stop.push((t.id.clone(), StopReason::Replaced));
            stopped.push(&t.id);
        }
    }

    // Start primary tasks into the room that maximumPercent leaves.
    let active_after = service
        .tasks
        .iter()
        .filter(|t| t.active() && !stopped.contains(&t.id.as_str()))
        .count() as u32;
    let primary_after = service
        .tasks
        .iter()
        .filter(|t| is_primary(t) && t.active() && !stopped.contains(&t.id.as_str()))
        .count() as u32;
    let need = desired.saturating_sub(primary_after);
    let room = max_total.saturating_sub(active_after);
    let start = need.min(room);
    if start > 0 {
        match service.backoff.delay(now) {
            Some(wait) => decision.throttled_for = Some(wait),
            None => decision.start = start,
        }
    }

    let all_active: Vec<&TaskView> = service.tasks.iter().filter(|t| t.active()).collect();
    decision.steady = decision.stop.is_empty()
        && decision.start == 0
        && decision.throttled_for.is_none()
        && all_active.len() as u32 == desired
        && all_active.iter().all(|t| is_primary(t) && t.healthy());
    decision
}
