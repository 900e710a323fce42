//! Loading the broker configuration the way Kafka deployments provide it, in order of
//! precedence: `--override key=value` flags, `KAFKA_*` environment variables (apache/kafka image
//! dialect: `_`→`.`, `__`→`_`, `___`→`-`), `KAFKA_CFG_*` (Bitnami dialect: `_`→`.`), a
//! `server.properties` file, then built-in defaults. Unknown keys are accepted with a warning.

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::{bail, Context};
use oxka_broker::config::BROKER_DEFAULTS;
use oxka_broker::BrokerConfig;

/// Environment variables with the `KAFKA_` prefix that are about the JVM or the image, not
/// broker configuration.
const NOT_CONFIG_ENV: &[&str] = &[
    "KAFKA_HEAP_OPTS",
    "KAFKA_OPTS",
    "KAFKA_JVM_PERFORMANCE_OPTS",
    "KAFKA_LOG4J_OPTS",
    "KAFKA_LOG4J_ROOT_LOGLEVEL",
    "KAFKA_LOG4J_LOGGERS",
    "KAFKA_TOOLS_LOG4J_LOGLEVEL",
    "KAFKA_GC_LOG_OPTS",
    "KAFKA_JMX_OPTS",
    "KAFKA_JMX_PORT",
    "KAFKA_JMX_HOSTNAME",
    "KAFKA_DEBUG",
    "KAFKA_VERSION",
    "KAFKA_HOME",
    "KAFKA_BIN",
    "KAFKA_CONF_DIR",
    "KAFKA_CONF_FILE",
    "KAFKA_MOUNTED_CONF_DIR",
    "KAFKA_VOLUME_DIR",
    "KAFKA_DATA_DIR",
    "KAFKA_LOG_DIR",
    "KAFKA_ENABLE_KRAFT",
    "KAFKA_KRAFT_CLUSTER_ID",
];

/// Kafka keys Oxka accepts without acting on them (JVM, ZooKeeper-era, network tuning), so that
/// existing server.properties files start without noise.
const ACCEPTED_KEYS: &[&str] = &[
    "controller.quorum.voters",
    "controller.quorum.bootstrap.servers",
    "group.coordinator.rebalance.protocols",
    "log.flush.scheduler.interval.ms",
    "log.retention.minutes",
    "log.retention.ms",
    "log.roll.ms",
    "log.dir",
    "num.recovery.threads.per.data.dir",
    "offsets.retention.minutes",
    "queued.max.requests",
    "share.coordinator.state.topic.replication.factor",
    "share.coordinator.state.topic.min.isr",
    "socket.receive.buffer.bytes",
    "socket.send.buffer.bytes",
    "cluster.id",
    "zookeeper.connection.timeout.ms",
];

/// Which layer a key came from (for the start-up log and `--print-config`).
#[derive(Debug, Default)]
pub(crate) struct Layers {
    pub(crate) file: BTreeMap<String, String>,
    pub(crate) bitnami_env: BTreeMap<String, String>,
    pub(crate) kafka_env: BTreeMap<String, String>,
    pub(crate) overrides: BTreeMap<String, String>,
    /// For every key set in a layer, where the winning value came from: `flag --override`,
    /// `env KAFKA_LOG_DIRS`, `env KAFKA_CFG_LOG_DIRS`, `file server.properties`.
    pub(crate) origins: BTreeMap<String, String>,
}

impl Layers {
    /// All layers merged, highest precedence last.
    pub(crate) fn merged(&self) -> BTreeMap<String, String> {
        let mut out = self.file.clone();
        out.extend(self.bitnami_env.clone());
        out.extend(self.kafka_env.clone());
        out.extend(self.overrides.clone());
        out
    }
}

/// Reads every layer from a properties file (optional), the environment and `--override`s.
pub(crate) fn load(
    file: Option<&Path>,
    env: impl IntoIterator<Item = (String, String)>,
    overrides: &[String],
) -> anyhow::Result<(BrokerConfig, Layers)> {
    let mut layers = Layers::default();
    if let Some(path) = file {
        let text =
            std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
        layers.file = parse_properties(&text);
        for key in layers.file.keys() {
            layers
                .origins
                .insert(key.clone(), format!("file {}", path.display()));
        }
    }
    // Environment layers are filled first and their origins recorded afterwards, so that a
    // KAFKA_* variable beats a KAFKA_CFG_* one whatever order the environment lists them in.
    let mut bitnami_origins = BTreeMap::new();
    let mut kafka_origins = BTreeMap::new();
    for (name, value) in env {
        if let Some(rest) = name.strip_prefix("KAFKA_CFG_") {
            let key = bitnami_key(rest);
            bitnami_origins.insert(key.clone(), format!("env {name}"));
            layers.bitnami_env.insert(key, value);
        } else if name == "CLUSTER_ID" {
            kafka_origins.insert("cluster.id".to_owned(), format!("env {name}"));
            layers.kafka_env.insert("cluster.id".into(), value);
        } else if name.starts_with("KAFKA_") && !NOT_CONFIG_ENV.contains(&name.as_str()) {
            let key = apache_key(&name["KAFKA_".len()..]);
            kafka_origins.insert(key.clone(), format!("env {name}"));
            layers.kafka_env.insert(key, value);
        }
    }
    layers.origins.extend(bitnami_origins);
    layers.origins.extend(kafka_origins);
    for item in overrides {
        let Some((k, v)) = item.split_once('=') else {
            bail!("--override expects key=value, got {item:?}");
        };
        let key = k.trim().to_owned();
        layers
            .origins
            .insert(key.clone(), "flag --override".to_owned());
        layers.overrides.insert(key, v.to_owned());
    }
    let merged = layers.merged();
    for key in merged.keys() {
        if !is_known(key) {
            tracing::warn!(key = %key, "The configuration '{key}' was supplied but isn't a known config.");
        }
    }
    let config = BrokerConfig::from_properties(&merged)?;
    for warning in config.single_node_warnings() {
        tracing::warn!("{warning}");
    }
    Ok((config, layers))
}

/// `--print-config`: every effective key, its value and where it came from, one per line as
/// `key=value  # source`, sorted by key. Values of password keys are hidden, as Kafka does.
pub(crate) fn render_effective(config: &BrokerConfig, layers: &Layers) -> String {
    let mut out = String::new();
    for (key, value, _) in config.entries() {
        let origin = layers.origins.get(&key).map_or("default", String::as_str);
        let value = if key.contains("password") && !value.is_empty() {
            "[hidden]".to_owned()
        } else {
            value
        };
        out.push_str(&format!("{key}={value}  # {origin}\n"));
    }
    out
}

fn is_known(key: &str) -> bool {
    BROKER_DEFAULTS.iter().any(|(k, _)| *k == key)
        || ACCEPTED_KEYS.contains(&key)
        || oxka_broker::config::REPLICATION_ONLY_KEYS.contains(&key)
        || oxka_broker::config::is_topic_synonym(key)
        || key.starts_with("listener.name.")
        || key.starts_with("log4j.")
        || crate::security::is_security_key(key)
}

/// apache/kafka image dialect: `KAFKA_LOG_DIRS` → `log.dirs`; `__` → `_`; `___` → `-`.
fn apache_key(rest: &str) -> String {
    rest.to_ascii_lowercase()
        .replace("___", "\u{1}")
        .replace("__", "\u{2}")
        .replace('_', ".")
        .replace('\u{1}', "-")
        .replace('\u{2}', "_")
}

/// Bitnami dialect: `KAFKA_CFG_LOG_DIRS` → `log.dirs`.
fn bitnami_key(rest: &str) -> String {
    rest.to_ascii_lowercase().replace('_', ".")
}

/// Parses Java `.properties` text: `#`/`!` comments, `=`, `:` or whitespace separators,
/// trailing-`\` continuations and the usual escapes.
pub(crate) fn parse_properties(text: &str) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    let mut logical = String::new();
    let mut lines = text.lines();
    while let Some(line) = lines.next() {
        let trimmed = line.trim_start();
        if logical.is_empty()
            && (trimmed.is_empty() || trimmed.starts_with('#') || trimmed.starts_with('!'))
        {
            continue;
        }
        logical.push_str(trimmed);
        if ends_with_continuation(&logical) {
            logical.pop();
            if lines.clone().next().is_some() {
                continue;
            }
        }
        let (key, value) = split_key_value(&logical);
        out.insert(unescape(key), unescape(value));
        logical.clear();
    }
    out
}

fn ends_with_continuation(s: &str) -> bool {
    s.chars().rev().take_while(|&c| c == '\\').count() % 2 == 1
}

fn split_key_value(line: &str) -> (&str, &str) {
    let mut escaped = false;
    for (i, c) in line.char_indices() {
        if escaped {
            escaped = false;
            continue;
        }
        match c {
            '\\' => escaped = true,
            '=' | ':' | ' ' | '\t' => {
                let key = &line[..i];
                let mut rest = line[i..].trim_start_matches([' ', '\t']);
                if c.is_whitespace() || rest.starts_with(['=', ':']) {
                    rest = rest.strip_prefix(['=', ':']).unwrap_or(rest);
                } else {
                    rest = &line[i + 1..];
                }
                return (key, rest.trim_start_matches([' ', '\t']));
            }
            _ => {}
        }
    }
    (line, "")
}

fn unescape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('n') => out.push('\n'),
            Some('t') => out.push('\t'),
            Some('r') => out.push('\r'),
            Some('f') => out.push('\u{c}'),
            Some('u') => {
                let hex: String = chars.by_ref().take(4).collect();
                if let Some(ch) = u32::from_str_radix(&hex, 16).ok().and_then(char::from_u32) {
                    out.push(ch);
                }
            }
            Some(other) => out.push(other),
            None => {}
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn properties_with_comments_continuations_and_separators() {
        let text = "# comment\n! also\nlisteners=PLAINTEXT://:1\\\n   ,SSL://:2\nlog.dirs : /a\nnum.partitions 3\nkey\\=x=y\nempty=\n";
        let p = parse_properties(text);
        assert_eq!(p["listeners"], "PLAINTEXT://:1,SSL://:2");
        assert_eq!(p["log.dirs"], "/a");
        assert_eq!(p["num.partitions"], "3");
        assert_eq!(p["key=x"], "y");
        assert_eq!(p["empty"], "");
        assert_eq!(p.len(), 5);
    }

    #[test]
    fn env_dialects_map_to_kafka_keys() {
        assert_eq!(apache_key("LOG_DIRS"), "log.dirs");
        assert_eq!(
            apache_key("LISTENER_SECURITY_PROTOCOL_MAP"),
            "listener.security.protocol.map"
        );
        assert_eq!(
            apache_key("SOME__UNDERSCORE___DASH"),
            "some_underscore-dash"
        );
        assert_eq!(
            bitnami_key("AUTO_CREATE_TOPICS_ENABLE"),
            "auto.create.topics.enable"
        );
    }

    #[test]
    fn precedence_is_flags_then_env_then_bitnami_then_file() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("server.properties");
        std::fs::write(
            &file,
            "num.partitions=1\nlog.dirs=/from-file\ndefault.replication.factor=1\n",
        )
        .unwrap();
        let env = vec![
            ("KAFKA_CFG_NUM_PARTITIONS".to_string(), "2".to_string()),
            ("KAFKA_NUM_PARTITIONS".to_string(), "3".to_string()),
            ("KAFKA_HEAP_OPTS".to_string(), "-Xmx1G".to_string()),
            (
                "KAFKA_CFG_LOG_DIRS".to_string(),
                "/from-bitnami".to_string(),
            ),
        ];
        let (config, layers) = load(Some(&file), env, &["num.partitions=4".into()]).unwrap();
        assert_eq!(config.num_partitions, 4);
        assert_eq!(
            config.log_dirs,
            vec![std::path::PathBuf::from("/from-bitnami")]
        );
        assert!(!layers.kafka_env.contains_key("heap.opts"));
    }
}
