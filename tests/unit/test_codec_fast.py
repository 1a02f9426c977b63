"""decode_fast must give decode's answer for every input: the same model, or the same
error. The corpus is what a hostile or broken agent sends; the property test throws
arbitrary JSON values (and arbitrary bytes) into every Telemetry field."""

from __future__ import annotations

import json
from typing import Any

import pytest
from edgefleet_protocol import ProtocolError, Telemetry
from edgefleet_protocol.codec import decode, decode_fast
from hypothesis import given, settings
from hypothesis import strategies as st

BASE: dict[str, Any] = {"v": 1, "node": "gw-1", "site": "s-1", "ts": 1.0}


def answer(fn: Any, payload: bytes) -> str:
    try:
        return repr(fn(Telemetry, payload))
    except ProtocolError as exc:
        return f"refused: {exc}"


def with_field(field: str, raw: str) -> bytes:
    return (f'{{"v":1,"node":"gw-1","site":"s-1","ts":1.0,"{field}":{raw}}}').encode()


CORPUS = [
    with_field("cpu_pct", raw)
    for raw in ["NaN", "Infinity", "-Infinity", "1e400", '"5"', "true", "null", "1E2", "-0.0"]
] + [
    b'{"v":1,"node":"gw-1","site":"s-1","ts":1.0,"cpu_pct":5,"cpu_pct":6}',
    b'{"v":1,"node":"gw-\\ud800","site":"s-1","ts":1.0}',
    b'\xef\xbb\xbf{"v":1,"node":"gw-1","site":"s-1","ts":1.0}',
    b'{"v":1,"node":"gw-1","site":"s-1","ts":1.0}\x00',
    b'{"v":1,"node":"gw-1","site":"s-1","ts":1.0} {}',
    b'{"v":1,"node":"gw-1","site":"s-1","ts":1.0,"extra":1}',
    b'{"v":2,"node":"gw-1","site":"s-1","ts":1.0}',
    b'{"v":1.0,"node":"gw-1","site":"s-1","ts":"1.0","full":"true"}',
    b'{"v":1,"node":"GW_1","site":"s-1","ts":1.0}',
    b'{"v":1,"node":"gw-1","site":"s-1","ts":1.0,"metrics":{"x":12345678901234567890123}}',
    b'{"v":1,"node":"gw-1","site":"s-1","ts":1.0,"workloads":{"a":{"metrics":{"x":1e999}}}}',
    b"[" * 5000 + b"]" * 5000,
    b'{"a":' * 3000 + b"1" + b"}" * 3000,
    b"\xff\xfe{}",
    b"",
    b"null",
    b"[]",
    b"x" * (256 * 1024 + 1),
]


@pytest.mark.parametrize("payload", CORPUS, ids=range(len(CORPUS)))
def test_the_fast_decoder_answers_as_the_reference_one(payload: bytes) -> None:
    assert answer(decode_fast, payload) == answer(decode, payload)


JSON = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=8),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=4), inner, max_size=3)
    ),
    max_leaves=6,
)
FIELDS = ["v", "node", "site", "ts", "full", "cpu_pct", "memory_pct", "disk_pct", "load1",
          "latency_ms", "metrics", "workloads", "other"]  # fmt: skip


@settings(max_examples=200, deadline=None)
@given(field=st.sampled_from(FIELDS), value=JSON)
def test_any_json_value_in_any_field_gets_the_same_answer(field: str, value: Any) -> None:
    payload = json.dumps({**BASE, field: value}).encode()
    assert answer(decode_fast, payload) == answer(decode, payload)


@settings(max_examples=200, deadline=None)
@given(data=st.binary(max_size=64), at=st.integers(min_value=0, max_value=40))
def test_bytes_spliced_into_a_valid_payload_get_the_same_answer(data: bytes, at: int) -> None:
    valid = json.dumps(BASE).encode()
    payload = valid[:at] + data + valid[at:]
    assert answer(decode_fast, payload) == answer(decode, payload)
