//! Pure metric-alarm evaluation with CloudWatch's rules: M of N breaching datapoints, and
//! TreatMissingData applied as CloudWatch documents it.
//!
//! The evaluation range is N + 2 periods (N = EvaluationPeriods). When it holds at least N real
//! datapoints, the newest N real ones are evaluated and TreatMissingData does not matter. When it
//! holds none: `missing` → INSUFFICIENT_DATA, `ignore` → state kept, `breaching` → ALARM,
//! `notBreaching` → OK. When it holds some but fewer than N: `breaching`/`notBreaching` fill the
//! gap up to N with breaching/non-breaching points; `missing`/`ignore` evaluate the real points
//! alone, going to ALARM when all of them (or at least M) breach.

use super::time::{iso_offset, reason_time};
use super::{MetricAlarm, StateValue, TreatMissingData};

/// One period's statistic for an alarm; `value` is None when the period had no data.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PeriodValue {
    /// The period's start, seconds since the epoch.
    pub timestamp: i64,
    /// The statistic, if the period had data.
    pub value: Option<f64>,
    /// How many samples the period held.
    pub sample_count: f64,
}

/// The outcome of one evaluation.
#[derive(Debug, Clone, PartialEq)]
pub struct Evaluation {
    /// The state the alarm should be in.
    pub state: StateValue,
    /// CloudWatch-style StateReason.
    pub reason: String,
    /// CloudWatch-style StateReasonData.
    pub reason_data: serde_json::Value,
}

/// How many periods an alarm looks back over: N + 2.
pub fn evaluation_range(evaluation_periods: u32) -> u32 {
    evaluation_periods + 2
}

/// A number as CloudWatch (Java) prints it: `80.0`, `91.2`, `1.0E-4`-free.
pub fn number(v: f64) -> String {
    if v.fract() == 0.0 && v.abs() < 1e15 {
        format!("{v:.1}")
    } else {
        format!("{v}")
    }
}

fn plural(n: usize, word: &str) -> String {
    if n == 1 {
        format!("{n} {word}")
    } else {
        format!("{n} {word}s")
    }
}

fn was_were(n: usize) -> &'static str {
    if n == 1 {
        "was"
    } else {
        "were"
    }
}

/// Evaluates `alarm` over `points` (oldest first, one per period of the evaluation range, missing
/// periods as `value: None`) at `now`. None means "keep the current state" (`ignore` with no data).
pub fn evaluate(alarm: &MetricAlarm, points: &[PeriodValue], now: f64) -> Option<Evaluation> {
    let n = alarm.evaluation_periods as usize;
    let m = alarm.datapoints_to_alarm as usize;
    let op = alarm.comparison_operator;
    let t = alarm.threshold;
    let real: Vec<&PeriodValue> = points.iter().filter(|p| p.value.is_some()).collect();
    let breaches = |p: &PeriodValue| p.value.is_some_and(|v| op.breaches(v, t));

    // Which real points are evaluated, and how many filled-in ones (breaching or not).
    let (evaluated, filled, fill_breaches): (Vec<&PeriodValue>, usize, bool) = if real.len() >= n {
        (real[real.len() - n..].to_vec(), 0, false)
    } else {
        match alarm.treat_missing_data {
            TreatMissingData::Breaching => (real.clone(), n - real.len(), true),
            TreatMissingData::NotBreaching => (real.clone(), n - real.len(), false),
            TreatMissingData::Missing | TreatMissingData::Ignore if real.is_empty() => {
                if alarm.treat_missing_data == TreatMissingData::Ignore {
                    return None;
                }
                let reason = format!(
                    "Insufficient Data: {} {} unknown.",
                    plural(n, "datapoint"),
                    was_were(n)
                );
                return Some(Evaluation {
                    state: StateValue::INSUFFICIENT_DATA,
                    reason,
                    reason_data: reason_data(alarm, &[], now),
                });
            }
            TreatMissingData::Missing | TreatMissingData::Ignore => (real.clone(), 0, false),
        }
    };
    let n_breaching =
        evaluated.iter().filter(|p| breaches(p)).count() + if fill_breaches { filled } else { 0 };
    let total = evaluated.len() + filled;
    // With fewer real points than M (missing/ignore), all of them breaching is enough.
    let needed = m.min(total.max(1));
    let state = if n_breaching >= needed {
        StateValue::ALARM
    } else {
        StateValue::OK
    };
    // ALARM reasons list the breaching datapoints, OK reasons the others; newest first.
    let listed: Vec<String> = evaluated
        .iter()
        .rev()
        .filter(|p| breaches(p) == (state == StateValue::ALARM))
        .map(|p| {
            format!(
                "{} ({})",
                number(p.value.unwrap_or(f64::NAN)),
                reason_time(p.timestamp)
            )
        })
        .collect();
    let reason = if evaluated.is_empty() {
        let kind = if fill_breaches {
            "Breaching"
        } else {
            "NonBreaching"
        };
        format!(
            "Threshold Crossed: no datapoints were received for {} and {} {} treated as [{kind}].",
            plural(n, "period"),
            plural(filled, "missing datapoint"),
            was_were(filled)
        )
    } else if state == StateValue::ALARM {
        format!(
            "Threshold Crossed: {n_breaching} out of the last {} [{}] {} {} the threshold ({}) (minimum {} for OK -> ALARM transition).",
            plural(total, "datapoint"),
            listed.join(", "),
            was_were(n_breaching),
            op.phrase(),
            number(t),
            plural(m, "datapoint"),
        )
    } else {
        let not_breaching = evaluated.len() - evaluated.iter().filter(|p| breaches(p)).count();
        format!(
            "Threshold Crossed: {} [{}] {} not {} the threshold ({}).",
            plural(not_breaching, "datapoint"),
            listed.join(", "),
            was_were(not_breaching),
            op.phrase(),
            number(t),
        )
    };
    let reason = if filled > 0 && !evaluated.is_empty() {
        format!(
            "{} {} {} treated as [{}].",
            reason,
            plural(filled, "missing datapoint"),
            was_were(filled),
            if fill_breaches {
                "Breaching"
            } else {
                "NonBreaching"
            }
        )
    } else {
        reason
    };
    Some(Evaluation {
        state,
        reason,
        reason_data: reason_data(alarm, &evaluated, now),
    })
}

fn reason_data(alarm: &MetricAlarm, evaluated: &[&PeriodValue], now: f64) -> serde_json::Value {
    let start = evaluated
        .first()
        .map_or(now - alarm.period as f64, |p| p.timestamp as f64);
    let statistic_key = if alarm.parsed_statistic().is_percentile() {
        "extendedStatistic"
    } else {
        "statistic"
    };
    let mut data = serde_json::json!({
        "version": "1.0",
        "queryDate": iso_offset(now),
        "startDate": iso_offset(start),
        statistic_key: alarm.statistic,
        "period": alarm.period,
        "recentDatapoints": evaluated.iter().filter_map(|p| p.value).collect::<Vec<f64>>(),
        "threshold": alarm.threshold,
        "evaluatedDatapoints": evaluated.iter().rev().map(|p| serde_json::json!({
            "timestamp": iso_offset(p.timestamp as f64),
            "sampleCount": p.sample_count,
            "value": p.value,
        })).collect::<Vec<_>>(),
    });
    if let Some(unit) = &alarm.unit {
        data["unit"] = serde_json::Value::String(unit.clone());
    }
    data
}
