use oxka_log::LogConfig;

use crate::support::*;

fn config() -> LogConfig {
    LogConfig {
        segment_bytes: 500,
        index_interval_bytes: 50,
        ..LogConfig::default()
    }
}

#[test]
fn truncate_to_a_batch_boundary_in_the_active_segment() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = open(dir.path(), LogConfig::default());
    for i in 0..10 {
        append(&mut log, 2, T0 + i);
    }
    let before = read_all(&log);
    log.truncate_to(12).unwrap();
    assert_eq!(log.log_end_offset(), 12);
    assert_eq!(read_all(&log), before[..6].to_vec());
    assert_every_offset_readable(&log);
    assert_eq!(
        log.offset_for_timestamp(T0 + 6).unwrap(),
        Some((11, T0 + 6))
    );
    assert_eq!(log.offset_for_timestamp(T0 + 7).unwrap(), None);
    assert_eq!(log.max_timestamp_offset().unwrap(), Some((11, T0 + 6)));
    // Appends continue from there.
    assert_eq!(append(&mut log, 1, T0).first_offset, 12);
    // Truncating at or beyond the end is a no-op.
    log.truncate_to(100).unwrap();
    assert_eq!(log.log_end_offset(), 13);
}

#[test]
fn truncate_to_inside_a_batch_removes_the_whole_batch() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = open(dir.path(), LogConfig::default());
    append(&mut log, 3, T0);
    append(&mut log, 3, T0);
    log.truncate_to(4).unwrap();
    assert_eq!(log.log_end_offset(), 3);
    assert_eq!(read_all(&log).len(), 1);
}

#[test]
fn truncate_to_across_segments() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = open(dir.path(), config());
    for i in 0..40 {
        append(&mut log, 2, T0 + i);
    }
    let before = read_all(&log);
    let bases = log.segment_base_offsets();
    assert!(bases.len() > 4);
    // Inside the second segment.
    let target = bases[1] + 2;
    log.truncate_to(target).unwrap();
    assert_eq!(log.log_end_offset(), target);
    assert_eq!(log.num_segments(), 2);
    assert_eq!(read_all(&log), before[..(target / 2) as usize].to_vec());
    assert_every_offset_readable(&log);
    // The truncated segment is active again: appends, rolls and reopen work.
    for i in 0..20 {
        append(&mut log, 2, T0 + 100 + i);
    }
    assert!(log.num_segments() > 2);
    assert_every_offset_readable(&log);
    let leo = log.log_end_offset();
    let all = read_all(&log);
    log.close().unwrap();
    let log = open(dir.path(), config());
    assert_eq!(log.log_end_offset(), leo);
    assert_eq!(read_all(&log), all);
    assert_every_offset_readable(&log);
}

#[test]
fn truncate_to_a_segment_base_offset_leaves_it_empty_and_active() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = open(dir.path(), config());
    for _ in 0..20 {
        append(&mut log, 2, T0);
    }
    let bases = log.segment_base_offsets();
    log.truncate_to(bases[2]).unwrap();
    assert_eq!(log.segment_base_offsets(), bases[..3].to_vec());
    assert_eq!(log.log_end_offset(), bases[2]);
    assert_eq!(append(&mut log, 1, T0).first_offset, bases[2]);
    assert_every_offset_readable(&log);
}

#[test]
fn truncate_below_the_log_start_offset() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = open(dir.path(), config());
    for _ in 0..20 {
        append(&mut log, 2, T0);
    }
    log.delete_records_before(15).unwrap();
    let first_base = log.segment_base_offsets()[0];
    log.truncate_to(first_base).unwrap();
    assert_eq!(log.log_end_offset(), first_base);
    assert_eq!(log.log_start_offset(), first_base);
    log.truncate_to(3).unwrap();
    assert_eq!(log.log_end_offset(), 3);
    assert_eq!(log.log_start_offset(), 3);
    assert_eq!(log.num_segments(), 1);
    assert_eq!(append(&mut log, 1, T0).first_offset, 3);
}

#[test]
fn truncate_fully_and_start_at_restarts_empty() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = open(dir.path(), config());
    for _ in 0..20 {
        append(&mut log, 2, T0);
    }
    log.truncate_fully_and_start_at(1000).unwrap();
    assert_eq!(log.num_segments(), 1);
    assert_eq!(log.segment_base_offsets(), vec![1000]);
    assert_eq!((log.log_start_offset(), log.log_end_offset()), (1000, 1000));
    assert_eq!(log.size_bytes(), 0);
    assert_eq!(log.latest_epoch(), None);
    assert_eq!(append(&mut log, 2, T0).first_offset, 1000);
    log.close().unwrap();
    let log = open(dir.path(), config());
    assert_eq!((log.log_start_offset(), log.log_end_offset()), (1000, 1002));
    let files: Vec<String> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| n.ends_with(".log"))
        .collect();
    assert_eq!(files, vec!["00000000000000001000.log".to_string()]);
}

#[test]
fn aborted_transactions_live_in_their_segments_txnindex() {
    use oxka_log::AbortedTxnEntry;
    let dir = tempfile::tempdir().unwrap();
    let mut log = open(dir.path(), config());
    let aborted = |pid: i64, first: i64, last: i64| AbortedTxnEntry {
        producer_id: pid,
        first_offset: first,
        last_offset: last,
        last_stable_offset: first,
    };
    append(&mut log, 2, T0);
    let first = aborted(1, 0, log.log_end_offset() - 1);
    log.append_aborted_txn(&first).unwrap();
    // Fill segments until the log has rolled twice, then abort another in the newest.
    for i in 0..40 {
        append(&mut log, 2, T0 + i);
    }
    assert!(log.num_segments() >= 3, "{}", log.num_segments());
    let second = aborted(2, 10, log.log_end_offset() - 1);
    log.append_aborted_txn(&second).unwrap();
    let txnindex = |base: i64| dir.path().join(format!("{base:020}.txnindex"));
    assert!(txnindex(0).exists());
    let active = *log.segment_base_offsets().last().unwrap();
    assert!(txnindex(active).exists());
    assert_eq!(log.aborted_txns().unwrap(), vec![first, second]);
    // They survive a reopen.
    log.close().unwrap();
    let mut log = open(dir.path(), config());
    assert_eq!(log.aborted_txns().unwrap(), vec![first, second]);
    // Truncating below a marker forgets that abort.
    log.truncate_to(second.last_offset).unwrap();
    assert_eq!(log.aborted_txns().unwrap(), vec![first]);
    // Retention deleting the first segment deletes its index with it.
    log.delete_records_before(log.log_end_offset()).unwrap();
    log.enforce_retention(T0 + 1_000_000).unwrap();
    assert!(!txnindex(0).exists());
    assert!(log.aborted_txns().unwrap().is_empty());
}

#[test]
fn rolled_segments_are_flushed_without_the_log_and_the_recovery_point_follows() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = open(dir.path(), config());
    assert!(log.rolled_unflushed().is_none());
    for i in 0..30 {
        append(&mut log, 2, T0 + i);
    }
    assert!(log.num_segments() >= 3);
    let pending = log
        .rolled_unflushed()
        .expect("rolled segments are unflushed");
    let active = *log.segment_base_offsets().last().unwrap();
    assert_eq!(pending.up_to, active);
    assert_eq!(pending.files.len(), 3 * (log.num_segments() - 1));
    // Appends go on while the files are synced.
    append(&mut log, 1, T0);
    pending.sync().unwrap();
    log.mark_rolled_flushed(&pending).unwrap();
    assert!(log.rolled_unflushed().is_none());
    let rp = std::fs::read_to_string(dir.path().join(oxka_log::RECOVERY_POINT_FILE)).unwrap();
    assert!(rp.lines().any(|l| l.trim() == active.to_string()), "{rp}");
    // A layout change in between (here: a truncation) makes the marking a no-op.
    for i in 0..30 {
        append(&mut log, 2, T0 + i);
    }
    let pending = log.rolled_unflushed().unwrap();
    log.truncate_to(active + 1).unwrap();
    pending.sync().unwrap();
    log.mark_rolled_flushed(&pending).unwrap();
}
