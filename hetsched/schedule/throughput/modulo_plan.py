"""Modulo schedules: the II lower bounds and the unrolled validator.

A modulo plan is a :class:`~hetsched.plan.Plan` with ``objective="modulo"`` whose
``modulo`` (:class:`~hetsched.plan.ModuloResult`) holds the initiation interval, its bounds
and each op's offset. :func:`res_mii` (resource bound: the best assignment's busiest
device) and :func:`rec_mii` (recurrence bound: loop-carried cycles) bound II from below;
:func:`validate_modulo` unrolls iterations and checks every overlap and dependency.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Mapping, Sequence
from types import MappingProxyType

import numpy as np
from ortools.sat.python import cp_model

from hetsched.errors import InfeasibleError, PlanError, UsageError
from hetsched.plan import Plan, mode_ids, schedule_arrays, validate
from hetsched.problem import Problem
from hetsched.schedule.bounds import load_bound
from hetsched.schedule.cpmemory import add_static_memory
from hetsched.schedule.cpsolver import new_cp_solver, solve_cp
from hetsched.solver import StopToken

__all__ = [
    "Carried",
    "carried_comm",
    "carried_index",
    "offsets",
    "rec_mii",
    "res_mii",
    "validate_modulo",
]

Carried = Sequence[tuple[str, str, int]]


def carried_index(p: Problem, carried: Carried) -> list[tuple[int, int, int]]:
    out = []
    for item in carried:
        if len(item) != 3:
            msg = f"carried edges are (src, dst, distance) triples, got {item!r}"
            raise UsageError(msg)
        u, v, dist = item
        for x in (u, v):
            if x not in p.index:
                msg = f"carried edge names op {x!r}, which is not in graph {p.name!r}"
                raise UsageError(msg)
        if isinstance(dist, bool) or not isinstance(dist, int) or dist < 1:
            msg = f"carried edge {u!r} -> {v!r} needs a distance >= 1, got {dist!r}"
            raise UsageError(msg)
        out.append((p.index[u], p.index[v], int(dist)))
    return out


def res_mii(
    problem: Problem, *, time_limit: float = 2.0, seed: int = 0, stop: StopToken | None = None
) -> tuple[int, bool, np.ndarray | None]:
    """Resource bound: least max device load over assignments that fit device memory.

    Returns ``(bound, proven exact, best assignment found or None)``.

    The fractional LP and the longest op give a floor; a CP-SAT bin packing (with the memory
    rows of :func:`~hetsched.schedule.cpmemory.add_static_memory`) raises it to
    the integer optimum when it finishes within ``time_limit`` (else to its proven bound).
    ``stop`` ends the packing early.

    Raises
    ------
    InfeasibleError : no assignment fits device memory.
    """
    p = problem
    lp = max(load_bound(p), int(p.min_dur.max()))
    m = cp_model.CpModel()
    t = m.new_int_var(lp, max(lp, int(p.dur.max(axis=1).sum())), "load")
    on = [
        {d: m.new_bool_var(f"on_{p.names[v]}_{p.devices[d]}") for d in p.allowed_devices[v]}
        for v in range(p.n)
    ]
    for v in range(p.n):
        m.add_exactly_one(on[v].values())
    for d in range(p.num_devices):
        # For each device d: sum_v dur[v,d] on[v,d] <= load.
        terms = [int(p.dur[v, d]) * on[v][d] for v in range(p.n) if d in on[v]]
        if terms:
            m.add(sum(terms) <= t)
    exact = add_static_memory(m, p, on)
    m.minimize(t)
    s = new_cp_solver(time_limit=time_limit, workers=1, seed=seed)
    st = solve_cp(s, m, stop)
    if st == cp_model.INFEASIBLE and exact:
        msg = f"no assignment of {p.name!r} fits device memory"
        raise InfeasibleError(msg)
    if not exact:  # memory rows rounded: tighter than the question, no proof
        st = cp_model.FEASIBLE if st == cp_model.OPTIMAL else st
        return (
            lp,
            False,
            (
                np.array([next(d for d, x in on[v].items() if s.value(x)) for v in range(p.n)])
                if st == cp_model.FEASIBLE
                else None
            ),
        )
    assign = None
    if st in (cp_model.OPTIMAL, cp_model.FEASIBLE):
        assign = np.array([next(d for d, x in on[v].items() if s.value(x)) for v in range(p.n)])
    if st == cp_model.OPTIMAL:
        return int(s.objective_value), True, assign
    bound = s.best_objective_bound
    return max(lp, math.ceil(bound - 1e-9) if math.isfinite(bound) else lp), False, assign


def rec_mii(problem: Problem, carried: Carried) -> int:
    """Recurrence bound: least ``II`` with ``sum dur <= II * sum distance`` on every cycle.

    Durations are each op's fastest; transfers count as zero (the ops may share a device).
    """
    p = problem
    arcs = [(int(u), int(v), 0) for u, v in zip(p.edge_src, p.edge_dst, strict=True)]
    arcs += carried_index(p, carried)
    if len(arcs) == p.num_edges:
        return 0
    w = p.min_dur.astype(np.int64)

    def positive_cycle(ii: int) -> bool:
        dist = np.zeros(p.n, dtype=np.int64)
        for _ in range(p.n):
            changed = False
            for u, v, k in arcs:
                cand = dist[u] + w[u] - ii * k
                if cand > dist[v]:
                    dist[v], changed = cand, True
            if not changed:
                return False
        return True

    lo, hi = 0, int(w.sum())
    while lo < hi:
        mid = (lo + hi) // 2
        if positive_cycle(mid):
            lo = mid + 1
        else:
            hi = mid
    return lo


def offsets(p: Problem, start: np.ndarray, ii: int) -> Mapping[str, float]:
    """Each op's start modulo ``ii`` (integer units), in real time: a modulo result's
    ``offset``."""
    q = p.quantum
    return MappingProxyType({x: float(start[v] % ii) * q for v, x in enumerate(p.names)})


def carried_comm(p: Problem, u: int, a: int, b: int) -> int:
    """Transfer time of ``u``'s output from ``a`` to ``b`` (its largest out-edge; 0 if none)."""
    ks = [k for _v, k in p.succs[u]]
    return int(p.comm[ks, a, b].max()) if ks and a != b else 0


def validate_modulo(
    plan: Plan, problem: Problem, *, iterations: int = 4, tol: float = 1e-6
) -> None:
    """Unroll ``iterations`` iterations and check capacity and every dependency explicitly.

    Also checks the one-iteration schedule (:func:`hetsched.plan.validate`), that II is not
    below its bounds (the recurrence bound re-derived) and that the recorded offsets are the
    starts modulo II. Raises :class:`PlanError` naming the first violation.
    """
    r = plan.modulo
    if plan.objective not in ("modulo", "throughput") or r is None:
        msg = f"plan objective is {plan.objective!r} without a modulo result, not a modulo plan"
        raise PlanError(msg)
    validate(plan, problem, tol=tol)
    p = problem
    q = p.quantum
    ii = r.ii / q
    if abs(ii - round(ii)) <= 1e-6 * max(1.0, ii):  # the model's integer II, not its float
        ii = float(round(ii))
    floor = max(r.res_mii, r.rec_mii, r.ii_bound, rec_mii(p, r.carried) * q)
    if r.ii < floor - tol * q:
        msg = f"II {r.ii!r} is below its own lower bound {floor!r}"
        raise PlanError(msg)
    assign, start = schedule_arrays(plan, p)
    dur = p.mode_dur[mode_ids(plan, p)]  # the plan's own modes (streamed ones run longer)
    runs = [
        (start[v] + i * ii, start[v] + i * ii + dur[v], v, i)
        for i in range(iterations)
        for v in range(p.n)
    ]
    for d in range(p.num_devices):
        mine = sorted(x for x in runs if assign[x[2]] == d and x[1] > x[0])
        for (_s0, e0, v0, i0), (s1, _e1, v1, i1) in itertools.pairwise(mine):
            if s1 < e0 - tol:
                msg = (
                    f"unrolled: {p.names[v0]!r}#{i0} and {p.names[v1]!r}#{i1} overlap on "
                    f"{p.devices[d]!r} at {s1:g} (II {ii:g})"
                )
                raise PlanError(msg)
    deps = [
        (int(u), int(v), 0, k) for k, (u, v) in enumerate(zip(p.edge_src, p.edge_dst, strict=True))
    ]
    deps += [(u, v, dist, -1) for u, v, dist in carried_index(p, r.carried)]
    for u, v, dist, k in deps:
        a, b = int(assign[u]), int(assign[v])
        c = int(p.comm[k, a, b]) if k >= 0 else carried_comm(p, u, a, b)
        for i in range(iterations - dist):
            if start[v] + (i + dist) * ii < start[u] + i * ii + dur[u] + c - tol:
                msg = (
                    f"unrolled: {p.names[v]!r}#{i + dist} starts before {p.names[u]!r}#{i} "
                    f"finishes + transfer ({c})"
                )
                raise PlanError(msg)
    for v, x in enumerate(p.names):
        want = float(start[v] % ii) * q if ii > 0 else 0.0
        off = abs(r.offset.get(x, math.nan) - want)
        if not min(off, abs(off - ii * q)) <= tol * max(1.0, r.ii):  # on the circle
            msg = f"plan records offset {r.offset.get(x)!r} for {x!r}; start mod II is {want!r}"
            raise PlanError(msg)
