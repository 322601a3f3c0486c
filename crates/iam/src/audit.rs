//! The audit log: one JSON line per mutating call and per denial (`<dir>/audit.jsonl`, opened
//! append-only, each line fsynced), read back with CloudTrail's LookupEvents.

use crate::IamError;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use std::io::BufRead;
use std::path::Path;

/// One audited call.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Event {
    pub event_id: String,
    pub event_time: f64,
    /// The operation (`UpdateService`).
    pub event_name: String,
    /// The service (`ecs.amazonaws.com`).
    pub event_source: String,
    /// The user, or `anonymous` for an unauthenticated request.
    pub user_name: String,
    #[serde(default)]
    pub access_key_id: String,
    /// The resource the call was authorised against (`*` when it names none).
    pub resource: String,
    pub read_only: bool,
    /// `Allow` or `Deny`.
    pub decision: String,
    #[serde(default)]
    pub error_code: Option<String>,
    pub status: u16,
    #[serde(default)]
    pub source_ip: String,
}

/// Appends one event.
pub fn append(dir: &Path, event: &Event) -> std::io::Result<()> {
    let line = serde_json::to_string(event).map_err(std::io::Error::other)?;
    berth_secrets::append_line(&dir.join("audit.jsonl"), &line)
}

fn read_all(dir: &Path) -> Result<Vec<Event>, IamError> {
    let path = dir.join("audit.jsonl");
    let file = match std::fs::File::open(&path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(vec![]),
        Err(e) => return Err(IamError::Internal(format!("{}: {e}", path.display()))),
    };
    let mut out = Vec::new();
    for line in std::io::BufReader::new(file).lines() {
        let line = line.map_err(|e| IamError::Internal(format!("{}: {e}", path.display())))?;
        // A torn last line (crash mid-write) is skipped, not fatal.
        if let Ok(ev) = serde_json::from_str::<Event>(&line) {
            out.push(ev);
        }
    }
    Ok(out)
}

fn number(v: &Value, field: &str) -> Result<Option<f64>, IamError> {
    match v.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Number(n)) => Ok(n.as_f64()),
        Some(Value::String(s)) => chrono::DateTime::parse_from_rfc3339(s)
            .map(|d| Some(d.timestamp() as f64))
            .or_else(|_| s.parse::<f64>().map(Some))
            .map_err(|_| {
                IamError::Validation(format!(
                    "{field}: expected a timestamp (seconds since the epoch or RFC 3339)"
                ))
            }),
        Some(_) => Err(IamError::Validation(format!(
            "{field}: expected a timestamp"
        ))),
    }
}

fn matches(ev: &Event, key: &str, value: &str) -> Result<bool, IamError> {
    Ok(match key {
        "EventId" => ev.event_id == value,
        "EventName" => ev.event_name == value,
        "Username" => ev.user_name == value,
        "EventSource" => ev.event_source == value,
        "AccessKeyId" => ev.access_key_id == value,
        "ResourceName" => ev.resource == value,
        "ReadOnly" => ev.read_only.to_string() == value.to_ascii_lowercase(),
        other => {
            return Err(IamError::Validation(format!(
                "LookupAttributes.AttributeKey: expected EventId, EventName, Username, EventSource, AccessKeyId, ResourceName or ReadOnly, got {other:?}"
            )))
        }
    })
}

/// LookupEvents: newest first, filtered by `LookupAttributes` (all must match), `StartTime`,
/// `EndTime`; `MaxResults` (1–50, default 50) and `NextToken` page.
pub fn lookup(dir: &Path, input: &Value) -> Result<Value, IamError> {
    let mut attrs = Vec::new();
    if let Some(list) = input.get("LookupAttributes") {
        let items = list
            .as_array()
            .ok_or_else(|| IamError::Validation("LookupAttributes: expected a list".into()))?;
        for (i, a) in items.iter().enumerate() {
            let k = a
                .get("AttributeKey")
                .and_then(Value::as_str)
                .ok_or_else(|| {
                    IamError::Validation(format!("LookupAttributes[{i}].AttributeKey: required"))
                })?;
            let v = a
                .get("AttributeValue")
                .and_then(Value::as_str)
                .ok_or_else(|| {
                    IamError::Validation(format!("LookupAttributes[{i}].AttributeValue: required"))
                })?;
            attrs.push((k.to_string(), v.to_string()));
        }
    }
    let start = number(input, "StartTime")?;
    let end = number(input, "EndTime")?;
    let max = match input.get("MaxResults") {
        None | Some(Value::Null) => 50,
        Some(v) => match v.as_u64() {
            Some(n) if (1..=50).contains(&n) => n as usize,
            _ => {
                return Err(IamError::Validation(
                    "MaxResults: expected an integer from 1 to 50".into(),
                ))
            }
        },
    };
    let skip = match input.get("NextToken").and_then(Value::as_str) {
        None => 0,
        Some(t) => t
            .parse::<usize>()
            .map_err(|_| IamError::Validation("NextToken: not a token this API returned".into()))?,
    };
    let mut events = read_all(dir)?;
    events.reverse();
    let mut selected = Vec::new();
    for ev in events {
        if start.is_some_and(|s| ev.event_time < s) || end.is_some_and(|e| ev.event_time > e) {
            continue;
        }
        let mut ok = true;
        for (k, v) in &attrs {
            ok &= matches(&ev, k, v)?;
        }
        if ok {
            selected.push(ev);
        }
    }
    let total = selected.len();
    let page: Vec<Value> = selected
        .into_iter()
        .skip(skip)
        .take(max)
        .map(|ev| {
            json!({
                "EventId": ev.event_id,
                "EventName": ev.event_name,
                "ReadOnly": ev.read_only.to_string(),
                "AccessKeyId": ev.access_key_id,
                "EventTime": ev.event_time,
                "EventSource": ev.event_source,
                "Username": ev.user_name,
                "Resources": [{"ResourceName": ev.resource}],
                "CloudTrailEvent": serde_json::to_string(&ev).unwrap_or_default(),
            })
        })
        .collect();
    let mut out = json!({ "Events": page });
    if skip + max < total {
        out["NextToken"] = json!((skip + max).to_string());
    }
    Ok(out)
}
