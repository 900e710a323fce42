"""Dynamic broker configs: AlterConfigs / IncrementalAlterConfigs on BROKER resources (this
broker's id, or "" for the cluster default), with sources reported by DescribeConfigs and the
new defaults applied to topics, as `kafka-configs.sh --entity-type brokers` does."""
from confluent_kafka.admin import AlterConfigOpType, ConfigEntry, ConfigResource, ConfigSource
from confluent_kafka import KafkaException

from kutil import admin, create_topic, err_code, unique

INVALID_REQUEST = 42
INVALID_CONFIG = 40


def incremental(b, resource, key, value, op=AlterConfigOpType.SET):
    if resource.name == "":
        # The cluster default resource (kafka-configs --entity-default); confluent-kafka's
        # Python binding refuses an empty name, so this one goes over the raw protocol.
        return raw_incremental(b, key, value, op)
    entry = ConfigEntry(key, value, incremental_operation=op)
    resource = ConfigResource(ConfigResource.Type.BROKER, resource.name, incremental_configs=[entry])
    return admin(b).incremental_alter_configs([resource], request_timeout=15)[resource].result(15)


def raw_incremental(b, key, value, op):
    import kwire
    from kafka.protocol.admin.configs import IncrementalAlterConfigsRequest as R
    Res = R.AlterConfigsResource
    s = kwire.connect(b)
    try:
        r = kwire.request(s, R, 1, validate_only=False, resources=[Res(
            resource_type=4, resource_name="", configs=[Res.AlterableConfig(
                name=key, config_operation=int(op.value), value=value)])])
        assert r.responses[0].error_code == 0, r
    finally:
        s.close()


def describe(b, resource):
    return admin(b).describe_configs([resource], request_timeout=15)[resource].result(15)


def test_dynamic_broker_defaults_apply_to_topics_and_survive_restart(make_broker):
    b = make_broker()
    t = create_topic(b, unique("dyn"))
    topic = ConfigResource(ConfigResource.Type.TOPIC, t)
    assert describe(b, topic)["retention.ms"].source == ConfigSource.DEFAULT_CONFIG.value

    cluster = ConfigResource(ConfigResource.Type.BROKER, "")
    incremental(b, cluster, "log.retention.ms", "3600000")
    cfg = describe(b, topic)["retention.ms"]
    assert cfg.value == "3600000" and cfg.source == ConfigSource.DYNAMIC_DEFAULT_BROKER_CONFIG.value

    node = ConfigResource(ConfigResource.Type.BROKER, "1")
    incremental(b, node, "log.retention.ms", "7200000")
    cfg = describe(b, topic)["retention.ms"]
    assert cfg.value == "7200000" and cfg.source == ConfigSource.DYNAMIC_BROKER_CONFIG.value
    broker_view = describe(b, node)["log.retention.ms"]
    assert broker_view.value == "7200000" and broker_view.source == ConfigSource.DYNAMIC_BROKER_CONFIG.value

    b.restart(kill=True)
    assert describe(b, topic)["retention.ms"].value == "7200000"
    # Deleting the broker's own value falls back to the cluster default.
    incremental(b, node, "log.retention.ms", None, op=AlterConfigOpType.DELETE)
    assert describe(b, topic)["retention.ms"].value == "3600000"


def test_static_only_broker_keys_and_bad_values_are_refused(make_broker):
    b = make_broker()
    node = ConfigResource(ConfigResource.Type.BROKER, "1")
    try:
        incremental(b, node, "log.dirs", "/elsewhere")
        raise AssertionError("log.dirs must not be dynamic")
    except KafkaException as e:
        assert err_code(e) == INVALID_REQUEST
    try:
        incremental(b, node, "log.retention.ms", "soon")
        raise AssertionError("invalid value accepted")
    except KafkaException as e:
        assert err_code(e) == INVALID_CONFIG


def test_legacy_alter_configs_on_broker_with_kafka_python(make_broker):
    from kafka.admin import ConfigResource as KConfigResource, ConfigResourceType
    from kutil import kp_admin
    b = make_broker()
    t = create_topic(b, unique("legacy"))
    a = kp_admin(b)
    try:
        a.alter_configs([KConfigResource(ConfigResourceType.BROKER, "1", configs={"log.segment.bytes": "2097152"})])
        res = a.describe_configs([KConfigResource(ConfigResourceType.TOPIC, t, configs=["segment.bytes"])])
    finally:
        a.close()
    cfg = describe(b, ConfigResource(ConfigResource.Type.TOPIC, t))["segment.bytes"]
    assert cfg.value == "2097152" and cfg.source == ConfigSource.DYNAMIC_BROKER_CONFIG.value
    assert "2097152" in repr(res)  # kafka-python sees the topic's new default


def test_kafka_dynamic_keys_oxka_does_not_use_are_stored_and_warned(make_broker):
    """Kafka accepts sasl.kerberos.* per broker only and thread-pool sizes within half/double
    of the current value (DynamicBrokerConfig); Oxka stores them, describes them with their
    dynamic source and logs that they have no effect (librdkafka 0081 sets both)."""
    from kafka.admin import ConfigResource as KConfigResource, ConfigResourceType
    from kutil import kp_admin
    b = make_broker()
    node = ConfigResource(ConfigResource.Type.BROKER, "1")
    assert describe(b, node)["background.threads"].source == ConfigSource.DEFAULT_CONFIG.value
    incremental(b, node, "sasl.kerberos.min.time.before.relogin", "58000")
    incremental(b, node, "background.threads", "9")
    got = describe(b, node)
    for key, value in [("sasl.kerberos.min.time.before.relogin", "58000"), ("background.threads", "9")]:
        assert got[key].value == value and got[key].source == ConfigSource.DYNAMIC_BROKER_CONFIG.value
        assert not got[key].is_read_only
    incremental(b, node, "background.threads", None, op=AlterConfigOpType.DELETE)
    assert describe(b, node)["background.threads"].source == ConfigSource.DEFAULT_CONFIG.value
    # Kafka's refusals: beyond double the current value; a per-broker key on the cluster default.
    try:
        incremental(b, node, "background.threads", "21")
        raise AssertionError("21 > 2 * 10 accepted")
    except KafkaException as e:
        assert err_code(e) == INVALID_REQUEST
    import kwire
    from kafka.protocol.admin.configs import IncrementalAlterConfigsRequest as R
    Res = R.AlterConfigsResource
    s = kwire.connect(b)
    try:
        r = kwire.request(s, R, 1, validate_only=False, resources=[Res(
            resource_type=4, resource_name="", configs=[Res.AlterableConfig(
                name="sasl.kerberos.min.time.before.relogin", config_operation=0, value="1")])])
    finally:
        s.close()
    assert r.responses[0].error_code == INVALID_REQUEST
    assert "broker id must be specified" in r.responses[0].error_message
    # Legacy AlterConfigs with kafka-python, as 0081's AlterConfigs sub-test sends it.
    a = kp_admin(b)
    try:
        res = a.alter_configs([KConfigResource(ConfigResourceType.BROKER, "1",
                                               configs={"sasl.kerberos.min.time.before.relogin": "57000"})])
    finally:
        a.close()
    assert res == {"broker": {"1": "OK"}}, res  # kafka-python reports per-resource errors here
    cfg = describe(b, node)["sasl.kerberos.min.time.before.relogin"]
    assert cfg.value == "57000" and cfg.source == ConfigSource.DYNAMIC_BROKER_CONFIG.value
    assert "sasl.kerberos.min.time.before.relogin=57000" in b.log_text()
