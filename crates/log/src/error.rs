//! The crate's one error type.
//!
//! Every variant carries the data a caller needs to act on it (which offset, which file) and I/O
//! errors keep their source. Mapping to Kafka error codes is the broker's job; the intended mapping
//! is noted on each variant.

use std::io;
use std::path::PathBuf;

use crate::batch::BatchError;

/// Errors returned by [`crate::Log`] and its parts.
#[derive(Debug, thiserror::Error)]
pub enum LogError {
    /// An operating-system call on a file of the log failed. Kafka: KAFKA_STORAGE_ERROR.
    #[error("I/O error while trying to {op} {}", path.display())]
    Io {
        /// The file or directory involved.
        path: PathBuf,
        /// What was being done, e.g. "read", "fsync", "truncate".
        op: &'static str,
        /// The underlying error.
        #[source]
        source: io::Error,
    },

    /// The records handed to an append are invalid. Kafka: see [`BatchError`].
    #[error("invalid records")]
    InvalidRecords(#[from] BatchError),

    /// A read or a DeleteRecords request asked for an offset outside the log.
    /// Kafka: OFFSET_OUT_OF_RANGE.
    #[error("offset {offset} is out of range [{log_start_offset}, {log_end_offset}]")]
    OffsetOutOfRange {
        /// The requested offset.
        offset: i64,
        /// The log start offset at the time of the request.
        log_start_offset: i64,
        /// The log end offset at the time of the request.
        log_end_offset: i64,
    },

    /// A follower append whose first batch does not start at (or after) the log end offset, or whose
    /// batches do not have increasing offsets. Kafka: UnexpectedAppendOffsetException (follower
    /// truncates and refetches).
    #[error(
        "unexpected append offset: batch starts at {first_offset}, expected at least {expected}"
    )]
    UnexpectedAppendOffset {
        /// The smallest acceptable base offset (the log end offset, or the next offset after the
        /// previous batch of the same append).
        expected: i64,
        /// The base offset found.
        first_offset: i64,
    },

    /// The records of one append are larger than a whole segment. Kafka: RECORD_LIST_TOO_LARGE
    /// (RecordBatchTooLargeException).
    #[error("append of {size} bytes is larger than segment.bytes {segment_bytes}")]
    RecordsTooLargeForSegment {
        /// Bytes in the append.
        size: usize,
        /// The configured segment size.
        segment_bytes: u64,
    },

    /// Assigning offsets would overflow an i64 or a segment's relative offsets.
    #[error("offset overflow: {reason}")]
    OffsetOverflow {
        /// What overflowed.
        reason: String,
    },

    /// A checkpoint file (leader-epoch-checkpoint, log-start-offset) cannot be parsed.
    #[error("corrupt checkpoint {} at line {line}: {reason}", path.display())]
    CorruptCheckpoint {
        /// The checkpoint file.
        path: PathBuf,
        /// 1-based line number.
        line: usize,
        /// What is wrong with it.
        reason: String,
    },

    /// Data already in a segment cannot be parsed (found while reading records to answer a
    /// timestamp query). Kafka: CORRUPT_MESSAGE / KAFKA_STORAGE_ERROR.
    #[error("corrupt data in {} at position {position}", path.display())]
    CorruptSegment {
        /// The segment file.
        path: PathBuf,
        /// Byte position of the batch.
        position: u64,
        /// What is wrong with the batch.
        #[source]
        source: BatchError,
    },
}

impl LogError {
    pub(crate) fn io(path: impl Into<PathBuf>, op: &'static str, source: io::Error) -> LogError {
        LogError::Io {
            path: path.into(),
            op,
            source,
        }
    }
}

/// Attaches a path and an operation name to an `io::Result`.
pub(crate) trait IoContext<T> {
    fn ctx(self, path: &std::path::Path, op: &'static str) -> Result<T, LogError>;
}

impl<T> IoContext<T> for io::Result<T> {
    fn ctx(self, path: &std::path::Path, op: &'static str) -> Result<T, LogError> {
        self.map_err(|source| LogError::io(path, op, source))
    }
}
