#!/usr/bin/env python3
"""Cluster figures for issue 8 (first milestone): 3 oxka nodes sharing metadata through Raft,
replication factor 1. Each round runs cases 1-3 on one fresh 3-node cluster and each case 4
run, case 5 and case 6 on their own, all on free loopback ports in fresh temp dirs; every process
started is killed at the end (also on error). Every wait is bounded.

Cases (per round unless said otherwise):
  1. start to serving: spawn of all 3 nodes -> every node answers Metadata listing 3 brokers;
  2. metadata propagation: CreateTopics (confluent-kafka AdminClient) sent to node A -> node B's
     and node C's Metadata show the topic with a leader for every partition (--creates per round);
  3. controller failover: SIGKILL the active controller -> a survivor reports another controller
     id, and -> the first CreateTopics through a survivor succeeds;
  4. leader "failover" for a produce, with broker.session.timeout.ms at its default and at 2000:
     SIGKILL the broker leading partition 0 of a 6-partition topic -> the controller fences it
     (its partitions report leader -1); restart it -> partition 0 has a leader again, and -> the
     first acks=all produce to partition 0 is acknowledged. With RF 1 there is no other replica,
     so this is "restart and re-election", not a failover to a follower;
  5. idle cost at --partitions partitions (once, not per round): RSS and CPU over 30 s idle, per
     node and per partition;
  6. throughput (once): confluent-kafka Python producer (linger.ms=5, batch.size=1 MiB,
     --messages x 100 B) into a 12-partition RF1 topic on the cluster with acks=all, and on a
     single node with acks=1 and acks=all. RF 1, so not issue 8's RF 3 target.

Metadata is polled with a raw Metadata v9 request (tests/kwire.py framing, kafka-python's
encoder) on one persistent connection per node, re-opened after an error: a request costs one
round trip, not a client's bootstrap. Polls are 1 ms apart, so times carry ~1 ms of resolution.

    python3 benches/cluster_bench.py --oxka /tmp/oxka-cbench-bin --rounds 3 --json cluster.json
"""

import argparse
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections import namedtuple

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests"))
import kwire  # noqa: E402
from kafka.protocol.metadata import MetadataRequest  # noqa: E402

Addr = namedtuple("Addr", "host port")
LOADAVG = []


def log(msg):
    print(msg, file=sys.stderr, flush=True)


def phase(name):
    """Records /proc/loadavg (1, 5, 15 min) at the start of a phase: the machine is shared."""
    with open("/proc/loadavg") as f:
        l1, l5, l15 = (float(x) for x in f.read().split()[:3])
    LOADAVG.append({"phase": name, "loadavg": [l1, l5, l15]})
    log(f"== {name} (loadavg {l1:.2f} {l5:.2f} {l15:.2f})")


def free_ports(n):
    """n distinct free loopback ports (all bound at once so none repeats)."""
    socks = [socket.socket() for _ in range(n)]
    try:
        for s in socks:
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


def wait_for(what, pred, timeout, interval=0.001):
    """Calls pred() until it returns a truthy value; returns (value, seconds waited)."""
    t0 = time.perf_counter()
    deadline = t0 + timeout
    while True:
        v = pred()
        if v:
            return v, time.perf_counter() - t0
        if time.perf_counter() > deadline:
            raise TimeoutError(f"{what}: not within {timeout}s")
        time.sleep(interval)


# ---------------------------------------------------------------- the cluster
class Node:
    """One oxka process of a cluster: its ports, data dir and (raw Metadata) connection."""

    def __init__(self, oxka, node_id, port, controller_port, voters, root, extra):
        self.id, self.port, self.controller_port = node_id, port, controller_port
        self.dir = os.path.join(root, f"node{node_id}")
        os.makedirs(self.dir)
        self.cmd = [oxka, "serve",
                    "--override", f"node.id={node_id}",
                    "--override", f"controller.quorum.voters={voters}",
                    "--override", f"listeners=PLAINTEXT://127.0.0.1:{port},"
                                  f"CONTROLLER://127.0.0.1:{controller_port}",
                    "--override", f"log.dirs={self.dir}/data",
                    "--override", "oxka.metrics.listen=none"]
        for kv in extra:
            self.cmd += ["--override", kv]
        self.log_path = os.path.join(self.dir, "oxka.log")
        self.proc = None
        self.sock = None

    @property
    def bootstrap(self):
        return f"127.0.0.1:{self.port}"

    def spawn(self):
        logf = open(self.log_path, "a")
        env = dict(os.environ, RUST_LOG=os.environ.get("RUST_LOG", "warn"))
        self.proc = subprocess.Popen(self.cmd, stdout=logf, stderr=subprocess.STDOUT, env=env)
        logf.close()

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def kill(self):
        """SIGKILL (no clean shutdown), and forget the connection."""
        self.close()
        if self.alive():
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(timeout=10)

    def close(self):
        if self.sock:
            self.sock.close()
            self.sock = None

    def metadata(self, topics=None):
        """Metadata v9 (all topics when `topics` is None, no auto-creation), or None when the
        node does not answer."""
        try:
            if self.sock is None:
                self.sock = kwire.connect(Addr("127.0.0.1", self.port), timeout=2)
            req_topics = None if topics is None else [
                MetadataRequest.MetadataRequestTopic(name=t) for t in topics]
            return kwire.request(self.sock, MetadataRequest, 9, topics=req_topics,
                                 allow_auto_topic_creation=False,
                                 include_cluster_authorized_operations=False,
                                 include_topic_authorized_operations=False)
        except (OSError, ConnectionError, AssertionError, ValueError):
            self.close()
            return None

    def proc_stat(self):
        """(VmRSS MiB, utime+stime seconds) of the process."""
        with open(f"/proc/{self.proc.pid}/status") as f:
            rss = next(int(line.split()[1]) for line in f if line.startswith("VmRSS:")) / 1024.0
        with open(f"/proc/{self.proc.pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        ticks = os.sysconf("SC_CLK_TCK")
        return rss, (int(fields[11]) + int(fields[12])) / ticks  # utime, stime: fields 14, 15


class Cluster:
    """Three nodes on free loopback ports in a fresh temp dir; `stop` kills them all."""

    def __init__(self, oxka, extra=()):
        self.root = tempfile.mkdtemp(prefix="oxka-cbench-")
        ports = free_ports(6)
        voters = ",".join(f"{i + 1}@127.0.0.1:{ports[3 + i]}" for i in range(3))
        self.nodes = [Node(oxka, i + 1, ports[i], ports[3 + i], voters, self.root, extra)
                      for i in range(3)]

    def node(self, node_id):
        return next(n for n in self.nodes if n.id == node_id)

    def start(self, timeout=60):
        """Spawns all 3; returns seconds until every node's Metadata lists 3 brokers."""
        t0 = time.perf_counter()
        for n in self.nodes:
            n.spawn()
        for n in self.nodes:
            wait_for(f"node {n.id} lists 3 brokers", lambda n=n: self._lists_3(n),
                     t0 + timeout - time.perf_counter())
        return time.perf_counter() - t0

    def _lists_3(self, n):
        if not n.alive():
            raise RuntimeError(f"node {n.id} exited {n.proc.returncode}; see {n.log_path}")
        md = n.metadata(topics=[])
        return md is not None and len(md.brokers) == 3

    def stop(self, keep=False):
        for n in self.nodes:
            n.kill()
        if not keep:
            shutil.rmtree(self.root, ignore_errors=True)

    def tail_logs(self, lines=15):
        for n in self.nodes:
            try:
                with open(n.log_path) as f:
                    log(f"--- node {n.id} log tail:\n" + "".join(f.readlines()[-lines:]))
            except OSError:
                pass


def leaders(md, topic):
    """{partition: leader} for `topic` in a Metadata response, or None if it is not there."""
    for t in md.topics:
        if t.name == topic and t.error_code == 0 and t.partitions:
            return {p.partition_index: p.leader_id for p in t.partitions}
    return None


def all_led(node, topic, partitions):
    md = node.metadata([topic])
    led = md and leaders(md, topic)
    return bool(led) and len(led) == partitions and all(v >= 0 for v in led.values())


def admin(bootstraps):
    from confluent_kafka.admin import AdminClient
    return AdminClient({"bootstrap.servers": ",".join(bootstraps), "socket.timeout.ms": 3000, "log_level": 2})


def create_topic(client, name, partitions, timeout=30):
    from confluent_kafka.admin import NewTopic
    fut = client.create_topics([NewTopic(name, partitions, 1)], operation_timeout=timeout,
                               request_timeout=timeout)[name]
    fut.result(timeout=timeout + 5)


def pct(values, p):
    v = sorted(values)
    return v[min(len(v) - 1, max(0, round(p / 100.0 * len(v) + 0.5) - 1))]


def ms(s):
    return round(s * 1000.0, 1)


# ---------------------------------------------------------------- cases
def case_start(cluster):
    """1. Spawn of all 3 -> every node answers Metadata listing 3 brokers."""
    return ms(cluster.start())


def case_propagation(cluster, creates, partitions=3):
    """2. CreateTopics on node A -> B's and C's Metadata show the topic with all leaders. The
    two are polled alternately, so each time is within one poll round of when it happened."""
    a, b, c = cluster.nodes
    client = admin([a.bootstrap])
    create_topic(client, "warmup", 1)  # the client's bootstrap and controller lookup, not timed
    acked, seen_b, seen_c = [], [], []
    for i in range(creates):
        name = f"prop-{i}"
        t0 = time.perf_counter()
        create_topic(client, name, partitions)
        acked.append(time.perf_counter() - t0)
        pending = {b.id: b, c.id: c}
        seen = {}
        deadline = t0 + 30
        while pending:
            for nid, n in list(pending.items()):
                if all_led(n, name, partitions):
                    seen[nid] = time.perf_counter() - t0
                    del pending[nid]
            if time.perf_counter() > deadline:
                raise TimeoutError(f"{name} not seen on {list(pending)}")
            time.sleep(0.001)
        seen_b.append(seen[b.id])
        seen_c.append(seen[c.id])
    both = seen_b + seen_c
    return {"creates": creates, "ack_median_ms": ms(statistics.median(acked)),
            "b_median_ms": ms(statistics.median(seen_b)), "c_median_ms": ms(statistics.median(seen_c)),
            "median_ms": ms(statistics.median(both)), "p90_ms": ms(pct(both, 90)),
            "max_ms": ms(max(both))}


def controller_of(node):
    md = node.metadata(topics=[])
    return md.controller_id if md is not None else None


def case_controller_failover(cluster):
    """3. SIGKILL the active controller -> a survivor reports another controller id -> the first
    CreateTopics through the survivors succeeds (retried with a short timeout until it does)."""
    old = controller_of(cluster.nodes[0])
    victim = cluster.node(old)
    survivors = [n for n in cluster.nodes if n is not victim]
    t0 = time.perf_counter()
    victim.kill()

    def new_controller():
        for n in survivors:
            c = controller_of(n)
            if c is not None and c not in (-1, old):
                return c
        return None

    new, _ = wait_for("a new controller", new_controller, 60)
    t_new = time.perf_counter() - t0
    # A fresh AdminClient per attempt, bootstrapped to the survivors: a client made before the
    # kill would first wait out its request timeout on the dead controller.
    attempts = 0
    while True:
        attempts += 1
        try:
            create_topic(admin([n.bootstrap for n in survivors]), f"post-failover-{attempts}", 1, timeout=5)
            break
        except Exception as e:  # noqa: BLE001 (any failure: retry until the deadline)
            if time.perf_counter() - t0 > 90:
                raise TimeoutError(f"no CreateTopics succeeded after failover: {e}")
            time.sleep(0.01)
    t_write = time.perf_counter() - t0
    return {"old_controller": old, "new_controller": new, "new_controller_ms": ms(t_new),
            "first_create_ms": ms(t_write), "detection_to_create_ms": ms(t_write - t_new),
            "create_attempts": attempts}


def case_leader_restart(oxka, session_ms):
    """4. SIGKILL the leader of partition 0 -> fenced (its partitions report leader -1); restart
    it -> partition 0 led again -> first acks=all produce to partition 0 acknowledged."""
    from confluent_kafka import Producer
    extra = [] if session_ms is None else [f"broker.session.timeout.ms={session_ms}"]
    cluster = Cluster(oxka, extra)
    try:
        cluster.start()
        topic, partitions = "lf", 6
        create_topic(admin([n.bootstrap for n in cluster.nodes]), topic, partitions)
        wait_for("lf led everywhere", lambda: all(all_led(n, topic, partitions) for n in cluster.nodes), 30)
        led = leaders(cluster.nodes[0].metadata([topic]), topic)
        victim = cluster.node(led[0])
        was_controller = controller_of(cluster.nodes[0]) == victim.id
        theirs = [p for p, l in led.items() if l == victim.id]
        survivors = [n for n in cluster.nodes if n is not victim]
        t0 = time.perf_counter()
        victim.kill()

        def fenced():
            for n in survivors:
                md = n.metadata([topic])
                now = md and leaders(md, topic)
                if now and all(now[p] == -1 for p in theirs):
                    return True
            return False

        wait_for("fenced", fenced, 60)
        t_fenced = time.perf_counter() - t0
        producer = Producer({"bootstrap.servers": ",".join(n.bootstrap for n in cluster.nodes),
                             "acks": "all", "linger.ms": 0, "message.timeout.ms": 60000, "log_level": 2})
        delivered = []
        t1 = time.perf_counter()
        victim.spawn()

        def p0_led():
            md = survivors[0].metadata([topic])
            now = md and leaders(md, topic)
            return bool(now) and now.get(0, -1) >= 0

        wait_for("partition 0 led again", p0_led, 60)
        t_led = time.perf_counter() - t1
        producer.produce(topic, b"x" * 100, partition=0,
                         on_delivery=lambda err, msg: delivered.append((err, time.perf_counter())))
        deadline = time.perf_counter() + 60
        while not delivered and time.perf_counter() < deadline:
            producer.poll(0.001)
        if not delivered or delivered[0][0] is not None:
            raise RuntimeError(f"produce to partition 0 failed: {delivered}")
        t_produce = delivered[0][1] - t1
        return {"session_timeout_ms": session_ms or 9000, "victim": victim.id,
                "victim_was_controller": was_controller, "victim_partitions": theirs,
                "fenced_ms": ms(t_fenced), "restart_to_leader_ms": ms(t_led),
                "restart_to_produce_ms": ms(t_produce)}
    except Exception:
        cluster.tail_logs()
        raise
    finally:
        cluster.stop()


def case_idle(oxka, total, per_topic=1000, idle_s=30):
    """5. `total` partitions in topics of `per_topic`; once led on every node and settled, each
    node's RSS and CPU (utime+stime) over `idle_s` seconds of idling."""
    cluster = Cluster(oxka)
    try:
        cluster.start()
        time.sleep(2)
        empty = {n.id: n.proc_stat()[0] for n in cluster.nodes}
        client = admin([n.bootstrap for n in cluster.nodes])
        t0 = time.perf_counter()
        topics = []
        left = total
        while left > 0:
            k = min(per_topic, left)
            name = f"idle-{len(topics)}"
            create_topic(client, name, k, timeout=120)
            topics.append((name, k))
            left -= k
        t_create = time.perf_counter() - t0
        for n in cluster.nodes:
            for name, k in topics:
                wait_for(f"{name} led on {n.id}", lambda n=n, name=name, k=k: all_led(n, name, k), 120, 0.05)
        t_led = time.perf_counter() - t0
        md = cluster.nodes[0].metadata([name for name, _ in topics])
        per_node = {n.id: 0 for n in cluster.nodes}
        for name, _ in topics:
            for leader in leaders(md, name).values():
                per_node[leader] += 1
        for n in cluster.nodes:
            n.close()  # no connection of ours during the idle window
        time.sleep(10)  # settle: let creation's work (segment files, Raft snapshots) finish
        before = {n.id: n.proc_stat() for n in cluster.nodes}
        time.sleep(idle_s)
        after = {n.id: n.proc_stat() for n in cluster.nodes}
        nodes = []
        for n in cluster.nodes:
            rss, cpu = after[n.id][0], after[n.id][1] - before[n.id][1]
            nodes.append({"node": n.id, "partitions": per_node[n.id], "rss_empty_mib": round(empty[n.id], 1),
                          "rss_mib": round(rss, 1),
                          "rss_kib_per_partition": round((rss - empty[n.id]) * 1024 / max(1, per_node[n.id]), 2),
                          "cpu_pct": round(100.0 * cpu / idle_s, 2),
                          "cpu_us_per_partition_s": round(cpu * 1e6 / idle_s / max(1, per_node[n.id]), 3)})
        return {"partitions": total, "topics": len(topics), "create_s": round(t_create, 1),
                "led_everywhere_s": round(t_led, 1), "idle_s": idle_s, "nodes": nodes}
    except Exception:
        cluster.tail_logs()
        raise
    finally:
        cluster.stop()


def produce_run(bootstrap, topic, acks, messages, size=100):
    """confluent-kafka producer, linger.ms=5, batch.size=1 MiB: msgs/s from first produce to
    the last delivery report."""
    from confluent_kafka import Producer
    p = Producer({"bootstrap.servers": bootstrap, "acks": acks, "linger.ms": 5,
                  "batch.size": 1048576, "compression.type": "none",
                  "queue.buffering.max.messages": 1000000, "queue.buffering.max.kbytes": 1048576,
                  "log_level": 2})
    failed = []
    value = b"x" * size
    t0 = time.perf_counter()
    for _ in range(messages):
        while True:
            try:
                p.produce(topic, value, on_delivery=lambda err, _m: err and failed.append(err))
                break
            except BufferError:
                p.poll(0.001)
    left = p.flush(300)
    dt = time.perf_counter() - t0
    if left or failed:
        raise RuntimeError(f"{left} undelivered, {len(failed)} failed: {failed[:3]}")
    return round(messages / dt)


def case_throughput(oxka, messages, partitions=12):
    """6. Python-producer throughput into a 12-partition RF1 topic: the 3-node cluster with
    acks=all, and a single node with acks=1 and acks=all."""
    out = {"messages": messages, "partitions": partitions}
    cluster = Cluster(oxka)
    try:
        cluster.start()
        create_topic(admin([n.bootstrap for n in cluster.nodes]), "tput", partitions)
        wait_for("tput led", lambda: all(all_led(n, "tput", partitions) for n in cluster.nodes), 30)
        phase("6. throughput, cluster acks=all")
        out["cluster_acks_all"] = produce_run(",".join(n.bootstrap for n in cluster.nodes), "tput", "all", messages)
    finally:
        cluster.stop()
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    import load  # the single-node Broker helper
    single = load.Broker(oxka)
    try:
        single.start(answer=True)
        create_topic(admin([single.bootstrap]), "tput", partitions)
        for acks in ("1", "all"):
            phase(f"6. throughput, single node acks={acks}")
            out[f"single_acks_{acks}"] = produce_run(single.bootstrap, "tput", acks, messages)
    finally:
        single.stop()
    out["cluster_all_over_single_all"] = round(out["cluster_acks_all"] / out["single_acks_all"], 2)
    out["cluster_all_over_single_1"] = round(out["cluster_acks_all"] / out["single_acks_1"], 2)
    return out


def round_cases_1_to_3(oxka, creates):
    cluster = Cluster(oxka)
    try:
        phase("1. start to serving")
        start = case_start(cluster)
        phase("2. metadata propagation")
        prop = case_propagation(cluster, creates)
        phase("3. controller failover")
        fail = case_controller_failover(cluster)
        return start, prop, fail
    except Exception:
        cluster.tail_logs()
        raise
    finally:
        cluster.stop()


# ---------------------------------------------------------------- main
def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--oxka", default="target/release/oxka")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--creates", type=int, default=20, help="CreateTopics per round in case 2")
    ap.add_argument("--partitions", type=int, default=10000, help="case 5; 0 skips it")
    ap.add_argument("--messages", type=int, default=1000000, help="case 6, 100 B each; 0 skips it")
    ap.add_argument("--json", help="write every figure and the load averages here")
    args = ap.parse_args()
    oxka = os.path.abspath(args.oxka)

    res = {"command": " ".join(sys.argv), "start_ms": [], "propagation": [], "controller_failover": [],
           "leader_restart": [], "idle": None, "throughput": None, "loadavg": LOADAVG,
           "date": time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime())}
    for r in range(args.rounds):
        log(f"### round {r + 1}/{args.rounds}")
        start, prop, fail = round_cases_1_to_3(oxka, args.creates)
        res["start_ms"].append(start)
        res["propagation"].append(prop)
        res["controller_failover"].append(fail)
        for session_ms in (None, 2000):
            phase(f"4. leader restart, session timeout {session_ms or 'default'}")
            res["leader_restart"].append(case_leader_restart(oxka, session_ms))
        log(json.dumps({k: res[k][-1] for k in ("start_ms", "propagation", "controller_failover")}))
    if args.partitions:
        phase(f"5. idle at {args.partitions} partitions")
        res["idle"] = case_idle(oxka, args.partitions)
        phase("5. done")
    if args.messages:
        res["throughput"] = case_throughput(oxka, args.messages)
        phase("6. done")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(res, f, indent=2)
    print_table(res)


def print_table(res):
    def med(xs):
        return statistics.median(xs)

    def span(xs):
        return f"{med(xs):,.0f} (" + " / ".join(f"{x:,.0f}" for x in xs) + ")"

    print("| case | median (every round), ms |")
    print("|---|---|")
    print(f"| 1. spawn of 3 -> all list 3 brokers | {span(res['start_ms'])} |")
    p = res["propagation"]
    print(f"| 2. CreateTopics ack on A (median per round) | {span([x['ack_median_ms'] for x in p])} |")
    print(f"| 2. create -> B and C show all leaders: median per round | {span([x['median_ms'] for x in p])} |")
    print(f"| 2. same, p90 per round ({p[0]['creates']} creates x 2 nodes) | {span([x['p90_ms'] for x in p])} |")
    c = res["controller_failover"]
    print(f"| 3. SIGKILL controller -> survivor reports a new one | {span([x['new_controller_ms'] for x in c])} |")
    print(f"| 3. SIGKILL controller -> first CreateTopics succeeds | {span([x['first_create_ms'] for x in c])} |")
    print(f"| 3. new controller seen -> first CreateTopics succeeds | "
          f"{span([x['detection_to_create_ms'] for x in c])} |")
    for s in (9000, 2000):
        rows = [x for x in res["leader_restart"] if x["session_timeout_ms"] == s]
        print(f"| 4. session {s}: SIGKILL p0 leader -> fenced (leader -1) | {span([x['fenced_ms'] for x in rows])} |")
        print(f"| 4. session {s}: restart -> p0 led again | {span([x['restart_to_leader_ms'] for x in rows])} |")
        print(f"| 4. session {s}: restart -> first acks=all produce to p0 | "
              f"{span([x['restart_to_produce_ms'] for x in rows])} |")
    if res["idle"]:
        i = res["idle"]
        print()
        print(f"Idle at {i['partitions']:,} partitions ({i['topics']} topics; created in {i['create_s']} s, "
              f"led everywhere after {i['led_everywhere_s']} s), {i['idle_s']} s idle:")
        print("| node | partitions led | RSS empty / with partitions, MiB | KiB per partition | "
              "CPU % of a core | CPU µs per partition-second |")
        print("|---|---|---|---|---|---|")
        for n in i["nodes"]:
            print(f"| {n['node']} | {n['partitions']:,} | {n['rss_empty_mib']} / {n['rss_mib']} | "
                  f"{n['rss_kib_per_partition']} | {n['cpu_pct']} | {n['cpu_us_per_partition_s']} |")
    if res["throughput"]:
        t = res["throughput"]
        print()
        print(f"Throughput, Python producer, {t['messages']:,} x 100 B, {t['partitions']} partitions RF1, msgs/s: "
              f"cluster acks=all {t['cluster_acks_all']:,}; single node acks=1 {t['single_acks_1']:,}, "
              f"acks=all {t['single_acks_all']:,}; cluster/single acks=all {t['cluster_all_over_single_all']}, "
              f"cluster acks=all / single acks=1 {t['cluster_all_over_single_1']}")
    print()
    print("load averages (1/5/15 min) by phase:")
    for entry in res["loadavg"]:
        print(f"  {entry['phase']}: " + " ".join(f"{x:.2f}" for x in entry["loadavg"]))


if __name__ == "__main__":
    main()
