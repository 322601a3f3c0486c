//! End-to-end check of the ELBv2 query protocol with the real AWS CLI (`aws elbv2 ...`) against a
//! throwaway HTTP server on 127.0.0.1 that routes POST bodies to `handle_elbv2`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use berth_api_aws::elbv2::handle_elbv2;
use berth_elb::ElbState;
use berth_model::Arns;
use serde_json::Value;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Most requests the server answers before its thread ends (keeps the loop bounded).
const MAX_REQUESTS: usize = 500;

fn serve_one(stream: TcpStream, state: &Mutex<ElbState>, n: usize) -> std::io::Result<()> {
    stream.set_read_timeout(Some(Duration::from_secs(30)))?;
    let mut reader = BufReader::new(stream.try_clone()?);
    let mut request_line = String::new();
    reader.read_line(&mut request_line)?;
    let mut content_length = 0usize;
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line)? == 0 || line == "\r\n" {
            break;
        }
        if let Some((name, value)) = line.split_once(':') {
            if name.eq_ignore_ascii_case("content-length") {
                content_length = value.trim().parse().unwrap_or(0);
            }
        }
    }
    let mut body = vec![0u8; content_length];
    reader.read_exact(&mut body)?;
    let is_query = body.starts_with(b"Action=") || body.windows(8).any(|w| w == b"&Action=");
    let (status, text) = if request_line.starts_with("POST ") && is_query {
        let mut st = state.lock().unwrap();
        let (resp, _mutated) = handle_elbv2(
            &mut st,
            &Arns::default(),
            &body,
            &format!("req-{n}"),
            1_790_000_000.5,
        );
        (resp.status, resp.body)
    } else {
        (404, String::from("not an ELBv2 request"))
    };
    let mut out = stream;
    write!(
        out,
        "HTTP/1.1 {status} {}\r\nContent-Type: text/xml\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{text}",
        if status == 200 { "OK" } else { "Bad Request" },
        text.len()
    )?;
    out.flush()
}

/// Starts the server; returns its endpoint URL.
fn start_server() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let state = Arc::new(Mutex::new(ElbState::default()));
    std::thread::spawn(move || {
        for (n, stream) in listener.incoming().take(MAX_REQUESTS).enumerate() {
            if let Ok(stream) = stream {
                let _ = serve_one(stream, &state, n);
            }
        }
    });
    format!("http://{addr}")
}

struct Aws {
    endpoint: String,
}

impl Aws {
    /// Runs `aws elbv2 <args>`; Ok(parsed JSON stdout) or Err(stderr).
    fn run(&self, args: &[&str]) -> Result<Value, String> {
        let out = Command::new("aws")
            .arg("elbv2")
            .args(args)
            .args([
                "--endpoint-url",
                &self.endpoint,
                "--output",
                "json",
                "--region",
                "us-east-1",
            ])
            .env("AWS_ACCESS_KEY_ID", "test")
            .env("AWS_SECRET_ACCESS_KEY", "test")
            .env("AWS_DEFAULT_REGION", "us-east-1")
            .env("AWS_CONFIG_FILE", "/nonexistent/berth-test-config")
            .env(
                "AWS_SHARED_CREDENTIALS_FILE",
                "/nonexistent/berth-test-credentials",
            )
            .env("AWS_EC2_METADATA_DISABLED", "true")
            .env("AWS_MAX_ATTEMPTS", "1")
            .env("NO_PROXY", "127.0.0.1")
            .env("no_proxy", "127.0.0.1")
            .env_remove("AWS_PROFILE")
            .output()
            .expect("running aws");
        let stdout = String::from_utf8_lossy(&out.stdout).to_string();
        let stderr = String::from_utf8_lossy(&out.stderr).to_string();
        if !out.status.success() {
            return Err(stderr);
        }
        if stdout.trim().is_empty() {
            return Ok(Value::Null);
        }
        serde_json::from_str(&stdout).map_err(|e| format!("aws printed non-JSON ({e}): {stdout}"))
    }

    fn ok(&self, args: &[&str]) -> Value {
        self.run(args)
            .unwrap_or_else(|stderr| panic!("aws elbv2 {args:?} failed: {stderr}"))
    }

    fn fails(&self, args: &[&str], code: &str) -> String {
        match self.run(args) {
            Ok(v) => panic!("aws elbv2 {args:?} should fail with {code}, printed {v}"),
            Err(stderr) => {
                assert!(stderr.contains(code), "expected {code} in: {stderr}");
                stderr
            }
        }
    }
}

fn require_aws_cli() {
    match Command::new("aws").arg("--version").output() {
        Ok(out) if out.status.success() => {}
        Ok(out) => panic!("`aws --version` failed: {}", String::from_utf8_lossy(&out.stderr)),
        Err(e) => panic!(
            "this test needs the AWS CLI (`aws`) on PATH (install awscli, e.g. `pip install awscli`); running it failed: {e}"
        ),
    }
}

fn s(v: &Value) -> String {
    v.as_str()
        .unwrap_or_else(|| panic!("expected a string, found {v}"))
        .to_string()
}

#[test]
fn aws_cli_drives_the_elbv2_api() {
    require_aws_cli();
    let aws = Aws {
        endpoint: start_server(),
    };

    // Load balancer.
    let out = aws.ok(&[
        "create-load-balancer",
        "--name",
        "web",
        "--subnets",
        "subnet-a",
        "subnet-b",
        "--tags",
        "Key=env,Value=test",
    ]);
    let lb = &out["LoadBalancers"][0];
    let lb_arn = s(&lb["LoadBalancerArn"]);
    assert!(
        lb_arn.starts_with(
            "arn:aws:elasticloadbalancing:us-east-1:000000000000:loadbalancer/app/web/"
        ),
        "{lb_arn}"
    );
    assert_eq!(lb["State"]["Code"], "active");
    assert_eq!(lb["Type"], "application");
    assert_eq!(lb["AvailabilityZones"][1]["SubnetId"], "subnet-b");
    assert!(
        s(&lb["CreatedTime"]).starts_with("2026-09-21T"),
        "{}",
        lb["CreatedTime"]
    );
    assert!(s(&lb["DNSName"]).ends_with(".us-east-1.elb.berth.localhost"));
    aws.fails(
        &[
            "create-load-balancer",
            "--name",
            "web",
            "--scheme",
            "internal",
        ],
        "DuplicateLoadBalancerName",
    );
    let bad = aws.fails(
        &["create-load-balancer", "--name", "bad_name!"],
        "ValidationError",
    );
    assert!(bad.contains("Name: a load balancer name"), "{bad}");

    // Target group.
    let out = aws.ok(&[
        "create-target-group",
        "--name",
        "app",
        "--protocol",
        "HTTP",
        "--port",
        "8080",
        "--vpc-id",
        "vpc-1",
        "--health-check-path",
        "/health",
        "--health-check-interval-seconds",
        "10",
        "--matcher",
        "HttpCode=200-299",
    ]);
    let tg = &out["TargetGroups"][0];
    let tg_arn = s(&tg["TargetGroupArn"]);
    assert_eq!(tg["HealthCheckPath"], "/health");
    assert_eq!(tg["HealthCheckIntervalSeconds"], 10);
    assert_eq!(tg["HealthyThresholdCount"], 5);
    assert_eq!(tg["Matcher"]["HttpCode"], "200-299");
    let out = aws.ok(&[
        "create-target-group",
        "--name",
        "canary",
        "--protocol",
        "HTTP",
        "--port",
        "8081",
    ]);
    let canary_arn = s(&out["TargetGroups"][0]["TargetGroupArn"]);

    // Listener and rules.
    let out = aws.ok(&[
        "create-listener",
        "--load-balancer-arn",
        &lb_arn,
        "--protocol",
        "HTTP",
        "--port",
        "18080",
        "--default-actions",
        &format!("Type=forward,TargetGroupArn={tg_arn}"),
    ]);
    let listener = &out["Listeners"][0];
    let listener_arn = s(&listener["ListenerArn"]);
    assert_eq!(listener["Port"], 18080);
    assert_eq!(
        listener["DefaultActions"][0]["ForwardConfig"]["TargetGroups"][0]["Weight"],
        1
    );
    aws.fails(
        &[
            "create-listener",
            "--load-balancer-arn",
            &lb_arn,
            "--protocol",
            "HTTP",
            "--port",
            "18080",
            "--default-actions",
            &format!("Type=forward,TargetGroupArn={tg_arn}"),
        ],
        "DuplicateListener",
    );

    let out = aws.ok(&[
        "create-rule",
        "--listener-arn",
        &listener_arn,
        "--priority",
        "10",
        "--conditions",
        "Field=path-pattern,Values='/api/*'",
        "--actions",
        &format!("Type=forward,TargetGroupArn={tg_arn}"),
    ]);
    let api_rule = s(&out["Rules"][0]["RuleArn"]);
    assert_eq!(out["Rules"][0]["Priority"], "10");
    assert_eq!(
        out["Rules"][0]["Conditions"][0]["PathPatternConfig"]["Values"][0],
        "/api/*"
    );

    let weighted = format!(
        r#"[{{"Type":"forward","ForwardConfig":{{"TargetGroups":[{{"TargetGroupArn":"{tg_arn}","Weight":90}},{{"TargetGroupArn":"{canary_arn}","Weight":10}}],"TargetGroupStickinessConfig":{{"Enabled":true,"DurationSeconds":60}}}}}}]"#
    );
    let conditions = r#"[{"Field":"http-header","HttpHeaderConfig":{"HttpHeaderName":"X-Env","Values":["blue"]}},{"Field":"query-string","QueryStringConfig":{"Values":[{"Key":"v","Value":"2"}]}}]"#;
    let out = aws.ok(&[
        "create-rule",
        "--listener-arn",
        &listener_arn,
        "--priority",
        "20",
        "--conditions",
        conditions,
        "--actions",
        &weighted,
    ]);
    let header_rule = &out["Rules"][0];
    let header_rule_arn = s(&header_rule["RuleArn"]);
    assert_eq!(
        header_rule["Conditions"][0]["HttpHeaderConfig"]["HttpHeaderName"],
        "X-Env"
    );
    assert_eq!(
        header_rule["Conditions"][1]["QueryStringConfig"]["Values"][0]["Key"],
        "v"
    );
    assert_eq!(
        header_rule["Actions"][0]["ForwardConfig"]["TargetGroups"][1]["Weight"],
        10
    );
    assert_eq!(
        header_rule["Actions"][0]["ForwardConfig"]["TargetGroupStickinessConfig"]["Enabled"],
        true
    );

    aws.fails(
        &[
            "create-rule",
            "--listener-arn",
            &listener_arn,
            "--priority",
            "10",
            "--conditions",
            "Field=path-pattern,Values=/x",
            "--actions",
            &format!("Type=forward,TargetGroupArn={tg_arn}"),
        ],
        "PriorityInUse",
    );
    let fixed = r#"[{"Type":"fixed-response","FixedResponseConfig":{"StatusCode":"404","ContentType":"text/plain","MessageBody":"gone"}}]"#;
    let out = aws.ok(&[
        "create-rule",
        "--listener-arn",
        &listener_arn,
        "--priority",
        "30",
        "--conditions",
        "Field=host-header,Values=old.example.com",
        "--actions",
        fixed,
    ]);
    let fixed_rule = s(&out["Rules"][0]["RuleArn"]);
    assert_eq!(
        out["Rules"][0]["Actions"][0]["FixedResponseConfig"]["MessageBody"],
        "gone"
    );

    let rules = aws.ok(&["describe-rules", "--listener-arn", &listener_arn]);
    let rules = rules["Rules"].as_array().unwrap();
    let prios: Vec<String> = rules.iter().map(|r| s(&r["Priority"])).collect();
    assert_eq!(prios, ["10", "20", "30", "default"]);
    assert_eq!(rules[3]["IsDefault"], true);
    assert_eq!(rules[0]["IsDefault"], false);

    let out = aws.ok(&[
        "set-rule-priorities",
        "--rule-priorities",
        &format!("RuleArn={api_rule},Priority=25"),
        &format!("RuleArn={header_rule_arn},Priority=5"),
    ]);
    assert_eq!(out["Rules"].as_array().unwrap().len(), 2);
    let rules = aws.ok(&["describe-rules", "--listener-arn", &listener_arn]);
    let order: Vec<String> = rules["Rules"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| s(&r["RuleArn"]))
        .collect();
    assert_eq!(
        order[..3],
        [
            header_rule_arn.clone(),
            api_rule.clone(),
            fixed_rule.clone()
        ]
    );
    aws.fails(
        &[
            "set-rule-priorities",
            "--rule-priorities",
            &format!("RuleArn={api_rule},Priority=30"),
        ],
        "PriorityInUse",
    );

    // Targets and health.
    aws.ok(&[
        "register-targets",
        "--target-group-arn",
        &tg_arn,
        "--targets",
        "Id=127.0.0.1,Port=9000",
        "Id=127.0.0.2",
    ]);
    let health = aws.ok(&["describe-target-health", "--target-group-arn", &tg_arn]);
    let descs = health["TargetHealthDescriptions"].as_array().unwrap();
    assert_eq!(descs.len(), 2);
    assert_eq!(descs[0]["Target"]["Port"], 9000);
    assert_eq!(
        descs[1]["Target"]["Port"], 8080,
        "port defaults to the group's"
    );
    assert_eq!(descs[0]["TargetHealth"]["State"], "initial");
    assert_eq!(
        descs[0]["TargetHealth"]["Reason"],
        "Elb.RegistrationInProgress"
    );
    aws.ok(&[
        "deregister-targets",
        "--target-group-arn",
        &tg_arn,
        "--targets",
        "Id=127.0.0.1,Port=9000",
    ]);
    let health = aws.ok(&[
        "describe-target-health",
        "--target-group-arn",
        &tg_arn,
        "--targets",
        "Id=127.0.0.1,Port=9000",
    ]);
    assert_eq!(
        health["TargetHealthDescriptions"][0]["TargetHealth"]["State"],
        "draining"
    );
    aws.fails(
        &[
            "deregister-targets",
            "--target-group-arn",
            &tg_arn,
            "--targets",
            "Id=10.1.1.1,Port=1",
        ],
        "InvalidTarget",
    );

    // Attributes.
    let out = aws.ok(&[
        "modify-target-group-attributes",
        "--target-group-arn",
        &tg_arn,
        "--attributes",
        "Key=deregistration_delay.timeout_seconds,Value=5",
        "Key=stickiness.enabled,Value=true",
    ]);
    let attrs = out["Attributes"].as_array().unwrap();
    let get = |attrs: &[Value], key: &str| {
        attrs
            .iter()
            .find(|a| a["Key"] == key)
            .map(|a| s(&a["Value"]))
    };
    assert_eq!(
        get(attrs, "deregistration_delay.timeout_seconds").as_deref(),
        Some("5")
    );
    let out = aws.ok(&[
        "describe-target-group-attributes",
        "--target-group-arn",
        &tg_arn,
    ]);
    let attrs = out["Attributes"].as_array().unwrap();
    assert_eq!(get(attrs, "stickiness.enabled").as_deref(), Some("true"));
    assert_eq!(
        get(attrs, "load_balancing.algorithm.type").as_deref(),
        Some("round_robin")
    );
    let bad = aws.fails(
        &[
            "modify-target-group-attributes",
            "--target-group-arn",
            &tg_arn,
            "--attributes",
            "Key=slow_start.duration_seconds,Value=9999",
        ],
        "ValidationError",
    );
    assert!(bad.contains("Attributes[0].Value"), "{bad}");
    let out = aws.ok(&[
        "modify-load-balancer-attributes",
        "--load-balancer-arn",
        &lb_arn,
        "--attributes",
        "Key=idle_timeout.timeout_seconds,Value=30",
    ]);
    assert_eq!(
        get(
            out["Attributes"].as_array().unwrap(),
            "idle_timeout.timeout_seconds"
        )
        .as_deref(),
        Some("30")
    );

    // Describe, tags.
    let out = aws.ok(&["describe-load-balancers", "--names", "web"]);
    assert_eq!(out["LoadBalancers"][0]["LoadBalancerArn"], lb_arn.as_str());
    aws.fails(
        &["describe-load-balancers", "--names", "nope"],
        "LoadBalancerNotFound",
    );
    let out = aws.ok(&["describe-target-groups", "--load-balancer-arn", &lb_arn]);
    let tgs = out["TargetGroups"].as_array().unwrap();
    assert_eq!(tgs.len(), 2, "both groups are forwarded to");
    assert_eq!(tgs[0]["LoadBalancerArns"][0], lb_arn.as_str());
    let out = aws.ok(&["describe-listeners", "--load-balancer-arn", &lb_arn]);
    assert_eq!(out["Listeners"][0]["ListenerArn"], listener_arn.as_str());
    aws.ok(&[
        "add-tags",
        "--resource-arns",
        &tg_arn,
        "--tags",
        "Key=team,Value=web",
    ]);
    let out = aws.ok(&["describe-tags", "--resource-arns", &lb_arn, &tg_arn]);
    assert_eq!(out["TagDescriptions"][0]["Tags"][0]["Key"], "env");
    assert_eq!(out["TagDescriptions"][1]["Tags"][0]["Value"], "web");

    // Modify.
    let out = aws.ok(&[
        "modify-rule",
        "--rule-arn",
        &fixed_rule,
        "--conditions",
        "Field=path-pattern,Values=/old/*",
    ]);
    assert_eq!(out["Rules"][0]["Conditions"][0]["Values"][0], "/old/*");
    let out = aws.ok(&[
        "modify-listener",
        "--listener-arn",
        &listener_arn,
        "--port",
        "18081",
    ]);
    assert_eq!(out["Listeners"][0]["Port"], 18081);
    let out = aws.ok(&[
        "modify-target-group",
        "--target-group-arn",
        &tg_arn,
        "--health-check-path",
        "/ready",
    ]);
    assert_eq!(out["TargetGroups"][0]["HealthCheckPath"], "/ready");

    // Deletes.
    aws.fails(
        &["delete-target-group", "--target-group-arn", &tg_arn],
        "ResourceInUse",
    );
    aws.fails(
        &[
            "delete-rule",
            "--rule-arn",
            &s(&rules["Rules"][3]["RuleArn"]),
        ],
        "OperationNotPermitted",
    );
    aws.ok(&["delete-rule", "--rule-arn", &header_rule_arn]);
    aws.fails(
        &["delete-rule", "--rule-arn", &header_rule_arn],
        "RuleNotFound",
    );
    aws.ok(&["delete-target-group", "--target-group-arn", &canary_arn]);
    aws.ok(&["delete-listener", "--listener-arn", &listener_arn]);
    aws.fails(
        &["describe-rules", "--listener-arn", &listener_arn],
        "ListenerNotFound",
    );
    aws.ok(&["delete-target-group", "--target-group-arn", &tg_arn]);
    aws.ok(&["delete-load-balancer", "--load-balancer-arn", &lb_arn]);
    let out = aws.ok(&["describe-load-balancers"]);
    assert_eq!(out["LoadBalancers"].as_array().map(Vec::len), Some(0));
    let out = aws.ok(&["describe-target-groups"]);
    assert_eq!(out["TargetGroups"].as_array().map(Vec::len), Some(0));
}
