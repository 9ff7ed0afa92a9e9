"""Window load bound: the load LP where each device's work must fit between heads and tails.

The load LP (:func:`~hetsched.schedule.bounds.load_bound`) lets every device work from 0 to
the makespan ``T``. But an op on device ``d`` cannot start before its head ``h[v, d]`` (the
longest path to it when it runs on ``d``, transfers included) and leaves at least its tail
``q[v, d]`` (the longest path after it) before ``T``. So for every device ``d`` and every
pair of thresholds ``(r, s)``, the ops placed on ``d`` with ``h[v, d] >= r`` and
``q[v, d] >= s`` run inside ``[r, T - s]``:

    sum over those ops of dur[v, d] * x[v, d]  <=  T - r - s

An op that may start before ``r`` but must end by ``T - s`` still spends at least
``h + dur - r`` inside (it cannot be split), and the mirror holds on the right; the rows
count those parts too (:func:`_window_part`), so the LP cannot fill an idle start with a
sliver of a long op.

With none of those ops on ``d`` the row says ``T >= r + s``, true only up to a proven
bound (the critical path ``cp``). Above it the row becomes ``load <= T - cp - (r + s - cp)
* used`` with ``used >= x[v, d]`` for each of those ops: ``used`` is 1 when one of them is
on ``d`` (the window holds) and may be 0 when none is (``T >= cp``).

With fractional assignments ``x`` this is an LP (GLOP, through
:func:`~hetsched.schedule.bounds.verified.lp_minimum`); every schedule satisfies it, so its
optimum ``T`` is a lower bound. On pipelines (attention heads: NPU linears first, CPU softmax
after, a ``cat`` at the end) it adds the fill and drain times the plain load LP misses.

Examples
--------
>>> import numpy as np
>>> from hetsched.problem import Problem
>>> p = Problem.from_arrays(names=["a", "b", "c"], devices=["x", "y"],
...     exec_time=np.array([[2.0, 9.0], [9.0, 2.0], [2.0, 9.0]]),
...     edges=[(0, 1, 1.0), (1, 2, 1.0)], quantum=1.0)
>>> from hetsched.schedule.bounds import load_bound
>>> load_bound(p), window_load_bound(p)
(4, 6)
"""

from __future__ import annotations

import math
import weakref

import numpy as np

from hetsched.problem import Problem
from hetsched.schedule.bounds.load import new_lp_model
from hetsched.schedule.bounds.paths import device_finish_times, device_tail_times, serial_horizon
from hetsched.schedule.bounds.verified import lp_minimum

__all__ = [
    "WINDOW_MAX_OPS",
    "device_heads_tails",
    "window_load_bound",
    "window_load_lp",
    "window_load_within",
]

# The LP's size grows with ops x thresholds^2; above this many ops the bound is skipped.
WINDOW_MAX_OPS = 3000
# The window LP's solver and LP algorithm (:func:`~hetsched.schedule.bounds.verified.lp_minimum`):
# GLOP's dual simplex, faster here than HiGHS (0.3-1.5 s against 0.7-2.0 s).
WINDOW_LP_METHOD = ("GLOP", "DUAL_SIMPLEX")
# Heads and tails combine the inputs (outputs) of an op two at a time among this many.
HEAD_PAIRS = 8
_BIG = np.iinfo(np.int64).max // 8
_SOLVED: weakref.WeakKeyDictionary[Problem, dict[int, tuple[float, np.ndarray] | None]] = (
    weakref.WeakKeyDictionary()
)


def device_heads_tails(p: Problem) -> tuple[np.ndarray, np.ndarray]:
    """``(h, q)``, shape ``(n, D)``: earliest start of ``v`` on ``d`` and the least time
    between its end and the makespan (``_BIG`` where ``v`` may not run on ``d``), with
    pairs of the :data:`HEAD_PAIRS` latest inputs (earliest outputs) that share a device
    run one after the other."""
    p = p.relaxation()  # bounds of the question asked
    busy = np.where(p.allowed, p.dur, 0)
    head = np.where(p.allowed, device_finish_times(p, pairs=HEAD_PAIRS) - busy, _BIG)
    return head, np.where(p.allowed, device_tail_times(p, pairs=HEAD_PAIRS) - busy, _BIG)


def _thresholds(values: np.ndarray, count: int) -> list[int]:
    vals = np.unique(values[values < _BIG])
    if vals.size <= count:
        return vals.tolist()
    return np.unique(np.quantile(vals, np.linspace(0, 1, count), method="lower")).tolist()


def _window_part(hs: np.ndarray, qs: np.ndarray, ps: np.ndarray, r: int, s: int) -> np.ndarray:
    """Least time each op spends inside ``[r, T - s]`` on the device.

    Ops with head ``>= r`` and tail ``>= s`` run wholly inside; one that may start before
    ``r`` but ends by ``T - s`` (tail ``>= s``) still runs ``head + dur - r`` inside (it
    cannot start before its head, nor be split), and the mirror on the right; ops that may
    overhang both ends count nothing.
    """
    left = np.where(hs >= r, ps, np.maximum(0, hs + ps - r))
    right = np.where(qs >= s, ps, np.maximum(0, qs + ps - s))
    return np.where((hs >= r) | (qs >= s), np.minimum(left, right), 0)


def window_load_bound(p: Problem, *, thresholds: int = 8, time_limit: float | None = None) -> int:
    """The window load LP's verified minimum, rounded up (units); 0 above
    :data:`WINDOW_MAX_OPS`, or if the LP is not solved within ``time_limit`` seconds."""
    return window_load_within(p, thresholds=thresholds, time_limit=time_limit)[0]


def window_load_within(
    p: Problem, *, thresholds: int = 8, time_limit: float | None = None
) -> tuple[int, bool]:
    """:func:`window_load_bound`, and whether it is final: ``False`` where the LP solver
    stopped at ``time_limit`` (then 0)."""
    solved, complete = _window_lp(p.relaxation(), thresholds, time_limit)
    return (0 if solved is None else max(0, math.ceil(solved[0]))), complete


def window_load_lp(
    p: Problem, *, thresholds: int = 8, time_limit: float | None = None
) -> tuple[float, np.ndarray] | None:
    """``(T, x)``: the window load LP's verified minimum
    (:func:`~hetsched.schedule.bounds.verified.lp_minimum`) and its fractional assignment
    ``x[v, d]``; ``None`` above :data:`WINDOW_MAX_OPS` ops, if the LP solver fails, or if it
    has not solved the LP within ``time_limit`` seconds (at 1,000 ops on 8 devices GLOP
    took 11.6 s)."""
    return _window_lp(p.relaxation(), thresholds, time_limit)[0]  # bounds of the question asked


def _window_lp(
    p: Problem, thresholds: int, time_limit: float | None
) -> tuple[tuple[float, np.ndarray] | None, bool]:
    """:func:`_solve_window_lp`, once per problem (the bound and LP-rounded HEFT both ask for
    it); a run cut short is not kept."""
    cache = _SOLVED.setdefault(p, {})
    if thresholds in cache:
        return cache[thresholds], True
    solved, complete = _solve_window_lp(p, thresholds, time_limit)
    if complete:
        cache[thresholds] = solved
    return solved, complete


def _solve_window_lp(
    p: Problem, thresholds: int, time_limit: float | None
) -> tuple[tuple[float, np.ndarray] | None, bool]:
    """The LP's optimum and assignment (``None`` where there is none), and whether that is
    final (not cut short by ``time_limit``)."""
    if p.n > WINDOW_MAX_OPS or p.n == 0:
        return None, True
    head, tail = device_heads_tails(p)
    solver = new_lp_model()
    # Every constraint below with no op placed on ``d`` reads ``T >= r + s``: only valid
    # where ``r + s`` is at most a proven bound, the critical path.
    cp = int(np.where(p.allowed, head + p.dur + tail, _BIG).min(axis=1).max())
    t = solver.NumVar(cp, max(cp, serial_horizon(p)), "T")  # boxed: a verified bound
    x = {}
    for v in range(p.n):
        xs = []
        for d in p.allowed_devices[v]:
            x[v, d] = solver.NumVar(0, 1, f"x_{v}_{d}")
            xs.append(x[v, d])
        solver.Add(solver.Sum(xs) == 1)
    for d in range(p.num_devices):
        ops = np.flatnonzero(p.allowed[:, d])
        if ops.size == 0:
            continue
        hs, qs, ps = head[ops, d], tail[ops, d], p.dur[ops, d]
        for r in _thresholds(hs, thresholds):
            for s in _thresholds(qs, thresholds):
                coef = _window_part(hs, qs, ps, r, s)
                keep = coef > 0
                sel = ops[keep]
                parts = zip(sel.tolist(), coef[keep].tolist(), strict=True)
                terms = [int(c) * x[v, d] for v, c in parts]
                if not terms:
                    continue
                if r + s <= cp:
                    solver.Add(solver.Sum(terms) <= t - (r + s))
                    continue
                # past the critical path the window binds only if some op of ``sel`` is
                # on ``d``: ``used`` (>= each x) is that indicator, relaxed
                used = solver.NumVar(0, 1, f"used_{d}_{r}_{s}")
                for v in sel.tolist():
                    solver.Add(used >= x[v, d])
                solver.Add(solver.Sum(terms) <= t - cp - (r + s - cp) * used)
    solver.Minimize(t)
    found, final = lp_minimum(solver, time_limit, method=WINDOW_LP_METHOD)
    if found is None or not math.isfinite(found.bound):
        return None, final
    frac = np.zeros((p.n, p.num_devices))
    for (v, d), var in x.items():
        frac[v, d] = found.x[var.index()]
    return (found.bound, frac), True
