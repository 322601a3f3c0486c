//! The `loadBalancers` and `targetGroups` sections: load balancers with their listeners and
//! rules, target groups with health check and attributes, checked as ELBv2 would check them, with
//! every error's path (`loadBalancers.web.listeners[0].rules[1].conditions.pathPattern`).

use super::{boolean, check_keys, describe, get, integer};
use crate::elb::{
    ActionSpec, ConditionsSpec, FixedResponseSpec, ForwardSpec, HealthCheckSpec, HttpHeaderSpec,
    ListenerSpec, LoadBalancerSpec, QueryStringSpec, RedirectSpec, RuleSpec, TargetGroupSpec,
    WeightedTargetGroup, DEFAULT_TARGET_GROUP_PORT,
};
use berth_elb::attributes::{target_group_defaults, validate_target_group};
use berth_elb::Attribute;
use berth_model::FieldErrors;
use serde_json::{Map, Value};
use std::collections::BTreeMap;

const TARGET_GROUP_KEYS: &[&str] = &["port", "healthCheck", "attributes"];
const HEALTH_CHECK_KEYS: &[&str] = &[
    "enabled",
    "path",
    "port",
    "intervalSeconds",
    "timeoutSeconds",
    "healthyThreshold",
    "unhealthyThreshold",
    "matcher",
];
const LOAD_BALANCER_KEYS: &[&str] = &["listeners"];
const LISTENER_KEYS: &[&str] = &["port", "defaultAction", "rules"];
const RULE_KEYS: &[&str] = &["priority", "conditions", "action"];
const ACTION_KEYS: &[&str] = &["forward", "fixedResponse", "redirect"];
const FORWARD_KEYS: &[&str] = &["targetGroups", "stickinessSeconds"];
const WEIGHTED_KEYS: &[&str] = &["name", "weight"];
const FIXED_RESPONSE_KEYS: &[&str] = &["statusCode", "contentType", "messageBody"];
const REDIRECT_KEYS: &[&str] = &["protocol", "port", "host", "path", "query", "statusCode"];
const CONDITION_KEYS: &[&str] = &[
    "pathPattern",
    "hostHeader",
    "httpHeader",
    "httpRequestMethod",
    "queryString",
    "sourceIp",
];
const HTTP_HEADER_KEYS: &[&str] = &["name", "values"];
const QUERY_STRING_KEYS: &[&str] = &["key", "value"];
const CONTENT_TYPES: &[&str] = &[
    "text/plain",
    "text/css",
    "text/html",
    "application/javascript",
    "application/json",
];
/// ELBv2's limits: target groups per forward action, condition values per rule.
const MAX_FORWARD_TARGET_GROUPS: usize = 5;
const MAX_CONDITION_VALUES: usize = 5;

/// `a, b, c` for messages, or `none declared`.
pub(super) fn names<V>(map: &BTreeMap<String, V>) -> String {
    if map.is_empty() {
        "none declared".to_string()
    } else {
        map.keys().cloned().collect::<Vec<_>>().join(", ")
    }
}

/// An ELBv2 load balancer or target group name: 1-32 letters, digits or hyphens, no hyphen at
/// either end.
fn elb_name(path: &str, what: &str, name: &str, errs: &mut FieldErrors) {
    let ok = !name.is_empty()
        && name.len() <= 32
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
        && !name.starts_with('-')
        && !name.ends_with('-');
    if !ok {
        errs.push(
            path,
            format!("expected a {what} name of 1-32 letters, digits or hyphens (no hyphen at either end), found {name:?}"),
        );
    } else if what == "load balancer" && name.starts_with("internal-") {
        errs.push(
            path,
            format!(
                "expected a load balancer name not starting with \"internal-\", found {name:?}"
            ),
        );
    }
}

fn mapping<'a>(
    value: &'a Value,
    path: &str,
    what: &str,
    errs: &mut FieldErrors,
) -> Option<&'a Map<String, Value>> {
    let obj = value.as_object();
    if obj.is_none() {
        errs.push(path, format!("expected {what}, found {}", describe(value)));
    }
    obj
}

/// A string of 1-`max` characters.
fn text(value: &Value, max: usize, path: &str, errs: &mut FieldErrors) -> Option<String> {
    match value {
        Value::String(s) if !s.is_empty() && s.len() <= max => Some(s.clone()),
        other => {
            errs.push(
                path,
                format!(
                    "expected a string of 1-{max} characters, found {}",
                    describe(other)
                ),
            );
            None
        }
    }
}

/// A string, or a number written without quotes (`statusCode: 404`, `port: 443`).
fn text_or_number(value: &Value) -> Option<String> {
    match value {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// Seconds from `min` to `max`; fractions allowed.
fn seconds(value: &Value, min: f64, max: f64, path: &str, errs: &mut FieldErrors) -> Option<f64> {
    match value.as_f64() {
        Some(s) if (min..=max).contains(&s) => Some(s),
        _ => {
            errs.push(
                path,
                format!(
                    "expected seconds from {min} to {max}, found {}",
                    describe(value)
                ),
            );
            None
        }
    }
}

/// Checks the `targetGroups` section. Every declared name is in the result, even when its
/// settings have errors, so that references to it are not reported twice.
pub(super) fn target_groups(
    value: &Value,
    errs: &mut FieldErrors,
) -> BTreeMap<String, TargetGroupSpec> {
    let mut out = BTreeMap::new();
    let Some(map) = mapping(
        value,
        "targetGroups",
        "a mapping of target group name to target group",
        errs,
    ) else {
        return out;
    };
    for (name, value) in map {
        let path = format!("targetGroups.{name}");
        elb_name(&path, "target group", name, errs);
        let spec = match value {
            Value::Null => TargetGroupSpec::default(),
            v => target_group(v, &path, errs),
        };
        out.insert(name.clone(), spec);
    }
    out
}

fn target_group(value: &Value, path: &str, errs: &mut FieldErrors) -> TargetGroupSpec {
    let mut spec = TargetGroupSpec::default();
    let Some(obj) = mapping(
        value,
        path,
        "a mapping with port, healthCheck and attributes",
        errs,
    ) else {
        return spec;
    };
    check_keys(obj, TARGET_GROUP_KEYS, path, errs);
    spec.port = get(obj, "port")
        .and_then(|v| integer(v, 1, 65535, &format!("{path}.port"), errs))
        .and_then(|n| u16::try_from(n).ok())
        .unwrap_or(DEFAULT_TARGET_GROUP_PORT);
    if let Some(v) = get(obj, "healthCheck") {
        spec.health_check = health_check(v, &format!("{path}.healthCheck"), errs);
    }
    if let Some(v) = get(obj, "attributes") {
        spec.attributes = attributes(v, &format!("{path}.attributes"), errs);
    }
    spec
}

fn health_check(value: &Value, path: &str, errs: &mut FieldErrors) -> HealthCheckSpec {
    let mut hc = HealthCheckSpec::default();
    let Some(obj) = mapping(
        value,
        path,
        "a mapping with path, intervalSeconds, timeoutSeconds, healthyThreshold, unhealthyThreshold and matcher",
        errs,
    ) else {
        return hc;
    };
    check_keys(obj, HEALTH_CHECK_KEYS, path, errs);
    let at = |key: &str| format!("{path}.{key}");
    hc.enabled = get(obj, "enabled").and_then(|v| boolean(v, &at("enabled"), errs));
    hc.path = get(obj, "path").and_then(|v| match v {
        Value::String(s) if s.starts_with('/') && s.len() <= 1024 => Some(s.clone()),
        other => {
            errs.push(
                at("path"),
                format!(
                    "expected a path starting with / of at most 1024 characters, found {}",
                    describe(other)
                ),
            );
            None
        }
    });
    hc.port = get(obj, "port").and_then(|v| match text_or_number(v) {
        Some(p) if p == "traffic-port" || p.parse::<u16>().is_ok_and(|n| n > 0) => Some(p),
        _ => {
            errs.push(
                at("port"),
                format!(
                    "expected traffic-port or a port from 1 to 65535, found {}",
                    describe(v)
                ),
            );
            None
        }
    });
    hc.interval_seconds = get(obj, "intervalSeconds")
        .and_then(|v| seconds(v, 0.1, 300.0, &at("intervalSeconds"), errs));
    hc.timeout_seconds = get(obj, "timeoutSeconds")
        .and_then(|v| seconds(v, 0.1, 120.0, &at("timeoutSeconds"), errs));
    let threshold = |key: &str, errs: &mut FieldErrors| {
        get(obj, key)
            .and_then(|v| integer(v, 2, 10, &at(key), errs))
            .and_then(|n| u32::try_from(n).ok())
    };
    hc.healthy_threshold = threshold("healthyThreshold", errs);
    hc.unhealthy_threshold = threshold("unhealthyThreshold", errs);
    hc.matcher = get(obj, "matcher").and_then(|v| match text_or_number(v) {
        Some(m) if valid_matcher(&m) => Some(m),
        _ => {
            errs.push(
                at("matcher"),
                format!(
                    "expected HTTP codes from 200 to 499 like \"200\", \"200-299\" or \"200,302\", found {}",
                    describe(v)
                ),
            );
            None
        }
    });
    let interval_ok = get(obj, "intervalSeconds").is_none() || hc.interval_seconds.is_some();
    let timeout_ok = get(obj, "timeoutSeconds").is_none() || hc.timeout_seconds.is_some();
    let settings = hc.settings();
    if interval_ok && timeout_ok && settings.timeout_seconds >= settings.interval_seconds {
        let default_note = if hc.timeout_seconds.is_none() {
            " (the default; set timeoutSeconds)"
        } else {
            ""
        };
        errs.push(
            at("timeoutSeconds"),
            format!(
                "expected a timeout shorter than the interval ({}s), found {}s{default_note}",
                settings.interval_seconds, settings.timeout_seconds
            ),
        );
    }
    hc
}

fn valid_matcher(m: &str) -> bool {
    let code_ok = |s: &str| s.parse::<u16>().is_ok_and(|c| (200..=499).contains(&c));
    !m.is_empty()
        && m.split(',').all(|part| match part.split_once('-') {
            Some((a, b)) => code_ok(a) && code_ok(b) && a <= b,
            None => code_ok(part),
        })
}

fn attributes(value: &Value, path: &str, errs: &mut FieldErrors) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    let Some(obj) = mapping(
        value,
        path,
        "a mapping of target group attribute to value",
        errs,
    ) else {
        return out;
    };
    let known = target_group_defaults();
    for (key, v) in obj {
        let at = format!("{path}.{key}");
        if !known.contains_key(key) {
            let keys: Vec<&str> = known.keys().map(String::as_str).collect();
            check_keys(
                &Map::from_iter([(key.clone(), v.clone())]),
                &keys,
                path,
                errs,
            );
            continue;
        }
        let value = match v {
            Value::String(s) => s.clone(),
            Value::Number(n) => n.to_string(),
            Value::Bool(b) => b.to_string(),
            other => {
                errs.push(
                    &at,
                    format!(
                        "expected a string, number or boolean, found {}",
                        describe(other)
                    ),
                );
                continue;
            }
        };
        let problems = validate_target_group(&[Attribute {
            key: key.clone(),
            value: value.clone(),
        }]);
        if problems.is_empty() {
            out.insert(key.clone(), value);
        }
        for p in problems.0 {
            // ELBv2 says "<key> takes <what> (...), found '<value>'".
            let what = p
                .message
                .split_once(" takes ")
                .map(|(_, rest)| rest.to_string())
                .unwrap_or(p.message);
            errs.push(&at, format!("expected {what}"));
        }
    }
    out
}

/// Checks the `loadBalancers` section; forwards must name declared target groups.
pub(super) fn load_balancers(
    value: &Value,
    target_groups: &BTreeMap<String, TargetGroupSpec>,
    errs: &mut FieldErrors,
) -> BTreeMap<String, LoadBalancerSpec> {
    let mut out = BTreeMap::new();
    let Some(map) = mapping(
        value,
        "loadBalancers",
        "a mapping of load balancer name to load balancer",
        errs,
    ) else {
        return out;
    };
    let mut ports: BTreeMap<u16, String> = BTreeMap::new();
    let mut users: BTreeMap<String, String> = BTreeMap::new();
    for (name, value) in map {
        let path = format!("loadBalancers.{name}");
        elb_name(&path, "load balancer", name, errs);
        let Some(obj) = mapping(value, &path, "a mapping with listeners", errs) else {
            continue;
        };
        check_keys(obj, LOAD_BALANCER_KEYS, &path, errs);
        let mut spec = LoadBalancerSpec::default();
        if let Some(v) = get(obj, "listeners") {
            let lpath = format!("{path}.listeners");
            match v.as_array() {
                None => errs.push(
                    &lpath,
                    format!("expected a list of listeners, found {}", describe(v)),
                ),
                Some(list) => {
                    for (i, item) in list.iter().enumerate() {
                        let at = format!("{lpath}[{i}]");
                        if let Some(l) = listener(item, &at, target_groups, errs) {
                            if let Some(other) = ports.get(&l.port) {
                                errs.push(
                                    format!("{at}.port"),
                                    format!("expected a port no other listener of the stack uses (load balancers share one address), found {} (also {other})", l.port),
                                );
                            } else {
                                ports.insert(l.port, at.clone());
                            }
                            let actions = std::iter::once((
                                format!("{at}.defaultAction.forward"),
                                &l.default_action,
                            ))
                            .chain(l.rules.iter().enumerate().map(|(j, r)| {
                                (format!("{at}.rules[{j}].action.forward"), &r.action)
                            }));
                            for (apath, action) in actions {
                                for tg in action.target_group_names() {
                                    match users.get(tg) {
                                        Some(lb) if lb != name => errs.push(
                                            &apath,
                                            format!("expected a target group no other load balancer forwards to (a target group serves one load balancer), found {tg:?} (used by loadBalancers.{lb})"),
                                        ),
                                        _ => {
                                            users.insert(tg.to_string(), name.clone());
                                        }
                                    }
                                }
                            }
                            spec.listeners.push(l);
                        }
                    }
                }
            }
        }
        out.insert(name.clone(), spec);
    }
    out
}

fn listener(
    value: &Value,
    path: &str,
    target_groups: &BTreeMap<String, TargetGroupSpec>,
    errs: &mut FieldErrors,
) -> Option<ListenerSpec> {
    let obj = mapping(
        value,
        path,
        "a mapping with port, defaultAction and rules",
        errs,
    )?;
    check_keys(obj, LISTENER_KEYS, path, errs);
    let port = match get(obj, "port") {
        None => {
            errs.push(
                format!("{path}.port"),
                "expected a port from 1 to 65535, found nothing",
            );
            None
        }
        Some(v) => {
            integer(v, 1, 65535, &format!("{path}.port"), errs).and_then(|n| u16::try_from(n).ok())
        }
    };
    let default_action = match get(obj, "defaultAction") {
        None => {
            errs.push(
                format!("{path}.defaultAction"),
                "expected an action (forward, fixedResponse or redirect), found nothing",
            );
            None
        }
        Some(v) => action(v, &format!("{path}.defaultAction"), target_groups, errs),
    };
    let mut rules = Vec::new();
    if let Some(v) = get(obj, "rules") {
        match v.as_array() {
            None => errs.push(
                format!("{path}.rules"),
                format!("expected a list of rules, found {}", describe(v)),
            ),
            Some(list) => {
                let mut priorities: BTreeMap<u32, usize> = BTreeMap::new();
                for (i, item) in list.iter().enumerate() {
                    let at = format!("{path}.rules[{i}]");
                    if let Some(r) = rule(item, &at, target_groups, errs) {
                        if let Some(first) = priorities.get(&r.priority) {
                            errs.push(
                                format!("{at}.priority"),
                                format!("expected a priority no other rule of the listener has, found {} (also rules[{first}])", r.priority),
                            );
                        } else {
                            priorities.insert(r.priority, i);
                        }
                        rules.push(r);
                    }
                }
            }
        }
    }
    Some(ListenerSpec {
        port: port?,
        default_action: default_action?,
        rules,
    })
}

fn rule(
    value: &Value,
    path: &str,
    target_groups: &BTreeMap<String, TargetGroupSpec>,
    errs: &mut FieldErrors,
) -> Option<RuleSpec> {
    let obj = mapping(
        value,
        path,
        "a mapping with priority, conditions and action",
        errs,
    )?;
    check_keys(obj, RULE_KEYS, path, errs);
    let priority = match get(obj, "priority") {
        None => {
            errs.push(
                format!("{path}.priority"),
                "expected a priority from 1 to 50000, found nothing",
            );
            None
        }
        Some(v) => integer(v, 1, 50000, &format!("{path}.priority"), errs)
            .and_then(|n| u32::try_from(n).ok()),
    };
    let conditions = match get(obj, "conditions") {
        None => {
            errs.push(
                format!("{path}.conditions"),
                format!(
                    "expected a mapping with at least one of {}, found nothing",
                    CONDITION_KEYS.join(", ")
                ),
            );
            None
        }
        Some(v) => conditions(v, &format!("{path}.conditions"), errs),
    };
    let action = match get(obj, "action") {
        None => {
            errs.push(
                format!("{path}.action"),
                "expected an action (forward, fixedResponse or redirect), found nothing",
            );
            None
        }
        Some(v) => action(v, &format!("{path}.action"), target_groups, errs),
    };
    Some(RuleSpec {
        priority: priority?,
        conditions: conditions?,
        action: action?,
    })
}

/// A list of 1-128 character strings; a single string is a list of one.
fn values(value: &Value, path: &str, errs: &mut FieldErrors) -> Vec<String> {
    let items: Vec<&Value> = match value {
        Value::Array(list) => list.iter().collect(),
        Value::String(_) => vec![value],
        other => {
            errs.push(
                path,
                format!("expected a list of strings, found {}", describe(other)),
            );
            return Vec::new();
        }
    };
    if items.is_empty() {
        errs.push(path, "expected at least one value, found an empty list");
    }
    items
        .iter()
        .enumerate()
        .filter_map(|(i, v)| text(v, 128, &format!("{path}[{i}]"), errs))
        .collect()
}

fn conditions(value: &Value, path: &str, errs: &mut FieldErrors) -> Option<ConditionsSpec> {
    let obj = mapping(
        value,
        path,
        &format!(
            "a mapping with at least one of {}",
            CONDITION_KEYS.join(", ")
        ),
        errs,
    )?;
    check_keys(obj, CONDITION_KEYS, path, errs);
    let at = |key: &str| format!("{path}.{key}");
    let mut c = ConditionsSpec::default();
    if let Some(v) = get(obj, "pathPattern") {
        c.path_pattern = values(v, &at("pathPattern"), errs);
    }
    if let Some(v) = get(obj, "hostHeader") {
        c.host_header = values(v, &at("hostHeader"), errs);
    }
    if let Some(v) = get(obj, "httpRequestMethod") {
        let p = at("httpRequestMethod");
        c.http_request_method = values(v, &p, errs);
        for (i, m) in c.http_request_method.iter().enumerate() {
            if m.len() > 40
                || !m
                    .chars()
                    .all(|ch| ch.is_ascii_uppercase() || ch == '_' || ch == '-')
            {
                errs.push(
                    format!("{p}[{i}]"),
                    format!("expected an upper-case method name like GET, found {m:?}"),
                );
            }
        }
    }
    if let Some(v) = get(obj, "sourceIp") {
        let p = at("sourceIp");
        c.source_ip = values(v, &p, errs);
        for (i, cidr) in c.source_ip.iter().enumerate() {
            if !is_cidr(cidr) {
                errs.push(
                    format!("{p}[{i}]"),
                    format!(
                        "expected a CIDR block like 10.0.0.0/8 or 2001:db8::/32, found {cidr:?}"
                    ),
                );
            }
        }
    }
    if let Some(v) = get(obj, "httpHeader") {
        let p = at("httpHeader");
        let items: Vec<(String, &Value)> = match v {
            Value::Array(list) => list
                .iter()
                .enumerate()
                .map(|(i, h)| (format!("{p}[{i}]"), h))
                .collect(),
            other => vec![(p.clone(), other)],
        };
        for (hp, h) in items {
            let Some(hobj) = mapping(h, &hp, "a mapping with name and values", errs) else {
                continue;
            };
            check_keys(hobj, HTTP_HEADER_KEYS, &hp, errs);
            let name = match get(hobj, "name") {
                Some(Value::String(n))
                    if !n.is_empty()
                        && n.len() <= 40
                        && n.chars().all(|ch| {
                            ch.is_ascii_alphanumeric() || "!#$%&'*+-.^_`|~".contains(ch)
                        }) =>
                {
                    Some(n.clone())
                }
                other => {
                    errs.push(
                        format!("{hp}.name"),
                        format!(
                            "expected a header name of 1-40 token characters, found {}",
                            other.map(describe).unwrap_or_else(|| "nothing".into())
                        ),
                    );
                    None
                }
            };
            let vals = match get(hobj, "values") {
                Some(v) => values(v, &format!("{hp}.values"), errs),
                None => {
                    errs.push(
                        format!("{hp}.values"),
                        "expected a list of header values, found nothing",
                    );
                    Vec::new()
                }
            };
            if let Some(name) = name {
                c.http_header.push(HttpHeaderSpec { name, values: vals });
            }
        }
    }
    if let Some(v) = get(obj, "queryString") {
        let p = at("queryString");
        match v.as_array() {
            Some(list) if !list.is_empty() => {
                for (i, kv) in list.iter().enumerate() {
                    let kp = format!("{p}[{i}]");
                    let Some(kobj) = mapping(kv, &kp, "a mapping with key and value", errs) else {
                        continue;
                    };
                    check_keys(kobj, QUERY_STRING_KEYS, &kp, errs);
                    let key =
                        get(kobj, "key").and_then(|k| text(k, 128, &format!("{kp}.key"), errs));
                    let value = match get(kobj, "value") {
                        Some(val) => text(val, 128, &format!("{kp}.value"), errs),
                        None => {
                            errs.push(
                                format!("{kp}.value"),
                                "expected a string of 1-128 characters, found nothing",
                            );
                            None
                        }
                    };
                    if let Some(value) = value {
                        c.query_string.push(QueryStringSpec { key, value });
                    }
                }
            }
            _ => errs.push(
                &p,
                format!(
                    "expected a list of {{key, value}} mappings, found {}",
                    describe(v)
                ),
            ),
        }
    }
    if obj.keys().all(|k| !CONDITION_KEYS.contains(&k.as_str())) {
        errs.push(
            path,
            format!(
                "expected at least one of {}, found none",
                CONDITION_KEYS.join(", ")
            ),
        );
    }
    let n = c.n_values();
    if n > MAX_CONDITION_VALUES {
        errs.push(
            path,
            format!("expected at most {MAX_CONDITION_VALUES} condition values per rule, found {n}"),
        );
    }
    Some(c)
}

fn is_cidr(s: &str) -> bool {
    let Some((ip, bits)) = s.split_once('/') else {
        return false;
    };
    let Ok(bits) = bits.parse::<u8>() else {
        return false;
    };
    match ip.parse::<std::net::IpAddr>() {
        Ok(std::net::IpAddr::V4(_)) => bits <= 32,
        Ok(std::net::IpAddr::V6(_)) => bits <= 128,
        Err(_) => false,
    }
}

fn action(
    value: &Value,
    path: &str,
    target_groups: &BTreeMap<String, TargetGroupSpec>,
    errs: &mut FieldErrors,
) -> Option<ActionSpec> {
    let obj = mapping(
        value,
        path,
        "a mapping with one of forward, fixedResponse or redirect",
        errs,
    )?;
    check_keys(obj, ACTION_KEYS, path, errs);
    let given: Vec<&str> = ACTION_KEYS
        .iter()
        .copied()
        .filter(|k| get(obj, k).is_some())
        .collect();
    if given.len() != 1 {
        if obj.keys().all(|k| ACTION_KEYS.contains(&k.as_str())) {
            errs.push(
                path,
                format!(
                    "expected exactly one of forward, fixedResponse or redirect, found {}",
                    if given.is_empty() {
                        "none".to_string()
                    } else {
                        given.join(" and ")
                    }
                ),
            );
        }
        return None;
    }
    let at = |key: &str| format!("{path}.{key}");
    match given[0] {
        "forward" => forward(&obj["forward"], &at("forward"), target_groups, errs),
        "fixedResponse" => fixed_response(&obj["fixedResponse"], &at("fixedResponse"), errs),
        _ => redirect(&obj["redirect"], &at("redirect"), errs),
    }
}

fn target_group_ref(
    value: &Value,
    path: &str,
    target_groups: &BTreeMap<String, TargetGroupSpec>,
    errs: &mut FieldErrors,
) -> Option<String> {
    match value {
        Value::String(name) if target_groups.contains_key(name) => Some(name.clone()),
        other => {
            errs.push(
                path,
                format!(
                    "expected the name of one of the stack's targetGroups ({}), found {}",
                    names(target_groups),
                    describe(other)
                ),
            );
            None
        }
    }
}

fn forward(
    value: &Value,
    path: &str,
    target_groups: &BTreeMap<String, TargetGroupSpec>,
    errs: &mut FieldErrors,
) -> Option<ActionSpec> {
    if !value.is_object() {
        let name = target_group_ref(value, path, target_groups, errs)?;
        return Some(ActionSpec::Forward(ForwardSpec {
            target_groups: vec![WeightedTargetGroup { name, weight: 1 }],
            stickiness_seconds: None,
        }));
    }
    let obj = mapping(value, path, "a mapping with targetGroups", errs)?;
    check_keys(obj, FORWARD_KEYS, path, errs);
    let lpath = format!("{path}.targetGroups");
    let mut spec = ForwardSpec::default();
    let mut ok = true;
    match get(obj, "targetGroups").and_then(Value::as_array) {
        Some(list) if !list.is_empty() && list.len() <= MAX_FORWARD_TARGET_GROUPS => {
            for (i, item) in list.iter().enumerate() {
                let ip = format!("{lpath}[{i}]");
                let (name, weight) = match item {
                    Value::Object(o) => {
                        check_keys(o, WEIGHTED_KEYS, &ip, errs);
                        let name = match get(o, "name") {
                            Some(n) => {
                                target_group_ref(n, &format!("{ip}.name"), target_groups, errs)
                            }
                            None => {
                                errs.push(
                                    format!("{ip}.name"),
                                    "expected a target group name, found nothing",
                                );
                                None
                            }
                        };
                        let weight = match get(o, "weight") {
                            None => Some(1),
                            Some(w) => integer(w, 0, 999, &format!("{ip}.weight"), errs)
                                .and_then(|n| u32::try_from(n).ok()),
                        };
                        (name, weight)
                    }
                    other => (target_group_ref(other, &ip, target_groups, errs), Some(1)),
                };
                match (name, weight) {
                    (Some(name), Some(weight)) => {
                        if spec.target_groups.iter().any(|t| t.name == name) {
                            errs.push(
                                &ip,
                                format!(
                                    "expected each target group at most once, found {name:?} again"
                                ),
                            );
                        }
                        spec.target_groups
                            .push(WeightedTargetGroup { name, weight });
                    }
                    _ => ok = false,
                }
            }
        }
        other => {
            errs.push(
                &lpath,
                format!(
                    "expected a list of 1-{MAX_FORWARD_TARGET_GROUPS} target groups ({{name, weight}}), found {}",
                    match other {
                        Some(list) => format!("{} entries", list.len()),
                        None => get(obj, "targetGroups").map(describe).unwrap_or_else(|| "nothing".into()),
                    }
                ),
            );
            ok = false;
        }
    }
    if let Some(v) = get(obj, "stickinessSeconds") {
        spec.stickiness_seconds =
            integer(v, 1, 604_800, &format!("{path}.stickinessSeconds"), errs);
        ok &= spec.stickiness_seconds.is_some();
    }
    ok.then_some(ActionSpec::Forward(spec))
}

fn fixed_response(value: &Value, path: &str, errs: &mut FieldErrors) -> Option<ActionSpec> {
    let obj = mapping(
        value,
        path,
        "a mapping with statusCode, contentType and messageBody",
        errs,
    )?;
    check_keys(obj, FIXED_RESPONSE_KEYS, path, errs);
    let status_code = match get(obj, "statusCode").and_then(text_or_number) {
        Some(c)
            if c.len() == 3
                && c.starts_with(['2', '4', '5'])
                && c.chars().all(|ch| ch.is_ascii_digit()) =>
        {
            Some(c)
        }
        _ => {
            errs.push(
                format!("{path}.statusCode"),
                format!(
                    "expected a 2XX, 4XX or 5XX status code like 404, found {}",
                    get(obj, "statusCode")
                        .map(describe)
                        .unwrap_or_else(|| "nothing".into())
                ),
            );
            None
        }
    };
    let content_type = get(obj, "contentType").and_then(|v| match v {
        Value::String(s) if CONTENT_TYPES.contains(&s.as_str()) => Some(s.clone()),
        other => {
            errs.push(
                format!("{path}.contentType"),
                format!(
                    "expected one of {}, found {}",
                    CONTENT_TYPES.join(", "),
                    describe(other)
                ),
            );
            None
        }
    });
    let message_body = get(obj, "messageBody").and_then(|v| match v {
        Value::String(s) if s.len() <= 1024 => Some(s.clone()),
        other => {
            errs.push(
                format!("{path}.messageBody"),
                format!(
                    "expected a string of at most 1024 characters, found {}",
                    describe(other)
                ),
            );
            None
        }
    });
    Some(ActionSpec::FixedResponse(FixedResponseSpec {
        status_code: status_code?,
        content_type,
        message_body,
    }))
}

fn redirect(value: &Value, path: &str, errs: &mut FieldErrors) -> Option<ActionSpec> {
    let obj = mapping(
        value,
        path,
        "a mapping with protocol, port, host, path, query and statusCode",
        errs,
    )?;
    check_keys(obj, REDIRECT_KEYS, path, errs);
    let at = |key: &str| format!("{path}.{key}");
    let bad = |key: &str, expected: &str, v: &Value, errs: &mut FieldErrors| {
        errs.push(
            at(key),
            format!("expected {expected}, found {}", describe(v)),
        );
    };
    let mut r = RedirectSpec {
        status_code: "HTTP_301".into(),
        ..RedirectSpec::default()
    };
    if let Some(v) = get(obj, "protocol") {
        match v.as_str() {
            Some(p) if ["HTTP", "HTTPS", "#{protocol}"].contains(&p) => r.protocol = Some(p.into()),
            _ => bad("protocol", "HTTP, HTTPS or #{protocol}", v, errs),
        }
    }
    if let Some(v) = get(obj, "port") {
        match text_or_number(v) {
            Some(p) if p == "#{port}" || p.parse::<u16>().is_ok_and(|n| n > 0) => r.port = Some(p),
            _ => bad("port", "#{port} or a port from 1 to 65535", v, errs),
        }
    }
    if let Some(v) = get(obj, "host") {
        r.host = text(v, 128, &at("host"), errs);
    }
    if let Some(v) = get(obj, "path") {
        match v.as_str() {
            Some(p) if p.starts_with('/') && p.len() <= 128 => r.path = Some(p.into()),
            _ => bad(
                "path",
                "a path starting with / of at most 128 characters",
                v,
                errs,
            ),
        }
    }
    if let Some(v) = get(obj, "query") {
        match v.as_str() {
            Some(q) if !q.starts_with('?') && q.len() <= 128 => r.query = Some(q.into()),
            _ => bad(
                "query",
                "a query without a leading ? of at most 128 characters",
                v,
                errs,
            ),
        }
    }
    if let Some(v) = get(obj, "statusCode") {
        match v.as_str() {
            Some(c) if c == "HTTP_301" || c == "HTTP_302" => r.status_code = c.into(),
            _ => bad("statusCode", "HTTP_301 or HTTP_302", v, errs),
        }
    }
    let keeps_all = ["protocol", "port", "host", "path"]
        .iter()
        .all(|k| get(obj, k).is_none());
    if keeps_all {
        errs.push(
            path,
            "expected a redirect that changes protocol, port, host or path, found one that redirects to the same URL",
        );
        return None;
    }
    Some(ActionSpec::Redirect(r))
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests;
