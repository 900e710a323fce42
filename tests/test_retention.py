"""Issue 2 point 5: segments roll by segment.bytes / segment.ms; whole segments older than
retention.ms or beyond retention.bytes are deleted and the log start offset advances."""
import time

import pytest
from confluent_kafka import KafkaError

from kutil import (consume, create_topic, data_files, produce, unique, wait_until, watermarks)
from test_admin import log_dir_sizes
from test_produce_fetch import raw_fetch

MiB = 1024 * 1024
BROKER_OVERRIDES = {"log.retention.check.interval.ms": "300"}


def fill(b, t, n, size=10_000, ts=None):
    val = b"r" * size
    msgs = [{"value": val} if ts is None else {"value": val, "timestamp": ts} for _ in range(n)]
    produce(b, t, msgs, **{"linger.ms": 20, "batch.size": 64 * 1024})


def test_roll_by_segment_bytes(broker):
    t = create_topic(broker, unique("roll"), config={"segment.bytes": str(MiB)})
    fill(broker, t, 350)  # ~3.5 MiB
    logs = data_files(broker, t)
    assert len(logs) >= 3, logs
    # every segment file is named after its base offset, and the sequence is increasing
    bases = [int(f[:-4]) for f in logs]
    assert bases[0] == 0 and bases == sorted(bases) and len(set(bases)) == len(bases)
    for f in logs:
        assert len(f) == len("00000000000000000000.log")
    # every rolled segment stays at or under segment.bytes
    import os
    d = os.path.join(broker.data_dir, "%s-0" % t)
    for f in logs[:-1]:
        assert os.path.getsize(os.path.join(d, f)) <= MiB
    # indexes exist for every segment
    assert len(data_files(broker, t, ext=".index")) == len(logs)
    assert len(data_files(broker, t, ext=".timeindex")) == len(logs)
    # data reads back across segment boundaries
    msgs = consume(broker, t, 350)
    assert [m.offset() for m in msgs] == list(range(350))
    _, sizes = log_dir_sizes(broker, t)
    assert sizes[0] >= 350 * 10_000


def test_roll_by_segment_ms(broker):
    t = create_topic(broker, unique("rollms"), config={"segment.ms": "1000"})
    produce(broker, t, [b"first"])
    time.sleep(1.6)
    produce(broker, t, [b"second"])
    time.sleep(1.6)
    produce(broker, t, [b"third"])
    logs = data_files(broker, t)
    assert len(logs) >= 2, logs
    assert [m.value() for m in consume(broker, t, 3)] == [b"first", b"second", b"third"]


def test_retention_ms_deletes_old_segments(broker):
    t = create_topic(broker, unique("retms"), config={"segment.bytes": str(MiB), "retention.ms": "5000"})
    fill(broker, t, 300)  # ~3 MiB of fresh records: they expire ~5 s from now
    assert watermarks(broker, t)[1] == 300
    before = len(data_files(broker, t))
    assert before >= 3

    def advanced():
        lo, hi = watermarks(broker, t)
        return lo > 0 and hi == 300 and lo
    lo = wait_until(advanced, 25, 0.3, msg="log start offset to advance under retention.ms")
    assert len(data_files(broker, t)) < before
    # the new start is the base offset of the first remaining segment
    bases = [int(f[:-4]) for f in data_files(broker, t)]
    assert lo == bases[0] or lo >= bases[0]
    # below log start → OFFSET_OUT_OF_RANGE, from log start → data
    assert raw_fetch(broker, t, 0)[0] == KafkaError.OFFSET_OUT_OF_RANGE
    lo = watermarks(broker, t)[0]
    if lo < 300:
        assert consume(broker, t, 300 - lo, offset=lo)[0].offset() == lo


def test_retention_ms_keeps_recent(broker):
    t = create_topic(broker, unique("retkeep"), config={"segment.bytes": str(MiB), "retention.ms": "600000"})
    fill(broker, t, 250)
    time.sleep(1.5)  # several retention checks
    assert watermarks(broker, t) == (0, 250)


def test_retention_bytes(broker):
    t = create_topic(broker, unique("retb"), config={"segment.bytes": str(MiB),
                                                      "retention.bytes": str(int(1.5 * MiB))})
    fill(broker, t, 450)  # ~4.5 MiB in >= 4 segments
    lo = wait_until(lambda: watermarks(broker, t)[0] > 0 and watermarks(broker, t)[0],
                    20, 0.3, msg="log start offset to advance under retention.bytes")
    assert watermarks(broker, t)[1] == 450

    def small_enough():
        _, sizes = log_dir_sizes(broker, t)
        return sizes[0] <= int(1.5 * MiB) + MiB and sizes[0]
    size = wait_until(small_enough, 20, 0.3, msg="partition size under retention.bytes + one segment")
    # Kafka deletes a segment only if the rest still holds >= retention.bytes: never too much
    assert size >= int(1.5 * MiB) - 20_000, size
    lo = watermarks(broker, t)[0]
    assert consume(broker, t, 450 - lo, offset=lo)[-1].offset() == 449


def test_retention_after_alter_config(broker):
    """Retention applies to a config changed at runtime (incremental alter)."""
    from confluent_kafka.admin import AlterConfigOpType, ConfigEntry, ConfigResource
    from kutil import admin
    t = create_topic(broker, unique("retalt"), config={"segment.bytes": str(MiB), "retention.ms": "-1"})
    fill(broker, t, 250, ts=int(time.time() * 1000) - 3_600_000)
    time.sleep(1.0)
    assert watermarks(broker, t)[0] == 0
    res = ConfigResource(ConfigResource.Type.TOPIC, t, incremental_configs=[
        ConfigEntry("retention.ms", "1000", incremental_operation=AlterConfigOpType.SET)])
    admin(broker).incremental_alter_configs([res])[res].result(15)
    wait_until(lambda: watermarks(broker, t)[0] > 0, 20, 0.3, msg="retention after alter")


def test_broker_level_defaults(make_broker):
    """log.segment.bytes / log.retention.bytes apply to topics without overrides."""
    b = make_broker(overrides={"log.segment.bytes": str(MiB), "log.retention.bytes": str(2 * MiB),
                               "log.retention.check.interval.ms": "300"})
    t = create_topic(b, unique("brk"))
    fill(b, t, 450)
    assert len(data_files(b, t)) >= 2
    wait_until(lambda: watermarks(b, t)[0] > 0, 20, 0.3, msg="broker-level retention.bytes")


def test_compacted_topic_not_deleted_by_retention(broker):
    """cleanup.policy=compact: time/size retention does not delete segments."""
    t = create_topic(broker, unique("compact"), config={"cleanup.policy": "compact", "segment.bytes": str(MiB),
                                                        "retention.ms": "1000", "retention.bytes": str(MiB)})
    old = int(time.time() * 1000) - 3_600_000
    produce(broker, t, [{"key": b"k%d" % i, "value": b"c" * 10_000, "timestamp": old} for i in range(250)],
            **{"linger.ms": 20})
    time.sleep(2.0)
    assert watermarks(broker, t) == (0, 250)


def test_compacted_topic_rejects_null_key(broker):
    import kwire
    t = create_topic(broker, unique("compactnk"), config={"cleanup.policy": "compact"})
    from test_produce_fetch import raw_produce
    assert raw_produce(broker, t, kwire.record_batch([b"v"], key=None))[0] == 87  # INVALID_RECORD
    assert raw_produce(broker, t, kwire.record_batch([b"v"], key=b"k"))[0] == 0
    assert watermarks(broker, t) == (0, 1)


def test_compacted_topic_names_each_keyless_record(broker):
    """KIP-467, as librdkafka's test 0011 checks: a batch with keyless records for a compacted
    topic is refused whole with INVALID_RECORD, and Produce v8+ lists each keyless record's index
    in record_errors, so the client fails those (INVALID_RECORD) and the others with
    _INVALID_DIFFERENT_RECORD."""
    import kwire
    from kafka.protocol.producer import ProduceRequest
    from kutil import producer
    t = create_topic(broker, unique("compactre"), config={"cleanup.policy": "compact"})

    keys = [b"k0", None, b"k2", b"k3", None]
    recs = b""
    for i, k in enumerate(keys):
        body = (b"\x00" + kwire.varint(0) + kwire.varint(i)
                + (kwire.varint(-1) if k is None else kwire.varint(len(k)) + k)
                + kwire.varint(1) + b"v" + kwire.varint(0))
        recs += kwire.varint(len(body)) + body
    batch = kwire.raw_batch(recs, len(keys), len(keys) - 1)
    TPD = ProduceRequest.TopicProduceData
    s = kwire.connect(broker)
    try:
        for version in (7, 8, 11):
            r = kwire.request(s, ProduceRequest, version, corr=version, transactional_id=None, acks=-1,
                              timeout_ms=10000, topic_data=[TPD(name=t, partition_data=[
                                  TPD.PartitionProduceData(index=0, records=batch)])])
            p = r.responses[0].partition_responses[0]
            assert p.error_code == 87, version  # INVALID_RECORD
            if version >= 8:
                assert [e.batch_index for e in p.record_errors] == [1, 4], version
                assert all("without key" in e.batch_index_error_message for e in p.record_errors)
                assert "2 record errors" in p.error_message
    finally:
        s.close()

    p = producer(broker, **{"linger.ms": 200, "message.timeout.ms": 10000})
    reports = {}
    for i in range(10):
        p.produce(t, value=b"v", key=None if i % 5 == 2 else b"k%d" % i, partition=0,
                  on_delivery=lambda err, msg, i=i: reports.__setitem__(i, err and err.code()))
    assert p.flush(20) == 0
    assert reports == {i: KafkaError.INVALID_RECORD if i % 5 == 2 else KafkaError._INVALID_DIFFERENT_RECORD
                       for i in range(10)}
    assert watermarks(broker, t) == (0, 0)
