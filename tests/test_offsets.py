"""Issue 2 point 3: ListOffsets earliest / latest / by timestamp / max timestamp, and
OffsetForLeaderEpoch, via confluent-kafka, kafka-python and raw requests."""
import pytest
from confluent_kafka import KafkaError, TopicPartition
from confluent_kafka.admin import OffsetSpec

import kwire
from kutil import admin, consumer, create_topic, kp_consumer, produce, unique

# timestamps per offset; several records per batch so lookups must look inside batches
TS = [1000, 2000, 3000, 4000, 9000, 5000, 6000, 7000, 8000, 8500]


@pytest.fixture(scope="module")
def ts_topic(broker):
    t = create_topic(broker, unique("ts"), config={"retention.ms": "-1"})  # ancient timestamps
    produce(broker, t, [{"value": b"v%d" % i, "timestamp": ts} for i, ts in enumerate(TS[:5])],
            **{"linger.ms": 100})
    produce(broker, t, [{"value": b"v%d" % i, "timestamp": ts} for i, ts in enumerate(TS[5:], 5)],
            **{"linger.ms": 100})
    return t


def list_offsets(b, t, spec, partition=0):
    a = admin(b)
    tp = TopicPartition(t, partition)
    return a.list_offsets({tp: spec}, request_timeout=15)[tp].result(15)


def test_earliest_latest(broker, ts_topic):
    assert list_offsets(broker, ts_topic, OffsetSpec.earliest()).offset == 0
    assert list_offsets(broker, ts_topic, OffsetSpec.latest()).offset == 10


def test_by_timestamp(broker, ts_topic):
    cases = {0: 0, 1000: 0, 1001: 1, 2500: 2, 4000: 3, 4001: 4, 5000: 4, 9000: 4, 8600: 4}
    for ts, off in cases.items():
        r = list_offsets(broker, ts_topic, OffsetSpec.for_timestamp(ts))
        assert r.offset == off, (ts, r.offset)
        assert r.timestamp == TS[off], (ts, r.timestamp)
    r = list_offsets(broker, ts_topic, OffsetSpec.for_timestamp(9001))
    assert r.offset == -1


def test_max_timestamp(broker, ts_topic):
    r = list_offsets(broker, ts_topic, OffsetSpec.max_timestamp())
    assert (r.offset, r.timestamp) == (4, 9000)


def test_empty_topic(broker):
    t = create_topic(broker, unique("empty"))
    assert list_offsets(broker, t, OffsetSpec.earliest()).offset == 0
    assert list_offsets(broker, t, OffsetSpec.latest()).offset == 0
    assert list_offsets(broker, t, OffsetSpec.for_timestamp(0)).offset == -1
    assert list_offsets(broker, t, OffsetSpec.max_timestamp()).offset == -1


def test_earliest_after_delete_records(broker):
    t = create_topic(broker, unique("dr"))
    produce(broker, t, [b"x"] * 8)
    a = admin(broker)
    list(a.delete_records([TopicPartition(t, 0, 5)], request_timeout=15).values())[0].result(15)
    assert list_offsets(broker, t, OffsetSpec.earliest()).offset == 5
    assert list_offsets(broker, t, OffsetSpec.latest()).offset == 8


def test_consumer_offsets_for_times(broker, ts_topic):
    c = consumer(broker)
    try:
        res = [c.offsets_for_times([TopicPartition(ts_topic, 0, ts)], timeout=10)[0] for ts in (2500, 9999)]
    finally:
        c.close()
    assert [r.offset for r in res] == [2, -1]
    c = consumer(broker)
    try:
        lo, hi = c.get_watermark_offsets(TopicPartition(ts_topic, 0), timeout=10)
    finally:
        c.close()
    assert (lo, hi) == (0, 10)


def test_kafka_python_offsets(broker, ts_topic):
    from kafka import TopicPartition as KTP
    c = kp_consumer(broker)
    try:
        tp = KTP(ts_topic, 0)
        assert c.beginning_offsets([tp]) == {tp: 0}
        assert c.end_offsets([tp]) == {tp: 10}
        r = c.offsets_for_times({tp: 4001})
        assert r[tp].offset == 4 and r[tp].timestamp == 9000
        assert c.offsets_for_times({tp: 10000})[tp] is None
    finally:
        c.close()


def raw_list_offsets(b, topic, ts, partition=0, version=7):
    from kafka.protocol.consumer import ListOffsetsRequest
    LT = ListOffsetsRequest.ListOffsetsTopic
    s = kwire.connect(b)
    try:
        r = kwire.request(s, ListOffsetsRequest, version, replica_id=-1, isolation_level=0, topics=[
            LT(name=topic, partitions=[LT.ListOffsetsPartition(partition_index=partition, timestamp=ts,
                                                               current_leader_epoch=-1)])])
        p = r.topics[0].partitions[0]
        return p.error_code, p.offset, p.timestamp
    finally:
        s.close()


def test_list_offsets_raw_all_specs(broker, ts_topic):
    assert raw_list_offsets(broker, ts_topic, -2)[:2] == (0, 0)    # earliest
    assert raw_list_offsets(broker, ts_topic, -1)[:2] == (0, 10)   # latest
    assert raw_list_offsets(broker, ts_topic, -3) == (0, 4, 9000)  # max timestamp (v7+)
    assert raw_list_offsets(broker, ts_topic, 3500) == (0, 3, 4000)
    assert raw_list_offsets(broker, ts_topic, -2, partition=3)[0] == KafkaError.UNKNOWN_TOPIC_OR_PART
    assert raw_list_offsets(broker, unique("missing"), -1)[0] == KafkaError.UNKNOWN_TOPIC_OR_PART


def test_offset_for_leader_epoch(broker, ts_topic):
    from kafka.protocol.consumer import OffsetForLeaderEpochRequest
    from kafka.protocol.metadata import MetadataRequest
    s = kwire.connect(broker)
    try:
        md = kwire.request(s, MetadataRequest, 9, topics=[MetadataRequest.MetadataRequestTopic(name=ts_topic)],
                           allow_auto_topic_creation=False, include_topic_authorized_operations=False)
        epoch = md.topics[0].partitions[0].leader_epoch
        assert epoch >= 0
        OT = OffsetForLeaderEpochRequest.OffsetForLeaderTopic
        r = kwire.request(s, OffsetForLeaderEpochRequest, 3, corr=2, replica_id=-1, topics=[
            OT(topic=ts_topic, partitions=[
                OT.OffsetForLeaderPartition(partition=0, current_leader_epoch=epoch, leader_epoch=epoch),
                OT.OffsetForLeaderPartition(partition=9, current_leader_epoch=-1, leader_epoch=epoch)])])
        p0, p9 = r.topics[0].partitions
        assert (p0.error_code, p0.leader_epoch, p0.end_offset) == (0, epoch, 10)
        assert p9.error_code == KafkaError.UNKNOWN_TOPIC_OR_PART
    finally:
        s.close()


def test_list_offsets_read_committed(broker, ts_topic):
    from kafka.protocol.consumer import ListOffsetsRequest
    LT = ListOffsetsRequest.ListOffsetsTopic
    s = kwire.connect(broker)
    try:
        r = kwire.request(s, ListOffsetsRequest, 5, replica_id=-1, isolation_level=1, topics=[
            LT(name=ts_topic, partitions=[LT.ListOffsetsPartition(partition_index=0, timestamp=-1,
                                                                  current_leader_epoch=-1)])])
        p = r.topics[0].partitions[0]
        assert (p.error_code, p.offset) == (0, 10)  # no transactions: LSO == high watermark
    finally:
        s.close()
