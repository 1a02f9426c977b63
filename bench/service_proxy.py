"""The agent's local service proxy against direct connections, in the same run.

Three Python ``http.server`` backends (1 KiB responses) on 127.0.0.31-33; the proxy is
the agent's own :class:`~edgefleet_agent.proxy.listener.Listener` and
:class:`~edgefleet_agent.proxy.balancer.Balancer`, run in a process of its own (as in the
agent); the load generator is a third process with 16 concurrent clients, each doing
HTTP/1.0 GETs (one TCP connection per request, like the service tests). It measures
``direct`` (round-robin over the backends) then ``proxy``, alternating ``rounds`` times,
and reports requests/s and latency percentiles per mode, and the ratios the issue sets
targets for (>= 0.7x direct requests/s, <= 1 ms added p50).

    python -m bench.service_proxy [--seconds 5] [--rounds 2] [--json out.json]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import subprocess
import sys
import time
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any

import psutil

BACKENDS = ("127.0.0.31", "127.0.0.32", "127.0.0.33")
SERVER = Path(__file__).with_name("service_backend.py")


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def _get(host: str, port: int) -> float:
    started = time.perf_counter()
    reader, writer = await asyncio.open_connection(host, port)
    try:
        writer.write(b"GET / HTTP/1.0\r\nHost: bench\r\n\r\n")
        data = await reader.read()
    finally:
        writer.close()
    if not data.startswith(b"HTTP/1.0 200") or len(data.partition(b"\r\n\r\n")[2]) != 1024:
        raise ValueError(f"bad response {data[:60]!r}")
    return time.perf_counter() - started


async def _load(targets: list[tuple[str, int]], seconds: float, clients: int) -> dict[str, Any]:
    latencies: list[float] = []
    failures = 0
    deadline = time.perf_counter() + seconds

    async def client(index: int) -> None:
        nonlocal failures
        n = index
        while time.perf_counter() < deadline:
            host, port = targets[n % len(targets)]
            n += 1
            try:
                latencies.append(await _get(host, port))
            except Exception:
                failures += 1

    started = time.perf_counter()
    await asyncio.gather(*(client(i) for i in range(clients)))
    took = time.perf_counter() - started
    latencies.sort()

    def pct(p: float) -> float:
        return (
            latencies[min(len(latencies) - 1, int(p * len(latencies)))] * 1000 if latencies else 0.0
        )

    return {"requests": len(latencies), "failures": failures, "req_per_s": len(latencies) / took,
            "p50_ms": pct(0.5), "p90_ms": pct(0.9), "p99_ms": pct(0.99)}  # fmt: skip


async def _serve_proxy(port: int, backend_port: int) -> None:
    import logging
    import random

    logging.basicConfig(level=logging.INFO, format="proxy: %(message)s")
    from edgefleet_agent.proxy.balancer import Balancer
    from edgefleet_agent.proxy.listener import Listener
    from edgefleet_protocol import Endpoint, ServiceEndpoints

    endpoints = [Endpoint(node=f"n{i}", address=a, port=backend_port, replica=f"r{i}")
                 for i, a in enumerate(BACKENDS)]  # fmt: skip
    balancer = Balancer(site="s", region=None, rng=random.Random(1))
    balancer.update(ServiceEndpoints(service="b", app="b", endpoints=endpoints, updated_at=0))
    listener = Listener(balancer, port_name="main", hosts=("127.0.0.1",), port=port)
    await listener.start()
    print("ready", flush=True)
    await asyncio.Event().wait()


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--json", type=Path)
    parser.add_argument("--profile", type=Path, help="cProfile the proxy process into this file")
    parser.add_argument(
        "--loop",
        choices=("asyncio", "uvloop", "both"),
        default="both",
        help="the proxy's event loop: the agent's default (asyncio), uvloop "
        "(the agent's --event-loop uvloop), or both, alternated in one run",
    )
    parser.add_argument("--serve-proxy", nargs=2, type=int, help=argparse.SUPPRESS)
    parser.add_argument("--load", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.serve_proxy:
        serve = _runner(args.loop)
        if args.profile is None:
            serve(_serve_proxy(*args.serve_proxy))
            return {}
        import cProfile
        import signal

        profiler = cProfile.Profile()
        signal.signal(signal.SIGTERM, lambda *_: (profiler.dump_stats(args.profile), os._exit(0)))
        profiler.enable()
        serve(_serve_proxy(*args.serve_proxy))
        return {}
    if args.load:
        spec = json.loads(args.load)
        targets = [tuple(t) for t in spec["targets"]]
        print(json.dumps(asyncio.run(_load(targets, spec["seconds"], spec["clients"]))))  # type: ignore[arg-type]
        return {}
    loops = ("asyncio", "uvloop") if args.loop == "both" else (args.loop,)
    return run(args.seconds, args.rounds, args.clients, args.json, args.profile, loops)


def _runner(loop: str) -> Callable[[Coroutine[Any, Any, None]], None]:
    if loop == "uvloop":
        import uvloop

        return uvloop.run
    return asyncio.run


def run(
    seconds: float,
    rounds: int,
    clients: int,
    out: Path | None,
    profile: Path | None = None,
    loops: tuple[str, ...] = ("asyncio",),
) -> dict[str, Any]:
    backend_port = free_port()
    procs = [subprocess.Popen([sys.executable, str(SERVER), host, str(backend_port)])
             for host in BACKENDS]  # fmt: skip
    extra = ["--profile", str(profile)] if profile is not None else []
    proxies: dict[str, tuple[subprocess.Popen[bytes], int]] = {}
    try:
        for loop in loops:
            port = free_port()
            proxies[loop] = (subprocess.Popen(
                [sys.executable, "-m", "bench.service_proxy", "--serve-proxy", str(port),
                 str(backend_port), "--loop", loop, *extra], stdout=subprocess.PIPE,
            ), port)  # fmt: skip
        for proc, _ in proxies.values():
            assert proc.stdout is not None and proc.stdout.readline().strip() == b"ready"
        time.sleep(0.5)
        modes: dict[str, list[list[Any]]] = {"direct": [[h, backend_port] for h in BACKENDS]}
        for loop, (_, port) in proxies.items():
            modes[_mode(loop)] = [["127.0.0.1", port]]
        results: dict[str, list[dict[str, Any]]] = {m: [] for m in modes}
        for _ in range(rounds):
            for mode, targets in modes.items():
                spec = json.dumps({"targets": targets, "seconds": seconds, "clients": clients})
                watched = next((psutil.Process(proc.pid) for loop, (proc, _) in proxies.items()
                                if _mode(loop) == mode), None)  # fmt: skip
                before = sum(watched.cpu_times()[:2]) if watched else 0.0
                done = subprocess.run([sys.executable, "-m", "bench.service_proxy", "--load", spec],
                                      capture_output=True, check=True)  # fmt: skip
                result = json.loads(done.stdout)
                if watched is not None:  # the proxy's own CPU per relayed request
                    used = sum(watched.cpu_times()[:2]) - before
                    result["proxy_cpu_ms_per_request"] = used * 1000 / max(result["requests"], 1)
                results[mode].append(result)
    finally:
        for proc, _ in proxies.values():
            proc.terminate()  # SIGTERM: a profiled proxy writes its stats first
            proc.wait()
        for p in procs:
            p.kill()
            p.wait()
    summary = {m: _merge(r) for m, r in results.items()}
    direct = summary["direct"]
    report = {
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "machine": f"{platform.node()} {platform.machine()} {os.cpu_count()} CPUs, "
        f"load {os.getloadavg()[0]:.2f} at end (shared, noisy)",
        "clients": clients, "seconds_per_round": seconds, "rounds": rounds,
        "modes": summary,
    }  # fmt: skip
    for loop in proxies:
        got = summary[_mode(loop)]
        suffix = "" if loop == "asyncio" else f"_{loop}"
        report[f"proxy{suffix}_vs_direct_req_per_s"] = got["req_per_s"] / direct["req_per_s"]
        report[f"added_p50_ms{suffix}"] = got["p50_ms"] - direct["p50_ms"]
    print(json.dumps(report, indent=2))
    if out is not None:
        out.write_text(json.dumps(report, indent=2) + "\n")
    return report


def _mode(loop: str) -> str:
    return "proxy" if loop == "asyncio" else f"proxy-{loop}"


def _merge(rounds: list[dict[str, Any]]) -> dict[str, Any]:
    keys = ("req_per_s", "p50_ms", "p90_ms", "p99_ms")
    merged: dict[str, Any] = {k: sum(r[k] for r in rounds) / len(rounds) for k in keys}
    merged["requests"] = sum(r["requests"] for r in rounds)
    merged["failures"] = sum(r["failures"] for r in rounds)
    cpu = [r["proxy_cpu_ms_per_request"] for r in rounds if "proxy_cpu_ms_per_request" in r]
    if cpu:
        merged["proxy_cpu_ms_per_request"] = sum(cpu) / len(cpu)
    return merged


if __name__ == "__main__":
    main()
