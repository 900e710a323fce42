"""Listener security (issue 10, authentication): SASL PLAIN and SCRAM-SHA-256/512 over
SASL_PLAINTEXT and SASL_SSL, SSL, mTLS with the certificate subject as principal, SCRAM
credentials through Describe/AlterUserScramCredentials, the pre-authentication rules (only
ApiVersions/SaslHandshake/SaslAuthenticate, small frames), SaslHandshake v0 raw tokens and
KIP-368 re-authentication, with confluent-kafka, kafka-python and kcat."""
import logging
import os
import socket
import ssl
import struct
import subprocess
import time

import pytest
from confluent_kafka import Consumer, KafkaError, Producer
from confluent_kafka.admin import (AdminClient, NewTopic, ScramCredentialInfo, ScramMechanism,
                                   UserScramCredentialUpsertion)
from kafka import KafkaConsumer, KafkaProducer, TopicPartition
from kafka.protocol.sasl import SaslAuthenticateRequest, SaslHandshakeRequest

import kwire
import tlsutil
from conftest import Broker, free_port, unique

PLAIN_JAAS = ('org.apache.kafka.common.security.plain.PlainLoginModule required '
              'username="admin" password="admin-secret" user_admin="admin-secret" '
              'user_carol="carol-secret";')
LISTENERS = ["PLAINTEXT", "SASL_PLAINTEXT", "SSL", "SASL_SSL", "MTLS", "MTLSMAP"]


@pytest.fixture(scope="module")
def pki(module_tmp):
    d = os.path.join(module_tmp, "pki")
    os.makedirs(d, exist_ok=True)
    return tlsutil.make_pki(d)


@pytest.fixture(scope="module")
def secure(module_tmp, oxka_bin, pki):
    ports = {name: free_port() for name in LISTENERS}
    listeners = ",".join("%s://127.0.0.1:%d" % (n, p) for n, p in ports.items())
    overrides = {
        "listeners": listeners,
        "advertised.listeners": listeners,
        "listener.security.protocol.map": "PLAINTEXT:PLAINTEXT,SASL_PLAINTEXT:SASL_PLAINTEXT,"
                                          "SSL:SSL,SASL_SSL:SASL_SSL,MTLS:SSL,MTLSMAP:SSL",
        "sasl.enabled.mechanisms": "PLAIN,SCRAM-SHA-256,SCRAM-SHA-512",
        "listener.name.sasl_plaintext.plain.sasl.jaas.config": PLAIN_JAAS,
        "listener.name.sasl_ssl.plain.sasl.jaas.config": PLAIN_JAAS,
        "listener.name.sasl_ssl.sasl.enabled.mechanisms": "PLAIN,SCRAM-SHA-512",
        "ssl.keystore.type": "PEM",
        "ssl.keystore.location": pki["server_keystore"],
        "ssl.truststore.type": "PEM",
        "ssl.truststore.location": pki["ca"],
        "listener.name.mtls.ssl.client.auth": "required",
        "listener.name.mtlsmap.ssl.client.auth": "required",
        "listener.name.mtlsmap.ssl.principal.mapping.rules": "RULE:^CN=([^,]*),.*$/$1/U,DEFAULT",
        "oxka.scram.users": "alice:alice-secret",
    }
    b = Broker(module_tmp, overrides=overrides, name="oxka-security",
               env={"RUST_LOG": "info,oxka::auth=debug"})
    b.port = ports["PLAINTEXT"]
    b.start()
    b.ports = ports
    yield b
    b.kill()


def conf_for(b, pki, listener, mechanism=None, user=None, password=None):
    """librdkafka settings for a listener of the secure broker."""
    protocol = {"MTLS": "SSL", "MTLSMAP": "SSL"}.get(listener, listener)
    c = {"bootstrap.servers": "127.0.0.1:%d" % b.ports[listener], "security.protocol": protocol,
         "socket.timeout.ms": 10000}
    if "SSL" in protocol:
        c["ssl.ca.location"] = pki["ca"]
    if listener.startswith("MTLS"):
        c["ssl.certificate.location"] = pki["client_cert"]
        c["ssl.key.location"] = pki["client_key"]
    if mechanism:
        c.update({"sasl.mechanisms": mechanism, "sasl.username": user, "sasl.password": password})
    return c


def kp_conf_for(b, pki, listener, mechanism=None, user=None, password=None):
    """kafka-python settings for a listener of the secure broker."""
    protocol = {"MTLS": "SSL", "MTLSMAP": "SSL"}.get(listener, listener)
    c = {"bootstrap_servers": "127.0.0.1:%d" % b.ports[listener], "security_protocol": protocol}
    if "SSL" in protocol:
        c["ssl_cafile"] = pki["ca"]
    if listener.startswith("MTLS"):
        c["ssl_certfile"] = pki["client_cert"]
        c["ssl_keyfile"] = pki["client_key"]
    if mechanism:
        c.update({"sasl_mechanism": mechanism, "sasl_plain_username": user,
                  "sasl_plain_password": password})
    return c


def plain_admin(b):
    return AdminClient({"bootstrap.servers": "127.0.0.1:%d" % b.ports["PLAINTEXT"]})


def make_topic(b):
    name = unique("sec")
    a = plain_admin(b)
    a.create_topics([NewTopic(name, 1, 1)])[name].result(15)
    return name


def confluent_round_trip(conf, topic, values):
    p = Producer(dict(conf, **{"message.timeout.ms": 20000}))
    for v in values:
        p.produce(topic, v.encode())
    assert p.flush(30) == 0
    c = Consumer(dict(conf, **{"group.id": unique("g"), "auto.offset.reset": "earliest",
                               "enable.auto.commit": False}))
    c.subscribe([topic])
    got = []
    deadline = time.monotonic() + 30
    while len(got) < len(values) and time.monotonic() < deadline:
        m = c.poll(0.5)
        if m is not None and not m.error():
            got.append(m.value().decode())
    c.close()
    return got


def kafka_python_round_trip(conf, topic, values):
    p = KafkaProducer(**conf)
    for v in values:
        p.send(topic, v.encode()).get(timeout=20)
    p.close()
    c = KafkaConsumer(**conf, consumer_timeout_ms=3000)
    tp = TopicPartition(topic, 0)
    c.assign([tp])
    c.seek_to_beginning(tp)
    got = []
    deadline = time.monotonic() + 30
    while len(got) < len(values) and time.monotonic() < deadline:
        for records in c.poll(timeout_ms=500).values():
            got.extend(r.value.decode() for r in records)
    c.close()
    return got


CASES = [
    ("SASL_PLAINTEXT", "PLAIN", "carol", "carol-secret"),
    ("SASL_PLAINTEXT", "SCRAM-SHA-256", "alice", "alice-secret"),
    ("SASL_PLAINTEXT", "SCRAM-SHA-512", "alice", "alice-secret"),
    ("SASL_SSL", "PLAIN", "carol", "carol-secret"),
    ("SASL_SSL", "SCRAM-SHA-512", "alice", "alice-secret"),
    ("SSL", None, None, None),
    ("MTLS", None, None, None),
]


@pytest.mark.parametrize("listener,mechanism,user,password", CASES)
def test_confluent_round_trip(secure, pki, listener, mechanism, user, password):
    topic = make_topic(secure)
    values = ["%s-%d" % (listener, i) for i in range(5)]
    conf = conf_for(secure, pki, listener, mechanism, user, password)
    assert confluent_round_trip(conf, topic, values) == values


@pytest.mark.parametrize("listener,mechanism,user,password", CASES)
def test_kafka_python_round_trip(secure, pki, listener, mechanism, user, password):
    topic = make_topic(secure)
    values = ["kp-%s-%d" % (listener, i) for i in range(5)]
    conf = kp_conf_for(secure, pki, listener, mechanism, user, password)
    assert kafka_python_round_trip(conf, topic, values) == values


@pytest.mark.parametrize("listener,mechanism,user,password", [
    ("SASL_PLAINTEXT", "PLAIN", "carol", "carol-secret"),
    ("SASL_SSL", "PLAIN", "carol", "carol-secret"),
    ("SSL", None, None, None),
    ("MTLS", None, None, None),
])
def test_kcat_round_trip(secure, pki, listener, mechanism, user, password):
    topic = make_topic(secure)
    conf = conf_for(secure, pki, listener, mechanism, user, password)
    args = ["kcat", "-b", conf.pop("bootstrap.servers")]
    for k, v in conf.items():
        args += ["-X", "%s=%s" % (k, v)]
    subprocess.run(args + ["-P", "-t", topic], input=b"k1\nk2\n", check=True, timeout=60)
    out = subprocess.run(args + ["-C", "-t", topic, "-o", "beginning", "-c", "2", "-e", "-q"],
                         capture_output=True, check=True, timeout=60)
    assert out.stdout.split() == [b"k1", b"k2"]


@pytest.mark.parametrize("listener,mechanism,user", [
    ("SASL_PLAINTEXT", "PLAIN", "carol"),
    ("SASL_PLAINTEXT", "SCRAM-SHA-256", "alice"),
    ("SASL_SSL", "SCRAM-SHA-512", "alice"),
    ("SASL_PLAINTEXT", "SCRAM-SHA-512", "nobody"),
])
def test_wrong_password_is_an_authentication_error(secure, pki, listener, mechanism, user, caplog):
    errors = []
    conf = conf_for(secure, pki, listener, mechanism, user, "wrong-password")
    p = Producer(dict(conf, error_cb=errors.append))
    deadline = time.monotonic() + 20
    while not errors and time.monotonic() < deadline:
        p.poll(0.2)
    assert errors, "no error reported"
    assert errors[0].code() == KafkaError._AUTHENTICATION, errors[0]
    assert "SASL authentication error" in errors[0].str() or "Authentication failed" in errors[0].str()

    del p
    import kafka.errors as Errors
    # kafka-python retries the bootstrap until max_block_ms, then raises; the broker's
    # SASL_AUTHENTICATION_FAILED and message are what it logs for each attempt
    with caplog.at_level(logging.WARNING, logger="kafka"):
        with pytest.raises(Errors.KafkaError):
            KafkaProducer(**kp_conf_for(secure, pki, listener, mechanism, user, "wrong-password"),
                          max_block_ms=5000)
    assert "SaslAuthenticationFailedError" in caplog.text, caplog.text[-2000:]
    assert "Authentication failed" in caplog.text


def tls_connect(b, pki, listener, cert=None, key=None):
    ctx = ssl.create_default_context(cafile=pki["ca"])
    if cert:
        ctx.load_cert_chain(cert, key)
    raw = socket.create_connection(("127.0.0.1", b.ports[listener]), timeout=10)
    s = ctx.wrap_socket(raw, server_hostname="127.0.0.1")
    return s


def api_versions_ok(sock):
    corr, err, apis = kwire.parse_api_versions_v0(kwire.api_versions_raw(sock, 0))
    return err == 0 and 36 in apis


@pytest.mark.parametrize("which", ["stranger", "expired", None])
def test_mtls_refuses_unknown_ca_expired_and_missing_certificates(secure, pki, which):
    cert = pki[which + "_cert"] if which else None
    key = pki[which + "_key"] if which else None
    # TLS 1.3 finishes the client's side of the handshake before the server checks the
    # certificate, so the refusal shows as an alert or a close on the first read.
    with pytest.raises((ssl.SSLError, ConnectionError, OSError)):
        s = tls_connect(secure, pki, "MTLS", cert, key)
        api_versions_ok(s)
    # librdkafka reports it as a transport/SSL failure, never a working connection
    errors = []
    conf = conf_for(secure, pki, "MTLS")
    if which:
        conf.update({"ssl.certificate.location": cert, "ssl.key.location": key})
    else:
        conf.pop("ssl.certificate.location")
        conf.pop("ssl.key.location")
    p = Producer(dict(conf, error_cb=errors.append))
    deadline = time.monotonic() + 20
    while not errors and time.monotonic() < deadline:
        p.poll(0.2)
    assert errors and errors[0].code() in (KafkaError._TRANSPORT, KafkaError._SSL,
                                           KafkaError._ALL_BROKERS_DOWN), errors


def test_unknown_server_ca_is_refused_by_the_client(secure, pki, tmp_path):
    other = tlsutil.make_pki(str(tmp_path))  # a different CA
    ctx = ssl.create_default_context(cafile=other["ca"])
    raw = socket.create_connection(("127.0.0.1", secure.ports["SSL"]), timeout=10)
    with pytest.raises(ssl.SSLCertVerificationError):
        ctx.wrap_socket(raw, server_hostname="127.0.0.1")
    raw.close()


def test_mtls_principal_is_the_subject_dn_mapped_by_the_rules(secure, pki):
    s = tls_connect(secure, pki, "MTLS", pki["client_cert"], pki["client_key"])
    assert api_versions_ok(s)
    s.close()
    s = tls_connect(secure, pki, "MTLSMAP", pki["client_cert"], pki["client_key"])
    assert api_versions_ok(s)
    s.close()
    def logged():
        text = secure.log_text()
        return ("principal=User:CN=client,OU=eng,O=oxka,C=NO" in text
                and "principal=User:CLIENT" in text)
    deadline = time.monotonic() + 10
    while not logged() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert logged(), secure.log_tail(40)


def test_plaintext_on_a_tls_listener_is_not_served(secure):
    s = socket.create_connection(("127.0.0.1", secure.ports["SSL"]), timeout=10)
    kwire.send_raw(s, kwire.raw_header(18, 0, 1))
    data = b""
    try:
        data = s.recv(4096)
    except (ConnectionError, socket.timeout):
        pass
    # whatever comes back is a TLS alert (content type 21), never a Kafka response
    assert data == b"" or data[0] == 21
    s.close()


def sasl_socket(b, listener="SASL_PLAINTEXT"):
    s = socket.create_connection(("127.0.0.1", b.ports[listener]), timeout=10)
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return s


def test_only_sasl_and_api_versions_before_authentication(secure):
    s = sasl_socket(secure)
    assert api_versions_ok(s)
    # Metadata v1 before authenticating: the connection is closed, as Kafka does
    kwire.send_raw(s, kwire.raw_header(3, 1, 2) + struct.pack(">i", -1))
    assert kwire.closed_by_peer(s)
    s.close()


def test_oversized_frame_before_authentication_closes(secure):
    s = sasl_socket(secure)
    # 524,289 bytes announced (sasl.server.max.receive.size + 1); nothing more is sent
    s.sendall(struct.pack(">i", 524289) + kwire.raw_header(18, 0, 3))
    assert kwire.closed_by_peer(s)
    s.close()
    # after authenticating, the normal cap (socket.request.max.bytes) applies again
    s = sasl_socket(secure)
    plain_v1(s, "carol", "carol-secret")
    s.sendall(struct.pack(">i", 524289) + kwire.raw_header(3, 1, 9))
    assert not kwire.closed_by_peer(s, timeout=1.0)
    s.close()


def plain_v1(s, user, password, version=1):
    r = kwire.request(s, SaslHandshakeRequest, 1, corr=11, mechanism="PLAIN")
    assert r.error_code == 0 and "PLAIN" in r.mechanisms
    token = b"\0" + user.encode() + b"\0" + password.encode()
    return kwire.request(s, SaslAuthenticateRequest, version, corr=12, auth_bytes=token)


def test_handshake_unsupported_mechanism_lists_enabled_ones(secure):
    s = sasl_socket(secure)
    r = kwire.request(s, SaslHandshakeRequest, 1, corr=3, mechanism="GSSAPI")
    assert r.error_code == 33  # UNSUPPORTED_SASL_MECHANISM
    assert sorted(r.mechanisms) == ["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"]
    assert kwire.closed_by_peer(s)
    s.close()


def test_sasl_authenticate_wrong_password_is_error_58_then_close(secure):
    s = sasl_socket(secure)
    r = plain_v1(s, "carol", "nope")
    assert r.error_code == 58  # SASL_AUTHENTICATION_FAILED
    assert "Invalid username or password" in r.error_message
    assert kwire.closed_by_peer(s)
    s.close()


def test_handshake_v0_raw_plain_tokens(secure):
    s = sasl_socket(secure)
    r = kwire.request(s, SaslHandshakeRequest, 0, corr=5, mechanism="PLAIN")
    assert r.error_code == 0
    kwire.send_raw(s, b"\0carol\0carol-secret")  # raw token: size prefix, no Kafka header
    assert kwire.recv_frame(s) == b""            # PLAIN's (empty) server response
    assert api_versions_ok(s)
    kwire.send_raw(s, kwire.raw_header(3, 1, 8) + struct.pack(">i", -1))
    assert len(kwire.recv_frame(s)) > 8          # Metadata is served once authenticated
    s.close()
    s = sasl_socket(secure)
    kwire.request(s, SaslHandshakeRequest, 0, corr=5, mechanism="PLAIN")
    kwire.send_raw(s, b"\0carol\0wrong")
    assert kwire.closed_by_peer(s)
    s.close()


def test_sasl_requests_on_a_plaintext_listener_get_illegal_sasl_state(secure):
    s = socket.create_connection(("127.0.0.1", secure.ports["PLAINTEXT"]), timeout=10)
    r = kwire.request(s, SaslHandshakeRequest, 1, corr=3, mechanism="PLAIN")
    assert r.error_code == 34  # ILLEGAL_SASL_STATE
    s.close()


def test_scram_credentials_alter_describe_and_authenticate(secure, pki):
    a = plain_admin(secure)
    bob = unique("bob")
    info = ScramCredentialInfo(ScramMechanism.SCRAM_SHA_256, 8192)
    fs = a.alter_user_scram_credentials([UserScramCredentialUpsertion(bob, info, b"bob-secret")])
    fs[bob].result(15)
    described = a.describe_user_scram_credentials([bob, "alice"])  # noqa: F841 (a stays alive)
    bob_infos = described[bob].result(15).scram_credential_infos
    assert [(i.mechanism, i.iterations) for i in bob_infos] == [(ScramMechanism.SCRAM_SHA_256, 8192)]
    alice_infos = described["alice"].result(15).scram_credential_infos
    assert sorted(i.mechanism for i in alice_infos) == [ScramMechanism.SCRAM_SHA_256,
                                                        ScramMechanism.SCRAM_SHA_512]
    topic = make_topic(secure)
    conf = conf_for(secure, pki, "SASL_PLAINTEXT", "SCRAM-SHA-256", bob, "bob-secret")
    assert confluent_round_trip(conf, topic, ["b1"]) == ["b1"]
    # too few iterations: UNACCEPTABLE_CREDENTIAL (93), through kafka-python's admin
    from kafka.admin import KafkaAdminClient
    from kafka.admin._users import UserScramCredentialUpsertion as KpUpsert
    ka = KafkaAdminClient(bootstrap_servers="127.0.0.1:%d" % secure.ports["PLAINTEXT"])
    try:
        res = ka.alter_user_scram_credentials([KpUpsert("dave", "SCRAM-SHA-512", "pw", iterations=1000)])
        assert res == {"dave": "Too few iterations"}
        d = ka.describe_user_scram_credentials(["dave"])
        assert "does not exist" in d["dave"]["error"]
    finally:
        ka.close()


def test_scram_credentials_survive_a_restart(make_broker, pki):
    b = make_broker(overrides={"oxka.scram.users": "erin:erin-pw"})
    a = AdminClient({"bootstrap.servers": b.bootstrap})
    before = a.describe_user_scram_credentials(["erin"])["erin"].result(15)
    b.restart()
    a = AdminClient({"bootstrap.servers": b.bootstrap})
    after = a.describe_user_scram_credentials(["erin"])["erin"].result(15)
    assert len(before.scram_credential_infos) == len(after.scram_credential_infos) == 2


def test_reauthentication_kip368(make_broker):
    port = free_port()
    listeners = "SASL_PLAINTEXT://127.0.0.1:%d" % port
    b = make_broker(start=False, overrides={
        "listeners": listeners + ",PLAINTEXT://127.0.0.1:%d" % free_port(),
        "advertised.listeners": listeners,
        "sasl.enabled.mechanisms": "PLAIN,SCRAM-SHA-256",
        "sasl.jaas.config": PLAIN_JAAS,
        "connections.max.reauth.ms": "2000",
        "oxka.scram.users": "alice:alice-secret",
    }, env={"RUST_LOG": "info,oxka::auth=debug"})
    b.port = port
    b.start()
    # raw: SaslAuthenticate v1 reports the session lifetime; without re-authenticating, the
    # first request after it ran out closes the connection
    s = socket.create_connection(("127.0.0.1", port), timeout=10)
    r = plain_v1(s, "carol", "carol-secret")
    assert r.error_code == 0 and r.session_lifetime_ms == 2000
    time.sleep(2.5)
    kwire.send_raw(s, kwire.raw_header(3, 1, 8) + struct.pack(">i", -1))
    assert kwire.closed_by_peer(s)
    s.close()
    # librdkafka re-authenticates (SCRAM) before the lifetime ends and keeps producing on the
    # same connection
    conf = {"bootstrap.servers": "127.0.0.1:%d" % port, "security.protocol": "SASL_PLAINTEXT",
            "sasl.mechanisms": "SCRAM-SHA-256", "sasl.username": "alice",
            "sasl.password": "alice-secret"}
    a = AdminClient(conf)
    topic = unique("reauth")
    a.create_topics([NewTopic(topic, 1, 1)])[topic].result(15)
    p = Producer(dict(conf, **{"linger.ms": 0}))
    delivered = []
    for i in range(12):
        p.produce(topic, b"v%d" % i, on_delivery=lambda e, m: delivered.append(e))
        p.flush(10)
        time.sleep(0.5)
    assert delivered == [None] * 12
    auths = b.log_text().count("SASL authentication succeeded")
    assert auths >= 4, auths  # admin + producer connections, then re-authentications


@pytest.mark.parametrize("overrides,message", [
    ({"listeners": "SASL_PLAINTEXT://127.0.0.1:0"}, "GSSAPI is not supported"),
    ({"listeners": "SASL_PLAINTEXT://127.0.0.1:0", "sasl.enabled.mechanisms": "OAUTHBEARER"},
     "OAUTHBEARER is not supported"),
    ({"listeners": "SASL_PLAINTEXT://127.0.0.1:0", "sasl.enabled.mechanisms": "PLAIN"},
     "defines users"),
    ({"listeners": "SSL://127.0.0.1:0"}, "ssl.keystore.location is required"),
    ({"listeners": "SSL://127.0.0.1:0", "ssl.keystore.location": "/nonexistent"},
     "ssl.keystore.type=JKS is not supported"),
    ({"listeners": "FOO://127.0.0.1:0"}, "No security protocol defined for listener FOO"),
])
def test_unsupported_security_settings_refuse_to_start(make_broker, overrides, message):
    b = make_broker(start=False, overrides=dict(overrides, **{"advertised.listeners": ""}))
    b.start(wait=False)
    rc = b.proc.wait(20)
    assert rc != 0
    assert message in b.log_text(), b.log_tail(20)
