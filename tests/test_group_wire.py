"""Every served version of the group APIs, over the wire with kafka-python's (3.x) generated
protocol classes: a one-member group goes through FindCoordinator, JoinGroup, SyncGroup,
Heartbeat, OffsetCommit, OffsetFetch, DescribeGroups, ListGroups, LeaveGroup, OffsetDelete and
DeleteGroups at each version, and Kafka's error codes come back where Kafka gives them."""
import time

import pytest
from kafka.protocol.admin.groups import (DeleteGroupsRequest, DescribeGroupsRequest,
                                         ListGroupsRequest)
from kafka.protocol.consumer.group import (HeartbeatRequest, JoinGroupRequest,
                                           LeaveGroupRequest, OffsetCommitRequest,
                                           OffsetDeleteRequest, OffsetFetchRequest,
                                           SyncGroupRequest)
from kafka.protocol.metadata import FindCoordinatorRequest

import kwire
from kutil import create_topic, unique

BROKER_OVERRIDES = {"group.initial.rebalance.delay.ms": "0"}

NONE = 0
COORDINATOR_NOT_AVAILABLE = 15
ILLEGAL_GENERATION = 22
INCONSISTENT_GROUP_PROTOCOL = 23
UNKNOWN_MEMBER_ID = 25
INVALID_SESSION_TIMEOUT = 26
REBALANCE_IN_PROGRESS = 27
UNKNOWN_TOPIC_OR_PARTITION = 3
MEMBER_ID_REQUIRED = 79
FENCED_INSTANCE_ID = 82
NON_EMPTY_GROUP = 68
GROUP_ID_NOT_FOUND = 69


def join(s, v, group, member_id="", instance=None, session_ms=10000, corr=1, protocol="range"):
    fields = dict(group_id=group, session_timeout_ms=session_ms, member_id=member_id,
                  protocol_type="consumer",
                  protocols=[JoinGroupRequest.JoinGroupRequestProtocol(name=protocol,
                                                                       metadata=b"meta")])
    if v >= 1:
        fields["rebalance_timeout_ms"] = 10000
    if v >= 5:
        fields["group_instance_id"] = instance
    return kwire.request(s, JoinGroupRequest, v, corr=corr, **fields)


def join_new_member(s, v, group, **kw):
    r = join(s, v, group, **kw)
    if v >= 4 and kw.get("instance") is None:
        assert r.error_code == MEMBER_ID_REQUIRED and r.member_id
        r = join(s, v, group, member_id=r.member_id, corr=2, **kw)
    assert r.error_code == NONE, r
    return r


def commit(s, v, group, gen, member, topic, partition, offset, metadata="m"):
    p = dict(partition_index=partition, committed_offset=offset, committed_metadata=metadata)
    if v >= 6:
        p["committed_leader_epoch"] = -1
    fields = dict(group_id=group, generation_id_or_member_epoch=gen, member_id=member,
                  topics=[OffsetCommitRequest.OffsetCommitRequestTopic(
                      name=topic,
                      partitions=[OffsetCommitRequest.OffsetCommitRequestTopic
                                  .OffsetCommitRequestPartition(**p)])])
    if 2 <= v <= 4:
        fields["retention_time_ms"] = -1
    r = kwire.request(s, OffsetCommitRequest, v, corr=9, **fields)
    return r.topics[0].partitions[0].error_code


def fetch(s, v, group, topic, partitions):
    """Committed (offset, metadata) per partition, or the group-level error code."""
    if v >= 8:
        G = OffsetFetchRequest.OffsetFetchRequestGroup
        g = dict(group_id=group, topics=[G.OffsetFetchRequestTopics(
            name=topic, partition_indexes=partitions)])
        if v >= 9:
            g.update(member_id=None, member_epoch=-1)
        r = kwire.request(s, OffsetFetchRequest, v, corr=10, groups=[G(**g)],
                          require_stable=False)
        group_r = r.groups[0]
        if group_r.error_code:
            return group_r.error_code
        return {p.partition_index: (p.committed_offset, p.metadata)
                for t in group_r.topics for p in t.partitions}
    fields = dict(group_id=group, topics=[OffsetFetchRequest.OffsetFetchRequestTopic(
        name=topic, partition_indexes=partitions)])
    if v >= 7:
        fields["require_stable"] = False
    r = kwire.request(s, OffsetFetchRequest, v, corr=10, **fields)
    if v >= 2 and r.error_code:
        return r.error_code
    return {p.partition_index: (p.committed_offset, p.metadata)
            for t in r.topics for p in t.partitions}


@pytest.mark.parametrize("v", range(0, 10))
def test_one_member_group_at_every_version(broker, v):
    topic = create_topic(broker, unique("gw"), partitions=2)
    group = unique("gw")
    find_v, sync_v, hb_v, leave_v = min(v, 6), min(v, 5), min(v, 4), min(v, 5)
    commit_v, fetch_v = min(max(v, 2), 9), min(max(v, 1), 9)
    describe_v, list_v, delete_v = min(v, 5), min(v, 5), min(v, 2)
    with kwire.connect(broker) as s:
        if find_v >= 4:
            r = kwire.request(s, FindCoordinatorRequest, find_v, key_type=0,
                              coordinator_keys=[group, group + "-2"])
            assert [c.error_code for c in r.coordinators] == [NONE, NONE]
            assert [(c.node_id, c.port) for c in r.coordinators] == [(1, broker.port)] * 2
        else:
            fields = dict(key=group)
            if find_v >= 1:
                fields["key_type"] = 0
            r = kwire.request(s, FindCoordinatorRequest, find_v, **fields)
            assert (r.error_code, r.node_id, r.host, r.port) == (NONE, 1, "127.0.0.1", broker.port)

        j = join_new_member(s, v, group)
        member, gen = j.member_id, j.generation_id
        assert gen == 1 and j.leader == member
        assert [m.member_id for m in j.members] == [member]
        assert j.protocol_name == "range"

        fields = dict(group_id=group, generation_id=gen, member_id=member,
                      assignments=[SyncGroupRequest.SyncGroupRequestAssignment(
                          member_id=member, assignment=b"assigned")])
        if sync_v >= 5:
            fields.update(protocol_type="consumer", protocol_name="range")
        r = kwire.request(s, SyncGroupRequest, sync_v, corr=3, **fields)
        assert (r.error_code, r.assignment) == (NONE, b"assigned")
        if sync_v >= 5:
            assert (r.protocol_type, r.protocol_name) == ("consumer", "range")

        r = kwire.request(s, HeartbeatRequest, hb_v, corr=4, group_id=group,
                          generation_id=gen, member_id=member)
        assert r.error_code == NONE
        r = kwire.request(s, HeartbeatRequest, hb_v, corr=5, group_id=group,
                          generation_id=gen + 1, member_id=member)
        assert r.error_code == ILLEGAL_GENERATION
        r = kwire.request(s, HeartbeatRequest, hb_v, corr=6, group_id=group,
                          generation_id=gen, member_id="stranger")
        assert r.error_code == UNKNOWN_MEMBER_ID

        assert commit(s, commit_v, group, gen, member, topic, 1, 42, "meta-%d" % v) == NONE
        assert commit(s, commit_v, group, gen + 5, member, topic, 0, 1) == ILLEGAL_GENERATION
        assert commit(s, commit_v, group, gen, member, "no-such-topic", 0, 1) \
            == UNKNOWN_TOPIC_OR_PARTITION
        assert fetch(s, fetch_v, group, topic, [0, 1]) == {0: (-1, ""), 1: (42, "meta-%d" % v)}

        fields = dict(groups=[group])
        if describe_v >= 3:
            fields["include_authorized_operations"] = True
        r = kwire.request(s, DescribeGroupsRequest, describe_v, corr=11, **fields)
        d = r.groups[0]
        assert (d.error_code, d.group_state, d.protocol_type, d.protocol_data) \
            == (NONE, "Stable", "consumer", "range")
        assert [(m.member_id, m.member_assignment) for m in d.members] == [(member, b"assigned")]

        fields = {}
        if list_v >= 4:
            fields["states_filter"] = ["Stable"]
        if list_v >= 5:
            fields["types_filter"] = []
        r = kwire.request(s, ListGroupsRequest, list_v, corr=12, **fields)
        assert r.error_code == NONE
        listed = {g.group_id: g for g in r.groups}
        assert listed[group].protocol_type == "consumer"
        if list_v >= 4:
            assert listed[group].group_state == "Stable"
            assert all(g.group_state == "Stable" for g in r.groups)

        r = kwire.request(s, DeleteGroupsRequest, delete_v, corr=13, groups_names=[group])
        assert r.results[0].error_code == NON_EMPTY_GROUP

        if leave_v >= 3:
            r = kwire.request(s, LeaveGroupRequest, leave_v, corr=14, group_id=group, members=[
                LeaveGroupRequest.MemberIdentity(member_id=member, group_instance_id=None),
                LeaveGroupRequest.MemberIdentity(member_id="stranger", group_instance_id=None)])
            assert r.error_code == NONE
            assert [m.error_code for m in r.members] == [NONE, UNKNOWN_MEMBER_ID]
        else:
            r = kwire.request(s, LeaveGroupRequest, leave_v, corr=14, group_id=group,
                              member_id=member)
            assert r.error_code == NONE

        r = kwire.request(s, DescribeGroupsRequest, describe_v, corr=15, groups=[group])
        assert r.groups[0].group_state == "Empty" and r.groups[0].members == []

        r = kwire.request(s, OffsetDeleteRequest, 0, corr=16, group_id=group, topics=[
            OffsetDeleteRequest.OffsetDeleteRequestTopic(name=topic, partitions=[
                OffsetDeleteRequest.OffsetDeleteRequestTopic.OffsetDeleteRequestPartition(
                    partition_index=1)])])
        assert r.error_code == NONE and r.topics[0].partitions[0].error_code == NONE
        assert fetch(s, fetch_v, group, topic, [1]) == {1: (-1, "")}

        r = kwire.request(s, DeleteGroupsRequest, delete_v, corr=17, groups_names=[group])
        assert r.results[0].error_code == NONE
        r = kwire.request(s, DeleteGroupsRequest, delete_v, corr=18, groups_names=[group])
        assert r.results[0].error_code == GROUP_ID_NOT_FOUND
        r = kwire.request(s, DescribeGroupsRequest, describe_v, corr=19, groups=[group])
        assert (r.groups[0].error_code, r.groups[0].group_state) == (NONE, "Dead")


def test_join_errors_over_the_wire(broker):
    group = unique("gw")
    topic = create_topic(broker, unique("gw"))
    with kwire.connect(broker) as s:
        r = join(s, 5, group, session_ms=5999)
        assert r.error_code == INVALID_SESSION_TIMEOUT
        r = join(s, 5, group, session_ms=1800001)
        assert r.error_code == INVALID_SESSION_TIMEOUT
        r = join(s, 5, group, member_id="never-joined")
        assert r.error_code == UNKNOWN_MEMBER_ID
        # static member: no MEMBER_ID_REQUIRED round trip
        a = join(s, 5, group, instance="inst-a")
        assert a.error_code == NONE and a.generation_id == 1
        # a different protocol is refused while the group has members
        r = join(s, 5, group, instance="inst-b", protocol="roundrobin")
        assert r.error_code == INCONSISTENT_GROUP_PROTOCOL
        r = kwire.request(s, SyncGroupRequest, 3, corr=3, group_id=group, generation_id=1,
                          member_id=a.member_id, group_instance_id="inst-a", assignments=[])
        assert r.error_code == NONE
        # the same instance id with another member id is fenced
        r = kwire.request(s, HeartbeatRequest, 3, corr=4, group_id=group, generation_id=1,
                          member_id="impostor", group_instance_id="inst-a")
        assert r.error_code == FENCED_INSTANCE_ID
        # a second (dynamic) member makes the group rebalance; its JoinGroup stays parked
        # until `a` rejoins, and `a` learns of the rebalance from its heartbeat
        with kwire.connect(broker) as s2:
            req = JoinGroupRequest[3](
                group_id=group, session_timeout_ms=10000, rebalance_timeout_ms=10000,
                member_id="", protocol_type="consumer",
                protocols=[JoinGroupRequest.JoinGroupRequestProtocol(name="range",
                                                                     metadata=b"m")])
            req.with_header(correlation_id=50, client_id="oxka-e2e")
            s2.sendall(bytes(req.encode(header=True, framed=True)))
            for corr in range(6, 60):
                hb = kwire.request(s, HeartbeatRequest, 3, corr=corr, group_id=group,
                                   generation_id=1, member_id=a.member_id,
                                   group_instance_id="inst-a")
                if hb.error_code != NONE:
                    break
            assert hb.error_code == REBALANCE_IN_PROGRESS
            a2 = join(s, 5, group, member_id=a.member_id, instance="inst-a", corr=70)
            assert a2.error_code == NONE and a2.generation_id == 2
            assert len(a2.members if a2.leader == a.member_id else []) in (0, 2)
            body = kwire.recv_frame(s2)
            from kafka.protocol.consumer.group import JoinGroupResponse
            b = JoinGroupResponse.decode(body, version=3, header=True)
            assert b.error_code == NONE and b.generation_id == 2
            # a commit from the old generation while completing the rebalance
            assert commit(s, 7, group, 1, a.member_id, topic, 0, 1) in (ILLEGAL_GENERATION,)
            # a topic that does not exist is answered before the group is consulted (KafkaApis)
            assert commit(s, 7, group, 1, a.member_id, unique("nope"), 0, 1) == UNKNOWN_TOPIC_OR_PARTITION


def test_commit_to_missing_topic_or_partition(broker):
    """As Kafka: OffsetCommit for a topic or partition that does not exist answers
    UNKNOWN_TOPIC_OR_PARTITION per partition and stores nothing for it; the other partitions of
    the same request are committed (raw v2 and v8, confluent-kafka and kafka-python)."""
    topic = create_topic(broker, unique("gw"), partitions=2)
    missing = unique("nope")
    group = unique("gw")
    T, P = OffsetCommitRequest.OffsetCommitRequestTopic, OffsetCommitRequest.OffsetCommitRequestTopic.OffsetCommitRequestPartition
    with kwire.connect(broker) as s:
        for v in (2, 8):
            g = "%s-%d" % (group, v)
            parts = lambda ps: [P(partition_index=p, committed_offset=5, committed_metadata="m",
                                  **({"committed_leader_epoch": -1} if v >= 6 else {})) for p in ps]
            fields = dict(group_id=g, generation_id_or_member_epoch=-1, member_id="",
                          topics=[T(name=topic, partitions=parts([0, 7])), T(name=missing, partitions=parts([0]))])
            if v <= 4:
                fields["retention_time_ms"] = -1
            for _ in range(100):  # Apache Kafka creates __consumer_offsets on first use
                r = kwire.request(s, OffsetCommitRequest, v, corr=30 + v, **fields)
                if not {p.error_code for t in r.topics for p in t.partitions} & {14, 15, 16}:
                    break
                time.sleep(0.2)
            # (Kafka lists the refused partitions first, oxka in request order: compare as sets)
            codes = sorted((t.name, p.partition_index, p.error_code) for t in r.topics for p in t.partitions)
            assert codes == sorted([(topic, 0, NONE), (topic, 7, UNKNOWN_TOPIC_OR_PARTITION),
                                    (missing, 0, UNKNOWN_TOPIC_OR_PARTITION)]), v
            assert fetch(s, 8 if v == 8 else 3, g, topic, [0, 7]) == {0: (5, "m"), 7: (-1, "")}
    from confluent_kafka import KafkaException, TopicPartition
    import kutil
    c = kutil.consumer(broker, **{"group.id": group + "-ck"})
    try:
        with pytest.raises(KafkaException) as ei:
            c.commit(offsets=[TopicPartition(missing, 0, 3)], asynchronous=False)
        err = ei.value.args[0]
        assert "UNKNOWN_TOPIC_OR_PART" in str(err) or err.code() == UNKNOWN_TOPIC_OR_PARTITION
    finally:
        c.close()
    from kafka.structs import OffsetAndMetadata, TopicPartition as KTP
    from kafka.errors import UnknownTopicOrPartitionError
    from kafka import KafkaConsumer
    kc = KafkaConsumer(bootstrap_servers=broker.bootstrap, group_id=group + "-kp",
                       enable_auto_commit=False, request_timeout_ms=15000)
    try:
        # commit() retries this (retriable) error until its timeout; commit_async reports it once
        got = []
        kc.commit_async({KTP(missing, 0): OffsetAndMetadata(3, "", -1)},
                        callback=lambda offsets, res: got.append(res))
        for _ in range(100):
            if got:
                break
            kc.poll(timeout_ms=100)
        assert got and isinstance(got[0], UnknownTopicOrPartitionError), got
    finally:
        kc.close()


def test_find_coordinator_transaction_key_type(broker):
    # The transaction coordinator (tests/test_transactions.py) is this node too.
    with kwire.connect(broker) as s:
        r = kwire.request(s, FindCoordinatorRequest, 3, key="txn-1", key_type=1)
        assert r.error_code == NONE and r.node_id == 1
        r = kwire.request(s, FindCoordinatorRequest, 4, corr=2, key_type=1,
                          coordinator_keys=["txn-1"])
        assert r.coordinators[0].error_code == NONE
