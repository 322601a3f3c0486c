//! Tests of the dashboard's router and assets: what is served with which content type, that the
//! page and its scripts reference only this origin, and that every asset file is embedded.

use super::*;
use std::collections::BTreeMap;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Serves the router on a loopback port; returns its address.
async fn serve() -> std::net::SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, router()).await });
    addr
}

/// One GET: status, headers (lowercase names) and body.
async fn get(addr: std::net::SocketAddr, path: &str) -> (u16, BTreeMap<String, String>, Vec<u8>) {
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    let req = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
    s.write_all(req.as_bytes()).await.unwrap();
    let mut raw = Vec::new();
    tokio::time::timeout(std::time::Duration::from_secs(10), s.read_to_end(&mut raw))
        .await
        .unwrap()
        .unwrap();
    let end = raw.windows(4).position(|w| w == b"\r\n\r\n").unwrap();
    let head = String::from_utf8_lossy(&raw[..end]).to_string();
    let mut lines = head.lines();
    let status = lines
        .next()
        .unwrap()
        .split(' ')
        .nth(1)
        .unwrap()
        .parse()
        .unwrap();
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    (status, headers, raw[end + 4..].to_vec())
}

#[tokio::test]
async fn the_page_is_served_at_every_dashboard_path() {
    let addr = serve().await;
    for path in [
        "/dashboard",
        "/dashboard/",
        "/dashboard/services/web",
        "/dashboard/alarms",
        "/dashboard/dashboards/ops?window=3600",
    ] {
        let (status, headers, body) = get(addr, path).await;
        assert_eq!(status, 200, "{path}");
        assert_eq!(
            headers["content-type"], "text/html; charset=utf-8",
            "{path}"
        );
        assert_eq!(body, INDEX_HTML.as_bytes(), "{path}");
        let csp = &headers["content-security-policy"];
        assert!(
            csp.contains("connect-src 'self'") && csp.contains("script-src 'self'"),
            "{csp}"
        );
    }
}

#[tokio::test]
async fn every_asset_is_served_with_its_content_type() {
    let addr = serve().await;
    for a in ASSETS {
        let (status, headers, body) = get(addr, &format!("/dashboard/assets/{}", a.name)).await;
        assert_eq!(status, 200, "{}", a.name);
        assert_eq!(headers["content-type"], a.content_type, "{}", a.name);
        assert_eq!(headers["x-content-type-options"], "nosniff", "{}", a.name);
        assert_eq!(body, a.body, "{}", a.name);
        let expected = match a.name.rsplit('.').next() {
            Some("js") => "text/javascript",
            Some("css") => "text/css",
            Some("svg") => "image/svg+xml",
            other => panic!("{}: no content type known for {other:?}", a.name),
        };
        assert!(
            a.content_type.starts_with(expected),
            "{}: {}",
            a.name,
            a.content_type
        );
    }
}

#[tokio::test]
async fn unknown_assets_and_paths_outside_the_dashboard_are_not_found() {
    let addr = serve().await;
    let (status, headers, body) = get(addr, "/dashboard/assets/nope.js").await;
    assert_eq!(status, 404);
    assert!(headers["content-type"].starts_with("text/plain"));
    assert!(
        String::from_utf8_lossy(&body).contains("app.js"),
        "the message lists the assets"
    );
    for path in [
        "/dashboard/assets/../Cargo.toml",
        "/dashboard/assets/x/app.js",
        "/dashboard/assets/",
    ] {
        let (status, _, body) = get(addr, path).await;
        assert_eq!(status, 404, "{path}: {}", String::from_utf8_lossy(&body));
    }
    let (status, _, _) = get(addr, "/").await;
    assert_eq!(status, 404, "the root is the server's, not the dashboard's");
    let (status, _, _) = get(addr, "/dashboardx").await;
    assert_eq!(status, 404);
}

/// Every `http://` or `https://` in `text`, with what follows it (up to a quote or space).
fn absolute_urls(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    for scheme in ["http://", "https://"] {
        let mut rest = text;
        while let Some(i) = rest.find(scheme) {
            let tail = &rest[i..];
            let end = tail
                .find(['"', '\'', ' ', ')', '`', '<', '>'])
                .unwrap_or(tail.len());
            out.push(tail[..end].to_string());
            rest = &rest[i + scheme.len()..];
        }
    }
    out
}

#[test]
fn no_asset_refers_to_another_host() {
    let mut files: Vec<(&str, &str)> = vec![("index.html", INDEX_HTML)];
    for a in ASSETS {
        files.push((a.name, std::str::from_utf8(a.body).unwrap()));
    }
    for (name, text) in files {
        for url in absolute_urls(text) {
            // An SVG's namespace is a name, never fetched; it is the one absolute URL allowed.
            let namespace = url == "http://www.w3.org/2000/svg"
                && text.contains("xmlns=\"http://www.w3.org/2000/svg\"")
                && name.ends_with(".svg");
            assert!(namespace, "{name} refers to another host: {url}");
        }
        assert!(!text.contains("//cdn"), "{name} refers to a CDN");
    }
    // The check itself finds what it looks for.
    assert_eq!(
        absolute_urls(r#"<script src="https://cdn.example/x.js"></script>"#),
        ["https://cdn.example/x.js"]
    );
}

#[test]
fn the_index_references_only_dashboard_assets_that_exist() {
    let mut refs = Vec::new();
    for attr in ["src=\"", "href=\""] {
        for part in INDEX_HTML.split(attr).skip(1) {
            refs.push(part.split('"').next().unwrap().to_string());
        }
    }
    assert!(refs.len() >= 5, "{refs:?}");
    for r in refs {
        assert!(
            r.starts_with("/dashboard"),
            "index.html: {r} is not a dashboard path"
        );
        if let Some(name) = r.strip_prefix("/dashboard/assets/") {
            assert!(
                asset_named(name).is_some(),
                "index.html: {r} is not an asset"
            );
        }
    }
}

#[test]
fn every_script_import_names_an_asset() {
    let mut n = 0;
    for a in ASSETS.iter().filter(|a| a.name.ends_with(".js")) {
        let text = std::str::from_utf8(a.body).unwrap();
        for part in text.split(" from \"").skip(1) {
            let target = part.split('"').next().unwrap();
            let name = target.strip_prefix("./").unwrap_or_else(|| {
                panic!("{}: import {target:?} is not a relative module", a.name)
            });
            assert!(
                asset_named(name).is_some(),
                "{}: imports {target}, which is not an asset",
                a.name
            );
            n += 1;
        }
        assert!(
            !text.contains("import("),
            "{}: dynamic imports are not checked",
            a.name
        );
    }
    assert!(n >= 10, "found only {n} imports");
}

#[test]
fn every_file_in_the_assets_folder_is_embedded() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("assets");
    let mut on_disk: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().to_string())
        .filter(|n| n != "index.html")
        .collect();
    on_disk.sort();
    let mut embedded: Vec<String> = ASSETS.iter().map(|a| a.name.to_string()).collect();
    embedded.sort();
    assert_eq!(on_disk, embedded);
}
