"""Tier gating shared by conftest and tests: skip locally, fail in CI.

Kept out of ``conftest.py`` so test modules can import it by a unique name (two
``conftest`` modules exist in this tree, and ``from conftest import`` picks whichever was
imported first).
"""

from __future__ import annotations

import os

import pytest

IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")


def require(available: bool, reason: str) -> None:
    """Skip locally, fail in CI, when a tier's real dependency is missing."""
    if available:
        return
    if IN_CI:
        pytest.fail(f"CI=true and {reason}: the tier must run in CI, not skip", pytrace=False)
    pytest.skip(reason)
