//! Unit tests of config.json generation (a table of definitions → expected fields) and of user
//! resolution against an image's /etc/passwd and /etc/group.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use super::*;
use serde_json::{json, Value};

const PASSWD: &str = "root:x:0:0:root:/root:/bin/sh\n# comment\nwww:x:33:33:www:/var/www:/bin/false\napp:x:1000:1000::/home/app:/bin/sh\nbroken line\n";
const GROUP: &str = "root:x:0:\nwww:x:33:\nstaff:x:50:app,www\napp:x:1000:\naudio:x:29:app\n";

fn image() -> Value {
    json!({"config": {
        "Entrypoint": ["/entry"],
        "Cmd": ["serve", "--port", "80"],
        "Env": ["PATH=/image/bin", "A=image", "B=image"],
        "WorkingDir": "/srv",
        "User": "www"
    }})
}

fn def(v: Value) -> ContainerDefinition {
    serde_json::from_value(v).unwrap()
}

fn spec_json(
    definition: &ContainerDefinition,
    task_cpu: Option<u32>,
    task_memory: Option<u32>,
    netns: Option<&str>,
) -> Value {
    let env = vec![
        ("A".to_string(), "task".to_string()),
        ("PORT".to_string(), "8080".to_string()),
    ];
    let img = image();
    let (user, home) = resolve_user(&user_spec(definition, &img), PASSWD, GROUP).unwrap();
    let input = SpecInput {
        definition,
        image_config: &img,
        env: &env,
        user,
        home,
        hostname: "abcdef012345".into(),
        task_cpu,
        task_memory,
        network: match netns {
            Some("none") => NetworkNamespace::Empty,
            Some(path) => NetworkNamespace::Join(PathBuf::from(path)),
            None => NetworkNamespace::Host,
        },
        rootfs: PathBuf::from("/t/c/rootfs"),
        cgroups_path: "berth/x".into(),
        etc_files: vec![("/etc/hosts".into(), PathBuf::from("/t/c/hosts"))],
        swap_accounting: true,
        default_nofile: (1024, 4096),
    };
    serde_json::to_value(build_spec(&input).unwrap()).unwrap()
}

#[test]
fn config_json_follows_the_definition() {
    type Case = (
        &'static str,
        Value,
        Option<u32>,
        Option<u32>,
        Option<&'static str>,
        Vec<(&'static str, Value)>,
    );
    let cases: Vec<Case> = vec![
        (
            "image defaults",
            json!({"name": "c", "image": "i"}),
            None,
            None,
            Some("/var/run/netns/berth-1"),
            vec![
                ("/process/args", json!(["/entry", "serve", "--port", "80"])),
                ("/process/cwd", json!("/srv")),
                (
                    "/process/user",
                    json!({"uid": 33, "gid": 33, "additionalGids": [50]}),
                ),
                ("/process/noNewPrivileges", json!(true)),
                ("/process/terminal", json!(false)),
                ("/root", json!({"path": "/t/c/rootfs", "readonly": false})),
                ("/linux/resources/pids", json!({"limit": 1024})),
                ("/linux/seccomp/defaultAction", json!("SCMP_ACT_ALLOW")),
                ("/hostname", json!("abcdef012345")),
                ("/linux/resources/cpu", Value::Null),
                ("/linux/resources/memory", Value::Null),
                (
                    "/linux/namespaces",
                    json!([{"type": "pid"}, {"type": "ipc"}, {"type": "uts"}, {"type": "mount"}, {"type": "network", "path": "/var/run/netns/berth-1"}]),
                ),
                ("/linux/cgroupsPath", json!("berth/x")),
                (
                    "/process/rlimits",
                    json!([{"type": "RLIMIT_NOFILE", "hard": 4096, "soft": 1024}]),
                ),
            ],
        ),
        (
            "command replaces Cmd only",
            json!({"name": "c", "image": "i", "command": ["run"]}),
            None,
            None,
            None,
            vec![
                ("/process/args", json!(["/entry", "run"])),
                (
                    "/linux/namespaces",
                    json!([{"type": "pid"}, {"type": "ipc"}, {"type": "uts"}, {"type": "mount"}]),
                ),
            ],
        ),
        (
            "entryPoint drops the image's Cmd",
            json!({"name": "c", "image": "i", "entryPoint": ["sh", "-c"], "command": ["echo hi"]}),
            None,
            None,
            None,
            vec![("/process/args", json!(["sh", "-c", "echo hi"]))],
        ),
        (
            "entryPoint alone",
            json!({"name": "c", "image": "i", "entryPoint": ["/bin/true"]}),
            None,
            None,
            None,
            vec![("/process/args", json!(["/bin/true"]))],
        ),
        (
            "limits from the container",
            json!({"name": "c", "image": "i", "cpu": 256, "memory": 64, "memoryReservation": 32, "readonlyRootFilesystem": true, "workingDirectory": "/w", "user": "1000:50"}),
            Some(1024),
            Some(512),
            None,
            vec![
                (
                    "/linux/resources/cpu",
                    json!({"shares": 256, "quota": 25000, "period": 100000}),
                ),
                (
                    "/linux/resources/memory",
                    json!({"limit": 67108864, "reservation": 33554432, "swap": 67108864}),
                ),
                ("/root/readonly", json!(true)),
                ("/process/cwd", json!("/w")),
                (
                    "/process/user",
                    json!({"uid": 1000, "gid": 50, "additionalGids": [29]}),
                ),
            ],
        ),
        (
            "limits from the task",
            json!({"name": "c", "image": "i"}),
            Some(2048),
            Some(512),
            None,
            vec![
                (
                    "/linux/resources/cpu",
                    json!({"shares": 2048, "quota": 200000, "period": 100000}),
                ),
                ("/linux/resources/memory/limit", json!(536870912)),
            ],
        ),
        (
            "tiny cpu keeps the minimum shares",
            json!({"name": "c", "image": "i", "cpu": 1}),
            None,
            None,
            None,
            vec![("/linux/resources/cpu/shares", json!(2))],
        ),
        (
            "ulimits and maxSwap",
            json!({"name": "c", "image": "i", "memory": 16, "ulimits": [{"name": "nofile", "softLimit": 100, "hardLimit": 200}, {"name": "core", "softLimit": -1, "hardLimit": -1}], "linuxParameters": {"maxSwap": 16}}),
            None,
            None,
            None,
            vec![
                (
                    "/process/rlimits",
                    json!([{"type": "RLIMIT_NOFILE", "hard": 200, "soft": 100}, {"type": "RLIMIT_CORE", "hard": u64::MAX, "soft": u64::MAX}]),
                ),
                ("/linux/resources/memory/swap", json!(33554432)),
            ],
        ),
        (
            "capabilities, tmpfs, shared memory, pids limit",
            json!({"name": "c", "image": "i", "dockerLabels": {"berth.pids-limit": "64"}, "linuxParameters": {
                "capabilities": {"add": ["NET_ADMIN"], "drop": ["ALL"]},
                "tmpfs": [{"containerPath": "/cache", "size": 16, "mountOptions": ["noexec"]}],
                "sharedMemorySize": 8
            }}),
            None,
            None,
            Some("none"),
            vec![
                (
                    "/process/capabilities",
                    json!({"bounding": ["CAP_NET_ADMIN"], "effective": ["CAP_NET_ADMIN"], "permitted": ["CAP_NET_ADMIN"], "inheritable": []}),
                ),
                ("/linux/resources/pids", json!({"limit": 64})),
                ("/linux/namespaces/4", json!({"type": "network"})),
                (
                    "/mounts/3",
                    json!({"destination": "/dev/shm", "type": "tmpfs", "source": "shm", "options": ["nosuid", "noexec", "nodev", "mode=1777", "size=8192k"]}),
                ),
                (
                    "/mounts/8",
                    json!({"destination": "/cache", "type": "tmpfs", "source": "tmpfs", "options": ["nosuid", "nodev", "noexec", "size=16384k"]}),
                ),
            ],
        ),
        (
            "unlimited processes",
            json!({"name": "c", "image": "i", "dockerLabels": {"berth.pids-limit": "-1"}}),
            None,
            None,
            None,
            vec![("/linux/resources/pids", Value::Null)],
        ),
        (
            "numeric user without passwd entry",
            json!({"name": "c", "image": "i", "user": "4242"}),
            None,
            None,
            None,
            vec![("/process/user", json!({"uid": 4242, "gid": 0}))],
        ),
    ];
    for (name, d, task_cpu, task_memory, netns, expect) in cases {
        let spec = spec_json(&def(d), task_cpu, task_memory, netns);
        for (pointer, want) in expect {
            let got = spec.pointer(pointer).cloned().unwrap_or(Value::Null);
            assert_eq!(got, want, "case {name:?}, field {pointer}");
        }
    }
}

#[test]
fn environment_layers_image_then_task_and_fixed_parts() {
    let spec = spec_json(&def(json!({"name": "c", "image": "i"})), None, None, None);
    let env: Vec<&str> = spec["process"]["env"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    assert_eq!(
        env,
        vec![
            "HOSTNAME=abcdef012345",
            "PATH=/image/bin",
            "B=image",
            "A=task",
            "PORT=8080",
            "HOME=/var/www"
        ]
    );
    // Without an image PATH the default one is used.
    let bare = container_env(&json!({}), &[], "h", "/");
    assert!(bare.contains(&format!("PATH={DEFAULT_PATH}")), "{bare:?}");
    // Security defaults: Docker's capabilities without NET_RAW, runc's masked and read-only paths,
    // a writable tmpfs /tmp, the /etc files bound read-only.
    let caps = spec["process"]["capabilities"]["bounding"]
        .as_array()
        .unwrap();
    assert_eq!(caps.len(), 13);
    assert!(!caps.contains(&json!("CAP_NET_RAW")) && caps.contains(&json!("CAP_NET_BIND_SERVICE")));
    assert!(spec["linux"]["maskedPaths"]
        .as_array()
        .unwrap()
        .contains(&json!("/proc/kcore")));
    assert!(spec["linux"]["readonlyPaths"]
        .as_array()
        .unwrap()
        .contains(&json!("/proc/sys")));
    let mounts = spec["mounts"].as_array().unwrap();
    let find = |d: &str| {
        mounts
            .iter()
            .find(|m| m["destination"] == d)
            .cloned()
            .unwrap()
    };
    assert_eq!(find("/tmp")["type"], "tmpfs");
    assert_eq!(find("/proc")["type"], "proc");
    assert_eq!(find("/sys")["type"], "sysfs");
    assert_eq!(find("/dev")["type"], "tmpfs");
    assert_eq!(find("/etc/hosts")["options"], json!(["rbind", "ro"]));
}

#[test]
fn bad_definitions_are_refused_with_the_field() {
    let img = json!({"config": {}});
    let mk = |d: Value| {
        let d = def(d);
        let input = SpecInput {
            definition: &d,
            image_config: &img,
            env: &[],
            user: User::default(),
            home: "/".into(),
            hostname: "h".into(),
            task_cpu: None,
            task_memory: None,
            network: NetworkNamespace::Host,
            rootfs: PathBuf::from("/r"),
            cgroups_path: "c".into(),
            etc_files: vec![],
            swap_accounting: false,
            default_nofile: (1024, 4096),
        };
        build_spec(&input).unwrap_err()
    };
    assert_eq!(mk(json!({"name": "c", "image": "i"})), SpecError::NoCommand);
    assert_eq!(
        mk(json!({"name": "c", "image": "i", "command": ["x"], "workingDirectory": "rel"})),
        SpecError::RelativeCwd("rel".into())
    );
    let err = mk(
        json!({"name": "c", "image": "i", "command": ["x"], "ulimits": [{"name": "bogus", "softLimit": 1, "hardLimit": 1}, {"name": "nofile", "softLimit": 10, "hardLimit": 5}, {"name": "nproc"}]}),
    );
    let text = err.to_string();
    assert!(
        text.starts_with("ulimits: [0].name: expected one of"),
        "{text}"
    );
    assert!(
        text.contains("[1]: softLimit 10 exceeds hardLimit 5"),
        "{text}"
    );
    assert!(
        text.contains("[2]: expected softLimit and hardLimit integers"),
        "{text}"
    );
    let err = mk(
        json!({"name": "c", "image": "i", "command": ["x"], "linuxParameters": {"capabilities": {"add": ["GODMODE"]}}}),
    );
    assert_eq!(
        err.to_string(),
        "linuxParameters.capabilities.add[0]: expected a capability like NET_ADMIN or ALL, found \"GODMODE\""
    );
    let err = mk(json!({"name": "c", "image": "i", "command": ["x"], "ulimits": {"nofile": 1}}));
    assert!(
        err.to_string().starts_with("ulimits: expected a list"),
        "{err}"
    );
}

#[test]
fn users_resolve_by_number_name_and_group() {
    let r = |s: &str| resolve_user(s, PASSWD, GROUP);
    assert_eq!(
        r("0").unwrap(),
        (
            User {
                uid: 0,
                gid: 0,
                additional_gids: vec![]
            },
            "/root".into()
        )
    );
    assert_eq!(
        r("app").unwrap(),
        (
            User {
                uid: 1000,
                gid: 1000,
                additional_gids: vec![29, 50]
            },
            "/home/app".into()
        )
    );
    assert_eq!(
        r("1000").unwrap().0.gid,
        1000,
        "a uid listed in passwd gets its primary group"
    );
    assert_eq!(
        r("app:staff").unwrap().0,
        User {
            uid: 1000,
            gid: 50,
            additional_gids: vec![29]
        }
    );
    assert_eq!(
        r("33:7").unwrap().0,
        User {
            uid: 33,
            gid: 7,
            additional_gids: vec![50]
        }
    );
    assert_eq!(
        r("5000:5000").unwrap(),
        (
            User {
                uid: 5000,
                gid: 5000,
                additional_gids: vec![]
            },
            "/".into()
        )
    );
    // Names need the image's files.
    assert!(
        matches!(r("nobody"), Err(SpecError::User(m)) if m.contains("unable to find user nobody"))
    );
    assert!(
        matches!(r("app:nogroup"), Err(SpecError::User(m)) if m.contains("unable to find group nogroup"))
    );
    assert!(matches!(
        resolve_user("app", "", ""),
        Err(SpecError::User(_))
    ));
    assert!(matches!(r(":5"), Err(SpecError::User(_))));
    // The definition's user wins over the image's; root is the default.
    let img = image();
    assert_eq!(
        user_spec(
            &def(json!({"name": "c", "image": "i", "user": "app"})),
            &img
        ),
        "app"
    );
    assert_eq!(
        user_spec(&def(json!({"name": "c", "image": "i"})), &img),
        "www"
    );
    assert_eq!(
        user_spec(&def(json!({"name": "c", "image": "i"})), &json!({})),
        "0"
    );
}

#[test]
fn etc_files_are_read_without_following_symlinks() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("etc")).unwrap();
    std::fs::write(dir.path().join("etc/passwd"), PASSWD).unwrap();
    assert_eq!(read_etc(dir.path(), "passwd"), PASSWD);
    std::os::unix::fs::symlink("/etc/hostname", dir.path().join("etc/group")).unwrap();
    assert_eq!(
        read_etc(dir.path(), "group"),
        "",
        "a symlink could point out of the image"
    );
    assert_eq!(read_etc(dir.path(), "missing"), "");
}
