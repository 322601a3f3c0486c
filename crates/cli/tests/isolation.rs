//! End-to-end: task isolation. Tasks of one service reach another service's tasks only on the
//! ports its `ingress` rules open; the host still reaches every task; the agent's nftables rules
//! follow the tasks (real runc containers, real `nft`).

mod common;

use common::*;
use serde_json::Value;
use std::process::Command;
use std::time::Duration;

fn available() -> bool {
    let root = nix::unistd::Uid::effective().is_root();
    let ok = |cmd: &str, args: &[&str]| {
        Command::new(cmd)
            .args(args)
            .output()
            .is_ok_and(|o| o.status.success())
    };
    let runc = ok("runc", &["--version"]);
    let nft = ok("nft", &["list", "ruleset"]);
    let nsenter = ok("nsenter", &["--version"]) && ok("curl", &["--version"]);
    let busybox = std::path::Path::new("/bin/busybox").exists();
    let all = root && runc && nft && nsenter && busybox;
    if !all {
        eprintln!("SKIPPED: task isolation tests need root, runc, nft, nsenter, curl and /bin/busybox (root={root} runc={runc} nft={nft} nsenter={nsenter} busybox={busybox})");
    }
    all
}

/// Builds a busybox image serving /www and pushes it to the cluster's registry.
fn stack(image: &str, [a_count, b_count, c_count]: [u32; 3]) -> String {
    let service = |name: &str, count: u32, extra: &str| {
        format!(
            r#"  {name}:
    desiredCount: {count}
{extra}    taskDefinition:
      cpu: "256"
      memory: "64"
      containerDefinitions:
        - name: web
          image: {image}
          command: ["sh", "-c", "httpd -p 9090 -h /www && exec httpd -f -p 8080 -h /www"]
          portMappings: [{{containerPort: 8080}}, {{containerPort: 9090}}]
          stopTimeout: 1
"#
        )
    };
    format!(
        "name: iso\nservices:\n{}{}{}",
        service("a", a_count, ""),
        service(
            "b",
            b_count,
            "    ingress:\n      - from: a\n        ports: [8080]\n"
        ),
        service("c", c_count, ""),
    )
}

fn apply(c: &Cluster, text: &str) {
    let path = c.write_stack("berth.yaml", text);
    let out = c.cli(&["apply", path.to_str().unwrap()]);
    assert!(
        out.status.success(),
        "apply: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// (task id, task ip, container pid, veth) of the one running task of `service`.
fn task_of(c: &Cluster, service: &str) -> (String, String, i32, String) {
    let t: Value = c.wait_running(service, 1, false).remove(0);
    let id = short(&t["taskArn"]);
    let ip = t["containers"][0]["networkBindings"][0]["bindIP"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(ip.starts_with("10.88."), "{ip}");
    let pid = eventually("the container's pid", Duration::from_secs(10), || {
        c.task_pid(&id, "web")
    });
    let net: Value = serde_json::from_slice(
        &std::fs::read(
            c.state_dir()
                .join("agent/tasks")
                .join(&id)
                .join("network.json"),
        )
        .unwrap(),
    )
    .unwrap();
    let veth = net["veth"].as_str().unwrap().to_string();
    (id, ip, pid, veth)
}

/// Whether a GET (the host's curl) from inside the network namespace of `pid` gets the page.
fn reaches_from(pid: i32, ip: &str, port: u16) -> bool {
    let out = Command::new("nsenter")
        .args(["-t", &pid.to_string(), "-n", "curl", "-s", "-m", "3"])
        .arg(format!("http://{ip}:{port}/index.html"))
        .output()
        .unwrap();
    out.status.success() && String::from_utf8_lossy(&out.stdout).contains("reached")
}

fn reaches_from_host(ip: &str, port: u16) -> bool {
    http_get(&format!("{ip}:{port}"), "/index.html")
        .is_ok_and(|(s, b)| s == 200 && b.contains("reached"))
}

fn bridge_ruleset() -> String {
    let out = Command::new("nft")
        .args(["list", "ruleset", "bridge"])
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn a_task_cannot_reach_a_port_its_rules_do_not_open() {
    if !available() {
        return;
    }
    let c = Cluster::start(false);
    let image = build_httpd_image(&c, &[("index.html", "reached\n")]);
    apply(&c, &stack(&image, [1, 1, 1]));
    let (_, a_ip, a_pid, a_veth) = task_of(&c, "a");
    let (_, b_ip, _, b_veth) = task_of(&c, "b");
    let (_, _, c_pid, c_veth) = task_of(&c, "c");

    // The host (and so the proxy) reaches b on both ports, once both servers listen.
    eventually(
        "the host reaches b:8080 and b:9090",
        Duration::from_secs(20),
        || (reaches_from_host(&b_ip, 8080) && reaches_from_host(&b_ip, 9090)).then_some(()),
    );
    assert!(reaches_from_host(&a_ip, 9090), "the host reaches a");

    // a may reach b on 8080 only.
    assert!(
        reaches_from(a_pid, &b_ip, 8080),
        "a reaches b:8080 (opened); rules:
{}",
        bridge_ruleset()
    );
    assert!(!reaches_from(a_pid, &b_ip, 9090), "a must not reach b:9090");
    // c has no rule on b; nobody opened a to b or c.
    assert!(!reaches_from(c_pid, &b_ip, 8080), "c must not reach b:8080");
    assert!(!reaches_from(c_pid, &b_ip, 9090), "c must not reach b:9090");
    assert!(!reaches_from(c_pid, &a_ip, 8080), "c must not reach a");

    let rules = bridge_ruleset();
    for veth in [&a_veth, &b_veth, &c_veth] {
        assert!(rules.contains(veth.as_str()), "{veth} filtered:\n{rules}");
    }

    // Opening 9090 too (an update of the running service) lets a through at once.
    let opened = stack(&image, [1, 1, 1]).replace("ports: [8080]", "ports: [8080, \"9090-9091\"]");
    apply(&c, &opened);
    eventually(
        "a reaches b:9090 once opened",
        Duration::from_secs(20),
        || reaches_from(a_pid, &b_ip, 9090).then_some(()),
    );
    assert!(
        !reaches_from(c_pid, &b_ip, 9090),
        "c still must not reach b"
    );

    // b's tasks stop: their rules go.
    apply(
        &c,
        &stack(&image, [1, 0, 1]).replace("ports: [8080]", "ports: [8080, \"9090-9091\"]"),
    );
    eventually("b's rules are gone", Duration::from_secs(30), || {
        let rules = bridge_ruleset();
        (!rules.contains(b_veth.as_str()) && rules.contains(a_veth.as_str())).then_some(())
    });

    // No task left: the agent's table is gone.
    apply(&c, &stack(&image, [0, 0, 0]));
    eventually(
        "the table is gone with the last task",
        Duration::from_secs(30),
        || {
            let rules = bridge_ruleset();
            (!rules.contains(a_veth.as_str()) && !rules.contains(c_veth.as_str())).then_some(())
        },
    );
}
