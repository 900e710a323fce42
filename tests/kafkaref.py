"""Apache Kafka as the reference: start and stop real KRaft Kafka brokers, and run the JVM
programs of the suite (Kafka's command-line tools, the Java client scenarios, Streams, Connect).

Everything comes from the Maven Central artifacts that tests/setup.d/20-java.sh resolves into
target/kafka-libs (pinned in tests/java/pom.xml); nothing is downloaded here.

A `KafkaCluster` of 1 or 3 nodes runs each node as broker+controller (`process.roles=
broker,controller`, a static `controller.quorum.voters`), every listener on a free loopback port,
log.dirs in the caller's temp dir, a small heap (-Xmx384m, SerialGC: the machine is shared).
Every wait is bounded.  A cluster quacks like conftest.Broker where the suite needs it
(`bootstrap`, `host`, `port`, `alive()`, `log_tail()`); the oxka-only operations (SIGKILL,
restart, metrics) skip the calling test, with a reason, when the suite runs with
OXKA_TARGET=kafka.
"""
import base64
import glob
import os
import shutil
import signal
import socket
import subprocess
import time
import uuid

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
KAFKA_LIBS = os.environ.get("OXKA_KAFKA_LIBS", os.path.join(REPO, "target", "kafka-libs"))
JAVA_CLASSES = os.path.join(REPO, "target", "java-classes")
KAFKA_VERSION = "4.1.1"  # tests/java/pom.xml <kafka.version>

READY_TIMEOUT = float(os.environ.get("OXKA_KAFKA_READY_TIMEOUT", "120"))


def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def port_open(host, port, timeout=0.2):
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def java_skip_reason():
    """None when the JVM programs can run; otherwise why not (the tests skip with it)."""
    if shutil.which("java") is None:
        return "no JDK: `java` is not on PATH (tests/setup.d/20-java.sh skipped the JVM clients)"
    if not glob.glob(os.path.join(KAFKA_LIBS, "kafka-clients-*.jar")):
        return ("Apache Kafka jars missing in %s (run tests/setup.d/20-java.sh; it needs Maven)"
                % KAFKA_LIBS)
    return None


def java_programs_skip_reason():
    r = java_skip_reason()
    if r:
        return r
    if not os.path.exists(os.path.join(JAVA_CLASSES, "OxkaJavaClient.class")):
        return "the Java test programs are not compiled in %s (run tests/setup.d/20-java.sh)" % JAVA_CLASSES
    return None


def log4j_config(path, level="WARN", target="SYSTEM_ERR"):
    """A log4j2 properties file: one console appender at `level`."""
    with open(path, "w") as f:
        f.write("status = error\n"
                "appender.console.type = Console\n"
                "appender.console.name = STDOUT\n"
                "appender.console.target = %s\n"
                "appender.console.layout.type = PatternLayout\n"
                "appender.console.layout.pattern = [%%d] %%p %%m (%%c)%%n\n"
                "rootLogger.level = %s\n"
                "rootLogger.appenderRef.stdout.ref = STDOUT\n" % (target, level))
    return path


_TOOLS_LOG4J = None


def java_cmd(main, args=(), heap="256m", classpath_extra=(), log4j=None, sysprops=None):
    """The command line that runs `main` on the Kafka classpath (plus the suite's classes)."""
    global _TOOLS_LOG4J
    if log4j is None:
        if _TOOLS_LOG4J is None:
            d = os.path.join(REPO, "target", "kafkaref")
            os.makedirs(d, exist_ok=True)
            _TOOLS_LOG4J = log4j_config(os.path.join(d, "tools-log4j2.properties"))
        log4j = _TOOLS_LOG4J
    cp = [os.path.join(KAFKA_LIBS, "*"), JAVA_CLASSES] + list(classpath_extra)
    cmd = ["java", "-Xmx%s" % heap, "-XX:+UseSerialGC", "-XX:TieredStopAtLevel=1",
           "-Djava.awt.headless=true", "-Dlog4j2.configurationFile=%s" % log4j]
    for k, v in (sysprops or {}).items():
        cmd.append("-D%s=%s" % (k, v))
    return cmd + ["-cp", ":".join(cp), main] + list(args)


def run_java(main, args=(), timeout=120, input=None, check=True, heap="256m", env=None, **kw):
    """Run a JVM main class to completion; returns the CompletedProcess (text)."""
    cmd = java_cmd(main, args, heap=heap, **kw)
    e = {k: v for k, v in os.environ.items() if not k.startswith("KAFKA_")}
    e.update(env or {})
    r = subprocess.run(cmd, input=input, capture_output=True, text=True, timeout=timeout, env=e)
    if check and r.returncode != 0:
        raise AssertionError("%s %s failed rc=%d\nstdout=%s\nstderr=%s"
                             % (main, " ".join(args), r.returncode, r.stdout[-4000:], r.stderr[-6000:]))
    return r


def cluster_id():
    """A Kafka cluster id: 16 random bytes, URL-safe base64 without padding (Uuid.toString)."""
    return base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")


class KafkaNode:
    def __init__(self, workdir, node_id, port, cport, name):
        self.workdir = workdir
        self.node_id = node_id
        self.port = port
        self.cport = cport
        self.name = name
        self.data_dir = os.path.join(workdir, "%s-data" % name)
        self.props_path = os.path.join(workdir, "%s.properties" % name)
        self.log_path = os.path.join(workdir, "%s.log" % name)
        self.proc = None

    def log_text(self):
        try:
            with open(self.log_path, "rb") as f:
                return f.read().decode("utf-8", "replace")
        except OSError:
            return ""


class KafkaCluster:
    """1 or 3 combined broker+controller KRaft nodes of Apache Kafka on loopback."""

    kind = "kafka"

    def __init__(self, workdir, nodes=1, overrides=None, name="kafka", heap="384m"):
        self.workdir = workdir
        self.name = name
        self.heap = heap
        self.overrides = {k: str(v) for k, v in (overrides or {}).items()
                          if not k.startswith("oxka.")}
        os.makedirs(workdir, exist_ok=True)
        self.nodes = [KafkaNode(workdir, i + 1, free_port(), free_port(), "%s%d" % (name, i + 1))
                      for i in range(nodes)]
        self.log4j = log4j_config(os.path.join(workdir, "%s-log4j2.properties" % name),
                                  level="INFO", target="SYSTEM_OUT")
        self.cluster_id = cluster_id()
        self.format_seconds = self.serve_seconds = self.start_seconds = None

    # ---- the conftest.Broker surface the suite uses
    @property
    def host(self):
        return "127.0.0.1"

    @property
    def port(self):
        return self.nodes[0].port

    @property
    def bootstrap(self):
        return ",".join("127.0.0.1:%d" % n.port for n in self.nodes)

    @property
    def log_path(self):
        return self.nodes[0].log_path

    @property
    def proc(self):
        """The first node's process (the suite reads /proc/<pid> of its broker)."""
        return self.nodes[0].proc

    @property
    def pids(self):
        return [n.proc.pid for n in self.nodes if n.proc is not None]

    def alive(self):
        return all(n.proc is not None and n.proc.poll() is None for n in self.nodes)

    def assert_alive(self):
        assert self.alive(), "a Kafka node died:\n%s" % self.log_tail()

    def log_text(self):
        return "\n".join(n.log_text() for n in self.nodes)

    def log_tail(self, n=150):
        out = []
        for node in self.nodes:
            out.append("----- %s (%s)" % (node.name, node.log_path))
            out.extend(node.log_text().splitlines()[-n:])
        return "\n".join(out)

    # ---- configuration
    def properties(self, node):
        n = len(self.nodes)
        rf = "1" if n == 1 else "3"
        p = {
            "process.roles": "broker,controller",
            "node.id": str(node.node_id),
            "controller.quorum.voters": ",".join(
                "%d@127.0.0.1:%d" % (x.node_id, x.cport) for x in self.nodes),
            "listeners": "PLAINTEXT://127.0.0.1:%d,CONTROLLER://127.0.0.1:%d" % (node.port, node.cport),
            "advertised.listeners": "PLAINTEXT://127.0.0.1:%d" % node.port,
            "controller.listener.names": "CONTROLLER",
            "inter.broker.listener.name": "PLAINTEXT",
            "listener.security.protocol.map": "PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
            "log.dirs": node.data_dir,
            # (Kafka's defaults num.partitions=1, min.insync.replicas=1 are left as defaults:
            # the suite checks their DEFAULT_CONFIG source)
            "offsets.topic.replication.factor": rf,
            "offsets.topic.num.partitions": "50",
            "transaction.state.log.replication.factor": rf,
            "transaction.state.log.min.isr": "1",
            "share.coordinator.state.topic.replication.factor": rf,
            "share.coordinator.state.topic.min.isr": "1",
            "group.initial.rebalance.delay.ms": "0",
            "num.network.threads": "2",
            "num.io.threads": "2",
            "background.threads": "2",
            "log.flush.interval.messages": "9223372036854775807",
        }
        if n > 1:
            p["default.replication.factor"] = rf
        p.update(self.overrides)
        # Kafka refuses to start when a KIP-848 group interval is below its floor
        # (group.consumer.min.*, 5 s heartbeat and 45 s session by default): a module that
        # sets a short one lowers the floor with it (oxka has no such floors).
        for key, floor, default in (
                ("group.consumer.heartbeat.interval.ms", "group.consumer.min.heartbeat.interval.ms", 5000),
                ("group.consumer.session.timeout.ms", "group.consumer.min.session.timeout.ms", 45000)):
            if key in p and int(p[key]) < default and floor not in p:
                p[floor] = p[key]
        return p

    def _write_props(self, node):
        with open(node.props_path, "w") as f:
            for k, v in self.properties(node).items():
                f.write("%s=%s\n" % (k, v))

    def _format(self, node):
        run_java("kafka.tools.StorageTool",
                 ["format", "--cluster-id=" + self.cluster_id, "--config", node.props_path,
                  "--ignore-formatted"],
                 timeout=120, heap="128m", log4j=self.log4j)

    # ---- life cycle
    def start(self, timeout=READY_TIMEOUT):
        t0 = time.monotonic()
        for node in self.nodes:
            self._write_props(node)
            self._format(node)
        t1 = time.monotonic()
        self.format_seconds = t1 - t0
        env = {k: v for k, v in os.environ.items() if not k.startswith("KAFKA_")}
        for node in self.nodes:
            cmd = java_cmd("kafka.Kafka", [node.props_path], heap=self.heap, log4j=self.log4j)
            # the broker runs for a whole module: full JIT, not the tools' C1-only start-up flag
            cmd = [c for c in cmd if c != "-XX:TieredStopAtLevel=1"]
            logf = open(node.log_path, "ab")
            node.proc = subprocess.Popen(cmd, stdout=logf, stderr=subprocess.STDOUT,
                                         stdin=subprocess.DEVNULL, env=env, cwd=self.workdir,
                                         start_new_session=True)
            logf.close()
        self.wait_ready(timeout)
        self.serve_seconds = time.monotonic() - t1  # spawn to serving, format excluded
        self.start_seconds = time.monotonic() - t0
        return self

    def wait_ready(self, timeout=READY_TIMEOUT):
        """Every node logged 'Kafka Server started' and accepts on its client port, then the
        metadata lists every broker (so a first CreateTopics finds them all)."""
        deadline = time.monotonic() + timeout
        pending = list(self.nodes)
        for _ in range(int(timeout / 0.1) + 1):
            for node in list(pending):
                if node.proc.poll() is not None:
                    raise RuntimeError("Kafka node %s exited with %s before becoming ready:\n%s"
                                       % (node.name, node.proc.returncode, self.log_tail(80)))
                if "Kafka Server started" in node.log_text() and port_open(self.host, node.port):
                    pending.remove(node)
            if not pending:
                break
            if time.monotonic() > deadline:
                raise RuntimeError("Kafka not ready within %.0fs:\n%s" % (timeout, self.log_tail(80)))
            time.sleep(0.1)
        if len(self.nodes) > 1:
            self._wait_brokers(deadline)

    def _wait_brokers(self, deadline):
        from confluent_kafka.admin import AdminClient
        a = AdminClient({"bootstrap.servers": self.bootstrap})
        for _ in range(600):
            try:
                md = a.list_topics(timeout=5)
                if len(md.brokers) == len(self.nodes):
                    return
            except Exception:  # noqa: BLE001 - retried until the deadline
                pass
            if time.monotonic() > deadline:
                break
            time.sleep(0.2)
        raise RuntimeError("Kafka cluster did not list %d brokers in time" % len(self.nodes))

    def stop(self, timeout=30):
        """SIGTERM every node (a controlled shutdown), SIGKILL after `timeout`."""
        for node in self.nodes:
            if node.proc is not None and node.proc.poll() is None:
                node.proc.terminate()
        deadline = time.monotonic() + timeout
        for node in self.nodes:
            if node.proc is None:
                continue
            try:
                node.proc.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                node.proc.kill()
                node.proc.wait(10)

    def close(self):
        """SIGKILL every node (nothing to keep) and reap."""
        for node in self.nodes:
            if node.proc is not None and node.proc.poll() is None:
                try:
                    os.kill(node.proc.pid, signal.SIGKILL)
                except OSError:
                    pass
                try:
                    node.proc.wait(10)
                except subprocess.TimeoutExpired:
                    pass

    def rss_bytes(self):
        total = 0
        for pid in self.pids:
            try:
                with open("/proc/%d/status" % pid) as f:
                    for line in f:
                        if line.startswith("VmRSS:"):
                            total += int(line.split()[1]) * 1024
            except OSError:
                pass
        return total

    # ---- oxka-only operations: the suite's tests that need them skip under OXKA_TARGET=kafka
    def _oxka_only(self, what):
        import pytest
        pytest.skip("OXKA_TARGET=kafka: %s needs an oxka process" % what)

    def kill(self):
        self._oxka_only("SIGKILL of the broker")

    def restart(self, kill=False, wait=True):
        self._oxka_only("a broker restart")

    def pause(self):
        self._oxka_only("SIGSTOP of the broker")

    def resume(self):
        self._oxka_only("SIGCONT of the broker")

    def metrics(self, timeout=5):
        self._oxka_only("oxka's /metrics")

    @property
    def data_dir(self):
        self._oxka_only("oxka's data directory layout")
