//! The load balancer part of the plan: target groups, load balancers, listeners (keyed by load
//! balancer and port) and rules (keyed by load balancer, port and priority), compared with the
//! ELBv2 resources that exist now. Only resources tagged `berth:stack=<this stack>` are changed
//! or deleted; untagged ones of a declared name are adopted, other stacks' are conflicts.

use super::{Change, ChangeKind, Resource};
use crate::elb::{ActionSpec, ConditionsSpec, HealthCheckSpec, TargetGroupSpec};
use crate::spec::{ArnResolver, ListenerRuleRef, Stack, STACK_TAG};
use berth_elb::attributes::target_group_defaults;
use berth_elb::{Action, ElbState, HealthCheckSettings};
use std::collections::{BTreeMap, BTreeSet};

/// One ELBv2 step of a plan. Resources that exist are named by ARN; those the plan creates by
/// stack name (and port), resolved through [`ElbRefs`] while applying.
#[derive(Debug, Clone, PartialEq)]
pub enum ElbOp {
    /// CreateTargetGroup (HTTP, tagged), then ModifyTargetGroupAttributes with the file's
    /// attributes when it sets any.
    CreateTargetGroup {
        name: String,
        spec: TargetGroupSpec,
    },
    /// ModifyTargetGroup with every health check field (when `health_check` is set), then
    /// ModifyTargetGroupAttributes with the changed `attributes` (when any), then AddTags with
    /// the stack tag (when `tag`, i.e. the target group is adopted).
    ModifyTargetGroup {
        arn: String,
        health_check: Option<HealthCheckSpec>,
        attributes: BTreeMap<String, String>,
        tag: bool,
    },
    /// A target group whose port changes: point the listeners and rules that forward to it at a
    /// temporary `503` fixed response, DeleteTargetGroup, then create it anew as
    /// [`ElbOp::CreateTargetGroup`] does. Later listener and rule steps forward to it again.
    ReplaceTargetGroup {
        arn: String,
        name: String,
        spec: TargetGroupSpec,
        detach_listeners: Vec<String>,
        detach_rules: Vec<String>,
    },
    DeleteTargetGroup {
        arn: String,
    },
    /// CreateLoadBalancer (application, internet-facing, tagged).
    CreateLoadBalancer {
        name: String,
    },
    /// AddTags with the stack tag: an untagged load balancer joins the stack.
    TagLoadBalancer {
        arn: String,
    },
    DeleteLoadBalancer {
        arn: String,
    },
    /// CreateListener (HTTP, tagged) on the named load balancer.
    CreateListener {
        load_balancer: String,
        port: u16,
        default_action: ActionSpec,
    },
    /// ModifyListener with new default actions.
    ModifyListener {
        arn: String,
        default_action: ActionSpec,
    },
    DeleteListener {
        arn: String,
    },
    /// CreateRule (tagged) on the listener of `load_balancer` on `port`.
    CreateRule {
        load_balancer: String,
        port: u16,
        priority: u32,
        conditions: ConditionsSpec,
        action: ActionSpec,
    },
    /// ModifyRule with new conditions and actions.
    ModifyRule {
        arn: String,
        conditions: ConditionsSpec,
        action: ActionSpec,
    },
    DeleteRule {
        arn: String,
    },
}

/// ARNs of ELBv2 resources by stack name, filled from the current state and kept up to date
/// while a plan is applied (record each created resource's ARN).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ElbRefs {
    pub target_groups: BTreeMap<String, String>,
    pub load_balancers: BTreeMap<String, String>,
    /// By (load balancer name, port).
    pub listeners: BTreeMap<(String, u16), String>,
    /// Non-default rules by (load balancer name, port, priority).
    pub rules: BTreeMap<(String, u16, u32), String>,
}

impl ElbRefs {
    /// Every target group, load balancer and listener of `state`, by name.
    pub fn from_state(state: &ElbState) -> ElbRefs {
        let mut refs = ElbRefs::default();
        for tg in &state.target_groups {
            refs.target_groups.insert(tg.name.clone(), tg.arn.clone());
        }
        for lb in &state.load_balancers {
            refs.load_balancers.insert(lb.name.clone(), lb.arn.clone());
        }
        for l in &state.listeners {
            if let Some(lb) = state
                .load_balancers
                .iter()
                .find(|lb| lb.arn == l.load_balancer_arn)
            {
                refs.listeners
                    .insert((lb.name.clone(), l.port), l.arn.clone());
                for r in state.rules.iter().filter(|r| r.listener_arn == l.arn) {
                    if let Some(priority) = r.priority {
                        refs.rules
                            .insert((lb.name.clone(), l.port, priority), r.arn.clone());
                    }
                }
            }
        }
        refs
    }

    /// The target group's ARN; its name when unknown (the API then refuses it by name).
    pub fn target_group_arn(&self, name: &str) -> String {
        self.target_groups
            .get(name)
            .cloned()
            .unwrap_or_else(|| name.to_string())
    }

    /// The load balancer's ARN; its name when unknown.
    pub fn load_balancer_arn(&self, name: &str) -> String {
        self.load_balancers
            .get(name)
            .cloned()
            .unwrap_or_else(|| name.to_string())
    }

    /// The ARN of the listener of `load_balancer` on `port`; a description when unknown.
    pub fn listener_arn(&self, load_balancer: &str, port: u16) -> String {
        self.listeners
            .get(&(load_balancer.to_string(), port))
            .cloned()
            .unwrap_or_else(|| format!("{load_balancer}:{port}"))
    }

    /// Names of the resources whose ARNs are known, by ARN: target groups by name, listeners as
    /// `<lb>:<port>`, rules as `<lb>:<port>/<priority>`, load balancers by name.
    pub fn names_by_arn(&self) -> BTreeMap<String, String> {
        let mut out = BTreeMap::new();
        for (name, arn) in self.target_groups.iter().chain(&self.load_balancers) {
            out.insert(arn.clone(), name.clone());
        }
        for ((lb, port), arn) in &self.listeners {
            out.insert(arn.clone(), format!("{lb}:{port}"));
        }
        for ((lb, port, priority), arn) in &self.rules {
            out.insert(arn.clone(), format!("{lb}:{port}/{priority}"));
        }
        out
    }
}

impl ArnResolver for ElbRefs {
    fn target_group(&self, name: &str) -> Option<String> {
        self.target_groups.get(name).cloned()
    }

    fn listener_rule(&self, rule: &ListenerRuleRef) -> Option<String> {
        let lb = rule.load_balancer.clone();
        match rule.priority {
            None => self.listeners.get(&(lb, rule.port)).cloned(),
            Some(p) => self.rules.get(&(lb, rule.port, p)).cloned(),
        }
    }
}

/// The ELBv2 part of a plan.
#[derive(Debug, Default)]
pub(crate) struct ElbPlan {
    /// Creations and updates, to run before the services: target groups, load balancers,
    /// listeners, rules.
    pub before: Vec<Change>,
    /// Deletions, to run after the services: rules, listeners, load balancers, target groups.
    pub after: Vec<Change>,
    pub conflicts: Vec<String>,
    /// ARNs of the stack's target groups that exist and keep their ARN.
    pub stable_target_groups: BTreeMap<String, String>,
}

fn elb_change(
    kind: ChangeKind,
    resource: Resource,
    name: String,
    details: Vec<String>,
    op: ElbOp,
) -> Change {
    Change {
        kind,
        resource,
        name,
        service: String::new(),
        details,
        elb: Some(op),
        scaling: None,
    }
}

/// True when `have` and `want` both forward only within the blue/green pair that a service's
/// deployments shift the listener or rule `name` between: the weights are the deployments' to
/// set, not the file's.
fn shifted_by_deployments(
    shifted: &BTreeMap<String, [&str; 2]>,
    name: &str,
    have: &Option<ActionSpec>,
    want: &Option<ActionSpec>,
) -> bool {
    let Some(pair) = shifted.get(name) else {
        return false;
    };
    let within = |a: &Option<ActionSpec>| {
        a.as_ref().is_some_and(|a| {
            let groups = a.target_group_names();
            !groups.is_empty() && groups.iter().all(|g| pair.contains(g))
        })
    };
    within(have) && within(want)
}

/// Whole seconds, as ELBv2 describes health check intervals and timeouts (berth's fractional
/// seconds round up).
fn whole_seconds(s: f64) -> i64 {
    s.ceil() as i64
}

/// Numbers compare as numbers (`1` = `1.0`), everything else as text.
fn same_value(a: &str, b: &str) -> bool {
    a == b || matches!((a.parse::<f64>(), b.parse::<f64>()), (Ok(x), Ok(y)) if x == y)
}

fn health_check_details(
    current: &HealthCheckSettings,
    desired: &HealthCheckSettings,
) -> Vec<String> {
    let mut out = Vec::new();
    let mut field = |name: &str, changed: bool, a: String, b: String| {
        if changed {
            out.push(format!("healthCheck.{name}: {a} -> {b}"));
        }
    };
    field(
        "enabled",
        current.enabled != desired.enabled,
        current.enabled.to_string(),
        desired.enabled.to_string(),
    );
    field(
        "path",
        current.path != desired.path,
        format!("{:?}", current.path),
        format!("{:?}", desired.path),
    );
    field(
        "port",
        current.port != desired.port,
        current.port.clone(),
        desired.port.clone(),
    );
    field(
        "intervalSeconds",
        whole_seconds(current.interval_seconds) != whole_seconds(desired.interval_seconds),
        current.interval_seconds.to_string(),
        desired.interval_seconds.to_string(),
    );
    field(
        "timeoutSeconds",
        whole_seconds(current.timeout_seconds) != whole_seconds(desired.timeout_seconds),
        current.timeout_seconds.to_string(),
        desired.timeout_seconds.to_string(),
    );
    field(
        "healthyThreshold",
        current.healthy_threshold != desired.healthy_threshold,
        current.healthy_threshold.to_string(),
        desired.healthy_threshold.to_string(),
    );
    field(
        "unhealthyThreshold",
        current.unhealthy_threshold != desired.unhealthy_threshold,
        current.unhealthy_threshold.to_string(),
        desired.unhealthy_threshold.to_string(),
    );
    field(
        "matcher",
        current.matcher != desired.matcher,
        format!("{:?}", current.matcher),
        format!("{:?}", desired.matcher),
    );
    out
}

fn target_group_summary(spec: &TargetGroupSpec) -> Vec<String> {
    let hc = spec.health_check.settings();
    let mut details = vec![
        format!("port: {}", spec.port),
        format!("healthCheck: {} every {}s", hc.path, hc.interval_seconds),
    ];
    for (k, v) in &spec.attributes {
        details.push(format!("{k}: {v}"));
    }
    details
}

/// The one action of a listener or rule as the stack would write it; `None` when it has no
/// action or one a stack cannot declare.
fn current_action(actions: &[Action], name_of: &dyn Fn(&str) -> String) -> Option<ActionSpec> {
    match actions {
        [one] => ActionSpec::from_elb(one, name_of).map(|a| a.normalized()),
        _ => None,
    }
}

fn describe_current(a: &Option<ActionSpec>) -> String {
    a.as_ref()
        .map(ActionSpec::describe)
        .unwrap_or_else(|| "(other actions)".to_string())
}

/// Compares the stack's load balancers and target groups with `current`.
pub(crate) fn plan_elb(stack: &Stack, current: &ElbState) -> ElbPlan {
    let mut out = ElbPlan::default();
    let owner = |arn: &str| -> Option<&str> {
        current
            .tags
            .get(arn)
            .and_then(|t| t.get(STACK_TAG))
            .map(String::as_str)
    };
    let ours = |arn: &str| owner(arn) == Some(stack.name.as_str());
    let name_of = |arn: &str| -> String {
        current
            .target_groups
            .iter()
            .find(|tg| tg.arn == arn)
            .map(|tg| tg.name.clone())
            .unwrap_or_else(|| arn.to_string())
    };

    // Target groups.
    let mut replaced: BTreeSet<String> = BTreeSet::new();
    for (name, spec) in &stack.target_groups {
        let Some(tg) = current.target_groups.iter().find(|tg| &tg.name == name) else {
            out.before.push(elb_change(
                ChangeKind::Create,
                Resource::TargetGroup,
                name.clone(),
                target_group_summary(spec),
                ElbOp::CreateTargetGroup {
                    name: name.clone(),
                    spec: spec.clone(),
                },
            ));
            continue;
        };
        let tag = match owner(&tg.arn) {
            Some(other) if other != stack.name => {
                out.conflicts.push(format!(
                    "target group {name} belongs to stack {other:?} (tag {STACK_TAG}), not to {:?}; remove it from one of the stacks",
                    stack.name
                ));
                continue;
            }
            Some(_) => false,
            None => true,
        };
        if tg.port != spec.port {
            replaced.insert(name.clone());
            let uses = |actions: &[Action]| {
                actions.iter().any(|a| {
                    a.target_group_arn.as_deref() == Some(tg.arn.as_str())
                        || a.forward_config.as_ref().is_some_and(|fc| {
                            fc.target_groups
                                .iter()
                                .any(|t| t.target_group_arn == tg.arn)
                        })
                })
            };
            out.before.push(elb_change(
                ChangeKind::Update,
                Resource::TargetGroup,
                name.clone(),
                vec![format!(
                    "port: {} -> {} (replaces the target group)",
                    tg.port, spec.port
                )],
                ElbOp::ReplaceTargetGroup {
                    arn: tg.arn.clone(),
                    name: name.clone(),
                    spec: spec.clone(),
                    detach_listeners: current
                        .listeners
                        .iter()
                        .filter(|l| uses(&l.default_actions))
                        .map(|l| l.arn.clone())
                        .collect(),
                    detach_rules: current
                        .rules
                        .iter()
                        .filter(|r| uses(&r.actions))
                        .map(|r| r.arn.clone())
                        .collect(),
                },
            ));
            continue;
        }
        out.stable_target_groups
            .insert(name.clone(), tg.arn.clone());
        let mut details = Vec::new();
        if tag {
            details.push(format!(
                "adopt: untagged target group {name} joins stack {}",
                stack.name
            ));
        }
        let hc_details = health_check_details(&tg.health_check, &spec.health_check.settings());
        let defaults = target_group_defaults();
        let now = current.attributes.get(&tg.arn);
        let mut attributes = BTreeMap::new();
        for (key, want) in spec.desired_attributes() {
            let have = now
                .and_then(|a| a.get(&key))
                .or_else(|| defaults.get(&key))
                .cloned()
                .unwrap_or_default();
            if !same_value(&have, &want) {
                details.push(format!("{key}: {have} -> {want}"));
                attributes.insert(key, want);
            }
        }
        let health_check = (!hc_details.is_empty()).then(|| spec.health_check.clone());
        details.splice(usize::from(tag)..usize::from(tag), hc_details);
        if !details.is_empty() {
            out.before.push(elb_change(
                ChangeKind::Update,
                Resource::TargetGroup,
                name.clone(),
                details,
                ElbOp::ModifyTargetGroup {
                    arn: tg.arn.clone(),
                    health_check,
                    attributes,
                    tag,
                },
            ));
        }
    }

    // Listeners and rules whose forward weights traffic-shifting deployments move: by
    // `<lb>:<port>[/<priority>]`, the two target groups they shift between.
    let mut shifted: BTreeMap<String, [&str; 2]> = BTreeMap::new();
    for spec in stack.services.values() {
        for lb in &spec.load_balancers {
            if let (Some(tg), Some(t)) = (&lb.target_group, &lb.traffic) {
                let pair = [tg.as_str(), t.alternate_target_group.as_str()];
                shifted.insert(t.production_listener.to_string(), pair);
                if let Some(test) = &t.test_listener {
                    shifted.insert(test.to_string(), pair);
                }
            }
        }
    }

    // Load balancers, their listeners and rules.
    let mut rule_deletes = Vec::new();
    let mut listener_deletes = Vec::new();
    let mut listeners_and_rules = Vec::new();
    for (lb_name, spec) in &stack.load_balancers {
        let existing = current.load_balancers.iter().find(|lb| &lb.name == lb_name);
        let lb_arn = match existing {
            None => {
                let ports: Vec<String> =
                    spec.listeners.iter().map(|l| l.port.to_string()).collect();
                out.before.push(elb_change(
                    ChangeKind::Create,
                    Resource::LoadBalancer,
                    lb_name.clone(),
                    vec![format!(
                        "listeners: {}",
                        if ports.is_empty() {
                            "none".to_string()
                        } else {
                            ports.join(", ")
                        }
                    )],
                    ElbOp::CreateLoadBalancer {
                        name: lb_name.clone(),
                    },
                ));
                None
            }
            Some(lb) => match owner(&lb.arn) {
                Some(other) if other != stack.name => {
                    out.conflicts.push(format!(
                        "load balancer {lb_name} belongs to stack {other:?} (tag {STACK_TAG}), not to {:?}; remove it from one of the stacks",
                        stack.name
                    ));
                    continue;
                }
                Some(_) => Some(lb.arn.clone()),
                None => {
                    out.before.push(elb_change(
                        ChangeKind::Update,
                        Resource::LoadBalancer,
                        lb_name.clone(),
                        vec![format!(
                            "adopt: untagged load balancer {lb_name} joins stack {}",
                            stack.name
                        )],
                        ElbOp::TagLoadBalancer {
                            arn: lb.arn.clone(),
                        },
                    ));
                    Some(lb.arn.clone())
                }
            },
        };
        let forwards_to_replaced = |a: &Option<ActionSpec>| {
            a.as_ref()
                .is_some_and(|a| a.target_group_names().iter().any(|n| replaced.contains(*n)))
        };
        for l in &spec.listeners {
            let listener_name = format!("{lb_name}:{}", l.port);
            if let Some(foreign) = current.listeners.iter().find(|cl| {
                cl.port == l.port
                    && Some(&cl.load_balancer_arn) != lb_arn.as_ref()
                    && !ours(&cl.load_balancer_arn)
            }) {
                let other = current
                    .load_balancers
                    .iter()
                    .find(|lb| lb.arn == foreign.load_balancer_arn)
                    .map(|lb| lb.name.clone())
                    .unwrap_or_else(|| foreign.load_balancer_arn.clone());
                out.conflicts.push(format!(
                    "listener {listener_name}: port {} is taken by load balancer {other}, which is not part of stack {:?} (load balancers share one address)",
                    l.port, stack.name
                ));
                continue;
            }
            let existing = lb_arn.as_ref().and_then(|arn| {
                current
                    .listeners
                    .iter()
                    .find(|cl| &cl.load_balancer_arn == arn && cl.port == l.port)
            });
            let Some(cl) = existing else {
                let mut details = vec![format!("default: {}", l.default_action.describe())];
                if !l.rules.is_empty() {
                    details.push(format!("rules: {}", l.rules.len()));
                }
                listeners_and_rules.push(elb_change(
                    ChangeKind::Create,
                    Resource::Listener,
                    listener_name.clone(),
                    details,
                    ElbOp::CreateListener {
                        load_balancer: lb_name.clone(),
                        port: l.port,
                        default_action: l.default_action.clone(),
                    },
                ));
                for r in &l.rules {
                    listeners_and_rules.push(elb_change(
                        ChangeKind::Create,
                        Resource::Rule,
                        format!("{listener_name}/{}", r.priority),
                        vec![format!(
                            "{} -> {}",
                            r.conditions.describe(),
                            r.action.describe()
                        )],
                        ElbOp::CreateRule {
                            load_balancer: lb_name.clone(),
                            port: l.port,
                            priority: r.priority,
                            conditions: r.conditions.clone(),
                            action: r.action.clone(),
                        },
                    ));
                }
                continue;
            };
            let have = current_action(&cl.default_actions, &name_of);
            let want = Some(l.default_action.normalized());
            let differs =
                have != want && !shifted_by_deployments(&shifted, &listener_name, &have, &want);
            if differs || forwards_to_replaced(&want) {
                let detail = if differs {
                    format!(
                        "default: {} -> {}",
                        describe_current(&have),
                        l.default_action.describe()
                    )
                } else {
                    format!(
                        "default: {} (target group replaced)",
                        l.default_action.describe()
                    )
                };
                listeners_and_rules.push(elb_change(
                    ChangeKind::Update,
                    Resource::Listener,
                    listener_name.clone(),
                    vec![detail],
                    ElbOp::ModifyListener {
                        arn: cl.arn.clone(),
                        default_action: l.default_action.clone(),
                    },
                ));
            }
            let current_rules: Vec<_> = current
                .rules
                .iter()
                .filter(|r| r.listener_arn == cl.arn && r.priority.is_some())
                .collect();
            for r in &l.rules {
                let rule_name = format!("{listener_name}/{}", r.priority);
                let Some(cr) = current_rules
                    .iter()
                    .find(|cr| cr.priority == Some(r.priority))
                else {
                    listeners_and_rules.push(elb_change(
                        ChangeKind::Create,
                        Resource::Rule,
                        rule_name,
                        vec![format!(
                            "{} -> {}",
                            r.conditions.describe(),
                            r.action.describe()
                        )],
                        ElbOp::CreateRule {
                            load_balancer: lb_name.clone(),
                            port: l.port,
                            priority: r.priority,
                            conditions: r.conditions.clone(),
                            action: r.action.clone(),
                        },
                    ));
                    continue;
                };
                let mut details = Vec::new();
                let have_conditions = ConditionsSpec::from_elb(&cr.conditions);
                if have_conditions != r.conditions {
                    details.push(format!(
                        "conditions: {} -> {}",
                        have_conditions.describe(),
                        r.conditions.describe()
                    ));
                }
                let have = current_action(&cr.actions, &name_of);
                let want = Some(r.action.normalized());
                if have != want
                    && !shifted_by_deployments(
                        &shifted,
                        &format!("{listener_name}/{}", r.priority),
                        &have,
                        &want,
                    )
                {
                    details.push(format!(
                        "action: {} -> {}",
                        describe_current(&have),
                        r.action.describe()
                    ));
                } else if forwards_to_replaced(&want) {
                    details.push(format!(
                        "action: {} (target group replaced)",
                        r.action.describe()
                    ));
                }
                if !details.is_empty() {
                    listeners_and_rules.push(elb_change(
                        ChangeKind::Update,
                        Resource::Rule,
                        rule_name,
                        details,
                        ElbOp::ModifyRule {
                            arn: cr.arn.clone(),
                            conditions: r.conditions.clone(),
                            action: r.action.clone(),
                        },
                    ));
                }
            }
            for cr in &current_rules {
                let Some(priority) = cr.priority else {
                    continue;
                };
                if !l.rules.iter().any(|r| r.priority == priority) {
                    rule_deletes.push(elb_change(
                        ChangeKind::Delete,
                        Resource::Rule,
                        format!("{listener_name}/{priority}"),
                        Vec::new(),
                        ElbOp::DeleteRule {
                            arn: cr.arn.clone(),
                        },
                    ));
                }
            }
        }
        if let Some(arn) = &lb_arn {
            let mut gone: Vec<_> = current
                .listeners
                .iter()
                .filter(|cl| {
                    &cl.load_balancer_arn == arn
                        && !spec.listeners.iter().any(|l| l.port == cl.port)
                })
                .collect();
            gone.sort_by_key(|cl| cl.port);
            for cl in gone {
                listener_deletes.push(elb_change(
                    ChangeKind::Delete,
                    Resource::Listener,
                    format!("{lb_name}:{}", cl.port),
                    Vec::new(),
                    ElbOp::DeleteListener {
                        arn: cl.arn.clone(),
                    },
                ));
            }
        }
    }
    out.before.extend(listeners_and_rules);

    out.after.extend(rule_deletes);
    out.after.extend(listener_deletes);
    for lb in &current.load_balancers {
        if ours(&lb.arn) && !stack.load_balancers.contains_key(&lb.name) {
            out.after.push(elb_change(
                ChangeKind::Delete,
                Resource::LoadBalancer,
                lb.name.clone(),
                Vec::new(),
                ElbOp::DeleteLoadBalancer {
                    arn: lb.arn.clone(),
                },
            ));
        }
    }
    for tg in &current.target_groups {
        if ours(&tg.arn) && !stack.target_groups.contains_key(&tg.name) {
            out.after.push(elb_change(
                ChangeKind::Delete,
                Resource::TargetGroup,
                tg.name.clone(),
                Vec::new(),
                ElbOp::DeleteTargetGroup {
                    arn: tg.arn.clone(),
                },
            ));
        }
    }
    out
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests;
