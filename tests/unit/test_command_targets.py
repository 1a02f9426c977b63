"""What a command acts on (``access.targets``), as tables: the app or node it names in the
audit trail, and the sites access judges it by — a deploy's own ``placement.sites``, the
stored app's for every other app verb, a node's own site; nothing for what is unknown."""

from __future__ import annotations

import importlib
import json
import pkgutil
from typing import Any

import pytest
from edgefleet_orchestrator.access.roles import Target
from edgefleet_orchestrator.access.targets import NO_TARGET, Named, access_target, target_of
from edgefleet_protocol import validate
from edgefleet_protocol.commands import parse_command
from edgefleet_protocol.manifest import AppManifest
from pydantic import BaseModel

WEB = {"name": "web", "replicas": 1, "workload": {"runtime": "simulated"}}
STORED = {"web": validate(AppManifest, {**WEB, "placement": {"sites": ["s1", "s2"]}})}
SITES = {"gw-1": "s1"}


def args(verb: str, **fields: Any) -> BaseModel:
    _, parsed = parse_command(verb, json.dumps({"v": 1, "request_id": "r", **fields}))
    return parsed


@pytest.mark.parametrize(
    ("verb", "fields", "named"),
    [
        ("deploy", {"manifest": WEB}, ("app", "web")),
        ("deploy", {"manifest": "name: web\nworkload: {runtime: simulated}\n"}, ("app", "web")),
        ("deploy", {"manifest": {**WEB, "name": "Not An Id"}}, NO_TARGET),  # never quoted
        ("deploy", {"manifest": {**WEB, "name": 7}}, NO_TARGET),
        ("deploy", {"manifest": {"replicas": 1}}, NO_TARGET),
        ("scale", {"app": "web", "replicas": 2}, ("app", "web")),
        ("rollout-status", {"app": "web"}, ("app", "web")),
        ("cordon", {"node": "gw-1"}, ("node", "gw-1")),
        ("apps", {}, NO_TARGET),
        ("audit", {}, NO_TARGET),
    ],
)
def test_the_target_a_command_names(verb: str, fields: dict[str, Any], named: Named) -> None:
    assert target_of(args(verb, **fields)) == named


def placed(sites: object) -> BaseModel:
    return args("deploy", manifest={**WEB, "placement": {"sites": sites}})


@pytest.mark.parametrize(
    ("parsed", "judged"),
    [
        (placed(["s3"]), Target("app", "web", ("s3",))),  # what it will be, not what is stored
        (placed(["s3", 4, "s4"]), Target("app", "web", ("s3", "s4"))),
        (placed("s3"), Target("app", "web", ())),
        (args("deploy", manifest={**WEB, "placement": "s3"}), Target("app", "web", ())),
        (args("deploy", manifest=WEB), Target("app", "web", ())),
        (args("scale", app="web", replicas=2), Target("app", "web", ("s1", "s2"))),
        (args("scale", app="gone", replicas=2), Target("app", "gone", ())),
        (args("cordon", node="gw-1"), Target("node", "gw-1", ("s1",))),
        (args("cordon", node="gw-9"), Target("node", "gw-9", ())),
        (args("apps"), Target()),
    ],
)
def test_the_sites_access_judges_a_target_by(parsed: BaseModel, judged: Target) -> None:
    named = target_of(parsed)
    assert access_target(parsed, named, apps=STORED, site_of=SITES.get) == judged


@pytest.mark.parametrize("named", [("app", None), ("node", None), (None, "web")])
def test_a_half_named_target_is_no_target(named: Named) -> None:
    assert access_target(args("apps"), named, apps=STORED, site_of=SITES.get) == Target()


def test_every_access_module_exports_names_it_has() -> None:
    """`from edgefleet_orchestrator.access.x import *` must work."""
    import edgefleet_orchestrator.access as package

    for info in pkgutil.iter_modules(package.__path__):
        module = importlib.import_module(f"{package.__name__}.{info.name}")
        names = vars(module).get("__all__", ())  # a module that sets it sets a list
        assert isinstance(names, list | tuple), module.__name__
        assert all(hasattr(module, n) for n in names), module.__name__
