//! Log compaction (`cleanup.policy=compact`): what survives a pass, what it leaves alone, and
//! that a crash at any step of the swap reopens to a consistent log.

use std::collections::BTreeMap;
use std::path::Path;

use oxka_log::batch::batches;
use oxka_log::test_support::BatchBuilder;
use oxka_log::{CleanerConfig, Compression, Log, LogConfig, RecordBatch, TimestampType};

use crate::support::*;

const SEC: i64 = 1000;

fn compacted() -> LogConfig {
    LogConfig {
        segment_bytes: 600,
        index_interval_bytes: 64,
        compact: true,
        retention_ms: -1,
        min_cleanable_dirty_ratio: 0.0,
        delete_retention_ms: 10 * SEC,
        ..LogConfig::default()
    }
}

/// One record per batch: `key` = `value` (None = tombstone) at `ts`.
fn put(log: &mut Log, key: &str, value: Option<&str>, ts: i64) -> i64 {
    put_with(log, BatchBuilder::new(0), key, value, ts)
}

fn put_with(log: &mut Log, b: BatchBuilder, key: &str, value: Option<&str>, ts: i64) -> i64 {
    let mut b = b
        .record(ts, Some(key.as_bytes()), value.map(str::as_bytes))
        .build();
    log.append_as_leader(&mut b, 0, ts).unwrap().first_offset
}

/// A record as read back: (offset, timestamp, key, value).
type Rec = (i64, i64, String, Option<String>);

fn records(log: &Log) -> Vec<Rec> {
    let mut out = Vec::new();
    for bytes in read_all(log) {
        let batch = RecordBatch::from_prefix(&bytes).unwrap();
        assert!(batch.is_valid());
        let payload = batch.records_payload().unwrap();
        let stamps = batch.record_timestamps().unwrap();
        for (r, (offset, ts)) in batch.records(&payload).zip(stamps) {
            let r = r.unwrap();
            let s = |b: &[u8]| String::from_utf8(b.to_vec()).unwrap();
            out.push((offset, ts, s(r.key.unwrap()), r.value.map(s)));
        }
    }
    out
}

/// What a consumer of the whole log ends up with: key → (offset, value) of its latest record.
fn latest(recs: &[Rec]) -> BTreeMap<String, (i64, Option<String>)> {
    recs.iter()
        .map(|(o, _, k, v)| (k.clone(), (*o, v.clone())))
        .collect()
}

fn compact(log: &mut Log, now: i64) -> Option<oxka_log::CompactionStats> {
    log.compact(now, &CleanerConfig::default()).unwrap()
}

/// Writes 10 keys 5 times each, deletes k3 and k7, and rolls so everything is cleanable.
fn overwritten_log(dir: &Path, config: LogConfig) -> (Log, Vec<Rec>) {
    let mut log = Log::open(dir, config, T0).unwrap();
    for round in 0..5 {
        for k in 0..10 {
            put(
                &mut log,
                &format!("k{k}"),
                Some(&format!("v{round}-{k}")),
                T0 + round * 10 + k,
            );
        }
    }
    put(&mut log, "k3", None, T0 + 100);
    put(&mut log, "k7", None, T0 + 101);
    log.roll().unwrap();
    let before = records(&log);
    (log, before)
}

#[test]
fn only_the_latest_record_per_key_remains_at_its_offset_and_timestamp() {
    let dir = tempfile::tempdir().unwrap();
    let (mut log, before) = overwritten_log(dir.path(), compacted());
    let segments_before = log.num_segments();
    assert!(segments_before > 3);
    let leo = log.log_end_offset();

    let stats = compact(&mut log, T0 + SEC).expect("a pass is due");
    assert!(!stats.aborted);
    assert_eq!(stats.end_offset, leo);
    assert_eq!(log.cleaner_checkpoint(), leo);
    let after = records(&log);
    // Exactly the latest record of each key, tombstones included (not yet past their horizon),
    // with the offsets and timestamps they had.
    let expected: Vec<Rec> = {
        let last = latest(&before);
        before
            .iter()
            .filter(|(o, _, k, _)| last[k].0 == *o)
            .cloned()
            .collect()
    };
    assert_eq!(after, expected);
    assert_eq!(after.len(), 10);
    assert_eq!(latest(&after), latest(&before));
    assert_eq!(log.log_end_offset(), leo);
    assert_eq!(log.log_start_offset(), 0);
    assert!(log.num_segments() <= segments_before);
    // Every offset (gaps included) reads the batch holding or following it.
    for offset in 0..leo {
        let r = log.read(offset, 1, i64::MAX, true).unwrap();
        let first = batches(&r.records).next().expect("a batch");
        assert!(first.last_offset() >= offset, "offset {offset}");
    }
    // Timestamp lookups land on surviving records.
    let (o, ts) = log.offset_for_timestamp(T0 + 33).unwrap().unwrap();
    assert!(ts >= T0 + 33);
    assert!(after.iter().any(|r| r.0 == o && r.1 == ts));
    assert_eq!(log.offset_for_timestamp(T0 + 1000).unwrap(), None);

    // Nothing new: no pass is due, and a reopen sees the same log.
    assert!(compact(&mut log, T0 + 2 * SEC).is_none());
    log.close().unwrap();
    let log = Log::open(dir.path(), compacted(), T0).unwrap();
    assert_eq!(records(&log), after);
    assert_eq!(log.cleaner_checkpoint(), leo);
    assert_every_offset_readable(&log);
}

#[test]
fn tombstones_stay_until_delete_retention_ms_after_the_first_pass_then_go() {
    let dir = tempfile::tempdir().unwrap();
    let (mut log, before) = overwritten_log(dir.path(), compacted());
    let first_pass = T0 + SEC;
    compact(&mut log, first_pass).unwrap();
    let tombstones = |log: &Log| {
        records(log)
            .into_iter()
            .filter(|r| r.3.is_none())
            .map(|r| r.2)
            .collect::<Vec<_>>()
    };
    assert_eq!(tombstones(&log), vec!["k3", "k7"]);
    // Still there just before the horizon (first pass + delete.retention.ms), even though a pass
    // runs: nothing is due, and a forced pass keeps them.
    assert!(compact(&mut log, first_pass + 10 * SEC - 1).is_none());
    assert_eq!(tombstones(&log), vec!["k3", "k7"]);
    // At the horizon a pass is due by itself and removes them; nothing else changes.
    let stats = compact(&mut log, first_pass + 10 * SEC).expect("tombstones due");
    assert!(!stats.aborted);
    assert!(tombstones(&log).is_empty());
    let mut expected = latest(&before);
    expected.retain(|_, (_, v)| v.is_some());
    assert_eq!(latest(&records(&log)), expected);
    assert!(compact(&mut log, first_pass + 20 * SEC).is_none());
    assert_every_offset_readable(&log);
}

#[test]
fn the_active_segment_is_never_touched() {
    let dir = tempfile::tempdir().unwrap();
    let (mut log, _) = overwritten_log(dir.path(), compacted());
    // Overwrite every key again in the active segment, without rolling.
    for k in 0..3 {
        put(&mut log, &format!("k{k}"), Some("new"), T0 + 200 + k);
    }
    let active = *log.segment_base_offsets().last().unwrap();
    let active_file = segment_path(dir.path(), active, ".log");
    let active_bytes = std::fs::read(&active_file).unwrap();
    compact(&mut log, T0 + SEC).unwrap();
    assert_eq!(std::fs::read(&active_file).unwrap(), active_bytes);
    assert_eq!(*log.segment_base_offsets().last().unwrap(), active);
    let after = records(&log);
    // The active segment's records are all there; older values of k0..k2 (superseded only by
    // the active segment) survive, since the map covers the cleanable part only.
    assert_eq!(
        after
            .iter()
            .filter(|r| r.3.as_deref() == Some("new"))
            .count(),
        3
    );
    assert_eq!(after.iter().filter(|r| r.2 == "k0").count(), 2);
}

#[test]
fn min_compaction_lag_ms_keeps_recent_segments_dirty() {
    let dir = tempfile::tempdir().unwrap();
    let config = LogConfig {
        min_compaction_lag_ms: 60 * SEC,
        ..compacted()
    };
    let mut log = Log::open(dir.path(), config, T0).unwrap();
    // Old records (T0), rolled; then new ones a minute later, rolled.
    for k in 0..20 {
        put(&mut log, &format!("k{}", k % 4), Some("old"), T0 + k);
    }
    log.roll().unwrap();
    let split = log.log_end_offset();
    for k in 0..20 {
        put(
            &mut log,
            &format!("k{}", k % 4),
            Some("new"),
            T0 + 60 * SEC + k,
        );
    }
    log.roll().unwrap();
    // Before the lag has passed for anything: nothing is cleanable.
    assert!(compact(&mut log, T0 + 30 * SEC).is_none());
    // The old part is past the lag, the new part is not.
    let stats = compact(&mut log, T0 + 90 * SEC).unwrap();
    assert!(stats.end_offset <= split);
    let recs = records(&log);
    assert_eq!(
        recs.iter()
            .filter(|r| r.3.as_deref() == Some("old"))
            .count(),
        4
    );
    assert_eq!(
        recs.iter()
            .filter(|r| r.3.as_deref() == Some("new"))
            .count(),
        20
    );
    // Later, everything is past the lag.
    compact(&mut log, T0 + 200 * SEC).unwrap();
    let recs = records(&log);
    assert_eq!(recs.len(), 4);
    assert!(recs.iter().all(|r| r.3.as_deref() == Some("new")));
}

#[test]
fn min_cleanable_dirty_ratio_and_max_compaction_lag_ms_decide_when_a_pass_runs() {
    let dir = tempfile::tempdir().unwrap();
    let config = LogConfig {
        min_cleanable_dirty_ratio: 0.5,
        max_compaction_lag_ms: 3600 * SEC,
        ..compacted()
    };
    let mut log = Log::open(dir.path(), config, T0).unwrap();
    for k in 0..40 {
        put(&mut log, &format!("k{k}"), Some("some value"), T0 + k);
    }
    log.roll().unwrap();
    compact(&mut log, T0 + SEC).expect("all dirty");
    // A little more dirt: below the ratio, no pass ...
    put(&mut log, "k1", Some("x"), T0 + 2 * SEC);
    log.roll().unwrap();
    assert!(compact(&mut log, T0 + 3 * SEC).is_none());
    // ... until the dirty part's first batch is older than max.compaction.lag.ms.
    let stats = compact(&mut log, T0 + 2 * SEC + 3601 * SEC).expect("max lag reached");
    assert!(!stats.aborted);
    assert_eq!(records(&log).iter().filter(|r| r.2 == "k1").count(), 1);
    // max.compaction.lag.ms also caps segment.ms for a compacted topic.
    assert_eq!(log.config().max_segment_ms(), 3600 * SEC);
}

#[test]
fn compressed_batches_are_filtered_and_recompressed_with_their_codec() {
    for (codec, xerial) in [
        (Compression::Gzip, false),
        (Compression::Snappy, false),
        (Compression::Snappy, true),
        (Compression::Lz4, false),
        (Compression::Zstd, false),
        (Compression::None, false),
    ] {
        let dir = tempfile::tempdir().unwrap();
        let config = LogConfig {
            segment_bytes: 1 << 20,
            ..compacted()
        };
        let mut log = Log::open(dir.path(), config, T0).unwrap();
        for round in 0..3i64 {
            let mut b = BatchBuilder::new(0).compression(codec).leader_epoch(0);
            b.xerial_snappy = xerial;
            for k in 0..8i64 {
                // Round 2 rewrites only the even keys: odd keys keep their round-1 records.
                if round == 2 && k % 2 == 1 {
                    continue;
                }
                let value = format!("value {round} {k} {}", "x".repeat(30));
                b = b.record_with_headers(
                    T0 + round * 100 + k,
                    Some(format!("key{k}").as_bytes()),
                    Some(value.as_bytes()),
                    &[("h", Some(b"hv")), ("n", None)],
                );
            }
            let mut bytes = b.build();
            log.append_as_leader(&mut bytes, 0, T0).unwrap();
        }
        log.roll().unwrap();
        let before = records(&log);
        compact(&mut log, T0 + SEC).unwrap();
        let after = records(&log);
        let last = latest(&before);
        let expected: Vec<Rec> = before
            .iter()
            .filter(|(o, _, k, _)| last[k].0 == *o)
            .cloned()
            .collect();
        assert_eq!(after, expected, "{codec:?}");
        for bytes in read_all(&log) {
            let batch = RecordBatch::from_prefix(&bytes).unwrap();
            assert_eq!(batch.compression(), Ok(codec), "{codec:?}");
            assert_eq!(batch.partition_leader_epoch(), 0);
            let payload = batch.records_payload().unwrap();
            for r in batch.records(&payload) {
                let r = r.unwrap();
                assert_eq!(r.headers.len(), 2);
                assert_eq!(r.headers[0].value, Some(&b"hv"[..]));
                assert_eq!(r.headers[1].value, None);
            }
            if codec == Compression::Snappy {
                assert_eq!(&batch.raw_records()[..8] == b"\x82SNAPPY\0", xerial);
            }
        }
        // Round 0 is gone; round 1 lost its even keys: 4 records, still spanning 8 offsets
        // (lastOffsetDelta kept); round 2 is untouched.
        let kept: Vec<_> = read_all(&log)
            .iter()
            .map(|b| RecordBatch::from_prefix(b).unwrap().header())
            .map(|h| (h.base_offset, h.records_count, h.last_offset_delta))
            .collect();
        assert_eq!(kept, vec![(8, 4, 7), (16, 4, 3)], "{codec:?}");
    }
}

#[test]
fn log_append_time_batches_keep_their_timestamps() {
    let dir = tempfile::tempdir().unwrap();
    let config = LogConfig {
        timestamp_type: TimestampType::LogAppendTime,
        ..compacted()
    };
    let mut log = Log::open(dir.path(), config, T0).unwrap();
    for i in 0..10 {
        let mut b = BatchBuilder::new(0)
            .record(1, Some(b"a"), Some(b"1"))
            .record(2, Some(format!("b{i}").as_bytes()), Some(b"2"))
            .build();
        log.append_as_leader(&mut b, 0, T0 + i).unwrap();
    }
    log.roll().unwrap();
    let before = records(&log);
    compact(&mut log, T0 + SEC).unwrap();
    let after = records(&log);
    assert_eq!(after.len(), 11);
    for r in &after {
        assert!(before.contains(r), "{r:?}");
    }
}

#[test]
fn an_idempotent_producers_last_batch_survives_as_an_empty_batch() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = Log::open(dir.path(), compacted(), T0).unwrap();
    let idempotent = |seq: i32| {
        let mut b = BatchBuilder::new(0);
        b.producer_id = 42;
        b.producer_epoch = 3;
        b.base_sequence = seq;
        b
    };
    put_with(&mut log, idempotent(0), "a", Some("1"), T0);
    let last = put_with(&mut log, idempotent(1), "b", Some("1"), T0 + 1);
    for i in 0..30 {
        put(
            &mut log,
            ["a", "b", "c"][i % 3],
            Some("2"),
            T0 + 10 + i as i64,
        );
    }
    log.roll().unwrap();
    compact(&mut log, T0 + SEC).unwrap();
    let all = read_all(&log);
    let producer_batches: Vec<_> = all
        .iter()
        .map(|b| RecordBatch::from_prefix(b).unwrap().header())
        .filter(|h| h.producer_id == 42)
        .collect();
    // The first batch of the producer went; its last one stays, empty, with its sequence.
    assert_eq!(producer_batches.len(), 1);
    let h = producer_batches[0];
    assert_eq!(
        (
            h.base_offset,
            h.records_count,
            h.producer_epoch,
            h.base_sequence
        ),
        (last, 0, 3, 1)
    );
    assert_eq!(h.base_timestamp, -1);
    assert_eq!(records(&log).len(), 3);
    assert_every_offset_readable(&log);
}

#[test]
fn aborted_transactions_are_removed_and_do_not_hide_committed_values() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = Log::open(dir.path(), compacted(), T0).unwrap();
    let txn = |pid: i64| {
        let mut b = BatchBuilder::new(0);
        b.producer_id = pid;
        b.producer_epoch = 0;
        b.base_sequence = 0;
        b.transactional = true;
        b
    };
    let marker = |log: &mut Log, pid: i64, commit: bool| {
        let mut b = txn(pid);
        b.control = true;
        let key = [0u8, 0, 0, commit as u8];
        let mut bytes = b.record(T0, Some(&key), Some(&[0, 0, 0, 0, 0, 0])).build();
        log.append_as_leader(&mut bytes, 0, T0).unwrap();
    };
    put(&mut log, "k", Some("committed"), T0);
    put_with(&mut log, txn(7), "k", Some("aborted"), T0 + 1);
    marker(&mut log, 7, false);
    put_with(&mut log, txn(8), "j", Some("in txn"), T0 + 2);
    marker(&mut log, 8, true);
    put_with(&mut log, txn(9), "j", Some("open"), T0 + 3);
    log.roll().unwrap();
    compact(&mut log, T0 + SEC).unwrap();
    let values: Vec<_> = read_all(&log)
        .iter()
        .map(|b| RecordBatch::from_prefix(b).unwrap())
        .filter(|b| !b.is_control())
        .flat_map(|b| {
            let payload = b.records_payload().unwrap().into_owned();
            b.records(&payload)
                .map(|r| String::from_utf8(r.unwrap().value.unwrap().to_vec()).unwrap())
                .collect::<Vec<_>>()
        })
        .collect();
    // The aborted value is gone and did not shadow the committed one; a transaction without a
    // marker yet is left alone.
    assert_eq!(values, vec!["committed", "in txn", "open"]);
    let controls = read_all(&log)
        .iter()
        .filter(|b| RecordBatch::from_prefix(b).unwrap().is_control())
        .count();
    assert_eq!(controls, 2, "markers are kept");
}

#[test]
fn a_pass_gives_up_when_retention_deletes_segments_meanwhile_and_appends_go_on() {
    let dir = tempfile::tempdir().unwrap();
    let (mut log, before) = overwritten_log(dir.path(), compacted());
    let cleaner = CleanerConfig::default();
    // Appends during the cleaning (the job needs no access to the log).
    let job = log
        .prepare_compaction(T0 + SEC, i64::MAX, &cleaner)
        .unwrap()
        .unwrap();
    assert!(
        log.prepare_compaction(T0 + SEC, i64::MAX, &cleaner)
            .unwrap()
            .is_none(),
        "one pass at a time"
    );
    let cleaned = job.clean().unwrap();
    let appended = put(&mut log, "k1", Some("during"), T0 + 500);
    let stats = log.finish_compaction(cleaned).unwrap();
    assert!(!stats.aborted);
    let recs = records(&log);
    assert_eq!(recs.last().unwrap().0, appended);
    assert_eq!(recs.len(), 11);

    // DeleteRecords between prepare and finish: the pass is discarded.
    let dir2 = tempfile::tempdir().unwrap();
    let (mut log, _) = overwritten_log(dir2.path(), compacted());
    let job = log
        .prepare_compaction(T0 + SEC, i64::MAX, &cleaner)
        .unwrap()
        .unwrap();
    let cleaned = job.clean().unwrap();
    let second = log.segment_base_offsets()[1];
    log.delete_records_before(second).unwrap();
    let stats = log.finish_compaction(cleaned).unwrap();
    assert!(stats.aborted);
    assert_eq!(
        records(&log),
        before
            .into_iter()
            .filter(|r| r.0 >= second)
            .collect::<Vec<_>>()
    );
    let leftovers: Vec<_> = std::fs::read_dir(dir2.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| n.ends_with(".cleaned") || n.ends_with(".swap"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
    // The next pass works.
    assert!(!compact(&mut log, T0 + 2 * SEC).unwrap().aborted);
}

#[test]
fn a_crash_at_any_step_of_the_swap_reopens_to_a_consistent_log() {
    let dir = tempfile::tempdir().unwrap();
    let (log, before) = overwritten_log(dir.path(), compacted());
    crash_at_every_step(dir.path(), log, before);
}

#[test]
fn a_crash_while_merging_cleaned_segments_reopens_to_a_consistent_log() {
    let dir = tempfile::tempdir().unwrap();
    let (mut log, _) = overwritten_log(dir.path(), compacted());
    compact(&mut log, T0 + SEC).unwrap();
    for k in 0..10 {
        put(&mut log, &format!("k{k}"), Some("again"), T0 + 300 + k);
    }
    log.roll().unwrap();
    let before = records(&log);
    crash_at_every_step(dir.path(), log, before);
}

/// Runs a pass, copying the directory after each step of the swap; every copy must reopen to a
/// consistent log.
fn crash_at_every_step(dir: &Path, mut log: Log, before: Vec<Rec>) {
    let expected_view = latest(&before);
    let job = log
        .prepare_compaction(T0 + 2 * SEC, i64::MAX, &CleanerConfig::default())
        .unwrap()
        .unwrap();
    let cleaned = job.clean().unwrap();
    let snapshots = tempfile::tempdir().unwrap();
    let mut steps = Vec::new();
    log.finish_compaction_with_hook(cleaned, &mut |step| {
        let to = snapshots.path().join(steps.len().to_string());
        copy_dir(dir, &to);
        steps.push((step.to_string(), to));
    })
    .unwrap();
    let after = records(&log);
    assert!(steps.len() >= 8, "{steps:?}");
    let mut saw_before = false;
    let mut saw_after = false;
    for (step, path) in &steps {
        let log = Log::open(path, compacted(), T0).unwrap_or_else(|e| panic!("{step}: {e}"));
        let recs = records(&log);
        saw_before |= recs == before;
        saw_after |= recs == after;
        // Each group is either still the old segments or already the cleaned one: nothing the
        // pass keeps is lost, nothing appears that was not there, and the order is the same.
        let mut old = before.iter();
        assert!(
            recs.iter().all(|r| old.any(|b| b == r)),
            "after a crash at {step}: {recs:?}"
        );
        let mut now = recs.iter();
        assert!(after.iter().all(|r| now.any(|b| b == r)), "{step}");
        assert_eq!(latest(&recs), expected_view, "{step}");
        assert_eq!(log.log_end_offset(), before.last().unwrap().0 + 1, "{step}");
        assert_every_offset_readable(&log);
        let names: Vec<_> = std::fs::read_dir(path)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .filter(|n| n.ends_with(".cleaned") || n.ends_with(".swap"))
            .collect();
        assert!(names.is_empty(), "{step}: {names:?}");
        // And the reopened log compacts to the same result.
        let mut log = log;
        compact(&mut log, T0 + 2 * SEC);
        assert_eq!(records(&log), after, "{step}");
    }
    assert!(saw_before && saw_after);
}

#[test]
fn a_follower_replicates_a_compacted_log_with_its_gaps() {
    let dir = tempfile::tempdir().unwrap();
    let (mut leader, _) = overwritten_log(dir.path(), compacted());
    compact(&mut leader, T0 + SEC).unwrap();
    let fdir = tempfile::tempdir().unwrap();
    let mut follower = Log::open(fdir.path(), compacted(), T0).unwrap();
    for bytes in read_all(&leader) {
        follower.append_as_follower(&bytes, T0).unwrap();
    }
    assert_eq!(records(&follower), records(&leader));
    assert_eq!(follower.log_end_offset(), leader.log_end_offset());
}
