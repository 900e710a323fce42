"""Test certificates made at run time with `cryptography` (never committed): a CA, a server
certificate for 127.0.0.1/localhost, client certificates (good, from an unknown CA, expired)."""
import datetime
import os

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
import ipaddress


def _name(**parts):
    oids = {"CN": NameOID.COMMON_NAME, "OU": NameOID.ORGANIZATIONAL_UNIT_NAME,
            "O": NameOID.ORGANIZATION_NAME, "C": NameOID.COUNTRY_NAME}
    # written in the order given (the RFC 2253 string lists them last-to-first)
    return x509.Name([x509.NameAttribute(oids[k], v) for k, v in parts.items()])


def _cert(subject, issuer, key, issuer_key, ca=False, san=None, days=(-1, 30)):
    now = datetime.datetime.now(datetime.timezone.utc)
    b = (x509.CertificateBuilder().subject_name(subject).issuer_name(issuer)
         .public_key(key.public_key()).serial_number(x509.random_serial_number())
         .not_valid_before(now + datetime.timedelta(days=days[0]))
         .not_valid_after(now + datetime.timedelta(days=days[1]))
         .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True))
    if ca:
        b = b.add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True,
                                          content_commitment=False, key_encipherment=False,
                                          data_encipherment=False, key_agreement=False,
                                          encipher_only=False, decipher_only=False), critical=True)
    if san:
        b = b.add_extension(x509.SubjectAlternativeName(san), critical=False)
    return b.sign(issuer_key, hashes.SHA256())


def _write(path, *objs):
    with open(path, "wb") as f:
        for o in objs:
            if isinstance(o, x509.Certificate):
                f.write(o.public_bytes(serialization.Encoding.PEM))
            else:
                f.write(o.private_bytes(serialization.Encoding.PEM,
                                        serialization.PrivateFormat.PKCS8,
                                        serialization.NoEncryption()))
    return path


def make_pki(d):
    """Writes the PEM files into `d`; returns a dict of paths."""
    key = lambda: ec.generate_private_key(ec.SECP256R1())  # noqa: E731
    ca_key, other_key = key(), key()
    ca = _cert(_name(CN="oxka-test-ca"), _name(CN="oxka-test-ca"), ca_key, ca_key, ca=True)
    other_ca = _cert(_name(CN="other-ca"), _name(CN="other-ca"), other_key, other_key, ca=True)
    server_key = key()
    server = _cert(_name(CN="localhost"), ca.subject, server_key, ca_key,
                   san=[x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))])
    p = {"ca": _write(os.path.join(d, "ca.pem"), ca),
         "server_keystore": _write(os.path.join(d, "server.pem"), server_key, server),
         "server_cert": _write(os.path.join(d, "server-cert.pem"), server),
         "server_key": _write(os.path.join(d, "server-key.pem"), server_key)}
    for name, issuer, issuer_key, days in [("client", ca, ca_key, (-1, 30)),
                                           ("stranger", other_ca, other_key, (-1, 30)),
                                           ("expired", ca, ca_key, (-30, -1))]:
        k = key()
        c = _cert(_name(C="NO", O="oxka", OU="eng", CN=name), issuer.subject, k, issuer_key, days=days)
        p[name + "_cert"] = _write(os.path.join(d, name + "-cert.pem"), c)
        p[name + "_key"] = _write(os.path.join(d, name + "-key.pem"), k)
    return p
