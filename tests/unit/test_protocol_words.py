"""Small pieces of the protocol package pinned exactly (each was a surviving mutant of
`make mutate`, mutate/results/): what an operator reads in an event or a reply."""

from __future__ import annotations

import importlib
import pkgutil
from typing import Any

import pytest
from edgefleet_protocol import ProtocolError
from edgefleet_protocol import bounds as b
from edgefleet_protocol.base import FORBID_UNKNOWN, StrictSpec, WireModel
from edgefleet_protocol.codec import validate as codec_validate
from edgefleet_protocol.compliance import MAX_LISTED, ComplianceReport, Refusal
from pydantic import Field, TypeAdapter, ValidationError


def test_a_protocol_error_reads_field_colon_reason_and_serialises_both() -> None:
    err = ProtocolError("workloads.0.name", "is not a valid workload id")
    assert str(err) == "workloads.0.name: is not a valid workload id"
    assert err.as_dict() == {"field": "workloads.0.name", "reason": "is not a valid workload id"}
    assert isinstance(err, ValueError)


def test_every_protocol_module_exports_exactly_names_it_defines() -> None:
    """`from edgefleet_protocol.x import *` must work: each ``__all__`` is a list of names
    the module has."""
    import edgefleet_protocol

    for info in pkgutil.walk_packages(edgefleet_protocol.__path__, "edgefleet_protocol."):
        module = importlib.import_module(info.name)
        names = vars(module).get("__all__", ())  # a module that sets it sets a list
        assert isinstance(names, list | tuple), module.__name__
        missing = [n for n in names if not hasattr(module, n)]
        assert not missing, (module.__name__, missing)
    assert all(hasattr(edgefleet_protocol, n) for n in edgefleet_protocol.__all__)


# -- bounds (docs/protocol.md "Bounds"): the figures themselves, and both ends -----------------


def test_the_bounds_are_the_documented_figures() -> None:
    assert (b.MAX_SAFE_INT, b.MAX_TIMESTAMP) == (9_007_199_254_740_991, 1e10)
    assert (b.MAX_CPU_CORES, b.MAX_MEMORY_MB, b.MAX_DISK_MB) == (1024, 4_194_304, 1_073_741_824)
    assert (b.MAX_BANDWIDTH_MBPS, b.MAX_LATENCY_MS) == (1_000_000, 3_600_000)
    assert (b.MAX_CPU_PCT, b.MAX_LOAD, b.MAX_METRIC) == (102_400, 1_000_000, 1e15)


@pytest.mark.parametrize(
    ("kind", "lowest", "highest"),
    [
        (b.Counter, 0, 9_007_199_254_740_991),
        (b.Timestamp, 0, 1e10),
        (b.Percent, 0, 100),
        (b.CpuPercent, 0, 102_400),
        (b.LatencyMs, 0, 3_600_000),
        (b.Metric, -1e15, 1e15),
        (b.Port, 1, 65_535),
    ],
    ids=["counter", "timestamp", "percent", "cpu-percent", "latency", "metric", "port"],
)
def test_each_bounded_number_takes_both_ends_and_nothing_beyond(
    kind: Any, lowest: float, highest: float
) -> None:
    adapter: TypeAdapter[Any] = TypeAdapter(kind)
    assert adapter.validate_python(lowest) == lowest
    assert adapter.validate_python(highest) == highest
    step = 1 if isinstance(highest, int) else highest / 1e6
    for beyond in (lowest - step, highest + step):
        with pytest.raises(ValidationError):
            adapter.validate_python(beyond)


# -- the base models' configuration, on models of the test's own --------------------------------


class _Wire(WireModel):
    x: float = 0.0
    y: int = Field(default=0, alias="why")


class _Spec(StrictSpec):
    a: int = 0
    b: float = 0.0


def test_wire_models_are_frozen_finite_and_take_a_field_by_name_or_alias() -> None:
    assert _Wire.model_validate({"why": 1}).y == 1
    assert _Wire.model_validate({"y": 2}).y == 2  # populate_by_name
    assert _Wire.model_validate({"x": 1, "unknown": 3}).x == 1.0  # extra ignored
    with pytest.raises(ValidationError):
        _Wire.model_validate({"x": float("inf")})
    with pytest.raises(ValidationError):
        _Wire().x = 2.0  # type: ignore[misc]


def test_strict_specs_are_frozen_finite_and_refuse_unknown_fields_only_when_asked() -> None:
    assert FORBID_UNKNOWN == "forbid_unknown"
    assert codec_validate(_Spec, {"a": 1, "zz": 2}).a == 1
    with pytest.raises(ProtocolError) as caught:
        codec_validate(_Spec, {"a": 1, "zz": 2, "yy": 3}, forbid_unknown=True)
    assert caught.value.reason == "unknown field(s) yy, zz; allowed: a, b"
    with pytest.raises(ValidationError):
        _Spec.model_validate({"b": float("nan")})
    with pytest.raises(ValidationError):
        _Spec().a = 2  # type: ignore[misc]


# -- compliance reports (docs/protocol.md): every length bound at both ends --------------------


def report(**over: Any) -> dict[str, Any]:
    return {"v": 1, "node": "n1", "site": "s1", "ts": 1.0, "agent_version": "1", "compliant": True,
            **over}  # fmt: skip


@pytest.mark.parametrize(
    ("field", "longest"),
    [("agent_version", "v" * 64), ("policy_hash", "h" * 80), ("violations", ["x"] * 256),
     ("drift", ["x"] * 256)],
)  # fmt: skip
def test_a_compliance_report_takes_each_field_up_to_its_bound(field: str, longest: Any) -> None:
    assert getattr(ComplianceReport.model_validate(report(**{field: longest})), field) == longest
    with pytest.raises(ValidationError):
        ComplianceReport.model_validate(report(**{field: longest + longest[:1]}))


def test_a_refusal_holds_a_field_and_reason_up_to_their_bounds() -> None:
    assert MAX_LISTED == 256
    ok = {"ts": 1.0, "field": "f" * 128, "reason": "r" * 4096}
    assert Refusal.model_validate(ok).reason == "r" * 4096
    for key, value in (("field", "f" * 129), ("reason", "r" * 4097)):
        with pytest.raises(ValidationError):
            Refusal.model_validate({**ok, key: value})
    assert ComplianceReport.model_validate(report()).signed is False
