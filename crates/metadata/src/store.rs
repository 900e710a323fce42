//! The metadata log on disk: `<log.dirs>/__cluster_metadata-0/metadata.log`, one JSON record
//! per line, appended and fsynced before a change is acknowledged. On open, every complete
//! line is replayed; a torn last line (a crash in the middle of a write) is cut off.
//!
//! Not thread-safe by itself: the controller owns it.

use std::fs::{self, File, OpenOptions};
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};

use crate::record::MetadataRecord;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("metadata log {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("metadata log {path}: record {index} is not valid: {source}")]
    Corrupt {
        path: PathBuf,
        index: usize,
        #[source]
        source: serde_json::Error,
    },
}

#[derive(Debug)]
pub struct MetadataLog {
    path: PathBuf,
    file: File,
}

impl MetadataLog {
    /// Opens the log under `dir` (creating it), returning it with every record it holds.
    pub fn open(dir: &Path) -> Result<(MetadataLog, Vec<MetadataRecord>), StoreError> {
        let path = dir.join("metadata.log");
        let io = |source| StoreError::Io {
            path: path.clone(),
            source,
        };
        fs::create_dir_all(dir).map_err(io)?;
        let file = OpenOptions::new()
            .create(true)
            .read(true)
            .append(true)
            .open(&path)
            .map_err(io)?;
        let mut records = Vec::new();
        let mut valid_len = 0u64;
        let mut reader = BufReader::new(&file);
        let mut line = String::new();
        loop {
            line.clear();
            let n = reader.read_line(&mut line).map_err(io)?;
            if n == 0 || !line.ends_with('\n') {
                break; // end, or a torn last line
            }
            match serde_json::from_str(line.trim_end()) {
                Ok(record) => records.push(record),
                Err(source) => {
                    return Err(StoreError::Corrupt {
                        path,
                        index: records.len(),
                        source,
                    })
                }
            }
            valid_len += n as u64;
        }
        if file.metadata().map_err(io)?.len() != valid_len {
            tracing::warn!(path = %path.display(), valid_len, "truncating torn metadata record");
            file.set_len(valid_len).map_err(io)?;
        }
        Ok((MetadataLog { path, file }, records))
    }

    /// Appends records and fsyncs them before returning.
    pub fn append(&mut self, records: &[MetadataRecord]) -> Result<(), StoreError> {
        let mut buf = Vec::new();
        for record in records {
            serde_json::to_writer(&mut buf, record).expect("records always serialize");
            buf.push(b'\n');
        }
        let io = |source| StoreError::Io {
            path: self.path.clone(),
            source,
        };
        self.file.write_all(&buf).map_err(io)?;
        self.file.sync_data().map_err(io)
    }
}
