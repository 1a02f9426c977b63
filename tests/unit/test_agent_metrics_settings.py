"""The agent's ``metrics_addr`` setting: loopback only, because the endpoint has no
authentication and a gateway must not offer it to the network."""

from __future__ import annotations

import pytest
from edgefleet_agent.settings import SettingsError, resolve_settings


def resolve(value: str) -> object:
    flags = {"node": "gw-1", "site": "a", "metrics_addr": value}
    return resolve_settings(flags, {}, {}).metrics_addr


@pytest.mark.parametrize("value", ["127.0.0.1:9465", "[::1]:9465", "localhost:9465"])
def test_loopback_metrics_addresses_are_accepted(value: str) -> None:
    assert resolve(value) is not None


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        ("0.0.0.0:9465", "not a loopback address"),
        (":9465", "not a loopback address"),
        ("10.0.0.5:9465", "not a loopback address"),
        ("127.0.0.1", "is not HOST:PORT"),
        ("127.0.0.1:0", "out of range"),
    ],
)
def test_other_metrics_addresses_are_refused_naming_the_setting(value: str, reason: str) -> None:
    with pytest.raises(SettingsError, match=f"metrics_addr.*{reason}"):
        resolve(value)


def test_metrics_are_off_unless_asked_for() -> None:
    assert resolve_settings({"node": "gw-1", "site": "a"}, {}, {}).metrics_addr is None
