//! End-to-end tests of CloudWatch Logs on a real server through the real AWS CLI:
//! put/get/filter log events (terms and JSON selectors), Logs Insights queries with stats by bin,
//! retention policies hiding expired events, and refused filter patterns.

mod common;

use common::*;
use serde_json::{json, Value};
use std::time::Duration;

fn aws(c: &Cluster, args: &[&str]) -> Result<Value, String> {
    let mut all = vec!["logs"];
    all.extend_from_slice(args);
    c.aws(&all)
}

fn ok(c: &Cluster, args: &[&str]) -> Value {
    aws(c, args).unwrap_or_else(|e| panic!("aws logs {args:?}: {e}"))
}

fn messages(v: &Value) -> Vec<String> {
    v["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["message"].as_str().unwrap().to_string())
        .collect()
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

#[test]
fn the_aws_cli_puts_filters_queries_and_expires_log_events() {
    let c = Cluster::start(false);
    ok(
        &c,
        &["create-log-group", "--log-group-name", "/berth/default/app"],
    );
    ok(
        &c,
        &[
            "create-log-stream",
            "--log-group-name",
            "/berth/default/app",
            "--log-stream-name",
            "ecs/app/t1",
        ],
    );
    let t = now_ms() - 60_000;
    let events = json!([
        {"timestamp": t, "message": "ERROR boom 1"},
        {"timestamp": t + 1, "message": "INFO fine"},
        {"timestamp": t + 2, "message": r#"{"level":"ERROR","ms":700}"#},
        {"timestamp": t + 3, "message": r#"{"level":"INFO","ms":20}"#},
        {"timestamp": t + 4, "message": "ERROR boom 2"},
    ]);
    let put = ok(
        &c,
        &[
            "put-log-events",
            "--log-group-name",
            "/berth/default/app",
            "--log-stream-name",
            "ecs/app/t1",
            "--log-events",
            &events.to_string(),
        ],
    );
    assert!(put["nextSequenceToken"].is_string(), "{put}");
    assert!(put.get("rejectedLogEventsInfo").is_none(), "{put}");

    // Terms, JSON selectors, and a refused pattern.
    let f = ok(
        &c,
        &[
            "filter-log-events",
            "--log-group-name",
            "/berth/default/app",
            "--filter-pattern",
            "ERROR",
        ],
    );
    assert_eq!(
        messages(&f),
        [
            "ERROR boom 1",
            r#"{"level":"ERROR","ms":700}"#,
            "ERROR boom 2"
        ]
    );
    let f = ok(
        &c,
        &[
            "filter-log-events",
            "--log-group-name",
            "/berth/default/app",
            "--filter-pattern",
            "ERROR -boom",
        ],
    );
    assert_eq!(messages(&f), [r#"{"level":"ERROR","ms":700}"#]);
    let f = ok(
        &c,
        &[
            "filter-log-events",
            "--log-group-name",
            "/berth/default/app",
            "--filter-pattern",
            r#"{ $.level = "ERROR" && $.ms > 500 }"#,
        ],
    );
    assert_eq!(messages(&f), [r#"{"level":"ERROR","ms":700}"#]);
    // The CLI pages through nextToken by itself.
    let f = ok(
        &c,
        &[
            "filter-log-events",
            "--log-group-name",
            "/berth/default/app",
            "--page-size",
            "2",
        ],
    );
    assert_eq!(messages(&f).len(), 5);
    let e = aws(
        &c,
        &[
            "filter-log-events",
            "--log-group-name",
            "/berth/default/app",
            "--filter-pattern",
            "{ $.ms > }",
        ],
    )
    .unwrap_err();
    assert!(
        e.contains("InvalidParameterException") && e.contains("position"),
        "{e}"
    );

    // get-log-events ends (the forward token repeats at the end).
    let g = ok(
        &c,
        &[
            "get-log-events",
            "--log-group-name",
            "/berth/default/app",
            "--log-stream-name",
            "ecs/app/t1",
            "--start-from-head",
        ],
    );
    assert_eq!(messages(&g).len(), 5);
    let again = ok(
        &c,
        &[
            "get-log-events",
            "--log-group-name",
            "/berth/default/app",
            "--log-stream-name",
            "ecs/app/t1",
            "--next-token",
            g["nextForwardToken"].as_str().unwrap(),
        ],
    );
    assert!(messages(&again).is_empty());
    assert_eq!(again["nextForwardToken"], g["nextForwardToken"]);

    // Logs Insights: stats by bin, in the background.
    let start = ((t - 120_000) / 1000).to_string();
    let end = (now_ms() / 1000 + 60).to_string();
    let q = ok(
        &c,
        &[
            "start-query",
            "--log-group-name",
            "/berth/default/app",
            "--start-time",
            &start,
            "--end-time",
            &end,
            "--query-string",
            "filter @message like /ERROR/ | stats count(*) as n by bin(1m)",
        ],
    );
    let id = q["queryId"].as_str().unwrap().to_string();
    let r = eventually("the query completes", Duration::from_secs(20), || {
        let r = ok(&c, &["get-query-results", "--query-id", &id]);
        (r["status"] == "Complete").then_some(r)
    });
    let rows = r["results"].as_array().unwrap();
    assert!(!rows.is_empty(), "{r}");
    let mut total = 0;
    for row in rows {
        let fields: Vec<&str> = row
            .as_array()
            .unwrap()
            .iter()
            .map(|f| f["field"].as_str().unwrap())
            .collect();
        assert_eq!(fields, ["bin(1m)", "n"], "{r}");
        total += row[1]["value"].as_str().unwrap().parse::<i64>().unwrap();
    }
    assert_eq!(total, 3, "{r}");
    assert_eq!(r["statistics"]["recordsScanned"], 5.0, "{r}");
    assert_eq!(r["statistics"]["recordsMatched"], 3.0, "{r}");
    let e = aws(
        &c,
        &[
            "start-query",
            "--log-group-name",
            "/berth/default/app",
            "--start-time",
            &start,
            "--end-time",
            &end,
            "--query-string",
            "filter x = ",
        ],
    )
    .unwrap_err();
    assert!(
        e.contains("MalformedQueryException") && e.contains("position 11"),
        "{e}"
    );

    // Retention: events older than it disappear at once (and their files at the next sweep).
    ok(
        &c,
        &[
            "create-log-stream",
            "--log-group-name",
            "/berth/default/app",
            "--log-stream-name",
            "old",
        ],
    );
    let day = 86_400_000;
    let old = json!([{"timestamp": now_ms() - 3 * day, "message": "ERROR from three days ago"}]);
    ok(
        &c,
        &[
            "put-log-events",
            "--log-group-name",
            "/berth/default/app",
            "--log-stream-name",
            "old",
            "--log-events",
            &old.to_string(),
        ],
    );
    let f = ok(
        &c,
        &[
            "filter-log-events",
            "--log-group-name",
            "/berth/default/app",
            "--filter-pattern",
            "ERROR",
        ],
    );
    assert_eq!(messages(&f).len(), 4);
    ok(
        &c,
        &[
            "put-retention-policy",
            "--log-group-name",
            "/berth/default/app",
            "--retention-in-days",
            "1",
        ],
    );
    let d = ok(
        &c,
        &[
            "describe-log-groups",
            "--log-group-name-prefix",
            "/berth/default",
        ],
    );
    assert_eq!(d["logGroups"][0]["retentionInDays"], 1, "{d}");
    let f = ok(
        &c,
        &[
            "filter-log-events",
            "--log-group-name",
            "/berth/default/app",
            "--filter-pattern",
            "ERROR",
        ],
    );
    assert_eq!(
        messages(&f).len(),
        3,
        "the 3-day-old event is past the 1-day retention"
    );
    let expired = json!([{"timestamp": now_ms() - 2 * day, "message": "too late"}]);
    let put = ok(
        &c,
        &[
            "put-log-events",
            "--log-group-name",
            "/berth/default/app",
            "--log-stream-name",
            "old",
            "--log-events",
            &expired.to_string(),
        ],
    );
    assert_eq!(
        put["rejectedLogEventsInfo"]["expiredLogEventEndIndex"], 1,
        "{put}"
    );
    let e = aws(
        &c,
        &[
            "put-retention-policy",
            "--log-group-name",
            "/berth/default/app",
            "--retention-in-days",
            "2",
        ],
    )
    .unwrap_err();
    assert!(e.contains("InvalidParameterException"), "{e}");
    ok(
        &c,
        &[
            "delete-retention-policy",
            "--log-group-name",
            "/berth/default/app",
        ],
    );
    let d = ok(
        &c,
        &[
            "describe-log-groups",
            "--log-group-name-prefix",
            "/berth/default",
        ],
    );
    assert!(d["logGroups"][0].get("retentionInDays").is_none(), "{d}");

    // Streams ordered by last event.
    let s = ok(
        &c,
        &[
            "describe-log-streams",
            "--log-group-name",
            "/berth/default/app",
            "--order-by",
            "LastEventTime",
            "--descending",
        ],
    );
    assert_eq!(s["logStreams"][0]["logStreamName"], "ecs/app/t1", "{s}");
}
