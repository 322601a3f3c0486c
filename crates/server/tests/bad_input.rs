//! Bad input at the server's edge, over real HTTP to an in-process server on 127.0.0.1: arbitrary
//! JSON bodies for every awsJson operation (property tests), oversized bodies, deeply nested
//! JSON, names with path traversal and header injection. Bad input gets a 4xx with a message
//! naming the field, never a 5xx, a panic or a hang, and the server keeps serving.
//! `PROPTEST_CASES` sets the number of generated cases (256 by default).

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failed test

use proptest::prelude::*;
use serde_json::{json, Value};
use std::io::{Read, Write};
use std::sync::OnceLock;
use std::time::Duration;

/// The address of one server shared by the tests of this binary.
fn server() -> &'static str {
    static ADDR: OnceLock<String> = OnceLock::new();
    ADDR.get_or_init(|| {
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let rt = tokio::runtime::Runtime::new().unwrap();
            rt.block_on(async move {
                // Kept for the life of the test process.
                let dir = Box::leak(Box::new(tempfile::tempdir().unwrap()));
                let state = dir.path().to_path_buf();
                let config = berth_control::ControlConfig {
                    state_dir: state.clone(),
                    arns: berth_model::Arns::default(),
                    listen_host: "127.0.0.1".into(),
                };
                let cp = berth_control::ControlPlane::open(config).unwrap();
                let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
                let addr = listener.local_addr().unwrap();
                let registry = berth_registry::Registry::open(
                    state.join("registry"),
                    berth_model::Arns::default(),
                    addr.to_string(),
                )
                .unwrap();
                let cloudwatch = berth_metrics::CloudWatch::open(
                    state.join("cloudwatch"),
                    berth_metrics::Retention::default(),
                )
                .unwrap();
                let autoscaling = berth_autoscaling::AutoScaling::open(
                    state.join("autoscaling"),
                    cp.clone(),
                    cloudwatch.clone(),
                )
                .unwrap();
                let secrets = berth_secrets::Secrets::open(
                    state.join("secrets"),
                    berth_secrets::MasterKeySource::StateDir,
                )
                .unwrap();
                // `..Default::default()` keeps this compiling as backends are added.
                #[allow(clippy::needless_update)]
                let backends = berth_server::Backends {
                    registry: Some(registry),
                    cloudwatch: Some(cloudwatch),
                    autoscaling: Some(autoscaling),
                    secrets: Some(secrets),
                    ..Default::default()
                };
                let app = berth_server::router(cp, backends, berth_server::Endpoints::default());
                tx.send(addr.to_string()).unwrap();
                axum::serve(listener, app).await.unwrap();
            });
        });
        rx.recv().unwrap()
    })
}

/// Sends raw bytes, returns (status, body) of the answer; status 0 when the server closed without
/// answering.
fn raw(request: &[u8]) -> (u16, String) {
    let mut s = std::net::TcpStream::connect(server()).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    let _ = s.write_all(request);
    let mut resp = Vec::new();
    if let Err(e) = s.read_to_end(&mut resp) {
        assert!(
            e.kind() != std::io::ErrorKind::WouldBlock && e.kind() != std::io::ErrorKind::TimedOut,
            "no answer within 20 s"
        );
    }
    let text = String::from_utf8_lossy(&resp).to_string();
    let status = text
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let body = text
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default();
    (status, body)
}

fn post(headers: &str, body: &[u8]) -> (u16, String) {
    let mut req = format!(
        "POST / HTTP/1.1\r\nHost: x\r\n{headers}Content-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    )
    .into_bytes();
    req.extend_from_slice(body);
    raw(&req)
}

fn aws_json(target: &str, body: &[u8]) -> (u16, String) {
    post(
        &format!("X-Amz-Target: {target}\r\nContent-Type: application/x-amz-json-1.1\r\n"),
        body,
    )
}

fn query(body: &str) -> (u16, String) {
    post(
        "Content-Type: application/x-www-form-urlencoded\r\n",
        body.as_bytes(),
    )
}

const ECS: &str = "AmazonEC2ContainerServiceV20141113";
const LOGS: &str = "Logs_20140328";
const ECR: &str = "AmazonEC2ContainerRegistry_V20150921";
const SECRETS: &str = "secretsmanager";
const SCALING: &str = "AnyScaleFrontendService";
const CLOUDWATCH: &str = "GraniteServiceVersion20100801";

const TARGETS: &[(&str, &[&str])] = &[
    (
        ECS,
        &[
            "CreateCluster",
            "DescribeClusters",
            "ListClusters",
            "DeleteCluster",
            "RegisterTaskDefinition",
            "DescribeTaskDefinition",
            "ListTaskDefinitions",
            "ListTaskDefinitionFamilies",
            "DeregisterTaskDefinition",
            "CreateService",
            "UpdateService",
            "DescribeServices",
            "ListServices",
            "DeleteService",
            "RunTask",
            "StopTask",
            "ListTasks",
            "DescribeTasks",
            "ListTagsForResource",
            "ListContainerInstances",
            "ListServiceDeployments",
            "DescribeServiceDeployments",
        ],
    ),
    (
        LOGS,
        &[
            "CreateLogGroup",
            "DeleteLogGroup",
            "DescribeLogGroups",
            "CreateLogStream",
            "DeleteLogStream",
            "DescribeLogStreams",
            "PutLogEvents",
            "GetLogEvents",
            "FilterLogEvents",
            "PutRetentionPolicy",
            "DeleteRetentionPolicy",
            "PutMetricFilter",
            "DeleteMetricFilter",
            "DescribeMetricFilters",
            "TestMetricFilter",
            "StartQuery",
            "GetQueryResults",
            "StopQuery",
            "DescribeQueries",
        ],
    ),
    (
        ECR,
        &[
            "CreateRepository",
            "DescribeRepositories",
            "DeleteRepository",
            "DescribeImages",
            "ListImages",
            "BatchDeleteImage",
            "PutLifecyclePolicy",
            "GetLifecyclePolicy",
            "DeleteLifecyclePolicy",
            "StartLifecyclePolicyPreview",
            "GetLifecyclePolicyPreview",
            "PutImageTagMutability",
            "PutImageScanningConfiguration",
            "GetAuthorizationToken",
        ],
    ),
    (
        SECRETS,
        &[
            "CreateSecret",
            "GetSecretValue",
            "PutSecretValue",
            "UpdateSecret",
            "DescribeSecret",
            "ListSecrets",
            "ListSecretVersionIds",
            "DeleteSecret",
            "RestoreSecret",
            "RotateSecret",
            "CancelRotateSecret",
            "UpdateSecretVersionStage",
            "TagResource",
            "UntagResource",
            "GetRandomPassword",
        ],
    ),
    (
        SCALING,
        &[
            "RegisterScalableTarget",
            "DeregisterScalableTarget",
            "DescribeScalableTargets",
            "PutScalingPolicy",
            "DescribeScalingPolicies",
            "DeleteScalingPolicy",
            "PutScheduledAction",
            "DescribeScheduledActions",
            "DeleteScheduledAction",
            "DescribeScalingActivities",
        ],
    ),
    (
        CLOUDWATCH,
        &["PutMetricData", "GetMetricData", "PutMetricAlarm"],
    ),
];

/// Member names the operations read, so generated bodies reach past the first check.
const KEYS: &[&str] = &[
    "cluster",
    "clusterName",
    "family",
    "containerDefinitions",
    "name",
    "image",
    "command",
    "environment",
    "secrets",
    "valueFrom",
    "portMappings",
    "containerPort",
    "linuxParameters",
    "capabilities",
    "add",
    "tmpfs",
    "serviceName",
    "service",
    "services",
    "taskDefinition",
    "desiredCount",
    "count",
    "task",
    "tasks",
    "maxResults",
    "nextToken",
    "deploymentConfiguration",
    "loadBalancers",
    "logGroupName",
    "logStreamName",
    "logEvents",
    "message",
    "timestamp",
    "filterPattern",
    "queryString",
    "startTime",
    "endTime",
    "limit",
    "retentionInDays",
    "repositoryName",
    "imageIds",
    "imageTag",
    "lifecyclePolicyText",
    "Name",
    "SecretId",
    "SecretString",
    "SecretBinary",
    "VersionStage",
    "RotationRules",
    "PasswordLength",
    "ServiceNamespace",
    "ResourceId",
    "ScalableDimension",
    "MinCapacity",
    "MaxCapacity",
    "PolicyName",
    "PolicyType",
    "Schedule",
    "MetricData",
    "MetricDataQueries",
    "Namespace",
];

fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        (0i64..5).prop_map(Value::from),
        any::<f64>()
            .prop_map(|f| serde_json::Number::from_f64(f).map_or(Value::Null, Value::Number)),
        "\\PC{0,16}".prop_map(Value::String),
        "[a-z0-9/._-]{1,12}".prop_map(Value::String),
    ];
    leaf.prop_recursive(4, 48, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..5).prop_map(Value::Array),
            prop::collection::vec(
                (
                    prop_oneof![
                        3 => prop::sample::select(KEYS).prop_map(str::to_string),
                        1 => "\\PC{0,8}",
                    ],
                    inner
                ),
                0..6
            )
            .prop_map(|kv| Value::Object(kv.into_iter().collect())),
        ]
    })
}

fn target() -> impl Strategy<Value = String> {
    (0..TARGETS.len())
        .prop_flat_map(|i| prop::sample::select(TARGETS[i].1).prop_map(move |op| (i, op)))
        .prop_map(|(i, op)| format!("{}.{op}", TARGETS[i].0))
}

proptest! {
    #![proptest_config(ProptestConfig { failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_json_bodies_get_answers_not_server_errors(target in target(), body in json_value()) {
        let (status, text) = aws_json(&target, body.to_string().as_bytes());
        prop_assert!(status != 0 && status < 500, "{target} {body}: {status} {text}");
    }

    #[test]
    fn arbitrary_bytes_get_answers_not_server_errors(target in target(), body in prop::collection::vec(any::<u8>(), 0..256)) {
        let (status, text) = aws_json(&target, &body);
        prop_assert!(status != 0 && status < 500, "{target}: {status} {text}");
        let (status, text) = post("", &body);
        prop_assert!(status != 0 && status < 500, "no target: {status} {text}");
    }
}

#[test]
fn oversized_bodies_get_413() {
    let big = vec![b' '; 3 * 1024 * 1024];
    for target in [
        format!("{ECS}.ListClusters"),
        format!("{LOGS}.PutLogEvents"),
    ] {
        let (status, _) = aws_json(&target, &big);
        assert_eq!(status, 413, "{target}");
    }
    let (status, _) = query(&"Action=DescribeLoadBalancers&Version=2015-12-01&x=".repeat(70_000));
    assert_eq!(status, 413);
    let (status, _) = raw(
        format!(
            "POST /agent/v1/report HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{}",
            big.len(),
            String::from_utf8_lossy(&big)
        )
        .as_bytes(),
    );
    assert_eq!(status, 413);
    assert_eq!(aws_json(&format!("{ECS}.ListClusters"), b"{}").0, 200);
}

#[test]
fn deeply_nested_json_gets_400_not_a_stack_overflow() {
    let deep = "[".repeat(100_000);
    for (service, ops) in TARGETS {
        let target = format!("{service}.{}", ops[0]);
        let (status, body) = aws_json(&target, deep.as_bytes());
        assert_eq!(status, 400, "{target}: {body}");
    }
    let deep_object = format!("{}1{}", "{\"a\":".repeat(100_000), "}".repeat(100_000));
    let (status, _) = aws_json(
        &format!("{ECS}.RegisterTaskDefinition"),
        deep_object.as_bytes(),
    );
    assert_eq!(status, 400);
    let (status, _) = raw(
        format!(
            "POST /agent/v1/logs HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{deep}",
            deep.len()
        )
        .as_bytes(),
    );
    assert!((400..500).contains(&status), "{status}");
    assert_eq!(aws_json(&format!("{ECS}.ListClusters"), b"{}").0, 200);
}

#[test]
fn names_with_path_traversal_get_400_naming_the_field() {
    let td = |family: &str| json!({"family": family, "containerDefinitions": [{"name": "app", "image": "process:///bin/true"}]});
    let cases: Vec<(String, Value, &str)> = vec![
        (
            format!("{ECS}.CreateCluster"),
            json!({"clusterName": "../x"}),
            "clusterName",
        ),
        (
            format!("{ECS}.RegisterTaskDefinition"),
            td("../../etc"),
            "family",
        ),
        (
            format!("{ECS}.RegisterTaskDefinition"),
            json!({"family": "f", "containerDefinitions": [{"name": "../app", "image": "i"}]}),
            "containerDefinitions[0].name",
        ),
        (
            format!("{ECS}.CreateService"),
            json!({"serviceName": "../svc", "taskDefinition": "f"}),
            "serviceName",
        ),
        (
            format!("{LOGS}.CreateLogGroup"),
            json!({"logGroupName": "../../x"}),
            "logGroupName",
        ),
        (
            format!("{LOGS}.CreateLogGroup"),
            json!({"logGroupName": "/ecs/../x"}),
            "logGroupName",
        ),
        (
            format!("{LOGS}.CreateLogStream"),
            json!({"logGroupName": "g", "logStreamName": "../x"}),
            "logStreamName",
        ),
        (
            format!("{ECR}.CreateRepository"),
            json!({"repositoryName": "../x"}),
            "repositoryName",
        ),
        (
            format!("{ECR}.CreateRepository"),
            json!({"repositoryName": "a/../../b"}),
            "repositoryName",
        ),
        (
            format!("{SECRETS}.CreateSecret"),
            json!({"Name": "../x", "SecretString": "v"}),
            "Name",
        ),
        (
            format!("{SECRETS}.CreateSecret"),
            json!({"Name": "db/../../x", "SecretString": "v"}),
            "Name",
        ),
    ];
    for (target, body, field) in cases {
        let (status, text) = aws_json(&target, body.to_string().as_bytes());
        assert_eq!(status, 400, "{target} {body}: {text}");
        assert!(
            text.contains(field),
            "{target}: the message names {field}: {text}"
        );
    }
    for (action, field) in [
        ("CreateLoadBalancer&Name=..%2Fx", "Name"),
        (
            "CreateTargetGroup&Name=..%2Fx&Protocol=HTTP&Port=80",
            "Name",
        ),
    ] {
        let (status, text) = query(&format!("Action={action}&Version=2015-12-01"));
        assert_eq!(status, 400, "{action}: {text}");
        assert!(text.contains(field), "{action}: {text}");
    }
}

#[test]
fn huge_counts_are_refused_before_anything_is_scheduled() {
    let (status, text) = aws_json(
        &format!("{ECS}.CreateService"),
        json!({"serviceName": "huge", "taskDefinition": "nothing", "desiredCount": 4_000_000_000u32})
            .to_string()
            .as_bytes(),
    );
    assert_eq!(status, 400, "{text}");
    assert!(text.contains("desiredCount: expected 0-5000"), "{text}");
    let (status, text) = aws_json(
        &format!("{ECS}.UpdateService"),
        json!({"service": "huge", "desiredCount": 5001})
            .to_string()
            .as_bytes(),
    );
    assert_eq!(status, 400, "{text}");
    assert!(text.contains("desiredCount"), "{text}");
}

#[test]
fn header_injection_is_refused() {
    // CR/LF inside a header value never reaches a handler.
    for request in [
        "POST / HTTP/1.1\r\nHost: x\r\nX-Amz-Target: AmazonEC2ContainerServiceV20141113.ListClusters\rSet-Cookie: a=b\r\nContent-Length: 2\r\n\r\n{}",
        "GET /healthz HTTP/1.1\r\nHost: x\r\nX-Forwarded-For: 1.2.3.4\n\rX-Evil: 1\r\n\r\n",
        "GET /healthz HTTP/1.1\r\nHost: x\r\nX-Berth-Actor: a\0b\r\n\r\n",
    ] {
        let (status, _) = raw(request.as_bytes());
        assert!(
            status == 0 || (400..500).contains(&status),
            "{request:?}: {status}"
        );
    }
    // A redirect or fixed response that would write CR/LF into the proxy's answers is refused
    // when it is created.
    let (status, text) = query("Action=CreateLoadBalancer&Version=2015-12-01&Name=inject");
    assert_eq!(status, 200, "{text}");
    let lb = between(&text, "LoadBalancerArn");
    for action in [
        "Type=redirect&DefaultActions.member.1.RedirectConfig.StatusCode=HTTP_301&DefaultActions.member.1.RedirectConfig.Host=a.example%0D%0ASet-Cookie%3A+x%3D1",
        "Type=redirect&DefaultActions.member.1.RedirectConfig.StatusCode=HTTP_302&DefaultActions.member.1.RedirectConfig.Path=%2Fa%0D%0AX-Evil%3A+1",
        "Type=redirect&DefaultActions.member.1.RedirectConfig.StatusCode=HTTP_302&DefaultActions.member.1.RedirectConfig.Query=a%3D1%0AX-Evil%3A+1",
        "Type=fixed-response&DefaultActions.member.1.FixedResponseConfig.StatusCode=200&DefaultActions.member.1.FixedResponseConfig.ContentType=text%2Fplain%0D%0AX-Evil%3A+1",
    ] {
        let body = format!(
            "Action=CreateListener&Version=2015-12-01&LoadBalancerArn={}&Protocol=HTTP&Port=18080&DefaultActions.member.1.{action}",
            urlencode(lb)
        );
        let (status, text) = query(&body);
        assert_eq!(status, 400, "{action}: {text}");
        assert!(text.contains("DefaultActions[0]"), "{action}: {text}");
    }
}

fn between<'a>(text: &'a str, tag: &str) -> &'a str {
    let start = text.find(&format!("<{tag}>")).unwrap() + tag.len() + 2;
    let end = text[start..].find(&format!("</{tag}>")).unwrap() + start;
    &text[start..end]
}

fn urlencode(s: &str) -> String {
    serde_urlencoded::to_string([("x", s)]).unwrap()[2..].to_string()
}
