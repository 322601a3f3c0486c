//! CloudWatch Logs operations (`Logs_20140328`) over the embedded log store.

use crate::error::ApiError;
use crate::state::ControlPlane;
use berth_model::protocol::agent::LogEvent;
use serde_json::{json, Map, Value};

fn err(code: &'static str, message: String) -> ApiError {
    ApiError {
        code,
        message,
        status: 400,
    }
}

fn s<'a>(input: &'a Map<String, Value>, f: &str) -> Option<&'a str> {
    input.get(f).and_then(Value::as_str)
}

fn req<'a>(input: &'a Map<String, Value>, f: &str) -> Result<&'a str, ApiError> {
    s(input, f).filter(|v| !v.is_empty()).ok_or_else(|| {
        err(
            "InvalidParameterException",
            format!("{f}: expected a value, found nothing"),
        )
    })
}

fn n(input: &Map<String, Value>, f: &str) -> Option<i64> {
    input.get(f).and_then(Value::as_i64)
}

/// Runs one CloudWatch Logs operation.
pub fn call(cp: &ControlPlane, operation: &str, input: Value) -> Result<Value, ApiError> {
    let input = input.as_object().cloned().unwrap_or_default();
    let logs = cp.logs();
    let io = |e: std::io::Error| ApiError::server(format!("log store: {e}"));
    let group_arn = |g: &str| {
        format!(
            "arn:aws:logs:{}:{}:log-group:{g}",
            cp.arns().region,
            cp.arns().account
        )
    };
    let missing_group = |g: &str| {
        err(
            "ResourceNotFoundException",
            format!("logGroupName: the log group {g} does not exist"),
        )
    };
    match operation {
        "CreateLogGroup" => {
            let g = req(&input, "logGroupName")?;
            if logs.streams(g).is_some() {
                return Err(err(
                    "ResourceAlreadyExistsException",
                    format!("logGroupName: the log group {g} already exists"),
                ));
            }
            logs.create_group(g).map_err(io)?;
            Ok(json!({}))
        }
        "DeleteLogGroup" => {
            let g = req(&input, "logGroupName")?;
            if !logs.delete_group(g).map_err(io)? {
                return Err(missing_group(g));
            }
            Ok(json!({}))
        }
        "DescribeLogGroups" => {
            let prefix = s(&input, "logGroupNamePrefix").unwrap_or("");
            let groups: Vec<Value> = logs
                .groups()
                .into_iter()
                .filter(|(g, _)| g.starts_with(prefix))
                .map(|(g, bytes)| json!({"logGroupName": g, "arn": format!("{}:*", group_arn(&g)), "storedBytes": bytes, "metricFilterCount": 0, "creationTime": 0}))
                .collect();
            Ok(json!({ "logGroups": groups }))
        }
        "CreateLogStream" => {
            let g = req(&input, "logGroupName")?;
            let st = req(&input, "logStreamName")?;
            if logs.streams(g).is_none() {
                return Err(missing_group(g));
            }
            logs.append(g, st, &[]).map_err(io)?;
            Ok(json!({}))
        }
        "DescribeLogStreams" => {
            let g = req(&input, "logGroupName")?;
            let prefix = s(&input, "logStreamNamePrefix").unwrap_or("");
            let streams = logs.streams(g).ok_or_else(|| missing_group(g))?;
            let mut out: Vec<(String, crate::logs::StreamInfo)> = streams
                .into_iter()
                .filter(|(n, _)| n.starts_with(prefix))
                .collect();
            if s(&input, "orderBy") == Some("LastEventTime") {
                out.sort_by_key(|(_, i)| i.last_event);
            }
            if input.get("descending").and_then(Value::as_bool) == Some(true) {
                out.reverse();
            }
            let limit = n(&input, "limit").unwrap_or(50).max(1) as usize;
            let v: Vec<Value> = out
                .into_iter()
                .take(limit)
                .map(|(name, i)| {
                    json!({"logStreamName": name, "arn": format!("{}:log-stream:{name}", group_arn(g)), "creationTime": i.first_event,
                           "firstEventTimestamp": i.first_event, "lastEventTimestamp": i.last_event,
                           "lastIngestionTime": i.last_ingestion, "storedBytes": i.stored_bytes})
                })
                .collect();
            Ok(json!({ "logStreams": v }))
        }
        "PutLogEvents" => {
            let g = req(&input, "logGroupName")?;
            let st = req(&input, "logStreamName")?;
            if logs.streams(g).is_none() {
                return Err(missing_group(g));
            }
            let mut events = Vec::new();
            for (i, e) in input
                .get("logEvents")
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default()
                .iter()
                .enumerate()
            {
                let (Some(t), Some(m)) = (
                    e.get("timestamp").and_then(Value::as_i64),
                    e.get("message").and_then(Value::as_str),
                ) else {
                    return Err(err(
                        "InvalidParameterException",
                        format!("logEvents[{i}]: expected {{timestamp, message}}"),
                    ));
                };
                events.push(LogEvent {
                    timestamp: t,
                    message: m.to_string(),
                });
            }
            logs.append(g, st, &events).map_err(io)?;
            Ok(json!({ "nextSequenceToken": format!("{}", events.len()) }))
        }
        "GetLogEvents" => {
            let g = req(&input, "logGroupName")?;
            let st = req(&input, "logStreamName")?;
            if logs.streams(g).is_none() {
                return Err(missing_group(g));
            }
            let events = logs
                .events(g, st, n(&input, "startTime"), n(&input, "endTime"))
                .map_err(io)?;
            let limit = n(&input, "limit").unwrap_or(10_000).clamp(1, 10_000) as usize;
            let from_head = input
                .get("startFromHead")
                .and_then(Value::as_bool)
                .unwrap_or(false);
            // Tokens are positions: f/<next index> going forward, b/<index> going back.
            let token = s(&input, "nextToken");
            let (start, end) = match token.and_then(|t| t.split_once('/')) {
                Some(("f", i)) => {
                    let i: usize = i.parse().unwrap_or(0).min(events.len());
                    (i, (i + limit).min(events.len()))
                }
                Some(("b", i)) => {
                    let i: usize = i.parse().unwrap_or(0).min(events.len());
                    (i.saturating_sub(limit), i)
                }
                _ if from_head => (0, limit.min(events.len())),
                _ => (events.len().saturating_sub(limit), events.len()),
            };
            let page: Vec<Value> = events[start..end]
                .iter()
                .map(|e| json!({"timestamp": e.timestamp, "message": e.message, "ingestionTime": e.timestamp}))
                .collect();
            Ok(
                json!({ "events": page, "nextForwardToken": format!("f/{end}"), "nextBackwardToken": format!("b/{start}") }),
            )
        }
        "FilterLogEvents" => {
            let g = req(&input, "logGroupName")?;
            let streams = logs.streams(g).ok_or_else(|| missing_group(g))?;
            let names: Vec<String> = input
                .get("logStreamNames")
                .and_then(Value::as_array)
                .map(|a| {
                    a.iter()
                        .filter_map(|v| v.as_str().map(str::to_string))
                        .collect()
                })
                .unwrap_or_default();
            let prefix = s(&input, "logStreamNamePrefix").unwrap_or("");
            let pattern = FilterPattern::parse(s(&input, "filterPattern").unwrap_or(""));
            let limit = n(&input, "limit").unwrap_or(10_000).clamp(1, 10_000) as usize;
            let mut all = Vec::new();
            let mut searched = Vec::new();
            for name in streams
                .keys()
                .filter(|n| names.is_empty() || names.contains(n))
                .filter(|n| n.starts_with(prefix))
            {
                searched.push(json!({"logStreamName": name, "searchedCompletely": true}));
                for e in logs
                    .events(g, name, n(&input, "startTime"), n(&input, "endTime"))
                    .map_err(io)?
                {
                    if pattern.matches(&e.message) {
                        all.push((e, name.clone()));
                    }
                }
            }
            all.sort_by_key(|(e, _)| e.timestamp);
            let skip: usize = s(&input, "nextToken")
                .and_then(|t| t.parse().ok())
                .unwrap_or(0);
            let page: Vec<Value> = all
                .iter()
                .enumerate()
                .skip(skip)
                .take(limit)
                .map(|(i, (e, st))| json!({"logStreamName": st, "timestamp": e.timestamp, "message": e.message, "ingestionTime": e.timestamp, "eventId": format!("{i:020}")}))
                .collect();
            let next = (skip + limit < all.len()).then(|| (skip + limit).to_string());
            Ok(json!({ "events": page, "searchedLogStreams": searched, "nextToken": next }))
        }
        other => Err(ApiError::unknown_operation(other)),
    }
}

/// A CloudWatch Logs filter pattern of terms: `ERROR`, `"exact phrase"`, `-excluded`, `?either ?or`.
/// An empty pattern matches everything. JSON selectors come with the telemetry work.
#[derive(Debug, Default, PartialEq)]
pub struct FilterPattern {
    required: Vec<String>,
    excluded: Vec<String>,
    any_of: Vec<String>,
}

impl FilterPattern {
    pub fn parse(text: &str) -> FilterPattern {
        let mut p = FilterPattern::default();
        let mut chars = text.trim().chars().peekable();
        while chars.peek().is_some() {
            while chars.peek().is_some_and(|c| c.is_whitespace()) {
                chars.next();
            }
            let kind = match chars.peek() {
                Some('-') => {
                    chars.next();
                    '-'
                }
                Some('?') => {
                    chars.next();
                    '?'
                }
                Some(_) => '+',
                None => break,
            };
            let mut term = String::new();
            if chars.peek() == Some(&'"') {
                chars.next();
                for c in chars.by_ref() {
                    if c == '"' {
                        break;
                    }
                    term.push(c);
                }
            } else {
                while let Some(c) = chars.peek().copied() {
                    if c.is_whitespace() {
                        break;
                    }
                    term.push(c);
                    chars.next();
                }
            }
            if term.is_empty() {
                continue;
            }
            match kind {
                '-' => p.excluded.push(term),
                '?' => p.any_of.push(term),
                _ => p.required.push(term),
            }
        }
        p
    }

    pub fn matches(&self, message: &str) -> bool {
        self.required.iter().all(|t| message.contains(t.as_str()))
            && !self.excluded.iter().any(|t| message.contains(t.as_str()))
            && (self.any_of.is_empty() || self.any_of.iter().any(|t| message.contains(t.as_str())))
    }
}

#[cfg(test)]
mod tests {
    use super::FilterPattern;

    #[test]
    fn filter_patterns_match_like_cloudwatch() {
        let cases = [
            ("", "anything", true),
            ("ERROR", "x ERROR y", true),
            ("ERROR", "x error y", false),
            ("ERROR -timeout", "ERROR timeout", false),
            ("ERROR -timeout", "ERROR refused", true),
            ("\"disk full\"", "the disk full now", true),
            ("\"disk full\"", "disk is full", false),
            ("?WARN ?ERROR", "a WARN", true),
            ("?WARN ?ERROR", "INFO", false),
        ];
        for (pattern, line, want) in cases {
            assert_eq!(
                FilterPattern::parse(pattern).matches(line),
                want,
                "{pattern:?} on {line:?}"
            );
        }
    }
}
