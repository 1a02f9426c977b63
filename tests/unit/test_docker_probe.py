"""The suite's "is dockerd there?" probe leaves nothing behind when dockerd is down.

It once leaked the docker SDK's socket, and the ResourceWarning (an error in this suite)
surfaced in the setup of an unrelated broker test run later (test_agent_hello, in a run
where dockerd had stopped), a failure pointing at the wrong place.
"""

from __future__ import annotations

import gc
import sys
import warnings
from pathlib import Path

import pytest
from harness import docker_probe


def test_a_dockerd_that_does_not_answer_leaves_no_unclosed_socket(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setattr(docker_probe.shutil, "which", lambda name: f"/usr/bin/{name}")
    monkeypatch.setenv("DOCKER_HOST", f"unix://{tmp_path / 'no-dockerd.sock'}")
    leaked: list[BaseException | None] = []
    monkeypatch.setattr(sys, "unraisablehook", lambda u: leaked.append(u.exc_value))

    with warnings.catch_warnings():
        warnings.simplefilter("error", ResourceWarning)
        ok, reason = docker_probe.docker_available()
        gc.collect()

    assert (ok, reason) == (False, "dockerd does not answer (DockerException)")
    assert leaked == []
