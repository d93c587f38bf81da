//! The SAM template, read as data: the subscription filter carries exactly
//! the events the engine acts on, within CloudWatch Logs' 1,024 characters.

use sentinel_core::audit::Kind;
use serde_json::{Value, json};

fn template() -> serde_norway::Value {
    let text = std::fs::read_to_string(sentinel_tests::aws::workspace().join("infra/template.yaml")).unwrap();
    serde_norway::from_str(&text).unwrap()
}

fn filter_pattern() -> String {
    let t = template();
    t["Resources"]["AuditSubscription"]["Properties"]["FilterPattern"].as_str().unwrap().to_owned()
}

/// A CloudWatch Logs JSON filter pattern, evaluated: `{ … }` around `&&`,
/// `||`, parentheses and `$.path = "value"` terms, `*` matching any run of characters.
fn matches(pattern: &str, event: &Value) -> bool {
    let inner = pattern.trim().strip_prefix('{').and_then(|p| p.strip_suffix('}')).expect("a JSON filter pattern");
    let tokens = tokenize(inner);
    let mut pos = 0;
    let result = or(&tokens, &mut pos, event);
    assert_eq!(pos, tokens.len(), "the whole pattern parses");
    result
}

fn tokenize(s: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            ' ' | '\n' => {}
            '(' | ')' => out.push(c.to_string()),
            '&' | '|' => {
                chars.next();
                out.push(format!("{c}{c}"));
            }
            '"' => {
                let mut v = String::new();
                for c in chars.by_ref() {
                    if c == '"' {
                        break;
                    }
                    v.push(c);
                }
                out.push(format!("\"{v}"));
            }
            _ => {
                let mut v = c.to_string();
                while let Some(&n) = chars.peek() {
                    if n == ' ' || n == ')' {
                        break;
                    }
                    v.push(n);
                    chars.next();
                }
                out.push(v);
            }
        }
    }
    out
}

fn or(t: &[String], pos: &mut usize, e: &Value) -> bool {
    let mut v = and(t, pos, e);
    while t.get(*pos).is_some_and(|x| x == "||") {
        *pos += 1;
        v |= and(t, pos, e);
    }
    v
}

fn and(t: &[String], pos: &mut usize, e: &Value) -> bool {
    let mut v = term(t, pos, e);
    while t.get(*pos).is_some_and(|x| x == "&&") {
        *pos += 1;
        v &= term(t, pos, e);
    }
    v
}

fn term(t: &[String], pos: &mut usize, e: &Value) -> bool {
    if t[*pos] == "(" {
        *pos += 1;
        let v = or(t, pos, e);
        assert_eq!(t[*pos], ")");
        *pos += 1;
        return v;
    }
    let (path, op, value) = (&t[*pos], &t[*pos + 1], &t[*pos + 2]);
    *pos += 3;
    assert_eq!(op, "=");
    let pointer = path.strip_prefix("$.").unwrap().replace('.', "/");
    let actual = e.pointer(&format!("/{pointer}")).and_then(Value::as_str).unwrap_or_default();
    glob(value.strip_prefix('"').unwrap(), actual)
}

fn glob(pattern: &str, value: &str) -> bool {
    match pattern.split_once('*') {
        None => pattern == value,
        Some((head, rest)) => {
            value.starts_with(head) && (0..=value.len() - head.len()).any(|i| glob(rest, &value[head.len() + i..]))
        }
    }
}

fn event(verb: &str, resource: &str, subresource: Option<&str>) -> Value {
    let mut e = json!({"verb": verb, "objectRef": {"resource": resource, "namespace": "shop", "name": "x"}});
    if let Some(s) = subresource {
        e["objectRef"]["subresource"] = json!(s);
    }
    e
}

#[test]
fn the_subscription_filter_carries_every_judged_write_and_access_event_and_fits() {
    let pattern = filter_pattern();
    assert!(pattern.len() <= 1024, "{} characters", pattern.len());
    for kind in Kind::ALL {
        for verb in ["create", "update", "patch", "delete", "deletecollection"] {
            assert!(matches(&pattern, &event(verb, kind.resource(), None)), "{verb} {}", kind.resource());
        }
    }
    for (verb, resource, sub) in [
        ("create", "pods", "exec"),
        ("get", "pods", "exec"),
        ("create", "pods", "attach"),
        ("create", "pods", "portforward"),
        ("patch", "pods", "ephemeralcontainers"),
        ("create", "serviceaccounts", "token"),
    ] {
        assert!(matches(&pattern, &event(verb, resource, Some(sub))), "{verb} {resource}/{sub}");
    }
    // The flood stays out: reads, watches, leases, events, pods.
    for (verb, resource) in [
        ("get", "ingresses"),
        ("watch", "ingresses"),
        ("list", "services"),
        ("update", "leases"),
        ("create", "events"),
        ("patch", "pods"),
        ("update", "deployments"),
    ] {
        assert!(!matches(&pattern, &event(verb, resource, None)), "{verb} {resource}");
    }
}

#[test]
fn the_functions_learn_the_audit_source_and_the_evidence_bucket() {
    let t = template();
    let env = &t["Globals"]["Function"]["Environment"]["Variables"];
    for var in
        ["EVIDENCE_BUCKET", "AUDIT_LOG_GROUP", "SOURCE_ACCOUNTS", "STATE_TABLE", "ALERTS_TABLE", "ALERT_TOPIC_ARN"]
    {
        assert!(!env[var].is_null(), "{var}");
    }
    let mapping = &t["Resources"]["AuditStreamMapping"]["Properties"];
    assert_eq!(mapping["FunctionResponseTypes"][0].as_str(), Some("ReportBatchItemFailures"));
    assert_eq!(mapping["BisectBatchOnFunctionError"].as_bool(), Some(true));
    assert!(mapping["MaximumRetryAttempts"].as_u64().is_some_and(|n| n > 0));
    assert!(!mapping["DestinationConfig"]["OnFailure"].is_null());
}
