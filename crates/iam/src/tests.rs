//! Unit tests of the identity store: bootstrap, access keys, tokens, policies, audit, node token.
#![allow(clippy::unwrap_used, clippy::expect_used)]
use super::*;
use berth_secrets::MasterKeySource;

fn open(dir: &Path) -> Iam {
    let secrets = Secrets::open(dir.join("secrets"), MasterKeySource::StateDir).unwrap();
    Iam::open(dir.join("iam"), secrets).unwrap()
}

#[test]
fn bootstrap_creates_admin_once_and_stores_only_the_hash() {
    let dir = tempfile::tempdir().unwrap();
    let iam = open(dir.path());
    let token = iam.bootstrap_admin(None).unwrap().unwrap();
    assert!(token.starts_with("berth_"));
    assert_eq!(
        iam.bootstrap_admin(None).unwrap(),
        None,
        "only on a fresh store"
    );
    let p = iam.authenticate_token(&token, now()).unwrap();
    assert_eq!(p.user, ADMIN_USER);
    assert_eq!(iam.authorize(&p, "iam:CreateUser", "*"), Decision::Allow);
    // Nothing under the directory holds the token in clear.
    for entry in walk(dir.path()) {
        let bytes = std::fs::read(&entry).unwrap();
        assert!(
            !String::from_utf8_lossy(&bytes).contains(&token),
            "{} holds the token",
            entry.display()
        );
    }
    // Reopened from disk: still valid.
    let again = open(dir.path());
    assert_eq!(
        again.authenticate_token(&token, now()).unwrap().user,
        ADMIN_USER
    );
    assert_eq!(
        again.authenticate_token("berth_wrong", now()),
        Err(AuthError::BadToken)
    );
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = vec![];
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else {
            out.push(p);
        }
    }
    out
}

#[test]
fn access_keys_are_sealed_verify_and_can_be_revoked() {
    let dir = tempfile::tempdir().unwrap();
    let iam = open(dir.path());
    iam.create_user("ci").unwrap();
    iam.attach_user_policy("ci", &format!("{}Deployer", policy::BUILTIN_PREFIX))
        .unwrap();
    let (id, secret, _) = iam.create_access_key("ci").unwrap();
    let raw = std::fs::read_to_string(dir.path().join("iam/iam.json")).unwrap();
    assert!(
        raw.contains(&id) && !raw.contains(&secret),
        "secret stored in clear"
    );
    // Sign a request with the key and verify it.
    let headers = vec![
        ("host".to_string(), "127.0.0.1".to_string()),
        ("x-amz-date".to_string(), "20261122T030000Z".to_string()),
    ];
    let mut auth = sigv4::Authorization {
        access_key_id: id.clone(),
        date: "20261122".into(),
        region: "us-east-1".into(),
        service: "ecs".into(),
        signed_headers: vec!["host".into(), "x-amz-date".into()],
        signature: String::new(),
    };
    let req = sigv4::Request {
        method: "POST",
        path: "/",
        query: "",
        headers: &headers,
        body: b"{}",
    };
    let t = chrono::NaiveDate::from_ymd_opt(2026, 11, 22)
        .unwrap()
        .and_hms_opt(3, 0, 0)
        .unwrap()
        .and_utc()
        .timestamp() as f64;
    auth.signature = sigv4::signature(
        &secret,
        &auth,
        &sigv4::string_to_sign(&auth, &req, "20261122T030000Z"),
    );
    let p = iam.authenticate_sigv4(&auth, &req, t).unwrap();
    assert_eq!(p.user, "ci");
    assert_eq!(iam.authorize(&p, "ecs:UpdateService", "*"), Decision::Allow);
    assert_eq!(
        iam.authorize(&p, "secretsmanager:GetSecretValue", "*"),
        Decision::ImplicitDeny
    );
    assert_eq!(
        iam.authorize(&p, "iam:CreateUser", "*"),
        Decision::ImplicitDeny
    );
    // Basic auth with the key pair (registry clients).
    assert_eq!(iam.authenticate_basic(&id, &secret, t).unwrap().user, "ci");
    assert!(iam.authenticate_basic(&id, "wrong", t).is_err());
    // Inactive, then deleted.
    iam.update_access_key(&id, "Inactive").unwrap();
    assert_eq!(
        iam.authenticate_sigv4(&auth, &req, t),
        Err(AuthError::Inactive(id.clone()))
    );
    iam.delete_access_key(&id).unwrap();
    assert_eq!(
        iam.authenticate_sigv4(&auth, &req, t),
        Err(AuthError::UnknownKey(id.clone()))
    );
    assert!(matches!(
        iam.update_access_key("nope", "Active"),
        Err(IamError::NoSuchEntity(_))
    ));
    assert!(matches!(
        iam.update_access_key(&id, "Maybe"),
        Err(IamError::Validation(_))
    ));
}

#[test]
fn tokens_rotate_and_revoke() {
    let dir = tempfile::tempdir().unwrap();
    let iam = open(dir.path());
    iam.create_user("dash").unwrap();
    let (id, token, _) = iam.create_token("dash").unwrap();
    assert!(iam.authenticate_token(&token, now()).is_ok());
    let (_, rotated) = iam.reset_token(&id).unwrap();
    assert_eq!(
        iam.authenticate_token(&token, now()),
        Err(AuthError::BadToken)
    );
    assert!(iam.authenticate_token(&rotated, now()).is_ok());
    iam.update_token(&id, "Inactive").unwrap();
    assert_eq!(
        iam.authenticate_token(&rotated, now()),
        Err(AuthError::BadToken)
    );
    iam.delete_token(&id).unwrap();
    assert!(iam.list_tokens(Some("dash")).is_empty());
    // Registry tokens expire.
    let (reg, expires) = iam.registry_token("dash").unwrap();
    assert!(iam.authenticate_token(&reg, now()).is_ok());
    assert!(iam.authenticate_token(&reg, expires + 1.0).is_err());
}

#[test]
fn users_policies_and_bad_input() {
    let dir = tempfile::tempdir().unwrap();
    let iam = open(dir.path());
    assert!(matches!(
        iam.create_user("../etc"),
        Err(IamError::Validation(_))
    ));
    iam.create_user("ro").unwrap();
    assert!(matches!(
        iam.create_user("RO"),
        Err(IamError::EntityAlreadyExists(_))
    ));
    assert!(matches!(
        iam.attach_user_policy("ro", "arn:aws:iam::aws:policy/Nope"),
        Err(IamError::NoSuchEntity(_))
    ));
    iam.attach_user_policy("ro", &format!("{}ReadOnlyAccess", policy::BUILTIN_PREFIX))
        .unwrap();
    let err = iam
        .put_user_policy("ro", "p", r#"{"Statement":[{"Effect":"Allow"}]}"#)
        .unwrap_err();
    assert!(
        matches!(err, IamError::MalformedPolicyDocument(ref m) if m.contains("Statement[0].Action")),
        "{err}"
    );
    iam.put_user_policy(
        "ro",
        "deploy-web",
        r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"ecs:UpdateService","Resource":"arn:aws:ecs:*:*:service/default/web"}]}"#,
    )
    .unwrap();
    let (_, token, _) = iam.create_token("ro").unwrap();
    let p = iam.authenticate_token(&token, now()).unwrap();
    assert_eq!(
        iam.authorize(
            &p,
            "ecs:UpdateService",
            "arn:aws:ecs:us-east-1:000000000000:service/default/web"
        ),
        Decision::Allow
    );
    assert_eq!(
        iam.authorize(
            &p,
            "ecs:UpdateService",
            "arn:aws:ecs:us-east-1:000000000000:service/default/api"
        ),
        Decision::ImplicitDeny
    );
    assert!(matches!(
        iam.delete_user("ro"),
        Err(IamError::DeleteConflict(_))
    ));
}

#[test]
fn audit_lookup_filters_newest_first_and_pages() {
    let dir = tempfile::tempdir().unwrap();
    let iam = open(dir.path());
    for (i, (user, name)) in [
        ("a", "UpdateService"),
        ("b", "CreateService"),
        ("a", "DeleteService"),
    ]
    .iter()
    .enumerate()
    {
        iam.record(&audit::Event {
            event_id: format!("e{i}"),
            event_time: 1000.0 + i as f64,
            event_name: name.to_string(),
            event_source: "ecs.amazonaws.com".into(),
            user_name: user.to_string(),
            access_key_id: String::new(),
            resource: "*".into(),
            read_only: false,
            decision: "Allow".into(),
            error_code: None,
            status: 200,
            source_ip: "127.0.0.1".into(),
        });
    }
    let r = iam
        .lookup_events(&serde_json::json!({"LookupAttributes":[{"AttributeKey":"Username","AttributeValue":"a"}]}))
        .unwrap();
    let names: Vec<&str> = r["Events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["EventName"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["DeleteService", "UpdateService"]);
    let page = iam
        .lookup_events(&serde_json::json!({"MaxResults": 2}))
        .unwrap();
    assert_eq!(page["Events"].as_array().unwrap().len(), 2);
    let rest = iam
        .lookup_events(&serde_json::json!({"MaxResults": 2, "NextToken": page["NextToken"]}))
        .unwrap();
    assert_eq!(rest["Events"][0]["EventName"], "UpdateService");
    assert!(iam
        .lookup_events(&serde_json::json!({"MaxResults": 0}))
        .is_err());
    assert!(iam
        .lookup_events(&serde_json::json!({"LookupAttributes":[{"AttributeKey":"Colour","AttributeValue":"x"}]}))
        .is_err());
    // A torn line at the end is skipped.
    berth_secrets::append_line(&dir.path().join("iam/audit.jsonl"), "{\"eventId\":").unwrap();
    assert_eq!(
        iam.lookup_events(&serde_json::json!({})).unwrap()["Events"]
            .as_array()
            .unwrap()
            .len(),
        3
    );
}

#[test]
fn node_token_file_is_private_and_reused() {
    let dir = tempfile::tempdir().unwrap();
    let iam = open(dir.path());
    let path = dir.path().join("run/node.token");
    iam.ensure_node_token(&path).unwrap();
    let first = std::fs::read_to_string(&path).unwrap();
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(
        std::fs::metadata(&path).unwrap().permissions().mode() & 0o777,
        0o600
    );
    iam.ensure_node_token(&path).unwrap();
    assert_eq!(
        std::fs::read_to_string(&path).unwrap(),
        first,
        "kept while valid"
    );
    let p = iam.authenticate_token(&first, now()).unwrap();
    assert_eq!(iam.authorize(&p, "berth:AgentReport", "*"), Decision::Allow);
    assert_eq!(
        iam.authorize(&p, "ecs:UpdateService", "*"),
        Decision::ImplicitDeny
    );
}
