//! Authentication and authorisation of every request on the server's address: AWS SigV4 with
//! berth-issued access keys, `Authorization: Bearer <token>`, HTTP Basic for registry clients,
//! or the dashboard's session cookie. Each request is mapped to an IAM action
//! (`ecs:UpdateService`, `ecr:PutImage`, `berth:AgentReport`, ...) and a resource ARN, checked
//! against the caller's policies, and mutating calls and denials are written to the audit log.

use axum::body::{Body, Bytes};
use axum::extract::{ConnectInfo, Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use berth_iam::policy::Decision;
use berth_iam::{audit, sigv4, AuthError, Iam, Principal};
use serde_json::Value;
use std::net::SocketAddr;

/// Bodies of API calls are read whole to check signatures and name resources; this bounds them.
pub const MAX_API_BODY: usize = 16 * 1024 * 1024;
/// The dashboard's session cookie (holds a bearer token; HttpOnly, SameSite=Strict).
pub const SESSION_COOKIE: &str = "berth_session";

/// How errors must look for the caller's protocol.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Shape {
    Json,
    Query,
    Registry,
    Plain,
}

/// What a request asks to do.
#[derive(Debug, Clone)]
struct Call {
    service: &'static str,
    operation: String,
    resource: String,
    read_only: bool,
    shape: Shape,
}

impl Call {
    fn action(&self) -> String {
        format!("{}:{}", self.service, self.operation)
    }
}

fn is_read(op: &str) -> bool {
    [
        "Describe", "List", "Get", "BatchGet", "Filter", "Lookup", "Test", "Start",
    ]
    .iter()
    .any(|p| op.starts_with(p))
        && !matches!(
            op,
            "StartLifecyclePolicyPreview" | "StartImageScan" | "GetAuthorizationToken"
        )
        || op == "StartQuery"
}

fn json_prefix(target: &str) -> Option<&'static str> {
    let (service, _) = target.split_once('.')?;
    Some(match service {
        "AmazonEC2ContainerServiceV20141113" => "ecs",
        "Logs_20140328" => "logs",
        "AmazonEC2ContainerRegistry_V20150921" => "ecr",
        "AnyScaleFrontendService" => "application-autoscaling",
        "secretsmanager" => "secretsmanager",
        "GraniteServiceVersion20100801" => "cloudwatch",
        "CloudTrail_20131101" | "com.amazonaws.cloudtrail.v20131101.CloudTrail_20131101" => {
            "cloudtrail"
        }
        _ => return None,
    })
}

fn text<'a>(v: &'a Value, k: &str) -> Option<&'a str> {
    v.get(k).and_then(Value::as_str).filter(|s| !s.is_empty())
}

/// The resource ARN a JSON call names, else `*`.
fn json_resource(iam: &Iam, service: &str, input: &Value) -> String {
    let (r, a) = (iam.region(), iam.account());
    let arn_or = |s: &str, f: &dyn Fn(&str) -> String| {
        if s.starts_with("arn:") {
            s.to_string()
        } else {
            f(s)
        }
    };
    match service {
        "ecs" => {
            let cluster = text(input, "cluster").unwrap_or("default");
            let cluster = cluster.rsplit('/').next().unwrap_or(cluster).to_string();
            if let Some(s) = text(input, "service").or_else(|| text(input, "serviceName")) {
                arn_or(s, &|n| format!("arn:aws:ecs:{r}:{a}:service/{cluster}/{n}"))
            } else if let Some(td) = text(input, "taskDefinition").or_else(|| text(input, "family"))
            {
                arn_or(td, &|n| format!("arn:aws:ecs:{r}:{a}:task-definition/{n}"))
            } else if let Some(c) = text(input, "cluster").or_else(|| text(input, "clusterName")) {
                arn_or(c, &|n| format!("arn:aws:ecs:{r}:{a}:cluster/{n}"))
            } else {
                "*".into()
            }
        }
        "secretsmanager" => match text(input, "SecretId").or_else(|| text(input, "Name")) {
            Some(s) => arn_or(s, &|n| format!("arn:aws:secretsmanager:{r}:{a}:secret:{n}")),
            None => "*".into(),
        },
        "ecr" => match text(input, "repositoryName") {
            Some(n) => format!("arn:aws:ecr:{r}:{a}:repository/{n}"),
            None => "*".into(),
        },
        "logs" => match text(input, "logGroupName") {
            Some(n) => format!("arn:aws:logs:{r}:{a}:log-group:{n}"),
            None => "*".into(),
        },
        _ => "*".into(),
    }
}

fn form_value(form: &[(String, String)], k: &str) -> Option<String> {
    form.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone())
}

fn signed_service(headers: &HeaderMap) -> Option<String> {
    let auth = headers.get("authorization")?.to_str().ok()?;
    sigv4::parse_authorization(auth)?.ok().map(|a| a.service)
}

/// Classifies a request; `body` is the buffered body of API calls (empty otherwise).
fn classify(iam: &Iam, method: &Method, path: &str, headers: &HeaderMap, body: &[u8]) -> Call {
    let plain = |service: &'static str, op: &str, read_only: bool| Call {
        service,
        operation: op.to_string(),
        resource: "*".into(),
        read_only,
        shape: Shape::Plain,
    };
    if path == "/" && method == Method::POST {
        if let Some(target) = headers.get("x-amz-target").and_then(|v| v.to_str().ok()) {
            let op = target.rsplit('.').next().unwrap_or(target).to_string();
            let service = json_prefix(target).unwrap_or("unknown");
            let input: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
            return Call {
                service,
                resource: json_resource(iam, service, &input),
                read_only: is_read(&op),
                operation: op,
                shape: Shape::Json,
            };
        }
        let form: Vec<(String, String)> = serde_urlencoded::from_bytes(body).unwrap_or_default();
        let op = form_value(&form, "Action").unwrap_or_default();
        let version = form_value(&form, "Version").unwrap_or_default();
        let signed = signed_service(headers).unwrap_or_default();
        let service = match (version.as_str(), signed.as_str()) {
            ("2015-12-01", _) | (_, "elasticloadbalancing") => "elasticloadbalancing",
            ("2010-08-01", _) | (_, "monitoring") => "cloudwatch",
            ("2010-05-08", _) | (_, "iam") => "iam",
            ("2011-06-15", _) | (_, "sts") => "sts",
            _ => "unknown",
        };
        let resource = if service == "iam" {
            berth_iam::api::resource(iam, &form)
        } else {
            form_value(&form, "TargetGroupArn")
                .or_else(|| form_value(&form, "LoadBalancerArn"))
                .or_else(|| form_value(&form, "ListenerArn"))
                .or_else(|| form_value(&form, "RuleArn"))
                .unwrap_or_else(|| "*".into())
        };
        return Call {
            service,
            read_only: is_read(&op) || op == "GetCallerIdentity",
            operation: op,
            resource,
            shape: Shape::Query,
        };
    }
    if let Some(op) = path
        .strip_prefix("/service/")
        .and_then(|p| p.rsplit('/').next())
    {
        return Call {
            shape: Shape::Json,
            ..plain("cloudwatch", op, is_read(op))
        };
    }
    if path == "/v2" || path.starts_with("/v2/") {
        let rest = path.trim_start_matches("/v2").trim_start_matches('/');
        let repo = ["/blobs/", "/manifests/", "/tags/"]
            .iter()
            .filter_map(|m| rest.find(m).map(|i| &rest[..i]))
            .next();
        let op = match *method {
            Method::GET | Method::HEAD => "BatchGetImage",
            Method::DELETE => "BatchDeleteImage",
            _ => "PutImage",
        };
        return Call {
            resource: match repo {
                Some(r) => format!(
                    "arn:aws:ecr:{}:{}:repository/{r}",
                    iam.region(),
                    iam.account()
                ),
                None => "*".into(),
            },
            shape: Shape::Registry,
            ..plain("ecr", op, matches!(*method, Method::GET | Method::HEAD))
        };
    }
    match path {
        "/agent/v1/assignments" => plain("berth", "AgentPoll", true),
        "/agent/v1/report" => plain("berth", "AgentReport", true),
        "/agent/v1/logs" => plain("berth", "AgentShipLogs", true),
        "/proxy/v1/config" => plain("berth", "ProxyPoll", true),
        "/proxy/v1/report" => plain("berth", "ProxyReport", true),
        "/berth/v1/status" | "/berth/v1/whoami" => plain("berth", "DescribeStatus", true),
        "/metrics" => plain("cloudwatch", "GetMetricData", true),
        _ => plain(
            "berth",
            "Access",
            method == Method::GET || method == Method::HEAD,
        ),
    }
}

/// Requests that need no credential: liveness, the dashboard's static page and assets (its data
/// comes from the API, which needs the session), and the login itself.
fn is_public(method: &Method, path: &str) -> bool {
    path == "/healthz"
        || path == "/berth/v1/login"
        || path == "/berth/v1/logout"
        || ((method == Method::GET || method == Method::HEAD)
            && (path == "/dashboard" || path.starts_with("/dashboard/")))
}

fn cookie_token(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all("cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == SESSION_COOKIE)
        .map(|(_, v)| v.to_string())
}

fn authenticate(
    iam: &Iam,
    method: &Method,
    uri: &axum::http::Uri,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<Principal, AuthError> {
    let t = berth_iam::now();
    if let Some(value) = headers.get("authorization").and_then(|v| v.to_str().ok()) {
        if let Some(parsed) = sigv4::parse_authorization(value) {
            let auth = parsed?;
            let hs: Vec<(String, String)> = headers
                .iter()
                .map(|(k, v)| {
                    (
                        k.as_str().to_string(),
                        String::from_utf8_lossy(v.as_bytes()).into_owned(),
                    )
                })
                .collect();
            let req = sigv4::Request {
                method: method.as_str(),
                path: uri.path(),
                query: uri.query().unwrap_or(""),
                headers: &hs,
                body,
            };
            return iam.authenticate_sigv4(&auth, &req, t);
        }
        let (scheme, rest) = value.split_once(' ').unwrap_or((value, ""));
        if scheme.eq_ignore_ascii_case("bearer") {
            return iam.authenticate_token(rest.trim(), t);
        }
        if scheme.eq_ignore_ascii_case("basic") {
            use base64::Engine;
            let decoded = base64::engine::general_purpose::STANDARD
                .decode(rest.trim())
                .map_err(|_| AuthError::BadToken)?;
            let text = String::from_utf8(decoded).map_err(|_| AuthError::BadToken)?;
            let (user, pass) = text.split_once(':').ok_or(AuthError::BadToken)?;
            return iam.authenticate_basic(user, pass, t);
        }
        return Err(AuthError::Missing);
    }
    match cookie_token(headers) {
        Some(token) => iam.authenticate_token(&token, t),
        None => Err(AuthError::Missing),
    }
}

fn error_response(shape: Shape, status: StatusCode, code: &str, message: &str) -> Response {
    match shape {
        Shape::Json => (
            status,
            [("content-type", "application/x-amz-json-1.1")],
            serde_json::json!({"__type": code, "message": message}).to_string(),
        )
            .into_response(),
        Shape::Query => (
            status,
            [("content-type", "text/xml")],
            format!(
                "<ErrorResponse><Error><Type>Sender</Type><Code>{code}</Code><Message>{}</Message></Error><RequestId>{}</RequestId></ErrorResponse>",
                berth_iam::api::esc(message),
                uuid::Uuid::new_v4()
            ),
        )
            .into_response(),
        Shape::Registry => {
            let oci = if status == StatusCode::UNAUTHORIZED { "UNAUTHORIZED" } else { "DENIED" };
            let mut r = (
                status,
                [("content-type", "application/json")],
                serde_json::json!({"errors": [{"code": oci, "message": message}]}).to_string(),
            )
                .into_response();
            if status == StatusCode::UNAUTHORIZED {
                r.headers_mut().insert(
                    "www-authenticate",
                    HeaderValue::from_static("Basic realm=\"berth\""),
                );
            }
            r
        }
        Shape::Plain => (
            status,
            [("content-type", "application/json")],
            serde_json::json!({"error": code, "message": message}).to_string(),
        )
            .into_response(),
    }
}

fn auth_error_response(shape: Shape, e: &AuthError) -> Response {
    let code = match (e, shape) {
        (AuthError::Missing, _) => "MissingAuthenticationTokenException",
        (AuthError::Signature(sigv4::SigError::Mismatch), Shape::Query) => "SignatureDoesNotMatch",
        (AuthError::Signature(_), Shape::Query) => "IncompleteSignature",
        (AuthError::Signature(_), _) => "InvalidSignatureException",
        (AuthError::UnknownKey(_), Shape::Query) => "InvalidClientTokenId",
        (AuthError::Inactive(_), Shape::Query) => "InvalidClientTokenId",
        _ => "UnrecognizedClientException",
    };
    let status = if shape == Shape::Registry {
        StatusCode::UNAUTHORIZED
    } else {
        StatusCode::FORBIDDEN
    };
    error_response(shape, status, code, &e.to_string())
}

/// The middleware: authenticate, authorise, run, audit.
pub(crate) async fn layer(State(iam): State<Iam>, req: Request, next: Next) -> Response {
    let (mut parts, body) = req.into_parts();
    if is_public(&parts.method, parts.uri.path()) {
        return next.run(Request::from_parts(parts, body)).await;
    }
    let path = parts.uri.path().to_string();
    // API calls are read whole (signatures cover the body; resources are named in it);
    // registry uploads and the internal interfaces stream.
    let buffered = parts.method == Method::POST && (path == "/" || path.starts_with("/service/"));
    let (bytes, body) = if buffered {
        match axum::body::to_bytes(body, MAX_API_BODY).await {
            Ok(b) => (b.clone(), Body::from(b)),
            Err(_) => {
                return (
                    StatusCode::PAYLOAD_TOO_LARGE,
                    format!("request body: larger than {MAX_API_BODY} bytes"),
                )
                    .into_response()
            }
        }
    } else {
        (Bytes::new(), body)
    };
    let call = classify(&iam, &parts.method, &path, &parts.headers, &bytes);
    let source_ip = parts
        .extensions
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0.ip().to_string())
        .unwrap_or_default();
    let event =
        |user: &str, key: &str, decision: &str, error: Option<&str>, status: u16| audit::Event {
            event_id: uuid::Uuid::new_v4().to_string(),
            event_time: berth_iam::now(),
            event_name: call.operation.clone(),
            event_source: format!("{}.amazonaws.com", call.service),
            user_name: user.to_string(),
            access_key_id: key.to_string(),
            resource: call.resource.clone(),
            read_only: call.read_only,
            decision: decision.to_string(),
            error_code: error.map(str::to_string),
            status,
            source_ip: source_ip.clone(),
        };
    let principal = match authenticate(&iam, &parts.method, &parts.uri, &parts.headers, &bytes) {
        Ok(p) => p,
        Err(e) => {
            let resp = auth_error_response(call.shape, &e);
            iam.record(&event(
                "anonymous",
                "",
                "Deny",
                Some("AuthenticationFailed"),
                resp.status().as_u16(),
            ));
            return resp;
        }
    };
    let action = call.action();
    let decision = iam.authorize(&principal, &action, &call.resource);
    if decision != Decision::Allow {
        let why = if decision == Decision::ExplicitDeny {
            "with an explicit deny in an identity-based policy"
        } else {
            "because no identity-based policy allows the action"
        };
        let message = format!(
            "User: {} is not authorized to perform: {action} on resource: {} {why}",
            principal.arn, call.resource
        );
        let (status, code) = match call.shape {
            Shape::Json => (StatusCode::BAD_REQUEST, "AccessDeniedException"),
            _ => (StatusCode::FORBIDDEN, "AccessDenied"),
        };
        iam.record(&event(
            &principal.user,
            &principal.credential_id,
            "Deny",
            Some(code),
            status.as_u16(),
        ));
        return error_response(call.shape, status, code, &message);
    }
    // The authenticated principal is the actor of every change (events, deployments, audit).
    parts.headers.remove("x-berth-actor");
    if let Ok(v) = HeaderValue::from_str(&principal.actor()) {
        parts.headers.insert("x-berth-actor", v);
    }
    parts.extensions.insert(principal.clone());
    let resp = next.run(Request::from_parts(parts, body)).await;
    let internal = call.service == "berth" && call.operation != "Access";
    if !call.read_only && !internal {
        iam.record(&event(
            &principal.user,
            &principal.credential_id,
            "Allow",
            None,
            resp.status().as_u16(),
        ));
    }
    resp
}

#[derive(serde::Deserialize)]
pub(crate) struct Login {
    token: String,
}

/// `POST /berth/v1/login` `{"token": ...}` (JSON or a form): sets the session cookie.
pub(crate) async fn login(State(iam): State<Iam>, headers: HeaderMap, body: Bytes) -> Response {
    let form = headers
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|c| c.starts_with("application/x-www-form-urlencoded"));
    let parsed: Option<Login> = if form {
        serde_urlencoded::from_bytes(&body).ok()
    } else {
        serde_json::from_slice(&body).ok()
    };
    let Some(login) = parsed else {
        return error_response(
            Shape::Plain,
            StatusCode::BAD_REQUEST,
            "ValidationException",
            "token: required (a berth bearer token)",
        );
    };
    match iam.authenticate_token(login.token.trim(), berth_iam::now()) {
        Ok(p) => {
            let cookie = format!(
                "{SESSION_COOKIE}={}; Path=/; HttpOnly; SameSite=Strict; Max-Age=43200",
                login.token.trim()
            );
            let mut r =
                axum::Json(serde_json::json!({"user": p.user, "arn": p.arn})).into_response();
            if let Ok(v) = HeaderValue::from_str(&cookie) {
                r.headers_mut().insert("set-cookie", v);
            }
            r
        }
        Err(e) => {
            iam.record(&audit::Event {
                event_id: uuid::Uuid::new_v4().to_string(),
                event_time: berth_iam::now(),
                event_name: "ConsoleLogin".into(),
                event_source: "signin.amazonaws.com".into(),
                user_name: "anonymous".into(),
                access_key_id: String::new(),
                resource: "*".into(),
                read_only: false,
                decision: "Deny".into(),
                error_code: Some("AuthenticationFailed".into()),
                status: 403,
                source_ip: String::new(),
            });
            auth_error_response(Shape::Plain, &e)
        }
    }
}

/// `POST /berth/v1/logout`: clears the session cookie.
pub(crate) async fn logout() -> Response {
    (
        [(
            "set-cookie",
            format!("{SESSION_COOKIE}=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0"),
        )],
        "{}",
    )
        .into_response()
}

/// `GET /berth/v1/whoami`: the caller.
pub(crate) async fn whoami(principal: Option<axum::Extension<Principal>>) -> Response {
    match principal {
        Some(axum::Extension(p)) => axum::Json(serde_json::json!({
            "user": p.user, "arn": p.arn, "credentialId": p.credential_id
        }))
        .into_response(),
        None => axum::Json(serde_json::json!({"user": null, "authentication": "disabled"}))
            .into_response(),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn reads_and_writes() {
        for op in [
            "DescribeServices",
            "ListTasks",
            "GetMetricData",
            "FilterLogEvents",
            "StartQuery",
            "LookupEvents",
        ] {
            assert!(is_read(op), "{op}");
        }
        for op in [
            "UpdateService",
            "PutMetricData",
            "GetAuthorizationToken",
            "StartLifecyclePolicyPreview",
            "CreateUser",
        ] {
            assert!(!is_read(op), "{op}");
        }
    }

    #[test]
    fn public_paths() {
        assert!(is_public(&Method::GET, "/healthz"));
        assert!(is_public(&Method::GET, "/dashboard/assets/app.js"));
        assert!(!is_public(&Method::POST, "/dashboard/x"));
        assert!(!is_public(&Method::GET, "/berth/v1/status"));
        assert!(!is_public(&Method::GET, "/v2/"));
    }

    #[test]
    fn cookies() {
        let mut h = HeaderMap::new();
        h.insert(
            "cookie",
            HeaderValue::from_static("a=1; berth_session=berth_x; b=2"),
        );
        assert_eq!(cookie_token(&h).as_deref(), Some("berth_x"));
    }
}
