//! Scaling decisions as pure functions of (capacity, metric, configuration, now): target tracking
//! capacity, how several policies combine, cooldowns, step adjustments and min/max clamping.
//! No IO here; the controller in `evaluate.rs` gathers the inputs and applies the results.

use crate::model::StepAdjustment;

/// Target tracking scales in only when the metric is below this fraction of the target (AWS's
/// AlarmLow threshold is 90% of the target value).
pub const SCALE_IN_MARGIN: f64 = 0.9;

/// One scale-in removes at most this fraction of the current capacity (and at least one task), so
/// capacity steps down gradually even when the metric drops to zero.
pub const MAX_SCALE_IN_FRACTION: f64 = 0.5;

/// Guards `ceil` against float noise (`2 × 75 / 50` must give 3, not 4).
const EPSILON: f64 = 1e-9;

/// What one target tracking policy wants.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Vote {
    /// Keep the current capacity (no sustained breach, scale-in disabled, or no data).
    Hold,
    /// Scale out to this capacity.
    Out(u32),
    /// Scale in to this capacity.
    In(u32),
}

/// The capacity a target tracking policy wants when `current` tasks show `metric` against
/// `target`: above the target, `ceil(current × metric / target)` (one task when there are none);
/// below `target × SCALE_IN_MARGIN` (and `scale_in` allowed), the larger of
/// `ceil(current × metric / target)` (never so few that the metric would exceed the target) and
/// `current` minus at most `MAX_SCALE_IN_FRACTION` of it. None: no change.
pub fn target_tracking_capacity(
    current: u32,
    metric: f64,
    target: f64,
    scale_in: bool,
) -> Option<u32> {
    if !metric.is_finite() || !target.is_finite() || target <= 0.0 || metric < 0.0 {
        return None;
    }
    let needed = (f64::from(current) * metric / target - EPSILON)
        .ceil()
        .max(0.0);
    let needed = if needed > f64::from(u32::MAX) {
        u32::MAX
    } else {
        needed as u32
    };
    if metric > target {
        let out = if current == 0 { 1 } else { needed };
        return (out > current).then_some(out);
    }
    if !scale_in || current == 0 || metric >= target * SCALE_IN_MARGIN {
        return None;
    }
    let step = ((f64::from(current) * MAX_SCALE_IN_FRACTION).floor() as u32).max(1);
    let to = needed.max(current - step);
    (to < current).then_some(to)
}

/// Combines target tracking votes: the largest scale-out wins; scale-in happens only when every
/// policy votes to scale in, to the largest capacity any of them wants. None: no change.
pub fn combine(votes: &[Vote]) -> Option<Vote> {
    let out = votes.iter().filter_map(|v| match v {
        Vote::Out(n) => Some(*n),
        _ => None,
    });
    if let Some(n) = out.max() {
        return Some(Vote::Out(n));
    }
    if votes.is_empty() {
        return None;
    }
    let mut to = 0;
    for v in votes {
        match v {
            Vote::In(n) => to = to.max(*n),
            _ => return None,
        }
    }
    Some(Vote::In(to))
}

/// `n` within the target's `[min, max]`.
pub fn clamp(n: i64, min: u32, max: u32) -> u32 {
    n.clamp(i64::from(min), i64::from(max.max(min))) as u32
}

/// A scalable target's cooldowns, seconds since the epoch.
#[derive(Debug, Clone, Copy, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Cooldowns {
    /// The last scale-out's cooldown ends here.
    pub scale_out_until: f64,
    /// The capacity the last scale-out set.
    pub scale_out_capacity: u32,
    /// The capacity before the last scale-out (what the metric still shows while tasks start).
    #[serde(default)]
    pub scale_out_from: u32,
    /// The last scale-in's cooldown ends here.
    pub scale_in_until: f64,
}

impl Cooldowns {
    /// A scale-out to `proposed` may run: outside the scale-out cooldown, or bigger than the
    /// scale-out in progress. The scale-in cooldown never blocks a scale-out.
    pub fn scale_out_allowed(&self, now: f64, proposed: u32) -> bool {
        now >= self.scale_out_until || proposed > self.scale_out_capacity
    }

    /// A scale-in may run: neither a scale-out nor a scale-in cooldown is in effect.
    pub fn scale_in_allowed(&self, now: f64) -> bool {
        now >= self.scale_out_until && now >= self.scale_in_until
    }

    /// Records a scale-out from `from` to `capacity` at `now`.
    pub fn scaled_out(&mut self, now: f64, from: u32, capacity: u32, cooldown: f64) {
        self.scale_out_until = now + cooldown;
        self.scale_out_from = from;
        self.scale_out_capacity = capacity;
    }

    /// The capacity a scale-out proposal starts from: the running tasks the metric describes (at
    /// most `desired`); when none are known, the capacity before a scale-out still in its cooldown
    /// (its tasks are not in the metric yet: AWS counts them as part of the next scale-out), else
    /// `desired`.
    pub fn scale_out_base(&self, now: f64, desired: u32, running: u32) -> u32 {
        if running > 0 {
            running.min(desired)
        } else if now < self.scale_out_until {
            self.scale_out_from.min(desired)
        } else {
            desired
        }
    }

    /// Records a scale-in at `now`.
    pub fn scaled_in(&mut self, now: f64, cooldown: f64) {
        self.scale_in_until = now + cooldown;
    }
}

/// How a step policy's adjustment is read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AdjustmentType {
    /// Add the adjustment (negative removes).
    ChangeInCapacity,
    /// Set the capacity to the adjustment.
    ExactCapacity,
    /// Add this percentage of the current capacity.
    PercentChangeInCapacity,
}

impl AdjustmentType {
    /// Parses the wire name.
    pub fn parse(s: &str) -> Option<AdjustmentType> {
        Some(match s {
            "ChangeInCapacity" => AdjustmentType::ChangeInCapacity,
            "ExactCapacity" => AdjustmentType::ExactCapacity,
            "PercentChangeInCapacity" => AdjustmentType::PercentChangeInCapacity,
            _ => return None,
        })
    }
}

/// The step whose interval holds `delta` (metric − alarm threshold). Above the threshold the lower
/// bound is inclusive and the upper exclusive; below it, the other way round (as AWS documents).
pub fn step_for(steps: &[StepAdjustment], delta: f64) -> Option<&StepAdjustment> {
    steps.iter().find(|s| {
        let lo = s.metric_interval_lower_bound.unwrap_or(f64::NEG_INFINITY);
        let hi = s.metric_interval_upper_bound.unwrap_or(f64::INFINITY);
        if delta >= 0.0 {
            lo <= delta && delta < hi
        } else {
            lo < delta && delta <= hi
        }
    })
}

/// Checks step adjustments: bounds in order, no two steps overlapping, no gaps, at most one
/// open-ended step on each side. Every problem is returned.
pub fn validate_steps(steps: &[StepAdjustment], path: &str) -> Vec<String> {
    let mut errors = Vec::new();
    if steps.is_empty() {
        errors.push(format!(
            "{path}: at least one step adjustment was expected, found none"
        ));
        return errors;
    }
    for (i, s) in steps.iter().enumerate() {
        if let (Some(lo), Some(hi)) = (s.metric_interval_lower_bound, s.metric_interval_upper_bound)
        {
            if lo >= hi {
                errors.push(format!("{path}[{i}]: MetricIntervalLowerBound below MetricIntervalUpperBound was expected, found {lo} >= {hi}"));
            }
        }
        if s.metric_interval_lower_bound.is_none()
            && s.metric_interval_upper_bound.is_none()
            && steps.len() > 1
        {
            errors.push(format!(
                "{path}[{i}]: a step without both bounds must be the only one, found {} steps",
                steps.len()
            ));
        }
    }
    let open_low = steps
        .iter()
        .filter(|s| s.metric_interval_lower_bound.is_none())
        .count();
    let open_high = steps
        .iter()
        .filter(|s| s.metric_interval_upper_bound.is_none())
        .count();
    if open_low > 1 || open_high > 1 {
        errors.push(format!("{path}: at most one step without a lower bound and one without an upper bound was expected, found {open_low} and {open_high}"));
    }
    let mut sorted: Vec<&StepAdjustment> = steps.iter().collect();
    sorted.sort_by(|a, b| {
        let a = a.metric_interval_lower_bound.unwrap_or(f64::NEG_INFINITY);
        let b = b.metric_interval_lower_bound.unwrap_or(f64::NEG_INFINITY);
        a.total_cmp(&b)
    });
    for pair in sorted.windows(2) {
        let hi = pair[0].metric_interval_upper_bound;
        let lo = pair[1].metric_interval_lower_bound;
        if hi != lo {
            errors.push(format!(
                "{path}: step intervals must neither overlap nor leave a gap; one ends at {} and the next starts at {}",
                hi.map_or("+infinity".into(), |v| v.to_string()),
                lo.map_or("-infinity".into(), |v| v.to_string())
            ));
        }
    }
    errors
}

/// The capacity after applying `adjustment` to `current` (before min/max clamping). A percentage
/// change rounds toward zero past ±1 and to ±1 inside it, then is at least `min_magnitude` tasks.
pub fn adjusted_capacity(
    current: u32,
    kind: AdjustmentType,
    adjustment: i64,
    min_magnitude: Option<u32>,
) -> i64 {
    let current = i64::from(current);
    match kind {
        AdjustmentType::ChangeInCapacity => current + adjustment,
        AdjustmentType::ExactCapacity => adjustment,
        AdjustmentType::PercentChangeInCapacity => {
            let raw = current as f64 * adjustment as f64 / 100.0;
            let mut change = if raw == 0.0 {
                0
            } else if raw.abs() < 1.0 {
                raw.signum() as i64
            } else {
                raw.trunc() as i64
            };
            if let Some(m) = min_magnitude {
                let m = i64::from(m);
                if change != 0 && change.abs() < m {
                    change = change.signum() * m;
                }
            }
            current + change
        }
    }
}

#[cfg(test)]
mod tests;
