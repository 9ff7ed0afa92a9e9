"""Coarsen a Problem by grouping ops, schedule the groups, then un-coarsen and re-time.

Groups are convex sets of ops (no path leaves a group and comes back), so the quotient is a
DAG. The coarse :class:`~hetsched.problem.Problem` is aggregated from the fine arrays and
works for any problem (no graph or platform needed): a group's duration on a device is the
sum of its members' (allowed only where every member is), and a coarse edge's transfer is the
sum of the transfers of the fine edges it stands for. A coarse plan maps back by giving every
member its group's device and dispatching members in (group start, index) order through
:func:`~hetsched.schedule.latency.listsched.retime`, which always yields a valid fine schedule.

Examples
--------
>>> import numpy as np
>>> from hetsched.problem import Modes, Problem, Tensors
>>> p = Problem.from_arrays(names=list("abcd"), devices=["x", "y"],
...     exec_time=np.array([[1.0, 2.0], [1.0, 2.0], [3.0, 1.0], [1.0, 1.0]]),
...     edges=[(0, 1, 1.0), (1, 3, 1.0), (2, 3, 1.0)], comm_latency=np.ones((2, 2)), quantum=1.0)
>>> chain_groups(p).tolist()
[0, 0, 1, 2]
>>> c = coarse_problem(p, chain_groups(p))
>>> c.dur.tolist(), c.num_edges
([[2, 4], [3, 1], [1, 1]], 2)
"""

from __future__ import annotations

import numpy as np

from hetsched.problem import Modes, Problem, Tensors
from hetsched.schedule.latency.listsched import priority_order, retime

__all__ = ["chain_groups", "coarse_problem", "uncoarsen"]


def chain_groups(p: Problem, *, max_work: float | None = None) -> np.ndarray:
    """Group id per op: maximal chains ``u -> v`` (``u`` has one successor, ``v`` one
    predecessor), cut when a group's fastest-device work would exceed ``max_work``.

    Ids are numbered in topological order of the groups.
    """
    nsucc = np.bincount(p.edge_src, minlength=p.n)
    npred = np.bincount(p.edge_dst, minlength=p.n)
    cap = float("inf") if max_work is None else max_work
    group = np.arange(p.n)
    work = p.min_dur.astype(np.float64).copy()
    for k in range(p.num_edges):  # edges in increasing dst order of appearance is not needed
        u, v = int(p.edge_src[k]), int(p.edge_dst[k])
        if nsucc[u] == 1 and npred[v] == 1:
            g = group[u]
            if work[g] + p.min_dur[v] <= cap and (p.allowed[u] & p.allowed[v]).any():
                group[v] = g
                work[g] += p.min_dur[v]
    # chain heads come first in index order and members follow, so relabel by first member
    _, first = np.unique(group, return_index=True)
    relabel = np.empty(p.n, dtype=np.int64)
    relabel[np.sort(first)] = np.arange(first.size)
    return _resolve(relabel, group)


def _resolve(relabel: np.ndarray, group: np.ndarray) -> np.ndarray:
    # follow group pointers to the chain head (a head points to itself)
    root = group.copy()
    while True:
        nxt = root[root]
        if np.array_equal(nxt, root):
            break
        root = nxt
    return relabel[root]


def _topological_groups(p: Problem, groups: np.ndarray, g: int) -> np.ndarray:
    """Relabel groups in a topological order of the quotient DAG."""
    cs, cd = groups[p.edge_src], groups[p.edge_dst]
    keep = cs != cd
    pairs = np.unique(np.stack([cs[keep], cd[keep]], axis=1), axis=0)
    indeg = np.bincount(pairs[:, 1], minlength=g) if pairs.size else np.zeros(g, np.int64)
    succ: list[list[int]] = [[] for _ in range(g)]
    for a, b in pairs.tolist():
        succ[a].append(b)
    ready = sorted(np.flatnonzero(indeg == 0).tolist())
    order: list[int] = []
    import heapq

    heapq.heapify(ready)
    while ready:
        a = heapq.heappop(ready)
        order.append(a)
        for b in succ[a]:
            indeg[b] -= 1
            if indeg[b] == 0:
                heapq.heappush(ready, b)
    if len(order) != g:
        msg = "groups are not convex: the quotient graph has a cycle"
        raise ValueError(msg)
    rank = np.empty(g, dtype=np.int64)
    rank[np.asarray(order)] = np.arange(g)
    return rank[groups]


def coarse_problem(p: Problem, groups: np.ndarray) -> Problem:
    """The quotient problem of ``groups`` (one id per op, convex groups).

    ``dur_G,d = sum_{v in G} dur_v,d`` over the device views; a tensor crossing from ``G``
    to ``H`` counts once per pair, and ``comm_(G,H),a,b`` sums the tensors crossing; group
    ``G`` may run on ``d`` iff every member may. Ops keep their ids relabelled
    topologically; read the mapping back with ``coarse.meta["groups"]``.
    """
    g = int(groups.max()) + 1
    groups = _topological_groups(p, np.asarray(groups, dtype=np.int64), g)
    d = p.num_devices
    dur = np.zeros((g, d), dtype=np.int64)
    np.add.at(dur, groups, p.dur)
    allowed = np.ones((g, d), dtype=bool)
    np.logical_and.at(allowed, groups, p.allowed)
    cs, cd = groups[p.edge_src], groups[p.edge_dst]
    keep = np.flatnonzero(cs != cd)
    # one entry per (group pair, tensor): a tensor read twice in H crosses once
    trip = np.unique(np.stack([cs[keep], cd[keep], p.edge_tensor[keep]], axis=1), axis=0)
    pairs, inv = np.unique(trip[:, :2], axis=0, return_inverse=True)
    inv = inv.reshape(-1)
    comm = np.zeros((len(pairs), d, d), dtype=np.int64)
    np.add.at(comm, inv, p.tensor_comm[trip[:, 2]])
    nbytes = np.zeros(len(pairs))
    np.add.at(nbytes, inv, p.tensors.nbytes[trip[:, 2]])
    mem = np.zeros(g)
    np.add.at(mem, groups, p.memory)
    v_idx, d_idx = np.nonzero(allowed)
    modes = Modes.build(
        g,
        [
            (v, (a,), float(dur[v, a]) * p.quantum, float(mem[v]))
            for v, a in zip(v_idx, d_idx, strict=True)
        ],
    )
    return Problem(
        names=tuple(f"g{i}" for i in range(g)),
        devices=p.devices,
        device_kinds=p.device_kinds,
        quantum=p.quantum,
        units=p.units,
        modes=modes,
        mode_dur=dur[v_idx, d_idx].astype(np.int64),
        tensors=Tensors.build(
            g, [(int(a), (int(b),), float(x)) for (a, b), x in zip(pairs, nbytes, strict=True)]
        ),
        tensor_comm=comm,
        route_links=p.route_links,
        link_names=p.link_names,
        capacity=p.capacity,
        use_memory=p.use_memory,
        name=f"{p.name}/coarse",
        platform_name=p.platform_name,
        meta={"groups": groups},
    )


def uncoarsen(
    p: Problem, groups: np.ndarray, coarse_assign: np.ndarray, coarse_start: np.ndarray
) -> tuple[np.ndarray, np.ndarray, dict[tuple[int, int], int]]:
    """Fine ``(assign, start, transfer_start)``: members on their group's device, dispatched
    in (group start, op index) order and re-timed; always a valid fine schedule."""
    assign = np.asarray(coarse_assign, dtype=np.int64)[groups]
    key = np.asarray(coarse_start, dtype=np.float64)[groups] + np.arange(p.n) / (p.n + 1)
    start, xfer = retime(p, assign, priority_order(p, key))
    return assign, start, xfer
