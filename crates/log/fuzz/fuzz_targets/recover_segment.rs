//! Input: the contents of the active segment's `.log` file after a crash. Opens (recovers) the
//! log, reads every offset and appends once. Recovery must never panic, must keep only whole
//! valid batches, and must leave a log that accepts appends.
#![no_main]

use libfuzzer_sys::fuzz_target;
use oxka_log::test_support::simple_batch;
use oxka_log::{Log, LogConfig};

fuzz_target!(|data: &[u8]| {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("00000000000000000000.log"), data).unwrap();
    let config = LogConfig {
        index_interval_bytes: 64,
        segment_index_bytes: 1024,
        ..LogConfig::default()
    };
    let Ok(mut log) = Log::open(dir.path(), config, 0) else {
        return;
    };
    let leo = log.log_end_offset();
    let mut offset = log.log_start_offset();
    while offset < leo {
        let r = log.read(offset, 1 << 20, i64::MAX, true).unwrap();
        let next = oxka_log::batch::batches(&r.records).last().unwrap().next_offset();
        assert!(next > offset);
        offset = next;
    }
    let mut b = simple_batch(0, 1, 0, 1);
    if let Ok(info) = log.append_as_leader(&mut b, 0, 0) {
        assert_eq!(info.first_offset, leo);
    }
});
