//! The load balancer side of a stack: load balancers, listeners, rules and target groups as the
//! file declares them (target groups by stack name), and their translation to and from ELBv2's
//! own types (target groups by ARN).

use berth_elb::attributes::target_group_defaults;
use berth_elb::{
    Action, FixedResponseConfig, ForwardConfig, HealthCheckInput, HealthCheckSettings,
    HttpHeaderConfig, QueryStringConfig, QueryStringKeyValue, RedirectConfig, RuleCondition,
    StickinessConfig, TargetGroupTuple, ValuesConfig,
};
use std::collections::BTreeMap;

/// Port of a target group when the file names none.
pub const DEFAULT_TARGET_GROUP_PORT: u16 = 80;

/// An application load balancer of the stack (its name is the key in `Stack::load_balancers`).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct LoadBalancerSpec {
    /// HTTP listeners, each on its own port.
    pub listeners: Vec<ListenerSpec>,
}

/// An HTTP listener: a port, the action for requests no rule matches, and the rules.
#[derive(Debug, Clone, PartialEq)]
pub struct ListenerSpec {
    pub port: u16,
    pub default_action: ActionSpec,
    /// Rules in file order; priorities are unique within the listener.
    pub rules: Vec<RuleSpec>,
}

/// A listener rule: when all conditions match, the action runs; lower priorities first.
#[derive(Debug, Clone, PartialEq)]
pub struct RuleSpec {
    pub priority: u32,
    pub conditions: ConditionsSpec,
    pub action: ActionSpec,
}

/// What a listener or rule does with a request.
#[derive(Debug, Clone, PartialEq)]
pub enum ActionSpec {
    /// Forward to one or more (weighted) target groups of the stack.
    Forward(ForwardSpec),
    /// Answer directly.
    FixedResponse(FixedResponseSpec),
    /// Redirect; unset parts keep the request's (`#{host}` and friends).
    Redirect(RedirectSpec),
}

/// A forward action.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ForwardSpec {
    pub target_groups: Vec<WeightedTargetGroup>,
    /// Target-group stickiness duration; `None` when stickiness is off.
    pub stickiness_seconds: Option<u64>,
}

/// One target group of a forward action, by stack name, with its weight (0-999, default 1).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WeightedTargetGroup {
    pub name: String,
    pub weight: u32,
}

/// A fixed response.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct FixedResponseSpec {
    /// `2XX`, `4XX` or `5XX`, e.g. `404`.
    pub status_code: String,
    pub content_type: Option<String>,
    pub message_body: Option<String>,
}

/// A redirect.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct RedirectSpec {
    pub protocol: Option<String>,
    pub port: Option<String>,
    pub host: Option<String>,
    pub path: Option<String>,
    pub query: Option<String>,
    /// `HTTP_301` (default) or `HTTP_302`.
    pub status_code: String,
}

/// The conditions of a rule; every non-empty one must match (values within one are ORed).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ConditionsSpec {
    pub path_pattern: Vec<String>,
    pub host_header: Vec<String>,
    pub http_header: Vec<HttpHeaderSpec>,
    pub http_request_method: Vec<String>,
    pub query_string: Vec<QueryStringSpec>,
    pub source_ip: Vec<String>,
}

/// An http-header condition.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct HttpHeaderSpec {
    pub name: String,
    pub values: Vec<String>,
}

/// One `key=value` of a query-string condition; no key matches any key.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct QueryStringSpec {
    pub key: Option<String>,
    pub value: String,
}

/// A target group of the stack (its name is the key in `Stack::target_groups`).
#[derive(Debug, Clone, PartialEq)]
pub struct TargetGroupSpec {
    /// Port targets receive traffic on unless registered with their own (default 80).
    pub port: u16,
    pub health_check: HealthCheckSpec,
    /// Target group attributes the file sets; the others stay at ELBv2's defaults.
    pub attributes: BTreeMap<String, String>,
}

impl Default for TargetGroupSpec {
    fn default() -> Self {
        TargetGroupSpec {
            port: DEFAULT_TARGET_GROUP_PORT,
            health_check: HealthCheckSpec::default(),
            attributes: BTreeMap::new(),
        }
    }
}

/// Health check settings the file sets; unset ones are ELBv2's defaults for HTTP target groups.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct HealthCheckSpec {
    pub enabled: Option<bool>,
    pub path: Option<String>,
    /// `traffic-port` or a port number.
    pub port: Option<String>,
    pub interval_seconds: Option<f64>,
    pub timeout_seconds: Option<f64>,
    pub healthy_threshold: Option<u32>,
    pub unhealthy_threshold: Option<u32>,
    /// HTTP codes meaning healthy: `200`, `200-299`, `200,302`.
    pub matcher: Option<String>,
}

/// ELBv2's health check of a new HTTP target group.
pub fn default_health_check() -> HealthCheckSettings {
    HealthCheckSettings {
        enabled: true,
        protocol: "HTTP".into(),
        port: "traffic-port".into(),
        path: "/".into(),
        interval_seconds: 30.0,
        timeout_seconds: 5.0,
        healthy_threshold: 5,
        unhealthy_threshold: 2,
        matcher: "200".into(),
    }
}

impl HealthCheckSpec {
    /// The settings the target group should have: the file's, ELBv2's defaults for the rest.
    pub fn settings(&self) -> HealthCheckSettings {
        let d = default_health_check();
        HealthCheckSettings {
            enabled: self.enabled.unwrap_or(d.enabled),
            protocol: d.protocol,
            port: self.port.clone().unwrap_or(d.port),
            path: self.path.clone().unwrap_or(d.path),
            interval_seconds: self.interval_seconds.unwrap_or(d.interval_seconds),
            timeout_seconds: self.timeout_seconds.unwrap_or(d.timeout_seconds),
            healthy_threshold: self.healthy_threshold.unwrap_or(d.healthy_threshold),
            unhealthy_threshold: self.unhealthy_threshold.unwrap_or(d.unhealthy_threshold),
            matcher: self.matcher.clone().unwrap_or(d.matcher),
        }
    }

    /// Every health check field set explicitly, for CreateTargetGroup and ModifyTargetGroup (so
    /// that a setting removed from the file goes back to its default).
    pub fn input(&self) -> HealthCheckInput {
        let s = self.settings();
        HealthCheckInput {
            enabled: Some(s.enabled),
            protocol: Some(s.protocol),
            port: Some(s.port),
            path: Some(s.path),
            interval_seconds: Some(s.interval_seconds),
            timeout_seconds: Some(s.timeout_seconds),
            healthy_threshold: Some(i64::from(s.healthy_threshold)),
            unhealthy_threshold: Some(i64::from(s.unhealthy_threshold)),
            matcher: Some(s.matcher),
        }
    }
}

impl TargetGroupSpec {
    /// The attributes the target group should have: ELBv2's defaults with the file's on top.
    pub fn desired_attributes(&self) -> BTreeMap<String, String> {
        let mut all = target_group_defaults();
        all.extend(self.attributes.clone());
        all
    }
}

/// The weight a forward target group gets when none is given.
const DEFAULT_WEIGHT: u32 = 1;

impl ActionSpec {
    /// Stack names of the target groups this action forwards to.
    pub fn target_group_names(&self) -> Vec<&str> {
        match self {
            ActionSpec::Forward(f) => f.target_groups.iter().map(|t| t.name.as_str()).collect(),
            _ => Vec::new(),
        }
    }

    /// The ELBv2 action, with each target group name turned into its ARN by `arn_of`.
    pub fn to_elb(&self, arn_of: &dyn Fn(&str) -> String) -> Action {
        match self {
            ActionSpec::Forward(f) => {
                let target_groups: Vec<TargetGroupTuple> = f
                    .target_groups
                    .iter()
                    .map(|t| TargetGroupTuple {
                        target_group_arn: arn_of(&t.name),
                        weight: Some(t.weight),
                    })
                    .collect();
                Action {
                    action_type: "forward".into(),
                    forward_config: Some(ForwardConfig {
                        target_groups,
                        stickiness: f.stickiness_seconds.map(|d| StickinessConfig {
                            enabled: true,
                            duration_seconds: Some(d),
                        }),
                    }),
                    ..Action::default()
                }
            }
            ActionSpec::FixedResponse(f) => Action {
                action_type: "fixed-response".into(),
                fixed_response_config: Some(FixedResponseConfig {
                    message_body: f.message_body.clone(),
                    status_code: f.status_code.clone(),
                    content_type: f.content_type.clone(),
                }),
                ..Action::default()
            },
            ActionSpec::Redirect(r) => Action {
                action_type: "redirect".into(),
                redirect_config: Some(RedirectConfig {
                    protocol: r.protocol.clone(),
                    port: r.port.clone(),
                    host: r.host.clone(),
                    path: r.path.clone(),
                    query: r.query.clone(),
                    status_code: r.status_code.clone(),
                }),
                ..Action::default()
            },
        }
    }

    /// The action an ELBv2 action stands for, each target group ARN named by `name_of`; `None`
    /// for action types a stack cannot declare.
    pub fn from_elb(action: &Action, name_of: &dyn Fn(&str) -> String) -> Option<ActionSpec> {
        match action.action_type.as_str() {
            "forward" => {
                let fc = action.forward_config.clone().unwrap_or_default();
                let mut target_groups: Vec<WeightedTargetGroup> = fc
                    .target_groups
                    .iter()
                    .map(|t| WeightedTargetGroup {
                        name: name_of(&t.target_group_arn),
                        weight: t.weight.unwrap_or(DEFAULT_WEIGHT),
                    })
                    .collect();
                if target_groups.is_empty() {
                    if let Some(arn) = &action.target_group_arn {
                        target_groups.push(WeightedTargetGroup {
                            name: name_of(arn),
                            weight: DEFAULT_WEIGHT,
                        });
                    }
                }
                let stickiness_seconds = fc
                    .stickiness
                    .filter(|s| s.enabled)
                    .and_then(|s| s.duration_seconds);
                Some(ActionSpec::Forward(ForwardSpec {
                    target_groups,
                    stickiness_seconds,
                }))
            }
            "fixed-response" => {
                let c = action.fixed_response_config.clone().unwrap_or_default();
                Some(ActionSpec::FixedResponse(FixedResponseSpec {
                    status_code: c.status_code,
                    content_type: c.content_type,
                    message_body: c.message_body,
                }))
            }
            "redirect" => {
                let c = action.redirect_config.clone().unwrap_or_default();
                Some(ActionSpec::Redirect(RedirectSpec {
                    protocol: c.protocol,
                    port: c.port,
                    host: c.host,
                    path: c.path,
                    query: c.query,
                    status_code: c.status_code,
                }))
            }
            _ => None,
        }
    }

    /// The action as ELBv2 stores it, so that a declared and a described action compare equal:
    /// redirect placeholders filled in, message-less bodies and content types as given.
    pub fn normalized(&self) -> ActionSpec {
        match self {
            ActionSpec::Redirect(r) => {
                let fill = |v: &Option<String>, default: &str| {
                    Some(v.clone().unwrap_or_else(|| default.to_string()))
                };
                ActionSpec::Redirect(RedirectSpec {
                    protocol: fill(&r.protocol, "#{protocol}"),
                    port: fill(&r.port, "#{port}"),
                    host: fill(&r.host, "#{host}"),
                    path: fill(&r.path, "/#{path}"),
                    query: fill(&r.query, "#{query}"),
                    status_code: r.status_code.clone(),
                })
            }
            ActionSpec::FixedResponse(f) => ActionSpec::FixedResponse(FixedResponseSpec {
                message_body: f.message_body.clone().filter(|b| !b.is_empty()),
                ..f.clone()
            }),
            other => other.clone(),
        }
    }

    /// The action in a few words: `forward frontend`, `forward a:90,b:10 (sticky 60s)`,
    /// `fixed-response 404`, `redirect HTTP_301 to #{protocol}://#{host}:443/#{path}?#{query}`.
    pub fn describe(&self) -> String {
        match self {
            ActionSpec::Forward(f) => {
                let groups: Vec<String> = if f.target_groups.len() == 1 {
                    vec![f.target_groups[0].name.clone()]
                } else {
                    f.target_groups
                        .iter()
                        .map(|t| format!("{}:{}", t.name, t.weight))
                        .collect()
                };
                let sticky = f
                    .stickiness_seconds
                    .map(|s| format!(" (sticky {s}s)"))
                    .unwrap_or_default();
                format!("forward {}{sticky}", groups.join(","))
            }
            ActionSpec::FixedResponse(f) => format!("fixed-response {}", f.status_code),
            ActionSpec::Redirect(r) => {
                let r = match self.normalized() {
                    ActionSpec::Redirect(n) => n,
                    _ => r.clone(),
                };
                let part = |v: &Option<String>| v.clone().unwrap_or_default();
                format!(
                    "redirect {} to {}://{}:{}{}?{}",
                    r.status_code,
                    part(&r.protocol),
                    part(&r.host),
                    part(&r.port),
                    part(&r.path),
                    part(&r.query)
                )
            }
        }
    }
}

impl ConditionsSpec {
    /// How many values the conditions hold together (ELBv2 allows 5 per rule).
    pub fn n_values(&self) -> usize {
        self.path_pattern.len()
            + self.host_header.len()
            + self
                .http_header
                .iter()
                .map(|h| h.values.len())
                .sum::<usize>()
            + self.http_request_method.len()
            + self.query_string.len()
            + self.source_ip.len()
    }

    /// True when no condition is set.
    pub fn is_empty(&self) -> bool {
        self.n_values() == 0 && self.http_header.is_empty()
    }

    /// The ELBv2 conditions, one per kind (one per header), in a fixed order.
    pub fn to_elb(&self) -> Vec<RuleCondition> {
        let mut out = Vec::new();
        let values = |v: &[String]| Some(ValuesConfig { values: v.to_vec() });
        if !self.path_pattern.is_empty() {
            out.push(RuleCondition {
                field: "path-pattern".into(),
                path_pattern_config: values(&self.path_pattern),
                ..RuleCondition::default()
            });
        }
        if !self.host_header.is_empty() {
            out.push(RuleCondition {
                field: "host-header".into(),
                host_header_config: values(&self.host_header),
                ..RuleCondition::default()
            });
        }
        for h in &self.http_header {
            out.push(RuleCondition {
                field: "http-header".into(),
                http_header_config: Some(HttpHeaderConfig {
                    http_header_name: h.name.clone(),
                    values: h.values.clone(),
                }),
                ..RuleCondition::default()
            });
        }
        if !self.http_request_method.is_empty() {
            out.push(RuleCondition {
                field: "http-request-method".into(),
                http_request_method_config: values(&self.http_request_method),
                ..RuleCondition::default()
            });
        }
        if !self.query_string.is_empty() {
            out.push(RuleCondition {
                field: "query-string".into(),
                query_string_config: Some(QueryStringConfig {
                    values: self
                        .query_string
                        .iter()
                        .map(|q| QueryStringKeyValue {
                            key: q.key.clone(),
                            value: q.value.clone(),
                        })
                        .collect(),
                }),
                ..RuleCondition::default()
            });
        }
        if !self.source_ip.is_empty() {
            out.push(RuleCondition {
                field: "source-ip".into(),
                source_ip_config: values(&self.source_ip),
                ..RuleCondition::default()
            });
        }
        out
    }

    /// The conditions ELBv2 conditions stand for, in either of their forms.
    pub fn from_elb(conditions: &[RuleCondition]) -> ConditionsSpec {
        let mut out = ConditionsSpec::default();
        let values = |c: &RuleCondition, config: &Option<ValuesConfig>| match config {
            Some(v) => v.values.clone(),
            None => c.values.clone(),
        };
        for c in conditions {
            match c.field.as_str() {
                "path-pattern" => out.path_pattern.extend(values(c, &c.path_pattern_config)),
                "host-header" => out.host_header.extend(values(c, &c.host_header_config)),
                "http-header" => {
                    if let Some(h) = &c.http_header_config {
                        out.http_header.push(HttpHeaderSpec {
                            name: h.http_header_name.clone(),
                            values: h.values.clone(),
                        });
                    }
                }
                "http-request-method" => out
                    .http_request_method
                    .extend(values(c, &c.http_request_method_config)),
                "query-string" => {
                    if let Some(q) = &c.query_string_config {
                        out.query_string
                            .extend(q.values.iter().map(|kv| QueryStringSpec {
                                key: kv.key.clone(),
                                value: kv.value.clone(),
                            }));
                    }
                }
                "source-ip" => out.source_ip.extend(values(c, &c.source_ip_config)),
                _ => {}
            }
        }
        out
    }

    /// The conditions in a few words: `pathPattern=/api/*,/v2/*; httpHeader X-Env=beta`.
    pub fn describe(&self) -> String {
        let mut parts = Vec::new();
        let mut list = |key: &str, v: &[String]| {
            if !v.is_empty() {
                parts.push(format!("{key}={}", v.join(",")));
            }
        };
        list("pathPattern", &self.path_pattern);
        list("hostHeader", &self.host_header);
        list("httpRequestMethod", &self.http_request_method);
        list("sourceIp", &self.source_ip);
        for h in &self.http_header {
            parts.push(format!("httpHeader {}={}", h.name, h.values.join(",")));
        }
        if !self.query_string.is_empty() {
            let kvs: Vec<String> = self
                .query_string
                .iter()
                .map(|q| format!("{}={}", q.key.as_deref().unwrap_or("*"), q.value))
                .collect();
            parts.push(format!("queryString {}", kvs.join("&")));
        }
        parts.join("; ")
    }
}
