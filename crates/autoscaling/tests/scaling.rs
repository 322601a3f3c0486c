//! In-process scaling: a real control plane (memory store) and CloudWatch in a temp dir, synthetic
//! metrics fed second by second, alarms and policies evaluated at explicit times (no sleeping).

#![allow(clippy::unwrap_used, clippy::expect_used)] // helpers outside #[test] fns panic on purpose

use berth_autoscaling::AutoScaling;
use berth_control::{ControlConfig, ControlPlane};
use berth_metrics::alarm::{AlarmActions, ComparisonOperator, MetricAlarm, TreatMissingData};
use berth_metrics::{CloudWatch, Dimension, MetricDatum, MetricId, Retention, Sample};
use serde_json::{json, Value};

struct Rig {
    _dir: tempfile::TempDir,
    dir: std::path::PathBuf,
    cp: ControlPlane,
    cw: CloudWatch,
    asg: AutoScaling,
    t0: i64,
}

impl Rig {
    fn new(services: &[(&str, u32)]) -> Rig {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().to_path_buf();
        let config = ControlConfig {
            state_dir: path.join("control"),
            arns: Default::default(),
            listen_host: "127.0.0.1".into(),
        };
        let cp = ControlPlane::with_store(config, Box::new(berth_store::MemoryStore::default()))
            .unwrap();
        berth_control::ecs::call(
            &cp,
            "RegisterTaskDefinition",
            json!({"family": "app", "containerDefinitions": [{"name": "app", "image": "process://berth", "command": ["demo-app"]}]}),
        )
        .unwrap();
        for (name, count) in services {
            berth_control::ecs::call(
                &cp,
                "CreateService",
                json!({"serviceName": name, "taskDefinition": "app", "desiredCount": count}),
            )
            .unwrap();
        }
        let cw = CloudWatch::open(path.join("cloudwatch"), Retention::default()).unwrap();
        let asg = AutoScaling::open(path.join("autoscaling"), cp.clone(), cw.clone()).unwrap();
        let t0 = berth_model::now().floor() as i64;
        Rig {
            _dir: dir,
            dir: path,
            cp,
            cw,
            asg,
            t0,
        }
    }

    fn call(&self, op: &str, input: Value) -> Value {
        self.asg
            .call(op, input)
            .unwrap_or_else(|e| panic!("{op}: {e}"))
    }

    fn register(&self, service: &str, min: u32, max: u32) {
        self.call(
            "RegisterScalableTarget",
            json!({"ServiceNamespace": "ecs", "ResourceId": format!("service/default/{service}"), "ScalableDimension": "ecs:service:DesiredCount", "MinCapacity": min, "MaxCapacity": max}),
        );
    }

    fn desired(&self, service: &str) -> u64 {
        let out =
            berth_control::ecs::call(&self.cp, "DescribeServices", json!({"services": [service]}))
                .unwrap();
        out["services"][0]["desiredCount"].as_u64().unwrap()
    }

    fn put(&self, id: &MetricId, t: i64, v: f64) {
        self.cw.metrics.put_at(
            &[MetricDatum {
                id: id.clone(),
                unit: None,
                timestamp: t,
                sample: Sample::Value(v),
            }],
            t,
        );
    }

    /// Feeds `value` for seconds [from, to) of the run (relative to t0) and evaluates after each.
    fn run(&self, id: &MetricId, from: i64, to: i64, value: f64) {
        for s in from..to {
            let t = self.t0 + s;
            self.put(id, t, value);
            let now = (t + 1) as f64 + 0.1;
            self.cw.alarms.evaluate_all(now);
            self.asg.evaluate_at(now);
        }
    }

    fn activities(&self) -> Vec<Value> {
        self.call(
            "DescribeScalingActivities",
            json!({"ServiceNamespace": "ecs"}),
        )["ScalingActivities"]
            .as_array()
            .unwrap()
            .clone()
    }
}

fn cpu(service: &str) -> MetricId {
    MetricId::new(
        "AWS/ECS",
        "CPUUtilization",
        vec![
            Dimension::new("ClusterName", "default"),
            Dimension::new("ServiceName", service),
        ],
    )
}

fn tracking(service: &str, name: &str, extra: Value) -> Value {
    let mut cfg = json!({"TargetValue": 50.0, "PredefinedMetricSpecification": {"PredefinedMetricType": "ECSServiceAverageCPUUtilization"}});
    for (k, v) in extra.as_object().unwrap() {
        cfg[k] = v.clone();
    }
    json!({"PolicyName": name, "ServiceNamespace": "ecs", "ResourceId": format!("service/default/{service}"), "ScalableDimension": "ecs:service:DesiredCount",
           "PolicyType": "TargetTrackingScaling", "TargetTrackingScalingPolicyConfiguration": cfg})
}

#[test]
fn target_tracking_scales_out_then_in_gradually_after_cooldowns() {
    let rig = Rig::new(&[("web", 2)]);
    rig.register("web", 1, 6);
    let out = rig.call(
        "PutScalingPolicy",
        tracking(
            "web",
            "cpu-tracking",
            json!({"ScaleOutCooldown": 60, "ScaleInCooldown": 30}),
        ),
    );
    let alarms = out["Alarms"].as_array().unwrap();
    assert_eq!(alarms.len(), 2, "{out}");
    let high = alarms[0]["AlarmName"].as_str().unwrap().to_string();
    assert!(
        high.starts_with("TargetTracking-service/default/web-AlarmHigh-"),
        "{high}"
    );
    assert!(alarms[1]["AlarmName"]
        .as_str()
        .unwrap()
        .starts_with("TargetTracking-service/default/web-AlarmLow-"));
    let alarm = rig
        .cw
        .alarms
        .get(&high)
        .expect("the policy's alarm is a CloudWatch alarm");
    assert!(alarm
        .definition
        .actions()
        .alarm_actions
        .contains(&out["PolicyARN"].as_str().unwrap().to_string()));

    let id = cpu("web");
    // On target: nothing moves.
    rig.run(&id, 0, 20, 45.0);
    assert_eq!(rig.desired("web"), 2);
    // 90% on 2 tasks against 50%: 3 breaching 1 s datapoints, then ceil(2 × 90 / 50) = 4.
    rig.run(&id, 20, 22, 90.0);
    assert_eq!(
        rig.desired("web"),
        2,
        "two datapoints are not sustained load"
    );
    rig.run(&id, 22, 30, 90.0);
    assert_eq!(
        rig.desired("web"),
        4,
        "the load is still shown by 2 tasks: no second scale-out in the cooldown"
    );
    // Idle: AlarmLow after 15 datapoints, but the scale-out cooldown (60 s from ~23 s) holds scale-in.
    rig.run(&id, 30, 80, 10.0);
    assert_eq!(
        rig.desired("web"),
        4,
        "scale-in waits for the scale-out cooldown"
    );
    rig.run(&id, 80, 86, 10.0);
    assert_eq!(
        rig.desired("web"),
        2,
        "at most half the tasks go in one step"
    );
    rig.run(&id, 86, 110, 10.0);
    assert_eq!(
        rig.desired("web"),
        2,
        "the scale-in cooldown holds the next step"
    );
    rig.run(&id, 110, 120, 10.0);
    assert_eq!(rig.desired("web"), 1);
    rig.run(&id, 120, 170, 0.0);
    assert_eq!(rig.desired("web"), 1, "never below MinCapacity");

    let acts = rig.activities();
    assert_eq!(acts.len(), 3, "{acts:#?}");
    let first = &acts[2];
    assert_eq!(first["Description"], "Setting desired count to 4.");
    let cause = first["Cause"].as_str().unwrap();
    assert!(
        cause.starts_with(&format!(
            "monitor alarm {high} in state ALARM triggered policy cpu-tracking"
        )),
        "{cause}"
    );
    assert!(
        cause.ends_with("changing the desired capacity from 2 to 4."),
        "{cause}"
    );
    assert_eq!(first["StatusCode"], "Successful");
    assert!(
        acts[0]["Cause"].as_str().unwrap().contains("AlarmLow"),
        "{}",
        acts[0]
    );
    let svc = berth_control::ecs::call(&rig.cp, "DescribeServices", json!({"services": ["web"]}))
        .unwrap();
    let events: Vec<&str> = svc["services"][0]["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["message"].as_str().unwrap())
        .collect();
    assert!(
        events
            .iter()
            .any(|m| m.contains("from 2 to 4") && m.contains("cpu-tracking")),
        "{events:?}"
    );
}

#[test]
fn disable_scale_in_holds_and_max_caps() {
    let rig = Rig::new(&[("api", 2)]);
    rig.register("api", 1, 3);
    let out = rig.call(
        "PutScalingPolicy",
        tracking(
            "api",
            "cpu",
            json!({"DisableScaleIn": true, "ScaleOutCooldown": 0}),
        ),
    );
    assert_eq!(
        out["Alarms"].as_array().unwrap().len(),
        1,
        "no AlarmLow without scale-in: {out}"
    );
    let id = cpu("api");
    rig.run(&id, 0, 5, 500.0);
    assert_eq!(
        rig.desired("api"),
        3,
        "MaxCapacity caps ceil(2 × 500 / 50) = 20"
    );
    rig.run(&id, 5, 60, 0.0);
    assert_eq!(rig.desired("api"), 3, "DisableScaleIn keeps the capacity");
}

#[test]
fn two_policies_scale_in_only_when_both_agree() {
    let rig = Rig::new(&[("web", 4)]);
    rig.register("web", 1, 10);
    rig.call(
        "PutScalingPolicy",
        tracking(
            "web",
            "cpu",
            json!({"ScaleInCooldown": 0, "ScaleOutCooldown": 60}),
        ),
    );
    let mem = json!({"PolicyName": "mem", "ServiceNamespace": "ecs", "ResourceId": "service/default/web", "ScalableDimension": "ecs:service:DesiredCount",
        "PolicyType": "TargetTrackingScaling", "TargetTrackingScalingPolicyConfiguration": {"TargetValue": 50.0, "ScaleInCooldown": 0, "ScaleOutCooldown": 60,
        "PredefinedMetricSpecification": {"PredefinedMetricType": "ECSServiceAverageMemoryUtilization"}}});
    rig.call("PutScalingPolicy", mem);
    let mem_id = MetricId::new(
        "AWS/ECS",
        "MemoryUtilization",
        vec![
            Dimension::new("ClusterName", "default"),
            Dimension::new("ServiceName", "web"),
        ],
    );
    // CPU idle, memory on target: no scale-in.
    for s in 0..30 {
        rig.put(&mem_id, rig.t0 + s, 48.0);
    }
    rig.run(&cpu("web"), 0, 30, 5.0);
    assert_eq!(rig.desired("web"), 4);
    // Memory high while CPU idle: the larger capacity (scale-out) wins.
    for s in 30..35 {
        rig.put(&mem_id, rig.t0 + s, 100.0);
    }
    rig.run(&cpu("web"), 30, 40, 5.0);
    assert_eq!(rig.desired("web"), 8, "ceil(4 × 100 / 50), once");
}

#[test]
fn step_policy_follows_its_steps_and_repeats_after_the_cooldown() {
    let rig = Rig::new(&[("worker", 2)]);
    rig.register("worker", 1, 10);
    let out = rig.call(
        "PutScalingPolicy",
        json!({"PolicyName": "queue-out", "ServiceNamespace": "ecs", "ResourceId": "service/default/worker", "ScalableDimension": "ecs:service:DesiredCount",
               "PolicyType": "StepScaling", "StepScalingPolicyConfiguration": {"AdjustmentType": "ChangeInCapacity", "Cooldown": 10,
               "StepAdjustments": [{"MetricIntervalLowerBound": 0, "MetricIntervalUpperBound": 50, "ScalingAdjustment": 1},
                                   {"MetricIntervalLowerBound": 50, "ScalingAdjustment": 3}]}}),
    );
    let arn = out["PolicyARN"].as_str().unwrap().to_string();
    assert!(
        arn.starts_with("arn:aws:autoscaling:us-east-1:000000000000:scalingPolicy:")
            && arn.ends_with(":resource/ecs/service/default/worker:policyName/queue-out"),
        "{arn}"
    );
    assert_eq!(out["Alarms"], json!([]));
    let depth = MetricId::new("App/Queue", "Depth", vec![Dimension::new("Queue", "jobs")]);
    let alarm = MetricAlarm {
        alarm_name: "queue-deep".into(),
        alarm_description: None,
        actions: AlarmActions {
            actions_enabled: true,
            alarm_actions: vec![arn.clone()],
            ..Default::default()
        },
        metric: depth.clone(),
        statistic: "Average".into(),
        unit: None,
        period: 1,
        evaluation_periods: 2,
        datapoints_to_alarm: 2,
        threshold: 100.0,
        comparison_operator: ComparisonOperator::GreaterThanThreshold,
        treat_missing_data: TreatMissingData::Missing,
        evaluate_low_sample_count_percentile: None,
    };
    rig.cw
        .alarms
        .put_metric_alarm(alarm, rig.t0 as f64)
        .expect("a scaling policy ARN is a valid alarm action");
    rig.run(&depth, 0, 3, 120.0);
    assert_eq!(rig.desired("worker"), 3, "first step: +1");
    rig.run(&depth, 3, 10, 120.0);
    assert_eq!(rig.desired("worker"), 3, "cooldown");
    rig.run(&depth, 10, 13, 120.0);
    assert_eq!(
        rig.desired("worker"),
        4,
        "still in ALARM after the cooldown: again"
    );
    rig.run(&depth, 13, 25, 200.0);
    assert_eq!(rig.desired("worker"), 7, "second step: +3");
    rig.run(&depth, 25, 60, 10.0);
    assert_eq!(rig.desired("worker"), 7, "OK: nothing");
    let acts = rig.activities();
    assert!(acts[0]["Cause"].as_str().unwrap().starts_with("monitor alarm queue-deep in state ALARM triggered policy queue-out changing the desired capacity from 4 to 7."), "{}", acts[0]);
}

#[test]
fn scheduled_action_sets_min_max_at_its_time_and_state_survives_reopening() {
    let rig = Rig::new(&[("dev", 2)]);
    rig.register("dev", 1, 4);
    let at = chrono::DateTime::from_timestamp(rig.t0 + 10, 0)
        .unwrap()
        .naive_utc()
        .format("%Y-%m-%dT%H:%M:%S")
        .to_string();
    rig.call(
        "PutScheduledAction",
        json!({"ServiceNamespace": "ecs", "ResourceId": "service/default/dev", "ScalableDimension": "ecs:service:DesiredCount",
               "ScheduledActionName": "night", "Schedule": format!("at({at})"), "Timezone": "Etc/UTC",
               "ScalableTargetAction": {"MinCapacity": 0, "MaxCapacity": 0}}),
    );
    let listed = rig.call(
        "DescribeScheduledActions",
        json!({"ServiceNamespace": "ecs"}),
    );
    assert_eq!(
        listed["ScheduledActions"][0]["Schedule"],
        format!("at({at})")
    );
    rig.asg.evaluate_at((rig.t0 + 9) as f64);
    assert_eq!(rig.desired("dev"), 2, "not yet");
    rig.asg.evaluate_at((rig.t0 + 10) as f64 + 0.5);
    assert_eq!(
        rig.desired("dev"),
        0,
        "MaxCapacity 0 clamps the desired count"
    );
    let t = rig.call(
        "DescribeScalableTargets",
        json!({"ServiceNamespace": "ecs"}),
    );
    assert_eq!(
        (
            t["ScalableTargets"][0]["MinCapacity"].clone(),
            t["ScalableTargets"][0]["MaxCapacity"].clone()
        ),
        (json!(0), json!(0))
    );
    let acts = rig.activities();
    assert_eq!(acts.len(), 2, "{acts:#?}");
    assert!(
        acts.iter()
            .any(|a| a["Cause"] == "scheduled action name night was triggered"),
        "{acts:#?}"
    );
    assert!(acts
        .iter()
        .any(|a| a["Description"] == "Setting desired count to 0."));
    rig.asg.evaluate_at((rig.t0 + 100) as f64);
    assert_eq!(rig.activities().len(), 2, "at() fires once");

    let reopened =
        AutoScaling::open(rig.dir.join("autoscaling"), rig.cp.clone(), rig.cw.clone()).unwrap();
    let t = reopened
        .call(
            "DescribeScalableTargets",
            json!({"ServiceNamespace": "ecs", "ResourceIds": ["service/default/dev"]}),
        )
        .unwrap();
    assert_eq!(t["ScalableTargets"][0]["MaxCapacity"], 0);
    let acts = reopened
        .call(
            "DescribeScalingActivities",
            json!({"ServiceNamespace": "ecs", "ResourceId": "service/default/dev"}),
        )
        .unwrap();
    assert_eq!(acts["ScalingActivities"].as_array().unwrap().len(), 2);
    assert_eq!(
        reopened
            .call(
                "DescribeScheduledActions",
                json!({"ServiceNamespace": "ecs"})
            )
            .unwrap()["ScheduledActions"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
}

#[test]
fn deleting_a_policy_or_target_deletes_its_alarms() {
    let rig = Rig::new(&[("web", 1)]);
    rig.register("web", 1, 3);
    let out = rig.call("PutScalingPolicy", tracking("web", "cpu", json!({})));
    let names: Vec<String> = out["Alarms"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["AlarmName"].as_str().unwrap().to_string())
        .collect();
    // Updating keeps the same alarms.
    let again = rig.call(
        "PutScalingPolicy",
        tracking("web", "cpu", json!({"TargetValue": 70.0})),
    );
    assert_eq!(again["Alarms"], out["Alarms"]);
    assert_eq!(again["PolicyARN"], out["PolicyARN"]);
    rig.call("DeleteScalingPolicy", json!({"PolicyName": "cpu", "ServiceNamespace": "ecs", "ResourceId": "service/default/web", "ScalableDimension": "ecs:service:DesiredCount"}));
    assert!(
        names.iter().all(|n| rig.cw.alarms.get(n).is_none()),
        "alarms deleted with the policy"
    );
    let out = rig.call("PutScalingPolicy", tracking("web", "cpu2", json!({})));
    let name = out["Alarms"][0]["AlarmName"].as_str().unwrap().to_string();
    rig.call("DeregisterScalableTarget", json!({"ServiceNamespace": "ecs", "ResourceId": "service/default/web", "ScalableDimension": "ecs:service:DesiredCount"}));
    assert!(rig.cw.alarms.get(&name).is_none());
    let policies = rig.call(
        "DescribeScalingPolicies",
        json!({"ServiceNamespace": "ecs"}),
    );
    assert_eq!(policies["ScalingPolicies"], json!([]));
}

#[test]
fn bad_input_is_refused_with_aws_errors_listing_every_problem() {
    let rig = Rig::new(&[("web", 1)]);
    let e = rig
        .asg
        .call("RegisterScalableTarget", json!({"ServiceNamespace": "ec2", "ResourceId": "web", "ScalableDimension": "ecs:service:Count", "MinCapacity": 5, "MaxCapacity": 2}))
        .unwrap_err();
    assert_eq!(e.code(), "ValidationException");
    let msg = e.to_string();
    for needle in [
        "ServiceNamespace:",
        "ResourceId:",
        "ScalableDimension:",
        "MinCapacity:",
    ] {
        assert!(msg.contains(needle), "{needle} missing from {msg}");
    }
    let e = rig
        .asg
        .call("RegisterScalableTarget", json!({"ServiceNamespace": "ecs", "ResourceId": "service/default/nope", "ScalableDimension": "ecs:service:DesiredCount", "MinCapacity": 1, "MaxCapacity": 2}))
        .unwrap_err();
    assert!(e.to_string().contains("ECS service doesn't exist"), "{e}");
    let e = rig
        .asg
        .call("PutScalingPolicy", tracking("web", "cpu", json!({})))
        .unwrap_err();
    assert_eq!(e.code(), "ObjectNotFoundException");
    rig.register("web", 1, 2);
    let bad = json!({"PolicyName": "p", "ServiceNamespace": "ecs", "ResourceId": "service/default/web", "ScalableDimension": "ecs:service:DesiredCount",
        "PolicyType": "TargetTrackingScaling", "TargetTrackingScalingPolicyConfiguration": {"TargetValue": -1,
        "PredefinedMetricSpecification": {"PredefinedMetricType": "ALBRequestCountPerTarget"}, "EvaluationPeriodSeconds": 7}});
    let e = rig.asg.call("PutScalingPolicy", bad).unwrap_err();
    match &e {
        berth_autoscaling::AutoScalingError::Validation(errors) => {
            assert_eq!(errors.len(), 3, "{errors:?}")
        }
        other => panic!("{other:?}"),
    }
    let steps = json!({"PolicyName": "s", "ServiceNamespace": "ecs", "ResourceId": "service/default/web", "ScalableDimension": "ecs:service:DesiredCount",
        "StepScalingPolicyConfiguration": {"AdjustmentType": "Bogus", "StepAdjustments": [{"MetricIntervalLowerBound": 0, "MetricIntervalUpperBound": 10, "ScalingAdjustment": 1}, {"MetricIntervalLowerBound": 20, "ScalingAdjustment": 2}]}});
    let e = rig.asg.call("PutScalingPolicy", steps).unwrap_err();
    assert!(
        e.to_string().contains("AdjustmentType") && e.to_string().contains("gap"),
        "{e}"
    );
    let e = rig
        .asg
        .call("PutScheduledAction", json!({"ServiceNamespace": "ecs", "ResourceId": "service/default/web", "ScalableDimension": "ecs:service:DesiredCount", "ScheduledActionName": "x", "Schedule": "cron(0 0 * * * *)", "Timezone": "Nowhere/Land"}))
        .unwrap_err();
    assert!(
        e.to_string().contains("Schedule: cron")
            && e.to_string().contains("Timezone:")
            && e.to_string().contains("ScalableTargetAction"),
        "{e}"
    );
    let e = rig.asg.call("DeleteScalingPolicy", json!({"PolicyName": "nope", "ServiceNamespace": "ecs", "ResourceId": "service/default/web", "ScalableDimension": "ecs:service:DesiredCount"})).unwrap_err();
    assert_eq!((e.code(), e.status()), ("ObjectNotFoundException", 400));
    let e = rig
        .asg
        .call("DescribeScalableTargets", json!({"ServiceNamespace": 5}))
        .unwrap_err();
    assert!(e.to_string().starts_with("ServiceNamespace: "), "{e}");
    assert_eq!(
        rig.asg.call("TagResource", json!({})).unwrap_err().code(),
        "UnknownOperationException"
    );
}

#[test]
fn shared_and_own_input_fields_are_named_in_errors_and_filters_apply_everywhere() {
    let rig = Rig::new(&[("web", 2), ("api", 2)]);
    rig.register("web", 1, 4);
    rig.register("api", 1, 4);
    for (op, input, field) in [
        (
            "PutScalingPolicy",
            json!({"PolicyName": "p", "ServiceNamespace": "ecs", "ResourceId": 5, "ScalableDimension": "ecs:service:DesiredCount"}),
            "ResourceId: ",
        ),
        (
            "PutScalingPolicy",
            json!({"PolicyName": 1, "ServiceNamespace": "ecs", "ResourceId": "service/default/web", "ScalableDimension": "ecs:service:DesiredCount"}),
            "PolicyName: ",
        ),
        (
            "DeleteScheduledAction",
            json!({"ServiceNamespace": "ecs", "ResourceId": "service/default/web"}),
            "missing field `ScalableDimension`",
        ),
        (
            "DescribeScalingPolicies",
            json!({"ServiceNamespace": "ecs", "MaxResults": "ten"}),
            "MaxResults: ",
        ),
        (
            "DescribeScalingActivities",
            json!({"ServiceNamespace": "ecs", "IncludeNotScaledActivities": "yes"}),
            "IncludeNotScaledActivities: ",
        ),
        (
            "DescribeScheduledActions",
            json!({"ServiceNamespace": "ecs", "ScheduledActionNames": "x"}),
            "ScheduledActionNames: ",
        ),
        (
            "RegisterScalableTarget",
            json!({"ServiceNamespace": "ecs", "ResourceId": "service/default/web", "ScalableDimension": "ecs:service:DesiredCount", "MinCapacity": "one"}),
            "MinCapacity: ",
        ),
    ] {
        let e = rig.asg.call(op, input).unwrap_err();
        assert!(e.to_string().contains(field), "{op}: {e}");
    }
    for service in ["web", "api"] {
        rig.call("PutScalingPolicy", tracking(service, "cpu", json!({})));
    }
    // ResourceId, ScalableDimension and paging select the same way in every Describe operation.
    let web = json!({"ServiceNamespace": "ecs", "ResourceId": "service/default/web"});
    let policies = rig.call("DescribeScalingPolicies", web.clone());
    assert_eq!(policies["ScalingPolicies"].as_array().unwrap().len(), 1);
    assert_eq!(
        policies["ScalingPolicies"][0]["ResourceId"],
        "service/default/web"
    );
    let page = rig.call(
        "DescribeScalingPolicies",
        json!({"ServiceNamespace": "ecs", "MaxResults": 1}),
    );
    assert_eq!(page["ScalingPolicies"].as_array().unwrap().len(), 1);
    let rest = rig.call(
        "DescribeScalingPolicies",
        json!({"ServiceNamespace": "ecs", "NextToken": page["NextToken"]}),
    );
    assert_eq!(rest["ScalingPolicies"].as_array().unwrap().len(), 1);
    assert_ne!(
        rest["ScalingPolicies"][0]["ResourceId"],
        page["ScalingPolicies"][0]["ResourceId"]
    );
    let other_dimension =
        json!({"ServiceNamespace": "ecs", "ScalableDimension": "ecs:service:Other"});
    for (op, list) in [
        ("DescribeScalableTargets", "ScalableTargets"),
        ("DescribeScalingPolicies", "ScalingPolicies"),
        ("DescribeScheduledActions", "ScheduledActions"),
        ("DescribeScalingActivities", "ScalingActivities"),
    ] {
        let none = rig.call(op, other_dimension.clone());
        assert_eq!(none[list], json!([]), "{op}");
        let other_ns = rig.call(op, json!({"ServiceNamespace": "ec2"}));
        assert_eq!(other_ns[list], json!([]), "{op}");
    }
    let targets = rig.call(
        "DescribeScalableTargets",
        json!({"ServiceNamespace": "ecs", "ResourceIds": ["service/default/api"]}),
    );
    assert_eq!(targets["ScalableTargets"].as_array().unwrap().len(), 1);
}
