//! The awsJson 1.0/1.1 protocols: `POST /` with `X-Amz-Target: <Prefix>.<Operation>` and a JSON
//! body; errors as `{"__type": code, "message": text}`.

/// The API a target prefix belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JsonApi {
    /// `AmazonEC2ContainerServiceV20141113`
    Ecs,
    /// `Logs_20140328`
    Logs,
    /// `AmazonEC2ContainerRegistry_V20150921`
    Ecr,
    /// `secretsmanager`
    SecretsManager,
    /// `AnyScaleFrontendService` (Application Auto Scaling)
    AutoScaling,
    /// `GraniteServiceVersion20100801` (CloudWatch over awsJson 1.0)
    CloudWatch,
}

/// Splits an `X-Amz-Target` value into its API and operation name.
pub fn parse_target(target: &str) -> Option<(JsonApi, &str)> {
    let (prefix, op) = target.split_once('.')?;
    let api = match prefix {
        "AmazonEC2ContainerServiceV20141113" => JsonApi::Ecs,
        "Logs_20140328" => JsonApi::Logs,
        "AmazonEC2ContainerRegistry_V20150921" => JsonApi::Ecr,
        "secretsmanager" => JsonApi::SecretsManager,
        "AnyScaleFrontendService" => JsonApi::AutoScaling,
        "GraniteServiceVersion20100801" => JsonApi::CloudWatch,
        _ => return None,
    };
    (!op.is_empty()).then_some((api, op))
}

/// The content type of a response for `api`.
pub fn content_type(api: JsonApi) -> &'static str {
    match api {
        JsonApi::CloudWatch => "application/x-amz-json-1.0",
        _ => "application/x-amz-json-1.1",
    }
}

/// An error body in the awsJson shape.
pub fn error_body(code: &str, message: &str) -> String {
    serde_json::json!({ "__type": code, "message": message }).to_string()
}

/// Removes `null` members recursively: AWS omits absent fields rather than sending null.
pub fn strip_nulls(v: &mut serde_json::Value) {
    match v {
        serde_json::Value::Object(m) => {
            m.retain(|_, x| !x.is_null());
            m.values_mut().for_each(strip_nulls);
        }
        serde_json::Value::Array(a) => a.iter_mut().for_each(strip_nulls),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_parse_into_api_and_operation() {
        assert_eq!(
            parse_target("AmazonEC2ContainerServiceV20141113.ListClusters"),
            Some((JsonApi::Ecs, "ListClusters"))
        );
        assert_eq!(
            parse_target("Logs_20140328.GetLogEvents"),
            Some((JsonApi::Logs, "GetLogEvents"))
        );
        assert_eq!(parse_target("Nope.X"), None);
        assert_eq!(parse_target("AmazonEC2ContainerServiceV20141113."), None);
    }

    #[test]
    fn nulls_are_stripped_and_errors_have_aws_shape() {
        let mut v = serde_json::json!({"a": null, "b": [{"c": null, "d": 1}]});
        strip_nulls(&mut v);
        assert_eq!(v, serde_json::json!({"b": [{"d": 1}]}));
        let e: serde_json::Value =
            serde_json::from_str(&error_body("ClientException", "x: bad")).unwrap();
        assert_eq!(e["__type"], "ClientException");
        assert_eq!(e["message"], "x: bad");
    }
}
