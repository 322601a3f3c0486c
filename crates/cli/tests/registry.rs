//! End-to-end tests of the image registry on the server's address: `berth image build` pushes,
//! the real AWS CLI manages repositories through the ECR API, immutable tags hold.

mod common;

use common::*;
use serde_json::Value;

fn aws(c: &Cluster, args: &[&str]) -> Result<Value, String> {
    c.aws(args)
}

fn build(c: &Cluster, content: &str, tag: &str) -> std::process::Output {
    let file = c.state_dir().join(format!("payload-{}", content.len()));
    std::fs::write(&file, content).unwrap();
    c.cli(&[
        "image",
        "build",
        "--from",
        "scratch",
        "--add",
        &format!("{}:/payload.txt", file.display()),
        "--cmd",
        "/payload.txt",
        "--tag",
        &format!("{}/{tag}", c.addr),
    ])
}

#[test]
fn images_pushed_by_berth_are_managed_through_the_ecr_api() {
    let c = Cluster::start(false);
    let out = build(&c, "one", "app:v1");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("pushed"));
    let repos = aws(&c, &["ecr", "describe-repositories"]).unwrap();
    let repo = &repos["repositories"][0];
    assert_eq!(repo["repositoryName"], "app");
    assert_eq!(repo["repositoryUri"], format!("{}/app", c.addr));
    let images = aws(&c, &["ecr", "describe-images", "--repository-name", "app"]).unwrap();
    assert_eq!(images["imageDetails"][0]["imageTags"][0], "v1");

    // IMMUTABLE: the same tag cannot point at other content.
    aws(
        &c,
        &[
            "ecr",
            "create-repository",
            "--repository-name",
            "locked",
            "--image-tag-mutability",
            "IMMUTABLE",
        ],
    )
    .unwrap();
    assert!(build(&c, "first", "locked:v1").status.success());
    let again = build(&c, "second!", "locked:v1");
    assert!(
        !again.status.success(),
        "overwriting an immutable tag must fail"
    );
    let err = String::from_utf8_lossy(&again.stderr);
    assert!(err.to_lowercase().contains("tag"), "{err}");

    // Deleting an image by tag.
    let del = aws(
        &c,
        &[
            "ecr",
            "batch-delete-image",
            "--repository-name",
            "app",
            "--image-ids",
            "imageTag=v1",
        ],
    )
    .unwrap();
    assert_eq!(del["imageIds"].as_array().unwrap().len(), 1);
    let images = aws(&c, &["ecr", "list-images", "--repository-name", "app"]).unwrap();
    assert_eq!(images["imageIds"].as_array().unwrap().len(), 0);
    // Errors name what is missing.
    let err = aws(&c, &["ecr", "describe-images", "--repository-name", "nope"]).unwrap_err();
    assert!(err.contains("RepositoryNotFoundException"), "{err}");
}
