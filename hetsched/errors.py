"""One exception hierarchy for every user-facing failure.

The CLI maps any :class:`HetschedError` to a one-line message on stderr and exit code 2.

Examples
--------
>>> from hetsched.errors import GraphError, HetschedError
>>> issubclass(GraphError, HetschedError)
True
"""

from __future__ import annotations

__all__ = [
    "GraphError",
    "HetschedError",
    "InfeasibleError",
    "OutputError",
    "PlanError",
    "PlatformError",
    "SolverError",
    "UsageError",
]


class HetschedError(Exception):
    """Base of every error hetsched raises for bad input or an impossible request."""


class GraphError(HetschedError):
    """A graph is malformed: cycle, missing node, duplicate name, bad size, failed export."""


class PlatformError(HetschedError):
    """A platform description is malformed: unknown kind, bad bandwidth, unknown device."""


class InfeasibleError(HetschedError):
    """No plan can exist: an op no device supports, memory that cannot fit, a bound too tight."""


class SolverError(HetschedError):
    """A solver was misused or failed: bad time limit, out of scope, internal failure."""


class PlanError(HetschedError):
    """A plan violates a constraint, or does not belong to the given graph/platform."""


class UsageError(HetschedError):
    """A command-line or API argument is invalid."""


class OutputError(UsageError, OSError):
    """An output file cannot be written: a directory, a missing or read-only directory, a
    full disk. Also an ``OSError``, so code that catches write failures still does."""
