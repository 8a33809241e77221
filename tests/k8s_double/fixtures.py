"""Pytest fixtures for the double. Enable them for a suite with
`pytest_plugins = ["tests.k8s_double.fixtures"]` in the root conftest.py."""

from __future__ import annotations

from pathlib import Path

import pytest
from kubernetes import client

from .controller import ControllerSimulator
from .server import ApiServer


@pytest.fixture
def k8s_server():
    """A running ApiServer, stopped after the test."""
    with ApiServer() as server:
        yield server


@pytest.fixture
def k8s_api_client(k8s_server: ApiServer):
    """An official-client ApiClient pointed at `k8s_server`."""
    with client.ApiClient(k8s_server.client_configuration()) as api_client:
        yield api_client


@pytest.fixture
def k8s_kubeconfig(k8s_server: ApiServer, tmp_path: Path) -> Path:
    """A kubeconfig file: context `double` (current) reaches `k8s_server`, `other` does not."""
    return k8s_server.kubeconfig(tmp_path / "kubeconfig")


@pytest.fixture
def k8s_controllers(k8s_server: ApiServer):
    """A ControllerSimulator for `k8s_server`; step() it, or run_in_background() it."""
    simulator = ControllerSimulator(k8s_server)
    yield simulator
    simulator.stop()
