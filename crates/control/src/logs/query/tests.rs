//! Table tests of the Logs Insights language on a fixture store: results of queries, and
//! refused queries with the position of the problem.

use super::*;
use crate::logs::scan::run_query;
use crate::logs::LogStore;
use berth_model::protocol::agent::LogEvent;

/// 2024-01-01 00:00:00 UTC in ms.
const T: i64 = 1_704_067_200_000;

fn fixture() -> (tempfile::TempDir, LogStore) {
    let dir = tempfile::tempdir().unwrap();
    let store = LogStore::open(dir.path().to_path_buf()).unwrap();
    let ev = |s: i64, m: &str| LogEvent {
        timestamp: T + s * 1000,
        message: m.into(),
    };
    store
        .append(
            "app",
            "a",
            &[
                ev(
                    0,
                    r#"{"level":"INFO","ms":100,"user":{"id":"u1"},"path":"/a"}"#,
                ),
                ev(
                    30,
                    r#"{"level":"ERROR","ms":900,"user":{"id":"u2"},"path":"/b"}"#,
                ),
                ev(70, "GET /index.html 200 512 user=ann"),
            ],
        )
        .unwrap();
    store
        .append(
            "app",
            "b",
            &[
                ev(
                    10,
                    r#"{"level":"ERROR","ms":300,"user":{"id":"u1"},"path":"/a"}"#,
                ),
                ev(65, "GET /missing 404 0 user=bob"),
                ev(130, "ERROR disk full on /dev/sda"),
            ],
        )
        .unwrap();
    (dir, store)
}

fn run(store: &LogStore, text: &str) -> String {
    let q = Query::parse(text).unwrap_or_else(|e| panic!("{text:?}: {e}"));
    let out = run_query(
        store,
        &["app".to_string()],
        T,
        T + 3_600_000,
        &q,
        10_000,
        &Default::default(),
    )
    .unwrap();
    out.rows
        .iter()
        .map(|r| {
            r.iter()
                .map(|(f, v)| format!("{f}={v}"))
                .collect::<Vec<_>>()
                .join(",")
        })
        .collect::<Vec<_>>()
        .join("; ")
}

#[test]
fn queries_give_the_expected_rows() {
    let (_dir, store) = fixture();
    let cases: &[(&str, &str)] = &[
        (
            "filter @message like /ERROR/ | stats count(*) by bin(1m)",
            "bin(1m)=2024-01-01 00:00:00.000,count(*)=2; bin(1m)=2024-01-01 00:02:00.000,count(*)=1",
        ),
        (
            "filter level = \"ERROR\" | stats avg(ms) as avg, max(ms), min(ms), sum(ms), count(ms)",
            "avg=600,max(ms)=900,min(ms)=300,sum(ms)=1200,count(ms)=2",
        ),
        ("stats count(*) by level | sort level asc", "count(*)=3; level=ERROR,count(*)=2; level=INFO,count(*)=1"),
        (
            "fields @timestamp, user.id | filter ispresent(user.id) | sort @timestamp desc | limit 2",
            "@timestamp=2024-01-01 00:00:30.000,user.id=u2; @timestamp=2024-01-01 00:00:10.000,user.id=u1",
        ),
        (
            "parse @message \"GET * * * user=*\" as path, status, size, who | filter status >= 400 | display who, status",
            "who=bob,status=404",
        ),
        (
            r"parse @message /user=(?<who>\w+)/ | filter ispresent(who) | stats count(*) by who | sort who desc",
            "who=bob,count(*)=1; who=ann,count(*)=1",
        ),
        ("filter path in [\"/a\", \"/c\"] and not level = \"INFO\" | fields @logStream", "@logStream=b"),
        (
            "filter @message like \"disk\" or ms > 800 | display @message",
            r#"@message=ERROR disk full on /dev/sda; @message={"level":"ERROR","ms":900,"user":{"id":"u2"},"path":"/b"}"#,
        ),
        ("filter @message =~ /^GET/ | stats count(*) as n", "n=2"),
        ("stats pct(ms, 50) as p50, count_distinct(user.id) as users", "p50=300,users=2"),
        ("filter ms > 100 | fields ms * 2 as double | sort double asc | display double", "double=600; double=1800"),
        ("filter ispresent(path) | sort @timestamp asc | dedup path | display path", "path=/a; path=/b"),
        (
            "filter level = \"ERROR\" | stats count(*) by bin(5m), @logStream",
            "bin(5m)=2024-01-01 00:00:00.000,@logStream=a,count(*)=1; bin(5m)=2024-01-01 00:00:00.000,@logStream=b,count(*)=1",
        ),
        ("filter @message like \"nothing\" | stats count(*)", "count(*)=0"),
        (
            "filter strlen(@message) < 30 | display @message",
            "@message=ERROR disk full on /dev/sda; @message=GET /missing 404 0 user=bob",
        ),
        (
            "filter @logStream = \"b\" | limit 1",
            "@timestamp=2024-01-01 00:02:10.000,@message=ERROR disk full on /dev/sda",
        ),
        ("filter @message like /(?i)DISK/ | fields toupper(@logStream) as s | display s", "s=B"),
        ("filter @message not like /ERROR|GET/ | stats count(*) as n", "n=1"),
    ];
    for (query, want) in cases {
        assert_eq!(run(&store, query), *want, "{query}");
    }
}

#[test]
fn statistics_count_scanned_and_matched_records() {
    let (_dir, store) = fixture();
    let q = Query::parse("filter @message like /ERROR/ | stats count(*)").unwrap();
    let out = run_query(
        &store,
        &["app".into()],
        T,
        T + 3_600_000,
        &q,
        100,
        &Default::default(),
    )
    .unwrap();
    assert_eq!(out.stats.records_scanned, 6);
    assert_eq!(out.stats.records_matched, 3);
    assert!(out.stats.bytes_scanned > 100);
    // A time range cuts scanned records too.
    let out = run_query(
        &store,
        &["app".into()],
        T + 60_000,
        T + 120_000,
        &q,
        100,
        &Default::default(),
    )
    .unwrap();
    assert_eq!(
        (out.stats.records_scanned, out.stats.records_matched),
        (2, 0)
    );
    // A cancelled query stops.
    let cancelled = std::sync::atomic::AtomicBool::new(true);
    assert!(run_query(
        &store,
        &["app".into()],
        T,
        T + 3_600_000,
        &q,
        100,
        &cancelled
    )
    .is_err());
}

#[test]
fn the_literal_fast_path_is_only_taken_when_it_is_safe() {
    let lit = |q: &str| Query::parse(q).unwrap().required_literal();
    assert_eq!(
        lit("filter @message like /ERROR/").as_deref(),
        Some("ERROR")
    );
    assert_eq!(
        lit("fields a | filter x = 1 and @message like \"disk\"").as_deref(),
        Some("disk")
    );
    assert_eq!(lit("filter @message like /ERR.R/"), None);
    assert_eq!(lit("filter @message like /(?i)error/"), None);
    assert_eq!(lit("filter @message like /a/ or x = 1"), None);
    assert_eq!(lit("filter @message not like /ERROR/"), None);
    assert_eq!(lit("stats count(*) | filter @message like /x/"), None);
    let decides = |q: &str| Query::parse(q).unwrap().literal_decides();
    assert!(decides("filter @message like /ERROR/ | stats count(*)"));
    assert!(!decides("filter @message like /ERROR/ and x = 1"));
    assert!(!decides("fields x | filter @message like /ERROR/"));
    assert!(!decides("filter @message not like /ERROR/"));
}

#[test]
fn invalid_queries_name_the_problem_and_its_position() {
    let cases: &[(&str, usize, &str)] = &[
        ("", 0, "expected a command"),
        ("fields", 6, "expected a value"),
        ("filter x = ", 11, "expected a value"),
        ("frobnicate x", 0, "unknown command"),
        ("stats count(*) by", 17, "expected a value"),
        ("stats foo(x)", 6, "unknown function"),
        ("filter @message like /(/", 21, "invalid regular expression"),
        ("parse @message \"no stars\" as a", 15, "no `*`"),
        (
            "parse @message \"* *\" as a",
            25,
            "captures 2 fields, found 1",
        ),
        ("filter x | limit 0", 17, "positive number"),
        ("filter a = 1 b", 13, "expected `|`"),
        ("stats pct(x, 200)", 13, "percentile"),
        ("filter bin(x) > 1", 7, "bin: expected one duration"),
        ("filter 5q > 1", 8, "unknown time unit"),
        ("filter x = \"open", 11, "unterminated string"),
        ("filter frob(x)", 7, "unknown function"),
        ("filter (a = 1", 13, "expected `)`"),
    ];
    for (query, position, text) in cases {
        let e = Query::parse(query).expect_err(query);
        assert_eq!(e.position, *position, "{query:?}: {e}");
        assert!(e.message.contains(text), "{query:?}: {e}");
    }
}

#[test]
fn times_and_numbers_render_as_insights_shows_them() {
    assert_eq!(format_time(T + 61_234), "2024-01-01 00:01:01.234");
    assert_eq!(format_time(951_782_400_000), "2000-02-29 00:00:00.000");
    assert_eq!(format_num(3.0), "3");
    assert_eq!(format_num(2.5), "2.5");
    assert_eq!(format_num(1.0 / 3.0), "0.3333");
}
