//! `berth apply` and `berth diff`: load a stack file, compare it with the cluster (ECS services
//! and ELBv2 resources), print the plan, and (for apply) carry it out through the ECS and ELBv2
//! APIs.

use crate::client::Client;
use crate::config::Global;
use anyhow::{bail, Context};
use berth_elb::ElbState;
use berth_stack::{ChangeKind, CurrentService, ElbRefs, Plan, Resource, Stack, STACK_TAG};
use serde_json::{json, Value};
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

/// The stack file named by `path`: a file, or `berth.yaml` in a directory (default: `.`).
pub fn stack_path(path: Option<PathBuf>) -> PathBuf {
    let p = path.unwrap_or_else(|| PathBuf::from("."));
    if p.is_dir() {
        for name in ["berth.yaml", "berth.yml", "berth.json"] {
            if p.join(name).exists() {
                return p.join(name);
            }
        }
        p.join("berth.yaml")
    } else {
        p
    }
}

/// Loads and validates a stack; the error lists every invalid field.
pub fn load_stack(path: &Path) -> anyhow::Result<Stack> {
    berth_stack::load(path).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))
}

fn current_services(c: &Client, stack: &Stack) -> anyhow::Result<Vec<CurrentService>> {
    let clusters = c.ecs("DescribeClusters", json!({"clusters": [stack.cluster]}))?;
    let active = clusters["clusters"]
        .as_array()
        .is_some_and(|a| a.iter().any(|c| c["status"] == "ACTIVE"));
    if !active {
        return Ok(Vec::new());
    }
    let mut out = Vec::new();
    for svc in crate::cmd_ecs::all_services(c, &stack.cluster)? {
        if svc["status"] != "ACTIVE" {
            continue;
        }
        let service: berth_model::ecs::Service =
            serde_json::from_value(svc.clone()).context("reading a service")?;
        let td: berth_model::ecs::TaskDefinition = serde_json::from_value(
            c.ecs(
                "DescribeTaskDefinition",
                json!({"taskDefinition": service.task_definition}),
            )?["taskDefinition"]
                .clone(),
        )?;
        let tag = svc["tags"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|t| t["key"] == STACK_TAG)
            .and_then(|t| t["value"].as_str())
            .map(str::to_string);
        out.push(CurrentService::from_service(&service, td, tag));
    }
    Ok(out)
}

fn plan_json(plan: &Plan) -> Value {
    let changes: Vec<Value> = plan
        .changes
        .iter()
        .map(|c| {
            json!({
                "action": match c.kind { ChangeKind::Create => "create", ChangeKind::Update => "update", ChangeKind::Delete => "delete" },
                "resource": c.resource.as_str(),
                "name": c.name,
                "details": c.details,
            })
        })
        .collect();
    json!({ "changes": changes, "conflicts": plan.conflicts })
}

/// Plans (and with `apply`, applies) the stack; prints the plan.
pub fn apply(g: &Global, file: Option<PathBuf>, apply: bool) -> anyhow::Result<i32> {
    let path = stack_path(file);
    let stack = load_stack(&path)?;
    let c = Client::new(g.api_url())?;
    let current = current_services(&c, &stack)?;
    let elb = crate::client_elb::current_elb(&c).context("reading the load balancers")?;
    let plan = berth_stack::plan(&stack, &current, &elb);
    if g.json() {
        let mut v = plan_json(&plan);
        v["applied"] = json!(apply && !plan.changes.is_empty() && plan.conflicts.is_empty());
        println!("{}", serde_json::to_string_pretty(&v)?);
    } else {
        println!("{}", plan.render());
    }
    if !plan.conflicts.is_empty() {
        bail!("the plan has conflicts; nothing was applied");
    }
    if apply && !plan.changes.is_empty() {
        apply_plan(&c, &stack, &plan, &elb)?;
        if !g.json() {
            println!("Applied.");
        }
    }
    Ok(0)
}

/// Carries out a plan through the API, in the plan's order: ELBv2 creations and updates, then
/// each service (task definition, then service), then deletions. `elb` is the ELBv2 state the
/// plan was made from.
pub fn apply_plan(c: &Client, stack: &Stack, plan: &Plan, elb: &ElbState) -> anyhow::Result<()> {
    c.ecs("CreateCluster", json!({"clusterName": stack.cluster}))?;
    let mut refs = ElbRefs::from_state(elb);
    let mut done: BTreeSet<&str> = BTreeSet::new();
    for change in &plan.changes {
        if let Some(op) = &change.elb {
            crate::client_elb::apply_op(c, &stack.name, op, &mut refs).with_context(|| {
                format!("{} {} {}", verb(change.kind), change.resource, change.name)
            })?;
            continue;
        }
        if change.kind == ChangeKind::Delete && change.resource == Resource::Service {
            c.ecs(
                "UpdateService",
                json!({"cluster": stack.cluster, "service": change.name, "desiredCount": 0}),
            )?;
            c.ecs(
                "DeleteService",
                json!({"cluster": stack.cluster, "service": change.name, "force": true}),
            )
            .with_context(|| format!("deleting service {}", change.name))?;
            continue;
        }
        let name = change.service.as_str();
        let Some(spec) = stack.services.get(name) else {
            continue;
        };
        if !done.insert(name) {
            continue;
        }
        let td_arn = if plan.registers_task_definition(name) {
            let mut td = serde_json::to_value(&spec.task_definition)?;
            if let Some(m) = td.as_object_mut() {
                for f in [
                    "taskDefinitionArn",
                    "revision",
                    "status",
                    "registeredAt",
                    "deregisteredAt",
                    "compatibilities",
                ] {
                    m.remove(f);
                }
            }
            let r = c
                .ecs("RegisterTaskDefinition", td)
                .with_context(|| format!("registering the task definition of {name}"))?;
            r["taskDefinition"]["taskDefinitionArn"]
                .as_str()
                .unwrap_or_default()
                .to_string()
        } else {
            spec.task_definition.family.clone()
        };
        let svc_change = plan
            .changes
            .iter()
            .find(|ch| ch.service == name && ch.resource == Resource::Service);
        let load_balancers: Vec<_> = spec
            .load_balancers
            .iter()
            .map(|lb| lb.resolve(&|tg| refs.target_groups.get(tg).cloned()))
            .collect();
        let mut body = json!({
            "cluster": stack.cluster,
            "desiredCount": spec.desired_count,
            "taskDefinition": td_arn,
            "healthCheckGracePeriodSeconds": spec.health_check_grace_period_seconds,
            "deploymentConfiguration": spec.deployment_configuration,
            "loadBalancers": load_balancers,
        });
        match svc_change.map(|ch| ch.kind) {
            Some(ChangeKind::Create) => {
                body["serviceName"] = json!(name);
                body["tags"] = json!([{"key": STACK_TAG, "value": stack.name}]);
                c.ecs("CreateService", body)
                    .with_context(|| format!("creating service {name}"))?;
            }
            _ => {
                body["service"] = json!(name);
                c.ecs("UpdateService", body)
                    .with_context(|| format!("updating service {name}"))?;
            }
        }
    }
    Ok(())
}

fn verb(kind: ChangeKind) -> &'static str {
    match kind {
        ChangeKind::Create => "creating",
        ChangeKind::Update => "updating",
        ChangeKind::Delete => "deleting",
    }
}
