//! `sentinel check`: Kubernetes manifests judged before they ship, with the
//! same rules the live engine applies.
//!
//! Manifest rules judge each object on what it is (snippets, injection,
//! wildcard hosts, missing TLS, Gateway listeners, …). Given a baseline (`--against`
//! a `kubectl get -o json` dump or another manifest set, or the state the
//! engine keeps), the change rules judge what each object changes from it,
//! with the same rule ids and evidence as a live alert for that change, and
//! the manifest rules report only what the change introduces.

use std::collections::{BTreeMap, BTreeSet};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context as _, Result};
use chrono::Utc;
use sentinel_core::audit::Kind;
use sentinel_core::baseline::ObjectState;
use sentinel_core::ingress::annotations::Controller;
use sentinel_core::ingress::diff::{Change, diff};
use sentinel_core::ingress::{Backend, IngressState};
use sentinel_core::keys::ObjectKey;
use sentinel_core::manifest::rules::{self as manifest, Env, Locus};
use sentinel_core::manifest::{LoadError, Manifest, load};
use sentinel_core::policy::Policy;
use sentinel_core::rules::{self, Context, Finding, RuleId, Severity};
use sentinel_core::store::{Baselines, Store};
use sentinel_core::text::escape;
use serde::Serialize;
use serde_json::{Value, json};

use crate::inputs;

/// Output format of `check`.
#[derive(Clone, Copy, Debug, Default, clap::ValueEnum)]
pub enum CheckFormat {
    /// One line per finding, `file:line:column: severity rule: summary`.
    #[default]
    Text,
    /// One JSON document.
    Json,
    /// SARIF 2.1.0, for code scanning.
    Sarif,
    /// GitHub Actions workflow commands (annotations on the pull request).
    Github,
}

/// Arguments of `sentinel check`.
#[derive(clap::Args)]
pub struct Args {
    /// Manifests: files or directories of YAML or JSON (multi-document,
    /// `List` kinds, rendered Helm or Kustomize output), or `-` for standard input.
    #[arg(required = true)]
    paths: Vec<PathBuf>,
    /// Judge changes from these: a `kubectl get … -A -o json` dump of the
    /// cluster, or the manifests as they are deployed.
    #[arg(long, num_args = 1..)]
    against: Vec<PathBuf>,
    /// Judge changes from the baselines the engine keeps: a state file, or
    /// with `--aws-state-table` the deployed tables.
    #[command(flatten)]
    state: crate::state::StateArgs,
    /// The cluster whose baselines to read (default: the policy's).
    #[arg(long)]
    cluster: Option<String>,
    /// The policy (TOML): known hosts, controller ConfigMaps.
    #[arg(long)]
    policy: Option<PathBuf>,
    /// Output format.
    #[arg(long, value_enum, default_value_t)]
    format: CheckFormat,
    /// Exit with status 4 if a finding reaches this severity.
    #[arg(long, value_parser = crate::parse_severity)]
    fail_on: Option<Severity>,
}

/// One finding, where it was written.
#[derive(Clone, Debug, Serialize)]
pub struct Reported {
    /// The rule.
    pub rule: RuleId,
    /// Its severity here.
    pub severity: Severity,
    /// One line for people.
    pub summary: String,
    /// The finding as data.
    pub evidence: Value,
    /// The file.
    pub file: String,
    /// 1-based line.
    pub line: usize,
    /// 1-based column.
    pub column: usize,
    /// `kind` of the object.
    pub kind: String,
    /// Its namespace.
    pub namespace: String,
    /// Its name.
    pub name: String,
    /// The field, as a JSON pointer into the object.
    pub pointer: String,
    /// `change`: a change rule on the difference from the baseline;
    /// `manifest`: the object on its own.
    pub judged: &'static str,
}

/// Everything read from a set of paths.
#[derive(Default)]
pub struct Files {
    /// The Kubernetes objects.
    pub objects: Vec<Manifest>,
    /// What could not be read, with file and line.
    pub errors: Vec<LoadError>,
    /// Documents that are not Kubernetes objects.
    pub skipped: usize,
}

/// Reads manifests from files, directories (their `.yaml`, `.yml` and
/// `.json` files) and `-` (standard input).
pub fn read_paths(paths: &[PathBuf]) -> Result<Files> {
    let mut out = Files::default();
    let add = |out: &mut Files, name: &str, text: &str| {
        let loaded = load(name, text);
        out.objects.extend(loaded.objects);
        out.errors.extend(loaded.errors);
        out.skipped += loaded.skipped.len();
    };
    let (stdin, files): (Vec<&PathBuf>, Vec<&PathBuf>) = paths.iter().partition(|p| p.as_os_str() == "-");
    if !stdin.is_empty() {
        let mut text = String::new();
        std::io::stdin().read_to_string(&mut text).context("cannot read standard input")?;
        add(&mut out, "stdin", &text);
    }
    let files: Vec<PathBuf> = files.into_iter().cloned().collect();
    if files.is_empty() {
        return Ok(out);
    }
    for file in inputs::expand(&files)? {
        let named = files.contains(&file);
        let manifest_like = matches!(file.extension().and_then(|e| e.to_str()), Some("yaml" | "yml" | "json"));
        if !named && !manifest_like {
            continue;
        }
        let bytes = std::fs::read(&file).with_context(|| format!("cannot read {}", file.display()))?;
        let name = display_path(&file);
        match String::from_utf8(bytes) {
            Ok(text) => add(&mut out, &name, &text),
            Err(e) => out.errors.push(LoadError {
                source: name,
                at: sentinel_core::manifest::Position::default(),
                message: format!("not UTF-8 text (invalid byte at offset {})", e.utf8_error().valid_up_to()),
            }),
        }
    }
    Ok(out)
}

/// A path as code scanning wants it: relative to the working directory
/// (the repository root in CI) where it is under it, with `/` separators.
fn display_path(path: &Path) -> String {
    let relative = std::env::current_dir()
        .ok()
        .and_then(|cwd| path.canonicalize().ok().and_then(|p| p.strip_prefix(&cwd).ok().map(Path::to_path_buf)))
        .unwrap_or_else(|| path.to_path_buf());
    relative.to_string_lossy().replace('\\', "/").trim_start_matches("./").to_owned()
}

type Id = (String, String, String);

fn id_of(m: &Manifest) -> Id {
    (m.kind().to_owned(), m.namespace().to_owned(), m.name().to_owned())
}

/// What the whole set of objects says about each one: classes, services,
/// the hosts each namespace has.
struct World<'a> {
    policy: &'a Policy,
    /// IngressClass name → controller.
    classes: BTreeMap<String, Controller>,
    /// The default IngressClass's controller.
    default_class: Option<Controller>,
    /// (namespace, service) → where an ExternalName service points.
    external: BTreeMap<(String, String), String>,
    /// (namespace, service) → Ingresses using it.
    service_users: BTreeMap<(String, String), Vec<String>>,
    /// Namespace → hosts of its Ingresses in the baseline.
    learned: BTreeMap<String, Vec<String>>,
}

impl<'a> World<'a> {
    fn new(policy: &'a Policy, objects: &[&Manifest], baseline_ingresses: &[(String, IngressState)]) -> Self {
        let mut w = Self {
            policy,
            classes: BTreeMap::new(),
            default_class: None,
            external: BTreeMap::new(),
            service_users: BTreeMap::new(),
            learned: BTreeMap::new(),
        };
        for m in objects {
            let o = &m.object;
            match m.kind() {
                "IngressClass" => {
                    let controller = manifest::controller_of(o["spec"]["controller"].as_str().unwrap_or_default());
                    w.classes.insert(m.name().to_owned(), controller);
                    if o["metadata"]["annotations"]["ingressclass.kubernetes.io/is-default-class"] == "true" {
                        w.default_class = Some(controller);
                    }
                }
                "Service" if o["spec"]["type"] == "ExternalName" => {
                    let target = o["spec"]["externalName"].as_str().unwrap_or_default().to_owned();
                    w.external.insert((m.namespace().to_owned(), m.name().to_owned()), target);
                }
                "Ingress" => {
                    if let Ok(state) = IngressState::from_value(o) {
                        for b in state.backends() {
                            if let Backend::Service { name, .. } = b {
                                w.service_users
                                    .entry((m.namespace().to_owned(), name.clone()))
                                    .or_default()
                                    .push(m.name().to_owned());
                            }
                        }
                    }
                }
                _ => {}
            }
        }
        for (namespace, state) in baseline_ingresses {
            let hosts = state.hosts().flatten().filter(|h| !h.contains('*')).map(str::to_owned);
            w.learned.entry(namespace.clone()).or_default().extend(hosts);
        }
        w
    }

    fn controller(&self, state: &IngressState) -> Option<Controller> {
        match state.class() {
            Some(class) => self.classes.get(class).copied(),
            None => self.default_class,
        }
    }

    fn host_allowed(&self, namespace: &str, host: &str) -> Option<bool> {
        self.policy.host_allowed(namespace, host)
    }

    fn external_name(&self, namespace: &str, service: &str) -> Option<String> {
        self.external.get(&(namespace.to_owned(), service.to_owned())).cloned()
    }
}

/// What the baseline holds for an object.
enum Old {
    /// A manifest from `--against`.
    Manifest(Value),
    /// A state the engine keeps.
    State(Box<ObjectState>),
}

fn old_ingress(old: &Old) -> Option<IngressState> {
    match old {
        Old::Manifest(v) => IngressState::from_value(v).ok(),
        Old::State(state) => match state.as_ref() {
            ObjectState::Ingress(s) => Some(s.clone()),
            _ => None,
        },
    }
}

fn old_body(old: &Old) -> Option<Value> {
    match old {
        Old::Manifest(v) => Some(v.clone()),
        Old::State(state) => match state.as_ref() {
            ObjectState::Manifest(body) => Some(body.clone()),
            ObjectState::Service { service_type, external_name } => {
                Some(json!({"spec": {"type": service_type, "externalName": external_name}}))
            }
            _ => None,
        },
    }
}

/// Where in an Ingress a change points.
fn change_locus(change: &Change, state: &IngressState) -> Locus {
    let rule_of = |host: &Option<String>| state.rules.iter().position(|r| r.host == *host);
    match change {
        Change::Annotation { annotation, .. }
        | Change::AllowlistWidened { annotation, .. }
        | Change::AllowlistNarrowed { annotation, .. }
        | Change::DenylistShrunk { annotation, .. }
        | Change::SourceRangeInvalid { annotation, .. } => Locus::Annotation(annotation.clone()),
        Change::HostAdded { host } => rule_of(host).map_or(Locus::Pointer("/spec/rules".into()), Locus::Host),
        Change::BackendChanged { host, path, .. } | Change::PathAdded { host, path, .. } => rule_of(host)
            .and_then(|i| {
                let j = state.rules[i].paths.iter().position(|p| p.path == *path)?;
                Some(Locus::Path { rule: i, path: j })
            })
            .unwrap_or(Locus::Pointer("/spec/rules".into())),
        Change::DefaultBackendChanged { .. } => Locus::DefaultBackend,
        Change::ClassChanged { .. } => Locus::Pointer("/spec/ingressClassName".into()),
        Change::TlsRemoved { .. } | Change::TlsHostsDropped { .. } | Change::TlsSecretSwapped { .. } => Locus::Tls,
        _ => Locus::Pointer("/spec".into()),
    }
}

struct Judge<'a> {
    world: &'a World<'a>,
    out: Vec<Reported>,
}

impl Judge<'_> {
    fn report(&mut self, m: &Manifest, finding: Finding, locus: &Locus, judged: &'static str) {
        let pointer = locus.pointer(&m.object);
        let at = m.position(&pointer);
        self.out.push(Reported {
            rule: finding.rule,
            severity: finding.severity,
            summary: finding.summary,
            evidence: finding.evidence,
            file: m.source.clone(),
            line: at.line,
            column: at.column,
            kind: m.kind().to_owned(),
            namespace: m.namespace().to_owned(),
            name: m.name().to_owned(),
            pointer,
            judged,
        });
    }

    /// Reports manifest findings, except rules a change finding already named.
    fn report_manifest(&mut self, m: &Manifest, found: Vec<manifest::Located>, named: &BTreeSet<RuleId>) {
        for l in found {
            if !named.contains(&l.finding.rule) {
                self.report(m, l.finding, &l.locus, "manifest");
            }
        }
    }

    fn object(&mut self, m: &Manifest, old: Option<&Old>) {
        let world = self.world;
        let (namespace, name) = (m.namespace(), m.name());
        let host_allowed = |ns: &str, h: &str| world.host_allowed(ns, h);
        let external = |ns: &str, svc: &str| world.external_name(ns, svc);
        let configmap = |ns: &str, n: &str| world.policy.is_controller_configmap(ns, n);
        if m.kind() == "Ingress" {
            let Ok(mut state) = IngressState::from_value(&m.object) else { return };
            state.namespace = Some(namespace.to_owned());
            let env = Env {
                controller: world.controller(&state),
                host_allowed: &host_allowed,
                external_name: &external,
                controller_configmap: &configmap,
            };
            let now = manifest::ingress(&state, &env);
            let Some(before) = old.and_then(old_ingress) else {
                return self.report_manifest(m, now, &BTreeSet::new());
            };
            let learned = world.learned.get(namespace).cloned().unwrap_or_default();
            let host_known =
                |h: &str| world.host_allowed(namespace, h).unwrap_or_else(|| rules::like_learned(h, &learned));
            let external_name = |svc: &str| world.external_name(namespace, svc);
            let ctx = Context { host_known: &host_known, external_name: &external_name };
            let mut named = BTreeSet::new();
            for change in diff(&before, &state) {
                for f in rules::findings(&change, &ctx) {
                    named.insert(f.rule);
                    self.report(m, f, &change_locus(&change, &state), "change");
                }
            }
            let introduced = manifest::introduced(&manifest::ingress(&before, &env), now);
            return self.report_manifest(m, introduced, &named);
        }
        let env = Env {
            controller: None,
            host_allowed: &host_allowed,
            external_name: &external,
            controller_configmap: &configmap,
        };
        let now = manifest::object(m.kind(), namespace, name, &m.object, &env);
        let Some(before) = old.and_then(old_body) else {
            return self.report_manifest(m, now, &BTreeSet::new());
        };
        let mut named = BTreeSet::new();
        let mut change = |rule: RuleId, summary: String, pointer: &str, evidence: Value| {
            named.insert(rule);
            (Finding::new(rule, summary, &evidence), Locus::Pointer(pointer.to_owned()))
        };
        let mut changes = Vec::new();
        match m.kind() {
            "ConfigMap" if configmap(namespace, name) && before.get("data") != m.object.get("data") => {
                changes.push(change(
                    RuleId::ControllerConfigChanged,
                    format!("ingress controller ConfigMap {namespace}/{name} changed"),
                    "/data",
                    json!({"from": before.get("data"), "to": m.object.get("data")}),
                ));
            }
            "IngressClass" if before["spec"]["controller"] != m.object["spec"]["controller"] => {
                changes.push(change(
                    RuleId::ClassChanged,
                    format!(
                        "IngressClass {name} now served by {} (was {})",
                        m.object["spec"]["controller"].as_str().unwrap_or("?"),
                        before["spec"]["controller"].as_str().unwrap_or("?")
                    ),
                    "/spec/controller",
                    json!({"from": before["spec"]["controller"], "to": m.object["spec"]["controller"]}),
                ));
            }
            "Service" if m.object["spec"]["type"] == "ExternalName" && before["spec"]["type"] != "ExternalName" => {
                let users =
                    world.service_users.get(&(namespace.to_owned(), name.to_owned())).cloned().unwrap_or_default();
                if !users.is_empty() {
                    let target = m.object["spec"]["externalName"].as_str().unwrap_or("?");
                    changes.push(change(
                        RuleId::BackendRerouted,
                        format!(
                            "Service {namespace}/{name}, used by Ingress {}, now points outside the cluster ({target})",
                            users.join(", ")
                        ),
                        "/spec/externalName",
                        json!({"external_name": target, "ingresses": users}),
                    ));
                }
            }
            _ => {}
        }
        for (finding, locus) in changes {
            self.report(m, finding, &locus, "change");
        }
        let introduced = manifest::introduced(&manifest::object(m.kind(), namespace, name, &before, &env), now);
        self.report_manifest(m, introduced, &named);
    }

    /// Two Ingresses claiming one host and path: reported on each checked
    /// object whose route another object (checked or in the baseline) claims.
    fn clashes(&mut self, checked: &[Manifest], others: &[&Manifest]) {
        let all: Vec<&Manifest> = checked.iter().chain(others.iter().copied()).collect();
        let states: Vec<Option<IngressState>> = all
            .iter()
            .map(|m| if m.kind() == "Ingress" { IngressState::from_value(&m.object).ok() } else { None })
            .collect();
        let mut index = Vec::new();
        let mut claimants = Vec::new();
        for (m, state) in all.iter().zip(&states) {
            if let Some(state) = state {
                index.push(*m);
                claimants.push(manifest::Claimant {
                    namespace: m.namespace(),
                    name: m.name(),
                    place: format!("{}:{}", m.source, m.at.line),
                    state,
                });
            }
        }
        let judged =
            checked.iter().filter(|m| m.kind() == "Ingress" && IngressState::from_value(&m.object).is_ok()).count();
        for (n, l) in manifest::host_clashes(&claimants, judged) {
            self.report(index[n], l.finding, &l.locus, "manifest");
        }
    }
}

/// What `check` found, and what it could not read.
#[derive(Serialize)]
struct Outcome<'a> {
    findings: &'a [Reported],
    errors: Vec<String>,
    objects: usize,
    skipped_documents: usize,
}

/// Runs `sentinel check`.
pub fn run(args: &Args, out: &mut dyn Write) -> Result<ExitCode> {
    let policy = crate::replay::load_policy(args.policy.as_deref())?;
    let input = read_paths(&args.paths)?;
    let against = if args.against.is_empty() { Files::default() } else { read_paths(&args.against)? };
    let cluster = args.cluster.clone().unwrap_or_else(|| policy.cluster.clone());
    let findings =
        args.state.with_store(|store| Ok(judge(&input.objects, &against.objects, store, &cluster, &policy)))??;
    let mut errors: Vec<String> = input.errors.iter().chain(&against.errors).map(ToString::to_string).collect();
    errors.sort();
    match args.format {
        CheckFormat::Text => text(&findings, &errors, out)?,
        CheckFormat::Json => {
            let outcome = Outcome {
                findings: &findings,
                errors: errors.clone(),
                objects: input.objects.len(),
                skipped_documents: input.skipped,
            };
            serde_json::to_writer_pretty(&mut *out, &outcome)?;
            writeln!(out)?;
        }
        CheckFormat::Sarif => {
            serde_json::to_writer_pretty(&mut *out, &sarif(&findings, &errors))?;
            writeln!(out)?;
        }
        CheckFormat::Github => github(&findings, &errors, out)?,
    }
    let worst = findings.iter().map(|f| f.severity).max();
    Ok(if args.fail_on.is_some_and(|t| worst.is_some_and(|w| w >= t)) {
        ExitCode::from(4)
    } else if !errors.is_empty() {
        ExitCode::from(3)
    } else {
        ExitCode::SUCCESS
    })
}

/// Judges every object: against its baseline where there is one.
fn judge(
    objects: &[Manifest],
    against: &[Manifest],
    store: &dyn Store,
    cluster: &str,
    policy: &Policy,
) -> Result<Vec<Reported>> {
    let now = Utc::now();
    let checked: BTreeSet<Id> = objects.iter().map(id_of).collect();
    let previous: BTreeMap<Id, &Manifest> = against.iter().map(|m| (id_of(m), m)).collect();
    // The state the engine keeps for each checked object, where it has one.
    let mut kept: BTreeMap<Id, ObjectState> = BTreeMap::new();
    for m in objects {
        let Some(kind) = Kind::from_name(m.kind()) else { continue };
        let key = ObjectKey {
            cluster: cluster.to_owned(),
            kind,
            namespace: m.namespace().to_owned(),
            name: m.name().to_owned(),
        };
        let baseline = store
            .baseline(&key.baseline(), now)
            .with_context(|| format!("cannot read the baseline of {}", key.baseline()))?;
        if let Some(state) = baseline.and_then(|b| b.value.seen().cloned()) {
            kept.insert(id_of(m), state);
        }
    }
    let baseline_ingresses: Vec<(String, IngressState)> = against
        .iter()
        .filter(|m| m.kind() == "Ingress")
        .filter_map(|m| IngressState::from_value(&m.object).ok().map(|s| (m.namespace().to_owned(), s)))
        .chain(kept.iter().filter_map(|((_, ns, _), s)| match s {
            ObjectState::Ingress(i) => Some((ns.clone(), i.clone())),
            _ => None,
        }))
        .collect();
    // The cluster as it will be: the checked objects over the baseline's.
    let others: Vec<&Manifest> = against.iter().filter(|m| !checked.contains(&id_of(m))).collect();
    let world_objects: Vec<&Manifest> = others.iter().copied().chain(objects.iter()).collect();
    let world = World::new(policy, &world_objects, &baseline_ingresses);
    let mut judge = Judge { world: &world, out: Vec::new() };
    for m in objects {
        let id = id_of(m);
        let old = match previous.get(&id) {
            Some(p) => Some(Old::Manifest(p.object.clone())),
            None => kept.get(&id).cloned().map(|s| Old::State(Box::new(s))),
        };
        judge.object(m, old.as_ref());
    }
    judge.clashes(objects, &others);
    let mut out = judge.out;
    out.sort_by(|a, b| (&a.file, a.line, a.column, a.rule).cmp(&(&b.file, b.line, b.column, b.rule)));
    Ok(out)
}

fn text(findings: &[Reported], errors: &[String], out: &mut dyn Write) -> Result<()> {
    for e in errors {
        writeln!(out, "{}", escape(e))?;
    }
    for f in findings {
        writeln!(
            out,
            "{}:{}:{}: {} {}: {} ({} {}/{})",
            escape(&f.file),
            f.line,
            f.column,
            f.severity,
            f.rule,
            escape(&f.summary),
            f.kind,
            escape(&f.namespace),
            escape(&f.name)
        )?;
    }
    let by = |s: Severity| findings.iter().filter(|f| f.severity == s).count();
    writeln!(
        out,
        "{} findings (critical {}, high {}, medium {}, low {}); {} unreadable",
        findings.len(),
        by(Severity::Critical),
        by(Severity::High),
        by(Severity::Medium),
        by(Severity::Low),
        errors.len()
    )?;
    Ok(())
}

/// GitHub's escaping of a workflow command's message, and of its properties.
fn gh_data(s: &str) -> String {
    s.replace('%', "%25").replace('\r', "%0D").replace('\n', "%0A")
}

fn gh_property(s: &str) -> String {
    gh_data(s).replace(':', "%3A").replace(',', "%2C")
}

fn github(findings: &[Reported], errors: &[String], out: &mut dyn Write) -> Result<()> {
    for e in errors {
        writeln!(out, "::error title=unreadable manifest::{}", gh_data(e))?;
    }
    for f in findings {
        let level = match f.severity {
            Severity::Critical | Severity::High => "error",
            Severity::Medium => "warning",
            Severity::Low => "notice",
        };
        writeln!(
            out,
            "::{level} file={},line={},col={},title={}::{} ({} {}/{})",
            gh_property(&f.file),
            f.line,
            f.column,
            gh_property(&format!("{} [{}]", f.rule, f.severity)),
            gh_data(&f.summary),
            f.kind,
            gh_data(&f.namespace),
            gh_data(&f.name)
        )?;
    }
    Ok(())
}

fn level(severity: Severity) -> &'static str {
    match severity {
        Severity::Critical | Severity::High => "error",
        Severity::Medium => "warning",
        Severity::Low => "note",
    }
}

fn fingerprint(f: &Reported) -> String {
    let key = format!("{}|{}|{}|{}|{}|{}", f.rule, f.kind, f.namespace, f.name, f.pointer, f.summary);
    sentinel_core::bound::sha256(key.as_bytes())[..32].to_owned()
}

/// The report as SARIF 2.1.0, as GitHub code scanning reads it.
pub fn sarif(findings: &[Reported], errors: &[String]) -> Value {
    let rules: Vec<Value> = RuleId::ALL
        .iter()
        .map(|r| {
            json!({
                "id": r.as_str(),
                "name": r.as_str().replace(['.', '-'], "_"),
                "shortDescription": {"text": r.short_description()},
                "fullDescription": {"text": r.description()},
                "help": {
                    "text": format!("{} See {}", r.description(), r.help_uri()),
                    "markdown": format!("{} [Rule reference]({})", r.description(), r.help_uri()),
                },
                "helpUri": r.help_uri(),
                "defaultConfiguration": {"level": level(r.default_severity())},
                "properties": {
                    "security-severity": r.security_severity(),
                    "tags": ["security", "kubernetes", "ingress"],
                    "precision": "high",
                },
            })
        })
        .collect();
    let results: Vec<Value> = findings
        .iter()
        .map(|f| {
            let index = RuleId::ALL.iter().position(|r| *r == f.rule).unwrap_or_default();
            json!({
                "ruleId": f.rule.as_str(),
                "ruleIndex": index,
                "level": level(f.severity),
                "message": {"text": format!("{} ({} {}/{})", f.summary, f.kind, f.namespace, f.name)},
                "locations": [{
                    "physicalLocation": {
                        "artifactLocation": {"uri": f.file, "uriBaseId": "%SRCROOT%"},
                        "region": {"startLine": f.line, "startColumn": f.column},
                    },
                    "logicalLocations": [{
                        "name": f.name,
                        "fullyQualifiedName": format!("{}/{}/{}", f.kind, f.namespace, f.name),
                        "kind": "object",
                    }],
                }],
                "partialFingerprints": {"ingressSentinel/v1": fingerprint(f)},
                "properties": {"severity": f.severity, "security-severity": f.severity.score(), "judged": f.judged, "pointer": f.pointer, "evidence": f.evidence},
            })
        })
        .collect();
    let notifications: Vec<Value> = errors.iter().map(|e| json!({"level": "error", "message": {"text": e}})).collect();
    json!({
        "$schema": "https://json.schemastore.org/sarif-2.1.0.json",
        "version": "2.1.0",
        "runs": [{
            "tool": {"driver": {
                "name": "Ingress Sentinel",
                "informationUri": env!("CARGO_PKG_REPOSITORY"),
                "version": env!("CARGO_PKG_VERSION"),
                "semanticVersion": env!("CARGO_PKG_VERSION"),
                "rules": rules,
            }},
            "invocations": [{"executionSuccessful": errors.is_empty(), "toolExecutionNotifications": notifications}],
            "columnKind": "unicodeCodePoints",
            "results": results,
        }],
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn workflow_commands_escape_what_github_reads() {
        assert_eq!(gh_data("50%\nnext"), "50%25%0Anext");
        assert_eq!(gh_property("a:b,c"), "a%3Ab%2Cc");
    }
}
