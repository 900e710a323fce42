use oxka_log::test_support::{simple_batch, BatchBuilder};
use oxka_log::{Compression, LogConfig, TimestampType};

use crate::support::*;

/// The first record (in offset order) with timestamp >= target.
fn expected(records: &[(i64, i64)], target: i64) -> Option<(i64, i64)> {
    records.iter().copied().find(|&(_, ts)| ts >= target)
}

fn check_all_targets(log: &oxka_log::Log) {
    let records = all_record_timestamps(log);
    let lo = records.iter().map(|r| r.1).min().unwrap_or(0) - 2;
    let hi = records.iter().map(|r| r.1).max().unwrap_or(0) + 2;
    for target in lo..=hi {
        assert_eq!(
            log.offset_for_timestamp(target).unwrap(),
            expected(&records, target),
            "target {target}"
        );
    }
}

const CODECS: [(Compression, bool); 6] = [
    (Compression::None, false),
    (Compression::Gzip, false),
    (Compression::Snappy, false),
    (Compression::Snappy, true),
    (Compression::Lz4, false),
    (Compression::Zstd, false),
];

#[test]
fn offset_for_timestamp_finds_the_record_inside_batches_of_every_codec() {
    for (codec, xerial) in CODECS {
        let dir = tempfile::tempdir().unwrap();
        let config = LogConfig {
            index_interval_bytes: 50,
            segment_bytes: 2_000,
            ..LogConfig::default()
        };
        let mut log = open(dir.path(), config);
        let mut rng = Rng::new(42);
        let mut ts = T0;
        for _ in 0..40 {
            let n = rng.range(1, 8) as usize;
            // Timestamps mostly rise but jump around inside a batch.
            let stamps: Vec<i64> = (0..n)
                .map(|_| {
                    ts += rng.range(0, 5) as i64;
                    ts - rng.range(0, 12) as i64
                })
                .collect();
            let mut b = BatchBuilder::new(0).compression(codec);
            b.xerial_snappy = xerial;
            for (i, t) in stamps.iter().enumerate() {
                b = b.record(*t, Some(format!("k{i}").as_bytes()), Some(b"value"));
            }
            let mut bytes = b.build();
            log.append_as_leader(&mut bytes, 0, T0).unwrap();
        }
        assert!(log.num_segments() > 1, "{codec:?}");
        check_all_targets(&log);
        assert_eq!(log.offset_for_timestamp(ts + 100).unwrap(), None);
    }
}

#[test]
fn offset_for_timestamp_with_log_append_time() {
    let dir = tempfile::tempdir().unwrap();
    let config = LogConfig {
        timestamp_type: TimestampType::LogAppendTime,
        ..LogConfig::default()
    };
    let mut log = open(dir.path(), config);
    for i in 0..5 {
        let mut b = batch_with_timestamps(&[1, 2, 3], Compression::Lz4);
        log.append_as_leader(&mut b, 0, T0 + i * 100).unwrap();
    }
    assert_eq!(log.offset_for_timestamp(0).unwrap(), Some((0, T0)));
    assert_eq!(
        log.offset_for_timestamp(T0 + 1).unwrap(),
        Some((3, T0 + 100))
    );
    assert_eq!(
        log.offset_for_timestamp(T0 + 400).unwrap(),
        Some((12, T0 + 400))
    );
    assert_eq!(log.offset_for_timestamp(T0 + 401).unwrap(), None);
    assert_eq!(log.max_timestamp_offset().unwrap(), Some((12, T0 + 400)));
}

#[test]
fn offset_for_timestamp_skips_records_below_the_log_start_offset() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = open(dir.path(), LogConfig::default());
    let mut b = batch_with_timestamps(&[T0 + 10, T0, T0 + 20, T0 + 5], Compression::Zstd);
    log.append_as_leader(&mut b, 0, T0).unwrap();
    assert_eq!(log.offset_for_timestamp(T0).unwrap(), Some((0, T0 + 10)));
    log.delete_records_before(1).unwrap();
    assert_eq!(log.offset_for_timestamp(T0).unwrap(), Some((1, T0)));
    log.delete_records_before(3).unwrap();
    assert_eq!(log.offset_for_timestamp(T0).unwrap(), Some((3, T0 + 5)));
    assert_eq!(log.offset_for_timestamp(T0 + 6).unwrap(), None);
}

#[test]
fn max_timestamp_offset_is_the_first_record_with_the_largest_timestamp() {
    let dir = tempfile::tempdir().unwrap();
    let config = LogConfig {
        segment_bytes: 400,
        index_interval_bytes: 10,
        ..LogConfig::default()
    };
    let mut log = open(dir.path(), config);
    assert_eq!(log.max_timestamp_offset().unwrap(), None);
    let batches: [&[i64]; 5] = [
        &[T0, T0 + 3],
        &[T0 + 1, T0 + 50, T0 + 2, T0 + 50],
        &[T0 + 10],
        &[T0 + 49, T0 + 50],
        &[T0 + 20],
    ];
    for stamps in batches {
        let mut b = batch_with_timestamps(stamps, Compression::Gzip);
        log.append_as_leader(&mut b, 0, T0).unwrap();
    }
    assert!(log.num_segments() > 1);
    assert_eq!(log.max_timestamp_offset().unwrap(), Some((3, T0 + 50)));
    let mut b = simple_batch(0, 1, T0 + 51, 1);
    let info = log.append_as_leader(&mut b, 0, T0).unwrap();
    assert_eq!(
        log.max_timestamp_offset().unwrap(),
        Some((info.first_offset, T0 + 51))
    );
}
