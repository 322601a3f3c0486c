//! The Prometheus text exposition of current metric values.
//!
//! Mapping: the family name is `<namespace>_<metric name>`, lowercased, with every character
//! outside `[a-z0-9_]` turned into `_` and runs of `_` collapsed (`AWS/ECS` + `CPUUtilization` →
//! `aws_ecs_cpuutilization`). Dimension names become snake_case label names (`ClusterName` →
//! `cluster_name`, `TargetGroup` → `target_group`); values are escaped per the text format. The
//! sample is the average of the metric's newest 1 s bucket with that bucket's time in
//! milliseconds. Every family is typed `gauge`.

use crate::types::MetricId;
use std::collections::BTreeMap;
use std::fmt::Write;

/// Lowercases and replaces what Prometheus does not allow in names with `_`.
pub fn family_name(namespace: &str, name: &str) -> String {
    let mut out = String::new();
    for c in format!("{namespace}_{name}").chars() {
        let c = c.to_ascii_lowercase();
        let c = if c.is_ascii_alphanumeric() { c } else { '_' };
        if !(c == '_' && out.ends_with('_')) {
            out.push(c);
        }
    }
    let out = out.trim_matches('_').to_string();
    if out.starts_with(|c: char| c.is_ascii_digit()) {
        format!("_{out}")
    } else {
        out
    }
}

/// `ClusterName` → `cluster_name`; `DBInstanceIdentifier` → `db_instance_identifier`.
pub fn label_name(name: &str) -> String {
    let chars: Vec<char> = name.chars().collect();
    let mut out = String::new();
    for (i, &c) in chars.iter().enumerate() {
        if c.is_ascii_uppercase() {
            let prev_lower =
                i > 0 && (chars[i - 1].is_ascii_lowercase() || chars[i - 1].is_ascii_digit());
            let next_lower = chars.get(i + 1).is_some_and(|n| n.is_ascii_lowercase());
            let prev_upper = i > 0 && chars[i - 1].is_ascii_uppercase();
            if !out.is_empty() && !out.ends_with('_') && (prev_lower || (prev_upper && next_lower))
            {
                out.push('_');
            }
            out.push(c.to_ascii_lowercase());
        } else if c.is_ascii_alphanumeric() {
            out.push(c);
        } else if !out.ends_with('_') {
            out.push('_');
        }
    }
    if out.is_empty() || out.starts_with(|c: char| c.is_ascii_digit()) {
        out.insert(0, '_');
    }
    out
}

fn escape_label_value(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// Renders (metric, bucket start in seconds, value) triples grouped by family.
pub fn render(current: &[(&MetricId, i64, f64)]) -> String {
    let mut families: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (id, ts, value) in current {
        let mut line = family_name(&id.namespace, &id.name);
        if !id.dimensions.is_empty() {
            let labels: Vec<String> = id
                .dimensions
                .iter()
                .map(|d| {
                    format!(
                        "{}=\"{}\"",
                        label_name(&d.name),
                        escape_label_value(&d.value)
                    )
                })
                .collect();
            let _ = write!(line, "{{{}}}", labels.join(","));
        }
        let _ = write!(line, " {value} {}", ts * 1000);
        families
            .entry(family_name(&id.namespace, &id.name))
            .or_default()
            .push(line);
    }
    let mut out = String::new();
    for (family, lines) in families {
        let _ = writeln!(out, "# TYPE {family} gauge");
        for l in lines {
            out.push_str(&l);
            out.push('\n');
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::types::Dimension;

    #[test]
    fn names_map_as_documented() {
        assert_eq!(
            family_name("AWS/ECS", "CPUUtilization"),
            "aws_ecs_cpuutilization"
        );
        assert_eq!(family_name("My App", "9 lives"), "my_app_9_lives");
        assert_eq!(label_name("ClusterName"), "cluster_name");
        assert_eq!(label_name("DBInstanceIdentifier"), "db_instance_identifier");
        assert_eq!(label_name("TargetGroup"), "target_group");
        assert_eq!(label_name("9x"), "_9x");
    }

    #[test]
    fn render_groups_families_and_escapes_values() {
        let a = MetricId::new(
            "AWS/ECS",
            "CPUUtilization",
            vec![Dimension::new("ClusterName", "a\"b")],
        );
        let b = MetricId::new(
            "AWS/ECS",
            "CPUUtilization",
            vec![Dimension::new("ClusterName", "c")],
        );
        let text = render(&[(&a, 10, 1.5), (&b, 11, 2.0)]);
        assert_eq!(
            text,
            "# TYPE aws_ecs_cpuutilization gauge\n\
             aws_ecs_cpuutilization{cluster_name=\"a\\\"b\"} 1.5 10000\n\
             aws_ecs_cpuutilization{cluster_name=\"c\"} 2 11000\n"
        );
    }
}
