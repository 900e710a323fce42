"""Record timestamp validation (message.timestamp.before/after.max.ms, Kafka 4 defaults) and
the flush policy keys, with confluent-kafka."""
import time

from confluent_kafka import KafkaError

from kutil import consume, create_topic, producer, unique, watermarks

HOUR_MS = 3_600_000


def produce_one(b, topic, timestamp):
    p = producer(b)
    result = {}
    p.produce(topic, value=b"v", partition=0, timestamp=timestamp,
              on_delivery=lambda err, msg: result.update(err=err, msg=msg))
    assert p.flush(20) == 0
    return result["err"], result["msg"]


def test_future_timestamps_beyond_after_max_ms_are_refused(broker):
    t = create_topic(broker, unique("ts"))
    now = int(time.time() * 1000)
    err, _ = produce_one(broker, t, now + 2 * HOUR_MS)
    assert err is not None and err.code() == KafkaError.INVALID_TIMESTAMP
    assert watermarks(broker, t) == (0, 0)
    err, msg = produce_one(broker, t, now + HOUR_MS // 2)
    assert err is None and msg.offset() == 0


def test_before_max_ms_refuses_old_timestamps_when_set(broker):
    t = create_topic(broker, unique("tsold"), config={"message.timestamp.before.max.ms": "60000",
                                                      "retention.ms": "-1"})
    now = int(time.time() * 1000)
    err, _ = produce_one(broker, t, now - HOUR_MS)
    assert err is not None and err.code() == KafkaError.INVALID_TIMESTAMP
    err, msg = produce_one(broker, t, now - 1000)
    assert err is None and msg.offset() == 0


def test_log_append_time_topics_take_any_client_timestamp(broker):
    t = create_topic(broker, unique("tslat"), config={"message.timestamp.type": "LogAppendTime"})
    before = int(time.time() * 1000)
    err, msg = produce_one(broker, t, before + 10 * HOUR_MS)
    assert err is None
    m = consume(broker, t, 1)[0]
    ts_type, ts = m.timestamp()
    assert ts_type == 2 and before - 1000 <= ts <= int(time.time() * 1000) + 1000


def test_flush_messages_topic_acknowledges_and_serves(broker):
    t = create_topic(broker, unique("flush"), config={"flush.messages": "1", "flush.ms": "100"})
    p = producer(broker, **{"acks": "all"})
    for i in range(50):
        p.produce(t, value=b"%d" % i, partition=0)
    assert p.flush(20) == 0
    assert watermarks(broker, t) == (0, 50)
    assert [m.value() for m in consume(broker, t, 50)] == [b"%d" % i for i in range(50)]
