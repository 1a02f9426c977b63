"""``rollout promote|resume|undo --watch`` follow the rollout their command changed: which
status is the current one, the retained one or the command's reply (pure)."""

from __future__ import annotations

from typing import Any

import pytest
from edgefleet_cli.commands.rollout import _newer


def status(revision: int, phase: str, updated_at: float) -> dict[str, Any]:
    return {"revision": revision, "phase": phase, "updated_at": updated_at}


@pytest.mark.parametrize(
    ("retained", "replied", "revision", "expected"),
    [
        pytest.param(status(2, "succeeded", 5.0), None, 3, None,
                     id="an older revision's retained status is not the new rollout's end"),
        pytest.param(status(2, "awaiting-promotion", 5.0), status(2, "progressing", 6.0), 2,
                     "progressing", id="the reply wins over a retained status from before it"),
        pytest.param(status(2, "succeeded", 9.0), status(2, "progressing", 6.0), 2,
                     "succeeded", id="a retained status newer than the reply wins"),
        pytest.param(status(3, "canary", 7.0), None, 3, "canary",
                     id="the new revision's retained status is followed"),
        pytest.param(None, status(2, "reverting", 6.0), 2, "reverting",
                     id="the reply stands until a status is retained"),
    ],
)  # fmt: skip
def test_which_status_a_watch_shows(
    retained: dict[str, Any] | None, replied: dict[str, Any] | None, revision: int,
    expected: str | None,
) -> None:  # fmt: skip
    found = _newer(retained, replied, revision)
    assert (found or {}).get("phase") == expected
