//! ECS operations (the API of `AmazonEC2ContainerServiceV20141113`) over the control plane's state.
//! Inputs and outputs are ECS's JSON; every refusal names the field and what was expected.

use crate::error::ApiError;
use crate::state::{
    service_key, td_key, ControlPlane, DeploymentHistory, ServiceRecord, State, TaskRecord,
    CLUSTERS, SERVICES, TASKS, TASK_DEFINITIONS,
};
use berth_model::arn::{name_of, task_definition_ref};
use berth_model::ecs::{
    stop_code, task_status, Cluster, Container, Deployment, DeploymentConfiguration, LoadBalancer,
    Service, ServiceEvent, Task, TaskDefinition,
};
use berth_model::now;
use serde_json::{json, Map, Value};

/// Maximum events kept per service (ECS returns the latest 100).
const MAX_EVENTS: usize = 100;

/// Runs one ECS operation by its name.
pub fn call(cp: &ControlPlane, operation: &str, input: Value) -> Result<Value, ApiError> {
    call_as(cp, operation, input, "anonymous")
}

/// Runs one ECS operation on behalf of `actor` (recorded in deployment history).
pub fn call_as(
    cp: &ControlPlane,
    operation: &str,
    mut input: Value,
    actor: &str,
) -> Result<Value, ApiError> {
    // JSON null means "not given", as AWS's services read it.
    strip_nulls(&mut input);
    let input = match input {
        Value::Object(m) => m,
        Value::Null => Map::new(),
        other => {
            return Err(ApiError::client(format!(
                "expected a JSON object as the request body, found {other}"
            )))
        }
    };
    match operation {
        "CreateCluster" => create_cluster(cp, &input),
        "DescribeClusters" => describe_clusters(cp, &input),
        "ListClusters" => list_clusters(cp, &input),
        "DeleteCluster" => delete_cluster(cp, &input),
        "RegisterTaskDefinition" => register_task_definition(cp, input),
        "DescribeTaskDefinition" => describe_task_definition(cp, &input),
        "ListTaskDefinitions" => list_task_definitions(cp, &input),
        "ListTaskDefinitionFamilies" => list_task_definition_families(cp, &input),
        "DeregisterTaskDefinition" => deregister_task_definition(cp, &input),
        "CreateService" => create_service(cp, &input, actor),
        "UpdateService" => update_service(cp, &input, actor),
        "DescribeServices" => describe_services(cp, &input),
        "ListServices" => list_services(cp, &input),
        "DeleteService" => delete_service(cp, &input),
        "RunTask" => run_task(cp, &input),
        "StopTask" => stop_task(cp, &input),
        "ListTasks" => list_tasks(cp, &input),
        "DescribeTasks" => describe_tasks(cp, &input),
        "ListTagsForResource" => list_tags(cp, &input),
        "ListContainerInstances" => list_container_instances(cp, &input),
        "ListServiceDeployments" => list_service_deployments(cp, &input),
        "DescribeServiceDeployments" => describe_service_deployments(cp, &input),
        other => Err(ApiError::unknown_operation(other)),
    }
}

fn strip_nulls(v: &mut Value) {
    match v {
        Value::Object(m) => {
            m.retain(|_, x| !x.is_null());
            m.values_mut().for_each(strip_nulls);
        }
        Value::Array(a) => a.iter_mut().for_each(strip_nulls),
        _ => {}
    }
}

// ---- input helpers ----------------------------------------------------------------------------

fn opt_str(input: &Map<String, Value>, field: &str) -> Result<Option<String>, ApiError> {
    match input.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(other) => Err(ApiError::invalid(format!(
            "{field}: expected a string, found {other}"
        ))),
    }
}

fn req_str(input: &Map<String, Value>, field: &str) -> Result<String, ApiError> {
    opt_str(input, field)?
        .filter(|s| !s.is_empty())
        .ok_or_else(|| ApiError::invalid(format!("{field}: expected a value, found nothing")))
}

fn opt_u32(input: &Map<String, Value>, field: &str) -> Result<Option<u32>, ApiError> {
    match input.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Number(n)) => n
            .as_u64()
            .and_then(|n| u32::try_from(n).ok())
            .map(Some)
            .ok_or_else(|| {
                ApiError::invalid(format!(
                    "{field}: expected a non-negative integer, found {n}"
                ))
            }),
        Some(other) => Err(ApiError::invalid(format!(
            "{field}: expected a non-negative integer, found {other}"
        ))),
    }
}

fn opt_bool(input: &Map<String, Value>, field: &str) -> Result<Option<bool>, ApiError> {
    match input.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Bool(b)) => Ok(Some(*b)),
        Some(other) => Err(ApiError::invalid(format!(
            "{field}: expected true or false, found {other}"
        ))),
    }
}

fn str_list(input: &Map<String, Value>, field: &str) -> Result<Vec<String>, ApiError> {
    match input.get(field) {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(Value::Array(items)) => items
            .iter()
            .enumerate()
            .map(|(i, v)| {
                v.as_str().map(str::to_string).ok_or_else(|| {
                    ApiError::invalid(format!("{field}[{i}]: expected a string, found {v}"))
                })
            })
            .collect(),
        Some(other) => Err(ApiError::invalid(format!(
            "{field}: expected a list of strings, found {other}"
        ))),
    }
}

fn typed<T: serde::de::DeserializeOwned>(field: &str, value: Value) -> Result<T, ApiError> {
    serde_path_to_error::deserialize(value).map_err(|e| {
        let path = e.path().to_string();
        let at = if path == "." {
            field.to_string()
        } else {
            format!("{field}.{path}")
        };
        ApiError::invalid(format!("{at}: {}", e.inner()))
    })
}

/// The `berthIngress` field of CreateService/UpdateService: `None` when absent, the validated
/// rules otherwise (an empty list removes them).
fn ingress_input(
    input: &Map<String, Value>,
) -> Result<Option<Vec<berth_model::ecs::IngressRule>>, ApiError> {
    let field = berth_model::ecs::INGRESS_FIELD;
    let Some(v) = input.get(field).filter(|v| !v.is_null()) else {
        return Ok(None);
    };
    let rules: Vec<berth_model::ecs::IngressRule> = typed(field, v.clone())?;
    let mut errs = berth_model::FieldErrors::default();
    for (i, r) in rules.iter().enumerate() {
        errs.0.extend(r.validate(&format!("{field}[{i}]")).0);
    }
    if let Some(e) = errs.0.first() {
        return Err(ApiError::invalid(format!("{}: {}", e.path, e.message)));
    }
    Ok(Some(rules))
}

/// Stores ingress rules on the service record (removes the field when there are none).
fn set_ingress(service: &mut Service, rules: &[berth_model::ecs::IngressRule]) {
    if rules.is_empty() {
        service.extra.remove(berth_model::ecs::INGRESS_FIELD);
    } else {
        service
            .extra
            .insert(berth_model::ecs::INGRESS_FIELD.into(), to_value(&rules));
    }
}

fn to_value<T: serde::Serialize>(v: &T) -> Value {
    serde_json::to_value(v).unwrap_or(Value::Null)
}

/// Pagination over a sorted list: `nextToken` is the index to continue from.
fn paginate(
    items: Vec<String>,
    input: &Map<String, Value>,
    default_max: usize,
) -> Result<(Vec<String>, Option<String>), ApiError> {
    let max = opt_u32(input, "maxResults")?
        .map(|m| m as usize)
        .unwrap_or(default_max)
        .max(1);
    let start = match opt_str(input, "nextToken")? {
        Some(t) => t.parse::<usize>().map_err(|_| {
            ApiError::invalid(format!(
                "nextToken: expected a token from an earlier response, found {t:?}"
            ))
        })?,
        None => 0,
    };
    let page: Vec<String> = items.iter().skip(start).take(max).cloned().collect();
    let next = (start + max < items.len()).then(|| (start + max).to_string());
    Ok((page, next))
}

fn new_id() -> String {
    uuid::Uuid::new_v4().simple().to_string()
}

// ---- clusters -----------------------------------------------------------------------------------

pub(crate) fn insert_cluster(st: &mut State, cp: &ControlPlane, name: &str) -> Cluster {
    let cluster = Cluster {
        cluster_arn: cp.arns().cluster(name),
        cluster_name: name.to_string(),
        status: "ACTIVE".into(),
        ..Cluster::default()
    };
    st.clusters.insert(name.to_string(), cluster.clone());
    st.touch(CLUSTERS, name);
    cluster
}

/// The cluster named (or ARN'd) by `cluster`, default `default`; it must be ACTIVE.
fn cluster_name(st: &State, input: &Map<String, Value>) -> Result<String, ApiError> {
    let name = opt_str(input, "cluster")?.unwrap_or_else(|| "default".into());
    let name = name_of(&name).to_string();
    match st.clusters.get(&name) {
        Some(c) if c.status == "ACTIVE" => Ok(name),
        _ => Err(ApiError::cluster_not_found(&name)),
    }
}

fn cluster_view(st: &State, c: &Cluster) -> Cluster {
    let mut c = c.clone();
    let tasks = st.tasks.values().filter(|t| t.cluster == c.cluster_name);
    c.running_tasks_count = tasks
        .clone()
        .filter(|t| t.task.last_status == task_status::RUNNING)
        .count() as u32;
    c.pending_tasks_count = tasks
        .filter(|t| {
            t.task.last_status == task_status::PENDING
                || t.task.last_status == task_status::PROVISIONING
        })
        .count() as u32;
    c.active_services_count = st
        .services
        .values()
        .filter(|s| s.cluster == c.cluster_name && s.service.status == "ACTIVE")
        .count() as u32;
    c.registered_container_instances_count = st.nodes.len() as u32;
    c
}

fn create_cluster(cp: &ControlPlane, input: &Map<String, Value>) -> Result<Value, ApiError> {
    let name = opt_str(input, "clusterName")?.unwrap_or_else(|| "default".into());
    if !berth_model::ecs::valid_name(&name, 255) {
        return Err(ApiError::invalid(format!(
            "clusterName: expected 1-255 letters, digits, hyphens or underscores, found {name:?}"
        )));
    }
    cp.mutate(|st, cp| {
        // CreateCluster is idempotent in ECS: an existing ACTIVE cluster is returned as it is.
        let cluster = match st.clusters.get(&name) {
            Some(c) if c.status == "ACTIVE" => c.clone(),
            _ => insert_cluster(st, cp, &name),
        };
        Ok(json!({ "cluster": cluster_view(st, &cluster) }))
    })
}

fn describe_clusters(cp: &ControlPlane, input: &Map<String, Value>) -> Result<Value, ApiError> {
    let mut names = str_list(input, "clusters")?;
    if names.is_empty() {
        names.push("default".into());
    }
    cp.read(|st| {
        let mut clusters = Vec::new();
        let mut failures = Vec::new();
        for n in &names {
            match st.clusters.get(name_of(n)) {
                Some(c) => clusters.push(to_value(&cluster_view(st, c))),
                None => failures
                    .push(json!({"arn": cp.arns().cluster(name_of(n)), "reason": "MISSING"})),
            }
        }
        Ok(json!({ "clusters": clusters, "failures": failures }))
    })
}

fn list_clusters(cp: &ControlPlane, input: &Map<String, Value>) -> Result<Value, ApiError> {
    let arns = cp.read(|st| {
        st.clusters
            .values()
            .filter(|c| c.status == "ACTIVE")
            .map(|c| c.cluster_arn.clone())
            .collect()
    });
    let (page, next) = paginate(arns, input, 100)?;
    Ok(json!({ "clusterArns": page, "nextToken": next }))
}

fn delete_cluster(cp: &ControlPlane, input: &Map<String, Value>) -> Result<Value, ApiError> {
    let name = name_of(&req_str(input, "cluster")?).to_string();
    cp.mutate(|st, _| {
        let Some(cluster) = st.clusters.get(&name).cloned() else {
            return Err(ApiError::cluster_not_found(&name));
        };
        if st
            .services
            .values()
            .any(|s| s.cluster == name && s.service.status != "INACTIVE")
        {
            return Err(ApiError {
                code: "ClusterContainsServicesException",
                message: format!("The cluster {name} cannot be deleted while services are active."),
                status: 400,
            });
        }
        if st
            .tasks
            .values()
            .any(|t| t.cluster == name && t.task.last_status != task_status::STOPPED)
        {
            return Err(ApiError {
                code: "ClusterContainsTasksException",
                message: format!("The cluster {name} cannot be deleted while tasks are active."),
                status: 400,
            });
        }
        let mut c = cluster;
        c.status = "INACTIVE".into();
        st.clusters.insert(name.clone(), c.clone());
        st.touch(CLUSTERS, &name);
        Ok(json!({ "cluster": c }))
    })
}

// ---- task definitions ---------------------------------------------------------------------------

/// Fields that ECS fills in on output and that a request must not set.
const OUTPUT_ONLY: &[&str] = &[
    "taskDefinitionArn",
    "revision",
    "status",
    "registeredAt",
    "deregisteredAt",
];

fn register_task_definition(
    cp: &ControlPlane,
    mut input: Map<String, Value>,
) -> Result<Value, ApiError> {
    let tags = input.remove("tags").unwrap_or(Value::Array(vec![]));
    for f in OUTPUT_ONLY {
        input.remove(*f);
    }
    let mut td: TaskDefinition = typed("taskDefinition", Value::Object(input))?;
    let errs = td.validate("");
    if !errs.is_empty() {
        let all: Vec<String> = errs.0.iter().map(|e| e.to_string()).collect();
        return Err(ApiError::client(all.join("; ")));
    }
    cp.mutate(|st, cp| {
        let prefix = format!("{}:", td.family);
        let last = st
            .task_definitions
            .range(prefix.clone()..)
            .take_while(|(k, _)| k.starts_with(&prefix))
            .map(|(_, t)| t.revision)
            .max()
            .unwrap_or(0);
        td.revision = last + 1;
        td.task_definition_arn = cp.arns().task_definition(&td.family, td.revision);
        td.status = "ACTIVE".into();
        td.registered_at = Some(now());
        td.extra
            .entry("compatibilities")
            .or_insert_with(|| json!(["EC2", "FARGATE"]));
        let key = td_key(&td.family, td.revision);
        st.task_definitions.insert(key.clone(), td.clone());
        st.touch(TASK_DEFINITIONS, &key);
        Ok(json!({ "taskDefinition": td, "tags": tags }))
    })
}

/// Finds a task definition by `family`, `family:rev` or ARN; `family` alone means the latest ACTIVE.
pub fn find_task_definition(st: &State, reference: &str) -> Result<TaskDefinition, ApiError> {
    let (family, revision) = task_definition_ref(reference);
    let found = match revision {
        Some(r) => st.task_definitions.get(&td_key(&family, r)).cloned(),
        None => {
            let prefix = format!("{family}:");
            st.task_definitions
                .range(prefix.clone()..)
                .take_while(|(k, _)| k.starts_with(&prefix))
                .filter(|(_, t)| t.status == "ACTIVE")
                .map(|(_, t)| t.clone())
                .last()
        }
    };
    found.ok_or_else(|| {
        ApiError::client(format!(
            "taskDefinition: no task definition {reference:?} is registered"
        ))
    })
}

fn describe_task_definition(
    cp: &ControlPlane,
    input: &Map<String, Value>,
) -> Result<Value, ApiError> {
    let reference = req_str(input, "taskDefinition")?;
    cp.read(|st| {
        let td = find_task_definition(st, &reference)?;
        Ok(json!({ "taskDefinition": td, "tags": [] }))
    })
}

fn list_task_definitions(cp: &ControlPlane, input: &Map<String, Value>) -> Result<Value, ApiError> {
    let family = opt_str(input, "familyPrefix")?;
    let status = opt_str(input, "status")?.unwrap_or_else(|| "ACTIVE".into());
    let desc = opt_str(input, "sort")?.as_deref() == Some("DESC");
    let mut arns: Vec<String> = cp.read(|st| {
        st.task_definitions
            .values()
            .filter(|t| family.as_ref().is_none_or(|f| &t.family == f))
            .filter(|t| status == "ALL" || t.status == status)
            .map(|t| t.task_definition_arn.clone())
            .collect()
    });
    if desc {
        arns.reverse();
    }
    let (page, next) = paginate(arns, input, 100)?;
    Ok(json!({ "taskDefinitionArns": page, "nextToken": next }))
}

fn list_task_definition_families(
    cp: &ControlPlane,
    input: &Map<String, Value>,
) -> Result<Value, ApiError> {
    let prefix = opt_str(input, "familyPrefix")?.unwrap_or_default();
    let status = opt_str(input, "status")?.unwrap_or_else(|| "ACTIVE".into());
    let families: Vec<String> = cp.read(|st| {
        let mut f: Vec<String> = st
            .task_definitions
            .values()
            .filter(|t| t.family.starts_with(&prefix))
            .filter(|t| status == "ALL" || t.status == status)
            .map(|t| t.family.clone())
            .collect();
        f.dedup();
        f
    });
    let (page, next) = paginate(families, input, 100)?;
    Ok(json!({ "families": page, "nextToken": next }))
}

fn deregister_task_definition(
    cp: &ControlPlane,
    input: &Map<String, Value>,
) -> Result<Value, ApiError> {
    let reference = req_str(input, "taskDefinition")?;
    let (family, revision) = task_definition_ref(&reference);
    let Some(revision) = revision else {
        return Err(ApiError::client(format!(
            "taskDefinition: expected family:revision or an ARN, found {reference:?}"
        )));
    };
    cp.mutate(|st, _| {
        let key = td_key(&family, revision);
        let Some(td) = st.task_definitions.get_mut(&key) else {
            return Err(ApiError::client(format!(
                "taskDefinition: no task definition {reference:?} is registered"
            )));
        };
        td.status = "INACTIVE".into();
        td.deregistered_at = Some(now());
        let td = td.clone();
        st.touch(TASK_DEFINITIONS, &key);
        Ok(json!({ "taskDefinition": td }))
    })
}

// ---- services -----------------------------------------------------------------------------------

/// Most tasks one service may ask for (ECS's quota of tasks per service).
pub const MAX_DESIRED_COUNT: u32 = 5000;

fn check_desired_count(desired: u32) -> Result<(), ApiError> {
    if desired > MAX_DESIRED_COUNT {
        return Err(ApiError::invalid(format!(
            "desiredCount: expected 0-{MAX_DESIRED_COUNT}, found {desired}"
        )));
    }
    Ok(())
}

fn deployment_id() -> String {
    let n = uuid::Uuid::new_v4().as_u128() % 10u128.pow(19);
    format!("ecs-svc/{n:019}")
}

pub(crate) fn new_deployment(td_arn: &str, desired: u32, now: f64) -> Deployment {
    let id = deployment_id();
    Deployment {
        rollout_state_reason: Some(format!("ECS deployment {id} in progress.")),
        id,
        status: "PRIMARY".into(),
        task_definition: td_arn.to_string(),
        desired_count: desired,
        created_at: now,
        updated_at: now,
        launch_type: "FARGATE".into(),
        rollout_state: Some("IN_PROGRESS".into()),
        ..Deployment::default()
    }
}

/// Adds an event to a service, newest first.
pub(crate) fn push_event(rec: &mut ServiceRecord, message: String) {
    rec.next_event += 1;
    let event = ServiceEvent {
        id: format!("{:016x}-{}", rec.next_event, &new_id()[..8]),
        created_at: now(),
        message,
    };
    rec.service.events.insert(0, event);
    rec.service.events.truncate(MAX_EVENTS);
}

fn check_load_balancers(
    st: &State,
    td: &TaskDefinition,
    lbs: &[LoadBalancer],
) -> Result<(), ApiError> {
    for (i, lb) in lbs.iter().enumerate() {
        let Some(tg) = &lb.target_group_arn else {
            return Err(ApiError::invalid(format!(
                "loadBalancers[{i}].targetGroupArn: expected a target group ARN, found nothing"
            )));
        };
        if st.elb.target_group(tg).is_err() {
            return Err(ApiError::invalid(format!(
                "loadBalancers[{i}].targetGroupArn: no target group {tg}"
            )));
        }
        let container = lb.container_name.as_deref().unwrap_or_default();
        let Some(c) = td
            .container_definitions
            .iter()
            .find(|c| c.name == container)
        else {
            return Err(ApiError::invalid(format!(
                "loadBalancers[{i}].containerName: expected a container of {}, found {container:?}",
                td.family_revision()
            )));
        };
        if let Some(adv) = &lb.advanced_configuration {
            if st
                .elb
                .target_group(&adv.alternate_target_group_arn)
                .is_err()
            {
                return Err(ApiError::invalid(format!(
                    "loadBalancers[{i}].advancedConfiguration.alternateTargetGroupArn: no target group {:?}",
                    adv.alternate_target_group_arn
                )));
            }
            for (field, rule) in [
                (
                    "productionListenerRule",
                    Some(&adv.production_listener_rule),
                ),
                ("testListenerRule", adv.test_listener_rule.as_ref()),
            ] {
                if let Some(rule) = rule {
                    if st.elb.forward_weights(rule).is_none() {
                        return Err(ApiError::invalid(format!(
                            "loadBalancers[{i}].advancedConfiguration.{field}: expected a listener rule (or listener) ARN with a forward action, found {rule:?}"
                        )));
                    }
                }
            }
        }
        let port = lb.container_port.unwrap_or(0);
        if !c
            .port_mappings
            .iter()
            .any(|p| p.container_port == Some(port))
        {
            return Err(ApiError::invalid(format!(
                "loadBalancers[{i}].containerPort: expected a containerPort of container {container}, found {port}"
            )));
        }
    }
    Ok(())
}

fn create_service(
    cp: &ControlPlane,
    input: &Map<String, Value>,
    actor: &str,
) -> Result<Value, ApiError> {
    let name = req_str(input, "serviceName")?;
    if !berth_model::ecs::valid_name(&name, 255) {
        return Err(ApiError::invalid(format!(
            "serviceName: expected 1-255 letters, digits, hyphens or underscores, found {name:?}"
        )));
    }
    let td_ref = req_str(input, "taskDefinition")?;
    let desired = opt_u32(input, "desiredCount")?.unwrap_or(0);
    check_desired_count(desired)?;
    let lbs: Vec<LoadBalancer> = typed(
        "loadBalancers",
        input.get("loadBalancers").cloned().unwrap_or(json!([])),
    )?;
    let dc: DeploymentConfiguration = typed(
        "deploymentConfiguration",
        input
            .get("deploymentConfiguration")
            .cloned()
            .unwrap_or(json!({})),
    )?;
    check_percentages(&dc)?;
    let grace = opt_u32(input, "healthCheckGracePeriodSeconds")?;
    let tags = input.get("tags").cloned().unwrap_or(json!([]));
    let tags = match tags {
        Value::Array(t) => t,
        other => {
            return Err(ApiError::invalid(format!(
                "tags: expected a list of {{key, value}}, found {other}"
            )))
        }
    };
    let controller = input.get("deploymentController").cloned();
    let ingress = ingress_input(input)?.unwrap_or_default();
    cp.mutate(|st, cp| {
        let cluster = cluster_name(st, input)?;
        let key = service_key(&cluster, &name);
        if let Some(existing) = st.services.get(&key) {
            if existing.service.status != "INACTIVE" {
                return Err(ApiError::invalid(format!(
                    "serviceName: a service named {name} already exists in cluster {cluster}"
                )));
            }
        }
        let td = find_task_definition(st, &td_ref)?;
        if td.status != "ACTIVE" {
            return Err(ApiError::client(format!(
                "taskDefinition: {} is INACTIVE",
                td.family_revision()
            )));
        }
        check_load_balancers(st, &td, &lbs)?;
        let t = now();
        let deployment = new_deployment(&td.task_definition_arn, desired, t);
        let mut extra = Map::new();
        extra.insert(
            "createdBy".into(),
            json!(format!("arn:aws:iam::{}:root", cp.arns().account)),
        );
        extra.insert("propagateTags".into(), json!("NONE"));
        if !tags.is_empty() {
            extra.insert("tags".into(), Value::Array(tags.clone()));
        }
        if !ingress.is_empty() {
            extra.insert(berth_model::ecs::INGRESS_FIELD.into(), to_value(&ingress));
        }
        let service = Service {
            service_arn: cp.arns().service(&cluster, &name),
            service_name: name.clone(),
            cluster_arn: cp.arns().cluster(&cluster),
            load_balancers: lbs.clone(),
            status: "ACTIVE".into(),
            desired_count: desired,
            running_count: 0,
            pending_count: 0,
            launch_type: "FARGATE".into(),
            task_definition: td.task_definition_arn.clone(),
            deployment_configuration: dc.clone(),
            deployments: vec![deployment],
            events: vec![],
            created_at: t,
            health_check_grace_period_seconds: grace,
            scheduling_strategy: "REPLICA".into(),
            deployment_controller: Some(match &controller {
                Some(c) => typed("deploymentController", c.clone())?,
                None => berth_model::ecs::DeploymentController { kind: "ECS".into() },
            }),
            extra,
        };
        let rec = ServiceRecord {
            cluster: cluster.clone(),
            service: service.clone(),
            tags: tags.clone(),
            backoff_failures: 0,
            backoff_until: 0.0,
            steady: false,
            throttle_reported: false,
            next_event: 0,
            history: vec![history_entry(
                &service.deployments[0],
                actor,
                "create",
                None,
            )],
            last_completed_task_definition: None,
            shift: None,
            deployment_target_groups: lbs
                .iter()
                .find(|l| l.advanced_configuration.is_some())
                .and_then(|l| l.target_group_arn.clone())
                .map(|tg| {
                    [(service.deployments[0].id.clone(), tg)]
                        .into_iter()
                        .collect()
                })
                .unwrap_or_default(),
        };
        st.services.insert(key.clone(), rec);
        st.touch(SERVICES, &key);
        Ok(json!({ "service": service }))
    })
}

fn check_percentages(dc: &DeploymentConfiguration) -> Result<(), ApiError> {
    if let Some(max) = dc.maximum_percent {
        if !(100..=200).contains(&max) && max != 0 {
            return Err(ApiError::invalid(format!(
                "deploymentConfiguration.maximumPercent: expected 100-200, found {max}"
            )));
        }
    }
    if let Some(min) = dc.minimum_healthy_percent {
        if min > 100 {
            return Err(ApiError::invalid(format!(
                "deploymentConfiguration.minimumHealthyPercent: expected 0-100, found {min}"
            )));
        }
    }
    if let Some(m) = dc.test_traffic_time_in_minutes {
        if !(m.is_finite() && (0.0..=1440.0).contains(&m)) {
            return Err(ApiError::invalid(format!(
                "deploymentConfiguration.testTrafficTimeInMinutes: expected 0-1440 minutes, found {m}"
            )));
        }
    }
    Ok(())
}

fn find_service<'a>(
    st: &'a State,
    cluster: &str,
    service: &str,
) -> Result<&'a ServiceRecord, ApiError> {
    st.services
        .get(&service_key(cluster, name_of(service)))
        .ok_or_else(|| ApiError::service_not_found(name_of(service)))
}

fn update_service(
    cp: &ControlPlane,
    input: &Map<String, Value>,
    actor: &str,
) -> Result<Value, ApiError> {
    let service_ref = req_str(input, "service")?;
    let desired = opt_u32(input, "desiredCount")?;
    if let Some(d) = desired {
        check_desired_count(d)?;
    }
    let td_ref = opt_str(input, "taskDefinition")?;
    let force = opt_bool(input, "forceNewDeployment")?.unwrap_or(false);
    let dc: Option<DeploymentConfiguration> = match input.get("deploymentConfiguration") {
        Some(v) if !v.is_null() => Some(typed("deploymentConfiguration", v.clone())?),
        _ => None,
    };
    if let Some(dc) = &dc {
        check_percentages(dc)?;
    }
    let grace = opt_u32(input, "healthCheckGracePeriodSeconds")?;
    let lbs: Option<Vec<LoadBalancer>> = match input.get("loadBalancers") {
        Some(v) if !v.is_null() => Some(typed("loadBalancers", v.clone())?),
        _ => None,
    };
    let ingress = ingress_input(input)?;
    cp.mutate(|st, _| {
        let cluster = cluster_name(st, input)?;
        let rec = find_service(st, &cluster, &service_ref)?;
        if rec.service.status != "ACTIVE" {
            return Err(ApiError::service_not_active(&rec.service.service_name));
        }
        let key = service_key(&cluster, &rec.service.service_name);
        let new_td = match &td_ref {
            Some(r) => {
                let td = find_task_definition(st, r)?;
                if td.status != "ACTIVE" {
                    return Err(ApiError::client(format!(
                        "taskDefinition: {} is INACTIVE",
                        td.family_revision()
                    )));
                }
                Some(td)
            }
            None => None,
        };
        let current_td = find_task_definition(st, &rec.service.task_definition)?;
        let lbs_checked = match &lbs {
            Some(l) => {
                check_load_balancers(st, new_td.as_ref().unwrap_or(&current_td), l)?;
                Some(l.clone())
            }
            None => None,
        };
        let Some(rec) = st.services.get_mut(&key) else {
            return Err(ApiError::service_not_found(&service_ref));
        };
        let t = now();
        if let Some(d) = desired {
            rec.service.desired_count = d;
        }
        if let Some(dc) = dc {
            rec.service.deployment_configuration = dc;
        }
        if let Some(g) = grace {
            rec.service.health_check_grace_period_seconds = Some(g);
        }
        if let Some(l) = lbs_checked {
            rec.service.load_balancers = l;
        }
        if let Some(rules) = &ingress {
            set_ingress(&mut rec.service, rules);
        }
        let td_changed = new_td
            .as_ref()
            .is_some_and(|td| td.task_definition_arn != rec.service.task_definition);
        let mut rollback_shift = false;
        let mut adopt: Option<(String, String)> = None;
        if td_changed || force {
            let arn = new_td
                .map(|t| t.task_definition_arn)
                .unwrap_or_else(|| rec.service.task_definition.clone());
            let trigger = if td_changed { "taskDefinition" } else { "forceNewDeployment" };
            let rollback_of = input.get("berthRollbackOf").and_then(Value::as_str).map(str::to_string);
            let trigger = if rollback_of.is_some() { "rollback" } else { trigger };
            if let Some(shift) = &rec.shift {
                if arn == shift.blue_task_definition {
                    // Going back to the old version during a traffic shift: switch traffic at once.
                    rollback_shift = true;
                } else {
                    return Err(ApiError::invalid(format!(
                        "taskDefinition: a {} deployment ({}) is in progress; wait for it or roll it back first",
                        rec.service.deployment_configuration.strategy(),
                        shift.green
                    )));
                }
            } else if crate::shift::shifting_lb(rec).is_some() {
                crate::shift::begin(rec, &arn, actor, trigger, t)?;
            } else {
                for d in rec.service.deployments.iter_mut() {
                    if d.status == "PRIMARY" {
                        d.status = "ACTIVE".into();
                        d.updated_at = t;
                    }
                }
                let dep = new_deployment(&arn, rec.service.desired_count, t);
                supersede_history(rec, &dep.id, t);
                rec.history.insert(0, history_entry(&dep, actor, trigger, rollback_of.clone()));
                rec.history.truncate(crate::state::MAX_HISTORY);
                if rollback_of.is_some() {
                    adopt = Some((arn.clone(), dep.id.clone()));
                }
                rec.service.task_definition = arn;
                rec.service.deployments.insert(0, dep);
                rec.steady = false;
                // A new deployment gets a fresh start: earlier failures don't throttle it.
                rec.backoff_failures = 0;
                rec.backoff_until = 0.0;
            }
        }
        let desired_now = rec.service.desired_count;
        if let Some(primary) = rec
            .service
            .deployments
            .iter_mut()
            .find(|d| d.status == "PRIMARY")
        {
            if primary.desired_count != desired_now {
                primary.desired_count = desired_now;
                primary.updated_at = t;
            }
        }
        rec.steady = rec.steady && desired.is_none();
        let mut out = rec.service.clone();
        st.touch(SERVICES, &key);
        if let (Some((td, dep)), Some(owned)) = (adopt, st.services.get(&key).cloned()) {
            crate::reconcile::adopt_tasks(st, &owned, &td, &dep);
        }
        if rollback_shift {
            if let Some(mut owned) = st.services.remove(&key) {
                crate::shift::rollback(st, &mut owned, &format!("rolled back by {actor}"), t);
                out = owned.service.clone();
                st.services.insert(key.clone(), owned);
            }
        }
        Ok(json!({ "service": out }))
    })
}

fn describe_services(cp: &ControlPlane, input: &Map<String, Value>) -> Result<Value, ApiError> {
    let names = str_list(input, "services")?;
    if names.is_empty() {
        return Err(ApiError::invalid(
            "services: expected at least one service name or ARN, found none",
        ));
    }
    let include_tags = str_list(input, "include")?.iter().any(|i| i == "TAGS");
    cp.read(|st| {
        let cluster = cluster_name(st, input)?;
        let mut services = Vec::new();
        let mut failures = Vec::new();
        for n in &names {
            match st.services.get(&service_key(&cluster, name_of(n))) {
                Some(rec) => {
                    let mut v = to_value(&rec.service);
                    if !include_tags {
                        if let Some(m) = v.as_object_mut() {
                            m.remove("tags");
                        }
                    }
                    services.push(v)
                }
                None => failures.push(
                    json!({"arn": cp.arns().service(&cluster, name_of(n)), "reason": "MISSING"}),
                ),
            }
        }
        Ok(json!({ "services": services, "failures": failures }))
    })
}

fn list_services(cp: &ControlPlane, input: &Map<String, Value>) -> Result<Value, ApiError> {
    let arns = cp.read(|st| {
        let cluster = cluster_name(st, input)?;
        Ok::<_, ApiError>(
            st.services
                .values()
                .filter(|s| s.cluster == cluster && s.service.status != "INACTIVE")
                .map(|s| s.service.service_arn.clone())
                .collect::<Vec<_>>(),
        )
    })?;
    let (page, next) = paginate(arns, input, 10)?;
    Ok(json!({ "serviceArns": page, "nextToken": next }))
}

fn delete_service(cp: &ControlPlane, input: &Map<String, Value>) -> Result<Value, ApiError> {
    let service_ref = req_str(input, "service")?;
    let force = opt_bool(input, "force")?.unwrap_or(false);
    cp.mutate(|st, _| {
        let cluster = cluster_name(st, input)?;
        let rec = find_service(st, &cluster, &service_ref)?;
        if rec.service.status == "INACTIVE" {
            return Err(ApiError::service_not_active(&rec.service.service_name));
        }
        if rec.service.desired_count > 0 && !force {
            return Err(ApiError::invalid(
                "desiredCount: the service cannot be deleted while it is scaled above 0; update desiredCount to 0 first or pass force",
            ));
        }
        let key = service_key(&cluster, &rec.service.service_name);
        let Some(rec) = st.services.get_mut(&key) else {
            return Err(ApiError::service_not_found(&service_ref));
        };
        rec.service.desired_count = 0;
        rec.service.status = "DRAINING".into();
        for d in rec.service.deployments.iter_mut() {
            d.desired_count = 0;
        }
        let out = rec.service.clone();
        st.touch(SERVICES, &key);
        Ok(json!({ "service": out }))
    })
}

/// A history entry for a new deployment.
pub(crate) fn history_entry(
    dep: &Deployment,
    actor: &str,
    trigger: &str,
    rollback_of: Option<String>,
) -> DeploymentHistory {
    DeploymentHistory {
        id: dep.id.clone(),
        task_definition: dep.task_definition.clone(),
        status: "IN_PROGRESS".into(),
        status_reason: None,
        created_at: dep.created_at,
        finished_at: None,
        started_by: actor.to_string(),
        trigger: trigger.to_string(),
        rollback_of,
    }
}

/// Deployments still in progress when a newer one starts are STOPPED by it.
pub(crate) fn supersede_history(rec: &mut ServiceRecord, new_id: &str, t: f64) {
    for h in rec.history.iter_mut().filter(|h| h.finished_at.is_none()) {
        h.status = "STOPPED".into();
        h.status_reason = Some(format!("Replaced by deployment {new_id}."));
        h.finished_at = Some(t);
    }
}

fn deployment_view(
    cp: &ControlPlane,
    rec: &ServiceRecord,
    h: &DeploymentHistory,
    brief: bool,
) -> Value {
    let arn = format!(
        "arn:aws:ecs:{}:{}:service-deployment/{}/{}/{}",
        cp.arns().region,
        cp.arns().account,
        rec.cluster,
        rec.service.service_name,
        h.id.trim_start_matches("ecs-svc/")
    );
    let mut v = json!({
        "serviceDeploymentArn": arn,
        "serviceArn": rec.service.service_arn,
        "clusterArn": rec.service.cluster_arn,
        "createdAt": h.created_at,
        "startedAt": h.created_at,
        "finishedAt": h.finished_at,
        "status": h.status,
        "statusReason": h.status_reason,
        "targetServiceRevisionArn": h.task_definition,
        // berth's own fields (AWS clients ignore them): the deployment id, who and what.
        "deploymentId": h.id,
        "taskDefinition": h.task_definition,
        "startedBy": h.started_by,
        "trigger": h.trigger,
        "rollbackOf": h.rollback_of,
    });
    if let Some(shift) = rec.shift.as_ref().filter(|s| s.green == h.id) {
        v["lifecycleStage"] = json!(shift.stage);
    }
    if !brief {
        v["deploymentConfiguration"] = to_value(&rec.service.deployment_configuration);
        v["deploymentCircuitBreaker"] = json!({"status": if rec.service.deployment_configuration.deployment_circuit_breaker.as_ref().is_some_and(|c| c.enable) { "MONITORING" } else { "DISABLED" }});
    }
    v
}

fn list_service_deployments(
    cp: &ControlPlane,
    input: &Map<String, Value>,
) -> Result<Value, ApiError> {
    let service = req_str(input, "service")?;
    let statuses = str_list(input, "status")?;
    let list = cp.read(|st| {
        let cluster = cluster_name(st, input)?;
        let rec = find_service(st, &cluster, &service)?;
        Ok::<_, ApiError>(
            rec.history
                .iter()
                .filter(|h| statuses.is_empty() || statuses.contains(&h.status))
                .map(|h| deployment_view(cp, rec, h, true))
                .collect::<Vec<_>>(),
        )
    })?;
    Ok(json!({ "serviceDeployments": list }))
}

fn describe_service_deployments(
    cp: &ControlPlane,
    input: &Map<String, Value>,
) -> Result<Value, ApiError> {
    let arns = str_list(input, "serviceDeploymentArns")?;
    cp.read(|st| {
        let mut found = Vec::new();
        let mut failures = Vec::new();
        for arn in &arns {
            let id = arn.rsplit('/').next().unwrap_or_default();
            let hit = st.services.values().find_map(|rec| {
                rec.history
                    .iter()
                    .find(|h| h.id.trim_start_matches("ecs-svc/") == id)
                    .map(|h| deployment_view(cp, rec, h, false))
            });
            match hit {
                Some(v) => found.push(v),
                None => failures.push(json!({"arn": arn, "reason": "MISSING"})),
            }
        }
        Ok(json!({ "serviceDeployments": found, "failures": failures }))
    })
}

// ---- tasks --------------------------------------------------------------------------------------

/// Log group a task's streams go to: `/berth/<cluster>/<service or family>`.
pub fn log_group_for(cluster: &str, service: Option<&str>, family: &str) -> String {
    format!("/berth/{cluster}/{}", service.unwrap_or(family))
}

/// Creates a task record (PROVISIONING) on a node; the caller commits.
#[allow(clippy::too_many_arguments)]
pub(crate) fn new_task(
    st: &mut State,
    cp: &ControlPlane,
    cluster: &str,
    td: &TaskDefinition,
    service: Option<&str>,
    deployment_id: Option<&str>,
    started_by: Option<String>,
    group: String,
    environment_overrides: Vec<(String, String, String)>,
) -> TaskRecord {
    let id = new_id();
    let task_arn = cp.arns().task(cluster, &id);
    let node = crate::nodes::pick_node(st);
    let containers = td
        .container_definitions
        .iter()
        .map(|c| Container {
            container_arn: cp.arns().container(cluster, &id, &new_id()),
            task_arn: task_arn.clone(),
            name: c.name.clone(),
            image: c.image.clone(),
            last_status: task_status::PENDING.into(),
            essential: c.is_essential(),
            health_status: c.health_check.as_ref().map(|_| "UNKNOWN".to_string()),
            ..Container::default()
        })
        .collect();
    let has_checks = td
        .container_definitions
        .iter()
        .any(|c| c.health_check.is_some());
    let task = Task {
        task_arn,
        cluster_arn: cp.arns().cluster(cluster),
        task_definition_arn: td.task_definition_arn.clone(),
        container_instance_arn: Some(cp.arns().container_instance(cluster, &node)),
        last_status: task_status::PROVISIONING.into(),
        desired_status: task_status::RUNNING.into(),
        health_status: Some(if has_checks { "UNKNOWN" } else { "UNKNOWN" }.to_string()),
        cpu: td.cpu.clone(),
        memory: td.memory.clone(),
        containers,
        started_by,
        group: Some(group),
        version: 1,
        launch_type: Some("FARGATE".into()),
        created_at: now(),
        ..Task::default()
    };
    let rec = TaskRecord {
        id: id.clone(),
        cluster: cluster.to_string(),
        task,
        node,
        service: service.map(str::to_string),
        deployment_id: deployment_id.map(str::to_string),
        log_group: log_group_for(cluster, service, &td.family),
        agent_desired: task_status::RUNNING.into(),
        draining_since: None,
        targets: vec![],
        failure_counted: false,
        success_counted: false,
        reported_stopped: false,
        environment_overrides,
    };
    st.tasks.insert(id.clone(), rec.clone());
    st.touch(TASKS, &id);
    rec
}

fn overrides_env(overrides: Option<&Value>) -> Result<Vec<(String, String, String)>, ApiError> {
    let mut out = Vec::new();
    let Some(o) = overrides else { return Ok(out) };
    if let Some(cos) = o.get("containerOverrides").and_then(Value::as_array) {
        for (i, co) in cos.iter().enumerate() {
            let name = co
                .get("name")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string();
            if let Some(env) = co.get("environment").and_then(Value::as_array) {
                for (j, kv) in env.iter().enumerate() {
                    let (Some(k), Some(v)) = (
                        kv.get("name").and_then(Value::as_str),
                        kv.get("value").and_then(Value::as_str),
                    ) else {
                        return Err(ApiError::invalid(format!(
                            "overrides.containerOverrides[{i}].environment[{j}]: expected {{name, value}} strings"
                        )));
                    };
                    out.push((name.clone(), k.to_string(), v.to_string()));
                }
            }
        }
    }
    Ok(out)
}

fn run_task(cp: &ControlPlane, input: &Map<String, Value>) -> Result<Value, ApiError> {
    let td_ref = req_str(input, "taskDefinition")?;
    let count = opt_u32(input, "count")?.unwrap_or(1);
    if !(1..=10).contains(&count) {
        return Err(ApiError::invalid(format!(
            "count: expected 1-10, found {count}"
        )));
    }
    let started_by = opt_str(input, "startedBy")?;
    let group = opt_str(input, "group")?;
    let env = overrides_env(input.get("overrides"))?;
    cp.mutate(|st, cp| {
        let cluster = cluster_name(st, input)?;
        let td = find_task_definition(st, &td_ref)?;
        if td.status != "ACTIVE" {
            return Err(ApiError::client(format!(
                "taskDefinition: {} is INACTIVE",
                td.family_revision()
            )));
        }
        let group = group
            .clone()
            .unwrap_or_else(|| format!("family:{}", td.family));
        let mut tasks = Vec::new();
        for _ in 0..count {
            let mut rec = new_task(
                st,
                cp,
                &cluster,
                &td,
                None,
                None,
                started_by.clone(),
                group.clone(),
                env.clone(),
            );
            if let Some(o) = input.get("overrides") {
                rec.task.overrides = Some(o.clone());
                st.tasks.insert(rec.id.clone(), rec.clone());
            }
            tasks.push(rec.task);
        }
        Ok(json!({ "tasks": tasks, "failures": [] }))
    })
}

/// Marks a task to stop with a reason; draining and the agent do the rest.
pub(crate) fn request_stop(st: &mut State, task_id: &str, reason: &str, code: &str) {
    if let Some(rec) = st.tasks.get_mut(task_id) {
        if rec.task.desired_status == task_status::STOPPED {
            return;
        }
        rec.task.desired_status = task_status::STOPPED.into();
        rec.task
            .stopped_reason
            .get_or_insert_with(|| reason.to_string());
        rec.task.stop_code.get_or_insert_with(|| code.to_string());
        rec.task.stopping_at = Some(now());
        rec.task.version += 1;
        st.touch(TASKS, task_id);
    }
}

fn find_task_id(st: &State, cluster: &str, reference: &str) -> Option<String> {
    let id = name_of(reference);
    st.tasks
        .get(id)
        .filter(|t| t.cluster == cluster)
        .map(|t| t.id.clone())
}

fn stop_task(cp: &ControlPlane, input: &Map<String, Value>) -> Result<Value, ApiError> {
    let reference = req_str(input, "task")?;
    let reason = opt_str(input, "reason")?.unwrap_or_else(|| "Task stopped by user".into());
    cp.mutate(|st, _| {
        let cluster = cluster_name(st, input)?;
        let Some(id) = find_task_id(st, &cluster, &reference) else {
            return Err(ApiError::invalid(format!(
                "task: no task {reference:?} in cluster {cluster}"
            )));
        };
        request_stop(st, &id, &reason, stop_code::USER_INITIATED);
        let task = st.tasks.get(&id).map(|t| t.task.clone());
        Ok(json!({ "task": task }))
    })
}

fn list_tasks(cp: &ControlPlane, input: &Map<String, Value>) -> Result<Value, ApiError> {
    let service = opt_str(input, "serviceName")?.map(|s| name_of(&s).to_string());
    let family = opt_str(input, "family")?;
    let started_by = opt_str(input, "startedBy")?;
    let desired = opt_str(input, "desiredStatus")?.unwrap_or_else(|| "RUNNING".into());
    if !["RUNNING", "PENDING", "STOPPED"].contains(&desired.as_str()) {
        return Err(ApiError::invalid(format!(
            "desiredStatus: expected RUNNING, PENDING or STOPPED, found {desired:?}"
        )));
    }
    let arns = cp.read(|st| {
        let cluster = cluster_name(st, input)?;
        if let Some(s) = &service {
            if !st.services.contains_key(&service_key(&cluster, s)) {
                return Err(ApiError::service_not_found(s));
            }
        }
        let mut tasks: Vec<&TaskRecord> = st
            .tasks
            .values()
            .filter(|t| t.cluster == cluster)
            .filter(|t| {
                service
                    .as_ref()
                    .is_none_or(|s| t.service.as_ref() == Some(s))
            })
            .filter(|t| {
                family
                    .as_ref()
                    .is_none_or(|f| t.task.task_definition_arn.contains(&format!("/{f}:")))
            })
            .filter(|t| {
                started_by
                    .as_ref()
                    .is_none_or(|s| t.task.started_by.as_ref() == Some(s))
            })
            .filter(|t| match desired.as_str() {
                "STOPPED" => t.task.desired_status == task_status::STOPPED,
                // ECS: RUNNING lists tasks whose desired status is RUNNING.
                _ => t.task.desired_status == task_status::RUNNING,
            })
            .collect();
        tasks.sort_by(|a, b| a.task.created_at.total_cmp(&b.task.created_at));
        Ok(tasks
            .iter()
            .map(|t| t.task.task_arn.clone())
            .collect::<Vec<_>>())
    })?;
    let (page, next) = paginate(arns, input, 100)?;
    Ok(json!({ "taskArns": page, "nextToken": next }))
}

fn describe_tasks(cp: &ControlPlane, input: &Map<String, Value>) -> Result<Value, ApiError> {
    let refs = str_list(input, "tasks")?;
    if refs.is_empty() {
        return Err(ApiError::invalid(
            "tasks: expected at least one task id or ARN, found none",
        ));
    }
    if refs.len() > 100 {
        return Err(ApiError::invalid(format!(
            "tasks: expected at most 100 tasks, found {}",
            refs.len()
        )));
    }
    cp.read(|st| {
        let cluster = cluster_name(st, input)?;
        let mut tasks = Vec::new();
        let mut failures = Vec::new();
        for r in &refs {
            match find_task_id(st, &cluster, r).and_then(|id| st.tasks.get(&id)) {
                Some(t) => tasks.push(to_value(&t.task)),
                None => failures.push(json!({"arn": r, "reason": "MISSING"})),
            }
        }
        Ok(json!({ "tasks": tasks, "failures": failures }))
    })
}

fn list_tags(cp: &ControlPlane, input: &Map<String, Value>) -> Result<Value, ApiError> {
    let arn = req_str(input, "resourceArn")?;
    cp.read(|st| {
        let tags = st
            .services
            .values()
            .find(|s| s.service.service_arn == arn)
            .map(|s| s.tags.clone())
            .unwrap_or_default();
        Ok(json!({ "tags": tags }))
    })
}

fn list_container_instances(
    cp: &ControlPlane,
    input: &Map<String, Value>,
) -> Result<Value, ApiError> {
    cp.read(|st| {
        let cluster = cluster_name(st, input)?;
        let arns: Vec<String> = st
            .nodes
            .keys()
            .map(|n| cp.arns().container_instance(&cluster, n))
            .collect();
        Ok(json!({ "containerInstanceArns": arns }))
    })
}
