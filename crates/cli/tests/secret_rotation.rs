//! End-to-end: rotating a secret (RotateSecret with a rotation command, through the real AWS CLI)
//! starts a new deployment of the services that use it, and their new tasks get the new value.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::*;
use serde_json::json;
use std::time::Duration;

#[test]
fn a_rotated_secret_reaches_new_tasks_through_a_deployment() {
    let c = Cluster::start(false);
    let created = c.aws_ok(&[
        "secretsmanager",
        "create-secret",
        "--name",
        "app/rotating",
        "--secret-string",
        "value-one",
    ]);
    let arn = created["ARN"].as_str().unwrap().to_string();
    c.ecs(
        "RegisterTaskDefinition",
        json!({
            "family": "rotating",
            "containerDefinitions": [{
                "name": "app",
                "image": "process:///bin/sh",
                // Only the value's length is printed: the plaintext never reaches a log.
                "command": ["-c", "echo \"secretlen=${#DB_PASSWORD}\"; exec sleep 300"],
                "essential": true,
                "secrets": [{"name": "DB_PASSWORD", "valueFrom": arn}],
                "stopTimeout": 1
            }]
        }),
    )
    .unwrap();
    c.ecs(
        "CreateService",
        json!({"serviceName": "rotating", "taskDefinition": "rotating", "desiredCount": 1,
               "deploymentConfiguration": {"minimumHealthyPercent": 0, "maximumPercent": 100}}),
    )
    .unwrap();
    let first = c.wait_running("rotating", 1, false);
    let first_id = short(&first[0]["taskArn"]);
    eventually(
        "the first task prints the old length",
        Duration::from_secs(20),
        || {
            (!files_containing(&c.state_dir().join("agent"), "secretlen=9").is_empty())
                .then_some(())
        },
    );

    // The rotation command prints the new value at its createSecret step.
    let token = "e2e-rotation-0000-1111-2222-333344445555";
    let command = "berth:command:if [ \"$STEP\" = createSecret ]; then echo \"rotated-$CLIENT_REQUEST_TOKEN\"; fi";
    c.aws_ok(&[
        "secretsmanager",
        "rotate-secret",
        "--secret-id",
        "app/rotating",
        "--client-request-token",
        token,
        "--rotation-lambda-arn",
        command,
        "--rotation-rules",
        "AutomaticallyAfterDays=30",
    ]);
    let new_len = format!("secretlen={}", "rotated-".len() + token.len());
    let value = c.aws_ok(&[
        "secretsmanager",
        "get-secret-value",
        "--secret-id",
        "app/rotating",
    ]);
    assert_eq!(value["SecretString"], format!("rotated-{token}"));

    // A new deployment replaces the task; the new one has the new value.
    let second = eventually(
        "a new task after the rotation",
        Duration::from_secs(40),
        || {
            let t = c.running_tasks("rotating", false);
            (t.len() == 1 && short(&t[0]["taskArn"]) != first_id).then(|| t[0].clone())
        },
    );
    let second_id = short(&second["taskArn"]);
    eventually(
        "the new task prints the new length",
        Duration::from_secs(20),
        || {
            files_containing(
                &c.state_dir().join("agent/tasks").join(&second_id),
                &new_len,
            )
            .first()
            .map(|_| ())
        },
    );
    let events = c.cli_json(&["deployments", "rotating"]);
    assert!(
        events.to_string().contains("berth:secret-rotation"),
        "the deployment names the rotation as its starter: {events}"
    );
    // The new value reached no file under the state directory.
    assert!(files_containing(&c.state_dir(), &format!("rotated-{token}")).is_empty());
}
