//! Driving the engine in tests: audit events built by name, alerts collected
//! and each one checked against the alert JSON Schema.

use std::sync::OnceLock;

use sentinel_core::alert::Alert;
use sentinel_core::decode::{Decoded, Options, decode_bytes, decode_cloudtrail_bytes};
use sentinel_core::engine::{Engine, Stats};
use sentinel_core::fault::Fault;
use sentinel_core::plan::ChangePlan;
use sentinel_core::policy::{Pattern, Policy};
use sentinel_core::rules::RuleId;
use sentinel_core::store::{MemoryStore, Plans, Quarantined, Sink, Store};
use serde_json::{Value, json};

/// The alert contract, compiled once.
fn schema() -> &'static jsonschema::Validator {
    static SCHEMA: OnceLock<jsonschema::Validator> = OnceLock::new();
    SCHEMA.get_or_init(|| {
        let text = include_str!("../../shared/core/schema/alert.schema.json");
        jsonschema::validator_for(&serde_json::from_str(text).unwrap()).unwrap()
    })
}

/// Panics unless `alert` follows the alert JSON Schema.
pub fn assert_valid_alert(alert: &Value) {
    let errors: Vec<String> = schema().iter_errors(alert).map(|e| format!("{} at {}", e, e.instance_path())).collect();
    assert!(errors.is_empty(), "alert violates the schema: {errors:#?}\n{alert:#}");
}

/// Collects what the engine outputs, checking each alert against the schema.
#[derive(Default)]
pub struct Collect {
    /// Every revision published, in order.
    pub published: Vec<Alert>,
    /// Every record quarantined: (where, why, raw bytes).
    pub quarantined: Vec<(String, String, Option<Vec<u8>>)>,
    /// Every raw event kept as evidence: (cluster, audit id, bytes).
    pub kept: Vec<(String, String, Vec<u8>)>,
}

impl Sink for Collect {
    fn publish(&mut self, alert: &Alert) -> Result<(), Fault> {
        assert_valid_alert(&serde_json::to_value(alert).unwrap());
        self.published.push(alert.clone());
        Ok(())
    }

    fn quarantine(&mut self, record: &Quarantined<'_>) -> Result<(), Fault> {
        self.quarantined.push((record.location.to_string(), record.reason.to_owned(), record.raw.map(<[u8]>::to_vec)));
        Ok(())
    }

    fn keep_event(&mut self, cluster: &str, audit_id: &str, raw: &[u8]) -> Result<(), Fault> {
        self.kept.push((cluster.to_owned(), audit_id.to_owned(), raw.to_vec()));
        Ok(())
    }
}

impl Collect {
    /// The latest revision of each alert, in order of opening.
    pub fn alerts(&self) -> Vec<&Alert> {
        let mut out: Vec<&Alert> = Vec::new();
        for a in &self.published {
            match out.iter_mut().find(|o| o.alert_id == a.alert_id) {
                Some(o) => *o = a,
                None => out.push(a),
            }
        }
        out
    }

    /// Every rule that fired, sorted, without repeats.
    pub fn rules(&self) -> Vec<RuleId> {
        let mut rules: Vec<RuleId> = self.alerts().iter().flat_map(|a| a.signals.iter().map(|s| s.rule)).collect();
        rules.sort();
        rules.dedup();
        rules
    }
}

/// The policy the rule tests run under: change plans required, weekday
/// windows 09:00–17:00 UTC, a CI role and Argo CD approved, known hosts for
/// `shop`, and no wait for CloudTrail (the identity tests set their own grace period).
pub const TEST_POLICY: &str = r#"
cluster = "test"
require_plans = true
sensitive_namespaces = ["vault"]
[[windows]]
name = "business hours"
days = ["mon", "tue", "wed", "thu", "fri"]
start = "09:00"
end = "17:00"
[[actors]]
name = "ci"
iam_role_arn = "arn:aws:iam::111122223333:role/Deploy"
[[actors]]
name = "gitops"
service_account = "argocd:*"
anytime = true
[[hosts]]
namespaces = ["shop"]
patterns = ["shop.example.com", "*.shop.example.com"]
[identity]
unresolved_grace = "0s"
"#;

/// A plan letting the CI role change anything in `namespace` during 2024.
pub fn ci_plan(namespace: &str) -> ChangePlan {
    ChangePlan {
        id: format!("plan-{namespace}"),
        cluster: "test".into(),
        namespace: namespace.into(),
        name: Pattern::new("*").unwrap(),
        actor: Pattern::new("arn:aws:iam::111122223333:role/Deploy").unwrap(),
        valid_from: "2024-01-01T00:00:00Z".parse().unwrap(),
        valid_until: "2025-01-01T00:00:00Z".parse().unwrap(),
        digest: None,
        ticket: None,
    }
}

/// A Kubernetes user authenticated through an IAM role session.
pub fn iam_user(role: &str, session: &str, key: &str) -> Value {
    let arn = format!("arn:aws:sts::111122223333:assumed-role/{role}/{session}");
    json!({
        "username": format!("{}:{}", role.to_lowercase(), session.replace('@', "-")),
        "uid": "aws-iam-authenticator:111122223333:AROAEXAMPLE",
        "groups": ["system:authenticated"],
        "extra": {"accessKeyId": [key], "arn": [arn], "canonicalArn": [format!("arn:aws:iam::111122223333:role/{role}")],
                  "principalId": ["AROAEXAMPLE"], "sessionName": [session]}
    })
}

/// The approved CI role.
pub fn ci() -> Value {
    iam_user("Deploy", "gha-run-1", "ASIACI")
}

/// An unapproved person with a named session.
pub fn mallory() -> Value {
    iam_user("Admin", "mallory@example.com", "ASIAMALLORY")
}

/// A service account.
pub fn service_account(ns: &str, name: &str) -> Value {
    json!({"username": format!("system:serviceaccount:{ns}:{name}"), "groups": ["system:serviceaccounts"],
           "extra": {"authentication.kubernetes.io/pod-name": [format!("{name}-0")]}})
}

/// An audit event of a write.
// One argument per audit-event field a test varies; a builder would only hide them.
#[allow(clippy::too_many_arguments)]
pub fn write(
    id: &str,
    verb: &str,
    resource: &str,
    ns: &str,
    name: &str,
    time: &str,
    user: Value,
    body: Option<&Value>,
) -> Value {
    let group = match resource {
        "ingresses" | "ingressclasses" => "networking.k8s.io",
        "gateways" | "httproutes" => "gateway.networking.k8s.io",
        _ => "",
    };
    let mut e = json!({
        "kind": "Event", "apiVersion": "audit.k8s.io/v1", "level": "RequestResponse", "auditID": id,
        "stage": "ResponseComplete", "verb": verb, "user": user, "sourceIPs": ["192.0.2.7"], "userAgent": "kubectl/v1.30.2",
        "objectRef": {"resource": resource, "namespace": ns, "name": name, "apiGroup": group, "apiVersion": "v1"},
        "responseStatus": {"metadata": {}, "code": if verb == "create" { 201 } else { 200 }},
        "requestReceivedTimestamp": time, "stageTimestamp": time
    });
    if let Some(body) = body {
        e["requestObject"] = body.clone();
        e["responseObject"] = body.clone();
    }
    e
}

/// An Ingress in `shop` with TLS, an allowlist, auth and custom headers.
pub fn storefront() -> Value {
    json!({
        "apiVersion": "networking.k8s.io/v1", "kind": "Ingress",
        "metadata": {"name": "web", "namespace": "shop", "annotations": {
            "nginx.ingress.kubernetes.io/allowlist-source-range": "10.0.0.0/8",
            "nginx.ingress.kubernetes.io/auth-url": "https://auth.shop.svc/verify",
            "nginx.ingress.kubernetes.io/custom-headers": "shop/security-headers",
            "alb.ingress.kubernetes.io/scheme": "internal"
        }},
        "spec": {
            "ingressClassName": "nginx",
            "rules": [{"host": "shop.example.com", "http": {"paths": [
                {"path": "/", "pathType": "Prefix", "backend": {"service": {"name": "web", "port": {"number": 80}}}}
            ]}}],
            "tls": [{"hosts": ["shop.example.com"], "secretName": "web-tls"}]
        }
    })
}

/// The engine over an in-memory store with a policy.
pub struct Harness {
    /// The policy.
    pub policy: Policy,
    /// The store.
    pub store: MemoryStore,
    /// What was published.
    pub sink: Collect,
    stats: Stats,
}

impl Harness {
    /// A harness under [`TEST_POLICY`] with CI plans for `shop`.
    pub fn new() -> Self {
        Self::with_policy(TEST_POLICY)
    }

    /// A harness under another policy.
    pub fn with_policy(policy: &str) -> Self {
        let h = Self {
            policy: Policy::from_toml(policy).unwrap(),
            store: MemoryStore::new(),
            sink: Collect::default(),
            stats: Stats::default(),
        };
        h.store.put_plan(&ci_plan("shop"), "2024-01-01T00:00:00Z".parse().unwrap()).unwrap();
        h
    }

    /// Feeds audit events (JSON lines through the real decoder) to the engine.
    pub fn feed(&mut self, events: &[Value]) -> &mut Self {
        self.feed_both(events, &[])
    }

    /// Feeds audit events and CloudTrail records together, in time order, as replay does.
    pub fn feed_both(&mut self, audit: &[Value], cloudtrail: &[Value]) -> &mut Self {
        let lines = |events: &[Value]| -> String { events.iter().map(|e| format!("{e}\n")).collect() };
        let (audit, trail) = (lines(audit), lines(cloudtrail));
        feed_bytes(&self.policy, &self.store, &mut self.sink, &mut self.stats, audit.as_bytes(), trail.as_bytes());
        self
    }

    /// Feeds one input in any framing (an envelope, a Lambda event), as delivered.
    pub fn feed_delivery(&mut self, bytes: &[u8]) -> &mut Self {
        feed_bytes(&self.policy, &self.store, &mut self.sink, &mut self.stats, bytes, &[]);
        self
    }

    /// What the engine counted over every feed.
    pub fn stats(&self) -> &Stats {
        &self.stats
    }
}

impl Default for Harness {
    fn default() -> Self {
        Self::new()
    }
}

/// Decodes audit and CloudTrail bytes and runs every relevant event through a fresh engine on `store`.
pub fn feed_bytes(
    policy: &Policy,
    store: &dyn Store,
    sink: &mut Collect,
    stats: &mut Stats,
    audit: &[u8],
    trail: &[u8],
) {
    let (mut records, mut trails) = (Vec::new(), Vec::new());
    let mut collect = |d: Decoded| match d {
        Decoded::Event(e) => records.push(*e),
        Decoded::CloudTrail(t) => trails.push(*t),
        other => panic!("test input failed to decode: {other:?}"),
    };
    if !audit.is_empty() {
        decode_bytes("audit", audit, &Options::default(), &mut collect);
    }
    if !trail.is_empty() {
        decode_cloudtrail_bytes("cloudtrail", trail, &Options::default(), &mut collect);
    }
    records.sort_by_key(|r| r.time());
    trails.sort_by_key(|t| t.event.event_time);
    let mut engine = Engine::new(policy, store);
    engine.run(&records, &trails, sink).unwrap();
    stats.merge(engine.stats());
}
