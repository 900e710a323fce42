"""Wire compatibility: ApiVersions (all versions, KIP-511), the advertised table matches
PROTOCOL.md's targets for the APIs issue 2 names, every advertised version of the core APIs
answers, and Debian's kcat (librdkafka 2.0.2) works end to end."""
import os
import re

import pytest

import kwire
from kutil import consume, create_topic, kcat, produce, unique

# key: (name, target range) from PROTOCOL.md for the APIs issue 2 implements
TARGETS = {
    0: ("Produce", 3, 11),
    1: ("Fetch", 4, 16),
    2: ("ListOffsets", 1, 9),
    3: ("Metadata", 0, 12),
    18: ("ApiVersions", 0, 4),
    19: ("CreateTopics", 2, 7),
    20: ("DeleteTopics", 1, 6),
    21: ("DeleteRecords", 0, 2),
    23: ("OffsetForLeaderEpoch", 2, 4),
    29: ("DescribeAcls", 1, 3),
    30: ("CreateAcls", 1, 3),
    31: ("DeleteAcls", 1, 3),
    32: ("DescribeConfigs", 1, 4),
    33: ("AlterConfigs", 0, 2),
    35: ("DescribeLogDirs", 1, 4),
    37: ("CreatePartitions", 0, 3),
    43: ("ElectLeaders", 0, 2),
    44: ("IncrementalAlterConfigs", 0, 1),
    45: ("AlterPartitionReassignments", 0, 1),
    46: ("ListPartitionReassignments", 0, 0),
    60: ("DescribeCluster", 0, 1),
    # issue 10 (authentication)
    17: ("SaslHandshake", 0, 1),
    36: ("SaslAuthenticate", 0, 2),
    50: ("DescribeUserScramCredentials", 0, 0),
    51: ("AlterUserScramCredentials", 0, 0),
}
# Apache Kafka 4.1 ranges: nothing may be advertised beyond them.  Kafka 4.x advertises Produce
# from v0 (KAFKA-18659: old librdkafka needs v0 listed to enable compression) yet refuses v0-2
# (it closes the connection); its real usable floor is v3.
KAFKA_41 = {0: (0, 13), 1: (4, 18), 2: (1, 10), 3: (0, 13), 8: (2, 10), 9: (1, 10), 10: (0, 6),
            11: (0, 9), 12: (0, 4), 13: (0, 5), 14: (0, 5), 15: (0, 6), 16: (0, 5), 17: (0, 1),
            18: (0, 4), 19: (2, 7), 20: (1, 6), 21: (0, 2), 22: (0, 6), 23: (2, 4), 24: (0, 5),
            25: (0, 4), 26: (0, 5), 27: (1, 1), 28: (0, 5), 29: (1, 3), 30: (1, 3), 31: (1, 3), 32: (1, 4),
            33: (0, 2), 35: (1, 4), 36: (0, 2), 37: (0, 3), 42: (0, 2), 43: (0, 2), 44: (0, 1),
            45: (0, 1), 46: (0, 0), 47: (0, 0), 50: (0, 0), 51: (0, 0), 60: (0, 2), 61: (0, 0),
            65: (0, 0), 66: (0, 2), 68: (0, 1), 69: (0, 1), 75: (0, 0)}


@pytest.fixture(scope="module")
def advertised(broker):
    s = kwire.connect(broker)
    try:
        corr, err, apis = kwire.parse_api_versions_v0(kwire.api_versions_raw(s, 0))
    finally:
        s.close()
    assert err == 0
    return apis


@pytest.mark.parametrize("version", [0, 1, 2, 3, 4])
def test_api_versions_each_version(broker, advertised, version):
    s = kwire.connect(broker)
    try:
        r = kwire.request(s, kwire.ApiVersionsRequest, version, corr=100 + version,
                          client_software_name="oxka-e2e", client_software_version="1.0")
        assert r.error_code == 0
        got = {a.api_key: (a.min_version, a.max_version) for a in r.api_keys}
        assert got == advertised
    finally:
        s.close()


def test_api_versions_v3_raw_has_no_surprises(broker):
    """ApiVersions v3 response: header v0 (no tagged fields), compact array, then a tagged-field
    section.  librdkafka 2.0.2 (Debian kcat) fails if the tagged section carries default values."""
    s = kwire.connect(broker)
    try:
        body = kwire.api_versions_raw(s, 3, corr=55)
    finally:
        s.close()
    import struct
    corr, err = struct.unpack(">ih", body[:6])
    assert (corr, err) == (55, 0)


@pytest.mark.skipif(os.environ.get("OXKA_TARGET") == "kafka",
                    reason="OXKA_TARGET=kafka: PROTOCOL.md's targets are oxka's, not Kafka's")
@pytest.mark.parametrize("key", sorted(TARGETS))
def test_advertised_matches_protocol_md(advertised, key):
    name, lo, hi = TARGETS[key]
    assert key in advertised, "%s (%d) not advertised" % (name, key)
    assert advertised[key] == (lo, hi), "%s advertised %r, PROTOCOL.md target %r" % (name, advertised[key], (lo, hi))


@pytest.mark.skipif(os.environ.get("OXKA_TARGET") == "kafka",
                    reason="OXKA_TARGET=kafka: KAFKA_41 lists only the client-facing APIs; Kafka also serves inter-broker ones")
def test_nothing_beyond_kafka(advertised):
    for key, (lo, hi) in advertised.items():
        assert key in KAFKA_41, "unknown api key %d advertised" % key
        klo, khi = KAFKA_41[key]
        assert klo <= lo <= hi <= khi, "api %d advertised %d-%d outside Kafka's %d-%d" % (key, lo, hi, klo, khi)


def test_every_metadata_version(broker, advertised):
    from kafka.protocol.metadata import MetadataRequest
    t = create_topic(broker, unique("mdv"), partitions=2)
    lo, hi = advertised[3]
    for v in range(lo, hi + 1):
        s = kwire.connect(broker)
        try:
            topics = [MetadataRequest.MetadataRequestTopic(name=t)]
            r = kwire.request(s, MetadataRequest, v, corr=v + 1, topics=topics, allow_auto_topic_creation=False,
                              include_cluster_authorized_operations=False, include_topic_authorized_operations=False)
            assert [(b.node_id, b.host, b.port) for b in r.brokers] == [(1, "127.0.0.1", broker.port)], v
            assert [(x.name, x.error_code, len(x.partitions)) for x in r.topics] == [(t, 0, 2)], v
        finally:
            s.close()


def test_every_produce_and_fetch_version(broker, advertised):
    from test_produce_fetch import raw_fetch, raw_produce, split_batches
    t = create_topic(broker, unique("pfv"))
    plo, phi = advertised[0]
    n = 0
    # Kafka 4.x lists v0-2 but refuses them (KAFKA_41 above); v13+ names topics by id
    for v in range(max(plo, 3), min(phi, 12) + 1):
        err, base = raw_produce(broker, t, kwire.record_batch([b"v%d" % v]), version=v)
        assert (err, base) == (0, n), "Produce v%d" % v
        n += 1
    flo, fhi = advertised[1]
    for v in range(flo, min(fhi, 12) + 1):  # v13+ addresses topics by id
        err, hw, data = raw_fetch(broker, t, 0, version=v)
        assert err == 0 and hw == n, "Fetch v%d" % v
        assert [b for b, _ in split_batches(data)] == list(range(n)), "Fetch v%d" % v


def test_kcat_metadata(broker):
    t = create_topic(broker, unique("kcatl"), partitions=3)
    r = kcat(broker, "-L")
    out = r.stdout.decode()
    assert re.search(r"broker 1 at 127\.0\.0\.1:%d" % broker.port, out), out
    r = kcat(broker, "-L", "-t", t)
    out = r.stdout.decode()
    assert 'topic "%s" with 3 partitions' % t in out, out
    assert len(re.findall(r"partition \d+, leader 1, replicas: 1, isrs: 1", out)) == 3, out


def test_kcat_json_metadata(broker):
    import json
    r = kcat(broker, "-L", "-J")
    md = json.loads(r.stdout)
    assert md["brokers"] == [{"id": 1, "name": "127.0.0.1:%d" % broker.port}]


def test_kcat_roundtrip_many(broker):
    t = create_topic(broker, unique("kcatrt"))
    payload = b"".join(b"line-%05d\n" % i for i in range(5000))
    kcat(broker, "-P", "-t", t, "-p", "0", "-z", "lz4", input=payload)
    r = kcat(broker, "-C", "-t", t, "-p", "0", "-e", "-o", "beginning")
    assert r.stdout == payload


def topic_id_of(broker, t):
    from kafka.protocol.metadata import MetadataRequest
    s = kwire.connect(broker)
    try:
        r = kwire.request(s, MetadataRequest, 12, topics=[MetadataRequest.MetadataRequestTopic(name=t)],
                          allow_auto_topic_creation=False, include_topic_authorized_operations=False)
        assert r.topics[0].error_code == 0
        return r.topics[0].topic_id
    finally:
        s.close()


def test_fetch_by_topic_id_versions(broker, advertised):
    """Fetch v13+ addresses topics by id (KIP-516); librdkafka 2.16 uses them."""
    import uuid
    from kafka.protocol.consumer import FetchRequest
    from test_produce_fetch import split_batches
    t = create_topic(broker, unique("tid"))
    produce(broker, t, [b"a", b"b", b"c"])
    tid = topic_id_of(broker, t)
    assert tid is not None and tid != uuid.UUID(int=0)
    flo, fhi = advertised[1]
    FT = FetchRequest.FetchTopic
    for v in range(max(13, flo), fhi + 1):
        s = kwire.connect(broker)
        try:
            r = kwire.request(s, FetchRequest, v, corr=v, replica_id=-1, max_wait_ms=0, min_bytes=0,
                              max_bytes=1 << 20, isolation_level=0, session_id=0, session_epoch=-1,
                              topics=[FT(topic_id=tid, partitions=[FT.FetchPartition(
                                  partition=0, fetch_offset=0, partition_max_bytes=1 << 20)])],
                              forgotten_topics_data=[], rack_id="")
            assert r.error_code == 0, v
            assert r.responses[0].topic_id == tid, v
            p = r.responses[0].partitions[0]
            assert (p.error_code, p.high_watermark) == (0, 3), v
            assert [b for b, _ in split_batches(bytes(p.records))] == [0], v
            # an unknown topic id → UNKNOWN_TOPIC_ID (100)
            r = kwire.request(s, FetchRequest, v, corr=1000 + v, replica_id=-1, max_wait_ms=0, min_bytes=0,
                              max_bytes=1 << 20, isolation_level=0, session_id=0, session_epoch=-1,
                              topics=[FT(topic_id=uuid.uuid4(), partitions=[FT.FetchPartition(
                                  partition=0, fetch_offset=0, partition_max_bytes=1 << 20)])],
                              forgotten_topics_data=[], rack_id="")
            assert r.responses[0].partitions[0].error_code == 100, v
        finally:
            s.close()


def test_topic_id_changes_on_recreate(broker):
    from kutil import admin, wait_until
    t = create_topic(broker, unique("tidre"))
    first = topic_id_of(broker, t)
    admin(broker).delete_topics([t], operation_timeout=15)[t].result(15)
    wait_until(lambda: t not in admin(broker).list_topics(timeout=5).topics, msg="deleted")
    create_topic(broker, t)
    assert topic_id_of(broker, t) != first


def test_pipelined_long_poll_keeps_order(broker):
    """A long-poll Fetch followed on the same connection by ApiVersions: answers in request order."""
    import struct
    import time
    from kafka.protocol.consumer import FetchRequest
    t = create_topic(broker, unique("pipe"))
    FT = FetchRequest.FetchTopic
    f = FetchRequest[4](replica_id=-1, max_wait_ms=1000, min_bytes=1, max_bytes=1 << 20, isolation_level=0,
                        topics=[FT(topic=t, partitions=[FT.FetchPartition(partition=0, fetch_offset=0,
                                                                           partition_max_bytes=1 << 20)])])
    f.with_header(correlation_id=1, client_id="pipe")
    a = kwire.ApiVersionsRequest[0]()
    a.with_header(correlation_id=2, client_id="pipe")
    s = kwire.connect(broker)
    try:
        t0 = time.monotonic()
        s.sendall(bytes(f.encode(header=True, framed=True)) + bytes(a.encode(header=True, framed=True)))
        first = struct.unpack(">i", kwire.recv_frame(s)[:4])[0]
        second = struct.unpack(">i", kwire.recv_frame(s)[:4])[0]
        assert (first, second) == (1, 2)
        assert time.monotonic() - t0 >= 0.8
    finally:
        s.close()


def test_many_connections(broker):
    socks = []
    try:
        for _ in range(300):
            socks.append(kwire.connect(broker))
        for i, s in enumerate(socks):
            body = kwire.api_versions_raw(s, 2, corr=i)
            assert body[:4] == i.to_bytes(4, "big")
    finally:
        for s in socks:
            s.close()
    produce(broker, create_topic(broker, unique("after")), [b"ok"])


def test_api_versions_v3_invalid_client_software_name(broker):
    """KIP-511: an ApiVersions v3+ request whose client software name/version does not match
    [a-zA-Z0-9](?:[a-zA-Z0-9\\-.]*[a-zA-Z0-9])? is answered with INVALID_REQUEST (42).
    (Parsed by hand: kafka-python decodes every error response as v0, Kafka does that only for
    UNSUPPORTED_VERSION.)"""
    import struct
    s = kwire.connect(broker)
    try:
        for corr, name, expect in ((9, "bad name!", 42), (10, "good-name", 0), (11, "-x", 42)):
            req = kwire.ApiVersionsRequest[3](client_software_name=name, client_software_version="1.0.0-rc1")
            req.with_header(correlation_id=corr, client_id="x")
            s.sendall(bytes(req.encode(header=True, framed=True)))
            body = kwire.recv_frame(s)
            assert struct.unpack(">ih", body[:6]) == (corr, expect), name
    except ConnectionError:
        pytest.fail("connection closed instead of INVALID_REQUEST")
    finally:
        s.close()
