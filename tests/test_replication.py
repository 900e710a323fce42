"""Partition replication across a 3-node cluster (tests/cluster.py), driven by real clients
(confluent-kafka / librdkafka, kafka-python) and by raw requests to one chosen node.

The brokers default to replication factor 3 and `min.insync.replicas=2`, and the internal topics
(`__consumer_offsets`, `__transaction_state`, 6 partitions each) have RF 3 too;
`replica.lag.time.max.ms` is 4 s, automatic leader rebalancing is off.  The assertions are Apache Kafka
4.1.1's behaviour, checked by running the file against a 3-node KRaft Kafka:

    bash tests/setup.d/20-java.sh                                        # once: the Kafka jars
    OXKA_CLUSTER_IMPL=kafka python -m pytest -q tests/test_replication.py

and against Oxka (the default, and CI) with the same client code:

    OXKA_BIN=$PWD/target/release/oxka python -m pytest -q tests/test_replication.py

One cluster is shared by the module; the `healthy` fixture gives each test all three nodes
alive and every partition of every topic (internal ones included) with its full ISR, restarting
whatever an earlier test killed, so each test also runs alone.

Three combined broker+controller nodes are also the metadata quorum: with two of them down
there is no controller, so no leader election and no ISR change (AlterPartition needs the
controller).  Tests that need "fewer in-sync replicas than min.insync.replicas" therefore kill
one follower of a topic whose min.insync.replicas is 3, instead of two of a topic at 2.

Two assertions are Kafka 4.1 specifics Oxka matches:
- KIP-966 (eligible leader replicas, on in a new 4.1 cluster): while the ISR is below
  min.insync.replicas the high watermark does not advance, so acks=1 records are appended but
  not readable until the ISR is back (test_acks_all_below_min_insync...).
- KIP-392: from Fetch v11 a follower serves a consumer's fetch (up to its high watermark)
  instead of answering NOT_LEADER_OR_FOLLOWER (test_fetch_sent_to_a_follower...).

What Kafka does, as recorded by these tests: see "Replication" in FINDINGS.md.
"""
import gc
import os
import time

import pytest
from confluent_kafka import (Consumer, KafkaError, KafkaException, Producer, TopicCollection,
                             TopicPartition)
from confluent_kafka.admin import AdminClient, NewTopic

import cluster as clu
import kwire

pytestmark = pytest.mark.timeout(300)

IMPLS = clu.selected_impls()

# error codes, as Kafka answers them
NONE = 0
NOT_LEADER_OR_FOLLOWER = 6
REQUEST_TIMED_OUT = 7
NOT_ENOUGH_REPLICAS = 19
NOT_ENOUGH_REPLICAS_AFTER_APPEND = 20
UNKNOWN_LEADER_EPOCH = 75

LAG_MS = clu.REPLICA_LAG_MS  # replica.lag.time.max.ms
OVERRIDES = clu.REPLICATED_OVERRIDES
# Kafka fences a SIGKILLed broker after broker.session.timeout.ms (9 s) and only then elects a
# new leader for its partitions; a bound for "a new leader / coordinator" with room for a
# loaded 2-core machine.
FAILOVER_BOUND = 45
ISR_BOUND = 60

unique = clu.unique


@pytest.fixture(scope="module", params=IMPLS)
def impl(request):
    clu.skip_unsupported(request.param)
    return request.param


def _report(self, msg):
    return "%s [%s cluster]\n%s" % (msg, self.impl, self.log_tails())


clu.Cluster.report = _report


@pytest.fixture(scope="module")
def rc(impl, tmp_path_factory):
    """One 3-node cluster for the module (RF 3 everywhere, min.insync.replicas=2)."""
    from conftest import OXKA_BIN
    c = clu.Cluster(impl, str(tmp_path_factory.mktemp("repl-" + impl)), n=3, overrides=OVERRIDES,
                    oxka_bin=OXKA_BIN)
    try:
        c.start()
        yield c
    finally:
        c.__dict__.pop("admins", None)
        gc.collect()
        c.close()


@pytest.fixture
def healthy(rc):
    """The shared cluster with every node up and every partition fully in sync."""
    c = rc
    dead = [n for n in c.nodes if not n.alive()]
    for n in c.nodes:
        if n.paused:
            n.resume()
    for n in dead:
        n.restart()
    if dead:
        c.wait_ready()
    c.__dict__.pop("admins", None)  # librdkafka admin clients may cache a dead controller
    gc.collect()
    last = {}

    def in_sync():
        last["bad"] = under_replicated(c)
        return not last["bad"]
    try:
        c.wait_until(in_sync, ISR_BOUND + 30, "every partition's replicas all in sync", interval=0.5)
    except AssertionError as e:
        raise AssertionError("out of sync: %r\n%s" % (last.get("bad"), e)) from None
    return c


# ------------------------------------------------------------------ probes and helpers
def admin(c, *node_ids):
    """A confluent-kafka AdminClient bootstrapped at those nodes, kept by the cluster until the
    next test (a future must not outlive its client)."""
    cache = c.__dict__.setdefault("admins", {})
    key = c.bootstrap(*node_ids)
    if key not in cache:
        cache[key] = AdminClient({"bootstrap.servers": key, "socket.timeout.ms": 10000,
                                  "log.connection.close": False})
    return cache[key]


def live_ids(c):
    return [n.node_id for n in c.live()]


def metadata(node, topics=None, timeout=10):
    """Metadata (v12, or the highest the node serves) from one node:
    {topic: {"error", "id", "partitions": {p: {"error", "leader", "epoch", "replicas", "isr",
    "offline"}}}}."""
    from kafka.protocol.metadata import MetadataRequest
    probe = clu.Probe(node.port, timeout=timeout)
    v = probe.version(3, 12, lowest=5)
    T = MetadataRequest.MetadataRequestTopic
    kw = dict(topics=None if topics is None else [T(name=t) for t in topics],
              allow_auto_topic_creation=False)
    if v >= 8:
        kw["include_topic_authorized_operations"] = False
    if 8 <= v <= 10:
        kw["include_cluster_authorized_operations"] = False
    r = probe.call(MetadataRequest, v, **kw)
    out = {}
    for t in r.topics:
        parts = {}
        for p in t.partitions:
            parts[p.partition_index] = {
                "error": p.error_code, "leader": p.leader_id,
                "epoch": getattr(p, "leader_epoch", -1),
                "replicas": sorted(p.replica_nodes), "isr": sorted(p.isr_nodes),
                "offline": sorted(getattr(p, "offline_replicas", []) or [])}
        out[t.name] = {"error": t.error_code, "id": getattr(t, "topic_id", None), "partitions": parts}
    return out


def under_replicated(c):
    """{(topic, partition): (node, error, isr)} of every partition (all topics, internal ones
    too) whose ISR is not all its replicas, as every live node reports it; {} when all are in
    sync."""
    bad = {}
    for n in c.live():
        for name, t in metadata(n).items():
            if t["error"]:
                bad[(name, "error")] = t["error"]
                continue
            for p, s in t["partitions"].items():
                if s["error"] or s["isr"] != s["replicas"] or s["leader"] not in s["isr"]:
                    bad[(name, p)] = (n.node_id, s["error"], s["isr"])
    return bad


def pstate(c, topic, nodes=None):
    """{partition: state} of `topic`, once every node of `nodes` (default: live) reports the same
    leaders, replicas and ISRs; else None."""
    seen = {}
    for n in nodes or c.live():
        md = metadata(n, [topic])[topic]
        if md["error"]:
            return None
        seen[n.node_id] = {p: (s["leader"], s["replicas"], s["isr"]) for p, s in md["partitions"].items()}
        last = md["partitions"]
    vals = list(seen.values())
    if not vals or any(v != vals[0] for v in vals):
        return None
    return last


def create_topic(c, name, partitions, config=None, assignment=None, timeout=60):
    """CreateTopics (RF 3, or an explicit replica assignment) via confluent-kafka; waits until
    every live node reports every partition with a leader and a full ISR, and (Kafka lists a
    leader a moment before it serves it) every partition answers ListOffsets."""
    if assignment is not None:
        nt = NewTopic(name, len(assignment), -1, replica_assignment=assignment, config=config or {})
    else:
        nt = NewTopic(name, partitions, 3, config=config or {})
    fs = admin(c, *live_ids(c)).create_topics([nt], request_timeout=30)
    try:
        assert fs[name].result(40) is None
    except KafkaException as e:
        c.fail("CreateTopics %s failed: %r" % (name, e))

    def ready():
        st = pstate(c, name)
        if st is None or len(st) != partitions:
            return None
        if all(s["leader"] in c.ids and len(s["isr"]) == 3 for s in st.values()):
            return st
        return None
    st = c.wait_until(ready, timeout, "%s: %d partitions with a leader and 3 in sync" % (name, partitions))
    cons = Consumer({"bootstrap.servers": c.bootstrap(*live_ids(c)), "group.id": "unused"})
    try:
        for p in range(partitions):
            c.wait_until(lambda: cons.get_watermark_offsets(TopicPartition(name, p), timeout=5,
                                                            cached=False) == (0, 0),
                         timeout, "%s[%d] served by its leader" % (name, p))
    finally:
        cons.close()
    return st


def leader_of(c, topic, partition=0, nodes=None):
    st = pstate(c, topic, nodes)
    return None if st is None else st[partition]["leader"]


def raw_produce(node, topic, partition, values, acks, timeout_ms=5000, sock_timeout=30):
    """One Produce (v9..12, the highest the node serves) to one node: the partition response."""
    from kafka.protocol.producer import ProduceRequest
    TPD = ProduceRequest.TopicProduceData
    probe = clu.Probe(node.port, timeout=sock_timeout)
    v = probe.version(0, 12, lowest=3)
    r = probe.call(ProduceRequest, v, transactional_id=None, acks=acks, timeout_ms=timeout_ms,
                   topic_data=[TPD(name=topic, partition_data=[TPD.PartitionProduceData(
                       index=partition, records=kwire.record_batch(values))])])
    return r.responses[0].partition_responses[0]


def cf_producer(c, **conf):
    base = {"bootstrap.servers": c.bootstrap(*live_ids(c)), "acks": "all", "linger.ms": 5,
            "message.timeout.ms": 60000, "log.connection.close": False}
    base.update(conf)
    return Producer(base)


def cf_produce(c, topic, values, partition=None, **conf):
    """confluent-kafka acks=all; [(value, partition, offset)] in delivery order; fails on any
    delivery error."""
    p = cf_producer(c, **conf)
    out, errs = [], []

    def cb(err, m):
        (errs if err is not None else out).append(
            (m.value(), err) if err is not None else (m.value(), m.partition(), m.offset()))
    for v in values:
        kw = {"value": v, "on_delivery": cb}
        if partition is not None:
            kw["partition"] = partition
        p.produce(topic, **kw)
        p.poll(0)
    left = p.flush(60)
    assert left == 0 and not errs, c.report("%d undelivered, errors %r" % (left, errs[:5]))
    return out


def cf_read(c, topic, partitions, want, timeout=60, nodes=None, **conf):
    """confluent-kafka, assigned from the beginning: [(partition, offset, value)] until `want`
    records (then one more poll, so extra records would show)."""
    base = {"bootstrap.servers": c.bootstrap(*(nodes or live_ids(c))), "group.id": unique("rd"),
            "enable.auto.commit": False, "log.connection.close": False}
    base.update(conf)
    cons = Consumer(base)
    got = []
    try:
        cons.assign([TopicPartition(topic, p, -2) for p in range(partitions)])  # OFFSET_BEGINNING
        deadline = time.monotonic() + timeout
        for _ in range(int(timeout / 0.2) + 10):
            if len(got) >= want or time.monotonic() > deadline:
                break
            for m in cons.consume(500, 0.2):
                if m.error() is not None:
                    if m.error().code() == KafkaError._PARTITION_EOF:
                        continue
                    c.fail("consumer error %r" % m.error())
                got.append((m.partition(), m.offset(), m.value()))
        for m in cons.consume(500, 1.0):
            if m.error() is None:
                got.append((m.partition(), m.offset(), m.value()))
    finally:
        cons.close()
    return got


def kp_read(c, topic, partitions, want, timeout=60):
    """kafka-python, assigned from the beginning: [(partition, offset, value)]."""
    from kafka import KafkaConsumer
    from kafka import TopicPartition as KTP
    kc = KafkaConsumer(bootstrap_servers=c.bootstrap(*live_ids(c)), group_id=None,
                       enable_auto_commit=False, auto_offset_reset="earliest",
                       request_timeout_ms=20000)
    got = []
    try:
        tps = [KTP(topic, p) for p in range(partitions)]
        kc.assign(tps)
        kc.seek_to_beginning(*tps)
        deadline = time.monotonic() + timeout
        for _ in range(int(timeout / 0.5) + 10):
            if len(got) >= want or time.monotonic() > deadline:
                break
            for recs in kc.poll(timeout_ms=500, max_records=500).values():
                got.extend((r.partition, r.offset, r.value) for r in recs)
        for recs in kc.poll(timeout_ms=1000).values():
            got.extend((r.partition, r.offset, r.value) for r in recs)
    finally:
        kc.close()
    return got


def kill(c, node_id):
    c.node(node_id).kill()
    c.__dict__.pop("admins", None)
    gc.collect()


# ------------------------------------------------------------------ 1. RF 3 metadata, produce, consume
def test_rf3_topic_has_three_replicas_in_sync_spread_leaders_and_round_trips(healthy):
    """6 partitions, RF 3, min.insync.replicas=2: every node's Metadata, the raw
    DescribeTopicPartitions (where served) and confluent-kafka's describe_topics list 3 replicas
    and an ISR of 3 for every partition, the leader among them, leaders on every broker.
    600 records acks=all (300 by confluent-kafka, 300 by kafka-python) are read back from the
    beginning by both clients at the offsets their producers reported."""
    c = healthy
    t = unique("rf3")
    create_topic(c, t, 6)
    for n in c.nodes:
        md = metadata(n, [t])[t]
        assert md["error"] == NONE and sorted(md["partitions"]) == list(range(6)), md
        for p, s in md["partitions"].items():
            assert s["error"] == NONE and s["replicas"] == [1, 2, 3] and s["isr"] == [1, 2, 3], \
                c.report("node %d: %s[%d] %r" % (n.node_id, t, p, s))
            assert s["leader"] in s["isr"] and s["offline"] == [] and s["epoch"] >= 0, s
    st = pstate(c, t)
    per_broker = {b: sorted(p for p, s in st.items() if s["leader"] == b) for b in c.ids}
    assert all(per_broker.values()), c.report("leaders not spread: %r" % per_broker)

    # raw DescribeTopicPartitions (KIP-966, api 75), where the node serves it
    from kafka.protocol.admin import DescribeTopicPartitionsRequest
    for n in c.nodes:
        v = n.probe.version(75, 0)
        if v is None:
            continue
        r = n.probe.call(DescribeTopicPartitionsRequest, v, topics=[
            DescribeTopicPartitionsRequest.TopicRequest(name=t)], response_partition_limit=100,
            cursor=None)
        [tr] = r.topics
        assert (tr.name, tr.error_code, len(tr.partitions)) == (t, NONE, 6), tr
        for p in tr.partitions:
            assert sorted(p.replica_nodes) == [1, 2, 3] and sorted(p.isr_nodes) == [1, 2, 3], p
            assert p.leader_id == st[p.partition_index]["leader"], (p, st)
            # KIP-966: eligible leader replicas are empty with ELR off (Kafka 4.1's default)
            assert list(p.eligible_leader_replicas or []) == [], p

    # confluent-kafka describe_topics
    d = admin(c, 1).describe_topics(TopicCollection([t]), request_timeout=20)[t].result(30)
    assert len(d.partitions) == 6
    for p in d.partitions:
        assert sorted(x.id for x in p.replicas) == [1, 2, 3], p
        assert sorted(x.id for x in p.isr) == [1, 2, 3], p
        assert p.leader.id == st[p.id]["leader"], (p, st)

    # produce acks=all: confluent-kafka, then kafka-python, to every partition
    a = [b"cf%03d" % i for i in range(300)]
    acked = [(p, o, v) for v, p, o in cf_produce(c, t, a, **{"enable.idempotence": True})]
    from kafka import KafkaProducer
    kp = KafkaProducer(bootstrap_servers=c.bootstrap(), acks="all", linger_ms=5,
                       request_timeout_ms=30000)
    try:
        futs = [(b"kp%03d" % i, kp.send(t, b"kp%03d" % i, partition=i % 6)) for i in range(300)]
        kp.flush(60)
        for v, f in futs:
            md = f.get(timeout=30)
            acked.append((md.partition, md.offset, v))
    finally:
        kp.close(10)
    assert sorted(v for _, _, v in acked) == sorted(a + [b"kp%03d" % i for i in range(300)])
    by_part = {}
    for p, o, v in acked:
        by_part.setdefault(p, []).append(o)
    assert len(by_part) == 6
    for p, offs in by_part.items():  # dense offsets 0..n-1 per partition
        assert sorted(offs) == list(range(len(offs))), (p, sorted(offs)[:10])
    want = sorted(acked)

    got = cf_read(c, t, 6, len(want))
    assert sorted(got) == want, c.report("confluent-kafka read %d of %d (%d distinct)"
                                         % (len(got), len(want), len(set(got))))
    got = kp_read(c, t, 6, len(want))
    assert sorted(got) == want, c.report("kafka-python read %d of %d (%d distinct)"
                                         % (len(got), len(want), len(set(got))))
    # per-partition order as read = offset order
    for p in range(6):
        offs = [o for q, o, _ in got if q == p]
        assert offs == sorted(offs)
    # every node's high watermark (ListOffsets latest is the leader's, read via each node
    # bootstrap) agrees
    for n in c.nodes:
        cons = Consumer({"bootstrap.servers": n.bootstrap, "group.id": "unused"})
        try:
            for p in range(6):
                assert cons.get_watermark_offsets(TopicPartition(t, p), timeout=10,
                                                  cached=False) == (0, len(by_part[p]))
        finally:
            cons.close()


# ------------------------------------------------------------------ 2. leader SIGKILL mid-stream
def test_idempotent_producer_across_a_leader_sigkill_loses_and_duplicates_nothing(healthy):
    """One partition, RF 3. An idempotent confluent-kafka producer (acks=all) sends 0..N-1;
    half way the partition leader is SIGKILLed; it keeps sending. Every delivery report
    succeeds; a new leader from the old ISR is named within FAILOVER_BOUND; a consumer reads
    every value exactly once, in order, at the offsets the reports gave."""
    c = healthy
    t = unique("kill")
    st = create_topic(c, t, 1)
    old = st[0]["leader"]
    old_isr = st[0]["isr"]
    old_epoch = st[0]["epoch"]
    p = cf_producer(c, **{"enable.idempotence": True, "acks": "all", "linger.ms": 2,
                          "message.timeout.ms": 90000, "retry.backoff.ms": 100})
    ok, failed = [], []

    def cb(err, m):
        if err is None:
            ok.append((int(m.value()), m.offset()))
        else:
            failed.append((int(m.value()), err.code(), err.name()))
    N, KILL_AT = 3000, 1500
    t_kill = None
    for i in range(N):
        for _ in range(100):  # a full local queue: poll and retry, bounded
            try:
                p.produce(t, value=b"%06d" % i, partition=0, on_delivery=cb)
                break
            except BufferError:
                p.poll(0.1)
        p.poll(0)
        if i % 100 == 0:
            time.sleep(0.05)  # a stream, not one burst
        if i == KILL_AT:
            p.flush(30)
            acked_before = len(ok)
            kill(c, old)
            t_kill = time.monotonic()
    left = p.flush(120)
    del p
    gc.collect()
    assert left == 0, c.report("%d records never reported" % left)
    assert not failed, c.report("%d delivery failures, first %r" % (len(failed), failed[:5]))
    assert len(ok) == N and acked_before >= KILL_AT

    survivors = [n for n in c.nodes if n.node_id != old]
    st2 = c.wait_until(lambda: (lambda s: s if s and s[0]["leader"] not in (old, -1) else None)(
        pstate(c, t, survivors)), FAILOVER_BOUND, "a new leader of %s[0]" % t)
    failover = time.monotonic() - t_kill
    new = st2[0]["leader"]
    assert new in old_isr and new != old
    assert st2[0]["epoch"] > old_epoch, (old_epoch, st2)
    # the dead replica leaves the ISR (the leader's lag check or the controller fencing it)
    c.wait_until(lambda: (lambda s: s if s and old not in s[0]["isr"] else None)(
        pstate(c, t, survivors)), ISR_BOUND, "the dead node %d out of the ISR of %s[0]" % (old, t))

    got = cf_read(c, t, 1, N, timeout=90, nodes=[n.node_id for n in survivors])
    values = [int(v) for _, _, v in got]
    assert len(values) == len(set(values)), c.report("duplicates: %d read, %d distinct"
                                                     % (len(values), len(set(values))))
    assert values == list(range(N)), c.report("read %d values, first gaps %r" % (
        len(values), sorted(set(range(N)) - set(values))[:10]))
    assert [(int(v), o) for _, o, v in got] == sorted(ok), "offsets differ from delivery reports"
    assert [o for _, o, _ in got] == list(range(N))
    print("%s: leader %d SIGKILLed; %d named leader after %.1fs (epoch %d -> %d)"
          % (c.impl, old, new, failover, old_epoch, st2[0]["epoch"]))


# ------------------------------------------------------------------ 3. too few in sync
def test_acks_all_below_min_insync_is_not_enough_replicas_and_acks_1_still_works(healthy):
    """RF 3, min.insync.replicas=3 (a topic config). One follower SIGKILLed: the leader shrinks
    the ISR to 2 within ISR_BOUND; then acks=all is NOT_ENOUGH_REPLICAS (19) — raw Produce and
    kafka-python — nothing is appended, while acks=1 appends on the leader at the next offset.
    A second topic at min.insync.replicas=2 with the same two replicas in sync still takes
    acks=all."""
    c = healthy
    t = unique("nei")
    t2 = unique("nei2")
    st = create_topic(c, t, 1, config={"min.insync.replicas": "3"})
    leader = st[0]["leader"]
    # the second topic: same replicas, its leader on the same node (explicit assignment)
    others = [i for i in c.ids if i != leader]
    create_topic(c, t2, 1, assignment=[[leader] + others])
    assert leader_of(c, t2) == leader
    r = raw_produce(c.node(leader), t, 0, [b"a0", b"a1"], acks=-1)
    assert (r.error_code, r.base_offset) == (NONE, 0), r

    victim = others[0]
    kill(c, victim)
    t0 = time.monotonic()
    live = [c.node(i) for i in c.ids if i != victim]
    c.wait_until(lambda: (lambda s: s if s and s[0]["isr"] == sorted([leader, others[1]]) else None)(
        pstate(c, t, live)), ISR_BOUND, "the ISR of %s[0] to shrink to %r" % (t, [leader, others[1]]))
    shrunk = time.monotonic() - t0
    assert leader_of(c, t, nodes=live) == leader  # a follower's death moves no leadership

    # raw Produce acks=all to the leader: NOT_ENOUGH_REPLICAS, at once, nothing appended
    t1 = time.monotonic()
    r = raw_produce(c.node(leader), t, 0, [b"x"], acks=-1, timeout_ms=10000)
    took = time.monotonic() - t1
    assert r.error_code == NOT_ENOUGH_REPLICAS, c.report("acks=all with ISR 2 < 3: %r" % r)
    assert took < 8, "NOT_ENOUGH_REPLICAS took %.1fs (it is checked before the append)" % took

    # kafka-python acks=all: the same code, no retries so the error is the broker's
    from kafka import KafkaProducer
    from kafka.errors import KafkaError as KPError
    kp = KafkaProducer(bootstrap_servers=c.bootstrap(*[n.node_id for n in live]), acks="all",
                       retries=0, request_timeout_ms=15000, max_block_ms=20000)
    try:
        with pytest.raises(KPError) as e:
            kp.send(t, b"kp-all", partition=0).get(timeout=30)
        assert getattr(e.value, "errno", None) == NOT_ENOUGH_REPLICAS, repr(e.value)
    finally:
        kp.close(10)
    # confluent-kafka acks=all, retries off: its delivery report says NOT_ENOUGH_REPLICAS
    p = cf_producer(c, **{"acks": "all", "retries": 0, "enable.idempotence": False,
                          "message.timeout.ms": 20000,
                          "bootstrap.servers": c.bootstrap(*[n.node_id for n in live])})
    errs = []
    p.produce(t, value=b"cf-all", partition=0, on_delivery=lambda err, m: errs.append(err))
    assert p.flush(30) == 0
    del p
    assert [e.code() if e else None for e in errs] == [KafkaError.NOT_ENOUGH_REPLICAS], errs

    # acks=1 still appends on the live leader, at the next offset: nothing was appended above
    r = raw_produce(c.node(leader), t, 0, [b"one"], acks=1)
    assert (r.error_code, r.base_offset) == (NONE, 2), c.report("acks=1 with ISR 2: %r" % r)
    from kafka import KafkaProducer as KP
    kp = KP(bootstrap_servers=c.bootstrap(*[n.node_id for n in live]), acks=1, retries=0,
            request_timeout_ms=15000)
    try:
        md = kp.send(t, b"kp-one", partition=0).get(timeout=30)
        assert (md.partition, md.offset) == (0, 3)
    finally:
        kp.close(10)
    # the topic at min.insync.replicas=2 takes acks=all with the same two replicas in sync
    c.wait_until(lambda: (lambda s: s if s and len(s[0]["isr"]) == 2 else None)(pstate(c, t2, live)),
                 ISR_BOUND, "the ISR of %s[0] to shrink" % t2)
    r = raw_produce(c.node(leader), t2, 0, [b"b0"], acks=-1)
    assert (r.error_code, r.base_offset) == (NONE, 0), r
    # KIP-966 (eligible leader replicas, on in a new Kafka 4.1 cluster): the high watermark
    # does not advance while the ISR is below min.insync.replicas, so the acks=1 records are on
    # the leader's log (offsets 2, 3) but not yet readable
    cons = Consumer({"bootstrap.servers": c.bootstrap(*[n.node_id for n in live]), "group.id": "unused"})
    try:
        assert cons.get_watermark_offsets(TopicPartition(t, 0), timeout=10, cached=False) == (0, 2)
    finally:
        cons.close()
    from kafka.protocol.admin import DescribeTopicPartitionsRequest
    ldr = c.node(leader)
    if ldr.probe.version(75, 0) is not None:
        dr = ldr.probe.call(DescribeTopicPartitionsRequest, 0, topics=[
            DescribeTopicPartitionsRequest.TopicRequest(name=t)], response_partition_limit=10, cursor=None)
        print("DescribeTopicPartitions with ISR < min.isr:", dr.topics[0].partitions[0])
    got = cf_read(c, t, 1, 2, nodes=[n.node_id for n in live])
    assert [(o, v) for _, o, v in got] == [(0, b"a0"), (1, b"a1")], got
    # the follower comes back: ISR 3 again, the high watermark moves past the acks=1 records
    c.node(victim).start()
    c.wait_ready(nodes=[c.node(victim)])
    c.wait_until(lambda: (lambda s: s if s and s[0]["isr"] == [1, 2, 3] else None)(pstate(c, t)),
                 ISR_BOUND, "%d back in the ISR of %s[0]" % (victim, t))
    got = cf_read(c, t, 1, 4)
    assert [(o, v) for _, o, v in got] == [(0, b"a0"), (1, b"a1"), (2, b"one"), (3, b"kp-one")], got
    r = raw_produce(c.node(leader), t, 0, [b"all-again"], acks=-1)
    assert (r.error_code, r.base_offset) == (NONE, 4), r
    print("%s: follower %d SIGKILLed, ISR of %s[0] shrunk to 2 after %.1fs; NOT_ENOUGH_REPLICAS in %.2fs"
          % (c.impl, victim, t, shrunk, took))


def test_two_of_three_down_leaves_no_controller_to_shrink_the_isr(healthy):
    """Both followers of a min.insync.replicas=2 partition SIGKILLed: two of the three voters
    are gone, so there is no metadata quorum, and nothing can take the dead replicas out of the
    ISR (AlterPartition and broker fencing need the controller). The leader still counts 3 in
    sync: acks=all is appended and answered REQUEST_TIMED_OUT (7) after the request's
    timeout_ms, *not* NOT_ENOUGH_REPLICAS; acks=1 appends after it. (With a quorum,
    test_acks_all_below_min_insync_is_not_enough_replicas... shows NOT_ENOUGH_REPLICAS.)"""
    c = healthy
    t = unique("two")
    st = create_topic(c, t, 1)
    leader = st[0]["leader"]
    r = raw_produce(c.node(leader), t, 0, [b"z0"], acks=-1)
    assert (r.error_code, r.base_offset) == (NONE, 0), r
    for i in c.ids:
        if i != leader:
            kill(c, i)
    time.sleep(LAG_MS / 1000.0 + 2)  # past replica.lag.time.max.ms
    ldr = c.node(leader)
    assert metadata(ldr, [t])[t]["partitions"][0]["isr"] == [1, 2, 3]  # stale but all it knows
    t0 = time.monotonic()
    r = raw_produce(ldr, t, 0, [b"z1"], acks=-1, timeout_ms=3000)
    took = time.monotonic() - t0
    assert r.error_code == REQUEST_TIMED_OUT, c.report("acks=all with both followers dead: %r" % r)
    assert 2.5 < took < 15, took
    r = raw_produce(ldr, t, 0, [b"z2"], acks=1)
    assert (r.error_code, r.base_offset) == (NONE, 2), c.report("acks=1 with both followers dead: %r" % r)
    print("%s: both followers of %s[0] dead: acks=all answered %d after %.1fs, acks=1 at offset %d"
          % (c.impl, t, REQUEST_TIMED_OUT, took, r.base_offset))


# ------------------------------------------------------------------ 4. a follower comes back
def test_restarted_replica_rejoins_the_isr_and_holds_the_data_as_leader(healthy):
    """Replicas [A, B, C] in that order (A the preferred leader). A SIGKILLed: B leads; records
    are produced acks=all with A down; A restarts, catches up and is back in the ISR within
    ISR_BOUND; then B is SIGKILLed, so A (first in-sync replica in assignment order) leads,
    and a consumer bootstrapped at A and C reads every acknowledged record at its offset."""
    c = healthy
    t = unique("back")
    A, B, C = 3, 1, 2
    st = create_topic(c, t, 1, assignment=[[A, B, C]])
    assert st[0]["leader"] == A and st[0]["replicas"] == [1, 2, 3]
    first = cf_produce(c, t, [b"a%03d" % i for i in range(100)], partition=0)

    kill(c, A)
    t0 = time.monotonic()
    live = [c.node(B), c.node(C)]
    c.wait_until(lambda: leader_of(c, t, nodes=live) == B, FAILOVER_BOUND,
                 "%d to lead %s[0] after %d's SIGKILL" % (B, t, A))
    failover = time.monotonic() - t0
    c.wait_until(lambda: (lambda s: s if s and s[0]["isr"] == sorted([B, C]) else None)(
        pstate(c, t, live)), ISR_BOUND, "%d out of the ISR" % A)
    second = cf_produce(c, t, [b"b%03d" % i for i in range(100)], partition=0)

    c.node(A).start()
    t1 = time.monotonic()
    c.wait_ready(nodes=[c.node(A)])
    c.wait_until(lambda: (lambda s: s if s and s[0]["isr"] == [1, 2, 3] else None)(pstate(c, t)),
                 ISR_BOUND, "%d back in the ISR of %s[0]" % (A, t))
    rejoined = time.monotonic() - t1
    assert leader_of(c, t) == B  # no automatic move back (auto.leader.rebalance.enable=false)
    third = cf_produce(c, t, [b"c%03d" % i for i in range(50)], partition=0)
    acked = [(o, v) for v, _, o in first + second + third]
    assert [o for o, _ in acked] == list(range(250)), acked[:5]

    kill(c, B)
    live = [c.node(A), c.node(C)]
    c.wait_until(lambda: leader_of(c, t, nodes=live) == A, FAILOVER_BOUND,
                 "the restarted %d to lead %s[0] after %d's SIGKILL" % (A, t, B))
    got = cf_read(c, t, 1, 250, nodes=[A, C])
    assert [(o, v) for _, o, v in got] == acked, c.report(
        "read from the restarted leader %d: %d records, first %r" % (A, len(got), got[:3]))
    # and it takes writes: acks=all with A and C in sync (2 = min.insync.replicas)
    c.wait_until(lambda: (lambda s: s if s and s[0]["isr"] == sorted([A, C]) else None)(
        pstate(c, t, live)), ISR_BOUND, "%d out of the ISR" % B)
    r = raw_produce(c.node(A), t, 0, [b"after"], acks=-1)
    assert (r.error_code, r.base_offset) == (NONE, 250), r
    print("%s: %d led after %.1fs; restarted %d back in the ISR %.1fs after its start"
          % (c.impl, B, failover, A, rejoined))


# ------------------------------------------------------------------ 5. fetch from a follower
def _raw_fetch(node, topic, topic_id, version, partition=0, offset=0, leader_epoch=-1):
    from kafka.protocol.consumer import FetchRequest
    FT = FetchRequest.FetchTopic
    part = FT.FetchPartition(partition=partition, current_leader_epoch=leader_epoch,
                             fetch_offset=offset, partition_max_bytes=1 << 20)
    ft = FT(topic_id=topic_id, partitions=[part]) if version >= 13 else FT(topic=topic, partitions=[part])
    kw = dict(max_wait_ms=0, min_bytes=0, max_bytes=1 << 20, isolation_level=0, session_id=0,
              session_epoch=-1, topics=[ft], forgotten_topics_data=[], rack_id="")
    if version < 15:
        kw["replica_id"] = -1
    r = clu.Probe(node.port).call(FetchRequest, version, **kw)
    [tr] = r.responses
    [pr] = tr.partitions
    return r, pr


def test_fetch_sent_to_a_follower_or_a_non_replica(healthy):
    """A consumer's Fetch sent to a node that does not lead the partition.

    To a follower: before v11 (no KIP-392 client metadata) NOT_LEADER_OR_FOLLOWER (6); from v11
    Kafka serves a consumer's fetch from a follower (KIP-392; the replica selector only decides
    what the *leader* suggests as preferred_read_replica), up to the follower's high watermark;
    a current_leader_epoch newer than the follower knows is UNKNOWN_LEADER_EPOCH (75).

    To a node that holds no replica (an RF 2 topic): NOT_LEADER_OR_FOLLOWER at every version,
    and from v16 (KIP-951) current_leader names the leader and its epoch and node_endpoints its
    address."""
    c = healthy
    t = unique("ffol")
    st = create_topic(c, t, 1)
    leader, epoch = st[0]["leader"], st[0]["epoch"]
    cf_produce(c, t, [b"f%02d" % i for i in range(10)], partition=0)
    tid = metadata(c.node(leader), [t])[t]["id"]
    followers = [n for n in c.nodes if n.node_id != leader]
    checked = 0
    for n in followers:
        lo, hi = n.probe.api_versions()[1]
        # pre-KIP-392 versions: followers refuse consumers
        for v in sorted({max(lo, 4), 10} & set(range(lo, hi + 1))):
            _, pr = _raw_fetch(n, t, tid, v)
            assert pr.error_code == NOT_LEADER_OR_FOLLOWER, c.report(
                "Fetch v%d to follower %d: %r" % (v, n.node_id, pr))
            checked += 1
        # KIP-392 versions: the follower serves its copy (once it has the high watermark)
        top = min(hi, 17)
        for v in sorted({11, 12, top} & set(range(lo, hi + 1))):
            def served():
                _, pr = _raw_fetch(n, t, tid, v)
                recs = bytes(pr.records or b"")
                return pr if pr.error_code == NONE and pr.high_watermark == 10 and recs else None
            pr = c.wait_until(served, 15, "follower %d to serve Fetch v%d up to offset 10" % (n.node_id, v))
            assert pr.preferred_read_replica == -1, pr
            checked += 1
        # an epoch from the future: the follower does not know it
        if hi >= 9:
            _, pr = _raw_fetch(n, t, tid, min(hi, 12), leader_epoch=epoch + 5)
            assert pr.error_code == UNKNOWN_LEADER_EPOCH, c.report(
                "Fetch with epoch %d to follower %d: %r" % (epoch + 5, n.node_id, pr))
    assert checked >= 2 * len(followers)

    # a node with no replica of the partition
    L, F = followers[0].node_id, leader
    X = [i for i in c.ids if i not in (L, F)][0]
    t2 = unique("fnon")
    fs = admin(c).create_topics([NewTopic(t2, 1, -1, replica_assignment=[[L, F]])], request_timeout=30)
    assert fs[t2].result(40) is None
    st2 = c.wait_until(lambda: (lambda s: s if s and s[0]["leader"] == L and s[0]["isr"] == sorted([L, F])
                                else None)(pstate(c, t2)), 30, "%s led by %d, ISR %r" % (t2, L, [L, F]))
    e2 = st2[0]["epoch"]
    cf_produce(c, t2, [b"n0"], partition=0)
    tid2 = metadata(c.node(L), [t2])[t2]["id"]
    x = c.node(X)
    lo, hi = x.probe.api_versions()[1]
    for v in sorted({max(lo, 4), 10, 12, min(hi, 17)} & set(range(lo, hi + 1))):
        r, pr = _raw_fetch(x, t2, tid2, v)
        assert pr.error_code == NOT_LEADER_OR_FOLLOWER, c.report(
            "Fetch v%d to non-replica %d: %r" % (v, X, pr))
        if v >= 16:
            cl = pr.current_leader
            assert (cl.leader_id, cl.leader_epoch) == (L, e2), c.report(
                "KIP-951 current_leader from %d: %r (leader %d epoch %d)" % (X, cl, L, e2))
            eps = {e.node_id: (e.host, e.port) for e in r.node_endpoints}
            assert eps.get(L) == ("127.0.0.1", c.node(L).port), r.node_endpoints
        checked += 1
    print("%s: Fetch to followers of %s[0] (leader %d) and to non-replica %d: %d checks"
          % (c.impl, t, leader, X, checked))


# ------------------------------------------------------------------ 6. group coordinator failover
def test_group_resumes_from_its_commits_after_the_coordinator_is_sigkilled(healthy):
    """__consumer_offsets RF 3. A confluent-kafka member of group g reads 3 partitions part way
    and commits exactly what it read; the group coordinator (FindCoordinator) is SIGKILLed; a
    survivor becomes coordinator within FAILOVER_BOUND and returns the same committed offsets;
    a new member of g reads from exactly those offsets: nothing before them again, nothing
    between them and the end skipped."""
    c = healthy
    t = unique("gco")
    create_topic(c, t, 3)
    g = unique("g")
    acked = cf_produce(c, t, [b"a%03d" % i for i in range(90)], partition=None,
                       **{"partitioner": "consistent_random"})
    # coordinator
    coord = c.wait_until(lambda: (lambda a: a[1] if a[0] == NONE else None)(c.node(1).probe.find_coordinator(g)),
                         60, "FindCoordinator(%s)" % g, interval=0.5)
    assert coord in c.ids

    cons = Consumer({"bootstrap.servers": c.bootstrap(), "group.id": g,
                     "auto.offset.reset": "earliest", "enable.auto.commit": False,
                     "session.timeout.ms": 10000, "log.connection.close": False})
    read = []
    try:
        cons.subscribe([t])
        deadline = time.monotonic() + 60
        for _ in range(600):
            if len(read) >= 40 or time.monotonic() > deadline:
                break
            m = cons.poll(0.5)
            if m is None:
                continue
            assert m.error() is None, c.report("consumer error %r" % m.error())
            read.append((m.partition(), m.offset(), m.value()))
        assert len(read) >= 40, c.report("first member read only %d" % len(read))
        pos = {}
        for p, o, _ in read:
            pos[p] = max(pos.get(p, -1), o + 1)
        commit = [TopicPartition(t, p, pos.get(p, 0)) for p in range(3)]
        res = cons.commit(offsets=commit, asynchronous=False)
        assert all(x.error is None for x in res), res
        got = cons.committed([TopicPartition(t, p) for p in range(3)], timeout=15)
        assert {x.partition: x.offset for x in got} == {p: pos.get(p, 0) for p in range(3)}, got
    finally:
        cons.close()
    committed = {p: pos.get(p, 0) for p in range(3)}
    # make sure the commit is replicated before the kill: every replica of its offsets partition in
    # sync (acks=all on __consumer_offsets with min.insync.replicas=2 already guarantees >= 2)

    kill(c, coord)
    t0 = time.monotonic()
    survivors = [n for n in c.nodes if n.node_id != coord]

    def new_coordinator():
        ans = {n.node_id: n.probe.find_coordinator(g) for n in survivors}
        ids = {a[1] for a in ans.values() if a[0] == NONE}
        if all(a[0] == NONE for a in ans.values()) and len(ids) == 1 and coord not in ids:
            return ids.pop()
        return None
    new = c.wait_until(new_coordinator, FAILOVER_BOUND, "a coordinator for %s other than %d" % (g, coord),
                       interval=0.5)
    moved = time.monotonic() - t0

    more = cf_produce(c, t, [b"b%03d" % i for i in range(30)], partition=None)
    everything = [(p, o, v) for v, p, o in acked + more]
    expect = sorted(x for x in everything if x[1] >= committed[x[0]])

    # kafka-python's admin names the same offsets, from the new coordinator
    from kafka.admin import KafkaAdminClient
    ka = KafkaAdminClient(bootstrap_servers=c.bootstrap(*[n.node_id for n in survivors]),
                          request_timeout_ms=20000)
    try:
        offs = c.wait_until(lambda: ka.list_group_offsets({g: None})[g], 30, "OffsetFetch of " + g)
    finally:
        ka.close()
    assert {tp.partition: om.offset for tp, om in offs.items() if tp.topic == t} == committed, offs

    cons = Consumer({"bootstrap.servers": c.bootstrap(*[n.node_id for n in survivors]), "group.id": g,
                     "auto.offset.reset": "earliest", "enable.auto.commit": False,
                     "session.timeout.ms": 10000, "log.connection.close": False})
    again = []
    try:
        cons.subscribe([t])
        deadline = time.monotonic() + 90
        for _ in range(900):
            if len(again) >= len(expect) or time.monotonic() > deadline:
                break
            m = cons.poll(0.5)
            if m is None or (m.error() and m.error().code() == KafkaError._PARTITION_EOF):
                continue
            assert m.error() is None, c.report("consumer error %r" % m.error())
            again.append((m.partition(), m.offset(), m.value()))
        for _ in range(4):  # anything re-read from before the commit would show up here
            m = cons.poll(0.5)
            if m is not None and m.error() is None:
                again.append((m.partition(), m.offset(), m.value()))
    finally:
        cons.close()
    assert sorted(again) == expect, c.report(
        "after failover read %d, expected %d; re-read %r, missing %r" % (
            len(again), len(expect), sorted(set(again) - set(expect))[:5],
            sorted(set(expect) - set(again))[:5]))
    assert len(again) == len(set(again))
    print("%s: group coordinator %d SIGKILLed; %d coordinator after %.1fs" % (c.impl, coord, new, moved))


# ------------------------------------------------------------------ 7. transaction coordinator failover
def test_transactions_survive_a_transaction_coordinator_sigkill(healthy):
    """__transaction_state RF 3. A transactional confluent-kafka producer commits 20 records,
    then leaves a second transaction of 20 open; its transaction coordinator is SIGKILLed; a new
    producer with the same transactional.id init_transactions() within a bound (fencing the old
    one and aborting its open transaction) and commits 20 more. A read_committed consumer sees
    exactly the 40 committed records, in order; read_uncommitted sees the aborted ones too."""
    c = healthy
    t = unique("txc")
    create_topic(c, t, 1)
    tid = unique("tx")
    p1 = cf_producer(c, **{"transactional.id": tid, "enable.idempotence": True, "linger.ms": 5})
    p1.init_transactions(60)
    p1.begin_transaction()
    for i in range(20):
        p1.produce(t, value=b"c1-%02d" % i, partition=0)
    p1.commit_transaction(60)
    coord = c.wait_until(lambda: (lambda a: a[1] if a[0] == NONE else None)(
        c.node(1).probe.find_coordinator(tid, key_type=1)), 30, "FindCoordinator(txn %s)" % tid)
    p1.begin_transaction()
    for i in range(20):
        p1.produce(t, value=b"open-%02d" % i, partition=0)
    assert p1.flush(30) == 0  # the open transaction's records are on the log, not committed

    kill(c, coord)
    t0 = time.monotonic()
    p2 = cf_producer(c, **{"transactional.id": tid, "enable.idempotence": True, "linger.ms": 5,
                           "bootstrap.servers": c.bootstrap(*[i for i in c.ids if i != coord])})
    init_err = None
    for _ in range(3):  # bounded: each init_transactions waits up to 40 s
        try:
            p2.init_transactions(40)
            init_err = None
            break
        except KafkaException as e:
            init_err = e
            if not e.args[0].retriable():
                break
    assert init_err is None, c.report("init_transactions after coordinator %d died: %r" % (coord, init_err))
    took = time.monotonic() - t0
    p2.begin_transaction()
    for i in range(20):
        p2.produce(t, value=b"c2-%02d" % i, partition=0)
    p2.commit_transaction(60)
    del p2
    # the old producer is fenced
    with pytest.raises(KafkaException) as fenced:
        p1.commit_transaction(20)
    print("old producer's commit:", fenced.value.args[0])
    assert fenced.value.args[0].code() in (KafkaError._FENCED, KafkaError.PRODUCER_FENCED,
                                           KafkaError.INVALID_PRODUCER_EPOCH), fenced.value
    p1.purge()
    del p1
    gc.collect()

    want = [b"c1-%02d" % i for i in range(20)] + [b"c2-%02d" % i for i in range(20)]
    survivors = [i for i in c.ids if i != coord]
    got = cf_read(c, t, 1, len(want), nodes=survivors, **{"isolation.level": "read_committed"})
    assert [v for _, _, v in got] == want, c.report("read_committed: %r" % [v for _, _, v in got])
    raw = cf_read(c, t, 1, 60, nodes=survivors, **{"isolation.level": "read_uncommitted"})
    assert sorted(v for _, _, v in raw) == sorted(want + [b"open-%02d" % i for i in range(20)])
    print("%s: txn coordinator %d SIGKILLed; init_transactions of the new producer took %.1fs"
          % (c.impl, coord, took))
