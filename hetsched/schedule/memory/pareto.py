"""Latency under a memory cap: the Pareto front of makespan against the memory of some devices.

:func:`latency_memory_front` caps the capacity of ``devices`` (an SRAM budget) at each value
of ``caps`` and solves for latency with memory on (live bytes, weights resident or
streamed); a point is kept when no other point has both less memory and less latency. The
latency at a cap is what the solver found in its time limit (its status says whether it is
proven); the memory of a point is the largest live peak among ``devices`` of its plan, which
may be below the cap.

Examples
--------
>>> from hetsched.graph import Edge, OpGraph, OpNode
>>> g = OpGraph("pair", [OpNode("a", category="matmul", flops=1e7, param_bytes=4e6,
...     bytes_read=4e6, out_bytes=1e3), OpNode("b", category="matmul", flops=1e7,
...     param_bytes=4e6, bytes_read=4e6, out_bytes=1e3)], [Edge("a", "b", 1e3)])
>>> front = latency_memory_front(g, "edge-soc", ["npu0", "npu1"], caps=[32 * 2**20, 1e5],
...     time_limit=2)
>>> [(round(x.cap), x.feasible, x.streamed) for x in front]
[(33554432, True, 0), (100000, True, 0)]
>>> front[0].makespan < front[1].makespan  # the NPUs would stream 4 MB at 68.2 GB/s: CPU, GPU
True
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from hetsched.costmodel import Platform
from hetsched.errors import InfeasibleError, SolverError
from hetsched.graph import OpGraph
from hetsched.plan import Plan
from hetsched.problem import Problem
from hetsched.problem.problem import is_streamed
from hetsched.schedule.latency.warmstart import carry_plan

__all__ = ["FrontPoint", "latency_memory_front", "pareto"]


@dataclass(frozen=True)
class FrontPoint:
    """One cap: the plan's makespan and status, the largest live peak among the capped
    devices, how many ops stream their weights; ``feasible`` False when no plan fits."""

    cap: float
    feasible: bool
    makespan: float = float("inf")
    status: str = ""
    peak: float = 0.0
    streamed: int = 0


def latency_memory_front(
    graph: OpGraph,
    platform: Platform | str,
    devices: Sequence[str],
    *,
    caps: Sequence[float],
    time_limit: float = 10.0,
    seed: int = 0,
    workers: int | None = None,
    cost_model: Any = None,
) -> list[FrontPoint]:
    """Solve ``graph`` for latency on ``platform`` with ``devices`` capped at each of
    ``caps`` (bytes); one point per cap, in the order given. Each cap builds its own problem
    (:meth:`Problem.build`), so weights that no longer fit get their streamed modes; caps are
    solved from the smallest up, each hinted with the plan of the cap below when it is valid
    there (so a larger cap is never worse than a smaller one's plan)."""
    from hetsched.schedule.latency.portfolio import solve_portfolio

    base = Platform.resolve(platform) if isinstance(platform, str) else platform
    unknown = sorted(set(devices) - {d.name for d in base.devices})
    if unknown:
        msg = f"unknown device {unknown[0]!r} (devices: {', '.join(d.name for d in base.devices)})"
        raise InfeasibleError(msg)
    points: dict[int, FrontPoint] = {}
    hint: Plan | None = None
    # smallest cap first: a plan that fits a cap fits every larger one, so it is a hint there
    for k in sorted(range(len(caps)), key=lambda i: caps[i]):
        cap = caps[k]
        capped = dataclasses.replace(
            base,
            devices=tuple(
                dataclasses.replace(d, mem_capacity=min(d.mem_capacity, float(cap)))
                if d.name in devices
                else d
                for d in base.devices
            ),
        )
        try:
            problem = Problem.build(graph, capped, cost_model, memory=True)
            plan = solve_portfolio(
                problem,
                time_limit=time_limit,
                seed=seed,
                workers=workers,
                hint=carry_plan(hint, problem) if hint is not None else None,
            )
        except (InfeasibleError, SolverError):
            points[k] = FrontPoint(float(cap), False)
            continue
        hint = plan
        points[k] = FrontPoint(
            cap=float(cap),
            feasible=True,
            makespan=plan.makespan,
            status=plan.status,
            peak=max(plan.memory.get(d, 0.0) for d in devices),
            streamed=sum(1 for m in plan.modes.values() if is_streamed(m.tag)),
        )
    return [points[k] for k in range(len(caps))]


def pareto(points: Sequence[FrontPoint]) -> list[FrontPoint]:
    """The feasible points no other point beats in both peak memory and makespan, by peak."""
    ok = sorted((x for x in points if x.feasible), key=lambda x: (x.peak, x.makespan))
    front: list[FrontPoint] = []
    for x in ok:
        if not front or x.makespan < front[-1].makespan:
            front.append(x)
    return front
