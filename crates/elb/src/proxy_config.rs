//! Translation of the ELBv2 state into the proxy's routing snapshot (`protocol::proxy`).

use crate::types::{Action, Certificate, RuleCondition};
use crate::ElbState;
use berth_model::protocol::proxy as p;

/// berth's ACM stand-in: a certificate "ARN" names PEM files on the proxy's machine, as
/// `file://<cert.pem>|<key.pem>` or `arn:berth:acm:file:<cert.pem>:<key.pem>`. Returns the
/// (certificate, key) paths, or None when `arn` is neither form.
pub fn certificate_files(arn: &str) -> Option<(String, String)> {
    let (cert, key) = if let Some(rest) = arn.strip_prefix("file://") {
        rest.split_once('|')?
    } else {
        arn.strip_prefix("arn:berth:acm:file:")?.rsplit_once(':')?
    };
    (!cert.is_empty() && !key.is_empty()).then(|| (cert.to_string(), key.to_string()))
}

/// The proxy's certificate list of a listener: the one marked IsDefault (else the first) is
/// the default.
fn certificates(certs: &[Certificate]) -> Vec<p::ListenerCertificate> {
    let default = certs
        .iter()
        .position(|c| c.is_default == Some(true))
        .unwrap_or(0);
    certs
        .iter()
        .enumerate()
        .filter_map(|(i, c)| {
            let (cert_pem_path, key_pem_path) = certificate_files(&c.certificate_arn)?;
            Some(p::ListenerCertificate {
                cert_pem_path,
                key_pem_path,
                default: i == default,
            })
        })
        .collect()
}

fn action(a: &Action) -> Option<p::Action> {
    match a.action_type.as_str() {
        "forward" => {
            let fc = a.forward_config.as_ref()?;
            Some(p::Action::Forward {
                target_groups: fc
                    .target_groups
                    .iter()
                    .map(|t| p::WeightedTargetGroup {
                        arn: t.target_group_arn.clone(),
                        weight: t.weight.unwrap_or(1),
                    })
                    .collect(),
                stickiness_seconds: fc
                    .stickiness
                    .as_ref()
                    .filter(|s| s.enabled)
                    .map(|s| s.duration_seconds.unwrap_or(3600)),
            })
        }
        "fixed-response" => {
            let c = a.fixed_response_config.as_ref()?;
            Some(p::Action::FixedResponse {
                status_code: c.status_code.parse().unwrap_or(503),
                content_type: c.content_type.clone(),
                message_body: c.message_body.clone(),
            })
        }
        "redirect" => {
            let c = a.redirect_config.as_ref()?;
            Some(p::Action::Redirect {
                protocol: c.protocol.clone(),
                host: c.host.clone(),
                port: c.port.clone(),
                path: c.path.clone(),
                query: c.query.clone(),
                status_code: c.status_code.clone(),
            })
        }
        _ => None,
    }
}

/// Actions in `Order` (unordered ones last), as the proxy runs them.
fn actions(actions: &[Action]) -> Vec<p::Action> {
    let mut sorted: Vec<&Action> = actions.iter().collect();
    sorted.sort_by_key(|a| a.order.unwrap_or(u32::MAX));
    sorted.into_iter().filter_map(action).collect()
}

fn values(c: &Option<crate::types::ValuesConfig>) -> Vec<String> {
    c.as_ref().map(|v| v.values.clone()).unwrap_or_default()
}

fn condition(c: &RuleCondition) -> Option<p::Condition> {
    Some(match c.field.as_str() {
        "path-pattern" => p::Condition::PathPattern {
            values: values(&c.path_pattern_config),
        },
        "host-header" => p::Condition::HostHeader {
            values: values(&c.host_header_config),
        },
        "http-request-method" => p::Condition::HttpRequestMethod {
            values: values(&c.http_request_method_config),
        },
        "source-ip" => p::Condition::SourceIp {
            values: values(&c.source_ip_config),
        },
        "http-header" => {
            let h = c.http_header_config.as_ref()?;
            p::Condition::HttpHeader {
                name: h.http_header_name.clone(),
                values: h.values.clone(),
            }
        }
        "query-string" => p::Condition::QueryString {
            values: c
                .query_string_config
                .as_ref()?
                .values
                .iter()
                .map(|kv| p::QueryPair {
                    key: kv.key.clone(),
                    value: kv.value.clone(),
                })
                .collect(),
        },
        _ => return None,
    })
}

impl ElbState {
    /// The proxy's snapshot: every listener bound to `<listen_host>:<port>` with its rules in
    /// priority order, and every target group some listener or rule forwards to (unused groups
    /// are left out, so their targets are not health checked, as in AWS).
    pub fn proxy_config(&self, version: u64, listen_host: &str) -> p::ProxyConfig {
        let listeners = self
            .listeners
            .iter()
            .map(|l| {
                let rules = self
                    .listener_rules(l)
                    .into_iter()
                    .filter_map(|r| {
                        Some(p::Rule {
                            arn: r.arn.clone(),
                            priority: r.priority?,
                            conditions: r.conditions.iter().filter_map(condition).collect(),
                            actions: actions(&r.actions),
                        })
                    })
                    .collect();
                let idle_timeout_seconds = self
                    .attribute(&l.load_balancer_arn, "idle_timeout.timeout_seconds")
                    .and_then(|v| v.parse().ok())
                    .unwrap_or(60);
                p::Listener {
                    arn: l.arn.clone(),
                    load_balancer_arn: l.load_balancer_arn.clone(),
                    bind: format!("{listen_host}:{}", l.port),
                    protocol: l.protocol.clone(),
                    rules,
                    default_actions: actions(&l.default_actions),
                    idle_timeout_seconds,
                    certificates: certificates(&l.certificates),
                }
            })
            .collect();
        let target_groups = self
            .target_groups
            .iter()
            .filter(|tg| self.target_group_in_use(&tg.arn))
            .map(|tg| {
                let attr = |key: &str| self.attribute(&tg.arn, key).unwrap_or("");
                let hc = &tg.health_check;
                p::TargetGroup {
                    arn: tg.arn.clone(),
                    name: tg.name.clone(),
                    health_check: p::HealthCheck {
                        enabled: hc.enabled,
                        path: hc.path.clone(),
                        port: hc.port.clone(),
                        interval_seconds: hc.interval_seconds,
                        timeout_seconds: hc.timeout_seconds,
                        healthy_threshold: hc.healthy_threshold,
                        unhealthy_threshold: hc.unhealthy_threshold,
                        matcher: hc.matcher.clone(),
                    },
                    deregistration_delay_seconds: self.deregistration_delay(&tg.arn),
                    stickiness_seconds: (attr("stickiness.enabled") == "true"
                        && attr("stickiness.type") == "lb_cookie")
                        .then(|| {
                            attr("stickiness.lb_cookie.duration_seconds")
                                .parse()
                                .unwrap_or(86400)
                        }),
                    algorithm: match attr("load_balancing.algorithm.type") {
                        "" => "round_robin".to_string(),
                        a => a.to_string(),
                    },
                    slow_start_seconds: attr("slow_start.duration_seconds").parse().unwrap_or(0.0),
                    targets: self
                        .targets
                        .get(&tg.arn)
                        .map(|list| {
                            list.iter()
                                .map(|t| p::Target {
                                    id: t.id.clone(),
                                    port: t.port,
                                    draining: t.draining_since.is_some(),
                                })
                                .collect()
                        })
                        .unwrap_or_default(),
                }
            })
            .collect();
        p::ProxyConfig {
            version,
            listeners,
            target_groups,
        }
    }
}
