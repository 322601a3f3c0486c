//! Unit tests of layer unpacking: whiteouts, opaque directories, digests, hostile entries, and the
//! copy and overlay root filesystems built from the layers.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use super::*;
use std::io::Write;

enum E<'a> {
    Dir(&'a str),
    File(&'a str, &'a str),
    Link(&'a str, &'a str),
}

fn layer(entries: &[E]) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    for e in entries {
        let mut h = tar::Header::new_gnu();
        h.set_mtime(0);
        h.set_uid(0);
        h.set_gid(0);
        match e {
            E::Dir(p) => {
                h.set_entry_type(tar::EntryType::Directory);
                h.set_mode(0o755);
                h.set_size(0);
                b.append_data(&mut h, p, io::empty()).unwrap();
            }
            E::File(p, text) => {
                h.set_entry_type(tar::EntryType::Regular);
                h.set_mode(0o644);
                h.set_size(text.len() as u64);
                b.append_data(&mut h, p, text.as_bytes()).unwrap();
            }
            E::Link(p, to) => {
                h.set_entry_type(tar::EntryType::Symlink);
                h.set_mode(0o777);
                h.set_size(0);
                b.append_link(&mut h, p, to).unwrap();
            }
        }
    }
    b.into_inner().unwrap()
}

fn base() -> Vec<u8> {
    layer(&[
        E::Dir("a/"),
        E::File("a/x", "x1"),
        E::File("a/y", "y1"),
        E::Dir("b/"),
        E::File("b/z", "z1"),
        E::Dir("b/sub/"),
        E::File("b/sub/deep", "d1"),
        E::File("c", "c1"),
        E::Link("l", "c"),
    ])
}

fn top() -> Vec<u8> {
    layer(&[
        E::File("a/.wh.x", ""),
        E::File("b/.wh..wh..opq", ""),
        E::File("b/new", "n2"),
        E::File("c", "c2"),
        E::File(".wh.l", ""),
        E::File("e/f", "f2"),
    ])
}

fn tree(root: &Path) -> Vec<String> {
    let mut out = Vec::new();
    fn walk(root: &Path, dir: &Path, out: &mut Vec<String>) {
        let mut children: Vec<_> = std::fs::read_dir(dir).unwrap().flatten().collect();
        children.sort_by_key(|e| e.file_name());
        for c in children {
            let p = c.path();
            let rel = p.strip_prefix(root).unwrap().display().to_string();
            let m = std::fs::symlink_metadata(&p).unwrap();
            if m.is_dir() {
                out.push(format!("{rel}/"));
                walk(root, &p, out);
            } else if m.file_type().is_symlink() {
                out.push(format!(
                    "{rel} -> {}",
                    std::fs::read_link(&p).unwrap().display()
                ));
            } else {
                out.push(format!(
                    "{rel} = {}",
                    std::fs::read_to_string(&p).unwrap_or_default()
                ));
            }
        }
    }
    walk(root, root, &mut out);
    out
}

const MERGED: [&str; 9] = [
    "a/",
    "a/y = y1",
    "b/",
    "b/new = n2",
    "c = c2",
    "e/",
    "e/f = f2",
    "",
    "",
];

fn expected_merged() -> Vec<String> {
    MERGED
        .iter()
        .filter(|s| !s.is_empty())
        .map(|s| s.to_string())
        .collect()
}

fn root() -> bool {
    nix::unistd::geteuid().is_root()
}

#[test]
fn whiteouts_become_overlay_marks_and_the_copy_applies_them() {
    if !root() {
        eprintln!("SKIPPED: whiteout test needs root (mknod, trusted xattrs)");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let (l1, l2) = (dir.path().join("l1"), dir.path().join("l2"));
    unpack_layer(&base()[..], &l1).unwrap();
    unpack_layer(&top()[..], &l2).unwrap();
    // In the upper layer, `.wh.x` is a 0/0 character device named x; `.wh..wh..opq` is an xattr.
    let wh = std::fs::symlink_metadata(l2.join("a/x")).unwrap();
    assert!(is_whiteout(&wh), "a/x is a whiteout device");
    assert!(!l2.join("a/.wh.x").exists());
    assert!(is_whiteout(
        &std::fs::symlink_metadata(l2.join("l")).unwrap()
    ));
    assert_eq!(
        xattr::get(l2.join("b"), OPAQUE_XATTR).unwrap().as_deref(),
        Some(&b"y"[..])
    );
    assert!(!l2.join("b/.wh..wh..opq").exists());

    let merged = dir.path().join("merged");
    std::fs::create_dir(&merged).unwrap();
    apply_layer_copy(&l1, &merged).unwrap();
    apply_layer_copy(&l2, &merged).unwrap();
    assert_eq!(tree(&merged), expected_merged());
}

#[test]
fn overlay_rootfs_shows_the_same_tree_and_writes_go_to_the_upper_dir() {
    if !root() {
        eprintln!("SKIPPED: overlay test needs root");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let (l1, l2) = (dir.path().join("l1"), dir.path().join("l2"));
    unpack_layer(&base()[..], &l1).unwrap();
    unpack_layer(&top()[..], &l2).unwrap();
    let image = PreparedImage {
        reference: "r".into(),
        manifest_digest: "d".into(),
        config: serde_json::json!({}),
        layers: vec![l1.clone(), l2.clone()],
    };
    for overlay in [true, false] {
        if overlay && !overlay_supported(dir.path()) {
            eprintln!("SKIPPED: overlay mounts do not work here");
            continue;
        }
        let bundle = dir.path().join(format!("bundle-{overlay}"));
        let mode = prepare_rootfs(&image, &bundle, overlay).unwrap();
        assert_eq!(mode == RootfsMode::Overlay, overlay);
        let rootfs = bundle.join("rootfs");
        assert_eq!(tree(&rootfs), expected_merged(), "overlay={overlay}");
        std::fs::write(rootfs.join("a/written"), "w").unwrap();
        std::fs::remove_file(rootfs.join("a/y")).unwrap();
        // The shared layers are untouched.
        assert_eq!(std::fs::read_to_string(l1.join("a/y")).unwrap(), "y1");
        assert!(!l1.join("a/written").exists() && !l2.join("a/written").exists());
        if overlay {
            assert!(is_mount_point(&rootfs));
            assert!(bundle.join("upper/a/written").exists());
            release_rootfs(&bundle);
            assert!(!is_mount_point(&rootfs));
        }
    }
}

#[test]
fn gzip_layers_are_checked_against_their_diff_id() {
    if !root() {
        eprintln!("SKIPPED: needs root (ownership)");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let plain = base();
    let diff_id = Digest::of(&plain);
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(&plain).unwrap();
    let blob = dir.path().join("blob");
    std::fs::write(&blob, gz.finish().unwrap()).unwrap();
    unpack_layer_file(&blob, &dir.path().join("ok"), Some(&diff_id)).unwrap();
    assert_eq!(
        std::fs::read_to_string(dir.path().join("ok/a/x")).unwrap(),
        "x1"
    );
    // The same blob under the wrong diff id is refused.
    let wrong = Digest::of(b"other");
    let err = unpack_layer_file(&blob, &dir.path().join("bad"), Some(&wrong)).unwrap_err();
    assert!(err.to_string().contains("diff id mismatch"), "{err}");
    // A plain tar works too; zstd is refused with a clear message.
    let tar_blob = dir.path().join("tar");
    std::fs::write(&tar_blob, &plain).unwrap();
    unpack_layer_file(&tar_blob, &dir.path().join("plain"), Some(&diff_id)).unwrap();
    let zstd = dir.path().join("zstd");
    std::fs::write(&zstd, [0x28, 0xb5, 0x2f, 0xfd, 0, 0]).unwrap();
    let err = unpack_layer_file(&zstd, &dir.path().join("z"), None).unwrap_err();
    assert!(err.to_string().contains("zstd"), "{err}");
}

#[test]
fn entries_escaping_the_root_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let mut h = tar::Header::new_gnu();
    let name = b"../escaped";
    h.as_gnu_mut().unwrap().name[..name.len()].copy_from_slice(name);
    h.set_entry_type(tar::EntryType::Regular);
    h.set_mode(0o644);
    h.set_size(1);
    h.set_cksum();
    let mut bytes = h.as_bytes().to_vec();
    bytes.extend_from_slice(b"x");
    bytes.resize(512 * 2, 0);
    bytes.extend_from_slice(&[0u8; 1024]);
    let dest = dir.path().join("layer");
    let err = unpack_layer(&bytes[..], &dest).unwrap_err();
    assert!(err.to_string().contains("escapes the root"), "{err}");
    assert!(!dir.path().join("escaped").exists());
}
