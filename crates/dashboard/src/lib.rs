//! berth's web dashboard: a single-page app (plain HTML, CSS and JavaScript modules, embedded in
//! the binary) served under `/dashboard`. The page reads everything through the same APIs the AWS
//! CLI uses on the same origin (ECS, CloudWatch, CloudWatch Logs) and `/berth/v1/status`; this
//! crate serves files only and knows nothing else about the server.
//!
//! Routes: `/dashboard/assets/<file>` serves an asset (404 for anything else under `assets/`); every other path
//! under `/dashboard` serves the page, whose script routes by path (`/dashboard/services/web`).

use axum::extract::Path;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;

/// One embedded file: its name under `/dashboard/assets/`, content type and contents.
#[derive(Debug, Clone, Copy)]
pub struct Asset {
    /// The file name (`app.js`).
    pub name: &'static str,
    /// The `content-type` it is served with.
    pub content_type: &'static str,
    /// The file's bytes.
    pub body: &'static [u8],
}

const JS: &str = "text/javascript; charset=utf-8";

/// Every asset, embedded at build time (the `assets/` folder; a test checks none is left out).
pub const ASSETS: &[Asset] = &[
    Asset {
        name: "app.css",
        content_type: "text/css; charset=utf-8",
        body: include_bytes!("../assets/app.css"),
    },
    Asset {
        name: "app.js",
        content_type: JS,
        body: include_bytes!("../assets/app.js"),
    },
    Asset {
        name: "api.js",
        content_type: JS,
        body: include_bytes!("../assets/api.js"),
    },
    Asset {
        name: "chart.js",
        content_type: JS,
        body: include_bytes!("../assets/chart.js"),
    },
    Asset {
        name: "dom.js",
        content_type: JS,
        body: include_bytes!("../assets/dom.js"),
    },
    Asset {
        name: "metrics.js",
        content_type: JS,
        body: include_bytes!("../assets/metrics.js"),
    },
    Asset {
        name: "views.js",
        content_type: JS,
        body: include_bytes!("../assets/views.js"),
    },
    Asset {
        name: "logs.js",
        content_type: JS,
        body: include_bytes!("../assets/logs.js"),
    },
    Asset {
        name: "dashboards.js",
        content_type: JS,
        body: include_bytes!("../assets/dashboards.js"),
    },
    Asset {
        name: "selftest.js",
        content_type: JS,
        body: include_bytes!("../assets/selftest.js"),
    },
    Asset {
        name: "favicon.svg",
        content_type: "image/svg+xml",
        body: include_bytes!("../assets/favicon.svg"),
    },
];

/// The page every non-asset path under `/dashboard` serves.
pub const INDEX_HTML: &str = include_str!("../assets/index.html");

/// Only this origin's scripts, styles, images and API calls: the page works offline and cannot
/// load anything from elsewhere even by mistake.
const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self'; style-src 'self'; \
     img-src 'self' data:; connect-src 'self'; base-uri 'none'; form-action 'none'; \
     frame-ancestors 'none'";

/// The dashboard's routes, to merge into the server's router.
pub fn router() -> Router {
    Router::new()
        .route("/dashboard", get(index))
        .route("/dashboard/", get(index))
        .route("/dashboard/assets/", get(asset_list))
        .route("/dashboard/assets/{*name}", get(asset))
        .route("/dashboard/{*path}", get(index))
}

/// The asset called `name`, if there is one.
pub fn asset_named(name: &str) -> Option<&'static Asset> {
    ASSETS.iter().find(|a| a.name == name)
}

fn with_headers(content_type: &'static str, body: &'static [u8]) -> Response {
    let mut resp = body.into_response();
    let h = resp.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    // Assets are not content-hashed: revalidate so a new binary's page is never mixed with old files.
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    resp
}

async fn index() -> Response {
    let mut resp = with_headers("text/html; charset=utf-8", INDEX_HTML.as_bytes());
    resp.headers_mut().insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CONTENT_SECURITY_POLICY),
    );
    resp
}

async fn asset(Path(name): Path<String>) -> Response {
    match asset_named(&name) {
        Some(a) => with_headers(a.content_type, a.body),
        None => (
            StatusCode::NOT_FOUND,
            [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
            format!(
                "dashboard asset {name:?}: no such file; the assets are {}",
                names()
            ),
        )
            .into_response(),
    }
}

async fn asset_list() -> Response {
    (
        StatusCode::NOT_FOUND,
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        format!("dashboard assets: {}", names()),
    )
        .into_response()
}

fn names() -> String {
    ASSETS.iter().map(|a| a.name).collect::<Vec<_>>().join(", ")
}

#[cfg(test)]
mod tests;
