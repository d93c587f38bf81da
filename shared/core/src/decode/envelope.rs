//! CloudWatch Logs subscription envelopes in the layout CloudWatch writes,
//! split without parsing their messages.
//!
//! CloudWatch Logs writes each envelope compactly, `logEvents` last, each
//! log event as `{"id":"…","timestamp":…,"message":"…"}`. Inside a JSON
//! string every quote is escaped, so a message holds the bytes `{"` only
//! where it ends in `{` and its closing quote completes the pair: after the
//! envelope's header every other `{"` begins a log event, and each message
//! ends just before the `"},` in front of the next, or at the envelope's
//! closing `"}]}`. One SIMD search per log event replaces a JSON parse of
//! every byte, and as no `{"` is left unexplained, a split also shows that
//! the bytes hold one envelope (a second one, concatenated, starts with
//! `{"`, or if written with spaces is found by its `"messageType":` after
//! the last message). The relevance prefilter then reads the escaped
//! message, and only candidates are unescaped and parsed. Anything not in
//! this exact layout is left to the general parser.

use std::borrow::Cow;
use std::sync::OnceLock;

use memchr::memmem::Finder;
use serde::Deserialize;
use serde_json::value::RawValue;

/// The envelope's fields other than its log events.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Header {
    /// `DATA_MESSAGE` or `CONTROL_MESSAGE`.
    #[serde(default)]
    pub message_type: Option<String>,
    /// The account that owns the log group.
    #[serde(default)]
    pub owner: Option<String>,
    /// The log group.
    #[serde(default)]
    pub log_group: Option<String>,
    /// The log stream.
    #[serde(default)]
    pub log_stream: Option<String>,
}

/// One log event: its id, its timestamp (ms since the epoch) and its
/// message as it lies in the envelope (a JSON string literal, or an object).
#[derive(Debug)]
pub(crate) struct Entry<'a> {
    pub id: Option<Cow<'a, str>>,
    pub timestamp: Option<i64>,
    pub message: &'a [u8],
}

const MESSAGE_TYPE: &[u8] = b"\"messageType\":";
const EVENTS: &[u8] = b"\"logEvents\":[";
const EVENT: &[u8] = b"{\"id\":\"";
const TIMESTAMP: &[u8] = b",\"timestamp\":";
const MESSAGE: &[u8] = b",\"message\":\"";
/// What ends a message that another log event follows: its closing quote,
/// its object's `}` and the array's `,`.
const BEFORE_EVENT: &[u8] = b"\"},";
const END: &[u8] = b"\"}]}";

/// Finds `{"`, the start of a JSON object's first key, which a JSON string
/// holds only as its last character and its closing quote.
fn object_start() -> &'static Finder<'static> {
    static FINDER: OnceLock<Finder<'static>> = OnceLock::new();
    FINDER.get_or_init(|| crate::filter::json_finder(b"{\""))
}

/// Finds `"messageType":`, which only an envelope's header holds.
fn message_type() -> &'static Finder<'static> {
    static FINDER: OnceLock<Finder<'static>> = OnceLock::new();
    FINDER.get_or_init(|| crate::filter::json_finder(MESSAGE_TYPE))
}

/// Whether `bytes` (trimmed) is one envelope and nothing else, as far as its
/// framing shows: one object in which `messageType` occurs once.
pub(crate) fn is_one(bytes: &[u8]) -> bool {
    let finder = message_type();
    bytes.starts_with(b"{\"")
        && bytes.ends_with(b"}")
        && finder.find(bytes).is_some_and(|at| finder.find(&bytes[at + MESSAGE_TYPE.len()..]).is_none())
}

/// An envelope in any layout, parsed whole: log messages left as raw JSON.
#[derive(Deserialize)]
struct Whole<'a> {
    #[serde(flatten)]
    header: Header,
    #[serde(borrow, default, rename = "logEvents")]
    log_events: Vec<LogEvent<'a>>,
}

#[derive(Deserialize)]
struct LogEvent<'a> {
    #[serde(borrow, default)]
    id: Option<Cow<'a, str>>,
    /// Milliseconds since the epoch, set by the producer of the log event.
    #[serde(default)]
    timestamp: Option<i64>,
    #[serde(borrow)]
    message: &'a RawValue,
}

/// An envelope's header and log events.
pub(crate) type Parsed<'a> = (Header, Vec<Entry<'a>>);

/// The header and log events of an envelope: split where it is in
/// CloudWatch's layout, parsed whole otherwise.
pub(crate) fn parse(bytes: &[u8]) -> Result<Parsed<'_>, serde_json::Error> {
    split(bytes).map_or_else(|| parse_whole(bytes), Ok)
}

/// An envelope in any layout, parsed as JSON.
pub(crate) fn parse_whole(bytes: &[u8]) -> Result<Parsed<'_>, serde_json::Error> {
    let whole: Whole<'_> = serde_json::from_slice(bytes)?;
    let entries = whole
        .log_events
        .into_iter()
        .map(|e| Entry { id: e.id, timestamp: e.timestamp, message: e.message.get().as_bytes() })
        .collect();
    Ok((whole.header, entries))
}

/// Splits an envelope in CloudWatch's layout into its header and log
/// events; `None` if it is laid out any other way or is not one envelope
/// (see the module's documentation).
pub(crate) fn split(bytes: &[u8]) -> Option<Parsed<'_>> {
    let body = memchr::memmem::find(bytes, EVENTS)? + EVENTS.len();
    // The header: the envelope up to its events, closed, parsed as JSON.
    let mut head = Vec::with_capacity(body + 2);
    head.extend_from_slice(&bytes[..body]);
    head.extend_from_slice(b"]}");
    let header: Header = serde_json::from_slice(&head).ok()?;
    let mut entries = Vec::new();
    if &bytes[body..] == b"]}" {
        return Some((header, entries));
    }
    if !bytes.ends_with(END) {
        return None;
    }
    // The last message's closing quote.
    let last = bytes.len() - END.len();
    let mut at = body;
    loop {
        let rest = bytes.get(at..)?.strip_prefix(EVENT)?;
        let id_len = memchr::memchr(b'"', rest)?;
        let id = std::str::from_utf8(&rest[..id_len]).ok().filter(|id| id.bytes().all(|b| b.is_ascii_digit()))?;
        let rest = rest[id_len + 1..].strip_prefix(TIMESTAMP)?;
        let digits = rest.iter().position(|b| !(b.is_ascii_digit() || *b == b'-'))?;
        let timestamp = integer(&rest[..digits])?;
        let rest = rest[digits..].strip_prefix(MESSAGE)?;
        // Where the message's text starts (just past its opening quote)
        // and its closing quote, as offsets into `bytes`.
        let text = bytes.len() - rest.len();
        let close = match object_start().find(rest) {
            // The next log event, after the closing quote, `}` and `,`.
            Some(next) if rest[next..].starts_with(EVENT) && rest[..next].ends_with(BEFORE_EVENT) => {
                text + next - BEFORE_EVENT.len()
            }
            // A message that ends in `{`: its closing quote makes the pair.
            Some(next) if rest[next + 1..].starts_with(BEFORE_EVENT) || rest[next + 1..] == *END => text + next + 1,
            // Another layout, or a second envelope.
            Some(_) => return None,
            // The last message, unless a second envelope written with
            // spaces (and so without `{"`) follows the first.
            None if last >= text && message_type().find(&bytes[text..last]).is_none() => last,
            None => return None,
        };
        entries.push(Entry {
            id: Some(Cow::Borrowed(id)),
            timestamp: Some(timestamp),
            message: &bytes[text - 1..=close],
        });
        if close == last {
            return Some((header, entries));
        }
        at = close + BEFORE_EVENT.len();
    }
}

/// A JSON integer (an optional minus, then digits) that fits an `i64`.
fn integer(bytes: &[u8]) -> Option<i64> {
    let (negative, digits) = match bytes {
        [b'-', digits @ ..] => (true, digits),
        digits => (false, digits),
    };
    if digits.is_empty() {
        return None;
    }
    digits.iter().try_fold(0_i64, |n, d| {
        let d = i64::from(char::from(*d).to_digit(10)?);
        let n = n.checked_mul(10)?;
        if negative { n.checked_sub(d) } else { n.checked_add(d) }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// An envelope as CloudWatch Logs writes it: compact, `logEvents` last.
    fn envelope(messages: &[&str]) -> String {
        let events: Vec<String> = messages
            .iter()
            .enumerate()
            .map(|(i, m)| {
                format!(r#"{{"id":"3790{i}","timestamp":{},"message":{}}}"#, 1_714_557_600_000_i64 + i as i64, json!(m))
            })
            .collect();
        format!(
            r#"{{"messageType":"DATA_MESSAGE","owner":"111122223333","logGroup":"/aws/eks/prod/cluster","logStream":"kube-apiserver-audit-1","subscriptionFilters":["f"],"logEvents":[{}]}}"#,
            events.join(",")
        )
    }

    /// The messages as the general parser reads them.
    fn parsed(envelope: &str) -> Vec<String> {
        let v: serde_json::Value = serde_json::from_str(envelope).unwrap_or_default();
        v["logEvents"].as_array().into_iter().flatten().map(|e| e["message"].to_string()).collect()
    }

    #[test]
    fn splits_each_message_exactly_as_the_json_parser_reads_it() {
        let hostile = [
            r#"{"kind":"Event","verb":"update","a":"\"},{\"id\":\"1\"}"}"#,
            r#"ends with a quote and brace "}"#,
            "back\\slashes\\\\\" and \"}]} inside",
            "",
            "plain log text",
        ];
        let e = envelope(&hostile);
        let (header, entries) = split(e.as_bytes()).unwrap_or_default();
        assert_eq!(header.log_group.as_deref(), Some("/aws/eks/prod/cluster"));
        let got: Vec<String> = entries.iter().map(|x| String::from_utf8_lossy(x.message).into_owned()).collect();
        assert_eq!(got, parsed(&e));
        assert_eq!(entries[1].id.as_deref(), Some("37901"));
        assert_eq!(entries[4].timestamp, Some(1_714_557_600_004));
    }

    #[test]
    fn splits_random_messages_of_json_punctuation_as_the_json_parser_reads_them() {
        // Messages drawn from the bytes that frame an envelope, so that every
        // layout of quotes, braces and escapes next to each other occurs.
        const ALPHABET: &[&str] = &["\"", "\\", "{", "}", "[", "]", ",", ":", "id", "message", " ", "é", "\n"];
        let mut state = 0x2545_f491_4f6c_dd1d_u64;
        let mut next = |n: usize| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            usize::try_from(state % n as u64).unwrap_or_default()
        };
        for _ in 0..20_000 {
            let messages: Vec<String> =
                (0..1 + next(4)).map(|_| (0..next(12)).map(|_| ALPHABET[next(ALPHABET.len())]).collect()).collect();
            let refs: Vec<&str> = messages.iter().map(String::as_str).collect();
            let e = envelope(&refs);
            let got: Vec<String> = split(e.as_bytes())
                .map(|(_, entries)| entries.iter().map(|x| String::from_utf8_lossy(x.message).into_owned()).collect())
                .unwrap_or_default();
            assert_eq!(got, parsed(&e), "{e}");
        }
    }

    #[test]
    fn a_timestamp_is_read_as_rust_reads_an_integer() {
        for text in ["1714557600000", "-1", "0", "007", "9223372036854775807", "-9223372036854775808"] {
            assert_eq!(integer(text.as_bytes()), text.parse().ok(), "{text}");
        }
        for text in ["", "-", "--1", "1-2", "9223372036854775808", "-9223372036854775809"] {
            assert_eq!(integer(text.as_bytes()), None, "{text}");
        }
    }

    #[test]
    fn another_layout_is_left_to_the_general_parser() {
        let pretty = serde_json::to_string_pretty(
            &serde_json::from_str::<serde_json::Value>(&envelope(&["x"])).unwrap_or_default(),
        )
        .unwrap_or_default();
        assert!(split(pretty.as_bytes()).is_none());
        let reordered = r#"{"messageType":"DATA_MESSAGE","logEvents":[{"message":"x","id":"1","timestamp":1}]}"#;
        assert!(is_one(reordered.as_bytes()));
        assert!(split(reordered.as_bytes()).is_none());
        let empty = r#"{"messageType":"DATA_MESSAGE","logEvents":[]}"#;
        assert_eq!(split(empty.as_bytes()).map(|(_, e)| e.len()), Some(0));
        let two = envelope(&["a"]) + &envelope(&["b"]);
        assert!(!is_one(two.as_bytes()) && is_one(envelope(&["a"]).as_bytes()));
        // Two envelopes are never split as one, however many events each holds.
        let two = envelope(&["a", "b"]) + &envelope(&["c", "d"]);
        assert!(split(two.as_bytes()).is_none());
        let spaced =
            r#"{ "messageType": "DATA_MESSAGE", "logEvents": [ { "id": "1", "timestamp": 1, "message": "c"}]}"#;
        assert!(split((envelope(&["a", "b"]) + spaced).as_bytes()).is_none());
        assert!(split(envelope(&["a", "b"]).as_bytes()).is_some());
    }
}
