#!/usr/bin/env python3
"""Oxka and Apache Kafka side by side, one run, same client, same machine (issue 9).

Both brokers run at once (one node each, fresh data dirs); every measurement is taken on each
broker in turn, rounds interleaved, with the same load generator: Kafka's own
kafka-producer-perf-test / kafka-consumer-perf-test (the kafka-tools jar of tests/java/pom.xml;
run tests/setup.d/20-java.sh first). Kafka runs with a 1 GiB heap (-Xmx1g, SerialGC).

Per broker: start time (spawn to serving: oxka's port accepting; Kafka's "Kafka Server started"
after `kafka-storage format`, shown apart), produce msgs/s, MB/s and p99 latency (acks=1 and
acks=all ... here one node, same thing), consume msgs/s and MB/s (fetch phase), the broker's RSS
after the run. Prints a table and the oxka/Kafka ratios.

    python3 benches/kafka_vs_oxka.py [--records 1000000] [--size 100] [--rounds 2]
"""
import argparse
import os
import re
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
sys.path.insert(0, os.path.join(REPO, "tests"))
sys.path.insert(0, HERE)
import kafkaref  # noqa: E402
import load  # noqa: E402

PRODUCER_PERF = "org.apache.kafka.tools.ProducerPerformance"
CONSUMER_PERF = "org.apache.kafka.tools.ConsumerPerformance"


def rss_mib(pids):
    total = 0
    for pid in pids:
        try:
            with open("/proc/%d/status" % pid) as f:
                for line in f:
                    if line.startswith("VmRSS:"):
                        total += int(line.split()[1])
        except OSError:
            pass
    return total / 1024.0


def produce(bootstrap, topic, records, size, acks):
    out = kafkaref.run_java(PRODUCER_PERF, [
        "--topic", topic, "--num-records", str(records), "--record-size", str(size),
        "--throughput", "-1", "--producer-props", "bootstrap.servers=%s" % bootstrap,
        "acks=%s" % acks, "linger.ms=5", "batch.size=131072", "compression.type=none",
        "buffer.memory=67108864"], timeout=600, heap="512m").stdout
    m = re.search(r"^(\d+) records sent, ([\d.]+) records/sec \(([\d.]+) MB/sec\), ([\d.]+) ms avg "
                  r"latency, ([\d.]+) ms max latency, (\d+) ms 50th, (\d+) ms 95th, (\d+) ms 99th", out, re.M)
    if not m:
        raise RuntimeError("no summary from the producer perf test:\n" + out[-2000:])
    return {"msgs": float(m.group(2)), "mb": float(m.group(3)), "p50": int(m.group(6)),
            "p99": int(m.group(8)), "avg": float(m.group(4))}


def consume(bootstrap, topic, records):
    out = kafkaref.run_java(CONSUMER_PERF, [
        "--bootstrap-server", bootstrap, "--topic", topic, "--messages", str(records),
        "--timeout", "120000", "--group", "perf-%d" % time.monotonic_ns()],
        timeout=600, heap="512m").stdout
    lines = [l for l in out.splitlines() if l.strip()]
    row = dict(zip([h.strip() for h in lines[-2].split(",")], [v.strip() for v in lines[-1].split(",")]))
    if int(row["data.consumed.in.nMsg"]) != records:
        raise RuntimeError("consumer perf read %s of %d" % (row["data.consumed.in.nMsg"], records))
    return {"msgs": float(row["fetch.nMsg.sec"]), "mb": float(row["fetch.MB.sec"])}


class Oxka:
    name = "oxka"

    def __init__(self, binary):
        self.b = load.Broker(binary)

    def start(self):
        self.start_s = self.b.start(timeout=60)
        return self.start_s

    @property
    def bootstrap(self):
        return self.b.bootstrap

    def pids(self):
        return [self.b.proc.pid]

    def stop(self):
        self.b.stop()


class Kafka:
    name = "kafka"

    def __init__(self):
        self.dir = tempfile.mkdtemp(prefix="kafka-bench-")
        self.c = kafkaref.KafkaCluster(self.dir, nodes=1, heap="1g")

    def start(self):
        self.c.start()
        self.format_s = self.c.format_seconds
        self.start_s = self.c.serve_seconds
        return self.start_s

    @property
    def bootstrap(self):
        return self.c.bootstrap

    def pids(self):
        return self.c.pids

    def stop(self):
        self.c.stop(timeout=30)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--oxka", default=os.path.join(REPO, "target", "release", "oxka"))
    ap.add_argument("--records", type=int, default=1_000_000)
    ap.add_argument("--size", type=int, default=100)
    ap.add_argument("--rounds", type=int, default=2)
    args = ap.parse_args()
    reason = kafkaref.java_skip_reason()
    if reason:
        sys.exit(reason)
    load_before = os.getloadavg()
    brokers = [Oxka(args.oxka), Kafka()]
    results = {b.name: {"produce": [], "produce_all": [], "consume": [], "rss": []} for b in brokers}
    try:
        for b in brokers:
            s = b.start()
            results[b.name]["start"] = s
            print("%s started in %.2f s%s" % (b.name, s, " (format %.2f s apart)" % b.format_s
                                              if b.name == "kafka" else ""), flush=True)
        for rnd in range(args.rounds):
            for b in brokers:
                topic = "bench-%d-%d" % (rnd, time.monotonic_ns())
                load.create_topics(b.bootstrap, [(topic, 1)])
                time.sleep(1.5)  # Kafka: the partition is served a moment after CreateTopics
                p = produce(b.bootstrap, topic, args.records, args.size, 1)
                results[b.name]["produce"].append(p)
                c = consume(b.bootstrap, topic, args.records)
                results[b.name]["consume"].append(c)
                topic2 = topic + "-all"
                load.create_topics(b.bootstrap, [(topic2, 1)])
                time.sleep(1.5)
                pa = produce(b.bootstrap, topic2, args.records // 2, args.size, "all")
                results[b.name]["produce_all"].append(pa)
                results[b.name]["rss"].append(rss_mib(b.pids()))
                print("round %d %-5s produce %9.0f msg/s %7.1f MB/s p99 %4d ms | acks=all %9.0f msg/s "
                      "p99 %4d ms | consume %9.0f msg/s %7.1f MB/s | RSS %6.0f MiB"
                      % (rnd + 1, b.name, p["msgs"], p["mb"], p["p99"], pa["msgs"], pa["p99"],
                         c["msgs"], c["mb"], results[b.name]["rss"][-1]), flush=True)
    finally:
        for b in brokers:
            b.stop()
    load_after = os.getloadavg()

    def best(name, kind, key):
        return max(r[key] for r in results[name][kind])

    def least(name, kind, key):
        return min(r[key] for r in results[name][kind])

    print("\nbest of %d rounds, %d records of %d B, load average before %.1f after %.1f"
          % (args.rounds, args.records, args.size, load_before[0], load_after[0]))
    rows = [
        ("produce msgs/s (acks=1)", best("oxka", "produce", "msgs"), best("kafka", "produce", "msgs")),
        ("produce MB/s (acks=1)", best("oxka", "produce", "mb"), best("kafka", "produce", "mb")),
        ("produce p99 ms (acks=1)", least("oxka", "produce", "p99"), least("kafka", "produce", "p99")),
        ("produce msgs/s (acks=all)", best("oxka", "produce_all", "msgs"), best("kafka", "produce_all", "msgs")),
        ("produce p99 ms (acks=all)", least("oxka", "produce_all", "p99"), least("kafka", "produce_all", "p99")),
        ("consume msgs/s", best("oxka", "consume", "msgs"), best("kafka", "consume", "msgs")),
        ("consume MB/s", best("oxka", "consume", "mb"), best("kafka", "consume", "mb")),
        ("broker RSS MiB (after)", max(results["oxka"]["rss"]), max(results["kafka"]["rss"])),
        ("start s (spawn to serving)", results["oxka"]["start"], results["kafka"]["start"]),
    ]
    print("| measure | oxka | Apache Kafka 4.1.1 | oxka / Kafka |")
    print("|---|---:|---:|---:|")
    for name, o, k in rows:
        print("| %s | %s | %s | %s |" % (name, fmt(o), fmt(k), "%.3g" % (o / k) if k else "—"))


def fmt(v):
    if isinstance(v, float) and v < 100:
        return "%.2f" % v
    return "{:,.0f}".format(v)


if __name__ == "__main__":
    main()
