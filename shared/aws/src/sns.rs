//! Alerts published to SNS.
//!
//! The body is the alert JSON; message attributes carry what subscription
//! filter policies select on (severity, cluster, namespaces, rules, id). An
//! alert over SNS's 256 KB limit is shortened, never dropped: evidence goes,
//! and a pointer to the full item in the alerts table comes in.

use aws_sdk_sns::Client;
use aws_sdk_sns::types::MessageAttributeValue;
use sentinel_core::alert::Alert;
use sentinel_core::store::{AlertSink, SinkError};
use serde_json::{Value, json};
use tokio::runtime::Handle;

/// SNS's limit for a message with its attributes.
const MAX_MESSAGE: usize = 256 * 1024;
/// Room left for attributes and the envelope.
const BUDGET: usize = MAX_MESSAGE - 16 * 1024;

/// Publishes alerts to a topic.
pub struct SnsSink {
    client: Client,
    topic_arn: String,
    alerts_table: String,
    handle: Handle,
}

impl SnsSink {
    /// A sink on a topic; `alerts_table` is named in shortened messages.
    pub fn new(client: Client, topic_arn: impl Into<String>, alerts_table: impl Into<String>, handle: Handle) -> Self {
        Self { client, topic_arn: topic_arn.into(), alerts_table: alerts_table.into(), handle }
    }
}

/// The message body: the alert, shortened if it would not fit.
pub fn shorten(alert: &Alert, alerts_table: &str) -> String {
    let full = serde_json::to_string(alert).unwrap_or_default();
    if full.len() <= BUDGET {
        return full;
    }
    let mut value = serde_json::to_value(alert).unwrap_or(Value::Null);
    if let Some(signals) = value.get_mut("signals").and_then(Value::as_array_mut) {
        for s in signals.iter_mut() {
            s["evidence"] = json!({"omitted": true});
        }
        // Still too long: keep the newest signals that fit.
        while serde_json::to_string(&value).map_or(0, |t| t.len()) > BUDGET {
            let Some(signals) = value.get_mut("signals").and_then(Value::as_array_mut) else { break };
            if signals.len() <= 1 {
                break;
            }
            signals.remove(0);
        }
    }
    value["truncated"] = json!({
        "reason": "the alert exceeds the SNS message limit; the full alert is in the alerts table",
        "table": alerts_table,
        "key": {"alert_id": alert.alert_id},
        "signals": alert.signals.len(),
    });
    serde_json::to_string(&value).unwrap_or_default()
}

/// Attributes for subscription filter policies.
pub fn message_attributes(alert: &Alert) -> Vec<(String, MessageAttributeValue)> {
    let string = |v: &str| MessageAttributeValue::builder().data_type("String").string_value(v).build();
    let array = |v: Vec<String>| {
        MessageAttributeValue::builder().data_type("String.Array").string_value(json!(v).to_string()).build()
    };
    let mut rules: Vec<String> = alert.signals.iter().map(|s| s.rule.as_str().to_owned()).collect();
    rules.sort();
    rules.dedup();
    let mut namespaces: Vec<String> = alert.resources.iter().filter_map(|r| r.namespace.clone()).collect();
    namespaces.sort();
    namespaces.dedup();
    let attrs = [
        ("severity", string(alert.severity.as_str())),
        ("cluster", string(&alert.cluster)),
        ("alert_id", string(&alert.alert_id)),
        (
            "revision",
            MessageAttributeValue::builder().data_type("Number").string_value(alert.revision.to_string()).build(),
        ),
        ("rule_ids", array(rules)),
        ("namespaces", array(namespaces)),
    ];
    attrs.into_iter().filter_map(|(k, v)| v.ok().map(|v| (k.to_owned(), v))).collect()
}

/// An SNS subject: ASCII, one line, at most 100 characters.
fn subject(alert: &Alert) -> String {
    let raw = format!("[{}] {}", alert.severity.as_str().to_uppercase(), alert.title);
    let clean: String = raw.chars().map(|c| if c.is_ascii_graphic() || c == ' ' { c } else { '?' }).collect();
    clean.chars().take(100).collect()
}

impl AlertSink for SnsSink {
    fn publish(&mut self, alert: &Alert) -> Result<(), SinkError> {
        let body = shorten(alert, &self.alerts_table);
        let mut request = self.client.publish().topic_arn(&self.topic_arn).subject(subject(alert)).message(body);
        for (k, v) in message_attributes(alert) {
            request = request.message_attributes(k, v);
        }
        self.handle.block_on(request.send()).map(|_| ()).map_err(|e| SinkError {
            alert_id: alert.alert_id.clone(),
            message: format!("{e}: {:?}", std::error::Error::source(&e)),
            retryable: true,
        })
    }
}
