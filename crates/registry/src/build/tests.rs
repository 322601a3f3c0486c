//! Tests of image building: determinism, layer contents, config, and argument parsing.

use super::*;

fn build_into(base: Base, add: Vec<AddFile>, layout: &Path) -> BuiltImage {
    build_image(BuildOptions {
        base,
        add,
        config: ImageConfig {
            entrypoint: Some(vec!["/bin/app".into()]),
            cmd: Some(vec!["serve".into()]),
            env: vec!["MODE=test".into()],
            exposed_ports: vec!["8080".into()],
            ..ImageConfig::default()
        },
        push: None,
        layout: Some(layout.to_path_buf()),
    })
    .unwrap()
}

#[test]
fn builds_are_deterministic_and_complete() {
    let src = tempfile::tempdir().unwrap();
    let root = src.path().join("rootfs");
    fs::create_dir_all(root.join("bin")).unwrap();
    fs::write(root.join("bin/busybox"), b"#!fake").unwrap();
    std::os::unix::fs::symlink("busybox", root.join("bin/sh")).unwrap();
    fs::write(src.path().join("app"), b"app binary").unwrap();
    let add = vec![AddFile::parse(&format!(
        "{}:/usr/local/bin/app",
        src.path().join("app").display()
    ))
    .unwrap()];
    let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let first = build_into(Base::Dir(root.clone()), add.clone(), a.path());
    // Later mtimes must not change the image.
    std::thread::sleep(std::time::Duration::from_millis(20));
    fs::write(src.path().join("app"), b"app binary").unwrap();
    let second = build_into(Base::Dir(root), add, b.path());
    assert_eq!(first.manifest_digest, second.manifest_digest);
    assert_eq!(first.layers.len(), 2);

    let layer = a
        .path()
        .join("blobs/sha256")
        .join(first.layers[1].digest.hex());
    let mut archive =
        tar::Archive::new(flate2::read::GzDecoder::new(fs::File::open(layer).unwrap()));
    let names: Vec<(String, u64, u64)> = archive
        .entries()
        .unwrap()
        .map(|e| {
            let e = e.unwrap();
            (
                e.path().unwrap().display().to_string(),
                e.header().mtime().unwrap(),
                e.header().uid().unwrap(),
            )
        })
        .collect();
    let paths: Vec<&str> = names.iter().map(|(p, _, _)| p.as_str()).collect();
    assert_eq!(
        paths,
        vec!["usr/", "usr/local/", "usr/local/bin/", "usr/local/bin/app"]
    );
    assert!(names.iter().all(|(_, mtime, uid)| *mtime == 0 && *uid == 0));

    let config: serde_json::Value = serde_json::from_slice(
        &fs::read(
            a.path()
                .join("blobs/sha256")
                .join(first.config_digest.hex()),
        )
        .unwrap(),
    )
    .unwrap();
    assert_eq!(
        config["config"]["Entrypoint"],
        serde_json::json!(["/bin/app"])
    );
    assert_eq!(
        config["config"]["ExposedPorts"],
        serde_json::json!({"8080/tcp": {}})
    );
    assert!(config["config"]["Env"][0]
        .as_str()
        .unwrap()
        .starts_with("PATH="));
    assert_eq!(config["rootfs"]["diff_ids"].as_array().unwrap().len(), 2);
    let index: serde_json::Value =
        serde_json::from_slice(&fs::read(a.path().join("index.json")).unwrap()).unwrap();
    assert_eq!(
        index["manifests"][0]["digest"],
        first.manifest_digest.to_string()
    );
}

#[test]
fn tarball_base_keeps_gzip_and_compresses_plain_tar() {
    let src = tempfile::tempdir().unwrap();
    let plain = src.path().join("rootfs.tar");
    {
        let mut builder = tar::Builder::new(fs::File::create(&plain).unwrap());
        let mut h = tar_header(tar::EntryType::Regular, 0o644, 2);
        builder.append_data(&mut h, "hello", &b"hi"[..]).unwrap();
        builder.finish().unwrap();
    }
    let out = tempfile::tempdir().unwrap();
    let built = build_into(Base::Tarball(plain.clone()), vec![], out.path());
    let blob = fs::read(
        out.path()
            .join("blobs/sha256")
            .join(built.layers[0].digest.hex()),
    )
    .unwrap();
    assert_eq!(&blob[..2], &[0x1f, 0x8b]);
    let gz = src.path().join("rootfs.tar.gz");
    fs::write(&gz, &blob).unwrap();
    let out2 = tempfile::tempdir().unwrap();
    let built2 = build_into(Base::Tarball(gz), vec![], out2.path());
    assert_eq!(
        built2.layers[0].digest, built.layers[0].digest,
        "a gzip base is used as it is"
    );
    let missing = build_image(BuildOptions {
        base: Base::Tarball(src.path().join("nope.tar")),
        add: vec![],
        config: ImageConfig::default(),
        push: None,
        layout: None,
    });
    assert!(missing.is_err());
}

#[test]
fn parses_arguments() {
    assert_eq!(
        AddFile::parse("target/debug/berth:/usr/local/bin/berth").unwrap(),
        AddFile {
            src: "target/debug/berth".into(),
            dest: "/usr/local/bin/berth".into()
        }
    );
    assert!(AddFile::parse("berth").is_err());
    assert!(AddFile::parse("berth:relative").is_err());
    assert_eq!(Base::parse("scratch"), Base::Scratch);
    assert_eq!(Base::parse("/"), Base::Dir("/".into()));
    assert_eq!(Base::parse("x.tar"), Base::Tarball("x.tar".into()));
}
