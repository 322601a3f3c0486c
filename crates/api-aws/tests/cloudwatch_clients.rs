//! End-to-end: the real `aws` CLI and boto3 against berth's CloudWatch protocols, served by a
//! tiny in-test HTTP server on 127.0.0.1:0 that routes the way the berth server does.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failed test

use berth_api_aws::cloudwatch::{self, cbor_operation};
use berth_metrics::{CloudWatch, Retention};
use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use serde_json::Value;
use std::collections::BTreeMap;
use std::process::Command;
use std::sync::{Arc, Mutex};

type Seen = Arc<Mutex<BTreeMap<String, usize>>>;

struct Server {
    url: String,
    seen: Seen,
    _dir: tempfile::TempDir,
    _runtime: tokio::runtime::Runtime,
}

async fn route(
    cw: CloudWatch,
    seen: Seen,
    req: hyper::Request<hyper::body::Incoming>,
) -> Result<hyper::Response<Full<Bytes>>, std::convert::Infallible> {
    let path = req.uri().path().to_string();
    let target = req
        .headers()
        .get("x-amz-target")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let body = req
        .into_body()
        .collect()
        .await
        .map(|b| b.to_bytes())
        .unwrap_or_default();
    let (protocol, (status, content_type, out)) = if let Some(op) = cbor_operation(&path) {
        (
            format!("cbor:{op}"),
            cloudwatch::handle_cbor(&cw, op, &body),
        )
    } else if let Some(op) = target
        .as_deref()
        .and_then(|t| t.strip_prefix("GraniteServiceVersion20100801."))
    {
        (
            format!("json:{op}"),
            cloudwatch::handle_json(&cw, op, &body),
        )
    } else {
        ("query".to_string(), cloudwatch::handle_query(&cw, &body))
    };
    *seen.lock().unwrap().entry(protocol).or_default() += 1;
    let mut resp = hyper::Response::builder()
        .status(status)
        .header("content-type", content_type)
        .header("x-amzn-requestid", "berth-test");
    if content_type == cloudwatch::CBOR_CONTENT_TYPE {
        resp = resp.header("smithy-protocol", "rpc-v2-cbor");
    }
    Ok(resp.body(Full::new(Bytes::from(out))).unwrap())
}

fn start() -> Server {
    let dir = tempfile::tempdir().unwrap();
    let cw = CloudWatch::open(dir.path(), Retention::default()).unwrap();
    let seen: Seen = Arc::default();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let listener = runtime
        .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
        .unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let (cw2, seen2) = (cw.clone(), seen.clone());
    runtime.spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                return;
            };
            let (cw, seen) = (cw2.clone(), seen2.clone());
            tokio::spawn(async move {
                let service =
                    hyper::service::service_fn(move |req| route(cw.clone(), seen.clone(), req));
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(hyper_util::rt::TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    let (_stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    runtime.spawn(async move {
        let _keep = _stop_tx;
        cw.alarms.clone().run(stop_rx).await;
    });
    Server {
        url,
        seen,
        _dir: dir,
        _runtime: runtime,
    }
}

fn require_aws() {
    let found = Command::new("aws")
        .arg("--version")
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false);
    assert!(found, "the `aws` CLI is required for these end-to-end tests: install awscli (pip install awscli) so that `aws --version` works");
}

fn aws(server: &Server, args: &[&str]) -> Value {
    let out = Command::new("aws")
        .args([
            "cloudwatch",
            "--endpoint-url",
            &server.url,
            "--output",
            "json",
        ])
        .args(args)
        .env("AWS_ACCESS_KEY_ID", "test")
        .env("AWS_SECRET_ACCESS_KEY", "test")
        .env("AWS_DEFAULT_REGION", "us-east-1")
        .env_remove("AWS_PROFILE")
        .output()
        .expect("run aws");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "aws {args:?} failed: {}\n{stdout}",
        String::from_utf8_lossy(&out.stderr)
    );
    if stdout.trim().is_empty() {
        Value::Null
    } else {
        serde_json::from_str(&stdout)
            .unwrap_or_else(|e| panic!("aws {args:?}: not JSON ({e}): {stdout}"))
    }
}

fn aws_fails(server: &Server, args: &[&str]) -> String {
    let out = Command::new("aws")
        .args(["cloudwatch", "--endpoint-url", &server.url])
        .args(args)
        .env("AWS_ACCESS_KEY_ID", "test")
        .env("AWS_SECRET_ACCESS_KEY", "test")
        .env("AWS_DEFAULT_REGION", "us-east-1")
        .output()
        .expect("run aws");
    assert!(!out.status.success(), "aws {args:?} should fail");
    String::from_utf8_lossy(&out.stderr).to_string()
}

fn iso(offset_seconds: i64) -> String {
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
        + offset_seconds;
    berth_api_aws::elbv2::xml::iso8601(t as f64)
}

#[test]
fn aws_cli_metrics_alarms_and_dashboards() {
    require_aws();
    let s = start();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as f64;
    let ts = berth_api_aws::elbv2::xml::iso8601(now - 30.0);
    let ts_end = berth_api_aws::elbv2::xml::iso8601(now - 29.0);
    for v in ["10", "20", "30"] {
        aws(
            &s,
            &[
                "put-metric-data",
                "--namespace",
                "Berth/Test",
                "--metric-name",
                "Latency",
                "--unit",
                "Milliseconds",
                "--dimensions",
                "Service=web",
                "--timestamp",
                &ts,
                "--value",
                v,
            ],
        );
    }
    aws(
        &s,
        &[
            "put-metric-data",
            "--namespace",
            "Berth/Test",
            "--metric-data",
            &format!(
                r#"[{{"MetricName":"Requests","Timestamp":"{ts}","StatisticValues":{{"SampleCount":4,"Sum":10,"Minimum":1,"Maximum":4}}}}]"#
            ),
        ],
    );

    let stats = aws(
        &s,
        &[
            "get-metric-statistics",
            "--namespace",
            "Berth/Test",
            "--metric-name",
            "Latency",
            "--dimensions",
            "Name=Service,Value=web",
            "--start-time",
            &iso(-120),
            "--end-time",
            &iso(60),
            "--period",
            "60",
            "--statistics",
            "Average",
            "Maximum",
            "SampleCount",
        ],
    );
    let dps = stats["Datapoints"].as_array().unwrap();
    let total: f64 = dps.iter().map(|d| d["SampleCount"].as_f64().unwrap()).sum();
    assert_eq!(total, 3.0, "{stats}");
    assert!(dps.iter().any(|d| d["Maximum"] == 30.0), "{stats}");
    assert_eq!(dps[0]["Unit"], "Milliseconds");
    // awscli 1.x prints wire timestamps unchanged: epoch seconds for awsJson.
    assert!(
        dps[0]["Timestamp"].as_f64().is_some_and(|t| t > 1.7e9),
        "{stats}"
    );

    let ext = aws(
        &s,
        &[
            "get-metric-statistics",
            "--namespace",
            "Berth/Test",
            "--metric-name",
            "Latency",
            "--dimensions",
            "Name=Service,Value=web",
            "--start-time",
            &ts,
            "--end-time",
            &ts_end,
            "--period",
            "1",
            "--extended-statistics",
            "p50",
        ],
    );
    let p50 = ext["Datapoints"][0]["ExtendedStatistics"]["p50"]
        .as_f64()
        .unwrap_or_else(|| panic!("{ext}"));
    assert!((p50 - 20.0).abs() <= 0.2, "{ext}");

    let queries = r#"[{"Id":"r","MetricStat":{"Metric":{"Namespace":"Berth/Test","MetricName":"Requests"},"Period":60,"Stat":"Sum"}}]"#;
    let data = aws(
        &s,
        &[
            "get-metric-data",
            "--metric-data-queries",
            queries,
            "--start-time",
            &iso(-300),
            "--end-time",
            &iso(60),
        ],
    );
    let values: f64 = data["MetricDataResults"][0]["Values"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_f64().unwrap())
        .sum();
    assert_eq!(values, 10.0, "{data}");

    let listed = aws(&s, &["list-metrics", "--namespace", "Berth/Test"]);
    let mut names: Vec<&str> = listed["Metrics"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["MetricName"].as_str().unwrap())
        .collect();
    names.sort();
    assert_eq!(names, vec!["Latency", "Requests"]);
    let filtered = aws(
        &s,
        &["list-metrics", "--dimensions", "Name=Service,Value=web"],
    );
    assert_eq!(filtered["Metrics"].as_array().unwrap().len(), 1);

    aws(
        &s,
        &[
            "put-metric-alarm",
            "--alarm-name",
            "latency-high",
            "--namespace",
            "Berth/Test",
            "--metric-name",
            "Latency",
            "--dimensions",
            "Name=Service,Value=web",
            "--statistic",
            "Maximum",
            "--period",
            "60",
            "--evaluation-periods",
            "3",
            "--datapoints-to-alarm",
            "2",
            "--threshold",
            "80",
            "--comparison-operator",
            "GreaterThanOrEqualToThreshold",
            "--treat-missing-data",
            "notBreaching",
        ],
    );
    let err = aws_fails(
        &s,
        &[
            "put-metric-alarm",
            "--alarm-name",
            "bad",
            "--namespace",
            "N",
            "--metric-name",
            "M",
            "--statistic",
            "Average",
            "--period",
            "45",
            "--evaluation-periods",
            "1",
            "--threshold",
            "1",
            "--comparison-operator",
            "GreaterThanThreshold",
        ],
    );
    assert!(
        err.contains("InvalidParameterValue") && err.contains("Period"),
        "{err}"
    );

    let described = aws(&s, &["describe-alarms", "--alarm-names", "latency-high"]);
    let alarm = &described["MetricAlarms"][0];
    assert_eq!(alarm["AlarmName"], "latency-high");
    assert_eq!(alarm["DatapointsToAlarm"], 2);
    assert_eq!(alarm["TreatMissingData"], "notBreaching");
    assert!(alarm["AlarmArn"]
        .as_str()
        .unwrap()
        .ends_with(":alarm:latency-high"));

    aws(
        &s,
        &[
            "set-alarm-state",
            "--alarm-name",
            "latency-high",
            "--state-value",
            "ALARM",
            "--state-reason",
            "testing by hand",
        ],
    );
    let alarming = aws(
        &s,
        &[
            "describe-alarms",
            "--state-value",
            "ALARM",
            "--alarm-name-prefix",
            "latency",
        ],
    );
    assert_eq!(
        alarming["MetricAlarms"][0]["StateReason"], "testing by hand",
        "{alarming}"
    );
    let err = aws_fails(
        &s,
        &[
            "set-alarm-state",
            "--alarm-name",
            "ghost",
            "--state-value",
            "OK",
            "--state-reason",
            "x",
        ],
    );
    assert!(err.contains("ResourceNotFound"), "{err}");

    aws(
        &s,
        &[
            "put-composite-alarm",
            "--alarm-name",
            "any-trouble",
            "--alarm-rule",
            r#"ALARM("latency-high") OR FALSE"#,
        ],
    );
    let composites = aws(&s, &["describe-alarms", "--alarm-types", "CompositeAlarm"]);
    assert_eq!(
        composites["CompositeAlarms"][0]["AlarmRule"],
        r#"ALARM("latency-high") OR FALSE"#
    );
    assert_eq!(composites["MetricAlarms"].as_array().map_or(0, Vec::len), 0);

    let history = aws(
        &s,
        &["describe-alarm-history", "--alarm-name", "latency-high"],
    );
    let items = history["AlarmHistoryItems"].as_array().unwrap();
    assert!(
        items.iter().any(|i| i["HistoryItemType"] == "StateUpdate"
            && i["HistorySummary"]
                .as_str()
                .is_some_and(|t| t.ends_with(" to ALARM"))),
        "{history}"
    );
    assert!(
        items
            .iter()
            .any(|i| i["HistoryItemType"] == "ConfigurationUpdate"),
        "{history}"
    );

    let body = r#"{"widgets":[{"type":"metric","x":0,"y":0,"width":12,"height":6,"properties":{"metrics":[["Berth/Test","Latency","Service","web"]],"region":"us-east-1"}}]}"#;
    aws(
        &s,
        &[
            "put-dashboard",
            "--dashboard-name",
            "main",
            "--dashboard-body",
            body,
        ],
    );
    let got = aws(&s, &["get-dashboard", "--dashboard-name", "main"]);
    assert_eq!(got["DashboardBody"], body);
    let err = aws_fails(
        &s,
        &[
            "put-dashboard",
            "--dashboard-name",
            "bad",
            "--dashboard-body",
            "{}",
        ],
    );
    assert!(err.contains("widgets"), "{err}");
    let listed = aws(&s, &["list-dashboards"]);
    assert_eq!(listed["DashboardEntries"][0]["DashboardName"], "main");

    let seen = s.seen.lock().unwrap().clone();
    assert!(
        seen.keys().all(|k| k.starts_with("json:")),
        "awscli 1.45 / botocore 1.43 prefer awsJson 1.0: {seen:?}"
    );
    assert!(
        seen.contains_key("json:PutMetricData") && seen.contains_key("json:GetMetricData"),
        "{seen:?}"
    );
}

#[test]
fn boto3_put_metric_data_and_get_metric_data() {
    require_aws();
    let s = start();
    let script = r#"
import boto3, datetime, json, sys
cw = boto3.client("cloudwatch", endpoint_url=sys.argv[1], region_name="us-east-1",
                  aws_access_key_id="test", aws_secret_access_key="test")
now = datetime.datetime.now(datetime.timezone.utc).replace(microsecond=0)
cw.put_metric_data(Namespace="Berth/Py", MetricData=[
    {"MetricName": "Hits", "Value": v, "Timestamp": now - datetime.timedelta(seconds=10 - i), "StorageResolution": 1}
    for i, v in enumerate([5.0, 7.0, 9.0])])
out = cw.get_metric_data(StartTime=now - datetime.timedelta(minutes=5), EndTime=now + datetime.timedelta(minutes=1),
    MetricDataQueries=[{"Id": "h", "MetricStat": {"Metric": {"Namespace": "Berth/Py", "MetricName": "Hits"}, "Period": 1, "Stat": "Maximum"}}],
    ScanBy="TimestampAscending")
r = out["MetricDataResults"][0]
print(json.dumps({"values": r["Values"], "n_ts": len(r["Timestamps"]), "ts_type": type(r["Timestamps"][0]).__name__}))
"#;
    let out = Command::new("python3")
        .arg("-c")
        .arg(script)
        .arg(&s.url)
        .output()
        .expect("run python3");
    assert!(
        out.status.success(),
        "boto3 script failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["values"], serde_json::json!([5.0, 7.0, 9.0]));
    assert_eq!(v["n_ts"], 3);
    assert_eq!(v["ts_type"], "datetime");
    let seen = s.seen.lock().unwrap().clone();
    assert_eq!(seen.get("json:GetMetricData"), Some(&1), "{seen:?}");
}
