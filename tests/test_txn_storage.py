"""Transaction state on disk, in Kafka's files: every aborted transaction is recorded in the
`.txnindex` of the segment holding its abort marker, and the producer state is snapshotted
(`<offset>.snapshot`) when the log rolls and at a clean shutdown. After a SIGKILL the broker
rebuilds from the newest snapshot, the indexes and the log after the snapshot, and
read_committed consumers still see exactly the committed records; idempotent retries are
still recognised."""
import os
import struct

from kutil import create_topic, unique
from test_transactions import OVERRIDES, read_all, txn_producer


def partition_dir(b, topic, partition=0):
    return os.path.join(b.data_dir, "%s-%d" % (topic, partition))


def files(b, topic, ext):
    d = partition_dir(b, topic)
    return sorted(f for f in os.listdir(d) if f.endswith(ext))


def txnindex_entries(b, topic):
    """(producer id, first offset, marker offset) of every .txnindex entry, in segment order."""
    out = []
    for name in files(b, topic, ".txnindex"):
        with open(os.path.join(partition_dir(b, topic), name), "rb") as f:
            data = f.read()
        assert len(data) % 34 == 0, name
        for i in range(0, len(data), 34):
            version, pid, first, last, _lso = struct.unpack(">hqqqq", data[i:i + 34])
            assert version == 0
            out.append((pid, first, last))
    return out


def test_aborts_are_indexed_and_state_is_rebuilt_from_snapshots_after_sigkill(make_broker):
    b = make_broker(overrides=OVERRIDES)
    topic = create_topic(b, unique("txs"), partitions=1, config={"segment.bytes": "2048"})
    p = txn_producer(b, unique("tid"))
    committed, aborted = [], []
    for t in range(24):
        values = [b"t%02d-%02d" % (t, i) for i in range(8)]
        p.begin_transaction()
        for v in values:
            p.produce(topic, value=v, partition=0)
        p.flush(10)
        if t % 3 == 2:
            p.abort_transaction(20)
            aborted += values
        else:
            p.commit_transaction(20)
            committed += values
    segments = files(b, topic, ".log")
    assert len(segments) >= 3, segments
    # One .txnindex entry per aborted transaction, each in its marker's segment.
    entries = txnindex_entries(b, topic)
    assert len(entries) == 8, entries
    bases = [int(s.split(".")[0]) for s in segments]
    for name in files(b, topic, ".txnindex"):
        base = int(name.split(".")[0])
        nxt = min([x for x in bases if x > base], default=1 << 62)
        with open(os.path.join(partition_dir(b, topic), name), "rb") as f:
            data = f.read()
        for i in range(0, len(data), 34):
            _, _, first, last, _ = struct.unpack(">hqqqq", data[i:i + 34])
            assert base <= last < nxt and first < last
    # Rolls left producer snapshots named by segment base offsets.
    snaps = [int(s.split(".")[0]) for s in files(b, topic, ".snapshot")]
    assert snaps and set(snaps) <= set(bases), (snaps, bases)

    b.kill()
    b.start()
    got = read_all(b, [(topic, 0)], "read_committed", expect=len(committed))
    assert [v for _, v in got[(topic, 0)]] == committed
    everything = read_all(b, [(topic, 0)], "read_uncommitted", expect=len(committed) + len(aborted))
    assert sorted(v for _, v in everything[(topic, 0)]) == sorted(committed + aborted)
    # The same producer carries on after the restart (its epoch was restored).
    p.begin_transaction()
    p.produce(topic, value=b"after", partition=0)
    p.commit_transaction(20)
    p.flush(10)

    # A clean shutdown snapshots at the log end: the next start replays nothing.
    b.stop()
    end = max(int(s.split(".")[0]) for s in files(b, topic, ".snapshot"))
    b.start()
    got = read_all(b, [(topic, 0)], "read_committed", expect=len(committed) + 1)
    assert [v for _, v in got[(topic, 0)]] == committed + [b"after"]
    from test_transactions import watermarks
    assert watermarks(b, topic)[1] == end
    assert txnindex_entries(b, topic) == entries
