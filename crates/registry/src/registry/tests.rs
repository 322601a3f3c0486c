//! Tests of the registry's storage: digest verification, immutability, GC reachability, restart.

use super::*;
use crate::manifest::{OCI_CONFIG, OCI_INDEX, OCI_LAYER_GZIP, OCI_MANIFEST};
use std::time::Duration;

fn open(dir: &Path) -> Registry {
    Registry::open(dir.to_path_buf(), Arns::default(), "127.0.0.1:7878".into()).unwrap()
}

/// Stores a config and a layer and returns an image manifest referencing them.
fn image(registry: &Registry, seed: &str) -> Vec<u8> {
    let config = format!("{{\"seed\":\"{seed}\"}}");
    let layer = format!("layer {seed}");
    registry
        .put_blob(&Digest::of(config.as_bytes()), config.as_bytes())
        .unwrap();
    registry
        .put_blob(&Digest::of(layer.as_bytes()), layer.as_bytes())
        .unwrap();
    manifest_for(config.as_bytes(), layer.as_bytes())
}

fn manifest_for(config: &[u8], layer: &[u8]) -> Vec<u8> {
    serde_json::to_vec(&serde_json::json!({
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": {"mediaType": OCI_CONFIG, "digest": Digest::of(config).to_string(), "size": config.len()},
        "layers": [{"mediaType": OCI_LAYER_GZIP, "digest": Digest::of(layer).to_string(), "size": layer.len()}],
    }))
    .unwrap()
}

fn tag(t: &str) -> Tagged {
    Tagged::Tag(t.into())
}

#[test]
fn upload_with_wrong_digest_is_not_stored() {
    let dir = tempfile::tempdir().unwrap();
    let registry = open(dir.path());
    let wrong = Digest::of(b"something else");
    let err = registry.put_blob(&wrong, b"content").unwrap_err();
    assert!(matches!(err, RegistryError::DigestInvalid { .. }), "{err}");
    assert_eq!(registry.blob_size(&wrong), None);
    assert_eq!(registry.blob_size(&Digest::of(b"content")), None);
    assert_eq!(
        fs::read_dir(dir.path().join("uploads")).unwrap().count(),
        0,
        "the upload is removed"
    );
    registry
        .put_blob(&Digest::of(b"content"), b"content")
        .unwrap();
    assert_eq!(registry.blob_size(&Digest::of(b"content")), Some(7));
}

#[test]
fn manifest_needs_its_blobs_and_is_auto_created() {
    let dir = tempfile::tempdir().unwrap();
    let registry = open(dir.path());
    let manifest = manifest_for(b"c", b"l");
    let err = registry
        .put_manifest("team/app", &tag("v1"), Some(OCI_MANIFEST), &manifest)
        .unwrap_err();
    assert!(
        matches!(err, RegistryError::ManifestBlobUnknown(_)),
        "{err}"
    );
    assert!(
        registry.tags("team/app").is_err(),
        "a refused push creates no repository"
    );
    let manifest = image(&registry, "a");
    let digest = registry
        .put_manifest("team/app", &tag("v1"), Some(OCI_MANIFEST), &manifest)
        .unwrap();
    assert_eq!(registry.tags("team/app").unwrap(), vec!["v1"]);
    let (media_type, got, bytes) = registry
        .get_manifest("team/app", &Tagged::Digest(digest.clone()))
        .unwrap();
    assert_eq!(
        (media_type.as_str(), got, bytes),
        (OCI_MANIFEST, digest.clone(), manifest.clone())
    );
    let err = registry
        .put_manifest(
            "team/app",
            &Tagged::Digest(Digest::of(b"x")),
            None,
            &manifest,
        )
        .unwrap_err();
    assert!(matches!(err, RegistryError::DigestInvalid { .. }), "{err}");
}

#[test]
fn immutable_tags_cannot_move_but_can_be_repushed() {
    let dir = tempfile::tempdir().unwrap();
    let registry = open(dir.path());
    let first = image(&registry, "a");
    let second = image(&registry, "b");
    registry
        .put_manifest("app", &tag("v1"), None, &first)
        .unwrap();
    {
        let mut state = registry.state();
        state.repos.get_mut("app").unwrap().image_tag_mutability = TagMutability::Immutable;
    }
    let err = registry
        .put_manifest("app", &tag("v1"), None, &second)
        .unwrap_err();
    assert!(matches!(err, RegistryError::TagImmutable { .. }), "{err}");
    assert_eq!(err.oci_code(), "TAG_INVALID");
    registry
        .put_manifest("app", &tag("v1"), None, &first)
        .unwrap();
    registry
        .put_manifest("app", &tag("v2"), None, &second)
        .unwrap();
    assert_eq!(
        registry.get_manifest("app", &tag("v1")).unwrap().1,
        Digest::of(&first)
    );
}

#[test]
fn gc_frees_only_unreferenced_blobs() {
    let dir = tempfile::tempdir().unwrap();
    let registry = open(dir.path());
    registry.set_gc_grace(Duration::from_secs(3600));
    let shared_layer = b"shared layer";
    registry
        .put_blob(&Digest::of(shared_layer), shared_layer)
        .unwrap();
    for (repo, config) in [("one", &b"config one"[..]), ("two", &b"config two"[..])] {
        registry.put_blob(&Digest::of(config), config).unwrap();
        registry
            .put_manifest(repo, &tag("v1"), None, &manifest_for(config, shared_layer))
            .unwrap();
    }
    registry
        .put_blob(&Digest::of(b"fresh upload"), b"fresh upload")
        .unwrap();
    assert_eq!(
        registry.gc(),
        GcReport::default(),
        "referenced and fresh blobs stay"
    );
    registry
        .delete_manifest(
            "one",
            &Tagged::Digest(Digest::of(&manifest_for(b"config one", shared_layer))),
        )
        .unwrap();
    // Deleting ran a collection: config one and manifest one are gone; the shared layer stays.
    assert_eq!(registry.blob_size(&Digest::of(b"config one")), None);
    assert!(registry.blob_size(&Digest::of(shared_layer)).is_some());
    assert!(
        registry.blob_size(&Digest::of(b"fresh upload")).is_some(),
        "within the grace period"
    );
    registry.set_gc_grace(Duration::ZERO);
    let report = registry.gc();
    assert_eq!(
        report,
        GcReport {
            freed_blobs: 1,
            freed_bytes: 12
        }
    );
    assert!(registry.get_manifest("two", &tag("v1")).is_ok());
    assert!(registry.blob_size(&Digest::of(b"config two")).is_some());
}

#[test]
fn index_children_must_exist_and_go_with_the_index() {
    let dir = tempfile::tempdir().unwrap();
    let registry = open(dir.path());
    let child = image(&registry, "child");
    let child_digest = Digest::of(&child);
    let index = serde_json::to_vec(&serde_json::json!({
        "schemaVersion": 2, "mediaType": OCI_INDEX,
        "manifests": [{"mediaType": OCI_MANIFEST, "digest": child_digest.to_string(), "size": child.len(),
                        "platform": {"architecture": "amd64", "os": "linux"}}],
    }))
    .unwrap();
    let err = registry
        .put_manifest("app", &tag("multi"), None, &index)
        .unwrap_err();
    assert!(
        matches!(err, RegistryError::ManifestBlobUnknown(_)),
        "{err}"
    );
    registry
        .put_manifest("app", &Tagged::Digest(child_digest.clone()), None, &child)
        .unwrap();
    let index_digest = registry
        .put_manifest("app", &tag("multi"), None, &index)
        .unwrap();
    assert_eq!(
        registry.state().repos["app"].lifecycle_images().len(),
        1,
        "children are not separate images"
    );
    registry
        .delete_manifest("app", &Tagged::Digest(index_digest))
        .unwrap();
    assert!(registry
        .get_manifest("app", &Tagged::Digest(child_digest))
        .is_err());
}

#[test]
fn metadata_survives_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let manifest = {
        let registry = open(dir.path());
        let manifest = image(&registry, "a");
        registry
            .put_manifest("team/app", &tag("v1"), None, &manifest)
            .unwrap();
        manifest
    };
    fs::write(dir.path().join("tmp/leftover"), b"half").unwrap();
    let registry = open(dir.path());
    assert_eq!(
        registry.get_manifest("team/app", &tag("v1")).unwrap().2,
        manifest
    );
    assert!(
        !dir.path().join("tmp/leftover").exists(),
        "interrupted writes are cleaned up"
    );
    assert!(dir.path().join("repositories/team+app.json").exists());
}
