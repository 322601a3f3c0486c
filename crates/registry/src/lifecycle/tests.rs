//! Table-driven tests of lifecycle policy parsing and evaluation.

use super::*;

const NOW: f64 = 1_000_000_000.0;

/// An image `age_days` old with `tags`; its digest is its name.
fn image(name: &str, age_days: f64, tags: &[&str]) -> ImageInfo {
    ImageInfo {
        digest: name.to_string(),
        tags: tags.iter().map(|t| t.to_string()).collect(),
        pushed_at: NOW - age_days * DAY,
    }
}

fn rule(priority: u32, selection: &str) -> String {
    format!(r#"{{"rulePriority":{priority},"selection":{selection},"action":{{"type":"expire"}}}}"#)
}

fn policy(rules: &[String]) -> LifecyclePolicy {
    let text = format!(r#"{{"rules":[{}]}}"#, rules.join(","));
    parse_policy(&text).unwrap_or_else(|e| panic!("policy {text}: {e:?}"))
}

/// Expired digests with the rule that expired each.
fn expired(policy: &LifecyclePolicy, images: &[ImageInfo]) -> Vec<(String, u32)> {
    evaluate(policy, images, NOW)
        .into_iter()
        .map(|e| (e.digest, e.applied_rule_priority))
        .collect()
}

fn names(pairs: &[(&str, u32)]) -> Vec<(String, u32)> {
    pairs.iter().map(|(n, p)| (n.to_string(), *p)).collect()
}

#[test]
fn evaluation_table() {
    let images = vec![
        image("a", 1.0, &["prod-1"]),
        image("b", 2.0, &["prod-2", "beta-2"]),
        image("c", 3.0, &[]),
        image("d", 4.0, &["dev-4"]),
        image("e", 5.0, &[]),
        image("f", 40.0, &["prod-old"]),
    ];
    type Case<'a> = (&'a str, Vec<String>, Vec<(&'a str, u32)>);
    let cases: Vec<Case> = vec![
        (
            "keep the newest 3 of any",
            vec![rule(1, r#"{"tagStatus":"any","countType":"imageCountMoreThan","countNumber":3}"#)],
            vec![("f", 1), ("e", 1), ("d", 1)],
        ),
        (
            "untagged older than 4 days",
            vec![rule(1, r#"{"tagStatus":"untagged","countType":"sinceImagePushed","countUnit":"days","countNumber":4}"#)],
            vec![("e", 1)],
        ),
        (
            "keep one untagged",
            vec![rule(1, r#"{"tagStatus":"untagged","countType":"imageCountMoreThan","countNumber":1}"#)],
            vec![("e", 1)],
        ),
        (
            "prefix prod: keep 1",
            vec![rule(1, r#"{"tagStatus":"tagged","tagPrefixList":["prod"],"countType":"imageCountMoreThan","countNumber":1}"#)],
            vec![("f", 1), ("b", 1)],
        ),
        (
            "every prefix must match some tag",
            vec![rule(1, r#"{"tagStatus":"tagged","tagPrefixList":["prod","beta"],"countType":"imageCountMoreThan","countNumber":0}"#.replace("\"countNumber\":0", "\"countNumber\":1").as_str())],
            vec![],
        ),
        (
            "pattern list with wildcard",
            vec![rule(1, r#"{"tagStatus":"tagged","tagPatternList":["*-old"],"countType":"sinceImagePushed","countUnit":"days","countNumber":30}"#)],
            vec![("f", 1)],
        ),
        (
            "images matched by an earlier rule are not expired by a later one, but are counted",
            vec![
                rule(1, r#"{"tagStatus":"tagged","tagPrefixList":["prod"],"countType":"sinceImagePushed","countUnit":"days","countNumber":100}"#),
                rule(2, r#"{"tagStatus":"any","countType":"imageCountMoreThan","countNumber":2}"#),
            ],
            // any: newest first a b c d e f; beyond 2: c d e f; f is claimed by rule 1.
            vec![("e", 2), ("d", 2), ("c", 2)],
        ),
        (
            "an image is expired by at most one rule (the first)",
            vec![
                rule(1, r#"{"tagStatus":"untagged","countType":"imageCountMoreThan","countNumber":1}"#),
                rule(2, r#"{"tagStatus":"any","countType":"sinceImagePushed","countUnit":"days","countNumber":2}"#),
            ],
            vec![("f", 2), ("e", 1), ("d", 2)],
        ),
        (
            "priority order, not list order",
            vec![
                rule(9, r#"{"tagStatus":"any","countType":"imageCountMoreThan","countNumber":5}"#),
                rule(3, r#"{"tagStatus":"tagged","tagPrefixList":["prod-old"],"countType":"imageCountMoreThan","countNumber":1}"#),
            ],
            // f is matched (and kept) by rule 3 first, so rule 9 cannot expire it.
            vec![],
        ),
    ];
    for (name, rules, want) in cases {
        let p = policy(&rules);
        assert_eq!(expired(&p, &images), names(&want), "{name}");
    }
}

#[test]
fn tag_prefix_list_requires_all_prefixes() {
    let p = policy(&[rule(
        1,
        r#"{"tagStatus":"tagged","tagPrefixList":["prod","beta"],"countType":"sinceImagePushed","countUnit":"days","countNumber":1}"#,
    )]);
    let images = vec![
        image("both", 3.0, &["prod-1", "beta-1"]),
        image("prod-only", 3.0, &["prod-2"]),
        image("young", 0.5, &["prod-3", "beta-3"]),
    ];
    assert_eq!(expired(&p, &images), names(&[("both", 1)]));
}

#[test]
fn count_keeps_newest_regardless_of_input_order() {
    let p = policy(&[rule(
        1,
        r#"{"tagStatus":"any","countType":"imageCountMoreThan","countNumber":3}"#,
    )]);
    let mut images: Vec<ImageInfo> = (0..6)
        .map(|i| image(&format!("i{i}"), f64::from(i), &[]))
        .collect();
    images.reverse();
    let got: Vec<String> = evaluate(&p, &images, NOW)
        .into_iter()
        .map(|e| e.digest)
        .collect();
    assert_eq!(got, vec!["i5", "i4", "i3"]);
}

#[test]
fn parse_collects_all_errors() {
    let text = r#"{"rules":[
        {"rulePriority":0,"selection":{"tagStatus":"tagged","countType":"sinceImagePushed","countNumber":0},"action":{"type":"delete"}},
        {"rulePriority":2,"selection":{"tagStatus":"any","countType":"imageCountMoreThan","countUnit":"days","countNumber":1},"action":{"type":"expire"}},
        {"rulePriority":3,"selection":{"tagStatus":"untagged","tagPrefixList":["x"],"countType":"imageCountMoreThan","countNumber":1},"action":{"type":"expire"}}
    ]}"#;
    let errors = parse_policy(text).unwrap_err();
    let want = [
        "rules[0].rulePriority",
        "rules[0].selection: tagStatus tagged expects",
        "rules[0].selection.countNumber",
        "rules[0].selection.countUnit: expected days",
        "rules[0].action.type",
        "rules[1].selection.countUnit: not allowed",
        "rules[2].selection: tagPrefixList and tagPatternList are only allowed",
    ];
    for w in want {
        assert!(
            errors.iter().any(|e| e.starts_with(w)),
            "missing {w:?} in {errors:#?}"
        );
    }
}

#[test]
fn parse_refuses_policy_level_mistakes() {
    let any = rule(
        1,
        r#"{"tagStatus":"any","countType":"imageCountMoreThan","countNumber":1}"#,
    );
    let untagged = |p| {
        rule(
            p,
            r#"{"tagStatus":"untagged","countType":"imageCountMoreThan","countNumber":1}"#,
        )
    };
    let text = format!(r#"{{"rules":[{any},{},{}]}}"#, untagged(2), untagged(2));
    let errors = parse_policy(&text).unwrap_err();
    assert!(
        errors
            .iter()
            .any(|e| e.contains("rulePriority 2 is used by more than one rule")),
        "{errors:?}"
    );
    assert!(
        errors
            .iter()
            .any(|e| e.contains("at most one rule with tagStatus untagged")),
        "{errors:?}"
    );
    assert!(
        errors
            .iter()
            .any(|e| e.contains("must have the highest rulePriority")),
        "{errors:?}"
    );
    assert!(parse_policy("not json").is_err());
    assert!(parse_policy(r#"{"rules":[]}"#).is_err());
    assert!(parse_policy(r#"{}"#).is_err());
}

#[test]
fn wildcards() {
    assert!(wildcard_match("prod*", "prod-1"));
    assert!(wildcard_match("*", "x"));
    assert!(wildcard_match("a*b*c", "a-x-b-y-c"));
    assert!(!wildcard_match("a*b*c", "a-x-c"));
    assert!(!wildcard_match("prod", "prod-1"));
    assert!(!wildcard_match("*ab*ab", "ab"));
}
