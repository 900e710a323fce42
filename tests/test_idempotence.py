"""Idempotent producers (InitProducerId + per-partition sequence checks).

Real clients: confluent-kafka with enable.idempotence=true (also across broker pauses that
force retries), kafka-python's default (idempotent) producer; and raw produce requests that
replay, skip or fence sequences, checked against Kafka's error codes.
"""
import struct
import time

import kwire
from kutil import consume, create_topic, produce, producer, unique, watermarks

from confluent_kafka import KafkaException

INVALID_PRODUCER_EPOCH = 47
OUT_OF_ORDER_SEQUENCE_NUMBER = 45


def idempotent_batch(values, producer_id, epoch, base_sequence, timestamp=None):
    """A v2 batch carrying producer id, epoch and base sequence (uncompressed)."""
    ts = int(time.time() * 1000) if timestamp is None else timestamp
    recs = b""
    for i, v in enumerate(values):
        body = (b"\x00" + kwire.varint(0) + kwire.varint(i) + kwire.varint(-1)
                + kwire.varint(len(v)) + v + kwire.varint(0))
        recs += kwire.varint(len(body)) + body
    n = len(values)
    after_crc = struct.pack(">hiqqqhii", 0, n - 1, ts, ts, producer_id, epoch, base_sequence, n) + recs
    crc = kwire.crc32c(after_crc)
    return struct.pack(">qiibI", 0, 4 + 1 + 4 + len(after_crc), -1, 2, crc) + after_crc


def raw_produce(b, topic, batch, version=7):
    from kafka.protocol.producer import ProduceRequest
    TPD = ProduceRequest.TopicProduceData
    s = kwire.connect(b)
    try:
        r = kwire.request(s, ProduceRequest, version, transactional_id=None, acks=-1, timeout_ms=10000,
                          topic_data=[TPD(name=topic, partition_data=[
                              TPD.PartitionProduceData(index=0, records=batch)])])
        p = r.responses[0].partition_responses[0]
        return p.error_code, p.base_offset
    finally:
        s.close()


def init_producer_id(b, version=1):
    from kafka.protocol.producer.transaction import InitProducerIdRequest
    s = kwire.connect(b)
    try:
        r = kwire.request(s, InitProducerIdRequest, version, transactional_id=None,
                          transaction_timeout_ms=60000)
        return r.error_code, r.producer_id, r.producer_epoch
    finally:
        s.close()


def test_init_producer_id_hands_out_fresh_ids_across_restarts(make_broker):
    b = make_broker()
    seen = set()
    for _ in range(3):
        err, pid, epoch = init_producer_id(b)
        assert err == 0 and epoch == 0 and pid >= 0 and pid not in seen
        seen.add(pid)
    b.restart(kill=True)
    for _ in range(3):
        err, pid, epoch = init_producer_id(b)
        assert err == 0 and pid not in seen
        seen.add(pid)


def test_replayed_batch_is_acknowledged_once_with_its_original_offset(make_broker):
    b = make_broker()
    t = create_topic(b, unique("idem"))
    _, pid, _ = init_producer_id(b)
    assert raw_produce(b, t, idempotent_batch([b"a", b"b"], pid, 0, 0)) == (0, 0)
    assert raw_produce(b, t, idempotent_batch([b"c"], pid, 0, 2)) == (0, 2)
    # Retries of both batches: success with the original offsets, nothing written.
    assert raw_produce(b, t, idempotent_batch([b"a", b"b"], pid, 0, 0)) == (0, 0)
    assert raw_produce(b, t, idempotent_batch([b"c"], pid, 0, 2)) == (0, 2)
    assert watermarks(b, t) == (0, 3)
    # A gap in sequences.
    assert raw_produce(b, t, idempotent_batch([b"x"], pid, 0, 7))[0] == OUT_OF_ORDER_SEQUENCE_NUMBER
    # A bumped epoch restarts at sequence 0 and fences the old epoch.
    assert raw_produce(b, t, idempotent_batch([b"d"], pid, 1, 0)) == (0, 3)
    assert raw_produce(b, t, idempotent_batch([b"e"], pid, 0, 3))[0] == INVALID_PRODUCER_EPOCH
    assert watermarks(b, t) == (0, 4)
    # A producer the partition keeps no state for (new, or expired) goes on from any sequence,
    # as in Kafka since 2.5 (KIP-360), rather than getting UNKNOWN_PRODUCER_ID.
    assert raw_produce(b, t, idempotent_batch([b"y"], pid + 999, 0, 5)) == (0, 4)
    assert raw_produce(b, t, idempotent_batch([b"z"], pid + 999, 0, 7))[0] == OUT_OF_ORDER_SEQUENCE_NUMBER
    assert watermarks(b, t) == (0, 5)
    assert [m.value() for m in consume(b, t, 5)] == [b"a", b"b", b"c", b"d", b"y"]


def test_producer_state_survives_sigkill(make_broker):
    b = make_broker()
    t = create_topic(b, unique("idemkill"))
    _, pid, _ = init_producer_id(b)
    for seq in range(5):
        assert raw_produce(b, t, idempotent_batch([b"v%d" % seq], pid, 0, seq)) == (0, seq)
    b.restart(kill=True)
    # The last batch replayed after the crash is still recognised, and the next one follows.
    assert raw_produce(b, t, idempotent_batch([b"v4"], pid, 0, 4)) == (0, 4)
    assert raw_produce(b, t, idempotent_batch([b"v5"], pid, 0, 5)) == (0, 5)
    assert raw_produce(b, t, idempotent_batch([b"v9"], pid, 0, 9))[0] == OUT_OF_ORDER_SEQUENCE_NUMBER
    assert watermarks(b, t) == (0, 6)


def test_confluent_idempotent_producer_exactly_once_in_order(make_broker):
    b = make_broker()
    t = create_topic(b, unique("idemck"), partitions=3)
    n = 3000
    msgs = [{"value": b"%06d" % i, "partition": i % 3} for i in range(n)]
    delivered = produce(b, t, msgs, **{"enable.idempotence": True, "linger.ms": 2,
                                       "batch.num.messages": 50})
    assert all(m.error() is None for m in delivered)
    for p in range(3):
        got = [m.value() for m in consume(b, t, n // 3, partition=p)]
        assert got == [b"%06d" % i for i in range(p, n, 3)]
        assert watermarks(b, t, p) == (0, n // 3)


def test_confluent_idempotent_producer_across_broker_pause(make_broker):
    """Pausing the broker makes librdkafka time requests out and retry them; the broker must
    drop the duplicates, so each record is in the log exactly once and in order."""
    b = make_broker()
    t = create_topic(b, unique("idempause"))
    p = producer(b, **{"enable.idempotence": True, "linger.ms": 1, "batch.num.messages": 20,
                       "request.timeout.ms": 1500, "message.timeout.ms": 60000,
                       "retry.backoff.ms": 50})
    errors = []
    n = 2000
    for i in range(n):
        while True:
            try:
                p.produce(t, value=b"%05d" % i, partition=0,
                          on_delivery=lambda err, msg: err and errors.append(err))
                break
            except BufferError:
                p.poll(0.05)
        if i in (500, 1200):
            p.poll(0)
            b.pause()
            time.sleep(2.5)
            b.resume()
        p.poll(0)
    assert p.flush(60) == 0
    assert not errors, errors
    got = [m.value() for m in consume(b, t, n)]
    assert got == [b"%05d" % i for i in range(n)]
    assert watermarks(b, t) == (0, n)


def test_transactional_id_gets_its_own_producer_id(make_broker):
    # Transactions proper are tested in tests/test_transactions.py.
    b = make_broker()
    from kafka.protocol.producer.transaction import InitProducerIdRequest
    s = kwire.connect(b)
    try:
        for _ in range(100):  # COORDINATOR_LOAD_IN_PROGRESS (14) right after start-up
            r = kwire.request(s, InitProducerIdRequest, 1, transactional_id="txn-1",
                              transaction_timeout_ms=60000)
            if r.error_code != 14:
                break
            time.sleep(0.05)
        assert (r.error_code, r.producer_epoch) == (0, 0) and r.producer_id >= 0
        err, pid, _ = init_producer_id(b)
        assert err == 0 and pid != r.producer_id
    finally:
        s.close()
