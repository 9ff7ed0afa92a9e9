"""Large-neighbourhood search around the best plan, for graphs too big for one CP-SAT model.

Each step frees a *window* of ops (a time slice of the current schedule, or the
neighbourhood of its critical path), fixes everything that starts before the window as
constants, and asks CP-SAT to re-place and re-order the window's ops minimising
``max(end_v + tail_v)`` (``tail_v``: optimistic time still needed after ``v``). The
candidate schedule is then re-timed in integer time with the new assignment and the
dispatch order the sub-solution implies, and kept only if its makespan does not grow.
Anytime and never worse than its starting plan.

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
>>> from hetsched.schedule.heuristics import solve_heft
>>> h = solve_heft(p)
>>> plan = solve_lns(p, time_limit=3, seed=0, hint=h, workers=1)
>>> plan.makespan <= h.makespan
True
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np
from ortools.sat.python import cp_model

from hetsched.plan import Plan, plan_from_schedule, schedule_arrays
from hetsched.problem import Problem
from hetsched.schedule.bounds import heads_and_tails, lower_bound
from hetsched.schedule.common import (
    GLOBAL_STOP,
    Progress,
    ProgressCallback,
    StopToken,
    check_seed,
    check_time_limit,
    report,
)
from hetsched.schedule.listsched import priority_order, retime

__all__ = ["priority_order", "solve_lns"]


def _makespan(p: Problem, assign: np.ndarray, start: np.ndarray) -> int:
    return int((start + p.dur[np.arange(p.n), assign]).max())


def _window(
    p: Problem, assign: np.ndarray, start: np.ndarray, size: int, rng: np.random.Generator
) -> np.ndarray:
    """Ops whose start is nearest a random time point (or the critical path's slice)."""
    fin = start + p.dur[np.arange(p.n), assign]
    ms = int(fin.max())
    t = rng.integers(0, max(ms, 1))
    dist = np.abs(start - t) + rng.random(p.n) * 1e-3
    return np.argsort(dist, kind="stable")[:size]


def _solve_window(
    p: Problem,
    assign: np.ndarray,
    start: np.ndarray,
    window: np.ndarray,
    tail: np.ndarray,
    time_limit: float,
    seed: int,
    workers: int,
) -> tuple[np.ndarray, np.ndarray] | None:
    in_w = np.zeros(p.n, dtype=bool)
    in_w[window] = True
    fin = start + p.dur[np.arange(p.n), assign]
    t_lo = int(start[window].min())
    horizon = int(fin.max()) + int(p.dur.max()) * len(window) + int(p.comm.max(initial=0)) * 2
    m = cp_model.CpModel()
    # Fixed context: ops outside the window that start before it keep their times; their
    # intervals stay on their devices so window ops cannot overlap them.
    before = (~in_w) & (start < t_lo + 1)
    dev_iv: dict[int, list] = {d: [] for d in range(p.num_devices)}
    for v in np.flatnonzero(before & (fin > t_lo)):
        d = int(assign[v])
        dev_iv[d].append(m.new_fixed_size_interval_var(int(start[v]), int(p.dur[v, d]), ""))
    s_var: dict[int, Any] = {}
    e_var: dict[int, Any] = {}
    on: dict[int, dict[int, Any]] = {}
    obj = m.new_int_var(0, horizon + int(tail.max()), "obj")
    for v in window.tolist():
        s_var[v] = m.new_int_var(0, horizon, f"start_{v}")
        e_var[v] = m.new_int_var(0, horizon, f"end_{v}")
        lits = {}
        for d in p.allowed_devices[v]:
            lit = m.new_bool_var(f"on_{v}_{d}")
            dev_iv[d].append(
                m.new_optional_interval_var(s_var[v], int(p.dur[v, d]), e_var[v], lit, "")
            )
            lits[d] = lit
            m.add_hint(lit, int(assign[v]) == d)
        m.add_exactly_one(list(lits.values()))
        on[v] = lits
        m.add_hint(s_var[v], int(start[v]))
        m.add_hint(e_var[v], int(fin[v]))
        m.add(obj >= e_var[v] + int(tail[v]) - int(p.min_dur[v]))
    for ivs in dev_iv.values():
        if len(ivs) > 1:
            m.add_no_overlap(ivs)
    for v in window.tolist():
        for u, k in p.preds[v]:
            if in_w[u]:
                m.add(s_var[v] >= e_var[u])
                for a, la in on[u].items():
                    for b, lb in on[v].items():
                        c = int(p.comm[k, a, b])
                        if a != b and c:
                            m.add(s_var[v] >= e_var[u] + c).only_enforce_if([la, lb])
            else:
                a = int(assign[u])
                for b, lb in on[v].items():
                    m.add(s_var[v] >= int(fin[u]) + int(p.comm[k, a, b])).only_enforce_if(lb)
    m.minimize(obj)
    solver = cp_model.CpSolver()
    solver.parameters.max_time_in_seconds = max(0.05, time_limit)
    solver.parameters.num_workers = workers
    solver.parameters.random_seed = seed
    status = solver.solve(m)
    if status not in (cp_model.OPTIMAL, cp_model.FEASIBLE):
        return None
    new_assign = assign.copy()
    new_start = start.copy()
    for v in window.tolist():
        new_start[v] = solver.value(s_var[v])
        new_assign[v] = next(d for d, lit in on[v].items() if solver.boolean_value(lit))
    return new_assign, new_start


def solve_lns(
    problem: Problem,
    *,
    time_limit: float = 10.0,
    seed: int = 0,
    hint: Plan | None = None,
    progress: ProgressCallback | None = None,
    workers: int = 2,
    stop: StopToken | None = None,
    window: int = 48,
    step_time: float = 1.0,
) -> Plan:
    """Improve ``hint`` (default: HEFT) by repeated window re-optimisation."""
    time_limit = check_time_limit(time_limit)
    seed = check_seed(seed)
    stop = stop or GLOBAL_STOP
    t0 = time.perf_counter()
    p = problem
    if hint is None:
        from hetsched.schedule.heuristics import solve_heft

        hint = solve_heft(p, time_limit=time_limit, seed=seed)
    assign, start = schedule_arrays(hint, p)
    start, xfer = retime(p, assign, priority_order(p, start))
    best_ms = _makespan(p, assign, start)
    start_ms = best_ms
    lb = lower_bound(p, use_lp=p.n <= 2000)
    _, tail = heads_and_tails(p)
    rng = np.random.default_rng(seed)
    size = min(window, p.n)
    steps = accepted = 0
    while best_ms > lb and not stop.is_set():
        remaining = time_limit - (time.perf_counter() - t0)
        if remaining < 0.05:
            break
        w = _window(p, assign, start, size, rng)
        sub = _solve_window(
            p, assign, start, w, tail, min(step_time, remaining), seed + steps, workers
        )
        steps += 1
        if sub is None:
            continue
        cand_assign, cand_key = sub
        cand_start, cand_xfer = retime(p, cand_assign, priority_order(p, cand_key))
        ms = _makespan(p, cand_assign, cand_start)
        if ms <= best_ms:
            if ms < best_ms:
                accepted += 1
                report(
                    progress,
                    Progress("lns", ms * p.quantum, lb * p.quantum, time.perf_counter() - t0),
                )
            assign, start, xfer, best_ms = cand_assign, cand_start, cand_xfer, ms
    status = "optimal" if best_ms <= lb else "feasible"
    return plan_from_schedule(
        p,
        assign=assign,
        start=start,
        solver="lns",
        status=status,
        lower_bound=lb,
        solve_time=time.perf_counter() - t0,
        stats={"steps": steps, "improvements": accepted, "start_makespan": start_ms * p.quantum},
        transfer_start=xfer,
        interrupted=stop.is_set(),
    )
