//! Property tests of the task-definition parser: arbitrary JSON (mostly made of the definition's
//! own member names) is decoded and validated without a panic, and every refusal names a field.
//! `PROPTEST_CASES` sets the number of cases (256 by default).

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failed test

use berth_model::ecs::TaskDefinition;
use proptest::prelude::*;
use serde_json::Value;

const KEYS: &[&str] = &[
    "family",
    "containerDefinitions",
    "name",
    "image",
    "command",
    "entryPoint",
    "environment",
    "value",
    "portMappings",
    "containerPort",
    "hostPort",
    "protocol",
    "essential",
    "healthCheck",
    "interval",
    "timeout",
    "retries",
    "startPeriod",
    "stopTimeout",
    "cpu",
    "memory",
    "memoryReservation",
    "workingDirectory",
    "dependsOn",
    "containerName",
    "condition",
    "secrets",
    "valueFrom",
    "user",
    "readonlyRootFilesystem",
    "linuxParameters",
    "capabilities",
    "add",
    "drop",
    "tmpfs",
    "containerPath",
    "size",
    "mountOptions",
    "sharedMemorySize",
    "maxSwap",
    "initProcessEnabled",
    "dockerLabels",
    "berth.pids-limit",
    "ulimits",
    "softLimit",
    "hardLimit",
    "networkMode",
];

fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        any::<f64>()
            .prop_map(|f| serde_json::Number::from_f64(f).map_or(Value::Null, Value::Number)),
        "\\PC{0,12}".prop_map(Value::String),
        prop::sample::select(&["ALL", "NET_ADMIN", "CMD", "-1", "/tmp", "awsvpc", "START"][..])
            .prop_map(|s| Value::String(s.to_string())),
    ];
    leaf.prop_recursive(5, 64, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..5).prop_map(Value::Array),
            prop::collection::vec(
                (
                    prop_oneof![
                        4 => prop::sample::select(KEYS).prop_map(str::to_string),
                        1 => "\\PC{0,8}",
                    ],
                    inner
                ),
                0..7
            )
            .prop_map(|kv| Value::Object(kv.into_iter().collect())),
        ]
    })
}

proptest! {
    #[test]
    fn arbitrary_definitions_decode_and_validate_without_panicking(v in json_value()) {
        if let Ok(td) = serde_json::from_value::<TaskDefinition>(v.clone()) {
            let errors = td.validate("");
            for e in &errors.0 {
                prop_assert!(!e.path.is_empty() && !e.message.is_empty(), "{e:?}");
            }
            // What decodes, encodes back and decodes to the same definition.
            let again: TaskDefinition = serde_json::from_value(serde_json::to_value(&td).unwrap()).unwrap();
            prop_assert_eq!(again, td);
        }
    }

    #[test]
    fn arbitrary_containers_validate_without_panicking(containers in prop::collection::vec(json_value(), 1..4), family in "\\PC{0,20}") {
        let v = serde_json::json!({"family": family, "containerDefinitions": containers});
        if let Ok(td) = serde_json::from_value::<TaskDefinition>(v) {
            let _ = td.validate("taskDefinition");
            for c in &td.container_definitions {
                let _ = berth_model::linux::linux_settings(c);
            }
        }
    }

    #[test]
    fn arbitrary_text_never_panics(text in "\\PC{0,200}") {
        let _ = serde_json::from_str::<TaskDefinition>(&text);
    }
}
