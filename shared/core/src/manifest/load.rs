//! Kubernetes manifests as written: multi-document YAML or JSON (`kubectl
//! get -o json` dumps, `List` kinds, rendered Helm or Kustomize output), read
//! into JSON objects that remember where each field was written, so a finding
//! can name its file, line and column.
//!
//! YAML 1.2's core schema types plain scalars, except under
//! `metadata.annotations`, `metadata.labels` and `data`, where Kubernetes
//! wants strings: there a plain `false` stays the text `false`. Anchors,
//! aliases and merge keys (`<<`) are resolved; an alias bomb stops at
//! [`MAX_NODES`]. A syntax error names its line and column and ends the file
//! (what came before it is kept); a document that is not a Kubernetes object
//! is skipped and counted.

use std::collections::{BTreeMap, HashMap};
use std::fmt;

use serde_json::{Map, Value};
use yaml_rust2::parser::{Event, Parser};
use yaml_rust2::scanner::{Marker, TScalarStyle};

/// Most values one file may expand to (aliases included).
pub const MAX_NODES: usize = 1_000_000;

/// A place in a file: 1-based line and column.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord)]
pub struct Position {
    /// Line, from 1.
    pub line: usize,
    /// Column, from 1.
    pub column: usize,
}

impl From<Marker> for Position {
    fn from(m: Marker) -> Self {
        Self { line: m.line(), column: m.col() + 1 }
    }
}

/// One Kubernetes object read from a file.
#[derive(Clone, Debug, PartialEq)]
pub struct Manifest {
    /// The file (or `-`) it came from.
    pub source: String,
    /// The object as JSON.
    pub object: Value,
    /// Where the object starts.
    pub at: Position,
    /// Where each field was written, by JSON pointer into [`Manifest::object`].
    positions: BTreeMap<String, Position>,
}

impl Manifest {
    /// An object with no file behind it (a store's baseline, a test).
    pub fn detached(source: &str, object: Value) -> Self {
        Self { source: source.to_owned(), object, at: Position::default(), positions: BTreeMap::new() }
    }

    /// `kind`.
    pub fn kind(&self) -> &str {
        self.object["kind"].as_str().unwrap_or_default()
    }

    /// `metadata.name`.
    pub fn name(&self) -> &str {
        self.object["metadata"]["name"].as_str().unwrap_or_default()
    }

    /// `metadata.namespace`, or `default` where it is not written (as `kubectl apply` would).
    pub fn namespace(&self) -> &str {
        self.object["metadata"]["namespace"].as_str().filter(|n| !n.is_empty()).unwrap_or("default")
    }

    /// Where the field at `pointer` was written; for a field that is not
    /// written (a missing TLS block), where its nearest written parent is.
    pub fn position(&self, pointer: &str) -> Position {
        let mut p = pointer;
        loop {
            if let Some(at) = self.positions.get(p) {
                return *at;
            }
            match p.rfind('/') {
                Some(i) => p = &p[..i],
                None => return self.at,
            }
        }
    }
}

/// A file that could not be read as YAML, or a document that could not be used.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LoadError {
    /// The file.
    pub source: String,
    /// Where.
    pub at: Position,
    /// What went wrong.
    pub message: String,
}

impl fmt::Display for LoadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}:{}: {}", self.source, self.at.line, self.at.column, self.message)
    }
}

impl std::error::Error for LoadError {}

/// A document passed over, and why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Skipped {
    /// The file.
    pub source: String,
    /// Where the document starts.
    pub at: Position,
    /// Why.
    pub reason: String,
}

/// What one file held.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Loaded {
    /// Kubernetes objects, `List` items flattened, in file order.
    pub objects: Vec<Manifest>,
    /// Documents that are not Kubernetes objects.
    pub skipped: Vec<Skipped>,
    /// What could not be read.
    pub errors: Vec<LoadError>,
}

/// One open collection while events arrive.
enum Frame {
    Map {
        map: Map<String, Value>,
        key: Option<(String, Marker)>,
        merges: Vec<Value>,
        pointer: String,
        anchor: usize,
        /// Placed by its first key: a block mapping's own mark is past it.
        placed_by_key: bool,
    },
    Seq {
        items: Vec<Value>,
        pointer: String,
        anchor: usize,
    },
}

struct Builder<'a> {
    source: &'a str,
    stack: Vec<Frame>,
    anchors: HashMap<usize, Value>,
    positions: BTreeMap<String, Position>,
    nodes: usize,
    root: Option<Value>,
}

fn escape(token: &str) -> String {
    token.replace('~', "~0").replace('/', "~1")
}

/// Kubernetes wants strings under these keys, whatever the YAML says.
fn keeps_text(pointer: &str) -> bool {
    pointer.ends_with("/metadata/annotations") || pointer.ends_with("/metadata/labels") || pointer.ends_with("/data")
}

/// A scalar as YAML 1.2's core schema types it.
fn scalar(text: String, style: TScalarStyle, text_only: bool) -> Value {
    if style != TScalarStyle::Plain || text_only {
        return Value::String(text);
    }
    match text.as_str() {
        "" | "~" | "null" | "Null" | "NULL" => return Value::Null,
        "true" | "True" | "TRUE" => return Value::Bool(true),
        "false" | "False" | "FALSE" => return Value::Bool(false),
        _ => {}
    }
    if let Ok(i) = text.parse::<i64>() {
        return Value::from(i);
    }
    let numeric = text.bytes().all(|b| b.is_ascii_digit() || matches!(b, b'.' | b'-' | b'+' | b'e' | b'E'))
        && text.bytes().any(|b| b.is_ascii_digit());
    if numeric
        && let Ok(f) = text.parse::<f64>()
        && let Some(n) = serde_json::Number::from_f64(f)
    {
        return Value::Number(n);
    }
    Value::String(text)
}

fn count(v: &Value) -> usize {
    match v {
        Value::Array(a) => 1 + a.iter().map(count).sum::<usize>(),
        Value::Object(m) => 1 + m.values().map(count).sum::<usize>(),
        _ => 1,
    }
}

impl Builder<'_> {
    fn error(&self, at: Marker, message: impl Into<String>) -> LoadError {
        LoadError { source: self.source.to_owned(), at: at.into(), message: message.into() }
    }

    /// The pointer a new value gets, and where it was written.
    fn child(&self, mark: Marker) -> Result<(String, Position), LoadError> {
        match self.stack.last() {
            None => Ok((String::new(), mark.into())),
            Some(Frame::Map { key: Some((k, at)), pointer, .. }) => {
                Ok((format!("{pointer}/{}", escape(k)), (*at).into()))
            }
            Some(Frame::Map { key: None, .. }) => Err(self.error(mark, "a mapping or sequence used as a key")),
            Some(Frame::Seq { items, pointer, .. }) => Ok((format!("{pointer}/{}", items.len()), mark.into())),
        }
    }

    /// Counts `n` more values against [`MAX_NODES`].
    fn grow(&mut self, n: usize, mark: Marker) -> Result<(), LoadError> {
        self.nodes += n;
        if self.nodes > MAX_NODES {
            return Err(self.error(mark, format!("the document expands past {MAX_NODES} values (an alias bomb?)")));
        }
        Ok(())
    }

    /// Puts a finished value where it belongs.
    fn place(&mut self, value: Value, anchor: usize, mark: Marker) -> Result<(), LoadError> {
        if anchor > 0 {
            self.anchors.insert(anchor, value.clone());
        }
        match self.stack.last_mut() {
            None => self.root = Some(value),
            Some(Frame::Map { map, key, merges, .. }) => {
                let Some((k, _)) = key.take() else { return Err(self.error(mark, "a value without a key")) };
                if k == "<<" {
                    merges.push(value);
                } else {
                    map.insert(k, value);
                }
            }
            Some(Frame::Seq { items, .. }) => items.push(value),
        }
        Ok(())
    }

    fn event(&mut self, event: Event, mark: Marker) -> Result<(), LoadError> {
        match event {
            Event::Scalar(text, style, anchor, tag) => {
                if let Some(Frame::Map { key: key @ None, pointer, placed_by_key, .. }) = self.stack.last_mut() {
                    if *placed_by_key {
                        *placed_by_key = false;
                        self.positions.insert(pointer.clone(), mark.into());
                    }
                    *key = Some((text, mark));
                    return Ok(());
                }
                let (pointer, at) = self.child(mark)?;
                self.grow(1, mark)?;
                let parent = pointer.rsplit_once('/').map_or("", |(p, _)| p);
                let text_only = keeps_text(parent) || tag.is_some_and(|t| t.suffix == "str");
                self.positions.insert(pointer, at);
                self.place(scalar(text, style, text_only), anchor, mark)
            }
            Event::MappingStart(anchor, _) => {
                let (pointer, at) = self.child(mark)?;
                self.grow(1, mark)?;
                // Under a key, the key says where; elsewhere (a sequence item,
                // the document), the first key does.
                let placed_by_key = !matches!(self.stack.last(), Some(Frame::Map { .. }));
                self.positions.insert(pointer.clone(), at);
                self.stack.push(Frame::Map {
                    map: Map::new(),
                    key: None,
                    merges: Vec::new(),
                    pointer,
                    anchor,
                    placed_by_key,
                });
                Ok(())
            }
            Event::SequenceStart(anchor, _) => {
                let (pointer, at) = self.child(mark)?;
                self.grow(1, mark)?;
                self.positions.insert(pointer.clone(), at);
                self.stack.push(Frame::Seq { items: Vec::new(), pointer, anchor });
                Ok(())
            }
            Event::MappingEnd => match self.stack.pop() {
                Some(Frame::Map { mut map, merges, anchor, .. }) => {
                    // Merge keys: the mapping's own keys win, earlier merges over later.
                    for merged in merges {
                        let sources = match merged {
                            Value::Array(items) => items,
                            other => vec![other],
                        };
                        for source in sources {
                            let Value::Object(entries) = source else {
                                return Err(self.error(mark, "a merge key (<<) whose value is not a mapping"));
                            };
                            for (k, v) in entries {
                                map.entry(k).or_insert(v);
                            }
                        }
                    }
                    self.place(Value::Object(map), anchor, mark)
                }
                _ => Err(self.error(mark, "unbalanced mapping")),
            },
            Event::SequenceEnd => match self.stack.pop() {
                Some(Frame::Seq { items, anchor, .. }) => self.place(Value::Array(items), anchor, mark),
                _ => Err(self.error(mark, "unbalanced sequence")),
            },
            Event::Alias(id) => {
                let Some(value) = self.anchors.get(&id).cloned() else {
                    return Err(self.error(mark, "an alias to an unknown anchor"));
                };
                if let Some(Frame::Map { key: key @ None, .. }) = self.stack.last_mut() {
                    let Value::String(k) = value else { return Err(self.error(mark, "an alias used as a key")) };
                    *key = Some((k, mark));
                    return Ok(());
                }
                let (pointer, at) = self.child(mark)?;
                self.grow(count(&value), mark)?;
                self.positions.insert(pointer, at);
                self.place(value, 0, mark)
            }
            Event::DocumentStart | Event::DocumentEnd | Event::StreamStart | Event::StreamEnd | Event::Nothing => {
                Ok(())
            }
        }
    }
}

/// Reads every document of one file.
pub fn load(source: &str, text: &str) -> Loaded {
    let mut out = Loaded::default();
    let mut parser = Parser::new_from_str(text);
    let mut builder = Builder {
        source,
        stack: Vec::new(),
        anchors: HashMap::new(),
        positions: BTreeMap::new(),
        nodes: 0,
        root: None,
    };
    let mut start = Position { line: 1, column: 1 };
    loop {
        let (event, mark) = match parser.next_token() {
            Ok(e) => e,
            Err(e) => {
                out.errors.push(LoadError {
                    source: source.to_owned(),
                    at: (*e.marker()).into(),
                    message: e.info().to_owned(),
                });
                return out;
            }
        };
        match event {
            Event::StreamEnd => return out,
            Event::DocumentStart => {
                start = mark.into();
                builder.root = None;
                builder.positions.clear();
                builder.anchors.clear();
            }
            Event::DocumentEnd => {
                let positions = std::mem::take(&mut builder.positions);
                if let Some(root) = builder.root.take() {
                    collect(source, root, start, &positions, &mut out);
                }
            }
            other => {
                if let Err(e) = builder.event(other, mark) {
                    out.errors.push(e);
                    return out;
                }
            }
        }
    }
}

/// Files the objects of one document: itself, or a `List`'s items.
fn collect(source: &str, root: Value, start: Position, positions: &BTreeMap<String, Position>, out: &mut Loaded) {
    let skip = |reason: &str, out: &mut Loaded| {
        out.skipped.push(Skipped { source: source.to_owned(), at: start, reason: reason.to_owned() });
    };
    let Value::Object(map) = &root else {
        if !root.is_null() {
            skip("not a mapping", out);
        }
        return;
    };
    let kind = map.get("kind").and_then(Value::as_str).unwrap_or_default();
    if kind.is_empty() || map.get("apiVersion").and_then(Value::as_str).is_none() {
        return skip("not a Kubernetes object: no kind or apiVersion", out);
    }
    if kind.ends_with("List") && map.get("items").is_some_and(Value::is_array) {
        let Some(Value::Array(items)) = map.get("items") else { return };
        for (i, item) in items.iter().enumerate() {
            let prefix = format!("/items/{i}");
            let sub: BTreeMap<String, Position> = positions
                .range(prefix.clone()..)
                .take_while(|(k, _)| k.starts_with(&prefix))
                .filter(|(k, _)| k.len() == prefix.len() || k.as_bytes()[prefix.len()] == b'/')
                .map(|(k, v)| (k[prefix.len()..].to_owned(), *v))
                .collect();
            let at = sub.get("").copied().unwrap_or(start);
            collect(source, item.clone(), at, &sub, out);
        }
        return;
    }
    let at = positions.get("").copied().unwrap_or(start);
    out.objects.push(Manifest { source: source.to_owned(), object: root, at, positions: positions.clone() });
}

#[cfg(test)]
mod tests {
    use super::*;

    const MULTI: &str = "\
# a comment
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata:
  name: web
  annotations:
    nginx.ingress.kubernetes.io/ssl-redirect: false
    team: shop
spec:
  rules:
    - host: shop.example.com
---
defaults: &defaults
  type: ClusterIP
---
apiVersion: v1
kind: Service
metadata: {name: api, namespace: shop, labels: {team: &team shop, owner: *team}}
spec:
  <<: {type: ExternalName, externalName: example.org}
  externalName: internal.example.org
";

    #[test]
    fn documents_fields_and_lines() {
        let loaded = load("m.yaml", MULTI);
        assert!(loaded.errors.is_empty(), "{:?}", loaded.errors);
        assert_eq!(loaded.objects.len(), 2);
        assert_eq!(loaded.skipped.len(), 1, "the document without kind");
        let ing = &loaded.objects[0];
        assert_eq!((ing.kind(), ing.name(), ing.namespace()), ("Ingress", "web", "default"));
        // Annotations stay text.
        assert_eq!(ing.object["metadata"]["annotations"]["nginx.ingress.kubernetes.io/ssl-redirect"], "false");
        let at = ing.position("/metadata/annotations/nginx.ingress.kubernetes.io~1ssl-redirect");
        assert_eq!((at.line, at.column), (7, 5));
        assert_eq!(ing.position("/spec/rules/0/host").line, 11);
        // A field that is not there: its nearest parent.
        assert_eq!(ing.position("/spec/tls").line, ing.position("/spec").line);
        let svc = &loaded.objects[1];
        assert_eq!(svc.object["metadata"]["labels"]["owner"], "shop", "an alias");
        assert_eq!(svc.object["spec"]["type"], "ExternalName", "a merge key");
        assert_eq!(svc.object["spec"]["externalName"], "internal.example.org", "own keys win over merged ones");
        assert_eq!((svc.at.line, svc.at.column), (16, 1));
        // A mapping in a sequence starts where its first key is.
        let seq = load("s.yaml", "apiVersion: v1\nkind: X\nmetadata: {name: a}\nitems:\n  - name: one\n    port: 1\n");
        let at = seq.objects[0].position("/items/0");
        assert_eq!((at.line, at.column), (5, 5));
    }

    #[test]
    fn lists_json_and_errors() {
        let list = r#"{"apiVersion": "v1", "kind": "List", "items": [
  {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "a"}, "spec": {"port": 80}},
  {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "b"}}
]}"#;
        let loaded = load("dump.json", list);
        assert_eq!(loaded.objects.iter().map(Manifest::name).collect::<Vec<_>>(), ["a", "b"]);
        assert_eq!(loaded.objects[1].at.line, 3);
        assert_eq!(loaded.objects[0].object["spec"]["port"], 80);
        let broken = load("bad.yaml", "apiVersion: v1\nkind: Service\nmetadata:\n  name: [a\n");
        assert_eq!(broken.errors.len(), 1);
        assert_eq!(broken.errors[0].source, "bad.yaml");
        assert!(broken.errors[0].at.line >= 4, "{}", broken.errors[0]);
    }

    /// YAML breaks lines at a lone carriage return too (a fuzzer found the
    /// count off by those); positions follow YAML.
    #[test]
    fn a_lone_carriage_return_is_a_line_break() {
        let loaded = load("cr.yaml", "apiVersion: v1\rkind: Service\r\nmetadata:\r  name: a\n");
        assert_eq!(loaded.objects[0].position("/metadata/name").line, 4);
    }

    #[test]
    fn an_alias_bomb_stops() {
        let mut text = String::from("a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n");
        for i in 1..12 {
            let refs = vec![format!("*a{}", i - 1); 10].join(", ");
            text.push_str(&format!("a{i}: &a{i} [{refs}]\n"));
        }
        let loaded = load("bomb.yaml", &text);
        assert!(loaded.errors[0].message.contains("alias bomb"), "{:?}", loaded.errors);
    }
}
