use oxka_log::test_support::simple_batch;
use oxka_log::{EpochEntry, LogConfig, LEADER_EPOCH_CHECKPOINT_FILE};

use crate::support::*;

fn append_in_epoch(log: &mut oxka_log::Log, count: usize, epoch: i32) {
    let mut b = simple_batch(0, count, T0, 4);
    log.append_as_leader(&mut b, epoch, T0).unwrap();
}

fn entry(epoch: i32, start_offset: i64) -> EpochEntry {
    EpochEntry {
        epoch,
        start_offset,
    }
}

#[test]
fn leader_epoch_cache_records_epoch_starts_and_answers_end_offsets() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = open(dir.path(), LogConfig::default());
    assert_eq!(log.latest_epoch(), None);
    assert_eq!(log.end_offset_for_epoch(0), None);
    append_in_epoch(&mut log, 3, 0); // 0..=2
    append_in_epoch(&mut log, 2, 0); // 3..=4
    append_in_epoch(&mut log, 2, 2); // 5..=6
    append_in_epoch(&mut log, 2, 5); // 7..=8
                                     // An older epoch never goes back into the cache.
    append_in_epoch(&mut log, 1, 3); // 9
    assert_eq!(log.latest_epoch(), Some(5));
    assert_eq!(
        log.epoch_entries(),
        &[entry(0, 0), entry(2, 5), entry(5, 7)]
    );
    assert_eq!(
        log.end_offset_for_epoch(5),
        Some((5, 10)),
        "latest: the log end offset"
    );
    assert_eq!(log.end_offset_for_epoch(4), Some((2, 7)));
    assert_eq!(log.end_offset_for_epoch(2), Some((2, 7)));
    assert_eq!(log.end_offset_for_epoch(1), Some((0, 5)));
    assert_eq!(log.end_offset_for_epoch(0), Some((0, 5)));
    assert_eq!(log.end_offset_for_epoch(6), None, "unknown newer epoch");
    assert_eq!(log.end_offset_for_epoch(-1), None);

    let text = std::fs::read_to_string(dir.path().join(LEADER_EPOCH_CHECKPOINT_FILE)).unwrap();
    assert_eq!(text, "0\n3\n0 0\n2 5\n5 7\n");
}

#[test]
fn leader_epoch_cache_survives_reopen_and_follows_truncation() {
    let dir = tempfile::tempdir().unwrap();
    let config = LogConfig {
        segment_bytes: 300,
        ..LogConfig::default()
    };
    let mut log = open(dir.path(), config.clone());
    for epoch in [1, 1, 3, 3, 4, 4, 7] {
        append_in_epoch(&mut log, 2, epoch);
    }
    let entries = [entry(1, 0), entry(3, 4), entry(4, 8), entry(7, 12)];
    assert_eq!(log.epoch_entries(), &entries[..]);
    drop(log);
    let mut log = open(dir.path(), config.clone());
    assert_eq!(log.epoch_entries(), &entries[..]);

    // Truncation removes epochs starting at or after the new end.
    log.truncate_to(8).unwrap();
    assert_eq!(log.epoch_entries(), &entries[..2]);
    assert_eq!(log.end_offset_for_epoch(3), Some((3, 8)));
    // The new leader's epoch starts at the new end.
    append_in_epoch(&mut log, 1, 8);
    assert_eq!(log.epoch_entries().last(), Some(&entry(8, 8)));

    // Advancing the log start offset moves the first epoch's start up.
    log.delete_records_before(5).unwrap();
    assert_eq!(log.epoch_entries(), &[entry(3, 5), entry(8, 8)]);
    log.close().unwrap();
    let log = open(dir.path(), config);
    assert_eq!(log.epoch_entries(), &[entry(3, 5), entry(8, 8)]);
}

#[test]
fn recovery_drops_epochs_beyond_the_recovered_end() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = open(dir.path(), LogConfig::default());
    append_in_epoch(&mut log, 2, 0);
    append_in_epoch(&mut log, 2, 1);
    drop(log);
    // Tear the last batch (epoch 1).
    let path = segment_path(dir.path(), 0, ".log");
    let len = std::fs::metadata(&path).unwrap().len();
    let f = std::fs::OpenOptions::new().write(true).open(&path).unwrap();
    f.set_len(len - 3).unwrap();
    let log = open(dir.path(), LogConfig::default());
    assert_eq!(log.log_end_offset(), 2);
    assert_eq!(log.epoch_entries(), &[entry(0, 0)]);
}

#[test]
fn epoch_assigned_at_becoming_leader_survives_reopen_and_first_append_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let checkpoint = dir.path().join(LEADER_EPOCH_CHECKPOINT_FILE);
    let mut log = open(dir.path(), LogConfig::default());
    log.assign_leader_epoch(3).unwrap();
    assert_eq!(log.epoch_entries(), &[entry(3, 0)]);
    // Assigning the same or an older epoch changes nothing.
    log.assign_leader_epoch(3).unwrap();
    log.assign_leader_epoch(1).unwrap();
    assert_eq!(log.epoch_entries(), &[entry(3, 0)]);
    drop(log);
    // An entry starting at the log end of an empty log is kept across a reopen.
    let mut log = open(dir.path(), LogConfig::default());
    assert_eq!(log.epoch_entries(), &[entry(3, 0)]);
    let written = std::fs::metadata(&checkpoint).unwrap().modified().unwrap();
    append_in_epoch(&mut log, 2, 3);
    assert_eq!(
        std::fs::metadata(&checkpoint).unwrap().modified().unwrap(),
        written,
        "the first append in the assigned epoch does not rewrite the checkpoint"
    );
    assert_eq!(log.end_offset_for_epoch(3), Some((3, 2)));
    // A later epoch starts at the log end at that time.
    log.assign_leader_epoch(4).unwrap();
    assert_eq!(log.epoch_entries(), &[entry(3, 0), entry(4, 2)]);
    drop(log);
    let log = open(dir.path(), LogConfig::default());
    assert_eq!(log.epoch_entries(), &[entry(3, 0), entry(4, 2)]);
}
