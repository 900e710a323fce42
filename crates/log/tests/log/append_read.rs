use oxka_log::batch::batches;
use oxka_log::test_support::{simple_batch, BatchBuilder};
use oxka_log::{validate_batches, LogConfig, LogError, TimestampType};

use crate::support::*;

#[test]
fn append_then_read_round_trips_bytes_and_assigns_offsets() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = open(dir.path(), LogConfig::default());
    let mut written = Vec::new();
    let mut expected_ranges = Vec::new();
    for (i, count) in [1usize, 3, 5].into_iter().enumerate() {
        // Producers send baseOffset 0; the leader assigns the real one.
        let mut b = simple_batch(0, count, T0 + i as i64, 16);
        let info = log.append_as_leader(&mut b, 7, T0).unwrap();
        expected_ranges.push((info.first_offset, info.last_offset));
        assert_eq!(info.num_records, count as u64);
        assert_eq!(info.bytes, b.len());
        assert_eq!(info.log_append_time_ms, -1);
        written.extend_from_slice(&b);
    }
    assert_eq!(expected_ranges, vec![(0, 0), (1, 3), (4, 8)]);
    // Timestamps T0 + i + record index: the largest is in the last batch.
    let mut b = simple_batch(0, 2, T0 - 100, 1);
    let info = log.append_as_leader(&mut b, 7, T0).unwrap();
    assert_eq!(
        (info.max_timestamp, info.offset_of_max_timestamp),
        (T0 - 99, 10)
    );
    log.truncate_to(9).unwrap();
    assert_eq!(log.log_end_offset(), 9);
    assert_eq!(log.size_bytes(), written.len() as u64);

    let r = log.read(0, 1 << 20, i64::MAX, false).unwrap();
    assert_eq!(r.first_offset, Some(0));
    assert_eq!(&r.records[..], &written[..], "byte-for-byte");
    let got: Vec<_> = batches(&r.records)
        .map(|b| {
            (
                b.base_offset(),
                b.last_offset(),
                b.partition_leader_epoch(),
                b.is_valid(),
            )
        })
        .collect();
    assert_eq!(got, vec![(0, 0, 7, true), (1, 3, 7, true), (4, 8, 7, true)]);
    validate_batches(&r.records, u32::MAX).unwrap();
}

#[test]
fn read_from_the_middle_of_a_batch_returns_the_containing_batch() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = open(dir.path(), LogConfig::default());
    append(&mut log, 1, T0);
    append(&mut log, 10, T0);
    append(&mut log, 1, T0);
    for offset in 1..=10 {
        let r = log.read(offset, 1 << 20, i64::MAX, false).unwrap();
        assert_eq!(r.first_offset, Some(1), "offset {offset}");
    }
    assert_eq!(
        log.read(11, 1 << 20, i64::MAX, false).unwrap().first_offset,
        Some(11)
    );
}

#[test]
fn max_bytes_returns_whole_batches_and_min_one_batch_overrides_it() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = open(dir.path(), LogConfig::default());
    let a = append(&mut log, 5, T0).bytes;
    let b = append(&mut log, 5, T0).bytes;
    append(&mut log, 5, T0);

    let r = log.read(0, a + b - 1, i64::MAX, false).unwrap();
    assert_eq!(r.records.len(), a, "only whole batches");
    let r = log.read(0, a + b, i64::MAX, false).unwrap();
    assert_eq!(r.records.len(), a + b);

    let r = log.read(0, 10, i64::MAX, false).unwrap();
    assert!(r.records.is_empty());
    assert_eq!(r.first_offset, None);
    let r = log.read(0, 10, i64::MAX, true).unwrap();
    assert_eq!(
        r.records.len(),
        a,
        "KIP-74: first batch even when too large"
    );
    assert_eq!(r.first_offset, Some(0));
}

#[test]
fn max_offset_bounds_the_read() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = open(dir.path(), LogConfig::default());
    let a = append(&mut log, 2, T0).bytes; // 0..=1
    append(&mut log, 2, T0); // 2..=3
    let r = log.read(0, 1 << 20, 2, false).unwrap();
    assert_eq!(r.records.len(), a);
    // The high watermark inside a batch: the batch starts below it, so it is returned.
    let r = log.read(0, 1 << 20, 3, false).unwrap();
    assert_eq!(batches(&r.records).count(), 2);
    let r = log.read(2, 1 << 20, 2, true).unwrap();
    assert!(r.records.is_empty());
    assert_eq!(r.first_offset, None);
}

#[test]
fn reads_outside_the_log_are_offset_out_of_range() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = open(dir.path(), LogConfig::default());
    append(&mut log, 3, T0);
    append(&mut log, 3, T0);
    let err = log.read(7, 100, i64::MAX, true).unwrap_err();
    assert!(matches!(
        err,
        LogError::OffsetOutOfRange {
            offset: 7,
            log_start_offset: 0,
            log_end_offset: 6
        }
    ));
    // At the log end offset: empty, not an error.
    let r = log.read(6, 100, i64::MAX, true).unwrap();
    assert!(r.records.is_empty());
    log.delete_records_before(4).unwrap();
    assert!(matches!(
        log.read(3, 100, i64::MAX, true),
        Err(LogError::OffsetOutOfRange {
            offset: 3,
            log_start_offset: 4,
            ..
        })
    ));
    assert_eq!(
        log.read(4, 1 << 20, i64::MAX, true).unwrap().first_offset,
        Some(3)
    );
}

#[test]
fn log_append_time_rewrites_max_timestamp_and_crc() {
    let dir = tempfile::tempdir().unwrap();
    let config = LogConfig {
        timestamp_type: TimestampType::LogAppendTime,
        ..LogConfig::default()
    };
    let mut log = open(dir.path(), config);
    let mut b = simple_batch(0, 3, T0 - 50_000, 8);
    let info = log.append_as_leader(&mut b, 0, T0).unwrap();
    assert_eq!(info.log_append_time_ms, T0);
    assert_eq!(info.max_timestamp, T0);
    let r = log.read(0, 1 << 20, i64::MAX, false).unwrap();
    let batch = batches(&r.records).next().unwrap();
    assert_eq!(batch.timestamp_type(), TimestampType::LogAppendTime);
    assert_eq!(batch.max_timestamp(), T0);
    assert!(batch.is_valid(), "CRC recomputed");
    assert_eq!(
        batch.record_timestamps().unwrap(),
        vec![(0, T0), (1, T0), (2, T0)]
    );
}

#[test]
fn create_time_topic_clears_a_log_append_time_bit_from_the_producer() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = open(dir.path(), LogConfig::default());
    let mut builder = BatchBuilder::new(0).record(T0 - 5, None, Some(b"v"));
    builder.timestamp_type = TimestampType::LogAppendTime;
    let mut b = builder.build();
    log.append_as_leader(&mut b, 0, T0).unwrap();
    let r = log.read(0, 1 << 20, i64::MAX, false).unwrap();
    let batch = batches(&r.records).next().unwrap();
    assert_eq!(batch.timestamp_type(), TimestampType::CreateTime);
    assert_eq!(batch.max_timestamp(), T0 - 5);
    assert!(batch.is_valid());
}

#[test]
fn follower_append_keeps_offsets_and_checks_the_start() {
    let leader_dir = tempfile::tempdir().unwrap();
    let follower_dir = tempfile::tempdir().unwrap();
    let mut leader = open(leader_dir.path(), LogConfig::default());
    let mut follower = open(follower_dir.path(), LogConfig::default());
    append(&mut leader, 3, T0);
    let mut b = simple_batch(0, 2, T0, 4);
    leader.append_as_leader(&mut b, 4, T0).unwrap();
    let fetched = leader.read(0, 1 << 20, i64::MAX, false).unwrap();
    let info = follower.append_as_follower(&fetched.records, T0).unwrap();
    assert_eq!((info.first_offset, info.last_offset), (0, 4));
    assert_eq!(follower.log_end_offset(), 5);
    assert_eq!(read_all(&follower), read_all(&leader));
    assert_eq!(follower.latest_epoch(), Some(4));
    assert_eq!(follower.end_offset_for_epoch(0), Some((0, 3)));

    // Appending the same batches again starts below the log end offset.
    let err = follower
        .append_as_follower(&fetched.records, T0)
        .unwrap_err();
    assert!(matches!(
        err,
        LogError::UnexpectedAppendOffset {
            expected: 5,
            first_offset: 0
        }
    ));
    // Offsets must increase inside one append.
    let mut twice = simple_batch(5, 1, T0, 1);
    twice.extend_from_slice(&simple_batch(5, 1, T0, 1));
    assert!(matches!(
        follower.append_as_follower(&twice, T0),
        Err(LogError::InvalidRecords(_))
    ));
    assert_eq!(follower.log_end_offset(), 5);
}

#[test]
fn invalid_appends_leave_the_log_unchanged() {
    let dir = tempfile::tempdir().unwrap();
    let config = LogConfig {
        max_message_bytes: 200,
        ..LogConfig::default()
    };
    let mut log = open(dir.path(), config);
    append(&mut log, 1, T0);
    let size = log.size_bytes();
    let mut big = simple_batch(0, 10, T0, 100);
    assert!(matches!(
        log.append_as_leader(&mut big, 0, T0),
        Err(LogError::InvalidRecords(
            oxka_log::BatchError::MessageTooLarge { .. }
        ))
    ));
    let mut bad = simple_batch(0, 1, T0, 10);
    let last = bad.len() - 1;
    bad[last] ^= 1;
    assert!(matches!(
        log.append_as_leader(&mut bad, 0, T0),
        Err(LogError::InvalidRecords(
            oxka_log::BatchError::CorruptMessage { .. }
        ))
    ));
    assert!(matches!(
        log.append_as_leader(&mut [], 0, T0),
        Err(LogError::InvalidRecords(
            oxka_log::BatchError::InvalidRecord { .. }
        ))
    ));
    assert_eq!(log.size_bytes(), size);
    assert_eq!(log.log_end_offset(), 1);
}

#[test]
fn reopen_after_clean_close_keeps_everything() {
    let dir = tempfile::tempdir().unwrap();
    let config = LogConfig {
        segment_bytes: 600,
        index_interval_bytes: 100,
        ..LogConfig::default()
    };
    let mut log = open(dir.path(), config.clone());
    for i in 0..30 {
        let mut b = simple_batch(0, 1 + i % 4, T0 + i as i64 * 10, 30);
        log.append_as_leader(&mut b, (i / 10) as i32, T0).unwrap();
    }
    log.delete_records_before(5).unwrap();
    let before = read_all(&log);
    let (leo, lso, segs, size) = (
        log.log_end_offset(),
        log.log_start_offset(),
        log.num_segments(),
        log.size_bytes(),
    );
    let epochs = log.epoch_entries().to_vec();
    let ts = log.offset_for_timestamp(T0 + 150).unwrap();
    log.close().unwrap();

    let log = open(dir.path(), config);
    assert_eq!(log.log_end_offset(), leo);
    assert_eq!(log.log_start_offset(), lso);
    assert_eq!(log.num_segments(), segs);
    assert_eq!(log.size_bytes(), size);
    assert_eq!(log.epoch_entries(), &epochs[..]);
    assert_eq!(read_all(&log), before);
    assert_eq!(log.offset_for_timestamp(T0 + 150).unwrap(), ts);
    assert_every_offset_readable(&log);
}

#[test]
fn delete_removes_the_directory() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("topic-0");
    let mut log = open(&path, LogConfig::default());
    append(&mut log, 1, T0);
    assert_eq!(log.dir(), path.as_path());
    log.delete().unwrap();
    assert!(!path.exists());
}

#[test]
fn large_reads_return_exactly_the_whole_batches_that_fit() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = open(dir.path(), LogConfig::default());
    let mut sizes = Vec::new();
    for i in 0..200 {
        let mut b = simple_batch(0, 1 + i % 3, T0, 300 + (i * 37) % 700);
        sizes.push(log.append_as_leader(&mut b, 0, T0).unwrap().bytes);
    }
    // One batch larger than the first read chunk.
    let mut big = simple_batch(0, 1, T0, 200_000);
    sizes.push(log.append_as_leader(&mut big, 0, T0).unwrap().bytes);
    let total: usize = sizes.iter().sum();
    for max_bytes in [
        1_000,
        65_535,
        65_536,
        70_000,
        150_000,
        total - 1,
        total,
        total * 2,
    ] {
        let r = log.read(0, max_bytes, i64::MAX, false).unwrap();
        let mut fit = 0;
        let mut n = 0;
        for s in &sizes {
            if fit + s > max_bytes {
                break;
            }
            fit += s;
            n += 1;
        }
        assert_eq!(r.records.len(), fit, "max_bytes {max_bytes}");
        assert_eq!(batches(&r.records).count(), n);
    }
    // Bounded by max_offset well before max_bytes.
    let r = log.read(0, total, 10, false).unwrap();
    assert!(batches(&r.records).all(|b| b.base_offset() < 10));
    assert!(batches(&r.records).last().unwrap().next_offset() >= 10);
    // The big batch alone.
    let leo = log.log_end_offset();
    let r = log.read(leo - 1, 1000, i64::MAX, true).unwrap();
    assert_eq!(r.records.len(), *sizes.last().unwrap());
    let r = log.read(leo - 1, 1_000_000, i64::MAX, false).unwrap();
    assert_eq!(r.records.len(), *sizes.last().unwrap());
}
