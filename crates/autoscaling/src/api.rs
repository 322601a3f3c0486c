//! The Application Auto Scaling operations (`AnyScaleFrontendService`): input parsing and
//! validation (every problem listed, each naming its field), changes to the book, AWS's output.

use crate::decide::{validate_steps, AdjustmentType};
use crate::error::AutoScalingError;
use crate::evaluate::{tracked_metric, tracking_alarms};
use crate::model::*;
use crate::schedule::{parse_timezone, Schedule};
use crate::{key, AutoScaling, Book};
use serde::de::DeserializeOwned;
use serde::Deserialize;
use serde_json::{json, Value};

/// Scaling policies per scalable target (AWS's quota).
pub const MAX_POLICIES_PER_TARGET: usize = 50;
/// Scheduled actions per scalable target (AWS's quota).
pub const MAX_SCHEDULED_ACTIONS_PER_TARGET: usize = 200;
/// Default cooldowns, seconds (AWS's for ECS).
pub const DEFAULT_COOLDOWN: i64 = 300;

/// Runs `operation` at `now`.
pub fn call(
    a: &AutoScaling,
    operation: &str,
    mut input: Value,
    now: f64,
) -> Result<Value, AutoScalingError> {
    strip_nulls(&mut input);
    if input.is_null() {
        input = json!({});
    }
    if !input.is_object() {
        return Err(AutoScalingError::invalid(format!(
            "request body: a JSON object was expected, found {input}"
        )));
    }
    match operation {
        "RegisterScalableTarget" => {
            let (target_key, input) = parse_with(input)?;
            register_scalable_target(a, target_key, input, now)
        }
        "DeregisterScalableTarget" => deregister_scalable_target(a, parse(input)?),
        "DescribeScalableTargets" => {
            let (filter, input) = parse_with(input)?;
            describe_scalable_targets(a, filter, input)
        }
        "PutScalingPolicy" => {
            let (target, input) = parse_with(input)?;
            put_scaling_policy(a, target, input, now)
        }
        "DescribeScalingPolicies" => {
            let (filter, input) = parse_with(input)?;
            describe_scaling_policies(a, filter, input)
        }
        "DeleteScalingPolicy" => {
            let (target, input) = parse_with(input)?;
            delete_scaling_policy(a, target, input)
        }
        "PutScheduledAction" => {
            let (target, input) = parse_with(input)?;
            put_scheduled_action(a, target, input, now)
        }
        "DescribeScheduledActions" => {
            let (filter, input) = parse_with(input)?;
            describe_scheduled_actions(a, filter, input)
        }
        "DeleteScheduledAction" => {
            let (target, input) = parse_with(input)?;
            delete_scheduled_action(a, target, input)
        }
        "DescribeScalingActivities" => {
            let (filter, _): (_, DescribeActivitiesIn) = parse_with(input)?;
            describe_scaling_activities(a, filter)
        }
        other => Err(AutoScalingError::UnknownOperation(other.to_string())),
    }
}

fn strip_nulls(v: &mut Value) {
    match v {
        Value::Object(m) => {
            m.retain(|_, x| !x.is_null());
            m.values_mut().for_each(strip_nulls);
        }
        Value::Array(items) => items.iter_mut().for_each(strip_nulls),
        _ => {}
    }
}

fn parse<T: DeserializeOwned>(input: Value) -> Result<T, AutoScalingError> {
    serde_path_to_error::deserialize(input).map_err(|e| {
        let path = e.path().to_string();
        let path = if path == "." {
            "request".to_string()
        } else {
            path
        };
        AutoScalingError::invalid(format!("{path}: {}", e.inner()))
    })
}

/// An input read as the fields its operation shares with others (`C`: [`TargetKey`] or
/// [`DescribeFilter`]) and the operation's own (`T`). Each is read on its own, not flattened, so
/// an error names its field.
fn parse_with<C: DeserializeOwned, T: DeserializeOwned>(
    input: Value,
) -> Result<(C, T), AutoScalingError> {
    Ok((parse(input.clone())?, parse(input)?))
}

/// The scalable target an operation acts on.
#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct TargetKey {
    service_namespace: String,
    resource_id: String,
    scalable_dimension: String,
}

impl TargetKey {
    /// Checks the three fields into `errors`; (cluster, service) when the resource id is good.
    fn check(&self, errors: &mut Vec<String>) -> Option<(String, String)> {
        check_resource(
            &self.service_namespace,
            &self.resource_id,
            Some(&self.scalable_dimension),
            errors,
        )
    }
}

/// What the Describe operations select and page by.
#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct DescribeFilter {
    service_namespace: String,
    resource_id: Option<String>,
    scalable_dimension: Option<String>,
    max_results: Option<i64>,
    next_token: Option<String>,
}

impl DescribeFilter {
    /// Whether the namespace is ECS's (nothing else is ever registered).
    fn is_ecs(&self) -> bool {
        self.service_namespace == SERVICE_NAMESPACE
    }

    /// Whether something of scalable target `resource_id` is selected.
    fn wants(&self, resource_id: &str) -> bool {
        self.resource_id.as_deref().is_none_or(|r| r == resource_id)
            && self
                .scalable_dimension
                .as_deref()
                .is_none_or(|d| d == SCALABLE_DIMENSION)
    }

    /// The page of `items` asked for, and the next page's token.
    fn page(self, items: Vec<Value>) -> Result<(Vec<Value>, Option<String>), AutoScalingError> {
        page(items, self.max_results, self.next_token)
    }
}

fn check(errors: Vec<String>) -> Result<(), AutoScalingError> {
    if errors.is_empty() {
        Ok(())
    } else {
        Err(AutoScalingError::Validation(errors))
    }
}

/// Checks namespace, resource id and dimension; returns (cluster, service) when the id is good.
fn check_resource(
    ns: &str,
    resource_id: &str,
    dimension: Option<&str>,
    errors: &mut Vec<String>,
) -> Option<(String, String)> {
    if ns != SERVICE_NAMESPACE {
        errors.push(format!(
            "ServiceNamespace: ecs was expected (berth scales ECS services), found '{ns}'"
        ));
    }
    if let Some(d) = dimension {
        if d != SCALABLE_DIMENSION {
            errors.push(format!(
                "ScalableDimension: {SCALABLE_DIMENSION} was expected, found '{d}'"
            ));
        }
    }
    let parsed = parse_resource_id(resource_id);
    if parsed.is_none() {
        errors.push(format!(
            "ResourceId: service/<cluster>/<service> was expected, found '{resource_id}'"
        ));
    }
    parsed
}

fn not_registered(resource_id: &str) -> AutoScalingError {
    AutoScalingError::ObjectNotFound(format!(
        "No scalable target registered for service namespace: ecs, resource ID: {resource_id}, scalable dimension: {SCALABLE_DIMENSION}"
    ))
}

fn capacity(v: Option<i64>, field: &str, errors: &mut Vec<String>) -> Option<u32> {
    let v = v?;
    match u32::try_from(v) {
        Ok(n) => Some(n),
        Err(_) => {
            errors.push(format!(
                "{field}: a number from 0 to {} was expected, found {v}",
                u32::MAX
            ));
            None
        }
    }
}

/// An epoch-seconds number or an RFC 3339 string.
fn timestamp(v: &Option<Value>, field: &str, errors: &mut Vec<String>) -> Option<f64> {
    match v {
        None => None,
        Some(Value::Number(n)) => n.as_f64(),
        Some(Value::String(s)) => match chrono::DateTime::parse_from_rfc3339(s) {
            Ok(t) => Some(t.timestamp_millis() as f64 / 1000.0),
            Err(_) => {
                errors.push(format!(
                    "{field}: epoch seconds or an ISO 8601 time was expected, found '{s}'"
                ));
                None
            }
        },
        Some(other) => {
            errors.push(format!(
                "{field}: epoch seconds or an ISO 8601 time was expected, found {other}"
            ));
            None
        }
    }
}

/// (items, NextToken) for MaxResults (1-50, default 50) and an offset NextToken.
fn page(
    items: Vec<Value>,
    max_results: Option<i64>,
    next_token: Option<String>,
) -> Result<(Vec<Value>, Option<String>), AutoScalingError> {
    let mut errors = Vec::new();
    let max = max_results.unwrap_or(50);
    if !(1..=50).contains(&max) {
        errors.push(format!("MaxResults: 1 to 50 was expected, found {max}"));
    }
    let start = match next_token.as_deref().map(str::parse::<usize>) {
        None => 0,
        Some(Ok(n)) => n,
        Some(Err(_)) => {
            errors.push(format!(
                "NextToken: a token from a previous response was expected, found '{}'",
                next_token.unwrap_or_default()
            ));
            0
        }
    };
    check(errors)?;
    let end = (start + max as usize).min(items.len());
    let token = (end < items.len()).then(|| end.to_string());
    Ok((
        items
            .into_iter()
            .skip(start)
            .take(end.saturating_sub(start))
            .collect(),
        token,
    ))
}

// ---- scalable targets ------------------------------------------------------------------------

#[derive(Deserialize, Default)]
#[serde(rename_all = "PascalCase")]
struct SuspendedStateIn {
    dynamic_scaling_in_suspended: Option<bool>,
    dynamic_scaling_out_suspended: Option<bool>,
    scheduled_scaling_suspended: Option<bool>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct RegisterIn {
    min_capacity: Option<i64>,
    max_capacity: Option<i64>,
    #[serde(rename = "RoleARN")]
    role_arn: Option<String>,
    suspended_state: Option<SuspendedStateIn>,
    #[allow(dead_code)]
    tags: Option<Value>,
}

fn register_scalable_target(
    a: &AutoScaling,
    target_key: TargetKey,
    input: RegisterIn,
    now: f64,
) -> Result<Value, AutoScalingError> {
    let mut errors = Vec::new();
    let service = target_key.check(&mut errors);
    let min = capacity(input.min_capacity, "MinCapacity", &mut errors);
    let max = capacity(input.max_capacity, "MaxCapacity", &mut errors);
    let mut book = a.lock();
    let existing = book.targets.get(&target_key.resource_id).cloned();
    if existing.is_none() {
        if input.min_capacity.is_none() {
            errors.push("MinCapacity: a value was expected when registering a new scalable target, found none".into());
        }
        if input.max_capacity.is_none() {
            errors.push("MaxCapacity: a value was expected when registering a new scalable target, found none".into());
        }
    }
    let new_min = min
        .or(existing.as_ref().map(|t| t.min_capacity))
        .unwrap_or(0);
    let new_max = max
        .or(existing.as_ref().map(|t| t.max_capacity))
        .unwrap_or(0);
    if new_min > new_max {
        errors.push(format!(
            "MinCapacity: at most MaxCapacity ({new_max}) was expected, found {new_min}"
        ));
    }
    if let Some((cluster, name)) = &service {
        if a.service_counts(cluster, name).is_none() {
            errors.push(format!("ResourceId: an ACTIVE ECS service was expected, found none named {} (ECS service doesn't exist: {})", name, target_key.resource_id));
        }
    }
    check(errors)?;
    let arns = a.arns().clone();
    let mut target = existing.clone().unwrap_or_else(|| ScalableTarget {
        resource_id: target_key.resource_id.clone(),
        min_capacity: new_min,
        max_capacity: new_max,
        role_arn: String::new(),
        creation_time: now,
        suspended_state: SuspendedState::default(),
        arn: format!(
            "arn:aws:application-autoscaling:{}:{}:scalable-target/{}",
            arns.region,
            arns.account,
            &uuid::Uuid::new_v4().simple().to_string()[..28]
        ),
        cooldowns: Default::default(),
    });
    target.min_capacity = new_min;
    target.max_capacity = new_max;
    target.role_arn = input.role_arn.unwrap_or_else(|| {
        format!(
            "arn:aws:iam::{}:role/aws-service-role/ecs.application-autoscaling.amazonaws.com/AWSServiceRoleForApplicationAutoScaling_ECSService",
            arns.account
        )
    });
    if let Some(s) = input.suspended_state {
        let ss = &mut target.suspended_state;
        ss.dynamic_scaling_in_suspended = s
            .dynamic_scaling_in_suspended
            .unwrap_or(ss.dynamic_scaling_in_suspended);
        ss.dynamic_scaling_out_suspended = s
            .dynamic_scaling_out_suspended
            .unwrap_or(ss.dynamic_scaling_out_suspended);
        ss.scheduled_scaling_suspended = s
            .scheduled_scaling_suspended
            .unwrap_or(ss.scheduled_scaling_suspended);
    }
    let arn = target.arn.clone();
    book.targets.insert(target_key.resource_id.clone(), target);
    // New limits take effect at once: the desired count moves inside them.
    a.clamp_desired(
        &mut book,
        &target_key.resource_id,
        now,
        "a RegisterScalableTarget call",
    );
    a.persist(&book)?;
    Ok(json!({ "ScalableTargetARN": arn }))
}

fn deregister_scalable_target(
    a: &AutoScaling,
    target: TargetKey,
) -> Result<Value, AutoScalingError> {
    let mut errors = Vec::new();
    target.check(&mut errors);
    check(errors)?;
    let mut book = a.lock();
    if book.targets.remove(&target.resource_id).is_none() {
        return Err(not_registered(&target.resource_id));
    }
    let prefix = key(&target.resource_id, "");
    let policies: Vec<ScalingPolicy> = book
        .policies
        .values()
        .filter(|p| p.resource_id == target.resource_id)
        .cloned()
        .collect();
    for p in &policies {
        delete_policy_alarms(a, p)?;
    }
    book.policies.retain(|k, _| !k.starts_with(&prefix));
    book.scheduled.retain(|k, _| !k.starts_with(&prefix));
    a.persist(&book)?;
    Ok(json!({}))
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct DescribeTargetsIn {
    resource_ids: Option<Vec<String>>,
}

fn describe_scalable_targets(
    a: &AutoScaling,
    filter: DescribeFilter,
    input: DescribeTargetsIn,
) -> Result<Value, AutoScalingError> {
    if !filter.is_ecs() {
        return Ok(json!({ "ScalableTargets": [] }));
    }
    let book = a.lock();
    let items: Vec<Value> = book
        .targets
        .values()
        .filter(|t| {
            input
                .resource_ids
                .as_ref()
                .is_none_or(|ids| ids.is_empty() || ids.contains(&t.resource_id))
        })
        .filter(|t| filter.wants(&t.resource_id))
        .map(|t| {
            json!({
                "ServiceNamespace": SERVICE_NAMESPACE,
                "ResourceId": t.resource_id,
                "ScalableDimension": SCALABLE_DIMENSION,
                "MinCapacity": t.min_capacity,
                "MaxCapacity": t.max_capacity,
                "RoleARN": t.role_arn,
                "CreationTime": t.creation_time,
                "SuspendedState": t.suspended_state,
                "ScalableTargetARN": t.arn,
            })
        })
        .collect();
    let (items, token) = filter.page(items)?;
    Ok(json!({ "ScalableTargets": items, "NextToken": token }))
}

// ---- scaling policies --------------------------------------------------------------------------

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct PutPolicyIn {
    policy_name: String,
    policy_type: Option<String>,
    step_scaling_policy_configuration: Option<StepScalingConfig>,
    target_tracking_scaling_policy_configuration: Option<TargetTrackingConfig>,
}

fn validate_step(c: &StepScalingConfig, errors: &mut Vec<String>) {
    let p = "StepScalingPolicyConfiguration";
    let kind = match c.adjustment_type.as_deref() {
        None => {
            errors.push(format!("{p}.AdjustmentType: ChangeInCapacity, ExactCapacity or PercentChangeInCapacity was expected, found none"));
            None
        }
        Some(t) => {
            let k = AdjustmentType::parse(t);
            if k.is_none() {
                errors.push(format!("{p}.AdjustmentType: ChangeInCapacity, ExactCapacity or PercentChangeInCapacity was expected, found '{t}'"));
            }
            k
        }
    };
    errors.extend(validate_steps(
        c.step_adjustments.as_deref().unwrap_or_default(),
        &format!("{p}.StepAdjustments"),
    ));
    if let Some(m) = c.min_adjustment_magnitude {
        if kind != Some(AdjustmentType::PercentChangeInCapacity) {
            errors.push(format!("{p}.MinAdjustmentMagnitude: only with AdjustmentType PercentChangeInCapacity was it expected, found {m}"));
        } else if m < 1 {
            errors.push(format!(
                "{p}.MinAdjustmentMagnitude: at least 1 was expected, found {m}"
            ));
        }
    }
    if kind == Some(AdjustmentType::ExactCapacity) {
        for (i, s) in c.step_adjustments.iter().flatten().enumerate() {
            if s.scaling_adjustment < 0 {
                errors.push(format!("{p}.StepAdjustments[{i}].ScalingAdjustment: a capacity of 0 or more was expected with ExactCapacity, found {}", s.scaling_adjustment));
            }
        }
    }
    if let Some(cd) = c.cooldown.filter(|c| *c < 0) {
        errors.push(format!(
            "{p}.Cooldown: 0 or more seconds was expected, found {cd}"
        ));
    }
    if let Some(m) = c
        .metric_aggregation_type
        .as_deref()
        .filter(|m| !matches!(*m, "Average" | "Minimum" | "Maximum"))
    {
        errors.push(format!(
            "{p}.MetricAggregationType: Average, Minimum or Maximum was expected, found '{m}'"
        ));
    }
}

fn validate_tracking(c: &TargetTrackingConfig, errors: &mut Vec<String>) {
    let p = "TargetTrackingScalingPolicyConfiguration";
    if !(c.target_value.is_finite() && c.target_value > 0.0) {
        errors.push(format!(
            "{p}.TargetValue: a number above 0 was expected, found {}",
            c.target_value
        ));
    }
    match (&c.predefined_metric_specification, &c.customized_metric_specification) {
        (Some(_), Some(_)) | (None, None) => errors.push(format!(
            "{p}: exactly one of PredefinedMetricSpecification and CustomizedMetricSpecification was expected, found {}",
            if c.predefined_metric_specification.is_some() { "both" } else { "neither" }
        )),
        (Some(m), None) => {
            let q = format!("{p}.PredefinedMetricSpecification");
            match m.predefined_metric_type.as_str() {
                "ECSServiceAverageCPUUtilization" | "ECSServiceAverageMemoryUtilization" => {
                    if let Some(l) = &m.resource_label {
                        errors.push(format!("{q}.ResourceLabel: none was expected for {}, found '{l}'", m.predefined_metric_type));
                    }
                }
                "ALBRequestCountPerTarget" => match m.resource_label.as_deref() {
                    None => errors.push(format!("{q}.ResourceLabel: app/<load-balancer>/<id>/targetgroup/<target-group>/<id> was expected for ALBRequestCountPerTarget, found none")),
                    Some(l) if alb_dimensions(l).is_none() => errors.push(format!("{q}.ResourceLabel: app/<load-balancer>/<id>/targetgroup/<target-group>/<id> was expected, found '{l}'")),
                    Some(_) => {}
                },
                other => errors.push(format!(
                    "{q}.PredefinedMetricType: ECSServiceAverageCPUUtilization, ECSServiceAverageMemoryUtilization or ALBRequestCountPerTarget was expected, found '{other}'"
                )),
            }
        }
        (None, Some(m)) => {
            let q = format!("{p}.CustomizedMetricSpecification");
            if m.metrics.is_some() {
                errors.push(format!("{q}.Metrics: a single metric (MetricName, Namespace) was expected; berth does not evaluate metric math"));
            } else {
                if m.metric_name.as_deref().is_none_or(str::is_empty) {
                    errors.push(format!("{q}.MetricName: a metric name was expected, found none"));
                }
                if m.namespace.as_deref().is_none_or(str::is_empty) {
                    errors.push(format!("{q}.Namespace: a namespace was expected, found none"));
                }
                match m.statistic.as_deref() {
                    Some("Average" | "Minimum" | "Maximum" | "SampleCount" | "Sum") => {}
                    other => errors.push(format!("{q}.Statistic: Average, Minimum, Maximum, SampleCount or Sum was expected, found {other:?}")),
                }
            }
        }
    }
    for (field, v) in [
        ("ScaleOutCooldown", c.scale_out_cooldown),
        ("ScaleInCooldown", c.scale_in_cooldown),
    ] {
        if let Some(v) = v.filter(|v| *v < 0) {
            errors.push(format!(
                "{p}.{field}: 0 or more seconds was expected, found {v}"
            ));
        }
    }
    if let Some(e) = c.evaluation_period_seconds {
        if !(e > 0 && (matches!(e, 1 | 5 | 10 | 30) || e % 60 == 0) && e * 15 <= 86_400) {
            errors.push(format!("{p}.EvaluationPeriodSeconds: 1, 5, 10, 30 or a multiple of 60 up to 5760 was expected, found {e}"));
        }
    }
}

/// `app/<lb>/<id>/targetgroup/<tg>/<id>` → (LoadBalancer, TargetGroup) dimension values.
pub fn alb_dimensions(label: &str) -> Option<(String, String)> {
    let (lb, tg) = label.split_once("/targetgroup/")?;
    let lb_parts: Vec<&str> = lb.split('/').collect();
    let tg_parts: Vec<&str> = tg.split('/').collect();
    let ok = lb_parts.len() == 3
        && lb_parts[0] == "app"
        && tg_parts.len() == 2
        && lb_parts.iter().chain(&tg_parts).all(|p| !p.is_empty());
    ok.then(|| (lb.to_string(), format!("targetgroup/{tg}")))
}

fn delete_policy_alarms(a: &AutoScaling, p: &ScalingPolicy) -> Result<(), AutoScalingError> {
    let names: Vec<String> = p.alarm_high.iter().chain(&p.alarm_low).cloned().collect();
    if names.is_empty() {
        return Ok(());
    }
    match a.cloudwatch().alarms.delete_alarms(&names) {
        Ok(()) | Err(berth_metrics::alarm::AlarmError::NotFound(_)) => Ok(()),
        Err(e) => Err(AutoScalingError::FailedResourceAccess(format!(
            "deleting the alarms of policy {}: {e}",
            p.name
        ))),
    }
}

fn alarms_json(a: &AutoScaling, p: &ScalingPolicy) -> Vec<Value> {
    p.alarm_high
        .iter()
        .chain(&p.alarm_low)
        .map(|n| json!({ "AlarmName": n, "AlarmARN": a.cloudwatch().alarms.arn(n) }))
        .collect()
}

fn put_scaling_policy(
    a: &AutoScaling,
    target: TargetKey,
    input: PutPolicyIn,
    now: f64,
) -> Result<Value, AutoScalingError> {
    let mut errors = Vec::new();
    let service = target.check(&mut errors);
    if input.policy_name.is_empty()
        || input.policy_name.len() > 256
        || input.policy_name.contains(':')
    {
        errors.push(format!(
            "PolicyName: 1 to 256 characters without ':' were expected, found '{}'",
            input.policy_name
        ));
    }
    let policy_type = input
        .policy_type
        .clone()
        .unwrap_or_else(|| "StepScaling".into());
    match policy_type.as_str() {
        "StepScaling" => match &input.step_scaling_policy_configuration {
            Some(c) => validate_step(c, &mut errors),
            None => errors.push("StepScalingPolicyConfiguration: a configuration was expected for PolicyType StepScaling, found none".into()),
        },
        "TargetTrackingScaling" => match &input.target_tracking_scaling_policy_configuration {
            Some(c) => validate_tracking(c, &mut errors),
            None => errors.push("TargetTrackingScalingPolicyConfiguration: a configuration was expected for PolicyType TargetTrackingScaling, found none".into()),
        },
        other => errors.push(format!("PolicyType: StepScaling or TargetTrackingScaling was expected, found '{other}'")),
    }
    check(errors)?;
    let (cluster, service) = service.unwrap_or_default();
    let mut book = a.lock();
    if !book.targets.contains_key(&target.resource_id) {
        return Err(not_registered(&target.resource_id));
    }
    let k = key(&target.resource_id, &input.policy_name);
    let existing = book.policies.get(&k).cloned();
    if existing.is_none()
        && book
            .policies
            .values()
            .filter(|p| p.resource_id == target.resource_id)
            .count()
            >= MAX_POLICIES_PER_TARGET
    {
        return Err(AutoScalingError::LimitExceeded(format!(
            "{} already has {MAX_POLICIES_PER_TARGET} scaling policies, the most a scalable target may have",
            target.resource_id
        )));
    }
    let arns = a.arns().clone();
    let arn = existing.as_ref().map(|p| p.arn.clone()).unwrap_or_else(|| {
        format!(
            "arn:aws:autoscaling:{}:{}:scalingPolicy:{}:resource/ecs/{}:policyName/{}",
            arns.region,
            arns.account,
            uuid::Uuid::new_v4(),
            target.resource_id,
            input.policy_name
        )
    });
    let mut policy = ScalingPolicy {
        arn,
        name: input.policy_name.clone(),
        resource_id: target.resource_id.clone(),
        policy_type: policy_type.clone(),
        step: None,
        tracking: None,
        alarm_high: None,
        alarm_low: None,
        creation_time: existing.as_ref().map_or(now, |p| p.creation_time),
        last_run: existing.as_ref().and_then(|p| p.last_run),
    };
    if policy_type == "TargetTrackingScaling" {
        let cfg = input
            .target_tracking_scaling_policy_configuration
            .unwrap_or_default();
        let suffix = || uuid::Uuid::new_v4().to_string();
        let high = existing
            .as_ref()
            .and_then(|p| p.alarm_high.clone())
            .unwrap_or_else(|| {
                format!(
                    "TargetTracking-{}-AlarmHigh-{}",
                    target.resource_id,
                    suffix()
                )
            });
        let low = existing
            .as_ref()
            .and_then(|p| p.alarm_low.clone())
            .unwrap_or_else(|| {
                format!(
                    "TargetTracking-{}-AlarmLow-{}",
                    target.resource_id,
                    suffix()
                )
            });
        let metric = tracked_metric(&cluster, &service, &cfg);
        let disable_in = cfg.disable_scale_in.unwrap_or(false);
        let (high_alarm, low_alarm) = tracking_alarms(&metric, &cfg, &policy.arn, &high, &low);
        let alarms = &a.cloudwatch().alarms;
        alarms.put_metric_alarm(high_alarm, now).map_err(|e| {
            AutoScalingError::FailedResourceAccess(format!("creating alarm {high}: {e}"))
        })?;
        policy.alarm_high = Some(high);
        if disable_in {
            if existing
                .as_ref()
                .and_then(|p| p.alarm_low.as_ref())
                .is_some()
            {
                let _ = alarms.delete_alarms(std::slice::from_ref(&low));
            }
        } else {
            alarms.put_metric_alarm(low_alarm, now).map_err(|e| {
                AutoScalingError::FailedResourceAccess(format!("creating alarm {low}: {e}"))
            })?;
            policy.alarm_low = Some(low);
        }
        policy.tracking = Some(cfg);
    } else {
        if let Some(old) = &existing {
            delete_policy_alarms(a, old)?;
        }
        policy.step = input.step_scaling_policy_configuration;
    }
    let out = json!({ "PolicyARN": policy.arn, "Alarms": alarms_json(a, &policy) });
    book.policies.insert(k, policy);
    a.persist(&book)?;
    Ok(out)
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct DescribePoliciesIn {
    policy_names: Option<Vec<String>>,
}

fn describe_scaling_policies(
    a: &AutoScaling,
    filter: DescribeFilter,
    input: DescribePoliciesIn,
) -> Result<Value, AutoScalingError> {
    if !filter.is_ecs() {
        return Ok(json!({ "ScalingPolicies": [] }));
    }
    let book = a.lock();
    let items: Vec<Value> = book
        .policies
        .values()
        .filter(|p| filter.wants(&p.resource_id))
        .filter(|p| {
            input
                .policy_names
                .as_ref()
                .is_none_or(|n| n.is_empty() || n.contains(&p.name))
        })
        .map(|p| {
            json!({
                "PolicyARN": p.arn,
                "PolicyName": p.name,
                "ServiceNamespace": SERVICE_NAMESPACE,
                "ResourceId": p.resource_id,
                "ScalableDimension": SCALABLE_DIMENSION,
                "PolicyType": p.policy_type,
                "StepScalingPolicyConfiguration": p.step,
                "TargetTrackingScalingPolicyConfiguration": p.tracking,
                "Alarms": alarms_json(a, p),
                "CreationTime": p.creation_time,
            })
        })
        .collect();
    let (items, token) = filter.page(items)?;
    Ok(json!({ "ScalingPolicies": items, "NextToken": token }))
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct DeletePolicyIn {
    policy_name: String,
}

fn delete_scaling_policy(
    a: &AutoScaling,
    target: TargetKey,
    input: DeletePolicyIn,
) -> Result<Value, AutoScalingError> {
    let mut errors = Vec::new();
    target.check(&mut errors);
    check(errors)?;
    let mut book = a.lock();
    let k = key(&target.resource_id, &input.policy_name);
    let Some(p) = book.policies.get(&k).cloned() else {
        return Err(AutoScalingError::ObjectNotFound(format!(
            "No scaling policy found for service namespace: ecs, resource ID: {}, scalable dimension: {SCALABLE_DIMENSION}, policy name: {}",
            target.resource_id, input.policy_name
        )));
    };
    delete_policy_alarms(a, &p)?;
    book.policies.remove(&k);
    a.persist(&book)?;
    Ok(json!({}))
}

// ---- scheduled actions ---------------------------------------------------------------------------

#[derive(Deserialize, Default)]
#[serde(rename_all = "PascalCase")]
struct TargetActionIn {
    min_capacity: Option<i64>,
    max_capacity: Option<i64>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct PutScheduledIn {
    schedule: Option<String>,
    timezone: Option<String>,
    scheduled_action_name: String,
    start_time: Option<Value>,
    end_time: Option<Value>,
    scalable_target_action: Option<TargetActionIn>,
}

/// The next time `action` fires strictly after `after` (within its StartTime/EndTime), or None.
pub fn next_fire(action: &ScheduledAction, after: f64) -> Option<f64> {
    let schedule = Schedule::parse(&action.schedule).ok()?;
    let tz = parse_timezone(action.timezone.as_deref()).ok()?;
    let to_dt = |t: f64| chrono::DateTime::from_timestamp_millis((t * 1000.0) as i64);
    let after = match action.start_time {
        Some(s) if s - 0.001 > after => s - 0.001,
        _ => after,
    };
    let anchor = action.start_time.unwrap_or(action.creation_time);
    let t = schedule.next_after(to_dt(after)?, to_dt(anchor)?, tz)?;
    let t = t.timestamp_millis() as f64 / 1000.0;
    action.end_time.is_none_or(|e| t <= e).then_some(t)
}

fn put_scheduled_action(
    a: &AutoScaling,
    target: TargetKey,
    input: PutScheduledIn,
    now: f64,
) -> Result<Value, AutoScalingError> {
    let mut errors = Vec::new();
    target.check(&mut errors);
    let name = &input.scheduled_action_name;
    if name.is_empty() || name.len() > 256 || name.contains(':') || name.contains('/') {
        errors.push(format!("ScheduledActionName: 1 to 256 characters without ':' or '/' were expected, found '{name}'"));
    }
    if let Some(s) = &input.schedule {
        if let Err(e) = Schedule::parse(s) {
            errors.push(e);
        }
    }
    if let Err(e) = parse_timezone(input.timezone.as_deref()) {
        errors.push(e);
    }
    let start = timestamp(&input.start_time, "StartTime", &mut errors);
    let end = timestamp(&input.end_time, "EndTime", &mut errors);
    if let (Some(s), Some(e)) = (start, end) {
        if s >= e {
            errors.push(format!(
                "EndTime: a time after StartTime was expected, found {e} <= {s}"
            ));
        }
    }
    let action_in = input.scalable_target_action.unwrap_or_default();
    let min = capacity(
        action_in.min_capacity,
        "ScalableTargetAction.MinCapacity",
        &mut errors,
    );
    let max = capacity(
        action_in.max_capacity,
        "ScalableTargetAction.MaxCapacity",
        &mut errors,
    );
    if let (Some(lo), Some(hi)) = (min, max) {
        if lo > hi {
            errors.push(format!("ScalableTargetAction.MinCapacity: at most MaxCapacity ({hi}) was expected, found {lo}"));
        }
    }
    let mut book = a.lock();
    let k = key(&target.resource_id, name);
    let existing = book.scheduled.get(&k).cloned();
    if existing.is_none() {
        if input.schedule.is_none() {
            errors.push("Schedule: at(...), rate(...) or cron(...) was expected for a new scheduled action, found none".into());
        }
        if min.is_none() && max.is_none() {
            errors.push(
                "ScalableTargetAction: MinCapacity or MaxCapacity was expected, found neither"
                    .into(),
            );
        }
    }
    check(errors)?;
    if !book.targets.contains_key(&target.resource_id) {
        return Err(not_registered(&target.resource_id));
    }
    if existing.is_none()
        && book
            .scheduled
            .values()
            .filter(|s| s.resource_id == target.resource_id)
            .count()
            >= MAX_SCHEDULED_ACTIONS_PER_TARGET
    {
        return Err(AutoScalingError::LimitExceeded(format!(
            "{} already has {MAX_SCHEDULED_ACTIONS_PER_TARGET} scheduled actions, the most a scalable target may have",
            target.resource_id
        )));
    }
    let arns = a.arns().clone();
    let mut action = existing.clone().unwrap_or_else(|| ScheduledAction {
        arn: format!(
            "arn:aws:autoscaling:{}:{}:scheduledAction:{}:resource/ecs/{}:scheduledActionName/{}",
            arns.region,
            arns.account,
            uuid::Uuid::new_v4(),
            target.resource_id,
            name
        ),
        name: name.clone(),
        resource_id: target.resource_id.clone(),
        schedule: String::new(),
        timezone: None,
        start_time: None,
        end_time: None,
        min_capacity: None,
        max_capacity: None,
        creation_time: now,
        next_fire: None,
    });
    if let Some(s) = input.schedule {
        action.schedule = s;
    }
    if input.timezone.is_some() {
        action.timezone = input.timezone;
    }
    if start.is_some() {
        action.start_time = start;
    }
    if end.is_some() {
        action.end_time = end;
    }
    if min.is_some() || max.is_some() {
        action.min_capacity = min;
        action.max_capacity = max;
    }
    action.next_fire = next_fire(&action, now);
    book.scheduled.insert(k, action);
    a.persist(&book)?;
    Ok(json!({}))
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct DescribeScheduledIn {
    scheduled_action_names: Option<Vec<String>>,
}

fn describe_scheduled_actions(
    a: &AutoScaling,
    filter: DescribeFilter,
    input: DescribeScheduledIn,
) -> Result<Value, AutoScalingError> {
    if !filter.is_ecs() {
        return Ok(json!({ "ScheduledActions": [] }));
    }
    let book = a.lock();
    let items: Vec<Value> = book
        .scheduled
        .values()
        .filter(|s| filter.wants(&s.resource_id))
        .filter(|s| input.scheduled_action_names.as_ref().is_none_or(|n| n.is_empty() || n.contains(&s.name)))
        .map(|s| {
            json!({
                "ScheduledActionName": s.name,
                "ScheduledActionARN": s.arn,
                "ServiceNamespace": SERVICE_NAMESPACE,
                "Schedule": s.schedule,
                "Timezone": s.timezone,
                "ResourceId": s.resource_id,
                "ScalableDimension": SCALABLE_DIMENSION,
                "StartTime": s.start_time,
                "EndTime": s.end_time,
                "ScalableTargetAction": { "MinCapacity": s.min_capacity, "MaxCapacity": s.max_capacity },
                "CreationTime": s.creation_time,
            })
        })
        .collect();
    let (items, token) = filter.page(items)?;
    Ok(json!({ "ScheduledActions": items, "NextToken": token }))
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct DeleteScheduledIn {
    scheduled_action_name: String,
}

fn delete_scheduled_action(
    a: &AutoScaling,
    target: TargetKey,
    input: DeleteScheduledIn,
) -> Result<Value, AutoScalingError> {
    let mut errors = Vec::new();
    target.check(&mut errors);
    check(errors)?;
    let mut book = a.lock();
    if book
        .scheduled
        .remove(&key(&target.resource_id, &input.scheduled_action_name))
        .is_none()
    {
        return Err(AutoScalingError::ObjectNotFound(format!(
            "No scheduled action found for service namespace: ecs, resource ID: {}, scalable dimension: {SCALABLE_DIMENSION}, scheduled action name: {}",
            target.resource_id, input.scheduled_action_name
        )));
    }
    a.persist(&book)?;
    Ok(json!({}))
}

// ---- activities ---------------------------------------------------------------------------------

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct DescribeActivitiesIn {
    #[allow(dead_code)]
    include_not_scaled_activities: Option<bool>,
}

fn describe_scaling_activities(
    a: &AutoScaling,
    filter: DescribeFilter,
) -> Result<Value, AutoScalingError> {
    if !filter.is_ecs() {
        return Ok(json!({ "ScalingActivities": [] }));
    }
    let book: Book = a.lock().clone();
    let mut all: Vec<&Activity> = book
        .activities
        .iter()
        .filter(|(rid, _)| filter.wants(rid))
        .flat_map(|(_, list)| list.iter())
        .collect();
    all.sort_by(|x, y| {
        y.start_time
            .total_cmp(&x.start_time)
            .then_with(|| y.id.cmp(&x.id))
    });
    let items: Vec<Value> = all
        .into_iter()
        .map(|x| {
            json!({
                "ActivityId": x.id,
                "ServiceNamespace": SERVICE_NAMESPACE,
                "ResourceId": x.resource_id,
                "ScalableDimension": SCALABLE_DIMENSION,
                "Description": x.description,
                "Cause": x.cause,
                "StartTime": x.start_time,
                "EndTime": x.end_time,
                "StatusCode": x.status_code,
                "StatusMessage": x.status_message,
            })
        })
        .collect();
    let (items, token) = filter.page(items)?;
    Ok(json!({ "ScalingActivities": items, "NextToken": token }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn alb_resource_labels_split_into_dimensions() {
        assert_eq!(
            alb_dimensions("app/shop/0123abcd/targetgroup/api/4567ef"),
            Some(("app/shop/0123abcd".into(), "targetgroup/api/4567ef".into()))
        );
        for bad in [
            "app/shop/0123/targetgroup/api",
            "net/shop/1/targetgroup/api/2",
            "app/shop/1/tg/api/2",
            "app//1/targetgroup/api/2",
        ] {
            assert_eq!(alb_dimensions(bad), None, "{bad}");
        }
    }

    #[test]
    fn pages_follow_next_tokens_and_refuse_bad_ones() {
        let items: Vec<Value> = (0..5).map(|i| json!(i)).collect();
        let (p1, t1) = page(items.clone(), Some(2), None).unwrap();
        assert_eq!(
            (p1, t1.clone()),
            (vec![json!(0), json!(1)], Some("2".into()))
        );
        let (p3, t3) = page(items.clone(), Some(2), Some("4".into())).unwrap();
        assert_eq!((p3, t3), (vec![json!(4)], None));
        let e = page(items, Some(0), Some("x".into())).unwrap_err();
        assert!(
            matches!(&e, AutoScalingError::Validation(v) if v.len() == 2),
            "{e:?}"
        );
    }
}
