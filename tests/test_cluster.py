"""Issue 8, first cluster milestone: three combined broker+controller nodes driven by real clients
(confluent-kafka, kafka-python) and by raw requests to one chosen node (tests/cluster.py).

Metadata is shared through Raft, partitions are spread over the brokers (and replicated:
tests/test_replication.py covers what replication promises), each broker serves only the
partitions (and coordinator partitions) it leads.  The assertions are Apache Kafka 4.1.1's behaviour, checked by running the same tests
against a 3-node KRaft Kafka (tests/kafkaref.py):

    bash tests/setup.d/20-java.sh                   # once: the Kafka jars
    OXKA_CLUSTER_IMPL=kafka python -m pytest -q tests/test_cluster.py     # about 4-5 minutes
    OXKA_CLUSTER_IMPL=oxka,kafka ...                # both, one after the other

The default (and CI) is oxka only (`OXKA_BIN`, default target/release/oxka); about a minute.
Tests marked `oxka_only` document where the milestone differs from Kafka on purpose and skip on
Kafka.  Where Kafka's answer cannot be Oxka's (a client-visible controller id is a random live
broker in Kafka), the test says so and checks each implementation's own contract.

What Kafka does, as recorded by these tests (4.1.1, 3 nodes, loopback):
- Metadata/DescribeCluster `controller_id` is a *random live broker* per request (KRaft hides the
  controller from clients); the metadata quorum's leader is DescribeQuorum's `leader_id`, which
  every node reports the same.  Oxka reports the quorum's active controller in Metadata; the
  tests take DescribeQuorum's leader when a node serves DescribeQuorum, else Metadata's.
- Produce to a broker that does not lead the partition: NOT_LEADER_OR_FOLLOWER (6); from v10 the
  KIP-951 CurrentLeader (leader id, epoch) and NodeEndpoints (the leader's host:port).
- With 2 of 3 nodes SIGKILLed, CreateTopics sent to the survivor is forwarded to a controller
  that does not exist: a raw request (timeout_ms=5000) is answered REQUEST_TIMED_OUT (7) after
  about 60 s (Kafka's forwarding timeout, not the request's); confluent-kafka's admin call fails
  with its own _TIMED_OUT at request_timeout (10 s).  Metadata is still answered at once, stale.
- SIGKILL of the active controller: the survivors' DescribeQuorum names a new leader ~3 s later;
  their Metadata drops the dead broker ~9 s later (broker.session.timeout.ms), and until then may
  name it as the controller, so an admin client's CreateTopics goes to the dead node.
  SIGSTOP of it: the other brokers answer DescribeQuorum (forwarded to the controller) with the
  new leader only after ~64 s, their forwarding connection waiting on the stopped node; after
  SIGCONT the stopped node follows the new leader.
"""
import gc
import os
import time

import pytest
from confluent_kafka import (Consumer, ElectionType, KafkaError, KafkaException, Producer,
                             TopicPartition)
from confluent_kafka.admin import (AdminClient, AlterConfigOpType, ConfigEntry, ConfigResource,
                                   NewTopic, ResourceType)

from kafka.admin import NewTopic as KpNewTopic

import cluster as clu
import kwire

pytestmark = pytest.mark.timeout(400)

IMPLS = clu.selected_impls()

# error codes
NOT_LEADER_OR_FOLLOWER = 6
REQUEST_TIMED_OUT = 7
UNKNOWN_TOPIC_OR_PARTITION = 3
TOPIC_ALREADY_EXISTS = 36
INVALID_REPLICATION_FACTOR = 38
COORDINATOR_NOT_AVAILABLE = 15

oxka_only = pytest.mark.oxka_only


unique = clu.unique


@pytest.fixture(scope="module", params=IMPLS)
def impl(request):
    clu.skip_unsupported(request.param)
    return request.param


def _close(c):
    c.__dict__.pop("admins", None)  # the clients go before the nodes (no reconnect noise)
    gc.collect()
    c.close()


def _make(impl, workdir):
    from conftest import OXKA_BIN
    return clu.Cluster(impl, workdir, n=3, oxka_bin=OXKA_BIN)


@pytest.fixture(scope="module")
def shared(impl, tmp_path_factory):
    """One healthy 3-node cluster for the tests that do not kill anything."""
    c = _make(impl, str(tmp_path_factory.mktemp("cluster-" + impl)))
    try:
        c.start()
        yield c
    finally:
        _close(c)


@pytest.fixture
def fresh(impl, tmp_path):
    """A 3-node cluster of its own, for a test that kills, pauses or restarts nodes."""
    c = _make(impl, str(tmp_path))
    try:
        c.start()
        yield c
    finally:
        _close(c)


@pytest.fixture(autouse=True)
def _oxka_only(request, impl):
    if request.node.get_closest_marker("oxka_only") and impl != "oxka":
        pytest.skip("oxka-only: documents the milestone's deliberate difference from Kafka")


# ------------------------------------------------------------------ helpers
def admin(c, *node_ids, fresh=False):
    """A confluent-kafka AdminClient bootstrapped at those nodes only, kept by the cluster: a
    future must not outlive its client (it would fail with _DESTROY).  `fresh`: a new client,
    for after a node died (librdkafka keeps waiting for a cached controller that is gone)."""
    cache = c.__dict__.setdefault("admins", {})
    key = c.bootstrap(*node_ids)
    if fresh:
        key += "#%d" % len(cache)
    if key not in cache:
        cache[key] = AdminClient({"bootstrap.servers": key.split("#")[0], "socket.timeout.ms": 10000,
                                  "log.connection.close": False})
    return cache[key]


def kp_admin(c, *node_ids):
    from kafka.admin import KafkaAdminClient
    return KafkaAdminClient(bootstrap_servers=c.bootstrap(*node_ids), request_timeout_ms=15000)


def active_controller(node, timeout=10):
    """The metadata quorum's leader as `node` reports it: DescribeQuorum's leader_id where the
    node serves DescribeQuorum (Kafka: Metadata's controller_id is a random live broker), else
    Metadata's controller_id (Oxka reports the active controller there)."""
    probe = clu.Probe(node.port, timeout=timeout)
    q = probe.quorum_leader()
    if q is not None:
        return q
    return probe.metadata(topics=[])[1]


def leaders(c, node, topic, partitions):
    """{partition: leader} of `topic` as `node` reports it, once every partition has a leader
    among the cluster's ids; else None."""
    _, _, parts, errs = node.probe.metadata([topic])
    if errs.get(topic) != 0 or len(parts.get(topic, {})) != partitions:
        return None
    got = {p: leader for p, (err, leader) in parts[topic].items()}
    return got if all(v in c.ids for v in got.values()) else None


def create_topic(c, name, partitions, via, config=None, timeout=30):
    """CreateTopics via confluent-kafka bootstrapped at node `via` only; waits (bounded) until
    every live node reports a leader for every partition and (Kafka lists a leader a moment
    before it serves it) every partition answers ListOffsets.  Returns {partition: leader}."""
    fs = admin(c, via).create_topics([NewTopic(name, partitions, 1, config=config or {})],
                                     request_timeout=timeout)
    try:
        assert fs[name].result(timeout) is None
    except KafkaException as e:
        c.fail("CreateTopics %s via node %d failed: %r" % (name, via, e))
    seen = {}
    for n in c.live():
        seen[n.node_id] = c.wait_until(lambda: leaders(c, n, name, partitions), timeout,
                                       "node %d to list %s's %d leaders" % (n.node_id, name, partitions))
    first = list(seen.values())[0]
    assert all(v == first for v in seen.values()), c.report("nodes disagree on leaders: %r" % seen)
    cons = Consumer({"bootstrap.servers": c.bootstrap(*[n.node_id for n in c.live()]),
                     "group.id": "unused"})
    try:
        for p in range(partitions):
            c.wait_until(lambda: cons.get_watermark_offsets(TopicPartition(name, p), timeout=5,
                                                            cached=False) == (0, 0),
                         timeout, "%s[%d] served by its leader" % (name, p))
    finally:
        cons.close()
    return first


def produce(c, topic, values, via, partition=None, keys=None):
    """confluent-kafka, acks=all, bootstrapped at `via`; returns [(key, value, partition, offset)]
    in delivery order; fails with the delivery errors."""
    p = Producer({"bootstrap.servers": c.bootstrap(via), "acks": "all", "linger.ms": 5,
                  "enable.idempotence": False, "max.in.flight.requests.per.connection": 1,
                  "message.timeout.ms": 30000})
    out, errs = [], []

    def cb(err, m):
        if err is not None:
            errs.append((m.key(), m.value(), err))
        else:
            out.append((m.key(), m.value(), m.partition(), m.offset()))

    for i, v in enumerate(values):
        kw = {"key": keys[i] if keys else None, "value": v, "on_delivery": cb}
        if partition is not None:
            kw["partition"] = partition
        p.produce(topic, **kw)
        p.poll(0)
    left = p.flush(45)
    assert left == 0 and not errs, c.report("%d undelivered, errors %r" % (left, errs[:5]))
    return out


def _report(self, msg):
    return "%s [%s cluster]\n%s" % (msg, self.impl, self.log_tails())


clu.Cluster.report = _report


# ------------------------------------------------------------------ 1. the cluster's shape
def test_every_node_lists_the_same_three_brokers_and_one_controller(shared):
    c = shared
    want = c.endpoints()
    assert sorted(want) == [1, 2, 3] and len({p for _, p in want.values()}) == 3
    quorum = {}
    for n in c.nodes:
        brokers, ctl, _, _ = n.probe.metadata(topics=[])
        assert brokers == want, c.report("node %d Metadata brokers %r != %r" % (n.node_id, brokers, want))
        assert ctl in c.ids, c.report("node %d Metadata controller_id %r" % (n.node_id, ctl))
        err, dbrokers, dctl = n.probe.describe_cluster()
        assert (err, dbrokers) == (0, want) and dctl in c.ids, c.report(
            "node %d DescribeCluster %r" % (n.node_id, (err, dbrokers, dctl)))
        # confluent-kafka bootstrapped at this node only
        d = admin(c, n.node_id).describe_cluster(request_timeout=15).result(15)
        assert {x.id: (x.host, x.port) for x in d.nodes} == want, c.report(
            "confluent describe_cluster via node %d: %r" % (n.node_id, d.nodes))
        assert d.controller is not None and d.controller.id in c.ids
        assert (d.controller.host, d.controller.port) == want[d.controller.id]
        # kafka-python bootstrapped at this node only
        ka = kp_admin(c, n.node_id)
        try:
            kd = ka.describe_cluster()
        finally:
            ka.close()
        assert {b["broker_id"]: (b["host"], b["port"]) for b in kd["brokers"]} == want, c.report(
            "kafka-python describe_cluster via node %d: %r" % (n.node_id, kd))
        assert kd["controller_id"] in c.ids
        quorum[n.node_id] = active_controller(n)
    # one active controller, the same from every node, one of the brokers
    assert len(set(quorum.values())) == 1 and quorum[1] in c.ids, c.report(
        "active controller per node: %r" % quorum)
    if c.impl == "oxka":
        # Oxka's Metadata names the quorum's active controller, so every node says the same
        # (Kafka answers a random live broker per request, which this would not hold for).
        ctl = {n.node_id: n.probe.metadata(topics=[])[1] for n in c.nodes}
        assert set(ctl.values()) == {quorum[1]}, c.report(
            "Metadata controller_id per node %r, active controller %r" % (ctl, quorum))


# ------------------------------------------------------------------ 2. topics across nodes
def test_topic_created_on_node2_is_seen_everywhere_spread_and_not_created_twice(shared):
    c = shared
    t = unique("six")
    fs = admin(c, 2).create_topics([NewTopic(t, 6, 1)], request_timeout=30)
    assert fs[t].result(30) is None
    seen = {}
    for nid in (1, 3):
        seen[nid] = c.wait_until(lambda: leaders(c, c.node(nid), t, 6), 15,
                                 "node %d to list %s with 6 leaders" % (nid, t))
    seen[2] = c.wait_until(lambda: leaders(c, c.node(2), t, 6), 15, "node 2 to list " + t)
    assert seen[1] == seen[2] == seen[3], c.report("leaders differ per node: %r" % seen)
    per_broker = {b: sorted(p for p, l in seen[1].items() if l == b) for b in c.ids}
    assert all(per_broker[b] for b in c.ids), c.report("leaders not spread: %r" % per_broker)
    # the same name again, from other nodes: kafka-python via node 1, raw via node 3
    from kafka.errors import TopicAlreadyExistsError
    ka = kp_admin(c, 1)
    try:
        with pytest.raises(TopicAlreadyExistsError):
            ka.create_topics({t: {"num_partitions": 6, "replication_factor": 1}})
    finally:
        ka.close()
    from kafka.protocol.admin import CreateTopicsRequest
    CT = CreateTopicsRequest.CreatableTopic
    r = c.node(3).probe.call(CreateTopicsRequest, 5, topics=[CT(
        name=t, num_partitions=6, replication_factor=1, assignments=[], configs=[])],
        timeout_ms=10000, validate_only=False)
    assert [(x.name, x.error_code) for x in r.topics] == [(t, TOPIC_ALREADY_EXISTS)], c.report(
        "raw CreateTopics of an existing topic via node 3: %r" % r.topics)
    # and nothing changed
    assert leaders(c, c.node(1), t, 6) == seen[1]


# ------------------------------------------------------------------ 3. produce and consume
def test_600_keyed_records_via_node3_consumed_via_node1_in_order(shared):
    c = shared
    t = unique("keyed")
    create_topic(c, t, 6, via=2)
    values = [b"v%04d" % i for i in range(600)]
    keys = [b"k%02d" % (i % 60) for i in range(600)]
    acked = produce(c, t, values, via=3, keys=keys)
    assert sorted(v for _, v, _, _ in acked) == values
    by_value = {v: (k, p, o) for k, v, p, o in acked}
    part_of_key = {}
    for k, v, p, o in acked:
        assert part_of_key.setdefault(k, p) == p, "key %r in partitions %d and %d" % (k, part_of_key[k], p)
        assert o >= 0
    per_part = {}
    for k, v, p, o in acked:
        per_part.setdefault(p, []).append((o, v))
    assert len(per_part) >= 3, "600 records over 60 keys landed in partitions %r" % sorted(per_part)
    for p, rows in per_part.items():  # dense offsets 0..n-1 on a fresh partition, in send order
        assert [o for o, _ in rows] == list(range(len(rows))), (p, rows[:5])
        assert [v for _, v in rows] == sorted(v for _, v in rows)

    from kafka import KafkaConsumer
    from kafka import TopicPartition as KTP
    kc = KafkaConsumer(bootstrap_servers=c.bootstrap(1), group_id=None, enable_auto_commit=False,
                       auto_offset_reset="earliest", request_timeout_ms=20000,
                       consumer_timeout_ms=1000)
    got = []
    try:
        tps = [KTP(t, p) for p in range(6)]
        kc.assign(tps)
        kc.seek_to_beginning(*tps)
        deadline = time.monotonic() + 60
        for _ in range(600):
            if len(got) >= 600 or time.monotonic() > deadline:
                break
            for recs in kc.poll(timeout_ms=1000, max_records=500).values():
                got.extend(recs)
    finally:
        kc.close()
    assert sorted(r.value for r in got) == values, c.report(
        "kafka-python via node 1 read %d records (%d distinct)" % (len(got), len({r.value for r in got})))
    for r in got:
        assert (r.key, r.partition, r.offset) == by_value[r.value], (r, by_value[r.value])
    for p in per_part:
        consumed = [(r.offset, r.value) for r in got if r.partition == p]
        assert consumed == per_part[p], "partition %d read out of order" % p


# ------------------------------------------------------------------ 4. replication factor
def test_replication_factor_above_broker_count_is_refused(shared):
    """Kafka and Oxka: RF 4 on 3 brokers is INVALID_REPLICATION_FACTOR (confluent via node 1,
    kafka-python via node 3), and no topic appears."""
    c = shared
    t = unique("rf4")
    fs = admin(c, 1).create_topics([NewTopic(t, 1, 4)], request_timeout=15)
    with pytest.raises(KafkaException) as e:
        fs[t].result(15)
    assert e.value.args[0].code() == KafkaError.INVALID_REPLICATION_FACTOR, e.value
    from kafka.errors import InvalidReplicationFactorError
    ka = kp_admin(c, 3)
    try:
        with pytest.raises(InvalidReplicationFactorError):
            ka.create_topics({t: {"num_partitions": 1, "replication_factor": 4}})
    finally:
        ka.close()
    for n in c.nodes:
        assert n.probe.metadata([t])[3] == {t: UNKNOWN_TOPIC_OR_PARTITION}


def test_replication_factor_3_topic_has_three_replicas_in_sync_on_every_node(shared):
    """RF 3 on 3 brokers (confluent-kafka via node 2, kafka-python via node 1): every partition
    lists all three brokers as replicas, and the ISR is all three, as each node reports it."""
    c = shared
    t, u = unique("rf3"), unique("rf3kp")
    admin(c, 2).create_topics([NewTopic(t, 3, 3)], request_timeout=15)[t].result(15)
    ka = kp_admin(c, 1)
    try:
        ka.create_topics([KpNewTopic(u, 2, 3)])
    finally:
        ka.close()

    def replicated(topic, partitions):
        md = admin(c, 3).list_topics(topic, timeout=10).topics[topic]
        if md.error is not None or len(md.partitions) != partitions:
            return None
        parts = md.partitions.values()
        if all(sorted(p.replicas) == [1, 2, 3] and sorted(p.isrs) == [1, 2, 3] for p in parts):
            return {p.id: p.leader for p in parts}
        return None

    leaders_t = c.wait_until(lambda: replicated(t, 3), 20, "RF 3 topic with ISR 3")
    c.wait_until(lambda: replicated(u, 2), 20, "RF 3 topic (kafka-python) with ISR 3")
    assert sorted(leaders_t.values()) == [1, 2, 3], leaders_t  # one leader per broker
    for n in c.nodes:
        assert n.probe.metadata([t])[3] == {t: 0}


# ------------------------------------------------------------------ 5. not the leader
def test_raw_produce_to_a_non_leader_names_the_leader(shared):
    c = shared
    t = unique("nl")
    lead = create_topic(c, t, 3, via=1)
    from kafka.protocol.producer import ProduceRequest
    TPD = ProduceRequest.TopicProduceData

    def send(node, partition, version):
        r = node.probe.call(ProduceRequest, version, transactional_id=None, acks=-1, timeout_ms=10000,
                            topic_data=[TPD(name=t, partition_data=[TPD.PartitionProduceData(
                                index=partition, records=kwire.record_batch([b"x%d" % version]))])])
        assert [x.name for x in r.responses] == [t]
        return r, r.responses[0].partition_responses[0]

    checked = 0
    for p, leader in sorted(lead.items()):
        for n in c.nodes:
            v = n.probe.version(0, 12, lowest=3)  # v13 names topics by id
            assert v is not None and v >= 9
            r, pr = send(n, p, v)
            if n.node_id == leader:
                assert (pr.error_code, pr.base_offset) == (0, 0), c.report(
                    "Produce v%d to leader %d of %s[%d]: %r" % (v, leader, t, p, pr))
                continue
            assert pr.error_code == NOT_LEADER_OR_FOLLOWER, c.report(
                "Produce v%d to node %d, %s[%d] led by %d: %r" % (v, n.node_id, t, p, leader, pr))
            if v >= 10:  # KIP-951: the current leader and its endpoint
                cl = pr.current_leader
                assert (cl.leader_id, cl.leader_epoch >= 0) == (leader, True), c.report(
                    "KIP-951 CurrentLeader from node %d: %r (leader %d)" % (n.node_id, cl, leader))
                eps = {e.node_id: (e.host, e.port) for e in r.node_endpoints}
                assert eps.get(leader) == ("127.0.0.1", c.node(leader).port), c.report(
                    "KIP-951 NodeEndpoints from node %d: %r" % (n.node_id, r.node_endpoints))
            # the pre-KIP-951 form: only the code
            _, old = send(n, p, 9)
            assert old.error_code == NOT_LEADER_OR_FOLLOWER
            checked += 1
    assert checked == 6  # 3 partitions x 2 non-leaders


# ------------------------------------------------------------------ 6. a group across the cluster
def test_group_commits_and_a_new_member_resumes_from_them(shared):
    c = shared
    t = unique("grp")
    create_topic(c, t, 6, via=3)
    g = unique("g")
    first = [b"a%03d" % i for i in range(60)]
    for p in range(6):
        produce(c, t, first[p::6], via=1, partition=p)

    # the coordinator: every node names the same broker, at its PLAINTEXT endpoint
    def coordinator():
        answers = {n.node_id: n.probe.find_coordinator(g) for n in c.nodes}
        if any(a[0] == COORDINATOR_NOT_AVAILABLE for a in answers.values()):
            return None  # __consumer_offsets being created
        return answers
    answers = c.wait_until(coordinator, 30, "FindCoordinator(%s) from every node" % g, interval=0.5)
    coord = answers[1][1]
    assert coord in c.ids, c.report("FindCoordinator: %r" % answers)
    assert all(a == (0, coord, "127.0.0.1", c.node(coord).port) for a in answers.values()), \
        c.report("FindCoordinator per node: %r" % answers)

    # confluent-kafka member (bootstrap node 2): reads everything, commits, leaves
    cons = Consumer({"bootstrap.servers": c.bootstrap(2), "group.id": g, "auto.offset.reset": "earliest",
                     "enable.auto.commit": False, "session.timeout.ms": 10000})
    got = []
    try:
        cons.subscribe([t])
        deadline = time.monotonic() + 60
        for _ in range(600):
            if len(got) >= 60 or time.monotonic() > deadline:
                break
            m = cons.poll(0.5)
            if m is None:
                continue
            assert m.error() is None, c.report("consumer error %r" % m.error())
            got.append(m)
        assert sorted(m.value() for m in got) == first, c.report("first member read %d" % len(got))
        cons.commit(asynchronous=False)
        committed = cons.committed([TopicPartition(t, p) for p in range(6)], timeout=15)
        assert {x.partition: x.offset for x in committed} == {p: 10 for p in range(6)}, committed
    finally:
        cons.close()

    second = [b"b%03d" % i for i in range(30)]
    for p in range(6):
        produce(c, t, second[p::6], via=2, partition=p)

    # kafka-python member of the same group (bootstrap node 3): only the new records
    from kafka import KafkaConsumer
    from kafka import TopicPartition as KTP
    kc = KafkaConsumer(t, bootstrap_servers=c.bootstrap(3), group_id=g, enable_auto_commit=False,
                       auto_offset_reset="earliest", request_timeout_ms=20000,
                       session_timeout_ms=10000, heartbeat_interval_ms=1000)
    got2 = []
    try:
        deadline = time.monotonic() + 60
        for _ in range(600):
            if time.monotonic() > deadline:
                break
            for recs in kc.poll(timeout_ms=500).values():
                got2.extend(recs)
            if len(got2) >= 30:
                # a little longer: anything re-read from before the commit would show up here
                for recs in kc.poll(timeout_ms=1000).values():
                    got2.extend(recs)
                break
        assert sorted(r.value for r in got2) == second, c.report(
            "second member read %r" % sorted(r.value for r in got2))
        assert all(r.offset >= 10 for r in got2)
        kc.commit()
        assert {p: kc.committed(KTP(t, p)) for p in range(6)} == {p: 15 for p in range(6)}
    finally:
        kc.close()


# ------------------------------------------------------------------ 7. controller failover
def test_sigkill_active_controller_survivors_elect_and_serve_and_it_catches_up(fresh):
    c = fresh
    base = unique("pre")
    create_topic(c, base, 3, via=1)
    ctl = {n.node_id: active_controller(n) for n in c.nodes}
    old = ctl[1]
    assert set(ctl.values()) == {old} and old in c.ids, c.report("controllers before: %r" % ctl)
    c.node(old).kill()
    survivors = [n for n in c.nodes if n.node_id != old]
    t0 = time.monotonic()

    def new_controller():
        got = {n.node_id: active_controller(n) for n in survivors}
        vals = set(got.values())
        return got if len(vals) == 1 and vals <= {n.node_id for n in survivors} else None
    got = c.wait_until(new_controller, 20, "the survivors to agree on a controller other than %d" % old,
                       interval=0.3)
    elected = time.monotonic() - t0
    new = list(got.values())[0]
    assert new != old
    if c.impl == "oxka":
        for n in survivors:
            assert n.probe.metadata(topics=[])[1] == new

    # the dead broker is fenced: the survivors list only themselves (Kafka after
    # broker.session.timeout.ms, 9 s; until then its Metadata may even name the dead broker as
    # the controller clients send CreateTopics to, and confluent-kafka's call times out)
    live = {n.node_id: ("127.0.0.1", n.port) for n in survivors}
    for n in survivors:
        c.wait_until(lambda: n.probe.metadata(topics=[])[0] == live, 30,
                     "survivor %d to list only brokers %s" % (n.node_id, sorted(live)))
    fenced = time.monotonic() - t0
    for n in survivors:
        assert n.probe.metadata(topics=[])[1] in live

    # the survivors serve metadata changes: a topic and two config changes
    sids = [n.node_id for n in survivors]
    t = unique("after")
    fs = admin(c, *sids, fresh=True).create_topics([NewTopic(t, 2, 1)], request_timeout=30)
    try:
        assert fs[t].result(30) is None
    except KafkaException as e:
        c.fail("CreateTopics via survivors %r failed: %r" % (sids, e))
    for n in survivors:
        c.wait_until(lambda: n.probe.metadata([t])[3] == {t: 0} and len(n.probe.metadata([t])[2][t]) == 2,
                     15, "survivor %d to list %s" % (n.node_id, t))
    res = ConfigResource(ResourceType.TOPIC, t, incremental_configs=[ConfigEntry(
        "retention.ms", "123456", incremental_operation=AlterConfigOpType.SET)])
    fs = admin(c, sids[0], fresh=True).incremental_alter_configs([res], request_timeout=30)
    try:
        list(fs.values())[0].result(30)
    except KafkaException as e:
        c.fail("IncrementalAlterConfigs via node %d failed: %r" % (sids[0], e))
    from kafka.admin import ConfigResource as KCR, ConfigResourceType
    ka = kp_admin(c, sids[1])
    try:
        r = ka.alter_configs([KCR(ConfigResourceType.TOPIC, base, configs={"retention.ms": "654321"})],
                             incremental=False)
    finally:
        ka.close()
    assert not [e for v in r.values() for e in (v.values() if isinstance(v, dict) else [v])
                if getattr(e, "errno", 0)], c.report("kafka-python AlterConfigs: %r" % r)
    want = {(t, "123456"), (base, "654321")}
    for n in survivors:
        c.wait_until(lambda: {(x, n.probe.topic_config(x, "retention.ms")[1]) for x in (t, base)} == want,
                     15, "survivor %d to describe the new retention.ms values" % n.node_id)

    # the killed node restarts with the same dir and ports and catches up
    k = c.node(old)
    k.start()
    c.wait_ready(nodes=[k])
    c.wait_until(lambda: k.probe.metadata([t])[3] == {t: 0}, 20, "restarted node %d to list %s" % (old, t))
    c.wait_until(lambda: {(x, k.probe.topic_config(x, "retention.ms")[1]) for x in (t, base)} == want,
                 20, "restarted node %d to describe the new retention.ms values" % old)
    c.wait_ready()  # every node lists 3 brokers again
    after = c.wait_until(lambda: (lambda d: d if len(set(d.values())) == 1 else None)(
        {n.node_id: active_controller(n) for n in c.nodes}), 20, "one controller after the restart")
    assert set(after.values()) <= set(c.ids), after

    # a controlled shutdown (SIGTERM) of a node that is not the controller: it exits, the others
    # drop it from Metadata, and it comes back with the same dir and ports
    ctl_now = list(after.values())[0]
    term = [n for n in c.nodes if n.node_id != ctl_now][0]
    term.term(timeout=30)
    assert not term.alive(), c.report("node %d still running 30 s after SIGTERM" % term.node_id)
    rest = [n for n in c.nodes if n is not term]
    live = {n.node_id: ("127.0.0.1", n.port) for n in rest}
    for n in rest:
        c.wait_until(lambda: n.probe.metadata(topics=[])[0] == live, 30,
                     "node %d to drop SIGTERMed node %d" % (n.node_id, term.node_id))
    term.start()
    c.wait_ready()
    print("%s: new controller %d elected %.1fs, dead broker %d fenced %.1fs after its SIGKILL"
          % (c.impl, new, elected, old, fenced))


# ------------------------------------------------------------------ 8. no quorum
def test_create_topics_without_a_quorum_times_out(fresh):
    c = fresh
    ctl = c.wait_until(lambda: active_controller(c.node(1)), 10, "a controller")
    survivor = [n for n in c.nodes if n.node_id != ctl][0]  # the controller is among the killed
    for n in c.nodes:
        if n is not survivor:
            n.kill()
    # Metadata is still answered, promptly
    t0 = time.monotonic()
    brokers = survivor.probe.metadata(topics=[])[0]
    assert time.monotonic() - t0 < 5 and set(brokers) <= set(c.ids) and survivor.node_id in brokers

    # confluent-kafka: the admin call fails at its request timeout, not later
    t = unique("noq")
    t0 = time.monotonic()
    fs = admin(c, survivor.node_id).create_topics([NewTopic(t, 1, 1)], request_timeout=10,
                                                 operation_timeout=5)
    with pytest.raises(KafkaException) as e:
        fs[t].result(40)
    took = time.monotonic() - t0
    assert e.value.args[0].code() in (KafkaError._TIMED_OUT, KafkaError.REQUEST_TIMED_OUT), c.report(repr(e.value))
    assert took < 25, c.report("confluent CreateTopics without a quorum took %.1fs" % took)

    # raw: the broker itself answers REQUEST_TIMED_OUT (Kafka after ~60 s, its forwarding
    # timeout; Oxka is asked to answer within the request's timeout_ms plus slack)
    from kafka.protocol.admin import CreateTopicsRequest
    CT = CreateTopicsRequest.CreatableTopic
    bound = 75 if c.impl == "kafka" else 20
    p = clu.Probe(survivor.port, timeout=bound)
    t0 = time.monotonic()
    try:
        r = p.call(CreateTopicsRequest, 5, topics=[CT(name=t, num_partitions=1, replication_factor=1,
                                                       assignments=[], configs=[])],
                   timeout_ms=5000, validate_only=False)
    except OSError as ex:
        c.fail("raw CreateTopics without a quorum: no answer within %ds (%r)" % (bound, ex))
    took = time.monotonic() - t0
    assert [(x.name, x.error_code) for x in r.topics] == [(t, REQUEST_TIMED_OUT)], c.report(
        "raw CreateTopics without a quorum after %.1fs: %r" % (took, r.topics))
    print("%s: raw CreateTopics without quorum answered %d after %.1fs"
          % (c.impl, r.topics[0].error_code, took))


# ------------------------------------------------------------------ 9. a paused controller
def test_sigstopped_controller_is_replaced_and_follows_after_sigcont(fresh):
    """SIGSTOP the active controller for longer than the election timeout: the other two agree on
    another controller; after SIGCONT all three agree on it, and keep agreeing.  Kafka's brokers
    forward DescribeQuorum to the controller over a connection that waits for the stopped one
    (controller.socket.timeout.ms, 30 s) before they move on: about 64 s here, hence its
    longer bound."""
    c = fresh
    bound = 100 if c.impl == "kafka" else 25

    def views(nodes):
        return {n.node_id: active_controller(n, timeout=5) for n in nodes}

    old = c.wait_until(lambda: (lambda d: list(d.values())[0] if len(set(d.values())) == 1 else None)(
        views(c.nodes)), 10, "one controller")
    paused = c.node(old)
    others = [n for n in c.nodes if n is not paused]
    paused.pause()
    t0 = time.monotonic()
    try:
        got = c.wait_until(lambda: (lambda d: d if len(set(d.values())) == 1 and old not in d.values() else None)(
            views(others)), bound, "the others to elect a controller while %d is stopped" % old,
            interval=0.3)
        new = list(got.values())[0]
        replaced = time.monotonic() - t0
        time.sleep(2)  # well past the election timeout
    finally:
        paused.resume()

    def agreed():
        d = views(c.nodes)
        return d if len(set(d.values())) == 1 else None
    settled = c.wait_until(agreed, bound, "all three to agree on one controller after SIGCONT", interval=0.3)
    assert old not in settled.values(), c.report("the resumed node %d leads again: %r (new was %d)"
                                                  % (old, settled, new))
    # settled: no two controllers reported at once, over a few seconds
    samples = []
    for _ in range(10):
        samples.append(views(c.nodes))
        time.sleep(0.3)
    assert all(len(set(d.values())) == 1 and old not in d.values() for d in samples), c.report(
        "after settling: %r" % samples)
    c.wait_ready()
    print("%s: controller %d stopped, %d reported by the others after %.1fs"
          % (c.impl, old, new, replaced))


# ------------------------------------------------------------------ 9. controlled shutdown, preferred election
def test_sigterm_moves_leaderships_away_and_preferred_election_gives_them_back(fresh):
    """SIGTERM of a node leading RF 3 partitions: the others lead them well before the broker
    session timeout (controlled shutdown) and an acks=all producer carries on; after a restart
    the node rejoins every ISR, and ElectLeaders (preferred, confluent-kafka) gives it back the
    partitions it is the preferred replica of (others ELECTION_NOT_NEEDED)."""
    c = fresh
    t = unique("term")
    admin(c, 1).create_topics([NewTopic(t, 3, 3, config={"min.insync.replicas": "2"})],
                              request_timeout=15)[t].result(15)

    def state(node_ids=None):
        """{partition: (leader, sorted ISR, replicas)} as the first live node asked answers a
        raw Metadata v9 (a client could pick the stopped broker, still registered)."""
        from kafka.protocol.metadata import MetadataRequest
        for i in node_ids or c.ids:
            if c.node(i).alive():
                r = c.node(i).probe.call(
                    MetadataRequest, 9, topics=[MetadataRequest.MetadataRequestTopic(name=t)],
                    allow_auto_topic_creation=False, include_cluster_authorized_operations=False,
                    include_topic_authorized_operations=False)
                return {p.partition_index: (p.leader_id, sorted(p.isr_nodes), list(p.replica_nodes))
                        for p in r.topics[0].partitions}
        return {}

    full = c.wait_until(lambda: (lambda s: s if len(s) == 3 and all(len(v[1]) == 3 for v in s.values())
                                 else None)(state()), 30, "ISR of 3 everywhere")
    victim = full[0][0]
    led = sorted(p for p, v in full.items() if v[0] == victim)
    p_ = Producer({"bootstrap.servers": c.bootstrap(), "acks": "all", "enable.idempotence": True,
                   "linger.ms": 5})
    acked, failed = [], []
    cb = lambda e, m: (failed if e else acked).append(e or int(m.value()))
    for i in range(300):
        p_.produce(t, str(i).encode(), partition=i % 3, on_delivery=cb)
    p_.flush(30)
    assert len(acked) == 300 and not failed, failed[:3]
    others = [i for i in c.ids if i != victim]
    t0 = time.monotonic()
    c.node(victim).term()
    moved = c.wait_until(lambda: (lambda s: s if all(s[p][0] in others and victim not in s[p][1]
                                                      for p in led) else None)(state(others)),
                         8, "partitions %s to move off node %d" % (led, victim), interval=0.2)
    took = time.monotonic() - t0
    assert took < 8, took  # well before broker.session.timeout.ms (9 s) would fence it
    for i in range(300, 400):
        p_.produce(t, str(i).encode(), partition=i % 3, on_delivery=cb)
    p_.flush(30)
    assert len(acked) == 400 and not failed, (len(acked), failed[:3])
    c.node(victim).restart(kill=False)
    c.wait_ready()
    c.wait_until(lambda: (lambda s: s if all(len(v[1]) == 3 for v in s.values()) else None)(state()),
                 45, "node %d back in every ISR" % victim)
    preferred = sorted(p for p, v in full.items() if v[2][0] == victim)
    assert preferred, full
    result = admin(c, *others, fresh=True).elect_leaders(
        ElectionType.PREFERRED, [TopicPartition(t, p) for p in range(3)]).result(30)
    codes = {tp.partition: (e.code() if e is not None else 0) for tp, e in result.items()}
    assert {p: codes[p] for p in preferred} == {p: 0 for p in preferred}, codes
    assert all(code in (0, KafkaError.ELECTION_NOT_NEEDED) for code in codes.values()), codes
    back = c.wait_until(lambda: (lambda s: s if all(s[p][0] == victim for p in preferred) else None)(
        state()), 20, "node %d to lead %s again" % (victim, preferred))
    cons = Consumer({"bootstrap.servers": c.bootstrap(), "group.id": unique("g"),
                     "auto.offset.reset": "earliest", "enable.auto.commit": False})
    try:
        cons.subscribe([t])
        seen = []
        deadline = time.monotonic() + 40
        for _ in range(4000):
            if len(seen) >= 400 or time.monotonic() > deadline:
                break
            m = cons.poll(0.5)
            if m is not None and m.error() is None:
                seen.append(int(m.value()))
    finally:
        cons.close()
    assert sorted(seen) == list(range(400)), (len(seen), sorted(set(range(400)) - set(seen))[:10])
    print("%s: leaderships off node %d %.1fs after SIGTERM; back after preferred election: %r"
          % (c.impl, victim, took, back))


# ------------------------------------------------------------------ 10. partition reassignment
def test_reassignment_adds_a_replica_that_catches_up_then_removes_one(fresh):
    """kafka-python's AdminClient: AlterPartitionReassignments from [1, 2] to [1, 2, 3] (the new
    replica copies the log and joins the ISR, the reassignment completes: nothing left in
    ListPartitionReassignments), then to [2, 3] (node 1's replica goes, its log directory too,
    and the leadership moves if node 1 led); cancelling when nothing is in progress is
    NO_REASSIGNMENT_IN_PROGRESS; every acknowledged record is still read."""
    from kafka import TopicPartition as KTP
    from kafka.errors import NoReassignmentInProgressError
    c = fresh
    t = unique("move")
    ka = kp_admin(c, 1)
    try:
        ka.create_topics({t: {"assignments": {0: [1, 2]}}})

        def state():
            from kafka.protocol.metadata import MetadataRequest
            r = c.node(2).probe.call(MetadataRequest, 9,
                                     topics=[MetadataRequest.MetadataRequestTopic(name=t)],
                                     allow_auto_topic_creation=False,
                                     include_cluster_authorized_operations=False,
                                     include_topic_authorized_operations=False)
            p = r.topics[0].partitions[0]
            return p.leader_id, list(p.replica_nodes), sorted(p.isr_nodes)

        c.wait_until(lambda: state()[2] == [1, 2], 20, "ISR [1, 2]")
        p_ = Producer({"bootstrap.servers": c.bootstrap(), "acks": "all"})
        acked = []
        for i in range(200):
            p_.produce(t, str(i).encode(), on_delivery=lambda e, m: acked.append(e is None))
        p_.flush(30)
        assert acked == [True] * 200
        assert ka.alter_partition_reassignments({KTP(t, 0): [1, 2, 3]}) == {KTP(t, 0): None}
        c.wait_until(lambda: (lambda s: s[1] == [1, 2, 3] and s[2] == [1, 2, 3])(state()), 30,
                     "replica 3 to catch up and join the ISR")
        c.wait_until(lambda: ka.list_partition_reassignments() == {}, 20, "the reassignment to end")
        errors = ka.alter_partition_reassignments({KTP(t, 0): None})
        assert errors[KTP(t, 0)] is NoReassignmentInProgressError, errors
        assert ka.alter_partition_reassignments({KTP(t, 0): [2, 3]}) == {KTP(t, 0): None}
        moved = c.wait_until(lambda: (lambda s: s if s[1] == [2, 3] and s[2] == [2, 3] else None)(
            state()), 30, "replica 1 to leave")
        assert moved[0] in (2, 3), moved
        # v1 (KIP-860): allow_replication_factor_change=false refuses another size, changes nothing.
        from kafka.protocol.admin import AlterPartitionReassignmentsRequest as APR
        r = c.node(2).probe.call(
            APR, 1, timeout_ms=10000, allow_replication_factor_change=False,
            topics=[APR.ReassignableTopic(name=t, partitions=[
                APR.ReassignableTopic.ReassignablePartition(partition_index=0,
                                                            replicas=[1, 2, 3])])])
        assert r.error_code == 0, r
        assert [p.error_code for p in r.responses[0].partitions] == [INVALID_REPLICATION_FACTOR], r
        assert state()[1] == [2, 3]
        gone = os.path.join(c.node(1).data_dir, "%s-0" % t)
        c.wait_until(lambda: not os.path.exists(gone), 60, "node 1 to delete its replica's log")
    finally:
        ka.close()
    cons = Consumer({"bootstrap.servers": c.bootstrap(2, 3), "group.id": unique("g"),
                     "auto.offset.reset": "earliest", "enable.auto.commit": False})
    try:
        cons.assign([TopicPartition(t, 0)])
        seen = []
        deadline = time.monotonic() + 30
        for _ in range(2000):
            if len(seen) >= 200 or time.monotonic() > deadline:
                break
            m = cons.poll(0.5)
            if m is not None and m.error() is None:
                seen.append((m.offset(), int(m.value())))
    finally:
        cons.close()
    assert seen == [(i, i) for i in range(200)], seen[:5]
