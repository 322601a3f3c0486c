//! End-to-end tests of Secrets Manager on a real server through the real AWS CLI: create, get,
//! put, describe, delete; a service's task gets a secret injected as an environment variable
//! (and the plaintext never reaches the state directory); a missing secret stops its task with
//! ECS's ResourceInitializationError; the audit log records each read.

mod common;

use common::*;
use serde_json::{json, Value};
use std::time::Duration;

fn aws(c: &Cluster, args: &[&str]) -> Result<Value, String> {
    let mut all = vec!["secretsmanager"];
    all.extend_from_slice(args);
    c.aws(&all)
}

fn ok(c: &Cluster, args: &[&str]) -> Value {
    aws(c, args).unwrap_or_else(|e| panic!("aws secretsmanager {args:?}: {e}"))
}

fn task_definition(family: &str, value_from: &str) -> Value {
    json!({
        "family": family,
        "containerDefinitions": [{
            "name": "app",
            "image": "process:///bin/sh",
            "command": ["-c", "echo \"len=${#DB_PASSWORD}\"; exec sleep 300"],
            "essential": true,
            "secrets": [{"name": "DB_PASSWORD", "valueFrom": value_from}],
            "stopTimeout": 2
        }]
    })
}

#[test]
fn secrets_manager_api_injection_and_audit() {
    let c = Cluster::start(false);
    let plain = "Sup3r-s3cret-e2e-value-91xq";
    // The API through the real AWS CLI.
    let created = ok(
        &c,
        &[
            "create-secret",
            "--name",
            "app/db",
            "--secret-string",
            "first-value-xyz",
            "--description",
            "db password",
        ],
    );
    let arn = created["ARN"].as_str().unwrap().to_string();
    assert!(
        arn.starts_with("arn:aws:secretsmanager:us-east-1:000000000000:secret:app/db-"),
        "{arn}"
    );
    let got = ok(&c, &["get-secret-value", "--secret-id", "app/db"]);
    assert_eq!(got["SecretString"], "first-value-xyz");
    let put = ok(
        &c,
        &[
            "put-secret-value",
            "--secret-id",
            &arn,
            "--secret-string",
            plain,
        ],
    );
    let v2 = put["VersionId"].as_str().unwrap().to_string();
    let d = ok(&c, &["describe-secret", "--secret-id", "app/db"]);
    assert_eq!(d["VersionIdsToStages"][&v2], json!(["AWSCURRENT"]));
    assert_eq!(d["Description"], "db password");
    assert!(!d.to_string().contains(plain));
    let prev = ok(
        &c,
        &[
            "get-secret-value",
            "--secret-id",
            "app/db",
            "--version-stage",
            "AWSPREVIOUS",
        ],
    );
    assert_eq!(prev["SecretString"], "first-value-xyz");
    let e = aws(&c, &["get-secret-value", "--secret-id", "nope"]).unwrap_err();
    assert!(e.contains("ResourceNotFoundException"), "{e}");
    // Deleting with a recovery window blocks reads; restoring allows them again.
    ok(
        &c,
        &["create-secret", "--name", "doomed", "--secret-string", "x"],
    );
    let del = ok(
        &c,
        &[
            "delete-secret",
            "--secret-id",
            "doomed",
            "--recovery-window-in-days",
            "7",
        ],
    );
    assert!(
        del["DeletionDate"].is_number() || del["DeletionDate"].is_string(),
        "{del}"
    );
    let e = aws(&c, &["get-secret-value", "--secret-id", "doomed"]).unwrap_err();
    assert!(
        e.contains("InvalidRequestException") && e.contains("marked for deletion"),
        "{e}"
    );
    ok(&c, &["restore-secret", "--secret-id", "doomed"]);
    ok(&c, &["get-secret-value", "--secret-id", "doomed"]);
    ok(
        &c,
        &[
            "delete-secret",
            "--secret-id",
            "doomed",
            "--force-delete-without-recovery",
        ],
    );
    assert!(aws(&c, &["describe-secret", "--secret-id", "doomed"])
        .unwrap_err()
        .contains("ResourceNotFoundException"));

    // A service whose task gets the secret as DB_PASSWORD.
    c.ecs(
        "RegisterTaskDefinition",
        task_definition("withsecret", &arn),
    )
    .unwrap();
    c.ecs(
        "CreateService",
        json!({"serviceName": "withsecret", "taskDefinition": "withsecret", "desiredCount": 1}),
    )
    .unwrap();
    let tasks = c.wait_running("withsecret", 1, false);
    let task_id = short(&tasks[0]["taskArn"]);
    let want = format!("len={}", plain.len());
    eventually(
        "the container prints the secret's length",
        Duration::from_secs(20),
        || (!files_containing(&c.state_dir().join("agent"), &want).is_empty()).then_some(()),
    );

    // A task whose secret does not exist is stopped with ECS's reason.
    c.ecs(
        "RegisterTaskDefinition",
        task_definition("missing", "no-such-secret"),
    )
    .unwrap();
    let run = c
        .ecs("RunTask", json!({"taskDefinition": "missing"}))
        .unwrap();
    let missing_arn = run["tasks"][0]["taskArn"].clone();
    let stopped = eventually(
        "the task without its secret stops",
        Duration::from_secs(20),
        || {
            let d = c
                .ecs("DescribeTasks", json!({"tasks": [missing_arn]}))
                .unwrap();
            let t = d["tasks"][0].clone();
            (t["lastStatus"] == "STOPPED").then_some(t)
        },
    );
    let reason = stopped["stoppedReason"].as_str().unwrap();
    assert!(
        reason.starts_with("ResourceInitializationError: unable to pull secrets or registry auth"),
        "{reason}"
    );
    assert!(
        reason.contains("retrieve secret from no-such-secret: ResourceNotFoundException"),
        "{reason}"
    );
    assert_eq!(stopped["stopCode"], "TaskFailedToStart");

    // The audit log records the CLI's reads and the injection, never the value.
    let audit = std::fs::read_to_string(c.state_dir().join("secrets/audit.jsonl")).unwrap();
    let lines: Vec<Value> = audit
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert!(lines.iter().any(|l| l["actor"] == "user:admin"
        && l["operation"] == "GetSecretValue"
        && l["secretArn"] == arn.as_str()));
    assert!(
        lines
            .iter()
            .any(|l| l["actor"] == format!("task:{task_id}").as_str()
                && l["versionId"] == v2.as_str())
    );
    assert!(!audit.contains(plain));

    // The plaintext is nowhere under the state directory (store, agent state, logs).
    let hits = files_containing(&c.state_dir(), plain);
    assert!(hits.is_empty(), "the plaintext is on disk in {hits:?}");
}
