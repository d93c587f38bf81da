//! The `sentinel` binary, run as a user runs it.

// Test code: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn samples() -> PathBuf {
    std::env::var_os("SENTINEL_SAMPLES").map_or_else(|| root().join("../shared/samples"), PathBuf::from)
}

fn sentinel(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_sentinel")).args(args).current_dir(root()).output().expect("sentinel runs")
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

#[test]
fn inspect_a_cloudwatch_logs_lambda_event_prints_counts() {
    let path = samples().join("aws-lambda-rust-runtime/example-cloudwatch_logs-event.json");
    let out = sentinel(&["inspect", path.to_str().unwrap()]);
    assert!(out.status.success(), "{out:?}");
    let text = stdout(&out);
    assert!(text.contains("example-cloudwatch_logs-event.json: 2 records, 0 kept"), "{text}");
    assert!(text.contains("total: 2 records"), "{text}");
}

#[test]
fn inspect_json_reports_the_allowlist_widening_naming_the_new_range() {
    let out = sentinel(&["inspect", "--format", "json", "tests/fixtures/allowlist-widened.jsonl"]);
    assert!(out.status.success(), "{out:?}");
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let events = report["events"].as_array().unwrap();
    assert_eq!(events.len(), 2);
    assert!(events[0]["changes"].is_null(), "the first sight has nothing to compare with");
    let changes = events[1]["changes"].as_array().unwrap();
    assert_eq!(changes.len(), 1);
    assert_eq!(changes[0]["change"], "allowlist_widened");
    assert_eq!(changes[0]["annotation"], "nginx.ingress.kubernetes.io/allowlist-source-range");
    assert_eq!(changes[0]["entries"], serde_json::json!(["0.0.0.0/0"]));
    assert_eq!(events[1]["actor"]["session_name"], "alice@example.com");
    assert_eq!(report["counts"]["kept"], 2);
}

#[test]
fn inspect_the_shipped_examples_shows_each_kind_of_change() {
    let out = sentinel(&["inspect", "examples/audit"]);
    assert!(out.status.success(), "{out:?}");
    let text = stdout(&out);
    for expected in [
        "allowlist widened: nginx.ingress.kubernetes.io/allowlist-source-range +[0.0.0.0/0]",
        "snippet annotation added: nginx.ingress.kubernetes.io/configuration-snippet",
        "TLS removed: hosts [pay.example.com]",
        "backend changed: pay.example.com /: service checkout:80 -> service checkout-debug:80",
        "auth annotation removed: nginx.ingress.kubernetes.io/auth-url",
        "scheme annotation changed: alb.ingress.kubernetes.io/scheme: internal -> internet-facing",
        "allowlist removed: alb.ingress.kubernetes.io/inbound-cidrs",
        "patch DENIED  ingresses payments/checkout",
        "total: 17 records, 11 kept, 1 denied",
    ] {
        assert!(text.contains(expected), "missing {expected:?} in\n{text}");
    }
    // The snippet's newline is escaped, never printed raw.
    assert!(text.contains(r#"more_clear_headers "Strict-Transport-Security";\u{a}proxy_set_header"#), "{text}");
}

#[test]
fn damaged_input_is_listed_and_the_exit_status_says_so() {
    let dir = tempfile::tempdir().unwrap();
    let good = std::fs::read_to_string(root().join("tests/fixtures/allowlist-widened.jsonl")).unwrap();
    let first = good.lines().next().unwrap();
    let cut = &first[..first.find("objectRef").unwrap()];
    std::fs::write(dir.path().join("mixed.jsonl"), format!("{cut}\n{first}\n")).unwrap();
    let out = sentinel(&["inspect", dir.path().to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(3), "{out:?}");
    let text = stdout(&out);
    assert!(text.contains("mixed.jsonl: line 1: invalid JSON"), "{text}");
    assert!(text.contains("1 kept"), "{text}");
}

#[test]
fn a_missing_path_is_an_error_naming_it() {
    let out = sentinel(&["inspect", "no/such/file.json"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("cannot read no/such/file.json"));
}

#[test]
fn all_lists_skipped_records_with_their_reason() {
    let out = sentinel(&["inspect", "--all", "examples/audit/kube-apiserver-audit.jsonl"]);
    let text = stdout(&out);
    assert!(text.contains("skipped: examples/audit/kube-apiserver-audit.jsonl: line 1: not_relevant"), "{text}");
    assert!(text.contains(": status_subresource"), "{text}");
}
