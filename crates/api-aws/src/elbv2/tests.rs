//! Tests of the ELBv2 query protocol: the nested-key parser, XML rendering and dispatch.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use super::query::Params;
use super::*;

fn call(state: &mut ElbState, body: &str) -> (QueryResponse, bool) {
    handle_elbv2(state, &Arns::default(), body.as_bytes(), "rid-1", 0.0)
}

/// The text between `<tag>` and `</tag>` (first occurrence).
fn between<'a>(xml: &'a str, tag: &str) -> &'a str {
    let open = format!("<{tag}>");
    let start = xml
        .find(&open)
        .unwrap_or_else(|| panic!("no <{tag}> in {xml}"))
        + open.len();
    let end = xml[start..].find(&format!("</{tag}>")).unwrap() + start;
    &xml[start..end]
}

#[test]
fn parser_reads_nested_member_lists_in_numeric_order() {
    let body = "Action=CreateRule&Conditions.member.1.Field=path-pattern\
        &Conditions.member.1.PathPatternConfig.Values.member.10=%2Fz&Conditions.member.1.PathPatternConfig.Values.member.2=%2Fapi%2F%2A\
        &Conditions.member.2.Field=query-string&Conditions.member.2.QueryStringConfig.Values.member.1.Key=v\
        &Conditions.member.2.QueryStringConfig.Values.member.1.Value=2&Tags=";
    let p = Params::parse(body.as_bytes()).unwrap();
    assert_eq!(p.str("Action"), Some("CreateRule"));
    let conditions = p.list("Conditions");
    assert_eq!(conditions.len(), 2);
    assert_eq!(
        conditions[0].strings("PathPatternConfig.Values"),
        vec!["/api/*", "/z"],
        "member.2 before member.10"
    );
    let kv = conditions[1].list("QueryStringConfig.Values");
    assert_eq!(
        (kv[0].str("Key"), kv[0].str("Value")),
        (Some("v"), Some("2"))
    );
    assert!(
        p.has_list("Tags") && p.list("Tags").is_empty(),
        "an empty list is given but has no members"
    );
    assert!(p.list("Missing").is_empty());
}

#[test]
fn parser_collects_typed_errors() {
    let p = Params::parse(b"Port=eighty&Enabled=yes&Weight=-1&Interval=0.5").unwrap();
    let mut errors = FieldErrors::default();
    assert_eq!(p.int("Port", "Port", &mut errors), None);
    assert_eq!(p.boolean("Enabled", "Enabled", &mut errors), None);
    assert_eq!(p.unsigned("Weight", "Weight", &mut errors), None);
    assert_eq!(p.float("Interval", "Interval", &mut errors), Some(0.5));
    assert_eq!(p.required("Name", "Name", &mut errors), "");
    let text = errors.to_string();
    for expected in [
        "Port: an integer was expected, found 'eighty'",
        "Enabled: true or false was expected, found 'yes'",
        "Weight: a non-negative integer was expected, found -1",
        "Name: a value was expected, found none",
    ] {
        assert!(text.contains(expected), "missing {expected:?} in {text}");
    }
}

#[test]
fn timestamps_format_as_iso8601() {
    assert_eq!(xml::iso8601(0.0), "1970-01-01T00:00:00.000Z");
    assert_eq!(xml::iso8601(951_782_400.25), "2000-02-29T00:00:00.250Z");
    assert_eq!(xml::iso8601(1_795_305_600.0), "2026-11-22T00:00:00.000Z");
}

#[test]
fn create_and_describe_render_the_elbv2_shape() {
    let mut st = ElbState::default();
    let (resp, mutated) = call(
        &mut st,
        "Action=CreateLoadBalancer&Version=2015-12-01&Name=web&Subnets.member.1=subnet-a",
    );
    assert_eq!(resp.status, 200, "{}", resp.body);
    assert!(mutated);
    assert!(resp.body.starts_with(
        "<CreateLoadBalancerResponse xmlns=\"http://elasticloadbalancing.amazonaws.com/doc/2015-12-01/\"><CreateLoadBalancerResult><LoadBalancers><member><LoadBalancerArn>arn:aws:elasticloadbalancing:us-east-1:000000000000:loadbalancer/app/web/"
    ), "{}", resp.body);
    assert!(resp.body.ends_with("</CreateLoadBalancerResult><ResponseMetadata><RequestId>rid-1</RequestId></ResponseMetadata></CreateLoadBalancerResponse>"));
    assert_eq!(
        between(&resp.body, "CreatedTime"),
        "1970-01-01T00:00:00.000Z"
    );
    assert_eq!(
        between(&resp.body, "AvailabilityZones"),
        "<member><ZoneName>us-east-1a</ZoneName><SubnetId>subnet-a</SubnetId></member>"
    );
    let (resp, mutated) = call(&mut st, "Action=DescribeLoadBalancers&Version=2015-12-01");
    assert!(!mutated, "describe does not mutate");
    assert_eq!(between(&resp.body, "LoadBalancerName"), "web");
}

#[test]
fn rules_render_priority_conditions_and_escaped_values() {
    let mut st = ElbState::default();
    let arns = Arns::default();
    let lb = st
        .create_load_balancer(
            &arns,
            &CreateLoadBalancerRequest {
                name: "web".into(),
                ..Default::default()
            },
            0.0,
        )
        .unwrap();
    let tg = st
        .create_target_group(
            &arns,
            &CreateTargetGroupRequest {
                name: "app".into(),
                protocol: Some("HTTP".into()),
                port: Some(80),
                ..Default::default()
            },
        )
        .unwrap();
    let body = format!(
        "Action=CreateListener&LoadBalancerArn={}&Port=80&Protocol=HTTP&DefaultActions.member.1.Type=forward&DefaultActions.member.1.TargetGroupArn={}",
        lb.arn, tg.arn
    );
    let (resp, _) = call(&mut st, &body);
    assert_eq!(resp.status, 200, "{}", resp.body);
    let listener_arn = between(&resp.body, "ListenerArn").to_string();
    let body = format!(
        "Action=CreateRule&ListenerArn={listener_arn}&Priority=7&Conditions.member.1.Field=host-header&Conditions.member.1.Values.member.1=a%26b.example.com\
         &Actions.member.1.Type=fixed-response&Actions.member.1.FixedResponseConfig.StatusCode=200&Actions.member.1.FixedResponseConfig.MessageBody=%3Cok%3E"
    );
    let (resp, mutated) = call(&mut st, &body);
    assert_eq!(resp.status, 200, "{}", resp.body);
    assert!(mutated);
    assert_eq!(between(&resp.body, "Priority"), "7");
    assert_eq!(between(&resp.body, "MessageBody"), "&lt;ok&gt;");
    assert_eq!(
        between(&resp.body, "HostHeaderConfig"),
        "<Values><member>a&amp;b.example.com</member></Values>"
    );
    let (resp, _) = call(
        &mut st,
        &format!("Action=DescribeRules&ListenerArn={listener_arn}"),
    );
    assert!(
        resp.body
            .contains("<Priority>default</Priority><Conditions></Conditions>"),
        "{}",
        resp.body
    );
    assert!(resp.body.contains("<IsDefault>true</IsDefault>"));
}

#[test]
fn errors_are_error_responses_with_400() {
    let mut st = ElbState::default();
    let (resp, mutated) = call(&mut st, "Action=DeleteListener&ListenerArn=arn%3Anope");
    assert_eq!(resp.status, 400);
    assert!(!mutated);
    assert_eq!(
        resp.body,
        "<ErrorResponse xmlns=\"http://elasticloadbalancing.amazonaws.com/doc/2015-12-01/\"><Error><Type>Sender</Type><Code>ListenerNotFound</Code><Message>Listener &apos;arn:nope&apos; not found</Message></Error><RequestId>rid-1</RequestId></ErrorResponse>"
    );
    let (resp, _) = call(&mut st, "Action=CreateTargetGroup&Port=x");
    assert_eq!(between(&resp.body, "Code"), "ValidationError");
    let message = between(&resp.body, "Message");
    assert!(
        message.contains("Name: a value was expected")
            && message.contains("Port: an integer was expected"),
        "{message}"
    );
    let (resp, _) = call(&mut st, "Action=CreateRule&ListenerArn=x&Priority=1&Conditions.member.1.Field=path-pattern&Conditions.member.1.PathPatternConfig.RegexValues.member.1=.*");
    assert!(
        between(&resp.body, "Message").contains("RegexValues"),
        "{}",
        resp.body
    );
    let (resp, _) = call(&mut st, "Action=CreateTrustStore");
    assert_eq!(between(&resp.body, "Code"), "InvalidAction");
    let (resp, _) = call(&mut st, "Version=2015-12-01");
    assert_eq!(between(&resp.body, "Code"), "MissingAction");
}

#[test]
fn targets_and_attributes_round_trip() {
    let mut st = ElbState::default();
    let tg = st
        .create_target_group(
            &Arns::default(),
            &CreateTargetGroupRequest {
                name: "app".into(),
                protocol: Some("HTTP".into()),
                port: Some(80),
                ..Default::default()
            },
        )
        .unwrap();
    let (resp, mutated) = call(&mut st, &format!("Action=RegisterTargets&TargetGroupArn={}&Targets.member.1.Id=10.0.0.1&Targets.member.1.Port=81&Targets.member.2.Id=10.0.0.2", tg.arn));
    assert_eq!(resp.status, 200, "{}", resp.body);
    assert!(mutated);
    let (resp, _) = call(
        &mut st,
        &format!("Action=DescribeTargetHealth&TargetGroupArn={}", tg.arn),
    );
    assert!(resp.body.contains("<Target><Id>10.0.0.1</Id><Port>81</Port></Target><HealthCheckPort>81</HealthCheckPort><TargetHealth><State>unused</State><Reason>Target.NotInUse</Reason>"), "{}", resp.body);
    let (resp, _) = call(
        &mut st,
        &format!("Action=ModifyTargetGroupAttributes&TargetGroupArn={}&Attributes.member.1.Key=slow_start.duration_seconds&Attributes.member.1.Value=30", tg.arn),
    );
    assert!(
        resp.body
            .contains("<member><Key>slow_start.duration_seconds</Key><Value>30</Value></member>"),
        "{}",
        resp.body
    );
    assert_eq!(
        st.attribute(&tg.arn, "slow_start.duration_seconds"),
        Some("30")
    );
}
