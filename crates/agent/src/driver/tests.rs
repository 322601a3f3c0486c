//! Unit tests of executable and argv resolution.

use super::*;

fn def(image: &str, entry_point: &[&str], command: &[&str]) -> ContainerDefinition {
    ContainerDefinition {
        name: "c".into(),
        image: image.into(),
        entry_point: entry_point.iter().map(|s| s.to_string()).collect(),
        command: command.iter().map(|s| s.to_string()).collect(),
        ..Default::default()
    }
}

const BERTH: &str = "/opt/berth/bin/berth";

fn resolve(image: &str, ep: &[&str], cmd: &[&str]) -> Result<ProcessCommand, StartError> {
    process_command(
        &def(image, ep, cmd),
        Path::new(BERTH),
        "/nonexistent:/usr/bin:/bin",
        None,
    )
}

#[test]
fn absolute_image_exe_with_command() {
    let c = resolve("process:///bin/sh", &[], &["-c", "true"]).unwrap();
    assert_eq!(c.exe, PathBuf::from("/bin/sh"));
    assert_eq!(c.argv, vec!["/bin/sh", "-c", "true"]);
}

#[test]
fn names_are_looked_up_on_path_and_berth_is_the_berth_binary() {
    let c = resolve("process://sh", &[], &["-c", "x"]).unwrap();
    assert!(c.exe.ends_with("sh") && c.exe.is_absolute(), "{c:?}");
    assert_eq!(c.argv[0], "sh");
    let c = resolve("process://berth", &[], &["demo-app"]).unwrap();
    assert_eq!(c.exe, PathBuf::from(BERTH));
    assert_eq!(c.argv, vec!["berth", "demo-app"]);
}

#[test]
fn entry_point_replaces_the_image_exe() {
    let c = resolve("process://berth", &["/bin/sh", "-c"], &["echo hi"]).unwrap();
    assert_eq!(c.exe, PathBuf::from("/bin/sh"));
    assert_eq!(c.argv, vec!["/bin/sh", "-c", "echo hi"]);
}

#[test]
fn empty_image_exe_takes_command_zero() {
    let c = resolve("process://", &[], &["/bin/sh", "-c", "true"]).unwrap();
    assert_eq!(c.exe, PathBuf::from("/bin/sh"));
    assert_eq!(c.argv, vec!["/bin/sh", "-c", "true"]);
    let err = resolve("process://", &[], &[]).unwrap_err();
    assert!(matches!(err, StartError::CannotStart(_)), "{err}");
}

#[test]
fn missing_and_unexecutable_files_are_cannot_start_errors() {
    let err = resolve("process:///nonexistent/app", &[], &[]).unwrap_err();
    let msg = err.to_string();
    assert!(
        msg.starts_with("CannotStartContainerError: /nonexistent/app: No such file"),
        "{msg}"
    );
    let err = resolve("process://no-such-program-xyz", &[], &[]).unwrap_err();
    assert!(
        err.to_string()
            .contains("executable file not found in $PATH"),
        "{err}"
    );

    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("script");
    std::fs::write(&file, "#!/bin/sh\n").unwrap();
    let image = format!("process://{}", file.display());
    let msg = resolve(&image, &[], &[]).unwrap_err().to_string();
    assert!(msg.contains("Permission denied"), "{msg}");
    let msg = resolve(&format!("process://{}", dir.path().display()), &[], &[])
        .unwrap_err()
        .to_string();
    assert!(msg.contains("is a directory"), "{msg}");
}

#[test]
fn relative_paths_resolve_against_the_working_directory() {
    let c = process_command(
        &def("process://./sh", &[], &[]),
        Path::new(BERTH),
        "",
        Some(Path::new("/bin")),
    )
    .unwrap();
    assert_eq!(c.exe, PathBuf::from("/bin/./sh"));
    assert_eq!(c.argv, vec!["./sh"]);
}

#[test]
fn registry_images_need_another_driver() {
    let err = resolve("nginx:latest", &[], &[]).unwrap_err();
    assert_eq!(
        err.to_string(),
        "CannotPullContainerError: image nginx:latest needs the container driver (runc), which this agent does not have"
    );
}

#[test]
fn container_path_prepends_the_berth_directory() {
    assert_eq!(
        container_path(Path::new(BERTH), "/usr/bin:/bin"),
        "/opt/berth/bin:/usr/bin:/bin"
    );
    assert_eq!(container_path(Path::new(BERTH), ""), "/opt/berth/bin");
    assert_eq!(container_path(Path::new("berth"), "/bin"), "/bin");
}

#[test]
fn a_container_shares_the_host_network_only_in_host_mode() {
    use runc::network_namespace;
    use runc::spec::NetworkNamespace;
    let net = crate::network::task_names("0123abcd", std::net::Ipv4Addr::new(10, 88, 0, 2));
    let request =
        |network: Option<crate::network::TaskNetwork>, host: bool, none: bool| StartRequest {
            definition: def("registry/app:1", &[], &[]),
            dir: PathBuf::from("/nonexistent"),
            env: Vec::new(),
            task_id: "0123abcd".into(),
            task_cpu: None,
            task_memory: None,
            network,
            host_network: host,
            no_network: none,
            image: None,
        };
    assert_eq!(
        network_namespace(&request(Some(net.clone()), false, false)),
        Ok(NetworkNamespace::Join(net.netns_path()))
    );
    assert_eq!(
        network_namespace(&request(None, true, false)),
        Ok(NetworkNamespace::Host)
    );
    assert_eq!(
        network_namespace(&request(None, false, true)),
        Ok(NetworkNamespace::Empty)
    );
    // awsvpc (or bridge) without its namespace: refused, never the host's network.
    let err = network_namespace(&request(None, false, false)).unwrap_err();
    assert!(
        err.to_string()
            .contains("refusing to run it in the host's network"),
        "{err}"
    );
}
