"""Edges a short schedule cannot cut: the co-location bound for communication-heavy graphs.

In a schedule that ends by ``T``, an edge ``u -> v`` whose ends run on different devices
costs at least ``head_u + dur_u + c_uv + dur_v + tail_v`` (heads and tails that count
transfers, :func:`~hetsched.schedule.bounds.delays.transfer_heads_tails`; ``c_uv`` the
cheapest transfer of its tensor between two distinct devices its ends may use). Where that
exceeds ``T`` the two ends share a device. Joined over such edges, the ops form groups that
each run on one device, one after another: a group needs at least its least head, plus its
work on the one device that does it fastest, plus its least tail. If some group cannot fit
in ``T``, no schedule ends by ``T``. A larger ``T`` forces fewer edges and smaller groups, so
the least ``T`` that passes (binary search) is a lower bound; at CCR 10 on eight devices it
lifts the best other bound by about half (461 -> 679 on a 100-op random graph).

Like every bound here it works on the relaxation (each op on one device, the fastest mode
there, tensors free between devices that share a producer's mode), so it holds for every
schedule of the problem.

Examples
--------
>>> import numpy as np
>>> from hetsched.problem import Problem
>>> p = Problem.from_arrays(names=list("abc"), devices=["x", "y"],
...     exec_time=np.array([[2.0, 2.0], [2.0, 2.0], [2.0, 2.0]]),
...     edges=[(0, 1, 10.0), (1, 2, 10.0)], comm_latency=np.array([[0, 10], [10, 0]]),
...     quantum=1.0)
>>> colocation_bound(p)   # a chain whose transfers dwarf its ops: all on one device
6
"""

from __future__ import annotations

import numpy as np
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

from hetsched.problem import Problem
from hetsched.schedule.bounds.delays import cheapest_remote, transfer_heads_tails

__all__ = ["colocation_bound", "colocation_groups"]


def colocation_bound(problem: Problem) -> int:
    """The least ``T`` (integer units) whose forced groups all fit (module docstring)."""
    p = problem.relaxation()
    if p.n == 0:
        return 0
    head, tail = transfer_heads_tails(p)
    dur = p.min_dur.astype(np.int64)
    lo = int((head + dur + tail).max())
    if p.num_edges == 0 or p.num_devices < 2:
        return lo
    cost = _cut_cost(p, head, tail)
    if _fits(p, head, tail, cost, lo):
        return lo
    finite = cost[np.isfinite(cost)]
    hi = max(lo, int(finite.max()) if finite.size else lo)
    if not _fits(p, head, tail, cost, hi):  # edges no device pair can cut: their groups
        hi = int(np.where(p.allowed, p.dur, 0).sum())  # everything on one device at worst
        hi = max(hi, lo)
    while lo < hi:
        mid = (lo + hi) // 2
        if _fits(p, head, tail, cost, mid):
            hi = mid
        else:
            lo = mid + 1
    return lo


def colocation_groups(problem: Problem, horizon: int) -> np.ndarray:
    """Group id per op of :meth:`~hetsched.problem.Problem.relaxation`: ops with one id share a
    device in every schedule that ends by ``horizon`` units."""
    p = problem.relaxation()
    head, tail = transfer_heads_tails(p)
    return _groups(p, _cut_cost(p, head, tail) > horizon)


def _cut_cost(p: Problem, head: np.ndarray, tail: np.ndarray) -> np.ndarray:
    """Per edge: the least makespan of a schedule that runs its ends on different devices
    (``inf`` where no two distinct devices can run them)."""
    dur = p.min_dur.astype(np.float64)
    src, dst = p.edge_src, p.edge_dst
    return head[src] + dur[src] + cheapest_remote(p) + dur[dst] + tail[dst]


def _groups(p: Problem, forced: np.ndarray) -> np.ndarray:
    src, dst = p.edge_src[forced], p.edge_dst[forced]
    graph = coo_matrix((np.ones(src.size), (src, dst)), shape=(p.n, p.n))
    return connected_components(graph, directed=False)[1]


def _fits(p: Problem, head: np.ndarray, tail: np.ndarray, cost: np.ndarray, horizon: int) -> bool:
    """Whether every group forced at ``horizon`` fits on some device by then."""
    group = _groups(p, cost > horizon)
    k = int(group.max()) + 1
    work = np.where(p.allowed, p.dur, np.inf).astype(np.float64)
    load = np.stack(
        [np.bincount(group, weights=work[:, d], minlength=k) for d in range(p.num_devices)]
    )
    # a device that cannot run one of the group's ops: bincount sums inf, never nan
    first = np.full(k, np.inf)
    np.minimum.at(first, group, head.astype(np.float64))
    last = np.full(k, np.inf)
    np.minimum.at(last, group, tail.astype(np.float64))
    need = first + load.min(axis=0) + last
    return bool((need <= horizon).all())
