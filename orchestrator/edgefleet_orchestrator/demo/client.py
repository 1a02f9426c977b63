"""The demo's MQTT side: watch the fleet's retained topics, send operator commands.

Who calls it: :mod:`edgefleet_orchestrator.demo.main`. It talks to the orchestrator exactly as
the CLI or a Node-RED flow would, over the public command API and status topics — the demo
has no back door into the orchestrator process.

Invariants: one task (:meth:`FleetWatch._consume`) reads the session; it folds status
messages into :attr:`FleetWatch.view` and hands replies to the caller waiting on their
``request_id``. ``changed`` is set after every change of the view.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
import uuid
from collections.abc import Callable
from typing import Any

from edgefleet_protocol import ProtocolError, TopicKind, Topics
from edgefleet_protocol.broker import BrokerSettings
from edgefleet_protocol.session import Publication, Session

from edgefleet_orchestrator.demo.view import FleetView

Say = Callable[[str], None]


class DemoStepFailed(RuntimeError):
    """A step of the demo did not happen in time, or a command was refused."""


class FleetWatch:
    def __init__(self, url: str, root: str, *, user: str = "demo") -> None:
        self.topics = Topics(root)
        self.view = FleetView()
        self.changed = asyncio.Event()
        self.reply_root = f"{root}/replies/{user}"
        self._waiting: dict[str, asyncio.Future[dict[str, Any]]] = {}
        self.session = Session(
            BrokerSettings.from_url(url),
            client_id=f"edgefleet-demo-{uuid.uuid4().hex[:6]}",
            subscriptions=[
                self.topics.all_nodes(TopicKind.NODE_STATUS),
                self.topics.all_nodes(TopicKind.NODE_REPORTED),
                self.topics.all_nodes(TopicKind.NODE_DESIRED),
                self.topics.all_app_status(),
                self.topics.fleet_summary(),
                f"{self.reply_root}/#",
            ],
        )
        self._task: asyncio.Task[None] | None = None

    async def __aenter__(self) -> FleetWatch:
        self.session.start()
        if not await self.session.wait_connected(20):
            await self.session.close()
            raise DemoStepFailed(f"cannot connect to the broker: {self.session.stats.last_error}")
        self._task = asyncio.create_task(self._consume(), name="demo-watch")
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        await self.session.close()

    async def _consume(self) -> None:
        async for message in self.session.messages():
            if message.topic.startswith(self.reply_root + "/"):
                self._answer(message.payload)
                continue
            try:
                parsed = self.topics.parse(message.topic)
            except ProtocolError:
                continue
            if self.view.apply(parsed, message.payload):
                self.changed.set()

    def _answer(self, payload: bytes) -> None:
        try:
            reply = json.loads(payload)
        except ValueError:
            return
        future = self._waiting.pop(str(reply.get("request_id")), None)
        if future is not None and not future.done():
            future.set_result(reply)

    async def call(self, verb: str, *, timeout_s: float = 20.0, **args: Any) -> Any:
        """Send one command and return its result; raise with the orchestrator's message if
        it was refused or not answered in time."""
        request_id = uuid.uuid4().hex
        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._waiting[request_id] = future
        body = {"v": 1, "request_id": request_id, "reply_to": f"{self.reply_root}/{request_id}"}
        payload = json.dumps({**body, **args}).encode()
        deadline = time.monotonic() + timeout_s
        try:
            # Resend while unanswered: a request sent before the orchestrator subscribed
            # is lost, and requests are idempotent by request_id.
            while True:
                await self.session.publish(Publication(self.topics.command(verb), payload))
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(min(1.0, max(0.1, deadline - time.monotonic()))):
                        reply = await asyncio.shield(future)
                        break
                if time.monotonic() >= deadline:
                    raise DemoStepFailed(f"no reply to '{verb}' within {timeout_s:g} s")
        finally:
            self._waiting.pop(request_id, None)
        if not reply.get("ok"):
            error = reply.get("error") or {}
            raise DemoStepFailed(f"'{verb}' refused: {error.get('code')}: {error.get('message')}")
        return reply.get("result")

    async def until(
        self,
        check: Callable[[FleetView], bool],
        *,
        timeout_s: float,
        what: str,
        progress: Callable[[FleetView], str] | None = None,
        say: Say = print,
        every_s: float = 1.0,
        since: float | None = None,
    ) -> float:
        """Wait until ``check(view)`` holds; return the seconds since ``since`` (a
        ``time.monotonic()`` reading; default: now). While waiting, say the ``progress``
        line whenever it changes (at most once per ``every_s``)."""
        started = time.monotonic() if since is None else since
        deadline = time.monotonic() + timeout_s
        last_line, last_said = "", 0.0
        while True:
            done = check(self.view)
            if progress is not None:
                line = progress(self.view)
                now = time.monotonic()
                if line != last_line and (done or now - last_said >= every_s):
                    say(line)
                    last_line, last_said = line, now
            if done:
                return time.monotonic() - started
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise DemoStepFailed(f"timed out after {timeout_s:g} s waiting for {what}")
            self.changed.clear()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(min(remaining, every_s)):
                    await self.changed.wait()
