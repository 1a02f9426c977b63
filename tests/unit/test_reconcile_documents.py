"""Per-node desired documents (reconcile/documents.py), pinned rule by rule: the entry a
placed workload becomes, the node's site, the hash format kept in the store, every changed
node published even after an unchanged one, and the values being immutable. Written to
kill the mutants `make mutate` found surviving (mutate/results/)."""

from __future__ import annotations

import dataclasses
import re

import pytest
from edgefleet_orchestrator.reconcile.documents import (
    DocumentChange,
    DocumentMemo,
    DocumentsKey,
    PlacedWorkload,
    Published,
    plan_documents,
    workloads_hash,
)
from edgefleet_protocol import WorkloadSpec, spec_hash

SPEC = WorkloadSpec(runtime="simulated")


def placed(name: str, node: str, site: str = "plant-a") -> PlacedWorkload:
    # No guard given: the default is "no rollout guard".
    return PlacedWorkload(
        name=name, app="web", node=node, site=site, spec=SPEC, spec_hash=spec_hash(SPEC)
    )


def test_a_placed_workload_without_a_guard_becomes_an_entry_without_one() -> None:
    (change,) = plan_documents([placed("web-0", "gw-1")], {}, now=5.0)
    (entry,) = change.document.workloads
    assert (entry.name, entry.app, entry.spec_hash, entry.rollout) == (
        "web-0", "web", spec_hash(SPEC), None)  # fmt: skip
    assert (change.generation, change.document.generation, change.document.issued_at) == (
        1, 1, 5.0)  # fmt: skip


def test_a_document_carries_the_site_of_its_node() -> None:
    changes = plan_documents(
        [placed("web-0", "gw-1", "plant-a"), placed("web-1", "gw-2", "plant-b")], {}, now=1.0
    )
    assert [(c.node, c.site, c.document.site) for c in changes] == [
        ("gw-1", "plant-a", "plant-a"),
        ("gw-2", "plant-b", "plant-b"),
    ]


def test_the_workloads_hash_is_sha256_and_16_hex_digits_as_the_store_keeps_it() -> None:
    digest = workloads_hash(plan_documents([placed("web-0", "gw-1")], {}, now=1.0)[0]
                            .document.workloads)  # fmt: skip
    assert re.fullmatch(r"sha256:[0-9a-f]{16}", digest), digest


def test_an_unchanged_node_does_not_stop_the_next_changed_one_from_being_published() -> None:
    first = plan_documents([placed("web-0", "gw-1")], {}, now=1.0)[0]
    published = {"gw-1": Published("plant-a", first.generation, first.doc_hash)}
    changes = plan_documents([placed("web-0", "gw-1"), placed("web-1", "gw-2")], published, now=2.0)
    assert [(c.node, c.generation) for c in changes] == [("gw-2", 1)]


@pytest.mark.parametrize("value", ["placed", "published", "change"])
def test_document_values_are_immutable(value: str) -> None:
    # The pass hands these between rooms and keeps them across passes: nobody may edit one.
    change = plan_documents([placed("web-0", "gw-1")], {}, now=1.0)[0]
    target: object = {
        "placed": placed("web-0", "gw-1"),
        "published": Published("plant-a", 1, change.doc_hash),
        "change": change,
    }[value]
    assert isinstance(target, PlacedWorkload | Published | DocumentChange)
    field = dataclasses.fields(target)[0].name
    with pytest.raises(dataclasses.FrozenInstanceError):
        setattr(target, field, "x")


def key(*assignments: str) -> DocumentsKey:
    """A fresh key object each call: the memo compares keys by value."""
    return DocumentsKey(assignments=assignments, copies=(), apps=(), rollouts={}, published={})


def test_the_document_memo_answers_only_after_a_pass_with_nothing_to_publish() -> None:
    memo = DocumentMemo()
    assert (memo.nothing_to_publish(key()), memo.hits) == (False, 0)  # nothing remembered yet
    changes = plan_documents([placed("web-0", "gw-1")], {}, now=5.0)
    memo.remember(key("a"), changes)
    assert memo.nothing_to_publish(key("a")) is False  # that pass published something
    memo.remember(key("a"), [])
    assert memo.nothing_to_publish(key("b")) is False  # other inputs
    for hits in (1, 2, 3):  # each hit keeps answering for equal inputs
        assert memo.nothing_to_publish(key("a")) is True
        assert memo.hits == hits
