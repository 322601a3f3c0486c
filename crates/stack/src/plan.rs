//! The plan: which services, task definitions and ELBv2 resources to create, update or delete
//! so that the cluster matches the stack file. A function of (stack, current services, current
//! ELBv2 state); no IO.

pub(crate) mod elb;
pub(crate) mod scaling;

use crate::spec::{
    ArnResolver, ListenerRuleRef, ServiceLoadBalancer, ServiceSpec, Stack, STACK_TAG,
};
use berth_elb::ElbState;
use berth_model::ecs::{
    DeploymentConfiguration, IngressRule, LoadBalancer, Service, TaskDefinition,
};
use elb::{ElbOp, ElbRefs};
use scaling::{CurrentScaling, ScalingOp};
use serde_json::{Map, Value};
use std::collections::BTreeMap;
use std::fmt;

/// A service as it runs now, as far as the plan needs to know.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct CurrentService {
    /// Service name.
    pub name: String,
    /// Desired task count now.
    pub desired_count: u32,
    /// The task definition revision the service runs, as DescribeTaskDefinition returns it.
    pub task_definition: TaskDefinition,
    pub health_check_grace_period_seconds: Option<u32>,
    pub deployment_configuration: Option<DeploymentConfiguration>,
    pub load_balancers: Vec<LoadBalancer>,
    /// Value of the service's `berth:stack` tag; `None` when untagged.
    pub stack: Option<String>,
    /// Its Application Auto Scaling target, policies and scheduled actions; `None` when it has
    /// no scalable target.
    pub scaling: Option<CurrentScaling>,
    /// Its ingress rules (`berthIngress`).
    pub ingress: Vec<IngressRule>,
}

impl CurrentService {
    /// From DescribeServices output, the task definition it runs and its `berth:stack` tag.
    pub fn from_service(
        service: &Service,
        task_definition: TaskDefinition,
        stack: Option<String>,
    ) -> Self {
        CurrentService {
            name: service.service_name.clone(),
            desired_count: service.desired_count,
            task_definition,
            health_check_grace_period_seconds: service.health_check_grace_period_seconds,
            deployment_configuration: Some(service.deployment_configuration.clone()),
            load_balancers: service.load_balancers.clone(),
            stack,
            scaling: None,
            ingress: berth_model::ecs::service_ingress(service),
        }
    }
}

/// What a change does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChangeKind {
    Create,
    Update,
    Delete,
}

impl ChangeKind {
    /// `+`, `~` or `-`, as the plan prints it.
    pub fn symbol(self) -> char {
        match self {
            ChangeKind::Create => '+',
            ChangeKind::Update => '~',
            ChangeKind::Delete => '-',
        }
    }
}

/// What a change applies to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Resource {
    /// An ECS service (CreateService / UpdateService / DeleteService).
    Service,
    /// A task definition family; create and update both mean "register a new revision".
    TaskDefinition,
    /// An ELBv2 target group, by name.
    TargetGroup,
    /// An ELBv2 application load balancer, by name.
    LoadBalancer,
    /// A listener, named `<load balancer>:<port>`.
    Listener,
    /// A listener rule, named `<load balancer>:<port>/<priority>`.
    Rule,
    /// A service's Application Auto Scaling (scalable target, policies, scheduled actions),
    /// named by the service.
    Scaling,
}

impl Resource {
    /// `service`, `task-definition`, `target-group`, `load-balancer`, `listener`, `rule` or
    /// `scaling`.
    pub fn as_str(self) -> &'static str {
        match self {
            Resource::Service => "service",
            Resource::TaskDefinition => "task-definition",
            Resource::TargetGroup => "target-group",
            Resource::LoadBalancer => "load-balancer",
            Resource::Listener => "listener",
            Resource::Rule => "rule",
            Resource::Scaling => "scaling",
        }
    }
}

impl fmt::Display for Resource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One change of a plan.
#[derive(Debug, Clone, PartialEq)]
pub struct Change {
    pub kind: ChangeKind,
    pub resource: Resource,
    /// Service name, task definition family, or ELBv2 resource name (see [`Resource`]).
    pub name: String,
    /// The stack service this change belongs to (equal to `name` for services; empty for
    /// ELBv2 resources).
    pub service: String,
    /// Human-readable lines such as `desiredCount: 2 -> 3`.
    pub details: Vec<String>,
    /// For ELBv2 resources, the step that carries the change out.
    pub elb: Option<ElbOp>,
    /// For scaling, the Application Auto Scaling calls that carry the change out.
    pub scaling: Option<ScalingOp>,
}

/// Everything `berth apply` would do, in order: target groups, load balancers, listeners and
/// rules; per service its task definition, the service, then its scaling; then deletions in
/// reverse order (scaling and services, rules, listeners, load balancers, target groups).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Plan {
    pub changes: Vec<Change>,
    /// Services of the same name that belong to another stack; applying must refuse while any.
    pub conflicts: Vec<String>,
}

/// Most detail lines kept for one change.
const MAX_DETAILS: usize = 12;
/// Longest `(a, b, c)` detail list printed on the change's own line.
const INLINE_DETAILS_WIDTH: usize = 80;

impl Plan {
    /// True when applying would do nothing.
    pub fn is_empty(&self) -> bool {
        self.changes.is_empty() && self.conflicts.is_empty()
    }

    /// Whether applying must register a new task definition revision for `service`.
    pub fn registers_task_definition(&self, service: &str) -> bool {
        self.changes
            .iter()
            .any(|c| c.resource == Resource::TaskDefinition && c.service == service)
    }

    /// Numbers of changes to create, update and delete.
    pub fn counts(&self) -> (usize, usize, usize) {
        let n = |kind| self.changes.iter().filter(|c| c.kind == kind).count();
        (
            n(ChangeKind::Create),
            n(ChangeKind::Update),
            n(ChangeKind::Delete),
        )
    }

    /// The plan for people: one line per change (`~ service api (desiredCount: 2 -> 3)`), then
    /// a summary (`Plan: 1 to create, 1 to update, 1 to delete.` or `No changes.`).
    pub fn render(&self) -> String {
        let mut lines = Vec::new();
        for c in &self.changes {
            let mut line = format!("{} {} {}", c.kind.symbol(), c.resource, c.name);
            let joined = c.details.join(", ");
            if c.details.len() == 1
                || (!c.details.is_empty() && joined.len() <= INLINE_DETAILS_WIDTH)
            {
                line.push_str(&format!(" ({joined})"));
            } else {
                for d in &c.details {
                    line.push_str(&format!("\n    {d}"));
                }
            }
            lines.push(line);
        }
        for conflict in &self.conflicts {
            lines.push(format!("! {conflict}"));
        }
        if self.is_empty() {
            lines.push("No changes.".to_string());
        } else {
            let (create, update, delete) = self.counts();
            let mut summary =
                format!("Plan: {create} to create, {update} to update, {delete} to delete.");
            if !self.conflicts.is_empty() {
                let n = self.conflicts.len();
                summary.push_str(&format!(
                    " {n} conflict{} to resolve first.",
                    if n == 1 { "" } else { "s" }
                ));
            }
            lines.push(summary);
        }
        lines.join("\n")
    }
}

/// Compares the stack with the services that run now (the cluster's ACTIVE services, each with
/// its `berth:stack` tag) and the ELBv2 resources that exist now (`elb`: load balancers, target
/// groups, listeners, rules, target group attributes and tags, as the Describe operations return
/// them). Resources of this stack missing from the file are deleted; resources of no stack with
/// a name in the file are adopted; resources of other stacks are left alone.
pub fn plan(stack: &Stack, current: &[CurrentService], elb: &ElbState) -> Plan {
    let mut out = Plan::default();
    let elb_plan = elb::plan_elb(stack, elb);
    out.changes.extend(elb_plan.before);
    out.conflicts.extend(elb_plan.conflicts);
    let target_group_names: BTreeMap<&str, &str> = elb
        .target_groups
        .iter()
        .map(|tg| (tg.arn.as_str(), tg.name.as_str()))
        .collect();
    let refs = ElbRefs::from_state(elb);
    let names = refs.names_by_arn();
    let lbs = ServiceLoadBalancers {
        stable: &elb_plan.stable_target_groups,
        refs: &refs,
        names: &names,
        target_group_names: &target_group_names,
    };
    let label_of = scaling::label_from_arns(&refs.load_balancers, &elb_plan.stable_target_groups);
    for (name, spec) in &stack.services {
        let family = spec.task_definition.family.clone();
        let Some(cur) = current.iter().find(|c| &c.name == name) else {
            let containers: Vec<&str> = spec
                .task_definition
                .container_definitions
                .iter()
                .map(|c| c.name.as_str())
                .collect();
            out.changes.push(Change {
                kind: ChangeKind::Create,
                resource: Resource::TaskDefinition,
                name: family.clone(),
                service: name.clone(),
                details: vec![format!("containers: {}", containers.join(", "))],
                elb: None,
                scaling: None,
            });
            let mut details = vec![format!("desiredCount: {}", spec.desired_count)];
            if !spec.load_balancers.is_empty() {
                details.push(format!(
                    "loadBalancers: {}",
                    lbs.describe(&lbs.resolve(&spec.load_balancers))
                ));
            }
            if let Some(dc) = &spec.deployment_configuration {
                if dc.strategy.is_some() {
                    details.push(format!("strategy: {}", describe_strategy(dc)));
                }
            }
            if !spec.ingress.is_empty() {
                details.push(format!("ingress: {}", describe_ingress(&spec.ingress)));
            }
            out.changes.push(Change {
                kind: ChangeKind::Create,
                resource: Resource::Service,
                name: name.clone(),
                service: name.clone(),
                details,
                elb: None,
                scaling: None,
            });
            out.changes.extend(scaling::plan_scaling(
                name,
                spec.scaling.as_ref(),
                None,
                &label_of,
            ));
            continue;
        };
        if let Some(owner) = cur.stack.as_deref().filter(|owner| *owner != stack.name) {
            out.conflicts.push(format!(
                "service {name} belongs to stack {owner:?} (tag {STACK_TAG}), not to {:?}; remove it from one of the stacks",
                stack.name
            ));
            continue;
        }
        let mut details = Vec::new();
        if cur.stack.is_none() {
            details.push(format!(
                "adopt: untagged service {name} joins stack {}",
                stack.name
            ));
        }
        let td_details = diff_task_definitions(&cur.task_definition, &spec.task_definition);
        if !td_details.is_empty() {
            out.changes.push(Change {
                kind: ChangeKind::Update,
                resource: Resource::TaskDefinition,
                name: family,
                service: name.clone(),
                details: td_details,
                elb: None,
                scaling: None,
            });
            details.push(format!(
                "taskDefinition: {} -> new revision",
                cur.task_definition.family_revision()
            ));
        }
        details.extend(diff_service_settings(cur, spec, &lbs));
        if !details.is_empty() {
            out.changes.push(Change {
                kind: ChangeKind::Update,
                resource: Resource::Service,
                name: name.clone(),
                service: name.clone(),
                details,
                elb: None,
                scaling: None,
            });
        }
        out.changes.extend(scaling::plan_scaling(
            name,
            spec.scaling.as_ref(),
            cur.scaling.as_ref(),
            &label_of,
        ));
    }
    let mut gone: Vec<&CurrentService> = current
        .iter()
        .filter(|c| {
            c.stack.as_deref() == Some(stack.name.as_str()) && !stack.services.contains_key(&c.name)
        })
        .collect();
    gone.sort_by(|a, b| a.name.cmp(&b.name));
    gone.dedup_by(|a, b| a.name == b.name);
    for c in gone {
        out.changes.extend(scaling::plan_scaling(
            &c.name,
            None,
            c.scaling.as_ref(),
            &label_of,
        ));
        out.changes.push(Change {
            kind: ChangeKind::Delete,
            resource: Resource::Service,
            name: c.name.clone(),
            service: c.name.clone(),
            details: Vec::new(),
            elb: None,
            scaling: None,
        });
    }
    out.changes.extend(elb_plan.after);
    out
}

/// Turns services' `targetGroup` names (and blue/green listeners) into ARNs, and ARNs into
/// names for people.
struct ServiceLoadBalancers<'a> {
    /// Stack target groups that exist and keep their ARN through the plan.
    stable: &'a BTreeMap<String, String>,
    /// ARNs of the ELBv2 resources that exist now.
    refs: &'a ElbRefs,
    /// Names of listeners and rules (`<lb>:<port>[/<priority>]`) and others by ARN.
    names: &'a BTreeMap<String, String>,
    /// Target group names by ARN.
    target_group_names: &'a BTreeMap<&'a str, &'a str>,
}

impl ArnResolver for ServiceLoadBalancers<'_> {
    /// The ARN, or `<name> (new)` for a target group the plan creates or replaces.
    fn target_group(&self, name: &str) -> Option<String> {
        Some(
            self.stable
                .get(name)
                .cloned()
                .unwrap_or_else(|| format!("{name} (new)")),
        )
    }

    /// The ARN, or `<lb>:<port>[/<priority>] (new)` for one the plan creates.
    fn listener_rule(&self, rule: &ListenerRuleRef) -> Option<String> {
        Some(
            self.refs
                .listener_rule(rule)
                .unwrap_or_else(|| format!("{rule} (new)")),
        )
    }
}

impl ServiceLoadBalancers<'_> {
    /// ECS's entries, a resource the plan creates or replaces standing as `<name> (new)`.
    fn resolve(&self, lbs: &[ServiceLoadBalancer]) -> Vec<LoadBalancer> {
        lbs.iter().map(|lb| lb.resolve(self)).collect()
    }

    /// `[container:port@target, ...]`, target groups, listeners and rules by name where known.
    fn describe(&self, lbs: &[LoadBalancer]) -> String {
        describe_load_balancers(lbs, &|arn| {
            self.target_group_names
                .get(arn)
                .map(|n| n.to_string())
                .or_else(|| self.names.get(arn).cloned())
                .unwrap_or_else(|| arn.to_string())
        })
    }
}

/// Desired count, grace period, deployment configuration and load balancers, with ECS's
/// defaults applied on both sides.
fn diff_service_settings(
    cur: &CurrentService,
    spec: &ServiceSpec,
    lbs: &ServiceLoadBalancers<'_>,
) -> Vec<String> {
    let mut out = Vec::new();
    // With scaling, Application Auto Scaling owns the desired count of a running service.
    if spec.scaling.is_none() && cur.desired_count != spec.desired_count {
        out.push(format!(
            "desiredCount: {} -> {}",
            cur.desired_count, spec.desired_count
        ));
    }
    let (old_grace, new_grace) = (
        cur.health_check_grace_period_seconds.unwrap_or(0),
        spec.health_check_grace_period_seconds.unwrap_or(0),
    );
    if old_grace != new_grace {
        out.push(format!(
            "healthCheckGracePeriodSeconds: {old_grace} -> {new_grace}"
        ));
    }
    let old = cur.deployment_configuration.clone().unwrap_or_default();
    let new = spec.deployment_configuration.clone().unwrap_or_default();
    let breaker =
        |d: &DeploymentConfiguration| d.deployment_circuit_breaker.clone().unwrap_or_default();
    let pairs = [
        (
            "minimumHealthyPercent",
            old.minimum_healthy_percent().to_string(),
            new.minimum_healthy_percent().to_string(),
        ),
        (
            "maximumPercent",
            old.maximum_percent().to_string(),
            new.maximum_percent().to_string(),
        ),
        (
            "deploymentCircuitBreaker.enable",
            breaker(&old).enable.to_string(),
            breaker(&new).enable.to_string(),
        ),
        (
            "deploymentCircuitBreaker.rollback",
            breaker(&old).rollback.to_string(),
            breaker(&new).rollback.to_string(),
        ),
    ];
    for (field, a, b) in pairs.into_iter().chain(strategy_fields(&old, &new)) {
        if a != b {
            out.push(format!("deploymentConfiguration.{field}: {a} -> {b}"));
        }
    }
    let (old_ingress, new_ingress) = (
        describe_ingress(&cur.ingress),
        describe_ingress(&spec.ingress),
    );
    if old_ingress != new_ingress {
        out.push(format!("ingress: {old_ingress} -> {new_ingress}"));
    }
    let wanted = lbs.resolve(&spec.load_balancers);
    if sorted_load_balancers(&cur.load_balancers) != sorted_load_balancers(&wanted) {
        out.push(format!(
            "loadBalancers: {} -> {}",
            lbs.describe(&cur.load_balancers),
            lbs.describe(&wanted)
        ));
    }
    out
}

/// How ingress rules read in plans, in a stable order: `[api:8080,9000-9100]`, `[]` for none.
fn describe_ingress(rules: &[IngressRule]) -> String {
    let mut parts: Vec<String> = rules
        .iter()
        .map(|r| {
            let mut ports = r.ports.clone();
            ports.sort();
            let ports: Vec<String> = ports.iter().map(|p| p.to_string()).collect();
            format!("{}:{}", r.from_service, ports.join(","))
        })
        .collect();
    parts.sort();
    format!("[{}]", parts.join(" "))
}

/// How a strategy reads in plans: `BLUE_GREEN`, `LINEAR 50% every 0.05 min`, `CANARY 10% for 5 min`.
fn describe_strategy(dc: &DeploymentConfiguration) -> String {
    match dc.strategy() {
        "LINEAR" => dc
            .linear_configuration
            .as_ref()
            .map(|l| {
                format!(
                    "LINEAR {}% every {} min",
                    l.step_percent, l.step_bake_time_in_minutes
                )
            })
            .unwrap_or_else(|| "LINEAR".into()),
        "CANARY" => dc
            .canary_configuration
            .as_ref()
            .map(|c| {
                format!(
                    "CANARY {}% for {} min",
                    c.canary_percent, c.canary_bake_time_in_minutes
                )
            })
            .unwrap_or_else(|| "CANARY".into()),
        other => other.to_string(),
    }
}

/// The traffic-shifting fields as (name, old, new), absent values as ECS's defaults: ROLLING,
/// no bake time, alarms off, berth's default canary analysis.
fn strategy_fields(
    old: &DeploymentConfiguration,
    new: &DeploymentConfiguration,
) -> Vec<(&'static str, String, String)> {
    let canary = |d: &DeploymentConfiguration| {
        d.canary_configuration
            .as_ref()
            .map(|c| {
                format!(
                    "{}% for {} min",
                    c.canary_percent, c.canary_bake_time_in_minutes
                )
            })
            .unwrap_or_else(|| "none".into())
    };
    let linear = |d: &DeploymentConfiguration| {
        d.linear_configuration
            .as_ref()
            .map(|l| {
                format!(
                    "{}% every {} min",
                    l.step_percent, l.step_bake_time_in_minutes
                )
            })
            .unwrap_or_else(|| "none".into())
    };
    let alarms = |d: &DeploymentConfiguration| {
        let a = d.alarms.clone().unwrap_or_default();
        if a.alarm_names.is_empty() && !a.enable && !a.rollback {
            return "none".to_string();
        }
        let mut names = a.alarm_names.clone();
        names.sort();
        format!(
            "[{}] enable={} rollback={}",
            names.join(", "),
            a.enable,
            a.rollback
        )
    };
    let analysis = |d: &DeploymentConfiguration| {
        let a = d.canary_analysis.clone().unwrap_or_default();
        format!(
            "errors +{}pp, p99 +{}ms, {} requests",
            a.max_error_rate_increase_percent, a.max_p99_latency_increase_ms, a.min_requests
        )
    };
    vec![
        (
            "strategy",
            old.strategy().to_string(),
            new.strategy().to_string(),
        ),
        (
            "bakeTimeInMinutes",
            old.bake_time_in_minutes.unwrap_or(0.0).to_string(),
            new.bake_time_in_minutes.unwrap_or(0.0).to_string(),
        ),
        ("canaryConfiguration", canary(old), canary(new)),
        ("linearConfiguration", linear(old), linear(new)),
        ("alarms", alarms(old), alarms(new)),
        ("canaryAnalysis", analysis(old), analysis(new)),
        (
            "testTrafficTimeInMinutes",
            old.test_traffic_time_in_minutes.unwrap_or(0.0).to_string(),
            new.test_traffic_time_in_minutes.unwrap_or(0.0).to_string(),
        ),
    ]
}

type LoadBalancerKey = (
    Option<String>,
    Option<String>,
    Option<String>,
    Option<u16>,
    Option<(String, String, Option<String>)>,
);

fn sorted_load_balancers(lbs: &[LoadBalancer]) -> Vec<LoadBalancerKey> {
    let mut keys: Vec<LoadBalancerKey> = lbs
        .iter()
        .map(|lb| {
            (
                lb.target_group_arn.clone(),
                lb.load_balancer_name.clone(),
                lb.container_name.clone(),
                lb.container_port,
                lb.advanced_configuration.as_ref().map(|a| {
                    (
                        a.alternate_target_group_arn.clone(),
                        a.production_listener_rule.clone(),
                        a.test_listener_rule.clone(),
                    )
                }),
            )
        })
        .collect();
    keys.sort();
    keys
}

fn describe_load_balancers(lbs: &[LoadBalancer], name_of: &dyn Fn(&str) -> String) -> String {
    if lbs.is_empty() {
        return "none".to_string();
    }
    let items: Vec<String> = lbs
        .iter()
        .map(|lb| {
            let target = lb
                .target_group_arn
                .as_deref()
                .map(name_of)
                .or(lb.load_balancer_name.clone())
                .unwrap_or_else(|| "?".to_string());
            let mut item = format!(
                "{}:{}@{target}",
                lb.container_name.as_deref().unwrap_or("?"),
                lb.container_port
                    .map(|p| p.to_string())
                    .unwrap_or_else(|| "?".to_string())
            );
            if let Some(a) = &lb.advanced_configuration {
                item.push_str(&format!(
                    " (alternate {}, production {}",
                    name_of(&a.alternate_target_group_arn),
                    name_of(&a.production_listener_rule)
                ));
                if let Some(t) = &a.test_listener_rule {
                    item.push_str(&format!(", test {}", name_of(t)));
                }
                item.push(')');
            }
            item
        })
        .collect();
    format!("[{}]", items.join(", "))
}

/// Detail lines for a task definition that needs a new revision; empty when the registered
/// content is the same.
pub(crate) fn diff_task_definitions(
    current: &TaskDefinition,
    desired: &TaskDefinition,
) -> Vec<String> {
    let (old, new) = (
        normalized_task_definition(current),
        normalized_task_definition(desired),
    );
    if old == new {
        return Vec::new();
    }
    let mut lines = Vec::new();
    diff_values("", &old, &new, &mut lines);
    if lines.is_empty() {
        lines.push("order of entries changed".to_string());
    }
    if lines.len() > MAX_DETAILS {
        let more = lines.len() - MAX_DETAILS + 1;
        lines.truncate(MAX_DETAILS - 1);
        lines.push(format!("... and {more} more differences"));
    }
    lines
}

/// Fields ECS adds when it describes a task definition; never part of what is registered.
const OUTPUT_ONLY_FIELDS: &[&str] = &[
    "taskDefinitionArn",
    "revision",
    "status",
    "registeredAt",
    "deregisteredAt",
    "registeredBy",
    "compatibilities",
    "requiresAttributes",
    // Tags are given at registration but described separately; they do not make a revision.
    "tags",
];

/// The registration-relevant content of a task definition, with ECS's defaults made explicit
/// and empty values dropped, so that a file and the described revision compare equal when ECS
/// would run the same thing.
pub(crate) fn normalized_task_definition(td: &TaskDefinition) -> Value {
    // Serializing plain data with string map keys cannot fail; Null would only make the
    // comparison report a difference.
    let mut value = serde_json::to_value(td).unwrap_or(Value::Null);
    let host_port_is_container_port =
        matches!(td.network_mode.as_deref(), Some("awsvpc") | Some("host"));
    if let Value::Object(obj) = &mut value {
        for key in OUTPUT_ONLY_FIELDS {
            obj.remove(*key);
        }
        if let Some(Value::Array(containers)) = obj.get_mut("containerDefinitions") {
            for container in containers.iter_mut() {
                if let Value::Object(c) = container {
                    normalize_container(c, host_port_is_container_port);
                }
            }
            sort_by_name(containers);
        }
    }
    strip_empty(&mut value);
    value
}

fn is_absent(v: Option<&Value>) -> bool {
    v.is_none_or(Value::is_null)
}

fn normalize_container(c: &mut Map<String, Value>, host_port_is_container_port: bool) {
    if is_absent(c.get("essential")) {
        c.insert("essential".to_string(), Value::Bool(true));
    }
    if c.get("cpu").and_then(Value::as_u64) == Some(0) {
        c.remove("cpu");
    }
    if let Some(Value::Array(mappings)) = c.get_mut("portMappings") {
        for mapping in mappings.iter_mut() {
            let Value::Object(pm) = mapping else { continue };
            if is_absent(pm.get("protocol")) {
                pm.insert("protocol".to_string(), Value::from("tcp"));
            }
            let container_port = pm.get("containerPort").cloned();
            let drop_host_port = match pm.get("hostPort") {
                Some(h) => {
                    h.is_null()
                        || h.as_u64() == Some(0)
                        || (host_port_is_container_port && Some(h) == container_port.as_ref())
                }
                None => false,
            };
            if drop_host_port {
                pm.remove("hostPort");
            }
        }
    }
    for key in ["environment", "secrets"] {
        if let Some(Value::Array(list)) = c.get_mut(key) {
            sort_by_name(list);
        }
    }
    if let Some(Value::Object(hc)) = c.get_mut("healthCheck") {
        for (key, default) in [
            ("interval", 30),
            ("timeout", 5),
            ("retries", 3),
            ("startPeriod", 0),
        ] {
            if is_absent(hc.get(key)) {
                hc.insert(key.to_string(), Value::from(default));
            }
        }
    }
}

fn sort_by_name(list: &mut [Value]) {
    list.sort_by(|a, b| {
        let name = |v: &Value| {
            v.get("name")
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_string()
        };
        name(a).cmp(&name(b))
    });
}

/// Drops nulls, empty lists and empty mappings from objects, and writes whole floats as
/// integers, all the way down.
fn strip_empty(value: &mut Value) {
    match value {
        Value::Object(obj) => {
            for v in obj.values_mut() {
                strip_empty(v);
            }
            obj.retain(|_, v| match v {
                Value::Null => false,
                Value::Array(a) => !a.is_empty(),
                Value::Object(o) => !o.is_empty(),
                _ => true,
            });
        }
        Value::Array(list) => list.iter_mut().for_each(strip_empty),
        Value::Number(n) => {
            if let Some(f) = n.as_f64().filter(|_| n.is_f64()) {
                if f.fract() == 0.0 && f.abs() < 1e15 {
                    *value = if f >= 0.0 {
                        Value::from(f as u64)
                    } else {
                        Value::from(f as i64)
                    };
                }
            }
        }
        _ => {}
    }
}

/// `path: old -> new` lines; lists of named entries are matched by name (`environment[PORT]`).
pub(crate) fn diff_values(path: &str, old: &Value, new: &Value, out: &mut Vec<String>) {
    if old == new {
        return;
    }
    let at = |key: &str| {
        if path.is_empty() {
            key.to_string()
        } else {
            format!("{path}.{key}")
        }
    };
    match (old, new) {
        (Value::Object(a), Value::Object(b)) => diff_entries(
            a.iter().map(|(k, v)| (at(k), k.as_str(), v)).collect(),
            b.iter().map(|(k, v)| (at(k), k.as_str(), v)).collect(),
            out,
        ),
        (Value::Array(a), Value::Array(b)) => match (named(a), named(b)) {
            (Some(a), Some(b)) => diff_entries(
                a.into_iter()
                    .map(|(k, v)| (format!("{path}[{k}]"), k, v))
                    .collect(),
                b.into_iter()
                    .map(|(k, v)| (format!("{path}[{k}]"), k, v))
                    .collect(),
                out,
            ),
            _ if a.len() == b.len() => {
                for (i, (x, y)) in a.iter().zip(b).enumerate() {
                    diff_values(&format!("{path}[{i}]"), x, y, out);
                }
            }
            _ => out.push(format!("{path}: {} -> {}", short(old), short(new))),
        },
        _ => out.push(format!("{path}: {} -> {}", short(old), short(new))),
    }
}

/// Matches entries by key: changed ones recurse, missing ones are `(absent)`.
fn diff_entries(
    a: Vec<(String, &str, &Value)>,
    b: Vec<(String, &str, &Value)>,
    out: &mut Vec<String>,
) {
    for (path, key, old) in &a {
        match b.iter().find(|(_, k, _)| k == key) {
            Some((_, _, new)) => diff_values(path, old, new, out),
            None => out.push(format!("{path}: {} -> (absent)", short(old))),
        }
    }
    for (path, key, new) in &b {
        if !a.iter().any(|(_, k, _)| k == key) {
            out.push(format!("{path}: (absent) -> {}", short(new)));
        }
    }
}

/// The entries of a list of objects with unique `name`s, keyed by name.
fn named(list: &[Value]) -> Option<Vec<(&str, &Value)>> {
    let mut out: Vec<(&str, &Value)> = Vec::new();
    for v in list {
        let name = v.get("name").and_then(Value::as_str)?;
        if out.iter().any(|(n, _)| *n == name) {
            return None;
        }
        out.push((name, v));
    }
    Some(out)
}

/// Compact JSON, cut to a readable length.
fn short(v: &Value) -> String {
    const MAX: usize = 60;
    let s = v.to_string();
    if s.chars().count() <= MAX {
        s
    } else {
        format!("{}...", s.chars().take(MAX).collect::<String>())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests;
