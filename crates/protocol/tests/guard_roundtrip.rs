//! Proof that the guard never refuses a valid request: for every covered (api key, version),
//! requests built with `kafka-protocol`'s own types and encoded by it are accepted by
//! `check_request` and decode back to the same value through `decode_request_body`.
//!
//! Three sources of requests:
//! - each request type's `Default`, at every covered version;
//! - hand-built requests with several elements, nested arrays, null and empty values, known and
//!   unknown tagged fields, for the APIs the broker serves first;
//! - 200 pseudo-random bodies per version from the guard's own table
//!   (`guard::testing::sample_body`), which the crate must decode *consuming every byte* and
//!   re-encode to the very same bytes. Any field the table has wrong (missing, extra, wrong width,
//!   wrong versions, wrong tag) breaks one of those checks, so this also proves the table agrees
//!   with the crate's decoder.

use std::collections::BTreeMap;

use bytes::{Bytes, BytesMut};
use kafka_protocol::messages::create_topics_request::{
    CreatableReplicaAssignment, CreatableTopic, CreatableTopicConfig,
};
use kafka_protocol::messages::describe_configs_request::DescribeConfigsResource;
use kafka_protocol::messages::describe_topic_partitions_request::{Cursor, TopicRequest};
use kafka_protocol::messages::fetch_request::{
    FetchPartition, FetchTopic, ForgottenTopic, ReplicaState,
};
use kafka_protocol::messages::metadata_request::MetadataRequestTopic;
use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use kafka_protocol::messages::*;
use kafka_protocol::protocol::StrBytes;
use oxka_protocol::guard::{check_request, covers, decode_request_body, testing};

/// Encodes `request` with the crate at `version`, checks it and decodes it back.
fn roundtrip(key: ApiKey, version: i16, request: &RequestKind) {
    let mut buf = BytesMut::new();
    request
        .encode(&mut buf, version)
        .unwrap_or_else(|e| panic!("{key:?} v{version}: crate encode failed: {e:#}"));
    let body = buf.freeze();
    check_request(key as i16, version, &body)
        .unwrap_or_else(|e| panic!("{key:?} v{version}: valid body refused: {e}\n{body:02x?}"));
    let decoded = decode_request_body(key as i16, version, body.clone())
        .unwrap_or_else(|e| panic!("{key:?} v{version}: decode failed: {e:?}"));
    assert_eq!(
        &decoded, request,
        "{key:?} v{version}: round trip changed the request"
    );
}

fn default_request(key: ApiKey) -> RequestKind {
    match key {
        ApiKey::Produce => ProduceRequest::default().into(),
        ApiKey::Fetch => FetchRequest::default().into(),
        ApiKey::ListOffsets => ListOffsetsRequest::default().into(),
        ApiKey::Metadata => MetadataRequest::default().into(),
        ApiKey::OffsetCommit => OffsetCommitRequest::default().into(),
        ApiKey::OffsetFetch => OffsetFetchRequest::default().into(),
        ApiKey::FindCoordinator => FindCoordinatorRequest::default().into(),
        ApiKey::JoinGroup => JoinGroupRequest::default().into(),
        ApiKey::Heartbeat => HeartbeatRequest::default().into(),
        ApiKey::LeaveGroup => LeaveGroupRequest::default().into(),
        ApiKey::SyncGroup => SyncGroupRequest::default().into(),
        ApiKey::DescribeGroups => DescribeGroupsRequest::default().into(),
        ApiKey::ListGroups => ListGroupsRequest::default().into(),
        ApiKey::SaslHandshake => SaslHandshakeRequest::default().into(),
        ApiKey::ApiVersions => ApiVersionsRequest::default().into(),
        ApiKey::CreateTopics => CreateTopicsRequest::default().into(),
        ApiKey::DeleteTopics => DeleteTopicsRequest::default().into(),
        ApiKey::DeleteRecords => DeleteRecordsRequest::default().into(),
        ApiKey::InitProducerId => InitProducerIdRequest::default().into(),
        ApiKey::OffsetForLeaderEpoch => OffsetForLeaderEpochRequest::default().into(),
        ApiKey::AddPartitionsToTxn => AddPartitionsToTxnRequest::default().into(),
        ApiKey::AddOffsetsToTxn => AddOffsetsToTxnRequest::default().into(),
        ApiKey::EndTxn => EndTxnRequest::default().into(),
        ApiKey::WriteTxnMarkers => WriteTxnMarkersRequest::default().into(),
        ApiKey::TxnOffsetCommit => TxnOffsetCommitRequest::default().into(),
        ApiKey::DescribeAcls => DescribeAclsRequest::default().into(),
        ApiKey::CreateAcls => CreateAclsRequest::default().into(),
        ApiKey::DeleteAcls => DeleteAclsRequest::default().into(),
        ApiKey::DescribeConfigs => DescribeConfigsRequest::default().into(),
        ApiKey::AlterConfigs => AlterConfigsRequest::default().into(),
        ApiKey::DescribeLogDirs => DescribeLogDirsRequest::default().into(),
        ApiKey::SaslAuthenticate => SaslAuthenticateRequest::default().into(),
        ApiKey::CreatePartitions => CreatePartitionsRequest::default().into(),
        ApiKey::DeleteGroups => DeleteGroupsRequest::default().into(),
        ApiKey::ElectLeaders => ElectLeadersRequest::default().into(),
        ApiKey::IncrementalAlterConfigs => IncrementalAlterConfigsRequest::default().into(),
        ApiKey::AlterPartitionReassignments => AlterPartitionReassignmentsRequest::default().into(),
        ApiKey::ListPartitionReassignments => ListPartitionReassignmentsRequest::default().into(),
        ApiKey::OffsetDelete => OffsetDeleteRequest::default().into(),
        ApiKey::DescribeUserScramCredentials => {
            DescribeUserScramCredentialsRequest::default().into()
        }
        ApiKey::AlterUserScramCredentials => AlterUserScramCredentialsRequest::default().into(),
        ApiKey::DescribeCluster => DescribeClusterRequest::default().into(),
        ApiKey::DescribeProducers => DescribeProducersRequest::default().into(),
        ApiKey::DescribeTransactions => DescribeTransactionsRequest::default().into(),
        ApiKey::ListTransactions => ListTransactionsRequest::default().into(),
        ApiKey::ConsumerGroupHeartbeat => ConsumerGroupHeartbeatRequest::default().into(),
        ApiKey::ConsumerGroupDescribe => ConsumerGroupDescribeRequest::default().into(),
        ApiKey::DescribeTopicPartitions => DescribeTopicPartitionsRequest::default().into(),
        other => panic!("{other:?} is not covered"),
    }
}

fn key(k: i16) -> ApiKey {
    ApiKey::try_from(k).expect("covered keys are known to the crate")
}

/// The brief's list, spelled out here independently of the guard's table.
const EXPECTED: &[(i16, i16, i16)] = &[
    (0, 3, 11),
    (1, 4, 16),
    (2, 1, 9),
    (3, 0, 12),
    (8, 2, 9),
    (9, 1, 9),
    (10, 0, 6),
    (11, 0, 9),
    (12, 0, 4),
    (13, 0, 5),
    (14, 0, 5),
    (15, 0, 5),
    (16, 0, 5),
    (17, 0, 1),
    (18, 0, 4),
    (19, 2, 7),
    (20, 1, 6),
    (21, 0, 2),
    (22, 0, 5),
    (23, 2, 4),
    (24, 0, 3),
    (25, 0, 3),
    (26, 0, 3),
    (27, 1, 1),
    (28, 0, 3),
    (29, 1, 3),
    (30, 1, 3),
    (31, 1, 3),
    (32, 1, 4),
    (33, 0, 2),
    (35, 1, 4),
    (36, 0, 2),
    (37, 0, 3),
    (42, 0, 2),
    (43, 0, 2),
    (44, 0, 1),
    (45, 0, 1),
    (46, 0, 0),
    (47, 0, 0),
    (50, 0, 0),
    (51, 0, 0),
    (60, 0, 1),
    (61, 0, 0),
    (65, 0, 0),
    (66, 0, 1),
    (68, 0, 1),
    (69, 0, 1),
    (75, 0, 0),
];

#[test]
fn covers_exactly_the_served_versions() {
    let expected: Vec<(i16, i16)> = EXPECTED
        .iter()
        .flat_map(|&(k, lo, hi)| (lo..=hi).map(move |v| (k, v)))
        .collect();
    assert_eq!(testing::covered(), expected);
    for k in -1..=100i16 {
        for v in -1..=20i16 {
            assert_eq!(covers(k, v), expected.contains(&(k, v)), "covers({k}, {v})");
        }
    }
    assert!(
        check_request(27, 0, &[]).is_err(),
        "WriteTxnMarkers is not served"
    );
    assert!(
        check_request(3, 13, &[0, 0]).is_err(),
        "Metadata v13 is not served"
    );
}

#[test]
fn default_requests_round_trip_at_every_version() {
    for (k, v) in testing::covered() {
        roundtrip(key(k), v, &default_request(key(k)));
    }
}

#[test]
fn generated_requests_decode_consume_everything_and_reencode_identically() {
    for (k, v) in testing::covered() {
        for seed in 0..200u64 {
            let body = Bytes::from(testing::sample_body(k, v, seed).unwrap());
            check_request(k, v, &body)
                .unwrap_or_else(|e| panic!("{:?} v{v} seed {seed}: refused: {e}", key(k)));
            let mut rest = body.clone();
            let decoded = RequestKind::decode(key(k), &mut rest, v).unwrap_or_else(|e| {
                panic!(
                    "{:?} v{v} seed {seed}: crate decode failed: {e:#}\n{body:02x?}",
                    key(k)
                )
            });
            assert!(
                rest.is_empty(),
                "{:?} v{v} seed {seed}: crate left {} bytes: the table has a field the crate lacks",
                key(k),
                rest.len()
            );
            // The crate omits a known tagged field whose value equals its default, so the
            // re-encoding may be shorter than the sample, never different otherwise.
            let mut again = BytesMut::new();
            decoded.encode(&mut again, v).unwrap();
            assert!(
                again.len() <= body.len(),
                "{:?} v{v} seed {seed}: re-encoding grew",
                key(k)
            );
            if again.len() == body.len() {
                assert_eq!(
                    &again[..],
                    &body[..],
                    "{:?} v{v} seed {seed}: re-encoded differently",
                    key(k)
                );
            }
            roundtrip(key(k), v, &decoded);
        }
    }
}

fn s(x: &str) -> StrBytes {
    StrBytes::from_string(x.to_owned())
}

fn topic(x: &str) -> TopicName {
    TopicName(s(x))
}

fn unknown_tags() -> BTreeMap<i32, Bytes> {
    BTreeMap::from([
        (7, Bytes::from_static(b"")),
        (90, Bytes::from_static(b"\x01\x02\x03")),
    ])
}

/// Runs `build(version)` through the round trip at every covered version of `k`.
fn each_version(k: ApiKey, build: impl Fn(i16) -> RequestKind) {
    let versions: Vec<i16> = testing::covered()
        .into_iter()
        .filter(|&(kk, _)| kk == k as i16)
        .map(|(_, v)| v)
        .collect();
    assert!(!versions.is_empty());
    for v in versions {
        roundtrip(k, v, &build(v));
    }
}

fn flexible(k: ApiKey, v: i16) -> bool {
    k.request_header_version(v) >= 2
}

#[test]
fn populated_metadata_round_trips() {
    for topics in [
        None,
        Some(vec![]),
        Some(vec![
            MetadataRequestTopic::default().with_name(Some(topic("a"))),
            MetadataRequestTopic::default().with_name(Some(topic(""))),
            MetadataRequestTopic::default().with_name(Some(topic("orders-v2"))),
        ]),
    ] {
        each_version(ApiKey::Metadata, |v| {
            let topics = if v == 0 {
                topics.clone().or(Some(vec![]))
            } else {
                topics.clone()
            };
            let mut r = MetadataRequest::default()
                .with_topics(topics)
                .with_allow_auto_topic_creation(v < 4 || v % 2 == 0)
                .with_include_topic_authorized_operations(v >= 8);
            if flexible(ApiKey::Metadata, v) {
                r = r.with_unknown_tagged_fields(unknown_tags());
            }
            r.into()
        });
    }
}

#[test]
fn populated_produce_round_trips() {
    each_version(ApiKey::Produce, |v| {
        let partition = |i: i32, records: Option<Bytes>| {
            let p = PartitionProduceData::default()
                .with_index(i)
                .with_records(records);
            if flexible(ApiKey::Produce, v) {
                p.with_unknown_tagged_fields(unknown_tags())
            } else {
                p
            }
        };
        ProduceRequest::default()
            .with_transactional_id(if v % 2 == 0 {
                Some(TransactionalId(s("tx")))
            } else {
                None
            })
            .with_acks(-1)
            .with_timeout_ms(30_000)
            .with_topic_data(vec![
                TopicProduceData::default()
                    .with_name(topic("a"))
                    .with_partition_data(vec![
                        partition(0, Some(Bytes::from_static(&[0xde, 0xad, 0xbe, 0xef]))),
                        partition(1, None),
                        partition(2, Some(Bytes::new())),
                    ]),
                TopicProduceData::default().with_name(topic("b")),
            ])
            .into()
    });
}

#[test]
fn populated_fetch_round_trips() {
    each_version(ApiKey::Fetch, |v| {
        let partition = |i: i32| {
            let mut p = FetchPartition::default()
                .with_partition(i)
                .with_fetch_offset(1000 + i64::from(i))
                .with_partition_max_bytes(1 << 20);
            if v >= 9 {
                p = p.with_current_leader_epoch(3);
            }
            if v >= 5 {
                p = p.with_log_start_offset(7);
            }
            if v >= 12 {
                p = p.with_last_fetched_epoch(2);
            }
            p
        };
        let t = |name: &str, id: u128, n: i32| {
            let t = FetchTopic::default().with_partitions((0..n).map(partition).collect());
            if v >= 13 {
                t.with_topic_id(uuid::Uuid::from_u128(id))
            } else {
                t.with_topic(topic(name))
            }
        };
        let mut r = FetchRequest::default()
            .with_max_wait_ms(500)
            .with_min_bytes(1)
            .with_max_bytes(50 << 20)
            .with_isolation_level(1)
            .with_topics(vec![t("a", 1, 3), t("b", 2, 0), t("c", 3, 1)]);
        if v <= 14 {
            r = r.with_replica_id(BrokerId(-1));
        } else {
            r = r.with_replica_state(
                ReplicaState::default()
                    .with_replica_id(BrokerId(2))
                    .with_replica_epoch(9),
            );
        }
        if v >= 7 {
            r = r
                .with_session_id(17)
                .with_session_epoch(4)
                .with_forgotten_topics_data(vec![
                    ForgottenTopic::default()
                        .with_partitions(vec![1, 2, 3])
                        .with_topic(if v < 13 {
                            topic("old")
                        } else {
                            TopicName::default()
                        })
                        .with_topic_id(if v >= 13 {
                            uuid::Uuid::from_u128(9)
                        } else {
                            uuid::Uuid::nil()
                        }),
                    ForgottenTopic::default(),
                ]);
        }
        if v >= 11 {
            r = r.with_rack_id(s("rack-1"));
        }
        if v >= 12 {
            r = r
                .with_cluster_id(Some(s("cluster")))
                .with_unknown_tagged_fields(unknown_tags());
        }
        r.into()
    });
}

#[test]
fn populated_create_topics_round_trips() {
    each_version(ApiKey::CreateTopics, |v| {
        CreateTopicsRequest::default()
            .with_topics(vec![
                CreatableTopic::default()
                    .with_name(topic("a"))
                    .with_num_partitions(-1)
                    .with_replication_factor(-1)
                    .with_assignments(vec![
                        CreatableReplicaAssignment::default()
                            .with_partition_index(0)
                            .with_broker_ids(vec![BrokerId(1), BrokerId(2), BrokerId(3)]),
                        CreatableReplicaAssignment::default().with_partition_index(1),
                    ])
                    .with_configs(vec![
                        CreatableTopicConfig::default()
                            .with_name(s("cleanup.policy"))
                            .with_value(Some(s("compact"))),
                        CreatableTopicConfig::default()
                            .with_name(s("x"))
                            .with_value(None),
                    ]),
                CreatableTopic::default()
                    .with_name(topic("b"))
                    .with_num_partitions(3),
            ])
            .with_timeout_ms(1000)
            .with_validate_only(v >= 1)
            .into()
    });
}

#[test]
fn populated_api_versions_and_describe_configs_round_trip() {
    each_version(ApiKey::ApiVersions, |v| {
        let r = ApiVersionsRequest::default();
        if v >= 3 {
            r.with_client_software_name(s("oxka-test"))
                .with_client_software_version(s("1.0"))
                .into()
        } else {
            r.into()
        }
    });
    each_version(ApiKey::DescribeConfigs, |v| {
        DescribeConfigsRequest::default()
            .with_resources(vec![
                DescribeConfigsResource::default()
                    .with_resource_type(2)
                    .with_resource_name(s("a"))
                    .with_configuration_keys(Some(vec![s("retention.ms"), s("")])),
                DescribeConfigsResource::default()
                    .with_resource_type(4)
                    .with_resource_name(s("1"))
                    .with_configuration_keys(None),
            ])
            .with_include_synonyms(v >= 1)
            .with_include_documentation(v >= 3)
            .into()
    });
}

#[test]
fn populated_describe_topic_partitions_round_trips() {
    for cursor in [
        None,
        Some(
            Cursor::default()
                .with_topic_name(topic("b"))
                .with_partition_index(4),
        ),
    ] {
        each_version(ApiKey::DescribeTopicPartitions, |_| {
            DescribeTopicPartitionsRequest::default()
                .with_topics(vec![
                    TopicRequest::default().with_name(topic("a")),
                    TopicRequest::default().with_name(topic("b")),
                ])
                .with_response_partition_limit(2000)
                .with_cursor(cursor.clone())
                .into()
        });
    }
}
