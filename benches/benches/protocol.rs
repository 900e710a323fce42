//! Request/response codec cost with the kafka-protocol crate, as the broker uses it:
//! a Produce request (v9) carrying one 16 KiB record batch, and a Metadata response (v12) for
//! 100 topics of 3 partitions each. Decoding goes through `oxka_protocol::guard` (the
//! allocation guard the broker runs before kafka-protocol) and, for comparison, straight
//! through kafka-protocol; encoding goes through `oxka_protocol::codec::encode_response`.
//!
//! Run: `CARGO_TARGET_DIR=/work/target-bench cargo bench -p oxka-benches --bench protocol`

use bytes::{Bytes, BytesMut};
use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use kafka_protocol::messages::metadata_response::{
    MetadataResponseBroker, MetadataResponsePartition, MetadataResponseTopic,
};
use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use kafka_protocol::messages::{
    ApiKey, BrokerId, MetadataResponse, ProduceRequest, ResponseKind, TopicName,
};
use kafka_protocol::protocol::{Decodable, Encodable, StrBytes};
use oxka_benches::{record_batch, records_per_batch};

const PRODUCE_VERSION: i16 = 9;
const METADATA_VERSION: i16 = 12;

fn produce_request() -> ProduceRequest {
    let batch = record_batch(0, records_per_batch(16 << 10, 100), 100, 1_700_000_000_000);
    ProduceRequest::default()
        .with_acks(1)
        .with_timeout_ms(30_000)
        .with_topic_data(vec![TopicProduceData::default()
            .with_name(TopicName(StrBytes::from_static_str("bench-topic")))
            .with_partition_data(vec![PartitionProduceData::default()
                .with_index(0)
                .with_records(Some(Bytes::from(batch)))])])
}

fn metadata_response() -> MetadataResponse {
    let topics = (0..100)
        .map(|t| {
            MetadataResponseTopic::default()
                .with_name(Some(TopicName(StrBytes::from_string(format!(
                    "bench-topic-{t:03}"
                )))))
                .with_partitions(
                    (0..3)
                        .map(|p| {
                            MetadataResponsePartition::default()
                                .with_partition_index(p)
                                .with_leader_id(BrokerId(1))
                                .with_leader_epoch(0)
                                .with_replica_nodes(vec![BrokerId(1)])
                                .with_isr_nodes(vec![BrokerId(1)])
                        })
                        .collect(),
                )
        })
        .collect();
    MetadataResponse::default()
        .with_brokers(vec![MetadataResponseBroker::default()
            .with_node_id(BrokerId(1))
            .with_host(StrBytes::from_static_str("127.0.0.1"))
            .with_port(9092)])
        .with_cluster_id(Some(StrBytes::from_static_str("oxka-bench-cluster")))
        .with_controller_id(BrokerId(1))
        .with_topics(topics)
}

fn encode<M: Encodable>(m: &M, version: i16) -> Bytes {
    let mut buf = BytesMut::with_capacity(m.compute_size(version).expect("size"));
    m.encode(&mut buf, version).expect("encode");
    buf.freeze()
}

fn produce(c: &mut Criterion) {
    let req = produce_request();
    let body = encode(&req, PRODUCE_VERSION);
    let mut group = c.benchmark_group("produce_request_16KiB");
    group.throughput(Throughput::Bytes(body.len() as u64));
    group.bench_function("encode", |b| b.iter(|| encode(&req, PRODUCE_VERSION)));
    group.bench_function("decode_kafka_protocol", |b| {
        b.iter(|| {
            let mut buf = body.clone();
            ProduceRequest::decode(&mut buf, PRODUCE_VERSION).expect("decode")
        })
    });
    group.bench_function("guard_check_only", |b| {
        b.iter(|| {
            oxka_protocol::guard::check_request(ApiKey::Produce as i16, PRODUCE_VERSION, &body)
                .expect("guard")
        })
    });
    group.bench_function("decode_guarded", |b| {
        b.iter(|| {
            oxka_protocol::guard::decode_request_body(
                ApiKey::Produce as i16,
                PRODUCE_VERSION,
                body.clone(),
            )
            .expect("decode")
        })
    });
    group.finish();
}

fn metadata(c: &mut Criterion) {
    let resp = metadata_response();
    let body = encode(&resp, METADATA_VERSION);
    let kind = ResponseKind::Metadata(resp.clone());
    let mut group = c.benchmark_group("metadata_response_100_topics");
    group.throughput(Throughput::Bytes(body.len() as u64));
    group.bench_function("encode_response_frame", |b| {
        b.iter(|| {
            oxka_protocol::codec::encode_response(ApiKey::Metadata, METADATA_VERSION, 7, &kind)
                .expect("encode")
        })
    });
    group.bench_function("build_and_encode", |b| {
        b.iter(|| {
            let kind = ResponseKind::Metadata(metadata_response());
            oxka_protocol::codec::encode_response(ApiKey::Metadata, METADATA_VERSION, 7, &kind)
                .expect("encode")
        })
    });
    group.bench_function("decode", |b| {
        b.iter(|| {
            let mut buf = body.clone();
            MetadataResponse::decode(&mut buf, METADATA_VERSION).expect("decode")
        })
    });
    group.finish();
}

criterion_group!(benches, produce, metadata);
criterion_main!(benches);
