#!/usr/bin/env python3
"""End-to-end load benchmark for oxka, driven by librdkafka's own `rdkafka_performance`.

Like kafka-producer-perf-test / kafka-consumer-perf-test: one broker on loopback, a librdkafka
producer (linger.ms=5, batch.size=1 MiB, acks=1, no compression) and consumer. Measures

  * produce throughput, 100-byte and 1 KiB records (msgs/s, MB/s; best and median of --repeat),
    each run starting after `sync` (page cache absorbs the run), and 1 KiB back to back without
    sync (sustained: bounded by how fast the disk takes the kernel's write-back),
  * consume throughput, reading the whole 100-byte topic back,
  * produce->ack latency at 1,000 msgs/s with linger.ms=0 and acks=all (avg, p50/p99/p999, max),
    on a quiet disk and again right after the sustained runs (while write-back is under way),
  * produce->ack latency under full load (100-byte records, the throughput settings),
  * broker RSS idle after start, after the load, and with a 1,000-partition topic,
  * start-to-serving time on an empty data dir (spawn until the port accepts; best of 5),

and, with --mock, the same producer runs against librdkafka's in-process mock broker
(`test.mock.num.brokers=1`), the "does almost nothing" ceiling.

Usage (benches/load.sh builds rdkafka_performance first and calls this):
  python3 benches/load.py --oxka target/release/oxka --perf /tmp/oxka-librdkafka/examples/rdkafka_performance \
      [--mock] [--quick] [--repeat 3] [--json results.json]

Every wait is bounded; every broker this starts is stopped on exit. Needs the confluent-kafka
Python package (the end-to-end tests use it too) for topic creation and the 1,000-partition probe.
"""

import argparse
import json
import math
import os
import re
import shutil
import signal
import socket
import statistics
import struct
import subprocess
import sys
import tempfile
import time

PRODUCE_CONF = [
    "-X", "linger.ms=5",
    "-X", "batch.size=1048576",
    "-X", "compression.codec=none",
    "-a", "1",
]
LATENCY_CONF = [
    "-X", "linger.ms=0",
    "-X", "compression.codec=none",
    "-a", "-1",
]

RE_PRODUCED = re.compile(
    r"% (\d+) messages produced \((\d+) bytes\), (\d+) delivered \(offset (-?\d+), (\d+) failed\) "
    r"in (\d+)ms: (\d+) msgs/s and ([\d.]+) MB/s")
RE_CONSUMED = re.compile(
    r"% (\d+) messages \((\d+) bytes\) consumed in (\d+)ms: (\d+) msgs/s \(([\d.]+) MB/s\)")


def log(msg):
    print(msg, file=sys.stderr, flush=True)


LOADAVG = []


def phase(name):
    """Logs the start of a phase with the 1-minute load average: the machine is shared, and a
    load above the core count means the numbers that follow were measured under contention."""
    with open("/proc/loadavg") as f:
        load1 = float(f.read().split()[0])
    LOADAVG.append({"phase": name, "loadavg_1m": load1})
    log(f"== {name} (loadavg {load1:.2f})")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def port_open(port):
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.05):
            return True
    except OSError:
        return False


def api_versions_ok(port):
    """Sends ApiVersions v0 and reads a whole response (error code 0)."""
    client = b"oxka-load"
    body = struct.pack(">hhih", 18, 0, 1, len(client)) + client
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1.0) as s:
            s.sendall(struct.pack(">i", len(body)) + body)
            buf = b""
            while len(buf) < 4 or len(buf) < 4 + struct.unpack(">i", buf[:4])[0]:
                chunk = s.recv(65536)
                if not chunk:
                    return False
                buf += chunk
            corr, err = struct.unpack(">ih", buf[4:10])
            return corr == 1 and err == 0
    except OSError:
        return False


class Broker:
    """One oxka process on a fresh temp data dir."""

    def __init__(self, oxka, extra=(), keep_log=None):
        self.dir = tempfile.mkdtemp(prefix="oxka-load-")
        self.port = free_port()
        addr = f"PLAINTEXT://127.0.0.1:{self.port}"
        self.cmd = [oxka, "serve",
                    "--override", f"listeners={addr}",
                    "--override", f"advertised.listeners={addr}",
                    "--override", f"log.dirs={self.dir}/data",
                    "--override", "oxka.metrics.listen=none"]
        for kv in extra:
            self.cmd += ["--override", kv]
        self.log_path = keep_log or os.path.join(self.dir, "oxka.log")
        self.proc = None

    @property
    def bootstrap(self):
        return f"127.0.0.1:{self.port}"

    def start(self, timeout=20.0, answer=False):
        """Spawns and waits until the port accepts; returns seconds from spawn to accept. With
        `answer`, returns (accept, first ApiVersions response) seconds."""
        logf = open(self.log_path, "w")
        env = dict(os.environ, RUST_LOG=os.environ.get("RUST_LOG", "warn"))
        t0 = time.perf_counter()
        self.proc = subprocess.Popen(self.cmd, stdout=logf, stderr=subprocess.STDOUT, env=env)
        deadline = t0 + timeout
        while time.perf_counter() < deadline:
            if port_open(self.port):
                accepted = time.perf_counter() - t0
                if not answer:
                    return accepted
                while time.perf_counter() < deadline:
                    if api_versions_ok(self.port):
                        return accepted, time.perf_counter() - t0
                    time.sleep(0.001)
                break
            if self.proc.poll() is not None:
                raise RuntimeError(f"oxka exited with {self.proc.returncode}; see {self.log_path}")
            time.sleep(0.001)
        raise RuntimeError(f"oxka did not accept on {self.port} within {timeout}s")

    def status(self, key):
        """VmRSS / VmHWM of the broker in MiB."""
        with open(f"/proc/{self.proc.pid}/status") as f:
            for line in f:
                if line.startswith(key + ":"):
                    return int(line.split()[1]) / 1024.0
        return None

    def restart(self):
        """Stops the process (SIGTERM), keeps the data dir, starts again; returns (accept,
        first ApiVersions answer) seconds."""
        self.stop(keep_data=True)
        return self.start(answer=True)

    def stop(self, keep_data=False):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
        if not keep_data:
            shutil.rmtree(self.dir, ignore_errors=True)


def settle():
    """Writes back dirty page cache (`sync`), so a run starts with the kernel's full dirty-page
    headroom instead of inheriting the previous run's write-back."""
    t0 = time.perf_counter()
    subprocess.run(["sync"], timeout=600, check=True)
    log(f"   (sync took {time.perf_counter() - t0:.1f}s)")


def run_perf(perf, args, timeout):
    cmd = [perf] + args
    log("$ " + " ".join(cmd))
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    out = p.stdout + p.stderr
    if p.returncode != 0:
        log(out[-3000:])
        raise RuntimeError(f"rdkafka_performance exited {p.returncode}")
    return out


def produce(perf, target, topic, size, count, conf, timeout, extra=()):
    out = run_perf(perf, ["-P", "-t", topic, "-p", "0", "-s", str(size), "-c", str(count), "-q"]
                   + target + conf + list(extra), timeout)
    m = None
    for m in RE_PRODUCED.finditer(out):
        pass
    if not m:
        log(out[-3000:])
        raise RuntimeError("no summary line from rdkafka_performance")
    produced, _, delivered, _, failed, ms, msgs_s, mb_s = m.groups()
    if int(delivered) != count or int(failed) != 0:
        raise RuntimeError(f"delivered {delivered}/{count}, {failed} failed")
    return {"msgs": int(delivered), "ms": int(ms), "msgs_s": int(msgs_s), "mb_s": float(mb_s)}


def consume(perf, target, topic, count, timeout):
    out = run_perf(perf, ["-C", "-t", topic, "-p", "0", "-o", "beginning", "-c", str(count), "-q"]
                   + target, timeout)
    m = None
    for m in RE_CONSUMED.finditer(out):
        pass
    if not m:
        log(out[-3000:])
        raise RuntimeError("no summary line from rdkafka_performance")
    msgs, _, ms, msgs_s, mb_s = m.groups()
    if int(msgs) != count:
        raise RuntimeError(f"consumed {msgs}/{count}")
    return {"msgs": int(msgs), "ms": int(ms), "msgs_s": int(msgs_s), "mb_s": float(mb_s)}


def percentiles(path):
    with open(path) as f:
        v = sorted(int(x) for x in f if x.strip())
    if not v:
        return None

    def pct(p):
        # nearest rank
        return v[max(0, min(len(v), math.ceil(p / 100.0 * len(v))) - 1)] / 1000.0

    return {"n": len(v), "avg_ms": sum(v) / len(v) / 1000.0, "p50_ms": pct(50),
            "p99_ms": pct(99), "p999_ms": pct(99.9), "max_ms": v[-1] / 1000.0,
            "min_ms": v[0] / 1000.0}


def latency(perf, target, topic, rate, count, conf, timeout, tmp, size=100):
    path = os.path.join(tmp, f"lat-{topic}-{time.time_ns()}.txt")
    produce_args = ["-l", "-A", path] + conf
    if rate:
        produce_args += ["-r", str(rate)]
    r = produce(perf, target, topic, size, count, produce_args, timeout)
    r.update(percentiles(path))
    os.unlink(path)
    return r


def best_and_median(runs):
    best = max(runs, key=lambda r: r["msgs_s"])
    return {"best": best, "median_msgs_s": statistics.median(r["msgs_s"] for r in runs),
            "median_mb_s": statistics.median(r["mb_s"] for r in runs), "runs": runs}


def create_topics(bootstrap, topics, timeout=60):
    from confluent_kafka.admin import AdminClient, NewTopic
    admin = AdminClient({"bootstrap.servers": bootstrap})
    futs = admin.create_topics([NewTopic(t, n, 1) for t, n in topics], operation_timeout=30)
    for t, f in futs.items():
        f.result(timeout=timeout)


def produce_each_partition(bootstrap, topic, partitions, per_partition, timeout=120):
    from confluent_kafka import Producer
    p = Producer({"bootstrap.servers": bootstrap, "linger.ms": 5})
    for part in range(partitions):
        for i in range(per_partition):
            p.produce(topic, value=b"x" * 100, partition=part)
        p.poll(0)
    left = p.flush(timeout)
    if left:
        raise RuntimeError(f"{left} messages not delivered to {topic}")


def measure_start(oxka, rounds):
    accept, answer = [], []
    for _ in range(rounds):
        b = Broker(oxka)
        try:
            t_accept, t_answer = b.start(answer=True)
            accept.append(t_accept * 1000.0)
            answer.append(t_answer * 1000.0)
        finally:
            b.stop()
    return {"best_ms": min(accept), "all_ms": accept,
            "api_versions_best_ms": min(answer), "api_versions_all_ms": answer}


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--oxka", default="target/release/oxka")
    ap.add_argument("--perf", required=True, help="path to rdkafka_performance")
    ap.add_argument("--mock", action="store_true", help="also run against librdkafka's mock broker")
    ap.add_argument("--no-oxka", action="store_true", help="only the mock broker runs")
    ap.add_argument("--quick", action="store_true", help="fewer messages (smoke test)")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--json", help="write all results here")
    a = ap.parse_args()

    n100 = 1_000_000 if a.quick else 10_000_000
    n1k = 200_000 if a.quick else 2_000_000
    nlat = 2_000 if a.quick else 10_000
    nload_lat = 500_000 if a.quick else 2_000_000
    tmo = 600
    results = {"config": {"n100": n100, "n1k": n1k, "nlat": nlat, "repeat": a.repeat,
                          "produce_conf": PRODUCE_CONF, "latency_conf": LATENCY_CONF}}
    tmp = tempfile.mkdtemp(prefix="oxka-load-out-")
    try:
        if not a.no_oxka:
            oxka = os.path.abspath(a.oxka)
            results["oxka_binary"] = oxka
            phase("start-to-serving, empty data dir, best of 5")
            results["start"] = measure_start(oxka, 5)

            b = Broker(oxka)
            try:
                b.start()
                time.sleep(1.0)
                results["rss_idle_mib"] = b.status("VmRSS")
                target = ["-b", b.bootstrap]
                create_topics(b.bootstrap, [("perf-100b", 1), ("perf-1k", 1), ("perf-1k-sustained", 1),
                                            ("perf-lat", 1), ("perf-loadlat", 1)])
                results["rss_after_create_mib"] = b.status("VmRSS")
                settle()
                phase("latency at 1,000 msgs/s, linger.ms=0, acks=all (quiet disk)")
                results["latency_1000"] = latency(a.perf, target, "perf-lat", 1000, nlat,
                                                  LATENCY_CONF, tmo, tmp)
                phase("produce 100-byte records (sync before each run)")
                runs = []
                for _ in range(a.repeat):
                    settle()
                    runs.append(produce(a.perf, target, "perf-100b", 100, n100, PRODUCE_CONF, tmo))
                results["produce_100b"] = best_and_median(runs)
                total = sum(r["msgs"] for r in runs)
                phase("consume everything back")
                settle()
                runs = [consume(a.perf, target, "perf-100b", total, tmo) for _ in range(a.repeat)]
                results["consume_100b"] = best_and_median(runs)
                phase("produce 1 KiB records (sync before each run)")
                runs = []
                for _ in range(a.repeat):
                    settle()
                    runs.append(produce(a.perf, target, "perf-1k", 1024, n1k, PRODUCE_CONF, tmo))
                results["produce_1k"] = best_and_median(runs)
                phase("produce 1 KiB records, back to back without sync (sustained, disk-bound)")
                settle()
                runs = [produce(a.perf, target, "perf-1k-sustained", 1024, n1k, PRODUCE_CONF, tmo)
                        for _ in range(a.repeat)]
                results["produce_1k_sustained"] = best_and_median(runs)
                phase("latency at 1,000 msgs/s right after that (kernel writing back dirty pages)")
                results["latency_1000_writeback"] = latency(a.perf, target, "perf-lat", 1000, nlat,
                                                            LATENCY_CONF, tmo, tmp)
                phase("latency under full load (throughput settings, acks=1)")
                settle()
                results["latency_loaded"] = latency(a.perf, target, "perf-loadlat", 0, nload_lat,
                                                    PRODUCE_CONF, tmo, tmp)
                results["rss_after_load_mib"] = b.status("VmRSS")
                results["rss_peak_mib"] = b.status("VmHWM")
            finally:
                b.stop()

            phase("RSS with 1,000 partitions")
            b = Broker(oxka)
            try:
                b.start()
                time.sleep(0.5)
                t0 = time.perf_counter()
                create_topics(b.bootstrap, [("perf-1000p", 1000)], timeout=120)
                results["create_1000p_s"] = time.perf_counter() - t0
                time.sleep(1.0)
                results["rss_1000p_created_mib"] = b.status("VmRSS")
                produce_each_partition(b.bootstrap, "perf-1000p", 1000, 10)
                time.sleep(2.0)
                results["rss_1000p_mib"] = b.status("VmRSS")
                results["rss_1000p_peak_mib"] = b.status("VmHWM")
                accept, answer = b.restart()
                results["restart_1000p_ms"] = {"accept": accept * 1000.0, "api_versions": answer * 1000.0}
                time.sleep(1.0)
                results["rss_1000p_restarted_mib"] = b.status("VmRSS")
            finally:
                b.stop()

        if a.mock:
            mock = ["-X", "test.mock.num.brokers=1"]
            phase("mock broker: produce 100-byte records")
            runs = [produce(a.perf, mock, "perf-100b", 100, n100, PRODUCE_CONF, tmo)
                    for _ in range(a.repeat)]
            results["mock_produce_100b"] = best_and_median(runs)
            phase("mock broker: produce 1 KiB records")
            runs = [produce(a.perf, mock, "perf-1k", 1024, n1k, PRODUCE_CONF, tmo)
                    for _ in range(a.repeat)]
            results["mock_produce_1k"] = best_and_median(runs)
            phase("mock broker: latency at 1,000 msgs/s")
            results["mock_latency_1000"] = latency(a.perf, mock, "perf-lat", 1000, nlat,
                                                   LATENCY_CONF, tmo, tmp)
            phase("mock broker: latency under full load")
            results["mock_latency_loaded"] = latency(a.perf, mock, "perf-loadlat", 0, nload_lat,
                                                     PRODUCE_CONF, tmo, tmp)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)

    results["loadavg"] = LOADAVG
    if a.json:
        with open(a.json, "w") as f:
            json.dump(results, f, indent=2)
    print_table(results)


def print_table(r):
    def g(*path):
        x = r
        for p in path:
            if not isinstance(x, dict) or p not in x:
                return None
            x = x[p]
        return x

    def f(v, fmt="{:,.0f}"):
        return "n/a" if v is None else fmt.format(v)

    rows = [
        ("produce 100 B, msgs/s, sync before each run (best / median)", "≥ 1,000,000",
         f"{f(g('produce_100b', 'best', 'msgs_s'))} / {f(g('produce_100b', 'median_msgs_s'))}",
         f"{f(g('mock_produce_100b', 'best', 'msgs_s'))} / {f(g('mock_produce_100b', 'median_msgs_s'))}"),
        ("consume 100 B, msgs/s (best / median)", "≥ 1,500,000",
         f"{f(g('consume_100b', 'best', 'msgs_s'))} / {f(g('consume_100b', 'median_msgs_s'))}", "n/a"),
        ("produce 1 KiB, MB/s, sync before each run (best / median)", "≥ 500",
         f"{f(g('produce_1k', 'best', 'mb_s'), '{:.1f}')} / {f(g('produce_1k', 'median_mb_s'), '{:.1f}')}",
         f"{f(g('mock_produce_1k', 'best', 'mb_s'), '{:.1f}')} / {f(g('mock_produce_1k', 'median_mb_s'), '{:.1f}')}"),
    ]
    rows.append(("produce 1 KiB, MB/s, back to back, no sync (best / median)", "≥ 500",
                 f"{f(g('produce_1k_sustained', 'best', 'mb_s'), '{:.1f}')} / "
                 f"{f(g('produce_1k_sustained', 'median_mb_s'), '{:.1f}')}", "n/a"))
    for key, mk, label, target in [("latency_1000", "mock_latency_1000",
                                    "latency @1,000 msgs/s acks=all linger 0", "avg ≤ 0.5, max ≤ 5"),
                                   ("latency_1000_writeback", None,
                                    "same, right after the sustained runs (disk write-back)",
                                    "avg ≤ 0.5, max ≤ 5"),
                                   ("latency_loaded", "mock_latency_loaded",
                                    "latency under full load acks=1", "—")]:
        rows.append((label + ", ms avg / p50 / p99 / p999 / max", target,
                     " / ".join(f(g(key, k), "{:.2f}") for k in
                                ("avg_ms", "p50_ms", "p99_ms", "p999_ms", "max_ms")),
                     " / ".join(f(g(mk, k), "{:.2f}") for k in
                                ("avg_ms", "p50_ms", "p99_ms", "p999_ms", "max_ms")) if mk else "n/a"))
    rows += [
        ("RSS idle after start, MiB", "≤ 20", f(g("rss_idle_mib"), "{:.1f}"), "n/a"),
        ("RSS after the load runs (peak), MiB", "—",
         f"{f(g('rss_after_load_mib'), '{:.1f}')} ({f(g('rss_peak_mib'), '{:.1f}')})", "n/a"),
        ("RSS with 1,000 partitions (created / after produce), MiB", "≤ 150",
         f"{f(g('rss_1000p_created_mib'), '{:.1f}')} / {f(g('rss_1000p_mib'), '{:.1f}')}", "n/a"),
        ("CreateTopics of one 1,000-partition topic, s", "—", f(g("create_1000p_s"), "{:.2f}"), "n/a"),
        ("restart with 1,000 partitions to first ApiVersions answer, ms (RSS after, MiB)", "—",
         f"{f(g('restart_1000p_ms', 'api_versions'), '{:.0f}')} ({f(g('rss_1000p_restarted_mib'), '{:.1f}')})", "n/a"),
        ("start to serving, empty dir, ms, best of 5 (port accepts / first ApiVersions answer)", "≤ 200",
         f"{f(g('start', 'best_ms'), '{:.1f}')} / {f(g('start', 'api_versions_best_ms'), '{:.1f}')}", "n/a"),
    ]
    print("1-minute load average at each phase: " + ", ".join(
        f"{x['phase'].split(' (')[0]}: {x['loadavg_1m']:.2f}" for x in r.get("loadavg", [])))
    print()
    print("| measure | target | oxka | librdkafka mock broker |")
    print("|---|---|---|---|")
    for row in rows:
        print("| " + " | ".join(row) + " |")


if __name__ == "__main__":
    main()
