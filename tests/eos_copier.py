"""A consume-transform-produce copier for tests/test_exactly_once.py, run as a subprocess so that
the test can SIGKILL it (a crashed stream processor) and start another with the same
transactional.id.

    python3 eos_copier.py '{"bootstrap": ..., "src": ..., "dst": ..., "partitions": 3,
                            "txid": ..., "group": ..., "ends": {"0": n0, ...}, "batch": 500,
                            "deadline_s": 120}'

Each transaction reads up to `batch` records of `src` (read_committed, from the group's committed
offsets), writes each to the same partition of `dst` with the same key and value, commits the
consumer positions with send_offsets_to_transaction, and commits. An abortable error aborts
and rewinds to the committed offsets (a fresh consumer); a fatal error exits with status 3 (the
test starts a new copier), and so does a client call stuck for 20 s, with status 4 (see the
watchdog). While the file `hold_file` exists, a transaction is held open (its records flushed) before
its commit, with a "holding" line. Exits 0 once the committed offsets of every partition reach `ends`.
Prints one line per event to stdout.
"""
import faulthandler
import json
import os
import signal
import sys
import threading
import time

from confluent_kafka import Consumer, KafkaException, Producer, TopicPartition

FATAL_EXIT = 3
STUCK_EXIT = 4
STUCK_AFTER_S = 20


def log(*args):
    print("%.3f" % time.time(), *args, flush=True)


def main():
    faulthandler.register(signal.SIGUSR1)  # the test may ask where a stuck copier is
    cfg = json.loads(sys.argv[1])
    progress = [time.monotonic()]

    def watchdog():
        # A client call that never returns (a client bug) is a crash: the test starts a new
        # copier. Exits with STUCK_EXIT after dumping where it was.
        while True:
            time.sleep(1)
            if time.monotonic() - progress[0] > STUCK_AFTER_S:
                log("stuck for %ds" % STUCK_AFTER_S)
                faulthandler.dump_traceback(all_threads=True)
                os._exit(STUCK_EXIT)

    threading.Thread(target=watchdog, daemon=True).start()
    parts = [TopicPartition(cfg["src"], q) for q in range(cfg["partitions"])]
    ends = {int(q): n for q, n in cfg["ends"].items()}
    deadline = time.monotonic() + cfg.get("deadline_s", 120)
    # metadata.recovery.strategy=none: with one broker, every broker kill leaves "all brokers
    # down", and librdkafka 2.16's re-bootstrap then decommissions the broker object that its
    # group-coordinator cache still points at, so send_offsets_to_transaction() hangs past its
    # timeout (librdkafka issues #5511 and #5456). Not re-bootstrapping keeps the cache valid.
    fast = {"reconnect.backoff.ms": 20, "reconnect.backoff.max.ms": 500,
            "socket.connection.setup.timeout.ms": 3000, "log.connection.close": False,
            "metadata.recovery.strategy": "none"}
    if os.environ.get("COPIER_DEBUG"):
        fast["debug"] = os.environ["COPIER_DEBUG"]
    p = Producer(dict(fast, **{"bootstrap.servers": cfg["bootstrap"],
                               "transactional.id": cfg["txid"], "transaction.timeout.ms": 10000,
                               "message.timeout.ms": 10000, "request.timeout.ms": 3000,
                               "linger.ms": 5, "retry.backoff.ms": 50}))

    def retry(fn, what, attempts=20):
        for _ in range(attempts):
            try:
                return fn()
            except KafkaException as e:
                err = e.args[0]
                if err.fatal():
                    log("fatal", what, err)
                    sys.exit(FATAL_EXIT)
                if not err.retriable():
                    raise
                log("retry", what, err)
                time.sleep(0.2)
            assert time.monotonic() < deadline, "deadline"
        log("giving up", what)
        sys.exit(FATAL_EXIT)

    retry(lambda: p.init_transactions(15), "init")
    log("initialised")

    def new_consumer():
        c = Consumer(dict(fast, **{"bootstrap.servers": cfg["bootstrap"], "group.id": cfg["group"],
                                   "isolation.level": "read_committed", "enable.auto.commit": False,
                                   "enable.auto.offset.store": False,
                                   "auto.offset.reset": "earliest", "fetch.wait.max.ms": 100}))
        c.assign(parts)  # positions come from the committed offsets
        return c

    c = new_consumer()
    copied = 0
    for n in range(100_000):
        assert time.monotonic() < deadline, "copier deadline"
        progress[0] = time.monotonic()
        msgs = []
        for _ in range(10):
            got = [m for m in c.consume(cfg.get("batch", 500) - len(msgs), 0.2) if not m.error()]
            msgs += got
            if len(msgs) >= cfg.get("batch", 500) or (msgs and not got):
                break
        if not msgs:
            committed = retry(lambda: c.committed(parts, 10), "committed")
            if all(tp.offset >= ends[tp.partition] for tp in committed):
                log("done", copied)
                return 0
            continue
        try:
            p.begin_transaction()
            for m in msgs:
                while True:
                    try:
                        p.produce(cfg["dst"], key=m.key(), value=m.value(), partition=m.partition())
                        break
                    except BufferError:
                        p.poll(0.05)
            positions = c.position(c.assignment())
            p.send_offsets_to_transaction(positions, c.consumer_group_metadata(), 15)
            hold = cfg.get("hold_file")
            if hold and os.path.exists(hold):
                # The test wants a transaction open (its records written) while it strikes.
                if p.flush(10) == 0:
                    log("holding", n, len(msgs))
                    for _ in range(100):
                        if not os.path.exists(hold):
                            break
                        progress[0] = time.monotonic()
                        time.sleep(0.1)
            retry(lambda: p.commit_transaction(15), "commit")
            copied += len(msgs)
            log("committed", n, len(msgs), copied,
                " ".join("%d:%d" % (tp.partition, tp.offset) for tp in positions))
        except KafkaException as e:
            err = e.args[0]
            if err.fatal():
                log("fatal", err)
                return FATAL_EXIT
            if not err.txn_requires_abort() and not err.retriable():
                raise
            log("aborting", err)
            retry(lambda: p.abort_transaction(15), "abort")
            c.close()
            c = new_consumer()
    return 1


if __name__ == "__main__":
    sys.exit(main())
