//! The ELBv2 query protocol's output: response envelopes, error documents and each resource in
//! the XML shape botocore parses (lists as `<Name><member>..</member></Name>`).

use berth_elb::*;
use quick_xml::escape::escape;

/// The ELBv2 XML namespace.
pub const NAMESPACE: &str = "http://elasticloadbalancing.amazonaws.com/doc/2015-12-01/";

/// An XML document under construction.
#[derive(Debug, Default)]
pub struct Xml(pub String);

impl Xml {
    fn open(&mut self, tag: &str) {
        self.0.push('<');
        self.0.push_str(tag);
        self.0.push('>');
    }
    fn close(&mut self, tag: &str) {
        self.0.push_str("</");
        self.0.push_str(tag);
        self.0.push('>');
    }
    /// `<tag>escaped value</tag>`.
    pub fn leaf(&mut self, tag: &str, value: &str) {
        self.open(tag);
        self.0.push_str(&escape(value));
        self.close(tag);
    }
    fn opt(&mut self, tag: &str, value: Option<&str>) {
        if let Some(v) = value {
            self.leaf(tag, v);
        }
    }
    fn boolean(&mut self, tag: &str, value: bool) {
        self.leaf(tag, if value { "true" } else { "false" });
    }
    fn number(&mut self, tag: &str, value: impl ToString) {
        self.leaf(tag, &value.to_string());
    }
    /// `<tag>` … `</tag>` around what `body` writes.
    pub fn node(&mut self, tag: &str, body: impl FnOnce(&mut Xml)) {
        self.open(tag);
        body(self);
        self.close(tag);
    }
    /// `<tag><member>…</member>…</tag>`.
    pub fn list<T>(&mut self, tag: &str, items: &[T], mut member: impl FnMut(&mut Xml, &T)) {
        self.open(tag);
        for item in items {
            self.node("member", |x| member(x, item));
        }
        self.close(tag);
    }
    fn strings(&mut self, tag: &str, items: &[String]) {
        self.list(tag, items, |x, s| x.0.push_str(&escape(s.as_str())));
    }
}

/// Whole seconds for an integer field: berth's fractional seconds round up (botocore parses
/// these fields as integers).
fn whole_seconds(s: f64) -> i64 {
    s.ceil() as i64
}

/// Seconds since the epoch as ISO 8601 with milliseconds (`2026-11-22T00:00:00.000Z`).
pub fn iso8601(epoch_seconds: f64) -> String {
    let millis_total = (epoch_seconds * 1000.0).round() as i64;
    let (secs, millis) = (millis_total.div_euclid(1000), millis_total.rem_euclid(1000));
    let (days, rem) = (secs.div_euclid(86400), secs.rem_euclid(86400));
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{millis:03}Z",
        rem / 3600,
        (rem % 3600) / 60,
        rem % 60
    )
}

/// A success document: `<{Action}Response><{Action}Result>…</…Result><ResponseMetadata>…`.
pub fn response(action: &str, request_id: &str, result: impl FnOnce(&mut Xml)) -> String {
    let mut x = Xml::default();
    x.0.push_str(&format!("<{action}Response xmlns=\"{NAMESPACE}\">"));
    x.node(&format!("{action}Result"), result);
    x.node("ResponseMetadata", |x| x.leaf("RequestId", request_id));
    x.close(&format!("{action}Response"));
    x.0
}

/// An error document as botocore's query parser reads it.
pub fn error(kind: &str, code: &str, message: &str, request_id: &str) -> String {
    let mut x = Xml::default();
    x.0.push_str(&format!("<ErrorResponse xmlns=\"{NAMESPACE}\">"));
    x.node("Error", |x| {
        x.leaf("Type", kind);
        x.leaf("Code", code);
        x.leaf("Message", message);
    });
    x.leaf("RequestId", request_id);
    x.close("ErrorResponse");
    x.0
}

/// One `LoadBalancer` member.
pub fn load_balancer(x: &mut Xml, region: &str, lb: &LoadBalancer) {
    x.leaf("LoadBalancerArn", &lb.arn);
    x.leaf("DNSName", &lb.dns_name);
    x.leaf("CanonicalHostedZoneId", "ZBERTHLOCAL0000");
    x.leaf("CreatedTime", &iso8601(lb.created_time));
    x.leaf("LoadBalancerName", &lb.name);
    x.leaf("Scheme", &lb.scheme);
    x.leaf("VpcId", &lb.vpc_id);
    x.node("State", |x| x.leaf("Code", &lb.state));
    x.leaf("Type", &lb.load_balancer_type);
    let zones: Vec<(String, &String)> = lb
        .subnets
        .iter()
        .enumerate()
        .map(|(i, s)| (format!("{region}{}", char::from(b'a' + (i % 26) as u8)), s))
        .collect();
    x.list("AvailabilityZones", &zones, |x, (zone, subnet)| {
        x.leaf("ZoneName", zone);
        x.leaf("SubnetId", subnet);
    });
    x.strings("SecurityGroups", &lb.security_groups);
    x.leaf("IpAddressType", &lb.ip_address_type);
}

/// One `TargetGroup` member, with the load balancers that forward to it.
pub fn target_group(x: &mut Xml, tg: &TargetGroup, load_balancer_arns: &[String]) {
    let hc = &tg.health_check;
    x.leaf("TargetGroupArn", &tg.arn);
    x.leaf("TargetGroupName", &tg.name);
    x.leaf("Protocol", &tg.protocol);
    x.number("Port", tg.port);
    x.opt("VpcId", tg.vpc_id.as_deref());
    x.leaf("HealthCheckProtocol", &hc.protocol);
    x.leaf("HealthCheckPort", &hc.port);
    x.boolean("HealthCheckEnabled", hc.enabled);
    x.number(
        "HealthCheckIntervalSeconds",
        whole_seconds(hc.interval_seconds),
    );
    x.number(
        "HealthCheckTimeoutSeconds",
        whole_seconds(hc.timeout_seconds),
    );
    x.number("HealthyThresholdCount", hc.healthy_threshold);
    x.number("UnhealthyThresholdCount", hc.unhealthy_threshold);
    x.leaf("HealthCheckPath", &hc.path);
    x.node("Matcher", |x| x.leaf("HttpCode", &hc.matcher));
    x.strings("LoadBalancerArns", load_balancer_arns);
    x.leaf("TargetType", &tg.target_type);
    x.leaf("ProtocolVersion", &tg.protocol_version);
    x.leaf("IpAddressType", &tg.ip_address_type);
}

/// One `Action` member.
pub fn action(x: &mut Xml, a: &Action) {
    x.leaf("Type", &a.action_type);
    x.opt("TargetGroupArn", a.target_group_arn.as_deref());
    if let Some(order) = a.order {
        x.number("Order", order);
    }
    if let Some(fc) = &a.forward_config {
        x.node("ForwardConfig", |x| {
            x.list("TargetGroups", &fc.target_groups, |x, t| {
                x.leaf("TargetGroupArn", &t.target_group_arn);
                x.number("Weight", t.weight.unwrap_or(1));
            });
            if let Some(s) = &fc.stickiness {
                x.node("TargetGroupStickinessConfig", |x| {
                    x.boolean("Enabled", s.enabled);
                    if let Some(d) = s.duration_seconds {
                        x.number("DurationSeconds", d);
                    }
                });
            }
        });
    }
    if let Some(c) = &a.redirect_config {
        x.node("RedirectConfig", |x| {
            x.opt("Protocol", c.protocol.as_deref());
            x.opt("Port", c.port.as_deref());
            x.opt("Host", c.host.as_deref());
            x.opt("Path", c.path.as_deref());
            x.opt("Query", c.query.as_deref());
            x.leaf("StatusCode", &c.status_code);
        });
    }
    if let Some(c) = &a.fixed_response_config {
        x.node("FixedResponseConfig", |x| {
            x.opt("MessageBody", c.message_body.as_deref());
            x.leaf("StatusCode", &c.status_code);
            x.opt("ContentType", c.content_type.as_deref());
        });
    }
}

/// One `Listener` member.
pub fn listener(x: &mut Xml, l: &Listener) {
    x.leaf("ListenerArn", &l.arn);
    x.leaf("LoadBalancerArn", &l.load_balancer_arn);
    x.number("Port", l.port);
    x.leaf("Protocol", &l.protocol);
    if !l.certificates.is_empty() {
        x.list("Certificates", &l.certificates, |x, c| {
            x.leaf("CertificateArn", &c.certificate_arn);
            if let Some(d) = c.is_default {
                x.boolean("IsDefault", d);
            }
        });
    }
    x.opt("SslPolicy", l.ssl_policy.as_deref());
    x.list("DefaultActions", &l.default_actions, action);
}

fn values_config(x: &mut Xml, tag: &str, config: &Option<ValuesConfig>) {
    if let Some(c) = config {
        x.node(tag, |x| x.strings("Values", &c.values));
    }
}

/// One `RuleCondition` member.
pub fn condition(x: &mut Xml, c: &RuleCondition) {
    x.leaf("Field", &c.field);
    if !c.values.is_empty() {
        x.strings("Values", &c.values);
    }
    values_config(x, "HostHeaderConfig", &c.host_header_config);
    values_config(x, "PathPatternConfig", &c.path_pattern_config);
    if let Some(h) = &c.http_header_config {
        x.node("HttpHeaderConfig", |x| {
            x.leaf("HttpHeaderName", &h.http_header_name);
            x.strings("Values", &h.values);
        });
    }
    if let Some(q) = &c.query_string_config {
        x.node("QueryStringConfig", |x| {
            x.list("Values", &q.values, |x, kv| {
                x.opt("Key", kv.key.as_deref());
                x.leaf("Value", &kv.value);
            })
        });
    }
    values_config(x, "HttpRequestMethodConfig", &c.http_request_method_config);
    values_config(x, "SourceIpConfig", &c.source_ip_config);
}

/// One `Rule` member (`Priority` is `default` for a listener's default rule).
pub fn rule(x: &mut Xml, r: &Rule) {
    x.leaf("RuleArn", &r.arn);
    x.leaf(
        "Priority",
        &r.priority
            .map_or_else(|| "default".to_string(), |p| p.to_string()),
    );
    x.list("Conditions", &r.conditions, condition);
    x.list("Actions", &r.actions, action);
    x.boolean("IsDefault", r.is_default());
}

/// `<Attributes>` with Key/Value members.
pub fn attributes(x: &mut Xml, attributes: &[Attribute]) {
    x.list("Attributes", attributes, |x, a| {
        x.leaf("Key", &a.key);
        x.leaf("Value", &a.value);
    });
}

/// One `TargetHealthDescription` member.
pub fn target_health(x: &mut Xml, t: &TargetHealthDescription) {
    x.node("Target", |x| {
        x.leaf("Id", &t.id);
        x.number("Port", t.port);
        x.opt("AvailabilityZone", t.availability_zone.as_deref());
    });
    x.leaf("HealthCheckPort", &t.health_check_port);
    x.node("TargetHealth", |x| {
        x.leaf("State", &t.health.state);
        x.opt("Reason", t.health.reason.as_deref());
        x.opt("Description", t.health.description.as_deref());
    });
}

/// One `TagDescription` member.
pub fn tag_description(x: &mut Xml, (arn, tags): &(String, Vec<Tag>)) {
    x.leaf("ResourceArn", arn);
    x.list("Tags", tags, |x, t| {
        x.leaf("Key", &t.key);
        x.opt("Value", t.value.as_deref());
    });
}
