"""Fixtures of the end-to-end tier."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest


@pytest.fixture
def queued_dagster_home(tmp_path, project_root) -> Path:
    """A fresh instance directory with the project's dagster.yaml (QueuedRunCoordinator, env-lock)."""
    home = tmp_path / "dagster_home"
    home.mkdir()
    shutil.copy(project_root / "dagster_home" / "dagster.yaml", home / "dagster.yaml")
    return home
