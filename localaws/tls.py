"""A local certificate authority, so loopback endpoints can speak https:// as AWS's do.

Gap closed (moto 5.2.5): a custom resource's ResponseURL has no scheme (moto) or was plain
http:// (localaws before), while AWS hands out a pre-signed https:// S3 URL, and a handler that
refuses non-https URLs (as it should) could not be tested. Here a CA and a certificate for
127.0.0.1/localhost are generated when the local account starts (in a private temporary folder,
never reused), and only the local Lambda runtime is told to trust them: `trust_environment()`
gives the function's environment `SSL_CERT_FILE` / `REQUESTS_CA_BUNDLE` pointing at certifi's
public roots plus this CA. Nothing else in the process trusts the local CA, and no verification
is turned off anywhere.
"""

from __future__ import annotations

import contextlib
import datetime
import ipaddress
import shutil
import ssl
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import certifi
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

HOSTS = ("127.0.0.1", "localhost")
_VALID_FOR = datetime.timedelta(days=2)


@dataclass(frozen=True)
class LocalCA:
    """Files of one generated authority: its certificate, the server's chain and key, a bundle."""

    folder: Path

    @property
    def ca_file(self) -> Path:
        return self.folder / "localaws-ca.pem"

    @property
    def cert_file(self) -> Path:
        return self.folder / "server.pem"

    @property
    def key_file(self) -> Path:
        return self.folder / "server-key.pem"

    @property
    def bundle_file(self) -> Path:
        """certifi's public roots plus the local CA: what a local function trusts."""
        return self.folder / "bundle.pem"

    def server_context(self) -> ssl.SSLContext:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        context.load_cert_chain(self.cert_file, self.key_file)
        return context


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def _pem(certificate: x509.Certificate) -> bytes:
    return certificate.public_bytes(serialization.Encoding.PEM)


def generate(folder: Path) -> LocalCA:
    """A fresh CA (P-256) and a server certificate for HOSTS signed by it, written to `folder`."""
    now = datetime.datetime.now(datetime.UTC)
    ca_key, server_key = (
        ec.generate_private_key(ec.SECP256R1()),
        ec.generate_private_key(ec.SECP256R1()),
    )
    ca_name = _name("localaws local CA")
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + _VALID_FOR)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=False,
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
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), False)
        .sign(ca_key, hashes.SHA256())
    )
    names = [x509.IPAddress(ipaddress.ip_address(HOSTS[0])), x509.DNSName(HOSTS[1])]
    server = (
        x509.CertificateBuilder()
        .subject_name(_name(HOSTS[1]))
        .issuer_name(ca_name)
        .public_key(server_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + _VALID_FOR)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.SubjectAlternativeName(names), critical=False)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), False
        )
        .sign(ca_key, hashes.SHA256())
    )
    authority = LocalCA(folder)
    authority.ca_file.write_bytes(_pem(ca))
    authority.cert_file.write_bytes(_pem(server))
    authority.key_file.write_bytes(
        server_key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    authority.key_file.chmod(0o600)
    authority.bundle_file.write_bytes(Path(certifi.where()).read_bytes() + b"\n" + _pem(ca))
    return authority


_CURRENT: LocalCA | None = None


def current() -> LocalCA | None:
    return _CURRENT


def trust_environment() -> dict[str, str]:
    """Variables that make a local function's urllib, urllib3 and requests trust the local CA.

    Empty when no local account is running. botocore keeps its own roots (AWS_CA_BUNDLE unset).
    """
    if _CURRENT is None:
        return {}
    bundle = str(_CURRENT.bundle_file)
    return {"SSL_CERT_FILE": bundle, "REQUESTS_CA_BUNDLE": bundle}


@contextlib.contextmanager
def install() -> Iterator[LocalCA]:
    """Generate the authority for this local account; delete its files when it stops."""
    global _CURRENT
    folder = Path(tempfile.mkdtemp(prefix="localaws-tls-"))  # mode 0700
    try:
        _CURRENT = generate(folder)
        yield _CURRENT
    finally:
        _CURRENT = None
        shutil.rmtree(folder, ignore_errors=True)
