//! A broker serves only the partitions it leads: node 1 runs here, node 2 exists only in the
//! metadata image (registered, and leading some partitions), as a cluster looks from node 1.

use std::collections::BTreeMap;
use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use oxka_broker::{Broker, BrokerConfig, KafkaPrincipal, Reply, RequestContext};
use oxka_metadata::{BrokerEndpoint, MetadataRecord, Uuid};
use oxka_protocol::kafka_protocol;

use kafka_protocol::messages::delete_records_request::{
    DeleteRecordsPartition, DeleteRecordsTopic,
};
use kafka_protocol::messages::describe_producers_request::TopicRequest;
use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
use kafka_protocol::messages::list_offsets_request::{ListOffsetsPartition, ListOffsetsTopic};
use kafka_protocol::messages::offset_for_leader_epoch_request::{
    OffsetForLeaderPartition, OffsetForLeaderTopic,
};
use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use kafka_protocol::messages::*;
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::records::{
    Compression, Record, RecordBatchEncoder, RecordEncodeOptions, TimestampType,
};

const NOT_LEADER_OR_FOLLOWER: i16 = 6;
const UNKNOWN_TOPIC_OR_PARTITION: i16 = 3;
const OFFSETS_PARTITIONS: i32 = 3;

struct Node {
    broker: Arc<Broker>,
    _dir: tempfile::TempDir,
}

fn open_node() -> Node {
    let dir = tempfile::tempdir().unwrap();
    let props: BTreeMap<String, String> = [
        ("node.id", "1".to_owned()),
        ("log.dirs", dir.path().join("data").display().to_string()),
        (
            "metadata.log.dir",
            dir.path().join("meta").display().to_string(),
        ),
        ("listeners", "PLAINTEXT://localhost:9092".to_owned()),
        (
            "offsets.topic.num.partitions",
            OFFSETS_PARTITIONS.to_string(),
        ),
        ("transaction.state.log.num.partitions", "3".to_owned()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect();
    let config = BrokerConfig::from_properties(&props).unwrap();
    let broker = Broker::open(config).unwrap();
    broker
        .register_broker_for_test(
            2,
            vec![BrokerEndpoint {
                name: "PLAINTEXT".into(),
                host: "node2.example".into(),
                port: 9093,
            }],
        )
        .unwrap();
    Node { broker, _dir: dir }
}

fn ctx(api_version: i16) -> RequestContext {
    RequestContext {
        api_version,
        correlation_id: 1,
        client_id: Some("test".into()),
        listener_name: "PLAINTEXT".into(),
        client_host: "/127.0.0.1".into(),
        principal: KafkaPrincipal::anonymous(),
    }
}

async fn call(broker: &Arc<Broker>, version: i16, request: RequestKind) -> ResponseKind {
    match broker.handle(&ctx(version), request).await {
        Reply::Send(r) => r,
        other => panic!("no response: {other:?}"),
    }
}

fn s(v: &str) -> StrBytes {
    StrBytes::from_string(v.to_owned())
}

fn partition_record(topic_id: Uuid, partition: i32, leader: i32, epoch: i32) -> MetadataRecord {
    MetadataRecord::Partition {
        topic_id,
        partition,
        replicas: vec![leader],
        isr: vec![leader],
        leader,
        leader_epoch: epoch,
    }
}

/// Topic `t` with replica assignment `[[1], [2]]`: node 1 leads partition 0, node 2 leads
/// partition 1 at leader epoch 5.
fn create_split_topic(broker: &Broker) -> Uuid {
    let topic_id = Uuid::new_v4();
    broker
        .propose_for_test(vec![
            MetadataRecord::Topic {
                name: "t".into(),
                topic_id,
            },
            partition_record(topic_id, 0, 1, 0),
            partition_record(topic_id, 1, 2, 5),
        ])
        .unwrap();
    topic_id
}

fn batch() -> Bytes {
    let record = Record {
        transactional: false,
        control: false,
        delete_horizon: false,
        partition_leader_epoch: -1,
        producer_id: -1,
        producer_epoch: -1,
        timestamp_type: TimestampType::Creation,
        offset: 0,
        sequence: 0,
        timestamp: 1,
        key: None,
        value: Some(Bytes::from_static(b"v")),
        headers: Default::default(),
    };
    let mut buf = BytesMut::new();
    RecordBatchEncoder::encode(
        &mut buf,
        &[record],
        &RecordEncodeOptions {
            version: 2,
            compression: Compression::None,
        },
    )
    .unwrap();
    buf.freeze()
}

async fn produce(broker: &Arc<Broker>, version: i16, partitions: &[i32]) -> ProduceResponse {
    let mut request = ProduceRequest::default();
    request.acks = -1;
    request.timeout_ms = 1000;
    let mut topic = TopicProduceData::default();
    topic.name = TopicName(s("t"));
    for &p in partitions {
        let mut data = PartitionProduceData::default();
        data.index = p;
        data.records = Some(batch());
        topic.partition_data.push(data);
    }
    request.topic_data.push(topic);
    match call(broker, version, RequestKind::Produce(request)).await {
        ResponseKind::Produce(r) => r,
        other => panic!("{other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn produce_to_a_partition_led_elsewhere_is_not_leader_with_the_leaders_endpoint() {
    let node = open_node();
    let broker = &node.broker;
    create_split_topic(broker);

    let response = produce(broker, 11, &[0, 1, 7]).await;
    let parts = &response.responses[0].partition_responses;
    assert_eq!((parts[0].error_code, parts[0].base_offset), (0, 0));
    assert_eq!(parts[1].error_code, NOT_LEADER_OR_FOLLOWER);
    assert_eq!(parts[1].current_leader.leader_id.0, 2);
    assert_eq!(parts[1].current_leader.leader_epoch, 5);
    assert_eq!(parts[2].error_code, UNKNOWN_TOPIC_OR_PARTITION);
    assert_eq!(parts[2].current_leader.leader_id.0, -1);
    assert_eq!(response.node_endpoints.len(), 1);
    let endpoint = &response.node_endpoints[0];
    assert_eq!(
        (endpoint.node_id.0, endpoint.host.as_str(), endpoint.port),
        (2, "node2.example", 9093)
    );

    // Before KIP-951 (v9): the error alone.
    let response = produce(broker, 9, &[1]).await;
    assert_eq!(
        response.responses[0].partition_responses[0].error_code,
        NOT_LEADER_OR_FOLLOWER
    );
    assert!(response.node_endpoints.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fetch_and_offset_apis_answer_only_for_partitions_led_here() {
    let node = open_node();
    let broker = &node.broker;
    let topic_id = create_split_topic(broker);
    produce(broker, 11, &[0]).await;

    let mut request = FetchRequest::default();
    request.replica_id = BrokerId(-1);
    request.replica_state.replica_id = BrokerId(-1);
    request.max_bytes = 1 << 20;
    request.session_epoch = -1;
    let mut topic = FetchTopic::default();
    topic.topic_id = topic_id;
    for p in [0, 1] {
        let mut fp = FetchPartition::default();
        fp.partition = p;
        fp.current_leader_epoch = -1;
        fp.log_start_offset = -1;
        fp.partition_max_bytes = 1 << 20;
        topic.partitions.push(fp);
    }
    request.topics.push(topic);
    let ResponseKind::Fetch(response) = call(broker, 16, RequestKind::Fetch(request)).await else {
        panic!()
    };
    let parts = &response.responses[0].partitions;
    assert_eq!(parts[0].error_code, 0);
    assert_eq!(parts[0].high_watermark, 1);
    assert!(parts[0].records.as_ref().is_some_and(|r| !r.is_empty()));
    assert_eq!(parts[1].error_code, NOT_LEADER_OR_FOLLOWER);
    assert!(parts[1].records.as_ref().is_none_or(|r| r.is_empty()));
    assert_eq!(
        (
            parts[1].current_leader.leader_id.0,
            parts[1].current_leader.leader_epoch
        ),
        (2, 5)
    );
    assert_eq!(response.node_endpoints.len(), 1);
    assert_eq!(response.node_endpoints[0].host.as_str(), "node2.example");
    assert_eq!(response.node_endpoints[0].port, 9093);

    let mut request = ListOffsetsRequest::default();
    request.replica_id = BrokerId(-1);
    let mut topic = ListOffsetsTopic::default();
    topic.name = TopicName(s("t"));
    for p in [0, 1] {
        let mut lp = ListOffsetsPartition::default();
        lp.partition_index = p;
        lp.current_leader_epoch = -1;
        lp.timestamp = -1;
        topic.partitions.push(lp);
    }
    request.topics.push(topic);
    let ResponseKind::ListOffsets(response) =
        call(broker, 7, RequestKind::ListOffsets(request)).await
    else {
        panic!()
    };
    let parts = &response.topics[0].partitions;
    assert_eq!((parts[0].error_code, parts[0].offset), (0, 1));
    assert_eq!(parts[1].error_code, NOT_LEADER_OR_FOLLOWER);

    let mut request = OffsetForLeaderEpochRequest::default();
    request.replica_id = BrokerId(-1);
    let mut topic = OffsetForLeaderTopic::default();
    topic.topic = TopicName(s("t"));
    for p in [0, 1] {
        let mut ep = OffsetForLeaderPartition::default();
        ep.partition = p;
        ep.current_leader_epoch = -1;
        ep.leader_epoch = 0;
        topic.partitions.push(ep);
    }
    request.topics.push(topic);
    let ResponseKind::OffsetForLeaderEpoch(response) =
        call(broker, 4, RequestKind::OffsetForLeaderEpoch(request)).await
    else {
        panic!()
    };
    let parts = &response.topics[0].partitions;
    assert_eq!(parts[0].error_code, 0);
    assert_eq!(parts[1].error_code, NOT_LEADER_OR_FOLLOWER);

    let mut request = DeleteRecordsRequest::default();
    request.timeout_ms = 1000;
    let mut topic = DeleteRecordsTopic::default();
    topic.name = TopicName(s("t"));
    let mut dp = DeleteRecordsPartition::default();
    dp.partition_index = 1;
    dp.offset = 0;
    topic.partitions.push(dp);
    request.topics.push(topic);
    let ResponseKind::DeleteRecords(response) =
        call(broker, 2, RequestKind::DeleteRecords(request)).await
    else {
        panic!()
    };
    assert_eq!(
        response.topics[0].partitions[0].error_code,
        NOT_LEADER_OR_FOLLOWER
    );

    let mut request = DescribeProducersRequest::default();
    let mut topic = TopicRequest::default();
    topic.name = TopicName(s("t"));
    topic.partition_indexes = vec![0, 1];
    request.topics.push(topic);
    let ResponseKind::DescribeProducers(response) =
        call(broker, 0, RequestKind::DescribeProducers(request)).await
    else {
        panic!()
    };
    let parts = &response.topics[0].partitions;
    assert_eq!(parts[0].error_code, 0);
    assert_eq!(parts[1].error_code, NOT_LEADER_OR_FOLLOWER);
}
