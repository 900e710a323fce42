"""Issue 9 metrics: per-topic (Strimzi `*_total{topic}`) and broker-wide (`*persec`) throughput in
separate families, bytes-out counted under the topic's name for topic-id (v13+) fetches, HELP
text on every family, kafka_exporter's consumer-group lag after a confluent-kafka commit, log
size limits, min-ISR and log dir gauges; and config/prometheus-rules.yaml: every metric it names
is in a scrape, and (with promtool, tests/setup.d/50-promtool.sh) the rules evaluate against a
scrape of a running oxka, firing exactly the alerts its state calls for."""
import os
import re
import shutil
import subprocess
import uuid

import pytest
import yaml
from confluent_kafka import TopicPartition

import kwire
from conftest import REPO

# Where tests/setup.d keeps the tools it builds (shared by clones on one machine).
TOOLS = os.environ.get("OXKA_TOOLS") or os.path.expanduser("~/.cache/oxka-tools")
from kutil import consume, consumer, create_topic, kp_consume, produce, unique, wait_until

RULES = os.path.join(REPO, "config", "prometheus-rules.yaml")
SAMPLE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$')
LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"')


def scrape(b):
    """{name: [(labels dict, value)]}, and {name: (type, help)}."""
    samples, meta = {}, {}
    for line in b.metrics().splitlines():
        if line.startswith("# HELP "):
            name, text = line[7:].split(" ", 1)
            meta.setdefault(name, {})["help"] = text
        elif line.startswith("# TYPE "):
            name, kind = line[7:].split(" ", 1)
            meta.setdefault(name, {})["type"] = kind
        elif line and not line.startswith("#"):
            m = SAMPLE.match(line)
            assert m, "unparseable sample line %r" % line
            labels = dict(LABEL.findall(m.group(2) or ""))
            samples.setdefault(m.group(1), []).append((labels, float(m.group(3))))
    return samples, meta


def value(samples, name, **labels):
    found = [v for l, v in samples.get(name, []) if all(l.get(k) == str(x) for k, x in labels.items())]
    assert len(found) == 1, (name, labels, samples.get(name))
    return found[0]


def fetch_by_topic_id(b, t):
    from kafka.protocol.consumer import FetchRequest
    from kafka.protocol.metadata import MetadataRequest
    with kwire.connect(b) as s:
        r = kwire.request(s, MetadataRequest, 12, topics=[MetadataRequest.MetadataRequestTopic(name=t)],
                          allow_auto_topic_creation=False, include_topic_authorized_operations=False)
        tid = r.topics[0].topic_id
        assert tid != uuid.UUID(int=0)
        FT = FetchRequest.FetchTopic
        r = kwire.request(s, FetchRequest, 13, corr=2, replica_id=-1, max_wait_ms=0, min_bytes=0,
                          max_bytes=1 << 20, isolation_level=0, session_id=0, session_epoch=-1,
                          topics=[FT(topic_id=tid, partitions=[FT.FetchPartition(
                              partition=0, fetch_offset=0, partition_max_bytes=1 << 20)])],
                          forgotten_topics_data=[], rack_id="")
        p = r.responses[0].partitions[0]
        assert p.error_code == 0 and len(bytes(p.records)) > 0
        return len(bytes(p.records))


def test_throughput_per_topic_and_broker_wide_in_separate_families(broker):
    t = create_topic(broker, unique("thr"))
    produce(broker, t, [b"x" * 100] * 20, acks="all")
    consume(broker, t, 20)                       # confluent-kafka (librdkafka 2.16)
    kp_consume(broker, t, 20)                    # kafka-python
    before = value(scrape(broker)[0], "kafka_server_brokertopicmetrics_bytesout_total", topic=t)
    sent = fetch_by_topic_id(broker, t)          # Fetch v13: the request names the topic by id
    samples, meta = scrape(broker)
    assert value(samples, "kafka_server_brokertopicmetrics_messagesin_total", topic=t) == 20
    assert value(samples, "kafka_server_brokertopicmetrics_bytesin_total", topic=t) > 2000
    after = value(samples, "kafka_server_brokertopicmetrics_bytesout_total", topic=t)
    assert after == before + sent, (before, sent, after)
    for family in ("messagesin_total", "bytesin_total", "bytesout_total"):
        series = samples["kafka_server_brokertopicmetrics_" + family]
        assert all(l.get("topic") for l, _ in series), series   # never topic="" nor topic-less
    for family in ("messagesinpersec", "bytesinpersec", "bytesoutpersec"):
        series = samples["kafka_server_brokertopicmetrics_" + family]
        assert [l for l, _ in series] == [{}], series            # one broker-wide series
    total_in = samples["kafka_server_brokertopicmetrics_messagesinpersec"][0][1]
    assert total_in >= sum(v for _, v in samples["kafka_server_brokertopicmetrics_messagesin_total"])
    assert value(samples, "kafka_network_requestmetrics_requests_total", request="Produce") >= 1
    assert any(l.get("quantile") == "0.99" and l.get("request") == "Fetch"
               for l, _ in samples["kafka_network_requestmetrics_totaltimems"])


def test_every_family_has_help_and_a_type(broker):
    samples, meta = scrape(broker)
    families = {re.sub(r"_(sum|count)$", "", n) if n not in meta else n for n in samples}
    for name in families:
        assert meta.get(name, {}).get("help"), "no HELP for %s" % name
        assert meta[name].get("type") in ("counter", "gauge", "summary", "histogram"), name


def test_consumer_group_lag_after_a_commit(broker):
    t = create_topic(broker, unique("lag"))
    produce(broker, t, [b"m"] * 10)
    g = unique("lagg")
    c = consumer(broker, **{"group.id": g})
    try:
        c.commit(offsets=[TopicPartition(t, 0, 3)], asynchronous=False)
    finally:
        c.close()
    samples, _ = scrape(broker)
    assert value(samples, "kafka_consumergroup_current_offset", consumergroup=g, topic=t, partition=0) == 3
    assert value(samples, "kafka_consumergroup_lag", consumergroup=g, topic=t, partition=0) == 7
    assert value(samples, "kafka_consumergroup_lag_sum", consumergroup=g, topic=t) == 7
    assert value(samples, "kafka_topic_partition_current_offset", topic=t, partition=0) == 10
    assert value(samples, "kafka_log_log_logendoffset", topic=t, partition=0) == 10


def test_log_size_limit_min_isr_and_log_dirs(broker):
    limited = create_topic(broker, unique("lim"), config={"retention.bytes": "1048576"})
    unlimited = create_topic(broker, unique("unl"))
    before = value(scrape(broker)[0], "kafka_server_replicamanager_underminisrpartitioncount")
    create_topic(broker, unique("misr"), partitions=2, config={"min.insync.replicas": "2"})
    produce(broker, limited, [b"z" * 1000] * 5)
    samples, _ = scrape(broker)
    assert value(samples, "kafka_log_log_size_limit", topic=limited, partition=0) == 1048576
    capacity = value(samples, "oxka_log_dir_capacity_bytes", log_dir=broker.data_dir)
    assert value(samples, "kafka_log_log_size_limit", topic=unlimited, partition=0) == capacity
    assert 5000 < value(samples, "kafka_log_log_size", topic=limited, partition=0) < 1048576
    assert value(samples, "kafka_server_replicamanager_underminisrpartitioncount") == before + 2
    assert value(samples, "kafka_log_logmanager_offlinelogdirectorycount") == 0
    assert value(samples, "kafka_server_replicamanager_underreplicatedpartitions") == 0
    assert value(samples, "kafka_controller_kafkacontroller_activecontrollercount") == 1
    assert value(samples, "kafka_controller_kafkacontroller_offlinepartitionscount") == 0


# ------------------------------------------------------------------ the alert rules
PROMQL_WORDS = {"by", "without", "on", "ignoring", "group_left", "group_right", "and", "or",
                "unless", "bool", "offset"}


def rules():
    with open(RULES) as f:
        doc = yaml.safe_load(f)
    return [r for g in doc["groups"] for r in g["rules"]]


def metric_names(expr):
    """Metric names a PromQL expression selects (functions, keywords, labels and strings out)."""
    expr = re.sub(r'"(?:[^"\\]|\\.)*"', "", expr)
    expr = re.sub(r"\{[^}]*\}", "", expr)
    expr = re.sub(r"\b(by|without|on|ignoring)\s*\([^)]*\)", "", expr)
    expr = re.sub(r"\[[^\]]*\]", "", expr)
    names = set()
    for m in re.finditer(r"[a-zA-Z_:][a-zA-Z0-9_:]*", expr):
        rest = expr[m.end():].lstrip()
        if m.group(0) in PROMQL_WORDS or rest.startswith("("):
            continue
        names.add(m.group(0))
    return names


def test_rule_metrics_are_in_a_scrape(broker):
    t = create_topic(broker, unique("rules"))
    produce(broker, t, [b"r"])
    c = consumer(broker)
    try:
        c.commit(offsets=[TopicPartition(t, 0, 0)], asynchronous=False)
    finally:
        c.close()
    samples, _ = scrape(broker)
    referenced = set()
    for r in rules():
        assert r["alert"] and r["expr"] and r["labels"]["severity"] in ("warning", "critical")
        referenced |= metric_names(r["expr"])
    referenced.discard("up")  # Prometheus's own series for each scrape target
    assert referenced, "no metric found in the rules"
    missing = sorted(n for n in referenced if n not in samples)
    assert not missing, "rule metrics absent from an oxka scrape: %s" % missing
    # the disk-usage division matches series one to one
    sizes = {tuple(sorted(l.items())) for l, _ in samples["kafka_log_log_size"]}
    limits = {tuple(sorted(l.items())) for l, _ in samples["kafka_log_log_size_limit"]}
    assert sizes == limits


def promtool():
    found = os.environ.get("OXKA_PROMTOOL") or shutil.which("promtool")
    local = os.path.join(TOOLS, "go", "bin", "promtool")
    return found or (local if os.path.exists(local) else None)


def test_rules_evaluate_against_a_scrape(make_broker, tmp_path):
    tool = promtool()
    if not tool:
        reason = "promtool not built (tests/setup.d/50-promtool.sh needs Go)"
        skip = os.path.join(TOOLS, "go", "promtool-skip-reason")
        if os.path.exists(skip):
            reason = open(skip).read().strip()
        pytest.skip(reason)
    b = make_broker()
    create_topic(b, unique("misr"), config={"min.insync.replicas": "2"})
    t = create_topic(b, unique("lagging"))
    produce(b, t, [b"l"] * 12000, **{"linger.ms": 50})
    g = unique("slow")
    c = consumer(b, **{"group.id": g})
    try:
        c.commit(offsets=[TopicPartition(t, 0, 0)], asynchronous=False)
    finally:
        c.close()
    samples, _ = scrape(b)
    target = {"job": "kafka-brokers", "instance": "oxka:9404"}
    series = [{"series": 'up{job="kafka-brokers",instance="oxka:9404"}', "values": "1x30"}]
    for name, points in samples.items():
        for labels, v in points:
            labels = dict(labels, **target)
            sel = ",".join('%s="%s"' % (k, labels[k].replace("\\", "\\\\").replace('"', '\\"'))
                           for k in sorted(labels))
            series.append({"series": "%s{%s}" % (name, sel), "values": "%sx30" % repr(v)})
    expected = {
        "UnderMinIsrPartitionCount": [{
            "exp_labels": dict(target, severity="warning"),
            "exp_annotations": {
                "summary": "Kafka under min ISR partitions",
                "description": "There are 1 partitions under the min ISR on oxka:9404: acks=all produce to them fails"}}],
        "KafkaConsumerLag": [{
            "exp_labels": {"consumergroup": g, "topic": t, "severity": "warning"},
            "exp_annotations": {
                "summary": "High consumer lag",
                "description": "Consumer group %s has lag of 12000 records on %s" % (g, t)}}],
    }
    alert_tests = [{"eval_time": "15m", "alertname": r["alert"], "exp_alerts": expected.get(r["alert"], [])}
                   for r in rules()]
    test = {"rule_files": [RULES], "evaluation_interval": "30s",
            "tests": [{"interval": "1m", "input_series": series, "alert_rule_test": alert_tests}]}
    path = tmp_path / "oxka-rules-test.yaml"
    path.write_text(yaml.safe_dump(test))
    r = subprocess.run([tool, "check", "rules", RULES], capture_output=True, timeout=60)
    assert r.returncode == 0, r.stdout.decode() + r.stderr.decode()
    r = subprocess.run([tool, "test", "rules", str(path)], capture_output=True, timeout=120)
    assert r.returncode == 0, r.stdout.decode() + r.stderr.decode()
