//! Table-driven tests of the plan: create, update, delete, adoption, conflicts, and the
//! normalisation that keeps an unchanged stack's plan empty.

use crate::plan::{
    diff_task_definitions, plan, ChangeKind, CurrentScaling, CurrentService, Resource,
};
use crate::{parse, Stack};
use berth_elb::ElbState;
use berth_model::ecs::{DeploymentConfiguration, LoadBalancer, TaskDefinition};
use serde_json::{json, Value};
use std::path::Path;

const STACK: &str = r#"
name: shop
services:
  web:
    desiredCount: 2
    loadBalancers:
      - {targetGroupArn: tg-a, containerName: web, containerPort: 8080}
      - {targetGroupArn: tg-b, containerName: web, containerPort: 8080}
    taskDefinition:
      containerDefinitions:
        - name: web
          image: process://berth
          command: [demo-app]
          environment:
            - {name: DEMO_VERSION, value: "v1"}
            - {name: DEMO_NAME, value: "web"}
          portMappings: [{containerPort: 8080}]
          healthCheck: {command: [CMD-SHELL, "true"], interval: 0.5}
          stopTimeout: 5
"#;

fn stack() -> Stack {
    parse(STACK, Path::new(".")).unwrap()
}

/// The task definition as ECS would describe it after registration: output-only fields added,
/// defaults filled in, empty lists everywhere, environment reordered.
fn described(td: &TaskDefinition, revision: u32) -> TaskDefinition {
    let mut v = serde_json::to_value(td).unwrap();
    v["taskDefinitionArn"] = json!(format!(
        "arn:aws:ecs:local:000000000000:task-definition/{}:{revision}",
        td.family
    ));
    v["revision"] = json!(revision);
    v["status"] = json!("ACTIVE");
    v["registeredAt"] = json!(1_700_000_000.5);
    v["registeredBy"] = json!("arn:aws:iam::000000000000:root");
    v["compatibilities"] = json!(["EC2", "FARGATE"]);
    v["requiresAttributes"] = json!([{"name": "ecs.capability.container-health-check"}]);
    v["volumes"] = json!([]);
    v["placementConstraints"] = json!([]);
    for c in v["containerDefinitions"].as_array_mut().unwrap() {
        c["essential"] = json!(true);
        c["cpu"] = json!(0);
        c["mountPoints"] = json!([]);
        c["volumesFrom"] = json!([]);
        c["environment"].as_array_mut().unwrap().reverse();
        for pm in c["portMappings"].as_array_mut().unwrap() {
            pm["protocol"] = json!("tcp");
            pm["hostPort"] = json!(0);
        }
        if let Some(hc) = c.get_mut("healthCheck").and_then(Value::as_object_mut) {
            hc.insert("timeout".into(), json!(5));
            hc.insert("retries".into(), json!(3));
            hc.insert("startPeriod".into(), json!(0));
        }
        c["stopTimeout"] = json!(5.0);
    }
    serde_json::from_value(v).unwrap()
}

/// What the cluster would describe right after applying `stack`.
fn applied(stack: &Stack) -> Vec<CurrentService> {
    stack
        .services
        .iter()
        .map(|(name, spec)| CurrentService {
            name: name.clone(),
            desired_count: spec.desired_count,
            task_definition: described(&spec.task_definition, 4),
            health_check_grace_period_seconds: None,
            deployment_configuration: Some(DeploymentConfiguration {
                maximum_percent: Some(200),
                minimum_healthy_percent: Some(100),
                extra: serde_json::from_value(
                    json!({"alarms": {"alarmNames": [], "enable": false, "rollback": false}}),
                )
                .unwrap(),
                ..Default::default()
            }),
            load_balancers: spec
                .load_balancers
                .iter()
                .rev()
                .map(|l| l.load_balancer.clone())
                .collect(),
            stack: Some(stack.name.clone()),
            scaling: None,
            ingress: spec.ingress.clone(),
        })
        .collect()
}

#[test]
fn ingress_changes_update_the_service() {
    use berth_model::ecs::{IngressRule, PortRange};
    let mut wanted = stack();
    let current = applied(&wanted);
    let name = wanted.services.keys().next().unwrap().clone();
    wanted.services.get_mut(&name).unwrap().ingress = vec![IngressRule {
        from_service: "web".into(),
        ports: vec![
            PortRange {
                from: 9000,
                to: 9100,
            },
            PortRange { from: 80, to: 80 },
        ],
    }];
    let p = plan(&wanted, &current, &ElbState::default());
    let change = p
        .changes
        .iter()
        .find(|c| c.resource == Resource::Service && c.name == name)
        .expect("the service is updated");
    assert_eq!(
        change.details,
        vec!["ingress: [] -> [web:80,9000-9100]".to_string()]
    );
    // Applied: no change.
    let again = plan(&wanted, &applied(&wanted), &ElbState::default());
    assert!(
        !again
            .changes
            .iter()
            .any(|c| c.resource == Resource::Service),
        "{again:?}"
    );
}

fn untagged(name: &str) -> CurrentService {
    CurrentService {
        name: name.into(),
        desired_count: 1,
        ..applied(&stack()).remove(0)
    }
    .with_stack(None)
}

trait WithStack {
    fn with_stack(self, stack: Option<&str>) -> Self;
}
impl WithStack for CurrentService {
    fn with_stack(mut self, stack: Option<&str>) -> Self {
        self.stack = stack.map(str::to_string);
        self
    }
}

type Edit = fn(&mut Stack, &mut Vec<CurrentService>);

/// (what, how the stack or the cluster differs from "just applied", expected rendering)
const CASES: &[(&str, Edit, &str)] = &[
    ("identical after ECS filled in its defaults", |_, _| {}, "No changes."),
    (
        "new stack creates task definition and service",
        |_, cur| cur.clear(),
        "+ task-definition shop-web (containers: web)\n\
         + service web (desiredCount: 2, loadBalancers: [web:8080@tg-a, web:8080@tg-b])\n\
         Plan: 2 to create, 0 to update, 0 to delete.",
    ),
    (
        "desired count changed",
        |s, _| s.services.get_mut("web").unwrap().desired_count = 3,
        "~ service web (desiredCount: 2 -> 3)\nPlan: 0 to create, 1 to update, 0 to delete.",
    ),
    (
        "image and an environment value changed",
        |s, _| {
            let c = &mut s.services.get_mut("web").unwrap().task_definition.container_definitions[0];
            c.image = "process://other".into();
            c.environment[0].value = "v2".into();
        },
        "~ task-definition shop-web\n    \
             containerDefinitions[web].image: \"process://berth\" -> \"process://other\"\n    \
             containerDefinitions[web].environment[DEMO_VERSION].value: \"v1\" -> \"v2\"\n\
         ~ service web (taskDefinition: shop-web:4 -> new revision)\n\
         Plan: 0 to create, 2 to update, 0 to delete.",
    ),
    (
        "service of this stack no longer in the file is deleted; others are left alone",
        |_, cur| {
            cur.push(untagged("old").with_stack(Some("shop")));
            cur.push(untagged("legacy"));
            cur.push(untagged("theirs").with_stack(Some("other")));
        },
        "- service old\nPlan: 0 to create, 0 to update, 1 to delete.",
    ),
    (
        "untagged service of the same name is adopted",
        |_, cur| cur[0].stack = None,
        "~ service web (adopt: untagged service web joins stack shop)\nPlan: 0 to create, 1 to update, 0 to delete.",
    ),
    (
        "service of another stack is a conflict, not a change",
        |_, cur| cur[0].stack = Some("other".into()),
        "! service web belongs to stack \"other\" (tag berth:stack), not to \"shop\"; remove it from one of the stacks\n\
         Plan: 0 to create, 0 to update, 0 to delete. 1 conflict to resolve first.",
    ),
    (
        "deployment settings, grace period and load balancers",
        |s, _| {
            let web = s.services.get_mut("web").unwrap();
            web.deployment_configuration =
                Some(DeploymentConfiguration { minimum_healthy_percent: Some(50), ..Default::default() });
            web.health_check_grace_period_seconds = Some(10);
            web.load_balancers.pop();
        },
        "~ service web\n    \
             healthCheckGracePeriodSeconds: 0 -> 10\n    \
             deploymentConfiguration.minimumHealthyPercent: 100 -> 50\n    \
             loadBalancers: [web:8080@tg-b, web:8080@tg-a] -> [web:8080@tg-a]\n\
         Plan: 0 to create, 1 to update, 0 to delete.",
    ),
];

#[test]
fn plans() {
    for (what, edit, expected) in CASES {
        let mut s = stack();
        let mut current = applied(&s);
        edit(&mut s, &mut current);
        let p = plan(&s, &current, &ElbState::default());
        assert_eq!(p.render(), *expected, "{what}");
        assert_eq!(p.is_empty(), *expected == "No changes.", "{what}");
    }
}

#[test]
fn changes_are_structured_for_the_applier() {
    let mut s = stack();
    let current = applied(&s);
    s.services
        .get_mut("web")
        .unwrap()
        .task_definition
        .container_definitions[0]
        .command = vec!["other".into()];
    let p = plan(&s, &current, &ElbState::default());
    assert!(p.registers_task_definition("web"));
    assert_eq!(p.changes[0].resource, Resource::TaskDefinition);
    assert_eq!(p.changes[0].kind, ChangeKind::Update);
    assert_eq!(p.changes[0].name, "shop-web");
    assert_eq!(p.changes[0].service, "web");
    assert_eq!(p.changes[1].resource, Resource::Service);
    assert_eq!(p.counts(), (0, 2, 0));
    assert!(
        !plan(&stack(), &applied(&stack()), &ElbState::default()).registers_task_definition("web")
    );
}

/// Pairs that must compare equal (ECS defaults) or differ (real changes).
#[test]
fn task_definition_normalisation() {
    let base = json!({"family": "f", "containerDefinitions": [{"name": "a", "image": "i",
        "portMappings": [{"containerPort": 80}]}]});
    let with = |patch: Value| {
        let mut v = base.clone();
        for (k, val) in patch.as_object().unwrap() {
            v["containerDefinitions"][0][k] = val.clone();
        }
        serde_json::from_value::<TaskDefinition>(v).unwrap()
    };
    let same: &[Value] = &[
        json!({"essential": true}),
        json!({"command": [], "environment": [], "dependsOn": [], "mountPoints": []}),
        json!({"cpu": 0}),
        json!({"portMappings": [{"containerPort": 80, "protocol": "tcp", "hostPort": 0}]}),
        json!({"stopTimeout": null}),
    ];
    let different: &[Value] = &[
        json!({"essential": false}),
        json!({"command": ["x"]}),
        json!({"cpu": 256}),
        json!({"portMappings": [{"containerPort": 80, "hostPort": 8080}]}),
        json!({"portMappings": [{"containerPort": 80, "protocol": "udp"}]}),
        json!({"logConfiguration": {"logDriver": "awslogs"}}),
        json!({"healthCheck": {"command": ["CMD", "true"]}}),
    ];
    let base_td = with(json!({}));
    for patch in same {
        assert_eq!(
            diff_task_definitions(&base_td, &with(patch.clone())),
            Vec::<String>::new(),
            "{patch}"
        );
    }
    for patch in different {
        let lines = diff_task_definitions(&base_td, &with(patch.clone()));
        assert!(!lines.is_empty(), "{patch} should differ");
    }
    // awsvpc and host fill hostPort with containerPort; that is no change either.
    let mut a = base_td.clone();
    a.network_mode = Some("awsvpc".into());
    let mut b = a.clone();
    b.container_definitions[0].port_mappings[0].host_port = Some(80);
    assert!(diff_task_definitions(&a, &b).is_empty());
    // A different family is a new registration.
    b.family = "g".into();
    assert_eq!(
        diff_task_definitions(&a, &b),
        vec!["family: \"f\" -> \"g\"".to_string()]
    );
}

#[test]
fn long_diffs_are_capped() {
    let mut a = stack().services["web"].task_definition.clone();
    let b = a.clone();
    a.container_definitions[0].environment = (0..30)
        .map(|i| berth_model::ecs::KeyValuePair {
            name: format!("V{i}"),
            value: "x".into(),
        })
        .collect();
    let lines = diff_task_definitions(&a, &b);
    assert_eq!(lines.len(), 12);
    assert!(lines[11].starts_with("... and 21 more"), "{}", lines[11]);
}

#[test]
fn from_service_reads_describe_output() {
    let service: berth_model::ecs::Service = serde_json::from_value(json!({
        "serviceArn": "arn:s", "serviceName": "web", "clusterArn": "arn:c", "status": "ACTIVE",
        "desiredCount": 2, "runningCount": 2, "pendingCount": 0, "taskDefinition": "arn:td",
        "createdAt": 1.0, "healthCheckGracePeriodSeconds": 5,
        "loadBalancers": [{"targetGroupArn": "tg", "containerName": "web", "containerPort": 8080}]
    }))
    .unwrap();
    let cur =
        CurrentService::from_service(&service, TaskDefinition::default(), Some("shop".into()));
    assert_eq!(cur.desired_count, 2);
    assert_eq!(cur.health_check_grace_period_seconds, Some(5));
    assert_eq!(
        cur.load_balancers[0],
        LoadBalancer {
            target_group_arn: Some("tg".into()),
            container_name: Some("web".into()),
            container_port: Some(8080),
            load_balancer_name: None,
            ..LoadBalancer::default()
        }
    );
    assert_eq!(cur.stack.as_deref(), Some("shop"));
}

const SCALED: &str = "
    scaling:
      minCapacity: 2
      maxCapacity: 10
      targetTracking:
        - {name: cpu, metric: cpu, target: 50, scaleOutCooldown: 5}
        - {name: mem, metric: memory, target: 70}
      scheduled:
        - {name: night, schedule: \"cron(0 22 * * ? *)\", timezone: Europe/Berlin, minCapacity: 0, maxCapacity: 0}
";

fn scaled_stack() -> Stack {
    parse(
        &STACK.replace(
            "    loadBalancers:\n",
            &format!("{SCALED}    loadBalancers:\n"),
        ),
        Path::new("."),
    )
    .unwrap()
}

/// What Application Auto Scaling describes after `berth apply` registered `stack`'s scaling:
/// integers for numbers, absent cooldowns filled in, null Timezone for UTC.
fn applied_scaling(stack: &Stack) -> Vec<CurrentService> {
    let mut current = applied(stack);
    for cur in &mut current {
        let Some(want) = &stack.services[&cur.name].scaling else {
            continue;
        };
        let mut policies = std::collections::BTreeMap::new();
        for p in &want.target_tracking {
            let mut c = p.configuration(None);
            c["TargetValue"] = json!(p.target as i64);
            c["ScaleInCooldown"] = json!(p.scale_in_cooldown.unwrap_or(300));
            c["ScaleOutCooldown"] = json!(p.scale_out_cooldown.unwrap_or(300));
            policies.insert(p.name.clone(), c);
        }
        let scheduled = want
            .scheduled
            .iter()
            .map(|s| (s.name.clone(), json!({"Schedule": s.schedule, "Timezone": s.timezone, "ScalableTargetAction": s.target_action()})))
            .collect();
        cur.scaling = Some(CurrentScaling {
            min_capacity: want.min_capacity,
            max_capacity: want.max_capacity,
            policies,
            scheduled,
        });
    }
    current
}

/// (what, how the stack or the cluster differs from "just applied", expected rendering)
const SCALING_CASES: &[(&str, Edit, &str)] = &[
    ("identical", |_, _| {}, "No changes."),
    (
        "Application Auto Scaling moved the desired count: not the file's business",
        |_, cur| cur[0].desired_count = 7,
        "No changes.",
    ),
    (
        "new service: scaling after the service",
        |_, cur| cur.clear(),
        "+ task-definition shop-web (containers: web)\n\
         + service web (desiredCount: 2, loadBalancers: [web:8080@tg-a, web:8080@tg-b])\n\
         + scaling web (2-10 tasks, cpu: cpu at 50, mem: memory at 70, night: cron(0 22 * * ? *))\n\
         Plan: 3 to create, 0 to update, 0 to delete.",
    ),
    (
        "no scalable target yet",
        |_, cur| cur[0].scaling = None,
        "+ scaling web (2-10 tasks, cpu: cpu at 50, mem: memory at 70, night: cron(0 22 * * ? *))\n\
         Plan: 1 to create, 0 to update, 0 to delete.",
    ),
    (
        "range, a target, a removed policy, a new and a changed scheduled action",
        |s, cur| {
            let sc = s.services.get_mut("web").unwrap().scaling.as_mut().unwrap();
            sc.max_capacity = 12;
            sc.target_tracking[0].target = 60.0;
            sc.target_tracking.pop();
            sc.scheduled[0].timezone = None;
            sc.scheduled.push(crate::ScheduledSpec { name: "day".into(), schedule: "cron(0 8 * * ? *)".into(), min_capacity: Some(2), ..Default::default() });
            let _ = cur;
        },
        "~ scaling web\n    \
             capacity: 2-10 -> 2-12\n    \
             policy cpu.TargetValue: 50.0 -> 60.0\n    \
             - policy mem\n    \
             scheduled night.Timezone: \"Europe/Berlin\" -> \"UTC\"\n    \
             + scheduled day\n\
         Plan: 0 to create, 1 to update, 0 to delete.",
    ),
    (
        "a step scaling policy added by hand is removed",
        |_, cur| {
            cur[0].scaling.as_mut().unwrap().policies.insert("manual".into(), Value::Null);
        },
        "~ scaling web (- policy manual)\nPlan: 0 to create, 1 to update, 0 to delete.",
    ),
    (
        "scaling removed from the file",
        |s, _| s.services.get_mut("web").unwrap().scaling = None,
        "- scaling web\nPlan: 0 to create, 0 to update, 1 to delete.",
    ),
    (
        "a deleted service loses its scaling first",
        |s, _| {
            s.services.clear();
        },
        "- scaling web\n- service web\nPlan: 0 to create, 0 to update, 2 to delete.",
    ),
];

#[test]
fn scaling_plans() {
    for (what, edit, expected) in SCALING_CASES {
        let mut s = scaled_stack();
        let mut current = applied_scaling(&s);
        edit(&mut s, &mut current);
        let p = plan(&s, &current, &ElbState::default());
        assert_eq!(p.render(), *expected, "{what}");
        for c in p.changes.iter().filter(|c| c.resource == Resource::Scaling) {
            assert!(
                c.scaling.is_some(),
                "{what}: scaling changes carry their calls"
            );
        }
    }
}

#[test]
fn scaling_ops_carry_the_calls() {
    use crate::ScalingOp;
    let s = scaled_stack();
    let p = plan(&s, &[], &ElbState::default());
    match p.changes.last().and_then(|c| c.scaling.clone()) {
        Some(ScalingOp::Apply {
            service,
            register,
            put_policies,
            put_scheduled,
            delete_policies,
            ..
        }) => {
            assert_eq!(service, "web");
            assert_eq!(register, Some((2, 10)));
            assert_eq!(put_policies.len(), 2);
            assert_eq!(put_scheduled[0].name, "night");
            assert!(delete_policies.is_empty());
        }
        other => panic!("expected an Apply op, got {other:?}"),
    }
    let mut gone = scaled_stack();
    gone.services.get_mut("web").unwrap().scaling = None;
    let p = plan(&gone, &applied_scaling(&s), &ElbState::default());
    assert_eq!(
        p.changes[0].scaling,
        Some(ScalingOp::Deregister {
            service: "web".into()
        })
    );
}
