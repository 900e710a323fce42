"""Issue 2 point 3: topic administration with confluent-kafka AdminClient, kafka-python admin and
raw protocol requests, with Kafka's error codes."""
import pytest
from confluent_kafka import KafkaError, KafkaException, TopicPartition
from confluent_kafka.admin import (AlterConfigOpType, ConfigEntry, ConfigResource, ConfigSource,
                                   NewPartitions, NewTopic)

import kwire
from kutil import (admin, consume, create_topic, err_code, kp_admin, produce, unique, wait_until,
                   watermarks)

TOPIC_CONFIGS = {
    "retention.ms": "3600000",
    "retention.bytes": "10485760",
    "segment.bytes": "1048576",
    "segment.ms": "600000",
    "cleanup.policy": "delete",
    "max.message.bytes": "500000",
    "message.timestamp.type": "LogAppendTime",
}


def create_err(b, topic, timeout=15, validate_only=False):
    a = admin(b)
    fs = a.create_topics([topic], request_timeout=timeout, validate_only=validate_only)
    with pytest.raises(KafkaException) as ei:
        fs[topic.topic].result(timeout)
    return err_code(ei.value)


def describe_topic_configs(b, topic):
    a = admin(b)
    res = ConfigResource(ConfigResource.Type.TOPIC, topic)
    return a.describe_configs([res], request_timeout=15)[res].result(15)


# ------------------------------------------------------------------ create
def test_create_with_partitions_and_configs(broker):
    t = unique("adm")
    create_topic(broker, t, partitions=3, config=TOPIC_CONFIGS)
    md = admin(broker).list_topics(timeout=10)
    assert t in md.topics
    assert sorted(md.topics[t].partitions) == [0, 1, 2]
    for p in md.topics[t].partitions.values():
        assert p.leader == 1 and p.replicas == [1] and p.isrs == [1]
    cfg = describe_topic_configs(broker, t)
    for k, v in TOPIC_CONFIGS.items():
        assert cfg[k].value == v, (k, cfg[k].value)
        assert cfg[k].source == ConfigSource.DYNAMIC_TOPIC_CONFIG.value, (k, cfg[k].source)


def test_create_default_partitions(broker):
    t = unique("adm")
    a = admin(broker)
    a.create_topics([NewTopic(t)])[t].result(15)  # num_partitions=-1 → broker default num.partitions=1
    # (Apache Kafka answers CreateTopics before its metadata cache lists the topic: wait for it)
    md = wait_until(lambda: (lambda m: m if m is not None and m.error is None else None)(
        a.list_topics(t, timeout=5).topics.get(t)), msg="topic")
    assert len(md.partitions) == 1


def test_topic_already_exists(broker):
    t = create_topic(broker, unique("adm"))
    assert create_err(broker, NewTopic(t, 1, 1)) == KafkaError.TOPIC_ALREADY_EXISTS


@pytest.mark.parametrize("name", ["a b", "..", ".", "x" * 250, "bad/name", "tab\tname", "ümlaut"])
def test_invalid_topic_name(broker, name):
    assert create_err(broker, NewTopic(name, 1, 1)) == KafkaError.TOPIC_EXCEPTION


def test_topic_name_249_chars_ok(broker):
    t = ("n%s" % unique("")).ljust(249, "x")
    create_topic(broker, t)


def raw_create(b, topics, version=4, validate_only=False):
    from kafka.protocol.admin.topics import CreateTopicsRequest
    CT = CreateTopicsRequest.CreatableTopic
    s = kwire.connect(b)
    try:
        r = kwire.request(s, CreateTopicsRequest, version, topics=[
            CT(name=n, num_partitions=p, replication_factor=rf, assignments=[],
               configs=[CT.CreatableTopicConfig(name=k, value=v) for k, v in (cfg or {}).items()])
            for (n, p, rf, cfg) in topics], timeout_ms=10000, validate_only=validate_only)
        return {t.name: t.error_code for t in r.topics}
    finally:
        s.close()


@pytest.mark.parametrize("parts", [0, -2])
def test_invalid_partitions_raw(broker, parts):
    t = unique("adm")
    assert raw_create(broker, [(t, parts, 1, None)]) == {t: KafkaError.INVALID_PARTITIONS}


@pytest.mark.parametrize("rf", [3, 0, -2])
def test_invalid_replication_factor(broker, rf):
    t = unique("adm")
    assert raw_create(broker, [(t, 1, rf, None)]) == {t: KafkaError.INVALID_REPLICATION_FACTOR}


def test_invalid_replication_factor_confluent(broker):
    assert create_err(broker, NewTopic(unique("adm"), 1, 3)) == KafkaError.INVALID_REPLICATION_FACTOR


@pytest.mark.parametrize("cfg", [
    {"retention.ms": "abc"},
    {"segment.bytes": "-5"},
    {"cleanup.policy": "bogus"},
    {"message.timestamp.type": "WallClock"},
    {"max.message.bytes": "x1"},
    {"no.such.topic.config": "1"},
])
def test_invalid_config(broker, cfg):
    t = unique("adm")
    assert create_err(broker, NewTopic(t, 1, 1, config=cfg)) == KafkaError.INVALID_CONFIG
    # nothing was created
    assert t not in admin(broker).list_topics(timeout=10).topics


def test_create_batch_mixed_results_raw(broker):
    ok, dup = unique("adm"), create_topic(broker, unique("adm"))
    res = raw_create(broker, [(ok, 2, 1, None), (dup, 1, 1, None), ("a b", 1, 1, None)])
    assert res == {ok: 0, dup: KafkaError.TOPIC_ALREADY_EXISTS, "a b": KafkaError.TOPIC_EXCEPTION}


def test_validate_only(broker):
    t = unique("adm")
    a = admin(broker)
    a.create_topics([NewTopic(t, 2, 1)], validate_only=True)[t].result(15)
    assert t not in a.list_topics(timeout=10).topics
    assert raw_create(broker, [(t, 2, 1, None)], validate_only=True) == {t: 0}
    assert t not in a.list_topics(timeout=10).topics
    # validate_only still reports errors
    assert create_err(broker, NewTopic(t, 1, 3), validate_only=True) == KafkaError.INVALID_REPLICATION_FACTOR


# ------------------------------------------------------------------ list / describe
def test_list_and_describe_topics(broker):
    t1 = create_topic(broker, unique("adm"), partitions=2)
    t2 = create_topic(broker, unique("adm"), partitions=1)
    a = admin(broker)
    md = a.list_topics(timeout=10)
    assert {t1, t2} <= set(md.topics)
    from confluent_kafka import TopicCollection
    d = a.describe_topics(TopicCollection([t1]), request_timeout=15)[t1].result(15)
    assert d.name == t1
    assert [p.id for p in d.partitions] == [0, 1]
    assert all(p.leader.id == 1 for p in d.partitions)


def test_describe_missing_topic(broker):
    from confluent_kafka import TopicCollection
    t = unique("missing")
    fs = admin(broker).describe_topics(TopicCollection([t]), request_timeout=15)
    with pytest.raises(KafkaException) as ei:
        fs[t].result(15)
    assert err_code(ei.value) == KafkaError.UNKNOWN_TOPIC_OR_PART


def test_metadata_missing_topic_raw(broker):
    """Metadata v4+ with allow_auto_topic_creation=false for a missing topic → UNKNOWN_TOPIC_OR_PARTITION."""
    from kafka.protocol.metadata import MetadataRequest
    t = unique("missing")
    s = kwire.connect(broker)
    try:
        r = kwire.request(s, MetadataRequest, 9, topics=[MetadataRequest.MetadataRequestTopic(name=t)],
                          allow_auto_topic_creation=False, include_topic_authorized_operations=False)
        assert [(x.name, x.error_code) for x in r.topics] == [(t, KafkaError.UNKNOWN_TOPIC_OR_PART)]
        r = kwire.request(s, MetadataRequest, 9, corr=2, topics=[MetadataRequest.MetadataRequestTopic(name="a b")],
                          allow_auto_topic_creation=True, include_topic_authorized_operations=False)
        assert [(x.name, x.error_code) for x in r.topics] == [("a b", KafkaError.TOPIC_EXCEPTION)]
    finally:
        s.close()


# ------------------------------------------------------------------ describe configs
def test_describe_configs_sources(broker):
    t = create_topic(broker, unique("adm"), config={"retention.ms": "123456"})
    cfg = describe_topic_configs(broker, t)
    assert cfg["retention.ms"].value == "123456"
    assert cfg["retention.ms"].source == ConfigSource.DYNAMIC_TOPIC_CONFIG.value
    expected_defaults = {
        "cleanup.policy": "delete",
        "max.message.bytes": "1048588",
        "message.timestamp.type": "CreateTime",
        "segment.bytes": "1073741824",
        "retention.bytes": "-1",
    }
    for k, v in expected_defaults.items():
        assert k in cfg, "describe_configs lacks %s" % k
        assert cfg[k].value == v, (k, cfg[k].value)
        assert cfg[k].source == ConfigSource.DEFAULT_CONFIG.value, (k, cfg[k].source)
        assert cfg[k].is_default


def test_describe_configs_missing_topic(broker):
    a = admin(broker)
    res = ConfigResource(ConfigResource.Type.TOPIC, unique("missing"))
    with pytest.raises(KafkaException) as ei:
        a.describe_configs([res], request_timeout=15)[res].result(15)
    assert err_code(ei.value) == KafkaError.UNKNOWN_TOPIC_OR_PART


def test_describe_broker_configs(broker):
    a = admin(broker)
    res = ConfigResource(ConfigResource.Type.BROKER, "1")
    cfg = a.describe_configs([res], request_timeout=15)[res].result(15)
    # set on the command line → static broker config
    assert cfg["log.retention.check.interval.ms"].value == "500"
    assert cfg["log.retention.check.interval.ms"].source == ConfigSource.STATIC_BROKER_CONFIG.value
    assert cfg["advertised.listeners"].value == "PLAINTEXT://%s" % broker.bootstrap
    # Kafka defaults
    for k, v in {"num.partitions": "1", "message.max.bytes": "1048588",
                 "auto.create.topics.enable": "true", "socket.request.max.bytes": "104857600"}.items():
        assert k in cfg, "broker describe_configs lacks %s" % k
        assert cfg[k].value == v, (k, cfg[k].value)
        assert cfg[k].source == ConfigSource.DEFAULT_CONFIG.value, (k, cfg[k].source)


# ------------------------------------------------------------------ alter configs
def test_incremental_alter_configs(broker):
    t = create_topic(broker, unique("adm"), config={"retention.ms": "100000", "segment.bytes": "2097152"})
    a = admin(broker)
    res = ConfigResource(ConfigResource.Type.TOPIC, t, incremental_configs=[
        ConfigEntry("retention.ms", "200000", incremental_operation=AlterConfigOpType.SET),
        ConfigEntry("segment.bytes", None, incremental_operation=AlterConfigOpType.DELETE),
        ConfigEntry("max.message.bytes", "300000", incremental_operation=AlterConfigOpType.SET),
    ])
    a.incremental_alter_configs([res])[res].result(15)
    # (Apache Kafka's DescribeConfigs reads the broker's metadata cache, a moment behind the
    # controller that applied the alter: wait for the new value)
    cfg = wait_until(lambda: (lambda c: c if c["retention.ms"].value == "200000" else None)(
        describe_topic_configs(broker, t)), msg="altered config described")
    assert cfg["retention.ms"].value == "200000"
    assert cfg["max.message.bytes"].value == "300000"
    assert cfg["max.message.bytes"].source == ConfigSource.DYNAMIC_TOPIC_CONFIG.value
    assert cfg["segment.bytes"].value == "1073741824"
    assert cfg["segment.bytes"].source == ConfigSource.DEFAULT_CONFIG.value


def test_incremental_alter_invalid(broker):
    t = create_topic(broker, unique("adm"))
    a = admin(broker)
    for entry, code in [
        (ConfigEntry("retention.ms", "nope", incremental_operation=AlterConfigOpType.SET), KafkaError.INVALID_CONFIG),
        (ConfigEntry("no.such.key", "1", incremental_operation=AlterConfigOpType.SET), KafkaError.INVALID_CONFIG),
    ]:
        res = ConfigResource(ConfigResource.Type.TOPIC, t, incremental_configs=[entry])
        with pytest.raises(KafkaException) as ei:
            a.incremental_alter_configs([res])[res].result(15)
        assert err_code(ei.value) == code, entry
    res = ConfigResource(ConfigResource.Type.TOPIC, unique("missing"), incremental_configs=[
        ConfigEntry("retention.ms", "1000", incremental_operation=AlterConfigOpType.SET)])
    with pytest.raises(KafkaException) as ei:
        a.incremental_alter_configs([res])[res].result(15)
    assert err_code(ei.value) == KafkaError.UNKNOWN_TOPIC_OR_PART


def test_legacy_alter_configs_replaces_all(broker):
    t = create_topic(broker, unique("adm"), config={"retention.ms": "100000", "segment.bytes": "2097152"})
    a = admin(broker)
    res = ConfigResource(ConfigResource.Type.TOPIC, t, set_config={"retention.bytes": "5000000"})
    a.alter_configs([res])[res].result(15)
    cfg = describe_topic_configs(broker, t)
    assert cfg["retention.bytes"].value == "5000000"
    assert cfg["retention.bytes"].source == ConfigSource.DYNAMIC_TOPIC_CONFIG.value
    # legacy AlterConfigs replaces the whole set: keys not sent revert to defaults
    assert cfg["retention.ms"].value == "604800000"
    assert cfg["retention.ms"].source == ConfigSource.DEFAULT_CONFIG.value
    assert cfg["segment.bytes"].value == "1073741824"


def test_legacy_alter_configs_invalid(broker):
    t = create_topic(broker, unique("adm"), config={"retention.ms": "100000"})
    a = admin(broker)
    res = ConfigResource(ConfigResource.Type.TOPIC, t, set_config={"cleanup.policy": "sometimes"})
    with pytest.raises(KafkaException) as ei:
        a.alter_configs([res])[res].result(15)
    assert err_code(ei.value) == KafkaError.INVALID_CONFIG
    # unchanged
    assert describe_topic_configs(broker, t)["retention.ms"].value == "100000"


def test_alter_configs_validate_only(broker):
    t = create_topic(broker, unique("adm"), config={"retention.ms": "100000"})
    a = admin(broker)
    res = ConfigResource(ConfigResource.Type.TOPIC, t, incremental_configs=[
        ConfigEntry("retention.ms", "5", incremental_operation=AlterConfigOpType.SET)])
    a.incremental_alter_configs([res], validate_only=True)[res].result(15)
    assert describe_topic_configs(broker, t)["retention.ms"].value == "100000"


# ------------------------------------------------------------------ partitions
def test_create_partitions(broker):
    t = create_topic(broker, unique("adm"), partitions=1)
    a = admin(broker)
    a.create_partitions([NewPartitions(t, 4)])[t].result(15)
    wait_until(lambda: len(a.list_topics(t, timeout=5).topics[t].partitions) == 4, msg="4 partitions")
    # the new partitions are usable
    produce(broker, t, [b"p3"], partition=3)
    assert consume(broker, t, 1, partition=3)[0].value() == b"p3"
    for n in (4, 2):
        with pytest.raises(KafkaException) as ei:
            a.create_partitions([NewPartitions(t, n)])[t].result(15)
        assert err_code(ei.value) == KafkaError.INVALID_PARTITIONS, n
    missing = unique("missing")
    with pytest.raises(KafkaException) as ei:
        a.create_partitions([NewPartitions(missing, 2)])[missing].result(15)
    assert err_code(ei.value) == KafkaError.UNKNOWN_TOPIC_OR_PART


# ------------------------------------------------------------------ delete
def test_delete_topic(broker):
    t = create_topic(broker, unique("adm"), partitions=2)
    produce(broker, t, [b"x", b"y"])
    a = admin(broker)
    a.delete_topics([t], operation_timeout=15)[t].result(15)
    wait_until(lambda: t not in a.list_topics(timeout=5).topics, msg="topic gone")
    # same name can be re-created and starts empty
    create_topic(broker, t, partitions=1)
    assert watermarks(broker, t) == (0, 0)


def test_delete_missing_topic(broker):
    t = unique("missing")
    with pytest.raises(KafkaException) as ei:
        admin(broker).delete_topics([t], operation_timeout=15)[t].result(15)
    assert err_code(ei.value) == KafkaError.UNKNOWN_TOPIC_OR_PART


# ------------------------------------------------------------------ cluster
def test_describe_cluster(broker):
    d = admin(broker).describe_cluster(request_timeout=15).result(15)
    assert [(n.id, n.host, n.port) for n in d.nodes] == [(1, "127.0.0.1", broker.port)]
    assert d.controller is not None
    assert d.cluster_id


def test_kafka_python_describe_cluster_and_topics(broker):
    t = create_topic(broker, unique("adm"), partitions=2)
    ka = kp_admin(broker)
    try:
        assert t in ka.list_topics()
        d = ka.describe_cluster()
        assert [x.get("broker_id", x.get("node_id")) for x in d["brokers"]] == [1]
    finally:
        ka.close()


# ------------------------------------------------------------------ delete records / log dirs
def test_delete_records(broker):
    t = create_topic(broker, unique("adm"))
    produce(broker, t, [b"v%d" % i for i in range(10)])
    a = admin(broker)
    res = a.delete_records([TopicPartition(t, 0, 6)], request_timeout=15)
    r = list(res.values())[0].result(15)
    assert r.low_watermark == 6
    assert watermarks(broker, t) == (6, 10)
    msgs = consume(broker, t, 4, offset=6)
    assert [m.offset() for m in msgs] == [6, 7, 8, 9]
    assert [m.value() for m in msgs] == [b"v6", b"v7", b"v8", b"v9"]
    # -1 means "up to the high watermark"
    r = list(a.delete_records([TopicPartition(t, 0, -1)], request_timeout=15).values())[0].result(15)
    assert r.low_watermark == 10
    # beyond the high watermark → OFFSET_OUT_OF_RANGE
    with pytest.raises(KafkaException) as ei:
        list(a.delete_records([TopicPartition(t, 0, 50)], request_timeout=15).values())[0].result(15)
    assert err_code(ei.value) == KafkaError.OFFSET_OUT_OF_RANGE


def test_delete_records_compacted_topic_policy_violation(broker):
    """As Kafka: a topic whose cleanup.policy lacks `delete` refuses DeleteRecords with
    POLICY_VIOLATION (found by the Java AdminClient run against Apache Kafka); with
    compact,delete it is allowed."""
    a = admin(broker)
    for policy, code in [("compact", KafkaError.POLICY_VIOLATION), ("compact,delete", None)]:
        t = create_topic(broker, unique("adm"), config={"cleanup.policy": policy})
        produce(broker, t, [{"key": b"k%d" % i, "value": b"v%d" % i} for i in range(4)])
        fut = list(a.delete_records([TopicPartition(t, 0, 2)], request_timeout=15).values())[0]
        if code is None:
            assert fut.result(15).low_watermark == 2
            assert watermarks(broker, t) == (2, 4)
        else:
            with pytest.raises(KafkaException) as ei:
                fut.result(15)
            assert err_code(ei.value) == code, policy
            assert watermarks(broker, t) == (0, 4)
    # kafka-python's admin gets the same code over the wire (DeleteRecords v1)
    from kafka.protocol.admin.topics import DeleteRecordsRequest
    DT = DeleteRecordsRequest.DeleteRecordsTopic
    t = create_topic(broker, unique("adm"), config={"cleanup.policy": "compact"})
    s = kwire.connect(broker)
    try:
        r = kwire.request(s, DeleteRecordsRequest, 1, topics=[
            DT(name=t, partitions=[DT.DeleteRecordsPartition(partition_index=0, offset=0)])],
            timeout_ms=10000)
        assert [p.error_code for tr in r.topics for p in tr.partitions] == [KafkaError.POLICY_VIOLATION]
    finally:
        s.close()


def test_delete_records_raw_unknown_partition(broker):
    from kafka.protocol.admin.topics import DeleteRecordsRequest
    DT = DeleteRecordsRequest.DeleteRecordsTopic
    t = create_topic(broker, unique("adm"))
    s = kwire.connect(broker)
    try:
        r = kwire.request(s, DeleteRecordsRequest, 1, topics=[
            DT(name=t, partitions=[DT.DeleteRecordsPartition(partition_index=5, offset=0)]),
            DT(name=unique("missing"), partitions=[DT.DeleteRecordsPartition(partition_index=0, offset=0)]),
        ], timeout_ms=10000)
        codes = [p.error_code for tr in r.topics for p in tr.partitions]
        assert codes == [KafkaError.UNKNOWN_TOPIC_OR_PART, KafkaError.UNKNOWN_TOPIC_OR_PART]
    finally:
        s.close()


def log_dir_sizes(b, topic):
    ka = kp_admin(b)
    try:
        res = ka.describe_log_dirs([topic])
    finally:
        ka.close()
    sizes = {}
    dirs = []
    for br in res:
        for ld in br["log_dirs"]:
            assert ld["error_code"] == 0, ld
            dirs.append(ld["log_dir"])
            for tr in ld["topics"]:
                if tr["name"] == topic:
                    for p in tr["partitions"]:
                        sizes[p["partition_index"]] = p["partition_size"]
    return dirs, sizes


def test_describe_log_dirs(broker):
    t = create_topic(broker, unique("adm"), partitions=2)
    _, sizes0 = log_dir_sizes(broker, t)
    assert sizes0 == {0: 0, 1: 0}
    produce(broker, t, [b"x" * 1000 for _ in range(20)], partition=1)
    dirs, sizes = log_dir_sizes(broker, t)
    assert dirs == [broker.data_dir]
    assert sizes[0] == 0
    assert 20 * 1000 < sizes[1] < 20 * 1000 + 20 * 200


def test_topic_name_collision(broker):
    """'.' and '_' collide in metric names: Kafka refuses a topic that collides with an existing one."""
    base = unique("col").replace("-", "")
    create_topic(broker, base + ".x")
    assert create_err(broker, NewTopic(base + "_x", 1, 1)) == KafkaError.TOPIC_EXCEPTION


def test_create_partitions_validate_only(broker):
    t = create_topic(broker, unique("cpv"))
    a = admin(broker)
    a.create_partitions([NewPartitions(t, 5)], validate_only=True)[t].result(15)
    assert len(a.list_topics(t, timeout=10).topics[t].partitions) == 1


def test_create_with_replica_assignment_raw(broker):
    from kafka.protocol.admin.topics import CreateTopicsRequest
    CT = CreateTopicsRequest.CreatableTopic
    RA = CT.CreatableReplicaAssignment
    ok, bad = unique("asg"), unique("asg")
    s = kwire.connect(broker)
    try:
        r = kwire.request(s, CreateTopicsRequest, 4, topics=[
            CT(name=ok, num_partitions=-1, replication_factor=-1,
               assignments=[RA(partition_index=0, broker_ids=[1]), RA(partition_index=1, broker_ids=[1])],
               configs=[]),
            CT(name=bad, num_partitions=-1, replication_factor=-1,
               assignments=[RA(partition_index=0, broker_ids=[7])], configs=[]),
        ], timeout_ms=10000, validate_only=False)
        res = {t.name: t.error_code for t in r.topics}
    finally:
        s.close()
    assert res == {ok: 0, bad: 39}  # INVALID_REPLICA_ASSIGNMENT
    wait_until(lambda: len(admin(broker).list_topics(ok, timeout=5).topics[ok].partitions) == 2, msg="2 partitions")


def test_create_topics_v5_plus_response_details(broker):
    """CreateTopics v5+ answers with the partition count, replication factor and the effective
    configs of each created topic (v7: its topic id)."""
    from kafka.protocol.admin.topics import CreateTopicsRequest
    CT = CreateTopicsRequest.CreatableTopic
    t = unique("ct5")
    s = kwire.connect(broker)
    try:
        r = kwire.request(s, CreateTopicsRequest, 7, topics=[
            CT(name=t, num_partitions=3, replication_factor=-1, assignments=[],
               configs=[CT.CreatableTopicConfig(name="retention.ms", value="4242")])],
            timeout_ms=10000, validate_only=False)
    finally:
        s.close()
    res = r.topics[0]
    assert (res.name, res.error_code, res.num_partitions, res.replication_factor) == (t, 0, 3, 1)
    cfg = {c.name: c.value for c in res.configs}
    assert cfg.get("retention.ms") == "4242"
    assert cfg.get("cleanup.policy") == "delete"
    import uuid
    assert res.topic_id not in (None, uuid.UUID(int=0))
