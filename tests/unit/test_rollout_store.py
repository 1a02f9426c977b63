"""Revisions and rollout state in the SQLite store (migration 3), and the ``update``
block's refusals: each names the field to change."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from edgefleet_orchestrator.store.base import KEEP_REVISIONS
from edgefleet_orchestrator.store.sqlite import open_store
from edgefleet_protocol import ProtocolError
from edgefleet_protocol.manifest import load_manifest


def manifest(name: str, version: str, **update: object) -> str:
    body: dict[str, object] = {
        "name": name,
        "replicas": 2,
        "workload": {"runtime": "process", "command": ["/bin/app", version]},
    }
    if update:
        body["update"] = update
    return json.dumps(body)


def test_revisions_are_numbered_per_app_and_only_the_last_ten_are_kept(tmp_path: Path) -> None:
    with open_store(tmp_path, synchronous="NORMAL") as store:
        store.put_app("web", manifest("web", "v0"))
        numbers = [store.put_revision("web", manifest("web", f"v{i}")) for i in range(12)]
        assert numbers == list(range(1, 13))
        kept = [r.revision for r in store.revisions("web")]
        assert kept == list(range(13 - KEEP_REVISIONS, 13))
        store.put_rollout("web", '{"phase": "progressing"}')
    with open_store(tmp_path, synchronous="NORMAL") as again:
        snap = again.load()
        assert [r.revision for r in snap.revisions["web"]] == kept
        assert json.loads(snap.rollouts["web"]) == {"phase": "progressing"}
        again.delete_app("web")
        after = again.load()
        assert "web" not in after.revisions and "web" not in after.rollouts


@pytest.mark.parametrize(
    ("update", "field"),
    [
        ({"max_parallel": 0}, "update.max_parallel"),
        ({"max_parallel": "101%"}, "update.max_parallel"),
        ({"canary": "ten"}, "update.canary"),
        ({"max_failed": -1}, "update.max_failed"),
        ({"min_healthy_s": 30, "healthy_deadline_s": 10}, "update.healthy_deadline_s"),
        ({"healthy_deadline_s": 100, "progress_deadline_s": 50}, "update.progress_deadline_s"),
        ({"auto_promote": False}, "update.auto_promote"),
        ({"wave_pause_s": 5}, "update.wave_pause_s"),
        ({"waves": "rack"}, "update.waves"),
        ({"max_paralel": 2}, "update.max_paralel"),
    ],
)
def test_a_bad_update_block_is_refused_naming_the_field(
    update: dict[str, object], field: str
) -> None:
    with pytest.raises(ProtocolError) as caught:
        load_manifest(manifest("web", "v1", **update))
    assert caught.value.field == field


def test_an_update_block_with_sensible_values_is_accepted() -> None:
    app = load_manifest(
        manifest("web", "v1", max_parallel="25%", canary=1, auto_promote=False, min_healthy_s=2,
                 healthy_deadline_s=8, auto_revert=True, waves="site", wave_pause_s=1)
    )  # fmt: skip
    assert app.update_strategy.max_parallel == "25%"
    assert load_manifest(manifest("web", "v1")).update_strategy.max_parallel == "100%"
