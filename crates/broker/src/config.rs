//! Broker configuration: Kafka's keys with Kafka's defaults, each value tagged with where it
//! came from so that DescribeConfigs can report its source. Loading (files, environment,
//! flags) is the binary's job; this module types and checks the merged result.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;

use parking_lot::RwLock;

use oxka_log::{LogConfig, TimestampType};
use oxka_metadata::topic_config::{self, TopicConfigDef};

/// Where a config value came from; the numbers are DescribeConfigs' ConfigSource codes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConfigSource {
    DynamicTopic = 1,
    DynamicBroker = 2,
    DynamicDefaultBroker = 3,
    StaticBroker = 4,
    Default = 5,
}

/// Built-in defaults for broker keys that Oxka reads or reports. Where Kafka has no default
/// that works on a laptop (listeners, log.dirs, node.id) Oxka's single-node choice is used.
pub const BROKER_DEFAULTS: &[(&str, &str)] = &[
    ("advertised.listeners", ""),
    ("allow.everyone.if.no.acl.found", "false"),
    ("authorizer.class.name", ""),
    ("auto.create.topics.enable", "true"),
    ("broker.id", "1"),
    // In a cluster, how long the active controller waits to hear from a broker (here: its
    // Raft voter) before fencing it and moving its leaderships.
    ("broker.session.timeout.ms", "9000"),
    ("compression.type", "producer"),
    ("controller.listener.names", "CONTROLLER"),
    ("default.replication.factor", "1"),
    ("delete.topic.enable", "true"),
    ("group.consumer.assignors", "uniform,range"),
    ("group.consumer.heartbeat.interval.ms", "5000"),
    ("group.consumer.max.size", "2147483647"),
    ("group.consumer.session.timeout.ms", "45000"),
    ("group.coordinator.rebalance.protocols", "classic,consumer"),
    ("group.initial.rebalance.delay.ms", "3000"),
    ("group.max.session.timeout.ms", "1800000"),
    ("group.max.size", "2147483647"),
    ("group.min.session.timeout.ms", "6000"),
    ("inter.broker.listener.name", "PLAINTEXT"),
    ("inter.broker.protocol.version", "3.9-IV0"),
    ("listener.security.protocol.map", "PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT,SSL:SSL,SASL_PLAINTEXT:SASL_PLAINTEXT,SASL_SSL:SASL_SSL"),
    ("listeners", "PLAINTEXT://localhost:9092"),
    ("log.cleaner.backoff.ms", "15000"),
    ("log.cleaner.dedupe.buffer.size", "134217728"),
    ("log.cleaner.delete.retention.ms", "86400000"),
    ("log.cleaner.max.compaction.lag.ms", "9223372036854775807"),
    ("log.cleaner.min.cleanable.ratio", "0.5"),
    ("log.cleaner.min.compaction.lag.ms", "0"),
    ("log.cleanup.policy", "delete"),
    ("log.dirs", "./data"),
    ("log.flush.interval.messages", "9223372036854775807"),
    ("log.flush.interval.ms", "9223372036854775807"),
    ("log.index.interval.bytes", "4096"),
    ("log.index.size.max.bytes", "10485760"),
    ("log.local.retention.bytes", "-2"),
    ("log.local.retention.ms", "-2"),
    ("log.message.timestamp.after.max.ms", "3600000"),
    ("log.message.timestamp.before.max.ms", "9223372036854775807"),
    ("log.message.timestamp.type", "CreateTime"),
    ("log.preallocate", "false"),
    ("log.retention.bytes", "-1"),
    ("log.retention.check.interval.ms", "300000"),
    ("log.retention.hours", "168"),
    ("log.roll.hours", "168"),
    ("log.roll.jitter.ms", "0"),
    ("log.segment.bytes", "1073741824"),
    ("log.segment.delete.delay.ms", "60000"),
    ("message.max.bytes", "1048588"),
    ("metadata.log.dir", ""),
    ("min.insync.replicas", "1"),
    ("node.id", "1"),
    ("num.io.threads", "8"),
    ("num.network.threads", "3"),
    ("num.partitions", "1"),
    ("offset.metadata.max.bytes", "4096"),
    ("offsets.retention.check.interval.ms", "600000"),
    ("offsets.retention.minutes", "10080"),
    ("offsets.topic.num.partitions", "50"),
    ("offsets.topic.replication.factor", "1"),
    ("offsets.topic.segment.bytes", "104857600"),
    ("oxka.metrics.listen", "127.0.0.1:9404"),
    ("process.roles", "broker,controller"),
    ("producer.id.expiration.ms", "86400000"),
    ("remote.log.storage.system.enable", "false"),
    ("socket.request.max.bytes", "104857600"),
    ("super.users", ""),
    ("transaction.abort.timed.out.transaction.cleanup.interval.ms", "10000"),
    ("transaction.max.timeout.ms", "900000"),
    ("transaction.remove.expired.transaction.cleanup.interval.ms", "3600000"),
    ("transaction.state.log.min.isr", "1"),
    ("transaction.state.log.num.partitions", "50"),
    ("transaction.state.log.replication.factor", "1"),
    ("transaction.state.log.segment.bytes", "104857600"),
    ("transactional.id.expiration.ms", "604800000"),
    ("unclean.leader.election.enable", "false"),
];

/// A listener from `listeners` / `advertised.listeners`: `NAME://host:port`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listener {
    pub name: String,
    pub host: String,
    pub port: u16,
}

/// A configuration value that cannot be used.
#[derive(Debug, thiserror::Error)]
#[error("invalid value {value:?} for configuration {key}: {reason}")]
pub struct ConfigError {
    pub key: String,
    pub value: String,
    pub reason: String,
}

/// Broker configs set at run time through AlterConfigs (kept in the metadata log): this
/// broker's own, and the cluster-wide defaults (resource name "").
#[derive(Debug, Clone, Default)]
pub struct DynamicBrokerConfigs {
    pub node: BTreeMap<String, String>,
    pub cluster: BTreeMap<String, String>,
}

/// The broker's effective configuration: static values (files, environment, flags, defaults)
/// under the dynamic layer that the metadata image provides.
#[derive(Debug, Clone)]
pub struct BrokerConfig {
    values: BTreeMap<String, (String, ConfigSource)>,
    dynamic: Arc<RwLock<Arc<DynamicBrokerConfigs>>>,
    pub node_id: i32,
    pub cluster_id: Option<String>,
    pub listeners: Vec<Listener>,
    pub advertised_listeners: Vec<Listener>,
    pub log_dirs: Vec<PathBuf>,
    pub metadata_log_dir: PathBuf,
    pub num_partitions: i32,
    pub default_replication_factor: i16,
    pub auto_create_topics_enable: bool,
    pub socket_request_max_bytes: usize,
    pub retention_check_interval_ms: u64,
    pub metrics_listen: Option<String>,
    /// The authorizer's rules when `authorizer.class.name` names StandardAuthorizer; `None`
    /// means no authorizer: every request is allowed and the ACL APIs answer SECURITY_DISABLED.
    pub authorizer: Option<oxka_metadata::acl::AuthorizerRules>,
}

impl BrokerConfig {
    /// Builds the effective config from explicitly set keys (all reported as
    /// STATIC_BROKER_CONFIG) over the built-in defaults.
    pub fn from_properties(set: &BTreeMap<String, String>) -> Result<BrokerConfig, ConfigError> {
        let mut values: BTreeMap<String, (String, ConfigSource)> = BROKER_DEFAULTS
            .iter()
            .map(|(k, v)| (k.to_string(), (v.to_string(), ConfigSource::Default)))
            .collect();
        for (k, v) in set {
            values.insert(k.clone(), (v.trim().to_owned(), ConfigSource::StaticBroker));
        }
        // node.id and broker.id are synonyms; whichever was set wins.
        if set.contains_key("broker.id") && !set.contains_key("node.id") {
            let v = values["broker.id"].clone();
            values.insert("node.id".into(), v);
        }
        let get = |k: &str| values.get(k).map(|(v, _)| v.as_str()).unwrap_or("");
        let node_id = parse(get("node.id"), "node.id")?;
        let listeners = parse_listeners("listeners", get("listeners"))?;
        let advertised_listeners = if get("advertised.listeners").is_empty() {
            listeners
                .iter()
                .map(|l| Listener {
                    host: if l.host.is_empty() || l.host == "0.0.0.0" {
                        "localhost".into()
                    } else {
                        l.host.clone()
                    },
                    ..l.clone()
                })
                .collect()
        } else {
            parse_listeners("advertised.listeners", get("advertised.listeners"))?
        };
        let dirs = if set.contains_key("log.dirs") {
            get("log.dirs").to_owned()
        } else if let Some(dir) = set.get("log.dir") {
            dir.clone()
        } else {
            get("log.dirs").to_owned()
        };
        let log_dirs: Vec<PathBuf> = dirs
            .split(',')
            .map(str::trim)
            .filter(|d| !d.is_empty())
            .map(PathBuf::from)
            .collect();
        if log_dirs.is_empty() {
            return Err(ConfigError {
                key: "log.dirs".into(),
                value: dirs,
                reason: "at least one log directory is required".into(),
            });
        }
        let metadata_log_dir = match get("metadata.log.dir") {
            "" => log_dirs[0].clone(),
            d => PathBuf::from(d),
        };
        let metrics_listen = match get("oxka.metrics.listen") {
            "" | "none" | "disabled" => None,
            addr => Some(addr.to_owned()),
        };
        let config = BrokerConfig {
            node_id,
            cluster_id: set.get("cluster.id").cloned(),
            listeners,
            advertised_listeners,
            log_dirs,
            metadata_log_dir,
            num_partitions: parse(get("num.partitions"), "num.partitions")?,
            default_replication_factor: parse(
                get("default.replication.factor"),
                "default.replication.factor",
            )?,
            auto_create_topics_enable: parse(
                get("auto.create.topics.enable"),
                "auto.create.topics.enable",
            )?,
            socket_request_max_bytes: parse(
                get("socket.request.max.bytes"),
                "socket.request.max.bytes",
            )?,
            retention_check_interval_ms: parse(
                get("log.retention.check.interval.ms"),
                "log.retention.check.interval.ms",
            )?,
            metrics_listen,
            authorizer: crate::authorizer::rules_from_config(&get)?,
            values,
            dynamic: Arc::default(),
        };
        check_roles_and_quorum(&config)?;
        // Every topic default must be valid, or topics could not be opened.
        for def in topic_config::TOPIC_CONFIGS {
            let (value, _) = config.topic_default(def);
            topic_config::validate(def.name, &value).map_err(|reason| ConfigError {
                key: def.broker_synonym.into(),
                value: value.clone(),
                reason,
            })?;
        }
        Ok(config)
    }

    /// Replaces the dynamic layer (called whenever the metadata image changes).
    pub fn set_dynamic(&self, dynamic: DynamicBrokerConfigs) {
        *self.dynamic.write() = Arc::new(dynamic);
    }

    /// The dynamic layer in force.
    pub fn dynamic(&self) -> Arc<DynamicBrokerConfigs> {
        self.dynamic.read().clone()
    }

    /// Every broker key with its effective value and source, sorted by key.
    pub fn entries(&self) -> Vec<(String, String, ConfigSource)> {
        let dynamic = self.dynamic();
        let mut out: BTreeMap<String, (String, ConfigSource)> = self.values.clone();
        for (k, v) in &dynamic.cluster {
            out.insert(k.clone(), (v.clone(), ConfigSource::DynamicDefaultBroker));
        }
        for (k, v) in &dynamic.node {
            out.insert(k.clone(), (v.clone(), ConfigSource::DynamicBroker));
        }
        out.into_iter().map(|(k, (v, s))| (k, v, s)).collect()
    }

    /// The value of a broker key, if it is set or has a default.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.values.get(key).map(|(v, _)| v.as_str())
    }

    /// The broker-level value a topic config defaults to, and its source: a dynamic value of
    /// its broker synonym (this broker's, then the cluster default), else the static one.
    pub fn topic_default(&self, def: &TopicConfigDef) -> (String, ConfigSource) {
        let dynamic = self.dynamic();
        if let Some(v) = dynamic.node.get(def.broker_synonym) {
            return (v.clone(), ConfigSource::DynamicBroker);
        }
        if let Some(v) = dynamic.cluster.get(def.broker_synonym) {
            return (v.clone(), ConfigSource::DynamicDefaultBroker);
        }
        let from_key = |key: &str| {
            self.values
                .get(key)
                .filter(|(_, s)| *s != ConfigSource::Default)
                .cloned()
        };
        let derived = match def.name {
            // Kafka's precedence: *.ms, then *.minutes, then *.hours.
            "retention.ms" => from_key("log.retention.ms")
                .or_else(|| scaled(from_key("log.retention.minutes"), 60_000))
                .or_else(|| scaled(from_key("log.retention.hours"), 3_600_000)),
            "segment.ms" => {
                from_key("log.roll.ms").or_else(|| scaled(from_key("log.roll.hours"), 3_600_000))
            }
            _ => from_key(def.broker_synonym),
        };
        derived.unwrap_or_else(|| (def.default.to_owned(), ConfigSource::Default))
    }

    /// The effective value of every topic config for a topic with `overrides`.
    pub fn topic_config_values(
        &self,
        overrides: &BTreeMap<String, String>,
    ) -> Vec<(&'static TopicConfigDef, String, ConfigSource)> {
        topic_config::TOPIC_CONFIGS
            .iter()
            .map(|def| match overrides.get(def.name) {
                Some(v) => (def, v.clone(), ConfigSource::DynamicTopic),
                None => {
                    let (v, s) = self.topic_default(def);
                    (def, v, s)
                }
            })
            .collect()
    }

    /// The effective value of one topic config for a topic with `overrides`.
    pub fn topic_config_value(&self, overrides: &BTreeMap<String, String>, name: &str) -> String {
        if let Some(v) = overrides.get(name) {
            return v.clone();
        }
        topic_config::lookup(name).map_or_else(String::new, |def| self.topic_default(def).0)
    }

    /// The log settings of a topic with `overrides` (values were validated on the way in).
    pub fn log_config(&self, overrides: &BTreeMap<String, String>) -> LogConfig {
        let values = self.topic_config_values(overrides);
        let get = |name: &str| {
            values
                .iter()
                .find(|(d, _, _)| d.name == name)
                .map(|(_, v, _)| v.trim().to_owned())
                .unwrap_or_default()
        };
        let defaults = LogConfig::default();
        LogConfig {
            segment_bytes: get("segment.bytes")
                .parse()
                .unwrap_or(defaults.segment_bytes),
            segment_ms: get("segment.ms").parse().unwrap_or(defaults.segment_ms),
            segment_index_bytes: get("segment.index.bytes")
                .parse()
                .unwrap_or(defaults.segment_index_bytes),
            index_interval_bytes: get("index.interval.bytes")
                .parse()
                .unwrap_or(defaults.index_interval_bytes),
            retention_ms: get("retention.ms").parse().unwrap_or(defaults.retention_ms),
            retention_bytes: get("retention.bytes")
                .parse()
                .unwrap_or(defaults.retention_bytes),
            max_message_bytes: get("max.message.bytes")
                .parse()
                .unwrap_or(defaults.max_message_bytes),
            timestamp_type: if get("message.timestamp.type").eq_ignore_ascii_case("LogAppendTime") {
                TimestampType::LogAppendTime
            } else {
                TimestampType::CreateTime
            },
            compact: get("cleanup.policy")
                .split(',')
                .any(|p| p.trim() == "compact"),
            delete_retention_ms: get("delete.retention.ms")
                .parse()
                .unwrap_or(defaults.delete_retention_ms),
            min_compaction_lag_ms: get("min.compaction.lag.ms")
                .parse()
                .unwrap_or(defaults.min_compaction_lag_ms),
            max_compaction_lag_ms: get("max.compaction.lag.ms")
                .parse()
                .unwrap_or(defaults.max_compaction_lag_ms),
            min_cleanable_dirty_ratio: get("min.cleanable.dirty.ratio")
                .parse()
                .unwrap_or(defaults.min_cleanable_dirty_ratio),
        }
    }

    /// The node ids of `controller.quorum.voters` when they make a cluster (a voter other
    /// than this node); `None` for a single node, whose metadata log is its own. An entry
    /// whose id does not parse counts as id -1 (so this check refuses it); the addresses are
    /// parsed and resolved where the Raft quorum starts (`oxka_raft::parse_voters`).
    pub fn cluster_voters(&self) -> Option<Vec<i32>> {
        let ids: Vec<i32> = self
            .get("controller.quorum.voters")
            .unwrap_or_default()
            .split(',')
            .map(str::trim)
            .filter(|v| !v.is_empty())
            .map(|v| {
                v.split_once('@')
                    .and_then(|(id, _)| id.trim().parse().ok())
                    .unwrap_or(-1)
            })
            .collect();
        ids.iter().any(|id| *id != self.node_id).then_some(ids)
    }

    /// The first listener named in `controller.listener.names`: in a cluster, where this
    /// node's Raft peers reach it.
    pub fn controller_listener(&self) -> Option<&Listener> {
        let names = self.controller_listener_names();
        self.listeners
            .iter()
            .find(|l| names.first() == Some(&l.name.as_str()))
    }

    /// The listener names of `controller.listener.names`.
    pub fn controller_listener_names(&self) -> Vec<&str> {
        self.get("controller.listener.names")
            .unwrap_or_default()
            .split(',')
            .map(str::trim)
            .filter(|n| !n.is_empty())
            .collect()
    }

    /// The advertised listener with the same name as the listener a client connected to.
    pub fn advertised_for(&self, listener_name: &str) -> Option<&Listener> {
        self.advertised_listeners
            .iter()
            .find(|l| l.name == listener_name)
            .or_else(|| self.advertised_listeners.first())
    }
}

/// Keys about replication between brokers. On one node there is nothing for them to act on,
/// so setting one is warned about (it is not an error: many single-node files carry them); in
/// a cluster those in [`REPLICATION_HONOURED_KEYS`] take effect and the others are warned
/// about as not honoured yet.
pub const REPLICATION_ONLY_KEYS: &[&str] = &[
    "auto.leader.rebalance.enable",
    "broker.rack",
    "leader.imbalance.check.interval.seconds",
    "leader.imbalance.per.broker.percentage",
    "num.replica.alter.log.dirs.threads",
    "num.replica.fetchers",
    "replica.fetch.max.bytes",
    "replica.fetch.min.bytes",
    "replica.fetch.wait.max.ms",
    "replica.high.watermark.checkpoint.interval.ms",
    "replica.lag.time.max.ms",
    "replica.selector.class",
    "replica.socket.receive.buffer.bytes",
    "replica.socket.timeout.ms",
    "zookeeper.connect",
];

/// The replication keys a cluster's replica fetchers and leaders honour.
pub const REPLICATION_HONOURED_KEYS: &[&str] = &[
    "replica.fetch.max.bytes",
    "replica.fetch.min.bytes",
    "replica.fetch.wait.max.ms",
    "replica.high.watermark.checkpoint.interval.ms",
    "replica.lag.time.max.ms",
    "replica.socket.timeout.ms",
];

/// Refuses configurations Oxka cannot serve as asked. A cluster is every node a combined
/// broker and controller listed in `controller.quorum.voters` (the metadata quorum runs on
/// Raft); partitions have one replica until replication is built, which the controller
/// enforces. Keys refused (each with its own message):
/// - `process.roles` other than `broker,controller` (a broker-only node needs a controller
///   quorum it is not part of, a controller-only node serves no clients: not built yet);
/// - `controller.quorum.voters` naming other voters but not this `node.id`, or with a
///   cluster but no listener named in `controller.listener.names` for the Raft traffic;
/// - `controller.quorum.bootstrap.servers` with more than one server (KIP-853's dynamic
///   quorum is not built);
/// - `remote.log.storage.system.enable=true` (tiered storage is not built).
fn check_roles_and_quorum(config: &BrokerConfig) -> Result<(), ConfigError> {
    let refuse = |key: &str, reason: String| ConfigError {
        key: key.into(),
        value: config.get(key).unwrap_or_default().to_owned(),
        reason,
    };
    const NOT_BUILT: &str = "Oxka runs every node as a combined broker and controller \
        (a voter of controller.quorum.voters)";
    let roles: std::collections::BTreeSet<&str> = config
        .get("process.roles")
        .unwrap_or_default()
        .split(',')
        .map(str::trim)
        .filter(|r| !r.is_empty())
        .collect();
    if roles != ["broker", "controller"].into_iter().collect() {
        return Err(refuse(
            "process.roles",
            format!("only process.roles=broker,controller is supported: {NOT_BUILT}"),
        ));
    }
    if let Some(voters) = config.cluster_voters() {
        if !voters.contains(&config.node_id) {
            return Err(refuse(
                "controller.quorum.voters",
                format!(
                    "does not name this node (node.id={}): {NOT_BUILT}",
                    config.node_id
                ),
            ));
        }
        if config.controller_listener().is_none() {
            return Err(refuse(
                "controller.listener.names",
                "controller.listener.names must contain at least one value appearing in the \
                 'listeners' configuration when running the KRaft controller role"
                    .into(),
            ));
        }
    }
    let bootstrap = config
        .get("controller.quorum.bootstrap.servers")
        .unwrap_or_default();
    if bootstrap
        .split(',')
        .filter(|s| !s.trim().is_empty())
        .count()
        > 1
    {
        return Err(refuse(
            "controller.quorum.bootstrap.servers",
            "lists more than one controller: the dynamic quorum (KIP-853) is not built; \
             list the voters in controller.quorum.voters instead"
                .into(),
        ));
    }
    if config
        .get("remote.log.storage.system.enable")
        .is_some_and(|v| v.trim().eq_ignore_ascii_case("true"))
    {
        return Err(refuse(
            "remote.log.storage.system.enable",
            "tiered storage is not supported by Oxka yet".into(),
        ));
    }
    Ok(())
}

impl BrokerConfig {
    /// Settings that are accepted but cannot have their effect on a single node, one message
    /// each (the binary logs them as warnings at start-up).
    pub fn single_node_warnings(&self) -> Vec<String> {
        let mut out = Vec::new();
        let set = |key: &str| {
            self.values
                .get(key)
                .filter(|(_, s)| *s != ConfigSource::Default)
                .map(|(v, _)| v.trim())
        };
        let clustered = self.cluster_voters().is_some();
        let why = if clustered {
            "Oxka's replication does not honour it yet"
        } else {
            "this node is a cluster of one and has no replicas"
        };
        for key in REPLICATION_ONLY_KEYS {
            if clustered && REPLICATION_HONOURED_KEYS.contains(key) {
                continue;
            }
            if let Some(v) = set(key) {
                out.push(format!("{key}={v} has no effect: {why}"));
            }
        }
        if let Some(v) = set("unclean.leader.election.enable") {
            if v.eq_ignore_ascii_case("true") {
                out.push(format!(
                    "unclean.leader.election.enable=true has no effect: {why}"
                ));
            }
        }
        if clustered {
            return out;
        }
        let number = |key: &str| set(key).and_then(|v| v.parse::<i64>().ok());
        if let Some(n) = number("min.insync.replicas").filter(|n| *n > 1) {
            out.push(format!(
                "min.insync.replicas={n} cannot be met by one replica: produce with acks=all \
                 answers NOT_ENOUGH_REPLICAS (acks=0 and acks=1 still succeed), as Kafka does"
            ));
        }
        if let Some(n) = number("default.replication.factor").filter(|n| *n > 1) {
            out.push(format!(
                "default.replication.factor={n} cannot be met ({why}): topics created with \
                 the default replication factor (auto-created ones too) fail with \
                 INVALID_REPLICATION_FACTOR"
            ));
        }
        out
    }
}

/// Whether `key` is the broker-level synonym of a topic config.
pub fn is_topic_synonym(key: &str) -> bool {
    topic_config::TOPIC_CONFIGS
        .iter()
        .any(|d| d.broker_synonym == key)
}

fn scaled(value: Option<(String, ConfigSource)>, factor: i64) -> Option<(String, ConfigSource)> {
    let (v, s) = value?;
    let n: i64 = v.trim().parse().ok()?;
    Some(((n.saturating_mul(factor)).to_string(), s))
}

fn parse<T: std::str::FromStr>(value: &str, key: &str) -> Result<T, ConfigError>
where
    T::Err: std::fmt::Display,
{
    value.trim().parse().map_err(|e: T::Err| ConfigError {
        key: key.into(),
        value: value.into(),
        reason: e.to_string(),
    })
}

/// Parses `NAME://host:port[,NAME://host:port...]`; an empty host means all interfaces.
pub fn parse_listeners(key: &str, value: &str) -> Result<Vec<Listener>, ConfigError> {
    let fail = |reason: &str| ConfigError {
        key: key.into(),
        value: value.into(),
        reason: reason.into(),
    };
    let mut out = Vec::new();
    for item in value.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        let (name, rest) = item
            .split_once("://")
            .ok_or_else(|| fail("expected NAME://host:port"))?;
        let (host, port) = rest
            .rsplit_once(':')
            .ok_or_else(|| fail("expected NAME://host:port"))?;
        let host = host.trim_start_matches('[').trim_end_matches(']');
        let port = port.parse().map_err(|_| fail("port is not a number"))?;
        out.push(Listener {
            name: name.to_owned(),
            host: host.to_owned(),
            port,
        });
    }
    if out.is_empty() {
        return Err(fail("at least one listener is required"));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn props(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn defaults_make_a_laptop_broker() {
        let c = BrokerConfig::from_properties(&BTreeMap::new()).unwrap();
        assert_eq!(c.listeners[0].port, 9092);
        assert_eq!(c.advertised_listeners[0].host, "localhost");
        assert_eq!(c.log_dirs, vec![PathBuf::from("./data")]);
        let retention = topic_config::lookup("retention.ms").unwrap();
        assert_eq!(
            c.topic_default(retention),
            ("604800000".into(), ConfigSource::Default)
        );
    }

    #[test]
    fn retention_hours_and_ms_follow_kafka_precedence() {
        let retention = topic_config::lookup("retention.ms").unwrap();
        let c = BrokerConfig::from_properties(&props(&[("log.retention.hours", "1")])).unwrap();
        assert_eq!(c.topic_default(retention).0, "3600000");
        let c = BrokerConfig::from_properties(&props(&[
            ("log.retention.hours", "1"),
            ("log.retention.ms", "5"),
        ]))
        .unwrap();
        assert_eq!(
            c.topic_default(retention),
            ("5".into(), ConfigSource::StaticBroker)
        );
    }

    #[test]
    fn cluster_configurations_need_this_node_as_a_voter_and_a_controller_listener() {
        let refused = |pairs: &[(&str, &str)]| {
            BrokerConfig::from_properties(&props(pairs))
                .err()
                .map(|e| e.key)
        };
        let voters = "controller.quorum.voters";
        assert_eq!(
            refused(&[(voters, "2@a:9093,3@b:9093")]),
            Some(voters.into()),
            "a cluster this node is not a voter of"
        );
        assert_eq!(
            refused(&[(voters, "1@a:9093,2@b:9093")]),
            Some("controller.listener.names".into()),
            "a cluster without a controller listener"
        );
        let cluster = [
            (voters, "1@127.0.0.1:19093,2@127.0.0.1:19094"),
            (
                "listeners",
                "PLAINTEXT://127.0.0.1:9092,CONTROLLER://127.0.0.1:19093",
            ),
        ];
        assert_eq!(refused(&cluster), None);
        let c = BrokerConfig::from_properties(&props(&cluster)).unwrap();
        assert_eq!(c.cluster_voters().unwrap().len(), 2);
        assert_eq!(c.controller_listener().unwrap().port, 19093);
        assert_eq!(refused(&[(voters, "1@a:9093")]), None);
        assert_eq!(
            refused(&[(voters, "3@a:9093"), ("node.id", "3")]),
            None,
            "the one voter is this node"
        );
        assert_eq!(
            refused(&[("process.roles", "broker")]),
            Some("process.roles".into())
        );
        assert_eq!(refused(&[("process.roles", "controller, broker")]), None);
        let bootstrap = "controller.quorum.bootstrap.servers";
        assert_eq!(
            refused(&[(bootstrap, "a:9093,b:9093")]),
            Some(bootstrap.into())
        );
        assert_eq!(refused(&[(bootstrap, "localhost:9093")]), None);
    }

    #[test]
    fn keys_without_effect_on_one_node_warn() {
        let c = BrokerConfig::from_properties(&BTreeMap::new()).unwrap();
        assert!(c.single_node_warnings().is_empty());
        let c = BrokerConfig::from_properties(&props(&[
            ("min.insync.replicas", "2"),
            ("zookeeper.connect", "zk:2181"),
        ]))
        .unwrap();
        let w = c.single_node_warnings();
        assert_eq!(w.len(), 2, "{w:?}");
        assert!(w.iter().any(|m| m.contains("NOT_ENOUGH_REPLICAS")));
    }

    #[test]
    fn listeners_parse_and_bad_ones_fail() {
        let l = parse_listeners("listeners", "PLAINTEXT://:9092,SSL://[::1]:9093").unwrap();
        assert_eq!(l[0].host, "");
        assert_eq!(l[1].host, "::1");
        assert!(parse_listeners("listeners", "localhost:9092").is_err());
        assert!(BrokerConfig::from_properties(&props(&[("log.segment.bytes", "x")])).is_err());
    }
}
