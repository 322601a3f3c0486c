//! Property tests of the stack parser with arbitrary input: bytes, YAML-ish text made of the
//! stack's own keys, deep nesting and alias bombs. It answers with a value or an error, never a
//! panic or a stack overflow. `PROPTEST_CASES` sets the number of cases (256 by default).

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failed test

use proptest::prelude::*;
use std::path::Path;

const WORDS: &[&str] = &[
    "name: ",
    "cluster: ",
    "services:",
    "web:",
    "taskDefinition:",
    "taskDefinitionFile: ../../etc/passwd",
    "desiredCount: ",
    "containerDefinitions:",
    "- name: app",
    "image: ",
    "portMappings:",
    "- containerPort: ",
    "loadBalancers:",
    "targetGroups:",
    "listeners:",
    "rules:",
    "deployment:",
    "strategy: canary",
    "scaling:",
    "ingress:",
    "- from: ",
    "ports: ",
    "&a [1]",
    "*a",
    "{",
    "}",
    "[",
    "]",
    "\"",
    "'",
    "- ",
    ": ",
    "\n",
    "\n  ",
    "\n    ",
    "\t",
    "~",
    "!!binary",
    "-1",
    "1e999",
    "18446744073709551616",
    "\u{0}",
    "é",
];

fn yamlish() -> impl Strategy<Value = String> {
    prop::collection::vec(
        prop_oneof![
            prop::sample::select(WORDS).prop_map(str::to_string),
            "[a-z0-9./-]{0,12}",
        ],
        0..60,
    )
    .prop_map(|parts| parts.concat())
}

fn parse(text: &str) {
    let dir = tempfile::tempdir().unwrap();
    let _ = berth_stack::parse(text, dir.path());
}

proptest! {
    #[test]
    fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..512)) {
        parse(&String::from_utf8_lossy(&bytes));
    }

    #[test]
    fn stack_like_text_never_panics(text in yamlish()) {
        parse(&text);
    }

    #[test]
    fn valid_stacks_with_arbitrary_values_never_panic(
        name in "[a-z0-9-]{0,10}",
        service in "\\PC{0,12}",
        count in any::<i64>(),
        image in "\\PC{0,20}",
        port in any::<i64>(),
    ) {
        let doc = serde_json::json!({
            "name": name,
            "services": {
                service: {
                    "desiredCount": count,
                    "taskDefinition": {"containerDefinitions": [{
                        "name": "app", "image": image,
                        "portMappings": [{"containerPort": port}]
                    }]}
                }
            }
        });
        parse(&doc.to_string());
    }
}

#[test]
fn deep_nesting_is_an_error_not_a_stack_overflow() {
    for open in ["[", "{a: ", "- "] {
        let text = open.repeat(100_000);
        let err = berth_stack::parse(&text, Path::new(".")).unwrap_err();
        assert!(
            matches!(err, berth_stack::StackError::Syntax(_)),
            "{open}: {err}"
        );
    }
    let json = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
    assert!(berth_stack::parse(&json, Path::new(".")).is_err());
}

#[test]
fn alias_bombs_are_refused() {
    // "Billion laughs": each level refers to the one before ten times.
    let mut text = String::from("a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n");
    for i in 1..12 {
        let refs = vec![format!("*a{}", i - 1); 10].join(", ");
        text.push_str(&format!("a{i}: &a{i} [{refs}]\n"));
    }
    text.push_str("name: bomb\nservices: {}\n");
    let err = berth_stack::parse(&text, Path::new(".")).unwrap_err();
    assert!(matches!(err, berth_stack::StackError::Syntax(_)), "{err}");
}

#[test]
fn names_with_path_traversal_are_refused_with_their_field() {
    let text = "name: ../s\ncluster: ../c\nservices:\n  ../web:\n    taskDefinition: {family: ../f, containerDefinitions: [{name: ../app, image: i}]}\n";
    let err = berth_stack::parse(text, Path::new("."))
        .unwrap_err()
        .to_string();
    for field in ["name:", "cluster:", "services.../web"] {
        assert!(err.contains(field), "{field} in {err}");
    }
    assert!(err.contains("\"../s\""), "{err}");
}
