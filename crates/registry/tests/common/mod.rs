//! Shared helpers of the registry's integration tests: a registry served on 127.0.0.1:0.

#![allow(dead_code, clippy::unwrap_used)]

use berth_registry::manifest::{OCI_CONFIG, OCI_LAYER_GZIP, OCI_MANIFEST};
use berth_registry::{Digest, Registry};

/// A registry served in-process; dropped with its directory when the test ends.
pub struct Served {
    pub registry: Registry,
    pub addr: String,
    pub base: String,
    pub client: reqwest::Client,
    _dir: tempfile::TempDir,
}

pub async fn serve() -> Served {
    let dir = tempfile::tempdir().unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let registry = Registry::open(
        dir.path().join("registry"),
        berth_model::Arns::default(),
        addr.clone(),
    )
    .unwrap();
    let app = berth_registry::router(registry.clone());
    tokio::spawn(async move { axum::serve(listener, app).await });
    Served {
        registry,
        base: format!("http://{addr}"),
        addr,
        client: reqwest::Client::new(),
        _dir: dir,
    }
}

impl Served {
    /// Uploads a blob in one POST; returns the response status.
    pub async fn push_blob(&self, repo: &str, bytes: &[u8]) -> u16 {
        let url = format!(
            "{}/v2/{repo}/blobs/uploads/?digest={}",
            self.base,
            Digest::of(bytes)
        );
        self.client
            .post(url)
            .body(bytes.to_vec())
            .send()
            .await
            .unwrap()
            .status()
            .as_u16()
    }

    /// Pushes a one-layer image (config and layer derived from `seed`) and tags it.
    pub async fn push_image(&self, repo: &str, tag: &str, seed: &str) -> (u16, String) {
        let config = format!("{{\"architecture\":\"amd64\",\"os\":\"linux\",\"seed\":\"{seed}\"}}");
        let layer = format!("layer of {seed}");
        assert_eq!(self.push_blob(repo, config.as_bytes()).await, 201);
        assert_eq!(self.push_blob(repo, layer.as_bytes()).await, 201);
        let manifest = manifest_for(config.as_bytes(), layer.as_bytes());
        self.put_manifest(repo, tag, &manifest).await
    }

    /// PUTs a manifest; returns the status and the body.
    pub async fn put_manifest(
        &self,
        repo: &str,
        reference: &str,
        manifest: &[u8],
    ) -> (u16, String) {
        let response = self
            .client
            .put(format!("{}/v2/{repo}/manifests/{reference}", self.base))
            .header("Content-Type", OCI_MANIFEST)
            .body(manifest.to_vec())
            .send()
            .await
            .unwrap();
        (response.status().as_u16(), response.text().await.unwrap())
    }
}

/// An OCI image manifest for one config and one layer.
pub fn manifest_for(config: &[u8], layer: &[u8]) -> Vec<u8> {
    serde_json::to_vec(&serde_json::json!({
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": {"mediaType": OCI_CONFIG, "digest": Digest::of(config).to_string(), "size": config.len()},
        "layers": [{"mediaType": OCI_LAYER_GZIP, "digest": Digest::of(layer).to_string(), "size": layer.len()}],
    }))
    .unwrap()
}
