//! End-to-end test of HTTPS on the API: `berth cert` makes a CA and a server certificate,
//! `berth server --tls-cert/--tls-key` serves https://, the CLI trusts the CA with --ca-cert,
//! plain http and an untrusted client fail, and the real AWS CLI works with --ca-bundle.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::*;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::time::Duration;

/// A `berth server` process, killed when dropped.
struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The admin token the server is started with.
const TOKEN: &str = "berth_tls_test_token_0123456789abcdef";

fn berth(state: &Path, api_addr: Option<&str>, args: &[&str]) -> Output {
    let mut cmd = Command::new(BERTH);
    cmd.args(args)
        .env("BERTH_STATE_DIR", state)
        .env("BERTH_TOKEN", TOKEN)
        .env("BERTH_CONFIG_DIR", state.join("client"))
        .env_remove("BERTH_API_ADDR")
        .env_remove("BERTH_CA_CERT");
    if let Some(a) = api_addr {
        cmd.env("BERTH_API_ADDR", a);
    }
    cmd.output().unwrap()
}

fn ok(out: &Output, what: &str) -> String {
    assert!(
        out.status.success(),
        "{what} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn api_over_https_with_a_local_ca() {
    let dir = tempfile::tempdir().unwrap();
    let (state, ca_dir, certs) = (
        dir.path().join("state"),
        dir.path().join("ca"),
        dir.path().join("certs"),
    );
    let p = |p: &Path| p.to_str().unwrap().to_string();

    ok(
        &berth(&state, None, &["cert", "ca", "--out", &p(&ca_dir)]),
        "berth cert ca",
    );
    let mode = std::fs::metadata(ca_dir.join("ca-key.pem"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);
    let again = berth(&state, None, &["cert", "ca", "--out", &p(&ca_dir)]);
    assert!(
        !again.status.success(),
        "an existing CA is not replaced without --force"
    );
    ok(
        &berth(
            &state,
            None,
            &[
                "cert",
                "issue",
                "--ca",
                &p(&ca_dir),
                "--name",
                "localhost",
                "--name",
                "127.0.0.1",
                "--out",
                &p(&certs),
            ],
        ),
        "berth cert issue",
    );
    let ca = p(&ca_dir.join("ca.pem"));

    let port = free_port();
    let log = std::fs::File::create(dir.path().join("server.log")).unwrap();
    let _server = Server(
        Command::new(BERTH)
            .arg("server")
            .env("BERTH_STATE_DIR", &state)
            .env("BERTH_API_ADDR", format!("127.0.0.1:{port}"))
            .env("BERTH_TLS_CERT", certs.join("localhost.pem"))
            .env("BERTH_TLS_KEY", certs.join("localhost-key.pem"))
            .env("BERTH_BOOTSTRAP_TOKEN", TOKEN)
            .env("BERTH_LOG", "info")
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap(),
    );
    let https = format!("https://127.0.0.1:{port}");
    eventually("server answers over https", Duration::from_secs(20), || {
        berth(&state, Some(&https), &["services", "--ca-cert", &ca])
            .status
            .success()
            .then_some(())
    });

    // The address file names the scheme, so a bare `berth` finds the https server.
    let addr_file = std::fs::read_to_string(state.join("run/api.addr")).unwrap();
    assert_eq!(addr_file.trim(), https);
    ok(
        &berth(&state, None, &["services", "--ca-cert", &ca]),
        "berth services (address file)",
    );
    let named = Command::new(BERTH)
        .args(["services"])
        .env("BERTH_STATE_DIR", &state)
        .env("BERTH_API_ADDR", format!("https://localhost:{port}"))
        .env("BERTH_CA_CERT", &ca)
        .env("BERTH_TOKEN", TOKEN)
        .output()
        .unwrap();
    ok(&named, "berth services via BERTH_CA_CERT and a DNS name");

    // Without the CA the certificate is refused; plain http gets no answer.
    let untrusted = berth(&state, Some(&https), &["services"]);
    assert_eq!(untrusted.status.code(), Some(3));
    let err = String::from_utf8_lossy(&untrusted.stderr).to_lowercase();
    assert!(err.contains("certificate"), "{err}");
    let plain = berth(
        &state,
        Some(&format!("http://127.0.0.1:{port}")),
        &["services"],
    );
    assert_eq!(plain.status.code(), Some(3), "plain http must fail");
    let bad_ca = berth(
        &state,
        Some(&https),
        &["services", "--ca-cert", &p(&dir.path().join("none.pem"))],
    );
    assert!(!bad_ca.status.success());
    assert!(String::from_utf8_lossy(&bad_ca.stderr).contains("--ca-cert"));

    // The real AWS CLI over https with the CA bundle, signing with an admin access key.
    let key: serde_json::Value = serde_json::from_str(&ok(
        &berth(
            &state,
            Some(&https),
            &[
                "auth",
                "create-key",
                "admin",
                "--ca-cert",
                &ca,
                "--output",
                "json",
            ],
        ),
        "berth auth create-key",
    ))
    .unwrap();
    let (key_id, secret) = (
        key["accessKeyId"].as_str().unwrap().to_string(),
        key["secretAccessKey"].as_str().unwrap().to_string(),
    );
    let aws = |extra: &[&str]| {
        Command::new("aws")
            .args([
                "ecs",
                "list-clusters",
                "--endpoint-url",
                &https,
                "--region",
                "us-east-1",
                "--output",
                "json",
            ])
            .args(extra)
            .env("AWS_ACCESS_KEY_ID", &key_id)
            .env("AWS_SECRET_ACCESS_KEY", &secret)
            .env("AWS_MAX_ATTEMPTS", "1")
            .env_remove("AWS_CA_BUNDLE")
            .output()
            .expect("the AWS CLI (`aws`) must be installed: scripts/test.sh installs it")
    };
    let listed = aws(&["--ca-bundle", &ca]);
    let text = ok(&listed, "aws ecs list-clusters --ca-bundle");
    let v: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert!(v["clusterArns"].is_array(), "{v}");
    let refused = aws(&[]);
    assert!(
        !refused.status.success(),
        "without the CA bundle the certificate is refused"
    );
}
