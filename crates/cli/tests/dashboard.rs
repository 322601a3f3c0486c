//! End-to-end test of the web dashboard in a real headless browser (Debian's `chromium`): a
//! cluster runs a service behind a load balancer, requests go through the listener so metrics
//! exist, and the dashboard's pages are loaded with chromium's `--dump-dom` (the DOM after the
//! page's scripts ran) and `--screenshot`. Charts mark themselves with `data-points="N"` once drawn;
//! `/dashboard/selftest` runs the page's checks of its own pure functions.

mod common;

use common::*;
use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn stack(port: u16) -> String {
    format!(
        r#"
name: dash
loadBalancers:
  dash:
    listeners:
      - port: {port}
        defaultAction: {{forward: web}}
targetGroups:
  web:
    port: 8080
    healthCheck: {{path: /health, intervalSeconds: 0.5, timeoutSeconds: 0.4, healthyThreshold: 2, unhealthyThreshold: 2}}
    attributes: {{deregistration_delay.timeout_seconds: "1"}}
services:
  web:
    desiredCount: 2
    loadBalancers: [{{targetGroup: web, containerName: app, containerPort: 8080}}]
    taskDefinition:
      containerDefinitions:
        - name: app
          image: process://berth
          command: ["demo-app"]
          environment: [{{name: DEMO_NAME, value: web}}]
          portMappings: [{{containerPort: 8080}}]
          stopTimeout: 2
"#
    )
}

/// The chromium executable, or a panic saying how to install it.
fn chromium() -> PathBuf {
    let found = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .flat_map(|dir| ["chromium", "chromium-browser"].map(|n| dir.join(n)))
            .find(|p| p.is_file())
    });
    found.unwrap_or_else(|| {
        panic!(
            "the dashboard test needs a headless browser, and `chromium` is not on PATH; \
             install Debian's: apt-get install -y chromium (scripts/test.sh does)"
        )
    })
}

/// Runs headless chromium on `url` with `extra` arguments (bounded to 90 s); returns stdout.
fn run_chromium(profile: &Path, url: &str, extra: &[&str]) -> String {
    let mut child = Command::new(chromium())
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--disable-dev-shm-usage",
            "--hide-scrollbars",
            &format!("--user-data-dir={}", profile.display()),
            "--virtual-time-budget=8000",
        ])
        .args(extra)
        .arg(url)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("starting chromium");
    // Read the pipes on threads so a full pipe never blocks chromium.
    let mut out = child.stdout.take().unwrap();
    let mut err = child.stderr.take().unwrap();
    let out = std::thread::spawn(move || {
        let mut s = String::new();
        std::io::Read::read_to_string(&mut out, &mut s).ok();
        s
    });
    let err = std::thread::spawn(move || {
        let mut s = String::new();
        std::io::Read::read_to_string(&mut err, &mut s).ok();
        s
    });
    let start = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if start.elapsed() > Duration::from_secs(90) {
            let _ = child.kill();
            let _ = child.wait();
            panic!("chromium on {url} did not finish within 90 s");
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let (out, err) = (out.join().unwrap(), err.join().unwrap());
    assert!(
        status.success(),
        "chromium on {url} failed ({status}):\n{err}"
    );
    out
}

/// The DOM of `path` once the page's scripts have run for a few (virtual) seconds.
fn dump_dom(c: &Cluster, profile: &Path, path: &str) -> String {
    let dom = run_chromium(
        profile,
        // The token in the fragment signs the page in (the fragment never reaches the server).
        &format!("http://{}{path}#token={}", c.addr, c.token),
        &["--dump-dom"],
    );
    assert!(
        dom.contains("<main id=\"main\">"),
        "{path}: not the dashboard page:\n{dom}"
    );
    dom
}

/// The opening tag of the first element whose tag text contains `marker`.
fn tag_with<'a>(dom: &'a str, marker: &str) -> Option<&'a str> {
    let at = dom.find(marker)?;
    let start = dom[..at].rfind('<')?;
    let end = at + dom[at..].find('>')?;
    Some(&dom[start..=end])
}

/// An attribute's value in an opening tag.
fn attr(tag: &str, name: &str) -> Option<String> {
    let pat = format!(" {name}=\"");
    let rest = &tag[tag.find(&pat)? + pat.len()..];
    Some(rest[..rest.find('"')?].to_string())
}

/// The `data-points` a chart marked with `marker` drew (panics with the DOM when absent).
fn points(dom: &str, marker: &str) -> u64 {
    let tag =
        tag_with(dom, marker).unwrap_or_else(|| panic!("no element with {marker} in:\n{dom}"));
    attr(tag, "data-points")
        .unwrap_or_else(|| panic!("{marker}: the chart was never drawn: {tag}\n{dom}"))
        .parse()
        .unwrap()
}

fn cloudwatch(c: &Cluster, op: &str, body: Value) -> Value {
    c.api_client()
        .post(
            &c.addr,
            &format!("GraniteServiceVersion20100801.{op}"),
            body,
        )
        .unwrap_or_else(|e| panic!("CloudWatch {op}: {e}"))
}

#[test]
fn the_dashboard_shows_services_charts_and_dashboards_in_a_real_browser() {
    chromium(); // Fails first, and clearly, when the browser is missing.
    let c = Cluster::start(true);
    let port = free_port();
    let path = c.write_stack("berth.yaml", &stack(port));
    let out = c.cli(&["apply", path.to_str().unwrap()]);
    assert!(
        out.status.success(),
        "apply failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    c.wait_running("web", 2, false);
    let listener = format!("127.0.0.1:{port}");
    eventually("the listener answers 200", Duration::from_secs(30), || {
        matches!(http_get(&listener, "/"), Ok((200, _))).then_some(())
    });

    // Traffic with some errors, so the latency, traffic and error charts have data.
    for i in 0..150 {
        let path = if i % 10 == 0 { "/?status=500" } else { "/shop" };
        let _ = http_get(&listener, path);
    }
    eventually(
        "the proxy's metrics reached the server",
        Duration::from_secs(20),
        || {
            let m = cloudwatch(
                &c,
                "ListMetrics",
                json!({"Namespace": "AWS/ApplicationELB", "MetricName": "RequestCount",
                       "Dimensions": [{"Name": "TargetGroup"}, {"Name": "LoadBalancer"}]}),
            );
            (!m["Metrics"].as_array()?.is_empty()).then_some(())
        },
    );
    let body = json!({"widgets": [
        {"type": "text", "x": 0, "y": 0, "width": 24, "height": 2,
         "properties": {"markdown": "# Shop operations\nThe **web** service."}},
        {"type": "metric", "x": 0, "y": 2, "width": 12, "height": 6,
         "properties": {"title": "Web tasks", "period": 5, "stat": "Average",
                        "metrics": [["ECS/ContainerInsights", "RunningTaskCount", "ClusterName", "default", "ServiceName", "web"],
                                    [".", "DesiredTaskCount", ".", ".", ".", "."]]}},
        {"type": "metric", "x": 12, "y": 2, "width": 12, "height": 6,
         "properties": {"title": "CPU", "period": 5,
                        "metrics": [["AWS/ECS", "CPUUtilization", "ClusterName", "default", "ServiceName", "web", {"stat": "Maximum"}]]}}
    ]});
    cloudwatch(
        &c,
        "PutDashboard",
        json!({"DashboardName": "shop-ops", "DashboardBody": body.to_string()}),
    );
    // A few seconds of service metrics (recorded every second) before looking.
    std::thread::sleep(Duration::from_secs(3));

    let profile = tempfile::tempdir().unwrap();
    // The page's own checks of its pure functions (metric rows, rates, periods, markdown).
    let selftest = dump_dom(&c, profile.path(), "/dashboard/selftest");
    let section = tag_with(&selftest, "id=\"selftest\"").expect("no self-test section");
    assert!(
        attr(section, "data-checks")
            .unwrap()
            .parse::<u32>()
            .unwrap()
            >= 10
    );
    assert_eq!(
        attr(section, "data-failures").as_deref(),
        Some("0"),
        "{selftest}"
    );

    let overview = dump_dom(&c, profile.path(), "/dashboard/");
    assert!(
        overview.contains("data-service=\"web\""),
        "no web row:\n{overview}"
    );
    assert!(
        overview.contains(">2/2<"),
        "the web row shows 2/2 tasks:\n{overview}"
    );
    assert!(
        points(&overview, "class=\"spark\"") > 0,
        "the traffic sparkline has no points"
    );

    let service = dump_dom(&c, profile.path(), "/dashboard/services/web");
    for chart in ["traffic", "latency", "errors", "tasks"] {
        let n = points(&service, &format!("data-chart=\"{chart}\""));
        assert!(n > 0, "the {chart} chart drew no points");
    }
    assert!(
        service.contains("id=\"scaling-activities\""),
        "no place for scaling activities"
    );
    assert!(
        service.contains("data-task="),
        "no tasks listed:\n{service}"
    );
    assert!(
        !service.contains("Could not load"),
        "an error is shown:\n{service}"
    );

    let dashboards = dump_dom(&c, profile.path(), "/dashboard/dashboards");
    assert!(
        dashboards.contains(">shop-ops<"),
        "shop-ops is not listed:\n{dashboards}"
    );
    let dashboard = dump_dom(&c, profile.path(), "/dashboard/dashboards/shop-ops");
    assert!(
        dashboard.contains("Shop operations"),
        "the text widget is missing"
    );
    let widget = tag_with(&dashboard, "data-widget=\"1\"").unwrap();
    assert_eq!(attr(widget, "data-type").as_deref(), Some("metric"));
    let tasks_chart = &dashboard[dashboard.find("data-widget=\"1\"").unwrap()..];
    let n = points(tasks_chart, "class=\"chart\"");
    assert!(n > 0, "the dashboard's task chart drew no points");

    let shot = profile.path().join("service.png");
    run_chromium(
        profile.path(),
        &format!("http://{}/dashboard/services/web#token={}", c.addr, c.token),
        &[
            &format!("--screenshot={}", shot.display()),
            "--window-size=1400,1000",
        ],
    );
    let png = std::fs::read(&shot).expect("chromium wrote no screenshot");
    assert!(png.starts_with(b"\x89PNG\r\n\x1a\n"), "not a PNG");
    assert!(
        png.len() > 30_000,
        "the screenshot is nearly empty ({} bytes)",
        png.len()
    );
    if let Ok(dir) = std::env::var("BERTH_DASHBOARD_SCREENSHOT_DIR") {
        std::fs::copy(&shot, Path::new(&dir).join("dashboard-service.png")).unwrap();
    }
}
