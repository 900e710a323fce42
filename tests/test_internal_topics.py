"""Lazily created internal topics (issue 11): `__consumer_offsets` and `__transaction_state` do
not exist on a fresh broker; the first FindCoordinator for a group (resp. a transactional id)
creates the one it needs, as Kafka does, and a broker restarted on a data dir that has them
loads them at start-up.
"""
import os

from confluent_kafka import Consumer, Producer, TopicPartition

from kutil import admin, create_topic, produce, unique, wait_until

OFFSETS = "__consumer_offsets"
TXN = "__transaction_state"


def topics_of(b):
    a = admin(b)
    return set(a.list_topics(timeout=10).topics)


def dirs_of(b, topic):
    return sorted(d for d in os.listdir(b.data_dir) if d.startswith(topic + "-"))


def test_fresh_broker_has_no_internal_topics(make_broker):
    b = make_broker()
    t = unique("plain")
    create_topic(b, t, partitions=2)
    produce(b, t, [b"a", b"b"])
    names = topics_of(b)
    assert t in names
    assert OFFSETS not in names and TXN not in names
    assert dirs_of(b, OFFSETS) == [] and dirs_of(b, TXN) == []


def test_group_creates_offsets_topic_and_survives_restart(make_broker):
    b = make_broker()
    t = unique("g-topic")
    create_topic(b, t, partitions=1)
    produce(b, t, [b"m%d" % i for i in range(5)])
    group = unique("grp")
    c = Consumer({"bootstrap.servers": b.bootstrap, "group.id": group,
                  "auto.offset.reset": "earliest", "enable.auto.commit": False})
    try:
        c.subscribe([t])
        got = []
        for _ in range(60):
            m = c.poll(0.5)
            if m is not None and not m.error():
                got.append(m.value())
            if len(got) == 5:
                break
        assert got == [b"m%d" % i for i in range(5)]
        committed = c.commit(asynchronous=False)
        assert committed[0].offset == 5
    finally:
        c.close()
    meta = admin(b).list_topics(timeout=10).topics
    # offsets.topic.num.partitions defaults to 50, as in Kafka; no transaction state yet.
    assert len(meta[OFFSETS].partitions) == 50
    assert TXN not in meta
    assert len(dirs_of(b, OFFSETS)) == 50

    # The data dir now has the topic: a restart loads it and the commit is still there.
    b.restart()
    c = Consumer({"bootstrap.servers": b.bootstrap, "group.id": group})
    try:
        tp = c.committed([TopicPartition(t, 0)], timeout=20)[0]
        assert tp.offset == 5
    finally:
        c.close()
    assert TXN not in topics_of(b)


def test_kafka_python_group_offsets_on_fresh_broker(make_broker):
    """kafka-python's coordinator lookup retries COORDINATOR_NOT_AVAILABLE; the first lookup
    creates the topic and it gets the coordinator."""
    from kafka import KafkaConsumer, TopicPartition as KTP
    from kafka.structs import OffsetAndMetadata
    b = make_broker()
    t = unique("kp-topic")
    create_topic(b, t, partitions=1)
    group = unique("kp-grp")
    c = KafkaConsumer(bootstrap_servers=b.bootstrap, group_id=group, enable_auto_commit=False,
                      request_timeout_ms=15000)
    try:
        tp = KTP(t, 0)
        c.assign([tp])
        c.commit({tp: OffsetAndMetadata(3, "", -1)})
        assert c.committed(tp) == 3
    finally:
        c.close()
    assert OFFSETS in topics_of(b)


def test_transactional_producer_creates_txn_topic(make_broker):
    b = make_broker()
    t = unique("txn-topic")
    create_topic(b, t, partitions=1)
    p = Producer({"bootstrap.servers": b.bootstrap, "transactional.id": unique("tid")})
    p.init_transactions(30)
    p.begin_transaction()
    p.produce(t, b"in-txn", partition=0)
    p.commit_transaction(30)
    meta = admin(b).list_topics(timeout=10).topics
    assert len(meta[TXN].partitions) == 50
    assert len(dirs_of(b, TXN)) == 50
    c = Consumer({"bootstrap.servers": b.bootstrap, "group.id": unique("r"),
                  "isolation.level": "read_committed", "auto.offset.reset": "earliest"})
    try:
        c.assign([TopicPartition(t, 0, 0)])
        got = None
        for _ in range(40):
            m = c.poll(0.5)
            if m is not None and not m.error():
                got = m
                break
        assert got is not None and got.value() == b"in-txn" and got.offset() == 0
    finally:
        c.close()
    # Reading with a group created __consumer_offsets too.
    wait_until(lambda: OFFSETS in topics_of(b), timeout=10, msg="offsets topic")
