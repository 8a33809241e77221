"""The real Kubernetes control plane the suite's cluster tier runs on (see harness.py and README.md)."""
