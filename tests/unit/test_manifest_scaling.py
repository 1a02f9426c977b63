"""The scaling parts of a manifest: autoscale, resources.auto and disruption are validated
at the edge, and every bad value is refused naming its field and why."""

from __future__ import annotations

import json
from typing import Any

import pytest
from edgefleet_protocol import ProtocolError, spec_hash
from edgefleet_protocol.manifest import ManifestError, load_manifest, with_replicas
from edgefleet_protocol.workload import WorkloadSpec


def manifest(**changes: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "name": "q",
        "workload": {"runtime": "simulated"},
        "autoscale": {"metric": "queue.depth", "target": 10, "min": 1, "max": 4},
    }
    body.update(changes)
    return body


def load(body: dict[str, Any]) -> Any:
    return load_manifest(json.dumps(body))


def test_an_autoscaled_app_starts_at_min_when_it_names_no_count() -> None:
    app = load(manifest(autoscale={"metric": "cpu_pct", "target": 60, "min": 2, "max": 5}))
    assert app.replicas == 2
    assert app.autoscale is not None
    assert (app.autoscale.tolerance, app.autoscale.scale_up_cooldown_s) == (0.1, 30.0)
    assert app.autoscale.scale_down_cooldown_s == 300.0


def test_the_autoscaler_can_rewrite_the_count_within_its_bounds() -> None:
    app = load(manifest())
    assert with_replicas(app, 4).replicas == 4
    with pytest.raises(ProtocolError) as caught:
        with_replicas(app, 5)
    assert caught.value.field == "replicas"


BAD = [
    (
        "min above max",
        manifest(autoscale={"metric": "m", "target": 1, "min": 5, "max": 2}),
        "autoscale.min",
        "5 is above max 2",
    ),
    (
        "a negative target",
        manifest(autoscale={"metric": "m", "target": -3, "max": 2}),
        "autoscale.target",
        "greater than 0",
    ),
    (
        "a zero target",
        manifest(autoscale={"metric": "m", "target": 0, "max": 2}),
        "autoscale.target",
        "greater than 0",
    ),
    (
        "a tolerance of 100 %",
        manifest(autoscale={"metric": "m", "target": 1, "max": 2, "tolerance": 1}),
        "autoscale.tolerance",
        "less than 1",
    ),
    (
        "a metric name with a space",
        manifest(autoscale={"metric": "queue depth", "target": 1, "max": 2}),
        "autoscale.metric",
        "metric 'queue depth' is not valid",
    ),
    (
        "a count outside the bounds",
        manifest(replicas=9),
        "replicas",
        "9 is outside autoscale bounds 1..4",
    ),
    (
        "autoscale on a daemon",
        manifest(mode="daemon"),
        "autoscale",
        "cannot be used with mode: daemon",
    ),
    (
        "an unknown autoscale key",
        manifest(autoscale={"metric": "m", "target": 1, "max": 2, "cooldown": 5}),
        "autoscale.cooldown",
        "unknown field(s) cooldown",
    ),
    (
        "max_unavailable 0",
        manifest(disruption={"max_unavailable": 0}),
        "disruption.max_unavailable",
        "greater than or equal to 1",
    ),
    (
        "auto bounds upside down",
        manifest(
            workload={
                "runtime": "simulated",
                "resources": {"auto": {"min_cpu": 2, "max_cpu": 1}, "cpu": 1},
            }
        ),
        "workload.resources.auto",
        "min_cpu 2 is above max_cpu 1",
    ),
    (
        "a lone auto bound",
        manifest(workload={"runtime": "simulated", "resources": {"auto": {"max_memory_mb": 9}}}),
        "workload.resources.auto",
        "min_memory_mb is required with max_memory_mb",
    ),
    (
        "a starting size outside its auto bounds",
        manifest(
            workload={
                "runtime": "simulated",
                "resources": {"cpu": 2, "auto": {"min_cpu": 0.1, "max_cpu": 1}},
            }
        ),
        "workload.resources",
        "cpu 2 is outside auto bounds 0.1..1",
    ),
    (
        "an empty auto",
        manifest(workload={"runtime": "simulated", "resources": {"auto": {}}}),
        "workload.resources.auto",
        "needs min_cpu/max_cpu",
    ),
]


@pytest.mark.parametrize(("name", "body", "field", "words"), BAD, ids=[b[0] for b in BAD])
def test_bad_scaling_settings_are_refused_naming_the_field(
    name: str, body: dict[str, Any], field: str, words: str
) -> None:
    with pytest.raises(ManifestError) as caught:
        load(body)
    assert caught.value.field == field, caught.value
    assert words in caught.value.reason, caught.value


def test_auto_resources_leave_the_hash_of_specs_without_them_unchanged() -> None:
    plain = WorkloadSpec(runtime="simulated")
    assert spec_hash(plain) == spec_hash(WorkloadSpec.model_validate({"runtime": "simulated"}))
    sized = WorkloadSpec.model_validate(
        {"runtime": "simulated", "resources": {"auto": {"min_cpu": 0.05, "max_cpu": 1}}}
    )
    assert sized.resources.fixed() == plain.resources
    assert spec_hash(sized.model_copy(update={"resources": sized.resources.fixed()})) == (
        spec_hash(plain)
    )
