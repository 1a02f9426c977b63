"""The whole production file set, built in memory before anything touches the disk.

Building everything first means a bad name anywhere fails the run with nothing written,
and the writer has one simple job. Randomness (passwords, salts) and the clock come in as
arguments, so tests can pin them; only key generation draws from the OS.

What the set holds (paths relative to the output directory):

* ``mosquitto.conf`` — the production config, pointing at ``layout.install_dir``;
* ``ca.crt`` / ``ca.key`` — the private CA (keep the key off the broker once issued);
* ``server.crt`` / ``server.key`` — the broker's TLS identity;
* ``passwd`` / ``acl`` — what the broker enforces;
* ``clients/<user>.crt|.key|.env`` — per-user client certificate, key and a ready
  ``EDGEFLEET_BROKER`` (the variable the agent, the orchestrator and the CLI read);
* ``credentials.json`` — every user's plaintext password, for handing out once;
* ``keys/`` — the desired-state signing keys and the gateways' trust anchor
  (:mod:`edgefleet_cli.brokerconfig.trust`);
* ``bridges/<site>/`` for every ``--bridge`` site — the other side of the bridge: the site
  broker's ``bridge.conf`` (:mod:`.bridgeconf`, with the bridge's password) and, in
  ``central/``, the central CA and the bridge's certificate and key. Installed on the site
  broker beside the site's own set, in the default install dir.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import PurePosixPath
from urllib.parse import quote

from edgefleet_protocol.errors import ProtocolError
from edgefleet_protocol.topics import DEFAULT_ROOT, validate_root

from edgefleet_cli.brokerconfig import bridgeconf, certs, conf, trust
from edgefleet_cli.brokerconfig.acl import acl_text
from edgefleet_cli.brokerconfig.passwd import hash_password, password_file_text
from edgefleet_cli.brokerconfig.users import BrokerUser, Role

SECRET = 0o600
PUBLIC = 0o644
DEFAULT_CLIENT_DIR = "/etc/edgefleet"


@dataclass(frozen=True, slots=True)
class ConfigRequest:
    users: tuple[BrokerUser, ...]
    root: str = DEFAULT_ROOT
    port: int = conf.DEFAULT_PORT
    hosts: tuple[str, ...] = ()
    layout: conf.Layout = field(default_factory=conf.Layout)
    require_client_cert: bool = True
    client_dir: str = DEFAULT_CLIENT_DIR
    """Where a client keeps ``ca.crt`` and its own cert/key; used in the env-file URLs."""
    bind: str | None = None
    """The address the listener binds (all interfaces when ``None``)."""


@dataclass(frozen=True, slots=True)
class GeneratedFile:
    path: str
    content: bytes
    mode: int

    @property
    def secret(self) -> bool:
        return self.mode & 0o077 == 0


def broker_url(request: ConfigRequest, user: BrokerUser, password: str) -> str:
    """The URL a client of this set connects with (see ``BrokerSettings.from_url``)."""
    host = request.hosts[0] if request.hosts else "localhost"
    if ":" in host:  # an IPv6 literal
        host = f"[{host}]"
    client = PurePosixPath(request.client_dir)
    query = "&".join(
        [
            f"ca={quote(str(client / conf.CA_CERT), safe='/')}",
            f"cert={quote(str(client / f'{user.username}.crt'), safe='/')}",
            f"key={quote(str(client / f'{user.username}.key'), safe='/')}",
        ]
    )
    userinfo = f"{quote(user.username, safe='')}:{quote(password, safe='')}"
    return f"mqtts://{userinfo}@{host}:{request.port}?{query}"


def env_value(value: str) -> str:
    """``value`` in single quotes: a shell ``source`` and systemd's ``EnvironmentFile`` both
    read it back unchanged. Unquoted, the ``&`` between the URL's options ended the
    assignment in a shell (issue #12), and the CLI fell back to its default broker. A value
    with a quote or a newline of its own cannot be written so both read it alike: refused."""
    if "'" in value or "\n" in value or "\\" in value:
        raise ValueError(
            f"cannot write {value!r} to an .env file: it holds a quote, backslash or newline"
        )
    return f"'{value}'"


def _env_file(request: ConfigRequest, user: BrokerUser, password: str) -> bytes:
    client = PurePosixPath(request.client_dir)
    signing: list[str] = []
    if user.role is Role.AGENT:
        signing = [f"EDGEFLEET_TRUST_ANCHOR={env_value(str(client / 'trust-anchor.json'))}"]
    elif user.role is Role.ORCHESTRATOR:
        signing = [f"EDGEFLEET_SIGNING_KEY={env_value(str(client / 'orchestrator.key'))}"]
    lines = [
        f"# edgefleet broker credentials for {user.username} (role: {user.role.value}).",
        f"# Secret. Copy with ca.crt, {user.username}.crt and {user.username}.key to "
        f"{request.client_dir}/ on the client.",
        f"EDGEFLEET_BROKER={env_value(broker_url(request, user, password))}",
        f"EDGEFLEET_BROKER_USERNAME={env_value(user.username)}",
        f"EDGEFLEET_BROKER_PASSWORD={env_value(password)}",
        *signing,
        "",
    ]
    return "\n".join(lines).encode()


def central_address(request: ConfigRequest) -> str:
    """``host:port`` a site bridge dials: the first ``--host`` (as clients use)."""
    host = request.hosts[0] if request.hosts else "localhost"
    return f"[{host}]:{request.port}" if ":" in host else f"{host}:{request.port}"


def _bridge_side(
    request: ConfigRequest, user: BrokerUser, password: str, ca_pem: bytes, client: certs.Issued
) -> list[GeneratedFile]:
    assert user.site is not None
    base = f"bridges/{user.site}"
    text = bridgeconf.render_site_conf(
        user.site,
        central=central_address(request),
        password=password,
        layout=conf.Layout(data_dir=request.layout.data_dir),
        root=request.root,
    )
    central = f"{base}/{bridgeconf.CENTRAL_DIR}"
    return [
        GeneratedFile(f"{base}/bridge.conf", text.encode(), SECRET),
        GeneratedFile(f"{central}/{conf.CA_CERT}", ca_pem, PUBLIC),
        GeneratedFile(f"{central}/{user.username}.crt", client.cert_pem(), PUBLIC),
        GeneratedFile(f"{central}/{user.username}.key", client.key_pem(), SECRET),
    ]


def build_config_set(
    request: ConfigRequest,
    *,
    now: dt.datetime,
    new_password: Callable[[], str],
    new_salt: Callable[[], bytes],
) -> tuple[GeneratedFile, ...]:
    """Every file of the set, with its mode. Raises ``ProtocolError`` on bad input."""
    validate_root(request.root)
    if not 1 <= request.port <= 65535:
        raise ProtocolError("port", f"{request.port} is not a TCP port (1-65535)")
    certs.subject_alt_names(request.hosts)  # validates every --host before any key work
    if request.bind is not None:
        try:  # an IP only: anything else would be written into the config as is
            ipaddress.ip_address(request.bind)
        except ValueError:
            raise ProtocolError("bind", f"{request.bind!r} is not an IP address") from None

    ca = certs.make_ca(now=now)
    server = certs.make_server_cert(ca, hosts=request.hosts, now=now)
    files: list[GeneratedFile] = [
        GeneratedFile(
            conf.CONF_FILE,
            conf.render_production_conf(
                request.layout,
                port=request.port,
                require_client_cert=request.require_client_cert,
                bind=request.bind,
            ).encode(),
            PUBLIC,
        ),
        GeneratedFile(conf.CA_CERT, ca.cert_pem(), PUBLIC),
        # The env files point clients at <client-dir>/ca.crt: the folder handed out has it.
        GeneratedFile(f"{conf.CLIENTS_DIR}/{conf.CA_CERT}", ca.cert_pem(), PUBLIC),
        GeneratedFile(conf.CA_KEY, ca.key_pem(), SECRET),
        GeneratedFile(conf.SERVER_CERT, server.cert_pem(), PUBLIC),
        GeneratedFile(conf.SERVER_KEY, server.key_pem(), SECRET),
        GeneratedFile(conf.ACL_FILE, acl_text(request.users, request.root).encode(), SECRET),
    ]
    hashes: list[tuple[str, str]] = []
    credentials: dict[str, dict[str, object]] = {}
    for user in request.users:
        password = new_password()
        hashes.append((user.username, hash_password(password, salt=new_salt())))
        client = certs.make_client_cert(ca, user.username, now=now)
        base = f"{conf.CLIENTS_DIR}/{user.username}"
        files += [
            GeneratedFile(f"{base}.crt", client.cert_pem(), PUBLIC),
            GeneratedFile(f"{base}.key", client.key_pem(), SECRET),
            GeneratedFile(f"{base}.env", _env_file(request, user, password), SECRET),
        ]
        if user.role is Role.BRIDGE:
            files += _bridge_side(request, user, password, ca.cert_pem(), client)
        credentials[user.username] = {
            "role": user.role.value,
            "site": user.site,
            "node": user.node,
            "password": password,
            "cert": f"{base}.crt",
            "key": f"{base}.key",
            "url": broker_url(request, user, password),
        }
    root_key, orchestrator_key = trust.new_key(), trust.new_key()
    files += [
        GeneratedFile(trust.ROOT_KEY, trust.key_pem(root_key), SECRET),
        GeneratedFile(trust.ORCHESTRATOR_KEY, trust.key_pem(orchestrator_key), SECRET),
        GeneratedFile(trust.TRUST_ANCHOR, trust.anchor_json(root_key, orchestrator_key), PUBLIC),
    ]
    files.append(GeneratedFile(conf.PASSWORD_FILE, password_file_text(hashes).encode(), SECRET))
    document = {
        "v": 1,
        "root": request.root,
        "broker": {"hosts": list(request.hosts) or ["localhost"], "port": request.port},
        "ca": conf.CA_CERT,
        "users": credentials,
    }
    files.append(
        GeneratedFile(
            conf.CREDENTIALS_FILE, (json.dumps(document, indent=2) + "\n").encode(), SECRET
        )
    )
    return tuple(files)
