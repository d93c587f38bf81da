//! DynamoDB table exports (`ExportTableToPointInTime`, DynamoDB JSON), read
//! as AWS lays them out: `…/AWSDynamoDB/<export id>/manifest-summary.json`
//! names the export, `manifest-files.json` (JSON lines) names its data files,
//! and each data file (gzip, JSON lines) holds `{"Item": …}` for a full
//! export or `{"Keys", "NewImage", "OldImage"}` for an incremental one. Data
//! files are found only through the files manifest; incremental exports are
//! applied after the full ones, oldest first.

use std::collections::BTreeMap;
use std::io::Read;

use anyhow::{Context, Result};
use serde::Deserialize;
use serde_dynamo::AttributeValue;
use serde_json::Value;

/// A tree of files: a local directory, or an S3 prefix.
pub trait Tree {
    /// Every file, by key relative to the tree's root (`/`-separated).
    fn list(&self) -> Result<Vec<String>>;
    /// One file's bytes.
    fn read(&self, key: &str) -> Result<Vec<u8>>;
    /// The tree, in words.
    fn name(&self) -> String;
}

/// A local directory.
pub struct Dir(pub std::path::PathBuf);

impl Tree for Dir {
    fn list(&self) -> Result<Vec<String>> {
        let mut out = Vec::new();
        for entry in walkdir::WalkDir::new(&self.0).sort_by_file_name() {
            let entry = entry.with_context(|| format!("cannot list {}", self.0.display()))?;
            if entry.file_type().is_file()
                && let Ok(relative) = entry.path().strip_prefix(&self.0)
            {
                out.push(relative.to_string_lossy().replace('\\', "/"));
            }
        }
        Ok(out)
    }

    fn read(&self, key: &str) -> Result<Vec<u8>> {
        let path = self.0.join(key);
        std::fs::read(&path).with_context(|| format!("cannot read {}", path.display()))
    }

    fn name(&self) -> String {
        self.0.display().to_string()
    }
}

/// `manifest-summary.json`, as far as it is read.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Summary {
    #[serde(default)]
    export_arn: String,
    #[serde(default)]
    export_type: Option<String>,
    #[serde(default)]
    export_time: Option<String>,
    #[serde(default)]
    export_to_time: Option<String>,
    #[serde(default)]
    output_format: Option<String>,
}

/// One line of `manifest-files.json`.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct DataFile {
    item_count: u64,
    data_file_s3_key: String,
}

/// One line of a data file.
#[derive(Deserialize)]
struct Line {
    #[serde(rename = "Item")]
    item: Option<BTreeMap<String, AttributeValue>>,
    #[serde(rename = "Keys")]
    keys: Option<BTreeMap<String, AttributeValue>>,
    #[serde(rename = "NewImage")]
    new_image: Option<BTreeMap<String, AttributeValue>>,
}

/// The items of every export in a tree, by key; and what could not be read.
#[derive(Default)]
pub struct Items {
    /// Items by their key attributes, as JSON (DynamoDB types unmarshalled).
    pub items: BTreeMap<String, Value>,
    /// Exports read.
    pub exports: usize,
    /// What did not add up (a data file missing, a count that differs).
    pub problems: Vec<String>,
}

fn to_json(item: BTreeMap<String, AttributeValue>) -> Result<Value> {
    let map: std::collections::HashMap<String, AttributeValue> = item.into_iter().collect();
    serde_dynamo::from_item(map).context("an item that is not DynamoDB JSON")
}

/// The key of an item: its `alert_id`, with its `revision` for history
/// items (whose record names the revision; an alerts item also carries a
/// `revision` attribute, but its key is the id alone).
fn key_of(item: &Value) -> String {
    let history = item.get("doc").is_none_or(|d| d.get("alert").is_none());
    match (item.get("alert_id").and_then(Value::as_str), item.get("revision")) {
        (Some(id), Some(rev)) if history => format!("{id}|{rev}"),
        (Some(id), _) => id.to_owned(),
        _ => item.to_string(),
    }
}

/// Reads every export under `tree` into `out`.
pub fn read(tree: &dyn Tree, out: &mut Items) -> Result<()> {
    let files = tree.list()?;
    let mut exports: Vec<(bool, String, String, Summary)> = Vec::new();
    for key in files.iter().filter(|k| k.ends_with("manifest-summary.json")) {
        let summary: Summary = serde_json::from_slice(&tree.read(key)?)
            .with_context(|| format!("{} {key}: not a manifest summary", tree.name()))?;
        if summary.output_format.as_deref().is_some_and(|f| f != "DYNAMODB_JSON") {
            out.problems.push(format!("{key}: {} is not DYNAMODB_JSON; skipped", summary.export_arn));
            continue;
        }
        let incremental = summary.export_type.as_deref() == Some("INCREMENTAL_EXPORT");
        let when = summary.export_to_time.clone().or_else(|| summary.export_time.clone()).unwrap_or_default();
        exports.push((incremental, when, key.clone(), summary));
    }
    // Full exports first, then incremental ones, oldest first.
    exports.sort_by(|a, b| (a.0, &a.1).cmp(&(b.0, &b.1)));
    for (_, _, key, summary) in exports {
        let dir = key.trim_end_matches("manifest-summary.json");
        let files_key = format!("{dir}manifest-files.json");
        let manifest = tree.read(&files_key)?;
        // The data files' keys start at `AWSDynamoDB/`: found beside it.
        let root = dir.find("AWSDynamoDB/").map_or("", |i| &dir[..i]);
        for line in manifest.split(|b| *b == b'\n').filter(|l| !l.iter().all(u8::is_ascii_whitespace)) {
            let data: DataFile = serde_json::from_slice(line).with_context(|| format!("{files_key}: a bad line"))?;
            let at = data.data_file_s3_key.find("AWSDynamoDB/").unwrap_or(0);
            let data_key = format!("{root}{}", &data.data_file_s3_key[at..]);
            let bytes = match tree.read(&data_key) {
                Ok(b) => b,
                Err(e) => {
                    out.problems.push(format!("{}: {e:#}", summary.export_arn));
                    continue;
                }
            };
            let mut text = String::new();
            flate2::read::MultiGzDecoder::new(&bytes[..])
                .read_to_string(&mut text)
                .with_context(|| format!("{data_key}: not gzip JSON lines"))?;
            let mut count = 0;
            for (n, line) in text.lines().filter(|l| !l.trim().is_empty()).enumerate() {
                count += 1;
                let line: Line =
                    serde_json::from_str(line).with_context(|| format!("{data_key}:{}: not an export line", n + 1))?;
                match (line.item, line.new_image, line.keys) {
                    (Some(item), _, _) | (None, Some(item), _) => {
                        let item = to_json(item)?;
                        out.items.insert(key_of(&item), item);
                    }
                    (None, None, Some(keys)) => {
                        // Deleted in the period the incremental export covers.
                        out.items.remove(&key_of(&to_json(keys)?));
                    }
                    (None, None, None) => {}
                }
            }
            if count != data.item_count {
                out.problems.push(format!("{data_key}: {count} items, the manifest says {}", data.item_count));
            }
        }
        out.exports += 1;
    }
    Ok(())
}
