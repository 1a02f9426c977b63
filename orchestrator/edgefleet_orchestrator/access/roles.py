"""Roles and scope: the orchestrator's access policy, and the one decision it makes.

Three roles, each including the one before: **viewer** reads (``apps``, ``app``,
``nodes``, ``node``, ``audit``, ``events``, rollout status and history), **deployer** also
changes apps (``deploy``, ``delete``, ``scale``, the other rollout verbs) and may ask what a
deploy would do (``plan``: the same role and scope as the deploy it previews), **admin**
also changes nodes (``cordon``, ``uncordon``, ``drain``) and reads everyone's audit entries.
A verb this table does not name needs **admin**: a verb added later is closed until someone
opens it here.

A grant may be limited to apps (names or ``fnmatch`` patterns such as ``cam-*``) and to
sites. An app verb on an app outside the app scope is forbidden; with a site scope, an app
must be pinned to those sites (``placement.sites`` a non-empty subset) and a node verb's
node must be in one. Lists (``apps``, ``nodes``, ``audit``, ``events``) show only what is in scope.

Without a policy file every operator, ``anonymous`` included, is admin: the behaviour of a
development fleet, and of every fleet before operators had roles (docs/operations.md).
"""

from __future__ import annotations

import fnmatch
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from enum import IntEnum
from typing import Any, Literal

from edgefleet_protocol.errors import ProtocolError
from edgefleet_protocol.ids import validate_id


class Role(IntEnum):
    VIEWER = 1
    DEPLOYER = 2
    ADMIN = 3

    @property
    def label(self) -> str:
        return self.name.lower()


READ_VERBS = frozenset(
    {"apps", "app", "nodes", "node", "audit", "events", "services", "service"}
    | {"rollout-status", "rollout-history"}
)
APP_VERBS = frozenset(
    {"deploy", "plan", "delete", "scale"}
    | {"rollout-promote", "rollout-pause", "rollout-resume", "rollout-undo"}
)
NODE_VERBS = frozenset({"cordon", "uncordon", "drain"})


def needed_role(verb: str) -> Role:
    """The least role that may run ``verb`` (admin for a verb this table does not know)."""
    if verb in READ_VERBS:
        return Role.VIEWER
    if verb in APP_VERBS:
        return Role.DEPLOYER
    return Role.ADMIN


@dataclass(frozen=True, slots=True)
class Grant:
    """One operator's role, optionally limited to apps (patterns) and sites."""

    role: Role
    apps: tuple[str, ...] | None = None
    sites: tuple[str, ...] | None = None

    def covers_app(self, app: str, app_sites: Sequence[str]) -> bool:
        if self.apps is not None and not any(fnmatch.fnmatchcase(app, p) for p in self.apps):
            return False
        if self.sites is not None:
            return bool(app_sites) and set(app_sites) <= set(self.sites)
        return True

    def covers_site(self, site: str | None) -> bool:
        return self.sites is None or (site is not None and site in self.sites)

    def describe(self) -> dict[str, Any]:
        out: dict[str, Any] = {"role": self.role.label}
        if self.apps is not None:
            out["apps"] = list(self.apps)
        if self.sites is not None:
            out["sites"] = list(self.sites)
        return out


ADMIN = Grant(Role.ADMIN)


@dataclass(frozen=True, slots=True)
class AccessPolicy:
    """Grants by operator name; ``None`` means no policy file: everyone is admin."""

    grants: Mapping[str, Grant] | None = None
    source: str = "no roles file"
    default: Grant | None = field(default=None)
    """The grant of an operator the file does not name (``None``: no access at all)."""

    def grant_of(self, operator: str) -> Grant | None:
        if self.grants is None:
            return ADMIN
        return self.grants.get(operator, self.default)


@dataclass(frozen=True, slots=True)
class Target:
    """What a command acts on, as far as access needs to know."""

    kind: Literal["app", "node"] | None = None
    name: str | None = None
    sites: tuple[str, ...] = ()
    """An app's ``placement.sites`` (empty: any site); a node's own site (empty: unknown)."""


@dataclass(frozen=True, slots=True)
class Forbidden:
    """Why an operator may not run a command: the ``forbidden`` reply's message and details."""

    message: str
    details: dict[str, Any]


def decide(policy: AccessPolicy, operator: str, verb: str, target: Target) -> Forbidden | None:
    """``None`` when ``operator`` may run ``verb`` on ``target``, else why not."""
    grant = policy.grant_of(operator)
    needs = needed_role(verb)
    details: dict[str, Any] = {"operator": operator, "verb": verb, "needs": needs.label}
    if grant is None:
        return Forbidden(
            f"operator {operator!r} has no role on this orchestrator ({policy.source})",
            {**details, "role": None},
        )
    details["grant"] = grant.describe()
    if grant.role < needs:
        return Forbidden(
            f"{verb} needs the {needs.label} role; {operator!r} is a {grant.role.label}",
            details,
        )
    app_in_scope = target.name is None or grant.covers_app(target.name, target.sites)
    if target.kind == "app" and not app_in_scope:
        where = f" pinned to sites {list(grant.sites)}" if grant.sites is not None else ""
        return Forbidden(
            f"app {target.name!r} is outside {operator!r}'s scope (apps "
            f"{list(grant.apps) if grant.apps is not None else 'any'}{where})",
            {**details, "app": target.name},
        )
    node_site = target.sites[0] if target.sites else None
    if target.kind == "node" and target.name is not None and not grant.covers_site(node_site):
        return Forbidden(
            f"node {target.name!r} is outside {operator!r}'s sites {list(grant.sites or ())}",
            {**details, "node": target.name},
        )
    return None


def visible(policy: AccessPolicy, operator: str, verb: str, result: Any) -> Any:
    """A list verb's result narrowed to the operator's scope (other results unchanged):
    ``apps`` rows of apps in scope, ``nodes`` rows of nodes in its sites, ``audit``
    entries of its own unless it is an admin, ``events`` as :func:`_event_in` says."""
    grant = policy.grant_of(operator)
    if grant is None or not isinstance(result, dict):
        return result
    if verb == "apps" and grant.apps is not None and isinstance(result.get("apps"), list):
        rows = [r for r in result["apps"] if _app_in(grant, r)]
        return {**result, "apps": rows}
    if verb == "nodes" and grant.sites is not None and isinstance(result.get("nodes"), list):
        rows = [
            r for r in result["nodes"] if isinstance(r, dict) and grant.covers_site(r.get("site"))
        ]
        return {**result, "nodes": rows}
    if verb == "events" and isinstance(result.get("events"), list):
        rows = [e for e in result["events"] if _event_in(grant, operator, e)]
        return {**result, "events": rows}
    if verb == "audit" and grant.role < Role.ADMIN and isinstance(result.get("entries"), list):
        rows = [
            r for r in result["entries"] if isinstance(r, dict) and r.get("operator") == operator
        ]
        return {**result, "entries": rows}
    return result


def _event_in(grant: Grant, operator: str, event: Any) -> bool:
    """An event an operator's grant shows: one about an app in its app scope and a site
    in its sites (an event naming neither is everyone's), and, unless it is an admin, of
    the ``command`` events only its own (as ``audit`` shows only its own entries)."""
    if not isinstance(event, dict):
        return False
    app, site = event.get("app"), event.get("site")
    if grant.apps is not None and app is not None and not _app_in(grant, event):
        return False
    if site is not None and not grant.covers_site(site):
        return False
    if event.get("kind") == "command" and grant.role < Role.ADMIN:
        details = event.get("details")
        return isinstance(details, dict) and details.get("operator") == operator
    return True


def _app_in(grant: Grant, row: Any) -> bool:
    name = row.get("app") if isinstance(row, dict) else None
    return isinstance(name, str) and any(fnmatch.fnmatchcase(name, p) for p in grant.apps or ())


OPEN = AccessPolicy()
"""No roles file: every operator is admin."""


# -- the roles file ------------------------------------------------------------------------


def parse_policy(data: Any, source: str) -> AccessPolicy:
    """The policy in a roles file (already parsed from YAML). Raises ``ValueError`` naming
    the bad entry; an operator's name must be an identifier (it is a topic level)."""
    if not isinstance(data, dict):
        raise ValueError(f"{source}: must be a mapping with an 'operators' mapping")
    unknown = sorted(set(data) - {"operators", "default"})
    if unknown:
        raise ValueError(f"{source}: unknown key(s) {unknown}; expected 'operators', 'default'")
    operators = data.get("operators") or {}
    if not isinstance(operators, dict):
        raise ValueError(f"{source}: 'operators' must map operator names to roles")
    grants: dict[str, Grant] = {}
    for name, entry in operators.items():
        try:
            validate_id(name, kind="operator")
        except ProtocolError as exc:
            raise ValueError(f"{source}: operators.{name}: {exc.reason}") from None
        grants[name] = _grant(entry, f"{source}: operators.{name}")
    default = data.get("default")
    return AccessPolicy(
        grants=grants,
        source=source,
        default=None if default is None else _grant(default, f"{source}: default"),
    )


def _grant(entry: Any, where: str) -> Grant:
    if isinstance(entry, str):
        entry = {"role": entry}
    if not isinstance(entry, dict):
        raise ValueError(f"{where}: a role name or a mapping with 'role', 'apps', 'sites'")
    unknown = sorted(set(entry) - {"role", "apps", "sites"})
    if unknown:
        raise ValueError(f"{where}: unknown key(s) {unknown}; expected role, apps, sites")
    roles = {r.label: r for r in Role}
    role = roles.get(entry.get("role"))  # type: ignore[arg-type]
    if role is None:
        raise ValueError(f"{where}: role must be one of {sorted(roles)}, got {entry.get('role')!r}")
    return Grant(role, _names(entry, "apps", where, patterns=True), _names(entry, "sites", where))


def _names(
    entry: dict[str, Any], key: str, where: str, *, patterns: bool = False
) -> tuple[str, ...] | None:
    value = entry.get(key)
    if value is None:
        return None
    if not isinstance(value, list) or not value or not all(isinstance(v, str) for v in value):
        raise ValueError(f"{where}.{key}: a non-empty list of names")
    if not patterns:
        for v in value:
            try:
                validate_id(v, kind=key[:-1])
            except ProtocolError as exc:
                raise ValueError(f"{where}.{key}: {exc.reason}") from None
    return tuple(value)
