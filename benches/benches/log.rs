//! Log append, read and open (recovery) throughput of `oxka_log::Log` on a real file system.
//!
//! Run: `CARGO_TARGET_DIR=/work/target-bench cargo bench -p oxka-benches --bench log`

use std::path::Path;
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, BatchSize, BenchmarkId, Criterion, Throughput};
use oxka_benches::{record_batch, records_per_batch};
use oxka_log::{Log, LogConfig};

const NOW_MS: i64 = 1_700_000_000_000;
/// Start over (untimed) when the log holds this much, so a long run does not fill the disk.
const RESET_BYTES: u64 = 512 << 20;

fn config() -> LogConfig {
    LogConfig {
        segment_bytes: 128 << 20,
        ..LogConfig::default()
    }
}

/// Fills `dir` with `total` bytes of 16 KiB batches of 100-byte records; returns the log end offset.
fn fill(dir: &Path, cfg: LogConfig, total: usize) -> i64 {
    let mut log = Log::open(dir, cfg, NOW_MS).expect("open");
    let count = records_per_batch(16 << 10, 100);
    let mut batch = record_batch(0, count, 100, NOW_MS);
    let mut written = 0;
    while written < total {
        log.append_as_leader(&mut batch, 0, NOW_MS).expect("append");
        written += batch.len();
    }
    log.flush().expect("flush");
    log.log_end_offset()
}

fn append(c: &mut Criterion) {
    let mut group = c.benchmark_group("log_append");
    group.measurement_time(Duration::from_secs(5));
    for (value_len, batch_bytes, label) in [
        (100usize, 16usize << 10, "100B_records_16KiB_batch"),
        (100, 1 << 20, "100B_records_1MiB_batch"),
        (1024, 1 << 20, "1KiB_records_1MiB_batch"),
    ] {
        let count = records_per_batch(batch_bytes, value_len);
        let template = record_batch(0, count, value_len, NOW_MS);
        group.throughput(Throughput::Bytes(template.len() as u64));
        group.bench_function(BenchmarkId::new("append_as_leader", label), |b| {
            let dir = tempfile::tempdir().expect("tempdir");
            let mut log = Log::open(dir.path(), config(), NOW_MS).expect("open");
            let mut batch = template.clone();
            b.iter_custom(|iters| {
                let mut elapsed = Duration::ZERO;
                let mut start = Instant::now();
                for _ in 0..iters {
                    log.append_as_leader(&mut batch, 0, NOW_MS).expect("append");
                    if log.size_bytes() > RESET_BYTES {
                        elapsed += start.elapsed();
                        log.truncate_fully_and_start_at(0).expect("reset");
                        start = Instant::now();
                    }
                }
                elapsed + start.elapsed()
            });
        });
    }
    group.finish();
}

fn read(c: &mut Criterion) {
    let dir = tempfile::tempdir().expect("tempdir");
    let leo = fill(dir.path(), config(), 256 << 20);
    let log = Log::open(dir.path(), config(), NOW_MS).expect("reopen");
    let mut group = c.benchmark_group("log_read");
    group.measurement_time(Duration::from_secs(5));
    for max_bytes in [64usize << 10, 1 << 20] {
        group.throughput(Throughput::Bytes(max_bytes as u64));
        group.bench_function(BenchmarkId::new("sequential", max_bytes), |b| {
            let mut offset = 0i64;
            b.iter(|| {
                let r = log.read(offset, max_bytes, leo, true).expect("read");
                let len = r.records.len();
                offset = if r.first_offset.is_none() || offset >= leo - 1 {
                    0
                } else {
                    // Continue after the last batch read (the next fetch offset).
                    next_offset(&r.records).unwrap_or(0)
                };
                len
            });
        });
        group.bench_function(BenchmarkId::new("random_offset", max_bytes), |b| {
            // A fixed pseudo-random walk over the log (xorshift), the same every run.
            let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
            b.iter(|| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                let offset = (x % leo as u64) as i64;
                log.read(offset, max_bytes, leo, true)
                    .expect("read")
                    .records
                    .len()
            });
        });
    }
    group.finish();
}

/// The offset after the last whole batch in `records`.
fn next_offset(records: &[u8]) -> Option<i64> {
    let mut pos = 0;
    let mut next = None;
    while pos + 61 <= records.len() {
        let base = i64::from_be_bytes(records[pos..pos + 8].try_into().ok()?);
        let len = i32::from_be_bytes(records[pos + 8..pos + 12].try_into().ok()?) as usize;
        let delta = i32::from_be_bytes(records[pos + 23..pos + 27].try_into().ok()?);
        if pos + 12 + len > records.len() {
            break;
        }
        next = Some(base + i64::from(delta) + 1);
        pos += 12 + len;
    }
    next
}

fn open(c: &mut Criterion) {
    let mut group = c.benchmark_group("log_open");
    group.sample_size(20);
    group.bench_function("empty_dir", |b| {
        b.iter_batched(
            || tempfile::tempdir().expect("tempdir"),
            |dir| {
                let log = Log::open(dir.path(), config(), NOW_MS).expect("open");
                drop(log);
                dir
            },
            BatchSize::PerIteration,
        );
    });
    for mib in [1usize, 64] {
        let dir = tempfile::tempdir().expect("tempdir");
        fill(dir.path(), config(), mib << 20);
        group.throughput(Throughput::Bytes((mib << 20) as u64));
        group.bench_function(BenchmarkId::new("recover_active_segment_MiB", mib), |b| {
            b.iter(|| {
                let log = Log::open(dir.path(), config(), NOW_MS).expect("open");
                log.log_end_offset()
            });
        });
    }
    group.finish();
}

criterion_group!(benches, append, read, open);
criterion_main!(benches);
