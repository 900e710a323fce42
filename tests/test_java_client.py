"""The Java client (org.apache.kafka:kafka-clients, pinned in tests/java/pom.xml) against the
broker: idempotent and transactional producers, a classic and a `group.protocol=consumer` group,
AdminClient.  The scenarios are tests/java/src/OxkaJavaClient.java (compiled by
tests/setup.d/20-java.sh); each prints one JSON object that these tests assert on.  Under
OXKA_TARGET=kafka the same assertions run against Apache Kafka.
"""
import json

import pytest

import kafkaref
import kutil

pytestmark = pytest.mark.skipif(kafkaref.java_programs_skip_reason() is not None,
                                reason=kafkaref.java_programs_skip_reason() or "")

BROKER_OVERRIDES = {"group.initial.rebalance.delay.ms": "0"}


def scenario(*args, timeout=110):
    r = kafkaref.run_java("OxkaJavaClient", [str(a) for a in args], timeout=timeout)
    lines = [l for l in r.stdout.splitlines() if l.startswith("{")]
    assert lines, "no JSON result:\nstdout=%s\nstderr=%s" % (r.stdout, r.stderr[-4000:])
    return json.loads(lines[-1])


def test_idempotent_producer(broker):
    t = kutil.create_topic(broker, kutil.unique("jidem"))
    out = scenario("idempotent", broker.bootstrap, t, 200)
    assert out["offsets"] == list(range(200))
    assert [(r["offset"], r["key"], r["value"]) for r in out["records"]] == \
        [(i, "k-%d" % i, "v-%d" % i) for i in range(200)]
    # a third-party reader sees the same log
    got = kutil.consume(broker, t, 200)
    assert [m.value() for m in got] == [b"v-%d" % i for i in range(200)]


def test_transactional_producer_commit_and_abort(broker):
    t = kutil.create_topic(broker, kutil.unique("jtxn"))
    out = scenario("transactional", broker.bootstrap, t, kutil.unique("jtx"))
    committed = [r["value"] for r in out["read_committed"]]
    assert committed == ["committed-0", "committed-1", "committed-2", "committed-3"]
    # read_uncommitted sees the aborted records too; control batches take offsets 3, 6 and 8
    uncommitted = [(r["offset"], r["value"]) for r in out["read_uncommitted"]]
    assert uncommitted == [(0, "committed-0"), (1, "committed-1"), (2, "committed-2"),
                           (4, "aborted-0"), (5, "aborted-1"), (7, "committed-3")]
    assert out["latest_committed"] == 9
    assert out["latest_uncommitted"] == 9
    # librdkafka read_committed agrees
    c = kutil.consumer(broker, **{"isolation.level": "read_committed"})
    try:
        from confluent_kafka import TopicPartition
        c.assign([TopicPartition(t, 0, 0)])
        vals = []
        for _ in range(60):
            for m in c.consume(10, 0.5):
                assert m.error() is None
                vals.append(m.value())
            if len(vals) >= 4:
                break
        assert vals == [b"committed-0", b"committed-1", b"committed-2", b"committed-3"]
    finally:
        c.close()


@pytest.mark.parametrize("protocol", ["classic", "consumer"])
def test_consumer_group(broker, protocol):
    t = kutil.create_topic(broker, kutil.unique("jgrp"), partitions=4)
    g = kutil.unique("jg")
    out = scenario("group", broker.bootstrap, t, g, protocol, 20)
    a0, a1 = (m["assignment"] for m in out["members"])
    assert a0 and a1 and not set(a0) & set(a1) and sorted(a0 + a1) == [0, 1, 2, 3]
    seen = sorted(r for m in out["members"] for r in m["records"])
    assert seen == sorted("%d:%d:p%d-%d" % (p, i, p, i) for p in range(4) for i in range(5))
    # the members joined before the records were produced: each read only its own partitions
    for m in out["members"]:
        assert {int(r.split(":")[0]) for r in m["records"]} <= set(m["assignment"])
    assert out["committed"] == {str(p): 5 for p in range(4)}
    assert out["group_type"].upper() == protocol.upper()
    assert out["group_state"].upper() == "EMPTY"
    # a third-party admin sees the same commits
    from confluent_kafka import ConsumerGroupTopicPartitions
    res = kutil.admin(broker).list_consumer_group_offsets(
        [ConsumerGroupTopicPartitions(g)])[g].result(15)
    assert sorted((tp.partition, tp.offset) for tp in res.topic_partitions) == \
        [(p, 5) for p in range(4)]


def test_admin_client(broker):
    prefix = kutil.unique("jadm")
    out = scenario("admin", broker.bootstrap, prefix)
    assert out["create_again"] == "TopicExistsException"
    assert out["create_zero_partitions"] == "InvalidPartitionsException"
    assert out["listed"] is True
    assert out["partitions"] == 3
    assert out["partitions_after_increase"] == 4
    assert out["retention_ms"] == "3600000"
    assert out["retention_ms_source"] == "DYNAMIC_TOPIC_CONFIG"
    assert out["segment_bytes_source"] == "DEFAULT_CONFIG"
    assert out["retention_ms_after"] == "7200000"
    assert out["cleanup_policy_after"] == "compact"
    assert out["alter_bad_value"] == "InvalidConfigurationException"
    assert (out["earliest"], out["latest"], out["max_timestamp_offset"]) == (0, 5, 2)
    assert (out["group_offset"], out["group_metadata"]) == (3, "meta")
    assert out["group_listed"] is True
    assert (out["group_state"].upper(), out["group_members"]) == ("EMPTY", 0)
    assert out["group_offsets_after_delete"] == 0
    assert out["delete_records_compacted"] == "PolicyViolationException"
    assert out["earliest_after_delete_records"] == 2
    assert out["cluster_nodes"] == 1
    assert out["describe_after_delete"] == "UnknownTopicOrPartitionException"
    assert out["delete_unknown"] == "UnknownTopicOrPartitionException"
