//! CloudWatch Logs operations (`Logs_20140328`) over the embedded log store: log groups and
//! streams, events (Put/Get/Filter), retention, metric filters and Logs Insights queries.

use crate::error::ApiError;
use crate::logs::metric_filter::{self, MetricFilter, MetricTransformation};
use crate::logs::pattern::FilterPattern;
use crate::logs::query::Query;
use crate::logs::{now_ms, LogStore, StreamInfo, DAY_MS, RETENTION_DAYS};
use crate::state::ControlPlane;
use berth_model::protocol::agent::LogEvent;
use serde_json::{json, Map, Value};

fn err(code: &'static str, message: impl Into<String>) -> ApiError {
    ApiError {
        code,
        message: message.into(),
        status: 400,
    }
}

fn invalid(message: impl Into<String>) -> ApiError {
    err("InvalidParameterException", message)
}

fn s<'a>(input: &'a Map<String, Value>, f: &str) -> Option<&'a str> {
    input.get(f).and_then(Value::as_str)
}

fn req<'a>(input: &'a Map<String, Value>, f: &str) -> Result<&'a str, ApiError> {
    s(input, f)
        .filter(|v| !v.is_empty())
        .ok_or_else(|| invalid(format!("{f}: expected a value, found nothing")))
}

fn n(input: &Map<String, Value>, f: &str) -> Option<i64> {
    input.get(f).and_then(Value::as_i64)
}

fn flag(input: &Map<String, Value>, f: &str) -> bool {
    input.get(f).and_then(Value::as_bool).unwrap_or(false)
}

fn strings(input: &Map<String, Value>, f: &str) -> Vec<String> {
    input
        .get(f)
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|v| v.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

/// `limit` within [1, max], `default` when absent.
fn limit(input: &Map<String, Value>, f: &str, default: i64, max: i64) -> Result<usize, ApiError> {
    match n(input, f) {
        None => Ok(default as usize),
        Some(v) if (1..=max).contains(&v) => Ok(v as usize),
        Some(v) => Err(invalid(format!("{f}: expected 1 to {max}, found {v}"))),
    }
}

/// A log group name from an ARN (`arn:aws:logs:r:a:log-group:NAME[:*]`) or a plain name.
fn name_of(identifier: &str) -> &str {
    match identifier.split_once(":log-group:") {
        Some((_, rest)) => rest.strip_suffix(":*").unwrap_or(rest),
        None => identifier,
    }
}

fn group_of(input: &Map<String, Value>) -> Result<&str, ApiError> {
    match (s(input, "logGroupName"), s(input, "logGroupIdentifier")) {
        (Some(g), None) if !g.is_empty() => Ok(g),
        (None, Some(id)) if !id.is_empty() => Ok(name_of(id)),
        (Some(_), Some(_)) => Err(invalid(
            "logGroupName, logGroupIdentifier: expected one of them, found both",
        )),
        _ => Err(invalid("logGroupName: expected a value, found nothing")),
    }
}

fn missing_group(g: &str) -> ApiError {
    err(
        "ResourceNotFoundException",
        format!("The specified log group does not exist: {g}"),
    )
}

fn missing_stream(st: &str) -> ApiError {
    err(
        "ResourceNotFoundException",
        format!("The specified log stream does not exist: {st}"),
    )
}

fn io(e: std::io::Error) -> ApiError {
    ApiError::server(format!("log store: {e}"))
}

/// Whether a `/`-separated name has a `.` or `..` segment (`../x`, `a/./b`, `..`).
fn has_dot_segment(name: &str) -> bool {
    name.split('/').any(|s| s == "." || s == "..")
}

fn validate_group_name(g: &str) -> Result<(), ApiError> {
    let ok = (1..=512).contains(&g.len())
        && g.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._-/#".contains(&b));
    if !ok {
        return Err(invalid(format!(
            "logGroupName: expected 1 to 512 of a-z A-Z 0-9 . _ - / #, found {g:?}"
        )));
    }
    if has_dot_segment(g) {
        return Err(invalid(format!(
            "logGroupName: expected a name without `.` or `..` path segments, found {g:?}"
        )));
    }
    Ok(())
}

fn validate_stream_name(st: &str) -> Result<(), ApiError> {
    if !(1..=512).contains(&st.len()) || st.contains(':') || st.contains('*') {
        return Err(invalid(format!(
            "logStreamName: expected 1 to 512 characters without `:` or `*`, found {st:?}"
        )));
    }
    if has_dot_segment(st) || st.chars().any(char::is_control) {
        return Err(invalid(format!(
            "logStreamName: expected a name without control characters or `.` or `..` path segments, found {st:?}"
        )));
    }
    Ok(())
}

fn parse_pattern(text: &str) -> Result<FilterPattern, ApiError> {
    FilterPattern::parse(text).map_err(|e| invalid(format!("filterPattern: {e}")))
}

/// A position in a stream's time-ordered events: the `rank`-th event with timestamp `ts`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
struct Pos {
    ts: i64,
    rank: usize,
}

/// Positions of time-sorted events.
fn positions(events: &[LogEvent]) -> Vec<Pos> {
    let mut out: Vec<Pos> = Vec::with_capacity(events.len());
    for (i, e) in events.iter().enumerate() {
        let rank = match i.checked_sub(1).map(|j| (&events[j], out[j])) {
            Some((prev, p)) if prev.timestamp == e.timestamp => p.rank + 1,
            _ => 0,
        };
        out.push(Pos {
            ts: e.timestamp,
            rank,
        });
    }
    out
}

fn parse_token(token: &str) -> Option<(char, Pos)> {
    let mut parts = token.splitn(3, '/');
    let dir = parts.next()?.chars().next()?;
    let ts = parts.next()?.parse().ok()?;
    let rank = parts.next()?.parse().ok()?;
    Some((dir, Pos { ts, rank }))
}

fn token(dir: char, p: Pos) -> String {
    format!("{dir}/{:020}/{}", p.ts, p.rank)
}

/// Runs one CloudWatch Logs operation.
pub fn call(cp: &ControlPlane, operation: &str, input: Value) -> Result<Value, ApiError> {
    let input = input.as_object().cloned().unwrap_or_default();
    let logs = cp.logs();
    if let Some(m) = cp.metrics() {
        logs.attach_metrics(m.clone());
    }
    let group_arn = |g: &str| {
        format!(
            "arn:aws:logs:{}:{}:log-group:{g}",
            cp.arns().region,
            cp.arns().account
        )
    };
    match operation {
        "CreateLogGroup" => {
            let g = req(&input, "logGroupName")?;
            validate_group_name(g)?;
            if !logs.create_group(g).map_err(io)? {
                return Err(err(
                    "ResourceAlreadyExistsException",
                    format!("The specified log group already exists: {g}"),
                ));
            }
            Ok(json!({}))
        }
        "DeleteLogGroup" => {
            let g = group_of(&input)?;
            if !logs.delete_group(g).map_err(io)? {
                return Err(missing_group(g));
            }
            Ok(json!({}))
        }
        "DescribeLogGroups" => {
            let prefix = s(&input, "logGroupNamePrefix");
            let pattern = s(&input, "logGroupNamePattern");
            if prefix.is_some() && pattern.is_some() {
                return Err(invalid("logGroupNamePrefix, logGroupNamePattern: expected at most one of them, found both"));
            }
            let pattern = pattern.map(str::to_lowercase);
            let lim = limit(&input, "limit", 50, 50)?;
            let after = s(&input, "nextToken").unwrap_or("");
            let all: Vec<_> = logs
                .groups()
                .into_iter()
                .filter(|g| prefix.is_none_or(|p| g.name.starts_with(p)))
                .filter(|g| {
                    pattern
                        .as_ref()
                        .is_none_or(|p| g.name.to_lowercase().contains(p.as_str()))
                })
                .filter(|g| after.is_empty() || g.name.as_str() > after)
                .collect();
            let more = all.len() > lim;
            let page: Vec<Value> = all
                .iter()
                .take(lim)
                .map(|g| {
                    let mut v = json!({
                        "logGroupName": g.name,
                        "creationTime": g.meta.creation_time,
                        "metricFilterCount": g.meta.metric_filters.len(),
                        "arn": format!("{}:*", group_arn(&g.name)),
                        "logGroupArn": group_arn(&g.name),
                        "storedBytes": g.stored_bytes,
                        "logGroupClass": "STANDARD",
                    });
                    if let Some(d) = g.meta.retention_in_days {
                        v["retentionInDays"] = json!(d);
                    }
                    v
                })
                .collect();
            let mut out = json!({ "logGroups": page });
            if more {
                out["nextToken"] = json!(all[lim - 1].name);
            }
            Ok(out)
        }
        "CreateLogStream" => {
            let g = req(&input, "logGroupName")?;
            let st = req(&input, "logStreamName")?;
            validate_stream_name(st)?;
            match logs.create_stream(g, st) {
                Ok(true) => Ok(json!({})),
                Ok(false) => Err(err(
                    "ResourceAlreadyExistsException",
                    format!("The specified log stream already exists: {st}"),
                )),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => Err(missing_group(g)),
                Err(e) => Err(io(e)),
            }
        }
        "DeleteLogStream" => {
            let g = req(&input, "logGroupName")?;
            let st = req(&input, "logStreamName")?;
            if logs.group(g).is_none() {
                return Err(missing_group(g));
            }
            if !logs.delete_stream(g, st).map_err(io)? {
                return Err(missing_stream(st));
            }
            Ok(json!({}))
        }
        "DescribeLogStreams" => describe_log_streams(logs, &input, &group_arn),
        "PutLogEvents" => put_log_events(logs, &input),
        "GetLogEvents" => get_log_events(logs, &input),
        "FilterLogEvents" => filter_log_events(logs, &input),
        "PutRetentionPolicy" => {
            let g = req(&input, "logGroupName")?;
            let days = n(&input, "retentionInDays").ok_or_else(|| {
                invalid("retentionInDays: expected a number of days, found nothing")
            })?;
            if !RETENTION_DAYS.iter().any(|d| i64::from(*d) == days) {
                return Err(invalid(format!(
                    "retentionInDays: expected one of {RETENTION_DAYS:?}, found {days}"
                )));
            }
            logs.update_group(g, |m| m.retention_in_days = Some(days as u32))
                .map_err(io)?
                .ok_or_else(|| missing_group(g))?;
            Ok(json!({}))
        }
        "DeleteRetentionPolicy" => {
            let g = req(&input, "logGroupName")?;
            logs.update_group(g, |m| m.retention_in_days = None)
                .map_err(io)?
                .ok_or_else(|| missing_group(g))?;
            Ok(json!({}))
        }
        "PutMetricFilter" => {
            let g = req(&input, "logGroupName")?;
            let transformations: Vec<MetricTransformation> = serde_json::from_value(
                input
                    .get("metricTransformations")
                    .cloned()
                    .unwrap_or(Value::Array(vec![])),
            )
            .map_err(|e| invalid(format!("metricTransformations: {e}")))?;
            let filter = MetricFilter {
                filter_name: s(&input, "filterName").unwrap_or("").to_string(),
                filter_pattern: s(&input, "filterPattern").unwrap_or("").to_string(),
                metric_transformations: transformations,
                creation_time: now_ms(),
            };
            let errors = metric_filter::validate(&filter);
            if !errors.is_empty() {
                return Err(invalid(errors.join("; ")));
            }
            let added = logs
                .update_group(g, |m| {
                    let at = m
                        .metric_filters
                        .iter()
                        .position(|f| f.filter_name == filter.filter_name);
                    match at {
                        Some(i) => {
                            m.metric_filters[i] = filter;
                            true
                        }
                        None if m.metric_filters.len() >= 100 => false,
                        None => {
                            m.metric_filters.push(filter);
                            true
                        }
                    }
                })
                .map_err(io)?
                .ok_or_else(|| missing_group(g))?;
            if !added {
                return Err(err(
                    "LimitExceededException",
                    "a log group has at most 100 metric filters",
                ));
            }
            Ok(json!({}))
        }
        "DeleteMetricFilter" => {
            let g = req(&input, "logGroupName")?;
            let name = req(&input, "filterName")?;
            let removed = logs
                .update_group(g, |m| {
                    let before = m.metric_filters.len();
                    m.metric_filters.retain(|f| f.filter_name != name);
                    before != m.metric_filters.len()
                })
                .map_err(io)?
                .ok_or_else(|| missing_group(g))?;
            if !removed {
                return Err(err(
                    "ResourceNotFoundException",
                    format!("The specified metric filter does not exist: {name}"),
                ));
            }
            Ok(json!({}))
        }
        "DescribeMetricFilters" => {
            let group = s(&input, "logGroupName");
            let prefix = s(&input, "filterNamePrefix");
            if prefix.is_some() && group.is_none() {
                return Err(invalid(
                    "filterNamePrefix: needs logGroupName, found no logGroupName",
                ));
            }
            let metric_name = s(&input, "metricName");
            let namespace = s(&input, "metricNamespace");
            if metric_name.is_some() != namespace.is_some() {
                return Err(invalid(
                    "metricName, metricNamespace: expected both or neither",
                ));
            }
            if let Some(g) = group {
                if logs.group(g).is_none() {
                    return Err(missing_group(g));
                }
            }
            let lim = limit(&input, "limit", 50, 50)?;
            let skip: usize = s(&input, "nextToken")
                .and_then(|t| t.parse().ok())
                .unwrap_or(0);
            let mut all = Vec::new();
            for g in logs.groups() {
                if group.is_some_and(|x| x != g.name) {
                    continue;
                }
                for f in g.meta.metric_filters {
                    if prefix.is_some_and(|p| !f.filter_name.starts_with(p)) {
                        continue;
                    }
                    if let (Some(mn), Some(ns)) = (metric_name, namespace) {
                        if !f
                            .metric_transformations
                            .iter()
                            .any(|t| t.metric_name == mn && t.metric_namespace == ns)
                        {
                            continue;
                        }
                    }
                    let mut v =
                        serde_json::to_value(&f).map_err(|e| ApiError::server(e.to_string()))?;
                    v["logGroupName"] = json!(g.name);
                    all.push(v);
                }
            }
            let next = (skip + lim < all.len()).then(|| (skip + lim).to_string());
            let page: Vec<Value> = all.into_iter().skip(skip).take(lim).collect();
            Ok(json!({ "metricFilters": page, "nextToken": next }))
        }
        "TestMetricFilter" => {
            let pattern = parse_pattern(s(&input, "filterPattern").unwrap_or(""))?;
            let messages = strings(&input, "logEventMessages");
            if messages.is_empty() || messages.len() > 50 {
                return Err(invalid(format!(
                    "logEventMessages: expected 1 to 50 messages, found {}",
                    messages.len()
                )));
            }
            let matches: Vec<Value> = messages
                .iter()
                .enumerate()
                .filter(|(_, m)| pattern.matches(m))
                .map(|(i, m)| json!({"eventNumber": i + 1, "eventMessage": m, "extractedValues": {}}))
                .collect();
            Ok(json!({ "matches": matches }))
        }
        "StartQuery" => start_query(cp, &input),
        "GetQueryResults" => {
            let id = req(&input, "queryId")?;
            let r = logs.queries.get(id).ok_or_else(|| {
                err(
                    "ResourceNotFoundException",
                    format!("The query {id} does not exist"),
                )
            })?;
            let results: Vec<Value> = r
                .output
                .rows
                .iter()
                .map(|row| {
                    Value::Array(
                        row.iter()
                            .map(|(f, v)| json!({"field": f, "value": v}))
                            .collect(),
                    )
                })
                .collect();
            let st = r.output.stats;
            let mut out = json!({
                "status": r.status,
                "results": results,
                "statistics": {
                    "recordsMatched": st.records_matched as f64,
                    "recordsScanned": st.records_scanned as f64,
                    "bytesScanned": st.bytes_scanned as f64,
                },
            });
            if let Some(e) = r.error {
                out["errorMessage"] = json!(e);
            }
            Ok(out)
        }
        "StopQuery" => {
            let id = req(&input, "queryId")?;
            if logs.queries.get(id).is_none() {
                return Err(err(
                    "ResourceNotFoundException",
                    format!("The query {id} does not exist"),
                ));
            }
            Ok(json!({ "success": logs.queries.stop(id) }))
        }
        "DescribeQueries" => {
            let group = s(&input, "logGroupName");
            let status = s(&input, "status");
            let max = limit(&input, "maxResults", 1000, 1000)?;
            let skip: usize = s(&input, "nextToken")
                .and_then(|t| t.parse().ok())
                .unwrap_or(0);
            let all: Vec<Value> = logs
                .queries
                .list()
                .into_iter()
                .filter(|q| group.is_none_or(|g| q.log_group_names.iter().any(|x| x == g)))
                .filter(|q| status.is_none_or(|s| s == q.status))
                .map(|q| {
                    json!({
                        "queryId": q.query_id,
                        "queryString": q.query_string,
                        "status": q.status,
                        "createTime": q.create_time,
                        "logGroupName": q.log_group_names.first(),
                        "queryLanguage": "CWLI",
                    })
                })
                .collect();
            let next = (skip + max < all.len()).then(|| (skip + max).to_string());
            let page: Vec<Value> = all.into_iter().skip(skip).take(max).collect();
            Ok(json!({ "queries": page, "nextToken": next }))
        }
        other => Err(ApiError::unknown_operation(other)),
    }
}

fn describe_log_streams(
    logs: &LogStore,
    input: &Map<String, Value>,
    group_arn: &dyn Fn(&str) -> String,
) -> Result<Value, ApiError> {
    let g = group_of(input)?;
    let prefix = s(input, "logStreamNamePrefix");
    let by_time = match s(input, "orderBy") {
        None | Some("LogStreamName") => false,
        Some("LastEventTime") => true,
        Some(o) => {
            return Err(invalid(format!(
                "orderBy: expected LogStreamName or LastEventTime, found {o:?}"
            )))
        }
    };
    if by_time && prefix.is_some() {
        return Err(invalid(
            "logStreamNamePrefix: cannot be used with orderBy LastEventTime",
        ));
    }
    let streams = logs.streams(g).ok_or_else(|| missing_group(g))?;
    let mut out: Vec<(String, StreamInfo)> = streams
        .into_iter()
        .filter(|(n, _)| prefix.is_none_or(|p| n.starts_with(p)))
        .collect();
    if by_time {
        out.sort_by(|(a, x), (b, y)| x.last_event.cmp(&y.last_event).then(a.cmp(b)));
    }
    if flag(input, "descending") {
        out.reverse();
    }
    let lim = limit(input, "limit", 50, 50)?;
    let skip: usize = s(input, "nextToken")
        .and_then(|t| t.parse().ok())
        .unwrap_or(0);
    let next = (skip + lim < out.len()).then(|| (skip + lim).to_string());
    let page: Vec<Value> = out
        .into_iter()
        .skip(skip)
        .take(lim)
        .map(|(name, i)| {
            let mut v = json!({
                "logStreamName": name,
                "creationTime": i.creation_time,
                "arn": format!("{}:log-stream:{name}", group_arn(g)),
                "storedBytes": i.stored_bytes,
            });
            if let Some(t) = i.first_event {
                v["firstEventTimestamp"] = json!(t);
            }
            if let Some(t) = i.last_event {
                v["lastEventTimestamp"] = json!(t);
            }
            if let Some(t) = i.last_ingestion {
                v["lastIngestionTime"] = json!(t);
            }
            v
        })
        .collect();
    Ok(json!({ "logStreams": page, "nextToken": next }))
}

fn put_log_events(logs: &LogStore, input: &Map<String, Value>) -> Result<Value, ApiError> {
    let g = req(input, "logGroupName")?;
    let st = req(input, "logStreamName")?;
    let meta = logs.group(g).ok_or_else(|| missing_group(g))?;
    if !logs.streams(g).unwrap_or_default().contains_key(st) {
        return Err(missing_stream(st));
    }
    let raw = input
        .get("logEvents")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    if raw.is_empty() || raw.len() > 10_000 {
        return Err(invalid(format!(
            "logEvents: expected 1 to 10000 events, found {}",
            raw.len()
        )));
    }
    let mut events = Vec::with_capacity(raw.len());
    let mut errors = Vec::new();
    let mut bytes = 0usize;
    for (i, e) in raw.iter().enumerate() {
        match (
            e.get("timestamp").and_then(Value::as_i64),
            e.get("message").and_then(Value::as_str),
        ) {
            (Some(t), Some(m)) if !m.is_empty() => {
                bytes += m.len() + 26;
                events.push(LogEvent {
                    timestamp: t,
                    message: m.to_string(),
                });
            }
            _ => errors.push(format!(
                "logEvents[{i}]: expected {{timestamp, message}} with a non-empty message"
            )),
        }
    }
    if !errors.is_empty() {
        return Err(invalid(errors.join("; ")));
    }
    if bytes > 1_048_576 {
        return Err(invalid(format!(
            "logEvents: expected at most 1048576 bytes in a batch, found {bytes}"
        )));
    }
    if events.windows(2).any(|w| w[1].timestamp < w[0].timestamp) {
        return Err(invalid(
            "logEvents: log events in a single PutLogEvents request must be in chronological order",
        ));
    }
    if let (Some(first), Some(last)) = (events.first(), events.last()) {
        if last.timestamp - first.timestamp > DAY_MS {
            return Err(invalid(
                "logEvents: a batch of log events cannot span more than 24 hours",
            ));
        }
    }
    let now = now_ms();
    let too_new = now + 2 * 3_600_000;
    let too_old = now - 14 * DAY_MS;
    let expired = meta.retention_in_days.map(|d| now - i64::from(d) * DAY_MS);
    let mut rejected = Map::new();
    let old_end = events
        .iter()
        .position(|e| e.timestamp >= too_old)
        .unwrap_or(events.len());
    if old_end > 0 {
        rejected.insert("tooOldLogEventEndIndex".into(), json!(old_end));
    }
    let exp_end = expired.map_or(0, |c| {
        events
            .iter()
            .position(|e| e.timestamp >= c)
            .unwrap_or(events.len())
    });
    if exp_end > 0 {
        rejected.insert("expiredLogEventEndIndex".into(), json!(exp_end));
    }
    let new_start = events
        .iter()
        .position(|e| e.timestamp > too_new)
        .unwrap_or(events.len());
    if new_start < events.len() {
        rejected.insert("tooNewLogEventStartIndex".into(), json!(new_start));
    }
    let from = old_end.max(exp_end).min(new_start);
    logs.append(g, st, &events[from..new_start]).map_err(io)?;
    let mut out = json!({ "nextSequenceToken": format!("{:056}", now) });
    if !rejected.is_empty() {
        out["rejectedLogEventsInfo"] = Value::Object(rejected);
    }
    Ok(out)
}

fn get_log_events(logs: &LogStore, input: &Map<String, Value>) -> Result<Value, ApiError> {
    let g = group_of(input)?;
    let st = req(input, "logStreamName")?;
    let streams = logs.streams(g).ok_or_else(|| missing_group(g))?;
    if !streams.contains_key(st) {
        return Err(missing_stream(st));
    }
    let lim = limit(input, "limit", 10_000, 10_000)?;
    let from_head = flag(input, "startFromHead");
    let given = s(input, "nextToken").filter(|t| !t.is_empty());
    let parsed = match given {
        Some(t) => Some(
            parse_token(t)
                .filter(|(d, _)| *d == 'f' || *d == 'b')
                .ok_or_else(|| {
                    invalid(format!(
                        "nextToken: expected a token from GetLogEvents, found {t:?}"
                    ))
                })?,
        ),
        None => None,
    };
    let events = logs
        .events(g, st, n(input, "startTime"), n(input, "endTime"))
        .map_err(io)?;
    let pos = positions(&events);
    // [start, end) indexes of the page.
    let (start, end) = match parsed {
        Some(('f', p)) => {
            let i = pos.partition_point(|x| *x < p);
            (i, (i + lim).min(events.len()))
        }
        Some((_, p)) => {
            let i = pos.partition_point(|x| *x < p);
            (i.saturating_sub(lim), i)
        }
        None if from_head => (0, lim.min(events.len())),
        None => (events.len().saturating_sub(lim), events.len()),
    };
    let page: Vec<Value> = events[start..end]
        .iter()
        .map(|e| json!({"timestamp": e.timestamp, "message": e.message, "ingestionTime": e.timestamp}))
        .collect();
    // An empty page hands back the token it was given, which is how clients know they are done.
    let (forward, backward) = if start == end {
        match (given, parsed) {
            (Some(t), _) => (t.to_string(), t.to_string()),
            _ => {
                let p = pos.get(start).copied().unwrap_or(Pos {
                    ts: events.last().map_or(0, |e| e.timestamp + 1),
                    rank: 0,
                });
                (token('f', p), token('b', p))
            }
        }
    } else {
        let last = pos[end - 1];
        (
            token(
                'f',
                Pos {
                    ts: last.ts,
                    rank: last.rank + 1,
                },
            ),
            token('b', pos[start]),
        )
    };
    Ok(json!({ "events": page, "nextForwardToken": forward, "nextBackwardToken": backward }))
}

fn filter_log_events(logs: &LogStore, input: &Map<String, Value>) -> Result<Value, ApiError> {
    let g = group_of(input)?;
    let streams = logs.streams(g).ok_or_else(|| missing_group(g))?;
    let names = strings(input, "logStreamNames");
    let prefix = s(input, "logStreamNamePrefix");
    if !names.is_empty() && prefix.is_some() {
        return Err(invalid(
            "logStreamNames, logStreamNamePrefix: expected at most one of them, found both",
        ));
    }
    let pattern = parse_pattern(s(input, "filterPattern").unwrap_or(""))?;
    let lim = limit(input, "limit", 10_000, 10_000)?;
    // Token: the last returned event's (timestamp, stream, rank).
    let after: Option<(i64, String, usize)> = match s(input, "nextToken").filter(|t| !t.is_empty())
    {
        Some(t) => {
            let mut parts = t.splitn(3, '/');
            let parsed = (|| {
                let ts = parts.next()?.parse().ok()?;
                let rank = parts.next()?.parse().ok()?;
                Some((ts, parts.next()?.to_string(), rank))
            })();
            Some(parsed.ok_or_else(|| {
                invalid(format!(
                    "nextToken: expected a token from FilterLogEvents, found {t:?}"
                ))
            })?)
        }
        None => None,
    };
    let start = match (n(input, "startTime"), &after) {
        (s, Some((ts, _, _))) => Some(s.map_or(*ts, |s| s.max(*ts))),
        (s, None) => s,
    };
    let end = n(input, "endTime");
    let mut all: Vec<(i64, &str, usize, LogEvent)> = Vec::new();
    let mut searched = Vec::new();
    for name in streams
        .keys()
        .filter(|n| names.is_empty() || names.contains(n))
        .filter(|n| prefix.is_none_or(|p| n.starts_with(p)))
    {
        searched.push(json!({"logStreamName": name, "searchedCompletely": true}));
        let events = logs.events(g, name, start, end).map_err(io)?;
        let pos = positions(&events);
        for (e, p) in events.into_iter().zip(pos) {
            let key = (p.ts, name.as_str(), p.rank);
            if let Some((ts, st, rank)) = &after {
                if key <= (*ts, st.as_str(), *rank) {
                    continue;
                }
            }
            if pattern.matches(&e.message) {
                all.push((p.ts, name.as_str(), p.rank, e));
            }
        }
    }
    all.sort_by(|a, b| (a.0, a.1, a.2).cmp(&(b.0, b.1, b.2)));
    let more = all.len() > lim;
    all.truncate(lim);
    let next = if more {
        all.last()
            .map(|(ts, st, rank, _)| format!("{ts}/{rank}/{st}"))
    } else {
        None
    };
    let page: Vec<Value> = all
        .iter()
        .map(|(ts, st, rank, e)| {
            json!({"logStreamName": st, "timestamp": ts, "message": e.message, "ingestionTime": ts,
                   "eventId": format!("{ts}-{rank}-{st}")})
        })
        .collect();
    let mut out = json!({ "events": page, "searchedLogStreams": searched });
    if let Some(t) = next {
        out["nextToken"] = json!(t);
    }
    Ok(out)
}

fn start_query(cp: &ControlPlane, input: &Map<String, Value>) -> Result<Value, ApiError> {
    let logs = cp.logs();
    let mut groups = strings(input, "logGroupNames");
    groups.extend(
        strings(input, "logGroupIdentifiers")
            .iter()
            .map(|i| name_of(i).to_string()),
    );
    if let Some(g) = s(input, "logGroupName") {
        groups.push(g.to_string());
    }
    if groups.is_empty() {
        return Err(invalid(
            "logGroupNames: expected at least one log group, found none",
        ));
    }
    for g in &groups {
        if logs.group(g).is_none() {
            return Err(missing_group(g));
        }
    }
    let (Some(start), Some(end)) = (n(input, "startTime"), n(input, "endTime")) else {
        return Err(invalid(
            "startTime, endTime: expected epoch seconds, found nothing",
        ));
    };
    if end < start {
        return Err(invalid(format!(
            "endTime: expected at or after startTime {start}, found {end}"
        )));
    }
    let text = req(input, "queryString")?;
    let query = Query::parse(text).map_err(|e| err("MalformedQueryException", e.to_string()))?;
    let lim = limit(input, "limit", 10_000, 10_000)?;
    let (id, cancel) = logs
        .queries
        .register(text, &groups)
        .ok_or_else(|| err("LimitExceededException", "too many queries are running"))?;
    let cp = cp.clone();
    let qid = id.clone();
    std::thread::Builder::new()
        .name("logs-query".into())
        .spawn(move || {
            let logs = cp.logs();
            if !logs.queries.set_running(&qid) {
                return;
            }
            let r = crate::logs::scan::run_query(
                logs,
                &groups,
                start.saturating_mul(1000),
                end.saturating_mul(1000).saturating_add(1000),
                &query,
                lim,
                &cancel,
            );
            logs.queries.finish(&qid, r);
        })
        .map_err(|e| ApiError::server(format!("cannot start the query: {e}")))?;
    Ok(json!({ "queryId": id }))
}

#[cfg(test)]
mod tests;
