//! Table-driven tests of the load balancer plan. The "current" side is a real `berth_elb::ElbState`
//! changed only through its own operations, so every default ELBv2 fills in (health check,
//! attributes, stickiness, redirect placeholders, legacy condition values) is there; applying a
//! plan to it and planning again must give `No changes.`.

use crate::plan::{plan, CurrentService};
use crate::{parse, ElbOp, ElbRefs, Plan, Stack, STACK_TAG};
use berth_elb::*;
use berth_model::Arns;
use std::path::Path;

const STACK: &str = r#"
name: shop
loadBalancers:
  web:
    listeners:
      - port: 8080
        defaultAction: {forward: frontend}
        rules:
          - priority: 10
            conditions: {pathPattern: ["/api/*"]}
            action: {forward: api}
          - priority: 20
            conditions: {hostHeader: [old.example.com]}
            action: {redirect: {host: new.example.com, statusCode: HTTP_302}}
          - priority: 30
            conditions:
              httpHeader: {name: X-Canary, values: ["1"]}
              httpRequestMethod: [GET]
              queryString: [{key: v, value: "2"}]
              sourceIp: [127.0.0.0/8]
            action: {forward: {targetGroups: [{name: api, weight: 90}, {name: frontend, weight: 10}], stickinessSeconds: 60}}
          - priority: 40
            conditions: {pathPattern: /teapot}
            action: {fixedResponse: {statusCode: 418, contentType: text/plain, messageBody: "short and stout"}}
targetGroups:
  frontend:
    port: 8080
    healthCheck: {path: /health, intervalSeconds: 1, timeoutSeconds: 0.5, healthyThreshold: 2, unhealthyThreshold: 2, matcher: "200"}
    attributes: {deregistration_delay.timeout_seconds: "1", stickiness.enabled: false, load_balancing.algorithm.type: round_robin, slow_start.duration_seconds: 0}
  api:
    port: 8080
    healthCheck: {path: /health, intervalSeconds: 0.5, timeoutSeconds: 0.25}
    attributes: {deregistration_delay.timeout_seconds: 1}
services: {}
"#;

fn stack_from(text: &str) -> Stack {
    parse(text, Path::new(".")).unwrap()
}

fn stack() -> Stack {
    stack_from(STACK)
}

fn tag(stack: &str) -> Vec<Tag> {
    vec![Tag {
        key: STACK_TAG.into(),
        value: Some(stack.into()),
    }]
}

/// Carries out the plan's ELBv2 steps on `state`, as `berth apply` does over the API.
fn execute(state: &mut ElbState, stack_name: &str, plan: &Plan) {
    let arns = Arns::default();
    let mut refs = ElbRefs::from_state(state);
    let create_tg =
        |state: &mut ElbState, refs: &mut ElbRefs, name: &str, spec: &crate::TargetGroupSpec| {
            let tg = state
                .create_target_group(
                    &arns,
                    &CreateTargetGroupRequest {
                        name: name.into(),
                        protocol: Some("HTTP".into()),
                        port: Some(i64::from(spec.port)),
                        target_type: Some("ip".into()),
                        health_check: spec.health_check.input(),
                        tags: tag(stack_name),
                        ..Default::default()
                    },
                )
                .unwrap();
            let attributes: Vec<Attribute> = spec
                .attributes
                .iter()
                .map(|(k, v)| Attribute {
                    key: k.clone(),
                    value: v.clone(),
                })
                .collect();
            if !attributes.is_empty() {
                state
                    .modify_target_group_attributes(&ModifyAttributesRequest {
                        resource_arn: tg.arn.clone(),
                        attributes,
                    })
                    .unwrap();
            }
            refs.target_groups.insert(name.into(), tg.arn);
        };
    let fixed_503 = || {
        vec![Action {
            action_type: "fixed-response".into(),
            fixed_response_config: Some(FixedResponseConfig {
                status_code: "503".into(),
                ..Default::default()
            }),
            ..Default::default()
        }]
    };
    for change in &plan.changes {
        let Some(op) = &change.elb else { continue };
        let action =
            |refs: &ElbRefs, a: &crate::ActionSpec| vec![a.to_elb(&|n| refs.target_group_arn(n))];
        match op {
            ElbOp::CreateTargetGroup { name, spec } => create_tg(state, &mut refs, name, spec),
            ElbOp::ModifyTargetGroup {
                arn,
                health_check,
                attributes,
                tag: adopt,
            } => {
                if let Some(hc) = health_check {
                    state
                        .modify_target_group(&ModifyTargetGroupRequest {
                            target_group_arn: arn.clone(),
                            health_check: hc.input(),
                        })
                        .unwrap();
                }
                if !attributes.is_empty() {
                    let attributes = attributes
                        .iter()
                        .map(|(k, v)| Attribute {
                            key: k.clone(),
                            value: v.clone(),
                        })
                        .collect();
                    state
                        .modify_target_group_attributes(&ModifyAttributesRequest {
                            resource_arn: arn.clone(),
                            attributes,
                        })
                        .unwrap();
                }
                if *adopt {
                    state
                        .add_tags(std::slice::from_ref(arn), &tag(stack_name))
                        .unwrap();
                }
            }
            ElbOp::ReplaceTargetGroup {
                arn,
                name,
                spec,
                detach_listeners,
                detach_rules,
            } => {
                for l in detach_listeners {
                    state
                        .modify_listener(&ModifyListenerRequest {
                            listener_arn: l.clone(),
                            default_actions: Some(fixed_503()),
                            ..Default::default()
                        })
                        .unwrap();
                }
                for r in detach_rules {
                    state
                        .modify_rule(&ModifyRuleRequest {
                            rule_arn: r.clone(),
                            conditions: None,
                            actions: Some(fixed_503()),
                        })
                        .unwrap();
                }
                state.delete_target_group(arn).unwrap();
                create_tg(state, &mut refs, name, spec);
            }
            ElbOp::DeleteTargetGroup { arn } => state.delete_target_group(arn).unwrap(),
            ElbOp::CreateLoadBalancer { name } => {
                let lb = state
                    .create_load_balancer(
                        &arns,
                        &CreateLoadBalancerRequest {
                            name: name.clone(),
                            tags: tag(stack_name),
                            ..Default::default()
                        },
                        0.0,
                    )
                    .unwrap();
                refs.load_balancers.insert(name.clone(), lb.arn);
            }
            ElbOp::TagLoadBalancer { arn } => state
                .add_tags(std::slice::from_ref(arn), &tag(stack_name))
                .unwrap(),
            ElbOp::DeleteLoadBalancer { arn } => state.delete_load_balancer(arn).unwrap(),
            ElbOp::CreateListener {
                load_balancer,
                port,
                default_action,
            } => {
                let l = state
                    .create_listener(
                        &arns,
                        &CreateListenerRequest {
                            load_balancer_arn: refs.load_balancer_arn(load_balancer),
                            protocol: Some("HTTP".into()),
                            port: Some(i64::from(*port)),
                            default_actions: action(&refs, default_action),
                            tags: tag(stack_name),
                            ..Default::default()
                        },
                    )
                    .unwrap();
                refs.listeners.insert((load_balancer.clone(), *port), l.arn);
            }
            ElbOp::ModifyListener {
                arn,
                default_action,
            } => {
                state
                    .modify_listener(&ModifyListenerRequest {
                        listener_arn: arn.clone(),
                        default_actions: Some(action(&refs, default_action)),
                        ..Default::default()
                    })
                    .unwrap();
            }
            ElbOp::DeleteListener { arn } => state.delete_listener(arn).unwrap(),
            ElbOp::CreateRule {
                load_balancer,
                port,
                priority,
                conditions,
                action: a,
            } => {
                state
                    .create_rule(
                        &arns,
                        &CreateRuleRequest {
                            listener_arn: refs.listener_arn(load_balancer, *port),
                            conditions: conditions.to_elb(),
                            priority: i64::from(*priority),
                            actions: action(&refs, a),
                            tags: tag(stack_name),
                        },
                    )
                    .unwrap();
            }
            ElbOp::ModifyRule {
                arn,
                conditions,
                action: a,
            } => {
                state
                    .modify_rule(&ModifyRuleRequest {
                        rule_arn: arn.clone(),
                        conditions: Some(conditions.to_elb()),
                        actions: Some(action(&refs, a)),
                    })
                    .unwrap();
            }
            ElbOp::DeleteRule { arn } => state.delete_rule(arn).unwrap(),
        }
    }
}

/// The ELBv2 state right after applying `stack()` to nothing.
fn applied() -> ElbState {
    let mut state = ElbState::default();
    let s = stack();
    let p = plan(&s, &[], &state);
    execute(&mut state, "shop", &p);
    state
}

/// Resources of another stack and untagged ones, which the plan must leave alone.
fn add_foreign(state: &mut ElbState) {
    let arns = Arns::default();
    let tg = state
        .create_target_group(
            &arns,
            &CreateTargetGroupRequest {
                name: "theirs".into(),
                protocol: Some("HTTP".into()),
                port: Some(80),
                tags: tag("other"),
                ..Default::default()
            },
        )
        .unwrap();
    let lb = state
        .create_load_balancer(
            &arns,
            &CreateLoadBalancerRequest {
                name: "their-lb".into(),
                tags: tag("other"),
                ..Default::default()
            },
            0.0,
        )
        .unwrap();
    state
        .create_listener(
            &arns,
            &CreateListenerRequest {
                load_balancer_arn: lb.arn,
                port: Some(9000),
                default_actions: vec![Action {
                    action_type: "forward".into(),
                    target_group_arn: Some(tg.arn),
                    ..Default::default()
                }],
                ..Default::default()
            },
        )
        .unwrap();
    state
        .create_load_balancer(
            &arns,
            &CreateLoadBalancerRequest {
                name: "manual".into(),
                ..Default::default()
            },
            0.0,
        )
        .unwrap();
}

#[test]
fn creating_everything_goes_in_dependency_order() {
    let p = plan(&stack(), &[], &ElbState::default());
    let order: Vec<String> = p
        .changes
        .iter()
        .map(|c| format!("{} {} {}", c.kind.symbol(), c.resource, c.name))
        .collect();
    assert_eq!(
        order,
        [
            "+ target-group api",
            "+ target-group frontend",
            "+ load-balancer web",
            "+ listener web:8080",
            "+ rule web:8080/10",
            "+ rule web:8080/20",
            "+ rule web:8080/30",
            "+ rule web:8080/40",
        ]
    );
    let rendered = p.render();
    for line in [
        "+ target-group frontend\n    port: 8080\n    healthCheck: /health every 1s\n    \
         deregistration_delay.timeout_seconds: 1\n    load_balancing.algorithm.type: round_robin\n    \
         slow_start.duration_seconds: 0\n    stickiness.enabled: false\n",
        "+ listener web:8080 (default: forward frontend, rules: 4)",
        "+ rule web:8080/10 (pathPattern=/api/* -> forward api)",
        "+ rule web:8080/20 (hostHeader=old.example.com -> redirect HTTP_302 to #{protocol}://new.example.com:#{port}/#{path}?#{query})",
        "+ rule web:8080/30 (httpRequestMethod=GET; sourceIp=127.0.0.0/8; httpHeader X-Canary=1; queryString v=2 -> forward api:90,frontend:10 (sticky 60s))",
        "+ rule web:8080/40 (pathPattern=/teapot -> fixed-response 418)",
        "Plan: 8 to create, 0 to update, 0 to delete.",
    ] {
        assert!(rendered.contains(line), "missing {line:?} in\n{rendered}");
    }
}

#[test]
fn applying_then_planning_again_changes_nothing() {
    let mut state = applied();
    assert_eq!(state.load_balancers.len(), 1);
    assert_eq!(state.rules.len(), 4);
    assert_eq!(plan(&stack(), &[], &state).render(), "No changes.");
    add_foreign(&mut state);
    assert_eq!(
        plan(&stack(), &[], &state).render(),
        "No changes.",
        "other stacks' and untagged resources are left alone"
    );
}

type Edit = fn(&mut String);

/// (what, how the file changes after applying STACK, the plan expected)
const CASES: &[(&str, Edit, &str)] = &[
    (
        "health check",
        |s| *s = s.replace("intervalSeconds: 0.5, timeoutSeconds: 0.25", "intervalSeconds: 3, timeoutSeconds: 0.25, matcher: 200-299"),
        "~ target-group api (healthCheck.intervalSeconds: 0.5 -> 3, healthCheck.matcher: \"200\" -> \"200-299\")\n\
         Plan: 0 to create, 1 to update, 0 to delete.",
    ),
    (
        "health check setting removed goes back to the default",
        |s| *s = s.replace("healthyThreshold: 2, unhealthyThreshold: 2, matcher: \"200\"", "unhealthyThreshold: 2"),
        "~ target-group frontend (healthCheck.healthyThreshold: 2 -> 5)\n\
         Plan: 0 to create, 1 to update, 0 to delete.",
    ),
    (
        "attribute changed, attribute removed",
        |s| *s = s.replace("attributes: {deregistration_delay.timeout_seconds: 1}", "attributes: {stickiness.enabled: true}"),
        "~ target-group api\n    \
             deregistration_delay.timeout_seconds: 1 -> 300\n    \
             stickiness.enabled: false -> true\n\
         Plan: 0 to create, 1 to update, 0 to delete.",
    ),
    (
        "rule conditions and action",
        |s| *s = s.replace("{pathPattern: [\"/api/*\"]}\n            action: {forward: api}", "{pathPattern: [\"/v2/*\"]}\n            action: {forward: frontend}"),
        "~ rule web:8080/10\n    \
             conditions: pathPattern=/api/* -> pathPattern=/v2/*\n    \
             action: forward api -> forward frontend\n\
         Plan: 0 to create, 1 to update, 0 to delete.",
    ),
    (
        "rule deleted",
        |s| *s = s.replace("          - priority: 40\n            conditions: {pathPattern: /teapot}\n            action: {fixedResponse: {statusCode: 418, contentType: text/plain, messageBody: \"short and stout\"}}\n", ""),
        "- rule web:8080/40\nPlan: 0 to create, 0 to update, 1 to delete.",
    ),
    (
        "default action",
        |s| *s = s.replace("defaultAction: {forward: frontend}", "defaultAction: {fixedResponse: {statusCode: 404}}"),
        "~ listener web:8080 (default: forward frontend -> fixed-response 404)\n\
         Plan: 0 to create, 1 to update, 0 to delete.",
    ),
    (
        "listener moved to another port",
        |s| *s = s.replace("port: 8080\n        defaultAction", "port: 8081\n        defaultAction"),
        "+ listener web:8081 (default: forward frontend, rules: 4)\n\
         + rule web:8081/10 (pathPattern=/api/* -> forward api)\n\
         + rule web:8081/20 (hostHeader=old.example.com -> redirect HTTP_302 to #{protocol}://new.example.com:#{port}/#{path}?#{query})\n\
         + rule web:8081/30 (httpRequestMethod=GET; sourceIp=127.0.0.0/8; httpHeader X-Canary=1; queryString v=2 -> forward api:90,frontend:10 (sticky 60s))\n\
         + rule web:8081/40 (pathPattern=/teapot -> fixed-response 418)\n\
         - listener web:8080\n\
         Plan: 5 to create, 0 to update, 1 to delete.",
    ),
    (
        "target group port change replaces it and re-points its users",
        |s| *s = s.replace("  api:\n    port: 8080", "  api:\n    port: 9090"),
        "~ target-group api (port: 8080 -> 9090 (replaces the target group))\n\
         ~ rule web:8080/10 (action: forward api (target group replaced))\n\
         ~ rule web:8080/30 (action: forward api:90,frontend:10 (sticky 60s) (target group replaced))\n\
         Plan: 0 to create, 3 to update, 0 to delete.",
    ),
    (
        "load balancer and target groups of the stack removed",
        |s| {
            let start = s.find("loadBalancers:").unwrap();
            let end = s.find("services:").unwrap();
            s.replace_range(start..end, "");
        },
        "- load-balancer web\n- target-group api\n- target-group frontend\n\
         Plan: 0 to create, 0 to update, 3 to delete.",
    ),
];

#[test]
fn changes_are_planned_and_applying_them_converges() {
    for (what, edit, expected) in CASES {
        let mut state = applied();
        add_foreign(&mut state);
        let mut text = STACK.to_string();
        edit(&mut text);
        assert_ne!(text, STACK, "{what}: the edit changed nothing");
        let s = stack_from(&text);
        let p = plan(&s, &[], &state);
        assert_eq!(p.render(), *expected, "{what}");
        execute(&mut state, "shop", &p);
        assert_eq!(
            plan(&s, &[], &state).render(),
            "No changes.",
            "{what}: after applying"
        );
        assert!(
            state.load_balancers.iter().any(|lb| lb.name == "their-lb"),
            "{what}: other stack's load balancer kept"
        );
        assert!(
            state.target_groups.iter().any(|tg| tg.name == "theirs"),
            "{what}: other stack's target group kept"
        );
        assert!(
            state.load_balancers.iter().any(|lb| lb.name == "manual"),
            "{what}: untagged load balancer kept"
        );
    }
}

#[test]
fn untagged_resources_are_adopted_and_other_stacks_are_conflicts() {
    let mut state = applied();
    for tags in state.tags.values_mut() {
        tags.clear();
    }
    let p = plan(&stack(), &[], &state);
    assert_eq!(
        p.render(),
        "~ target-group api (adopt: untagged target group api joins stack shop)\n\
         ~ target-group frontend (adopt: untagged target group frontend joins stack shop)\n\
         ~ load-balancer web (adopt: untagged load balancer web joins stack shop)\n\
         Plan: 0 to create, 3 to update, 0 to delete."
    );
    execute(&mut state, "shop", &p);
    assert_eq!(plan(&stack(), &[], &state).render(), "No changes.");

    for tags in state.tags.values_mut() {
        tags.insert(STACK_TAG.into(), "other".into());
    }
    let p = plan(&stack(), &[], &state);
    assert_eq!(p.conflicts.len(), 3, "{:?}", p.conflicts);
    assert!(
        p.conflicts[0].contains("target group api belongs to stack \"other\""),
        "{:?}",
        p.conflicts
    );
    assert!(
        p.changes.is_empty(),
        "nothing of another stack is changed or deleted: {:?}",
        p.changes
    );
}

#[test]
fn a_port_taken_by_another_stack_is_a_conflict() {
    let mut state = ElbState::default();
    add_foreign(&mut state);
    let s = stack_from(&STACK.replace(
        "port: 8080\n        defaultAction",
        "port: 9000\n        defaultAction",
    ));
    let p = plan(&s, &[], &state);
    assert_eq!(p.conflicts.len(), 1);
    assert!(
        p.conflicts[0].contains("port 9000 is taken by load balancer their-lb"),
        "{:?}",
        p.conflicts
    );
}

const WITH_SERVICE: &str = r#"
name: shop
targetGroups:
  api: {port: 8080}
services:
  api:
    loadBalancers: [{targetGroup: api, containerName: app, containerPort: 8080}]
    taskDefinition:
      containerDefinitions:
        - {name: app, image: process://berth, portMappings: [{containerPort: 8080}]}
"#;

#[test]
fn services_use_target_groups_by_name() {
    let s = stack_from(WITH_SERVICE);
    let p = plan(&s, &[], &ElbState::default());
    assert!(
        p.render()
            .contains("+ service api (desiredCount: 1, loadBalancers: [app:8080@api (new)])"),
        "{}",
        p.render()
    );
    let mut state = ElbState::default();
    execute(&mut state, "shop", &p);
    let spec = &s.services["api"];
    let current = CurrentService {
        name: "api".into(),
        desired_count: 1,
        task_definition: spec.task_definition.clone(),
        load_balancers: spec
            .load_balancers
            .iter()
            .map(|l| l.resolve(&ElbRefs::from_state(&state)))
            .collect(),
        stack: Some("shop".into()),
        ..Default::default()
    };
    assert_eq!(
        plan(&s, std::slice::from_ref(&current), &state).render(),
        "No changes."
    );

    let moved = stack_from(&WITH_SERVICE.replace("api: {port: 8080}", "api: {port: 8081}"));
    assert_eq!(
        plan(&moved, &[current], &state).render(),
        "~ target-group api (port: 8080 -> 8081 (replaces the target group))\n\
         ~ service api (loadBalancers: [app:8080@api] -> [app:8080@api (new)])\n\
         Plan: 0 to create, 2 to update, 0 to delete."
    );
}

const BLUE_GREEN: &str = r#"
name: shop
loadBalancers:
  web:
    listeners:
      - port: 8080
        defaultAction: {forward: blue}
        rules:
          - {priority: 10, conditions: {pathPattern: [/test/*]}, action: {forward: blue}}
targetGroups:
  blue: {port: 8080}
  green: {port: 8080}
services:
  web:
    loadBalancers: [{targetGroup: blue, containerName: app, containerPort: 8080}]
    deployment:
      trafficShift: Linear50PercentEvery0.05Minutes
      bakeTimeMinutes: 0.02
      alternateTargetGroup: green
      productionListener: web:8080
      testListener: web:8080/10
    taskDefinition:
      containerDefinitions:
        - {name: app, image: process://berth, portMappings: [{containerPort: 8080}]}
"#;

/// The service as DescribeServices shows it after `berth apply` created it with `state`'s ARNs.
fn applied_service(s: &Stack, state: &ElbState) -> CurrentService {
    let spec = &s.services["web"];
    CurrentService {
        name: "web".into(),
        desired_count: spec.desired_count,
        task_definition: spec.task_definition.clone(),
        deployment_configuration: spec.deployment_configuration.clone(),
        load_balancers: spec
            .load_balancers
            .iter()
            .map(|l| l.resolve(&ElbRefs::from_state(state)))
            .collect(),
        stack: Some("shop".into()),
        ..Default::default()
    }
}

#[test]
fn blue_green_services_name_their_listeners_and_survive_deployments() {
    let s = stack_from(BLUE_GREEN);
    let p = plan(&s, &[], &ElbState::default());
    let rendered = p.render();
    assert!(
        rendered.contains(
            "+ service web\n    desiredCount: 1\n    loadBalancers: [app:8080@blue (new) (alternate green (new), production web:8080 (new), test web:8080/10 (new))]\n    strategy: LINEAR 50% every 0.05 min"
        ),
        "{rendered}"
    );
    let mut state = ElbState::default();
    execute(&mut state, "shop", &p);
    let current = applied_service(&s, &state);
    let adv = current.load_balancers[0]
        .advanced_configuration
        .clone()
        .unwrap();
    assert!(
        adv.alternate_target_group_arn
            .contains(":targetgroup/green/"),
        "{adv:?}"
    );
    assert!(
        adv.production_listener_rule.contains(":listener/app/web/"),
        "{adv:?}"
    );
    assert!(
        adv.test_listener_rule
            .as_deref()
            .unwrap()
            .contains(":listener-rule/app/web/"),
        "{adv:?}"
    );
    assert_eq!(
        plan(&s, std::slice::from_ref(&current), &state).render(),
        "No changes."
    );

    // A finished deployment leaves production (and test) traffic on green: that is the
    // deployments' business, not a difference from the file.
    let refs = ElbRefs::from_state(&state);
    let (blue, green) = (
        refs.target_group_arn("blue"),
        refs.target_group_arn("green"),
    );
    for arn in [
        refs.listener_arn("web", 8080),
        refs.rules[&("web".to_string(), 8080, 10)].clone(),
    ] {
        state
            .set_forward_weights(&arn, &[(blue.clone(), 0), (green.clone(), 100)])
            .unwrap();
    }
    assert_eq!(
        plan(&s, std::slice::from_ref(&current), &state).render(),
        "No changes."
    );

    // Other changes still show, by name; a rule no longer shifted is the file's again.
    let canary = stack_from(
        &BLUE_GREEN
            .replace(
                "Linear50PercentEvery0.05Minutes",
                "Canary10Percent0.5Minutes",
            )
            .replace("testListener: web:8080/10", ""),
    );
    assert_eq!(
        plan(&canary, std::slice::from_ref(&current), &state).render(),
        "~ rule web:8080/10 (action: forward blue:0,green:100 -> forward blue)\n\
         ~ service web\n    \
             deploymentConfiguration.strategy: LINEAR -> CANARY\n    \
             deploymentConfiguration.canaryConfiguration: none -> 10% for 0.5 min\n    \
             deploymentConfiguration.linearConfiguration: 50% every 0.05 min -> none\n    \
             loadBalancers: [app:8080@blue (alternate green, production web:8080, test web:8080/10)] -> [app:8080@blue (alternate green, production web:8080)]\n\
         Plan: 0 to create, 2 to update, 0 to delete."
    );
    // Without the deployment section the listener is the file's again.
    let plain = stack_from(&BLUE_GREEN.replace(
        "    deployment:\n      trafficShift: Linear50PercentEvery0.05Minutes\n      bakeTimeMinutes: 0.02\n      alternateTargetGroup: green\n      productionListener: web:8080\n      testListener: web:8080/10\n",
        "",
    ));
    let rendered = plan(&plain, &[current], &state).render();
    assert!(
        rendered
            .contains("~ listener web:8080 (default: forward blue:0,green:100 -> forward blue)"),
        "{rendered}"
    );
}
