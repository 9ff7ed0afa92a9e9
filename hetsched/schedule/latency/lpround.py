"""LP-rounded HEFT: the device mix of the window load LP, rounded, then list-scheduled.

Greedy finish-time rules (HEFT, EFT) put an op wherever it ends first, which piles work on
fast devices and leaves slow ones idle; the window load LP
(:func:`~hetsched.schedule.bounds.window_load_lp`) knows how much of each kind of op each
device should take. :func:`lp_rounded_assignment` rounds its fractional assignment class by
class (ops with the same duration row share the class's totals), and :func:`solve_lp_heft`
schedules that assignment with HEFT's insertion list scheduler. On 1000-op random DAGs at
CCR 1 it starts at 777-779 where HEFT is at 823 (bound 720), and LNS from it reaches 741 in 25 s
where LNS from HEFT reaches 804.

Examples
--------
>>> import numpy as np
>>> from hetsched.problem import Problem
>>> p = Problem.from_arrays(names=["a", "b", "c"], devices=["x", "y"],
...     exec_time=np.array([[2.0, 3.0], [4.0, 4.0], [4.0, 4.0]]),
...     edges=[(0, 1, 1.0), (0, 2, 1.0)], quantum=1.0)
>>> plan = solve_lp_heft(p)
>>> plan.solver, plan.makespan  # the optimum here; in general rounding is a heuristic
('lp-heft', 6.0)
"""

from __future__ import annotations

import time

import numpy as np

from hetsched.plan import Plan, plan_from_schedule, schedule_arrays
from hetsched.problem import Problem

__all__ = [
    "capacity_rounded_assignment",
    "lp_rounded_assignment",
    "lp_rounded_problem",
    "solve_lp_heft",
]


def lp_rounded_assignment(p: Problem, frac: np.ndarray) -> np.ndarray:
    """Round a fractional assignment class by class: ops with the same duration row (the
    32 ``softmax`` of 32 heads) share out the class's LP totals in index order, so a class
    the LP splits 26/6 between two devices gets 26 and 6 ops, not 32 and 0."""
    assign = np.argmax(np.where(p.allowed, frac, -1.0), axis=1)
    _, cls = np.unique(np.where(p.allowed, p.dur, -1), axis=0, return_inverse=True)
    for c in np.unique(cls):
        ops = np.flatnonzero(cls.reshape(-1) == c)
        share = frac[ops].sum(axis=0) / ops.size
        owed = np.zeros(p.num_devices)
        for v in ops.tolist():
            owed += share
            score = np.where(p.allowed[v], owed, -np.inf)
            d = int(np.argmax(score))
            assign[v] = d
            owed[d] -= 1.0
    return assign


def capacity_rounded_assignment(p: Problem) -> np.ndarray | None:
    """Where the devices cannot hold every weight: the device mix of the capacity-aware modes
    LP (:func:`~hetsched.schedule.bounds.load.modes_lp`: load, precedence and each device's
    resident weights within its capacity), rounded op by op, the most decided first, each to
    its likeliest device that still has room for its weights; ``None`` when the LP is out of
    scope or an op finds no room."""
    from hetsched.schedule.bounds.load import modes_lp

    solved = modes_lp(p)
    if solved is None:
        return None
    frac = np.zeros((p.n, p.num_devices))
    np.add.at(frac, (p.modes.op, p.modes.devs[p.modes.dev_start[:-1]]), solved[1])
    weight = np.where(p.allowed, p.modes.w[np.maximum(p.device_mode, 0)], np.inf)
    room = p.capacity.astype(float).copy()
    assign = np.full(p.n, -1, dtype=np.int64)
    for v in np.argsort(-frac.max(axis=1), kind="stable").tolist():
        for d in np.argsort(-frac[v], kind="stable").tolist():
            if p.allowed[v, d] and weight[v, d] <= room[d]:
                assign[v] = d
                room[d] -= weight[v, d]
                break
        else:
            return None
    return assign


def lp_rounded_problem(problem: Problem) -> Problem | None:
    """``problem`` with every op restricted to its device in the rounded window-LP
    assignment (:func:`capacity_rounded_assignment` where the devices cannot hold every
    weight); ``None`` when the LP is out of scope (over
    :data:`~hetsched.schedule.bounds.WINDOW_MAX_OPS` ops) or the rounding overflows a
    device's memory."""
    from hetsched.plan.memory import envelope_binds
    from hetsched.schedule.bounds import window_load_lp
    from hetsched.schedule.latency.eft import fits_memory

    if problem.use_memory and envelope_binds(problem) is not None:
        rounded = capacity_rounded_assignment(problem)
        if rounded is None:
            return None
        assign = rounded
    else:
        solved = window_load_lp(problem)
        if solved is None:
            return None
        assign = lp_rounded_assignment(problem, solved[1])
    if not fits_memory(problem, assign):
        return None
    only = np.zeros_like(problem.allowed)
    only[np.arange(problem.n), assign] = True
    return problem.restrict(only)


def solve_lp_heft(problem: Problem) -> Plan | None:
    """HEFT on :func:`lp_rounded_problem` (``None`` where that is); well under a second at
    1000 ops."""
    from hetsched.plan import plan_transfer_starts
    from hetsched.schedule.bounds import quick_lower_bound
    from hetsched.schedule.latency.heuristics import solve_heft

    t0 = time.perf_counter()
    fixed = lp_rounded_problem(problem)
    if fixed is None:
        return None
    plan = solve_heft(fixed)
    a, s = schedule_arrays(plan, fixed)
    return plan_from_schedule(
        problem,
        assign=a,
        start=s,
        solver="lp-heft",
        # the fixed problem's bounds hold for that assignment only
        lower_bound=quick_lower_bound(problem),
        solve_time=time.perf_counter() - t0,
        transfer_start=plan_transfer_starts(problem, plan),
    )
