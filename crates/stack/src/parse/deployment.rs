//! How a service deploys: ECS's `deploymentConfiguration` (rolling limits, circuit breaker,
//! strategy, bake time, canary and linear steps, alarms, berth's canary analysis), berth's
//! friendlier `deployment` section (strategy or a CodeDeploy-style `trafficShift`, the alternate
//! target group and the listeners by stack name), and the checks that tie them to the service's
//! load balancers.

use super::{boolean, check_keys, describe, get, integer, StackRefs};
use crate::elb::ActionSpec;
use crate::spec::{ListenerRuleRef, ServiceLoadBalancer, TrafficShiftTargets};
use berth_model::ecs::{
    AdvancedConfiguration, CanaryAnalysis, CanaryConfiguration, DeploymentAlarms,
    DeploymentCircuitBreaker, DeploymentConfiguration, LinearConfiguration,
};
use berth_model::FieldErrors;
use serde_json::{Map, Value};

const DEPLOYMENT_CONFIGURATION_KEYS: &[&str] = &[
    "minimumHealthyPercent",
    "maximumPercent",
    "deploymentCircuitBreaker",
    "strategy",
    "bakeTimeInMinutes",
    "canaryConfiguration",
    "linearConfiguration",
    "alarms",
    "canaryAnalysis",
    "testTrafficTimeInMinutes",
];
/// The `deploymentConfiguration` keys that `deployment` sets too; giving both is an error.
const STRATEGY_KEYS: &[&str] = &[
    "strategy",
    "bakeTimeInMinutes",
    "canaryConfiguration",
    "linearConfiguration",
    "alarms",
    "canaryAnalysis",
    "testTrafficTimeInMinutes",
];
const CIRCUIT_BREAKER_KEYS: &[&str] = &["enable", "rollback"];
const CANARY_KEYS: &[&str] = &["canaryPercent", "canaryBakeTimeInMinutes"];
const LINEAR_KEYS: &[&str] = &["stepPercent", "stepBakeTimeInMinutes"];
const ALARMS_KEYS: &[&str] = &["alarmNames", "enable", "rollback"];
const CANARY_ANALYSIS_KEYS: &[&str] = &[
    "maxErrorRateIncreasePercent",
    "maxP99LatencyIncreaseMs",
    "minRequests",
];
const ADVANCED_KEYS: &[&str] = &[
    "alternateTargetGroupArn",
    "productionListenerRule",
    "testListenerRule",
    "roleArn",
];
pub(super) const DEPLOYMENT_KEYS: &[&str] = &[
    "strategy",
    "trafficShift",
    "bakeTimeMinutes",
    "alternateTargetGroup",
    "productionListener",
    "testListener",
    "testTrafficMinutes",
    "canaryAnalysis",
    "alarms",
];
const STRATEGIES: &[&str] = &["ROLLING", "BLUE_GREEN", "LINEAR", "CANARY"];
const SHIFTING: &str = "a traffic-shifting strategy (BLUE_GREEN, LINEAR or CANARY)";
/// ECS's limit on bake times, minutes.
const MAX_MINUTES: f64 = 1440.0;
/// ECS's defaults for canary and linear steps.
const DEFAULT_CANARY: (f64, f64) = (5.0, 10.0);
const DEFAULT_LINEAR: (f64, f64) = (10.0, 6.0);

/// A number (fractions allowed) from `min` to `max`; `what` names the unit in messages.
fn number(
    value: &Value,
    min: f64,
    max: f64,
    what: &str,
    path: &str,
    errs: &mut FieldErrors,
) -> Option<f64> {
    match value.as_f64() {
        Some(n) if n.is_finite() && (min..=max).contains(&n) => Some(n),
        _ => {
            errs.push(
                path,
                format!(
                    "expected {what} from {min} to {max}, found {}",
                    describe(value)
                ),
            );
            None
        }
    }
}

fn mapping<'a>(
    value: &'a Value,
    keys: &[&str],
    path: &str,
    errs: &mut FieldErrors,
) -> Option<&'a Map<String, Value>> {
    let Some(obj) = value.as_object() else {
        errs.push(
            path,
            format!(
                "expected a mapping with {}, found {}",
                keys.join(", "),
                describe(value)
            ),
        );
        return None;
    };
    check_keys(obj, keys, path, errs);
    Some(obj)
}

/// ECS's `deploymentConfiguration`.
pub(super) fn deployment_configuration(
    value: &Value,
    path: &str,
    errs: &mut FieldErrors,
) -> Option<DeploymentConfiguration> {
    let obj = mapping(value, DEPLOYMENT_CONFIGURATION_KEYS, path, errs)?;
    let percent = |key: &str, min: u64, max: u64, errs: &mut FieldErrors| {
        get(obj, key)
            .and_then(|v| integer(v, min, max, &format!("{path}.{key}"), errs))
            .and_then(|n| u32::try_from(n).ok())
    };
    let minimum_healthy_percent = percent("minimumHealthyPercent", 0, 100, errs);
    let maximum_percent = percent("maximumPercent", 100, 1000, errs);
    let deployment_circuit_breaker = get(obj, "deploymentCircuitBreaker").and_then(|v| {
        let cb_path = format!("{path}.deploymentCircuitBreaker");
        let cb = mapping(v, CIRCUIT_BREAKER_KEYS, &cb_path, errs)?;
        let flag = |key: &str, errs: &mut FieldErrors| {
            get(cb, key)
                .and_then(|v| boolean(v, &format!("{cb_path}.{key}"), errs))
                .unwrap_or(false)
        };
        Some(DeploymentCircuitBreaker {
            enable: flag("enable", errs),
            rollback: flag("rollback", errs),
        })
    });
    let strategy = get(obj, "strategy").and_then(|v| match v.as_str() {
        Some(s) if STRATEGIES.contains(&s) => Some(s.to_string()),
        _ => {
            errs.push(
                format!("{path}.strategy"),
                format!(
                    "expected one of {}, found {}",
                    STRATEGIES.join(", "),
                    describe(v)
                ),
            );
            None
        }
    });
    let strategy_name = strategy.as_deref().unwrap_or("ROLLING");
    let shifting = strategy_name != "ROLLING";
    // An invalid strategy is reported once, not again through every key it would allow.
    let strategy_known = get(obj, "strategy").is_none() || strategy.is_some();
    let only_with = |key: &str, allowed: bool, wanted: &str, errs: &mut FieldErrors| {
        if !allowed && strategy_known && get(obj, key).is_some() {
            errs.push(
                format!("{path}.{key}"),
                format!("expected only with {wanted}, found strategy {strategy_name}"),
            );
        }
    };
    only_with("bakeTimeInMinutes", shifting, SHIFTING, errs);
    only_with("canaryAnalysis", shifting, SHIFTING, errs);
    only_with("testTrafficTimeInMinutes", shifting, SHIFTING, errs);
    only_with(
        "canaryConfiguration",
        strategy_name == "CANARY",
        "strategy CANARY",
        errs,
    );
    only_with(
        "linearConfiguration",
        strategy_name == "LINEAR",
        "strategy LINEAR",
        errs,
    );
    let bake_time_in_minutes = get(obj, "bakeTimeInMinutes").and_then(|v| {
        number(
            v,
            0.0,
            MAX_MINUTES,
            "minutes",
            &format!("{path}.bakeTimeInMinutes"),
            errs,
        )
    });
    let test_traffic_time_in_minutes = get(obj, "testTrafficTimeInMinutes").and_then(|v| {
        number(
            v,
            0.0,
            MAX_MINUTES,
            "minutes",
            &format!("{path}.testTrafficTimeInMinutes"),
            errs,
        )
    });
    let steps = |key: &str, keys: &[&str], default: (f64, f64), errs: &mut FieldErrors| {
        let step_path = format!("{path}.{key}");
        let v = get(obj, key)?;
        let m = mapping(v, keys, &step_path, errs)?;
        let percent = get(m, keys[0])
            .and_then(|v| {
                number(
                    v,
                    1.0,
                    100.0,
                    "a percentage",
                    &format!("{step_path}.{}", keys[0]),
                    errs,
                )
            })
            .unwrap_or(default.0);
        let minutes = get(m, keys[1])
            .and_then(|v| {
                number(
                    v,
                    0.0,
                    MAX_MINUTES,
                    "minutes",
                    &format!("{step_path}.{}", keys[1]),
                    errs,
                )
            })
            .unwrap_or(default.1);
        Some((percent, minutes))
    };
    let canary_configuration =
        steps("canaryConfiguration", CANARY_KEYS, DEFAULT_CANARY, errs).map(|(p, m)| {
            CanaryConfiguration {
                canary_percent: p,
                canary_bake_time_in_minutes: m,
            }
        });
    let linear_configuration =
        steps("linearConfiguration", LINEAR_KEYS, DEFAULT_LINEAR, errs).map(|(p, m)| {
            LinearConfiguration {
                step_percent: p,
                step_bake_time_in_minutes: m,
            }
        });
    let alarms = get(obj, "alarms").and_then(|v| {
        let a_path = format!("{path}.alarms");
        let a = mapping(v, ALARMS_KEYS, &a_path, errs)?;
        let alarm_names = get(a, "alarmNames")
            .map(|v| alarm_names(v, &format!("{a_path}.alarmNames"), errs))
            .unwrap_or_default();
        let flag = |key: &str, errs: &mut FieldErrors| {
            get(a, key)
                .and_then(|v| boolean(v, &format!("{a_path}.{key}"), errs))
                .unwrap_or(false)
        };
        Some(DeploymentAlarms {
            alarm_names,
            enable: flag("enable", errs),
            rollback: flag("rollback", errs),
        })
    });
    let canary_analysis = get(obj, "canaryAnalysis")
        .and_then(|v| canary_analysis(v, &format!("{path}.canaryAnalysis"), errs));
    Some(DeploymentConfiguration {
        deployment_circuit_breaker,
        maximum_percent,
        minimum_healthy_percent,
        strategy,
        bake_time_in_minutes,
        canary_configuration,
        linear_configuration,
        alarms,
        canary_analysis,
        test_traffic_time_in_minutes,
        extra: Map::new(),
    })
}

fn alarm_names(value: &Value, path: &str, errs: &mut FieldErrors) -> Vec<String> {
    let Some(list) = value.as_array() else {
        errs.push(
            path,
            format!(
                "expected a list of CloudWatch alarm names, found {}",
                describe(value)
            ),
        );
        return Vec::new();
    };
    let mut out = Vec::new();
    for (i, v) in list.iter().enumerate() {
        match v.as_str() {
            Some(s) if !s.trim().is_empty() && s.len() <= 255 => out.push(s.to_string()),
            _ => errs.push(
                format!("{path}[{i}]"),
                format!(
                    "expected an alarm name of 1-255 characters, found {}",
                    describe(v)
                ),
            ),
        }
    }
    out
}

fn canary_analysis(value: &Value, path: &str, errs: &mut FieldErrors) -> Option<CanaryAnalysis> {
    let obj = mapping(value, CANARY_ANALYSIS_KEYS, path, errs)?;
    let mut out = CanaryAnalysis::default();
    if let Some(v) = get(obj, "maxErrorRateIncreasePercent") {
        if let Some(n) = number(
            v,
            0.0,
            100.0,
            "percentage points",
            &format!("{path}.maxErrorRateIncreasePercent"),
            errs,
        ) {
            out.max_error_rate_increase_percent = n;
        }
    }
    if let Some(v) = get(obj, "maxP99LatencyIncreaseMs") {
        if let Some(n) = number(
            v,
            0.0,
            3_600_000.0,
            "milliseconds",
            &format!("{path}.maxP99LatencyIncreaseMs"),
            errs,
        ) {
            out.max_p99_latency_increase_ms = n;
        }
    }
    if let Some(v) = get(obj, "minRequests") {
        if let Some(n) = integer(v, 0, 1_000_000_000, &format!("{path}.minRequests"), errs) {
            out.min_requests = n;
        }
    }
    Some(out)
}

/// The raw `advancedConfiguration` of a `loadBalancers` entry (ECS's, with ARNs).
pub(super) fn advanced_configuration(
    value: &Value,
    path: &str,
    errs: &mut FieldErrors,
) -> Option<AdvancedConfiguration> {
    let obj = mapping(value, ADVANCED_KEYS, path, errs)?;
    let arn = |key: &str, required: bool, errs: &mut FieldErrors| match get(obj, key) {
        None if required => {
            errs.push(
                format!("{path}.{key}"),
                "expected an ARN, found nothing".to_string(),
            );
            None
        }
        None => None,
        Some(Value::String(s)) if s.starts_with("arn:") => Some(s.clone()),
        Some(v) => {
            errs.push(
                format!("{path}.{key}"),
                format!("expected an ARN (arn:...), found {}", describe(v)),
            );
            None
        }
    };
    Some(AdvancedConfiguration {
        alternate_target_group_arn: arn("alternateTargetGroupArn", true, errs).unwrap_or_default(),
        production_listener_rule: arn("productionListenerRule", true, errs).unwrap_or_default(),
        test_listener_rule: arn("testListenerRule", false, errs),
        role_arn: arn("roleArn", false, errs),
    })
}

/// A CodeDeploy-style traffic shift.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum TrafficShift {
    AllAtOnce,
    Canary { percent: f64, minutes: f64 },
    Linear { percent: f64, minutes: f64 },
}

/// `AllAtOnce`, `Canary<P>Percent<M>Minutes` or `Linear<P>PercentEvery<M>Minutes` (CodeDeploy's
/// names; the `CodeDeployDefault.ECS` prefix may be given). Ranges are checked by the caller.
pub(crate) fn parse_traffic_shift(text: &str) -> Option<TrafficShift> {
    let name = text.strip_prefix("CodeDeployDefault.").unwrap_or(text);
    let name = name.strip_prefix("ECS").unwrap_or(name);
    if name == "AllAtOnce" {
        return Some(TrafficShift::AllAtOnce);
    }
    let minutes = |s: &str| -> Option<f64> {
        let n = s
            .strip_suffix("Minutes")
            .or_else(|| s.strip_suffix("Minute"))?;
        decimal(n)
    };
    if let Some(rest) = name.strip_prefix("Canary") {
        let (p, m) = rest.split_once("Percent")?;
        return Some(TrafficShift::Canary {
            percent: decimal(p)?,
            minutes: minutes(m)?,
        });
    }
    if let Some(rest) = name.strip_prefix("Linear") {
        let (p, m) = rest.split_once("PercentEvery")?;
        return Some(TrafficShift::Linear {
            percent: decimal(p)?,
            minutes: minutes(m)?,
        });
    }
    None
}

/// Digits with an optional fraction (`10`, `0.5`); no sign, no exponent.
fn decimal(s: &str) -> Option<f64> {
    let ok = !s.is_empty()
        && !s.starts_with('.')
        && !s.ends_with('.')
        && s.chars().all(|c| c.is_ascii_digit() || c == '.')
        && s.matches('.').count() <= 1;
    if ok {
        s.parse().ok()
    } else {
        None
    }
}

/// `<lb>:<port>` or `<lb>:<port>/<priority>`.
pub(crate) fn parse_listener_ref(text: &str) -> Option<ListenerRuleRef> {
    let (lb, rest) = text.rsplit_once(':')?;
    let (port, priority) = match rest.split_once('/') {
        Some((port, priority)) => (port, Some(priority.parse::<u32>().ok()?)),
        None => (rest, None),
    };
    if lb.is_empty() {
        return None;
    }
    Some(ListenerRuleRef {
        load_balancer: lb.to_string(),
        port: port.parse().ok().filter(|p| *p > 0)?,
        priority,
    })
}

/// Applies the service's `deployment` section to its deployment configuration and first load
/// balancer. `dc_value` is the raw `deploymentConfiguration` (to refuse mixing the two forms).
pub(super) fn deployment(
    value: &Value,
    path: &str,
    dc_value: Option<&Value>,
    refs: &StackRefs<'_>,
    dc: &mut Option<DeploymentConfiguration>,
    load_balancers: &mut [ServiceLoadBalancer],
    errs: &mut FieldErrors,
) {
    let Some(obj) = mapping(value, DEPLOYMENT_KEYS, path, errs) else {
        return;
    };
    let service_path = path.strip_suffix(".deployment").unwrap_or(path);
    if let Some(dc_obj) = dc_value.and_then(Value::as_object) {
        let mixed: Vec<&str> = STRATEGY_KEYS
            .iter()
            .copied()
            .filter(|k| get(dc_obj, k).is_some())
            .collect();
        if !mixed.is_empty() {
            errs.push(
                path,
                format!(
                    "expected either deployment or deploymentConfiguration's {} keys, found both (deploymentConfiguration.{})",
                    STRATEGY_KEYS.join("/"),
                    mixed.join(", deploymentConfiguration.")
                ),
            );
        }
    }
    for (i, lb) in load_balancers.iter().enumerate() {
        if lb.load_balancer.advanced_configuration.is_some() {
            errs.push(
                format!("{service_path}.loadBalancers[{i}].advancedConfiguration"),
                "expected no advancedConfiguration when the service has a deployment section (it sets alternateTargetGroup and productionListener), found one",
            );
        }
    }

    let mut config = dc.take().unwrap_or_default();
    let (strategy, shift) = match (get(obj, "strategy"), get(obj, "trafficShift")) {
        (Some(_), Some(_)) => {
            errs.push(path, "expected either strategy or trafficShift, found both");
            (None, None)
        }
        (None, None) => {
            errs.push(
                format!("{path}.strategy"),
                "expected rolling, blue-green, linear or canary (or a trafficShift such as Linear10PercentEvery1Minutes), found nothing",
            );
            (None, None)
        }
        (Some(v), None) => {
            let s = match v.as_str() {
                Some("rolling") => Some("ROLLING"),
                Some("blue-green") => Some("BLUE_GREEN"),
                Some("linear") => Some("LINEAR"),
                Some("canary") => Some("CANARY"),
                _ => {
                    errs.push(
                        format!("{path}.strategy"),
                        format!(
                            "expected rolling, blue-green, linear or canary, found {}",
                            describe(v)
                        ),
                    );
                    None
                }
            };
            (s, None)
        }
        (None, Some(v)) => {
            let t_path = format!("{path}.trafficShift");
            match v.as_str().and_then(parse_traffic_shift) {
                None => {
                    errs.push(
                        &t_path,
                        format!(
                            "expected AllAtOnce, Canary<P>Percent<M>Minutes or Linear<P>PercentEvery<M>Minutes (e.g. Canary10Percent5Minutes), found {}",
                            describe(v)
                        ),
                    );
                    (None, None)
                }
                Some(shift) => {
                    let (percent, minutes, strategy) = match shift {
                        TrafficShift::AllAtOnce => (100.0, 0.0, "BLUE_GREEN"),
                        TrafficShift::Canary { percent, minutes } => (percent, minutes, "CANARY"),
                        TrafficShift::Linear { percent, minutes } => (percent, minutes, "LINEAR"),
                    };
                    let mut ok = true;
                    if !(1.0..=100.0).contains(&percent) {
                        errs.push(
                            &t_path,
                            format!(
                                "expected a percentage from 1 to 100, found {percent} in {}",
                                describe(v)
                            ),
                        );
                        ok = false;
                    }
                    if minutes > MAX_MINUTES {
                        errs.push(
                            &t_path,
                            format!(
                                "expected minutes from 0 to {MAX_MINUTES}, found {minutes} in {}",
                                describe(v)
                            ),
                        );
                        ok = false;
                    }
                    (Some(strategy), ok.then_some(shift))
                }
            }
        }
    };
    let shifting = strategy.is_some_and(|s| s != "ROLLING");
    if let Some(s) = strategy {
        config.strategy = Some(s.to_string());
    }
    // `strategy: linear` / `canary` take ECS's default steps, written out so that the service
    // says what it does.
    let shift = match (strategy, shift, get(obj, "trafficShift")) {
        (Some("LINEAR"), None, None) => Some(TrafficShift::Linear {
            percent: DEFAULT_LINEAR.0,
            minutes: DEFAULT_LINEAR.1,
        }),
        (Some("CANARY"), None, None) => Some(TrafficShift::Canary {
            percent: DEFAULT_CANARY.0,
            minutes: DEFAULT_CANARY.1,
        }),
        _ => shift,
    };
    match shift {
        Some(TrafficShift::Canary { percent, minutes }) => {
            config.canary_configuration = Some(CanaryConfiguration {
                canary_percent: percent,
                canary_bake_time_in_minutes: minutes,
            });
        }
        Some(TrafficShift::Linear { percent, minutes }) => {
            config.linear_configuration = Some(LinearConfiguration {
                step_percent: percent,
                step_bake_time_in_minutes: minutes,
            });
        }
        _ => {}
    }
    if let Some(v) = get(obj, "bakeTimeMinutes") {
        config.bake_time_in_minutes = number(
            v,
            0.0,
            MAX_MINUTES,
            "minutes",
            &format!("{path}.bakeTimeMinutes"),
            errs,
        );
    }
    if let Some(v) = get(obj, "testTrafficMinutes") {
        config.test_traffic_time_in_minutes = number(
            v,
            0.0,
            MAX_MINUTES,
            "minutes",
            &format!("{path}.testTrafficMinutes"),
            errs,
        );
    }
    if let Some(v) = get(obj, "canaryAnalysis") {
        config.canary_analysis = canary_analysis(v, &format!("{path}.canaryAnalysis"), errs);
    }
    if let Some(v) = get(obj, "alarms") {
        config.alarms = Some(DeploymentAlarms {
            alarm_names: alarm_names(v, &format!("{path}.alarms"), errs),
            enable: true,
            rollback: true,
        });
    }
    if strategy == Some("ROLLING") {
        for key in [
            "bakeTimeMinutes",
            "canaryAnalysis",
            "alternateTargetGroup",
            "productionListener",
            "testListener",
            "testTrafficMinutes",
        ] {
            if get(obj, key).is_some() {
                errs.push(
                    format!("{path}.{key}"),
                    "expected only with a traffic-shifting strategy (blue-green, linear, canary or a trafficShift), found strategy rolling",
                );
            }
        }
    }
    *dc = Some(config);
    if !shifting {
        return;
    }

    // The resources traffic moves between.
    let with_group: Vec<&ServiceLoadBalancer> = load_balancers
        .iter()
        .filter(|lb| lb.target_group.is_some())
        .collect();
    let production_group = match (load_balancers.len(), with_group.first()) {
        (1, Some(lb)) => lb.target_group.clone(),
        _ => {
            errs.push(
                format!("{service_path}.loadBalancers"),
                format!(
                    "expected exactly one entry with a targetGroup of the stack for a traffic-shifting deployment, found {} entries ({} with a targetGroup)",
                    load_balancers.len(),
                    with_group.len()
                ),
            );
            None
        }
    };
    let alternate = match get(obj, "alternateTargetGroup") {
        None => {
            errs.push(
                format!("{path}.alternateTargetGroup"),
                format!(
                    "expected the target group new tasks start in (one of the stack's targetGroups: {}), found nothing",
                    super::elb::names(refs.target_groups)
                ),
            );
            None
        }
        Some(Value::String(name)) if refs.target_groups.contains_key(name) => {
            if production_group.as_ref() == Some(name) {
                errs.push(
                    format!("{path}.alternateTargetGroup"),
                    format!("expected a target group other than the service's own ({name}), found {name:?}"),
                );
                None
            } else {
                Some(name.clone())
            }
        }
        Some(v) => {
            errs.push(
                format!("{path}.alternateTargetGroup"),
                format!(
                    "expected the name of one of the stack's targetGroups ({}), found {}",
                    super::elb::names(refs.target_groups),
                    describe(v)
                ),
            );
            None
        }
    };
    let pair: Vec<&str> = production_group
        .iter()
        .chain(alternate.iter())
        .map(String::as_str)
        .collect();
    let production = match get(obj, "productionListener") {
        None => {
            errs.push(
                format!("{path}.productionListener"),
                "expected \"<load balancer>:<port>\" (its default rule) or \"<load balancer>:<port>/<priority>\" (a rule) of the stack, found nothing",
            );
            None
        }
        Some(v) => listener_ref(v, &format!("{path}.productionListener"), refs, &pair, errs),
    };
    let test = get(obj, "testListener")
        .and_then(|v| listener_ref(v, &format!("{path}.testListener"), refs, &pair, errs));
    if test.is_none()
        && get(obj, "testListener").is_none()
        && get(obj, "testTrafficMinutes").is_some()
    {
        errs.push(
            format!("{path}.testTrafficMinutes"),
            "expected only with a testListener (the listener test traffic comes in on), found no testListener",
        );
    }
    if let (Some(p), Some(t)) = (&production, &test) {
        if p == t {
            errs.push(
                format!("{path}.testListener"),
                format!("expected a listener or rule other than the productionListener, found {t}"),
            );
        }
    }
    if let (Some(alternate), Some(production), [lb]) = (alternate, production, load_balancers) {
        if lb.target_group.is_some() {
            lb.traffic = Some(TrafficShiftTargets {
                alternate_target_group: alternate,
                production_listener: production,
                test_listener: test,
            });
        }
    }
}

/// A `<lb>:<port>[/<priority>]` of the stack whose action forwards only to the service's target
/// group and its alternate (`pair`).
fn listener_ref(
    value: &Value,
    path: &str,
    refs: &StackRefs<'_>,
    pair: &[&str],
    errs: &mut FieldErrors,
) -> Option<ListenerRuleRef> {
    let Some(r) = value.as_str().and_then(parse_listener_ref) else {
        errs.push(
            path,
            format!(
                "expected \"<load balancer>:<port>\" or \"<load balancer>:<port>/<priority>\", found {}",
                describe(value)
            ),
        );
        return None;
    };
    let Some(lb) = refs.load_balancers.get(&r.load_balancer) else {
        errs.push(
            path,
            format!(
                "expected a load balancer of the stack ({}), found {:?}",
                super::elb::names(refs.load_balancers),
                r.load_balancer
            ),
        );
        return None;
    };
    let Some(listener) = lb.listeners.iter().find(|l| l.port == r.port) else {
        let ports: Vec<String> = lb.listeners.iter().map(|l| l.port.to_string()).collect();
        errs.push(
            path,
            format!(
                "expected a listener port of load balancer {} ({}), found {}",
                r.load_balancer,
                if ports.is_empty() {
                    "none declared".to_string()
                } else {
                    ports.join(", ")
                },
                r.port
            ),
        );
        return None;
    };
    let action: &ActionSpec = match r.priority {
        None => &listener.default_action,
        Some(p) => match listener.rules.iter().find(|rule| rule.priority == p) {
            Some(rule) => &rule.action,
            None => {
                let prios: Vec<String> = listener
                    .rules
                    .iter()
                    .map(|r| r.priority.to_string())
                    .collect();
                errs.push(
                    path,
                    format!(
                        "expected a rule priority of listener {}:{} ({}), found {p}",
                        r.load_balancer,
                        r.port,
                        if prios.is_empty() {
                            "none declared".to_string()
                        } else {
                            prios.join(", ")
                        }
                    ),
                );
                return None;
            }
        },
    };
    let groups = action.target_group_names();
    if pair.len() == 2 && (groups.is_empty() || groups.iter().any(|g| !pair.contains(g))) {
        errs.push(
            path,
            format!(
                "expected a listener or rule that forwards to target group {} (or {}), found one that does {}",
                pair[0],
                pair[1],
                action.describe()
            ),
        );
    }
    Some(r)
}

/// A raw `deploymentConfiguration` with a traffic-shifting strategy needs one load balancer
/// entry with an `advancedConfiguration`.
pub(super) fn check_raw_shifting(
    dc: Option<&DeploymentConfiguration>,
    load_balancers: &[ServiceLoadBalancer],
    service_path: &str,
    errs: &mut FieldErrors,
) {
    let Some(dc) = dc.filter(|dc| dc.shifts_traffic()) else {
        return;
    };
    let n = load_balancers
        .iter()
        .filter(|lb| lb.load_balancer.advanced_configuration.is_some())
        .count();
    if n != 1 {
        errs.push(
            format!("{service_path}.loadBalancers"),
            format!(
                "expected one entry with an advancedConfiguration (alternateTargetGroupArn, productionListenerRule) for strategy {} (or use the service's deployment section with stack names), found {n}",
                dc.strategy()
            ),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn traffic_shift_names() {
        let cases: &[(&str, Option<TrafficShift>)] = &[
            ("AllAtOnce", Some(TrafficShift::AllAtOnce)),
            (
                "CodeDeployDefault.ECSAllAtOnce",
                Some(TrafficShift::AllAtOnce),
            ),
            (
                "Canary10Percent5Minutes",
                Some(TrafficShift::Canary {
                    percent: 10.0,
                    minutes: 5.0,
                }),
            ),
            (
                "Canary10Percent0.5Minutes",
                Some(TrafficShift::Canary {
                    percent: 10.0,
                    minutes: 0.5,
                }),
            ),
            (
                "CodeDeployDefault.ECSLinear10PercentEvery1Minutes",
                Some(TrafficShift::Linear {
                    percent: 10.0,
                    minutes: 1.0,
                }),
            ),
            (
                "Linear50PercentEvery0.05Minutes",
                Some(TrafficShift::Linear {
                    percent: 50.0,
                    minutes: 0.05,
                }),
            ),
            (
                "Linear12.5PercentEvery1Minute",
                Some(TrafficShift::Linear {
                    percent: 12.5,
                    minutes: 1.0,
                }),
            ),
            ("Canary10Percent", None),
            ("CanaryPercent5Minutes", None),
            ("Canary-1Percent5Minutes", None),
            ("Canary1e2Percent5Minutes", None),
            ("Linear10Percent1Minutes", None),
            ("Linear10PercentEvery.5Minutes", None),
            ("AllAtOnceNow", None),
            ("allatonce", None),
            ("", None),
        ];
        for (text, expected) in cases {
            assert_eq!(parse_traffic_shift(text), *expected, "{text}");
        }
    }

    #[test]
    fn listener_refs() {
        let r = |lb: &str, port: u16, priority: Option<u32>| ListenerRuleRef {
            load_balancer: lb.into(),
            port,
            priority,
        };
        let cases: &[(&str, Option<ListenerRuleRef>)] = &[
            ("web:8080", Some(r("web", 8080, None))),
            ("web:8080/10", Some(r("web", 8080, Some(10)))),
            ("web", None),
            (":8080", None),
            ("web:0", None),
            ("web:http", None),
            ("web:8080/x", None),
            ("web:70000", None),
        ];
        for (text, expected) in cases {
            assert_eq!(parse_listener_ref(text), *expected, "{text}");
            if let Some(e) = expected {
                assert_eq!(e.to_string(), *text);
            }
        }
    }
}
