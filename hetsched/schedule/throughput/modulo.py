"""Modulo scheduling: the minimum initiation interval of a graph run over and over.

Iteration ``i`` (a frame, a head, a micro-batch) starts op ``v`` at ``s_v + i * II`` on the
same device. Model (integer units of the :class:`~hetsched.problem.Problem`):

* ``on[v,d]`` per allowed (op, device), exactly one; ``dur[v,d] <= II`` when chosen;
* residue ``r_v = s_v mod II``; device capacity modulo ``II``: the arcs ``[r_v, r_v + dur)``
  of a device's ops are disjoint on the circle, i.e. NoOverlap over the intervals
  ``[r_v, r_v + dur)`` and ``[r_v + II, r_v + II + dur)``;
* dependencies within an iteration ``s_v >= s_u + dur_u + comm[e, dev u, dev v]``;
* loop-carried edges ``(u, v, delta)``: ``s_v + delta * II >= s_u + dur_u + comm``;
* static memory (when ``problem.use_memory``); transfers are delays, links are not
  reserved modulo ``II`` (link contention is not modelled here).

Minimise ``II`` (one CP-SAT model with ``II`` a variable), then the latency at that ``II``.
Lower bounds: ResMII (least max device load over assignments: LP, then an exact CP-SAT
bin packing) and RecMII (least ``II`` with no positive cycle through carried edges).

Examples
--------
>>> import numpy as np
>>> from hetsched.problem import Problem
>>> p = Problem.from_arrays(names=["a", "b", "c"], devices=["x", "y"],
...     exec_time=np.array([[2.0, 4.0], [3.0, 3.0], [2.0, 2.0]]),
...     edges=[(0, 1, 1.0), (1, 2, 1.0)], quantum=1.0)
>>> plan = solve_modulo(p, time_limit=5, workers=1)
>>> plan.ii, plan.status, plan.res_mii
(4.0, 'optimal', 4.0)
>>> validate_modulo(plan, p, iterations=5)
>>> solve_modulo(p, carried=[("c", "a", 1)], time_limit=5, workers=1).rec_mii
7.0
"""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

import numpy as np
from ortools.sat.python import cp_model

from hetsched.errors import SolverError
from hetsched.plan import Plan, plan_from_schedule
from hetsched.problem import Problem
from hetsched.schedule.bounds import critical_path_bound
from hetsched.schedule.throughput.modulo_plan import (
    Carried,
    ModuloPlan,
    carried_comm,
    carried_index,
    rec_mii,
    res_mii,
    validate_modulo,
)
from hetsched.solver import (
    GLOBAL_STOP,
    Progress,
    ProgressCallback,
    StopToken,
    check_seed,
    check_time_limit,
    report,
)

__all__ = ["ModuloPlan", "rec_mii", "res_mii", "solve_modulo", "validate_modulo"]


@dataclass
class _Vars:
    on: list[dict[int, Any]]
    start: list[Any]
    latency: Any


def _build(
    p: Problem, carried: list[tuple[int, int, int]], ii: int, horizon: int
) -> tuple[cp_model.CpModel, _Vars]:
    """The feasibility model at a fixed ``II`` (objective: latency, set by the caller)."""
    m = cp_model.CpModel()
    on = [
        {d: m.new_bool_var(f"on_{p.names[v]}_{p.devices[d]}") for d in p.allowed_devices[v]}
        for v in range(p.n)
    ]
    start = [m.new_int_var(0, horizon, f"start_{x}") for x in p.names]
    ends = []
    for v in range(p.n):
        m.add_exactly_one(on[v].values())
        ends.append(start[v] + sum(int(p.dur[v, d]) * lit for d, lit in on[v].items()))
    _add_modulo_capacity(m, p, on, start, ii, horizon)
    _add_precedence(m, p, on, start, ends)
    _add_carried(m, p, on, start, ends, ii, carried)
    if p.use_memory:
        _add_memory(m, p, on)
    latency = m.new_int_var(0, horizon + int(p.dur.max()), "latency")
    for v in range(p.n):
        m.add(latency >= ends[v])
    return m, _Vars(on, start, latency)


def _add_modulo_capacity(
    m: cp_model.CpModel, p: Problem, on: list[dict[int, Any]], start: list, ii: int, horizon: int
) -> None:
    # For each device d: arcs [r_v, r_v + dur) mod II disjoint, s_v = II k_v + r_v, dur <= II.
    per_dev: dict[int, list] = {d: [] for d in range(p.num_devices)}
    for v in range(p.n):
        r = m.new_int_var(0, ii - 1, f"res_{p.names[v]}")
        k = m.new_int_var(0, horizon // ii + 1, f"iter_{p.names[v]}")
        m.add(start[v] == ii * k + r)
        for d, lit in on[v].items():
            c = int(p.dur[v, d])
            if c > ii:
                m.add(lit == 0)
                continue
            if c == 0:
                continue
            tag = f"{p.names[v]}_{p.devices[d]}"
            per_dev[d].append(m.new_optional_fixed_size_interval_var(r, c, lit, f"arc_{tag}"))
            per_dev[d].append(m.new_optional_fixed_size_interval_var(r + ii, c, lit, f"arc2_{tag}"))
    for ivs in per_dev.values():
        if len(ivs) > 2:
            m.add_no_overlap(ivs)


def _comm_terms(p: Problem, k: int, on: list[dict[int, Any]]) -> list[tuple[int, Any, Any]]:
    u, v = int(p.edge_src[k]), int(p.edge_dst[k])
    return [
        (int(p.comm[k, a, b]), la, lb)
        for a, la in on[u].items()
        for b, lb in on[v].items()
        if a != b and p.comm[k, a, b] > 0
    ]


def _add_precedence(
    m: cp_model.CpModel, p: Problem, on: list[dict[int, Any]], start: list, ends: list
) -> None:
    # For each edge u->v: s_v >= e_u + comm[e, dev u, dev v].
    for k in range(p.num_edges):
        u, v = int(p.edge_src[k]), int(p.edge_dst[k])
        m.add(start[v] >= ends[u])
        for c, la, lb in _comm_terms(p, k, on):
            m.add(start[v] >= ends[u] + c).only_enforce_if([la, lb])


def _add_carried(
    m: cp_model.CpModel,
    p: Problem,
    on: list[dict[int, Any]],
    start: list,
    ends: list,
    ii: int,
    carried: list[tuple[int, int, int]],
) -> None:
    # For each carried edge (u, v, delta): s_v + delta * II >= e_u + comm(u's output, a -> b).
    for u, v, dist in carried:
        m.add(start[v] + dist * ii >= ends[u])
        for a, la in on[u].items():
            for b, lb in on[v].items():
                c = carried_comm(p, u, a, b)
                if c:
                    m.add(start[v] + dist * ii >= ends[u] + c).only_enforce_if([la, lb])


def _add_memory(m: cp_model.CpModel, p: Problem, on: list[dict[int, Any]]) -> None:
    # For each device d: sum_v mem[v] on[v,d] <= capacity[d].
    for d in range(p.num_devices):
        terms = [int(np.ceil(p.memory[v])) * on[v][d] for v in range(p.n) if d in on[v]]
        if terms and np.isfinite(p.capacity[d]):
            m.add(sum(terms) <= int(p.capacity[d]))


def _solve(m: cp_model.CpModel, limit: float, seed: int, workers: int, stop: StopToken) -> Any:
    s = cp_model.CpSolver()
    s.parameters.catch_sigint_signal = False  # SIGINT is ours: GLOBAL_STOP
    s.parameters.max_time_in_seconds = max(0.01, limit)
    s.parameters.num_workers = int(workers)
    s.parameters.random_seed = seed
    remove = stop.on_stop(s.stop_search)
    try:
        st = s.solve(m)
    finally:
        remove()
    return s, st


def _list_modulo(
    p: Problem, assign: np.ndarray, ii: int, carried: list[tuple[int, int, int]]
) -> np.ndarray | None:
    """Iterative modulo list scheduling at ``ii``: each op at its earliest start whose arc
    is free modulo ``ii`` on its device; ``None`` if an op does not fit or a carried edge fails.
    """
    arcs: dict[int, list[tuple[int, int]]] = {}
    start = np.zeros(p.n, dtype=np.int64)
    fin = np.zeros(p.n, dtype=np.int64)
    for v in range(p.n):
        d = int(assign[v])
        c = int(p.dur[v, d])
        if c > ii:
            return None
        ready = max([int(fin[u]) + int(p.comm[k, assign[u], d]) for u, k in p.preds[v]], default=0)
        taken = arcs.setdefault(d, [])
        cands = sorted({ready, *(ready + (r + w - ready) % ii for r, w in taken)})
        for t in cands:
            r = t % ii
            if c == 0 or all((r - r0) % ii >= w0 and (r0 - r) % ii >= c for r0, w0 in taken):
                break
        else:
            return None
        start[v], fin[v] = t, t + c
        if c:
            taken.append((t % ii, c))
    for u, v, dist in carried:
        c = carried_comm(p, u, int(assign[u]), int(assign[v]))
        if start[v] + dist * ii < fin[u] + c:
            return None
    return start


def _packed_modulo(
    p: Problem, assign: np.ndarray, ii: int, carried: list[tuple[int, int, int]]
) -> np.ndarray | None:
    """Residues packed back to back per device (no fragmentation: works at any ``II`` >= the
    max load), each op at the first start >= ready with its residue."""
    load = np.zeros(p.num_devices, dtype=np.int64)
    start = np.zeros(p.n, dtype=np.int64)
    for v in range(p.n):
        d = int(assign[v])
        r = int(load[d])
        load[d] += int(p.dur[v, d])
        if load[d] > ii:
            return None
        ready = max(
            [int(start[u] + p.dur[u, assign[u]] + p.comm[k, assign[u], d]) for u, k in p.preds[v]],
            default=0,
        )
        start[v] = ready + (r - ready) % ii
    for u, v, dist in carried:
        c = carried_comm(p, u, int(assign[u]), int(assign[v]))
        if start[v] + dist * ii < start[u] + p.dur[u, assign[u]] + c:
            return None
    return start


def _heuristic(
    p: Problem, assign: np.ndarray, lo: int, hi: int, carried: list[tuple[int, int, int]]
) -> tuple[int, np.ndarray]:
    ii = lo
    while True:
        start = _packed_modulo(p, assign, ii, carried)
        if start is None:
            start = _list_modulo(p, assign, ii, carried)
        if start is not None:
            return ii, start
        if ii >= hi:
            msg = f"modulo list scheduling failed at the serial II {hi} (solver bug)"
            raise SolverError(msg)
        ii = min(hi, max(ii + 1, int(ii * 1.03)))


def solve_modulo(
    problem: Problem,
    *,
    carried: Carried = (),
    time_limit: float = 10.0,
    seed: int = 0,
    workers: int = 2,
    iterations: int = 4,
    progress: ProgressCallback | None = None,
    stop: StopToken | None = None,
) -> ModuloPlan:
    """Minimum initiation interval, then minimum latency at it; see the module docstring.

    A modulo list schedule of the ResMII assignment gives a first ``II``; fixed-``II`` CP-SAT
    models then bisect between the bound and it. ``II`` is proven when it meets the bound or
    the model at ``II - 1`` is proven infeasible.

    Raises
    ------
    UsageError : a carried edge naming an unknown op or with distance < 1.
    SolverError : link contention requested.
    InfeasibleError : no assignment fits device memory.
    """
    time_limit = check_time_limit(time_limit)
    seed = check_seed(seed)
    stop = stop or GLOBAL_STOP
    t0 = time.perf_counter()
    p = problem
    if p.link_contention:
        msg = "modulo scheduling does not model link contention; solve without it"
        raise SolverError(msg)
    carried_idx = carried_index(p, carried)
    res, res_exact, res_assign = res_mii(p, time_limit=min(2.0, time_limit / 5))
    rec = rec_mii(p, carried)
    lo = max(res, rec, 1)
    serial = int(p.dur.max(axis=1).sum() + (p.comm.max(axis=(1, 2)).sum() if p.num_edges else 0))
    if res_assign is None:
        res_assign = np.argmin(np.where(p.allowed, p.dur, np.iinfo(np.int64).max), axis=1)
    best_ii, h_start = _heuristic(p, res_assign, lo, max(lo, serial), carried_idx)
    best = (res_assign, h_start)
    horizon = serial + 2 * int(p.dur.max()) + int(h_start.max()) + p.n * best_ii
    report(progress, Progress("modulo-list", best_ii * p.quantum, lo * p.quantum, 0.0))
    lo_open, infeasible_below = lo, False
    while lo_open < best_ii and not stop.is_set():
        left = 0.8 * time_limit - (time.perf_counter() - t0)
        if left <= 0:
            break
        mid = (lo_open + best_ii) // 2
        model, var = _build(p, carried_idx, mid, horizon)
        s, st = _solve(model, left / 2, seed, workers, stop)
        if st in (cp_model.OPTIMAL, cp_model.FEASIBLE):
            best_ii = mid
            best = (_assign_of(s, var, p), np.array([s.value(x) for x in var.start]))
            report(progress, Progress("modulo", mid * p.quantum, lo * p.quantum, s.wall_time))
        else:
            infeasible_below = st == cp_model.INFEASIBLE and mid == best_ii - 1
            lo_open = mid + 1
    proven = best_ii <= lo or infeasible_below
    model, var = _build(p, carried_idx, best_ii, horizon)
    for v in range(p.n):
        model.add_hint(var.start[v], int(best[1][v]))
        for d, lit in var.on[v].items():
            model.add_hint(lit, int(best[0][v]) == d)
    model.minimize(var.latency)
    s2, st2 = _solve(model, time_limit - (time.perf_counter() - t0), seed, workers, stop)
    if st2 in (cp_model.OPTIMAL, cp_model.FEASIBLE):
        best = (_assign_of(s2, var, p), np.array([s2.value(x) for x in var.start]))
    assign, start = best
    q = p.quantum
    stats = {
        "ii": best_ii * q, "ii_bound": (best_ii if proven else lo) * q, "res_mii": res * q,
        "res_mii_exact": res_exact, "rec_mii": rec * q, "iterations": iterations,
        "latency_optimal": st2 == cp_model.OPTIMAL, "proved_by":
        "bound" if best_ii <= lo else ("II-1 infeasible" if proven else None),
        "throughput": 1.0 / (best_ii * q),
    }  # fmt: skip
    base = plan_from_schedule(
        p, assign=assign, start=start, solver="modulo", status="optimal" if proven else "feasible",
        lower_bound=min(critical_path_bound(p), int((start + p.dur[np.arange(p.n), assign]).max())),
        solve_time=time.perf_counter() - t0, stats=stats, objective="modulo",
        interrupted=stop.is_set(),
    )  # fmt: skip
    fields = {f.name: getattr(base, f.name) for f in dataclasses.fields(Plan)}
    return ModuloPlan(
        **fields, ii=best_ii * q, ii_bound=(best_ii if proven else lo) * q, res_mii=res * q,
        rec_mii=rec * q, offset=MappingProxyType({x: float(start[v] % best_ii) * q
                                                   for v, x in enumerate(p.names)}),
        carried=tuple((str(a), str(b), int(c)) for a, b, c in carried),
    )  # fmt: skip


def _assign_of(s: Any, var: _Vars, p: Problem) -> np.ndarray:
    return np.array([next(d for d, x in var.on[v].items() if s.value(x)) for v in range(p.n)])
