//! CloudWatch operations over JSON-like data, shared by the three wire protocols. Inputs are
//! read leniently (numbers and booleans may be strings, as the query protocol sends them;
//! times may be epoch seconds or ISO 8601); outputs use epoch seconds for times.

use berth_metrics::alarm::manager::AlarmFilter;
use berth_metrics::alarm::{
    AlarmActions, AlarmDefinition, AlarmError, ComparisonOperator, CompositeAlarm, MetricAlarm,
    StateValue, TreatMissingData,
};
use berth_metrics::dashboards::DashboardError;
use berth_metrics::*;
use serde_json::{json, Map, Value};

/// An API error: HTTP status, AWS error code and message.
#[derive(Debug, Clone, PartialEq)]
pub struct ApiError {
    /// HTTP status.
    pub status: u16,
    /// AWS error code (`InvalidParameterValue`).
    pub code: String,
    /// Human-readable message.
    pub message: String,
}

impl ApiError {
    /// A 400 error.
    pub fn client(code: &str, message: impl Into<String>) -> ApiError {
        ApiError {
            status: 400,
            code: code.into(),
            message: message.into(),
        }
    }
    fn invalid(errors: Vec<String>) -> ApiError {
        ApiError::client("InvalidParameterValue", errors.join("; "))
    }
    fn not_found(message: impl Into<String>) -> ApiError {
        ApiError {
            status: 404,
            code: "ResourceNotFound".into(),
            message: message.into(),
        }
    }
    fn internal(message: impl std::fmt::Display) -> ApiError {
        ApiError {
            status: 500,
            code: "InternalServiceError".into(),
            message: message.to_string(),
        }
    }
}

impl From<AlarmError> for ApiError {
    fn from(e: AlarmError) -> ApiError {
        match e {
            AlarmError::Validation(errors) => ApiError::invalid(errors),
            AlarmError::NotFound(name) => {
                ApiError::not_found(format!("Could not find alarm {name}"))
            }
            AlarmError::Persist(p) => ApiError::internal(p),
        }
    }
}

impl From<DashboardError> for ApiError {
    fn from(e: DashboardError) -> ApiError {
        match e {
            DashboardError::Invalid(errors) => ApiError::client(
                "InvalidParameterInput",
                format!(
                    "The dashboard body is invalid, there are {} validation errors: {}",
                    errors.len(),
                    errors.join("; ")
                ),
            ),
            DashboardError::NotFound(name) => {
                ApiError::not_found(format!("Dashboard {name} does not exist"))
            }
            DashboardError::Persist(p) => ApiError::internal(p),
        }
    }
}

/// The operations berth serves.
pub const OPERATIONS: &[&str] = &[
    "PutMetricData",
    "GetMetricData",
    "GetMetricStatistics",
    "ListMetrics",
    "PutMetricAlarm",
    "PutCompositeAlarm",
    "DescribeAlarms",
    "DescribeAlarmHistory",
    "SetAlarmState",
    "DeleteAlarms",
    "PutDashboard",
    "GetDashboard",
    "ListDashboards",
    "DeleteDashboards",
];

// ---- lenient input readers ----

fn s(v: &Value, k: &str) -> Option<String> {
    match v.get(k)? {
        Value::String(x) => Some(x.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

fn required(v: &Value, k: &str, path: &str, errors: &mut Vec<String>) -> String {
    match s(v, k) {
        Some(x) if !x.is_empty() => x,
        _ => {
            errors.push(format!("{path}: a value was expected, found none"));
            String::new()
        }
    }
}

fn num(v: &Value, k: &str, path: &str, errors: &mut Vec<String>) -> Option<f64> {
    match v.get(k)? {
        Value::Number(n) => n.as_f64(),
        Value::String(x) => match x.trim().parse::<f64>() {
            Ok(f) => Some(f),
            Err(_) => {
                errors.push(format!("{path}: a number was expected, found '{x}'"));
                None
            }
        },
        Value::Null => None,
        other => {
            errors.push(format!("{path}: a number was expected, found {other}"));
            None
        }
    }
}

fn int(v: &Value, k: &str, path: &str, errors: &mut Vec<String>) -> Option<i64> {
    let f = num(v, k, path, errors)?;
    if f.fract() != 0.0 || f.abs() > 9e15 {
        errors.push(format!("{path}: an integer was expected, found {f}"));
        return None;
    }
    Some(f as i64)
}

fn boolean(v: &Value, k: &str, path: &str, errors: &mut Vec<String>) -> Option<bool> {
    match v.get(k)? {
        Value::Bool(b) => Some(*b),
        Value::String(x) if x == "true" => Some(true),
        Value::String(x) if x == "false" => Some(false),
        Value::Null => None,
        other => {
            errors.push(format!("{path}: true or false was expected, found {other}"));
            None
        }
    }
}

fn list<'a>(v: &'a Value, k: &str) -> Vec<&'a Value> {
    match v.get(k) {
        Some(Value::Array(a)) => a.iter().collect(),
        _ => Vec::new(),
    }
}

fn strings(v: &Value, k: &str) -> Vec<String> {
    list(v, k)
        .into_iter()
        .filter_map(|x| match x {
            Value::String(s) => Some(s.clone()),
            Value::Number(n) => Some(n.to_string()),
            _ => None,
        })
        .collect()
}

fn time(v: &Value, k: &str, path: &str, errors: &mut Vec<String>) -> Option<f64> {
    match v.get(k)? {
        Value::Number(n) => n.as_f64(),
        Value::String(x) => match x.parse::<f64>().ok().or_else(|| parse_iso8601(x)) {
            Some(t) => Some(t),
            None => {
                errors.push(format!(
                    "{path}: an ISO 8601 time or epoch seconds was expected, found '{x}'"
                ));
                None
            }
        },
        _ => None,
    }
}

/// Parses `2026-11-22T10:00:00Z`, with optional fractions and `±HH:MM` offsets, to epoch seconds.
pub fn parse_iso8601(text: &str) -> Option<f64> {
    let text = text.trim();
    let (date, rest) = text.split_at_checked(10)?;
    let mut d = date.split('-');
    let (y, m, day): (i64, i64, i64) = (
        d.next()?.parse().ok()?,
        d.next()?.parse().ok()?,
        d.next()?.parse().ok()?,
    );
    if !(1..=12).contains(&m) || !(1..=31).contains(&day) {
        return None;
    }
    let rest = rest.strip_prefix(['T', 't', ' ']).unwrap_or(rest);
    let (clock, offset) = match rest.find(['Z', 'z', '+', '-']) {
        Some(i) => rest.split_at(i),
        None => (rest, ""),
    };
    let mut c = clock.split(':');
    let h: f64 = c
        .next()
        .filter(|x| !x.is_empty())
        .map_or(Some(0.0), |x| x.parse().ok())?;
    let mi: f64 = c.next().map_or(Some(0.0), |x| x.parse().ok())?;
    let sec: f64 = c.next().map_or(Some(0.0), |x| x.parse().ok())?;
    let offset_seconds = match offset {
        "" | "Z" | "z" => 0.0,
        o => {
            let sign = if o.starts_with('-') { -1.0 } else { 1.0 };
            let digits: String = o[1..].chars().filter(|c| c.is_ascii_digit()).collect();
            let (oh, om) = digits.split_at_checked(2)?;
            sign * (oh.parse::<f64>().ok()? * 3600.0 + om.parse::<f64>().unwrap_or(0.0) * 60.0)
        }
    };
    // Days from civil (Howard Hinnant).
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    Some(days as f64 * 86_400.0 + h * 3600.0 + mi * 60.0 + sec - offset_seconds)
}

fn dimensions(v: &Value, path: &str, errors: &mut Vec<String>) -> Vec<Dimension> {
    let items = list(v, "Dimensions");
    if items.len() > 30 {
        errors.push(format!(
            "{path}.Dimensions: at most 30 were expected, found {}",
            items.len()
        ));
    }
    items
        .iter()
        .enumerate()
        .map(|(i, d)| {
            let p = format!("{path}.Dimensions.member.{}", i + 1);
            Dimension::new(
                required(d, "Name", &format!("{p}.Name"), errors),
                required(d, "Value", &format!("{p}.Value"), errors),
            )
        })
        .collect()
}

fn metric_id(v: &Value, path: &str, errors: &mut Vec<String>) -> MetricId {
    let prefix = if path.is_empty() {
        String::new()
    } else {
        format!("{path}.")
    };
    MetricId::new(
        required(v, "Namespace", &format!("{prefix}Namespace"), errors),
        required(v, "MetricName", &format!("{prefix}MetricName"), errors),
        dimensions(v, path.trim_end_matches('.'), errors),
    )
}

fn metric_json(id: &MetricId) -> Value {
    json!({
        "Namespace": id.namespace,
        "MetricName": id.name,
        "Dimensions": id.dimensions.iter().map(|d| json!({"Name": d.name, "Value": d.value})).collect::<Vec<_>>(),
    })
}

fn page(v: &Value, default_size: usize, max_key: &str, errors: &mut Vec<String>) -> (usize, usize) {
    let start = s(v, "NextToken")
        .and_then(|t| t.parse::<usize>().ok())
        .unwrap_or(0);
    let size =
        int(v, max_key, max_key, errors).map_or(default_size, |n| n.clamp(1, 10_000) as usize);
    (start, size)
}

fn next_token(out: &mut Map<String, Value>, start: usize, size: usize, total: usize) {
    if start + size < total {
        out.insert(
            "NextToken".into(),
            Value::String((start + size).to_string()),
        );
    }
}

fn errors_or(errors: Vec<String>) -> Result<(), ApiError> {
    if errors.is_empty() {
        Ok(())
    } else {
        Err(ApiError::invalid(errors))
    }
}

// ---- operations ----

/// Runs one operation on `input` at `now` (seconds since the epoch).
pub fn call(cw: &CloudWatch, op: &str, input: &Value, now: f64) -> Result<Value, ApiError> {
    match op {
        "PutMetricData" => put_metric_data(cw, input, now),
        "GetMetricStatistics" => get_metric_statistics(cw, input, now),
        "GetMetricData" => get_metric_data(cw, input, now),
        "ListMetrics" => list_metrics(cw, input, now),
        "PutMetricAlarm" => put_metric_alarm(cw, input, now),
        "PutCompositeAlarm" => put_composite_alarm(cw, input, now),
        "DescribeAlarms" => describe_alarms(cw, input),
        "DescribeAlarmHistory" => describe_alarm_history(cw, input),
        "SetAlarmState" => set_alarm_state(cw, input, now),
        "DeleteAlarms" => {
            cw.alarms.delete_alarms(&strings(input, "AlarmNames"))?;
            Ok(json!({}))
        }
        "PutDashboard" => {
            let mut errors = Vec::new();
            let name = required(input, "DashboardName", "DashboardName", &mut errors);
            let body = required(input, "DashboardBody", "DashboardBody", &mut errors);
            errors_or(errors)?;
            cw.dashboards.put(&name, &body, now)?;
            Ok(json!({"DashboardValidationMessages": []}))
        }
        "GetDashboard" => {
            let mut errors = Vec::new();
            let name = required(input, "DashboardName", "DashboardName", &mut errors);
            errors_or(errors)?;
            let d = cw.dashboards.get(&name)?;
            Ok(
                json!({"DashboardArn": dashboard_arn(&d.name), "DashboardBody": d.body, "DashboardName": d.name}),
            )
        }
        "ListDashboards" => {
            let prefix = s(input, "DashboardNamePrefix");
            let entries: Vec<Value> = cw
                .dashboards
                .list(prefix.as_deref())
                .into_iter()
                .map(|d| json!({"DashboardName": d.name, "DashboardArn": dashboard_arn(&d.name), "LastModified": d.last_modified, "Size": d.body.len()}))
                .collect();
            Ok(json!({"DashboardEntries": entries}))
        }
        "DeleteDashboards" => {
            cw.dashboards.delete(&strings(input, "DashboardNames"))?;
            Ok(json!({}))
        }
        _ => Err(ApiError::client(
            "InvalidAction",
            format!(
                "operation {op} is not supported by berth's CloudWatch; supported: {}",
                OPERATIONS.join(", ")
            ),
        )),
    }
}

fn dashboard_arn(name: &str) -> String {
    format!("arn:aws:cloudwatch::000000000000:dashboard/{name}")
}

fn put_metric_data(cw: &CloudWatch, input: &Value, now: f64) -> Result<Value, ApiError> {
    let mut errors = Vec::new();
    let namespace = required(input, "Namespace", "Namespace", &mut errors);
    let items = list(input, "MetricData");
    if items.is_empty() {
        errors.push("MetricData: at least one datum was expected, found none".into());
    }
    if items.len() > 1000 {
        errors.push(format!(
            "MetricData: at most 1000 datums were expected, found {}",
            items.len()
        ));
    }
    let mut data = Vec::with_capacity(items.len());
    for (i, d) in items.iter().enumerate() {
        let p = format!("MetricData.member.{}", i + 1);
        let name = required(d, "MetricName", &format!("{p}.MetricName"), &mut errors);
        let dims = dimensions(d, &p, &mut errors);
        let ts = time(d, "Timestamp", &format!("{p}.Timestamp"), &mut errors).unwrap_or(now);
        if ts < now - 14.0 * 86_400.0 || ts > now + 2.0 * 3600.0 {
            errors.push(format!("{p}.Timestamp: a time within the last two weeks and at most two hours ahead was expected, found {ts}"));
        }
        let value = num(d, "Value", &format!("{p}.Value"), &mut errors);
        let values: Vec<f64> = list(d, "Values")
            .iter()
            .filter_map(|v| v.as_f64().or_else(|| v.as_str()?.parse().ok()))
            .collect();
        let counts: Vec<f64> = list(d, "Counts")
            .iter()
            .filter_map(|v| v.as_f64().or_else(|| v.as_str()?.parse().ok()))
            .collect();
        let set = d.get("StatisticValues").filter(|v| v.is_object());
        let given = usize::from(value.is_some())
            + usize::from(!values.is_empty())
            + usize::from(set.is_some());
        if given != 1 {
            errors.push(format!(
                "{p}: exactly one of Value, Values or StatisticValues was expected, found {given}"
            ));
        }
        let sample = if let Some(v) = value {
            Sample::Value(v)
        } else if let Some(set) = set {
            let sp = format!("{p}.StatisticValues");
            let get = |k: &str, errors: &mut Vec<String>| {
                num(set, k, &format!("{sp}.{k}"), errors).unwrap_or_else(|| {
                    errors.push(format!("{sp}.{k}: a number was expected, found none"));
                    0.0
                })
            };
            let (sample_count, sum, minimum, maximum) = (
                get("SampleCount", &mut errors),
                get("Sum", &mut errors),
                get("Minimum", &mut errors),
                get("Maximum", &mut errors),
            );
            if sample_count <= 0.0 || minimum > maximum {
                errors.push(format!("{sp}: SampleCount > 0 and Minimum <= Maximum were expected, found {sample_count}, {minimum}, {maximum}"));
            }
            Sample::StatisticSet {
                sample_count,
                sum,
                minimum,
                maximum,
            }
        } else {
            if !counts.is_empty() && counts.len() != values.len() {
                errors.push(format!(
                    "{p}.Counts: as many counts as values ({}) were expected, found {}",
                    values.len(),
                    counts.len()
                ));
            }
            Sample::Values { values, counts }
        };
        let finite = match &sample {
            Sample::Value(v) => v.is_finite(),
            Sample::Values { values, counts } => values.iter().chain(counts).all(|v| v.is_finite()),
            Sample::StatisticSet {
                sample_count,
                sum,
                minimum,
                maximum,
            } => [sample_count, sum, minimum, maximum]
                .iter()
                .all(|v| v.is_finite()),
        };
        if !finite {
            errors.push(format!(
                "{p}: finite numbers were expected (NaN and Infinity are refused)"
            ));
        }
        data.push(MetricDatum {
            id: MetricId::new(namespace.clone(), name, dims),
            unit: s(d, "Unit").filter(|u| u != "None"),
            timestamp: ts.floor() as i64,
            sample,
        });
    }
    errors_or(errors)?;
    cw.metrics.put_at(&data, now.floor() as i64);
    Ok(json!({}))
}

fn statistics_json(stats: &[Statistic], values: &[f64], out: &mut Map<String, Value>) {
    let mut extended = Map::new();
    for (stat, v) in stats.iter().zip(values) {
        if !v.is_finite() {
            continue;
        }
        if stat.is_percentile() {
            extended.insert(stat.to_string(), json!(v));
        } else {
            out.insert(stat.to_string(), json!(v));
        }
    }
    if !extended.is_empty() {
        out.insert("ExtendedStatistics".into(), Value::Object(extended));
    }
}

fn get_metric_statistics(cw: &CloudWatch, input: &Value, now: f64) -> Result<Value, ApiError> {
    let mut errors = Vec::new();
    let id = metric_id(input, "", &mut errors);
    let start = time(input, "StartTime", "StartTime", &mut errors);
    let end = time(input, "EndTime", "EndTime", &mut errors);
    let period = int(input, "Period", "Period", &mut errors);
    if start.is_none() {
        errors.push("StartTime: a value was expected, found none".into());
    }
    if end.is_none() {
        errors.push("EndTime: a value was expected, found none".into());
    }
    if period.is_none() {
        errors.push("Period: a value was expected, found none".into());
    }
    let mut stats = Vec::new();
    for (i, name) in strings(input, "Statistics").iter().enumerate() {
        match Statistic::parse(name).filter(|s| !s.is_percentile()) {
            Some(s) => stats.push(s),
            None => errors.push(format!("Statistics.member.{}: SampleCount, Average, Sum, Minimum or Maximum was expected, found '{name}'", i + 1)),
        }
    }
    for (i, name) in strings(input, "ExtendedStatistics").iter().enumerate() {
        match Statistic::parse(name).filter(Statistic::is_percentile) {
            Some(s) => stats.push(s),
            None => errors.push(format!("ExtendedStatistics.member.{}: a percentile such as p99 or p99.9 was expected, found '{name}'", i + 1)),
        }
    }
    if stats.is_empty() {
        errors.push(
            "Statistics: at least one of Statistics or ExtendedStatistics was expected, found none"
                .into(),
        );
    }
    errors_or(errors)?;
    let (start, end, period) = (
        start.unwrap_or(0.0) as i64,
        end.unwrap_or(0.0) as i64,
        period.unwrap_or(60),
    );
    if period > 0 && (end - start) / period > 1440 {
        return Err(ApiError::client(
            "InvalidParameterCombination",
            format!("You have requested up to {} datapoints, which exceeds the limit of 1440. You may reduce the datapoints requested by increasing Period, or decreasing the time range.", (end - start) / period),
        ));
    }
    let q = MetricQuery {
        id: id.clone(),
        start,
        end,
        period,
        statistics: stats.clone(),
        unit: s(input, "Unit"),
    };
    let dps = cw
        .metrics
        .query_at(&q, now as i64)
        .map_err(|e| ApiError::client("InvalidParameterCombination", e.to_string()))?;
    let unit = cw.metrics.unit(&id).unwrap_or_else(|| "None".into());
    let datapoints: Vec<Value> = dps
        .iter()
        .map(|d| {
            let mut m = Map::new();
            m.insert("Timestamp".into(), json!(d.timestamp as f64));
            statistics_json(&stats, &d.values, &mut m);
            m.insert("Unit".into(), json!(unit));
            Value::Object(m)
        })
        .collect();
    Ok(json!({"Label": id.name, "Datapoints": datapoints}))
}

fn get_metric_data(cw: &CloudWatch, input: &Value, now: f64) -> Result<Value, ApiError> {
    let mut errors = Vec::new();
    let start = time(input, "StartTime", "StartTime", &mut errors).unwrap_or_else(|| {
        errors.push("StartTime: a value was expected, found none".into());
        0.0
    }) as i64;
    let end = time(input, "EndTime", "EndTime", &mut errors).unwrap_or_else(|| {
        errors.push("EndTime: a value was expected, found none".into());
        0.0
    }) as i64;
    let ascending = s(input, "ScanBy").as_deref() == Some("TimestampAscending");
    let max_points = int(input, "MaxDatapoints", "MaxDatapoints", &mut errors)
        .unwrap_or(100_800)
        .max(1) as usize;
    let queries = list(input, "MetricDataQueries");
    if queries.is_empty() || queries.len() > 500 {
        errors.push(format!(
            "MetricDataQueries: 1 to 500 queries were expected, found {}",
            queries.len()
        ));
    }
    let mut planned = Vec::new();
    for (i, q) in queries.iter().enumerate() {
        let p = format!("MetricDataQueries.member.{}", i + 1);
        let qid = required(q, "Id", &format!("{p}.Id"), &mut errors);
        if !qid.is_empty() && !qid.starts_with(|c: char| c.is_ascii_lowercase()) {
            errors.push(format!(
                "{p}.Id: a name starting with a lowercase letter was expected, found '{qid}'"
            ));
        }
        if q.get("Expression").is_some_and(|e| !e.is_null()) {
            errors.push(format!(
                "{p}.Expression: metric math is not supported by berth; use MetricStat"
            ));
            continue;
        }
        let Some(stat) = q.get("MetricStat").filter(|m| m.is_object()) else {
            errors.push(format!("{p}.MetricStat: a value was expected, found none"));
            continue;
        };
        let sp = format!("{p}.MetricStat");
        let metric = stat.get("Metric").cloned().unwrap_or(Value::Null);
        let id = metric_id(&metric, &format!("{sp}.Metric"), &mut errors);
        let period =
            int(stat, "Period", &format!("{sp}.Period"), &mut errors).unwrap_or_else(|| {
                errors.push(format!("{sp}.Period: a value was expected, found none"));
                60
            });
        let stat_name = required(stat, "Stat", &format!("{sp}.Stat"), &mut errors);
        let statistic = Statistic::parse(&stat_name);
        if statistic.is_none() && !stat_name.is_empty() {
            errors.push(format!("{sp}.Stat: SampleCount, Average, Sum, Minimum, Maximum or pNN.NN was expected, found '{stat_name}'"));
        }
        let label = s(q, "Label").unwrap_or_else(|| id.name.clone());
        let return_data =
            boolean(q, "ReturnData", &format!("{p}.ReturnData"), &mut errors).unwrap_or(true);
        planned.push((
            qid,
            label,
            return_data,
            MetricQuery {
                id,
                start,
                end,
                period,
                statistics: vec![statistic.unwrap_or(Statistic::Average)],
                unit: s(stat, "Unit"),
            },
        ));
    }
    errors_or(errors)?;
    let mut results = Vec::new();
    let mut total = 0usize;
    for (qid, label, return_data, q) in planned {
        if !return_data {
            continue;
        }
        let mut dps = cw
            .metrics
            .query_at(&q, now as i64)
            .map_err(|e| ApiError::client("InvalidParameterCombination", e.to_string()))?;
        if !ascending {
            dps.reverse();
        }
        total += dps.len();
        if total > max_points {
            return Err(ApiError::client(
                "InvalidParameterCombination",
                format!("the queries return {total} datapoints, more than MaxDatapoints ({max_points}); narrow the time range or raise the period"),
            ));
        }
        let timestamps: Vec<f64> = dps.iter().map(|d| d.timestamp as f64).collect();
        let values: Vec<f64> = dps.iter().map(|d| d.values[0]).collect();
        results.push(json!({
            "Id": qid,
            "Label": label,
            "Timestamps": timestamps,
            "Values": values,
            "StatusCode": "Complete",
        }));
    }
    Ok(json!({"MetricDataResults": results, "Messages": []}))
}

fn list_metrics(cw: &CloudWatch, input: &Value, now: f64) -> Result<Value, ApiError> {
    let mut errors = Vec::new();
    let dims: Vec<(String, Option<String>)> = list(input, "Dimensions")
        .iter()
        .enumerate()
        .map(|(i, d)| {
            (
                required(
                    d,
                    "Name",
                    &format!("Dimensions.member.{}.Name", i + 1),
                    &mut errors,
                ),
                s(d, "Value"),
            )
        })
        .collect();
    let active_since = match s(input, "RecentlyActive").as_deref() {
        None => None,
        Some("PT3H") => Some(now as i64 - 3 * 3600),
        Some(other) => {
            errors.push(format!(
                "RecentlyActive: PT3H was expected, found '{other}'"
            ));
            None
        }
    };
    let (start, size) = page(input, 500, "MaxRecords__", &mut errors);
    errors_or(errors)?;
    let all = cw.metrics.list(&MetricFilter {
        namespace: s(input, "Namespace"),
        name: s(input, "MetricName"),
        dimensions: dims,
        active_since,
    });
    let metrics: Vec<Value> = all.iter().skip(start).take(size).map(metric_json).collect();
    let mut out = Map::new();
    out.insert("Metrics".into(), Value::Array(metrics));
    next_token(&mut out, start, size, all.len());
    Ok(Value::Object(out))
}

fn actions(input: &Value, errors: &mut Vec<String>) -> AlarmActions {
    AlarmActions {
        actions_enabled: boolean(input, "ActionsEnabled", "ActionsEnabled", errors).unwrap_or(true),
        ok_actions: strings(input, "OKActions"),
        alarm_actions: strings(input, "AlarmActions"),
        insufficient_data_actions: strings(input, "InsufficientDataActions"),
    }
}

fn put_metric_alarm(cw: &CloudWatch, input: &Value, now: f64) -> Result<Value, ApiError> {
    let mut errors = Vec::new();
    for unsupported in ["Metrics", "ThresholdMetricId"] {
        if input
            .get(unsupported)
            .is_some_and(|v| !v.is_null() && v != &json!([]))
        {
            errors.push(format!("{unsupported}: metric math and anomaly detection alarms are not supported by berth; use MetricName/Namespace/Statistic"));
        }
    }
    let name = required(input, "AlarmName", "AlarmName", &mut errors);
    let metric = metric_id(input, "", &mut errors);
    let statistic = match (s(input, "Statistic"), s(input, "ExtendedStatistic")) {
        (Some(st), None) => st,
        (None, Some(ext)) => {
            if !Statistic::parse(&ext).is_some_and(|s| s.is_percentile()) {
                errors.push(format!(
                    "ExtendedStatistic: a percentile such as p99 was expected, found '{ext}'"
                ));
            }
            ext
        }
        (Some(_), Some(_)) => {
            errors.push(
                "Statistic: exactly one of Statistic or ExtendedStatistic was expected, found both"
                    .into(),
            );
            String::new()
        }
        (None, None) => {
            errors.push(
                "Statistic: exactly one of Statistic or ExtendedStatistic was expected, found none"
                    .into(),
            );
            String::new()
        }
    };
    let op_text = required(
        input,
        "ComparisonOperator",
        "ComparisonOperator",
        &mut errors,
    );
    let comparison_operator = ComparisonOperator::parse(&op_text);
    if comparison_operator.is_none() && !op_text.is_empty() {
        errors.push(format!("ComparisonOperator: GreaterThanOrEqualToThreshold, GreaterThanThreshold, LessThanThreshold or LessThanOrEqualToThreshold was expected, found '{op_text}' (anomaly detection is not supported)"));
    }
    let treat = s(input, "TreatMissingData").unwrap_or_else(|| "missing".into());
    let treat_missing_data = TreatMissingData::parse(&treat);
    if treat_missing_data.is_none() {
        errors.push(format!("TreatMissingData: breaching, notBreaching, ignore or missing was expected, found '{treat}'"));
    }
    let period = int(input, "Period", "Period", &mut errors);
    if period.is_none() {
        errors.push("Period: a value was expected, found none".into());
    }
    let evaluation_periods = int(input, "EvaluationPeriods", "EvaluationPeriods", &mut errors)
        .unwrap_or_else(|| {
            errors.push("EvaluationPeriods: a value was expected, found none".into());
            1
        });
    let datapoints_to_alarm = int(input, "DatapointsToAlarm", "DatapointsToAlarm", &mut errors)
        .unwrap_or(evaluation_periods);
    let threshold = num(input, "Threshold", "Threshold", &mut errors);
    if threshold.is_none() {
        errors.push("Threshold: a value was expected, found none".into());
    }
    let actions = actions(input, &mut errors);
    errors_or(errors)?;
    let alarm = MetricAlarm {
        alarm_name: name,
        alarm_description: s(input, "AlarmDescription"),
        actions,
        metric,
        statistic,
        unit: s(input, "Unit"),
        period: period.unwrap_or(60),
        evaluation_periods: u32::try_from(evaluation_periods).unwrap_or(0),
        datapoints_to_alarm: u32::try_from(datapoints_to_alarm).unwrap_or(0),
        threshold: threshold.unwrap_or(0.0),
        comparison_operator: comparison_operator
            .unwrap_or(ComparisonOperator::GreaterThanThreshold),
        treat_missing_data: treat_missing_data.unwrap_or(TreatMissingData::Missing),
        evaluate_low_sample_count_percentile: s(input, "EvaluateLowSampleCountPercentile"),
    };
    cw.alarms.put_metric_alarm(alarm, now)?;
    Ok(json!({}))
}

fn put_composite_alarm(cw: &CloudWatch, input: &Value, now: f64) -> Result<Value, ApiError> {
    let mut errors = Vec::new();
    let alarm = CompositeAlarm {
        alarm_name: required(input, "AlarmName", "AlarmName", &mut errors),
        alarm_description: s(input, "AlarmDescription"),
        alarm_rule: required(input, "AlarmRule", "AlarmRule", &mut errors),
        actions: actions(input, &mut errors),
    };
    errors_or(errors)?;
    cw.alarms.put_composite_alarm(alarm, now)?;
    Ok(json!({}))
}

fn alarm_json(a: &berth_metrics::alarm::Alarm) -> Value {
    let acts = a.definition.actions();
    let mut m = Map::new();
    let mut put = |k: &str, v: Value| {
        if !v.is_null() {
            m.insert(k.into(), v);
        }
    };
    put("AlarmName", json!(a.definition.name()));
    put("AlarmArn", json!(a.arn));
    put(
        "AlarmConfigurationUpdatedTimestamp",
        json!(a.configuration_updated),
    );
    put("ActionsEnabled", json!(acts.actions_enabled));
    put("OKActions", json!(acts.ok_actions));
    put("AlarmActions", json!(acts.alarm_actions));
    put(
        "InsufficientDataActions",
        json!(acts.insufficient_data_actions),
    );
    put("StateValue", json!(a.state.value.as_str()));
    put("StateReason", json!(a.state.reason));
    put("StateReasonData", json!(a.state.reason_data));
    put("StateUpdatedTimestamp", json!(a.state.updated));
    put("StateTransitionedTimestamp", json!(a.state.transitioned));
    match &a.definition {
        AlarmDefinition::Metric(ma) => {
            put("AlarmDescription", json!(ma.alarm_description));
            put("MetricName", json!(ma.metric.name));
            put("Namespace", json!(ma.metric.namespace));
            if ma.parsed_statistic().is_percentile() {
                put("ExtendedStatistic", json!(ma.statistic));
            } else {
                put("Statistic", json!(ma.statistic));
            }
            put("Dimensions", metric_json(&ma.metric)["Dimensions"].clone());
            put("Period", json!(ma.period));
            put("Unit", json!(ma.unit));
            put("EvaluationPeriods", json!(ma.evaluation_periods));
            put("DatapointsToAlarm", json!(ma.datapoints_to_alarm));
            put("Threshold", json!(ma.threshold));
            put("ComparisonOperator", json!(ma.comparison_operator.as_str()));
            put("TreatMissingData", json!(ma.treat_missing_data.as_str()));
            put(
                "EvaluateLowSampleCountPercentile",
                json!(ma.evaluate_low_sample_count_percentile),
            );
        }
        AlarmDefinition::Composite(c) => {
            put("AlarmDescription", json!(c.alarm_description));
            put("AlarmRule", json!(c.alarm_rule));
        }
    }
    Value::Object(m)
}

fn describe_alarms(cw: &CloudWatch, input: &Value) -> Result<Value, ApiError> {
    let mut errors = Vec::new();
    let types = strings(input, "AlarmTypes");
    for (i, t) in types.iter().enumerate() {
        if t != "MetricAlarm" && t != "CompositeAlarm" {
            errors.push(format!(
                "AlarmTypes.member.{}: MetricAlarm or CompositeAlarm was expected, found '{t}'",
                i + 1
            ));
        }
    }
    let state = s(input, "StateValue");
    let state_value = state.as_deref().map(|v| {
        StateValue::parse(v).unwrap_or_else(|| {
            errors.push(format!(
                "StateValue: OK, ALARM or INSUFFICIENT_DATA was expected, found '{v}'"
            ));
            StateValue::OK
        })
    });
    let names = strings(input, "AlarmNames");
    let prefix = s(input, "AlarmNamePrefix");
    if !names.is_empty() && prefix.is_some() {
        errors.push(
            "AlarmNamePrefix: either AlarmNames or AlarmNamePrefix was expected, found both".into(),
        );
    }
    let (start, size) = page(input, 100, "MaxRecords", &mut errors);
    errors_or(errors)?;
    // CloudWatch: without AlarmTypes only metric alarms are returned.
    let filter = AlarmFilter {
        names,
        name_prefix: prefix,
        state: state_value,
        action_prefix: s(input, "ActionPrefix"),
        metric_alarms: types.is_empty() || types.iter().any(|t| t == "MetricAlarm"),
        composite_alarms: types.iter().any(|t| t == "CompositeAlarm"),
    };
    let all = cw.alarms.describe(&filter);
    let window: Vec<&berth_metrics::alarm::Alarm> = all.iter().skip(start).take(size).collect();
    let (metric, composite): (Vec<_>, Vec<_>) = window
        .into_iter()
        .partition(|a| a.alarm_type() == "MetricAlarm");
    let mut out = Map::new();
    out.insert(
        "MetricAlarms".into(),
        Value::Array(metric.into_iter().map(alarm_json).collect()),
    );
    out.insert(
        "CompositeAlarms".into(),
        Value::Array(composite.into_iter().map(alarm_json).collect()),
    );
    next_token(&mut out, start, size, all.len());
    Ok(Value::Object(out))
}

fn describe_alarm_history(cw: &CloudWatch, input: &Value) -> Result<Value, ApiError> {
    let mut errors = Vec::new();
    let item_type = s(input, "HistoryItemType");
    if let Some(t) = &item_type {
        if !["ConfigurationUpdate", "StateUpdate", "Action"].contains(&t.as_str()) {
            errors.push(format!("HistoryItemType: ConfigurationUpdate, StateUpdate or Action was expected, found '{t}'"));
        }
    }
    let start_date = time(input, "StartDate", "StartDate", &mut errors);
    let end_date = time(input, "EndDate", "EndDate", &mut errors);
    let types = strings(input, "AlarmTypes");
    let (start, size) = page(input, 100, "MaxRecords", &mut errors);
    errors_or(errors)?;
    let mut items = cw.alarms.history(
        s(input, "AlarmName").as_deref(),
        item_type.as_deref(),
        start_date,
        end_date,
    );
    if !types.is_empty() {
        items.retain(|i| types.contains(&i.alarm_type));
    }
    if s(input, "ScanBy").as_deref() == Some("TimestampAscending") {
        items.reverse();
    }
    let list: Vec<Value> = items
        .iter()
        .skip(start)
        .take(size)
        .map(|i| {
            json!({
                "AlarmName": i.alarm_name,
                "AlarmType": i.alarm_type,
                "Timestamp": i.timestamp,
                "HistoryItemType": i.history_item_type,
                "HistorySummary": i.history_summary,
                "HistoryData": i.history_data,
            })
        })
        .collect();
    let mut out = Map::new();
    out.insert("AlarmHistoryItems".into(), Value::Array(list));
    next_token(&mut out, start, size, items.len());
    Ok(Value::Object(out))
}

fn set_alarm_state(cw: &CloudWatch, input: &Value, now: f64) -> Result<Value, ApiError> {
    let mut errors = Vec::new();
    let name = required(input, "AlarmName", "AlarmName", &mut errors);
    let value_text = required(input, "StateValue", "StateValue", &mut errors);
    let value = StateValue::parse(&value_text);
    if value.is_none() && !value_text.is_empty() {
        errors.push(format!(
            "StateValue: OK, ALARM or INSUFFICIENT_DATA was expected, found '{value_text}'"
        ));
    }
    let reason = required(input, "StateReason", "StateReason", &mut errors);
    errors_or(errors)?;
    let reason_data = s(input, "StateReasonData");
    if let Some(d) = &reason_data {
        if serde_json::from_str::<Value>(d).is_err() {
            return Err(ApiError::client(
                "InvalidFormat",
                format!("StateReasonData: JSON was expected, found '{d}'"),
            ));
        }
    }
    cw.alarms.set_alarm_state(
        &name,
        value.unwrap_or(StateValue::OK),
        &reason,
        reason_data,
        now,
    )?;
    Ok(json!({}))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn iso_times_parse_with_offsets_and_fractions() {
        assert_eq!(parse_iso8601("1970-01-01T00:00:00Z"), Some(0.0));
        assert_eq!(
            parse_iso8601("2026-11-22T10:01:00.500Z"),
            Some(1_795_341_660.5)
        );
        assert_eq!(
            parse_iso8601("2026-11-22T11:01:00+01:00"),
            Some(1_795_341_660.0)
        );
        assert_eq!(parse_iso8601("2026-11-22"), Some(1_795_305_600.0));
        assert_eq!(parse_iso8601("yesterday"), None);
        assert_eq!(parse_iso8601("2026-13-01T00:00:00Z"), None);
    }
}
