//! `sentinel report` and `sentinel ack`, run as a compliance team and an
//! on-call engineer run them: the report from replay output and from
//! DynamoDB exports (full and incremental, in AWS's layout), the page opened
//! in headless Chromium, and status changes stored and published.

// Test code: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::{Value, json};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn sentinel(args: &[&str]) -> Output {
    sentinel_env(args, &[])
}

fn sentinel_env(args: &[&str], env: &[(&str, String)]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_sentinel"));
    cmd.args(args).current_dir(root());
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().expect("sentinel runs")
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn replay_json(audit: &Path, state: Option<&Path>) -> String {
    let mut args = vec!["replay", "--audit", audit.to_str().unwrap(), "--format", "json"];
    if let Some(s) = state {
        args.extend(["--state", s.to_str().unwrap()]);
    }
    let out = sentinel(&args);
    assert!(out.status.code().is_some_and(|c| c == 0 || c == 4), "{out:?}");
    stdout(&out)
}

/// Latest revision of each alert in replay output.
fn latest(lines: &str) -> Vec<Value> {
    let mut by_id: std::collections::BTreeMap<String, Value> = std::collections::BTreeMap::new();
    for line in lines.lines() {
        let a: Value = serde_json::from_str(line).unwrap();
        let id = a["alert_id"].as_str().unwrap().to_owned();
        if by_id.get(&id).is_none_or(|b| b["revision"].as_u64() < a["revision"].as_u64()) {
            by_id.insert(id, a);
        }
    }
    by_id.into_values().collect()
}

fn csv_rows(path: &Path) -> usize {
    csv::Reader::from_path(path).unwrap().records().count()
}

/// The acceptance run: the demo's alerts as JSON, then the report.
#[test]
fn a_report_from_replay_output_has_the_page_the_csvs_and_the_summary_and_they_agree() {
    let dir = tempfile::tempdir().unwrap();
    let out = sentinel(&[
        "replay",
        "--audit",
        "examples/audit",
        "--cloudtrail",
        "examples/cloudtrail",
        "--policy",
        "examples/policy.toml",
        "--approvals",
        "examples/approvals.toml",
        "--format",
        "json",
    ]);
    let alerts_file = dir.path().join("alerts.jsonl");
    std::fs::write(&alerts_file, stdout(&out)).unwrap();
    let report = dir.path().join("report");
    let run = sentinel(&["report", alerts_file.to_str().unwrap(), "--out", report.to_str().unwrap()]);
    assert!(run.status.success(), "{run:?}");
    for f in ["index.html", "alerts.csv", "signals.csv", "summary.json"] {
        assert!(report.join(f).is_file(), "{f}");
    }
    let alerts = latest(&stdout(&out));
    let signals: usize = alerts.iter().map(|a| a["signals"].as_array().unwrap().len()).sum();
    let summary: Value = serde_json::from_str(&std::fs::read_to_string(report.join("summary.json")).unwrap()).unwrap();
    assert_eq!(summary["alerts"], alerts.len());
    assert_eq!(summary["signals"], signals);
    assert_eq!(csv_rows(&report.join("alerts.csv")), alerts.len());
    assert_eq!(csv_rows(&report.join("signals.csv")), signals);
    let by_severity: u64 = summary["by_severity"].as_object().unwrap().values().map(|v| v.as_u64().unwrap()).sum();
    assert_eq!(by_severity as usize, alerts.len());
    let page = std::fs::read_to_string(report.join("index.html")).unwrap();
    for a in &alerts {
        assert!(page.contains(&format!("id=\"{}\"", a["alert_id"].as_str().unwrap())));
    }
}

fn hostile_history(dir: &Path) -> PathBuf {
    use sentinel_tests::engine::{storefront, write};
    let mut o = storefront();
    o["metadata"]["annotations"]["nginx.ingress.kubernetes.io/configuration-snippet"] =
        json!("</td><script>alert(1)</script><img src=http://198.51.100.9/x.png> [click](http://evil) \u{1b}[2J");
    o["metadata"]["annotations"]["nginx.ingress.kubernetes.io/allowlist-source-range"] = json!("0.0.0.0/0");
    let user = json!({"username": "<img src=x onerror=alert(2)>**bold**</td><script>alert(1)</script>\u{1b}[2J", "groups": ["system:authenticated"]});
    let events = [
        write(
            "c",
            "create",
            "ingresses",
            "shop",
            "web",
            "2024-05-01T10:00:00Z",
            sentinel_tests::engine::ci(),
            Some(&storefront()),
        ),
        write("h", "update", "ingresses", "shop", "web", "2024-05-02T02:00:00Z", user, Some(&o)),
    ];
    let audit = dir.join("hostile.jsonl");
    std::fs::write(&audit, events.iter().map(|e| format!("{e}\n")).collect::<String>()).unwrap();
    audit
}

/// What Chromium saw: its console, the page's requests, the DOM.
struct Opened {
    console: Vec<String>,
    requests: Vec<String>,
    dom: String,
}

fn chromium() -> &'static str {
    for c in ["chromium", "chromium-browser", "google-chrome"] {
        if Command::new(c).arg("--version").output().is_ok_and(|o| o.status.success()) {
            return c;
        }
    }
    panic!("Chromium is not installed: scripts/test installs Debian's chromium");
}

fn open(page: &Path, screenshot: &Path) -> Opened {
    let dir = tempfile::tempdir().unwrap();
    let net = dir.path().join("net.json");
    let out = Command::new(chromium())
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-background-networking",
            "--disable-component-update",
            "--no-first-run",
        ])
        .arg(format!("--user-data-dir={}", dir.path().join("profile").display()))
        .arg("--enable-logging=stderr")
        .arg("--v=0")
        .arg(format!("--log-net-log={}", net.display()))
        .arg(format!("--screenshot={}", screenshot.display()))
        .arg("--window-size=1280,2400")
        .arg("--dump-dom")
        .arg(format!("file://{}", page.display()))
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    let console = stderr.lines().filter(|l| l.contains(":CONSOLE")).map(str::to_owned).collect();
    let log: Value = serde_json::from_str(&std::fs::read_to_string(&net).unwrap()).unwrap();
    let start = log["constants"]["logEventTypes"]["URL_REQUEST_START_JOB"].clone();
    // The page's own requests: keyed to the file:// page (the browser's
    // background traffic is not).
    let requests = log["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["type"] == start)
        .filter(|e| e["params"]["network_isolation_key"].as_str().is_some_and(|k| k.contains("file://")))
        .filter_map(|e| e["params"]["url"].as_str())
        .filter(|u| !u.starts_with("file://"))
        .map(str::to_owned)
        .collect();
    Opened { console, requests, dom: String::from_utf8_lossy(&out.stdout).into_owned() }
}

/// The page opens in headless Chromium with no console message and no
/// request, the charts carry their data, and hostile names stay text.
#[test]
fn the_page_opens_in_chromium_quietly_with_its_charts_and_hostile_strings_escaped() {
    let dir = tempfile::tempdir().unwrap();
    let alerts = replay_json(&hostile_history(dir.path()), None);
    let file = dir.path().join("alerts.jsonl");
    std::fs::write(&file, &alerts).unwrap();
    let report = dir.path().join("report");
    assert!(sentinel(&["report", file.to_str().unwrap(), "--out", report.to_str().unwrap()]).status.success());
    let page = std::fs::read_to_string(report.join("index.html")).unwrap();
    assert!(!page.contains("<script") && !page.contains("<img"), "markup from the cluster is text");
    assert!(
        page.contains("&lt;img src=x onerror=alert(2)&gt;**bold**&lt;/td&gt;&lt;script&gt;alert(1)&lt;/script&gt;"),
        "the actor, as text"
    );
    assert!(page.contains("\\u{1b}[2J"), "control characters made visible");
    let shots = root().join("target");
    std::fs::create_dir_all(&shots).unwrap();
    let screenshot = shots.join("report-screenshot.png");
    let opened = open(&report.join("index.html"), &screenshot);
    assert!(opened.console.is_empty(), "console: {:#?}", opened.console);
    assert!(opened.requests.is_empty(), "requests: {:?}", opened.requests);
    assert!(std::fs::metadata(&screenshot).unwrap().len() > 10_000, "a screenshot under target/");
    // The weekly chart draws every alert, by severity.
    let summary: Value = serde_json::from_str(&std::fs::read_to_string(report.join("summary.json")).unwrap()).unwrap();
    let drawn: u64 = opened
        .dom
        .split("data-week=")
        .skip(1)
        .filter_map(|s| s.split("data-count=\"").nth(1)?.split('"').next()?.parse::<u64>().ok())
        .sum();
    assert_eq!(drawn, summary["alerts"].as_u64().unwrap());
    for chart in ["per-week", "by-rule", "top-principals", "top-namespaces", "top-objects", "approved", "identity"] {
        assert!(opened.dom.contains(&format!("id=\"{chart}\"")), "{chart}");
    }
    // The same check sees a request when a page makes one.
    let leaky = dir.path().join("leaky.html");
    std::fs::write(&leaky, "<html><body><img src=\"http://198.51.100.1/x.png\"></body></html>").unwrap();
    assert!(!open(&leaky, &dir.path().join("leaky.png")).requests.is_empty(), "the request check works");
}

fn gzip(text: &str) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    e.write_all(text.as_bytes()).unwrap();
    e.finish().unwrap()
}

/// An export laid out as DynamoDB writes it, under `prefix`.
fn lay_export(root: &Path, prefix: &str, id: &str, kind: &str, time: &str, lines: &[Value]) {
    let dir = root.join(prefix).join("AWSDynamoDB").join(id);
    std::fs::create_dir_all(dir.join("data")).unwrap();
    let data_key = format!("{prefix}/AWSDynamoDB/{id}/data/{id}-part0.json.gz");
    let body: String = lines.iter().map(|l| format!("{l}\n")).collect();
    std::fs::write(root.join(&data_key), gzip(&body)).unwrap();
    let mut summary = json!({"version": "2020-06-30", "exportArn": format!("arn:aws:dynamodb:eu-west-1:111122223333:table/alerts/export/{id}"),
        "tableArn": "arn:aws:dynamodb:eu-west-1:111122223333:table/alerts", "exportTime": time, "s3Bucket": "evidence",
        "s3Prefix": prefix, "manifestFilesS3Key": format!("{prefix}/AWSDynamoDB/{id}/manifest-files.json"),
        "itemCount": lines.len(), "outputFormat": "DYNAMODB_JSON", "exportType": kind});
    if kind == "INCREMENTAL_EXPORT" {
        summary["exportFromTime"] = json!("2024-05-02T00:00:00Z");
        summary["exportToTime"] = json!(time);
    }
    std::fs::write(dir.join("manifest-summary.json"), summary.to_string()).unwrap();
    std::fs::write(
        dir.join("manifest-files.json"),
        format!("{}\n", json!({"itemCount": lines.len(), "md5Checksum": "x", "etag": "y", "dataFileS3Key": data_key})),
    )
    .unwrap();
}

/// An alerts-table item in DynamoDB JSON, as `DynamoStore` writes it.
fn item(alert: &Value) -> Value {
    let record = json!({"alert": alert, "published_revision": alert["revision"]});
    let doc: serde_dynamo::AttributeValue = serde_dynamo::to_attribute_value(&record).unwrap();
    json!({"alert_id": {"S": alert["alert_id"]}, "version": {"N": "2"}, "doc": serde_json::to_value(doc).unwrap()})
}

/// A full export, then an incremental one that revises one alert and
/// deletes another; a stray data file the manifests do not name is ignored.
#[test]
fn full_then_incremental_exports_are_applied_in_order_through_their_manifests() {
    let dir = tempfile::tempdir().unwrap();
    let alerts = latest(&replay_json(&hostile_history(dir.path()), None));
    let mut other = alerts[0].clone();
    other["alert_id"] = json!("isa-000000000000000000000002");
    let exports = dir.path().join("exports");
    let full: Vec<Value> = [&alerts[0], &other].iter().map(|a| json!({"Item": item(a)})).collect();
    lay_export(&exports, "alerts", "01700000000000-aaaaaaaa", "FULL_EXPORT", "2024-05-02T03:00:00Z", &full);
    let mut revised = alerts[0].clone();
    revised["revision"] = json!(9);
    revised["status"] = json!("acknowledged");
    let incremental = vec![
        json!({"Metadata": {"WriteTimestampMicros": {"N": "1714619000000000"}}, "Keys": {"alert_id": {"S": revised["alert_id"]}},
               "NewImage": item(&revised), "OldImage": item(&alerts[0])}),
        json!({"Metadata": {"WriteTimestampMicros": {"N": "1714619100000000"}}, "Keys": {"alert_id": {"S": other["alert_id"]}},
               "OldImage": item(&other)}),
    ];
    lay_export(
        &exports,
        "alerts",
        "01700000009999-bbbbbbbb",
        "INCREMENTAL_EXPORT",
        "2024-05-02T04:00:00Z",
        &incremental,
    );
    let stray = exports.join("alerts/AWSDynamoDB/01700000000000-aaaaaaaa/data/stray.json.gz");
    std::fs::write(&stray, gzip(&format!("{}\n", json!({"Item": item(&other)})))).unwrap();
    let report = dir.path().join("report");
    let out = sentinel(&["report", exports.to_str().unwrap(), "--out", report.to_str().unwrap()]);
    assert!(out.status.success(), "{out:?}");
    let summary: Value = serde_json::from_str(&std::fs::read_to_string(report.join("summary.json")).unwrap()).unwrap();
    assert_eq!(summary["alerts"], 1, "{summary:#}");
    assert_eq!(summary["by_status"]["acknowledged"], 1);
    let csv = std::fs::read_to_string(report.join("alerts.csv")).unwrap();
    assert!(csv.contains(",9,") && !csv.contains("isa-000000000000000000000002"), "{csv}");
}

/// `ack` on a state file: the status revision is stored and printed; the
/// person the alert names cannot close it.
#[test]
fn ack_on_a_state_file_stores_the_status_and_refuses_the_named_person() {
    use sentinel_tests::engine::{ci, mallory, storefront, write};
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state.redb");
    let mut wide = storefront();
    wide["metadata"]["annotations"]["nginx.ingress.kubernetes.io/allowlist-source-range"] = json!("0.0.0.0/0");
    let events = [
        write("c", "create", "ingresses", "shop", "web", "2024-05-01T10:00:00Z", ci(), Some(&storefront())),
        write("w", "update", "ingresses", "shop", "web", "2024-05-02T02:00:00Z", mallory(), Some(&wide)),
    ];
    let audit = dir.path().join("a.jsonl");
    std::fs::write(&audit, events.iter().map(|e| format!("{e}\n")).collect::<String>()).unwrap();
    let alert = latest(&replay_json(&audit, Some(&state))).pop().unwrap();
    let id = alert["alert_id"].as_str().unwrap();
    let state_arg = state.to_str().unwrap();
    // The caller is the account the process runs as; a name given with
    // `--as` is checked too.
    let me = String::from_utf8(std::process::Command::new("id").arg("-un").output().unwrap().stdout).unwrap();
    let closed_for_mallory = sentinel(&[
        "ack",
        id,
        "--status",
        "resolved",
        "--reason",
        "fine",
        "--as",
        "Mallory@example.com",
        "--state",
        state_arg,
    ]);
    assert_eq!(closed_for_mallory.status.code(), Some(2), "{closed_for_mallory:?}");
    assert!(String::from_utf8_lossy(&closed_for_mallory.stderr).contains("cannot close"));
    let acked = sentinel(&[
        "ack",
        id,
        "--status",
        "acknowledged",
        "--reason",
        "on it",
        "--as",
        "bob@example.com",
        "--state",
        state_arg,
        "--format",
        "json",
    ]);
    assert!(acked.status.success(), "{acked:?}");
    let revision: Value = serde_json::from_str(stdout(&acked).trim()).unwrap();
    assert_eq!((revision["status"].as_str(), revision["revised_for"].as_str()), (Some("acknowledged"), Some("status")));
    assert_eq!(revision["status_changes"][0]["by"], me.trim());
    assert_eq!(revision["status_changes"][0]["on_behalf_of"], "bob@example.com");
    // Stored: the same change again is refused as no change.
    let again = sentinel(&["ack", id, "--status", "acknowledged", "--reason", "x", "--state", state_arg]);
    assert_eq!(again.status.code(), Some(2));
}

/// The columns `infra/athena.sql` declares for a table: name and DynamoDB type.
#[cfg(feature = "aws")]
fn athena_columns(table: &str) -> Vec<(String, String)> {
    let sql = std::fs::read_to_string(root().join("infra/athena.sql")).unwrap();
    let start = sql.find(&format!("CREATE EXTERNAL TABLE IF NOT EXISTS {table} (")).unwrap();
    let body = &sql[start..start + sql[start..].find("ROW FORMAT").unwrap()];
    body.lines()
        .filter_map(|l| {
            let (name, ty) = l.trim().split_once(": struct<")?;
            let ty = ty.split(':').next()?.trim_matches('`');
            Some((name.to_owned(), ty.to_owned()))
        })
        .collect()
}

/// The Athena tables over the exports read what the functions wrote: every
/// declared column that an exported item holds has the declared type, and
/// most columns are present.
#[cfg(feature = "aws")]
fn athena_columns_match(exported: &std::collections::BTreeMap<&str, Vec<Value>>) {
    for (table, items) in exported {
        let columns = athena_columns(table);
        assert!(columns.len() >= 10, "{table}: {columns:?}");
        let mut present = 0;
        for (name, ty) in &columns {
            let values: Vec<&Value> = items.iter().filter_map(|i| i["Item"].get(name)).collect();
            present += usize::from(!values.is_empty());
            for v in values {
                assert!(v.get(ty).is_some(), "{table}.{name} is declared {ty}, exported as {v}");
            }
        }
        assert!(present * 4 >= columns.len() * 3, "{table}: only {present} of {} columns exported", columns.len());
    }
    assert_eq!(exported.len(), 2);
}

/// On moto, with the functions under the runtime emulator: an alert the
/// function wrote is acknowledged through the tables (stored in the alert
/// and the history, published with `event` = `status`), both tables are
/// exported with `ExportTableToPointInTime`, and the report read from S3
/// agrees with what was written.
#[cfg(feature = "aws")]
#[test]
fn alerts_the_functions_wrote_are_acknowledged_exported_and_reported_on_moto() {
    use sentinel_tests::aws::*;
    let dir = tempfile::tempdir().unwrap();
    let aws = Emulator::start(dir.path());
    let Stack { topic, queue } = aws.stack();
    let mut env = moto_env(&aws.moto);
    env.extend(function_env(&topic));
    let watch = watch(dir.path(), &env);
    let events: Vec<Value> = {
        use sentinel_tests::engine::{ci, mallory, storefront, write};
        let mut wide = storefront();
        wide["metadata"]["annotations"]["nginx.ingress.kubernetes.io/allowlist-source-range"] = json!("0.0.0.0/0");
        vec![
            write("c", "create", "ingresses", "shop", "web", "2024-05-01T10:00:00Z", ci(), Some(&storefront())),
            write("w", "update", "ingresses", "shop", "web", "2024-05-02T02:00:00Z", mallory(), Some(&wide)),
        ]
    };
    let event: Value =
        serde_json::from_str(&sentinel_tests::lambda_logs_event(&sentinel_tests::envelope(&events))).unwrap();
    let report = invoke(&watch, "audit-ingest", &event, dir.path());
    assert_eq!(report["alerts_opened"], 1, "{report:#}");
    let first = aws.rt.block_on(queue.drain());
    let id = first[0]["MessageAttributes"]["alert_id"]["Value"].as_str().unwrap().to_owned();
    drop(watch);
    let run = |args: &[&str]| {
        let mut e: Vec<(&str, String)> = moto_env(&aws.moto);
        e.push(("AWS_MAX_ATTEMPTS", "2".into()));
        sentinel_env(args, &e)
    };
    let tables = ["--aws-state-table", "state", "--aws-alerts-table", "alerts", "--aws-history-table", HISTORY_TABLE];
    let mut ack = vec!["ack", &id, "--status", "acknowledged", "--reason", "investigating", "--aws-topic-arn", &topic];
    ack.extend(tables);
    let out = run(&ack);
    assert!(out.status.success(), "{out:?}");
    let published = aws.rt.block_on(queue.drain());
    assert_eq!(published.len(), 1);
    assert_eq!(published[0]["MessageAttributes"]["event"]["Value"], "status");
    let body: Value = serde_json::from_str(published[0]["Message"].as_str().unwrap()).unwrap();
    assert!(
        body["status_changes"][0]["by"].as_str().unwrap().starts_with("arn:aws:"),
        "the caller, from STS: {body:#}"
    );
    // Both tables to S3, as the stack's daily export does.
    let dynamo = aws_sdk_dynamodb::Client::new(&aws.sdk);
    let s3 = aws.s3();
    let mut exported: std::collections::BTreeMap<&str, Vec<Value>> = Default::default();
    aws.rt.block_on(async {
        for table in ["alerts", HISTORY_TABLE] {
            dynamo
                .update_continuous_backups()
                .table_name(table)
                .point_in_time_recovery_specification(
                    aws_sdk_dynamodb::types::PointInTimeRecoverySpecification::builder()
                        .point_in_time_recovery_enabled(true)
                        .build()
                        .unwrap(),
                )
                .send()
                .await
                .unwrap();
            let arn = dynamo.describe_table().table_name(table).send().await.unwrap().table.unwrap().table_arn.unwrap();
            dynamo
                .export_table_to_point_in_time()
                .table_arn(arn)
                .s3_bucket("evidence")
                .s3_prefix(format!("exports/{table}"))
                .export_format(aws_sdk_dynamodb::types::ExportFormat::DynamodbJson)
                .send()
                .await
                .unwrap();
        }
        // moto writes the data file only: the manifests go around it, in AWS's layout.
        let listed = s3.list_objects_v2().bucket("evidence").prefix("exports/").send().await.unwrap();
        let data: Vec<String> = listed.contents().iter().filter_map(|o| o.key().map(str::to_owned)).collect();
        assert_eq!(data.len(), 2, "{data:?}");
        for key in data {
            let dir = key.split("/data/").next().unwrap().to_owned();
            let body = s3.get_object().bucket("evidence").key(&key).send().await.unwrap().body.collect().await.unwrap();
            let mut text = String::new();
            std::io::Read::read_to_string(&mut flate2::read::GzDecoder::new(&body.into_bytes()[..]), &mut text).unwrap();
            let count = text.lines().filter(|l| !l.is_empty()).count();
            let table = if key.contains("exports/alerts") { "sentinel_alerts_exports" } else { "sentinel_history_exports" };
            exported.entry(table).or_default().extend(text.lines().filter_map(|l| serde_json::from_str::<Value>(l).ok()));
            let files = json!({"itemCount": count, "md5Checksum": "-", "etag": "-", "dataFileS3Key": key}).to_string();
            let summary = json!({"version": "2020-06-30", "exportArn": format!("arn:aws:dynamodb:eu-west-1:123456789012:table/x/export/{dir}"),
                "exportTime": "2024-05-03T00:00:00Z", "outputFormat": "DYNAMODB_JSON", "exportType": "FULL_EXPORT", "itemCount": count});
            for (name, body) in [("manifest-files.json", files + "\n"), ("manifest-summary.json", summary.to_string())] {
                s3.put_object().bucket("evidence").key(format!("{dir}/{name}")).body(body.into_bytes().into()).send().await.unwrap();
            }
        }
    });
    athena_columns_match(&exported);
    let report_dir = dir.path().join("report");
    let out = run(&["report", "s3://evidence/exports", "--out", report_dir.to_str().unwrap()]);
    assert!(out.status.success(), "{out:?}");
    let summary: Value =
        serde_json::from_str(&std::fs::read_to_string(report_dir.join("summary.json")).unwrap()).unwrap();
    assert_eq!(summary["alerts"], 1);
    assert_eq!(summary["by_status"]["acknowledged"], 1);
    assert_eq!(summary["time_to_acknowledge"]["count"], 1, "{summary:#}");
    let page = std::fs::read_to_string(report_dir.join("index.html")).unwrap();
    let revisions: std::collections::BTreeSet<&str> =
        ["signals", "status"].into_iter().filter(|w| page.contains(&format!("<td>{w}</td>"))).collect();
    assert_eq!(revisions.len(), 2, "the timeline holds the signals' revision and the status change");
    assert!(page.contains("investigating"));
}
