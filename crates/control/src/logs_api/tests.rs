//! Tests of the CloudWatch Logs operations on an in-memory control plane: shapes, tokens,
//! paging, validation, retention, metric filters and queries.

use super::call;
use crate::state::{ControlConfig, ControlPlane};
use serde_json::{json, Value};

fn cp() -> (tempfile::TempDir, ControlPlane) {
    let dir = tempfile::tempdir().unwrap();
    let config = ControlConfig {
        state_dir: dir.path().into(),
        arns: Default::default(),
        listen_host: "127.0.0.1".into(),
    };
    let cp =
        ControlPlane::with_store(config, Box::new(berth_store::MemoryStore::default())).unwrap();
    (dir, cp)
}

fn ok(cp: &ControlPlane, op: &str, input: Value) -> Value {
    call(cp, op, input.clone()).unwrap_or_else(|e| panic!("{op} {input}: {e}"))
}

fn code(cp: &ControlPlane, op: &str, input: Value) -> (&'static str, String) {
    let e = call(cp, op, input).unwrap_err();
    (e.code, e.message)
}

fn put(cp: &ControlPlane, stream: &str, events: &[(i64, &str)]) -> Value {
    let evs: Vec<Value> = events
        .iter()
        .map(|(t, m)| json!({"timestamp": t, "message": m}))
        .collect();
    ok(
        cp,
        "PutLogEvents",
        json!({"logGroupName": "g", "logStreamName": stream, "logEvents": evs}),
    )
}

fn now() -> i64 {
    crate::logs::now_ms()
}

#[test]
fn groups_and_streams_are_created_described_and_deleted() {
    let (_d, cp) = cp();
    ok(&cp, "CreateLogGroup", json!({"logGroupName": "g"}));
    assert_eq!(
        code(&cp, "CreateLogGroup", json!({"logGroupName": "g"})).0,
        "ResourceAlreadyExistsException"
    );
    assert_eq!(
        code(&cp, "CreateLogGroup", json!({"logGroupName": "bad name!"})).0,
        "InvalidParameterException"
    );
    ok(
        &cp,
        "CreateLogGroup",
        json!({"logGroupName": "/berth/default/web"}),
    );
    let d = ok(
        &cp,
        "DescribeLogGroups",
        json!({"logGroupNamePattern": "DEFAULT"}),
    );
    assert_eq!(d["logGroups"].as_array().unwrap().len(), 1);
    assert!(d["logGroups"][0]["creationTime"].as_i64().unwrap() > 0);
    assert!(d["logGroups"][0].get("retentionInDays").is_none());
    let d = ok(&cp, "DescribeLogGroups", json!({"limit": 1}));
    assert_eq!(d["logGroups"][0]["logGroupName"], "/berth/default/web");
    let d = ok(
        &cp,
        "DescribeLogGroups",
        json!({"limit": 1, "nextToken": d["nextToken"]}),
    );
    assert_eq!(d["logGroups"][0]["logGroupName"], "g");
    assert!(d.get("nextToken").is_none());

    ok(
        &cp,
        "CreateLogStream",
        json!({"logGroupName": "g", "logStreamName": "b"}),
    );
    ok(
        &cp,
        "CreateLogStream",
        json!({"logGroupName": "g", "logStreamName": "a"}),
    );
    assert_eq!(
        code(
            &cp,
            "CreateLogStream",
            json!({"logGroupName": "g", "logStreamName": "a"})
        )
        .0,
        "ResourceAlreadyExistsException"
    );
    assert_eq!(
        code(
            &cp,
            "CreateLogStream",
            json!({"logGroupName": "nope", "logStreamName": "a"})
        )
        .0,
        "ResourceNotFoundException"
    );
    put(&cp, "b", &[(now() - 10, "older")]);
    put(&cp, "a", &[(now(), "newer")]);
    let names = |v: &Value| -> Vec<String> {
        v["logStreams"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s["logStreamName"].as_str().unwrap().to_string())
            .collect()
    };
    let d = ok(&cp, "DescribeLogStreams", json!({"logGroupName": "g"}));
    assert_eq!(names(&d), ["a", "b"]);
    let d = ok(
        &cp,
        "DescribeLogStreams",
        json!({"logGroupName": "g", "orderBy": "LastEventTime", "descending": true, "limit": 1}),
    );
    assert_eq!(names(&d), ["a"]);
    let d = ok(
        &cp,
        "DescribeLogStreams",
        json!({"logGroupName": "g", "orderBy": "LastEventTime", "descending": true, "nextToken": d["nextToken"]}),
    );
    assert_eq!(names(&d), ["b"]);
    assert!(d["logStreams"][0]["lastEventTimestamp"].as_i64().is_some());
    assert_eq!(
        code(
            &cp,
            "DescribeLogStreams",
            json!({"logGroupName": "g", "orderBy": "LastEventTime", "logStreamNamePrefix": "a"})
        )
        .0,
        "InvalidParameterException"
    );
    ok(
        &cp,
        "DeleteLogStream",
        json!({"logGroupName": "g", "logStreamName": "a"}),
    );
    assert_eq!(
        names(&ok(&cp, "DescribeLogStreams", json!({"logGroupName": "g"}))),
        ["b"]
    );
    ok(&cp, "DeleteLogGroup", json!({"logGroupName": "g"}));
    assert_eq!(
        code(&cp, "DeleteLogGroup", json!({"logGroupName": "g"})).0,
        "ResourceNotFoundException"
    );
}

#[test]
fn put_log_events_validates_and_rejects_too_old_and_expired_events() {
    let (_d, cp) = cp();
    ok(&cp, "CreateLogGroup", json!({"logGroupName": "g"}));
    let (c, _) = code(
        &cp,
        "PutLogEvents",
        json!({"logGroupName": "g", "logStreamName": "s", "logEvents": [{"timestamp": 1, "message": "x"}]}),
    );
    assert_eq!(c, "ResourceNotFoundException");
    ok(
        &cp,
        "CreateLogStream",
        json!({"logGroupName": "g", "logStreamName": "s"}),
    );
    let (c, m) = code(
        &cp,
        "PutLogEvents",
        json!({"logGroupName": "g", "logStreamName": "s", "logEvents": [{"timestamp": 2, "message": "x"}, {"timestamp": 1, "message": "y"}]}),
    );
    assert_eq!(c, "InvalidParameterException");
    assert!(m.contains("chronological"), "{m}");
    let (_, m) = code(
        &cp,
        "PutLogEvents",
        json!({"logGroupName": "g", "logStreamName": "s", "logEvents": [{"timestamp": 2}, {"message": "y"}]}),
    );
    assert!(
        m.contains("logEvents[0]") && m.contains("logEvents[1]"),
        "{m}"
    );
    let day = crate::logs::DAY_MS;
    let t = now();
    let (_, m) = code(
        &cp,
        "PutLogEvents",
        json!({"logGroupName": "g", "logStreamName": "s", "logEvents": [{"timestamp": t - 3 * day, "message": "x"}, {"timestamp": t, "message": "y"}]}),
    );
    assert!(m.contains("24 hours"), "{m}");
    let r = put(&cp, "s", &[(t - 20 * day, "ancient")]);
    assert_eq!(
        r["rejectedLogEventsInfo"],
        json!({"tooOldLogEventEndIndex": 1})
    );
    let r = put(&cp, "s", &[(t, "now"), (t + 5 * 3_600_000, "future")]);
    assert_eq!(
        r["rejectedLogEventsInfo"],
        json!({"tooNewLogEventStartIndex": 1})
    );
    let r = put(&cp, "s", &[(t - 3 * day, "old")]);
    assert!(r.get("rejectedLogEventsInfo").is_none());
    ok(
        &cp,
        "PutRetentionPolicy",
        json!({"logGroupName": "g", "retentionInDays": 1}),
    );
    let r = put(
        &cp,
        "s",
        &[(t - 2 * day, "expired"), (t - 2 * day + 1, "expired too")],
    );
    assert_eq!(
        r["rejectedLogEventsInfo"],
        json!({"expiredLogEventEndIndex": 2})
    );
    put(&cp, "s", &[(t, "fresh")]);
    let got = ok(
        &cp,
        "GetLogEvents",
        json!({"logGroupName": "g", "logStreamName": "s", "startFromHead": true}),
    );
    let msgs: Vec<&str> = got["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["message"].as_str().unwrap())
        .collect();
    assert_eq!(
        msgs,
        ["now", "fresh"],
        "the 3-day-old event is hidden by the 1-day retention"
    );
}

#[test]
fn retention_policies_take_cloudwatch_values_only() {
    let (_d, cp) = cp();
    ok(&cp, "CreateLogGroup", json!({"logGroupName": "g"}));
    let (c, m) = code(
        &cp,
        "PutRetentionPolicy",
        json!({"logGroupName": "g", "retentionInDays": 2}),
    );
    assert_eq!(c, "InvalidParameterException");
    assert!(
        m.contains("retentionInDays") && m.contains("found 2"),
        "{m}"
    );
    assert_eq!(
        code(
            &cp,
            "PutRetentionPolicy",
            json!({"logGroupName": "x", "retentionInDays": 7})
        )
        .0,
        "ResourceNotFoundException"
    );
    ok(
        &cp,
        "PutRetentionPolicy",
        json!({"logGroupName": "g", "retentionInDays": 7}),
    );
    let d = ok(&cp, "DescribeLogGroups", json!({}));
    assert_eq!(d["logGroups"][0]["retentionInDays"], 7);
    ok(&cp, "DeleteRetentionPolicy", json!({"logGroupName": "g"}));
    let d = ok(&cp, "DescribeLogGroups", json!({}));
    assert!(d["logGroups"][0].get("retentionInDays").is_none());
}

#[test]
fn get_log_events_tokens_page_both_ways_and_repeat_at_the_end() {
    let (_d, cp) = cp();
    ok(&cp, "CreateLogGroup", json!({"logGroupName": "g"}));
    ok(
        &cp,
        "CreateLogStream",
        json!({"logGroupName": "g", "logStreamName": "s"}),
    );
    let t = now();
    // Equal timestamps are kept apart by rank.
    put(
        &cp,
        "s",
        &[(t, "a"), (t, "b"), (t, "c"), (t + 1, "d"), (t + 2, "e")],
    );
    let get = |extra: Value| {
        let mut input = json!({"logGroupName": "g", "logStreamName": "s", "limit": 2});
        for (k, v) in extra.as_object().unwrap() {
            input[k] = v.clone();
        }
        ok(&cp, "GetLogEvents", input)
    };
    let msgs = |v: &Value| -> String {
        v["events"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["message"].as_str().unwrap())
            .collect()
    };
    let mut page = get(json!({"startFromHead": true}));
    let mut seen = msgs(&page);
    for _ in 0..10 {
        let token = page["nextForwardToken"].clone();
        page = get(json!({"nextToken": token}));
        if page["nextForwardToken"] == token {
            assert_eq!(msgs(&page), "");
            break;
        }
        seen += &msgs(&page);
    }
    assert_eq!(seen, "abcde");
    // New events appear behind the last forward token.
    let token = page["nextForwardToken"].clone();
    put(&cp, "s", &[(t + 3, "f")]);
    assert_eq!(msgs(&get(json!({"nextToken": token}))), "f");
    // Default (no token, from the tail) and backward paging.
    let tail = get(json!({}));
    assert_eq!(msgs(&tail), "ef");
    let back = get(json!({"nextToken": tail["nextBackwardToken"]}));
    assert_eq!(msgs(&back), "cd");
    let back = get(json!({"nextToken": back["nextBackwardToken"]}));
    assert_eq!(msgs(&back), "ab");
    assert_eq!(
        code(
            &cp,
            "GetLogEvents",
            json!({"logGroupName": "g", "logStreamName": "s", "nextToken": "zzz"})
        )
        .0,
        "InvalidParameterException"
    );
}

#[test]
fn filter_log_events_interleaves_streams_and_pages_with_tokens() {
    let (_d, cp) = cp();
    ok(&cp, "CreateLogGroup", json!({"logGroupName": "g"}));
    ok(
        &cp,
        "CreateLogStream",
        json!({"logGroupName": "g", "logStreamName": "ecs/app/1"}),
    );
    ok(
        &cp,
        "CreateLogStream",
        json!({"logGroupName": "g", "logStreamName": "ecs/app/2"}),
    );
    let t = now() - 100;
    put(
        &cp,
        "ecs/app/1",
        &[(t, "ERROR a"), (t + 2, "INFO b"), (t + 4, "ERROR c")],
    );
    put(
        &cp,
        "ecs/app/2",
        &[
            (t + 1, "ERROR d"),
            (t + 3, r#"{"level":"ERROR","ms":700}"#),
            (t + 4, "ERROR e"),
        ],
    );
    let mut token: Option<Value> = None;
    let mut seen = Vec::new();
    for _ in 0..10 {
        let mut input = json!({"logGroupName": "g", "filterPattern": "ERROR", "limit": 2});
        if let Some(t) = &token {
            input["nextToken"] = t.clone();
        }
        let page = ok(&cp, "FilterLogEvents", input);
        seen.extend(
            page["events"]
                .as_array()
                .unwrap()
                .iter()
                .map(|e| e["message"].as_str().unwrap().to_string()),
        );
        match page.get("nextToken") {
            Some(t) => token = Some(t.clone()),
            None => break,
        }
    }
    assert_eq!(
        seen,
        [
            "ERROR a",
            "ERROR d",
            r#"{"level":"ERROR","ms":700}"#,
            "ERROR c",
            "ERROR e"
        ]
    );
    let json_match = ok(
        &cp,
        "FilterLogEvents",
        json!({"logGroupName": "g", "filterPattern": "{ $.ms > 500 }"}),
    );
    assert_eq!(json_match["events"].as_array().unwrap().len(), 1);
    assert_eq!(json_match["events"][0]["logStreamName"], "ecs/app/2");
    let ranged = ok(
        &cp,
        "FilterLogEvents",
        json!({"logGroupName": "g", "startTime": t + 1, "endTime": t + 3, "logStreamNames": ["ecs/app/1"]}),
    );
    assert_eq!(ranged["events"].as_array().unwrap().len(), 1);
    let (c, m) = code(
        &cp,
        "FilterLogEvents",
        json!({"logGroupName": "g", "filterPattern": "{ $.ms > }"}),
    );
    assert_eq!(c, "InvalidParameterException");
    assert!(m.contains("filterPattern") && m.contains("position"), "{m}");
}

#[test]
fn metric_filters_are_put_described_tested_and_deleted() {
    let (_d, cp) = cp();
    ok(&cp, "CreateLogGroup", json!({"logGroupName": "g"}));
    let mf = json!({"logGroupName": "g", "filterName": "errors", "filterPattern": "ERROR",
        "metricTransformations": [{"metricName": "Errors", "metricNamespace": "App", "metricValue": "1", "defaultValue": 0}]});
    ok(&cp, "PutMetricFilter", mf.clone());
    ok(&cp, "PutMetricFilter", mf);
    let d = ok(&cp, "DescribeMetricFilters", json!({"logGroupName": "g"}));
    assert_eq!(d["metricFilters"].as_array().unwrap().len(), 1);
    assert_eq!(
        d["metricFilters"][0]["metricTransformations"][0]["metricName"],
        "Errors"
    );
    let d = ok(
        &cp,
        "DescribeMetricFilters",
        json!({"metricName": "Errors", "metricNamespace": "App"}),
    );
    assert_eq!(d["metricFilters"][0]["logGroupName"], "g");
    assert_eq!(
        ok(&cp, "DescribeLogGroups", json!({}))["logGroups"][0]["metricFilterCount"],
        1
    );
    let (c, m) = code(
        &cp,
        "PutMetricFilter",
        json!({"logGroupName": "g", "filterName": "bad", "filterPattern": "{ $.x = ",
        "metricTransformations": [{"metricName": "", "metricNamespace": "App", "metricValue": "x"}]}),
    );
    assert_eq!(c, "InvalidParameterException");
    assert!(
        m.contains("filterPattern") && m.contains("metricName") && m.contains("metricValue"),
        "{m}"
    );
    let t = ok(
        &cp,
        "TestMetricFilter",
        json!({"filterPattern": "ERROR", "logEventMessages": ["ERROR x", "ok", "ERROR y"]}),
    );
    assert_eq!(t["matches"].as_array().unwrap().len(), 2);
    assert_eq!(t["matches"][1]["eventNumber"], 3);
    ok(
        &cp,
        "DeleteMetricFilter",
        json!({"logGroupName": "g", "filterName": "errors"}),
    );
    assert_eq!(
        code(
            &cp,
            "DeleteMetricFilter",
            json!({"logGroupName": "g", "filterName": "errors"})
        )
        .0,
        "ResourceNotFoundException"
    );
}

#[test]
fn queries_run_in_the_background_and_report_results_and_statistics() {
    let (_d, cp) = cp();
    ok(&cp, "CreateLogGroup", json!({"logGroupName": "g"}));
    ok(
        &cp,
        "CreateLogStream",
        json!({"logGroupName": "g", "logStreamName": "s"}),
    );
    let t = now() - 120_000;
    put(
        &cp,
        "s",
        &[(t, "ERROR x"), (t + 1, "ok"), (t + 2, "ERROR y")],
    );
    let (c, m) = code(
        &cp,
        "StartQuery",
        json!({"logGroupName": "g", "startTime": 0, "endTime": 1, "queryString": "filter x ="}),
    );
    assert_eq!(c, "MalformedQueryException");
    assert!(m.contains("position 10"), "{m}");
    assert_eq!(
        code(
            &cp,
            "StartQuery",
            json!({"logGroupName": "nope", "startTime": 0, "endTime": 1, "queryString": "limit 1"})
        )
        .0,
        "ResourceNotFoundException"
    );
    let id = ok(
        &cp,
        "StartQuery",
        json!({"logGroupName": "g", "startTime": t / 1000 - 60, "endTime": t / 1000 + 60,
        "queryString": "filter @message like /ERROR/ | stats count(*) as n"}),
    )["queryId"]
        .clone();
    let mut r = Value::Null;
    for _ in 0..200 {
        r = ok(&cp, "GetQueryResults", json!({"queryId": id}));
        if r["status"] == "Complete" {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    assert_eq!(r["status"], "Complete");
    assert_eq!(r["results"], json!([[{"field": "n", "value": "2"}]]));
    assert_eq!(r["statistics"]["recordsScanned"], 3.0);
    assert_eq!(r["statistics"]["recordsMatched"], 2.0);
    let d = ok(&cp, "DescribeQueries", json!({"logGroupName": "g"}));
    assert_eq!(d["queries"][0]["queryId"], id);
    assert_eq!(d["queries"][0]["status"], "Complete");
    assert_eq!(
        ok(&cp, "StopQuery", json!({"queryId": id}))["success"],
        false
    );
    assert_eq!(
        code(&cp, "GetQueryResults", json!({"queryId": "nope"})).0,
        "ResourceNotFoundException"
    );
}
