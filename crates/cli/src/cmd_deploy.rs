//! `berth deploy`, `berth rollback` and `berth deployments`: start a deployment, watch it live,
//! and wait for the service to become stable (or fail / roll back).

use crate::client::Client;
use crate::config::Global;
use crate::output::{ago, table};
use anyhow::{bail, Context};
use serde_json::{json, Value};
use std::time::{Duration, Instant};

/// What `berth deploy` changes.
pub struct DeployArgs {
    pub service: String,
    pub image: Option<String>,
    pub container: Option<String>,
    pub revision: Option<u32>,
    pub env: Vec<String>,
    pub force: bool,
    pub wait: bool,
    pub timeout: u64,
}

fn describe_service(c: &Client, g: &Global, service: &str) -> anyhow::Result<Value> {
    let r = c.ecs(
        "DescribeServices",
        json!({"cluster": g.cluster, "services": [service]}),
    )?;
    r["services"]
        .get(0)
        .cloned()
        .with_context(|| format!("no service {service} in cluster {}", g.cluster))
}

pub fn deploy(g: &Global, a: DeployArgs) -> anyhow::Result<i32> {
    let c = Client::new(g.api_url())?;
    let svc = describe_service(&c, g, &a.service)?;
    let current = svc["taskDefinition"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let mut target = current.clone();
    if a.image.is_some() || !a.env.is_empty() {
        let mut td = c.ecs("DescribeTaskDefinition", json!({"taskDefinition": current}))?
            ["taskDefinition"]
            .clone();
        let containers = td["containerDefinitions"]
            .as_array_mut()
            .context("task definition without containers")?;
        let idx = match &a.container {
            Some(name) => containers
                .iter()
                .position(|c| c["name"] == name.as_str())
                .with_context(|| format!("--container: no container {name:?} in {current}"))?,
            None => 0,
        };
        if let Some(image) = &a.image {
            containers[idx]["image"] = json!(image);
        }
        for kv in &a.env {
            let (k, v) = kv
                .split_once('=')
                .with_context(|| format!("--env: expected NAME=VALUE, found {kv:?}"))?;
            let env = containers[idx]["environment"].as_array_mut();
            let env = match env {
                Some(e) => e,
                None => {
                    containers[idx]["environment"] = json!([]);
                    containers[idx]["environment"]
                        .as_array_mut()
                        .context("environment")?
                }
            };
            env.retain(|e| e["name"] != k);
            env.push(json!({"name": k, "value": v}));
        }
        if let Some(m) = td.as_object_mut() {
            for f in [
                "taskDefinitionArn",
                "revision",
                "status",
                "registeredAt",
                "deregisteredAt",
                "compatibilities",
                "requiresAttributes",
            ] {
                m.remove(f);
            }
        }
        target = c.ecs("RegisterTaskDefinition", td)?["taskDefinition"]["taskDefinitionArn"]
            .as_str()
            .unwrap_or_default()
            .to_string();
    } else if let Some(rev) = a.revision {
        let family = current
            .rsplit('/')
            .next()
            .and_then(|f| f.rsplit_once(':'))
            .map(|(f, _)| f.to_string())
            .unwrap_or_default();
        target = format!("{family}:{rev}");
    } else if !a.force {
        bail!("nothing to deploy: give --image, --env, --revision or --force");
    }
    let r = c.ecs(
        "UpdateService",
        json!({"cluster": g.cluster, "service": a.service, "taskDefinition": target, "forceNewDeployment": a.force}),
    )?;
    start_and_watch(g, &c, &a.service, &r["service"], a.wait, a.timeout)
}

fn start_and_watch(
    g: &Global,
    c: &Client,
    service: &str,
    svc: &Value,
    wait: bool,
    timeout: u64,
) -> anyhow::Result<i32> {
    let primary = svc["deployments"]
        .as_array()
        .and_then(|d| d.iter().find(|d| d["status"] == "PRIMARY"))
        .cloned()
        .unwrap_or_default();
    let id = primary["id"].as_str().unwrap_or_default().to_string();
    let td = primary["taskDefinition"]
        .as_str()
        .unwrap_or_default()
        .rsplit('/')
        .next()
        .unwrap_or_default()
        .to_string();
    if g.json() && !wait {
        crate::output::json(
            &json!({"deploymentId": id, "taskDefinition": td, "status": "IN_PROGRESS"}),
        );
        return Ok(0);
    }
    if !g.json() {
        eprintln!("deployment {id} of {service}: {td}");
    }
    if !wait {
        return Ok(0);
    }
    watch(g, c, service, &id, Duration::from_secs(timeout))
}

fn history(c: &Client, g: &Global, service: &str) -> anyhow::Result<Vec<Value>> {
    Ok(c.ecs(
        "ListServiceDeployments",
        json!({"cluster": g.cluster, "service": service}),
    )?["serviceDeployments"]
        .as_array()
        .cloned()
        .unwrap_or_default())
}

/// Shows progress until the deployment `id` finished; 0 when the service is stable on it.
fn watch(
    g: &Global,
    c: &Client,
    service: &str,
    id: &str,
    timeout: Duration,
) -> anyhow::Result<i32> {
    let start = Instant::now();
    let mut last_line = String::new();
    let mut last_event = String::new();
    loop {
        let svc = describe_service(c, g, service)?;
        let deployments = svc["deployments"].as_array().cloned().unwrap_or_default();
        let mine = deployments.iter().find(|d| d["id"] == id);
        let others: Vec<&Value> = deployments.iter().filter(|d| d["id"] != id).collect();
        let n = |d: Option<&Value>, k: &str| d.and_then(|d| d[k].as_u64()).unwrap_or(0);
        let old_running: u64 = others
            .iter()
            .map(|d| d["runningCount"].as_u64().unwrap_or(0))
            .sum();
        let line = format!(
            "new: {}/{} running, {} pending, {} failed | old: {} running | {} deployment(s)",
            n(mine, "runningCount"),
            n(mine, "desiredCount"),
            n(mine, "pendingCount"),
            n(mine, "failedTasks"),
            old_running,
            deployments.len()
        );
        if !g.json() && line != last_line {
            eprintln!("  {line}");
            last_line = line;
        }
        if let Some(e) = svc["events"].get(0).and_then(|e| e["message"].as_str()) {
            if !g.json() && e != last_event {
                eprintln!("  event: {e}");
                last_event = e.to_string();
            }
        }
        let h = history(c, g, service)?;
        let entry = h
            .iter()
            .find(|e| e["deploymentId"] == id)
            .cloned()
            .unwrap_or_default();
        let status = entry["status"].as_str().unwrap_or("IN_PROGRESS");
        // services-stable: one deployment, running count equal to desired count.
        let stable = deployments.len() == 1 && svc["runningCount"] == svc["desiredCount"];
        let outcome = match status {
            "SUCCESSFUL" if stable => Some((0, "the service is stable".to_string())),
            "STOPPED" | "ROLLBACK_IN_PROGRESS" | "ROLLBACK_SUCCESSFUL" | "ROLLBACK_FAILED" => {
                let why = entry["statusReason"].as_str().unwrap_or(status).to_string();
                let rolled = if status.starts_with("ROLLBACK") {
                    " (rolled back)"
                } else {
                    ""
                };
                Some((1, format!("deployment {status}{rolled}: {why}")))
            }
            _ => None,
        };
        if let Some((code, msg)) = outcome {
            if g.json() {
                crate::output::json(
                    &json!({"deploymentId": id, "status": status, "stable": stable, "message": msg}),
                );
            } else {
                eprintln!("{msg}");
            }
            return Ok(code);
        }
        if start.elapsed() > timeout {
            bail!(
                "deployment {id} not finished after {}s (status {status})",
                timeout.as_secs()
            );
        }
        std::thread::sleep(Duration::from_millis(250));
    }
}

pub fn rollback(
    g: &Global,
    service: &str,
    to: Option<u32>,
    wait: bool,
    timeout: u64,
) -> anyhow::Result<i32> {
    let c = Client::new(g.api_url())?;
    let svc = describe_service(&c, g, service)?;
    let current = svc["taskDefinition"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let primary = svc["deployments"]
        .as_array()
        .and_then(|d| d.iter().find(|d| d["status"] == "PRIMARY"))
        .map(|d| d["id"].clone());
    let target = match to {
        Some(rev) => {
            let family = current
                .rsplit('/')
                .next()
                .and_then(|f| f.rsplit_once(':'))
                .map(|(f, _)| f.to_string())
                .unwrap_or_default();
            format!("{family}:{rev}")
        }
        None => history(&c, g, service)?
            .iter()
            .find(|e| e["status"] == "SUCCESSFUL" && e["taskDefinition"] != current.as_str())
            .and_then(|e| e["taskDefinition"].as_str().map(str::to_string))
            .context("no earlier successful deployment to roll back to; use --to REVISION")?,
    };
    let r = c.ecs(
        "UpdateService",
        json!({"cluster": g.cluster, "service": service, "taskDefinition": target, "berthRollbackOf": primary}),
    )?;
    start_and_watch(g, &c, service, &r["service"], wait, timeout)
}

pub fn deployments(g: &Global, service: &str) -> anyhow::Result<i32> {
    let c = Client::new(g.api_url())?;
    let h = history(&c, g, service)?;
    if g.json() {
        crate::output::json(&json!({ "deployments": h }));
        return Ok(0);
    }
    let rows: Vec<Vec<String>> = h
        .iter()
        .map(|e| {
            let s = |k: &str| e[k].as_str().unwrap_or("-").to_string();
            vec![
                s("deploymentId"),
                s("status"),
                s("taskDefinition")
                    .rsplit('/')
                    .next()
                    .unwrap_or("-")
                    .to_string(),
                s("trigger"),
                s("startedBy"),
                ago(e["createdAt"].as_f64()),
                e["finishedAt"]
                    .as_f64()
                    .map(|f| format!("{:.1}s", f - e["createdAt"].as_f64().unwrap_or(f)))
                    .unwrap_or_else(|| "-".into()),
                s("statusReason"),
            ]
        })
        .collect();
    table(
        &[
            "DEPLOYMENT",
            "STATUS",
            "TASK DEFINITION",
            "TRIGGER",
            "BY",
            "STARTED",
            "TOOK",
            "REASON",
        ],
        &rows,
    );
    Ok(0)
}
