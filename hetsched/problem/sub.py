"""Sub-problems: a set of ops (a segment, a block, a window) as a Problem of its own.

Examples
--------
>>> import numpy as np
>>> from hetsched.problem import Problem
>>> p = Problem.from_arrays(names=["a", "b", "c"], devices=["x", "y"],
...     exec_time=np.array([[2.0, 3.0], [4.0, 4.0], [4.0, 4.0]]),
...     edges=[(0, 1, 1.0), (1, 2, 1.0)], quantum=1.0)
>>> sub = subproblem(p, np.array([1, 2]))
>>> sub.names, sub.num_edges, sub.dur.tolist()
(('b', 'c'), 1, [[4, 4], [4, 4]])
"""

from __future__ import annotations

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
    """``ops`` (sorted indices) as a Problem of their own: tensors among them, no memory.

    Modes, durations and transfer times are the parent's (no re-rounding); the edges of
    the sub-problem are the parent's :func:`internal_edges`, in the same order.
    """
    ops = np.asarray(ops, dtype=np.int64)
    tensors, kept = p.tensors.subset(ops, p.n)
    return Problem(
        names=tuple(p.names[i] for i in ops.tolist()),
        devices=p.devices,
        device_kinds=p.device_kinds,
        quantum=p.quantum,
        units=p.units,
        modes=p.modes.subset(ops),
        mode_dur=np.concatenate(
            [p.mode_dur[p.modes.op_start[v] : p.modes.op_start[v + 1]] for v in ops.tolist()]
        ).astype(np.int64),
        tensors=tensors,
        tensor_comm=p.tensor_comm[kept],
        tensor_comm_floor=None if p.tensor_comm_floor is None else p.tensor_comm_floor[kept],
        route_links={},
        link_names=p.link_names,
        capacity=p.capacity,
        name=f"{p.name}/{name}",
        platform_name=p.platform_name,
    )
