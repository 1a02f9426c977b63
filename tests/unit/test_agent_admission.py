"""Admission of desired documents: every bad kind is rejected with its field and reason."""

from __future__ import annotations

import json
from typing import Any

import pytest
from edgefleet_agent.core.admission import (
    Accept,
    Notice,
    Reject,
    Stale,
    Unchanged,
    admit,
    notice_for,
)
from edgefleet_protocol import Desired


def doc(generation: int = 2, node: str = "n1", **extra: Any) -> bytes:
    body: dict[str, Any] = {
        "v": 1,
        "node": node,
        "generation": generation,
        "issued_at": 1.0,
        "workloads": [
            {
                "name": "w1",
                "app": "a",
                "spec_hash": "sha256:x",
                "spec": {"runtime": "process", "command": ["true"]},
            }
        ],
    }
    body.update(extra)
    return json.dumps(body).encode()


def check(payload: bytes, current: int | None = 1, runtimes: tuple[str, ...] = ("process",)) -> Any:
    return admit(
        payload, node="n1", site="s1", runtimes=runtimes, current_generation=current, max_bytes=4096
    )


@pytest.mark.parametrize(
    ("payload", "field", "words"),
    [
        (b"", "payload", "is empty"),
        (b"[1, 2]", "payload", "must be a JSON object"),
        (b"{oops", "payload", "not valid JSON"),
        (b"\xff\xfe", "payload", "not UTF-8"),
        (doc(extra="x" * 5000), "payload", "exceeds the limit of 4096"),
        (json.dumps({"v": 1, "node": "n1", "issued_at": 1}).encode(), "generation", "is required"),
        (
            json.dumps({"v": 2, "node": "n1", "generation": 1, "issued_at": 1}).encode(),
            "v",
            "unsupported protocol version",
        ),
        (doc(node="n2"), "node", "for node 'n2'; this is node 'n1'"),
        (doc(site="s9"), "site", "for site 's9'"),
        (doc(node="N#1"), "node", "not a valid"),
        (
            doc(
                workloads=[
                    {
                        "name": "w1",
                        "app": "a",
                        "spec_hash": "h",
                        "spec": {"runtime": "docker", "image": "x"},
                    }
                ]
            ),
            "workloads.0.spec.runtime",
            "needs runtime 'docker'",
        ),
        (
            doc(
                workloads=[
                    {"name": "w1", "app": "a", "spec_hash": "h", "spec": {"runtime": "podman"}}
                ]
            ),
            "workloads.0.spec.runtime",
            "",
        ),
        (
            doc(
                workloads=[
                    {
                        "name": "w/1",
                        "app": "a",
                        "spec_hash": "h",
                        "spec": {"runtime": "process", "command": ["x"]},
                    }
                ]
            ),
            "workloads.0.name",
            "not a valid",
        ),
    ],
    ids=[
        "empty",
        "array",
        "not json",
        "not utf8",
        "oversized",
        "schema",
        "version",
        "other node",
        "other site",
        "bad node id",
        "runtime not enabled",
        "unknown runtime",
        "bad workload id",
    ],
)
def test_bad_documents_are_rejected_naming_field_and_reason(
    payload: bytes, field: str, words: str
) -> None:
    verdict = check(payload)
    assert isinstance(verdict, Reject)
    assert verdict.field == field
    assert words in verdict.reason


@pytest.mark.parametrize(
    ("generation", "current", "expected"),
    [(2, 1, Accept), (2, None, Accept), (0, None, Accept), (2, 2, Unchanged), (1, 2, Stale)],
)
def test_generation_decides_between_apply_noop_and_ignore(
    generation: int, current: int | None, expected: type
) -> None:
    assert isinstance(check(doc(generation), current), expected)


def test_an_accepted_document_is_the_validated_model() -> None:
    verdict = check(doc(3))
    assert isinstance(verdict, Accept)
    assert isinstance(verdict.desired, Desired)
    assert verdict.desired.workloads[0].spec.command == ["true"]


def test_a_stale_document_says_both_generations() -> None:
    assert check(doc(1), 4) == Stale(generation=1, current=4)


def test_the_node_is_checked_before_the_generation() -> None:
    assert isinstance(check(doc(1, node="n2"), 4), Reject)


# -- the words of each verdict, exactly (they reach the node's events; `make mutate`) -------


def test_a_rejection_names_both_nodes_sites_and_runtimes_in_full() -> None:
    assert check(doc(node="n2")) == Reject("node", "document is for node 'n2'; this is node 'n1'")
    assert check(doc(site="s9")) == Reject(
        "site", "document is for site 's9'; this node is in 's1'"
    )
    docker = [
        {"name": "w1", "app": "a", "spec_hash": "h", "spec": {"runtime": "docker", "image": "x"}}
    ]
    assert check(doc(workloads=docker), runtimes=("wasm", "process")) == Reject(
        "workloads.0.spec.runtime",
        "workload w1 needs runtime 'docker', which this agent does not run"
        " (enabled: process, wasm)",
    )


def test_an_agent_with_no_runtime_says_none_are_enabled() -> None:
    verdict = check(doc(), runtimes=())
    assert isinstance(verdict, Reject)
    assert verdict.reason.endswith("which this agent does not run (enabled: none)")


def test_the_site_is_checked_only_when_the_document_names_one() -> None:
    assert isinstance(check(doc(site="s1")), Accept)
    assert isinstance(check(doc()), Accept)  # no site: any node's site will do


def test_each_notice_says_its_verdict_in_full() -> None:
    rejected = notice_for(Reject("node", "is for another node"))
    assert rejected == Notice(
        "warning",
        "desired-rejected",
        "desired document rejected, workloads left as they are: node: is for another node",
        {"field": "node", "reason": "is for another node"},
    )
    assert notice_for(Stale(generation=2, current=5)) == Notice(
        "warning",
        "desired-stale",
        "ignored desired generation 2: already at 5",
        {"generation": 2, "current": 5},
    )
    accepted = check(doc(7), current=None)
    assert isinstance(accepted, Accept)
    assert notice_for(accepted) == Notice(
        "info",
        "desired-accepted",
        "accepted desired generation 7 with 1 workload(s)",
        {"generation": 7},
    )


def test_a_notice_without_details_carries_an_empty_object() -> None:
    assert Notice("info", "desired-accepted", "m").details == {}
