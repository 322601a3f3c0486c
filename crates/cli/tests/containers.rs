//! End-to-end: an image built with `berth image build`, pushed to berth's own registry, runs as a
//! service of real OCI containers (runc, own network namespace and IP) behind the proxy.

mod common;

use common::*;
use std::time::Duration;

fn runc_available() -> bool {
    let root = nix::unistd::Uid::effective().is_root();
    let runc = std::process::Command::new("runc")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    let busybox = std::path::Path::new("/bin/busybox").exists();
    if !(root && runc && busybox) {
        eprintln!("SKIPPED: container tests need root, runc and /bin/busybox (root={root} runc={runc} busybox={busybox}); scripts/test.sh installs them");
    }
    root && runc && busybox
}

#[test]
fn an_image_built_and_pushed_runs_as_a_service_behind_the_proxy() {
    if !runc_available() {
        return;
    }
    pushed_image_serves_behind_the_proxy(&Cluster::start(true));
}

/// With the API on HTTPS (a local CA's certificate), the CLI pushes over HTTPS, the agent takes
/// its assignments and pulls the image over HTTPS, and the proxy its configuration: nothing
/// falls back to plain HTTP, which the server does not answer.
#[test]
fn over_https_the_agent_the_proxy_and_the_registry_trust_the_local_ca() {
    if !runc_available() {
        return;
    }
    let c = Cluster::start_tls(true);
    pushed_image_serves_behind_the_proxy(&c);
    let plain = std::process::Command::new(BERTH)
        .args([
            "probe",
            &format!("http://{}/healthz", c.addr),
            "--timeout",
            "2",
        ])
        .output()
        .unwrap();
    assert!(
        !plain.status.success(),
        "the API must not answer plain http"
    );
    // The proxy reports to the control plane over HTTPS: it is listed, healthy.
    let status = c.cli_json(&["status"]);
    let proxies = status["components"]["proxies"].as_array().unwrap();
    assert!(
        proxies.iter().any(|p| p["healthy"] == true),
        "a healthy proxy: {status}"
    );
}

fn pushed_image_serves_behind_the_proxy(c: &Cluster) {
    let image = build_httpd_image(
        c,
        &[
            ("index.html", "hello from a container\n"),
            ("health", "ok\n"),
        ],
    );
    let port = free_port();
    let stack = c.write_stack(
        "berth.yaml",
        &format!(
            r#"
name: t
loadBalancers:
  web:
    listeners:
      - port: {port}
        defaultAction: {{forward: www}}
targetGroups:
  www:
    port: 8080
    healthCheck: {{path: /health, intervalSeconds: 0.5, timeoutSeconds: 0.4, healthyThreshold: 2, unhealthyThreshold: 2}}
services:
  www:
    desiredCount: 2
    loadBalancers: [{{targetGroup: www, containerName: web, containerPort: 8080}}]
    taskDefinition:
      cpu: "256"
      memory: "64"
      containerDefinitions:
        - name: web
          image: {image}
          portMappings: [{{containerPort: 8080}}]
          stopTimeout: 2
"#
        ),
    );
    let out = c.cli(&["apply", stack.to_str().unwrap()]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let tasks = c.wait_running("www", 2, false);
    // Each task has its own address (awsvpc-like), not a host port.
    let ips: Vec<String> = tasks
        .iter()
        .map(|t| {
            t["containers"][0]["networkBindings"][0]["bindIP"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect();
    assert!(ips.iter().all(|ip| ip.starts_with("10.88.")), "{ips:?}");
    assert_ne!(ips[0], ips[1]);
    let addr = format!("127.0.0.1:{port}");
    let body = eventually(
        "the container answers through the proxy",
        Duration::from_secs(30),
        || {
            http_get(&addr, "/index.html")
                .ok()
                .filter(|(s, _)| *s == 200)
                .map(|(_, b)| b)
        },
    );
    assert!(body.contains("hello from a container"));
}

#[test]
fn the_example_stack_runs_its_services_as_containers_behind_the_proxy() {
    if !runc_available() {
        return;
    }
    let c = Cluster::start(true);
    // The images, built and pushed by the script scripts/demo.sh uses, shipping this berth binary.
    let repo = examples_dir().join("..");
    let out = std::process::Command::new("bash")
        .arg(repo.join("scripts/build-example-images.sh"))
        .env("BERTH_BIN", BERTH)
        .env("BERTH_API_ADDR", &c.addr)
        .env("BERTH_TOKEN", &c.token)
        .env("BERTH_CONFIG_DIR", c.state_dir().join("client"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "build-example-images.sh: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    // The example stack file as it is, with the variables scripts/demo.sh sets.
    let port = free_port();
    let stack = examples_dir().join("shop/berth.yaml");
    let out = c
        .cli_command(&["apply", stack.to_str().unwrap()])
        .env("SHOP_IMAGE", format!("{}/berth-demo:latest", c.addr))
        .env("SHOP_PORT", port.to_string())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "apply: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    for service in ["frontend", "api"] {
        // HEALTHY: the `berth probe` health check ran inside each container. The first start
        // pulls and unpacks the image (berth's binary and libraries).
        let tasks = eventually(
            &format!("2 running, healthy tasks of {service}"),
            Duration::from_secs(120),
            || {
                let t = c.running_tasks(service, true);
                (t.len() == 2).then_some(t)
            },
        );
        for t in &tasks {
            let container = &t["containers"][0];
            assert_eq!(
                container["image"],
                format!("{}/berth-demo:latest", c.addr),
                "{service}"
            );
            let ip = container["networkBindings"][0]["bindIP"].as_str().unwrap();
            assert!(
                ip.starts_with("10.88."),
                "{service} task has its own address: {ip}"
            );
        }
    }
    let addr = format!("127.0.0.1:{port}");
    for (path, name) in [("/", "frontend"), ("/api/items", "api")] {
        let body = eventually(
            &format!("{path} answers through the proxy"),
            Duration::from_secs(30),
            || {
                http_get(&addr, path)
                    .ok()
                    .filter(|(s, _)| *s == 200)
                    .map(|(_, b)| b)
            },
        );
        let v: serde_json::Value = serde_json::from_str(body.trim()).unwrap();
        assert_eq!(v["name"], name, "{body}");
        // The demo app is its container's init (pid 1 in its own pid namespace).
        assert_eq!(v["pid"], 1, "{body}");
        // A task of that service (a replacement, if one was replaced meanwhile).
        let listed = c.cli_json(&["tasks", name]);
        let ids: Vec<String> = listed["tasks"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| short(&t["taskArn"]))
            .collect();
        assert!(
            ids.iter().any(|t| v["task"] == t.as_str()),
            "{body} comes from one of {ids:?}"
        );
    }
}
