"""Exact search on the rounded-down twin, so that its proof holds for the real problem.

Durations are rounded *up* to whole quanta, so an integer schedule runs in real time; but a
bound proven for the rounded-up model can exceed the real-valued optimum (rounding up only
lengthens schedules). An exact solver therefore searches
:attr:`~hetsched.problem.Problem.floored` (every duration and transfer rounded *down*, whose
optimum is at most the real one): its proven bound is a bound of the real problem, and its
plan, re-timed in the rounded-up model with the same modes and order, is the plan returned
(never worse than the hint or the heuristics on the problem itself). Problems whose
durations are whole quanta (STG, unit costs) are their own twin, searched as they are.

Examples
--------
>>> import numpy as np
>>> from hetsched.problem import Problem
>>> from hetsched.schedule.latency.cpsat import solve_cpsat
>>> p = Problem.from_arrays(names=["a", "b"], devices=["x", "y"],
...     exec_time=np.array([[2.5, 3.0], [2.5, 2.5]]), edges=[(0, 1, 0.5)], quantum=1.0)
>>> p.exact, p.floored.mode_dur.tolist()
(False, [2, 3, 2, 2])
>>> plan = solve_cpsat(p, time_limit=5, workers=1)
>>> plan.makespan, plan.lower_bound, plan.status, plan.tolerance  # real optimum: 5.0
(6.0, 4.0, 'feasible', 0.001)
"""

from __future__ import annotations

from collections.abc import Callable

from hetsched.plan import Plan
from hetsched.problem import Problem
from hetsched.schedule.latency.warmstart import carry_plan, prepare_hint
from hetsched.solver import SolveContext

__all__ = ["search_floored"]


def search_floored(
    problem: Problem, ctx: SolveContext, run: Callable[[Problem, SolveContext], Plan]
) -> Plan:
    """``run`` (an exact search) on ``problem``'s rounded-down twin, its plan re-timed in
    ``problem`` and its bound kept; ``run(problem, ctx)`` itself when ``problem`` is exact.

    The twin search starts from the hint (or the best of HEFT/PEFT/CPOP on ``problem``), and
    the plan returned is never worse than that start. When the twin's plan breaks a
    constraint of the rounded-up model once re-timed (memory over time) the start is
    returned, still with the twin's bound only.
    """
    if problem.exact:
        return run(problem, ctx)
    warm = prepare_hint(problem, ctx)
    start = None if warm is None else warm.plan
    found = run(problem.floored, ctx.child(hint=start) if start is not None else ctx)
    best = carry_plan(found, problem)
    if start is not None and (best is None or start.makespan < best.makespan):
        best = start
    if best is None:  # no start and the twin's plan does not carry: search the problem
        best = run(problem, ctx.child())
    return best.with_(
        lower_bound=min(found.lower_bound, best.makespan),
        searched=found.searched,
        stats={**found.stats, "rounded_down_makespan": found.makespan},
        baselines=found.baselines,
    )
