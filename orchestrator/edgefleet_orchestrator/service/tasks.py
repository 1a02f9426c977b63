"""Task helpers for the service shell's loops (who calls it: :mod:`.orchestrator`)."""

from __future__ import annotations

import asyncio
from typing import Any


async def cancel_all(tasks: list[asyncio.Task[Any]], every_s: float = 0.5) -> None:
    """Cancel ``tasks`` and wait until all have ended, cancelling again every ``every_s``.

    Cancelling once is not always enough on Python 3.11: ``asyncio.wait_for`` (used by
    aiomqtt for every QoS 1 publish) can swallow a cancellation that arrives as its inner
    future completes (fixed in 3.12), and a loop that swallowed it goes back to waiting
    for input that will never come. Asking again ends it at its next await.
    """
    pending = {t for t in tasks if not t.done()}
    while pending:
        for task in pending:
            task.cancel()
        _, pending = await asyncio.wait(pending, timeout=every_s)


__all__ = ["cancel_all"]
