//! Table tests of filter patterns: what matches, what is refused and where.

use super::*;

const JSON: &str = r#"{"level":"ERROR","ms":750,"user":{"name":"ann","roles":["admin","dev"]},"ok":true,"gone":null,"path":"/api/v1/users"}"#;

#[test]
fn patterns_match_like_cloudwatch() {
    let cases: &[(&str, &str, bool)] = &[
        ("", "anything", true),
        ("ERROR", "x ERROR y", true),
        ("ERROR", "x error y", false),
        ("ERROR timeout", "ERROR: timeout", true),
        ("ERROR timeout", "ERROR: refused", false),
        ("ERROR -timeout", "ERROR timeout", false),
        ("ERROR -timeout", "ERROR refused", true),
        ("\"disk full\"", "the disk full now", true),
        ("\"disk full\"", "disk is full", false),
        ("?WARN ?ERROR", "a WARN", true),
        ("?WARN ?ERROR", "INFO", false),
        ("{ $.level = \"ERROR\" }", JSON, true),
        ("{ $.level = \"ERR*\" }", JSON, true),
        ("{ $.level = \"*RO*\" }", JSON, true),
        ("{ $.level = \"WARN\" }", JSON, false),
        ("{ $.level != \"WARN\" }", JSON, true),
        ("{ $.level = ERROR }", JSON, true),
        ("{ $.level = \"ERROR\" && $.ms > 500 }", JSON, true),
        ("{ $.level = \"ERROR\" && $.ms > 1000 }", JSON, false),
        ("{ $.ms >= 750 && $.ms <= 750 }", JSON, true),
        ("{ $.ms < 750 }", JSON, false),
        ("{ $.ms = 750 }", JSON, true),
        ("{ $.ms != 750 }", JSON, false),
        (
            "{ ($.ms > 1000 || $.level = \"ERROR\") && $.ok IS TRUE }",
            JSON,
            true,
        ),
        (
            "{ $.ms > 1000 || ($.level = \"ERROR\" && $.ok IS FALSE) }",
            JSON,
            false,
        ),
        ("{ $.user.name = \"ann\" }", JSON, true),
        ("{ $.user.roles[1] = \"dev\" }", JSON, true),
        ("{ $.user.roles[2] = \"dev\" }", JSON, false),
        ("{ $.missing NOT EXISTS }", JSON, true),
        ("{ $.level NOT EXISTS }", JSON, false),
        ("{ $.gone IS NULL }", JSON, true),
        ("{ $.level IS NULL }", JSON, false),
        ("{ $.missing = \"x\" }", JSON, false),
        ("{ $.path = \"/api/*\" }", JSON, true),
        ("{ $.level = \"ERROR\" }", "not json ERROR", false),
        (
            "[ip, user, status = 5*, size > 100]",
            "1.2.3.4 ann 503 2048",
            true,
        ),
        (
            "[ip, user, status = 5*, size > 100]",
            "1.2.3.4 ann 404 2048",
            false,
        ),
        (
            "[ip, user, status = 5*, size > 100]",
            "1.2.3.4 ann 503 10",
            false,
        ),
        (
            "[ip, ..., status = 4* || status = 5*]",
            "1.2.3.4 a b c 404",
            true,
        ),
        ("[ip, ..., status != 200]", "1.2.3.4 200", false),
        ("[ip, req, status]", "1.2.3.4 \"GET / HTTP/1.1\" 200", true),
    ];
    for (pattern, line, want) in cases {
        let p = FilterPattern::parse(pattern).unwrap_or_else(|e| panic!("{pattern:?}: {e}"));
        assert_eq!(p.matches(line), *want, "{pattern:?} on {line:?}");
    }
}

#[test]
fn invalid_patterns_are_refused_with_the_position() {
    let cases: &[(&str, usize, &str)] = &[
        ("{ $.level = ", 12, "expected a value"),
        ("{ level = \"x\" }", 2, "expected a selector"),
        ("{ $.a = \"x\"", 11, "expected `}`"),
        ("{ $.a > \"x\" }", 11, "compare numbers"),
        ("{ $.a ~ 1 }", 6, "expected an operator"),
        ("{ $.a = 1 } trailing", 12, "after `}`"),
        ("{ $. = 1 }", 4, "field name"),
        ("{ $.a[x] = 1 }", 6, "array index"),
        ("{ ($.a = 1 }", 11, "expected `)`"),
        ("{ $.a IS MAYBE }", 9, "NULL"),
        ("\"unterminated", 0, "unterminated"),
        ("ERROR -", 7, "expected a term"),
        ("[a, b", 5, "`,` or `]`"),
    ];
    for (pattern, position, text) in cases {
        let e = FilterPattern::parse(pattern).expect_err(pattern);
        assert_eq!(e.position, *position, "{pattern:?}: {e}");
        assert!(e.message.contains(text), "{pattern:?}: {e}");
    }
}

#[test]
fn selectors_extract_values_for_metric_transformations() {
    let p = FilterPattern::parse("{ $.ms > 0 }").unwrap();
    assert_eq!(p.extract(JSON, "$.ms").as_deref(), Some("750"));
    assert_eq!(p.extract(JSON, "$.user.roles[0]").as_deref(), Some("admin"));
    assert_eq!(p.extract(JSON, "$.nope"), None);
    assert_eq!(
        p.extract("{\"ms\": -1}", "$.ms"),
        None,
        "no match, no value"
    );
    let s = FilterPattern::parse("[ip, user, status, size]").unwrap();
    assert_eq!(
        s.extract("1.2.3.4 ann 200 512", "$size").as_deref(),
        Some("512")
    );
    assert!(wildcard_match("a*c*e", "abcde"));
    assert!(!wildcard_match("a*c*e", "abcdf"));
}
