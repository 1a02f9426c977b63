"""Settings: flags > environment > config file > defaults, and errors that name the setting."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from edgefleet_agent.settings import (
    ProbeTarget,
    SettingsError,
    read_config_file,
    resolve_settings,
)

BASE = {"node": "gw-1", "site": "plant-1"}


def resolve(
    flags: dict[str, Any] | None = None,
    env: dict[str, str] | None = None,
    file: dict[str, Any] | None = None,
) -> Any:
    return resolve_settings(flags or {}, env or {}, file or {})


@pytest.mark.parametrize(
    ("flags", "env", "file", "expected"),
    [
        ({}, {}, {}, 60.0),
        ({}, {}, {"heartbeat_s": 120}, 120.0),
        ({}, {"EDGEFLEET_HEARTBEAT_S": "90"}, {"heartbeat_s": 120}, 90.0),
        ({"heartbeat_s": "30"}, {"EDGEFLEET_HEARTBEAT_S": "90"}, {"heartbeat_s": 120}, 30.0),
        ({}, {"EDGEFLEET_HEARTBEAT_S": ""}, {"heartbeat-s": 45}, 45.0),
    ],
    ids=["default", "file beats default", "env beats file", "flag beats env", "dashed file key"],
)
def test_each_setting_comes_from_the_highest_source_that_sets_it(
    flags: dict[str, Any], env: dict[str, str], file: dict[str, Any], expected: float
) -> None:
    assert resolve({**BASE, **flags}, env, file).heartbeat_s == expected


def test_node_and_site_can_come_from_the_environment() -> None:
    settings = resolve({}, {"EDGEFLEET_NODE": "gw-9", "EDGEFLEET_SITE": "s-2"})
    assert (settings.node, settings.site) == ("gw-9", "s-2")


def test_mappings_are_taken_whole_from_one_source() -> None:
    settings = resolve(
        {**BASE, "labels": ["zone=a", "floor=2"]},
        {"EDGEFLEET_LABELS": "zone=b,rack=7"},
        {"labels": {"line": "3"}},
    )
    assert settings.labels == {"zone": "a", "floor": "2"}
    from_env = resolve(BASE, {"EDGEFLEET_LABELS": "zone=b,rack=7"}, {"labels": {"line": "3"}})
    assert from_env.labels == {"zone": "b", "rack": "7"}


def test_probes_parse_host_and_port_including_ipv6() -> None:
    settings = resolve({**BASE, "probes": ["plc=10.0.0.5:502", "cloud=[2001:db8::1]:443"]})
    assert settings.probes == {
        "plc": ProbeTarget("10.0.0.5", 502),
        "cloud": ProbeTarget("2001:db8::1", 443),
    }


def test_the_broker_url_carries_credentials_and_the_keepalive_setting() -> None:
    settings = resolve({**BASE, "broker": "mqtts://agent:s3cret@broker.local:8883?ca=/etc/ca.pem"})
    assert (settings.broker.host, settings.broker.port, settings.broker.tls) == (
        "broker.local",
        8883,
        True,
    )
    assert (settings.broker.username, settings.broker.password) == ("agent", "s3cret")
    assert settings.broker.ca_file == "/etc/ca.pem"
    assert settings.broker.keepalive == 60
    explicit = resolve({**BASE, "broker": "mqtt://h?keepalive=15", "keepalive_s": "99"})
    assert explicit.broker.keepalive == 15


def test_deadbands_override_only_what_they_name() -> None:
    settings = resolve({**BASE, "deadbands": ["cpu=10", "latency-ms=2"]})
    assert (settings.deadbands.cpu, settings.deadbands.latency_ms, settings.deadbands.memory) == (
        10,
        2,
        2,
    )


def test_a_profile_id_resolves_in_the_profiles_dir(tmp_path: Path) -> None:
    (tmp_path / "pi4.yaml").write_text("id: pi4\n")
    settings = resolve({**BASE, "profile": "pi4", "profiles_dir": str(tmp_path)})
    assert settings.profile_path == tmp_path / "pi4.yaml"


@pytest.mark.parametrize(
    ("flags", "env", "file", "setting", "words"),
    [
        ({"site": "s"}, {}, {}, "node", "is required"),
        ({**BASE, "node": "Bad/Node"}, {}, {}, "node", "not a valid node"),
        (BASE, {"EDGEFLEET_HEARTBEAT_S": "soon"}, {}, "heartbeat_s", "EDGEFLEET_HEARTBEAT_S"),
        ({**BASE, "heartbeat_s": "0"}, {}, {}, "heartbeat_s", "must be >= 1"),
        ({**BASE, "runtime": "podman"}, {}, {}, "runtime", "auto, docker, process, simulated"),
        ({**BASE, "broker": "http://x"}, {}, {}, "broker", "scheme must be mqtt"),
        ({**BASE, "broker": "mqtt://h?colour=red"}, {}, {}, "broker", "unknown URL option"),
        ({**BASE, "labels": ["novalue"]}, {}, {}, "labels", "expected key=value"),
        ({**BASE, "probes": ["x=host"]}, {}, {}, "probes", "expected host:port"),
        ({**BASE, "probes": ["x=host:99999"]}, {}, {}, "probes", "port must be 1-65535"),
        ({**BASE, "probes": ["broker=h:1"]}, {}, {}, "probes", "reserved"),
        ({**BASE, "deadbands": ["cpuu=3"]}, {}, {}, "deadbands", "unknown deadband 'cpuu'"),
        ({**BASE, "sim_failure_rate": "1.5"}, {}, {}, "sim_failure_rate", "<= 1"),
        (BASE, {}, {"heartbeat": 5}, "heartbeat", "unknown setting"),
        (BASE, {}, {"labels": "a"}, "labels", "config file: labels"),
        (
            {**BASE, "profile": "no-such-device", "profiles_dir": "/nonexistent"},
            {},
            {},
            "profile",
            "no profile",
        ),
    ],
)
def test_invalid_settings_name_the_setting_and_where_it_came_from(
    flags: dict[str, Any], env: dict[str, str], file: dict[str, Any], setting: str, words: str
) -> None:
    with pytest.raises(SettingsError) as info:
        resolve(flags, env, file)
    assert info.value.setting == setting
    assert words in str(info.value)
    assert f"'{setting}'" in str(info.value)


@pytest.mark.parametrize(
    ("name", "text"),
    [
        ("agent.yaml", "node: gw-1\nsite: s1\nlabels:\n  zone: a\nprobes:\n  plc: 10.0.0.5:502\n"),
        (
            "agent.toml",
            'node = "gw-1"\nsite = "s1"\n[labels]\nzone = "a"\n[probes]\nplc = "10.0.0.5:502"\n',
        ),
        (
            "nested.yaml",
            "agent:\n  node: gw-1\n  site: s1\n  labels: {zone: a}\n"
            "  probes: {plc: '10.0.0.5:502'}\n",
        ),
    ],
)
def test_config_files_in_yaml_and_toml_give_the_same_settings(
    tmp_path: Path, name: str, text: str
) -> None:
    path = tmp_path / name
    path.write_text(text)
    settings = resolve_settings({}, {}, read_config_file(path))
    assert (settings.node, settings.site, dict(settings.labels)) == ("gw-1", "s1", {"zone": "a"})
    assert settings.probes["plc"] == ProbeTarget("10.0.0.5", 502)


@pytest.mark.parametrize(
    ("name", "text", "words"),
    [
        ("bad.yaml", "node: [unclosed\n", "is not valid"),
        ("bad.toml", "node = \n", "is not valid"),
        ("list.yaml", "- a\n- b\n", "must hold a mapping"),
    ],
)
def test_unreadable_config_files_are_errors_of_the_config_setting(
    tmp_path: Path, name: str, text: str, words: str
) -> None:
    path = tmp_path / name
    path.write_text(text)
    with pytest.raises(SettingsError) as info:
        read_config_file(path)
    assert info.value.setting == "config"
    assert words in str(info.value)


def test_a_missing_config_file_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(SettingsError, match="cannot read"):
        read_config_file(tmp_path / "missing.yaml")


def test_the_shipped_example_config_is_valid() -> None:
    repo = Path(__file__).resolve().parents[2]
    values = read_config_file(repo / "edge-agent" / "agent.example.yaml")
    settings = resolve_settings({"profiles_dir": str(repo / "device-profiles")}, {}, values)
    assert (settings.node, settings.site, settings.broker.tls) == ("gw-0042", "plant-7", True)
    assert settings.profile_path == repo / "device-profiles" / "raspberry-pi-4b-4gb.yaml"
    assert settings.deadbands.confirm_samples == 2


def test_process_workloads_run_as_nobody_unless_configured() -> None:
    assert resolve(BASE).workload_user == "nobody"
    assert resolve(BASE, {"EDGEFLEET_WORKLOAD_USER": "edgefleet-workload"}).workload_user == (
        "edgefleet-workload"
    )
    assert resolve({**BASE, "workload_user": "-"}).workload_user == "-"  # as the agent
