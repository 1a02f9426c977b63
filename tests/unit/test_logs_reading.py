"""Logs on demand without a broker: the reply-topic rule the ACL relies on, reading a
process log's tail and what follows a cursor (complete lines only, a cut log, a missing
one), and Docker's timestamped lines."""

from __future__ import annotations

from pathlib import Path

import pytest
from edgefleet_agent.core.runtime import PermanentRuntimeError
from edgefleet_agent.runtimes import docker_logs, process_logs
from edgefleet_protocol import ProtocolError
from edgefleet_protocol.logs import MAX_LINE_CHARS, check_logs_reply_to, logs_reply_to

R = "edgefleet/v1"


def test_the_reply_topic_names_the_operator_and_the_node() -> None:
    topic = logs_reply_to(R, "alice", "plant-a", "gw-1", "alice-1")
    assert topic == f"{R}/replies/alice/logs/plant-a/gw-1/alice-1"
    assert check_logs_reply_to(R, topic, site="plant-a", node="gw-1") == topic


@pytest.mark.parametrize(
    "topic",
    [
        f"{R}/replies/alice/logs/plant-a/gw-2/x",  # another node's
        f"{R}/replies/alice/x",  # a command reply topic
        f"{R}/replies/alice/logs/plant-a/gw-1",  # no id level
        f"{R}/replies/+/logs/plant-a/gw-1/x",
        f"{R}/apps/web/status",
        "other/replies/alice/logs/plant-a/gw-1/x",
    ],
)
def test_an_agent_answers_no_other_reply_topic(topic: str) -> None:
    with pytest.raises(ProtocolError):
        check_logs_reply_to(R, topic, site="plant-a", node="gw-1")


def write(path: Path, text: str) -> None:
    with path.open("a") as f:
        f.write(text)


def test_the_tail_is_the_newest_complete_lines_and_the_cursor_follows_them(
    tmp_path: Path,
) -> None:
    log = tmp_path / "w.log"
    write(log, "".join(f"line {i}\n" for i in range(10_000)) + "partial")
    read = process_logs.read_tail(log, 3)
    assert read.lines == ["line 9997", "line 9998", "line 9999"]
    write(log, " now complete\nline next\n")
    after = process_logs.read_after(log, read.cursor)
    assert after.lines == ["partial now complete", "line next"]
    assert process_logs.read_after(log, after.cursor).lines == []


def test_a_tail_larger_than_the_log_is_the_whole_log(tmp_path: Path) -> None:
    log = tmp_path / "w.log"
    write(log, "a\nb\n")
    assert process_logs.read_tail(log, 100).lines == ["a", "b"]
    assert process_logs.read_tail(log, 0).lines == []


def test_a_cut_log_goes_on_from_the_end_of_what_was_kept(tmp_path: Path) -> None:
    log = tmp_path / "w.log"
    write(log, "x" * 100 + "\n")
    cursor = process_logs.read_tail(log, 1).cursor
    log.write_text("kept\n")  # shorter than the cursor: cap_log cut it
    read = process_logs.read_after(log, cursor)
    assert read.lines == []
    write(log, "new\n")
    assert process_logs.read_after(log, read.cursor).lines == ["new"]


def test_a_removed_log_means_the_workload_is_gone_and_a_missing_one_is_refused(
    tmp_path: Path,
) -> None:
    assert process_logs.read_after(tmp_path / "none.log", "p:0").gone
    with pytest.raises(PermanentRuntimeError):
        process_logs.read_tail(tmp_path / "none.log", 5)
    with pytest.raises(PermanentRuntimeError):
        process_logs.read_after(tmp_path / "none.log", "d:5")


def test_overlong_lines_are_cut_with_a_mark(tmp_path: Path) -> None:
    log = tmp_path / "w.log"
    write(log, "y" * (MAX_LINE_CHARS * 2) + "\n")
    (line,) = process_logs.read_tail(log, 1).lines
    assert len(line) == MAX_LINE_CHARS and line.endswith("…")


class FakeContainer:
    """Docker's ``logs()`` answer shape: timestamped lines (the SDK call is the seam)."""

    def __init__(self, lines: list[str]) -> None:
        self.lines = lines

    def logs(self, **kwargs: object) -> bytes:
        since = kwargs.get("since")
        tail = kwargs.get("tail")
        rows = self.lines
        if isinstance(since, float):
            rows = [r for r in rows if docker_logs.stamp_ns(r.split(" ")[0]) >= int(since) * 10**9]
        if isinstance(tail, int):
            rows = rows[-tail:]
        return "".join(r + "\n" for r in rows).encode()


def test_docker_lines_after_the_cursor_are_sent_once() -> None:
    c = FakeContainer(
        [
            "2026-12-05T22:20:01.100000000Z one",
            "2026-12-05T22:20:01.2Z two",
        ]
    )
    first = docker_logs.read(c, tail=1, cursor=None)
    assert first.lines == ["two"]
    c.lines.append("2026-12-05T22:20:01.300000001Z three")
    again = docker_logs.read(c, tail=0, cursor=first.cursor)
    assert again.lines == ["three"]
    assert docker_logs.read(c, tail=0, cursor=again.cursor).lines == []
