"""Carry a plan solved on a coarsened graph back to the fine graph, and check it there.

A coarse plan answers a smaller question: its makespan and its bound are those of the coarse
problem, and neither says what the fine program does. :func:`refine_plan` keeps the coarse
plan's decision (the mode, hence the devices, of each group) for every member of the group,
re-times the fine ops with the list-scheduling re-timer (each device and link runs its ops in
the order of the coarse start times), computes a lower bound of the fine problem and
validates the result on it. The refined plan's status follows the one rule: ``optimal`` only
when its fine makespan meets the fine bound (no exact search ran on the fine problem).

Examples
--------
>>> from hetsched.api import solve
>>> from hetsched.graph.coarsen import coarsen
>>> from hetsched.graph.opgraph import Edge, OpGraph, OpNode
>>> from hetsched.problem import Problem
>>> g = OpGraph("g", [OpNode("mm", category="matmul", flops=4e9, bytes_read=1e6),
...                   OpNode("relu", category="elementwise", flops=1e6, bytes_read=1e6),
...                   OpNode("mm2", category="matmul", flops=4e9, bytes_read=1e6)],
...             [Edge("mm", "relu", 1e6), Edge("relu", "mm2", 1e6)])
>>> coarse = coarsen(g)
>>> plan = solve(coarse, "edge-soc", time_limit=2)
>>> fine = refine_plan(plan, coarse, Problem.build(g, "edge-soc"))
>>> sorted(fine.assignment), fine.assignment["relu"] == fine.assignment["mm"]
(['mm', 'mm2', 'relu'], True)
>>> fine.stats["coarse"]["ops"], fine.makespan >= fine.lower_bound
(2, True)
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

import numpy as np

from hetsched.errors import PlanError

if TYPE_CHECKING:  # pragma: no cover
    from hetsched.graph.opgraph import OpGraph
    from hetsched.plan import Plan
    from hetsched.problem import ModeSpec, Problem

__all__ = ["refine_plan"]


def _fine_modes(plan: Plan, coarse: OpGraph, problem: Problem) -> np.ndarray:
    """The mode id of every fine op: its group's mode in ``plan``."""
    groups = coarse.meta.get("groups") or {}
    spec_of = {m: spec for op, spec in plan.modes.items() for m in groups.get(op, [op])}
    modes = np.empty(problem.n, dtype=np.int64)
    for v, name in enumerate(problem.names):
        if name not in spec_of:
            msg = f"op {name!r} of {problem.name!r} is in no group of the coarse plan"
            raise PlanError(msg)
        modes[v] = _member_mode(problem, v, spec_of[name])
    return modes


def _member_mode(problem: Problem, v: int, spec: ModeSpec) -> int:
    """Op ``v``'s mode on the devices (and tag) of its group's mode ``spec``; the same
    precision when it has one (a member's own dtype may differ from the group's)."""
    found = []
    for m in range(int(problem.modes.op_start[v]), int(problem.modes.op_start[v + 1])):
        d = problem.describe_mode(m)
        if d.devices == spec.devices and d.tag == spec.tag:
            found.append((d.precision != spec.precision, m))
    if not found:
        msg = (
            f"op {problem.names[v]!r} cannot run as its group does ({spec}): the coarse graph "
            "let a device take a group it refuses a member of"
        )
        raise PlanError(msg)
    return min(found)[1]


def refine_plan(plan: Plan, coarse: OpGraph, problem: Problem, *, tol: float = 1e-6) -> Plan:
    """``plan`` (solved on ``coarse``) as a validated plan of the fine ``problem``.

    Parameters
    ----------
    plan : a latency plan of the coarsened graph.
    coarse : the coarsened graph (its ``meta["groups"]`` names the fine members).
    problem : the fine problem, built on the graph that was coarsened.
    tol : validation tolerance.

    Returns
    -------
    Plan
        Every fine op in its group's mode, re-timed; ``lower_bound`` is a bound of the fine
        problem; ``stats["coarse"]`` keeps the coarse makespan, bound, status and op count.

    Raises
    ------
    PlanError
        A fine op no group covers, a mode the fine problem lacks, a plan that is not for
        latency, or a refined plan that fails validation (device memory, say).
    """
    from hetsched.plan import plan_from_schedule, validate
    from hetsched.schedule.bounds import lower_bound, quick_lower_bound
    from hetsched.schedule.latency.listsched import retime_modes

    if plan.objective != "latency":
        msg = f"only latency plans refine onto the fine graph, not {plan.objective!r}"
        raise PlanError(msg)
    t0 = time.perf_counter()
    modes = _fine_modes(plan, coarse, problem)
    groups = coarse.meta.get("groups") or {}
    group_start = {m: plan.start[op] for op in plan.modes for m in groups.get(op, [op])}
    # Coarse start, then topological position: a topological order of the fine ops, since
    # a group starts no earlier than the groups it reads from finish.
    order = sorted(range(problem.n), key=lambda v: (group_start[problem.names[v]], v))
    start, transfer_start = retime_modes(problem, modes, order)
    bound = lower_bound(problem) if problem.n <= 2000 else quick_lower_bound(problem)
    coarse_stats = {
        "ops": len(plan.modes),
        "makespan": plan.makespan,
        "lower_bound": plan.lower_bound,
        "status": plan.status,
    }
    fine = plan_from_schedule(
        problem,
        start=start,
        modes=modes,
        solver=plan.solver,
        searched=False,
        lower_bound=bound,
        solve_time=plan.solve_time + time.perf_counter() - t0,
        stats={**plan.stats, "coarse": coarse_stats},
        transfer_start=transfer_start,
        interrupted=plan.interrupted,
    )
    validate(fine, problem, tol=tol)
    return fine
