"""Two orchestrators on one broker (#12 defect 3): which one yields, as a table."""

from __future__ import annotations

import pytest
from edgefleet_orchestrator.service.presence import judge
from edgefleet_protocol import OrchestratorStatus

ME = OrchestratorStatus(state="online", since=100.0, instance="bbbb")


def status(state: str, since: float, instance: str | None) -> OrchestratorStatus:
    return OrchestratorStatus(state=state, since=since, instance=instance)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("other", "retained", "announced", "verdict"),
    [
        (status("online", 100.0, "bbbb"), True, True, "ignore"),  # our own
        (status("offline", 50.0, None), True, False, "ignore"),  # an old version's
        (status("online", 50.0, "aaaa"), True, False, "yield"),  # an earlier one is online
        (status("online", 50.0, "aaaa"), False, True, "yield"),
        (status("online", 100.0, "aaaa"), False, True, "yield"),  # same start: ids decide
        (status("offline", 50.0, "aaaa"), True, False, "reassert"),  # a previous run's will
        (status("offline", 50.0, "aaaa"), False, True, "reassert"),  # its late will, live
        (status("offline", 50.0, "aaaa"), True, True, "yield"),  # it took over in between
        (status("online", 200.0, "cccc"), False, True, "reassert"),  # a later one: it yields
        (status("offline", 200.0, "cccc"), True, True, "reassert"),
    ],
)
def test_which_orchestrator_yields(
    other: OrchestratorStatus, retained: bool, announced: bool, verdict: str
) -> None:
    assert judge(ME, other, retained=retained, announced=announced) == verdict


def test_exactly_one_of_two_yields_whoever_looks() -> None:
    first = status("online", 10.0, "aaaa")
    second = status("online", 20.0, "zzzz")
    assert judge(first, second, retained=False, announced=True) == "reassert"
    assert judge(second, first, retained=False, announced=True) == "yield"
