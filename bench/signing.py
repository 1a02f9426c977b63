"""Signed desired state: what signing and verifying cost per document, and their share of
convergence at 1,000 gateways.

Measured in this process, on the real code paths:

- ``sign``: :func:`edgefleet_orchestrator.security.signer.sign_document` (encode, canonical
  bytes, Ed25519 sign) — what the orchestrator adds per document of a pass;
- ``verify``: :func:`edgefleet_agent.security.trust.verify` (parse, schema, canonical bytes,
  Ed25519 verify, node and replay checks) minus ``admit_only``, the unsigned agent's
  parse + schema, measured alongside — what a gateway adds per document;

for documents of 1, 10 and 50 workloads. The share at 1,000 gateways: a deploy that touches
every gateway signs 1,000 documents one after the other in the orchestrator's pass (the
serial part), while each gateway verifies its own one document in parallel; so the added
critical path is ``1000 x sign`` (timed as one batch of 1,000 documents) ``+ 1 x verify``,
set against the 1,000-node convergence figure recorded by ``bench.convergence``
(``--baseline-s``, default the 2026-11-26 run's daemon case, 3.58 s). That is a derived
share, not a second convergence run: the machine this was recorded on is shared and noisy,
and a difference of a few percent between two convergence runs would be lost in that noise.

    python -m bench.signing [--iterations 2000] [--baseline-s 3.58] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import os
import time
from collections.abc import Callable
from typing import Any

from edgefleet_agent.core.admission import admit
from edgefleet_agent.security.trust import TrustState, Verified, verify
from edgefleet_cli.brokerconfig import trust as keys
from edgefleet_orchestrator.security.signer import load_signer, sign_document
from edgefleet_protocol import Desired, DesiredWorkload, WorkloadSpec, encode, spec_hash
from edgefleet_protocol.signing import TrustAnchor

from bench import stats

GATEWAYS = 1000
BASELINE_CONVERGENCE_S = 3.58  # bench/results/2026-11-26-vm.md, convergence, 1000 nodes daemon


def document(workloads: int) -> Desired:
    items = []
    for i in range(workloads):
        spec = WorkloadSpec.model_validate(
            {
                "runtime": "docker",
                "image": f"registry.example.net/plant/app-{i}:1.{i}",
                "env": {"LOG_LEVEL": "info", "SITE": "plant-a"},
                "ports": [{"container": 8000 + i}],
                "resources": {"cpu": 0.25, "memory_mb": 128},
            }
        )
        items.append(
            DesiredWorkload(name=f"app-{i}-0", app=f"app-{i}", spec=spec, spec_hash=spec_hash(spec))
        )
    return Desired(node="gw-1", site="plant-a", generation=7, issued_at=time.time(),
                   workloads=items)  # fmt: skip


def timed(fn: Callable[[], object], iterations: int) -> list[float]:
    samples = []
    for _ in range(iterations):
        started = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - started)
    return samples


def micro(samples: list[float]) -> dict[str, float]:
    return {
        "p50_us": round(stats.percentile(samples, 50) * 1e6, 1),
        "p99_us": round(stats.percentile(samples, 99) * 1e6, 1),
    }


def measure(iterations: int, baseline_s: float) -> dict[str, Any]:
    root, orch = keys.new_key(), keys.new_key()
    anchor = TrustAnchor.model_validate_json(keys.anchor_json(root, orch))
    state = TrustState(anchor, anchor.orchestrator)
    signer = load_signer(keys.key_pem(orch))
    cases: dict[str, Any] = {}
    for workloads in (1, 10, 50):
        doc = document(workloads)
        payload = encode(sign_document(doc, signer))
        assert isinstance(verify(payload, state=state, node="gw-1", site="plant-a", held=None),
                          Verified)  # fmt: skip

        def sign_once(d: Desired = doc) -> object:
            return sign_document(d, signer)

        def verify_once(p: bytes = payload) -> object:
            return verify(p, state=state, node="gw-1", site="plant-a", held=None)

        def admit_once(p: bytes = payload) -> object:
            return admit(p, node="gw-1", site="plant-a", runtimes=("docker",),
                         current_generation=None)  # fmt: skip

        sign = timed(sign_once, iterations)
        check = timed(verify_once, iterations)
        plain = timed(admit_once, iterations)
        cases[f"{workloads} workloads"] = {
            "bytes": len(payload),
            "sign": micro(sign),
            "verify": micro(check),
            "admit_only": micro(plain),
        }
    one = cases["1 workloads"]
    # The serial part as a pass does it: 1,000 distinct documents signed back to back
    # (wall time, median of 5 rounds, so the noise of a shared machine is in it).
    docs = [document(1).model_copy(update={"node": f"gw-{i}"}) for i in range(GATEWAYS)]
    rounds = timed(lambda: [sign_document(d, signer) for d in docs], 5)
    serial_s = stats.percentile(rounds, 50)
    verify_s = one["verify"]["p50_us"] / 1e6
    added = serial_s + verify_s
    return {
        "iterations": iterations,
        "load_avg_at_start": list(os.getloadavg()),
        "cpus": os.cpu_count(),
        "cases": cases,
        "at_1000": {
            "sign_1000_documents_s": round(serial_s, 4),
            "sign_1000_documents_rounds_s": [round(r, 4) for r in rounds],
            "verify_one_document_s": round(verify_s, 6),
            "added_critical_path_s": round(added, 4),
            "baseline_convergence_s": baseline_s,
            "share_of_convergence": round(added / (baseline_s + added), 4),
        },
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--iterations", type=int, default=2000)
    parser.add_argument("--baseline-s", type=float, default=BASELINE_CONVERGENCE_S)
    parser.add_argument("--json", help="also write the result here")
    args = parser.parse_args()
    result = measure(args.iterations, args.baseline_s)
    text = json.dumps(result, indent=2)
    print(text)
    if args.json:
        with open(args.json, "w") as out:
            out.write(text + "\n")


if __name__ == "__main__":
    main()
