//! Target health as ALB models it: states, reason codes, the success-code matcher and the pure
//! state machine that turns one health-check outcome into the next state.

/// ALB target health state (draining and unused are derived when reporting).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    Initial = 0,
    Healthy = 1,
    Unhealthy = 2,
    Unavailable = 3,
}

/// ALB reason codes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reason {
    None = 0,
    RegistrationInProgress = 1,
    InitialHealthChecking = 2,
    ResponseCodeMismatch = 3,
    Timeout = 4,
    FailedHealthChecks = 5,
    HealthCheckDisabled = 6,
    InternalError = 7,
}

impl State {
    /// The wire name in `TargetHealth.state`.
    pub fn as_str(self) -> &'static str {
        match self {
            State::Initial => "initial",
            State::Healthy => "healthy",
            State::Unhealthy => "unhealthy",
            State::Unavailable => "unavailable",
        }
    }
}

impl Reason {
    /// The ALB reason code, if any.
    pub fn code(self) -> Option<&'static str> {
        match self {
            Reason::None => None,
            Reason::RegistrationInProgress => Some("Elb.RegistrationInProgress"),
            Reason::InitialHealthChecking => Some("Elb.InitialHealthChecking"),
            Reason::ResponseCodeMismatch => Some("Target.ResponseCodeMismatch"),
            Reason::Timeout => Some("Target.Timeout"),
            Reason::FailedHealthChecks => Some("Target.FailedHealthChecks"),
            Reason::HealthCheckDisabled => Some("Target.HealthCheckDisabled"),
            Reason::InternalError => Some("Elb.InternalError"),
        }
    }

    /// ALB's description text for the reason.
    pub fn description(self) -> Option<&'static str> {
        match self {
            Reason::None => None,
            Reason::RegistrationInProgress => Some("Target registration is in progress"),
            Reason::InitialHealthChecking => Some("Initial health checks in progress"),
            Reason::ResponseCodeMismatch => Some("Health checks failed with these codes"),
            Reason::Timeout => Some("Request timed out"),
            Reason::FailedHealthChecks => Some("Health checks failed"),
            Reason::HealthCheckDisabled => Some("Health checks are disabled"),
            Reason::InternalError => Some("Health checks failed due to an internal error"),
        }
    }
}

/// A target's health: state, reason and the consecutive success/failure streaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Health {
    pub state: State,
    pub reason: Reason,
    pub ok_streak: u16,
    pub fail_streak: u16,
}

impl Health {
    /// A newly registered target whose health is checked.
    pub const REGISTERED: Health = Health {
        state: State::Initial,
        reason: Reason::RegistrationInProgress,
        ok_streak: 0,
        fail_streak: 0,
    };
    /// A target of a group whose health checks are disabled (routed to).
    pub const DISABLED: Health = Health {
        state: State::Unavailable,
        reason: Reason::HealthCheckDisabled,
        ok_streak: 0,
        fail_streak: 0,
    };

    /// Packs into a u64 so it can live in one atomic.
    pub fn pack(self) -> u64 {
        (self.state as u64)
            | ((self.reason as u64) << 8)
            | ((self.ok_streak as u64) << 16)
            | ((self.fail_streak as u64) << 32)
    }

    /// Inverse of [`Health::pack`].
    pub fn unpack(v: u64) -> Health {
        let state = match v & 0xff {
            0 => State::Initial,
            1 => State::Healthy,
            2 => State::Unhealthy,
            _ => State::Unavailable,
        };
        let reason = match (v >> 8) & 0xff {
            0 => Reason::None,
            1 => Reason::RegistrationInProgress,
            2 => Reason::InitialHealthChecking,
            3 => Reason::ResponseCodeMismatch,
            4 => Reason::Timeout,
            5 => Reason::FailedHealthChecks,
            6 => Reason::HealthCheckDisabled,
            _ => Reason::InternalError,
        };
        Health {
            state,
            reason,
            ok_streak: ((v >> 16) & 0xffff) as u16,
            fail_streak: ((v >> 32) & 0xffff) as u16,
        }
    }

    /// Whether the target is in rotation (healthy, or health checks disabled).
    pub fn in_rotation(self) -> bool {
        matches!(self.state, State::Healthy)
            || (self.state == State::Unavailable && self.reason == Reason::HealthCheckDisabled)
    }
}

/// The result of one health check.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// The status code matched.
    Success,
    /// The target answered with a code the matcher rejects.
    CodeMismatch,
    /// No answer within the timeout.
    Timeout,
    /// Connection refused/reset or malformed answer.
    Failed,
}

/// Thresholds of a target group's health check.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Thresholds {
    pub healthy: u32,
    pub unhealthy: u32,
}

/// The next health after one check outcome (ALB: `healthy` consecutive successes make a target
/// healthy, `unhealthy` consecutive failures make it unhealthy; a new target starts `initial`).
pub fn step(h: Health, outcome: Outcome, th: Thresholds) -> Health {
    let healthy_needed = th.healthy.max(1);
    let unhealthy_needed = th.unhealthy.max(1);
    let fail_reason = match outcome {
        Outcome::Success => Reason::None,
        Outcome::CodeMismatch => Reason::ResponseCodeMismatch,
        Outcome::Timeout => Reason::Timeout,
        Outcome::Failed => Reason::FailedHealthChecks,
    };
    let mut next = h;
    if outcome == Outcome::Success {
        next.fail_streak = 0;
        next.ok_streak = h.ok_streak.saturating_add(1);
        match h.state {
            State::Healthy => {}
            _ if u32::from(next.ok_streak) >= healthy_needed => {
                next.state = State::Healthy;
                next.reason = Reason::None;
            }
            State::Initial => next.reason = Reason::InitialHealthChecking,
            _ => {}
        }
    } else {
        next.ok_streak = 0;
        next.fail_streak = h.fail_streak.saturating_add(1);
        if u32::from(next.fail_streak) >= unhealthy_needed {
            next.state = State::Unhealthy;
            next.reason = fail_reason;
        } else if h.state == State::Initial {
            next.reason = Reason::InitialHealthChecking;
        } else if h.state == State::Unhealthy {
            next.reason = fail_reason;
        }
    }
    next
}

/// The passive check: a target that refused a connection leaves rotation at once.
pub fn mark_failed(h: Health) -> Health {
    Health {
        state: State::Unhealthy,
        reason: Reason::FailedHealthChecks,
        ok_streak: 0,
        fail_streak: h.fail_streak.saturating_add(1),
    }
}

/// Success codes of a health check (`200`, `200-299`, `200,302`, or a mix).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Matcher {
    ranges: Vec<(u16, u16)>,
}

impl Matcher {
    /// Parses ALB's matcher syntax; codes must be 100-599.
    pub fn parse(text: &str) -> Result<Matcher, String> {
        let mut ranges = Vec::new();
        for part in text.split(',') {
            let part = part.trim();
            let (lo, hi) = match part.split_once('-') {
                Some((lo, hi)) => (lo.trim(), hi.trim()),
                None => (part, part),
            };
            let parse = |s: &str| -> Result<u16, String> {
                match s.parse::<u16>() {
                    Ok(code) if (100..=599).contains(&code) => Ok(code),
                    _ => Err(format!(
                        "expected HTTP codes like 200, 200-299 or 200,302; found {text:?}"
                    )),
                }
            };
            let (lo, hi) = (parse(lo)?, parse(hi)?);
            if lo > hi {
                return Err(format!(
                    "expected a range low-high with low <= high; found {part:?}"
                ));
            }
            ranges.push((lo, hi));
        }
        Ok(Matcher { ranges })
    }

    /// The default matcher, `200`.
    pub fn ok() -> Matcher {
        Matcher {
            ranges: vec![(200, 200)],
        }
    }

    /// Whether `code` counts as a success.
    pub fn matches(&self, code: u16) -> bool {
        self.ranges
            .iter()
            .any(|(lo, hi)| (*lo..=*hi).contains(&code))
    }
}

#[cfg(test)]
mod tests;
