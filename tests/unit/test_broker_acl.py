"""The broker config generator: ACL rules per role, the mosquitto password format, user
names, certificates, the file set and the ``edgefleet broker config`` command."""

from __future__ import annotations

import datetime as dt
import grp
import json
import os
import re
import stat
from pathlib import Path

import pytest
import typer
from cryptography import x509
from edgefleet_cli.brokerconfig import certs, conf
from edgefleet_cli.brokerconfig.acl import HA_PREFIX, acl_text, rules_for
from edgefleet_cli.brokerconfig.bundle import ConfigRequest, build_config_set
from edgefleet_cli.brokerconfig.passwd import (
    hash_password,
    password_file_text,
    verify_password,
)
from edgefleet_cli.brokerconfig.users import BrokerUser, Role, build_users
from edgefleet_cli.brokerconfig.writer import BROKER_READS
from edgefleet_cli.commands import broker as cli_broker
from edgefleet_protocol.broker import BrokerSettings
from edgefleet_protocol.errors import ProtocolError
from paho.mqtt.client import topic_matches_sub
from typer.testing import CliRunner

REPO = Path(__file__).resolve().parents[2]
NOW = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
R = "edgefleet/v1"

AGENT = BrokerUser("s1.n1", Role.AGENT, site="s1", node="n1")
OPERATOR = BrokerUser("alice", Role.OPERATOR)
VIEWER = BrokerUser("grafana", Role.VIEWER)
ORCH = BrokerUser("orchestrator", Role.ORCHESTRATOR)
BRIDGE = BrokerUser("bridge@s1", Role.BRIDGE, site="s1")

STATUS_READS = [
    f"read {R}/nodes/+/+/status",
    f"read {R}/nodes/+/+/telemetry",
    f"read {R}/nodes/+/+/capabilities",
    f"read {R}/nodes/+/+/reported",
    f"read {R}/nodes/+/+/compliance",
    f"read {R}/apps/+/status",
    f"read {R}/fleet/summary",
    f"read {R}/orchestrator/status",
    f"read {R}/orchestrator/events",
    f"read {R}/services/#",
    f"read {R}/homeassistant/#",
]


# -- ACL rules ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("user", "expected"),
    [
        (ORCH, [f"readwrite {R}/#", "write homeassistant/#"]),
        (
            AGENT,
            [
                f"write {R}/nodes/s1/n1/status",
                f"write {R}/nodes/s1/n1/capabilities",
                f"write {R}/nodes/s1/n1/telemetry",
                f"write {R}/nodes/s1/n1/reported",
                f"write {R}/nodes/s1/n1/events",
                f"write {R}/nodes/s1/n1/compliance",
                f"read {R}/nodes/s1/n1/desired",
                f"read {R}/services/#",
                f"read {R}/orchestrator/status",
                f"read {R}/nodes/s1/n1/logs",
                f"write {R}/replies/+/logs/s1/n1/#",
            ],
        ),
        (
            OPERATOR,
            [
                f"write {R}/commands/alice/+",
                f"write {R}/nodes/+/+/logs",
                *STATUS_READS,
                "read homeassistant/#",
                f"read {R}/replies/alice/#",
            ],
        ),
        (VIEWER, [*STATUS_READS, "read homeassistant/#"]),
        (
            BRIDGE,
            [
                f"write {R}/nodes/s1/+/status",
                f"write {R}/nodes/s1/+/capabilities",
                f"write {R}/nodes/s1/+/telemetry",
                f"write {R}/nodes/s1/+/reported",
                f"write {R}/nodes/s1/+/events",
                f"write {R}/nodes/s1/+/compliance",
                f"read {R}/nodes/s1/+/desired",
                f"read {R}/services/#",
                f"read {R}/orchestrator/status",
                f"read {R}/nodes/s1/+/logs",
                f"write {R}/replies/+/logs/s1/+/#",
            ],
        ),
    ],
    ids=lambda v: v.role.value if isinstance(v, BrokerUser) else "",
)
def test_each_role_gets_exactly_its_rule_table(user: BrokerUser, expected: list[str]) -> None:
    assert [f"{r.access} {r.topic}" for r in rules_for(user)] == expected


@pytest.mark.parametrize("user", [ORCH, AGENT, OPERATOR, VIEWER, BRIDGE])
def test_only_the_orchestrator_may_write_a_desired_document(user: BrokerUser) -> None:
    writes = [r.topic for r in rules_for(user) if r.access in ("write", "readwrite")]
    desired = [f"{R}/nodes/s1/n1/desired", f"{R}/nodes/s2/n9/desired"]
    may_write = any(topic_matches_sub(w, d) for w in writes for d in desired)
    assert may_write == (user.role is Role.ORCHESTRATOR)


@pytest.mark.parametrize("user", [AGENT, VIEWER, BRIDGE])
def test_only_operators_and_the_orchestrator_may_write_a_command(user: BrokerUser) -> None:
    writes = [r.topic for r in rules_for(user) if r.access in ("write", "readwrite")]
    assert not any(topic_matches_sub(w, f"{R}/commands/deploy") for w in writes)


def test_a_viewer_can_write_nothing() -> None:
    assert {r.access for r in rules_for(VIEWER)} == {"read"}


def test_an_agent_reads_no_other_nodes_topics() -> None:
    node_reads = [r.topic for r in rules_for(AGENT) if r.access == "read" and "/nodes/" in r.topic]
    assert node_reads == [f"{R}/nodes/s1/n1/desired", f"{R}/nodes/s1/n1/logs"]


@pytest.mark.parametrize("user", [AGENT, VIEWER, BRIDGE])
def test_only_operators_and_the_orchestrator_may_ask_for_logs(user: BrokerUser) -> None:
    writes = [r.topic for r in rules_for(user) if r.access in ("write", "readwrite")]
    assert not any(topic_matches_sub(w, f"{R}/nodes/s1/n1/logs") for w in writes)


def test_an_agent_writes_log_lines_only_to_replies_about_itself() -> None:
    writes = [r.topic for r in rules_for(AGENT) if r.access == "write"]
    mine = f"{R}/replies/alice/logs/s1/n1/alice-1"
    others = [
        f"{R}/replies/alice/logs/s1/n2/alice-1",  # another node's stream
        f"{R}/replies/alice/alice-1",  # a command reply
        f"{R}/apps/web/status",
    ]
    assert any(topic_matches_sub(w, mine) for w in writes)
    assert not any(topic_matches_sub(w, t) for w in writes for t in others)


def test_the_topic_root_is_applied_to_every_rule() -> None:
    for user in (ORCH, AGENT, OPERATOR, VIEWER, BRIDGE):
        rules = [r for r in rules_for(user, "fleet-b/v1") if not r.topic.startswith(HA_PREFIX)]
        assert all(r.topic.startswith("fleet-b/v1/") for r in rules)


def test_a_bad_topic_root_is_refused() -> None:
    with pytest.raises(ProtocolError, match="root"):
        rules_for(AGENT, "edgefleet/#")


def test_the_acl_file_grants_anonymous_clients_nothing_and_has_one_block_per_user() -> None:
    text = acl_text([ORCH, AGENT, VIEWER])
    lines = [ln for ln in text.splitlines() if ln and not ln.startswith("#")]
    assert lines[0] == "user orchestrator"  # no rule precedes the first user
    assert [ln for ln in lines if ln.startswith("user ")] == [
        "user orchestrator",
        "user s1.n1",
        "user grafana",
    ]
    assert all(ln.startswith(("user ", "topic ")) for ln in lines)


# -- users -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("ref", "field"),
    [
        ("site-a", "node"),
        ("a/b/c", "node"),
        ("Site/n1", "site"),
        ("s1/+", "node"),
        ("s1/#", "node"),
        ("/n1", "site"),
        ("s1/", "node"),
        ("s1/n_1", "node"),
        ("s1/" + "n" * 64, "node"),
    ],
)
def test_a_bad_site_node_reference_is_refused_naming_the_part(ref: str, field: str) -> None:
    with pytest.raises(ProtocolError) as err:
        build_users(nodes=[ref])
    assert err.value.field == field


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"operators": ["orchestrator"]}, "already used by the orchestrator role"),
        ({"operators": ["ops"], "viewers": ["ops"]}, "already used by the operator role"),
        ({"viewers": ["Bad"]}, "not a valid viewer"),
        ({"nodes": [f"{'s' * 32}/{'n' * 32}"]}, "at most 64"),
        ({"bridges": ["site/a"]}, "not a valid bridge site"),
    ],
)
def test_names_that_would_collide_or_break_a_certificate_are_refused(
    kwargs: dict[str, list[str]], message: str
) -> None:
    with pytest.raises(ProtocolError, match=re.escape(message)):
        build_users(**kwargs)


def test_users_come_orchestrator_first_with_unambiguous_names_and_repeats_merged() -> None:
    users = build_users(nodes=["s1/n1", "s1/n1", "s2/n1"], operators=["n1"], bridges=["s1"])
    assert [(u.username, u.role) for u in users] == [
        ("orchestrator", Role.ORCHESTRATOR),
        ("s1.n1", Role.AGENT),
        ("s2.n1", Role.AGENT),
        ("n1", Role.OPERATOR),
        ("bridge@s1", Role.BRIDGE),
    ]


# -- password file -----------------------------------------------------------------------

# Written by `mosquitto_passwd -b pw alice secret` (mosquitto 2.0.11).
MOSQUITTO_PASSWD_LINE = (
    "alice:$7$101$Zd2F5ACCzgGmYPVX$nmG1+o8WAifJrMkNwWYUcW8jGzij+VoyCeypqN58msl+Ud0f6rRBUiG"
    "KDOSbdViyRbq8IXzNSX9C8NsLjX8Yyg=="
)
HASH_SHAPE = re.compile(r"\$7\$101\$[A-Za-z0-9+/]{16}\$[A-Za-z0-9+/]{86}==")


def test_a_hash_has_the_mosquitto_2_pbkdf2_sha512_shape() -> None:
    assert HASH_SHAPE.fullmatch(hash_password("pw", salt=bytes(range(12))))


def test_the_verifier_accepts_a_line_written_by_mosquitto_passwd() -> None:
    _, encoded = MOSQUITTO_PASSWD_LINE.split(":", 1)
    assert verify_password("secret", encoded)
    assert not verify_password("Secret", encoded)


def test_hashing_the_mosquitto_salt_reproduces_mosquitto_passwd_exactly() -> None:
    import base64

    _, encoded = MOSQUITTO_PASSWD_LINE.split(":", 1)
    salt = base64.b64decode(encoded.split("$")[3])
    assert hash_password("secret", salt=salt) == encoded


@pytest.mark.parametrize("password", ["", "p", "påss wörd:with$odd chars", "x" * 200])
def test_the_verifier_accepts_its_own_hash_and_only_for_that_password(password: str) -> None:
    encoded = hash_password(password, salt=b"0123456789ab")
    assert verify_password(password, encoded)
    assert not verify_password(password + "!", encoded)


@pytest.mark.parametrize(
    "encoded",
    ["plain", "$6$101$c2FsdA==$aGFzaA==", "$7$x$c2FsdA==$aGFzaA==", "$7$101$c2FsdA==$aGFzaA=="],
)
def test_a_malformed_hash_is_an_error_not_a_wrong_password(encoded: str) -> None:
    with pytest.raises(ProtocolError, match="password hash"):
        verify_password("pw", encoded)


def test_a_username_with_a_colon_cannot_enter_the_password_file() -> None:
    with pytest.raises(ProtocolError, match="username"):
        password_file_text([("a:b", "$7$1$x$y")])


# -- certificates ------------------------------------------------------------------------


def test_the_server_certificate_covers_loopback_and_every_host_and_chains_to_the_ca() -> None:
    ca = certs.make_ca(now=NOW)
    server = certs.make_server_cert(ca, hosts=["broker.example.net", "10.0.0.5"], now=NOW)
    sans = server.cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert {str(v) for v in sans.get_values_for_type(x509.IPAddress)} == {
        "127.0.0.1",
        "::1",
        "10.0.0.5",
    }
    assert set(sans.get_values_for_type(x509.DNSName)) == {"localhost", "broker.example.net"}
    server.cert.verify_directly_issued_by(ca.cert)


@pytest.mark.parametrize("host", ["bad host", "a_b.example", "-x.example", ""])
def test_a_host_that_is_neither_ip_nor_dns_name_is_refused(host: str) -> None:
    with pytest.raises(ProtocolError, match="host"):
        certs.subject_alt_names([host])


# -- the whole set -----------------------------------------------------------------------


def _pinned_set(**overrides: object) -> dict[str, bytes]:
    counter = iter(range(1000))
    request = ConfigRequest(
        users=build_users(nodes=["s1/n1"], operators=["alice"], viewers=["grafana"]),
        hosts=("broker.example.net",),
        **overrides,  # type: ignore[arg-type]
    )
    files = build_config_set(
        request,
        now=NOW,
        new_password=lambda: f"pw-{next(counter)}",
        new_salt=lambda: b"saltsaltsalt",
    )
    return {f.path: f.content for f in files}


def test_every_handed_out_password_verifies_against_the_password_file() -> None:
    files = _pinned_set()
    hashes = dict(line.split(":", 1) for line in files[conf.PASSWORD_FILE].decode().splitlines())
    users = json.loads(files[conf.CREDENTIALS_FILE])["users"]
    assert set(hashes) == set(users) == {"orchestrator", "s1.n1", "alice", "grafana"}
    for name, entry in users.items():
        assert verify_password(entry["password"], hashes[name])


def test_each_env_file_holds_a_broker_url_the_protocol_package_parses() -> None:
    files = _pinned_set()
    env = {
        key: value.strip("'")
        for key, value in (
            line.split("=", 1)
            for line in files["clients/s1.n1.env"].decode().splitlines()
            if line and not line.startswith("#")
        )
    }
    settings = BrokerSettings.from_url(env["EDGEFLEET_BROKER"])
    assert (settings.host, settings.port, settings.tls) == ("broker.example.net", 8883, True)
    assert (settings.username, settings.password) == ("s1.n1", env["EDGEFLEET_BROKER_PASSWORD"])
    assert settings.ca_file == "/etc/edgefleet/ca.crt"
    assert settings.cert_file == "/etc/edgefleet/s1.n1.crt"


def test_a_client_certificate_names_its_user_and_chains_to_the_ca() -> None:
    files = _pinned_set()
    ca = x509.load_pem_x509_certificate(files[conf.CA_CERT])
    client = x509.load_pem_x509_certificate(files["clients/s1.n1.crt"])
    client.verify_directly_issued_by(ca)
    cn = client.subject.get_attributes_for_oid(x509.oid.NameOID.COMMON_NAME)[0].value
    assert cn == "s1.n1"


def test_the_generated_config_points_at_the_install_dir_and_port() -> None:
    text = _pinned_set(layout=conf.Layout("/srv/mq", "/data/mq"), port=9883)[conf.CONF_FILE]
    lines = text.decode().splitlines()
    for expected in (
        "listener 9883",
        "password_file /srv/mq/passwd",
        "acl_file /srv/mq/acl",
        "cafile /srv/mq/ca.crt",
        "persistence_location /data/mq/",
        "allow_anonymous false",
    ):
        assert expected in lines


def test_the_repository_production_conf_is_the_default_rendering() -> None:
    on_disk = (REPO / "broker-config" / "production.conf").read_text()
    assert on_disk == conf.render_production_conf()


# -- the command ---------------------------------------------------------------------------


def _cli(*args: str) -> tuple[int, str]:
    root = typer.Typer()
    root.add_typer(cli_broker.app, name="broker")
    result = CliRunner().invoke(root, ["broker", "config", *args])
    return result.exit_code, result.output


SECRETS = ["ca.key", "server.key", "passwd", "acl", "credentials.json", "clients/s1.n1.key"]


def test_the_command_writes_a_complete_set_with_secrets_private(tmp_path: Path) -> None:
    out = tmp_path / "set"
    code, output = _cli("--out", str(out), "--node", "s1/n1", "--viewer", "grafana")
    assert code == 0, output
    shared = broker_group() if os.geteuid() == 0 else None
    for name in [*SECRETS, "clients/s1.n1.env", "clients/grafana.env"]:
        info = (out / name).stat()
        if shared is not None and name in BROKER_READS:
            # Root with Debian's mosquitto: the broker's own user reads these by group.
            assert (stat.S_IMODE(info.st_mode), info.st_gid) == (0o640, shared), name
        else:
            assert stat.S_IMODE(info.st_mode) == 0o600, name
    for name in ["mosquitto.conf", "ca.crt", "server.crt", "clients/s1.n1.crt", "clients/ca.crt"]:
        assert stat.S_IMODE((out / name).stat().st_mode) == 0o644, name
    assert (out / "clients" / "ca.crt").read_bytes() == (out / "ca.crt").read_bytes()
    assert f"password_file {out.resolve()}/passwd" in (out / "mosquitto.conf").read_text()
    assert "\nlistener 8883\n" in (out / "mosquitto.conf").read_text()


def broker_group() -> int | None:
    try:
        return grp.getgrnam("mosquitto").gr_gid
    except KeyError:
        return None


def test_bind_puts_the_listener_on_one_address(tmp_path: Path) -> None:
    out = tmp_path / "set"
    code, output = _cli("--out", str(out), "--node", "s1/n1", "--bind", "127.0.0.1")
    assert code == 0, output
    assert "\nlistener 8883 127.0.0.1\n" in (out / "mosquitto.conf").read_text()


@pytest.mark.parametrize(
    "bad",
    [
        ["--node", "s1/N1"],
        ["--node", "s1"],
        ["--node", "s1/+"],
        ["--operator", "bad/op"],
        ["--host", "not a host"],
        ["--root", "edgefleet/#"],
        ["--port", "70000"],
        ["--bind", "127.0.0.1\nallow_anonymous true"],
        ["--bind", "localhost"],
    ],
)
def test_bad_input_exits_2_with_a_clear_error_and_writes_nothing(
    tmp_path: Path, bad: list[str]
) -> None:
    out = tmp_path / "set"
    code, output = _cli("--out", str(out), "--node", "s1/n1", *bad)
    assert code == 2
    assert output.startswith("error: ")
    assert not out.exists()


def test_a_non_empty_directory_is_kept_unless_forced(tmp_path: Path) -> None:
    out = tmp_path / "set"
    assert _cli("--out", str(out), "--node", "s1/n1")[0] == 0
    ca_before = (out / "ca.crt").read_bytes()
    code, output = _cli("--out", str(out), "--node", "s1/n2")
    assert code == 2
    assert "--force" in output
    assert (out / "ca.crt").read_bytes() == ca_before
    assert not (out / "clients" / "s1.n2.crt").exists()
    assert _cli("--out", str(out), "--node", "s1/n2", "--force")[0] == 0
    assert (out / "ca.crt").read_bytes() != ca_before
    assert (out / "clients" / "s1.n2.crt").exists()
