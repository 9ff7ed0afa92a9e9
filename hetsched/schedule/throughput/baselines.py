"""Pipeline-partition baselines: the splits people make by hand or with simple tools.

* :func:`dp_partition` - PipeDream-style dynamic program over the topological order:
  contiguous segments, one per device, the device order searched over subsets. A boundary
  charges the tensors crossing it to the link between the two adjacent segments (PipeDream's
  model: skip connections are forwarded stage by stage).
* :func:`equal_split` - equal op count (or equal FLOPs) per device, devices in platform
  order, as ``torch.distributed.pipelining`` users split by hand; an op the chunk's device
  cannot run falls back to the previous op's device (or its fastest one).
* :func:`capability_greedy` - each op on the preferred (fastest overall) device that supports
  and holds it, fragments smaller than ``min_block_size`` moved to the fallback device
  (torch.fx ``CapabilityBasedPartitioner`` / Torch-TensorRT ``min_block_size``), then
  fragments in a device cycle moved to the fallback until the stage graph is acyclic.

Every baseline returns an assignment (device index per op); :func:`run_baselines`
evaluates them with :func:`~hetsched.schedule.throughput.pipeline_cost`.

Examples
--------
>>> import numpy as np
>>> from hetsched.problem import Problem
>>> p = Problem.from_arrays(names=list("abcd"), devices=["x", "y"],
...     exec_time=np.array([[2.0, 2.0], [2.0, 2.0], [2.0, 2.0], [2.0, 2.0]]),
...     edges=[(0, 1, 1.0), (1, 2, 1.0), (2, 3, 1.0)], quantum=1.0)
>>> dp_partition(p).tolist()
[1, 1, 0, 0]
>>> [(b.name, b.cost.period) for b in run_baselines(p)]
[('dp', 4), ('equal-ops', 4), ('equal-flops', 4), ('capability', 8)]
"""

from __future__ import annotations

import itertools
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from hetsched.errors import UsageError
from hetsched.plan.memory import MemoryTracker, within
from hetsched.problem import Problem
from hetsched.schedule.throughput.pipecost import PipelineCost, channels, pipeline_cost

if TYPE_CHECKING:
    from hetsched.graph.opgraph import OpGraph

__all__ = [
    "BASELINES",
    "Baseline",
    "capability_greedy",
    "dp_partition",
    "equal_split",
    "run_baselines",
]

# The baselines :func:`run_baselines` runs, in its order.
BASELINES = ("dp", "equal-ops", "equal-flops", "capability")

_DP_MAX_OPS = 3000


@dataclass(frozen=True, eq=False)
class Baseline:
    """One baseline's assignment, its evaluated cost and the seconds it took."""

    name: str
    assign: np.ndarray
    cost: PipelineCost
    seconds: float


def _segment_matrix(p: Problem, pre: dict[str, np.ndarray], d: int, prev: int | None) -> np.ndarray:
    """``M[i, j]``: bottleneck of segment ``[i, j)`` on ``d`` after a segment on ``prev``."""
    w, bad, mem = pre["w"][:, d], pre["bad"][:, d], pre["mem"][:, d]
    m = w[None, :] - w[:, None]
    if prev is not None:
        m = np.maximum(m, pre["cut"][:, prev, d][:, None])
    invalid = np.tri(len(w), dtype=bool) | ((bad[None, :] - bad[:, None]) > 0)
    if p.use_memory and np.isfinite(p.capacity[d]):
        invalid |= ~within(mem[None, :] - mem[:, None] + pre["cutb"][:, None], p.capacity[d])
    if prev is None:
        invalid[1:, :] = True
    return np.where(invalid, np.inf, m)


def _prefix(p: Problem) -> dict[str, np.ndarray]:
    """Prefix sums over the topological order for :func:`_segment_matrix`.

    ``cut[j, a, b]``/``cutb[j]``: link units and bytes of the tensors crossing the boundary
    before op ``j`` (made before it, last read at or after it), each tensor once.
    ``mem[j, d]``: bytes of ops ``[0, j)`` on ``d`` under the one memory model; a segment's
    receive buffers are at most the bytes crossing its left boundary.
    """
    n, d = p.n, p.num_devices
    zero = np.zeros((1, d))
    dur = np.where(p.allowed, p.dur, 0).astype(float)
    cut = np.zeros((n + 2, d, d))
    cutb = np.zeros(n + 2)
    tens = p.tensors
    if tens.num_tensors:
        share = channels(p).share.astype(float)
        last = tens.cons[tens.cons_start[1:] - 1]
        np.add.at(cut, tens.src + 1, share)
        np.add.at(cut, last + 1, -share)
        np.add.at(cutb, tens.src + 1, tens.nbytes)
        np.add.at(cutb, last + 1, -tens.nbytes)
    return {
        "w": np.vstack([zero, np.cumsum(dur, axis=0)]),
        "bad": np.vstack([zero, np.cumsum(~p.allowed, axis=0)]),
        "mem": np.vstack([zero, np.cumsum(p.dev_memory, axis=0)]),
        "cut": np.cumsum(cut, axis=0)[: n + 1],
        "cutb": np.cumsum(cutb)[: n + 1],
    }


def dp_partition(
    problem: Problem, *, stages: int | None = None, max_latency: int | None = None
) -> np.ndarray | None:
    """Contiguous segments over the topological order, one device each, by subset DP.

    ``f[S, d][j]``: best bottleneck with ops ``[0, j)`` split over the devices ``S``, the last
    segment on ``d``. ``stages`` fixes ``|S|``; ``max_latency`` (units) keeps ``|S| x P``
    within it. Returns ``None`` when no split fits (or above 3000 ops: the DP is ``O(n^2)``).
    """
    p = problem
    if p.n > _DP_MAX_OPS:
        return None
    pre = _prefix(p)
    n, dcount = p.n, p.num_devices
    # state (mask, last) -> (value over j, prev device over j, segment start over j)
    f: dict[tuple[int, int], tuple[np.ndarray, np.ndarray, np.ndarray]] = {}
    for d in range(dcount):
        f[1 << d, d] = (_segment_matrix(p, pre, d, None)[0], np.full(n + 1, -1), np.zeros(n + 1))
    for mask in sorted(range(1, 1 << dcount), key=lambda m: (bin(m).count("1"), m)):
        for last in range(dcount):
            if (mask, last) not in f:
                continue
            val = f[mask, last][0]
            if not np.isfinite(val).any():
                continue
            for d in range(dcount):
                if mask >> d & 1:
                    continue
                cand = np.maximum(val[:, None], _segment_matrix(p, pre, d, last))
                best_i = cand.argmin(axis=0)
                best = cand[best_i, np.arange(n + 1)]
                key = (mask | 1 << d, d)
                old = f.get(key)
                if old is None:
                    f[key] = (best, np.full(n + 1, last), best_i)
                else:
                    better = best < old[0]
                    old[0][better] = best[better]
                    old[1][better] = last
                    old[2][better] = best_i[better]
    final = []
    for (mask, last), (val, _, _) in f.items():
        k = bin(mask).count("1")
        if not np.isfinite(val[n]) or (stages is not None and k != stages):
            continue
        if max_latency is not None and k * val[n] > max_latency:
            continue
        final.append((float(val[n]), k, mask, last))
    if not final:
        return None
    _, _, mask, last = min(final)
    assign = np.empty(n, dtype=np.int64)
    j = n
    while j > 0:
        _, prev, start = f[mask, last]
        i = int(start[j])
        assign[i:j] = last
        mask, last, j = mask & ~(1 << last), int(prev[j]), i
    return assign


def _fallback(p: Problem, v: int, prev: int | None) -> int:
    if prev is not None and p.allowed[v, prev]:
        return prev
    return min(p.allowed_devices[v], key=lambda d: (int(p.dur[v, d]), d))


def equal_split(
    problem: Problem, *, weights: np.ndarray | None = None, stages: int | None = None
) -> np.ndarray:
    """Cut the topological order into ``stages`` chunks of equal weight (default: op count).

    Chunk ``k`` goes to device ``k`` in platform order.
    """
    p = problem
    k = min(stages or p.num_devices, p.num_devices, p.n)
    w = np.ones(p.n) if weights is None else np.asarray(weights, dtype=float)
    total = float(w.sum()) or 1.0
    mid = np.cumsum(w) - w / 2
    chunk = np.minimum((mid / total * k).astype(np.int64), k - 1)
    # Every device gets at least one op (balanced count when weights are degenerate).
    chunk = np.maximum.accumulate(np.maximum(chunk, np.arange(p.n) - (p.n - k)))
    chunk = np.minimum(chunk, np.arange(p.n))
    assign = np.empty(p.n, dtype=np.int64)
    for v in range(p.n):
        d = int(chunk[v])
        assign[v] = d if p.allowed[v, d] else _fallback(p, v, int(assign[v - 1]) if v else None)
    return assign


def _preference(p: Problem) -> list[int]:
    """Devices fastest first: mean speed-up over the ops each supports, then coverage."""
    score = []
    for d in range(p.num_devices):
        ok = p.allowed[:, d]
        ratio = float((p.min_dur[ok] + 1).sum() / (p.dur[ok, d] + 1).sum()) if ok.any() else 0.0
        score.append((-ratio, -int(ok.sum()), d))
    return [d for *_, d in sorted(score)]


def _runs(assign: np.ndarray) -> list[tuple[int, int]]:
    cuts = [0, *(np.flatnonzero(np.diff(assign)) + 1).tolist(), len(assign)]
    return list(itertools.pairwise(cuts))


def capability_greedy(problem: Problem, *, min_block_size: int = 5) -> np.ndarray:
    """Preferred supported device per op; small and cyclic fragments go to the fallback.

    An op goes to the first device in preference order that supports it and still holds it
    (:class:`~hetsched.plan.memory.MemoryTracker`, when memory is on). Then every run of
    consecutive ops on one device shorter than ``min_block_size`` moves to the fallback (the
    preferred device that supports every op), as do the smallest fragments of a device
    cycle until the stage graph is acyclic. ``min_block_size=1`` keeps every run.

    >>> import numpy as np
    >>> from hetsched.problem import Problem
    >>> p = Problem.from_arrays(names=list("abcdef"), devices=["cpu", "gpu"],
    ...     exec_time=np.array([[4, 1], [4, 1], [4, np.inf], [4, 1], [4, 1], [4, 1]]),
    ...     edges=[(i, i + 1, 1.0) for i in range(5)], quantum=1.0)
    >>> capability_greedy(p, min_block_size=1).tolist(), capability_greedy(p).tolist()
    ([0, 0, 0, 1, 1, 1], [0, 0, 0, 0, 0, 0])
    """
    if (
        isinstance(min_block_size, bool)
        or not isinstance(min_block_size, int)
        or min_block_size < 1
    ):
        msg = f"min_block_size must be a positive integer, got {min_block_size!r}"
        raise UsageError(msg)
    p = problem
    pref = _preference(p)
    universal = [d for d in pref if p.allowed[:, d].all()]
    fallback = universal[0] if universal else None
    memory = MemoryTracker(p)
    assign = np.empty(p.n, dtype=np.int64)
    for v in range(p.n):
        for d in pref:
            if p.allowed[v, d] and memory.fits(v, int(p.device_mode[v, d])):
                break
        else:
            d = _fallback(p, v, None)
        assign[v] = d
        memory.place(v, int(p.device_mode[v, d]))
    if fallback is None:
        return assign
    for i, j in _runs(assign):
        if j - i < min_block_size and assign[i] != fallback:
            assign[i:j] = fallback
    while not pipeline_cost(p, assign).acyclic:
        frags = [(j - i, i, j) for i, j in _runs(assign) if assign[i] != fallback]
        _, i, j = min(frags)
        assign[i:j] = fallback
    return assign


def run_baselines(
    problem: Problem,
    graph: OpGraph | None = None,
    *,
    stages: int | None = None,
    max_latency: int | None = None,
    min_block_size: int = 5,
) -> list[Baseline]:
    """Run every baseline (:data:`BASELINES`); ``graph`` supplies FLOPs for the equal-FLOPs
    split, ``stages`` and ``max_latency`` (units) constrain the DP, ``min_block_size`` is
    the capability baseline's shortest run (:func:`capability_greedy`)."""
    flops = None
    if graph is not None and len(graph.nodes) == problem.n:
        flops = np.array([graph.node(x).flops for x in problem.names]) + 1.0
    runs = [
        ("dp", lambda: dp_partition(problem, stages=stages, max_latency=max_latency)),
        ("equal-ops", lambda: equal_split(problem, stages=stages)),
        (
            "equal-flops",
            lambda: equal_split(
                problem, stages=stages, weights=flops if flops is not None else problem.min_dur
            ),
        ),
        ("capability", lambda: capability_greedy(problem, min_block_size=min_block_size)),
    ]
    out = []
    for name, fn in runs:
        t0 = time.perf_counter()
        assign = fn()
        if assign is not None:
            cost = pipeline_cost(problem, assign)
            out.append(Baseline(name, assign, cost, time.perf_counter() - t0))
    return out
