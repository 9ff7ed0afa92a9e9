"""Errors raised while running a plan.

Examples
--------
>>> from hetsched.errors import HetschedError
>>> issubclass(ExecutionError, HetschedError)
True
"""

from __future__ import annotations

from hetsched.errors import HetschedError

__all__ = ["ExecutionError", "InjectedFault"]


class ExecutionError(HetschedError):
    """A run failed: an op raised, a transfer was lost twice, a wait hit the watchdog.

    ``op`` and ``device`` name where it happened (empty when not about one op).
    """

    def __init__(self, message: str, *, op: str = "", device: str = "") -> None:
        super().__init__(message)
        self.op = op
        self.device = device


class InjectedFault(RuntimeError):
    """The exception an :class:`~hetsched.exec.faults.OpFailure` makes its op raise."""
