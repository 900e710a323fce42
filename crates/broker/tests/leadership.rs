//! A broker serves only the partitions it leads: node 1 runs here, node 2 exists only in the
//! metadata image (registered, and leading some partitions), as a cluster looks from node 1.

use std::collections::BTreeMap;
use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use oxka_broker::group::coordinator::partition_for;
use oxka_broker::{Broker, BrokerConfig, KafkaPrincipal, Reply, RequestContext};
use oxka_metadata::{BrokerEndpoint, MetadataRecord, Uuid};
use oxka_protocol::kafka_protocol;

use kafka_protocol::messages::delete_records_request::{
    DeleteRecordsPartition, DeleteRecordsTopic,
};
use kafka_protocol::messages::describe_producers_request::TopicRequest;
use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
use kafka_protocol::messages::join_group_request::JoinGroupRequestProtocol;
use kafka_protocol::messages::list_offsets_request::{ListOffsetsPartition, ListOffsetsTopic};
use kafka_protocol::messages::offset_commit_request::{
    OffsetCommitRequestPartition, OffsetCommitRequestTopic,
};
use kafka_protocol::messages::offset_fetch_request::OffsetFetchRequestTopic;
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
const NOT_COORDINATOR: i16 = 16;
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

/// A group or transactional id whose `__consumer_offsets` / `__transaction_state` partition
/// is `partition` (both topics have OFFSETS_PARTITIONS partitions here).
fn key_on(partition: i32) -> String {
    (0..)
        .map(|i| format!("key-{i}"))
        .find(|g| partition_for(g, OFFSETS_PARTITIONS) == partition)
        .unwrap()
}

async fn find_coordinator(broker: &Arc<Broker>, group: &str) -> (i16, i32, String, i32) {
    let mut request = FindCoordinatorRequest::default();
    request.key_type = 0;
    request.coordinator_keys = vec![s(group)];
    let ResponseKind::FindCoordinator(response) =
        call(broker, 4, RequestKind::FindCoordinator(request)).await
    else {
        panic!()
    };
    let c = &response.coordinators[0];
    (c.error_code, c.node_id.0, c.host.to_string(), c.port)
}

async fn commit_offset(broker: &Arc<Broker>, group: &str, offset: i64) -> i16 {
    let mut request = OffsetCommitRequest::default();
    request.group_id = GroupId(s(group));
    request.generation_id_or_member_epoch = -1;
    request.member_id = s("");
    let mut topic = OffsetCommitRequestTopic::default();
    topic.name = TopicName(s("t"));
    let mut p = OffsetCommitRequestPartition::default();
    p.partition_index = 0;
    p.committed_offset = offset;
    p.committed_leader_epoch = -1;
    topic.partitions.push(p);
    request.topics.push(topic);
    let ResponseKind::OffsetCommit(response) =
        call(broker, 8, RequestKind::OffsetCommit(request)).await
    else {
        panic!()
    };
    response.topics[0].partitions[0].error_code
}

/// (error, committed offset of t-0).
async fn fetch_offset(broker: &Arc<Broker>, group: &str) -> (i16, i64) {
    let mut request = OffsetFetchRequest::default();
    request.group_id = GroupId(s(group));
    let mut topic = OffsetFetchRequestTopic::default();
    topic.name = TopicName(s("t"));
    topic.partition_indexes = vec![0];
    request.topics = Some(vec![topic]);
    let ResponseKind::OffsetFetch(response) =
        call(broker, 7, RequestKind::OffsetFetch(request)).await
    else {
        panic!()
    };
    let offset = response
        .topics
        .first()
        .and_then(|t| t.partitions.first())
        .map_or(-1, |p| p.committed_offset);
    (response.error_code, offset)
}

async fn list_groups(broker: &Arc<Broker>) -> Vec<String> {
    for _ in 0..100 {
        let ResponseKind::ListGroups(response) = call(
            broker,
            4,
            RequestKind::ListGroups(ListGroupsRequest::default()),
        )
        .await
        else {
            panic!()
        };
        if response.error_code == 0 {
            return response
                .groups
                .iter()
                .map(|g| g.group_id.to_string())
                .collect();
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    panic!("ListGroups never loaded")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn groups_are_coordinated_by_the_leader_of_their_offsets_partition() {
    let node = open_node();
    let broker = &node.broker;
    create_split_topic(broker);
    let local = key_on(0);
    let remote = key_on(1);
    // The first FindCoordinator creates __consumer_offsets, every partition led by node 1.
    assert_eq!(
        find_coordinator(broker, &local).await,
        (0, 1, "localhost".into(), 9092)
    );
    let offsets = broker.image().topic("__consumer_offsets").unwrap().topic_id;
    broker
        .propose_for_test(vec![partition_record(offsets, 1, 2, 1)])
        .unwrap();

    assert_eq!(
        find_coordinator(broker, &remote).await,
        (0, 2, "node2.example".into(), 9093)
    );
    let mut join = JoinGroupRequest::default();
    join.group_id = GroupId(s(&remote));
    join.session_timeout_ms = 10_000;
    join.rebalance_timeout_ms = 10_000;
    join.member_id = s("");
    join.protocol_type = s("consumer");
    let mut protocol = JoinGroupRequestProtocol::default();
    protocol.name = s("range");
    join.protocols.push(protocol);
    let ResponseKind::JoinGroup(response) = call(broker, 5, RequestKind::JoinGroup(join)).await
    else {
        panic!()
    };
    assert_eq!(response.error_code, NOT_COORDINATOR);
    assert_eq!(commit_offset(broker, &remote, 3).await, NOT_COORDINATOR);
    assert_eq!(fetch_offset(broker, &remote).await.0, NOT_COORDINATOR);

    // The group of a partition led here is served as before.
    assert_eq!(commit_offset(broker, &local, 4).await, 0);
    assert_eq!(fetch_offset(broker, &local).await, (0, 4));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn moving_an_offsets_partition_unloads_and_reloads_its_groups() {
    let node = open_node();
    let broker = &node.broker;
    create_split_topic(broker);
    let moved = key_on(2);
    let kept = key_on(0);
    find_coordinator(broker, &moved).await;
    assert_eq!(commit_offset(broker, &moved, 7).await, 0);
    assert_eq!(commit_offset(broker, &kept, 8).await, 0);
    assert_eq!(list_groups(broker).await, {
        let mut v = vec![kept.clone(), moved.clone()];
        v.sort();
        v
    });

    // Node 2 takes over partition 2 (node 1 stays a replica, so it keeps the log): its
    // groups leave memory; the others stay.
    let offsets = broker.image().topic("__consumer_offsets").unwrap().topic_id;
    let mut moved_record = partition_record(offsets, 2, 2, 1);
    if let MetadataRecord::Partition { replicas, isr, .. } = &mut moved_record {
        *replicas = vec![2, 1];
        *isr = vec![2, 1];
    }
    broker.propose_for_test(vec![moved_record]).unwrap();
    assert_eq!(list_groups(broker).await, vec![kept.clone()]);
    assert_eq!(fetch_offset(broker, &moved).await.0, NOT_COORDINATOR);
    assert_eq!(fetch_offset(broker, &kept).await, (0, 8));

    // Leadership comes back: the group is read again from the partition's log.
    let mut back = partition_record(offsets, 2, 1, 2);
    if let MetadataRecord::Partition { replicas, isr, .. } = &mut back {
        *replicas = vec![1, 2];
        *isr = vec![1, 2];
    }
    broker.propose_for_test(vec![back]).unwrap();
    assert_eq!(fetch_offset(broker, &moved).await, (0, 7));
    assert!(list_groups(broker).await.contains(&moved));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transactional_ids_are_coordinated_by_the_leader_of_their_state_partition() {
    let node = open_node();
    let broker = &node.broker;
    let local = key_on(0);
    let remote = key_on(1);
    let find = |id: String| async move {
        let mut request = FindCoordinatorRequest::default();
        request.key_type = 1;
        request.coordinator_keys = vec![s(&id)];
        let ResponseKind::FindCoordinator(response) =
            call(broker, 4, RequestKind::FindCoordinator(request)).await
        else {
            panic!()
        };
        let c = &response.coordinators[0];
        (c.error_code, c.node_id.0, c.host.to_string(), c.port)
    };
    // The first FindCoordinator creates __transaction_state, its partitions spread over the
    // two registered brokers; the test then gives node 1 all of them.
    assert_eq!(find(remote.clone()).await.0, 0);
    let state = broker
        .image()
        .topic("__transaction_state")
        .unwrap()
        .topic_id;
    broker
        .propose_for_test((0..3).map(|p| partition_record(state, p, 1, 1)).collect())
        .unwrap();
    assert_eq!(find(remote.clone()).await, (0, 1, "localhost".into(), 9092));
    broker
        .propose_for_test(vec![partition_record(state, 1, 2, 2)])
        .unwrap();
    assert_eq!(
        find(remote.clone()).await,
        (0, 2, "node2.example".into(), 9093)
    );

    let init = |id: String| async move {
        let mut request = InitProducerIdRequest::default();
        request.transactional_id = Some(TransactionalId(s(&id)));
        request.transaction_timeout_ms = 60_000;
        request.producer_id = ProducerId(-1);
        request.producer_epoch = -1;
        let ResponseKind::InitProducerId(response) =
            call(broker, 4, RequestKind::InitProducerId(request)).await
        else {
            panic!()
        };
        response.error_code
    };
    assert_eq!(init(remote).await, NOT_COORDINATOR);
    // The partition led here was loaded when its topic was created (before FindCoordinator
    // answered), so the id is served at once.
    assert_eq!(init(local).await, 0);
}
