"""What a command acts on: the app or node it names, and the sites access judges it by.

Pure. Who calls it: the command intake (:mod:`edgefleet_orchestrator.service.commands`),
for every command whose arguments parsed: :func:`target_of` names the target in the audit
trail, :func:`access_target` gives :func:`.roles.decide` its sites. Why here rather than in
the shell: both are access decisions (which app a deploy claims, which sites scope it — a
deploy's own ``placement.sites``, what the app *will* be; any other app verb's stored app),
and here they are table-tested without a store or a broker.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Literal

from edgefleet_protocol.commands import DeployArgs
from edgefleet_protocol.errors import ProtocolError
from edgefleet_protocol.ids import validate_id
from edgefleet_protocol.manifest import AppManifest
from pydantic import BaseModel

from edgefleet_orchestrator.access.roles import Target

Named = tuple[Literal["app", "node"] | None, str | None]
"""The audit trail's ``(target_kind, target)``: ``(None, None)`` when a command names none."""

NO_TARGET: Named = (None, None)


def target_of(args: BaseModel) -> Named:
    """What a command acts on, for the audit trail: the app or node it names. A deploy's
    app is its manifest's ``name`` (only when that is a valid id: the trail never quotes
    anything else from a payload)."""
    if isinstance(args, DeployArgs):
        name = args.manifest.get("name")
        return ("app", name) if isinstance(name, str) and _is_id(name) else NO_TARGET
    for kind in ("app", "node"):
        value = getattr(args, kind, None)
        if isinstance(value, str):
            return ("app" if kind == "app" else "node", value)
    return NO_TARGET


def _is_id(value: str) -> bool:
    try:
        validate_id(value, kind="app")
    except ProtocolError:
        return False
    return True


def access_target(
    args: BaseModel,
    named: Named,
    *,
    apps: Mapping[str, AppManifest],
    site_of: Callable[[str], str | None],
) -> Target:
    """What access needs to know of a command's target: an app's pinned sites (from the
    manifest being deployed, else the stored app in ``apps``; none for an unknown app), a
    node's site (``site_of``; none for an unknown node)."""
    kind, name = named
    if kind == "app" and name is not None:
        if isinstance(args, DeployArgs):
            placement = args.manifest.get("placement")
            sites = placement.get("sites") if isinstance(placement, dict) else None
            pinned = (
                tuple(s for s in sites if isinstance(s, str)) if isinstance(sites, list) else ()
            )
            return Target("app", name, pinned)
        app = apps.get(name)
        return Target("app", name, tuple(app.placement.sites) if app else ())
    if kind == "node" and name is not None:
        site = site_of(name)
        return Target("node", name, (site,) if site is not None else ())
    return Target()


__all__ = ["NO_TARGET", "Named", "access_target", "target_of"]
