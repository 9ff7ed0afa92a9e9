"""Lower bounds on the makespan: the floor every reported gap is measured to.

* :func:`critical_path_bound` - longest path, each op on any device it supports, with a
  dynamic program over (op, device) so transfers forced by support are counted.
* :func:`load_bound` - no device can finish before it has done its share of the work:
  an LP over fractional assignments, min T s.t. per-device load <= T.
* :func:`lp_bound` - the LP relaxation that couples both: fractional assignment, start
  times with precedence, per-device load (transfers relaxed to zero).
* :func:`homogeneous_bound` - for identical devices, ``ceil(total work / P)`` and the
  critical path.
* :func:`~hetsched.schedule.series.series_bound` - the sum over the segments between ops
  every schedule runs alone (layer boundaries) of each segment's bound, and
  :func:`~hetsched.schedule.windows.window_load_bound` - the load LP with heads and tails.

All results are integer units of the problem, rounded up (durations are integers).

Examples
--------
>>> import numpy as np
>>> from hetsched.problem import Problem
>>> p = Problem.from_arrays(names=["a", "b", "c"], devices=["x", "y"],
...     exec_time=np.array([[2.0, 3.0], [4.0, 4.0], [4.0, 4.0]]),
...     edges=[(0, 1, 1.0), (0, 2, 1.0)], quantum=1.0)
>>> critical_path_bound(p), load_bound(p)
(6, 5)
>>> lower_bound(p)
6
"""

from __future__ import annotations

import itertools
import math
import time
import weakref
from collections.abc import Callable

import numpy as np

from hetsched.plan import Plan
from hetsched.problem import Problem
from hetsched.schedule.common import ProgressCallback

__all__ = [
    "LOAD_LP_MAX_OPS",
    "bound_report",
    "critical_path_bound",
    "device_finish_times",
    "device_tail_times",
    "heads_and_tails",
    "heads_and_tails_reference",
    "load_bound",
    "lower_bound",
    "lp_bound",
    "quick_lower_bound",
    "series_lower_bound",
    "solve_bounds",
]

_BIG = np.iinfo(np.int64).max // 8
# Above this many ops the load bound uses the Lagrangian dual instead of a GLOP model.
LOAD_LP_MAX_OPS = 2000


def device_finish_times(
    problem: Problem, *, first_on: int | None = None, pairs: int = 0
) -> np.ndarray:
    """``H[v, d]``: earliest finish of ``v`` if placed on ``d`` (inf where not allowed).

    ``first_on``: op 0 is pinned to that device and finishes at 0, so the other finishes
    count from its end (a segment after a series cut on a given device).

    ``pairs``: also take, for every two of the ``pairs`` latest-arriving inputs of ``v``,
    the least time both can have arrived over every pair of devices for them. Two inputs
    made on one device run one after the other there: the later ends no earlier than the
    earlier head plus both durations (an attention head's q and k linears on one NPU: its
    ``matmul`` waits for both, not for one).
    """
    p = problem
    dur = np.where(p.allowed, p.dur, _BIG)
    fin = np.where(p.allowed, p.dur, _BIG).astype(np.int64)
    if first_on is not None:
        fin[0] = _BIG
        fin[0, first_on] = 0
    for v in range(0 if first_on is None else 1, p.n):
        ready = np.zeros(p.num_devices, dtype=np.int64)
        arrivals = []
        for u, k in p.preds[v]:
            # arrival on each device b from each device a: fin[u, a] + comm[k, a, b]
            arr = fin[u][:, None] + p.comm[k]
            ready = np.maximum(ready, arr.min(axis=0))
            if pairs:
                arrivals.append((fin[u] - dur[u], dur[u], p.comm[k], arr))
        if len(arrivals) > 1:
            ready = np.maximum(ready, _pair_ready(arrivals, pairs))
        fin[v] = np.where(p.allowed[v], np.minimum(ready + dur[v], _BIG), _BIG)
    return fin


def _pair_ready(
    arrivals: list[tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]], pairs: int
) -> np.ndarray:
    """Per device ``d``: the least time two inputs can both have arrived on ``d``, the
    worst pair among the ``pairs`` latest-arriving inputs. Each input is ``(head[a],
    dur[a], comm[a, d], arrival[a, d])`` of its producer on device ``a``; also serves the
    tails, mirrored (releases are then the transfers out, durations the successors')."""
    latest = sorted(arrivals, key=lambda x: -int(x[3].min()))[:pairs]
    d_count = latest[0][3].shape[1]
    diag = np.arange(d_count)
    out = np.zeros(d_count, dtype=np.int64)
    for (h1, p1, c1, x), (h2, p2, c2, y) in itertools.combinations(latest, 2):
        # producers on devices a != b: independent; on one device a: one after the other
        both = np.maximum(x[:, None, :], y[None, :, :])
        serial = np.minimum(h1, h2) + p1 + p2
        both[diag, diag, :] = np.maximum(np.maximum(x, y), serial[:, None] + np.minimum(c1, c2))
        out = np.maximum(out, both.reshape(d_count * d_count, d_count).min(axis=0))
    return out


def device_tail_times(problem: Problem, *, pairs: int = 0) -> np.ndarray:
    """``Q[v, d]``: least time from the start of ``v`` on ``d`` to the end of the schedule,
    ``v`` included (inf where not allowed). ``pairs``: as in :func:`device_finish_times`,
    mirrored (two successors on one device run one after the other)."""
    p = problem
    dur = np.where(p.allowed, p.dur, _BIG)
    tail_d = np.where(p.allowed, p.dur, _BIG).astype(np.int64)
    for v in range(p.n - 1, -1, -1):
        after = np.zeros(p.num_devices, dtype=np.int64)
        departures = []
        for s, k in p.succs[v]:
            # from the end of v on d to the end, through s on b: comm[k, d, b] + tail[s, b]
            via = p.comm[k].T + tail_d[s][:, None]
            after = np.maximum(after, via.min(axis=0))
            if pairs:
                departures.append((tail_d[s] - dur[s], dur[s], p.comm[k].T, via))
        if len(departures) > 1:
            after = np.maximum(after, _pair_ready(departures, pairs))
        tail_d[v] = np.where(p.allowed[v], np.minimum(dur[v] + after, _BIG), _BIG)
    return tail_d


def critical_path_bound(problem: Problem) -> int:
    """Longest path with every op on its best device and unavoidable transfers."""
    fin = device_finish_times(problem)
    return int(fin.min(axis=1).max())


def heads_and_tails(problem: Problem) -> tuple[np.ndarray, np.ndarray]:
    """Earliest start (head) and minimal remaining time including the op itself (tail).

    Any schedule satisfies ``start[v] >= head[v]`` and ``makespan >= start[v] + tail[v]``.
    """
    from hetsched.schedule.scale import heads_and_tails_fast

    # Level-by-level numpy (equal to the per-op loop; tested in tests/schedule/test_scale.py).
    return heads_and_tails_fast(problem)


def heads_and_tails_reference(problem: Problem) -> tuple[np.ndarray, np.ndarray]:
    """The per-op loop :func:`heads_and_tails` is tested against (slow; tests only)."""
    p = problem
    fin = device_finish_times(p)
    dur = np.where(p.allowed, p.dur, _BIG)
    # earliest start over the devices the op may use (fin - dur is 0 on the others)
    head = np.maximum(0, np.where(p.allowed, fin - dur, _BIG).min(axis=1))
    return head.astype(np.int64), device_tail_times(p).min(axis=1)


def load_bound(problem: Problem) -> int:
    """Minimum over fractional assignments of the maximum device load (an LP)."""
    p = problem
    if p.num_devices == 1:
        return int(p.dur[:, 0].sum())
    identical = len(p.device_groups) == 1
    if identical:
        return math.ceil(p.min_dur.sum() / p.num_devices)
    if p.n > LOAD_LP_MAX_OPS:
        from hetsched.schedule.scale import load_bound_dual

        # Building the GLOP model takes ~10 s at 12k ops; the Lagrangian dual of the same LP
        # is a valid bound for any multipliers and lands within 1e-4 of it in 0.2 s.
        return load_bound_dual(p)
    return math.ceil(_load_lp(p) - 1e-6)


def _load_lp(p: Problem) -> float:
    from ortools.linear_solver import pywraplp

    solver = pywraplp.Solver.CreateSolver("GLOP")
    if solver is None:  # pragma: no cover - GLOP ships with every OR-Tools wheel
        return float(p.min_dur.sum()) / p.num_devices
    t = solver.NumVar(0, solver.infinity(), "T")
    load: list[list] = [[] for _ in range(p.num_devices)]
    for v in range(p.n):
        xs = []
        for d in p.allowed_devices[v]:
            x = solver.NumVar(0, 1, f"x_{v}_{d}")
            xs.append(x)
            if p.dur[v, d]:
                load[d].append(int(p.dur[v, d]) * x)
        solver.Add(solver.Sum(xs) == 1)
    for d in range(p.num_devices):
        if load[d]:
            solver.Add(solver.Sum(load[d]) <= t)
    solver.Minimize(t)
    if solver.Solve() != pywraplp.Solver.OPTIMAL:
        return float(p.min_dur.sum()) / p.num_devices
    return float(t.solution_value())


def lp_bound(problem: Problem, *, max_ops: int = 3000) -> int:
    """LP relaxation coupling fractional assignment, precedence and device load.

    Variables ``x[v,d]`` (fraction of ``v`` on ``d``) and ``S[v]``; ``S[v] >= S[u] + sum_d
    dur[u,d] x[u,d]``; ``T >= S[v] + sum_d dur[v,d] x[v,d]``; ``T >= load_d``. Transfers
    are relaxed to zero. Skipped (returns 0) above ``max_ops`` ops.
    """
    p = problem
    if p.n > max_ops:
        return 0
    from ortools.linear_solver import pywraplp

    solver = pywraplp.Solver.CreateSolver("GLOP")
    if solver is None:  # pragma: no cover
        return 0
    inf = solver.infinity()
    t = solver.NumVar(0, inf, "T")
    dur_expr = []
    starts = [solver.NumVar(0, inf, f"S_{v}") for v in range(p.n)]
    load: list[list] = [[] for _ in range(p.num_devices)]
    for v in range(p.n):
        xs = {d: solver.NumVar(0, 1, f"x_{v}_{d}") for d in p.allowed_devices[v]}
        solver.Add(solver.Sum(list(xs.values())) == 1)
        terms = [int(p.dur[v, d]) * x for d, x in xs.items() if p.dur[v, d]]
        dur_expr.append(solver.Sum(terms) if terms else 0)
        for d, x in xs.items():
            if p.dur[v, d]:
                load[d].append(int(p.dur[v, d]) * x)
        solver.Add(t >= starts[v] + dur_expr[v])
    for k in range(p.num_edges):
        u, v = int(p.edge_src[k]), int(p.edge_dst[k])
        solver.Add(starts[v] >= starts[u] + dur_expr[u])
    for d in range(p.num_devices):
        if load[d]:
            solver.Add(solver.Sum(load[d]) <= t)
    solver.Minimize(t)
    if solver.Solve() != pywraplp.Solver.OPTIMAL:
        return 0
    return math.ceil(t.solution_value() - 1e-6)


# A Problem is immutable, and every heuristic, the portfolio and the exact solvers ask for
# its bounds: compute each once per problem (the load LP alone costs as much as HEFT).
_BOUND_MEMO: weakref.WeakKeyDictionary[Problem, dict[str, int]] = weakref.WeakKeyDictionary()


def _memo(problem: Problem, key: str, compute: Callable[[Problem], int]) -> int:
    cache = _BOUND_MEMO.setdefault(problem, {})
    if key not in cache:
        cache[key] = compute(problem)
    return cache[key]


def series_lower_bound(problem: Problem) -> int:
    """:func:`~hetsched.schedule.series.series_bound`, computed once per problem."""
    from hetsched.schedule.series import series_bound

    return _memo(problem, "series", series_bound)


def quick_lower_bound(problem: Problem) -> int:
    """The cheap bounds only (critical path, load, series); no LP over the whole graph."""
    return _memo(
        problem,
        "quick",
        lambda p: max(critical_path_bound(p), load_bound(p), series_lower_bound(p)),
    )


def lower_bound(problem: Problem, *, use_lp: bool = True) -> int:
    """Best of all bounds, in integer units."""
    from hetsched.schedule.windows import window_load_bound

    lb = quick_lower_bound(problem)
    if use_lp:
        lb = max(lb, _memo(problem, "lp", lp_bound), _memo(problem, "window", window_load_bound))
    return lb


def bound_report(problem: Problem) -> dict[str, int]:
    """Every bound by name (units), for explaining a gap."""
    from hetsched.schedule.windows import window_load_bound

    return {
        "critical_path": critical_path_bound(problem),
        "load": load_bound(problem),
        "lp": lp_bound(problem),
        "window": window_load_bound(problem),
        "series": series_lower_bound(problem),
    }


def solve_bounds(
    problem: Problem,
    *,
    time_limit: float = 10.0,
    seed: int = 0,
    hint: Plan | None = None,
    progress: ProgressCallback | None = None,
) -> Plan:
    """The bounds as a "solver": HEFT's plan carrying the best proven lower bound."""
    from hetsched.schedule.heuristics import solve_heft

    t0 = time.perf_counter()
    report = bound_report(problem)
    plan = hint if hint is not None else solve_heft(problem, time_limit=time_limit, seed=seed)
    lb = max(report.values())
    return plan.with_(
        lower_bound=max(plan.lower_bound, lb * problem.quantum),
        solver="bounds",
        solve_time=time.perf_counter() - t0,
        stats={**plan.stats, "bounds": report},
    )
