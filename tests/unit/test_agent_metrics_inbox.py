"""Custom metrics files: flat JSON objects of finite numbers, read each tick."""

from __future__ import annotations

from pathlib import Path

import pytest
from edgefleet_agent.service.metrics_inbox import MetricsFileError, MetricsInbox, parse_metrics


def test_a_flat_object_of_numbers_is_read_as_floats() -> None:
    assert parse_metrics(b'{"queue_depth": 12, "temp.c": 41.5}') == {
        "queue_depth": 12.0,
        "temp.c": 41.5,
    }


@pytest.mark.parametrize(
    ("raw", "words"),
    [
        (b"[1]", "must be a JSON object"),
        (b"{half", "not valid JSON"),
        (b'{"a": "high"}', "must be a number"),
        (b'{"a": true}', "must be a number"),
        (b'{"a": {"b": 1}}', "must be a number"),
        (b'{"a": NaN}', "must be finite"),
        (b'{"bad name": 1}', "metric name"),
        (b'{"a/b": 1}', "metric name"),
        (b"{" + b",".join(b'"m%d": 1' % i for i in range(40)) + b"}", "exceeds the limit of 32"),
        (b" " * 20000, "exceeds the limit"),
    ],
)
def test_bad_metrics_files_are_refused_with_a_reason(raw: bytes, words: str) -> None:
    with pytest.raises(MetricsFileError, match=words):
        parse_metrics(raw)


def test_the_inbox_keeps_the_last_good_values_across_a_torn_write(tmp_path: Path) -> None:
    inbox = MetricsInbox(tmp_path)
    inbox.path_for("w1").write_text('{"q": 1}')
    assert inbox.read(["w1", "w2"]) == {"w1": {"q": 1.0}}
    inbox.path_for("w1").write_text('{"q": ')
    assert inbox.read(["w1"]) == {"w1": {"q": 1.0}}
    inbox.path_for("w1").write_text('{"q": 2}')
    assert inbox.read(["w1"]) == {"w1": {"q": 2.0}}
    inbox.path_for("w1").unlink()
    assert inbox.read(["w1"]) == {}
