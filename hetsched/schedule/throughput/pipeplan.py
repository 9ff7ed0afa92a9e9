"""Pipeline plans: a :class:`~hetsched.plan.Plan` with a typed pipeline result, and checks.

A throughput plan is a ``Plan`` with ``objective="throughput"`` whose ``start``/``finish``
are a valid one-iteration schedule of its assignment (so :func:`hetsched.plan.validate`
passes) and whose ``pipeline`` (:class:`~hetsched.plan.PipelineResult`) says how fast it
streams: ``period`` (seconds between iterations), ``period_bound`` (proven floor), the
``stage`` of every op, per-device ``utilization`` (load / period) and ``memory``.
:func:`validate_pipeline` re-derives all of it from the problem, so a plan read back from
JSON is checked the same way as a fresh one.

Examples
--------
>>> import numpy as np
>>> from hetsched.problem import Problem
>>> p = Problem.from_arrays(names=["a", "b"], devices=["x", "y"],
...     exec_time=np.array([[2.0, 3.0], [4.0, 4.0]]), edges=[(0, 1, 1.0)], quantum=1.0)
>>> plan = make_pipeline_plan(p, [0, 1], solver="manual", period_bound=3)
>>> r = plan.pipeline
>>> r.period, dict(r.stage), dict(r.utilization), plan.status
(4.0, {'a': 0, 'b': 1}, {'x': 0.5, 'y': 1.0}, 'heuristic')
>>> validate_pipeline(plan, p)
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from types import MappingProxyType
from typing import Any

import numpy as np

from hetsched.errors import PlanError
from hetsched.plan import PipelineResult, Plan, mode_ids, plan_from_schedule, validate
from hetsched.problem import Problem
from hetsched.schedule.bounds import critical_path_bound
from hetsched.schedule.latency.listsched import retime
from hetsched.schedule.throughput.pipecost import (
    PipelineCost,
    channels,
    is_contiguous,
    pipeline_cost,
)

__all__ = ["make_pipeline_plan", "pipeline_result", "validate_pipeline"]


def pipeline_result(problem: Problem, cost: PipelineCost, period_bound: int) -> PipelineResult:
    """The :class:`~hetsched.plan.PipelineResult` of ``cost`` (``period_bound`` in units,
    capped at the period)."""
    p = problem
    q = p.quantum
    period = cost.period
    ch = channels(p)
    return PipelineResult(
        period=period * q,
        period_bound=min(period_bound, period) * q,
        stage=MappingProxyType({p.names[v]: int(cost.stage[v]) for v in range(p.n)}),
        device_order=tuple(p.devices[d] for d in cost.device_order),
        utilization=MappingProxyType(
            {
                p.devices[d]: (float(cost.device_load[d]) / period if period else 0.0)
                for d in range(p.num_devices)
            }
        ),
        link_utilization=MappingProxyType(
            {
                ch.names[c]: float(cost.channel_load[c]) / period
                for c in range(len(ch.names))
                if cost.channel_load[c] and period
            }
        ),
        memory=MappingProxyType(
            {p.devices[d]: float(cost.memory[d]) for d in range(p.num_devices)}
        ),
        latency=cost.latency() * q,
        contiguous=is_contiguous(cost.assign),
    )


def make_pipeline_plan(
    problem: Problem,
    assign: Sequence[int] | np.ndarray,
    *,
    solver: str,
    period_bound: int,
    searched: bool = False,
    stats: Mapping[str, Any] | None = None,
    baselines: Mapping[str, float] | None = None,
) -> Plan:
    """A throughput :class:`~hetsched.plan.Plan` for ``assign`` (device index per op).

    ``period_bound`` is in units; ``searched`` says an exact search over the whole question
    ran (the status follows from period, bound and it: :func:`hetsched.plan.plan_status`).
    ``baselines`` are the periods (seconds) of the partitions the solver started from.
    The one-iteration schedule dispatches ops in topological (index) order at their earliest
    start on their device (:func:`~hetsched.schedule.latency.listsched.retime`).
    """
    p = problem
    a = np.asarray(assign, dtype=np.int64)
    cost = pipeline_cost(p, a)
    start, xfer = retime(p, a, range(p.n))
    makespan = int((start + p.dur[np.arange(p.n), a]).max())
    return plan_from_schedule(
        p,
        assign=a,
        start=start,
        solver=solver,
        searched=searched,
        lower_bound=min(critical_path_bound(p.floored), makespan),
        stats=stats,
        transfer_start=xfer,
        objective="throughput",
        baselines=baselines,
        pipeline=pipeline_result(p, cost, period_bound),
    )


def validate_pipeline(
    plan: Plan, problem: Problem, *, max_latency: float | None = None, tol: float = 1e-6
) -> None:
    """Re-check ``plan`` as a pipeline; raise :class:`PlanError` naming the violation.

    Checks the one-iteration schedule (:func:`hetsched.plan.validate`), one device-view
    mode per op, an acyclic stage graph, and that every recorded figure of
    ``plan.pipeline`` is the one its assignment gives on ``problem`` (period = busiest
    device or link load, stages, device order, latency, memory, utilization, contiguity),
    bound <= period, memory within capacity, and ``stages x period <= max_latency``
    (seconds) when given.
    """
    r = plan.pipeline
    if plan.objective != "throughput" or r is None:
        msg = f"plan objective is {plan.objective!r} without a pipeline result, not a pipeline"
        raise PlanError(msg)
    validate(plan, problem, tol=tol)
    p = problem
    q = p.quantum
    m = mode_ids(plan, p)
    assign = p.modes.devs[p.modes.dev_start[m]]
    if np.any(p.device_mode[np.arange(p.n), assign] != m):
        v = int(np.flatnonzero(p.device_mode[np.arange(p.n), assign] != m)[0])
        msg = f"op {p.names[v]!r} runs in a mode that is not its device view: not a pipeline"
        raise PlanError(msg)
    cost = pipeline_cost(p, assign)
    if not cost.acyclic:
        msg = f"stage graph of the plan has a cycle between devices (used: {cost.device_order})"
        raise PlanError(msg)
    if abs(r.period / q - cost.period) > tol:
        msg = f"plan period {r.period!r} is not the busiest load {cost.period * q!r}"
        raise PlanError(msg)
    if r.period_bound > r.period * (1 + 1e-9) + tol * q:
        msg = f"plan period bound {r.period_bound!r} exceeds its period {r.period!r}"
        raise PlanError(msg)
    _check_recorded(r, pipeline_result(p, cost, cost.period), p, tol)
    if p.use_memory and not cost.memory_ok:
        d = int(np.argmax(cost.memory - p.capacity))
        msg = (
            f"device {p.devices[d]!r} needs {cost.memory[d]:.0f} bytes in the pipeline "
            f"(op bytes and receive buffers), over its capacity {p.capacity[d]:.0f}"
        )
        raise PlanError(msg)
    if max_latency is not None and cost.latency() * q > max_latency * (1 + 1e-9):
        msg = (
            f"pipeline latency {cost.stages} stages x {cost.period * q:.6g} s exceeds "
            f"max_latency {max_latency:.6g} s"
        )
        raise PlanError(msg)


def _check_recorded(r: PipelineResult, want: PipelineResult, p: Problem, tol: float) -> None:
    """Every recorded figure of ``r`` equals the re-derived ``want``."""
    for x in p.names:
        if r.stage.get(x) != want.stage[x]:
            msg = f"plan puts {x!r} in stage {r.stage.get(x)}; its assignment gives {want.stage[x]}"
            raise PlanError(msg)
    if tuple(r.device_order) != want.device_order:
        msg = f"plan stage order {list(r.device_order)} is not {list(want.device_order)}"
        raise PlanError(msg)
    if abs(r.latency - want.latency) > tol * max(1.0, want.latency):
        msg = f"plan latency {r.latency!r} is not stages x period = {want.latency!r}"
        raise PlanError(msg)
    if r.contiguous != want.contiguous:
        claim = "contiguous" if r.contiguous else "not contiguous"
        msg = f"plan says its stages are {claim}, its assignment says otherwise"
        raise PlanError(msg)
    for d, used in want.memory.items():
        got = r.memory.get(d, np.nan)
        if not abs(got - used) <= tol * max(1.0, used):
            msg = f"plan records {got!r} bytes on {d!r}; the memory model gives {used!r}"
            raise PlanError(msg)
    for d, util in want.utilization.items():
        got = r.utilization.get(d, np.nan)
        if not abs(got - util) <= tol:
            msg = f"plan records utilization {got!r} on {d!r}; its assignment gives {util!r}"
            raise PlanError(msg)
