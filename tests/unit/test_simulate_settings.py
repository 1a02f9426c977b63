"""Settings of ``edgefleet-agent simulate``: parsing, fault specs, refusals, fd arithmetic."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from edgefleet_agent.settings import SettingsError
from edgefleet_agent.simulate.settings import (
    FD_RESERVE,
    FaultSpec,
    SimulateSettings,
    check_settings,
    faultable_within,
    fd_budget,
    parse_fault,
    parse_weights,
    resolve_simulate_settings,
)


def flags(**values: Any) -> dict[str, Any]:
    base: dict[str, Any] = {"count": "10", "sites": "2"}
    base.update(values)
    return base


def test_defaults_fill_everything_but_count_and_sites() -> None:
    settings = resolve_simulate_settings(flags())
    assert (settings.count, settings.sites) == (10, 2)
    assert (settings.broker.host, settings.broker.port) == ("127.0.0.1", 1883)
    assert settings.heartbeat_s == 60.0 and settings.keepalive_s == 60
    assert settings.prefix == "sim" and settings.probes == ("camera-hub",)
    assert settings.faultable == 0 and settings.faults == ()
    assert settings.state_dir is None


@pytest.mark.parametrize(
    ("values", "faultable"),
    [
        ({}, 0),
        ({"control": True}, None),
        ({"kill": ["1@1"]}, None),
        ({"flap": ["1@1:1/1"]}, None),
        ({"faultable": "3"}, 3),
        ({"faultable": "all"}, 10),
        ({"faultable": "0", "control": True}, 0),
    ],
)
def test_nodes_get_fault_injecting_links_only_when_faults_are_asked_for(
    values: dict[str, Any], faultable: int | None
) -> None:
    assert resolve_simulate_settings(flags(**values)).faultable == faultable


def test_command_line_strings_become_typed_settings() -> None:
    settings = resolve_simulate_settings(
        flags(
            seed="7",
            broker="mqtt://127.0.0.1:2883",
            root="lab/v1",
            state_dir="/tmp/x",
            profiles_dir="/tmp/profiles",
            profile_weights=["raspberry-pi-4b-4gb=3", "teltonika-rutx11"],
            probes=["plc,camera-hub"],
            assign="random",
            heartbeat_s="30",
            keepalive_s="5",
            failure_rate="0.25",
            faultable="all",
            kill=["2@5"],
            cut=["1@10+3"],
            flap=["1@1:0.5/2"],
        )
    )
    assert settings.seed == 7 and settings.broker.port == 2883 and settings.root == "lab/v1"
    assert settings.state_dir == Path("/tmp/x")
    assert settings.profiles_dir == Path("/tmp/profiles")
    assert settings.profile_weights == {"raspberry-pi-4b-4gb": 3, "teltonika-rutx11": 1}
    assert settings.probes == ("plc", "camera-hub")
    assert settings.assign == "random"
    assert (settings.heartbeat_s, settings.keepalive_s, settings.failure_rate) == (30, 5, 0.25)
    assert settings.faultable == 10
    assert settings.faults == (
        FaultSpec("kill", 2, 5.0),
        FaultSpec("cut", 1, 10.0, for_s=3.0),
        FaultSpec("flap", 1, 1.0, down_s=0.5, up_s=2.0),
    )


@pytest.mark.parametrize(
    ("kind", "text", "expected"),
    [
        ("kill", "5@30", FaultSpec("kill", 5, 30.0)),
        ("kill", " 1@0 ", FaultSpec("kill", 1, 0.0)),
        ("cut", "5@30", FaultSpec("cut", 5, 30.0)),
        ("cut", "5@30+20", FaultSpec("cut", 5, 30.0, for_s=20.0)),
        ("cut", "2@1.5+0.5", FaultSpec("cut", 2, 1.5, for_s=0.5)),
        ("flap", "3@10:2/8", FaultSpec("flap", 3, 10.0, down_s=2.0, up_s=8.0)),
    ],
)
def test_fault_specs_are_n_at_t_with_a_suffix_for_durations(
    kind: Any, text: str, expected: FaultSpec
) -> None:
    assert parse_fault(kind, text) == expected


@pytest.mark.parametrize(
    ("kind", "text", "says"),
    [
        ("kill", "5", "expected N@T"),
        ("kill", "five@30", "expected N@T"),
        ("kill", "0@30", "at least one node"),
        ("kill", "5@30+20", "only --cut takes +SECONDS"),
        ("kill", "5@30:1/1", "only --flap takes :DOWN/UP"),
        ("cut", "5@-1", "expected N@T or N@T+SECONDS"),
        ("cut", "5@30+0", "must last > 0"),
        ("flap", "3@10", "expected N@T:DOWN/UP"),
        ("flap", "3@10:0/8", "must be > 0"),
        ("flap", "3@10+5", "only --cut takes +SECONDS"),
    ],
)
def test_malformed_fault_specs_are_refused_naming_the_flag(kind: Any, text: str, says: str) -> None:
    with pytest.raises(SettingsError) as caught:
        parse_fault(kind, text)
    assert caught.value.setting == kind
    assert says in str(caught.value)


@pytest.mark.parametrize(
    ("values", "setting", "says"),
    [
        ({"count": None}, "count", "is required"),
        ({"sites": None}, "sites", "is required"),
        ({"count": "0"}, "count", ">= 1"),
        ({"count": "-5"}, "count", ">= 1"),
        ({"count": "ten"}, "count", "whole number"),
        ({"count": "2.5"}, "count", "whole number"),
        ({"sites": "0"}, "sites", ">= 1"),
        ({"sites": "11"}, "sites", "11 sites cannot each hold one of 10"),
        ({"failure_rate": "1.5"}, "failure_rate", "<= 1"),
        ({"keepalive_s": "2"}, "keepalive_s", ">= 5"),
        ({"heartbeat_s": "nan"}, "heartbeat_s", ">= 1"),
        ({"broker": "http://x"}, "broker", "scheme"),
        ({"root": "a/#"}, "root", "not a valid topic root"),
        ({"assign": "striped"}, "assign", "round-robin, random"),
        ({"log_level": "loud"}, "log_level", "debug"),
        ({"faultable": "11"}, "faultable", "between 0 and --count"),
        ({"faultable": "1", "kill": ["2@1"]}, "faultable", "need 2 faultable"),
        ({"kill": ["6@1"], "cut": ["5@2"]}, "count", "need 11 nodes"),
        ({"profile_weights": ["a", "a=2"]}, "profile", "named twice"),
        ({"profile_weights": ["a=0"]}, "profile", ">= 1"),
    ],
)
def test_impossible_settings_are_refused_naming_the_setting(
    values: dict[str, Any], setting: str, says: str
) -> None:
    with pytest.raises(SettingsError) as caught:
        resolve_simulate_settings(flags(**values))
    assert caught.value.setting == setting
    assert says in str(caught.value)


@pytest.mark.parametrize(
    ("settings", "setting"),
    [
        (SimulateSettings(count=0, sites=1), "count"),
        (SimulateSettings(count=5, sites=6), "sites"),
        (SimulateSettings(count=5, sites=1, failure_rate=-0.1), "failure_rate"),
        (SimulateSettings(count=5, sites=1, start_delay_s=float("nan")), "start_delay_s"),
        (SimulateSettings(count=5, sites=1, keepalive_s=1), "keepalive_s"),
        (SimulateSettings(count=5, sites=1, faultable=6), "faultable"),
    ],
)
def test_settings_built_in_code_are_checked_like_the_command_line(
    settings: SimulateSettings, setting: str
) -> None:
    with pytest.raises(SettingsError) as caught:
        check_settings(settings)
    assert caught.value.setting == setting


def test_profile_weights_accept_repeats_and_commas() -> None:
    assert parse_weights(["a=2,b", "c=5"]) == {"a": 2, "b": 1, "c": 5}


def test_the_ready_timeout_grows_with_the_fleet_unless_set() -> None:
    assert SimulateSettings(count=1000, sites=1).ready_timeout() == pytest.approx(40.0)
    assert SimulateSettings(count=1000, sites=1, ready_timeout_s=5).ready_timeout() == 5


@pytest.mark.parametrize(
    ("count", "faultable", "needed"),
    [
        (1000, 0, 1000 + FD_RESERVE),
        (1000, 1000, 4000 + FD_RESERVE),
        (1000, 10, 990 + 40 + FD_RESERVE),
    ],
)
def test_the_fd_budget_counts_one_per_direct_node_and_four_per_faultable_one(
    count: int, faultable: int, needed: int
) -> None:
    assert fd_budget(count, faultable) == needed


@pytest.mark.parametrize(
    ("count", "limit", "faultable"),
    [
        (1000, 20_000, 1000),
        (5000, 20_000, (20_000 - 5000 - FD_RESERVE) // 3),
        (10_000, 20_000, (20_000 - 10_000 - FD_RESERVE) // 3),
        (20_000, 20_000, 0),
    ],
)
def test_auto_makes_as_many_nodes_faultable_as_the_limit_allows(
    count: int, limit: int, faultable: int
) -> None:
    chosen = faultable_within(count, limit)
    assert chosen == faultable
    assert chosen == 0 or fd_budget(count, chosen) <= limit
