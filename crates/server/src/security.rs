//! Listener security, from Kafka's settings: `listener.security.protocol.map` gives each
//! listener its protocol (PLAINTEXT, SSL, SASL_PLAINTEXT, SASL_SSL); `ssl.*` and `sasl.*`
//! (each also as `listener.name.<listener>.<key>`) configure TLS and SASL. Everything is
//! resolved before any listener is bound: a protocol, mechanism or store type Oxka does not
//! implement refuses to start with a message that says what to change, so a listener meant to
//! be secure never serves plaintext.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{anyhow, bail, Context};
use oxka_broker::sasl::{jaas, Mechanism};
use oxka_broker::BrokerConfig;
use rustls::server::WebPkiClientVerifier;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

use crate::auth::SaslSettings;
use crate::principal_mapping::PrincipalMapper;

/// Kafka's security protocols.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SecurityProtocol {
    Plaintext,
    Ssl,
    SaslPlaintext,
    SaslSsl,
}

impl SecurityProtocol {
    fn parse(name: &str) -> Option<Self> {
        Some(match name {
            "PLAINTEXT" => SecurityProtocol::Plaintext,
            "SSL" => SecurityProtocol::Ssl,
            "SASL_PLAINTEXT" => SecurityProtocol::SaslPlaintext,
            "SASL_SSL" => SecurityProtocol::SaslSsl,
            _ => return None,
        })
    }

    fn uses_tls(self) -> bool {
        matches!(self, SecurityProtocol::Ssl | SecurityProtocol::SaslSsl)
    }

    fn uses_sasl(self) -> bool {
        matches!(
            self,
            SecurityProtocol::SaslPlaintext | SecurityProtocol::SaslSsl
        )
    }
}

/// How one listener authenticates and encrypts.
#[derive(Debug)]
pub(crate) struct ListenerSecurity {
    pub(crate) protocol: SecurityProtocol,
    /// The TLS server configuration (SSL, SASL_SSL).
    pub(crate) tls: Option<Arc<rustls::ServerConfig>>,
    /// SASL settings (SASL_PLAINTEXT, SASL_SSL).
    pub(crate) sasl: Option<Arc<SaslSettings>>,
    /// `ssl.principal.mapping.rules`: client certificate subject → principal name.
    pub(crate) principal_mapper: PrincipalMapper,
}

/// Keys this module reads (so the settings loader does not warn about them).
pub(crate) fn is_security_key(key: &str) -> bool {
    key.starts_with("ssl.")
        || key.starts_with("sasl.")
        || matches!(
            key,
            "connections.max.reauth.ms"
                | "connection.failed.authentication.delay.ms"
                | "security.inter.broker.protocol"
                | "oxka.scram.users"
        )
}

/// A setting, listener-prefixed first: `listener.name.<listener>.<key>`, then `<key>`.
fn setting<'a>(config: &'a BrokerConfig, listener: &str, key: &str) -> Option<&'a str> {
    let prefixed = format!("listener.name.{}.{key}", listener.to_ascii_lowercase());
    config
        .get(&prefixed)
        .or_else(|| config.get(key))
        .filter(|v| !v.trim().is_empty())
}

/// The settings of one listener.
struct Lookup<'a> {
    config: &'a BrokerConfig,
    name: &'a str,
}

impl<'a> Lookup<'a> {
    fn get(&self, key: &str) -> Option<&'a str> {
        setting(self.config, self.name, key)
    }
}

/// Resolves the security of the listener `name`.
pub(crate) fn resolve(config: &BrokerConfig, name: &str) -> anyhow::Result<ListenerSecurity> {
    let protocol = protocol_of(config, name)?;
    let tls = if protocol.uses_tls() {
        Some(
            tls_acceptor(config, name)
                .with_context(|| format!("listener {name} ({protocol:?})"))?,
        )
    } else {
        None
    };
    let sasl = if protocol.uses_sasl() {
        Some(Arc::new(sasl_settings(config, name).with_context(
            || format!("listener {name} ({protocol:?})"),
        )?))
    } else {
        None
    };
    let rules = setting(config, name, "ssl.principal.mapping.rules").unwrap_or("DEFAULT");
    let principal_mapper =
        PrincipalMapper::parse(rules).map_err(|e| anyhow!("ssl.principal.mapping.rules: {e}"))?;
    if let Some(class) = setting(config, name, "principal.builder.class") {
        bail!("principal.builder.class={class} is not supported: Oxka builds principals as Kafka's DefaultKafkaPrincipalBuilder (use ssl.principal.mapping.rules)");
    }
    Ok(ListenerSecurity {
        protocol,
        tls,
        sasl,
        principal_mapper,
    })
}

fn protocol_of(config: &BrokerConfig, name: &str) -> anyhow::Result<SecurityProtocol> {
    let map = config.get("listener.security.protocol.map").unwrap_or("");
    let mut mapped = None;
    for entry in map.split(',').map(str::trim).filter(|e| !e.is_empty()) {
        let (listener, protocol) = entry.split_once(':').ok_or_else(|| {
            anyhow!("listener.security.protocol.map: {entry:?} is not LISTENER:PROTOCOL")
        })?;
        if listener.trim() == name {
            mapped = Some(protocol.trim());
        }
    }
    // Kafka falls back to the listener's own name when it is a protocol name.
    let protocol = mapped.unwrap_or(name);
    SecurityProtocol::parse(protocol).ok_or_else(|| {
        if mapped.is_none() {
            anyhow!("No security protocol defined for listener {name}: add {name}:<PLAINTEXT|SSL|SASL_PLAINTEXT|SASL_SSL> to listener.security.protocol.map")
        } else {
            anyhow!("listener {name}: unknown security protocol {protocol} (Oxka serves PLAINTEXT, SSL, SASL_PLAINTEXT, SASL_SSL)")
        }
    })
}

fn sasl_settings(config: &BrokerConfig, name: &str) -> anyhow::Result<SaslSettings> {
    // Kafka's default for sasl.enabled.mechanisms is GSSAPI, which Oxka does not implement.
    let enabled = setting(config, name, "sasl.enabled.mechanisms").unwrap_or("GSSAPI");
    let mut mechanisms = Vec::new();
    for m in enabled.split(',').map(str::trim).filter(|m| !m.is_empty()) {
        let Some(mechanism) = Mechanism::from_name(m) else {
            bail!("sasl.enabled.mechanisms: {m} is not supported by Oxka (supported: PLAIN, SCRAM-SHA-256, SCRAM-SHA-512); set sasl.enabled.mechanisms (Kafka's default is GSSAPI)");
        };
        if !mechanisms.contains(&mechanism) {
            mechanisms.push(mechanism);
        }
    }
    if mechanisms.is_empty() {
        bail!("sasl.enabled.mechanisms is empty");
    }
    let mut plain_users = BTreeMap::new();
    if mechanisms.contains(&Mechanism::Plain) {
        let key = format!(
            "listener.name.{}.plain.sasl.jaas.config",
            name.to_ascii_lowercase()
        );
        let (source, text) = match config.get(&key).filter(|v| !v.is_empty()) {
            Some(t) => (key.as_str(), t),
            None => match config.get("sasl.jaas.config").filter(|v| !v.is_empty()) {
                Some(t) => ("sasl.jaas.config", t),
                None => bail!("PLAIN is enabled but neither {key} nor sasl.jaas.config defines users (org.apache.kafka.common.security.plain.PlainLoginModule required user_<name>=\"<password>\";)"),
            },
        };
        let entries = jaas::parse(text).map_err(|e| anyhow!("{source}: {e}"))?;
        let entry = entries
            .iter()
            .find(|e| e.login_module == "org.apache.kafka.common.security.plain.PlainLoginModule")
            .ok_or_else(|| {
                anyhow!(
                    "{source}: no org.apache.kafka.common.security.plain.PlainLoginModule entry"
                )
            })?;
        for (k, v) in &entry.options {
            if let Some(user) = k.strip_prefix("user_") {
                plain_users.insert(user.to_owned(), v.clone());
            }
        }
        if plain_users.is_empty() {
            bail!(
                "{source}: the PlainLoginModule entry defines no user_<name>=\"<password>\" option"
            );
        }
    }
    let number = |key: &str, default: i64| -> anyhow::Result<i64> {
        match setting(config, name, key) {
            None => Ok(default),
            Some(v) => v
                .trim()
                .parse()
                .with_context(|| format!("{key}={v} is not a number")),
        }
    };
    let max_receive_size = number("sasl.server.max.receive.size", 524_288)?;
    if max_receive_size <= 0 {
        bail!("sasl.server.max.receive.size must be positive");
    }
    Ok(SaslSettings {
        mechanisms,
        plain_users,
        max_receive_size: max_receive_size as usize,
        max_reauth_ms: number("connections.max.reauth.ms", 0)?.max(0),
        failed_delay: Duration::from_millis(
            number("connection.failed.authentication.delay.ms", 100)?.max(0) as u64,
        ),
    })
}

/// The TLS acceptor of a listener: its key and certificate chain (`ssl.keystore.*`), and for
/// `ssl.client.auth=required|requested` the CAs that sign client certificates
/// (`ssl.truststore.*`).
fn tls_acceptor(config: &BrokerConfig, name: &str) -> anyhow::Result<Arc<rustls::ServerConfig>> {
    let lookup = Lookup { config, name };
    let get = |key: &str| lookup.get(key);
    let (chain, key) = keystore(&lookup)?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let versions = protocol_versions(get("ssl.enabled.protocols"))?;
    if let Some(suites) = get("ssl.cipher.suites") {
        tracing::warn!(
            listener = name,
            suites,
            "ssl.cipher.suites is not honoured: rustls offers its own safe TLS 1.2/1.3 suites"
        );
    }
    let builder = rustls::ServerConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(&versions)
        .context("TLS protocol versions")?;
    let client_auth = get("ssl.client.auth").unwrap_or("none");
    let builder = match client_auth {
        "none" => builder.with_no_client_auth(),
        "required" | "requested" => {
            let roots = truststore(&lookup)?;
            let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider);
            let verifier = if client_auth == "requested" {
                verifier.allow_unauthenticated()
            } else {
                verifier
            };
            builder.with_client_cert_verifier(verifier.build().context("ssl.truststore")?)
        }
        other => bail!("ssl.client.auth={other}: expected required, requested or none"),
    };
    let mut server = builder
        .with_single_cert(chain, key)
        .context("ssl.keystore: the key does not match the certificate")?;
    server.alpn_protocols.clear();
    Ok(Arc::new(server))
}

fn protocol_versions(
    enabled: Option<&str>,
) -> anyhow::Result<Vec<&'static rustls::SupportedProtocolVersion>> {
    let Some(enabled) = enabled else {
        return Ok(vec![&rustls::version::TLS13, &rustls::version::TLS12]);
    };
    let mut out = Vec::new();
    for p in enabled.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        match p {
            "TLSv1.3" => out.push(&rustls::version::TLS13),
            "TLSv1.2" => out.push(&rustls::version::TLS12),
            other => bail!(
                "ssl.enabled.protocols: {other} is not offered (rustls serves TLSv1.2 and TLSv1.3)"
            ),
        }
    }
    if out.is_empty() {
        bail!("ssl.enabled.protocols is empty");
    }
    Ok(out)
}

type Keystore = (Vec<CertificateDer<'static>>, PrivateKeyDer<'static>);

/// `ssl.keystore.type=PEM` (file at `ssl.keystore.location` holding the key and the chain, or
/// inline `ssl.keystore.key` + `ssl.keystore.certificate.chain`) or PKCS12.
fn keystore(lookup: &Lookup<'_>) -> anyhow::Result<Keystore> {
    let get = |key: &str| lookup.get(key);
    let store_type = get("ssl.keystore.type")
        .unwrap_or("JKS")
        .to_ascii_uppercase();
    if let (Some(key), Some(chain)) = (
        get("ssl.keystore.key"),
        get("ssl.keystore.certificate.chain"),
    ) {
        return pem_keystore(key.as_bytes(), chain.as_bytes(), get("ssl.key.password"))
            .context("ssl.keystore.key / ssl.keystore.certificate.chain");
    }
    let location = get("ssl.keystore.location")
        .ok_or_else(|| anyhow!("ssl.keystore.location is required for a TLS listener"))?;
    if !matches!(store_type.as_str(), "PEM" | "PKCS12") {
        bail!("ssl.keystore.type={store_type} is not supported (use PEM or PKCS12; convert a JKS store with keytool -importkeystore -deststoretype PKCS12)");
    }
    let bytes = std::fs::read(location)
        .with_context(|| format!("reading ssl.keystore.location {location}"))?;
    match store_type.as_str() {
        "PEM" => pem_keystore(&bytes, &bytes, get("ssl.key.password"))
            .with_context(|| format!("ssl.keystore.location {location}")),
        "PKCS12" => crate::pkcs12::keystore(&bytes, get("ssl.keystore.password"), get("ssl.key.password"))
            .with_context(|| format!("ssl.keystore.location {location} (PKCS12)")),
        other => bail!("ssl.keystore.type={other} is not supported (use PEM or PKCS12; convert a JKS store with keytool -importkeystore -deststoretype PKCS12)"),
    }
}

fn pem_keystore(
    key_pem: &[u8],
    chain_pem: &[u8],
    key_password: Option<&str>,
) -> anyhow::Result<Keystore> {
    if String::from_utf8_lossy(key_pem).contains("ENCRYPTED PRIVATE KEY") {
        bail!("encrypted PEM private keys are not supported{}: decrypt it (openssl pkcs8 -in key.pem -out plain.pem)", if key_password.is_some() { " (ssl.key.password is set)" } else { "" });
    }
    let key = PrivateKeyDer::from_pem_slice(key_pem).map_err(|e| anyhow!("no private key: {e}"))?;
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(chain_pem)
        .collect::<Result<_, _>>()
        .map_err(|e| anyhow!("certificate chain: {e}"))?;
    if chain.is_empty() {
        bail!("no certificate in the certificate chain");
    }
    Ok((chain, key))
}

/// `ssl.truststore.type=PEM` (file at `ssl.truststore.location`, or inline
/// `ssl.truststore.certificates`) or PKCS12.
fn truststore(lookup: &Lookup<'_>) -> anyhow::Result<rustls::RootCertStore> {
    let get = |key: &str| lookup.get(key);
    let store_type = get("ssl.truststore.type")
        .unwrap_or("JKS")
        .to_ascii_uppercase();
    let certs: Vec<CertificateDer<'static>> = if let Some(pem) = get("ssl.truststore.certificates")
    {
        CertificateDer::pem_slice_iter(pem.as_bytes())
            .collect::<Result<_, _>>()
            .map_err(|e| anyhow!("ssl.truststore.certificates: {e}"))?
    } else {
        let location = get("ssl.truststore.location").ok_or_else(|| {
            anyhow!("ssl.client.auth needs ssl.truststore.location (the CAs that sign client certificates)")
        })?;
        let bytes = std::fs::read(location)
            .with_context(|| format!("reading ssl.truststore.location {location}"))?;
        match store_type.as_str() {
            "PEM" => CertificateDer::pem_slice_iter(&bytes)
                .collect::<Result<_, _>>()
                .map_err(|e| anyhow!("ssl.truststore.location {location}: {e}"))?,
            "PKCS12" => crate::pkcs12::truststore(&bytes, get("ssl.truststore.password"))
                .with_context(|| format!("ssl.truststore.location {location} (PKCS12)"))?,
            other => bail!("ssl.truststore.type={other} is not supported (use PEM or PKCS12)"),
        }
    };
    let mut roots = rustls::RootCertStore::empty();
    for cert in certs {
        roots.add(cert).context("truststore certificate")?;
    }
    if roots.is_empty() {
        bail!("the truststore holds no certificate");
    }
    Ok(roots)
}

/// `oxka.scram.users=alice:alice-secret,bob:bob-secret` (env `KAFKA_OXKA_SCRAM_USERS`): users
/// whose SCRAM-SHA-256 and SCRAM-SHA-512 credentials are created at start-up if they have none
/// (Oxka's `kafka-storage format --add-scram`). Existing credentials are never changed.
pub(crate) fn scram_seed_users(config: &BrokerConfig) -> anyhow::Result<Vec<(String, String)>> {
    let Some(value) = config.get("oxka.scram.users").filter(|v| !v.is_empty()) else {
        return Ok(Vec::new());
    };
    value
        .split(',')
        .map(str::trim)
        .filter(|u| !u.is_empty())
        .map(|u| match u.split_once(':') {
            Some((name, password)) if !name.is_empty() && !password.is_empty() => {
                Ok((name.to_owned(), password.to_owned()))
            }
            _ => Err(anyhow!(
                "oxka.scram.users: expected user:password, got an entry without ':'"
            )),
        })
        .collect()
}
