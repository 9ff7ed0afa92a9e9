"""Independent plan validation: re-check every constraint, name the first violation.

:func:`validate` knows nothing about the solver that produced a plan. It converts the
plan's real times back to the problem's integer units and checks placement and support,
durations, device overlap, precedence with transfer delays, link overlap (when link
contention is on), memory capacity (when memory is on), the makespan and the bound.

Examples
--------
>>> import numpy as np
>>> from hetsched.plan import plan_from_schedule
>>> from hetsched.problem import Problem
>>> p = Problem.from_arrays(names=["a", "b"], devices=["cpu", "gpu"],
...     exec_time=np.array([[4.0, 1.0], [3.0, 2.0]]), edges=[(0, 1, 10.0)],
...     comm_inv_bandwidth=np.array([[0.0, 0.1], [0.1, 0.0]]), quantum=1.0)
>>> ok = plan_from_schedule(p, assign=[1, 1], start=[0, 1], solver="manual", status="feasible")
>>> validate(ok, p)
>>> bad = plan_from_schedule(p, assign=[1, 0], start=[0, 1], solver="manual", status="feasible")
>>> validate(bad, p)
Traceback (most recent call last):
...
hetsched.errors.PlanError: node 'b' on 'cpu' starts at 1 but its input from 'a' on 'gpu' ...
"""

from __future__ import annotations

import itertools
import math

import numpy as np

from hetsched.errors import PlanError
from hetsched.plan.plan import Plan, check_membership
from hetsched.problem import Problem

__all__ = ["validate"]


def validate(plan: Plan, problem: Problem, *, tol: float = 1e-6) -> None:
    """Check every constraint of ``plan`` against ``problem``; raise :class:`PlanError`.

    Independent of any solver: works on real times converted back to units, with an
    absolute tolerance of ``tol`` units. Checks placement and support, durations, device
    overlap, precedence with transfer delays, link overlap (when ``link_contention``),
    memory capacity (when ``use_memory``), makespan and bound consistency.
    """
    if plan.graph_sha256 and problem.graph_sha256 and plan.graph_sha256 != problem.graph_sha256:
        msg = (
            f"plan is for graph {plan.graph_name!r} (sha256 {plan.graph_sha256[:12]}), not "
            f"{problem.name!r} (sha256 {problem.graph_sha256[:12]})"
        )
        raise PlanError(msg)
    check_membership(plan, problem)
    q = problem.quantum
    names = problem.names
    dev = np.array([problem.device_index[plan.assignment[x]] for x in names], dtype=np.int64)
    st = np.array([plan.start[x] / q for x in names])
    fi = np.array([plan.finish[x] / q for x in names])
    idx = np.arange(problem.n)
    for i in range(problem.n):
        if not (math.isfinite(st[i]) and math.isfinite(fi[i])) or st[i] < -tol:
            msg = f"node {names[i]!r} has invalid times start={plan.start[names[i]]!r}"
            raise PlanError(msg)
    unsupported = np.flatnonzero(~problem.allowed[idx, dev])
    if unsupported.size:
        i = int(unsupported[0])
        why = (
            "does not support it"
            if not np.isfinite(problem.exec_time[i, dev[i]])
            else "cannot hold it"
        )
        msg = f"node {names[i]!r} is placed on {problem.devices[dev[i]]!r}, which {why}"
        raise PlanError(msg)
    want = problem.dur[idx, dev]
    wrong = np.flatnonzero(np.abs(fi - st - want) > tol)
    if wrong.size:
        i = int(wrong[0])
        msg = (
            f"node {names[i]!r} on {problem.devices[dev[i]]!r} runs {_fmt(fi[i] - st[i])} units, "
            f"cost table says {want[i]}"
        )
        raise PlanError(msg)
    for d in range(problem.num_devices):
        on = np.flatnonzero(dev == d)
        on = on[np.lexsort((fi[on], st[on]))]
        for x, y in itertools.pairwise(on):
            if st[y] < fi[x] - tol and fi[x] - st[x] > tol and fi[y] - st[y] > tol:
                msg = (
                    f"nodes {names[x]!r} [{_fmt(st[x])}, {_fmt(fi[x])}) and {names[y]!r} "
                    f"[{_fmt(st[y])}, {_fmt(fi[y])}) overlap on {problem.devices[d]!r}"
                )
                raise PlanError(msg)
    transfer_of = _transfers_by_edge(plan, problem)
    for k in range(problem.num_edges):
        u, v = int(problem.edge_src[k]), int(problem.edge_dst[k])
        c = int(problem.comm[k, dev[u], dev[v]])
        arrive = fi[u] + c
        if k in transfer_of:
            t0, t1 = transfer_of[k]
            if t0 < fi[u] - tol or abs(t1 - t0 - c) > tol:
                msg = (
                    f"transfer {names[u]!r} -> {names[v]!r} runs [{_fmt(t0)}, {_fmt(t1)}) but must "
                    f"start after {_fmt(fi[u])} and last {c} units"
                )
                raise PlanError(msg)
            arrive = max(arrive, t1)
        if st[v] < arrive - tol:
            msg = (
                f"node {names[v]!r} on {problem.devices[dev[v]]!r} starts at {_fmt(st[v])} but its "
                f"input from {names[u]!r} on {problem.devices[dev[u]]!r} arrives at {_fmt(arrive)} "
                f"(finish {_fmt(fi[u])} + transfer {c})"
            )
            raise PlanError(msg)
    if problem.link_contention:
        _check_links(plan, problem, transfer_of, dev, tol)
    if problem.use_memory:
        for d in range(problem.num_devices):
            used = float(problem.memory[dev == d].sum())
            if used > problem.capacity[d] * (1 + 1e-12):
                msg = (
                    f"device {problem.devices[d]!r} holds {used:.0f} bytes, over its capacity "
                    f"{problem.capacity[d]:.0f}"
                )
                raise PlanError(msg)
    ms = float(fi.max())
    if abs(plan.makespan / q - ms) > tol:
        msg = f"plan makespan {plan.makespan!r} is not the last finish time {ms * q!r}"
        raise PlanError(msg)
    if plan.lower_bound > plan.makespan * (1 + 1e-9) + tol * q:
        msg = f"plan lower bound {plan.lower_bound!r} exceeds its makespan {plan.makespan!r}"
        raise PlanError(msg)


def _transfers_by_edge(plan: Plan, problem: Problem) -> dict[int, tuple[float, float]]:
    edge_id = {
        (problem.names[int(u)], problem.names[int(v)]): k
        for k, (u, v) in enumerate(zip(problem.edge_src, problem.edge_dst, strict=True))
    }
    out: dict[int, tuple[float, float]] = {}
    for t in plan.transfers:
        k = edge_id.get((t.src, t.dst))
        if k is None:
            msg = f"plan has a transfer {t.src!r} -> {t.dst!r} for an edge the graph does not have"
            raise PlanError(msg)
        if t.src_device != plan.assignment[t.src] or t.dst_device != plan.assignment[t.dst]:
            msg = (
                f"transfer {t.src!r} -> {t.dst!r} goes {t.src_device!r} -> {t.dst_device!r} "
                f"but the "
                f"ops sit on {plan.assignment[t.src]!r} and {plan.assignment[t.dst]!r}"
            )
            raise PlanError(msg)
        out[k] = (t.start / problem.quantum, t.finish / problem.quantum)
    return out


def _check_links(
    plan: Plan,
    problem: Problem,
    transfer_of: dict[int, tuple[float, float]],
    dev: np.ndarray,
    tol: float,
) -> None:
    by_link: dict[int, list[tuple[float, float, int]]] = {}
    for k in range(problem.num_edges):
        u, v = int(problem.edge_src[k]), int(problem.edge_dst[k])
        if dev[u] == dev[v] or problem.comm[k, dev[u], dev[v]] == 0:
            continue
        if k not in transfer_of:
            msg = f"plan lacks the transfer for edge {problem.names[u]!r} -> {problem.names[v]!r}"
            raise PlanError(msg)
        t0, t1 = transfer_of[k]
        for link in problem.route_links.get((int(dev[u]), int(dev[v])), ()):
            by_link.setdefault(link, []).append((t0, t1, k))
    for link, items in by_link.items():
        items.sort()
        for (a0, a1, ka), (b0, b1, kb) in itertools.pairwise(items):
            if b0 < a1 - tol:
                ea = f"{problem.names[problem.edge_src[ka]]}->{problem.names[problem.edge_dst[ka]]}"
                eb = f"{problem.names[problem.edge_src[kb]]}->{problem.names[problem.edge_dst[kb]]}"
                msg = (
                    f"transfers {ea} [{_fmt(a0)}, {_fmt(a1)}) and {eb} [{_fmt(b0)}, {_fmt(b1)}) "
                    f"overlap on link {problem.link_names[link]!r}"
                )
                raise PlanError(msg)


def _fmt(x: float) -> str:
    r = round(x)
    return str(int(r)) if abs(x - r) < 1e-6 else f"{x:.6g}"
