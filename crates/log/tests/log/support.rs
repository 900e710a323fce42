//! Helpers shared by the behaviour tests.

use std::path::Path;

use oxka_log::batch::batches;
use oxka_log::test_support::{simple_batch, BatchBuilder};
use oxka_log::{AppendInfo, Compression, Log, LogConfig};

/// A realistic "now" so that record timestamps and the broker clock live in the same range.
pub(crate) const T0: i64 = 1_700_000_000_000;

pub(crate) fn open(dir: &Path, config: LogConfig) -> Log {
    Log::open(dir, config, T0).expect("open log")
}

/// Appends a batch of `count` records (timestamps `ts, ts+1, ...`) as leader in epoch 0.
pub(crate) fn append(log: &mut Log, count: usize, ts: i64) -> AppendInfo {
    let mut b = simple_batch(0, count, ts, 20);
    log.append_as_leader(&mut b, 0, ts).expect("append")
}

/// A batch with the given record timestamps and codec.
pub(crate) fn batch_with_timestamps(timestamps: &[i64], compression: Compression) -> Vec<u8> {
    let mut b = BatchBuilder::new(0).compression(compression);
    for (i, ts) in timestamps.iter().enumerate() {
        b = b.record(
            *ts,
            Some(format!("key-{i}").as_bytes()),
            Some(b"some value"),
        );
    }
    b.build()
}

/// Every batch in the log, oldest first, by reading from the log start offset to the end.
pub(crate) fn read_all(log: &Log) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    let mut offset = log.log_start_offset();
    while offset < log.log_end_offset() {
        let r = log
            .read(offset, usize::MAX >> 1, i64::MAX, true)
            .expect("read");
        assert!(!r.records.is_empty(), "nothing read at {offset}");
        for b in batches(&r.records) {
            assert!(b.is_valid(), "invalid batch read at {}", b.base_offset());
            offset = b.next_offset();
            out.push(b.as_bytes().to_vec());
        }
    }
    out
}

/// For every offset of the log, a read returns first the batch containing it (so the offset index
/// and the segments agree).
pub(crate) fn assert_every_offset_readable(log: &Log) {
    let all = read_all(log);
    let mut expected = all.iter().map(|b| {
        let batch = oxka_log::RecordBatch::from_prefix(b).unwrap();
        (batch.base_offset(), batch.last_offset(), b.clone())
    });
    let mut current = expected.next();
    for offset in log.log_start_offset()..log.log_end_offset() {
        while let Some((_, last, _)) = &current {
            if *last < offset {
                current = expected.next();
            } else {
                break;
            }
        }
        let (base, _, bytes) = current.clone().expect("a batch for every offset");
        let r = log.read(offset, 1, i64::MAX, true).unwrap();
        assert_eq!(r.first_offset, Some(base), "offset {offset}");
        assert_eq!(&r.records[..], &bytes[..], "offset {offset}");
    }
}

/// (offset, timestamp) of every record in the log from the log start offset on.
pub(crate) fn all_record_timestamps(log: &Log) -> Vec<(i64, i64)> {
    read_all(log)
        .iter()
        .flat_map(|b| {
            oxka_log::RecordBatch::from_prefix(b)
                .unwrap()
                .record_timestamps()
                .unwrap()
        })
        .filter(|(o, _)| *o >= log.log_start_offset())
        .collect()
}

/// A small deterministic PRNG (xorshift64*), so tests need no extra crate.
pub(crate) struct Rng(u64);

impl Rng {
    pub(crate) fn new(seed: u64) -> Rng {
        Rng(seed.max(1))
    }

    pub(crate) fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// Uniform in `lo..hi`.
    pub(crate) fn range(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.next_u64() % (hi - lo).max(1)
    }
}

/// Copies the files (not subdirectories) of `from` into `to`.
pub(crate) fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        std::fs::copy(e.path(), to.join(e.file_name())).unwrap();
    }
}

pub(crate) fn segment_path(dir: &Path, base: i64, suffix: &str) -> std::path::PathBuf {
    dir.join(format!("{base:020}{suffix}"))
}
