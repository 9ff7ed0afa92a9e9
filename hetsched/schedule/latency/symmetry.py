"""Interchangeable branches: identical subgraphs hanging off the same series cuts.

Attention heads split into per-head ops, experts, grouped convolutions: a model often has
``k`` copies of one subgraph between the same two ops. Any schedule stays a schedule when two
copies swap roles, so an exact solver that tells the copies apart searches ``k!`` copies of
every solution. :func:`branch_classes` finds them: remove the series cuts
(:func:`~hetsched.schedule.bounds.series_cuts`), take the connected components of what is
left, and group components with the same internal structure (durations, support, memory,
edges and transfers by position) and the same edges to the same cuts. CP-SAT then orders the
members of a class by the start of their first op (:func:`canonical_hint` permutes a warm
start to match).

Examples
--------
>>> import numpy as np
>>> from hetsched.problem import Problem
>>> # a -> (b1 -> c1), (b2 -> c2), (b3 -> c3) -> d with three identical branches
>>> edges = [(0, 1), (1, 2), (0, 3), (3, 4), (0, 5), (5, 6), (2, 7), (4, 7), (6, 7)]
>>> p = Problem.from_arrays(names=list("abcBCxyd"), devices=["x", "y"],
...     exec_time=np.array([[1.0, 1.0]] + [[2.0, 3.0], [3.0, 1.0]] * 3 + [[1.0, 1.0]]),
...     edges=[(u, v, 1.0) for u, v in edges], quantum=1.0)
>>> [[c.tolist() for c in cls] for cls in branch_classes(p)]
[[[1, 2], [3, 4], [5, 6]]]
"""

from __future__ import annotations

import hashlib

import numpy as np

from hetsched.problem import Problem
from hetsched.schedule.bounds import segment_key, series_cuts

__all__ = ["branch_classes", "canonical_hint"]


def _components(p: Problem, keep: np.ndarray) -> list[np.ndarray]:
    """Connected components (undirected) of the ops where ``keep`` is true."""
    parent = np.arange(p.n)

    def find(x: int) -> int:
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = int(parent[x])
        return x

    for u, v in zip(p.edge_src.tolist(), p.edge_dst.tolist(), strict=True):
        if keep[u] and keep[v]:
            ru, rv = find(u), find(v)
            if ru != rv:
                parent[max(ru, rv)] = min(ru, rv)
    roots = np.array([find(v) if keep[v] else -1 for v in range(p.n)])
    out = [np.flatnonzero(roots == r) for r in np.unique(roots[roots >= 0])]
    return sorted(out, key=lambda c: int(c[0]))


def _signature(p: Problem, comp: np.ndarray, cut_mask: np.ndarray) -> str:
    h = hashlib.sha256(segment_key(p, comp).encode())
    h.update(p.memory[comp].tobytes())
    ext = []
    for i, v in enumerate(comp.tolist()):
        for u, k in p.preds[v]:
            if cut_mask[u]:
                ext.append(("in", i, u, p.comm[k].tobytes()))
        for w, k in p.succs[v]:
            if cut_mask[w]:
                ext.append(("out", i, w, p.comm[k].tobytes()))
    h.update(repr(sorted(ext)).encode())
    return h.hexdigest()


def branch_classes(p: Problem) -> list[list[np.ndarray]]:
    """Classes of >= 2 interchangeable components; each component's ops in index order."""
    cut_mask = np.zeros(p.n, dtype=bool)
    cut_mask[series_cuts(p)] = True
    if not cut_mask.any():
        return []
    groups: dict[str, list[np.ndarray]] = {}
    for comp in _components(p, ~cut_mask):
        groups.setdefault(_signature(p, comp, cut_mask), []).append(comp)
    return [g for g in groups.values() if len(g) >= 2]


def canonical_hint(
    classes: list[list[np.ndarray]], assign: np.ndarray, start: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """``(assign, start)`` with the members of each class swapped into the order the
    symmetry breaking imposes (first-op starts non-decreasing): the same schedule."""
    assign, start = assign.copy(), start.copy()
    for cls in classes:
        order = sorted(range(len(cls)), key=lambda i: (int(start[cls[i][0]]), i))
        old_a = [assign[c].copy() for c in cls]
        old_s = [start[c].copy() for c in cls]
        for slot, src in enumerate(order):
            assign[cls[slot]] = old_a[src]
            start[cls[slot]] = old_s[src]
    return assign, start
