//! ECS resources in ECS's own JSON shape (camelCase), so they go to and from the wire as they are.
//! Unknown-but-valid ECS fields are kept in `extra` and returned unchanged.

use crate::seconds::Seconds;
use crate::validate::FieldErrors;
use crate::Timestamp;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

fn is_false(b: &bool) -> bool {
    !*b
}

/// `{name, value}` pair, as in `environment`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct KeyValuePair {
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub value: String,
}

/// A container port the task exposes; `hostPort` is allocated by the agent when absent or 0.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct PortMapping {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub container_port: Option<u16>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host_port: Option<u16>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub protocol: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// Container health check with ECS semantics; berth allows fractional seconds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct HealthCheck {
    #[serde(default)]
    pub command: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interval: Option<Seconds>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout: Option<Seconds>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retries: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_period: Option<Seconds>,
}

impl HealthCheck {
    pub fn interval(&self) -> Seconds {
        self.interval.unwrap_or(Seconds(30.0))
    }
    pub fn timeout(&self) -> Seconds {
        self.timeout.unwrap_or(Seconds(5.0))
    }
    pub fn retries(&self) -> u32 {
        self.retries.unwrap_or(3)
    }
    pub fn start_period(&self) -> Seconds {
        self.start_period.unwrap_or(Seconds(0.0))
    }
}

/// `dependsOn` entry.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct ContainerDependency {
    #[serde(default)]
    pub container_name: String,
    #[serde(default)]
    pub condition: String,
}

/// `secrets` entry: an environment variable filled from a secret at task start.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct Secret {
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub value_from: String,
}

/// One container of a task definition.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct ContainerDefinition {
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub image: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub command: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub entry_point: Vec<String>,
    #[serde(default)]
    pub environment: Vec<KeyValuePair>,
    #[serde(default)]
    pub port_mappings: Vec<PortMapping>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub essential: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub health_check: Option<HealthCheck>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stop_timeout: Option<Seconds>,
    #[serde(default)]
    pub cpu: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory_reservation: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub working_directory: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub depends_on: Vec<ContainerDependency>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub secrets: Vec<Secret>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub readonly_root_filesystem: Option<bool>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

impl ContainerDefinition {
    /// ECS's default: containers are essential unless they say otherwise.
    pub fn is_essential(&self) -> bool {
        self.essential.unwrap_or(true)
    }
    /// SIGTERM-to-SIGKILL grace; ECS's default is 30 s.
    pub fn stop_timeout(&self) -> Seconds {
        self.stop_timeout.unwrap_or(Seconds(30.0))
    }
}

/// A registered (or to-be-registered) task definition revision.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct TaskDefinition {
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub task_definition_arn: String,
    #[serde(default)]
    pub family: String,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub revision: u32,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub status: String,
    #[serde(default)]
    pub container_definitions: Vec<ContainerDefinition>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpu: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub network_mode: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub registered_at: Option<Timestamp>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deregistered_at: Option<Timestamp>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

fn is_zero(n: &u32) -> bool {
    *n == 0
}

/// Parses ECS's task-level cpu/memory strings: `"256"`, `"0.25 vCPU"`, `"512"`, `"1 GB"`.
pub fn parse_task_size(value: &str, is_cpu: bool) -> Option<u32> {
    let v = value.trim();
    let lower = v.to_ascii_lowercase();
    if let Some(n) = lower.strip_suffix("vcpu") {
        return n
            .trim()
            .parse::<f64>()
            .ok()
            .map(|f| (f * 1024.0).round() as u32);
    }
    if let Some(n) = lower.strip_suffix("gb") {
        return n
            .trim()
            .parse::<f64>()
            .ok()
            .map(|f| (f * 1024.0).round() as u32);
    }
    if let Some(n) = lower.strip_suffix("mb") {
        return n.trim().parse::<u32>().ok();
    }
    let _ = is_cpu;
    v.parse::<u32>().ok()
}

impl TaskDefinition {
    /// Task-level CPU units, if set.
    pub fn cpu_units(&self) -> Option<u32> {
        self.cpu.as_deref().and_then(|c| parse_task_size(c, true))
    }
    /// Task-level memory in MiB, if set.
    pub fn memory_mib(&self) -> Option<u32> {
        self.memory
            .as_deref()
            .and_then(|m| parse_task_size(m, false))
    }
    /// `family:revision`.
    pub fn family_revision(&self) -> String {
        format!("{}:{}", self.family, self.revision)
    }

    /// Checks a definition as RegisterTaskDefinition receives it; every error with its field path.
    pub fn validate(&self, prefix: &str) -> FieldErrors {
        let mut errs = FieldErrors::default();
        let p = |f: &str| {
            if prefix.is_empty() {
                f.to_string()
            } else {
                format!("{prefix}.{f}")
            }
        };
        if !valid_name(&self.family, 255) {
            errs.push(
                p("family"),
                format!(
                    "expected 1-255 letters, digits, hyphens or underscores, found {:?}",
                    self.family
                ),
            );
        }
        if self.container_definitions.is_empty() {
            errs.push(
                p("containerDefinitions"),
                "expected at least one container definition, found none",
            );
        }
        if let Some(cpu) = &self.cpu {
            if parse_task_size(cpu, true).is_none() {
                errs.push(
                    p("cpu"),
                    format!("expected CPU units like \"256\" or \"0.25 vCPU\", found {cpu:?}"),
                );
            }
        }
        if let Some(mem) = &self.memory {
            if parse_task_size(mem, false).is_none() {
                errs.push(
                    p("memory"),
                    format!("expected MiB like \"512\" or \"1 GB\", found {mem:?}"),
                );
            }
        }
        if let Some(mode) = &self.network_mode {
            if !["bridge", "host", "awsvpc", "none"].contains(&mode.as_str()) {
                errs.push(
                    p("networkMode"),
                    format!("expected one of bridge, host, awsvpc, none, found {mode:?}"),
                );
            }
        }
        let mut names = std::collections::BTreeSet::new();
        let mut any_essential = false;
        for (i, c) in self.container_definitions.iter().enumerate() {
            let cp = |f: &str| p(&format!("containerDefinitions[{i}].{f}"));
            if !valid_name(&c.name, 255) {
                errs.push(
                    cp("name"),
                    format!(
                        "expected 1-255 letters, digits, hyphens or underscores, found {:?}",
                        c.name
                    ),
                );
            } else if !names.insert(c.name.clone()) {
                errs.push(
                    cp("name"),
                    format!("expected a unique container name, found {:?} twice", c.name),
                );
            }
            if c.image.trim().is_empty() {
                errs.push(
                    cp("image"),
                    "expected an image reference (or process://<executable>), found nothing",
                );
            }
            any_essential |= c.is_essential();
            for (j, pm) in c.port_mappings.iter().enumerate() {
                match pm.container_port {
                    None | Some(0) => errs.push(
                        cp(&format!("portMappings[{j}].containerPort")),
                        "expected a port number 1-65535, found nothing",
                    ),
                    Some(_) => {}
                }
                if let Some(proto) = &pm.protocol {
                    if proto != "tcp" && proto != "udp" {
                        errs.push(
                            cp(&format!("portMappings[{j}].protocol")),
                            format!("expected tcp or udp, found {proto:?}"),
                        );
                    }
                }
            }
            if let Some(hc) = &c.health_check {
                match hc.command.first().map(String::as_str) {
                    Some("CMD") | Some("CMD-SHELL") if hc.command.len() >= 2 => {}
                    _ => errs.push(
                        cp("healthCheck.command"),
                        format!("expected [\"CMD\", exe, args...] or [\"CMD-SHELL\", \"script\"], found {:?}", hc.command),
                    ),
                }
                for (field, v) in [
                    ("interval", hc.interval),
                    ("timeout", hc.timeout),
                    ("startPeriod", hc.start_period),
                ] {
                    if let Some(s) = v {
                        if !(s.0.is_finite() && s.0 >= 0.0 && s.0 <= 300.0)
                            || (field != "startPeriod" && s.0 < 0.05)
                        {
                            errs.push(
                                cp(&format!("healthCheck.{field}")),
                                format!("expected seconds between 0.05 and 300, found {}", s.0),
                            );
                        }
                    }
                }
                if let Some(r) = hc.retries {
                    if !(1..=10).contains(&r) {
                        errs.push(
                            cp("healthCheck.retries"),
                            format!("expected 1-10, found {r}"),
                        );
                    }
                }
            }
            if let Some(st) = c.stop_timeout {
                if !(st.0 >= 0.0 && st.0 <= 120.0) {
                    errs.push(
                        cp("stopTimeout"),
                        format!("expected seconds between 0 and 120, found {}", st.0),
                    );
                }
            }
            if let (Some(hard), Some(soft)) = (c.memory, c.memory_reservation) {
                if soft > hard {
                    errs.push(
                        cp("memoryReservation"),
                        format!("expected at most memory ({hard}), found {soft}"),
                    );
                }
            }
            if let Err(bad) = crate::linux::linux_settings(c) {
                for e in bad.0 {
                    errs.push(cp(&e.path), e.message);
                }
            }
            for (j, d) in c.depends_on.iter().enumerate() {
                if !["START", "COMPLETE", "SUCCESS", "HEALTHY"].contains(&d.condition.as_str()) {
                    errs.push(
                        cp(&format!("dependsOn[{j}].condition")),
                        format!(
                            "expected START, COMPLETE, SUCCESS or HEALTHY, found {:?}",
                            d.condition
                        ),
                    );
                }
                if !self
                    .container_definitions
                    .iter()
                    .any(|o| o.name == d.container_name)
                {
                    errs.push(
                        cp(&format!("dependsOn[{j}].containerName")),
                        format!(
                            "expected the name of a container in this task definition, found {:?}",
                            d.container_name
                        ),
                    );
                }
            }
        }
        if !self.container_definitions.is_empty() && !any_essential {
            errs.push(
                p("containerDefinitions"),
                "expected at least one essential container, found none",
            );
        }
        errs
    }
}

/// Names ECS accepts for families, clusters, services and containers.
pub fn valid_name(name: &str, max: usize) -> bool {
    !name.is_empty()
        && name.len() <= max
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
}

/// A cluster.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct Cluster {
    pub cluster_arn: String,
    pub cluster_name: String,
    pub status: String,
    #[serde(default)]
    pub registered_container_instances_count: u32,
    #[serde(default)]
    pub running_tasks_count: u32,
    #[serde(default)]
    pub pending_tasks_count: u32,
    #[serde(default)]
    pub active_services_count: u32,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// A service's load balancer attachment.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct LoadBalancer {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target_group_arn: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub load_balancer_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub container_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub container_port: Option<u16>,
    /// Blue/green: the alternate target group and the listener rules traffic is shifted in.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub advanced_configuration: Option<AdvancedConfiguration>,
}

/// `loadBalancers[].advancedConfiguration` (ECS blue/green deployments).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct AdvancedConfiguration {
    #[serde(default)]
    pub alternate_target_group_arn: String,
    /// Rule ARN (or listener ARN for its default rule) whose forward action is shifted.
    #[serde(default)]
    pub production_listener_rule: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub test_listener_rule: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role_arn: Option<String>,
}

/// `deploymentConfiguration.canaryConfiguration`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct CanaryConfiguration {
    #[serde(default)]
    pub canary_percent: f64,
    /// Minutes; fractional in berth.
    #[serde(default)]
    pub canary_bake_time_in_minutes: f64,
}

/// `deploymentConfiguration.linearConfiguration`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct LinearConfiguration {
    #[serde(default)]
    pub step_percent: f64,
    /// Minutes; fractional in berth.
    #[serde(default)]
    pub step_bake_time_in_minutes: f64,
}

/// `deploymentConfiguration.alarms`: a deployment fails when one of these alarms is in ALARM.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct DeploymentAlarms {
    #[serde(default)]
    pub alarm_names: Vec<String>,
    #[serde(default)]
    pub enable: bool,
    #[serde(default)]
    pub rollback: bool,
}

/// berth's automated canary analysis thresholds (`deploymentConfiguration.canaryAnalysis`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CanaryAnalysis {
    /// Largest allowed excess of the new set's 5xx rate over the old set's, in percentage points.
    #[serde(default = "default_max_error_points")]
    pub max_error_rate_increase_percent: f64,
    /// Largest allowed excess of the new set's p99 latency over the old set's, in milliseconds.
    #[serde(default = "default_max_p99_increase")]
    pub max_p99_latency_increase_ms: f64,
    /// The new set needs this many requests in a step before it is judged.
    #[serde(default = "default_min_requests")]
    pub min_requests: u64,
}

fn default_max_error_points() -> f64 {
    1.0
}
fn default_max_p99_increase() -> f64 {
    250.0
}
fn default_min_requests() -> u64 {
    20
}

impl Default for CanaryAnalysis {
    fn default() -> Self {
        CanaryAnalysis {
            max_error_rate_increase_percent: default_max_error_points(),
            max_p99_latency_increase_ms: default_max_p99_increase(),
            min_requests: default_min_requests(),
        }
    }
}

/// `deploymentCircuitBreaker`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct DeploymentCircuitBreaker {
    #[serde(default)]
    pub enable: bool,
    #[serde(default)]
    pub rollback: bool,
}

/// `deploymentConfiguration`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct DeploymentConfiguration {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deployment_circuit_breaker: Option<DeploymentCircuitBreaker>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub maximum_percent: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub minimum_healthy_percent: Option<u32>,
    /// `ROLLING` (default), `BLUE_GREEN`, `LINEAR` or `CANARY`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub strategy: Option<String>,
    /// Minutes the new version takes all traffic while the old one is kept for an instant
    /// rollback; fractional in berth.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bake_time_in_minutes: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub canary_configuration: Option<CanaryConfiguration>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub linear_configuration: Option<LinearConfiguration>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub alarms: Option<DeploymentAlarms>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub canary_analysis: Option<CanaryAnalysis>,
    /// berth's: minutes the new set takes the test listener's traffic alone, judged by the canary
    /// analysis and the deployment alarms, before production traffic moves; fractional.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub test_traffic_time_in_minutes: Option<f64>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

impl DeploymentConfiguration {
    pub fn maximum_percent(&self) -> u32 {
        self.maximum_percent.unwrap_or(200)
    }
    pub fn minimum_healthy_percent(&self) -> u32 {
        self.minimum_healthy_percent.unwrap_or(100)
    }
    /// The deployment strategy, `ROLLING` unless set.
    pub fn strategy(&self) -> &str {
        self.strategy.as_deref().unwrap_or("ROLLING")
    }
    /// Traffic steps of a shifting strategy: (percent to the new version, seconds to hold it).
    /// The last step is always 100%; the bake time follows it.
    pub fn traffic_steps(&self) -> Vec<(u32, f64)> {
        match self.strategy() {
            "CANARY" => {
                let c = self
                    .canary_configuration
                    .clone()
                    .unwrap_or(CanaryConfiguration {
                        canary_percent: 10.0,
                        canary_bake_time_in_minutes: 1.0,
                    });
                let p = c.canary_percent.clamp(0.1, 100.0).round().max(1.0) as u32;
                vec![
                    (p.min(100), c.canary_bake_time_in_minutes.max(0.0) * 60.0),
                    (100, 0.0),
                ]
            }
            "LINEAR" => {
                let l = self
                    .linear_configuration
                    .clone()
                    .unwrap_or(LinearConfiguration {
                        step_percent: 10.0,
                        step_bake_time_in_minutes: 1.0,
                    });
                let step = l.step_percent.clamp(1.0, 100.0);
                let mut out = Vec::new();
                let mut p = step;
                while p < 100.0 - 1e-9 {
                    out.push((
                        p.round() as u32,
                        l.step_bake_time_in_minutes.max(0.0) * 60.0,
                    ));
                    p += step;
                }
                out.push((100, 0.0));
                out
            }
            _ => vec![(100, 0.0)],
        }
    }
    /// Seconds of bake time after all traffic shifted.
    pub fn bake_seconds(&self) -> f64 {
        self.bake_time_in_minutes.unwrap_or(0.0).max(0.0) * 60.0
    }
    /// Seconds the test listener's traffic goes to the new set alone (with a test listener).
    pub fn test_traffic_seconds(&self) -> f64 {
        self.test_traffic_time_in_minutes.unwrap_or(0.0).max(0.0) * 60.0
    }
    /// Whether this strategy shifts traffic between two target groups.
    pub fn shifts_traffic(&self) -> bool {
        matches!(self.strategy(), "BLUE_GREEN" | "LINEAR" | "CANARY")
    }
}

/// One deployment of a service (ECS's `deployments[]`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct Deployment {
    pub id: String,
    pub status: String,
    pub task_definition: String,
    pub desired_count: u32,
    pub pending_count: u32,
    pub running_count: u32,
    pub failed_tasks: u32,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
    #[serde(default)]
    pub launch_type: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rollout_state: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rollout_state_reason: Option<String>,
}

/// A service event (`events[]`), newest first in responses.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct ServiceEvent {
    pub id: String,
    pub created_at: Timestamp,
    pub message: String,
}

/// `deploymentController`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct DeploymentController {
    #[serde(rename = "type")]
    pub kind: String,
}

/// A service as DescribeServices returns it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct Service {
    pub service_arn: String,
    pub service_name: String,
    pub cluster_arn: String,
    #[serde(default)]
    pub load_balancers: Vec<LoadBalancer>,
    pub status: String,
    pub desired_count: u32,
    pub running_count: u32,
    pub pending_count: u32,
    #[serde(default)]
    pub launch_type: String,
    pub task_definition: String,
    #[serde(default)]
    pub deployment_configuration: DeploymentConfiguration,
    #[serde(default)]
    pub deployments: Vec<Deployment>,
    #[serde(default)]
    pub events: Vec<ServiceEvent>,
    pub created_at: Timestamp,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub health_check_grace_period_seconds: Option<u32>,
    #[serde(default)]
    pub scheduling_strategy: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deployment_controller: Option<DeploymentController>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// A host port bound for a container port.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct NetworkBinding {
    #[serde(rename = "bindIP")]
    pub bind_ip: String,
    pub container_port: u16,
    pub host_port: u16,
    pub protocol: String,
}

/// A container within a task, as DescribeTasks returns it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct Container {
    pub container_arn: String,
    pub task_arn: String,
    pub name: String,
    pub image: String,
    pub last_status: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exit_code: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    #[serde(default)]
    pub network_bindings: Vec<NetworkBinding>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub health_status: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub runtime_id: Option<String>,
    #[serde(default)]
    pub essential: bool,
}

/// A task as DescribeTasks returns it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct Task {
    pub task_arn: String,
    pub cluster_arn: String,
    pub task_definition_arn: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub container_instance_arn: Option<String>,
    pub last_status: String,
    pub desired_status: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub health_status: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpu: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory: Option<String>,
    #[serde(default)]
    pub containers: Vec<Container>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub started_by: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group: Option<String>,
    #[serde(default)]
    pub version: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stopped_reason: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stop_code: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub launch_type: Option<String>,
    pub created_at: Timestamp,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pull_started_at: Option<Timestamp>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pull_stopped_at: Option<Timestamp>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub started_at: Option<Timestamp>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stopping_at: Option<Timestamp>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stopped_at: Option<Timestamp>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub execution_stopped_at: Option<Timestamp>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub overrides: Option<Value>,
    #[serde(default, skip_serializing_if = "is_false")]
    pub enable_execute_command: bool,
}

/// Task `lastStatus` values in lifecycle order.
pub mod task_status {
    pub const PROVISIONING: &str = "PROVISIONING";
    pub const PENDING: &str = "PENDING";
    pub const ACTIVATING: &str = "ACTIVATING";
    pub const RUNNING: &str = "RUNNING";
    pub const DEACTIVATING: &str = "DEACTIVATING";
    pub const STOPPING: &str = "STOPPING";
    pub const DEPROVISIONING: &str = "DEPROVISIONING";
    pub const STOPPED: &str = "STOPPED";
}

/// ECS `stopCode` values.
pub mod stop_code {
    pub const TASK_FAILED_TO_START: &str = "TaskFailedToStart";
    pub const ESSENTIAL_CONTAINER_EXITED: &str = "EssentialContainerExited";
    pub const USER_INITIATED: &str = "UserInitiated";
    pub const SERVICE_SCHEDULER_INITIATED: &str = "ServiceSchedulerInitiated";
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn register_json_round_trips_with_unknown_fields() {
        let input = serde_json::json!({
            "family": "web",
            "requiresCompatibilities": ["FARGATE"],
            "cpu": "256", "memory": "0.5 GB",
            "containerDefinitions": [{
                "name": "app", "image": "process://berth", "command": ["demo-app"],
                "portMappings": [{"containerPort": 8080, "protocol": "tcp"}],
                "healthCheck": {"command": ["CMD-SHELL", "true"], "interval": 0.2},
                "logConfiguration": {"logDriver": "awslogs"}
            }]
        });
        let td: TaskDefinition = serde_json::from_value(input.clone()).unwrap();
        assert!(td.validate("").is_empty(), "{}", td.validate(""));
        assert_eq!(td.memory_mib(), Some(512));
        let out = serde_json::to_value(&td).unwrap();
        assert_eq!(
            out["requiresCompatibilities"],
            input["requiresCompatibilities"]
        );
        assert_eq!(
            out["containerDefinitions"][0]["logConfiguration"]["logDriver"],
            "awslogs"
        );
        assert_eq!(
            out["containerDefinitions"][0]["healthCheck"]["interval"],
            0.2
        );
    }

    #[test]
    fn traffic_steps_follow_the_strategy() {
        let dc = |v: Value| -> DeploymentConfiguration { serde_json::from_value(v).unwrap() };
        assert_eq!(dc(serde_json::json!({})).traffic_steps(), vec![(100, 0.0)]);
        assert_eq!(
            dc(serde_json::json!({"strategy": "BLUE_GREEN"})).traffic_steps(),
            vec![(100, 0.0)]
        );
        assert_eq!(
            dc(serde_json::json!({"strategy": "CANARY", "canaryConfiguration": {"canaryPercent": 10, "canaryBakeTimeInMinutes": 0.5}})).traffic_steps(),
            vec![(10, 30.0), (100, 0.0)]
        );
        assert_eq!(
            dc(serde_json::json!({"strategy": "LINEAR", "linearConfiguration": {"stepPercent": 25, "stepBakeTimeInMinutes": 0.1}})).traffic_steps(),
            vec![(25, 6.0), (50, 6.0), (75, 6.0), (100, 0.0)]
        );
        assert_eq!(
            dc(serde_json::json!({"bakeTimeInMinutes": 0.05})).bake_seconds(),
            3.0
        );
    }

    #[test]
    fn validation_lists_every_error_with_its_path() {
        let td: TaskDefinition = serde_json::from_value(serde_json::json!({
            "family": "bad name",
            "cpu": "lots",
            "containerDefinitions": [
                {"name": "a", "image": "", "portMappings": [{"protocol": "sctp", "containerPort": 80}]},
                {"name": "a", "image": "x", "healthCheck": {"command": ["true"], "retries": 99}}
            ]
        }))
        .unwrap();
        let errs = td.validate("taskDefinition");
        let paths: Vec<_> = errs.0.iter().map(|e| e.path.as_str()).collect();
        assert_eq!(
            paths,
            vec![
                "taskDefinition.family",
                "taskDefinition.cpu",
                "taskDefinition.containerDefinitions[0].image",
                "taskDefinition.containerDefinitions[0].portMappings[0].protocol",
                "taskDefinition.containerDefinitions[1].name",
                "taskDefinition.containerDefinitions[1].healthCheck.command",
                "taskDefinition.containerDefinitions[1].healthCheck.retries",
            ]
        );
    }
}

/// The service field (a berth extension of CreateService/UpdateService/DescribeServices) holding
/// its [`IngressRule`]s.
pub const INGRESS_FIELD: &str = "berthIngress";

/// One security-group-like allow rule of a service (berth extension `berthIngress`): tasks of
/// service `fromService` may reach the service's tasks on `ports` (TCP and UDP). Traffic from
/// the host (the proxy, health checks) and from the service's own tasks is always allowed;
/// everything else between tasks is dropped.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct IngressRule {
    pub from_service: String,
    pub ports: Vec<PortRange>,
}

/// An inclusive port range (`from == to` for one port).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct PortRange {
    pub from: u16,
    pub to: u16,
}

impl std::fmt::Display for PortRange {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.from == self.to {
            write!(f, "{}", self.from)
        } else {
            write!(f, "{}-{}", self.from, self.to)
        }
    }
}

impl IngressRule {
    /// Problems of the rule (`path` is its field path): an invalid service name, no ports, a
    /// port 0 or a range whose start is above its end.
    pub fn validate(&self, path: &str) -> FieldErrors {
        let mut errs = FieldErrors::default();
        if !valid_name(&self.from_service, 255) {
            errs.push(
                format!("{path}.fromService"),
                format!(
                    "expected a service name of 1-255 letters, digits, hyphens or underscores, found {:?}",
                    self.from_service
                ),
            );
        }
        if self.ports.is_empty() {
            errs.push(
                format!("{path}.ports"),
                "expected at least one port or port range, found none",
            );
        }
        for (i, p) in self.ports.iter().enumerate() {
            if p.from == 0 || p.from > p.to {
                errs.push(
                    format!("{path}.ports[{i}]"),
                    format!(
                        "expected ports 1-65535 with from <= to, found {}-{}",
                        p.from, p.to
                    ),
                );
            }
        }
        errs
    }
}

/// A service's ingress rules as stored on its record (`berthIngress` in `extra`); none when absent
/// or unreadable.
pub fn service_ingress(service: &Service) -> Vec<IngressRule> {
    service
        .extra
        .get(INGRESS_FIELD)
        .and_then(|v| serde_json::from_value(v.clone()).ok())
        .unwrap_or_default()
}
