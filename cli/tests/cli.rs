//! The `sentinel` binary, run as a user runs it.

// Test code: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// The public sample data, copied into the repository (`tests/fixtures/samples/SOURCES.md`).
fn samples() -> PathBuf {
    root().join("tests/fixtures/samples")
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

/// A plan for the CI role to change shop/storefront on 2024-05-01.
const STOREFRONT_PLAN: [&str; 12] = [
    "--cluster",
    "local",
    "--namespace",
    "shop",
    "--name",
    "storefront",
    "--actor",
    "arn:aws:iam::111122223333:role/GitHubActionsDeploy",
    "--from",
    "2024-05-01T00:00:00Z",
    "--valid-for",
    "1d",
];

fn replay(extra: &[&str]) -> Output {
    let mut args = vec![
        "replay",
        "--audit",
        "examples/audit",
        "--policy",
        "examples/policy.toml",
        "--approvals",
        "examples/approvals.toml",
    ];
    args.extend_from_slice(extra);
    sentinel(&args)
}

fn alerts_of(out: &Output) -> Vec<serde_json::Value> {
    let schema: serde_json::Value =
        serde_json::from_str(include_str!("../../shared/core/schema/alert.schema.json")).unwrap();
    let validator = jsonschema::validator_for(&schema).unwrap();
    stdout(out)
        .lines()
        .map(|line| {
            let alert: serde_json::Value = serde_json::from_str(line).expect("one JSON alert per line, nothing else");
            assert!(validator.is_valid(&alert), "{alert:#}");
            alert
        })
        .collect()
}

#[test]
fn replay_of_the_examples_fires_many_rules_and_keeps_approved_and_routine_changes_silent() {
    let out = replay(&["--format", "json"]);
    assert!(out.status.success(), "{out:?}");
    let alerts = alerts_of(&out);
    let mut rules: Vec<String> = alerts
        .iter()
        .flat_map(|a| a["signals"].as_array().unwrap().iter().map(|s| s["rule"].as_str().unwrap().to_owned()))
        .collect();
    rules.sort();
    rules.dedup();
    assert!(rules.len() >= 6, "{rules:?}");
    // The approved creates (CHG-1042, -1043, -1050) and the Argo CD bookkeeping patch raise nothing.
    let audit_ids: Vec<&str> =
        alerts.iter().flat_map(|a| a["audit_ids"].as_array().unwrap().iter().map(|i| i.as_str().unwrap())).collect();
    let examples = std::fs::read_to_string(root().join("examples/audit/kube-apiserver-audit.jsonl")).unwrap();
    for line in examples.lines() {
        let e: serde_json::Value = serde_json::from_str(line).unwrap();
        let quiet = e["verb"] == "create" || e["user"]["username"].as_str().unwrap().contains("argocd");
        if quiet {
            assert!(!audit_ids.contains(&e["auditID"].as_str().unwrap()), "{} should be silent", e["auditID"]);
        }
    }
    let summary = String::from_utf8_lossy(&out.stderr);
    assert!(summary.contains("3 approved and recorded"), "{summary}");
}

#[test]
fn replaying_twice_on_the_same_state_raises_nothing_new() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state.redb");
    let state = state.to_str().unwrap();
    let first = replay(&["--format", "json", "--state", state]);
    assert!(!alerts_of(&first).is_empty());
    let second = replay(&["--format", "json", "--state", state]);
    assert!(second.status.success(), "{second:?}");
    assert_eq!(stdout(&second), "", "no new alerts on the second run");
    assert!(String::from_utf8_lossy(&second.stderr).contains("11 already applied"));
}

#[test]
fn fail_on_sets_the_exit_status() {
    assert_eq!(replay(&["--fail-on", "critical"]).status.code(), Some(4));
    let quiet = sentinel(&["replay", "--audit", "tests/fixtures/allowlist-widened.jsonl", "--fail-on", "critical"]);
    // Without a policy the widening to 0.0.0.0/0 is still critical.
    assert_eq!(quiet.status.code(), Some(4), "{quiet:?}");
    let calm = sentinel(&[
        "replay",
        "--audit",
        "examples/audit/cloudwatch-subscription-event.json",
        "--fail-on",
        "critical",
        "--policy",
        "examples/policy.toml",
        "--approvals",
        "examples/approvals.toml",
    ]);
    assert_eq!(calm.status.code(), Some(4));
}

#[test]
fn an_invalid_policy_is_refused_naming_its_line() {
    let dir = tempfile::tempdir().unwrap();
    let policy = dir.path().join("policy.toml");
    std::fs::write(
        &policy,
        "cluster = \"x\"\n[[windows]]\nname = \"w\"\ndays = [\"mon\"]\nstart = \"25:00\"\nend = \"17:00\"\n",
    )
    .unwrap();
    let out = sentinel(&["replay", "--audit", "examples/audit", "--policy", policy.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("line 5") && err.contains("invalid time \"25:00\""), "{err}");
}

#[test]
fn approve_pins_a_manifest_and_replay_honours_it() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state.redb");
    let manifest = dir.path().join("ingress.yaml");
    std::fs::write(
        &manifest,
        "# the storefront as CI will deploy it\napiVersion: networking.k8s.io/v1\nkind: Ingress\nmetadata:\n  name: storefront\n  annotations:\n    nginx.ingress.kubernetes.io/allowlist-source-range: 10.0.0.0/8\nspec:\n  ingressClassName: nginx\n  rules:\n    - host: shop.example.com\n      http:\n        paths:\n          - path: /\n            pathType: Prefix\n            backend:\n              service:\n                name: storefront\n                port:\n                  number: 80\n  tls:\n    - hosts: [shop.example.com]\n      secretName: storefront-tls\n",
    )
    .unwrap();
    let mut args = vec!["approve", "--state", state.to_str().unwrap()];
    args.extend(STOREFRONT_PLAN);
    args.extend(["--manifest", manifest.to_str().unwrap(), "--ticket", "CHG-7"]);
    let out = sentinel(&args);
    assert!(out.status.success(), "{out:?}");
    let plan: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(plan["digest"].as_str().unwrap().starts_with("sha256:"));
    assert_eq!(plan["id"], "CHG-7");
    // The fixture's create by CI matches the pinned manifest; the update (alice, to 0.0.0.0/0) has no plan.
    let policy = dir.path().join("policy.toml");
    std::fs::write(
        &policy,
        "require_plans = true\n[[actors]]\nname = \"ci\"\niam_role_arn = \"arn:aws:iam::111122223333:role/*\"\n",
    )
    .unwrap();
    let out = sentinel(&[
        "replay",
        "--audit",
        "tests/fixtures/allowlist-widened.jsonl",
        "--state",
        state.to_str().unwrap(),
        "--policy",
        policy.to_str().unwrap(),
        "--format",
        "json",
    ]);
    let alerts = alerts_of(&out);
    assert_eq!(alerts.len(), 1, "{}", stdout(&out));
    let fixture = std::fs::read_to_string(root().join("tests/fixtures/allowlist-widened.jsonl")).unwrap();
    let create: serde_json::Value = serde_json::from_str(fixture.lines().next().unwrap()).unwrap();
    assert!(!alerts[0]["audit_ids"].as_array().unwrap().contains(&create["auditID"]), "the planned create is silent");
    let signals = alerts[0]["signals"].as_array().unwrap();
    let rules: Vec<&str> = signals.iter().map(|s| s["rule"].as_str().unwrap()).collect();
    assert!(rules.contains(&"ingress.allowlist.widened") && rules.contains(&"change.unplanned"), "{rules:?}");
    let unplanned = signals.iter().find(|s| s["rule"] == "change.unplanned").unwrap();
    assert!(unplanned["summary"].as_str().unwrap().contains("no change plan covers ingresses shop/storefront"));
}

/// The last revision of the one alert a replay printed, without its revision
/// number and what that revision was for (both depend on the order of arrival).
fn final_alert(out: &Output) -> serde_json::Value {
    let mut alert = alerts_of(out).pop().expect("an alert");
    let fields = alert.as_object_mut().unwrap();
    fields.remove("revision");
    fields.remove("revised_for");
    alert
}

#[test]
fn the_sso_user_behind_eks_get_token_auth_is_named_whether_cloudtrail_comes_first_or_later() {
    let audit = "tests/fixtures/identity/eks-get-token-widening.jsonl";
    let trail = "tests/fixtures/identity/sso-assume-role-with-saml.json";
    let together = sentinel(&["replay", "--audit", audit, "--cloudtrail", trail, "--format", "json"]);
    assert!(together.status.success(), "{together:?}");
    let a = final_alert(&together);
    assert_eq!(a["actor"]["originating_principal"], "alice@example.com");
    assert_eq!(a["identity_status"], "resolved");
    assert!(a["signals"].as_array().unwrap().iter().any(|s| s["rule"] == "ingress.allowlist.widened"));

    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state.redb");
    let state = state.to_str().unwrap();
    let first = sentinel(&["replay", "--audit", audit, "--state", state, "--format", "json"]);
    let pending = final_alert(&first);
    assert_eq!(pending["identity_status"], "pending");
    assert!(pending["actor"]["originating_principal"].is_null());
    let later = sentinel(&["replay", "--cloudtrail", trail, "--state", state, "--format", "json"]);
    assert!(later.status.success(), "{later:?}");
    assert_eq!(final_alert(&later), a, "the same final alert, revised under the same id");
}

/// Two people assume the same role under the same generic session name
/// (`Admin` / `EKSGetTokenAuth`) twenty minutes apart; the second person's
/// CloudTrail arrives after the audit log was processed. Before it arrives,
/// the second change names nobody (pending), and never the first person;
/// after it, the second person, with the first person's alert cross-referenced, not merged.
#[test]
fn a_shared_role_session_is_never_taken_for_whoever_assumed_it_last() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state.redb");
    let state = state.to_str().unwrap();
    let audit = "tests/fixtures/identity/shared-role-audit.jsonl";
    let first = sentinel(&[
        "replay",
        "--audit",
        audit,
        "--cloudtrail",
        "tests/fixtures/identity/shared-role-alice-cloudtrail.json",
        "--state",
        state,
        "--format",
        "json",
    ]);
    assert_eq!(first.status.code(), Some(0), "{first:?}");
    let by_id = |alerts: &[serde_json::Value], audit_id: &str| {
        alerts.iter().rev().find(|a| a["audit_ids"].as_array().unwrap().iter().any(|i| i == audit_id)).cloned().unwrap()
    };
    let alerts = alerts_of(&first);
    let alice = by_id(&alerts, "id-alice-widen");
    assert_eq!(alice["actor"]["originating_principal"], "alice@example.com");
    let bob = by_id(&alerts, "id-bob-snippet");
    assert_ne!(bob["alert_id"], alice["alert_id"], "not merged into the first person's incident");
    assert_eq!(bob["identity_status"], "pending");
    assert!(bob["actor"]["originating_principal"].is_null(), "{bob:#}");
    assert!(!bob.to_string().contains("alice@example.com"), "the first person is never named for the second change");
    assert_eq!(bob["actor_key"], "access-key:ASIABOBADMIN");

    let late = sentinel(&[
        "replay",
        "--cloudtrail",
        "tests/fixtures/identity/shared-role-bob-cloudtrail-late.json",
        "--state",
        state,
        "--format",
        "json",
    ]);
    assert_eq!(late.status.code(), Some(0), "{late:?}");
    let revised = alerts_of(&late);
    let bob_now = by_id(&revised, "id-bob-snippet");
    assert_eq!(bob_now["alert_id"], bob["alert_id"], "revised under its own id");
    assert_eq!(bob_now["actor"]["originating_principal"], "bob@example.com");
    assert_eq!(bob_now["identity_status"], "resolved");
    assert!(!bob_now["actor"].to_string().contains("alice@example.com"));
    assert!(bob_now["signals"].as_array().unwrap().iter().all(|s| s["audit_id"] == "id-bob-snippet"));
}

/// With the `aws` feature: plans registered in, and replays run on, the
/// deployed stack's tables (here moto's, through the real SDK).
#[cfg(feature = "aws")]
#[test]
fn approve_and_replay_against_dynamodb_tables() {
    use sentinel_core::store::Plans;
    use sentinel_tests::aws::{Emulator, moto_env};
    let dir = tempfile::tempdir().unwrap();
    let aws = Emulator::start(dir.path());
    let env = moto_env(&aws.moto);
    let run = |args: &[&str]| {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_sentinel"));
        cmd.args(args).current_dir(root());
        for (k, v) in &env {
            cmd.env(k, v);
        }
        cmd.output().unwrap()
    };
    let tables = ["--aws-state-table", "state", "--aws-alerts-table", "alerts"];
    let mut approve = vec!["approve"];
    approve.extend(STOREFRONT_PLAN);
    approve.extend(tables);
    let out = run(&approve);
    assert!(out.status.success(), "{out:?}");
    let store = aws.store();
    let plans = store.plans("local", "shop", "2024-05-01T12:00:00Z".parse().unwrap()).unwrap();
    assert_eq!(plans.len(), 1);
    let policy = dir.path().join("policy.toml");
    std::fs::write(
        &policy,
        "[[actors]]\nname = \"ci\"\niam_role_arn = \"arn:aws:iam::111122223333:role/GitHubActionsDeploy\"\n",
    )
    .unwrap();
    let mut replay_args =
        vec!["replay", "--audit", "tests/fixtures/allowlist-widened.jsonl", "--format", "json", "--policy"];
    replay_args.push(policy.to_str().unwrap());
    replay_args.extend(tables);
    let out = run(&replay_args);
    assert!(out.status.success(), "{out:?}");
    assert_eq!(alerts_of(&out).len(), 1, "the unplanned widening");
    // Seeded: the same logs again raise nothing.
    assert!(alerts_of(&run(&replay_args)).is_empty());
}

/// Files are decoded in parallel, and the result is the same as reading
/// them as one: the sample history split into a file per event (named so
/// their order is the history's) gives the same alerts as the whole file.
#[test]
fn a_history_split_across_many_files_decoded_in_parallel_gives_the_same_alerts() {
    let history = root().join("examples/audit/kube-apiserver-audit.jsonl");
    let text = std::fs::read_to_string(&history).unwrap();
    let dir = tempfile::tempdir().unwrap();
    for (i, line) in text.lines().enumerate() {
        std::fs::write(dir.path().join(format!("{i:04}.jsonl")), format!("{line}\n")).unwrap();
    }
    let args =
        |audit: &str| sentinel(&["replay", "--audit", audit, "--policy", "examples/policy.toml", "--format", "json"]);
    let whole = args(history.to_str().unwrap());
    let split = args(dir.path().to_str().unwrap());
    assert!(whole.status.success() && split.status.success(), "{whole:?} {split:?}");
    assert!(text.lines().count() > 4 && !stdout(&whole).is_empty());
    assert_eq!(stdout(&split), stdout(&whole));
}
