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
    the module docstring); ``problem`` itself when no mode adds error or there is no budget.

    A multiple-choice knapsack greedy: each op's precisions, by error, on their efficient
    frontier (each step saves more time per unit of error than the next); the steps of all
    ops taken in decreasing time saved per error while the budget lasts, so an op can move
    from float16 to int8 when that step is worth its error.
    """
    budget = problem.error_budget_units
    if budget is None or not problem.has_error_modes:
        return problem
    modes, units = problem.modes, problem.mode_error_units
    choice: list[str] = []
    steps: list[tuple[float, int, int, str, int]] = []  # (-ratio, op, rank, precision, error)
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
        # the efficient frontier from (error 0, base): decreasing time per unit of error
        here_e, here_t, rank = 0, base, 0
        options = sorted((e, t, q) for q, (t, e) in by_prec.items())
        while options:
            slopes = [((here_t - t) / (e - here_e), e, t, q) for e, t, q in options if t < here_t]
            if not slopes and np.isfinite(here_t):
                break
            if not slopes:  # no error-free mode: the cheapest error is a must
                e, t, q = options[0]
                slopes = [(np.inf, e, t, q)]
            ratio, e, t, q = max(slopes, key=lambda x: (x[0], -x[1]))
            steps.append((-ratio, v, rank, q, e - here_e))
            here_e, here_t, rank = e, t, rank + 1
            options = [o for o in options if o[0] > e]
    used = 0
    taken = [0] * problem.n  # steps taken per op (they must be taken in order)
    for _neg, v, rank, q, extra in sorted(steps):
        if rank == taken[v] and used + extra <= budget:
            choice[v] = q
            taken[v] += 1
            used += extra
    keep = [
        k
        for v in range(problem.n)
        for k in modes.ops_modes(v).tolist()
        if modes.precision[k] == choice[v] and (taken[v] > 0 or units[k] == 0)
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
        return plan.with_bound(bound, searched=False)

    budgeted.__doc__ = run.__doc__
    return budgeted
