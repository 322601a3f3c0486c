//! Metric filters: a filter pattern plus a metric transformation that turns each matching log
//! event into a data point (`metricValue` `"1"`, a number, or a `$.field` / `$field` selector).

use super::pattern::FilterPattern;
use berth_metrics::{Dimension, MetricDatum, MetricId, Sample};
use berth_model::protocol::agent::LogEvent;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// A metric filter as PutMetricFilter takes it and DescribeMetricFilters shows it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MetricFilter {
    pub filter_name: String,
    pub filter_pattern: String,
    pub metric_transformations: Vec<MetricTransformation>,
    #[serde(default)]
    pub creation_time: i64,
}

/// What one matching event becomes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MetricTransformation {
    pub metric_name: String,
    pub metric_namespace: String,
    /// `"1"`, another number, or a selector (`$.latency`, `$size`).
    pub metric_value: String,
    /// Emitted once per ingested batch in which no event matched.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default_value: Option<f64>,
    /// Dimension name → selector (`$.path`).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub dimensions: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unit: Option<String>,
}

/// Every problem with a metric filter, each `field: what was expected, what was found`.
pub fn validate(f: &MetricFilter) -> Vec<String> {
    let mut errors = Vec::new();
    if f.filter_name.is_empty() || f.filter_name.len() > 512 || f.filter_name.contains(':') {
        errors.push(format!(
            "filterName: expected 1 to 512 characters without `:`, found {:?}",
            f.filter_name
        ));
    }
    if let Err(e) = FilterPattern::parse(&f.filter_pattern) {
        errors.push(format!("filterPattern: {e}"));
    }
    if f.metric_transformations.len() != 1 {
        errors.push(format!(
            "metricTransformations: expected exactly 1 transformation, found {}",
            f.metric_transformations.len()
        ));
    }
    for (i, t) in f.metric_transformations.iter().enumerate() {
        let at = format!("metricTransformations[{i}]");
        if t.metric_name.is_empty() {
            errors.push(format!("{at}.metricName: expected a name, found nothing"));
        }
        if t.metric_namespace.is_empty() {
            errors.push(format!(
                "{at}.metricNamespace: expected a namespace, found nothing"
            ));
        }
        if !t.metric_value.starts_with('$') && t.metric_value.parse::<f64>().is_err() {
            errors.push(format!(
                "{at}.metricValue: expected a number or a `$.field` selector, found {:?}",
                t.metric_value
            ));
        }
        if t.default_value.is_some() && !t.dimensions.is_empty() {
            errors.push(format!(
                "{at}.defaultValue: a transformation with dimensions cannot have a default value"
            ));
        }
        if t.dimensions.len() > 3 {
            errors.push(format!(
                "{at}.dimensions: expected at most 3, found {}",
                t.dimensions.len()
            ));
        }
        for (k, v) in &t.dimensions {
            if !v.starts_with('$') {
                errors.push(format!(
                    "{at}.dimensions.{k}: expected a `$.field` selector, found {v:?}"
                ));
            }
        }
    }
    errors
}

/// The data points `filters` make of `events` (values of one metric and second are combined).
pub fn data_for(filters: &[MetricFilter], events: &[LogEvent]) -> Vec<MetricDatum> {
    let mut out: BTreeMap<(MetricId, i64), (Option<String>, Vec<f64>)> = BTreeMap::new();
    for f in filters {
        let Ok(pattern) = FilterPattern::parse(&f.filter_pattern) else {
            continue;
        };
        for t in &f.metric_transformations {
            let mut matched = false;
            for e in events {
                if !pattern.matches(&e.message) {
                    continue;
                }
                matched = true;
                let value = if t.metric_value.starts_with('$') {
                    pattern
                        .extract(&e.message, &t.metric_value)
                        .and_then(|v| v.parse::<f64>().ok())
                } else {
                    t.metric_value.parse::<f64>().ok()
                };
                let Some(value) = value else { continue };
                let mut dims = Vec::new();
                for (name, selector) in &t.dimensions {
                    match pattern.extract(&e.message, selector) {
                        Some(v) => dims.push(Dimension::new(name.clone(), v)),
                        None => break,
                    }
                }
                if dims.len() != t.dimensions.len() {
                    continue;
                }
                let id = MetricId::new(t.metric_namespace.clone(), t.metric_name.clone(), dims);
                out.entry((id, e.timestamp.div_euclid(1000)))
                    .or_insert_with(|| (t.unit.clone(), Vec::new()))
                    .1
                    .push(value);
            }
            if let (false, Some(d), Some(last)) = (
                matched,
                t.default_value,
                events.iter().map(|e| e.timestamp).max(),
            ) {
                let id = MetricId::new(t.metric_namespace.clone(), t.metric_name.clone(), vec![]);
                out.entry((id, last.div_euclid(1000)))
                    .or_insert_with(|| (t.unit.clone(), Vec::new()))
                    .1
                    .push(d);
            }
        }
    }
    out.into_iter()
        .map(|((id, timestamp), (unit, values))| MetricDatum {
            id,
            unit,
            timestamp,
            sample: Sample::Values {
                values,
                counts: Vec::new(),
            },
        })
        .collect()
}
