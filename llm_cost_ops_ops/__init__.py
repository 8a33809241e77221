"""Dagster orchestration for the LLM Cost Ops platform's lifecycle on Kubernetes."""
