"""A multi-node cluster of real broker processes for tests/test_cluster.py: N `oxka` processes
(`$OXKA_BIN`) or N Apache Kafka 4.1.1 nodes (tests/kafkaref.py), each a combined
broker+controller with Kafka's own keys:

    process.roles=broker,controller   node.id=N
    controller.quorum.voters=1@127.0.0.1:C1,2@127.0.0.1:C2,3@127.0.0.1:C3
    listeners=PLAINTEXT://127.0.0.1:Pn,CONTROLLER://127.0.0.1:Cn
    advertised.listeners=PLAINTEXT://127.0.0.1:Pn   controller.listener.names=CONTROLLER
    offsets.topic.replication.factor=1   transaction.state.log.replication.factor=1

Every node gets free loopback ports (client, controller, and for oxka metrics), its own data dir
and its own log file.  All nodes are spawned at once; `wait_ready` waits (bounded) until every
live node answers a raw Metadata request listing all the brokers.  One node at a time can be
SIGKILLed, SIGTERMed, SIGSTOPped/SIGCONTed and restarted with the same dir and ports.

The probes here speak the wire directly (kafka-python's protocol classes via tests/kwire.py) to
*one* node, so "node 2 says" means node 2 answered, not whichever broker a client picked.

`Cluster.fail(msg)` raises an AssertionError carrying every node's log tail; `wait_until` is
bounded in count and time and fails that way too.

With `Cluster(..., proxied=True)` every node also gets a second pair of free ports
(`node.lport`, `node.lcport`) that its listeners bind, while `node.port`/`node.cport` (its
advertised listener, its `controller.quorum.voters` entry, the probes and the bootstraps) are
left for the caller to serve, e.g. with a fault-injecting proxy forwarding to the real ports
(tests/test_netsplit.py).  Without it (the default) both pairs are the same ports.

Not thread-safe: one test drives one cluster.
"""
import os
import signal
import socket
import subprocess
import time
import uuid

import kwire

IMPLS = ("oxka", "kafka")

# How long one node may take from spawn to serving (oxka is a native binary; a JVM on a loaded
# 2-core machine is not).
OXKA_READY_TIMEOUT = float(os.environ.get("OXKA_CLUSTER_READY_TIMEOUT", "30"))
KAFKA_READY_TIMEOUT = float(os.environ.get("OXKA_KAFKA_READY_TIMEOUT", "150"))


def selected_impls():
    """The implementations test_cluster.py runs against: OXKA_CLUSTER_IMPL (comma-separated,
    `oxka`, `kafka` or `oxka,kafka`); default oxka, or kafka when the suite runs with
    OXKA_TARGET=kafka."""
    raw = os.environ.get("OXKA_CLUSTER_IMPL")
    if raw is None:
        raw = "kafka" if os.environ.get("OXKA_TARGET") == "kafka" else "oxka"
    impls = [x.strip() for x in raw.split(",") if x.strip()]
    bad = [x for x in impls if x not in IMPLS]
    if bad or not impls:
        raise RuntimeError("OXKA_CLUSTER_IMPL must list oxka and/or kafka, not %r" % raw)
    return impls


# The replicated cluster the replication, fault and partition tests share: replication factor 3
# and min.insync.replicas 2 everywhere (internal topics too, 6 partitions each), followers out
# of the ISR after 4 s, and leadership moving only when a test makes it move.
REPLICA_LAG_MS = 4000
REPLICATED_OVERRIDES = {
    "default.replication.factor": "3",
    "min.insync.replicas": "2",
    "offsets.topic.replication.factor": "3",
    "offsets.topic.num.partitions": "6",
    "transaction.state.log.replication.factor": "3",
    "transaction.state.log.min.isr": "2",
    "transaction.state.log.num.partitions": "6",
    "replica.lag.time.max.ms": str(REPLICA_LAG_MS),
    "auto.leader.rebalance.enable": "false",
    "unclean.leader.election.enable": "false",
}


def unique(prefix):
    """A topic or group name no other test uses."""
    return "%s-%s" % (prefix, uuid.uuid4().hex[:8])


def skip_unsupported(impl):
    """Skips a Kafka run when Java or the jars are missing; fails an oxka run without a binary."""
    import pytest
    if impl == "kafka":
        import kafkaref
        reason = kafkaref.java_skip_reason()
        if reason:
            pytest.skip(reason)
    else:
        from conftest import OXKA_BIN
        if not os.path.exists(OXKA_BIN):
            pytest.fail("oxka binary not found at %s (build it or set OXKA_BIN)" % OXKA_BIN)


def free_ports(n):
    """n distinct free loopback ports (all held open together, so no two are the same)."""
    socks = []
    try:
        for _ in range(n):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.bind(("127.0.0.1", 0))
            socks.append(s)
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


def port_open(port, timeout=0.2):
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=timeout):
            return True
    except OSError:
        return False


# ------------------------------------------------------------------ raw probes of one node
class Probe:
    """Answers of one node, read off the wire."""

    def __init__(self, port, timeout=10):
        self.port = port
        self.timeout = timeout

    @property
    def host(self):
        return "127.0.0.1"

    def call(self, req_cls, version, **fields):
        s = kwire.connect(self, timeout=self.timeout)
        try:
            return kwire.request(s, req_cls, version, **fields)
        finally:
            s.close()

    def api_versions(self):
        """{api_key: (min, max)} advertised by the node (ApiVersions v0)."""
        s = kwire.connect(self, timeout=self.timeout)
        try:
            _, err, apis = kwire.parse_api_versions_v0(kwire.api_versions_raw(s, 0))
            assert err == 0, "ApiVersions error %d" % err
            return apis
        finally:
            s.close()

    def version(self, api_key, want, lowest=0):
        """The highest version <= want this node serves for api_key (None if < lowest)."""
        lo, hi = self.api_versions().get(api_key, (None, None))
        if hi is None:
            return None
        v = min(hi, want)
        return v if v >= max(lo, lowest) else None

    def metadata(self, topics=None):
        """(brokers {id: (host, port)}, controller_id, topics {name: {partition: (error, leader)}},
        topic errors {name: code}) from Metadata v9 (None = all topics)."""
        from kafka.protocol.metadata import MetadataRequest
        T = MetadataRequest.MetadataRequestTopic
        r = self.call(MetadataRequest, 9,
                      topics=None if topics is None else [T(name=t) for t in topics],
                      allow_auto_topic_creation=False,
                      include_cluster_authorized_operations=False,
                      include_topic_authorized_operations=False)
        brokers = {b.node_id: (b.host, b.port) for b in r.brokers}
        parts, errs = {}, {}
        for t in r.topics:
            errs[t.name] = t.error_code
            parts[t.name] = {p.partition_index: (p.error_code, p.leader_id) for p in t.partitions}
        return brokers, r.controller_id, parts, errs

    def describe_cluster(self):
        """(error, brokers {id: (host, port)}, controller_id) from DescribeCluster v0."""
        from kafka.protocol.admin import DescribeClusterRequest
        r = self.call(DescribeClusterRequest, 0, include_cluster_authorized_operations=False)
        return r.error_code, {b.broker_id: (b.host, b.port) for b in r.brokers}, r.controller_id

    def quorum_leader(self):
        """The metadata quorum's leader id from DescribeQuorum (KIP-595; a broker forwards it to
        the active controller), or None when the node does not serve DescribeQuorum."""
        from kafka.protocol.admin import DescribeQuorumRequest
        v = self.version(55, 1)
        if v is None:
            return None
        Topic = DescribeQuorumRequest.TopicData
        r = self.call(DescribeQuorumRequest, v, topics=[Topic(
            topic_name="__cluster_metadata", partitions=[Topic.PartitionData(partition_index=0)])])
        assert r.error_code == 0, "DescribeQuorum error %d" % r.error_code
        p = r.topics[0].partitions[0]
        assert p.error_code == 0, "DescribeQuorum partition error %d" % p.error_code
        return p.leader_id

    def find_coordinator(self, key, key_type=0):
        """(error, node_id, host, port) from FindCoordinator v3 (one key, the pre-KIP-699 form
        every client in the suite uses)."""
        from kafka.protocol.metadata import FindCoordinatorRequest
        r = self.call(FindCoordinatorRequest, 3, key=key, key_type=key_type)
        return r.error_code, r.node_id, r.host, r.port

    def topic_config(self, topic, key):
        """(error, value) of one topic config from DescribeConfigs v1."""
        from kafka.protocol.admin import DescribeConfigsRequest
        R = DescribeConfigsRequest.DescribeConfigsResource
        r = self.call(DescribeConfigsRequest, 1, resources=[R(
            resource_type=2, resource_name=topic, configuration_keys=[key])],
            include_synonyms=False)
        res = r.results[0]
        if res.error_code:
            return res.error_code, None
        vals = [c.value for c in res.configs if c.name == key]
        return 0, (vals[0] if vals else None)


# ------------------------------------------------------------------ nodes
class Node:
    """One broker+controller process of a cluster.  node_id, port (PLAINTEXT), cport (CONTROLLER),
    data_dir, log_path; life cycle start/kill/term/pause/resume/restart."""

    impl = None

    def __init__(self, cluster, node_id, port, cport):
        self.cluster = cluster
        self.node_id = node_id
        self.port = port
        self.cport = cport
        self.proc = None
        self.paused = False
        self.starts = 0
        # the ports the listeners bind: port/cport unless the cluster is proxied
        self.lport = port
        self.lcport = cport

    host = "127.0.0.1"

    @property
    def bootstrap(self):
        return "127.0.0.1:%d" % self.port

    @property
    def probe(self):
        return Probe(self.port)

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def log_text(self):
        try:
            with open(self.log_path, "rb") as f:
                return f.read().decode("utf-8", "replace")
        except OSError:
            return ""

    def log_tail(self, n=60):
        return "\n".join(self.log_text().splitlines()[-n:])

    def _signal(self, sig):
        if self.alive():
            try:
                os.kill(self.proc.pid, sig)
            except OSError:
                pass

    def kill(self):
        """SIGKILL and reap."""
        self._signal(signal.SIGCONT)
        self._signal(signal.SIGKILL)
        self.paused = False
        self._reap(10)

    def term(self, timeout=30):
        """SIGTERM (a controlled shutdown), SIGKILL after `timeout`."""
        self._signal(signal.SIGCONT)
        self._signal(signal.SIGTERM)
        self.paused = False
        if not self._reap(timeout):
            self.kill()

    def pause(self):
        self._signal(signal.SIGSTOP)
        self.paused = True

    def resume(self):
        self._signal(signal.SIGCONT)
        self.paused = False

    def restart(self, kill=True):
        """Stop (SIGKILL, or SIGTERM with kill=False) and start again with the same config, data
        dir and ports.  Does not wait for readiness (Cluster.wait_ready does)."""
        if kill:
            self.kill()
        else:
            self.term()
        for _ in range(100):  # the listener may linger a moment in the kernel
            if not port_open(self.lport, 0.05):
                break
            time.sleep(0.05)
        self.start()

    def _reap(self, timeout):
        if self.proc is None:
            return True
        try:
            self.proc.wait(timeout)
            return True
        except subprocess.TimeoutExpired:
            return False

    def started(self):
        """The process has finished its start-up (its own signal; Cluster.wait_ready adds the
        Metadata check)."""
        return port_open(self.lport)


class OxkaNode(Node):
    impl = "oxka"

    def __init__(self, cluster, node_id, port, cport):
        super().__init__(cluster, node_id, port, cport)
        self.mport = free_ports(1)[0]
        self.data_dir = os.path.join(cluster.workdir, "oxka%d-data" % node_id)
        self.log_path = os.path.join(cluster.workdir, "oxka%d.log" % node_id)

    def command(self):
        c = self.cluster
        props = {
            "process.roles": "broker,controller",
            "node.id": str(self.node_id),
            "controller.quorum.voters": c.voters,
            "listeners": "PLAINTEXT://127.0.0.1:%d,CONTROLLER://127.0.0.1:%d" % (self.lport, self.lcport),
            "advertised.listeners": "PLAINTEXT://127.0.0.1:%d" % self.port,
            "controller.listener.names": "CONTROLLER",
            "listener.security.protocol.map": "PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
            "log.dirs": self.data_dir,
            "oxka.metrics.listen": "127.0.0.1:%d" % self.mport,
        }
        props.update(c.overrides)
        cmd = [c.oxka_bin, "serve"]
        for k, v in props.items():
            cmd += ["--override", "%s=%s" % (k, v)]
        return cmd

    def start(self):
        env = {k: v for k, v in os.environ.items() if not k.startswith("KAFKA_")}
        # openraft's INFO lines (every vote and heartbeat) would bury the broker's in a log tail
        env.setdefault("RUST_LOG", "info,openraft=warn")
        env.setdefault("NO_COLOR", "1")
        self.starts += 1
        logf = open(self.log_path, "ab")
        logf.write(("\n===== start #%d: %s\n" % (self.starts, " ".join(self.command()))).encode())
        logf.flush()
        self.proc = subprocess.Popen(self.command(), stdout=logf, stderr=subprocess.STDOUT,
                                     stdin=subprocess.DEVNULL, env=env, cwd=self.cluster.workdir)
        logf.close()


class KafkaNode(Node):
    """A node of kafkaref.KafkaCluster, started and signalled one at a time."""
    impl = "kafka"

    def __init__(self, cluster, ref_node):
        super().__init__(cluster, ref_node.node_id, ref_node.port, ref_node.cport)
        self.ref = ref_node
        self.data_dir = ref_node.data_dir
        self.log_path = ref_node.log_path
        self._log_mark = 0

    def start(self):
        import kafkaref
        k = self.cluster.ref
        cmd = kafkaref.java_cmd("kafka.Kafka", [self.ref.props_path], heap=k.heap, log4j=k.log4j)
        cmd = [c for c in cmd if c != "-XX:TieredStopAtLevel=1"]
        env = {k2: v for k2, v in os.environ.items() if not k2.startswith("KAFKA_")}
        self.starts += 1
        self._log_mark = os.path.getsize(self.log_path) if os.path.exists(self.log_path) else 0
        logf = open(self.log_path, "ab")
        self.proc = subprocess.Popen(cmd, stdout=logf, stderr=subprocess.STDOUT,
                                     stdin=subprocess.DEVNULL, env=env, cwd=self.cluster.workdir,
                                     start_new_session=True)
        logf.close()
        self.ref.proc = self.proc

    def started(self):
        try:
            with open(self.log_path, "rb") as f:
                f.seek(self._log_mark)
                fresh = f.read()
        except OSError:
            return False
        return b"Kafka Server started" in fresh and port_open(self.lport)


# ------------------------------------------------------------------ the cluster
class Cluster:
    """N nodes of one implementation.  nodes[i].node_id == i + 1."""

    def __init__(self, impl, workdir, n=3, overrides=None, oxka_bin=None, proxied=False):
        self.impl = impl
        self.workdir = workdir
        os.makedirs(workdir, exist_ok=True)
        self.overrides = {
            "offsets.topic.replication.factor": "1",
            "transaction.state.log.replication.factor": "1",
            "transaction.state.log.min.isr": "1",
            "default.replication.factor": "1",
            "group.initial.rebalance.delay.ms": "0",
        }
        self.overrides.update({k: str(v) for k, v in (overrides or {}).items()})
        self.oxka_bin = oxka_bin
        self.ready_timeout = KAFKA_READY_TIMEOUT if impl == "kafka" else OXKA_READY_TIMEOUT
        if impl == "kafka":
            import kafkaref
            self.ref = kafkaref.KafkaCluster(workdir, nodes=n, overrides=self.overrides,
                                             name="kafka", heap="320m")
            self.nodes = [KafkaNode(self, rn) for rn in self.ref.nodes]
        else:
            ports = free_ports(2 * n)
            self.nodes = [OxkaNode(self, i + 1, ports[2 * i], ports[2 * i + 1]) for i in range(n)]
        self.proxied = proxied
        if proxied:
            taken = {x for node in self.nodes for x in (node.port, node.cport)}
            for _ in range(20):  # bounded: free ports that are none of the advertised ones
                ports = free_ports(2 * n)
                if not taken & set(ports):
                    break
            for i, node in enumerate(self.nodes):
                node.lport, node.lcport = ports[2 * i], ports[2 * i + 1]
            if impl == "kafka":
                props = self.ref.properties

                def proxied_properties(rn, _props=props):
                    p = _props(rn)
                    node = self.node(rn.node_id)
                    p["listeners"] = "PLAINTEXT://127.0.0.1:%d,CONTROLLER://127.0.0.1:%d" % (
                        node.lport, node.lcport)
                    # Kafka's quorum RPCs carry each voter's controller endpoint (KIP-853), which
                    # the others then dial instead of the voters string: advertise cport too
                    p["advertised.listeners"] = "PLAINTEXT://127.0.0.1:%d,CONTROLLER://127.0.0.1:%d" % (
                        node.port, node.cport)
                    return p
                self.ref.properties = proxied_properties
        self.voters = ",".join("%d@127.0.0.1:%d" % (x.node_id, x.cport) for x in self.nodes)

    # ---- addresses
    def node(self, node_id):
        return self.nodes[node_id - 1]

    @property
    def ids(self):
        return [n.node_id for n in self.nodes]

    def bootstrap(self, *node_ids):
        return ",".join(self.node(i).bootstrap for i in (node_ids or self.ids))

    def endpoints(self):
        """{id: ("127.0.0.1", PLAINTEXT port)}: what Metadata should list."""
        return {n.node_id: ("127.0.0.1", n.port) for n in self.nodes}

    def live(self):
        return [n for n in self.nodes if n.alive() and not n.paused]

    # ---- life cycle
    def start(self):
        if self.impl == "kafka":
            for rn in self.ref.nodes:  # properties + `kafka-storage format`, then spawn all at once
                self.ref._write_props(rn)
                self.ref._format(rn)
        for n in self.nodes:
            n.start()
        self.wait_ready()
        return self

    def wait_ready(self, nodes=None, brokers=None, timeout=None):
        """Bounded wait until each of `nodes` (default: every live node) has started and answers
        Metadata listing exactly `brokers` (default: every node) at their PLAINTEXT ports."""
        timeout = timeout or self.ready_timeout
        nodes = nodes or [n for n in self.nodes if n.alive()]
        want = {i: ("127.0.0.1", self.node(i).port) for i in (brokers or self.ids)}
        last = {}
        deadline = time.monotonic() + timeout
        pending = list(nodes)
        for _ in range(int(timeout / 0.2) + 2):
            for n in list(pending):
                if not n.alive():
                    self.fail("node %d exited with %s before it was ready"
                              % (n.node_id, n.proc.returncode if n.proc else None))
                try:
                    if n.started():
                        got = n.probe.metadata(topics=[])[0]
                        last[n.node_id] = got
                        if got == want:
                            pending.remove(n)
                except Exception as e:  # noqa: BLE001 - retried until the deadline
                    last[n.node_id] = repr(e)
            if not pending or time.monotonic() > deadline:
                break
            time.sleep(0.2)
        if pending:
            self.fail("nodes %s did not list brokers %s within %.0fs; last answers: %r"
                      % ([n.node_id for n in pending], want, timeout, last))

    def close(self):
        for n in self.nodes:
            n.kill()

    # ---- failure reports
    def log_tails(self, n=60):
        out = []
        for node in self.nodes:
            out.append("----- node %d (%s, %s)" % (
                node.node_id, "alive" if node.alive() else "dead", node.log_path))
            out.append(node.log_tail(n))
        return "\n".join(out)

    def fail(self, msg):
        raise AssertionError("%s [%s cluster]\n%s" % (msg, self.impl, self.log_tails()))

    def wait_until(self, fn, timeout, msg, interval=0.2):
        """fn() until truthy (returned); bounded in count and time; failure carries the last
        answer or exception and every node's log tail."""
        deadline = time.monotonic() + timeout
        last = None
        for _ in range(int(timeout / interval) + 2):
            try:
                last = fn()
                if last:
                    return last
            except Exception as e:  # noqa: BLE001 - reported on timeout
                last = e
            if time.monotonic() > deadline:
                break
            time.sleep(interval)
        self.fail("timed out after %.0fs waiting for %s (last: %r)" % (timeout, msg, last))
