//! Table-driven tests of the `loadBalancers` and `targetGroups` sections: a good file with
//! defaults filled in, and bad ones whose every error must be listed with its path.

use crate::elb::{ActionSpec, HttpHeaderSpec, QueryStringSpec, RedirectSpec, WeightedTargetGroup};
use crate::{parse, StackError};
use std::path::Path;

const GOOD: &str = r#"
name: shop
loadBalancers:
  web:
    listeners:
      - port: 8080
        defaultAction: {forward: frontend}
        rules:
          - priority: 10
            conditions: {pathPattern: "/api/*", httpHeader: [{name: X-Env, values: [beta]}], queryString: [{value: on}]}
            action: {forward: {targetGroups: [{name: api, weight: 90}, frontend], stickinessSeconds: 60}}
          - priority: 20
            conditions: {hostHeader: [a.example.com]}
            action: {redirect: {protocol: HTTPS, port: 443}}
targetGroups:
  frontend:
    healthCheck: {path: /health, intervalSeconds: 1, timeoutSeconds: 0.5, matcher: 200}
    attributes: {deregistration_delay.timeout_seconds: 1, stickiness.enabled: false}
  api: {}
services:
  api:
    loadBalancers: [{targetGroup: api, containerName: app, containerPort: 8080}]
    taskDefinition:
      containerDefinitions: [{name: app, image: process://berth, portMappings: [{containerPort: 8080}]}]
"#;

#[test]
fn good_sections_parse_with_defaults_filled_in() {
    let s = parse(GOOD, Path::new(".")).unwrap();
    let l = &s.load_balancers["web"].listeners[0];
    assert_eq!(l.port, 8080);
    assert_eq!(l.default_action.target_group_names(), vec!["frontend"]);
    let r = &l.rules[0];
    assert_eq!(
        r.conditions.path_pattern,
        vec!["/api/*"],
        "a single string is a list of one"
    );
    assert_eq!(
        r.conditions.http_header,
        vec![HttpHeaderSpec {
            name: "X-Env".into(),
            values: vec!["beta".into()]
        }]
    );
    assert_eq!(
        r.conditions.query_string,
        vec![QueryStringSpec {
            key: None,
            value: "on".into()
        }]
    );
    match &r.action {
        ActionSpec::Forward(f) => {
            assert_eq!(
                f.target_groups,
                vec![
                    WeightedTargetGroup {
                        name: "api".into(),
                        weight: 90
                    },
                    WeightedTargetGroup {
                        name: "frontend".into(),
                        weight: 1
                    },
                ]
            );
            assert_eq!(f.stickiness_seconds, Some(60));
        }
        other => panic!("expected a forward, got {other:?}"),
    }
    assert_eq!(
        l.rules[1].action,
        ActionSpec::Redirect(RedirectSpec {
            protocol: Some("HTTPS".into()),
            port: Some("443".into()),
            status_code: "HTTP_301".into(),
            ..RedirectSpec::default()
        })
    );
    let frontend = &s.target_groups["frontend"];
    assert_eq!(frontend.port, 80, "default port");
    assert_eq!(frontend.health_check.matcher.as_deref(), Some("200"));
    assert_eq!(
        frontend.attributes["deregistration_delay.timeout_seconds"],
        "1"
    );
    assert_eq!(frontend.attributes["stickiness.enabled"], "false");
    let settings = s.target_groups["api"].health_check.settings();
    assert_eq!(
        (
            settings.path.as_str(),
            settings.interval_seconds,
            settings.healthy_threshold
        ),
        ("/", 30.0, 5)
    );
    assert_eq!(
        s.services["api"].load_balancers[0].target_group.as_deref(),
        Some("api")
    );
}

/// (what, stack text, every error expected: path and a fragment of its message)
type Case = (
    &'static str,
    &'static str,
    &'static [(&'static str, &'static str)],
);

const BAD: &[Case] = &[
    (
        "sections of the wrong type",
        "name: s\nservices: {}\nloadBalancers: [a]\ntargetGroups: 3\n",
        &[
            ("loadBalancers", "expected a mapping of load balancer name to load balancer, found a list"),
            ("targetGroups", "expected a mapping of target group name to target group, found number 3"),
        ],
    ),
    (
        "target groups",
        r#"
name: s
services: {}
targetGroups:
  -bad-: {}
  tg:
    port: 0
    protcol: HTTP
    healthCheck:
      path: health
      intervalSeconds: 1
      healthyThreshold: 11
      matcher: "600"
      port: traffic
      enabled: yes
    attributes: {stickiness.enabled: maybe, deregistration_delay.timeout_seconds: 9999, nope: 1, slow_start.duration_seconds: [1]}
"#,
        &[
            ("targetGroups.-bad-", "expected a target group name of 1-32 letters"),
            ("targetGroups.tg.protcol", "found unknown key \"protcol\""),
            ("targetGroups.tg.port", "expected an integer from 1 to 65535, found number 0"),
            ("targetGroups.tg.healthCheck.enabled", "expected true or false, found \"yes\""),
            ("targetGroups.tg.healthCheck.path", "expected a path starting with / of at most 1024 characters, found \"health\""),
            ("targetGroups.tg.healthCheck.port", "expected traffic-port or a port from 1 to 65535, found \"traffic\""),
            ("targetGroups.tg.healthCheck.healthyThreshold", "expected an integer from 2 to 10, found number 11"),
            ("targetGroups.tg.healthCheck.matcher", "expected HTTP codes from 200 to 499"),
            ("targetGroups.tg.healthCheck.timeoutSeconds", "expected a timeout shorter than the interval (1s), found 5s (the default; set timeoutSeconds)"),
            ("targetGroups.tg.attributes.deregistration_delay.timeout_seconds", "expected a number from 0 to 3600"),
            ("targetGroups.tg.attributes.nope", "found unknown key \"nope\""),
            ("targetGroups.tg.attributes.slow_start.duration_seconds", "expected a string, number or boolean, found a list"),
            ("targetGroups.tg.attributes.stickiness.enabled", "expected true or false"),
        ],
    ),
    (
        "listeners and rules",
        r#"
name: s
services: {}
targetGroups: {a: {}, b: {}}
loadBalancers:
  internal-x: {}
  web:
    listners: []
    listeners:
      - port: 8080
        defaultAction: {forward: missing}
        rules:
          - priority: 10
            conditions: {pathPattern: ["/a"], pathPatern: ["/b"]}
            action: {forward: a}
          - priority: 10
            conditions: {}
            action: {forward: a, fixedResponse: {statusCode: 404}}
          - conditions: {sourceIp: [10.0.0.1], httpRequestMethod: [get], hostHeader: [a, b, c, d]}
            action: {fixedResponse: {statusCode: 302, contentType: text/xml}}
          - priority: 50001
            conditions: {httpHeader: {name: "bad header", values: []}, queryString: [{key: k}]}
            action: {redirect: {statusCode: HTTP_307}}
      - port: 8080
        defaultAction: {}
      - defaultAction: {forward: {targetGroups: [a, a, {name: b, weight: 1000}], stickinessSeconds: 0}}
  other:
    listeners:
      - port: 9000
        defaultAction: {forward: b}
"#,
        &[
            ("loadBalancers.internal-x", "expected a load balancer name not starting with \"internal-\""),
            ("loadBalancers.web.listners", "(did you mean listeners?)"),
            ("loadBalancers.web.listeners[0].defaultAction.forward", "expected the name of one of the stack's targetGroups (a, b), found \"missing\""),
            ("loadBalancers.web.listeners[0].rules[0].conditions.pathPatern", "(did you mean pathPattern?)"),
            ("loadBalancers.web.listeners[0].rules[1].conditions", "expected at least one of pathPattern"),
            ("loadBalancers.web.listeners[0].rules[1].action", "expected exactly one of forward, fixedResponse or redirect, found forward and fixedResponse"),
            ("loadBalancers.web.listeners[0].rules[2].priority", "expected a priority from 1 to 50000, found nothing"),
            ("loadBalancers.web.listeners[0].rules[2].conditions.httpRequestMethod[0]", "expected an upper-case method name like GET, found \"get\""),
            ("loadBalancers.web.listeners[0].rules[2].conditions.sourceIp[0]", "expected a CIDR block"),
            ("loadBalancers.web.listeners[0].rules[2].conditions", "expected at most 5 condition values per rule, found 6"),
            ("loadBalancers.web.listeners[0].rules[2].action.fixedResponse.statusCode", "expected a 2XX, 4XX or 5XX status code like 404, found number 302"),
            ("loadBalancers.web.listeners[0].rules[2].action.fixedResponse.contentType", "expected one of text/plain"),
            ("loadBalancers.web.listeners[0].rules[3].priority", "expected an integer from 1 to 50000, found number 50001"),
            ("loadBalancers.web.listeners[0].rules[3].conditions.httpHeader.name", "expected a header name of 1-40 token characters, found \"bad header\""),
            ("loadBalancers.web.listeners[0].rules[3].conditions.httpHeader.values", "expected at least one value, found an empty list"),
            ("loadBalancers.web.listeners[0].rules[3].conditions.queryString[0].value", "found nothing"),
            ("loadBalancers.web.listeners[0].rules[3].action.redirect.statusCode", "expected HTTP_301 or HTTP_302, found \"HTTP_307\""),
            ("loadBalancers.web.listeners[0].rules[3].action.redirect", "expected a redirect that changes protocol, port, host or path"),
            ("loadBalancers.web.listeners[1].defaultAction", "expected exactly one of forward, fixedResponse or redirect, found none"),
            ("loadBalancers.web.listeners[2].port", "expected a port from 1 to 65535, found nothing"),
            ("loadBalancers.web.listeners[2].defaultAction.forward.targetGroups[1]", "expected each target group at most once, found \"a\" again"),
            ("loadBalancers.web.listeners[2].defaultAction.forward.targetGroups[2].weight", "expected an integer from 0 to 999, found number 1000"),
            ("loadBalancers.web.listeners[2].defaultAction.forward.stickinessSeconds", "expected an integer from 1 to 604800, found number 0"),
        ],
    ),
    (
        "ports, priorities and target groups shared where they may not be",
        r#"
name: s
services: {}
targetGroups: {a: {}, b: {}}
loadBalancers:
  one:
    listeners:
      - port: 80
        defaultAction: {forward: a}
        rules:
          - {priority: 5, conditions: {pathPattern: /x}, action: {forward: b}}
          - {priority: 5, conditions: {pathPattern: /y}, action: {forward: b}}
  two:
    listeners:
      - port: 80
        defaultAction: {forward: b}
"#,
        &[
            ("loadBalancers.one.listeners[0].rules[1].priority", "expected a priority no other rule of the listener has, found 5 (also rules[0])"),
            ("loadBalancers.two.listeners[0].port", "expected a port no other listener of the stack uses (load balancers share one address), found 80 (also loadBalancers.one.listeners[0])"),
            ("loadBalancers.two.listeners[0].defaultAction.forward", "expected a target group no other load balancer forwards to (a target group serves one load balancer), found \"b\" (used by loadBalancers.one)"),
        ],
    ),
    (
        "a service's target group",
        r#"
name: s
targetGroups: {a: {}}
services:
  web:
    loadBalancers:
      - {targetGroup: nope, containerName: app, containerPort: 8080}
      - {targetGroup: a, targetGroupArn: arn:x, containerName: app, containerPort: 8080}
    taskDefinition:
      containerDefinitions: [{name: app, image: process://berth, portMappings: [{containerPort: 8080}]}]
"#,
        &[
            ("services.web.loadBalancers[0].targetGroup", "expected the name of one of the stack's targetGroups (a), found \"nope\""),
            ("services.web.loadBalancers[1]", "expected one of targetGroup, targetGroupArn and loadBalancerName, found more than one"),
        ],
    ),
];

#[test]
fn bad_sections_list_every_error_with_its_path() {
    for (what, text, expected) in BAD {
        let errors = match parse(text, Path::new(".")) {
            Err(StackError::Invalid(errs)) => errs.0,
            other => panic!("{what}: expected validation errors, got {other:?}"),
        };
        let listed: Vec<String> = errors
            .iter()
            .map(|e| format!("{}: {}", e.path, e.message))
            .collect();
        for (path, fragment) in *expected {
            assert!(
                errors
                    .iter()
                    .any(|e| e.path == *path && e.message.contains(fragment)),
                "{what}: no error at {path} containing {fragment:?}; got:\n{}",
                listed.join("\n")
            );
        }
        assert_eq!(
            errors.len(),
            expected.len(),
            "{what}: errors listed:\n{}",
            listed.join("\n")
        );
    }
}
