//! Record batch header validation (`oxka_log::validate_batches`: framing, magic, CRC-32C, sizes,
//! counts) — the per-produce-request work before an append — against a bare CRC-32C of the same
//! bytes, which is its floor.
//!
//! Run: `CARGO_TARGET_DIR=/work/target-bench cargo bench -p oxka-benches --bench batch`

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use oxka_benches::{record_batch, records_per_batch};

const NOW_MS: i64 = 1_700_000_000_000;

fn validate(c: &mut Criterion) {
    let mut group = c.benchmark_group("validate_batches");
    for (value_len, batch_bytes, batches, label) in [
        (100usize, 16usize << 10, 1usize, "1x16KiB_100B_records"),
        (100, 16 << 10, 64, "64x16KiB_100B_records"),
        (100, 1 << 20, 1, "1x1MiB_100B_records"),
        (1024, 1 << 20, 1, "1x1MiB_1KiB_records"),
    ] {
        let count = records_per_batch(batch_bytes, value_len);
        let mut buf = Vec::new();
        for i in 0..batches {
            buf.extend_from_slice(&record_batch((i * count) as i64, count, value_len, NOW_MS));
        }
        group.throughput(Throughput::Bytes(buf.len() as u64));
        group.bench_function(BenchmarkId::new("validate_batches", label), |b| {
            b.iter(|| {
                oxka_log::validate_batches(std::hint::black_box(&buf), 1_048_588 * 2)
                    .expect("valid")
            });
        });
        group.bench_function(BenchmarkId::new("crc32c_only", label), |b| {
            b.iter(|| crc32c::crc32c(std::hint::black_box(&buf)));
        });
    }
    group.finish();
}

criterion_group!(benches, validate);
criterion_main!(benches);
