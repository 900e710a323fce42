#!/usr/bin/env python3
"""Partition replication (RF 3) figures, Oxka and Apache Kafka 4.1.1 side by side, from the same
client code: a 3-node cluster (tests/cluster.py: every node broker+controller on loopback, fresh
work dir), one implementation after the other, never both at once. Each round of each
implementation runs on one fresh cluster:

  1. throughput: confluent-kafka producer (linger.ms=5, batch.size at its default) into a
     6-partition topic, replication factor 3, min.insync.replicas=2, acks=all and acks=1, with
     100 B and 1 KiB values: records/s and MB/s (first produce() to last delivery report), and
     p50/p99 delivery latency (produce() -> delivery callback) over every --sample-th record.
     The producer enqueues as fast as it can, so the latency is mostly time queued in the
     client (queue depth / throughput), not one request's round trip. --warmup N first sends
     N x 100 B and N/3 x 1 KiB untimed (a fresh JVM's JIT is cold; oxka has nothing to warm);
  2. leader failover: an idempotent acks=all producer writes a numbered sequence at --rate
     records/s to a 1-partition RF 3 topic (min.insync.replicas=2); after --before s the
     partition leader gets SIGKILL (case "kill") or SIGTERM (case "term", a controlled shutdown);
     the figure is the longest gap between two consecutive successful deliveries (the
     client-visible outage). Afterwards the topic is read from the beginning: every acknowledged
     number must be there exactly once;
  3. catch-up (after the "kill" case, the node still down): --catchup records of
     --catchup-size B are written to the same partition (acks=all, 2 of 3 in the ISR); then the
     killed node is restarted, and the time from its spawn until that partition's ISR is 3 again
     (raw Metadata v9 isr_nodes from the leader, polled every 10 ms) is the figure; also from
     "the restarted node serves" (oxka: port accepts; Kafka: "Kafka Server started" logged).

Every wait is bounded; every process started is killed at the end (also on error).

    OXKA_KAFKA_LIBS=/work/main/target/kafka-libs \\
    /work/main/target/venv/bin/python benches/replication_bench.py --oxka /tmp/oxka-bench \\
        --impls oxka,kafka --rounds 2 --json /tmp/repl.json
"""

import argparse
import json
import os
import shutil
import signal
import statistics
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tests"))
import cluster as tcluster  # noqa: E402
import kwire  # noqa: E402

LOADAVG = []


def log(msg):
    print(msg, file=sys.stderr, flush=True)


def loadavg():
    with open("/proc/loadavg") as f:
        return [float(x) for x in f.read().split()[:3]]


def phase(name):
    la = loadavg()
    LOADAVG.append({"phase": name, "loadavg": la, "utc": time.strftime("%H:%M:%S", time.gmtime())})
    log(f"== {name} (loadavg {la[0]:.2f} {la[1]:.2f} {la[2]:.2f})")
    return la


def pct(values, p):
    v = sorted(values)
    return v[min(len(v) - 1, max(0, round(p / 100.0 * len(v) + 0.5) - 1))]


def ms(s):
    return round(s * 1000.0, 1)


# ---------------------------------------------------------------- probes
def partitions_of(node, topic):
    """{partition: (leader, sorted isr, replicas)} from node's raw Metadata v9, None on error."""
    from kafka.protocol.metadata import MetadataRequest
    try:
        r = tcluster.Probe(node.port, timeout=2).call(
            MetadataRequest, 9, topics=[MetadataRequest.MetadataRequestTopic(name=topic)],
            allow_auto_topic_creation=False, include_cluster_authorized_operations=False,
            include_topic_authorized_operations=False)
    except Exception:  # noqa: BLE001 - a node down or not ready: no answer
        return None
    for t in r.topics:
        if t.name == topic and t.error_code == 0 and t.partitions:
            return {p.partition_index: (p.leader_id, sorted(p.isr_nodes), list(p.replica_nodes))
                    for p in t.partitions}
    return None


def active_controller(c):
    """The metadata quorum's leader from DescribeQuorum where a node serves it (Kafka), else
    Metadata's controller_id (oxka, which has no DescribeQuorum at this commit)."""
    for n in c.live():
        try:
            q = n.probe.quorum_leader()
            return q if q is not None else n.probe.metadata(topics=[])[1]
        except Exception:  # noqa: BLE001 - try the next node
            pass
    return None


def bounded(what, fn, timeout, interval=0.05):
    deadline = time.monotonic() + timeout
    last = None
    while True:
        last = fn()
        if last:
            return last
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what}: not within {timeout}s (last {last!r})")
        time.sleep(interval)


def admin(c):
    from confluent_kafka.admin import AdminClient
    return AdminClient({"bootstrap.servers": c.bootstrap(), "socket.timeout.ms": 5000, "log_level": 2})


def create_topic(c, name, partitions, timeout=60):
    """RF 3, min.insync.replicas=2; waits until every live node shows every partition led with
    an ISR of 3."""
    from confluent_kafka.admin import NewTopic
    a = admin(c)  # held: a dropped client cancels its futures
    fut = a.create_topics([NewTopic(name, partitions, 3, config={"min.insync.replicas": "2"})],
                                 operation_timeout=timeout, request_timeout=timeout)[name]
    fut.result(timeout=timeout + 5)

    def ready():
        for n in c.live():
            ps = partitions_of(n, name)
            if not ps or len(ps) != partitions or any(l < 0 or len(isr) != 3 for l, isr, _ in ps.values()):
                return False
        return True

    bounded(f"{name} led with ISR 3 everywhere", ready, timeout)


# ---------------------------------------------------------------- 1. throughput
def throughput(c, topic, acks, records, size, sample):
    from confluent_kafka import Producer
    p = Producer({"bootstrap.servers": c.bootstrap(), "acks": acks, "linger.ms": 5,
                  "compression.type": "none", "queue.buffering.max.messages": 1000000,
                  "queue.buffering.max.kbytes": 1048576, "message.timeout.ms": 120000,
                  "log_level": 2})
    failed = []
    lat = []

    def plain(err, _m):
        if err is not None:
            failed.append(err)

    def timed(t):
        def cb(err, _m):
            if err is not None:
                failed.append(err)
            else:
                lat.append(time.perf_counter() - t)
        return cb

    value = b"x" * size
    t0 = time.perf_counter()
    for i in range(records):
        while True:
            try:
                if i % sample == 0:
                    p.produce(topic, value, on_delivery=timed(time.perf_counter()))
                else:
                    p.produce(topic, value, on_delivery=plain)
                break
            except BufferError:
                p.poll(0.001)
        if i % 1000 == 0:
            p.poll(0)
    left = p.flush(300)
    dt = time.perf_counter() - t0
    if left or failed:
        raise RuntimeError(f"{left} undelivered, {len(failed)} failed: {failed[:3]}")
    return {"acks": acks, "records": records, "size": size, "seconds": round(dt, 2),
            "records_s": round(records / dt), "mb_s": round(records * size / dt / 1e6, 1),
            "p50_ms": ms(pct(lat, 50)), "p99_ms": ms(pct(lat, 99)), "max_ms": ms(max(lat)),
            "sampled": len(lat)}


# ---------------------------------------------------------------- 2. failover
def leader_of(c, topic, partition=0, exclude=()):
    for n in c.live():
        if n.node_id in exclude:
            continue
        ps = partitions_of(n, topic)
        if ps and ps[partition][0] >= 0 and ps[partition][0] not in exclude:
            return ps[partition][0]
    return None


def failover(c, topic, how, rate, before, after, max_s):
    """Numbered values at `rate`/s; SIGKILL/SIGTERM the leader after `before` s; keep producing
    until deliveries have resumed for `after` s (at most `max_s` s in all)."""
    from confluent_kafka import Producer
    victim_id = bounded("leader", lambda: leader_of(c, topic), 30)
    victim = c.node(victim_id)
    p = Producer({"bootstrap.servers": c.bootstrap(), "acks": "all", "enable.idempotence": True,
                  "linger.ms": 5, "message.timeout.ms": 120000, "log_level": 2})
    acked, errors, times = [], [], []

    def cb(err, msg):
        if err is not None:
            errors.append(str(err))
        else:
            times.append(time.perf_counter())
            acked.append(int(msg.value()))

    # warm-up: the producer's bootstrap, metadata and PID (not in the measurement)
    p.produce(topic, b"-1", partition=0, on_delivery=lambda e, m: None)
    p.flush(30)
    sent = 0
    t_signal = None
    scanned, prev, big, resumed_at = 0, 0.0, 0.0, None
    t0 = time.perf_counter()
    while True:
        now = time.perf_counter()
        due = int((now - t0) * rate)
        while sent < due:
            try:
                p.produce(topic, str(sent).encode(), partition=0, on_delivery=cb)
                sent += 1
            except BufferError:
                break
        p.poll(0.001)
        if t_signal is None and now - t0 >= before:
            t_signal = time.perf_counter()
            victim._signal(signal.SIGKILL if how == "kill" else signal.SIGTERM)  # no wait here
            prev = times[-1] if times else t_signal
        if t_signal is not None:
            # incremental: the largest gap between deliveries since the signal, and its end
            while scanned < len(times):
                t = times[scanned]
                if t > t_signal and t - prev > big:
                    big, resumed_at = t - prev, t
                prev = t
                scanned += 1
            if resumed_at is not None and now - resumed_at > after and now - t_signal > 1 \
                    and times and now - times[-1] < 0.5:
                break
        if now - t0 > max_s:
            break
    left = p.flush(130)
    stopped = victim._reap(60)
    if not stopped:
        victim.kill()
    # the longest gap between consecutive successful deliveries, and where it was
    gaps = [(b - a, a) for a, b in zip(times, times[1:])]
    gap, gap_at = max(gaps) if gaps else (0, t0)
    normal = [g for g, _ in gaps if g < 0.1]
    return victim, {"how": how, "victim": victim_id,
                    "victim_was_controller": None,
                    "sent": sent, "acked": len(acked), "errors": len(errors), "error_sample": errors[:3],
                    "undelivered_after_flush": left, "victim_exited": stopped,
                    "max_gap_ms": ms(gap), "gap_starts_after_signal_ms": ms(gap_at - t_signal),
                    "signal_to_first_delivery_after_gap_ms": ms(gap_at + gap - t_signal),
                    "median_gap_ms": ms(statistics.median(normal)) if normal else None,
                    "acked_values": acked}


def verify(c, topic, acked, timeout=120):
    """Reads partition 0 from the beginning up to its high watermark: every acknowledged number
    exactly once (unacknowledged ones may be there at most once)."""
    from confluent_kafka import Consumer, TopicPartition, OFFSET_BEGINNING
    cons = Consumer({"bootstrap.servers": c.bootstrap(), "group.id": f"verify-{topic}-{time.time()}",
                     "enable.auto.commit": False, "log_level": 2, "fetch.max.bytes": 52428800})
    try:
        lo, hi = cons.get_watermark_offsets(TopicPartition(topic, 0), timeout=30)
        cons.assign([TopicPartition(topic, 0, OFFSET_BEGINNING)])
        counts = {}
        pos = lo
        deadline = time.monotonic() + timeout
        while pos < hi and time.monotonic() < deadline:
            for m in cons.consume(10000, 1.0):
                if m.error():
                    continue
                pos = m.offset() + 1
                v = m.value()
                if v and v[:1].isdigit():
                    k = int(v)
                    counts[k] = counts.get(k, 0) + 1
        missing = [k for k in acked if counts.get(k, 0) == 0]
        dup_acked = [k for k in acked if counts.get(k, 0) > 1]
        dup_any = [k for k, n in counts.items() if n > 1]
        return {"high_watermark": hi, "read_to": pos, "complete_read": pos >= hi,
                "acked": len(acked), "missing_acked": len(missing), "missing_sample": missing[:5],
                "duplicated_acked": len(dup_acked), "duplicated_any": len(dup_any),
                "unacked_present": len([k for k in counts if k not in set(acked)]),
                "ok": pos >= hi and not missing and not dup_any}
    finally:
        cons.close()


# ---------------------------------------------------------------- 3. catch-up
def fill(c, topic, records, size):
    from confluent_kafka import Producer
    p = Producer({"bootstrap.servers": c.bootstrap(*[n.node_id for n in c.live()]), "acks": "all",
                  "linger.ms": 5, "message.timeout.ms": 120000, "queue.buffering.max.kbytes": 1048576,
                  "log_level": 2})
    failed = []
    value = b"c" * size
    t0 = time.perf_counter()
    for i in range(records):
        while True:
            try:
                p.produce(topic, value, partition=0, on_delivery=lambda e, m: e and failed.append(e))
                break
            except BufferError:
                p.poll(0.001)
        if i % 1000 == 0:
            p.poll(0)
    left = p.flush(300)
    if left or failed:
        raise RuntimeError(f"catch-up fill: {left} undelivered, {len(failed)} failed {failed[:3]}")
    return round(time.perf_counter() - t0, 2)


def catch_up(c, topic, victim, timeout=300):
    leader = c.node(bounded("leader", lambda: leader_of(c, topic, exclude=(victim.node_id,)), 30))
    ps = partitions_of(leader, topic)
    isr_before = ps[0][1]
    t0 = time.perf_counter()
    victim.start()
    t_serving = None
    deadline = time.monotonic() + timeout
    while True:
        now = time.perf_counter()
        if t_serving is None and victim.started():
            t_serving = now
        ps = partitions_of(leader, topic)
        if ps and len(ps[0][1]) == 3:
            t_isr = time.perf_counter()
            break
        if not victim.alive():
            raise RuntimeError(f"restarted node {victim.node_id} exited")
        if time.monotonic() > deadline:
            raise TimeoutError(f"ISR of {topic} not 3 within {timeout}s (last {ps})")
        time.sleep(0.01)
    if t_serving is None:
        t_serving = t_isr
    return {"victim": victim.node_id, "leader": leader.node_id, "isr_before": isr_before,
            "spawn_to_serving_ms": ms(t_serving - t0), "spawn_to_isr3_ms": ms(t_isr - t0),
            "serving_to_isr3_ms": ms(t_isr - t_serving)}


def restart_and_wait_isr(c, topic, victim, timeout=300):
    victim.start()
    leader = c.node(bounded("leader", lambda: leader_of(c, topic, exclude=(victim.node_id,)), 30))
    bounded(f"{topic} ISR 3", lambda: (partitions_of(leader, topic) or {0: (0, [], [])})[0][1] == [1, 2, 3],
            timeout, 0.05)
    c.wait_ready(timeout=timeout)


# ---------------------------------------------------------------- one round
def one_round(impl, args, rnd):
    work = tempfile.mkdtemp(prefix=f"oxka-rbench-{impl}-")
    c = tcluster.Cluster(impl, work, n=3, oxka_bin=args.oxka)
    out = {"impl": impl, "round": rnd, "throughput": [], "failover": [], "catchup": None}
    try:
        la = phase(f"{impl} round {rnd}: start cluster")
        t0 = time.monotonic()
        c.start()
        out["start_s"] = round(time.monotonic() - t0, 1)
        out["controller"] = active_controller(c)
        create_topic(c, "tput", 6)
        if args.warmup:  # untimed: a JVM's JIT (and page cache, connections) warm before the figures
            la = phase(f"{impl} round {rnd}: warm-up {args.warmup} x 100 B + {args.warmup // 3} x 1 KiB, acks=all")
            out["warmup"] = [throughput(c, "tput", "all", args.warmup, 100, args.sample),
                             throughput(c, "tput", "all", args.warmup // 3, 1024, args.sample)]
        for size, records in ((100, args.records_100), (1024, args.records_1k)):
            for acks in ("all", "1"):
                la = phase(f"{impl} round {rnd}: throughput {size} B acks={acks}")
                r = throughput(c, "tput", acks, records, size, args.sample)
                r["loadavg"] = la
                log(json.dumps(r))
                out["throughput"].append(r)
        for how in ("kill", "term"):
            topic = f"fo-{how}"
            create_topic(c, topic, 1)
            ctrl = active_controller(c)
            la = phase(f"{impl} round {rnd}: failover {how}")
            victim, r = failover(c, topic, how, args.rate, args.before, args.after, args.max_failover)
            r["victim_was_controller"] = ctrl == victim.node_id
            r["loadavg"] = la
            acked = r.pop("acked_values")
            if how == "kill":
                phase(f"{impl} round {rnd}: catch-up fill {args.catchup} x {args.catchup_size} B")
                fill_s = fill(c, topic, args.catchup, args.catchup_size)
                la = phase(f"{impl} round {rnd}: catch-up restart")
                cu = catch_up(c, topic, victim)
                cu.update({"records": args.catchup, "size": args.catchup_size, "fill_s": fill_s,
                           "loadavg": la})
                log(json.dumps(cu))
                out["catchup"] = cu
                c.wait_ready(timeout=c.ready_timeout)
            else:
                restart_and_wait_isr(c, topic, victim)
            r["verify"] = verify(c, topic, acked)
            log(json.dumps(r))
            out["failover"].append(r)
        return out
    except Exception:
        log(c.log_tails(40))
        raise
    finally:
        c.close()
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--oxka", default="target/release/oxka")
    ap.add_argument("--impls", default="oxka,kafka")
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--records-100", type=int, default=300000)
    ap.add_argument("--records-1k", type=int, default=100000)
    ap.add_argument("--sample", type=int, default=100, help="time every n-th record's delivery")
    ap.add_argument("--rate", type=int, default=2000, help="failover producer, records/s")
    ap.add_argument("--before", type=float, default=3.0, help="s of producing before the signal")
    ap.add_argument("--after", type=float, default=3.0, help="s of producing after deliveries resume")
    ap.add_argument("--max-failover", type=float, default=90.0)
    ap.add_argument("--catchup", type=int, default=200000)
    ap.add_argument("--catchup-size", type=int, default=1024)
    ap.add_argument("--warmup", type=int, default=0,
                    help="untimed acks=all records (100 B, then a third as many 1 KiB) before case 1")
    ap.add_argument("--json")
    ap.add_argument("--keep", action="store_true")
    args = ap.parse_args()
    args.oxka = os.path.abspath(args.oxka)
    res = {"command": " ".join(sys.argv), "date": time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime()),
           "rounds": [], "loadavg": LOADAVG}
    try:
        for rnd in range(1, args.rounds + 1):
            for impl in args.impls.split(","):
                res["rounds"].append(one_round(impl, args, rnd))
                if args.json:
                    with open(args.json, "w") as f:
                        json.dump(res, f, indent=2)
    finally:
        res["end"] = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime())
        if args.json:
            with open(args.json, "w") as f:
                json.dump(res, f, indent=2)
    print_table(res)


def print_table(res):
    impls = []
    for r in res["rounds"]:
        if r["impl"] not in impls:
            impls.append(r["impl"])

    def rows(impl):
        return [r for r in res["rounds"] if r["impl"] == impl]

    def cell(xs, fmt="{:,.0f}"):
        if not xs:
            return "-"
        return fmt.format(statistics.median(xs)) + " (" + " / ".join(fmt.format(x) for x in xs) + ")"

    lines = ["| measure | " + " | ".join(f"{i}: median (rounds)" for i in impls) + " |",
             "|---|" + "---|" * len(impls)]

    def add(name, get, fmt="{:,.0f}"):
        vals = []
        for i in impls:
            xs = []
            for r in rows(i):
                try:
                    v = get(r)
                except (StopIteration, TypeError, KeyError):
                    v = None
                if v is not None:
                    xs.append(v)
            vals.append(cell(xs, fmt))
        lines.append(f"| {name} | " + " | ".join(vals) + " |")

    for size in (100, 1024):
        for acks in ("all", "1"):
            def t(r, key, size=size, acks=acks):
                return next(x[key] for x in r["throughput"] if x["size"] == size and x["acks"] == acks)
            add(f"{size} B acks={acks}: records/s", lambda r, t=t: t(r, "records_s"))
            add(f"{size} B acks={acks}: MB/s", lambda r, t=t: t(r, "mb_s"), "{:,.1f}")
            add(f"{size} B acks={acks}: p50 ms", lambda r, t=t: t(r, "p50_ms"), "{:,.1f}")
            add(f"{size} B acks={acks}: p99 ms", lambda r, t=t: t(r, "p99_ms"), "{:,.1f}")
    for how in ("kill", "term"):
        def f(r, key, how=how):
            return next(x[key] for x in r["failover"] if x["how"] == how)
        add(f"SIG{how.upper()} leader: longest delivery gap ms", lambda r, f=f: f(r, "max_gap_ms"))
        add(f"SIG{how.upper()} leader: acked / errors", lambda r, f=f: f(r, "acked"))
        add(f"SIG{how.upper()} leader: delivery errors", lambda r, f=f: f(r, "errors"))
        add(f"SIG{how.upper()} leader: acked missing after", lambda r, f=f: f(r, "verify")["missing_acked"])
        add(f"SIG{how.upper()} leader: duplicated", lambda r, f=f: f(r, "verify")["duplicated_any"])
    add("catch-up: restart spawn -> ISR 3, ms", lambda r: r["catchup"]["spawn_to_isr3_ms"])
    add("catch-up: restarted node serving -> ISR 3, ms", lambda r: r["catchup"]["serving_to_isr3_ms"])
    add("catch-up: fill while down, s", lambda r: r["catchup"]["fill_s"], "{:,.1f}")
    add("cluster start, s", lambda r: r["start_s"], "{:,.1f}")
    print("\n".join(lines))
    print()
    print("load averages (1/5/15 min) by phase:")
    for e in res["loadavg"]:
        print(f"  {e['utc']} {e['phase']}: " + " ".join(f"{x:.2f}" for x in e["loadavg"]))


if __name__ == "__main__":
    main()
