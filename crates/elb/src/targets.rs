//! RegisterTargets, DeregisterTargets, DescribeTargetHealth, and the target lifecycle the control
//! plane drives: health reports from the proxy, draining, and removal once drained.
//!
//! A target's state is, in order: `draining` once deregistered; `unused` while no listener or rule
//! forwards to its group; `unavailable` when health checks are off; the state the proxy last
//! reported; `initial` until the first report.

use crate::requests::TargetDescription;
use crate::types::{RegisteredTarget, ReportedHealth, TargetHealthDescription, TargetHealthState};
use crate::{ElbError, ElbState, MAX_TARGETS_PER_TARGET_GROUP};
use berth_model::protocol::proxy::TargetHealth;

impl TargetDescription {
    /// A target with an explicit port.
    pub fn new(id: impl Into<String>, port: u16) -> TargetDescription {
        TargetDescription {
            id: id.into(),
            port: Some(i64::from(port)),
            availability_zone: None,
        }
    }
}

fn health(state: &str, reason: Option<&str>, description: Option<&str>) -> TargetHealthState {
    TargetHealthState {
        state: state.into(),
        reason: reason.map(Into::into),
        description: description.map(Into::into),
    }
}

impl ElbState {
    /// Resolves each target's port (the group's when absent), refusing bad ids and ports.
    fn resolve_targets(
        &self,
        target_group_arn: &str,
        targets: &[TargetDescription],
    ) -> Result<Vec<(String, u16, Option<String>)>, ElbError> {
        let tg = self.target_group(target_group_arn)?;
        let mut out = Vec::new();
        for t in targets {
            if t.id.is_empty() {
                return Err(ElbError::InvalidTarget("A target needs an Id".into()));
            }
            if tg.target_type == "ip" && t.id.parse::<std::net::IpAddr>().is_err() {
                return Err(ElbError::InvalidTarget(format!(
                    "The target '{}' is not an IP address, which target group '{}' (target type ip) needs",
                    t.id, tg.name
                )));
            }
            let port = match t.port {
                None => tg.port,
                Some(p) => match u16::try_from(p) {
                    Ok(p) if p > 0 => p,
                    _ => {
                        return Err(ElbError::InvalidTarget(format!(
                            "The port of target '{}' must be from 1 to 65535, found {p}",
                            t.id
                        )))
                    }
                },
            };
            out.push((t.id.clone(), port, t.availability_zone.clone()));
        }
        Ok(out)
    }

    /// RegisterTargets: adds targets (re-registering a draining one stops its draining).
    pub fn register_targets(
        &mut self,
        target_group_arn: &str,
        targets: &[TargetDescription],
    ) -> Result<(), ElbError> {
        let resolved = self.resolve_targets(target_group_arn, targets)?;
        if resolved.is_empty() {
            return Err(ElbError::field(
                "Targets",
                "at least one target was expected, found none",
            ));
        }
        let list = self
            .targets
            .get(target_group_arn)
            .map(Vec::as_slice)
            .unwrap_or_default();
        let mut n_new = 0;
        for (i, (id, port, _)) in resolved.iter().enumerate() {
            let seen = list.iter().any(|t| t.id == *id && t.port == *port)
                || resolved[..i].iter().any(|(a, b, _)| a == id && b == port);
            n_new += usize::from(!seen);
        }
        if list.len() + n_new > MAX_TARGETS_PER_TARGET_GROUP {
            return Err(ElbError::TooManyTargets(format!(
                "Target group '{target_group_arn}' would have {} targets; at most {MAX_TARGETS_PER_TARGET_GROUP} are allowed",
                list.len() + n_new
            )));
        }
        let list = self
            .targets
            .entry(target_group_arn.to_string())
            .or_default();
        for (id, port, availability_zone) in resolved {
            match list.iter_mut().find(|t| t.id == id && t.port == port) {
                Some(t) if t.draining_since.is_some() => {
                    t.draining_since = None;
                    t.reported = None;
                }
                Some(_) => {}
                None => list.push(RegisteredTarget {
                    id,
                    port,
                    availability_zone,
                    draining_since: None,
                    reported: None,
                }),
            }
        }
        Ok(())
    }

    /// DeregisterTargets: starts draining the targets; `remove_drained` removes them later.
    /// Every target must be registered.
    pub fn deregister_targets(
        &mut self,
        target_group_arn: &str,
        targets: &[TargetDescription],
        now: f64,
    ) -> Result<(), ElbError> {
        let resolved = self.resolve_targets(target_group_arn, targets)?;
        let list = self
            .targets
            .entry(target_group_arn.to_string())
            .or_default();
        let missing: Vec<String> = resolved
            .iter()
            .filter(|(id, port, _)| !list.iter().any(|t| t.id == *id && t.port == *port))
            .map(|(id, port, _)| format!("{id}:{port}"))
            .collect();
        if !missing.is_empty() {
            return Err(ElbError::InvalidTarget(format!(
                "The following targets are not registered in target group '{target_group_arn}': {}",
                missing.join(", ")
            )));
        }
        for (id, port, _) in resolved {
            if let Some(t) = list
                .iter_mut()
                .find(|t| t.id == id && t.port == port && t.draining_since.is_none())
            {
                t.draining_since = Some(now);
                t.reported = None;
            }
        }
        Ok(())
    }

    /// The state of a registered target, `None` when it is not registered.
    pub fn target_state(
        &self,
        target_group_arn: &str,
        id: &str,
        port: u16,
    ) -> Option<TargetHealthState> {
        let t = self
            .targets
            .get(target_group_arn)?
            .iter()
            .find(|t| t.id == id && t.port == port)?;
        Some(self.state_of(target_group_arn, t))
    }

    fn state_of(&self, target_group_arn: &str, t: &RegisteredTarget) -> TargetHealthState {
        if t.draining_since.is_some() {
            return health(
                "draining",
                Some("Target.DeregistrationInProgress"),
                Some("Target deregistration is in progress"),
            );
        }
        if !self.target_group_in_use(target_group_arn) {
            return health(
                "unused",
                Some("Target.NotInUse"),
                Some("Target group is not configured to receive traffic from the load balancer"),
            );
        }
        if self
            .target_group(target_group_arn)
            .is_ok_and(|tg| !tg.health_check.enabled)
        {
            return health(
                "unavailable",
                Some("Target.HealthCheckDisabled"),
                Some("Health checks disabled"),
            );
        }
        match &t.reported {
            Some(r) => health(&r.state, r.reason.as_deref(), r.description.as_deref()),
            None => health(
                "initial",
                Some("Elb.RegistrationInProgress"),
                Some("Target registration is in progress"),
            ),
        }
    }

    /// DescribeTargetHealth: all registered targets, or the ones asked for (an unregistered one
    /// is `unused` with reason `Target.NotRegistered`).
    pub fn describe_target_health(
        &self,
        target_group_arn: &str,
        targets: &[TargetDescription],
    ) -> Result<Vec<TargetHealthDescription>, ElbError> {
        let tg = self.target_group(target_group_arn)?;
        let registered = self
            .targets
            .get(target_group_arn)
            .map(Vec::as_slice)
            .unwrap_or_default();
        let check_port = |port: u16| {
            if tg.health_check.port == "traffic-port" {
                port.to_string()
            } else {
                tg.health_check.port.clone()
            }
        };
        let describe = |t: &RegisteredTarget| TargetHealthDescription {
            id: t.id.clone(),
            port: t.port,
            availability_zone: t.availability_zone.clone(),
            health_check_port: check_port(t.port),
            health: self.state_of(target_group_arn, t),
        };
        if targets.is_empty() {
            return Ok(registered.iter().map(describe).collect());
        }
        let mut out = Vec::new();
        for t in targets {
            let port = t.port.and_then(|p| u16::try_from(p).ok());
            let matches: Vec<&RegisteredTarget> = registered
                .iter()
                .filter(|r| r.id == t.id && port.is_none_or(|p| p == r.port))
                .collect();
            if matches.is_empty() {
                let port = port.unwrap_or(tg.port);
                out.push(TargetHealthDescription {
                    id: t.id.clone(),
                    port,
                    availability_zone: t.availability_zone.clone(),
                    health_check_port: check_port(port),
                    health: health(
                        "unused",
                        Some("Target.NotRegistered"),
                        Some("Target is not registered to the target group"),
                    ),
                });
            }
            out.extend(matches.into_iter().map(describe));
        }
        Ok(out)
    }

    /// Records the proxy's health report for registered targets; returns true when a visible
    /// state or an in-flight count changed (the caller then persists).
    pub fn apply_health_report(&mut self, reports: &[TargetHealth]) -> bool {
        let mut changed = false;
        for r in reports {
            let Some(list) = self.targets.get_mut(&r.target_group_arn) else {
                continue;
            };
            let Some(t) = list.iter_mut().find(|t| t.id == r.id && t.port == r.port) else {
                continue;
            };
            let reported = ReportedHealth {
                state: r.state.clone(),
                reason: r.reason.clone(),
                description: r.description.clone(),
                in_flight: r.in_flight,
            };
            if t.reported.as_ref() != Some(&reported) {
                t.reported = Some(reported);
                changed = true;
            }
        }
        changed
    }

    /// True when a draining target may go: its group's deregistration delay has passed since
    /// draining began, or the proxy (already treating it as draining) reports nothing in flight.
    pub fn drain_finished(&self, target_group_arn: &str, id: &str, port: u16, now: f64) -> bool {
        let Some(t) = self
            .targets
            .get(target_group_arn)
            .and_then(|l| l.iter().find(|t| t.id == id && t.port == port))
        else {
            return false;
        };
        let Some(since) = t.draining_since else {
            return false;
        };
        let idle = t
            .reported
            .as_ref()
            .is_some_and(|r| r.state == "draining" && r.in_flight == 0);
        idle || now - since >= self.deregistration_delay(target_group_arn)
    }

    /// Removes every target whose draining has finished; returns (target group ARN, id, port)
    /// of each removed one.
    pub fn remove_drained(&mut self, now: f64) -> Vec<(String, String, u16)> {
        let mut done = Vec::new();
        for (tg, list) in &self.targets {
            for t in list {
                if self.drain_finished(tg, &t.id, t.port, now) {
                    done.push((tg.clone(), t.id.clone(), t.port));
                }
            }
        }
        for (tg, id, port) in &done {
            if let Some(list) = self.targets.get_mut(tg) {
                list.retain(|t| !(t.id == *id && t.port == *port));
            }
        }
        done
    }
}
