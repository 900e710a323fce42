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
