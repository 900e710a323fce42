"""Exactly-once under faults (issue 4): histories of real clients checked by tests/history.py.

- an idempotent confluent-kafka producer writes 100,000 numbered records while the broker is
  SIGKILLed and SIGSTOPped: each record is in the log once, at its acknowledged offset, in send
  order;
- a transactional producer commits and aborts transactions over two topics while the broker is
  randomly SIGKILLed and SIGSTOPped, with a read_committed consumer polling throughout: no
  aborted read, no lost committed write, no duplicate; read_uncommitted sees every commit too;
- consume-transform-produce (send_offsets_to_transaction) copies 100,000 records in a
  subprocess that is SIGKILLed and replaced, while the broker is SIGKILLed too: the output,
  read_committed, is exactly one copy of the input, in order;
- idempotent producers (confluent-kafka, kafka-python) whose producer id expired on the broker
  keep producing without duplicates or gaps; kafka-python's idempotent producer across broker
  SIGKILLs.

Every loop is bounded in count and time; every fault plan is bounded. Set EOS_SEED to replay
the random fault schedule of the transactional test.
"""
import json
import os
import random
import subprocess
import sys
import threading
import time

import pytest
from confluent_kafka import KafkaError, KafkaException, TopicPartition

from history import ABORTED, COMMITTED, UNKNOWN, History, assert_valid
from kutil import consumer, create_topic, producer, unique, wait_until

HERE = os.path.dirname(os.path.abspath(__file__))

# Timed-out transactions are looked for every 200 ms instead of Kafka's 10 s.
TXN_OVERRIDES = {"transaction.abort.timed.out.transaction.cleanup.interval.ms": "200",
                 "group.initial.rebalance.delay.ms": "0"}

# librdkafka settings that make a client notice a dead or stopped broker quickly.
FAST_RECOVERY = {"request.timeout.ms": 2000, "retry.backoff.ms": 50, "retry.backoff.max.ms": 500,
                 "reconnect.backoff.ms": 20, "reconnect.backoff.max.ms": 500,
                 "socket.connection.setup.timeout.ms": 3000}


def read_to_end(b, tps, isolation, hist, name, timeout=60):
    """Reads every (topic, partition) of `tps` from offset 0 up to its end as of now (the high
    watermark, or the last stable offset for read_committed), recording each record in `hist`
    as polled by `name`. Returns {tp: end offset}."""
    c = consumer(b, **{"isolation.level": isolation, "enable.partition.eof": True,
                       "fetch.wait.max.ms": 100})
    try:
        ends = {}
        for t, p in tps:
            ends[(t, p)] = c.get_watermark_offsets(TopicPartition(t, p), timeout=10, cached=False)[1]
        c.assign([TopicPartition(t, p, 0) for t, p in tps])
        pos = {tp: 0 for tp in tps}
        deadline = time.monotonic() + timeout
        while any(pos[tp] < ends[tp] for tp in tps):
            assert time.monotonic() < deadline, "read %s of %s within %ss" % (pos, ends, timeout)
            for m in c.consume(num_messages=2000, timeout=0.5):
                tp = (m.topic(), m.partition())
                if m.error():
                    if m.error().code() == KafkaError._PARTITION_EOF:
                        pos[tp] = max(pos[tp], m.offset())
                        continue
                    raise KafkaException(m.error())
                hist.poll(m.topic(), m.partition(), m.offset(), m.value(), consumer=name)
                pos[tp] = max(pos[tp], m.offset() + 1)
        return ends
    finally:
        c.close()


def high_watermarks(b, tps):
    c = consumer(b, **{"isolation.level": "read_uncommitted"})
    try:
        return {(t, p): c.get_watermark_offsets(TopicPartition(t, p), timeout=10, cached=False)[1]
                for t, p in tps}
    finally:
        c.close()


def stable_offsets(b, tps):
    c = consumer(b, **{"isolation.level": "read_committed"})
    try:
        return {(t, p): c.get_watermark_offsets(TopicPartition(t, p), timeout=10, cached=False)[1]
                for t, p in tps}
    finally:
        c.close()


def produce_blocking(p, topic, value, partition, on_delivery, tick=None, timeout=60):
    """produce() that waits (bounded) while librdkafka's queue is full; `tick` is called while
    waiting (the fault schedule)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            p.produce(topic, value=value, partition=partition, on_delivery=on_delivery)
            return
        except BufferError:
            assert time.monotonic() < deadline, "producer queue stayed full for %ss" % timeout
            p.poll(0.02)
            if tick:
                tick()


# --------------------------------------------------------------------------- idempotence
@pytest.mark.timeout(240)
def test_idempotent_producer_100k_records_exactly_once_across_sigkills_and_sigstops(make_broker):
    """Jepsen-style: every send and every read recorded; 4 SIGKILL+restarts and 2 SIGSTOPs
    (longer than the request timeout, so librdkafka retries batches the broker already has)
    triggered by the number of acknowledgements. Each acknowledged record is read exactly once,
    at its acknowledged offset, and offsets follow send order in every partition."""
    b = make_broker()
    parts = 4
    t = create_topic(b, unique("eos-idem"), partitions=parts)
    tps = [(t, q) for q in range(parts)]
    n = 100_000
    h = History()
    acked = [0]
    errors = []

    def on_delivery(err, msg):
        if err is None:
            h.ack(msg.value(), msg.offset())
            acked[0] += 1
        else:
            errors.append(err)
            h.fail(msg.value())

    conf = dict(FAST_RECOVERY, **{"enable.idempotence": True, "acks": "all", "linger.ms": 5,
                                  "message.timeout.ms": 180000, "request.timeout.ms": 1000,
                                  "queue.buffering.max.messages": 20000})
    p = producer(b, **conf)
    plan = [(8_000, "kill"), (22_000, "stop"), (38_000, "kill"), (55_000, "stop"),
            (70_000, "kill"), (86_000, "kill")]
    done = []

    def tick():
        if len(done) < len(plan) and acked[0] >= plan[len(done)][0]:
            action = plan[len(done)][1]
            if action == "kill":
                b.restart(kill=True)
            else:
                b.pause()
                time.sleep(2.5)
                b.resume()
            done.append((acked[0], action))

    start = time.monotonic()
    for i in range(n):
        v = b"%06d" % i
        h.send(v, t, i % parts)
        produce_blocking(p, t, v, i % parts, on_delivery, tick)
        if i % 200 == 0:
            p.poll(0)
            tick()
    deadline = time.monotonic() + 180
    while len(p) > 0 and time.monotonic() < deadline:
        p.poll(0.1)
        tick()
    assert p.flush(30) == 0, "%d records still queued" % len(p)
    elapsed = time.monotonic() - start
    assert [a for _, a in done] == [a for _, a in plan], "fault plan not carried out: %s" % done
    assert not errors, errors[:5]
    assert h.counts() == {"ok": n}

    ends = read_to_end(b, tps, "read_uncommitted", h, "final")
    assert_valid(h, read_committed=False, final=True, check_order=True)
    for q in range(parts):
        sent = [s for s in h.sends if s.partition == q]
        # acknowledged offsets are 0, 1, 2, ... in send order, and nothing else is in the log
        assert [s.offset for s in sent] == list(range(len(sent)))
        assert ends[(t, q)] == len(sent) == n // parts
    print("100k idempotent: %.1fs, faults at %s" % (elapsed, done))


# --------------------------------------------------------------------------- transactions
class Faults(threading.Thread):
    """Kills (SIGKILL + restart) and stops (SIGSTOP, pause, SIGCONT) the broker at random
    moments until its plan is used up or `done` is set. Bounded: the plan is a fixed list."""

    def __init__(self, b, rnd, plan, gap=(0.5, 2.0), pause=(0.5, 2.5)):
        super().__init__(daemon=True)
        self.b, self.rnd, self.plan = b, rnd, list(plan)
        self.gap, self.pause = gap, pause
        self.done = threading.Event()
        self.carried_out = []
        self.error = None

    def run(self):
        try:
            for action in self.plan:
                if self.done.wait(self.rnd.uniform(*self.gap)):
                    return
                if action == "kill":
                    self.b.restart(kill=True)
                else:
                    self.b.pause()
                    time.sleep(self.rnd.uniform(*self.pause))
                    self.b.resume()
                self.carried_out.append((round(time.monotonic(), 2), action))
        except BaseException as e:  # noqa: BLE001 - reported by the test
            self.error = e

    def finish(self):
        self.done.set()
        self.join(60)
        assert not self.is_alive(), "fault thread did not finish"
        if self.error:
            raise self.error
        if self.b.alive():
            self.b.resume()
        self.b.assert_alive()


class Poller(threading.Thread):
    """A read_committed consumer polling `tps` from offset 0 while the workload runs; its polls
    go to its own History (merged by the test)."""

    def __init__(self, b, tps, name, isolation="read_committed"):
        super().__init__(daemon=True)
        self.hist = History()
        self.name = name
        self.c = consumer(b, **{"isolation.level": isolation, "fetch.wait.max.ms": 100,
                                "reconnect.backoff.ms": 20, "reconnect.backoff.max.ms": 500})
        self.c.assign([TopicPartition(t, p, 0) for t, p in tps])
        self.done = threading.Event()
        self.errors = []

    def run(self):
        try:
            for _ in range(100_000):  # bounded; ends when done is set
                if self.done.is_set():
                    break
                for m in self.c.consume(num_messages=500, timeout=0.2):
                    if m.error():
                        self.errors.append(m.error())
                        continue
                    self.hist.poll(m.topic(), m.partition(), m.offset(), m.value(), self.name)
        finally:
            self.c.close()

    def finish(self):
        self.done.set()
        self.join(30)
        assert not self.is_alive(), "poller did not stop"


def _new_txn_producer(b, txid):
    conf = dict(FAST_RECOVERY, **{"transactional.id": txid, "transaction.timeout.ms": 10000,
                                  "message.timeout.ms": 10000, "linger.ms": 5})
    p = producer(b, **conf)
    for attempt in range(10):  # the broker may be down or stopped at this moment
        try:
            p.init_transactions(20)
            return p
        except KafkaException as e:
            if not e.args[0].retriable() or attempt == 9:
                raise
            time.sleep(0.5)


def _retry(fn, attempts=5):
    """Calls fn until it does not raise a retriable KafkaError; returns None or the last
    (non-retriable) KafkaError."""
    for _ in range(attempts):
        try:
            fn()
            return None
        except KafkaException as e:
            err = e.args[0]
            if not err.retriable():
                return err
            time.sleep(0.2)
    return err


@pytest.mark.timeout(240)
def test_transactional_history_under_random_broker_kills_and_stops(make_broker):
    """Transactions over 3 + 2 partitions of two topics, each committed, aborted, or left
    open by a "crashed" producer (a zombie, fenced by a new producer with the same
    transactional.id), while the broker is SIGKILLed 3 times and SIGSTOPped twice (for up to
    4.5 s) at random moments, and a read_committed consumer polls all the while. Retriable
    errors are retried; a commit that still fails has an unknown outcome, decided by the reads
    (all or nothing); after a fatal error a new producer takes over. The history has no aborted
    read, no lost or unseen committed write, no duplicate, transactions are atomic, and per
    partition the records are in send order; read_uncommitted sees every committed record too."""
    seed = int(os.environ.get("EOS_SEED", random.randrange(1 << 30)))
    print("EOS_SEED=%d" % seed)
    rnd = random.Random(seed)
    b = make_broker(overrides=TXN_OVERRIDES)
    t1 = create_topic(b, unique("eos-a"), partitions=3)
    t2 = create_topic(b, unique("eos-b"), partitions=2)
    tps = [(t1, 0), (t1, 1), (t1, 2), (t2, 0), (t2, 1)]
    txid = unique("txid")
    h = History()
    p = _new_txn_producer(b, txid)
    poller = Poller(b, tps, "live")
    poller.start()
    # Stops up to 4.5 s outlast the clients' request timeout (2 s): requests are retried.
    faults = Faults(b, rnd, rnd.sample(["kill", "kill", "kill", "stop", "stop"], 5),
                    pause=(1.0, 4.5))
    faults.start()
    producers = 1
    zombies = []
    deadline = time.monotonic() + 90
    k = 0

    def on_delivery(err, msg):
        if err is None:
            h.ack(msg.value(), msg.offset())
        else:
            h.fail(msg.value())

    for k in range(2000):
        # At least 40 transactions, and on until the faults are all carried out.
        if k >= 40 and not faults.is_alive():
            break
        assert time.monotonic() < deadline, "transactions did not finish in time"
        txn = "T%03d" % k
        action = rnd.choices(["commit", "abort", "crash"], [0.65, 0.3, 0.05])[0]
        outcome = ABORTED  # unless a commit is attempted
        try:
            p.begin_transaction()
            for i in range(rnd.randint(1, 25)):
                t, q = tps[rnd.randrange(len(tps))]
                v = b"%s-%02d" % (txn.encode(), i)
                h.send(v, t, q, txn=txn)
                produce_blocking(p, t, v, q, on_delivery)
            p.poll(0)
            time.sleep(rnd.uniform(0, 0.03))  # keep transactions open a while
            if action == "commit":
                outcome = UNKNOWN
                err = _retry(lambda: p.commit_transaction(10))
                if err is not None:
                    raise KafkaException(err)
                outcome = COMMITTED
            elif action == "abort":
                err = _retry(lambda: p.abort_transaction(10))
                if err is not None:
                    raise KafkaException(err)
            else:
                # The client crashes with its transaction open: left as a zombie, while a new
                # producer with the same transactional.id fences it and aborts the transaction.
                p.flush(1)
                zombies.append(p)
                p = _new_txn_producer(b, txid)
                producers += 1
        except KafkaException as e:
            # A commit that failed may or may not have happened (the reads decide: UNKNOWN).
            err = e.args[0]
            if not (err.txn_requires_abort() and _retry(lambda: p.abort_transaction(10)) is None):
                # Fatal, or the abort failed too: a new producer with the same transactional.id
                # fences this one and aborts its open transaction.
                zombies.append(p)
                p = _new_txn_producer(b, txid)
                producers += 1
        p.poll(0)
        h.txn_outcome(txn, outcome)
    faults.finish()
    p.flush(10)
    poller.finish()

    # Every transaction is finished: the last stable offsets reach the high watermarks.
    wait_until(lambda: stable_offsets(b, tps) == high_watermarks(b, tps), 30,
               msg="LSO == high watermark")
    outcomes = {o: sum(1 for x in h.txns.values() if x == o) for o in (COMMITTED, ABORTED, UNKNOWN)}
    print("transactions %s, producers %d, faults %s, counts %s, live polls %d"
          % (outcomes, producers, faults.carried_out, h.counts(), len(poller.hist.polls)))
    assert len(faults.carried_out) == 5
    assert outcomes[COMMITTED] >= 10 and outcomes[ABORTED] >= 5
    for z in zombies:
        z.purge()

    # read_committed: the live polls plus a final read of everything.
    h.merge(poller.hist)
    read_to_end(b, tps, "read_committed", h, "final")
    assert_valid(h, read_committed=True, final=True, check_order=True, readers={"final"})
    assert not [e for e in poller.errors if e.fatal()]
    # read_uncommitted sees all committed records too, each once, in order.
    hu = h.without_polls()
    read_to_end(b, tps, "read_uncommitted", hu, "final")
    assert_valid(hu, read_committed=False, final=True, check_order=True)
    # Every committed record was read (and only those, by read_committed).
    committed = {s.value for s in h.sends if h.txns[s.txn] == COMMITTED and s.status == "ok"}
    final = {v for c, _, _, _, v in h.polls if c == "final"}
    decided = {v for v in final if h.txns[h.by_value[v].txn] == UNKNOWN}
    assert final - decided == committed


# --------------------------------------------------------------------------- consume-transform-produce
def _describe_copy(want, got):
    """What differs between the input and the output of one partition (for failure messages)."""
    seen, dups = set(), []
    for v in got:
        if v in seen:
            dups.append(v)
        seen.add(v)
    missing = [v for v in want if v not in seen]
    return "%d in, %d out, %d duplicates %r, %d missing %r" % (
        len(want), len(got), len(dups), dups[:5], len(missing), missing[:5])


@pytest.mark.timeout(280)
def test_consume_transform_produce_100k_exactly_once_across_copier_and_broker_kills(make_broker,
                                                                                    tmp_path):
    """Kafka's system-test check for exactly-once stream processing: a copier (a subprocess,
    tests/eos_copier.py) moves 100,000 records from an input to an output topic, one
    transaction per batch with send_offsets_to_transaction. It is SIGKILLed three times and
    replaced by a new copier with the same transactional.id (which fences the dead one and
    aborts its open transaction), and the broker is SIGKILLed three times; two of each kill
    strike while the copier holds a transaction open with its records written. Read
    read_committed, the output holds exactly one copy of each input record, in input order per
    partition, and the group's committed offsets are the input's ends."""
    b = make_broker(overrides=TXN_OVERRIDES)
    parts = 3
    src = create_topic(b, unique("eos-in"), partitions=parts)
    dst = create_topic(b, unique("eos-out"), partitions=parts)
    n = 100_000
    inputs = {q: [] for q in range(parts)}
    p = producer(b, **{"enable.idempotence": True, "linger.ms": 20})
    for i in range(n):
        v = b"in-%06d" % i
        inputs[i % parts].append(v)
        produce_blocking(p, src, v, i % parts, None)
        if i % 1000 == 0:
            p.poll(0)
    assert p.flush(60) == 0
    assert high_watermarks(b, [(src, q) for q in range(parts)]) == {
        (src, q): len(inputs[q]) for q in range(parts)}

    cfg = {"bootstrap": b.bootstrap, "src": src, "dst": dst, "partitions": parts,
           "txid": unique("copier"), "group": unique("copier-g"), "batch": 500,
           "ends": {str(q): len(inputs[q]) for q in range(parts)}, "deadline_s": 150}
    copiers = []

    def start_copier():
        out = open(str(tmp_path / ("copier-%d.log" % len(copiers))), "wb")
        proc = subprocess.Popen([sys.executable, os.path.join(HERE, "eos_copier.py"), json.dumps(cfg)],
                                stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                cwd=HERE)
        out.close()
        copiers.append(proc)
        return proc

    def copier_logs():
        text = []
        for i in range(len(copiers)):
            with open(str(tmp_path / ("copier-%d.log" % i)), "rb") as f:
                lines = f.read().decode("utf-8", "replace").splitlines()
            text.append("--- copier %d (rc=%s): %d lines\n%s" % (
                i, copiers[i].returncode, len(lines), "\n".join(lines[-15:])))
        return "\n".join(text)

    def lines_of(i, word):
        try:
            with open(str(tmp_path / ("copier-%d.log" % i)), "rb") as f:
                return sum(1 for line in f if (" %s " % word).encode() in line)
        except OSError:
            return 0

    # Exit statuses of a copier that the test replaces: a fatal client error (3), a client
    # call stuck for 20 s (4).
    RESTARTABLE = (3, 4)
    rnd = random.Random(int(os.environ.get("EOS_SEED", "4")))
    # (what is killed, whether a transaction is held open with its records written meanwhile)
    plan = [("copier", True), ("broker", True), ("copier", False), ("broker", False),
            ("copier", True), ("broker", True)]
    hold = str(tmp_path / "hold")
    cfg["hold_file"] = hold
    faults = []
    proc = start_copier()
    deadline = time.monotonic() + 200

    def replace_if_dead():
        if proc.poll() is None:
            return proc
        assert proc.returncode in RESTARTABLE, "copier failed:\n" + copier_logs()
        return start_copier()  # a fatal client error or a stuck client: replace it

    try:
        for target, in_txn in plan:
            # Let the current copier commit a few transactions first (bounded wait).
            want = lines_of(len(copiers) - 1, "committed") + rnd.randint(3, 12)
            for _ in range(400):
                if lines_of(len(copiers) - 1, "committed") >= want or proc.poll() is not None:
                    break
                time.sleep(0.05)
            proc = replace_if_dead()
            held = False
            if in_txn:
                # Wait (bounded) until a copier holds a transaction open, records written.
                before = lines_of(len(copiers) - 1, "holding")
                open(hold, "w").close()
                for _ in range(400):
                    if lines_of(len(copiers) - 1, "holding") > before:
                        held = True
                        break
                    if proc.poll() is not None:
                        proc = replace_if_dead()
                        before = 0
                    time.sleep(0.05)
            if target == "copier":
                proc.kill()
                proc.wait(10)
                if os.path.exists(hold):
                    os.remove(hold)
                proc = start_copier()
            else:
                b.restart(kill=True)
                if os.path.exists(hold):
                    os.remove(hold)
            faults.append((target, held, len(copiers)))
        # Let the last copier finish (a copier dying of a fatal client error is replaced).
        for _ in range(10):
            while proc.poll() is None:
                assert time.monotonic() < deadline, "copy did not finish:\n" + copier_logs()
                time.sleep(0.1)
            if proc.returncode == 0:
                break
            proc = replace_if_dead()
        assert proc.returncode == 0, copier_logs()
    finally:
        for c in copiers:
            if c.poll() is None:
                c.kill()
                c.wait(10)
    print("copiers %d, faults %s, exit codes %s" % (len(copiers), faults,
                                                   [c.returncode for c in copiers]))
    assert len(faults) == len(plan)
    assert [f[1] for f in faults] == [f[1] for f in plan], "no transaction was held: " + copier_logs()

    h = History()
    dtps = [(dst, q) for q in range(parts)]
    read_to_end(b, dtps, "read_committed", h, "final", timeout=90)
    for q in range(parts):
        got = [v for _, t, part, _, v in sorted(h.polls, key=lambda x: x[3]) if part == q]
        assert got == inputs[q], "partition %d: %s" % (q, _describe_copy(inputs[q], got))
    # read_uncommitted also sees the aborted work of the killed copiers.
    hu = History()
    read_to_end(b, dtps, "read_uncommitted", hu, "final", timeout=90)
    print("output: %d committed, %d records in the log" % (len(h.polls), len(hu.polls)))
    # at least the two transactions open when their copier was killed were aborted
    assert len(hu.polls) > n
    assert {v for *_, v in hu.polls} == {v for q in inputs.values() for v in q}
    c = consumer(b, **{"group.id": cfg["group"]})
    try:
        committed = c.committed([TopicPartition(src, q) for q in range(parts)], timeout=10)
        assert {tp.partition: tp.offset for tp in committed} == {
            q: len(inputs[q]) for q in range(parts)}
    finally:
        c.close()


# --------------------------------------------------------------------------- expiry, kafka-python
def active_producers(b, topic, partition):
    """DescribeProducers v0: [(producer id, epoch, last sequence)] of a partition."""
    import kwire
    from kafka.protocol.admin import DescribeProducersRequest
    TR = DescribeProducersRequest.TopicRequest
    s = kwire.connect(b)
    try:
        r = kwire.request(s, DescribeProducersRequest, 0,
                          topics=[TR(name=topic, partition_indexes=[partition])])
        part = r.topics[0].partitions[0]
        assert part.error_code == 0, part
        return [(x.producer_id, x.producer_epoch, x.last_sequence) for x in part.active_producers]
    finally:
        s.close()


class KafkaPythonSender:
    """kafka-python's idempotent producer behind confluent-kafka's produce/flush calls: futures
    resolved at flush() call `on_delivery(err, offset)`."""

    def __init__(self, b, **conf):
        from kutil import kp_producer
        self.p = kp_producer(b, **conf)
        self.pending = []

    def produce(self, topic, value, partition, on_delivery):
        self.pending.append((value, self.p.send(topic, value=value, partition=partition),
                             on_delivery))

    def flush(self, timeout):
        from kafka.errors import KafkaError as KPError
        self.p.flush(timeout)
        for value, f, cb in self.pending:
            try:
                cb(None, value, f.get(timeout=timeout).offset)
            except KPError as e:
                cb(e, value, None)
        self.pending = []
        return 0

    def close(self):
        self.p.close(5)


@pytest.mark.timeout(120)
@pytest.mark.parametrize("client", ["confluent", "kafka-python"])
def test_idempotent_producer_keeps_going_after_its_producer_id_expires(make_broker, client):
    """producer.id.expiration.ms=1000: between rounds the broker forgets the producer
    (DescribeProducers shows no active producer), so the next batch, with a sequence > 0, is
    from a producer the partition has no state for. Kafka (since 2.5) accepts it; the
    idempotent producer of librdkafka and of kafka-python must carry on: every record
    acknowledged once, no duplicate, no gap, in send order."""
    b = make_broker(overrides={"producer.id.expiration.ms": "1000",
                               "log.retention.check.interval.ms": "200"})
    parts = 2
    t = create_topic(b, unique("eos-expire"), partitions=parts)
    tps = [(t, q) for q in range(parts)]
    h = History()
    errors = []

    def on_delivery(err, value, offset):
        if err is None:
            h.ack(value, offset)
        else:
            errors.append(err)
            h.fail(value)

    if client == "confluent":
        p = producer(b, **{"enable.idempotence": True, "acks": "all", "linger.ms": 5,
                           "message.timeout.ms": 30000})
        send = lambda v, q: produce_blocking(  # noqa: E731
            p, t, v, q, lambda err, msg: on_delivery(err, msg.value(), msg.offset()))
    else:
        p = KafkaPythonSender(b, enable_idempotence=True, acks="all", linger_ms=5)
        send = lambda v, q: p.produce(t, v, q, on_delivery)  # noqa: E731
    rounds, per_round = 4, 300
    expired_rounds = 0
    try:
        for r in range(rounds):
            for i in range(per_round):
                v = b"r%d-%04d" % (r, i)
                h.send(v, t, i % parts)
                send(v, i % parts)
            assert p.flush(30) == 0
            assert not errors, "round %d: %r" % (r, errors[:3])
            assert [s.status for s in h.sends].count("ok") == (r + 1) * per_round
            if r < rounds - 1:
                pid = active_producers(b, t, 0)
                assert len(pid) == 1 and pid[0][2] >= 0, pid
                # Idle past producer.id.expiration.ms: the broker forgets the producer.
                wait_until(lambda: all(active_producers(b, t, q) == [] for q in range(parts)),
                           10, msg="producer state expired")
                expired_rounds += 1
    finally:
        if client != "confluent":
            p.close()
    assert expired_rounds == rounds - 1
    read_to_end(b, tps, "read_uncommitted", h, "final")
    assert_valid(h, read_committed=False, final=True, check_order=True)
    for q in range(parts):
        sent = [s for s in h.sends if s.partition == q]
        assert [s.offset for s in sent] == list(range(len(sent)))
    assert high_watermarks(b, tps) == {tp: rounds * per_round // parts for tp in tps}


@pytest.mark.timeout(120)
def test_kafka_python_idempotent_producer_exactly_once_across_broker_kills_and_a_stop(make_broker):
    """kafka-python 3 with enable_idempotence=True sends 20,000 numbered records while
    a thread SIGKILLs and restarts the broker twice, and SIGSTOPs it once for longer than the
    request timeout, with records in flight; every future
    resolves, each record is in the log once at the offset its future reported, in send
    order."""
    from kafka.errors import KafkaError as KPError
    b = make_broker()
    parts = 2
    t = create_topic(b, unique("eos-kp"), partitions=parts)
    tps = [(t, q) for q in range(parts)]
    h = History()
    kp = __import__("kutil").kp_producer(b, enable_idempotence=True, acks="all", linger_ms=5,
                                         retries=1000, retry_backoff_ms=50,
                                         reconnect_backoff_ms=20, reconnect_backoff_max_ms=500,
                                         request_timeout_ms=1500, delivery_timeout_ms=60000)
    n = 20000
    futures = []
    kills = []
    stop = threading.Event()

    def killer():
        for threshold, action in ((4000, "kill"), (9000, "stop"), (14000, "kill")):
            for _ in range(3000):  # bounded: at most ~30 s per fault
                if stop.is_set():
                    return
                done = sum(1 for _, f in list(futures) if f.is_done)
                if done >= threshold:
                    break
                time.sleep(0.01)
            kills.append((done, len(futures), action))
            if action == "kill":
                b.restart(kill=True)
            else:
                # Longer than the request timeout: requests the broker has are sent again.
                b.pause()
                time.sleep(2.5)
                b.resume()

    k = threading.Thread(target=killer, daemon=True)
    k.start()
    try:
        for i in range(n):
            v = b"kp-%05d" % i
            h.send(v, t, i % parts)
            futures.append((v, kp.send(t, value=v, partition=i % parts)))
        k.join(60)
        assert not k.is_alive()
        kp.flush(60)
        errors = []
        for v, f in futures:
            try:
                md = f.get(timeout=30)
                h.ack(v, md.offset)
            except KPError as e:
                errors.append((v, e))
                h.fail(v)
        assert not errors, errors[:5]
    finally:
        stop.set()
        kp.close(5)
    print("kafka-python: (done, sent, fault): %s" % kills)
    assert [a for _, _, a in kills] == ["kill", "stop", "kill"]
    assert any(done < sent for done, sent, _ in kills), "nothing was in flight at the faults"
    read_to_end(b, tps, "read_uncommitted", h, "final")
    assert_valid(h, read_committed=False, final=True, check_order=True)
    for q in range(parts):
        sent = [s for s in h.sends if s.partition == q]
        assert [s.offset for s in sent] == list(range(len(sent)))
    assert high_watermarks(b, tps) == {tp: n // parts for tp in tps}
