"""Exact pipeline partitioning for throughput with OR-Tools CP-SAT.

Minimise the period ``P`` (:mod:`hetsched.schedule.throughput.pipecost` has the steady-state
model):

* ``on[v,d]`` per allowed (op, device), exactly one per op;
* device load ``sum_v dur[v,d] on[v,d] <= P``;
* link load ``sum_e share[e,a,b] cut[e,a,b] <= P`` per channel, ``cut[e,a,b] >= on[u,a] +
  on[v,b] - 1``;
* acyclic stage graph: general variant - a rank per device (all different) and
  ``rank[dev(u)] <= rank[dev(v)]`` per edge (an element constraint per op); contiguous
  variant - each device's ops form one interval of the topological order;
* memory (when ``problem.use_memory``): parameters + outputs + receive buffers <= capacity;
* optional stage count ``sum_d used[d] = K`` and latency ``stages x P <= max_latency``;
* symmetry: interchangeable devices are first used in index order.

The model is hinted with the best feasible baseline and the result is never worse than it.
The proven bound is the best of CP-SAT's objective bound, the fractional load LP, the
longest op and ``sum min dur / D``.

Examples
--------
>>> import numpy as np
>>> from hetsched.problem import Problem
>>> p = Problem.from_arrays(names=list("abcd"), devices=["x", "y"],
...     exec_time=np.array([[3.0, 6.0], [1.0, 2.0], [2.0, 2.0], [2.0, 1.0]]),
...     edges=[(0, 1, 1.0), (1, 2, 1.0), (2, 3, 1.0)], quantum=1.0)
>>> plan = solve_pipeline(p, time_limit=5, workers=1)
>>> plan.period, plan.status, dict(plan.assignment)
(4.0, 'optimal', {'a': 'x', 'b': 'x', 'c': 'y', 'd': 'y'})
"""

from __future__ import annotations

import itertools
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
from ortools.sat.python import cp_model

from hetsched.errors import InfeasibleError, SolverError
from hetsched.problem import Problem
from hetsched.schedule.bounds import load_bound
from hetsched.schedule.throughput.baselines import Baseline, run_baselines
from hetsched.schedule.throughput.pipecost import channels, simple_period_bound
from hetsched.schedule.throughput.pipeplan import PipelinePlan, make_pipeline_plan
from hetsched.solver import (
    GLOBAL_STOP,
    Progress,
    ProgressCallback,
    StopToken,
    check_seed,
    check_time_limit,
    report,
)

if TYPE_CHECKING:
    from hetsched.graph.opgraph import OpGraph

__all__ = ["PipelineModel", "build_pipeline_model", "solve_pipeline"]


@dataclass
class PipelineModel:
    """A built CP-SAT pipeline model and the variables read back."""

    model: cp_model.CpModel
    node_device_to_on: list[dict[int, Any]]
    period: cp_model.IntVar
    stage_count: cp_model.IntVar
    device_to_used: list[Any] = field(default_factory=list)


def build_pipeline_model(
    problem: Problem,
    *,
    lower: int,
    upper: int,
    contiguous: bool = False,
    stages: int | None = None,
    max_latency: int | None = None,
) -> PipelineModel:
    """Build the model with ``P`` in ``[lower, upper]`` (units; see the module docstring)."""
    p = problem
    m = cp_model.CpModel()
    on: list[dict[int, Any]] = []
    for v in range(p.n):
        lits = {d: m.new_bool_var(f"on_{p.names[v]}_{p.devices[d]}") for d in p.allowed_devices[v]}
        m.add_exactly_one(lits.values())
        on.append(lits)
    period = m.new_int_var(lower, max(lower, upper), "period")
    _add_device_load(m, p, on, period)
    _add_link_load(m, p, on, period)
    if contiguous:
        _add_contiguous(m, p, on)
    else:
        _add_acyclic_ranks(m, p, on)
    if p.use_memory:
        _add_memory(m, p, on)
    used, count = _add_stage_count(m, p, on, stages)
    if max_latency is not None:
        _add_latency(m, p, period, count, max_latency)
    _add_symmetry_breaking(m, p, on)
    m.minimize(period)
    return PipelineModel(m, on, period, count, used)


def _add_device_load(
    m: cp_model.CpModel, p: Problem, on: list[dict[int, Any]], period: Any
) -> None:
    # For each device d: sum_v dur[v,d] on[v,d] <= P.
    for d in range(p.num_devices):
        terms = [int(p.dur[v, d]) * on[v][d] for v in range(p.n) if d in on[v] and p.dur[v, d]]
        if terms:
            m.add(sum(terms) <= period)


def _add_link_load(m: cp_model.CpModel, p: Problem, on: list[dict[int, Any]], period: Any) -> None:
    # For each channel l: sum_{e, a->b routed over l} share[e,a,b] * (on[u,a] & on[v,b]) <= P.
    ch = channels(p)
    terms: dict[int, list] = {}
    for k in range(p.num_edges):
        u, v = int(p.edge_src[k]), int(p.edge_dst[k])
        for a, la in on[u].items():
            for b, lb in on[v].items():
                c = int(ch.share[k, a, b]) if a != b else 0
                if c == 0:
                    continue
                cut = m.new_bool_var(f"cut_{p.names[u]}_{p.names[v]}_{a}_{b}")
                m.add_bool_or([la.Not(), lb.Not(), cut])
                for link in ch.route[a, b]:
                    terms.setdefault(link, []).append(c * cut)
    for link_terms in terms.values():
        m.add(sum(link_terms) <= period)


def _add_acyclic_ranks(m: cp_model.CpModel, p: Problem, on: list[dict[int, Any]]) -> None:
    # rank[d] all different; pos[v] = rank[dev(v)]; for each edge u->v: pos[u] <= pos[v].
    dcount = p.num_devices
    rank = [m.new_int_var(0, dcount - 1, f"rank_{x}") for x in p.devices]
    m.add_all_different(rank)
    pos = []
    for v in range(p.n):
        devs = sorted(on[v])
        if len(devs) == 1:
            pos.append(rank[devs[0]])
            continue
        dev = m.new_int_var_from_domain(cp_model.Domain.from_values(devs), f"dev_{p.names[v]}")
        m.add(dev == sum(d * lit for d, lit in on[v].items()))
        x = m.new_int_var(0, dcount - 1, f"pos_{p.names[v]}")
        m.add_element(dev, rank, x)
        pos.append(x)
    for k in range(p.num_edges):
        m.add(pos[int(p.edge_src[k])] <= pos[int(p.edge_dst[k])])


def _add_contiguous(m: cp_model.CpModel, p: Problem, on: list[dict[int, Any]]) -> None:
    # For each device d: sum_v max(0, on[v,d] - on[v-1,d]) <= 1 (one interval of the order).
    for d in range(p.num_devices):
        rises = []
        for v in range(p.n):
            if d not in on[v]:
                continue
            prev = on[v - 1].get(d) if v else None
            if prev is None:
                rises.append(on[v][d])
                continue
            r = m.new_bool_var(f"rise_{p.names[v]}_{p.devices[d]}")
            m.add_bool_or([on[v][d].Not(), prev, r])
            rises.append(r)
        if len(rises) > 1:
            m.add(sum(rises) <= 1)


def _add_memory(m: cp_model.CpModel, p: Problem, on: list[dict[int, Any]]) -> None:
    # For each device d: sum_v mem[v] on[v,d] + sum_u outbytes[u] recv[u,d] <= cap[d],
    # recv[u,d] >= on[v,d] - on[u,d] for every edge u->v.
    out_bytes: dict[int, int] = {}
    for k in range(p.num_edges):
        u = int(p.edge_src[k])
        out_bytes[u] = max(out_bytes.get(u, 0), int(np.ceil(p.edge_bytes[k])))
    for d in range(p.num_devices):
        if not np.isfinite(p.capacity[d]):
            continue
        terms = [int(np.ceil(p.memory[v])) * on[v][d] for v in range(p.n) if d in on[v]]
        for u, nbytes in out_bytes.items():
            consumers = [on[v][d] for v, _k in p.succs[u] if d in on[v]]
            if not consumers or nbytes == 0:
                continue
            recv = m.new_bool_var(f"recv_{p.names[u]}_{p.devices[d]}")
            own = on[u].get(d)
            for lit in consumers:
                m.add_bool_or([lit.Not(), recv] + ([own] if own is not None else []))
            terms.append(nbytes * recv)
        m.add(sum(terms) <= int(p.capacity[d]))


def _add_stage_count(
    m: cp_model.CpModel, p: Problem, on: list[dict[int, Any]], stages: int | None
) -> tuple[list[Any], Any]:
    # used[d] = OR_v on[v,d]; stages = sum_d used[d] (= K when given).
    used = []
    for d in range(p.num_devices):
        lits = [on[v][d] for v in range(p.n) if d in on[v]]
        u = m.new_bool_var(f"used_{p.devices[d]}")
        if lits:
            m.add_max_equality(u, lits)
        else:
            m.add(u == 0)
        used.append(u)
    count = m.new_int_var(1, p.num_devices, "stages")
    m.add(count == sum(used))
    if stages is not None:
        m.add(count == stages)
    return used, count


def _add_latency(m: cp_model.CpModel, p: Problem, period: Any, count: Any, limit: int) -> None:
    # stages x P <= max_latency.
    for k in range(1, p.num_devices + 1):
        is_k = m.new_bool_var(f"stages_is_{k}")
        m.add(count == k).only_enforce_if(is_k)
        m.add(count != k).only_enforce_if(is_k.Not())
        m.add(k * period <= limit).only_enforce_if(is_k)


def _add_symmetry_breaking(m: cp_model.CpModel, p: Problem, on: list[dict[int, Any]]) -> None:
    # Interchangeable devices g1 < g2: first op on g1 comes before the first op on g2.
    for g in p.device_groups:
        if len(g) < 2:
            continue
        first = []
        for d in g:
            f = m.new_int_var(0, p.n, f"first_{p.devices[d]}")
            m.add_min_equality(f, [p.n - (p.n - v) * on[v][d] for v in range(p.n) if d in on[v]])
            first.append(f)
        for f1, f2 in itertools.pairwise(first):
            m.add(f1 <= f2)


def _hint(built: PipelineModel, p: Problem, assign: np.ndarray, time_limit: float) -> bool:
    """Hint every variable: solve a copy with the assignment fixed, copy its full solution."""
    fixed = built.model.clone()
    for v in range(p.n):
        for d, lit in built.node_device_to_on[v].items():
            fixed.add(fixed.get_bool_var_from_proto_index(lit.index) == int(int(assign[v]) == d))
    solver = cp_model.CpSolver()
    solver.parameters.catch_sigint_signal = False  # SIGINT is ours: GLOBAL_STOP
    solver.parameters.max_time_in_seconds = max(0.01, time_limit)
    solver.parameters.num_workers = 1
    if solver.solve(fixed) not in (cp_model.OPTIMAL, cp_model.FEASIBLE):
        return False
    values = solver.response_proto.solution
    for i, val in enumerate(values):
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


def solve_pipeline(
    problem: Problem,
    graph: OpGraph | None = None,
    *,
    contiguous: bool = False,
    stages: int | None = None,
    max_latency: float | None = None,
    time_limit: float = 10.0,
    seed: int = 0,
    workers: int = 2,
    min_block_size: int = 5,
    progress: ProgressCallback | None = None,
    stop: StopToken | None = None,
    export_model: str | None = None,
) -> PipelinePlan:
    """Minimise the pipeline period; see the module docstring.

    Parameters
    ----------
    problem, graph : the instance (``graph`` gives FLOPs to the equal-FLOPs baseline).
    contiguous : one interval of the topological order per device (pipeline-parallel split).
    stages : exact number of stages (devices used); ``None`` lets the solver choose.
    max_latency : seconds; the pipeline latency ``stages x period`` must not exceed it.
    time_limit, seed, workers : CP-SAT parameters. ``export_model`` writes the model.

    Raises
    ------
    InfeasibleError : memory no assignment fits, a latency bound below the critical path,
        more stages than ops or devices.
    """
    time_limit = check_time_limit(time_limit)
    seed = check_seed(seed)
    t0 = time.perf_counter()
    stop = stop or GLOBAL_STOP
    p = problem
    limit = _check_args(p, stages, max_latency)
    baselines = run_baselines(p, graph, stages=stages, max_latency=limit, min_block_size=5)
    ok = [b for b in baselines if _admissible(b, contiguous, stages, limit)]
    best: Baseline | None = min(ok, key=lambda b: (b.cost.period, b.name)) if ok else None
    simple = simple_period_bound(p)
    bounds = {**simple, "load_lp": load_bound(p)}
    lower = max(bounds.values())
    upper = best.cost.period if best else int(p.dur.max(axis=1).sum() + p.comm.sum())
    stats: dict[str, Any] = {
        "heuristics": {b.name: b.cost.period * p.quantum for b in baselines if b.cost.feasible},
        "baselines": {
            b.name: {"period": b.cost.period * p.quantum, "feasible": b.cost.feasible}
            for b in baselines
        },
        "bounds": {k: v * p.quantum for k, v in bounds.items()},
        "hint": best.name if best else None,
        "max_latency": max_latency,
    }
    variant = "contiguous" if contiguous else "general"
    if best is not None:
        report(progress, Progress(f"pipe-{best.name}", upper * p.quantum, lower * p.quantum, 0.0))
        if best.cost.period <= lower:
            return make_pipeline_plan(
                p, best.assign, solver=f"pipeline-{variant}", status="optimal",
                period_bound=lower, solve_time=time.perf_counter() - t0,
                stats={**stats, "proved_by": "bounds"}, contiguous=contiguous,
            )  # fmt: skip
    built = build_pipeline_model(
        p, lower=lower, upper=upper, contiguous=contiguous, stages=stages, max_latency=limit
    )
    if best is not None:
        stats["hint_complete"] = _hint(
            built, p, _canonical(p, best.assign), min(5.0, time_limit / 4)
        )
    if export_model:
        built.model.export_to_file(export_model)
    solver = cp_model.CpSolver()
    solver.parameters.catch_sigint_signal = False  # SIGINT is ours: GLOBAL_STOP
    solver.parameters.max_time_in_seconds = max(0.01, time_limit - (time.perf_counter() - t0))
    solver.parameters.num_workers = int(workers)
    solver.parameters.random_seed = seed
    solver.parameters.cp_model_probing_level = 0  # probing costs seconds on 10k+ literals
    remove = stop.on_stop(solver.stop_search)
    try:
        status = solver.solve(built.model)
    finally:
        remove()
    stats.update(cp_status=solver.status_name(status), branches=solver.num_branches)
    elapsed = time.perf_counter() - t0
    if status in (cp_model.OPTIMAL, cp_model.FEASIBLE):
        assign = np.array(
            [next(d for d, lit in built.node_device_to_on[v].items() if solver.value(lit))
             for v in range(p.n)], dtype=np.int64,
        )  # fmt: skip
        value = int(solver.objective_value)
        bound = max(lower, int(np.ceil(solver.best_objective_bound - 1e-9)))
        if best is None or value < best.cost.period:
            report(progress, Progress("pipe-cpsat", value * p.quantum, bound * p.quantum, elapsed))
            return make_pipeline_plan(
                p, assign, solver=f"pipeline-{variant}",
                status="optimal" if status == cp_model.OPTIMAL else "feasible",
                period_bound=bound, solve_time=elapsed, stats=stats, contiguous=contiguous,
                interrupted=stop.is_set(),
            )  # fmt: skip
        status_name = "optimal" if status == cp_model.OPTIMAL or bound >= value else "feasible"
        return make_pipeline_plan(
            p, best.assign, solver=f"pipeline-{variant}", status=status_name,
            period_bound=bound, solve_time=elapsed, stats=stats, contiguous=contiguous,
            interrupted=stop.is_set(),
        )  # fmt: skip
    if status == cp_model.INFEASIBLE:
        msg = _infeasible_reason(p, stages, limit)
        raise InfeasibleError(msg)
    if status == cp_model.MODEL_INVALID:
        msg = f"CP-SAT rejected the pipeline model: {built.model.validate()}"
        raise SolverError(msg)
    if best is None:
        msg = f"no pipeline partition of {p.name!r} found within {time_limit:g} s"
        raise SolverError(msg)
    return make_pipeline_plan(
        p, best.assign, solver=f"pipeline-{variant}", status="heuristic", period_bound=lower,
        solve_time=elapsed, stats={**stats, "fallback": best.name}, contiguous=contiguous,
        interrupted=stop.is_set(),
    )  # fmt: skip


def _admissible(b: Baseline, contiguous: bool, stages: int | None, limit: int | None) -> bool:
    c = b.cost
    if not c.feasible or (stages is not None and c.stages != stages):
        return False
    if limit is not None and c.latency() > limit:
        return False
    if contiguous:
        runs = b.assign[np.concatenate([[0], np.flatnonzero(np.diff(b.assign)) + 1])]
        return len(set(runs.tolist())) == len(runs)
    return True


def _infeasible_reason(p: Problem, stages: int | None, limit: int | None) -> str:
    parts = []
    if p.use_memory:
        parts.append("device memory (parameters + outputs + receive buffers)")
    if stages is not None:
        parts.append(f"exactly {stages} stages")
    if limit is not None:
        parts.append(f"latency <= {limit * p.quantum:.6g} s")
    why = ", ".join(parts) or "op support"
    return f"no pipeline partition of {p.name!r} satisfies {why}"
