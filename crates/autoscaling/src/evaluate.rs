//! The evaluation round `run` does every second: publish the per-target request counts tracked
//! policies need, run due scheduled actions, then decide each scalable target's capacity from its
//! policies' alarm states and metrics ([`crate::decide`]) and apply it with ECS UpdateService,
//! recording a scaling activity and a service event.
//!
//! Target tracking: each policy owns an AlarmHigh (metric > target for 3 of 3 datapoints) and an
//! AlarmLow (metric < 90% of target for 15 of 15), with datapoints of `EvaluationPeriodSeconds`
//! (default 1 s: berth reacts within about 5 s of sustained load, AWS within 3 minutes). While an
//! alarm is in ALARM, the capacity comes from the mean of the metric over the alarm's datapoints.
//!
//! ALBRequestCountPerTarget keeps AWS's unit, requests per target per minute: berth publishes
//! `AWS/ApplicationELB RequestCountPerTarget` every second (that second's RequestCount over the
//! healthy targets, 2 s behind to let the proxy's report arrive), and the alarms compare its Sum
//! over a period of P seconds with `target × P / 60`.

use crate::api::{alb_dimensions, next_fire, DEFAULT_COOLDOWN};
use crate::decide::{
    adjusted_capacity, clamp, combine, step_for, target_tracking_capacity, AdjustmentType, Vote,
};
use crate::model::{Activity, ScalingPolicy, TargetTrackingConfig};
use crate::{AutoScaling, Book, ACTIVITIES_PER_TARGET};
use berth_metrics::alarm::manager::AlarmFilter;
use berth_metrics::alarm::{
    AlarmActions, AlarmDefinition, ComparisonOperator, MetricAlarm, StateValue, TreatMissingData,
};
use berth_metrics::{Dimension, MetricDatum, MetricId, MetricQuery, Sample, Statistic};
use std::collections::{BTreeMap, HashMap};

/// AlarmHigh: datapoints that must all breach.
pub const HIGH_DATAPOINTS: u32 = 3;
/// AlarmLow: datapoints that must all be below the scale-in threshold.
pub const LOW_DATAPOINTS: u32 = 15;
/// Seconds RequestCountPerTarget is published behind the clock.
pub const PUBLISH_LAG: i64 = 2;

/// The metric a target tracking policy watches, in alarm terms.
#[derive(Debug, Clone, PartialEq)]
pub struct TrackedMetric {
    pub id: MetricId,
    pub statistic: String,
    pub unit: Option<String>,
    /// Seconds per datapoint.
    pub period: i64,
    /// Alarm units per target-value unit (`P / 60` for requests per target per minute, else 1).
    pub scale: f64,
}

/// The metric of a target tracking configuration for service `cluster`/`service`.
pub fn tracked_metric(cluster: &str, service: &str, cfg: &TargetTrackingConfig) -> TrackedMetric {
    let period = cfg.evaluation_period_seconds.unwrap_or(1);
    let ecs = |name: &str| TrackedMetric {
        id: MetricId::new(
            "AWS/ECS",
            name,
            vec![
                Dimension::new("ClusterName", cluster),
                Dimension::new("ServiceName", service),
            ],
        ),
        statistic: "Average".into(),
        unit: None,
        period,
        scale: 1.0,
    };
    if let Some(p) = &cfg.predefined_metric_specification {
        return match p.predefined_metric_type.as_str() {
            "ECSServiceAverageMemoryUtilization" => ecs("MemoryUtilization"),
            "ALBRequestCountPerTarget" => {
                let (lb, tg) = p
                    .resource_label
                    .as_deref()
                    .and_then(alb_dimensions)
                    .unwrap_or_default();
                TrackedMetric {
                    id: MetricId::new(
                        "AWS/ApplicationELB",
                        "RequestCountPerTarget",
                        vec![
                            Dimension::new("LoadBalancer", lb),
                            Dimension::new("TargetGroup", tg),
                        ],
                    ),
                    statistic: "Sum".into(),
                    unit: None,
                    period,
                    scale: period as f64 / 60.0,
                }
            }
            _ => ecs("CPUUtilization"),
        };
    }
    let c = cfg
        .customized_metric_specification
        .clone()
        .unwrap_or_default();
    TrackedMetric {
        id: MetricId::new(
            c.namespace.unwrap_or_default(),
            c.metric_name.unwrap_or_default(),
            c.dimensions
                .unwrap_or_default()
                .into_iter()
                .map(|d| Dimension::new(d.name, d.value))
                .collect(),
        ),
        statistic: c.statistic.unwrap_or_else(|| "Average".into()),
        unit: c.unit,
        period,
        scale: 1.0,
    }
}

/// The AlarmHigh and AlarmLow a target tracking policy owns.
pub fn tracking_alarms(
    m: &TrackedMetric,
    cfg: &TargetTrackingConfig,
    policy_arn: &str,
    high: &str,
    low: &str,
) -> (MetricAlarm, MetricAlarm) {
    let alarm = |name: &str, n: u32, threshold: f64, op: ComparisonOperator| MetricAlarm {
        alarm_name: name.to_string(),
        alarm_description: Some(format!(
            "DO NOT EDIT OR DELETE. For TargetTrackingScaling policy {policy_arn}."
        )),
        actions: AlarmActions {
            actions_enabled: true,
            alarm_actions: vec![policy_arn.to_string()],
            ..Default::default()
        },
        metric: m.id.clone(),
        statistic: m.statistic.clone(),
        unit: m.unit.clone(),
        period: m.period,
        evaluation_periods: n,
        datapoints_to_alarm: n,
        threshold,
        comparison_operator: op,
        treat_missing_data: TreatMissingData::Missing,
        evaluate_low_sample_count_percentile: None,
    };
    let target = cfg.target_value * m.scale;
    (
        alarm(
            high,
            HIGH_DATAPOINTS,
            target,
            ComparisonOperator::GreaterThanThreshold,
        ),
        alarm(
            low,
            LOW_DATAPOINTS,
            target * crate::decide::SCALE_IN_MARGIN,
            ComparisonOperator::LessThanThreshold,
        ),
    )
}

/// A metric alarm's name, state and definition.
type AlarmView = (String, StateValue, MetricAlarm);

impl AutoScaling {
    /// (desired, running) of an ACTIVE service.
    pub(crate) fn service_counts(&self, cluster: &str, service: &str) -> Option<(u32, u32)> {
        let k = berth_control::state::service_key(cluster, service);
        self.cp().read(|st| {
            st.services
                .get(&k)
                .filter(|r| r.service.status == "ACTIVE")
                .map(|r| (r.service.desired_count, r.service.running_count))
        })
    }

    /// Sets the desired count of the target's service, recording an activity and a service event.
    fn set_desired(
        &self,
        book: &mut Book,
        resource_id: &str,
        from: u32,
        to: u32,
        trigger: &str,
        now: f64,
    ) -> bool {
        let Some(target) = book.targets.get(resource_id) else {
            return false;
        };
        let (cluster, service) = target.service();
        let cause = format!("{trigger} changing the desired capacity from {from} to {to}.");
        let result = berth_control::ecs::call_as(
            self.cp(),
            "UpdateService",
            serde_json::json!({ "cluster": cluster, "service": service, "desiredCount": to }),
            "application-autoscaling",
        );
        let (status, message) = match &result {
            Ok(_) => (
                "Successful",
                format!(
                    "Successfully set desired count to {to}. Change successfully fulfilled by ecs."
                ),
            ),
            Err(e) => (
                "Failed",
                format!("Failed to set desired count to {to}. Reason: {e}"),
            ),
        };
        tracing::info!(resource = resource_id, from, to, status, cause = %cause, "scaling activity");
        self.record(
            book,
            resource_id,
            format!("Setting desired count to {to}."),
            cause.clone(),
            status,
            message,
            now,
        );
        let event = format!("(service {service}) Application Auto Scaling set the desired count from {from} to {to}: {cause}");
        if let Err(error) = self.cp().add_service_event(&cluster, &service, &event) {
            tracing::warn!(resource = resource_id, %error, "could not add the scaling service event");
        }
        result.is_ok()
    }

    #[allow(clippy::too_many_arguments)]
    fn record(
        &self,
        book: &mut Book,
        resource_id: &str,
        description: String,
        cause: String,
        status: &str,
        message: String,
        now: f64,
    ) {
        let list = book.activities.entry(resource_id.to_string()).or_default();
        list.push_front(Activity {
            id: uuid::Uuid::new_v4().to_string(),
            resource_id: resource_id.to_string(),
            description,
            cause,
            start_time: now,
            end_time: berth_model::now().max(now),
            status_code: status.into(),
            status_message: message,
        });
        list.truncate(ACTIVITIES_PER_TARGET);
    }

    /// Moves the desired count inside the target's [min, max] (after the limits changed).
    pub(crate) fn clamp_desired(&self, book: &mut Book, resource_id: &str, now: f64, by: &str) {
        let Some(target) = book.targets.get(resource_id).cloned() else {
            return;
        };
        let (cluster, service) = target.service();
        let Some((desired, _)) = self.service_counts(&cluster, &service) else {
            return;
        };
        let to = clamp(i64::from(desired), target.min_capacity, target.max_capacity);
        if to != desired {
            let (which, v) = if to > desired {
                ("minimum", target.min_capacity)
            } else {
                ("maximum", target.max_capacity)
            };
            self.set_desired(
                book,
                resource_id,
                desired,
                to,
                &format!("the {which} capacity was set to {v} by {by},"),
                now,
            );
        }
    }

    /// One evaluation round at `now` (what [`AutoScaling::run`] does every second).
    pub fn evaluate_at(&self, now: f64) {
        let mut book = self.lock();
        let before = serde_json::to_vec(&*book).unwrap_or_default();
        self.publish_request_count_per_target(&book, now);
        self.run_scheduled(&mut book, now);
        let alarms = self.scaling_alarms();
        let targets: Vec<String> = book.targets.keys().cloned().collect();
        for rid in targets {
            self.evaluate_target(&mut book, &rid, &alarms, now);
        }
        if serde_json::to_vec(&*book).unwrap_or_default() != before {
            if let Err(error) = self.persist(&book) {
                tracing::warn!(%error, "auto scaling state could not be saved; will retry on the next change");
            }
        }
    }

    /// Metric alarms with a scaling policy among their actions, by name.
    fn scaling_alarms(&self) -> BTreeMap<String, AlarmView> {
        let filter = AlarmFilter {
            action_prefix: Some("arn:aws:autoscaling:".into()),
            metric_alarms: true,
            ..Default::default()
        };
        self.cloudwatch()
            .alarms
            .describe(&filter)
            .into_iter()
            .filter_map(|a| match a.definition {
                AlarmDefinition::Metric(m) => Some((
                    m.alarm_name.clone(),
                    (m.alarm_name.clone(), a.state.value, m),
                )),
                AlarmDefinition::Composite(_) => None,
            })
            .collect()
    }

    /// Statistic per period over the newest `n` complete periods (plus `PUBLISH_LAG` of slack).
    fn datapoints(
        &self,
        id: &MetricId,
        statistic: &str,
        unit: Option<&str>,
        period: i64,
        n: u32,
        now: f64,
    ) -> Vec<f64> {
        let now_s = now.floor() as i64;
        let end = now_s - now_s.rem_euclid(period);
        let slack = (PUBLISH_LAG + period - 1) / period;
        let q = MetricQuery {
            id: id.clone(),
            start: end - (i64::from(n) + slack) * period,
            end,
            period,
            statistics: vec![Statistic::parse(statistic).unwrap_or(Statistic::Average)],
            unit: unit.map(str::to_string),
        };
        let values: Vec<f64> = match self.cloudwatch().metrics.query_at(&q, now_s) {
            Ok(dps) => dps
                .into_iter()
                .filter_map(|d| d.values.first().copied())
                .filter(|v| v.is_finite())
                .collect(),
            Err(error) => {
                tracing::warn!(metric = %id.name, %error, "auto scaling metric query failed");
                Vec::new()
            }
        };
        let skip = values.len().saturating_sub(n as usize);
        values[skip..].to_vec()
    }

    /// The tracked metric's mean over the newest `n` datapoints, in target-value units.
    fn tracked_value(&self, m: &TrackedMetric, n: u32, now: f64) -> Option<f64> {
        let v = self.datapoints(&m.id, &m.statistic, m.unit.as_deref(), m.period, n, now);
        (!v.is_empty()).then(|| v.iter().sum::<f64>() / v.len() as f64 / m.scale)
    }

    fn evaluate_target(
        &self,
        book: &mut Book,
        rid: &str,
        alarms: &BTreeMap<String, AlarmView>,
        now: f64,
    ) {
        let Some(target) = book.targets.get(rid).cloned() else {
            return;
        };
        let (cluster, service) = target.service();
        let Some((mut desired, running)) = self.service_counts(&cluster, &service) else {
            return;
        };
        let ss = target.suspended_state;
        let mut cooldowns = target.cooldowns;
        let policies: Vec<ScalingPolicy> = book
            .policies
            .values()
            .filter(|p| p.resource_id == rid)
            .cloned()
            .collect();

        // Target tracking: one vote per policy, combined.
        // Scale-out proposals start from the tasks the metric describes; scale-in proposals from the
        // desired count (conservative while tasks are still starting).
        let out_base = cooldowns.scale_out_base(now, desired, running);
        let mut votes = Vec::new();
        for p in policies.iter().filter(|p| p.tracking.is_some()) {
            let Some(cfg) = &p.tracking else { continue };
            let m = tracked_metric(&cluster, &service, cfg);
            let in_alarm = |name: &Option<String>| {
                name.as_ref()
                    .and_then(|n| alarms.get(n))
                    .filter(|a| a.1 == StateValue::ALARM)
            };
            let vote = if let Some(a) = in_alarm(&p.alarm_high) {
                match self
                    .tracked_value(&m, HIGH_DATAPOINTS, now)
                    .and_then(|v| target_tracking_capacity(out_base, v, cfg.target_value, false))
                {
                    Some(n) if n > desired => (Vote::Out(n), a.0.clone()),
                    _ => (Vote::Hold, String::new()),
                }
            } else if let Some(a) =
                in_alarm(&p.alarm_low).filter(|_| !cfg.disable_scale_in.unwrap_or(false))
            {
                match self
                    .tracked_value(&m, LOW_DATAPOINTS, now)
                    .and_then(|v| target_tracking_capacity(desired, v, cfg.target_value, true))
                {
                    Some(n) if n < desired => (Vote::In(n), a.0.clone()),
                    _ => (Vote::Hold, String::new()),
                }
            } else {
                (Vote::Hold, String::new())
            };
            votes.push((vote.0, vote.1, p));
        }
        let plain: Vec<Vote> = votes.iter().map(|v| v.0).collect();
        match combine(&plain) {
            Some(Vote::Out(n)) => {
                let to = clamp(i64::from(n), target.min_capacity, target.max_capacity);
                if to > desired
                    && !ss.dynamic_scaling_out_suspended
                    && cooldowns.scale_out_allowed(now, to)
                {
                    if let Some((_, alarm, p)) = votes.iter().find(|v| v.0 == Vote::Out(n)) {
                        let trigger = format!(
                            "monitor alarm {alarm} in state ALARM triggered policy {}",
                            p.name
                        );
                        if self.set_desired(book, rid, desired, to, &trigger, now) {
                            let cd = p
                                .tracking
                                .as_ref()
                                .and_then(|c| c.scale_out_cooldown)
                                .unwrap_or(DEFAULT_COOLDOWN);
                            cooldowns.scaled_out(now, desired, to, cd as f64);
                            desired = to;
                        }
                    }
                }
            }
            Some(Vote::In(n)) => {
                let to = clamp(i64::from(n), target.min_capacity, target.max_capacity);
                if to < desired
                    && !ss.dynamic_scaling_in_suspended
                    && cooldowns.scale_in_allowed(now)
                {
                    if let Some((_, alarm, p)) = votes.iter().find(|v| v.0 == Vote::In(n)) {
                        let trigger = format!(
                            "monitor alarm {alarm} in state ALARM triggered policy {}",
                            p.name
                        );
                        if self.set_desired(book, rid, desired, to, &trigger, now) {
                            let cd = p
                                .tracking
                                .as_ref()
                                .and_then(|c| c.scale_in_cooldown)
                                .unwrap_or(DEFAULT_COOLDOWN);
                            cooldowns.scaled_in(now, cd as f64);
                            desired = to;
                        }
                    }
                }
            }
            _ => {}
        }

        // Step scaling: each policy triggered by an alarm (in the state whose actions name it),
        // again after its cooldown while the alarm stays there.
        for p in policies.iter().filter(|p| p.step.is_some()) {
            let Some(cfg) = &p.step else { continue };
            let Some((alarm_name, state, alarm)) = alarms
                .values()
                .find(|(_, state, m)| m.actions.for_state(*state).contains(&p.arn))
            else {
                continue;
            };
            let cooldown = cfg.cooldown.unwrap_or(DEFAULT_COOLDOWN) as f64;
            if p.last_run.is_some_and(|t| now < t + cooldown) {
                continue;
            }
            let stat = cfg.metric_aggregation_type.as_deref().unwrap_or("Average");
            let values = self.datapoints(
                &alarm.metric,
                stat,
                alarm.unit.as_deref(),
                alarm.period,
                1,
                now,
            );
            let Some(value) = values.last().copied() else {
                continue;
            };
            let Some(step) = step_for(
                cfg.step_adjustments.as_deref().unwrap_or_default(),
                value - alarm.threshold,
            ) else {
                continue;
            };
            let kind = cfg
                .adjustment_type
                .as_deref()
                .and_then(AdjustmentType::parse)
                .unwrap_or(AdjustmentType::ChangeInCapacity);
            let min_magnitude = cfg
                .min_adjustment_magnitude
                .and_then(|m| u32::try_from(m).ok());
            let to = clamp(
                adjusted_capacity(desired, kind, step.scaling_adjustment, min_magnitude),
                target.min_capacity,
                target.max_capacity,
            );
            let allowed = if to > desired {
                !ss.dynamic_scaling_out_suspended
            } else {
                to < desired && !ss.dynamic_scaling_in_suspended && now >= cooldowns.scale_out_until
            };
            if !allowed {
                continue;
            }
            let trigger = format!(
                "monitor alarm {alarm_name} in state {} triggered policy {}",
                state.as_str(),
                p.name
            );
            if self.set_desired(book, rid, desired, to, &trigger, now) {
                if to > desired {
                    cooldowns.scaled_out(now, desired, to, cooldown);
                } else {
                    cooldowns.scaled_in(now, cooldown);
                }
                desired = to;
                if let Some(stored) = book.policies.get_mut(&crate::key(rid, &p.name)) {
                    stored.last_run = Some(now);
                }
            }
        }
        if let Some(t) = book.targets.get_mut(rid) {
            t.cooldowns = cooldowns;
        }
    }

    /// Runs scheduled actions whose time has come (once, even if several fire times were missed).
    fn run_scheduled(&self, book: &mut Book, now: f64) {
        let due: Vec<String> = book
            .scheduled
            .iter()
            .filter(|(_, a)| a.next_fire.is_some_and(|t| t <= now))
            .map(|(k, _)| k.clone())
            .collect();
        for k in due {
            let Some(action) = book.scheduled.get(&k).cloned() else {
                continue;
            };
            if let Some(stored) = book.scheduled.get_mut(&k) {
                stored.next_fire = next_fire(&action, now);
            }
            let Some(target) = book.targets.get_mut(&action.resource_id) else {
                continue;
            };
            if target.suspended_state.scheduled_scaling_suspended {
                continue;
            }
            let mut min = action.min_capacity.unwrap_or(target.min_capacity);
            let mut max = action.max_capacity.unwrap_or(target.max_capacity);
            if min > max {
                // Only one limit given: the other follows it.
                if action.max_capacity.is_none() {
                    max = min;
                } else {
                    min = max;
                }
            }
            target.min_capacity = min;
            target.max_capacity = max;
            self.record(
                book,
                &action.resource_id,
                format!("Setting min capacity to {min} and max capacity to {max}."),
                format!("scheduled action name {} was triggered", action.name),
                "Successful",
                format!("Successfully set min capacity to {min} and max capacity to {max}."),
                now,
            );
            self.clamp_desired(
                book,
                &action.resource_id,
                now,
                &format!("scheduled action {}", action.name),
            );
        }
    }

    /// Publishes RequestCountPerTarget for the target groups ALBRequestCountPerTarget policies track.
    fn publish_request_count_per_target(&self, book: &Book, now: f64) {
        let mut labels: HashMap<String, (String, String)> = HashMap::new();
        for p in book.policies.values() {
            let Some(label) = p
                .tracking
                .as_ref()
                .and_then(|c| c.predefined_metric_specification.as_ref())
                .and_then(|s| s.resource_label.clone())
            else {
                continue;
            };
            if let Some(target) = book.targets.get(&p.resource_id) {
                labels.insert(label, target.service());
            }
        }
        let now_s = now.floor() as i64;
        let to = now_s - PUBLISH_LAG;
        let mut published = self.published();
        for (label, (cluster, service)) in labels {
            let Some((lb, tg)) = alb_dimensions(&label) else {
                continue;
            };
            let from = published.get(&label).map_or(to, |t| t + 1).max(to - 60);
            if from > to {
                continue;
            }
            let dims = vec![
                Dimension::new("LoadBalancer", lb),
                Dimension::new("TargetGroup", tg),
            ];
            let per_second = |name: &str, stat: Statistic| -> HashMap<i64, f64> {
                let q = MetricQuery {
                    id: MetricId::new("AWS/ApplicationELB", name, dims.clone()),
                    start: from,
                    end: to + 1,
                    period: 1,
                    statistics: vec![stat],
                    unit: None,
                };
                self.cloudwatch()
                    .metrics
                    .query_at(&q, now_s)
                    .map(|dps| {
                        dps.into_iter()
                            .filter_map(|d| Some((d.timestamp, *d.values.first()?)))
                            .collect()
                    })
                    .unwrap_or_default()
            };
            let requests = per_second("RequestCount", Statistic::Sum);
            let healthy = per_second("HealthyHostCount", Statistic::Average);
            let running = self
                .service_counts(&cluster, &service)
                .map_or(1, |(_, r)| r.max(1));
            let data: Vec<MetricDatum> = (from..=to)
                .map(|t| {
                    let targets = healthy
                        .get(&t)
                        .copied()
                        .filter(|h| *h >= 1.0)
                        .unwrap_or(f64::from(running));
                    MetricDatum {
                        id: MetricId::new(
                            "AWS/ApplicationELB",
                            "RequestCountPerTarget",
                            dims.clone(),
                        ),
                        unit: Some("Count".into()),
                        timestamp: t,
                        sample: Sample::Value(requests.get(&t).copied().unwrap_or(0.0) / targets),
                    }
                })
                .collect();
            self.cloudwatch().metrics.put_at(&data, now_s);
            published.insert(label, to);
        }
    }
}
