"""Issue 2 point 3: auto-creation of topics on Produce and Metadata when
auto.create.topics.enable allows it, and UNKNOWN_TOPIC_OR_PARTITION when it does not."""
import pytest
from confluent_kafka import KafkaError, KafkaException

import kwire
from kutil import admin, consume, kcat, kp_producer, produce, unique, wait_until

BROKER_OVERRIDES = {"num.partitions": "3"}


def raw_metadata(b, topic, allow):
    from kafka.protocol.metadata import MetadataRequest
    s = kwire.connect(b)
    try:
        r = kwire.request(s, MetadataRequest, 9, topics=[MetadataRequest.MetadataRequestTopic(name=topic)],
                          allow_auto_topic_creation=allow, include_topic_authorized_operations=False)
        return r.topics[0].error_code
    finally:
        s.close()


def partitions_of(b, t):
    md = admin(b).list_topics(timeout=10)
    tm = md.topics.get(t)
    if tm is None or tm.error is not None:
        return None
    return len(tm.partitions)


def test_autocreate_on_produce_confluent(broker):
    t = unique("auto")
    dr = produce(broker, t, [b"a", b"b"], partition=-1, **{"partitioner": "murmur2"})
    assert len(dr) == 2
    assert wait_until(lambda: partitions_of(broker, t), msg="auto-created topic") == 3


def test_autocreate_on_produce_kafka_python(broker):
    t = unique("auto")
    p = kp_producer(broker, acks=1, max_block_ms=15000)
    md = p.send(t, b"x", partition=0).get(timeout=20)
    p.close()
    assert md.offset == 0
    assert partitions_of(broker, t) == 3


def test_autocreate_on_metadata(broker):
    t = unique("auto")
    err = raw_metadata(broker, t, allow=True)
    assert err in (0, KafkaError.LEADER_NOT_AVAILABLE)
    assert wait_until(lambda: raw_metadata(broker, t, allow=False) == 0, msg="topic exists")
    assert partitions_of(broker, t) == 3


def test_metadata_without_allow_does_not_create(broker):
    t = unique("auto")
    assert raw_metadata(broker, t, allow=False) == KafkaError.UNKNOWN_TOPIC_OR_PART
    assert partitions_of(broker, t) is None


def test_kcat_autocreate(broker):
    t = unique("auto")
    kcat(broker, "-P", "-t", t, "-p", "0", input=b"one\ntwo\n")
    assert [m.value() for m in consume(broker, t, 2)] == [b"one", b"two"]


def test_autocreate_invalid_name(broker):
    assert raw_metadata(broker, "bad name", allow=True) == KafkaError.TOPIC_EXCEPTION


# ------------------------------------------------------------------ disabled
@pytest.fixture(scope="module")
def noauto(module_tmp, oxka_bin):
    from conftest import Broker
    b = Broker(module_tmp, overrides={"auto.create.topics.enable": "false"}, name="noauto")
    b.start()
    yield b
    b.kill()


def test_disabled_metadata(noauto):
    t = unique("noauto")
    assert raw_metadata(noauto, t, allow=True) == KafkaError.UNKNOWN_TOPIC_OR_PART
    assert partitions_of(noauto, t) is None


def test_disabled_produce_raw(noauto):
    from test_produce_fetch import raw_produce
    t = unique("noauto")
    err, _ = raw_produce(noauto, t, kwire.record_batch([b"x"]))
    assert err == KafkaError.UNKNOWN_TOPIC_OR_PART
    assert partitions_of(noauto, t) is None


def test_disabled_produce_confluent(noauto):
    t = unique("noauto")
    with pytest.raises(KafkaException) as ei:
        produce(noauto, t, [b"x"], **{"message.timeout.ms": 5000, "topic.metadata.propagation.max.ms": 1000})
    assert ei.value.args[0].code() in (KafkaError.UNKNOWN_TOPIC_OR_PART, KafkaError._UNKNOWN_TOPIC,
                                       KafkaError._MSG_TIMED_OUT)
    assert partitions_of(noauto, t) is None


def test_disabled_explicit_create_still_works(noauto):
    from kutil import create_topic
    t = create_topic(noauto, unique("noauto"))
    assert partitions_of(noauto, t) == 1


def test_produce_request_does_not_autocreate(broker):
    """Kafka creates topics from Metadata, never from a Produce request itself."""
    from test_produce_fetch import raw_produce
    t = unique("noprodauto")
    err, _ = raw_produce(broker, t, kwire.record_batch([b"x"]))
    assert err == KafkaError.UNKNOWN_TOPIC_OR_PART
    assert partitions_of(broker, t) is None
