//! PKCS#12 key and trust stores (`ssl.keystore.type=PKCS12`, `ssl.truststore.type=PKCS12`).

use anyhow::bail;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

pub(crate) fn keystore(
    _bytes: &[u8],
    _store_password: Option<&str>,
    _key_password: Option<&str>,
) -> anyhow::Result<(Vec<CertificateDer<'static>>, PrivateKeyDer<'static>)> {
    bail!("PKCS12 keystores are not supported yet: convert to PEM (openssl pkcs12 -in store.p12 -nodes -out store.pem) and set ssl.keystore.type=PEM")
}

pub(crate) fn truststore(
    _bytes: &[u8],
    _store_password: Option<&str>,
) -> anyhow::Result<Vec<CertificateDer<'static>>> {
    bail!("PKCS12 truststores are not supported yet: convert to PEM (openssl pkcs12 -in store.p12 -nokeys -out ca.pem) and set ssl.truststore.type=PEM")
}
