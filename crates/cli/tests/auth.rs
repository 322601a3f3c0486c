//! End-to-end tests of authentication and authorisation against the real binary: the real AWS
//! CLI with berth-issued access keys (and with wrong ones), built-in policies (read-only,
//! deployer), revocation and rotation, the audit log, registry credentials and the dashboard's
//! sign-in.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::*;
use serde_json::{json, Value};
use std::time::Duration;

const STACK: &str = r#"
name: authz
services:
  web:
    desiredCount: 1
    taskDefinition:
      family: web
      containerDefinitions:
        - name: web
          image: process://berth
          command: ["demo-app"]
          portMappings: [{containerPort: 8080}]
"#;

fn keys_env(id: &str, secret: &str) -> Vec<(String, String)> {
    vec![
        ("AWS_ACCESS_KEY_ID".into(), id.into()),
        ("AWS_SECRET_ACCESS_KEY".into(), secret.into()),
        ("AWS_CONFIG_FILE".into(), "/dev/null".into()),
        ("AWS_SHARED_CREDENTIALS_FILE".into(), "/dev/null".into()),
        ("AWS_MAX_ATTEMPTS".into(), "1".into()),
    ]
}

/// Creates a user with a built-in policy, a token and an access key.
fn user(c: &Cluster, name: &str, policy: &str) -> (String, Vec<(String, String)>) {
    let v = c.cli_json(&[
        "auth",
        "create-user",
        name,
        "--policy",
        policy,
        "--access-key",
    ]);
    let env = keys_env(
        v["accessKeyId"].as_str().unwrap(),
        v["secretAccessKey"].as_str().unwrap(),
    );
    (v["token"].as_str().unwrap().to_string(), env)
}

/// `berth ARGS` with another token.
fn berth_as(c: &Cluster, token: &str, args: &[&str]) -> std::process::Output {
    c.cli_command(args)
        .env("BERTH_TOKEN", token)
        .output()
        .unwrap()
}

fn raw(addr: &str, request: &str) -> (u16, String) {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s.write_all(request.as_bytes()).unwrap();
    let mut out = Vec::new();
    s.read_to_end(&mut out).unwrap();
    let text = String::from_utf8_lossy(&out).into_owned();
    let status = text
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    (status, text)
}

#[test]
fn credentials_policies_revocation_and_audit() {
    let c = Cluster::start(false);
    let stack = c.write_stack("berth.yaml", STACK);
    assert!(c.cli(&["apply", stack.to_str().unwrap()]).status.success());
    c.wait_running("web", 1, false);

    // No credential: refused, naming what is missing.
    let (status, text) = raw(
        &c.addr,
        &format!("POST / HTTP/1.1\r\nHost: {}\r\nX-Amz-Target: AmazonEC2ContainerServiceV20141113.ListClusters\r\nContent-Type: application/x-amz-json-1.1\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{{}}", c.addr),
    );
    assert_eq!(status, 403, "{text}");
    assert!(
        text.contains("MissingAuthenticationTokenException"),
        "{text}"
    );
    // The liveness check stays open.
    assert_eq!(http_get(&c.addr, "/healthz").unwrap().0, 200);

    // The admin's access key works with the real AWS CLI; a wrong secret or key does not.
    let clusters = c.aws(&["ecs", "list-clusters"]).unwrap();
    assert!(clusters["clusterArns"].as_array().unwrap().len() >= 1);
    let (id, _) = c.access_key();
    let wrong = c
        .aws_as(&keys_env(&id, "not-the-secret"), &["ecs", "list-clusters"])
        .unwrap_err();
    assert!(wrong.contains("InvalidSignatureException"), "{wrong}");
    assert!(wrong.contains("does not match"), "{wrong}");
    let unknown = c
        .aws_as(
            &keys_env("BKIANOSUCHKEY0000000", "x"),
            &["ecs", "list-clusters"],
        )
        .unwrap_err();
    assert!(unknown.contains("UnrecognizedClientException"), "{unknown}");
    let who = c.aws(&["sts", "get-caller-identity"]).unwrap();
    assert!(
        who["Arn"].as_str().unwrap().ends_with(":user/admin"),
        "{who}"
    );
    let users = c.aws(&["iam", "list-users"]).unwrap();
    let names: Vec<&str> = users["Users"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["UserName"].as_str().unwrap())
        .collect();
    assert!(
        names.contains(&"admin") && names.contains(&"berth-node"),
        "{names:?}"
    );

    // Read-only: reads, but UpdateService is denied with the action and resource named.
    let (ro_token, ro) = user(&c, "auditor", "read-only");
    let services = c
        .aws_as(&ro, &["ecs", "list-services", "--cluster", "default"])
        .unwrap();
    assert_eq!(services["serviceArns"].as_array().unwrap().len(), 1);
    let denied = c
        .aws_as(
            &ro,
            &[
                "ecs",
                "update-service",
                "--cluster",
                "default",
                "--service",
                "web",
                "--desired-count",
                "2",
            ],
        )
        .unwrap_err();
    assert!(denied.contains("AccessDeniedException"), "{denied}");
    assert!(denied.contains("ecs:UpdateService"), "{denied}");
    assert!(denied.contains("service/default/web"), "{denied}");
    let out = berth_as(&c, &ro_token, &["scale", "web", "3"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("AccessDenied"));
    assert!(berth_as(&c, &ro_token, &["services"]).status.success());

    // Deployer: deploys (register + update) but reads no secret and makes no user.
    c.aws(&[
        "secretsmanager",
        "create-secret",
        "--name",
        "db",
        "--secret-string",
        "pw-1234",
    ])
    .unwrap();
    let (dep_token, dep) = user(&c, "ci", "deployer");
    let deploy = berth_as(
        &c,
        &dep_token,
        &["deploy", "web", "--env", "DEMO_VERSION=v2"],
    );
    assert!(
        deploy.status.success(),
        "deployer deploy: {}",
        String::from_utf8_lossy(&deploy.stderr)
    );
    let secret = c
        .aws_as(
            &dep,
            &["secretsmanager", "get-secret-value", "--secret-id", "db"],
        )
        .unwrap_err();
    assert!(
        secret.contains("AccessDenied") && secret.contains("secretsmanager:GetSecretValue"),
        "{secret}"
    );
    let mk = c
        .aws_as(&dep, &["iam", "create-user", "--user-name", "eve"])
        .unwrap_err();
    assert!(
        mk.contains("AccessDenied") && mk.contains("iam:CreateUser"),
        "{mk}"
    );
    let admin_reads = c
        .aws(&["secretsmanager", "get-secret-value", "--secret-id", "db"])
        .unwrap();
    assert_eq!(admin_reads["SecretString"], "pw-1234");

    // Rotation and revocation: the old key stops working at once, the new one works.
    let ci_key = dep[0].1.clone();
    let rotated = c.cli_json(&["auth", "rotate-key", &ci_key]);
    let new_env = keys_env(
        rotated["accessKeyId"].as_str().unwrap(),
        rotated["secretAccessKey"].as_str().unwrap(),
    );
    assert!(
        c.aws_as(&dep, &["ecs", "list-clusters"]).is_err(),
        "old key still works"
    );
    assert!(c.aws_as(&new_env, &["ecs", "list-clusters"]).is_ok());
    let tokens = c.cli_json(&["auth", "tokens", "ci"]);
    let token_id = tokens[0]["tokenId"].as_str().unwrap().to_string();
    assert!(c.cli(&["auth", "revoke-token", &token_id]).status.success());
    let revoked = berth_as(&c, &dep_token, &["services"]);
    assert!(!revoked.status.success());
    assert!(
        String::from_utf8_lossy(&revoked.stderr).contains("invalid"),
        "{}",
        String::from_utf8_lossy(&revoked.stderr)
    );

    // The audit log holds the changes and the denials, newest first, queryable by user.
    let ci_events = c.cli_json(&["audit", "--user", "ci"]);
    let names: Vec<(String, String)> = ci_events["Events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            let d: Value = serde_json::from_str(e["CloudTrailEvent"].as_str().unwrap()).unwrap();
            (
                e["EventName"].as_str().unwrap().to_string(),
                d["decision"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    for want in [
        ("UpdateService", "Allow"),
        ("RegisterTaskDefinition", "Allow"),
        ("GetSecretValue", "Deny"),
        ("CreateUser", "Deny"),
    ] {
        assert!(
            names.contains(&(want.0.to_string(), want.1.to_string())),
            "{want:?} not in {names:?}"
        );
    }
    let ro_denials = c.cli_json(&["audit", "--user", "auditor", "--action", "UpdateService"]);
    // Two denials: the AWS CLI's (access key) and `berth scale`'s (token).
    let keys: Vec<&str> = ro_denials["Events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["AccessKeyId"].as_str().unwrap())
        .collect();
    assert_eq!(keys.len(), 2, "{ro_denials}");
    assert!(
        keys.iter().any(|k| k.starts_with("BKIA")) && keys.iter().any(|k| k.starts_with("ACCA")),
        "{keys:?}"
    );
    // Allowed reads are not audited (only changes and denials: here the revoked token's).
    let reads = c.cli_json(&["audit", "--action", "ListServices"]);
    for e in reads["Events"].as_array().unwrap() {
        assert!(
            e["CloudTrailEvent"]
                .as_str()
                .unwrap()
                .contains("\"decision\":\"Deny\""),
            "an allowed read was audited: {e}"
        );
    }

    // Nothing in the state directory holds a token or an access-key secret in clear.
    let secret_key = c.access_key().1;
    for path in walk(&c.state_dir()) {
        if path.starts_with(c.state_dir().join("client")) {
            continue; // the client's own credentials file, as ~/.aws/credentials
        }
        let bytes = std::fs::read(&path).unwrap_or_default();
        let text = String::from_utf8_lossy(&bytes);
        assert!(
            !text.contains(&c.token),
            "{} holds the admin token",
            path.display()
        );
        assert!(
            !text.contains(&secret_key),
            "{} holds a secret key",
            path.display()
        );
        assert!(
            !text.contains(&ro_token),
            "{} holds a token",
            path.display()
        );
    }
}

fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = vec![];
    let Ok(entries) = std::fs::read_dir(dir) else {
        return out;
    };
    for e in entries.flatten() {
        let p = e.path();
        let Ok(meta) = std::fs::symlink_metadata(&p) else {
            continue;
        };
        if meta.is_dir() {
            out.extend(walk(&p));
        } else if meta.is_file() && !p.to_string_lossy().contains("node.token") {
            out.push(p);
        }
    }
    out
}

#[test]
fn registry_and_dashboard_need_credentials() {
    let c = Cluster::start(false);
    // The registry asks for credentials the way docker-style clients expect.
    let (status, text) = raw(
        &c.addr,
        &format!(
            "GET /v2/ HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n\r\n",
            c.addr
        ),
    );
    assert_eq!(status, 401, "{text}");
    assert!(
        text.to_lowercase().contains("www-authenticate: basic"),
        "{text}"
    );
    // ECR's GetAuthorizationToken gives a Basic credential the registry accepts.
    let auth = c
        .api_client()
        .post(
            &c.addr,
            "AmazonEC2ContainerRegistry_V20150921.GetAuthorizationToken",
            json!({}),
        )
        .unwrap();
    let basic = auth["authorizationData"][0]["authorizationToken"]
        .as_str()
        .unwrap()
        .to_string();
    let (status, text) = raw(
        &c.addr,
        &format!("GET /v2/ HTTP/1.1\r\nHost: {}\r\nAuthorization: Basic {basic}\r\nConnection: close\r\n\r\n", c.addr),
    );
    assert_eq!(status, 200, "{text}");
    let (status, _) = raw(
        &c.addr,
        &format!("GET /v2/ HTTP/1.1\r\nHost: {}\r\nAuthorization: Basic QVdTOm5vcGU=\r\nConnection: close\r\n\r\n", c.addr),
    );
    assert_eq!(status, 401, "AWS:nope must be refused");

    // The dashboard's page is public, its data is not; sign-in sets an HttpOnly session cookie.
    assert_eq!(http_get(&c.addr, "/dashboard/").unwrap().0, 200);
    assert_eq!(http_get(&c.addr, "/berth/v1/status").unwrap().0, 403);
    let login = |token: &str| {
        let body = json!({ "token": token }).to_string();
        raw(
            &c.addr,
            &format!("POST /berth/v1/login HTTP/1.1\r\nHost: {}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}", c.addr, body.len()),
        )
    };
    let (status, text) = login("berth_wrong_token_000000000000");
    assert_eq!(status, 403, "{text}");
    let (status, text) = login(&c.token);
    assert_eq!(status, 200, "{text}");
    let cookie = text
        .lines()
        .find(|l| l.to_ascii_lowercase().starts_with("set-cookie:"))
        .expect("a session cookie")
        .to_string();
    assert!(
        cookie.contains("HttpOnly") && cookie.contains("SameSite=Strict"),
        "{cookie}"
    );
    let value = cookie
        .split_once(':')
        .unwrap()
        .1
        .split(';')
        .next()
        .unwrap()
        .trim()
        .to_string();
    let (status, text) = raw(
        &c.addr,
        &format!("GET /berth/v1/whoami HTTP/1.1\r\nHost: {}\r\nCookie: {value}\r\nConnection: close\r\n\r\n", c.addr),
    );
    assert_eq!(status, 200, "{text}");
    assert!(text.contains("\"user\":\"admin\""), "{text}");
    // A failed sign-in is audited.
    let failed = c.cli_json(&["audit", "--action", "ConsoleLogin"]);
    assert_eq!(failed["Events"].as_array().unwrap().len(), 1, "{failed}");
}

#[test]
fn a_lost_admin_token_is_recovered_offline() {
    let mut c = Cluster::start(false);
    let running = c.cli(&["auth", "recover"]);
    assert!(
        !running.status.success(),
        "recover must refuse while the server runs"
    );
    assert!(String::from_utf8_lossy(&running.stderr).contains("server is running"));
    c.kill_server();
    let out = c
        .cli_command(&["auth", "recover", "--output", "json"])
        .env_remove("BERTH_TOKEN")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    let token = v["token"].as_str().unwrap().to_string();
    assert_ne!(token, c.token);
    c.start_server();
    // The new token (also saved in the credentials file, used when BERTH_TOKEN is unset) works.
    let who = c
        .cli_command(&["auth", "whoami", "--output", "json"])
        .env_remove("BERTH_TOKEN")
        .output()
        .unwrap();
    assert!(
        who.status.success(),
        "{}",
        String::from_utf8_lossy(&who.stderr)
    );
    assert!(String::from_utf8_lossy(&who.stdout).contains("\"admin\""));
    assert!(berth_as(&c, &token, &["services"]).status.success());
    assert!(
        !berth_as(&c, "berth_not_a_token_000000000000", &["services"])
            .status
            .success()
    );
}
