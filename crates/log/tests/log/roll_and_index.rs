use oxka_log::test_support::simple_batch;
use oxka_log::{Log, LogConfig, LogError};

use crate::support::*;

#[test]
fn rolls_when_the_next_batch_would_exceed_segment_bytes() {
    let dir = tempfile::tempdir().unwrap();
    let config = LogConfig {
        segment_bytes: 1000,
        ..LogConfig::default()
    };
    let mut log = open(dir.path(), config.clone());
    let size = append(&mut log, 2, T0).bytes as u64;
    let per_segment = 1000 / size;
    for _ in 1..per_segment {
        append(&mut log, 2, T0);
    }
    assert_eq!(log.num_segments(), 1);
    append(&mut log, 2, T0);
    assert_eq!(log.num_segments(), 2);
    assert_eq!(log.segment_base_offsets(), vec![0, 2 * per_segment as i64]);
    for _ in 0..20 {
        append(&mut log, 2, T0);
    }
    for (i, base) in log.segment_base_offsets().iter().enumerate() {
        let len = std::fs::metadata(segment_path(dir.path(), *base, ".log"))
            .unwrap()
            .len();
        assert!(len <= 1000, "segment {i} has {len} bytes");
    }
    assert_every_offset_readable(&log);
}

#[test]
fn an_append_larger_than_a_segment_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let config = LogConfig {
        segment_bytes: 100,
        ..LogConfig::default()
    };
    let mut log = open(dir.path(), config);
    let mut b = simple_batch(0, 5, T0, 50);
    assert!(matches!(
        log.append_as_leader(&mut b, 0, T0),
        Err(LogError::RecordsTooLargeForSegment { .. })
    ));
}

#[test]
fn rolls_when_the_active_segment_is_older_than_segment_ms() {
    let dir = tempfile::tempdir().unwrap();
    let config = LogConfig {
        segment_ms: 1000,
        ..LogConfig::default()
    };
    let mut log = open(dir.path(), config);
    assert!(
        !log.maybe_roll(T0 + 10_000).unwrap(),
        "empty segment never rolls"
    );
    let mut b = simple_batch(0, 1, T0, 1);
    log.append_as_leader(&mut b, 0, T0).unwrap();
    let mut b = simple_batch(0, 1, T0, 1);
    log.append_as_leader(&mut b, 0, T0 + 1000).unwrap();
    assert_eq!(log.num_segments(), 1);
    let mut b = simple_batch(0, 1, T0, 1);
    log.append_as_leader(&mut b, 0, T0 + 1001).unwrap();
    assert_eq!(log.segment_base_offsets(), vec![0, 2]);

    // Without appends, the periodic check rolls.
    assert!(!log.maybe_roll(T0 + 2001).unwrap());
    assert!(log.maybe_roll(T0 + 2002).unwrap());
    assert_eq!(log.segment_base_offsets(), vec![0, 2, 3]);
    assert!(
        !log.maybe_roll(T0 + 100_000).unwrap(),
        "new active is empty"
    );
    assert_eq!(log.log_end_offset(), 3);
    assert_every_offset_readable(&log);
}

#[test]
fn index_lookups_stay_right_after_many_appends() {
    let dir = tempfile::tempdir().unwrap();
    let config = LogConfig {
        index_interval_bytes: 100,
        segment_bytes: 20_000,
        ..LogConfig::default()
    };
    let mut log = open(dir.path(), config.clone());
    let mut rng = Rng::new(7);
    for _ in 0..400 {
        let count = rng.range(1, 6) as usize;
        let mut b = simple_batch(0, count, T0, rng.range(0, 60) as usize);
        log.append_as_leader(&mut b, 0, T0).unwrap();
    }
    assert!(log.num_segments() > 2);
    assert_every_offset_readable(&log);
    // Index files exist and have entries.
    let idx = std::fs::metadata(segment_path(dir.path(), 0, ".index"))
        .unwrap()
        .len();
    assert!(
        idx > 0 && idx.is_multiple_of(8),
        "rolled index trimmed to entries: {idx}"
    );
    // Unclean shutdown (no close): indexes are rebuilt or checked, lookups still right.
    drop(log);
    let log = open(dir.path(), config);
    assert_every_offset_readable(&log);
}

#[test]
fn rolls_when_the_offset_index_is_full() {
    let dir = tempfile::tempdir().unwrap();
    let config = LogConfig {
        index_interval_bytes: 1,
        segment_index_bytes: 48, // 6 offset entries, 4 time entries
        ..LogConfig::default()
    };
    let mut log = open(dir.path(), config);
    for i in 0..30 {
        append(&mut log, 1, T0 + i);
    }
    assert!(log.num_segments() >= 5, "{} segments", log.num_segments());
    assert_every_offset_readable(&log);
}

#[test]
fn config_changes_apply() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = Log::open(dir.path(), LogConfig::default(), T0).unwrap();
    let config = LogConfig {
        segment_bytes: 300,
        ..LogConfig::default()
    };
    log.update_config(config.clone());
    assert_eq!(log.config(), &config);
    for _ in 0..10 {
        append(&mut log, 1, T0);
    }
    assert!(log.num_segments() > 1);
}
