//! ECR lifecycle policies: parsing and validating the policy JSON, and evaluating it against a
//! repository's images the way ECR does. Pure logic: no IO, time comes in as `now`.
//!
//! ECR's evaluation rules, as implemented here:
//! - rules run in `rulePriority` order, lowest first; an `any` rule must have the highest priority;
//! - an image is expired by at most one rule;
//! - an image that matches the tag selection of a rule cannot be expired by a later rule, but later
//!   rules still count it (for `imageCountMoreThan`) as if it had not been expired;
//! - `tagPrefixList` (and `tagPatternList`) select an image when every prefix (pattern) matches
//!   at least one of its tags;
//! - images are ordered by push time, newest first; `imageCountMoreThan N` expires all but the
//!   newest N selected images, `sinceImagePushed N days` those pushed more than N days ago.

use std::collections::{BTreeMap, BTreeSet};

/// A validated lifecycle policy; rules are sorted by priority.
#[derive(Debug, Clone, PartialEq)]
pub struct LifecyclePolicy {
    pub rules: Vec<LifecycleRule>,
}

/// One rule of a policy.
#[derive(Debug, Clone, PartialEq)]
pub struct LifecycleRule {
    pub rule_priority: u32,
    pub description: Option<String>,
    pub tag_status: TagStatus,
    pub tag_prefix_list: Vec<String>,
    pub tag_pattern_list: Vec<String>,
    pub count: CountRule,
}

/// `selection.tagStatus`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TagStatus {
    Tagged,
    Untagged,
    Any,
}

/// `selection.countType` with its number.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CountRule {
    /// Keep the newest `n`, expire the rest.
    ImageCountMoreThan(u32),
    /// Expire images pushed more than `days` days ago.
    SinceImagePushed { days: u32 },
}

/// What the evaluator knows about an image.
#[derive(Debug, Clone, PartialEq)]
pub struct ImageInfo {
    pub digest: String,
    pub tags: Vec<String>,
    /// Seconds since the Unix epoch.
    pub pushed_at: f64,
}

/// An image that a policy expires, and the rule that did it.
#[derive(Debug, Clone, PartialEq)]
pub struct Expiry {
    pub digest: String,
    pub tags: Vec<String>,
    pub pushed_at: f64,
    pub applied_rule_priority: u32,
}

const DAY: f64 = 86_400.0;

/// Parses and validates a policy text, collecting every problem as `path: expected, found`.
pub fn parse_policy(text: &str) -> Result<LifecyclePolicy, Vec<String>> {
    let value: serde_json::Value = serde_json::from_str(text)
        .map_err(|e| vec![format!("lifecyclePolicyText: expected JSON, {e}")])?;
    let mut errors = Vec::new();
    let Some(rules) = value.get("rules").and_then(|r| r.as_array()) else {
        return Err(vec!["rules: expected an array of rules, found none".into()]);
    };
    if rules.is_empty() {
        errors.push("rules: expected at least one rule, found an empty list".into());
    }
    let mut parsed = Vec::new();
    for (i, rule) in rules.iter().enumerate() {
        if let Some(rule) = parse_rule(&format!("rules[{i}]"), rule, &mut errors) {
            parsed.push(rule);
        }
    }
    let mut seen = BTreeSet::new();
    for r in &parsed {
        if !seen.insert(r.rule_priority) {
            errors.push(format!(
                "rules: rulePriority {} is used by more than one rule",
                r.rule_priority
            ));
        }
    }
    if parsed
        .iter()
        .filter(|r| r.tag_status == TagStatus::Untagged)
        .count()
        > 1
    {
        errors
            .push("rules: expected at most one rule with tagStatus untagged, found several".into());
    }
    let max_priority = parsed.iter().map(|r| r.rule_priority).max();
    for r in parsed.iter().filter(|r| r.tag_status == TagStatus::Any) {
        let others_higher = parsed
            .iter()
            .any(|o| !std::ptr::eq(o, r) && o.rule_priority >= r.rule_priority);
        if Some(r.rule_priority) != max_priority || others_higher {
            errors.push(format!(
                "rules: the rule with tagStatus any (rulePriority {}) must have the highest rulePriority",
                r.rule_priority
            ));
        }
    }
    if errors.is_empty() {
        parsed.sort_by_key(|r| r.rule_priority);
        Ok(LifecyclePolicy { rules: parsed })
    } else {
        Err(errors)
    }
}

fn parse_rule(
    path: &str,
    rule: &serde_json::Value,
    errors: &mut Vec<String>,
) -> Option<LifecycleRule> {
    let n_errors = errors.len();
    let rule_priority = match rule.get("rulePriority").and_then(|p| p.as_u64()) {
        Some(p) if (1..=u32::MAX as u64).contains(&p) => p as u32,
        other => {
            errors.push(format!(
                "{path}.rulePriority: expected a positive integer, found {other:?}"
            ));
            0
        }
    };
    let description = match rule.get("description") {
        None | Some(serde_json::Value::Null) => None,
        Some(serde_json::Value::String(s)) => Some(s.clone()),
        Some(other) => {
            errors.push(format!(
                "{path}.description: expected a string, found {other}"
            ));
            None
        }
    };
    let selection = rule.get("selection").cloned().unwrap_or_default();
    let tag_status = match selection.get("tagStatus").and_then(|s| s.as_str()) {
        Some("tagged") => TagStatus::Tagged,
        Some("untagged") => TagStatus::Untagged,
        Some("any") => TagStatus::Any,
        other => {
            errors.push(format!(
                "{path}.selection.tagStatus: expected tagged, untagged or any, found {other:?}"
            ));
            TagStatus::Any
        }
    };
    let list = |key: &str, errors: &mut Vec<String>| -> Vec<String> {
        match selection.get(key) {
            None | Some(serde_json::Value::Null) => Vec::new(),
            Some(serde_json::Value::Array(items)) => {
                let strings: Vec<String> = items
                    .iter()
                    .filter_map(|i| i.as_str().map(str::to_string))
                    .collect();
                if strings.len() != items.len() || strings.iter().any(String::is_empty) {
                    errors.push(format!(
                        "{path}.selection.{key}: expected non-empty strings"
                    ));
                }
                strings
            }
            Some(other) => {
                errors.push(format!(
                    "{path}.selection.{key}: expected a list of strings, found {other}"
                ));
                Vec::new()
            }
        }
    };
    let tag_prefix_list = list("tagPrefixList", errors);
    let tag_pattern_list = list("tagPatternList", errors);
    match tag_status {
        TagStatus::Tagged if tag_prefix_list.is_empty() == tag_pattern_list.is_empty() => errors.push(format!(
            "{path}.selection: tagStatus tagged expects exactly one of a non-empty tagPrefixList or tagPatternList"
        )),
        TagStatus::Untagged | TagStatus::Any if !tag_prefix_list.is_empty() || !tag_pattern_list.is_empty() => {
            errors.push(format!(
                "{path}.selection: tagPrefixList and tagPatternList are only allowed with tagStatus tagged"
            ))
        }
        _ => {}
    }
    let count_number = match selection.get("countNumber").and_then(|n| n.as_u64()) {
        Some(n) if (1..=u32::MAX as u64).contains(&n) => n as u32,
        _ => {
            errors.push(format!(
                "{path}.selection.countNumber: expected a positive integer, found {:?}",
                selection.get("countNumber")
            ));
            1
        }
    };
    let count_unit = selection.get("countUnit").and_then(|u| u.as_str());
    let count = match selection.get("countType").and_then(|c| c.as_str()) {
        Some("imageCountMoreThan") => {
            if let Some(unit) = count_unit {
                errors.push(format!(
                    "{path}.selection.countUnit: not allowed with countType imageCountMoreThan, found {unit:?}"
                ));
            }
            CountRule::ImageCountMoreThan(count_number)
        }
        Some("sinceImagePushed") => {
            if count_unit != Some("days") {
                errors.push(format!(
                    "{path}.selection.countUnit: expected days with countType sinceImagePushed, found {count_unit:?}"
                ));
            }
            CountRule::SinceImagePushed { days: count_number }
        }
        other => {
            errors.push(format!(
                "{path}.selection.countType: expected imageCountMoreThan or sinceImagePushed, found {other:?}"
            ));
            CountRule::ImageCountMoreThan(count_number)
        }
    };
    match rule
        .get("action")
        .and_then(|a| a.get("type"))
        .and_then(|t| t.as_str())
    {
        Some("expire") => {}
        other => errors.push(format!(
            "{path}.action.type: expected expire, found {other:?}"
        )),
    }
    (errors.len() == n_errors).then_some(LifecycleRule {
        rule_priority,
        description,
        tag_status,
        tag_prefix_list,
        tag_pattern_list,
        count,
    })
}

/// Whether `rule`'s tag selection matches `image`.
fn selects(rule: &LifecycleRule, image: &ImageInfo) -> bool {
    match rule.tag_status {
        TagStatus::Any => true,
        TagStatus::Untagged => image.tags.is_empty(),
        TagStatus::Tagged => {
            !image.tags.is_empty()
                && rule
                    .tag_prefix_list
                    .iter()
                    .all(|p| image.tags.iter().any(|t| t.starts_with(p.as_str())))
                && rule
                    .tag_pattern_list
                    .iter()
                    .all(|p| image.tags.iter().any(|t| wildcard_match(p, t)))
        }
    }
}

/// Matches `text` against `pattern`, where `*` matches any run of characters.
fn wildcard_match(pattern: &str, text: &str) -> bool {
    let parts: Vec<&str> = pattern.split('*').collect();
    if parts.len() == 1 {
        return pattern == text;
    }
    let (first, last) = (parts[0], parts[parts.len() - 1]);
    if !text.starts_with(first) || text.len() < first.len() + last.len() || !text.ends_with(last) {
        return false;
    }
    let mut rest = &text[first.len()..text.len() - last.len()];
    for part in &parts[1..parts.len() - 1] {
        match rest.find(part) {
            Some(i) => rest = &rest[i + part.len()..],
            None => return false,
        }
    }
    true
}

/// The images `policy` expires at `now`, oldest first.
pub fn evaluate(policy: &LifecyclePolicy, images: &[ImageInfo], now: f64) -> Vec<Expiry> {
    let mut claimed = BTreeSet::new();
    let mut expired: BTreeMap<usize, u32> = BTreeMap::new();
    for rule in &policy.rules {
        let mut matching: Vec<usize> = (0..images.len())
            .filter(|&i| selects(rule, &images[i]))
            .collect();
        // Newest first; ties broken by digest so the result does not depend on input order.
        matching.sort_by(|&a, &b| {
            images[b]
                .pushed_at
                .total_cmp(&images[a].pushed_at)
                .then_with(|| images[a].digest.cmp(&images[b].digest))
        });
        let candidates: Vec<usize> = match rule.count {
            CountRule::ImageCountMoreThan(n) => matching.iter().skip(n as usize).copied().collect(),
            CountRule::SinceImagePushed { days } => matching
                .iter()
                .copied()
                .filter(|&i| images[i].pushed_at < now - f64::from(days) * DAY)
                .collect(),
        };
        for i in candidates {
            if !claimed.contains(&i) {
                expired.entry(i).or_insert(rule.rule_priority);
            }
        }
        claimed.extend(matching);
    }
    let mut out: Vec<Expiry> = expired
        .into_iter()
        .map(|(i, applied_rule_priority)| Expiry {
            digest: images[i].digest.clone(),
            tags: images[i].tags.clone(),
            pushed_at: images[i].pushed_at,
            applied_rule_priority,
        })
        .collect();
    out.sort_by(|a, b| {
        a.pushed_at
            .total_cmp(&b.pushed_at)
            .then_with(|| a.digest.cmp(&b.digest))
    });
    out
}

#[cfg(test)]
mod tests;
