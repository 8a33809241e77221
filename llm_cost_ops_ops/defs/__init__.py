"""Dagster wiring: resources wrapping the libraries, and per-environment definitions."""
