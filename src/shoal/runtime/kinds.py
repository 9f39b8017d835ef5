"""Which runtime runs a connection's stage graphs."""

from __future__ import annotations

from enum import StrEnum


class RuntimeKind(StrEnum):
    LOCAL = "local"  # every task a thread of this process (the embedded default)
    RAY = "ray"  # every task a Ray task on a Ray cluster (scheduler/ray.py)


__all__ = ["RuntimeKind"]
