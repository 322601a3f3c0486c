//! A service's `scaling` section: the desired count's range, target tracking policies and
//! scheduled actions, checked as Application Auto Scaling would check them.

use super::{boolean, check_keys, describe, get, integer, StackRefs, MAX_DESIRED_COUNT};
use crate::scaling::{
    CustomMetricSpec, ScalingMetric, ScalingSpec, ScheduledSpec, TargetTrackingSpec,
};
use crate::spec::ServiceLoadBalancer;
use berth_model::FieldErrors;
use serde_json::{Map, Value};
use std::collections::BTreeSet;

const SCALING_KEYS: &[&str] = &["minCapacity", "maxCapacity", "targetTracking", "scheduled"];
const TRACKING_KEYS: &[&str] = &[
    "name",
    "metric",
    "target",
    "scaleOutCooldown",
    "scaleInCooldown",
    "disableScaleIn",
];
const CUSTOM_METRIC_KEYS: &[&str] = &["namespace", "name", "dimensions", "statistic", "unit"];
const SCHEDULED_KEYS: &[&str] = &["name", "schedule", "timezone", "minCapacity", "maxCapacity"];
const STATISTICS: &[&str] = &["Average", "Minimum", "Maximum", "SampleCount", "Sum"];
/// Application Auto Scaling's limits: policies and scheduled actions per target, name length.
const MAX_POLICIES: usize = 50;
const MAX_SCHEDULED: usize = 200;
const MAX_NAME: usize = 256;
/// Longest cooldown accepted, seconds (one day).
const MAX_COOLDOWN: u64 = 86_400;

fn list<'a>(value: &'a Value, what: &str, path: &str, errs: &mut FieldErrors) -> &'a [Value] {
    match value.as_array() {
        Some(items) => items,
        None => {
            errs.push(
                path,
                format!("expected a list of {what}, found {}", describe(value)),
            );
            &[]
        }
    }
}

fn object<'a>(
    value: &'a Value,
    keys: &[&str],
    path: &str,
    errs: &mut FieldErrors,
) -> Option<&'a Map<String, Value>> {
    let Some(obj) = value.as_object() else {
        errs.push(
            path,
            format!(
                "expected a mapping with {}, found {}",
                keys.join(", "),
                describe(value)
            ),
        );
        return None;
    };
    check_keys(obj, keys, path, errs);
    Some(obj)
}

fn capacity(
    obj: &Map<String, Value>,
    key: &str,
    required: bool,
    path: &str,
    errs: &mut FieldErrors,
) -> Option<u32> {
    match get(obj, key) {
        None if required => {
            errs.push(
                format!("{path}.{key}"),
                format!("expected a task count from 0 to {MAX_DESIRED_COUNT}, found nothing"),
            );
            None
        }
        None => None,
        Some(v) => integer(v, 0, MAX_DESIRED_COUNT, &format!("{path}.{key}"), errs)
            .and_then(|n| u32::try_from(n).ok()),
    }
}

/// A policy or scheduled action name, unique within its list.
fn name(
    obj: &Map<String, Value>,
    path: &str,
    seen: &mut BTreeSet<String>,
    errs: &mut FieldErrors,
) -> String {
    let at = format!("{path}.name");
    match get(obj, "name") {
        Some(Value::String(s))
            if !s.trim().is_empty() && s.len() <= MAX_NAME && !s.chars().any(char::is_control) =>
        {
            if !seen.insert(s.clone()) {
                errs.push(
                    at,
                    format!(
                        "expected a name not used by another entry of the list, found {s:?} again"
                    ),
                );
            }
            s.clone()
        }
        other => {
            errs.push(
                at,
                format!(
                    "expected a name of 1-{MAX_NAME} printable characters, found {}",
                    other.map(describe).unwrap_or_else(|| "nothing".into())
                ),
            );
            String::new()
        }
    }
}

/// Checks the `scaling` section of the service at `service_path`.
pub(super) fn scaling(
    value: &Value,
    service_path: &str,
    load_balancers: &[ServiceLoadBalancer],
    refs: &StackRefs<'_>,
    errs: &mut FieldErrors,
) -> Option<ScalingSpec> {
    let path = format!("{service_path}.scaling");
    let obj = object(value, SCALING_KEYS, &path, errs)?;
    let min_capacity = capacity(obj, "minCapacity", true, &path, errs);
    let max_capacity = capacity(obj, "maxCapacity", true, &path, errs);
    if let (Some(min), Some(max)) = (min_capacity, max_capacity) {
        if min > max {
            errs.push(
                format!("{path}.minCapacity"),
                format!("expected at most maxCapacity ({max}), found {min}"),
            );
        }
    }
    let mut target_tracking = Vec::new();
    if let Some(v) = get(obj, "targetTracking") {
        let t_path = format!("{path}.targetTracking");
        let items = list(v, "target tracking policies", &t_path, errs);
        if items.len() > MAX_POLICIES {
            errs.push(
                &t_path,
                format!(
                    "expected at most {MAX_POLICIES} policies, found {}",
                    items.len()
                ),
            );
        }
        let mut seen = BTreeSet::new();
        for (i, item) in items.iter().enumerate() {
            if let Some(p) = tracking(
                item,
                &format!("{t_path}[{i}]"),
                &mut seen,
                load_balancers,
                refs,
                errs,
            ) {
                target_tracking.push(p);
            }
        }
    }
    let mut scheduled = Vec::new();
    if let Some(v) = get(obj, "scheduled") {
        let s_path = format!("{path}.scheduled");
        let items = list(v, "scheduled actions", &s_path, errs);
        if items.len() > MAX_SCHEDULED {
            errs.push(
                &s_path,
                format!(
                    "expected at most {MAX_SCHEDULED} scheduled actions, found {}",
                    items.len()
                ),
            );
        }
        let mut seen = BTreeSet::new();
        for (i, item) in items.iter().enumerate() {
            if let Some(s) = scheduled_action(item, &format!("{s_path}[{i}]"), &mut seen, errs) {
                scheduled.push(s);
            }
        }
    }
    Some(ScalingSpec {
        min_capacity: min_capacity.unwrap_or(0),
        max_capacity: max_capacity.unwrap_or(0),
        target_tracking,
        scheduled,
    })
}

fn tracking(
    value: &Value,
    path: &str,
    seen: &mut BTreeSet<String>,
    load_balancers: &[ServiceLoadBalancer],
    refs: &StackRefs<'_>,
    errs: &mut FieldErrors,
) -> Option<TargetTrackingSpec> {
    let obj = object(value, TRACKING_KEYS, path, errs)?;
    let name = name(obj, path, seen, errs);
    let m_path = format!("{path}.metric");
    let metric = match get(obj, "metric") {
        None => {
            errs.push(&m_path, "expected cpu, memory, requests or {namespace, name, dimensions, statistic}, found nothing");
            None
        }
        Some(Value::String(s)) if s == "cpu" => Some(ScalingMetric::Cpu),
        Some(Value::String(s)) if s == "memory" => Some(ScalingMetric::Memory),
        Some(Value::String(s)) if s == "requests" => {
            requests_metric(&m_path, load_balancers, refs, errs)
        }
        Some(v @ Value::Object(_)) => custom_metric(v, &m_path, errs).map(ScalingMetric::Custom),
        Some(v) => {
            errs.push(
                &m_path,
                format!("expected cpu, memory, requests or {{namespace, name, dimensions, statistic}}, found {}", describe(v)),
            );
            None
        }
    };
    let utilization = matches!(metric, Some(ScalingMetric::Cpu | ScalingMetric::Memory));
    let target = match get(obj, "target") {
        None => {
            errs.push(
                format!("{path}.target"),
                "expected the metric's target value, found nothing",
            );
            None
        }
        Some(v) => match v.as_f64() {
            Some(t) if t.is_finite() && t > 0.0 && (!utilization || t <= 100.0) => Some(t),
            _ => {
                let wanted = if utilization {
                    "a utilization percentage above 0 and at most 100"
                } else {
                    "a number above 0"
                };
                errs.push(
                    format!("{path}.target"),
                    format!("expected {wanted}, found {}", describe(v)),
                );
                None
            }
        },
    };
    let cooldown = |key: &str, errs: &mut FieldErrors| {
        get(obj, key)
            .and_then(|v| integer(v, 0, MAX_COOLDOWN, &format!("{path}.{key}"), errs))
            .and_then(|n| u32::try_from(n).ok())
    };
    let scale_out_cooldown = cooldown("scaleOutCooldown", errs);
    let scale_in_cooldown = cooldown("scaleInCooldown", errs);
    let disable_scale_in = get(obj, "disableScaleIn")
        .and_then(|v| boolean(v, &format!("{path}.disableScaleIn"), errs))
        .unwrap_or(false);
    Some(TargetTrackingSpec {
        name,
        metric: metric?,
        target: target?,
        scale_out_cooldown,
        scale_in_cooldown,
        disable_scale_in,
    })
}

/// ALBRequestCountPerTarget needs the service's stack target group and the stack load balancer
/// that forwards to it.
fn requests_metric(
    path: &str,
    load_balancers: &[ServiceLoadBalancer],
    refs: &StackRefs<'_>,
    errs: &mut FieldErrors,
) -> Option<ScalingMetric> {
    let Some(target_group) = load_balancers.iter().find_map(|lb| lb.target_group.clone()) else {
        errs.push(
            path,
            "expected requests only for a service with a loadBalancers entry naming a targetGroup of the stack, found none",
        );
        return None;
    };
    let forwards = |lb: &crate::elb::LoadBalancerSpec| {
        lb.listeners.iter().any(|l| {
            l.default_action
                .target_group_names()
                .contains(&target_group.as_str())
                || l.rules.iter().any(|r| {
                    r.action
                        .target_group_names()
                        .contains(&target_group.as_str())
                })
        })
    };
    let Some((load_balancer, _)) = refs.load_balancers.iter().find(|(_, lb)| forwards(lb)) else {
        errs.push(
            path,
            format!("expected requests only when a load balancer of the stack forwards to target group {target_group}, found none that does"),
        );
        return None;
    };
    Some(ScalingMetric::Requests {
        load_balancer: load_balancer.clone(),
        target_group,
    })
}

fn custom_metric(value: &Value, path: &str, errs: &mut FieldErrors) -> Option<CustomMetricSpec> {
    let obj = object(value, CUSTOM_METRIC_KEYS, path, errs)?;
    let text = |key: &str, required: bool, errs: &mut FieldErrors| match get(obj, key) {
        Some(Value::String(s)) if !s.trim().is_empty() && s.len() <= 255 => Some(s.clone()),
        None if !required => None,
        other => {
            errs.push(
                format!("{path}.{key}"),
                format!(
                    "expected a string of 1-255 characters, found {}",
                    other.map(describe).unwrap_or_else(|| "nothing".into())
                ),
            );
            None
        }
    };
    let namespace = text("namespace", true, errs);
    let name = text("name", true, errs);
    let unit = text("unit", false, errs);
    let statistic = match get(obj, "statistic") {
        None => Some("Average".to_string()),
        Some(Value::String(s)) if STATISTICS.contains(&s.as_str()) => Some(s.clone()),
        Some(v) => {
            errs.push(
                format!("{path}.statistic"),
                format!(
                    "expected one of {}, found {}",
                    STATISTICS.join(", "),
                    describe(v)
                ),
            );
            None
        }
    };
    let mut dimensions = Vec::new();
    match get(obj, "dimensions") {
        None => {}
        Some(Value::Object(m)) => {
            for (k, v) in m {
                match v
                    .as_str()
                    .map(str::to_string)
                    .or_else(|| v.as_f64().map(|n| n.to_string()))
                {
                    Some(s) if !s.is_empty() => dimensions.push((k.clone(), s)),
                    _ => errs.push(
                        format!("{path}.dimensions.{k}"),
                        format!("expected a dimension value, found {}", describe(v)),
                    ),
                }
            }
        }
        Some(v) => errs.push(
            format!("{path}.dimensions"),
            format!(
                "expected a mapping of dimension name to value, found {}",
                describe(v)
            ),
        ),
    }
    Some(CustomMetricSpec {
        namespace: namespace?,
        name: name?,
        dimensions,
        statistic: statistic?,
        unit,
    })
}

/// `at(...)`, `rate(...)` or `cron(...)`, as Application Auto Scaling writes schedules.
fn valid_schedule(s: &str) -> bool {
    ["at(", "rate(", "cron("]
        .iter()
        .any(|p| s.starts_with(p) && s.ends_with(')') && s.len() > p.len() + 1)
}

fn scheduled_action(
    value: &Value,
    path: &str,
    seen: &mut BTreeSet<String>,
    errs: &mut FieldErrors,
) -> Option<ScheduledSpec> {
    let obj = object(value, SCHEDULED_KEYS, path, errs)?;
    let name = name(obj, path, seen, errs);
    let schedule = match get(obj, "schedule") {
        Some(Value::String(s)) if valid_schedule(s.trim()) => Some(s.trim().to_string()),
        other => {
            errs.push(
                format!("{path}.schedule"),
                format!(
                    "expected at(yyyy-mm-ddThh:mm:ss), rate(<n> <unit>) or cron(<6 fields>), found {}",
                    other.map(describe).unwrap_or_else(|| "nothing".into())
                ),
            );
            None
        }
    };
    let timezone = match get(obj, "timezone") {
        None => None,
        Some(Value::String(s)) if !s.trim().is_empty() && !s.contains(char::is_whitespace) => {
            Some(s.clone())
        }
        Some(v) => {
            errs.push(
                format!("{path}.timezone"),
                format!(
                    "expected an IANA time zone such as Europe/Berlin, found {}",
                    describe(v)
                ),
            );
            None
        }
    };
    let min_capacity = capacity(obj, "minCapacity", false, path, errs);
    let max_capacity = capacity(obj, "maxCapacity", false, path, errs);
    if get(obj, "minCapacity").is_none() && get(obj, "maxCapacity").is_none() {
        errs.push(
            path,
            "expected minCapacity, maxCapacity or both, found neither",
        );
    }
    if let (Some(min), Some(max)) = (min_capacity, max_capacity) {
        if min > max {
            errs.push(
                format!("{path}.minCapacity"),
                format!("expected at most maxCapacity ({max}), found {min}"),
            );
        }
    }
    Some(ScheduledSpec {
        name,
        schedule: schedule?,
        timezone,
        min_capacity,
        max_capacity,
    })
}
