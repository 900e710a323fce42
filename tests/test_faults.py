"""Random process faults under a steady idempotent write load, checked Jepsen-style afterwards
(a bounded history check on a 3-node cluster, tests/cluster.py).

The cluster: 3 combined broker+controller nodes, `min.insync.replicas=2`,
`replica.lag.time.max.ms=4000`, automatic leader rebalancing and unclean election off; one topic
of 3 partitions at RF 3.

A background thread runs one idempotent confluent-kafka producer (acks=all,
enable.idempotence=true, message.timeout.ms=60000) writing 0, 1, 2, ... (value = key = the
number, explicit partition = n % 3) at a bounded rate, recording every delivery report: acked at
(partition, offset), or an error.  Meanwhile a seeded RNG injects OXKA_FAULTS faults (default 8)
one at a time, each followed by recovery: SIGKILL a node and restart it, SIGTERM a node and
restart it, or SIGSTOP a node for a few seconds and SIGCONT it (down 1-14 s, 1-6 s, 2-12 s: on
both sides of replica.lag.time.max.ms and of broker.session.timeout.ms, 9 s).  At most one node is down at a
time: before the next fault the test waits (bounded) for the node to serve again and for every
partition's ISR to be full on every node.

Afterwards the producer stops and flushes, the ISR is full again, a fresh read_uncommitted
consumer reads every partition from the beginning to its high watermark, and the history must
hold:
- every acknowledged (value, partition, offset) is read at exactly that partition and offset;
- no value is read twice (idempotence) and every value read was sent, to partition value % 3;
- per partition, the offsets read are dense from 0 to the high watermark and the values
  increase (one producer's order per partition);
- the high watermark of each partition agrees on all three nodes (each node's own high
  watermark from a KIP-392 Fetch v11+ sent to it, leader and followers) with the leader's
  ListOffsets latest and with the records read;
- confluent-kafka's describe_topics shows replicas [1,2,3] and ISR [1,2,3] for every partition;
- writes go on after the last fault (acks arrive after its recovery).
Failed deliveries are allowed and only counted: a failed (timed-out) send may still have been
written, so the test reports how many failed and how many of those were read anyway.

    OXKA_BIN=$PWD/target/release/oxka python -m pytest -q -s tests/test_faults.py
    OXKA_FAULT_SEED=1234 OXKA_FAULTS=12 ...   # replay / lengthen a schedule
    OXKA_CLUSTER_IMPL=kafka OXKA_FAULTS=3 python -m pytest -q -s tests/test_faults.py

The seed is printed at the start; a failure carries the seed, the fault schedule as executed
and every node's log tail (Cluster.fail).
"""
import gc
import os
import random
import threading
import time

import pytest
from confluent_kafka import Consumer, KafkaError, KafkaException, Producer, TopicCollection, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

import cluster as clu

IMPLS = clu.selected_impls()

N_FAULTS = int(os.environ.get("OXKA_FAULTS", "8"))
SEED_ENV = os.environ.get("OXKA_FAULT_SEED")

LAG_MS = clu.REPLICA_LAG_MS  # replica.lag.time.max.ms
OVERRIDES = clu.REPLICATED_OVERRIDES
PARTITIONS = 3
RATE = 150            # records per second, at most
MAX_RECORDS = 200000  # the producer's hard bound
ISR_BOUND = 90        # a restarted/resumed node back in every ISR
FLUSH_BOUND = 120     # the producer's final flush (message.timeout.ms is 60 s)
READ_BOUND = 120

# bounded per fault: a gap, the fault, down time, restart/readiness, ISR wait
pytestmark = pytest.mark.timeout(240 + N_FAULTS * (ISR_BOUND + 200))


unique = clu.unique


@pytest.fixture(scope="module", params=IMPLS)
def impl(request):
    clu.skip_unsupported(request.param)
    return request.param


@pytest.fixture(scope="module")
def fc(impl, tmp_path_factory):
    """A 3-node cluster for this module (RF 3 by default, min.insync.replicas=2)."""
    from conftest import OXKA_BIN
    c = clu.Cluster(impl, str(tmp_path_factory.mktemp("faults-" + impl)), n=3, overrides=OVERRIDES,
                    oxka_bin=OXKA_BIN)
    try:
        c.start()
        yield c
    finally:
        gc.collect()
        c.close()


# ------------------------------------------------------------------ raw probes of one node
def metadata(node, topics=None, timeout=10):
    """{topic: (error, {partition: (error, leader, replicas, isr)})} from one node's Metadata
    (v12 or the highest it serves, at least v5)."""
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
    return {t.name: (t.error_code, {p.partition_index: (p.error_code, p.leader_id, sorted(p.replica_nodes),
                                                        sorted(p.isr_nodes)) for p in t.partitions})
            for t in r.topics}


def under_replicated(c):
    """{(node, topic, partition): state} of every partition (all topics) whose ISR is not its
    whole replica set, or without a leader in the ISR, as any live node reports it; {} if none."""
    bad = {}
    for n in c.live():
        for name, (err, parts) in metadata(n).items():
            if err:
                bad[(n.node_id, name, "error")] = err
                continue
            for p, (perr, leader, replicas, isr) in parts.items():
                if perr or isr != replicas or leader not in isr:
                    bad[(n.node_id, name, p)] = (perr, leader, replicas, isr)
    return bad


def node_high_watermark(node, topic, partition):
    """(error, high watermark, log start) as `node` itself answers a consumer's Fetch v11+ (a
    follower serves it under KIP-392, with its own high watermark)."""
    from kafka.protocol.consumer import FetchRequest
    probe = clu.Probe(node.port)
    lo, hi = probe.api_versions()[1]
    v = min(hi, 12)
    assert v >= 11 and lo <= v, "node %d serves Fetch v%d..v%d, no KIP-392" % (node.node_id, lo, hi)
    FT = FetchRequest.FetchTopic
    part = FT.FetchPartition(partition=partition, current_leader_epoch=-1, fetch_offset=0,
                             log_start_offset=-1, partition_max_bytes=1)
    r = probe.call(FetchRequest, v, replica_id=-1, max_wait_ms=0, min_bytes=0, max_bytes=1,
                   isolation_level=0, session_id=0, session_epoch=-1,
                   topics=[FT(topic=topic, partitions=[part])], forgotten_topics_data=[], rack_id="")
    [tr] = r.responses
    [pr] = tr.partitions
    return pr.error_code, pr.high_watermark, pr.log_start_offset


# ------------------------------------------------------------------ the write load
class Writer(threading.Thread):
    """One idempotent producer writing 0, 1, 2, ... to partition n % 3 at <= RATE/s until
    stopped, then flushing.  acked[n] = (partition, offset); failed[n] = error name."""

    def __init__(self, c, topic):
        super().__init__(daemon=True, name="faults-writer")
        self.c = c
        self.topic = topic
        self.stop = threading.Event()
        self.acked = {}
        self.failed = {}
        self.local_fail = {}   # produce() itself refused (queue full for too long, ...)
        self.sent = 0
        self.left = None
        self.exc = None
        self.first_error_at = {}

    def _cb(self, err, m):
        n = int(m.value())
        if err is None:
            self.acked[n] = (m.partition(), m.offset())
        else:
            self.failed[n] = err.name()
            self.first_error_at.setdefault(err.name(), time.monotonic())

    def run(self):
        try:
            p = Producer({"bootstrap.servers": self.c.bootstrap(), "acks": "all",
                          "enable.idempotence": True, "message.timeout.ms": 60000,
                          "linger.ms": 5, "retry.backoff.ms": 100, "log.connection.close": False,
                          "socket.timeout.ms": 10000})
            try:
                step = 10
                t0 = time.monotonic()
                while not self.stop.is_set() and self.sent < MAX_RECORDS:
                    for _ in range(step):
                        n = self.sent
                        v = b"%d" % n
                        for attempt in range(50):  # bounded: a full local queue
                            try:
                                p.produce(self.topic, key=v, value=v, partition=n % PARTITIONS,
                                          on_delivery=self._cb)
                                break
                            except BufferError:
                                p.poll(0.1)
                            except KafkaException as e:
                                self.local_fail[n] = repr(e)
                                break
                        else:
                            self.local_fail[n] = "BufferError"
                        self.sent += 1
                    p.poll(0)
                    # pace: sent records at RATE/s since the start
                    ahead = self.sent / RATE - (time.monotonic() - t0)
                    if ahead > 0:
                        self.stop.wait(ahead)
                self.left = p.flush(FLUSH_BOUND)
            finally:
                del p
                gc.collect()
        except Exception as e:  # noqa: BLE001 - re-raised by the test
            self.exc = e


# ------------------------------------------------------------------ faults
def inject(c, rng, sched, log):
    """One fault and its recovery: a random kind on a random node."""
    kind = rng.choice(["kill", "term", "pause"])
    node = c.node(rng.choice(c.ids))
    # down times on both sides of replica.lag.time.max.ms (4 s: the ISR shrinks or not) and, for
    # SIGKILL and SIGSTOP, of broker.session.timeout.ms (9 s: the node is fenced and its
    # partitions get new leaders, or they wait for it; a SIGSTOPped leader comes back a zombie)
    down = round(rng.uniform(*{"kill": (1.0, 14.0), "term": (1.0, 6.0), "pause": (2.0, 12.0)}[kind]), 1)
    entry = {"kind": kind, "node": node.node_id, "down_s": down, "t": round(time.monotonic() - log["t0"], 1)}
    sched.append(entry)
    print("fault %d: %s node %d for %.1fs (t=%.1fs, acked so far %d)"
          % (len(sched), kind, node.node_id, down, entry["t"], len(log["writer"].acked)))
    if kind == "kill":
        node.kill()
        time.sleep(down)
        node.restart(kill=True)
    elif kind == "term":
        t = time.monotonic()
        node.term()
        entry["term_s"] = round(time.monotonic() - t, 1)
        time.sleep(down)
        node.restart(kill=False)
    else:
        node.pause()
        time.sleep(down)
        node.resume()
    t = time.monotonic()
    c.wait_ready(nodes=[node])
    entry["ready_s"] = round(time.monotonic() - t, 1)
    wait_full_isr(c, "after fault %d (%s node %d)" % (len(sched), kind, node.node_id))
    entry["isr_s"] = round(time.monotonic() - t, 1)


def wait_full_isr(c, what):
    last = {}

    def full():
        last["bad"] = under_replicated(c)
        return not last["bad"]
    try:
        c.wait_until(full, ISR_BOUND, "every ISR full " + what, interval=0.5)
    except AssertionError as e:
        raise AssertionError("still out of sync %s: %r\n%s" % (what, last.get("bad"), e)) from None


def read_all(c, topic, hws):
    """A fresh read_uncommitted consumer, assigned from the beginning: {partition: [(offset,
    value)]} until every partition reached its high watermark (plus one more poll, so records
    beyond it would show)."""
    cons = Consumer({"bootstrap.servers": c.bootstrap(), "group.id": unique("faults-rd"),
                     "enable.auto.commit": False, "isolation.level": "read_uncommitted",
                     "enable.partition.eof": True, "log.connection.close": False})
    got = {p: [] for p in range(PARTITIONS)}
    try:
        cons.assign([TopicPartition(topic, p, -2) for p in range(PARTITIONS)])  # OFFSET_BEGINNING
        deadline = time.monotonic() + READ_BOUND
        for _ in range(int(READ_BOUND / 0.2) + 10):
            if time.monotonic() > deadline or all(
                    (got[p][-1][0] + 1 if got[p] else 0) >= hws[p] for p in range(PARTITIONS)):
                break
            for m in cons.consume(1000, 0.2):
                if m.error() is not None:
                    if m.error().code() == KafkaError._PARTITION_EOF:
                        continue
                    c.fail("consumer error %r" % m.error())
                got[m.partition()].append((m.offset(), int(m.value())))
        for m in cons.consume(1000, 1.0):
            if m.error() is None:
                got[m.partition()].append((m.offset(), int(m.value())))
    finally:
        cons.close()
    return got


# ------------------------------------------------------------------ the test
def test_random_faults_under_idempotent_writes_lose_and_duplicate_nothing(fc):
    c = fc
    seed = int(SEED_ENV) if SEED_ENV else random.SystemRandom().randrange(1 << 31)
    rng = random.Random(seed)
    print("\n%s: OXKA_FAULT_SEED=%d OXKA_FAULTS=%d" % (c.impl, seed, N_FAULTS))
    sched = []
    try:
        _run(c, rng, sched, seed)
    except AssertionError as e:
        raise AssertionError("OXKA_FAULT_SEED=%d OXKA_FAULTS=%d impl=%s\nfault schedule: %r\n%s"
                             % (seed, N_FAULTS, c.impl, sched, e)) from None


def _run(c, rng, sched, seed):
    t0 = time.monotonic()
    topic = unique("faults")
    adm = AdminClient({"bootstrap.servers": c.bootstrap(), "socket.timeout.ms": 10000,
                       "log.connection.close": False})
    fs = adm.create_topics([NewTopic(topic, PARTITIONS, 3)], request_timeout=30)
    try:
        fs[topic].result(40)
    except KafkaException as e:
        c.fail("CreateTopics %s: %r" % (topic, e))
    del adm, fs
    gc.collect()

    def created():
        for n in c.nodes:
            err, parts = metadata(n, [topic])[topic]
            if err or len(parts) != PARTITIONS or any(
                    s[0] or s[1] not in c.ids or len(s[3]) != 3 for s in parts.values()):
                return None
        return True
    c.wait_until(created, 60, "%s: %d partitions, a leader and 3 in sync on every node" % (topic, PARTITIONS))

    w = Writer(c, topic)
    w.start()
    log = {"t0": t0, "writer": w}
    c.wait_until(lambda: len(w.acked) >= 100 or w.exc, 60, "the first 100 acks", interval=0.2)
    for _ in range(N_FAULTS):
        if w.exc or not w.is_alive():
            break
        time.sleep(round(rng.uniform(0.5, 3.0), 1))
        inject(c, rng, sched, log)
    assert w.exc is None, "writer: %r" % (w.exc,)
    # liveness: writes are acknowledged after the last recovery
    after = len(w.acked)
    c.wait_until(lambda: len(w.acked) >= after + 100, 60,
                 "100 more acks after the last fault (had %d)" % after, interval=0.2)
    w.stop.set()
    w.join(FLUSH_BOUND + 30)
    assert not w.is_alive(), "writer did not finish its flush"
    assert w.exc is None, "writer: %r" % (w.exc,)
    assert w.left == 0, c.fail("%d records never reported after flush(%d)" % (w.left, FLUSH_BOUND))
    wait_full_isr(c, "after the writes")
    faults_done = time.monotonic()

    # high watermarks: the leader's ListOffsets latest, then every node's own (Fetch), agreeing
    cons = Consumer({"bootstrap.servers": c.bootstrap(), "group.id": "unused",
                     "log.connection.close": False})
    try:
        lows_hws = [c.wait_until(lambda p=p: cons.get_watermark_offsets(
            TopicPartition(topic, p), timeout=10, cached=False), 30, "ListOffsets of %s[%d]" % (topic, p))
            for p in range(PARTITIONS)]
    finally:
        cons.close()
    hws = [hw for _, hw in lows_hws]
    assert all(lo == 0 for lo, _ in lows_hws), lows_hws
    last = {}

    def agree():
        last["hw"] = {(n.node_id, p): node_high_watermark(n, topic, p)
                      for n in c.nodes for p in range(PARTITIONS)}
        return all(v == (0, hws[p], 0) for (_, p), v in last["hw"].items())
    try:
        c.wait_until(agree, 30, "every node's high watermark = the leader's %r" % hws, interval=0.5)
    except AssertionError as e:
        raise AssertionError("high watermarks (node, partition): (error, hw, log start) %r vs "
                             "leader ListOffsets %r\n%s" % (last.get("hw"), hws, e)) from None

    # ISR 3 everywhere, as confluent-kafka's admin describes it
    adm = AdminClient({"bootstrap.servers": c.bootstrap(), "socket.timeout.ms": 10000,
                       "log.connection.close": False})
    try:
        d = adm.describe_topics(TopicCollection([topic]), request_timeout=20)[topic].result(30)
    finally:
        del adm
        gc.collect()
    assert len(d.partitions) == PARTITIONS, d
    for p in d.partitions:
        assert sorted(x.id for x in p.replicas) == c.ids and sorted(x.id for x in p.isr) == c.ids, \
            c.fail("describe_topics %s[%d]: replicas %r isr %r" % (
                topic, p.id, [x.id for x in p.replicas], [x.id for x in p.isr]))

    # the history
    got = read_all(c, topic, hws)
    problems = []
    seen = {}
    for p in range(PARTITIONS):
        offs = [o for o, _ in got[p]]
        vals = [v for _, v in got[p]]
        if offs != list(range(hws[p])):
            gaps = sorted(set(range(hws[p])) - set(offs))
            problems.append("partition %d: read %d records for high watermark %d; missing offsets %r, "
                            "extra %r" % (p, len(offs), hws[p], gaps[:10],
                                          sorted(set(offs) - set(range(hws[p])))[:10]))
        bad_order = [(offs[i], vals[i], vals[i + 1]) for i in range(len(vals) - 1) if vals[i + 1] <= vals[i]]
        if bad_order:
            problems.append("partition %d: values not increasing at (offset, value, next) %r"
                            % (p, bad_order[:10]))
        for o, v in got[p]:
            if v in seen and seen[v] != (p, o):
                problems.append("value %d read twice: at %r and %r" % (v, seen[v], (p, o)))
            seen.setdefault(v, (p, o))
            if v >= w.sent or v % PARTITIONS != p:
                problems.append("value %d read at %d/%d was never sent there" % (v, p, o))
    lost, moved = [], []
    for n, (p, o) in sorted(w.acked.items()):
        if n not in seen:
            lost.append((n, p, o))
        elif seen[n] != (p, o):
            moved.append((n, (p, o), seen[n]))
    if lost:
        problems.append("%d acknowledged records not read, first (value, partition, offset) %r"
                        % (len(lost), lost[:10]))
    if moved:
        problems.append("%d acknowledged records read elsewhere, first (value, acked at, read at) %r"
                        % (len(moved), moved[:10]))
    both = sorted(set(w.acked) & set(w.failed))
    if both:
        problems.append("values both acked and failed: %r" % both[:10])
    failed = sorted(set(w.failed) | set(w.local_fail))
    failed_read = [n for n in failed if n in seen]
    unreported = w.sent - len(w.acked) - len(set(w.failed) | set(w.local_fail))
    errs = {}
    for name in list(w.failed.values()) + list(w.local_fail.values()):
        errs[name] = errs.get(name, 0) + 1
    summary = ("%s seed %d: %d faults %r; sent %d, acked %d, failed %d %r (of which read anyway %d), "
               "unreported %d; high watermarks %r; %.0fs of faults, %.0fs in all"
               % (c.impl, seed, len(sched), [(e["kind"], e["node"]) for e in sched], w.sent,
                  len(w.acked), len(failed), errs, len(failed_read), unreported, hws,
                  faults_done - t0, time.monotonic() - t0))
    print(summary)
    for e in sched:
        print("  %r" % e)
    if problems:
        c.fail("history check failed (%s):\n  %s" % (summary, "\n  ".join(problems[:40])))
    assert unreported == 0, c.fail("%d sends without a delivery report" % unreported)
    assert len(sched) == N_FAULTS
