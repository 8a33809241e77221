"""The deploy engine's Kubernetes layer: connect, dry-run, apply in waves, judge health, wait,
prune, record releases and hold a per-environment Lease. No Dagster imports here."""
