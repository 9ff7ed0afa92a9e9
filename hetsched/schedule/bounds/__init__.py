"""Lower bounds on the makespan: the floor every reported gap is measured to.

* :func:`critical_path_bound` - longest path, each op on any device it supports, with a
  dynamic program over (op, device) so transfers forced by support are counted.
* :func:`~hetsched.schedule.bounds.delays.delay_bound` - heads and tails that count
  transfers: each predecessor is on the op's device (and runs before it there) or pays its
  transfer (communication-heavy graphs).
* :func:`~hetsched.schedule.bounds.colocation.colocation_bound` - edges a schedule that
  ends by ``T`` cannot cut (their transfer would not fit) join ops into groups that each
  run on one device; the least ``T`` where every group fits.
* :func:`~hetsched.schedule.bounds.groupload.group_load_bound` - the load LP over those
  groups, each on the devices where its ops' per-device heads and tails (transfers
  counted) still fit in ``T``.
* :func:`~hetsched.schedule.bounds.chainpaths.chain_path_bound` - the longest path over
  modes rather than devices, where a mode that keeps its output sharded binds its
  readers' modes (tensor-parallel chains).
* :func:`~hetsched.schedule.bounds.transfers.transfer_lp_bound` - the LP relaxation that
  pays, on each edge, the transfer times the share of its ends' mixes that differ (the cut
  edges of communication-heavy graphs on unrelated devices).
* :func:`load_bound` - no device can finish before it has done its share of the work:
  an LP over fractional assignments, min T s.t. per-device load <= T.
* :func:`lp_bound` - the LP relaxation that couples both: fractional assignment, start
  times with precedence, per-device load (transfers relaxed to zero).
* :func:`~hetsched.schedule.bounds.series_bound` - the sum over the segments between ops
  every schedule runs alone (layer boundaries) of each segment's bound, and
  :func:`~hetsched.schedule.bounds.window_load_bound` - the load LP with heads and tails.

All results are integer units of the problem, rounded up (durations are integers). The
functions above bound the integer problem they are given; the memoised ones below
(:func:`quick_lower_bound`, :func:`lower_bound`, :func:`bound_report`) bound the *real-valued*
problem: they run on :attr:`~hetsched.problem.Problem.floored`, its durations rounded down.

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

import threading
import time
import weakref
from collections.abc import Callable, Collection
from dataclasses import dataclass

from hetsched.problem import Problem
from hetsched.schedule.bounds.chainpaths import chain_path_bound
from hetsched.schedule.bounds.colocation import colocation_bound
from hetsched.schedule.bounds.delays import delay_bound
from hetsched.schedule.bounds.groupload import group_load_bound
from hetsched.schedule.bounds.levels import heads_and_tails_fast, levels
from hetsched.schedule.bounds.load import (
    LOAD_LP_MAX_OPS,
    budget_lp_bound,
    load_bound,
    load_bound_dual,
    lp_bound,
)
from hetsched.schedule.bounds.paths import (
    critical_path_bound,
    device_finish_times,
    device_tail_times,
    heads_and_tails,
    heads_and_tails_reference,
    priced_path_bound,
    priced_path_within,
    prices_bind,
)
from hetsched.schedule.bounds.series import (
    segment_key,
    series_bound,
    series_bound_within,
    series_cuts,
    series_segments,
)
from hetsched.schedule.bounds.transfers import (
    transfer_lp_bound,
    transfer_lp_can_beat,
    transfer_lp_within,
)
from hetsched.schedule.bounds.windows import (
    device_heads_tails,
    window_load_bound,
    window_load_lp,
    window_load_within,
)

__all__ = [
    "BOUND_SHARE",
    "DELAY_MAX_OPS",
    "LOAD_LP_MAX_OPS",
    "LP_SECONDS_PER_UNIT",
    "bound_report",
    "budget_lp_bound",
    "colocation_bound",
    "critical_path_bound",
    "delay_bound",
    "device_finish_times",
    "device_heads_tails",
    "device_tail_times",
    "group_load_bound",
    "heads_and_tails",
    "heads_and_tails_fast",
    "heads_and_tails_reference",
    "levels",
    "load_bound",
    "load_bound_dual",
    "lower_bound",
    "lower_bound_within",
    "lp_bound",
    "priced_path_bound",
    "quick_lower_bound",
    "record_bound",
    "segment_key",
    "series_bound",
    "series_bound_within",
    "series_cuts",
    "series_lower_bound",
    "series_segments",
    "transfer_lp_bound",
    "window_load_bound",
    "window_load_lp",
]


# A Problem is immutable, and every heuristic, the portfolio and the exact solvers ask for
# its bounds: compute each once per problem (the load LP alone costs as much as HEFT).
_BOUND_MEMO: weakref.WeakKeyDictionary[Problem, dict[str, int]] = weakref.WeakKeyDictionary()


_MEMO_LOCKS: weakref.WeakKeyDictionary[Problem, dict[str, threading.RLock]] = (
    weakref.WeakKeyDictionary()
)
_MEMO_LOCKS_GUARD = threading.Lock()


def _memo(problem: Problem, key: str, compute: Callable[[Problem], int]) -> int:
    """``compute`` on the rounded-down twin (a bound of the real problem), once: a thread
    that asks while another computes it waits for that value (the portfolio's search and
    the LPs beside it both start from the quick bounds: 0.05-0.18 s at 300-1,000 ops)."""
    value = _kept(problem, key)
    if value is not None:
        return value
    with _MEMO_LOCKS_GUARD:
        lock = _MEMO_LOCKS.setdefault(problem.floored, {}).setdefault(key, threading.RLock())
    with lock:
        value = _kept(problem, key)
        if value is None:
            value = compute(problem.floored)
            _keep(problem, key, value)
    return value


def _kept(problem: Problem, key: str) -> int | None:
    """The bound ``key`` of ``problem`` computed before (on it or its twin), if any."""
    value = _BOUND_MEMO.get(problem, {}).get(key)
    return _BOUND_MEMO.get(problem.floored, {}).get(key) if value is None else value


def _keep(problem: Problem, key: str, value: int) -> None:
    """Remember the bound ``key`` of ``problem`` and of its rounded-down twin."""
    _BOUND_MEMO.setdefault(problem, {})[key] = value
    _BOUND_MEMO.setdefault(problem.floored, {})[key] = value


# Bounds a search proved (the placement relaxation, in the solvers above this package),
# per problem: every later bound of that problem starts from them.
_SEARCHED: weakref.WeakKeyDictionary[Problem, int] = weakref.WeakKeyDictionary()


def record_bound(problem: Problem, value: int) -> None:
    """Remember ``value`` (units), a proven lower bound of the real ``problem`` that a
    search found: :func:`lower_bound_within` returns at least it from then on, so the
    exact searches that follow start from it.

    >>> import numpy as np
    >>> p = Problem.from_arrays(names=list("abcdef"), devices=["x", "y"],
    ...     exec_time=np.full((6, 2), 3.0), edges=[(0, 1, 11.0), (2, 3, 11.0), (4, 5, 11.0)],
    ...     comm_latency=np.array([[0, 11], [11, 0]]), quantum=1.0)
    >>> lower_bound_within(p)[0]   # 18 units of work over two devices
    9
    >>> record_bound(p, 12)   # a split pair takes 17: two pairs share a device (placement)
    >>> lower_bound_within(p)[0]
    12
    """
    _SEARCHED[problem] = max(_SEARCHED.get(problem, 0), int(value))


def series_lower_bound(problem: Problem) -> int:
    """:func:`~hetsched.schedule.bounds.series_bound` (with its LPs), once per problem."""
    return _memo(problem, "series", series_bound)


# Above this many ops the transfer-counting heads and tails (Python over every edge, ~0.5 s
# at 10k ops) stay out of the quick bounds, which heuristics wait on.
DELAY_MAX_OPS = 3000

# Share of a solve's time left that its bounds with LPs may take (the rest is search); those
# that would not fit are skipped, and solvers say which (``stats["bounds_skipped"]``).
BOUND_SHARE = 0.25

# Seconds per (op x device) an LP over the whole graph takes here (GLOP; measured 0.1-0.3 ms
# at 500-2,000 ops): an LP that would end past the deadline is not started.
LP_SECONDS_PER_UNIT = 2.5e-4


# Seconds per (op x device) the group load bound takes here (its per-device heads and up to
# a dozen LPs: measured 0.04-0.7 s at 100-300 ops, 1.2-3.2 s at 1,000, on 3-8 devices).
GROUP_LOAD_SECONDS_PER_UNIT = 5e-4


# Seconds the transfer LP takes here, per ops^1.25 x devices^2 (HiGHS's interior point
# method, :data:`~hetsched.schedule.bounds.verified.LP_METHOD`, on the random suite's CCR-10
# graphs: 0.1-0.4 s at 100 ops on 3-8 devices, 0.3 / 0.7 / 2.0-2.5 s at 300 ops on 3 / 5 /
# 8, 1.2-1.4 / 3.5-4.2 / 7.5-11.4 s at 1,000: 2.0-3.2e-5 per unit, the longest times at
# 300 and 1,000 ops 3.0-3.2e-5; per ops^1.5 they were 4.6-9.4e-6, and 8e-6 estimated 16 s
# at 1,000 ops on 8 devices, more than a 30 s solve gives it). GLOP's dual simplex took
# 5.7 s at 300 ops on 8 devices and 22.7 s at 1,000.
TRANSFER_LP_SECONDS = 3.2e-5


def quick_lower_bound(problem: Problem) -> int:
    """The bounds that solve no LP (critical path, the load LP's Lagrangian dual, the series
    bound without its segment LPs, transfers counted, edges too dear to cut, sharded
    chains' modes bound together): what heuristics wait on. Each part is kept by name
    (:func:`bound_source`)."""
    return _memo(problem, "quick", _quick_parts)


# The parts of quick_lower_bound, by their name in BOUND_TITLES: kept under "quick:" + name
# (the LP bounds "load" and "series" keep their own values under the plain names).
_QUICK_PARTS: tuple[tuple[str, Callable[[Problem], int], bool], ...] = (
    ("critical_path", critical_path_bound, False),
    ("load", load_bound_dual, False),
    ("series", lambda p: series_bound(p, use_lp=False), False),
    ("delays", delay_bound, True),
    ("colocation", colocation_bound, True),
    ("chain_paths", chain_path_bound, True),
)


def _quick_parts(p: Problem) -> int:
    """The best of :data:`_QUICK_PARTS` on ``p`` (the rounded-down twin), each kept."""
    best = 0
    for name, bound, small_only in _QUICK_PARTS:
        value = bound(p) if not small_only or p.n <= DELAY_MAX_OPS else 0
        _keep(p, f"quick:{name}", value)
        best = max(best, value)
    return best


# What each bound counts, for a reader of a plan's bound (`hetsched solve` prints the one
# that gave it beside the gap: a gap to the devices' combined load says little of the plan).
BOUND_TITLES: dict[str, str] = {
    "critical_path": "critical path: each op on its fastest device, transfers forced by support",
    "load": "load: the devices' combined work, transfers free",
    "series": "series cuts: segment by segment between ops that run alone",
    "delays": "heads and tails: each input co-located and run first, or its transfer paid",
    "colocation": "co-location: edges too dear to cut join ops on one device",
    "chain_paths": "sharded chains: modes that keep a layout bind their readers",
    "modes_lp": "load LP under the error budget",
    "priced_path": "priced paths: the error budget's or memory's price on the longest path",
    "lp": "load LP with start times and precedence, transfers free",
    "group_load": "group load: each co-located group on the devices where it still fits",
    "window": "window load LP: each device's work between its ops' heads and tails",
    "transfer_lp": "transfer LP: each edge pays the share of its ends that sit apart",
    "placement": "placement relaxation (CP-SAT): device choices and transfers, ops unordered",
    "search": "a CP-SAT search refuted every shorter schedule (of the problem or a relaxation)",
}


def bound_source(problem: Problem, value: int) -> str | None:
    """The name (a key of :data:`BOUND_TITLES`) of a bound of ``problem`` computed so far
    whose value is ``value`` (units): the quick bounds first, then those that solve LPs,
    then one a search recorded (:func:`record_bound`); ``None`` if none is.

    >>> import numpy as np
    >>> p = Problem.from_arrays(names=["a", "b", "c"], devices=["x", "y"],
    ...     exec_time=np.full((3, 2), 2.0), edges=[], quantum=1.0)
    >>> lower_bound(p), bound_source(p, 3), bound_source(p, 2)   # 6 units over two devices
    (3, 'load', 'critical_path')
    """
    if value <= 0:
        return None
    for name, _, _ in _QUICK_PARTS:
        if _kept(problem, f"quick:{name}") == value:
            return name
    for bound in _TIMED_BOUNDS:
        if _kept(problem, bound.name) == value:
            return bound.name
    searched = max(_SEARCHED.get(problem, 0), _SEARCHED.get(problem.floored, 0))
    return "search" if searched == value else None


def lower_bound(problem: Problem, *, use_lp: bool = True) -> int:
    """Best of all bounds, in integer units (``use_lp=False``: :func:`quick_lower_bound`)."""
    return lower_bound_within(problem)[0] if use_lp else quick_lower_bound(problem)


def _free(_p: Problem) -> float:
    """The time estimate of a bound that stops at the deadline on its own."""
    return 0.0


def _always(_p: Problem, _lb: int) -> bool:
    return True


@dataclass(frozen=True)
class _TimedBound:
    """One bound of :func:`lower_bound_within`: its run on the rounded-down twin to a
    deadline, given the bound so far: ``(value, complete)`` (a run cut short is still a
    bound, but is not kept and is listed as ``cut``); its time estimate (seconds: it is not
    started if it would end past the deadline); and whether it can add anything to the
    bound so far (where it cannot, 0 is kept without running it)."""

    name: str
    run: Callable[[Problem, float | None, int], tuple[int, bool]]
    seconds: Callable[[Problem], float] = _free
    useful: Callable[[Problem, int], bool] = _always
    cut: str = ""


def _whole(
    bound: Callable[[Problem], int],
) -> Callable[[Problem, float | None, int], tuple[int, bool]]:
    """A bound that runs to its end once started."""
    return lambda p, _deadline, _lb: (bound(p), True)


def _left(deadline: float | None) -> float | None:
    """Seconds to ``deadline`` (``None``: no limit)."""
    return None if deadline is None else max(0.0, deadline - time.perf_counter())


def _lp_seconds(p: Problem) -> float:
    return LP_SECONDS_PER_UNIT * p.n * p.num_devices


# In this order: the group load bound starts from the bounds before it.
_TIMED_BOUNDS = (
    _TimedBound("load", _whole(load_bound), lambda p: 0.25 * _lp_seconds(p)),
    _TimedBound("series", lambda p, d, _lb: series_bound_within(p, deadline=d), cut="series LPs"),
    _TimedBound("modes_lp", _whole(budget_lp_bound), lambda p: _lp_seconds(p) * p.has_error_modes),
    _TimedBound(
        "priced_path",
        lambda p, d, _lb: priced_path_within(p, deadline=d),
        useful=lambda p, _lb: prices_bind(p),  # neither a budget nor weights to price
        cut="priced_path prices",
    ),
    _TimedBound("lp", _whole(lp_bound), _lp_seconds),
    _TimedBound(
        "group_load",
        lambda p, _d, lb: (group_load_bound(p, floor=lb), True),
        lambda p: GROUP_LOAD_SECONDS_PER_UNIT * p.n * p.num_devices,
    ),
    _TimedBound(
        "window", lambda p, d, _lb: window_load_within(p, time_limit=_left(d)), _lp_seconds
    ),
    _TimedBound(
        "transfer_lp",
        lambda p, d, _lb: transfer_lp_within(p, time_limit=_left(d)),
        lambda p: TRANSFER_LP_SECONDS * p.n**1.25 * p.num_devices**2,
        # too large, or one device mix for every op is a solution already refuted
        useful=lambda p, lb: transfer_lp_can_beat(p.floored, lb),
    ),
)


def lower_bound_within(
    problem: Problem,
    deadline: float | None = None,
    *,
    only: Collection[str] | None = None,
    leave: Collection[str] = (),
) -> tuple[int, tuple[str, ...]]:
    """Best of all bounds that fit before ``deadline`` (a ``time.perf_counter()`` instant;
    ``None``: all), and the names of those skipped. The quick bounds always run; each LP
    runs only if it should end in time (:data:`LP_SECONDS_PER_UNIT`), and then to the
    deadline at most. Complete results are kept for the next call. ``only``: run these
    timed bounds (by name) and no other; ``leave``: not these (another thread computes
    them), though their values kept by then count.

    >>> import numpy as np
    >>> p = Problem.from_arrays(names=list("abc"), devices=["x", "y"],
    ...     exec_time=np.array([[1.0, 4.0], [4.0, 1.0], [1.0, 4.0]]),
    ...     edges=[(0, 1, 10.0), (1, 2, 10.0)], comm_latency=np.array([[0, 10], [10, 0]]),
    ...     quantum=1.0)
    >>> lower_bound_within(p, deadline=0.0)   # no time for any LP
    (6, ('load', 'series', 'modes_lp', 'lp', 'group_load', 'window', 'transfer_lp'))
    >>> lower_bound_within(p, deadline=0.0, leave=["transfer_lp"])
    (6, ('load', 'series', 'modes_lp', 'lp', 'group_load', 'window'))
    >>> lower_bound_within(p, only=["transfer_lp"])
    (6, ())
    """
    lb = max(quick_lower_bound(problem), _SEARCHED.get(problem, 0))
    skipped = []
    for bound in _TIMED_BOUNDS:
        kept = _kept(problem, bound.name)
        if kept is not None:
            lb = max(lb, kept)
            continue
        if bound.name in leave or (only is not None and bound.name not in only):
            continue
        if not bound.useful(problem, lb):
            _BOUND_MEMO.setdefault(problem, {})[bound.name] = 0
            continue
        if deadline is not None and time.perf_counter() + bound.seconds(problem) > deadline:
            skipped.append(bound.name)
            continue
        value, complete = bound.run(problem.floored, deadline, lb)
        lb = max(lb, value)
        if complete:
            _keep(problem, bound.name, value)
        else:
            skipped.append(bound.cut or bound.name)
    return lb, tuple(skipped)


def bound_report(problem: Problem) -> dict[str, int]:
    """Every bound by name (units) of the real problem, for explaining a gap (the transfer
    LP 0 where one device mix for every op is already refuted: it cannot add anything)."""
    problem = problem.floored
    report = {
        "critical_path": critical_path_bound(problem),
        "load": load_bound(problem),
        "lp": lp_bound(problem),
        "window": window_load_bound(problem),
        "series": series_lower_bound(problem),
        "modes_lp": budget_lp_bound(problem),
        "priced_path": priced_path_bound(problem),
        "delays": delay_bound(problem),
        "colocation": colocation_bound(problem),
        "group_load": group_load_bound(problem),
        "chain_paths": chain_path_bound(problem),
    }
    report["transfers"] = transfer_lp_bound(problem, floor=max(report.values()))
    return report
