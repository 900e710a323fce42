"""ElectLeaders (key 43) on one broker, at every served version (kafka-python's protocol
classes) and through confluent-kafka's AdminClient.elect_leaders: with a single replica per
partition the preferred replica always leads, so Kafka answers ELECTION_NOT_NEEDED (84) per
named partition, UNKNOWN_TOPIC_OR_PARTITION (3) for a partition that does not exist, and an
empty result for "every partition" (null list). The unclean type (v1+) is not needed either
while the leader is up. Moving leadership back to the preferred replica in a cluster is in
tests/test_replication.py."""
import pytest
from confluent_kafka import ElectionType, KafkaException, TopicPartition
from kafka.protocol.admin import ElectLeadersRequest

import kwire
from kutil import admin, create_topic, unique

ELECTION_NOT_NEEDED = 84
UNKNOWN_TOPIC_OR_PARTITION = 3


def elect(broker, version, partitions, election_type=0):
    s = kwire.connect(broker)
    try:
        T = ElectLeadersRequest.TopicPartitions
        fields = dict(
            topic_partitions=None if partitions is None else [
                T(topic=t, partitions=ps) for t, ps in partitions],
            timeout_ms=10000)
        if version >= 1:
            fields["election_type"] = election_type
        r = kwire.request(s, ElectLeadersRequest, version, corr=5, **fields)
    finally:
        s.close()
    top = getattr(r, "error_code", 0)
    return top, {(t.topic, p.partition_id): p.error_code
                 for t in r.replica_election_results for p in t.partition_result}


@pytest.mark.parametrize("version", [0, 1, 2])
def test_preferred_election_on_one_replica_is_not_needed(broker, version):
    t = unique("elect")
    create_topic(broker, t, partitions=2)
    top, results = elect(broker, version, [(t, [0, 1]), (unique("missing"), [0])])
    assert top == 0
    assert {k: v for k, v in results.items() if k[0] == t} == {
        (t, 0): ELECTION_NOT_NEEDED, (t, 1): ELECTION_NOT_NEEDED}
    missing = [v for k, v in results.items() if k[0] != t]
    assert missing == [UNKNOWN_TOPIC_OR_PARTITION]


@pytest.mark.parametrize("version", [1, 2])
def test_unclean_election_with_a_live_leader_is_not_needed(broker, version):
    t = unique("unclean")
    create_topic(broker, t)
    top, results = elect(broker, version, [(t, [0])], election_type=1)
    assert (top, results) == (0, {(t, 0): ELECTION_NOT_NEEDED})


def test_all_partitions_election_reports_nothing_to_do(broker):
    create_topic(broker, unique("all"))
    top, results = elect(broker, 2, None)
    assert top == 0
    assert all(code == 0 for code in results.values()), results


def test_confluent_admin_elect_leaders(broker):
    t = unique("ck-elect")
    create_topic(broker, t)
    f = admin(broker).elect_leaders(ElectionType.PREFERRED, [TopicPartition(t, 0)])
    try:
        result = f.result(15)
    except KafkaException as e:  # librdkafka may raise the per-partition error itself
        pytest.fail("elect_leaders raised %r" % e)
    assert list(result) == [TopicPartition(t, 0)]
    err = result[TopicPartition(t, 0)]
    assert err is not None and err.code() == ELECTION_NOT_NEEDED, err
