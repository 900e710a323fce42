"""Consumer groups with real clients: membership and rebalances (confluent-kafka, kafka-python,
aiokafka, kcat), committed offsets and their durability, and the admin APIs for groups."""
import os
import signal
import subprocess
import sys
import textwrap
import time

import pytest
from confluent_kafka import Consumer, KafkaError, KafkaException, TopicPartition
from confluent_kafka import ConsumerGroupState, ConsumerGroupTopicPartitions

import kutil
from kutil import admin, create_topic, produce, unique, wait_until

BROKER_OVERRIDES = {"group.initial.rebalance.delay.ms": "0"}


def group_consumer(b, group, **conf):
    c = {"bootstrap.servers": b.bootstrap, "group.id": group, "auto.offset.reset": "earliest",
         "enable.auto.commit": False, "session.timeout.ms": 6000, "heartbeat.interval.ms": 500,
         "socket.timeout.ms": 10000, "log.connection.close": False}
    c.update(conf)
    return Consumer(c)


def assignment(c):
    return sorted((tp.topic, tp.partition) for tp in c.assignment())


def pump(consumers, until, timeout=30, msg="group converged"):
    """Poll every consumer in turn until `until()` holds; bounded by count and time.  Returns the
    messages consumed meanwhile."""
    seen = []
    deadline = time.monotonic() + timeout
    for _ in range(int(timeout / 0.05) + 10):
        for c in consumers:
            m = c.poll(0.05)
            if m is not None and not m.error():
                seen.append(m)
        if until():
            return seen
        if time.monotonic() > deadline:
            break
    raise AssertionError("timed out: %s; assignments=%r" % (msg, [assignment(c) for c in consumers]))


def split_evenly(consumers, partitions, per):
    def ok():
        asg = [assignment(c) for c in consumers]
        flat = [tp for a in asg for tp in a]
        return (all(len(a) in per for a in asg) and len(flat) == len(set(flat))
                and sorted(flat) == sorted(partitions))
    return ok


def owners_cover(consumers, partitions):
    def ok():
        flat = [tp for c in consumers for tp in assignment(c)]
        return len(flat) == len(set(flat)) and sorted(flat) == sorted(partitions)
    return ok


@pytest.mark.parametrize("strategy", ["range", "cooperative-sticky"])
def test_three_split_fourth_joins_one_leaves(broker, strategy):
    topic = create_topic(broker, unique("grp"), partitions=6)
    parts = [(topic, p) for p in range(6)]
    group = unique("g")
    cs = [group_consumer(broker, group, **{"partition.assignment.strategy": strategy})
          for _ in range(3)]
    try:
        for c in cs:
            c.subscribe([topic])
        pump(cs, split_evenly(cs, parts, {2}), msg="3 members split 2/2/2")
        fourth = group_consumer(broker, group, **{"partition.assignment.strategy": strategy})
        fourth.subscribe([topic])
        cs.append(fourth)
        pump(cs, split_evenly(cs, parts, {1, 2}), msg="4 members share 6 partitions")
        assert all(assignment(c) for c in cs), "every member owns something"
        leaving = cs.pop(0)
        leaving.close()  # LeaveGroup
        pump(cs, split_evenly(cs, parts, {2}), msg="survivors take over")
        d = admin(broker).describe_consumer_groups([group])[group].result(15)
        assert d.state == ConsumerGroupState.STABLE
        assert len(d.members) == 3
        assert d.partition_assignor == strategy
        assert all(m.host == "/127.0.0.1" for m in d.members), [m.host for m in d.members]
    finally:
        for c in cs:
            c.close()


CHILD = textwrap.dedent("""
    import sys, time
    from confluent_kafka import Consumer
    bootstrap, group, topic = sys.argv[1:4]
    extra = dict(a.split("=", 1) for a in sys.argv[4:])
    conf = {"bootstrap.servers": bootstrap, "group.id": group, "auto.offset.reset": "earliest",
            "enable.auto.commit": False, "session.timeout.ms": 6000, "heartbeat.interval.ms": 500}
    conf.update(extra)
    c = Consumer(conf)
    c.subscribe([topic])
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        c.poll(0.1)
        if c.assignment():
            print("ASSIGNED", ",".join(str(tp.partition) for tp in c.assignment()), flush=True)
""")


def spawn_consumer(b, group, topic, *extra):
    return subprocess.Popen([sys.executable, "-c", CHILD, b.bootstrap, group, topic, *extra],
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)


class ChildOutput:
    """Non-blocking reader of a child consumer's stdout."""

    def __init__(self, proc):
        self.proc = proc
        self.buf = b""
        os.set_blocking(proc.stdout.fileno(), False)

    def assigned(self):
        self.buf += self.proc.stdout.read() or b""
        return b"ASSIGNED" in self.buf


def test_sigkilled_member_session_expires_and_survivors_take_over(broker):
    topic = create_topic(broker, unique("grp"), partitions=4)
    parts = [(topic, p) for p in range(4)]
    group = unique("g")
    survivor = group_consumer(broker, group)
    survivor.subscribe([topic])
    child = spawn_consumer(broker, group, topic)
    try:
        out = ChildOutput(child)
        pump([survivor], lambda: out.assigned() and len(assignment(survivor)) == 2,
             msg="child took half")
        child.send_signal(signal.SIGKILL)
        child.wait(10)
        t0 = time.monotonic()
        pump([survivor], owners_cover([survivor], parts), timeout=30,
             msg="session timeout hands the killed member's partitions over")
        assert time.monotonic() - t0 >= 3, "took over before the session could expire"
    finally:
        if child.poll() is None:
            child.kill()
        survivor.close()


def test_static_member_restart_within_session_timeout_does_not_rebalance(broker):
    topic = create_topic(broker, unique("grp"), partitions=4)
    group = unique("g")
    conf = {"session.timeout.ms": 30000}
    a = group_consumer(broker, group, **{"group.instance.id": "a"}, **conf)
    b1 = group_consumer(broker, group, **{"group.instance.id": "b"}, **conf)
    a.subscribe([topic])
    b1.subscribe([topic])
    try:
        pump([a, b1], lambda: len(assignment(a)) == 2 and len(assignment(b1)) == 2)
        before_a, before_b = assignment(a), assignment(b1)
        gen = admin(broker).describe_consumer_groups([group])[group].result(15)
        members_before = sorted(m.member_id for m in gen.members)
        b1.close()  # a static member does not send LeaveGroup
        b2 = group_consumer(broker, group, **{"group.instance.id": "b"}, **conf)
        b2.subscribe([topic])
        pump([a, b2], lambda: assignment(b2) == before_b, msg="b back with its partitions")
        # a kept polling the whole time and was never revoked
        assert assignment(a) == before_a
        d = admin(broker).describe_consumer_groups([group])[group].result(15)
        assert d.state == ConsumerGroupState.STABLE
        assert sorted(m.group_instance_id for m in d.members) == ["a", "b"]
        members_after = sorted(m.member_id for m in d.members)
        assert members_after != members_before, "b got a new member id"
        b2.close()
    finally:
        a.close()


def test_commit_sync_async_metadata_and_resume(broker):
    topic = create_topic(broker, unique("grp"), partitions=2)
    produce(broker, topic, [b"a%d" % i for i in range(10)], partition=0)
    produce(broker, topic, [b"b%d" % i for i in range(10)], partition=1)
    group = unique("g")
    c = group_consumer(broker, group)
    c.subscribe([topic])
    try:
        pump([c], lambda: len(assignment(c)) == 2)
        c.commit(offsets=[TopicPartition(topic, 0, 4)], asynchronous=False)
        tp = TopicPartition(topic, 1, 7, metadata="checkpoint-7")
        c.commit(offsets=[tp], asynchronous=True)
        wait_until(lambda: [p.offset for p in c.committed([TopicPartition(topic, 0),
                                                             TopicPartition(topic, 1)], timeout=5)]
                   == [4, 7], 10, msg="async commit visible")
        committed = c.committed([TopicPartition(topic, 1)], timeout=5)
        assert committed[0].metadata == "checkpoint-7"
    finally:
        c.close()
    # a new consumer in the same group resumes exactly at the committed offsets
    c2 = group_consumer(broker, group)
    c2.subscribe([topic])
    try:
        first = {}
        def have_both():
            return set(first) == {0, 1}
        for m in pump([c2], lambda: len(assignment(c2)) == 2):
            first.setdefault(m.partition(), m.value())
        for _ in range(200):
            if have_both():
                break
            m = c2.poll(0.1)
            if m is not None and not m.error():
                first.setdefault(m.partition(), m.value())
        assert first == {0: b"a4", 1: b"b7"}
    finally:
        c2.close()


def test_auto_commit_then_resume(broker):
    topic = create_topic(broker, unique("grp"), partitions=1)
    produce(broker, topic, [b"v%d" % i for i in range(30)])
    group = unique("g")
    c = group_consumer(broker, group, **{"enable.auto.commit": True, "auto.commit.interval.ms": 200})
    c.subscribe([topic])
    try:
        seen = []
        for _ in range(400):
            m = c.poll(0.05)
            if m is not None and not m.error():
                seen.append(m.offset())
            if len(seen) >= 30:
                break
        assert len(seen) == 30
        wait_until(lambda: c.committed([TopicPartition(topic, 0)], timeout=5)[0].offset == 30,
                   10, msg="auto-commit of position 30")
    finally:
        c.close()
    assert kutil_committed(broker, group, topic, 0) == 30


def kutil_committed(b, group, topic, partition):
    res = admin(b).list_consumer_group_offsets(
        [ConsumerGroupTopicPartitions(group, [TopicPartition(topic, partition)])])
    return res[group].result(15).topic_partitions[0].offset


def test_committed_offsets_survive_broker_sigkill(make_broker):
    b = make_broker(overrides=dict(BROKER_OVERRIDES))
    topic = create_topic(b, unique("grp"), partitions=3)
    group = unique("g")
    c = group_consumer(b, group)
    c.subscribe([topic])
    try:
        pump([c], lambda: len(assignment(c)) == 3)
        c.commit(offsets=[TopicPartition(topic, p, 10 + p) for p in range(3)], asynchronous=False)
    finally:
        c.close()
    b.restart(kill=True)
    def committed():
        return [kutil_committed(b, group, topic, p) for p in range(3)]
    assert wait_until(lambda: committed() == [10, 11, 12], 20, msg="offsets after restart")
    d = admin(b).describe_consumer_groups([group])[group].result(15)
    assert d.state == ConsumerGroupState.EMPTY
    # and a new member of the group starts from them
    produce(b, topic, [b"x%d" % i for i in range(13)], partition=2)
    c2 = group_consumer(b, group)
    c2.subscribe([topic])
    try:
        msgs = pump([c2], lambda: bool(assignment(c2)))
        for _ in range(200):
            if any(m.partition() == 2 for m in msgs):
                break
            m = c2.poll(0.1)
            if m is not None and not m.error():
                msgs.append(m)
        first2 = [m for m in msgs if m.partition() == 2][0]
        assert (first2.offset(), first2.value()) == (12, b"x12")
    finally:
        c2.close()


def test_admin_list_describe_alter_delete(broker):
    a = admin(broker)
    topic = create_topic(broker, unique("grp"), partitions=2)
    group = unique("g")
    idle = unique("g-idle")
    c = group_consumer(broker, group)
    c.subscribe([topic])
    try:
        pump([c], lambda: len(assignment(c)) == 2)
        # an Empty group made by an admin commit (generation -1)
        a.alter_consumer_group_offsets([ConsumerGroupTopicPartitions(
            idle, [TopicPartition(topic, 0, 5), TopicPartition(topic, 1, 6)])])[idle].result(15)
        assert kutil_committed(broker, idle, topic, 1) == 6

        listed = a.list_consumer_groups().result(15).valid
        by_id = {g.group_id: g for g in listed}
        assert by_id[group].state == ConsumerGroupState.STABLE
        assert by_id[idle].state == ConsumerGroupState.EMPTY
        stable = a.list_consumer_groups(states={ConsumerGroupState.STABLE}).result(15).valid
        assert group in {g.group_id for g in stable} and idle not in {g.group_id for g in stable}

        d = a.describe_consumer_groups([group])[group].result(15)
        assert d.state == ConsumerGroupState.STABLE and not d.is_simple_consumer_group
        assert len(d.members) == 1
        assert sorted(tp.partition for tp in d.members[0].assignment.topic_partitions) == [0, 1]

        # altering offsets of a group with members is refused (UNKNOWN_MEMBER_ID)
        res = a.alter_consumer_group_offsets([ConsumerGroupTopicPartitions(
            group, [TopicPartition(topic, 0, 1)])])[group].result(15)
        assert res.topic_partitions[0].error.code() == KafkaError.UNKNOWN_MEMBER_ID

        # GROUP_NOT_EMPTY while members remain
        with pytest.raises(KafkaException) as ei:
            a.delete_consumer_groups([group])[group].result(15)
        assert ei.value.args[0].code() == KafkaError.NON_EMPTY_GROUP
    finally:
        c.close()
    wait_until(lambda: a.describe_consumer_groups([group])[group].result(15).state
               == ConsumerGroupState.EMPTY, 10, msg="group empty after close")
    a.delete_consumer_groups([group, idle])[group].result(15)
    listed = {g.group_id for g in a.list_consumer_groups().result(15).valid}
    assert group not in listed and idle not in listed
    with pytest.raises(KafkaException) as ei:
        a.delete_consumer_groups([idle])[idle].result(15)
    assert ei.value.args[0].code() == KafkaError.GROUP_ID_NOT_FOUND
    assert kutil_committed(broker, idle, topic, 0) == -1001


def test_kafka_python_group_splits_and_commits(broker):
    from kafka import KafkaConsumer, TopicPartition as KTP
    from kafka.structs import OffsetAndMetadata
    topic = create_topic(broker, unique("grp"), partitions=4)
    produce(broker, topic, [b"k%d" % i for i in range(8)], partition=0)
    group = unique("g")

    def make():
        c = KafkaConsumer(bootstrap_servers=broker.bootstrap, group_id=group,
                          auto_offset_reset="earliest", enable_auto_commit=False,
                          session_timeout_ms=10000, heartbeat_interval_ms=500,
                          request_timeout_ms=15000)
        # Know the topic's partitions before joining: kafka-python 3.0 otherwise joins with
        # no metadata, rejoins when it arrives, and occasionally loses track of that rejoin
        # (its heartbeat stays disabled until the session expires).
        wait_until(lambda: c.partitions_for_topic(topic) == {0, 1, 2, 3}, 10)
        c.subscribe([topic])
        return c
    import threading
    c1, c2 = make(), make()
    stop = threading.Event()

    def run(c):  # each consumer polls from its own thread, as applications do
        while not stop.is_set():
            c.poll(timeout_ms=200)
    threads = [threading.Thread(target=run, args=(c,), daemon=True) for c in (c1, c2)]
    for t in threads:
        t.start()
    try:
        def split():
            a1, a2 = c1.assignment(), c2.assignment()
            return len(a1) == 2 and len(a2) == 2 and not (a1 & a2)
        wait_until(split, 30, interval=0.05, msg="kafka-python members split 2/2")
        stop.set()
        for t in threads:
            t.join(10)
        owner = c1 if KTP(topic, 0) in c1.assignment() else c2
        owner.commit({KTP(topic, 0): OffsetAndMetadata(5, "kp", -1)})
        assert owner.committed(KTP(topic, 0)) == 5
    finally:
        stop.set()
        c1.close()
        c2.close()
    assert kutil_committed(broker, group, topic, 0) == 5


def test_aiokafka_group_consumes_and_commits(broker):
    import asyncio
    from aiokafka import AIOKafkaConsumer
    from aiokafka.structs import TopicPartition as ATP
    topic = create_topic(broker, unique("grp"), partitions=2)
    produce(broker, topic, [b"a%d" % i for i in range(5)], partition=0)
    produce(broker, topic, [b"b%d" % i for i in range(5)], partition=1)
    group = unique("g")

    async def run():
        c = AIOKafkaConsumer(topic, bootstrap_servers=broker.bootstrap, group_id=group,
                             auto_offset_reset="earliest", enable_auto_commit=False,
                             session_timeout_ms=10000, heartbeat_interval_ms=500)
        await c.start()
        try:
            got = []
            async def take():
                while len(got) < 10:
                    batch = await c.getmany(timeout_ms=500)
                    for msgs in batch.values():
                        got.extend(msgs)
            await asyncio.wait_for(take(), 30)
            await c.commit()
            assert sorted(m.value for m in got) == sorted([b"a%d" % i for i in range(5)]
                                                          + [b"b%d" % i for i in range(5)])
            return [await c.committed(ATP(topic, p)) for p in (0, 1)]
        finally:
            await c.stop()
    assert asyncio.run(run()) == [5, 5]
    assert [kutil_committed(broker, group, topic, p) for p in (0, 1)] == [5, 5]


def test_kcat_balanced_consumer(broker):
    topic = create_topic(broker, unique("grp"), partitions=3)
    for p in range(3):
        produce(broker, topic, [b"c%d-%d" % (p, i) for i in range(4)], partition=p)
    group = unique("g")
    r = kutil.kcat(broker, "-G", group, "-X", "auto.offset.reset=earliest",
                   "-X", "enable.auto.commit=true", "-X", "auto.commit.interval.ms=100",
                   "-c", "12", "-f", "%s\n", topic, timeout=60)
    values = sorted(r.stdout.decode().split())
    assert values == sorted("c%d-%d" % (p, i) for p in range(3) for i in range(4))
    assert [kutil_committed(broker, group, topic, p) for p in range(3)] == [4, 4, 4]


def test_kafka_python_admin_offset_delete_and_remove_members(broker):
    from kafka import TopicPartition as KTP
    from kafka.admin import MemberToRemove
    from kafka.structs import OffsetAndMetadata
    other = create_topic(broker, unique("grp"), partitions=1)
    topic = create_topic(broker, unique("grp"), partitions=2)
    group = unique("g")
    kp = kutil.kp_admin(broker)
    c = group_consumer(broker, group, **{"group.instance.id": "static-1",
                                         "session.timeout.ms": 30000})
    c.subscribe([topic])
    try:
        pump([c], lambda: len(assignment(c)) == 2)
        c.commit(offsets=[TopicPartition(topic, 0, 3), TopicPartition(other, 0, 9)],
                 asynchronous=False)
        # OffsetDelete: a topic the live group subscribes to is refused, another is deleted
        res = kp.delete_group_offsets(group, [KTP(topic, 0), KTP(other, 0)])
        errors = {tp.topic: err for tp, err in res.items()}
        assert errors[topic].__name__ == "GroupSubscribedToTopicError", errors
        assert errors[other].__name__ == "NoError", errors
        offsets = kp.list_group_offsets({group: None})[group]
        assert {(tp.topic, tp.partition): o.offset for tp, o in offsets.items()} == {(topic, 0): 3}
        # LeaveGroup v3+ removes the static member by instance id (it never leaves by itself)
        kp.remove_group_members(group, [MemberToRemove(group_instance_id="static-1")])
        wait_until(lambda: kp.describe_groups([group])[group]["group_state"] == "Empty", 10,
                   msg="group empty after removing its static member")
        # now its offsets may be altered and deleted
        kp.alter_group_offsets(group, {KTP(topic, 1): OffsetAndMetadata(7, "", -1)})
        kp.delete_group_offsets(group, [KTP(topic, 0)])
        offsets = kp.list_group_offsets({group: None})[group]
        assert {(tp.topic, tp.partition): o.offset for tp, o in offsets.items()} == {(topic, 1): 7}
        listed = kp.list_groups(states_filter=["Empty"])
        assert {"group_id": group, "protocol_type": "consumer", "group_state": "Empty",
                "group_type": "classic"} in listed
        assert all(g["group_state"] == "Empty" for g in listed)
    finally:
        c.close()
        kp.close()


def test_stable_group_is_restored_after_broker_sigkill(make_broker):
    b = make_broker(overrides=dict(BROKER_OVERRIDES))
    topic = create_topic(b, unique("grp"), partitions=2)
    group = unique("g")
    c = group_consumer(b, group, **{"session.timeout.ms": 30000})
    c.subscribe([topic])
    try:
        pump([c], lambda: len(assignment(c)) == 2)
        before = admin(b).describe_consumer_groups([group])[group].result(15)
        b.restart(kill=True)
        # loaded from __consumer_offsets: the same member, still Stable, no rebalance needed
        d = wait_until(lambda: admin(b).describe_consumer_groups([group])[group].result(15), 20)
        assert d.state == ConsumerGroupState.STABLE
        assert [m.member_id for m in d.members] == [m.member_id for m in before.members]
        # the member reconnects and carries on: heartbeats of its generation are accepted
        for _ in range(40):
            c.poll(0.1)
        assert len(assignment(c)) == 2
        d = admin(b).describe_consumer_groups([group])[group].result(15)
        assert d.state == ConsumerGroupState.STABLE
        assert [m.member_id for m in d.members] == [m.member_id for m in before.members]
    finally:
        c.close()
