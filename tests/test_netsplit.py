"""A network partition isolating a partition leader from both followers, while every client
still reaches every node: nothing acknowledged with acks=all may be lost.

How the partition is made (no iptables/nft needed; Linux /proc only)
--------------------------------------------------------------------
The cluster runs with `Cluster(..., proxied=True)`: each node's listeners bind hidden ports
(`lport`, `lcport`), and the addresses everyone is told about -- the advertised PLAINTEXT
listener (what Metadata returns, so what the replica fetchers *and* the clients use) and the
`controller.quorum.voters` entries (Raft traffic, broker heartbeats, AlterPartition) -- are
ports served by one asyncio TCP proxy per node and listener (`Splitter`), forwarding to the
hidden ones.

All nodes and the test run on 127.0.0.1, so a source address cannot tell a broker's connection
from a client's.  The proxy tells them apart by *process*: for each accepted connection it looks
the peer's (ephemeral) port up in /proc/net/tcp{,6} to get the connecting socket's inode, and
finds which process holds `socket:[inode]` among /proc/<pid>/fd of the test itself and of each
node's process.  So every connection is labelled (source node or "test client", destination
node).  `cut(L, others)` then blocks the directed pairs L->x and x->L on both listeners:
established connections stall (the proxy stops reading, TCP back-pressure does the rest, as
with dropped packets) and new ones are accepted but never forwarded.  Connections from the test
(producer, consumers, raw probes) always pass, to every node.  On `heal()` the stalled
connections are reset (the seed can instead let them resume, as TCP would after a short
partition).

The scenario
------------
RF 3, min.insync.replicas=2, one partition whose preferred leader L is chosen by the seed
(the metadata quorum's leader or not).  An idempotent acks=all confluent-kafka producer sends
numbered values the whole time.  L is cut off from both followers for CUT_S (15 s, longer than
broker.session.timeout.ms = 9 s) while producing; during the cut raw acks=1 Produce requests
go straight to L, which (thinking itself leader) appends them to a log only it has.  The
majority must fence L and elect a new leader from the ISR; the producer moves there.  Heal,
keep producing a little, flush, wait for the full ISR, then check:

- every acks=all delivery report that succeeded is in the log exactly once, at the offset it
  reported; no value appears twice; values are in increasing order (the idempotent producer
  keeps order);
- a new leader (not L) with a higher leader epoch was elected during the cut;
- every replica (each read with its own KIP-392 Fetch, v11+, up to its high watermark) holds
  exactly the same records as the leader -- in particular L truncated what only it had: none of
  the acks=1 records written to L during the cut is anywhere;
- the heal only reconnects L: the leader the majority elected keeps its leadership and leader
  epoch until the ISR is full again, and the partition is never leaderless after the heal (what
  Kafka does; a view of every node is sampled every 0.25 s from the heal on);
- the cut really holds: mid-cut, no node has a connection straight to another node's hidden
  port (Kafka's quorum RPCs carry controller endpoints, KIP-853, so a proxied Kafka also
  advertises its CONTROLLER listener at the proxy).

Every wait is bounded; the timeline (cut, leader/ISR as each node reports them, heal, ISR full,
delivery counts) is printed.  Skips (with the reason) where /proc cannot identify a
connection's process.

    OXKA_BIN=$PWD/target/release/oxka python -m pytest -s tests/test_netsplit.py
    OXKA_CLUSTER_IMPL=kafka python -m pytest -s tests/test_netsplit.py     # the reference
    OXKA_NETSPLIT_SEED=1234 ...                                            # replay a run
"""
import asyncio
import gc
import os
import random
import socket
import sys
import threading
import time
import uuid

import pytest
from confluent_kafka import Consumer, KafkaError, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

import cluster as clu

pytestmark = pytest.mark.timeout(420)

IMPLS = clu.selected_impls()

CUT_S = 15.0  # > broker.session.timeout.ms
SESSION_MS = 9000
OVERRIDES = dict(clu.REPLICATED_OVERRIDES, **{
    "offsets.topic.num.partitions": "3",
    "transaction.state.log.num.partitions": "3",
    "broker.session.timeout.ms": str(SESSION_MS),
})
FAILOVER_BOUND = 45  # from the cut to a new leader named by the majority
ISR_BOUND = 90       # from the heal to the full ISR


# ------------------------------------------------------------------ who holds a socket
def _socket_inode(peer_port, local_port):
    """The inode of the socket whose local port is peer_port and remote port local_port (the
    connecting side of a connection the proxy accepted on local_port), or None."""
    for path in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            with open(path) as f:
                lines = f.readlines()[1:]
        except OSError:
            continue
        for line in lines:
            f = line.split()
            if len(f) < 10:
                continue
            if (int(f[1].rsplit(":", 1)[1], 16) == peer_port
                    and int(f[2].rsplit(":", 1)[1], 16) == local_port):
                return f[9]
    return None


def _holder(inode, pids):
    """Which key of pids ({who: pid}) holds socket:[inode] open, or None."""
    want = "socket:[%s]" % inode
    for who, pid in pids.items():
        d = "/proc/%d/fd" % pid
        try:
            fds = os.listdir(d)
        except OSError:
            continue
        for fd in fds:
            try:
                if os.readlink(os.path.join(d, fd)) == want:
                    return who
            except OSError:
                continue
    return None


CLIENT = 0  # the test process (producer, consumers, probes)


def bypasses(c):
    """Established connections from one node's process straight to another node's hidden
    (listening) port, i.e. around the proxies: [(src node, dst node, port)]."""
    hidden = {}
    for n in c.nodes:
        hidden[n.lport] = n.node_id
        hidden[n.lcport] = n.node_id
    pids = {n.node_id: n.proc.pid for n in c.nodes if n.alive()}
    out = []
    for path in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            with open(path) as f:
                lines = f.readlines()[1:]
        except OSError:
            continue
        for line in lines:
            f = line.split()
            if len(f) < 10 or f[3] != "01":  # ESTABLISHED
                continue
            rport = int(f[2].rsplit(":", 1)[1], 16)
            if rport not in hidden:
                continue
            who = _holder(f[9], pids)
            if who is not None and who != hidden[rport]:
                out.append((who, hidden[rport], rport))
    return sorted(set(out))


class _Conn:
    def __init__(self, src, dst, kind):
        self.src, self.dst, self.kind = src, dst, kind
        self.stalled = False
        self.dead = False
        self.transports = []

    def abort(self):
        self.dead = True
        for t in self.transports:
            try:
                t.abort()
            except Exception:  # noqa: BLE001
                pass


class Splitter:
    """One asyncio loop (its own thread) with a TCP proxy per (node, listener); connections are
    labelled by the process that made them (see the module doc)."""

    def __init__(self, pids_fn):
        self.pids_fn = pids_fn  # -> {node_id: pid} of the live nodes
        self.blocked = set()    # directed (src, dst) node pairs
        self.conns = set()
        self.stats = {}         # (src, dst, kind) -> accepted count
        self.unknown = []       # (time, dst, kind) connections whose process was not found
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.servers = []
        self._changed = None

    def start(self, routes):
        """routes: [(listen_port, dst_node, kind, target_port)]."""
        self.thread.start()

        async def setup():
            self._changed = asyncio.Event()
            for lp, dst, kind, tp in routes:
                srv = await asyncio.start_server(
                    lambda r, w, dst=dst, kind=kind, lp=lp, tp=tp: self._handle(r, w, dst, kind, lp, tp),
                    "127.0.0.1", lp, reuse_address=True)
                self.servers.append(srv)
        asyncio.run_coroutine_threadsafe(setup(), self.loop).result(10)

    def stop(self):
        async def down():
            for s in self.servers:
                s.close()
            for c in list(self.conns):
                c.abort()
        try:
            asyncio.run_coroutine_threadsafe(down(), self.loop).result(10)
        finally:
            self.loop.call_soon_threadsafe(self.loop.stop)
            self.thread.join(10)

    def _call(self, fn):
        async def run():
            return fn()
        return asyncio.run_coroutine_threadsafe(run(), self.loop).result(10)

    def _notify(self):
        self._changed.set()
        self._changed = asyncio.Event()

    def cut(self, isolated, others):
        def do():
            for o in others:
                self.blocked.add((isolated, o))
                self.blocked.add((o, isolated))
            self._notify()
        self._call(do)

    def heal(self, reset=True):
        """Unblock everything; reset=True aborts every connection that stalled."""
        def do():
            self.blocked.clear()
            n = 0
            for c in list(self.conns):
                if c.stalled and reset:
                    c.abort()
                    n += 1
            self._notify()
            return n
        return self._call(do)

    def stalled(self):
        return self._call(lambda: sorted((c.src, c.dst, c.kind) for c in self.conns if c.stalled))

    def identify(self, peer_port, listen_port):
        inode = _socket_inode(peer_port, listen_port)
        if inode is None:
            return None
        pids = {CLIENT: os.getpid()}
        pids.update(self.pids_fn())
        return _holder(inode, pids)

    async def _gate(self, conn):
        while (conn.src, conn.dst) in self.blocked and not conn.dead:
            conn.stalled = True
            await self._changed.wait()

    async def _pump(self, conn, reader, writer):
        try:
            while not conn.dead:
                data = await reader.read(65536)
                if not data:
                    break
                await self._gate(conn)
                if conn.dead:
                    break
                writer.write(data)
                await writer.drain()
        except (OSError, asyncio.CancelledError):
            pass
        finally:
            conn.abort()

    async def _handle(self, reader, writer, dst, kind, listen_port, target_port):
        peer = writer.get_extra_info("peername")
        src = self.identify(peer[1], listen_port)
        if src is None:
            self.unknown.append((time.monotonic(), dst, kind))
            src = "?"  # never blocked; reported
        key = (src, dst, kind)
        self.stats[key] = self.stats.get(key, 0) + 1
        conn = _Conn(src, dst, kind)
        conn.transports.append(writer.transport)
        self.conns.add(conn)
        try:
            await self._gate(conn)  # a connection made during the cut is never forwarded
            if conn.dead:
                return
            try:
                ur, uw = await asyncio.open_connection("127.0.0.1", target_port)
            except OSError:
                return
            conn.transports.append(uw.transport)
            await asyncio.gather(self._pump(conn, reader, uw), self._pump(conn, ur, writer))
        finally:
            conn.abort()
            self.conns.discard(conn)


def _skip_reason():
    if not sys.platform.startswith("linux"):
        return "needs Linux /proc to tell which process made a connection"
    if not (os.path.exists("/proc/net/tcp") and os.path.isdir("/proc/self/fd")):
        return "no /proc/net/tcp or /proc/self/fd: cannot tell brokers' connections from clients'"
    # the proxy's own check: a connection from this process is recognised as this process's
    srv = socket.socket()
    try:
        srv.bind(("127.0.0.1", 0))
        srv.listen(1)
        cli = socket.create_connection(srv.getsockname(), timeout=2)
        acc, peer = srv.accept()
        inode = _socket_inode(peer[1], srv.getsockname()[1])
        who = _holder(inode, {CLIENT: os.getpid()}) if inode else None
        cli.close()
        acc.close()
        if who != CLIENT:
            return "cannot map a loopback connection to its process via /proc (inode %r)" % inode
    finally:
        srv.close()
    return None


# ------------------------------------------------------------------ cluster helpers
def _skip_unsupported(impl):
    reason = _skip_reason()
    if reason:
        pytest.skip(reason)
    clu.skip_unsupported(impl)


def metadata(node, topics, timeout=5):
    """{partition: {"leader", "epoch", "replicas", "isr"}} of topics[0] from one node (Metadata v9+)."""
    from kafka.protocol.metadata import MetadataRequest
    probe = clu.Probe(node.port, timeout=timeout)
    v = probe.version(3, 12, lowest=9)
    T = MetadataRequest.MetadataRequestTopic
    kw = dict(topics=[T(name=t) for t in topics], allow_auto_topic_creation=False,
              include_topic_authorized_operations=False)
    if v <= 10:
        kw["include_cluster_authorized_operations"] = False
    r = probe.call(MetadataRequest, v, **kw)
    out = {}
    for t in r.topics:
        parts = {}
        for p in t.partitions:
            parts[p.partition_index] = {"error": p.error_code, "leader": p.leader_id,
                                        "epoch": p.leader_epoch, "replicas": sorted(p.replica_nodes),
                                        "isr": sorted(p.isr_nodes)}
        out[t.name] = {"error": t.error_code, "id": getattr(t, "topic_id", None), "partitions": parts}
    return out


def pstate(c, topic, nodes):
    """(leader, epoch, isr) of topic[0] once all `nodes` agree; else None."""
    seen = set()
    for n in nodes:
        md = metadata(n, [topic])[topic]
        if md["error"] or 0 not in md["partitions"]:
            return None
        s = md["partitions"][0]
        seen.add((s["leader"], s["epoch"], tuple(s["isr"])))
    return seen.pop() if len(seen) == 1 else None


def raw_produce_acks1(node, topic, values, timeout=5):
    """A raw acks=1 Produce of `values` to one node: (error, base_offset)."""
    import kwire
    from kafka.protocol.producer import ProduceRequest
    TPD = ProduceRequest.TopicProduceData
    probe = clu.Probe(node.port, timeout=timeout)
    v = probe.version(0, 9, lowest=3)
    r = probe.call(ProduceRequest, v, transactional_id=None, acks=1, timeout_ms=3000,
                   topic_data=[TPD(name=topic, partition_data=[TPD.PartitionProduceData(
                       index=0, records=kwire.record_batch(values))])])
    pr = r.responses[0].partition_responses[0]
    return pr.error_code, pr.base_offset


def replica_log(node, topic, topic_id, end):
    """[(offset, value)] of topic[0] as `node` itself serves it (Fetch v12: a follower answers
    consumers from its own copy, KIP-392), up to `end`; (error, hw, records)."""
    from kafka.protocol.consumer import FetchRequest
    from kafka.record import MemoryRecords
    FT = FetchRequest.FetchTopic
    out, off, hw, err = [], 0, -1, 0
    probe = clu.Probe(node.port)
    v = probe.version(1, 12, lowest=11)
    for _ in range(10000):
        if off >= end:
            break
        part = FT.FetchPartition(partition=0, current_leader_epoch=-1, fetch_offset=off,
                                 log_start_offset=-1, partition_max_bytes=1 << 20)
        r = probe.call(FetchRequest, v, replica_id=-1, max_wait_ms=0, min_bytes=0,
                       max_bytes=1 << 20, isolation_level=0, session_id=0, session_epoch=-1,
                       topics=[FT(topic=topic, partitions=[part])], forgotten_topics_data=[],
                       rack_id="")
        pr = r.responses[0].partitions[0]
        err, hw = pr.error_code, pr.high_watermark
        if err:
            break
        recs = MemoryRecords(bytes(pr.records or b""))
        got = 0
        while recs.has_next():
            batch = recs.next_batch()
            if batch is None:
                break
            for rec in batch:
                if rec.offset >= off:
                    out.append((rec.offset, rec.value))
                    got += 1
        if not got:
            break
        off = out[-1][0] + 1
    return err, hw, out


@pytest.fixture(params=IMPLS)
def impl(request):
    _skip_unsupported(request.param)
    return request.param


def test_isolated_leader_loses_no_acknowledged_record(impl, tmp_path):
    from conftest import OXKA_BIN
    seed = int(os.environ.get("OXKA_NETSPLIT_SEED", random.randrange(1 << 30)))
    rnd = random.Random(seed)
    t0 = time.monotonic()
    events = []

    def ev(msg, *a):
        line = "%7.2fs  %s" % (time.monotonic() - t0, msg % a if a else msg)
        events.append(line)
        print(line, flush=True)

    ev("seed %d (%s)", seed, impl)
    c = clu.Cluster(impl, str(tmp_path / impl), n=3, overrides=OVERRIDES, oxka_bin=OXKA_BIN,
                    proxied=True)
    sp = Splitter(lambda: {n.node_id: n.proc.pid for n in c.nodes if n.alive()})
    routes = []
    for n in c.nodes:
        routes.append((n.port, n.node_id, "client", n.lport))
        routes.append((n.cport, n.node_id, "controller", n.lcport))
    producer = majority = None
    stop = threading.Event()
    try:
        sp.start(routes)
        c.start()
        ev("cluster up (%s)", ", ".join("node %d: %d->%d, %d->%d" % (
            n.node_id, n.port, n.lport, n.cport, n.lcport) for n in c.nodes))

        def timeline_fail(msg):
            c.fail("%s\nseed %d\ntimeline:\n%s\nproxy: accepted %r, unknown %d"
                   % (msg, seed, "\n".join(events), sp.stats, len(sp.unknown)))

        # ---- the topic: preferred leader L, the quorum leader or not (seed)
        # (DescribeQuorum where served -- Kafka's Metadata names a random broker as controller --
        # else Metadata's controller id)
        qleader = c.wait_until(lambda: c.node(1).probe.quorum_leader()
                               or c.node(1).probe.metadata(topics=[])[1], 30, "a quorum leader")
        on_controller = rnd.random() < 0.5
        if qleader in c.ids:
            L = qleader if on_controller else rnd.choice([i for i in c.ids if i != qleader])
        else:
            L = rnd.choice(c.ids)
        others = [i for i in c.ids if i != L]
        rnd.shuffle(others)
        topic = "netsplit-%s" % uuid.uuid4().hex[:8]
        adm = AdminClient({"bootstrap.servers": c.bootstrap(), "log.connection.close": False})
        fs = adm.create_topics([NewTopic(topic, 1, -1, replica_assignment=[[L] + others],
                                         config={"min.insync.replicas": "2"})], request_timeout=30)
        fs[topic].result(40)
        del adm, fs
        gc.collect()
        st = c.wait_until(lambda: (lambda s: s if s and s[0] == L and len(s[2]) == 3 else None)(
            pstate(c, topic, c.nodes)), 60, "%s led by %d with 3 in sync" % (topic, L))
        epoch0 = st[1]
        tid = metadata(c.node(L), [topic])[topic]["id"]
        ev("topic %s: leader %d (quorum leader %s), replicas %r, epoch %d, isr %r",
           topic, L, qleader, [L] + others, epoch0, list(st[2]))

        # ---- the producer (its own thread)
        acked, failed = [], []
        sent = [0]
        lock = threading.Lock()

        def cb(err, m):
            with lock:
                if err is None:
                    acked.append((m.value(), m.offset(), time.monotonic() - t0))
                else:
                    failed.append((m.value(), err.name(), time.monotonic() - t0))

        def new_producer(*node_ids):
            return Producer({
                "bootstrap.servers": c.bootstrap(*node_ids), "enable.idempotence": True,
                "acks": "all", "linger.ms": 5, "message.timeout.ms": 150000,
                "request.timeout.ms": 5000, "retry.backoff.ms": 100, "retry.backoff.max.ms": 1000,
                "topic.metadata.refresh.interval.ms": 2000, "log.connection.close": False})

        def produce_loop(prod, prefix, slot):
            i = 0
            for _ in range(1000000):
                if stop.is_set():
                    break
                for _ in range(50):
                    try:
                        prod.produce(topic, value=prefix + b"%07d" % i, partition=0, on_delivery=cb)
                        break
                    except BufferError:
                        prod.poll(0.1)
                else:
                    break
                i += 1
                sent[slot] = i
                prod.poll(0)
                time.sleep(0.004)
        # the main producer, bootstrapped at every node; values 0000000, 0000001, ...
        producer = new_producer()
        majority = None  # a second one, started mid-cut at the majority only: M0000000, ...
        sent.append(0)
        th = threading.Thread(target=produce_loop, args=(producer, b"", 0), daemon=True)
        th.start()
        th2 = None

        def acks():
            with lock:
                return len(acked), len(failed)

        c.wait_until(lambda: acks()[0] >= 200, 30, "200 acknowledged records before the cut")
        ev("before the cut: sent %d, acked %d, failed %d", sent[0], *acks())

        # ---- the cut
        sp.cut(L, others)
        t_cut = time.monotonic()
        ev("CUT node %d <-> nodes %r (client and controller listeners)", L, others)
        markers, new_leader, new_epoch, last_seen = [], None, None, {}
        for k in range(int(CUT_S / 0.5) + 5):
            el = time.monotonic() - t_cut
            if el >= CUT_S:
                break
            for n in c.nodes:  # the test reaches every node throughout
                try:
                    s = metadata(n, [topic], timeout=2)[topic]["partitions"][0]
                    view = (s["leader"], s["epoch"], tuple(s["isr"]))
                except Exception as e:  # noqa: BLE001
                    view = ("error", repr(e)[:60])
                if last_seen.get(n.node_id) != view:
                    last_seen[n.node_id] = view
                    ev("  node %d says leader %s epoch %s isr %s", n.node_id, *(
                        view if len(view) == 3 else (view[0], view[1], "")))
                if (n.node_id in others and len(view) == 3 and view[0] in others
                        and view[1] > epoch0 and new_leader is None):
                    new_leader, new_epoch = view[0], view[1]
                    ev("  new leader %d (epoch %d) named %.1fs into the cut", view[0], view[1], el)
                    # a producer that only knows the majority, so the new leader gets acks=all
                    # writes during the cut (the main one may stay stuck on the isolated node)
                    majority = new_producer(*others)
                    th2 = threading.Thread(target=produce_loop, args=(majority, b"M", 1), daemon=True)
                    th2.start()
            if k % 4 == 1:  # records only L gets: acks=1 straight to the isolated leader
                vals = [b"L-only-%d-%d" % (k, j) for j in range(3)]
                try:
                    err, base = raw_produce_acks1(c.node(L), topic, vals, timeout=4)
                except Exception as e:  # noqa: BLE001
                    err, base = repr(e)[:60], None
                if err == 0:
                    markers.extend(vals)
                ev("  acks=1 to isolated %d: error %s base_offset %s", L, err, base)
            time.sleep(0.5)
        ev("during the cut: sent %d, acked %d, failed %d; stalled connections %d",
           sent[0], *acks(), len(sp.stalled()))
        around = bypasses(c)
        if around:
            stop.set()
            timeline_fail("the partition leaks: node-to-node connections around the proxies "
                          "(src, dst, port) %r" % around)
        if new_leader is None:
            # still give the majority up to FAILOVER_BOUND
            def elected():
                s = pstate(c, topic, [c.node(i) for i in others])
                return s if s and s[0] in others and s[1] > epoch0 else None
            try:
                s = c.wait_until(elected, max(1, FAILOVER_BOUND - (time.monotonic() - t_cut)),
                                 "a new leader among %r" % others)
                new_leader, new_epoch = s[0], s[1]
                ev("  new leader %d (epoch %d) named %.1fs after the cut", s[0], s[1],
                   time.monotonic() - t_cut)
            except AssertionError:
                stop.set()
                timeline_fail("the majority %r elected no new leader within %ds of cutting off %d"
                              % (others, FAILOVER_BOUND, L))
        reset = rnd.random() < 0.75
        # from the heal until the ISR is full: every node's view, every 0.25 s (own thread)
        after_heal = []  # (time, node, view)
        watching = threading.Event()

        def watch():
            for _ in range(4000):
                if watching.is_set():
                    break
                for n in c.nodes:
                    try:
                        s = metadata(n, [topic], timeout=2)[topic]["partitions"][0]
                        view = (s["leader"], s["epoch"], tuple(s["isr"]))
                    except Exception:  # noqa: BLE001 - a node busy for a moment
                        continue
                    after_heal.append((time.monotonic() - t0, n.node_id, view))
                    if last_seen.get(n.node_id) != view:
                        last_seen[n.node_id] = view
                        ev("  node %d says leader %s epoch %s isr %s", n.node_id, *view)
                time.sleep(0.25)
        watcher = threading.Thread(target=watch, daemon=True)
        n_reset = sp.heal(reset=reset)
        watcher.start()
        t_heal = time.monotonic()
        ev("HEAL (%s; %d stalled connections reset)", "reset" if reset else "resume", n_reset)

        # ---- after the heal: keep producing a while, then flush
        acked_at_heal = acks()[0]
        c.wait_until(lambda: acks()[0] >= acked_at_heal + 200, 60,
                     "200 more acknowledged records after the heal")
        time.sleep(2)
        stop.set()
        th.join(30)
        if th2 is not None:
            th2.join(30)
        left = producer.flush(170) + (majority.flush(170) if majority is not None else 0)
        ev("producers flushed: sent %d + %d (majority), acked %d, failed %d, left %d",
           sent[0], sent[1], *acks(), left)
        del producer, majority
        producer = majority = None
        gc.collect()

        def full_isr():
            views = set()
            for n in c.nodes:
                s = metadata(n, [topic], timeout=2)[topic]["partitions"][0]
                views.add((s["leader"], s["epoch"], tuple(s["isr"])))
            s = views.pop() if len(views) == 1 else None
            return s if s and len(s[2]) == 3 and s[0] in c.ids else None
        try:
            st2 = c.wait_until(full_isr, ISR_BOUND, "the full ISR of %s[0] after the heal" % topic,
                               interval=0.5)
        except AssertionError as e:
            timeline_fail("ISR not full again: %s" % str(e).splitlines()[0])
        time.sleep(1)  # the watcher's last round
        watching.set()
        watcher.join(10)
        ev("ISR full again %.1fs after the heal: leader %d epoch %d isr %r",
           time.monotonic() - t_heal, st2[0], st2[1], list(st2[2]))

        # ---- the checks
        with lock:
            ok = sorted(acked, key=lambda x: x[1])
            bad = list(failed)
        assert left == 0, timeline_fail("%d records never reported" % left)
        n_cut = sum(1 for _, _, at in ok if t_cut - t0 <= at <= t_heal - t0)
        end = ok[-1][1] + 1 if ok else 0

        cons = Consumer({"bootstrap.servers": c.bootstrap(), "group.id": "ns-" + uuid.uuid4().hex[:6],
                         "enable.auto.commit": False, "log.connection.close": False,
                         "enable.partition.eof": True})
        got = []
        try:
            lo, hi = cons.get_watermark_offsets(TopicPartition(topic, 0), timeout=10, cached=False)
            cons.assign([TopicPartition(topic, 0, -2)])
            deadline = time.monotonic() + 90
            for _ in range(2000):
                if (got and got[-1][0] >= hi - 1) or time.monotonic() > deadline:
                    break
                for m in cons.consume(500, 0.5):
                    if m.error() is None:
                        got.append((m.offset(), m.value()))
                    elif m.error().code() != KafkaError._PARTITION_EOF:
                        timeline_fail("consumer error %r" % m.error())
        finally:
            cons.close()
        ev("consumed %d records (watermarks %d..%d)", len(got), lo, hi)

        log = dict(got)
        offs = [o for o, _ in got]
        problems = []
        if offs != sorted(set(offs)):
            problems.append("offsets out of order or repeated")
        for name, pick in (("main", lambda v: v[:1].isdigit()), ("majority", lambda v: v[:1] == b"M")):
            values = [v for _, v in got if pick(v)]
            if len(values) != len(set(values)):
                dup = sorted({v for v in values if values.count(v) > 1})[:10]
                problems.append("%s producer: duplicate values %r" % (name, dup))
            if values != sorted(values):
                problems.append("%s producer: values out of order: first inversion at %r" % (name, next(
                    (values[i], values[i + 1]) for i in range(len(values) - 1) if values[i] > values[i + 1])))
        lost = [(v, o) for v, o, _ in ok if log.get(o) != v]
        if lost:
            problems.append("%d acknowledged records not at their offsets, first %r (log has %r)"
                            % (len(lost), lost[:5], [log.get(o) for _, o in lost[:5]]))
        if hi < end:
            problems.append("high watermark %d below an acknowledged offset %d" % (hi, end - 1))
        found_markers = [(o, v) for o, v in got if v.startswith(b"L-only")]
        if found_markers:
            problems.append("acks=1 records written only to the isolated leader survived: %r"
                            % found_markers[:5])
        # every replica's own copy equals the leader's
        for n in c.nodes:
            def same():
                err, rhw, rl = replica_log(n, topic, tid, hi)
                return (err, rhw, rl) if err == 0 and rhw >= hi and len(rl) >= len(got) else None
            try:
                err, rhw, rl = c.wait_until(same, 30, "node %d to serve its copy up to %d"
                                            % (n.node_id, hi), interval=0.5)
            except AssertionError:
                err, rhw, rl = replica_log(n, topic, tid, hi)
            rl = rl[:len(got)]
            if rl != got:
                diff = next((i for i in range(min(len(rl), len(got))) if rl[i] != got[i]),
                            min(len(rl), len(got)))
                problems.append("node %d's copy (error %s, hw %s, %d records) differs from the log "
                                "read through the leader (%d records) from index %d: %r vs %r"
                                % (n.node_id, err, rhw, len(rl), len(got), diff,
                                   rl[diff:diff + 2], got[diff:diff + 2]))
        ev("checked: %d acked (%d while cut), %d failed %r, %d acks=1 markers to the isolated "
           "leader, %d records in the log; new leader %s", len(ok), n_cut, len(bad),
           sorted({e for _, e, _ in bad}), len(markers), len(got), new_leader)
        ev("proxy: accepted %r; unidentified %d; %d stalled", dict(sorted(
            ((str(k), v) for k, v in sp.stats.items()))), len(sp.unknown), n_reset)
        if problems:
            timeline_fail("ACKNOWLEDGED DATA VIOLATION:\n  " + "\n  ".join(problems))
        # The heal only reconnects L: the majority's leader (elected during the cut, its ISR never
        # cut off) stays leader at its epoch, as on Kafka; in particular the partition is never
        # leaderless after the heal.
        leaderless = [(round(at, 2), n) for at, n, v in after_heal if v[0] < 0]
        moved = sorted({(n, v[0], v[1]) for at, n, v in after_heal
                        if n in others and (v[0], v[1]) != (new_leader, new_epoch)})
        if leaderless or (st2[0], st2[1]) != (new_leader, new_epoch):
            timeline_fail("leadership changed after the heal: leader %d epoch %d elected during "
                          "the cut, %d epoch %d once the ISR was full; leaderless views (time, node) "
                          "%r; other views of the majority (node, leader, epoch) %r"
                          % (new_leader, new_epoch, st2[0], st2[1], leaderless[:10], moved[:10]))
        assert new_leader in others
        assert len(ok) >= 400, timeline_fail("too few acknowledged records to mean anything")
        assert markers, timeline_fail("no acks=1 record reached the isolated leader during the cut")
        assert any(k[0] == L and k[1] in others for k in sp.stats) and \
            any(k[1] == L and k[0] in others for k in sp.stats), \
            timeline_fail("the proxy never saw node-to-node connections of %d" % L)
    finally:
        stop.set()
        for prod in (producer, majority):
            if prod is not None:
                prod.flush(5)
        producer = majority = None
        gc.collect()
        c.close()
        sp.stop()
