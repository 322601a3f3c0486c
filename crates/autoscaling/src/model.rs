//! Application Auto Scaling's resources as berth keeps them: scalable targets, scaling policies
//! (with their configurations in AWS's wire shape, PascalCase), scheduled actions and activities.

use crate::decide::Cooldowns;
use serde::{Deserialize, Serialize};

/// The only namespace and dimension berth scales.
pub const SERVICE_NAMESPACE: &str = "ecs";
/// ECS service desired count.
pub const SCALABLE_DIMENSION: &str = "ecs:service:DesiredCount";

/// Which scaling a target has suspended.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct SuspendedState {
    /// Policies may not remove capacity.
    #[serde(default)]
    pub dynamic_scaling_in_suspended: bool,
    /// Policies may not add capacity.
    #[serde(default)]
    pub dynamic_scaling_out_suspended: bool,
    /// Scheduled actions do not run.
    #[serde(default)]
    pub scheduled_scaling_suspended: bool,
}

/// A registered ECS service (RegisterScalableTarget).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ScalableTarget {
    /// `service/<cluster>/<service>`.
    pub resource_id: String,
    pub min_capacity: u32,
    pub max_capacity: u32,
    pub role_arn: String,
    pub creation_time: f64,
    pub suspended_state: SuspendedState,
    pub arn: String,
    /// Cooldowns in effect.
    #[serde(default)]
    pub cooldowns: Cooldowns,
}

impl ScalableTarget {
    /// (cluster, service) of the resource id (validated at registration).
    pub fn service(&self) -> (String, String) {
        parse_resource_id(&self.resource_id).unwrap_or_default()
    }
}

/// `service/<cluster>/<service>` → (cluster, service).
pub fn parse_resource_id(id: &str) -> Option<(String, String)> {
    let rest = id.strip_prefix("service/")?;
    let (cluster, service) = rest.split_once('/')?;
    let ok = |s: &str| !s.is_empty() && !s.contains('/');
    (ok(cluster) && ok(service)).then(|| (cluster.to_string(), service.to_string()))
}

/// One step of a step scaling policy; bounds are relative to the alarm threshold.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct StepAdjustment {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metric_interval_lower_bound: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metric_interval_upper_bound: Option<f64>,
    pub scaling_adjustment: i64,
}

/// StepScalingPolicyConfiguration.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct StepScalingConfig {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub adjustment_type: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub step_adjustments: Option<Vec<StepAdjustment>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_adjustment_magnitude: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cooldown: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metric_aggregation_type: Option<String>,
}

/// A metric dimension in a customized metric.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct MetricDimension {
    pub name: String,
    pub value: String,
}

/// PredefinedMetricSpecification.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct PredefinedMetric {
    pub predefined_metric_type: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resource_label: Option<String>,
}

/// CustomizedMetricSpecification (a single metric; metric math is not supported).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct CustomizedMetric {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metric_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dimensions: Option<Vec<MetricDimension>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub statistic: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unit: Option<String>,
    /// Metric math (refused).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metrics: Option<serde_json::Value>,
}

/// TargetTrackingScalingPolicyConfiguration, with berth's `EvaluationPeriodSeconds`.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct TargetTrackingConfig {
    pub target_value: f64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub predefined_metric_specification: Option<PredefinedMetric>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub customized_metric_specification: Option<CustomizedMetric>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scale_out_cooldown: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scale_in_cooldown: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub disable_scale_in: Option<bool>,
    /// berth: seconds per alarm datapoint (1, 5, 10, 30 or a multiple of 60; default 1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub evaluation_period_seconds: Option<i64>,
}

/// A scaling policy.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ScalingPolicy {
    pub arn: String,
    pub name: String,
    pub resource_id: String,
    /// `TargetTrackingScaling` or `StepScaling`.
    pub policy_type: String,
    pub step: Option<StepScalingConfig>,
    pub tracking: Option<TargetTrackingConfig>,
    /// Target tracking: the alarm that scales out (AlarmHigh).
    pub alarm_high: Option<String>,
    /// Target tracking: the alarm that scales in (AlarmLow; none with DisableScaleIn).
    pub alarm_low: Option<String>,
    pub creation_time: f64,
    /// Step scaling: when the policy last changed the capacity.
    #[serde(default)]
    pub last_run: Option<f64>,
}

/// A scheduled action.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ScheduledAction {
    pub arn: String,
    pub name: String,
    pub resource_id: String,
    pub schedule: String,
    pub timezone: Option<String>,
    pub start_time: Option<f64>,
    pub end_time: Option<f64>,
    pub min_capacity: Option<u32>,
    pub max_capacity: Option<u32>,
    pub creation_time: f64,
    /// When it fires next (None: never again).
    pub next_fire: Option<f64>,
}

/// One scaling activity (DescribeScalingActivities).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Activity {
    pub id: String,
    pub resource_id: String,
    pub description: String,
    pub cause: String,
    pub start_time: f64,
    pub end_time: f64,
    /// `Successful` or `Failed`.
    pub status_code: String,
    pub status_message: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resource_ids_parse_only_in_the_ecs_service_shape() {
        assert_eq!(
            parse_resource_id("service/default/web"),
            Some(("default".into(), "web".into()))
        );
        for bad in [
            "service/default",
            "service//web",
            "cluster/default/web",
            "service/a/b/c",
            "",
        ] {
            assert_eq!(parse_resource_id(bad), None, "{bad}");
        }
    }
}
