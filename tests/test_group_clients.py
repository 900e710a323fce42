"""Consumer groups with aiokafka and with kcat's balanced consumer (`kcat -G`), beyond what
test_groups.py covers: several members splitting a topic, a member leaving, commits surviving
broker SIGKILLs (aiokafka); two kcat -G processes sharing a group (kcat)."""
import asyncio
import os
import signal
import subprocess
import time

import pytest
from confluent_kafka import ConsumerGroupState, ConsumerGroupTopicPartitions, TopicPartition

from kutil import admin, create_topic, produce, unique, wait_until

BROKER_OVERRIDES = {"group.initial.rebalance.delay.ms": "0"}


def committed(b, group, topic, partitions):
    res = admin(b).list_consumer_group_offsets(
        [ConsumerGroupTopicPartitions(group, [TopicPartition(topic, p) for p in partitions])])
    return [tp.offset for tp in res[group].result(15).topic_partitions]


def described_assignment(b, group):
    """{member_id: sorted partitions} as the broker describes a Stable group, else None."""
    d = admin(b).describe_consumer_groups([group])[group].result(15)
    if d.state != ConsumerGroupState.STABLE:
        return None
    return {m.member_id: sorted(tp.partition for tp in m.assignment.topic_partitions)
            for m in d.members}


# ------------------------------------------------------------------ aiokafka
def aio_consumer(b, topic, group, **kw):
    from aiokafka import AIOKafkaConsumer
    conf = dict(bootstrap_servers=b.bootstrap, group_id=group, auto_offset_reset="earliest",
                enable_auto_commit=False, session_timeout_ms=10000, heartbeat_interval_ms=300,
                request_timeout_ms=15000, retry_backoff_ms=100, metadata_max_age_ms=5000)
    conf.update(kw)
    return AIOKafkaConsumer(topic, **conf)


class Member:
    """An aiokafka group member polling in its own task, keeping what it consumed."""

    def __init__(self, name, consumer):
        self.name = name
        self.c = consumer
        self.got = []  # (partition, offset, value)
        self.task = None

    async def start(self):
        await self.c.start()
        self.task = asyncio.create_task(self._poll())

    async def _poll(self):
        while True:
            batch = await self.c.getmany(timeout_ms=100)
            for msgs in batch.values():
                self.got.extend((m.partition, m.offset, m.value) for m in msgs)

    def partitions(self):
        return sorted(tp.partition for tp in self.c.assignment())

    async def stop(self):
        if self.task is not None:
            self.task.cancel()
            try:
                await self.task
            except (asyncio.CancelledError, Exception):  # noqa: BLE001 - stopping anyway
                pass
            self.task = None
        await self.c.stop()


async def wait_async(fn, timeout, msg, interval=0.05):
    deadline = time.monotonic() + timeout
    for _ in range(int(timeout / interval) + 2):
        if fn():
            return
        if time.monotonic() > deadline:
            break
        await asyncio.sleep(interval)
    raise AssertionError("timed out: %s" % msg)


def split(members, npart, sizes):
    def ok():
        asg = [m.partitions() for m in members]
        flat = [p for a in asg for p in a]
        return sorted(flat) == list(range(npart)) and sorted(len(a) for a in asg) == sizes
    return ok


def produce_marker_per_partition(b, topic, npart, label):
    for p in range(npart):
        produce(b, topic, [b"%s-%d" % (label.encode(), p)], partition=p)


def test_aiokafka_three_members_split_six_partitions_and_one_leaves(broker):
    topic = create_topic(broker, unique("aiog"), partitions=6)
    group = unique("g")

    async def run():
        members = [Member("m%d" % i, aio_consumer(broker, topic, group)) for i in range(3)]
        try:
            await asyncio.gather(*(m.start() for m in members))
            await wait_async(split(members, 6, [2, 2, 2]), 30, "3 members split 2/2/2")
            ids = {m.name: m.c._coordinator.member_id for m in members}
            desc = await asyncio.to_thread(described_assignment, broker, group)
            assert desc == {ids[m.name]: m.partitions() for m in members}
            await markers(members, "three")

            leaving = members.pop(0)
            gone = leaving.partitions()
            await leaving.stop()  # LeaveGroup
            await wait_async(split(members, 6, [3, 3]), 30, "survivors take 3/3")
            owned = {p for m in members for p in m.partitions()}
            assert set(gone) <= owned
            desc = await asyncio.to_thread(described_assignment, broker, group)
            assert desc == {ids[m.name]: m.partitions() for m in members}
            await markers(members, "two")
        finally:
            for m in members:
                await m.stop()

    async def markers(members, label):
        for m in members:
            m.got = []
        await asyncio.to_thread(produce_marker_per_partition, broker, topic, 6, label)
        await wait_async(lambda: sum(len(m.got) for m in members) >= 6, 20, "%s markers" % label)
        await asyncio.sleep(0.3)  # a duplicate would arrive meanwhile
        for m in members:
            assert sorted(p for p, _o, _v in m.got) == m.partitions(), (label, m.name, m.got)
            assert all(v == b"%s-%d" % (label.encode(), p) for p, _o, v in m.got), m.got
        # commit the positions: whoever owns a partition next starts after these markers (the
        # rebalance is eager: every member restarts from the committed offsets)
        for m in members:
            await m.c.commit()

    asyncio.run(asyncio.wait_for(run(), 90))
    wait_until(lambda: admin(broker).describe_consumer_groups([group])[group].result(15).state
               == ConsumerGroupState.EMPTY, 10, msg="group empty after the members stopped")


def test_aiokafka_commit_and_resume_across_broker_sigkills(make_broker):
    from aiokafka.structs import TopicPartition as ATP
    b = make_broker(overrides=dict(BROKER_OVERRIDES))
    topic = create_topic(b, unique("aiog"), partitions=2)
    for p in range(2):
        produce(b, topic, [b"p%d-%d" % (p, i) for i in range(10)], partition=p)
    group = unique("g")
    tps = [ATP(topic, 0), ATP(topic, 1)]

    async def first():
        m = Member("a", aio_consumer(b, topic, group))
        await m.start()
        try:
            await wait_async(lambda: len(m.got) >= 20, 30, "20 records")
            await m.c.commit({tps[0]: 3, tps[1]: 5})
            return [await m.c.committed(tp) for tp in tps]
        finally:
            await m.stop()  # leaves the group

    assert asyncio.run(asyncio.wait_for(first(), 60)) == [3, 5]
    b.restart(kill=True)
    assert committed(b, group, topic, [0, 1]) == [3, 5]

    async def second():
        m = Member("b", aio_consumer(b, topic, group))
        await m.start()
        try:
            # resumes exactly at the commits
            await wait_async(lambda: len(m.got) >= 12, 30, "the 12 uncommitted records")
            await asyncio.sleep(0.3)
            assert sorted(m.got) == ([(0, i, b"p0-%d" % i) for i in range(3, 10)]
                                     + [(1, i, b"p1-%d" % i) for i in range(5, 10)])
            await m.c.commit()  # the positions: 10, 10
            assert [await m.c.committed(tp) for tp in tps] == [10, 10]
            # the broker is SIGKILLed under the live member and comes back; the member reconnects,
            # keeps its partitions, gets only the new records and commits them
            m.got = []
            await asyncio.to_thread(b.restart, True)
            await asyncio.to_thread(produce_marker_per_partition, b, topic, 2, "after")
            await wait_async(lambda: len(m.got) >= 2, 40, "records produced after the restart")
            await asyncio.sleep(0.3)
            assert sorted(m.got) == [(0, 10, b"after-0"), (1, 10, b"after-1")]
            assert m.partitions() == [0, 1]
            errors = []
            for _ in range(50):  # the coordinator may still be settling right after the restart
                try:
                    await m.c.commit()
                    break
                except Exception as e:  # noqa: BLE001 - retried a bounded number of times
                    errors.append(repr(e))
                    await asyncio.sleep(0.2)
            else:
                raise AssertionError("commit after the restart kept failing: %s" % errors[-3:])
            return [await m.c.committed(tp) for tp in tps]
        finally:
            await m.stop()

    assert asyncio.run(asyncio.wait_for(second(), 90)) == [11, 11]
    assert committed(b, group, topic, [0, 1]) == [11, 11]


# ------------------------------------------------------------------ kcat -G
class KcatMember:
    """`kcat -G group topic` (librdkafka's balanced consumer) writing `partition offset value`
    lines to a file and its rebalance notices to another."""

    def __init__(self, b, group, topic, workdir, name):
        self.out_path = os.path.join(workdir, "%s.out" % name)
        self.err_path = os.path.join(workdir, "%s.err" % name)
        with open(self.out_path, "wb") as out, open(self.err_path, "wb") as err:
            self.proc = subprocess.Popen(
                ["kcat", "-b", b.bootstrap, "-G", group,
                 "-X", "auto.offset.reset=earliest", "-X", "enable.auto.commit=true",
                 "-X", "auto.commit.interval.ms=200", "-X", "session.timeout.ms=6000",
                 "-X", "heartbeat.interval.ms=300", "-X", "log.connection.close=false",
                 "-u", "-f", "%p %o %s\n", topic],  # -u: unbuffered output
                stdin=subprocess.DEVNULL, stdout=out, stderr=err)

    def records(self):
        with open(self.out_path, "rb") as f:
            return [tuple(int(x) if i < 2 else x for i, x in enumerate(line.split(b" ", 2)))
                    for line in f.read().splitlines()]

    def stderr(self):
        with open(self.err_path, "rb") as f:
            return f.read().decode("utf-8", "replace")

    def assigned(self):
        """(member id, partitions) of kcat's last 'assigned:' notice, or None."""
        last = None
        for line in self.stderr().splitlines():
            if "rebalanced (memberid " in line and "assigned:" in line:
                member = line.split("(memberid ", 1)[1].split(")", 1)[0]
                parts = sorted(int(x.split("[", 1)[1].rstrip("], ")) for x in
                               line.split("assigned:", 1)[1].split(",") if "[" in x)
                last = (member, parts)
        return last

    def stop(self, timeout=15):
        """SIGTERM: kcat closes its consumer (final commit, LeaveGroup) and exits."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
                raise AssertionError("kcat did not exit within %ss of SIGTERM:\n%s"
                                     % (timeout, self.stderr()[-3000:]))
        return self.proc.returncode


def test_two_kcat_balanced_consumers_split_and_consume_each_record_once(broker, tmp_path):
    topic = create_topic(broker, unique("kcatg"), partitions=4)
    group = unique("g")
    members = [KcatMember(broker, group, topic, str(tmp_path), "kcat%d" % i) for i in range(2)]
    try:
        def split_2_2():
            desc = described_assignment(broker, group)
            views = [m.assigned() for m in members]
            if desc is None or None in views or len(desc) != 2:
                return False
            # both kcats' own view is what the broker describes: 2 + 2, none twice
            return (all(desc.get(member) == parts for member, parts in views)
                    and sorted(len(p) for p in desc.values()) == [2, 2]
                    and sorted(p for ps in desc.values() for p in ps) == [0, 1, 2, 3])
        wait_until(split_2_2, 30, msg="two kcat -G members split 2/2: %r"
                   % [m.stderr()[-500:] for m in members])
        for p in range(4):
            produce(broker, topic, [b"p%d-%d" % (p, i) for i in range(25)], partition=p)
        wait_until(lambda: sum(len(m.records()) for m in members) >= 100, 30,
                   msg="100 records consumed by the two kcats")
        time.sleep(0.5)  # a duplicate would show up meanwhile
        views = [m.assigned() for m in members]
    finally:
        rcs = [m.stop() for m in members]
    assert rcs == [0, 0], [m.stderr()[-2000:] for m in members]
    together = []
    for m, (_member, parts) in zip(members, views):
        got = m.records()
        # each kcat read exactly its own partitions, every record once, each partition in order
        assert sorted(got) == [(p, i, b"p%d-%d" % (p, i)) for p in parts for i in range(25)], got
        for p in parts:
            assert [o for q, o, _v in got if q == p] == list(range(25))
        together += got
    assert sorted(together) == [(p, i, b"p%d-%d" % (p, i)) for p in range(4) for i in range(25)]
    # offsets were committed (auto-commit, and the final commit at close)
    assert committed(broker, group, topic, range(4)) == [25, 25, 25, 25]
    d = admin(broker).describe_consumer_groups([group])[group].result(15)
    assert d.state == ConsumerGroupState.EMPTY and not d.members
