"""The manifest as a whole: counts and modes, the rules across blocks, and what the app
hands its workload spec, each refusal pinned in the words an author reads."""

from __future__ import annotations

import json
from typing import Any

import pytest
from edgefleet_protocol import ProtocolError
from edgefleet_protocol.manifest import (
    AppManifest,
    ManifestError,
    load_manifest,
    with_replicas,
)
from test_manifest import with_changes

MAX_REPLICAS = 10_000
DOCKER = {"runtime": "docker", "image": "busybox", "ports": [{"container": 80, "host": 8080}]}


def load(data: dict[str, Any]) -> AppManifest:
    return load_manifest(json.dumps(data))


def refusal(data: dict[str, Any]) -> tuple[str, str]:
    with pytest.raises(ManifestError) as caught:
        load(data)
    return caught.value.field, caught.value.reason


def scaled(**block: Any) -> dict[str, Any]:
    """An autoscaled app that names no count of its own."""
    return with_changes(
        autoscale={"metric": "cpu_pct", "target": 50, "max": 4} | block, replicas=None
    )


# (why, manifest, field, the exact reason)
REFUSED: list[tuple[str, dict[str, Any], str, str]] = [
    (
        "a count over the bound",
        with_changes(replicas=MAX_REPLICAS + 1),
        "replicas",
        "Input should be less than or equal to 10000",
    ),
    (
        "a replicated app without a count",
        with_changes(replicas=None),
        "replicas",
        "is required with mode: replicated (use 0 to keep the app but run nothing)",
    ),
    (
        "a count on a daemon",
        with_changes(mode="daemon"),
        "replicas",
        "must be left out with mode: daemon (one replica runs on each matching node)",
    ),
    (
        "autoscale on a daemon",
        {**scaled(), "mode": "daemon"},
        "autoscale",
        "cannot be used with mode: daemon (its count follows the matching nodes)",
    ),
    (
        "a count below the autoscale min",
        {**scaled(min=2), "replicas": 1},
        "replicas",
        "1 is outside autoscale bounds 2..4 (leave it out to start at min)",
    ),
    (
        "a count of 0 under autoscale",
        {**scaled(), "replicas": 0},
        "replicas",
        "0 is outside autoscale bounds 1..4 (leave it out to start at min)",
    ),
    (
        "a count above the autoscale max",
        {**scaled(), "replicas": 5},
        "replicas",
        "5 is outside autoscale bounds 1..4 (leave it out to start at min)",
    ),
    (
        "a name too long for the autoscale max",
        scaled(max=11) | {"name": "a" * 61},  # starts at 1 replica, may grow to a-10
        "name",
        f"is too long for its replica names: '{'a' * 61}-10' would be 64 characters; "
        "at most 63 allowed",
    ),
    (
        "65 services used",
        with_changes(uses=[f"s{i}" for i in range(65)]),
        "uses",  # regression: was workload.uses, where the list is copied to
        "List should have at most 64 items after validation, not 65",
    ),
    (
        "a service used twice",
        with_changes(uses=["db", "db"]),
        "uses",
        "lists a service more than once",
    ),
    (
        "the app's own service used",
        with_changes(service={"name": "api", "ports": [{"port": 80}]}, uses=["api"]),
        "uses",
        "an app cannot use its own service",
    ),
    (
        "a label key with a space",
        with_changes(labels={"a b": "x"}),
        "labels",
        "label key 'a b' is not valid: 1-63 characters of letters, digits, '.', '_', '/', ':', '-'",
    ),
    (
        "a label value of 64",
        with_changes(labels={"team": "t" * 64}),
        "labels",
        "label 'team': value longer than 63 characters",
    ),
    (
        "uses inside the workload",
        with_changes(workload={"runtime": "process", "command": ["x"], "uses": ["db"]}),
        "workload.uses",  # regression: was "payload", the manifest's root
        "is filled from the app-level 'uses'; set uses beside workload, not inside it",
    ),
    (
        "a service inside the workload",
        with_changes(workload={"runtime": "process", "command": ["x"], "service": {"name": "web"}}),
        "workload.service",
        "is filled from the app-level 'service'; set service beside workload, not inside it",
    ),
    (
        "a docker service port that is not published",
        with_changes(
            workload=DOCKER,
            service={"ports": [{"name": "a", "port": 8080}, {"name": "b", "port": 80}]},
        ),
        "service.ports.1.port",
        "80 is not published: a docker workload serves on a host port, so add it to "
        "workload.ports as host",
    ),
]


@pytest.mark.parametrize(
    ("data", "field", "reason"), [r[1:] for r in REFUSED], ids=[r[0] for r in REFUSED]
)
def test_a_bad_manifest_is_refused_in_exact_words(
    data: dict[str, Any], field: str, reason: str
) -> None:
    got_field, got_reason = refusal(data)
    assert got_field == field
    assert got_reason.startswith(reason), got_reason


def test_a_count_from_0_to_the_bound_is_accepted() -> None:
    assert load(with_changes(replicas=0)).replicas == 0  # kept, running nothing
    assert load(with_changes(replicas=MAX_REPLICAS)).replicas == MAX_REPLICAS


def test_an_autoscaled_app_without_a_count_starts_at_min_or_1() -> None:
    assert load(scaled(min=3)).replicas == 3
    assert load(scaled()).replicas == 1
    assert load({**scaled(min=2), "replicas": 4}).replicas == 4
    assert load(scaled(max=10) | {"name": "a" * 61}).name == "a" * 61  # a-9 fits in 63


@pytest.mark.parametrize("low", ["2", 2.0], ids=["quoted", "float"])
def test_a_min_the_autoscaler_accepts_is_where_an_app_without_a_count_starts(low: Any) -> None:
    # Regression: autoscale.min accepts "2" and 2.0 as 2, but only an int started the
    # count, so the app was refused "replicas: is required" although the docs say a count
    # may be left out under autoscale.
    app = load(scaled(min=low))
    assert (app.replicas, app.autoscale.min if app.autoscale else None) == (2, 2)


def test_a_min_the_autoscaler_refuses_is_reported_at_autoscale_min() -> None:
    assert refusal(scaled(min=2.5)) == (
        "autoscale.min",
        "Input should be a valid integer, got a number with a fractional part",
    )
    assert refusal(scaled(min=None))[0] == "autoscale.min"


def test_a_daemon_has_no_count_and_says_so() -> None:
    daemon = load(with_changes(mode="daemon", replicas=None))
    assert (daemon.is_daemon, daemon.replicas, daemon.autoscale) == (True, None, None)
    assert load(with_changes()).is_daemon is False


def test_64_services_may_be_used() -> None:
    uses = [f"s{i}" for i in range(64)]
    app = load(with_changes(uses=uses))
    assert app.uses == uses and app.workload.uses == uses


def test_the_service_name_is_the_apps_unless_named_and_none_without_a_service() -> None:
    assert load(with_changes()).service_name is None
    assert load(with_changes(service={"mqtt_group": "g"})).service_name == "web"
    assert load(with_changes(service={"name": "api", "mqtt_group": "g"})).service_name == "api"


def test_the_update_strategy_in_force_is_the_manifests_else_the_defaults() -> None:
    assert load(with_changes()).update_strategy.model_dump() == {
        "max_parallel": "100%",
        "canary": 0,
        "auto_promote": True,
        "min_healthy_s": 5,
        "healthy_deadline_s": 120,
        "progress_deadline_s": 600,
        "auto_revert": False,
        "waves": "none",
        "wave_pause_s": 0,
        "max_failed": 0,
    }
    assert load(with_changes(update={"canary": 1})).update_strategy.canary == 1


def test_a_docker_port_without_a_host_port_serves_no_service() -> None:
    unpublished = {"runtime": "docker", "image": "busybox", "ports": [{"container": 80}]}
    field, reason = refusal(with_changes(workload=unpublished, service={"ports": [{"port": 80}]}))
    assert (field, reason.split(":")[0]) == ("service.ports.0.port", "80 is not published")
    published = load(with_changes(workload=DOCKER, service={"ports": [{"port": 8080}]}))
    assert published.service is not None and published.service.ports[0].port == 8080


def test_the_workload_spec_carries_the_service_and_uses_of_the_app() -> None:
    app = load(with_changes(service={"ports": [{"name": "http", "port": 80}]}, uses=["db"]))
    binding = app.workload.model_dump(exclude_none=True)
    assert binding["service"] == {"name": "web", "ports": {"http": 80}}
    assert binding["uses"] == ["db"]
    grouped = load(with_changes(service={"mqtt_group": "ingest"}))
    assert grouped.workload.model_dump(exclude_none=True)["service"] == {
        "name": "web",
        "ports": {},
        "mqtt_group": "ingest",
    }


@pytest.mark.parametrize(
    "changes",
    [
        {"service": {"ports": [{"port": 80}]}, "uses": ["db"]},
        {"service": {"name": "api", "mqtt_group": "g"}},
        {},
    ],
    ids=["service and uses", "named group", "neither"],
)
def test_a_dumped_manifest_validates_again_unchanged(changes: dict[str, Any]) -> None:
    # What the orchestrator stores (a dump, the binding spelled out in the workload) must
    # load again as the same app, or every restart would refuse its own apps.
    app = load(with_changes(**changes))
    again = AppManifest.model_validate(json.loads(app.model_dump_json()))
    assert again == app


def test_a_malformed_service_or_uses_is_reported_where_it_was_written() -> None:
    assert refusal(with_changes(uses=["Bad_Name"]))[0] == "uses.0"
    assert refusal(with_changes(uses="db"))[0] == "uses"
    assert refusal(with_changes(service={"ports": "80"}))[0] == "service.ports"


def test_rescaling_is_validated_again() -> None:
    app = load(with_changes(name="a" * 61))
    assert with_replicas(app, 10).replicas == 10
    with pytest.raises(ProtocolError) as caught:
        with_replicas(app, 11)
    assert caught.value.field == "name"
    with pytest.raises(ProtocolError) as caught:
        with_replicas(load(with_changes(mode="daemon", replicas=None)), 2)
    assert caught.value.field == "replicas"
