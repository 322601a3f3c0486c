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
    let text = std::fs::read_to_string(&path).unwrap();
    let base = path.parent().unwrap();
    // With SHOP_IMAGE (and SHOP_PORT) the services run that image under runc.
    let vars = |name: &str| match name {
        "SHOP_IMAGE" => Some("127.0.0.1:7878/berth-demo:latest".to_string()),
        "SHOP_PORT" => Some("18080".to_string()),
        _ => None,
    };
    let containers = crate::parse_with_vars(&text, base, &vars).unwrap_or_else(|e| panic!("{e}"));
    for spec in containers.services.values() {
        let c = &spec.task_definition.container_definitions[0];
        assert_eq!(c.image, "127.0.0.1:7878/berth-demo:latest");
        assert_eq!(c.command, vec!["demo-app"]);
    }
    assert_eq!(containers.load_balancers["shop"].listeners[0].port, 18080);
    // Without them, the process driver on port 8080.
    let stack = crate::parse_with_vars(&text, base, &|_| None).unwrap_or_else(|e| panic!("{e}"));
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

/// A blue/green service with berth's `deployment` section, and scaling.
const BLUE_GREEN: &str = r#"
name: shop
loadBalancers:
  web:
    listeners:
      - port: 8080
        defaultAction: {forward: blue}
        rules:
          - {priority: 10, conditions: {pathPattern: [/test/*]}, action: {forward: green}}
      - port: 8081
        defaultAction: {fixedResponse: {statusCode: 404}}
targetGroups:
  blue: {port: 8080}
  green: {port: 8080}
  other: {port: 8080}
services:
  web:
    loadBalancers: [{targetGroup: blue, containerName: app, containerPort: 8080}]
    deploymentConfiguration: {minimumHealthyPercent: 100, maximumPercent: 200}
    deployment:
      trafficShift: Linear50PercentEvery0.05Minutes
      bakeTimeMinutes: 0.02
      alternateTargetGroup: green
      productionListener: web:8080
      testListener: web:8080/10
      testTrafficMinutes: 0.5
      canaryAnalysis: {minRequests: 5}
      alarms: [high-errors]
    scaling:
      minCapacity: 2
      maxCapacity: 10
      targetTracking:
        - {name: cpu, metric: cpu, target: 50, scaleOutCooldown: 5, scaleInCooldown: 30, disableScaleIn: false}
        - {name: rps, metric: requests, target: 600}
        - {name: queue, metric: {namespace: App, name: QueueDepth, dimensions: {Queue: jobs}, statistic: Maximum}, target: 10}
      scheduled:
        - {name: night, schedule: "cron(0 22 * * ? *)", timezone: Europe/Berlin, minCapacity: 0, maxCapacity: 0}
    taskDefinition:
      containerDefinitions:
        - {name: app, image: process://berth, portMappings: [{containerPort: 8080}]}
  ecs:
    deploymentConfiguration:
      strategy: CANARY
      bakeTimeInMinutes: 1.5
      canaryConfiguration: {canaryPercent: 10, canaryBakeTimeInMinutes: 0.5}
      alarms: {alarmNames: [a, b], enable: true, rollback: false}
      canaryAnalysis: {maxErrorRateIncreasePercent: 2, maxP99LatencyIncreaseMs: 100, minRequests: 50}
    loadBalancers:
      - targetGroupArn: arn:aws:elasticloadbalancing:local:000000000000:targetgroup/x/1
        containerName: app
        containerPort: 8080
        advancedConfiguration:
          alternateTargetGroupArn: arn:aws:elasticloadbalancing:local:000000000000:targetgroup/y/2
          productionListenerRule: arn:aws:elasticloadbalancing:local:000000000000:listener/app/z/3/4
    taskDefinition:
      containerDefinitions:
        - {name: app, image: process://berth, portMappings: [{containerPort: 8080}]}
  blue-green:
    deployment: {strategy: blue-green, alternateTargetGroup: blue, productionListener: web:8080, alarms: []}
    loadBalancers: [{targetGroup: green, containerName: app, containerPort: 8080}]
    taskDefinition:
      containerDefinitions:
        - {name: app, image: process://berth, portMappings: [{containerPort: 8080}]}
"#;

#[test]
fn deployment_strategies_and_scaling_parse() {
    use crate::scaling::ScalingMetric;
    let stack = parse(BLUE_GREEN, Path::new(".")).unwrap();
    let web = &stack.services["web"];
    let dc = web.deployment_configuration.as_ref().unwrap();
    assert_eq!(dc.strategy.as_deref(), Some("LINEAR"));
    let linear = dc.linear_configuration.as_ref().unwrap();
    assert_eq!(
        (linear.step_percent, linear.step_bake_time_in_minutes),
        (50.0, 0.05)
    );
    assert_eq!(dc.bake_time_in_minutes, Some(0.02));
    assert_eq!(dc.test_traffic_time_in_minutes, Some(0.5));
    assert_eq!(dc.test_traffic_seconds(), 30.0);
    assert_eq!(dc.minimum_healthy_percent, Some(100));
    let alarms = dc.alarms.as_ref().unwrap();
    assert_eq!(alarms.alarm_names, vec!["high-errors".to_string()]);
    assert!(alarms.enable && alarms.rollback);
    let analysis = dc.canary_analysis.as_ref().unwrap();
    assert_eq!(analysis.min_requests, 5);
    assert_eq!(
        analysis.max_p99_latency_increase_ms, 250.0,
        "unset thresholds keep berth's defaults"
    );
    let traffic = web.load_balancers[0].traffic.as_ref().unwrap();
    assert_eq!(traffic.alternate_target_group, "green");
    assert_eq!(traffic.production_listener.to_string(), "web:8080");
    assert_eq!(
        traffic.test_listener.as_ref().unwrap().to_string(),
        "web:8080/10"
    );
    assert_eq!(
        web.desired_count, 2,
        "with scaling, desiredCount defaults to minCapacity"
    );

    let scaling = web.scaling.as_ref().unwrap();
    assert_eq!((scaling.min_capacity, scaling.max_capacity), (2, 10));
    assert_eq!(scaling.target_tracking[0].scale_in_cooldown, Some(30));
    assert_eq!(
        scaling.target_tracking[1].metric,
        ScalingMetric::Requests {
            load_balancer: "web".into(),
            target_group: "blue".into()
        }
    );
    match &scaling.target_tracking[2].metric {
        ScalingMetric::Custom(m) => {
            assert_eq!(
                (m.namespace.as_str(), m.statistic.as_str()),
                ("App", "Maximum")
            );
            assert_eq!(
                m.dimensions,
                vec![("Queue".to_string(), "jobs".to_string())]
            );
        }
        other => panic!("expected a custom metric, got {other:?}"),
    }
    assert_eq!(
        scaling.scheduled[0].timezone.as_deref(),
        Some("Europe/Berlin")
    );
    assert_eq!(scaling.scheduled[0].max_capacity, Some(0));

    let ecs = &stack.services["ecs"];
    let dc = ecs.deployment_configuration.as_ref().unwrap();
    assert_eq!(dc.strategy(), "CANARY");
    assert_eq!(
        dc.canary_configuration
            .as_ref()
            .unwrap()
            .canary_bake_time_in_minutes,
        0.5
    );
    assert_eq!(dc.bake_time_in_minutes, Some(1.5));
    assert!(!dc.alarms.as_ref().unwrap().rollback);
    assert_eq!(dc.canary_analysis.as_ref().unwrap().min_requests, 50);
    let adv = ecs.load_balancers[0]
        .load_balancer
        .advanced_configuration
        .as_ref()
        .unwrap();
    assert!(adv.production_listener_rule.ends_with("listener/app/z/3/4"));
    assert_eq!(ecs.load_balancers[0].traffic, None);

    let bg = &stack.services["blue-green"];
    let linear = parse(
        &BLUE_GREEN.replace(
            "trafficShift: Linear50PercentEvery0.05Minutes",
            "strategy: linear",
        ),
        Path::new("."),
    )
    .unwrap();
    let l = linear.services["web"]
        .deployment_configuration
        .clone()
        .unwrap()
        .linear_configuration
        .unwrap();
    assert_eq!(
        (l.step_percent, l.step_bake_time_in_minutes),
        (10.0, 6.0),
        "ECS's default steps"
    );
    let dc = bg.deployment_configuration.as_ref().unwrap();
    assert_eq!(dc.strategy(), "BLUE_GREEN");
    assert_eq!(dc.linear_configuration, None);
    assert_eq!(
        bg.load_balancers[0]
            .traffic
            .as_ref()
            .unwrap()
            .alternate_target_group,
        "blue"
    );
}

/// BLUE_GREEN with one service replaced by `service` (YAML at service indentation).
fn with_service(service: &str) -> String {
    let head = BLUE_GREEN.split("services:\n").next().unwrap();
    format!(
        "{head}services:\n{service}\n    taskDefinition:\n      containerDefinitions:\n        - {{name: app, image: process://berth, portMappings: [{{containerPort: 8080}}]}}\n"
    )
}

#[test]
fn deployment_and_scaling_errors_are_listed_with_their_paths() {
    let cases: &[Case] = &[
        (
            "ECS keys out of range",
            r#"  web:
    deploymentConfiguration:
      strategy: SIDEWAYS
      bakeTimeInMinutes: -1
      canaryConfiguration: {canaryPercent: 0, canaryBakeTimeInMinutes: 2000}
      linearConfiguration: {stepPercent: 101}
      alarms: {alarmNames: [""], enable: "yes"}
      canaryAnalysis: {minRequests: -1, maxP99: 3}"#,
            &[
                ("services.web.deploymentConfiguration.strategy", "one of ROLLING, BLUE_GREEN, LINEAR, CANARY, found \"SIDEWAYS\""),
                ("services.web.deploymentConfiguration.bakeTimeInMinutes", "minutes from 0 to 1440, found number -1"),
                ("services.web.deploymentConfiguration.canaryConfiguration.canaryPercent", "percentage from 1 to 100, found number 0"),
                ("services.web.deploymentConfiguration.canaryConfiguration.canaryBakeTimeInMinutes", "found number 2000"),
                ("services.web.deploymentConfiguration.linearConfiguration.stepPercent", "found number 101"),
                ("services.web.deploymentConfiguration.alarms.alarmNames[0]", "alarm name"),
                ("services.web.deploymentConfiguration.alarms.enable", "true or false"),
                ("services.web.deploymentConfiguration.canaryAnalysis.maxP99", "unknown key \"maxP99\""),
                ("services.web.deploymentConfiguration.canaryAnalysis.minRequests", "found number -1"),
            ],
        ),
        (
            "strategy settings of another strategy",
            r#"  web:
    deploymentConfiguration:
      strategy: ROLLING
      bakeTimeInMinutes: 1
      canaryConfiguration: {canaryPercent: 10}
      canaryAnalysis: {}
      testTrafficTimeInMinutes: 1"#,
            &[
                ("services.web.deploymentConfiguration.bakeTimeInMinutes", "only with a traffic-shifting strategy (BLUE_GREEN, LINEAR or CANARY), found strategy ROLLING"),
                ("services.web.deploymentConfiguration.canaryAnalysis", "only with a traffic-shifting strategy"),
                ("services.web.deploymentConfiguration.testTrafficTimeInMinutes", "only with a traffic-shifting strategy"),
                ("services.web.deploymentConfiguration.canaryConfiguration", "only with strategy CANARY, found strategy ROLLING"),
            ],
        ),
        (
            "ECS strategy without advancedConfiguration; bad ARNs",
            r#"  web:
    deploymentConfiguration: {strategy: BLUE_GREEN}
    loadBalancers:
      - targetGroup: blue
        containerName: app
        containerPort: 8080
        advancedConfiguration: {alternateTargetGroupArn: green, roleArn: 7}
      - {targetGroup: green, containerName: app, containerPort: 8080, advancedConfiguration: {alternateTargetGroupArn: "arn:x", productionListenerRule: "arn:y"}}"#,
            &[
                ("services.web.loadBalancers[0].advancedConfiguration.alternateTargetGroupArn", "an ARN (arn:...), found \"green\""),
                ("services.web.loadBalancers[0].advancedConfiguration.productionListenerRule", "found nothing"),
                ("services.web.loadBalancers[0].advancedConfiguration.roleArn", "found number 7"),
                ("services.web.loadBalancers", "one entry with an advancedConfiguration"),
            ],
        ),
        (
            "both forms mixed; strategy and trafficShift both",
            r#"  web:
    deploymentConfiguration: {minimumHealthyPercent: 50, strategy: LINEAR, alarms: {alarmNames: [a]}}
    loadBalancers:
      - {targetGroup: blue, containerName: app, containerPort: 8080, advancedConfiguration: {alternateTargetGroupArn: "arn:x", productionListenerRule: "arn:y"}}
    deployment: {strategy: blue-green, trafficShift: AllAtOnce, bakeTimeMinute: 1}"#,
            &[
                ("services.web.deployment.bakeTimeMinute", "did you mean bakeTimeMinutes?"),
                ("services.web.deployment", "either deployment or deploymentConfiguration's strategy/bakeTimeInMinutes/canaryConfiguration/linearConfiguration/alarms/canaryAnalysis/testTrafficTimeInMinutes keys, found both (deploymentConfiguration.strategy, deploymentConfiguration.alarms)"),
                ("services.web.loadBalancers[0].advancedConfiguration", "no advancedConfiguration"),
                ("services.web.deployment", "either strategy or trafficShift, found both"),
            ],
        ),
        (
            "bad traffic shift, listeners and load balancers",
            r#"  web:
    loadBalancers:
      - {targetGroup: blue, containerName: app, containerPort: 8080}
      - {targetGroup: other, containerName: app, containerPort: 8080}
    deployment:
      trafficShift: Canary150Percent5Minutes
      bakeTimeMinutes: -2
      alternateTargetGroup: nope
      productionListener: web:9999
      testListener: nope"#,
            &[
                ("services.web.deployment.trafficShift", "percentage from 1 to 100, found 150 in \"Canary150Percent5Minutes\""),
                ("services.web.deployment.bakeTimeMinutes", "found number -2"),
                ("services.web.loadBalancers", "exactly one entry with a targetGroup of the stack for a traffic-shifting deployment, found 2 entries (2 with a targetGroup)"),
                ("services.web.deployment.alternateTargetGroup", "one of the stack's targetGroups (blue, green, other), found \"nope\""),
                ("services.web.deployment.productionListener", "listener port of load balancer web (8080, 8081), found 9999"),
                ("services.web.deployment.testListener", "\"<load balancer>:<port>\" or \"<load balancer>:<port>/<priority>\", found \"nope\""),
            ],
        ),
        (
            "listeners that do not forward to the pair; same target group twice",
            r#"  a:
    loadBalancers: [{targetGroup: blue, containerName: app, containerPort: 8080}]
    deployment: {strategy: linear, alternateTargetGroup: blue, productionListener: lb:8080, testTrafficMinutes: 1}
    taskDefinition:
      containerDefinitions:
        - {name: app, image: process://berth, portMappings: [{containerPort: 8080}]}
  b:
    loadBalancers: [{targetGroup: blue, containerName: app, containerPort: 8080}]
    deployment: {trafficShift: AllAtOnce, alternateTargetGroup: other, productionListener: web:8081, testListener: web:8080/99}
    taskDefinition:
      containerDefinitions:
        - {name: app, image: process://berth, portMappings: [{containerPort: 8080}]}
  c:
    deployment: {strategy: rolling, alternateTargetGroup: green, bakeTimeMinutes: 1}
    taskDefinition:
      containerDefinitions:
        - {name: app, image: process://berth, portMappings: [{containerPort: 8080}]}
  d:
    deployment: {trafficShift: Linear10PercentEvery1Minutes}
    taskDefinition:
      containerDefinitions:
        - {name: app, image: process://berth, portMappings: [{containerPort: 8080}]}
  e:
    deployment: {}"#,
            &[
                ("services.a.deployment.alternateTargetGroup", "other than the service's own (blue), found \"blue\""),
                ("services.a.deployment.productionListener", "a load balancer of the stack (web), found \"lb\""),
                ("services.a.deployment.testTrafficMinutes", "only with a testListener"),
                ("services.b.deployment.productionListener", "forwards to target group blue (or other), found one that does"),
                ("services.b.deployment.testListener", "rule priority of listener web:8080 (10), found 99"),
                ("services.c.deployment.bakeTimeMinutes", "only with a traffic-shifting strategy"),
                ("services.c.deployment.alternateTargetGroup", "found strategy rolling"),
                ("services.d.loadBalancers", "found 0 entries (0 with a targetGroup)"),
                ("services.d.deployment.alternateTargetGroup", "found nothing"),
                ("services.d.deployment.productionListener", "found nothing"),
                ("services.e.deployment.strategy", "found nothing"),
            ],
        ),
        (
            "scaling",
            r#"  web:
    desiredCount: 3
    scaling:
      minCapacity: 5
      maxCapacity: 2
      targetTracking:
        - {name: cpu, metric: cpu, target: 150}
        - {name: cpu, metric: requests, target: 100, scaleOutCooldown: -1}
        - {name: q, metric: {namespace: App, statistic: Median}, target: 0}
        - {metric: disk, target: 1, extra: 1}
      scheduled:
        - {name: night, schedule: daily, timezone: Europe Berlin}
        - {name: day, schedule: "cron(0 8 * * ? *)", minCapacity: 3, maxCapacity: 1}"#,
            &[
                ("services.web.scaling.minCapacity", "at most maxCapacity (2), found 5"),
                ("services.web.scaling.targetTracking[0].target", "utilization percentage above 0 and at most 100, found number 150"),
                ("services.web.scaling.targetTracking[1].name", "not used by another entry of the list, found \"cpu\" again"),
                ("services.web.scaling.targetTracking[1].metric", "requests only for a service with a loadBalancers entry naming a targetGroup"),
                ("services.web.scaling.targetTracking[1].scaleOutCooldown", "from 0 to 86400, found number -1"),
                ("services.web.scaling.targetTracking[2].metric.name", "found nothing"),
                ("services.web.scaling.targetTracking[2].metric.statistic", "one of Average, Minimum, Maximum, SampleCount, Sum, found \"Median\""),
                ("services.web.scaling.targetTracking[2].target", "a number above 0, found number 0"),
                ("services.web.scaling.targetTracking[3].extra", "unknown key"),
                ("services.web.scaling.targetTracking[3].name", "found nothing"),
                ("services.web.scaling.targetTracking[3].metric", "found \"disk\""),
                ("services.web.scaling.scheduled[0].schedule", "cron(<6 fields>), found \"daily\""),
                ("services.web.scaling.scheduled[0].timezone", "IANA time zone"),
                ("services.web.scaling.scheduled[0]", "minCapacity, maxCapacity or both, found neither"),
                ("services.web.scaling.scheduled[1].minCapacity", "at most maxCapacity (1), found 3"),
            ],
        ),
        (
            "desiredCount outside the scaling range; requests without a load balancer forwarding",
            r#"  web:
    desiredCount: 12
    loadBalancers: [{targetGroup: other, containerName: app, containerPort: 8080}]
    scaling: {minCapacity: 1, maxCapacity: 10, targetTracking: [{name: r, metric: requests, target: 5}]}"#,
            &[
                ("services.web.scaling.targetTracking[0].metric", "a load balancer of the stack forwards to target group other"),
                ("services.web.desiredCount", "within scaling's minCapacity and maxCapacity (1-10), found 12"),
            ],
        ),
    ];
    for (what, service, expected) in cases {
        let text = if service.contains("taskDefinition") && !service.ends_with("deployment: {}") {
            format!(
                "{}services:\n{service}\n",
                BLUE_GREEN.split("services:\n").next().unwrap()
            )
        } else {
            with_service(service)
        };
        let got = errors(&text, Path::new("."));
        assert_eq!(got.len(), expected.len(), "{what}: got\n{}", got.join("\n"));
        for (line, (path, fragment)) in got.iter().zip(expected.iter()) {
            let (got_path, message) = line.split_once(": ").unwrap();
            assert_eq!(got_path, *path, "{what}: {line}");
            assert!(
                message.contains(fragment),
                "{what}: {line:?} lacks {fragment:?}"
            );
            assert!(message.starts_with("expected"), "{what}: {line:?}");
        }
    }
}

#[test]
fn the_bluegreen_example_is_valid() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/bluegreen/berth.yaml");
    let stack = load(&path).unwrap_or_else(|e| panic!("{e}"));
    let web = &stack.services["web"];
    assert_eq!(
        web.deployment_configuration.as_ref().unwrap().strategy(),
        "LINEAR"
    );
    assert_eq!(
        web.load_balancers[0]
            .traffic
            .as_ref()
            .unwrap()
            .alternate_target_group,
        "green"
    );
    let scaling = web.scaling.as_ref().unwrap();
    assert_eq!((scaling.min_capacity, scaling.max_capacity), (2, 6));
    assert_eq!(web.desired_count, 2);
    assert_eq!(scaling.scheduled.len(), 2);
}

const INGRESS: &str = r#"
name: iso
services:
  a:
    taskDefinition: {containerDefinitions: [{name: w, image: process://berth}]}
  b:
    ingress:
      - from: a
        ports: [8080, "9000-9100", "7070"]
    taskDefinition: {containerDefinitions: [{name: w, image: process://berth}]}
"#;

#[test]
fn ingress_rules_parse_into_service_names_and_port_ranges() {
    use berth_model::ecs::{IngressRule, PortRange};
    let stack = parse(INGRESS, Path::new(".")).unwrap();
    assert!(stack.services["a"].ingress.is_empty());
    assert_eq!(
        stack.services["b"].ingress,
        vec![IngressRule {
            from_service: "a".into(),
            ports: vec![
                PortRange {
                    from: 8080,
                    to: 8080
                },
                PortRange {
                    from: 9000,
                    to: 9100
                },
                PortRange {
                    from: 7070,
                    to: 7070
                },
            ],
        }]
    );
}

#[test]
fn ingress_errors_name_their_fields() {
    let bad = INGRESS.replace(
        "      - from: a\n        ports: [8080, \"9000-9100\", \"7070\"]\n",
        "      - from: nope\n        ports: [0, \"9100-9000\", 70000, \"x\"]\n      - {from: a, ports: [], proto: tcp}\n      - 5\n",
    );
    let errs = errors(&bad, Path::new("."));
    let expect = [
        (
            "services.b.ingress[0].from",
            "expected the name of one of the stack's services (a, b), found \"nope\"",
        ),
        ("services.b.ingress[0].ports[0]", "expected a port 1-65535"),
        ("services.b.ingress[0].ports[1]", "found \"9100-9000\""),
        ("services.b.ingress[0].ports[2]", "found number 70000"),
        ("services.b.ingress[0].ports[3]", "found \"x\""),
        ("services.b.ingress[1].proto", "unknown key \"proto\""),
        (
            "services.b.ingress[1].ports",
            "expected a non-empty list of ports",
        ),
        (
            "services.b.ingress[2]",
            "expected a mapping with from and ports, found number 5",
        ),
    ];
    for (path, message) in expect {
        assert!(
            errs.iter()
                .any(|e| e.starts_with(&format!("{path}: ")) && e.contains(message)),
            "no error at {path} saying {message:?} in {errs:#?}"
        );
    }
    assert_eq!(errs.len(), expect.len(), "{errs:#?}");
    let not_a_list = errors(
        &INGRESS.replace(
            "    ingress:\n      - from: a\n        ports: [8080, \"9000-9100\", \"7070\"]\n",
            "    ingress: {from: a}\n",
        ),
        Path::new("."),
    );
    assert!(
        not_a_list[0].starts_with("services.b.ingress: expected a list"),
        "{not_a_list:?}"
    );
}
