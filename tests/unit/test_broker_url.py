"""The broker URL every edgefleet program takes (``--broker``, ``EDGEFLEET_BROKER``;
docs/operations.md, "Broker URL"): what each part and option means, the default ports, the
words of each refusal, and that no password ever appears in what is shown. Pure.
"""

from __future__ import annotations

import pytest
from edgefleet_protocol.broker import BrokerSettings, redact_url
from edgefleet_protocol.errors import ProtocolError

SECRET = "s3cr3t"


def refusal(url: str) -> ProtocolError:
    with pytest.raises(ProtocolError) as caught:
        BrokerSettings.from_url(url)
    assert caught.value.field == "broker"
    assert SECRET not in caught.value.reason
    return caught.value


def test_a_full_url_sets_every_field() -> None:
    url = (
        f"mqtts://ali%40ce:{SECRET}%2F@broker.example:9883"
        "?ca=/etc/ca.crt&cert=c.crt&key=c.key&insecure=true&protocol=3.1.1&keepalive=45"
    )
    assert BrokerSettings.from_url(url) == BrokerSettings(
        host="broker.example",
        port=9883,
        username="ali@ce",  # percent-escapes are decoded
        password=f"{SECRET}/",
        tls=True,
        ca_file="/etc/ca.crt",
        cert_file="c.crt",
        key_file="c.key",
        insecure=True,
        protocol="3.1.1",
        keepalive=45,
    )


def test_the_settings_default_to_the_development_broker() -> None:
    assert BrokerSettings() == BrokerSettings.from_url("mqtt://127.0.0.1:1883")
    default = BrokerSettings()
    assert (default.tls, default.insecure, default.protocol, default.keepalive) == (
        False,
        False,
        "auto",
        30,
    )


@pytest.mark.parametrize(
    ("url", "tls", "port"),
    [
        ("mqtt://h", False, 1883),
        ("tcp://h", False, 1883),
        ("mqtts://h", True, 8883),
        ("ssl://h", True, 8883),
        ("mqtt://h:2883", False, 2883),
        ("mqtts://h:2883", True, 2883),
    ],
)
def test_the_scheme_says_whether_tls_is_used_and_the_port_defaults_to_match(
    url: str, tls: bool, port: int
) -> None:
    settings = BrokerSettings.from_url(url)
    assert (settings.tls, settings.port) == (tls, port)


@pytest.mark.parametrize("protocol", ["5", "3.1.1", "auto"])
def test_each_protocol_choice_is_kept(protocol: str) -> None:
    assert BrokerSettings.from_url(f"mqtt://h?protocol={protocol}").protocol == protocol


@pytest.mark.parametrize(
    ("value", "insecure"),
    [("1", True), ("true", True), ("TRUE", True), ("yes", True), ("0", False), ("no", False)],
)
def test_insecure_is_on_only_when_asked_for(value: str, insecure: bool) -> None:
    assert BrokerSettings.from_url(f"mqtts://h?insecure={value}").insecure is insecure
    assert BrokerSettings.from_url("mqtts://h").insecure is False


@pytest.mark.parametrize("keepalive", [5, 65535])
def test_a_keepalive_from_5_to_65535_seconds_is_kept(keepalive: int) -> None:
    assert BrokerSettings.from_url(f"mqtt://h?keepalive={keepalive}").keepalive == keepalive


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        (
            f"http://u:{SECRET}@h",
            "'http://u:***@h': scheme must be mqtt:// or mqtts://, got 'http'",
        ),
        (f"mqtt://u:{SECRET}@", "'mqtt://u:***@' names no host"),
        (f"mqtt://u:{SECRET}@h:99999", "'mqtt://u:***@h:99999' has an invalid port"),
        ("mqtt://h?cafile=x&user=y", "unknown URL option(s): cafile, user"),
        ("mqtt://h?protocol=3", "protocol must be 5, 3.1.1 or auto, got '3'"),
        ("mqtt://h?keepalive=1.5", "keepalive must be a whole number of seconds"),
        ("mqtt://h?keepalive=4", "keepalive must be between 5 and 65535 seconds"),
        ("mqtt://h?keepalive=65536", "keepalive must be between 5 and 65535 seconds"),
        ("mqtts://h?cert=c.crt", "a client certificate needs both cert= and key="),
        ("mqtts://h?key=c.key", "a client certificate needs both cert= and key="),
    ],
)
def test_a_bad_url_is_refused_saying_what_is_wrong(url: str, reason: str) -> None:
    assert refusal(url).reason == reason


@pytest.mark.parametrize(
    ("settings", "shown"),
    [
        (BrokerSettings.from_url(f"mqtts://alice:{SECRET}@h?ca=x"), "mqtts://alice:***@h:8883"),
        (BrokerSettings.from_url("mqtt://h:1884"), "mqtt://h:1884"),
        (BrokerSettings.from_url("ssl://bob@h"), "mqtts://bob:***@h:8883"),
    ],
)
def test_settings_are_shown_without_their_password(settings: BrokerSettings, shown: str) -> None:
    assert settings.redacted() == shown


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        (f"mqtt://alice:{SECRET}@h", "mqtt://alice:***@h"),
        (f"mqtt://:{SECRET}@h", "mqtt://:***@h"),  # a password without a user name
        (f"alice:{SECRET}@h:1883", "alice:***@h:1883"),  # no scheme at all
        (f"mqtt://alice:a@b:{SECRET}@h", "mqtt://alice:***@h"),  # an '@' in the password
        # What follows the first '?' is the query, never user info:
        ("mqtt://h:1883?ca=/certs/x:y@z", "mqtt://h:1883?ca=/certs/x:y@z"),
        ("?ca=x:y@z", "?ca=x:y@z"),
    ],
)
def test_only_the_password_of_the_user_info_is_hidden(url: str, shown: str) -> None:
    assert redact_url(url) == shown
