"""Series decomposition: ops every schedule must run one after another, and the bound it gives.

An op ``c`` is a *series cut* when every other op is its ancestor or its descendant (the
residual adds and layer norms between transformer layers, the ``cat`` that joins attention
heads). No two ops on opposite sides of a cut can overlap in time: everything before ``c``
finishes before ``c`` starts, everything after starts after ``c`` ends. So the graph is a
chain of *segments* (the ops after one cut up to and including the next cut), and the
makespan is at least the sum of the segments' own lower bounds. A load bound over the whole
graph lets the attention of one layer fill the idle devices of another; the series bound does
not, which is what makes it tight on transformer graphs.

Cuts are found in one pass over the topological order (ops are indexed topologically): ``c``
is a cut iff every op before it has a successor at or before ``c`` (following successors
then ends at ``c``) and every op after it a predecessor at or after ``c``. Residual edges
may jump over a cut.

Examples
--------
>>> import numpy as np
>>> from hetsched.problem import Problem
>>> p = Problem.from_arrays(names=["a", "b", "c", "d"], devices=["x", "y"],
...     exec_time=np.array([[1.0, 9.0], [4.0, 4.0], [4.0, 4.0], [2.0, 2.0]]),
...     edges=[(0, 1, 1.0), (0, 2, 1.0), (1, 3, 1.0), (2, 3, 1.0)], quantum=1.0)
>>> series_cuts(p).tolist()
[0, 3]
>>> [s.tolist() for s in series_segments(p)]
[[0], [1, 2], [3]]
>>> series_bound(p)  # 1 + (4 | 4 on two devices) + 2
7
"""

from __future__ import annotations

import hashlib
import itertools
import math
import time

import numpy as np

from hetsched.problem import Problem
from hetsched.problem.sub import internal_edges, subproblem
from hetsched.schedule.bounds.paths import device_finish_times

__all__ = [
    "pinned_window_bounds",
    "segment_bound",
    "segment_key",
    "series_bound",
    "series_bound_within",
    "series_cuts",
    "series_segments",
]

# Segments from SEGMENT_LP_MIN_OPS up to SEGMENT_LP_MAX_OPS ops get the LP relaxation and
# the window load LP; smaller ones the critical path and total work / devices, larger ones
# the critical path and the load LP.
SEGMENT_LP_MIN_OPS = 8
SEGMENT_LP_MAX_OPS = 600
# Only this many classes of distinct segments (the ones covering the most ops) get LPs.
MAX_LP_CLASSES = 32
# Segments up to this many ops get a longest-path pass per device of the cut before them.
CPFIX_MAX_OPS = 3000
# The classes covering the most ops get the window LP once per pair of devices of the cut
# before them and their closing cut, while the LPs solved so (ops x devices x device pairs,
# summed; GLOP takes ~0.1 ms per unit here) stay within this much work (gpt large: 8,288).
PINNED_LP_MAX_WORK = 20_000
_BIG = np.iinfo(np.int64).max // 8


def series_cuts(p: Problem) -> np.ndarray:
    """Indices of the series cuts, in topological order."""
    n = p.n
    if n == 0:
        return np.zeros(0, dtype=np.int64)
    src, dst = p.edge_src.astype(np.int64), p.edge_dst.astype(np.int64)
    # first successor / last predecessor of every op (n / -1 where there is none)
    first_succ = np.full(n, n, dtype=np.int64)
    np.minimum.at(first_succ, src, dst)
    last_pred = np.full(n, -1, dtype=np.int64)
    np.maximum.at(last_pred, dst, src)
    # i is a cut iff every op before i has a successor at or before i (so following
    # successors from it ends at i) and every op after i a predecessor at or after i
    reach_before = np.concatenate([[-1], np.maximum.accumulate(first_succ)[:-1]])
    reach_after = np.concatenate([np.minimum.accumulate(last_pred[::-1])[::-1][1:], [n]])
    i = np.arange(n)
    return np.flatnonzero((reach_before <= i) & (reach_after >= i))


def series_segments(p: Problem) -> list[np.ndarray]:
    """The ops between consecutive cuts; each cut is a segment of its own."""
    cuts = series_cuts(p)
    bounds = sorted({0, p.n, *cuts.tolist(), *(cuts + 1).tolist()})
    return [np.arange(a, b) for a, b in itertools.pairwise(bounds) if b > a]


def segment_key(p: Problem, ops: np.ndarray) -> str:
    """Equal keys for op sets that are the same scheduling problem (repeated layers)."""
    ks = internal_edges(p, ops)
    h = hashlib.sha256(np.array([ops.size, ks.size, p.num_devices], dtype=np.int64).tobytes())
    h.update(np.where(p.allowed[ops], p.dur[ops], -1).tobytes())
    h.update(np.searchsorted(ops, p.edge_src[ks]).tobytes())
    h.update(np.searchsorted(ops, p.edge_dst[ks]).tobytes())
    h.update(p.comm[ks].tobytes())
    return h.hexdigest()


def segment_bound(sub: Problem, *, use_lp: bool = True) -> int:
    """Best bound of one segment: critical path, load LP and, for small segments, the LP
    relaxation and the window load LP."""
    from hetsched.schedule.bounds.load import load_bound, lp_bound
    from hetsched.schedule.bounds.paths import critical_path_bound
    from hetsched.schedule.bounds.windows import window_load_bound

    if not use_lp or sub.n < SEGMENT_LP_MIN_OPS:  # thousands of small LPs add up
        return max(critical_path_bound(sub), math.ceil(sub.min_dur.sum() / sub.num_devices))
    out = max(critical_path_bound(sub), load_bound(sub))
    if sub.n <= SEGMENT_LP_MAX_OPS:
        out = max(out, lp_bound(sub), window_load_bound(sub))
    return out


def _group_costs(
    p: Problem, cut: int | None, group: np.ndarray, use_lp: bool, pinned: bool = False
) -> np.ndarray:
    """Bounds on ``end(closing cut) - end(cut)`` by the devices of ``cut`` (rows) and of the
    closing cut, the last op of ``group`` (columns); ``cut=None`` (the ops up to the first
    cut): one row, bounds on ``end(first cut)``."""
    d_count = p.num_devices
    ops = group if cut is None else np.concatenate([[cut], group])
    sub = subproblem(p, ops)
    # the ops before the closing cut all end before it starts; and the whole of ``ops``
    # (cut included) runs from start(cut) to end(last op)
    body = segment_bound(subproblem(p, group[:-1]), use_lp=use_lp) if group.size > 1 else 0
    whole = segment_bound(sub, use_lp=use_lp)
    free = np.maximum(body + p.dur[group[-1]], whole if cut is None else 0)
    rows = [None] if cut is None else list(range(d_count))
    out = np.full((len(rows), d_count), _BIG, dtype=np.int64)
    for i, d_a in enumerate(rows):
        if d_a is not None and not p.allowed[cut, d_a]:
            continue  # the cut never runs there: the row stays _BIG
        if group.size > CPFIX_MAX_OPS:
            fin = np.zeros((sub.n, d_count), dtype=np.int64)
        else:
            fin = device_finish_times(sub, first_on=d_a)
        last = fin[-1]
        # the bound on the whole counts from start(cut)
        extra = whole - (int(p.dur[cut, d_a]) if d_a is not None else 0)
        if pinned and d_a is not None:
            extra = np.maximum(extra, pinned_window_bounds(sub, d_a) - int(p.dur[cut, d_a]))
        out[i] = np.where(sub.allowed[-1], np.maximum(np.maximum(last, free), extra), _BIG)
    return out


def pinned_window_bounds(sub: Problem, first_on: int) -> np.ndarray:
    """Window LP bound of ``sub`` (a cut, then its segment) by the device of its last op
    (``_BIG`` where that op may not run), with its first op on ``first_on``.

    Pinning both ends makes the fill and drain exact: with the layer norm on an NPU the
    CPU waits for its transfer, with the ``cat`` on the CPU the last heads end early enough
    to reach it. The free LP takes the best device for each op's head separately.
    """
    from hetsched.schedule.bounds.windows import window_load_bound

    out = np.full(sub.num_devices, _BIG, dtype=np.int64)
    for d_b in np.flatnonzero(sub.allowed[-1]).tolist():
        allowed = sub.allowed.copy()
        allowed[0] = False
        allowed[0, first_on] = True
        allowed[-1] = False
        allowed[-1, d_b] = True
        out[d_b] = window_load_bound(sub.restrict(allowed))
    return out


def _pinned_keys(
    p: Problem,
    groups: list[tuple[int | None, np.ndarray]],
    keys: list[tuple[bool, str] | None],
    by_cover: list[tuple[bool, str]],
) -> set[tuple[bool, str]]:
    """The classes that get :func:`pinned_window_bounds`: most ops covered first, while the
    LPs (ops x devices x device pairs) stay within :data:`PINNED_LP_MAX_WORK`."""
    first: dict[tuple[bool, str], tuple[int, np.ndarray]] = {}
    for (cut, group), key in zip(groups, keys, strict=True):
        if key is not None and cut is not None and key not in first:
            first[key] = (cut, group)
    out: set[tuple[bool, str]] = set()
    work = 0
    for key in by_cover[:MAX_LP_CLASSES]:
        if key not in first:
            continue
        cut, group = first[key]
        if not SEGMENT_LP_MIN_OPS <= group.size + 1 <= SEGMENT_LP_MAX_OPS:
            continue
        pairs = int(p.allowed[cut].sum()) * int(p.allowed[group[-1]].sum())
        cost = pairs * (group.size + 1) * p.num_devices
        if work + cost > PINNED_LP_MAX_WORK:
            continue  # a smaller class may still fit
        work += cost
        out.add(key)
    return out


def series_bound(p: Problem, *, use_lp: bool = True) -> int:
    """:func:`series_bound_within` with no deadline: the bound alone."""
    return series_bound_within(p, use_lp=use_lp)[0]


def series_bound_within(
    p: Problem, *, use_lp: bool = True, deadline: float | None = None
) -> tuple[int, bool]:
    """Lower bound (units) from the series decomposition; 0 when the graph has no cut; and
    whether every LP it meant to solve was solved (``use_lp=False``: none, no LP at all;
    past ``deadline``, a ``time.perf_counter()`` instant, the remaining segments get their
    LP-free costs, still a bound).

    A dynamic program over the cuts and their devices: the cost of a segment is the best of
    its own bound (critical path, load LP, LP, window LP; with and without the cut before
    it), the longest path through it from the previous cut's device (so forced transfers
    count) and, for the classes covering the most ops, the window LP with both cuts pinned
    to the devices the program is pricing (:func:`pinned_window_bounds`). Repeated segments
    are bounded once.
    """
    p = p.relaxation()  # bounds of the question asked
    cuts = series_cuts(p)
    if cuts.size == 0:
        return 0, True
    groups: list[tuple[int | None, np.ndarray]] = [(None, np.arange(int(cuts[0]) + 1))]
    groups += [(a, np.arange(a + 1, b + 1)) for a, b in itertools.pairwise(cuts.tolist())]
    keys: list[tuple[bool, str] | None] = []
    ops_per_key: dict[tuple[bool, str], int] = {}
    for cut, group in groups:
        if cut is not None and group.size == 1:
            keys.append(None)
            continue
        ops = group if cut is None else np.concatenate([[cut], group])
        class_key = (cut is None, segment_key(p, ops))
        keys.append(class_key)
        ops_per_key[class_key] = ops_per_key.get(class_key, 0) + group.size
    # LPs for the classes covering the most ops only: a graph of thousands of distinct
    # small segments would otherwise spend seconds in GLOP
    by_cover = sorted(ops_per_key, key=lambda k: -ops_per_key[k])
    lp_keys = set(by_cover[:MAX_LP_CLASSES]) if use_lp else set()
    pinned_keys = _pinned_keys(p, groups, keys, by_cover) if use_lp else set()
    memo: dict[tuple[bool, str], np.ndarray] = {}
    complete = True

    def costs(cut: int | None, group: np.ndarray, key: tuple[bool, str] | None) -> np.ndarray:
        if key is None:  # one op right after a cut: no model needed
            b = int(group[0])
            c = np.zeros((p.num_devices, p.num_devices), dtype=np.int64)
            for u, k in p.preds[b]:
                if u == cut:
                    c = np.maximum(c, p.comm[k])
            return np.where(p.allowed[b][None, :], c + p.dur[b][None, :], _BIG)
        if key not in memo:
            nonlocal complete
            late = deadline is not None and time.perf_counter() > deadline
            if late and (key in lp_keys or key in pinned_keys):
                complete = False
            memo[key] = _group_costs(
                p, cut, group, use_lp=key in lp_keys and not late,
                pinned=key in pinned_keys and not late,
            )  # fmt: skip
        return memo[key]

    first = costs(None, groups[0][1], keys[0])[0]
    best = np.where(p.allowed[cuts[0]], first, _BIG)
    for (cut, group), group_key in zip(groups[1:], keys[1:], strict=True):
        best = np.minimum((best[:, None] + costs(cut, group, group_key)).min(axis=0), _BIG)
    last = int(cuts[-1])
    if last < p.n - 1:
        rest = np.arange(last + 1, p.n)
        sub = subproblem(p, np.concatenate([[last], rest]))
        late = deadline is not None and time.perf_counter() > deadline
        complete = complete and not (late and use_lp)
        free = segment_bound(subproblem(p, rest), use_lp=use_lp and not late)
        ends = np.full(p.num_devices, free, dtype=np.int64)
        if rest.size <= CPFIX_MAX_OPS:
            for d_a in range(p.num_devices):
                if p.allowed[last, d_a]:
                    fin = device_finish_times(sub, first_on=d_a)[1:]
                    ends[d_a] = max(free, int(fin.min(axis=1).max()))
        best = best + ends
    return int(best.min()), complete
