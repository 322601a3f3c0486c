//! The control plane's HTTP edge: one address serving every AWS-compatible API (dispatched by
//! `X-Amz-Target`, by `Action`, or by the SigV4 credential scope), the internal agent and proxy
//! interfaces (`/agent/v1`, `/proxy/v1`) and berth's own status endpoint.

use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use berth_api_aws::json::{content_type, error_body, parse_target, strip_nulls, JsonApi};
use berth_control::{ApiError, ControlPlane};
use berth_model::protocol::{agent, proxy};
use serde::Deserialize;
use std::net::SocketAddr;
use std::time::Duration;

mod auth;
mod tls;
pub use auth::{MAX_API_BODY, SESSION_COOKIE};
pub use tls::{server_config as tls_server_config, TlsError};

/// What `/berth/v1/status` reports about the endpoints, filled in by the binary.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct Endpoints {
    pub api: String,
    pub dashboard: String,
}

/// The embedded backends the server serves besides the control plane.
#[derive(Clone, Default)]
pub struct Backends {
    /// The image registry (`/v2/` and the ECR API).
    pub registry: Option<berth_registry::Registry>,
    /// Metrics, alarms and dashboards (the CloudWatch API).
    pub cloudwatch: Option<berth_metrics::CloudWatch>,
    /// Application Auto Scaling (the `AnyScaleFrontendService` API and its evaluation loop).
    pub autoscaling: Option<berth_autoscaling::AutoScaling>,
    /// Secrets Manager (the `secretsmanager` API and its rotation loop).
    pub secrets: Option<berth_secrets::Secrets>,
    /// Users, credentials, policies and the audit log. When set, every request but `/healthz`,
    /// the dashboard's static files and the login is authenticated and authorised.
    pub iam: Option<berth_iam::Iam>,
}

#[derive(Clone)]
struct AppState {
    cp: ControlPlane,
    registry: Option<berth_registry::Registry>,
    cloudwatch: Option<berth_metrics::CloudWatch>,
    autoscaling: Option<berth_autoscaling::AutoScaling>,
    secrets: Option<berth_secrets::Secrets>,
    iam: Option<berth_iam::Iam>,
    endpoints: Endpoints,
    started_at: f64,
}

/// The router of the control plane's address (with the image registry's `/v2/` when given).
pub fn router(cp: ControlPlane, backends: Backends, endpoints: Endpoints) -> Router {
    let state = AppState {
        cp,
        registry: backends.registry.clone(),
        cloudwatch: backends.cloudwatch.clone(),
        autoscaling: backends.autoscaling.clone(),
        secrets: backends.secrets.clone(),
        iam: backends.iam.clone(),
        endpoints,
        started_at: berth_model::now(),
    };
    let distribution = backends
        .registry
        .map(berth_registry::router)
        .unwrap_or_default();
    let app = Router::new()
        .route("/", post(aws_entry))
        .route("/berth/v1/whoami", get(auth::whoami))
        .route("/healthz", get(|| async { "ok" }))
        .route("/berth/v1/status", get(status))
        .route("/agent/v1/assignments", get(agent_assignments))
        .route("/agent/v1/report", post(agent_report))
        .route("/agent/v1/logs", post(agent_logs))
        .route("/proxy/v1/config", get(proxy_config))
        .route("/proxy/v1/report", post(proxy_report))
        .route("/service/{*operation}", post(cbor_entry))
        .route("/metrics", get(prometheus))
        .with_state(state)
        .merge(distribution)
        .merge(berth_dashboard::router());
    match backends.iam {
        Some(iam) => app
            .merge(
                Router::new()
                    .route("/berth/v1/login", post(auth::login))
                    .route("/berth/v1/logout", post(auth::logout))
                    .with_state(iam.clone()),
            )
            .layer(axum::middleware::from_fn_with_state(iam, auth::layer)),
        None => app,
    }
}

/// Serves the router on `listener` and runs the controllers, until `shutdown`.
pub async fn serve(
    cp: ControlPlane,
    backends: Backends,
    listener: tokio::net::TcpListener,
    endpoints: Endpoints,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    serve_maybe_tls(cp, backends, listener, None, endpoints, shutdown).await
}

/// Like [`serve`], but every connection is HTTPS with `tls` (see [`tls_server_config`]).
pub async fn serve_tls(
    cp: ControlPlane,
    backends: Backends,
    listener: tokio::net::TcpListener,
    tls: std::sync::Arc<rustls::ServerConfig>,
    endpoints: Endpoints,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    serve_maybe_tls(cp, backends, listener, Some(tls), endpoints, shutdown).await
}

async fn serve_maybe_tls(
    cp: ControlPlane,
    backends: Backends,
    listener: tokio::net::TcpListener,
    tls: Option<std::sync::Arc<rustls::ServerConfig>>,
    endpoints: Endpoints,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let (tx, rx) = tokio::sync::watch::channel(false);
    let controllers = {
        let cp = cp.clone();
        let mut rx = rx.clone();
        tokio::spawn(async move {
            cp.run_controllers(async move {
                let _ = rx.wait_for(|s| *s).await;
            })
            .await
        })
    };
    if let Some(r) = &backends.registry {
        berth_registry::spawn_lifecycle(r.clone(), Duration::from_secs(3600));
    }
    if let Some(cw) = &backends.cloudwatch {
        cp.attach_metrics(cw.metrics.clone());
        cp.attach_alarms(cw.alarms.clone());
        let alarms = cw.alarms.clone();
        let rx = rx.clone();
        tokio::spawn(async move { alarms.run(rx).await });
    }
    if let Some(a) = &backends.autoscaling {
        let (a, rx) = (a.clone(), rx.clone());
        tokio::spawn(async move { a.run(rx).await });
    }
    if let Some(s) = &backends.secrets {
        let (s, rx) = (s.clone(), rx.clone());
        tokio::spawn(async move { s.run(rx).await });
    }
    let app = router(cp, backends, endpoints);
    let mut rx2 = rx.clone();
    tokio::spawn(async move {
        shutdown.await;
        let _ = tx.send(true);
    });
    let stopped = async move {
        let _ = rx2.wait_for(|s| *s).await;
    };
    match tls {
        None => {
            axum::serve(
                listener,
                app.into_make_service_with_connect_info::<SocketAddr>(),
            )
            .with_graceful_shutdown(stopped)
            .await?
        }
        Some(config) => {
            use axum::serve::ListenerExt;
            // `tap_io` only to get axum's ConnectInfo<SocketAddr> for a custom listener.
            let listener = tls::TlsListener::new(listener, config)?.tap_io(|_| {});
            axum::serve(
                listener,
                app.into_make_service_with_connect_info::<SocketAddr>(),
            )
            .with_graceful_shutdown(stopped)
            .await?
        }
    }
    let _ = controllers.await;
    Ok(())
}

fn request_id() -> String {
    uuid::Uuid::new_v4().to_string()
}

fn json_response(api: JsonApi, result: Result<serde_json::Value, ApiError>) -> Response {
    let rid = request_id();
    let (status, body) = match result {
        Ok(mut v) => {
            strip_nulls(&mut v);
            (StatusCode::OK, v.to_string())
        }
        Err(e) => (
            StatusCode::from_u16(e.status).unwrap_or(StatusCode::BAD_REQUEST),
            error_body(e.code, &e.message),
        ),
    };
    (
        status,
        [
            ("content-type", content_type(api)),
            ("x-amzn-requestid", rid.as_str()),
        ],
        body,
    )
        .into_response()
}

/// Who makes a request: with authentication, the `x-berth-actor` header the auth layer sets to
/// the authenticated user (`user:<name>`, replacing whatever the client sent); without it, that
/// header as the berth CLI sends it, else the SigV4 access key id, else `anonymous`.
fn actor(headers: &HeaderMap) -> String {
    let from_sigv4 = || {
        headers
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .and_then(|a| a.split("Credential=").nth(1))
            .and_then(|c| c.split('/').next())
            .map(str::to_string)
    };
    headers
        .get("x-berth-actor")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
        .or_else(from_sigv4)
        .unwrap_or_else(|| "anonymous".into())
}

/// The SigV4 credential scope's service name (`.../<date>/<region>/<service>/aws4_request`).
fn signed_service(headers: &HeaderMap) -> Option<String> {
    let auth = headers.get("authorization")?.to_str().ok()?;
    let cred = auth.split("Credential=").nth(1)?;
    let scope = cred.split([',', ' ']).next()?;
    scope.split('/').nth(3).map(str::to_string)
}

async fn aws_entry(
    State(app): State<AppState>,
    principal: Option<axum::Extension<berth_iam::Principal>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let principal = principal.map(|axum::Extension(p)| p);
    if let Some(target) = headers.get("x-amz-target").and_then(|v| v.to_str().ok()) {
        if let Some(r) = iam_json(&app, principal.as_ref(), target, &body) {
            return r;
        }
        let Some((api, op)) = parse_target(target) else {
            return (
                StatusCode::BAD_REQUEST,
                error_body(
                    "UnknownOperationException",
                    &format!("X-Amz-Target: unknown target {target:?}"),
                ),
            )
                .into_response();
        };
        let input: serde_json::Value = if body.is_empty() {
            serde_json::Value::Null
        } else {
            match serde_json::from_slice(&body) {
                Ok(v) => v,
                Err(e) => {
                    return json_response(
                        api,
                        Err(ApiError::client(format!(
                            "request body: expected JSON, {e}"
                        ))),
                    );
                }
            }
        };
        let op = op.to_string();
        let cp = app.cp.clone();
        let registry = app.registry.clone();
        let autoscaling = app.autoscaling.clone();
        let secrets = app.secrets.clone();
        let actor = actor(&headers);
        if api == JsonApi::CloudWatch {
            let Some(cw) = app.cloudwatch.clone() else {
                return json_response(api, Err(ApiError::unknown_operation(&op)));
            };
            let r = tokio::task::spawn_blocking(move || {
                berth_api_aws::cloudwatch::handle_json(&cw, &op, &body)
            })
            .await;
            return raw_response(r);
        }
        // Operations write to the store (fsync) under a lock: keep them off the async workers.
        let result = tokio::task::spawn_blocking(move || match api {
            JsonApi::Ecs => berth_control::ecs::call_as(&cp, &op, input, &actor),
            JsonApi::Logs => berth_control::logs_api::call(&cp, &op, input),
            JsonApi::Ecr => match &registry {
                Some(r) => berth_registry::ecr::call(r, &op, input).map_err(|e| ApiError {
                    code: e.code(),
                    message: e.to_string(),
                    status: e.status(),
                }),
                None => Err(ApiError::unknown_operation(&op)),
            },
            JsonApi::AutoScaling => match &autoscaling {
                Some(a) => a.call(&op, input).map_err(|e| ApiError {
                    code: e.code(),
                    message: e.to_string(),
                    status: e.status(),
                }),
                None => Err(ApiError::unknown_operation(&op)),
            },
            JsonApi::SecretsManager => match &secrets {
                Some(s) => s.call(&op, input, &actor).map_err(|e| ApiError {
                    code: e.code(),
                    message: e.to_string(),
                    status: e.status(),
                }),
                None => Err(ApiError::unknown_operation(&op)),
            },
            _ => Err(ApiError::unknown_operation(&op)),
        })
        .await
        .unwrap_or_else(|e| Err(ApiError::server(format!("operation panicked: {e}"))));
        return json_response(api, result);
    }
    // Query protocol: form body with Action and Version.
    let service = signed_service(&headers);
    let form: Vec<(String, String)> = serde_urlencoded::from_bytes(&body).unwrap_or_default();
    let action = form
        .iter()
        .find(|(k, _)| k == "Action")
        .map(|(_, v)| v.clone());
    let version = form
        .iter()
        .find(|(k, _)| k == "Version")
        .map(|(_, v)| v.clone());
    if version.as_deref() == Some("2010-05-08") || version.as_deref() == Some("2011-06-15") {
        return iam_query(&app, principal.as_ref(), &form, version.as_deref());
    }
    if version.as_deref() == Some("2010-08-01") || service.as_deref() == Some("monitoring") {
        if let Some(cw) = app.cloudwatch.clone() {
            let r = tokio::task::spawn_blocking(move || {
                berth_api_aws::cloudwatch::handle_query(&cw, &body)
            })
            .await;
            return raw_response(r);
        }
    }
    match (action, version.as_deref(), service.as_deref()) {
        (Some(_), Some("2015-12-01"), _) | (Some(_), _, Some("elasticloadbalancing")) => {
            let cp = app.cp.clone();
            let rid = request_id();
            let resp = tokio::task::spawn_blocking(move || {
                cp.with_elb(|elb, arns| {
                    let (r, changed) = berth_api_aws::elbv2::handle_elbv2(elb, arns, &body, &rid, berth_model::now());
                    ((r.status, r.body), changed)
                })
            })
            .await;
            match resp {
                Ok(Ok((status, xml))) => (
                    StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_REQUEST),
                    [("content-type", "text/xml")],
                    xml,
                )
                    .into_response(),
                Ok(Err(e)) => (StatusCode::INTERNAL_SERVER_ERROR, e.to_string()).into_response(),
                Err(e) => (StatusCode::INTERNAL_SERVER_ERROR, e.to_string()).into_response(),
            }
        }
        (Some(a), v, _) => (
            StatusCode::BAD_REQUEST,
            [("content-type", "text/xml")],
            format!(
                "<ErrorResponse><Error><Type>Sender</Type><Code>InvalidAction</Code><Message>berth does not serve Action={a} Version={}</Message></Error></ErrorResponse>",
                v.unwrap_or("")
            ),
        )
            .into_response(),
        (None, _, _) => (
            StatusCode::BAD_REQUEST,
            "expected an AWS request: an X-Amz-Target header (awsJson) or an Action form field (query protocol)",
        )
            .into_response(),
    }
}

type RawResponse = (u16, &'static str, Vec<u8>);

fn raw_response(r: Result<RawResponse, tokio::task::JoinError>) -> Response {
    match r {
        Ok((status, ctype, body)) => (
            StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_REQUEST),
            [("content-type", ctype)],
            body,
        )
            .into_response(),
        Err(e) => (StatusCode::INTERNAL_SERVER_ERROR, e.to_string()).into_response(),
    }
}

/// smithy-rpc-v2-cbor: `POST /service/GraniteServiceVersion20100801/operation/<Op>`.
async fn cbor_entry(State(app): State<AppState>, uri: axum::http::Uri, body: Bytes) -> Response {
    let Some(cw) = app.cloudwatch.clone() else {
        return (StatusCode::NOT_FOUND, "no CloudWatch backend").into_response();
    };
    let Some(op) = berth_api_aws::cloudwatch::cbor_operation(uri.path()).map(str::to_string) else {
        return (
            StatusCode::NOT_FOUND,
            format!("unknown service path {}", uri.path()),
        )
            .into_response();
    };
    let r = tokio::task::spawn_blocking(move || {
        berth_api_aws::cloudwatch::handle_cbor(&cw, &op, &body)
    })
    .await;
    let mut resp = raw_response(r);
    resp.headers_mut().insert(
        "smithy-protocol",
        axum::http::HeaderValue::from_static("rpc-v2-cbor"),
    );
    resp
}

/// Prometheus text exposition of current metric values.
async fn prometheus(State(app): State<AppState>) -> Response {
    match app.cloudwatch {
        Some(cw) => (
            [("content-type", "text/plain; version=0.0.4")],
            cw.metrics.prometheus_text(),
        )
            .into_response(),
        None => (StatusCode::NOT_FOUND, "no metrics backend").into_response(),
    }
}

async fn status(State(app): State<AppState>) -> Json<serde_json::Value> {
    let cp = &app.cp;
    let (nodes, listeners, services) = cp.read(|st| {
        let t = berth_model::now();
        let nodes: Vec<serde_json::Value> = st
            .nodes
            .iter()
            .map(|(id, n)| serde_json::json!({"id": id, "hostIp": n.host_ip, "lastSeenSecondsAgo": t - n.last_seen, "healthy": t - n.last_seen < 15.0}))
            .collect();
        let services = st.services.values().filter(|s| s.service.status == "ACTIVE").count();
        (nodes, st.proxies_view(&cp.config().listen_host), services)
    });
    Json(serde_json::json!({
        "api": app.endpoints.api,
        "dashboard": app.endpoints.dashboard,
        "uptimeSeconds": berth_model::now() - app.started_at,
        "version": cp.version(),
        "components": {
            "server": {"healthy": true},
            "agents": nodes,
            "proxies": listeners.0,
        },
        "listeners": listeners.1,
        "activeServices": services,
    }))
}

#[derive(Deserialize)]
struct PollQuery {
    node: Option<String>,
    after: Option<u64>,
    wait_ms: Option<u64>,
}

fn poll_wait(q: &PollQuery) -> Duration {
    Duration::from_millis(q.wait_ms.unwrap_or(0).min(60_000))
}

async fn agent_assignments(State(app): State<AppState>, Query(q): Query<PollQuery>) -> Response {
    let Some(node) = q.node.clone() else {
        return (
            StatusCode::BAD_REQUEST,
            "node: expected the agent's node id",
        )
            .into_response();
    };
    let after = q.after.unwrap_or(0);
    app.cp.wait_newer(after, poll_wait(&q)).await;
    Json(app.cp.assignments(&node)).into_response()
}

fn internal(result: Result<(), ApiError>) -> Response {
    match result {
        Ok(()) => Json(serde_json::json!({})).into_response(),
        Err(e) => (
            StatusCode::from_u16(e.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
            e.to_string(),
        )
            .into_response(),
    }
}

async fn agent_report(State(app): State<AppState>, Json(report): Json<agent::Report>) -> Response {
    let cp = app.cp.clone();
    internal(
        tokio::task::spawn_blocking(move || cp.apply_report(report))
            .await
            .unwrap_or_else(|e| Err(ApiError::server(e.to_string()))),
    )
}

async fn agent_logs(
    State(app): State<AppState>,
    Json(shipment): Json<agent::LogShipment>,
) -> Response {
    let cp = app.cp.clone();
    internal(
        tokio::task::spawn_blocking(move || cp.ship_logs(shipment))
            .await
            .unwrap_or_else(|e| Err(ApiError::server(e.to_string()))),
    )
}

async fn proxy_config(State(app): State<AppState>, Query(q): Query<PollQuery>) -> Response {
    let after = q.after.unwrap_or(0);
    app.cp.wait_newer(after, poll_wait(&q)).await;
    Json(app.cp.proxy_config()).into_response()
}

async fn proxy_report(State(app): State<AppState>, Json(report): Json<proxy::Report>) -> Response {
    let cp = app.cp.clone();
    internal(
        tokio::task::spawn_blocking(move || cp.apply_proxy_report(report))
            .await
            .unwrap_or_else(|e| Err(ApiError::server(e.to_string()))),
    )
}

fn xml_response(status: u16, body: String) -> Response {
    (
        StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_REQUEST),
        [("content-type", "text/xml")],
        body,
    )
        .into_response()
}

/// IAM (`2010-05-08`) and STS (`2011-06-15`) over the query protocol.
fn iam_query(
    app: &AppState,
    principal: Option<&berth_iam::Principal>,
    form: &[(String, String)],
    version: Option<&str>,
) -> Response {
    let rid = request_id();
    let (Some(iam), Some(p)) = (&app.iam, principal) else {
        return xml_response(
            400,
            format!("<ErrorResponse><Error><Type>Sender</Type><Code>InvalidAction</Code><Message>authentication is disabled on this server: no IAM</Message></Error><RequestId>{rid}</RequestId></ErrorResponse>"),
        );
    };
    if version == Some("2011-06-15") {
        let action = form
            .iter()
            .find(|(k, _)| k == "Action")
            .map(|(_, v)| v.as_str());
        if action != Some("GetCallerIdentity") {
            return xml_response(
                400,
                format!("<ErrorResponse><Error><Type>Sender</Type><Code>InvalidAction</Code><Message>berth's STS serves GetCallerIdentity only</Message></Error><RequestId>{rid}</RequestId></ErrorResponse>"),
            );
        }
        return xml_response(
            200,
            format!(
                "<GetCallerIdentityResponse xmlns=\"https://sts.amazonaws.com/doc/2011-06-15/\"><GetCallerIdentityResult><Arn>{}</Arn><UserId>{}</UserId><Account>{}</Account></GetCallerIdentityResult><ResponseMetadata><RequestId>{rid}</RequestId></ResponseMetadata></GetCallerIdentityResponse>",
                berth_iam::api::esc(&p.arn),
                berth_iam::api::esc(&p.credential_id),
                berth_iam::api::esc(iam.account())
            ),
        );
    }
    let (status, body) = berth_iam::api::handle(iam, p, form, &rid);
    xml_response(status, body)
}

/// JSON operations answered from the identity store: CloudTrail's LookupEvents (the audit log)
/// and ECR's GetAuthorizationToken (a 12-hour registry token of the caller).
fn iam_json(
    app: &AppState,
    principal: Option<&berth_iam::Principal>,
    target: &str,
    body: &[u8],
) -> Option<Response> {
    let iam = app.iam.as_ref()?;
    let p = principal?;
    let op = target.rsplit('.').next().unwrap_or(target);
    let result = if target.contains("CloudTrail_20131101") {
        let input: serde_json::Value =
            serde_json::from_slice(body).unwrap_or(serde_json::json!({}));
        if op != "LookupEvents" {
            Err(ApiError::unknown_operation(op))
        } else {
            iam.lookup_events(&input)
                .map_err(|e| ApiError::client(e.to_string()))
        }
    } else if target == "AmazonEC2ContainerRegistry_V20150921.GetAuthorizationToken" {
        use base64::Engine;
        iam.registry_token(&p.user)
            .map(|(token, expires)| {
                let endpoint = app.endpoints.api.clone();
                serde_json::json!({"authorizationData": [{
                    "authorizationToken": base64::engine::general_purpose::STANDARD.encode(format!("AWS:{token}")),
                    "expiresAt": expires,
                    "proxyEndpoint": endpoint,
                }]})
            })
            .map_err(|e| ApiError::server(e.to_string()))
    } else {
        return None;
    };
    Some(json_response(JsonApi::Ecs, result))
}
