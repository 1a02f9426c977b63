"""A memoised fleet pass places exactly what a fresh pass places, pass after pass, while
the fleet goes through random changes (nodes leaving, cordoned or offline for longer and
longer, apps scaled or added, replicas asked to leave) and through passes where nothing
changed; and a pass with nothing changed is answered by the memo, not placed again."""

from __future__ import annotations

import dataclasses
import random

import pytest
from edgefleet_orchestrator.placement import (
    AppPlacement,
    Assignment,
    NodeView,
    Rejection,
    place_all,
)
from edgefleet_orchestrator.placement.memo import PlacementMemo
from edgefleet_protocol.manifest import AppManifest

from bench.placement import synthetic_apps, synthetic_fleet


def _assignments(results: dict[str, AppPlacement]) -> list[Assignment]:
    return [a for name in sorted(results) for a in results[name].assignments]


def _copies(nodes: list[NodeView]) -> list[NodeView]:
    """Equal views in new objects, as the shell builds them from its registry every pass."""
    return [dataclasses.replace(n) for n in nodes]


class _Walk:
    """A fleet walked through random steps; each step is one pass, memoised and fresh."""

    def __init__(self, seed: int) -> None:
        self.rng = random.Random(seed)
        self.nodes = synthetic_fleet(self.rng.randint(5, 40), self.rng)
        self.apps: list[AppManifest] = synthetic_apps(self.rng.randint(1, 80), self.rng, per_app=4)
        self.current: list[Assignment] = []
        self.offline: dict[str, float] = {}
        self.leaving: dict[str, dict[str, Rejection]] = {}
        self.seed = seed

    def change(self) -> str:
        rng = self.rng
        what = rng.choice(("nothing", "nothing", "time", "node", "cordon", "scale", "leave"))
        if what == "time":  # offline nodes are gone longer: some may cross a grace
            for node in self.offline:
                self.offline[node] += rng.choice((1.0, 5.0, 30.0))
        elif what == "node" and len(self.nodes) > 2:
            gone = self.nodes.pop(rng.randrange(len(self.nodes)))
            self.offline[gone.node] = 0.0
        elif what == "cordon":
            i = rng.randrange(len(self.nodes))
            self.nodes[i] = dataclasses.replace(self.nodes[i], cordoned=not self.nodes[i].cordoned)
        elif what == "scale":
            i = rng.randrange(len(self.apps))
            app = self.apps[i]
            if app.replicas is not None:
                self.apps[i] = app.model_copy(update={"replicas": rng.randint(0, 8)})
        elif what == "leave" and self.current:
            a = rng.choice(self.current)
            self.leaving = {a.app: {a.replica: Rejection("drain", f"node {a.node} drains")}}
        if what != "leave":
            self.leaving = {}
        return what

    def passes(self, memo: PlacementMemo) -> tuple[dict[str, AppPlacement], ...]:
        kwargs = {"seed": self.seed, "offline_for_s": dict(self.offline), "leaving": self.leaving}
        remembered = place_all(
            list(self.apps), _copies(self.nodes), list(self.current), memo=memo, **kwargs
        )
        fresh = place_all(list(self.apps), _copies(self.nodes), list(self.current), **kwargs)
        return remembered, fresh


@pytest.mark.parametrize("seed", range(10))
def test_a_memoised_pass_places_exactly_what_a_fresh_pass_places(seed: int) -> None:
    walk = _Walk(seed)
    memo = PlacementMemo()
    unchanged_passes = 0
    for _ in range(25):
        what = walk.change()
        hits = memo.hits
        remembered, fresh = walk.passes(memo)
        assert remembered == fresh, f"after a change of {what!r}"
        if memo.hits > hits:
            unchanged_passes += 1
        walk.current = _assignments(fresh)
    assert 0 < memo.hits == unchanged_passes and memo.hits + memo.misses == 25


def test_a_pass_with_nothing_changed_is_answered_from_the_memo() -> None:
    rng = random.Random(7)
    nodes = synthetic_fleet(60, rng)
    apps = synthetic_apps(200, rng)
    memo = PlacementMemo()
    first = place_all(apps, nodes, [], seed=3, memo=memo)
    kept = place_all(apps, _copies(nodes), _assignments(first), seed=3, memo=memo)
    assert (memo.hits, memo.misses) == (0, 2)
    again = place_all(apps, _copies(nodes), _assignments(kept), seed=3, memo=memo)
    assert (memo.hits, memo.misses) == (1, 2)
    assert again == kept
    assert all(not p.changed for p in again.values())


def test_offline_time_within_the_grace_is_a_hit_and_crossing_the_grace_is_not() -> None:
    rng = random.Random(11)
    nodes = synthetic_fleet(30, rng)
    apps = synthetic_apps(60, rng)  # every app has the default disconnect grace
    grace = apps[0].disconnect.grace_s
    memo = PlacementMemo()
    held = _assignments(place_all(apps, nodes, [], seed=1))
    gone = held[0].node
    rest = [n for n in nodes if n.node != gone]
    early = place_all(apps, rest, held, seed=1, offline_for_s={gone: 1.0}, memo=memo)
    later = place_all(apps, rest, held, seed=1, offline_for_s={gone: grace - 0.5}, memo=memo)
    assert memo.hits == 1 and later == early
    assert any(a.node == gone for a in _assignments(later)), "within grace the replicas wait"
    beyond = place_all(apps, rest, held, seed=1, offline_for_s={gone: grace}, memo=memo)
    assert memo.hits == 1, "the grace ran out: the pass is placed again"
    assert beyond == place_all(apps, rest, held, seed=1, offline_for_s={gone: grace})
    assert all(a.node != gone for a in _assignments(beyond))
