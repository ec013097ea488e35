"""`betterworld dev-cert`: a local CA and a server certificate it signs, for TLS on this machine."""

from __future__ import annotations

import datetime
import ipaddress
import os
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

DEFAULT_NAMES = ("localhost", "127.0.0.1", "::1")
"""What the server certificate is valid for unless told otherwise."""
CA_DAYS = 3650
SERVER_DAYS = 365
"""A year: short enough to be renewed by running the command again, long enough not to annoy."""
_BACKDATE = datetime.timedelta(minutes=5)  # tolerate clocks a little behind this one

CA_CERT = "ca.crt"
CA_KEY = "ca.key"
SERVER_CERT = "tls.crt"
SERVER_KEY = "tls.key"


@dataclass(frozen=True)
class DevCertificates:
    """Where `make_dev_certificates` wrote the files."""

    ca_cert: Path
    """The local CA's certificate: what clients trust (httpx `verify=`, gRPC root certificates,
    curl `--cacert`, PGSSLROOTCERT)."""
    ca_key: Path
    """The CA's private key (0600), kept so that running the command again reuses the CA."""
    cert: Path
    """The server certificate, signed by the CA (EDGE_TLS_CERT_FILE)."""
    key: Path
    """The server's private key (0600; EDGE_TLS_KEY_FILE)."""
    ca_created: bool
    """False when an existing CA in the directory signed the new server certificate."""


def _write_private(path: Path, data: bytes) -> None:
    """Writes a key readable by its owner only, with no moment at which it is readable by others."""
    path.unlink(missing_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)


def _key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def _subject_alternative_names(names: tuple[str, ...]) -> x509.SubjectAlternativeName:
    entries: list[x509.GeneralName] = []
    for name in names:
        try:
            entries.append(x509.IPAddress(ipaddress.ip_address(name)))
        except ValueError:
            entries.append(x509.DNSName(name))
    return x509.SubjectAlternativeName(entries)


def _new_ca(now: datetime.datetime) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "BetterWorld development"),
            x509.NameAttribute(NameOID.COMMON_NAME, "BetterWorld local development CA"),
        ]
    )
    public = key.public_key()
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(public)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - _BACKDATE)
        .not_valid_after(now + datetime.timedelta(days=CA_DAYS))
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
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public), critical=False)
        .sign(key, hashes.SHA256())
    )
    return cert, key


def _load_ca(directory: Path) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey] | None:
    cert_path, key_path = directory / CA_CERT, directory / CA_KEY
    if not (cert_path.exists() and key_path.exists()):
        return None
    cert = x509.load_pem_x509_certificate(cert_path.read_bytes())
    key = serialization.load_pem_private_key(key_path.read_bytes(), password=None)
    if not isinstance(key, ec.EllipticCurvePrivateKey):
        raise ValueError(f"{key_path} is not an EC key made by `betterworld dev-cert`")
    if cert.not_valid_after_utc - datetime.timedelta(days=SERVER_DAYS) < datetime.datetime.now(
        datetime.UTC
    ):
        return None  # it would expire before the server certificate: start a new CA
    return cert, key


def _server_certificate(
    names: tuple[str, ...],
    ca_cert: x509.Certificate,
    ca_key: ec.EllipticCurvePrivateKey,
    now: datetime.datetime,
) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    key = ec.generate_private_key(ec.SECP256R1())
    public = key.public_key()
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, names[0])]))
        .issuer_name(ca_cert.subject)
        .public_key(public)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - _BACKDATE)
        .not_valid_after(now + datetime.timedelta(days=SERVER_DAYS))
        .add_extension(_subject_alternative_names(names), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=False,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),
            critical=False,
        )
        .sign(ca_key, hashes.SHA256())
    )
    return cert, key


def make_dev_certificates(
    directory: Path, *, names: tuple[str, ...] = DEFAULT_NAMES
) -> DevCertificates:
    """Writes a server certificate for `names` (DNS names or IP addresses) into `directory`,
    signed by the local CA there (made on the first run, reused later so that a client that
    trusts it keeps trusting the renewed certificate). Keys are written with mode 0600."""
    if not names:
        raise ValueError("the certificate needs at least one name")
    directory.mkdir(parents=True, exist_ok=True)
    now = datetime.datetime.now(datetime.UTC)
    existing = _load_ca(directory)
    ca_cert, ca_key = existing or _new_ca(now)
    if existing is None:
        _write_private(directory / CA_KEY, _key_pem(ca_key))
        (directory / CA_CERT).write_bytes(ca_cert.public_bytes(serialization.Encoding.PEM))
    cert, key = _server_certificate(names, ca_cert, ca_key, now)
    _write_private(directory / SERVER_KEY, _key_pem(key))
    (directory / SERVER_CERT).write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return DevCertificates(
        ca_cert=directory / CA_CERT,
        ca_key=directory / CA_KEY,
        cert=directory / SERVER_CERT,
        key=directory / SERVER_KEY,
        ca_created=existing is None,
    )


def instructions(made: DevCertificates, *, port: int = 8080) -> str:
    """What to tell the person who ran the command: the files and the settings to use."""
    return f"""\
{"Created a local CA" if made.ca_created else "Reused the local CA"} and a server certificate:
  CA certificate       {made.ca_cert}   (trust this one in clients)
  server certificate   {made.cert}
  server key           {made.key}   (mode 0600)

Serve HTTPS and gRPC over TLS from Envoy with these settings (e.g. in .env):
  EDGE_TLS_CERT_FILE={made.cert}
  EDGE_TLS_KEY_FILE={made.key}

Then, for example:
  curl --cacert {made.ca_cert} https://localhost:{port}/health
  buf curl --cacert {made.ca_cert} --protocol grpc https://localhost:{port}/grpc.health.v1.Health/Check
"""
