"""The Apache Kafka reference harness itself (tests/kafkaref.py), and a small reference subset that
CI runs: the same Java client scenarios against oxka and against a real one-node Kafka 4.1.1 give
the same answers; a three-node KRaft Kafka serves a replicated topic.  About 60-90 s (two Kafka
starts on a loaded 2-core machine).  The whole suite runs against Kafka with OXKA_TARGET=kafka.
"""
import json

import pytest

import kafkaref
import kutil

pytestmark = pytest.mark.skipif(kafkaref.java_programs_skip_reason() is not None,
                                reason=kafkaref.java_programs_skip_reason() or "")


@pytest.fixture(scope="module")
def kafka1(tmp_path_factory):
    k = kafkaref.KafkaCluster(str(tmp_path_factory.mktemp("kafka1")), nodes=1,
                              overrides={"group.initial.rebalance.delay.ms": "0"})
    try:
        k.start()
        yield k
    finally:
        k.close()


def scenario(*args):
    r = kafkaref.run_java("OxkaJavaClient", [str(a) for a in args], timeout=110)
    return json.loads([l for l in r.stdout.splitlines() if l.startswith("{")][-1])


@pytest.mark.timeout(300)  # JVM start-ups on a loaded 2-core machine
def test_same_answers_as_kafka(broker, kafka1):
    """AdminClient (topics, configs and their errors, offsets, group offsets, DeleteRecords) and
    transactional commit/abort: oxka's answers equal Apache Kafka's, field by field."""
    if getattr(broker, "kind", "oxka") == "kafka":
        pytest.skip("OXKA_TARGET=kafka: the comparison needs oxka on one side")
    answers = {}
    for name, b in (("oxka", broker), ("kafka", kafka1)):
        t = kutil.create_topic(b, kutil.unique("ref"))
        answers[name] = {"admin": scenario("admin", b.bootstrap, kutil.unique("ref")),
                         "txn": scenario("transactional", b.bootstrap, t, kutil.unique("reftx"))}
    assert answers["oxka"] == answers["kafka"]


@pytest.mark.timeout(300)  # JVM start-ups on a loaded 2-core machine
def test_three_node_cluster(tmp_path):
    """Three combined broker+controller nodes: a topic with replication factor 3 over three
    leaders, acks=all produce, every broker's listener serves the metadata."""
    k = kafkaref.KafkaCluster(str(tmp_path), nodes=3, heap="320m")
    try:
        k.start()
        assert len(k.nodes) == 3 and k.alive()
        t = kutil.create_topic(k, kutil.unique("rf3"), partitions=3, rf=3)
        md = kutil.admin(k).list_topics(t, timeout=10)
        assert sorted(md.brokers) == [1, 2, 3]
        parts = md.topics[t].partitions
        assert sorted(p.leader for p in parts.values()) == [1, 2, 3]
        assert all(sorted(p.replicas) == [1, 2, 3] and sorted(p.isrs) == [1, 2, 3]
                   for p in parts.values())
        kutil.produce(k, t, [b"v%d" % i for i in range(10)], partition=1, acks="all")
        got = kutil.consume(k, t, 10, partition=1)
        assert [m.value() for m in got] == [b"v%d" % i for i in range(10)]
    finally:
        kutil.forget(k)
        k.close()
