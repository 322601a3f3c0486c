//! The registry against the real `skopeo` client: an OCI layout made by `build_image` is copied
//! into the registry and back out, byte for byte, and inspected. Requires skopeo (the CI script
//! installs it: `apt-get install -y skopeo`).

mod common;

use berth_registry::{AddFile, Base, BuildOptions, ImageConfig};
use serde_json::Value;
use std::path::Path;

async fn skopeo(args: &[&str]) -> String {
    let output = tokio::process::Command::new("skopeo")
        .arg("--insecure-policy")
        .args(args)
        .output()
        .await
        .unwrap_or_else(|e| {
            panic!("skopeo is required for this test and could not be run ({e}); install it with `apt-get install -y skopeo`")
        });
    assert!(
        output.status.success(),
        "skopeo {args:?} failed: {}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

#[allow(clippy::unwrap_used)] // a test helper
fn blobs(layout: &Path) -> Vec<(String, Vec<u8>)> {
    let mut out: Vec<(String, Vec<u8>)> = std::fs::read_dir(layout.join("blobs/sha256"))
        .unwrap()
        .map(|e| {
            let e = e.unwrap();
            (
                e.file_name().to_string_lossy().into_owned(),
                std::fs::read(e.path()).unwrap(),
            )
        })
        .collect();
    out.sort();
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn skopeo_copies_in_and_out_byte_for_byte() {
    let s = common::serve().await;
    let work = tempfile::tempdir().unwrap();
    let root = work.path().join("rootfs");
    std::fs::create_dir_all(root.join("etc")).unwrap();
    std::fs::write(root.join("etc/motd"), b"hello from berth\n").unwrap();
    std::fs::write(work.path().join("app"), b"#!/bin/sh\necho app\n").unwrap();
    let layout = work.path().join("layout");
    let built = tokio::task::spawn_blocking({
        let (root, layout, app) = (root.clone(), layout.clone(), work.path().join("app"));
        move || {
            berth_registry::build_image(BuildOptions {
                base: Base::Dir(root),
                add: vec![AddFile {
                    src: app,
                    dest: "/usr/local/bin/app".into(),
                }],
                config: ImageConfig {
                    cmd: Some(vec!["/usr/local/bin/app".into()]),
                    ..ImageConfig::default()
                },
                push: None,
                layout: Some(layout),
            })
        }
    })
    .await
    .unwrap()
    .unwrap();

    let remote = format!("docker://{}/skopeo/app:v1", s.addr);
    let src = format!("oci:{}:latest", layout.display());
    skopeo(&["copy", "--dest-tls-verify=false", &src, &remote]).await;
    assert_eq!(s.registry.tags("skopeo/app").unwrap(), vec!["v1"]);

    let out = work.path().join("out");
    let dest = format!("oci:{}:v1", out.display());
    skopeo(&["copy", "--src-tls-verify=false", &remote, &dest]).await;
    let index: Value =
        serde_json::from_slice(&std::fs::read(out.join("index.json")).unwrap()).unwrap();
    assert_eq!(
        index["manifests"][0]["digest"],
        built.manifest_digest.to_string()
    );
    assert_eq!(
        blobs(&out),
        blobs(&layout),
        "manifest, config and layers come back byte for byte"
    );

    let raw = skopeo(&["inspect", "--raw", "--tls-verify=false", &remote]).await;
    assert_eq!(raw.as_bytes(), built.manifest.as_slice());
    let inspect: Value =
        serde_json::from_str(&skopeo(&["inspect", "--tls-verify=false", &remote]).await).unwrap();
    assert_eq!(inspect["Digest"], built.manifest_digest.to_string());
    assert_eq!(inspect["Layers"].as_array().unwrap().len(), 2);
    assert_eq!(inspect["Os"], "linux");
}
