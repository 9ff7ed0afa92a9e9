"""Heads and tails that count transfers: the bound for communication-heavy graphs.

The critical path and load bounds let every op sit where its inputs are for free, so on a
graph whose transfers cost ten times its ops (CCR 10) they fall far below any schedule. Here
each op ``v`` has a *head* (no schedule starts it earlier) and a *tail* (no schedule ends
less than this after it finishes), computed in topological order, and each predecessor
``u`` of ``v`` is either on ``v``'s device or not:

* elsewhere: ``v`` waits for ``u``'s output, at least ``head_u + dur_u + c_uv`` (``c_uv``:
  the cheapest transfer of its tensors between two distinct devices the ops may use);
* on ``v``'s device: the predecessors there run one after another before ``v``, at least
  ``min head + sum of durations`` of them.

Whatever set ``S`` of predecessors shares ``v``'s device, ``v`` starts after ``max(remote
arrivals outside S, co-located work in S)``; the least of that over the sets (the best ones
take the latest arrivals: a prefix of them sorted) is ``head_v``. Tails mirror it with the
successors. The bound is the largest ``head + dur + tail``. Durations are each op's fastest,
transfers the cheapest between distinct devices (the relaxation's; devices that share a
mode move tensors for free), so it holds for every schedule; an op that cannot share a
device with its neighbour (no common device) always pays the transfer.

Examples
--------
>>> import numpy as np
>>> from hetsched.problem import Problem
>>> p = Problem.from_arrays(names=list("abc"), devices=["x", "y"],
...     exec_time=np.array([[1.0, 1.0], [1.0, 1.0], [1.0, 1.0]]),
...     edges=[(0, 2, 10.0), (1, 2, 10.0)], comm_latency=np.array([[0, 10], [10, 0]]),
...     quantum=1.0)
>>> delay_bound(p)   # a and b on c's device one after the other: 1 + 1 + 1
3
>>> from hetsched.schedule.bounds import critical_path_bound
>>> critical_path_bound(p)
2
"""

from __future__ import annotations

import weakref

import numpy as np

from hetsched.problem import Problem

__all__ = [
    "ANCESTOR_MAX_OPS",
    "DEVICE_NEVER",
    "ancestor_matrix",
    "cheapest_remote",
    "delay_bound",
    "delay_heads_tails",
    "device_delay_heads_tails",
    "transfer_heads_tails",
]


def delay_heads_tails(problem: Problem) -> tuple[np.ndarray, np.ndarray]:
    """``(head, tail)`` per op, in integer units (see the module docstring)."""
    p = problem.relaxation()  # bounds of the question asked
    n = p.n
    dur = p.min_dur.astype(np.int64)
    allowed = p.allowed
    remote = cheapest_remote(p)
    head = np.zeros(n, dtype=np.int64)
    for v in range(n):
        items = []
        for u, c, must in _neighbours(p.preds[v], remote, allowed, v):
            h, d = int(head[u]), int(dur[u])
            items.append((h + d + c if c is not None else _NEVER, h, d, must))
        head[v] = _least(items)
    tail = np.zeros(n, dtype=np.int64)
    for v in range(n - 1, -1, -1):
        items = []
        for w, c, must in _neighbours(p.succs[v], remote, allowed, v):
            t, d = int(tail[w]), int(dur[w])
            items.append((c + d + t if c is not None else _NEVER, t, d, must))
        tail[v] = _least(items)
    return head, tail


def delay_bound(problem: Problem) -> int:
    """The largest ``head + duration + tail`` (see the module docstring), with heads and
    tails over all ancestors and descendants up to :data:`ANCESTOR_MAX_OPS` ops."""
    p = problem.relaxation()
    if p.n == 0:
        return 0
    head, tail = transfer_heads_tails(p)
    return int((head + p.min_dur.astype(np.int64) + tail).max())


def transfer_heads_tails(problem: Problem) -> tuple[np.ndarray, np.ndarray]:
    """The best ``(head, tail)`` per op of the relaxation: over neighbours, and over all
    ancestors and descendants up to :data:`ANCESTOR_MAX_OPS` ops (once per problem)."""
    p = problem.relaxation()
    if p not in _HEADS_TAILS:
        head, tail = delay_heads_tails(p)
        if p.n <= ANCESTOR_MAX_OPS and p.num_devices > 1:
            head, tail = _ancestor_heads_tails(p, head, tail)
        head.setflags(write=False)
        tail.setflags(write=False)
        _HEADS_TAILS[p] = (head, tail)
    return _HEADS_TAILS[p]


# where an op may not run: far above any schedule, and still summable without overflow
DEVICE_NEVER = np.iinfo(np.int64).max // 16


def device_delay_heads_tails(problem: Problem) -> tuple[np.ndarray, np.ndarray]:
    """``(head, tail)``, shape ``(n, D)``: the same rule per device of the op. With ``v`` on
    ``d``, a predecessor ``u`` on ``d`` too runs before it there (from its own head on
    ``d``, for its duration on ``d``); elsewhere, on ``e``, its output arrives no earlier
    than ``head[u, e] + dur[u, e] + transfer e -> d``, the least over ``e``. So a slow
    device, or one far from where the inputs can be, starts late. :data:`DEVICE_NEVER`
    where ``v`` may not run on ``d``; tails mirror it over successors. Once per problem.

    >>> import numpy as np
    >>> from hetsched.problem import Problem
    >>> p = Problem.from_arrays(names=list("ab"), devices=["x", "y"],
    ...     exec_time=np.array([[1.0, 1.0], [1.0, 3.0]]), edges=[(0, 1, 10.0)],
    ...     comm_latency=np.array([[0, 10], [10, 0]]), quantum=1.0)
    >>> head, tail = device_delay_heads_tails(p)
    >>> head[1].tolist(), tail[0].tolist()   # b on y: a on y first (1), or on x + 10
    ([1, 1], [1, 3])
    """
    p = problem.relaxation()
    if p not in _DEVICE_HEADS_TAILS:
        head = _device_heads(p, p.preds, forward=True)
        tail = _device_heads(p, p.succs, forward=False)
        head.setflags(write=False)
        tail.setflags(write=False)
        _DEVICE_HEADS_TAILS[p] = (head, tail)
    return _DEVICE_HEADS_TAILS[p]


def _device_heads(
    p: Problem, neighbours: tuple[tuple[tuple[int, int], ...], ...], *, forward: bool
) -> np.ndarray:
    """Heads (``forward``: over predecessors) or tails per ``(op, device)``."""
    n, num = p.n, p.num_devices
    dur = np.where(p.allowed, p.dur, np.inf)
    out = np.full((n, num), np.inf)
    off = ~np.eye(num, dtype=bool)
    for v in range(n) if forward else range(n - 1, -1, -1):
        dearest: dict[int, np.ndarray] = {}  # per neighbour, its dearest tensor [from, to]
        for w, k in neighbours[v]:
            c = p.comm[k] if forward else p.comm[k].T  # [neighbour's device, v's device]
            dearest[w] = np.maximum(dearest[w], c) if w in dearest else c
        items: dict[int, list[tuple[int, int, int, bool]]] = {d: [] for d in p.allowed_devices[v]}
        for w, c in dearest.items():
            done = out[w] + dur[w]  # the neighbour's head plus duration per device
            remote = np.where(off, done[:, None] + c, np.inf).min(axis=0)
            for d, rows in items.items():
                here = bool(p.allowed[w, d])
                a = int(remote[d]) if np.isfinite(remote[d]) else _NEVER
                rows.append(
                    (a, int(out[w, d]) if here else 0, int(dur[w, d]) if here else 0, not here)
                )
        for d, rows in items.items():
            out[v, d] = _least(rows)
    return np.minimum(out, DEVICE_NEVER).astype(np.int64)


_DEVICE_HEADS_TAILS: weakref.WeakKeyDictionary[Problem, tuple[np.ndarray, np.ndarray]] = (
    weakref.WeakKeyDictionary()
)

# two bounds read them (delays, co-location): a Problem is immutable, compute them once
_HEADS_TAILS: weakref.WeakKeyDictionary[Problem, tuple[np.ndarray, np.ndarray]] = (
    weakref.WeakKeyDictionary()
)


# Above this many ops the ancestor sets (n x n booleans) cost too much memory and time.
ANCESTOR_MAX_OPS = 1000


def _ancestor_heads_tails(
    p: Problem, head: np.ndarray, tail: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Heads and tails over every ancestor (descendant), not only the neighbours: an
    ancestor ``u`` on ``v``'s device runs before it there; elsewhere, some edge on every path
    from ``u`` to ``v`` crosses devices, so ``v`` waits at least ``head_u + dur_u + c``,
    ``c`` the cheapest transfer of any edge into ``v`` or its ancestors, and the ancestors
    elsewhere share the other devices, so the last of them ends no earlier than their work
    over those devices. Same least-over-co-located-sets rule as for neighbours."""
    n = p.n
    dur = p.min_dur.astype(np.int64)
    remote = cheapest_remote(p)
    cheap = np.where(np.isfinite(remote), remote, np.inf)
    anc = ancestor_matrix(p)
    into = np.full(n, np.inf)  # cheapest transfer of an edge into v or an ancestor of v
    for k in np.argsort(p.edge_dst, kind="stable").tolist():
        u, v = int(p.edge_src[k]), int(p.edge_dst[k])
        into[v] = min(into[v], into[u], cheap[k])
    others = p.num_devices - 1
    head = head.copy()
    for v in range(n):
        ids = np.flatnonzero(anc[v])
        if ids.size and np.isfinite(into[v]):
            c = int(into[v])
            value = _least_sorted(head[ids] + dur[ids] + c, dur[ids], c, others)
            head[v] = max(head[v], value)
    desc = anc.T
    out = np.full(n, np.inf)  # cheapest transfer of an edge out of v or a descendant
    for k in np.argsort(-p.edge_src, kind="stable").tolist():
        u, v = int(p.edge_src[k]), int(p.edge_dst[k])
        out[u] = min(out[u], out[v], cheap[k])
    tail = tail.copy()
    for v in range(n - 1, -1, -1):
        ids = np.flatnonzero(desc[v])
        if ids.size and np.isfinite(out[v]):
            c = int(out[v])
            value = _least_sorted(c + dur[ids] + tail[ids], dur[ids], c, others)
            tail[v] = max(tail[v], value)
    return head, tail


def ancestor_matrix(p: Problem) -> np.ndarray:
    """``anc[v, u]``: ``u`` is an ancestor of ``v`` (``n x n`` booleans; ops are indexed in
    topological order, so edges taken by destination see each source's row complete)."""
    anc = np.zeros((p.n, p.n), dtype=bool)
    for k in np.argsort(p.edge_dst, kind="stable").tolist():
        u, v = int(p.edge_src[k]), int(p.edge_dst[k])
        anc[v] |= anc[u]
        anc[v, u] = True
    return anc


def _least_sorted(arrival: np.ndarray, work: np.ndarray, transfer: int, others: int) -> int:
    """A lower bound of ``min over sets S kept on the op's device of max(latest arrival
    outside S, work of S, the work outside S spread over the ``others`` devices plus a
    ``transfer``)``. Whatever ``S`` is, it holds the ``j`` latest arrivals for the ``j`` with
    the ``(j+1)``-th outside, so its work ``W`` is at least theirs; over every ``W`` from
    there to all of it, ``max(W, (all - W) / others + transfer)`` is least where the two
    meet (or with everything kept, ``all``)."""
    order = np.argsort(-arrival, kind="stable")
    a = arrival[order]
    w = np.concatenate([[0], np.cumsum(work[order])]).astype(np.float64)
    total = float(w[-1])
    nxt = np.concatenate([a, [0]]).astype(np.float64)
    k = max(others, 1)
    meet = (total + k * transfer) / (k + 1)  # W = (total - W) / k + transfer
    kept = np.maximum(w, meet)
    spread = np.maximum(kept, (total - kept) / k + transfer)
    best_w = np.minimum(spread, total)
    return int(np.ceil(np.min(np.maximum(nxt, best_w)) - 1e-9))


def cheapest_remote(p: Problem) -> np.ndarray:
    """Per edge: the cheapest transfer between two distinct devices its ends may use
    (``inf`` where they have no such pair)."""
    if p.num_edges == 0:
        return np.zeros(0)
    allowed = p.allowed
    pairs = allowed[p.edge_src][:, :, None] & allowed[p.edge_dst][:, None, :]
    pairs &= ~np.eye(p.num_devices, dtype=bool)
    return np.where(pairs, p.comm, np.inf).min(axis=(1, 2)).astype(np.float64)


def _neighbours(
    edges: tuple[tuple[int, int], ...], remote: np.ndarray, allowed: np.ndarray, v: int
) -> list[tuple[int, int | None, bool]]:
    """``(neighbour, its transfer when remote or None when it cannot be, whether it must
    be remote)`` per neighbour (several tensors to one neighbour: the dearest transfer)."""
    worst: dict[int, float] = {}
    for w, k in edges:
        worst[w] = max(worst.get(w, 0.0), float(remote[k]))
    out: list[tuple[int, int | None, bool]] = []
    for w, c in worst.items():
        must = not bool((allowed[w] & allowed[v]).any())
        out.append((w, int(c) if np.isfinite(c) else None, must))
    return out


_NEVER = np.iinfo(np.int64).max // 4  # the arrival of a neighbour that cannot be remote


def _least(items: list[tuple[int, int, int, bool]]) -> int:
    """``min over co-located sets S of max(remote arrivals outside S, co-located work in
    S)``, each item ``(arrival when remote, time it may start from, duration, must be
    remote)``; never below any neighbour's arrival or co-located ``start + duration``,
    whichever is less (where it runs is open). The best sets keep
    the latest arrivals (a prefix of them sorted): keeping more only adds work."""
    if not items:
        return 0
    floor = max(min(a, start + dur) for a, start, dur, _ in items)
    forced = max((a for a, _, _, must in items if must), default=0)
    free = sorted(((a, s, d) for a, s, d, must in items if not must), reverse=True)
    best: int | None = None
    lo: int | None = None
    work = 0
    for j in range(len(free) + 1):
        outside = free[j][0] if j < len(free) else 0
        inside = (lo + work) if lo is not None else 0
        value = max(outside, inside, forced)
        best = value if best is None else min(best, value)
        if j < len(free):
            _, s, d = free[j]
            lo = s if lo is None else min(lo, s)
            work += d
    assert best is not None
    return max(best, floor)
