"""Critical-path local search over assignments, with integer re-timing.

Starting from a plan, repeatedly take an op on the current critical path (the chain of
ops and transfers that fixes the makespan), move it to another device that supports it
(or swap it with an op of another device), re-time the whole schedule in the order of
the current start times, and keep the move if the makespan does not grow. Each
evaluation is one linear pass (:func:`~hetsched.schedule.latency.listsched.retime`), so thousands
of moves fit in a second on mid-size graphs. Used by the portfolio to give CP-SAT and
LNS a better starting point; never worse than its start.

Examples
--------
>>> import numpy as np
>>> from hetsched.problem import Problem
>>> from hetsched.schedule.latency.heuristics import solve_heft
>>> rng = np.random.default_rng(1)
>>> n = 30
>>> edges = [(i, j, 2.0) for j in range(1, n) for i in rng.choice(j, size=min(j, 2), replace=False)]
>>> p = Problem.from_arrays(names=[f"t{i}" for i in range(n)], devices=["a", "b", "c"],
...     exec_time=rng.integers(1, 20, size=(n, 3)).astype(float), edges=edges,
...     comm_latency=np.full((3, 3), 2.0), quantum=1.0)
>>> h = solve_heft(p)
>>> plan = solve_local_search(p, time_limit=1, seed=0, hint=h)
>>> plan.makespan <= h.makespan
True
"""

from __future__ import annotations

import itertools

import numpy as np

from hetsched.plan import (
    Plan,
    overflow,
    plan_from_schedule,
    plan_transfer_starts,
    schedule_arrays,
)
from hetsched.problem import Problem
from hetsched.schedule.bounds import quick_lower_bound
from hetsched.schedule.latency.heuristics import solve_heft
from hetsched.schedule.latency.listsched import retime_by_key
from hetsched.solver import Capabilities, SolveContext, Solver

__all__ = ["critical_path", "solve_local_search"]


def critical_path(
    p: Problem,
    assign: np.ndarray,
    start: np.ndarray,
    transfer_start: dict[tuple[int, int], int] | None = None,
) -> list[int]:
    """Ops on a chain that determines the makespan, last op first.

    From the op that finishes last, step to whatever made it start when it did: a data
    predecessor whose result arrived exactly then, or the op before it on its device.
    """
    idx = np.arange(p.n)
    fin = start + p.dur[idx, assign]
    by_dev: dict[int, list[int]] = {}
    for v in np.lexsort((fin, start)).tolist():
        by_dev.setdefault(int(assign[v]), []).append(v)
    prev_on_dev = np.full(p.n, -1)
    for ops in by_dev.values():
        for a, b in itertools.pairwise(ops):
            prev_on_dev[b] = a
    v = int(np.argmax(fin))
    path = [v]
    seen = {v}
    while start[v] > 0:
        nxt = -1
        for u, k in p.preds[v]:
            arrive = fin[u] + p.comm[k, assign[u], assign[v]]
            key = (int(p.edge_tensor[k]), int(assign[v]))
            if transfer_start and key in transfer_start and assign[u] != assign[v]:
                arrive = transfer_start[key] + p.comm[k, assign[u], assign[v]]
            if arrive == start[v]:
                nxt = u
                break
        if nxt < 0 and prev_on_dev[v] >= 0 and fin[prev_on_dev[v]] == start[v]:
            nxt = int(prev_on_dev[v])
        if nxt < 0 or nxt in seen:
            break
        path.append(nxt)
        seen.add(nxt)
        v = nxt
    return path


def _local_search(
    problem: Problem, ctx: SolveContext, *, max_evaluations: int | None = None
) -> Plan:
    """Improve the hint (default: HEFT) by critical-path moves and swaps."""
    p = problem
    hint = ctx.hint if ctx.hint is not None else solve_heft.within(p, ctx.child())
    assign, key = schedule_arrays(hint, p)
    start, xfer, best = retime_by_key(p, assign, key.astype(float))
    first = best
    if round(hint.makespan / p.quantum) < best:
        # The hint's own (insertion) timing beats re-timing in start order: keep its times.
        start, best = key, round(hint.makespan / p.quantum)
        xfer = plan_transfer_starts(p, hint)
    lb = quick_lower_bound(p)
    ctx.report(hint.solver, best * p.quantum, lb * p.quantum)  # the start point
    rng = np.random.default_rng(ctx.seed)
    evals = moves = 0
    stale = 0
    while best > lb and not ctx.expired():
        if max_evaluations is not None and evals >= max_evaluations:
            break
        path = critical_path(p, assign, start, xfer)
        improved = False
        order = rng.permutation(len(path))
        for i in order.tolist():
            v = path[i]
            cands = [d for d in p.allowed_devices[v] if d != assign[v]]
            rng.shuffle(cands)
            for d in cands:
                trial = assign.copy()
                trial[v] = d
                if overflow(p, p.device_mode[np.arange(p.n), trial]) is not None:
                    continue
                s2, x2, ms = retime_by_key(p, trial, start.astype(float) + rng.random(p.n) * 0.5)
                evals += 1
                if ms < best or (ms == best and rng.random() < 0.1):
                    if ms < best:
                        improved = True
                        ctx.report("ls", ms * p.quantum, lb * p.quantum)
                    assign, start, xfer, best = trial, s2, x2, ms
                    moves += 1
                    break
            if improved or ctx.expired():
                break
        stale = 0 if improved else stale + 1
        if stale > 3 + len(path):
            # Kick: re-time with a perturbed priority to escape a plateau.
            s2, x2, ms = retime_by_key(p, assign, start + rng.random(p.n) * p.dur.max())
            evals += 1
            if ms <= best:
                start, xfer, best = s2, x2, ms
            stale = 0
    final = plan_from_schedule(
        p,
        assign=assign,
        start=start,
        solver="ls",
        lower_bound=lb,
        stats={"evaluations": evals, "moves": moves, "start_makespan": first * p.quantum},
        transfer_start=xfer or None,
        baselines=hint.baselines,
    )
    return final if final.makespan <= hint.makespan else hint


solve_local_search = Solver(
    "ls", _local_search, Capabilities(hint=True, anytime=True), options=("max_evaluations",)
)
