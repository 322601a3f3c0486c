//! Test harness: a real single-node cluster (server, agent, proxy as separate `berth` processes)
//! on loopback with its own state directory, driven through the API and the CLI.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

pub const BERTH: &str = env!("CARGO_BIN_EXE_berth");

/// A free loopback port (bound and released).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Polls `f` until it returns Some or the deadline passes (then panics with `what`).
pub fn eventually<T>(what: &str, timeout: Duration, mut f: impl FnMut() -> Option<T>) -> T {
    let start = Instant::now();
    loop {
        if let Some(v) = f() {
            return v;
        }
        if start.elapsed() > timeout {
            panic!("timed out after {timeout:?} waiting for: {what}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A fresh admin token for a test cluster (the server creates the admin user with it).
pub fn new_token() -> String {
    use std::hash::{BuildHasher, Hasher};
    let mut s = String::from("berth_test");
    for i in 0..3u64 {
        let mut h = std::collections::hash_map::RandomState::new().build_hasher();
        h.write_u64(i);
        s.push_str(&format!("{:016x}", h.finish()));
    }
    s
}

pub struct Cluster {
    pub dir: tempfile::TempDir,
    pub addr: String,
    /// The admin's bearer token.
    pub token: String,
    /// An admin access key pair for the AWS CLI, made on first use.
    keys: std::sync::OnceLock<(String, String)>,
    pub server: Option<Child>,
    pub agent: Option<Child>,
    pub proxy: Option<Child>,
    /// With HTTPS on the API: the directory holding `ca.pem`, `localhost.pem` and
    /// `localhost-key.pem` (made by `berth cert`).
    pub tls: Option<PathBuf>,
}

impl Cluster {
    /// Starts server and agent (and the proxy when `proxy`).
    pub fn start(proxy: bool) -> Cluster {
        Cluster::start_with(proxy, false)
    }

    /// As `start`, with the API (and so the registry) on HTTPS from a certificate of a local CA
    /// (`berth cert`), which the agent, the proxy and the CLI trust through BERTH_CA_CERT.
    pub fn start_tls(proxy: bool) -> Cluster {
        Cluster::start_with(proxy, true)
    }

    fn start_with(proxy: bool, tls: bool) -> Cluster {
        let dir = tempfile::tempdir().unwrap();
        let addr = format!("127.0.0.1:{}", free_port());
        let tls = tls.then(|| {
            let certs = dir.path().join("certs");
            let p = certs.to_str().unwrap();
            for args in [
                vec!["cert", "ca", "--out", p],
                vec![
                    "cert",
                    "issue",
                    "--ca",
                    p,
                    "--name",
                    "localhost",
                    "--name",
                    "127.0.0.1",
                    "--out",
                    p,
                ],
            ] {
                let out = Command::new(BERTH).args(&args).output().unwrap();
                assert!(
                    out.status.success(),
                    "berth {args:?}: {}",
                    String::from_utf8_lossy(&out.stderr)
                );
            }
            certs
        });
        let mut c = Cluster {
            dir,
            addr,
            token: new_token(),
            keys: std::sync::OnceLock::new(),
            server: None,
            agent: None,
            proxy: None,
            tls,
        };
        c.start_server();
        c.agent = Some(c.spawn("agent"));
        if proxy {
            c.proxy = Some(c.spawn("proxy"));
        }
        c
    }

    pub fn state_dir(&self) -> PathBuf {
        self.dir.path().to_path_buf()
    }

    pub fn spawn(&self, component: &str) -> Child {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.path().join(format!("{component}.test.log")))
            .unwrap();
        let mut cmd = Command::new(BERTH);
        cmd.arg(component)
            .env("BERTH_STATE_DIR", self.dir.path())
            .env("BERTH_API_ADDR", self.api_url())
            .env("BERTH_BOOTSTRAP_TOKEN", &self.token)
            .env("BERTH_CONFIG_DIR", self.dir.path().join("client"))
            .env_remove("BERTH_TOKEN")
            .env("BERTH_LOG", "info")
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log);
        self.tls_env(&mut cmd);
        if let Some(certs) = &self.tls {
            cmd.env("BERTH_TLS_CERT", certs.join("localhost.pem"))
                .env("BERTH_TLS_KEY", certs.join("localhost-key.pem"));
        }
        cmd.spawn().unwrap()
    }

    /// The API's base URL (`https://` with `start_tls`).
    pub fn api_url(&self) -> String {
        let scheme = if self.tls.is_some() { "https" } else { "http" };
        format!("{scheme}://{}", self.addr)
    }

    fn tls_env(&self, cmd: &mut Command) {
        match &self.tls {
            Some(certs) => cmd.env("BERTH_CA_CERT", certs.join("ca.pem")),
            None => cmd.env_remove("BERTH_CA_CERT"),
        };
    }

    pub fn start_server(&mut self) {
        self.server = Some(self.spawn("server"));
        if self.tls.is_some() {
            eventually("server answers over https", Duration::from_secs(20), || {
                self.cli(&["services"]).status.success().then_some(())
            });
            return;
        }
        let url = format!("http://{}/healthz", self.addr);
        eventually("server healthy", Duration::from_secs(20), || {
            let out = Command::new(BERTH).args(["probe", &url]).output().ok()?;
            out.status.success().then_some(())
        });
    }

    /// kill -9 of the server.
    pub fn kill_server(&mut self) {
        if let Some(mut s) = self.server.take() {
            s.kill().unwrap();
            s.wait().unwrap();
        }
    }

    /// Runs the CLI against this cluster.
    pub fn cli(&self, args: &[&str]) -> Output {
        self.cli_command(args).output().unwrap()
    }

    /// The CLI command for this cluster, with the admin's token.
    pub fn cli_command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(BERTH);
        cmd.args(args)
            .env("BERTH_STATE_DIR", self.dir.path())
            .env("BERTH_API_ADDR", self.api_url())
            .env("BERTH_TOKEN", &self.token)
            .env("BERTH_CONFIG_DIR", self.dir.path().join("client"));
        self.tls_env(&mut cmd);
        cmd
    }

    /// A raw awsJson client with the admin's token.
    pub fn api_client(&self) -> reqwest::Blocking {
        reqwest::Blocking {
            token: Some(self.token.clone()),
        }
    }

    /// The admin's access key pair (created on first use with `berth auth create-key`).
    pub fn access_key(&self) -> (String, String) {
        self.keys
            .get_or_init(|| {
                let v = self.cli_json(&["auth", "create-key", "admin"]);
                (
                    v["accessKeyId"].as_str().unwrap().to_string(),
                    v["secretAccessKey"].as_str().unwrap().to_string(),
                )
            })
            .clone()
    }

    /// Environment for the AWS CLI signing with the admin's access key.
    pub fn aws_env(&self) -> Vec<(String, String)> {
        let (id, secret) = self.access_key();
        vec![
            ("AWS_ACCESS_KEY_ID".into(), id),
            ("AWS_SECRET_ACCESS_KEY".into(), secret),
            ("AWS_CONFIG_FILE".into(), "/dev/null".into()),
            ("AWS_SHARED_CREDENTIALS_FILE".into(), "/dev/null".into()),
            ("AWS_PAGER".into(), String::new()),
        ]
    }

    /// Runs `aws ARGS --endpoint-url ... --region us-east-1 --output json` with the admin's key.
    pub fn aws(&self, args: &[&str]) -> Result<Value, String> {
        self.aws_as(&self.aws_env(), args)
    }

    /// [`Cluster::aws`] that must succeed.
    pub fn aws_ok(&self, args: &[&str]) -> Value {
        self.aws(args)
            .unwrap_or_else(|e| panic!("aws {args:?}: {e}"))
    }

    /// Like [`Cluster::aws`] with other credentials (`aws_env`-shaped).
    pub fn aws_as(&self, env: &[(String, String)], args: &[&str]) -> Result<Value, String> {
        let out = Command::new("aws")
            .args(args)
            .args([
                "--endpoint-url",
                &format!("http://{}", self.addr),
                "--region",
                "us-east-1",
                "--output",
                "json",
            ])
            .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .output()
            .expect("the AWS CLI (`aws`) must be installed: scripts/test.sh installs it");
        if out.status.success() {
            Ok(serde_json::from_slice(&out.stdout).unwrap_or(Value::Null))
        } else {
            Err(String::from_utf8_lossy(&out.stderr).to_string())
        }
    }

    /// Runs the CLI and parses its `--output json`.
    pub fn cli_json(&self, args: &[&str]) -> Value {
        let mut a = args.to_vec();
        a.extend(["--output", "json"]);
        let out = self.cli(&a);
        assert!(
            out.status.success(),
            "berth {args:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
            panic!(
                "berth {args:?}: not JSON ({e}): {}",
                String::from_utf8_lossy(&out.stdout)
            )
        })
    }

    /// Calls an ECS operation over the wire protocol.
    pub fn ecs(&self, op: &str, body: Value) -> Result<Value, Value> {
        let client = reqwest::Blocking {
            token: Some(self.token.clone()),
        };
        client.post(
            &self.addr,
            &format!("AmazonEC2ContainerServiceV20141113.{op}"),
            body,
        )
    }

    /// Writes a stack file into the state dir and returns its path.
    pub fn write_stack(&self, name: &str, text: &str) -> PathBuf {
        let p = self.dir.path().join(name);
        std::fs::write(&p, text).unwrap();
        p
    }

    /// Tasks of a service that are RUNNING (and HEALTHY when `healthy`).
    pub fn running_tasks(&self, service: &str, healthy: bool) -> Vec<Value> {
        let v = self.cli_json(&["tasks", service]);
        v["tasks"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|t| {
                t["lastStatus"] == "RUNNING" && (!healthy || t["healthStatus"] == "HEALTHY")
            })
            .cloned()
            .collect()
    }

    pub fn wait_running(&self, service: &str, n: usize, healthy: bool) -> Vec<Value> {
        eventually(
            &format!("{n} running tasks of {service}"),
            Duration::from_secs(30),
            || {
                let t = self.running_tasks(service, healthy);
                (t.len() == n).then_some(t)
            },
        )
    }

    /// The host pid of a task's container process, from the agent's state.
    pub fn task_pid(&self, task_id: &str, container: &str) -> Option<i32> {
        let p = self
            .dir
            .path()
            .join("agent/tasks")
            .join(task_id)
            .join(container)
            .join("child.pid");
        std::fs::read_to_string(p).ok()?.trim().parse().ok()
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        for c in [self.server.take(), self.agent.take(), self.proxy.take()]
            .into_iter()
            .flatten()
        {
            let mut c = c;
            let _ = c.kill();
            let _ = c.wait();
        }
        // Stop every task the agent started (their shims), so no test leaves processes behind.
        let _ = self.cli(&["down"]);
    }
}

/// Processes whose environment names this task id (what a stray process would show).
pub fn processes_of_task(task_id: &str) -> Vec<i32> {
    let mut out = Vec::new();
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = e.file_name().to_string_lossy().parse::<i32>() else {
            continue;
        };
        if let Ok(env) = std::fs::read(format!("/proc/{pid}/environ")) {
            let needle = format!("BERTH_TASK_ID={task_id}");
            if env.split(|b| *b == 0).any(|kv| kv == needle.as_bytes()) {
                out.push(pid);
            }
        }
    }
    out
}

pub fn alive(pid: i32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|s| {
        !s.rsplit(')')
            .next()
            .unwrap_or("")
            .trim_start()
            .starts_with('Z')
    })
}

pub fn short(arn: &Value) -> String {
    arn.as_str()
        .unwrap()
        .rsplit('/')
        .next()
        .unwrap()
        .to_string()
}

pub fn examples_dir() -> &'static Path {
    Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../../examples"))
}

/// A minimal blocking awsJson client over std::net (no extra dependencies in tests).
pub mod reqwest {
    use serde_json::Value;
    use std::io::{Read, Write};

    /// Sends `Authorization: Bearer <token>` when it has one.
    pub struct Blocking {
        pub token: Option<String>,
    }

    pub fn blocking_client() -> Blocking {
        Blocking { token: None }
    }

    impl Blocking {
        pub fn post(&self, addr: &str, target: &str, body: Value) -> Result<Value, Value> {
            let body = body.to_string();
            let mut s = std::net::TcpStream::connect(addr).unwrap();
            let auth = self
                .token
                .as_ref()
                .map(|t| format!("Authorization: Bearer {t}\r\n"))
                .unwrap_or_default();
            write!(
                s,
                "POST / HTTP/1.1\r\nHost: {addr}\r\nX-Amz-Target: {target}\r\nContent-Type: application/x-amz-json-1.1\r\n{auth}Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            )
            .unwrap();
            let mut resp = String::new();
            s.read_to_string(&mut resp).unwrap();
            let (head, body) = resp.split_once("\r\n\r\n").unwrap();
            let status: u16 = head.split(' ').nth(1).unwrap().parse().unwrap();
            let v: Value = serde_json::from_str(body).unwrap_or(Value::String(body.to_string()));
            if status == 200 {
                Ok(v)
            } else {
                Err(v)
            }
        }
    }
}

/// One HTTP/1.1 GET over a fresh connection: (status, body).
pub fn http_get(addr: &str, path: &str) -> std::io::Result<(u16, String)> {
    http_get_with(addr, path, "")
}

/// [`http_get`] with a bearer token (for the server's API).
pub fn http_get_auth(addr: &str, path: &str, token: &str) -> std::io::Result<(u16, String)> {
    http_get_with(addr, path, &format!("Authorization: Bearer {token}\r\n"))
}

fn http_get_with(addr: &str, path: &str, headers: &str) -> std::io::Result<(u16, String)> {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(addr)?;
    s.set_read_timeout(Some(Duration::from_secs(10)))?;
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\n{headers}Connection: close\r\n\r\n"
    )?;
    let mut resp = Vec::new();
    s.read_to_end(&mut resp)?;
    let resp = String::from_utf8_lossy(&resp).to_string();
    let (head, body) = resp
        .split_once("\r\n\r\n")
        .ok_or_else(|| std::io::Error::other("no header end"))?;
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| std::io::Error::other("bad status line"))?;
    // Chunked bodies: keep the raw text; tests look for substrings.
    Ok((status, body.to_string()))
}

/// A bounded steady load on a URL from a few threads; counts what came back.
pub struct Load {
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    threads: Vec<std::thread::JoinHandle<LoadResult>>,
}

/// What a load saw.
#[derive(Debug, Default, Clone)]
pub struct LoadResult {
    pub ok: u64,
    /// (status or 0 for a connection error, detail)
    pub failures: Vec<(u16, String)>,
    /// Bodies' `"version":"..."` values seen, in order (sampled).
    pub versions: Vec<String>,
}

impl Load {
    /// Starts `threads` threads sending GETs to `addr` `path` until stopped, at most `max_per_thread`
    /// requests each and for at most `max_time`.
    pub fn start(
        addr: &str,
        path: &str,
        threads: usize,
        max_per_thread: u64,
        max_time: Duration,
    ) -> Load {
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let handles = (0..threads)
            .map(|_| {
                let stop = stop.clone();
                let addr = addr.to_string();
                let path = path.to_string();
                std::thread::spawn(move || {
                    let start = Instant::now();
                    let mut r = LoadResult::default();
                    for _ in 0..max_per_thread {
                        if stop.load(std::sync::atomic::Ordering::Relaxed)
                            || start.elapsed() > max_time
                        {
                            break;
                        }
                        match http_get(&addr, &path) {
                            Ok((200, body)) => {
                                r.ok += 1;
                                if let Some(v) = body
                                    .split("\"version\":\"")
                                    .nth(1)
                                    .and_then(|s| s.split('"').next())
                                {
                                    if r.versions.last().map(String::as_str) != Some(v) {
                                        r.versions.push(v.to_string());
                                    }
                                }
                            }
                            Ok((status, body)) => {
                                r.failures.push((status, body.chars().take(200).collect()))
                            }
                            Err(e) => r.failures.push((0, e.to_string())),
                        }
                        std::thread::sleep(Duration::from_millis(2));
                    }
                    r
                })
            })
            .collect();
        Load {
            stop,
            threads: handles,
        }
    }

    /// Stops the load and adds up what every thread saw.
    pub fn finish(self) -> LoadResult {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
        let mut total = LoadResult::default();
        for t in self.threads {
            let r = t.join().unwrap();
            total.ok += r.ok;
            total.failures.extend(r.failures);
            for v in r.versions {
                if total.versions.last() != Some(&v) {
                    total.versions.push(v);
                }
            }
        }
        total
    }
}

/// A bounded load at a fixed total rate: `threads` threads, each sending GETs to `addr` `path` on
/// its own schedule (`rate / threads` per second, catching up when behind) until stopped or
/// `max_time` passes. Unlike [`Load`], the rate does not depend on how fast answers come.
pub struct PacedLoad {
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    threads: Vec<std::thread::JoinHandle<LoadResult>>,
}

impl PacedLoad {
    pub fn start(addr: &str, path: &str, rate: f64, threads: usize, max_time: Duration) -> Self {
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let gap = Duration::from_secs_f64(threads as f64 / rate);
        let handles = (0..threads)
            .map(|i| {
                let (stop, addr, path) = (stop.clone(), addr.to_string(), path.to_string());
                std::thread::spawn(move || {
                    // Threads start spread over one gap, so requests arrive evenly.
                    let start = Instant::now() + gap.mul_f64(i as f64 / threads as f64);
                    let mut r = LoadResult::default();
                    let mut n = 0u32;
                    loop {
                        let due = start + gap * n;
                        if let Some(wait) = due.checked_duration_since(Instant::now()) {
                            std::thread::sleep(wait);
                        }
                        if stop.load(std::sync::atomic::Ordering::Relaxed)
                            || start.elapsed() > max_time
                        {
                            break;
                        }
                        n += 1;
                        match http_get(&addr, &path) {
                            Ok((200, _)) => r.ok += 1,
                            Ok((status, body)) => {
                                r.failures.push((status, body.chars().take(200).collect()))
                            }
                            Err(e) => r.failures.push((0, e.to_string())),
                        }
                    }
                    r
                })
            })
            .collect();
        PacedLoad {
            stop,
            threads: handles,
        }
    }

    /// Stops the load and adds up what every thread saw.
    pub fn finish(self) -> LoadResult {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
        let mut total = LoadResult::default();
        for t in self.threads {
            let r = t.join().unwrap();
            total.ok += r.ok;
            total.failures.extend(r.failures);
        }
        total
    }
}

/// The messages of a service's newest events.
pub fn event_messages(c: &Cluster, service: &str) -> Vec<String> {
    let events = c.cli_json(&["events", service, "--limit", "100"]);
    events["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|e| e["message"].as_str().map(str::to_string))
        .collect()
}

/// Whether `n` GETs in a row to `addr` answer 200 with `"version":"<version>"`.
pub fn serves_only(addr: &str, version: &str, n: usize) -> bool {
    let needle = format!("\"version\":\"{version}\"");
    (0..n).all(|_| {
        http_get(addr, "/")
            .map(|(s, b)| s == 200 && b.contains(&needle))
            .unwrap_or(false)
    })
}

/// Files under `dir` (recursively, links not followed) whose bytes contain `needle`.
pub fn files_containing(dir: &Path, needle: &str) -> Vec<String> {
    let mut hits = Vec::new();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return hits;
    };
    for e in entries.flatten() {
        let p = e.path();
        let Ok(meta) = std::fs::symlink_metadata(&p) else {
            continue;
        };
        if meta.is_dir() {
            hits.extend(files_containing(&p, needle));
        } else if meta.is_file()
            && std::fs::read(&p)
                .is_ok_and(|b| b.windows(needle.len()).any(|w| w == needle.as_bytes()))
        {
            hits.push(p.display().to_string());
        }
    }
    hits
}

/// Builds and pushes `<cluster>/www:v1`: busybox (`/bin/sh` too) serving `/www` with
/// `httpd -f -p 8080`, `files` (name, text) in `/www`. Needs /bin/busybox (busybox-static).
pub fn build_httpd_image(c: &Cluster, files: &[(&str, &str)]) -> String {
    let rootfs = c.state_dir().join("rootfs");
    for d in ["bin", "www", "tmp"] {
        std::fs::create_dir_all(rootfs.join(d)).unwrap();
    }
    std::fs::copy("/bin/busybox", rootfs.join("bin/busybox")).unwrap();
    std::os::unix::fs::symlink("busybox", rootfs.join("bin/sh")).unwrap();
    for (name, text) in files {
        std::fs::write(rootfs.join("www").join(name), text).unwrap();
    }
    let image = format!("{}/www:v1", c.addr);
    let mut args = vec!["image", "build", "--from", rootfs.to_str().unwrap()];
    args.extend([
        "--entrypoint",
        "/bin/busybox",
        "--expose",
        "8080/tcp",
        "--tag",
        &image,
    ]);
    for a in ["httpd", "-f", "-p", "8080", "-h", "/www"] {
        args.extend(["--cmd", a]);
    }
    let out = c.cli(&args);
    assert!(
        out.status.success(),
        "image build: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    image
}
