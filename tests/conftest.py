"""Fixtures that start real `oxka` broker processes for the end-to-end suite.

Every broker gets free loopback ports (client + metrics), its own temp data dir and
its own log file (stderr+stdout).  Readiness = the client port accepts TCP.
Every wait loop is bounded in both count and time.
"""
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import shutil
import uuid

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

REPO = os.path.dirname(HERE)
OXKA_BIN = os.environ.get("OXKA_BIN", os.path.join(REPO, "target", "release", "oxka"))

READY_TIMEOUT = float(os.environ.get("OXKA_READY_TIMEOUT", "20"))

# OXKA_TARGET=kafka points the shared `broker` fixture at a real Apache Kafka (tests/kafkaref.py)
# instead of oxka, so the suite's expectations are checked against the reference; tests that
# need an oxka process (its own brokers, SIGKILL, restart, metrics) skip with a reason.
TARGET = os.environ.get("OXKA_TARGET", "oxka")
if TARGET not in ("oxka", "kafka"):
    raise RuntimeError("OXKA_TARGET must be 'oxka' or 'kafka', not %r" % TARGET)


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


def unique(prefix="t"):
    return "%s-%s" % (prefix, uuid.uuid4().hex[:10])


class Broker:
    """One oxka process.  `overrides` are passed as --override k=v; `env` is added to the
    environment; `config_file` is passed positionally; `use_default_overrides=False` lets a test
    configure listeners/log.dirs itself (env dialects, properties files)."""

    def __init__(self, workdir, overrides=None, env=None, config_file=None,
                 use_default_overrides=True, port=None, mport=None, data_dir=None,
                 extra_args=None, name="oxka"):
        self.workdir = workdir
        self.name = name
        self.port = port or free_port()
        self.mport = mport or free_port()
        self.data_dir = data_dir or os.path.join(workdir, "data-%s" % name)
        self.overrides = dict(overrides or {})
        self.env = dict(env or {})
        self.config_file = config_file
        self.use_default_overrides = use_default_overrides
        self.extra_args = list(extra_args or [])
        self.proc = None
        self.log_path = os.path.join(workdir, "%s.log" % name)
        self.starts = 0

    # ---- addresses
    @property
    def host(self):
        return "127.0.0.1"

    @property
    def bootstrap(self):
        return "127.0.0.1:%d" % self.port

    @property
    def metrics_url(self):
        return "http://127.0.0.1:%d/metrics" % self.mport

    # ---- command line
    def command(self):
        cmd = [OXKA_BIN, "serve"]
        if self.config_file:
            cmd.append(self.config_file)
        ov = {}
        if self.use_default_overrides:
            ov.update({
                "listeners": "PLAINTEXT://127.0.0.1:%d" % self.port,
                "advertised.listeners": "PLAINTEXT://127.0.0.1:%d" % self.port,
                "log.dirs": self.data_dir,
                "oxka.metrics.listen": "127.0.0.1:%d" % self.mport,
                "node.id": "1",
            })
        ov.update(self.overrides)
        for k, v in ov.items():
            cmd += ["--override", "%s=%s" % (k, v)]
        return cmd + self.extra_args

    def start(self, wait=True, timeout=READY_TIMEOUT):
        if not os.path.exists(OXKA_BIN):
            pytest.fail("oxka binary not found at %s (set OXKA_BIN)" % OXKA_BIN)
        # no KAFKA_* variables leak in from the environment running the tests
        env = {k: v for k, v in os.environ.items() if not k.startswith("KAFKA_")}
        env.setdefault("RUST_LOG", "info")
        env.setdefault("NO_COLOR", "1")
        env.update(self.env)
        self.starts += 1
        logf = open(self.log_path, "ab")
        logf.write(("\n===== start #%d: %s\n" % (self.starts, " ".join(self.command()))).encode())
        logf.flush()
        self.proc = subprocess.Popen(self.command(), stdout=logf, stderr=subprocess.STDOUT,
                                     stdin=subprocess.DEVNULL, env=env, cwd=self.workdir)
        logf.close()
        if wait:
            self.wait_ready(timeout)
        return self

    def wait_ready(self, timeout=READY_TIMEOUT):
        deadline = time.monotonic() + timeout
        for _ in range(int(timeout / 0.05) + 1):
            if self.proc.poll() is not None:
                pytest.fail("oxka exited with %s before becoming ready:\n%s"
                            % (self.proc.returncode, self.log_tail()))
            if port_open(self.host, self.port):
                return
            if time.monotonic() > deadline:
                break
            time.sleep(0.05)
        pytest.fail("oxka not ready on %s within %.0fs:\n%s" % (self.bootstrap, timeout, self.log_tail()))

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def assert_alive(self):
        assert self.alive(), "oxka died (rc=%s):\n%s" % (
            self.proc.returncode if self.proc else None, self.log_tail())

    def _forget_clients(self):
        import kutil
        kutil.forget(self)

    def kill(self):
        """SIGKILL and reap."""
        self._forget_clients()
        if self.proc and self.proc.poll() is None:
            try:
                os.kill(self.proc.pid, signal.SIGCONT)
            except OSError:
                pass
            self.proc.kill()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                pass

    def stop(self, timeout=10):
        """SIGTERM, then SIGKILL after `timeout`."""
        self._forget_clients()
        if self.proc and self.proc.poll() is None:
            try:
                os.kill(self.proc.pid, signal.SIGCONT)
            except OSError:
                pass
            self.proc.terminate()
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.kill()

    def pause(self):
        os.kill(self.proc.pid, signal.SIGSTOP)

    def resume(self):
        os.kill(self.proc.pid, signal.SIGCONT)

    def restart(self, kill=False, wait=True):
        if kill:
            self.kill()
        else:
            self.stop()
        # port may linger briefly in the kernel; bounded wait for it to close
        for _ in range(100):
            if not port_open(self.host, self.port, 0.05):
                break
            time.sleep(0.05)
        return self.start(wait=wait)

    def log_text(self):
        try:
            with open(self.log_path, "rb") as f:
                return f.read().decode("utf-8", "replace")
        except OSError:
            return ""

    def log_tail(self, n=150):
        return "\n".join(self.log_text().splitlines()[-n:])

    def metrics(self, timeout=5):
        import urllib.request
        with urllib.request.urlopen(self.metrics_url, timeout=timeout) as r:
            return r.read().decode("utf-8", "replace")


class BrokerFactory:
    def __init__(self, base):
        self.base = base
        self.brokers = []

    def __call__(self, start=True, **kw):
        kw.setdefault("name", "oxka%d" % len(self.brokers))
        b = Broker(self.base, **kw)
        self.brokers.append(b)
        if start:
            b.start()
        return b

    def close(self):
        for b in self.brokers:
            b.kill()


def _brokers_of(obj):
    if isinstance(obj, Broker):
        return [obj]
    if isinstance(obj, BrokerFactory):
        return list(obj.brokers)
    if getattr(obj, "kind", None) == "kafka":  # kafkaref.KafkaCluster
        return [obj]
    return []


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    rep = outcome.get_result()
    if rep.when in ("call", "setup") and rep.failed:
        seen = set()
        for v in getattr(item, "funcargs", {}).values():
            for b in _brokers_of(v):
                if id(b) in seen:
                    continue
                seen.add(id(b))
                rep.sections.append(("oxka log %s (%s)" % (b.name, b.log_path), b.log_tail(120)))


@pytest.fixture(scope="session")
def oxka_bin():
    if TARGET == "kafka":
        pytest.skip("OXKA_TARGET=kafka: this test starts its own oxka process")
    if not os.path.exists(OXKA_BIN):
        pytest.fail("oxka binary not found at %s (build it or set OXKA_BIN)" % OXKA_BIN)
    return OXKA_BIN


@pytest.fixture
def make_broker(tmp_path, oxka_bin):
    """Factory: make_broker(overrides={...}, env={...}, ...) -> started Broker; all killed at teardown."""
    f = BrokerFactory(str(tmp_path))
    yield f
    f.close()


@pytest.fixture(scope="module")
def module_tmp():
    d = tempfile.mkdtemp(prefix="oxka-e2e-")
    yield d
    shutil.rmtree(d, ignore_errors=True)


@pytest.fixture(scope="module")
def broker(module_tmp, request):
    """One broker shared by a module.  Modules may set BROKER_OVERRIDES = {...}.
    With OXKA_TARGET=kafka it is a one-node Apache Kafka with the same overrides (oxka.* left out)."""
    overrides = {"log.retention.check.interval.ms": "500"}
    overrides.update(getattr(request.module, "BROKER_OVERRIDES", {}))
    if TARGET == "kafka":
        import kafkaref
        reason = kafkaref.java_skip_reason()
        if reason:
            pytest.skip(reason)
        k = kafkaref.KafkaCluster(module_tmp, nodes=1, overrides=overrides,
                                  name="kafka-" + request.module.__name__.replace("test_", ""))
        try:
            k.start()
        except Exception:
            k.close()
            raise
        yield k
        k.close()
        return
    request.getfixturevalue("oxka_bin")
    b = Broker(module_tmp, overrides=overrides, name="oxka-" + request.module.__name__)
    b.start()
    yield b
    b.kill()
