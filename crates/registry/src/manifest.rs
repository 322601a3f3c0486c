//! Image manifests and indexes (OCI and Docker v2 schema 2): media types, descriptors, and the
//! parsing that tells which blobs and child manifests a manifest references.

use crate::digest::Digest;
use crate::RegistryError;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// `application/vnd.oci.image.manifest.v1+json`
pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
/// `application/vnd.oci.image.index.v1+json`
pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
/// `application/vnd.docker.distribution.manifest.v2+json`
pub const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
/// `application/vnd.docker.distribution.manifest.list.v2+json`
pub const DOCKER_MANIFEST_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
/// `application/vnd.oci.image.config.v1+json`
pub const OCI_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
/// `application/vnd.oci.image.layer.v1.tar+gzip`
pub const OCI_LAYER_GZIP: &str = "application/vnd.oci.image.layer.v1.tar+gzip";

/// Every manifest media type berth stores, for `Accept` headers.
pub const MANIFEST_MEDIA_TYPES: [&str; 4] = [
    OCI_MANIFEST,
    OCI_INDEX,
    DOCKER_MANIFEST,
    DOCKER_MANIFEST_LIST,
];

/// A content descriptor: what a manifest says about a blob or a child manifest.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Descriptor {
    pub media_type: String,
    pub digest: Digest,
    pub size: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub urls: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub annotations: Option<BTreeMap<String, String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub platform: Option<Platform>,
}

/// The platform of an index entry.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Platform {
    pub architecture: String,
    pub os: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub variant: Option<String>,
}

/// The body of any of the four manifest kinds, loosely: which fields are present tells the kind.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ManifestBody {
    pub schema_version: Option<u32>,
    pub media_type: Option<String>,
    pub config: Option<Descriptor>,
    pub layers: Option<Vec<Descriptor>>,
    pub manifests: Option<Vec<Descriptor>>,
}

/// What the registry needs to know about a manifest it is given.
#[derive(Debug, Clone, PartialEq)]
pub struct ParsedManifest {
    pub media_type: String,
    pub body: ManifestBodySummary,
}

/// The references of a manifest: blobs (config and layers) or child manifests (index).
#[derive(Debug, Clone, PartialEq)]
pub enum ManifestBodySummary {
    Image {
        /// Config and layers stored here (layers with `urls` are foreign and not required).
        blobs: Vec<Digest>,
        config_media_type: String,
        /// Config plus layers, in bytes.
        image_size: u64,
    },
    Index {
        children: Vec<Descriptor>,
    },
}

fn is_index(media_type: &str) -> bool {
    media_type == OCI_INDEX || media_type == DOCKER_MANIFEST_LIST
}

/// Parses a manifest pushed with `content_type`; the media type comes from the header, else from
/// the body's `mediaType`, else from its shape.
pub fn parse_manifest(
    content_type: Option<&str>,
    bytes: &[u8],
) -> Result<ParsedManifest, RegistryError> {
    let invalid = |m: String| RegistryError::ManifestInvalid(m);
    let body: ManifestBody = serde_json::from_slice(bytes)
        .map_err(|e| invalid(format!("expected manifest JSON: {e}")))?;
    let header = content_type
        .map(|c| c.split(';').next().unwrap_or(c).trim().to_string())
        .filter(|c| MANIFEST_MEDIA_TYPES.contains(&c.as_str()));
    let media_type = match (&header, &body.media_type) {
        (Some(h), Some(b)) if h != b => {
            return Err(invalid(format!(
                "Content-Type {h} does not match the manifest's mediaType {b}"
            )))
        }
        (Some(h), _) => h.clone(),
        (None, Some(b)) => b.clone(),
        (None, None) if body.manifests.is_some() => OCI_INDEX.to_string(),
        (None, None) if body.config.is_some() => OCI_MANIFEST.to_string(),
        (None, None) => return Err(invalid("cannot tell the manifest's media type".into())),
    };
    if !MANIFEST_MEDIA_TYPES.contains(&media_type.as_str()) {
        return Err(invalid(format!(
            "media type {media_type} is not supported; expected one of {}",
            MANIFEST_MEDIA_TYPES.join(", ")
        )));
    }
    if body.schema_version != Some(2) {
        return Err(invalid(format!(
            "schemaVersion: expected 2, found {:?}",
            body.schema_version
        )));
    }
    let summary = if is_index(&media_type) {
        let children = body
            .manifests
            .ok_or_else(|| invalid("manifests: expected a list in an index".into()))?;
        ManifestBodySummary::Index { children }
    } else {
        let config = body
            .config
            .ok_or_else(|| invalid("config: expected a descriptor in an image manifest".into()))?;
        let layers = body.layers.unwrap_or_default();
        let mut blobs = vec![config.digest.clone()];
        blobs.extend(
            layers
                .iter()
                .filter(|l| l.urls.is_none())
                .map(|l| l.digest.clone()),
        );
        let image_size = config.size + layers.iter().map(|l| l.size).sum::<u64>();
        ManifestBodySummary::Image {
            blobs,
            config_media_type: config.media_type,
            image_size,
        }
    };
    Ok(ParsedManifest {
        media_type,
        body: summary,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn image_manifest(media_type: Option<&str>) -> Vec<u8> {
        let d = Digest::of(b"config");
        let l = Digest::of(b"layer");
        let mut v = serde_json::json!({
            "schemaVersion": 2,
            "config": {"mediaType": OCI_CONFIG, "digest": d.to_string(), "size": 6},
            "layers": [{"mediaType": OCI_LAYER_GZIP, "digest": l.to_string(), "size": 5}]
        });
        if let Some(m) = media_type {
            v["mediaType"] = m.into();
        }
        serde_json::to_vec(&v).unwrap()
    }

    #[test]
    fn media_type_from_header_body_or_shape() {
        let m = parse_manifest(Some(DOCKER_MANIFEST), &image_manifest(None)).unwrap();
        assert_eq!(m.media_type, DOCKER_MANIFEST);
        let m = parse_manifest(None, &image_manifest(Some(OCI_MANIFEST))).unwrap();
        assert_eq!(m.media_type, OCI_MANIFEST);
        let m = parse_manifest(Some("application/json"), &image_manifest(None)).unwrap();
        assert_eq!(m.media_type, OCI_MANIFEST);
        match m.body {
            ManifestBodySummary::Image {
                blobs, image_size, ..
            } => {
                assert_eq!(blobs, vec![Digest::of(b"config"), Digest::of(b"layer")]);
                assert_eq!(image_size, 11);
            }
            other => panic!("expected an image, found {other:?}"),
        }
    }

    #[test]
    fn refuses_bad_manifests() {
        assert!(parse_manifest(Some(OCI_INDEX), &image_manifest(Some(OCI_MANIFEST))).is_err());
        assert!(parse_manifest(Some(OCI_MANIFEST), b"{").is_err());
        assert!(parse_manifest(None, br#"{"schemaVersion":2}"#).is_err());
        assert!(parse_manifest(
            Some(OCI_INDEX),
            br#"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json"}"#
        )
        .is_err());
        assert!(parse_manifest(
            None,
            br#"{"schemaVersion":1,"config":{"mediaType":"x","digest":"sha256:00","size":1}}"#
        )
        .is_err());
    }
}
