"""Render kustomize overlays into content-addressed bundles and check them (no Dagster here)."""

from .findings import Finding
from .model import ManifestObject, RenderedBundle
from .render import render_overlay

__all__ = ["Finding", "ManifestObject", "RenderedBundle", "render_overlay"]
