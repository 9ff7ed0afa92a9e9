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

from hetsched.plan import Plan, plan_from_schedule, schedule_arrays
from hetsched.problem import Problem
from hetsched.schedule.bounds import lower_bound
from hetsched.schedule.latency.listsched import makespan_units, priority_order, retime
from hetsched.schedule.latency.localsearch import critical_path
from hetsched.schedule.latency.neighbourhood import disjunctive_tails, solve_neighbourhood
from hetsched.solver import (
    GLOBAL_STOP,
    Progress,
    ProgressCallback,
    StopToken,
    check_seed,
    check_time_limit,
    report,
)

__all__ = ["NEIGHBOURHOODS", "choose_window", "plan_transfer_starts", "priority_order", "solve_lns"]

NEIGHBOURHOODS = ("time", "critical", "subgraph", "devices", "critical", "subgraph")


def choose_window(
    p: Problem,
    assign: np.ndarray,
    start: np.ndarray,
    size: int,
    kind: str,
    rng: np.random.Generator,
    transfer_start: dict[int, int] | None = None,
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


def plan_transfer_starts(p: Problem, plan: Plan) -> dict[int, int]:
    """Transfer start (units) per edge id, as ``plan`` has them."""
    edge = {
        (p.names[u], p.names[v]): k
        for k, (u, v) in enumerate(zip(p.edge_src.tolist(), p.edge_dst.tolist(), strict=True))
    }
    return {
        edge[t.src, t.dst]: round(t.start / p.quantum)
        for t in plan.transfers
        if (t.src, t.dst) in edge
    }


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


def solve_lns(
    problem: Problem,
    *,
    time_limit: float = 10.0,
    seed: int = 0,
    hint: Plan | None = None,
    progress: ProgressCallback | None = None,
    workers: int = 2,
    stop: StopToken | None = None,
    window: int = 16,
    step_time: float = 0.5,
    bound: int | None = None,
    max_window: int = 400,
) -> Plan:
    """Improve ``hint`` (default: HEFT) by repeated exact window re-optimisation.

    ``window`` is the initial number of freed ops (adapted), ``step_time`` the CP-SAT limit
    of one step, ``bound`` a known lower bound in units (computed if not given).
    """
    time_limit = check_time_limit(time_limit)
    seed = check_seed(seed)
    stop = stop or GLOBAL_STOP
    t0 = time.perf_counter()
    p = problem
    if hint is None:
        from hetsched.schedule.latency.heuristics import solve_heft

        hint = solve_heft(p, time_limit=time_limit, seed=seed)
    assign, start0 = schedule_arrays(hint, p)
    start, xfer = retime(p, assign, priority_order(p, start0))
    best_ms = makespan_units(p, assign, start)
    hint_ms = round(hint.makespan / p.quantum)
    if best_ms > hint_ms:  # re-timing a foreign plan can only help; keep the hint otherwise
        start, best_ms = start0, hint_ms
        xfer = plan_transfer_starts(p, hint)
    start_ms = best_ms
    lb = bound if bound is not None else lower_bound(p, use_lp=p.n <= 2000)
    rng = np.random.default_rng(seed)
    size = float(min(window, p.n))
    tail = disjunctive_tails(p, assign, start)
    best_flow = int((start + p.dur[np.arange(p.n), assign]).sum())
    steps = accepted = optimal_steps = 0
    kinds: dict[str, int] = dict.fromkeys(NEIGHBOURHOODS, 0)
    while best_ms > lb and not stop.is_set():
        remaining = time_limit - (time.perf_counter() - t0)
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
            seed=seed + steps,
            workers=workers,
        )
        improved = sub is not None and sub.makespan < best_ms
        optimal_steps += int(sub is not None and sub.optimal)
        if sub is not None and (sub.optimal or improved):
            size = min(float(max_window), size * 1.15)
        else:
            size = max(8.0, size * 0.8)
        if sub is None or sub.makespan > best_ms:
            continue
        cand_start, cand_xfer = retime(p, sub.assign, priority_order(p, sub.key))
        ms = makespan_units(p, sub.assign, cand_start)
        flow = int((cand_start + p.dur[np.arange(p.n), sub.assign]).sum())
        if ms < best_ms or (ms == best_ms and flow <= best_flow):
            changed = True
            if ms < best_ms:
                accepted += 1
                kinds[kind] += 1
                report(
                    progress,
                    Progress("lns", ms * p.quantum, lb * p.quantum, time.perf_counter() - t0),
                )
            assign, start, xfer, best_ms, best_flow = sub.assign, cand_start, cand_xfer, ms, flow
            if changed:
                tail = disjunctive_tails(p, assign, start)
    status = "optimal" if best_ms <= lb else "feasible"
    return plan_from_schedule(
        p,
        assign=assign,
        start=start,
        solver="lns",
        status=status,
        lower_bound=min(lb, best_ms),
        solve_time=time.perf_counter() - t0,
        stats={
            "steps": steps,
            "improvements": accepted,
            "optimal_steps": optimal_steps,
            "by_neighbourhood": kinds,
            "final_window": int(size),
            "start_makespan": start_ms * p.quantum,
        },
        transfer_start=xfer,
        interrupted=stop.is_set(),
    )
