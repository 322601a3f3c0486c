//! ECS's `secrets[].valueFrom` for Secrets Manager: a secret name, a (partial) ARN, or
//! `arn:aws:secretsmanager:<region>:<account>:secret:<name>:<json-key>:<version-stage>:<version-id>`
//! where each of the last three may be empty.

use crate::error::SecretsError;

/// A parsed `valueFrom`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ValueFrom {
    /// Name or ARN of the secret (what `SecretId` takes).
    pub secret_id: String,
    /// Key of a JSON secret to take instead of the whole value.
    pub json_key: Option<String>,
    pub version_stage: Option<String>,
    pub version_id: Option<String>,
}

/// Parses a `valueFrom`; errors name what was expected.
pub fn parse(value_from: &str) -> Result<ValueFrom, SecretsError> {
    let s = value_from.trim();
    if s.is_empty() {
        return Err(SecretsError::InvalidParameter(
            "valueFrom: expected a secret name or ARN, found an empty string".into(),
        ));
    }
    if !s.starts_with("arn:") {
        if s.contains(':') {
            return Err(SecretsError::InvalidParameter(format!(
                "valueFrom: expected a secret name or an arn:aws:secretsmanager ARN, found {s:?}"
            )));
        }
        return Ok(ValueFrom {
            secret_id: s.to_string(),
            json_key: None,
            version_stage: None,
            version_id: None,
        });
    }
    let parts: Vec<&str> = s.split(':').collect();
    if parts.len() < 7
        || parts.len() > 10
        || parts[2] != "secretsmanager"
        || parts[5] != "secret"
        || parts[6].is_empty()
    {
        return Err(SecretsError::InvalidParameter(format!(
            "valueFrom: expected arn:aws:secretsmanager:<region>:<account>:secret:<name>[:<json-key>:<version-stage>:<version-id>], found {s:?}"
        )));
    }
    let opt = |i: usize| {
        parts
            .get(i)
            .filter(|p| !p.is_empty())
            .map(|p| p.to_string())
    };
    Ok(ValueFrom {
        secret_id: parts[..7].join(":"),
        json_key: opt(7),
        version_stage: opt(8),
        version_id: opt(9),
    })
}

/// The value of `key` in a JSON-object secret (strings as they are, other values as JSON text).
/// Errors never include the secret's value.
pub fn json_key(value: &str, key: &str) -> Result<String, SecretsError> {
    let parsed: serde_json::Value = serde_json::from_str(value).map_err(|_| {
        SecretsError::InvalidRequest(format!(
            "json-key {key:?}: expected the secret value to be a JSON object, it is not JSON"
        ))
    })?;
    let obj = parsed.as_object().ok_or_else(|| {
        SecretsError::InvalidRequest(format!(
            "json-key {key:?}: expected the secret value to be a JSON object"
        ))
    })?;
    match obj.get(key) {
        Some(serde_json::Value::String(s)) => Ok(s.clone()),
        Some(other) => Ok(other.to_string()),
        None => Err(SecretsError::InvalidRequest(format!(
            "json-key {key:?}: the secret's JSON object has no such key"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_arns_and_ecs_suffixes_parse() {
        let v = parse("db-password").unwrap();
        assert_eq!(v.secret_id, "db-password");
        assert_eq!(v.json_key, None);
        let arn = "arn:aws:secretsmanager:us-east-1:000000000000:secret:db-AbCdEf";
        assert_eq!(parse(arn).unwrap().secret_id, arn);
        let v = parse(&format!("{arn}:password:AWSPREVIOUS:")).unwrap();
        assert_eq!(v.secret_id, arn);
        assert_eq!(v.json_key.as_deref(), Some("password"));
        assert_eq!(v.version_stage.as_deref(), Some("AWSPREVIOUS"));
        assert_eq!(v.version_id, None);
        let v = parse(&format!("{arn}:::1234")).unwrap();
        assert_eq!(v.json_key, None);
        assert_eq!(v.version_stage, None);
        assert_eq!(v.version_id.as_deref(), Some("1234"));
    }

    #[test]
    fn malformed_value_from_is_refused() {
        for bad in [
            "",
            "a:b",
            "arn:aws:ssm:us-east-1:0:parameter/x",
            "arn:aws:secretsmanager:us-east-1:0:secret",
            "arn:aws:secretsmanager:us-east-1:0:secret:x:a:b:c:d",
        ] {
            let e = parse(bad).unwrap_err();
            assert_eq!(e.code(), "InvalidParameterException", "{bad}");
        }
    }

    #[test]
    fn json_keys_select_without_leaking_values() {
        let v = r#"{"user":"admin","password":"hunter2","port":5432}"#;
        assert_eq!(json_key(v, "password").unwrap(), "hunter2");
        assert_eq!(json_key(v, "port").unwrap(), "5432");
        let e = json_key(v, "nope").unwrap_err();
        assert!(!e.to_string().contains("hunter2"));
        let e = json_key("plain-s3cret", "k").unwrap_err();
        assert!(!e.to_string().contains("plain-s3cret"));
    }
}
