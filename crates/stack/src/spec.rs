//! The validated stack: what the file asks for, with defaults filled in.

use crate::elb::{LoadBalancerSpec, TargetGroupSpec};
use berth_model::ecs::{DeploymentConfiguration, LoadBalancer, TaskDefinition};
use std::collections::BTreeMap;

/// Tag key that marks a service as managed by a stack; its value is the stack name.
pub const STACK_TAG: &str = "berth:stack";

/// Cluster used when the stack file names none.
pub const DEFAULT_CLUSTER: &str = "default";

/// A valid stack file. New top-level sections become new fields here and new keys in the
/// parser's `STACK_KEYS`.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Stack {
    /// Stack name: 1-64 lowercase letters, digits and hyphens.
    pub name: String,
    /// Cluster the services run in.
    pub cluster: String,
    /// Services by name.
    pub services: BTreeMap<String, ServiceSpec>,
    /// Application load balancers by name (ELBv2 names: 1-32 letters, digits, hyphens).
    pub load_balancers: BTreeMap<String, LoadBalancerSpec>,
    /// Target groups by name (ELBv2 names: 1-32 letters, digits, hyphens).
    pub target_groups: BTreeMap<String, TargetGroupSpec>,
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
    pub load_balancers: Vec<ServiceLoadBalancer>,
}

/// One `loadBalancers` entry of a service: ECS's, or a target group of the stack by name.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ServiceLoadBalancer {
    /// The stack target group (`targetGroup`); its ARN is filled in when applying.
    pub target_group: Option<String>,
    /// ECS's entry; `target_group_arn` is set for `targetGroupArn` entries.
    pub load_balancer: LoadBalancer,
}

impl ServiceLoadBalancer {
    /// ECS's entry with the stack target group's ARN from `arn_of` (when it has one).
    pub fn resolve(&self, arn_of: &dyn Fn(&str) -> Option<String>) -> LoadBalancer {
        let mut lb = self.load_balancer.clone();
        if let Some(name) = &self.target_group {
            lb.target_group_arn = arn_of(name);
        }
        lb
    }
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
