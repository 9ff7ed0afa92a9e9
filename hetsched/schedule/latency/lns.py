"""Large-neighbourhood search around the best plan, for graphs too big for one CP-SAT model.

Each step frees a *window* of ops and re-solves it exactly with CP-SAT
(:func:`~hetsched.schedule.latency.neighbourhood.solve_neighbourhood`): window ops choose device
and start, the ops that follow keep device and per-device order but move in time, and the
rest of the schedule enters through exact tails, so the sub-model's objective is the real
makespan of the candidate. Windows alternate between a time slice, the critical path's
neighbourhood and two devices' ops in a time slice; the window grows while sub-solves are
proved optimal and shrinks when they time out. The candidate is re-timed in integer time
(:func:`~hetsched.schedule.latency.listsched.retime`) and kept if its makespan does not grow.
Anytime, reports progress, never worse than its starting plan.

Examples
--------
>>> import numpy as np
>>> from hetsched.problem import Problem
>>> rng = np.random.default_rng(0)
>>> n = 40
>>> edges = [(i, j, 1.0) for j in range(1, n) for i in rng.choice(j, size=min(j, 2), replace=False)]
>>> p = Problem.from_arrays(names=[f"t{i}" for i in range(n)], devices=["a", "b", "c"],
...     exec_time=rng.integers(1, 20, size=(n, 3)).astype(float), edges=edges,
...     comm_latency=np.full((3, 3), 3.0), quantum=1.0)
>>> from hetsched.schedule.latency.heuristics import solve_heft
>>> h = solve_heft(p)
>>> plan = solve_lns(p, time_limit=3, seed=0, hint=h, workers=1)
>>> plan.makespan <= h.makespan
True
"""

from __future__ import annotations

import time

import numpy as np

from hetsched.plan import (
    Plan,
    overflow,
    plan_from_schedule,
    plan_transfer_starts,
    schedule_arrays,
)
from hetsched.problem import Problem
from hetsched.schedule.bounds import lower_bound
from hetsched.schedule.latency.heuristics import solve_heft
from hetsched.schedule.latency.listsched import makespan_units, priority_order, retime
from hetsched.schedule.latency.localsearch import critical_path
from hetsched.schedule.latency.neighbourhood import disjunctive_tails, solve_neighbourhood
from hetsched.solver import Capabilities, SolveContext, Solver

__all__ = ["NEIGHBOURHOODS", "choose_window", "priority_order", "solve_lns"]

NEIGHBOURHOODS = ("time", "critical", "subgraph", "devices", "critical", "subgraph")


def choose_window(
    p: Problem,
    assign: np.ndarray,
    start: np.ndarray,
    size: int,
    kind: str,
    rng: np.random.Generator,
    transfer_start: dict[tuple[int, int], int] | None = None,
) -> np.ndarray:
    """Ops to free: nearest in start time to a time point chosen by ``kind``.

    ``time``: a uniform random point; ``critical``: the start of a random op on the critical
    path, whose ops are taken first; ``devices``: like ``time`` but only ops of two devices;
    ``subgraph``: ops connected by data edges to a random critical op (not by time).
    """
    fin = start + p.dur[np.arange(p.n), assign]
    ms = max(int(fin.max()), 1)
    if kind == "subgraph":
        path = critical_path(p, assign, start, transfer_start)
        return _connected(p, path[int(rng.integers(len(path)))], size, rng)
    dist_extra = np.zeros(p.n)
    if kind == "critical":
        path = critical_path(p, assign, start, transfer_start)
        t = int(start[path[int(rng.integers(len(path)))]])
        dist_extra[path] = -0.5 * ms / max(1, len(path))
    else:
        t = int(rng.integers(0, ms))
    dist = np.abs(start - t) + dist_extra + rng.random(p.n) * 1e-3
    if kind == "devices" and p.num_devices > 2:
        devs = rng.choice(p.num_devices, size=2, replace=False)
        dist = np.where(np.isin(assign, devs), dist, np.inf)
    w = np.argsort(dist, kind="stable")[:size]
    return w[np.isfinite(dist[w])]


def _connected(p: Problem, seed_op: int, size: int, rng: np.random.Generator) -> np.ndarray:
    """Up to ``size`` ops reached from ``seed_op`` along data edges (random BFS)."""
    seen = {seed_op}
    frontier = [seed_op]
    while frontier and len(seen) < size:
        v = frontier.pop(int(rng.integers(len(frontier))))
        for u, _ in (*p.preds[v], *p.succs[v]):
            if u not in seen and len(seen) < size:
                seen.add(u)
                frontier.append(u)
    return np.fromiter(sorted(seen), np.int64, len(seen))


def _lns(
    problem: Problem,
    ctx: SolveContext,
    *,
    window: int = 16,
    step_time: float = 0.5,
    bound: int | None = None,
    max_window: int = 400,
) -> Plan:
    """Improve the hint (default: HEFT) by repeated exact window re-optimisation.

    ``window`` is the initial number of freed ops (adapted), ``step_time`` the CP-SAT limit
    of one step, ``bound`` a known lower bound in units (computed if not given). A step
    whose result overflows a device's memory is rejected.
    """
    p = problem
    hint = ctx.hint if ctx.hint is not None else solve_heft.within(p, ctx.child())
    assign, start0 = schedule_arrays(hint, p)
    start, xfer = retime(p, assign, priority_order(p, start0))
    best_ms = makespan_units(p, assign, start)
    hint_ms = round(hint.makespan / p.quantum)
    if best_ms > hint_ms:  # re-timing a foreign plan can only help; keep the hint otherwise
        start, best_ms = start0, hint_ms
        xfer = plan_transfer_starts(p, hint)
    start_ms = best_ms
    lb = bound if bound is not None else lower_bound(p, use_lp=p.n <= 2000)
    ctx.report(hint.solver, best_ms * p.quantum, lb * p.quantum)  # the start point
    rng = np.random.default_rng(ctx.seed)
    size = float(min(window, p.n))
    tail = disjunctive_tails(p, assign, start)
    best_flow = int((start + p.dur[np.arange(p.n), assign]).sum())
    steps = accepted = optimal_steps = 0
    kinds: dict[str, int] = dict.fromkeys(NEIGHBOURHOODS, 0)
    upkeep = 0.0  # seconds a step spends after its sub-solve (re-timing, tails) at most
    while best_ms > lb and not ctx.stop.is_set():
        remaining = ctx.remaining() - upkeep  # a step must end, upkeep included, in time
        if remaining < 0.05:
            break
        kind = NEIGHBOURHOODS[steps % len(NEIGHBOURHOODS)]
        w = choose_window(p, assign, start, max(2, int(size)), kind, rng, xfer)
        steps += 1
        if w.size == 0:
            continue
        limit = min(step_time, remaining)
        sub = solve_neighbourhood(
            p,
            assign,
            start,
            w,
            tail=tail,
            flex_cap=max(40, 3 * int(size)),
            time_limit=limit,
            seed=ctx.seed + steps,
            workers=ctx.workers,
            stop=ctx.stop,
        )
        improved = sub is not None and sub.makespan < best_ms
        optimal_steps += int(sub is not None and sub.optimal)
        if sub is not None and (sub.optimal or improved):
            size = min(float(max_window), size * 1.15)
        else:
            size = max(8.0, size * 0.8)
        if sub is None or sub.makespan > best_ms:
            continue
        t_upkeep = time.perf_counter()
        if overflow(p, p.device_mode[np.arange(p.n), sub.assign]) is not None:
            continue
        cand_start, cand_xfer = retime(p, sub.assign, priority_order(p, sub.key))
        ms = makespan_units(p, sub.assign, cand_start)
        flow = int((cand_start + p.dur[np.arange(p.n), sub.assign]).sum())
        if ms < best_ms or (ms == best_ms and flow <= best_flow):
            changed = True
            if ms < best_ms:
                accepted += 1
                kinds[kind] += 1
                ctx.report("lns", ms * p.quantum, lb * p.quantum)
            assign, start, xfer, best_ms, best_flow = sub.assign, cand_start, cand_xfer, ms, flow
            if changed:
                tail = disjunctive_tails(p, assign, start)
        upkeep = max(upkeep, time.perf_counter() - t_upkeep)
    return plan_from_schedule(
        p,
        assign=assign,
        start=start,
        solver="lns",
        lower_bound=min(lb, best_ms),
        stats={
            "steps": steps,
            "improvements": accepted,
            "optimal_steps": optimal_steps,
            "by_neighbourhood": kinds,
            "final_window": int(size),
            "start_makespan": start_ms * p.quantum,
        },
        transfer_start=xfer,
        baselines=hint.baselines,
    )


solve_lns = Solver(
    "lns",
    _lns,
    Capabilities(hint=True, workers=True, anytime=True),
    options=("window", "step_time", "bound", "max_window"),
)
