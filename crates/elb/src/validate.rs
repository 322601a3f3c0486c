//! Validation and normalisation of names, tags, health checks, actions and conditions. Every
//! function pushes all the errors it finds (`path: expected, found`) and never stops at the first.

use crate::requests::HealthCheckInput;
use crate::types::*;
use crate::MAX_TAGS;
use berth_model::FieldErrors;

/// Checks a load balancer or target group name: 1-32 alphanumerics or hyphens, no hyphen at
/// either end (and, for load balancers, no `internal-` prefix).
pub fn name(path: &str, what: &str, name: &str, errors: &mut FieldErrors) {
    let ok_chars = name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-');
    if name.is_empty()
        || name.len() > 32
        || !ok_chars
        || name.starts_with('-')
        || name.ends_with('-')
    {
        errors.push(
            path,
            format!(
                "a {what} name of 1-32 letters, digits or hyphens, not starting or ending with a hyphen was expected, found '{name}'"
            ),
        );
    } else if what == "load balancer" && name.starts_with("internal-") {
        errors.push(
            path,
            format!("a load balancer name must not start with 'internal-', found '{name}'"),
        );
    }
}

/// Checks tags: keys 1-128 characters, values up to 256, at most `MAX_TAGS`.
pub fn tags(tags: &[Tag], errors: &mut FieldErrors) {
    if tags.len() > MAX_TAGS {
        errors.push(
            "Tags",
            format!(
                "at most {MAX_TAGS} tags were expected, found {}",
                tags.len()
            ),
        );
    }
    for (i, tag) in tags.iter().enumerate() {
        if tag.key.is_empty() || tag.key.len() > 128 {
            errors.push(
                format!("Tags[{i}].Key"),
                format!(
                    "a key of 1-128 characters was expected, found '{}'",
                    tag.key
                ),
            );
        }
        if tag.value.as_ref().is_some_and(|v| v.len() > 256) {
            errors.push(
                format!("Tags[{i}].Value"),
                "a value of at most 256 characters was expected",
            );
        }
    }
}

/// A port from 1 to 65535.
pub fn port(path: &str, port: i64, errors: &mut FieldErrors) -> u16 {
    match u16::try_from(port) {
        Ok(p) if p > 0 => p,
        _ => {
            errors.push(
                path,
                format!("a port from 1 to 65535 was expected, found {port}"),
            );
            0
        }
    }
}

fn one_of(path: &str, value: &str, allowed: &[&str], errors: &mut FieldErrors) {
    if !allowed.contains(&value) {
        errors.push(
            path,
            format!(
                "one of {} was expected, found '{value}'",
                allowed.join(", ")
            ),
        );
    }
}

/// Checks `Matcher.HttpCode`: codes or ranges from 200 to 499, comma separated.
fn matcher(path: &str, matcher: &str, errors: &mut FieldErrors) {
    let code_ok = |s: &str| s.parse::<u16>().is_ok_and(|c| (200..=499).contains(&c));
    let ok = !matcher.is_empty()
        && matcher.split(',').all(|part| match part.split_once('-') {
            Some((a, b)) => code_ok(a) && code_ok(b) && a <= b,
            None => code_ok(part),
        });
    if !ok {
        errors.push(path, format!("HTTP codes from 200 to 499 like '200', '200-299' or '200,302' were expected, found '{matcher}'"));
    }
}

/// Applies the given health check fields over `base`, checking each.
pub fn health_check(
    input: &HealthCheckInput,
    base: &HealthCheckSettings,
    errors: &mut FieldErrors,
) -> HealthCheckSettings {
    let mut hc = base.clone();
    if let Some(enabled) = input.enabled {
        hc.enabled = enabled;
    }
    if let Some(protocol) = &input.protocol {
        one_of("HealthCheckProtocol", protocol, &["HTTP", "HTTPS"], errors);
        hc.protocol = protocol.clone();
    }
    if let Some(p) = &input.port {
        if p != "traffic-port" && !p.parse::<u16>().is_ok_and(|n| n > 0) {
            errors.push(
                "HealthCheckPort",
                format!("'traffic-port' or a port from 1 to 65535 was expected, found '{p}'"),
            );
        }
        hc.port = p.clone();
    }
    if let Some(path) = &input.path {
        if !path.starts_with('/') || path.len() > 1024 {
            errors.push("HealthCheckPath", format!("a path starting with '/' of at most 1024 characters was expected, found '{path}'"));
        }
        hc.path = path.clone();
    }
    if let Some(s) = input.interval_seconds {
        if !(0.1..=300.0).contains(&s) {
            errors.push(
                "HealthCheckIntervalSeconds",
                format!("seconds from 0.1 to 300 were expected (AWS: 5-300), found {s}"),
            );
        }
        hc.interval_seconds = s;
    }
    if let Some(s) = input.timeout_seconds {
        if !(0.1..=120.0).contains(&s) {
            errors.push(
                "HealthCheckTimeoutSeconds",
                format!("seconds from 0.1 to 120 were expected (AWS: 2-120), found {s}"),
            );
        }
        hc.timeout_seconds = s;
    }
    if hc.timeout_seconds >= hc.interval_seconds {
        errors.push(
            "HealthCheckTimeoutSeconds",
            format!(
                "a timeout shorter than the interval ({}s) was expected, found {}s",
                hc.interval_seconds, hc.timeout_seconds
            ),
        );
    }
    for (path, value, slot) in [
        (
            "HealthyThresholdCount",
            input.healthy_threshold,
            &mut hc.healthy_threshold,
        ),
        (
            "UnhealthyThresholdCount",
            input.unhealthy_threshold,
            &mut hc.unhealthy_threshold,
        ),
    ] {
        if let Some(n) = value {
            match u32::try_from(n) {
                Ok(n) if (2..=10).contains(&n) => *slot = n,
                _ => errors.push(
                    path,
                    format!("a count from 2 to 10 was expected, found {n}"),
                ),
            }
        }
    }
    if let Some(m) = &input.matcher {
        matcher("Matcher.HttpCode", m, errors);
        hc.matcher = m.clone();
    }
    hc
}

const UNSUPPORTED_ACTIONS: &[&str] = &[
    "authenticate-oidc",
    "authenticate-cognito",
    "jwt-validation",
];
const CONTENT_TYPES: &[&str] = &[
    "text/plain",
    "text/css",
    "text/html",
    "application/javascript",
    "application/json",
];

/// Checks a list of actions and returns them as AWS stores them (forward actions carry both
/// forms, weights default to 1, redirects have their `#{...}` defaults filled in).
pub fn actions(path: &str, actions: &[Action], errors: &mut FieldErrors) -> Vec<Action> {
    if actions.len() != 1 {
        errors.push(
            path,
            format!(
                "exactly one action (forward, fixed-response or redirect) was expected, found {}",
                actions.len()
            ),
        );
    }
    actions
        .iter()
        .enumerate()
        .map(|(i, a)| action(&format!("{path}[{i}]"), a, errors))
        .collect()
}

fn action(path: &str, a: &Action, errors: &mut FieldErrors) -> Action {
    let mut out = Action {
        action_type: a.action_type.clone(),
        order: a.order,
        ..Action::default()
    };
    if let Some(order) = a.order {
        if !(1..=50000).contains(&order) {
            errors.push(
                format!("{path}.Order"),
                format!("a number from 1 to 50000 was expected, found {order}"),
            );
        }
    }
    let unexpected = |errors: &mut FieldErrors, field: &str, present: bool| {
        if present {
            errors.push(
                format!("{path}.{field}"),
                format!("not expected for a {} action", a.action_type),
            );
        }
    };
    match a.action_type.as_str() {
        "forward" => {
            unexpected(errors, "RedirectConfig", a.redirect_config.is_some());
            unexpected(
                errors,
                "FixedResponseConfig",
                a.fixed_response_config.is_some(),
            );
            out.forward_config = Some(forward(path, a, errors));
            if let Some(fc) = &out.forward_config {
                if fc.target_groups.len() == 1 {
                    out.target_group_arn = Some(fc.target_groups[0].target_group_arn.clone());
                }
            }
        }
        "fixed-response" => {
            unexpected(errors, "TargetGroupArn", a.target_group_arn.is_some());
            unexpected(errors, "ForwardConfig", a.forward_config.is_some());
            unexpected(errors, "RedirectConfig", a.redirect_config.is_some());
            match &a.fixed_response_config {
                None => errors.push(
                    format!("{path}.FixedResponseConfig"),
                    "a FixedResponseConfig was expected, found none",
                ),
                Some(c) => {
                    let code_ok = c.status_code.len() == 3
                        && c.status_code.starts_with(['2', '4', '5'])
                        && c.status_code.chars().all(|ch| ch.is_ascii_digit());
                    if !code_ok {
                        errors.push(
                            format!("{path}.FixedResponseConfig.StatusCode"),
                            format!(
                                "a 2XX, 4XX or 5XX code was expected, found '{}'",
                                c.status_code
                            ),
                        );
                    }
                    if let Some(ct) = &c.content_type {
                        one_of(
                            &format!("{path}.FixedResponseConfig.ContentType"),
                            ct,
                            CONTENT_TYPES,
                            errors,
                        );
                    }
                    if c.message_body.as_ref().is_some_and(|b| b.len() > 1024) {
                        errors.push(
                            format!("{path}.FixedResponseConfig.MessageBody"),
                            "at most 1024 characters were expected",
                        );
                    }
                    out.fixed_response_config = Some(c.clone());
                }
            }
        }
        "redirect" => {
            unexpected(errors, "TargetGroupArn", a.target_group_arn.is_some());
            unexpected(errors, "ForwardConfig", a.forward_config.is_some());
            unexpected(
                errors,
                "FixedResponseConfig",
                a.fixed_response_config.is_some(),
            );
            match &a.redirect_config {
                None => errors.push(
                    format!("{path}.RedirectConfig"),
                    "a RedirectConfig was expected, found none",
                ),
                Some(c) => {
                    out.redirect_config =
                        Some(redirect(&format!("{path}.RedirectConfig"), c, errors))
                }
            }
        }
        t if UNSUPPORTED_ACTIONS.contains(&t) => {
            errors.push(format!("{path}.Type"), format!("forward, fixed-response or redirect was expected, found '{t}' (not supported by berth)"));
        }
        t => errors.push(
            format!("{path}.Type"),
            format!("forward, fixed-response or redirect was expected, found '{t}'"),
        ),
    }
    out
}

fn forward(path: &str, a: &Action, errors: &mut FieldErrors) -> ForwardConfig {
    let mut fc = a.forward_config.clone().unwrap_or_default();
    match (&a.target_group_arn, fc.target_groups.is_empty()) {
        (None, true) => errors.push(
            path.to_string(),
            "a forward action needs TargetGroupArn or ForwardConfig.TargetGroups, found neither",
        ),
        (Some(arn), true) => fc.target_groups.push(TargetGroupTuple {
            target_group_arn: arn.clone(),
            weight: None,
        }),
        (Some(arn), false) => {
            if fc.target_groups.len() != 1 || fc.target_groups[0].target_group_arn != *arn {
                errors.push(
                    format!("{path}.TargetGroupArn"),
                    "the same single target group as ForwardConfig.TargetGroups was expected (or give only one of them)",
                );
            }
        }
        (None, false) => {}
    }
    if fc.target_groups.len() > 5 {
        errors.push(
            format!("{path}.ForwardConfig.TargetGroups"),
            format!(
                "at most 5 target groups were expected, found {}",
                fc.target_groups.len()
            ),
        );
    }
    for (i, t) in fc.target_groups.iter_mut().enumerate() {
        let p = format!("{path}.ForwardConfig.TargetGroups[{i}]");
        if t.target_group_arn.is_empty() {
            errors.push(
                format!("{p}.TargetGroupArn"),
                "a target group ARN was expected, found none",
            );
        }
        match t.weight {
            Some(w) if w > 999 => errors.push(
                format!("{p}.Weight"),
                format!("a weight from 0 to 999 was expected, found {w}"),
            ),
            None => t.weight = Some(1),
            _ => {}
        }
    }
    let arns: Vec<&String> = fc
        .target_groups
        .iter()
        .map(|t| &t.target_group_arn)
        .collect();
    if (1..arns.len()).any(|i| arns[..i].contains(&arns[i])) {
        errors.push(
            format!("{path}.ForwardConfig.TargetGroups"),
            "each target group at most once was expected",
        );
    }
    let stickiness = fc.stickiness.get_or_insert_with(StickinessConfig::default);
    if stickiness.enabled {
        match stickiness.duration_seconds {
            Some(d) if (1..=604800).contains(&d) => {}
            d => errors.push(
                format!("{path}.ForwardConfig.TargetGroupStickinessConfig.DurationSeconds"),
                format!("seconds from 1 to 604800 were expected when stickiness is enabled, found {d:?}"),
            ),
        }
    }
    fc
}

fn redirect(path: &str, c: &RedirectConfig, errors: &mut FieldErrors) -> RedirectConfig {
    one_of(
        &format!("{path}.StatusCode"),
        &c.status_code,
        &["HTTP_301", "HTTP_302"],
        errors,
    );
    if let Some(p) = &c.protocol {
        one_of(
            &format!("{path}.Protocol"),
            p,
            &["HTTP", "HTTPS", "#{protocol}"],
            errors,
        );
    }
    if let Some(p) = &c.port {
        if p != "#{port}" && !p.parse::<u16>().is_ok_and(|n| n > 0) {
            errors.push(
                format!("{path}.Port"),
                format!("'#{{port}}' or a port from 1 to 65535 was expected, found '{p}'"),
            );
        }
    }
    if let Some(h) = &c.host {
        if h.is_empty() || h.len() > 128 {
            errors.push(
                format!("{path}.Host"),
                format!("a host of 1-128 characters was expected, found '{h}'"),
            );
        }
    }
    if let Some(p) = &c.path {
        if !p.starts_with('/') || p.len() > 128 {
            errors.push(
                format!("{path}.Path"),
                format!(
                    "a path starting with '/' of at most 128 characters was expected, found '{p}'"
                ),
            );
        }
    }
    if let Some(q) = &c.query {
        if q.starts_with('?') || q.len() > 128 {
            errors.push(format!("{path}.Query"), format!("a query without a leading '?' of at most 128 characters was expected, found '{q}'"));
        }
    }
    for (field, value) in [
        ("Protocol", &c.protocol),
        ("Port", &c.port),
        ("Host", &c.host),
        ("Path", &c.path),
        ("Query", &c.query),
    ] {
        if let Some(v) = value {
            if v.chars().any(|ch| ch.is_control()) {
                errors.push(
                    format!("{path}.{field}"),
                    format!("a value without control characters (CR, LF, ...) was expected, found {v:?}"),
                );
            }
        }
    }
    let filled = RedirectConfig {
        protocol: Some(c.protocol.clone().unwrap_or_else(|| "#{protocol}".into())),
        port: Some(c.port.clone().unwrap_or_else(|| "#{port}".into())),
        host: Some(c.host.clone().unwrap_or_else(|| "#{host}".into())),
        path: Some(c.path.clone().unwrap_or_else(|| "/#{path}".into())),
        query: Some(c.query.clone().unwrap_or_else(|| "#{query}".into())),
        status_code: c.status_code.clone(),
    };
    let loops = filled.protocol.as_deref() == Some("#{protocol}")
        && filled.port.as_deref() == Some("#{port}")
        && filled.host.as_deref() == Some("#{host}")
        && filled.path.as_deref() == Some("/#{path}");
    if loops {
        errors.push(path.to_string(), "a redirect that changes Protocol, Port, Host or Path was expected; this one redirects to the same URL");
    }
    filled
}

const FIELDS: &[&str] = &[
    "host-header",
    "path-pattern",
    "http-header",
    "http-request-method",
    "query-string",
    "source-ip",
];

/// Checks rule conditions and returns them as AWS stores them (per-field configs filled in;
/// host-header and path-pattern also keep `values`).
pub fn conditions(
    path: &str,
    conditions: &[RuleCondition],
    errors: &mut FieldErrors,
) -> Vec<RuleCondition> {
    let mut out = Vec::new();
    let mut n_values = 0;
    for (i, c) in conditions.iter().enumerate() {
        let p = format!("{path}[{i}]");
        if !FIELDS.contains(&c.field.as_str()) {
            errors.push(
                format!("{p}.Field"),
                format!(
                    "one of {} was expected, found '{}'",
                    FIELDS.join(", "),
                    c.field
                ),
            );
            continue;
        }
        let once = [
            "host-header",
            "path-pattern",
            "http-request-method",
            "source-ip",
        ];
        if once.contains(&c.field.as_str()) && conditions[..i].iter().any(|o| o.field == c.field) {
            errors.push(
                format!("{p}.Field"),
                format!("at most one {} condition per rule was expected", c.field),
            );
        }
        let configs = [
            (
                "host-header",
                "HostHeaderConfig",
                c.host_header_config.is_some(),
            ),
            (
                "path-pattern",
                "PathPatternConfig",
                c.path_pattern_config.is_some(),
            ),
            (
                "http-header",
                "HttpHeaderConfig",
                c.http_header_config.is_some(),
            ),
            (
                "query-string",
                "QueryStringConfig",
                c.query_string_config.is_some(),
            ),
            (
                "http-request-method",
                "HttpRequestMethodConfig",
                c.http_request_method_config.is_some(),
            ),
            ("source-ip", "SourceIpConfig", c.source_ip_config.is_some()),
        ];
        for (field, name, present) in configs {
            if present && field != c.field {
                errors.push(
                    format!("{p}.{name}"),
                    format!("not expected for a {} condition", c.field),
                );
            }
        }
        let condition = condition(&p, c, errors);
        n_values += condition_values(&condition);
        out.push(condition);
    }
    if n_values > 5 {
        errors.push(
            path.to_string(),
            format!("at most 5 condition values per rule were expected, found {n_values}"),
        );
    }
    out
}

fn condition_values(c: &RuleCondition) -> usize {
    [
        &c.host_header_config,
        &c.path_pattern_config,
        &c.http_request_method_config,
        &c.source_ip_config,
    ]
    .into_iter()
    .flatten()
    .map(|v| v.values.len())
    .sum::<usize>()
        + c.http_header_config.as_ref().map_or(0, |h| h.values.len())
        + c.query_string_config.as_ref().map_or(0, |q| q.values.len())
}

/// Values from the legacy list or the config (not both), checked for count and length.
fn values_of(
    path: &str,
    config_name: &str,
    legacy: &[String],
    config: Option<&ValuesConfig>,
    errors: &mut FieldErrors,
) -> Vec<String> {
    let values = match (legacy.is_empty(), config) {
        (false, Some(_)) => {
            errors.push(
                format!("{path}.Values"),
                format!("either Values or {config_name}.Values was expected, found both"),
            );
            legacy.to_vec()
        }
        (false, None) => legacy.to_vec(),
        (true, Some(c)) => c.values.clone(),
        (true, None) => Vec::new(),
    };
    if values.is_empty() {
        errors.push(
            format!("{path}.{config_name}.Values"),
            "at least one value was expected, found none",
        );
    }
    for (i, v) in values.iter().enumerate() {
        if v.is_empty() || v.len() > 128 {
            errors.push(
                format!("{path}.{config_name}.Values[{i}]"),
                format!("a value of 1-128 characters was expected, found '{v}'"),
            );
        }
    }
    values
}

fn no_legacy_values(path: &str, c: &RuleCondition, errors: &mut FieldErrors) {
    if !c.values.is_empty() {
        errors.push(
            format!("{path}.Values"),
            format!(
                "Values is only for host-header and path-pattern; a {} condition takes its config",
                c.field
            ),
        );
    }
}

fn condition(path: &str, c: &RuleCondition, errors: &mut FieldErrors) -> RuleCondition {
    let mut out = RuleCondition {
        field: c.field.clone(),
        ..RuleCondition::default()
    };
    match c.field.as_str() {
        "path-pattern" => {
            let v = values_of(
                path,
                "PathPatternConfig",
                &c.values,
                c.path_pattern_config.as_ref(),
                errors,
            );
            out.values = v.clone();
            out.path_pattern_config = Some(ValuesConfig { values: v });
        }
        "host-header" => {
            let v = values_of(
                path,
                "HostHeaderConfig",
                &c.values,
                c.host_header_config.as_ref(),
                errors,
            );
            out.values = v.clone();
            out.host_header_config = Some(ValuesConfig { values: v });
        }
        "http-request-method" => {
            no_legacy_values(path, c, errors);
            let v = values_of(
                path,
                "HttpRequestMethodConfig",
                &[],
                c.http_request_method_config.as_ref(),
                errors,
            );
            for (i, m) in v.iter().enumerate() {
                if m.len() > 40
                    || !m
                        .chars()
                        .all(|ch| ch.is_ascii_uppercase() || ch == '_' || ch == '-')
                {
                    errors.push(
                        format!("{path}.HttpRequestMethodConfig.Values[{i}]"),
                        format!("an upper-case method name like GET was expected, found '{m}'"),
                    );
                }
            }
            out.http_request_method_config = Some(ValuesConfig { values: v });
        }
        "source-ip" => {
            no_legacy_values(path, c, errors);
            let v = values_of(
                path,
                "SourceIpConfig",
                &[],
                c.source_ip_config.as_ref(),
                errors,
            );
            for (i, cidr) in v.iter().enumerate() {
                if !is_cidr(cidr) {
                    errors.push(
                        format!("{path}.SourceIpConfig.Values[{i}]"),
                        format!("a CIDR block like 10.0.0.0/8 or 2001:db8::/32 was expected, found '{cidr}'"),
                    );
                }
            }
            out.source_ip_config = Some(ValuesConfig { values: v });
        }
        "http-header" => {
            no_legacy_values(path, c, errors);
            match &c.http_header_config {
                None => errors.push(
                    format!("{path}.HttpHeaderConfig"),
                    "an HttpHeaderConfig was expected, found none",
                ),
                Some(h) => {
                    let name_ok = !h.http_header_name.is_empty()
                        && h.http_header_name.len() <= 40
                        && h.http_header_name
                            .chars()
                            .all(|ch| ch.is_ascii_alphanumeric() || "!#$%&'*+-.^_`|~".contains(ch));
                    if !name_ok {
                        errors.push(
                            format!("{path}.HttpHeaderConfig.HttpHeaderName"),
                            format!(
                                "a header name of 1-40 token characters was expected, found '{}'",
                                h.http_header_name
                            ),
                        );
                    }
                    if h.values.is_empty() {
                        errors.push(
                            format!("{path}.HttpHeaderConfig.Values"),
                            "at least one value was expected, found none",
                        );
                    }
                    for (i, v) in h.values.iter().enumerate() {
                        if v.is_empty() || v.len() > 128 {
                            errors.push(
                                format!("{path}.HttpHeaderConfig.Values[{i}]"),
                                format!("a value of 1-128 characters was expected, found '{v}'"),
                            );
                        }
                    }
                    out.http_header_config = Some(h.clone());
                }
            }
        }
        "query-string" => {
            no_legacy_values(path, c, errors);
            match &c.query_string_config {
                None => errors.push(
                    format!("{path}.QueryStringConfig"),
                    "a QueryStringConfig was expected, found none",
                ),
                Some(q) => {
                    if q.values.is_empty() {
                        errors.push(
                            format!("{path}.QueryStringConfig.Values"),
                            "at least one key/value pair was expected, found none",
                        );
                    }
                    for (i, kv) in q.values.iter().enumerate() {
                        if kv.value.is_empty() || kv.value.len() > 128 {
                            errors.push(
                                format!("{path}.QueryStringConfig.Values[{i}].Value"),
                                format!(
                                    "a value of 1-128 characters was expected, found '{}'",
                                    kv.value
                                ),
                            );
                        }
                    }
                    out.query_string_config = Some(q.clone());
                }
            }
        }
        _ => {}
    }
    out
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
