"""Raw Kafka wire helpers for protocol-level tests.

Requests are encoded with kafka-python's (3.x) generated protocol classes where possible,
and by hand where a test needs bytes no well-behaved client would send.
"""
import socket
import struct
import time

from kafka.protocol.metadata.api_versions import ApiVersionsRequest, ApiVersionsResponse

# ---------------------------------------------------------------- CRC-32C (Castagnoli)
_CRC32C_TABLE = []
for _i in range(256):
    _c = _i
    for _ in range(8):
        _c = (_c >> 1) ^ 0x82F63B78 if _c & 1 else _c >> 1
    _CRC32C_TABLE.append(_c)


def crc32c(data, crc=0):
    crc ^= 0xFFFFFFFF
    t = _CRC32C_TABLE
    for b in data:
        crc = t[(crc ^ b) & 0xFF] ^ (crc >> 8)
    return crc ^ 0xFFFFFFFF


# ---------------------------------------------------------------- primitives
def varint(n):
    z = (n << 1) ^ (n >> 63)
    out = bytearray()
    while True:
        b = z & 0x7F
        z >>= 7
        if z:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def kstr(s):
    if s is None:
        return struct.pack(">h", -1)
    b = s.encode()
    return struct.pack(">h", len(b)) + b


def record_batch(values, base_offset=0, timestamp=None, key=None, attributes=0, corrupt_crc=False,
                 magic=2):
    """A v2 record batch with uncompressed records (value bytes list)."""
    ts = int(time.time() * 1000) if timestamp is None else timestamp
    recs = b""
    for i, v in enumerate(values):
        body = (b"\x00" + varint(0) + varint(i)
                + (varint(-1) if key is None else varint(len(key)) + key)
                + (varint(-1) if v is None else varint(len(v)) + v)
                + varint(0))
        recs += varint(len(body)) + body
    n = len(values)
    after_crc = (struct.pack(">hiqqqhii", attributes, n - 1, ts, ts, -1, -1, -1, n) + recs)
    crc = crc32c(after_crc)
    if corrupt_crc:
        crc ^= 0xDEADBEEF
    # baseOffset(8) batchLength(4) partitionLeaderEpoch(4) magic(1) crc(4) ...
    batch_len = 4 + 1 + 4 + len(after_crc)
    return struct.pack(">qiibI", base_offset, batch_len, -1, magic, crc) + after_crc


def raw_batch(records_bytes, count, last_offset_delta, attributes=0, timestamp=None, base_offset=0):
    """A v2 batch with arbitrary (possibly inconsistent) header fields and a *valid* CRC."""
    ts = int(time.time() * 1000) if timestamp is None else timestamp
    after_crc = struct.pack(">hiqqqhii", attributes, last_offset_delta, ts, ts, -1, -1, -1, count) + records_bytes
    crc = crc32c(after_crc)
    return struct.pack(">qiibI", base_offset, 4 + 1 + 4 + len(after_crc), -1, 2, crc) + after_crc


def records_of(values):
    """Encoded (uncompressed) record bodies for values, offset deltas 0..n-1."""
    out = b""
    for i, v in enumerate(values):
        body = (b"\x00" + varint(0) + varint(i) + varint(-1) + varint(len(v)) + v + varint(0))
        out += varint(len(body)) + body
    return out


# ---------------------------------------------------------------- framing
def recv_exact(sock, n):
    buf = bytearray()
    while len(buf) < n:
        chunk = sock.recv(n - len(buf))
        if not chunk:
            raise ConnectionError("closed after %d/%d bytes" % (len(buf), n))
        buf += chunk
    return bytes(buf)


def recv_frame(sock):
    (size,) = struct.unpack(">i", recv_exact(sock, 4))
    assert 0 <= size < 64 * 1024 * 1024, "insane response size %d" % size
    return recv_exact(sock, size)


def connect(broker, timeout=10):
    s = socket.create_connection((broker.host, broker.port), timeout=timeout)
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return s


def raw_header(api_key, api_version, corr, client_id="oxka-e2e", flexible=False):
    h = struct.pack(">hhi", api_key, api_version, corr) + kstr(client_id)
    if flexible:
        h += b"\x00"  # empty tagged fields
    return h


def send_raw(sock, payload):
    sock.sendall(struct.pack(">i", len(payload)) + payload)


def request(sock, req_cls, version, corr=1, **fields):
    """Encode `req_cls[version](**fields)` with a header, send it, read and decode the response."""
    req = req_cls[version](**fields)
    req.with_header(correlation_id=corr, client_id="oxka-e2e")
    sock.sendall(bytes(req.encode(header=True, framed=True)))
    body = recv_frame(sock)
    resp_cls = response_class_for(req_cls)
    resp = resp_cls.decode(body, version=version, header=True)
    assert resp.header.correlation_id == corr, (resp.header.correlation_id, corr)
    return resp


def response_class_for(req_cls):
    import importlib
    mod = importlib.import_module(req_cls.__module__)
    return getattr(mod, req_cls.__name__.split("_v")[0].replace("Request", "Response"))


def closed_by_peer(sock, timeout=5.0):
    """True if the peer closes (EOF or RST) within timeout without sending a full frame."""
    sock.settimeout(timeout)
    deadline = time.monotonic() + timeout
    try:
        for _ in range(1000):
            if time.monotonic() > deadline:
                return False
            d = sock.recv(65536)
            if not d:
                return True
    except (ConnectionResetError, BrokenPipeError):
        return True
    except socket.timeout:
        return False
    return False


def api_versions_raw(sock, version, corr=7):
    """Send ApiVersions at `version` with a hand-encoded header; return the raw response body."""
    flexible = version >= 3
    hdr = raw_header(18, version, corr, flexible=flexible)
    if flexible:
        body = b"\x08oxka-py" + b"\x061.0.0" + b"\x00"  # compact strings + tagged fields
    else:
        body = b""
    send_raw(sock, hdr + body)
    return recv_frame(sock)


def parse_api_versions_v0(body):
    """Parse a response (header v0 + ApiVersions v0 body): corr, error, {key: (min, max)}."""
    corr, err, n = struct.unpack(">ihi", body[:10])
    pos = 10
    apis = {}
    for _ in range(n):
        k, lo, hi = struct.unpack(">hhh", body[pos:pos + 6])
        apis[k] = (lo, hi)
        pos += 6
    return corr, err, apis
