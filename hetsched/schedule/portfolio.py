"""Portfolio: heuristics first, bounds, then exact search seeded with the best plan.

Within one time budget: HEFT, PEFT and CPOP (milliseconds), the lower bounds, and if the
best heuristic is not already proven optimal, CP-SAT (small and medium graphs) or
large-neighbourhood search around the best plan (large graphs), hinted with the best plan
so far. Returns the best plan with the best bound any method proved.

Examples
--------
>>> import numpy as np
>>> from hetsched.problem import Problem
>>> p = Problem.from_arrays(names=["a", "b", "c"], devices=["x", "y"],
...     exec_time=np.array([[2.0, 3.0], [4.0, 4.0], [4.0, 4.0]]),
...     edges=[(0, 1, 1.0), (0, 2, 1.0)], comm_latency=np.array([[0, 1], [1, 0]]), quantum=1.0)
>>> plan = solve_portfolio(p, time_limit=5, seed=0, workers=1)
>>> plan.status, plan.makespan, plan.solver
('optimal', 7.0, 'portfolio')
"""

from __future__ import annotations

import time
from typing import Any

from hetsched.plan import Plan
from hetsched.problem import Problem
from hetsched.schedule.bounds import lower_bound
from hetsched.schedule.common import (
    GLOBAL_STOP,
    Progress,
    ProgressCallback,
    StopToken,
    check_seed,
    check_time_limit,
    report,
)
from hetsched.schedule.heuristics import solve_cpop, solve_heft, solve_peft

__all__ = ["CPSAT_MAX_OPS", "LOCAL_SEARCH_SHARE", "solve_portfolio"]

# Above this many ops a monolithic CP-SAT model stalls on 2 cores; LNS takes over.
CPSAT_MAX_OPS = 400
# Fraction of the remaining budget given to local search before the exact stage.
LOCAL_SEARCH_SHARE = 0.3


def solve_portfolio(
    problem: Problem,
    *,
    time_limit: float = 10.0,
    seed: int = 0,
    hint: Plan | None = None,
    progress: ProgressCallback | None = None,
    workers: int = 2,
    stop: StopToken | None = None,
) -> Plan:
    """Best plan and best bound of heuristics + exact search within ``time_limit``."""
    time_limit = check_time_limit(time_limit)
    seed = check_seed(seed)
    stop = stop or GLOBAL_STOP
    t0 = time.perf_counter()
    heuristics = {
        "heft": solve_heft(problem, time_limit=time_limit, seed=seed),
        "peft": solve_peft(problem, time_limit=time_limit, seed=seed),
        "cpop": solve_cpop(problem, time_limit=time_limit, seed=seed),
    }
    candidates = list(heuristics.values()) + ([hint] if hint is not None else [])
    best = min(candidates, key=lambda pl: (pl.makespan, pl.solver))
    q = problem.quantum
    lb_units = lower_bound(problem, use_lp=problem.n <= 2000)
    bound = max(lb_units * q, max(pl.lower_bound for pl in candidates))
    report(progress, Progress(best.solver, best.makespan, bound, time.perf_counter() - t0))
    stats: dict[str, Any] = {
        "heuristics": {k: v.makespan for k, v in heuristics.items()},
        "path": [best.solver],
    }
    remaining = time_limit - (time.perf_counter() - t0)
    large = problem.n > CPSAT_MAX_OPS
    if large and best.makespan > bound * (1 + 1e-12) and remaining > 0.1 and not stop.is_set():
        # Large graphs: a share of the budget for cheap critical-path moves before LNS. (On
        # graphs CP-SAT takes whole, measured: the time is better spent in CP-SAT.)
        from hetsched.schedule.localsearch import solve_local_search

        ls = solve_local_search(
            problem,
            time_limit=max(0.05, LOCAL_SEARCH_SHARE * remaining),
            seed=seed,
            hint=best,
            progress=progress,
            stop=stop,
        )
        stats["path"].append("ls")
        stats["ls"] = dict(ls.stats)
        if ls.makespan < best.makespan:
            best = ls
        remaining = time_limit - (time.perf_counter() - t0)
    if best.makespan > bound * (1 + 1e-12) and remaining > 0.05 and not stop.is_set():
        if problem.n <= CPSAT_MAX_OPS:
            from hetsched.schedule.cpsat import solve_cpsat

            exact = solve_cpsat(
                problem,
                time_limit=remaining,
                seed=seed,
                hint=best,
                progress=progress,
                workers=workers,
                stop=stop,
            )
        else:
            from hetsched.schedule.lns import solve_lns

            exact = solve_lns(
                problem,
                time_limit=remaining,
                seed=seed,
                hint=best,
                progress=progress,
                workers=workers,
                stop=stop,
            )
        stats["path"].append(exact.solver)
        stats[exact.solver] = dict(exact.stats)
        bound = max(bound, exact.lower_bound)
        if exact.makespan <= best.makespan:
            best = exact
    status = "optimal" if best.makespan <= bound * (1 + 1e-12) else best.status
    if status == "heuristic" and "cpsat" in stats["path"]:
        status = "feasible"
    return best.with_(
        solver="portfolio",
        status=status,
        lower_bound=min(bound, best.makespan),
        solve_time=time.perf_counter() - t0,
        stats={**stats, "winner": best.solver},
        interrupted=stop.is_set(),
    )
