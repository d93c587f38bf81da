//! Alerts published to SNS.
//!
//! Each revision is one message with a body per protocol (`MessageStructure:
//! json`): e-mail subscribers get the escaped text rendering (what happened,
//! to which object, who, why it matters, what to check next); SQS, Lambda,
//! HTTPS and every other protocol get the alert JSON. Message attributes
//! carry what subscription filter policies select on (severity, cluster,
//! namespaces, rules, id, revision, and `event`: signals, identity or
//! status). Both bodies together fit SNS's 256 KB: the text is cut first,
//! then the JSON loses evidence and points at the full item in the alerts
//! table; nothing is dropped. An optional chat topic gets the AWS Chatbot
//! custom-notification rendering.

use aws_sdk_sns::Client;
use aws_sdk_sns::types::MessageAttributeValue;
use sentinel_core::alert::Alert;
use sentinel_core::fault::Fault;
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
    chat_topic_arn: Option<String>,
    alerts_table: String,
    handle: Handle,
}

impl SnsSink {
    /// A sink on a topic; `alerts_table` is named in shortened messages.
    pub fn new(client: Client, topic_arn: impl Into<String>, alerts_table: impl Into<String>, handle: Handle) -> Self {
        Self { client, topic_arn: topic_arn.into(), chat_topic_arn: None, alerts_table: alerts_table.into(), handle }
    }

    /// The same sink, also publishing the chat rendering to `topic_arn`.
    #[must_use]
    pub fn with_chat_topic(mut self, topic_arn: Option<String>) -> Self {
        self.chat_topic_arn = topic_arn;
        self
    }
}

/// Most of the message the e-mail text may take.
const TEXT_BUDGET: usize = 32 * 1024;

/// The e-mail rendering, cut to [`TEXT_BUDGET`] at a line, saying where the rest is.
pub fn email_text(alert: &Alert) -> String {
    let text = alert.to_text();
    if text.len() <= TEXT_BUDGET {
        return text;
    }
    let mut cut = sentinel_core::bound::prefix(&text, TEXT_BUDGET - 256).to_owned();
    if let Some(line) = cut.rfind('\n') {
        cut.truncate(line + 1);
    }
    cut.push_str(&format!("  … cut: the full alert is item {} of the alerts table\n", alert.alert_id));
    cut
}

/// The message: a body per protocol, within SNS's limit together.
pub fn message(alert: &Alert, alerts_table: &str) -> String {
    let text = email_text(alert);
    // The structure escapes both bodies again as JSON strings: measured,
    // and the alert JSON given less room until the whole fits.
    let mut budget = BUDGET.saturating_sub(text.len());
    loop {
        let json = shorten_to(alert, alerts_table, budget);
        let structure = json!({"default": json, "email": text}).to_string();
        if structure.len() <= BUDGET || budget < 4096 {
            return structure;
        }
        budget -= (structure.len() - BUDGET).max(budget / 8);
    }
}

/// The alert JSON within `budget` bytes: whole if it fits, else without
/// evidence and with a pointer to its item in the alerts table.
fn shorten_to(alert: &Alert, alerts_table: &str, budget: usize) -> String {
    let full = serde_json::to_string(alert).unwrap_or_default();
    if full.len() <= budget {
        return full;
    }
    let mut value = serde_json::to_value(alert).unwrap_or(Value::Null);
    let mut signals: Vec<Value> = match value.get_mut("signals").map(Value::take) {
        Some(Value::Array(list)) => list,
        _ => Vec::new(),
    };
    for s in &mut signals {
        s["evidence"] = json!({"omitted": true});
    }
    // Keep the newest signals that fit beside the rest of the alert.
    let size = |v: &Value| serde_json::to_string(v).map_or(0, |t| t.len());
    let mut room = budget.saturating_sub(size(&value) + 512);
    let mut start = signals.len();
    while start > 0 {
        let next = size(&signals[start - 1]) + 1;
        if next > room {
            break;
        }
        room -= next;
        start -= 1;
    }
    // Never fewer than the newest signal.
    let kept = signals.split_off(start.min(signals.len().saturating_sub(1)));
    value["signals"] = Value::Array(kept);
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
        ("event", string(alert.revised_for.as_str())),
        ("status", string(alert.status.as_str())),
    ];
    attrs.into_iter().filter_map(|(k, v)| v.ok().map(|v| (k.to_owned(), v))).collect()
}

/// An SNS subject: ASCII, one line, at most 100 characters.
fn subject(alert: &Alert) -> String {
    let raw = format!("[{}] {}", alert.severity.as_str().to_uppercase(), alert.title);
    let clean: String = raw.chars().map(|c| if c.is_ascii_graphic() || c == ' ' { c } else { '?' }).collect();
    clean.chars().take(100).collect()
}

impl SnsSink {
    /// Publishes one alert revision. Call from a blocking thread.
    pub fn publish(&self, alert: &Alert) -> Result<(), Fault> {
        self.publish_with(alert, async { Ok(()) })
    }

    /// Publishes one alert revision while `alongside` runs (one round trip
    /// for both); fails if either fails. Call from a blocking thread.
    pub fn publish_with(&self, alert: &Alert, alongside: impl Future<Output = Result<(), Fault>>) -> Result<(), Fault> {
        let (published, other) = self.handle.block_on(async { tokio::join!(self.send(alert), alongside) });
        published.and(other)
    }

    async fn send(&self, alert: &Alert) -> Result<(), Fault> {
        let mut request = self
            .client
            .publish()
            .topic_arn(&self.topic_arn)
            .subject(subject(alert))
            .message_structure("json")
            .message(message(alert, &self.alerts_table));
        for (k, v) in message_attributes(alert) {
            request = request.message_attributes(k, v);
        }
        let failed = |topic: &str| {
            let operation = format!("SNS Publish of alert {} rev {} to {topic}", alert.alert_id, alert.revision);
            move |e| crate::fault::from_sdk(operation, e)
        };
        request.send().await.map_err(failed(&self.topic_arn))?;
        if let Some(chat) = &self.chat_topic_arn {
            // At most ten signals, each one bounded line: well inside the limit.
            let request = self.client.publish().topic_arn(chat).message(alert.to_chat().to_string());
            request.send().await.map_err(failed(chat))?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sentinel_core::actor::Actor;
    use sentinel_core::alert::{IdentityStatus, Resource, Signal};
    use sentinel_core::rules::{RuleId, Severity};

    fn alert(evidence_bytes: usize, signals: usize) -> Alert {
        let signal = |i: usize| Signal {
            rule: RuleId::SnippetInjected,
            severity: Severity::Critical,
            summary: format!("snippet {i}"),
            evidence: json!({"to": "x".repeat(evidence_bytes)}),
            audit_id: format!("a{i}"),
            time: "2024-05-02T02:00:00Z".parse().unwrap(),
            resource: Resource { kind: "ingresses".into(), namespace: Some("shop".into()), name: Some("web".into()) },
        };
        let actor = Actor { kubernetes_username: "mallory".into(), ..Actor::default() };
        Alert::open(
            "isa-test".into(),
            "prod",
            &actor,
            "mallory",
            IdentityStatus::Kubernetes,
            (0..signals).map(signal).collect(),
            false,
        )
        .unwrap()
    }

    #[test]
    fn a_small_alert_is_sent_whole() {
        let a = alert(100, 2);
        assert_eq!(shorten_to(&a, "alerts", BUDGET), serde_json::to_string(&a).unwrap());
    }

    #[test]
    fn an_alert_over_the_limit_is_shortened_with_a_pointer_never_dropped() {
        let a = alert(200 * 1024, 3);
        let body = shorten_to(&a, "alerts-table", BUDGET);
        assert!(body.len() <= BUDGET, "{}", body.len());
        let v: Value = serde_json::from_str(&body).unwrap();
        assert_eq!(v["alert_id"], a.alert_id);
        assert_eq!(v["truncated"]["table"], "alerts-table");
        assert_eq!(v["truncated"]["key"]["alert_id"], a.alert_id);
        assert_eq!(v["signals"].as_array().unwrap().len(), 3);
        assert_eq!(v["signals"][0]["evidence"], json!({"omitted": true}));
        // So many signals that even without evidence they do not fit: the newest are kept.
        let many = alert(10, 6000);
        let v: Value = serde_json::from_str(&shorten_to(&many, "t", BUDGET)).unwrap();
        let kept = v["signals"].as_array().unwrap();
        assert!(kept.len() < 6000 && !kept.is_empty());
        assert_eq!(kept.last().unwrap()["audit_id"], "a5999");
    }

    /// Both bodies of the message fit SNS's limit together, however large
    /// the alert, and each says what it is.
    #[test]
    fn every_protocol_variant_fits_together() {
        for (evidence, signals) in [(10, 1), (200_000, 1), (900, 250), (30_000, 40)] {
            let a = alert(evidence, signals);
            let m = message(&a, "alerts");
            assert!(m.len() <= BUDGET, "{} bytes for {evidence}×{signals}", m.len());
            let v: Value = serde_json::from_str(&m).unwrap();
            let json: Value = serde_json::from_str(v["default"].as_str().unwrap()).unwrap();
            assert_eq!(json["alert_id"], a.alert_id);
            let text = v["email"].as_str().unwrap();
            assert!(text.starts_with("[CRITICAL] "), "{}", &text[..40]);
            assert!(text.contains("next (ingress.snippet.injected): "), "the runbook line");
        }
    }

    #[test]
    fn attributes_carry_what_filter_policies_select_on() {
        let attrs = message_attributes(&alert(10, 1));
        let get = |k: &str| attrs.iter().find(|(n, _)| n == k).and_then(|(_, v)| v.string_value.clone()).unwrap();
        assert_eq!(get("severity"), "critical");
        assert_eq!(get("cluster"), "prod");
        assert_eq!(get("rule_ids"), "[\"ingress.snippet.injected\"]");
        assert_eq!(get("namespaces"), "[\"shop\"]");
    }
}
