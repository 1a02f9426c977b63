"""The ``/metrics`` endpoint the orchestrator and the agent serve (docs/operations.md,
"Metrics (Prometheus)"): which ``--metrics-addr`` values are accepted and how they are
shown, and what a scraper gets back for a good request, a wrong path or method, a
malformed, oversized or stalled request head, and a render that fails. A real asyncio
server on a loopback port 0 and a real client: no broker, milliseconds per test.
"""

from __future__ import annotations

import asyncio
import logging

import pytest
from edgefleet_protocol.scrape import Address, AddressError, MetricsServer, parse_address

PROMETHEUS_TEXT = "text/plain; version=0.0.4; charset=utf-8"
BODY = b"# TYPE edgefleet_up gauge\nedgefleet_up 1\n"


# --- --metrics-addr -------------------------------------------------------------------


@pytest.mark.parametrize(("text", "port"), [("h:1", 1), ("h:65535", 65535), ("[::1]:65535", 65535)])
def test_every_port_from_1_to_65535_is_accepted(text: str, port: int) -> None:
    assert parse_address(text).port == port


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("9464", "'9464' is not HOST:PORT (for example 127.0.0.1:9464)"),
        ("h:x", "'h:x' is not HOST:PORT (for example 127.0.0.1:9464)"),
        ("h:0", "port 0 is out of range 1-65535"),
        ("h:65536", "port 65536 is out of range 1-65535"),
        ("::1:9464", "'::1:9464': write an IPv6 host in brackets, as [::1]:9464"),
    ],
)
def test_a_bad_metrics_address_is_refused_saying_what_to_write(text: str, words: str) -> None:
    with pytest.raises(AddressError) as caught:
        parse_address(text)
    assert str(caught.value) == words


@pytest.mark.parametrize("text", ["[::1:9464", "::1]:9464", "[127.0.0.1:9464", "h]:9464"])
def test_an_address_with_unbalanced_brackets_is_refused_not_bound_later(text: str) -> None:
    # Before: "[::1:9464" became the host "[::1", which failed only when the server bound
    # it (a resolver error at start) instead of as a bad --metrics-addr naming the address.
    with pytest.raises(AddressError) as caught:
        parse_address(text)
    assert str(caught.value) == f"{text!r}: unbalanced brackets (write [::1]:9464)"


@pytest.mark.parametrize(
    ("address", "shown"),
    [
        (Address("127.0.0.1", 9464), "127.0.0.1:9464"),
        (Address("localhost", 1), "localhost:1"),
        (Address("::1", 9464), "[::1]:9464"),
        (Address("fe80::1", 80), "[fe80::1]:80"),
    ],
)
def test_an_address_is_shown_as_it_is_written_back(address: Address, shown: str) -> None:
    assert str(address) == shown
    assert parse_address(shown) == address


@pytest.mark.parametrize(
    ("text", "loopback"),
    [
        ("127.0.0.1:9465", True),
        ("127.8.9.10:9465", True),
        ("[::1]:9465", True),
        ("localhost:9465", True),
        (":9465", False),  # every interface
        ("0.0.0.0:9465", False),
        ("192.168.1.10:9465", False),
        ("[::]:9465", False),
        ("gateway.local:9465", False),  # a name that is not localhost may resolve anywhere
        ("localhostx:9465", False),
    ],
)
def test_only_loopback_addresses_count_as_loopback(text: str, loopback: bool) -> None:
    # The agent refuses any other (its endpoint has no authentication).
    assert parse_address(text).loopback is loopback


# --- serving --------------------------------------------------------------------------


async def serve(render: object = None) -> MetricsServer:
    server = MetricsServer(
        render if callable(render) else (lambda: BODY),  # type: ignore[arg-type]
        PROMETHEUS_TEXT,
        Address("127.0.0.1", 0),
    )
    await server.start()
    return server


async def ask(server: MetricsServer, request: bytes, *, end: bool = True) -> bytes:
    """Send ``request``, then (``end``) close our side, and read the whole answer."""
    reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
    writer.write(request)
    await writer.drain()
    if end:
        writer.write_eof()
    answer = await reader.read()
    writer.close()
    await writer.wait_closed()
    return answer


def parse(answer: bytes) -> tuple[str, dict[str, str], bytes]:
    head, sep, body = answer.partition(b"\r\n\r\n")
    assert sep, f"no end of head in {answer!r}"
    status, *lines = head.decode("latin-1").split("\r\n")
    headers = dict(line.split(": ", 1) for line in lines)
    assert headers["Content-Length"] == str(len(body))
    assert headers["Connection"] == "close"
    return status, headers, body


async def test_get_metrics_answers_the_render_with_its_content_type_and_closes() -> None:
    server = await serve()
    try:
        assert server.port != 0, "port 0 becomes the bound port"
        for target in (b"/metrics", b"/metrics?name[]=edgefleet_up"):  # a query is ignored
            answer = await ask(server, b"GET " + target + b" HTTP/1.1\r\nHost: x\r\n\r\n")
            status, headers, body = parse(answer)
            assert status == "HTTP/1.1 200 OK"
            assert headers["Content-Type"] == PROMETHEUS_TEXT
            assert body == BODY
    finally:
        await server.close()


async def test_each_scrape_renders_afresh() -> None:
    count = iter(range(1, 100))
    server = await serve(lambda: f"scrapes {next(count)}\n".encode())
    try:
        bodies = [parse(await ask(server, b"GET /metrics HTTP/1.0\r\n\r\n"))[2] for _ in "ab"]
        assert bodies == [b"scrapes 1\n", b"scrapes 2\n"]
    finally:
        await server.close()


@pytest.mark.parametrize(
    ("request_head", "status", "body"),
    [
        (b"POST /metrics HTTP/1.1\r\n\r\n", "405 Method Not Allowed", b"only GET\n"),
        (b"get /metrics HTTP/1.1\r\n\r\n", "405 Method Not Allowed", b"only GET\n"),
        (b"GET / HTTP/1.1\r\n\r\n", "404 Not Found", b"see /metrics\n"),
        (b"GET /metrics/ HTTP/1.1\r\n\r\n", "404 Not Found", b"see /metrics\n"),
        (b"GET /metricsx?/metrics HTTP/1.1\r\n\r\n", "404 Not Found", b"see /metrics\n"),
        (b"GET /metrics\r\n\r\n", "400 Bad Request", b"bad request\n"),  # HTTP/0.9
        (b"GET /metrics HTTP/1.1 x\r\n\r\n", "400 Bad Request", b"bad request\n"),
        (b"GET /metrics FTP/1.1\r\n\r\n", "400 Bad Request", b"bad request\n"),
        (b"GET  /metrics HTTP/1.1\r\n\r\n", "400 Bad Request", b"bad request\n"),
        (b"\r\nGET /metrics HTTP/1.1\r\n\r\n", "400 Bad Request", b"bad request\n"),
        (b"GET /metrics HTTP/1.1\r\nX: y", "400 Bad Request", b"bad request\n"),  # cut short
    ],
)
async def test_anything_but_a_get_of_metrics_gets_a_plain_refusal(
    request_head: bytes, status: str, body: bytes
) -> None:
    server = await serve()
    try:
        got_status, headers, got_body = parse(await ask(server, request_head))
        assert (got_status, headers["Content-Type"], got_body) == (
            f"HTTP/1.1 {status}",
            "text/plain",
            body,
        )
    finally:
        await server.close()


async def test_a_request_head_of_more_than_8_kib_is_refused() -> None:
    def head(size: int) -> bytes:
        start = b"GET /metrics HTTP/1.1\r\nX-Pad: "
        return start + b"p" * (size - len(start)) + b"\r\n\r\n"

    server = await serve()
    try:
        # 8192 bytes before the blank line that ends the head are read; one more is not.
        assert parse(await ask(server, head(8192)))[0] == "HTTP/1.1 200 OK"
        assert parse(await ask(server, head(8193)))[0] == "HTTP/1.1 400 Bad Request"
    finally:
        await server.close()


async def test_a_head_not_finished_within_5_seconds_is_refused(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # The loop's clock is moved instead of waiting: no wall time is spent.
    loop = asyncio.get_running_loop()
    offset = 0.0
    real_time = loop.time
    monkeypatch.setattr(loop, "time", lambda: real_time() + offset)
    server = await serve()
    reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
    try:
        writer.write(b"GET /metrics HTTP/1.1\r\n")  # and then nothing
        await writer.drain()
        handler = await _handler_waiting()
        # Margins of a second and of half a second: a loaded machine may stall between
        # moving the clock and looking, and the real clock goes on meanwhile.
        offset = 4.0
        await _turns(50)
        assert not handler.done(), "refused within 4 s"
        offset = 5.5
        await _turns(200, until=handler.done)
        assert handler.done(), "still waiting at 5.5 s"
        status, _, body = parse(await reader.read())
        assert (status, body) == ("HTTP/1.1 400 Bad Request", b"bad request\n")
    finally:
        writer.close()
        await writer.wait_closed()
        await server.close()


async def _handler_waiting() -> asyncio.Task[object]:
    """The server's task for our connection, once it waits for the request head."""
    for _ in range(10_000):
        for task in asyncio.all_tasks():
            coro = task.get_coro()
            if getattr(coro, "__qualname__", "").endswith("._serve") and getattr(
                coro, "cr_await", None
            ):
                return task
        await asyncio.sleep(0)
    raise AssertionError("the server never took the connection")


async def _turns(count: int, until: object = None) -> None:
    for _ in range(count):
        if callable(until) and until():
            return
        await asyncio.sleep(0)


async def test_a_render_that_fails_is_logged_answered_500_and_the_next_scrape_is_served(
    caplog: pytest.LogCaptureFixture,
) -> None:
    calls = iter([RuntimeError("family broke"), BODY])

    def render() -> bytes:
        value = next(calls)
        if isinstance(value, Exception):
            raise value
        return value

    server = await serve(render)
    try:
        with caplog.at_level(logging.INFO, logger="edgefleet.metrics"):
            failed = parse(await ask(server, b"GET /metrics HTTP/1.1\r\n\r\n"))
        assert failed == (
            "HTTP/1.1 500 Internal Server Error",
            {"Content-Type": "text/plain", "Content-Length": "15", "Connection": "close"},
            b"internal error\n",
        )
        (record,) = [r for r in caplog.records if r.levelno == logging.ERROR]
        assert record.name == "edgefleet.metrics"
        assert record.getMessage() == "metrics request failed"
        assert record.exc_info is not None and "family broke" in str(record.exc_info[1])
        assert parse(await ask(server, b"GET /metrics HTTP/1.1\r\n\r\n"))[2] == BODY
    finally:
        await server.close()


async def test_start_logs_the_url_with_the_bound_port_and_close_stops_serving(
    caplog: pytest.LogCaptureFixture,
) -> None:
    never_started = MetricsServer(lambda: BODY, PROMETHEUS_TEXT, Address("127.0.0.1", 0))
    assert never_started.port == 0, "the configured port until start binds one"
    await never_started.close()  # closing what never started is harmless
    with caplog.at_level(logging.INFO, logger="edgefleet.metrics"):
        server = await serve()
    assert f"metrics on http://127.0.0.1:{server.port}/metrics" in [
        r.getMessage() for r in caplog.records if r.name == "edgefleet.metrics"
    ]
    await server.close()
    with pytest.raises(ConnectionRefusedError):
        await asyncio.open_connection("127.0.0.1", server.port)
