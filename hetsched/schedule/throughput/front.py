"""Period against latency: the trade a real-time stream makes (a camera frame has a deadline).

:func:`period_latency_front` solves the throughput objective (the least period, and the
latency of one iteration at it), the latency objective (the least latency, and the period
its plan folds into when run back to back), and between them, at periods spaced
geometrically, the least latency of a modulo schedule at that period (CP-SAT, hinted with
the neighbouring point). Dominated points are dropped, so latency falls as the period
grows. Each point carries its plan (a periodic plan the validator and the executor take)
and the proven bound on its latency (the latency problem's bound, or CP-SAT's at that
period when higher).

Examples
--------
>>> import numpy as np
>>> from hetsched.problem import Problem
>>> p = Problem.from_arrays(names=list("abcd"), devices=["x", "y"],
...     exec_time=np.array([[3.0, 6.0], [1.0, 2.0], [2.0, 2.0], [2.0, 1.0]]),
...     edges=[(0, 1, 1.0), (1, 2, 1.0), (2, 3, 1.0)], quantum=1.0)
>>> front = period_latency_front(p, points=4, time_limit=8, workers=1)
>>> [(x.period, x.latency) for x in front][0][0], front[-1].latency
(4.0, 7.0)
>>> all(a.latency > b.latency for a, b in zip(front, front[1:]))
True
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

import numpy as np

from hetsched.errors import UsageError
from hetsched.plan import Plan, overflow, plan_from_schedule, schedule_arrays
from hetsched.problem import Problem
from hetsched.schedule.bounds import quick_lower_bound
from hetsched.schedule.throughput.modulo import (
    folded_ii,
    latency_at,
    list_modulo,
    validate_modulo,
)
from hetsched.schedule.throughput.modulo_plan import Carried, carried_index, offsets

if TYPE_CHECKING:
    from hetsched.graph.opgraph import OpGraph

__all__ = ["PeriodPoint", "period_latency_front", "plot_period_front"]


@dataclass(frozen=True)
class PeriodPoint:
    """One point of the front: the period (time between iterations), the latency of one
    iteration, its proven bound and whether it is proven least at that period; ``plan``
    is the periodic plan (objective ``throughput``)."""

    period: float
    latency: float
    latency_bound: float
    proven: bool
    plan: Plan

    def row(self) -> dict[str, Any]:
        """The point without its plan (a JSON row)."""
        return {
            "period": self.period,
            "latency": self.latency,
            "latency_bound": self.latency_bound,
            "proven": self.proven,
        }


def period_latency_front(
    problem: Problem,
    graph: OpGraph | None = None,
    *,
    points: int = 6,
    time_limit: float = 30.0,
    carried: Carried = (),
    seed: int = 0,
    workers: int | None = None,
) -> list[PeriodPoint]:
    """The front of period against latency (see the module docstring), best period first;
    ``time_limit`` for the whole sweep (about 35% for each end, the rest shared)."""
    from hetsched.schedule.latency.portfolio import solve_portfolio
    from hetsched.schedule.throughput import solve_objective

    p, q, w = problem, problem.quantum, workers or 1
    if not p.is_device_table:
        msg = (
            f"the period-latency front needs one mode per (op, device); {p.name!r} has more "
            "(weights that may stream, precisions): solve --objective throughput for its period"
        )
        raise UsageError(msg)
    idx = carried_index(p, carried)
    fast = solve_objective(
        p, graph, objective="throughput", time_limit=0.35 * time_limit, seed=seed,
        workers=w, carried=carried,
    )  # fmt: skip
    assert fast.modulo is not None
    r = fast.modulo
    floor = quick_lower_bound(p)  # no iteration is faster than one inference alone
    found: list[tuple[int, np.ndarray, np.ndarray, int, bool]] = []
    a0, s0 = schedule_arrays(fast, p)
    found.append((round(r.ii / q), a0, s0, floor, False))
    single = solve_portfolio(p, time_limit=0.35 * time_limit, seed=seed, workers=w)
    a1, s1 = schedule_arrays(single, p)
    end = folded_ii(p, a1, s1, idx)
    if end is not None and overflow(p, p.device_mode[np.arange(p.n), a1]) is not None:
        end = None  # its device modes do not fit the periodic (static) memory model
    if end is not None:
        proven = single.status == "optimal"
        found.append((end, a1, s1, max(floor, round(single.lower_bound / q)), proven))
    first = found[0][0]
    if end is not None and end > first + 1 and points > 2:
        inner = np.geomspace(first, end, num=points)[1:-1].round().astype(np.int64)
        share = 0.3 * time_limit / max(1, inner.size)
        for ii in sorted(set(inner.tolist()) - {first, end}):
            point = _point(p, int(ii), idx, (a1, a0), floor, share, seed, w)
            if point is not None:
                found.append(point)
    # the best period again, for its latency: list schedules and CP-SAT from the steady plan
    better = _point(p, first, idx, (a0,), floor, 0.3 * time_limit / points, seed, w)
    if better is not None and _latency(p, better[1], better[2]) < _latency(p, a0, s0):
        found[0] = better
    out: list[PeriodPoint] = []
    for ii, assign, start, bound, proven in sorted(found, key=lambda x: x[0]):
        latency = _latency(p, assign, start)
        if out and latency * q >= out[-1].latency - 1e-12:
            continue  # dominated: a shorter period already has this latency or less
        start = start - start.min()
        result = replace(r, ii=ii * q, offset=offsets(p, start, ii))
        plan = plan_from_schedule(
            p, assign=assign, start=start, solver="front", searched=True,
            lower_bound=min(bound, latency), objective="throughput", modulo=result,
        )  # fmt: skip
        validate_modulo(plan, p)
        proven_here = proven or bound >= latency
        out.append(PeriodPoint(ii * q, latency * q, min(bound, latency) * q, proven_here, plan))
    return out


def _point(
    p: Problem,
    ii: int,
    idx: list[tuple[int, int, int]],
    assigns: tuple[np.ndarray, ...],
    floor: int,
    limit: float,
    seed: int,
    workers: int,
) -> tuple[int, np.ndarray, np.ndarray, int, bool] | None:
    """The least latency found at period ``ii``: list schedules of each of ``assigns``,
    then CP-SAT from the best of them; ``(ii, assign, start, latency bound, proven)``, or
    ``None`` when neither found one."""
    heur = [(a, st) for a in assigns if (st := list_modulo(p, a, ii, idx)) is not None]
    best = min(heur, key=lambda x: _latency(p, x[0], x[1]), default=None)
    got = latency_at(p, ii, idx, time_limit=limit, seed=seed, workers=workers, hint=best)
    bound = max(floor, got[2]) if got is not None else floor
    if got is not None and (best is None or _latency(p, got[0], got[1]) <= _latency(p, *best)):
        return ii, got[0], got[1], bound, got[3]
    if best is None:
        return None
    return ii, best[0], best[1], bound, False


def _latency(p: Problem, assign: np.ndarray, start: np.ndarray) -> int:
    """First start to last finish of one iteration (units)."""
    return int((start + p.dur[np.arange(p.n), assign]).max() - start.min())


def plot_period_front(points: list[PeriodPoint], path: Any, *, title: str) -> None:
    """Latency (µs) against period (µs), with each point's proven latency bound, written
    as a PNG to ``path``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4))
    xs = [x.period * 1e6 for x in points]
    ax.plot(xs, [x.latency * 1e6 for x in points], "o-", label="plan")
    ax.plot(xs, [x.latency_bound * 1e6 for x in points], "v:", label="proven latency bound")
    ax.set_xlabel("period between iterations (µs)")
    ax.set_ylabel("latency of one iteration (µs)")
    ax.set_title(title)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
