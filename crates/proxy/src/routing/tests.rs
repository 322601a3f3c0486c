//! Tests of conditions, rule selection, weighted forwards and redirect rendering.

use super::*;
use crate::snapshot::{compile, Carry};
use berth_model::protocol::proxy::{self as w, ProxyConfig};
use std::time::Instant;

fn tg(arn: &str) -> w::TargetGroup {
    w::TargetGroup {
        arn: arn.into(),
        name: arn.into(),
        algorithm: "round_robin".into(),
        targets: vec![w::Target {
            id: "127.0.0.1".into(),
            port: 1,
            draining: false,
        }],
        ..Default::default()
    }
}

fn fwd(arn: &str) -> w::Action {
    w::Action::Forward {
        target_groups: vec![w::WeightedTargetGroup {
            arn: arn.into(),
            weight: 1,
        }],
        stickiness_seconds: None,
    }
}

fn rule(priority: u32, conditions: Vec<w::Condition>, target: &str) -> w::Rule {
    w::Rule {
        arn: format!("rule-{priority}"),
        priority,
        conditions,
        actions: vec![fwd(target)],
    }
}

fn config(rules: Vec<w::Rule>) -> ProxyConfig {
    ProxyConfig {
        version: 1,
        listeners: vec![w::Listener {
            arn: "l".into(),
            load_balancer_arn: "lb".into(),
            bind: "127.0.0.1:0".into(),
            protocol: "HTTP".into(),
            rules,
            default_actions: vec![fwd("default")],
            idle_timeout_seconds: 60,
            certificates: Vec::new(),
        }],
        target_groups: ["default", "api", "img", "admin", "q", "ip", "post"]
            .iter()
            .map(|a| tg(a))
            .collect(),
    }
}

fn request(method: &str, uri: &str, headers: &[(&str, &str)]) -> http::Request<()> {
    let mut b = http::Request::builder().method(method).uri(uri);
    for (k, v) in headers {
        b = b.header(*k, *v);
    }
    b.body(()).unwrap()
}

fn routed(cfg: &ProxyConfig, req: &http::Request<()>, source: &str) -> String {
    let (snap, _) = compile(
        cfg,
        &Carry::default(),
        &crate::Tuning::default(),
        Instant::now(),
        &Default::default(),
    )
    .unwrap();
    let fields = crate::fields::Fields::from_map(req.headers());
    let view = RequestView::new(req.method(), req.uri(), &fields, source.parse().unwrap());
    match snap.listeners[0].routes.select(&view).0 {
        Action::Forward(f) => f.groups[0].0.arn.clone(),
        other => panic!("unexpected {other:?}"),
    }
}

#[test]
fn rules_select_by_priority_and_conditions() {
    use w::Condition as C;
    let cfg = config(vec![
        // Deliberately out of order: priority decides, not position.
        rule(
            20,
            vec![C::PathPattern {
                values: vec!["/api/*".into()],
            }],
            "api",
        ),
        rule(
            10,
            vec![
                C::HostHeader {
                    values: vec!["admin.*".into()],
                },
                C::PathPattern {
                    values: vec!["/api/*".into()],
                },
            ],
            "admin",
        ),
        rule(
            30,
            vec![C::PathPattern {
                values: vec!["*.png".into(), "*.jpg".into()],
            }],
            "img",
        ),
        rule(
            40,
            vec![C::QueryString {
                values: vec![w::QueryPair {
                    key: Some("v".into()),
                    value: "2*".into(),
                }],
            }],
            "q",
        ),
        rule(
            50,
            vec![C::SourceIp {
                values: vec!["10.0.0.0/8".into()],
            }],
            "ip",
        ),
        rule(
            60,
            vec![
                C::HttpRequestMethod {
                    values: vec!["POST".into()],
                },
                C::HttpHeader {
                    name: "X-Env".into(),
                    values: vec!["PROD".into()],
                },
            ],
            "post",
        ),
    ]);
    let cases: Vec<(http::Request<()>, &str, &str)> = vec![
        (
            request("GET", "/api/users", &[("host", "www.example.com")]),
            "1.2.3.4",
            "api",
        ),
        (
            request("GET", "/api/users", &[("host", "ADMIN.example.com:8080")]),
            "1.2.3.4",
            "admin",
        ),
        (request("GET", "/API/users", &[]), "1.2.3.4", "default"),
        (request("GET", "/a/b/c.jpg?x=1", &[]), "1.2.3.4", "img"),
        (request("GET", "/x?a=1&v=2.1", &[]), "1.2.3.4", "q"),
        (request("GET", "/x?v=3", &[]), "1.2.3.4", "default"),
        (request("GET", "/x", &[]), "10.9.8.7", "ip"),
        (request("GET", "/x", &[]), "::ffff:10.9.8.7", "ip"),
        (
            request("POST", "/x", &[("x-env", "prod")]),
            "1.2.3.4",
            "post",
        ),
        (
            request("GET", "/x", &[("x-env", "prod")]),
            "1.2.3.4",
            "default",
        ),
        (request("POST", "/x", &[]), "1.2.3.4", "default"),
    ];
    for (req, source, expected) in &cases {
        assert_eq!(
            routed(&cfg, req, source),
            *expected,
            "{} {} {:?} from {source}",
            req.method(),
            req.uri(),
            req.headers()
        );
    }
}

#[test]
fn invalid_rules_are_refused_with_every_error() {
    use w::Condition as C;
    let mut cfg = config(vec![
        rule(
            1,
            vec![C::SourceIp {
                values: vec!["10.0.0.0/33".into()],
            }],
            "api",
        ),
        rule(1, vec![C::HttpRequestMethod { values: vec![] }], "nope"),
    ]);
    cfg.target_groups[0].health_check.matcher = "abc".into();
    let errors = compile(
        &cfg,
        &Carry::default(),
        &crate::Tuning::default(),
        Instant::now(),
        &Default::default(),
    )
    .unwrap_err();
    let all = errors.join("\n");
    for needle in [
        "listeners[0].rules[0].conditions[0].values[0]",
        "listeners[0].rules[1].priority",
        "listeners[0].rules[1].conditions[0].values",
        "listeners[0].rules[1].actions[0].target_groups[0].arn",
        "target_groups[0].health_check.matcher",
    ] {
        assert!(all.contains(needle), "missing {needle} in:\n{all}");
    }
}

#[test]
fn weighted_split_follows_cumulative_weights() {
    let cfg = config(vec![]);
    let (snap, _) = compile(
        &cfg,
        &Carry::default(),
        &crate::Tuning::default(),
        Instant::now(),
        &Default::default(),
    )
    .unwrap();
    let g = |i: usize| snap.groups[i].clone();
    let f = Forward {
        groups: vec![(g(0), 90), (g(1), 0), (g(2), 10)],
        total_weight: 100,
        stickiness: None,
    };
    let mut counts = [0usize; 3];
    for ticket in 0..100 {
        let chosen = f.weighted(ticket).unwrap();
        let i = [0, 1, 2]
            .into_iter()
            .find(|i| Arc::ptr_eq(chosen, &g(*i)))
            .unwrap();
        counts[i] += 1;
    }
    assert_eq!(counts, [90, 0, 10]);
    assert!(f.weighted(100).is_none());
    let mut hits = 0;
    for _ in 0..10_000 {
        if Arc::ptr_eq(f.choose(&Default::default()).unwrap().0, &g(0)) {
            hits += 1;
        }
    }
    assert!((8_700..=9_300).contains(&hits), "{hits}");
}

#[test]
fn redirects_render_placeholders() {
    let input = RedirectInput {
        protocol: "http",
        host: "example.com",
        port: 80,
        path: "/a/b",
        query: "x=1",
    };
    let r = |protocol: &str, host: &str, port: &str, path: &str, query: &str| Redirect {
        protocol: protocol.into(),
        host: host.into(),
        port: port.into(),
        path: path.into(),
        query: query.into(),
        status: StatusCode::MOVED_PERMANENTLY,
    };
    let table = [
        (
            r("#{protocol}", "#{host}", "#{port}", "/#{path}", "#{query}"),
            "http://example.com/a/b?x=1",
        ),
        (
            r("HTTPS", "#{host}", "443", "/#{path}", "#{query}"),
            "https://example.com/a/b?x=1",
        ),
        (
            r("https", "#{host}", "8443", "/new/#{path}", ""),
            "https://example.com:8443/new/a/b",
        ),
        (
            r(
                "#{protocol}",
                "www.#{host}",
                "#{port}",
                "#{path}",
                "y=2&#{query}",
            ),
            "http://www.example.com/a/b?y=2&x=1",
        ),
    ];
    for (redirect, expected) in table {
        assert_eq!(redirect.location(&input), expected);
    }
}

#[test]
fn cidrs_and_ports() {
    assert!(Cidr::parse("192.168.0.0/16")
        .unwrap()
        .contains("192.168.4.5".parse().unwrap()));
    assert!(!Cidr::parse("192.168.0.0/16")
        .unwrap()
        .contains("192.169.0.1".parse().unwrap()));
    assert!(Cidr::parse("0.0.0.0/0")
        .unwrap()
        .contains("8.8.8.8".parse().unwrap()));
    assert!(Cidr::parse("::1").unwrap().contains("::1".parse().unwrap()));
    assert!(!Cidr::parse("10.0.0.0/8")
        .unwrap()
        .contains("::1".parse().unwrap()));
    for bad in ["10.0.0.0/33", "x", "10.0.0/8", "::/129"] {
        assert!(Cidr::parse(bad).is_err(), "{bad}");
    }
    assert_eq!(strip_port("example.com:8080"), "example.com");
    assert_eq!(strip_port("[::1]:80"), "[::1]");
    assert_eq!(strip_port("example.com"), "example.com");
    assert_eq!(percent_decode("a%20b+c"), "a b c");
    assert_eq!(percent_decode("100%"), "100%");
}
