//! Small text checkpoint files, written atomically (temp file, fsync, rename, fsync dir).
//!
//! # Format (Kafka's checkpoint format)
//! ```text
//! 0                 version
//! 2                 number of entries
//! 0 0               entry fields separated by one space
//! 3 1200
//! ```

use std::fs::{self, File};
use std::io::Write;
use std::path::Path;

use crate::error::{IoContext, LogError};

/// Writes `entries` (each a line of fields) to `path` atomically.
pub(crate) fn write(path: &Path, entries: &[String]) -> Result<(), LogError> {
    let mut text = format!("0\n{}\n", entries.len());
    for e in entries {
        text.push_str(e);
        text.push('\n');
    }
    let tmp = path.with_extension("tmp");
    {
        let mut f = File::create(&tmp).ctx(&tmp, "create")?;
        f.write_all(text.as_bytes()).ctx(&tmp, "write")?;
        f.sync_all().ctx(&tmp, "fsync")?;
    }
    fs::rename(&tmp, path).ctx(path, "rename checkpoint onto")?;
    if let Some(dir) = path.parent() {
        File::open(dir)
            .and_then(|d| d.sync_all())
            .ctx(dir, "fsync directory")?;
    }
    Ok(())
}

/// Reads `path`; `Ok(None)` when it does not exist. Each entry is split into exactly `fields`
/// integers.
pub(crate) fn read(path: &Path, fields: usize) -> Result<Option<Vec<Vec<i64>>>, LogError> {
    let text = match fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(LogError::io(path, "read checkpoint", e)),
    };
    let corrupt = |line: usize, reason: String| LogError::CorruptCheckpoint {
        path: path.to_path_buf(),
        line,
        reason,
    };
    let mut lines = text.lines();
    match lines.next().map(str::trim) {
        Some("0") => {}
        other => return Err(corrupt(1, format!("unsupported version {other:?}"))),
    }
    let count: usize = lines
        .next()
        .and_then(|l| l.trim().parse().ok())
        .ok_or_else(|| corrupt(2, "missing or invalid entry count".into()))?;
    let mut entries = Vec::new();
    for (i, line) in lines.enumerate() {
        let line_no = i + 3;
        if line.trim().is_empty() {
            continue;
        }
        let values: Result<Vec<i64>, _> = line.split_whitespace().map(str::parse).collect();
        let values = values.map_err(|e| corrupt(line_no, format!("{line:?}: {e}")))?;
        if values.len() != fields {
            return Err(corrupt(
                line_no,
                format!("expected {fields} fields, found {}", values.len()),
            ));
        }
        entries.push(values);
    }
    if entries.len() != count {
        return Err(corrupt(
            2,
            format!("header says {count} entries, found {}", entries.len()),
        ));
    }
    Ok(Some(entries))
}
