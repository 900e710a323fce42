//! Kafka's dynamically alterable broker keys that are not topic-config synonyms, and Kafka's
//! checks on a dynamic broker config change (DynamicBrokerConfig.validateConfigs and the
//! reconfigurables' validation in Kafka 4.x).
//!
//! Kafka lets AlterConfigs / IncrementalAlterConfigs set these keys on a BROKER resource. Oxka
//! has no use for them (it serves no Kerberos login and has no per-purpose thread pools), so it
//! accepts and stores them as Kafka does, reports them in DescribeConfigs with their dynamic
//! source, and the broker logs a warning with [`DynamicBrokerKey::no_effect`] on every change.
//!
//! Invariants: every key here is in Kafka's `DynamicBrokerConfig.AllDynamicConfigs`;
//! `per_broker` is true exactly for the keys in Kafka's `PerBrokerConfigs` (those cannot be set
//! on the cluster default resource ""); every `default` passes its own `kind`.

use std::collections::BTreeMap;

use crate::topic_config;

/// The ConfigDef type of a key, as far as validation needs it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum KeyKind {
    /// INT; `min` is the validator's lower bound.
    Int { min: i64 },
    /// SHORT.
    Short,
    /// LONG.
    Long,
    /// DOUBLE.
    Double,
    /// STRING: anything.
    Str,
    /// LIST of strings: anything.
    List,
}

/// One dynamic broker key that Oxka stores but does not act on.
#[derive(Debug, Clone, Copy)]
pub struct DynamicBrokerKey {
    pub name: &'static str,
    pub kind: KeyKind,
    /// Kafka's default, as DescribeConfigs shows it ("" for null).
    pub default: &'static str,
    /// Settable only per broker (Kafka's PerBrokerConfigs), not on the cluster default.
    pub per_broker: bool,
    /// Why setting it changes nothing in Oxka (logged on every change).
    pub no_effect: &'static str,
    /// One of Kafka's DynamicThreadPool keys: a new value must lie within half and double the
    /// current one.
    pub thread_pool: bool,
}

const KERBEROS: &str = "Oxka serves no SASL/GSSAPI (Kerberos), so no Kerberos login uses it";
const LOGIN_REFRESH: &str =
    "Oxka runs no broker-side SASL login (Kerberos/OAUTHBEARER) whose credentials it refreshes";
const THREADS: &str = "Oxka runs this work on its async runtime and has no such thread pool";
const FETCHERS: &str = "Oxka is a single node: it has no replicas to fetch";

const fn key(
    name: &'static str,
    kind: KeyKind,
    default: &'static str,
    per_broker: bool,
    no_effect: &'static str,
) -> DynamicBrokerKey {
    DynamicBrokerKey {
        name,
        kind,
        default,
        per_broker,
        no_effect,
        thread_pool: false,
    }
}

const fn pool(
    name: &'static str,
    default: &'static str,
    no_effect: &'static str,
) -> DynamicBrokerKey {
    DynamicBrokerKey {
        name,
        kind: KeyKind::Int { min: 1 },
        default,
        per_broker: false,
        no_effect,
        thread_pool: true,
    }
}

/// The keys, sorted by name. From Kafka's DynamicListenerConfig.ReconfigurableConfigs (the SASL
/// Kerberos and login-refresh keys, all per broker) and DynamicThreadPool.RECONFIGURABLE_CONFIGS
/// (cluster-wide allowed).
pub const KEYS: &[DynamicBrokerKey] = &[
    pool("background.threads", "10", THREADS),
    pool("num.io.threads", "8", THREADS),
    pool("num.recovery.threads.per.data.dir", "2", THREADS),
    pool("num.replica.fetchers", "1", FETCHERS),
    key(
        "sasl.kerberos.kinit.cmd",
        KeyKind::Str,
        "/usr/bin/kinit",
        true,
        KERBEROS,
    ),
    key(
        "sasl.kerberos.min.time.before.relogin",
        KeyKind::Long,
        "60000",
        true,
        KERBEROS,
    ),
    key(
        "sasl.kerberos.principal.to.local.rules",
        KeyKind::List,
        "DEFAULT",
        true,
        KERBEROS,
    ),
    key(
        "sasl.kerberos.service.name",
        KeyKind::Str,
        "",
        true,
        KERBEROS,
    ),
    key(
        "sasl.kerberos.ticket.renew.jitter",
        KeyKind::Double,
        "0.05",
        true,
        KERBEROS,
    ),
    key(
        "sasl.kerberos.ticket.renew.window.factor",
        KeyKind::Double,
        "0.8",
        true,
        KERBEROS,
    ),
    key(
        "sasl.login.refresh.buffer.seconds",
        KeyKind::Short,
        "300",
        true,
        LOGIN_REFRESH,
    ),
    key(
        "sasl.login.refresh.min.period.seconds",
        KeyKind::Short,
        "60",
        true,
        LOGIN_REFRESH,
    ),
    key(
        "sasl.login.refresh.window.factor",
        KeyKind::Double,
        "0.8",
        true,
        LOGIN_REFRESH,
    ),
    key(
        "sasl.login.refresh.window.jitter",
        KeyKind::Double,
        "0.05",
        true,
        LOGIN_REFRESH,
    ),
];

/// The stored-but-unused dynamic key `name`, if it is one.
pub fn lookup(name: &str) -> Option<&'static DynamicBrokerKey> {
    KEYS.iter().find(|k| k.name == name)
}

/// Whether Kafka lets `name` be set on a BROKER resource at run time (a topic-config synonym
/// Oxka applies, or one of [`KEYS`]).
pub fn is_dynamic(name: &str) -> bool {
    topic_config::by_broker_synonym(name).is_some() || lookup(name).is_some()
}

/// Kafka's ConfigDef parse check of `value` for `key` (ConfigException's message).
pub fn validate_value(key: &DynamicBrokerKey, value: &str) -> Result<(), String> {
    let v = value.trim();
    let name = key.name;
    let bad = |why: &str| Err(format!("Invalid value {v} for configuration {name}: {why}"));
    match key.kind {
        KeyKind::Int { min } => match v.parse::<i32>() {
            Err(_) => bad("Not a number of type INT"),
            Ok(n) if i64::from(n) < min => bad(&format!("Value must be at least {min}")),
            Ok(_) => Ok(()),
        },
        KeyKind::Short => v
            .parse::<i16>()
            .map(|_| ())
            .or_else(|_| bad("Not a number of type SHORT")),
        KeyKind::Long => v
            .parse::<i64>()
            .map(|_| ())
            .or_else(|_| bad("Not a number of type LONG")),
        KeyKind::Double => v
            .parse::<f64>()
            .map(|_| ())
            .or_else(|_| bad("Not a number of type DOUBLE")),
        KeyKind::Str | KeyKind::List => Ok(()),
    }
}

/// Scala's rendering of a set of names in Kafka's messages: `Set(a, b)`.
fn scala_set(names: &[&str]) -> String {
    format!("Set({})", names.join(", "))
}

/// Kafka's checks on the new dynamic settings `configs` of one BROKER resource
/// (`per_broker`: the resource names a broker, not the cluster default ""), in Kafka's order:
/// keys that are not dynamic, value types, per-broker keys on the cluster default, then the
/// thread-pool bounds against `current` (a key's value in force). Kafka answers every one of
/// these with INVALID_REQUEST and the message returned here. Topic-config synonyms' values are
/// checked by the controller.
pub fn validate(
    configs: &BTreeMap<String, String>,
    per_broker: bool,
    current: &dyn Fn(&DynamicBrokerKey) -> i64,
) -> Result<(), String> {
    let fixed: Vec<&str> = configs
        .keys()
        .filter(|k| !is_dynamic(k))
        .map(String::as_str)
        .collect();
    if !fixed.is_empty() {
        return Err(format!(
            "Cannot update these configs dynamically: {}",
            scala_set(&fixed)
        ));
    }
    for (name, value) in configs {
        if let Some(key) = lookup(name) {
            validate_value(key, value)?;
        }
    }
    if !per_broker {
        let only_per_broker: Vec<&str> = configs
            .keys()
            .filter(|k| lookup(k).is_some_and(|key| key.per_broker))
            .map(String::as_str)
            .collect();
        if !only_per_broker.is_empty() {
            return Err(format!(
                "Cannot update these configs at default cluster level, broker id must be specified: {}",
                scala_set(&only_per_broker)
            ));
        }
    }
    for (name, value) in configs {
        let Some(key) = lookup(name).filter(|k| k.thread_pool) else {
            continue;
        };
        let new: i64 = value.trim().parse().unwrap_or(0);
        let old = current(key);
        if new == old {
            continue;
        }
        let msg = format!("Dynamic thread count update validation failed for {name}={new}");
        if new <= 0 {
            return Err(format!("{msg}, value should be at least 1"));
        }
        if new < old / 2 {
            return Err(format!(
                "{msg}, value should be at least half the current value {old}"
            ));
        }
        if new > old * 2 {
            return Err(format!(
                "{msg}, value should not be greater than double the current value {old}"
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn defaults(key: &DynamicBrokerKey) -> i64 {
        key.default.parse().unwrap()
    }

    #[test]
    fn table_is_sorted_and_defaults_are_valid() {
        for pair in KEYS.windows(2) {
            assert!(pair[0].name < pair[1].name);
        }
        for key in KEYS {
            assert!(validate_value(key, key.default).is_ok(), "{}", key.name);
            assert!(topic_config::by_broker_synonym(key.name).is_none());
        }
    }

    #[test]
    fn kerberos_keys_are_per_broker_only() {
        let c = set(&[("sasl.kerberos.min.time.before.relogin", "58000")]);
        assert!(validate(&c, true, &defaults).is_ok());
        let e = validate(&c, false, &defaults).unwrap_err();
        assert_eq!(
            e,
            "Cannot update these configs at default cluster level, broker id must be specified: \
             Set(sasl.kerberos.min.time.before.relogin)"
        );
        let bad = set(&[("sasl.kerberos.min.time.before.relogin", "soon")]);
        assert!(validate(&bad, true, &defaults)
            .unwrap_err()
            .contains("Not a number of type LONG"));
    }

    #[test]
    fn static_keys_are_refused_and_thread_pools_bounded() {
        let e = validate(
            &set(&[("log.dirs", "/x"), ("node.id", "2")]),
            true,
            &defaults,
        );
        assert_eq!(
            e.unwrap_err(),
            "Cannot update these configs dynamically: Set(log.dirs, node.id)"
        );
        assert!(validate(&set(&[("background.threads", "9")]), false, &defaults).is_ok());
        assert!(validate(&set(&[("background.threads", "20")]), true, &defaults).is_ok());
        let e = validate(&set(&[("background.threads", "21")]), true, &defaults).unwrap_err();
        assert!(e.ends_with("value should not be greater than double the current value 10"));
        let e = validate(&set(&[("num.io.threads", "3")]), true, &defaults).unwrap_err();
        assert!(e.ends_with("value should be at least half the current value 8"));
        let e = validate(&set(&[("num.io.threads", "0")]), true, &defaults).unwrap_err();
        assert!(e.contains("Value must be at least 1"));
        assert!(validate(&set(&[("log.retention.ms", "1")]), false, &defaults).is_ok());
    }
}
