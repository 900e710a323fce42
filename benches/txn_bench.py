#!/usr/bin/env python3
"""Idempotent and transactional producer benchmark for issue 4, against one fresh oxka.

Targets: idempotent producer throughput >= 0.9x the non-idempotent one, transactional producer
committing every 100 ms >= 0.7x, commit latency p99 <= 20 ms on a single node. Every ratio
compares runs of the same client, record size and duration made in the same process against
the same broker, interleaved round by round (plain, idempotent, transactional, then the next
round), so a disturbance from other load on the machine hits all modes alike.

1. librdkafka C producer (`rdkafka_performance`, only with --perf): 100-byte records,
   linger.ms=5, batch.size=1 MiB, no compression, one partition; plain acks=all, plain acks=1
   (the issue-2 setting) and `enable.idempotence=true` (which implies acks=all and at most 5
   requests in flight). This is the client that can saturate the broker.
2. confluent-kafka Python producer (librdkafka underneath), same settings, `--seconds` per run:
   plain (acks=all), idempotent, and transactional: begin, produce for `--interval-ms`, commit,
   again. Each commit is timed as an application sees it (`flush()` + `commit_transaction()`;
   commit_transaction would flush itself) and split into the flush (waiting for the produce
   acknowledgements) and the EndTxn part (broker writes PrepareCommit, one marker per
   partition, CompleteCommit, then answers). Throughput counts only what was acknowledged
   (transactional: committed) over the whole run including the final flush or commit.

Usage: python3 benches/txn_bench.py [--oxka target/release/oxka]
           [--perf /tmp/oxka-librdkafka/examples/rdkafka_performance] [--rounds 3] [--seconds 10]
           [--size 100] [--interval-ms 100] [--json out.json]

Starts and stops its own broker (loopback, fresh temp data dir); every wait is bounded.
Needs the confluent-kafka Python package (tests/requirements.txt).
"""

import argparse
import json
import os
import statistics
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

from load import (PRODUCE_CONF, Broker, create_topics, log, produce,  # noqa: E402
                  settle)

PY_CONF = {
    "linger.ms": 5,
    "batch.size": 1048576,
    "compression.type": "none",
    "acks": "all",
    "delivery.report.only.error": True,
}


def loadavg():
    with open("/proc/loadavg") as f:
        return float(f.read().split()[0])


def pct(values, p):
    v = sorted(values)
    if not v:
        return None
    k = max(0, min(len(v), -(-p * len(v) // 100)) - 1)  # nearest rank
    return v[int(k)]


def python_run(bootstrap, topic, mode, seconds, size, interval_s, txn_id=None):
    """Produces as fast as the Python client can for `seconds`; returns acknowledged msgs/s and,
    for mode 'txn', the commit timings in ms."""
    from confluent_kafka import Producer

    errors = []
    conf = dict(PY_CONF, **{"bootstrap.servers": bootstrap,
                            "on_delivery": lambda err, msg: errors.append(err)})
    if mode == "idempotent":
        conf["enable.idempotence"] = True
    elif mode == "txn":
        conf["transactional.id"] = txn_id
        conf["transaction.timeout.ms"] = 60000
    p = Producer(conf)
    # Connect and learn the partition before the clock starts.
    p.list_topics(topic, timeout=10)
    if mode == "txn":
        p.init_transactions(30)
    payload = b"x" * size
    produced = 0
    commits, flushes, endtxns = [], [], []
    open_txn_msgs = 0
    t0 = time.perf_counter()
    end = t0 + seconds
    if mode == "txn":
        p.begin_transaction()
        next_commit = t0 + interval_s
    now = t0
    while now < end:
        for _ in range(1000):
            try:
                p.produce(topic, payload, partition=0)
            except BufferError:
                p.poll(0.001)
                continue
            open_txn_msgs += 1
        p.poll(0)
        now = time.perf_counter()
        if mode == "txn" and now >= next_commit:
            left = p.flush(30)
            t1 = time.perf_counter()
            p.commit_transaction(30)
            t2 = time.perf_counter()
            if left:
                raise RuntimeError(f"{left} messages not flushed before commit")
            flushes.append((t1 - now) * 1000.0)
            endtxns.append((t2 - t1) * 1000.0)
            commits.append((t2 - now) * 1000.0)
            produced += open_txn_msgs
            open_txn_msgs = 0
            now = t2
            if now < end:
                p.begin_transaction()
                next_commit = now + interval_s
    if mode == "txn":
        if open_txn_msgs:
            t_a = time.perf_counter()
            p.flush(30)
            t1 = time.perf_counter()
            p.commit_transaction(30)
            t2 = time.perf_counter()
            flushes.append((t1 - t_a) * 1000.0)
            endtxns.append((t2 - t1) * 1000.0)
            commits.append((t2 - t_a) * 1000.0)
            produced += open_txn_msgs
        else:
            p.abort_transaction(30)
    else:
        left = p.flush(60)
        if left:
            raise RuntimeError(f"{left} messages not delivered")
        produced += open_txn_msgs
    elapsed = time.perf_counter() - t0
    if errors:
        raise RuntimeError(f"{len(errors)} delivery errors, first {errors[0]}")
    r = {"msgs": produced, "s": elapsed, "msgs_s": produced / elapsed,
         "mb_s": produced * size / elapsed / 1e6}
    if mode == "txn":
        r["commits"] = len(commits)
        for name, v in (("commit", commits), ("flush", flushes), ("endtxn", endtxns)):
            r[name + "_ms"] = {"p50": pct(v, 50), "p99": pct(v, 99), "max": max(v),
                               "avg": sum(v) / len(v)}
        r["commit_all_ms"] = commits
        r["endtxn_all_ms"] = endtxns
    return r


def summarize(rounds, modes, base):
    out = {}
    for m in modes:
        v = [r[m]["msgs_s"] for r in rounds]
        out[m] = {"median_msgs_s": statistics.median(v), "all_msgs_s": v}
    for m in modes:
        if m == base:
            continue
        out[m]["ratio_of_medians"] = out[m]["median_msgs_s"] / out[base]["median_msgs_s"]
        out[m]["paired_ratios"] = [r[m]["msgs_s"] / r[base]["msgs_s"] for r in rounds]
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--oxka", default="target/release/oxka")
    ap.add_argument("--perf", help="rdkafka_performance (benches/build-librdkafka.sh builds it)")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--seconds", type=float, default=10.0, help="per Python run")
    ap.add_argument("--perf-count", type=int, default=5_000_000, help="records per C run")
    ap.add_argument("--size", type=int, default=100)
    ap.add_argument("--interval-ms", type=float, default=100.0)
    ap.add_argument("--json")
    a = ap.parse_args()

    results = {"config": vars(a), "loadavg": []}
    b = Broker(os.path.abspath(a.oxka))
    try:
        b.start()
        topics = ["c-plain-all", "c-plain-1", "c-idem", "py-plain", "py-idempotent", "py-txn"]
        create_topics(b.bootstrap, [(t, 1) for t in topics])

        if a.perf:
            target = ["-b", b.bootstrap]
            assert PRODUCE_CONF[-2:] == ["-a", "1"]
            conf_all = PRODUCE_CONF[:-1] + ["-1"]
            modes = {"plain_acks_all": ("c-plain-all", conf_all),
                     "plain_acks_1": ("c-plain-1", PRODUCE_CONF),
                     "idempotent": ("c-idem", conf_all + ["-X", "enable.idempotence=true"])}
            rounds = []
            for i in range(a.rounds):
                rnd = {}
                for m, (topic, conf) in modes.items():
                    settle()
                    la = loadavg()
                    results["loadavg"].append({"phase": f"C {m} round {i + 1}", "loadavg_1m": la})
                    log(f"== rdkafka_performance {m}, round {i + 1} (loadavg {la:.2f})")
                    rnd[m] = produce(a.perf, target, topic, a.size, a.perf_count, conf, 600)
                    log(f"   {rnd[m]['msgs_s']:,} msgs/s")
                rounds.append(rnd)
            results["c_rounds"] = rounds
            results["c"] = summarize(rounds, list(modes), "plain_acks_all")
            results["c"]["idempotent"]["ratio_vs_acks_1"] = (
                results["c"]["idempotent"]["median_msgs_s"]
                / results["c"]["plain_acks_1"]["median_msgs_s"])

        rounds = []
        for i in range(a.rounds):
            rnd = {}
            for m in ("plain", "idempotent", "txn"):
                la = loadavg()
                results["loadavg"].append({"phase": f"Python {m} round {i + 1}", "loadavg_1m": la})
                log(f"== confluent-kafka {m}, round {i + 1} (loadavg {la:.2f})")
                rnd[m] = python_run(b.bootstrap, "py-" + m if m != "txn" else "py-txn", m,
                                    a.seconds, a.size, a.interval_ms / 1000.0,
                                    txn_id=f"bench-txn-{i}")
                extra = ""
                if m == "txn":
                    c = rnd[m]["commit_ms"]
                    extra = (f", {rnd[m]['commits']} commits, commit ms p50 {c['p50']:.2f} "
                             f"p99 {c['p99']:.2f} max {c['max']:.2f}")
                log(f"   {rnd[m]['msgs_s']:,.0f} msgs/s{extra}")
            rounds.append(rnd)
        results["py_rounds"] = rounds
        results["py"] = summarize(rounds, ["plain", "idempotent", "txn"], "plain")
        for name in ("commit", "endtxn"):
            allv = [x for r in rounds for x in r["txn"][name + "_all_ms"]]
            results["py"]["txn"][name + "_ms"] = {"n": len(allv), "p50": pct(allv, 50),
                                                  "p99": pct(allv, 99), "max": max(allv),
                                                  "avg": sum(allv) / len(allv)}
        results["rss_after_mib"] = b.status("VmRSS")
    finally:
        b.stop()

    if a.json:
        with open(a.json, "w") as f:
            json.dump(results, f, indent=2)
    print_table(results)


def print_table(r):
    print("1-minute load average per run: "
          + ", ".join(f"{x['phase']}: {x['loadavg_1m']:.2f}" for x in r["loadavg"]))
    print()
    print("| measure | target | oxka |")
    print("|---|---|---|")
    if "c" in r:
        c = r["c"]
        print(f"| C producer msgs/s, median: plain acks=all / plain acks=1 / idempotent | — | "
              f"{c['plain_acks_all']['median_msgs_s']:,.0f} / {c['plain_acks_1']['median_msgs_s']:,.0f}"
              f" / {c['idempotent']['median_msgs_s']:,.0f} |")
        print(f"| C idempotent ÷ plain (acks=all; acks=1), ratio of medians | ≥ 0.9 | "
              f"{c['idempotent']['ratio_of_medians']:.2f}; {c['idempotent']['ratio_vs_acks_1']:.2f} "
              f"(paired: {', '.join(f'{x:.2f}' for x in c['idempotent']['paired_ratios'])}) |")
    py = r["py"]
    print(f"| Python producer msgs/s, median: plain / idempotent / transactional | — | "
          f"{py['plain']['median_msgs_s']:,.0f} / {py['idempotent']['median_msgs_s']:,.0f} / "
          f"{py['txn']['median_msgs_s']:,.0f} |")
    print(f"| Python idempotent ÷ plain | ≥ 0.9 | {py['idempotent']['ratio_of_medians']:.2f} "
          f"(paired: {', '.join(f'{x:.2f}' for x in py['idempotent']['paired_ratios'])}) |")
    print(f"| Python transactional (commit every {r['config']['interval_ms']:.0f} ms) ÷ plain | ≥ 0.7 | "
          f"{py['txn']['ratio_of_medians']:.2f} "
          f"(paired: {', '.join(f'{x:.2f}' for x in py['txn']['paired_ratios'])}) |")
    for name, label in (("commit", "flush + commit_transaction()"),
                        ("endtxn", "commit_transaction() after flush (EndTxn)")):
        x = py["txn"][name + "_ms"]
        print(f"| {label}, ms p50 / p99 / max (n={x['n']}) | p99 ≤ 20 | "
              f"{x['p50']:.2f} / {x['p99']:.2f} / {x['max']:.2f} |")


if __name__ == "__main__":
    main()
