//! `sentinel inspect`: the relevant audit events of some inputs, and what each changed.

use std::collections::HashMap;
use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Result;
use chrono::{DateTime, SecondsFormat, Utc};
use sentinel_core::decode::{Counts, DecodeError, EventRecord, Options, Outcome};
use sentinel_core::ingress::diff::diff;
use sentinel_core::text::escape;
use sentinel_core::{Change, IngressState};
use serde::Serialize;

use crate::{Format, inputs};

/// Arguments of `sentinel inspect`.
#[derive(clap::Args)]
pub struct Args {
    /// Files or directories of audit logs, in any supported framing.
    #[arg(required = true)]
    paths: Vec<PathBuf>,
    /// Output format.
    #[arg(long, value_enum, default_value_t)]
    format: Format,
    #[command(flatten)]
    limits: inputs::LimitArgs,
    /// Also list every record passed over, with where it was and why.
    #[arg(long)]
    all: bool,
}

/// One relevant event, as reported.
#[derive(Serialize)]
struct Entry {
    time: Option<DateTime<Utc>>,
    audit_id: String,
    verb: String,
    outcome: Outcome,
    resource: String,
    namespace: Option<String>,
    name: Option<String>,
    cluster: Option<String>,
    actor: Actor,
    location: String,
    /// What changed against the earlier state in the input; `None` when
    /// there is no earlier state to compare with.
    changes: Option<Vec<Change>>,
    /// Why the object's state could not be read, if it could not.
    #[serde(skip_serializing_if = "Option::is_none")]
    state_error: Option<String>,
}

#[derive(Serialize)]
struct Actor {
    username: String,
    groups: Vec<String>,
    iam_arn: Option<String>,
    session_name: Option<String>,
    access_key_id: Option<String>,
    impersonated_user: Option<String>,
    source_ips: Vec<String>,
    user_agent: Option<String>,
}

#[derive(Serialize)]
struct ErrorEntry {
    location: String,
    message: String,
}

#[derive(Serialize)]
struct SkippedEntry {
    location: String,
    reason: &'static str,
}

#[derive(Serialize)]
struct InputEntry {
    path: String,
    counts: Counts,
}

#[derive(Serialize)]
struct Report {
    inputs: Vec<InputEntry>,
    events: Vec<Entry>,
    errors: Vec<ErrorEntry>,
    /// Only with `--all`.
    #[serde(skip_serializing_if = "Option::is_none")]
    skipped: Option<Vec<SkippedEntry>>,
    counts: Counts,
}

/// Runs the command, writing the report to `out`.
pub fn run(args: &Args, out: &mut dyn Write) -> Result<ExitCode> {
    let options = Options { limits: args.limits.limits(), report_skipped: args.all };
    let decoded = inputs::decode(&args.paths, &options)?;
    let damaged = decoded.damaged();
    let skipped = decoded
        .skipped
        .iter()
        .map(|(location, reason)| SkippedEntry { location: location.to_string(), reason: reason.as_str() })
        .collect();
    let report = Report {
        inputs: decoded.per_input.into_iter().map(|(path, counts)| InputEntry { path, counts }).collect(),
        events: entries(decoded.records),
        errors: decoded.errors.iter().map(error_entry).collect(),
        skipped: args.all.then_some(skipped),
        counts: decoded.counts,
    };
    match args.format {
        Format::Json => {
            serde_json::to_writer_pretty(&mut *out, &report)?;
            writeln!(out)?;
        }
        Format::Text => write_text(&report, out)?,
    }
    Ok(if damaged { ExitCode::from(3) } else { ExitCode::SUCCESS })
}

fn error_entry(error: &DecodeError) -> ErrorEntry {
    ErrorEntry { location: error.location.to_string(), message: error.kind.to_string() }
}

/// Builds the report entries, diffing each Ingress write against the state
/// the input last showed for the same object.
fn entries(records: Vec<EventRecord>) -> Vec<Entry> {
    let mut last: HashMap<String, IngressState> = HashMap::new();
    let mut out = Vec::with_capacity(records.len());
    for record in records {
        let event = &record.event;
        let mut changes = None;
        let mut state_error = None;
        if event.object_ref.resource == "ingresses" && record.outcome == Outcome::Kept {
            let key = event.object_ref.key();
            match event.object_after().map(IngressState::from_value) {
                Some(Ok(state)) => {
                    changes = last.get(&key).map(|before| diff(before, &state));
                    last.insert(key, state);
                }
                Some(Err(e)) => {
                    state_error = Some(e.to_string());
                    last.remove(&key);
                }
                // Deleted, or a write whose result the record does not carry:
                // the next state has nothing known to compare with.
                None => {
                    last.remove(&key);
                }
            }
        }
        let user = &event.user;
        out.push(Entry {
            time: event.time(),
            audit_id: event.audit_id.clone(),
            verb: event.verb.clone(),
            outcome: record.outcome,
            resource: event.object_ref.resource.clone(),
            namespace: event.object_ref.namespace.clone(),
            name: event.object_ref.name.clone(),
            cluster: record.source.cluster().map(str::to_owned),
            actor: Actor {
                username: user.username.clone(),
                groups: user.groups.clone(),
                iam_arn: user.arn().map(str::to_owned),
                session_name: user.session_name().map(str::to_owned),
                access_key_id: user.access_key_id().map(str::to_owned),
                impersonated_user: event.impersonated_user.as_ref().map(|u| u.username.clone()),
                source_ips: event.source_ips.clone(),
                user_agent: event.user_agent.clone(),
            },
            location: record.location.to_string(),
            changes,
            state_error,
        });
    }
    out
}

fn write_text(report: &Report, out: &mut dyn Write) -> Result<()> {
    for e in &report.events {
        let time = e.time.map_or_else(|| "(no time)".to_owned(), |t| t.to_rfc3339_opts(SecondsFormat::Secs, true));
        let object = match (&e.namespace, &e.name) {
            (Some(ns), Some(name)) => format!("{}/{}", escape(ns), escape(name)),
            (None, Some(name)) => escape(name).into_owned(),
            (Some(ns), None) => format!("{}/*", escape(ns)),
            (None, None) => "*".to_owned(),
        };
        let denied = if e.outcome == Outcome::Denied { " DENIED" } else { "" };
        write!(
            out,
            "{time}  {}{denied}  {} {object}  by {}",
            escape(&e.verb),
            escape(&e.resource),
            escape(&e.actor.username)
        )?;
        if let Some(session) = &e.actor.session_name {
            write!(out, " (session {})", escape(session))?;
        }
        if let Some(as_user) = &e.actor.impersonated_user {
            write!(out, " as {}", escape(as_user))?;
        }
        writeln!(out)?;
        match &e.changes {
            Some(changes) if changes.is_empty() => writeln!(out, "    no semantic change")?,
            Some(changes) => {
                for change in changes {
                    writeln!(out, "    {change}")?;
                }
            }
            None => {}
        }
        if let Some(error) = &e.state_error {
            writeln!(out, "    state unreadable: {}", escape(error))?;
        }
    }
    for skip in report.skipped.iter().flatten() {
        writeln!(out, "skipped: {}: {}", escape(&skip.location), skip.reason)?;
    }
    for error in &report.errors {
        writeln!(out, "error: {}: {}", escape(&error.location), escape(&error.message))?;
    }
    for input in &report.inputs {
        let c = &input.counts;
        writeln!(
            out,
            "input {}: {} records, {} kept, {} denied, {} skipped, {} malformed, {} input errors",
            escape(&input.path),
            c.records,
            c.kept,
            c.denied,
            c.skipped.total(),
            c.malformed,
            c.input_errors
        )?;
    }
    let c = &report.counts;
    let s = &c.skipped;
    writeln!(
        out,
        "total: {} records, {} kept, {} denied, {} skipped (not relevant {}, status {}, unsuccessful {}, \
         incomplete stage {}, not audit events {}, control messages {}), {} malformed, {} input errors",
        c.records,
        c.kept,
        c.denied,
        s.total(),
        s.not_relevant,
        s.status_subresource,
        s.unsuccessful,
        s.incomplete_stage,
        s.not_audit_event,
        s.control_message,
        c.malformed,
        c.input_errors
    )?;
    Ok(())
}
