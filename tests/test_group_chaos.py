"""A bounded consumer-group chaos test: consumers (child processes) join, leave and are
SIGKILLed at seeded-random moments while a producer writes numbered records.  At the end every
record was consumed at least once by the group, and the group's committed offsets never moved
backwards.  Run with the classic protocol (range or cooperative-sticky, picked by the seed) and
with the KIP-848 consumer protocol."""
import os
import random
import signal
import subprocess
import sys
import textwrap
import threading
import time

import pytest
from confluent_kafka import TopicPartition
from confluent_kafka import ConsumerGroupTopicPartitions

from kutil import admin, create_topic, producer, unique, wait_until

BROKER_OVERRIDES = {"group.initial.rebalance.delay.ms": "0",
                    "group.consumer.session.timeout.ms": "6000",
                    "group.consumer.heartbeat.interval.ms": "300"}

PARTITIONS = 4
RECORDS = 3000

CHILD = textwrap.dedent("""
    import signal, sys, time
    from confluent_kafka import Consumer
    bootstrap, group, topic = sys.argv[1:4]
    stop = []
    signal.signal(signal.SIGTERM, lambda *a: stop.append(1))
    conf = {"bootstrap.servers": bootstrap, "group.id": group,
            "auto.offset.reset": "earliest", "enable.auto.commit": False}
    if sys.argv[4] == "consumer":  # KIP-848: the broker sets the timeouts and assigns
        conf["group.protocol"] = "consumer"
    else:
        conf.update({"session.timeout.ms": 6000, "heartbeat.interval.ms": 300,
                     "partition.assignment.strategy": sys.argv[4]})
    c = Consumer(conf)
    def on_revoke(consumer, partitions):
        try:
            consumer.commit(asynchronous=False)
        except Exception:
            pass
    c.subscribe([topic], on_revoke=on_revoke)
    deadline = time.monotonic() + 120
    n = 0
    while not stop and time.monotonic() < deadline:
        m = c.poll(0.1)
        if m is None or m.error():
            continue
        print("M", m.value().decode(), flush=True)
        n += 1
        if n % 25 == 0:
            try:
                c.commit(asynchronous=False)
            except Exception:
                pass
    try:
        c.commit(asynchronous=False)
    except Exception:
        pass
    c.close()
""")


class Child:
    def __init__(self, b, group, topic, strategy, log_dir, i):
        self.out_path = os.path.join(log_dir, "chaos-child-%d.out" % i)
        self.out = open(self.out_path, "wb")
        self.proc = subprocess.Popen([sys.executable, "-c", CHILD, b.bootstrap, group, topic,
                                      strategy], stdout=self.out, stderr=subprocess.DEVNULL)

    def values(self):
        self.out.flush()
        with open(self.out_path, "rb") as f:
            return {int(line.split()[1]) for line in f.read().decode().splitlines()
                    if line.startswith("M ")}

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)

    def kill(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(5)


def committed_offsets(b, group, topic):
    res = admin(b).list_consumer_group_offsets([ConsumerGroupTopicPartitions(
        group, [TopicPartition(topic, p) for p in range(PARTITIONS)])])
    return [tp.offset for tp in res[group].result(15).topic_partitions]


@pytest.mark.parametrize("protocol", ["classic", "consumer"])
def test_group_chaos(broker, tmp_path, protocol):
    rng = random.Random(int(os.environ.get("OXKA_CHAOS_SEED", "848")))
    topic = create_topic(broker, unique("chaos"), partitions=PARTITIONS)
    group = unique("g")
    strategy = rng.choice(["range", "cooperative-sticky"]) if protocol == "classic" else "consumer"

    produced = threading.Event()
    def produce_all():
        p = producer(broker)
        for i in range(RECORDS):
            p.produce(topic, value=b"%d" % i, partition=i % PARTITIONS)
            if i % 100 == 0:
                p.poll(0)
                time.sleep(0.05)
        assert p.flush(30) == 0
        produced.set()
    writer = threading.Thread(target=produce_all, daemon=True)

    history = []
    regressions = []
    watching = threading.Event()
    def watch():
        last = [-1001] * PARTITIONS
        while not watching.is_set():
            try:
                now = committed_offsets(broker, group, topic)
            except Exception:  # noqa: BLE001 - a failed sample is not a regression
                time.sleep(0.1)
                continue
            history.append(now)
            for p in range(PARTITIONS):
                if now[p] >= 0 and last[p] >= 0 and now[p] < last[p]:
                    regressions.append((p, last[p], now[p]))
                last[p] = max(last[p], now[p])
            time.sleep(0.1)
    watcher = threading.Thread(target=watch, daemon=True)

    children = []
    finished = []
    try:
        writer.start()
        watcher.start()
        for i in range(2):
            children.append(Child(broker, group, topic, strategy, str(tmp_path), len(children)
                                  + len(finished)))
        for step in range(10):
            time.sleep(rng.uniform(0.8, 2.0))
            action = rng.choice(["join", "join", "leave", "kill"])
            if action == "join" and len(children) < 4 or len(children) < 2:
                children.append(Child(broker, group, topic, strategy, str(tmp_path),
                                      len(children) + len(finished)))
            elif action == "leave":
                c = children.pop(rng.randrange(len(children)))
                c.stop()
                finished.append(c)
            else:
                c = children.pop(rng.randrange(len(children)))
                c.kill()
                finished.append(c)
        assert produced.wait(60), "producer did not finish"
        # the survivors drain the topic: committed offsets reach the end of every partition
        wait_until(lambda: committed_offsets(broker, group, topic)
                   == [RECORDS // PARTITIONS] * PARTITIONS, 60, interval=0.5,
                   msg="group committed every record")
    finally:
        for c in children:
            c.stop()
        for c in children + finished:
            c.kill()
        watching.set()
        watcher.join(10)
    seen = set()
    for c in children + finished:
        seen |= c.values()
    missing = sorted(set(range(RECORDS)) - seen)
    assert not missing, "records never consumed: %d (first %r)" % (len(missing), missing[:10])
    assert not regressions, "committed offsets moved backwards: %r" % regressions[:5]
    assert len(history) > 10
