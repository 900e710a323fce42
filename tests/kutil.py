"""Client-side helpers shared by the test modules (confluent-kafka / kafka-python / kcat)."""
import os
import subprocess
import time
import uuid

from confluent_kafka import Consumer, KafkaError, KafkaException, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic


def unique(prefix="t"):
    return "%s-%s" % (prefix, uuid.uuid4().hex[:10])


def wait_until(fn, timeout=10.0, interval=0.1, msg="condition"):
    deadline = time.monotonic() + timeout
    last = None
    for _ in range(int(timeout / interval) + 2):
        try:
            last = fn()
            if last:
                return last
        except Exception as e:  # noqa: BLE001 - report the last error on timeout
            last = e
        if time.monotonic() > deadline:
            break
        time.sleep(interval)
    raise AssertionError("timed out waiting for %s (last: %r)" % (msg, last))


# ------------------------------------------------------------------ confluent-kafka
_ADMINS = {}


def forget(b):
    """Drop cached clients of a broker that is going away."""
    _ADMINS.pop(b.bootstrap, None)


def admin(b, **conf):
    """An AdminClient for broker b.  Cached (without extra conf) so that a future obtained from
    `admin(b).op(...)` does not outlive its client handle (which would fail with _DESTROY)."""
    c = {"bootstrap.servers": b.bootstrap, "socket.timeout.ms": 10000, "log.connection.close": False}
    c.update(conf)
    if conf:
        return AdminClient(c)
    key = b.bootstrap
    if key not in _ADMINS:
        _ADMINS[key] = AdminClient(c)
    return _ADMINS[key]


def create_topic(b, name, partitions=1, config=None, rf=1, timeout=15):
    a = admin(b)
    fs = a.create_topics([NewTopic(name, num_partitions=partitions, replication_factor=rf,
                                   config=config or {})], request_timeout=timeout)
    fs[name].result(timeout)
    # wait for metadata to show the topic with a leader for every partition
    def ready():
        md = a.list_topics(name, timeout=5)
        t = md.topics.get(name)
        return (t is not None and t.error is None and len(t.partitions) == partitions
                and all(p.leader >= 0 for p in t.partitions.values()))
    wait_until(ready, 10, msg="topic %s in metadata" % name)
    if getattr(b, "kind", "oxka") == "kafka":
        wait_servable(b, name, partitions)
    return name


def wait_servable(b, topic, partitions, timeout=20):
    """Apache Kafka (OXKA_TARGET=kafka) lists a new partition's leader in Metadata a moment before
    its replica manager serves it (Fetch/ListOffsets answer NOT_LEADER_OR_FOLLOWER until then);
    oxka serves a partition once CreateTopics returns.  Wait until every partition answers."""
    c = consumer(b)
    try:
        for p in range(partitions):
            wait_until(lambda: c.get_watermark_offsets(TopicPartition(topic, p), timeout=5,
                                                       cached=False) is not None,
                       timeout, interval=0.1, msg="%s[%d] served" % (topic, p))
    finally:
        c.close()


def producer(b, **conf):
    c = {"bootstrap.servers": b.bootstrap, "linger.ms": 5, "message.timeout.ms": 20000,
         "log.connection.close": False}
    c.update(conf)
    return Producer(c)


def produce(b, topic, messages, partition=0, flush_timeout=30, **conf):
    """messages: list of dicts (value, key, headers, timestamp) or bytes. Returns delivered Message list
    in send order; raises on any delivery error."""
    p = producer(b, **conf)
    reports = {}

    def mk_cb(i):
        def cb(err, msg):
            reports[i] = (err, msg)
        return cb

    for i, m in enumerate(messages):
        if not isinstance(m, dict):
            m = {"value": m}
        kw = dict(m)
        kw.setdefault("partition", partition)
        for _ in range(200):
            try:
                p.produce(topic, on_delivery=mk_cb(i), **kw)
                break
            except BufferError:
                p.poll(0.05)
        p.poll(0)
    remaining = p.flush(flush_timeout)
    assert remaining == 0, "%d messages not delivered within %ss" % (remaining, flush_timeout)
    out = []
    for i in range(len(messages)):
        err, msg = reports[i]
        if err is not None:
            raise KafkaException(err)
        out.append(msg)
    return out


def consumer(b, **conf):
    c = {"bootstrap.servers": b.bootstrap, "group.id": unique("g"), "enable.auto.commit": False,
         "enable.auto.offset.store": False, "auto.offset.reset": "earliest",
         "enable.partition.eof": False, "socket.timeout.ms": 10000, "log.connection.close": False}
    c.update(conf)
    return Consumer(c)


def consume(b, topic, count, partition=0, offset=0, timeout=20, **conf):
    """Assign (no group coordination) and read exactly `count` messages starting at `offset`."""
    c = consumer(b, **conf)
    try:
        c.assign([TopicPartition(topic, partition, offset)])
        out = []
        deadline = time.monotonic() + timeout
        while len(out) < count and time.monotonic() < deadline:
            for m in c.consume(num_messages=min(500, count - len(out)), timeout=0.5):
                if m.error():
                    raise KafkaException(m.error())
                out.append(m)
        assert len(out) == count, "consumed %d of %d from %s[%d]@%d" % (len(out), count, topic, partition, offset)
        return out
    finally:
        c.close()


def watermarks(b, topic, partition=0):
    c = consumer(b)
    try:
        return c.get_watermark_offsets(TopicPartition(topic, partition), timeout=10, cached=False)
    finally:
        c.close()


# ------------------------------------------------------------------ kafka-python
def kp_producer(b, **conf):
    from kafka import KafkaProducer
    conf.setdefault("request_timeout_ms", 15000)
    return KafkaProducer(bootstrap_servers=b.bootstrap, **conf)


def kp_consumer(b, **conf):
    from kafka import KafkaConsumer
    conf.setdefault("request_timeout_ms", 15000)
    conf.setdefault("enable_auto_commit", False)
    return KafkaConsumer(bootstrap_servers=b.bootstrap, group_id=None, **conf)


def kp_consume(b, topic, count, partition=0, offset=0, timeout=20, **conf):
    from kafka import TopicPartition as KTP
    c = kp_consumer(b, **conf)
    try:
        tp = KTP(topic, partition)
        c.assign([tp])
        c.seek(tp, offset)
        out = []
        deadline = time.monotonic() + timeout
        while len(out) < count and time.monotonic() < deadline:
            for recs in c.poll(timeout_ms=500, max_records=count - len(out)).values():
                out.extend(recs)
        assert len(out) == count, "kafka-python consumed %d of %d" % (len(out), count)
        return out
    finally:
        c.close()


def kp_admin(b, **conf):
    from kafka.admin import KafkaAdminClient
    conf.setdefault("request_timeout_ms", 15000)
    return KafkaAdminClient(bootstrap_servers=b.bootstrap, **conf)


# ------------------------------------------------------------------ kcat
def kcat(b, *args, input=None, timeout=30, check=True):
    cmd = ["kcat", "-b", b.bootstrap] + list(args)
    r = subprocess.run(cmd, input=input, capture_output=True, timeout=timeout)
    if check and r.returncode != 0:
        raise AssertionError("kcat %s failed rc=%d\nstdout=%s\nstderr=%s"
                             % (" ".join(args), r.returncode, r.stdout.decode("utf-8", "replace"),
                                r.stderr.decode("utf-8", "replace")))
    return r


def err_code(exc):
    """KafkaError code from a confluent future exception."""
    e = exc.args[0] if exc.args else None
    if isinstance(e, KafkaError):
        return e.code()
    return None


def data_files(b, topic, partition=0, ext=".log"):
    d = os.path.join(b.data_dir, "%s-%d" % (topic, partition))
    if not os.path.isdir(d):
        return []
    return sorted(f for f in os.listdir(d) if f.endswith(ext))
