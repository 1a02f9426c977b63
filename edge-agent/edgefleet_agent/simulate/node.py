"""One simulated gateway of the fleet simulator: a real agent, its device and its link.

:meth:`SimNode.boot` builds the agent exactly as ``edgefleet-agent run --runtime simulated``
does (settings, local store, runtime from
:func:`~edgefleet_agent.service.runtime_factory.build_runtimes`), plus the two device seams
(:mod:`~edgefleet_agent.simulate.device`), and runs it as a task; a faultable node's agent
connects through its own :class:`~edgefleet_agent.simulate.link.Link`. :meth:`SimNode.die`
is a power cut: the link is killed first, so nothing the dying agent still tries to send
gets out.

Also here: the event-loop handler that keeps a deliberate kill from logging aiomqtt's
cancelled-connect traceback (:func:`quiet_cancelled_connects`).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Literal

from edgefleet_protocol.broker import BrokerSettings
from edgefleet_protocol.profiles import Profile

from edgefleet_agent.service.agent import Agent
from edgefleet_agent.service.runtime_factory import build_runtimes
from edgefleet_agent.settings import AgentSettings
from edgefleet_agent.simulate.device import DeviceSampler, host_facts
from edgefleet_agent.simulate.link import Link
from edgefleet_agent.simulate.plan import NodePlan
from edgefleet_agent.simulate.settings import SimulateSettings
from edgefleet_agent.store import LocalStore

log = logging.getLogger("edgefleet.simulate")

NodeState = Literal["new", "running", "killed", "stopped"]
HALT_TIMEOUT_S = 30.0

Handler = Callable[[asyncio.AbstractEventLoop, dict[str, Any]], object]


@dataclass
class SimNode:
    """Invariants: only a running node has an agent task; a faultable node has a link from
    its first boot on; ``flapping`` is the task toggling its link, if any."""

    plan: NodePlan
    profile: Profile
    faultable: bool
    state: NodeState = "new"
    agent: Agent | None = None
    task: asyncio.Task[None] | None = None
    stop: asyncio.Event = field(default_factory=asyncio.Event)
    link: Link | None = None
    flapping: asyncio.Task[None] | None = None

    @property
    def id(self) -> str:
        return self.plan.node

    @property
    def healthy(self) -> bool:
        """Running on a working link, so it can take a new fault."""
        link_up = self.link is None or self.link.state == "up"
        return self.state == "running" and link_up and self.flapping is None

    def agent_settings(
        self, s: SimulateSettings, broker: BrokerSettings, state_root: Path
    ) -> AgentSettings:
        plan = self.plan
        return AgentSettings(
            node=plan.node,
            site=plan.site,
            broker=broker,
            state_dir=state_root / plan.node,
            runtime="simulated",
            profile=plan.profile,
            profiles_dir=s.profiles_dir,
            addresses=(plan.address,),
            root=s.root,
            heartbeat_s=plan.heartbeat_s,
            keepalive_s=s.keepalive_s,
            sample_interval_s=s.sample_interval_s,
            reconcile_interval_s=s.reconcile_interval_s,
            capabilities_interval_s=s.capabilities_interval_s,
            sim_seed=plan.runtime_seed,
            sim_start_delay_s=s.start_delay_s,
            sim_failure_rate=s.failure_rate,
            log_level=s.log_level,
        )

    async def boot(self, s: SimulateSettings, broker: BrokerSettings, state_root: Path) -> Agent:
        """Start a fresh agent (a new session on the node's store); returns it."""
        if self.faultable:
            if self.link is not None:
                await self.link.close()
            self.link = Link(broker.host, broker.port)
            broker = replace(broker, host="127.0.0.1", port=await self.link.open())
        settings = self.agent_settings(s, broker, state_root)
        agent = Agent(
            settings,
            store=LocalStore(settings.state_dir),
            runtimes=build_runtimes(settings),
            profile=self.profile,
            sampler=DeviceSampler(self.plan, self.profile),
            host_facts=host_facts(self.profile, self.plan),
        )
        self.agent, self.stop, self.state = agent, asyncio.Event(), "running"
        self.task = asyncio.create_task(agent.run(self.stop), name=f"sim-{self.id}")
        return agent

    def stop_flapping(self) -> None:
        if self.flapping is not None:
            self.flapping.cancel()
            self.flapping = None

    def start_flapping(self, down_s: float, up_s: float) -> None:
        assert self.link is not None
        self.stop_flapping()
        self.flapping = asyncio.create_task(
            _flap(self.link, down_s, up_s), name=f"sim-flap-{self.id}"
        )

    def die(self) -> asyncio.Task[None] | None:
        """Power cut: the link dies (sockets closed, or silent if it was down), then the
        agent task is cancelled. Returns the task to await."""
        self.stop_flapping()
        assert self.link is not None
        self.link.kill()
        task, self.task, self.state = self.task, None, "killed"
        if task is not None:
            task.cancel()
        return task


async def _flap(link: Link, down_s: float, up_s: float) -> None:
    try:
        while True:
            link.down()
            await asyncio.sleep(down_s)
            link.up()
            await asyncio.sleep(up_s)
    finally:
        link.up()


def quiet_cancelled_connects(loop: asyncio.AbstractEventLoop) -> Handler | None:
    """An agent stopped or killed while its MQTT CONNECT is in flight leaves aiomqtt's
    socket callback to find a cancelled future: it raises ``CancelledError`` inside an event
    loop callback, which asyncio logs as an error with a traceback. The agent is gone on
    purpose, so that one case goes to the debug log; anything else goes to the previous
    handler, which is returned so the caller can put it back."""
    previous = loop.get_exception_handler()

    def handler(loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
        if _cancelled_connect(context.get("exception")):
            log.debug("a stopped agent's connect attempt ended: %s", context.get("message"))
        elif previous is not None:
            previous(loop, context)
        else:
            loop.default_exception_handler(context)

    loop.set_exception_handler(handler)
    return previous


def _cancelled_connect(exc: object) -> bool:
    """``exc`` is aiomqtt's disconnect callback tripping over a cancelled connect."""
    if not isinstance(exc, asyncio.CancelledError):
        return False
    tb = exc.__traceback__
    while tb is not None:
        code = tb.tb_frame.f_code
        if code.co_name == "_on_disconnect" and "aiomqtt" in code.co_filename:
            return True
        tb = tb.tb_next
    return False
