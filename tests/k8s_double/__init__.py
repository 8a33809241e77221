"""A Kubernetes API server test double: real HTTP on 127.0.0.1, in-memory state, server-side
apply, watches, fault injection, and a controller simulator that rolls workloads out."""

from .controller import ControllerSimulator
from .faults import RecordedRequest
from .server import ApiServer
from .status import ApiError

__all__ = ["ApiError", "ApiServer", "ControllerSimulator", "RecordedRequest"]
