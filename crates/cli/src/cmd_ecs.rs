//! CLI commands that read and change ECS resources through the API.

use crate::client::Client;
use crate::config::Global;
use crate::output::{ago, json, table};
use anyhow::{bail, Context};
use serde_json::{json, Value};
use std::collections::BTreeSet;
use std::time::Duration;

fn client(g: &Global) -> anyhow::Result<Client> {
    Client::new(g.api_url())
}

fn s(v: &Value, k: &str) -> String {
    match v.get(k) {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Null) | None => "-".into(),
        Some(other) => other.to_string(),
    }
}

fn short_td(arn: &str) -> String {
    arn.rsplit('/').next().unwrap_or(arn).to_string()
}

/// All services of the cluster, described.
pub fn all_services(c: &Client, cluster: &str) -> anyhow::Result<Vec<Value>> {
    let mut arns = Vec::new();
    let mut token: Option<String> = None;
    loop {
        let r = c.ecs(
            "ListServices",
            json!({"cluster": cluster, "maxResults": 100, "nextToken": token}),
        )?;
        arns.extend(r["serviceArns"].as_array().cloned().unwrap_or_default());
        token = r
            .get("nextToken")
            .and_then(Value::as_str)
            .map(str::to_string);
        if token.is_none() {
            break;
        }
    }
    let mut out = Vec::new();
    for chunk in arns.chunks(10) {
        let r = c.ecs(
            "DescribeServices",
            json!({"cluster": cluster, "services": chunk, "include": ["TAGS"]}),
        )?;
        out.extend(r["services"].as_array().cloned().unwrap_or_default());
    }
    Ok(out)
}

pub fn services(g: &Global) -> anyhow::Result<i32> {
    let c = client(g)?;
    let svcs = all_services(&c, &g.cluster)?;
    if g.json() {
        json(&json!({ "services": svcs }));
        return Ok(0);
    }
    let rows: Vec<Vec<String>> = svcs
        .iter()
        .map(|v| {
            let deployments = v["deployments"].as_array().map(|d| d.len()).unwrap_or(0);
            let rollout = v["deployments"]
                .as_array()
                .and_then(|d| d.iter().find(|d| d["status"] == "PRIMARY"))
                .map(|d| s(d, "rolloutState"))
                .unwrap_or_else(|| "-".into());
            vec![
                s(v, "serviceName"),
                s(v, "status"),
                s(v, "desiredCount"),
                s(v, "runningCount"),
                s(v, "pendingCount"),
                short_td(&s(v, "taskDefinition")),
                format!("{deployments} ({rollout})"),
            ]
        })
        .collect();
    table(
        &[
            "NAME",
            "STATUS",
            "DESIRED",
            "RUNNING",
            "PENDING",
            "TASK DEFINITION",
            "DEPLOYMENTS",
        ],
        &rows,
    );
    Ok(0)
}

/// Task ARNs of the cluster (optionally of one service), running and, with `all`, stopped.
fn task_arns(
    c: &Client,
    cluster: &str,
    service: Option<&str>,
    all: bool,
) -> anyhow::Result<Vec<Value>> {
    let mut arns = Vec::new();
    let statuses: &[&str] = if all {
        &["RUNNING", "STOPPED"]
    } else {
        &["RUNNING"]
    };
    for st in statuses {
        let mut token: Option<String> = None;
        loop {
            let r = c.ecs(
                "ListTasks",
                json!({"cluster": cluster, "serviceName": service, "desiredStatus": st, "nextToken": token}),
            )?;
            arns.extend(r["taskArns"].as_array().cloned().unwrap_or_default());
            token = r
                .get("nextToken")
                .and_then(Value::as_str)
                .map(str::to_string);
            if token.is_none() {
                break;
            }
        }
    }
    Ok(arns)
}

pub fn describe_tasks(c: &Client, cluster: &str, arns: &[Value]) -> anyhow::Result<Vec<Value>> {
    let mut out = Vec::new();
    for chunk in arns.chunks(100) {
        let r = c.ecs("DescribeTasks", json!({"cluster": cluster, "tasks": chunk}))?;
        out.extend(r["tasks"].as_array().cloned().unwrap_or_default());
    }
    Ok(out)
}

pub fn tasks(g: &Global, service: Option<String>, all: bool) -> anyhow::Result<i32> {
    let c = client(g)?;
    let arns = task_arns(&c, &g.cluster, service.as_deref(), all)?;
    let tasks = describe_tasks(&c, &g.cluster, &arns)?;
    if g.json() {
        json(&json!({ "tasks": tasks }));
        return Ok(0);
    }
    let rows: Vec<Vec<String>> = tasks
        .iter()
        .map(|t| {
            let id = s(t, "taskArn")
                .rsplit('/')
                .next()
                .unwrap_or_default()
                .to_string();
            let ports: Vec<String> = t["containers"]
                .as_array()
                .into_iter()
                .flatten()
                .flat_map(|c| c["networkBindings"].as_array().cloned().unwrap_or_default())
                .map(|b| format!("{}->{}", s(&b, "hostPort"), s(&b, "containerPort")))
                .collect();
            let exit: Vec<String> = t["containers"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|c| c.get("exitCode").map(|e| format!("{}={e}", s(c, "name"))))
                .collect();
            vec![
                id,
                s(t, "group"),
                s(t, "lastStatus"),
                s(t, "desiredStatus"),
                s(t, "healthStatus"),
                short_td(&s(t, "taskDefinitionArn")),
                if ports.is_empty() {
                    "-".into()
                } else {
                    ports.join(",")
                },
                ago(t.get("startedAt").and_then(Value::as_f64)),
                if exit.is_empty() {
                    t.get("stoppedReason")
                        .and_then(Value::as_str)
                        .unwrap_or("-")
                        .to_string()
                } else {
                    format!("{} {}", exit.join(","), s(t, "stoppedReason"))
                },
            ]
        })
        .collect();
    table(
        &[
            "TASK",
            "GROUP",
            "STATUS",
            "DESIRED",
            "HEALTH",
            "TASK DEFINITION",
            "PORTS",
            "STARTED",
            "NOTE",
        ],
        &rows,
    );
    Ok(0)
}

pub fn describe(g: &Global, kind: &str, name: &str) -> anyhow::Result<i32> {
    let c = client(g)?;
    let v = match kind {
        "service" | "services" => {
            let r = c.ecs(
                "DescribeServices",
                json!({"cluster": g.cluster, "services": [name], "include": ["TAGS"]}),
            )?;
            r["services"]
                .get(0)
                .cloned()
                .with_context(|| format!("no service {name} in cluster {}", g.cluster))?
        }
        "task" | "tasks" => {
            let r = c.ecs(
                "DescribeTasks",
                json!({"cluster": g.cluster, "tasks": [name]}),
            )?;
            r["tasks"]
                .get(0)
                .cloned()
                .with_context(|| format!("no task {name} in cluster {}", g.cluster))?
        }
        "task-definition" | "taskdef" | "td" => c
            .ecs("DescribeTaskDefinition", json!({"taskDefinition": name}))?["taskDefinition"]
            .clone(),
        other => bail!("kind: expected service, task or task-definition, found {other:?}"),
    };
    json(&v);
    Ok(0)
}

pub fn scale(g: &Global, service: &str, count: u32) -> anyhow::Result<i32> {
    let c = client(g)?;
    let r = c.ecs(
        "UpdateService",
        json!({"cluster": g.cluster, "service": service, "desiredCount": count}),
    )?;
    if g.json() {
        json(&r);
    } else {
        println!("{service}: desired count {count}");
    }
    Ok(0)
}

pub fn stop_task(g: &Global, task: &str, reason: Option<String>) -> anyhow::Result<i32> {
    let c = client(g)?;
    let r = c.ecs(
        "StopTask",
        json!({"cluster": g.cluster, "task": task, "reason": reason}),
    )?;
    if g.json() {
        json(&r);
    } else {
        println!("stopping {}", s(&r["task"], "taskArn"));
    }
    Ok(0)
}

pub fn task_definitions(g: &Global, family: Option<String>) -> anyhow::Result<i32> {
    let c = client(g)?;
    let mut arns = Vec::new();
    let mut token: Option<String> = None;
    loop {
        let r = c.ecs(
            "ListTaskDefinitions",
            json!({"familyPrefix": family, "status": "ALL", "nextToken": token}),
        )?;
        arns.extend(
            r["taskDefinitionArns"]
                .as_array()
                .cloned()
                .unwrap_or_default(),
        );
        token = r
            .get("nextToken")
            .and_then(Value::as_str)
            .map(str::to_string);
        if token.is_none() {
            break;
        }
    }
    let mut defs = Vec::new();
    for a in &arns {
        defs.push(
            c.ecs("DescribeTaskDefinition", json!({"taskDefinition": a}))?["taskDefinition"]
                .clone(),
        );
    }
    if g.json() {
        json(&json!({ "taskDefinitions": defs }));
        return Ok(0);
    }
    let rows: Vec<Vec<String>> = defs
        .iter()
        .map(|d| {
            let images: Vec<String> = d["containerDefinitions"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|c| s(c, "image"))
                .collect();
            vec![
                format!("{}:{}", s(d, "family"), s(d, "revision")),
                s(d, "status"),
                ago(d.get("registeredAt").and_then(Value::as_f64)),
                images.join(","),
            ]
        })
        .collect();
    table(
        &["TASK DEFINITION", "STATUS", "REGISTERED", "IMAGES"],
        &rows,
    );
    Ok(0)
}

pub fn events(g: &Global, service: &str, limit: usize) -> anyhow::Result<i32> {
    let c = client(g)?;
    let r = c.ecs(
        "DescribeServices",
        json!({"cluster": g.cluster, "services": [service]}),
    )?;
    let svc = r["services"]
        .get(0)
        .cloned()
        .with_context(|| format!("no service {service} in cluster {}", g.cluster))?;
    let events: Vec<Value> = svc["events"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .into_iter()
        .take(limit)
        .collect();
    if g.json() {
        json(&json!({ "events": events }));
        return Ok(0);
    }
    let rows: Vec<Vec<String>> = events
        .iter()
        .map(|e| {
            vec![
                ago(e.get("createdAt").and_then(Value::as_f64)),
                s(e, "message"),
            ]
        })
        .collect();
    table(&["AGO", "MESSAGE"], &rows);
    Ok(0)
}

pub fn logs(g: &Global, service: &str, follow: bool, since: Option<u64>) -> anyhow::Result<i32> {
    let c = client(g)?;
    let group = format!("/berth/{}/{}", g.cluster, service);
    let now_ms = (berth_model::now() * 1000.0) as i64;
    let mut start = since.map(|s| now_ms - (s as i64) * 1000);
    let mut seen_at_start: BTreeSet<(String, i64, String)> = BTreeSet::new();
    loop {
        let mut token: Option<String> = None;
        let mut batch = Vec::new();
        loop {
            let r = match c.logs(
                "FilterLogEvents",
                json!({"logGroupName": group, "startTime": start, "nextToken": token}),
            ) {
                Ok(r) => r,
                Err(e) if e.to_string().starts_with("ResourceNotFoundException") && follow => {
                    json!({"events": []})
                }
                Err(e) => return Err(e),
            };
            batch.extend(r["events"].as_array().cloned().unwrap_or_default());
            token = r
                .get("nextToken")
                .and_then(Value::as_str)
                .map(str::to_string);
            if token.is_none() {
                break;
            }
        }
        let mut newest = start.unwrap_or(0);
        let mut at_newest = BTreeSet::new();
        for e in &batch {
            let stream = s(e, "logStreamName");
            let ts = e["timestamp"].as_i64().unwrap_or(0);
            let msg = s(e, "message");
            let key = (stream.clone(), ts, msg.clone());
            if Some(ts) == start && seen_at_start.contains(&key) {
                continue;
            }
            if ts > newest {
                newest = ts;
                at_newest.clear();
            }
            if ts == newest {
                at_newest.insert(key);
            }
            // Streams are ecs/<container>/<task-id>: prefix lines with container and short task id.
            let mut parts = stream.split('/');
            let (_, container, task) = (
                parts.next(),
                parts.next().unwrap_or("-"),
                parts.next().unwrap_or("-"),
            );
            if g.json() {
                println!(
                    "{}",
                    json!({"task": task, "container": container, "timestamp": ts, "message": msg})
                );
            } else {
                println!("{container}/{} | {msg}", &task[..task.len().min(8)]);
            }
        }
        if !follow {
            return Ok(0);
        }
        if newest > start.unwrap_or(0) {
            start = Some(newest);
            seen_at_start = at_newest;
        } else {
            seen_at_start.extend(at_newest);
        }
        std::thread::sleep(Duration::from_millis(500));
    }
}
