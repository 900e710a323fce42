#!/usr/bin/env python3
"""Consumer-group benchmarks for issue 3, over the wire with kafka-python's protocol classes.

1. Offset commits per second sustained by one broker: one pre-encoded OffsetCommit v8
   (simple-consumer commit, generation -1) sent pipelined, `depth` requests in flight, on
   `conns` connections; counts acknowledged commits (error 0) per second.
2. Rebalance latency: a stable 10-member group; an 11th member joins; the 10 rejoin (as they
   would after their heartbeat says REBALANCE_IN_PROGRESS); the time from the last JoinGroup
   sent to every member holding its SyncGroup answer (new assignment).

Usage: python3 benches/group_bench.py [--bin target/release/oxka] [--commits 200000]
Starts its own broker on free loopback ports. The group is formed under the default
group.initial.rebalance.delay.ms (3000, which only applies while a group is Empty), so the
measured rebalance of the stable group involves no delay.
"""
import argparse
import os
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tests"))

from kafka.protocol.consumer.group import (JoinGroupRequest, OffsetCommitRequest,  # noqa: E402
                                           SyncGroupRequest)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Conn:
    def __init__(self, port):
        self.s = socket.create_connection(("127.0.0.1", port), timeout=30)
        self.s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.corr = 0

    def encode(self, req_cls, version, **fields):
        self.corr += 1
        req = req_cls[version](**fields)
        req.with_header(correlation_id=self.corr, client_id="bench")
        return bytes(req.encode(header=True, framed=True))

    def recv_frame(self):
        head = self._exact(4)
        (n,) = struct.unpack(">i", head)
        return self._exact(n)

    def _exact(self, n):
        buf = bytearray()
        while len(buf) < n:
            chunk = self.s.recv(n - len(buf))
            if not chunk:
                raise ConnectionError("closed")
            buf += chunk
        return bytes(buf)

    def call(self, req_cls, version, **fields):
        self.s.sendall(self.encode(req_cls, version, **fields))
        body = self.recv_frame()
        resp_cls = getattr(sys.modules[req_cls.__module__], req_cls.__name__.replace("Request", "Response"))
        return resp_cls.decode(body, version=version, header=True)


def start_broker(binary, workdir):
    port = free_port()
    proc = subprocess.Popen(
        [binary, "serve",
         "--override", f"listeners=PLAINTEXT://127.0.0.1:{port}",
         "--override", f"log.dirs={workdir}/data",
         "--override", "oxka.metrics.listen=none"],
        stdout=subprocess.DEVNULL, stderr=open(f"{workdir}/broker.log", "w"))
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return proc, port
        except OSError:
            time.sleep(0.05)
    proc.kill()
    raise RuntimeError("broker did not start")


def bench_commits(port, total, conns=2, depth=64):
    def worker(i, n, out):
        c = Conn(port)
        p = OffsetCommitRequest.OffsetCommitRequestTopic.OffsetCommitRequestPartition
        frame = c.encode(OffsetCommitRequest, 8, group_id=f"bench-commit-{i}", generation_id_or_member_epoch=-1,
                         member_id="", group_instance_id=None,
                         topics=[OffsetCommitRequest.OffsetCommitRequestTopic(name="bench", partitions=[
                             p(partition_index=0, committed_offset=42, committed_leader_epoch=-1,
                               committed_metadata="")])])
        sent = received = 0
        while received < n:
            burst = min(depth - (sent - received), n - sent)
            if burst > 0:
                c.s.sendall(frame * burst)
                sent += burst
            c.recv_frame()
            received += 1
        out.append(received)

    per = total // conns
    done = []
    threads = [threading.Thread(target=worker, args=(i, per, done)) for i in range(conns)]
    t0 = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    dt = time.perf_counter() - t0
    return sum(done) / dt


def join(c, group, member_id, version=5):
    return c.call(JoinGroupRequest, version, group_id=group, session_timeout_ms=30000,
                  rebalance_timeout_ms=30000, member_id=member_id, group_instance_id=None,
                  protocol_type="consumer",
                  protocols=[JoinGroupRequest.JoinGroupRequestProtocol(name="range", metadata=b"m")])


def sync(c, group, gen, member_id, assignments, version=3):
    A = SyncGroupRequest.SyncGroupRequestAssignment
    return c.call(SyncGroupRequest, version, group_id=group, generation_id=gen, member_id=member_id,
                  group_instance_id=None,
                  assignments=[A(member_id=m, assignment=b"a") for m in assignments])


def member_round(c, group, member_id, results, idx):
    """Join and sync until in a stable generation (bounded): records (member id, time synced)."""
    for _ in range(50):
        r = join(c, group, member_id)
        if r.error_code == 79:  # MEMBER_ID_REQUIRED: join again with the id handed out
            member_id = r.member_id
            continue
        if r.error_code == 27:  # REBALANCE_IN_PROGRESS
            continue
        if r.error_code == 25:  # UNKNOWN_MEMBER_ID: start over with a fresh id, as clients do
            member_id = ""
            continue
        assert r.error_code == 0, r
        member_id = r.member_id
        members = [m.member_id for m in r.members] if r.leader == r.member_id else []
        s = sync(c, group, r.generation_id, member_id, members)
        if s.error_code == 27:
            continue
        assert s.error_code == 0, s
        results[idx] = (member_id, time.perf_counter())
        return
    raise RuntimeError("member never reached a stable generation")


def bench_rebalance(port, group, size=10):
    """Milliseconds from the first rejoin sent to the last member synced."""
    conns = [Conn(port) for _ in range(size + 1)]
    results = [None] * (size + 1)
    threads = [threading.Thread(target=member_round, args=(conns[i], group, "", results, i))
               for i in range(size)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    ids = [results[i][0] for i in range(size)]
    results = [None] * (size + 1)
    newcomer = threading.Thread(target=member_round, args=(conns[size], group, "", results, size))
    newcomer.start()
    time.sleep(0.2)  # the newcomer's JoinGroup is parked: the group is rebalancing
    rejoin = [threading.Thread(target=member_round, args=(conns[i], group, ids[i], results, i))
              for i in range(size)]
    t0 = time.perf_counter()
    for t in rejoin:
        t.start()
    for t in rejoin + [newcomer]:
        t.join()
    for c in conns:
        c.s.close()
    return (max(x[1] for x in results) - t0) * 1000


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", default=os.path.join(HERE, "..", "target", "release", "oxka"))
    ap.add_argument("--commits", type=int, default=200000)
    ap.add_argument("--rounds", type=int, default=5)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as work:
        proc, port = start_broker(args.bin, work)
        try:
            rate = bench_commits(port, args.commits)
            print(f"offset commits: {rate:,.0f}/s ({args.commits} commits, 2 connections, 64 in flight each)")
            lat = sorted(bench_rebalance(port, f"bench-rebalance-{r}") for r in range(args.rounds))
            from_first = lat
            print("rebalance of 10 members + 1 joiner, first rejoin sent -> all synced: "
                  f"median {from_first[len(from_first) // 2]:.1f} ms, max {from_first[-1]:.1f} ms "
                  f"over {len(lat)} rounds")
        finally:
            proc.kill()
            proc.wait(10)


if __name__ == "__main__":
    main()
