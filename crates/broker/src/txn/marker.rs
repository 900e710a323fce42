//! Transaction markers: the control batch the coordinator writes to every partition of a
//! transaction when it ends. Attributes have the transactional (bit 4) and control (bit 5)
//! bits; one record whose key is `version: i16 = 0, type: i16` (0 abort, 1 commit) and whose
//! value is `version: i16 = 0, coordinator_epoch: i32` (Kafka's `EndTransactionMarker`).

use bytes::{Buf, BufMut, Bytes, BytesMut};
use kafka_protocol::records::{
    Compression, Record, RecordBatchDecoder, RecordBatchEncoder, RecordEncodeOptions, TimestampType,
};
use oxka_protocol::kafka_protocol;

const ABORT: i16 = 0;
const COMMIT: i16 = 1;

/// The marker batch (base offset 0; the log assigns the real one).
pub fn encode(
    producer_id: i64,
    producer_epoch: i16,
    commit: bool,
    coordinator_epoch: i32,
    now_ms: i64,
) -> BytesMut {
    let mut key = BytesMut::with_capacity(4);
    key.put_i16(0);
    key.put_i16(if commit { COMMIT } else { ABORT });
    let mut value = BytesMut::with_capacity(6);
    value.put_i16(0);
    value.put_i32(coordinator_epoch);
    let record = Record {
        transactional: true,
        control: true,
        delete_horizon: false,
        partition_leader_epoch: -1,
        producer_id,
        producer_epoch,
        timestamp_type: TimestampType::Creation,
        offset: 0,
        sequence: -1,
        timestamp: now_ms,
        key: Some(key.freeze()),
        value: Some(value.freeze()),
        headers: Default::default(),
    };
    let mut buf = BytesMut::new();
    let options = RecordEncodeOptions {
        version: 2,
        compression: Compression::None,
    };
    RecordBatchEncoder::encode(&mut buf, std::iter::once(&record), &options)
        .expect("encoding an uncompressed batch into memory cannot fail");
    buf
}

/// Whether a control batch is a commit (`Some(true)`) or abort (`Some(false)`) marker;
/// `None` for anything else (Kafka ignores unknown control types).
pub fn decode_commit(batch: &[u8]) -> Option<bool> {
    let mut bytes = Bytes::copy_from_slice(batch);
    let set = RecordBatchDecoder::decode(&mut bytes).ok()?;
    let record = set.records.into_iter().find(|r| r.control)?;
    let mut key = record.key?;
    if key.remaining() < 4 {
        return None;
    }
    let _version = key.get_i16();
    match key.get_i16() {
        COMMIT => Some(true),
        ABORT => Some(false),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use oxka_log::batch::BatchHeader;

    #[test]
    fn markers_round_trip_with_the_control_and_transactional_bits() {
        for commit in [true, false] {
            let batch = encode(42, 3, commit, 7, 1_000);
            let h = BatchHeader::parse(&batch).unwrap();
            assert_eq!(h.attributes & 0x30, 0x30);
            assert_eq!((h.producer_id, h.producer_epoch), (42, 3));
            assert_eq!(h.records_count, 1);
            assert_eq!(decode_commit(&batch), Some(commit));
        }
    }
}
