//! CloudWatch alarms: definitions and states (this file), pure evaluation ([`evaluate`]),
//! composite rules ([`rule`]), the manager that evaluates every second and persists
//! ([`manager`]) and the actions run on state changes ([`actions`]).

pub mod actions;
pub mod evaluate;
pub mod manager;
pub mod rule;
pub mod time;

pub use manager::{AlarmError, AlarmManager, AlarmStateChange, PersistError};

use crate::types::{MetricId, Statistic};
use serde::{Deserialize, Serialize};

/// An alarm's state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[allow(non_camel_case_types, clippy::upper_case_acronyms)]
pub enum StateValue {
    /// The metric is within the threshold (or the composite rule is false).
    OK,
    /// The metric breaches the threshold (or the composite rule is true).
    ALARM,
    /// Not enough data to decide.
    INSUFFICIENT_DATA,
}

impl StateValue {
    /// The wire name.
    pub fn as_str(&self) -> &'static str {
        match self {
            StateValue::OK => "OK",
            StateValue::ALARM => "ALARM",
            StateValue::INSUFFICIENT_DATA => "INSUFFICIENT_DATA",
        }
    }

    /// Parses a wire name.
    pub fn parse(s: &str) -> Option<StateValue> {
        match s {
            "OK" => Some(StateValue::OK),
            "ALARM" => Some(StateValue::ALARM),
            "INSUFFICIENT_DATA" => Some(StateValue::INSUFFICIENT_DATA),
            _ => None,
        }
    }
}

/// How the statistic is compared with the threshold.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ComparisonOperator {
    /// value >= threshold breaches.
    GreaterThanOrEqualToThreshold,
    /// value > threshold breaches.
    GreaterThanThreshold,
    /// value < threshold breaches.
    LessThanThreshold,
    /// value <= threshold breaches.
    LessThanOrEqualToThreshold,
}

impl ComparisonOperator {
    /// Parses a wire name; the anomaly-detection operators are not supported.
    pub fn parse(s: &str) -> Option<ComparisonOperator> {
        use ComparisonOperator::*;
        Some(match s {
            "GreaterThanOrEqualToThreshold" => GreaterThanOrEqualToThreshold,
            "GreaterThanThreshold" => GreaterThanThreshold,
            "LessThanThreshold" => LessThanThreshold,
            "LessThanOrEqualToThreshold" => LessThanOrEqualToThreshold,
            _ => return None,
        })
    }

    /// The wire name.
    pub fn as_str(&self) -> &'static str {
        use ComparisonOperator::*;
        match self {
            GreaterThanOrEqualToThreshold => "GreaterThanOrEqualToThreshold",
            GreaterThanThreshold => "GreaterThanThreshold",
            LessThanThreshold => "LessThanThreshold",
            LessThanOrEqualToThreshold => "LessThanOrEqualToThreshold",
        }
    }

    /// True when `value` breaches `threshold`.
    pub fn breaches(&self, value: f64, threshold: f64) -> bool {
        use ComparisonOperator::*;
        match self {
            GreaterThanOrEqualToThreshold => value >= threshold,
            GreaterThanThreshold => value > threshold,
            LessThanThreshold => value < threshold,
            LessThanOrEqualToThreshold => value <= threshold,
        }
    }

    /// The words CloudWatch uses in state reasons ("greater than or equal to").
    pub fn phrase(&self) -> &'static str {
        use ComparisonOperator::*;
        match self {
            GreaterThanOrEqualToThreshold => "greater than or equal to",
            GreaterThanThreshold => "greater than",
            LessThanThreshold => "less than",
            LessThanOrEqualToThreshold => "less than or equal to",
        }
    }
}

/// How periods without data count.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum TreatMissingData {
    /// Not counted; all missing → INSUFFICIENT_DATA (the default).
    Missing,
    /// Counted as within the threshold.
    NotBreaching,
    /// Counted as breaching.
    Breaching,
    /// Not counted; all missing → the state stays as it is.
    Ignore,
}

impl TreatMissingData {
    /// Parses a wire name.
    pub fn parse(s: &str) -> Option<TreatMissingData> {
        Some(match s {
            "missing" => TreatMissingData::Missing,
            "notBreaching" => TreatMissingData::NotBreaching,
            "breaching" => TreatMissingData::Breaching,
            "ignore" => TreatMissingData::Ignore,
            _ => return None,
        })
    }

    /// The wire name.
    pub fn as_str(&self) -> &'static str {
        match self {
            TreatMissingData::Missing => "missing",
            TreatMissingData::NotBreaching => "notBreaching",
            TreatMissingData::Breaching => "breaching",
            TreatMissingData::Ignore => "ignore",
        }
    }
}

/// The actions of an alarm.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct AlarmActions {
    /// False disables every action (CloudWatch's ActionsEnabled).
    pub actions_enabled: bool,
    /// Run on a change to OK.
    pub ok_actions: Vec<String>,
    /// Run on a change to ALARM.
    pub alarm_actions: Vec<String>,
    /// Run on a change to INSUFFICIENT_DATA.
    pub insufficient_data_actions: Vec<String>,
}

impl AlarmActions {
    /// The actions for a change to `state`, none when actions are disabled.
    pub fn for_state(&self, state: StateValue) -> &[String] {
        if !self.actions_enabled {
            return &[];
        }
        match state {
            StateValue::OK => &self.ok_actions,
            StateValue::ALARM => &self.alarm_actions,
            StateValue::INSUFFICIENT_DATA => &self.insufficient_data_actions,
        }
    }
}

/// A metric alarm's definition (PutMetricAlarm's input, validated).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MetricAlarm {
    /// Unique name.
    pub alarm_name: String,
    /// Free text.
    pub alarm_description: Option<String>,
    /// Actions.
    pub actions: AlarmActions,
    /// The metric watched.
    pub metric: MetricId,
    /// `Average`, `Sum`, ... or a percentile `p99` (CloudWatch's Statistic/ExtendedStatistic).
    pub statistic: String,
    /// Only data with this unit.
    pub unit: Option<String>,
    /// Seconds per datapoint: 1, 5, 10, 30 or a multiple of 60.
    pub period: i64,
    /// N: how many recent periods are evaluated.
    pub evaluation_periods: u32,
    /// M: how many of them must breach for ALARM.
    pub datapoints_to_alarm: u32,
    /// The threshold.
    pub threshold: f64,
    /// The comparison.
    pub comparison_operator: ComparisonOperator,
    /// How missing periods count.
    pub treat_missing_data: TreatMissingData,
    /// Kept and echoed (`evaluate` or `ignore`); berth always evaluates.
    pub evaluate_low_sample_count_percentile: Option<String>,
}

impl MetricAlarm {
    /// The parsed statistic (validated at creation, so parsing does not fail afterwards).
    pub fn parsed_statistic(&self) -> Statistic {
        Statistic::parse(&self.statistic).unwrap_or(Statistic::Average)
    }

    /// Checks every field, collecting every problem as `Field: expected, found`.
    pub fn validate(&self) -> Result<(), Vec<String>> {
        let mut errors = Vec::new();
        if self.alarm_name.is_empty() || self.alarm_name.len() > 255 {
            errors.push(format!(
                "AlarmName: 1 to 255 characters were expected, found {}",
                self.alarm_name.len()
            ));
        }
        if Statistic::parse(&self.statistic).is_none() {
            errors.push(format!(
                "Statistic: SampleCount, Average, Sum, Minimum, Maximum or pNN.NN was expected, found '{}'",
                self.statistic
            ));
        }
        if !(self.period > 0 && (matches!(self.period, 1 | 5 | 10 | 30) || self.period % 60 == 0)) {
            errors.push(format!(
                "Period: 1, 5, 10, 30 or a multiple of 60 was expected, found {}",
                self.period
            ));
        }
        if self.evaluation_periods == 0 {
            errors.push("EvaluationPeriods: at least 1 was expected, found 0".to_string());
        }
        if self.datapoints_to_alarm == 0 || self.datapoints_to_alarm > self.evaluation_periods {
            errors.push(format!(
                "DatapointsToAlarm: 1 to EvaluationPeriods ({}) was expected, found {}",
                self.evaluation_periods, self.datapoints_to_alarm
            ));
        }
        if i64::from(self.evaluation_periods) * self.period > 86_400 {
            errors.push(format!(
                "EvaluationPeriods: Period × EvaluationPeriods of at most one day was expected, found {} s",
                i64::from(self.evaluation_periods) * self.period
            ));
        }
        if !self.threshold.is_finite() {
            errors.push(format!(
                "Threshold: a finite number was expected, found {}",
                self.threshold
            ));
        }
        if self.metric.namespace.is_empty() {
            errors.push("Namespace: a value was expected, found none".to_string());
        }
        if self.metric.name.is_empty() {
            errors.push("MetricName: a value was expected, found none".to_string());
        }
        validate_actions(&self.actions, &mut errors);
        if errors.is_empty() {
            Ok(())
        } else {
            Err(errors)
        }
    }
}

/// A composite alarm's definition (PutCompositeAlarm's input).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CompositeAlarm {
    /// Unique name.
    pub alarm_name: String,
    /// Free text.
    pub alarm_description: Option<String>,
    /// Actions.
    pub actions: AlarmActions,
    /// The rule, e.g. `ALARM("a") AND NOT OK("b")`.
    pub alarm_rule: String,
}

fn validate_actions(actions: &AlarmActions, errors: &mut Vec<String>) {
    for (field, list) in [
        ("OKActions", &actions.ok_actions),
        ("AlarmActions", &actions.alarm_actions),
        (
            "InsufficientDataActions",
            &actions.insufficient_data_actions,
        ),
    ] {
        for (i, a) in list.iter().enumerate() {
            if actions::Action::parse(a).is_none() {
                errors.push(format!(
                    "{field}.member.{}: an http(s):// URL, berth:command:<command> or a scaling policy ARN was expected, found '{a}'",
                    i + 1
                ));
            }
        }
    }
}

/// An alarm's definition, metric or composite.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum AlarmDefinition {
    /// Watches one metric.
    Metric(MetricAlarm),
    /// Combines other alarms' states.
    Composite(CompositeAlarm),
}

impl AlarmDefinition {
    /// The alarm's name.
    pub fn name(&self) -> &str {
        match self {
            AlarmDefinition::Metric(m) => &m.alarm_name,
            AlarmDefinition::Composite(c) => &c.alarm_name,
        }
    }

    /// The alarm's actions.
    pub fn actions(&self) -> &AlarmActions {
        match self {
            AlarmDefinition::Metric(m) => &m.actions,
            AlarmDefinition::Composite(c) => &c.actions,
        }
    }
}

/// An alarm's current state.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AlarmState {
    /// OK, ALARM or INSUFFICIENT_DATA.
    pub value: StateValue,
    /// Human-readable reason.
    pub reason: String,
    /// Machine-readable reason (JSON text), when there is one.
    pub reason_data: Option<String>,
    /// When the state (or its reason) was last set, seconds since the epoch.
    pub updated: f64,
    /// When the value last changed, seconds since the epoch.
    pub transitioned: f64,
}

/// One DescribeAlarmHistory item.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HistoryItem {
    /// The alarm's name.
    pub alarm_name: String,
    /// `MetricAlarm` or `CompositeAlarm`.
    pub alarm_type: String,
    /// When, seconds since the epoch.
    pub timestamp: f64,
    /// `StateUpdate`, `ConfigurationUpdate` or `Action`.
    pub history_item_type: String,
    /// Human-readable summary.
    pub history_summary: String,
    /// JSON text with details.
    pub history_data: String,
}

/// An alarm: definition, ARN, state and when its configuration last changed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Alarm {
    /// The definition.
    pub definition: AlarmDefinition,
    /// `arn:aws:cloudwatch:<region>:<account>:alarm:<name>`.
    pub arn: String,
    /// The current state.
    pub state: AlarmState,
    /// When the definition last changed, seconds since the epoch.
    pub configuration_updated: f64,
    /// A state set by SetAlarmState is kept until this time (the end of the current period).
    #[serde(default)]
    pub manual_until: Option<f64>,
}

impl Alarm {
    /// `MetricAlarm` or `CompositeAlarm`.
    pub fn alarm_type(&self) -> &'static str {
        match self.definition {
            AlarmDefinition::Metric(_) => "MetricAlarm",
            AlarmDefinition::Composite(_) => "CompositeAlarm",
        }
    }
}

#[cfg(test)]
mod tests;
