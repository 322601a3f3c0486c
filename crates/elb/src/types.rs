//! ELBv2 resources as berth stores them: load balancers, target groups, listeners, rules, and the
//! actions and conditions of rules. Field names follow AWS's (snake_case), values are AWS's strings.

use serde::{Deserialize, Serialize};

/// An application load balancer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LoadBalancer {
    pub arn: String,
    pub name: String,
    /// `<name>-<number>.<region>.elb.berth.localhost` (`internal-` prefixed for internal ones);
    /// `*.localhost` resolves to the loopback address in most resolvers.
    pub dns_name: String,
    /// Seconds since the epoch.
    pub created_time: f64,
    /// `internet-facing` or `internal`.
    pub scheme: String,
    /// Always `application`.
    pub load_balancer_type: String,
    /// `ipv4` or `dualstack`.
    pub ip_address_type: String,
    pub vpc_id: String,
    pub subnets: Vec<String>,
    pub security_groups: Vec<String>,
    /// `active`: berth's load balancers exist as soon as they are created.
    pub state: String,
}

/// Health check settings of a target group.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HealthCheckSettings {
    pub enabled: bool,
    /// `HTTP` or `HTTPS`.
    pub protocol: String,
    /// `traffic-port` or a port number.
    pub port: String,
    pub path: String,
    /// Seconds; berth accepts fractions (AWS: whole seconds 5-300).
    pub interval_seconds: f64,
    pub timeout_seconds: f64,
    pub healthy_threshold: u32,
    pub unhealthy_threshold: u32,
    /// HTTP codes that mean healthy: `200`, `200-299`, `200,302`.
    pub matcher: String,
}

/// A target group.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TargetGroup {
    pub arn: String,
    pub name: String,
    /// `HTTP` or `HTTPS`.
    pub protocol: String,
    /// `HTTP1`, `HTTP2` or `GRPC`.
    pub protocol_version: String,
    pub port: u16,
    pub vpc_id: Option<String>,
    /// `instance` or `ip`.
    pub target_type: String,
    pub ip_address_type: String,
    pub health_check: HealthCheckSettings,
}

/// A server certificate of an HTTPS listener.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct Certificate {
    pub certificate_arn: String,
    pub is_default: Option<bool>,
}

/// A listener: a port of a load balancer, its default actions and (separately stored) rules.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Listener {
    pub arn: String,
    pub load_balancer_arn: String,
    pub port: u16,
    /// `HTTP` or `HTTPS`.
    pub protocol: String,
    pub ssl_policy: Option<String>,
    pub certificates: Vec<Certificate>,
    pub default_actions: Vec<Action>,
    /// ARN of the listener's default rule (its actions are `default_actions`).
    pub default_rule_arn: String,
}

/// A listener rule; `priority` is `None` only for the listener's default rule.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Rule {
    pub arn: String,
    pub listener_arn: String,
    pub priority: Option<u32>,
    pub conditions: Vec<RuleCondition>,
    pub actions: Vec<Action>,
}

impl Rule {
    /// True for a listener's default rule.
    pub fn is_default(&self) -> bool {
        self.priority.is_none()
    }
}

/// A rule action. `action_type` is `forward`, `fixed-response` or `redirect`; the matching config
/// is set. Stored actions are normalised as AWS returns them (a forward action has both
/// `target_group_arn` when it has one group, and `forward_config`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct Action {
    pub action_type: String,
    pub order: Option<u32>,
    pub target_group_arn: Option<String>,
    pub forward_config: Option<ForwardConfig>,
    pub redirect_config: Option<RedirectConfig>,
    pub fixed_response_config: Option<FixedResponseConfig>,
}

/// Weighted target groups of a forward action.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct ForwardConfig {
    pub target_groups: Vec<TargetGroupTuple>,
    pub stickiness: Option<StickinessConfig>,
}

/// One target group of a forward action, weight 0-999.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct TargetGroupTuple {
    pub target_group_arn: String,
    pub weight: Option<u32>,
}

/// Target-group-level stickiness of a weighted forward action.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct StickinessConfig {
    pub enabled: bool,
    pub duration_seconds: Option<u64>,
}

/// A redirect; unset parts are stored with AWS's `#{...}` placeholders filled in.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct RedirectConfig {
    pub protocol: Option<String>,
    pub port: Option<String>,
    pub host: Option<String>,
    pub path: Option<String>,
    pub query: Option<String>,
    /// `HTTP_301` or `HTTP_302`.
    pub status_code: String,
}

/// A fixed response.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct FixedResponseConfig {
    pub message_body: Option<String>,
    /// `2XX`, `4XX` or `5XX` as a string, e.g. `503`.
    pub status_code: String,
    pub content_type: Option<String>,
}

/// A rule condition, in either AWS form: legacy `values` (host-header, path-pattern) or the
/// per-field config. Stored conditions have the config set; host-header and path-pattern also
/// carry `values`, as AWS returns them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct RuleCondition {
    pub field: String,
    pub values: Vec<String>,
    pub host_header_config: Option<ValuesConfig>,
    pub path_pattern_config: Option<ValuesConfig>,
    pub http_header_config: Option<HttpHeaderConfig>,
    pub query_string_config: Option<QueryStringConfig>,
    pub http_request_method_config: Option<ValuesConfig>,
    pub source_ip_config: Option<ValuesConfig>,
}

/// A list of values to match (ORed).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct ValuesConfig {
    pub values: Vec<String>,
}

/// An http-header condition.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct HttpHeaderConfig {
    pub http_header_name: String,
    pub values: Vec<String>,
}

/// A query-string condition.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct QueryStringConfig {
    pub values: Vec<QueryStringKeyValue>,
}

/// One `key=value` to match; a missing key matches any key.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct QueryStringKeyValue {
    pub key: Option<String>,
    pub value: String,
}

/// A resource tag.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct Tag {
    pub key: String,
    pub value: Option<String>,
}

/// An attribute of a load balancer or target group.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct Attribute {
    pub key: String,
    pub value: String,
}

/// A target registered with a target group, with the health the proxy last reported for it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct RegisteredTarget {
    pub id: String,
    pub port: u16,
    pub availability_zone: Option<String>,
    /// When `DeregisterTargets` started draining it (seconds since the epoch).
    pub draining_since: Option<f64>,
    /// The proxy's last report since (re-)registration or the start of draining.
    pub reported: Option<ReportedHealth>,
}

/// Health of one target as the proxy reported it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct ReportedHealth {
    pub state: String,
    pub reason: Option<String>,
    pub description: Option<String>,
    pub in_flight: u64,
}

/// A target's health as DescribeTargetHealth returns it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct TargetHealthState {
    /// `initial`, `healthy`, `unhealthy`, `unused`, `draining` or `unavailable`.
    pub state: String,
    pub reason: Option<String>,
    pub description: Option<String>,
}

/// One row of DescribeTargetHealth.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct TargetHealthDescription {
    pub id: String,
    pub port: u16,
    pub availability_zone: Option<String>,
    /// The port health checks go to, as a string.
    pub health_check_port: String,
    pub health: TargetHealthState,
}
