//! Unit tests of task environment, ids and dependency ordering.

use super::*;
use berth_model::ecs::{ContainerDependency, KeyValuePair, TaskDefinition};

fn assignment(containers: Vec<ContainerDefinition>) -> TaskAssignment {
    TaskAssignment {
        task_arn: "arn:aws:ecs:local:0:task/c/t1".into(),
        task_id: "t1".into(),
        cluster: "c".into(),
        task_definition: TaskDefinition {
            container_definitions: containers,
            ..Default::default()
        },
        desired_status: "RUNNING".into(),
        environment_overrides: vec![("app".into(), "MODE".into(), "override".into())],
        log_group: String::new(),
        secrets: Vec::new(),
        service_name: None,
        ingress: Vec::new(),
    }
}

fn container(name: &str, deps: &[(&str, &str)]) -> ContainerDefinition {
    ContainerDefinition {
        name: name.into(),
        image: "process:///bin/true".into(),
        depends_on: deps
            .iter()
            .map(|(n, c)| ContainerDependency {
                container_name: n.to_string(),
                condition: c.to_string(),
            })
            .collect(),
        ..Default::default()
    }
}

#[test]
fn environment_layers_definition_overrides_ports_and_ids() {
    let mut app = container("app", &[]);
    app.environment = vec![
        KeyValuePair {
            name: "MODE".into(),
            value: "def".into(),
        },
        KeyValuePair {
            name: "KEEP".into(),
            value: "1".into(),
        },
        KeyValuePair {
            name: "PORT".into(),
            value: "1".into(),
        },
    ];
    let a = assignment(vec![app.clone()]);
    let bindings = vec![
        NetworkBinding {
            bind_ip: "127.0.0.1".into(),
            container_port: 80,
            host_port: 31000,
            protocol: "tcp".into(),
        },
        NetworkBinding {
            bind_ip: "127.0.0.1".into(),
            container_port: 9090,
            host_port: 31001,
            protocol: "tcp".into(),
        },
    ];
    let env: BTreeMap<String, String> = container_env(&a, &app, &bindings).into_iter().collect();
    assert_eq!(env["MODE"], "override");
    assert_eq!(env["KEEP"], "1");
    assert_eq!(env["PORT"], "31000");
    assert_eq!(env["PORT_80"], "31000");
    assert_eq!(env["PORT_9090"], "31001");
    assert_eq!(env["BERTH_TASK_ID"], "t1");
    assert_eq!(env["BERTH_TASK_ARN"], "arn:aws:ecs:local:0:task/c/t1");
    assert_eq!(env["BERTH_CONTAINER_NAME"], "app");
    assert!(!env.contains_key("PATH"), "the driver adds PATH");
    // Overrides for other containers do not leak.
    let other = container("sidecar", &[]);
    let env: BTreeMap<String, String> = container_env(&a, &other, &[]).into_iter().collect();
    assert!(!env.contains_key("MODE") && !env.contains_key("PORT"));
}

use std::collections::BTreeMap;

#[test]
fn task_ids_must_be_plain_names() {
    assert!(valid_task_id("0123abcd-ef"));
    for bad in ["", "..", "a/b", "a b", &"x".repeat(129)] {
        assert!(!valid_task_id(bad), "{bad:?}");
    }
}

#[test]
fn dependencies_wait_release_and_fail() {
    let dir = tempfile::tempdir().unwrap();
    let a = assignment(vec![
        container("init", &[]),
        container("app", &[("init", "SUCCESS")]),
        container("side", &[("app", "START")]),
        container("hc", &[("app", "HEALTHY")]),
    ]);
    let mut run = TaskRun::fresh(a, dir.path().into());
    assert!(matches!(run.dependencies(0), Deps::Ready));
    assert!(matches!(run.dependencies(1), Deps::Wait));
    assert!(matches!(run.dependencies(2), Deps::Wait));
    run.containers[0].state = CState::Stopped;
    run.containers[0].ever_started = true;
    run.containers[0].exit_code = Some(0);
    assert!(matches!(run.dependencies(1), Deps::Ready));
    run.containers[1].ever_started = true;
    run.containers[1].state = CState::Running;
    assert!(matches!(run.dependencies(2), Deps::Ready));
    // HEALTHY on a container without a health check can never happen.
    assert!(matches!(run.dependencies(3), Deps::Never(_)));
    run.containers[0].exit_code = Some(1);
    match run.dependencies(1) {
        Deps::Never(why) => assert!(why.contains("exit with code 0"), "{why}"),
        _ => panic!("SUCCESS with exit code 1 must never be met"),
    }
}

#[test]
fn report_spells_ecs_statuses() {
    let dir = tempfile::tempdir().unwrap();
    let mut run = TaskRun::fresh(assignment(vec![container("app", &[])]), dir.path().into());
    let r = run.report();
    assert_eq!(
        (r.last_status.as_str(), r.health_status.as_deref()),
        ("PENDING", Some("UNKNOWN"))
    );
    assert_eq!(r.containers[0].last_status, "PENDING");
    run.phase = Phase::Stopped;
    run.containers[0].state = CState::Stopped;
    run.containers[0].exit_code = Some(3);
    let r = run.report();
    assert_eq!(r.last_status, "STOPPED");
    assert_eq!(r.containers[0].exit_code, Some(3));
}

#[test]
fn secrets_reach_their_container_env_but_never_task_json() {
    let app = container("app", &[]);
    let other = container("other", &[]);
    let mut a = assignment(vec![app.clone(), other.clone()]);
    a.secrets = vec![("app".into(), "DB_PASSWORD".into(), "s3cr3t-value".into())];
    let env = container_env(&a, &app, &[]);
    assert!(env.contains(&("DB_PASSWORD".into(), "s3cr3t-value".into())));
    assert!(!container_env(&a, &other, &[])
        .iter()
        .any(|(k, _)| k == "DB_PASSWORD"));
    let dir = tempfile::tempdir().unwrap();
    let run = TaskRun::create(a, dir.path().join("t1")).unwrap();
    // The running task keeps the value in memory...
    assert_eq!(run.assignment.secrets.len(), 1);
    // ...but the file on disk does not hold it.
    let on_disk = std::fs::read_to_string(dir.path().join("t1/task.json")).unwrap();
    assert!(!on_disk.contains("s3cr3t-value"), "{on_disk}");
}
