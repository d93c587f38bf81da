//! Turning command-line paths into decoded audit events.

use std::fs::File;
use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

use anyhow::{Context, Result, bail};
use chrono::{DateTime, Utc};
use indicatif::{ProgressBar, ProgressStyle};
use sentinel_core::decode::{
    CloudTrailRecord, Counts, DecodeError, Decoded, EventRecord, Limits, Location, Options, SkipReason,
    decode_cloudtrail_reader, decode_reader,
};
use walkdir::WalkDir;

/// Bounds on what one input may cost, as flags.
#[derive(clap::Args)]
pub struct LimitArgs {
    /// Largest single record (line or JSON object) accepted, in bytes.
    #[arg(long, default_value_t = Limits::default().max_record_bytes)]
    max_record_bytes: usize,
    /// Most decompressed bytes accepted from one input file.
    #[arg(long, default_value_t = Limits::default().max_decompressed_bytes)]
    max_decompressed_bytes: u64,
}

impl LimitArgs {
    /// The limits these flags set.
    pub fn limits(&self) -> Limits {
        Limits {
            max_record_bytes: self.max_record_bytes,
            max_decompressed_bytes: self.max_decompressed_bytes,
            ..Limits::default()
        }
    }
}

/// Everything decoded from a set of inputs.
#[derive(Default)]
pub struct Inputs {
    /// Relevant events, in time order (events without time first, in input order).
    pub records: Vec<EventRecord>,
    /// Relevant CloudTrail events, in time order.
    pub cloudtrail: Vec<CloudTrailRecord>,
    /// Decode failures.
    pub errors: Vec<DecodeError>,
    /// Skipped records, when asked for.
    pub skipped: Vec<(Location, SkipReason)>,
    /// Each input's counts.
    pub per_input: Vec<(String, Counts)>,
    /// All counts.
    pub counts: Counts,
}

impl Inputs {
    /// Adds another set's results to these.
    pub fn extend(&mut self, other: Inputs) {
        self.records.extend(other.records);
        self.cloudtrail.extend(other.cloudtrail);
        self.errors.extend(other.errors);
        self.skipped.extend(other.skipped);
        self.per_input.extend(other.per_input);
        self.counts.merge(&other.counts);
    }

    /// True if some record or input could not be decoded.
    pub fn damaged(&self) -> bool {
        self.counts.malformed + self.counts.input_errors > 0
    }
}

/// What a set of inputs holds.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// EKS audit logs.
    Audit,
    /// CloudTrail.
    CloudTrail,
}

/// Decodes every file under `paths`, with a progress bar on a terminal.
pub fn decode(paths: &[PathBuf], options: &Options) -> Result<Inputs> {
    decode_kind(paths, options, Kind::Audit)
}

/// Decodes every file under `paths` as `kind`, files in parallel on every
/// core; the results are merged in file order, so they do not depend on
/// which thread finished first.
pub fn decode_kind(paths: &[PathBuf], options: &Options, kind: Kind) -> Result<Inputs> {
    let files = expand(paths)?;
    let total: u64 = files.iter().filter_map(|f| f.metadata().ok()).map(|m| m.len()).sum();
    let progress = if std::io::stderr().is_terminal() && total > 16 << 20 {
        let bar = ProgressBar::new(total);
        let style = ProgressStyle::with_template("{bar:40} {binary_bytes}/{binary_total_bytes} {eta} {msg}");
        if let Ok(style) = style {
            bar.set_style(style);
        }
        bar
    } else {
        ProgressBar::hidden()
    };
    let workers = std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get).min(files.len());
    let next = AtomicUsize::new(0);
    let mut decoded: Vec<Option<Result<Inputs>>> = files.iter().map(|_| None).collect();
    std::thread::scope(|scope| {
        let threads: Vec<_> = (0..workers)
            .map(|_| {
                scope.spawn(|| {
                    let mut mine = Vec::new();
                    loop {
                        let i = next.fetch_add(1, Ordering::Relaxed);
                        let Some(path) = files.get(i) else { return mine };
                        mine.push((i, decode_file(path, options, kind, &progress)));
                    }
                })
            })
            .collect();
        for thread in threads {
            // Decoding never panics on input; a panic is a bug, and says so.
            for (i, result) in thread.join().unwrap_or_else(|panic| std::panic::resume_unwind(panic)) {
                decoded[i] = Some(result);
            }
        }
    });
    progress.finish_and_clear();
    let mut out = Inputs::default();
    for result in decoded.into_iter().flatten() {
        out.extend(result?);
    }
    out.records.sort_by_key(EventRecord::time);
    out.cloudtrail.sort_by_key(|r| r.event.event_time);
    Ok(out)
}

/// Decodes one file.
fn decode_file(path: &Path, options: &Options, kind: Kind, progress: &ProgressBar) -> Result<Inputs> {
    let file = File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
    // An event logged without a time is dated by its file, as one in S3 by its object.
    let written: Option<DateTime<Utc>> = file.metadata().and_then(|m| m.modified()).ok().map(DateTime::from);
    let name = path.display().to_string();
    progress.set_message(name.clone());
    let read = match kind {
        Kind::Audit => decode_reader,
        Kind::CloudTrail => decode_cloudtrail_reader,
    };
    let mut out = Inputs::default();
    let counts = read(&name, progress.wrap_read(file), options, &mut |d| match d {
        Decoded::Event(mut record) => {
            record.delivered_at = record.delivered_at.or(written);
            out.records.push(*record);
        }
        Decoded::CloudTrail(record) => out.cloudtrail.push(*record),
        Decoded::Failed(error) => out.errors.push(error),
        Decoded::Skipped { location, reason } => out.skipped.push((location, reason)),
    })?;
    out.counts.merge(&counts);
    out.per_input.push((name, counts));
    Ok(out)
}

/// Expands files and directories (recursively, in name order) into files.
/// Hidden files inside directories are passed over; a path named explicitly
/// is always read.
pub fn expand(paths: &[PathBuf]) -> Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    for path in paths {
        let meta = std::fs::metadata(path).with_context(|| format!("cannot read {}", path.display()))?;
        if !meta.is_dir() {
            out.push(path.clone());
            continue;
        }
        let walker =
            WalkDir::new(path).sort_by_file_name().into_iter().filter_entry(|e| e.depth() == 0 || !hidden(e.path()));
        for entry in walker {
            let entry = entry.with_context(|| format!("cannot list {}", path.display()))?;
            if entry.file_type().is_file() {
                out.push(entry.into_path());
            }
        }
    }
    if out.is_empty() {
        bail!("no input files under {}", paths.iter().map(|p| p.display().to_string()).collect::<Vec<_>>().join(", "));
    }
    Ok(out)
}

fn hidden(path: &Path) -> bool {
    path.file_name().and_then(|n| n.to_str()).is_some_and(|n| n.starts_with('.'))
}
