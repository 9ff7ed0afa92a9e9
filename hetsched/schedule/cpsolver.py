"""A CP-SAT solver with explicit limits, seed and workers, that leaves SIGINT to us."""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from hetsched.solver import StopToken

__all__ = ["new_cp_solver", "solve_cp"]


def new_cp_solver(*, time_limit: float, workers: int, seed: int) -> Any:
    """A CP-SAT solver with explicit limits that leaves SIGINT to us.

    OR-Tools catches SIGINT itself by default (the search then ends as if the time limit
    hit, and the Python handler is reset afterwards, so the next Ctrl-C kills the process).
    The CLI's handler sets the solve's stop token, whose callback stops the search instead.
    """
    from ortools.sat.python import cp_model

    solver = cp_model.CpSolver()
    solver.parameters.max_time_in_seconds = max(0.01, float(time_limit))
    solver.parameters.num_workers = int(workers)
    solver.parameters.random_seed = int(seed)
    solver.parameters.catch_sigint_signal = False
    return solver


def solve_cp(solver: Any, model: Any, stop: StopToken | None, callback: Any = None) -> Any:
    """``solver.solve(model, callback)`` that a stop token interrupts at any moment.

    CP-SAT ignores ``stop_search`` called before its search starts, so a stop that lands
    just before (or while) the solve starts would otherwise run to the time limit: the
    limit drops to 0 when the token is already set, and a watcher repeats ``stop_search``
    every 50 ms while the solve runs.
    """
    if stop is None:
        return solver.solve(model, callback)
    if stop.is_set():
        solver.parameters.max_time_in_seconds = 0.0
    done = threading.Event()

    def watch() -> None:
        while not done.wait(0.05):
            if stop.is_set():
                solver.stop_search()

    watcher = threading.Thread(target=watch, name="hetsched-cp-stop", daemon=True)
    remove = stop.on_stop(solver.stop_search)
    watcher.start()
    try:
        return solver.solve(model, callback)
    finally:
        done.set()
        remove()
        watcher.join()
