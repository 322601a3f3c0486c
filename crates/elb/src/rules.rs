//! CreateRule, DescribeRules, ModifyRule, DeleteRule and SetRulePriorities. A listener's default
//! rule is not stored: it is derived from the listener and its actions are the listener's.

use crate::error::check;
use crate::requests::{
    CreateRuleRequest, DescribeRulesRequest, ModifyRuleRequest, RulePriorityPair,
};
use crate::types::Rule;
use crate::{validate, ElbError, ElbState};
use berth_model::{Arns, FieldErrors};

fn priority(path: &str, priority: i64, errors: &mut FieldErrors) -> u32 {
    match u32::try_from(priority) {
        Ok(p) if (1..=50000).contains(&p) => p,
        _ => {
            errors.push(
                path,
                format!("a priority from 1 to 50000 was expected, found {priority}"),
            );
            0
        }
    }
}

impl ElbState {
    /// The rule with this ARN, default rules included.
    pub fn rule(&self, rule_arn: &str) -> Result<Rule, ElbError> {
        if let Some(rule) = self.rules.iter().find(|r| r.arn == rule_arn) {
            return Ok(rule.clone());
        }
        self.listeners
            .iter()
            .find(|l| l.default_rule_arn == rule_arn)
            .and_then(|l| self.listener_rules(l).pop())
            .ok_or_else(|| ElbError::RuleNotFound(rule_arn.to_string()))
    }

    /// CreateRule: a rule with conditions, a priority unique on its listener, and actions.
    pub fn create_rule(&mut self, arns: &Arns, req: &CreateRuleRequest) -> Result<Rule, ElbError> {
        let listener = self.listener(&req.listener_arn)?.clone();
        let mut errors = FieldErrors::default();
        let prio = priority("Priority", req.priority, &mut errors);
        if req.conditions.is_empty() {
            errors.push(
                "Conditions",
                "at least one condition was expected, found none",
            );
        }
        let conditions = validate::conditions("Conditions", &req.conditions, &mut errors);
        let actions = validate::actions("Actions", &req.actions, &mut errors);
        validate::tags(&req.tags, &mut errors);
        check(errors)?;
        Self::check_duplicate_tag_keys(&req.tags)?;
        if self
            .rules
            .iter()
            .any(|r| r.listener_arn == listener.arn && r.priority == Some(prio))
        {
            return Err(ElbError::PriorityInUse(prio));
        }
        self.check_action_targets(&listener.load_balancer_arn, &actions)?;
        let listener_path = listener
            .arn
            .split_once(":listener/")
            .map(|(_, p)| p.to_string())
            .unwrap_or_default();
        let id = self.new_id();
        let rule = Rule {
            arn: arns.elb(&format!("listener-rule/{listener_path}/{id}")),
            listener_arn: listener.arn.clone(),
            priority: Some(prio),
            conditions,
            actions,
        };
        self.rules.push(rule.clone());
        self.set_initial_tags(&rule.arn, &req.tags);
        Ok(rule)
    }

    /// DescribeRules: a listener's rules by priority with the default rule last, or those named.
    pub fn describe_rules(&self, req: &DescribeRulesRequest) -> Result<Vec<Rule>, ElbError> {
        match (&req.listener_arn, req.rule_arns.is_empty()) {
            (Some(_), false) => Err(ElbError::field(
                "RuleArns",
                "either ListenerArn or RuleArns was expected, found both",
            )),
            (Some(l), true) => Ok(self.listener_rules(self.listener(l)?)),
            (None, false) => req.rule_arns.iter().map(|arn| self.rule(arn)).collect(),
            (None, true) => Err(ElbError::field(
                "ListenerArn",
                "a ListenerArn or RuleArns was expected, found neither",
            )),
        }
    }

    /// ModifyRule: replaces the given conditions and/or actions. A default rule takes actions
    /// only (they become the listener's default actions).
    pub fn modify_rule(&mut self, req: &ModifyRuleRequest) -> Result<Rule, ElbError> {
        let current = self.rule(&req.rule_arn)?;
        let listener = self.listener(&current.listener_arn)?.clone();
        if current.is_default() && req.conditions.as_ref().is_some_and(|c| !c.is_empty()) {
            return Err(ElbError::OperationNotPermitted(format!(
                "The default rule '{}' cannot have conditions",
                req.rule_arn
            )));
        }
        let mut errors = FieldErrors::default();
        let conditions = match &req.conditions {
            Some(c) if !current.is_default() => {
                if c.is_empty() {
                    errors.push(
                        "Conditions",
                        "at least one condition was expected, found none",
                    );
                }
                validate::conditions("Conditions", c, &mut errors)
            }
            _ => current.conditions.clone(),
        };
        let actions = match &req.actions {
            Some(a) => validate::actions("Actions", a, &mut errors),
            None => current.actions.clone(),
        };
        check(errors)?;
        self.check_action_targets(&listener.load_balancer_arn, &actions)?;
        if current.is_default() {
            if let Some(l) = self.listeners.iter_mut().find(|l| l.arn == listener.arn) {
                l.default_actions = actions;
            }
            return self.rule(&req.rule_arn);
        }
        let rule = Rule {
            conditions,
            actions,
            ..current
        };
        if let Some(slot) = self.rules.iter_mut().find(|r| r.arn == rule.arn) {
            *slot = rule.clone();
        }
        Ok(rule)
    }

    /// DeleteRule: a default rule cannot be deleted.
    pub fn delete_rule(&mut self, rule_arn: &str) -> Result<(), ElbError> {
        let rule = self.rule(rule_arn)?;
        if rule.is_default() {
            return Err(ElbError::OperationNotPermitted(format!(
                "The default rule '{rule_arn}' cannot be deleted"
            )));
        }
        self.rules.retain(|r| r.arn != rule_arn);
        self.forget(rule_arn);
        Ok(())
    }

    /// SetRulePriorities: applies all pairs at once; priorities must stay unique per listener.
    /// Returns the changed rules.
    pub fn set_rule_priorities(
        &mut self,
        pairs: &[RulePriorityPair],
    ) -> Result<Vec<Rule>, ElbError> {
        let mut errors = FieldErrors::default();
        if pairs.is_empty() {
            errors.push(
                "RulePriorities",
                "at least one rule/priority pair was expected, found none",
            );
        }
        let priorities: Vec<u32> = pairs
            .iter()
            .enumerate()
            .map(|(i, p)| {
                priority(
                    &format!("RulePriorities[{i}].Priority"),
                    p.priority,
                    &mut errors,
                )
            })
            .collect();
        check(errors)?;
        let mut updated = self.rules.clone();
        for (pair, prio) in pairs.iter().zip(&priorities) {
            let rule = self.rule(&pair.rule_arn)?;
            if rule.is_default() {
                return Err(ElbError::OperationNotPermitted(format!(
                    "The priority of the default rule '{}' cannot be changed",
                    pair.rule_arn
                )));
            }
            if let Some(r) = updated.iter_mut().find(|r| r.arn == pair.rule_arn) {
                r.priority = Some(*prio);
            }
        }
        for (i, a) in updated.iter().enumerate() {
            if updated[..i]
                .iter()
                .any(|b| b.listener_arn == a.listener_arn && b.priority == a.priority)
            {
                return Err(ElbError::PriorityInUse(a.priority.unwrap_or(0)));
            }
        }
        self.rules = updated;
        pairs.iter().map(|p| self.rule(&p.rule_arn)).collect()
    }
}
