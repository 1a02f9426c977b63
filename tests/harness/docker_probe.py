"""Is a real dockerd there for the docker tier? (``tests/conftest.py`` asks once.)

A module of its own, not a conftest function: a test that imports ``conftest`` gets
whichever of the suite's several conftest modules was imported last under that name.
"""

from __future__ import annotations

import gc
import shutil
import warnings


def docker_available() -> tuple[bool, str]:
    if shutil.which("docker") is None:
        return False, "docker CLI/daemon not installed"
    import docker

    try:
        client = docker.from_env(timeout=5)
        try:
            client.ping()
        finally:
            client.close()
    except Exception as exc:
        reason = f"dockerd does not answer ({exc.__class__.__name__})"
    else:
        return True, ""
    # The SDK leaks the socket of a failed API-version negotiation (from_env raises before
    # there is a client to close). Left to the garbage collector, it surfaces as a
    # ResourceWarning, an error in this suite, in the setup of whichever test runs next:
    # collect it here, once the exception's frames are gone, with that warning silenced.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ResourceWarning)
        gc.collect()
    return False, reason
