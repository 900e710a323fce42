"""The next-generation consumer group protocol (KIP-848) with confluent-kafka
(`group.protocol=consumer`): the broker assigns partitions with its `uniform` or `range`
assignor, members reconcile incrementally, a member that leaves or dies hands its partitions
over, static members keep theirs across a restart, offsets commit and survive a broker SIGKILL,
and groups are visible through ConsumerGroupDescribe and ListGroups. ConsumerGroupHeartbeat and
ConsumerGroupDescribe are also exercised byte by byte for Kafka's error codes."""
import signal
import struct
import subprocess
import sys
import textwrap
import time
import uuid

import pytest
from confluent_kafka import (Consumer, ConsumerGroupState, ConsumerGroupType, KafkaException,
                             TopicPartition)
from confluent_kafka import ConsumerGroupTopicPartitions

import kwire
from kutil import admin, create_topic, produce, unique
from test_groups import assignment, pump, split_evenly as split

BROKER_OVERRIDES = {
    "group.initial.rebalance.delay.ms": "0",
    "group.consumer.heartbeat.interval.ms": "500",
    "group.consumer.session.timeout.ms": "6000",
}

NONE = 0
INCONSISTENT_GROUP_PROTOCOL = 23
UNKNOWN_MEMBER_ID = 25
UNSUPPORTED_VERSION = 35
INVALID_REQUEST = 42
NON_EMPTY_GROUP = 68
GROUP_ID_NOT_FOUND = 69
FENCED_MEMBER_EPOCH = 110
UNSUPPORTED_ASSIGNOR = 112
STALE_MEMBER_EPOCH = 113


def kip848_consumer(b, group, **conf):
    c = {"bootstrap.servers": b.bootstrap, "group.id": group, "group.protocol": "consumer",
         "auto.offset.reset": "earliest", "enable.auto.commit": False,
         "socket.timeout.ms": 10000, "log.connection.close": False}
    c.update(conf)
    return Consumer(c)


@pytest.mark.parametrize("assignor", ["uniform", "range"])
def test_three_split_fourth_joins_one_leaves(broker, assignor):
    topic = create_topic(broker, unique("k848"), partitions=6)
    parts = [(topic, p) for p in range(6)]
    produce(broker, topic, [b"v%d" % i for i in range(6)], partition=0)
    group = unique("g")
    conf = {"group.remote.assignor": assignor}
    cs = [kip848_consumer(broker, group, **conf) for _ in range(3)]
    try:
        for c in cs:
            c.subscribe([topic])
        pump(cs, split(cs, parts, {2}), msg="3 members split 2/2/2")
        if assignor == "range":
            for c in cs:
                ps = [p for _, p in assignment(c)]
                assert ps[1] == ps[0] + 1, "range assigns contiguous partitions: %r" % ps
        d = admin(broker).describe_consumer_groups([group])[group].result(15)
        assert d.type == ConsumerGroupType.CONSUMER
        assert d.state == ConsumerGroupState.STABLE
        assert d.partition_assignor == assignor
        assert len(d.members) == 3
        described = sorted((tp.topic, tp.partition) for m in d.members
                           for tp in m.assignment.topic_partitions)
        assert described == sorted(parts)
        for m in d.members:
            assert m.host == "/127.0.0.1"
            assert sorted(tp.partition for tp in m.target_assignment.topic_partitions) == \
                sorted(tp.partition for tp in m.assignment.topic_partitions)

        fourth = kip848_consumer(broker, group, **conf)
        fourth.subscribe([topic])
        cs.append(fourth)
        pump(cs, split(cs, parts, {1, 2}), msg="4 members share 6 partitions")
        assert all(assignment(c) for c in cs), "every member owns something"

        leaving = cs.pop(0)
        leaving.close()  # heartbeat with member epoch -1
        pump(cs, split(cs, parts, {2}), msg="survivors take over")
        d = admin(broker).describe_consumer_groups([group])[group].result(15)
        assert len(d.members) == 3
    finally:
        for c in cs:
            c.close()


def test_every_record_consumed_across_a_rebalance_with_commits(broker):
    """a reads half of the records and commits; b joins and takes two partitions from the
    committed offsets; together they read every record, each value at its own offset."""
    topic = create_topic(broker, unique("k848"), partitions=4)
    for p in range(4):
        produce(broker, topic, [b"%d-%d" % (p, i) for i in range(50)], partition=p)
    group = unique("g")
    a = kip848_consumer(broker, group, **{"max.partition.fetch.bytes": 500})
    a.subscribe([topic])
    got = {}

    def take(m):
        key = (m.partition(), m.offset())
        assert got.setdefault(key, m.value()) == m.value(), "two values at one offset"
        return m

    try:
        pump([a], lambda: len(assignment(a)) == 4, msg="a owns everything")
        for _ in range(2000):
            if len(got) >= 100:
                break
            m = a.poll(0.05)
            if m is not None and not m.error():
                a.commit(message=take(m), asynchronous=False)
        assert len(got) >= 100
        b = kip848_consumer(broker, group)
        b.subscribe([topic])
        try:
            deadline = time.monotonic() + 40
            for _ in range(4000):
                for c in (a, b):
                    m = c.poll(0.05)
                    if m is not None and not m.error():
                        take(m)
                        c.commit(message=m, asynchronous=False)
                if len(got) == 200 and len(assignment(b)) == 2 and len(assignment(a)) == 2:
                    break
                assert time.monotonic() < deadline, "timed out: %d read, %r %r" % (
                    len(got), assignment(a), assignment(b))
        finally:
            b.close()
    finally:
        a.close()
    assert sorted(got) == [(p, o) for p in range(4) for o in range(50)]
    assert all(got[(p, o)] == b"%d-%d" % (p, o) for p, o in got)
    committed = admin(broker).list_consumer_group_offsets(
        [ConsumerGroupTopicPartitions(group)])[group].result(15)
    assert sorted((tp.partition, tp.offset) for tp in committed.topic_partitions) == \
        [(p, 50) for p in range(4)]


CHILD = textwrap.dedent("""
    import sys, time
    from confluent_kafka import Consumer
    bootstrap, group, topic = sys.argv[1:4]
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": group, "group.protocol": "consumer",
                  "auto.offset.reset": "earliest", "enable.auto.commit": False})
    c.subscribe([topic])
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        c.poll(0.1)
        if c.assignment():
            print("ASSIGNED", flush=True)
""")


def test_sigkilled_member_is_fenced_by_session_timeout(broker):
    topic = create_topic(broker, unique("k848"), partitions=4)
    parts = [(topic, p) for p in range(4)]
    group = unique("g")
    survivor = kip848_consumer(broker, group)
    survivor.subscribe([topic])
    child = subprocess.Popen([sys.executable, "-c", CHILD, broker.bootstrap, group, topic],
                             stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    try:
        import os
        os.set_blocking(child.stdout.fileno(), False)
        buf = [b""]

        def child_assigned():
            buf[0] += child.stdout.read() or b""
            return b"ASSIGNED" in buf[0]

        pump([survivor], lambda: child_assigned() and len(assignment(survivor)) == 2,
             msg="the child took half")
        child.send_signal(signal.SIGKILL)
        child.wait(10)
        t0 = time.monotonic()
        pump([survivor], lambda: assignment(survivor) == parts, timeout=30,
             msg="the session timeout hands the killed member's partitions over")
        waited = time.monotonic() - t0
        assert waited >= 3, "took over after %.1fs, before the 6s session could expire" % waited
        d = admin(broker).describe_consumer_groups([group])[group].result(15)
        assert len(d.members) == 1
    finally:
        if child.poll() is None:
            child.kill()
        survivor.close()


def test_static_member_restart_keeps_its_partitions(broker):
    topic = create_topic(broker, unique("k848"), partitions=4)
    group = unique("g")
    a = kip848_consumer(broker, group, **{"group.instance.id": "a"})
    b1 = kip848_consumer(broker, group, **{"group.instance.id": "b"})
    a.subscribe([topic])
    b1.subscribe([topic])
    try:
        pump([a, b1], lambda: len(assignment(a)) == 2 and len(assignment(b1)) == 2)
        before_a, before_b = assignment(a), assignment(b1)
        epoch_before = describe_raw(broker, group, 0)["group_epoch"]
        b1.close()  # a static member leaves with epoch -2: it keeps its assignment
        b2 = kip848_consumer(broker, group, **{"group.instance.id": "b"})
        b2.subscribe([topic])
        pump([a, b2], lambda: assignment(b2) == before_b, msg="b back with its partitions")
        assert assignment(a) == before_a, "a was never revoked"
        g = describe_raw(broker, group, 0)
        assert g["group_epoch"] == epoch_before, "no rebalance: the group epoch did not move"
        assert sorted(m["instance_id"] for m in g["members"]) == ["a", "b"]
        b2.close()
    finally:
        a.close()


def test_commits_survive_a_broker_sigkill_and_the_member_carries_on(make_broker):
    b = make_broker(overrides=BROKER_OVERRIDES)
    topic = create_topic(b, unique("k848"), partitions=2)
    for p in range(2):
        produce(b, topic, [b"%d-%d" % (p, i) for i in range(20)], partition=p)
    group = unique("g")
    c = kip848_consumer(b, group)
    c.subscribe([topic])
    try:
        seen = pump([c], lambda: len(assignment(c)) == 2, msg="assigned")
        for _ in range(400):
            if len(seen) >= 40:
                break
            m = c.poll(0.05)
            if m is not None and not m.error():
                seen.append(m)
        assert len(seen) == 40
        c.commit(offsets=[TopicPartition(topic, 0, 7), TopicPartition(topic, 1, 13)],
                 asynchronous=False)
        committed = c.committed([TopicPartition(topic, 0), TopicPartition(topic, 1)], timeout=10)
        assert [tp.offset for tp in committed] == [7, 13]
        b.restart(kill=True)
        # Membership is persisted: the member carries on with its partitions after the restart.
        pump([c], lambda: len(assignment(c)) == 2 and
             c.committed([TopicPartition(topic, 0)], timeout=5)[0].offset == 7,
             timeout=40, msg="assigned again after the broker restart")
    finally:
        c.close()
    c2 = kip848_consumer(b, group)
    c2.subscribe([topic])
    try:
        seen = pump([c2], lambda: len(assignment(c2)) == 2, msg="assigned")
        for _ in range(400):
            if len(seen) >= 20:
                break
            m = c2.poll(0.05)
            if m is not None and not m.error():
                seen.append(m)
        first = {}
        for m in seen:
            first.setdefault(m.partition(), m.offset())
        assert first == {0: 7, 1: 13}, first
        assert len(seen) == (20 - 7) + (20 - 13)
    finally:
        c2.close()
    offsets = admin(b).list_consumer_group_offsets(
        [ConsumerGroupTopicPartitions(group)])[group].result(15)
    assert sorted((tp.partition, tp.offset) for tp in offsets.topic_partitions) == [(0, 7), (1, 13)]


def test_regex_subscription_picks_up_new_topics(broker):
    prefix = unique("kre")
    t1 = create_topic(broker, prefix + "-one", partitions=2)
    c = kip848_consumer(broker, unique("g"), **{"topic.metadata.refresh.interval.ms": 1000})
    c.subscribe(["^" + prefix + "-.*"])
    try:
        pump([c], lambda: assignment(c) == [(t1, 0), (t1, 1)], msg="regex matches the topic")
        t2 = create_topic(broker, prefix + "-two", partitions=1)
        pump([c], lambda: assignment(c) == [(t1, 0), (t1, 1), (t2, 0)], timeout=40,
             msg="a new matching topic is assigned")
    finally:
        c.close()


def test_list_groups_shows_both_kinds_and_admin_describes_both(broker):
    topic = create_topic(broker, unique("k848"), partitions=2)
    new_group, old_group = unique("gnew"), unique("gold")
    n = kip848_consumer(broker, new_group)
    o = Consumer({"bootstrap.servers": broker.bootstrap, "group.id": old_group,
                  "auto.offset.reset": "earliest", "session.timeout.ms": 6000})
    n.subscribe([topic])
    o.subscribe([topic])
    try:
        pump([n, o], lambda: len(assignment(n)) == 2 and len(assignment(o)) == 2)
        a = admin(broker)
        listed = {g.group_id: g for g in a.list_consumer_groups().result(15).valid}
        assert listed[new_group].type == ConsumerGroupType.CONSUMER
        assert listed[new_group].state == ConsumerGroupState.STABLE
        assert listed[old_group].type == ConsumerGroupType.CLASSIC
        only_new = a.list_consumer_groups(types={ConsumerGroupType.CONSUMER}).result(15).valid
        assert new_group in [g.group_id for g in only_new]
        assert old_group not in [g.group_id for g in only_new]
        d = a.describe_consumer_groups([new_group, old_group])
        dn, do = d[new_group].result(15), d[old_group].result(15)
        assert (dn.type, len(dn.members)) == (ConsumerGroupType.CONSUMER, 1)
        assert (do.type, len(do.members)) == (ConsumerGroupType.CLASSIC, 1)
        assert do.partition_assignor in ("range", "roundrobin")
        # A group with members cannot be deleted.
        fs = a.delete_consumer_groups([new_group], request_timeout=10)
        with pytest.raises(KafkaException) as e:
            fs[new_group].result(15)
        assert e.value.args[0].code() == NON_EMPTY_GROUP
    finally:
        n.close()
        o.close()
    # Empty now: it can go.
    admin(broker).delete_consumer_groups([new_group], request_timeout=10)[new_group].result(15)


# ------------------------------------------------------------------ raw wire (flexible versions)
def uvarint(n):
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def cstr(s):
    if s is None:
        return b"\x00"
    b = s.encode()
    return uvarint(len(b) + 1) + b


def carray(items, enc):
    if items is None:
        return b"\x00"
    return uvarint(len(items) + 1) + b"".join(enc(i) for i in items)


class Reader:
    def __init__(self, data):
        self.d, self.i = data, 0

    def take(self, n):
        v = self.d[self.i:self.i + n]
        self.i += n
        return v

    def i8(self):
        return struct.unpack(">b", self.take(1))[0]

    def i16(self):
        return struct.unpack(">h", self.take(2))[0]

    def i32(self):
        return struct.unpack(">i", self.take(4))[0]

    def uvarint(self):
        shift = n = 0
        for _ in range(5):
            b = self.take(1)[0]
            n |= (b & 0x7F) << shift
            shift += 7
            if not b & 0x80:
                return n
        raise AssertionError("varint too long")

    def cstr(self):
        n = self.uvarint()
        return None if n == 0 else self.take(n - 1).decode()

    def carray(self, dec):
        n = self.uvarint()
        return None if n == 0 else [dec(self) for _ in range(n - 1)]

    def uuid(self):
        return uuid.UUID(bytes=self.take(16))

    def tags(self):
        for _ in range(self.uvarint()):
            self.uvarint()
            self.take(self.uvarint())


def call(sock, api_key, version, body, corr):
    hdr = struct.pack(">hhi", api_key, version, corr) + kwire.kstr("oxka-e2e") + b"\x00"
    kwire.send_raw(sock, hdr + body)
    r = Reader(kwire.recv_frame(sock))
    assert r.i32() == corr
    r.tags()
    return r


def heartbeat(sock, version, group, member_id, epoch, topics=None, owned=None,
              rebalance_ms=30000, assignor=None, instance=None, corr=1):
    body = (cstr(group) + cstr(member_id) + struct.pack(">i", epoch) + cstr(instance) + cstr(None)
            + struct.pack(">i", rebalance_ms) + carray(topics, cstr))
    if version >= 1:
        body += cstr(None)  # SubscribedTopicRegex
    body += cstr(assignor)
    body += carray(owned, lambda tp: tp[0].bytes + carray(tp[1], lambda p: struct.pack(">i", p))
                   + b"\x00")
    body += b"\x00"
    r = call(sock, 68, version, body, corr)
    out = {"throttle": r.i32(), "error": r.i16(), "message": r.cstr(), "member_id": r.cstr(),
           "epoch": r.i32(), "interval": r.i32()}
    if r.i8() >= 0:
        def tp(rr):
            t = (rr.uuid(), rr.carray(lambda x: x.i32()))
            rr.tags()
            return t
        out["assignment"] = r.carray(tp)
        r.tags()
    else:
        out["assignment"] = None
    r.tags()
    return out


def describe_raw(b, group, version, corr=5):
    s = kwire.connect(b)
    try:
        body = carray([group], cstr) + b"\x01" + b"\x00"
        r = call(s, 69, version, body, corr)
        r.i32()

        def assignment_(rr):
            def tp(x):
                t = (x.uuid(), x.cstr(), x.carray(lambda y: y.i32()))
                x.tags()
                return t
            a = rr.carray(tp)
            rr.tags()
            return a

        def member(rr):
            m = {"member_id": rr.cstr(), "instance_id": rr.cstr(), "rack_id": rr.cstr(),
                 "epoch": rr.i32(), "client_id": rr.cstr(), "client_host": rr.cstr(),
                 "topics": rr.carray(lambda x: x.cstr()), "regex": rr.cstr(),
                 "assignment": assignment_(rr), "target": assignment_(rr)}
            if version >= 1:
                m["member_type"] = rr.i8()
            rr.tags()
            return m

        def group_(rr):
            g = {"error": rr.i16(), "message": rr.cstr(), "group_id": rr.cstr(),
                 "state": rr.cstr(), "group_epoch": rr.i32(), "assignment_epoch": rr.i32(),
                 "assignor": rr.cstr(), "members": rr.carray(member),
                 "authorized_operations": rr.i32()}
            rr.tags()
            return g

        groups = r.carray(group_)
        assert len(groups) == 1
        return groups[0]
    finally:
        s.close()


def topic_id(b, topic):
    from confluent_kafka import TopicCollection
    u = admin(b).describe_topics(TopicCollection([topic]))[topic].result(15).topic_id
    mask = (1 << 64) - 1
    return uuid.UUID(int=((u.get_most_significant_bits() & mask) << 64)
                     | (u.get_least_significant_bits() & mask))


@pytest.mark.parametrize("version", [0, 1])
def test_heartbeat_and_describe_over_the_wire(broker, version):
    topic = create_topic(broker, unique("k848"), partitions=3)
    tid = topic_id(broker, topic)
    group = unique("g")
    s = kwire.connect(broker)
    try:
        # v0 lets the broker pick the member id; from v1 the client must.
        if version == 0:
            r = heartbeat(s, 0, group, "", 0, topics=[topic], owned=[])
            assert r["error"] == NONE, r
            member = r["member_id"]
            assert member
        else:
            r = heartbeat(s, 1, group, "", 0, topics=[topic], owned=[])
            assert (r["error"], r["epoch"]) == (INVALID_REQUEST, 0), r  # epoch: the default, as Kafka
            member = str(uuid.uuid4())
            r = heartbeat(s, 1, group, member, 0, topics=[topic], owned=[])
            assert r["error"] == NONE and r["member_id"] == member, r
        assert r["epoch"] == 1 and r["interval"] == 500
        assert r["assignment"] == [(tid, [0, 1, 2])]
        # A heartbeat with nothing changed: no assignment in the answer.
        r = heartbeat(s, version, group, member, 1, rebalance_ms=-1, corr=2)
        assert (r["error"], r["epoch"], r["assignment"]) == (NONE, 1, None), r

        g = describe_raw(broker, group, version)
        assert (g["error"], g["state"], g["group_epoch"], g["assignment_epoch"], g["assignor"]) == \
            (NONE, "Stable", 1, 1, "uniform"), g
        (m,) = g["members"]
        assert (m["member_id"], m["epoch"], m["client_id"], m["client_host"], m["topics"]) == \
            (member, 1, "oxka-e2e", "/127.0.0.1", [topic])
        assert m["assignment"] == [(tid, topic, [0, 1, 2])] == m["target"]
        if version >= 1:
            assert m["member_type"] == 1

        # Kafka's errors.
        assert heartbeat(s, version, group, member, 7, rebalance_ms=-1)["error"] == FENCED_MEMBER_EPOCH
        assert heartbeat(s, version, group, "nobody", 1, rebalance_ms=-1)["error"] == UNKNOWN_MEMBER_ID
        assert heartbeat(s, version, group, str(uuid.uuid4()), 0, topics=[topic],
                         assignor="sticky")["error"] == UNSUPPORTED_ASSIGNOR
        assert heartbeat(s, version, group, str(uuid.uuid4()), 0, topics=[topic],
                         rebalance_ms=-1)["error"] == INVALID_REQUEST
        assert heartbeat(s, version, "", member, 1)["error"] == INVALID_REQUEST
        assert heartbeat(s, version, unique("nogroup"), member, 3)["error"] == GROUP_ID_NOT_FOUND
        missing = describe_raw(broker, unique("nogroup"), version)
        assert missing["error"] == GROUP_ID_NOT_FOUND and "not found" in missing["message"]

        # The classic APIs see a live consumer group as a different protocol.
        from kafka.protocol.admin.groups import DescribeGroupsRequest, DeleteGroupsRequest
        from kafka.protocol.consumer.group import JoinGroupRequest, OffsetCommitRequest
        j = kwire.request(s, JoinGroupRequest, 5, corr=11, group_id=group, session_timeout_ms=10000,
                          rebalance_timeout_ms=10000, member_id="", group_instance_id=None,
                          protocol_type="consumer",
                          protocols=[JoinGroupRequest.JoinGroupRequestProtocol(name="range",
                                                                               metadata=b"m")])
        assert j.error_code == INCONSISTENT_GROUP_PROTOCOL
        d = kwire.request(s, DescribeGroupsRequest, 5, corr=12, groups=[group],
                          include_authorized_operations=False)
        assert (d.groups[0].error_code, d.groups[0].group_state) == (NONE, "Dead")
        dg = kwire.request(s, DeleteGroupsRequest, 2, corr=13, groups_names=[group])
        assert dg.results[0].error_code == NON_EMPTY_GROUP

        def commit(v, epoch, member_id):
            P = OffsetCommitRequest.OffsetCommitRequestTopic.OffsetCommitRequestPartition
            fields = dict(group_id=group, generation_id_or_member_epoch=epoch, member_id=member_id,
                          group_instance_id=None, topics=[OffsetCommitRequest.OffsetCommitRequestTopic(
                              name=topic, partitions=[P(partition_index=0, committed_offset=5,
                                                        committed_leader_epoch=-1,
                                                        committed_metadata="")])])
            r = kwire.request(s, OffsetCommitRequest, v, corr=14, **fields)
            return r.topics[0].partitions[0].error_code

        assert commit(9, 0, member) == STALE_MEMBER_EPOCH
        assert commit(9, 1, "nobody") == UNKNOWN_MEMBER_ID
        assert commit(8, 1, member) == UNSUPPORTED_VERSION
        assert commit(9, 1, member) == NONE

        def fetch(epoch, member_id):
            from kafka.protocol.consumer.group import OffsetFetchRequest
            G = OffsetFetchRequest.OffsetFetchRequestGroup
            r = kwire.request(s, OffsetFetchRequest, 9, corr=16, require_stable=False, groups=[G(
                group_id=group, member_id=member_id, member_epoch=epoch,
                topics=[G.OffsetFetchRequestTopics(name=topic, partition_indexes=[0])])])
            g = r.groups[0]
            return g.error_code, [p.committed_offset for t in g.topics for p in t.partitions]

        assert fetch(0, member)[0] == STALE_MEMBER_EPOCH
        assert fetch(1, "nobody")[0] == UNKNOWN_MEMBER_ID
        assert fetch(1, member) == (NONE, [5])
        assert fetch(-1, None) == (NONE, [5])  # an admin client names no member

        # Leaving (epoch -1) empties the group; the classic protocol may then take it over.
        r = heartbeat(s, version, group, member, -1, rebalance_ms=-1, corr=3)
        assert (r["error"], r["epoch"]) == (NONE, -1), r
        assert describe_raw(broker, group, version)["state"] == "Empty"
        j = kwire.request(s, JoinGroupRequest, 3, corr=15, group_id=group, session_timeout_ms=10000,
                          rebalance_timeout_ms=10000, member_id="", protocol_type="consumer",
                          protocols=[JoinGroupRequest.JoinGroupRequestProtocol(name="range",
                                                                               metadata=b"m")])
        assert j.error_code == NONE
        classic = describe_raw(broker, group, version)
        assert classic["error"] == GROUP_ID_NOT_FOUND and "not a consumer group" in classic["message"]
        # And a live classic group refuses the consumer protocol.
        r = heartbeat(s, version, group, str(uuid.uuid4()), 0, topics=[topic], owned=[])
        assert r["error"] == GROUP_ID_NOT_FOUND, r
    finally:
        s.close()


def describe_loaded(b, group, timeout=20):
    """ConsumerGroupDescribe v0, retried while the restarted coordinator is loading."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            g = describe_raw(b, group, 0)
            if g["error"] == NONE:
                return g
        except (OSError, AssertionError):
            g = None
        assert time.monotonic() < deadline, "describe after the restart: %r" % (g,)
        time.sleep(0.1)


def membership(g):
    return sorted((m["member_id"], m["epoch"], m["client_host"], m["topics"],
                   sorted((t, sorted(ps)) for _, t, ps in m["assignment"]),
                   sorted((t, sorted(ps)) for _, t, ps in m["target"]))
                  for m in g["members"])


def test_membership_survives_a_broker_sigkill_without_a_rejoin(make_broker):
    """Two Stable members; the broker is SIGKILLed and restarted. The coordinator loads the
    group from its ConsumerGroup* records in __consumer_offsets: before any member heartbeats
    again, ConsumerGroupDescribe shows the same group epoch and the same members at the same
    epochs with the same assignments. The members then go on consuming what is produced after
    the restart at their epochs (a rejoin would bump the group epoch and the member epochs)."""
    b = make_broker(overrides=BROKER_OVERRIDES)
    topic = create_topic(b, unique("k848"), partitions=4)
    parts = [(topic, p) for p in range(4)]
    for p in range(4):
        produce(b, topic, [b"old-%d-%d" % (p, i) for i in range(5)], partition=p)
    group = unique("g")
    cs = [kip848_consumer(b, group) for _ in range(2)]
    try:
        for c in cs:
            c.subscribe([topic])
        pump(cs, split(cs, parts, {2}), msg="2 members split 2/2")
        pump(cs, lambda: describe_raw(b, group, 0)["state"] == "Stable", msg="Stable")
        before = describe_raw(b, group, 0)
        assert before["state"] == "Stable" and len(before["members"]) == 2, before
        owned = {c: assignment(c) for c in cs}

        b.restart(kill=True)

        after = describe_loaded(b, group)
        assert (after["state"], after["group_epoch"], after["assignment_epoch"], after["assignor"]) \
            == ("Stable", before["group_epoch"], before["assignment_epoch"], before["assignor"]), \
            (before, after)
        assert membership(after) == membership(before)

        for p in range(4):
            produce(b, topic, [b"new-%d-%d" % (p, i) for i in range(10)], partition=p)
        got = {c: [] for c in cs}

        def all_new_read():
            return sum(len(v) for v in got.values()) >= 40

        deadline = time.monotonic() + 40
        while not all_new_read():
            assert time.monotonic() < deadline, "new records read: %r" % (
                {id(c): len(v) for c, v in got.items()},)
            for c in cs:
                m = c.poll(0.05)
                if m is not None and not m.error() and m.value().startswith(b"new-"):
                    got[c].append((m.topic(), m.partition(), m.offset()))
        for c in cs:
            assert assignment(c) == owned[c], "a member's partitions moved"
            assert {(t, p) for t, p, _ in got[c]} == set(owned[c]), got[c]
            assert len(got[c]) == 20 and len(set(got[c])) == 20
        # Heartbeats went on at the same epochs: no UNKNOWN_MEMBER_ID, no rejoin.
        time.sleep(1.5)
        for c in cs:
            c.poll(0.05)
        final = describe_raw(b, group, 0)
        assert (final["state"], final["group_epoch"]) == ("Stable", before["group_epoch"]), final
        assert membership(final) == membership(before)
    finally:
        for c in cs:
            c.close()


def test_an_empty_group_keeps_its_group_epoch_across_a_restart(make_broker):
    b = make_broker(overrides=BROKER_OVERRIDES)
    topic = create_topic(b, unique("k848"), partitions=2)
    group = unique("g")
    c = kip848_consumer(b, group)
    c.subscribe([topic])
    try:
        pump([c], lambda: len(assignment(c)) == 2, msg="assigned")
    finally:
        c.close()  # leaves with member epoch -1: the group is Empty
    empty = describe_raw(b, group, 0)
    assert (empty["state"], empty["members"]) == ("Empty", []), empty
    assert empty["group_epoch"] >= 2

    b.restart(kill=True)

    after = describe_loaded(b, group)
    assert (after["state"], after["group_epoch"], after["assignment_epoch"], after["members"]) == \
        ("Empty", empty["group_epoch"], empty["assignment_epoch"], []), after
    # The next member continues from that epoch.
    c = kip848_consumer(b, group)
    c.subscribe([topic])
    try:
        pump([c], lambda: len(assignment(c)) == 2, msg="assigned after the restart")
        g = describe_raw(b, group, 0)
        assert g["group_epoch"] == empty["group_epoch"] + 1, g
        assert g["members"][0]["epoch"] == empty["group_epoch"] + 1, g
    finally:
        c.close()
