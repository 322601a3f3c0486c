//! Rotation: RotateSecret/CancelRotateSecret and the four steps (createSecret, setSecret,
//! testSecret, finishSecret) run by a command (`berth:command:<shell>`, env SECRET_ID,
//! CLIENT_REQUEST_TOKEN, STEP) or a webhook (`http://...`, POST {SecretId, ClientRequestToken,
//! Step}). createSecret's output is the new value, stored as AWSPENDING; finishSecret makes it
//! AWSCURRENT. Step output is never logged.

use crate::api::{secret_id, str_field};
use crate::error::SecretsError;
use crate::schedule::{parse_rules, Schedule};
use crate::{lock, now, store, Secrets, AWSCURRENT, AWSPENDING};
use serde_json::{json, Value};
use std::io::{Read, Write};
use std::time::{Duration, Instant};
use zeroize::Zeroizing;

/// Prefix of a rotation command in RotationLambdaARN.
pub const COMMAND_PREFIX: &str = "berth:command:";
/// How long one step may take.
const STEP_TIMEOUT: Duration = Duration::from_secs(120);

/// Where rotation steps run.
#[derive(Debug, Clone, PartialEq)]
pub enum Rotator {
    Command(String),
    Webhook(String),
}

/// Parses RotationLambdaARN.
pub fn parse_rotator(s: &str) -> Result<Rotator, SecretsError> {
    if let Some(cmd) = s
        .strip_prefix(COMMAND_PREFIX)
        .filter(|c| !c.trim().is_empty())
    {
        return Ok(Rotator::Command(cmd.to_string()));
    }
    if s.starts_with("http://") {
        return Ok(Rotator::Webhook(s.to_string()));
    }
    Err(SecretsError::InvalidParameter(format!(
        "RotationLambdaARN: expected berth:command:<shell command> or an http:// webhook URL, found {s:?}"
    )))
}

pub(crate) fn rotate_secret(s: &Secrets, input: &Value) -> Result<Value, SecretsError> {
    let id = secret_id(input)?;
    let mut errors = Vec::new();
    let rotator =
        str_field(input, "RotationLambdaARN").map(|l| parse_rotator(l).map(|_| l.to_string()));
    let rules = input.get("RotationRules").filter(|v| !v.is_null()).cloned();
    let schedule = rules.as_ref().map(parse_rules);
    for r in [
        rotator.as_ref().and_then(|r| r.as_ref().err()),
        schedule.as_ref().and_then(|r| r.as_ref().err()),
    ]
    .into_iter()
    .flatten()
    {
        errors.push(r.to_string());
    }
    let token = match str_field(input, "ClientRequestToken") {
        Some(t)
            if (1..=64).contains(&t.len())
                && t.chars().all(|c| c.is_ascii_alphanumeric() || c == '-') =>
        {
            t.to_string()
        }
        Some(t) => {
            errors.push(format!(
                "ClientRequestToken: expected 1 to 64 letters, digits or hyphens, found {t:?}"
            ));
            String::new()
        }
        None => uuid::Uuid::new_v4().to_string(),
    };
    if !errors.is_empty() {
        return Err(SecretsError::InvalidParameter(errors.join("; ")));
    }
    let immediately = input
        .get("RotateImmediately")
        .and_then(Value::as_bool)
        .unwrap_or(true);
    let arn = store::find(&s.records(), id)?;
    let name = store::update(s, &arn, |rec| {
        if rec.deleted.is_some() {
            return Err(SecretsError::deleted());
        }
        if let Some(Ok(l)) = &rotator {
            rec.rotation_lambda = Some(l.clone());
        }
        if rec.rotation_lambda.is_none() {
            return Err(SecretsError::InvalidRequest(
                "No rotation is configured: RotationLambdaARN (berth:command:<shell> or http://...) is required.".into(),
            ));
        }
        if let (Some(r), Some(Ok(sched))) = (&rules, &schedule) {
            rec.rotation_rules = Some(r.clone());
            rec.next_rotation = sched.next_after(rec.last_rotated.unwrap_or(now()));
        }
        rec.rotation_enabled = true;
        Ok(rec.name.clone())
    })?;
    if !immediately {
        return Ok(json!({"ARN": arn, "Name": name}));
    }
    rotate(s, &arn, &token)?;
    Ok(json!({"ARN": arn, "Name": name, "VersionId": token}))
}

pub(crate) fn cancel_rotate_secret(s: &Secrets, input: &Value) -> Result<Value, SecretsError> {
    let id = secret_id(input)?;
    let arn = store::find(&s.records(), id)?;
    let (name, pending) = store::update(s, &arn, |rec| {
        rec.rotation_enabled = false;
        rec.next_rotation = None;
        let pending = rec.version_with(AWSPENDING);
        if let Some(v) = pending.as_ref().and_then(|p| rec.versions.get_mut(p)) {
            v.stages.retain(|s| s != AWSPENDING);
        }
        rec.versions.retain(|_, v| !v.stages.is_empty());
        Ok((rec.name.clone(), pending))
    })?;
    let mut out = json!({"ARN": arn, "Name": name});
    if let Some(p) = pending {
        out["VersionId"] = json!(p);
    }
    Ok(out)
}

/// Runs the four steps for `arn` with version id `token`, then calls the rotation hooks.
pub(crate) fn rotate(s: &Secrets, arn: &str, token: &str) -> Result<(), SecretsError> {
    let _one_at_a_time = lock(&s.inner.rotating);
    let lambda = {
        let records = s.records();
        let rec = records.get(arn).ok_or_else(SecretsError::not_found)?;
        if rec.deleted.is_some() {
            return Err(SecretsError::deleted());
        }
        rec.rotation_lambda.clone().ok_or_else(|| {
            SecretsError::InvalidRequest("No rotation is configured for this secret.".into())
        })?
    };
    let rotator = parse_rotator(&lambda)?;
    // A rotation that did not finish leaves AWSPENDING behind: start over.
    store::update(s, arn, |rec| {
        let current = rec.version_with(AWSCURRENT);
        if let Some(p) = rec
            .version_with(AWSPENDING)
            .filter(|p| Some(p) != current.as_ref() && p != token)
        {
            if let Some(v) = rec.versions.get_mut(&p) {
                v.stages.retain(|s| s != AWSPENDING);
            }
            rec.versions.retain(|_, v| !v.stages.is_empty());
        }
        Ok(())
    })?;
    let value = run_step(&rotator, arn, token, "createSecret")?;
    let trimmed = value.strip_suffix('\n').unwrap_or(&value);
    let trimmed = trimmed.strip_suffix('\r').unwrap_or(trimmed);
    if trimmed.is_empty() {
        return Err(SecretsError::InvalidRequest(
            "rotation step createSecret produced no value (expected the new value on stdout or in the webhook's response)".into(),
        ));
    }
    crate::api::add_version_from_rotation(
        s,
        arn,
        token,
        Zeroizing::new(trimmed.as_bytes().to_vec()),
    )?;
    for step in ["setSecret", "testSecret", "finishSecret"] {
        run_step(&rotator, arn, token, step)?;
    }
    let t = now();
    store::update(s, arn, |rec| {
        rec.move_stages(token, &[AWSCURRENT.to_string()]);
        if let Some(v) = rec.versions.get_mut(token) {
            v.stages.retain(|s| s != AWSPENDING);
        }
        rec.last_rotated = Some(t);
        rec.last_changed = t;
        rec.next_rotation = rec
            .rotation_rules
            .as_ref()
            .and_then(|r| parse_rules(r).ok())
            .and_then(|sched: Schedule| sched.next_after(t));
        Ok(())
    })?;
    tracing::info!(secret = %arn, version = %token, "secret rotated");
    s.notify_rotated(arn);
    Ok(())
}

/// Runs one step; returns its output (the value for createSecret), which is never logged.
fn run_step(
    rotator: &Rotator,
    arn: &str,
    token: &str,
    step: &str,
) -> Result<Zeroizing<String>, SecretsError> {
    let fail =
        |why: String| SecretsError::InvalidRequest(format!("rotation step {step} failed: {why}"));
    match rotator {
        Rotator::Command(cmd) => {
            let mut child = std::process::Command::new("/bin/sh")
                .arg("-c")
                .arg(cmd)
                .env("SECRET_ID", arn)
                .env("CLIENT_REQUEST_TOKEN", token)
                .env("STEP", step)
                .stdin(std::process::Stdio::null())
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::null())
                .spawn()
                .map_err(|e| fail(format!("cannot run /bin/sh: {e}")))?;
            let mut stdout = child.stdout.take();
            let reader = std::thread::spawn(move || {
                let mut out = Zeroizing::new(Vec::new());
                if let Some(o) = stdout.as_mut() {
                    let _ = o.take(1 << 20).read_to_end(&mut out);
                }
                out
            });
            let started = Instant::now();
            let status = loop {
                match child.try_wait() {
                    Ok(Some(st)) => break st,
                    Ok(None) if started.elapsed() > STEP_TIMEOUT => {
                        let _ = child.kill();
                        let _ = child.wait();
                        return Err(fail(format!("timed out after {}s", STEP_TIMEOUT.as_secs())));
                    }
                    Ok(None) => std::thread::sleep(Duration::from_millis(20)),
                    Err(e) => return Err(fail(e.to_string())),
                }
            };
            let out = reader
                .join()
                .map_err(|_| fail("reading the output failed".into()))?;
            if !status.success() {
                return Err(fail(format!("the command exited with {status}")));
            }
            String::from_utf8(out.to_vec())
                .map(Zeroizing::new)
                .map_err(|_| fail("the output is not UTF-8".into()))
        }
        Rotator::Webhook(url) => {
            let body =
                json!({"SecretId": arn, "ClientRequestToken": token, "Step": step}).to_string();
            let (status, resp) = http_post(url, &body).map_err(fail)?;
            if !(200..300).contains(&status) {
                return Err(fail(format!("the webhook answered HTTP {status}")));
            }
            // A JSON answer may carry the value as SecretString.
            let value = serde_json::from_str::<Value>(&resp).ok().and_then(|v| {
                v.get("SecretString")
                    .and_then(Value::as_str)
                    .map(str::to_string)
            });
            Ok(Zeroizing::new(value.unwrap_or_else(|| resp.to_string())))
        }
    }
}

/// A minimal HTTP/1.1 POST of JSON to an `http://host[:port]/path` URL; returns status and body.
fn http_post(url: &str, body: &str) -> Result<(u16, Zeroizing<String>), String> {
    let rest = url
        .strip_prefix("http://")
        .ok_or("expected an http:// URL")?;
    let (hostport, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    };
    let addr_text = if hostport.contains(':') {
        hostport.to_string()
    } else {
        format!("{hostport}:80")
    };
    let addr = std::net::ToSocketAddrs::to_socket_addrs(&addr_text)
        .map_err(|e| format!("resolving {hostport}: {e}"))?
        .next()
        .ok_or_else(|| format!("resolving {hostport}: no address"))?;
    let mut conn = std::net::TcpStream::connect_timeout(&addr, Duration::from_secs(10))
        .map_err(|e| format!("connecting to {hostport}: {e}"))?;
    let _ = conn.set_read_timeout(Some(STEP_TIMEOUT));
    let req = format!(
        "POST {path} HTTP/1.1\r\nHost: {hostport}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    conn.write_all(req.as_bytes())
        .map_err(|e| format!("sending: {e}"))?;
    let mut raw = Zeroizing::new(Vec::new());
    conn.take(1 << 20)
        .read_to_end(&mut raw)
        .map_err(|e| format!("reading: {e}"))?;
    let text = String::from_utf8_lossy(&raw);
    let (head, body) = text
        .split_once("\r\n\r\n")
        .ok_or("malformed HTTP response")?;
    let status: u16 = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or("malformed HTTP status line")?;
    let chunked = head.lines().any(|l| {
        let l = l.to_ascii_lowercase();
        l.starts_with("transfer-encoding:") && l.contains("chunked")
    });
    let body = if chunked {
        dechunk(body)
    } else {
        body.to_string()
    };
    Ok((status, Zeroizing::new(body)))
}

fn dechunk(mut s: &str) -> String {
    let mut out = String::new();
    while let Some((size, rest)) = s.split_once("\r\n") {
        let n = usize::from_str_radix(size.trim(), 16).unwrap_or(0);
        if n == 0 || rest.len() < n {
            break;
        }
        out.push_str(&rest[..n]);
        s = rest[n..].strip_prefix("\r\n").unwrap_or(&rest[n..]);
    }
    out
}
