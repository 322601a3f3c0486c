//! The validated stack: what the file asks for, with defaults filled in.

use crate::elb::{LoadBalancerSpec, TargetGroupSpec};
use crate::scaling::ScalingSpec;
use berth_model::ecs::{
    AdvancedConfiguration, DeploymentConfiguration, IngressRule, LoadBalancer, TaskDefinition,
};
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
    /// ECS's deployment configuration: rolling limits, circuit breaker, strategy, bake time,
    /// canary/linear steps, alarms, canary analysis (from `deploymentConfiguration` or the
    /// friendlier `deployment`).
    pub deployment_configuration: Option<DeploymentConfiguration>,
    /// Target groups the service's tasks are registered with.
    pub load_balancers: Vec<ServiceLoadBalancer>,
    /// Application Auto Scaling of the desired count; `None` leaves the count to `desiredCount`.
    pub scaling: Option<ScalingSpec>,
    /// Which other services' tasks may reach this service's tasks, on which ports (`ingress`;
    /// stored as the service's `berthIngress`). Empty: only the host and the service's own tasks.
    pub ingress: Vec<IngressRule>,
}

/// A listener of the stack (`<lb>:<port>`, its default rule) or one of its rules
/// (`<lb>:<port>/<priority>`).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ListenerRuleRef {
    pub load_balancer: String,
    pub port: u16,
    /// `None` for the listener's default rule.
    pub priority: Option<u32>,
}

impl std::fmt::Display for ListenerRuleRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}", self.load_balancer, self.port)?;
        if let Some(p) = self.priority {
            write!(f, "/{p}")?;
        }
        Ok(())
    }
}

/// The stack resources a traffic-shifting deployment moves traffic between (ECS's
/// `advancedConfiguration`, by stack names).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrafficShiftTargets {
    /// The idle target group new task sets start in.
    pub alternate_target_group: String,
    /// The listener rule whose forward weights are shifted.
    pub production_listener: ListenerRuleRef,
    /// A rule that sends test traffic to the new set before production traffic moves.
    pub test_listener: Option<ListenerRuleRef>,
}

/// Resolves the stack's ELBv2 names to ARNs (see [`crate::ElbRefs`]); `None` when unknown.
pub trait ArnResolver {
    fn target_group(&self, name: &str) -> Option<String>;
    fn listener_rule(&self, rule: &ListenerRuleRef) -> Option<String>;
}

/// One `loadBalancers` entry of a service: ECS's, or a target group of the stack by name.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ServiceLoadBalancer {
    /// The stack target group (`targetGroup`); its ARN is filled in when applying.
    pub target_group: Option<String>,
    /// ECS's entry; `target_group_arn` is set for `targetGroupArn` entries (and
    /// `advanced_configuration` when the file gives it with ARNs).
    pub load_balancer: LoadBalancer,
    /// Blue/green resources by stack name (from the service's `deployment`); they become the
    /// entry's `advancedConfiguration` when applying.
    pub traffic: Option<TrafficShiftTargets>,
}

impl ServiceLoadBalancer {
    /// ECS's entry with the stack names resolved to ARNs by `arns` (absent when unknown).
    pub fn resolve(&self, arns: &dyn ArnResolver) -> LoadBalancer {
        let mut lb = self.load_balancer.clone();
        if let Some(name) = &self.target_group {
            lb.target_group_arn = arns.target_group(name);
        }
        if let Some(t) = &self.traffic {
            lb.advanced_configuration = Some(AdvancedConfiguration {
                alternate_target_group_arn: arns
                    .target_group(&t.alternate_target_group)
                    .unwrap_or_default(),
                production_listener_rule: arns
                    .listener_rule(&t.production_listener)
                    .unwrap_or_default(),
                test_listener_rule: t
                    .test_listener
                    .as_ref()
                    .map(|r| arns.listener_rule(r).unwrap_or_default()),
                role_arn: None,
            });
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
