"""A Kafka Streams 4.1.1 application against the broker: a word count with
processing.guarantee=exactly_once_v2 (transactional producer per thread, offsets committed in its
transactions), a repartition topic (groupBy) and a state store with its changelog (count()).
tests/java/src/OxkaStreamsWordCount.java; the output counts are asserted exactly.  About 30-60 s.
"""
import collections
import json
import os
import re

import pytest

import kafkaref
import kutil

pytestmark = pytest.mark.skipif(kafkaref.java_programs_skip_reason() is not None,
                                reason=kafkaref.java_programs_skip_reason() or "")

BROKER_OVERRIDES = {"group.initial.rebalance.delay.ms": "0"}

LINES = [
    "the quick brown fox jumps over the lazy dog",
    "The dog barks; the fox runs",
    "a quick brown dog",
    "exactly once, exactly the same counts",
] * 5


@pytest.mark.timeout(300)  # JVM start-ups on a loaded 2-core machine
def test_word_count_exactly_once_v2(broker, tmp_path):
    app = kutil.unique("wc")
    src = kutil.create_topic(broker, kutil.unique("wc-in"), partitions=3)
    out = kutil.create_topic(broker, kutil.unique("wc-out"), partitions=2)
    # keyed lines spread over the three input partitions
    for i, line in enumerate(LINES):
        kutil.produce(broker, src, [{"key": b"line-%d" % i, "value": line.encode()}], partition=i % 3)
    expected = collections.Counter(w for l in LINES for w in re.split(r"\W+", l.lower()) if w)
    r = kafkaref.run_java("OxkaStreamsWordCount",
                          [broker.bootstrap, app, src, out, str(len(expected)), str(tmp_path / "state")],
                          timeout=200, heap="384m")
    res = json.loads([l for l in r.stdout.splitlines() if l.startswith("{")][-1])
    assert res["errors"] == []
    assert res["state"] == "RUNNING"
    assert res["counts"] == dict(expected)
    # with the store's cache off each input word yields one update; EOS: none twice
    assert res["output_records"] == sum(expected.values())
    internal = res["internal_topics"]
    assert internal.get("by-word-repartition") == "delete", internal
    assert internal.get("word-counts-changelog") == "compact", internal
    # a third-party read_committed consumer agrees on the output
    c = kutil.consumer(broker, **{"isolation.level": "read_committed"})
    try:
        from confluent_kafka import TopicPartition
        c.assign([TopicPartition(out, p, 0) for p in range(2)])
        last = {}
        n = 0
        for _ in range(100):
            for m in c.consume(100, 0.5):
                assert m.error() is None
                last[m.key().decode()] = int.from_bytes(m.value(), "big", signed=True)
                n += 1
            if n >= sum(expected.values()):
                break
        assert last == dict(expected)
    finally:
        c.close()
