"""The memory objective as a plan: every op on one device, in the order with the least peak.

:data:`solve_peak_memory` runs :func:`~hetsched.schedule.memory.solve.min_peak_order` on
the problem's ops as the one memory model counts them on ``device``
(:meth:`MemoryInstance.from_problem`), and returns the plan that runs them back to back in
that order, with a :class:`~hetsched.plan.PeakMemoryResult`: the peak, its proven bound and
the peaks of the graph's own order and of the greedy. The plan's own ``memory`` is the live
peak the validator recomputes, equal to the result's.

Examples
--------
>>> from hetsched.graph import Edge, OpGraph, OpNode
>>> from hetsched.problem import Problem
>>> g = OpGraph("fork", [OpNode("a", out_bytes=4.0), OpNode("b", out_bytes=8.0),
...     OpNode("c", out_bytes=1.0), OpNode("d", out_bytes=1.0)],
...     [Edge("a", "b", 4.0), Edge("a", "c", 4.0), Edge("b", "d", 8.0), Edge("c", "d", 1.0)])
>>> plan = solve_peak_memory(Problem.build(g, "edge-soc"), device="cpu", time_limit=5)
>>> plan.status, plan.peak_memory.peak, list(plan.peak_memory.order)
('optimal', 13.0, ['a', 'b', 'c', 'd'])
"""

from __future__ import annotations

from types import MappingProxyType

import numpy as np

from hetsched.errors import InfeasibleError, UsageError
from hetsched.plan import PeakMemoryResult, Plan, plan_from_schedule
from hetsched.plan.memory import within
from hetsched.problem import Problem
from hetsched.schedule.memory.instance import MemoryInstance
from hetsched.schedule.memory.solve import min_peak_order
from hetsched.solver import Capabilities, SolveContext, Solver

__all__ = ["default_device", "solve_peak_memory"]


def default_device(problem: Problem) -> int:
    """The device to order on when none is named: among those that run every op, the one
    with the least memory (the one where the order matters most)."""
    every = np.flatnonzero((problem.device_mode >= 0).all(axis=0))
    if every.size == 0:
        msg = (
            f"no device of {problem.platform_name or 'the platform'!r} runs every op of "
            f"{problem.name!r}: the memory objective orders ops on one device"
        )
        raise InfeasibleError(msg)
    return int(every[np.argmin(problem.capacity[every])])  # first of the least


def _peak_memory(problem: Problem, ctx: SolveContext, device: str | None = None) -> Plan:
    if device is not None and device not in problem.device_index:
        msg = f"unknown device {device!r} (devices: {', '.join(problem.devices)})"
        raise UsageError(msg)
    d = problem.device_index[device] if device is not None else default_device(problem)
    name = problem.devices[d]
    instance = MemoryInstance.from_problem(problem, d)
    found = min_peak_order(
        instance,
        time_limit=ctx.remaining(),
        seed=ctx.seed,
        workers=ctx.workers,
        stop=ctx.stop,
    )
    order = np.array([problem.index[x] for x in found.order], dtype=np.int64)
    dur = problem.dur[:, d]
    start = np.zeros(problem.n, dtype=np.int64)
    start[order] = np.concatenate([[0], np.cumsum(dur[order])[:-1]])
    result = PeakMemoryResult(
        device=name,
        peak=found.peak,
        peak_bound=found.lower_bound,
        weights=found.weights,
        order=found.order,
        method=found.method,
        baselines=MappingProxyType(dict(found.baselines)),
    )
    if problem.use_memory and not within(found.peak, problem.capacity[d]):
        proven = not within(found.lower_bound, problem.capacity[d])
        msg = (
            f"{name!r} cannot hold {problem.name!r}: every order needs at least "
            f"{found.lower_bound / 2**20:.2f} MiB (proven), its capacity is "
            f"{problem.capacity[d] / 2**20:.2f} MiB"
            if proven
            else f"no order of {problem.name!r} found within {ctx.time_limit:g} s fits "
            f"{name!r}: best {found.peak / 2**20:.2f} MiB, capacity "
            f"{problem.capacity[d] / 2**20:.2f} MiB, bound {found.lower_bound / 2**20:.2f} MiB"
        )
        raise InfeasibleError(msg)
    return plan_from_schedule(
        problem,
        assign=np.full(problem.n, d, dtype=np.int64),
        start=start,
        solver="memory",
        searched=found.status in ("optimal", "feasible"),
        objective="memory",
        interrupted=found.interrupted,
        stats={"method": found.method, "notes": list(found.notes)},
        baselines=found.baselines,
        peak_memory=result,
    )


solve_peak_memory = Solver(
    "memory",
    _peak_memory,
    Capabilities(workers=True, exact=True),
    options=("device",),
)
