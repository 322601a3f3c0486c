//! The scaling part of the plan: per service, the scalable target's range, its target tracking
//! policies and scheduled actions, compared with what Application Auto Scaling describes now.
//! A stack service's scaling belongs to the stack: policies and scheduled actions the file does
//! not list are deleted, and a service without `scaling` has its scalable target deregistered.

use super::{Change, ChangeKind, Resource};
use crate::scaling::{
    label_names, normalized_policy, normalized_scheduled, resource_label, ScalingMetric,
    ScalingSpec, ScheduledSpec, TargetTrackingSpec,
};
use serde_json::Value;
use std::collections::BTreeMap;

/// A service's scaling as Application Auto Scaling describes it now.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct CurrentScaling {
    pub min_capacity: u32,
    pub max_capacity: u32,
    /// Policies by name: a TargetTrackingScaling policy's
    /// TargetTrackingScalingPolicyConfiguration, `Null` for other policy types.
    pub policies: BTreeMap<String, Value>,
    /// Scheduled actions by name: `{Schedule, Timezone, ScalableTargetAction}` as described.
    pub scheduled: BTreeMap<String, Value>,
}

/// The Application Auto Scaling calls that carry out a scaling change.
#[derive(Debug, Clone, PartialEq)]
pub enum ScalingOp {
    /// RegisterScalableTarget with (min, max) when `register` is set, then PutScalingPolicy
    /// (target tracking) for `put_policies`, DeleteScalingPolicy for `delete_policies`,
    /// PutScheduledAction for `put_scheduled`, DeleteScheduledAction for `delete_scheduled`.
    Apply {
        service: String,
        register: Option<(u32, u32)>,
        put_policies: Vec<TargetTrackingSpec>,
        delete_policies: Vec<String>,
        put_scheduled: Vec<ScheduledSpec>,
        delete_scheduled: Vec<String>,
    },
    /// DeregisterScalableTarget (its policies and scheduled actions go with it).
    Deregister { service: String },
}

/// ARNs the plan knows: `(load balancer, target group)` names to a ResourceLabel, when both
/// exist now and keep their ARNs.
pub(crate) type LabelOf<'a> = dyn Fn(&str, &str) -> Option<String> + 'a;

/// The ResourceLabel a `requests` policy will carry (a placeholder when its load balancer or
/// target group does not exist yet).
fn wanted_label(metric: &ScalingMetric, label_of: &LabelOf<'_>) -> Option<String> {
    match metric {
        ScalingMetric::Requests {
            load_balancer,
            target_group,
        } => Some(label_of(load_balancer, target_group).unwrap_or_else(|| {
            format!("app/{load_balancer}/(new)/targetgroup/{target_group}/(new)")
        })),
        _ => None,
    }
}

/// `ResourceLabel`s of ALBRequestCountPerTarget written as `requests on <tg> via <lb>` for people.
fn readable(v: &Value) -> Value {
    let mut v = v.clone();
    if let Some(label) = v
        .pointer("/PredefinedMetricSpecification/ResourceLabel")
        .and_then(Value::as_str)
        .map(str::to_string)
    {
        if let Some((lb, tg)) = label_names(&label) {
            v["PredefinedMetricSpecification"]["ResourceLabel"] =
                Value::String(format!("{lb}/{tg}"));
        }
    }
    v
}

/// The scaling change of one service, if any: `desired` from the file (`None`: no scaling),
/// `current` as described (`None`: no scalable target).
pub(crate) fn plan_scaling(
    service: &str,
    desired: Option<&ScalingSpec>,
    current: Option<&CurrentScaling>,
    label_of: &LabelOf<'_>,
) -> Option<Change> {
    let change = |kind, details, op| Change {
        kind,
        resource: Resource::Scaling,
        name: service.to_string(),
        service: service.to_string(),
        details,
        elb: None,
        scaling: Some(op),
    };
    let Some(want) = desired else {
        return current.map(|_| {
            change(
                ChangeKind::Delete,
                Vec::new(),
                ScalingOp::Deregister {
                    service: service.to_string(),
                },
            )
        });
    };
    let Some(have) = current else {
        let mut details = vec![format!("{}-{} tasks", want.min_capacity, want.max_capacity)];
        for p in &want.target_tracking {
            details.push(format!(
                "{}: {} at {}",
                p.name,
                p.metric.describe(),
                p.target
            ));
        }
        for s in &want.scheduled {
            details.push(format!("{}: {}", s.name, s.schedule));
        }
        return Some(change(
            ChangeKind::Create,
            details,
            ScalingOp::Apply {
                service: service.to_string(),
                register: Some((want.min_capacity, want.max_capacity)),
                put_policies: want.target_tracking.clone(),
                delete_policies: Vec::new(),
                put_scheduled: want.scheduled.clone(),
                delete_scheduled: Vec::new(),
            },
        ));
    };
    let mut details = Vec::new();
    let register = (have.min_capacity != want.min_capacity
        || have.max_capacity != want.max_capacity)
        .then_some((want.min_capacity, want.max_capacity));
    if register.is_some() {
        details.push(format!(
            "capacity: {}-{} -> {}-{}",
            have.min_capacity, have.max_capacity, want.min_capacity, want.max_capacity
        ));
    }
    let mut put_policies = Vec::new();
    for p in &want.target_tracking {
        let wanted =
            normalized_policy(&p.configuration(wanted_label(&p.metric, label_of).as_deref()));
        match have.policies.get(&p.name) {
            None => details.push(format!("+ policy {}", p.name)),
            Some(now) => {
                let now = normalized_policy(now);
                if now == wanted {
                    continue;
                }
                let mut lines = Vec::new();
                super::diff_values("", &readable(&now), &readable(&wanted), &mut lines);
                if lines.is_empty() || now.is_null() {
                    details.push(format!("~ policy {}", p.name));
                } else {
                    details.extend(lines.into_iter().map(|l| format!("policy {}.{l}", p.name)));
                }
            }
        }
        put_policies.push(p.clone());
    }
    let delete_policies: Vec<String> = have
        .policies
        .keys()
        .filter(|n| !want.target_tracking.iter().any(|p| &p.name == *n))
        .cloned()
        .collect();
    details.extend(delete_policies.iter().map(|n| format!("- policy {n}")));
    let mut put_scheduled = Vec::new();
    for s in &want.scheduled {
        match have.scheduled.get(&s.name) {
            None => details.push(format!("+ scheduled {}", s.name)),
            Some(now) => {
                let now = normalized_scheduled(now);
                let wanted = s.normalized();
                if now == wanted {
                    continue;
                }
                let mut lines = Vec::new();
                super::diff_values("", &now, &wanted, &mut lines);
                details.extend(
                    lines
                        .into_iter()
                        .map(|l| format!("scheduled {}.{l}", s.name)),
                );
            }
        }
        put_scheduled.push(s.clone());
    }
    let delete_scheduled: Vec<String> = have
        .scheduled
        .keys()
        .filter(|n| !want.scheduled.iter().any(|s| &s.name == *n))
        .cloned()
        .collect();
    details.extend(delete_scheduled.iter().map(|n| format!("- scheduled {n}")));
    if details.is_empty() {
        return None;
    }
    Some(change(
        ChangeKind::Update,
        details,
        ScalingOp::Apply {
            service: service.to_string(),
            register,
            put_policies,
            delete_policies,
            put_scheduled,
            delete_scheduled,
        },
    ))
}

/// A `LabelOf` over known ARNs: load balancers by name, stable target groups by name.
pub(crate) fn label_from_arns<'a>(
    load_balancers: &'a BTreeMap<String, String>,
    target_groups: &'a BTreeMap<String, String>,
) -> impl Fn(&str, &str) -> Option<String> + 'a {
    move |lb, tg| resource_label(load_balancers.get(lb)?, target_groups.get(tg)?)
}
