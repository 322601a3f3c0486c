//! A small blocking client of berth's API (the ECS and Logs wire protocols, the ELBv2 query
//! protocol, plus status).

use anyhow::{anyhow, Context};
use serde_json::Value;
use std::time::Duration;

/// The server could not be reached at all.
#[derive(Debug)]
pub struct Unreachable(pub String);

impl std::fmt::Display for Unreachable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "cannot reach the berth server at {} (is it running? see `berth up`)",
            self.0
        )
    }
}
impl std::error::Error for Unreachable {}

/// The user the CLI reports as the actor of its changes.
fn actor() -> String {
    std::env::var("BERTH_ACTOR")
        .or_else(|_| std::env::var("USER"))
        .map(|u| format!("cli:{u}"))
        .unwrap_or_else(|_| "cli".into())
}

/// The CA certificate `--ca-cert` names, trusted by every client of this process.
static CA_CERT: std::sync::OnceLock<std::path::PathBuf> = std::sync::OnceLock::new();

/// Trusts the PEM CA certificate at `path` for https:// API addresses (call once, at start).
pub fn trust_ca(path: std::path::PathBuf) {
    let _ = CA_CERT.set(path);
}

/// The PEM bytes of the `--ca-cert` file, checked to be a certificate (`None` without one).
pub fn ca_pem(path: Option<&std::path::Path>) -> anyhow::Result<Option<Vec<u8>>> {
    let Some(path) = path else {
        return Ok(None);
    };
    let pem =
        std::fs::read(path).with_context(|| format!("--ca-cert: reading {}", path.display()))?;
    reqwest::Certificate::from_pem(&pem)
        .with_context(|| format!("--ca-cert: {}: expected a PEM certificate", path.display()))?;
    if !String::from_utf8_lossy(&pem).contains("-----BEGIN CERTIFICATE-----") {
        anyhow::bail!("--ca-cert: {}: expected a PEM certificate", path.display());
    }
    Ok(Some(pem))
}

/// The bearer token every client of this process sends (set once, at start).
static TOKEN: std::sync::RwLock<Option<String>> = std::sync::RwLock::new(None);

/// Sends `Authorization: Bearer <token>` with every request of clients made after this call.
pub fn use_token(token: String) {
    berth_registry::set_credential(berth_registry::Credential::Token(token.clone()));
    if let Ok(mut t) = TOKEN.write() {
        *t = Some(token);
    }
}

/// An API client bound to one server.
pub struct Client {
    base: String,
    http: reqwest::Client,
    rt: tokio::runtime::Runtime,
}

impl Client {
    pub fn new(base: String) -> anyhow::Result<Client> {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        let mut http = reqwest::Client::builder().timeout(Duration::from_secs(30));
        let token = TOKEN.read().ok().and_then(|t| t.clone());
        if let Some(token) = token {
            let mut headers = reqwest::header::HeaderMap::new();
            let mut value = reqwest::header::HeaderValue::from_str(&format!("Bearer {token}"))
                .context("--token: not a valid header value")?;
            value.set_sensitive(true);
            headers.insert(reqwest::header::AUTHORIZATION, value);
            http = http.default_headers(headers);
        }
        if let Some(pem) = ca_pem(CA_CERT.get().map(|p| p.as_path()))? {
            http = http.add_root_certificate(reqwest::Certificate::from_pem(&pem)?);
        }
        Ok(Client {
            base,
            http: http.build()?,
            rt,
        })
    }

    /// The error for a request that got no answer; over https the cause (often the
    /// certificate) is named.
    fn unreachable(&self, e: reqwest::Error) -> Unreachable {
        if !self.base.starts_with("https://") {
            return Unreachable(self.base.clone());
        }
        let mut cause: &dyn std::error::Error = &e;
        while let Some(next) = cause.source() {
            cause = next;
        }
        Unreachable(format!("{} ({cause})", self.base))
    }

    fn post(&self, target: &str, body: &Value) -> anyhow::Result<Value> {
        let req = self
            .http
            .post(format!("{}/", self.base))
            .header("x-amz-target", target)
            .header("x-berth-actor", actor())
            .header("content-type", "application/x-amz-json-1.1")
            .body(body.to_string());
        let resp = self
            .rt
            .block_on(async { req.send().await })
            .map_err(|e| self.unreachable(e))?;
        let status = resp.status();
        let text = self
            .rt
            .block_on(async { resp.text().await })
            .context("reading the response")?;
        let v: Value = serde_json::from_str(&text).unwrap_or(Value::String(text.clone()));
        if !status.is_success() {
            let code = v.get("__type").and_then(Value::as_str).unwrap_or("Error");
            let msg = v.get("message").and_then(Value::as_str).unwrap_or(&text);
            return Err(anyhow!("{code}: {msg}"));
        }
        Ok(v)
    }

    /// Calls an ECS operation.
    pub fn ecs(&self, op: &str, body: Value) -> anyhow::Result<Value> {
        self.post(&format!("AmazonEC2ContainerServiceV20141113.{op}"), &body)
    }

    /// Calls an Application Auto Scaling operation (awsJson1_1, `AnyScaleFrontendService`).
    pub fn autoscaling(&self, op: &str, body: Value) -> anyhow::Result<Value> {
        self.post(&format!("AnyScaleFrontendService.{op}"), &body)
    }

    /// Calls a CloudWatch Logs operation.
    pub fn logs(&self, op: &str, body: Value) -> anyhow::Result<Value> {
        self.post(&format!("Logs_20140328.{op}"), &body)
    }

    /// Calls an ELBv2 operation (query protocol: form body in, XML out); returns the response
    /// document, or the error's `Code: Message`.
    pub fn query(
        &self,
        action: &str,
        params: &[(String, String)],
    ) -> anyhow::Result<crate::client_elb::XmlNode> {
        self.query_version("2015-12-01", action, params)
    }

    /// Calls an IAM operation (query protocol, version 2010-05-08).
    pub fn iam(
        &self,
        action: &str,
        params: &[(String, String)],
    ) -> anyhow::Result<crate::client_elb::XmlNode> {
        self.query_version("2010-05-08", action, params)
    }

    /// Calls CloudTrail's LookupEvents (the audit log).
    pub fn lookup_events(&self, body: Value) -> anyhow::Result<Value> {
        self.post("CloudTrail_20131101.LookupEvents", &body)
    }

    /// A query-protocol call with API version `version`.
    pub fn query_version(
        &self,
        version: &str,
        action: &str,
        params: &[(String, String)],
    ) -> anyhow::Result<crate::client_elb::XmlNode> {
        let mut form: Vec<(&str, &str)> = vec![("Action", action), ("Version", version)];
        form.extend(params.iter().map(|(k, v)| (k.as_str(), v.as_str())));
        let req = self.http.post(format!("{}/", self.base)).form(&form);
        let resp = self
            .rt
            .block_on(async { req.send().await })
            .map_err(|e| self.unreachable(e))?;
        let status = resp.status();
        let text = self
            .rt
            .block_on(async { resp.text().await })
            .context("reading the response")?;
        let doc = crate::client_elb::XmlNode::parse(&text)
            .with_context(|| format!("reading the {action} response"))?;
        if !status.is_success() {
            let error = doc.child("Error");
            let code = error
                .and_then(|e| e.text_of("Code"))
                .unwrap_or_else(|| "Error".to_string());
            let msg = error.and_then(|e| e.text_of("Message")).unwrap_or(text);
            return Err(anyhow!("{code}: {msg}"));
        }
        Ok(doc)
    }

    /// GETs a berth endpoint as JSON.
    pub fn get(&self, path: &str) -> anyhow::Result<Value> {
        let resp = self
            .rt
            .block_on(async {
                self.http
                    .get(format!("{}{path}", self.base))
                    .timeout(Duration::from_secs(5))
                    .send()
                    .await
            })
            .map_err(|e| self.unreachable(e))?;
        let status = resp.status();
        let text = self.rt.block_on(async { resp.text().await })?;
        let v: Value = serde_json::from_str(&text)
            .with_context(|| format!("GET {path}: HTTP {status}: {text}"))?;
        if !status.is_success() {
            let code = v.get("error").and_then(Value::as_str).unwrap_or("Error");
            let msg = v.get("message").and_then(Value::as_str).unwrap_or(&text);
            return Err(anyhow!("{code}: {msg}"));
        }
        Ok(v)
    }

    /// True when the server answers its health check.
    pub fn healthy(&self) -> bool {
        let r = self.rt.block_on(async {
            self.http
                .get(format!("{}/healthz", self.base))
                .timeout(Duration::from_millis(500))
                .send()
                .await
        });
        r.map(|r| r.status().is_success()).unwrap_or(false)
    }
}
