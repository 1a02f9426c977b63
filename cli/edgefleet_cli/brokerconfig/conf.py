"""The production ``mosquitto.conf`` text (mosquitto 2.0 syntax).

``broker-config/production.conf`` is this rendering for the default install paths, and a
unit test keeps the two identical, so the documented file and the generated one cannot
drift. ``broker-config/README.md`` explains every line.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import PurePosixPath

DEFAULT_INSTALL_DIR = "/etc/mosquitto/edgefleet"
DEFAULT_DATA_DIR = "/var/lib/mosquitto"
DEFAULT_PORT = 8883

# Sizing, explained in broker-config/README.md.
MAX_PACKET_BYTES = 1024 * 1024  # >= 512 KiB payload + topic + properties
MAX_QUEUED_MESSAGES = 200_000  # the orchestrator's retained replay must fit in one queue
MAX_INFLIGHT_MESSAGES = 1000
MAX_KEEPALIVE_S = 300


@dataclass(frozen=True, slots=True)
class Layout:
    """Where the broker will find the generated files once installed."""

    install_dir: str = DEFAULT_INSTALL_DIR
    data_dir: str = DEFAULT_DATA_DIR

    def path(self, name: str) -> str:
        return str(PurePosixPath(self.install_dir) / name)


CA_CERT = "ca.crt"
CA_KEY = "ca.key"
SERVER_CERT = "server.crt"
SERVER_KEY = "server.key"
PASSWORD_FILE = "passwd"
ACL_FILE = "acl"
CONF_FILE = "mosquitto.conf"
CREDENTIALS_FILE = "credentials.json"
CLIENTS_DIR = "clients"


def render_production_conf(
    layout: Layout = Layout(),
    *,
    port: int = DEFAULT_PORT,
    require_client_cert: bool = True,
    bind: str | None = None,
) -> str:
    """The broker's config. ``bind``: the one address the listener binds (all interfaces
    when ``None``)."""
    header = [
        "# edgefleet production broker, mosquitto 2.0 — made by `edgefleet broker config`.",
        "# Every line that matters is explained in broker-config/README.md.",
        f"# Run: mosquitto -c {layout.path(CONF_FILE)}",
    ]
    return "\n".join(
        header + broker_lines(layout, port=port, require_client_cert=require_client_cert, bind=bind)
    )


def broker_lines(
    layout: Layout, *, port: int, require_client_cert: bool, bind: str | None
) -> list[str]:
    """Everything but the header: a site broker (:mod:`.bridgeconf`) runs these same rules
    for its own gateways, so the two cannot drift apart."""
    data_dir = layout.data_dir.rstrip("/") + "/"  # mosquitto concatenates, so it needs the /
    return [
        "",
        "# -- security: one set of rules for every listener ----------------------------",
        "per_listener_settings false",
        "allow_anonymous false",
        f"password_file {layout.path(PASSWORD_FILE)}",
        f"acl_file {layout.path(ACL_FILE)}",
        "",
        "# -- the only listener: TLS on all interfaces ---------------------------------"
        if bind is None
        else f"# -- the only listener: TLS on {bind} only ".ljust(80, "-"),
        f"listener {port}" if bind is None else f"listener {port} {bind}",
        "protocol mqtt",
        f"cafile {layout.path(CA_CERT)}",
        f"certfile {layout.path(SERVER_CERT)}",
        f"keyfile {layout.path(SERVER_KEY)}",
        "tls_version tlsv1.2",
        f"require_certificate {'true' if require_client_cert else 'false'}",
        "# the certificate's CN is the user name: a key, not a password, is the identity",
        f"use_identity_as_username {'true' if require_client_cert else 'false'}",
        "# the client id is the user name: nobody can take over another's session",
        "use_username_as_clientid true",
        "",
        "# -- durability --------------------------------------------------------------",
        "persistence true",
        f"persistence_location {data_dir}",
        "autosave_interval 60",
        "persistent_client_expiration 14d",
        "",
        "# -- limits: big retained replays must not be dropped --------------------------",
        f"max_queued_messages {MAX_QUEUED_MESSAGES}",
        "max_queued_bytes 0",
        f"max_inflight_messages {MAX_INFLIGHT_MESSAGES}",
        f"max_packet_size {MAX_PACKET_BYTES}",
        f"max_keepalive {MAX_KEEPALIVE_S}",
        "",
        "# -- logging -----------------------------------------------------------------",
        "log_dest stderr",
        "log_type error",
        "log_type warning",
        "log_type notice",
        "log_type information",
        "connection_messages true",
        "log_timestamp_format %Y-%m-%dT%H:%M:%S",
        "",
    ]
