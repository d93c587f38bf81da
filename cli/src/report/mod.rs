//! `sentinel report`: compliance reports from DynamoDB exports of the
//! alerts and history tables (a directory, or `s3://…` with the `aws`
//! feature), or from `replay --format json` output: `index.html` (one
//! self-contained page), `alerts.csv`, `signals.csv` and `summary.json`.

mod export;
mod model;
mod page;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use chrono::{DateTime, Utc};
use sentinel_core::alert::{Alert, Status};

use model::{Data, Summary};

/// Arguments of `sentinel report`.
#[derive(clap::Args)]
pub struct Args {
    /// Table exports (directories holding `AWSDynamoDB/<id>/manifest-summary.json`,
    /// or `s3://bucket/prefix` with the `aws` feature), or files of alerts as
    /// `sentinel replay --format json` prints them.
    #[arg(required = true)]
    inputs: Vec<String>,
    /// Alerts first seen from this time (RFC 3339).
    #[arg(long)]
    from: Option<DateTime<Utc>>,
    /// Alerts first seen before this time (RFC 3339).
    #[arg(long)]
    to: Option<DateTime<Utc>>,
    /// Where the report goes (created).
    #[arg(long)]
    out: PathBuf,
    /// Open alerts older than this many days are listed.
    #[arg(long, default_value_t = 7)]
    stale_days: i64,
    /// The report's time (default now): ages are counted to it.
    #[arg(long)]
    as_of: Option<DateTime<Utc>>,
}

/// Reads one input into `data`.
fn read(input: &str, data: &mut Data) -> Result<()> {
    if let Some(location) = input.strip_prefix("s3://") {
        return read_s3(location, data);
    }
    let path = Path::new(input);
    if path.is_dir() {
        return read_exports(&export::Dir(path.to_path_buf()), data);
    }
    let text = std::fs::read_to_string(path).with_context(|| format!("cannot read {input}"))?;
    for (n, line) in text.lines().enumerate().filter(|(_, l)| !l.trim().is_empty()) {
        let alert: Alert = serde_json::from_str(line)
            .with_context(|| format!("{input}:{}: not an alert (sentinel replay --format json)", n + 1))?;
        data.add_revision(alert);
    }
    Ok(())
}

/// Reads every table export under `tree` into `data`.
fn read_exports(tree: &dyn export::Tree, data: &mut Data) -> Result<()> {
    let mut items = export::Items::default();
    export::read(tree, &mut items)?;
    if items.exports == 0 {
        bail!("{}: no DynamoDB export (no manifest-summary.json) under it", tree.name());
    }
    data.problems.extend(items.problems);
    data.add_items(items.items.into_values());
    Ok(())
}

#[cfg(feature = "aws")]
fn read_s3(location: &str, data: &mut Data) -> Result<()> {
    let (bucket, prefix) = location.split_once('/').unwrap_or((location, ""));
    let rt = tokio::runtime::Runtime::new().context("cannot start the async runtime")?;
    let sdk = rt.block_on(sentinel_aws::sdk_config());
    let config = aws_sdk_s3::config::Builder::from(&sdk).force_path_style(sentinel_aws::endpoint_overridden()).build();
    let tree = S3Tree {
        client: aws_sdk_s3::Client::from_conf(config),
        bucket: bucket.to_owned(),
        prefix: prefix.trim_end_matches('/').to_owned(),
        rt,
    };
    read_exports(&tree, data)
}

#[cfg(not(feature = "aws"))]
fn read_s3(location: &str, _data: &mut Data) -> Result<()> {
    bail!(
        "s3://{location}: this sentinel was built without AWS support: build it with `--features aws`, or copy the export locally"
    )
}

/// An S3 prefix as a tree of files.
#[cfg(feature = "aws")]
struct S3Tree {
    client: aws_sdk_s3::Client,
    bucket: String,
    prefix: String,
    rt: tokio::runtime::Runtime,
}

#[cfg(feature = "aws")]
impl export::Tree for S3Tree {
    fn list(&self) -> Result<Vec<String>> {
        let mut out = Vec::new();
        let mut token = None;
        loop {
            let page = self
                .rt
                .block_on(
                    self.client
                        .list_objects_v2()
                        .bucket(&self.bucket)
                        .prefix(&self.prefix)
                        .set_continuation_token(token.take())
                        .send(),
                )
                .with_context(|| format!("cannot list s3://{}/{}", self.bucket, self.prefix))?;
            for o in page.contents() {
                if let Some(key) = o.key() {
                    out.push(key.strip_prefix(&self.prefix).unwrap_or(key).trim_start_matches('/').to_owned());
                }
            }
            match page.next_continuation_token {
                Some(t) => token = Some(t),
                None => return Ok(out),
            }
        }
    }

    fn read(&self, key: &str) -> Result<Vec<u8>> {
        let full = if self.prefix.is_empty() { key.to_owned() } else { format!("{}/{key}", self.prefix) };
        let body = self.rt.block_on(async {
            let o = self.client.get_object().bucket(&self.bucket).key(&full).send().await?;
            Ok::<_, anyhow::Error>(o.body.collect().await?.into_bytes())
        });
        Ok(body.with_context(|| format!("cannot read s3://{}/{full}", self.bucket))?.to_vec())
    }

    fn name(&self) -> String {
        format!("s3://{}/{}", self.bucket, self.prefix)
    }
}

/// A CSV cell that a spreadsheet will not run as a formula.
fn cell(s: &str) -> String {
    let visible = sentinel_core::text::escape(s).into_owned();
    if visible.starts_with(['=', '+', '-', '@', '\t', '\r']) { format!("'{visible}") } else { visible }
}

fn alerts_csv(data: &Data, path: &Path) -> Result<()> {
    let mut w = csv::Writer::from_path(path).with_context(|| format!("cannot write {}", path.display()))?;
    w.write_record([
        "alert_id",
        "revision",
        "severity",
        "status",
        "cluster",
        "first_seen",
        "last_seen",
        "actor",
        "identity_status",
        "originating_principal",
        "rules",
        "namespaces",
        "objects",
        "approved",
        "signals",
        "acknowledged_at",
        "closed_at",
        "title",
    ])?;
    for a in data.alerts.values() {
        let mut rules: Vec<&str> = a.signals.iter().map(|s| s.rule.as_str()).collect();
        rules.sort_unstable();
        rules.dedup();
        let objects: Vec<String> = a.resources.iter().map(ToString::to_string).collect();
        let when = |pick: &dyn Fn(Status) -> bool| {
            a.status_changes.iter().find(|c| pick(c.status)).map(|c| c.at.to_rfc3339()).unwrap_or_default()
        };
        w.write_record([
            cell(&a.alert_id),
            a.revision.to_string(),
            a.severity.to_string(),
            a.status.as_str().to_owned(),
            cell(&a.cluster),
            a.first_seen.to_rfc3339(),
            a.last_seen.to_rfc3339(),
            cell(a.actor.display()),
            a.identity_status.as_str().to_owned(),
            cell(a.actor.originating_principal.as_deref().unwrap_or_default()),
            rules.join(";"),
            cell(&a.namespaces().join(";")),
            cell(&objects.join(";")),
            a.approved.to_string(),
            a.signals.len().to_string(),
            when(&|s| s == Status::Acknowledged),
            if a.status.is_closed() { when(&Status::is_closed) } else { String::new() },
            cell(&a.title),
        ])?;
    }
    w.flush()?;
    Ok(())
}

fn signals_csv(data: &Data, path: &Path) -> Result<()> {
    let mut w = csv::Writer::from_path(path).with_context(|| format!("cannot write {}", path.display()))?;
    w.write_record(["alert_id", "time", "rule", "severity", "kind", "namespace", "name", "audit_id", "summary"])?;
    for a in data.alerts.values() {
        for s in &a.signals {
            w.write_record([
                cell(&a.alert_id),
                s.time.to_rfc3339(),
                s.rule.as_str().to_owned(),
                s.severity.to_string(),
                cell(&s.resource.kind),
                cell(s.resource.namespace.as_deref().unwrap_or_default()),
                cell(s.resource.name.as_deref().unwrap_or_default()),
                cell(&s.audit_id),
                cell(&s.summary),
            ])?;
        }
    }
    w.flush()?;
    Ok(())
}

/// Runs `sentinel report`.
pub fn run(args: &Args, out: &mut dyn Write) -> Result<ExitCode> {
    let mut data = Data::default();
    for input in &args.inputs {
        read(input, &mut data)?;
    }
    data.finish(args.from, args.to);
    let now = args.as_of.unwrap_or_else(Utc::now);
    let summary: Summary = model::summarise(&data, now, args.from, args.to, args.stale_days);
    std::fs::create_dir_all(&args.out).with_context(|| format!("cannot create {}", args.out.display()))?;
    let write = |name: &str, bytes: &[u8]| {
        let path = args.out.join(name);
        std::fs::write(&path, bytes).with_context(|| format!("cannot write {}", path.display()))
    };
    write("index.html", page::render(&summary, &data).as_bytes())?;
    write("summary.json", serde_json::to_string_pretty(&summary)?.as_bytes())?;
    alerts_csv(&data, &args.out.join("alerts.csv"))?;
    signals_csv(&data, &args.out.join("signals.csv"))?;
    writeln!(
        out,
        "report: {} alerts, {} signals; {} written (index.html, alerts.csv, signals.csv, summary.json){}",
        summary.alerts,
        summary.signals,
        args.out.display(),
        if data.problems.is_empty() {
            String::new()
        } else {
            format!("; {} problems listed on the page", data.problems.len())
        }
    )?;
    Ok(if data.problems.is_empty() { ExitCode::SUCCESS } else { ExitCode::from(3) })
}
