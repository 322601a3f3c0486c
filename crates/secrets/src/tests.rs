//! Unit tests of the secret store: envelope encryption, master keys, stages, deletion, rotation,
//! injection, audit, and that no plaintext reaches the disk.

use super::*;
use serde_json::json;
use std::path::Path;

const KEY_A: &str = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";
const KEY_B: &str = "HxwdHhscGhkYFxYVFBMSERAPDg0MCwoJCAcGBQQDAgE=";

fn open_with(dir: &Path, key: &str) -> Result<Secrets, SecretsError> {
    Secrets::open_in(
        dir.to_path_buf(),
        MasterKeySource::Base64(Zeroizing::new(key.to_string())),
        "us-east-1",
        "000000000000",
    )
}

fn store(dir: &Path) -> Secrets {
    open_with(dir, KEY_A).unwrap()
}

fn create(s: &Secrets, name: &str, value: &str) -> String {
    let out = s
        .call(
            "CreateSecret",
            json!({"Name": name, "SecretString": value}),
            "t",
        )
        .unwrap();
    out["ARN"].as_str().unwrap().to_string()
}

fn get(s: &Secrets, input: Value) -> Result<Value, SecretsError> {
    s.call("GetSecretValue", input, "AKIDTEST")
}

use serde_json::Value;

fn stages(s: &Secrets, id: &str) -> serde_json::Map<String, Value> {
    let d = s
        .call("DescribeSecret", json!({"SecretId": id}), "t")
        .unwrap();
    d["VersionIdsToStages"].as_object().unwrap().clone()
}

/// Every file under `dir`, recursively, as bytes.
fn all_files(dir: &Path) -> Vec<(std::path::PathBuf, Vec<u8>)> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        let p = e.path();
        if p.is_dir() {
            out.extend(all_files(&p));
        } else {
            out.push((p.clone(), std::fs::read(&p).unwrap()));
        }
    }
    out
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

#[test]
fn envelope_round_trip_and_arn_shape() {
    let dir = tempfile::tempdir().unwrap();
    let s = store(dir.path());
    let arn = create(&s, "app/db", "hunter2-plain");
    let re = "arn:aws:secretsmanager:us-east-1:000000000000:secret:app/db-";
    assert!(arn.starts_with(re) && arn.len() == re.len() + 6, "{arn}");
    let v = get(&s, json!({"SecretId": "app/db"})).unwrap();
    assert_eq!(v["SecretString"], "hunter2-plain");
    assert_eq!(v["VersionStages"], json!(["AWSCURRENT"]));
    // By ARN and partial ARN too; after a reopen as well.
    let s = store(dir.path());
    assert_eq!(get(&s, json!({"SecretId": arn})).unwrap()["Name"], "app/db");
    let partial = &arn[..arn.len() - 7];
    assert_eq!(
        get(&s, json!({"SecretId": partial})).unwrap()["ARN"],
        arn.as_str()
    );
    let e = get(&s, json!({"SecretId": "nope"})).unwrap_err();
    assert_eq!(e.code(), "ResourceNotFoundException");
    // Binary secrets round-trip as base64.
    s.call(
        "CreateSecret",
        json!({"Name": "bin", "SecretBinary": "AAEC/w=="}),
        "t",
    )
    .unwrap();
    assert_eq!(
        get(&s, json!({"SecretId": "bin"})).unwrap()["SecretBinary"],
        "AAEC/w=="
    );
    // A sealed value bound to one version does not open as another.
    let k = KeyBytes::random();
    let sealed = crypto::seal(&k, b"x", "value:a:1").unwrap();
    assert_eq!(&*crypto::open(&k, &sealed, "value:a:1", "t").unwrap(), b"x");
    assert_eq!(
        crypto::open(&k, &sealed, "value:a:2", "t")
            .unwrap_err()
            .code(),
        "DecryptionFailure"
    );
}

#[test]
fn wrong_master_key_fails_cleanly() {
    let dir = tempfile::tempdir().unwrap();
    let s = store(dir.path());
    let arn = create(&s, "db", "topsecret-value");
    drop(s);
    let e = open_with(dir.path(), KEY_B).err().unwrap();
    assert_eq!(e.code(), "DecryptionFailure");
    assert!(e.to_string().contains("master key does not match"), "{e}");
    let e = open_with(dir.path(), "bm90IDMyIGJ5dGVz").err().unwrap();
    assert_eq!(e.code(), "InvalidParameterException");
    // A data key wrapped under A does not unwrap under B.
    let s = store(dir.path());
    let wrapped = s.records().get(&arn).unwrap().data_key.clone();
    let b = KeyBytes::from_base64(KEY_B).unwrap();
    assert_eq!(
        crypto::unwrap_data_key(&b, &wrapped, &arn)
            .unwrap_err()
            .code(),
        "DecryptionFailure"
    );
}

#[test]
fn state_dir_master_key_is_created_private_and_reused() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let s = Secrets::open_in(
        dir.path().to_path_buf(),
        MasterKeySource::StateDir,
        "r",
        "1",
    )
    .unwrap();
    create(&s, "x", "v1-plain");
    let meta = std::fs::metadata(dir.path().join("master.key")).unwrap();
    assert_eq!(meta.permissions().mode() & 0o777, 0o600);
    assert_eq!(meta.len(), 32);
    let s = Secrets::open_in(
        dir.path().to_path_buf(),
        MasterKeySource::StateDir,
        "r",
        "1",
    )
    .unwrap();
    assert_eq!(
        get(&s, json!({"SecretId": "x"})).unwrap()["SecretString"],
        "v1-plain"
    );
    // The same key given by file works; a missing file is an error.
    let f = MasterKeySource::File(dir.path().join("master.key"));
    assert!(Secrets::open_in(dir.path().to_path_buf(), f, "r", "1").is_ok());
    let missing = MasterKeySource::File(dir.path().join("nope.key"));
    assert!(Secrets::open_in(dir.path().to_path_buf(), missing, "r", "1").is_err());
}

#[test]
fn put_moves_current_to_previous_and_honours_tokens_and_stages() {
    let dir = tempfile::tempdir().unwrap();
    let s = store(dir.path());
    s.call("CreateSecret", json!({"Name": "db", "SecretString": "v1", "ClientRequestToken": "00000000-0000-0000-0000-000000000001"}), "t").unwrap();
    let v1 = "00000000-0000-0000-0000-000000000001";
    let out = s
        .call(
            "PutSecretValue",
            json!({"SecretId": "db", "SecretString": "v2", "ClientRequestToken": "v2tok"}),
            "t",
        )
        .unwrap();
    assert_eq!(out["VersionStages"], json!(["AWSCURRENT"]));
    let st = stages(&s, "db");
    assert_eq!(st[v1], json!(["AWSPREVIOUS"]));
    assert_eq!(st["v2tok"], json!(["AWSCURRENT"]));
    assert_eq!(
        get(&s, json!({"SecretId": "db", "VersionStage": "AWSPREVIOUS"})).unwrap()["SecretString"],
        "v1"
    );
    // Same token, same value: idempotent; another value: refused.
    s.call(
        "PutSecretValue",
        json!({"SecretId": "db", "SecretString": "v2", "ClientRequestToken": "v2tok"}),
        "t",
    )
    .unwrap();
    let e = s.call("PutSecretValue", json!({"SecretId": "db", "SecretString": "zz-different", "ClientRequestToken": "v2tok"}), "t").unwrap_err();
    assert_eq!(e.code(), "ResourceExistsException");
    assert!(!e.to_string().contains("zz-different"));
    // A labelled put does not touch AWSCURRENT.
    s.call("PutSecretValue", json!({"SecretId": "db", "SecretString": "v3", "ClientRequestToken": "v3tok", "VersionStages": ["AWSPENDING"]}), "t").unwrap();
    assert_eq!(
        get(&s, json!({"SecretId": "db"})).unwrap()["SecretString"],
        "v2"
    );
    assert_eq!(
        get(&s, json!({"SecretId": "db", "VersionId": "v3tok"})).unwrap()["SecretString"],
        "v3"
    );
    let e = get(
        &s,
        json!({"SecretId": "db", "VersionId": "v3tok", "VersionStage": "AWSCURRENT"}),
    )
    .unwrap_err();
    assert_eq!(e.code(), "InvalidRequestException");
    // A third current version drops the unlabelled first one.
    s.call(
        "PutSecretValue",
        json!({"SecretId": "db", "SecretString": "v4", "ClientRequestToken": "v4tok"}),
        "t",
    )
    .unwrap();
    let st = stages(&s, "db");
    assert!(!st.contains_key(v1));
    assert_eq!(st["v2tok"], json!(["AWSPREVIOUS"]));
    // Bad input is refused with every problem named, and no value echoed.
    let e = s
        .call(
            "CreateSecret",
            json!({"Name": "bad name!", "SecretString": "x", "SecretBinary": "AA=="}),
            "t",
        )
        .unwrap_err();
    assert_eq!(e.code(), "InvalidParameterException");
    assert!(
        e.to_string().contains("Name:") && e.to_string().contains("both"),
        "{e}"
    );
    let e = s
        .call(
            "CreateSecret",
            json!({"Name": "db", "SecretString": "x"}),
            "t",
        )
        .unwrap_err();
    assert_eq!(e.code(), "ResourceExistsException");
}

#[test]
fn recovery_window_restore_and_force_delete() {
    let dir = tempfile::tempdir().unwrap();
    let s = store(dir.path());
    create(&s, "db", "v1");
    let e = s
        .call(
            "DeleteSecret",
            json!({"SecretId": "db", "RecoveryWindowInDays": 3}),
            "t",
        )
        .unwrap_err();
    assert_eq!(e.code(), "InvalidParameterException");
    let e = s.call("DeleteSecret", json!({"SecretId": "db", "RecoveryWindowInDays": 7, "ForceDeleteWithoutRecovery": true}), "t").unwrap_err();
    assert_eq!(e.code(), "InvalidParameterException");
    let t = now();
    let out = s
        .call(
            "DeleteSecret",
            json!({"SecretId": "db", "RecoveryWindowInDays": 7}),
            "t",
        )
        .unwrap();
    let when = out["DeletionDate"].as_f64().unwrap();
    assert!((when - (t + 7.0 * 86400.0)).abs() < 5.0);
    let e = get(&s, json!({"SecretId": "db"})).unwrap_err();
    assert_eq!(e.code(), "InvalidRequestException");
    assert!(e.to_string().contains("marked for deletion"));
    assert!(s.resolve_value_from("db", "task1").is_err());
    let d = s
        .call("DescribeSecret", json!({"SecretId": "db"}), "t")
        .unwrap();
    assert!(d["DeletedDate"].is_number());
    let l = s.call("ListSecrets", json!({}), "t").unwrap();
    assert_eq!(l["SecretList"].as_array().unwrap().len(), 0);
    let l = s
        .call("ListSecrets", json!({"IncludePlannedDeletion": true}), "t")
        .unwrap();
    assert_eq!(l["SecretList"].as_array().unwrap().len(), 1);
    s.call("RestoreSecret", json!({"SecretId": "db"}), "t")
        .unwrap();
    assert_eq!(
        get(&s, json!({"SecretId": "db"})).unwrap()["SecretString"],
        "v1"
    );
    // The window ending purges the secret for good.
    s.call("DeleteSecret", json!({"SecretId": "db"}), "t")
        .unwrap();
    s.housekeeping(t + 29.0 * 86400.0);
    let only = s.records().keys().next().cloned().unwrap();
    assert_eq!(s.name_of(&only).as_deref(), Some("db"));
    s.housekeeping(t + 31.0 * 86400.0);
    assert_eq!(
        get(&s, json!({"SecretId": "db"})).unwrap_err().code(),
        "ResourceNotFoundException"
    );
    // Force delete: gone at once, on disk too.
    create(&s, "db2", "v");
    s.call(
        "DeleteSecret",
        json!({"SecretId": "db2", "ForceDeleteWithoutRecovery": true}),
        "t",
    )
    .unwrap();
    assert_eq!(
        get(&s, json!({"SecretId": "db2"})).unwrap_err().code(),
        "ResourceNotFoundException"
    );
    assert_eq!(
        std::fs::read_dir(dir.path().join("secrets"))
            .unwrap()
            .count(),
        0
    );
    assert!(store(dir.path()).records().is_empty());
}

fn rotation_script(dir: &Path, fail_step: &str) -> String {
    format!(
        "berth:command:echo \"$STEP $SECRET_ID\" >> {log}; if [ \"$STEP\" = createSecret ]; then echo \"rotated-$CLIENT_REQUEST_TOKEN\"; fi; [ \"$STEP\" != \"{fail_step}\" ]",
        log = dir.join("steps.log").display()
    )
}

#[test]
fn rotation_by_command_moves_stages_and_calls_hooks() {
    let dir = tempfile::tempdir().unwrap();
    let work = tempfile::tempdir().unwrap();
    let s = store(dir.path());
    let arn = create(&s, "db", "initial-value");
    let seen = Arc::new(Mutex::new(Vec::<String>::new()));
    let seen2 = seen.clone();
    s.on_rotated(Arc::new(move |a: &str| {
        seen2.lock().unwrap().push(a.to_string())
    }));
    let e = s
        .call("RotateSecret", json!({"SecretId": "db"}), "t")
        .unwrap_err();
    assert_eq!(e.code(), "InvalidRequestException");
    let e = s.call("RotateSecret", json!({"SecretId": "db", "RotationLambdaARN": "arn:aws:lambda:x", "RotationRules": {"AutomaticallyAfterDays": 0}}), "t").unwrap_err();
    assert!(
        e.to_string().contains("RotationLambdaARN")
            && e.to_string().contains("AutomaticallyAfterDays"),
        "{e}"
    );
    let out = s
        .call("RotateSecret", json!({"SecretId": "db", "ClientRequestToken": "rot1", "RotationLambdaARN": rotation_script(work.path(), "none"), "RotationRules": {"ScheduleExpression": "rate(10 days)"}}), "t")
        .unwrap();
    assert_eq!(out["VersionId"], "rot1");
    assert_eq!(
        get(&s, json!({"SecretId": "db"})).unwrap()["SecretString"],
        "rotated-rot1"
    );
    assert_eq!(
        get(&s, json!({"SecretId": "db", "VersionStage": "AWSPREVIOUS"})).unwrap()["SecretString"],
        "initial-value"
    );
    let steps = std::fs::read_to_string(work.path().join("steps.log")).unwrap();
    let names: Vec<&str> = steps
        .lines()
        .map(|l| l.split(' ').next().unwrap())
        .collect();
    assert_eq!(
        names,
        ["createSecret", "setSecret", "testSecret", "finishSecret"]
    );
    assert!(steps.lines().all(|l| l.ends_with(&arn)));
    assert_eq!(*seen.lock().unwrap(), vec![arn.clone()]);
    let d = s
        .call("DescribeSecret", json!({"SecretId": "db"}), "t")
        .unwrap();
    assert_eq!(d["RotationEnabled"], true);
    let last = d["LastRotatedDate"].as_f64().unwrap();
    assert_eq!(
        d["NextRotationDate"].as_f64().unwrap(),
        last + 10.0 * 86400.0
    );

    // A failing testSecret leaves the value pending and AWSCURRENT where it was.
    let e = s
        .call("RotateSecret", json!({"SecretId": "db", "ClientRequestToken": "rot2", "RotationLambdaARN": rotation_script(work.path(), "testSecret")}), "t")
        .unwrap_err();
    assert!(e.to_string().contains("testSecret"), "{e}");
    assert_eq!(
        get(&s, json!({"SecretId": "db"})).unwrap()["SecretString"],
        "rotated-rot1"
    );
    assert_eq!(stages(&s, "db")["rot2"], json!(["AWSPENDING"]));
    assert_eq!(seen.lock().unwrap().len(), 1);

    // The schedule rotates when due (the failing script was saved; fix it first).
    s.call("RotateSecret", json!({"SecretId": "db", "RotationLambdaARN": rotation_script(work.path(), "none"), "RotateImmediately": false}), "t").unwrap();
    s.housekeeping(last + 9.0 * 86400.0);
    assert_eq!(seen.lock().unwrap().len(), 1);
    s.housekeeping(last + 10.0 * 86400.0 + 1.0);
    assert_eq!(seen.lock().unwrap().len(), 2);
    let cur = get(&s, json!({"SecretId": "db"})).unwrap();
    assert_ne!(cur["SecretString"], "rotated-rot1");
    assert!(
        !stages(&s, "db").contains_key("rot2"),
        "stale AWSPENDING was dropped"
    );
}

#[test]
fn rotation_by_webhook_posts_each_step() {
    use std::io::{Read, Write};
    let dir = tempfile::tempdir().unwrap();
    let s = store(dir.path());
    create(&s, "hook", "before");
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/rotate", listener.local_addr().unwrap());
    let server = std::thread::spawn(move || {
        let mut steps = Vec::new();
        for _ in 0..4 {
            let (mut c, _) = listener.accept().unwrap();
            c.set_read_timeout(Some(std::time::Duration::from_secs(5)))
                .unwrap();
            let mut buf = vec![0u8; 4096];
            let mut got = Vec::new();
            loop {
                let n = c.read(&mut buf).unwrap();
                got.extend_from_slice(&buf[..n]);
                let text = String::from_utf8_lossy(&got).to_string();
                if let Some((_, body)) = text.split_once("\r\n\r\n") {
                    if serde_json::from_str::<Value>(body).is_ok() {
                        let v: Value = serde_json::from_str(body).unwrap();
                        steps.push(v["Step"].as_str().unwrap().to_string());
                        break;
                    }
                }
                if n == 0 {
                    break;
                }
            }
            let body = if steps.last().map(String::as_str) == Some("createSecret") {
                r#"{"SecretString":"from-webhook"}"#
            } else {
                ""
            };
            write!(
                c,
                "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            )
            .unwrap();
        }
        steps
    });
    s.call(
        "RotateSecret",
        json!({"SecretId": "hook", "RotationLambdaARN": url}),
        "t",
    )
    .unwrap();
    assert_eq!(
        server.join().unwrap(),
        ["createSecret", "setSecret", "testSecret", "finishSecret"]
    );
    assert_eq!(
        get(&s, json!({"SecretId": "hook"})).unwrap()["SecretString"],
        "from-webhook"
    );
}

#[test]
fn injection_reads_keys_stages_and_versions_and_is_audited() {
    let dir = tempfile::tempdir().unwrap();
    let s = store(dir.path());
    let arn = create(&s, "db", r#"{"user":"admin","password":"pw-one"}"#);
    s.call("PutSecretValue", json!({"SecretId": "db", "SecretString": r#"{"password":"pw-two"}"#, "ClientRequestToken": "v2"}), "t").unwrap();
    assert_eq!(
        &*s.resolve_value_from(&format!("{arn}:password::"), "task-1")
            .unwrap(),
        "pw-two"
    );
    assert_eq!(
        &*s.resolve_value_from(&format!("{arn}:password:AWSPREVIOUS:"), "task-1")
            .unwrap(),
        "pw-one"
    );
    assert_eq!(
        &*s.resolve_value_from(&format!("{arn}:user:AWSPREVIOUS:"), "task-1")
            .unwrap(),
        "admin"
    );
    assert_eq!(
        &*s.resolve_value_from(&format!("{arn}:::v2"), "task-1")
            .unwrap(),
        r#"{"password":"pw-two"}"#
    );
    assert_eq!(
        &*s.resolve_value_from("db", "task-2").unwrap(),
        r#"{"password":"pw-two"}"#
    );
    let e = s
        .resolve_value_from(&format!("{arn}:nokey::"), "task-1")
        .unwrap_err();
    assert!(!e.to_string().contains("pw-"));
    assert_eq!(
        s.resolve_value_from("missing", "t").unwrap_err().code(),
        "ResourceNotFoundException"
    );
    get(&s, json!({"SecretId": "db"})).unwrap();
    let audit = std::fs::read_to_string(dir.path().join("audit.jsonl")).unwrap();
    let lines: Vec<Value> = audit
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 7, "one line per successful read");
    assert_eq!(lines[0]["actor"], "task:task-1");
    assert_eq!(lines[0]["secretArn"], arn.as_str());
    assert_eq!(lines[0]["versionId"], "v2");
    assert_eq!(lines[0]["operation"], "InjectSecret");
    assert_eq!(lines[6]["actor"], "AKIDTEST");
    assert_eq!(lines[6]["operation"], "GetSecretValue");
    assert!(!audit.contains("pw-"));
}

#[test]
fn no_plaintext_on_disk_after_create_update_rotate_and_reads() {
    let dir = tempfile::tempdir().unwrap();
    let s = store(dir.path());
    let plain = "PLAINTEXT-MARKER-7f3a9c";
    create(&s, "db", plain);
    s.call(
        "PutSecretValue",
        json!({"SecretId": "db", "SecretString": format!("{plain}-2")}),
        "t",
    )
    .unwrap();
    s.call(
        "UpdateSecret",
        json!({"SecretId": "db", "SecretString": format!("{plain}-3"), "Description": "d"}),
        "t",
    )
    .unwrap();
    // The command builds the value, so its own text (stored as RotationLambdaARN) does not hold it.
    let script = "berth:command:[ \"$STEP\" = createSecret ] && printf 'PLAINTEXT-MARKER-%s-rotated' 7f3a9c; true";
    s.call(
        "RotateSecret",
        json!({"SecretId": "db", "RotationLambdaARN": script}),
        "t",
    )
    .unwrap();
    assert_eq!(
        get(&s, json!({"SecretId": "db"})).unwrap()["SecretString"],
        format!("{plain}-rotated")
    );
    s.resolve_value_from("db", "task-x").unwrap();
    // Nothing but GetSecretValue returns the value.
    for op in ["DescribeSecret", "ListSecretVersionIds"] {
        let out = s
            .call(op, json!({"SecretId": "db"}), "t")
            .unwrap()
            .to_string();
        assert!(!out.contains(plain), "{op}: {out}");
    }
    assert!(!s
        .call("ListSecrets", json!({}), "t")
        .unwrap()
        .to_string()
        .contains(plain));
    let files = all_files(dir.path());
    assert_eq!(files.len(), 3, "keycheck, audit log, one record");
    for (path, bytes) in files {
        assert!(
            !contains(&bytes, plain.as_bytes()),
            "{} holds the plaintext",
            path.display()
        );
    }
}

#[test]
fn list_filters_tags_and_version_stage_moves() {
    let dir = tempfile::tempdir().unwrap();
    let s = store(dir.path());
    s.call(
        "CreateSecret",
        json!({"Name": "prod/db", "SecretString": "a", "Tags": [{"Key": "team", "Value": "core"}]}),
        "t",
    )
    .unwrap();
    create(&s, "dev/db", "b");
    let l = s
        .call(
            "ListSecrets",
            json!({"Filters": [{"Key": "name", "Values": ["prod/"]}]}),
            "t",
        )
        .unwrap();
    let names: Vec<&str> = l["SecretList"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x["Name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["prod/db"]);
    let l = s
        .call(
            "ListSecrets",
            json!({"Filters": [{"Key": "tag-key", "Values": ["team"]}], "MaxResults": 1}),
            "t",
        )
        .unwrap();
    assert_eq!(l["SecretList"].as_array().unwrap().len(), 1);
    let e = s
        .call(
            "ListSecrets",
            json!({"Filters": [{"Key": "bogus", "Values": ["x"]}]}),
            "t",
        )
        .unwrap_err();
    assert_eq!(e.code(), "InvalidParameterException");
    let l = s
        .call("ListSecrets", json!({"MaxResults": 1}), "t")
        .unwrap();
    assert_eq!(l["NextToken"], "1");
    s.call(
        "PutSecretValue",
        json!({"SecretId": "dev/db", "SecretString": "c", "ClientRequestToken": "v2"}),
        "t",
    )
    .unwrap();
    let first = stages(&s, "dev/db")
        .into_iter()
        .find(|(_, v)| v == &json!(["AWSPREVIOUS"]))
        .unwrap()
        .0;
    s.call("UpdateSecretVersionStage", json!({"SecretId": "dev/db", "VersionStage": "AWSCURRENT", "MoveToVersionId": first, "RemoveFromVersionId": "v2"}), "t").unwrap();
    assert_eq!(
        get(&s, json!({"SecretId": "dev/db"})).unwrap()["SecretString"],
        "b"
    );
    assert_eq!(
        s.call("Nope", json!({}), "t").unwrap_err().code(),
        "UnknownOperationException"
    );
}
