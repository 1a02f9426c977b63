"""Small pieces of the protocol package pinned exactly (each was a surviving mutant of
`make mutate`, mutate/results/): what an operator reads in an event or a reply."""

from __future__ import annotations

from edgefleet_protocol import ProtocolError


def test_a_protocol_error_reads_field_colon_reason_and_serialises_both() -> None:
    err = ProtocolError("workloads.0.name", "is not a valid workload id")
    assert str(err) == "workloads.0.name: is not a valid workload id"
    assert err.as_dict() == {"field": "workloads.0.name", "reason": "is not a valid workload id"}
    assert isinstance(err, ValueError)
