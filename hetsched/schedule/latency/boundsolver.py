"""The bounds as a solver: HEFT's plan carrying the best proven lower bound."""

from __future__ import annotations

import time

from hetsched.plan import Plan
from hetsched.problem import Problem
from hetsched.schedule.bounds import bound_report
from hetsched.solver import ProgressCallback

__all__ = ["solve_bounds"]


def solve_bounds(
    problem: Problem,
    *,
    time_limit: float = 10.0,
    seed: int = 0,
    hint: Plan | None = None,
    progress: ProgressCallback | None = None,
) -> Plan:
    """The bounds as a "solver": HEFT's plan carrying the best proven lower bound."""
    from hetsched.schedule.latency.heuristics import solve_heft

    t0 = time.perf_counter()
    report = bound_report(problem)
    plan = hint if hint is not None else solve_heft(problem, time_limit=time_limit, seed=seed)
    lb = max(report.values())
    return plan.with_(
        lower_bound=max(plan.lower_bound, lb * problem.quantum),
        solver="bounds",
        solve_time=time.perf_counter() - t0,
        stats={**plan.stats, "bounds": report},
    )
