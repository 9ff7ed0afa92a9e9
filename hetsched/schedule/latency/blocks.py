"""Repeated blocks (transformer layers): find them, solve one, replicate the pattern.

Exported models list a layer's ops contiguously in topological order, so repeated layers
show up as a *period* ``P`` of the op sequence: ``dur[i] == dur[i + P]`` and every edge
``u -> v`` inside the run has its copy ``u + P -> v + P``. :func:`find_blocks` finds the
period with the longest such run (from the Problem alone, no module names needed) and cuts
the run into isomorphic blocks. :func:`block_subproblem` extracts one block as its own
:class:`~hetsched.problem.Problem` (inputs from outside the block are taken as ready at 0);
:func:`replicate` copies a block's device pattern and dispatch order onto every block and
re-times the whole schedule with :func:`~hetsched.schedule.latency.listsched.retime`, so the result
is always valid; callers keep it only if it is better.

Examples
--------
>>> import numpy as np
>>> from hetsched.problem import Problem
>>> n, P = 12, 4
>>> edges = [(i, i + 1, 1.0) for i in range(n - 1)] + [(i, i + 2, 1.0) for i in range(0, n - 2, P)]
>>> p = Problem.from_arrays(names=[f"o{i}" for i in range(n)], devices=["a", "b"],
...     exec_time=np.tile([[1.0, 2.0], [2.0, 1.0], [1.0, 1.0], [3.0, 1.0]], (3, 1)),
...     edges=sorted(edges), quantum=1.0)
>>> [b.tolist() for b in find_blocks(p)]
[[0, 1, 2, 3], [4, 5, 6, 7], [8, 9, 10, 11]]
"""

from __future__ import annotations

import numpy as np

from hetsched.plan import plan_from_schedule, schedule_arrays
from hetsched.problem import Problem, subproblem
from hetsched.schedule.latency.eft import fits_memory
from hetsched.schedule.latency.listsched import makespan_units, priority_order, retime
from hetsched.solver import StopToken

__all__ = ["block_subproblem", "find_blocks", "replicate", "solve_by_blocks"]


def _row_hash(p: Problem) -> np.ndarray:
    _, h = np.unique(np.where(p.allowed, p.dur, -1), axis=0, return_inverse=True)
    return h.reshape(-1)


def _longest_run(match: np.ndarray) -> tuple[int, int]:
    """``(start, length)`` of the longest run of True in ``match``."""
    if not match.any():
        return 0, 0
    x = np.concatenate([[0], match.astype(np.int8), [0]])
    d = np.diff(x)
    starts, ends = np.flatnonzero(d == 1), np.flatnonzero(d == -1)
    k = int(np.argmax(ends - starts))
    return int(starts[k]), int(ends[k] - starts[k])


def find_blocks(
    p: Problem, *, min_blocks: int = 3, min_size: int = 4, max_candidates: int = 40
) -> list[np.ndarray]:
    """Consecutive isomorphic blocks of ops (equal durations and shifted edges), or ``[]``.

    Candidate periods are the most frequent gaps between equal duration rows; the period
    whose matching run covers the most ops wins.
    """
    h = _row_hash(p)
    n = p.n
    order = np.lexsort((np.arange(n), h))
    same = h[order][1:] == h[order][:-1]
    gaps = (order[1:] - order[:-1])[same]
    if gaps.size == 0:
        return []
    vals, counts = np.unique(gaps, return_counts=True)
    cands = vals[np.argsort(-counts, kind="stable")][:max_candidates]
    edge_set = set(zip(p.edge_src.tolist(), p.edge_dst.tolist(), strict=True))
    best: tuple[int, int, int] = (0, 0, 0)  # (covered, start, period)
    for period in sorted(int(c) for c in cands if min_size <= c <= n // min_blocks):
        match = h[:-period] == h[period:]
        # an edge u -> v with both ends in [i, i + P) must recur shifted by P
        bad = np.zeros(n, dtype=bool)
        for u, v in edge_set:
            if v - u < period and v + period < n and (u + period, v + period) not in edge_set:
                bad[u] = True
        match &= ~bad[: n - period]
        s, length = _longest_run(match)
        covered = (length // period) * period + period
        if length >= (min_blocks - 1) * period and covered > best[0]:
            best = (covered, s, period)
    covered, s, period = best
    if covered == 0:
        return []
    return [np.arange(s + k * period, s + (k + 1) * period) for k in range(covered // period)]


def block_subproblem(p: Problem, ops: np.ndarray) -> Problem:
    """``ops`` (sorted indices) as a Problem of their own: internal edges only."""
    return subproblem(p, ops, name="block")


def replicate(
    p: Problem,
    blocks: list[np.ndarray],
    block_assign: np.ndarray,
    block_start: np.ndarray,
    assign: np.ndarray,
    start: np.ndarray,
) -> tuple[np.ndarray, np.ndarray, dict[tuple[int, int], int]]:
    """Every block takes ``block_assign`` and the order of ``block_start``; re-timed.

    Ops outside the blocks keep their device; dispatch keys are the current starts, with
    each block's ops at its current earliest start plus the pattern's relative start.
    """
    new_assign = assign.copy()
    key = start.astype(np.float64).copy()
    rel = np.asarray(block_start, dtype=np.float64) - float(np.min(block_start))
    rel = rel + np.arange(rel.size) / (rel.size + 1)  # ties by position
    for b in blocks:
        new_assign[b] = block_assign
        key[b] = float(start[b].min()) + rel
    if not fits_memory(p, new_assign):
        return assign, start, {}
    new_start, xfer = retime(p, new_assign, priority_order(p, key))
    return new_assign, new_start, xfer


def solve_by_blocks(
    p: Problem,
    blocks: list[np.ndarray],
    assign: np.ndarray,
    start: np.ndarray,
    *,
    time_limit: float,
    seed: int = 0,
    workers: int = 2,
    stop: StopToken | None = None,
) -> tuple[np.ndarray, np.ndarray, dict[tuple[int, int], int]] | None:
    """Solve the middle block alone (LNS from the best of its own pattern, HEFT and EFT),
    replicate it onto every block; ``None`` unless the whole schedule gets shorter."""
    from hetsched.schedule.latency.eft import first_plan
    from hetsched.schedule.latency.heuristics import solve_heft
    from hetsched.schedule.latency.lns import solve_lns

    mid = blocks[len(blocks) // 2]
    sub = block_subproblem(p, mid)
    own_start, _ = retime(sub, assign[mid], priority_order(sub, start[mid]))
    own = plan_from_schedule(sub, assign=assign[mid], start=own_start, solver="own")
    cands = [own, solve_heft(sub, time_limit=time_limit, seed=seed), first_plan(sub)]
    hint = min(cands, key=lambda pl: pl.makespan)
    best = solve_lns(sub, time_limit=time_limit, seed=seed, hint=hint, workers=workers, stop=stop)
    cur = makespan_units(p, assign, start)
    out = None
    for pl in (best, *cands):
        sa, ss = schedule_arrays(pl, sub)
        na, ns, xfer = replicate(p, blocks, sa, ss, assign, start)
        ms = makespan_units(p, na, ns)
        if ms < cur:
            cur, out = ms, (na, ns, xfer)
    return out
