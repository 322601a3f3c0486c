//! Table-driven tests of stack file parsing and validation: good files, and bad ones whose every
//! error must be listed with its path.

use crate::{load, parse, StackError};
use std::path::Path;

const GOOD: &str = r#"
# a comment
name: shop
services:
  web:
    desiredCount: 2
    healthCheckGracePeriodSeconds: 5
    deploymentConfiguration:
      minimumHealthyPercent: 50
      maximumPercent: 200
      deploymentCircuitBreaker: {enable: true, rollback: true}
    loadBalancers:
      - targetGroupArn: arn:aws:elasticloadbalancing:local:000000000000:targetgroup/web/1
        containerName: web
        containerPort: 8080
    taskDefinition:
      containerDefinitions:
        - name: web
          image: process://berth
          command: [demo-app]
          environment:
            - {name: DEMO_VERSION, value: "v1"}
            - {name: FLAG, value: yes}
          portMappings: [{containerPort: 8080}]
          healthCheck: {command: [CMD-SHELL, "true"], interval: 0.5}
          logConfiguration: {logDriver: awslogs}
  worker:
    taskDefinition:
      family: custom-family
      containerDefinitions: [{name: w, image: process://berth}]
"#;

fn errors(text: &str, base: &Path) -> Vec<String> {
    match parse(text, base) {
        Err(StackError::Invalid(errs)) => errs.0.iter().map(|e| e.to_string()).collect(),
        other => panic!("expected validation errors, got {other:?}"),
    }
}

#[test]
fn good_file_parses_with_defaults_filled_in() {
    let stack = parse(GOOD, Path::new(".")).unwrap();
    assert_eq!(stack.name, "shop");
    assert_eq!(stack.cluster, "default");
    assert_eq!(
        stack.services.keys().collect::<Vec<_>>(),
        vec!["web", "worker"]
    );
    let web = &stack.services["web"];
    assert_eq!(web.desired_count, 2);
    assert_eq!(web.task_definition.family, "shop-web");
    assert_eq!(
        web.task_definition.container_definitions[0].environment[1].value,
        "yes"
    );
    assert_eq!(
        web.task_definition.container_definitions[0].extra["logConfiguration"]["logDriver"],
        "awslogs"
    );
    assert_eq!(web.health_check_grace_period_seconds, Some(5));
    let dc = web.deployment_configuration.as_ref().unwrap();
    assert_eq!(
        (dc.minimum_healthy_percent, dc.maximum_percent),
        (Some(50), Some(200))
    );
    assert!(dc.deployment_circuit_breaker.as_ref().unwrap().rollback);
    assert_eq!(
        web.load_balancers[0].load_balancer.container_port,
        Some(8080)
    );
    let worker = &stack.services["worker"];
    assert_eq!(worker.desired_count, 1);
    assert_eq!(worker.task_definition.family, "custom-family");
    assert_eq!(worker.load_balancers, vec![]);
}

#[test]
fn json_is_accepted_too() {
    let text = r#"{"name": "j", "cluster": "c1", "services": {"a": {"desiredCount": 0,
        "taskDefinition": {"containerDefinitions": [{"name": "a", "image": "process://berth"}]}}}}"#;
    let stack = parse(text, Path::new(".")).unwrap();
    assert_eq!(stack.cluster, "c1");
    assert_eq!(stack.services["a"].desired_count, 0);
}

/// (what, stack text, every error expected: path and a fragment of its message)
type Case = (
    &'static str,
    &'static str,
    &'static [(&'static str, &'static str)],
);

const BAD: &[Case] = &[
    (
        "not a mapping",
        "- a\n- b\n",
        &[("(document)", "found a list")],
    ),
    (
        "top level",
        "name: Shop_1\ncluster: bad cluster\nservces: {}\n",
        &[
            (
                "servces",
                "unknown key \"servces\" (did you mean services?)",
            ),
            ("name", "lowercase letters, digits or hyphens"),
            ("cluster", "found \"bad cluster\""),
            ("services", "found nothing"),
        ],
    ),
    (
        "everything wrong in a service",
        r#"
name: shop
services:
  web:
    desiredCount: two
    desiredCont: 3
    taskDefinition:
      containerDefinitions:
        - name: web
          image: ""
          portMappings: [{containerPort: 8080}]
    healthCheckGracePeriodSeconds: -5
    deploymentConfiguration:
      minimumHealthyPercent: 150
      deploymentCircuitBreaker: {enable: "yes", rollbak: true}
    loadBalancers:
      - {targetGroupArn: "arn:tg/1", containerName: app, containerPort: 8080}
      - {targetGroupArn: "arn:tg/1", containerName: web, containerPort: 9090}
      - {containerName: web}
"#,
        &[
            ("services.web.desiredCont", "(did you mean desiredCount?)"),
            (
                "services.web.desiredCount",
                "expected an integer from 0 to 1000, found \"two\"",
            ),
            (
                "services.web.taskDefinition.containerDefinitions[0].image",
                "found nothing",
            ),
            (
                "services.web.healthCheckGracePeriodSeconds",
                "found number -5",
            ),
            (
                "services.web.deploymentConfiguration.minimumHealthyPercent",
                "from 0 to 100, found number 150",
            ),
            (
                "services.web.deploymentConfiguration.deploymentCircuitBreaker.rollbak",
                "did you mean rollback?",
            ),
            (
                "services.web.deploymentConfiguration.deploymentCircuitBreaker.enable",
                "expected true or false, found \"yes\"",
            ),
            (
                "services.web.loadBalancers[0].containerName",
                "container in the task definition (web), found \"app\"",
            ),
            (
                "services.web.loadBalancers[1].containerPort",
                "container \"web\" (8080), found 9090",
            ),
            ("services.web.loadBalancers[2].targetGroup", "found nothing"),
            (
                "services.web.loadBalancers[2].containerPort",
                "found nothing",
            ),
        ],
    ),
    (
        "names, task definition sources, types inside the task definition",
        r#"
name: shop
services:
  "bad name":
    taskDefinition: {containerDefinitions: [{name: x, image: y}]}
  both:
    taskDefinition: {containerDefinitions: [{name: x, image: y}]}
    taskDefinitionFile: x.json
  neither:
    desiredCount: 1001
  missingfile:
    taskDefinitionFile: does-not-exist.json
  typed:
    taskDefinition:
      containerDefinitions:
        - {name: x, image: y, cpu: lots}
  listed: [1, 2]
  notamapping:
    taskDefinition: [1]
    loadBalancers: {containerName: x}
"#,
        &[
            ("services.bad name", "expected a service name"),
            (
                "services.bad name.taskDefinition.family",
                "found \"shop-bad name\"",
            ),
            ("services.both", "found both"),
            (
                "services.neither.desiredCount",
                "from 0 to 1000, found number 1001",
            ),
            ("services.neither.taskDefinition", "found nothing"),
            (
                "services.missingfile.taskDefinitionFile",
                "does-not-exist.json",
            ),
            (
                "services.typed.taskDefinition.containerDefinitions[0].cpu",
                "expected u32, found string \"lots\"",
            ),
            ("services.listed", "found a list"),
            ("services.notamapping.taskDefinition", "found a list"),
            (
                "services.notamapping.loadBalancers",
                "expected a list of load balancers, found a mapping",
            ),
        ],
    ),
];

#[test]
fn bad_files_list_every_error_with_its_path() {
    for (what, text, expected) in BAD {
        let got = errors(text, Path::new("/nonexistent-dir"));
        assert_eq!(got.len(), expected.len(), "{what}: got\n{}", got.join("\n"));
        for (line, (path, fragment)) in got.iter().zip(expected.iter()) {
            let (got_path, message) = line.split_once(": ").unwrap();
            assert_eq!(got_path, *path, "{what}: {line}");
            assert!(
                message.contains(fragment),
                "{what}: {line:?} lacks {fragment:?}"
            );
            assert!(
                message.starts_with("expected"),
                "{what}: {line:?} does not say what was expected"
            );
        }
    }
}

#[test]
fn syntax_errors_and_duplicate_services_are_refused() {
    for text in ["name: [shop\n", "name: a\nservices:\n  a: {}\n  a: {}\n"] {
        match parse(text, Path::new(".")) {
            Err(StackError::Syntax(message)) => assert!(message.contains("line"), "{message}"),
            other => panic!("{text:?}: expected a syntax error, got {other:?}"),
        }
    }
}

#[test]
fn task_definition_file_is_read_relative_to_the_stack_file() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("api.json"),
        r#"{"family": "api", "containerDefinitions": [{"name": "api", "image": "process://berth",
            "portMappings": [{"containerPort": 8080}]}]}"#,
    )
    .unwrap();
    // The output of describe-task-definition, wrapped and with output-only fields.
    std::fs::write(
        dir.path().join("described.json"),
        r#"{"taskDefinition": {"taskDefinitionArn": "arn:x", "revision": 3,
            "containerDefinitions": [{"name": "w", "image": "process://berth"}]}}"#,
    )
    .unwrap();
    let stack_file = dir.path().join("berth.yaml");
    std::fs::write(
        &stack_file,
        "name: s\nservices:\n  api:\n    taskDefinitionFile: api.json\n    loadBalancers: [{targetGroupArn: tg, containerName: api, containerPort: 8080}]\n  w:\n    taskDefinitionFile: ./described.json\n",
    )
    .unwrap();
    let stack = load(&stack_file).unwrap();
    assert_eq!(stack.services["api"].task_definition.family, "api");
    assert_eq!(stack.services["w"].task_definition.family, "s-w");
    assert_eq!(
        stack.services["w"].task_definition.container_definitions[0].name,
        "w"
    );
}

#[test]
fn errors_inside_a_task_definition_file_name_the_file() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("bad.json"),
        r#"{"containerDefinitions": [{"name": "a", "image": ""}]}"#,
    )
    .unwrap();
    std::fs::write(dir.path().join("broken.json"), "{not json").unwrap();
    let text = "name: s\nservices:\n  a: {taskDefinitionFile: bad.json}\n  b: {taskDefinitionFile: broken.json}\n  c: {taskDefinitionFile: 7}\n";
    let got = errors(text, dir.path());
    assert_eq!(got.len(), 3, "{got:?}");
    assert!(
        got[0].starts_with("services.a.taskDefinitionFile.containerDefinitions[0].image: expected"),
        "{}",
        got[0]
    );
    assert!(got[0].ends_with("bad.json)"), "{}", got[0]);
    assert!(
        got[1].starts_with("services.b.taskDefinitionFile: expected ECS task definition JSON"),
        "{}",
        got[1]
    );
    assert!(got[1].contains("broken.json"), "{}", got[1]);
    assert!(
        got[2].starts_with("services.c.taskDefinitionFile: expected a path"),
        "{}",
        got[2]
    );
}

#[test]
fn load_reports_an_unreadable_stack_file() {
    let err = load(Path::new("/nonexistent-dir/berth.yaml")).unwrap_err();
    assert!(matches!(err, StackError::Read { .. }), "{err:?}");
    assert!(
        err.to_string().contains("/nonexistent-dir/berth.yaml"),
        "{err}"
    );
}

#[test]
fn the_shop_example_is_valid() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/shop/berth.yaml");
    let stack = load(&path).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(stack.services.len(), 2);
    for (name, spec) in &stack.services {
        assert_eq!(spec.desired_count, 2, "{name}");
        let c = &spec.task_definition.container_definitions[0];
        assert_eq!(c.image, "process://berth", "{name}");
        assert_eq!(c.command, vec!["demo-app"], "{name}");
        assert_eq!(c.port_mappings[0].container_port, Some(8080), "{name}");
        assert!(c.health_check.is_some(), "{name}");
        assert_eq!(
            spec.load_balancers[0].target_group.as_deref(),
            Some(name.as_str()),
            "{name} is behind its own target group"
        );
    }
    let listener = &stack.load_balancers["shop"].listeners[0];
    assert_eq!(listener.port, 8080);
    assert_eq!(
        listener.default_action.target_group_names(),
        vec!["frontend"]
    );
    assert_eq!(listener.rules[0].conditions.path_pattern, vec!["/api/*"]);
    assert_eq!(listener.rules[0].action.target_group_names(), vec!["api"]);
    for tg in stack.target_groups.values() {
        let hc = tg.health_check.settings();
        assert_eq!(hc.path, "/health");
        assert!((0.5..=1.0).contains(&hc.interval_seconds));
        assert_eq!(tg.attributes["deregistration_delay.timeout_seconds"], "1");
    }
}
