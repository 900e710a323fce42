"""Go clients against the broker: franz-go (kgo + kadm) and IBM sarama, pinned by tests/go/go.mod,
built by tests/setup.d/30-go.sh into target/go-bin/oxka-go-client.  Each scenario prints one JSON
object that these tests assert on: produce/consume round trips with their offsets, and a
two-member consumer group with its commits.  Under OXKA_TARGET=kafka they run against Kafka.
"""
import json
import os
import shutil
import subprocess

import pytest

import kutil

HERE = os.path.dirname(os.path.abspath(__file__))
BIN = os.path.join(os.path.dirname(HERE), "target", "go-bin", "oxka-go-client")


def _skip_reason():
    if not os.path.exists(BIN):
        if shutil.which("go") is None:
            return "no Go toolchain: `go` is not installed (tests/setup.d/30-go.sh skipped the Go clients)"
        return "the Go clients are not built in %s (run tests/setup.d/30-go.sh)" % BIN
    return None


pytestmark = pytest.mark.skipif(_skip_reason() is not None, reason=_skip_reason() or "")

BROKER_OVERRIDES = {"group.initial.rebalance.delay.ms": "0"}


def scenario(*args, timeout=110):
    r = subprocess.run([BIN] + [str(a) for a in args], capture_output=True, text=True, timeout=timeout)
    assert r.returncode == 0, "oxka-go-client %s failed rc=%d\nstdout=%s\nstderr=%s" % (
        " ".join(map(str, args)), r.returncode, r.stdout[-3000:], r.stderr[-3000:])
    return json.loads(r.stdout.strip().splitlines()[-1])


def expected_roundtrip(n):
    return [{"partition": p, "offset": i, "key": "k%d" % i, "value": "p%d-v%d" % (p, i)}
            for p in range(2) for i in range(n)]


def test_franz_go_roundtrip(broker):
    t = kutil.unique("franz")
    out = scenario("franz-roundtrip", broker.bootstrap, t, 25)
    assert out["produced"] == expected_roundtrip(25)
    assert out["consumed"] == expected_roundtrip(25)
    assert out["end_offsets"] == {"0": 25, "1": 25}
    assert "TOPIC_ALREADY_EXISTS" in out["create_again"]
    # librdkafka reads the same records
    got = kutil.consume(broker, t, 25, partition=1)
    assert [(m.offset(), m.key(), m.value()) for m in got] == \
        [(i, b"k%d" % i, b"p1-v%d" % i) for i in range(25)]


def test_sarama_roundtrip(broker):
    t = kutil.unique("sarama")
    out = scenario("sarama-roundtrip", broker.bootstrap, t, 25)
    assert out["partitions"] == 2
    assert out["produced"] == expected_roundtrip(25)
    assert out["consumed_p1"] == expected_roundtrip(25)[25:]
    assert out["headers"] == ["h=%d" % i for i in range(25)]
    assert (out["p0_oldest"], out["p0_newest"]) == (0, 25)
    assert "Topic with this name already exists" in out["create_again"]


def check_group(out, partitions, n):
    a0, a1 = (m["assignment"] for m in out["members"])
    assert a0 and a1 and not set(a0) & set(a1) and sorted(a0 + a1) == list(range(partitions))
    seen = sorted((r["partition"], r["offset"], r["value"]) for m in out["members"] for r in m["records"])
    assert seen == [(p, i, "p%d-%d" % (p, i)) for p in range(partitions) for i in range(n)]
    for m in out["members"]:  # both joined before the records were produced
        assert {r["partition"] for r in m["records"]} <= set(m["assignment"])
    assert out["committed"] == {str(p): n for p in range(partitions)}


def test_franz_go_group(broker):
    t = kutil.create_topic(broker, kutil.unique("franzg"), partitions=4)
    g = kutil.unique("fg")
    out = scenario("franz-group", broker.bootstrap, t, g, 6)
    check_group(out, 4, 6)
    assert out["state_while_consuming"] == "Stable"
    assert out["total_lag"] == 0


def test_sarama_group(broker):
    t = kutil.create_topic(broker, kutil.unique("saramag"), partitions=4)
    g = kutil.unique("sg")
    out = scenario("sarama-group", broker.bootstrap, t, g, 6)
    check_group(out, 4, 6)
    assert out["state_after_close"] == "Empty"
