"""Pytest fixtures for the real control plane (enabled in the root conftest.py).

- `control_plane`: one ControlPlane for the session, built first if its binaries are missing;
- `cluster_kubeconfig`: the test user's kubeconfig file;
- `cluster_namespace`: a fresh namespace name per test (the cluster is shared by the session).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.control_plane import binaries
from tests.control_plane.harness import ControlPlane


@pytest.fixture(scope="session")
def control_plane() -> Iterator[ControlPlane]:
    if binaries.missing():
        binaries.build()
    plane = ControlPlane().start()
    try:
        yield plane
    finally:
        plane.stop()


@pytest.fixture
def cluster_kubeconfig(control_plane: ControlPlane) -> Path:
    control_plane.ensure_volumes()
    return control_plane.kubeconfig


@pytest.fixture
def cluster_namespace() -> str:
    return f"t-{uuid.uuid4().hex[:10]}"
