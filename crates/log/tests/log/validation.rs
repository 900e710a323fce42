use oxka_log::batch::{batches, RecordBatchMut};
use oxka_log::test_support::{simple_batch, BatchBuilder};
use oxka_log::{validate_batches, BatchError, Compression, RecordBatch};

use crate::support::T0;

const MAX: u32 = 1 << 20;

#[test]
fn a_valid_buffer_is_summarised() {
    let mut buf = simple_batch(0, 3, T0, 5);
    let mut second = BatchBuilder::new(3)
        .compression(Compression::Snappy)
        .record(T0 + 100, None, Some(b"x"))
        .record(T0 + 50, None, None)
        .build();
    buf.append(&mut second);
    let s = validate_batches(&buf, MAX).unwrap();
    assert_eq!(s.num_batches, 2);
    assert_eq!(s.num_records, 5);
    assert_eq!(s.offset_count, 5);
    assert_eq!((s.first_offset, s.last_offset), (0, 4));
    assert_eq!((s.max_timestamp, s.offset_of_max_timestamp), (T0 + 100, 4));
    assert_eq!(s.size_bytes, buf.len());
}

#[test]
fn crc_mismatch_is_corrupt() {
    let mut buf = simple_batch(0, 2, T0, 5);
    let at = buf.len() - 2;
    buf[at] ^= 0x01;
    assert!(matches!(
        validate_batches(&buf, MAX),
        Err(BatchError::CorruptMessage { position: 0, .. })
    ));
    // baseOffset and partitionLeaderEpoch are outside the CRC.
    let mut buf = simple_batch(0, 2, T0, 5);
    buf[3] = 9;
    buf[14] = 9;
    assert!(validate_batches(&buf, MAX).is_ok());
}

#[test]
fn magic_other_than_2_is_unsupported() {
    let mut buf = simple_batch(0, 1, T0, 5);
    let mut second = simple_batch(1, 1, T0, 5);
    second[16] = 1;
    let pos = buf.len();
    buf.append(&mut second);
    assert_eq!(
        validate_batches(&buf, MAX),
        Err(BatchError::UnsupportedMagic {
            position: pos,
            magic: 1
        })
    );
}

#[test]
fn oversize_batch_is_message_too_large() {
    let buf = simple_batch(0, 10, T0, 100);
    let size = buf.len();
    assert_eq!(
        validate_batches(&buf, size as u32 - 1),
        Err(BatchError::MessageTooLarge {
            position: 0,
            size,
            max_message_bytes: size as u32 - 1
        })
    );
    assert!(validate_batches(&buf, size as u32).is_ok());
}

#[test]
fn every_truncation_is_corrupt_and_empty_is_invalid() {
    assert!(matches!(
        validate_batches(&[], MAX),
        Err(BatchError::InvalidRecord { .. })
    ));
    let buf = simple_batch(0, 3, T0, 10);
    for len in 1..buf.len() {
        match validate_batches(&buf[..len], MAX) {
            Err(BatchError::CorruptMessage { .. }) => {}
            other => panic!("prefix of {len} bytes: {other:?}"),
        }
    }
    // The iterator stops cleanly at the same tails.
    for len in 0..buf.len() {
        assert_eq!(batches(&buf[..len]).count(), 0);
    }
}

#[test]
fn inconsistent_counts_are_corrupt() {
    let fix_crc = |buf: &mut Vec<u8>| {
        let crc = crc32c::crc32c(&buf[21..]);
        buf[17..21].copy_from_slice(&crc.to_be_bytes());
    };
    let mut buf = simple_batch(0, 3, T0, 10);
    buf[57..61].copy_from_slice(&(-1i32).to_be_bytes());
    fix_crc(&mut buf);
    assert!(matches!(
        validate_batches(&buf, MAX),
        Err(BatchError::CorruptMessage { .. })
    ));
    let mut buf = simple_batch(0, 3, T0, 10);
    buf[23..27].copy_from_slice(&5i32.to_be_bytes());
    fix_crc(&mut buf);
    assert!(matches!(
        validate_batches(&buf, MAX),
        Err(BatchError::CorruptMessage { .. })
    ));
    let mut buf = simple_batch(0, 3, T0, 10);
    buf[8..12].copy_from_slice(&10i32.to_be_bytes());
    assert!(matches!(
        validate_batches(&buf, MAX),
        Err(BatchError::CorruptMessage { .. })
    ));
}

#[test]
fn records_parse_with_keys_values_and_headers() {
    let buf = BatchBuilder::new(10)
        .compression(Compression::Zstd)
        .record_with_headers(T0, Some(b"k"), None, &[("a", Some(b"1")), ("b", None)])
        .record(T0 - 3, None, Some(b"value"))
        .build();
    let batch = RecordBatch::from_prefix(&buf).unwrap();
    assert_eq!(batch.compression(), Ok(Compression::Zstd));
    let payload = batch.records_payload().unwrap();
    let records: Vec<_> = batch.records(&payload).map(Result::unwrap).collect();
    assert_eq!(records.len(), 2);
    assert_eq!(records[0].key, Some(&b"k"[..]));
    assert_eq!(records[0].value, None);
    assert_eq!(records[0].headers.len(), 2);
    assert_eq!(records[0].headers[1].value, None);
    assert_eq!(records[1].offset_delta, 1);
    assert_eq!(records[1].value, Some(&b"value"[..]));
    assert_eq!(
        batch.record_timestamps().unwrap(),
        vec![(10, T0), (11, T0 - 3)]
    );
}

#[test]
fn corrupt_compressed_payload_is_an_error_not_a_panic() {
    let mut buf = BatchBuilder::new(0)
        .compression(Compression::Gzip)
        .record(T0, None, Some(&[1; 100]))
        .build();
    for b in &mut buf[70..] {
        *b ^= 0x5a;
    }
    let mut m = RecordBatchMut::from_prefix(&mut buf).unwrap();
    m.set_max_timestamp(oxka_log::TimestampType::CreateTime, 1); // recompute CRC
    let batch = RecordBatch::from_prefix(&buf).unwrap();
    assert!(batch.is_valid());
    assert!(batch.record_timestamps().is_err());
}

#[test]
fn hostile_inputs_never_panic() {
    let mut rng = crate::support::Rng::new(0xbad);
    let seeds: Vec<Vec<u8>> = [
        Compression::None,
        Compression::Gzip,
        Compression::Snappy,
        Compression::Lz4,
        Compression::Zstd,
    ]
    .into_iter()
    .map(|c| {
        BatchBuilder::new(0)
            .compression(c)
            .record_with_headers(T0, Some(b"key"), Some(&[3; 50]), &[("h", Some(b"v"))])
            .record(T0 + 1, None, Some(b"value"))
            .build()
    })
    .collect();
    for _ in 0..20_000 {
        let mut buf = seeds[rng.range(0, seeds.len() as u64) as usize].clone();
        for _ in 0..rng.range(1, 5) {
            let at = rng.range(0, buf.len() as u64) as usize;
            buf[at] = rng.next_u64() as u8;
        }
        match rng.range(0, 3) {
            0 => buf.truncate(rng.range(0, buf.len() as u64) as usize),
            1 => buf.extend((0..rng.range(0, 80)).map(|_| rng.next_u64() as u8)),
            _ => {}
        }
        let _ = validate_batches(&buf, MAX);
        let _ = oxka_log::validate_replicated_batches(&buf);
        // Make the CRC right so the record parser sees the damage too.
        if buf.len() >= 61 {
            if let Ok(mut m) = RecordBatchMut::from_prefix(&mut buf) {
                let max = m.as_batch().max_timestamp();
                m.set_max_timestamp(oxka_log::TimestampType::LogAppendTime, max);
                m.set_max_timestamp(oxka_log::TimestampType::CreateTime, max);
            }
        }
        let _ = validate_batches(&buf, MAX);
        for b in batches(&buf) {
            let _ = b.record_timestamps();
            if let Ok(payload) = b.records_payload() {
                for r in b.records(&payload) {
                    let _ = r;
                }
            }
        }
    }
}

#[test]
fn replicated_batches_may_be_compacted_but_client_batches_may_not() {
    let mut buf = simple_batch(10, 3, T0, 10);
    // As after compaction: 3 records left of offsets 10..=15.
    buf[23..27].copy_from_slice(&5i32.to_be_bytes());
    let crc = crc32c::crc32c(&buf[21..]);
    buf[17..21].copy_from_slice(&crc.to_be_bytes());
    assert!(matches!(
        validate_batches(&buf, MAX),
        Err(BatchError::CorruptMessage { .. })
    ));
    let s = oxka_log::validate_replicated_batches(&buf).unwrap();
    assert_eq!((s.first_offset, s.last_offset, s.num_records), (10, 15, 3));
    // An empty batch (all records compacted away) is fine for a replica too.
    let empty = BatchBuilder::new(16).build();
    assert!(validate_batches(&empty, MAX).is_err());
    assert!(oxka_log::validate_replicated_batches(&empty).is_ok());
}
