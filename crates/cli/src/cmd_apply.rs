//! `berth apply` and `berth diff`: load a stack file, compare it with the cluster (ECS services,
//! ELBv2 resources, Application Auto Scaling), print the plan, and (for apply) carry it out
//! through the ECS, ELBv2 and Application Auto Scaling APIs.

use crate::client::Client;
use crate::config::Global;
use anyhow::{bail, Context};
use berth_elb::ElbState;
use berth_stack::scaling::{
    resource_id, resource_label, ScalingMetric, SCALABLE_DIMENSION, SERVICE_NAMESPACE,
};
use berth_stack::{
    ChangeKind, CurrentScaling, CurrentService, ElbRefs, Plan, Resource, ScalingOp, Stack,
    STACK_TAG,
};
use serde_json::{json, Value};
use std::collections::{BTreeMap, BTreeSet};
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

/// Every item of a paginated Application Auto Scaling Describe call (`NextToken`).
fn describe_all(c: &Client, op: &str, key: &str, body: Value) -> anyhow::Result<Vec<Value>> {
    let mut out = Vec::new();
    let mut token: Option<String> = None;
    // Bounded: 1000 pages of 50 is far more than a cluster has.
    for _ in 0..1000 {
        let mut b = body.clone();
        if let Some(t) = &token {
            b["NextToken"] = json!(t);
        }
        let r = c.autoscaling(op, b)?;
        out.extend(r[key].as_array().cloned().unwrap_or_default());
        token = r["NextToken"].as_str().map(str::to_string);
        if token.is_none() {
            break;
        }
    }
    Ok(out)
}

/// The Application Auto Scaling state of the cluster's services, by service name.
fn current_scaling(c: &Client, cluster: &str) -> anyhow::Result<BTreeMap<String, CurrentScaling>> {
    let ns = json!({"ServiceNamespace": SERVICE_NAMESPACE});
    let prefix = format!("service/{cluster}/");
    let service_of = |v: &Value| {
        v["ResourceId"]
            .as_str()
            .and_then(|r| r.strip_prefix(&prefix))
            .filter(|_| v["ScalableDimension"] == SCALABLE_DIMENSION)
            .map(str::to_string)
    };
    let mut out: BTreeMap<String, CurrentScaling> = BTreeMap::new();
    for t in describe_all(c, "DescribeScalableTargets", "ScalableTargets", ns.clone())? {
        if let Some(service) = service_of(&t) {
            let n = |k: &str| {
                t[k].as_u64()
                    .and_then(|n| u32::try_from(n).ok())
                    .unwrap_or(0)
            };
            out.insert(
                service,
                CurrentScaling {
                    min_capacity: n("MinCapacity"),
                    max_capacity: n("MaxCapacity"),
                    ..CurrentScaling::default()
                },
            );
        }
    }
    for p in describe_all(c, "DescribeScalingPolicies", "ScalingPolicies", ns.clone())? {
        if let Some(cur) = service_of(&p).and_then(|s| out.get_mut(&s)) {
            let config = if p["PolicyType"] == "TargetTrackingScaling" {
                p["TargetTrackingScalingPolicyConfiguration"].clone()
            } else {
                Value::Null
            };
            cur.policies.insert(
                p["PolicyName"].as_str().unwrap_or_default().to_string(),
                config,
            );
        }
    }
    for a in describe_all(c, "DescribeScheduledActions", "ScheduledActions", ns)? {
        if let Some(cur) = service_of(&a).and_then(|s| out.get_mut(&s)) {
            cur.scheduled.insert(
                a["ScheduledActionName"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string(),
                json!({"Schedule": a["Schedule"], "Timezone": a["Timezone"],
                       "ScalableTargetAction": a["ScalableTargetAction"]}),
            );
        }
    }
    Ok(out)
}

/// Carries out one scaling step through Application Auto Scaling.
fn apply_scaling(c: &Client, cluster: &str, op: &ScalingOp, refs: &ElbRefs) -> anyhow::Result<()> {
    let target = |service: &str| {
        json!({
            "ServiceNamespace": SERVICE_NAMESPACE,
            "ResourceId": resource_id(cluster, service),
            "ScalableDimension": SCALABLE_DIMENSION,
        })
    };
    match op {
        ScalingOp::Deregister { service } => {
            c.autoscaling("DeregisterScalableTarget", target(service))?;
        }
        ScalingOp::Apply {
            service,
            register,
            put_policies,
            delete_policies,
            put_scheduled,
            delete_scheduled,
        } => {
            if let Some((min, max)) = register {
                let mut body = target(service);
                body["MinCapacity"] = json!(min);
                body["MaxCapacity"] = json!(max);
                c.autoscaling("RegisterScalableTarget", body)?;
            }
            for name in delete_policies {
                let mut body = target(service);
                body["PolicyName"] = json!(name);
                c.autoscaling("DeleteScalingPolicy", body)
                    .with_context(|| format!("deleting scaling policy {name}"))?;
            }
            for p in put_policies {
                let label = match &p.metric {
                    ScalingMetric::Requests {
                        load_balancer,
                        target_group,
                    } => Some(
                        resource_label(
                            &refs.load_balancer_arn(load_balancer),
                            &refs.target_group_arn(target_group),
                        )
                        .with_context(|| {
                            format!("finding the ARNs of load balancer {load_balancer} and target group {target_group}")
                        })?,
                    ),
                    _ => None,
                };
                let mut body = target(service);
                body["PolicyName"] = json!(p.name);
                body["PolicyType"] = json!("TargetTrackingScaling");
                body["TargetTrackingScalingPolicyConfiguration"] =
                    p.configuration(label.as_deref());
                c.autoscaling("PutScalingPolicy", body)
                    .with_context(|| format!("putting scaling policy {}", p.name))?;
            }
            for name in delete_scheduled {
                let mut body = target(service);
                body["ScheduledActionName"] = json!(name);
                c.autoscaling("DeleteScheduledAction", body)
                    .with_context(|| format!("deleting scheduled action {name}"))?;
            }
            for s in put_scheduled {
                let mut body = target(service);
                body["ScheduledActionName"] = json!(s.name);
                body["Schedule"] = json!(s.schedule);
                if let Some(tz) = &s.timezone {
                    body["Timezone"] = json!(tz);
                }
                body["ScalableTargetAction"] = s.target_action();
                c.autoscaling("PutScheduledAction", body)
                    .with_context(|| format!("putting scheduled action {}", s.name))?;
            }
        }
    }
    Ok(())
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
    let mut current = current_services(&c, &stack)?;
    let scales = stack.services.values().any(|s| s.scaling.is_some());
    match current_scaling(&c, &stack.cluster) {
        Ok(mut scaling) => {
            for cur in &mut current {
                cur.scaling = scaling.remove(&cur.name);
            }
        }
        // A server without Application Auto Scaling only matters to stacks that scale.
        Err(e) if scales => return Err(e.context("reading Application Auto Scaling")),
        Err(_) => {}
    }
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
        if let Some(op) = &change.scaling {
            apply_scaling(c, &stack.cluster, op, &refs).with_context(|| {
                format!("{} {} {}", verb(change.kind), change.resource, change.name)
            })?;
            continue;
        }
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
            .map(|lb| lb.resolve(&refs))
            .collect();
        let mut body = json!({
            "cluster": stack.cluster,
            "desiredCount": spec.desired_count,
            "taskDefinition": td_arn,
            "healthCheckGracePeriodSeconds": spec.health_check_grace_period_seconds,
            "deploymentConfiguration": spec.deployment_configuration,
            "loadBalancers": load_balancers,
            (berth_model::ecs::INGRESS_FIELD): spec.ingress,
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
                if spec.scaling.is_some() {
                    // Application Auto Scaling owns the count of a running service.
                    if let Some(m) = body.as_object_mut() {
                        m.remove("desiredCount");
                    }
                }
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
