"""Precisions within an error budget, for the schedulers that do not model the budget.

:func:`greedy_precisions` picks one precision per op: the lowered precisions (those whose
modes add error) in decreasing time saved per unit of error, while the budget lasts (the
time saved: the op's fastest mode in that precision against its fastest error-free mode).
The problem it returns keeps only the chosen precision's modes of each op, so any plan of it
stays within the budget; list schedulers then place and time the ops (HEFT after a greedy
by gain per unit of error). :func:`within_budget` wraps a solver that way and keeps the
bound of the whole problem (a bound of the restriction is none of the question).

Examples
--------
>>> import numpy as np
>>> from hetsched.problem import Modes, Problem, Tensors
>>> modes = Modes.build(2, [(0, (0,), 8.0), (0, (0,), 2.0, 0.0, "int8", "", 0.0, 0.3),
...                         (1, (0,), 8.0), (1, (0,), 4.0, 0.0, "int8", "", 0.0, 0.3)])
>>> p = Problem.from_modes(names=["a", "b"], devices=["npu"], modes=modes,
...     tensors=Tensors.build(2, [(0, (1,), 1.0)]), quantum=1.0, error_budget=0.5)
>>> sub = greedy_precisions(p)
>>> [sub.describe_mode(k).precision for k in range(sub.num_modes)]  # a saves 6 per 0.3
['int8', 'native']
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from hetsched.plan import Plan
from hetsched.problem import Problem

__all__ = ["greedy_precisions", "within_budget"]


def greedy_precisions(problem: Problem) -> Problem:
    """``problem`` with one precision per op, chosen greedily within its error budget (see
    the module docstring); ``problem`` itself when no mode adds error or there is no budget."""
    budget = problem.error_budget_units
    if budget is None or not problem.has_error_modes:
        return problem
    modes, units = problem.modes, problem.mode_error_units
    choice: list[str] = []
    candidates: list[tuple[float, int, str, int]] = []
    for v in range(problem.n):
        ids = modes.ops_modes(v)
        free = ids[units[ids] == 0]
        base = float(modes.time[free].min()) if free.size else np.inf
        choice.append(modes.precision[int(free[0])] if free.size else "")
        by_prec: dict[str, tuple[float, int]] = {}
        for k in ids[units[ids] > 0].tolist():
            q = modes.precision[k]
            t, e = by_prec.get(q, (np.inf, int(units[k])))
            by_prec[q] = (min(t, float(modes.time[k])), max(e, int(units[k])))
        for q, (t, e) in by_prec.items():
            if base - t > 0 or not free.size:
                candidates.append(((base - t) / e, v, q, e))
    used = 0
    chosen: set[int] = set()
    for _ratio, v, q, e in sorted(candidates, key=lambda c: (-c[0], c[1], c[2])):
        if v not in chosen and used + e <= budget:
            choice[v] = q
            chosen.add(v)
            used += e
    keep = [
        k
        for v in range(problem.n)
        for k in modes.ops_modes(v).tolist()
        if modes.precision[k] == choice[v] and (v in chosen or units[k] == 0)
    ]
    return problem.select_modes(np.array(keep, dtype=np.int64))


def within_budget(run: Callable[..., Plan]) -> Callable[..., Plan]:
    """``run`` on :func:`greedy_precisions` of its problem; the plan's bound is the whole
    problem's quick bound (every precision allowed: valid under any budget)."""

    def budgeted(problem: Problem, ctx: Any, **options: Any) -> Plan:
        sub = greedy_precisions(problem)
        plan = run(sub, ctx, **options)
        if sub is problem:
            return plan
        from hetsched.schedule.bounds import quick_lower_bound

        bound = quick_lower_bound(problem) * problem.quantum
        return plan.with_(lower_bound=min(bound, plan.makespan), searched=False)

    budgeted.__doc__ = run.__doc__
    return budgeted
