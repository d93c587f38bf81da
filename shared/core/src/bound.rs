//! Bounds on what the product writes, whatever the input.
//!
//! Every string in an alert or a baseline can come from whoever wrote the
//! object: Kubernetes allows 256 KiB of annotations, and a forged record can
//! be larger. A value past its bound is cut to an excerpt, with its full
//! length and the sha256 of the whole, so it can still be told apart from
//! any other value and checked against the raw event kept by `audit_id`.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};
use sha2::{Digest, Sha256};

/// The hex sha256 of some bytes.
pub fn sha256(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// The longest prefix of `s` of at most `max` bytes that ends on a character boundary.
pub fn prefix(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

/// A value cut to an excerpt.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Excerpt {
    /// Always true: says what this object is.
    pub truncated: bool,
    /// The first bytes of the value.
    pub excerpt: String,
    /// The whole value's length in bytes.
    pub bytes: usize,
    /// The sha256 of the whole value.
    pub sha256: String,
}

impl Excerpt {
    /// The excerpt of `s`, keeping its first `keep` bytes.
    pub fn of(s: &str, keep: usize) -> Self {
        Self { truncated: true, excerpt: prefix(s, keep).to_owned(), bytes: s.len(), sha256: sha256(s.as_bytes()) }
    }
}

/// One line for people, cut to at most `max` bytes with an ellipsis.
pub fn line(s: &str, max: usize) -> String {
    if s.len() <= max {
        return s.to_owned();
    }
    format!("{}…", prefix(s, max.saturating_sub(3)))
}

/// Limits for [`json`].
#[derive(Clone, Copy, Debug)]
pub struct JsonLimits {
    /// Longest string kept whole.
    pub string: usize,
    /// Most items of an array kept.
    pub items: usize,
    /// Deepest nesting kept.
    pub depth: usize,
    /// Largest serialised whole.
    pub total: usize,
}

/// Evidence in an alert signal.
pub const EVIDENCE: JsonLimits = JsonLimits { string: 1024, items: 32, depth: 12, total: 8 * 1024 };

/// Bounds a JSON value in place: long strings become [`Excerpt`]s, long
/// arrays keep their first items and say how many were left out, deep
/// nesting is cut; if the whole is still too large, it becomes the excerpt of
/// its own JSON text.
pub fn json(value: &mut Value, limits: &JsonLimits) {
    walk(value, limits, 0);
    let size = size(value);
    if size > limits.total {
        let text = value.to_string();
        *value = json!(Excerpt::of(&text, limits.total / 2));
    }
}

fn walk(value: &mut Value, limits: &JsonLimits, depth: usize) {
    match value {
        Value::String(s) if s.len() > limits.string => *value = json!(Excerpt::of(s, limits.string / 2)),
        Value::Array(_) | Value::Object(_) if depth >= limits.depth => {
            let text = value.to_string();
            *value = json!(Excerpt::of(&text, limits.string / 2));
        }
        Value::Array(items) => {
            let omitted = items.len().saturating_sub(limits.items);
            items.truncate(limits.items);
            for item in items.iter_mut() {
                walk(item, limits, depth + 1);
            }
            if omitted > 0 {
                items.push(json!({"omitted_items": omitted}));
            }
        }
        Value::Object(map) => {
            bound_keys(map, limits);
            for (_, v) in map.iter_mut() {
                walk(v, limits, depth + 1);
            }
        }
        _ => {}
    }
}

/// Object keys come from input too (annotation names): long ones are cut.
fn bound_keys(map: &mut Map<String, Value>, limits: &JsonLimits) {
    if map.keys().all(|k| k.len() <= limits.string) {
        return;
    }
    let old = std::mem::take(map);
    for (k, v) in old {
        let key =
            if k.len() > limits.string { format!("{}…sha256:{}", prefix(&k, 64), sha256(k.as_bytes())) } else { k };
        map.insert(key, v);
    }
}

/// The length of any serialisable value's JSON text (0 if it cannot be
/// written as JSON), counted as it is written, never held.
pub fn size<T: Serialize + ?Sized>(value: &T) -> usize {
    struct Counter(usize);
    impl std::io::Write for Counter {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0 += buf.len();
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let mut counter = Counter(0);
    serde_json::to_writer(&mut counter, value).map_or(0, |()| counter.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_strings_become_excerpts_with_length_and_digest() {
        let big = "x".repeat(250 * 1024);
        let mut v = json!({"to": big.clone(), "note": "short"});
        json(&mut v, &EVIDENCE);
        assert_eq!(v["note"], "short");
        assert_eq!(v["to"]["truncated"], true);
        assert_eq!(v["to"]["bytes"], 250 * 1024);
        assert_eq!(v["to"]["sha256"], sha256(big.as_bytes()));
        assert!(size(&v) <= EVIDENCE.total);
    }

    #[test]
    fn long_arrays_and_many_fields_stay_within_the_total() {
        let mut v = json!({"list": (0..10_000).collect::<Vec<_>>()});
        json(&mut v, &EVIDENCE);
        assert_eq!(v["list"].as_array().unwrap().len(), 33);
        assert_eq!(v["list"][32]["omitted_items"], 10_000 - 32);
        let mut wide = json!({});
        for i in 0..2000 {
            wide[format!("annotation-{i}")] = json!("y".repeat(900));
        }
        json(&mut wide, &EVIDENCE);
        assert!(size(&wide) <= EVIDENCE.total, "{}", size(&wide));
        assert_eq!(wide["truncated"], true);
    }

    /// The size counted is the length of the JSON text the value writes, for
    /// a document as for a `Value` (integer map keys quoted, floats as written).
    #[test]
    fn size_is_the_length_of_the_json_text() {
        #[derive(Serialize)]
        struct Doc {
            name: String,
            seen: Option<u32>,
            weights: std::collections::BTreeMap<u32, f64>,
        }
        let doc = Doc { name: "web \"é\"".into(), seen: None, weights: [(1, 0.5), (20, 1e21)].into() };
        let text = serde_json::to_string(&doc).unwrap_or_default();
        assert!(!text.is_empty());
        assert_eq!(size(&doc), text.len());
        let value = json!({"b": [1, 2.5, null], "a": {"k": "v"}});
        assert_eq!(size(&value), value.to_string().len());
    }

    #[test]
    fn cuts_fall_on_character_boundaries() {
        let s = "é".repeat(10);
        assert_eq!(prefix(&s, 5), "éé");
        assert_eq!(line(&s, 8), "éé…");
        assert!(line("short", 8) == "short");
    }
}
