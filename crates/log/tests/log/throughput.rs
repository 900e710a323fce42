//! A rough throughput check, ignored by default:
//! `cargo test -p oxka-log --release --test log -- --ignored --nocapture throughput`.

use std::time::Instant;

use oxka_log::test_support::simple_batch;
use oxka_log::LogConfig;

use crate::support::*;

#[test]
#[ignore = "timing, run by hand in release mode"]
fn throughput_append_and_read() {
    let dir = tempfile::tempdir().unwrap();
    let config = LogConfig {
        segment_bytes: 64 << 20,
        ..LogConfig::default()
    };
    let mut log = open(dir.path(), config);
    let template = simple_batch(0, 10, T0, 100); // ~1.3 KB, 10 records
    let n = 200_000;
    let start = Instant::now();
    for _ in 0..n {
        let mut b = template.clone();
        log.append_as_leader(&mut b, 0, T0).unwrap();
    }
    let secs = start.elapsed().as_secs_f64();
    let mb = log.size_bytes() as f64 / 1e6;
    println!(
        "append: {n} batches, {mb:.0} MB in {secs:.2}s = {:.0} MB/s, {:.0} batches/s",
        mb / secs,
        n as f64 / secs
    );
    let start = Instant::now();
    let mut offset = 0;
    let mut bytes = 0;
    while offset < log.log_end_offset() {
        let r = log.read(offset, 1 << 20, i64::MAX, true).unwrap();
        bytes += r.records.len();
        offset = oxka_log::batch::batches(&r.records)
            .last()
            .unwrap()
            .next_offset();
    }
    let secs = start.elapsed().as_secs_f64();
    println!(
        "read: {:.0} MB in {secs:.2}s = {:.0} MB/s",
        bytes as f64 / 1e6,
        bytes as f64 / 1e6 / secs
    );
    let start = Instant::now();
    for i in 0..10_000 {
        let offset = (i * 7919) % log.log_end_offset();
        log.read(offset, 1 << 20, i64::MAX, true).unwrap();
    }
    println!(
        "random 1 MiB reads: {:.1} µs each",
        start.elapsed().as_secs_f64() * 1e6 / 10_000.0
    );
    let start = Instant::now();
    for i in 0..2_000 {
        log.offset_for_timestamp(T0 + (i % 12)).unwrap();
    }
    println!(
        "offset_for_timestamp: {:.1} µs each",
        start.elapsed().as_secs_f64() * 1e6 / 2_000.0
    );
}
