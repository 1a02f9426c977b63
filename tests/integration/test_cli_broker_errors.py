"""Issue #12 defect 8 against the generated production set on a real mosquitto: the CLI
says at once what the broker refused — a wrong password is "not authorised", a command
the ACL forbids (a viewer's) is refused by the broker — instead of waiting out its
timeout and blaming the network or the orchestrator."""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import pytest
from edgefleet_cli.client import OperatorClient
from edgefleet_cli.config import ClientSettings, CommandRefused, Unreachable
from edgefleet_protocol.broker import BrokerSettings
from harness.mosquitto import Mosquitto
from harness.production import generate_set, start_generated_broker

TIMEOUT_S = 10.0
AT_ONCE_S = 5.0
"""Far under the timeout, generous for a loaded machine (it takes well under a second)."""


@dataclass(frozen=True)
class Generated:
    path: Path
    users: dict[str, dict[str, Any]]
    broker: Mosquitto

    def client(
        self, user: str, *, password: str | None = None, protocol: str = "auto"
    ) -> ClientSettings:
        settings = BrokerSettings(
            host="127.0.0.1",
            port=self.broker.port,
            username=user,
            password=password if password is not None else self.users[user]["password"],
            tls=True,
            ca_file=str(self.path / "ca.crt"),
            cert_file=str(self.path / "clients" / f"{user}.crt"),
            key_file=str(self.path / "clients" / f"{user}.key"),
            protocol=protocol,  # type: ignore[arg-type]
        )
        return ClientSettings(broker=settings, user=user, timeout_s=TIMEOUT_S)


def start_set(factory: pytest.TempPathFactory, *options: str) -> Generated:
    out = factory.mktemp("generated") / "set"
    people = ("--node", "s1/n1", "--operator", "alice", "--viewer", "grafana")
    users = generate_set(out, *people, *options)
    return Generated(out, users, start_generated_broker(out, factory.mktemp("prod-broker")))


@pytest.fixture(scope="module")
def generated(
    tmp_path_factory: pytest.TempPathFactory, mosquitto: Mosquitto
) -> Iterator[Generated]:
    """The default production set: the client certificate is the identity."""
    del mosquitto  # the tier's skip/fail gating
    made = start_set(tmp_path_factory)
    yield made
    made.broker.stop()


@pytest.fixture(scope="module")
def with_passwords(
    tmp_path_factory: pytest.TempPathFactory, mosquitto: Mosquitto
) -> Iterator[Generated]:
    """A set without client certificates: the password is what the broker checks (with
    certificates, mosquitto 2.0 takes the identity from the certificate and ignores it)."""
    del mosquitto
    made = start_set(tmp_path_factory, "--no-require-client-cert")
    yield made
    made.broker.stop()


async def test_a_wrong_password_is_not_authorised_at_once(with_passwords: Generated) -> None:
    started = time.monotonic()
    with pytest.raises(Unreachable) as caught:
        async with OperatorClient(with_passwords.client("alice", password="wrong")):
            pass
    assert time.monotonic() - started < AT_ONCE_S
    text = caught.value.lines[0]
    assert "refused user 'alice': not authorised" in text
    assert "wrong" not in text  # the password is never echoed


async def test_a_command_the_acl_refuses_is_reported_as_refused_by_the_broker(
    generated: Generated,
) -> None:
    async with OperatorClient(generated.client("grafana")) as viewer:
        started = time.monotonic()
        with pytest.raises(CommandRefused) as caught:
            await viewer.call("apps")
        assert time.monotonic() - started < AT_ONCE_S
    text = caught.value.lines[0]
    assert "the broker refused to let grafana publish the apps command" in text
    assert "Not authorized" in text
    assert "orchestrator" not in text


async def test_over_3_1_1_a_refused_command_cannot_be_told_and_the_timeout_says_so(
    generated: Generated,
) -> None:
    settings = replace(generated.client("grafana", protocol="3.1.1"), timeout_s=1.0)
    async with OperatorClient(settings) as viewer:
        with pytest.raises(Unreachable) as caught:
            await viewer.call("apps")
    assert (
        "over MQTT 3.1.1 a command the broker's ACL refuses looks just like this"
        in (caught.value.lines[0])
    )
