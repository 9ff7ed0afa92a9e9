"""A CP-SAT solver with explicit limits, seed and workers, that leaves SIGINT to us."""

from __future__ import annotations

from typing import Any

__all__ = ["new_cp_solver"]


def new_cp_solver(*, time_limit: float, workers: int, seed: int) -> Any:
    """A CP-SAT solver with explicit limits that leaves SIGINT to us.

    OR-Tools catches SIGINT itself by default (the search then ends as if the time limit
    hit, and the Python handler is reset afterwards, so the next Ctrl-C kills the process).
    The CLI's handler sets :data:`GLOBAL_STOP`, whose callback stops the search instead.
    """
    from ortools.sat.python import cp_model

    solver = cp_model.CpSolver()
    solver.parameters.max_time_in_seconds = max(0.01, float(time_limit))
    solver.parameters.num_workers = int(workers)
    solver.parameters.random_seed = int(seed)
    solver.parameters.catch_sigint_signal = False
    return solver
