//! Turning command-line paths into input files.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use walkdir::WalkDir;

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
