"""kafkajs (Node, version pinned in tests/package.json) against oxka: topic admin and its errors,
produce/consume with keys, headers and gzip, a consumer group that splits, grows and shrinks,
committed offsets across a broker SIGKILL, and the group admin APIs.

Each scenario is a Node script in tests/js/ that prints one JSON line of observations; the
assertions are here.  `npm ci` in tests/ (tests/run.sh does it) installs kafkajs."""
import json
import os
import shutil
import struct
import subprocess
import time

import pytest
from confluent_kafka import Consumer, KafkaError, TopicPartition
from confluent_kafka import ConsumerGroupTopicPartitions

from kutil import admin, consume, create_topic, data_files, produce, unique, wait_until

BROKER_OVERRIDES = {"group.initial.rebalance.delay.ms": "0"}

HERE = os.path.dirname(os.path.abspath(__file__))
JS = os.path.join(HERE, "js")
NODE = shutil.which("node")

pytestmark = pytest.mark.skipif(NODE is None, reason="node is not installed")


def need_kafkajs():
    if not os.path.isdir(os.path.join(HERE, "node_modules", "kafkajs")):
        if shutil.which("npm") is None:  # a fresh machine without npm: tests/run.sh skipped it
            pytest.skip("npm is not installed: kafkajs could not be installed (tests/run.sh skipped it)")
        pytest.fail("kafkajs is not installed: run `npm ci` in tests/ (tests/run.sh does)")


def run_js(script, timeout=100, **args):
    """Run tests/js/<script>.js with `args` as JSON; return its JSON result."""
    need_kafkajs()
    env = dict(os.environ, KAFKAJS_NO_PARTITIONER_WARNING="1")
    try:
        r = subprocess.run([NODE, os.path.join(JS, script + ".js"), json.dumps(args)],
                           capture_output=True, timeout=timeout, env=env, cwd=HERE)
    except subprocess.TimeoutExpired as e:
        raise AssertionError("%s timed out after %ss\nstderr:\n%s" % (
            script, timeout, (e.stderr or b"").decode("utf-8", "replace")[-6000:]))
    err = r.stderr.decode("utf-8", "replace")
    if r.returncode != 0:
        raise AssertionError("%s exited %d\nstdout:\n%s\nstderr:\n%s" % (
            script, r.returncode, r.stdout.decode("utf-8", "replace"), err[-6000:]))
    lines = r.stdout.decode().strip().splitlines()
    assert lines, "%s printed nothing\nstderr:\n%s" % (script, err[-3000:])
    return json.loads(lines[-1])


def batch_codecs(b, topic, partition):
    """Compression codec (attributes & 7) of every record batch in a partition's segments."""
    out = []
    for name in data_files(b, topic, partition):
        with open(os.path.join(b.data_dir, "%s-%d" % (topic, partition), name), "rb") as f:
            data = f.read()
        pos = 0
        while pos + 23 <= len(data):
            length = struct.unpack(">i", data[pos + 8:pos + 12])[0]
            if length <= 0:
                break
            out.append(struct.unpack(">h", data[pos + 21:pos + 23])[0] & 7)
            pos += 12 + length
    return out


def committed(b, group, topic, partitions):
    res = admin(b).list_consumer_group_offsets(
        [ConsumerGroupTopicPartitions(group, [TopicPartition(topic, p) for p in partitions])])
    return [tp.offset for tp in res[group].result(15).topic_partitions]


# ------------------------------------------------------------------ admin
def test_admin_topics_and_errors(broker):
    prefix = unique("kjs")
    r = run_js("admin_topics", bootstrap=broker.bootstrap, prefix=prefix)
    assert r["created"] is True
    # kafkajs turns TOPIC_ALREADY_EXISTS into `false`, also when another topic was created
    assert r["createdAgain"] is False
    assert r["createMixed"] is False
    both = r["createExistingAndInvalid"]
    assert both["name"] == "KafkaJSAggregateError"
    assert sorted(both["types"]) == ["INVALID_TOPIC_EXCEPTION", "TOPIC_ALREADY_EXISTS"]
    for case, (typ, code) in {
        "createInvalidName": ("INVALID_TOPIC_EXCEPTION", 17),
        "createBadRf": ("INVALID_REPLICATION_FACTOR", 38),
        "createBadPartitions": ("INVALID_PARTITIONS", 37),
        "createBadConfig": ("INVALID_CONFIG", 40),
    }.items():
        assert (r[case]["type"], r[case]["code"], r[case]["types"]) == (typ, code, [typ]), (case, r[case])
    assert r["validateOnly"] is True
    # validate-only and failed creations created nothing
    assert r["listed"] == sorted(prefix + s for s in ("-one", "-three", "-two"))
    assert r["metadata"] == [
        {"name": prefix + "-one",
         "partitions": [{"partitionId": 0, "partitionErrorCode": 0, "leader": 1, "replicas": [1],
                         "isr": [1]}]},
        {"name": prefix + "-three",
         "partitions": [{"partitionId": p, "partitionErrorCode": 0, "leader": 1, "replicas": [1],
                         "isr": [1]} for p in range(3)]},
    ]
    assert (r["metadataUnknown"]["type"], r["metadataUnknown"]["code"]) == ("UNKNOWN_TOPIC_OR_PARTITION", 3)
    assert r["retentionMs"] == [["retention.ms", "123456"]]
    assert r["partitionsAfterGrow"] == [0, 1, 2, 3, 4]
    assert (r["shrink"]["type"], r["shrink"]["code"]) == ("INVALID_PARTITIONS", 37)
    assert (r["growUnknown"]["type"], r["growUnknown"]["code"]) == ("UNKNOWN_TOPIC_OR_PARTITION", 3)
    assert r["cluster"] == {"brokers": [{"nodeId": 1, "host": "127.0.0.1", "port": broker.port}],
                            "controller": 1, "clusterIdIsString": True}
    assert r["listedAfterDelete"] == [prefix + "-three"]
    assert r["deleteUnknown"]["name"] == "KafkaJSNumberOfRetriesExceeded"
    assert (r["deleteUnknown"]["type"], r["deleteUnknown"]["code"]) == ("UNKNOWN_TOPIC_OR_PARTITION", 3)
    # the other clients see the same topics
    md = admin(broker).list_topics(timeout=10)
    assert sorted(t for t in md.topics if t.startswith(prefix)) == [prefix + "-three"]
    assert len(md.topics[prefix + "-three"].partitions) == 5


# ------------------------------------------------------------------ produce / consume
def test_produce_keys_headers_gzip_and_consume_from_beginning(broker):
    # explicit 2023 timestamps: retention.ms=-1 keeps the retention thread off these records
    topic = create_topic(broker, unique("kjs"), partitions=2, config={"retention.ms": "-1"})
    r = run_js("produce_consume", bootstrap=broker.bootstrap, topic=topic, group=unique("g"))
    assert r["sendResults"] == [
        [{"partition": 0, "errorCode": 0, "baseOffset": "0"}],
        [{"partition": 1, "errorCode": 0, "baseOffset": "0"}],
        [{"partition": 1, "errorCode": 0, "baseOffset": "5"}],
    ]
    got = r["consumed"]
    assert [(m["partition"], m["offset"]) for m in got] == (
        [(0, str(i)) for i in range(5)] + [(1, str(i)) for i in range(7)])
    for i, m in enumerate(got[:5]):
        assert (m["key"], m["value"], m["timestamp"]) == ("k%d" % i, "v%d" % i, str(1700000000000 + i))
        assert m["headers"] == {"h": "hv%d" % i, "multi": ["x", "y"]}
    for i, m in enumerate(got[5:10]):
        assert (m["key"], m["value"], m["headers"]) == ("g%d" % i, ("gzip-%d-" % i) * 20, {})
    assert (got[10]["key"], got[10]["value"]) == (None, "no-key")
    assert (got[11]["key"], got[11]["value"]) == ("tomb", None)
    # stored as sent: one uncompressed batch in partition 0, the gzip batch first in partition 1
    assert batch_codecs(broker, topic, 0) == [0]
    codecs = batch_codecs(broker, topic, 1)
    assert codecs[0] == 1 and len(codecs) >= 2, codecs
    assert r["topicOffsets"] == [{"partition": 0, "offset": "5", "high": "5", "low": "0"},
                                 {"partition": 1, "offset": "7", "high": "7", "low": "0"}]
    assert r["offsetsByTimestamp"] == [{"partition": 0, "offset": "2"}, {"partition": 1, "offset": "0"}]
    assert r["topicOffsetsAfterDelete"] == [{"partition": 0, "offset": "5", "high": "5", "low": "3"},
                                            {"partition": 1, "offset": "7", "high": "7", "low": "0"}]
    assert (r["deleteBeyondEnd"]["type"], r["deleteBeyondEnd"]["code"]) == ("OFFSET_OUT_OF_RANGE", 1)
    # librdkafka reads kafkajs' records (header order, repeated keys, null key / value) alike
    ms = consume(broker, topic, 2, partition=0, offset=3)  # 0-2 were deleted above
    assert [m.headers() for m in ms] == [[("h", b"hv%d" % i), ("multi", b"x"), ("multi", b"y")]
                                         for i in (3, 4)]
    ms = consume(broker, topic, 2, partition=1, offset=5)
    assert [(m.key(), m.value()) for m in ms] == [(None, b"no-key"), (b"tomb", None)]


# ------------------------------------------------------------------ consumer groups
def test_group_three_members_fourth_joins_one_leaves(broker):
    topic = create_topic(broker, unique("kjs"), partitions=6)
    group = unique("g")
    r = run_js("group_members", bootstrap=broker.bootstrap, topic=topic, group=group, partitions=6)
    stages = {s["label"]: s for s in r["stages"]}
    expected_sizes = {"three": [2, 2, 2], "four": [1, 1, 2, 2], "left": [2, 2, 2]}
    for label, sizes in expected_sizes.items():
        s = stages[label]
        assert (s["state"], s["protocolType"], s["protocol"]) == ("Stable", "consumer", "RoundRobinAssigner")
        asg = [m["assignment"] for m in s["members"]]
        flat = [p for a in asg for p in a]
        assert sorted(flat) == list(range(6)), (label, asg)  # all covered, none owned twice
        assert sorted(len(a) for a in asg) == sizes, (label, asg)
        # each member consumed exactly the markers of the partitions it owns, once each
        for m in s["members"]:
            assert m["markers"] == m["assignment"], (label, m)
        assert len({m["memberId"] for m in s["members"]}) == len(s["members"])
    four = {m["name"]: m for m in stages["four"]["members"]}
    assert four["m4"]["assignment"], "the fourth member got partitions"
    left = r["left"]
    assert left["partitions"] == four[left["name"]]["assignment"]
    survivors = {m["name"]: m for m in stages["left"]["members"]}
    assert left["name"] not in survivors and len(survivors) == 3
    # the survivors kept their member ids and between them own the leaver's partitions
    assert all(survivors[n]["memberId"] == four[n]["memberId"] for n in survivors)
    owned = {p for m in survivors.values() for p in m["assignment"]}
    assert set(left["partitions"]) <= owned
    d = admin(broker).describe_consumer_groups([group])[group].result(15)
    assert d.state.name == "EMPTY" and not d.members


def test_commit_and_resume_across_broker_sigkill(make_broker):
    b = make_broker(overrides=dict(BROKER_OVERRIDES))
    topic = create_topic(b, unique("kjs"), partitions=3)
    for p in range(3):
        produce(b, topic, [b"p%d-%d" % (p, i) for i in range(10)], partition=p)
    group = unique("g")
    common = dict(bootstrap=b.bootstrap, topic=topic, group=group, total=30, perPartition=10,
                  commits={"0": 4, "1": 7})
    r = run_js("commit_resume", mode="commit", **common)
    assert [(m["partition"], m["offset"], m["value"]) for m in r["records"]] == [
        (p, i, "p%d-%d" % (p, i)) for p in range(3) for i in range(10)]
    assert r["committed"] == [{"partition": 0, "offset": "4", "metadata": None},
                              {"partition": 1, "offset": "7", "metadata": None},
                              {"partition": 2, "offset": "-1", "metadata": None}]
    b.restart(kill=True)
    assert committed(b, group, topic, range(3)) == [4, 7, -1001]
    r = run_js("commit_resume", mode="resume", **common)
    # resumes at the commits; the partition without one starts from the beginning
    assert [(m["partition"], m["offset"], m["value"]) for m in r["records"]] == (
        [(0, i, "p0-%d" % i) for i in range(4, 10)] + [(1, i, "p1-%d" % i) for i in range(7, 10)]
        + [(2, i, "p2-%d" % i) for i in range(10)])
    assert [c["offset"] for c in r["committed"]] == ["10", "10", "10"]
    assert committed(b, group, topic, range(3)) == [10, 10, 10]


def test_group_admin_fetch_set_reset_describe_list_delete(broker):
    topic = create_topic(broker, unique("kjs"), partitions=3)
    for p in range(3):
        produce(broker, topic, [b"x%d" % i for i in range(5)], partition=p)
    group = unique("g")
    r = run_js("group_admin", bootstrap=broker.bootstrap, topic=topic, group=group)

    def offs(key):
        assert [t["topic"] for t in r[key]] == [topic], r[key]
        return [(p, o) for p, o, _meta in r[key][0]["partitions"]]

    assert offs("beforeAnyCommit") == [(0, "-1"), (1, "-1"), (2, "-1")]
    assert r["unknownGroupDescribed"] == [
        {"groupId": group + "-never", "errorCode": 0, "state": "Dead", "members": 0}]
    assert offs("committed") == [(0, "5"), (1, "4"), (2, "3")]
    live = r["describedLive"]
    assert (live["groupId"], live["errorCode"], live["state"], live["protocolType"], live["protocol"]) == (
        group, 0, "Stable", "consumer", "RoundRobinAssigner")
    assert live["members"] == [{"clientId": "oxka-group-admin", "clientHost": "/127.0.0.1",
                                "assignment": {topic: [0, 1, 2]}, "subscription": [topic]}]
    assert r["listedLive"] == [{"groupId": group, "protocolType": "consumer"}]
    assert (r["deleteLive"]["name"], r["deleteLive"]["type"], r["deleteLive"]["code"]) == (
        "KafkaJSDeleteGroupsError", "NON_EMPTY_GROUP", 68)
    # kafkajs itself refuses to reset the offsets of a group with members (it describes it first)
    assert "must have no running instances, current state: Stable" in r["resetLive"]["message"]
    empty = r["describedEmpty"]
    assert (empty["state"], empty["protocolType"], empty["protocol"], empty["members"]) == (
        "Empty", "consumer", "", [])
    assert offs("afterSetOffsets") == [(0, "1"), (1, "2"), (2, "3")]
    assert offs("afterResetEarliest") == [(0, "-2"), (1, "-2"), (2, "-2")]
    assert offs("resolvedEarliest") == [(0, "0"), (1, "0"), (2, "0")]
    assert offs("afterResolve") == [(0, "0"), (1, "0"), (2, "0")]
    assert r["listedEmpty"] == [{"groupId": group, "protocolType": "consumer"}]
    assert r["deleted"] == [{"groupId": group, "errorCode": 0}]
    assert r["listedAfterDelete"] == []
    assert offs("afterDelete") == [(0, "-1"), (1, "-1"), (2, "-1")]
    assert (r["deleteAgain"]["type"], r["deleteAgain"]["code"]) == ("GROUP_ID_NOT_FOUND", 69)


class NodeMember:
    """tests/js/member.js in its own process: one kafkajs member, its JSON lines read without
    blocking."""

    def __init__(self, b, topic, group, **args):
        env = dict(os.environ, KAFKAJS_NO_PARTITIONER_WARNING="1")
        args = dict(bootstrap=b.bootstrap, topic=topic, group=group, lifetimeMs=60000, **args)
        self.proc = subprocess.Popen([NODE, os.path.join(JS, "member.js"), json.dumps(args)],
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                     stdin=subprocess.DEVNULL, env=env, cwd=HERE)
        os.set_blocking(self.proc.stdout.fileno(), False)
        self.buf = b""
        self.events = []

    def poll(self):
        self.buf += self.proc.stdout.read() or b""
        *lines, self.buf = self.buf.split(b"\n")
        self.events += [json.loads(line) for line in lines if line.strip()]
        return self.events

    def assignment(self):
        joins = [e for e in self.poll() if e["event"] == "join"]
        return joins[-1]["assignment"] if joins else None

    def kill(self):
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(10)


def test_sigkilled_member_expires_and_foreign_protocol_is_refused(broker):
    topic = create_topic(broker, unique("kjs"), partitions=4)
    group = unique("g")
    need_kafkajs()
    a, b = NodeMember(broker, topic, group), NodeMember(broker, topic, group)
    try:
        wait_until(lambda: sorted([len(a.assignment() or []), len(b.assignment() or [])]) == [2, 2]
                   and sorted(a.assignment() + b.assignment()) == [0, 1, 2, 3], 30, interval=0.05,
                   msg="two kafkajs members split 2/2")
        # a librdkafka member offering only "range" cannot join a group whose members all speak
        # kafkajs' "RoundRobinAssigner": INCONSISTENT_GROUP_PROTOCOL, and the group is undisturbed
        c = Consumer({"bootstrap.servers": broker.bootstrap, "group.id": group,
                      "partition.assignment.strategy": "range", "log.connection.close": False})
        c.subscribe([topic])
        err = None
        try:
            for _ in range(100):
                m = c.poll(0.1)
                if m is not None and m.error():
                    err = m.error()
                    break
        finally:
            c.close()
        assert err is not None and err.code() == KafkaError.INCONSISTENT_GROUP_PROTOCOL, err
        assert sorted(a.assignment() + b.assignment()) == [0, 1, 2, 3]
        joins_a = len([e for e in a.poll() if e["event"] == "join"])
        # SIGKILL b (no LeaveGroup): after its 6 s session expires, a owns all four partitions
        b.kill()
        t0 = time.monotonic()
        wait_until(lambda: a.assignment() == [0, 1, 2, 3], 30, interval=0.05,
                   msg="survivor takes over the killed member's partitions")
        assert time.monotonic() - t0 >= 3, "taken over before the session could expire"
        assert len([e for e in a.poll() if e["event"] == "join"]) == joins_a + 1
        assert not [e for e in a.poll() if e["event"] == "crash"]
        d = admin(broker).describe_consumer_groups([group])[group].result(15)
        assert d.state.name == "STABLE" and len(d.members) == 1
    finally:
        a.kill()
        b.kill()
