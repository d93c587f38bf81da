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
//!
//! Besides writes, a few events give a person a service account's power and
//! are kept as [`Verdict::Access`]: exec, attach and port-forward into a pod
//! (kubectl 1.30 and later streams exec over WebSockets, audited as `get`),
//! an ephemeral debug container added to a pod, a token requested for a
//! service account. A later write by that service account names the person
//! as a possible origin.

use std::borrow::Cow;

use memchr::memmem;
use serde::Deserialize;

use crate::audit::{Kind, Verb};

/// Pod subresources that run code in, or reach into, a pod.
pub const POD_ACCESS: &[&str] = &["exec", "attach", "portforward", "ephemeralcontainers"];

/// The kind of access an event gives, if it gives one: `(resource, subresource)`
/// with its verb.
pub fn access(resource: &str, subresource: &str, verb: &str) -> bool {
    match (resource, subresource) {
        ("pods", "ephemeralcontainers") => matches!(verb, "update" | "patch"),
        ("pods", s) if POD_ACCESS.contains(&s) => matches!(verb, "create" | "get"),
        ("serviceaccounts", "token") => verb == "create",
        _ => false,
    }
}

/// True if `group`/`resource` is a tracked [`Kind`]. A record without an API
/// group is matched on the resource alone: the API server always writes the
/// group, but hand-made and re-exported records often drop it, and no
/// core-group resource shares a name with a tracked one in another group.
pub fn is_tracked(group: Option<&str>, resource: &str) -> bool {
    Kind::from_resource(resource).is_some_and(|k| group.is_none_or(|g| k.groups().contains(&g)))
}

struct Patterns {
    verb_key: memmem::Finder<'static>,
    /// `resource` and a closing quote: the end of both the `"resource"`
    /// and the `"subresource"` key, so one search finds both.
    resource_tail: memmem::Finder<'static>,
    subresource_key: memmem::Finder<'static>,
    object_ref_key: memmem::Finder<'static>,
    /// Values, each followed by its closing quote (so a prefix is a whole value).
    verbs: Vec<Vec<u8>>,
    resources: Vec<Vec<u8>>,
    access_subresources: Vec<Vec<u8>>,
    unicode_escape: memmem::Finder<'static>,
    quote: &'static [u8],
}

impl Patterns {
    fn get(escaped: bool) -> &'static Self {
        use std::sync::OnceLock;
        static PLAIN: OnceLock<Patterns> = OnceLock::new();
        static ESCAPED: OnceLock<Patterns> = OnceLock::new();
        if escaped { ESCAPED.get_or_init(|| Self::new(true)) } else { PLAIN.get_or_init(|| Self::new(false)) }
    }

    fn new(escaped: bool) -> Self {
        let quote: &'static [u8] = if escaped { b"\\\"" } else { b"\"" };
        let key = |s: &str| json_finder(&[quote, s.as_bytes(), quote].concat());
        let value = |s: &str| [s.as_bytes(), quote].concat();
        Self {
            verb_key: key("verb"),
            resource_tail: json_finder(&[b"resource", quote].concat()),
            subresource_key: key("subresource"),
            object_ref_key: key("objectRef"),
            verbs: Verb::WRITES.iter().map(|v| value(v.as_str())).collect(),
            resources: Kind::ALL.iter().map(|k| value(k.resource())).collect(),
            access_subresources: POD_ACCESS.iter().chain(&["token"]).map(|s| value(s)).collect(),
            unicode_escape: json_finder(b"\\u"),
            quote,
        }
    }

    /// What follows `key` found at `at`: a string value, from just past its
    /// opening quote, if `:` and a quote follow the key.
    fn string_after<'b>(&self, bytes: &'b [u8], key: &memmem::Finder<'_>, at: usize) -> Option<&'b [u8]> {
        self.value_after(bytes, at + key.needle().len())
    }

    /// A string value after a key that ends just before `end`.
    fn value_after<'b>(&self, bytes: &'b [u8], end: usize) -> Option<&'b [u8]> {
        trim_ws(trim_ws(bytes.get(end..)?).strip_prefix(b":")?).strip_prefix(self.quote)
    }

    /// True if a `\uXXXX` escape in `bytes` could spell a letter: one whose
    /// digits are an ASCII letter's, or are not four hex digits (the parse
    /// then decides). The keys and values the filter looks for are letters
    /// only, so no other escape can hide one of them.
    fn escapes_a_letter(&self, bytes: &[u8]) -> bool {
        self.unicode_escape.find_iter(bytes).any(|at| {
            let hex = |n: u32, d: &u8| Some(n * 16 + char::from(*d).to_digit(16)?);
            match bytes.get(at + 2..at + 6).and_then(|d| d.iter().try_fold(0, hex)) {
                Some(code) => char::from_u32(code).is_some_and(|c| c.is_ascii_alphabetic()),
                None => true,
            }
        })
    }

    /// True if some occurrence of `key` is followed by `:` and one of `values`.
    fn key_has_value(&self, bytes: &[u8], key: &memmem::Finder<'_>, values: &[Vec<u8>]) -> bool {
        key.find_iter(bytes).any(|at| self.string_after(bytes, key, at).is_some_and(|v| one_of(v, values)))
    }
}

/// How often each byte occurs in audit-log JSON, escaped or not, for the
/// SIMD substring search to pick the rarest two bytes of a needle as its
/// probe. memchr's default ranks quotes and backslashes as rare, as they
/// are in prose; here they are the commonest bytes of all.
#[derive(Clone, Copy)]
struct JsonRank;

impl memchr::arch::all::packedpair::HeuristicFrequencyRank for JsonRank {
    fn rank(&self, byte: u8) -> u8 {
        match byte {
            b'"' | b'\\' | b':' | b',' | b'{' | b'}' | b'[' | b']' => 255,
            b'0'..=b'9' | b'-' | b'.' | b'/' | b' ' | b'_' => 230,
            b'e' | b't' | b'a' | b'o' | b'i' | b'n' | b's' | b'r' => 220,
            b'h' | b'l' | b'd' | b'c' | b'u' | b'm' | b'p' => 190,
            b'f' | b'g' | b'w' | b'y' | b'b' => 160,
            b'v' | b'k' => 130,
            b'x' | b'j' | b'q' | b'z' => 100,
            b'A'..=b'Z' => 120,
            _ => 40,
        }
    }
}

/// A substring finder tuned for audit-log JSON ([`JsonRank`]).
pub(crate) fn json_finder(needle: &[u8]) -> memmem::Finder<'static> {
    memmem::FinderBuilder::new().build_forward_with_ranker_owned(JsonRank, needle.to_vec())
}

/// True if a string value (from just past its opening quote) is one of
/// `values`, each written with its closing quote so a prefix is a whole value.
fn one_of(value: &[u8], values: &[Vec<u8>]) -> bool {
    values.iter().any(|x| value.starts_with(x))
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

/// Byte-level test: could this record be a write to a tracked resource, or
/// an access event (a `subresource` key with one of the access values)?
/// `escaped` says the record is the inside of a JSON string (quotes appear as `\"`).
/// Never false for a record that [`judge`] would keep: a record with a
/// `\u` escape of a letter anywhere passes, since JSON may spell any
/// character of a key or value that way (`"\u0076erb"` is `"verb"`) and only
/// the parse can tell. Escapes of other characters pass through: the API
/// server writes every `&` in a request URI as `\u0026` (Go's encoder escapes
/// HTML characters), and every key and value looked for is letters only.
pub fn prefilter(bytes: &[u8], escaped: bool) -> bool {
    // Separate SIMD searches for rare needles beat one search for all keys:
    // every key starts with a quote, the commonest byte of the record. The
    // resource and subresource keys end alike and share one search, which
    // comes first: most records name no tracked resource, and then the
    // verb is not looked for.
    let p = Patterns::get(escaped);
    let mut tracked = false;
    for at in p.resource_tail.find_iter(bytes) {
        let key = &bytes[..at];
        let value = || p.value_after(bytes, at + p.resource_tail.needle().len());
        if key.ends_with(p.quote) {
            tracked = tracked || value().is_some_and(|v| one_of(v, &p.resources));
        } else if key.strip_suffix(b"sub").is_some_and(|k| k.ends_with(p.quote))
            && value().is_some_and(|v| one_of(v, &p.access_subresources))
        {
            return true;
        }
    }
    (tracked && p.key_has_value(bytes, &p.verb_key, &p.verbs)) || p.escapes_a_letter(bytes)
}

/// Byte-level test on a record the [`prefilter`] passed: is it a write to a
/// subresource that gives no access (`status`, `scale`, …), which [`judge`]
/// skips? Read from the record's `objectRef`, which holds no nested object.
/// False whenever unsure: a `\u` escape of a letter, `"objectRef"` absent or
/// written more than once (a client may put the word in an object's
/// fields), a subresource that is empty or one of the access ones.
pub fn other_subresource(bytes: &[u8], escaped: bool) -> bool {
    let p = Patterns::get(escaped);
    if p.escapes_a_letter(bytes) {
        return false;
    }
    // Exactly one `"objectRef"` in the record: then it is the top-level one
    // the parse reads, wherever the keys are.
    let mut found = p.object_ref_key.find_iter(bytes);
    let (Some(at), None) = (found.next(), found.next()) else { return false };
    let rest = trim_ws(&bytes[at + p.object_ref_key.needle().len()..]);
    let Some(object) = rest.strip_prefix(b":").map(trim_ws).and_then(|r| r.strip_prefix(b"{")) else { return false };
    let object = &object[..memchr::memchr(b'}', object).unwrap_or(object.len())];
    let Some(key) = p.subresource_key.find(object) else { return false };
    let Some(value) = p.string_after(object, &p.subresource_key, key) else { return false };
    // Closed within the objectRef, not empty, and not one of the access ones.
    memmem::find(value, p.quote).is_some_and(|end| end > 0) && !one_of(value, &p.access_subresources)
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
    /// A person reached into a pod or asked for a service account's token.
    Access,
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
    let subresource = object.subresource.as_deref().unwrap_or_default();
    if group.is_none_or(str::is_empty) && access(resource, subresource, verb) {
        // A streaming exec is logged when its response starts (101 Switching
        // Protocols) and again when it ends: the start is when the power begins.
        return match (header.stage.as_deref(), header.response_status.as_ref().and_then(|s| s.code)) {
            (Some("RequestReceived"), _) => Verdict::Skip(SkipReason::IncompleteStage),
            (_, None | Some(101 | 200..=299)) => Verdict::Access,
            _ => Verdict::Skip(SkipReason::Unsuccessful),
        };
    }
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
    fn a_status_write_is_told_from_its_object_ref_and_nothing_else_is() {
        let status = br#"{"verb":"update","objectRef":{"resource":"ingresses","subresource":"status","name":"web"},"requestObject":{}}"#;
        assert!(other_subresource(status, false));
        let escaped = serde_json::to_string(std::str::from_utf8(status).unwrap_or_default()).unwrap_or_default();
        assert!(other_subresource(escaped.as_bytes(), true));
        for kept in [
            // No subresource in objectRef; one in the request object is the client's.
            &br#"{"verb":"update","objectRef":{"resource":"ingresses","name":"web"},"requestObject":{"metadata":{"annotations":{"subresource":"status"}}}}"#[..],
            // A client's own objectRef before the real one.
            br#"{"requestObject":{"objectRef":{"subresource":"status"}},"verb":"update","objectRef":{"resource":"ingresses"}}"#,
            br#"{"verb":"create","objectRef":{"resource":"pods","subresource":"exec"}}"#,
            br#"{"verb":"create","objectRef":{"resource":"serviceaccounts","subresource":"token"}}"#,
            br#"{"verb":"update","objectRef":{"resource":"ingresses","subresource":""}}"#,
            br#"{"verb":"update","objectRef":{"resource":"ingresses","subresource":"\u0073tatus"}}"#,
            br#"{"verb":"update","objectRef":"not an object"}"#,
        ] {
            assert!(!other_subresource(kept, false), "{}", String::from_utf8_lossy(kept));
        }
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
    fn prefilter_passes_access_events_and_not_ordinary_pod_reads() {
        assert!(prefilter(br#"{"verb":"get","objectRef":{"resource":"pods","subresource":"exec"}}"#, false));
        assert!(prefilter(
            br#"{"verb":"create","objectRef":{"resource":"serviceaccounts","subresource":"token"}}"#,
            false
        ));
        assert!(!prefilter(br#"{"verb":"get","objectRef":{"resource":"pods","name":"exec"}}"#, false));
        assert!(!prefilter(br#"{"verb":"get","objectRef":{"resource":"pods","subresource":"log"}}"#, false));
    }

    /// JSON may spell any character of a key or value as `\uXXXX`: the parse
    /// reads `"\u0076erb"` as `"verb"`, so the prefilter must not drop it.
    #[test]
    fn prefilter_never_drops_a_record_whose_keys_or_values_use_unicode_escapes() {
        for record in [
            r#"{"kind":"Event","\u0076erb":"update","stage":"ResponseComplete","objectRef":{"resource":"ingresses"}}"#,
            r#"{"kind":"Event","verb":"upd\u0061te","stage":"ResponseComplete","objectRef":{"resource":"ingresses"}}"#,
            r#"{"kind":"Event","verb":"get","objectRef":{"resource":"pods","subresource":"\u0065xec"}}"#,
        ] {
            assert_ne!(verdict(record), Verdict::Skip(SkipReason::NotRelevant), "{record}");
            assert!(prefilter(record.as_bytes(), false), "{record}");
        }
    }

    /// The API server escapes `&`, `<` and `>` in every string (`\u0026`):
    /// such a record is judged by its bytes like any other, in an envelope
    /// too, while an escape of a letter still sends it to the parse.
    #[test]
    fn escapes_of_other_characters_do_not_send_a_record_to_the_parse() {
        let watch = r#"{"kind":"Event","requestURI":"/api/v1/pods?limit=500\u0026watch=true","verb":"watch","objectRef":{"resource":"ingresses"}}"#;
        assert!(!prefilter(watch.as_bytes(), false));
        let quoted = serde_json::to_string(watch).unwrap_or_default();
        assert!(!prefilter(&quoted.as_bytes()[1..quoted.len() - 1], true));
        let status = r#"{"kind":"Event","requestURI":"/x?a=1\u0026b=2","verb":"update","objectRef":{"resource":"ingresses","subresource":"status"}}"#;
        assert!(prefilter(status.as_bytes(), false) && other_subresource(status.as_bytes(), false));
        for unsure in
            [r#"{"verb":"get","note":"\u0041"}"#, r#"{"verb":"get","note":"\u00zz"}"#, r#"{"verb":"get","n":"\u00"}"#]
        {
            assert!(prefilter(unsure.as_bytes(), false), "{unsure}");
        }
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
        // Access: exec by SPDY (create) or WebSocket (get), debug containers, token requests.
        for access in [
            r#"{"verb":"create","objectRef":{"resource":"pods","subresource":"exec"},"responseStatus":{"code":101}}"#,
            r#"{"verb":"get","stage":"ResponseStarted","objectRef":{"resource":"pods","subresource":"exec"}}"#,
            r#"{"verb":"patch","objectRef":{"resource":"pods","subresource":"ephemeralcontainers"}}"#,
            r#"{"verb":"create","objectRef":{"resource":"serviceaccounts","subresource":"token","apiGroup":""}}"#,
        ] {
            assert_eq!(verdict(access), Verdict::Access, "{access}");
        }
        assert_eq!(
            verdict(r#"{"verb":"get","objectRef":{"resource":"pods","subresource":"log"}}"#),
            Verdict::Skip(SkipReason::NotRelevant)
        );
        assert_eq!(
            verdict(
                r#"{"verb":"create","objectRef":{"resource":"pods","subresource":"exec"},"responseStatus":{"code":403}}"#
            ),
            Verdict::Skip(SkipReason::Unsuccessful)
        );
        // No group at all: matched on the resource name.
        assert_eq!(verdict(r#"{"verb":"update","objectRef":{"resource":"ingresses"}}"#), Verdict::Kept);
        assert_eq!(
            verdict(r#"{"verb":"update","objectRef":{"resource":"ingresses","apiGroup":""}}"#),
            Verdict::Skip(SkipReason::NotRelevant)
        );
    }
}
