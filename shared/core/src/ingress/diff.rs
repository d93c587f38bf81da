//! The semantic diff of two Ingress states.
//!
//! [`diff`] answers "what changed, by meaning": a host that now exists, a path
//! sent elsewhere, a TLS block gone, an allowlist that admits addresses it did
//! not. Field order, formatting and server-set fields cannot produce a change
//! because the model never holds them; source ranges are compared as address
//! sets (see [`super::cidr`]).

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use ipnet::IpNet;
use serde::Serialize;

use super::annotations::{AnnotationKind, Controller, classify};
use super::cidr::{AddressSet, InvalidEntry, SourceRanges};
use super::{Backend, IngressState};
use crate::text::escape;

/// One change between two states of an Ingress.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "change", rename_all = "snake_case")]
pub enum Change {
    /// A host now has a rule (`None`: a rule for every host).
    HostAdded {
        /// The host.
        host: Option<String>,
    },
    /// A host no longer has a rule.
    HostRemoved {
        /// The host.
        host: Option<String>,
    },
    /// A path appeared under an existing host.
    PathAdded {
        /// The host.
        host: Option<String>,
        /// The path.
        path: Option<String>,
        /// Where it goes.
        backend: Option<Backend>,
    },
    /// A path disappeared from a host that remains.
    PathRemoved {
        /// The host.
        host: Option<String>,
        /// The path.
        path: Option<String>,
    },
    /// An existing host/path now sends traffic somewhere else.
    BackendChanged {
        /// The host.
        host: Option<String>,
        /// The path.
        path: Option<String>,
        /// Where it went.
        from: Option<Backend>,
        /// Where it goes now.
        to: Option<Backend>,
    },
    /// An existing host/path matches differently.
    PathTypeChanged {
        /// The host.
        host: Option<String>,
        /// The path.
        path: Option<String>,
        /// Old path type.
        from: Option<String>,
        /// New path type.
        to: Option<String>,
    },
    /// The default backend changed, appeared or went away.
    DefaultBackendChanged {
        /// Before.
        from: Option<Backend>,
        /// After.
        to: Option<Backend>,
    },
    /// Every TLS block was removed.
    TlsRemoved {
        /// Secrets no longer used.
        secrets: Vec<String>,
        /// Hosts no longer served over TLS.
        hosts: Vec<String>,
    },
    /// Some hosts are no longer covered by any TLS block.
    TlsHostsDropped {
        /// The hosts.
        hosts: Vec<String>,
    },
    /// A host is now served with a certificate from another Secret.
    TlsSecretSwapped {
        /// The host (empty for a TLS block without hosts).
        host: String,
        /// Old Secret.
        from: Option<String>,
        /// New Secret.
        to: Option<String>,
    },
    /// Hosts newly covered by TLS.
    TlsAdded {
        /// The hosts.
        hosts: Vec<String>,
    },
    /// The effective class (field or legacy annotation) changed.
    ClassChanged {
        /// Before.
        from: Option<String>,
        /// After.
        to: Option<String>,
    },
    /// A source-range allowlist now admits addresses it did not (includes
    /// removing the allowlist, which admits everyone).
    AllowlistWidened {
        /// The annotation.
        annotation: String,
        /// Entries of the new list not wholly inside the old one, as written
        /// (`0.0.0.0/0`); empty when the allowlist was removed.
        entries: Vec<IpNet>,
        /// Exactly the addresses newly admitted, as the fewest CIDR blocks.
        newly_admitted: Vec<IpNet>,
        /// True when the annotation was removed altogether.
        removed: bool,
    },
    /// A source-range allowlist admits fewer addresses (includes adding one).
    AllowlistNarrowed {
        /// The annotation.
        annotation: String,
        /// The addresses no longer admitted, as CIDR blocks.
        no_longer_admitted: Vec<IpNet>,
        /// True when there was no allowlist before.
        added: bool,
    },
    /// A denylist refuses fewer addresses: they are now let in.
    DenylistShrunk {
        /// The annotation.
        annotation: String,
        /// The addresses no longer refused.
        no_longer_denied: Vec<IpNet>,
    },
    /// A denylist refuses more addresses.
    DenylistGrown {
        /// The annotation.
        annotation: String,
        /// The addresses newly refused.
        newly_denied: Vec<IpNet>,
    },
    /// A source-range list holds entries that are not networks (some
    /// controllers then ignore the whole list).
    SourceRangeInvalid {
        /// The annotation.
        annotation: String,
        /// The bad entries.
        entries: Vec<InvalidEntry>,
    },
    /// Any other annotation appeared, changed or went away.
    Annotation {
        /// The annotation key as written now (or before, if removed).
        annotation: String,
        /// The controller it configures.
        controller: Controller,
        /// What kind of setting it is.
        kind: AnnotationKind,
        /// Added, removed or changed.
        action: Action,
        /// Value before.
        from: Option<String>,
        /// Value after.
        to: Option<String>,
    },
}

/// What happened to an annotation.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    /// It appeared.
    Added,
    /// It went away.
    Removed,
    /// Its value changed.
    Changed,
}

/// Computes the changes from `old` to `new`, in a stable order.
pub fn diff(old: &IngressState, new: &IngressState) -> Vec<Change> {
    let mut out = Vec::new();
    if old.class() != new.class() {
        out.push(Change::ClassChanged { from: old.class().map(str::to_owned), to: new.class().map(str::to_owned) });
    }
    if old.default_backend != new.default_backend {
        out.push(Change::DefaultBackendChanged { from: old.default_backend.clone(), to: new.default_backend.clone() });
    }
    rules(old, new, &mut out);
    tls(old, new, &mut out);
    annotations(old, new, &mut out);
    out
}

type PathKey<'a> = (Option<&'a str>, Option<&'a str>);
/// Path → (path type, backend).
type Paths<'a> = BTreeMap<Option<&'a str>, (Option<&'a str>, Option<&'a Backend>)>;

/// Host → path → (path type, backend); later duplicates win, as in the controllers.
fn routes(state: &IngressState) -> BTreeMap<Option<&str>, Paths<'_>> {
    let mut out: BTreeMap<_, Paths<'_>> = BTreeMap::new();
    for rule in &state.rules {
        let paths = out.entry(rule.host.as_deref()).or_default();
        for p in &rule.paths {
            paths.insert(p.path.as_deref(), (p.path_type.as_deref(), p.backend.as_ref()));
        }
    }
    out
}

fn rules(old: &IngressState, new: &IngressState, out: &mut Vec<Change>) {
    let (before, after) = (routes(old), routes(new));
    let owned = |s: Option<&str>| s.map(str::to_owned);
    for host in before.keys().filter(|h| !after.contains_key(*h)) {
        out.push(Change::HostRemoved { host: owned(*host) });
    }
    for (host, paths) in &after {
        let Some(old_paths) = before.get(host) else {
            out.push(Change::HostAdded { host: owned(*host) });
            continue;
        };
        let keys: BTreeSet<PathKey<'_>> = old_paths.keys().chain(paths.keys()).map(|p| (*host, *p)).collect();
        for (_, path) in keys {
            match (old_paths.get(&path), paths.get(&path)) {
                (Some(_), None) => out.push(Change::PathRemoved { host: owned(*host), path: owned(path) }),
                (None, Some((_, backend))) => {
                    out.push(Change::PathAdded { host: owned(*host), path: owned(path), backend: backend.cloned() })
                }
                (Some((old_type, old_backend)), Some((new_type, new_backend))) => {
                    if old_backend != new_backend {
                        out.push(Change::BackendChanged {
                            host: owned(*host),
                            path: owned(path),
                            from: old_backend.cloned(),
                            to: new_backend.cloned(),
                        });
                    }
                    if old_type != new_type {
                        out.push(Change::PathTypeChanged {
                            host: owned(*host),
                            path: owned(path),
                            from: owned(*old_type),
                            to: owned(*new_type),
                        });
                    }
                }
                (None, None) => {}
            }
        }
    }
}

/// Host → Secret serving it (hostless blocks under `""`).
fn tls_hosts(state: &IngressState) -> BTreeMap<&str, Option<&str>> {
    let mut out = BTreeMap::new();
    for block in &state.tls {
        if block.hosts.is_empty() {
            out.insert("", block.secret_name.as_deref());
        }
        for host in &block.hosts {
            out.insert(host.as_str(), block.secret_name.as_deref());
        }
    }
    out
}

fn tls(old: &IngressState, new: &IngressState, out: &mut Vec<Change>) {
    let (before, after) = (tls_hosts(old), tls_hosts(new));
    if !old.tls.is_empty() && new.tls.is_empty() {
        let secrets: BTreeSet<String> = old.tls.iter().filter_map(|t| t.secret_name.clone()).collect();
        out.push(Change::TlsRemoved {
            secrets: secrets.into_iter().collect(),
            hosts: before.keys().filter(|h| !h.is_empty()).map(|h| (*h).to_owned()).collect(),
        });
        return;
    }
    let dropped: Vec<String> = before.keys().filter(|h| !after.contains_key(*h)).map(|h| (*h).to_owned()).collect();
    if !dropped.is_empty() {
        out.push(Change::TlsHostsDropped { hosts: dropped });
    }
    for (host, secret) in &after {
        if let Some(old_secret) = before.get(host).filter(|s| *s != secret) {
            out.push(Change::TlsSecretSwapped {
                host: (*host).to_owned(),
                from: old_secret.map(str::to_owned),
                to: secret.map(str::to_owned),
            });
        }
    }
    let added: Vec<String> = after.keys().filter(|h| !before.contains_key(*h)).map(|h| (*h).to_owned()).collect();
    if !added.is_empty() {
        out.push(Change::TlsAdded { hosts: added });
    }
}

fn annotations(old: &IngressState, new: &IngressState, out: &mut Vec<Change>) {
    let (before, after) = (old.settings(), new.settings());
    let settings: BTreeSet<&str> = before.keys().chain(after.keys()).copied().collect();
    for setting in settings {
        let (was, now) = (before.get(setting), after.get(setting));
        if was.map(|(_, v)| *v) == now.map(|(_, v)| *v) {
            continue;
        }
        let Some((key, _)) = now.or(was) else { continue };
        let class = classify(key);
        let (was, now) = (was.map(|(_, v)| *v), now.map(|(_, v)| *v));
        match class.kind {
            AnnotationKind::Allowlist => allowlist(key, class.controller, was, now, out),
            AnnotationKind::Denylist => denylist(key, was, now, out),
            kind => {
                let action = match (was, now) {
                    (None, _) => Action::Added,
                    (_, None) => Action::Removed,
                    _ => Action::Changed,
                };
                out.push(Change::Annotation {
                    annotation: (*key).to_owned(),
                    controller: class.controller,
                    kind,
                    action,
                    from: was.map(str::to_owned),
                    to: now.map(str::to_owned),
                });
            }
        }
    }
}

/// What an allowlist admits: absent or empty means no restriction.
fn admitted(value: Option<&str>) -> (AddressSet, Option<SourceRanges>) {
    match value.map(SourceRanges::parse) {
        Some(ranges) if !ranges.networks.is_empty() => (ranges.addresses(), Some(ranges)),
        Some(ranges) => (AddressSet::everything(), Some(ranges)),
        None => (AddressSet::everything(), None),
    }
}

fn report_invalid(key: &str, was: Option<&SourceRanges>, now: Option<&SourceRanges>, out: &mut Vec<Change>) {
    let old_bad: Vec<&InvalidEntry> = was.map(|r| r.invalid.iter().collect()).unwrap_or_default();
    let new_bad: Vec<InvalidEntry> =
        now.map(|r| r.invalid.iter().filter(|e| !old_bad.contains(e)).cloned().collect()).unwrap_or_default();
    if !new_bad.is_empty() {
        out.push(Change::SourceRangeInvalid { annotation: key.to_owned(), entries: new_bad });
    }
}

fn allowlist(key: &str, _controller: Controller, was: Option<&str>, now: Option<&str>, out: &mut Vec<Change>) {
    let (old_set, old_ranges) = admitted(was);
    let (new_set, new_ranges) = admitted(now);
    let widened = new_set.difference(&old_set);
    if !widened.is_empty() {
        let entries = new_ranges
            .as_ref()
            .map(|r| {
                r.networks.iter().filter(|n| !old_set.contains(&AddressSet::from_networks(&[**n]))).copied().collect()
            })
            .unwrap_or_default();
        out.push(Change::AllowlistWidened {
            annotation: key.to_owned(),
            entries,
            newly_admitted: widened.to_networks(),
            removed: now.is_none(),
        });
    }
    let narrowed = old_set.difference(&new_set);
    if !narrowed.is_empty() {
        out.push(Change::AllowlistNarrowed {
            annotation: key.to_owned(),
            no_longer_admitted: narrowed.to_networks(),
            added: was.is_none(),
        });
    }
    report_invalid(key, old_ranges.as_ref(), new_ranges.as_ref(), out);
}

fn denylist(key: &str, was: Option<&str>, now: Option<&str>, out: &mut Vec<Change>) {
    let old_ranges = was.map(SourceRanges::parse);
    let new_ranges = now.map(SourceRanges::parse);
    let set = |r: &Option<SourceRanges>| r.as_ref().map_or_else(AddressSet::empty, SourceRanges::addresses);
    let (old_set, new_set) = (set(&old_ranges), set(&new_ranges));
    let freed = old_set.difference(&new_set);
    if !freed.is_empty() {
        out.push(Change::DenylistShrunk { annotation: key.to_owned(), no_longer_denied: freed.to_networks() });
    }
    let grown = new_set.difference(&old_set);
    if !grown.is_empty() {
        out.push(Change::DenylistGrown { annotation: key.to_owned(), newly_denied: grown.to_networks() });
    }
    report_invalid(key, old_ranges.as_ref(), new_ranges.as_ref(), out);
}

fn opt<T: fmt::Display>(v: &Option<T>) -> String {
    v.as_ref().map_or_else(|| "(none)".to_owned(), |v| escape(&v.to_string()).into_owned())
}

fn host(h: &Option<String>) -> String {
    h.as_deref().map_or_else(|| "(any host)".to_owned(), |h| escape(h).into_owned())
}

fn list<T: fmt::Display>(items: &[T]) -> String {
    items.iter().map(|i| escape(&i.to_string()).into_owned()).collect::<Vec<_>>().join(", ")
}

/// Network lists can run to dozens of blocks: text shows the first few.
fn networks(items: &[IpNet]) -> String {
    const SHOWN: usize = 4;
    if items.len() <= SHOWN {
        return list(items);
    }
    format!("{}, … {} more blocks", list(&items[..SHOWN]), items.len() - SHOWN)
}

/// One line of text per change; every attacker-controlled string is escaped.
impl fmt::Display for Change {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::HostAdded { host: h } => write!(f, "host added: {}", host(h)),
            Self::HostRemoved { host: h } => write!(f, "host removed: {}", host(h)),
            Self::PathAdded { host: h, path, backend } => {
                write!(f, "path added: {} {} -> {}", host(h), opt(path), opt(backend))
            }
            Self::PathRemoved { host: h, path } => write!(f, "path removed: {} {}", host(h), opt(path)),
            Self::BackendChanged { host: h, path, from, to } => {
                write!(f, "backend changed: {} {}: {} -> {}", host(h), opt(path), opt(from), opt(to))
            }
            Self::PathTypeChanged { host: h, path, from, to } => {
                write!(f, "path type changed: {} {}: {} -> {}", host(h), opt(path), opt(from), opt(to))
            }
            Self::DefaultBackendChanged { from, to } => {
                write!(f, "default backend changed: {} -> {}", opt(from), opt(to))
            }
            Self::TlsRemoved { secrets, hosts } => {
                write!(f, "TLS removed: hosts [{}], secrets [{}]", list(hosts), list(secrets))
            }
            Self::TlsHostsDropped { hosts } => write!(f, "TLS no longer covers: {}", list(hosts)),
            Self::TlsSecretSwapped { host: h, from, to } => {
                write!(f, "TLS secret swapped for {}: {} -> {}", escape(h), opt(from), opt(to))
            }
            Self::TlsAdded { hosts } => write!(f, "TLS added for: {}", list(hosts)),
            Self::ClassChanged { from, to } => write!(f, "class changed: {} -> {}", opt(from), opt(to)),
            Self::AllowlistWidened { annotation, entries, newly_admitted, removed } => {
                if *removed {
                    write!(f, "allowlist removed: {} (now admits everyone)", escape(annotation))
                } else {
                    write!(
                        f,
                        "allowlist widened: {} +[{}] (newly admitted: {})",
                        escape(annotation),
                        list(entries),
                        networks(newly_admitted)
                    )
                }
            }
            Self::AllowlistNarrowed { annotation, no_longer_admitted, added } => {
                let verb = if *added { "added" } else { "narrowed" };
                write!(
                    f,
                    "allowlist {verb}: {} (no longer admitted: {})",
                    escape(annotation),
                    networks(no_longer_admitted)
                )
            }
            Self::DenylistShrunk { annotation, no_longer_denied } => {
                write!(f, "denylist shrunk: {} (no longer denied: {})", escape(annotation), networks(no_longer_denied))
            }
            Self::DenylistGrown { annotation, newly_denied } => {
                write!(f, "denylist grown: {} (newly denied: {})", escape(annotation), networks(newly_denied))
            }
            Self::SourceRangeInvalid { annotation, entries } => {
                let bad: Vec<String> = entries.iter().map(|e| format!("{} ({})", escape(&e.entry), e.reason)).collect();
                write!(f, "invalid source ranges in {}: {}", escape(annotation), bad.join(", "))
            }
            Self::Annotation { annotation, kind, action, from, to, .. } => {
                let kind =
                    serde_json::to_value(kind).ok().and_then(|v| v.as_str().map(str::to_owned)).unwrap_or_default();
                match action {
                    Action::Added => write!(f, "{kind} annotation added: {} = {}", escape(annotation), opt(to)),
                    Action::Removed => {
                        write!(f, "{kind} annotation removed: {} (was {})", escape(annotation), opt(from))
                    }
                    Action::Changed => {
                        write!(f, "{kind} annotation changed: {}: {} -> {}", escape(annotation), opt(from), opt(to))
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn state(annotations: serde_json::Value, spec: serde_json::Value) -> IngressState {
        IngressState::from_value(&json!({"metadata": {"annotations": annotations}, "spec": spec})).unwrap()
    }

    fn spec() -> serde_json::Value {
        json!({
            "ingressClassName": "nginx",
            "rules": [{"host": "shop.example.com", "http": {"paths": [
                {"path": "/", "pathType": "Prefix", "backend": {"service": {"name": "web", "port": {"number": 80}}}},
                {"path": "/api", "pathType": "Prefix", "backend": {"service": {"name": "api", "port": {"number": 8080}}}}
            ]}}],
            "tls": [{"hosts": ["shop.example.com"], "secretName": "shop-tls"}]
        })
    }

    const ALLOW: &str = "nginx.ingress.kubernetes.io/allowlist-source-range";

    #[test]
    fn server_set_fields_and_formatting_are_not_changes() {
        let a = IngressState::from_value(&json!({
            "metadata": {"name": "web", "resourceVersion": "1", "generation": 1, "uid": "u1",
                         "creationTimestamp": "2024-01-01T00:00:00Z", "managedFields": [{"manager": "kubectl"}],
                         "annotations": {"kubectl.kubernetes.io/last-applied-configuration": "{\"a\":1}"}},
            "spec": spec(), "status": {}
        }))
        .unwrap();
        let b = IngressState::from_value(&json!({
            "metadata": {"name": "web", "resourceVersion": "77", "generation": 3, "uid": "u1",
                         "managedFields": [{"manager": "argocd"}],
                         "annotations": {"kubectl.kubernetes.io/last-applied-configuration": "{ \"a\" : 1 }\n"}},
            "spec": spec(), "status": {"loadBalancer": {"ingress": [{"ip": "1.2.3.4"}]}}
        }))
        .unwrap();
        assert_eq!(diff(&a, &b), vec![]);
    }

    #[test]
    fn allowlist_widened_names_the_new_range() {
        let old = state(json!({ALLOW: "10.0.0.0/8"}), spec());
        let new = state(json!({ALLOW: "0.0.0.0/0"}), spec());
        let changes = diff(&old, &new);
        assert_eq!(changes.len(), 1);
        let Change::AllowlistWidened { entries, newly_admitted, removed, .. } = &changes[0] else {
            panic!("expected a widening, got {changes:?}")
        };
        assert_eq!(entries, &["0.0.0.0/0".parse::<IpNet>().unwrap()]);
        assert!(!removed);
        assert!(newly_admitted.contains(&"128.0.0.0/1".parse().unwrap()));
        assert!(!newly_admitted.iter().any(|n| n.contains(&"10.1.2.3".parse::<std::net::IpAddr>().unwrap())));
    }

    #[test]
    fn allowlist_alias_rename_is_no_change_and_removal_is_widening() {
        let old = state(json!({"nginx.ingress.kubernetes.io/whitelist-source-range": "10.0.0.0/8"}), spec());
        let renamed = state(json!({ALLOW: "10.0.0.0/8"}), spec());
        assert_eq!(diff(&old, &renamed), vec![]);
        let gone = state(json!({}), spec());
        assert!(matches!(&diff(&old, &gone)[..], [Change::AllowlistWidened { removed: true, .. }]));
        assert!(matches!(&diff(&gone, &old)[..], [Change::AllowlistNarrowed { added: true, .. }]));
    }

    #[test]
    fn an_invalid_entry_is_reported_not_ignored() {
        let old = state(json!({ALLOW: "10.0.0.0/8"}), spec());
        let new = state(json!({ALLOW: "10.0.0.0/8, 10.0.0.0/99"}), spec());
        assert!(
            matches!(&diff(&old, &new)[..], [Change::SourceRangeInvalid { entries, .. }] if entries[0].entry == "10.0.0.0/99")
        );
    }

    #[test]
    fn denylist_shrinking_lets_addresses_in() {
        let key = "nginx.ingress.kubernetes.io/denylist-source-range";
        let old = state(json!({key: "198.51.100.0/24"}), spec());
        let new = state(json!({key: "198.51.100.0/25"}), spec());
        assert!(
            matches!(&diff(&old, &new)[..], [Change::DenylistShrunk { no_longer_denied, .. }] if no_longer_denied[0].to_string() == "198.51.100.128/25")
        );
    }

    #[test]
    fn routing_changes_are_typed() {
        let old = state(json!({}), spec());
        let mut s = spec();
        s["rules"][0]["http"]["paths"][1]["backend"]["service"]["name"] = json!("exfil");
        s["rules"][0]["http"]["paths"][0]["pathType"] = json!("ImplementationSpecific");
        s["rules"].as_array_mut().unwrap().push(json!({"host": "*.example.com", "http": {"paths": [
            {"path": "/", "backend": {"service": {"name": "web", "port": {"number": 80}}}}]}}));
        s["defaultBackend"] = json!({"service": {"name": "catchall", "port": {"number": 80}}});
        s["ingressClassName"] = json!("rogue");
        let changes = diff(&old, &state(json!({}), s));
        let kinds: Vec<String> = changes.iter().map(|c| c.to_string()).collect();
        assert_eq!(
            kinds,
            [
                "class changed: nginx -> rogue",
                "default backend changed: (none) -> service catchall:80",
                "host added: *.example.com",
                "path type changed: shop.example.com /: Prefix -> ImplementationSpecific",
                "backend changed: shop.example.com /api: service api:8080 -> service exfil:8080",
            ]
        );
    }

    #[test]
    fn tls_changes_are_typed() {
        let old = state(json!({}), spec());
        let mut swapped = spec();
        swapped["tls"][0]["secretName"] = json!("attacker-cert");
        assert!(matches!(&diff(&old, &state(json!({}), swapped))[..],
            [Change::TlsSecretSwapped { to: Some(s), .. }] if s == "attacker-cert"));
        let mut removed = spec();
        removed["tls"] = json!([]);
        assert!(matches!(&diff(&old, &state(json!({}), removed))[..], [Change::TlsRemoved { .. }]));
        let mut dropped = spec();
        dropped["tls"][0]["hosts"] = json!(["other.example.com"]);
        let changes = diff(&old, &state(json!({}), dropped));
        assert!(matches!(&changes[0], Change::TlsHostsDropped { hosts } if hosts == &["shop.example.com"]));
    }

    #[test]
    fn snippets_and_other_annotations_carry_kind_and_action() {
        let snippet = "nginx.ingress.kubernetes.io/configuration-snippet";
        let old = state(json!({"nginx.ingress.kubernetes.io/auth-url": "https://auth/check"}), spec());
        let new = state(json!({snippet: "more_clear_headers \"Strict-Transport-Security\";"}), spec());
        let changes = diff(&old, &new);
        assert!(
            changes
                .iter()
                .any(|c| matches!(c, Change::Annotation { kind: AnnotationKind::Auth, action: Action::Removed, .. }))
        );
        assert!(
            changes
                .iter()
                .any(|c| matches!(c, Change::Annotation { kind: AnnotationKind::Snippet, action: Action::Added, .. }))
        );
    }

    #[test]
    fn rendered_text_escapes_attacker_strings() {
        let c = Change::HostAdded { host: Some("evil.example.com\n[ok] nothing to see".into()) };
        assert_eq!(c.to_string(), "host added: evil.example.com\\u{a}[ok] nothing to see");
    }
}
