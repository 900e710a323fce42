"""Issue 9 Kubernetes probes on `oxka.metrics.listen`: `/livez` answers while the process runs,
`/readyz` is 503 until the logs are loaded and the client listener accepts, and the client port
itself is bound only then (as Kafka), so "the port accepts" and "ready" mean the same."""
import os
import re
import time
import urllib.error
import urllib.request

from conftest import port_open
from kutil import create_topic, produce, unique, watermarks


def get(b, path, method="GET"):
    req = urllib.request.Request("http://127.0.0.1:%d%s" % (b.mport, path), method=method)
    try:
        with urllib.request.urlopen(req, timeout=5) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()
    except OSError:
        return None, ""


def test_live_and_ready_while_serving(broker):
    assert get(broker, "/livez") == (200, "ok\n")
    assert get(broker, "/readyz") == (200, "ready\n")
    assert get(broker, "/metrics")[0] == 200
    assert get(broker, "/nope")[0] == 404
    assert get(broker, "/readyz", method="POST")[0] == 405


def test_not_ready_and_no_client_port_while_logs_load(make_broker):
    """The metadata log is replaced by a FIFO, so opening the broker blocks in recovery for as
    long as the test wants: live, not ready, client port closed."""
    b = make_broker(start=False)
    meta = os.path.join(b.data_dir, "__cluster_metadata-0")
    os.makedirs(meta)
    os.mkfifo(os.path.join(meta, "metadata.log"))
    b.start(wait=False)
    deadline = time.monotonic() + 20
    for _ in range(400):
        if get(b, "/livez")[0] == 200 or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    assert get(b, "/livez") == (200, "ok\n"), b.log_tail()
    for _ in range(5):  # stays so: nothing is ready while the log cannot be read
        status, body = get(b, "/readyz")
        assert status == 503 and body.startswith("not ready"), (status, body)
        assert not port_open(b.host, b.port)
        assert get(b, "/metrics")[0] == 200
        time.sleep(0.1)
    b.assert_alive()
    b.kill()


def test_ready_exactly_when_the_port_accepts_after_recovery(make_broker):
    b = make_broker()
    t = create_topic(b, unique("rec"), partitions=20)
    produce(b, t, [b"r"] * 10)
    b.stop()
    b.start(wait=False)
    seen = []
    deadline = time.monotonic() + 20
    for _ in range(2000):
        status, _ = get(b, "/readyz")
        accepts = port_open(b.host, b.port)
        seen.append((status, accepts))
        if status == 200 or time.monotonic() > deadline:
            break
        # never the port without readiness following: bound only after the logs are open
        time.sleep(0.01)
    assert seen[-1][0] == 200, (seen[-5:], b.log_tail())
    assert port_open(b.host, b.port)
    # before ready: never a 200; the port accepted at most in the instant before readiness
    assert all(s in (None, 503) for s, _ in seen[:-1]), seen
    assert sum(1 for s, a in seen[:-1] if a) <= 1, seen
    assert watermarks(b, t) == (0, 10)
    text = b.log_text().split("===== start #2")[1]
    assert text.index("oxka is serving") > text.index("operations endpoint listening")
    # one line per recovered log, with progress, naming the topic
    loaded = re.findall(r"loaded log (\d+)/(\d+) .*topic=(\S+) partition=(\d+)", text)
    # Start-up recovers the 20 partitions of t (no group or transaction has asked for
    # __consumer_offsets / __transaction_state, so they do not exist yet: the first
    # FindCoordinator creates them, as in Kafka, and their lines may follow later).
    recovered = loaded[:20]
    assert [(n, tot) for n, tot, _, _ in recovered] == [(str(i), "20") for i in range(1, 21)], loaded[:3]
    assert all(topic == t for _, _, topic, _ in recovered), recovered
    assert sorted(int(p) for n, tot, topic, p in loaded if topic == t) == list(range(20))
