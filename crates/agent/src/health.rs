//! Container health checks with ECS (Docker) semantics: a pure state machine plus the check runner.

use berth_model::ecs::HealthCheck;
use std::path::PathBuf;
use std::time::Duration;

/// A container's or task's health as ECS reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HealthStatus {
    Unknown,
    Healthy,
    Unhealthy,
}

impl HealthStatus {
    /// ECS's spelling: `UNKNOWN`, `HEALTHY`, `UNHEALTHY`.
    pub fn as_str(self) -> &'static str {
        match self {
            HealthStatus::Unknown => "UNKNOWN",
            HealthStatus::Healthy => "HEALTHY",
            HealthStatus::Unhealthy => "UNHEALTHY",
        }
    }
}

/// The health state machine of one container. Pure: time comes in as "time since the container
/// started", so it is tested without clocks.
#[derive(Debug, Clone, PartialEq)]
pub struct HealthTracker {
    status: HealthStatus,
    retries: u32,
    start_period: Duration,
    /// Set by the first success: from then on every failure counts, even inside the start period.
    started: bool,
    consecutive_failures: u32,
}

impl HealthTracker {
    /// A tracker for `check`, starting UNKNOWN.
    pub fn new(check: &HealthCheck) -> Self {
        HealthTracker {
            status: HealthStatus::Unknown,
            retries: check.retries().max(1),
            start_period: check.start_period().duration(),
            started: false,
            consecutive_failures: 0,
        }
    }

    /// Current status.
    pub fn status(&self) -> HealthStatus {
        self.status
    }

    /// Feeds one check result observed `since_start` after the container started.
    pub fn record(&mut self, success: bool, since_start: Duration) -> HealthStatus {
        if success {
            self.started = true;
            self.consecutive_failures = 0;
            self.status = HealthStatus::Healthy;
        } else if self.started || since_start >= self.start_period {
            self.consecutive_failures += 1;
            if self.consecutive_failures >= self.retries {
                self.status = HealthStatus::Unhealthy;
            }
        }
        self.status
    }
}

/// Task health from its containers `(essential, has_health_check, status)`: UNHEALTHY if any
/// essential container is, HEALTHY if every essential container with a check is (and one has a
/// check), otherwise UNKNOWN.
pub fn task_health(containers: &[(bool, bool, HealthStatus)]) -> HealthStatus {
    let checked: Vec<HealthStatus> = containers
        .iter()
        .filter(|(essential, has, _)| *essential && *has)
        .map(|c| c.2)
        .collect();
    if checked.contains(&HealthStatus::Unhealthy) {
        HealthStatus::Unhealthy
    } else if !checked.is_empty() && checked.iter().all(|s| *s == HealthStatus::Healthy) {
        HealthStatus::Healthy
    } else {
        HealthStatus::Unknown
    }
}

/// A health check ready to run: program, arguments, environment and working directory.
#[derive(Debug, Clone, PartialEq)]
pub struct CheckCommand {
    pub program: String,
    pub args: Vec<String>,
    pub env: Vec<(String, String)>,
    pub cwd: Option<PathBuf>,
    pub timeout: Duration,
}

impl CheckCommand {
    /// Builds the command from ECS's `["CMD", exe, args...]` or `["CMD-SHELL", script]`; `None` for
    /// any other shape (task definition validation refuses those).
    pub fn from_ecs(
        check: &HealthCheck,
        env: Vec<(String, String)>,
        cwd: Option<PathBuf>,
    ) -> Option<CheckCommand> {
        let timeout = check.timeout().duration();
        match check.command.split_first() {
            Some((kind, rest)) if kind == "CMD" && !rest.is_empty() => Some(CheckCommand {
                program: rest[0].clone(),
                args: rest[1..].to_vec(),
                env,
                cwd,
                timeout,
            }),
            Some((kind, rest)) if kind == "CMD-SHELL" && !rest.is_empty() => Some(CheckCommand {
                program: "/bin/sh".into(),
                args: vec!["-c".into(), rest.join(" ")],
                env,
                cwd,
                timeout,
            }),
            _ => None,
        }
    }

    /// Runs the check once: success means exit code 0 within the timeout. A check that passes its
    /// timeout is killed with its whole process group.
    pub async fn run(&self) -> bool {
        let mut cmd = tokio::process::Command::new(&self.program);
        cmd.args(&self.args)
            .env_clear()
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .process_group(0)
            .kill_on_drop(true);
        if let Some(cwd) = &self.cwd {
            cmd.current_dir(cwd);
        }
        let mut child = match cmd.spawn() {
            Ok(c) => c,
            Err(error) => {
                tracing::debug!(program = %self.program, %error, "health check could not start");
                return false;
            }
        };
        match tokio::time::timeout(self.timeout, child.wait()).await {
            Ok(Ok(status)) => status.success(),
            Ok(Err(_)) => false,
            Err(_) => {
                if let Some(pid) = child.id() {
                    let _ = nix::sys::signal::killpg(
                        nix::unistd::Pid::from_raw(pid as i32),
                        nix::sys::signal::Signal::SIGKILL,
                    );
                }
                let _ = child.kill().await;
                false
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use berth_model::seconds::Seconds;
    use HealthStatus::*;

    fn check(retries: u32, start_period: f64) -> HealthCheck {
        HealthCheck {
            command: vec!["CMD-SHELL".into(), "true".into()],
            retries: Some(retries),
            start_period: Some(Seconds(start_period)),
            ..Default::default()
        }
    }

    fn secs(s: f64) -> Duration {
        Duration::from_secs_f64(s)
    }

    #[test]
    fn consecutive_failures_reach_unhealthy_and_success_resets() {
        let mut h = HealthTracker::new(&check(3, 0.0));
        assert_eq!(h.status(), Unknown);
        assert_eq!(h.record(false, secs(1.0)), Unknown);
        assert_eq!(h.record(false, secs(2.0)), Unknown);
        assert_eq!(h.record(true, secs(3.0)), Healthy);
        assert_eq!(h.record(false, secs(4.0)), Healthy);
        assert_eq!(h.record(false, secs(5.0)), Healthy);
        assert_eq!(h.record(false, secs(6.0)), Unhealthy);
        assert_eq!(h.record(true, secs(7.0)), Healthy);
    }

    #[test]
    fn start_period_failures_do_not_count_until_first_success() {
        let mut h = HealthTracker::new(&check(1, 10.0));
        for t in 0..9 {
            assert_eq!(h.record(false, secs(t as f64)), Unknown, "t={t}");
        }
        assert_eq!(h.record(false, secs(10.0)), Unhealthy);

        let mut h = HealthTracker::new(&check(2, 10.0));
        assert_eq!(h.record(true, secs(0.5)), Healthy);
        // After a success in the start period, failures count at once.
        assert_eq!(h.record(false, secs(1.0)), Healthy);
        assert_eq!(h.record(false, secs(1.5)), Unhealthy);
    }

    #[test]
    fn task_health_follows_essential_checked_containers() {
        assert_eq!(task_health(&[]), Unknown);
        assert_eq!(task_health(&[(true, false, Unknown)]), Unknown);
        assert_eq!(
            task_health(&[(true, true, Healthy), (true, false, Unknown)]),
            Healthy
        );
        assert_eq!(
            task_health(&[(true, true, Healthy), (true, true, Unknown)]),
            Unknown
        );
        assert_eq!(
            task_health(&[(true, true, Healthy), (true, true, Unhealthy)]),
            Unhealthy
        );
        // Non-essential containers do not count either way.
        assert_eq!(
            task_health(&[(true, true, Healthy), (false, true, Unhealthy)]),
            Healthy
        );
        assert_eq!(task_health(&[(false, true, Healthy)]), Unknown);
    }

    #[test]
    fn check_commands_parse_exec_and_shell_forms() {
        let mut hc = check(1, 0.0);
        hc.command = vec!["CMD".into(), "curl".into(), "-f".into(), "x".into()];
        let c = CheckCommand::from_ecs(&hc, vec![], None).unwrap();
        assert_eq!(
            (c.program.as_str(), c.args.clone()),
            ("curl", vec!["-f".to_string(), "x".into()])
        );
        assert_eq!(c.timeout, secs(5.0));
        hc.command = vec!["CMD-SHELL".into(), "exit 1".into()];
        let c = CheckCommand::from_ecs(&hc, vec![], None).unwrap();
        assert_eq!(c.args, vec!["-c".to_string(), "exit 1".into()]);
        hc.command = vec!["CMD".into()];
        assert_eq!(CheckCommand::from_ecs(&hc, vec![], None), None);
        hc.command = vec!["NONE".into(), "x".into()];
        assert_eq!(CheckCommand::from_ecs(&hc, vec![], None), None);
    }

    #[tokio::test]
    async fn checks_succeed_fail_and_time_out() {
        let mk = |script: &str, timeout: f64| CheckCommand {
            program: "/bin/sh".into(),
            args: vec!["-c".into(), script.into()],
            env: vec![("X".into(), "7".into())],
            cwd: None,
            timeout: secs(timeout),
        };
        assert!(mk("test \"$X\" = 7", 5.0).run().await);
        assert!(!mk("exit 1", 5.0).run().await);
        let started = std::time::Instant::now();
        assert!(!mk("sleep 20", 0.2).run().await);
        assert!(started.elapsed() < secs(10.0));
        let missing = CheckCommand {
            program: "/nonexistent/check".into(),
            ..mk("", 1.0)
        };
        assert!(!missing.run().await);
    }
}
