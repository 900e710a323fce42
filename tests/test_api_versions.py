"""Wire compatibility: ApiVersions (all versions, KIP-511), the advertised table matches
PROTOCOL.md's targets for the APIs issue 2 names, every advertised version of the core APIs
answers, and Debian's kcat (librdkafka 2.0.2) works end to end."""
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
    32: ("DescribeConfigs", 1, 4),
    33: ("AlterConfigs", 0, 2),
    35: ("DescribeLogDirs", 1, 4),
    37: ("CreatePartitions", 0, 3),
    44: ("IncrementalAlterConfigs", 0, 1),
    60: ("DescribeCluster", 0, 1),
}
# Apache Kafka 4.1 ranges: nothing may be advertised beyond them
KAFKA_41 = {0: (3, 13), 1: (4, 18), 2: (1, 10), 3: (0, 13), 8: (2, 10), 9: (1, 10), 10: (0, 6),
            11: (0, 9), 12: (0, 4), 13: (0, 5), 14: (0, 5), 15: (0, 6), 16: (0, 5), 17: (0, 1),
            18: (0, 4), 19: (2, 7), 20: (1, 6), 21: (0, 2), 22: (0, 6), 23: (2, 4), 24: (0, 5),
            25: (0, 4), 26: (0, 5), 28: (0, 5), 29: (1, 3), 30: (1, 3), 31: (1, 3), 32: (1, 4),
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


@pytest.mark.parametrize("key", sorted(TARGETS))
def test_advertised_matches_protocol_md(advertised, key):
    name, lo, hi = TARGETS[key]
    assert key in advertised, "%s (%d) not advertised" % (name, key)
    assert advertised[key] == (lo, hi), "%s advertised %r, PROTOCOL.md target %r" % (name, advertised[key], (lo, hi))


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
    for v in range(plo, phi + 1):
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
