//! A seeded random walk over the public API against a simple model of the log.

use oxka_log::batch::batches;
use oxka_log::test_support::BatchBuilder;
use oxka_log::{Compression, Log, LogConfig, RecordBatch};

use crate::support::*;

/// What the log should hold: every batch (with its assigned offsets) and the log start offset.
struct Model {
    batches: Vec<Vec<u8>>,
    log_start_offset: i64,
}

impl Model {
    fn log_end_offset(&self, fallback: i64) -> i64 {
        self.batches.last().map_or(fallback, |b| {
            RecordBatch::from_prefix(b).unwrap().next_offset()
        })
    }

    fn index_of_containing(&self, offset: i64) -> Option<usize> {
        self.batches
            .iter()
            .position(|b| RecordBatch::from_prefix(b).unwrap().last_offset() >= offset)
    }

    fn records(&self) -> Vec<(i64, i64)> {
        self.batches
            .iter()
            .flat_map(|b| {
                RecordBatch::from_prefix(b)
                    .unwrap()
                    .record_timestamps()
                    .unwrap()
            })
            .filter(|(o, _)| *o >= self.log_start_offset)
            .collect()
    }
}

fn check(log: &Log, model: &Model, rng: &mut Rng) {
    assert_eq!(log.log_start_offset(), model.log_start_offset);
    let leo = log.log_end_offset();
    assert_eq!(leo, model.log_end_offset(leo));
    for _ in 0..10 {
        if leo == model.log_start_offset {
            break;
        }
        let offset = rng.range(model.log_start_offset as u64, leo as u64) as i64;
        let r = log.read(offset, 1 << 20, i64::MAX, true).unwrap();
        let i = model.index_of_containing(offset).unwrap();
        // The read is a run of consecutive model batches starting with the containing one.
        let mut expected = Vec::new();
        for (n, b) in batches(&r.records).enumerate() {
            assert_eq!(b.as_bytes(), &model.batches[i + n][..], "read at {offset}");
            expected.push(n);
        }
        assert!(!expected.is_empty());
    }
    let records = model.records();
    for _ in 0..5 {
        let target = T0 + rng.range(0, 3_000) as i64 - 100;
        let want = records.iter().copied().find(|&(_, ts)| ts >= target);
        assert_eq!(
            log.offset_for_timestamp(target).unwrap(),
            want,
            "ts {target}"
        );
    }
}

#[test]
fn random_operations_agree_with_a_model() {
    let dir = tempfile::tempdir().unwrap();
    let config = LogConfig {
        segment_bytes: 2_000,
        index_interval_bytes: 100,
        segment_index_bytes: 160,
        ..LogConfig::default()
    };
    let mut rng = Rng::new(0x5eed);
    let mut log = open(dir.path(), config.clone());
    let mut model = Model {
        batches: Vec::new(),
        log_start_offset: 0,
    };
    let mut clock = T0;
    let codecs = [
        Compression::None,
        Compression::Gzip,
        Compression::Snappy,
        Compression::Lz4,
        Compression::Zstd,
    ];
    for step in 0..600 {
        clock += rng.range(0, 5) as i64;
        match rng.range(0, 100) {
            0..=69 => {
                let mut b = BatchBuilder::new(0).compression(codecs[rng.range(0, 5) as usize]);
                for _ in 0..rng.range(1, 6) {
                    let len = rng.range(0, 80) as usize;
                    b = b.record(clock - rng.range(0, 20) as i64, None, Some(&vec![7; len]));
                }
                let mut bytes = b.build();
                log.append_as_leader(&mut bytes, step / 100, clock).unwrap();
                model.batches.push(bytes);
            }
            70..=76 => {
                // Truncate to a random batch boundary.
                if let Some(i) = (!model.batches.is_empty())
                    .then(|| rng.range(0, model.batches.len() as u64) as usize)
                {
                    let base = RecordBatch::from_prefix(&model.batches[i])
                        .unwrap()
                        .base_offset();
                    if base >= model.log_start_offset {
                        log.truncate_to(base).unwrap();
                        model.batches.truncate(i);
                    }
                }
            }
            77..=81 => {
                let leo = log.log_end_offset();
                let target = rng.range(model.log_start_offset as u64, leo as u64 + 1) as i64;
                assert_eq!(
                    log.delete_records_before(target).unwrap(),
                    target.max(model.log_start_offset)
                );
                model.log_start_offset = model.log_start_offset.max(target);
            }
            82..=86 => {
                let leo = log.log_end_offset();
                log.close().unwrap();
                log = open(dir.path(), config.clone());
                assert_eq!(log.log_end_offset(), leo);
            }
            87..=89 => {
                // Crash: no close.
                drop(log);
                log = open(dir.path(), config.clone());
            }
            90..=94 => {
                log.roll().unwrap();
            }
            _ => {
                log.flush().unwrap();
            }
        }
        // Segments wholly below the log start offset may have been deleted: drop them from the
        // model's view of what is readable by keeping batches that reach the start offset.
        let start = model.log_start_offset;
        model
            .batches
            .retain(|b| RecordBatch::from_prefix(b).unwrap().last_offset() >= start);
        check(&log, &model, &mut rng);
    }
    assert_every_offset_readable(&log);
}
