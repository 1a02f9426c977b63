"""Every row of docs/protocol.md's field tables is what the models do on the wire.

Why: the tables are the public contract a Node-RED flow or a script is written against —
which fields a message must carry, what a missing one reads as, how long a string may be,
which words a field takes. Mutation testing showed that nothing pinned most of them: a
default, a length limit or a state word could change in the models and every test still
passed. Each case here starts from the section's own example document, changes the one
field its row describes, and decodes it as a receiver would:

- ``yes``: without the field the message is refused, the error naming the field;
- ``no (`X`)``: without the field it reads as ``X``; ``no``: it may be left out;
- ``string ≤ N`` / ``string A-N``: ``N`` characters are taken, ``N + 1`` (and fewer
  than ``A``) refused, naming the field;
- a list of words (``pending`` \\| ``running`` …): each word is taken, any other refused;
- ``integer ≥ N``, ``number > N``, ``A-B``: both ends taken, one step beyond refused.

The rows are read from the doc, so a row added there is checked without touching this file.
"""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import edgefleet_protocol
import pytest
from edgefleet_protocol import ProtocolError, decode
from pydantic import BaseModel

DOC = (Path(__file__).resolve().parents[2] / "docs" / "protocol.md").read_text(encoding="utf-8")
HEADER = "| field | type | required | meaning |"
EXAMPLE = re.compile(r"<!-- example: (\w+) -->\n```json\n(.*?)\n```", re.DOTALL)
CELL = re.compile(r"(?<!\\)\|")
TICKED = re.compile(r"`([^`]+)`")


@dataclass(frozen=True)
class Row:
    model: str
    example: str
    path: str
    kind: str
    required: str

    def __str__(self) -> str:
        return f"{self.model}.{self.path}"


def rows() -> Iterator[Row]:
    """Each (field, type, required) of every table, with the first example after it in its
    section (the document a receiver would see)."""
    for section in re.split(r"\n(?=#{2,3} )", DOC):
        if HEADER not in section:
            continue
        rest = section.partition(HEADER)[2]
        found = EXAMPLE.search(rest)
        if found is None:
            continue
        for line in rest.splitlines()[2:]:
            if not line.startswith("|"):
                break
            field, kind, required = (c.strip() for c in CELL.split(line.strip("|"))[:3])
            for path in TICKED.findall(field):
                if path != "v":
                    example = holding(found.group(1), found.group(2), path)
                    yield Row(found.group(1), example, path, kind, required)


def holding(model: str, first: str, path: str) -> str:
    """The section's example, or the doc's first other example of ``model`` that holds
    ``path`` (the rollout fields of a desired document are shown under Rollouts)."""
    others = [body for name, body in EXAMPLE.findall(DOC) if name == model]
    for body in (first, *others):
        if where(json.loads(body), path) is not None:
            return body
    return ""


def model_named(name: str) -> type[BaseModel]:
    model = getattr(edgefleet_protocol, name)
    assert isinstance(model, type) and issubclass(model, BaseModel)
    return model


def where(doc: Any, path: str) -> list[str | int] | None:
    """The concrete keys of ``path`` in ``doc`` (``a[].b``, ``a.*.b``: the first element or
    value that holds ``b``), or None when the example does not hold the field."""
    part, _, rest = path.partition(".")
    name = part.removesuffix("[]")
    if not isinstance(doc, dict):
        return None
    for key in doc if name == "*" else [name] if name in doc else []:
        listed = doc[key] if part.endswith("[]") else [doc[key]]
        for n, node in enumerate(listed if isinstance(listed, list) else []):
            below = where(node, rest) if rest else []
            if below is not None:
                return [key, n, *below] if part.endswith("[]") else [key, *below]
    return None


ROWS = list(rows())


def changed(row: Row, value: Any, *, drop: bool = False) -> tuple[dict[str, Any], list[Any]]:
    doc = json.loads(row.example)
    keys = where(doc, row.path)
    assert keys is not None, f"no {row.model} example in the doc shows {row.path}"
    parent: Any = doc
    for key in keys[:-1]:
        parent = parent[key]
    if drop:
        parent.pop(keys[-1], None)
    else:
        parent[keys[-1]] = copy.deepcopy(value)
    return doc, keys


def read(model: BaseModel, keys: list[Any]) -> Any:
    node: Any = model.model_dump(mode="json")
    for key in keys:
        node = node[key]
    return node


def accepted(row: Row, value: Any, *, drop: bool = False) -> Any:
    doc, keys = changed(row, value, drop=drop)
    return read(decode(model_named(row.model), json.dumps(doc)), keys)


def refused(row: Row, value: Any, *, drop: bool = False, inside: str = "") -> None:
    doc, keys = changed(row, value, drop=drop)
    with pytest.raises(ProtocolError) as caught:
        decode(model_named(row.model), json.dumps(doc))
    assert caught.value.field == ".".join(str(k) for k in keys) + inside, caught.value


def cases(test: str) -> list[Row]:
    return [r for r in ROWS if r.example and applies(r, test)]


SAFE_INT = "2\N{SUPERSCRIPT FIVE}\N{SUPERSCRIPT THREE} \N{MINUS SIGN} 1"  # as the doc writes it
DASH = "\N{EN DASH}"  # the doc writes ranges with it
LENGTH = re.compile(rf"^string (?:≤ (\d+)|(\d+){DASH}(\d+))$")
WORDS = re.compile(r'^`"?[a-z][a-z-]*"?`( \\\| `"?[a-z][a-z-]*"?`)*$')
NUMBERS = re.compile(
    rf"^(?:(?P<kind>integer|number) )?(?:(?P<op>≥|>) (?P<min>\d+)(?:, ≤ (?P<max>\d+))?"
    rf"|(?P<low>\d+) ?(?:…|{DASH}) ?(?P<high>\d+))$"
)
LIST_LENGTH = re.compile(r"^list ≤ (\d+)$")
LIST_OF_WORDS = re.compile(r'^list of `"?[a-z][a-z-]*"?`( \\\| `"?[a-z][a-z-]*"?`)*(, ≥ 1)?$')


def applies(row: Row, test: str) -> bool:
    if test == "required":
        return row.required == "yes"
    if test == "default":
        return row.required.startswith("no (")
    if test == "optional":
        return row.required.startswith("no")
    if test == "numbers":
        thousands = re.sub(r"(\d) (?=\d{3}(?!\d))", r"\1", row.kind.replace(SAFE_INT, "1"))
        return bool(NUMBERS.match(thousands))
    patterns = {"length": LENGTH, "words": WORDS, "list_of_words": LIST_OF_WORDS}
    pattern = patterns.get(test, LIST_LENGTH)
    return bool(pattern.match(row.kind))


def test_the_tables_are_read() -> None:
    # Every message section's table, with its rows: a change to the doc's layout that hid
    # them from this file would otherwise pass in silence.
    models = {r.model for r in ROWS}
    assert {"NodeStatus", "Capabilities", "Telemetry", "Desired", "Reported", "Event"} <= models
    assert {"AppStatus", "ServiceEndpoints", "FleetSummary", "OrchestratorStatus"} <= models
    assert len(ROWS) >= 100
    # A row no example shows is checked by nothing here: only these, each pinned elsewhere
    # (rolled_back: tests/unit/test_agent_revert.py).
    assert {str(r) for r in ROWS if not r.example} == {"Reported.workloads.*.rolled_back"}
    for test in ("required", "default", "length", "words", "numbers", "list_of_words"):
        assert len(cases(test)) >= (1 if test == "list_of_words" else 3), test


@pytest.mark.parametrize("row", cases("required"), ids=str)
def test_a_required_field_left_out_refuses_the_message_naming_it(row: Row) -> None:
    refused(row, None, drop=True)


@pytest.mark.parametrize("row", cases("default"), ids=str)
def test_an_optional_field_left_out_reads_as_its_documented_default(row: Row) -> None:
    text = row.required.removeprefix("no (").removesuffix(")").strip("`")
    try:
        default = json.loads(text)
    except json.JSONDecodeError:
        default = text  # a bare word: `info`, `replicated`
    assert accepted(row, None, drop=True) == default


@pytest.mark.parametrize("row", cases("optional"), ids=str)
def test_an_optional_field_may_be_left_out(row: Row) -> None:
    doc, _ = changed(row, None, drop=True)
    decode(model_named(row.model), json.dumps(doc))


@pytest.mark.parametrize("row", cases("length"), ids=str)
def test_a_string_takes_its_documented_length_and_not_one_more(row: Row) -> None:
    found = LENGTH.match(row.kind)
    assert found is not None
    shortest, longest = (int(found[2]), int(found[3])) if found[2] else (0, int(found[1]))
    assert accepted(row, "x" * longest) == "x" * longest
    assert accepted(row, "x" * max(shortest, 1)) == "x" * max(shortest, 1)
    refused(row, "x" * (longest + 1))
    if shortest:
        refused(row, "x" * (shortest - 1))


@pytest.mark.parametrize("row", cases("words"), ids=str)
def test_a_field_of_words_takes_each_word_and_no_other(row: Row) -> None:
    words = [w.strip('"') for w in TICKED.findall(row.kind)]
    for word in words:
        assert accepted(row, word) == word
    refused(row, "-".join(words) + "-else")
    refused(row, words[0].upper())


def bounds(kind: str) -> tuple[bool, float, bool, float | None]:
    """``integer > 0, ≤ 4 194 304`` -> (integer, 0, strict, 4194304); a range with an
    ellipsis or an en dash, ``integer ≥ 0`` and the largest safe integer alike."""
    text = re.sub(r"(\d) (?=\d{3}(?!\d))", r"\1", kind.replace(SAFE_INT, str(2**53 - 1)))
    found = NUMBERS.match(text)
    assert found is not None, kind
    integer = found["kind"] == "integer"
    if found["op"]:
        high = float(found["max"]) if found["max"] else None
        return integer, float(found["min"]), found["op"] == ">", high
    return integer, float(found["low"]), False, float(found["high"])


@pytest.mark.parametrize("row", cases("numbers"), ids=str)
def test_a_number_takes_the_ends_of_its_documented_range_and_nothing_beyond(row: Row) -> None:
    integer, low, strict, high = bounds(row.kind)
    if strict:
        refused(row, low)
        above = low + (1 if integer else 0.5)
        assert accepted(row, above) == above
    else:
        assert accepted(row, low) == low
        refused(row, low - (1 if integer else 0.5))
    if high is not None:
        assert accepted(row, high) == high
        refused(row, high + 1)
    if integer:
        refused(row, low + 1.5)


@pytest.mark.parametrize("row", cases("list_length"), ids=str)
def test_a_list_takes_its_documented_length_and_not_one_more(row: Row) -> None:
    found = LIST_LENGTH.match(row.kind)
    assert found is not None
    shown = where(json.loads(row.example), row.path)
    assert shown is not None
    example: Any = json.loads(row.example)
    for key in shown:
        example = example[key]
    longest = int(found[1])
    assert len(accepted(row, [example[0]] * longest)) == longest
    refused(row, [example[0]] * (longest + 1))


@pytest.mark.parametrize("row", cases("list_of_words"), ids=str)
def test_a_list_of_words_takes_each_word_and_no_other(row: Row) -> None:
    words = [w.strip('"') for w in TICKED.findall(row.kind)]
    for word in words:
        assert accepted(row, [word]) == [word]
    assert accepted(row, words) == words
    refused(row, [words[0], "-".join(words)], inside=".1")
    if row.kind.endswith(", ≥ 1"):
        refused(row, [])
