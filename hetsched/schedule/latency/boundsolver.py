"""The bounds as a solver: the best heuristic plan (or the hint) carrying every lower bound.

Examples
--------
>>> import numpy as np
>>> from hetsched.problem import Problem
>>> p = Problem.from_arrays(names=["a", "b", "c"], devices=["x", "y"],
...     exec_time=np.array([[2.0, 3.0], [4.0, 4.0], [4.0, 4.0]]),
...     edges=[(0, 1, 1.0), (0, 2, 1.0)], quantum=1.0)
>>> plan = solve_bounds(p, time_limit=5)
>>> plan.lower_bound, sorted(plan.stats["bounds"])
(6.0, ['chain_paths', 'colocation', 'critical_path', 'delays', 'group_load', 'load', 'lp',
 'modes_lp', 'placement', 'priced_path', 'sequenced', 'series', 'transfers', 'window'])
"""

from __future__ import annotations

import logging

from hetsched.plan import Plan
from hetsched.problem import Problem
from hetsched.schedule.bounds import bound_report
from hetsched.schedule.latency.heuristics import solve_heft
from hetsched.schedule.latency.placement import (
    PLACEMENT_MAX_OPS,
    placement_bound,
    sequenced_bound,
)
from hetsched.solver import Capabilities, SolveContext, Solver

__all__ = ["solve_bounds"]

log_ = logging.getLogger(__name__)


def _bounds(problem: Problem, ctx: SolveContext) -> Plan:
    """HEFT's plan (or the hint) with the best proven lower bound, every bound in stats."""
    report = bound_report(problem)
    plan = ctx.hint if ctx.hint is not None else solve_heft.within(problem, ctx.child())
    if problem.n <= PLACEMENT_MAX_OPS and problem.num_devices > 1:  # searches: in the budget
        report["placement"], proved = placement_bound(
            problem, time_limit=ctx.remaining(), seed=ctx.seed, workers=ctx.workers, stop=ctx.stop
        )
        if proved and ctx.remaining() > 0:  # the rest with each device's ops in sequence
            report["sequenced"], _ = sequenced_bound(
                problem,
                time_limit=ctx.remaining(),
                seed=ctx.seed,
                workers=ctx.workers,
                stop=ctx.stop,
                floor=report["placement"],
            )
    for name in ("placement", "sequenced"):  # every plan is a solution of both relaxations
        if report.get(name, 0) * problem.quantum > plan.makespan * (1 + 1e-9):
            log_.warning(
                "%s bound %s above a plan of %s: ignored", name, report.pop(name), plan.makespan
            )
    lb = max(report.values())
    return plan.with_(  # only bounds of this problem: a hint's may be another problem's
        lower_bound=lb * problem.quantum,
        stats={**plan.stats, "bounds": report},
    )


solve_bounds = Solver("bounds", _bounds, Capabilities(hint=True, workers=True, modes=True))
