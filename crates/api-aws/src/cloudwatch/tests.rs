//! In-process tests of the CloudWatch protocols (the real clients are exercised in
//! tests/cloudwatch_clients.rs).

use super::*;
use berth_metrics::Retention;
use serde_json::json;

fn cw() -> (tempfile::TempDir, CloudWatch) {
    let dir = tempfile::tempdir().unwrap();
    let cw = CloudWatch::open(dir.path(), Retention::default()).unwrap();
    (dir, cw)
}

fn json_call(cw: &CloudWatch, op: &str, input: serde_json::Value) -> (u16, serde_json::Value) {
    let (status, ct, body) = handle_json(cw, op, input.to_string().as_bytes());
    assert_eq!(ct, JSON_CONTENT_TYPE);
    (status, serde_json::from_slice(&body).unwrap())
}

#[test]
fn json_put_then_statistics_and_percentiles() {
    let (_d, cw) = cw();
    let t = now().floor();
    let data: Vec<_> = (1..=100).map(|v| json!({"MetricName": "Latency", "Value": v, "Unit": "Milliseconds", "Timestamp": t - 5.0})).collect();
    let (status, _) = json_call(
        &cw,
        "PutMetricData",
        json!({"Namespace": "App", "MetricData": data}),
    );
    assert_eq!(status, 200);
    let (status, out) = json_call(
        &cw,
        "GetMetricStatistics",
        json!({
            "Namespace": "App", "MetricName": "Latency", "StartTime": t - 60.0, "EndTime": t + 1.0, "Period": 61,
            "Statistics": ["Sum", "SampleCount", "Maximum"], "ExtendedStatistics": ["p90"],
        }),
    );
    assert_eq!(status, 200, "{out}");
    let dp = &out["Datapoints"][0];
    assert_eq!(dp["Sum"], 5050.0);
    assert_eq!(dp["SampleCount"], 100.0);
    assert_eq!(dp["Unit"], "Milliseconds");
    let p90 = dp["ExtendedStatistics"]["p90"].as_f64().unwrap();
    assert!((p90 - 90.0).abs() <= 1.0, "p90 {p90}");
}

#[test]
fn errors_have_each_protocols_shape() {
    let (_d, cw) = cw();
    let (status, out) = json_call(
        &cw,
        "PutMetricData",
        json!({"MetricData": [{"Value": "x"}]}),
    );
    assert_eq!(status, 400);
    assert_eq!(out["__type"], "InvalidParameterValue");
    let msg = out["message"].as_str().unwrap();
    for needle in [
        "Namespace",
        "MetricData.member.1.MetricName",
        "MetricData.member.1.Value",
    ] {
        assert!(msg.contains(needle), "{needle} not in {msg}");
    }
    let (status, ct, body) = handle_cbor(
        &cw,
        "GetDashboard",
        &codec::value_to_cbor(&json!({"DashboardName": "nope"})),
    );
    assert_eq!((status, ct), (404, CBOR_CONTENT_TYPE));
    assert_eq!(
        codec::cbor_to_value(&body).unwrap()["__type"],
        "ResourceNotFound"
    );
    let (status, _, body) = handle_query(
        &cw,
        b"Action=DescribeAlarms&Version=2010-08-01&StateValue=BAD",
    );
    assert_eq!(status, 400);
    let text = String::from_utf8(body).unwrap();
    assert!(
        text.contains("<Code>InvalidParameterValue</Code>") && text.contains("StateValue"),
        "{text}"
    );
    let (status, out) = json_call(&cw, "FlyToTheMoon", json!({}));
    assert_eq!(
        (status, out["__type"].as_str()),
        (400, Some("InvalidAction"))
    );
    let (status, _, _) = handle_cbor(&cw, "ListMetrics", &[0xff]);
    assert_eq!(status, 400);
}

#[test]
fn get_metric_data_refuses_expressions_and_orders_newest_first() {
    let (_d, cw) = cw();
    let t = now().floor();
    for (i, v) in [1.0, 2.0, 3.0].iter().enumerate() {
        json_call(
            &cw,
            "PutMetricData",
            json!({"Namespace": "App", "MetricData": [{"MetricName": "N", "Value": v, "Timestamp": t - 3.0 + i as f64}]}),
        );
    }
    let stat =
        json!({"Metric": {"Namespace": "App", "MetricName": "N"}, "Period": 1, "Stat": "Sum"});
    let (status, out) = json_call(
        &cw,
        "GetMetricData",
        json!({"StartTime": t - 10.0, "EndTime": t + 1.0, "MetricDataQueries": [{"Id": "a", "MetricStat": stat}]}),
    );
    assert_eq!(status, 200, "{out}");
    assert_eq!(
        out["MetricDataResults"][0]["Values"],
        json!([3.0, 2.0, 1.0])
    );
    let (status, out) = json_call(
        &cw,
        "GetMetricData",
        json!({"StartTime": t - 10.0, "EndTime": t, "MetricDataQueries": [{"Id": "e", "Expression": "SUM(METRICS())"}]}),
    );
    assert_eq!(status, 400);
    assert!(
        out["message"]
            .as_str()
            .unwrap()
            .contains("metric math is not supported"),
        "{out}"
    );
}

#[test]
fn query_protocol_round_trip() {
    let (_d, cw) = cw();
    let (status, _, body) = handle_query(&cw, b"Action=PutMetricData&Version=2010-08-01&Namespace=Q&MetricData.member.1.MetricName=m&MetricData.member.1.Value=4&MetricData.member.1.Dimensions.member.1.Name=k&MetricData.member.1.Dimensions.member.1.Value=v");
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    let (status, _, body) = handle_query(&cw, b"Action=ListMetrics&Version=2010-08-01&Namespace=Q");
    let text = String::from_utf8(body).unwrap();
    assert_eq!(status, 200);
    assert!(text.contains("<Metrics><member><Namespace>Q</Namespace><MetricName>m</MetricName><Dimensions><member><Name>k</Name><Value>v</Value></member></Dimensions></member></Metrics>"), "{text}");
}

#[test]
fn cbor_paths_name_operations() {
    assert_eq!(
        cbor_operation("/service/GraniteServiceVersion20100801/operation/ListMetrics"),
        Some("ListMetrics")
    );
    assert_eq!(cbor_operation("/service/Other/operation/ListMetrics"), None);
    assert_eq!(
        cbor_operation("/service/GraniteServiceVersion20100801/operation/"),
        None
    );
}
