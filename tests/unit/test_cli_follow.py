"""``deploy --wait`` beyond "every replica runs" (cli/commands/follow.py, pure): it follows
the new revision's rollout and gives up early when no node qualifies."""

from __future__ import annotations

from typing import Any

from edgefleet_cli.commands.follow import never_placed, verdict
from edgefleet_protocol import AppStatus, Unplaced

UPDATED = {"app": "web", "action": "updated", "version": 3, "revision": 2, "rollout": "progressing"}


def status(placed: int, *reasons: str) -> AppStatus:
    unplaced = [Unplaced(count=2 - placed, reasons=list(reasons))] if reasons else []
    return AppStatus(app="web", state="degraded", desired=2, placed=placed, running=placed,
                     unplaced=unplaced, updated_at=1.0)  # fmt: skip


def rollout(revision: int, phase: str, **extra: Any) -> dict[str, Any]:
    return {"app": "web", "revision": revision, "phase": phase, **extra}


def test_no_node_qualifies_only_when_every_reason_is_what_the_nodes_are() -> None:
    assert never_placed(status(0, "3 nodes: label role=satellite required", "1 node: arch x"))
    assert not never_placed(status(0, "3 nodes: offline"))
    assert not never_placed(status(1, "1 node: label role=satellite required"))


def test_a_new_revision_is_done_only_when_its_rollout_succeeded() -> None:
    assert not verdict(UPDATED, None, rollout(2, "progressing"), fresh=True, converged=True).done
    assert not verdict(UPDATED, None, rollout(1, "succeeded"), fresh=True, converged=True).done
    assert verdict(UPDATED, None, rollout(2, "succeeded"), fresh=True, converged=True).done


def test_a_failed_or_reverted_revision_fails_with_its_reasons() -> None:
    failed = rollout(2, "reverted", reasons=["1 replica(s) failed"], failed={"web-0": "crash"})
    v = verdict(UPDATED, None, failed, fresh=True, converged=True)
    assert v.failure[0] == "error: revision 2 of web reverted: 1 replica(s) failed"
    assert "  web-0: crash" in v.failure
    later = verdict(UPDATED, None, rollout(3, "progressing"), fresh=True, converged=False)
    assert "superseded by revision 3" in later.failure[0]


def test_a_deploy_without_a_new_revision_waits_for_its_replicas_only() -> None:
    created = {"app": "web", "action": "created", "revision": 1}
    assert verdict(created, None, None, fresh=True, converged=True).done
    assert not verdict(created, None, None, fresh=True, converged=False).done
