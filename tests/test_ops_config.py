"""Issue 9 "honest configuration" and issue 8's single-node honesty problems: a configuration
that asks for a cluster refuses to start, keys without effect on one node warn, acks=all below
min.insync.replicas answers NOT_ENOUGH_REPLICAS (confluent-kafka, kafka-python), an internal
topic replication factor above the one broker leaves coordinators unavailable as in Kafka, the
log dir is locked and its meta.properties checked, `--print-config` shows sources, and log lines
have no colour off a terminal and can be JSON."""
import json
import os
import subprocess

import pytest
from confluent_kafka import KafkaError, KafkaException

import kwire
from conftest import OXKA_BIN, Broker
from kutil import create_topic, kp_admin, kp_producer, producer, unique, wait_until, watermarks

NOT_ENOUGH_REPLICAS = 19
COORDINATOR_NOT_AVAILABLE = 15


def clean_env(**extra):
    env = {k: v for k, v in os.environ.items() if not k.startswith("KAFKA_")}
    env.pop("NO_COLOR", None)
    env.update(extra)
    return env


def refused(make_broker, **kw):
    """Starts a broker that must exit 1 by itself; returns its log."""
    b = make_broker(start=False, **kw)
    b.start(wait=False)
    try:
        rc = b.proc.wait(20)
    except subprocess.TimeoutExpired:
        pytest.fail("oxka did not refuse to start:\n" + b.log_tail())
    assert rc == 1, b.log_tail()
    text = b.log_text()
    assert "oxka cannot start" in text and "Stack backtrace" not in text, text
    return text


# ------------------------------------------------------------------ cluster keys
@pytest.mark.parametrize("env,key,why", [
    # A cluster needs a listener for its Raft traffic (Kafka's own message).
    ({"KAFKA_CONTROLLER_QUORUM_VOTERS": "1@kafka-1:9093,2@kafka-2:9093,3@kafka-3:9093"},
     "controller.listener.names", "must contain at least one value appearing in the 'listeners'"),
    ({"KAFKA_CONTROLLER_QUORUM_VOTERS": "2@kafka-2:9093"}, "controller.quorum.voters",
     "does not name this node (node.id=1)"),
    ({"KAFKA_CONTROLLER_QUORUM_VOTERS": "2@kafka-2:9093,3@kafka-3:9093"},
     "controller.quorum.voters", "does not name this node (node.id=1)"),
    ({"KAFKA_CONTROLLER_QUORUM_BOOTSTRAP_SERVERS": "kafka-1:9093,kafka-2:9093"},
     "controller.quorum.bootstrap.servers", "dynamic quorum (KIP-853) is not built"),
    ({"KAFKA_PROCESS_ROLES": "broker"}, "process.roles", "combined broker and controller"),
    ({"KAFKA_CFG_PROCESS_ROLES": "controller"}, "process.roles", "combined broker and controller"),
    ({"KAFKA_REMOTE_LOG_STORAGE_SYSTEM_ENABLE": "true"}, "remote.log.storage.system.enable",
     "tiered storage is not supported"),
])
def test_cluster_configuration_refuses_to_start(make_broker, env, key, why):
    text = refused(make_broker, env=env)
    assert "configuration %s" % key in text, text
    assert why in text, text


def test_a_quorum_of_this_node_alone_starts(make_broker):
    b = make_broker(env={"KAFKA_CONTROLLER_QUORUM_VOTERS": "1@127.0.0.1:19093",
                         "KAFKA_PROCESS_ROLES": "controller,broker"})
    t = create_topic(b, unique("q1"))
    assert watermarks(b, t) == (0, 0)


def test_keys_without_effect_warn(make_broker):
    b = make_broker(env={"KAFKA_ZOOKEEPER_CONNECT": "zk:2181", "KAFKA_NUM_REPLICA_FETCHERS": "4",
                         "KAFKA_DEFAULT_REPLICATION_FACTOR": "3"})
    text = b.log_text()
    assert "zookeeper.connect=zk:2181 has no effect" in text
    assert "num.replica.fetchers=4 has no effect" in text
    assert "default.replication.factor=3 cannot be met (this node is a cluster of one" in text
    # these are known keys: no "isn't a known config" noise for them
    assert "'zookeeper.connect' was supplied but isn't a known config" not in text


# ------------------------------------------------------------------ min.insync.replicas
def produce_one(b, topic, acks):
    p = producer(b, acks=acks, retries=0, **{"message.timeout.ms": 5000})
    result = {}
    p.produce(topic, b"v", partition=0,
              on_delivery=lambda err, msg: result.update(err=err, msg=msg))
    assert p.flush(15) == 0
    return result["err"]


def test_min_insync_replicas_above_isr_refuses_acks_all(broker):
    t = create_topic(broker, unique("misr"), config={"min.insync.replicas": "2"})
    # confluent-kafka
    err = produce_one(broker, t, "all")
    assert err is not None and err.code() == KafkaError.NOT_ENOUGH_REPLICAS, err
    assert produce_one(broker, t, "1") is None
    assert produce_one(broker, t, "0") is None
    # kafka-python
    from kafka.errors import NotEnoughReplicasError
    kp = kp_producer(broker, acks="all", retries=0)
    try:
        with pytest.raises(NotEnoughReplicasError):
            kp.send(t, b"kp-all", partition=0).get(15)
    finally:
        kp.close()
    kp = kp_producer(broker, acks=1, retries=0)
    try:
        md = kp.send(t, b"kp-1", partition=0).get(15)
        assert md.offset == 2
    finally:
        kp.close()
    # only the acks=1 and acks=0 records were written
    assert wait_until(lambda: watermarks(broker, t) == (0, 3), 10, msg="3 records")
    # a topic at the default min.insync.replicas=1 takes acks=all
    ok = create_topic(broker, unique("misr1"))
    assert produce_one(broker, ok, "all") is None


def test_broker_min_insync_replicas_warns_and_applies(make_broker):
    b = make_broker(overrides={"min.insync.replicas": "2"})
    assert "min.insync.replicas=2 cannot be met by one replica" in b.log_text()
    t = create_topic(b, unique("bmisr"))
    err = produce_one(b, t, "all")
    assert err is not None and err.code() == KafkaError.NOT_ENOUGH_REPLICAS, err
    assert produce_one(b, t, "1") is None


# ------------------------------------------------------------------ internal topics
def test_offsets_topic_replication_factor_above_brokers(make_broker):
    """As Kafka on one broker: __consumer_offsets cannot be created with RF 3, so FindCoordinator
    answers COORDINATOR_NOT_AVAILABLE (it never silently becomes 1)."""
    from kafka.protocol.metadata import FindCoordinatorRequest
    b = make_broker(env={"KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR": "3",
                         "KAFKA_TRANSACTION_STATE_LOG_REPLICATION_FACTOR": "3"})
    # The first FindCoordinator tries to create the topic (lazily, as Kafka) and cannot.
    with kwire.connect(b) as s:
        for corr, key_type in ((1, 0), (2, 1)):
            r = kwire.request(s, FindCoordinatorRequest, 3, corr=corr, key="k", key_type=key_type)
            assert r.error_code == COORDINATOR_NOT_AVAILABLE, r
    text = b.log_text()
    assert "does not meet the required replication factor '3' for the offsets topic" in text
    assert "for the transactions state topic" in text
    # kafka-python: the admin client gets the coordinator error
    from kafka.errors import CoordinatorNotAvailableError
    a = kp_admin(b)
    try:
        with pytest.raises(CoordinatorNotAvailableError):
            a.describe_groups([unique("g")])
    finally:
        a.close()
    # confluent-kafka: no __consumer_offsets, and a group commit cannot complete
    from kutil import admin, consumer
    md = admin(b).list_topics(timeout=10)
    assert "__consumer_offsets" not in md.topics and "__transaction_state" not in md.topics
    t = create_topic(b, unique("rf3"))
    c = consumer(b, **{"session.timeout.ms": 6000})
    try:
        from confluent_kafka import TopicPartition
        with pytest.raises(KafkaException) as e:
            c.commit(offsets=[TopicPartition(t, 0, 0)], asynchronous=False)
        assert e.value.args[0].code() in (KafkaError.COORDINATOR_NOT_AVAILABLE,
                                          KafkaError._WAIT_COORD, KafkaError._TIMED_OUT), e.value
    finally:
        c.close()


# ------------------------------------------------------------------ log dirs
def test_second_broker_on_the_same_log_dir_refuses(make_broker):
    first = make_broker()
    text = refused(make_broker, data_dir=first.data_dir)
    assert "Failed to acquire lock on file .lock in %s" % first.data_dir in text
    first.assert_alive()
    create_topic(first, unique("still"))


def test_log_dir_that_is_a_file_refuses(make_broker, tmp_path):
    f = tmp_path / "not-a-dir"
    f.write_text("x")
    text = refused(make_broker, data_dir=str(f))
    assert "log dir %s is not a directory" % f in text
    text = refused(make_broker, data_dir=str(f / "below"))
    assert str(f / "below") in text and "Not a directory" in text


def test_meta_properties_node_and_cluster_id_are_checked(make_broker):
    b = make_broker(env={"CLUSTER_ID": "MkU3OEVBNTcwNTJENDM2Qk"})
    t = create_topic(b, unique("meta"))
    b.stop()
    meta = open(os.path.join(b.data_dir, "meta.properties")).read()
    assert "node.id=1" in meta and "cluster.id=MkU3OEVBNTcwNTJENDM2Qk" in meta
    text = refused(make_broker, data_dir=b.data_dir, overrides={"node.id": "2"})
    assert "Stored node id 1 doesn't match previous node id 2" in text
    text = refused(make_broker, data_dir=b.data_dir, env={"CLUSTER_ID": "AAAAAAAAAAAAAAAAAAAAAA"})
    assert "Invalid cluster.id. Expected AAAAAAAAAAAAAAAAAAAAAA, but read MkU3OEVBNTcwNTJENDM2Qk" in text
    # the right ids start, with the data
    b.start()
    assert watermarks(b, t) == (0, 0)


# ------------------------------------------------------------------ --print-config and logs
def run_oxka(args, env, cwd):
    return subprocess.run([OXKA_BIN] + args, env=env, cwd=cwd, capture_output=True, timeout=30,
                          stdin=subprocess.DEVNULL)


def test_print_config_shows_values_and_sources(tmp_path):
    props = tmp_path / "server.properties"
    props.write_text("num.partitions=2\nlog.retention.hours=24\nsasl.jaas.password=secret\n")
    env = clean_env(KAFKA_CFG_NUM_PARTITIONS="3", KAFKA_CFG_LOG_SEGMENT_BYTES="1048576",
                    KAFKA_LOG_SEGMENT_BYTES="2097152", CLUSTER_ID="MkU3OEVBNTcwNTJENDM2Qk")
    r = run_oxka(["serve", str(props), "--print-config", "--override", "num.partitions=5"],
                 env, tmp_path)
    assert r.returncode == 0, r.stderr
    lines = dict(l.split("  # ", 1) for l in r.stdout.decode().splitlines())
    assert lines["num.partitions=5"] == "flag --override"
    assert lines["log.segment.bytes=2097152"] == "env KAFKA_LOG_SEGMENT_BYTES"
    assert lines["log.retention.hours=24"] == "file %s" % props
    assert lines["cluster.id=MkU3OEVBNTcwNTJENDM2Qk"] == "env CLUSTER_ID"
    assert lines["log.cleanup.policy=delete"] == "default"
    assert lines["sasl.jaas.password=[hidden]"].startswith("file")
    env = clean_env(KAFKA_CFG_AUTO_CREATE_TOPICS_ENABLE="false")
    r = run_oxka(["serve", "--print-config"], env, tmp_path)
    assert "auto.create.topics.enable=false  # env KAFKA_CFG_AUTO_CREATE_TOPICS_ENABLE" in r.stdout.decode()
    assert not os.path.exists(tmp_path / "data"), "--print-config must not start a broker"


def test_log_lines_have_no_colour_off_a_terminal_and_can_be_json(tmp_path):
    env = clean_env(KAFKA_ZOOKEEPER_CONNECT="zk:2181", RUST_LOG="info")
    r = run_oxka(["serve", "--print-config"], env, tmp_path)
    err = r.stderr.decode()
    assert "zookeeper.connect=zk:2181 has no effect" in err and "\x1b[" not in err, err
    for args, extra in ((["--log-format", "json"], {}), ([], {"OXKA_LOG_FORMAT": "json"})):
        r = run_oxka(["serve", "--print-config"] + args, dict(env, **extra), tmp_path)
        lines = [json.loads(l) for l in r.stderr.decode().splitlines() if l.strip()]
        warn = [l for l in lines if "zookeeper.connect" in l.get("message", "")]
        assert warn and warn[0]["level"] == "WARN" and "timestamp" in warn[0], lines
    # a refusal is one JSON line too
    r = run_oxka(["serve", "--log-format", "json"],
                 dict(env, KAFKA_PROCESS_ROLES="broker"), tmp_path)
    assert r.returncode == 1
    lines = [json.loads(l) for l in r.stderr.decode().splitlines() if l.strip()]
    assert any(l["level"] == "ERROR" and "process.roles" in l["message"] for l in lines), lines


def test_listeners_are_logged_as_urls(broker):
    text = broker.log_text()
    assert "listeners=PLAINTEXT://127.0.0.1:%d" % broker.port in text
    assert "metrics=http://127.0.0.1:%d/metrics" % broker.mport in text
