"""The CLI never echoes a broker password and never quietly falls back to the default
broker when the operator's .env was only half read (issue #12 defect 8)."""

from __future__ import annotations

import pytest
from edgefleet_cli.config import UsageError, resolve_settings
from edgefleet_protocol.broker import redact_url

SECRET = "s3cr3t-Pa55"


@pytest.mark.parametrize(
    "url",
    [
        f"mqtts://alice:{SECRET}@broker:88x3?ca=/etc/ca.crt",  # a typo in the port
        f"mqtss://alice:{SECRET}@broker:8883",  # in the scheme
        f"mqtts//alice:{SECRET}@broker:8883",  # a missing colon
        f"mqtts://alice:{SECRET}@/nohost",
        f"mqtts://alice:{SECRET}@@broker:8883?protocol=7",
    ],
)
def test_a_bad_broker_url_is_refused_without_its_password(url: str) -> None:
    with pytest.raises(UsageError) as caught:
        resolve_settings({"broker": url}, {}, {})
    text = " ".join(caught.value.lines)
    assert SECRET not in text
    assert "alice" in text or "protocol" in text  # still says which URL, or what is wrong


def test_redaction_keeps_everything_but_the_password() -> None:
    assert redact_url(f"mqtts://alice:{SECRET}@h:8883?ca=/a&cert=b") == (
        "mqtts://alice:***@h:8883?ca=/a&cert=b"
    )
    assert redact_url("mqtt://h:1883") == "mqtt://h:1883"
    assert redact_url("mqtts://alice@h") == "mqtts://alice@h"


def test_credentials_without_a_broker_url_are_a_half_read_env_file_not_the_default() -> None:
    env = {"EDGEFLEET_BROKER_USERNAME": "alice", "EDGEFLEET_BROKER_PASSWORD": SECRET}
    with pytest.raises(UsageError) as caught:
        resolve_settings({}, env, {})
    text = " ".join(caught.value.lines)
    assert "EDGEFLEET_BROKER is not" in text and "not read completely" in text
    assert SECRET not in text


def test_nothing_configured_uses_the_default_and_says_so() -> None:
    settings = resolve_settings({}, {}, {})
    assert settings.broker_source == "default"
    assert resolve_settings({"broker": "mqtt://h:1"}, {}, {}).broker_source == "--broker"
