//! The records of `__transaction_state`, in Kafka's `TransactionLogKey`/`TransactionLogValue`
//! layouts so that Kafka's tools can read them.
//!
//! Key (version 0): `version: i16 = 0, transactional_id: string` (i16 length + UTF-8).
//! Value (version 0, not flexible): `version: i16 = 0, producer_id: i64, producer_epoch: i16,
//! transaction_timeout_ms: i32, transaction_status: i8, transaction_partitions: nullable
//! array (i32 count, -1 = null) of { topic: string, partition_ids: array of i32 },
//! last_update_timestamp_ms: i64, start_timestamp_ms: i64`. A null value (tombstone) deletes
//! the transactional id. Oxka writes and reads version 0 only (version 1 is flexible and adds
//! tagged previous/next producer ids, which this coordinator does not keep).

use std::collections::{BTreeMap, BTreeSet};

use bytes::{Buf, BufMut, Bytes, BytesMut};

use super::state::{TxnMetadata, TxnState};

/// Encodes the key of `transactional_id`.
pub fn encode_key(transactional_id: &str) -> Bytes {
    let mut b = BytesMut::with_capacity(4 + transactional_id.len());
    b.put_i16(0);
    put_string(&mut b, transactional_id);
    b.freeze()
}

/// The transactional id of a key, if it is a version-0 transaction log key.
pub fn decode_key(mut key: &[u8]) -> Option<String> {
    if key.remaining() < 2 || key.get_i16() != 0 {
        return None;
    }
    get_string(&mut key)
}

/// Encodes `txn` as a version-0 value.
pub fn encode_value(txn: &TxnMetadata) -> Bytes {
    let mut b = BytesMut::with_capacity(64);
    b.put_i16(0);
    b.put_i64(txn.producer_id);
    b.put_i16(txn.producer_epoch);
    b.put_i32(txn.timeout_ms);
    b.put_i8(txn.state.id());
    let mut by_topic: BTreeMap<&str, Vec<i32>> = BTreeMap::new();
    for (t, p) in &txn.partitions {
        by_topic.entry(t).or_default().push(*p);
    }
    b.put_i32(by_topic.len() as i32);
    for (topic, partitions) in by_topic {
        put_string(&mut b, topic);
        b.put_i32(partitions.len() as i32);
        for p in partitions {
            b.put_i32(p);
        }
    }
    b.put_i64(txn.last_update_ms);
    b.put_i64(txn.txn_start_ms);
    b.freeze()
}

/// Decodes a version-0 value of `transactional_id`. Every count is bounded by the bytes left.
pub fn decode_value(transactional_id: &str, mut v: &[u8]) -> Option<TxnMetadata> {
    if v.remaining() < 2 + 8 + 2 + 4 + 1 + 4 || v.get_i16() != 0 {
        return None;
    }
    let producer_id = v.get_i64();
    let producer_epoch = v.get_i16();
    let timeout_ms = v.get_i32();
    let state = TxnState::from_id(v.get_i8())?;
    let topics = v.get_i32();
    let mut partitions = BTreeSet::new();
    for _ in 0..topics.max(0) {
        let topic = get_string(&mut v)?;
        if v.remaining() < 4 {
            return None;
        }
        let n = v.get_i32();
        if n < 0 || v.remaining() < n as usize * 4 {
            return None;
        }
        for _ in 0..n {
            partitions.insert((topic.clone(), v.get_i32()));
        }
    }
    if v.remaining() < 16 {
        return None;
    }
    let last_update_ms = v.get_i64();
    let txn_start_ms = v.get_i64();
    Some(TxnMetadata {
        transactional_id: transactional_id.to_owned(),
        producer_id,
        last_producer_id: -1,
        producer_epoch,
        last_producer_epoch: -1,
        timeout_ms,
        state,
        partitions,
        txn_start_ms,
        last_update_ms,
    })
}

fn put_string(b: &mut BytesMut, s: &str) {
    b.put_i16(s.len() as i16);
    b.put_slice(s.as_bytes());
}

fn get_string(b: &mut &[u8]) -> Option<String> {
    if b.remaining() < 2 {
        return None;
    }
    let n = b.get_i16();
    if n < 0 || b.remaining() < n as usize {
        return None;
    }
    let s = std::str::from_utf8(&b[..n as usize]).ok()?.to_owned();
    b.advance(n as usize);
    Some(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_and_value_round_trip_and_truncations_are_refused() {
        let key = encode_key("my-txn");
        assert_eq!(&key[..], b"\x00\x00\x00\x06my-txn");
        assert_eq!(decode_key(&key).as_deref(), Some("my-txn"));
        let mut txn = TxnMetadata::new("my-txn", 4000, 60_000, 17);
        txn.producer_epoch = 3;
        txn.state = TxnState::Ongoing;
        txn.txn_start_ms = 15;
        txn.partitions.insert(("a".into(), 1));
        txn.partitions.insert(("a".into(), 0));
        txn.partitions.insert(("b".into(), 9));
        let value = encode_value(&txn);
        assert_eq!(decode_value("my-txn", &value), Some(txn));
        for cut in 0..value.len() {
            assert_eq!(decode_value("my-txn", &value[..cut]), None, "cut at {cut}");
        }
    }
}
