"""Warm starts shared by the exact solvers: best heuristic plan, re-timed in integer units.

A plan from a float-time or foreign schedule is usually infeasible once durations are
rounded to the integer model; re-timing its assignment and per-device order in one forward
pass (:func:`~hetsched.schedule.latency.listsched.retime`) makes it a feasible, complete hint.

Examples
--------
>>> import numpy as np
>>> start_order(np.array([3, 0, 3, 1]))
[1, 3, 0, 2]
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np

from hetsched.errors import SolverError
from hetsched.plan import Plan, mode_ids, plan_from_schedule, schedule_arrays
from hetsched.problem import Problem
from hetsched.schedule.latency.listsched import priority_order, retime_modes
from hetsched.solver import SolveContext

__all__ = [
    "WarmStart",
    "canonical_devices",
    "prepare_hint",
    "require_warm_start",
    "start_order",
]


@dataclass(frozen=True)
class WarmStart:
    """A complete, feasible integer schedule to start an exact search from.

    ``plan`` is it as a plan (with ``lower_bound``), ``modes``/``assign``/``start`` as arrays
    (mode id, first device and start unit per op); ``makespan`` and ``lb`` (the best lower
    bound) in units.
    """

    plan: Plan
    modes: np.ndarray
    assign: np.ndarray
    start: np.ndarray
    makespan: int
    lb: int


def prepare_hint(problem: Problem, ctx: SolveContext) -> WarmStart | None:
    """The warm start (``ctx.hint``, else the best of HEFT/PEFT/CPOP) re-timed in integer
    units, and the lower bound; ``None`` when there is no hint and every heuristic ran out
    of memory (a greedy list scheduler can paint itself into a corner)."""
    from hetsched.schedule.bounds import BOUND_SHARE, lower_bound_within
    from hetsched.schedule.latency.heuristics import solve_cpop, solve_heft, solve_peft

    hint = ctx.hint
    if hint is None:
        cands = []
        for f in (solve_heft, solve_peft, solve_cpop):
            try:
                cands.append(f.within(problem, ctx.child()))
            except SolverError:  # out of memory on some device: another may not be
                continue
        if not cands:
            return None
        hint = min(cands, key=lambda pl: pl.makespan)
    modes = mode_ids(hint, problem)
    _, raw = schedule_arrays(hint, problem)
    # priority_order, not start_order: a topological order even for a hint that is not a
    # feasible schedule; for a feasible one both give the same order.
    start, xfer = retime_modes(problem, modes, priority_order(problem, raw))
    lb = lower_bound_within(problem, time.perf_counter() + BOUND_SHARE * ctx.remaining())[0]
    plan = plan_from_schedule(
        problem,
        modes=modes,
        start=start,
        solver=hint.solver,
        lower_bound=lb,
        transfer_start=xfer,
        baselines=hint.baselines,
    )
    first = problem.modes.devs[problem.modes.dev_start[modes]]
    makespan = int((start + problem.mode_dur[modes]).max())
    return WarmStart(plan, modes, first, start, makespan, lb)


def carry_plan(plan: Plan, problem: Problem, *, modes: np.ndarray | None = None) -> Plan | None:
    """``plan``'s modes and order re-timed in ``problem``'s integer units (another problem
    of the same graph may have another time quantum), with no bound or search claimed;
    ``None`` when ``problem`` lacks one of its modes or the result breaks a constraint
    (memory, the error budget). ``modes`` (a mode id of ``problem`` per op) replaces the
    plan's modes, in the plan's order."""
    from hetsched.errors import PlanError
    from hetsched.plan import validate

    try:
        if modes is None:
            modes = mode_ids(plan, problem)
        _, raw = schedule_arrays(plan, problem)
        start, xfer = retime_modes(problem, modes, priority_order(problem, raw))
        carried = plan_from_schedule(
            problem, modes=modes, start=start, solver=plan.solver, transfer_start=xfer
        )
        validate(carried, problem)
    except (PlanError, SolverError):
        return None
    return carried


def require_warm_start(warm: WarmStart | None, solver: str) -> WarmStart:
    """``warm``, or :class:`SolverError` for a solver that cannot search without one."""
    if warm is None:
        msg = (
            f"{solver} needs a feasible warm start and no heuristic found a plan that fits "
            "memory; use cpsat"
        )
        raise SolverError(msg)
    return warm


def start_order(start: np.ndarray) -> list[int]:
    """Ops by start time, ties by index (a topological order for any feasible schedule).

    >>> start_order(np.array([3, 0, 3, 1]))
    [1, 3, 0, 2]
    """
    return np.lexsort((np.arange(len(start)), start)).tolist()


def canonical_devices(p: Problem, assign: np.ndarray) -> np.ndarray:
    """Relabel interchangeable devices in order of first use by op index (symmetry breaking).

    Interchangeable devices map the problem onto itself, so the relabelled plan is feasible
    with the same start times.
    """
    out = assign.copy()
    for g in p.device_groups:
        if len(g) < 2:
            continue
        first = {d: next((v for v in range(p.n) if assign[v] == d), p.n) for d in g}
        mapping = dict(zip(sorted(g, key=lambda d: (first[d], d)), g, strict=True))
        for v in range(p.n):
            out[v] = mapping.get(int(assign[v]), int(assign[v]))
    return out
