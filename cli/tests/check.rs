//! `sentinel check`, `sentinel baseline seed` and `sentinel policy validate`,
//! run as CI runs them.

// Test code: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeSet;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use serde_json::{Value, json};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn sentinel(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_sentinel")).args(args).current_dir(root()).output().expect("sentinel runs")
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn json_of(o: &Output) -> Value {
    serde_json::from_slice(&o.stdout).unwrap_or_else(|e| panic!("{e}: {}", stdout(o)))
}

/// Every SARIF document this crate produces is checked against the OASIS schema.
fn assert_valid_sarif(doc: &Value) {
    let mut schema: Value =
        serde_json::from_str(include_str!("../../tests/fixtures/schemas/sarif-schema-2.1.0.json")).unwrap();
    // The schema's `language` patterns have a literal `]` unescaped, which
    // ECMAScript accepts and the validator's regex engine does not: escaped
    // here, same meaning (and `language` is never written).
    fn escape_bracket(v: &mut Value, fixed: &mut usize) {
        match v {
            Value::Object(m) => {
                for (k, x) in m.iter_mut() {
                    if k == "pattern" && *x == "^[a-zA-Z]{2}|^[a-zA-Z]{2}-[a-zA-Z]{2}]?$" {
                        *x = json!("^[a-zA-Z]{2}|^[a-zA-Z]{2}-[a-zA-Z]{2}\\]?$");
                        *fixed += 1;
                    } else {
                        escape_bracket(x, fixed);
                    }
                }
            }
            Value::Array(items) => items.iter_mut().for_each(|x| escape_bracket(x, fixed)),
            _ => {}
        }
    }
    let mut fixed = 0;
    escape_bracket(&mut schema, &mut fixed);
    assert!(fixed > 0);
    let validator = jsonschema::validator_for(&schema).unwrap();
    let errors: Vec<String> = validator.iter_errors(doc).map(|e| format!("{} at {}", e, e.instance_path())).collect();
    assert!(errors.is_empty(), "{errors:#?}");
}

const RISKY: &str = "examples/manifests/risky.yaml";
const CLEAN: &str = "examples/manifests/clean.yaml";

/// (rule, line) of every finding of a JSON report.
fn found(report: &Value) -> BTreeSet<(String, u64)> {
    report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| (f["rule"].as_str().unwrap().to_owned(), f["line"].as_u64().unwrap()))
        .collect()
}

fn line_of(file: &str, needle: &str) -> u64 {
    let text = std::fs::read_to_string(root().join(file)).unwrap();
    text.lines().position(|l| l.contains(needle)).unwrap_or_else(|| panic!("{needle} in {file}")) as u64 + 1
}

#[test]
fn the_risky_manifests_fail_at_their_lines_and_the_clean_ones_pass() {
    let out = sentinel(&["check", RISKY, "--against", CLEAN, "--fail-on", "high"]);
    assert_eq!(out.status.code(), Some(4), "{}", stdout(&out));
    let text = stdout(&out);
    for (rule, needle) in [
        ("ingress.snippet.injected", "server-snippet"),
        ("ingress.allowlist.widened", "allowlist-source-range: 0.0.0.0/0"),
        ("ingress.annotation.injection", "auth-url:"),
        ("ingress.host.added", "host: \"*.example.com\""),
        ("gateway.backend.cross-namespace", "name: checkout"),
    ] {
        let at = format!("{RISKY}:{}:", line_of(RISKY, needle));
        assert!(text.lines().any(|l| l.starts_with(&at) && l.contains(rule)), "{rule} at {at}\n{text}");
    }
    let clean = sentinel(&["check", CLEAN, "--fail-on", "medium"]);
    assert_eq!(clean.status.code(), Some(0), "{}", stdout(&clean));
    for file in [RISKY, CLEAN] {
        let sarif = json_of(&sentinel(&["check", file, "--against", CLEAN, "--format", "sarif"]));
        assert_valid_sarif(&sarif);
    }
}

#[test]
fn sarif_names_rules_and_places_for_code_scanning() {
    let sarif = json_of(&sentinel(&["check", RISKY, "--against", CLEAN, "--format", "sarif"]));
    assert_valid_sarif(&sarif);
    let run = &sarif["runs"][0];
    let rules = run["tool"]["driver"]["rules"].as_array().unwrap();
    for rule in rules {
        assert!(rule["shortDescription"]["text"].as_str().is_some_and(|t| !t.is_empty()));
        assert!(rule["fullDescription"]["text"].is_string() && rule["help"]["text"].is_string());
        assert!(rule["helpUri"].as_str().unwrap().contains("docs/rules.md#"));
        let score: f64 = rule["properties"]["security-severity"].as_str().unwrap().parse().unwrap();
        assert!((0.0..=10.0).contains(&score));
        assert!(rule["properties"]["tags"].as_array().unwrap().contains(&json!("security")));
    }
    let results = run["results"].as_array().unwrap();
    assert!(!results.is_empty());
    for r in results {
        let index = r["ruleIndex"].as_u64().unwrap() as usize;
        assert_eq!(rules[index]["id"], r["ruleId"]);
        let location = &r["locations"][0]["physicalLocation"];
        assert_eq!(location["artifactLocation"]["uri"], RISKY, "relative to the repository root");
        assert!(location["region"]["startLine"].as_u64().unwrap() > 1);
        assert!(location["region"]["startColumn"].as_u64().unwrap() >= 1);
        assert!(r["partialFingerprints"]["ingressSentinel/v1"].is_string());
    }
    // Fingerprints are stable across runs.
    let again = json_of(&sentinel(&["check", RISKY, "--against", CLEAN, "--format", "sarif"]));
    assert_eq!(again["runs"][0]["results"], run["results"]);
}

#[test]
fn github_annotations_escape_what_the_runner_reads() {
    let out = sentinel(&["check", RISKY, "--against", CLEAN, "--format", "github"]);
    let text = stdout(&out);
    let injection = text.lines().find(|l| l.contains("ingress.annotation.injection")).expect("an annotation");
    assert!(injection.starts_with(&format!("::error file={RISKY},line={},col=5,", line_of(RISKY, "auth-url:"))));
    // The finding's text cannot start a second command on its own line.
    assert_eq!(text.lines().filter(|l| l.starts_with("::")).count(), text.lines().count());
}

/// Helm output: comments, `# Source:` headers, anchors and merge keys; the
/// lines still point at the written fields.
#[test]
fn helm_rendered_input_with_comments_and_anchors_keeps_its_lines() {
    let rendered = "\
---
# Source: shop/templates/service.yaml
apiVersion: v1
kind: Service
metadata:
  name: legacy
  namespace: shop
spec:
  type: ExternalName
  externalName: 169.254.169.254
---
# Source: shop/templates/ingress.yaml
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata:
  name: web
  namespace: shop
  labels: &labels
    app.kubernetes.io/managed-by: Helm
  annotations:
    <<: *labels
    # the chart's values.yaml put this here
    nginx.ingress.kubernetes.io/configuration-snippet: |
      more_clear_headers Server;
spec:
  tls: [{hosts: [shop.example.com], secretName: shop-tls}]
  defaultBackend:
    service: {name: legacy, port: {number: 80}}
  rules:
    - host: shop.example.com
      http:
        paths:
          - path: /
            pathType: Prefix
            backend: {service: {name: web, port: {number: 80}}}
";
    let line = |needle: &str| rendered.lines().position(|l| l.contains(needle)).unwrap() as u64 + 1;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("rendered.yaml");
    std::fs::write(&file, rendered).unwrap();
    let out = sentinel(&["check", file.to_str().unwrap(), "--format", "json"]);
    let report = json_of(&out);
    let found = found(&report);
    assert!(report["errors"].as_array().unwrap().is_empty(), "{report:#}");
    for (rule, line) in [
        ("service.external-name.unsafe", line("externalName:")),
        ("ingress.snippet.injected", line("configuration-snippet")),
        ("ingress.headers.stripped", line("configuration-snippet")),
        ("ingress.backend.default", line("defaultBackend:")),
        ("ingress.backend.rerouted", line("defaultBackend:")),
    ] {
        assert!(found.contains(&(rule.to_owned(), line)), "{rule} at {line}: {found:?}");
    }
    let critical = report["findings"].as_array().unwrap().iter().find(|f| f["rule"] == "service.external-name.unsafe");
    assert_eq!(critical.unwrap()["severity"], "critical", "the instance metadata address");
}

#[test]
fn malformed_yaml_is_named_and_other_documents_are_skipped_and_counted() {
    let dir = tempfile::tempdir().unwrap();
    let broken = dir.path().join("broken.yaml");
    std::fs::write(&broken, "apiVersion: v1\nkind: Service\nmetadata:\n  name: [unclosed\n").unwrap();
    let other = dir.path().join("other.yaml");
    std::fs::write(
        &other,
        "# not Kubernetes\nfoo: bar\n---\n- a list\n---\napiVersion: v1\nkind: ConfigMap\nmetadata: {name: x}\n",
    )
    .unwrap();
    let out = sentinel(&["check", broken.to_str().unwrap(), other.to_str().unwrap(), "--format", "json"]);
    assert_eq!(out.status.code(), Some(3), "{}", stdout(&out));
    let report = json_of(&out);
    let errors = report["errors"].as_array().unwrap();
    assert_eq!(errors.len(), 1);
    let error = errors[0].as_str().unwrap();
    assert!(error.contains("broken.yaml:") && (error.contains(":4:") || error.contains(":5:")), "{error}");
    assert_eq!(report["skipped_documents"], 2);
    assert_eq!(report["objects"], 1);
}

#[test]
fn standard_input_is_read_with_a_dash() {
    let mut child = Command::new(env!("CARGO_BIN_EXE_sentinel"))
        .args(["check", "-", "--format", "json"])
        .current_dir(root())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"apiVersion: networking.k8s.io/v1\nkind: Ingress\nmetadata: {name: a}\nspec:\n  rules: [{host: '*.example.com'}]\n")
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let report = json_of(&out);
    assert!(found(&report).contains(&("ingress.host.added".to_owned(), 5)), "{report:#}");
    assert_eq!(report["findings"][0]["file"], "stdin");
}

/// The same change, judged by `check --against` and by the live engine
/// (`replay` of the create and the update), names the same content rules.
#[test]
fn check_against_and_replay_name_the_same_rules_for_the_same_change() {
    let load = |file: &str| {
        let text = std::fs::read_to_string(root().join(file)).unwrap();
        sentinel_core::manifest::load(file, &text).objects.into_iter().find(|m| m.kind() == "Ingress").unwrap().object
    };
    let (clean, risky) = (load(CLEAN), load(RISKY));
    let ci = sentinel_tests::engine::ci();
    let events = [
        sentinel_tests::engine::write(
            "c",
            "create",
            "ingresses",
            "shop",
            "storefront",
            "2024-05-01T10:00:00Z",
            ci.clone(),
            Some(&clean),
        ),
        sentinel_tests::engine::write(
            "u",
            "update",
            "ingresses",
            "shop",
            "storefront",
            "2024-05-01T11:00:00Z",
            ci,
            Some(&risky),
        ),
    ];
    let dir = tempfile::tempdir().unwrap();
    let audit = dir.path().join("audit.jsonl");
    std::fs::write(&audit, events.iter().map(|e| format!("{e}\n")).collect::<String>()).unwrap();
    let replayed = sentinel(&["replay", "--audit", audit.to_str().unwrap(), "--format", "json"]);
    let mut live = BTreeSet::new();
    for line in stdout(&replayed).lines() {
        let alert: Value = serde_json::from_str(line).unwrap();
        for s in alert["signals"].as_array().unwrap() {
            let rule = s["rule"].as_str().unwrap();
            if s["audit_id"] == "u" && !rule.starts_with("change.") && !rule.starts_with("identity.") {
                live.insert(rule.to_owned());
            }
        }
    }
    let checked = json_of(&sentinel(&["check", RISKY, "--against", CLEAN, "--format", "json"]));
    let by_check: BTreeSet<String> = checked["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["kind"] == "Ingress")
        .map(|f| f["rule"].as_str().unwrap().to_owned())
        .collect();
    assert!(live.len() >= 5, "{live:?}");
    assert_eq!(live, by_check);
}

/// A cluster dump seeds the baselines; `check --state` and live writes then
/// judge changes from it, not first sights.
#[test]
fn baselines_seeded_from_kubectl_output_judge_later_changes() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state.redb");
    let text = std::fs::read_to_string(root().join(CLEAN)).unwrap();
    let items: Vec<Value> = sentinel_core::manifest::load("clean", &text)
        .objects
        .into_iter()
        .map(|m| {
            let mut o = m.object;
            o["metadata"]["resourceVersion"] = json!("1000");
            o["metadata"]["creationTimestamp"] = json!("2024-01-01T00:00:00Z");
            o
        })
        .collect();
    let dump = dir.path().join("cluster.json");
    std::fs::write(
        &dump,
        serde_json::to_string_pretty(&json!({"apiVersion": "v1", "kind": "List", "items": items})).unwrap(),
    )
    .unwrap();
    let seed = sentinel(&["baseline", "seed", dump.to_str().unwrap(), "--state", state.to_str().unwrap()]);
    assert!(seed.status.success(), "{seed:?}");
    assert!(stdout(&seed).starts_with("baselines: 5 recorded, 0 already known"), "{}", stdout(&seed));
    let again = sentinel(&["baseline", "seed", dump.to_str().unwrap(), "--state", state.to_str().unwrap()]);
    assert!(stdout(&again).starts_with("baselines: 0 recorded, 5 already known"), "{}", stdout(&again));
    // Against the seeded state, the widening is a change, judged as live.
    let checked = json_of(&sentinel(&["check", RISKY, "--state", state.to_str().unwrap(), "--format", "json"]));
    let widened = checked["findings"].as_array().unwrap().iter().find(|f| f["rule"] == "ingress.allowlist.widened");
    assert_eq!(widened.unwrap()["judged"], "change", "{checked:#}");
    // A live update of a seeded Ingress is compared with the seeded state.
    let risky = {
        let text = std::fs::read_to_string(root().join(RISKY)).unwrap();
        sentinel_core::manifest::load("r", &text).objects.into_iter().find(|m| m.kind() == "Ingress").unwrap().object
    };
    let update = sentinel_tests::engine::write(
        "u",
        "update",
        "ingresses",
        "shop",
        "storefront",
        "2024-05-02T02:00:00Z",
        sentinel_tests::engine::mallory(),
        Some(&risky),
    );
    let audit = dir.path().join("audit.jsonl");
    std::fs::write(&audit, format!("{update}\n")).unwrap();
    let replayed = sentinel(&[
        "replay",
        "--audit",
        audit.to_str().unwrap(),
        "--state",
        state.to_str().unwrap(),
        "--format",
        "json",
    ]);
    let alert: Value = serde_json::from_str(stdout(&replayed).lines().next().expect("an alert")).unwrap();
    let summaries: Vec<&str> =
        alert["signals"].as_array().unwrap().iter().filter_map(|s| s["summary"].as_str()).collect();
    assert!(summaries.iter().any(|s| s.contains("widened by 0.0.0.0/0")), "{summaries:?}");
}

#[test]
fn policy_validate_names_the_line_and_column() {
    let ok = sentinel(&["policy", "validate", "examples/policy.toml"]);
    assert!(ok.status.success(), "{ok:?}");
    assert!(stdout(&ok).contains("valid policy"));
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.toml");
    std::fs::write(&bad, "cluster = \"prod\"\n[[windows]]\nname = \"w\"\ndays = [\"Funday\"]\n").unwrap();
    let out = sentinel(&["policy", "validate", bad.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    let text = stdout(&out);
    assert!(text.contains("line 4") && text.contains("column"), "{text}");
}

/// The GitHub Actions example: SARIF uploaded to code scanning with the
/// permission it needs, a category, and the plan registered before deploy.
#[test]
fn the_github_actions_example_uploads_sarif_and_registers_the_plan() {
    let text = std::fs::read_to_string(root().join("examples/github-actions/sentinel.yml")).unwrap();
    let workflow: Value = serde_norway::from_str(&text).unwrap();
    let check = &workflow["jobs"]["check"];
    assert_eq!(check["permissions"]["security-events"], "write");
    let steps = check["steps"].as_array().unwrap();
    let upload = steps
        .iter()
        .find(|s| s["uses"].as_str().is_some_and(|u| u.starts_with("github/codeql-action/upload-sarif")))
        .unwrap();
    assert_eq!(upload["with"]["sarif_file"], "sentinel.sarif");
    assert!(upload["with"]["category"].is_string());
    let runs: Vec<&str> = steps.iter().filter_map(|s| s["run"].as_str()).collect();
    assert!(runs.iter().any(|r| r.contains("sentinel check") && r.contains("--format sarif")));
    assert!(runs.iter().any(|r| r.contains("--format github --fail-on high")));
    let deploy: Vec<&str> =
        workflow["jobs"]["deploy"]["steps"].as_array().unwrap().iter().filter_map(|s| s["run"].as_str()).collect();
    let approve = deploy.iter().position(|r| r.contains("sentinel approve")).expect("a plan");
    let apply = deploy.iter().position(|r| r.contains("kubectl apply")).expect("a deploy");
    assert!(approve < apply, "the plan is registered before the change");
}

/// With the `aws` feature: baselines seeded into the deployed stack's tables
/// (moto's, through the real SDK), then read back by `check`.
#[cfg(feature = "aws")]
#[test]
fn baselines_seed_into_and_check_reads_the_deployed_tables() {
    use sentinel_tests::aws::{Emulator, moto_env};
    let dir = tempfile::tempdir().unwrap();
    let aws = Emulator::start(dir.path());
    let run = |args: &[&str]| {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_sentinel"));
        cmd.args(args).current_dir(root());
        for (k, v) in moto_env(&aws.moto) {
            cmd.env(k, v);
        }
        cmd.output().unwrap()
    };
    let tables = ["--aws-state-table", "state", "--aws-alerts-table", "alerts"];
    let mut seed = vec!["baseline", "seed", CLEAN];
    seed.extend(tables);
    let out = run(&seed);
    assert!(stdout(&out).starts_with("baselines: 5 recorded"), "{out:?}");
    let mut check = vec!["check", RISKY, "--format", "json"];
    check.extend(tables);
    let report = json_of(&run(&check));
    let widened = report["findings"].as_array().unwrap().iter().find(|f| f["rule"] == "ingress.allowlist.widened");
    assert_eq!(widened.unwrap()["judged"], "change", "{report:#}");
}
