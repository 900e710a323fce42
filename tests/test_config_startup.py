"""Issue 2 points 1 and 2: start like Kafka — no config at all, server.properties (with
continuations and comments), KAFKA_* (apache/kafka image) and KAFKA_CFG_* (Bitnami) environment
dialects, --override flags, their precedence; unknown keys warn; advertised.listeners is what
Metadata returns."""
import os
import re
import shutil
import socket
import subprocess
import time

import pytest
from confluent_kafka.admin import NewTopic

import kwire
from conftest import OXKA_BIN, Broker, free_port, port_open
from kutil import admin, consume, kcat, produce, unique, wait_until


def default_partitions(b):
    t = unique("dp")
    a = admin(b)
    a.create_topics([NewTopic(t)])[t].result(15)
    tm = wait_until(lambda: a.list_topics(t, timeout=5).topics.get(t), msg="topic")
    return len(tm.partitions)


def metadata_brokers(b):
    md = admin(b).list_topics(timeout=10)
    return sorted((x.id, x.host, x.port) for x in md.brokers.values())


def roundtrip(b):
    t = unique("rt")
    produce(b, t, [b"hello"])  # auto-create
    assert consume(b, t, 1)[0].value() == b"hello"


def clean_env():
    """The test environment must not leak KAFKA_* variables into brokers started here."""
    return {k: v for k, v in os.environ.items() if not k.startswith("KAFKA_")}


def test_no_config_defaults(tmp_path, oxka_bin):
    """`oxka serve` with nothing: localhost:9092, data in ./data."""
    if port_open("127.0.0.1", 9092):
        pytest.skip("port 9092 busy on this machine")
    logp = tmp_path / "noconf.log"
    with open(logp, "wb") as lf:
        p = subprocess.Popen([OXKA_BIN, "serve"], cwd=tmp_path, stdout=lf, stderr=subprocess.STDOUT,
                             stdin=subprocess.DEVNULL, env=clean_env())
    try:
        wait_until(lambda: p.poll() is not None or port_open("127.0.0.1", 9092), 20, 0.05, msg="port 9092")
        assert p.poll() is None, logp.read_text()

        class B:
            host, port, bootstrap = "127.0.0.1", 9092, "localhost:9092"
        b = B()
        assert metadata_brokers(b) == [(1, "localhost", 9092)] or metadata_brokers(b)[0][2] == 9092
        roundtrip(b)
        assert (tmp_path / "data").is_dir()
        assert (tmp_path / "data" / "meta.properties").is_file()
        assert default_partitions(b) == 1
    finally:
        from kutil import forget
        forget(b) if "b" in locals() else None
        p.kill()
        p.wait(10)


def test_startup_is_fast(make_broker):
    b = make_broker(start=False)
    t0 = time.monotonic()
    b.start()
    took = time.monotonic() - t0
    assert took < 2.0, "start to serving took %.2fs" % took


def test_kafka_env_dialect(make_broker, tmp_path):
    port, mport = free_port(), free_port()
    data = str(tmp_path / "envdata")
    b = make_broker(use_default_overrides=False, port=port, mport=mport, data_dir=data, env={
        "KAFKA_LISTENERS": "PLAINTEXT://127.0.0.1:%d" % port,
        "KAFKA_ADVERTISED_LISTENERS": "PLAINTEXT://127.0.0.1:%d" % port,
        "KAFKA_LOG_DIRS": data,
        "KAFKA_NODE_ID": "1",
        "KAFKA_OXKA_METRICS_LISTEN": "127.0.0.1:%d" % mport,
        "KAFKA_NUM_PARTITIONS": "4",
        "KAFKA_AUTO_CREATE_TOPICS_ENABLE": "false",
        # not configuration: the apache/kafka image ignores these
        "KAFKA_HEAP_OPTS": "-Xmx1G -Xms1G",
        "KAFKA_OPTS": "-Dfoo=bar",
        # dialect escaping: '__' -> '_', '___' -> '-'
        "KAFKA_MY__CUSTOM___KEY_X": "1",
    })
    assert metadata_brokers(b) == [(1, "127.0.0.1", port)]
    assert default_partitions(b) == 4
    assert os.path.isfile(os.path.join(data, "meta.properties"))
    from test_autocreate import raw_metadata
    assert raw_metadata(b, unique("x"), allow=True) == 3  # auto-create disabled via env
    assert "kafka_" in b.metrics().lower() or "messages" in b.metrics().lower()
    # the unknown key decoded from the env dialect is warned about by its Kafka name
    assert "my_custom-key.x" in b.log_text(), b.log_tail(30)


def test_bitnami_env_dialect(make_broker, tmp_path):
    port = free_port()
    data = str(tmp_path / "cfgdata")
    b = make_broker(use_default_overrides=False, port=port, data_dir=data, env={
        "KAFKA_CFG_LISTENERS": "PLAINTEXT://127.0.0.1:%d" % port,
        "KAFKA_CFG_ADVERTISED_LISTENERS": "PLAINTEXT://127.0.0.1:%d" % port,
        "KAFKA_CFG_LOG_DIRS": data,
        "KAFKA_CFG_NODE_ID": "1",
        "KAFKA_CFG_OXKA_METRICS_LISTEN": "127.0.0.1:%d" % free_port(),
        "KAFKA_CFG_NUM_PARTITIONS": "2",
    })
    assert metadata_brokers(b) == [(1, "127.0.0.1", port)]
    assert default_partitions(b) == 2
    assert os.path.isfile(os.path.join(data, "meta.properties"))
    roundtrip(b)


def write_props(path, port, data, mport, extra=""):
    path.write_text(
        "# a Kafka server.properties\n"
        "! bang comments too\n"
        "node.id=1\n"
        "listeners=PLAINTEXT://\\\n"
        "    127.0.0.1:%d\n"
        "advertised.listeners = PLAINTEXT://127.0.0.1:%d\n"
        "log.dirs:%s\n"
        "oxka.metrics.listen=127.0.0.1:%d\n"
        "   # indented comment\n"
        "\n"
        "some.unknown.key=whatever\n"
        "%s" % (port, port, data, mport, extra))


def test_properties_file(make_broker, tmp_path):
    port, mport = free_port(), free_port()
    data = str(tmp_path / "propdata")
    props = tmp_path / "server.properties"
    write_props(props, port, data, mport, "num.partitions=3\n")
    b = make_broker(use_default_overrides=False, port=port, mport=mport, data_dir=data,
                    config_file=str(props))
    assert metadata_brokers(b) == [(1, "127.0.0.1", port)]
    assert default_partitions(b) == 3
    assert os.path.isfile(os.path.join(data, "meta.properties"))
    # the unknown key was warned about and did not stop the broker
    log = b.log_text()
    assert re.search(r"(?i)warn.*some\.unknown\.key|some\.unknown\.key.*(unknown|warn)", log), log[-3000:]


def test_unknown_override_warns(make_broker):
    b = make_broker(overrides={"totally.made.up": "1", "zookeeper.connect": "localhost:2181"})
    roundtrip(b)
    assert "totally.made.up" in b.log_text()


def test_precedence(make_broker, tmp_path):
    """flags > KAFKA_* > KAFKA_CFG_* > properties file > defaults (checked on num.partitions)."""
    port, mport = free_port(), free_port()
    data = str(tmp_path / "precdata")
    props = tmp_path / "prec.properties"
    write_props(props, port, data, mport, "num.partitions=2\n")
    layers = [
        ({}, {}, 2),
        ({"KAFKA_CFG_NUM_PARTITIONS": "3"}, {}, 3),
        ({"KAFKA_CFG_NUM_PARTITIONS": "3", "KAFKA_NUM_PARTITIONS": "4"}, {}, 4),
        ({"KAFKA_CFG_NUM_PARTITIONS": "3", "KAFKA_NUM_PARTITIONS": "4"}, {"num.partitions": "5"}, 5),
    ]
    for env, flags, expect in layers:
        b = make_broker(use_default_overrides=False, port=port, mport=mport, data_dir=data,
                        config_file=str(props), env=env, overrides=flags)
        try:
            assert default_partitions(b) == expect, (env, flags)
        finally:
            b.stop()
        wait_until(lambda: not port_open("127.0.0.1", port, 0.05), 10, 0.05, msg="port released")


def test_advertised_listeners_in_metadata(make_broker):
    """Listen on 127.0.0.1:P but advertise localhost:Q — Metadata must return localhost:Q."""
    port = free_port()
    adv_port = free_port()
    b = make_broker(port=port, overrides={
        "listeners": "PLAINTEXT://127.0.0.1:%d" % port,
        "advertised.listeners": "PLAINTEXT://localhost:%d" % adv_port,
    })
    from kafka.protocol.metadata import MetadataRequest
    s = kwire.connect(b)
    try:
        r = kwire.request(s, MetadataRequest, 1, topics=None)
        assert [(x.node_id, x.host, x.port) for x in r.brokers] == [(1, "localhost", adv_port)]
    finally:
        s.close()
    out = kcat(b, "-L", "-m", "3", check=False).stdout.decode()
    assert "broker 1 at localhost:%d" % adv_port in out, out
    md = admin(b).list_topics(timeout=10)  # bootstrap metadata comes from the bootstrap connection
    assert [(x.id, x.host, x.port) for x in md.brokers.values()] == [(1, "localhost", adv_port)]


def test_advertised_hostname(make_broker):
    """advertised host 'localhost' with the real port: clients follow it and work."""
    port = free_port()
    b = make_broker(port=port, overrides={"advertised.listeners": "PLAINTEXT://localhost:%d" % port})
    assert metadata_brokers(b) == [(1, "localhost", port)]
    roundtrip(b)
    out = kcat(b, "-L").stdout.decode()
    assert "broker 1 at localhost:%d" % port in out


def test_sigterm_graceful(make_broker):
    b = make_broker()
    roundtrip(b)
    b.proc.terminate()
    rc = b.proc.wait(15)
    assert rc in (0, -15, 143), rc


def wait_exit(b, timeout=15):
    for _ in range(int(timeout / 0.1)):
        if b.proc.poll() is not None:
            return b.proc.returncode
        time.sleep(0.1)
    return None


def test_invalid_value_fails_fast(make_broker):
    """Unknown keys warn; an invalid value for a known key stops startup (Kafka: ConfigException)."""
    b = make_broker(start=False, overrides={"num.partitions": "abc"})
    b.start(wait=False)
    rc = wait_exit(b)
    assert rc not in (None, 0), "broker started with num.partitions=abc"
    assert "num.partitions" in b.log_text()


def test_port_in_use_fails(make_broker):
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    s.listen(1)
    port = s.getsockname()[1]
    try:
        b = make_broker(start=False, port=port)
        b.start(wait=False)
        assert wait_exit(b) not in (None, 0), "broker kept running without its listener"
    finally:
        s.close()


def test_log_dir_singular(make_broker, tmp_path):
    """`log.dir` (singular) is used when `log.dirs` is absent, as in Kafka."""
    d = str(tmp_path / "single")
    port, mport = free_port(), free_port()
    b2 = make_broker(use_default_overrides=False, port=port, mport=mport, data_dir=d, overrides={
        "listeners": "PLAINTEXT://127.0.0.1:%d" % port, "advertised.listeners": "PLAINTEXT://127.0.0.1:%d" % port,
        "log.dir": d, "oxka.metrics.listen": "127.0.0.1:%d" % mport})
    roundtrip(b2)
    assert os.path.isfile(os.path.join(d, "meta.properties"))


def test_multiple_log_dirs(make_broker, tmp_path):
    d1, d2 = str(tmp_path / "d1"), str(tmp_path / "d2")
    b = make_broker(overrides={"log.dirs": "%s,%s" % (d1, d2)})
    from kutil import create_topic
    t = create_topic(b, unique("jbod"), partitions=4)
    produce(b, t, [b"x"], partition=3)
    for d in (d1, d2):
        assert os.path.isfile(os.path.join(d, "meta.properties")), d
    placed = [p for d in (d1, d2) for p in os.listdir(d) if p.startswith(t + "-")]
    assert sorted(placed) == sorted("%s-%d" % (t, i) for i in range(4))
    from test_admin import log_dir_sizes
    dirs, sizes = log_dir_sizes(b, t)
    assert sorted(dirs) == sorted([d1, d2])
    assert sorted(sizes) == [0, 1, 2, 3]
    assert sizes[3] > 0
