"""ACLs and the StandardAuthorizer (issue 10): CreateAcls/DescribeAcls/DeleteAcls through
confluent-kafka's and kafka-python's admin clients, and what a principal denied by ACLs sees
from real clients: TOPIC_AUTHORIZATION_FAILED in a delivery report and on consume,
GROUP_AUTHORIZATION_FAILED, TRANSACTIONAL_ID_AUTHORIZATION_FAILED, Metadata hiding topics
(confluent-kafka, kafka-python, kcat -L), DENY beating ALLOW, PREFIXED patterns, super.users,
allow.everyone.if.no.acl.found, ACLs kept across a SIGKILL, SECURITY_DISABLED without an
authorizer, and an unknown authorizer class refused at start-up.

Until SASL lands every connection is `User:ANONYMOUS`, so the tests deny or allow ANONYMOUS
(`ME`) and use `User:other` for "someone else's ACL". To run them as named users later, make
`client_conf(user)` return that user's SASL settings and pass `user=` where a test needs it.
"""
import time

import pytest
from confluent_kafka import KafkaError, KafkaException, TopicPartition
from confluent_kafka.admin import (AclBinding, AclBindingFilter, AclOperation, AclPermissionType,
                                   ResourcePatternType, ResourceType)

from conftest import port_open
from kutil import admin, consumer, create_topic, kcat, produce, producer, unique, wait_until

AUTHORIZER = "org.apache.kafka.metadata.authorizer.StandardAuthorizer"
ME = "User:ANONYMOUS"
OTHER = "User:other"

# The shared broker: an authorizer that allows what no ACL governs, so each test governs
# only the resources it creates (unique names) and the cluster stays open for admin calls.
BROKER_OVERRIDES = {
    "authorizer.class.name": AUTHORIZER,
    "allow.everyone.if.no.acl.found": "true",
}

TOPIC = ResourceType.TOPIC
GROUP = ResourceType.GROUP
LITERAL = ResourcePatternType.LITERAL
PREFIXED = ResourcePatternType.PREFIXED
ALLOW = AclPermissionType.ALLOW
DENY = AclPermissionType.DENY


def client_conf(user=None):
    """Extra client settings to connect as `user` (None: ANONYMOUS). Today every connection is
    ANONYMOUS; with SASL this returns the user's mechanism and credentials."""
    assert user is None, "named users need SASL (not yet served)"
    return {}


def acl(restype, name, pattern, op, perm=ALLOW, principal=ME, host="*"):
    return AclBinding(restype, name, pattern, principal, host, op, perm)


def create_acls(b, bindings, timeout=15):
    fs = admin(b).create_acls(bindings, request_timeout=timeout)
    for f in fs.values():
        f.result(timeout)


def describe(b, restype=ResourceType.ANY, name=None, pattern=ResourcePatternType.ANY,
             principal=None, op=AclOperation.ANY, perm=AclPermissionType.ANY):
    f = admin(b).describe_acls(AclBindingFilter(restype, name, pattern, principal, None, op, perm),
                               request_timeout=15)
    return sorted(f.result(15), key=str)


def error_of(future, timeout=15):
    with pytest.raises(KafkaException) as e:
        future.result(timeout)
    return e.value.args[0].code()


def delivery_errors(b, topic, n=1, **conf):
    """Produce n records and return each delivery report's error code (None = delivered)."""
    p = producer(b, **{"message.timeout.ms": 10000, **client_conf(), **conf})
    reports = []
    for i in range(n):
        p.produce(topic, b"v%d" % i, partition=0,
                  on_delivery=lambda err, msg: reports.append(err.code() if err else None))
    assert p.flush(30) == 0
    return reports


def consume_error(b, topic, timeout=15, **conf):
    """Assign partition 0 from the start; the first error code or message seen."""
    c = consumer(b, **{**client_conf(), **conf})
    try:
        c.assign([TopicPartition(topic, 0, 0)])
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            m = c.poll(0.5)
            if m is None:
                continue
            return m.error().code() if m.error() else m.value()
        return None
    finally:
        c.close()


# ------------------------------------------------------------------ the ACL APIs

def test_create_describe_delete_acls_with_confluent(broker):
    t = unique("acl")
    bindings = [
        acl(TOPIC, t, LITERAL, AclOperation.READ),
        acl(TOPIC, t, LITERAL, AclOperation.WRITE, DENY, principal=OTHER, host="10.0.0.1"),
        acl(TOPIC, t + "-", PREFIXED, AclOperation.ALL),
        acl(GROUP, t, LITERAL, AclOperation.DESCRIBE),
    ]
    create_acls(broker, bindings)
    create_acls(broker, bindings[:1])  # creating an existing ACL again succeeds, adds nothing
    assert describe(broker, TOPIC, t, LITERAL) == sorted(bindings[:2], key=str)
    # ANY with a name: that exact name, any pattern type and resource type.
    assert describe(broker, name=t) == sorted([bindings[0], bindings[1], bindings[3]], key=str)
    # MATCH: every pattern that applies to a topic named t-x.
    assert describe(broker, TOPIC, t + "-x", ResourcePatternType.MATCH) == [bindings[2]]
    assert describe(broker, TOPIC, t, LITERAL, principal=OTHER) == [bindings[1]]
    assert describe(broker, TOPIC, t, LITERAL, perm=DENY) == [bindings[1]]
    assert describe(broker, TOPIC, t, LITERAL, op=AclOperation.READ) == [bindings[0]]

    f = AclBindingFilter(TOPIC, t, LITERAL, None, None, AclOperation.ANY, AclPermissionType.ANY)
    deleted = admin(broker).delete_acls([f], request_timeout=15)[f].result(15)
    assert sorted(deleted, key=str) == sorted(bindings[:2], key=str)
    assert describe(broker, TOPIC, t, LITERAL) == []
    f2 = AclBindingFilter(ResourceType.ANY, None, ResourcePatternType.ANY, ME, None,
                          AclOperation.ANY, AclPermissionType.ANY)
    left = [x for x in admin(broker).delete_acls([f2], request_timeout=15)[f2].result(15)
            if x.name.startswith(t)]
    assert sorted(left, key=str) == sorted(bindings[2:], key=str)
    assert describe(broker, name=t) == []


def test_invalid_acls_are_refused_per_binding(broker):
    t = unique("bad")
    good = acl(TOPIC, t, LITERAL, AclOperation.READ)
    cluster_misnamed = acl(ResourceType.BROKER, "not-the-cluster",
                           LITERAL, AclOperation.ALTER)
    no_colon = AclBinding(TOPIC, t, LITERAL, "alice", "*", AclOperation.READ, ALLOW)
    fs = admin(broker).create_acls([good, cluster_misnamed, no_colon], request_timeout=15)
    fs[good].result(15)
    assert error_of(fs[cluster_misnamed]) == KafkaError.INVALID_REQUEST
    assert error_of(fs[no_colon]) == KafkaError.INVALID_REQUEST
    assert describe(broker, TOPIC, t, LITERAL) == [good]


def test_kafka_python_admin_acls(broker):
    from kafka.admin import (ACL, ACLFilter, ACLOperation, ACLPermissionType,
                             ACLResourcePatternType, ResourcePattern, ResourcePatternFilter)
    from kafka.admin import ResourceType as KRT
    from kutil import kp_admin
    t = unique("kpacl")
    a = kp_admin(broker)
    try:
        pattern = ResourcePattern(KRT.TOPIC, t, ACLResourcePatternType.LITERAL)
        want = ACL(ME, "*", ACLOperation.WRITE, ACLPermissionType.ALLOW, pattern)
        bad = ACL("nocolon", "*", ACLOperation.READ, ACLPermissionType.ALLOW, pattern)
        r = a.create_acls([want, bad])
        assert [x for x in r["succeeded"]] == [want]
        # kafka-python reports a failure as the error class alone
        assert [e.__name__ for e in r["failed"]] == ["InvalidRequestError"]
        flt = ACLFilter(None, None, ACLOperation.ANY, ACLPermissionType.ANY,
                        ResourcePatternFilter(KRT.TOPIC, t, ACLResourcePatternType.ANY))
        acls, err = a.describe_acls(flt)
        assert err.errno == 0
        assert [(x.principal, x.operation, x.permission_type) for x in acls] == [
            (ME, ACLOperation.WRITE, ACLPermissionType.ALLOW)]
        [(f, matched, ferr)] = a.delete_acls([flt])
        assert ferr.errno == 0
        assert [(x.principal, x.operation) for x in matched] == [(ME, ACLOperation.WRITE)]
        assert a.describe_acls(flt)[0] == []
    finally:
        a.close()


def test_no_authorizer_answers_security_disabled(make_broker):
    # (librdkafka 2.16 drops DescribeAcls' top-level error and returns an empty list, so the
    # DescribeAcls error is asserted through kafka-python.)
    b = make_broker()
    binding = acl(TOPIC, "t", LITERAL, AclOperation.READ)
    assert error_of(admin(b).create_acls([binding], request_timeout=15)[binding]) == \
        KafkaError.SECURITY_DISABLED
    f = AclBindingFilter(TOPIC, "t", LITERAL, None, None, AclOperation.ANY, AclPermissionType.ANY)
    assert error_of(admin(b).delete_acls([f], request_timeout=15)[f]) == \
        KafkaError.SECURITY_DISABLED
    from kafka.admin import ACLFilter, ACLOperation, ACLPermissionType, ResourcePatternFilter
    from kafka.admin import ResourceType as KRT, ACLResourcePatternType
    from kafka.errors import SecurityDisabledError
    from kutil import kp_admin
    a = kp_admin(b)
    try:
        with pytest.raises(SecurityDisabledError):
            a.describe_acls(ACLFilter(None, None, ACLOperation.ANY, ACLPermissionType.ANY,
                                      ResourcePatternFilter(KRT.ANY, None,
                                                            ACLResourcePatternType.ANY)))
    finally:
        a.close()
    # and with no authorizer everything else is allowed
    t = create_topic(b, unique("open"))
    assert delivery_errors(b, t) == [None]


def test_unknown_authorizer_class_is_refused_at_start_up(make_broker):
    b = make_broker(start=False, overrides={"authorizer.class.name": "kafka.security.authorizer.AclAuthorizer"})
    b.start(wait=False)
    try:
        rc = b.proc.wait(20)
    except Exception:  # noqa: BLE001
        rc = None
    assert rc not in (None, 0), "oxka started with an unknown authorizer"
    assert "authorizer.class.name" in b.log_text()
    assert not port_open(b.host, b.port)


# ------------------------------------------------------------------ denials seen by clients

def test_denied_produce_is_topic_authorization_failed(broker):
    t = create_topic(broker, unique("noprod"))
    # DESCRIBE lets the producer see the topic; WRITE is what Produce needs.
    create_acls(broker, [acl(TOPIC, t, LITERAL, AclOperation.DESCRIBE)])
    assert delivery_errors(broker, t, 2) == [KafkaError.TOPIC_AUTHORIZATION_FAILED] * 2
    # kafka-python sees the same error
    from kafka.errors import TopicAuthorizationFailedError
    from kutil import kp_producer
    p = kp_producer(broker, retries=0)
    try:
        with pytest.raises(TopicAuthorizationFailedError):
            p.send(t, b"x", partition=0).get(timeout=20)
    finally:
        p.close(5)
    create_acls(broker, [acl(TOPIC, t, LITERAL, AclOperation.WRITE)])
    assert delivery_errors(broker, t) == [None]


def test_denied_consume_is_topic_authorization_failed(broker):
    t = create_topic(broker, unique("nocons"))
    produce(broker, t, [b"a", b"b"])
    create_acls(broker, [acl(TOPIC, t, LITERAL, AclOperation.DESCRIBE)])
    assert consume_error(broker, t) == KafkaError.TOPIC_AUTHORIZATION_FAILED
    from kafka import TopicPartition as KTP
    from kafka.errors import TopicAuthorizationFailedError
    from kutil import kp_consumer
    c = kp_consumer(broker)
    try:
        c.assign([KTP(t, 0)])
        c.seek(KTP(t, 0), 0)
        with pytest.raises(TopicAuthorizationFailedError):
            for _ in range(20):
                c.poll(timeout_ms=500)
    finally:
        c.close()
    create_acls(broker, [acl(TOPIC, t, LITERAL, AclOperation.READ)])
    assert consume_error(broker, t) == b"a"


def test_denied_group_is_group_authorization_failed(broker):
    t = create_topic(broker, unique("grp"))
    produce(broker, t, [b"a"])
    g = unique("g")
    create_acls(broker, [acl(GROUP, g, LITERAL, AclOperation.READ, principal=OTHER)])
    c = consumer(broker, **{"group.id": g, **client_conf()})
    try:
        c.subscribe([t])
        seen = None
        deadline = time.monotonic() + 20
        while seen is None and time.monotonic() < deadline:
            m = c.poll(0.5)
            if m is not None and m.error():
                seen = m.error().code()
            elif m is not None:
                seen = "consumed"
        assert seen == KafkaError.GROUP_AUTHORIZATION_FAILED
    finally:
        c.close()
    # listing groups hides a group the principal may not describe; describing it is refused
    g2 = unique("g2")
    c2 = consumer(broker, **{"group.id": g2})
    try:
        c2.subscribe([t])
        wait_until(lambda: c2.poll(0.5) is not None, 20, msg="consumer joined")
        c2.commit(offsets=[TopicPartition(t, 0, 1)], asynchronous=False)
    finally:
        c2.close()
    listed = lambda: {x.group_id for x in admin(broker).list_consumer_groups(request_timeout=15).result(15).valid}
    assert g2 in listed()
    create_acls(broker, [acl(GROUP, g2, LITERAL, AclOperation.READ, principal=OTHER)])
    f = admin(broker).describe_consumer_groups([g2], request_timeout=15)[g2]
    assert error_of(f) == KafkaError.GROUP_AUTHORIZATION_FAILED
    # DESCRIBE on the cluster lists every group (no ACL governs the cluster here); without it
    # ListGroups shows only the groups the principal may describe. DENY DESCRIBE on the
    # cluster for the moment, keeping ALTER so the ACLs can be deleted again.
    assert g2 in listed()
    cluster = [acl(ResourceType.BROKER, "kafka-cluster", LITERAL, AclOperation.ALL),
               acl(ResourceType.BROKER, "kafka-cluster", LITERAL, AclOperation.DESCRIBE, DENY)]
    create_acls(broker, cluster)
    try:
        assert g2 not in listed()
    finally:
        f = AclBindingFilter(ResourceType.BROKER, "kafka-cluster", LITERAL, ME, "*",
                             AclOperation.ANY, AclPermissionType.ANY)
        assert len(admin(broker).delete_acls([f], request_timeout=15)[f].result(15)) == 2
    assert g2 in listed()


def test_denied_transactional_id(broker):
    tid = unique("tx")
    create_acls(broker, [acl(ResourceType.TRANSACTIONAL_ID, tid, LITERAL, AclOperation.WRITE,
                             DENY)])
    p = producer(broker, **{"transactional.id": tid})
    with pytest.raises(KafkaException) as e:
        p.init_transactions(20)
    assert e.value.args[0].code() == KafkaError.TRANSACTIONAL_ID_AUTHORIZATION_FAILED


def test_metadata_hides_topics_the_principal_may_not_describe(broker):
    hidden = create_topic(broker, unique("hidden"))
    shown = create_topic(broker, unique("shown"))
    create_acls(broker, [acl(TOPIC, hidden, LITERAL, AclOperation.ALL, principal=OTHER)])
    md = admin(broker).list_topics(timeout=10)
    assert shown in md.topics and hidden not in md.topics
    named = admin(broker).list_topics(hidden, timeout=10).topics[hidden]
    assert named.error is not None and named.error.code() == KafkaError.TOPIC_AUTHORIZATION_FAILED
    from kutil import kp_admin
    a = kp_admin(broker)
    try:
        topics = a.list_topics()
        assert shown in topics and hidden not in topics
    finally:
        a.close()
    out = kcat(broker, "-L", "-J").stdout.decode()
    assert shown in out and hidden not in out


def test_deny_beats_allow(broker):
    t = create_topic(broker, unique("deny"))
    produce(broker, t, [b"a"])
    create_acls(broker, [acl(TOPIC, t, LITERAL, AclOperation.ALL),
                         acl(TOPIC, "*", LITERAL, AclOperation.WRITE, DENY, host="127.0.0.1")])
    try:
        assert delivery_errors(broker, t) == [KafkaError.TOPIC_AUTHORIZATION_FAILED]
        assert consume_error(broker, t) == b"a"  # READ still allowed
    finally:
        f = AclBindingFilter(TOPIC, "*", LITERAL, ME, "127.0.0.1", AclOperation.WRITE, DENY)
        admin(broker).delete_acls([f], request_timeout=15)[f].result(15)
    assert delivery_errors(broker, t) == [None]


def test_prefixed_patterns(broker):
    base = unique("pfx")
    locked = create_topic(broker, base + "-locked-a")
    private = create_topic(broker, base + "-priv-a")
    free = create_topic(broker, base + "-free-a")
    # Any ACL on a resource makes it governed: allow.everyone no longer applies there, so
    # "locked-" also needs an ALLOW for what ANONYMOUS may still do.
    create_acls(broker, [
        acl(TOPIC, base + "-locked-", PREFIXED, AclOperation.ALL),
        acl(TOPIC, base + "-locked-", PREFIXED, AclOperation.WRITE, DENY),
        acl(TOPIC, base + "-priv-", PREFIXED, AclOperation.ALL, principal=OTHER),
    ])
    assert delivery_errors(broker, locked) == [KafkaError.TOPIC_AUTHORIZATION_FAILED]
    assert delivery_errors(broker, free) == [None]
    topics = admin(broker).list_topics(timeout=10).topics
    assert locked in topics and free in topics and private not in topics
    assert delivery_errors(broker, private) == [KafkaError.TOPIC_AUTHORIZATION_FAILED]


def test_authorized_operations(broker):
    from confluent_kafka import TopicCollection
    t = create_topic(broker, unique("ops"))
    create_acls(broker, [acl(TOPIC, t, LITERAL, AclOperation.READ)])
    d = admin(broker).describe_topics(TopicCollection([t]), request_timeout=15,
                                      include_authorized_operations=True)[t].result(15)
    assert sorted(o.name for o in d.authorized_operations) == ["DESCRIBE", "READ"]
    c = admin(broker).describe_cluster(request_timeout=15,
                                       include_authorized_operations=True).result(15)
    # no ACL governs the cluster and allow.everyone.if.no.acl.found=true: all cluster ops
    assert sorted(o.name for o in c.authorized_operations) == sorted(
        ["CREATE", "CLUSTER_ACTION", "DESCRIBE_CONFIGS", "ALTER_CONFIGS", "IDEMPOTENT_WRITE",
         "ALTER", "DESCRIBE"])


# ------------------------------------------------------------------ broker settings

def test_default_deny_super_users_and_acls_across_sigkill(make_broker):
    """Start open (allow.everyone), grant ANONYMOUS one prefix and DESCRIBE on the cluster,
    SIGKILL, restart with Kafka's default (allow.everyone.if.no.acl.found=false): the ACLs are
    still there and are all ANONYMOUS may use. Then super.users=User:ANONYMOUS allows all."""
    base = {"authorizer.class.name": AUTHORIZER}
    b = make_broker(overrides={**base, "allow.everyone.if.no.acl.found": "true"})
    mine = create_topic(b, "keep-" + unique("t"))
    other = create_topic(b, unique("other"))
    grants = [acl(TOPIC, "keep-", PREFIXED, AclOperation.ALL),
              acl(ResourceType.BROKER, "kafka-cluster", LITERAL, AclOperation.DESCRIBE)]
    create_acls(b, grants)
    b.kill()
    b.overrides = {**base}
    b.start()
    assert describe(b) == sorted(grants, key=str)
    assert delivery_errors(b, mine) == [None]
    assert delivery_errors(b, other) == [KafkaError.TOPIC_AUTHORIZATION_FAILED]
    topics = admin(b).list_topics(timeout=10).topics
    assert mine in topics and other not in topics
    # no ALTER on the cluster: CreateAcls is CLUSTER_AUTHORIZATION_FAILED
    x = acl(TOPIC, other, LITERAL, AclOperation.ALL)
    assert error_of(admin(b).create_acls([x], request_timeout=15)[x]) == \
        KafkaError.CLUSTER_AUTHORIZATION_FAILED
    # creating a topic needs CREATE on the cluster or the topic
    from confluent_kafka.admin import NewTopic
    nt = unique("new")
    f = admin(b).create_topics([NewTopic(nt, 1, 1)], request_timeout=15)[nt]
    assert error_of(f) == KafkaError.TOPIC_AUTHORIZATION_FAILED
    b.stop()
    b.overrides = {**base, "super.users": "User:admin;" + ME}
    b.start()
    assert delivery_errors(b, other) == [None]
    create_acls(b, [x])
    assert len(describe(b)) == 3


# ------------------------------------------------------------------ every version on the wire

def test_acl_apis_every_version_raw(broker):
    """CreateAcls, DescribeAcls and DeleteAcls at each served version (1-3), byte for byte
    through kafka-python's protocol classes: results, grouping by resource pattern, and
    INVALID_REQUEST for a MATCH pattern in a creation and an unknown code in a filter."""
    import kwire
    from kafka.protocol.admin import CreateAclsRequest, DeleteAclsRequest, DescribeAclsRequest
    ANY, MATCH, LIT = 1, 2, 3
    TOPIC_CODE, READ, ALLOW_CODE = 2, 3, 3
    for v in (1, 2, 3):
        t = unique("raw%d" % v)
        s = kwire.connect(broker)
        try:
            creation = CreateAclsRequest.AclCreation
            r = kwire.request(s, CreateAclsRequest, v, corr=1, creations=[
                creation(resource_type=TOPIC_CODE, resource_name=t, resource_pattern_type=LIT,
                         principal=ME, host="*", operation=READ, permission_type=ALLOW_CODE),
                creation(resource_type=TOPIC_CODE, resource_name=t, resource_pattern_type=MATCH,
                         principal=ME, host="*", operation=READ, permission_type=ALLOW_CODE),
            ])
            assert [x.error_code for x in r.results] == [0, 42], v
            r = kwire.request(s, DescribeAclsRequest, v, corr=2, resource_type_filter=TOPIC_CODE,
                              resource_name_filter=t, pattern_type_filter=ANY,
                              principal_filter=None, host_filter=None, operation=1,
                              permission_type=1)
            assert r.error_code == 0, v
            assert [(x.resource_type, x.resource_name, x.pattern_type,
                     [(a.principal, a.host, a.operation, a.permission_type) for a in x.acls])
                    for x in r.resources] == [(TOPIC_CODE, t, LIT, [(ME, "*", READ, ALLOW_CODE)])], v
            r = kwire.request(s, DescribeAclsRequest, v, corr=3, resource_type_filter=0,
                              resource_name_filter=None, pattern_type_filter=ANY,
                              principal_filter=None, host_filter=None, operation=1,
                              permission_type=1)
            assert r.error_code == 42, v
            filt = DeleteAclsRequest.DeleteAclsFilter
            r = kwire.request(s, DeleteAclsRequest, v, corr=4, filters=[
                filt(resource_type_filter=TOPIC_CODE, resource_name_filter=t,
                     pattern_type_filter=LIT, principal_filter=None, host_filter=None,
                     operation=1, permission_type=1),
                filt(resource_type_filter=TOPIC_CODE, resource_name_filter=t,
                     pattern_type_filter=0, principal_filter=None, host_filter=None,
                     operation=1, permission_type=1),
            ])
            assert [f.error_code for f in r.filter_results] == [0, 42], v
            assert [(m.resource_name, m.principal, m.operation)
                    for m in r.filter_results[0].matching_acls] == [(t, ME, READ)], v
        finally:
            s.close()


def test_topic_admin_denied(broker):
    """Configs, partitions, records and deletion of a topic governed by someone else's ACL
    answer TOPIC_AUTHORIZATION_FAILED per resource, as Kafka does; another topic in the same
    request is unaffected."""
    from confluent_kafka.admin import ConfigResource, NewPartitions
    theirs = create_topic(broker, unique("theirs"))
    mine = create_topic(broker, unique("mine"))
    create_acls(broker, [acl(TOPIC, theirs, LITERAL, AclOperation.ALL, principal=OTHER)])
    a = admin(broker)
    fs = a.describe_configs([ConfigResource("TOPIC", theirs), ConfigResource("TOPIC", mine)],
                            request_timeout=15)
    by_name = {r.name: f for r, f in fs.items()}
    assert error_of(by_name[theirs]) == KafkaError.TOPIC_AUTHORIZATION_FAILED
    assert "retention.ms" in by_name[mine].result(15)
    f = a.create_partitions([NewPartitions(theirs, 2)], request_timeout=15)[theirs]
    assert error_of(f) == KafkaError.TOPIC_AUTHORIZATION_FAILED
    f = a.delete_records([TopicPartition(theirs, 0, 0)], request_timeout=15)
    assert error_of(list(f.values())[0]) == KafkaError.TOPIC_AUTHORIZATION_FAILED
    fs = a.delete_topics([theirs, mine], request_timeout=15)
    assert error_of(fs[theirs]) == KafkaError.TOPIC_AUTHORIZATION_FAILED
    fs[mine].result(15)


def test_named_sasl_users_are_authorized_by_their_acls(make_broker):
    """With SASL PLAIN logins the principal is `User:<name>`: alice's WRITE ACL lets her produce,
    bob (no ACL, default deny) gets TOPIC_AUTHORIZATION_FAILED, the super user admin may do
    everything."""
    from confluent_kafka import Producer
    from confluent_kafka.admin import AdminClient, NewTopic
    from conftest import free_port
    port = free_port()
    listener = "SASL_PLAINTEXT://127.0.0.1:%d" % port
    jaas = ('org.apache.kafka.common.security.plain.PlainLoginModule required '
            'user_admin="admin-secret" user_alice="alice-secret" user_bob="bob-secret";')
    b = make_broker(start=False, overrides={
        "listeners": listener, "advertised.listeners": listener,
        "sasl.enabled.mechanisms": "PLAIN", "sasl.jaas.config": jaas,
        "authorizer.class.name": AUTHORIZER, "super.users": "User:admin"})
    b.port = port
    b.start()

    def conf(user):
        return {"bootstrap.servers": "127.0.0.1:%d" % port, "security.protocol": "SASL_PLAINTEXT",
                "sasl.mechanisms": "PLAIN", "sasl.username": user,
                "sasl.password": user + "-secret"}

    root = AdminClient(conf("admin"))
    t = unique("named")
    root.create_topics([NewTopic(t, 1, 1)])[t].result(15)
    for f in root.create_acls([AclBinding(TOPIC, t, LITERAL, "User:alice", "*",
                                          AclOperation.WRITE, ALLOW)], request_timeout=15).values():
        f.result(15)

    def produce_as(user):
        errors = []
        p = Producer(dict(conf(user), **{"linger.ms": 0, "message.timeout.ms": 10000}))
        p.produce(t, b"from-" + user.encode(), on_delivery=lambda e, m: errors.append(e))
        p.flush(15)
        return errors

    assert produce_as("alice") == [None]
    (err,) = produce_as("bob")
    assert err is not None and err.code() == KafkaError.TOPIC_AUTHORIZATION_FAILED, err
    assert produce_as("admin") == [None]
