//! An OCI distribution client (HTTP, or HTTPS for the registries [`use_https`] names): pushing an image from an OCI layout (monolithic
//! uploads, skipping blobs the registry has) and pulling one into a content-addressed directory
//! with digest verification, for the container driver.

use crate::digest::{Digest, Hasher};
use crate::manifest::{ManifestBody, DOCKER_MANIFEST_LIST, MANIFEST_MEDIA_TYPES, OCI_INDEX};
use crate::reference::{ImageReference, Tagged};
use crate::{io_error, RegistryError};
use std::path::{Path, PathBuf};
use tokio::io::AsyncWriteExt;

/// An image pulled into a directory: `dest/blobs/sha256/<hex>` holds manifest, config and layers.
#[derive(Debug, Clone)]
pub struct PulledImage {
    /// `host:port/repo@sha256:…` of the image manifest.
    pub reference: String,
    pub manifest_digest: Digest,
    pub manifest_media_type: String,
    pub config_digest: Digest,
    /// The image config JSON (`config.Entrypoint`, `config.Cmd`, `config.Env`, …).
    pub config: serde_json::Value,
    /// Layers, base first.
    pub layers: Vec<PulledLayer>,
}

/// One layer on disk.
#[derive(Debug, Clone)]
pub struct PulledLayer {
    pub digest: Digest,
    pub media_type: String,
    pub size: u64,
    pub path: PathBuf,
}

fn http_error(method: &str, url: &str, message: impl std::fmt::Display) -> RegistryError {
    RegistryError::Http {
        method: method.to_string(),
        url: url.to_string(),
        message: message.to_string(),
    }
}

/// How this process authenticates to berth registries.
#[derive(Debug, Clone)]
pub enum Credential {
    /// A bearer token.
    Token(String),
    /// A file holding a bearer token (read at each use).
    TokenFile(std::path::PathBuf),
}

static CREDENTIAL: std::sync::RwLock<Option<Credential>> = std::sync::RwLock::new(None);

/// Sets the credential every push and pull of this process sends (`Authorization: Bearer`).
pub fn set_credential(credential: Credential) {
    if let Ok(mut c) = CREDENTIAL.write() {
        *c = Some(credential);
    }
}

fn bearer() -> Option<String> {
    let c = CREDENTIAL.read().ok()?.clone()?;
    match c {
        Credential::Token(t) => Some(t),
        Credential::TokenFile(f) => std::fs::read_to_string(f)
            .ok()
            .map(|t| t.trim().to_string()),
    }
}

/// Registries reached over HTTPS, and a CA certificate (PEM) trusted besides the system's.
#[derive(Debug, Default, Clone)]
struct Transport {
    https_hosts: Vec<String>,
    ca_pem: Option<Vec<u8>>,
}

static TRANSPORT: std::sync::RwLock<Transport> = std::sync::RwLock::new(Transport {
    https_hosts: Vec::new(),
    ca_pem: None,
});

/// Reaches the registry at `host` (`host:port`, as image references name it) over HTTPS, trusting
/// `ca_pem` (a PEM certificate) besides the system's roots: berth's registry is served by the API,
/// so when the API is `https://` its images are pulled and pushed over HTTPS too. Other
/// registries are reached over plain HTTP (berth's registries on other machines serving HTTP).
pub fn use_https(host: &str, ca_pem: Option<Vec<u8>>) -> Result<(), RegistryError> {
    if let Some(pem) = &ca_pem {
        reqwest::Certificate::from_pem(pem)
            .map_err(|e| http_error("-", "-", format!("the CA certificate: {e}")))?;
    }
    if let Ok(mut t) = TRANSPORT.write() {
        if !t.https_hosts.iter().any(|h| h == host) {
            t.https_hosts.push(host.to_string());
        }
        if ca_pem.is_some() {
            t.ca_pem = ca_pem;
        }
    }
    Ok(())
}

/// The `/v2/<repository>` URL of an image's repository.
fn base_url(target: &ImageReference) -> String {
    let https = TRANSPORT
        .read()
        .map(|t| t.https_hosts.iter().any(|h| *h == target.host))
        .unwrap_or(false);
    let scheme = if https { "https" } else { "http" };
    format!("{scheme}://{}/v2/{}", target.host, target.repository)
}

fn client() -> Result<reqwest::Client, RegistryError> {
    let mut headers = reqwest::header::HeaderMap::new();
    if let Some(token) = bearer() {
        if let Ok(v) = reqwest::header::HeaderValue::from_str(&format!("Bearer {token}")) {
            headers.insert(reqwest::header::AUTHORIZATION, v);
        }
    }
    let mut builder = reqwest::Client::builder().default_headers(headers);
    let ca = TRANSPORT.read().ok().and_then(|t| t.ca_pem.clone());
    if let Some(pem) = ca {
        let cert = reqwest::Certificate::from_pem(&pem)
            .map_err(|e| http_error("-", "-", format!("the CA certificate: {e}")))?;
        builder = builder.add_root_certificate(cert);
    }
    builder
        .build()
        .map_err(|e| http_error("-", "-", format!("building an HTTP client: {e}")))
}

/// Fails with the registry's error text when `response` is not a success.
async fn check(
    method: &str,
    url: &str,
    response: reqwest::Response,
) -> Result<reqwest::Response, RegistryError> {
    if response.status().is_success() {
        return Ok(response);
    }
    let status = response.status();
    let body = response.text().await.unwrap_or_default();
    Err(http_error(method, url, format!("{status}: {body}")))
}

/// Pushes the image whose `manifest` (bytes) and blobs are in the OCI layout `layout` to
/// `reference` (`host:port/repo:tag`); returns the manifest digest.
pub async fn push_layout(
    layout: &Path,
    manifest: &[u8],
    reference: &str,
) -> Result<Digest, RegistryError> {
    let target = ImageReference::parse(reference).map_err(RegistryError::Reference)?;
    let body: ManifestBody = serde_json::from_slice(manifest)
        .map_err(|e| RegistryError::ManifestInvalid(format!("the manifest to push: {e}")))?;
    let media_type = body
        .media_type
        .clone()
        .unwrap_or_else(|| crate::manifest::OCI_MANIFEST.to_string());
    let config = body.config.ok_or_else(|| {
        RegistryError::ManifestInvalid("the manifest to push has no config".into())
    })?;
    let client = client()?;
    let base = base_url(&target);
    let mut blobs = vec![config];
    blobs.extend(body.layers.unwrap_or_default());
    for blob in blobs {
        let url = format!("{base}/blobs/{}", blob.digest);
        let head = client
            .head(&url)
            .send()
            .await
            .map_err(|e| http_error("HEAD", &url, e))?;
        if head.status().is_success() {
            continue;
        }
        let path = layout.join("blobs/sha256").join(blob.digest.hex());
        let bytes = tokio::fs::read(&path)
            .await
            .map_err(io_error(format!("reading {}", path.display())))?;
        let url = format!("{base}/blobs/uploads/?digest={}", blob.digest);
        let response = client
            .post(&url)
            .header("Content-Type", "application/octet-stream")
            .body(bytes)
            .send()
            .await
            .map_err(|e| http_error("POST", &url, e))?;
        check("POST", &url, response).await?;
    }
    let url = format!("{base}/manifests/{}", target.reference.as_path());
    let response = client
        .put(&url)
        .header("Content-Type", media_type)
        .body(manifest.to_vec())
        .send()
        .await
        .map_err(|e| http_error("PUT", &url, e))?;
    check("PUT", &url, response).await?;
    Ok(Digest::of(manifest))
}

/// Fetches a manifest; verifies it against the digest asked for (if any) and returns its media
/// type, digest and bytes.
async fn fetch_manifest(
    client: &reqwest::Client,
    base: &str,
    reference: &Tagged,
) -> Result<(String, Digest, Vec<u8>), RegistryError> {
    let url = format!("{base}/manifests/{}", reference.as_path());
    let response = client
        .get(&url)
        .header("Accept", MANIFEST_MEDIA_TYPES.join(", "))
        .send()
        .await
        .map_err(|e| http_error("GET", &url, e))?;
    let response = check("GET", &url, response).await?;
    let header_type = response
        .headers()
        .get("Content-Type")
        .and_then(|v| v.to_str().ok())
        .map(|v| v.split(';').next().unwrap_or(v).trim().to_string());
    let bytes = response
        .bytes()
        .await
        .map_err(|e| http_error("GET", &url, e))?
        .to_vec();
    let digest = Digest::of(&bytes);
    if let Tagged::Digest(expected) = reference {
        if *expected != digest {
            return Err(RegistryError::DigestInvalid {
                expected: expected.to_string(),
                actual: digest.to_string(),
            });
        }
    }
    let body: ManifestBody = serde_json::from_slice(&bytes)
        .map_err(|e| RegistryError::ManifestInvalid(format!("{url}: {e}")))?;
    let media_type = header_type
        .filter(|t| MANIFEST_MEDIA_TYPES.contains(&t.as_str()))
        .or(body.media_type)
        .unwrap_or_else(|| crate::manifest::OCI_MANIFEST.to_string());
    Ok((media_type, digest, bytes))
}

/// Downloads a blob into `blobs/<hex>` unless it is already there, verifying its digest before
/// it gets its final name.
async fn fetch_blob(
    client: &reqwest::Client,
    base: &str,
    digest: &Digest,
    blobs: &Path,
) -> Result<PathBuf, RegistryError> {
    let dest = blobs.join(digest.hex());
    if tokio::fs::metadata(&dest).await.is_ok() {
        return Ok(dest);
    }
    let url = format!("{base}/blobs/{digest}");
    let response = client
        .get(&url)
        .send()
        .await
        .map_err(|e| http_error("GET", &url, e))?;
    let mut response = check("GET", &url, response).await?;
    let tmp = blobs.join(format!(
        ".{}.partial-{}",
        digest.hex(),
        uuid::Uuid::new_v4().simple()
    ));
    let result = async {
        let mut file = tokio::fs::File::create(&tmp)
            .await
            .map_err(io_error(format!("creating {}", tmp.display())))?;
        let mut hasher = Hasher::default();
        while let Some(chunk) = response
            .chunk()
            .await
            .map_err(|e| http_error("GET", &url, e))?
        {
            hasher.update(&chunk);
            file.write_all(&chunk)
                .await
                .map_err(io_error(format!("writing {}", tmp.display())))?;
        }
        let (actual, _) = hasher.finish();
        if actual != *digest {
            return Err(RegistryError::DigestInvalid {
                expected: digest.to_string(),
                actual: actual.to_string(),
            });
        }
        file.sync_all()
            .await
            .map_err(io_error(format!("syncing {}", tmp.display())))?;
        tokio::fs::rename(&tmp, &dest)
            .await
            .map_err(io_error(format!("storing {}", dest.display())))?;
        Ok(dest.clone())
    }
    .await;
    if result.is_err() {
        let _ = tokio::fs::remove_file(&tmp).await;
    }
    result
}

/// Pulls `reference` (`host:port/repo:tag` or `host:port/repo@sha256:…`) into `dest`: the
/// manifest (an index resolves to its linux entry for this machine's architecture), the config
/// and the layers, each verified against its digest and stored as `dest/blobs/sha256/<hex>`.
pub async fn pull(reference: &str, dest: &Path) -> Result<PulledImage, RegistryError> {
    pull_with(&client()?, reference, dest).await
}

/// `pull` over a given HTTP client, so a caller that pulls often (the node agent) reuses its
/// connections.
pub async fn pull_with(
    client: &reqwest::Client,
    reference: &str,
    dest: &Path,
) -> Result<PulledImage, RegistryError> {
    let target = ImageReference::parse(reference).map_err(RegistryError::Reference)?;
    let blobs = dest.join("blobs/sha256");
    tokio::fs::create_dir_all(&blobs)
        .await
        .map_err(io_error(format!("creating {}", blobs.display())))?;
    let base = base_url(&target);
    let (mut media_type, mut digest, mut bytes) =
        fetch_manifest(client, &base, &target.reference).await?;
    if media_type == OCI_INDEX || media_type == DOCKER_MANIFEST_LIST {
        let index: ManifestBody = serde_json::from_slice(&bytes)
            .map_err(|e| RegistryError::ManifestInvalid(format!("index {digest}: {e}")))?;
        let arch = crate::build::host_architecture();
        let child = index
            .manifests
            .unwrap_or_default()
            .into_iter()
            .find(|m| {
                m.platform
                    .as_ref()
                    .is_some_and(|p| p.os == "linux" && p.architecture == arch)
            })
            .ok_or_else(|| {
                RegistryError::ManifestInvalid(format!("index {digest} has no linux/{arch} image"))
            })?;
        (media_type, digest, bytes) =
            fetch_manifest(client, &base, &Tagged::Digest(child.digest)).await?;
    }
    write_verified(&blobs, &digest, &bytes).await?;
    let manifest: ManifestBody = serde_json::from_slice(&bytes)
        .map_err(|e| RegistryError::ManifestInvalid(format!("manifest {digest}: {e}")))?;
    let config = manifest.config.ok_or_else(|| {
        RegistryError::ManifestInvalid(format!("manifest {digest} has no config"))
    })?;
    let config_path = fetch_blob(client, &base, &config.digest, &blobs).await?;
    let config_bytes = tokio::fs::read(&config_path)
        .await
        .map_err(io_error(format!("reading {}", config_path.display())))?;
    let config_json: serde_json::Value = serde_json::from_slice(&config_bytes)
        .map_err(|e| RegistryError::ManifestInvalid(format!("config {}: {e}", config.digest)))?;
    let mut layers = Vec::new();
    for layer in manifest.layers.unwrap_or_default() {
        let path = fetch_blob(client, &base, &layer.digest, &blobs).await?;
        layers.push(PulledLayer {
            digest: layer.digest,
            media_type: layer.media_type,
            size: layer.size,
            path,
        });
    }
    Ok(PulledImage {
        reference: format!("{}/{}@{digest}", target.host, target.repository),
        manifest_digest: digest,
        manifest_media_type: media_type,
        config_digest: config.digest,
        config: config_json,
        layers,
    })
}

async fn write_verified(blobs: &Path, digest: &Digest, bytes: &[u8]) -> Result<(), RegistryError> {
    let dest = blobs.join(digest.hex());
    if tokio::fs::metadata(&dest).await.is_ok() {
        return Ok(());
    }
    let tmp = blobs.join(format!(
        ".{}.partial-{}",
        digest.hex(),
        uuid::Uuid::new_v4().simple()
    ));
    tokio::fs::write(&tmp, bytes)
        .await
        .map_err(io_error(format!("writing {}", tmp.display())))?;
    tokio::fs::rename(&tmp, &dest)
        .await
        .map_err(io_error(format!("storing {}", dest.display())))
}
