//! The alert lifecycle and its history: every revision and status change is
//! kept with when and why; a status change names who made it; the person an
//! alert names cannot close it; a new signal reopens a closed alert.

use sentinel_core::alert::{Revised, RevisionRecord, Status};
use sentinel_core::engine::{Caller, Engine, LifecycleError};
use sentinel_core::keys;
use sentinel_core::rules::RuleId;
use sentinel_core::store::{Space, Typed};
use sentinel_tests::engine::*;
use serde_json::json;

fn widened(name: &str) -> serde_json::Value {
    let mut o = storefront();
    o["metadata"]["name"] = json!(name);
    o["metadata"]["annotations"]["nginx.ingress.kubernetes.io/allowlist-source-range"] = json!("0.0.0.0/0");
    o
}

/// A harness where mallory widened an allowlist, and the alert it opened.
fn mallory_widens_the_allowlist() -> (Harness, String) {
    let mut h = Harness::with_policy("cluster = \"test\"\n");
    h.feed(&[
        write("c", "create", "ingresses", "shop", "web", "2024-05-01T10:00:00Z", ci(), Some(&storefront())),
        write("w", "update", "ingresses", "shop", "web", "2024-05-02T02:00:00Z", mallory(), Some(&widened("web"))),
    ]);
    let alert_id = h.sink.alerts()[0].alert_id.clone();
    (h, alert_id)
}

fn history(h: &Harness, alert_id: &str) -> Vec<RevisionRecord> {
    h.store
        .scan_typed::<RevisionRecord>(
            Space::History,
            &keys::revisions(alert_id),
            "2030-01-01T00:00:00Z".parse().unwrap(),
        )
        .unwrap()
        .into_iter()
        .map(|(_, v)| v.value)
        .collect()
}

#[test]
fn status_changes_are_revisions_with_who_when_and_why_and_the_named_person_cannot_close() {
    let (mut h, alert_id) = mallory_widens_the_allowlist();
    let policy = h.policy.clone();
    let mut engine = Engine::new(&policy, &h.store);
    let mallory = Caller { principal: "mallory".into(), on_behalf_of: None };
    // The person the alert names may acknowledge it, not close it.
    let acked = engine.set_status(&alert_id, Status::Acknowledged, "looking", &mallory, &mut h.sink).unwrap();
    assert_eq!((acked.status, acked.revised_for), (Status::Acknowledged, Revised::Status));
    let refused = engine.set_status(&alert_id, Status::FalsePositive, "was me, fine", &mallory, &mut h.sink);
    assert!(matches!(refused, Err(LifecycleError::NamedCaller { .. })), "{refused:?}");
    // Nor under another name that is theirs.
    let disguised = Caller {
        principal: "arn:aws:sts::111122223333:assumed-role/Ops/bob".into(),
        on_behalf_of: Some("mallory".into()),
    };
    assert!(matches!(
        engine.set_status(&alert_id, Status::Resolved, "x", &disguised, &mut h.sink),
        Err(LifecycleError::NamedCaller { .. })
    ));
    let bob = Caller {
        principal: "arn:aws:sts::111122223333:assumed-role/Ops/bob@example.com".into(),
        on_behalf_of: Some("security team".into()),
    };
    let resolved = engine.set_status(&alert_id, Status::Resolved, "allowlist restored", &bob, &mut h.sink).unwrap();
    assert_eq!(resolved.status, Status::Resolved);
    let change = resolved.status_changes.last().unwrap();
    assert_eq!(
        (change.from, change.by.as_str(), change.on_behalf_of.as_deref()),
        (Status::Acknowledged, bob.principal.as_str(), Some("security team"))
    );
    assert!(matches!(
        engine.set_status(&alert_id, Status::Resolved, "again", &bob, &mut h.sink),
        Err(LifecycleError::Unchanged { .. })
    ));
    // Each change was published as its own revision.
    let published: Vec<(u32, Revised)> =
        h.sink.published.iter().filter(|a| a.alert_id == alert_id).map(|a| (a.revision, a.revised_for)).collect();
    assert_eq!(published.last(), Some(&(resolved.revision, Revised::Status)));
    // The history holds every revision: the signals, then each status change.
    let kept = history(&h, &alert_id);
    assert_eq!(kept.iter().map(|r| r.revision).collect::<Vec<_>>(), (1..=resolved.revision).collect::<Vec<_>>());
    assert!(kept[0].signals_added.iter().any(|s| s.rule == RuleId::AllowlistWidened));
    let last = kept.last().unwrap();
    assert_eq!((last.revised_for, last.status), (Revised::Status, Status::Resolved));
    assert_eq!(last.status_change.as_ref().unwrap().reason, "allowlist restored");
}

#[test]
fn a_new_signal_reopens_a_closed_alert() {
    let (mut h, alert_id) = mallory_widens_the_allowlist();
    let policy = h.policy.clone();
    let bob = Caller { principal: "bob".into(), on_behalf_of: None };
    Engine::new(&policy, &h.store).set_status(&alert_id, Status::Resolved, "restored", &bob, &mut h.sink).unwrap();
    let mut snippet = widened("web");
    snippet["metadata"]["annotations"]["nginx.ingress.kubernetes.io/server-snippet"] = json!("return 200;");
    h.feed(&[write("s", "update", "ingresses", "shop", "web", "2024-05-02T02:10:00Z", mallory(), Some(&snippet))]);
    let alert = h.sink.alerts().into_iter().find(|a| a.alert_id == alert_id).unwrap().clone();
    assert_eq!(alert.status, Status::Open);
    let reopened = alert.status_changes.last().unwrap();
    assert_eq!(
        (reopened.from, reopened.status, reopened.by.as_str()),
        (Status::Resolved, Status::Open, "ingress-sentinel")
    );
    assert_eq!(alert.revised_for, Revised::Signals);
}

/// The chat rendering follows the AWS Chatbot custom-notification format,
/// carries each rule's next step, and leaves no Markdown, markup or mention
/// of a hostile actor name live; the e-mail text escapes it too.
#[test]
fn chat_and_text_renderings_neutralise_a_hostile_actor_and_carry_the_runbook() {
    let mut h = Harness::with_policy("cluster = \"test\"\n");
    let hostile = "<script>x</script> *@channel* [click](https://evil.example)\u{1b}[31m\nforged: line";
    h.feed(&[
        write("c", "create", "ingresses", "shop", "web", "2024-05-01T10:00:00Z", ci(), Some(&storefront())),
        write(
            "w",
            "update",
            "ingresses",
            "shop",
            "web",
            "2024-05-02T02:00:00Z",
            json!({"username": hostile, "groups": ["system:authenticated"]}),
            Some(&widened("web")),
        ),
    ]);
    let alert = h.sink.alerts().into_iter().last().unwrap();
    let chat = alert.to_chat();
    assert_eq!((chat["version"].as_str(), chat["source"].as_str()), (Some("1.0"), Some("custom")));
    assert_eq!(chat["content"]["textType"], "client-markdown");
    assert_eq!(chat["metadata"]["threadId"], alert.alert_id.as_str(), "revisions thread together");
    let steps = chat["content"]["nextSteps"].as_array().unwrap();
    assert!(steps.iter().any(|s| s.as_str().unwrap().contains(RuleId::AllowlistWidened.runbook())));
    let text = chat.to_string();
    for live in ["<script>", "*@channel*", "@channel", "[click](", "\u{1b}", "\\nforged"] {
        assert!(!text.contains(live), "{live:?} is live in {text}");
    }
    let rendered = alert.to_text_since(0);
    assert!(!rendered.contains('\u{1b}') && !rendered.contains("\nforged"), "{rendered}");
}
