use oxka_log::{LogConfig, LogError};

use crate::support::*;

const HOUR: i64 = 3_600_000;

fn small_segments() -> LogConfig {
    LogConfig {
        segment_bytes: 500,
        index_interval_bytes: 64,
        ..LogConfig::default()
    }
}

#[test]
fn retention_by_time_deletes_old_segments_and_keeps_the_log_end_offset() {
    let dir = tempfile::tempdir().unwrap();
    let config = LogConfig {
        retention_ms: 10 * HOUR,
        ..small_segments()
    };
    let mut log = open(dir.path(), config.clone());
    // Hour h gets records stamped T0 + h hours.
    for h in 0..20 {
        append(&mut log, 3, T0 + h * HOUR);
    }
    let segments = log.num_segments();
    assert!(segments > 5);
    assert_eq!(log.enforce_retention(T0 + 10 * HOUR).unwrap(), 0);

    let deleted = log.enforce_retention(T0 + 25 * HOUR).unwrap();
    assert!(deleted > 0);
    assert_eq!(log.num_segments(), segments - deleted);
    assert_eq!(log.log_end_offset(), 60);
    let first = log.segment_base_offsets()[0];
    assert_eq!(log.log_start_offset(), first);
    // Every remaining segment has a record newer than the retention bound... and the deleted ones
    // did not.
    let remaining = all_record_timestamps(&log);
    assert!(remaining.iter().any(|r| r.1 >= T0 + 15 * HOUR - 1));
    assert!(matches!(
        log.read(first - 1, 100, i64::MAX, true),
        Err(LogError::OffsetOutOfRange { .. })
    ));
    assert_every_offset_readable(&log);

    // Everything expires: the active segment is rolled first so the log end offset survives.
    let deleted = log.enforce_retention(T0 + 100 * HOUR).unwrap();
    assert!(deleted > 0);
    assert_eq!(log.num_segments(), 1);
    assert_eq!(log.size_bytes(), 0);
    assert_eq!(log.log_end_offset(), 60);
    assert_eq!(log.log_start_offset(), 60);
    assert_eq!(log.segment_base_offsets(), vec![60]);
    let info = append(&mut log, 1, T0 + 100 * HOUR);
    assert_eq!(info.first_offset, 60);
    log.close().unwrap();
    let log = open(dir.path(), config);
    assert_eq!(log.log_start_offset(), 60);
    assert_eq!(log.log_end_offset(), 61);
}

#[test]
fn retention_by_bytes_deletes_the_oldest_segments() {
    let dir = tempfile::tempdir().unwrap();
    let config = LogConfig {
        retention_bytes: 1500,
        retention_ms: -1,
        ..small_segments()
    };
    let mut log = open(dir.path(), config);
    for _ in 0..40 {
        append(&mut log, 2, T0);
    }
    let before = log.size_bytes();
    assert!(before > 1500);
    let deleted = log.enforce_retention(T0).unwrap();
    assert!(deleted > 0);
    // Kafka never goes below retention.bytes: it stops before the deletion that would.
    assert!(log.size_bytes() >= 1500, "{}", log.size_bytes());
    let first_size = std::fs::metadata(segment_path(
        dir.path(),
        log.segment_base_offsets()[0],
        ".log",
    ))
    .unwrap()
    .len();
    assert!(log.size_bytes() - first_size < 1500);
    assert_eq!(log.log_end_offset(), 80);
    assert_eq!(log.log_start_offset(), log.segment_base_offsets()[0]);
    assert_every_offset_readable(&log);
    assert_eq!(log.enforce_retention(T0).unwrap(), 0);
}

#[test]
fn retention_by_bytes_can_take_the_active_segment() {
    let dir = tempfile::tempdir().unwrap();
    let config = LogConfig {
        retention_bytes: 0,
        retention_ms: -1,
        ..LogConfig::default()
    };
    let mut log = open(dir.path(), config);
    append(&mut log, 5, T0);
    assert_eq!(log.enforce_retention(T0).unwrap(), 1);
    assert_eq!(log.log_start_offset(), 5);
    assert_eq!(log.log_end_offset(), 5);
    assert_eq!(log.num_segments(), 1);
}

#[test]
fn retention_does_not_pass_the_high_watermark() {
    let dir = tempfile::tempdir().unwrap();
    let config = LogConfig {
        retention_bytes: 0,
        retention_ms: -1,
        ..small_segments()
    };
    let mut log = open(dir.path(), config);
    for _ in 0..20 {
        append(&mut log, 2, T0);
    }
    let bases = log.segment_base_offsets();
    let hw = bases[2];
    assert_eq!(log.enforce_retention_below(T0, hw).unwrap(), 2);
    assert_eq!(log.log_start_offset(), hw);
}

#[test]
fn delete_records_before_advances_the_log_start_offset_and_persists_it() {
    let dir = tempfile::tempdir().unwrap();
    let config = small_segments();
    let mut log = open(dir.path(), config.clone());
    for _ in 0..30 {
        append(&mut log, 3, T0);
    }
    let segments = log.num_segments();
    let bases = log.segment_base_offsets();
    let target = bases[2] + 1;
    assert_eq!(log.delete_records_before(target).unwrap(), target);
    assert_eq!(log.log_start_offset(), target);
    assert_eq!(
        log.num_segments(),
        segments - 2,
        "segments wholly below are deleted"
    );
    assert_eq!(log.segment_base_offsets()[0], bases[2]);
    // Going backwards is a no-op.
    assert_eq!(log.delete_records_before(1).unwrap(), target);
    // Beyond the log end offset is an error.
    assert!(matches!(
        log.delete_records_before(91),
        Err(LogError::OffsetOutOfRange { offset: 91, .. })
    ));
    assert_every_offset_readable(&log);
    drop(log); // even without a clean close
    let mut log = open(dir.path(), config.clone());
    assert_eq!(log.log_start_offset(), target);
    // Up to the log end offset: everything below goes but the active segment stays.
    assert_eq!(log.delete_records_before(90).unwrap(), 90);
    assert_eq!(log.num_segments(), 1);
    assert!(log.read(90, 10, i64::MAX, true).unwrap().records.is_empty());
    assert_eq!(append(&mut log, 1, T0).first_offset, 90);
}
