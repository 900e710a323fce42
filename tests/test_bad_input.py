"""Issue 2 point 3 (last bullet) and the Wire part: a raw-socket bad-input battery.  After every
case the broker process is alive and a normal client still produces and consumes."""
import os
import random
import socket
import struct
import threading
import time

import pytest

import kwire
from kutil import consume, create_topic, produce, unique, wait_until


def rss_mb(b):
    with open("/proc/%d/status" % b.proc.pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0


def healthy(b):
    b.assert_alive()
    t = create_topic(b, unique("ok"))
    produce(b, t, [b"still", b"works"])
    assert [m.value() for m in consume(b, t, 2)] == [b"still", b"works"]
    if getattr(b, "kind", "oxka") != "kafka":  # a JVM broker's RSS is ~400 MB at rest
        assert rss_mb(b) < 400, "broker RSS %.0f MB after bad input" % rss_mb(b)


def send_and_expect_close(b, payload, timeout=5):
    s = kwire.connect(b)
    try:
        try:
            s.sendall(payload)
        except (BrokenPipeError, ConnectionResetError):
            return True
        return kwire.closed_by_peer(s, timeout)
    finally:
        s.close()


CASES = {
    "random_garbage": bytes(random.Random(1).getrandbits(8) for _ in range(10000)),
    "length_2^31-1": struct.pack(">i", 0x7FFFFFFF) + b"\x00" * 64,
    "negative_length": struct.pack(">i", -1) + b"\x00" * 16,
    "negative_length_min": struct.pack(">i", -0x80000000) + b"\x00" * 16,
    "length_zero": struct.pack(">i", 0),
    "length_4": struct.pack(">i", 4) + b"\x00\x12\x00\x00",
    "length_7": struct.pack(">i", 7) + b"\x00\x12\x00\x00\x00\x00\x01",
    "over_socket_request_max_bytes": struct.pack(">i", 104857601) + b"\x00" * 64,
    "unknown_api_key_9999": struct.pack(">i", 14) + kwire.raw_header(9999, 0, 1, "x") + b"\x00\x00\x00",
    "api_key_negative": struct.pack(">i", 14) + kwire.raw_header(-1, 0, 1, "x") + b"\x00\x00\x00",
    "metadata_v99": (lambda h: struct.pack(">i", len(h) + 4) + h + b"\xff\xff\xff\xff")(kwire.raw_header(3, 99, 1)),
    "produce_v2_below_min": (lambda h: struct.pack(">i", len(h)) + h)(kwire.raw_header(0, 2, 1)),
    "fetch_v3_below_min": (lambda h: struct.pack(">i", len(h)) + h)(kwire.raw_header(1, 3, 1)),
    "client_id_longer_than_frame": struct.pack(">i", 10) + struct.pack(">hhih", 18, 0, 1, 30000),
}

# a Metadata request whose topic array claims 2^31-1 entries: closed, or answered with an error
HUGE_COUNT_CASES = {
    "metadata_topic_count_huge": (lambda h: struct.pack(">i", len(h) + 4) + h + struct.pack(">i", 0x7FFFFFFF))(
        kwire.raw_header(3, 1, 1)),
    "metadata_v12_compact_count_huge": (lambda h: struct.pack(">i", len(h) + 6) + h + b"\xff\xff\xff\xff\x07\x00")(
        kwire.raw_header(3, 12, 1, flexible=True)),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_bad_frame_closes_connection(broker, name):
    assert send_and_expect_close(broker, CASES[name]), "connection not closed after %s" % name
    healthy(broker)


@pytest.mark.parametrize("name", sorted(HUGE_COUNT_CASES))
def test_huge_array_count(broker, name):
    before = rss_mb(broker)
    s = kwire.connect(broker)
    try:
        s.sendall(HUGE_COUNT_CASES[name])
        s.settimeout(5)
        try:
            body = kwire.recv_frame(s)
            # answered: must be for our correlation id, and the connection still usable or closed
            assert struct.unpack(">i", body[:4])[0] == 1
        except (ConnectionError, OSError):
            pass  # closed: fine
    finally:
        s.close()
    broker.assert_alive()
    assert rss_mb(broker) < before + 200, "RSS grew from %.0f to %.0f MB" % (before, rss_mb(broker))
    healthy(broker)


def test_truncated_frame_then_close(broker):
    s = kwire.connect(broker)
    s.sendall(struct.pack(">i", 100) + kwire.raw_header(18, 0, 1)[:10])
    s.close()
    time.sleep(0.2)
    healthy(broker)


def test_stalled_partial_frame_does_not_block_others(broker):
    s = kwire.connect(broker)
    try:
        s.sendall(struct.pack(">i", 1000) + b"\x00" * 10)  # never completed
        healthy(broker)
    finally:
        s.close()


def test_api_versions_unsupported_version_kip511(broker):
    for v in (5, 99, 32767):
        s = kwire.connect(broker)
        try:
            hdr = kwire.raw_header(18, v, 4242, flexible=True)
            kwire.send_raw(s, hdr + b"\x02x\x021\x00")
            body = kwire.recv_frame(s)
            corr, err, apis = kwire.parse_api_versions_v0(body)
            assert corr == 4242
            assert err == 35, "ApiVersions v%d: error %d, expected UNSUPPORTED_VERSION (35)" % (v, err)
            # as Kafka (ApiVersionsRequest.getErrorResponse): only the ApiVersions entry
            assert apis == {18: (0, 4)}, apis
        finally:
            s.close()
    healthy(broker)


def test_pipelined_requests_answered_in_order(broker):
    from kafka.protocol.metadata import MetadataRequest
    s = kwire.connect(broker)
    try:
        frames = b""
        for corr in range(1, 21):
            if corr % 2:
                req = kwire.ApiVersionsRequest[0]()
            else:
                req = MetadataRequest[1](topics=None)
            req.with_header(correlation_id=corr, client_id="pipe")
            frames += bytes(req.encode(header=True, framed=True))
        s.sendall(frames)
        got = [struct.unpack(">i", kwire.recv_frame(s)[:4])[0] for _ in range(20)]
        assert got == list(range(1, 21))
    finally:
        s.close()


def test_corrupt_record_batch_headers(broker):
    """Produce requests whose record-batch bytes lie about lengths/counts: error or close, never a crash."""
    from test_produce_fetch import raw_produce
    t = create_topic(broker, unique("bad"))
    good = kwire.record_batch([b"a", b"b"])
    variants = [
        good[:8] + struct.pack(">i", 0x7FFFFFF0) + good[12:],            # batch length huge
        good[:8] + struct.pack(">i", -5) + good[12:],                    # negative batch length
        good[:8] + struct.pack(">i", 3) + good[12:],                     # batch length tiny
        good[:57] + struct.pack(">i", 0x7FFFFFFF) + good[61:],           # record count huge (CRC now wrong)
        good[:30],                                                        # truncated batch
        good + good[:20],                                                 # trailing partial batch
    ]
    for i, v in enumerate(variants):
        try:
            err, _ = raw_produce(broker, t, v)
            assert err != 0, "variant %d accepted" % i
        except (ConnectionError, OSError):
            pass  # closing the connection is acceptable
        broker.assert_alive()
    from kutil import watermarks
    assert watermarks(broker, t) == (0, 0)
    healthy(broker)


def test_fuzz_bodies_of_every_api(broker):
    """Valid headers for every advertised API and version, followed by random bodies."""
    s = kwire.connect(broker)
    _, _, apis = kwire.parse_api_versions_v0(kwire.api_versions_raw(s, 0))
    s.close()
    rnd = random.Random(20240501)
    sent = 0
    deadline = time.monotonic() + 40
    for key, (lo, hi) in sorted(apis.items()):
        for ver in range(lo, hi + 1):
            for _ in range(3):
                if time.monotonic() > deadline:
                    break
                body = bytes(rnd.getrandbits(8) for _ in range(rnd.choice([0, 1, 5, 17, 64, 300])))
                if rnd.random() < 0.5:
                    body = b"\xff\xff\xff\x7f" * 4 + body
                hdr = kwire.raw_header(key, ver, 99, flexible=True) if rnd.random() < 0.5 else kwire.raw_header(key, ver, 99)
                try:
                    c = kwire.connect(broker, timeout=3)
                    kwire.send_raw(c, hdr + body)
                    c.settimeout(3)
                    try:
                        c.recv(65536)
                    except (socket.timeout, ConnectionError, OSError):
                        pass
                    c.close()
                except OSError:
                    pass
                sent += 1
                if sent % 50 == 0:
                    broker.assert_alive()
    broker.assert_alive()
    assert sent > 50
    healthy(broker)


def test_clients_keep_working_during_garbage(broker):
    t = create_topic(broker, unique("noisy"))
    stop = threading.Event()
    sent_garbage = [0]

    def garbage():
        rnd = random.Random(7)
        payloads = list(CASES.values()) + list(HUGE_COUNT_CASES.values())
        deadline = time.monotonic() + 30
        while not stop.is_set() and time.monotonic() < deadline:
            try:
                c = socket.create_connection((broker.host, broker.port), timeout=2)
                c.sendall(rnd.choice(payloads) if rnd.random() < 0.7 else
                          bytes(rnd.getrandbits(8) for _ in range(rnd.randint(1, 2000))))
                c.close()
                sent_garbage[0] += 1
            except OSError:
                pass
            time.sleep(0.002)

    th = [threading.Thread(target=garbage, daemon=True) for _ in range(2)]
    for x in th:
        x.start()
    try:
        # The clients start once garbage is flowing (on a loaded machine the rounds below can
        # otherwise finish before many garbage connections were made).
        wait_until(lambda: sent_garbage[0] > 20, 20, msg="garbage connections")
        expected = []
        for round_ in range(8):
            vals = [b"r%d-%d" % (round_, i) for i in range(200)]
            produce(broker, t, vals, **{"acks": "all"})
            expected += vals
        msgs = consume(broker, t, len(expected))
        assert [m.value() for m in msgs] == expected
        assert [m.offset() for m in msgs] == list(range(len(expected)))
    finally:
        stop.set()
        for x in th:
            x.join(10)
    assert sent_garbage[0] > 20
    healthy(broker)


def test_record_batch_validation(broker):
    """Batches with a valid CRC but inconsistent contents are refused as Kafka refuses them,
    and nothing is appended."""
    import gzip
    from test_produce_fetch import raw_produce
    from kutil import watermarks
    t = create_topic(broker, unique("val"))
    two = kwire.records_of([b"a", b"b"])
    cases = {
        "count_5_with_2_records": kwire.raw_batch(two, count=5, last_offset_delta=4),
        "last_offset_delta_mismatch": kwire.raw_batch(two, count=2, last_offset_delta=0),
        "gzip_garbage_payload": kwire.raw_batch(b"\x1f\x8b\x08garbage-not-gzip" * 3, count=2, last_offset_delta=1,
                                                attributes=1),
        "gzip_of_truncated_records": kwire.raw_batch(gzip.compress(two)[:-10], count=2, last_offset_delta=1,
                                                     attributes=1),
        "unknown_codec_7": kwire.raw_batch(two, count=2, last_offset_delta=1, attributes=7),
    }
    accepted = {}
    for name, batch in cases.items():
        tc = create_topic(broker, unique("val"))
        err, _ = raw_produce(broker, tc, batch)
        broker.assert_alive()
        if err == 0 or watermarks(broker, tc) != (0, 0):
            accepted[name] = watermarks(broker, tc)
    assert accepted == {}, "accepted (name → watermarks after): %r" % accepted
    # a correct batch built the same way is accepted (the cases above differ only in the defect)
    assert raw_produce(broker, t, kwire.raw_batch(two, count=2, last_offset_delta=1))[0] == 0
    assert raw_produce(broker, t, kwire.raw_batch(gzip.compress(two), count=2, last_offset_delta=1,
                                                  attributes=1))[0] == 0
    assert watermarks(broker, t) == (0, 4)
    assert [m.value() for m in consume(broker, t, 4)] == [b"a", b"b", b"a", b"b"]


def test_produce_request_shape_v3_plus(broker):
    """Produce v3+: exactly one v2 batch per partition, else INVALID_RECORD (87)."""
    from test_produce_fetch import raw_produce
    from kutil import watermarks
    t = create_topic(broker, unique("shape"))
    b1 = kwire.record_batch([b"x"])
    assert raw_produce(broker, t, b1 + b1)[0] == 87
    assert raw_produce(broker, t, b"")[0] == 87
    assert raw_produce(broker, t, kwire.record_batch([b"x"], magic=1))[0] == 87
    assert watermarks(broker, t) == (0, 0)


def test_zstd_needs_produce_v7(broker):
    """zstd batches on Produce < v7 → UNSUPPORTED_COMPRESSION_TYPE (76)."""
    import zstandard
    from test_produce_fetch import raw_produce
    t = create_topic(broker, unique("zstdv"))
    two = kwire.records_of([b"a", b"b"])
    batch = kwire.raw_batch(zstandard.ZstdCompressor().compress(two), count=2, last_offset_delta=1, attributes=4)
    assert raw_produce(broker, t, batch, version=6)[0] == 76
    assert raw_produce(broker, t, batch, version=7)[0] == 0
    assert [m.value() for m in consume(broker, t, 2)] == [b"a", b"b"]


def test_zstd_needs_fetch_v10(broker):
    """Fetch < v10 of a partition whose data is zstd-compressed → UNSUPPORTED_COMPRESSION_TYPE (76)."""
    from test_produce_fetch import raw_fetch
    t = create_topic(broker, unique("zstdf"))
    produce(broker, t, [b"z" * 100] * 5, **{"compression.type": "zstd"})
    assert raw_fetch(broker, t, 0, version=9)[0] == 76
    err, hw, data = raw_fetch(broker, t, 0, version=10)
    assert err == 0 and hw == 5 and data
