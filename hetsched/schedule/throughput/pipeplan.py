"""Pipeline plans: a :class:`~hetsched.plan.Plan` plus the steady-state figures, and checks.

A :class:`PipelinePlan` is a ``Plan`` whose ``start``/``finish`` are a valid one-iteration
schedule of its assignment (so :func:`hetsched.plan.validate` passes) and whose extra fields
say how fast it streams: ``period`` (seconds between iterations), ``period_bound`` (proven
floor), the ``stage`` of every op, per-device ``utilization`` (load / period).
:func:`validate_pipeline` re-derives all of it from the problem.

Examples
--------
>>> import numpy as np
>>> from hetsched.problem import Problem
>>> p = Problem.from_arrays(names=["a", "b"], devices=["x", "y"],
...     exec_time=np.array([[2.0, 3.0], [4.0, 4.0]]), edges=[(0, 1, 1.0)], quantum=1.0)
>>> plan = make_pipeline_plan(p, [0, 1], solver="manual", status="heuristic", period_bound=3)
>>> plan.period, dict(plan.stage), dict(plan.utilization)
(4.0, {'a': 0, 'b': 1}, {'x': 0.5, 'y': 1.0})
>>> validate_pipeline(plan, p)
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

import numpy as np

from hetsched.errors import PlanError
from hetsched.plan import Plan, plan_from_schedule, schedule_arrays, validate
from hetsched.problem import Problem
from hetsched.schedule.bounds import critical_path_bound
from hetsched.schedule.latency.listsched import retime
from hetsched.schedule.throughput.pipecost import channels, pipeline_cost

__all__ = ["PipelinePlan", "as_pipeline_plan", "make_pipeline_plan", "validate_pipeline"]


@dataclass(frozen=True)
class PipelinePlan(Plan):
    """A plan for repeated execution as a pipeline (see the module docstring).

    ``makespan``/``lower_bound`` keep their latency meaning (one iteration); ``status``
    refers to the period.
    """

    period: float = 0.0
    period_bound: float = 0.0
    stage: Mapping[str, int] = field(default_factory=dict)
    utilization: Mapping[str, float] = field(default_factory=dict)
    device_order: tuple[str, ...] = ()
    contiguous: bool = False

    @property
    def period_gap(self) -> float:
        """``(period - period_bound) / period``."""
        return 0.0 if self.period <= 0 else max(0.0, 1 - self.period_bound / self.period)

    @property
    def stages(self) -> int:
        return len(self.device_order)


def make_pipeline_plan(
    problem: Problem,
    assign: Sequence[int] | np.ndarray,
    *,
    solver: str,
    status: str,
    period_bound: int,
    solve_time: float = 0.0,
    stats: Mapping[str, Any] | None = None,
    contiguous: bool = False,
    interrupted: bool = False,
) -> PipelinePlan:
    """Build a :class:`PipelinePlan` for ``assign`` (``period_bound`` in units).

    The one-iteration schedule dispatches ops in topological (index) order at their earliest
    start on their device (:func:`~hetsched.schedule.latency.listsched.retime`).
    """
    p = problem
    a = np.asarray(assign, dtype=np.int64)
    cost = pipeline_cost(p, a)
    start, xfer = retime(p, a, range(p.n))
    makespan = int((start + p.dur[np.arange(p.n), a]).max())
    q = p.quantum
    period = cost.period
    util = {
        p.devices[d]: (float(cost.device_load[d]) / period if period else 0.0)
        for d in range(p.num_devices)
    }
    ch = channels(p)
    order = tuple(p.devices[d] for d in cost.device_order)
    full_stats = {
        "period": period * q,
        "period_bound": min(period_bound, period) * q,
        "period_gap": 0.0 if period == 0 else max(0.0, 1 - min(period_bound, period) / period),
        "throughput": (1.0 / (period * q)) if period else float("inf"),
        "stages": cost.stages,
        "device_order": list(order),
        "latency_model": cost.latency() * q,
        "utilization": util,
        "link_utilization": {
            ch.names[c]: float(cost.channel_load[c]) / period
            for c in range(len(ch.names))
            if cost.channel_load[c] and period
        },
        "memory": {p.devices[d]: float(cost.memory[d]) for d in range(p.num_devices)},
        "contiguous": contiguous,
        **dict(stats or {}),
    }
    base = plan_from_schedule(
        p,
        assign=a,
        start=start,
        solver=solver,
        status=status,
        lower_bound=min(critical_path_bound(p), makespan),
        solve_time=solve_time,
        stats=full_stats,
        transfer_start=xfer,
        objective="throughput",
        interrupted=interrupted,
    )
    fields = {f.name: getattr(base, f.name) for f in dataclasses.fields(Plan)}
    return PipelinePlan(
        **fields,
        period=period * q,
        period_bound=min(period_bound, period) * q,
        stage=MappingProxyType({p.names[v]: int(cost.stage[v]) for v in range(p.n)}),
        utilization=MappingProxyType(util),
        device_order=order,
        contiguous=contiguous,
    )


def validate_pipeline(
    plan: PipelinePlan, problem: Problem, *, max_latency: float | None = None, tol: float = 1e-6
) -> None:
    """Re-check ``plan`` as a pipeline; raise :class:`PlanError` naming the violation.

    Checks the one-iteration schedule (:func:`hetsched.plan.validate`), period = max device
    and link load, bound <= period, acyclic stage graph, stages consistent with edges,
    memory (parameters, outputs and receive buffers), contiguity when ``plan.contiguous``,
    and ``stages x period <= max_latency`` when given (seconds).
    """
    validate(plan, problem, tol=tol)
    p = problem
    assign, _ = schedule_arrays(plan, p)
    cost = pipeline_cost(p, assign)
    q = p.quantum
    if not cost.acyclic:
        msg = f"stage graph of the plan has a cycle between devices (used: {cost.device_order})"
        raise PlanError(msg)
    if abs(plan.period / q - cost.period) > tol:
        msg = f"plan period {plan.period!r} is not the busiest load {cost.period * q!r}"
        raise PlanError(msg)
    if plan.period_bound > plan.period * (1 + 1e-9) + tol * q:
        msg = f"plan period bound {plan.period_bound!r} exceeds its period {plan.period!r}"
        raise PlanError(msg)
    for k in range(p.num_edges):
        u, v = p.names[int(p.edge_src[k])], p.names[int(p.edge_dst[k])]
        same = plan.assignment[u] == plan.assignment[v]
        if plan.stage[u] > plan.stage[v] or (same and plan.stage[u] != plan.stage[v]):
            msg = f"stages of {u!r} ({plan.stage[u]}) and {v!r} ({plan.stage[v]}) disagree"
            raise PlanError(msg)
    if p.use_memory and not cost.memory_ok:
        d = int(np.argmax(cost.memory - p.capacity))
        msg = (
            f"device {p.devices[d]!r} needs {cost.memory[d]:.0f} bytes in the pipeline "
            f"(parameters, outputs, receive buffers), over its capacity {p.capacity[d]:.0f}"
        )
        raise PlanError(msg)
    if plan.contiguous:
        runs = np.flatnonzero(np.diff(assign)) + 1
        starts = assign[np.concatenate([[0], runs])]
        if len(set(starts.tolist())) != len(starts):
            msg = "plan claims contiguous stages but a device holds two separate segments"
            raise PlanError(msg)
    if max_latency is not None and cost.latency() * q > max_latency * (1 + 1e-9):
        msg = (
            f"pipeline latency {cost.stages} stages x {cost.period * q:.6g} s exceeds "
            f"max_latency {max_latency:.6g} s"
        )
        raise PlanError(msg)


def as_pipeline_plan(plan: Plan, problem: Problem) -> PipelinePlan:
    """Rebuild the :class:`PipelinePlan` of a loaded ``hetsched.plan/1`` throughput plan.

    The JSON format stores the steady-state figures only in ``stats``; this re-derives
    period, stages and utilization from the assignment, keeps the recorded bound, status and
    solver, and checks the recorded period against the re-derived one (``PlanError`` if
    they differ, i.e. the plan was edited or belongs to another cost model).

    Examples
    --------
    >>> import numpy as np
    >>> from hetsched.plan import plan_from_dict, plan_to_dict
    >>> from hetsched.problem import Problem
    >>> p = Problem.from_arrays(names=["a", "b"], devices=["x", "y"],
    ...     exec_time=np.array([[2.0, 3.0], [4.0, 4.0]]), edges=[(0, 1, 1.0)], quantum=1.0)
    >>> plan = make_pipeline_plan(p, [0, 1], solver="manual", status="heuristic", period_bound=3)
    >>> back = as_pipeline_plan(plan_from_dict(plan_to_dict(plan)), p)
    >>> back.period, back.period_bound, back.stages
    (4.0, 3.0, 2)
    """
    if isinstance(plan, PipelinePlan):
        return plan
    if plan.objective != "throughput":
        msg = f"plan objective is {plan.objective!r}, not 'throughput'"
        raise PlanError(msg)
    assign, _ = schedule_arrays(plan, problem)
    q = problem.quantum
    recorded = float(plan.stats.get("period", math.nan))
    bound_units = round(float(plan.stats.get("period_bound", 0.0)) / q)
    rebuilt = make_pipeline_plan(
        problem,
        assign,
        solver=plan.solver,
        status=plan.status,
        period_bound=bound_units,
        solve_time=plan.solve_time,
        stats=dict(plan.stats),
        contiguous=bool(plan.stats.get("contiguous", False)),
        interrupted=plan.interrupted,
    )
    if math.isfinite(recorded) and abs(rebuilt.period - recorded) > 1e-9 * max(1.0, recorded):
        msg = (
            f"plan records period {recorded!r} but its assignment gives {rebuilt.period!r} "
            f"on this problem"
        )
        raise PlanError(msg)
    return rebuilt
