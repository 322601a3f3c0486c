//! The OCI distribution API served in-process on 127.0.0.1:0: uploads, digests, manifests,
//! immutability, lifecycle with GC, mounts, tag listing, and a build → push → pull round trip.

mod common;

use berth_registry::manifest::OCI_MANIFEST;
use berth_registry::{ecr, AddFile, Base, BuildOptions, Digest, ImageConfig};
use common::{manifest_for, serve};
use serde_json::{json, Value};

#[tokio::test]
async fn base_endpoint_answers_empty_json() {
    let s = serve().await;
    let response = s
        .client
        .get(format!("{}/v2/", s.base))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(
        response.headers()["Docker-Distribution-API-Version"],
        "registry/2.0"
    );
    assert_eq!(response.text().await.unwrap(), "{}");
}

#[tokio::test]
async fn monolithic_and_chunked_uploads() {
    let s = serve().await;
    assert_eq!(s.push_blob("team/app", b"monolithic").await, 201);
    let d = Digest::of(b"monolithic");
    let head = s
        .client
        .head(format!("{}/v2/team/app/blobs/{d}", s.base))
        .send()
        .await
        .unwrap();
    assert_eq!(head.status(), 200);
    assert_eq!(head.headers()["Content-Length"], "10");
    assert_eq!(head.headers()["Docker-Content-Digest"], d.to_string());

    let start = s
        .client
        .post(format!("{}/v2/team/app/blobs/uploads/", s.base))
        .send()
        .await
        .unwrap();
    assert_eq!(start.status(), 202);
    let location = start.headers()["Location"].to_str().unwrap().to_string();
    let chunk = |range: &str, body: &'static [u8]| {
        s.client
            .patch(format!("{}{location}", s.base))
            .header("Content-Range", range.to_string())
            .header("Content-Type", "application/octet-stream")
            .body(body)
            .send()
    };
    let first = chunk("0-5", b"chunk-").await.unwrap();
    assert_eq!(first.status(), 202);
    assert_eq!(first.headers()["Range"], "0-5");
    let wrong = chunk("0-2", b"bad").await.unwrap();
    assert_eq!(
        wrong.status(),
        416,
        "a chunk must start where the upload ends"
    );
    assert_eq!(chunk("6-11", b"ed-one").await.unwrap().status(), 202);
    let whole = Digest::of(b"chunk-ed-one");
    let done = s
        .client
        .put(format!("{}{location}?digest={whole}", s.base))
        .send()
        .await
        .unwrap();
    assert_eq!(done.status(), 201);
    let got = s
        .client
        .get(format!("{}/v2/team/app/blobs/{whole}", s.base))
        .send()
        .await
        .unwrap();
    assert_eq!(got.bytes().await.unwrap().as_ref(), b"chunk-ed-one");
}

#[tokio::test]
async fn corrupted_blob_is_rejected_and_not_stored() {
    let s = serve().await;
    let claimed = Digest::of(b"what the client meant");
    let url = format!("{}/v2/app/blobs/uploads/?digest={claimed}", s.base);
    let response = s
        .client
        .post(url)
        .body("what arrived")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 400);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["errors"][0]["code"], "DIGEST_INVALID");
    assert!(body["errors"][0]["message"]
        .as_str()
        .unwrap()
        .contains(&claimed.to_string()));
    for d in [claimed, Digest::of(b"what arrived")] {
        let head = s
            .client
            .head(format!("{}/v2/app/blobs/{d}", s.base))
            .send()
            .await
            .unwrap();
        assert_eq!(head.status(), 404);
    }
    let bad = s
        .client
        .post(format!(
            "{}/v2/app/blobs/uploads/?digest=sha256:1234",
            s.base
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status(), 400);
}

#[tokio::test]
async fn manifests_by_tag_and_digest_with_missing_blob_rejected() {
    let s = serve().await;
    let missing = manifest_for(b"config", b"never pushed");
    assert_eq!(s.push_blob("app", b"config").await, 201);
    let (status, body) = s.put_manifest("app", "v1", &missing).await;
    assert_eq!(status, 400);
    assert!(body.contains("MANIFEST_BLOB_UNKNOWN"), "{body}");

    let (status, _) = s.push_image("team/app", "v1", "one").await;
    assert_eq!(status, 201);
    let by_tag = s
        .client
        .get(format!("{}/v2/team/app/manifests/v1", s.base))
        .send()
        .await
        .unwrap();
    assert_eq!(by_tag.headers()["Content-Type"], OCI_MANIFEST);
    let digest = by_tag.headers()["Docker-Content-Digest"]
        .to_str()
        .unwrap()
        .to_string();
    let bytes = by_tag.bytes().await.unwrap();
    assert_eq!(Digest::of(&bytes).to_string(), digest);
    let head = s
        .client
        .head(format!("{}/v2/team/app/manifests/{digest}", s.base))
        .send()
        .await
        .unwrap();
    assert_eq!(head.status(), 200);
    assert_eq!(head.headers()["Content-Length"], bytes.len().to_string());
    let (status, body) = s
        .put_manifest("team/app", &Digest::of(b"other").to_string(), &bytes)
        .await;
    assert_eq!((status, body.contains("DIGEST_INVALID")), (400, true));

    let delete = s
        .client
        .delete(format!("{}/v2/team/app/manifests/{digest}", s.base))
        .send()
        .await
        .unwrap();
    assert_eq!(delete.status(), 202);
    let gone = s
        .client
        .get(format!("{}/v2/team/app/manifests/v1", s.base))
        .send()
        .await
        .unwrap();
    assert_eq!(gone.status(), 404);
    let unknown = s
        .client
        .get(format!("{}/v2/nope/manifests/v1", s.base))
        .send()
        .await
        .unwrap();
    assert_eq!(
        unknown.json::<Value>().await.unwrap()["errors"][0]["code"],
        "NAME_UNKNOWN"
    );
}

#[tokio::test]
async fn immutable_tag_overwrite_is_rejected() {
    let s = serve().await;
    ecr::call(
        &s.registry,
        "CreateRepository",
        json!({"repositoryName": "app", "imageTagMutability": "IMMUTABLE"}),
    )
    .unwrap();
    assert_eq!(s.push_image("app", "v1", "one").await.0, 201);
    assert_eq!(
        s.push_image("app", "v1", "one").await.0,
        201,
        "the same image may be pushed again"
    );
    let (status, body) = s.push_image("app", "v1", "two").await;
    assert_eq!(status, 400);
    assert!(
        body.contains("TAG_INVALID") && body.contains("immutable"),
        "{body}"
    );
}

#[tokio::test]
async fn lifecycle_keeps_last_three_and_gc_frees_the_rest() {
    let s = serve().await;
    for i in 0..5 {
        assert_eq!(
            s.push_image("app", &format!("v{i}"), &format!("image {i}"))
                .await
                .0,
            201
        );
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
    let policy = r#"{"rules":[{"rulePriority":1,"description":"keep 3","selection":{"tagStatus":"any","countType":"imageCountMoreThan","countNumber":3},"action":{"type":"expire"}}]}"#;
    ecr::call(
        &s.registry,
        "PutLifecyclePolicy",
        json!({"repositoryName": "app", "lifecyclePolicyText": policy}),
    )
    .unwrap();
    let registry = s.registry.clone();
    let expired = tokio::task::spawn_blocking(move || registry.apply_lifecycle("app"))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(expired.len(), 2);
    let tags: Value = s
        .client
        .get(format!("{}/v2/app/tags/list", s.base))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(tags["tags"], json!(["v2", "v3", "v4"]));
    for i in 0..5 {
        let layer = Digest::of(format!("layer of image {i}").as_bytes());
        let status = s
            .client
            .head(format!("{}/v2/app/blobs/{layer}", s.base))
            .send()
            .await
            .unwrap()
            .status();
        assert_eq!(status, if i < 2 { 404 } else { 200 }, "layer of image {i}");
    }
}

#[tokio::test]
async fn cross_repository_mount() {
    let s = serve().await;
    assert_eq!(s.push_blob("source/app", b"shared layer").await, 201);
    let d = Digest::of(b"shared layer");
    let mount = s
        .client
        .post(format!(
            "{}/v2/other/app/blobs/uploads/?mount={d}&from=source/app",
            s.base
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(mount.status(), 201);
    assert_eq!(
        mount.headers()["Location"],
        format!("/v2/other/app/blobs/{d}")
    );
    let absent = Digest::of(b"not here");
    let fallback = s
        .client
        .post(format!(
            "{}/v2/other/app/blobs/uploads/?mount={absent}&from=source/app",
            s.base
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(
        fallback.status(),
        202,
        "an unmountable blob starts an upload"
    );
}

#[tokio::test]
async fn tags_list_paginates() {
    let s = serve().await;
    for t in ["c", "a", "d", "b"] {
        assert_eq!(s.push_image("team/app", t, "same").await.0, 201);
    }
    let page = s
        .client
        .get(format!("{}/v2/team/app/tags/list?n=2", s.base))
        .send()
        .await
        .unwrap();
    let link = page.headers()["Link"].to_str().unwrap().to_string();
    assert_eq!(link, "</v2/team/app/tags/list?n=2&last=b>; rel=\"next\"");
    let body: Value = page.json().await.unwrap();
    assert_eq!(body, json!({"name": "team/app", "tags": ["a", "b"]}));
    let next: Value = s
        .client
        .get(format!("{}/v2/team/app/tags/list?n=2&last=b", s.base))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(next["tags"], json!(["c", "d"]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn build_push_pull_round_trip() {
    let s = serve().await;
    let src = tempfile::tempdir().unwrap();
    let root = src.path().join("rootfs");
    std::fs::create_dir_all(root.join("bin")).unwrap();
    std::fs::write(root.join("bin/tool"), b"#!/bin/sh\necho hi\n").unwrap();
    std::fs::write(src.path().join("app"), vec![7u8; 300_000]).unwrap();
    let opts = BuildOptions {
        base: Base::Dir(root),
        add: vec![AddFile::parse(&format!(
            "{}:/usr/local/bin/app",
            src.path().join("app").display()
        ))
        .unwrap()],
        config: ImageConfig {
            entrypoint: Some(vec!["/usr/local/bin/app".into()]),
            cmd: Some(vec!["demo-app".into()]),
            ..ImageConfig::default()
        },
        push: Some(format!("{}/team/demo:v1", s.addr)),
        layout: None,
    };
    let built = tokio::task::spawn_blocking({
        let opts = opts.clone();
        move || berth_registry::build_image(opts)
    })
    .await
    .unwrap()
    .unwrap();
    assert_eq!(
        built.pushed,
        Some(format!("{}/team/demo@{}", s.addr, built.manifest_digest))
    );
    // A second push skips the blobs the registry has and changes nothing.
    let again = tokio::task::spawn_blocking(move || berth_registry::build_image(opts))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(again.manifest_digest, built.manifest_digest);

    let dest = tempfile::tempdir().unwrap();
    let pulled = berth_registry::pull(&format!("{}/team/demo:v1", s.addr), dest.path())
        .await
        .unwrap();
    assert_eq!(pulled.manifest_digest, built.manifest_digest);
    assert_eq!(pulled.config["config"]["Cmd"], json!(["demo-app"]));
    assert_eq!(pulled.layers.len(), 2);
    for layer in &pulled.layers {
        let bytes = std::fs::read(&layer.path).unwrap();
        assert_eq!(Digest::of(&bytes), layer.digest);
    }
    let by_digest = berth_registry::pull(&built.pushed.clone().unwrap(), dest.path())
        .await
        .unwrap();
    assert_eq!(by_digest.layers.len(), 2);
    let missing = berth_registry::pull(&format!("{}/team/demo:nope", s.addr), dest.path()).await;
    assert!(missing.is_err());
}
