use std::fs::{self, OpenOptions};
use std::io::Write;

use oxka_log::test_support::BatchBuilder;
use oxka_log::{Compression, LogConfig};

use crate::support::*;

fn config() -> LogConfig {
    LogConfig {
        segment_bytes: 1_000,
        index_interval_bytes: 60,
        ..LogConfig::default()
    }
}

/// A closed log with a few segments; returns the batches and the byte range of the last batch in
/// the active segment.
fn build_template(dir: &std::path::Path) -> (Vec<Vec<u8>>, i64, u64, u64) {
    let mut log = open(dir, config());
    let mut i = 0i64;
    let mut last_first_offset = 0;
    // At least 12 batches, and at least two in the active segment.
    while i < 12 || last_first_offset == *log.segment_base_offsets().last().unwrap() {
        let mut b = BatchBuilder::new(0).compression(if i % 3 == 0 {
            Compression::Gzip
        } else {
            Compression::None
        });
        for r in 0..(1 + i % 3) {
            b = b.record_with_headers(
                T0 + i * 10 + r,
                Some(b"key"),
                Some(&[i as u8; 40]),
                &[("h", Some(b"v"))],
            );
        }
        let mut bytes = b.build();
        last_first_offset = log
            .append_as_leader(&mut bytes, 0, T0)
            .unwrap()
            .first_offset;
        i += 1;
    }
    let all = read_all(&log);
    let active_base = *log.segment_base_offsets().last().unwrap();
    let active_len = log.size_bytes()
        - log.segment_base_offsets()[..log.num_segments() - 1]
            .iter()
            .map(|b| fs::metadata(segment_path(dir, *b, ".log")).unwrap().len())
            .sum::<u64>();
    let last_len = all.last().unwrap().len() as u64;
    assert!(
        active_len > last_len,
        "active segment must hold more than one batch"
    );
    log.close().unwrap();
    (all, active_base, active_len - last_len, active_len)
}

fn assert_recovered_and_usable(dir: &std::path::Path, expected: &[Vec<u8>]) {
    let mut log = open(dir, config());
    let leo = oxka_log::RecordBatch::from_prefix(expected.last().unwrap())
        .unwrap()
        .next_offset();
    assert_eq!(log.log_end_offset(), leo);
    assert_eq!(read_all(&log), expected);
    assert_every_offset_readable(&log);
    let info = append(&mut log, 2, T0);
    assert_eq!(info.first_offset, leo);
    assert_every_offset_readable(&log);
    assert_eq!(log.offset_for_timestamp(T0).unwrap(), Some((0, T0)));
}

#[test]
fn recovery_after_truncating_the_active_segment_at_every_byte_of_its_last_batch() {
    let template = tempfile::tempdir().unwrap();
    let (all, active_base, last_start, active_len) = build_template(template.path());
    let expected = &all[..all.len() - 1];
    for cut in last_start..active_len {
        let dir = tempfile::tempdir().unwrap();
        copy_dir(template.path(), dir.path());
        let f = OpenOptions::new()
            .write(true)
            .open(segment_path(dir.path(), active_base, ".log"))
            .unwrap();
        f.set_len(cut).unwrap();
        drop(f);
        assert_recovered_and_usable(dir.path(), expected);
    }
    // And the untouched copy keeps everything.
    let dir = tempfile::tempdir().unwrap();
    copy_dir(template.path(), dir.path());
    assert_recovered_and_usable(dir.path(), &all);
}

#[test]
fn recovery_drops_garbage_after_the_last_batch() {
    let template = tempfile::tempdir().unwrap();
    let (all, active_base, _, _) = build_template(template.path());
    let mut rng = Rng::new(99);
    let random: Vec<u8> = (0..300).map(|_| rng.next_u64() as u8).collect();
    // A plausible header claiming a huge batch.
    let mut huge = vec![0u8; 61];
    huge[8..12].copy_from_slice(&i32::MAX.to_be_bytes());
    huge[16] = 2;
    for garbage in [vec![0u8; 4096], random, huge, vec![0xff; 7]] {
        let dir = tempfile::tempdir().unwrap();
        copy_dir(template.path(), dir.path());
        let mut f = OpenOptions::new()
            .append(true)
            .open(segment_path(dir.path(), active_base, ".log"))
            .unwrap();
        f.write_all(&garbage).unwrap();
        drop(f);
        assert_recovered_and_usable(dir.path(), &all);
    }
}

#[test]
fn recovery_truncates_at_a_batch_with_a_bad_crc() {
    let template = tempfile::tempdir().unwrap();
    let (all, active_base, last_start, active_len) = build_template(template.path());
    for flip_at in [last_start + 21, last_start + 40, active_len - 1] {
        let dir = tempfile::tempdir().unwrap();
        copy_dir(template.path(), dir.path());
        let path = segment_path(dir.path(), active_base, ".log");
        let mut data = fs::read(&path).unwrap();
        data[flip_at as usize] ^= 0x55;
        fs::write(&path, &data).unwrap();
        assert_recovered_and_usable(dir.path(), &all[..all.len() - 1]);
    }
}

#[test]
fn missing_or_garbage_indexes_are_rebuilt() {
    let template = tempfile::tempdir().unwrap();
    let (all, _, _, _) = build_template(template.path());
    let log = open(template.path(), config());
    let bases = log.segment_base_offsets();
    let ts_expectations: Vec<_> = (0..130)
        .map(|t| log.offset_for_timestamp(T0 + t).unwrap())
        .collect();
    log.close().unwrap();
    assert!(bases.len() >= 3);

    let dir = tempfile::tempdir().unwrap();
    copy_dir(template.path(), dir.path());
    fs::remove_file(segment_path(dir.path(), bases[0], ".index")).unwrap();
    fs::remove_file(segment_path(dir.path(), bases[0], ".timeindex")).unwrap();
    fs::write(segment_path(dir.path(), bases[1], ".index"), [0xAB; 24]).unwrap();
    fs::write(segment_path(dir.path(), bases[1], ".timeindex"), [7; 13]).unwrap();
    fs::write(segment_path(dir.path(), bases[2], ".index"), [0; 80]).unwrap();
    let log = open(dir.path(), config());
    assert_eq!(read_all(&log), all);
    assert_every_offset_readable(&log);
    let got: Vec<_> = (0..130)
        .map(|t| log.offset_for_timestamp(T0 + t).unwrap())
        .collect();
    assert_eq!(got, ts_expectations);
    log.close().unwrap();
    for base in &bases[..bases.len() - 1] {
        let len = fs::metadata(segment_path(dir.path(), *base, ".index"))
            .unwrap()
            .len();
        assert_eq!(len % 8, 0);
        assert!(len < 80, "rebuilt index trimmed");
    }
}

#[test]
fn unclean_shutdown_with_preallocated_indexes_recovers() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = open(dir.path(), config());
    for i in 0..30 {
        append(&mut log, 2, T0 + i);
    }
    let all = read_all(&log);
    drop(log); // no close: the active segment's index files stay preallocated
    let log = open(dir.path(), config());
    assert_eq!(read_all(&log), all);
    assert_every_offset_readable(&log);
}

#[test]
fn leftover_and_orphan_files_are_removed() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = open(dir.path(), config());
    append(&mut log, 2, T0);
    log.close().unwrap();
    let junk = [
        "00000000000000000000.log.deleted",
        "00000000000000000000.index.swap",
        "00000000000000000000.log.cleaned",
        "00000000000000000500.index",
        "00000000000000000500.timeindex",
    ];
    for name in junk {
        fs::write(dir.path().join(name), b"junk").unwrap();
    }
    let log = open(dir.path(), config());
    assert_eq!(log.log_end_offset(), 2);
    assert_eq!(log.num_segments(), 1);
    for name in junk {
        assert!(!dir.path().join(name).exists(), "{name} removed");
    }
}

#[test]
fn recovery_truncates_at_the_first_corrupt_batch_of_the_active_segment() {
    let template = tempfile::tempdir().unwrap();
    let (all, active_base, _, _) = build_template(template.path());
    let active = fs::read(segment_path(template.path(), active_base, ".log")).unwrap();
    let mut positions = Vec::new();
    let mut it = oxka_log::batch::batches(&active);
    loop {
        let start = it.position();
        match it.next() {
            Some(b) => positions.push((start, b.base_offset())),
            None => break,
        }
    }
    assert!(positions.len() >= 2);
    for (start, base) in positions {
        let dir = tempfile::tempdir().unwrap();
        copy_dir(template.path(), dir.path());
        let path = segment_path(dir.path(), active_base, ".log");
        let mut data = active.clone();
        data[start + 30] ^= 0xff;
        fs::write(&path, &data).unwrap();
        let kept: Vec<Vec<u8>> = all
            .iter()
            .filter(|b| oxka_log::RecordBatch::from_prefix(b).unwrap().base_offset() < base)
            .cloned()
            .collect();
        let log = open(dir.path(), config());
        assert_eq!(log.log_end_offset(), base);
        assert_eq!(read_all(&log), kept);
        assert_eq!(
            fs::metadata(&path).unwrap().len(),
            start as u64,
            "file truncated at the corrupt batch"
        );
    }
}

#[test]
fn unflushed_older_segments_are_rescanned_and_cut_at_corruption() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = open(dir.path(), config());
    for i in 0..10 {
        append(&mut log, 2, T0 + i);
    }
    log.flush().unwrap();
    let flushed = log.log_end_offset();
    let rp = fs::read_to_string(dir.path().join(oxka_log::RECOVERY_POINT_FILE)).unwrap();
    assert_eq!(rp, format!("0\n1\n{flushed}\n"));
    for i in 0..30 {
        append(&mut log, 2, T0 + 10 + i);
    }
    let all = read_all(&log);
    let bases = log.segment_base_offsets();
    drop(log); // crash: nothing flushed after `flushed`

    // Corrupt the second batch of the first segment that starts at or above the recovery point,
    // which is not the active segment.
    let victim = *bases.iter().find(|b| **b >= flushed).unwrap();
    assert_ne!(Some(&victim), bases.last());
    let path = segment_path(dir.path(), victim, ".log");
    let mut data = fs::read(&path).unwrap();
    let first_len = oxka_log::RecordBatch::from_prefix(&data)
        .unwrap()
        .size_in_bytes();
    data[first_len + 40] ^= 0x01;
    fs::write(&path, &data).unwrap();

    let mut log = open(dir.path(), config());
    let cut = victim + 2;
    assert_eq!(log.log_end_offset(), cut);
    assert_eq!(*log.segment_base_offsets().last().unwrap(), victim);
    for later in bases.iter().filter(|b| **b > victim) {
        assert!(!segment_path(dir.path(), *later, ".log").exists());
    }
    assert_eq!(read_all(&log), all[..(cut / 2) as usize].to_vec());
    assert_every_offset_readable(&log);
    assert_eq!(append(&mut log, 1, T0).first_offset, cut);
    assert_every_offset_readable(&log);
}
