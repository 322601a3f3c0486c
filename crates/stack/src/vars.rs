//! Variables in the stack file: `${NAME}` and `${NAME:-default}` in any string value are replaced
//! before the file is checked, so one file can serve several setups (the shop example runs its
//! services as containers or as processes). `$${` is a literal `${`; any other `$` is left alone,
//! so shell text like `$PORT` in a health check passes through. Keys are never expanded. A value
//! that is exactly one reference takes the type of its text: `port: ${SHOP_PORT:-8080}` is a
//! number, `enable: ${X:-true}` a boolean.

use berth_model::FieldErrors;
use serde_json::Value;

/// Expands the variables in every string of `doc`; an unset variable without a default, or a
/// malformed reference, is an error at the string's field path.
pub(crate) fn expand(
    doc: &mut Value,
    path: &str,
    lookup: &dyn Fn(&str) -> Option<String>,
    errs: &mut FieldErrors,
) {
    match doc {
        Value::String(s) if s.contains('$') => match expand_str(s, lookup) {
            Ok(expanded) => {
                let whole = s.starts_with("${") && s.ends_with('}') && s[2..].find("${").is_none();
                *doc = match serde_json::from_str::<Value>(&expanded) {
                    // `port: ${SHOP_PORT:-8080}` is a number, as if written in place.
                    Ok(v @ (Value::Number(_) | Value::Bool(_))) if whole => v,
                    _ => Value::String(expanded),
                };
            }
            Err(message) => errs.push(display_path(path), message),
        },
        Value::Array(items) => {
            for (i, item) in items.iter_mut().enumerate() {
                expand(item, &format!("{path}[{i}]"), lookup, errs);
            }
        }
        Value::Object(map) => {
            for (key, value) in map.iter_mut() {
                let child = if path.is_empty() {
                    key.clone()
                } else {
                    format!("{path}.{key}")
                };
                expand(value, &child, lookup, errs);
            }
        }
        _ => {}
    }
}

fn display_path(path: &str) -> &str {
    if path.is_empty() {
        "(document)"
    } else {
        path
    }
}

fn valid_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// One string with its variables expanded.
pub(crate) fn expand_str(
    text: &str,
    lookup: &dyn Fn(&str) -> Option<String>,
) -> Result<String, String> {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find('$') {
        out.push_str(&rest[..at]);
        let tail = &rest[at..];
        if let Some(after) = tail.strip_prefix("$${") {
            out.push_str("${");
            rest = after;
            continue;
        }
        let Some(body) = tail.strip_prefix("${") else {
            out.push('$');
            rest = &tail[1..];
            continue;
        };
        let Some(end) = body.find('}') else {
            return Err(format!(
                "unterminated variable reference {tail:?}: expected ${{NAME}} or ${{NAME:-default}} (write $${{ for a literal ${{)"
            ));
        };
        let inner = &body[..end];
        let (name, default) = match inner.split_once(":-") {
            Some((name, default)) => (name, Some(default)),
            None => (inner, None),
        };
        if !valid_name(name) {
            return Err(format!(
                "bad variable reference ${{{inner}}}: a name is letters, digits and underscores, not starting with a digit; a default is written ${{NAME:-default}}"
            ));
        }
        // As in shells and Compose, `:-` also replaces a variable that is set but empty.
        match (lookup(name), default) {
            (Some(value), Some(default)) if value.is_empty() => out.push_str(default),
            (Some(value), _) => out.push_str(&value),
            (None, Some(default)) => out.push_str(default),
            (None, None) => {
                return Err(format!(
                    "variable {name} is not set (set it in the environment, or give a default: ${{{name}:-default}})"
                ))
            }
        }
        rest = &body[end + 1..];
    }
    out.push_str(rest);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn vars(name: &str) -> Option<String> {
        match name {
            "IMAGE" => Some("127.0.0.1:7878/berth-demo:v1".into()),
            "EMPTY" => Some(String::new()),
            _ => None,
        }
    }

    #[test]
    fn references_defaults_escapes_and_plain_dollars() {
        let cases: &[(&str, Result<&str, ()>)] = &[
            ("${IMAGE}", Ok("127.0.0.1:7878/berth-demo:v1")),
            (
                "${IMAGE:-process://berth}",
                Ok("127.0.0.1:7878/berth-demo:v1"),
            ),
            ("${UNSET:-process://berth}", Ok("process://berth")),
            ("${EMPTY:-fallback}", Ok("fallback")),
            ("${UNSET:-}", Ok("")),
            ("x${EMPTY}y", Ok("xy")),
            ("a-${IMAGE}-b", Ok("a-127.0.0.1:7878/berth-demo:v1-b")),
            (
                "berth probe http://127.0.0.1:$PORT/health",
                Ok("berth probe http://127.0.0.1:$PORT/health"),
            ),
            ("$${IMAGE} costs $5", Ok("${IMAGE} costs $5")),
            ("trailing $", Ok("trailing $")),
        ];
        for &(text, want) in cases {
            assert_eq!(
                expand_str(text, &vars).as_deref().map_err(|_| ()),
                want,
                "{text}"
            );
        }
        for bad in ["${UNSET}", "${IMAGE", "${1X}", "${}", "${A B}"] {
            assert!(expand_str(bad, &vars).is_err(), "{bad}");
        }
        assert!(expand_str("${UNSET}", &vars)
            .unwrap_err()
            .contains("variable UNSET is not set"));
    }

    #[test]
    fn every_string_is_expanded_and_errors_name_the_field() {
        let mut doc = json!({
            "name": "shop",
            "port": "${PORT:-8080}",
            "label": "v${PORT:-8080}",
            "flag": "${FLAG:-true}",
            "services": {"web": {"taskDefinition": {"containerDefinitions": [
                {"name": "web", "image": "${IMAGE:-process://berth}", "command": ["${UNSET}"]}
            ]}}}
        });
        let mut errs = FieldErrors::default();
        expand(&mut doc, "", &vars, &mut errs);
        assert_eq!(
            doc["services"]["web"]["taskDefinition"]["containerDefinitions"][0]["image"],
            "127.0.0.1:7878/berth-demo:v1"
        );
        assert_eq!(
            doc["port"],
            json!(8080),
            "a whole reference takes its text's type"
        );
        assert_eq!(doc["label"], json!("v8080"));
        assert_eq!(doc["flag"], json!(true));
        assert_eq!(errs.0.len(), 1);
        assert_eq!(
            errs.0[0].path,
            "services.web.taskDefinition.containerDefinitions[0].command[0]"
        );
    }
}
