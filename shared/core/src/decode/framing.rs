//! Framing: how records are laid out in a decompressed stream.
//!
//! Two layouts cover every delivery: *lines* (JSON lines of audit events,
//! CloudWatch export lines `<RFC 3339 time> <message>`, Firehose
//! message-only deliveries) and *values* (JSON objects one after another,
//! with or without whitespace between them: subscription envelopes in
//! Firehose objects, Lambda event payloads). [`sniff`] tells them apart from
//! the first object's top-level keys, which an attacker who controls only an
//! annotation cannot forge.
//!
//! Both readers hold at most one record in memory, capped by
//! `max_record_bytes`; an oversized record is skipped to its end and reported.

use std::io::{self, BufRead};

use memchr::memchr;

/// How a stream lays out its records.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Framing {
    /// Newline-delimited records.
    Lines,
    /// Concatenated JSON objects.
    Values,
    /// One JSON document holding an array of records (`{"Records":[…]}` or `[…]`), streamed.
    RecordArray,
    /// Nothing but whitespace.
    Empty,
    /// Something else; the text says what was seen.
    Unknown(String),
}

/// Top-level keys of a subscription envelope or a Lambda event payload.
const WRAPPER_KEYS: &[&[u8]] = &[b"messageType", b"logEvents", b"awslogs", b"Records", b"records"];
/// Top-level keys of which an audit event has at least one.
pub(crate) const AUDIT_KEYS: &[&[u8]] =
    &[b"kind", b"apiVersion", b"auditID", b"objectRef", b"verb", b"requestURI", b"stage"];
/// Top-level keys of which a CloudTrail record (or its EventBridge or digest form) has at least one.
pub(crate) const CLOUDTRAIL_KEYS: &[&[u8]] =
    &[b"eventVersion", b"eventName", b"eventTime", b"eventSource", b"detail-type", b"digestStartTime"];

pub(crate) fn is_ws(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\n' | b'\r')
}

/// Decides the framing from the first bytes of a decompressed stream.
/// `eof` says the window holds the whole stream.
pub(crate) fn sniff(window: &[u8], eof: bool, record_keys: &[&[u8]]) -> Framing {
    let window = window.strip_prefix(b"\xef\xbb\xbf").unwrap_or(window);
    let Some(start) = window.iter().position(|b| !is_ws(*b)) else {
        return if eof { Framing::Empty } else { Framing::Lines };
    };
    let first = &window[start..];
    match first[0] {
        b'{' => {
            let top = top_level_keys(first);
            // A CloudTrail file: one object holding every record.
            if record_keys == CLOUDTRAIL_KEYS && top.keys.first() == Some(&&b"Records"[..]) {
                return Framing::RecordArray;
            }
            if top.keys.iter().any(|k| WRAPPER_KEYS.contains(k)) {
                return Framing::Values;
            }
            let Some(end) = top.end else {
                // The first object is larger than the window: lines can cope
                // with that, and will report it if it passes the record limit.
                return Framing::Lines;
            };
            if !top.keys.iter().any(|k| record_keys.contains(k)) {
                let keys: Vec<String> =
                    top.keys.iter().take(8).map(|k| String::from_utf8_lossy(k).into_owned()).collect();
                return Framing::Unknown(format!(
                    "the first JSON object is neither a {} nor an AWS log envelope (its keys: {})",
                    if record_keys == CLOUDTRAIL_KEYS { "CloudTrail record" } else { "Kubernetes audit event" },
                    keys.join(", ")
                ));
            }
            // Objects glued together on one line: Firehose message-only
            // delivery without a delimiter.
            let after = first[end..].iter().find(|b| !matches!(b, b' ' | b'\t' | b'\r'));
            if after == Some(&b'{') { Framing::Values } else { Framing::Lines }
        }
        b'0'..=b'9' if split_export_line(line_of(first)).is_some() => Framing::Lines,
        b'[' if record_keys == CLOUDTRAIL_KEYS => Framing::RecordArray,
        b'[' => Framing::Unknown("a JSON array (CloudTrail record files are read as CloudTrail input)".into()),
        byte => Framing::Unknown(format!(
            "starts with byte {byte:#04x}, not a JSON object, a timestamped export line or gzip/zlib data"
        )),
    }
}

fn line_of(bytes: &[u8]) -> &[u8] {
    memchr(b'\n', bytes).map_or(bytes, |i| &bytes[..i])
}

/// Splits a CloudWatch Logs export line `<RFC 3339 time> <message>` into its parts.
pub(crate) fn split_export_line(line: &[u8]) -> Option<(chrono::DateTime<chrono::Utc>, &[u8])> {
    let space = memchr(b' ', line)?;
    let stamp = std::str::from_utf8(&line[..space]).ok()?;
    let time = chrono::DateTime::parse_from_rfc3339(stamp).ok()?;
    Some((time.to_utc(), &line[space + 1..]))
}

/// The keys of an object's top level, and where the object ends if the
/// slice holds all of it.
struct TopLevel<'a> {
    keys: Vec<&'a [u8]>,
    end: Option<usize>,
}

fn top_level_keys(bytes: &[u8]) -> TopLevel<'_> {
    let mut keys = Vec::new();
    let end = scan_keys(bytes, |key| {
        keys.push(key);
        false
    });
    TopLevel { keys, end }
}

/// Walks one JSON object without parsing it: strings are skipped with their
/// escapes, nesting is counted, and a string at depth 1 followed by `:` is a
/// key, handed to `stop`; the walk ends early when `stop` says so. Returns
/// where the object ends, if the walk reached its end.
fn scan_keys<'a>(bytes: &'a [u8], mut stop: impl FnMut(&'a [u8]) -> bool) -> Option<usize> {
    let mut depth = 0u32;
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'"' => {
                let start = i + 1;
                let mut j = start;
                while j < bytes.len() && bytes[j] != b'"' {
                    j += if bytes[j] == b'\\' { 2 } else { 1 };
                }
                if j >= bytes.len() {
                    return None;
                }
                if depth == 1 {
                    let rest = bytes[j + 1..].iter().find(|b| !is_ws(**b));
                    if rest == Some(&b':') && stop(&bytes[start..j]) {
                        return None;
                    }
                }
                i = j + 1;
                continue;
            }
            b'{' | b'[' => depth += 1,
            b'}' | b']' => {
                depth = depth.saturating_sub(1);
                if depth == 0 {
                    return Some(i + 1);
                }
            }
            _ => {}
        }
        i += 1;
    }
    None
}

/// What a top-level JSON value is, from its keys.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Shape {
    /// `{"awslogs":{"data":…}}`: a CloudWatch Logs subscription Lambda event.
    LambdaLogs,
    /// `{"Records":[…]}` or `{"records":[…]}`: Kinesis or Firehose Lambda events.
    Records,
    /// A CloudWatch Logs subscription envelope.
    Envelope,
    /// Anything else: taken as an audit event.
    Event,
}

pub(crate) fn shape(value: &[u8]) -> Shape {
    let mut shape = Shape::Event;
    scan_keys(value, |key| {
        shape = match key {
            b"awslogs" => Shape::LambdaLogs,
            b"Records" | b"records" => Shape::Records,
            b"messageType" | b"logEvents" => Shape::Envelope,
            _ => return false,
        };
        true
    });
    shape
}

/// One record read from a stream, or why it could not be.
pub(crate) enum Item<'b> {
    /// A whole record; `offset` is its first byte in the decompressed stream,
    /// `line` its 1-based line number where lines are counted.
    Record { offset: u64, line: u64, bytes: &'b [u8] },
    /// A record that cannot be used; reading continues after it. `bytes`
    /// holds what was read of it (empty when it was too large to keep).
    Bad { offset: u64, line: u64, error: super::error::ErrorKind, bytes: &'b [u8] },
}

/// A reader of records from a decompressed stream.
pub(crate) trait Records {
    /// True for line-delimited records.
    const LINES: bool;
    /// The next record, `None` at the end; an I/O error ends the stream.
    fn next_item(&mut self) -> io::Result<Option<Item<'_>>>;
    /// Bytes of the stream consumed so far.
    fn offset(&self) -> u64;
    /// How a record's position is written in locations.
    fn place(offset: u64, line: u64) -> String;
}

/// Reads newline-delimited records of bounded length.
pub(crate) struct Lines<R> {
    reader: R,
    buf: Vec<u8>,
    max: usize,
    offset: u64,
    line: u64,
}

impl<R: BufRead> Lines<R> {
    pub fn new(reader: R, max: usize) -> Self {
        Self { reader, buf: Vec::new(), max, offset: 0, line: 0 }
    }
}

impl<R: BufRead> Records for Lines<R> {
    const LINES: bool = true;

    fn offset(&self) -> u64 {
        self.offset
    }

    fn place(_offset: u64, line: u64) -> String {
        format!("line {line}")
    }

    fn next_item(&mut self) -> io::Result<Option<Item<'_>>> {
        let Self { reader, buf, max, offset, line } = self;
        buf.clear();
        let start = *offset;
        let mut size = 0u64;
        let mut too_long = false;
        let mut any = false;
        loop {
            let chunk = reader.fill_buf()?;
            if chunk.is_empty() {
                break;
            }
            any = true;
            let (take, used, done) = match memchr(b'\n', chunk) {
                Some(i) => (i, i + 1, true),
                None => (chunk.len(), chunk.len(), false),
            };
            size += take as u64;
            if !too_long {
                if buf.len() + take > *max {
                    too_long = true;
                    buf.clear();
                } else {
                    buf.extend_from_slice(&chunk[..take]);
                }
            }
            reader.consume(used);
            *offset += used as u64;
            if done {
                break;
            }
        }
        if !any {
            return Ok(None);
        }
        *line += 1;
        if too_long {
            let error = super::error::ErrorKind::RecordTooLarge { size, limit: *max };
            return Ok(Some(Item::Bad { offset: start, line: *line, error, bytes: &[] }));
        }
        let bytes = buf.strip_suffix(b"\r").unwrap_or(buf);
        Ok(Some(Item::Record { offset: start, line: *line, bytes }))
    }
}

/// Reads JSON objects that follow one another, with or without whitespace.
pub(crate) struct Values<R> {
    reader: R,
    buf: Vec<u8>,
    max: usize,
    offset: u64,
    line: u64,
    /// After a bad record: skip to a line that starts with `{`.
    resync: bool,
}

/// Tracks where a JSON value ends, across buffer refills.
#[derive(Default)]
struct Depth {
    depth: u32,
    in_string: bool,
    escaped: bool,
}

enum Fed {
    /// The value ends just before this index.
    End(usize),
    /// All of the chunk belongs to the value.
    More,
    /// A raw line break inside a string, at this index.
    Broken(usize),
}

/// Bytes that matter to [`Depth`]; everything else is skipped in a tight loop.
/// A table beats `memchr` here: inside JSON the next quote is rarely more than
/// a dozen bytes away, and every search would pay its set-up cost.
const SPECIAL: [bool; 256] = {
    let mut t = [false; 256];
    t[b'"' as usize] = true;
    t[b'\\' as usize] = true;
    t[b'{' as usize] = true;
    t[b'}' as usize] = true;
    t[b'\n' as usize] = true;
    t
};

impl Depth {
    fn feed(&mut self, chunk: &[u8]) -> Fed {
        let mut i = 0;
        while i < chunk.len() {
            if self.escaped {
                self.escaped = false;
                i += 1;
                continue;
            }
            let Some(j) = chunk[i..].iter().position(|b| SPECIAL[usize::from(*b)]) else { return Fed::More };
            let at = i + j;
            i = at + 1;
            match (self.in_string, chunk[at]) {
                (true, b'"') => self.in_string = false,
                (true, b'\\') => self.escaped = true,
                (true, b'\n') => return Fed::Broken(at),
                (true, _) | (false, b'\\' | b'\n') => {}
                (false, b'"') => self.in_string = true,
                (false, b'{') => self.depth += 1,
                (false, _) => {
                    self.depth = self.depth.saturating_sub(1);
                    if self.depth == 0 {
                        return Fed::End(at + 1);
                    }
                }
            }
        }
        Fed::More
    }
}

impl<R: BufRead> Values<R> {
    pub fn new(reader: R, max: usize) -> Self {
        Self::starting_at(reader, max, 0, 1)
    }

    /// Values read from the middle of a stream: `offset` bytes and `line`
    /// lines in, as their places say.
    pub fn starting_at(reader: R, max: usize, offset: u64, line: u64) -> Self {
        Self { reader, buf: Vec::new(), max, offset, line, resync: false }
    }

    fn consume(&mut self, n: usize, newlines: usize) {
        self.reader.consume(n);
        self.offset += n as u64;
        self.line += newlines as u64;
    }

    /// Skips whitespace, and after a bad record whole lines until one starts with `{`.
    /// Returns the first byte of the next value, or `None` at the end.
    fn skip_to_value(&mut self) -> io::Result<Option<u8>> {
        loop {
            let chunk = self.reader.fill_buf()?;
            if chunk.is_empty() {
                return Ok(None);
            }
            if self.resync {
                let (used, nl) = match memchr(b'\n', chunk) {
                    Some(i) => (i + 1, 1),
                    None => (chunk.len(), 0),
                };
                self.resync = nl == 0;
                self.consume(used, nl);
                // Only a line that starts with '{' ends the resync.
                if nl == 1 {
                    let next = self.reader.fill_buf()?;
                    if next.first() != Some(&b'{') {
                        self.resync = true;
                    }
                }
                continue;
            }
            match chunk.iter().position(|b| !is_ws(*b)) {
                Some(i) => {
                    let first = chunk[i];
                    let nl = chunk[..i].iter().filter(|b| **b == b'\n').count();
                    self.consume(i, nl);
                    return Ok(Some(first));
                }
                None => {
                    let (n, nl) = (chunk.len(), chunk.iter().filter(|b| **b == b'\n').count());
                    self.consume(n, nl);
                }
            }
        }
    }
}

impl<R: BufRead> Records for Values<R> {
    const LINES: bool = false;

    fn offset(&self) -> u64 {
        self.offset
    }

    fn place(offset: u64, line: u64) -> String {
        format!("byte {offset} (line {line})")
    }

    fn next_item(&mut self) -> io::Result<Option<Item<'_>>> {
        let Some(first) = self.skip_to_value()? else { return Ok(None) };
        let (offset, line) = (self.offset, self.line);
        if first != b'{' {
            self.resync = true;
            return Ok(Some(Item::Bad {
                offset,
                line,
                error: super::error::ErrorKind::UnexpectedByte { byte: first },
                bytes: &[],
            }));
        }
        self.buf.clear();
        let mut depth = Depth::default();
        let mut size = 0u64;
        let mut too_long = false;
        loop {
            let chunk = self.reader.fill_buf()?;
            if chunk.is_empty() {
                let error = super::error::ErrorKind::Truncated;
                return Ok(Some(Item::Bad { offset, line, error, bytes: &self.buf }));
            }
            let fed = depth.feed(chunk);
            let take = match fed {
                Fed::End(n) | Fed::Broken(n) => n,
                Fed::More => chunk.len(),
            };
            size += take as u64;
            if !too_long {
                if self.buf.len() + take > self.max {
                    too_long = true;
                    self.buf = Vec::new();
                } else {
                    self.buf.extend_from_slice(&chunk[..take]);
                }
            }
            let newlines = chunk[..take].iter().filter(|b| **b == b'\n').count();
            match fed {
                Fed::More => self.consume(take, newlines),
                Fed::End(_) => {
                    self.consume(take, newlines);
                    break;
                }
                Fed::Broken(_) => {
                    self.consume(take + 1, newlines + 1);
                    self.resync = self.reader.fill_buf()?.first() != Some(&b'{');
                    let error = super::error::ErrorKind::BrokenString;
                    return Ok(Some(Item::Bad { offset, line, error, bytes: &self.buf }));
                }
            }
        }
        if too_long {
            return Ok(Some(Item::Bad {
                offset,
                line,
                error: super::error::ErrorKind::RecordTooLarge { size, limit: self.max },
                bytes: &[],
            }));
        }
        Ok(Some(Item::Record { offset, line, bytes: &self.buf }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn values(input: &[u8]) -> Vec<Result<String, String>> {
        let mut reader = Values::new(input, 1024);
        let mut out = Vec::new();
        while let Some(item) = reader.next_item().ok().flatten() {
            out.push(match item {
                Item::Record { bytes, .. } => Ok(String::from_utf8_lossy(bytes).into_owned()),
                Item::Bad { error, offset, .. } => Err(format!("{offset}: {error}")),
            });
        }
        out
    }

    #[test]
    fn sniffs_each_layout() {
        assert_eq!(sniff(br#"{"messageType":"DATA_MESSAGE"}"#, true, AUDIT_KEYS), Framing::Values);
        assert_eq!(sniff(br#"{"awslogs":{"data":"x"}}"#, true, AUDIT_KEYS), Framing::Values);
        assert_eq!(sniff(b"{\"kind\":\"Event\",\"verb\":\"get\"}\n{}", true, AUDIT_KEYS), Framing::Lines);
        assert_eq!(sniff(br#"{"kind":"Event","verb":"get"}{"kind":"Event"}"#, true, AUDIT_KEYS), Framing::Values);
        assert_eq!(sniff(b"2024-05-01T10:00:00.000Z {\"verb\":\"get\"}\n", true, AUDIT_KEYS), Framing::Lines);
        assert_eq!(sniff(b"  \n ", true, AUDIT_KEYS), Framing::Empty);
        assert!(matches!(sniff(b"hello", true, AUDIT_KEYS), Framing::Unknown(_)));
        assert!(matches!(sniff(br#"{"eventVersion":"1.08"}"#, true, AUDIT_KEYS), Framing::Unknown(_)));
    }

    #[test]
    fn an_annotation_cannot_forge_the_layout() {
        let event = br#"{"kind":"Event","verb":"update","requestObject":{"metadata":{"annotations":{"awslogs":"x","messageType":"y"}}}}"#;
        assert_eq!(sniff(event, true, AUDIT_KEYS), Framing::Lines);
        assert_eq!(shape(event), Shape::Event);
    }

    #[test]
    fn splits_concatenated_objects_with_braces_and_escapes_in_strings() {
        let got = values(b"{\"a\":\"}{\\\"\"}{\"b\":{\"c\":1}}\n\n{\"d\":2}");
        assert_eq!(got, vec![Ok("{\"a\":\"}{\\\"\"}".into()), Ok("{\"b\":{\"c\":1}}".into()), Ok("{\"d\":2}".into())]);
    }

    #[test]
    fn reports_truncation_garbage_and_oversize_then_goes_on() {
        let got = values(b"{\"a\":1}\ngarbage\nmore garbage\n{\"b\":2}\n{\"c\":");
        assert_eq!(got.len(), 4);
        assert_eq!(got[0], Ok("{\"a\":1}".into()));
        assert!(got[1].as_ref().is_err_and(|e| e.starts_with("8: unexpected byte 0x67")));
        assert_eq!(got[2], Ok("{\"b\":2}".into()));
        assert!(got[3].as_ref().is_err_and(|e| e.contains("input ends inside")));

        let big = format!("{{\"x\":\"{}\"}}{{\"y\":1}}", "a".repeat(5000));
        let got = values(big.as_bytes());
        assert!(got[0].as_ref().is_err_and(|e| e.contains("exceeds the limit of 1024")));
        assert_eq!(got[1], Ok("{\"y\":1}".into()));
    }

    #[test]
    fn a_line_break_inside_a_string_is_reported_and_reading_resumes() {
        let got = values(b"{\"a\":\"cut\n{\"b\":1}");
        assert!(got[0].as_ref().is_err_and(|e| e.contains("line break")));
        assert_eq!(got[1], Ok("{\"b\":1}".into()));
    }

    #[test]
    fn lines_are_bounded_and_numbered() {
        let long = format!("{}\nok\r\n", "x".repeat(2000));
        let mut lines = Lines::new(long.as_bytes(), 1024);
        match lines.next_item().ok().flatten() {
            Some(Item::Bad { line: 1, error, .. }) => assert!(error.to_string().contains("2000")),
            _ => panic!("expected an oversize report for line 1"),
        }
        match lines.next_item().ok().flatten() {
            Some(Item::Record { line: 2, bytes, offset }) => {
                assert_eq!(bytes, b"ok");
                assert_eq!(offset, 2001);
            }
            _ => panic!("expected line 2"),
        }
        assert!(lines.next_item().ok().flatten().is_none());
    }

    #[test]
    fn export_lines_split_at_the_timestamp() {
        let (stamp, rest) = split_export_line(b"2024-05-01T10:00:00.123456Z {\"a\":1}").unwrap();
        assert_eq!(stamp.to_rfc3339_opts(chrono::SecondsFormat::Micros, true), "2024-05-01T10:00:00.123456Z");
        assert_eq!(rest, b"{\"a\":1}");
        assert!(split_export_line(b"not-a-time {}").is_none());
    }
}
