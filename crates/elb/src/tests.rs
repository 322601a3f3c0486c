//! Unit tests of berth-elb: every operation's happy path and refusals, health states, draining,
//! and the proxy snapshot.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use super::*;
use berth_model::protocol::proxy as p;
use berth_model::Arns;

fn arns() -> Arns {
    Arns::default()
}

fn lb(state: &mut ElbState, name: &str) -> LoadBalancer {
    let req = CreateLoadBalancerRequest {
        name: name.into(),
        subnets: vec!["subnet-a".into()],
        ..Default::default()
    };
    state
        .create_load_balancer(&arns(), &req, 1_700_000_000.0)
        .unwrap()
}

fn tg(state: &mut ElbState, name: &str) -> TargetGroup {
    let req = CreateTargetGroupRequest {
        name: name.into(),
        protocol: Some("HTTP".into()),
        port: Some(8080),
        ..Default::default()
    };
    state.create_target_group(&arns(), &req).unwrap()
}

fn forward(tg_arn: &str) -> Action {
    Action {
        action_type: "forward".into(),
        target_group_arn: Some(tg_arn.into()),
        ..Default::default()
    }
}

fn listener(state: &mut ElbState, lb_arn: &str, port: i64, tg_arn: &str) -> Listener {
    let req = CreateListenerRequest {
        load_balancer_arn: lb_arn.into(),
        protocol: Some("HTTP".into()),
        port: Some(port),
        default_actions: vec![forward(tg_arn)],
        ..Default::default()
    };
    state.create_listener(&arns(), &req).unwrap()
}

fn path_condition(values: &[&str]) -> RuleCondition {
    RuleCondition {
        field: "path-pattern".into(),
        values: values.iter().map(|v| v.to_string()).collect(),
        ..Default::default()
    }
}

fn rule(
    state: &mut ElbState,
    listener_arn: &str,
    priority: i64,
    path: &str,
    tg_arn: &str,
) -> Result<Rule, ElbError> {
    let req = CreateRuleRequest {
        listener_arn: listener_arn.into(),
        priority,
        conditions: vec![path_condition(&[path])],
        actions: vec![forward(tg_arn)],
        ..Default::default()
    };
    state.create_rule(&arns(), &req)
}

/// A load balancer `web` on port 80 forwarding to target group `app`.
fn setup() -> (ElbState, LoadBalancer, TargetGroup, Listener) {
    let mut s = ElbState::default();
    let l = lb(&mut s, "web");
    let t = tg(&mut s, "app");
    let li = listener(&mut s, &l.arn, 80, &t.arn);
    (s, l, t, li)
}

fn messages(e: &ElbError) -> String {
    e.to_string()
}

#[test]
fn load_balancer_has_aws_shaped_arn_dns_and_defaults() {
    let mut s = ElbState::default();
    let l = lb(&mut s, "web");
    let prefix = "arn:aws:elasticloadbalancing:us-east-1:000000000000:loadbalancer/app/web/";
    assert!(l.arn.starts_with(prefix), "{}", l.arn);
    let id = &l.arn[prefix.len()..];
    assert_eq!(id.len(), 16);
    assert!(id.chars().all(|c| c.is_ascii_hexdigit()));
    assert!(
        l.dns_name.starts_with("web-") && l.dns_name.ends_with(".us-east-1.elb.berth.localhost"),
        "{}",
        l.dns_name
    );
    assert_eq!(
        (
            l.scheme.as_str(),
            l.state.as_str(),
            l.load_balancer_type.as_str()
        ),
        ("internet-facing", "active", "application")
    );
    assert_eq!(
        s.attribute(&l.arn, "idle_timeout.timeout_seconds"),
        Some("60")
    );
    assert_eq!(
        s.attribute(&l.arn, "deletion_protection.enabled"),
        Some("false")
    );
}

#[test]
fn load_balancer_names_are_validated_and_unique() {
    let mut s = ElbState::default();
    let bad = CreateLoadBalancerRequest {
        name: "-bad_name".into(),
        scheme: Some("public".into()),
        ..Default::default()
    };
    let err = s.create_load_balancer(&arns(), &bad, 0.0).unwrap_err();
    assert_eq!(err.code(), "ValidationError");
    let msg = messages(&err);
    assert!(msg.contains("Name: a load balancer name of 1-32"), "{msg}");
    assert!(
        msg.contains("Scheme: internet-facing or internal was expected, found 'public'"),
        "{msg}"
    );

    let first = lb(&mut s, "web");
    let again = lb(&mut s, "web");
    assert_eq!(
        first, again,
        "same name and settings returns the existing load balancer"
    );
    let other = CreateLoadBalancerRequest {
        name: "web".into(),
        scheme: Some("internal".into()),
        ..Default::default()
    };
    assert_eq!(
        s.create_load_balancer(&arns(), &other, 0.0)
            .unwrap_err()
            .code(),
        "DuplicateLoadBalancerName"
    );
    assert_eq!(s.load_balancers.len(), 1);
}

#[test]
fn describe_load_balancers_filters_and_reports_missing() {
    let mut s = ElbState::default();
    let a = lb(&mut s, "a");
    let b = lb(&mut s, "b");
    let all = s
        .describe_load_balancers(&DescribeLoadBalancersRequest::default())
        .unwrap();
    assert_eq!(
        all.iter().map(|l| l.name.as_str()).collect::<Vec<_>>(),
        ["a", "b"]
    );
    let by_name = s
        .describe_load_balancers(&DescribeLoadBalancersRequest {
            names: vec!["b".into()],
            ..Default::default()
        })
        .unwrap();
    assert_eq!(by_name, vec![b.clone()]);
    let by_arn = s
        .describe_load_balancers(&DescribeLoadBalancersRequest {
            load_balancer_arns: vec![a.arn.clone()],
            ..Default::default()
        })
        .unwrap();
    assert_eq!(by_arn, vec![a]);
    let missing = s.describe_load_balancers(&DescribeLoadBalancersRequest {
        names: vec!["zzz".into()],
        ..Default::default()
    });
    assert_eq!(missing.unwrap_err().code(), "LoadBalancerNotFound");
}

#[test]
fn delete_load_balancer_removes_listeners_and_rules_and_honours_protection() {
    let (mut s, l, t, li) = setup();
    rule(&mut s, &li.arn, 10, "/api/*", &t.arn).unwrap();
    let protect = ModifyAttributesRequest {
        resource_arn: l.arn.clone(),
        attributes: vec![Attribute {
            key: "deletion_protection.enabled".into(),
            value: "true".into(),
        }],
    };
    s.modify_load_balancer_attributes(&protect).unwrap();
    assert_eq!(
        s.delete_load_balancer(&l.arn).unwrap_err().code(),
        "OperationNotPermitted"
    );
    let unprotect = ModifyAttributesRequest {
        resource_arn: l.arn.clone(),
        attributes: vec![Attribute {
            key: "deletion_protection.enabled".into(),
            value: "false".into(),
        }],
    };
    s.modify_load_balancer_attributes(&unprotect).unwrap();
    s.delete_load_balancer(&l.arn).unwrap();
    assert!(s.load_balancers.is_empty() && s.listeners.is_empty() && s.rules.is_empty());
    assert!(!s.attributes.contains_key(&l.arn));
    // The target group is free again and can be deleted; deleting twice is fine.
    s.delete_load_balancer(&l.arn).unwrap();
    s.delete_target_group(&t.arn).unwrap();
    assert!(s.target_groups.is_empty());
}

#[test]
fn load_balancer_attributes_are_validated() {
    let (mut s, l, _, _) = setup();
    let req = ModifyAttributesRequest {
        resource_arn: l.arn.clone(),
        attributes: vec![
            Attribute {
                key: "idle_timeout.timeout_seconds".into(),
                value: "0".into(),
            },
            Attribute {
                key: "no.such.key".into(),
                value: "1".into(),
            },
        ],
    };
    let err = s.modify_load_balancer_attributes(&req).unwrap_err();
    let msg = messages(&err);
    assert!(
        msg.contains(
            "Attributes[0].Value: idle_timeout.timeout_seconds takes a whole number from 1 to 4000"
        ),
        "{msg}"
    );
    assert!(
        msg.contains(
            "Attributes[1].Key: a load balancer attribute was expected, found 'no.such.key'"
        ),
        "{msg}"
    );
    let ok = ModifyAttributesRequest {
        resource_arn: l.arn.clone(),
        attributes: vec![Attribute {
            key: "idle_timeout.timeout_seconds".into(),
            value: "120".into(),
        }],
    };
    let all = s.modify_load_balancer_attributes(&ok).unwrap();
    assert!(all.contains(&Attribute {
        key: "idle_timeout.timeout_seconds".into(),
        value: "120".into()
    }));
    assert_eq!(
        s.proxy_config(1, "127.0.0.1").listeners[0].idle_timeout_seconds,
        120
    );
    assert_eq!(
        s.describe_load_balancer_attributes("arn:nope")
            .unwrap_err()
            .code(),
        "LoadBalancerNotFound"
    );
}

#[test]
fn target_group_defaults_and_validation() {
    let mut s = ElbState::default();
    let t = tg(&mut s, "app");
    assert!(t
        .arn
        .starts_with("arn:aws:elasticloadbalancing:us-east-1:000000000000:targetgroup/app/"));
    let hc = &t.health_check;
    assert_eq!(
        (hc.path.as_str(), hc.port.as_str(), hc.matcher.as_str()),
        ("/", "traffic-port", "200")
    );
    assert_eq!(
        (
            hc.interval_seconds,
            hc.timeout_seconds,
            hc.healthy_threshold,
            hc.unhealthy_threshold
        ),
        (30.0, 5.0, 5, 2)
    );
    assert_eq!(s.deregistration_delay(&t.arn), 300.0);
    let attrs = s.describe_target_group_attributes(&t.arn).unwrap();
    for (k, v) in [
        ("stickiness.enabled", "false"),
        ("stickiness.type", "lb_cookie"),
        ("stickiness.lb_cookie.duration_seconds", "86400"),
        ("load_balancing.algorithm.type", "round_robin"),
        ("slow_start.duration_seconds", "0"),
    ] {
        assert!(
            attrs.contains(&Attribute {
                key: k.into(),
                value: v.into()
            }),
            "{k}"
        );
    }

    let bad = CreateTargetGroupRequest {
        name: "app_2".into(),
        protocol: Some("TCP".into()),
        port: Some(70000),
        health_check: HealthCheckInput {
            interval_seconds: Some(5.0),
            timeout_seconds: Some(6.0),
            healthy_threshold: Some(11),
            matcher: Some("600".into()),
            path: Some("health".into()),
            ..Default::default()
        },
        ..Default::default()
    };
    let msg = messages(&s.create_target_group(&arns(), &bad).unwrap_err());
    for expected in [
        "Name: a target group name",
        "Protocol: HTTP or HTTPS was expected",
        "Port: a port from 1 to 65535 was expected, found 70000",
        "HealthCheckTimeoutSeconds: a timeout shorter than the interval (5s) was expected, found 6s",
        "HealthyThresholdCount: a count from 2 to 10 was expected, found 11",
        "Matcher.HttpCode: HTTP codes from 200 to 499",
        "HealthCheckPath: a path starting with '/'",
    ] {
        assert!(msg.contains(expected), "missing {expected:?} in {msg}");
    }
    let missing = CreateTargetGroupRequest {
        name: "x".into(),
        ..Default::default()
    };
    let msg = messages(&s.create_target_group(&arns(), &missing).unwrap_err());
    assert!(
        msg.contains("Protocol: a protocol") && msg.contains("Port: a port"),
        "{msg}"
    );

    let dup = CreateTargetGroupRequest {
        name: "app".into(),
        protocol: Some("HTTP".into()),
        port: Some(9090),
        ..Default::default()
    };
    assert_eq!(
        s.create_target_group(&arns(), &dup).unwrap_err().code(),
        "DuplicateTargetGroupName"
    );
    assert_eq!(
        tg(&mut s, "app"),
        t,
        "same settings returns the existing group"
    );
}

#[test]
fn modify_target_group_changes_only_given_fields() {
    let (mut s, _, t, _) = setup();
    let req = ModifyTargetGroupRequest {
        target_group_arn: t.arn.clone(),
        health_check: HealthCheckInput {
            path: Some("/healthz".into()),
            interval_seconds: Some(1.0),
            timeout_seconds: Some(0.5),
            ..Default::default()
        },
    };
    let out = s.modify_target_group(&req).unwrap();
    assert_eq!(
        (
            out.health_check.path.as_str(),
            out.health_check.interval_seconds,
            out.health_check.timeout_seconds
        ),
        ("/healthz", 1.0, 0.5)
    );
    assert_eq!(out.health_check.healthy_threshold, 5);
    let bad = ModifyTargetGroupRequest {
        target_group_arn: t.arn.clone(),
        health_check: HealthCheckInput {
            timeout_seconds: Some(2.0),
            ..Default::default()
        },
    };
    assert_eq!(
        s.modify_target_group(&bad).unwrap_err().code(),
        "ValidationError"
    );
    let missing = ModifyTargetGroupRequest {
        target_group_arn: "arn:x".into(),
        ..Default::default()
    };
    assert_eq!(
        s.modify_target_group(&missing).unwrap_err().code(),
        "TargetGroupNotFound"
    );
}

#[test]
fn target_group_attributes_validate_and_reach_the_proxy() {
    let (mut s, _, t, _) = setup();
    let set = |pairs: &[(&str, &str)]| ModifyAttributesRequest {
        resource_arn: t.arn.clone(),
        attributes: pairs
            .iter()
            .map(|(k, v)| Attribute {
                key: k.to_string(),
                value: v.to_string(),
            })
            .collect(),
    };
    let err = s
        .modify_target_group_attributes(&set(&[
            ("deregistration_delay.timeout_seconds", "9999"),
            ("load_balancing.algorithm.type", "random"),
        ]))
        .unwrap_err();
    let msg = messages(&err);
    assert!(
        msg.contains("Attributes[0].Value") && msg.contains("Attributes[1].Value"),
        "{msg}"
    );
    assert_eq!(
        s.deregistration_delay(&t.arn),
        300.0,
        "nothing applied on error"
    );
    s.modify_target_group_attributes(&set(&[
        ("deregistration_delay.timeout_seconds", "0.5"),
        ("stickiness.enabled", "true"),
        ("stickiness.lb_cookie.duration_seconds", "60"),
        (
            "load_balancing.algorithm.type",
            "least_outstanding_requests",
        ),
        ("slow_start.duration_seconds", "30"),
    ]))
    .unwrap();
    assert_eq!(s.deregistration_delay(&t.arn), 0.5);
    let cfg = s.proxy_config(7, "0.0.0.0");
    let ptg = &cfg.target_groups[0];
    assert_eq!(ptg.deregistration_delay_seconds, 0.5);
    assert_eq!(ptg.stickiness_seconds, Some(60));
    assert_eq!(ptg.algorithm, "least_outstanding_requests");
    assert_eq!(ptg.slow_start_seconds, 30.0);
}

#[test]
fn delete_target_group_in_use_is_refused() {
    let (mut s, _, t, li) = setup();
    let err = s.delete_target_group(&t.arn).unwrap_err();
    assert_eq!(err.code(), "ResourceInUse");
    assert!(messages(&err).contains(&li.arn));
    let other = tg(&mut s, "other");
    let r = rule(&mut s, &li.arn, 5, "/x", &other.arn).unwrap();
    assert_eq!(
        s.delete_target_group(&other.arn).unwrap_err().code(),
        "ResourceInUse"
    );
    s.delete_rule(&r.arn).unwrap();
    s.delete_target_group(&other.arn).unwrap();
}

#[test]
fn describe_target_groups_by_load_balancer_and_name() {
    let (mut s, l, t, _) = setup();
    let unused = tg(&mut s, "unused");
    let of_lb = s
        .describe_target_groups(&DescribeTargetGroupsRequest {
            load_balancer_arn: Some(l.arn.clone()),
            ..Default::default()
        })
        .unwrap();
    assert_eq!(of_lb, vec![t.clone()]);
    assert_eq!(s.target_group_load_balancers(&t.arn), vec![l.arn.clone()]);
    assert!(s.target_group_load_balancers(&unused.arn).is_empty());
    let by_name = s
        .describe_target_groups(&DescribeTargetGroupsRequest {
            names: vec!["unused".into()],
            ..Default::default()
        })
        .unwrap();
    assert_eq!(by_name, vec![unused]);
    let missing = s.describe_target_groups(&DescribeTargetGroupsRequest {
        names: vec!["nope".into()],
        ..Default::default()
    });
    assert_eq!(missing.unwrap_err().code(), "TargetGroupNotFound");
}

#[test]
fn listeners_are_created_described_modified_and_deleted() {
    let (mut s, l, t, li) = setup();
    assert!(li.arn.starts_with(&format!(
        "arn:aws:elasticloadbalancing:us-east-1:000000000000:listener/app/web/{}/",
        &l.arn[l.arn.len() - 16..]
    )));
    assert_eq!(
        li.default_actions[0]
            .forward_config
            .as_ref()
            .unwrap()
            .target_groups[0]
            .weight,
        Some(1),
        "forward is normalised"
    );
    let listed = s
        .describe_listeners(&DescribeListenersRequest {
            load_balancer_arn: Some(l.arn.clone()),
            ..Default::default()
        })
        .unwrap();
    assert_eq!(listed, vec![li.clone()]);
    let req = CreateListenerRequest {
        load_balancer_arn: l.arn.clone(),
        port: Some(80),
        default_actions: vec![forward(&t.arn)],
        ..Default::default()
    };
    assert_eq!(
        s.create_listener(&arns(), &req).unwrap_err().code(),
        "DuplicateListener"
    );
    let other_lb = lb(&mut s, "other");
    let on_other = CreateListenerRequest {
        load_balancer_arn: other_lb.arn.clone(),
        ..req.clone()
    };
    let err = s.create_listener(&arns(), &on_other).unwrap_err();
    assert_eq!(
        err.code(),
        "DuplicateListener",
        "berth's load balancers share one address"
    );

    let modified = s
        .modify_listener(&ModifyListenerRequest {
            listener_arn: li.arn.clone(),
            port: Some(8081),
            ..Default::default()
        })
        .unwrap();
    assert_eq!(modified.port, 8081);
    assert_eq!(
        s.proxy_config(2, "127.0.0.1").listeners[0].bind,
        "127.0.0.1:8081"
    );
    s.delete_listener(&li.arn).unwrap();
    assert_eq!(
        s.delete_listener(&li.arn).unwrap_err().code(),
        "ListenerNotFound"
    );
}

#[test]
fn listener_input_errors_are_all_reported() {
    let (mut s, l, t, _) = setup();
    let req = CreateListenerRequest {
        load_balancer_arn: l.arn.clone(),
        protocol: Some("HTTPS".into()),
        port: Some(0),
        default_actions: vec![],
        ..Default::default()
    };
    let msg = messages(&s.create_listener(&arns(), &req).unwrap_err());
    assert!(
        msg.contains("Certificates: an HTTPS listener needs a certificate"),
        "{msg}"
    );
    assert!(
        msg.contains("Port: a port from 1 to 65535 was expected, found 0"),
        "{msg}"
    );
    assert!(msg.contains("DefaultActions: exactly one action"), "{msg}");
    let https = CreateListenerRequest {
        load_balancer_arn: l.arn.clone(),
        protocol: Some("HTTPS".into()),
        port: Some(443),
        certificates: vec![Certificate {
            certificate_arn: "file:///etc/berth/web.pem|/etc/berth/web-key.pem".into(),
            is_default: None,
        }],
        default_actions: vec![forward(&t.arn)],
        ..Default::default()
    };
    let created = s.create_listener(&arns(), &https).unwrap();
    assert_eq!(
        created.ssl_policy.as_deref(),
        Some("ELBSecurityPolicy-2016-08")
    );
    let pl = s.proxy_config(1, "127.0.0.1");
    let pl = pl.listeners.iter().find(|x| x.arn == created.arn).unwrap();
    assert_eq!(
        pl.certificates,
        vec![berth_model::protocol::proxy::ListenerCertificate {
            cert_pem_path: "/etc/berth/web.pem".into(),
            key_pem_path: "/etc/berth/web-key.pem".into(),
            default: true,
        }]
    );
    let not_a_file = CreateListenerRequest {
        port: Some(8443),
        certificates: vec![Certificate {
            certificate_arn: "arn:aws:acm:us-east-1:0:certificate/x".into(),
            is_default: None,
        }],
        ..https.clone()
    };
    let msg = messages(&s.create_listener(&arns(), &not_a_file).unwrap_err());
    assert!(
        msg.contains("Certificates[0].CertificateArn: file://<cert.pem>|<key.pem> or"),
        "{msg}"
    );
    let tcp = CreateListenerRequest {
        protocol: Some("TCP".into()),
        port: Some(9000),
        ..https.clone()
    };
    assert!(messages(&s.create_listener(&arns(), &tcp).unwrap_err())
        .contains("Protocol: HTTP or HTTPS was expected"));
    let missing_lb = CreateListenerRequest {
        load_balancer_arn: "arn:nope".into(),
        ..https.clone()
    };
    assert_eq!(
        s.create_listener(&arns(), &missing_lb).unwrap_err().code(),
        "LoadBalancerNotFound"
    );
    let missing_tg = CreateListenerRequest {
        port: Some(9001),
        default_actions: vec![forward("arn:tg:none")],
        ..https
    };
    assert_eq!(
        s.create_listener(&arns(), &missing_tg).unwrap_err().code(),
        "TargetGroupNotFound"
    );
}

#[test]
fn a_target_group_serves_one_load_balancer() {
    let (mut s, _, t, _) = setup();
    let other = lb(&mut s, "other");
    let req = CreateListenerRequest {
        load_balancer_arn: other.arn.clone(),
        port: Some(81),
        default_actions: vec![forward(&t.arn)],
        ..Default::default()
    };
    assert_eq!(
        s.create_listener(&arns(), &req).unwrap_err().code(),
        "TargetGroupAssociationLimit"
    );
}

#[test]
fn actions_are_validated_and_normalised() {
    let (mut s, _, t, li) = setup();
    let t2 = tg(&mut s, "blue");
    let weighted = Action {
        action_type: "forward".into(),
        forward_config: Some(ForwardConfig {
            target_groups: vec![
                TargetGroupTuple {
                    target_group_arn: t.arn.clone(),
                    weight: Some(90),
                },
                TargetGroupTuple {
                    target_group_arn: t2.arn.clone(),
                    weight: Some(10),
                },
            ],
            stickiness: Some(StickinessConfig {
                enabled: true,
                duration_seconds: Some(300),
            }),
        }),
        ..Default::default()
    };
    let req = CreateRuleRequest {
        listener_arn: li.arn.clone(),
        priority: 1,
        conditions: vec![path_condition(&["/w"])],
        actions: vec![weighted],
        ..Default::default()
    };
    let r = s.create_rule(&arns(), &req).unwrap();
    assert_eq!(
        r.actions[0].target_group_arn, None,
        "two groups: no single TargetGroupArn"
    );
    let redirect = Action {
        action_type: "redirect".into(),
        redirect_config: Some(RedirectConfig {
            protocol: Some("HTTPS".into()),
            status_code: "HTTP_301".into(),
            ..Default::default()
        }),
        ..Default::default()
    };
    let r2 = s
        .create_rule(
            &arns(),
            &CreateRuleRequest {
                priority: 2,
                actions: vec![redirect],
                ..req.clone()
            },
        )
        .unwrap();
    let rc = r2.actions[0].redirect_config.as_ref().unwrap();
    assert_eq!(
        (rc.host.as_deref(), rc.path.as_deref(), rc.port.as_deref()),
        (Some("#{host}"), Some("/#{path}"), Some("#{port}"))
    );

    let bad = vec![
        Action {
            action_type: "fixed-response".into(),
            fixed_response_config: Some(FixedResponseConfig {
                status_code: "302".into(),
                content_type: Some("image/png".into()),
                message_body: None,
            }),
            ..Default::default()
        },
        Action {
            action_type: "redirect".into(),
            redirect_config: Some(RedirectConfig {
                status_code: "HTTP_307".into(),
                ..Default::default()
            }),
            ..Default::default()
        },
        Action {
            action_type: "authenticate-oidc".into(),
            ..Default::default()
        },
        Action {
            action_type: "forward".into(),
            ..Default::default()
        },
    ];
    let msg = messages(
        &s.create_rule(
            &arns(),
            &CreateRuleRequest {
                priority: 3,
                actions: bad,
                ..req.clone()
            },
        )
        .unwrap_err(),
    );
    for expected in [
        "Actions: exactly one action",
        "Actions[0].FixedResponseConfig.StatusCode: a 2XX, 4XX or 5XX code was expected, found '302'",
        "Actions[0].FixedResponseConfig.ContentType: one of text/plain",
        "Actions[1].RedirectConfig.StatusCode: one of HTTP_301, HTTP_302 was expected, found 'HTTP_307'",
        "Actions[1].RedirectConfig: a redirect that changes",
        "Actions[2].Type: forward, fixed-response or redirect was expected, found 'authenticate-oidc' (not supported by berth)",
        "Actions[3]: a forward action needs TargetGroupArn or ForwardConfig.TargetGroups",
    ] {
        assert!(msg.contains(expected), "missing {expected:?} in {msg}");
    }
    let heavy = Action {
        action_type: "forward".into(),
        forward_config: Some(ForwardConfig {
            target_groups: vec![TargetGroupTuple {
                target_group_arn: t.arn.clone(),
                weight: Some(1000),
            }],
            stickiness: None,
        }),
        ..Default::default()
    };
    let msg = messages(
        &s.create_rule(
            &arns(),
            &CreateRuleRequest {
                priority: 3,
                actions: vec![heavy],
                ..req
            },
        )
        .unwrap_err(),
    );
    assert!(
        msg.contains("Weight: a weight from 0 to 999 was expected, found 1000"),
        "{msg}"
    );
}

#[test]
fn conditions_accept_both_forms_and_report_errors() {
    let (mut s, _, t, li) = setup();
    let conditions = vec![
        RuleCondition {
            field: "path-pattern".into(),
            path_pattern_config: Some(ValuesConfig {
                values: vec!["/api/*".into()],
            }),
            ..Default::default()
        },
        RuleCondition {
            field: "host-header".into(),
            values: vec!["example.com".into()],
            ..Default::default()
        },
        RuleCondition {
            field: "http-header".into(),
            http_header_config: Some(HttpHeaderConfig {
                http_header_name: "X-Env".into(),
                values: vec!["blue".into()],
            }),
            ..Default::default()
        },
        RuleCondition {
            field: "query-string".into(),
            query_string_config: Some(QueryStringConfig {
                values: vec![QueryStringKeyValue {
                    key: Some("v".into()),
                    value: "2".into(),
                }],
            }),
            ..Default::default()
        },
        RuleCondition {
            field: "source-ip".into(),
            source_ip_config: Some(ValuesConfig {
                values: vec!["10.0.0.0/8".into()],
            }),
            ..Default::default()
        },
    ];
    let req = CreateRuleRequest {
        listener_arn: li.arn.clone(),
        priority: 10,
        conditions,
        actions: vec![forward(&t.arn)],
        ..Default::default()
    };
    let r = s.create_rule(&arns(), &req).unwrap();
    assert_eq!(
        r.conditions[0].values,
        vec!["/api/*"],
        "path-pattern keeps both forms"
    );
    assert_eq!(
        r.conditions[1].host_header_config.as_ref().unwrap().values,
        vec!["example.com"]
    );
    let cfg = s.proxy_config(1, "127.0.0.1");
    assert_eq!(
        cfg.listeners[0].rules[0].conditions,
        vec![
            p::Condition::PathPattern {
                values: vec!["/api/*".into()]
            },
            p::Condition::HostHeader {
                values: vec!["example.com".into()]
            },
            p::Condition::HttpHeader {
                name: "X-Env".into(),
                values: vec!["blue".into()]
            },
            p::Condition::QueryString {
                values: vec![p::QueryPair {
                    key: Some("v".into()),
                    value: "2".into()
                }]
            },
            p::Condition::SourceIp {
                values: vec!["10.0.0.0/8".into()]
            },
        ]
    );

    let bad = vec![
        RuleCondition {
            field: "cookie".into(),
            ..Default::default()
        },
        RuleCondition {
            field: "source-ip".into(),
            source_ip_config: Some(ValuesConfig {
                values: vec!["10.0.0.300/8".into()],
            }),
            ..Default::default()
        },
        RuleCondition {
            field: "http-request-method".into(),
            values: vec!["get".into()],
            ..Default::default()
        },
        path_condition(&[]),
        path_condition(&["/a"]),
    ];
    let msg = messages(
        &s.create_rule(
            &arns(),
            &CreateRuleRequest {
                priority: 11,
                conditions: bad,
                ..req.clone()
            },
        )
        .unwrap_err(),
    );
    for expected in [
        "Conditions[0].Field: one of host-header",
        "Conditions[1].SourceIpConfig.Values[0]: a CIDR block",
        "Conditions[2].Values: Values is only for host-header and path-pattern",
        "Conditions[2].HttpRequestMethodConfig.Values: at least one value",
        "Conditions[3].PathPatternConfig.Values: at least one value",
        "Conditions[4].Field: at most one path-pattern condition per rule",
    ] {
        assert!(msg.contains(expected), "missing {expected:?} in {msg}");
    }
    let many = vec![path_condition(&["/1", "/2", "/3", "/4", "/5", "/6"])];
    let msg = messages(
        &s.create_rule(
            &arns(),
            &CreateRuleRequest {
                priority: 12,
                conditions: many,
                ..req.clone()
            },
        )
        .unwrap_err(),
    );
    assert!(msg.contains("at most 5 condition values per rule"), "{msg}");
    let none = s
        .create_rule(
            &arns(),
            &CreateRuleRequest {
                priority: 13,
                conditions: vec![],
                ..req
            },
        )
        .unwrap_err();
    assert!(messages(&none).contains("Conditions: at least one condition"));
}

#[test]
fn rules_priorities_and_default_rule() {
    let (mut s, _, t, li) = setup();
    let a = rule(&mut s, &li.arn, 20, "/a/*", &t.arn).unwrap();
    let b = rule(&mut s, &li.arn, 10, "/b/*", &t.arn).unwrap();
    assert!(
        a.arn
            .starts_with(&li.arn.replace(":listener/", ":listener-rule/")),
        "{}",
        a.arn
    );
    assert_eq!(
        rule(&mut s, &li.arn, 10, "/c", &t.arn).unwrap_err(),
        ElbError::PriorityInUse(10)
    );
    assert_eq!(
        rule(&mut s, &li.arn, 0, "/c", &t.arn).unwrap_err().code(),
        "ValidationError"
    );
    assert_eq!(
        rule(&mut s, "arn:none", 1, "/c", &t.arn)
            .unwrap_err()
            .code(),
        "ListenerNotFound"
    );

    let listed = s
        .describe_rules(&DescribeRulesRequest {
            listener_arn: Some(li.arn.clone()),
            ..Default::default()
        })
        .unwrap();
    assert_eq!(
        listed.iter().map(|r| r.priority).collect::<Vec<_>>(),
        [Some(10), Some(20), None]
    );
    assert!(listed[2].is_default() && listed[2].arn == li.default_rule_arn);
    assert_eq!(listed[2].actions, li.default_actions);

    let swapped = s
        .set_rule_priorities(&[
            RulePriorityPair {
                rule_arn: a.arn.clone(),
                priority: 10,
            },
            RulePriorityPair {
                rule_arn: b.arn.clone(),
                priority: 20,
            },
        ])
        .unwrap();
    assert_eq!(
        swapped.iter().map(|r| r.priority).collect::<Vec<_>>(),
        [Some(10), Some(20)]
    );
    let clash = s.set_rule_priorities(&[RulePriorityPair {
        rule_arn: a.arn.clone(),
        priority: 20,
    }]);
    assert_eq!(clash.unwrap_err(), ElbError::PriorityInUse(20));
    let default = s.set_rule_priorities(&[RulePriorityPair {
        rule_arn: li.default_rule_arn.clone(),
        priority: 5,
    }]);
    assert_eq!(default.unwrap_err().code(), "OperationNotPermitted");
    let missing = s.set_rule_priorities(&[RulePriorityPair {
        rule_arn: "arn:none".into(),
        priority: 5,
    }]);
    assert_eq!(missing.unwrap_err().code(), "RuleNotFound");

    let cfg = s.proxy_config(3, "127.0.0.1");
    let prios: Vec<u32> = cfg.listeners[0].rules.iter().map(|r| r.priority).collect();
    assert_eq!(
        prios,
        [10, 20],
        "rules sorted by priority, the default rule only as default_actions"
    );
    assert_eq!(cfg.listeners[0].rules[0].arn, a.arn);

    assert_eq!(
        s.delete_rule(&li.default_rule_arn).unwrap_err().code(),
        "OperationNotPermitted"
    );
    s.delete_rule(&a.arn).unwrap();
    assert_eq!(s.delete_rule(&a.arn).unwrap_err().code(), "RuleNotFound");
}

#[test]
fn modify_rule_replaces_conditions_and_actions() {
    let (mut s, _, t, li) = setup();
    let r = rule(&mut s, &li.arn, 1, "/a", &t.arn).unwrap();
    let fixed = Action {
        action_type: "fixed-response".into(),
        fixed_response_config: Some(FixedResponseConfig {
            status_code: "404".into(),
            content_type: Some("text/plain".into()),
            message_body: Some("no".into()),
        }),
        ..Default::default()
    };
    let out = s
        .modify_rule(&ModifyRuleRequest {
            rule_arn: r.arn.clone(),
            conditions: Some(vec![path_condition(&["/b"])]),
            actions: Some(vec![fixed.clone()]),
        })
        .unwrap();
    assert_eq!(out.conditions[0].values, vec!["/b"]);
    assert_eq!(out.priority, Some(1));
    let cfg = s.proxy_config(1, "h");
    assert_eq!(
        cfg.listeners[0].rules[0].actions,
        vec![p::Action::FixedResponse {
            status_code: 404,
            content_type: Some("text/plain".into()),
            message_body: Some("no".into())
        }]
    );
    assert!(
        cfg.target_groups.len() == 1,
        "still used by the default action"
    );

    // The default rule takes actions (they become the listener's) but no conditions.
    let d = s
        .modify_rule(&ModifyRuleRequest {
            rule_arn: li.default_rule_arn.clone(),
            conditions: None,
            actions: Some(vec![fixed.clone()]),
        })
        .unwrap();
    assert!(d.is_default());
    assert_eq!(
        s.listener(&li.arn).unwrap().default_actions[0].action_type,
        "fixed-response"
    );
    assert!(
        s.proxy_config(2, "h").target_groups.is_empty(),
        "no longer used: left out of the snapshot"
    );
    let with_conditions = ModifyRuleRequest {
        rule_arn: li.default_rule_arn.clone(),
        conditions: Some(vec![path_condition(&["/x"])]),
        actions: None,
    };
    assert_eq!(
        s.modify_rule(&with_conditions).unwrap_err().code(),
        "OperationNotPermitted"
    );
    let missing = ModifyRuleRequest {
        rule_arn: "arn:none".into(),
        ..Default::default()
    };
    assert_eq!(s.modify_rule(&missing).unwrap_err().code(), "RuleNotFound");
}

#[test]
fn health_states_follow_the_target_lifecycle() {
    let mut s = ElbState::default();
    let l = lb(&mut s, "web");
    let t = tg(&mut s, "app");
    s.register_targets(
        &t.arn,
        &[
            TargetDescription::new("127.0.0.1", 9000),
            TargetDescription {
                id: "127.0.0.2".into(),
                port: None,
                availability_zone: None,
            },
        ],
    )
    .unwrap();
    let state = |s: &ElbState, id: &str, port: u16| {
        s.target_state(&t.arn, id, port)
            .map(|h| (h.state, h.reason))
    };
    assert_eq!(
        state(&s, "127.0.0.1", 9000),
        Some(("unused".into(), Some("Target.NotInUse".into())))
    );
    assert_eq!(
        state(&s, "127.0.0.2", 8080),
        Some(("unused".into(), Some("Target.NotInUse".into()))),
        "port defaults to the group's"
    );

    listener(&mut s, &l.arn, 80, &t.arn);
    assert_eq!(
        state(&s, "127.0.0.1", 9000),
        Some(("initial".into(), Some("Elb.RegistrationInProgress".into())))
    );

    let report = |state: &str, in_flight: u64| p::TargetHealth {
        target_group_arn: t.arn.clone(),
        id: "127.0.0.1".into(),
        port: 9000,
        state: state.into(),
        in_flight,
        ..Default::default()
    };
    assert!(s.apply_health_report(&[report("healthy", 3)]));
    assert!(
        !s.apply_health_report(&[report("healthy", 3)]),
        "same report changes nothing"
    );
    assert_eq!(state(&s, "127.0.0.1", 9000), Some(("healthy".into(), None)));
    let described = s.describe_target_health(&t.arn, &[]).unwrap();
    assert_eq!(described.len(), 2);
    assert_eq!(described[0].health_check_port, "9000");

    s.deregister_targets(&t.arn, &[TargetDescription::new("127.0.0.1", 9000)], 100.0)
        .unwrap();
    assert_eq!(
        state(&s, "127.0.0.1", 9000),
        Some((
            "draining".into(),
            Some("Target.DeregistrationInProgress".into())
        ))
    );
    assert!(s.proxy_config(1, "h").target_groups[0]
        .targets
        .iter()
        .any(|t| t.id == "127.0.0.1" && t.draining));
    assert!(!s.drain_finished(&t.arn, "127.0.0.1", 9000, 101.0));
    s.apply_health_report(&[report("healthy", 0)]);
    assert!(
        !s.drain_finished(&t.arn, "127.0.0.1", 9000, 101.0),
        "a proxy that has not seen the drain yet does not count"
    );
    s.apply_health_report(&[report("draining", 2)]);
    assert!(!s.drain_finished(&t.arn, "127.0.0.1", 9000, 101.0));
    assert!(s.remove_drained(101.0).is_empty());
    s.apply_health_report(&[report("draining", 0)]);
    assert!(
        s.drain_finished(&t.arn, "127.0.0.1", 9000, 101.0),
        "nothing in flight"
    );
    assert_eq!(
        s.remove_drained(101.0),
        vec![(t.arn.clone(), "127.0.0.1".to_string(), 9000)]
    );
    assert_eq!(s.target_state(&t.arn, "127.0.0.1", 9000), None);

    // The delay alone also ends draining.
    s.deregister_targets(&t.arn, &[TargetDescription::new("127.0.0.2", 8080)], 200.0)
        .unwrap();
    assert!(s.remove_drained(499.0).is_empty());
    assert_eq!(s.remove_drained(500.0).len(), 1);

    let err = s
        .deregister_targets(&t.arn, &[TargetDescription::new("10.9.9.9", 1)], 0.0)
        .unwrap_err();
    assert_eq!(err.code(), "InvalidTarget");
    let unregistered = s
        .describe_target_health(&t.arn, &[TargetDescription::new("10.9.9.9", 1)])
        .unwrap();
    assert_eq!(
        unregistered[0].health.reason.as_deref(),
        Some("Target.NotRegistered")
    );
}

#[test]
fn reregistering_a_draining_target_cancels_draining() {
    let (mut s, _, t, _) = setup();
    s.register_targets(&t.arn, &[TargetDescription::new("a", 1)])
        .unwrap();
    s.deregister_targets(&t.arn, &[TargetDescription::new("a", 1)], 0.0)
        .unwrap();
    s.register_targets(&t.arn, &[TargetDescription::new("a", 1)])
        .unwrap();
    assert_eq!(s.target_state(&t.arn, "a", 1).unwrap().state, "initial");
    assert!(s.remove_drained(1e9).is_empty());
}

#[test]
fn register_targets_refuses_bad_input() {
    let mut s = ElbState::default();
    let ip = s
        .create_target_group(
            &arns(),
            &CreateTargetGroupRequest {
                name: "ip".into(),
                protocol: Some("HTTP".into()),
                port: Some(80),
                target_type: Some("ip".into()),
                ..Default::default()
            },
        )
        .unwrap();
    assert_eq!(
        s.register_targets(&ip.arn, &[TargetDescription::new("host-a", 80)])
            .unwrap_err()
            .code(),
        "InvalidTarget"
    );
    let bad_port = TargetDescription {
        id: "10.0.0.1".into(),
        port: Some(0),
        availability_zone: None,
    };
    assert_eq!(
        s.register_targets(&ip.arn, &[bad_port]).unwrap_err().code(),
        "InvalidTarget"
    );
    assert_eq!(
        s.register_targets("arn:none", &[TargetDescription::new("10.0.0.1", 80)])
            .unwrap_err()
            .code(),
        "TargetGroupNotFound"
    );
    let many: Vec<TargetDescription> = (0..=MAX_TARGETS_PER_TARGET_GROUP as u16)
        .map(|i| TargetDescription::new("10.0.0.1", 1000 + i))
        .collect();
    assert_eq!(
        s.register_targets(&ip.arn, &many).unwrap_err().code(),
        "TooManyTargets"
    );
    assert!(
        s.targets.get(&ip.arn).is_none_or(|l| l.is_empty()),
        "nothing registered on error"
    );
}

#[test]
fn health_check_disabled_means_unavailable() {
    let (mut s, _, t, _) = setup();
    s.register_targets(&t.arn, &[TargetDescription::new("a", 1)])
        .unwrap();
    s.modify_target_group(&ModifyTargetGroupRequest {
        target_group_arn: t.arn.clone(),
        health_check: HealthCheckInput {
            enabled: Some(false),
            ..Default::default()
        },
    })
    .unwrap();
    assert_eq!(
        s.target_state(&t.arn, "a", 1).unwrap().reason.as_deref(),
        Some("Target.HealthCheckDisabled")
    );
}

#[test]
fn proxy_config_translates_everything() {
    let (mut s, l, t, li) = setup();
    s.register_targets(&t.arn, &[TargetDescription::new("127.0.0.1", 9000)])
        .unwrap();
    rule(&mut s, &li.arn, 5, "/api/*", &t.arn).unwrap();
    let cfg = s.proxy_config(42, "0.0.0.0");
    assert_eq!(cfg.version, 42);
    let pl = &cfg.listeners[0];
    assert_eq!(
        (
            pl.bind.as_str(),
            pl.protocol.as_str(),
            pl.load_balancer_arn.as_str()
        ),
        ("0.0.0.0:80", "HTTP", l.arn.as_str())
    );
    assert_eq!(pl.idle_timeout_seconds, 60);
    let fwd = p::Action::Forward {
        target_groups: vec![p::WeightedTargetGroup {
            arn: t.arn.clone(),
            weight: 1,
        }],
        stickiness_seconds: None,
    };
    assert_eq!(pl.default_actions, vec![fwd.clone()]);
    assert_eq!(pl.rules[0].actions, vec![fwd]);
    assert_eq!(
        pl.rules[0].conditions,
        vec![p::Condition::PathPattern {
            values: vec!["/api/*".into()]
        }]
    );
    let ptg = &cfg.target_groups[0];
    assert_eq!(ptg.health_check, p::HealthCheck::default());
    assert_eq!(
        (
            ptg.deregistration_delay_seconds,
            ptg.algorithm.as_str(),
            ptg.stickiness_seconds
        ),
        (300.0, "round_robin", None)
    );
    assert_eq!(
        ptg.targets,
        vec![p::Target {
            id: "127.0.0.1".into(),
            port: 9000,
            draining: false
        }]
    );
}

#[test]
fn tags_are_added_described_and_removed() {
    let (mut s, l, t, li) = setup();
    let tags = vec![
        Tag {
            key: "env".into(),
            value: Some("prod".into()),
        },
        Tag {
            key: "team".into(),
            value: None,
        },
    ];
    s.add_tags(&[l.arn.clone(), t.arn.clone()], &tags).unwrap();
    let out = s.describe_tags(&[l.arn.clone(), li.arn.clone()]).unwrap();
    assert_eq!(
        out[0].1,
        vec![
            Tag {
                key: "env".into(),
                value: Some("prod".into())
            },
            Tag {
                key: "team".into(),
                value: Some(String::new())
            }
        ]
    );
    assert!(out[1].1.is_empty());
    let dup = vec![
        Tag {
            key: "a".into(),
            value: None,
        },
        Tag {
            key: "a".into(),
            value: None,
        },
    ];
    assert_eq!(
        s.add_tags(std::slice::from_ref(&l.arn), &dup)
            .unwrap_err()
            .code(),
        "DuplicateTagKeys"
    );
    assert_eq!(
        s.add_tags(&[format!("{}x", l.arn)], &tags)
            .unwrap_err()
            .code(),
        "LoadBalancerNotFound"
    );
    assert_eq!(
        s.describe_tags(&["arn:aws:elasticloadbalancing:r:a:targetgroup/x/1".into()])
            .unwrap_err()
            .code(),
        "TargetGroupNotFound"
    );
    let too_many: Vec<Tag> = (0..51)
        .map(|i| Tag {
            key: format!("k{i}"),
            value: None,
        })
        .collect();
    assert_eq!(
        s.add_tags(std::slice::from_ref(&l.arn), &too_many)
            .unwrap_err()
            .code(),
        "ValidationError"
    );
    s.remove_tags(std::slice::from_ref(&l.arn), &["env".into()])
        .unwrap();
    assert_eq!(
        s.describe_tags(std::slice::from_ref(&l.arn)).unwrap()[0]
            .1
            .len(),
        1
    );
}

#[test]
fn state_round_trips_through_json() {
    let (mut s, _, t, li) = setup();
    rule(&mut s, &li.arn, 1, "/a", &t.arn).unwrap();
    s.register_targets(&t.arn, &[TargetDescription::new("a", 1)])
        .unwrap();
    let json = serde_json::to_string(&s).unwrap();
    let back: ElbState = serde_json::from_str(&json).unwrap();
    assert_eq!(back, s);
    let empty: ElbState = serde_json::from_str("{}").unwrap();
    assert_eq!(empty, ElbState::default());
}

#[test]
fn certificate_arns_name_pem_files() {
    use crate::proxy_config::certificate_files;
    let files = |c: &str, k: &str| Some((c.to_string(), k.to_string()));
    assert_eq!(
        certificate_files("file:///a/c.pem|/a/k.pem"),
        files("/a/c.pem", "/a/k.pem")
    );
    assert_eq!(
        certificate_files("arn:berth:acm:file:/a/c.pem:/a/k.pem"),
        files("/a/c.pem", "/a/k.pem")
    );
    assert_eq!(certificate_files("file:///a/c.pem"), None);
    assert_eq!(certificate_files("file://|/a/k.pem"), None);
    assert_eq!(
        certificate_files("arn:aws:acm:us-east-1:0:certificate/x"),
        None
    );
}
