"""Vectorised building blocks for large graphs: levels, heads/tails, load bound, first plan.

Every DP here runs level by level (all ops at the same depth at once, NumPy over edges), so
a 10k-op problem costs a few hundred NumPy calls instead of a Python loop over edges.

* :func:`levels` - depth of every op (longest path in edges from a source).
* :func:`heads_and_tails_fast` - equal to :func:`~hetsched.schedule.bounds.heads_and_tails`.
* :func:`quantum_inputs_fast` - the critical path and hop count that
  :func:`~hetsched.problem.choose_quantum`
  computes with a loop.
* :func:`load_bound_dual` - the load LP's bound from its dual, valid for any multipliers.
* :func:`eft_schedule` / :func:`first_plan` - a fast earliest-finish-time list schedule
  (no insertion), the first plan on graphs where HEFT takes seconds.

Examples
--------
>>> import numpy as np
>>> from hetsched.problem import Problem, choose_quantum
>>> p = Problem.from_arrays(names=["a", "b", "c"], devices=["x", "y"],
...     exec_time=np.array([[2.0, 3.0], [4.0, 4.0], [4.0, 4.0]]),
...     edges=[(0, 1, 1.0), (0, 2, 1.0)], quantum=1.0)
>>> levels(p).tolist()
[0, 1, 1]
>>> load_bound_dual(p)
5
"""

from __future__ import annotations

import math

import numpy as np

from hetsched.plan import Plan, plan_from_schedule
from hetsched.problem import Problem, choose_quantum
from hetsched.schedule.listsched import priority_order, retime

__all__ = [
    "choose_quantum_fast",
    "eft_schedule",
    "first_plan",
    "fits_memory",
    "heads_and_tails_fast",
    "levels",
    "load_bound_dual",
    "load_dual",
    "quantum_inputs_fast",
]

_BIG = np.iinfo(np.int64).max // 8


def levels(p: Problem) -> np.ndarray:
    """Depth of each op: 0 for sources, ``1 + max(depth of preds)`` otherwise."""
    lev = np.zeros(p.n, dtype=np.int64)
    src, dst = p.edge_src, p.edge_dst
    order = np.argsort(dst, kind="stable")
    for k in order.tolist():  # preds of v have smaller index, so they are final already
        u, v = src[k], dst[k]
        if lev[u] + 1 > lev[v]:
            lev[v] = lev[u] + 1
    return lev


def _edges_by_level(p: Problem, key: np.ndarray) -> list[np.ndarray]:
    """Edge ids grouped by ``key`` (a level per edge), in increasing key order."""
    if p.num_edges == 0:
        return []
    order = np.argsort(key, kind="stable")
    bounds = np.flatnonzero(np.diff(key[order])) + 1
    return np.split(order, bounds)


def heads_and_tails_fast(p: Problem) -> tuple[np.ndarray, np.ndarray]:
    """Vectorised :func:`~hetsched.schedule.bounds.heads_and_tails` (same results)."""
    lev = levels(p)
    dur = np.where(p.allowed, p.dur, _BIG).astype(np.int64)
    fin = dur.copy()
    ready = np.zeros((p.n, p.num_devices), dtype=np.int64)
    for ks in _edges_by_level(p, lev[p.edge_dst]):
        # arrival of edge k on device b: min_a fin[u, a] + comm[k, a, b]
        arr = (fin[p.edge_src[ks]][:, :, None] + p.comm[ks]).min(axis=1)
        vs = p.edge_dst[ks]
        np.maximum.at(ready, vs, arr)
        uniq = np.unique(vs)
        fin[uniq] = np.where(p.allowed[uniq], ready[uniq] + dur[uniq], _BIG)
    # earliest start over the devices the op may use (fin - dur is 0 on the others)
    head = np.maximum(0, np.where(p.allowed, fin - dur, _BIG).min(axis=1))
    # Tails: by reverse "height" (longest path to a sink), sinks first.
    height = np.zeros(p.n, dtype=np.int64)
    for k in np.argsort(-p.edge_src, kind="stable").tolist():
        u, v = p.edge_src[k], p.edge_dst[k]
        if height[v] + 1 > height[u]:
            height[u] = height[v] + 1
    tail_d = dur.copy()
    after = np.zeros((p.n, p.num_devices), dtype=np.int64)
    for ks in _edges_by_level(p, height[p.edge_src]):
        nxt = (p.comm[ks] + tail_d[p.edge_dst[ks]][:, None, :]).min(axis=2)
        us = p.edge_src[ks]
        np.maximum.at(after, us, nxt)
        uniq = np.unique(us)
        tail_d[uniq] = np.where(p.allowed[uniq], dur[uniq] + after[uniq], _BIG)
    return head.astype(np.int64), tail_d.min(axis=1)


def quantum_inputs_fast(
    exec_time: np.ndarray, src: np.ndarray, dst: np.ndarray
) -> tuple[float, float]:
    """``(critical path length, most ops on a path)`` as in ``choose_quantum``, vectorised.

    >>> import numpy as np
    >>> quantum_inputs_fast(np.array([[1.0], [2.0], [4.0]]), np.array([0, 1]), np.array([1, 2]))
    (7.0, 3.0)
    """
    n = exec_time.shape[0]
    best = np.where(np.isfinite(exec_time), exec_time, np.inf).min(axis=1)
    length = best.copy()
    hops = np.ones(n)
    lev = np.zeros(n, dtype=np.int64)
    for k in np.argsort(dst, kind="stable").tolist():
        if lev[src[k]] + 1 > lev[dst[k]]:
            lev[dst[k]] = lev[src[k]] + 1
    if src.size:
        order = np.argsort(lev[dst], kind="stable")
        for ks in np.split(order, np.flatnonzero(np.diff(lev[dst][order])) + 1):
            u, v = src[ks], dst[ks]
            np.maximum.at(length, v, length[u] + best[v])
            np.maximum.at(hops, v, hops[u] + 1)
    return float(length.max()), float(hops.max())


def choose_quantum_fast(
    exec_time: np.ndarray, comm_real: np.ndarray, src: np.ndarray, dst: np.ndarray
) -> float:
    """Drop-in for :func:`~hetsched.problem.choose_quantum` using :func:`quantum_inputs_fast`.

    >>> import numpy as np
    >>> choose_quantum_fast(np.array([[1.5], [2.0]]), np.zeros((1, 1, 1)), np.array([0]),
    ...                     np.array([1]))
    0.001
    """
    return choose_quantum(exec_time, comm_real, src, dst, path_stats=quantum_inputs_fast)


def load_bound_dual(p: Problem, *, iterations: int = 400) -> int:
    """See :func:`load_dual`; the bound alone."""
    return load_dual(p, iterations=iterations)[0]


def load_dual(p: Problem, *, iterations: int = 400) -> tuple[int, np.ndarray]:
    """Load LP bound via its dual: ``max_{lambda in simplex} sum_v min_d lambda_d dur[v, d]``.

    Every ``lambda`` in the simplex gives a valid bound (weak duality), so the multipliers
    are improved by a projected subgradient ascent and the best value is returned, rounded
    up. Equal to :func:`~hetsched.schedule.bounds.load_bound` up to the ascent's accuracy.
    """
    d = p.num_devices
    if d == 1:
        return int(p.dur[:, 0].sum()), np.ones(1)
    w = np.where(p.allowed, p.dur, np.inf).astype(np.float64)
    lam = 1.0 / np.where(np.isfinite(w), w, 0.0).sum(axis=0).clip(min=1e-9)
    lam /= lam.sum()
    best = 0.0
    best_lam = lam
    step = 0.5
    for _ in range(iterations):
        val = lam[None, :] * w
        arg = val.argmin(axis=1)
        g_val = float(val[np.arange(p.n), arg].sum())
        if g_val > best:
            best, best_lam = g_val, lam
        load = np.bincount(arg, weights=w[np.arange(p.n), arg], minlength=d)
        grad = load / max(float(np.abs(load).max()), 1e-12)
        lam = lam * np.exp(step * (grad - grad @ lam))  # exponentiated gradient on the simplex
        lam /= lam.sum()
        step *= 0.99
    return math.ceil(best - 1e-6 * max(1.0, best)), best_lam * d


def eft_schedule(
    p: Problem, order: list[int], penalty: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Earliest-finish-time list schedule without insertion; ``(assign, start)``.

    Each op goes to the device minimising ``finish + penalty[v, d]`` (default 0); with
    ``p.use_memory``, a device whose capacity the op would overflow only when all do.
    """
    assign = np.zeros(p.n, dtype=np.int64)
    start = np.zeros(p.n, dtype=np.int64)
    fin = np.zeros(p.n, dtype=np.int64)
    dev_free = np.zeros(p.num_devices, dtype=np.int64)
    used = np.zeros(p.num_devices, dtype=np.float64)
    dur = np.where(p.allowed, p.dur, _BIG)
    preds = p.preds
    for v in order:
        pv = preds[v]
        if pv:
            us = np.fromiter((u for u, _ in pv), np.int64, len(pv))
            ks = np.fromiter((k for _, k in pv), np.int64, len(pv))
            ready = (fin[us][:, None] + p.comm[ks, assign[us], :]).max(axis=0)
            s = np.maximum(ready, dev_free)
        else:
            s = dev_free
        f = s + dur[v]
        score = f if penalty is None else f + penalty[v]
        if p.use_memory:
            score = np.where(used + p.memory[v] > p.capacity, score + 1e18, score)
        d = int(score.argmin())
        assign[v], start[v], fin[v] = d, s[d], f[d]
        dev_free[d] = f[d]
        used[d] += p.memory[v]
    return assign, start


def fits_memory(p: Problem, assign: np.ndarray) -> bool:
    """Whether the ops placed on each device fit its capacity (always, without memory)."""
    if not p.use_memory:
        return True
    used = np.bincount(assign, weights=p.memory, minlength=p.num_devices)
    return bool((used <= p.capacity * (1 + 1e-12)).all())


def first_plan(
    p: Problem,
    *,
    lower_bound: int = 0,
    alphas: tuple[float, ...] = (0.0, 2.0, 8.0),
    gammas: tuple[float, ...] = (3.0, math.inf),
) -> Plan:
    """Best of a few EFT list schedules by upward rank, re-timed; well under 5 s at 10k ops.

    The rank is the optimistic tail (fastest device, cheapest transfer). Variants steer the
    device choice with the load LP's dual multipliers ``lambda`` (penalty ``alpha *``
    reduced cost ``lambda_d dur[v,d] - min_e lambda_e dur[v,e]``) and forbid devices more
    than ``gamma`` times slower than an op's fastest, so greedy finish times do not pile
    work onto slow devices. ``stats["variant"]`` names the winner.
    """
    _, tail = heads_and_tails_fast(p)
    order = priority_order(p, -tail.astype(np.float64))
    _, lam = load_dual(p, iterations=100)
    w = np.where(p.allowed, p.dur, np.inf) * lam[None, :]
    red = np.where(np.isfinite(w), w - w.min(axis=1, keepdims=True), 0.0)
    ratio = np.where(p.allowed, p.dur, np.inf) / np.maximum(p.min_dur, 1)[:, None]
    best: tuple[int, np.ndarray, np.ndarray, dict[int, int], str] | None = None
    for gamma in gammas:
        forbid = np.where(ratio > gamma, 1e15, 0.0)
        for alpha in alphas:
            assign, start = eft_schedule(p, order, alpha * red + forbid)
            start, xfer = retime(p, assign, priority_order(p, start))
            ms = int((start + p.dur[np.arange(p.n), assign]).max())
            if not fits_memory(p, assign):
                ms += _BIG  # over capacity: only if no variant fits
            if best is None or ms < best[0]:
                best = (ms, assign, start, xfer, f"alpha={alpha:g},gamma={gamma:g}")
    assert best is not None
    _, assign, start, xfer, variant = best
    return plan_from_schedule(
        p,
        assign=assign,
        start=start,
        solver="eft",
        status="heuristic",
        lower_bound=lower_bound,
        transfer_start=xfer,
        stats={"variant": variant},
    )
