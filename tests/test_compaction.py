"""Issue 3, log compaction: on a `cleanup.policy=compact` topic, keys written many times and
deleted (tombstones) end up, after the cleaner has run, as exactly the latest record per key
at its original offset; tombstones go after delete.retention.ms; offsets never change."""
import time

import pytest
from confluent_kafka import KafkaError, TopicPartition

from kutil import consumer, create_topic, data_files, produce, unique, wait_until, watermarks

OVERRIDES = {"log.retention.check.interval.ms": "200"}
KEYS = 20
ROUNDS = 5
DELETED = {3, 7, 11}


def compacted_topic(b, prefix, **config):
    conf = {
        "cleanup.policy": "compact",
        "segment.bytes": "1024",
        "segment.ms": "1500",  # the last records leave the active segment and become cleanable
        "min.cleanable.dirty.ratio": "0.01",
        "delete.retention.ms": "500",
    }
    conf.update(config)
    return create_topic(b, unique(prefix), config=conf)


def write_history(b, t, compression="none"):
    """KEYS keys written ROUNDS times, then tombstones for DELETED. Returns key -> (offset, value)
    of each key's last record (value None for a tombstone) and the log end offset."""
    msgs = [{"key": b"key-%d" % k, "value": b"value-%d-round-%d" % (k, r)}
            for r in range(ROUNDS) for k in range(KEYS)]
    msgs += [{"key": b"key-%d" % k, "value": None} for k in sorted(DELETED)]
    delivered = produce(b, t, msgs, **{"compression.type": compression, "linger.ms": 2,
                                       "batch.size": 1000})
    latest = {}
    for m in delivered:
        latest[m.key()] = (m.offset(), m.value())
    assert [m.offset() for m in delivered] == list(range(len(msgs)))
    return latest, len(msgs)


def read_all(b, t):
    """Every record from offset 0 to the end of the partition, as (offset, key, value)."""
    c = consumer(b, **{"enable.partition.eof": True})
    try:
        c.assign([TopicPartition(t, 0, 0)])
        out = []
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            for m in c.consume(num_messages=500, timeout=0.5):
                if m.error():
                    if m.error().code() == KafkaError._PARTITION_EOF:
                        return out
                    raise AssertionError(m.error())
                out.append((m.offset(), m.key(), m.value()))
        raise AssertionError("no end of partition within 20 s")
    finally:
        c.close()


def expected_records(latest, keep_tombstones):
    return sorted((off, key, val) for key, (off, val) in latest.items()
                  if val is not None or keep_tombstones)


@pytest.mark.parametrize("compression", ["none", "lz4", "gzip"])
def test_compaction_keeps_the_latest_value_per_key_at_its_offset(make_broker, compression):
    b = make_broker(overrides=OVERRIDES)
    t = compacted_topic(b, "compact")
    latest, end = write_history(b, t, compression)
    if compression == "none":
        assert len(data_files(b, t)) >= 3  # compressed, the history may fit one segment
    want = expected_records(latest, keep_tombstones=False)

    def compacted():
        return read_all(b, t) == want
    wait_until(compacted, 30, 0.5, msg="compaction to leave only the latest value per key")
    # Offsets never move: the log still starts at 0 and ends where it ended.
    assert watermarks(b, t) == (0, end)
    # The log itself shrank.
    got = read_all(b, t)
    assert len(got) == KEYS - len(DELETED)
    assert all(v == b"value-%d-round-%d" % (int(k.split(b"-")[1]), ROUNDS - 1) for _, k, v in got)

    # Writes go on after compaction, at the next offset; a restart keeps the compacted log.
    [m] = produce(b, t, [{"key": b"key-0", "value": b"after"}])
    assert m.offset() == end
    b.restart()
    got = read_all(b, t)
    assert got[-1] == (end, b"key-0", b"after")
    # The cleaner may already have dropped key-0's older value, superseded by "after".
    assert got[:-1] in (want, [r for r in want if r[1] != b"key-0"])


def test_tombstones_are_kept_until_delete_retention_ms(make_broker):
    b = make_broker(overrides=OVERRIDES)
    t = compacted_topic(b, "tomb", **{"delete.retention.ms": "86400000"})
    latest, end = write_history(b, t)
    want = expected_records(latest, keep_tombstones=True)
    wait_until(lambda: read_all(b, t) == want, 30, 0.5,
               msg="compaction to leave the latest record per key, tombstones included")
    tombstones = [(o, k) for o, k, v in read_all(b, t) if v is None]
    assert tombstones == sorted((latest[b"key-%d" % k][0], b"key-%d" % k) for k in DELETED)
    assert watermarks(b, t) == (0, end)


def test_the_active_segment_and_delete_topics_are_left_alone(make_broker):
    b = make_broker(overrides=OVERRIDES)
    # Without segment.ms the last records stay in the active segment: keys whose older values
    # are only superseded there keep them (Kafka never cleans the active segment).
    t = compacted_topic(b, "active", **{"segment.ms": "604800000", "segment.bytes": "1048576"})
    msgs = [{"key": b"k", "value": b"v%d" % i} for i in range(50)]
    produce(b, t, msgs)
    time.sleep(1.5)
    assert len(read_all(b, t)) == 50
    # A plain delete-policy topic is never compacted.
    d = create_topic(b, unique("plain"), config={"segment.bytes": "4096", "segment.ms": "1000"})
    produce(b, d, msgs, **{"batch.size": 1000})
    time.sleep(2)
    assert len(read_all(b, d)) == 50
