//! Traffic shifting for blue/green, linear and canary deployments: set the weights of the target
//! groups in the forward action of one rule (or a listener's default rule).

use crate::types::{Action, ForwardConfig, TargetGroupTuple};
use crate::{ElbError, ElbState};

impl ElbState {
    /// The forward action of a rule ARN or of a listener (its default action) ARN.
    fn forward_action_mut(&mut self, rule_or_listener_arn: &str) -> Result<&mut Action, ElbError> {
        let actions =
            if let Some(r) = self
                .rules
                .iter_mut()
                .find(|r| r.arn == rule_or_listener_arn)
            {
                &mut r.actions
            } else if let Some(l) = self.listeners.iter_mut().find(|l| {
                l.arn == rule_or_listener_arn || l.default_rule_arn == rule_or_listener_arn
            }) {
                &mut l.default_actions
            } else {
                return Err(ElbError::RuleNotFound(format!(
                    "no rule or listener {rule_or_listener_arn}"
                )));
            };
        actions
            .iter_mut()
            .find(|a| a.action_type == "forward")
            .ok_or_else(|| {
                ElbError::field(
                    "Actions",
                    format!(
                        "the rule {rule_or_listener_arn} has no forward action to shift traffic in"
                    ),
                )
            })
    }

    /// Sets the forward action of a rule (or a listener's default rule) to these weighted target
    /// groups, keeping its stickiness. Returns true when something changed.
    pub fn set_forward_weights(
        &mut self,
        rule_or_listener_arn: &str,
        weights: &[(String, u32)],
    ) -> Result<bool, ElbError> {
        for (tg, _) in weights {
            self.target_group(tg)?;
        }
        let action = self.forward_action_mut(rule_or_listener_arn)?;
        let stickiness = action
            .forward_config
            .as_ref()
            .and_then(|f| f.stickiness.clone());
        let new = ForwardConfig {
            target_groups: weights
                .iter()
                .map(|(tg, w)| TargetGroupTuple {
                    target_group_arn: tg.clone(),
                    weight: Some(*w),
                })
                .collect(),
            stickiness,
        };
        let changed =
            action.forward_config.as_ref() != Some(&new) || action.target_group_arn.is_some();
        action.target_group_arn = None;
        action.forward_config = Some(new);
        Ok(changed)
    }

    /// The weights of the forward action of a rule or listener, as (target group, weight).
    pub fn forward_weights(&self, rule_or_listener_arn: &str) -> Option<Vec<(String, u32)>> {
        let actions = match self.rules.iter().find(|r| r.arn == rule_or_listener_arn) {
            Some(r) => &r.actions,
            None => {
                &self
                    .listeners
                    .iter()
                    .find(|l| {
                        l.arn == rule_or_listener_arn || l.default_rule_arn == rule_or_listener_arn
                    })?
                    .default_actions
            }
        };
        let a = actions.iter().find(|a| a.action_type == "forward")?;
        match (&a.forward_config, &a.target_group_arn) {
            (Some(f), _) => Some(
                f.target_groups
                    .iter()
                    .map(|t| (t.target_group_arn.clone(), t.weight.unwrap_or(1)))
                    .collect(),
            ),
            (None, Some(tg)) => Some(vec![(tg.clone(), 1)]),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::requests::*;
    use crate::ElbState;
    use berth_model::Arns;

    #[test]
    fn weights_shift_on_a_listener_default_action() {
        let arns = Arns::default();
        let mut st = ElbState::default();
        let lb = st
            .create_load_balancer(
                &arns,
                &CreateLoadBalancerRequest {
                    name: "web".into(),
                    ..Default::default()
                },
                0.0,
            )
            .unwrap();
        let tg = |st: &mut ElbState, name: &str| {
            st.create_target_group(
                &arns,
                &CreateTargetGroupRequest {
                    name: name.into(),
                    port: Some(80),
                    protocol: Some("HTTP".into()),
                    target_type: Some("ip".into()),
                    ..Default::default()
                },
            )
            .unwrap()
            .arn
        };
        let blue = tg(&mut st, "blue");
        let green = tg(&mut st, "green");
        let l = st
            .create_listener(
                &arns,
                &CreateListenerRequest {
                    load_balancer_arn: lb.arn.clone(),
                    port: Some(8080),
                    protocol: Some("HTTP".into()),
                    default_actions: vec![crate::types::Action {
                        action_type: "forward".into(),
                        target_group_arn: Some(blue.clone()),
                        ..Default::default()
                    }],
                    ..Default::default()
                },
            )
            .unwrap();
        assert_eq!(st.forward_weights(&l.arn), Some(vec![(blue.clone(), 1)]));
        assert!(st
            .set_forward_weights(&l.arn, &[(blue.clone(), 90), (green.clone(), 10)])
            .unwrap());
        assert!(!st
            .set_forward_weights(&l.arn, &[(blue.clone(), 90), (green.clone(), 10)])
            .unwrap());
        assert_eq!(
            st.forward_weights(&l.default_rule_arn),
            Some(vec![(blue.clone(), 90), (green.clone(), 10)])
        );
        let cfg = st.proxy_config(1, "127.0.0.1");
        assert_eq!(cfg.target_groups.len(), 2, "both groups are now in use");
        assert!(st.set_forward_weights("arn:nope", &[(blue, 100)]).is_err());
    }
}
