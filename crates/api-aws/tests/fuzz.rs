//! Property tests of the AWS body decoders with arbitrary input: CloudWatch's CBOR, awsJson and
//! query bodies and ELBv2's query bodies. Each answers with a status (4xx for bad input), never a
//! panic or a stack overflow. `PROPTEST_CASES` sets the number of cases (256 by default).

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failed test

use berth_api_aws::{cloudwatch, elbv2};
use berth_elb::ElbState;
use berth_metrics::{CloudWatch, Retention};
use berth_model::Arns;
use proptest::prelude::*;
use std::sync::OnceLock;

const CW_OPS: &[&str] = &[
    "PutMetricData",
    "GetMetricStatistics",
    "GetMetricData",
    "ListMetrics",
    "PutMetricAlarm",
    "PutCompositeAlarm",
    "DescribeAlarms",
    "DescribeAlarmHistory",
    "SetAlarmState",
    "DeleteAlarms",
    "PutDashboard",
    "GetDashboard",
    "ListDashboards",
    "DeleteDashboards",
    "Nope",
];

const ELB_ACTIONS: &[&str] = &[
    "CreateLoadBalancer",
    "DescribeLoadBalancers",
    "DeleteLoadBalancer",
    "ModifyLoadBalancerAttributes",
    "CreateTargetGroup",
    "ModifyTargetGroup",
    "DeleteTargetGroup",
    "ModifyTargetGroupAttributes",
    "CreateListener",
    "ModifyListener",
    "CreateRule",
    "ModifyRule",
    "SetRulePriorities",
    "RegisterTargets",
    "DeregisterTargets",
    "DescribeTargetHealth",
    "AddTags",
    "RemoveTags",
    "DescribeTags",
];

const KEYS: &[&str] = &[
    "Name",
    "Namespace",
    "MetricName",
    "MetricData",
    "Value",
    "Values",
    "Timestamp",
    "Dimensions",
    "Statistics",
    "StartTime",
    "EndTime",
    "Period",
    "Threshold",
    "EvaluationPeriods",
    "ComparisonOperator",
    "AlarmName",
    "AlarmRule",
    "DashboardBody",
    "MetricDataQueries",
    "Expression",
    "Id",
    "StateValue",
    "Port",
    "Protocol",
    "LoadBalancerArn",
    "TargetGroupArn",
    "ListenerArn",
    "Priority",
    "Conditions",
    "Actions",
    "Field",
    "Type",
    "DefaultActions",
    "Targets",
    "Subnets",
    "Attributes",
    "Key",
    "HealthCheckPath",
    "Matcher",
    "HttpCode",
    "RedirectConfig",
    "FixedResponseConfig",
    "StatusCode",
    "Host",
    "Path",
    "Query",
    "ContentType",
    "MessageBody",
    "TargetGroups",
    "Weight",
    "member",
];

fn cw() -> &'static CloudWatch {
    static CW: OnceLock<(tempfile::TempDir, CloudWatch)> = OnceLock::new();
    &CW.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        let cw = CloudWatch::open(dir.path(), Retention::default()).unwrap();
        (dir, cw)
    })
    .1
}

/// Arbitrary JSON whose object keys are mostly the APIs' own member names.
fn json_value() -> impl Strategy<Value = serde_json::Value> {
    use serde_json::Value;
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<f64>()
            .prop_map(|f| serde_json::Number::from_f64(f).map_or(Value::Null, Value::Number)),
        "\\PC{0,16}".prop_map(Value::String),
        prop::sample::select(CW_OPS).prop_map(|s| Value::String(s.to_string())),
    ];
    leaf.prop_recursive(4, 48, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::vec(
                (
                    prop_oneof![
                        prop::sample::select(KEYS).prop_map(str::to_string),
                        "\\PC{0,8}"
                    ],
                    inner
                ),
                0..6
            )
            .prop_map(|kv| Value::Object(kv.into_iter().collect())),
        ]
    })
}

/// A form body of dotted keys built from the APIs' member names, with arbitrary values.
fn form_body(
    actions: &'static [&'static str],
    version: &'static str,
) -> impl Strategy<Value = Vec<u8>> {
    let key = prop::collection::vec(
        prop_oneof![
            prop::sample::select(KEYS).prop_map(str::to_string),
            (0u32..12).prop_map(|n| n.to_string()),
            "\\PC{0,6}",
        ],
        1..6,
    )
    .prop_map(|segments| segments.join("."));
    (
        prop::sample::select(actions),
        prop::collection::vec((key, "\\PC{0,24}"), 0..16),
    )
        .prop_map(move |(action, pairs)| {
            let mut all = vec![
                ("Action".to_string(), action.to_string()),
                ("Version".to_string(), version.to_string()),
            ];
            all.extend(pairs);
            serde_urlencoded::to_string(all).unwrap().into_bytes()
        })
}

fn assert_answer(status: u16, what: &str) {
    assert!(
        (200..500).contains(&status),
        "{what}: status {status} (a client error was expected for bad input)"
    );
}

proptest! {
    #[test]
    fn cloudwatch_cbor_bytes_never_panic(op in prop::sample::select(CW_OPS), body in prop::collection::vec(any::<u8>(), 0..256)) {
        let (status, _, _) = cloudwatch::handle_cbor(cw(), op, &body);
        assert_answer(status, op);
    }

    #[test]
    fn cloudwatch_cbor_documents_never_panic(op in prop::sample::select(CW_OPS), v in json_value()) {
        let body = cloudwatch::codec::value_to_cbor(&v);
        let (status, _, _) = cloudwatch::handle_cbor(cw(), op, &body);
        assert_answer(status, op);
    }

    #[test]
    fn cloudwatch_json_never_panics(op in prop::sample::select(CW_OPS), v in json_value(), junk in prop::collection::vec(any::<u8>(), 0..64)) {
        let (status, _, _) = cloudwatch::handle_json(cw(), op, v.to_string().as_bytes());
        assert_answer(status, op);
        let (status, _, _) = cloudwatch::handle_json(cw(), op, &junk);
        assert_answer(status, op);
    }

    #[test]
    fn cloudwatch_query_never_panics(body in form_body(CW_OPS, "2010-08-01"), junk in prop::collection::vec(any::<u8>(), 0..64)) {
        let (status, _, _) = cloudwatch::handle_query(cw(), &body);
        assert_answer(status, "query");
        let (status, _, _) = cloudwatch::handle_query(cw(), &junk);
        assert_answer(status, "query");
    }

    #[test]
    fn elbv2_query_never_panics(bodies in prop::collection::vec(form_body(ELB_ACTIONS, "2015-12-01"), 1..4), junk in prop::collection::vec(any::<u8>(), 0..64)) {
        let mut state = ElbState::default();
        for body in bodies.iter().chain(std::iter::once(&junk)) {
            let (r, _) = elbv2::handle_elbv2(&mut state, &Arns::default(), body, "rid", 1.0e9);
            assert_answer(r.status, "elbv2");
        }
    }
}

#[test]
fn deep_keys_and_documents_are_refused_without_overflowing() {
    let deep_key = format!("Action=DescribeTags&{}=x", vec!["a"; 200_000].join("."));
    let (r, _) = elbv2::handle_elbv2(
        &mut ElbState::default(),
        &Arns::default(),
        deep_key.as_bytes(),
        "rid",
        0.0,
    );
    assert_eq!(r.status, 400, "{}", r.body);
    assert!(r.body.contains("nested"), "{}", r.body);
    let deep_form = format!(
        "Action=ListMetrics&Version=2010-08-01&{}=x",
        vec!["a"; 200_000].join(".")
    );
    let (status, _, body) = cloudwatch::handle_query(cw(), deep_form.as_bytes());
    assert_eq!(status, 400, "{}", String::from_utf8_lossy(&body));
    let deep_json = "[".repeat(100_000);
    let (status, _, _) = cloudwatch::handle_json(cw(), "ListMetrics", deep_json.as_bytes());
    assert_eq!(status, 400);
    // CBOR: 100000 nested one-element arrays (0x81).
    let mut deep_cbor = vec![0x81u8; 100_000];
    deep_cbor.push(0x00);
    let (status, _, _) = cloudwatch::handle_cbor(cw(), "ListMetrics", &deep_cbor);
    assert_eq!(status, 400);
}
