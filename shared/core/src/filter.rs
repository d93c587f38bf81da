//! Which audit events matter: writes that succeeded (or were denied) to the
//! objects that make up the Ingress layer.
//!
//! Decided in two steps so the flood of get/list/watch traffic costs a byte
//! search and no JSON parse:
//!
//! 1. [`prefilter`] looks at the raw bytes for a `"verb"` key whose value is a
//!    write and a `"resource"` key whose value is a tracked resource. It is
//!    conservative: key order and whitespace do not matter, and inside a
//!    CloudWatch Logs envelope (where each event is a JSON string) it looks for
//!    the escaped form, so only hits are unescaped.
//! 2. [`judge`] parses only the few fields it needs ([`Header`]) and applies
//!    the exact rules: API group, `status` subresource, stage, response code.

use std::borrow::Cow;

use memchr::memmem;
use serde::Deserialize;

use crate::audit::{Kind, Verb};

/// True if `group`/`resource` is a tracked [`Kind`]. A record without an API
/// group is matched on the resource alone: the API server always writes the
/// group, but hand-made and re-exported records often drop it, and no
/// core-group resource shares a name with a tracked one in another group.
pub fn is_tracked(group: Option<&str>, resource: &str) -> bool {
    Kind::from_resource(resource).is_some_and(|k| group.is_none_or(|g| k.groups().contains(&g)))
}

struct Patterns {
    verb_key: memmem::Finder<'static>,
    resource_key: memmem::Finder<'static>,
    verbs: Vec<Vec<u8>>,
    resources: Vec<Vec<u8>>,
    quote: &'static [u8],
}

impl Patterns {
    fn new(escaped: bool) -> Self {
        let quote: &'static [u8] = if escaped { b"\\\"" } else { b"\"" };
        let quoted = |s: &str| [quote, s.as_bytes(), quote].concat();
        let leak = |v: Vec<u8>| -> memmem::Finder<'static> { memmem::Finder::new(&v).into_owned() };
        Self {
            verb_key: leak(quoted("verb")),
            resource_key: leak(quoted("resource")),
            verbs: Verb::WRITES.iter().map(|v| quoted(v.as_str())).collect(),
            resources: Kind::ALL.iter().map(|k| quoted(k.resource())).collect(),
            quote,
        }
    }

    /// True if some occurrence of `key` is followed by `:` and one of `values`.
    fn key_has_value(&self, bytes: &[u8], key: &memmem::Finder<'_>, values: &[Vec<u8>]) -> bool {
        let key_len = key.needle().len();
        key.find_iter(bytes).any(|at| {
            let mut rest = &bytes[at + key_len..];
            rest = trim_ws(rest);
            let Some(after_colon) = rest.strip_prefix(b":") else { return false };
            let value = trim_ws(after_colon);
            value.starts_with(self.quote) && values.iter().any(|v| value.starts_with(v))
        })
    }
}

/// Skips JSON whitespace, raw or (inside an escaped record) as `\n`, `\r`, `\t`.
fn trim_ws(mut bytes: &[u8]) -> &[u8] {
    loop {
        match bytes {
            [b' ' | b'\t' | b'\n' | b'\r', rest @ ..] | [b'\\', b'n' | b'r' | b't', rest @ ..] => bytes = rest,
            _ => return bytes,
        }
    }
}

/// Byte-level test: could this record be a write to a tracked resource?
/// `escaped` says the record is the inside of a JSON string (quotes appear as `\"`).
/// Never false for a record that [`judge`] would keep.
pub fn prefilter(bytes: &[u8], escaped: bool) -> bool {
    use std::sync::OnceLock;
    static PLAIN: OnceLock<Patterns> = OnceLock::new();
    static ESCAPED: OnceLock<Patterns> = OnceLock::new();
    let p =
        if escaped { ESCAPED.get_or_init(|| Patterns::new(true)) } else { PLAIN.get_or_init(|| Patterns::new(false)) };
    p.key_has_value(bytes, &p.verb_key, &p.verbs) && p.key_has_value(bytes, &p.resource_key, &p.resources)
}

/// The few fields [`judge`] needs, borrowed where the JSON allows.
#[derive(Debug, Deserialize)]
pub struct Header<'a> {
    /// `Event` for audit events.
    #[serde(borrow, default)]
    pub kind: Option<Cow<'a, str>>,
    /// The request verb.
    #[serde(borrow, default)]
    pub verb: Option<Cow<'a, str>>,
    /// The audit stage.
    #[serde(borrow, default)]
    pub stage: Option<Cow<'a, str>>,
    /// The object acted on.
    #[serde(borrow, default, rename = "objectRef")]
    pub object_ref: Option<HeaderRef<'a>>,
    /// The response.
    #[serde(default, rename = "responseStatus")]
    pub response_status: Option<HeaderStatus>,
}

/// The object reference fields [`judge`] needs.
#[derive(Debug, Deserialize)]
pub struct HeaderRef<'a> {
    /// Plural resource name.
    #[serde(borrow, default)]
    pub resource: Option<Cow<'a, str>>,
    /// API group; absent for the core group.
    #[serde(borrow, default, rename = "apiGroup")]
    pub api_group: Option<Cow<'a, str>>,
    /// Subresource, e.g. `status`.
    #[serde(borrow, default)]
    pub subresource: Option<Cow<'a, str>>,
}

/// The response code.
#[derive(Debug, Deserialize)]
pub struct HeaderStatus {
    /// HTTP status code.
    #[serde(default)]
    pub code: Option<u16>,
}

/// Why an audit record was passed over.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SkipReason {
    /// Not a write, or not to a tracked resource.
    NotRelevant,
    /// A write to the `status` subresource (controllers do this all day).
    StatusSubresource,
    /// The write failed for a reason other than authorization.
    Unsuccessful,
    /// A stage other than `ResponseComplete` (the complete record follows).
    IncompleteStage,
    /// JSON that is not an audit event, or plain log text.
    NotAuditEvent,
    /// A CloudWatch Logs `CONTROL_MESSAGE` health check.
    ControlMessage,
}

impl SkipReason {
    /// A short name for reports.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::NotRelevant => "not_relevant",
            Self::StatusSubresource => "status_subresource",
            Self::Unsuccessful => "unsuccessful",
            Self::IncompleteStage => "incomplete_stage",
            Self::NotAuditEvent => "not_audit_event",
            Self::ControlMessage => "control_message",
        }
    }
}

/// What to do with an audit record.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// A successful write to a tracked object.
    Kept,
    /// A write to a tracked object refused by authorization (HTTP 403).
    Denied,
    /// Not of interest.
    Skip(SkipReason),
}

/// Applies the relevance rules to a parsed [`Header`].
///
/// A record without a response code is kept: it cannot be shown to have
/// failed, and missing a real change costs more than judging a failed one.
pub fn judge(header: &Header<'_>) -> Verdict {
    if header.kind.as_deref().is_some_and(|k| k != "Event") {
        return Verdict::Skip(SkipReason::NotAuditEvent);
    }
    let verb = header.verb.as_deref().unwrap_or_default();
    let Some(object) = &header.object_ref else { return Verdict::Skip(SkipReason::NotRelevant) };
    let resource = object.resource.as_deref().unwrap_or_default();
    let group = object.api_group.as_deref();
    if Verb::parse(verb) == Verb::Other || !is_tracked(group, resource) {
        return Verdict::Skip(SkipReason::NotRelevant);
    }
    if object.subresource.as_deref().is_some_and(|s| !s.is_empty()) {
        return Verdict::Skip(SkipReason::StatusSubresource);
    }
    if header.stage.as_deref().is_some_and(|s| s != "ResponseComplete") {
        return Verdict::Skip(SkipReason::IncompleteStage);
    }
    match header.response_status.as_ref().and_then(|s| s.code) {
        None | Some(200..=299) => Verdict::Kept,
        Some(403) => Verdict::Denied,
        Some(_) => Verdict::Skip(SkipReason::Unsuccessful),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn verdict(json: &str) -> Verdict {
        judge(&serde_json::from_str(json).expect("valid header"))
    }

    #[test]
    fn prefilter_needs_a_write_verb_and_a_tracked_resource_in_any_key_order() {
        assert!(prefilter(br#"{"objectRef":{"resource": "ingresses"},"verb" : "patch"}"#, false));
        assert!(!prefilter(br#"{"verb":"watch","objectRef":{"resource":"ingresses"}}"#, false));
        assert!(!prefilter(br#"{"verb":"update","objectRef":{"resource":"leases"}}"#, false));
        // "delete" must not match inside "deletecollection" and vice versa.
        assert!(prefilter(br#"{"verb":"deletecollection","objectRef":{"resource":"secrets"}}"#, false));
        // A value that merely mentions a verb is not a verb.
        assert!(!prefilter(br#"{"verb":"get","note":"update","objectRef":{"resource":"ingresses"}}"#, false));
    }

    #[test]
    fn prefilter_reads_the_escaped_form_inside_envelopes() {
        let escaped = br#""{\"verb\":\"update\",\"objectRef\":{\"resource\":\"ingresses\"}}""#;
        assert!(prefilter(escaped, true));
        assert!(!prefilter(escaped, false));
    }

    #[test]
    fn judge_applies_group_subresource_stage_and_status() {
        let base = r#""kind":"Event","verb":"update","stage":"ResponseComplete""#;
        let ing = r#""objectRef":{"resource":"ingresses","apiGroup":"networking.k8s.io""#;
        assert_eq!(verdict(&format!(r#"{{{base},{ing}}},"responseStatus":{{"code":200}}}}"#)), Verdict::Kept);
        assert_eq!(verdict(&format!(r#"{{{base},{ing}}},"responseStatus":{{"code":403}}}}"#)), Verdict::Denied);
        assert_eq!(
            verdict(&format!(r#"{{{base},{ing}}},"responseStatus":{{"code":409}}}}"#)),
            Verdict::Skip(SkipReason::Unsuccessful)
        );
        assert_eq!(
            verdict(&format!(r#"{{{base},{ing},"subresource":"status"}}}}"#)),
            Verdict::Skip(SkipReason::StatusSubresource)
        );
        assert_eq!(
            verdict(r#"{"verb":"update","stage":"RequestReceived","objectRef":{"resource":"secrets"}}"#),
            Verdict::Skip(SkipReason::IncompleteStage)
        );
        // Knative also has "services"; only the core group counts.
        assert_eq!(
            verdict(r#"{"verb":"create","objectRef":{"resource":"services","apiGroup":"serving.knative.dev"}}"#),
            Verdict::Skip(SkipReason::NotRelevant)
        );
        assert_eq!(
            verdict(r#"{"verb":"create","objectRef":{"resource":"ingresses","apiGroup":"extensions"}}"#),
            Verdict::Kept
        );
        assert_eq!(verdict(r#"{"kind":"Status","verb":"create"}"#), Verdict::Skip(SkipReason::NotAuditEvent));
        // No group at all: matched on the resource name.
        assert_eq!(verdict(r#"{"verb":"update","objectRef":{"resource":"ingresses"}}"#), Verdict::Kept);
        assert_eq!(
            verdict(r#"{"verb":"update","objectRef":{"resource":"ingresses","apiGroup":""}}"#),
            Verdict::Skip(SkipReason::NotRelevant)
        );
    }
}
