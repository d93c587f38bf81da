//! CloudWatch metrics in the embedded metric format: one JSON line per
//! invocation on standard output, which Lambda sends to CloudWatch Logs and
//! CloudWatch turns into metrics (namespace `IngressSentinel`, dimension
//! `Function`: the deployed function's name, so two stacks in one account
//! keep their metrics apart). No API call, so a metric can never fail an
//! invocation.

use sentinel_core::engine::Stats;
use serde_json::json;

use crate::handler::Report;

/// The namespace of every metric.
pub const NAMESPACE: &str = "IngressSentinel";

/// The metric document for one invocation.
pub fn document(function: &str, report: &Report, stats: &Stats, failures: usize, now_ms: i64) -> serde_json::Value {
    let names = [
        "RecordsRead",
        "RelevantEvents",
        "QuarantinedRecords",
        "UntrustedEvents",
        "LateEvents",
        "AlertsOpened",
        "AlertRevisions",
        "EnvironmentFailures",
    ];
    let metrics: Vec<serde_json::Value> = names.iter().map(|n| json!({"Name": n, "Unit": "Count"})).collect();
    json!({
        "_aws": {
            "Timestamp": now_ms,
            "CloudWatchMetrics": [{"Namespace": NAMESPACE, "Dimensions": [["Function"]], "Metrics": metrics}]
        },
        "Function": function,
        "RecordsRead": report.counts.records,
        "RelevantEvents": report.counts.kept + report.counts.denied,
        "QuarantinedRecords": report.quarantined,
        "UntrustedEvents": stats.quarantined,
        "LateEvents": stats.late,
        "AlertsOpened": stats.alerts_opened,
        "AlertRevisions": stats.alerts_opened + stats.alerts_updated,
        "EnvironmentFailures": failures,
    })
}

/// Writes the invocation's metrics under the deployed function's name
/// (`function` outside Lambda).
pub fn emit(function: &str, report: &Report, stats: &Stats, failures: usize) {
    let now = chrono::Utc::now().timestamp_millis();
    let name = std::env::var("AWS_LAMBDA_FUNCTION_NAME").unwrap_or_else(|_| function.to_owned());
    println!("{}", document(&name, report, stats, failures, now));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_declared_metric_has_a_value() {
        let report = Report { quarantined: 2, ..Report::default() };
        let doc = document("audit-ingest", &report, &Stats::default(), 1, 0);
        for m in doc["_aws"]["CloudWatchMetrics"][0]["Metrics"].as_array().unwrap() {
            let name = m["Name"].as_str().unwrap();
            assert!(doc[name].is_number(), "{name}");
        }
        assert_eq!(doc["QuarantinedRecords"], 2);
        assert_eq!(doc["EnvironmentFailures"], 1);
    }
}
