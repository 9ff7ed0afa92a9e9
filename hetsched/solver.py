"""What every solver shares: the progress event, the stop token, and argument checks.

Examples
--------
>>> check_time_limit(5)
5.0
>>> check_seed(3)
3
"""

from __future__ import annotations

import importlib
import math
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from hetsched.errors import SolverError, UsageError

__all__ = [
    "GLOBAL_STOP",
    "SOLVERS",
    "Progress",
    "ProgressCallback",
    "StopToken",
    "check_seed",
    "check_time_limit",
    "get_solver",
    "report",
]


@dataclass(frozen=True)
class Progress:
    """One anytime improvement: best makespan and best bound so far (real time units)."""

    solver: str
    makespan: float
    bound: float
    elapsed: float

    @property
    def gap(self) -> float:
        return 0.0 if self.makespan <= 0 else max(0.0, 1 - self.bound / self.makespan)


ProgressCallback = Callable[[Progress], None]


def report(progress: ProgressCallback | None, event: Progress) -> None:
    """Send ``event`` to ``progress`` if there is one."""
    if progress is not None:
        progress(event)


class StopToken:
    """A cooperative stop flag shared between a signal handler and running solvers.

    Solvers check :meth:`is_set` between steps and register ``on_stop`` callbacks (e.g.
    CP-SAT's ``stop_search``) so that a running search returns its best solution at once.
    """

    def __init__(self) -> None:
        self._event = threading.Event()
        self._callbacks: list[Callable[[], None]] = []
        self._lock = threading.Lock()

    def is_set(self) -> bool:
        return self._event.is_set()

    def set(self) -> None:
        self._event.set()
        with self._lock:
            callbacks = list(self._callbacks)
        for cb in callbacks:
            cb()

    def on_stop(self, cb: Callable[[], None]) -> Callable[[], None]:
        """Register ``cb``; returns a function that unregisters it."""
        with self._lock:
            self._callbacks.append(cb)
        if self._event.is_set():
            cb()

        def remove() -> None:
            with self._lock:
                if cb in self._callbacks:
                    self._callbacks.remove(cb)

        return remove


# The process-wide token the CLI's SIGINT/SIGTERM handler sets.
GLOBAL_STOP = StopToken()


def check_time_limit(time_limit: object) -> float:
    """A positive finite number of seconds, or :class:`SolverError`."""
    if isinstance(time_limit, bool) or not isinstance(time_limit, int | float):
        msg = f"time limit must be a number of seconds, got {time_limit!r}"
        raise SolverError(msg)
    if not math.isfinite(time_limit) or time_limit <= 0:
        msg = f"time limit must be positive and finite, got {time_limit!r}"
        raise SolverError(msg)
    return float(time_limit)


def check_seed(seed: object) -> int:
    """A non-negative integer seed, or :class:`SolverError`."""
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        msg = f"seed must be a non-negative integer, got {seed!r}"
        raise SolverError(msg)
    return int(seed)


# name -> (module, function). Imported lazily so that one missing optional backend does not
# break the others.
SOLVERS: dict[str, tuple[str, str]] = {
    "heft": ("hetsched.schedule.latency.heuristics", "solve_heft"),
    "peft": ("hetsched.schedule.latency.heuristics", "solve_peft"),
    "cpop": ("hetsched.schedule.latency.heuristics", "solve_cpop"),
    "bounds": ("hetsched.schedule.latency.boundsolver", "solve_bounds"),
    "cpsat": ("hetsched.schedule.latency.cpsat", "solve_cpsat"),
    "milp": ("hetsched.schedule.latency.milp", "solve_milp"),
    "sat": ("hetsched.schedule.latency.sat", "solve_sat"),
    "lns": ("hetsched.schedule.latency.lns", "solve_lns"),
    "ls": ("hetsched.schedule.latency.localsearch", "solve_local_search"),
    "portfolio": ("hetsched.schedule.latency.portfolio", "solve_portfolio"),
}


def get_solver(name: str) -> Callable[..., Any]:
    """The solve function called ``name``; :class:`UsageError` listing the valid ones."""
    if name not in SOLVERS:
        msg = f"unknown solver {name!r} (choose from {', '.join(sorted(SOLVERS))})"
        raise UsageError(msg)
    module, func = SOLVERS[name]
    try:
        return getattr(importlib.import_module(module), func)  # type: ignore[no-any-return]
    except (ModuleNotFoundError, AttributeError) as err:
        msg = f"solver {name!r} is not available in this build ({err})"
        raise UsageError(msg) from err
