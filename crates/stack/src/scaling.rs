//! A service's `scaling` section (Application Auto Scaling of its desired count) and its
//! translation to Application Auto Scaling's requests and descriptions (service namespace `ecs`,
//! dimension `ecs:service:DesiredCount`). Pure: no IO.

use serde_json::{json, Map, Value};

/// Application Auto Scaling's namespace for ECS services.
pub const SERVICE_NAMESPACE: &str = "ecs";
/// The one scalable dimension of an ECS service.
pub const SCALABLE_DIMENSION: &str = "ecs:service:DesiredCount";
/// Cooldown Application Auto Scaling uses for ECS when a policy names none, seconds.
pub const DEFAULT_COOLDOWN_SECONDS: u32 = 300;

/// Scaling of one service: the range, target tracking policies and scheduled actions.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ScalingSpec {
    pub min_capacity: u32,
    pub max_capacity: u32,
    /// Target tracking policies, names unique.
    pub target_tracking: Vec<TargetTrackingSpec>,
    /// Scheduled actions, names unique.
    pub scheduled: Vec<ScheduledSpec>,
}

/// A target tracking policy: keep `metric` near `target`.
#[derive(Debug, Clone, PartialEq)]
pub struct TargetTrackingSpec {
    /// PolicyName.
    pub name: String,
    pub metric: ScalingMetric,
    pub target: f64,
    /// Seconds; Application Auto Scaling's default (300) when absent.
    pub scale_out_cooldown: Option<u32>,
    pub scale_in_cooldown: Option<u32>,
    pub disable_scale_in: bool,
}

/// The metric a target tracking policy follows.
#[derive(Debug, Clone, PartialEq)]
pub enum ScalingMetric {
    /// ECSServiceAverageCPUUtilization.
    Cpu,
    /// ECSServiceAverageMemoryUtilization.
    Memory,
    /// ALBRequestCountPerTarget of a stack target group behind a stack load balancer.
    Requests {
        load_balancer: String,
        target_group: String,
    },
    /// A CloudWatch metric (CustomizedMetricSpecification).
    Custom(CustomMetricSpec),
}

/// A CloudWatch metric by namespace, name and dimensions.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct CustomMetricSpec {
    pub namespace: String,
    pub name: String,
    /// (name, value) pairs in file order.
    pub dimensions: Vec<(String, String)>,
    /// `Average`, `Minimum`, `Maximum`, `SampleCount` or `Sum`.
    pub statistic: String,
    pub unit: Option<String>,
}

/// A scheduled action: at the times of `schedule`, set the range to min/max.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ScheduledSpec {
    /// ScheduledActionName.
    pub name: String,
    /// `at(...)`, `rate(...)` or `cron(...)`.
    pub schedule: String,
    /// IANA time zone; UTC when absent.
    pub timezone: Option<String>,
    pub min_capacity: Option<u32>,
    pub max_capacity: Option<u32>,
}

/// `service/<cluster>/<service>`, the ResourceId of an ECS service.
pub fn resource_id(cluster: &str, service: &str) -> String {
    format!("service/{cluster}/{service}")
}

/// ALBRequestCountPerTarget's ResourceLabel, `app/<lb>/<id>/targetgroup/<tg>/<id>`, from the
/// load balancer's and target group's ARNs; `None` when they are not ELBv2 ARNs.
pub fn resource_label(load_balancer_arn: &str, target_group_arn: &str) -> Option<String> {
    let lb = load_balancer_arn.split_once(":loadbalancer/")?.1;
    let tg = target_group_arn.split_once(":targetgroup/")?.1;
    if !lb.starts_with("app/") || lb.split('/').count() != 3 || tg.split('/').count() != 2 {
        return None;
    }
    Some(format!("{lb}/targetgroup/{tg}"))
}

/// The (load balancer, target group) names inside a ResourceLabel.
pub fn label_names(label: &str) -> Option<(String, String)> {
    let parts: Vec<&str> = label.split('/').collect();
    match parts.as_slice() {
        ["app", lb, _, "targetgroup", tg, _] => Some((lb.to_string(), tg.to_string())),
        _ => None,
    }
}

impl ScalingMetric {
    /// `cpu`, `memory`, `requests on <tg>`, or `<namespace>/<name>`, for people.
    pub fn describe(&self) -> String {
        match self {
            ScalingMetric::Cpu => "cpu".into(),
            ScalingMetric::Memory => "memory".into(),
            ScalingMetric::Requests { target_group, .. } => format!("requests on {target_group}"),
            ScalingMetric::Custom(m) => format!("{}/{}", m.namespace, m.name),
        }
    }
}

impl TargetTrackingSpec {
    /// TargetTrackingScalingPolicyConfiguration as PutScalingPolicy takes it; `label` is the
    /// ResourceLabel of a `requests` metric (see [`resource_label`]).
    pub fn configuration(&self, label: Option<&str>) -> Value {
        let mut c = Map::new();
        c.insert("TargetValue".into(), json!(self.target));
        match &self.metric {
            ScalingMetric::Cpu => {
                c.insert(
                    "PredefinedMetricSpecification".into(),
                    json!({"PredefinedMetricType": "ECSServiceAverageCPUUtilization"}),
                );
            }
            ScalingMetric::Memory => {
                c.insert(
                    "PredefinedMetricSpecification".into(),
                    json!({"PredefinedMetricType": "ECSServiceAverageMemoryUtilization"}),
                );
            }
            ScalingMetric::Requests { .. } => {
                c.insert(
                    "PredefinedMetricSpecification".into(),
                    json!({"PredefinedMetricType": "ALBRequestCountPerTarget", "ResourceLabel": label}),
                );
            }
            ScalingMetric::Custom(m) => {
                let dims: Vec<Value> = m
                    .dimensions
                    .iter()
                    .map(|(n, v)| json!({"Name": n, "Value": v}))
                    .collect();
                let mut spec = json!({
                    "MetricName": m.name,
                    "Namespace": m.namespace,
                    "Dimensions": dims,
                    "Statistic": m.statistic,
                });
                if let Some(u) = &m.unit {
                    spec["Unit"] = json!(u);
                }
                c.insert("CustomizedMetricSpecification".into(), spec);
            }
        }
        if let Some(s) = self.scale_out_cooldown {
            c.insert("ScaleOutCooldown".into(), json!(s));
        }
        if let Some(s) = self.scale_in_cooldown {
            c.insert("ScaleInCooldown".into(), json!(s));
        }
        c.insert("DisableScaleIn".into(), json!(self.disable_scale_in));
        Value::Object(c)
    }
}

impl ScheduledSpec {
    /// ScalableTargetAction as PutScheduledAction takes it.
    pub fn target_action(&self) -> Value {
        let mut a = Map::new();
        if let Some(n) = self.min_capacity {
            a.insert("MinCapacity".into(), json!(n));
        }
        if let Some(n) = self.max_capacity {
            a.insert("MaxCapacity".into(), json!(n));
        }
        Value::Object(a)
    }

    /// What the plan compares: schedule, time zone (UTC when absent) and the range.
    pub fn normalized(&self) -> Value {
        normalized_scheduled(&json!({
            "Schedule": self.schedule,
            "Timezone": self.timezone,
            "ScalableTargetAction": self.target_action(),
        }))
    }
}

/// A TargetTrackingScalingPolicyConfiguration (ours or DescribeScalingPolicies') with nulls
/// dropped and Application Auto Scaling's defaults filled in (cooldowns 300, DisableScaleIn
/// false, no dimensions = empty list), numbers as floats, so equal policies compare equal.
pub fn normalized_policy(config: &Value) -> Value {
    let mut v = drop_nulls(config);
    if let Value::Object(c) = &mut v {
        for key in ["ScaleOutCooldown", "ScaleInCooldown"] {
            c.entry(key)
                .or_insert_with(|| json!(DEFAULT_COOLDOWN_SECONDS));
        }
        c.entry("DisableScaleIn").or_insert(json!(false));
        if let Some(Value::Object(m)) = c.get_mut("CustomizedMetricSpecification") {
            m.entry("Dimensions").or_insert(json!([]));
        }
    }
    floats(&mut v);
    v
}

/// A scheduled action's Schedule, Timezone (UTC when absent) and ScalableTargetAction, nulls
/// dropped.
pub fn normalized_scheduled(action: &Value) -> Value {
    let v = drop_nulls(action);
    let timezone = v
        .get("Timezone")
        .and_then(Value::as_str)
        .unwrap_or("UTC")
        .to_string();
    let mut out = json!({
        "Schedule": v.get("Schedule").cloned().unwrap_or(Value::Null),
        "Timezone": timezone,
        "ScalableTargetAction": v.get("ScalableTargetAction").cloned().unwrap_or(json!({})),
    });
    floats(&mut out);
    out
}

fn drop_nulls(v: &Value) -> Value {
    match v {
        Value::Object(m) => Value::Object(
            m.iter()
                .filter(|(_, x)| !x.is_null())
                .map(|(k, x)| (k.clone(), drop_nulls(x)))
                .collect(),
        ),
        Value::Array(items) => Value::Array(items.iter().map(drop_nulls).collect()),
        other => other.clone(),
    }
}

/// Every number as a float, so `50` and `50.0` compare equal.
fn floats(v: &mut Value) {
    match v {
        Value::Number(n) => {
            if let Some(f) = n.as_f64() {
                *v = json!(f);
            }
        }
        Value::Object(m) => m.values_mut().for_each(floats),
        Value::Array(items) => items.iter_mut().for_each(floats),
        _ => {}
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn resource_labels_come_from_arns() {
        let lb = "arn:aws:elasticloadbalancing:us-east-1:000000000000:loadbalancer/app/web/50dc6c495c0c9188";
        let tg =
            "arn:aws:elasticloadbalancing:us-east-1:000000000000:targetgroup/blue/943f017f100becff";
        let label = resource_label(lb, tg).unwrap();
        assert_eq!(
            label,
            "app/web/50dc6c495c0c9188/targetgroup/blue/943f017f100becff"
        );
        assert_eq!(label_names(&label), Some(("web".into(), "blue".into())));
        assert_eq!(resource_label("web", tg), None);
        assert_eq!(resource_label(lb, "blue"), None);
        assert_eq!(label_names("app/web/x"), None);
        assert_eq!(resource_id("default", "web"), "service/default/web");
    }

    #[test]
    fn configurations_match_their_descriptions() {
        let p = TargetTrackingSpec {
            name: "cpu".into(),
            metric: ScalingMetric::Cpu,
            target: 50.0,
            scale_out_cooldown: Some(5),
            scale_in_cooldown: None,
            disable_scale_in: false,
        };
        let ours = p.configuration(None);
        assert_eq!(
            ours["PredefinedMetricSpecification"]["PredefinedMetricType"],
            "ECSServiceAverageCPUUtilization"
        );
        assert!(ours.get("ScaleInCooldown").is_none());
        // As DescribeScalingPolicies may return it: integers, defaults filled, nulls present.
        let described = json!({"TargetValue": 50, "ScaleOutCooldown": 5, "ScaleInCooldown": 300,
            "PredefinedMetricSpecification": {"PredefinedMetricType": "ECSServiceAverageCPUUtilization", "ResourceLabel": null},
            "CustomizedMetricSpecification": null});
        assert_eq!(normalized_policy(&ours), normalized_policy(&described));
        let other = json!({"TargetValue": 60, "ScaleOutCooldown": 5,
            "PredefinedMetricSpecification": {"PredefinedMetricType": "ECSServiceAverageCPUUtilization"}});
        assert_ne!(normalized_policy(&ours), normalized_policy(&other));

        let custom = TargetTrackingSpec {
            metric: ScalingMetric::Custom(CustomMetricSpec {
                namespace: "App".into(),
                name: "QueueDepth".into(),
                dimensions: vec![("Queue".into(), "jobs".into())],
                statistic: "Average".into(),
                unit: None,
            }),
            ..p
        };
        let c = custom.configuration(None);
        assert_eq!(
            c["CustomizedMetricSpecification"]["Dimensions"][0],
            json!({"Name": "Queue", "Value": "jobs"})
        );
    }

    #[test]
    fn scheduled_actions_default_to_utc() {
        let s = ScheduledSpec {
            name: "night".into(),
            schedule: "cron(0 22 * * ? *)".into(),
            timezone: None,
            min_capacity: Some(0),
            max_capacity: Some(0),
        };
        let described = json!({"Schedule": "cron(0 22 * * ? *)", "Timezone": null,
            "ScalableTargetAction": {"MinCapacity": 0, "MaxCapacity": 0}, "StartTime": null});
        assert_eq!(s.normalized(), normalized_scheduled(&described));
        let berlin = ScheduledSpec {
            timezone: Some("Europe/Berlin".into()),
            ..s.clone()
        };
        assert_ne!(berlin.normalized(), s.normalized());
    }
}
