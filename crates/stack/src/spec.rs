//! The validated stack: what the file asks for, with defaults filled in.

use berth_model::ecs::{DeploymentConfiguration, LoadBalancer, TaskDefinition};
use std::collections::BTreeMap;

/// Tag key that marks a service as managed by a stack; its value is the stack name.
pub const STACK_TAG: &str = "berth:stack";

/// Cluster used when the stack file names none.
pub const DEFAULT_CLUSTER: &str = "default";

/// A valid stack file. New top-level sections (load balancers, target groups) become new fields
/// here and new keys in the parser's `STACK_KEYS`.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Stack {
    /// Stack name: 1-64 lowercase letters, digits and hyphens.
    pub name: String,
    /// Cluster the services run in.
    pub cluster: String,
    /// Services by name.
    pub services: BTreeMap<String, ServiceSpec>,
}

/// One service of a stack, in ECS's terms.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ServiceSpec {
    /// Number of tasks to keep running (0-1000).
    pub desired_count: u32,
    /// The task definition to register; `family` is filled in (`<stack>-<service>` by default).
    pub task_definition: TaskDefinition,
    /// Seconds during which failing load balancer health checks are ignored after a task starts.
    pub health_check_grace_period_seconds: Option<u32>,
    /// Rolling deployment limits and circuit breaker.
    pub deployment_configuration: Option<DeploymentConfiguration>,
    /// Target groups the service's tasks are registered with.
    pub load_balancers: Vec<LoadBalancer>,
}

impl Stack {
    /// The task definition family used for `service` when the file names none.
    pub fn default_family(&self, service: &str) -> String {
        default_family(&self.name, service)
    }
}

pub(crate) fn default_family(stack: &str, service: &str) -> String {
    format!("{stack}-{service}")
}
