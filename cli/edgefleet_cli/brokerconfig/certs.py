"""A private CA, the broker's server certificate and one client certificate per user.

The fleet's broker is reached by IP on a LAN as often as by name, so the server
certificate always covers ``127.0.0.1``, ``::1`` and ``localhost`` and adds every
``--host`` given (IP addresses as IP SANs, anything else as a DNS name). Keys are ECDSA
P-256: small, fast on a gateway's CPU, and accepted by mosquitto/OpenSSL and Python's ssl.

The clock is injected; key material comes from the OS (cryptography offers no other way).
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from edgefleet_protocol.errors import ProtocolError

DEFAULT_HOSTS: tuple[str, ...] = ("127.0.0.1", "::1", "localhost")
CA_DAYS = 3650
LEAF_DAYS = 825  # the longest leaf lifetime mainstream TLS clients still accept
_DNS_NAME = re.compile(
    r"(?=.{1,253}\Z)(\*\.)?([A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)*"
    r"[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
)
# Backdating covers gateways whose clocks run a little behind the machine that signs.
_BACKDATE = dt.timedelta(hours=1)


@dataclass(frozen=True, slots=True)
class Issued:
    """A certificate and its private key."""

    cert: x509.Certificate
    key: ec.EllipticCurvePrivateKey

    def cert_pem(self) -> bytes:
        return self.cert.public_bytes(serialization.Encoding.PEM)

    def key_pem(self) -> bytes:
        # Unencrypted PKCS#8: mosquitto and agents start unattended, with no one to type a
        # passphrase; the file mode (0600) is the protection.
        return self.key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )


def _name(common_name: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "edgefleet"),
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
        ]
    )


def subject_alt_names(hosts: Iterable[str]) -> list[x509.GeneralName]:
    """SAN entries for the default loopback names plus ``hosts``, without duplicates."""
    names: list[x509.GeneralName] = []
    seen: set[str] = set()
    for host in (*DEFAULT_HOSTS, *hosts):
        if host in seen:
            continue
        seen.add(host)
        try:
            names.append(x509.IPAddress(ipaddress.ip_address(host)))
            continue
        except ValueError:
            pass
        if _DNS_NAME.fullmatch(host) is None:
            raise ProtocolError("host", f"{host!r} is neither an IP address nor a DNS name")
        names.append(x509.DNSName(host.lower()))
    return names


def _builder(
    subject: x509.Name,
    issuer: x509.Name,
    key: ec.EllipticCurvePrivateKey,
    now: dt.datetime,
    days: int,
) -> x509.CertificateBuilder:
    return (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - _BACKDATE)
        .not_valid_after(now + dt.timedelta(days=days))
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
    )


def _new_key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def _usage(*, cert_sign: bool) -> x509.KeyUsage:
    return x509.KeyUsage(
        digital_signature=not cert_sign,
        content_commitment=False,
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=not cert_sign,
        key_cert_sign=cert_sign,
        crl_sign=cert_sign,
        encipher_only=False,
        decipher_only=False,
    )


def make_ca(
    *, now: dt.datetime, common_name: str = "edgefleet broker CA", days: int = CA_DAYS
) -> Issued:
    key = _new_key()
    name = _name(common_name)
    cert = (
        _builder(name, name, key, now, days)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(_usage(cert_sign=True), critical=True)
        .sign(key, hashes.SHA256())
    )
    return Issued(cert, key)


def _leaf(
    ca: Issued,
    common_name: str,
    *,
    now: dt.datetime,
    days: int,
    usage: x509.ObjectIdentifier,
    sans: Sequence[x509.GeneralName] = (),
) -> Issued:
    key = _new_key()
    builder = (
        _builder(_name(common_name), ca.cert.subject, key, now, days)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(_usage(cert_sign=False), critical=True)
        .add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca.key.public_key()),
            critical=False,
        )
    )
    if sans:
        builder = builder.add_extension(x509.SubjectAlternativeName(list(sans)), critical=False)
    return Issued(builder.sign(ca.key, hashes.SHA256()), key)


def make_server_cert(
    ca: Issued, *, hosts: Sequence[str] = (), now: dt.datetime, days: int = LEAF_DAYS
) -> Issued:
    # Clients match the SANs, never the common name, so the name is only a label.
    sans = subject_alt_names(hosts)
    return _leaf(
        ca, "edgefleet broker", now=now, days=days, usage=ExtendedKeyUsageOID.SERVER_AUTH, sans=sans
    )


def make_client_cert(
    ca: Issued, username: str, *, now: dt.datetime, days: int = LEAF_DAYS
) -> Issued:
    """A client certificate whose common name is the broker username it belongs to."""
    return _leaf(ca, username, now=now, days=days, usage=ExtendedKeyUsageOID.CLIENT_AUTH)
