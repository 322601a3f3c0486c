//! From the stack file's parsed value to a [`Stack`], collecting every error with its field path.
//! The file is walked as a `serde_json::Value` so that a wrong type (`desiredCount: two`) is an
//! error with a path like any other, not a deserializer failure that stops at the first problem.

mod deployment;
mod elb;
mod scaling;

use crate::elb::{LoadBalancerSpec, TargetGroupSpec};
use crate::spec::{default_family, ServiceLoadBalancer, ServiceSpec, Stack, DEFAULT_CLUSTER};
use berth_model::ecs::{valid_name, IngressRule, LoadBalancer, PortRange, TaskDefinition};
use berth_model::FieldErrors;
use serde_json::{Map, Value};
use std::collections::BTreeMap;
use std::path::Path;

/// Keys allowed at the top of the stack file.
pub(crate) const STACK_KEYS: &[&str] = &[
    "name",
    "cluster",
    "services",
    "loadBalancers",
    "targetGroups",
];
/// Keys allowed in a service.
pub(crate) const SERVICE_KEYS: &[&str] = &[
    "desiredCount",
    "taskDefinition",
    "taskDefinitionFile",
    "healthCheckGracePeriodSeconds",
    "deploymentConfiguration",
    "deployment",
    "loadBalancers",
    "scaling",
    "ingress",
];
const INGRESS_KEYS: &[&str] = &["from", "ports"];
const LOAD_BALANCER_KEYS: &[&str] = &[
    "targetGroup",
    "targetGroupArn",
    "loadBalancerName",
    "containerName",
    "containerPort",
    "advancedConfiguration",
];

/// The stack's ELBv2 sections, which services refer to by name.
pub(crate) struct StackRefs<'a> {
    pub target_groups: &'a BTreeMap<String, TargetGroupSpec>,
    pub load_balancers: &'a BTreeMap<String, LoadBalancerSpec>,
    /// Names of the stack's services (what `ingress[].from` may name).
    pub services: Vec<&'a str>,
}

/// Path used for errors about the document as a whole.
const ROOT: &str = "(document)";
/// Most tasks one service of a stack may ask for.
pub(crate) const MAX_DESIRED_COUNT: u64 = 1000;
/// Tasks a service runs when the file does not say.
const DEFAULT_DESIRED_COUNT: u32 = 1;

/// Checks the whole document and builds the stack, or returns every error found.
pub(crate) fn stack_from_value(doc: &Value, base_dir: &Path) -> Result<Stack, FieldErrors> {
    let mut errs = FieldErrors::default();
    let Some(root) = doc.as_object() else {
        errs.push(
            ROOT,
            format!(
                "expected a mapping with name, cluster and services, found {}",
                describe(doc)
            ),
        );
        return Err(errs);
    };
    check_keys(root, STACK_KEYS, "", &mut errs);
    let name = match get(root, "name") {
        Some(Value::String(s)) if valid_stack_name(s) => s.clone(),
        other => {
            errs.push(
                "name",
                format!(
                    "expected 1-64 lowercase letters, digits or hyphens (not starting with a hyphen), found {}",
                    describe_opt(other)
                ),
            );
            String::new()
        }
    };
    let cluster = match get(root, "cluster") {
        None => DEFAULT_CLUSTER.to_string(),
        Some(Value::String(s)) if valid_name(s, 255) => s.clone(),
        Some(other) => {
            errs.push(
                "cluster",
                format!(
                    "expected a cluster name of 1-255 letters, digits, hyphens or underscores, found {}",
                    describe(other)
                ),
            );
            String::new()
        }
    };
    let target_groups = match get(root, "targetGroups") {
        None => BTreeMap::new(),
        Some(v) => elb::target_groups(v, &mut errs),
    };
    let load_balancers = match get(root, "loadBalancers") {
        None => BTreeMap::new(),
        Some(v) => elb::load_balancers(v, &target_groups, &mut errs),
    };
    let mut services = BTreeMap::new();
    let refs = StackRefs {
        target_groups: &target_groups,
        load_balancers: &load_balancers,
        services: match get(root, "services") {
            Some(Value::Object(map)) => map.keys().map(String::as_str).collect(),
            _ => Vec::new(),
        },
    };
    match get(root, "services") {
        Some(Value::Object(map)) => {
            for (service_name, value) in map {
                if let Some(spec) =
                    service_from_value(&name, service_name, value, base_dir, &refs, &mut errs)
                {
                    services.insert(service_name.clone(), spec);
                }
            }
        }
        other => errs.push(
            "services",
            format!(
                "expected a mapping of service name to service, found {}",
                describe_opt(other)
            ),
        ),
    }
    errs.into_result()?;
    Ok(Stack {
        name,
        cluster,
        services,
        load_balancers,
        target_groups,
    })
}

fn valid_stack_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && !name.starts_with('-')
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
}

fn service_from_value(
    stack_name: &str,
    name: &str,
    value: &Value,
    base_dir: &Path,
    refs: &StackRefs<'_>,
    errs: &mut FieldErrors,
) -> Option<ServiceSpec> {
    let path = format!("services.{name}");
    if !valid_name(name, 255) {
        errs.push(
            &path,
            format!("expected a service name of 1-255 letters, digits, hyphens or underscores, found {name:?}"),
        );
    }
    let Some(obj) = value.as_object() else {
        errs.push(
            &path,
            format!(
                "expected a mapping with desiredCount and taskDefinition, found {}",
                describe(value)
            ),
        );
        return None;
    };
    check_keys(obj, SERVICE_KEYS, &path, errs);

    let given_count = get(obj, "desiredCount").map(|v| {
        integer(
            v,
            0,
            MAX_DESIRED_COUNT,
            &format!("{path}.desiredCount"),
            errs,
        )
        .and_then(|n| u32::try_from(n).ok())
    });

    let family = default_family(stack_name, name);
    let task_definition = match (get(obj, "taskDefinition"), get(obj, "taskDefinitionFile")) {
        (Some(_), Some(_)) => {
            errs.push(
                &path,
                "expected either taskDefinition or taskDefinitionFile, found both",
            );
            None
        }
        (None, None) => {
            errs.push(
                format!("{path}.taskDefinition"),
                "expected a task definition (or a taskDefinitionFile), found nothing",
            );
            None
        }
        (Some(v), None) => task_definition(v, &format!("{path}.taskDefinition"), "", &family, errs),
        (None, Some(v)) => task_definition_file(
            v,
            &format!("{path}.taskDefinitionFile"),
            base_dir,
            &family,
            errs,
        ),
    };

    let health_check_grace_period_seconds = get(obj, "healthCheckGracePeriodSeconds")
        .and_then(|v| {
            integer(
                v,
                0,
                i32::MAX as u64,
                &format!("{path}.healthCheckGracePeriodSeconds"),
                errs,
            )
        })
        .and_then(|n| u32::try_from(n).ok());

    let dc_value = get(obj, "deploymentConfiguration");
    let mut deployment_configuration = dc_value.and_then(|v| {
        deployment::deployment_configuration(v, &format!("{path}.deploymentConfiguration"), errs)
    });

    let mut load_balancers = match get(obj, "loadBalancers") {
        None => Vec::new(),
        Some(v) => load_balancers(
            v,
            &format!("{path}.loadBalancers"),
            task_definition.as_ref(),
            refs.target_groups,
            errs,
        ),
    };

    match get(obj, "deployment") {
        Some(v) => deployment::deployment(
            v,
            &format!("{path}.deployment"),
            dc_value,
            refs,
            &mut deployment_configuration,
            &mut load_balancers,
            errs,
        ),
        None => deployment::check_raw_shifting(
            deployment_configuration.as_ref(),
            &load_balancers,
            &path,
            errs,
        ),
    }

    let scaling =
        get(obj, "scaling").and_then(|v| scaling::scaling(v, &path, &load_balancers, refs, errs));
    // With scaling, desiredCount is the count a new service starts with (minCapacity unless
    // given); Application Auto Scaling owns it afterwards.
    let desired_count = match (&scaling, given_count) {
        (Some(s), None) => s.min_capacity,
        (None, None) => DEFAULT_DESIRED_COUNT,
        (_, Some(None)) => 0,
        (Some(s), Some(Some(n)))
            if s.min_capacity <= s.max_capacity
                && !(s.min_capacity..=s.max_capacity).contains(&n) =>
        {
            errs.push(
                format!("{path}.desiredCount"),
                format!(
                    "expected a count within scaling's minCapacity and maxCapacity ({}-{}), found {n}",
                    s.min_capacity, s.max_capacity
                ),
            );
            n
        }
        (_, Some(Some(n))) => n,
    };
    let ingress = match get(obj, "ingress") {
        None => Vec::new(),
        Some(v) => ingress(v, &format!("{path}.ingress"), refs, errs),
    };

    Some(ServiceSpec {
        desired_count,
        task_definition: task_definition.unwrap_or_default(),
        health_check_grace_period_seconds,
        deployment_configuration,
        load_balancers,
        scaling,
        ingress,
    })
}

/// A service's `ingress`: a list of `{from: <service>, ports: [8080, "9000-9100"]}`.
fn ingress(
    value: &Value,
    path: &str,
    refs: &StackRefs<'_>,
    errs: &mut FieldErrors,
) -> Vec<IngressRule> {
    let Some(list) = value.as_array() else {
        errs.push(
            path,
            format!(
                "expected a list of {{from: <service>, ports: [...]}} rules, found {}",
                describe(value)
            ),
        );
        return Vec::new();
    };
    let mut out = Vec::new();
    for (i, item) in list.iter().enumerate() {
        let at = format!("{path}[{i}]");
        let Some(obj) = item.as_object() else {
            errs.push(
                &at,
                format!(
                    "expected a mapping with from and ports, found {}",
                    describe(item)
                ),
            );
            continue;
        };
        check_keys(obj, INGRESS_KEYS, &at, errs);
        let from = match get(obj, "from") {
            Some(Value::String(s)) if refs.services.contains(&s.as_str()) => Some(s.clone()),
            other => {
                errs.push(
                    format!("{at}.from"),
                    format!(
                        "expected the name of one of the stack's services ({}), found {}",
                        refs.services.join(", "),
                        describe_opt(other)
                    ),
                );
                None
            }
        };
        let ports = match get(obj, "ports") {
            Some(Value::Array(ports)) if !ports.is_empty() => ports
                .iter()
                .enumerate()
                .filter_map(|(j, p)| port_range(p, &format!("{at}.ports[{j}]"), errs))
                .collect(),
            other => {
                errs.push(
                    format!("{at}.ports"),
                    format!(
                        "expected a non-empty list of ports (8080) or port ranges (\"9000-9100\"), found {}",
                        describe_opt(other)
                    ),
                );
                Vec::new()
            }
        };
        if let Some(from_service) = from {
            if !ports.is_empty() {
                out.push(IngressRule {
                    from_service,
                    ports,
                });
            }
        }
    }
    out
}

/// A port (`8080`, `"8080"`) or an inclusive range (`"9000-9100"`) of ports 1-65535.
fn port_range(value: &Value, path: &str, errs: &mut FieldErrors) -> Option<PortRange> {
    let parsed = match value {
        Value::String(s) => {
            let (a, b) = s.split_once('-').unwrap_or((s, s));
            match (a.trim().parse::<u16>(), b.trim().parse::<u16>()) {
                (Ok(from), Ok(to)) => Some(PortRange { from, to }),
                _ => None,
            }
        }
        Value::Number(n) => n
            .as_u64()
            .and_then(|n| u16::try_from(n).ok())
            .map(|p| PortRange { from: p, to: p }),
        _ => None,
    };
    match parsed {
        Some(r) if r.from >= 1 && r.from <= r.to => Some(r),
        _ => {
            errs.push(
                path,
                format!(
                    "expected a port 1-65535 or a range like \"9000-9100\" (low to high), found {}",
                    describe(value)
                ),
            );
            None
        }
    }
}

/// An inline task definition (ECS RegisterTaskDefinition JSON); `note` is added to every message
/// (it names the file for `taskDefinitionFile`).
fn task_definition(
    value: &Value,
    path: &str,
    note: &str,
    family: &str,
    errs: &mut FieldErrors,
) -> Option<TaskDefinition> {
    let Some(obj) = value.as_object() else {
        errs.push(
            path,
            format!("expected an ECS task definition mapping (containerDefinitions, ...), found {}{note}", describe(value)),
        );
        return None;
    };
    let mut obj = obj.clone();
    let has_family = matches!(obj.get("family"), Some(Value::String(s)) if !s.is_empty());
    if !has_family
        && matches!(
            obj.get("family"),
            None | Some(Value::Null) | Some(Value::String(_))
        )
    {
        obj.insert("family".to_string(), Value::from(family));
    }
    let td: TaskDefinition = match serde_path_to_error::deserialize(Value::Object(obj)) {
        Ok(td) => td,
        Err(e) => {
            let inner = e.path().to_string();
            let at = if inner.is_empty() || inner == "." {
                path.to_string()
            } else {
                format!("{path}.{inner}")
            };
            errs.push(
                at,
                format!("{}{note}", serde_message(&e.into_inner().to_string())),
            );
            return None;
        }
    };
    for e in td.validate(path).0 {
        errs.push(e.path, format!("{}{note}", e.message));
    }
    Some(td)
}

/// A task definition read from a JSON file next to the stack file. The output of
/// `aws ecs describe-task-definition` (`{"taskDefinition": {...}}`) is accepted too.
fn task_definition_file(
    value: &Value,
    path: &str,
    base_dir: &Path,
    family: &str,
    errs: &mut FieldErrors,
) -> Option<TaskDefinition> {
    let Some(relative) = value.as_str().filter(|s| !s.trim().is_empty()) else {
        errs.push(
            path,
            format!(
                "expected a path to an ECS task definition JSON file, found {}",
                describe(value)
            ),
        );
        return None;
    };
    let file = base_dir.join(relative);
    let text = match std::fs::read_to_string(&file) {
        Ok(text) => text,
        Err(e) => {
            errs.push(
                path,
                format!(
                    "expected a readable JSON file, found {} ({e})",
                    file.display()
                ),
            );
            return None;
        }
    };
    let mut doc: Value = match serde_json::from_str(&text) {
        Ok(doc) => doc,
        Err(e) => {
            errs.push(
                path,
                format!(
                    "expected ECS task definition JSON, found invalid JSON in {} ({e})",
                    file.display()
                ),
            );
            return None;
        }
    };
    if let Some(obj) = doc.as_object_mut() {
        if !obj.contains_key("containerDefinitions") {
            if let Some(inner) = obj.remove("taskDefinition") {
                doc = inner;
            }
        }
    }
    task_definition(
        &doc,
        path,
        &format!(" (in {})", file.display()),
        family,
        errs,
    )
}

fn load_balancers(
    value: &Value,
    path: &str,
    task_definition: Option<&TaskDefinition>,
    target_groups: &BTreeMap<String, TargetGroupSpec>,
    errs: &mut FieldErrors,
) -> Vec<ServiceLoadBalancer> {
    let Some(list) = value.as_array() else {
        errs.push(
            path,
            format!(
                "expected a list of load balancers, found {}",
                describe(value)
            ),
        );
        return Vec::new();
    };
    let mut out = Vec::new();
    for (i, item) in list.iter().enumerate() {
        let lb_path = format!("{path}[{i}]");
        let Some(obj) = item.as_object() else {
            errs.push(
                &lb_path,
                format!("expected a mapping with targetGroup (or targetGroupArn), containerName and containerPort, found {}", describe(item)),
            );
            continue;
        };
        check_keys(obj, LOAD_BALANCER_KEYS, &lb_path, errs);
        let target_group = string(obj, "targetGroup", &lb_path, errs);
        let target_group_arn = string(obj, "targetGroupArn", &lb_path, errs);
        let load_balancer_name = string(obj, "loadBalancerName", &lb_path, errs);
        let n_targets = ["targetGroup", "targetGroupArn", "loadBalancerName"]
            .iter()
            .filter(|k| get(obj, k).is_some())
            .count();
        if n_targets == 0 {
            errs.push(
                format!("{lb_path}.targetGroup"),
                "expected a target group of the stack (or a targetGroupArn), found nothing",
            );
        } else if n_targets > 1 {
            errs.push(
                &lb_path,
                "expected one of targetGroup, targetGroupArn and loadBalancerName, found more than one",
            );
        }
        if let Some(name) = &target_group {
            if !target_groups.contains_key(name) {
                errs.push(
                    format!("{lb_path}.targetGroup"),
                    format!(
                        "expected the name of one of the stack's targetGroups ({}), found {name:?}",
                        elb::names(target_groups)
                    ),
                );
            }
        }
        let container_name = match get(obj, "containerName") {
            None => {
                errs.push(
                    format!("{lb_path}.containerName"),
                    "expected a container name, found nothing",
                );
                None
            }
            Some(_) => string(obj, "containerName", &lb_path, errs),
        };
        let container_port = match get(obj, "containerPort") {
            None => {
                errs.push(
                    format!("{lb_path}.containerPort"),
                    "expected a port number 1-65535, found nothing",
                );
                None
            }
            Some(v) => integer(v, 1, 65535, &format!("{lb_path}.containerPort"), errs)
                .and_then(|n| u16::try_from(n).ok()),
        };
        if let (Some(td), Some(name), Some(port)) =
            (task_definition, &container_name, container_port)
        {
            check_target(td, name, port, &lb_path, errs);
        }
        let advanced_configuration = get(obj, "advancedConfiguration").and_then(|v| {
            deployment::advanced_configuration(v, &format!("{lb_path}.advancedConfiguration"), errs)
        });
        out.push(ServiceLoadBalancer {
            target_group,
            load_balancer: LoadBalancer {
                target_group_arn,
                load_balancer_name,
                container_name,
                container_port,
                advanced_configuration,
            },
            traffic: None,
        });
    }
    out
}

/// A load balancer's container and port must exist in the service's task definition.
fn check_target(td: &TaskDefinition, name: &str, port: u16, path: &str, errs: &mut FieldErrors) {
    let Some(container) = td.container_definitions.iter().find(|c| c.name == name) else {
        let names: Vec<&str> = td
            .container_definitions
            .iter()
            .map(|c| c.name.as_str())
            .collect();
        errs.push(
            format!("{path}.containerName"),
            format!(
                "expected the name of a container in the task definition ({}), found {name:?}",
                names.join(", ")
            ),
        );
        return;
    };
    if !container
        .port_mappings
        .iter()
        .any(|pm| pm.container_port == Some(port))
    {
        let ports: Vec<String> = container
            .port_mappings
            .iter()
            .filter_map(|pm| pm.container_port.map(|p| p.to_string()))
            .collect();
        let ports = if ports.is_empty() {
            "it has none".to_string()
        } else {
            ports.join(", ")
        };
        errs.push(
            format!("{path}.containerPort"),
            format!("expected a containerPort from the portMappings of container {name:?} ({ports}), found {port}"),
        );
    }
}

/// A present, non-null value.
fn get<'a>(obj: &'a Map<String, Value>, key: &str) -> Option<&'a Value> {
    obj.get(key).filter(|v| !v.is_null())
}

/// An optional non-empty string field.
fn string(
    obj: &Map<String, Value>,
    key: &str,
    path: &str,
    errs: &mut FieldErrors,
) -> Option<String> {
    match get(obj, key)? {
        Value::String(s) if !s.trim().is_empty() => Some(s.clone()),
        other => {
            errs.push(
                format!("{path}.{key}"),
                format!("expected a non-empty string, found {}", describe(other)),
            );
            None
        }
    }
}

/// A whole number in `min..=max` (YAML's `2.0` counts as 2).
fn integer(value: &Value, min: u64, max: u64, path: &str, errs: &mut FieldErrors) -> Option<u64> {
    let n = value.as_u64().or_else(|| {
        value
            .as_f64()
            .filter(|f| f.fract() == 0.0 && *f >= 0.0 && *f <= u64::MAX as f64)
            .map(|f| f as u64)
    });
    match n {
        Some(n) if (min..=max).contains(&n) => Some(n),
        _ => {
            errs.push(
                path,
                format!(
                    "expected an integer from {min} to {max}, found {}",
                    describe(value)
                ),
            );
            None
        }
    }
}

fn boolean(value: &Value, path: &str, errs: &mut FieldErrors) -> Option<bool> {
    match value {
        Value::Bool(b) => Some(*b),
        other => {
            errs.push(
                path,
                format!("expected true or false, found {}", describe(other)),
            );
            None
        }
    }
}

/// Reports every key not in `allowed`, suggesting the closest allowed key for typos.
fn check_keys(obj: &Map<String, Value>, allowed: &[&str], path: &str, errs: &mut FieldErrors) {
    for key in obj.keys() {
        if allowed.contains(&key.as_str()) {
            continue;
        }
        let at = if path.is_empty() {
            key.clone()
        } else {
            format!("{path}.{key}")
        };
        let hint = closest(key, allowed)
            .map(|k| format!(" (did you mean {k}?)"))
            .unwrap_or_default();
        errs.push(
            at,
            format!(
                "expected one of {}, found unknown key {key:?}{hint}",
                allowed.join(", ")
            ),
        );
    }
}

/// The allowed key nearest to `key`, if it is near enough to be a typo.
fn closest<'a>(key: &str, allowed: &[&'a str]) -> Option<&'a str> {
    let lower = key.to_ascii_lowercase();
    allowed
        .iter()
        .map(|k| (edit_distance(&lower, &k.to_ascii_lowercase()), *k))
        .filter(|(d, k)| *d <= 2.max(k.len() / 5))
        .min_by_key(|(d, _)| *d)
        .map(|(_, k)| k)
}

fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut prev = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let cur = row[j + 1];
            row[j + 1] = if ca == *cb {
                prev
            } else {
                1 + prev.min(cur).min(row[j])
            };
            prev = cur;
        }
    }
    row[b.len()]
}

/// serde's "invalid type: X, expected Y" turned into the house "expected Y, found X".
fn serde_message(message: &str) -> String {
    for prefix in ["invalid type: ", "invalid value: "] {
        if let Some(rest) = message.strip_prefix(prefix) {
            if let Some((found, expected)) = rest.split_once(", expected ") {
                return format!("expected {expected}, found {found}");
            }
        }
    }
    format!("expected a valid ECS value, found an error: {message}")
}

/// How a value is named in messages: `"two"`, `number -1`, `a list`, ...
pub(crate) fn describe(value: &Value) -> String {
    match value {
        Value::Null => "nothing".to_string(),
        Value::Bool(b) => format!("boolean {b}"),
        Value::Number(n) => format!("number {n}"),
        Value::String(s) => format!("{s:?}"),
        Value::Array(_) => "a list".to_string(),
        Value::Object(_) => "a mapping".to_string(),
    }
}

fn describe_opt(value: Option<&Value>) -> String {
    value.map(describe).unwrap_or_else(|| "nothing".to_string())
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests;
