"""Roles and scope (#12 build item 3): who may run which verb on what, as a table."""

from __future__ import annotations

from typing import Any

import pytest
from edgefleet_orchestrator.access.roles import (
    OPEN,
    AccessPolicy,
    Target,
    decide,
    needed_role,
    parse_policy,
    visible,
)
from edgefleet_protocol.commands import VERBS

POLICY = parse_policy(
    {
        "operators": {
            "ada": "admin",
            "dev": {"role": "deployer", "apps": ["cam-*", "web"], "sites": ["plant-a"]},
            "ops": {"role": "admin", "sites": ["plant-b"]},
            "eve": "viewer",
        }
    },
    "roles.yaml",
)
APP_A = Target("app", "cam-1", ("plant-a",))


@pytest.mark.parametrize(
    ("operator", "verb", "target", "allowed"),
    [
        ("ada", "drain", Target("node", "gw-1", ("plant-a",)), True),
        ("eve", "apps", Target(), True),
        ("eve", "app", APP_A, True),
        ("eve", "audit", Target(), True),
        ("eve", "events", Target(), True),
        ("eve", "plan", APP_A, False),  # a plan needs what its deploy needs
        ("dev", "plan", APP_A, True),
        ("dev", "plan", Target("app", "db", ("plant-a",)), False),
        ("eve", "deploy", APP_A, False),  # a viewer changes nothing
        ("eve", "scale", APP_A, False),
        ("dev", "deploy", APP_A, True),
        ("dev", "deploy", Target("app", "cam-1", ()), False),  # not pinned to its sites
        ("dev", "deploy", Target("app", "cam-1", ("plant-a", "plant-b")), False),
        ("dev", "deploy", Target("app", "db", ("plant-a",)), False),  # outside its apps
        ("dev", "delete", Target("app", "web", ("plant-a",)), True),
        ("dev", "cordon", Target("node", "gw-1", ("plant-a",)), False),  # node verbs: admin
        ("ops", "drain", Target("node", "gw-9", ("plant-b",)), True),
        ("ops", "drain", Target("node", "gw-1", ("plant-a",)), False),  # another site
        ("ops", "drain", Target("node", "gw-x", ()), False),  # unknown node, scoped admin
        ("nobody", "apps", Target(), False),  # not in the file: no role at all
        ("anonymous", "apps", Target(), False),
    ],
)
def test_who_may_run_what(operator: str, verb: str, target: Target, allowed: bool) -> None:
    refusal = decide(POLICY, operator, verb, target)
    assert (refusal is None) == allowed, refusal
    if refusal is not None:
        assert refusal.details["operator"] == operator and refusal.details["verb"] == verb


def test_without_a_roles_file_everyone_is_admin() -> None:
    for verb in VERBS:
        assert decide(OPEN, "anonymous", verb, Target("node", "gw-1", ())) is None


def test_a_verb_the_table_does_not_know_needs_admin() -> None:
    assert needed_role("frobnicate").label == "admin"
    assert decide(POLICY, "dev", "frobnicate", Target()) is not None


def test_lists_show_only_what_is_in_scope() -> None:
    apps: dict[str, Any] = {"apps": [{"app": "cam-1"}, {"app": "db"}, {"app": "web"}]}
    assert visible(POLICY, "dev", "apps", apps) == {"apps": [{"app": "cam-1"}, {"app": "web"}]}
    nodes: dict[str, Any] = {
        "nodes": [{"node": "a", "site": "plant-a"}, {"node": "b", "site": "plant-b"}]
    }
    assert visible(POLICY, "ops", "nodes", nodes) == {"nodes": [{"node": "b", "site": "plant-b"}]}
    trail: dict[str, Any] = {"entries": [{"operator": "eve"}, {"operator": "ada"}]}
    assert visible(POLICY, "eve", "audit", trail) == {"entries": [{"operator": "eve"}]}
    assert visible(POLICY, "ada", "audit", trail) == trail


def test_a_default_grant_covers_operators_the_file_does_not_name() -> None:
    policy = parse_policy({"operators": {}, "default": "viewer"}, "r")
    assert decide(policy, "anyone", "apps", Target()) is None
    assert decide(policy, "anyone", "deploy", APP_A) is not None


@pytest.mark.parametrize(
    ("data", "fragment"),
    [
        ([], "must be a mapping"),
        ({"operator": {}}, "unknown key"),
        ({"operators": {"Alice": "admin"}}, "operators.Alice"),
        ({"operators": {"bob": "root"}}, "role must be one of"),
        ({"operators": {"bob": {"role": "viewer", "site": ["x"]}}}, "unknown key"),
        ({"operators": {"bob": {"role": "viewer", "sites": []}}}, "non-empty list"),
        ({"operators": {"bob": {"role": "viewer", "sites": ["Plant A"]}}}, "sites"),
    ],
)
def test_a_bad_roles_file_is_refused_naming_the_entry(data: Any, fragment: str) -> None:
    with pytest.raises(ValueError, match=fragment):
        parse_policy(data, "roles.yaml")


def test_an_empty_policy_lets_nobody_in() -> None:
    assert decide(AccessPolicy(grants={}), "ada", "apps", Target()) is not None


def test_events_show_only_what_is_in_scope_and_a_non_admin_s_own_commands() -> None:
    events: dict[str, Any] = {
        "events": [
            {"kind": "placement", "app": "cam-1", "site": "plant-a"},
            {"kind": "placement", "app": "db"},  # outside dev's apps
            {"kind": "node", "node": "gw-9", "site": "plant-b"},  # outside dev's sites
            {"kind": "broker"},  # names nothing: everyone's
            {"kind": "command", "details": {"operator": "dev"}},
            {"kind": "command", "details": {"operator": "ada"}},
        ]
    }
    kept = visible(POLICY, "dev", "events", events)["events"]
    assert kept == [events["events"][0], events["events"][3], events["events"][4]]
    assert visible(POLICY, "ada", "events", events) == events  # an unscoped admin: all
