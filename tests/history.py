"""A history checker for queue-like Kafka workloads, in the style of Jepsen's Kafka workload.

A test records what its clients did:

- every send: the value (unique across the history), topic, partition, the transaction it
  belongs to (if any) and its outcome: acknowledged at an offset, definitely failed, or unknown
  (e.g. the delivery report never came or was a timeout);
- the outcome of every transaction: committed, aborted or unknown;
- every record a consumer polled: topic, partition, offset, value.

`check(history, ...)` then looks for these anomalies (each a dict with a `type`):

- ``duplicate``: a value seen at two different (topic, partition, offset) positions (or
  acknowledged at one offset and read at another);
- ``inconsistent-offset``: two different values at one (topic, partition, offset), between
  polls or between a poll and an acknowledgement;
- ``lost-write``: an acknowledged (and, in a transaction, committed) record that no poll saw
  although a poll saw a later offset of that partition;
- ``aborted-read``: a record of an aborted transaction, or a definitely failed send, read by a
  read_committed consumer (a definitely failed send must never be read at all);
- ``unseen``: (``final=True``) an acknowledged, committed record nobody read, although the
  reads were supposed to cover the whole log;
- ``partial-transaction``: some but not all acknowledged records of a transaction were read by
  a reader that covered them (atomicity; this is how an ``unknown`` transaction is decided:
  if any of its records is read, it committed);
- ``unexpected``: a value read that was never sent;
- ``order``: (``check_order=True``) within a partition, values read in offset order are not in
  the order they were sent (meaningful with one producer per partition);
- ``offset-order``: one consumer's polls of a partition went backwards or repeated an offset
  without a seek (recorded per consumer with `poll(..., consumer=...)`).

The checker is pure Python with no client imports, so that it can be tested on hand-made
histories (tests/test_history.py).
"""
import collections

OK = "ok"
FAIL = "fail"  # definitely not written
UNKNOWN = "unknown"

COMMITTED = "committed"
ABORTED = "aborted"


class Send:
    __slots__ = ("index", "value", "topic", "partition", "txn", "status", "offset")

    def __init__(self, index, value, topic, partition, txn):
        self.index = index
        self.value = value
        self.topic = topic
        self.partition = partition
        self.txn = txn
        self.status = UNKNOWN
        self.offset = None

    @property
    def tp(self):
        return (self.topic, self.partition)

    def __repr__(self):
        return "Send(#%d %r %s[%s] txn=%s %s@%s)" % (self.index, self.value, self.topic,
                                                    self.partition, self.txn, self.status,
                                                    self.offset)


class History:
    """What the clients did. Not thread-safe by itself: each thread may keep its own History
    and `merge` them, or the caller serialises (confluent-kafka delivery callbacks run in the
    thread calling poll/flush)."""

    def __init__(self):
        self.sends = []
        self.by_value = {}
        self.txns = {}
        # (consumer, topic, partition, offset, value) in the order polled
        self.polls = []

    # ---- sends
    def send(self, value, topic, partition, txn=None):
        if value in self.by_value:
            raise ValueError("value %r sent twice: the checker needs unique values" % (value,))
        s = Send(len(self.sends), value, topic, partition, txn)
        self.sends.append(s)
        self.by_value[value] = s
        if txn is not None:
            self.txns.setdefault(txn, UNKNOWN)
        return s

    def ack(self, value, offset, partition=None):
        s = self.by_value[value]
        s.status, s.offset = OK, offset
        if partition is not None:
            s.partition = partition

    def fail(self, value, definite=False):
        s = self.by_value[value]
        s.status = FAIL if definite else UNKNOWN
        s.offset = None

    def txn_outcome(self, txn, outcome):
        assert outcome in (COMMITTED, ABORTED, UNKNOWN), outcome
        self.txns[txn] = outcome

    # ---- polls
    def poll(self, topic, partition, offset, value, consumer="c"):
        self.polls.append((consumer, topic, partition, offset, value))

    def without_polls(self):
        """A History with the same sends and transaction outcomes and no polls (to check the
        reads of another isolation level against the same writes)."""
        h = History()
        h.sends, h.by_value, h.txns = self.sends, self.by_value, self.txns
        return h

    def merge(self, other):
        for c, t, p, o, v in other.polls:
            self.polls.append((c, t, p, o, v))

    # ---- summaries
    def acknowledged(self):
        return [s for s in self.sends if s.status == OK]

    def counts(self):
        c = collections.Counter(s.status for s in self.sends)
        c.update("txn-" + o for o in self.txns.values())
        return dict(c)


def check(history, read_committed=True, final=True, check_order=False, readers=None):
    """Returns the list of anomalies (empty when the history is valid).

    read_committed: the polls come from read_committed consumers (aborted records must not be
    read, and the atomicity of transactions can be checked).
    final: the polls are supposed to cover every partition up to its end (after all sends and
    transactions finished), so every acknowledged, committed record must have been read.
    check_order: values in a partition must be read in send order.
    readers: which consumers (the `consumer` given to `poll`) count for `final` and atomicity;
    default all.
    """
    h = history
    anomalies = []

    # What was read where.
    at = collections.defaultdict(set)     # (t, p, o) -> {values}
    where = collections.defaultdict(set)  # value -> {(t, p, o)}
    max_offset = {}                       # (t, p) -> highest offset read
    seen_by_readers = set()
    last_offset = {}                      # (consumer, t, p) -> last offset read
    for consumer, t, p, o, v in h.polls:
        at[(t, p, o)].add(v)
        where[v].add((t, p, o))
        max_offset[(t, p)] = max(max_offset.get((t, p), -1), o)
        if readers is None or consumer in readers:
            seen_by_readers.add(v)
        prev = last_offset.get((consumer, t, p))
        if prev is not None and o <= prev:
            anomalies.append({"type": "offset-order", "consumer": consumer, "tp": (t, p),
                              "offset": o, "after": prev})
        last_offset[(consumer, t, p)] = o

    # Acknowledgements are observations too.
    for s in h.sends:
        if s.status == OK:
            pos = (s.topic, s.partition, s.offset)
            if pos in at and s.value not in at[pos]:
                anomalies.append({"type": "inconsistent-offset", "tp": s.tp, "offset": s.offset,
                                  "values": sorted(at[pos] | {s.value}, key=repr),
                                  "acknowledged": s.value})
            if where.get(s.value) and pos not in where[s.value]:
                anomalies.append({"type": "duplicate", "value": s.value,
                                  "positions": sorted(where[s.value] | {pos}),
                                  "acknowledged_at": pos})

    for pos, vals in sorted(at.items(), key=lambda kv: repr(kv[0])):
        if len(vals) > 1:
            anomalies.append({"type": "inconsistent-offset", "tp": pos[:2], "offset": pos[2],
                              "values": sorted(vals, key=repr)})
    for v, positions in sorted(where.items(), key=lambda kv: repr(kv[0])):
        if len(positions) > 1:
            anomalies.append({"type": "duplicate", "value": v, "positions": sorted(positions)})
        if v not in h.by_value:
            anomalies.append({"type": "unexpected", "value": v, "positions": sorted(positions)})

    # Transactions: decide unknown ones by what was read, check atomicity.
    by_txn = collections.defaultdict(list)
    for s in h.sends:
        if s.txn is not None:
            by_txn[s.txn].append(s)
    outcome = dict(h.txns)
    for txn, sends in by_txn.items():
        acked = [s for s in sends if s.status == OK]
        read = [s for s in sends if s.value in where]
        if read_committed and outcome.get(txn) == UNKNOWN and read:
            outcome[txn] = COMMITTED
        if read_committed and outcome.get(txn) != ABORTED and read:
            # A reader that covered a record of the transaction must see all of it.
            missing = [s for s in acked if s.value not in where
                       and max_offset.get(s.tp, -1) > s.offset]
            if missing:
                anomalies.append({"type": "partial-transaction", "txn": txn,
                                  "read": [s.value for s in read],
                                  "missing": [s.value for s in missing]})

    def committed(s):
        return s.txn is None or outcome.get(s.txn) == COMMITTED

    for s in h.sends:
        read = s.value in where
        if read and s.status == FAIL:
            anomalies.append({"type": "aborted-read", "value": s.value, "why": "send failed",
                              "positions": sorted(where[s.value])})
        elif read and read_committed and s.txn is not None and outcome.get(s.txn) == ABORTED:
            anomalies.append({"type": "aborted-read", "value": s.value, "txn": s.txn,
                              "positions": sorted(where[s.value])})
        if s.status != OK or not committed(s) or read:
            continue
        if max_offset.get(s.tp, -1) > s.offset:
            anomalies.append({"type": "lost-write", "value": s.value, "tp": s.tp,
                              "offset": s.offset, "max_read": max_offset[s.tp]})
        elif final:
            anomalies.append({"type": "unseen", "value": s.value, "tp": s.tp, "offset": s.offset})
    if final and readers is not None:
        for s in h.sends:
            if (s.status == OK and committed(s) and s.value in where
                    and s.value not in seen_by_readers):
                anomalies.append({"type": "unseen", "value": s.value, "tp": s.tp,
                                  "offset": s.offset, "readers": sorted(readers)})

    if check_order:
        for tp in sorted({(t, p) for t, p, _ in at}, key=repr):
            ordered = sorted((o, v) for (t, p, o), vals in at.items() if (t, p) == tp
                             for v in vals)
            prev = None
            for o, v in ordered:
                s = h.by_value.get(v)
                if s is None:
                    continue
                if prev is not None and s.index < prev[2].index:
                    anomalies.append({"type": "order", "tp": tp, "offset": o, "value": v,
                                      "after": (prev[0], prev[1])})
                prev = (o, v, s)
    return anomalies


def summarize(anomalies, limit=10):
    """A short text for assertion messages: counts per type and the first few of each."""
    if not anomalies:
        return "no anomalies"
    by_type = collections.defaultdict(list)
    for a in anomalies:
        by_type[a["type"]].append(a)
    lines = []
    for t, items in sorted(by_type.items()):
        lines.append("%s: %d" % (t, len(items)))
        for a in items[:limit]:
            lines.append("    %r" % (a,))
    return "\n".join(lines)


def assert_valid(history, **kw):
    anomalies = check(history, **kw)
    assert not anomalies, "history anomalies (%s):\n%s" % (history.counts(), summarize(anomalies))
