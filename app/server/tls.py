"""A self-signed TLS certificate for the county's machine (`jiandang tls-cert`).

Laptops do not trust it through any certificate authority: the certificate itself is pinned on each
laptop at enrollment (`enroll --server-ca`), so only a service holding its private key is accepted.
ECDSA P-256, SHA-256, the names and IP addresses laptops use in subjectAltName.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import os
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID


def _alt_name(host: str) -> x509.GeneralName:
    try:
        return x509.IPAddress(ipaddress.ip_address(host))
    except ValueError:
        return x509.DNSName(host)


def self_signed(hosts: list[str], days: int = 3650, common_name: str = "jiandang county sync") -> tuple[bytes, bytes]:
    """(certificate PEM, private key PEM) valid for the given host names and IP addresses."""
    if not hosts:
        raise ValueError("至少给出一个主机名或 IP 地址")
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    now = dt.datetime.now(dt.timezone.utc)
    ski = x509.SubjectKeyIdentifier.from_public_key(key.public_key())
    cert = (
        x509.CertificateBuilder()
        .subject_name(name).issuer_name(name).public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5)).not_valid_after(now + dt.timedelta(days=days))
        .add_extension(x509.SubjectAlternativeName([_alt_name(h) for h in hosts]), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True, content_commitment=False,
                                     key_encipherment=False, data_encipherment=False, key_agreement=False,
                                     crl_sign=False, encipher_only=False, decipher_only=False), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(ski, critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ski), critical=False)
        .sign(key, hashes.SHA256())
    )
    key_pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption())
    return cert.public_bytes(serialization.Encoding.PEM), key_pem


def write(cert_path, key_path, hosts: list[str], days: int = 3650) -> str:
    """Write the pair (the key readable by the owner only); returns the certificate's SHA-256
    fingerprint for comparing on the laptops."""
    cert_pem, key_pem = self_signed(hosts, days)
    key_path, cert_path = Path(key_path), Path(cert_path)
    for path in (key_path, cert_path):
        if path.exists():
            raise FileExistsError(f"{path} 已存在,不会覆盖")
    fd = os.open(key_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(key_pem)
    cert_path.write_bytes(cert_pem)
    return fingerprint(cert_pem)


def fingerprint(cert_pem: bytes | str) -> str:
    data = cert_pem.encode("ascii") if isinstance(cert_pem, str) else cert_pem
    digest = x509.load_pem_x509_certificate(data).fingerprint(hashes.SHA256()).hex().upper()
    return ":".join(digest[i:i + 2] for i in range(0, 16, 2)) + "…"
