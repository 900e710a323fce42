"""Issue 2 point 4: SIGKILL during heavy acks=all produce traffic, restart on the same data dir:
every acknowledged record is there at the same offset, a torn tail is truncated, indexes are
rebuilt and clients carry on.  Also: topics and configs survive restarts; SIGSTOP/SIGCONT."""
import os
import threading
import time

import pytest
from confluent_kafka import TopicPartition
from confluent_kafka.admin import ConfigResource, NewTopic

from kutil import (admin, consume, create_topic, data_files, kcat, produce, producer, unique,
                   wait_until, watermarks)

MiB = 1024 * 1024


class AckRecorder:
    """Produce continuously (acks=all) from a background thread; record every acknowledged
    (partition, offset) → value."""

    def __init__(self, b, topic, partitions=1, **conf):
        c = {"acks": "all", "linger.ms": 2, "message.timeout.ms": 60000, "retries": 1000000,
             "retry.backoff.ms": 100, "queue.buffering.max.messages": 200000}
        c.update(conf)
        self.p = producer(b, **c)
        self.topic = topic
        self.partitions = partitions
        self.acked = {}
        self.errors = []
        self.sent = 0
        self.stop_flag = threading.Event()
        self.lock = threading.Lock()
        self.th = threading.Thread(target=self.run, daemon=True)

    def cb(self, err, msg):
        if err is not None:
            self.errors.append(err)
            return
        with self.lock:
            key = (msg.partition(), msg.offset())
            assert key not in self.acked or self.acked[key] == msg.value(), "two acks for %r" % (key,)
            self.acked[key] = msg.value()

    def run(self):
        i = 0
        deadline = time.monotonic() + 90
        while not self.stop_flag.is_set() and time.monotonic() < deadline:
            v = b"rec-%09d-" % i + b"p" * 90
            try:
                self.p.produce(self.topic, v, partition=i % self.partitions, on_delivery=self.cb)
                i += 1
                self.sent = i
            except BufferError:
                self.p.poll(0.01)
            if i % 100 == 0:
                self.p.poll(0)
        self.p.poll(0)

    def start(self):
        self.th.start()
        return self

    def stop(self, flush=10):
        self.stop_flag.set()
        self.th.join(10)
        self.p.flush(flush)


def verify_acked(b, topic, acked, partitions):
    for part in range(partitions):
        mine = {o: v for (p, o), v in acked.items() if p == part}
        if not mine:
            continue
        top = max(mine)
        lo, hi = watermarks(b, topic, part)
        assert lo == 0 and hi > top, "partition %d: watermarks %r but offset %d was acked" % (part, (lo, hi), top)
        msgs = consume(b, topic, top + 1, partition=part, timeout=60)
        got = {m.offset(): m.value() for m in msgs}
        assert [m.offset() for m in msgs] == list(range(top + 1))
        missing = [o for o, v in mine.items() if got.get(o) != v]
        assert not missing, "partition %d: %d acked records lost or changed, first %r" % (
            part, len(missing), sorted(missing)[:5])


@pytest.mark.parametrize("partitions", [1, 3])
def test_sigkill_under_heavy_produce(make_broker, partitions):
    b = make_broker()
    t = create_topic(b, unique("crash"), partitions=partitions, config={"segment.bytes": str(MiB)})
    rec = AckRecorder(b, t, partitions).start()
    wait_until(lambda: len(rec.acked) >= 30000, 40, 0.05, msg="30000 acks before the crash")
    b.kill()
    acked_at_kill = dict(rec.acked)
    rec.stop_flag.set()
    rec.th.join(10)
    assert len(acked_at_kill) >= 30000
    b.start()
    # the same producer carries on: everything still queued is delivered after the restart
    remaining = rec.p.flush(60)
    assert remaining == 0, "%d messages stuck after restart" % remaining
    after = produce(b, t, [b"after-restart"], partition=0)
    assert after[0].offset() >= max(o for (p, o) in acked_at_kill if p == 0) + 1
    # every record acknowledged before the kill is at its offset with its value
    verify_acked(b, t, acked_at_kill, partitions)
    # and everything acknowledged in total (before + after restart) too
    verify_acked(b, t, rec.acked, partitions)
    # kcat reads the tail too
    r = kcat(b, "-C", "-t", t, "-p", "0", "-o", "-1", "-e", "-f", "%s\n")
    assert r.stdout.strip() == b"after-restart"


def active_log(b, t, partition=0):
    d = os.path.join(b.data_dir, "%s-%d" % (t, partition))
    return os.path.join(d, data_files(b, t, partition)[-1])


@pytest.mark.parametrize("garbage", [
    b"\x00" * 61,                                # zeros (preallocated / torn page)
    bytes(range(256)) * 3,                        # random junk
    b"\x00\x00\x00\x00\x00\x00\x00\x05\x00\x00\x10\x00\xff\xff\xff\xff\x02",  # header of a batch that never finished
])
def test_torn_tail_truncated(make_broker, garbage):
    b = make_broker()
    t = create_topic(b, unique("torn"))
    vals = [b"good-%d" % i for i in range(100)]
    produce(b, t, vals, **{"acks": "all", "batch.num.messages": 10})
    b.kill()
    path = active_log(b, t)
    good_size = os.path.getsize(path)
    with open(path, "ab") as f:
        f.write(garbage)
    b.start()
    assert watermarks(b, t) == (0, 100)
    assert os.path.getsize(path) == good_size, "torn tail not truncated on recovery"
    msgs = consume(b, t, 100)
    assert [m.value() for m in msgs] == vals
    dr = produce(b, t, [b"next"], **{"acks": "all"})
    assert dr[0].offset() == 100
    assert consume(b, t, 1, offset=100)[0].value() == b"next"


def test_half_written_last_batch(make_broker):
    b = make_broker()
    t = create_topic(b, unique("half"))
    produce(b, t, [b"a%d" % i for i in range(10)], **{"linger.ms": 0, "batch.num.messages": 1})
    produce(b, t, [b"last-batch-%d" % i for i in range(5)], **{"linger.ms": 100})
    b.kill()
    path = active_log(b, t)
    with open(path, "rb") as f:
        data = f.read()
    # find the last batch's start and cut it in half
    import struct
    pos, starts = 0, []
    while pos + 12 <= len(data):
        starts.append(pos)
        pos += 12 + struct.unpack(">i", data[pos + 8:pos + 12])[0]
    last = starts[-1]
    last_base = struct.unpack(">q", data[last:last + 8])[0]
    with open(path, "r+b") as f:
        f.truncate(last + (len(data) - last) // 2)
    b.start()
    assert watermarks(b, t) == (0, last_base)
    assert os.path.getsize(path) == last
    assert [m.value() for m in consume(b, t, last_base)] == [b"a%d" % i for i in range(10)][:last_base]
    assert produce(b, t, [b"z"])[0].offset() == last_base


def test_indexes_rebuilt(make_broker):
    b = make_broker()
    t = create_topic(b, unique("idx"), config={"segment.bytes": str(MiB)})
    ts0 = int(time.time() * 1000) - 60_000
    produce(b, t, [{"value": b"x" * 5000, "timestamp": ts0 + i} for i in range(600)],
            **{"batch.num.messages": 20})
    b.kill()
    d = os.path.join(b.data_dir, "%s-0" % t)
    removed = 0
    for f in os.listdir(d):
        if f.endswith(".index") or f.endswith(".timeindex"):
            os.remove(os.path.join(d, f))
            removed += 1
    assert removed
    b.start()
    for off in (0, 123, 350, 599):
        m = consume(b, t, 1, offset=off)[0]
        assert m.offset() == off and m.timestamp()[1] == ts0 + off
    c_admin = admin(b)
    from confluent_kafka.admin import OffsetSpec
    tp = TopicPartition(t, 0)
    r = c_admin.list_offsets({tp: OffsetSpec.for_timestamp(ts0 + 444)}, request_timeout=15)[tp].result(15)
    assert r.offset == 444
    assert len(data_files(b, t, ext=".index")) == len(data_files(b, t))


def test_topics_and_configs_survive_restart(make_broker):
    b = make_broker()
    t = create_topic(b, unique("persist"), partitions=3, config={"retention.ms": "7777777",
                                                                "cleanup.policy": "delete"})
    produce(b, t, [b"x"], partition=2)
    gone = create_topic(b, unique("deleted"))
    admin(b).delete_topics([gone], operation_timeout=15)[gone].result(15)
    for kill in (False, True):
        b.restart(kill=kill)
        md = admin(b).list_topics(timeout=10)
        assert len(md.topics[t].partitions) == 3
        assert gone not in md.topics
        res = ConfigResource(ConfigResource.Type.TOPIC, t)
        cfg = admin(b).describe_configs([res], request_timeout=15)[res].result(15)
        assert cfg["retention.ms"].value == "7777777"
        assert watermarks(b, t, 2) == (0, 1)
    # meta.properties in the log dir
    with open(os.path.join(b.data_dir, "meta.properties")) as f:
        props = f.read()
    assert "node.id=1" in props and "cluster.id=" in props


def test_sigstop_sigcont(make_broker):
    b = make_broker()
    t = create_topic(b, unique("stop"))
    p = producer(b, **{"acks": "all", "message.timeout.ms": 30000})
    acked = []
    for i in range(100):
        p.produce(t, b"s%d" % i, partition=0, on_delivery=lambda e, m: acked.append((e, m.offset())))
    p.flush(15)
    b.pause()
    try:
        for i in range(100, 200):
            p.produce(t, b"s%d" % i, partition=0, on_delivery=lambda e, m: acked.append((e, m.offset())))
        p.poll(2.0)
        assert len(acked) == 100
    finally:
        b.resume()
    assert p.flush(30) == 0
    assert [e for e, _ in acked if e is not None] == []
    assert [o for _, o in acked] == list(range(200))
    assert [m.value() for m in consume(b, t, 200)] == [b"s%d" % i for i in range(200)]


def test_log_start_offset_and_partitions_survive_restart(make_broker):
    from confluent_kafka.admin import NewPartitions
    b = make_broker()
    t = create_topic(b, unique("lso"), config={"segment.bytes": str(MiB)})
    produce(b, t, [b"v" * 10000 for _ in range(250)])
    a = admin(b)
    list(a.delete_records([TopicPartition(t, 0, 137)], request_timeout=15).values())[0].result(15)
    a.create_partitions([NewPartitions(t, 3)])[t].result(15)
    wait_until(lambda: len(admin(b).list_topics(t, timeout=5).topics[t].partitions) == 3, msg="3 partitions")
    assert watermarks(b, t) == (137, 250)
    for kill in (True, False):
        b.restart(kill=kill)
        assert watermarks(b, t) == (137, 250), "log start offset lost on restart (kill=%s)" % kill
        assert len(admin(b).list_topics(t, timeout=10).topics[t].partitions) == 3
        assert consume(b, t, 1, offset=137)[0].offset() == 137


def test_delete_topic_then_sigkill(make_broker):
    b = make_broker()
    t = create_topic(b, unique("delkill"), partitions=2)
    produce(b, t, [b"old"] * 10)
    admin(b).delete_topics([t], operation_timeout=15)[t].result(15)
    b.kill()
    b.start()
    assert t not in admin(b).list_topics(timeout=10).topics
    create_topic(b, t, partitions=1)
    assert watermarks(b, t) == (0, 0)
    produce(b, t, [b"new"])
    assert [m.value() for m in consume(b, t, 1)] == [b"new"]


def advertises(b, key):
    import kwire
    s = kwire.connect(b)
    try:
        return key in kwire.parse_api_versions_v0(kwire.api_versions_raw(s, 0))[2]
    finally:
        s.close()


def test_idempotent_producer_no_duplicates_across_stall(make_broker):
    """If InitProducerId is advertised, librdkafka's idempotent producer must work and its retries
    (after request timeouts caused by a SIGSTOPped broker) must not create duplicates."""
    b = make_broker()
    if not advertises(b, 22):
        pytest.skip("InitProducerId not advertised")
    t = create_topic(b, unique("idem"))
    p = producer(b, **{"enable.idempotence": True, "linger.ms": 2, "request.timeout.ms": 1000,
                       "message.timeout.ms": 60000, "socket.timeout.ms": 1000})
    errs = []
    n = 20000

    def cb(err, msg):
        if err is not None:
            errs.append(err)
    for i in range(n):
        while True:
            try:
                p.produce(t, b"%07d" % i, partition=0, on_delivery=cb)
                break
            except BufferError:
                p.poll(0.01)
        if i == n // 2:
            p.poll(0)
            b.pause()
            time.sleep(2.5)   # in-flight requests time out and are retried
            b.resume()
    assert p.flush(60) == 0
    assert errs == []
    msgs = consume(b, t, n, timeout=60)
    vals = [int(m.value()) for m in msgs]
    assert vals == list(range(n)), "duplicates or reordering: %d records, %d distinct" % (len(vals), len(set(vals)))
    assert watermarks(b, t) == (0, n), "extra records (duplicates) in the log"


def test_many_topics_survive_restart(make_broker):
    """200 topics (one CreateTopics call) come back after SIGKILL, quickly, with their data."""
    b = make_broker()
    names = [unique("many") for _ in range(200)]
    fs = admin(b).create_topics([NewTopic(n, 1, 1) for n in names], request_timeout=30)
    for n in names:
        fs[n].result(30)
    produce(b, names[-1], [b"last"])
    b.kill()
    t0 = time.monotonic()
    b.start()
    took = time.monotonic() - t0
    md = admin(b).list_topics(timeout=10)
    assert set(names) <= set(md.topics)
    assert consume(b, names[-1], 1)[0].value() == b"last"
    assert took < 5.0, "restart with 200 topics took %.1fs" % took


def test_rolled_segments_are_flushed_and_the_recovery_point_follows(make_broker):
    """As Kafka after a roll: the segments a log rolled away from are fsynced in the background
    (within the 1 s flush tick) and the recovery point moves to the active segment, so a
    SIGKILL afterwards rescans only the active segment; nothing acknowledged is lost."""
    b = make_broker()
    t = create_topic(b, unique("rp"), partitions=1, config={"segment.bytes": "16384"})
    produce(b, t, [b"r%04d" % i * 20 for i in range(400)], **{"batch.size": 4000})
    segments = data_files(b, t)
    assert len(segments) >= 3, segments
    active = int(segments[-1].split(".")[0])
    path = os.path.join(b.data_dir, "%s-0" % t, "recovery-point")

    def recovery_point():
        try:
            with open(path) as f:
                return int(f.read().split()[-1])
        except (OSError, ValueError, IndexError):
            return -1
    deadline = time.monotonic() + 10
    while recovery_point() < active and time.monotonic() < deadline:
        time.sleep(0.2)
    assert recovery_point() == active
    b.kill()
    b.start()
    got = consume(b, t, 400)
    assert [m.value() for m in got] == [b"r%04d" % i * 20 for i in range(400)]
    assert "recovery truncated" not in b.log_text()
