//! Tests of the log store: file names, the segment line format, crash recovery, retention,
//! the old layout's migration and metric filters at ingest.

use super::*;

fn ev(t: i64, m: &str) -> LogEvent {
    LogEvent {
        timestamp: t,
        message: m.into(),
    }
}

fn open(dir: &tempfile::TempDir) -> LogStore {
    LogStore::open(dir.path().to_path_buf()).unwrap()
}

fn segment_files(dir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    for g in std::fs::read_dir(dir).unwrap().flatten() {
        let streams = g.path().join("streams");
        for s in std::fs::read_dir(streams).into_iter().flatten().flatten() {
            for f in std::fs::read_dir(s.path()).unwrap().flatten() {
                let n = f.file_name().to_string_lossy().to_string();
                if n.ends_with(".log") {
                    out.push(n);
                }
            }
        }
    }
    out.sort();
    out
}

#[test]
fn names_round_trip_through_file_names() {
    for n in ["/berth/default/web", "ecs/app/abc123", "a b%c", "%4", "x%"] {
        assert_eq!(decode(&encode(n)), n);
        assert!(!encode(n).contains('/'));
    }
}

#[test]
fn dot_names_stay_inside_the_store() {
    for n in [".", ".."] {
        assert_eq!(decode(&encode(n)), n);
        assert!(!encode(n).starts_with('.'), "{n} is escaped");
    }
    // Deleting a group named `..` once removed the store's parent directory.
    let parent = tempfile::tempdir().unwrap();
    let root = parent.path().join("logs");
    let store = LogStore::open(root.clone()).unwrap();
    std::fs::write(parent.path().join("state.redb"), b"keep").unwrap();
    store.create_group("..").unwrap();
    store.create_stream("..", "..").unwrap();
    store.append("..", "..", &[ev(1, "m")]).unwrap();
    store.delete_stream("..", "..").unwrap();
    store.delete_group("..").unwrap();
    store.delete_group(".").unwrap();
    assert!(parent.path().join("state.redb").exists());
    assert!(root.is_dir());
}

#[test]
fn lines_round_trip_messages_with_newlines_tabs_and_backslashes() {
    for m in [
        "plain",
        "two\nlines",
        "tab\there",
        "back\\slash\\n",
        "cr\r\n",
        "",
    ] {
        let mut buf = Vec::new();
        encode_line(&mut buf, -5, m);
        assert_eq!(buf.iter().filter(|&&b| b == b'\n').count(), 1, "{m:?}");
        let (t, got) = decode_line(&buf[..buf.len() - 1]).unwrap();
        assert_eq!((t, got.as_ref()), (-5, m));
    }
    assert_eq!(decode_line(b"notanumber\tx"), None);
    assert_eq!(decode_line(b"12345"), None);
}

#[test]
fn appended_events_survive_reopen_and_filter_by_time() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir);
    store
        .append(
            "/berth/default/web",
            "ecs/app/t1",
            &[ev(1, "a"), ev(2, "b"), ev(3, "c")],
        )
        .unwrap();
    let store = open(&dir);
    let streams = store.streams("/berth/default/web").unwrap();
    assert_eq!(streams["ecs/app/t1"].first_event, Some(1));
    assert_eq!(streams["ecs/app/t1"].last_event, Some(3));
    assert!(streams["ecs/app/t1"].creation_time > 0);
    let got = store
        .events("/berth/default/web", "ecs/app/t1", Some(2), Some(3))
        .unwrap();
    assert_eq!(got, vec![ev(2, "b")]);
    assert!(store.group("/berth/default/web").unwrap().creation_time > 0);
    assert!(store.delete_group("/berth/default/web").unwrap());
    assert!(store.streams("/berth/default/web").is_none());
    assert!(!store.delete_group("/berth/default/web").unwrap());
}

#[test]
fn events_are_split_into_hourly_segments_and_read_back_in_time_order() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir);
    let h = SEGMENT_MS;
    store.append("g", "s", &[ev(2 * h + 5, "late")]).unwrap();
    store
        .append("g", "s", &[ev(h + 1, "early"), ev(2 * h + 1, "mid")])
        .unwrap();
    assert_eq!(segment_files(dir.path()), vec!["1.log", "2.log"]);
    let all: Vec<String> = store
        .events("g", "s", None, None)
        .unwrap()
        .into_iter()
        .map(|e| e.message)
        .collect();
    assert_eq!(all, vec!["early", "mid", "late"]);
    assert_eq!(store.segments("g", "s", Some(2 * h), None).len(), 1);
}

#[test]
fn a_torn_last_line_is_cut_on_open_and_appends_continue_cleanly() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir);
    store.append("g", "s", &[ev(10, "whole")]).unwrap();
    drop(store);
    let seg = dir.path().join("g/streams/s/0.log");
    let mut f = std::fs::OpenOptions::new().append(true).open(&seg).unwrap();
    f.write_all(b"11\thalf a li").unwrap();
    drop(f);
    let store = open(&dir);
    assert_eq!(
        store.events("g", "s", None, None).unwrap(),
        vec![ev(10, "whole")]
    );
    store.append("g", "s", &[ev(12, "next")]).unwrap();
    assert_eq!(
        store.events("g", "s", None, None).unwrap(),
        vec![ev(10, "whole"), ev(12, "next")]
    );
}

#[test]
fn retention_hides_old_events_at_once_and_enforcement_drops_their_segments() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir);
    let now = now_ms();
    assert!(store.create_group("g").unwrap());
    assert!(!store.create_group("g").unwrap());
    store
        .append("g", "s", &[ev(now - 3 * DAY_MS, "old")])
        .unwrap();
    store.append("g", "s", &[ev(now - 1000, "new")]).unwrap();
    store
        .append("keep", "s", &[ev(now - 3 * DAY_MS, "kept")])
        .unwrap();
    // Default: never expire.
    assert_eq!(store.enforce_retention(now).unwrap(), 0);
    assert_eq!(store.events("g", "s", None, None).unwrap().len(), 2);

    store
        .update_group("g", |m| m.retention_in_days = Some(1))
        .unwrap()
        .unwrap();
    assert_eq!(store.group("g").unwrap().retention_in_days, Some(1));
    let visible: Vec<String> = store
        .events("g", "s", None, None)
        .unwrap()
        .into_iter()
        .map(|e| e.message)
        .collect();
    assert_eq!(visible, vec!["new"]);
    let bytes_before = store.streams("g").unwrap()["s"].stored_bytes;
    assert_eq!(segment_files(dir.path()).len(), 3);

    assert_eq!(store.enforce_retention(now).unwrap(), 1);
    assert_eq!(segment_files(dir.path()).len(), 2);
    let info = &store.streams("g").unwrap()["s"];
    assert_eq!(info.first_event, Some(now - 1000));
    assert!(info.stored_bytes < bytes_before);
    // The group without retention keeps everything; retention survives a restart.
    assert_eq!(store.events("keep", "s", None, None).unwrap().len(), 1);
    let store = open(&dir);
    assert_eq!(store.group("g").unwrap().retention_in_days, Some(1));
    assert_eq!(store.enforce_retention(now).unwrap(), 0);
}

#[test]
fn the_first_layout_is_converted_into_segments() {
    let dir = tempfile::tempdir().unwrap();
    let g = dir.path().join(encode("/berth/default/web"));
    std::fs::create_dir_all(&g).unwrap();
    std::fs::write(
        g.join(format!("{}.jsonl", encode("ecs/app/t1"))),
        "{\"t\":5,\"m\":\"hello\"}\n{\"t\":6,\"m\":\"two\\nlines\"}\n{\"t\":7,",
    )
    .unwrap();
    let store = open(&dir);
    assert_eq!(
        store
            .events("/berth/default/web", "ecs/app/t1", None, None)
            .unwrap(),
        vec![ev(5, "hello"), ev(6, "two\nlines")]
    );
    assert!(!g.join(format!("{}.jsonl", encode("ecs/app/t1"))).exists());
}

#[test]
fn streams_are_created_only_in_existing_groups_and_deleted_with_their_files() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir);
    assert_eq!(
        store.create_stream("nope", "s").unwrap_err().kind(),
        std::io::ErrorKind::NotFound
    );
    store.create_group("g").unwrap();
    assert!(store.create_stream("g", "s").unwrap());
    assert!(!store.create_stream("g", "s").unwrap());
    store.append("g", "s", &[ev(1, "x")]).unwrap();
    assert!(store.delete_stream("g", "s").unwrap());
    assert!(!store.delete_stream("g", "s").unwrap());
    assert!(store.events("g", "s", None, None).unwrap().is_empty());
    assert!(segment_files(dir.path()).is_empty());
}

#[test]
fn metric_filters_turn_matching_lines_into_metrics_at_ingest() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir);
    let metrics =
        berth_metrics::MetricStore::open(dir.path().join("metrics"), Default::default()).unwrap();
    store.attach_metrics(metrics.clone());
    store.create_group("g").unwrap();
    let filter = |name: &str, pattern: &str, value: &str| metric_filter::MetricFilter {
        filter_name: name.into(),
        filter_pattern: pattern.into(),
        metric_transformations: vec![metric_filter::MetricTransformation {
            metric_name: name.into(),
            metric_namespace: "App".into(),
            metric_value: value.into(),
            default_value: None,
            dimensions: Default::default(),
            unit: Some("Count".into()),
        }],
        creation_time: 0,
    };
    store
        .update_group("g", |m| {
            m.metric_filters.push(filter("Errors", "ERROR", "1"));
            m.metric_filters
                .push(filter("Latency", "{ $.ms > 0 }", "$.ms"));
        })
        .unwrap();
    let now = now_ms();
    store
        .append(
            "g",
            "s",
            &[
                ev(now, "ERROR one"),
                ev(now, "fine"),
                ev(now, "ERROR two"),
                ev(now, r#"{"ms": 250}"#),
                ev(now, r#"{"ms": "not a number"}"#),
            ],
        )
        .unwrap();
    let id = |name: &str| berth_metrics::MetricId::new("App", name, vec![]);
    let (_, errors) = metrics.latest(&id("Errors")).unwrap();
    assert_eq!((errors.count, errors.sum), (2.0, 2.0));
    let (_, latency) = metrics.latest(&id("Latency")).unwrap();
    assert_eq!((latency.count, latency.sum), (1.0, 250.0));
}

#[test]
fn metric_filter_data_carry_dimensions_and_default_values() {
    use metric_filter::{data_for, MetricFilter, MetricTransformation};
    let t = |value: &str, default: Option<f64>, dims: &[(&str, &str)]| MetricTransformation {
        metric_name: "M".into(),
        metric_namespace: "N".into(),
        metric_value: value.into(),
        default_value: default,
        dimensions: dims
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        unit: None,
    };
    let f = |pattern: &str, tr| MetricFilter {
        filter_name: "f".into(),
        filter_pattern: pattern.into(),
        metric_transformations: vec![tr],
        creation_time: 0,
    };
    let events = [ev(5_000, r#"{"svc":"api","ms":3}"#), ev(6_500, "plain")];
    let d = data_for(
        &[f("{ $.ms >= 1 }", t("$.ms", None, &[("Service", "$.svc")]))],
        &events,
    );
    assert_eq!(d.len(), 1);
    assert_eq!(d[0].timestamp, 5);
    assert_eq!(
        d[0].id.dimensions,
        vec![berth_metrics::Dimension::new("Service", "api")]
    );
    assert_eq!(
        d[0].sample,
        berth_metrics::Sample::Values {
            values: vec![3.0],
            counts: vec![]
        }
    );
    // No match: the default value once, at the batch's newest event.
    let d = data_for(&[f("NOMATCH", t("1", Some(0.0), &[]))], &events);
    assert_eq!(d.len(), 1);
    assert_eq!(d[0].timestamp, 6);
    assert_eq!(
        d[0].sample,
        berth_metrics::Sample::Values {
            values: vec![0.0],
            counts: vec![]
        }
    );
    // Validation names every problem.
    let bad = f(
        "{ $.x = ",
        MetricTransformation {
            metric_name: String::new(),
            ..t("abc", Some(1.0), &[("D", "$.d")])
        },
    );
    let errors = metric_filter::validate(&bad);
    assert_eq!(errors.len(), 4, "{errors:?}");
    assert!(errors[0].starts_with("filterPattern:"), "{errors:?}");
}
