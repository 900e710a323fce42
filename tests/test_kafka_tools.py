"""Apache Kafka's own command-line tools (the kafka-tools and kafka_2.13 jars of
tests/java/pom.xml, run by main class as the bin/*.sh scripts do) against the broker, with their
output asserted: kafka-topics, kafka-console-producer/-consumer, kafka-consumer-groups (describe
with lag, reset offsets), kafka-configs, kafka-broker-api-versions and the two perf tools.
Under OXKA_TARGET=kafka the same assertions run against Apache Kafka.
"""
import re

import pytest
from confluent_kafka import TopicPartition

import kafkaref
import kutil
import kwire

pytestmark = pytest.mark.skipif(kafkaref.java_skip_reason() is not None,
                                reason=kafkaref.java_skip_reason() or "")

BROKER_OVERRIDES = {"group.initial.rebalance.delay.ms": "0"}

TOPICS = "org.apache.kafka.tools.TopicCommand"
CONSOLE_PRODUCER = "org.apache.kafka.tools.ConsoleProducer"
CONSOLE_CONSUMER = "org.apache.kafka.tools.consumer.ConsoleConsumer"
GROUPS = "org.apache.kafka.tools.consumer.group.ConsumerGroupCommand"
CONFIGS = "kafka.admin.ConfigCommand"
API_VERSIONS = "org.apache.kafka.tools.BrokerApiVersionsCommand"
PRODUCER_PERF = "org.apache.kafka.tools.ProducerPerformance"
CONSUMER_PERF = "org.apache.kafka.tools.ConsumerPerformance"


def tool(main, *args, input=None, timeout=90):
    return kafkaref.run_java(main, [str(a) for a in args], input=input, timeout=timeout).stdout


def test_kafka_topics(broker):
    t = kutil.unique("cli")
    bs = ["--bootstrap-server", broker.bootstrap]
    out = tool(TOPICS, *bs, "--create", "--topic", t, "--partitions", 3,
               "--replication-factor", 1, "--config", "retention.ms=123456")
    assert "Created topic %s." % t in out
    kutil.wait_until(lambda: t in tool(TOPICS, *bs, "--list").split(), 20, 0.5, "topic listed")
    desc = tool(TOPICS, *bs, "--describe", "--topic", t)
    head = [l for l in desc.splitlines() if l.startswith("Topic: %s\t" % t)]
    assert head and "PartitionCount: 3" in head[0] and "ReplicationFactor: 1" in head[0]
    assert "retention.ms=123456" in head[0]
    parts = re.findall(r"Partition: (\d+)\tLeader: (\d+)\tReplicas: (\d+)\tIsr: (\d+)", desc)
    assert sorted(int(p[0]) for p in parts) == [0, 1, 2]
    assert all(p[1] == p[2] == p[3] for p in parts)
    # creating it again fails with Kafka's message
    r = kafkaref.run_java(TOPICS, bs + ["--create", "--topic", t, "--partitions", "1"], check=False)
    assert r.returncode != 0 and "already exists" in (r.stdout + r.stderr)
    tool(TOPICS, *bs, "--alter", "--topic", t, "--partitions", 5)
    kutil.wait_until(lambda: "PartitionCount: 5" in tool(TOPICS, *bs, "--describe", "--topic", t),
                     20, 0.5, "5 partitions")
    tool(TOPICS, *bs, "--delete", "--topic", t)
    kutil.wait_until(lambda: t not in tool(TOPICS, *bs, "--list").split(), 20, 0.5, "topic gone")


def test_console_producer_and_consumer(broker):
    t = kutil.create_topic(broker, kutil.unique("cli"))
    lines = "".join("k%d:value %d\n" % (i, i) for i in range(5))
    tool(CONSOLE_PRODUCER, "--bootstrap-server", broker.bootstrap, "--topic", t,
         "--property", "parse.key=true", "--property", "key.separator=:",
         "--producer-property", "acks=all", input=lines)
    got = kutil.consume(broker, t, 5)
    assert [(m.key(), m.value(), m.offset()) for m in got] == \
        [(b"k%d" % i, b"value %d" % i, i) for i in range(5)]
    out = tool(CONSOLE_CONSUMER, "--bootstrap-server", broker.bootstrap, "--topic", t,
               "--from-beginning", "--max-messages", 5, "--timeout-ms", 30000,
               "--property", "print.key=true", "--property", "print.offset=true",
               "--group", kutil.unique("cg"))
    recs = [l for l in out.splitlines() if l.startswith("Offset:")]
    assert recs == ["Offset:%d\tk%d\tvalue %d" % (i, i, i) for i in range(5)]


def commit(broker, group, topic, offsets):
    c = kutil.consumer(broker, **{"group.id": group})
    try:
        c.commit(offsets=[TopicPartition(topic, p, o) for p, o in offsets.items()], asynchronous=False)
    finally:
        c.close()


def describe_group(broker, group):
    """kafka-consumer-groups --describe: {partition: (current, log_end, lag)}."""
    r = kafkaref.run_java(GROUPS, ["--bootstrap-server", broker.bootstrap, "--describe", "--group", group])
    out = r.stdout + r.stderr
    rows = {}
    for line in out.splitlines():
        f = line.split()
        if len(f) >= 6 and f[0] == group:
            rows[int(f[2])] = (int(f[3]), int(f[4]), int(f[5]))
    return out, rows


@pytest.mark.timeout(300)  # JVM start-ups on a loaded 2-core machine
def test_consumer_groups_describe_lag_and_reset(broker):
    t = kutil.create_topic(broker, kutil.unique("cli"), partitions=2)
    kutil.produce(broker, t, [b"a%d" % i for i in range(10)], partition=0)
    kutil.produce(broker, t, [b"b%d" % i for i in range(6)], partition=1)
    g = kutil.unique("cg")
    commit(broker, g, t, {0: 3, 1: 6})
    assert g in tool(GROUPS, "--bootstrap-server", broker.bootstrap, "--list").split()
    out, rows = describe_group(broker, g)
    assert rows == {0: (3, 10, 7), 1: (6, 6, 0)}, out
    assert "has no active members" in out
    # a dry run changes nothing
    plan = tool(GROUPS, "--bootstrap-server", broker.bootstrap, "--reset-offsets", "--group", g,
                "--topic", t, "--to-earliest", "--dry-run")
    assert re.search(r"%s\s+0\s+0" % re.escape(t), plan), plan
    assert describe_group(broker, g)[1] == {0: (3, 10, 7), 1: (6, 6, 0)}
    tool(GROUPS, "--bootstrap-server", broker.bootstrap, "--reset-offsets", "--group", g,
         "--topic", t, "--to-earliest", "--execute")
    assert describe_group(broker, g)[1] == {0: (0, 10, 10), 1: (0, 6, 6)}
    tool(GROUPS, "--bootstrap-server", broker.bootstrap, "--reset-offsets", "--group", g,
         "--topic", "%s:0" % t, "--to-offset", 8, "--execute")
    tool(GROUPS, "--bootstrap-server", broker.bootstrap, "--reset-offsets", "--group", g,
         "--topic", "%s:1" % t, "--shift-by", 4, "--execute")
    assert describe_group(broker, g)[1] == {0: (8, 10, 2), 1: (4, 6, 2)}
    # a third-party client reads the committed offsets the tool wrote
    c = kutil.consumer(broker, **{"group.id": g})
    try:
        got = c.committed([TopicPartition(t, 0), TopicPartition(t, 1)], timeout=15)
        assert [(tp.partition, tp.offset) for tp in got] == [(0, 8), (1, 4)]
    finally:
        c.close()
    tool(GROUPS, "--bootstrap-server", broker.bootstrap, "--delete", "--group", g)
    assert g not in tool(GROUPS, "--bootstrap-server", broker.bootstrap, "--list").split()


def test_kafka_configs(broker):
    t = kutil.create_topic(broker, kutil.unique("cli"))
    bs = ["--bootstrap-server", broker.bootstrap]
    out = tool(CONFIGS, *bs, "--alter", "--entity-type", "topics", "--entity-name", t,
               "--add-config", "retention.ms=7654321,max.message.bytes=200000")
    assert "Completed updating config for topic %s." % t in out

    def described():
        d = tool(CONFIGS, *bs, "--describe", "--entity-type", "topics", "--entity-name", t)
        return d if "retention.ms=7654321" in d else None
    d = kutil.wait_until(described, 20, 0.5, "altered config described")
    assert "Dynamic configs for topic %s are:" % t in d
    assert re.search(r"retention\.ms=7654321 sensitive=false synonyms=\{DYNAMIC_TOPIC_CONFIG:retention\.ms=7654321", d), d
    assert "max.message.bytes=200000" in d
    tool(CONFIGS, *bs, "--alter", "--entity-type", "topics", "--entity-name", t,
         "--delete-config", "retention.ms")
    kutil.wait_until(lambda: "retention.ms=" not in tool(
        CONFIGS, *bs, "--describe", "--entity-type", "topics", "--entity-name", t), 20, 0.5,
        "retention.ms deleted")
    # an invalid value is refused with the broker's error
    r = kafkaref.run_java(CONFIGS, bs + ["--alter", "--entity-type", "topics", "--entity-name", t,
                                         "--add-config", "retention.ms=soon"], check=False)
    assert r.returncode != 0 and "InvalidConfigurationException" in (r.stdout + r.stderr)
    # the broker's static config, with --all
    b = tool(CONFIGS, *bs, "--describe", "--entity-type", "brokers", "--entity-name", 1, "--all")
    assert re.search(r"^\s*num\.partitions=1 sensitive=false synonyms=\{DEFAULT_CONFIG:num\.partitions=1\}", b, re.M), b


def test_broker_api_versions(broker):
    out = tool(API_VERSIONS, "--bootstrap-server", broker.bootstrap)
    listed = {}
    for m in re.finditer(r"^\s*(\w+)\((\d+)\): (\d+) to (\d+) \[usable: (\d+)\]", out, re.M):
        listed[int(m.group(2))] = (int(m.group(3)), int(m.group(4)), int(m.group(5)))
    # the broker's own ApiVersions answer (kafka-python over a socket) is what the tool lists
    s = kwire.connect(broker)
    try:
        r = kwire.request(s, kwire.ApiVersionsRequest, 3, client_software_name="oxka-tests",
                          client_software_version="1")
    finally:
        s.close()
    served = {k.api_key: (k.min_version, k.max_version) for k in r.api_keys}
    usable = {k: v[:2] for k, v in listed.items()}
    assert {k: v for k, v in served.items() if k in usable} == usable
    # the APIs every client needs are there and usable by this 4.x client at their maximum
    for key in (0, 1, 2, 3, 8, 9, 10, 11, 12, 13, 14, 18, 19, 20, 22):
        assert key in listed, (key, out)
        assert listed[key][2] == listed[key][1], (key, listed[key])


@pytest.mark.timeout(300)  # JVM start-ups on a loaded 2-core machine
def test_perf_tools(broker):
    t = kutil.create_topic(broker, kutil.unique("cli"), partitions=2)
    n = 20000
    out = tool(PRODUCER_PERF, "--topic", t, "--num-records", n, "--record-size", 100,
               "--throughput", -1, "--producer-props", "bootstrap.servers=%s" % broker.bootstrap,
               "acks=all", "linger.ms=5", timeout=120)
    m = re.search(r"^(\d+) records sent, [\d.]+ records/sec .*, ([\d.]+) ms avg latency, "
                  r"([\d.]+) ms max latency, (\d+) ms 50th, (\d+) ms 95th, (\d+) ms 99th", out, re.M)
    assert m, out
    assert int(m.group(1)) == n
    low0, high0 = kutil.watermarks(broker, t, 0)
    low1, high1 = kutil.watermarks(broker, t, 1)
    assert (high0 - low0) + (high1 - low1) == n
    out = tool(CONSUMER_PERF, "--bootstrap-server", broker.bootstrap, "--topic", t,
               "--messages", n, "--timeout", 60000, "--group", kutil.unique("perf"), timeout=120)
    lines = [l for l in out.splitlines() if l.strip()]
    header = [h.strip() for h in lines[-2].split(",")]
    values = [v.strip() for v in lines[-1].split(",")]
    row = dict(zip(header, values))
    assert int(row["data.consumed.in.nMsg"]) == n, out
    assert float(row["data.consumed.in.MB"]) == pytest.approx(n * 100 / (1024 * 1024), rel=1e-3)
