"""A throw-away PKI for tests: a CA, a server certificate for localhost, a wildcard certificate.

Made once per test process with ``cryptography`` (EC P-256 keys: fast) in a private temp dir.
"""

from __future__ import annotations

import datetime as dt
import functools
import ssl
import tempfile
from dataclasses import dataclass
from ipaddress import IPv4Address
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID


def _key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def _pem_key(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def issue(
    ca_cert: x509.Certificate,
    ca_key: ec.EllipticCurvePrivateKey,
    names: list[str],
    *,
    days: int = 90,
    not_before: dt.datetime | None = None,
) -> tuple[bytes, bytes]:
    """(certificate PEM, key PEM) for ``names`` (DNS names; "127.0.0.1" as an IP)."""
    key = _key()
    start = not_before or dt.datetime.now(dt.UTC) - dt.timedelta(minutes=5)
    sans: list[x509.GeneralName] = []
    for name in names:
        if name.replace(".", "").isdigit():
            sans.append(x509.IPAddress(IPv4Address(name)))
        else:
            sans.append(x509.DNSName(name))
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, names[0])]))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(start + dt.timedelta(days=days))
        .add_extension(x509.SubjectAlternativeName(sans), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),
            critical=False,
        )
        .add_extension(
            x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False
        )
        .sign(ca_key, hashes.SHA256())
    )
    return cert.public_bytes(serialization.Encoding.PEM), _pem_key(key)


@dataclass
class TestPKI:
    dir: Path
    ca_cert: x509.Certificate
    ca_key: ec.EllipticCurvePrivateKey

    __test__ = False  # not a pytest test class

    @property
    def ca_file(self) -> str:
        return str(self.dir / "ca.pem")

    def server_context(self) -> ssl.SSLContext:
        ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ctx.load_cert_chain(self.dir / "server.pem", self.dir / "server.key")
        return ctx

    def issue(self, names: list[str], **kw: object) -> tuple[bytes, bytes]:
        return issue(self.ca_cert, self.ca_key, names, **kw)  # type: ignore[arg-type]


@functools.cache
def shared_pki() -> TestPKI:
    folder = Path(tempfile.mkdtemp(prefix="thinkube-devpi-pki-"))
    key = _key()
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "thinkube-devpi test CA")])
    now = dt.datetime.now(dt.UTC) - dt.timedelta(minutes=5)
    ca = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now)
        .not_valid_after(now + dt.timedelta(days=30))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    (folder / "ca.pem").write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    pki = TestPKI(folder, ca, key)
    cert, server_key = pki.issue(["localhost", "127.0.0.1"])
    (folder / "server.pem").write_bytes(cert)
    (folder / "server.key").write_bytes(server_key)
    (folder / "server.key").chmod(0o600)
    return pki
