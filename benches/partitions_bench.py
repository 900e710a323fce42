#!/usr/bin/env python3
"""Per-partition and large-record cost (issue 11): Oxka against librdkafka's mock broker (and,
later, Apache Kafka), interleaved in one run, with the ratios printed at the end.

Each case is run against every target in turn inside a round (case 1 on oxka, case 1 on mock,
case 2 on oxka, ...), for --rounds rounds, so a disturbance from other load on this shared
machine hits every target alike. Every run starts a fresh broker and topic. Cases:

  produce-100B-<P>p   rdkafka_performance -P, 100-byte records spread over P partitions by the
                      default partitioner (no key: random), linger.ms=5, batch.size=1 MiB, acks=1,
                      no compression (the issue-2 settings), for P in --partitions
  produce-1KiB-1p     the same with 1 KiB records into one partition (MB/s is the figure)
  consume-64p-g8      a topic of 64 partitions filled first (rdkafka_performance), then read by a
                      group of 8 confluent-kafka consumers, one process each, started together;
                      the figure is the topic's records / wall time from the start until every
                      partition has been read to its end, which includes forming the group.
                      (`rdkafka_performance -C -G -e` members exit at a transient end of their
                      partitions during the joins and leave records unread.) The Python members
                      bound this figure; the broker CPU per record is the comparable part

Per run: the client's msgs/s and MB/s, the broker's CPU (utime+stime from /proc/PID/stat,
before and after the run) divided by the records, and the 1-minute load average at the start.
The summary gives best and median per target and oxka ÷ target ratios (of medians and of bests).

Targets (--target, repeatable; default: oxka and mock):
  oxka              `--oxka` binary on a fresh temp data dir, loopback, free port
  oxka:PATH         another oxka binary the same way (e.g. the previous commit's, for before/after)
  mock              benches/mock/mock_broker (librdkafka's mock cluster as its own process,
                    topics created with the wanted partition count; built on first use from
                    the librdkafka tree of benches/build-librdkafka.sh)
  kafka:HOST:PORT   an external broker (e.g. the Apache Kafka reference harness): topics are
                    created through the admin API and deleted after each run; broker CPU only
                    with --kafka-pid PID

Usage:
  benches/build-librdkafka.sh      # once
  python3 benches/partitions_bench.py --oxka target/release/oxka \
      [--target oxka --target mock --target kafka:127.0.0.1:9092] [--rounds 3] \
      [--partitions 1,16,256,1000] [--count 10000000] [--no-1k] [--no-consume] [--json out.json]

Every wait is bounded; every process this starts is stopped on exit. Needs confluent-kafka.
"""

import argparse
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

from load import PRODUCE_CONF, Broker, create_topics, log  # noqa: E402

RDK = os.environ.get("OXKA_LIBRDKAFKA", "/tmp/oxka-librdkafka")
CLK_TCK = os.sysconf("SC_CLK_TCK")


def loadavg():
    with open("/proc/loadavg") as f:
        return float(f.read().split()[0])


def cpu_seconds(pid):
    """utime + stime of `pid` (all threads) in seconds."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def build_mock():
    """Compiles benches/mock/mock_broker.c against the static librdkafka, once."""
    out = os.path.join(RDK, "mock_broker")
    src = os.path.join(HERE, "mock", "mock_broker.c")
    if os.path.exists(out) and os.path.getmtime(out) >= os.path.getmtime(src):
        return out
    lib = os.path.join(RDK, "src", "librdkafka.a")
    if not os.path.exists(lib):
        raise SystemExit(f"{lib} missing: run benches/build-librdkafka.sh first")
    libs = ["-lm", "-lpthread", "-ldl", "-lrt"]
    mk = os.path.join(RDK, "Makefile.config")
    if os.path.exists(mk):
        for line in open(mk):
            if line.startswith("LIBS+=") or line.startswith("LIBS="):
                libs += line.split("=", 1)[1].split()
    cmd = ["cc", "-O2", "-o", out, src, "-I", os.path.join(RDK, "src"), lib] + libs
    log("$ " + " ".join(cmd))
    subprocess.run(cmd, check=True, timeout=300)
    return out


class Mock:
    """librdkafka's mock cluster (one broker) in its own process."""

    def __init__(self, binary, topics):
        self.proc = subprocess.Popen([binary] + [f"{t}:{n}" for t, n in topics],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        self.bootstrap = self.proc.stdout.readline().strip()
        if not self.bootstrap:
            raise RuntimeError("mock_broker printed no bootstrap address")
        self.pid = self.proc.pid

    def stop(self):
        try:
            self.proc.stdin.close()
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=10)


class Oxka:
    def __init__(self, binary, topics):
        self.broker = Broker(binary)
        self.broker.start()
        self.bootstrap = self.broker.bootstrap
        self.pid = self.broker.proc.pid
        create_topics(self.bootstrap, topics, timeout=120)

    def stop(self):
        self.broker.stop()


class External:
    """A broker this script does not run (e.g. Apache Kafka): topics are created and deleted."""

    def __init__(self, bootstrap, topics, pid=None):
        self.bootstrap, self.pid, self.topics = bootstrap, pid, [t for t, _ in topics]
        create_topics(bootstrap, topics, timeout=120)

    def stop(self):
        from confluent_kafka.admin import AdminClient
        admin = AdminClient({"bootstrap.servers": self.bootstrap})
        for f in admin.delete_topics(self.topics, operation_timeout=60).values():
            f.result(timeout=120)


def start(target, args, topics):
    if target == "oxka":
        return Oxka(os.path.abspath(args.oxka), topics)
    if target.startswith("oxka:"):
        return Oxka(os.path.abspath(target[len("oxka:"):]), topics)
    if target == "mock":
        return Mock(build_mock(), topics)
    if target.startswith("kafka:"):
        return External(target[len("kafka:"):], topics, args.kafka_pid)
    raise SystemExit(f"unknown target {target}")


RE_PRODUCED = re.compile(
    r"% (\d+) messages produced \((\d+) bytes\), (\d+) delivered \(offset (-?\d+), (\d+) failed\) "
    r"in (\d+)ms: (\d+) msgs/s and ([\d.]+) MB/s")


def produce_run(perf, bootstrap, topic, size, count, timeout=900):
    """One rdkafka_performance producer run. Under heavy machine load its local queue can refuse
    a few produce() calls ("N produce failures", exit status 1): the run still counts when
    everything it did produce was delivered, and the figures use the delivered count."""
    cmd = [perf, "-P", "-t", topic, "-s", str(size), "-c", str(count), "-q",
           "-b", bootstrap] + PRODUCE_CONF
    log("$ " + " ".join(cmd))
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    out = p.stdout + p.stderr
    m = None
    for m in RE_PRODUCED.finditer(out):
        pass
    if not m:
        log(out[-3000:])
        raise RuntimeError(f"no summary line from rdkafka_performance (exit {p.returncode})")
    produced, _, delivered, _, failed, ms, msgs_s, mb_s = m.groups()
    if int(failed) != 0 or int(delivered) < int(produced) or int(delivered) < count * 0.99:
        log(out[-3000:])
        raise RuntimeError(f"produced {produced}, delivered {delivered}/{count}, {failed} failed")
    return {"msgs": int(delivered), "ms": int(ms), "msgs_s": int(msgs_s), "mb_s": float(mb_s)}


def _group_member(bootstrap, topic, group, queue, stop):
    """One member of the consuming group (a process of its own): reports, every 0.2 s, the
    highest offset it has read per partition."""
    from confluent_kafka import Consumer
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": group,
                  "auto.offset.reset": "earliest", "enable.auto.commit": True,
                  "auto.commit.interval.ms": 200, "log.connection.close": False})
    c.subscribe([topic])
    high = {}
    last = time.monotonic()
    try:
        while not stop.is_set():
            for m in c.consume(num_messages=10000, timeout=0.1):
                if not m.error():
                    p, o = m.partition(), m.offset()
                    if o > high.get(p, -1):
                        high[p] = o
            if time.monotonic() - last >= 0.2:
                queue.put(dict(high))
                last = time.monotonic()
    finally:
        queue.put(dict(high))
        c.close()


def end_offsets(bootstrap, topic, partitions):
    from confluent_kafka import Consumer, TopicPartition
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": "bench-watermarks"})
    try:
        return {p: c.get_watermark_offsets(TopicPartition(topic, p), timeout=30, cached=False)[1]
                for p in range(partitions)}
    finally:
        c.close()


def group_consume(bootstrap, topic, partitions, members, timeout=600):
    """`members` confluent-kafka consumers in one group, each in its own process, started
    together; done when every partition has been read to its end by some member. Records =
    the topic's records (re-reads after a rebalance are not counted twice)."""
    import multiprocessing as mp
    ends = end_offsets(bootstrap, topic, partitions)
    total = sum(ends.values())
    group = f"bench-{time.time_ns()}"
    ctx = mp.get_context("fork")
    queue, stop = ctx.Queue(), ctx.Event()
    t0 = time.perf_counter()
    procs = [ctx.Process(target=_group_member, args=(bootstrap, topic, group, queue, stop))
             for _ in range(members)]
    for p in procs:
        p.start()
    high = {}
    try:
        while time.perf_counter() - t0 < timeout:
            try:
                for p, o in queue.get(timeout=1.0).items():
                    high[p] = max(high.get(p, -1), o)
            except Exception:  # queue.Empty
                pass
            if all(high.get(p, -1) + 1 >= e for p, e in ends.items()):
                break
        else:
            raise RuntimeError(f"group did not read {topic} to the end within {timeout}s")
        wall = time.perf_counter() - t0
    finally:
        stop.set()
        for p in procs:
            p.join(timeout=30)
            if p.is_alive():
                p.kill()
                p.join(timeout=10)
    return {"msgs": total, "ms": int(wall * 1000), "msgs_s": int(total / wall),
            "mb_s": total * 100 / wall / 1e6}


def one_run(target, args, case):
    kind, size, partitions = case["kind"], case["size"], case["partitions"]
    topic = f"bench-{kind}-{partitions}p-{time.time_ns() % 10**9}"
    b = start(target, args, [(topic, partitions)])
    try:
        load = loadavg()
        if kind == "consume":
            produce_run(args.perf, b.bootstrap, topic, size, case["count"])
            time.sleep(0.5)
        cpu0 = cpu_seconds(b.pid) if b.pid else None
        if kind == "produce":
            r = produce_run(args.perf, b.bootstrap, topic, size, case["count"])
        else:
            r = group_consume(b.bootstrap, topic, partitions, case["members"])
        if cpu0 is not None:
            r["broker_cpu_s"] = cpu_seconds(b.pid) - cpu0
            r["cpu_us_per_record"] = r["broker_cpu_s"] * 1e6 / r["msgs"]
        r["loadavg_1m"] = load
        return r
    finally:
        b.stop()


def summarize(runs):
    best = max(runs, key=lambda r: r["msgs_s"])
    s = {"best_msgs_s": best["msgs_s"], "best_mb_s": best["mb_s"],
         "median_msgs_s": statistics.median(r["msgs_s"] for r in runs),
         "median_mb_s": statistics.median(r["mb_s"] for r in runs),
         "loadavg_1m": [r["loadavg_1m"] for r in runs], "runs": runs}
    cpu = [r["cpu_us_per_record"] for r in runs if "cpu_us_per_record" in r]
    if cpu:
        s["median_cpu_us_per_record"] = statistics.median(cpu)
        s["best_cpu_us_per_record"] = min(cpu)
    return s


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--oxka", default="target/release/oxka")
    ap.add_argument("--perf", default=os.path.join(RDK, "examples", "rdkafka_performance"))
    ap.add_argument("--target", action="append", help="oxka | mock | kafka:HOST:PORT")
    ap.add_argument("--kafka-pid", type=int, help="pid of the external broker, for its CPU")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--partitions", default="1,16,256,1000")
    ap.add_argument("--count", type=int, default=10_000_000, help="100-byte records per run")
    ap.add_argument("--count-1k", type=int, default=4_000_000, help="1 KiB records per run")
    ap.add_argument("--consume-count", type=int, default=10_000_000)
    ap.add_argument("--no-1k", action="store_true")
    ap.add_argument("--no-consume", action="store_true")
    ap.add_argument("--json")
    a = ap.parse_args()
    targets = a.target or ["oxka", "mock"]

    cases = [{"name": f"produce-100B-{p}p", "kind": "produce", "size": 100, "partitions": int(p),
              "count": a.count} for p in a.partitions.split(",") if p]
    if not a.no_1k:
        cases.append({"name": "produce-1KiB-1p", "kind": "produce", "size": 1024,
                      "partitions": 1, "count": a.count_1k})
    if not a.no_consume:
        cases.append({"name": "consume-64p-g8", "kind": "consume", "size": 100,
                      "partitions": 64, "members": 8, "count": a.consume_count})

    results = {c["name"]: {t: [] for t in targets} for c in cases}
    for rnd in range(a.rounds):
        for c in cases:
            for t in targets:
                log(f"== round {rnd + 1}/{a.rounds} {c['name']} on {t} (loadavg {loadavg():.2f})")
                r = one_run(t, a, c)
                log(f"   {r['msgs_s']:,} msgs/s {r['mb_s']:.1f} MB/s, broker "
                    f"{r.get('cpu_us_per_record', float('nan')):.3f} µs CPU/record")
                results[c["name"]][t].append(r)
                if a.json:  # what has been measured so far survives an interrupted run
                    with open(a.json + ".partial", "w") as f:
                        json.dump(results, f, indent=2)
    summary = {name: {t: summarize(rs) for t, rs in per.items()} for name, per in results.items()}
    if a.json:
        with open(a.json, "w") as f:
            json.dump({"targets": targets, "cases": cases, "summary": summary}, f, indent=2)
    print_table(summary, targets)


def print_table(summary, targets):
    others = [t for t in targets if t != "oxka"]
    head = ["case", "target", "msgs/s best / median", "MB/s best / median",
            "broker CPU µs/record (median)", "load 1m"]
    head += [f"oxka ÷ {t} (median / best)" for t in others]
    print("| " + " | ".join(head) + " |")
    print("|" + "---|" * len(head))
    for name, per in summary.items():
        for t in targets:
            s = per[t]
            cpu = s.get("median_cpu_us_per_record")
            row = [name, t, f"{s['best_msgs_s']:,.0f} / {s['median_msgs_s']:,.0f}",
                   f"{s['best_mb_s']:.1f} / {s['median_mb_s']:.1f}",
                   "n/a" if cpu is None else f"{cpu:.3f}",
                   "–".join(f"{x:.1f}" for x in (min(s["loadavg_1m"]), max(s["loadavg_1m"])))]
            for o in others:
                if t == "oxka" and "oxka" in per:
                    row.append(f"{per['oxka']['median_msgs_s'] / per[o]['median_msgs_s']:.2f} / "
                               f"{per['oxka']['best_msgs_s'] / per[o]['best_msgs_s']:.2f}")
                else:
                    row.append("")
            print("| " + " | ".join(row) + " |")
    if "oxka" in targets:
        base = summary.get("produce-100B-1p", {}).get("oxka")
        if base:
            print()
            print("oxka, P partitions ÷ 1 partition (median msgs/s; median CPU/record):")
            for name, per in summary.items():
                if name.startswith("produce-100B-"):
                    s = per["oxka"]
                    cpu = ""
                    if "median_cpu_us_per_record" in s and "median_cpu_us_per_record" in base:
                        cpu = (f"; CPU/record "
                               f"{s['median_cpu_us_per_record'] / base['median_cpu_us_per_record']:.2f}×")
                    print(f"  {name}: {s['median_msgs_s'] / base['median_msgs_s']:.2f}×{cpu}")


if __name__ == "__main__":
    main()
