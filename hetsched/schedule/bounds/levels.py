"""Level-by-level (vectorised) longest paths: op depths, and heads and tails for large graphs.

Every DP here runs level by level (all ops at the same depth at once, NumPy over edges), so
a 10k-op problem costs a few hundred NumPy calls instead of a Python loop over edges.

Examples
--------
>>> import numpy as np
>>> from hetsched.problem import Problem
>>> p = Problem.from_arrays(names=["a", "b", "c"], devices=["x", "y"],
...     exec_time=np.array([[2.0, 3.0], [4.0, 4.0], [4.0, 4.0]]),
...     edges=[(0, 1, 1.0), (0, 2, 1.0)], quantum=1.0)
>>> levels(p).tolist()
[0, 1, 1]
"""

from __future__ import annotations

import numpy as np

from hetsched.problem import Problem

__all__ = ["heads_and_tails_fast", "levels"]

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
    p = p.relaxation()  # bounds of the question asked
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
