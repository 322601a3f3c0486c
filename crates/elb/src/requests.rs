//! Typed inputs of the ELBv2 operations, one struct per operation, named as AWS names them.
//! Numbers that AWS range-checks are kept wide (`i64`) so the check can report what was found.

use crate::types::{Action, Attribute, Certificate, RuleCondition, Tag};

/// CreateLoadBalancer.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct CreateLoadBalancerRequest {
    pub name: String,
    pub subnets: Vec<String>,
    /// Subnet ids from `SubnetMappings` (addresses in them are ignored).
    pub subnet_mappings: Vec<String>,
    pub security_groups: Vec<String>,
    pub scheme: Option<String>,
    pub tags: Vec<Tag>,
    pub load_balancer_type: Option<String>,
    pub ip_address_type: Option<String>,
}

/// DescribeLoadBalancers: all when both lists are empty.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct DescribeLoadBalancersRequest {
    pub load_balancer_arns: Vec<String>,
    pub names: Vec<String>,
}

/// Health check fields shared by CreateTargetGroup and ModifyTargetGroup.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct HealthCheckInput {
    pub enabled: Option<bool>,
    pub protocol: Option<String>,
    pub port: Option<String>,
    pub path: Option<String>,
    pub interval_seconds: Option<f64>,
    pub timeout_seconds: Option<f64>,
    pub healthy_threshold: Option<i64>,
    pub unhealthy_threshold: Option<i64>,
    /// `Matcher.HttpCode`.
    pub matcher: Option<String>,
}

/// CreateTargetGroup.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct CreateTargetGroupRequest {
    pub name: String,
    pub protocol: Option<String>,
    pub protocol_version: Option<String>,
    pub port: Option<i64>,
    pub vpc_id: Option<String>,
    pub target_type: Option<String>,
    pub ip_address_type: Option<String>,
    pub health_check: HealthCheckInput,
    pub tags: Vec<Tag>,
}

/// ModifyTargetGroup: only the given health check fields change.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ModifyTargetGroupRequest {
    pub target_group_arn: String,
    pub health_check: HealthCheckInput,
}

/// DescribeTargetGroups: all when every filter is empty.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct DescribeTargetGroupsRequest {
    pub load_balancer_arn: Option<String>,
    pub target_group_arns: Vec<String>,
    pub names: Vec<String>,
}

/// CreateListener.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct CreateListenerRequest {
    pub load_balancer_arn: String,
    pub protocol: Option<String>,
    pub port: Option<i64>,
    pub ssl_policy: Option<String>,
    pub certificates: Vec<Certificate>,
    pub default_actions: Vec<Action>,
    pub tags: Vec<Tag>,
}

/// ModifyListener: only the given fields change.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ModifyListenerRequest {
    pub listener_arn: String,
    pub port: Option<i64>,
    pub protocol: Option<String>,
    pub ssl_policy: Option<String>,
    pub certificates: Option<Vec<Certificate>>,
    pub default_actions: Option<Vec<Action>>,
}

/// DescribeListeners: by load balancer or by ARNs.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct DescribeListenersRequest {
    pub load_balancer_arn: Option<String>,
    pub listener_arns: Vec<String>,
}

/// CreateRule.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct CreateRuleRequest {
    pub listener_arn: String,
    pub conditions: Vec<RuleCondition>,
    pub priority: i64,
    pub actions: Vec<Action>,
    pub tags: Vec<Tag>,
}

/// ModifyRule: only the given lists are replaced.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ModifyRuleRequest {
    pub rule_arn: String,
    pub conditions: Option<Vec<RuleCondition>>,
    pub actions: Option<Vec<Action>>,
}

/// DescribeRules: by listener (default rule included) or by ARNs.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct DescribeRulesRequest {
    pub listener_arn: Option<String>,
    pub rule_arns: Vec<String>,
}

/// One pair of SetRulePriorities.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RulePriorityPair {
    pub rule_arn: String,
    pub priority: i64,
}

/// A target in RegisterTargets, DeregisterTargets and DescribeTargetHealth; the port defaults to
/// the target group's.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TargetDescription {
    pub id: String,
    pub port: Option<i64>,
    pub availability_zone: Option<String>,
}

/// ModifyLoadBalancerAttributes / ModifyTargetGroupAttributes.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ModifyAttributesRequest {
    pub resource_arn: String,
    pub attributes: Vec<Attribute>,
}
