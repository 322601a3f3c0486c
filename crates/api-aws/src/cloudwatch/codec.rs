//! CloudWatch's three encodings mapped onto `serde_json::Value`: rpc-v2-cbor (timestamps as
//! CBOR tag 1), awsJson 1.0 (timestamps as epoch seconds) and query (form in, XML out).
//! Output timestamps are plain numbers in the operation layer; the field names in
//! [`TIMESTAMP_FIELDS`] say which numbers are times.

use crate::elbv2::xml::{iso8601, Xml};
use ciborium::value::Value as Cbor;
use serde_json::{Map, Number, Value};
use std::collections::BTreeMap;

/// Output members whose numbers are timestamps (seconds since the epoch).
pub const TIMESTAMP_FIELDS: &[&str] = &[
    "Timestamp",
    "Timestamps",
    "AlarmConfigurationUpdatedTimestamp",
    "StateUpdatedTimestamp",
    "StateTransitionedTimestamp",
    "LastModified",
];

/// Output members that are maps (query XML writes them as `entry`/`key`/`value`).
const MAP_FIELDS: &[&str] = &["ExtendedStatistics"];

/// The CloudWatch XML namespace.
pub const XML_NAMESPACE: &str = "http://monitoring.amazonaws.com/doc/2010-08-01/";

/// Decodes a CBOR body (empty = `{}`) into JSON-like data; tag 1 becomes seconds.
pub fn cbor_to_value(body: &[u8]) -> Result<Value, String> {
    if body.is_empty() {
        return Ok(Value::Object(Map::new()));
    }
    let v: Cbor =
        ciborium::de::from_reader(body).map_err(|e| format!("the body is not CBOR: {e}"))?;
    Ok(from_cbor(v))
}

fn from_cbor(v: Cbor) -> Value {
    match v {
        Cbor::Integer(i) => {
            let i = i128::from(i);
            i64::try_from(i)
                .map(Value::from)
                .or_else(|_| u64::try_from(i).map(Value::from))
                .unwrap_or(Value::Null)
        }
        Cbor::Float(f) => Number::from_f64(f).map_or(Value::Null, Value::Number),
        Cbor::Text(s) => Value::String(s),
        Cbor::Bytes(b) => Value::String(String::from_utf8_lossy(&b).into_owned()),
        Cbor::Bool(b) => Value::Bool(b),
        Cbor::Null => Value::Null,
        Cbor::Tag(_, inner) => from_cbor(*inner),
        Cbor::Array(a) => Value::Array(a.into_iter().map(from_cbor).collect()),
        Cbor::Map(m) => Value::Object(
            m.into_iter()
                .filter_map(|(k, v)| match k {
                    Cbor::Text(k) => Some((k, from_cbor(v))),
                    _ => None,
                })
                .collect(),
        ),
        _ => Value::Null,
    }
}

/// Encodes output as CBOR, tagging the timestamp members with tag 1.
pub fn value_to_cbor(v: &Value) -> Vec<u8> {
    let mut out = Vec::new();
    // Writing into a Vec cannot fail for I/O reasons, and every Value maps to CBOR.
    if ciborium::ser::into_writer(&to_cbor(v, false), &mut out).is_err() {
        out.clear();
    }
    out
}

fn to_cbor(v: &Value, timestamp: bool) -> Cbor {
    match v {
        Value::Null => Cbor::Null,
        Value::Bool(b) => Cbor::Bool(*b),
        Value::Number(n) => {
            let plain = if let Some(i) = n.as_i64() {
                Cbor::Integer(i.into())
            } else if let Some(u) = n.as_u64() {
                Cbor::Integer(u.into())
            } else {
                Cbor::Float(n.as_f64().unwrap_or(0.0))
            };
            if timestamp {
                Cbor::Tag(1, Box::new(Cbor::Float(n.as_f64().unwrap_or(0.0))))
            } else {
                plain
            }
        }
        Value::String(s) => Cbor::Text(s.clone()),
        Value::Array(a) => Cbor::Array(a.iter().map(|x| to_cbor(x, timestamp)).collect()),
        Value::Object(m) => Cbor::Map(
            m.iter()
                .map(|(k, x)| {
                    (
                        Cbor::Text(k.clone()),
                        to_cbor(x, TIMESTAMP_FIELDS.contains(&k.as_str())),
                    )
                })
                .collect(),
        ),
    }
}

#[derive(Debug, Default)]
struct FormNode {
    value: Option<String>,
    children: BTreeMap<String, FormNode>,
}

/// Decodes a query-protocol form body into JSON-like data: `X.member.N` lists become arrays,
/// dotted keys nest, every value stays a string (the operation layer reads numbers from strings).
/// Returns the data and the `Action`.
pub fn form_to_value(body: &[u8]) -> Result<(String, Value), String> {
    let pairs: Vec<(String, String)> = serde_urlencoded::from_bytes(body)
        .map_err(|e| format!("the body is not form-urlencoded: {e}"))?;
    let mut root = FormNode::default();
    let mut action = None;
    for (key, value) in pairs {
        if key == "Action" {
            action = Some(value);
            continue;
        }
        if key == "Version" {
            continue;
        }
        crate::elbv2::query::check_key_depth(&key)?;
        let mut node = &mut root;
        for segment in key.split('.') {
            node = node.children.entry(segment.to_string()).or_default();
        }
        node.value = Some(value);
    }
    let action = action.ok_or("Action: a value was expected, found none")?;
    Ok((action, form_node(root)))
}

fn form_node(node: FormNode) -> Value {
    if node.children.is_empty() {
        return node.value.map_or(Value::Array(Vec::new()), Value::String);
    }
    if node.children.len() == 1 && node.children.contains_key("member") {
        let members = node.children.into_values().next().unwrap_or_default();
        let mut numbered: Vec<(u64, FormNode)> = members
            .children
            .into_iter()
            .filter_map(|(n, p)| n.parse::<u64>().ok().map(|n| (n, p)))
            .collect();
        numbered.sort_by_key(|(n, _)| *n);
        return Value::Array(numbered.into_iter().map(|(_, p)| form_node(p)).collect());
    }
    Value::Object(
        node.children
            .into_iter()
            .map(|(k, v)| (k, form_node(v)))
            .collect(),
    )
}

fn xml_number(n: &Number) -> String {
    if let Some(i) = n.as_i64() {
        return i.to_string();
    }
    let f = n.as_f64().unwrap_or(0.0);
    if f.fract() == 0.0 && f.abs() < 1e15 {
        format!("{f:.1}")
    } else {
        f.to_string()
    }
}

fn xml_value(x: &mut Xml, key: &str, v: &Value, timestamp: bool) {
    match v {
        Value::Null => {}
        Value::Bool(b) => x.leaf(key, if *b { "true" } else { "false" }),
        Value::Number(n) if timestamp => x.leaf(key, &iso8601(n.as_f64().unwrap_or(0.0))),
        Value::Number(n) => x.leaf(key, &xml_number(n)),
        Value::String(s) => x.leaf(key, s),
        Value::Array(items) => x.list(key, items, |x, item| xml_inner(x, item, timestamp)),
        Value::Object(m) if MAP_FIELDS.contains(&key) => {
            let entries: Vec<(&String, &Value)> = m.iter().collect();
            x.node(key, |x| {
                for (k, v) in entries {
                    x.node("entry", |x| {
                        x.leaf("key", k);
                        xml_value(x, "value", v, false);
                    });
                }
            });
        }
        Value::Object(_) => x.node(key, |x| xml_inner(x, v, false)),
    }
}

/// The inside of a list member or structure.
fn xml_inner(x: &mut Xml, v: &Value, timestamp: bool) {
    match v {
        Value::Object(m) => {
            for (k, v) in m {
                xml_value(x, k, v, TIMESTAMP_FIELDS.contains(&k.as_str()));
            }
        }
        Value::Number(n) if timestamp => x.0.push_str(&iso8601(n.as_f64().unwrap_or(0.0))),
        Value::Number(n) => x.0.push_str(&xml_number(n)),
        Value::String(s) => x.0.push_str(&quick_xml::escape::escape(s.as_str())),
        Value::Bool(b) => x.0.push_str(if *b { "true" } else { "false" }),
        Value::Array(_) | Value::Null => {}
    }
}

/// A query-protocol success document for `action` with `output` inside `<{action}Result>`.
pub fn xml_response(action: &str, output: &Value, request_id: &str) -> String {
    let mut x = Xml::default();
    x.0.push_str(&format!("<{action}Response xmlns=\"{XML_NAMESPACE}\">"));
    x.node(&format!("{action}Result"), |x| xml_inner(x, output, false));
    x.node("ResponseMetadata", |x| x.leaf("RequestId", request_id));
    x.0.push_str(&format!("</{action}Response>"));
    x.0
}

/// A query-protocol error document.
pub fn xml_error(code: &str, message: &str, sender: bool, request_id: &str) -> String {
    let mut x = Xml::default();
    x.0.push_str(&format!("<ErrorResponse xmlns=\"{XML_NAMESPACE}\">"));
    x.node("Error", |x| {
        x.leaf("Type", if sender { "Sender" } else { "Receiver" });
        x.leaf("Code", code);
        x.leaf("Message", message);
    });
    x.leaf("RequestId", request_id);
    x.0.push_str("</ErrorResponse>");
    x.0
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn cbor_round_trips_and_tags_timestamps() {
        let v = json!({"Datapoints": [{"Timestamp": 1700000000.0, "Sum": 2.5, "Unit": "Count"}], "N": 3});
        let bytes = value_to_cbor(&v);
        let raw: Cbor = ciborium::de::from_reader(bytes.as_slice()).unwrap();
        let text = format!("{raw:?}");
        assert!(text.contains("Tag(1"), "{text}");
        assert_eq!(cbor_to_value(&bytes).unwrap(), v);
        assert_eq!(cbor_to_value(b"").unwrap(), json!({}));
        assert!(cbor_to_value(&[0xff, 0x00]).is_err());
    }

    #[test]
    fn forms_become_nested_lists_and_objects() {
        let body = b"Action=PutMetricData&Version=2010-08-01&Namespace=App&MetricData.member.2.MetricName=b&MetricData.member.1.MetricName=a&MetricData.member.1.Dimensions.member.1.Name=k&MetricData.member.1.Dimensions.member.1.Value=v&MetricData.member.10.MetricName=c&Statistics=";
        let (action, v) = form_to_value(body).unwrap();
        assert_eq!(action, "PutMetricData");
        assert_eq!(v["Namespace"], "App");
        let names: Vec<&str> = v["MetricData"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["MetricName"].as_str().unwrap())
            .collect();
        assert_eq!(names, vec!["a", "b", "c"]);
        assert_eq!(v["MetricData"][0]["Dimensions"][0]["Value"], "v");
        assert_eq!(v["Statistics"], "");
        assert!(form_to_value(b"Namespace=x").is_err());
    }

    #[test]
    fn xml_output_uses_members_entries_and_iso_times() {
        let v = json!({"Label": "m", "Datapoints": [{"Timestamp": 0.0, "Sum": 2.0, "ExtendedStatistics": {"p99": 1.5}}]});
        let doc = xml_response("GetMetricStatistics", &v, "r1");
        assert!(doc.contains("<Datapoints><member><Timestamp>1970-01-01T00:00:00.000Z</Timestamp><Sum>2.0</Sum><ExtendedStatistics><entry><key>p99</key><value>1.5</value></entry></ExtendedStatistics></member></Datapoints>"), "{doc}");
        assert!(doc.starts_with("<GetMetricStatisticsResponse xmlns=\"http://monitoring.amazonaws.com/doc/2010-08-01/\"><GetMetricStatisticsResult><Label>m</Label>"), "{doc}");
        let err = xml_error("InvalidParameterValue", "a < b", true, "r2");
        assert!(
            err.contains("<Code>InvalidParameterValue</Code><Message>a &lt; b</Message>"),
            "{err}"
        );
    }
}
