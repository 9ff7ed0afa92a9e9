"""Sub-problems: a set of ops (a segment, a block, a window) as a Problem of its own."""

from __future__ import annotations

import dataclasses
import weakref

import numpy as np

from hetsched.problem.problem import Problem

__all__ = ["internal_edges", "subproblem"]

_EDGES_BY_SRC: weakref.WeakKeyDictionary[Problem, tuple[np.ndarray, np.ndarray]] = (
    weakref.WeakKeyDictionary()
)


def internal_edges(p: Problem, ops: np.ndarray) -> np.ndarray:
    """Ids of the edges with both ends in ``ops`` (sorted op indices), in id order.

    A contiguous range (every segment and block is one) costs O(log E + its edges), so
    bounding thousands of small segments stays linear overall.
    """
    lo, hi = int(ops[0]), int(ops[-1])
    if hi - lo + 1 == ops.size:
        if p not in _EDGES_BY_SRC:
            order = np.argsort(p.edge_src, kind="stable")
            _EDGES_BY_SRC[p] = (order, p.edge_src[order])
        order, src_sorted = _EDGES_BY_SRC[p]
        ks = order[np.searchsorted(src_sorted, lo) : np.searchsorted(src_sorted, hi, "right")]
        return np.sort(ks[p.edge_dst[ks] <= hi])
    inside = np.zeros(p.n, dtype=bool)
    inside[ops] = True
    return np.flatnonzero(inside[p.edge_src] & inside[p.edge_dst])


def subproblem(p: Problem, ops: np.ndarray, *, name: str = "sub") -> Problem:
    """``ops`` (sorted indices) as a Problem of their own: internal edges only, no memory."""
    ops = np.asarray(ops, dtype=np.int64)
    ks = internal_edges(p, ops)
    local_src = np.searchsorted(ops, p.edge_src[ks])
    local_dst = np.searchsorted(ops, p.edge_dst[ks])
    base = Problem.from_arrays(
        names=[p.names[i] for i in ops.tolist()],
        devices=list(p.devices),
        device_kinds=list(p.device_kinds),
        exec_time=p.exec_time[ops],
        edges=[
            (int(u), int(v), float(b))
            for u, v, b in zip(local_src, local_dst, p.edge_bytes[ks], strict=True)
        ],
        memory_bytes=p.memory[ops],
        capacity=p.capacity,
        use_memory=False,
        quantum=p.quantum,
        units=p.units,
        name=f"{p.name}/{name}",
        platform_name=p.platform_name,
    )
    return dataclasses.replace(
        base,
        dur=p.dur[ops],
        allowed=p.allowed[ops],
        comm=p.comm[ks],
        link_contention=False,
        route_links={},
    )
