//! The ELBv2 side of `berth apply`: reads the current load balancers, target groups, listeners,
//! rules, attributes and tags through the query protocol into an `ElbState`, and carries out a
//! plan's `ElbOp`s as query requests.

use crate::client::Client;
use anyhow::{anyhow, Context};
use berth_elb::{
    Action, ElbState, FixedResponseConfig, ForwardConfig, HealthCheckInput, HealthCheckSettings,
    HttpHeaderConfig, Listener, LoadBalancer, QueryStringConfig, QueryStringKeyValue,
    RedirectConfig, Rule, RuleCondition, StickinessConfig, TargetGroup, TargetGroupTuple,
    ValuesConfig,
};
use berth_stack::{ActionSpec, ConditionsSpec, ElbOp, ElbRefs, TargetGroupSpec, STACK_TAG};
use quick_xml::events::Event;
use std::collections::BTreeMap;

/// One element of an XML document: its local name, its text and its child elements.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct XmlNode {
    pub name: String,
    pub text: String,
    pub children: Vec<XmlNode>,
}

impl XmlNode {
    /// Parses a whole document and returns its root element.
    pub fn parse(text: &str) -> anyhow::Result<XmlNode> {
        let mut reader = quick_xml::Reader::from_str(text);
        let mut stack: Vec<XmlNode> = vec![XmlNode::default()];
        loop {
            match reader.read_event().context("parsing XML")? {
                Event::Start(e) => stack.push(XmlNode {
                    name: String::from_utf8_lossy(e.local_name().as_ref()).into_owned(),
                    ..XmlNode::default()
                }),
                Event::Empty(e) => {
                    let node = XmlNode {
                        name: String::from_utf8_lossy(e.local_name().as_ref()).into_owned(),
                        ..XmlNode::default()
                    };
                    if let Some(parent) = stack.last_mut() {
                        parent.children.push(node);
                    }
                }
                Event::Text(t) => {
                    if let Some(node) = stack.last_mut() {
                        node.text
                            .push_str(&t.unescape().context("unescaping XML text")?);
                    }
                }
                Event::CData(t) => {
                    if let Some(node) = stack.last_mut() {
                        node.text.push_str(&String::from_utf8_lossy(&t));
                    }
                }
                Event::End(_) => {
                    let node = stack.pop().ok_or_else(|| anyhow!("unbalanced XML"))?;
                    stack
                        .last_mut()
                        .ok_or_else(|| anyhow!("unbalanced XML"))?
                        .children
                        .push(node);
                }
                Event::Eof => break,
                _ => {}
            }
        }
        stack
            .pop()
            .and_then(|doc| doc.children.into_iter().next())
            .ok_or_else(|| anyhow!("an XML document was expected, found none"))
    }

    /// The first child element of this name.
    pub fn child(&self, name: &str) -> Option<&XmlNode> {
        self.children.iter().find(|c| c.name == name)
    }

    /// The text of the first child element of this name.
    pub fn text_of(&self, name: &str) -> Option<String> {
        self.child(name).map(|c| c.text.clone())
    }

    /// The `<member>`s of the list element of this name.
    pub fn members(&self, name: &str) -> Vec<&XmlNode> {
        self.child(name)
            .map(|l| l.children.iter().filter(|c| c.name == "member").collect())
            .unwrap_or_default()
    }

    fn number<T: std::str::FromStr>(&self, name: &str) -> Option<T> {
        self.text_of(name).and_then(|t| t.trim().parse().ok())
    }

    fn strings(&self, name: &str) -> Vec<String> {
        self.members(name).iter().map(|m| m.text.clone()).collect()
    }
}

/// The `<{action}Result>` element of a response.
fn result<'a>(doc: &'a XmlNode, action: &str) -> anyhow::Result<&'a XmlNode> {
    doc.child(&format!("{action}Result"))
        .ok_or_else(|| anyhow!("{action}: the response has no {action}Result"))
}

fn action_from(x: &XmlNode) -> Action {
    Action {
        action_type: x.text_of("Type").unwrap_or_default(),
        order: x.number("Order"),
        target_group_arn: x.text_of("TargetGroupArn"),
        forward_config: x.child("ForwardConfig").map(|f| ForwardConfig {
            target_groups: f
                .members("TargetGroups")
                .iter()
                .map(|t| TargetGroupTuple {
                    target_group_arn: t.text_of("TargetGroupArn").unwrap_or_default(),
                    weight: t.number("Weight"),
                })
                .collect(),
            stickiness: f
                .child("TargetGroupStickinessConfig")
                .map(|s| StickinessConfig {
                    enabled: s.text_of("Enabled").as_deref() == Some("true"),
                    duration_seconds: s.number("DurationSeconds"),
                }),
        }),
        redirect_config: x.child("RedirectConfig").map(|r| RedirectConfig {
            protocol: r.text_of("Protocol"),
            port: r.text_of("Port"),
            host: r.text_of("Host"),
            path: r.text_of("Path"),
            query: r.text_of("Query"),
            status_code: r.text_of("StatusCode").unwrap_or_default(),
        }),
        fixed_response_config: x.child("FixedResponseConfig").map(|f| FixedResponseConfig {
            message_body: f.text_of("MessageBody"),
            status_code: f.text_of("StatusCode").unwrap_or_default(),
            content_type: f.text_of("ContentType"),
        }),
    }
}

fn condition_from(x: &XmlNode) -> RuleCondition {
    let values = |name: &str| {
        x.child(name).map(|c| ValuesConfig {
            values: c.strings("Values"),
        })
    };
    RuleCondition {
        field: x.text_of("Field").unwrap_or_default(),
        values: x.strings("Values"),
        host_header_config: values("HostHeaderConfig"),
        path_pattern_config: values("PathPatternConfig"),
        http_header_config: x.child("HttpHeaderConfig").map(|h| HttpHeaderConfig {
            http_header_name: h.text_of("HttpHeaderName").unwrap_or_default(),
            values: h.strings("Values"),
        }),
        query_string_config: x.child("QueryStringConfig").map(|q| QueryStringConfig {
            values: q
                .members("Values")
                .iter()
                .map(|kv| QueryStringKeyValue {
                    key: kv.text_of("Key"),
                    value: kv.text_of("Value").unwrap_or_default(),
                })
                .collect(),
        }),
        http_request_method_config: values("HttpRequestMethodConfig"),
        source_ip_config: values("SourceIpConfig"),
    }
}

fn target_group_from(x: &XmlNode) -> TargetGroup {
    TargetGroup {
        arn: x.text_of("TargetGroupArn").unwrap_or_default(),
        name: x.text_of("TargetGroupName").unwrap_or_default(),
        protocol: x.text_of("Protocol").unwrap_or_default(),
        protocol_version: x.text_of("ProtocolVersion").unwrap_or_default(),
        port: x.number("Port").unwrap_or(0),
        vpc_id: x.text_of("VpcId"),
        target_type: x.text_of("TargetType").unwrap_or_default(),
        ip_address_type: x.text_of("IpAddressType").unwrap_or_default(),
        health_check: HealthCheckSettings {
            enabled: x.text_of("HealthCheckEnabled").as_deref() != Some("false"),
            protocol: x.text_of("HealthCheckProtocol").unwrap_or_default(),
            port: x.text_of("HealthCheckPort").unwrap_or_default(),
            path: x.text_of("HealthCheckPath").unwrap_or_default(),
            interval_seconds: x.number("HealthCheckIntervalSeconds").unwrap_or(0.0),
            timeout_seconds: x.number("HealthCheckTimeoutSeconds").unwrap_or(0.0),
            healthy_threshold: x.number("HealthyThresholdCount").unwrap_or(0),
            unhealthy_threshold: x.number("UnhealthyThresholdCount").unwrap_or(0),
            matcher: x
                .child("Matcher")
                .and_then(|m| m.text_of("HttpCode"))
                .unwrap_or_default(),
        },
    }
}

/// Every ELBv2 resource the plan looks at: load balancers with their listeners and rules, target
/// groups with their attributes, and the tags of all of them.
pub fn current_elb(c: &Client) -> anyhow::Result<ElbState> {
    let mut state = ElbState::default();
    let doc = c.query("DescribeLoadBalancers", &[])?;
    for m in result(&doc, "DescribeLoadBalancers")?.members("LoadBalancers") {
        state.load_balancers.push(LoadBalancer {
            arn: m.text_of("LoadBalancerArn").unwrap_or_default(),
            name: m.text_of("LoadBalancerName").unwrap_or_default(),
            dns_name: m.text_of("DNSName").unwrap_or_default(),
            created_time: 0.0,
            scheme: m.text_of("Scheme").unwrap_or_default(),
            load_balancer_type: m.text_of("Type").unwrap_or_default(),
            ip_address_type: m.text_of("IpAddressType").unwrap_or_default(),
            vpc_id: m.text_of("VpcId").unwrap_or_default(),
            subnets: Vec::new(),
            security_groups: m.strings("SecurityGroups"),
            state: m
                .child("State")
                .and_then(|s| s.text_of("Code"))
                .unwrap_or_default(),
        });
    }
    let doc = c.query("DescribeTargetGroups", &[])?;
    for m in result(&doc, "DescribeTargetGroups")?.members("TargetGroups") {
        state.target_groups.push(target_group_from(m));
    }
    for tg in &state.target_groups {
        let doc = c.query(
            "DescribeTargetGroupAttributes",
            &[("TargetGroupArn".into(), tg.arn.clone())],
        )?;
        let attributes: BTreeMap<String, String> = result(&doc, "DescribeTargetGroupAttributes")?
            .members("Attributes")
            .iter()
            .map(|a| {
                (
                    a.text_of("Key").unwrap_or_default(),
                    a.text_of("Value").unwrap_or_default(),
                )
            })
            .collect();
        state.attributes.insert(tg.arn.clone(), attributes);
    }
    for lb in &state.load_balancers {
        let doc = c.query(
            "DescribeListeners",
            &[("LoadBalancerArn".into(), lb.arn.clone())],
        )?;
        for m in result(&doc, "DescribeListeners")?.members("Listeners") {
            state.listeners.push(Listener {
                arn: m.text_of("ListenerArn").unwrap_or_default(),
                load_balancer_arn: lb.arn.clone(),
                port: m.number("Port").unwrap_or(0),
                protocol: m.text_of("Protocol").unwrap_or_default(),
                ssl_policy: m.text_of("SslPolicy"),
                certificates: Vec::new(),
                default_actions: m
                    .members("DefaultActions")
                    .into_iter()
                    .map(action_from)
                    .collect(),
                default_rule_arn: String::new(),
            });
        }
    }
    for listener in &state.listeners {
        let doc = c.query(
            "DescribeRules",
            &[("ListenerArn".into(), listener.arn.clone())],
        )?;
        for m in result(&doc, "DescribeRules")?.members("Rules") {
            let Some(priority) = m.number::<u32>("Priority") else {
                continue; // the default rule: its actions are the listener's
            };
            state.rules.push(Rule {
                arn: m.text_of("RuleArn").unwrap_or_default(),
                listener_arn: listener.arn.clone(),
                priority: Some(priority),
                conditions: m
                    .members("Conditions")
                    .into_iter()
                    .map(condition_from)
                    .collect(),
                actions: m.members("Actions").into_iter().map(action_from).collect(),
            });
        }
    }
    let arns: Vec<String> = state
        .load_balancers
        .iter()
        .map(|lb| lb.arn.clone())
        .chain(state.target_groups.iter().map(|tg| tg.arn.clone()))
        .collect();
    // AWS takes at most 20 ARNs per DescribeTags.
    for chunk in arns.chunks(20) {
        let params: Vec<(String, String)> = chunk
            .iter()
            .enumerate()
            .map(|(i, arn)| (format!("ResourceArns.member.{}", i + 1), arn.clone()))
            .collect();
        let doc = c.query("DescribeTags", &params)?;
        for d in result(&doc, "DescribeTags")?.members("TagDescriptions") {
            let tags: BTreeMap<String, String> = d
                .members("Tags")
                .iter()
                .map(|t| {
                    (
                        t.text_of("Key").unwrap_or_default(),
                        t.text_of("Value").unwrap_or_default(),
                    )
                })
                .collect();
            state
                .tags
                .insert(d.text_of("ResourceArn").unwrap_or_default(), tags);
        }
    }
    Ok(state)
}

/// Query parameters under construction.
#[derive(Default)]
struct Params(Vec<(String, String)>);

impl Params {
    fn set(&mut self, key: impl Into<String>, value: impl ToString) {
        self.0.push((key.into(), value.to_string()));
    }
    fn opt(&mut self, key: &str, value: &Option<String>) {
        if let Some(v) = value {
            self.set(key, v);
        }
    }
    fn list(&mut self, key: &str, values: &[String]) {
        for (i, v) in values.iter().enumerate() {
            self.set(format!("{key}.member.{}", i + 1), v);
        }
    }
    fn stack_tag(&mut self, stack: &str) {
        self.set("Tags.member.1.Key", STACK_TAG);
        self.set("Tags.member.1.Value", stack);
    }
    fn health_check(&mut self, hc: &HealthCheckInput) {
        if let Some(v) = hc.enabled {
            self.set("HealthCheckEnabled", v);
        }
        self.opt("HealthCheckProtocol", &hc.protocol);
        self.opt("HealthCheckPort", &hc.port);
        self.opt("HealthCheckPath", &hc.path);
        if let Some(v) = hc.interval_seconds {
            self.set("HealthCheckIntervalSeconds", v);
        }
        if let Some(v) = hc.timeout_seconds {
            self.set("HealthCheckTimeoutSeconds", v);
        }
        if let Some(v) = hc.healthy_threshold {
            self.set("HealthyThresholdCount", v);
        }
        if let Some(v) = hc.unhealthy_threshold {
            self.set("UnhealthyThresholdCount", v);
        }
        self.opt("Matcher.HttpCode", &hc.matcher);
    }
    /// One action as `{prefix}.member.1.*`.
    fn action(&mut self, prefix: &str, a: &Action) {
        let p = format!("{prefix}.member.1");
        self.set(format!("{p}.Type"), &a.action_type);
        if let Some(fc) = &a.forward_config {
            for (i, t) in fc.target_groups.iter().enumerate() {
                let tp = format!("{p}.ForwardConfig.TargetGroups.member.{}", i + 1);
                self.set(format!("{tp}.TargetGroupArn"), &t.target_group_arn);
                if let Some(w) = t.weight {
                    self.set(format!("{tp}.Weight"), w);
                }
            }
            if let Some(s) = &fc.stickiness {
                let sp = format!("{p}.ForwardConfig.TargetGroupStickinessConfig");
                self.set(format!("{sp}.Enabled"), s.enabled);
                if let Some(d) = s.duration_seconds {
                    self.set(format!("{sp}.DurationSeconds"), d);
                }
            }
        }
        if let Some(r) = &a.redirect_config {
            let rp = format!("{p}.RedirectConfig");
            self.opt(&format!("{rp}.Protocol"), &r.protocol);
            self.opt(&format!("{rp}.Port"), &r.port);
            self.opt(&format!("{rp}.Host"), &r.host);
            self.opt(&format!("{rp}.Path"), &r.path);
            self.opt(&format!("{rp}.Query"), &r.query);
            self.set(format!("{rp}.StatusCode"), &r.status_code);
        }
        if let Some(f) = &a.fixed_response_config {
            let fp = format!("{p}.FixedResponseConfig");
            self.opt(&format!("{fp}.MessageBody"), &f.message_body);
            self.set(format!("{fp}.StatusCode"), &f.status_code);
            self.opt(&format!("{fp}.ContentType"), &f.content_type);
        }
    }
    fn conditions(&mut self, conditions: &[RuleCondition]) {
        for (i, c) in conditions.iter().enumerate() {
            let p = format!("Conditions.member.{}", i + 1);
            self.set(format!("{p}.Field"), &c.field);
            let configs = [
                ("HostHeaderConfig", &c.host_header_config),
                ("PathPatternConfig", &c.path_pattern_config),
                ("HttpRequestMethodConfig", &c.http_request_method_config),
                ("SourceIpConfig", &c.source_ip_config),
            ];
            for (name, config) in configs {
                if let Some(v) = config {
                    self.list(&format!("{p}.{name}.Values"), &v.values);
                }
            }
            if let Some(h) = &c.http_header_config {
                self.set(
                    format!("{p}.HttpHeaderConfig.HttpHeaderName"),
                    &h.http_header_name,
                );
                self.list(&format!("{p}.HttpHeaderConfig.Values"), &h.values);
            }
            if let Some(q) = &c.query_string_config {
                for (j, kv) in q.values.iter().enumerate() {
                    let kp = format!("{p}.QueryStringConfig.Values.member.{}", j + 1);
                    self.opt(&format!("{kp}.Key"), &kv.key);
                    self.set(format!("{kp}.Value"), &kv.value);
                }
            }
        }
    }
}

fn attributes_params(arn: &str, attributes: &BTreeMap<String, String>) -> Params {
    let mut p = Params::default();
    p.set("TargetGroupArn", arn);
    for (i, (k, v)) in attributes.iter().enumerate() {
        p.set(format!("Attributes.member.{}.Key", i + 1), k);
        p.set(format!("Attributes.member.{}.Value", i + 1), v);
    }
    p
}

fn tag_params(arn: &str, stack: &str) -> Params {
    let mut p = Params::default();
    p.set("ResourceArns.member.1", arn);
    p.stack_tag(stack);
    p
}

/// The temporary action of listeners and rules whose target group is being replaced.
fn replacing_action() -> Action {
    Action {
        action_type: "fixed-response".into(),
        fixed_response_config: Some(FixedResponseConfig {
            message_body: Some("target group being replaced".into()),
            status_code: "503".into(),
            content_type: Some("text/plain".into()),
        }),
        ..Action::default()
    }
}

fn create_target_group(
    c: &Client,
    stack: &str,
    name: &str,
    spec: &TargetGroupSpec,
    refs: &mut ElbRefs,
) -> anyhow::Result<()> {
    let mut p = Params::default();
    p.set("Name", name);
    p.set("Protocol", "HTTP");
    p.set("Port", spec.port);
    p.set("TargetType", "ip");
    p.health_check(&spec.health_check.input());
    p.stack_tag(stack);
    let doc = c.query("CreateTargetGroup", &p.0)?;
    let arn = result(&doc, "CreateTargetGroup")?
        .members("TargetGroups")
        .first()
        .and_then(|tg| tg.text_of("TargetGroupArn"))
        .ok_or_else(|| anyhow!("CreateTargetGroup returned no target group"))?;
    if !spec.attributes.is_empty() {
        c.query(
            "ModifyTargetGroupAttributes",
            &attributes_params(&arn, &spec.attributes).0,
        )?;
    }
    refs.target_groups.insert(name.to_string(), arn);
    Ok(())
}

fn elb_action(a: &ActionSpec, refs: &ElbRefs) -> Action {
    a.to_elb(&|name| refs.target_group_arn(name))
}

/// Carries out one ELBv2 step of a plan, recording the ARNs of what it creates in `refs`.
pub fn apply_op(c: &Client, stack: &str, op: &ElbOp, refs: &mut ElbRefs) -> anyhow::Result<()> {
    let arn_param = |key: &str, arn: &str| vec![(key.to_string(), arn.to_string())];
    match op {
        ElbOp::CreateTargetGroup { name, spec } => create_target_group(c, stack, name, spec, refs)?,
        ElbOp::ModifyTargetGroup {
            arn,
            health_check,
            attributes,
            tag,
        } => {
            if let Some(hc) = health_check {
                let mut p = Params::default();
                p.set("TargetGroupArn", arn);
                p.health_check(&hc.input());
                c.query("ModifyTargetGroup", &p.0)?;
            }
            if !attributes.is_empty() {
                c.query(
                    "ModifyTargetGroupAttributes",
                    &attributes_params(arn, attributes).0,
                )?;
            }
            if *tag {
                c.query("AddTags", &tag_params(arn, stack).0)?;
            }
        }
        ElbOp::ReplaceTargetGroup {
            arn,
            name,
            spec,
            detach_listeners,
            detach_rules,
        } => {
            for listener in detach_listeners {
                let mut p = Params::default();
                p.set("ListenerArn", listener);
                p.action("DefaultActions", &replacing_action());
                c.query("ModifyListener", &p.0)?;
            }
            for rule in detach_rules {
                let mut p = Params::default();
                p.set("RuleArn", rule);
                p.action("Actions", &replacing_action());
                c.query("ModifyRule", &p.0)?;
            }
            c.query("DeleteTargetGroup", &arn_param("TargetGroupArn", arn))?;
            create_target_group(c, stack, name, spec, refs)?;
        }
        ElbOp::DeleteTargetGroup { arn } => {
            c.query("DeleteTargetGroup", &arn_param("TargetGroupArn", arn))?;
        }
        ElbOp::CreateLoadBalancer { name } => {
            let mut p = Params::default();
            p.set("Name", name);
            p.set("Type", "application");
            p.stack_tag(stack);
            let doc = c.query("CreateLoadBalancer", &p.0)?;
            let arn = result(&doc, "CreateLoadBalancer")?
                .members("LoadBalancers")
                .first()
                .and_then(|lb| lb.text_of("LoadBalancerArn"))
                .ok_or_else(|| anyhow!("CreateLoadBalancer returned no load balancer"))?;
            refs.load_balancers.insert(name.clone(), arn);
        }
        ElbOp::TagLoadBalancer { arn } => {
            c.query("AddTags", &tag_params(arn, stack).0)?;
        }
        ElbOp::DeleteLoadBalancer { arn } => {
            c.query("DeleteLoadBalancer", &arn_param("LoadBalancerArn", arn))?;
        }
        ElbOp::CreateListener {
            load_balancer,
            port,
            default_action,
        } => {
            let mut p = Params::default();
            p.set("LoadBalancerArn", refs.load_balancer_arn(load_balancer));
            p.set("Protocol", "HTTP");
            p.set("Port", port);
            p.action("DefaultActions", &elb_action(default_action, refs));
            p.stack_tag(stack);
            let doc = c.query("CreateListener", &p.0)?;
            let arn = result(&doc, "CreateListener")?
                .members("Listeners")
                .first()
                .and_then(|l| l.text_of("ListenerArn"))
                .ok_or_else(|| anyhow!("CreateListener returned no listener"))?;
            refs.listeners.insert((load_balancer.clone(), *port), arn);
        }
        ElbOp::ModifyListener {
            arn,
            default_action,
        } => {
            let mut p = Params::default();
            p.set("ListenerArn", arn);
            p.action("DefaultActions", &elb_action(default_action, refs));
            c.query("ModifyListener", &p.0)?;
        }
        ElbOp::DeleteListener { arn } => {
            c.query("DeleteListener", &arn_param("ListenerArn", arn))?;
        }
        ElbOp::CreateRule {
            load_balancer,
            port,
            priority,
            conditions,
            action,
        } => {
            let mut p = Params::default();
            p.set("ListenerArn", refs.listener_arn(load_balancer, *port));
            p.set("Priority", priority);
            p.conditions(&conditions.to_elb());
            p.action("Actions", &elb_action(action, refs));
            p.stack_tag(stack);
            let doc = c.query("CreateRule", &p.0)?;
            if let Some(arn) = result(&doc, "CreateRule")?
                .members("Rules")
                .first()
                .and_then(|r| r.text_of("RuleArn"))
            {
                refs.rules
                    .insert((load_balancer.clone(), *port, *priority), arn);
            }
        }
        ElbOp::ModifyRule {
            arn,
            conditions,
            action,
        } => {
            let mut p = Params::default();
            p.set("RuleArn", arn);
            p.conditions(&ConditionsSpec::to_elb(conditions));
            p.action("Actions", &elb_action(action, refs));
            c.query("ModifyRule", &p.0)?;
        }
        ElbOp::DeleteRule { arn } => {
            c.query("DeleteRule", &arn_param("RuleArn", arn))?;
        }
    }
    Ok(())
}
