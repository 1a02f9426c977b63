"""Placement: which node runs which replica, and why a replica runs nowhere.

Pure decision code for the reconcile loop: :func:`place_all` / :func:`place_app` take the
apps, a :class:`NodeView` per node and the current :class:`Assignment` list, and return an
:class:`AppPlacement` per app. The pipeline is an ordered list of filters (:mod:`.filters`)
and scorers (:mod:`.scorers`); :mod:`.pipeline` applies them with the keep / move / scale
rules.
"""

from edgefleet_orchestrator.placement.model import (
    AppPlacement,
    Assignment,
    NodeView,
    Rejection,
    Size,
    group_reasons,
    node_view_from,
)
from edgefleet_orchestrator.placement.pipeline import place_all, place_app

__all__ = [
    "AppPlacement",
    "Assignment",
    "NodeView",
    "Rejection",
    "Size",
    "group_reasons",
    "node_view_from",
    "place_all",
    "place_app",
]
