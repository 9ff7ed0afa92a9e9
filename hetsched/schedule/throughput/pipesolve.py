"""The pipeline solvers: exact CP-SAT (:data:`solve_pipeline`) and the baselines as solvers.

:data:`solve_pipeline` minimises the period with the model of :mod:`.pipeline`, hinted with
the best admissible baseline (:mod:`.baselines`) and never worse than it. The proven bound
is the best of CP-SAT's objective bound, the fractional load LP, the longest op and
``sum min dur / D``. :data:`BASELINE_SOLVERS` runs one baseline as a plan of its own.

Both are :class:`~hetsched.solver.Solver` objects: calling one runs the shared skeleton
(limits, seed, a stop token per solve, validation by :func:`.validate_pipeline`).

Examples
--------
>>> import numpy as np
>>> from hetsched.problem import Problem
>>> p = Problem.from_arrays(names=list("abcd"), devices=["x", "y"],
...     exec_time=np.array([[3.0, 6.0], [1.0, 2.0], [2.0, 2.0], [2.0, 1.0]]),
...     edges=[(0, 1, 1.0), (1, 2, 1.0), (2, 3, 1.0)], quantum=1.0)
>>> plan = solve_pipeline(p, time_limit=5, workers=1)
>>> plan.pipeline.period, plan.status, dict(plan.assignment)
(4.0, 'optimal', {'a': 'x', 'b': 'x', 'c': 'y', 'd': 'y'})
>>> BASELINE_SOLVERS["capability"](p, time_limit=1).pipeline.period
8.0
"""

from __future__ import annotations

import math
from functools import partial
from typing import TYPE_CHECKING, Any

import numpy as np
from ortools.sat.python import cp_model

from hetsched.errors import InfeasibleError, SolverError, UsageError
from hetsched.plan import Plan
from hetsched.problem import Problem
from hetsched.schedule.bounds import load_bound
from hetsched.schedule.cpmemory import memory_scale
from hetsched.schedule.cpsolver import new_cp_solver, solve_cp
from hetsched.schedule.throughput.baselines import BASELINES, Baseline, run_baselines
from hetsched.schedule.throughput.pipecost import (
    is_contiguous,
    pipeline_cost,
    simple_period_bound,
)
from hetsched.schedule.throughput.pipeline import PipelineModel, build_pipeline_model
from hetsched.schedule.throughput.pipeplan import make_pipeline_plan, validate_pipeline
from hetsched.solver import Capabilities, SolveContext, Solver

if TYPE_CHECKING:
    from hetsched.graph.opgraph import OpGraph

__all__ = ["BASELINE_SOLVERS", "pipeline_solver", "solve_pipeline"]

_OPTIONS = ("graph", "contiguous", "stages", "max_latency", "min_block_size")


def _pipeline(
    problem: Problem,
    ctx: SolveContext,
    *,
    graph: OpGraph | None = None,
    contiguous: bool = False,
    stages: int | None = None,
    max_latency: float | None = None,
    min_block_size: int = 5,
    export_model: str | None = None,
) -> Plan:
    """Minimise the pipeline period; see the module docstring.

    Parameters
    ----------
    graph : gives FLOPs to the equal-FLOPs baseline.
    contiguous : one interval of the topological order per device (pipeline-parallel split).
    stages : exact number of stages (devices used); ``None`` lets the solver choose.
    max_latency : seconds; the pipeline latency ``stages x period`` must not exceed it.
    min_block_size : shortest run the capability baseline keeps (one of the hints).
    export_model : write the CP-SAT model there (debugging).

    Raises
    ------
    InfeasibleError : memory no assignment fits, a latency bound below the critical path,
        more stages than ops or devices.
    """
    p = problem
    limit = _check_args(p, stages, max_latency)
    runs = run_baselines(p, graph, stages=stages, max_latency=limit, min_block_size=min_block_size)
    ok = [b for b in runs if _admissible(b, contiguous, stages, limit)]
    best: Baseline | None = min(ok, key=lambda b: (b.cost.period, b.name)) if ok else None
    # bounds of the real-valued problem: of its twin with every duration rounded down
    fl = p.floored
    bounds = {**simple_period_bound(fl), "load_lp": load_bound(fl)}
    lower = max(bounds.values())
    upper = best.cost.period if best else int(p.dur.max(axis=1).sum() + p.comm.sum())
    q = p.quantum
    baselines = {b.name: b.cost.period * q for b in ok}
    stats: dict[str, Any] = {
        "model": "contiguous" if contiguous else "general",
        "bounds": {k: v * q for k, v in bounds.items()},
        "rejected_baselines": sorted(b.name for b in runs if b not in ok),
        "hint": best.name if best else None,
    }
    plan = partial(make_pipeline_plan, p, solver="pipeline", baselines=baselines)
    if best is not None:
        ctx.report(f"pipe-{best.name}", upper * q, lower * q)
        if best.cost.period <= lower:
            done = plan(best.assign, period_bound=lower, searched=True,
                        stats={**stats, "proved_by": "bounds"})  # fmt: skip
            return _reported(done, ctx)
    if ctx.stop.is_set() and best is not None:
        # Stopped before the search: the best baseline, claiming nothing.
        stopped = {**stats, "fallback": best.name}
        return _reported(plan(best.assign, period_bound=lower, stats=stopped), ctx)
    # CP-SAT searches the twin too, so that its bound is one of the real problem; its
    # assignment is then costed in the rounded-up model (real time) and kept if better
    built = build_pipeline_model(
        fl, lower=lower, upper=upper, contiguous=contiguous, stages=stages, max_latency=limit
    )
    if best is not None:
        stats["hint_complete"] = _hint(built, fl, _canonical(p, best.assign), ctx)
    if export_model:
        built.model.export_to_file(export_model)
    solver = new_cp_solver(time_limit=ctx.remaining(), workers=ctx.workers, seed=ctx.seed)
    solver.parameters.cp_model_probing_level = 0  # probing costs seconds on 10k+ literals
    status = _solve(solver, built.model, ctx)
    stats.update(cp_status=solver.status_name(status), branches=solver.num_branches)
    if p.use_memory and not memory_scale(p)[1]:
        # fractional bytes rounded: the model is tighter than the question, it proves nothing
        stats["memory_rounded"] = True
        status = cp_model.FEASIBLE if status == cp_model.OPTIMAL else status
        if status == cp_model.INFEASIBLE:
            status = cp_model.UNKNOWN
        solver_bound = -math.inf
    else:
        solver_bound = solver.best_objective_bound
    if status == cp_model.INFEASIBLE:
        msg = _infeasible_reason(p, stages, limit)
        raise InfeasibleError(msg)
    if status == cp_model.MODEL_INVALID:
        msg = f"CP-SAT rejected the pipeline model: {built.model.validate()}"
        raise SolverError(msg)
    bound = lower
    if math.isfinite(solver_bound):
        bound = max(lower, math.ceil(solver_bound - 1e-9))
    if status in (cp_model.OPTIMAL, cp_model.FEASIBLE):
        if status == cp_model.OPTIMAL:
            bound = int(solver.objective_value)
        assign = np.array(
            [next(d for d, lit in built.node_device_to_on[v].items() if solver.value(lit))
             for v in range(p.n)], dtype=np.int64,
        )  # fmt: skip
        cost = pipeline_cost(p, assign)
        fits = p.exact or _admissible(
            Baseline("cpsat", assign, cost, 0.0), contiguous, stages, limit
        )
        if fits and (best is None or cost.period < best.cost.period):
            return _reported(plan(assign, period_bound=bound, searched=True, stats=stats), ctx)
    if best is None:
        msg = f"no pipeline partition of {p.name!r} found within {ctx.time_limit:g} s"
        raise SolverError(msg)
    if status not in (cp_model.OPTIMAL, cp_model.FEASIBLE):
        stats["fallback"] = best.name
    # CP-SAT searched the whole question and found nothing better than the hint.
    return _reported(plan(best.assign, period_bound=bound, searched=True, stats=stats), ctx)


def _reported(plan: Plan, ctx: SolveContext) -> Plan:
    ctx.report("pipeline", plan.objective_value, plan.objective_bound)
    return plan


def _solve(solver: Any, model: cp_model.CpModel, ctx: SolveContext) -> Any:
    """Solve under the solve's stop token."""
    return solve_cp(solver, model, ctx.stop)


def _hint(built: PipelineModel, p: Problem, assign: np.ndarray, ctx: SolveContext) -> bool:
    """Hint every variable: solve a copy with the assignment fixed, copy its full solution."""
    fixed = built.model.clone()
    for v in range(p.n):
        for d, lit in built.node_device_to_on[v].items():
            fixed.add(fixed.get_bool_var_from_proto_index(lit.index) == int(int(assign[v]) == d))
    limit = min(5.0, ctx.remaining() / 4)
    solver = new_cp_solver(time_limit=limit, workers=1, seed=ctx.seed)
    if _solve(solver, fixed, ctx) not in (cp_model.OPTIMAL, cp_model.FEASIBLE):
        return False
    for i, val in enumerate(solver.response_proto.solution):
        built.model.add_hint(built.model.get_int_var_from_proto_index(i), int(val))
    return True


def _canonical(p: Problem, assign: np.ndarray) -> np.ndarray:
    """Relabel interchangeable devices so that they are first used in index order."""
    out = assign.copy()
    for g in p.device_groups:
        if len(g) < 2:
            continue
        firsts = sorted(
            (int(np.flatnonzero(assign == d)[0]) if (assign == d).any() else p.n, d) for d in g
        )
        mapping = {old: new for (_, old), new in zip(firsts, g, strict=True)}
        for old, new in mapping.items():
            out[assign == old] = new
    return out


def _check_args(p: Problem, stages: int | None, max_latency: float | None) -> int | None:
    """Check ``stages``; ``max_latency`` in units (``None`` if not given)."""
    if stages is not None:
        if isinstance(stages, bool) or not isinstance(stages, int) or stages < 1:
            msg = f"stages must be a positive integer, got {stages!r}"
            raise SolverError(msg)
        if stages > p.n:
            msg = f"stage count {stages} is larger than the op count {p.n} of {p.name!r}"
            raise InfeasibleError(msg)
        if stages > p.num_devices:
            msg = f"stage count {stages} is larger than the {p.num_devices} devices available"
            raise InfeasibleError(msg)
    if max_latency is None:
        return None
    from hetsched.schedule.bounds import critical_path_bound

    cp = critical_path_bound(p)
    limit = int(np.floor(max_latency / p.quantum + 1e-9))
    if limit < cp:
        msg = (
            f"max_latency {max_latency:.6g} s is below the critical path of {p.name!r} "
            f"({cp * p.quantum:.6g} s): no pipeline can meet it"
        )
        raise InfeasibleError(msg)
    return limit


def _admissible(b: Baseline, contiguous: bool, stages: int | None, limit: int | None) -> bool:
    c = b.cost
    if not c.feasible or (stages is not None and c.stages != stages):
        return False
    if limit is not None and c.latency() > limit:
        return False
    return not contiguous or is_contiguous(b.assign)


def _infeasible_reason(p: Problem, stages: int | None, limit: int | None) -> str:
    parts = []
    if p.use_memory:
        parts.append("device memory (op bytes + receive buffers)")
    if stages is not None:
        parts.append(f"exactly {stages} stages")
    if limit is not None:
        parts.append(f"latency <= {limit * p.quantum:.6g} s")
    why = ", ".join(parts) or "op support"
    return f"no pipeline partition of {p.name!r} satisfies {why}"


def _baseline(
    problem: Problem,
    _ctx: SolveContext,
    *,
    name: str,
    graph: OpGraph | None = None,
    contiguous: bool = False,
    stages: int | None = None,
    max_latency: float | None = None,
    min_block_size: int = 5,
) -> Plan:
    """One baseline's partition as a plan (fast and deterministic: no limit applies)."""
    p = problem
    limit = _check_args(p, stages, max_latency)
    runs = run_baselines(p, graph, stages=stages, max_latency=limit, min_block_size=min_block_size)
    found = [b for b in runs if b.name == name and _admissible(b, contiguous, stages, limit)]
    if not found:
        want = "contiguous, " if contiguous else ""
        msg = (
            f"baseline {name!r} found no {want}acyclic, memory-feasible partition of "
            f"{p.name!r} within the stage and latency limits"
        )
        raise InfeasibleError(msg)
    bounds = simple_period_bound(p)
    return make_pipeline_plan(
        p, found[0].assign, solver=name, period_bound=max(bounds.values()),
        stats={"bounds": {k: v * p.quantum for k, v in bounds.items()},
               "seconds": found[0].seconds},
    )  # fmt: skip


solve_pipeline = Solver(
    "pipeline",
    _pipeline,
    Capabilities(workers=True, anytime=True, exact=True),
    options=(*_OPTIONS, "export_model"),
    check=validate_pipeline,
)

BASELINE_SOLVERS: dict[str, Solver] = {
    name: Solver(name, partial(_baseline, name=name), Capabilities(), _OPTIONS, validate_pipeline)
    for name in BASELINES
}


def pipeline_solver(name: str) -> Solver:
    """The throughput solver called ``name``: an exact alias or a baseline."""
    if name in ("portfolio", "cpsat", "pipeline"):
        return solve_pipeline
    if name in BASELINE_SOLVERS:
        return BASELINE_SOLVERS[name]
    choices = ", ".join(("portfolio", "cpsat", "pipeline", *BASELINES))
    msg = f"unknown throughput solver {name!r} (choose from {choices})"
    raise UsageError(msg)
