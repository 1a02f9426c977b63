"""The Docker runtime: workloads as containers on the gateway's own dockerd.

The agent's executor calls this through the :class:`~edgefleet_agent.core.runtime.Runtime`
seam. The docker SDK is synchronous, so every daemon call runs in a worker thread
(``asyncio.to_thread``); the event loop never blocks on the daemon.

Ownership. A container is ours only if it carries ``io.edgefleet.managed=true`` *and*
``io.edgefleet.node=<this node>``. Every lookup filters on both labels (and checks them
again in Python), so containers started by hand, by compose, or by another node's agent on
a shared daemon are never listed, stopped or removed. Containers are named
``edgefleet-<workload>``; a name clash with a container we do not own is a
:class:`PermanentRuntimeError`, never a reason to touch it.

Restart ownership (decided here, on purpose): **Docker's restart policy owns restarts on
exit.** ``restart: always`` becomes ``unless-stopped``, ``on-failure`` becomes
``on-failure`` (unlimited retries, Docker's own doubling backoff), ``never`` becomes ``no``.
So a crashed container comes back while the agent is down, busy or upgrading, and after a
gateway reboot dockerd restarts it before the agent has even started. The agent never
restarts a container because it exited; it only calls :meth:`DockerRuntime.restart` after
its own health checks fail. While Docker is in its restart backoff the container is
observed as ``starting`` with the last exit code in ``exit_code`` and the message.

Health. ``spec.health.kind == "docker"`` keeps the image's HEALTHCHECK and its verdict is
reported; for http/tcp/exec probes (run by the agent) the image's own check is disabled so
two checks cannot disagree. Without a Docker healthcheck, ``health`` is ``unknown``.

Live limits. ``update_resources`` changes NanoCpus/Memory/MemorySwap in place (same
container id). Labels are immutable, so the observed spec hash is recomputed from the spec
stored in a label plus the live limits (see :mod:`docker_mapping`).
"""

from __future__ import annotations

import asyncio
import logging
import math
import os
import signal
from collections.abc import Callable
from typing import Any, TypeVar

import docker
import psutil
from docker.errors import APIError, DockerException, ImageNotFound, NotFound
from docker.utils import parse_repository_tag
from edgefleet_protocol import Resources, WorkloadSpec, WorkloadUsage

from edgefleet_agent.core.runtime import (
    ExecResult,
    LogRead,
    Observed,
    PermanentRuntimeError,
    ResourceUpdate,
    TransientRuntimeError,
    WorkloadRef,
)
from edgefleet_agent.runtimes import docker_logs
from edgefleet_agent.runtimes.docker_mapping import (
    classify_pull_error,
    classify_start_error,
    container_name,
    create_kwargs,
    is_owned,
    memory_bytes,
    nano_cpus,
    observed_from_inspect,
    owner_filters,
    stored_spec,
    usage_from_stats,
)

log = logging.getLogger(__name__)

T = TypeVar("T")

EXEC_TIMED_OUT = 124  # the exit code GNU timeout uses; a timed-out probe is a failed probe
EXEC_CANNOT_RUN = 126  # the shell's "found but cannot execute" (container not running)
MAX_EXEC_OUTPUT = 4096


def _explanation(exc: BaseException) -> str:
    return str(getattr(exc, "explanation", None) or exc)


class DockerRuntime:
    """Containers on the local dockerd, owned by label. See the module docstring."""

    name = "docker"

    def __init__(
        self,
        node: str,
        site: str,
        *,
        client: Any | None = None,
        client_factory: Callable[[], Any] | None = None,
        pull_timeout_s: float = 300.0,
        call_timeout_s: float = 30.0,
        ping_timeout_s: float = 2.0,
        secrets: Callable[[WorkloadSpec], dict[str, str]] | None = None,
    ) -> None:
        self.node = node
        self._secrets = secrets or (lambda spec: {})
        self.site = site
        self.pull_timeout_s = pull_timeout_s
        self.ping_timeout_s = ping_timeout_s
        self._client = client
        self._client_factory = client_factory or (lambda: docker.from_env(timeout=call_timeout_s))

    # -- plumbing -------------------------------------------------------------------------

    def _docker(self) -> Any:
        # Created lazily (in a worker thread) so constructing the runtime never needs a daemon.
        if self._client is None:
            self._client = self._client_factory()
        return self._client

    async def _call(self, what: str, fn: Callable[[], T]) -> T:
        """Run one blocking SDK call in a thread; daemon trouble becomes a transient error."""
        try:
            return await asyncio.to_thread(fn)
        except (PermanentRuntimeError, TransientRuntimeError):
            raise
        except APIError as exc:
            if exc.status_code is not None and 400 <= exc.status_code < 500:
                raise PermanentRuntimeError(f"{what}: {_explanation(exc)}") from exc
            raise TransientRuntimeError(f"{what}: docker error: {_explanation(exc)}") from exc
        except (DockerException, OSError) as exc:
            raise TransientRuntimeError(f"{what}: docker daemon unavailable: {exc}") from exc

    def _owned_containers(self, workload: str | None = None) -> list[Any]:
        containers = self._docker().containers.list(
            all=True, filters=owner_filters(self.node, workload), ignore_removed=True
        )
        # The daemon filtered by label already; checking again costs nothing and keeps
        # "never touch what is not ours" independent of filter semantics.
        return [c for c in containers if is_owned(c.labels, self.node)]

    async def _find(self, name: str) -> Any | None:
        found = await self._call(f"looking up {name}", lambda: self._owned_containers(name))
        return found[0] if found else None

    async def read_log(self, name: str, *, tail: int, cursor: str | None) -> LogRead:
        """Logs on demand (:class:`~edgefleet_agent.core.runtime.LogReader`)."""
        container = await self._find(name)
        if container is None:
            return LogRead([], cursor or "d:0", gone=True)
        return await self._call(
            f"reading the log of {name}",
            lambda: docker_logs.read(container, tail=tail, cursor=cursor),
        )

    async def _require(self, name: str) -> Any:
        container = await self._find(name)
        if container is None:
            raise PermanentRuntimeError(f"no docker workload named {name} on node {self.node}")
        return container

    # -- the seam -------------------------------------------------------------------------

    async def available(self) -> bool:
        def ping() -> bool:
            return bool(self._docker().ping())

        try:
            return await asyncio.wait_for(asyncio.to_thread(ping), timeout=self.ping_timeout_s)
        except (TimeoutError, DockerException, OSError) as exc:
            log.debug("docker is not available: %s", exc)
            return False

    async def list_owned(self) -> list[Observed]:
        containers = await self._call("listing containers", self._owned_containers)
        return [observed_from_inspect(c.attrs) for c in containers]

    async def prepare(self, ref: WorkloadRef) -> None:
        image = ref.spec.image
        if image is None:
            raise PermanentRuntimeError(f"workload {ref.name}: runtime docker needs an image")

        def present() -> bool:
            try:
                self._docker().images.get(image)
            except ImageNotFound:
                return False
            return True

        if await self._call(f"inspecting image {image}", present):
            return
        try:
            await asyncio.wait_for(
                asyncio.to_thread(self._pull_blocking, image), timeout=self.pull_timeout_s
            )
        except TimeoutError as exc:
            # The worker thread finishes (or fails) on its own; the daemon keeps pulling, so
            # the next attempt may find the image already there.
            raise TransientRuntimeError(
                f"image {image} is not present and pulling it timed out after "
                f"{self.pull_timeout_s:g} s"
            ) from exc
        except APIError as exc:
            raise classify_pull_error(image, exc.status_code, _explanation(exc)) from exc
        except (DockerException, OSError) as exc:
            raise TransientRuntimeError(
                f"image {image} could not be pulled: docker daemon unavailable: {exc}"
            ) from exc

    def _pull_blocking(self, image: str) -> None:
        repository, tag = parse_repository_tag(image)
        # Without a tag the API would pull every tag of the repository.
        stream = self._docker().api.pull(repository, tag=tag or "latest", stream=True, decode=True)
        error: str | None = None
        for message in stream:
            if isinstance(message, dict) and message.get("error"):
                error = str(message["error"])
        if error is not None:
            raise classify_pull_error(image, None, error)

    async def start(self, ref: WorkloadRef) -> Observed:
        kwargs = create_kwargs(ref, node=self.node, site=self.site)
        kwargs["environment"].update(self._secrets(ref.spec))  # the label keeps them sealed

        def create_and_start() -> Any:
            container = self._create(ref.name, kwargs)
            try:
                container.start()
            except APIError as exc:
                # A created-but-never-started container would be observed as "starting"
                # forever; remove it so the next attempt starts clean.
                self._force_remove(container)
                raise classify_start_error(ref.name, exc.status_code, _explanation(exc)) from exc
            container.reload()
            return container

        container = await self._call(f"starting {ref.name}", create_and_start)
        return observed_from_inspect(container.attrs)

    def _create(self, workload: str, kwargs: dict[str, Any]) -> Any:
        containers = self._docker().containers
        try:
            return containers.create(**kwargs)
        except ImageNotFound as exc:
            raise TransientRuntimeError(
                f"workload {workload}: image {kwargs['image']} is not present (prepare pulls it)"
            ) from exc
        except APIError as exc:
            if exc.status_code != 409:
                raise classify_start_error(workload, exc.status_code, _explanation(exc)) from exc
        # Name clash: a leftover of ours (e.g. the agent died between create and report) is
        # replaced; anything else is left strictly alone.
        existing = containers.get(kwargs["name"])
        if not is_owned(existing.labels, self.node):
            raise PermanentRuntimeError(
                f"workload {workload}: a container named {kwargs['name']} exists and is not "
                f"managed by edgefleet on node {self.node}; it is left untouched"
            )
        self._force_remove(existing)
        return containers.create(**kwargs)

    @staticmethod
    def _force_remove(container: Any) -> None:
        try:
            container.remove(v=True, force=True)
        except NotFound:
            pass
        except APIError as exc:
            if exc.status_code != 409:  # 409: a removal is already in progress
                raise

    async def remove(self, name: str, *, timeout_s: float = 10.0) -> None:
        container = await self._find(name)
        if container is None:
            return

        def stop_and_remove() -> None:
            try:
                container.stop(timeout=math.ceil(timeout_s))
            except NotFound:
                return
            except APIError as exc:
                log.warning("stopping %s failed (%s); removing it by force", name, exc)
            self._force_remove(container)

        await self._call(f"removing {name}", stop_and_remove)

    async def restart(self, name: str) -> None:
        container = await self._require(name)
        spec = stored_spec(container.labels)
        stop_timeout = math.ceil(spec.stop_timeout_s) if spec is not None else 10
        await self._call(f"restarting {name}", lambda: container.restart(timeout=stop_timeout))

    async def exec(self, name: str, command: list[str], *, timeout_s: float) -> ExecResult:
        """Run ``command`` in the container; a command that outlives ``timeout_s`` is killed
        (best effort: by its host pid, which needs the agent in the host pid namespace) and
        reported as exit code 124; a stopped container gives exit code 126."""
        container = await self._require(name)
        api = self._docker().api
        try:
            created = await self._call(
                f"exec in {name}",
                lambda: api.exec_create(container.id, command, stdout=True, stderr=True),
            )
        except PermanentRuntimeError as exc:  # 409: the container is not running
            return ExecResult(exit_code=EXEC_CANNOT_RUN, output=exc.message)
        exec_id = created["Id"]
        try:
            raw = await asyncio.wait_for(
                asyncio.to_thread(api.exec_start, exec_id), timeout=timeout_s
            )
        except TimeoutError:
            await self._call(f"killing exec in {name}", lambda: self._kill_exec(exec_id, command))
            return ExecResult(
                exit_code=EXEC_TIMED_OUT, output=f"timed out after {timeout_s:g} s: {command}"
            )
        inspected = await self._call(f"exec in {name}", lambda: api.exec_inspect(exec_id))
        output = raw.decode(errors="replace") if isinstance(raw, bytes) else str(raw)
        return ExecResult(
            exit_code=int(inspected.get("ExitCode") or 0), output=output[-MAX_EXEC_OUTPUT:]
        )

    def _kill_exec(self, exec_id: str, command: list[str]) -> None:
        # Docker reports the host pid. In another pid namespace (agent in a container) that
        # number means some other process, so kill only if its command line is ours.
        pid = int(self._docker().api.exec_inspect(exec_id).get("Pid") or 0)
        try:
            if pid > 0 and psutil.Process(pid).cmdline() == command:
                os.kill(pid, signal.SIGKILL)
                return
        except (psutil.Error, ProcessLookupError, PermissionError) as exc:
            log.debug("could not kill timed-out exec pid %s: %s", pid, exc)
        log.info("timed-out exec %s left to finish on its own (pid %s not visible)", command, pid)

    async def update_resources(self, name: str, resources: Resources) -> ResourceUpdate:
        container = await self._require(name)
        api = self._docker().api
        limits = {
            "NanoCpus": nano_cpus(resources.cpu),
            "Memory": memory_bytes(resources.memory_mb),
            "MemorySwap": memory_bytes(resources.memory_mb),
        }

        def update() -> None:
            # docker-py's update_container() has no nano_cpus argument, and mixing CpuQuota
            # with the NanoCpus we create with is refused by the daemon, so post the same
            # request update_container() builds, with NanoCpus in it.
            response = api._post_json(api._url("/containers/{0}/update", container.id), data=limits)
            api._result(response, True)

        try:
            await self._call(f"updating {name}", update)
        except PermanentRuntimeError as exc:
            return ResourceUpdate(applied=False, message=f"docker refused the update: {exc}")
        return ResourceUpdate(applied=True)

    async def usage(self) -> dict[str, WorkloadUsage]:
        containers = await self._call("listing containers", self._owned_containers)
        running = [c for c in containers if c.status == "running"]

        async def sample(container: Any) -> tuple[str, WorkloadUsage] | None:
            workload = container.labels.get("io.edgefleet.workload", "")
            try:
                # stream=False waits for Docker's second sample, so cpu deltas are real.
                stats = await asyncio.to_thread(container.stats, stream=False)
            except (DockerException, OSError) as exc:
                log.debug("no stats for %s: %s", workload, exc)
                return None
            return workload, usage_from_stats(stats)

        samples = await asyncio.gather(*(sample(c) for c in running))
        return {name: usage for name, usage in filter(None, samples)}

    async def close(self) -> None:
        client, self._client = self._client, None
        if client is not None:
            await asyncio.to_thread(client.close)


__all__ = ["DockerRuntime", "container_name"]
