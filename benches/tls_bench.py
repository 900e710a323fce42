#!/usr/bin/env python3
"""TLS vs plaintext throughput: one oxka broker with a PLAINTEXT and an SSL listener (and,
with --sasl, SASL_SSL SCRAM-SHA-512), confluent-kafka producing N records of S bytes (acks=1,
linger.ms=5, batch.size=1 MiB, no compression) and consuming them back, interleaved runs.
Prints MB/s per protocol and the ratio to plaintext, plus the load average (shared machine).

  python3 benches/tls_bench.py --oxka target/release/oxka [--records 50000] [--size 1024] [--repeat 3]

Test certificates are made at run time (tests/tlsutil.py). Every wait is bounded; the broker is
stopped on exit.
"""
import argparse
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tests"))

from confluent_kafka import Consumer, Producer  # noqa: E402
from confluent_kafka.admin import AdminClient, NewTopic  # noqa: E402

import tlsutil  # noqa: E402


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run(conf, topic, records, size):
    payload = b"x" * size
    p = Producer(dict(conf, **{"linger.ms": 5, "batch.size": 1 << 20, "acks": 1,
                               "queue.buffering.max.messages": 1000000}))
    t0 = time.monotonic()
    for _ in range(records):
        while True:
            try:
                p.produce(topic, payload)
                break
            except BufferError:
                p.poll(0.01)
    assert p.flush(120) == 0
    produce_s = time.monotonic() - t0
    c = Consumer(dict(conf, **{"group.id": "bench-%s" % topic, "auto.offset.reset": "earliest",
                               "enable.auto.commit": False, "fetch.max.bytes": 52428800}))
    c.subscribe([topic])
    got = 0
    t0 = None
    deadline = time.monotonic() + 120
    while got < records and time.monotonic() < deadline:
        for m in c.consume(10000, 1.0):
            if not m.error():
                if t0 is None:
                    t0 = time.monotonic()
                got += 1
    consume_s = time.monotonic() - t0
    c.close()
    assert got == records, got
    mb = records * size / 1e6
    return mb / produce_s, mb / consume_s


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--oxka", default=os.path.join(HERE, "..", "target", "release", "oxka"))
    ap.add_argument("--records", type=int, default=50000)
    ap.add_argument("--size", type=int, default=1024)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--sasl", action="store_true")
    args = ap.parse_args()
    d = tempfile.mkdtemp(prefix="oxka-tls-bench-")
    pki = tlsutil.make_pki(d)
    ports = {"PLAINTEXT": free_port(), "SSL": free_port(), "SASL_SSL": free_port()}
    listeners = ",".join("%s://127.0.0.1:%d" % kv for kv in ports.items())
    cmd = [args.oxka, "serve"]
    for k, v in {"listeners": listeners, "advertised.listeners": listeners,
                 "log.dirs": os.path.join(d, "data"), "oxka.metrics.listen": "127.0.0.1:0",
                 "ssl.keystore.type": "PEM", "ssl.keystore.location": pki["server_keystore"],
                 "sasl.enabled.mechanisms": "SCRAM-SHA-512",
                 "oxka.scram.users": "bench:bench-secret"}.items():
        cmd += ["--override", "%s=%s" % (k, v)]
    env = {k: v for k, v in os.environ.items() if not k.startswith("KAFKA_")}
    env["RUST_LOG"] = "warn"
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
    try:
        for _ in range(200):
            try:
                socket.create_connection(("127.0.0.1", ports["PLAINTEXT"]), 0.2).close()
                break
            except OSError:
                time.sleep(0.05)
        confs = {
            "PLAINTEXT": {"bootstrap.servers": "127.0.0.1:%d" % ports["PLAINTEXT"]},
            "SSL": {"bootstrap.servers": "127.0.0.1:%d" % ports["SSL"], "security.protocol": "SSL",
                    "ssl.ca.location": pki["ca"]},
        }
        if args.sasl:
            confs["SASL_SSL"] = {"bootstrap.servers": "127.0.0.1:%d" % ports["SASL_SSL"],
                                 "security.protocol": "SASL_SSL", "ssl.ca.location": pki["ca"],
                                 "sasl.mechanisms": "SCRAM-SHA-512", "sasl.username": "bench",
                                 "sasl.password": "bench-secret"}
        admin = AdminClient(confs["PLAINTEXT"])
        results = {name: [] for name in confs}
        for i in range(args.repeat):
            for name, conf in confs.items():
                topic = "bench-%s-%d" % (name.lower(), i)
                admin.create_topics([NewTopic(topic, 1, 1)])[topic].result(30)
                results[name].append(run(conf, topic, args.records, args.size))
        print("records=%d size=%d repeat=%d loadavg=%s" % (args.records, args.size, args.repeat,
                                                             " ".join("%.1f" % x for x in os.getloadavg())))
        base_p = statistics.median(r[0] for r in results["PLAINTEXT"])
        base_c = statistics.median(r[1] for r in results["PLAINTEXT"])
        for name, rs in results.items():
            p = statistics.median(r[0] for r in rs)
            c = statistics.median(r[1] for r in rs)
            print("%-10s produce %7.1f MB/s (%.2f of plaintext)  consume %7.1f MB/s (%.2f of plaintext)"
                  % (name, p, p / base_p, c, c / base_c))
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
        shutil.rmtree(d, ignore_errors=True)


if __name__ == "__main__":
    main()
