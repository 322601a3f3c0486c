//! Load balancer and target group attributes: AWS's keys with their defaults, and validation of
//! the values berth accepts.

use crate::types::Attribute;
use berth_model::FieldErrors;
use std::collections::BTreeMap;

/// What a value of one attribute must look like.
#[derive(Debug, Clone, Copy)]
enum Kind {
    Bool,
    /// A number in `[min, max]`; `whole` when fractions are refused.
    Number {
        min: f64,
        max: f64,
        whole: bool,
    },
    OneOf(&'static [&'static str]),
    Text,
}

const LOAD_BALANCER: &[(&str, &str, Kind)] = &[
    ("access_logs.s3.bucket", "", Kind::Text),
    ("access_logs.s3.enabled", "false", Kind::Bool),
    ("access_logs.s3.prefix", "", Kind::Text),
    (
        "client_keep_alive.seconds",
        "3600",
        Kind::Number {
            min: 60.0,
            max: 604800.0,
            whole: true,
        },
    ),
    ("connection_logs.s3.bucket", "", Kind::Text),
    ("connection_logs.s3.enabled", "false", Kind::Bool),
    ("connection_logs.s3.prefix", "", Kind::Text),
    ("deletion_protection.enabled", "false", Kind::Bool),
    (
        "idle_timeout.timeout_seconds",
        "60",
        Kind::Number {
            min: 1.0,
            max: 4000.0,
            whole: true,
        },
    ),
    ("load_balancing.cross_zone.enabled", "true", Kind::Bool),
    (
        "routing.http.desync_mitigation_mode",
        "defensive",
        Kind::OneOf(&["monitor", "defensive", "strictest"]),
    ),
    (
        "routing.http.drop_invalid_header_fields.enabled",
        "false",
        Kind::Bool,
    ),
    (
        "routing.http.preserve_host_header.enabled",
        "false",
        Kind::Bool,
    ),
    (
        "routing.http.x_amzn_tls_version_and_cipher_suite.enabled",
        "false",
        Kind::Bool,
    ),
    ("routing.http.xff_client_port.enabled", "false", Kind::Bool),
    (
        "routing.http.xff_header_processing.mode",
        "append",
        Kind::OneOf(&["append", "preserve", "remove"]),
    ),
    ("routing.http2.enabled", "true", Kind::Bool),
    ("waf.fail_open.enabled", "false", Kind::Bool),
    ("zonal_shift.config.enabled", "false", Kind::Bool),
];

const TARGET_GROUP: &[(&str, &str, Kind)] = &[
    // berth accepts fractional delays so tests can drain quickly.
    (
        "deregistration_delay.timeout_seconds",
        "300",
        Kind::Number {
            min: 0.0,
            max: 3600.0,
            whole: false,
        },
    ),
    (
        "load_balancing.algorithm.anomaly_mitigation",
        "off",
        Kind::OneOf(&["off"]),
    ),
    (
        "load_balancing.algorithm.type",
        "round_robin",
        Kind::OneOf(&["round_robin", "least_outstanding_requests"]),
    ),
    (
        "load_balancing.cross_zone.enabled",
        "use_load_balancer_configuration",
        Kind::OneOf(&["true", "false", "use_load_balancer_configuration"]),
    ),
    // AWS: 0 or 30-900; berth also accepts shorter ramps.
    (
        "slow_start.duration_seconds",
        "0",
        Kind::Number {
            min: 0.0,
            max: 900.0,
            whole: false,
        },
    ),
    ("stickiness.app_cookie.cookie_name", "", Kind::Text),
    (
        "stickiness.app_cookie.duration_seconds",
        "86400",
        Kind::Number {
            min: 1.0,
            max: 604800.0,
            whole: true,
        },
    ),
    ("stickiness.enabled", "false", Kind::Bool),
    (
        "stickiness.lb_cookie.duration_seconds",
        "86400",
        Kind::Number {
            min: 1.0,
            max: 604800.0,
            whole: true,
        },
    ),
    ("stickiness.type", "lb_cookie", Kind::OneOf(&["lb_cookie"])),
    (
        "target_group_health.dns_failover.minimum_healthy_targets.count",
        "1",
        Kind::Text,
    ),
    (
        "target_group_health.dns_failover.minimum_healthy_targets.percentage",
        "off",
        Kind::Text,
    ),
    (
        "target_group_health.unhealthy_state_routing.minimum_healthy_targets.count",
        "1",
        Kind::Text,
    ),
    (
        "target_group_health.unhealthy_state_routing.minimum_healthy_targets.percentage",
        "off",
        Kind::Text,
    ),
];

/// The attributes a new load balancer starts with.
pub fn load_balancer_defaults() -> BTreeMap<String, String> {
    defaults(LOAD_BALANCER)
}

/// The attributes a new target group starts with.
pub fn target_group_defaults() -> BTreeMap<String, String> {
    defaults(TARGET_GROUP)
}

fn defaults(table: &[(&str, &str, Kind)]) -> BTreeMap<String, String> {
    table
        .iter()
        .map(|(k, v, _)| (k.to_string(), v.to_string()))
        .collect()
}

/// Checks load balancer attributes, collecting every error under `Attributes[i]`.
pub fn validate_load_balancer(attributes: &[Attribute]) -> FieldErrors {
    validate(LOAD_BALANCER, "load balancer", attributes)
}

/// Checks target group attributes, collecting every error under `Attributes[i]`.
pub fn validate_target_group(attributes: &[Attribute]) -> FieldErrors {
    validate(TARGET_GROUP, "target group", attributes)
}

fn validate(table: &[(&str, &str, Kind)], what: &str, attributes: &[Attribute]) -> FieldErrors {
    let mut errors = FieldErrors::default();
    if attributes.is_empty() {
        errors.push(
            "Attributes",
            "at least one attribute was expected, found none",
        );
    }
    for (i, attribute) in attributes.iter().enumerate() {
        let path = format!("Attributes[{i}]");
        let Some((_, _, kind)) = table.iter().find(|(k, _, _)| *k == attribute.key) else {
            errors.push(
                format!("{path}.Key"),
                format!("a {what} attribute was expected, found '{}'", attribute.key),
            );
            continue;
        };
        let value = attribute.value.as_str();
        let bad = match kind {
            Kind::Bool => {
                (value != "true" && value != "false").then(|| "true or false".to_string())
            }
            Kind::Number { min, max, whole } => match value.parse::<f64>() {
                Ok(n) if n >= *min && n <= *max && (!whole || n.fract() == 0.0) => None,
                _ => Some(format!(
                    "{} number from {min} to {max}",
                    if *whole { "a whole" } else { "a" }
                )),
            },
            Kind::OneOf(allowed) => {
                (!allowed.contains(&value)).then(|| format!("one of {}", allowed.join(", ")))
            }
            Kind::Text => None,
        };
        if let Some(expected) = bad {
            errors.push(
                format!("{path}.Value"),
                format!(
                    "{} takes {expected} (berth's supported values), found '{value}'",
                    attribute.key
                ),
            );
        }
    }
    errors
}
