//! Listener rules compiled per snapshot: ALB conditions (path, host, header, method, query string,
//! source IP), rule selection by priority, and the fixed-response and redirect actions.

use crate::fields::{visible_ascii, Fields};
use crate::targets::{cookie, parse_key, set_cookie, Group};
use crate::wildcard::Wildcard;
use berth_model::protocol::proxy as wire;
use bytes::Bytes;
use http::{HeaderName, HeaderValue, Method, StatusCode, Uri};
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

/// Everything a condition can look at.
pub struct RequestView<'a> {
    pub method: &'a Method,
    pub path: &'a str,
    pub query: Option<&'a str>,
    /// Host without port.
    pub host: Option<&'a str>,
    pub headers: &'a Fields,
    pub source: IpAddr,
}

impl<'a> RequestView<'a> {
    /// The view of a request from `source`.
    pub fn new(
        method: &'a Method,
        uri: &'a Uri,
        headers: &'a Fields,
        source: IpAddr,
    ) -> RequestView<'a> {
        let host = headers
            .get_str("host")
            .or_else(|| uri.authority().map(|a| a.as_str()))
            .map(strip_port);
        RequestView {
            method,
            path: uri.path(),
            query: uri.query(),
            host,
            headers,
            source,
        }
    }
}

/// `host:port` → `host` (IPv6 literals keep their brackets).
pub fn strip_port(host: &str) -> &str {
    if host.starts_with('[') {
        return match host.find(']') {
            Some(i) => &host[..=i],
            None => host,
        };
    }
    match host.rsplit_once(':') {
        Some((h, p)) if p.bytes().all(|b| b.is_ascii_digit()) => h,
        _ => host,
    }
}

/// An IPv4 or IPv6 network.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cidr {
    network: IpAddr,
    prefix: u8,
}

impl Cidr {
    /// Parses `10.0.0.0/8`, `::1/128` or a bare address.
    pub fn parse(s: &str) -> Result<Cidr, String> {
        let (addr, prefix) = match s.split_once('/') {
            Some((a, p)) => (a, Some(p)),
            None => (s, None),
        };
        let network: IpAddr = addr
            .parse()
            .map_err(|_| format!("expected a CIDR block like 10.0.0.0/8, found {s:?}"))?;
        let max = if network.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            None => max,
            Some(p) => match p.parse::<u8>() {
                Ok(p) if p <= max => p,
                _ => return Err(format!("expected a prefix length 0-{max}, found {s:?}")),
            },
        };
        Ok(Cidr { network, prefix })
    }

    /// Whether `ip` is inside (IPv4-mapped IPv6 addresses count as IPv4).
    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = match ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map(IpAddr::V4).unwrap_or(ip),
            v4 => v4,
        };
        match (self.network, ip) {
            (IpAddr::V4(n), IpAddr::V4(a)) => {
                let mask = if self.prefix == 0 {
                    0
                } else {
                    u32::MAX << (32 - self.prefix)
                };
                u32::from(n) & mask == u32::from(a) & mask
            }
            (IpAddr::V6(n), IpAddr::V6(a)) => {
                let mask = if self.prefix == 0 {
                    0
                } else {
                    u128::MAX << (128 - self.prefix)
                };
                u128::from(n) & mask == u128::from(a) & mask
            }
            _ => false,
        }
    }
}

/// A compiled rule condition.
#[derive(Debug)]
pub enum Condition {
    Path(Vec<Wildcard>),
    Host(Vec<Wildcard>),
    Header {
        name: HeaderName,
        values: Vec<Wildcard>,
    },
    Method(Vec<Method>),
    Query(Vec<(Option<Wildcard>, Wildcard)>),
    SourceIp(Vec<Cidr>),
}

impl Condition {
    /// Whether the request satisfies the condition (any of its values).
    pub fn matches(&self, r: &RequestView<'_>) -> bool {
        match self {
            Condition::Path(ps) => ps.iter().any(|p| p.matches(r.path)),
            Condition::Host(ps) => r.host.is_some_and(|h| ps.iter().any(|p| p.matches(h))),
            Condition::Header { name, values } => r
                .headers
                .get_all(name.as_str())
                .filter_map(visible_ascii)
                .any(|v| values.iter().any(|p| p.matches(v))),
            Condition::Method(ms) => ms.iter().any(|m| m == r.method),
            Condition::Query(pairs) => {
                let Some(q) = r.query else { return false };
                q.split('&').filter(|kv| !kv.is_empty()).any(|kv| {
                    let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
                    let (k, v) = (percent_decode(k), percent_decode(v));
                    pairs.iter().any(|(pk, pv)| {
                        pk.as_ref().is_none_or(|pk| pk.matches(&k)) && pv.matches(&v)
                    })
                })
            }
            Condition::SourceIp(cidrs) => cidrs.iter().any(|c| c.contains(r.source)),
        }
    }
}

/// Decodes `%XX` and `+` in a query component; borrows when there is nothing to decode.
pub fn percent_decode(s: &str) -> std::borrow::Cow<'_, str> {
    if !s.bytes().any(|b| b == b'%' || b == b'+') {
        return std::borrow::Cow::Borrowed(s);
    }
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < b.len() => {
                let hex = |c: u8| (c as char).to_digit(16);
                match (hex(b[i + 1]), hex(b[i + 2])) {
                    (Some(h), Some(l)) => {
                        out.push((h * 16 + l) as u8);
                        i += 2;
                    }
                    _ => out.push(b'%'),
                }
            }
            c => out.push(c),
        }
        i += 1;
    }
    std::borrow::Cow::Owned(String::from_utf8_lossy(&out).into_owned())
}

/// A weighted forward to one or more target groups.
#[derive(Debug)]
pub struct Forward {
    pub groups: Vec<(Arc<Group>, u32)>,
    pub total_weight: u32,
    /// Group-level stickiness (`AWSALBTG`).
    pub stickiness: Option<Duration>,
}

/// Name of the group-stickiness cookie.
pub const GROUP_COOKIE: &str = "AWSALBTG";
/// Name of the target-stickiness cookie.
pub const TARGET_COOKIE: &str = "AWSALB";

impl Forward {
    /// Picks a target group: the sticky one if the `AWSALBTG` cookie names a group with weight
    /// > 0, else a weighted random choice. Returns the group and a `Set-Cookie` to send, if any.
    pub fn choose(&self, headers: &Fields) -> Option<(&Arc<Group>, Option<HeaderValue>)> {
        if self.groups.len() == 1 {
            let (g, w) = &self.groups[0];
            return (*w > 0 || self.total_weight == 0).then_some((g, None));
        }
        if let Some(max_age) = self.stickiness {
            if let Some(key) = cookie(headers, GROUP_COOKIE).and_then(parse_key) {
                if let Some((g, _)) = self
                    .groups
                    .iter()
                    .find(|(g, w)| *w > 0 && g.group_key == key)
                {
                    return Some((g, Some(set_cookie(GROUP_COOKIE, key, max_age))));
                }
            }
        }
        let g = self.weighted(crate::rand::below(u64::from(self.total_weight.max(1))) as u32)?;
        let cookie = self
            .stickiness
            .map(|d| set_cookie(GROUP_COOKIE, g.group_key, d));
        Some((g, cookie))
    }

    /// The group whose cumulative weight range holds `ticket` (0 ≤ ticket < total weight).
    pub fn weighted(&self, ticket: u32) -> Option<&Arc<Group>> {
        let mut acc = 0;
        for (g, w) in &self.groups {
            acc += *w;
            if ticket < acc {
                return Some(g);
            }
        }
        None
    }
}

/// A fixed response, rendered once per snapshot.
#[derive(Debug)]
pub struct Fixed {
    pub status: StatusCode,
    pub content_type: HeaderValue,
    pub body: Bytes,
}

/// A redirect template with ALB's `#{...}` placeholders.
#[derive(Debug)]
pub struct Redirect {
    pub protocol: String,
    pub host: String,
    pub port: String,
    pub path: String,
    pub query: String,
    pub status: StatusCode,
}

/// What the original request looked like, for redirect placeholders.
pub struct RedirectInput<'a> {
    /// `http` or `https` (lower case).
    pub protocol: &'a str,
    pub host: &'a str,
    pub port: u16,
    pub path: &'a str,
    pub query: &'a str,
}

fn substitute(template: &str, input: &RedirectInput<'_>) -> String {
    let path_no_slash = input.path.strip_prefix('/').unwrap_or(input.path);
    template
        .replace("#{protocol}", input.protocol)
        .replace("#{host}", input.host)
        .replace("#{port}", &input.port.to_string())
        .replace("#{path}", path_no_slash)
        .replace("#{query}", input.query)
}

impl Redirect {
    /// The `Location` for a request.
    pub fn location(&self, input: &RedirectInput<'_>) -> String {
        let protocol = substitute(&self.protocol, input).to_ascii_lowercase();
        let host = substitute(&self.host, input);
        let port = substitute(&self.port, input);
        let mut path = substitute(&self.path, input);
        if !path.starts_with('/') {
            path.insert(0, '/');
        }
        let query = substitute(&self.query, input);
        let default_port =
            (protocol == "http" && port == "80") || (protocol == "https" && port == "443");
        let mut out = format!("{protocol}://{host}");
        if !default_port && !port.is_empty() {
            out.push(':');
            out.push_str(&port);
        }
        out.push_str(&path);
        if !query.is_empty() {
            out.push('?');
            out.push_str(&query);
        }
        out
    }
}

/// A terminal action.
#[derive(Debug, Clone)]
pub enum Action {
    Forward(Arc<Forward>),
    Fixed(Arc<Fixed>),
    Redirect(Arc<Redirect>),
}

impl Action {
    /// ALB's name for the access log.
    pub fn name(&self) -> &'static str {
        match self {
            Action::Forward(_) => "forward",
            Action::Fixed(_) => "fixed-response",
            Action::Redirect(_) => "redirect",
        }
    }
}

/// A compiled listener rule.
#[derive(Debug)]
pub struct Rule {
    pub priority: u32,
    pub conditions: Vec<Condition>,
    pub action: Action,
}

/// The listener's routing table for one snapshot.
#[derive(Debug)]
pub struct Routes {
    /// Sorted by ascending priority.
    pub rules: Vec<Rule>,
    pub default_action: Action,
}

impl Routes {
    /// The first rule (by priority) whose conditions all match, else the default action;
    /// with the priority of the matched rule (None = default).
    pub fn select(&self, r: &RequestView<'_>) -> (&Action, Option<u32>) {
        for rule in &self.rules {
            if rule.conditions.iter().all(|c| c.matches(r)) {
                return (&rule.action, Some(rule.priority));
            }
        }
        (&self.default_action, None)
    }
}

/// Compiles one condition, pushing errors as `path: message`.
pub fn compile_condition(
    c: &wire::Condition,
    path: &str,
    errors: &mut Vec<String>,
) -> Option<Condition> {
    let empty = |errors: &mut Vec<String>, n: usize| {
        if n == 0 {
            errors.push(format!(
                "{path}.values: expected at least one value, found none"
            ));
        }
    };
    Some(match c {
        wire::Condition::PathPattern { values } => {
            empty(errors, values.len());
            Condition::Path(values.iter().map(|v| Wildcard::new(v, false)).collect())
        }
        wire::Condition::HostHeader { values } => {
            empty(errors, values.len());
            Condition::Host(values.iter().map(|v| Wildcard::new(v, true)).collect())
        }
        wire::Condition::HttpHeader { name, values } => {
            empty(errors, values.len());
            let Ok(name) = HeaderName::from_bytes(name.as_bytes()) else {
                errors.push(format!(
                    "{path}.name: expected an HTTP header name, found {name:?}"
                ));
                return None;
            };
            Condition::Header {
                name,
                values: values.iter().map(|v| Wildcard::new(v, true)).collect(),
            }
        }
        wire::Condition::HttpRequestMethod { values } => {
            empty(errors, values.len());
            let mut ms = Vec::new();
            for (i, v) in values.iter().enumerate() {
                match Method::from_bytes(v.as_bytes()) {
                    Ok(m) => ms.push(m),
                    Err(_) => errors.push(format!(
                        "{path}.values[{i}]: expected an HTTP method, found {v:?}"
                    )),
                }
            }
            Condition::Method(ms)
        }
        wire::Condition::QueryString { values } => {
            empty(errors, values.len());
            Condition::Query(
                values
                    .iter()
                    .map(|p| {
                        (
                            p.key.as_deref().map(|k| Wildcard::new(k, true)),
                            Wildcard::new(&p.value, true),
                        )
                    })
                    .collect(),
            )
        }
        wire::Condition::SourceIp { values } => {
            empty(errors, values.len());
            let mut cidrs = Vec::new();
            for (i, v) in values.iter().enumerate() {
                match Cidr::parse(v) {
                    Ok(c) => cidrs.push(c),
                    Err(e) => errors.push(format!("{path}.values[{i}]: {e}")),
                }
            }
            Condition::SourceIp(cidrs)
        }
    })
}

/// Compiles a rule's actions into its terminal action.
pub fn compile_actions(
    actions: &[wire::Action],
    path: &str,
    groups: &std::collections::HashMap<String, Arc<Group>>,
    errors: &mut Vec<String>,
) -> Option<Action> {
    let Some(action) = actions.last() else {
        errors.push(format!("{path}: expected one action, found none"));
        return None;
    };
    let path = format!("{path}[{}]", actions.len() - 1);
    match action {
        wire::Action::Forward {
            target_groups,
            stickiness_seconds,
        } => {
            if target_groups.is_empty() {
                errors.push(format!(
                    "{path}.target_groups: expected at least one target group, found none"
                ));
                return None;
            }
            let mut out = Vec::new();
            for (i, wtg) in target_groups.iter().enumerate() {
                if wtg.weight > 999 {
                    errors.push(format!(
                        "{path}.target_groups[{i}].weight: expected 0-999, found {}",
                        wtg.weight
                    ));
                }
                match groups.get(&wtg.arn) {
                    Some(g) => out.push((g.clone(), wtg.weight.min(999))),
                    None => errors.push(format!(
                        "{path}.target_groups[{i}].arn: expected a target group of this snapshot, found {:?}",
                        wtg.arn
                    )),
                }
            }
            let total_weight = out.iter().map(|(_, w)| *w).sum();
            let stickiness = stickiness_seconds
                .filter(|s| *s > 0)
                .map(Duration::from_secs);
            Some(Action::Forward(Arc::new(Forward {
                groups: out,
                total_weight,
                stickiness,
            })))
        }
        wire::Action::FixedResponse {
            status_code,
            content_type,
            message_body,
        } => {
            let Ok(status) = StatusCode::from_u16(*status_code) else {
                errors.push(format!(
                    "{path}.status_code: expected an HTTP status code, found {status_code}"
                ));
                return None;
            };
            let ct = content_type.as_deref().unwrap_or("text/plain");
            let Ok(content_type) = HeaderValue::from_str(ct) else {
                errors.push(format!(
                    "{path}.content_type: expected a MIME type, found {ct:?}"
                ));
                return None;
            };
            let body = Bytes::from(message_body.clone().unwrap_or_default());
            Some(Action::Fixed(Arc::new(Fixed {
                status,
                content_type,
                body,
            })))
        }
        wire::Action::Redirect {
            protocol,
            host,
            port,
            path: rpath,
            query,
            status_code,
        } => {
            let status = match status_code.as_str() {
                "HTTP_301" => StatusCode::MOVED_PERMANENTLY,
                "HTTP_302" => StatusCode::FOUND,
                other => {
                    errors.push(format!(
                        "{path}.status_code: expected HTTP_301 or HTTP_302, found {other:?}"
                    ));
                    return None;
                }
            };
            let or = |v: &Option<String>, d: &str| {
                v.clone()
                    .filter(|s| !s.is_empty())
                    .unwrap_or_else(|| d.to_string())
            };
            Some(Action::Redirect(Arc::new(Redirect {
                protocol: or(protocol, "#{protocol}"),
                host: or(host, "#{host}"),
                port: or(port, "#{port}"),
                path: or(rpath, "/#{path}"),
                query: query.clone().unwrap_or_else(|| "#{query}".into()),
                status,
            })))
        }
    }
}

#[cfg(test)]
mod tests;
