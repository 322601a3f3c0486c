//! berth-elb: the ELBv2 (application load balancer) control-plane model and its operations as
//! pure functions over one serialisable `ElbState` (no IO). The control plane persists the state
//! after each mutating operation and hands the proxy `ElbState::proxy_config` snapshots.

pub mod attributes;
mod error;
mod listeners;
mod load_balancers;
mod proxy_config;
pub mod requests;
mod rules;
mod tags;
mod target_groups;
mod targets;
pub mod types;
mod validate;
mod weights;

pub use error::ElbError;
pub use requests::*;
pub use types::*;

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Limit on the targets of one target group (AWS's default quota).
pub const MAX_TARGETS_PER_TARGET_GROUP: usize = 1000;
/// Limit on the tags of one resource.
pub const MAX_TAGS: usize = 50;

/// Every ELBv2 resource berth knows, kept whole and persisted as JSON by the control plane.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ElbState {
    /// In creation order (DescribeLoadBalancers returns them so).
    #[serde(default)]
    pub load_balancers: Vec<LoadBalancer>,
    #[serde(default)]
    pub target_groups: Vec<TargetGroup>,
    #[serde(default)]
    pub listeners: Vec<Listener>,
    /// Non-default rules; a listener's default rule is derived from the listener.
    #[serde(default)]
    pub rules: Vec<Rule>,
    /// Registrations per target group ARN, each with the health the proxy last reported for it.
    #[serde(default)]
    pub targets: BTreeMap<String, Vec<RegisteredTarget>>,
    /// Attributes per load balancer or target group ARN (all keys, defaults included).
    #[serde(default)]
    pub attributes: BTreeMap<String, BTreeMap<String, String>>,
    /// Tags per resource ARN.
    #[serde(default)]
    pub tags: BTreeMap<String, BTreeMap<String, String>>,
    /// Counter behind the 16-hex-digit resource ids.
    #[serde(default)]
    pub next_id: u64,
}

impl ElbState {
    /// A fresh 16-hex-digit resource id, unique within this state.
    fn new_id(&mut self) -> String {
        self.next_id += 1;
        format!("{:016x}", splitmix64(self.next_id))
    }

    /// The load balancer with this ARN.
    pub fn load_balancer(&self, arn: &str) -> Result<&LoadBalancer, ElbError> {
        self.load_balancers
            .iter()
            .find(|lb| lb.arn == arn)
            .ok_or_else(|| ElbError::LoadBalancerNotFound(arn.to_string()))
    }

    /// The target group with this ARN.
    pub fn target_group(&self, arn: &str) -> Result<&TargetGroup, ElbError> {
        self.target_groups
            .iter()
            .find(|tg| tg.arn == arn)
            .ok_or_else(|| ElbError::TargetGroupNotFound(arn.to_string()))
    }

    /// The listener with this ARN.
    pub fn listener(&self, arn: &str) -> Result<&Listener, ElbError> {
        self.listeners
            .iter()
            .find(|l| l.arn == arn)
            .ok_or_else(|| ElbError::ListenerNotFound(arn.to_string()))
    }

    /// An attribute value of a load balancer or target group (its default when unset).
    pub fn attribute(&self, resource_arn: &str, key: &str) -> Option<&str> {
        self.attributes
            .get(resource_arn)
            .and_then(|a| a.get(key))
            .map(String::as_str)
    }

    /// ARNs of the target groups an action forwards to.
    fn action_target_groups(action: &Action) -> Vec<&str> {
        let mut arns: Vec<&str> = Vec::new();
        if let Some(arn) = &action.target_group_arn {
            arns.push(arn);
        }
        if let Some(fc) = &action.forward_config {
            for tuple in &fc.target_groups {
                if !arns.contains(&tuple.target_group_arn.as_str()) {
                    arns.push(&tuple.target_group_arn);
                }
            }
        }
        arns
    }

    /// Every (load balancer ARN, target group ARN) pair a listener or rule action links.
    fn associations(&self) -> Vec<(&str, &str)> {
        let mut pairs: Vec<(&str, &str)> = Vec::new();
        for listener in &self.listeners {
            let lb = listener.load_balancer_arn.as_str();
            let rule_actions = self
                .rules
                .iter()
                .filter(|r| r.listener_arn == listener.arn)
                .flat_map(|r| &r.actions);
            for action in listener.default_actions.iter().chain(rule_actions) {
                for tg in Self::action_target_groups(action) {
                    if !pairs.contains(&(lb, tg)) {
                        pairs.push((lb, tg));
                    }
                }
            }
        }
        pairs
    }

    /// ARNs of the load balancers whose listeners or rules forward to this target group.
    pub fn target_group_load_balancers(&self, target_group_arn: &str) -> Vec<String> {
        self.associations()
            .into_iter()
            .filter(|(_, tg)| *tg == target_group_arn)
            .map(|(lb, _)| lb.to_string())
            .collect()
    }

    /// True when some listener or rule forwards to the target group.
    pub fn target_group_in_use(&self, target_group_arn: &str) -> bool {
        self.associations()
            .iter()
            .any(|(_, tg)| *tg == target_group_arn)
    }

    /// Every rule of a listener, its default rule last, the others by priority.
    pub fn listener_rules(&self, listener: &Listener) -> Vec<Rule> {
        let mut rules: Vec<Rule> = self
            .rules
            .iter()
            .filter(|r| r.listener_arn == listener.arn)
            .cloned()
            .collect();
        rules.sort_by_key(|r| r.priority);
        rules.push(Rule {
            arn: listener.default_rule_arn.clone(),
            listener_arn: listener.arn.clone(),
            priority: None,
            conditions: Vec::new(),
            actions: listener.default_actions.clone(),
        });
        rules
    }

    /// Drops attributes, tags and registrations of a deleted resource.
    fn forget(&mut self, arn: &str) {
        self.attributes.remove(arn);
        self.tags.remove(arn);
        self.targets.remove(arn);
    }
}

/// A bijective 64-bit mix, so sequential counters give random-looking ids.
fn splitmix64(n: u64) -> u64 {
    let mut z = n.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

#[cfg(test)]
mod tests;
