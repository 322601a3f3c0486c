//! The OCI Distribution API under `/v2/`: blob uploads (monolithic, chunked, cross-repository
//! mount), blob and manifest reads and deletes, manifest pushes, and tag listing. Repository
//! names may contain slashes, so one catch-all route parses the path from its end.

use crate::digest::Digest;
use crate::reference::{check_repository_name, Tagged};
use crate::{io_error, Registry, RegistryError};
use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get};
use axum::Router;
use futures_util::StreamExt;
use std::collections::HashMap;
use tokio::io::AsyncReadExt;

/// The largest manifest accepted, as in the reference registry.
const MAX_MANIFEST_BYTES: usize = 4 * 1024 * 1024;

/// The `/v2/` router over `registry`; merge it into the server's router.
pub fn router(registry: Registry) -> Router {
    Router::new()
        .route("/v2", get(base))
        .route("/v2/", get(base))
        .route("/v2/{*rest}", any(dispatch))
        .layer(axum::middleware::map_response(
            |mut response: Response| async move {
                response.headers_mut().insert(
                    "Docker-Distribution-API-Version",
                    HeaderValue::from_static("registry/2.0"),
                );
                response
            },
        ))
        .with_state(registry)
}

async fn base() -> Response {
    json_response(StatusCode::OK, "{}".into())
}

/// What a `/v2/...` path addresses.
#[derive(Debug, PartialEq)]
enum Route {
    Catalog,
    Tags(String),
    Manifest(String, String),
    Blob(String, String),
    UploadStart(String),
    Upload(String, String),
}

fn route(rest: &str) -> Option<Route> {
    let trimmed = rest.trim_end_matches('/');
    if trimmed == "_catalog" {
        return Some(Route::Catalog);
    }
    let segments: Vec<&str> = trimmed.split('/').collect();
    let n = segments.len();
    let name = |k: usize| segments[..n - k].join("/");
    if n >= 3 && segments[n - 2] == "tags" && segments[n - 1] == "list" {
        Some(Route::Tags(name(2)))
    } else if n >= 3 && segments[n - 2] == "manifests" {
        Some(Route::Manifest(name(2), segments[n - 1].to_string()))
    } else if n >= 3 && segments[n - 2] == "blobs" && segments[n - 1] == "uploads" {
        Some(Route::UploadStart(name(2)))
    } else if n >= 4 && segments[n - 3] == "blobs" && segments[n - 2] == "uploads" {
        Some(Route::Upload(name(3), segments[n - 1].to_string()))
    } else if n >= 3 && segments[n - 2] == "blobs" {
        Some(Route::Blob(name(2), segments[n - 1].to_string()))
    } else {
        None
    }
}

async fn dispatch(
    State(registry): State<Registry>,
    method: Method,
    Path(rest): Path<String>,
    Query(query): Query<HashMap<String, String>>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let result = match route(&rest) {
        None => Err(RegistryError::Unsupported(format!(
            "no such endpoint: /v2/{rest}"
        ))),
        Some(route) => handle(registry, method, route, query, headers, body).await,
    };
    result.unwrap_or_else(error_response)
}

async fn handle(
    registry: Registry,
    method: Method,
    route: Route,
    query: HashMap<String, String>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, RegistryError> {
    let check_name = |name: &str| check_repository_name(name).map_err(RegistryError::NameInvalid);
    match (method, route) {
        (Method::GET, Route::Catalog) => catalog(&registry, &query),
        (Method::GET, Route::Tags(name)) => {
            check_name(&name)?;
            tags_list(&registry, &name, &query)
        }
        (m @ (Method::GET | Method::HEAD), Route::Manifest(name, reference)) => {
            check_name(&name)?;
            let reference = Tagged::parse(&reference).map_err(RegistryError::TagInvalid)?;
            let (media_type, digest, bytes) = registry.get_manifest(&name, &reference)?;
            let mut response = Response::builder()
                .status(StatusCode::OK)
                .header(header::CONTENT_TYPE, media_type)
                .header(header::CONTENT_LENGTH, bytes.len())
                .header("Docker-Content-Digest", digest.to_string());
            if m == Method::GET {
                registry.record_pull(&name, &digest);
                response = response.header(header::ETAG, format!("\"{digest}\""));
            }
            let body = if m == Method::GET {
                Body::from(bytes)
            } else {
                Body::empty()
            };
            Ok(build(response, body))
        }
        (Method::PUT, Route::Manifest(name, reference)) => {
            check_name(&name)?;
            let reference = Tagged::parse(&reference).map_err(RegistryError::TagInvalid)?;
            let content_type = headers
                .get(header::CONTENT_TYPE)
                .and_then(|v| v.to_str().ok())
                .map(str::to_string);
            let bytes = axum::body::to_bytes(body, MAX_MANIFEST_BYTES)
                .await
                .map_err(|e| RegistryError::ManifestInvalid(format!("reading the body: {e}")))?;
            let digest = blocking({
                let (registry, name) = (registry.clone(), name.clone());
                move || registry.put_manifest(&name, &reference, content_type.as_deref(), &bytes)
            })
            .await?;
            Ok(build(
                Response::builder()
                    .status(StatusCode::CREATED)
                    .header(header::LOCATION, format!("/v2/{name}/manifests/{digest}"))
                    .header("Docker-Content-Digest", digest.to_string()),
                Body::empty(),
            ))
        }
        (Method::DELETE, Route::Manifest(name, reference)) => {
            check_name(&name)?;
            let reference = Tagged::parse(&reference).map_err(RegistryError::TagInvalid)?;
            blocking(move || registry.delete_manifest(&name, &reference)).await?;
            Ok(StatusCode::ACCEPTED.into_response())
        }
        (m @ (Method::GET | Method::HEAD), Route::Blob(name, digest)) => {
            check_name(&name)?;
            let digest = Digest::parse(&digest)?;
            let size = registry
                .blob_size(&digest)
                .ok_or_else(|| RegistryError::BlobUnknown(digest.clone()))?;
            let response = Response::builder()
                .status(StatusCode::OK)
                .header(header::CONTENT_TYPE, "application/octet-stream")
                .header(header::CONTENT_LENGTH, size)
                .header("Docker-Content-Digest", digest.to_string())
                .header(header::ETAG, format!("\"{digest}\""));
            let body = if m == Method::GET {
                file_body(registry.blob_path(&digest)).await?
            } else {
                Body::empty()
            };
            Ok(build(response, body))
        }
        (Method::DELETE, Route::Blob(name, digest)) => {
            check_name(&name)?;
            let digest = Digest::parse(&digest)?;
            blocking(move || registry.delete_blob(&digest)).await?;
            Ok(StatusCode::ACCEPTED.into_response())
        }
        (Method::POST, Route::UploadStart(name)) => {
            check_name(&name)?;
            if let Some(mount) = query.get("mount") {
                let digest = Digest::parse(mount)?;
                if registry.blob_size(&digest).is_some() {
                    return Ok(blob_created(&name, &digest));
                }
                // Not mountable: start an ordinary upload, as the spec asks.
            }
            let id = registry.start_upload()?;
            if let Some(digest) = query.get("digest") {
                let digest = Digest::parse(digest)?;
                append_body(&registry, &id, body).await?;
                finish(&registry, &id, digest.clone()).await?;
                return Ok(blob_created(&name, &digest));
            }
            Ok(upload_accepted(StatusCode::ACCEPTED, &name, &id, 0))
        }
        (Method::PATCH, Route::Upload(name, id)) => {
            check_name(&name)?;
            let size = registry.upload_size(&id)?;
            if let Some(range) = headers
                .get(header::CONTENT_RANGE)
                .and_then(|v| v.to_str().ok())
            {
                let start = range
                    .trim_start_matches("bytes ")
                    .split('-')
                    .next()
                    .and_then(|s| s.trim().parse::<u64>().ok());
                if start != Some(size) {
                    return Err(RegistryError::RangeInvalid(format!(
                        "Content-Range {range:?} does not start at the upload's size {size}"
                    )));
                }
            }
            let size = append_body(&registry, &id, body).await?;
            Ok(upload_accepted(StatusCode::ACCEPTED, &name, &id, size))
        }
        (Method::PUT, Route::Upload(name, id)) => {
            check_name(&name)?;
            registry.upload_size(&id)?;
            let digest = query
                .get("digest")
                .ok_or_else(|| RegistryError::DigestInvalid {
                    expected: "a digest query parameter".into(),
                    actual: "none".into(),
                })
                .and_then(|d| Digest::parse(d).map_err(RegistryError::from));
            let digest = match digest {
                Ok(d) => d,
                Err(e) => {
                    let _ = registry.cancel_upload(&id);
                    return Err(e);
                }
            };
            append_body(&registry, &id, body).await?;
            finish(&registry, &id, digest.clone()).await?;
            Ok(blob_created(&name, &digest))
        }
        (Method::GET, Route::Upload(name, id)) => {
            check_name(&name)?;
            let size = registry.upload_size(&id)?;
            Ok(upload_accepted(StatusCode::NO_CONTENT, &name, &id, size))
        }
        (Method::DELETE, Route::Upload(name, id)) => {
            check_name(&name)?;
            registry.cancel_upload(&id)?;
            Ok(StatusCode::NO_CONTENT.into_response())
        }
        (method, route) => Err(RegistryError::Unsupported(format!(
            "{method} is not supported on {route:?}"
        ))),
    }
}

fn build(builder: axum::http::response::Builder, body: Body) -> Response {
    builder.body(body).unwrap_or_else(|e| {
        error_response(RegistryError::Io {
            context: "building a response".into(),
            source: std::io::Error::other(e),
        })
    })
}

fn blob_created(name: &str, digest: &Digest) -> Response {
    build(
        Response::builder()
            .status(StatusCode::CREATED)
            .header(header::LOCATION, format!("/v2/{name}/blobs/{digest}"))
            .header("Docker-Content-Digest", digest.to_string())
            .header(header::CONTENT_LENGTH, 0),
        Body::empty(),
    )
}

fn upload_accepted(status: StatusCode, name: &str, id: &str, size: u64) -> Response {
    build(
        Response::builder()
            .status(status)
            .header(header::LOCATION, format!("/v2/{name}/blobs/uploads/{id}"))
            .header(header::RANGE, format!("0-{}", size.saturating_sub(1)))
            .header("Docker-Upload-UUID", id)
            .header(header::CONTENT_LENGTH, 0),
        Body::empty(),
    )
}

/// How much of a request body is gathered before one write to the upload file.
const WRITE_CHUNK: usize = 1 << 20;

/// An upload's file and its running digest, handed to the blocking pool for each write.
struct UploadSink {
    file: std::fs::File,
    hasher: Option<crate::digest::Hasher>,
}

impl UploadSink {
    fn write(&mut self, data: &[u8]) -> std::io::Result<()> {
        use std::io::Write;
        self.file.write_all(data)?;
        if let Some(h) = &mut self.hasher {
            h.update(data);
        }
        Ok(())
    }
}

/// Appends a request body to an upload; returns the upload's new size. The body is written in
/// 1 MiB pieces on the blocking pool, each while the next is received, and hashed on the way
/// when this process saw the upload's earlier bytes, so finishing it does not read it again.
async fn append_body(registry: &Registry, id: &str, body: Body) -> Result<u64, RegistryError> {
    let path = registry.upload_path(id);
    let write_error = || io_error(format!("writing {}", path.display()));
    let file = std::fs::OpenOptions::new()
        .append(true)
        .open(&path)
        .map_err(|_| RegistryError::BlobUploadUnknown(id.to_string()))?;
    let start = file.metadata().map_err(write_error())?.len();
    let hasher = match registry.take_upload_hasher(id) {
        Some(h) if h.n_bytes() == start => Some(h),
        _ if start == 0 => Some(crate::digest::Hasher::default()),
        _ => None,
    };
    let mut idle = Some(UploadSink { file, hasher });
    let mut pending: Option<tokio::task::JoinHandle<std::io::Result<UploadSink>>> = None;
    let mut buf = Vec::with_capacity(WRITE_CHUNK);
    let mut stream = body.into_data_stream();
    loop {
        let chunk = stream.next().await;
        let done = chunk.is_none();
        if let Some(chunk) = chunk {
            let chunk = chunk.map_err(|e| RegistryError::Io {
                context: "reading the request body".into(),
                source: std::io::Error::other(e),
            })?;
            buf.extend_from_slice(&chunk);
        }
        if buf.len() >= WRITE_CHUNK || (done && !buf.is_empty()) {
            let sink = match pending.take() {
                Some(job) => Some(finish_write(job).await.map_err(write_error())?),
                None => idle.take(),
            };
            if let Some(mut sink) = sink {
                let data = std::mem::replace(&mut buf, Vec::with_capacity(WRITE_CHUNK));
                pending = Some(tokio::task::spawn_blocking(move || {
                    sink.write(&data)?;
                    Ok(sink)
                }));
            }
        }
        if done {
            break;
        }
    }
    let sink = match pending.take() {
        Some(job) => Some(finish_write(job).await.map_err(write_error())?),
        None => idle.take(),
    };
    if let Some(hasher) = sink.and_then(|s| s.hasher) {
        registry.keep_upload_hasher(id, hasher);
    }
    registry.upload_size(id)
}

async fn finish_write(
    job: tokio::task::JoinHandle<std::io::Result<UploadSink>>,
) -> std::io::Result<UploadSink> {
    job.await.unwrap_or_else(|e| Err(std::io::Error::other(e)))
}

async fn finish(registry: &Registry, id: &str, digest: Digest) -> Result<u64, RegistryError> {
    let (registry, id) = (registry.clone(), id.to_string());
    blocking(move || registry.finish_upload(&id, &digest)).await
}

/// Runs storage work that hashes or syncs files off the async threads.
async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, RegistryError> + Send + 'static,
) -> Result<T, RegistryError> {
    tokio::task::spawn_blocking(f).await.unwrap_or_else(|e| {
        Err(RegistryError::Io {
            context: "registry storage task".into(),
            source: std::io::Error::other(e),
        })
    })
}

/// A body streaming a file in 64 KiB chunks.
async fn file_body(path: std::path::PathBuf) -> Result<Body, RegistryError> {
    let file = tokio::fs::File::open(&path)
        .await
        .map_err(io_error(format!("opening {}", path.display())))?;
    let stream = futures_util::stream::unfold(file, |mut file| async move {
        let mut buf = vec![0u8; 64 * 1024];
        match file.read(&mut buf).await {
            Ok(0) => None,
            Ok(n) => {
                buf.truncate(n);
                Some((Ok::<_, std::io::Error>(bytes::Bytes::from(buf)), file))
            }
            Err(e) => Some((Err(e), file)),
        }
    });
    Ok(Body::from_stream(stream))
}

/// `?n=&last=` pagination over sorted names; returns the page and whether more follow.
fn paginate(
    all: Vec<String>,
    query: &HashMap<String, String>,
) -> Result<(Vec<String>, bool), RegistryError> {
    let n = match query.get("n") {
        Some(n) => Some(n.parse::<usize>().map_err(|_| {
            RegistryError::Unsupported(format!("n: expected a count, found {n:?}"))
        })?),
        None => None,
    };
    let after: Vec<String> = match query.get("last") {
        Some(last) => all
            .into_iter()
            .filter(|t| t.as_str() > last.as_str())
            .collect(),
        None => all,
    };
    Ok(match n {
        Some(n) if n < after.len() => (after[..n].to_vec(), n > 0),
        _ => (after, false),
    })
}

fn tags_list(
    registry: &Registry,
    name: &str,
    query: &HashMap<String, String>,
) -> Result<Response, RegistryError> {
    let (tags, more) = paginate(registry.tags(name)?, query)?;
    let body = serde_json::json!({ "name": name, "tags": tags }).to_string();
    let mut response = json_response(StatusCode::OK, body);
    if let (true, Some(last), Some(n)) = (more, tags.last(), query.get("n")) {
        if let Ok(link) = HeaderValue::from_str(&format!(
            "</v2/{name}/tags/list?n={n}&last={last}>; rel=\"next\""
        )) {
            response.headers_mut().insert(header::LINK, link);
        }
    }
    Ok(response)
}

fn catalog(
    registry: &Registry,
    query: &HashMap<String, String>,
) -> Result<Response, RegistryError> {
    let names: Vec<String> = registry.state().repos.keys().cloned().collect();
    let (names, more) = paginate(names, query)?;
    let body = serde_json::json!({ "repositories": names }).to_string();
    let mut response = json_response(StatusCode::OK, body);
    if let (true, Some(last), Some(n)) = (more, names.last(), query.get("n")) {
        if let Ok(link) =
            HeaderValue::from_str(&format!("</v2/_catalog?n={n}&last={last}>; rel=\"next\""))
        {
            response.headers_mut().insert(header::LINK, link);
        }
    }
    Ok(response)
}

fn json_response(status: StatusCode, body: String) -> Response {
    (status, [(header::CONTENT_TYPE, "application/json")], body).into_response()
}

/// An error in the OCI shape `{"errors":[{"code","message","detail"}]}`.
fn error_response(error: RegistryError) -> Response {
    let status =
        StatusCode::from_u16(error.http_status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    if status.is_server_error() {
        tracing::warn!(error = %error, "registry request failed");
    }
    let detail = match &error {
        RegistryError::DigestInvalid { expected, actual } => {
            serde_json::json!({ "expected": expected, "actual": actual })
        }
        RegistryError::ManifestBlobUnknown(d) | RegistryError::BlobUnknown(d) => {
            serde_json::json!({ "digest": d.to_string() })
        }
        _ => serde_json::Value::Null,
    };
    let body = serde_json::json!({
        "errors": [{ "code": error.oci_code(), "message": error.to_string(), "detail": detail }]
    });
    json_response(status, body.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes_names_with_slashes() {
        let d = Digest::of(b"x").to_string();
        assert_eq!(
            route("team/app/tags/list"),
            Some(Route::Tags("team/app".into()))
        );
        assert_eq!(
            route("a/b/c/manifests/v1"),
            Some(Route::Manifest("a/b/c".into(), "v1".into()))
        );
        assert_eq!(
            route("team/app/blobs/uploads/"),
            Some(Route::UploadStart("team/app".into()))
        );
        assert_eq!(
            route("app/blobs/uploads/abc"),
            Some(Route::Upload("app".into(), "abc".into()))
        );
        assert_eq!(
            route(&format!("app/blobs/{d}")),
            Some(Route::Blob("app".into(), d))
        );
        assert_eq!(route("_catalog"), Some(Route::Catalog));
        assert_eq!(route("manifests/v1"), None);
        assert_eq!(route("app/other/x"), None);
    }

    #[test]
    fn pagination() {
        let all: Vec<String> = ["a", "b", "c", "d"].iter().map(|s| s.to_string()).collect();
        let q = |pairs: &[(&str, &str)]| {
            pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect()
        };
        assert_eq!(
            paginate(all.clone(), &q(&[("n", "2")])).unwrap(),
            (vec!["a".into(), "b".into()], true)
        );
        assert_eq!(
            paginate(all.clone(), &q(&[("n", "2"), ("last", "b")])).unwrap(),
            (vec!["c".into(), "d".into()], false)
        );
        assert_eq!(
            paginate(all.clone(), &q(&[("last", "c")])).unwrap(),
            (vec!["d".into()], false)
        );
        assert_eq!(
            paginate(all.clone(), &q(&[("n", "0")])).unwrap(),
            (vec![], false)
        );
        assert!(paginate(all, &q(&[("n", "x")])).is_err());
    }
}
