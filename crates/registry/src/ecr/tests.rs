//! Tests of the ECR operations over a registry in a temporary directory.

use super::*;
use crate::manifest::{OCI_CONFIG, OCI_LAYER_GZIP, OCI_MANIFEST};
use crate::reference::Tagged;

fn open(dir: &std::path::Path) -> Registry {
    Registry::open(
        dir.to_path_buf(),
        berth_model::Arns::default(),
        "127.0.0.1:7878".into(),
    )
    .unwrap()
}

fn push(registry: &Registry, repo: &str, tag: Option<&str>, seed: &str) -> Digest {
    let config = format!("{{\"seed\":\"{seed}\"}}");
    let layer = format!("layer {seed}");
    registry
        .put_blob(&Digest::of(config.as_bytes()), config.as_bytes())
        .unwrap();
    registry
        .put_blob(&Digest::of(layer.as_bytes()), layer.as_bytes())
        .unwrap();
    let manifest = serde_json::to_vec(&json!({
        "schemaVersion": 2, "mediaType": OCI_MANIFEST,
        "config": {"mediaType": OCI_CONFIG, "digest": Digest::of(config.as_bytes()).to_string(), "size": config.len()},
        "layers": [{"mediaType": OCI_LAYER_GZIP, "digest": Digest::of(layer.as_bytes()).to_string(), "size": layer.len()}],
    }))
    .unwrap();
    let reference = match tag {
        Some(t) => Tagged::Tag(t.into()),
        None => Tagged::Digest(Digest::of(&manifest)),
    };
    registry
        .put_manifest(repo, &reference, None, &manifest)
        .unwrap()
}

#[test]
fn repositories() {
    let dir = tempfile::tempdir().unwrap();
    let registry = open(dir.path());
    let out = call(
        &registry,
        "CreateRepository",
        json!({"repositoryName": "team/app", "imageTagMutability": "IMMUTABLE",
        "imageScanningConfiguration": {"scanOnPush": true}}),
    )
    .unwrap();
    assert_eq!(
        out["repository"]["repositoryUri"],
        "127.0.0.1:7878/team/app"
    );
    assert_eq!(
        out["repository"]["repositoryArn"],
        "arn:aws:ecr:us-east-1:000000000000:repository/team/app"
    );
    assert_eq!(out["repository"]["imageTagMutability"], "IMMUTABLE");
    let err = call(
        &registry,
        "CreateRepository",
        json!({"repositoryName": "team/app"}),
    )
    .unwrap_err();
    assert_eq!(err.code(), "RepositoryAlreadyExistsException");
    let err = call(
        &registry,
        "CreateRepository",
        json!({"repositoryName": "Bad", "imageTagMutability": "x"}),
    )
    .unwrap_err();
    assert_eq!(err.code(), "InvalidParameterException");
    assert!(
        err.to_string().contains("repositoryName")
            && err.to_string().contains("imageTagMutability"),
        "{err}"
    );
    let err = call(
        &registry,
        "DescribeRepositories",
        json!({"repositoryNames": ["nope"]}),
    )
    .unwrap_err();
    assert_eq!(err.code(), "RepositoryNotFoundException");

    push(&registry, "team/app", Some("v1"), "a");
    let images = call(
        &registry,
        "DescribeImages",
        json!({"repositoryName": "team/app"}),
    )
    .unwrap();
    assert_eq!(images["imageDetails"][0]["imageTags"], json!(["v1"]));
    assert_eq!(
        images["imageDetails"][0]["imageScanStatus"]["status"],
        "COMPLETE"
    );
    let err = call(
        &registry,
        "DeleteRepository",
        json!({"repositoryName": "team/app"}),
    )
    .unwrap_err();
    assert_eq!(err.code(), "RepositoryNotEmptyException");
    call(
        &registry,
        "DeleteRepository",
        json!({"repositoryName": "team/app", "force": true}),
    )
    .unwrap();
    let all = call(&registry, "DescribeRepositories", json!({})).unwrap();
    assert_eq!(all["repositories"], json!([]));
    assert_eq!(
        call(&registry, "Nope", json!({})).unwrap_err().code(),
        "UnknownOperationException"
    );
}

#[test]
fn images_and_batch_delete() {
    let dir = tempfile::tempdir().unwrap();
    let registry = open(dir.path());
    let a = push(&registry, "app", Some("v1"), "a");
    registry
        .put_manifest(
            "app",
            &Tagged::Tag("also".into()),
            None,
            &registry
                .get_manifest("app", &Tagged::Tag("v1".into()))
                .unwrap()
                .2,
        )
        .unwrap();
    let b = push(&registry, "app", None, "b");
    let list = call(&registry, "ListImages", json!({"repositoryName": "app"})).unwrap();
    assert_eq!(list["imageIds"].as_array().unwrap().len(), 3);
    let untagged = call(
        &registry,
        "ListImages",
        json!({"repositoryName": "app", "filter": {"tagStatus": "UNTAGGED"}}),
    )
    .unwrap();
    assert_eq!(
        untagged["imageIds"],
        json!([{"imageDigest": b.to_string()}])
    );
    let paged = call(
        &registry,
        "ListImages",
        json!({"repositoryName": "app", "maxResults": 2}),
    )
    .unwrap();
    assert_eq!(paged["imageIds"].as_array().unwrap().len(), 2);
    assert_eq!(paged["nextToken"], "2");
    let err = call(
        &registry,
        "DescribeImages",
        json!({"repositoryName": "app", "imageIds": [{"imageTag": "nope"}]}),
    )
    .unwrap_err();
    assert_eq!(err.code(), "ImageNotFoundException");

    // Removing one of two tags keeps the image; removing the last deletes it.
    let out = call(&registry, "BatchDeleteImage", json!({"repositoryName": "app", "imageIds": [
        {"imageTag": "v1"}, {"imageTag": "nope"}, {"imageDigest": b.to_string(), "imageTag": "also"}]})).unwrap();
    assert_eq!(out["imageIds"].as_array().unwrap().len(), 1);
    let codes: Vec<&str> = out["failures"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["failureCode"].as_str().unwrap())
        .collect();
    assert_eq!(codes, vec!["ImageNotFound", "ImageTagDoesNotMatchDigest"]);
    assert!(registry
        .get_manifest("app", &Tagged::Digest(a.clone()))
        .is_ok());
    call(
        &registry,
        "BatchDeleteImage",
        json!({"repositoryName": "app", "imageIds": [{"imageTag": "also"}]}),
    )
    .unwrap();
    assert!(registry.get_manifest("app", &Tagged::Digest(a)).is_err());
    assert_eq!(
        registry.blob_size(&Digest::of(b"layer a")),
        None,
        "its blobs were collected"
    );
    assert!(registry.blob_size(&Digest::of(b"layer b")).is_some());
}

#[test]
fn lifecycle_policy_preview_and_apply() {
    let dir = tempfile::tempdir().unwrap();
    let registry = open(dir.path());
    for i in 0..5 {
        push(&registry, "app", Some(&format!("v{i}")), &i.to_string());
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    let err = call(
        &registry,
        "GetLifecyclePolicy",
        json!({"repositoryName": "app"}),
    )
    .unwrap_err();
    assert_eq!(err.code(), "LifecyclePolicyNotFoundException");
    let err = call(
        &registry,
        "PutLifecyclePolicy",
        json!({"repositoryName": "app", "lifecyclePolicyText": "{\"rules\":[]}"}),
    )
    .unwrap_err();
    assert_eq!(err.code(), "InvalidParameterException");
    let policy = r#"{"rules":[{"rulePriority":1,"selection":{"tagStatus":"any","countType":"imageCountMoreThan","countNumber":3},"action":{"type":"expire"}}]}"#;
    call(
        &registry,
        "PutLifecyclePolicy",
        json!({"repositoryName": "app", "lifecyclePolicyText": policy}),
    )
    .unwrap();
    assert_eq!(
        call(
            &registry,
            "GetLifecyclePolicy",
            json!({"repositoryName": "app"})
        )
        .unwrap()["lifecyclePolicyText"],
        policy
    );
    let err = call(
        &registry,
        "GetLifecyclePolicyPreview",
        json!({"repositoryName": "app"}),
    )
    .unwrap_err();
    assert_eq!(err.code(), "LifecyclePolicyPreviewNotFoundException");
    let started = call(
        &registry,
        "StartLifecyclePolicyPreview",
        json!({"repositoryName": "app"}),
    )
    .unwrap();
    assert_eq!(started["status"], "IN_PROGRESS");
    let preview = call(
        &registry,
        "GetLifecyclePolicyPreview",
        json!({"repositoryName": "app"}),
    )
    .unwrap();
    assert_eq!(preview["status"], "COMPLETE");
    assert_eq!(preview["summary"]["expiringImageTotalCount"], 2);
    let tags: Vec<&str> = preview["previewResults"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["imageTags"][0].as_str().unwrap())
        .collect();
    assert_eq!(tags, vec!["v0", "v1"]);
    assert_eq!(
        registry.tags("app").unwrap().len(),
        5,
        "a preview expires nothing"
    );
    let expired = registry.apply_lifecycle("app").unwrap();
    assert_eq!(expired.len(), 2);
    assert_eq!(registry.tags("app").unwrap(), vec!["v2", "v3", "v4"]);
    assert!(call(
        &registry,
        "GetLifecyclePolicy",
        json!({"repositoryName": "app"})
    )
    .unwrap()["lastEvaluatedAt"]
        .is_number());
}

#[test]
fn settings_and_token() {
    let dir = tempfile::tempdir().unwrap();
    let registry = open(dir.path());
    push(&registry, "app", Some("v1"), "a");
    let err = call(
        &registry,
        "PutImageTagMutability",
        json!({"repositoryName": "app", "imageTagMutability": "NO"}),
    )
    .unwrap_err();
    assert_eq!(err.code(), "InvalidParameterException");
    call(
        &registry,
        "PutImageTagMutability",
        json!({"repositoryName": "app", "imageTagMutability": "IMMUTABLE"}),
    )
    .unwrap();
    let moved = {
        let config = b"{}";
        registry.put_blob(&Digest::of(config), config).unwrap();
        let m = serde_json::to_vec(&json!({"schemaVersion": 2, "mediaType": OCI_MANIFEST,
            "config": {"mediaType": OCI_CONFIG, "digest": Digest::of(config).to_string(), "size": 2}, "layers": []})).unwrap();
        registry.put_manifest("app", &Tagged::Tag("v1".into()), None, &m)
    };
    assert_eq!(
        EcrError::from(moved.unwrap_err()).code(),
        "ImageTagAlreadyExistsException"
    );
    let token = call(&registry, "GetAuthorizationToken", json!({})).unwrap();
    let data = &token["authorizationData"][0];
    assert_eq!(data["proxyEndpoint"], "http://127.0.0.1:7878");
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(data["authorizationToken"].as_str().unwrap())
        .unwrap();
    assert!(String::from_utf8(decoded).unwrap().starts_with("AWS:"));
}
