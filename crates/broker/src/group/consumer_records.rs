//! The KIP-848 consumer group records of `__consumer_offsets`, in Kafka's schemas (record
//! types 3–8), so that the topic reads like Kafka's.
//!
//! Keys ([`super::records::RecordKey::Consumer`]) are not flexible: a big-endian i16 record
//! type, then i16-length-prefixed strings.
//! - 3 ConsumerGroupMetadataKey, 4 ConsumerGroupPartitionMetadataKey, 6
//!   ConsumerGroupTargetAssignmentMetadataKey: `group`.
//! - 5 ConsumerGroupMemberMetadataKey, 7 ConsumerGroupTargetAssignmentMemberKey, 8
//!   ConsumerGroupCurrentMemberAssignmentKey: `group, member_id`.
//!
//! Values start with an i16 version (0 for all of them) and are flexible: strings and arrays
//! are compact (unsigned varint length + 1, 0 = null) and every struct ends with tagged
//! fields (written empty; read and skipped, so Kafka's later tagged fields such as
//! MetadataHash or AssignmentEpochs do no harm).
//! - 3 ConsumerGroupMetadataValue: `epoch i32`.
//! - 4 ConsumerGroupPartitionMetadataValue: `topics [topic_id uuid, topic_name string,
//!   num_partitions i32, partition_metadata [partition i32, racks [string]]]` (the racks are
//!   written empty, as Kafka 4.0 does).
//! - 5 ConsumerGroupMemberMetadataValue: `instance_id string?, rack_id string?, client_id
//!   string, client_host string, subscribed_topic_names [string], subscribed_topic_regex
//!   string?, rebalance_timeout_ms i32, server_assignor string?` (+ tag 0,
//!   ClassicMemberMetadata, never written).
//! - 6 ConsumerGroupTargetAssignmentMetadataValue: `assignment_epoch i32`.
//! - 7 ConsumerGroupTargetAssignmentMemberValue: `topic_partitions [topic_id uuid,
//!   partitions [i32]]`.
//! - 8 ConsumerGroupCurrentMemberAssignmentValue: `member_epoch i32, previous_member_epoch
//!   i32, state i8 (0 Stable, 1 UnrevokedPartitions, 2 UnreleasedPartitions),
//!   assigned_partitions [topic_id uuid, partitions [i32]], partitions_pending_revocation
//!   [same]`.
//!
//! A null value is a tombstone.

use bytes::{BufMut, Bytes, BytesMut};
use uuid::Uuid;

/// Partitions by topic id, as the records carry them.
pub type TopicPartitions = Vec<(Uuid, Vec<i32>)>;

/// One subscribed topic of ConsumerGroupPartitionMetadataValue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopicMetadata {
    pub topic_id: Uuid,
    pub name: String,
    pub num_partitions: i32,
}

/// ConsumerGroupMemberMetadataValue.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct MemberMetadataValue {
    pub instance_id: Option<String>,
    pub rack_id: Option<String>,
    pub client_id: String,
    pub client_host: String,
    pub subscribed_topic_names: Vec<String>,
    pub subscribed_topic_regex: Option<String>,
    pub rebalance_timeout_ms: i32,
    pub server_assignor: Option<String>,
}

/// ConsumerGroupCurrentMemberAssignmentValue.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct CurrentAssignmentValue {
    pub member_epoch: i32,
    pub previous_member_epoch: i32,
    /// Kafka's MemberState: 0 Stable, 1 UnrevokedPartitions, 2 UnreleasedPartitions.
    pub state: i8,
    pub assigned: TopicPartitions,
    pub pending_revocation: TopicPartitions,
}

pub const GROUP_METADATA: i16 = 3;
pub const PARTITION_METADATA: i16 = 4;
pub const MEMBER_METADATA: i16 = 5;
pub const TARGET_ASSIGNMENT_METADATA: i16 = 6;
pub const TARGET_ASSIGNMENT_MEMBER: i16 = 7;
pub const CURRENT_MEMBER_ASSIGNMENT: i16 = 8;

// ---- values -------------------------------------------------------------------------------

pub fn encode_group_metadata(epoch: i32) -> Bytes {
    let mut w = Writer::new();
    w.i32(epoch);
    w.no_tags();
    w.finish()
}

pub fn decode_group_metadata(buf: &[u8]) -> Option<i32> {
    let mut r = Reader::value(buf)?;
    let epoch = r.i32()?;
    r.skip_tags()?;
    Some(epoch)
}

pub fn encode_partition_metadata(topics: &[TopicMetadata]) -> Bytes {
    let mut w = Writer::new();
    w.len(topics.len());
    for t in topics {
        w.uuid(&t.topic_id);
        w.str(&t.name);
        w.i32(t.num_partitions);
        w.len(0); // PartitionMetadata (racks): not used after Kafka 4.0
        w.no_tags();
    }
    w.no_tags();
    w.finish()
}

pub fn decode_partition_metadata(buf: &[u8]) -> Option<Vec<TopicMetadata>> {
    let mut r = Reader::value(buf)?;
    let topics = r.array(|r| {
        let topic_id = r.uuid()?;
        let name = r.string()?;
        let num_partitions = r.i32()?;
        r.array(|r| {
            r.i32()?;
            r.array(|r| r.string())?;
            r.skip_tags()
        })?;
        r.skip_tags()?;
        Some(TopicMetadata {
            topic_id,
            name,
            num_partitions,
        })
    })?;
    r.skip_tags()?;
    Some(topics)
}

pub fn encode_member_metadata(m: &MemberMetadataValue) -> Bytes {
    let mut w = Writer::new();
    w.nullable_str(m.instance_id.as_deref());
    w.nullable_str(m.rack_id.as_deref());
    w.str(&m.client_id);
    w.str(&m.client_host);
    w.len(m.subscribed_topic_names.len());
    for t in &m.subscribed_topic_names {
        w.str(t);
    }
    w.nullable_str(m.subscribed_topic_regex.as_deref());
    w.i32(m.rebalance_timeout_ms);
    w.nullable_str(m.server_assignor.as_deref());
    w.no_tags();
    w.finish()
}

pub fn decode_member_metadata(buf: &[u8]) -> Option<MemberMetadataValue> {
    let mut r = Reader::value(buf)?;
    let v = MemberMetadataValue {
        instance_id: r.nullable_string()?,
        rack_id: r.nullable_string()?,
        client_id: r.string()?,
        client_host: r.string()?,
        subscribed_topic_names: r.array(|r| r.string())?,
        subscribed_topic_regex: r.nullable_string()?,
        rebalance_timeout_ms: r.i32()?,
        server_assignor: r.nullable_string()?,
    };
    r.skip_tags()?;
    Some(v)
}

pub fn encode_target_assignment_metadata(assignment_epoch: i32) -> Bytes {
    encode_group_metadata(assignment_epoch)
}

pub fn decode_target_assignment_metadata(buf: &[u8]) -> Option<i32> {
    decode_group_metadata(buf)
}

pub fn encode_target_assignment_member(partitions: &TopicPartitions) -> Bytes {
    let mut w = Writer::new();
    w.topic_partitions(partitions);
    w.no_tags();
    w.finish()
}

pub fn decode_target_assignment_member(buf: &[u8]) -> Option<TopicPartitions> {
    let mut r = Reader::value(buf)?;
    let tps = r.topic_partitions()?;
    r.skip_tags()?;
    Some(tps)
}

pub fn encode_current_assignment(v: &CurrentAssignmentValue) -> Bytes {
    let mut w = Writer::new();
    w.i32(v.member_epoch);
    w.i32(v.previous_member_epoch);
    w.buf.put_i8(v.state);
    w.topic_partitions(&v.assigned);
    w.topic_partitions(&v.pending_revocation);
    w.no_tags();
    w.finish()
}

pub fn decode_current_assignment(buf: &[u8]) -> Option<CurrentAssignmentValue> {
    let mut r = Reader::value(buf)?;
    let v = CurrentAssignmentValue {
        member_epoch: r.i32()?,
        previous_member_epoch: r.i32()?,
        state: r.take(1)?[0] as i8,
        assigned: r.topic_partitions()?,
        pending_revocation: r.topic_partitions()?,
    };
    r.skip_tags()?;
    Some(v)
}

// ---- flexible encoding ----------------------------------------------------------------------

struct Writer {
    buf: BytesMut,
}

impl Writer {
    /// A value of version 0.
    fn new() -> Writer {
        let mut buf = BytesMut::new();
        buf.put_i16(0);
        Writer { buf }
    }
    fn finish(self) -> Bytes {
        self.buf.freeze()
    }
    fn uvarint(&mut self, mut n: u64) {
        while n >= 0x80 {
            self.buf.put_u8((n as u8 & 0x7f) | 0x80);
            n >>= 7;
        }
        self.buf.put_u8(n as u8);
    }
    /// A compact array's (or string's) length.
    fn len(&mut self, n: usize) {
        self.uvarint(n as u64 + 1);
    }
    fn i32(&mut self, v: i32) {
        self.buf.put_i32(v);
    }
    fn uuid(&mut self, id: &Uuid) {
        self.buf.put_slice(id.as_bytes());
    }
    fn str(&mut self, s: &str) {
        self.len(s.len());
        self.buf.put_slice(s.as_bytes());
    }
    fn nullable_str(&mut self, s: Option<&str>) {
        match s {
            Some(s) => self.str(s),
            None => self.uvarint(0),
        }
    }
    fn no_tags(&mut self) {
        self.uvarint(0);
    }
    fn topic_partitions(&mut self, tps: &TopicPartitions) {
        self.len(tps.len());
        for (id, ps) in tps {
            self.uuid(id);
            self.len(ps.len());
            for p in ps {
                self.i32(*p);
            }
            self.no_tags();
        }
    }
}

/// A bounds-checked reader of flexible values.
struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    /// Reads the value's version: only 0 is known.
    fn value(buf: &'a [u8]) -> Option<Reader<'a>> {
        let mut r = Reader { buf, pos: 0 };
        let version = i16::from_be_bytes(r.take(2)?.try_into().ok()?);
        (version == 0).then_some(r)
    }
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        let s = self.buf.get(self.pos..self.pos.checked_add(n)?)?;
        self.pos += n;
        Some(s)
    }
    fn i32(&mut self) -> Option<i32> {
        Some(i32::from_be_bytes(self.take(4)?.try_into().ok()?))
    }
    fn uvarint(&mut self) -> Option<u64> {
        let mut n = 0u64;
        for shift in (0..64).step_by(7) {
            let b = self.take(1)?[0];
            n |= u64::from(b & 0x7f) << shift;
            if b & 0x80 == 0 {
                return Some(n);
            }
        }
        None
    }
    /// A compact length: `None` is a null.
    fn len(&mut self) -> Option<Option<usize>> {
        let n = self.uvarint()?;
        Some(n.checked_sub(1).map(|n| n as usize))
    }
    fn nullable_string(&mut self) -> Option<Option<String>> {
        match self.len()? {
            None => Some(None),
            Some(n) => Some(Some(String::from_utf8(self.take(n)?.to_vec()).ok()?)),
        }
    }
    fn string(&mut self) -> Option<String> {
        self.nullable_string()?
    }
    fn uuid(&mut self) -> Option<Uuid> {
        Some(Uuid::from_bytes(self.take(16)?.try_into().ok()?))
    }
    /// A non-null compact array.
    fn array<T>(&mut self, mut item: impl FnMut(&mut Self) -> Option<T>) -> Option<Vec<T>> {
        let n = self.len()??;
        // Every item takes at least a byte: a length past the end is refused before allocating.
        if n > self.buf.len() - self.pos {
            return None;
        }
        (0..n).map(|_| item(self)).collect()
    }
    fn skip_tags(&mut self) -> Option<()> {
        for _ in 0..self.uvarint()? {
            self.uvarint()?;
            let size = self.uvarint()?;
            self.take(usize::try_from(size).ok()?)?;
        }
        Some(())
    }
    fn topic_partitions(&mut self) -> Option<TopicPartitions> {
        self.array(|r| {
            let id = r.uuid()?;
            let ps = r.array(|r| r.i32())?;
            r.skip_tags()?;
            Some((id, ps))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(n: u8) -> Uuid {
        Uuid::from_bytes([n; 16])
    }

    #[test]
    fn values_round_trip_and_refuse_truncation() {
        let member = MemberMetadataValue {
            instance_id: Some("i".into()),
            rack_id: None,
            client_id: "client".into(),
            client_host: "/127.0.0.1".into(),
            subscribed_topic_names: vec!["a".into(), "b".into()],
            subscribed_topic_regex: Some("x.*".into()),
            rebalance_timeout_ms: 300_000,
            server_assignor: Some("uniform".into()),
        };
        let current = CurrentAssignmentValue {
            member_epoch: 7,
            previous_member_epoch: 6,
            state: 1,
            assigned: vec![(id(1), vec![0, 2]), (id(2), vec![1])],
            pending_revocation: vec![(id(1), vec![1])],
        };
        let topics = vec![TopicMetadata {
            topic_id: id(3),
            name: "t".into(),
            num_partitions: 12,
        }];
        let target = vec![(id(4), vec![5, 6, 7])];
        type Check = Box<dyn Fn(&[u8]) -> bool>;
        let all: Vec<(Bytes, Check)> = vec![
            (
                encode_member_metadata(&member),
                Box::new(move |b| decode_member_metadata(b) == Some(member.clone())),
            ),
            (
                encode_current_assignment(&current),
                Box::new(move |b| decode_current_assignment(b) == Some(current.clone())),
            ),
            (
                encode_partition_metadata(&topics),
                Box::new(move |b| decode_partition_metadata(b) == Some(topics.clone())),
            ),
            (
                encode_target_assignment_member(&target),
                Box::new(move |b| decode_target_assignment_member(b) == Some(target.clone())),
            ),
            (
                encode_group_metadata(42),
                Box::new(|b| decode_group_metadata(b) == Some(42)),
            ),
            (
                encode_target_assignment_metadata(41),
                Box::new(|b| decode_target_assignment_metadata(b) == Some(41)),
            ),
        ];
        for (bytes, check) in &all {
            assert!(check(bytes), "round trip of {bytes:?}");
            for cut in 0..bytes.len() {
                assert!(!check(&bytes[..cut]), "cut at {cut} of {bytes:?}");
            }
        }
        // Another version is not read.
        assert_eq!(decode_group_metadata(&[0, 1, 0, 0, 0, 1, 0]), None);
    }

    /// Values laid out by hand as Kafka's generated serializers write them, including tagged
    /// fields this broker does not write (MetadataHash, AssignmentEpochs, racks).
    #[test]
    fn decodes_kafkas_layout() {
        // ConsumerGroupMetadataValue v0: epoch 5, tag 0 (MetadataHash, int64) = 9.
        let mut v = vec![0, 0, 0, 0, 0, 5, 1, 0, 8];
        v.extend(9i64.to_be_bytes());
        assert_eq!(decode_group_metadata(&v), Some(5));

        // ConsumerGroupMemberMetadataValue v0.
        let mut v = vec![0, 0];
        v.push(0); // InstanceId null
        v.extend([3, b'r', b'1']); // RackId "r1"
        v.extend([2, b'c']); // ClientId "c"
        v.extend([3, b'/', b'h']); // ClientHost "/h"
        v.extend([3, 3, b't', b'1', 2, b'u']); // SubscribedTopicNames ["t1", "u"]
        v.push(0); // SubscribedTopicRegex null
        v.extend(45_000i32.to_be_bytes()); // RebalanceTimeoutMs
        v.extend([6, b'r', b'a', b'n', b'g', b'e']); // ServerAssignor "range"
        v.push(0); // no tagged fields
        assert_eq!(
            decode_member_metadata(&v),
            Some(MemberMetadataValue {
                instance_id: None,
                rack_id: Some("r1".into()),
                client_id: "c".into(),
                client_host: "/h".into(),
                subscribed_topic_names: vec!["t1".into(), "u".into()],
                subscribed_topic_regex: None,
                rebalance_timeout_ms: 45_000,
                server_assignor: Some("range".into()),
            })
        );
        assert_eq!(
            encode_member_metadata(&decode_member_metadata(&v).unwrap())[..],
            v[..]
        );

        // ConsumerGroupPartitionMetadataValue v0: one topic with a rack entry.
        let mut v = vec![0, 0, 2];
        v.extend([7u8; 16]);
        v.extend([2, b't']);
        v.extend(3i32.to_be_bytes());
        v.push(2); // one PartitionMetadata
        v.extend(0i32.to_be_bytes());
        v.extend([2, 3, b'r', b'1', 0]); // racks ["r1"], no tags
        v.extend([0, 0]); // topic's tags, value's tags
        assert_eq!(
            decode_partition_metadata(&v),
            Some(vec![TopicMetadata {
                topic_id: id(7),
                name: "t".into(),
                num_partitions: 3,
            }])
        );

        // ConsumerGroupCurrentMemberAssignmentValue v0 with AssignmentEpochs (tag 0).
        let mut v = vec![0, 0];
        v.extend(4i32.to_be_bytes());
        v.extend(3i32.to_be_bytes());
        v.push(2); // UnreleasedPartitions
        v.push(2); // one topic assigned
        v.extend([1u8; 16]);
        v.push(3);
        v.extend(0i32.to_be_bytes());
        v.extend(1i32.to_be_bytes());
        v.extend([1, 0, 9, 3]); // tag 0, 9 bytes: [4, 4]
        v.extend(4i32.to_be_bytes());
        v.extend(4i32.to_be_bytes());
        v.push(1); // nothing pending revocation
        v.push(0);
        assert_eq!(
            decode_current_assignment(&v),
            Some(CurrentAssignmentValue {
                member_epoch: 4,
                previous_member_epoch: 3,
                state: 2,
                assigned: vec![(id(1), vec![0, 1])],
                pending_revocation: vec![],
            })
        );

        // ConsumerGroupTargetAssignmentMemberValue v0.
        let mut v = vec![0, 0, 2];
        v.extend([2u8; 16]);
        v.push(2);
        v.extend(5i32.to_be_bytes());
        v.extend([0, 0]);
        assert_eq!(
            decode_target_assignment_member(&v),
            Some(vec![(id(2), vec![5])])
        );
        assert_eq!(
            encode_target_assignment_member(&vec![(id(2), vec![5])])[..],
            v[..]
        );
    }
}
