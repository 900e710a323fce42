"""Issue 2 point 3: produce (acks, keys, null values, headers, timestamps, compression, size
limits, CRC) and fetch (offsets, long-poll, max bytes, out of range) with confluent-kafka,
kafka-python, aiokafka, kcat and raw requests."""
import asyncio
import struct
import threading
import time

import pytest
from confluent_kafka import (KafkaError, KafkaException, TopicPartition, TIMESTAMP_CREATE_TIME,
                             TIMESTAMP_LOG_APPEND_TIME)

import kwire
from kutil import (consume, consumer, create_topic, kcat, kp_consume, kp_producer, produce, producer,
                   unique, watermarks)

BROKER_OVERRIDES = {}


# ------------------------------------------------------------------ raw produce / fetch helpers
def raw_produce(b, topic, batch, partition=0, acks=-1, version=7):
    from kafka.protocol.producer import ProduceRequest
    TPD = ProduceRequest.TopicProduceData
    s = kwire.connect(b)
    try:
        r = kwire.request(s, ProduceRequest, version, transactional_id=None, acks=acks, timeout_ms=10000,
                          topic_data=[TPD(name=topic, partition_data=[
                              TPD.PartitionProduceData(index=partition, records=batch)])])
        p = r.responses[0].partition_responses[0]
        return p.error_code, p.base_offset
    finally:
        s.close()


def raw_fetch(b, topic, offset, partition=0, max_wait_ms=0, min_bytes=0, partition_max_bytes=1 << 20,
              max_bytes=50 << 20, version=4, sock=None):
    from kafka.protocol.consumer import FetchRequest
    FT = FetchRequest.FetchTopic
    s = sock or kwire.connect(b)
    try:
        kw = dict(replica_id=-1, max_wait_ms=max_wait_ms, min_bytes=min_bytes, max_bytes=max_bytes,
                  isolation_level=0,
                  topics=[FT(topic=topic, partitions=[FT.FetchPartition(
                      partition=partition, fetch_offset=offset, partition_max_bytes=partition_max_bytes)])])
        r = kwire.request(s, FetchRequest, version, **kw)
        p = r.responses[0].partitions[0]
        recs = p.records
        if recs is not None and not isinstance(recs, (bytes, bytearray)):
            recs = bytes(recs)
        return p.error_code, p.high_watermark, recs or b""
    finally:
        if sock is None:
            s.close()


def split_batches(data):
    """Split fetched bytes into whole v2 batches (a trailing partial batch is dropped, as clients do)."""
    out, pos = [], 0
    while pos + 12 <= len(data):
        base, length = struct.unpack(">qi", data[pos:pos + 12])
        end = pos + 12 + length
        if end > len(data):
            break
        out.append((base, data[pos:end]))
        pos = end
    return out


# ------------------------------------------------------------------ acks
@pytest.mark.parametrize("acks", ["0", "1", "all"])
def test_acks(broker, acks):
    t = create_topic(broker, unique("acks"))
    vals = [b"m%d" % i for i in range(50)]
    dr = produce(broker, t, vals, acks=acks)
    if acks != "0":
        assert [m.offset() for m in dr] == list(range(50))
    msgs = consume(broker, t, 50)
    assert [m.value() for m in msgs] == vals
    assert [m.offset() for m in msgs] == list(range(50))


def test_keys_null_values_headers_timestamps(broker):
    t = create_topic(broker, unique("rec"), config={"retention.ms": "-1"})  # old timestamps
    ts0 = 1_600_000_000_000
    sent = [
        {"key": b"k0", "value": b"v0", "timestamp": ts0},
        {"key": None, "value": None, "timestamp": ts0 + 1},
        {"key": b"k2", "value": b"", "headers": [("h1", b"x"), ("h2", b""), ("h1", b"dup")], "timestamp": ts0 + 2},
        {"key": b"", "value": b"\x00\xff" * 10, "headers": [("only", None)], "timestamp": ts0 - 10},
    ]
    produce(broker, t, sent)
    got = consume(broker, t, len(sent))
    for s, m in zip(sent, got):
        assert m.key() == s["key"]
        assert m.value() == s["value"]
        assert m.timestamp() == (TIMESTAMP_CREATE_TIME, s["timestamp"])
        assert (m.headers() or []) == s.get("headers", [])
    # kafka-python decodes the same records identically
    kp = kp_consume(broker, t, len(sent))
    assert [(r.key, r.value, r.timestamp) for r in kp] == [(s["key"], s["value"], s["timestamp"]) for s in sent]
    assert [list(r.headers) for r in kp][2] == [("h1", b"x"), ("h2", b""), ("h1", b"dup")]


def test_log_append_time(broker):
    t = create_topic(broker, unique("lat"), config={"message.timestamp.type": "LogAppendTime"})
    before = int(time.time() * 1000) - 1
    dr = produce(broker, t, [{"value": b"a", "timestamp": 1000}, {"value": b"b", "timestamp": 2000}])
    after = int(time.time() * 1000) + 1
    for m in dr:
        typ, ts = m.timestamp()
        assert typ == TIMESTAMP_LOG_APPEND_TIME and before <= ts <= after, m.timestamp()
    for m in consume(broker, t, 2):
        typ, ts = m.timestamp()
        assert typ == TIMESTAMP_LOG_APPEND_TIME and before <= ts <= after, m.timestamp()
    for r in kp_consume(broker, t, 2):
        assert r.timestamp_type == 1 and before <= r.timestamp <= after


def test_create_time_explicit(broker):
    t = create_topic(broker, unique("ct"), config={"message.timestamp.type": "CreateTime", "retention.ms": "-1"})
    dr = produce(broker, t, [{"value": b"a", "timestamp": 1234567}])
    assert consume(broker, t, 1)[0].timestamp() == (TIMESTAMP_CREATE_TIME, 1234567)
    assert dr[0].timestamp()[1] in (1234567, -1)


# ------------------------------------------------------------------ compression
CODECS = ["gzip", "snappy", "lz4", "zstd"]


@pytest.mark.parametrize("codec", CODECS)
def test_compression_confluent(broker, codec):
    t = create_topic(broker, unique("cc-" + codec))
    vals = [(b"value-%04d-" % i) * 100 for i in range(300)]  # every record compresses well
    produce(broker, t, [{"key": b"k%d" % i, "value": v} for i, v in enumerate(vals)],
            **{"compression.type": codec, "linger.ms": 50})
    msgs = consume(broker, t, 300)
    assert [m.value() for m in msgs] == vals
    assert [m.key() for m in msgs] == [b"k%d" % i for i in range(300)]
    assert [m.offset() for m in msgs] == list(range(300))
    kp = kp_consume(broker, t, 300)
    assert [r.value for r in kp] == vals
    # the stored batches are compressed with the producer's codec (stored as written);
    # Fetch v10 is the first that may carry zstd (KIP-110)
    err, hw, data = raw_fetch(broker, t, 0, version=10)
    assert err == 0 and hw == 300
    codec_id = {"gzip": 1, "snappy": 2, "lz4": 3, "zstd": 4}[codec]
    batches = split_batches(data)
    assert batches
    for _, bb in batches:
        (attrs,) = struct.unpack(">h", bb[21:23])
        assert attrs & 0x7 == codec_id


@pytest.mark.parametrize("codec", CODECS)
def test_compression_kafka_python(broker, codec):
    t = create_topic(broker, unique("kc-" + codec))
    p = kp_producer(broker, compression_type=codec, linger_ms=20, acks="all", enable_idempotence=False)
    vals = [(b"kp-%d-" % i) * 15 for i in range(200)]
    futs = [p.send(t, value=v, key=b"k", partition=0) for v in vals]
    p.flush(20)
    offs = [f.get(timeout=20).offset for f in futs]
    p.close()
    assert offs == list(range(200))
    assert [m.value() for m in consume(broker, t, 200)] == vals


def test_kafka_python_default_producer(broker):
    """kafka-python 3 with default settings (idempotent: InitProducerId + sequence numbers)."""
    t = create_topic(broker, unique("kpdef"))
    p = kp_producer(broker)
    try:
        md = p.send(t, b"default", partition=0).get(timeout=20)
    finally:
        p.close(5)
    assert md.offset == 0
    assert consume(broker, t, 1)[0].value() == b"default"


def test_aiokafka_produce_consume(broker):
    from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
    from aiokafka.structs import TopicPartition as ATP
    t = create_topic(broker, unique("aio"))
    vals = [b"aio-%d" % i for i in range(100)]

    async def run():
        p = AIOKafkaProducer(bootstrap_servers=broker.bootstrap, acks="all", compression_type="gzip",
                             request_timeout_ms=15000)
        await p.start()
        try:
            md = [await p.send_and_wait(t, v, key=b"k", partition=0,
                                        headers=[("h", b"1")]) for v in vals[:10]]
            batch = [await p.send(t, v, partition=0) for v in vals[10:]]
            md += [await f for f in batch]
        finally:
            await p.stop()
        assert [m.offset for m in md] == list(range(100))
        c = AIOKafkaConsumer(bootstrap_servers=broker.bootstrap, group_id=None, enable_auto_commit=False,
                             auto_offset_reset="earliest", request_timeout_ms=15000)
        await c.start()
        try:
            tp = ATP(t, 0)
            c.assign([tp])
            c.seek(tp, 0)
            got = []
            deadline = time.monotonic() + 20
            while len(got) < 100 and time.monotonic() < deadline:
                res = await c.getmany(tp, timeout_ms=500)
                got.extend(res.get(tp, []))
        finally:
            await c.stop()
        return got

    got = asyncio.run(asyncio.wait_for(run(), 60))
    assert [r.value for r in got] == vals
    assert [r.offset for r in got] == list(range(100))
    assert list(got[0].headers) == [("h", b"1")]
    assert got[0].key == b"k"


# ------------------------------------------------------------------ byte-for-byte and CRC
def test_batches_returned_byte_for_byte(broker):
    t = create_topic(broker, unique("raw"), config={"retention.ms": "-1"})
    produce(broker, t, [b"first"])  # so the raw batch lands at offset 1
    batch = kwire.record_batch([b"alpha", None, b"gamma"], timestamp=1_700_000_000_000, key=b"K")
    err, base = raw_produce(broker, t, batch)
    assert (err, base) == (0, 1)
    err, hw, data = raw_fetch(broker, t, 1)
    assert err == 0 and hw == 4
    batches = split_batches(data)
    assert batches[0][0] == 1
    got = batches[0][1]
    assert len(got) == len(batch)
    # everything but baseOffset (0..8) and partitionLeaderEpoch (12..16) is untouched
    assert got[8:12] == batch[8:12]
    assert got[16:] == batch[16:]


def test_crc_mismatch_corrupt_message(broker):
    t = create_topic(broker, unique("crc"))
    bad = kwire.record_batch([b"x", b"y"], corrupt_crc=True)
    err, _ = raw_produce(broker, t, bad)
    assert err == 2  # CORRUPT_MESSAGE
    assert watermarks(broker, t) == (0, 0)
    # flip one payload byte with a valid header CRC field → also CORRUPT_MESSAGE
    good = bytearray(kwire.record_batch([b"hello"]))
    good[-3] ^= 0x01
    assert raw_produce(broker, t, bytes(good))[0] == 2
    assert raw_produce(broker, t, kwire.record_batch([b"ok"]))[0] == 0
    assert watermarks(broker, t) == (0, 1)


def test_magic_v1_rejected(broker):
    """Produce v3+ accepts record batches v2 only (Kafka answers INVALID_RECORD / CORRUPT_MESSAGE for
    other magics); assert a non-zero error and an untouched log."""
    t = create_topic(broker, unique("magic"))
    err, _ = raw_produce(broker, t, kwire.record_batch([b"x"], magic=1))
    assert err != 0
    assert watermarks(broker, t) == (0, 0)


def test_produce_unknown_topic_partition_raw(broker):
    t = create_topic(broker, unique("unk"))
    assert raw_produce(broker, t, kwire.record_batch([b"x"]), partition=7)[0] == KafkaError.UNKNOWN_TOPIC_OR_PART


# ------------------------------------------------------------------ size limits
def test_message_too_large_topic_limit(broker):
    t = create_topic(broker, unique("big"), config={"max.message.bytes": "10000"})
    produce(broker, t, [b"x" * 9000])
    with pytest.raises(KafkaException) as ei:
        produce(broker, t, [b"x" * 20000], **{"message.max.bytes": 2_000_000})
    assert ei.value.args[0].code() == KafkaError.MSG_SIZE_TOO_LARGE
    err, _ = raw_produce(broker, t, kwire.record_batch([b"y" * 20000]))
    assert err == 10  # MESSAGE_TOO_LARGE
    assert watermarks(broker, t) == (0, 1)


def test_message_max_bytes_broker_default(broker):
    t = create_topic(broker, unique("big"))
    # just under message.max.bytes (1048588) including batch overhead
    produce(broker, t, [b"z" * 1_048_000], **{"message.max.bytes": 2_000_000})
    assert len(consume(broker, t, 1, **{"fetch.max.bytes": 5_000_000,
                                        "max.partition.fetch.bytes": 5_000_000})[0].value()) == 1_048_000
    with pytest.raises(KafkaException) as ei:
        produce(broker, t, [b"z" * 1_100_000], **{"message.max.bytes": 2_000_000})
    assert ei.value.args[0].code() == KafkaError.MSG_SIZE_TOO_LARGE


# ------------------------------------------------------------------ fetch positions / limits
def test_fetch_from_offset(broker):
    t = create_topic(broker, unique("off"))
    vals = [b"v%03d" % i for i in range(60)]
    produce(broker, t, vals, **{"batch.num.messages": 7})
    for start in (0, 17, 59):
        msgs = consume(broker, t, 60 - start, offset=start)
        assert [m.offset() for m in msgs] == list(range(start, 60))
        assert [m.value() for m in msgs] == vals[start:]
    kp = kp_consume(broker, t, 10, offset=50)
    assert [r.offset for r in kp] == list(range(50, 60))
    # raw fetch in the middle of a batch returns the whole containing batch
    err, hw, data = raw_fetch(broker, t, 10)
    bs = split_batches(data)
    assert err == 0 and hw == 60 and bs[0][0] <= 10


def test_offset_out_of_range(broker):
    t = create_topic(broker, unique("oor"))
    produce(broker, t, [b"a", b"b", b"c"])
    assert raw_fetch(broker, t, 4)[0] == 1  # OFFSET_OUT_OF_RANGE
    assert raw_fetch(broker, t, -5)[0] == 1
    err, hw, data = raw_fetch(broker, t, 3)  # == log end: empty, no error
    assert (err, hw, data) == (0, 3, b"")
    c = consumer(broker, **{"auto.offset.reset": "error"})
    try:
        c.assign([TopicPartition(t, 0, 100)])
        err = None
        deadline = time.monotonic() + 15
        while err is None and time.monotonic() < deadline:
            m = c.poll(0.5)
            if m is not None and m.error():
                err = m.error()
        assert err is not None, "no error for an out-of-range offset"
        assert err.code() == KafkaError._AUTO_OFFSET_RESET
        assert "out of range" in err.str().lower()
    finally:
        c.close()
    # auto.offset.reset=latest → jumps to the end, earliest → to the start
    msgs = consume(broker, t, 3, offset=100, **{"auto.offset.reset": "earliest"})
    assert [m.value() for m in msgs] == [b"a", b"b", b"c"]


def test_max_partition_fetch_bytes(broker):
    t = create_topic(broker, unique("mpfb"))
    vals = [bytes([65 + i % 26]) * 1000 for i in range(30)]
    produce(broker, t, vals, **{"batch.num.messages": 1, "linger.ms": 0})
    # first batch larger than the limit still comes back whole (KIP-74)
    err, hw, data = raw_fetch(broker, t, 0, partition_max_bytes=100)
    bs = split_batches(data)
    assert err == 0 and len(bs) >= 1 and bs[0][0] == 0
    assert len(data) <= max(100, len(bs[0][1]))
    # limit honoured across batches
    err, hw, data = raw_fetch(broker, t, 0, partition_max_bytes=2500)
    assert 1000 < len(data) <= 2500
    assert len(split_batches(data)) == 2
    # whole response max_bytes
    err, hw, data = raw_fetch(broker, t, 0, max_bytes=3500, partition_max_bytes=1 << 20)
    assert 1000 < len(data) <= 3500
    # clients consume everything with a tiny per-partition limit
    msgs = consume(broker, t, 30, **{"max.partition.fetch.bytes": 1024})
    assert [m.value() for m in msgs] == vals
    kp = kp_consume(broker, t, 30, max_partition_fetch_bytes=1024)
    assert [r.value for r in kp] == vals


def test_long_poll_fetch_raw(broker):
    t = create_topic(broker, unique("lp"))
    produce(broker, t, [b"x"])
    # nothing new: waits ~max_wait_ms and returns empty
    t0 = time.monotonic()
    err, hw, data = raw_fetch(broker, t, 1, max_wait_ms=1500, min_bytes=1)
    el = time.monotonic() - t0
    assert (err, hw, data) == (0, 1, b"")
    assert 1.2 <= el <= 4.0, "long poll returned after %.2fs, expected ~1.5s" % el
    # a produce wakes a waiting fetch early
    threading.Timer(0.5, lambda: produce(broker, t, [b"wake"])).start()
    t0 = time.monotonic()
    err, hw, data = raw_fetch(broker, t, 1, max_wait_ms=8000, min_bytes=1)
    el = time.monotonic() - t0
    assert err == 0 and hw == 2 and split_batches(data)
    assert el < 4.0, "fetch was not woken by the produce (%.2fs)" % el
    # min_bytes not reached → waits full time, then returns what there is
    t0 = time.monotonic()
    err, hw, data = raw_fetch(broker, t, 0, max_wait_ms=1000, min_bytes=1_000_000)
    el = time.monotonic() - t0
    assert err == 0 and len(split_batches(data)) == 2
    assert 0.8 <= el <= 4.0, el


def test_long_poll_consumer_latency(broker):
    t = create_topic(broker, unique("lpc"))
    c = consumer(broker, **{"fetch.wait.max.ms": 5000, "fetch.min.bytes": 1})
    try:
        c.assign([TopicPartition(t, 0, 0)])
        assert c.poll(2.0) is None  # consumer is now parked in a long poll
        sent = time.monotonic()
        produce(broker, t, [b"ping"], **{"linger.ms": 0})
        m = None
        deadline = time.monotonic() + 10
        while m is None and time.monotonic() < deadline:
            m = c.poll(0.1)
        took = time.monotonic() - sent
        assert m is not None and m.error() is None and m.value() == b"ping"
        assert took < 2.5, "message took %.2fs: long-poll fetch not woken by produce" % took
    finally:
        c.close()


# ------------------------------------------------------------------ kcat
def test_kcat_produce_consume(broker):
    t = create_topic(broker, unique("kcat"))
    lines = b"".join(b"key%d:value%d\n" % (i, i) for i in range(10))
    kcat(broker, "-P", "-t", t, "-p", "0", "-K", ":", input=lines)
    kcat(broker, "-P", "-t", t, "-p", "0", "-H", "hk=hv", "-H", "h2=", input=b"withheader\n")
    r = kcat(broker, "-C", "-t", t, "-p", "0", "-o", "3", "-c", "4", "-e", "-f", "%k|%s|%o|%p\n")
    assert r.stdout.decode().splitlines() == ["key%d|value%d|%d|0" % (i, i, i) for i in range(3, 7)]
    r = kcat(broker, "-C", "-t", t, "-p", "0", "-o", "-1", "-e", "-f", "%s|%o|%h\n")
    assert r.stdout.decode().splitlines() == ["withheader|10|hk=hv,h2="]
    r = kcat(broker, "-C", "-t", t, "-p", "0", "-o", "beginning", "-e", "-f", "%o\n")
    assert r.stdout.decode().split() == [str(i) for i in range(11)]
    # and librdkafka in Python agrees
    assert [m.key() for m in consume(broker, t, 10)] == [b"key%d" % i for i in range(10)]


# ------------------------------------------------------------------ metrics
def test_metrics_count_messages(broker):
    t = create_topic(broker, unique("met"))

    def count():
        total = 0.0
        for line in broker.metrics().splitlines():
            if line.startswith("#") or "messages" not in line.lower() or t not in line:
                continue
            try:
                total += float(line.rsplit(" ", 1)[1])
            except ValueError:
                pass
        return total

    before = count()
    produce(broker, t, [b"m"] * 25)
    consume(broker, t, 25)
    after = count()
    assert after >= before + 25, (before, after)
    text = broker.metrics()
    assert "bytes" in text.lower()


# ------------------------------------------------------------------ request-level semantics
def test_invalid_required_acks(broker):
    t = create_topic(broker, unique("acks2"))
    assert raw_produce(broker, t, kwire.record_batch([b"x"]), acks=2)[0] == 21  # INVALID_REQUIRED_ACKS
    assert watermarks(broker, t) == (0, 0)


def test_multi_partition_produce_and_fetch_mixed_errors(broker):
    from kafka.protocol.consumer import FetchRequest
    from kafka.protocol.producer import ProduceRequest
    t = create_topic(broker, unique("multi"), partitions=2)
    TPD = ProduceRequest.TopicProduceData
    PPD = TPD.PartitionProduceData
    s = kwire.connect(broker)
    try:
        r = kwire.request(s, ProduceRequest, 7, transactional_id=None, acks=1, timeout_ms=10000, topic_data=[
            TPD(name=t, partition_data=[PPD(index=0, records=kwire.record_batch([b"p0"])),
                                        PPD(index=1, records=kwire.record_batch([b"p1a", b"p1b"])),
                                        PPD(index=9, records=kwire.record_batch([b"bad"]))])])
        res = {p.index: (p.error_code, p.base_offset) for p in r.responses[0].partition_responses}
        assert res[0] == (0, 0) and res[1] == (0, 0)
        assert res[9][0] == KafkaError.UNKNOWN_TOPIC_OR_PART
        FT = FetchRequest.FetchTopic
        r = kwire.request(s, FetchRequest, 4, corr=2, replica_id=-1, max_wait_ms=0, min_bytes=0, max_bytes=1 << 20,
                          isolation_level=0, topics=[FT(topic=t, partitions=[
                              FT.FetchPartition(partition=p, fetch_offset=0, partition_max_bytes=1 << 20)
                              for p in (0, 1, 9)])])
        got = {p.partition_index: (p.error_code, p.high_watermark) for p in r.responses[0].partitions}
        assert got[0] == (0, 1) and got[1] == (0, 2)
        assert got[9][0] == KafkaError.UNKNOWN_TOPIC_OR_PART
    finally:
        s.close()


def test_dynamic_topic_config_takes_effect(broker):
    from confluent_kafka.admin import AlterConfigOpType, ConfigEntry, ConfigResource
    from kutil import admin
    t = create_topic(broker, unique("dyn"))
    produce(broker, t, [b"x" * 20000])
    res = ConfigResource(ConfigResource.Type.TOPIC, t, incremental_configs=[
        ConfigEntry("max.message.bytes", "10000", incremental_operation=AlterConfigOpType.SET),
        ConfigEntry("message.timestamp.type", "LogAppendTime", incremental_operation=AlterConfigOpType.SET)])
    admin(broker).incremental_alter_configs([res])[res].result(15)
    assert raw_produce(broker, t, kwire.record_batch([b"y" * 20000]))[0] == 10
    before = int(time.time() * 1000) - 1
    produce(broker, t, [{"value": b"small", "timestamp": 5000}])
    m = consume(broker, t, 1, offset=1)[0]
    assert m.timestamp()[0] == TIMESTAMP_LOG_APPEND_TIME and m.timestamp()[1] >= before


def test_metadata_topic_list_semantics(broker):
    from kafka.protocol.metadata import MetadataRequest
    t = create_topic(broker, unique("mdsem"))
    s = kwire.connect(broker)
    try:
        r = kwire.request(s, MetadataRequest, 1, topics=[])
        assert r.topics == [] or len(r.topics) == 0        # v1+: empty list = no topics
        r = kwire.request(s, MetadataRequest, 1, corr=2, topics=None)
        assert t in [x.name for x in r.topics]              # v1+: null = all topics
        r = kwire.request(s, MetadataRequest, 0, corr=3, topics=[])
        assert t in [x.name for x in r.topics]              # v0: empty list = all topics
    finally:
        s.close()


def test_bulk_multi_partition_exact(broker):
    t = create_topic(broker, unique("bulk"), partitions=3)
    n = 60000
    p = producer(broker, **{"linger.ms": 5, "batch.size": 1 << 20, "acks": "1"})
    for i in range(n):
        while True:
            try:
                p.produce(t, b"%08d" % i, partition=i % 3)
                break
            except BufferError:
                p.poll(0.05)
    assert p.flush(60) == 0
    for part in range(3):
        msgs = consume(broker, t, n // 3, partition=part, timeout=60)
        assert [int(m.value()) for m in msgs] == list(range(part, n, 3))
        assert [m.offset() for m in msgs] == list(range(n // 3))


def test_fetch_sessions_kip227(broker):
    """Fetch v7+: epoch 0 opens a full session; a non-zero session id must then serve incremental
    fetches (only changed partitions), and bad ids/epochs get Kafka's error codes.  Answering with
    session_id 0 (sessionless) is legal, in which case only the error cases are checked."""
    from kafka.protocol.consumer import FetchRequest
    FT = FetchRequest.FetchTopic
    t = create_topic(broker, unique("sess"), partitions=2)
    produce(broker, t, [b"a"], partition=0)
    produce(broker, t, [b"b"], partition=1)

    def fetch(s, corr, session_id, epoch, parts, max_wait_ms=0):
        topics = [FT(topic=t, partitions=[FT.FetchPartition(partition=p, fetch_offset=o, log_start_offset=-1,
                                                             partition_max_bytes=1 << 20, current_leader_epoch=-1)
                                          for p, o in parts])] if parts else []
        return kwire.request(s, FetchRequest, 7, corr=corr, replica_id=-1, max_wait_ms=max_wait_ms, min_bytes=0,
                             max_bytes=1 << 20, isolation_level=0, session_id=session_id, session_epoch=epoch,
                             topics=topics, forgotten_topics_data=[])

    s = kwire.connect(broker)
    try:
        r = fetch(s, 1, 0, 0, [(0, 0), (1, 0)])
        assert r.error_code == 0
        got = {p.partition_index: p.high_watermark for tr in r.responses for p in tr.partitions}
        assert got == {0: 1, 1: 1}
        sid = r.session_id
        # unknown session id
        r2 = fetch(s, 2, (sid or 0) + 12345, 1, [])
        assert r2.error_code == 70  # FETCH_SESSION_ID_NOT_FOUND
        if sid:
            # incremental: nothing listed, positions advanced to 1 → nothing changed, nothing returned
            produce(broker, t, [b"c"], partition=1)
            r3 = fetch(s, 3, sid, 1, [(0, 1), (1, 1)])
            assert r3.error_code == 0
            r4 = fetch(s, 4, sid, 2, [])
            assert r4.error_code == 0
            assert [(p.partition_index) for tr in r4.responses for p in tr.partitions] in ([], [1])
            # wrong epoch
            r5 = fetch(s, 5, sid, 9, [])
            assert r5.error_code == 71  # INVALID_FETCH_SESSION_EPOCH
    finally:
        s.close()


def test_acks0_no_response_and_error_closes(broker):
    """acks=0: the broker sends no response; on an error it closes the connection (Kafka's way of
    telling a fire-and-forget producer)."""
    from kafka.protocol.producer import ProduceRequest
    TPD = ProduceRequest.TopicProduceData
    t = create_topic(broker, unique("acks0"))

    def produce_req(corr, partition):
        r = ProduceRequest[7](transactional_id=None, acks=0, timeout_ms=1000, topic_data=[TPD(
            name=t, partition_data=[TPD.PartitionProduceData(index=partition, records=kwire.record_batch([b"z"]))])])
        r.with_header(correlation_id=corr, client_id="acks0")
        return bytes(r.encode(header=True, framed=True))

    av = kwire.ApiVersionsRequest[0]()
    av.with_header(correlation_id=2, client_id="acks0")
    s = kwire.connect(broker)
    try:
        s.sendall(produce_req(1, 0) + bytes(av.encode(header=True, framed=True)))
        body = kwire.recv_frame(s)
        assert struct.unpack(">i", body[:4])[0] == 2, "a response was sent for an acks=0 produce"
    finally:
        s.close()
    assert watermarks(broker, t) == (0, 1)
    s = kwire.connect(broker)
    try:
        s.sendall(produce_req(3, 42))  # unknown partition
        assert kwire.closed_by_peer(s, 5), "acks=0 produce error did not close the connection"
    finally:
        s.close()


def test_long_poll_woken_by_other_partition(broker):
    t = create_topic(broker, unique("lp2"), partitions=2)
    from kafka.protocol.consumer import FetchRequest
    FT = FetchRequest.FetchTopic
    threading.Timer(0.5, lambda: produce(broker, t, [b"wake"], partition=1)).start()
    s = kwire.connect(broker)
    try:
        t0 = time.monotonic()
        r = kwire.request(s, FetchRequest, 4, replica_id=-1, max_wait_ms=8000, min_bytes=1, max_bytes=1 << 20,
                          isolation_level=0, topics=[FT(topic=t, partitions=[
                              FT.FetchPartition(partition=p, fetch_offset=0, partition_max_bytes=1 << 20)
                              for p in (0, 1)])])
        el = time.monotonic() - t0
    finally:
        s.close()
    hw = {p.partition_index: p.high_watermark for p in r.responses[0].partitions}
    assert hw == {0: 0, 1: 1}, [(p.partition_index, p.error_code) for p in r.responses[0].partitions]
    assert el < 4.0, "fetch not woken by a produce to another requested partition (%.2fs)" % el
