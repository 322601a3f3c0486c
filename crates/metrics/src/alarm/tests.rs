//! Alarm tests: evaluation tables, reasons, composite rules, the manager and its actions.

use super::evaluate::{evaluate, PeriodValue};
use super::manager::AlarmFilter;
use super::rule::{parse, Rule};
use super::*;
use crate::types::{Dimension, MetricDatum, MetricId, Retention, Sample};
use crate::MetricStore;

const T0: i64 = 1_795_341_600; // 2026-11-22T10:00:00Z

fn alarm(n: u32, m: u32, treat: TreatMissingData) -> MetricAlarm {
    MetricAlarm {
        alarm_name: "cpu-high".into(),
        alarm_description: None,
        actions: AlarmActions::default(),
        metric: MetricId::new(
            "AWS/ECS",
            "CPUUtilization",
            vec![Dimension::new("ClusterName", "c1")],
        ),
        statistic: "Average".into(),
        unit: None,
        period: 60,
        evaluation_periods: n,
        datapoints_to_alarm: m,
        threshold: 10.0,
        comparison_operator: ComparisonOperator::GreaterThanOrEqualToThreshold,
        treat_missing_data: treat,
        evaluate_low_sample_count_percentile: None,
    }
}

/// `"- 0 X"`: one symbol per period, oldest first; X breaches (20), 0 does not (1), - is missing.
fn points(pattern: &str) -> Vec<PeriodValue> {
    pattern
        .split_whitespace()
        .enumerate()
        .map(|(i, s)| PeriodValue {
            timestamp: T0 + 60 * i as i64,
            value: match s {
                "X" => Some(20.0),
                "0" => Some(1.0),
                _ => None,
            },
            sample_count: if s == "-" { 0.0 } else { 1.0 },
        })
        .collect()
}

#[test]
fn treat_missing_data_table_for_2_of_3() {
    use StateValue::*;
    use TreatMissingData::*;
    // (pattern over the 5-period evaluation range, [missing, ignore, breaching, notBreaching]);
    // None = the state is kept.
    let table: &[(&str, [Option<StateValue>; 4])] = &[
        ("0 0 0 0 0", [Some(OK), Some(OK), Some(OK), Some(OK)]),
        (
            "- - 0 X X",
            [Some(ALARM), Some(ALARM), Some(ALARM), Some(ALARM)],
        ),
        (
            "0 X - - X",
            [Some(ALARM), Some(ALARM), Some(ALARM), Some(ALARM)],
        ),
        ("X X - 0 0", [Some(OK), Some(OK), Some(OK), Some(OK)]),
        (
            "- - - - -",
            [Some(INSUFFICIENT_DATA), None, Some(ALARM), Some(OK)],
        ),
        (
            "- - - - X",
            [Some(ALARM), Some(ALARM), Some(ALARM), Some(OK)],
        ),
        ("- - - - 0", [Some(OK), Some(OK), Some(ALARM), Some(OK)]),
        ("X - - 0 -", [Some(OK), Some(OK), Some(ALARM), Some(OK)]),
    ];
    for (pattern, expected) in table {
        for (treat, want) in [Missing, Ignore, Breaching, NotBreaching]
            .iter()
            .zip(expected)
        {
            let got = evaluate(&alarm(3, 2, *treat), &points(pattern), T0 as f64).map(|e| e.state);
            assert_eq!(got, *want, "pattern {pattern:?} with {treat:?}");
        }
    }
}

#[test]
fn m_of_n_counts_only_the_newest_n_real_datapoints() {
    let a = alarm(3, 3, TreatMissingData::Missing);
    for (pattern, want) in [
        ("0 0 X X X", StateValue::ALARM),
        ("X X X X 0", StateValue::OK),
        ("X X - X X", StateValue::ALARM),
        ("X 0 - X X", StateValue::OK),
    ] {
        let got = evaluate(&a, &points(pattern), T0 as f64).map(|e| e.state);
        assert_eq!(got, Some(want), "{pattern}");
    }
}

#[test]
fn reasons_read_like_cloudwatch() {
    let mut a = alarm(3, 3, TreatMissingData::Missing);
    a.threshold = 80.0;
    let mut p = points("- - X X X");
    p[2].value = Some(85.0);
    p[3].value = Some(90.0);
    p[4].value = Some(91.2);
    let e = evaluate(&a, &p, T0 as f64 + 300.0).unwrap();
    assert_eq!(
        e.reason,
        "Threshold Crossed: 3 out of the last 3 datapoints [91.2 (22/11/26 10:04:00), 90.0 (22/11/26 10:03:00), 85.0 (22/11/26 10:02:00)] were greater than or equal to the threshold (80.0) (minimum 3 datapoints for OK -> ALARM transition)."
    );
    assert_eq!(e.reason_data["statistic"], "Average");
    assert_eq!(e.reason_data["period"], 60);
    assert_eq!(
        e.reason_data["recentDatapoints"],
        serde_json::json!([85.0, 90.0, 91.2])
    );
    assert_eq!(
        e.reason_data["evaluatedDatapoints"][0]["timestamp"],
        "2026-11-22T10:04:00.000+0000"
    );
    let ok = evaluate(&a, &points("- - - - 0"), T0 as f64).unwrap();
    assert_eq!(
        ok.reason,
        "Threshold Crossed: 1 datapoint [1.0 (22/11/26 10:04:00)] was not greater than or equal to the threshold (80.0)."
    );
    let none = evaluate(&a, &points("- - - - -"), T0 as f64).unwrap();
    assert_eq!(none.reason, "Insufficient Data: 3 datapoints were unknown.");
    let filled = evaluate(
        &alarm(1, 1, TreatMissingData::Breaching),
        &points("- - -"),
        T0 as f64,
    )
    .unwrap();
    assert_eq!(
        filled.reason,
        "Threshold Crossed: no datapoints were received for 1 period and 1 missing datapoint was treated as [Breaching]."
    );
}

#[test]
fn validation_lists_every_problem() {
    let mut a = alarm(0, 2, TreatMissingData::Missing);
    a.period = 45;
    a.statistic = "Median".into();
    a.actions.alarm_actions = vec!["arn:aws:sns:x".into()];
    let errors = a.validate().unwrap_err();
    let text = errors.join("\n");
    for needle in [
        "Period",
        "Statistic",
        "EvaluationPeriods",
        "DatapointsToAlarm",
        "AlarmActions.member.1",
    ] {
        assert!(text.contains(needle), "{needle} missing from {text}");
    }
    let mut ok = alarm(3, 2, TreatMissingData::Missing);
    ok.statistic = "p99.9".into();
    ok.period = 10;
    assert_eq!(ok.validate(), Ok(()));
}

#[test]
fn composite_rules_parse_with_precedence_and_evaluate() {
    let r = parse(r#"ALARM("a") AND (OK("b") OR NOT ALARM("c"))"#).unwrap();
    assert_eq!(r.alarm_names(), vec!["a", "b", "c"]);
    let states = |a, b, c| {
        move |n: &str| match n {
            "a" => Some(a),
            "b" => Some(b),
            "c" => Some(c),
            _ => None,
        }
    };
    use StateValue::*;
    assert!(r.eval(&states(ALARM, OK, ALARM)));
    assert!(r.eval(&states(ALARM, ALARM, OK)));
    assert!(!r.eval(&states(ALARM, ALARM, ALARM)));
    assert!(!r.eval(&states(OK, OK, OK)));
    // NOT binds tighter than AND, AND tighter than OR.
    let p = parse("TRUE OR FALSE AND FALSE").unwrap();
    assert!(p.eval(&|_| None));
    assert_eq!(
        parse("NOT ALARM(x) AND OK(y)").unwrap(),
        Rule::And(
            Box::new(Rule::Not(Box::new(Rule::State(ALARM, "x".into())))),
            Box::new(Rule::State(OK, "y".into()))
        )
    );
    assert_eq!(
        parse("ALARM(arn:aws:cloudwatch:us-east-1:000000000000:alarm:cpu)").unwrap(),
        Rule::State(ALARM, "cpu".into())
    );
    assert!(parse("FALSE").is_ok_and(|r| !r.eval(&|_| None)));
    for bad in [
        "",
        "ALARM(",
        "ALARM(a) AND",
        "ALARM(a) XOR OK(b)",
        "(TRUE",
        "ALARM(\"a)",
        "\"a\"",
        "ALARM()",
    ] {
        assert!(parse(bad).is_err(), "{bad:?} should not parse");
    }
}

fn store(dir: &std::path::Path) -> MetricStore {
    MetricStore::open(dir.join("m"), Retention::default()).unwrap()
}

fn put(s: &MetricStore, a: &MetricAlarm, ts: i64, v: f64) {
    s.put_at(
        &[MetricDatum {
            id: a.metric.clone(),
            unit: None,
            timestamp: ts,
            sample: Sample::Value(v),
        }],
        ts,
    );
}

#[test]
fn manager_moves_through_states_records_history_and_persists() {
    let dir = tempfile::tempdir().unwrap();
    let s = store(dir.path());
    let m = AlarmManager::open(dir.path().join("alarms.json"), s.clone()).unwrap();
    let mut events = m.subscribe();
    let a = alarm(2, 2, TreatMissingData::Missing);
    m.put_metric_alarm(a.clone(), T0 as f64).unwrap();
    assert_eq!(
        m.get("cpu-high").unwrap().state.value,
        StateValue::INSUFFICIENT_DATA
    );
    // Two breaching minutes → ALARM.
    put(&s, &a, T0 + 10, 50.0);
    put(&s, &a, T0 + 70, 60.0);
    let changes = m.evaluate_all((T0 + 121) as f64);
    assert_eq!(changes.len(), 1);
    assert_eq!(changes[0].new_state, StateValue::ALARM);
    assert_eq!(events.try_recv().unwrap().new_state, StateValue::ALARM);
    // Unchanged on the next second: no new change.
    assert!(m.evaluate_all((T0 + 122) as f64).is_empty());
    // One good minute → OK (only one of the last two breaches).
    put(&s, &a, T0 + 130, 1.0);
    let changes = m.evaluate_all((T0 + 181) as f64);
    assert_eq!(changes[0].new_state, StateValue::OK);
    // SetAlarmState holds for a period, then evaluation wins again.
    m.set_alarm_state(
        "cpu-high",
        StateValue::ALARM,
        "testing",
        None,
        (T0 + 182) as f64,
    )
    .unwrap();
    assert!(m.evaluate_all((T0 + 200) as f64).is_empty());
    assert_eq!(m.get("cpu-high").unwrap().state.value, StateValue::ALARM);
    assert_eq!(m.get("cpu-high").unwrap().state.reason, "testing");
    let back = m.evaluate_all((T0 + 243) as f64);
    assert_eq!(back.len(), 1);
    assert_eq!(back[0].new_state, StateValue::OK);
    let history = m.history(Some("cpu-high"), None, None, None);
    let kinds: Vec<&str> = history.iter().map(|h| h.history_summary.as_str()).collect();
    assert_eq!(
        kinds,
        vec![
            "Alarm updated from ALARM to OK",
            "Alarm updated from OK to ALARM",
            "Alarm updated from ALARM to OK",
            "Alarm updated from INSUFFICIENT_DATA to ALARM",
            "Alarm \"cpu-high\" created",
        ]
    );
    assert_eq!(
        m.history(None, Some("ConfigurationUpdate"), None, None)
            .len(),
        1
    );
    drop(m);
    let again = AlarmManager::open(dir.path().join("alarms.json"), s).unwrap();
    assert_eq!(again.get("cpu-high").unwrap().state.value, StateValue::OK);
    assert_eq!(again.history(Some("cpu-high"), None, None, None).len(), 5);
}

#[test]
fn composite_alarms_follow_their_children_and_guard_deletion() {
    let dir = tempfile::tempdir().unwrap();
    let s = store(dir.path());
    let m = AlarmManager::open(dir.path().join("alarms.json"), s.clone()).unwrap();
    let mut a = alarm(1, 1, TreatMissingData::Missing);
    a.alarm_name = "a".into();
    let mut b = a.clone();
    b.alarm_name = "b".into();
    b.metric.name = "Other".into();
    m.put_metric_alarm(a.clone(), T0 as f64).unwrap();
    m.put_metric_alarm(b, T0 as f64).unwrap();
    let composite = |rule: &str| CompositeAlarm {
        alarm_name: "both".into(),
        alarm_description: None,
        actions: AlarmActions::default(),
        alarm_rule: rule.into(),
    };
    let err = m
        .put_composite_alarm(composite("ALARM(a) AND ALARM(ghost) AND"), T0 as f64)
        .unwrap_err();
    assert!(err.to_string().contains("AlarmRule"), "{err}");
    let err = m
        .put_composite_alarm(composite("ALARM(a) AND ALARM(ghost)"), T0 as f64)
        .unwrap_err();
    assert!(err.to_string().contains("ghost"), "{err}");
    m.put_composite_alarm(composite(r#"ALARM("a") AND NOT ALARM("b")"#), T0 as f64)
        .unwrap();
    put(&s, &a, T0 + 5, 99.0);
    let changes = m.evaluate_all((T0 + 61) as f64);
    let both = changes.iter().find(|c| c.alarm_name == "both").unwrap();
    assert_eq!(both.new_state, StateValue::ALARM);
    assert_eq!(both.alarm_type, "CompositeAlarm");
    let only = m.describe(&AlarmFilter {
        composite_alarms: true,
        ..Default::default()
    });
    assert_eq!(only.len(), 1);
    let alarming = m.describe(&AlarmFilter {
        metric_alarms: true,
        composite_alarms: true,
        state: Some(StateValue::ALARM),
        ..Default::default()
    });
    assert_eq!(
        alarming
            .iter()
            .map(|a| a.definition.name())
            .collect::<Vec<_>>(),
        vec!["a", "both"]
    );
    assert!(matches!(
        m.delete_alarms(&["a".into()]),
        Err(AlarmError::Validation(_))
    ));
    assert!(matches!(
        m.delete_alarms(&["nope".into()]),
        Err(AlarmError::NotFound(_))
    ));
    m.delete_alarms(&["a".into(), "both".into()]).unwrap();
    assert_eq!(
        m.describe(&AlarmFilter {
            metric_alarms: true,
            composite_alarms: true,
            ..Default::default()
        })
        .len(),
        1
    );
}

#[tokio::test]
async fn webhook_and_command_actions_run_on_state_change() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let dir = tempfile::tempdir().unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    let (body_tx, mut body_rx) = tokio::sync::mpsc::channel::<String>(1);
    tokio::spawn(async move {
        let (mut sock, _) = listener.accept().await.unwrap();
        let mut buf = Vec::new();
        let mut chunk = [0u8; 4096];
        // Read headers and the body announced by Content-Length.
        loop {
            let n = sock.read(&mut chunk).await.unwrap();
            if n == 0 {
                break;
            }
            buf.extend_from_slice(&chunk[..n]);
            let text = String::from_utf8_lossy(&buf).to_string();
            if let Some((head, body)) = text.split_once("\r\n\r\n") {
                let len = head
                    .lines()
                    .find_map(|l| {
                        l.to_ascii_lowercase()
                            .strip_prefix("content-length:")
                            .map(|v| v.trim().parse::<usize>().unwrap())
                    })
                    .unwrap_or(0);
                if body.len() >= len {
                    sock.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n")
                        .await
                        .unwrap();
                    body_tx.send(body.to_string()).await.unwrap();
                    break;
                }
            }
        }
    });
    let out = dir.path().join("command.out");
    let s = store(dir.path());
    let m = AlarmManager::open(dir.path().join("alarms.json"), s).unwrap();
    let mut a = alarm(1, 1, TreatMissingData::Ignore);
    a.actions = AlarmActions {
        actions_enabled: true,
        alarm_actions: vec![
            url,
            format!("berth:command:printf '%s %s %s' \"$ALARM_NAME\" \"$ALARM_STATE\" \"$ALARM_REASON\" > {}", out.display()),
        ],
        ..Default::default()
    };
    m.put_metric_alarm(a, T0 as f64).unwrap();
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let runner = tokio::spawn(m.clone().run(stop_rx));
    m.set_alarm_state(
        "cpu-high",
        StateValue::ALARM,
        "manual test",
        None,
        crate::store::now_seconds_f64(),
    )
    .unwrap();
    let body = tokio::time::timeout(std::time::Duration::from_secs(10), body_rx.recv())
        .await
        .unwrap()
        .unwrap();
    let json: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(json["AlarmName"], "cpu-high");
    assert_eq!(json["NewStateValue"], "ALARM");
    assert_eq!(json["OldStateValue"], "INSUFFICIENT_DATA");
    assert_eq!(json["NewStateReason"], "manual test");
    let mut written = String::new();
    for _ in 0..100 {
        written = std::fs::read_to_string(&out).unwrap_or_default();
        if !written.is_empty() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert_eq!(written, "cpu-high ALARM manual test");
    // Each action leaves an Action history item.
    let mut actions = 0;
    for _ in 0..100 {
        actions = m
            .history(Some("cpu-high"), Some("Action"), None, None)
            .len();
        if actions == 2 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert_eq!(actions, 2);
    stop_tx.send(true).unwrap();
    runner.await.unwrap();
}

#[test]
fn unparseable_alarm_file_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("alarms.json");
    std::fs::write(&path, "{not json").unwrap();
    let err = AlarmManager::open(&path, store(dir.path())).unwrap_err();
    assert!(matches!(err, PersistError::Parse { .. }), "{err}");
}

#[test]
fn scaling_policy_arns_are_accepted_as_actions_and_other_arns_are_not() {
    use super::actions::Action;
    let arn = "arn:aws:autoscaling:us-east-1:000000000000:scalingPolicy:0b1c:resource/ecs/service/default/web:policyName/out";
    assert_eq!(
        Action::parse(arn),
        Some(Action::ScalingPolicy(arn.to_string()))
    );
    assert_eq!(
        Action::parse("arn:aws:sns:us-east-1:000000000000:topic"),
        None
    );
    assert_eq!(
        Action::parse("arn:aws:autoscaling:us-east-1:000000000000:autoScalingGroup:x"),
        None
    );
}
