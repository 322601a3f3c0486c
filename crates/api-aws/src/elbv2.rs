//! The ELBv2 (Elastic Load Balancing v2, API version 2015-12-01) AWS query protocol: a
//! form-urlencoded POST body in, an XML document out, over `berth_elb::ElbState`.
//! Errors are `<ErrorResponse>` documents with HTTP 400 (ELBv2 uses 400 for "not found" too).

pub mod query;
pub mod xml;

use berth_elb::*;
use berth_model::{Arns, FieldErrors};
use query::Params;
use xml::Xml;

/// The ELBv2 API version awscli and the SDKs send.
pub const API_VERSION: &str = "2015-12-01";

/// An HTTP response of the query protocol; the body is `text/xml`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueryResponse {
    pub status: u16,
    pub body: String,
}

/// Operations that change the state when they succeed.
const MUTATING: &[&str] = &[
    "CreateLoadBalancer",
    "DeleteLoadBalancer",
    "ModifyLoadBalancerAttributes",
    "CreateTargetGroup",
    "DeleteTargetGroup",
    "ModifyTargetGroup",
    "ModifyTargetGroupAttributes",
    "CreateListener",
    "DeleteListener",
    "ModifyListener",
    "CreateRule",
    "DeleteRule",
    "ModifyRule",
    "SetRulePriorities",
    "RegisterTargets",
    "DeregisterTargets",
    "AddTags",
    "RemoveTags",
];

/// Why a request was refused before or by the model.
enum Failure {
    Elb(ElbError),
    Protocol { code: &'static str, message: String },
}

impl From<ElbError> for Failure {
    fn from(e: ElbError) -> Self {
        Failure::Elb(e)
    }
}

impl From<FieldErrors> for Failure {
    fn from(e: FieldErrors) -> Self {
        Failure::Elb(ElbError::Validation(e))
    }
}

/// Handles one ELBv2 request: `form_body` is the POST body (`Action=...&Version=2015-12-01&...`),
/// `now` the time in seconds since the epoch. Returns the response and whether the state changed
/// (the caller then persists it).
pub fn handle_elbv2(
    state: &mut ElbState,
    arns: &Arns,
    form_body: &[u8],
    request_id: &str,
    now: f64,
) -> (QueryResponse, bool) {
    let params = match Params::parse(form_body) {
        Ok(p) => p,
        Err(message) => {
            return (
                failure(
                    Failure::Protocol {
                        code: "MalformedQueryString",
                        message,
                    },
                    request_id,
                ),
                false,
            )
        }
    };
    let action = params.str("Action").unwrap_or("").to_string();
    match dispatch(state, arns, &action, &params, request_id, now) {
        Ok(body) => (
            QueryResponse { status: 200, body },
            MUTATING.contains(&action.as_str()),
        ),
        Err(f) => (failure(f, request_id), false),
    }
}

fn failure(f: Failure, request_id: &str) -> QueryResponse {
    let (code, message) = match f {
        Failure::Elb(e) => (e.code(), e.to_string()),
        Failure::Protocol { code, message } => (code, message),
    };
    QueryResponse {
        status: 400,
        body: xml::error("Sender", code, &message, request_id),
    }
}

fn check(errors: FieldErrors) -> Result<(), Failure> {
    errors.into_result().map_err(Failure::from)
}

fn dispatch(
    state: &mut ElbState,
    arns: &Arns,
    action: &str,
    p: &Params,
    rid: &str,
    now: f64,
) -> Result<String, Failure> {
    let mut errors = FieldErrors::default();
    let e = &mut errors;
    let respond = |body: &dyn Fn(&mut Xml)| xml::response(action, rid, |x| body(x));
    let body = match action {
        "CreateLoadBalancer" => {
            let req = CreateLoadBalancerRequest {
                name: p.required("Name", "Name", e),
                subnets: p.strings("Subnets"),
                subnet_mappings: p.list("SubnetMappings").iter().filter_map(|m| m.string("SubnetId")).collect(),
                security_groups: p.strings("SecurityGroups"),
                scheme: p.string("Scheme"),
                tags: tags(p),
                load_balancer_type: p.string("Type"),
                ip_address_type: p.string("IpAddressType"),
            };
            check(errors)?;
            let lb = state.create_load_balancer(arns, &req, now)?;
            respond(&|x| x.list("LoadBalancers", std::slice::from_ref(&lb), |x, lb| xml::load_balancer(x, &arns.region, lb)))
        }
        "DescribeLoadBalancers" => {
            let req = DescribeLoadBalancersRequest { load_balancer_arns: p.strings("LoadBalancerArns"), names: p.strings("Names") };
            let lbs = state.describe_load_balancers(&req)?;
            respond(&|x| x.list("LoadBalancers", &lbs, |x, lb| xml::load_balancer(x, &arns.region, lb)))
        }
        "DeleteLoadBalancer" => {
            let arn = p.required("LoadBalancerArn", "LoadBalancerArn", e);
            check(errors)?;
            state.delete_load_balancer(&arn)?;
            respond(&|_| {})
        }
        "DescribeLoadBalancerAttributes" => {
            let arn = p.required("LoadBalancerArn", "LoadBalancerArn", e);
            check(errors)?;
            let attrs = state.describe_load_balancer_attributes(&arn)?;
            respond(&|x| xml::attributes(x, &attrs))
        }
        "ModifyLoadBalancerAttributes" => {
            let req = ModifyAttributesRequest { resource_arn: p.required("LoadBalancerArn", "LoadBalancerArn", e), attributes: attributes(p) };
            check(errors)?;
            let attrs = state.modify_load_balancer_attributes(&req)?;
            respond(&|x| xml::attributes(x, &attrs))
        }
        "CreateTargetGroup" => {
            let req = CreateTargetGroupRequest {
                name: p.required("Name", "Name", e),
                protocol: p.string("Protocol"),
                protocol_version: p.string("ProtocolVersion"),
                port: p.int("Port", "Port", e),
                vpc_id: p.string("VpcId"),
                target_type: p.string("TargetType"),
                ip_address_type: p.string("IpAddressType"),
                health_check: health_check(p, e),
                tags: tags(p),
            };
            check(errors)?;
            let tg = state.create_target_group(arns, &req)?;
            let lbs = state.target_group_load_balancers(&tg.arn);
            respond(&|x| x.list("TargetGroups", std::slice::from_ref(&tg), |x, tg| xml::target_group(x, tg, &lbs)))
        }
        "DescribeTargetGroups" => {
            let req = DescribeTargetGroupsRequest {
                load_balancer_arn: p.string("LoadBalancerArn"),
                target_group_arns: p.strings("TargetGroupArns"),
                names: p.strings("Names"),
            };
            let tgs = state.describe_target_groups(&req)?;
            let st = &*state;
            respond(&|x| x.list("TargetGroups", &tgs, |x, tg| xml::target_group(x, tg, &st.target_group_load_balancers(&tg.arn))))
        }
        "ModifyTargetGroup" => {
            let req = ModifyTargetGroupRequest { target_group_arn: p.required("TargetGroupArn", "TargetGroupArn", e), health_check: health_check(p, e) };
            check(errors)?;
            let tg = state.modify_target_group(&req)?;
            let lbs = state.target_group_load_balancers(&tg.arn);
            respond(&|x| x.list("TargetGroups", std::slice::from_ref(&tg), |x, tg| xml::target_group(x, tg, &lbs)))
        }
        "DeleteTargetGroup" => {
            let arn = p.required("TargetGroupArn", "TargetGroupArn", e);
            check(errors)?;
            state.delete_target_group(&arn)?;
            respond(&|_| {})
        }
        "DescribeTargetGroupAttributes" => {
            let arn = p.required("TargetGroupArn", "TargetGroupArn", e);
            check(errors)?;
            let attrs = state.describe_target_group_attributes(&arn)?;
            respond(&|x| xml::attributes(x, &attrs))
        }
        "ModifyTargetGroupAttributes" => {
            let req = ModifyAttributesRequest { resource_arn: p.required("TargetGroupArn", "TargetGroupArn", e), attributes: attributes(p) };
            check(errors)?;
            let attrs = state.modify_target_group_attributes(&req)?;
            respond(&|x| xml::attributes(x, &attrs))
        }
        "CreateListener" => {
            let req = CreateListenerRequest {
                load_balancer_arn: p.required("LoadBalancerArn", "LoadBalancerArn", e),
                protocol: p.string("Protocol"),
                port: p.int("Port", "Port", e),
                ssl_policy: p.string("SslPolicy"),
                certificates: certificates(p, e),
                default_actions: actions(p, "DefaultActions", e),
                tags: tags(p),
            };
            check(errors)?;
            let l = state.create_listener(arns, &req)?;
            respond(&|x| x.list("Listeners", std::slice::from_ref(&l), xml::listener))
        }
        "DescribeListeners" => {
            let req = DescribeListenersRequest { load_balancer_arn: p.string("LoadBalancerArn"), listener_arns: p.strings("ListenerArns") };
            let ls = state.describe_listeners(&req)?;
            respond(&|x| x.list("Listeners", &ls, xml::listener))
        }
        "ModifyListener" => {
            let req = ModifyListenerRequest {
                listener_arn: p.required("ListenerArn", "ListenerArn", e),
                port: p.int("Port", "Port", e),
                protocol: p.string("Protocol"),
                ssl_policy: p.string("SslPolicy"),
                certificates: p.has_list("Certificates").then(|| certificates(p, e)),
                default_actions: p.has_list("DefaultActions").then(|| actions(p, "DefaultActions", e)),
            };
            check(errors)?;
            let l = state.modify_listener(&req)?;
            respond(&|x| x.list("Listeners", std::slice::from_ref(&l), xml::listener))
        }
        "DeleteListener" => {
            let arn = p.required("ListenerArn", "ListenerArn", e);
            check(errors)?;
            state.delete_listener(&arn)?;
            respond(&|_| {})
        }
        "CreateRule" => {
            let priority = p.int("Priority", "Priority", e);
            if priority.is_none() && !p.has("Priority") {
                e.push("Priority", "a priority from 1 to 50000 was expected, found none");
            }
            let req = CreateRuleRequest {
                listener_arn: p.required("ListenerArn", "ListenerArn", e),
                conditions: conditions(p, e),
                priority: priority.unwrap_or(0),
                actions: actions(p, "Actions", e),
                tags: tags(p),
            };
            check(errors)?;
            let r = state.create_rule(arns, &req)?;
            respond(&|x| x.list("Rules", std::slice::from_ref(&r), xml::rule))
        }
        "DescribeRules" => {
            let req = DescribeRulesRequest { listener_arn: p.string("ListenerArn"), rule_arns: p.strings("RuleArns") };
            let rules = state.describe_rules(&req)?;
            respond(&|x| x.list("Rules", &rules, xml::rule))
        }
        "ModifyRule" => {
            let req = ModifyRuleRequest {
                rule_arn: p.required("RuleArn", "RuleArn", e),
                conditions: p.has_list("Conditions").then(|| conditions(p, e)),
                actions: p.has_list("Actions").then(|| actions(p, "Actions", e)),
            };
            check(errors)?;
            let r = state.modify_rule(&req)?;
            respond(&|x| x.list("Rules", std::slice::from_ref(&r), xml::rule))
        }
        "DeleteRule" => {
            let arn = p.required("RuleArn", "RuleArn", e);
            check(errors)?;
            state.delete_rule(&arn)?;
            respond(&|_| {})
        }
        "SetRulePriorities" => {
            let pairs: Vec<RulePriorityPair> = p
                .list("RulePriorities")
                .iter()
                .enumerate()
                .map(|(i, m)| RulePriorityPair {
                    rule_arn: m.required("RuleArn", &format!("RulePriorities[{i}].RuleArn"), e),
                    priority: m.int("Priority", &format!("RulePriorities[{i}].Priority"), e).unwrap_or(0),
                })
                .collect();
            check(errors)?;
            let rules = state.set_rule_priorities(&pairs)?;
            respond(&|x| x.list("Rules", &rules, xml::rule))
        }
        "RegisterTargets" | "DeregisterTargets" | "DescribeTargetHealth" => {
            let arn = p.required("TargetGroupArn", "TargetGroupArn", e);
            let targets = targets(p, e);
            check(errors)?;
            match action {
                "RegisterTargets" => state.register_targets(&arn, &targets)?,
                "DeregisterTargets" => state.deregister_targets(&arn, &targets, now)?,
                _ => {
                    let health = state.describe_target_health(&arn, &targets)?;
                    return Ok(respond(&|x| x.list("TargetHealthDescriptions", &health, xml::target_health)));
                }
            }
            respond(&|_| {})
        }
        "AddTags" => {
            state.add_tags(&p.strings("ResourceArns"), &tags(p))?;
            respond(&|_| {})
        }
        "RemoveTags" => {
            state.remove_tags(&p.strings("ResourceArns"), &p.strings("TagKeys"))?;
            respond(&|_| {})
        }
        "DescribeTags" => {
            let descriptions = state.describe_tags(&p.strings("ResourceArns"))?;
            respond(&|x| x.list("TagDescriptions", &descriptions, xml::tag_description))
        }
        "" => return Err(Failure::Protocol { code: "MissingAction", message: "The request must contain the parameter Action".into() }),
        other => {
            return Err(Failure::Protocol {
                code: "InvalidAction",
                message: format!("Could not find operation {other} for version {API_VERSION} (berth's ELBv2 supports the load balancer, target group, listener, rule, target and tag operations)"),
            })
        }
    };
    Ok(body)
}

fn tags(p: &Params) -> Vec<Tag> {
    p.list("Tags")
        .iter()
        .map(|t| Tag {
            key: t.string("Key").unwrap_or_default(),
            value: t.string("Value"),
        })
        .collect()
}

fn attributes(p: &Params) -> Vec<Attribute> {
    p.list("Attributes")
        .iter()
        .map(|a| Attribute {
            key: a.string("Key").unwrap_or_default(),
            value: a.string("Value").unwrap_or_default(),
        })
        .collect()
}

fn certificates(p: &Params, e: &mut FieldErrors) -> Vec<Certificate> {
    p.list("Certificates")
        .iter()
        .enumerate()
        .map(|(i, c)| Certificate {
            certificate_arn: c.string("CertificateArn").unwrap_or_default(),
            is_default: c.boolean("IsDefault", &format!("Certificates[{i}].IsDefault"), e),
        })
        .collect()
}

fn targets(p: &Params, e: &mut FieldErrors) -> Vec<TargetDescription> {
    p.list("Targets")
        .iter()
        .enumerate()
        .map(|(i, t)| TargetDescription {
            id: t.required("Id", &format!("Targets[{i}].Id"), e),
            port: t.int("Port", &format!("Targets[{i}].Port"), e),
            availability_zone: t.string("AvailabilityZone"),
        })
        .collect()
}

fn health_check(p: &Params, e: &mut FieldErrors) -> HealthCheckInput {
    HealthCheckInput {
        enabled: p.boolean("HealthCheckEnabled", "HealthCheckEnabled", e),
        protocol: p.string("HealthCheckProtocol"),
        port: p.string("HealthCheckPort"),
        path: p.string("HealthCheckPath"),
        interval_seconds: p.float(
            "HealthCheckIntervalSeconds",
            "HealthCheckIntervalSeconds",
            e,
        ),
        timeout_seconds: p.float("HealthCheckTimeoutSeconds", "HealthCheckTimeoutSeconds", e),
        healthy_threshold: p.int("HealthyThresholdCount", "HealthyThresholdCount", e),
        unhealthy_threshold: p.int("UnhealthyThresholdCount", "UnhealthyThresholdCount", e),
        matcher: p.string("Matcher.HttpCode"),
    }
}

fn narrow(n: Option<u64>) -> Option<u32> {
    n.and_then(|n| u32::try_from(n).ok())
}

/// Reads an `Actions`-shaped list.
fn actions(p: &Params, list: &str, e: &mut FieldErrors) -> Vec<Action> {
    p.list(list)
        .iter()
        .enumerate()
        .map(|(i, a)| {
            let path = format!("{list}[{i}]");
            let forward_config = a.get("ForwardConfig").map(|fc| ForwardConfig {
                target_groups: fc
                    .list("TargetGroups")
                    .iter()
                    .enumerate()
                    .map(|(j, t)| TargetGroupTuple {
                        target_group_arn: t.string("TargetGroupArn").unwrap_or_default(),
                        weight: narrow(t.unsigned(
                            "Weight",
                            &format!("{path}.ForwardConfig.TargetGroups[{j}].Weight"),
                            e,
                        )),
                    })
                    .collect(),
                stickiness: fc
                    .get("TargetGroupStickinessConfig")
                    .map(|s| StickinessConfig {
                        enabled: s
                            .boolean(
                                "Enabled",
                                &format!(
                                    "{path}.ForwardConfig.TargetGroupStickinessConfig.Enabled"
                                ),
                                e,
                            )
                            .unwrap_or(false),
                        duration_seconds: s.unsigned(
                            "DurationSeconds",
                            &format!(
                                "{path}.ForwardConfig.TargetGroupStickinessConfig.DurationSeconds"
                            ),
                            e,
                        ),
                    }),
            });
            Action {
                action_type: a.required("Type", &format!("{path}.Type"), e),
                order: narrow(a.unsigned("Order", &format!("{path}.Order"), e)),
                target_group_arn: a.string("TargetGroupArn"),
                forward_config,
                redirect_config: a.get("RedirectConfig").map(|r| RedirectConfig {
                    protocol: r.string("Protocol"),
                    port: r.string("Port"),
                    host: r.string("Host"),
                    path: r.string("Path"),
                    query: r.string("Query"),
                    status_code: r.required(
                        "StatusCode",
                        &format!("{path}.RedirectConfig.StatusCode"),
                        e,
                    ),
                }),
                fixed_response_config: a.get("FixedResponseConfig").map(|f| FixedResponseConfig {
                    message_body: f.string("MessageBody"),
                    status_code: f.required(
                        "StatusCode",
                        &format!("{path}.FixedResponseConfig.StatusCode"),
                        e,
                    ),
                    content_type: f.string("ContentType"),
                }),
            }
        })
        .collect()
}

/// Reads the `Conditions` list in either form; regex matching is refused (not supported).
fn conditions(p: &Params, e: &mut FieldErrors) -> Vec<RuleCondition> {
    p.list("Conditions")
        .iter()
        .enumerate()
        .map(|(i, c)| {
            let path = format!("Conditions[{i}]");
            for config in [
                "",
                "HostHeaderConfig.",
                "PathPatternConfig.",
                "HttpHeaderConfig.",
            ] {
                if c.has(&format!("{config}RegexValues")) {
                    e.push(
                        format!("{path}.{config}RegexValues"),
                        "Values was expected; berth does not support regex matching",
                    );
                }
            }
            let values = |name: &str| {
                c.get(name).map(|v| ValuesConfig {
                    values: v.strings("Values"),
                })
            };
            RuleCondition {
                field: c.required("Field", &format!("{path}.Field"), e),
                values: c.strings("Values"),
                host_header_config: values("HostHeaderConfig"),
                path_pattern_config: values("PathPatternConfig"),
                http_header_config: c.get("HttpHeaderConfig").map(|h| HttpHeaderConfig {
                    http_header_name: h.string("HttpHeaderName").unwrap_or_default(),
                    values: h.strings("Values"),
                }),
                query_string_config: c.get("QueryStringConfig").map(|q| QueryStringConfig {
                    values: q
                        .list("Values")
                        .iter()
                        .map(|kv| QueryStringKeyValue {
                            key: kv.string("Key"),
                            value: kv.string("Value").unwrap_or_default(),
                        })
                        .collect(),
                }),
                http_request_method_config: values("HttpRequestMethodConfig"),
                source_ip_config: values("SourceIpConfig"),
            }
        })
        .collect()
}

#[cfg(test)]
mod tests;
