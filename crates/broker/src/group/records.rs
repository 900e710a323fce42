//! The records of `__consumer_offsets`, in Kafka's key/value schemas so that the topic reads
//! the same as Kafka's (e.g. with `kafka-console-consumer --formatter ...OffsetsMessageFormatter`).
//!
//! Keys start with a big-endian i16 version that says what the record is:
//! - 0 or 1, OffsetCommitKey: `group: string, topic: string, partition: i32`.
//! - 2, GroupMetadataKey: `group: string`.
//! - 3 to 8, the KIP-848 consumer group records (`group: string` and for 5, 7 and 8
//!   `member_id: string`); their values are in [`super::consumer_records`].
//!
//! Values start with their own i16 version:
//! - OffsetCommitValue v0/v2: `offset i64, metadata string, commit_timestamp i64`;
//!   v1 adds `expire_timestamp i64` at the end; v3: `offset i64, leader_epoch i32,
//!   metadata string, commit_timestamp i64`. Written as v3, or v1 when the commit carried a
//!   retention time (OffsetCommit v2–v4), as Kafka does.
//! - GroupMetadataValue v0–v3: `protocol_type string, generation i32, protocol string?,
//!   leader string?, current_state_timestamp i64 (v2+), members [member_id string,
//!   group_instance_id string? (v3+), client_id string, client_host string,
//!   rebalance_timeout i32 (v1+), session_timeout i32, subscription bytes, assignment bytes]`.
//!   Written as v3.
//!
//! Strings are i16-length-prefixed (-1 = null), bytes i32-length-prefixed. A null value is a
//! tombstone: the offset or the group is deleted. The flexible v4 values are not read.

use bytes::{BufMut, Bytes, BytesMut};

use super::state::{GroupSnapshot, MemberSnapshot};

/// What a `__consumer_offsets` key names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RecordKey {
    Offset {
        group: String,
        topic: String,
        partition: i32,
    },
    Group {
        group: String,
    },
    /// A KIP-848 consumer group record (types 3–8); `member_id` for types 5, 7 and 8.
    Consumer {
        record_type: i16,
        group: String,
        member_id: Option<String>,
    },
}

/// A committed offset (OffsetCommitValue).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OffsetValue {
    pub offset: i64,
    pub leader_epoch: i32,
    pub metadata: String,
    pub commit_timestamp_ms: i64,
    /// Only from OffsetCommit v2–v4 requests with a retention time.
    pub expire_timestamp_ms: Option<i64>,
}

pub fn encode_key(key: &RecordKey) -> Bytes {
    let mut buf = BytesMut::new();
    match key {
        RecordKey::Offset {
            group,
            topic,
            partition,
        } => {
            buf.put_i16(1);
            put_str(&mut buf, group);
            put_str(&mut buf, topic);
            buf.put_i32(*partition);
        }
        RecordKey::Group { group } => {
            buf.put_i16(2);
            put_str(&mut buf, group);
        }
        RecordKey::Consumer {
            record_type,
            group,
            member_id,
        } => {
            buf.put_i16(*record_type);
            put_str(&mut buf, group);
            if let Some(m) = member_id {
                put_str(&mut buf, m);
            }
        }
    }
    buf.freeze()
}

pub fn encode_offset_value(v: &OffsetValue) -> Bytes {
    let mut buf = BytesMut::new();
    match v.expire_timestamp_ms {
        Some(expire) => {
            buf.put_i16(1);
            buf.put_i64(v.offset);
            put_str(&mut buf, &v.metadata);
            buf.put_i64(v.commit_timestamp_ms);
            buf.put_i64(expire);
        }
        None => {
            buf.put_i16(3);
            buf.put_i64(v.offset);
            buf.put_i32(v.leader_epoch);
            put_str(&mut buf, &v.metadata);
            buf.put_i64(v.commit_timestamp_ms);
        }
    }
    buf.freeze()
}

pub fn encode_group_value(g: &GroupSnapshot) -> Bytes {
    let mut buf = BytesMut::new();
    buf.put_i16(3);
    put_str(&mut buf, &g.protocol_type);
    buf.put_i32(g.generation);
    put_nullable_str(&mut buf, g.protocol_name.as_deref());
    put_nullable_str(&mut buf, g.leader.as_deref());
    buf.put_i64(g.state_timestamp_ms);
    buf.put_i32(g.members.len() as i32);
    for m in &g.members {
        put_str(&mut buf, &m.member_id);
        put_nullable_str(&mut buf, m.group_instance_id.as_deref());
        put_str(&mut buf, &m.client_id);
        put_str(&mut buf, &m.client_host);
        buf.put_i32(m.rebalance_timeout_ms);
        buf.put_i32(m.session_timeout_ms);
        buf.put_i32(m.subscription.len() as i32);
        buf.put_slice(&m.subscription);
        buf.put_i32(m.assignment.len() as i32);
        buf.put_slice(&m.assignment);
    }
    buf.freeze()
}

pub fn decode_key(buf: &[u8]) -> Option<RecordKey> {
    let mut r = Reader { buf, pos: 0 };
    match r.i16()? {
        0 | 1 => Some(RecordKey::Offset {
            group: r.string()?,
            topic: r.string()?,
            partition: r.i32()?,
        }),
        2 => Some(RecordKey::Group { group: r.string()? }),
        t @ (3 | 4 | 6) => Some(RecordKey::Consumer {
            record_type: t,
            group: r.string()?,
            member_id: None,
        }),
        t @ (5 | 7 | 8) => Some(RecordKey::Consumer {
            record_type: t,
            group: r.string()?,
            member_id: Some(r.string()?),
        }),
        _ => None,
    }
}

pub fn decode_offset_value(buf: &[u8]) -> Option<OffsetValue> {
    let mut r = Reader { buf, pos: 0 };
    let version = r.i16()?;
    let offset = r.i64()?;
    let leader_epoch = if version >= 3 { r.i32()? } else { -1 };
    let metadata = r.string()?;
    let commit_timestamp_ms = r.i64()?;
    let expire_timestamp_ms = match version {
        1 => Some(r.i64()?),
        0 | 2 | 3 => None,
        _ => return None,
    };
    Some(OffsetValue {
        offset,
        leader_epoch,
        metadata,
        commit_timestamp_ms,
        expire_timestamp_ms,
    })
}

pub fn decode_group_value(buf: &[u8]) -> Option<GroupSnapshot> {
    let mut r = Reader { buf, pos: 0 };
    let version = r.i16()?;
    if !(0..=3).contains(&version) {
        return None;
    }
    let protocol_type = r.string()?;
    let generation = r.i32()?;
    let protocol_name = r.nullable_string()?;
    let leader = r.nullable_string()?;
    let state_timestamp_ms = if version >= 2 { r.i64()? } else { -1 };
    let count = r.i32()?;
    let mut members = Vec::new();
    for _ in 0..count.max(0) {
        let member_id = r.string()?;
        let group_instance_id = if version >= 3 {
            r.nullable_string()?
        } else {
            None
        };
        let client_id = r.string()?;
        let client_host = r.string()?;
        let session_or_rebalance = r.i32()?;
        let (rebalance_timeout_ms, session_timeout_ms) = if version >= 1 {
            (session_or_rebalance, r.i32()?)
        } else {
            (session_or_rebalance, session_or_rebalance)
        };
        members.push(MemberSnapshot {
            member_id,
            group_instance_id,
            client_id,
            client_host,
            rebalance_timeout_ms,
            session_timeout_ms,
            subscription: r.bytes()?,
            assignment: r.bytes()?,
        });
    }
    Some(GroupSnapshot {
        protocol_type,
        generation,
        protocol_name,
        leader,
        state_timestamp_ms,
        members,
    })
}

fn put_str(buf: &mut BytesMut, s: &str) {
    buf.put_i16(s.len() as i16);
    buf.put_slice(s.as_bytes());
}

fn put_nullable_str(buf: &mut BytesMut, s: Option<&str>) {
    match s {
        Some(s) => put_str(buf, s),
        None => buf.put_i16(-1),
    }
}

/// A bounds-checked reader: every length is checked against the bytes that remain.
struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl Reader<'_> {
    fn take(&mut self, n: usize) -> Option<&[u8]> {
        let s = self.buf.get(self.pos..self.pos.checked_add(n)?)?;
        self.pos += n;
        Some(s)
    }
    fn i16(&mut self) -> Option<i16> {
        Some(i16::from_be_bytes(self.take(2)?.try_into().ok()?))
    }
    fn i32(&mut self) -> Option<i32> {
        Some(i32::from_be_bytes(self.take(4)?.try_into().ok()?))
    }
    fn i64(&mut self) -> Option<i64> {
        Some(i64::from_be_bytes(self.take(8)?.try_into().ok()?))
    }
    fn nullable_string(&mut self) -> Option<Option<String>> {
        let len = self.i16()?;
        if len < 0 {
            return Some(None);
        }
        let s = self.take(len as usize)?;
        Some(Some(String::from_utf8(s.to_vec()).ok()?))
    }
    fn string(&mut self) -> Option<String> {
        self.nullable_string()?
    }
    fn bytes(&mut self) -> Option<Bytes> {
        let len = self.i32()?;
        if len < 0 {
            return Some(Bytes::new());
        }
        Some(Bytes::copy_from_slice(self.take(len as usize)?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offset_key_layout() {
        let key = RecordKey::Offset {
            group: "g".into(),
            topic: "t".into(),
            partition: 3,
        };
        let bytes = encode_key(&key);
        assert_eq!(&bytes[..], &[0, 1, 0, 1, b'g', 0, 1, b't', 0, 0, 0, 3]);
        assert_eq!(decode_key(&bytes), Some(key));
        let key = RecordKey::Group { group: "g".into() };
        assert_eq!(&encode_key(&key)[..], &[0, 2, 0, 1, b'g']);
        let key = RecordKey::Consumer {
            record_type: 5,
            group: "g".into(),
            member_id: Some("m".into()),
        };
        let bytes = encode_key(&key);
        assert_eq!(&bytes[..], &[0, 5, 0, 1, b'g', 0, 1, b'm']);
        assert_eq!(decode_key(&bytes), Some(key));
        assert_eq!(
            decode_key(&[0, 3, 0, 1, b'g']),
            Some(RecordKey::Consumer {
                record_type: 3,
                group: "g".into(),
                member_id: None
            })
        );
        assert_eq!(decode_key(&[0, 9, 0, 1, b'g']), None);
    }

    #[test]
    fn offset_value_v3_layout_and_v1_round_trip() {
        let v = OffsetValue {
            offset: 5,
            leader_epoch: 2,
            metadata: "m".into(),
            commit_timestamp_ms: 7,
            expire_timestamp_ms: None,
        };
        let bytes = encode_offset_value(&v);
        let mut expected = vec![0, 3, 0, 0, 0, 0, 0, 0, 0, 5, 0, 0, 0, 2, 0, 1, b'm'];
        expected.extend(7i64.to_be_bytes());
        assert_eq!(&bytes[..], &expected[..]);
        assert_eq!(decode_offset_value(&bytes), Some(v.clone()));
        let v1 = OffsetValue {
            leader_epoch: -1,
            expire_timestamp_ms: Some(99),
            ..v
        };
        assert_eq!(decode_offset_value(&encode_offset_value(&v1)), Some(v1));
    }

    #[test]
    fn group_value_round_trip_and_truncation() {
        let g = GroupSnapshot {
            protocol_type: "consumer".into(),
            generation: 4,
            protocol_name: Some("range".into()),
            leader: Some("m1".into()),
            state_timestamp_ms: 123,
            members: vec![MemberSnapshot {
                member_id: "m1".into(),
                group_instance_id: Some("i1".into()),
                client_id: "c".into(),
                client_host: "/127.0.0.1".into(),
                rebalance_timeout_ms: 300_000,
                session_timeout_ms: 45_000,
                subscription: Bytes::from_static(b"sub"),
                assignment: Bytes::from_static(b"asg"),
            }],
        };
        let bytes = encode_group_value(&g);
        assert_eq!(decode_group_value(&bytes), Some(g));
        for cut in 0..bytes.len() {
            assert_eq!(decode_group_value(&bytes[..cut]), None, "cut at {cut}");
        }
        assert_eq!(decode_offset_value(&[0, 9, 0, 0]), None);
    }
}
