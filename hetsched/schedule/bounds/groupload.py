"""The load LP over the groups a short schedule cannot split, on devices that can still
run them: the co-location bound and the load bound in one test per horizon.

In a schedule that ends by ``T``:

* the co-location groups at ``T``
  (:func:`~hetsched.schedule.bounds.colocation.colocation_groups`) each run on one device;
* op ``v`` can run on device ``d`` only if ``head[v, d] + dur[v, d] + tail[v, d] <= T``,
  with heads and tails per device that count transfers
  (:func:`~hetsched.schedule.bounds.delays.device_delay_heads_tails`): a slow device, or one
  far from where an op's inputs can be, is ruled out for it;
* group ``g`` on ``d`` runs there one op after another, from its least head on ``d`` to
  its least tail: ``head + work + tail <= T``;
* each device does the work of its groups by ``T``.

So the load LP over groups (fractional ``x[g, d]`` over the pairs still allowed, each
device's load at most ``T``) has a solution. Where it has none, no schedule ends by ``T``
(proved by the Lagrangian value of the LP's multipliers above ``T``, not by the LP
solver's word: :func:`_least_most_load`);
a larger ``T`` only splits groups and allows more pairs, so the least ``T`` that passes
(binary search) is a lower bound. On the random suite at CCR 10 it lifts the best other
bound of the 100-op unrelated graph on 3 devices by 6% (679 -> 718) and, among our own
bounds, that of the 300-op one on 8 devices from 929 to 995; elsewhere it ties.

Examples
--------
>>> import numpy as np
>>> from hetsched.problem import Problem
>>> p = Problem.from_arrays(names=list("abcdef"), devices=["x", "y"],
...     exec_time=np.full((6, 2), 2.0), edges=[(0, 1, 10.0), (2, 3, 10.0), (4, 5, 10.0)],
...     comm_latency=np.array([[0, 10], [10, 0]]), quantum=1.0)
>>> from hetsched.schedule.bounds.colocation import colocation_bound
>>> colocation_bound(p), group_load_bound(p)   # three uncuttable chains on two devices
(4, 6)
"""

from __future__ import annotations

import math

import numpy as np
from scipy.optimize import linprog
from scipy.sparse import csr_matrix

from hetsched.problem import Problem
from hetsched.schedule.bounds.colocation import colocation_bound, colocation_groups
from hetsched.schedule.bounds.delays import cheapest_remote, device_delay_heads_tails
from hetsched.schedule.bounds.load import load_bound_dual, priced_cheapest
from hetsched.schedule.bounds.paths import serial_horizon

__all__ = ["GROUP_LOAD_MAX_OPS", "group_load_bound", "group_load_fits"]

# Above this many ops the per-device heads (Python over ops x devices) cost seconds.
GROUP_LOAD_MAX_OPS = 3000


def group_load_bound(problem: Problem, *, floor: int | None = None) -> int:
    """The least ``T`` (integer units) that passes :func:`group_load_fits`; 0 above
    :data:`GROUP_LOAD_MAX_OPS` ops. ``floor``: a bound already proven, where the search
    starts (default: the co-location bound and the load LP's); the result is then the
    larger of the two. Without transfers the groups are single ops and the heads the
    critical path's (the window load LP covers that case): the floor is returned as is."""
    p = problem.relaxation()
    if p.n == 0 or p.n > GROUP_LOAD_MAX_OPS:
        return 0
    lo = max(colocation_bound(p), load_bound_dual(p)) if floor is None else floor
    if p.num_edges == 0 or p.num_devices < 2 or not (cheapest_remote(p) > 0).any():
        return lo
    head, tail = device_delay_heads_tails(p)
    dur = np.where(p.allowed, p.dur, 0).astype(np.int64)
    path = np.where(p.allowed, head + dur + tail, np.iinfo(np.int64).max).min(axis=1)
    lo = max(lo, int(path.max()))
    if group_load_fits(p, lo):  # where transfers are cheap: one LP, no search
        return lo
    hi = serial_horizon(p)  # a schedule ends by then: every plan passes there
    if not group_load_fits(p, hi):
        return lo
    while lo < hi:
        mid = (lo + hi) // 2
        if group_load_fits(p, mid):
            hi = mid
        else:
            lo = mid + 1
    return lo


def group_load_fits(problem: Problem, horizon: int) -> bool:
    """Whether the groups forced at ``horizon`` fit on the devices still open to them
    (module docstring); ``False`` proves that no schedule ends by ``horizon`` units."""
    p = problem.relaxation()
    head, tail = device_delay_heads_tails(p)
    group = colocation_groups(p, horizon)
    k = int(group.max()) + 1
    dur = np.where(p.allowed, p.dur, 0).astype(np.float64)
    op_ok = p.allowed & (head + dur + tail <= horizon)
    # a pair is open if every op of the group may run there and the group fits in time
    blocked = np.stack(
        [np.bincount(group, weights=~op_ok[:, d], minlength=k) for d in range(p.num_devices)], 1
    )
    load = np.stack(
        [np.bincount(group, weights=dur[:, d], minlength=k) for d in range(p.num_devices)], 1
    )
    first = np.full((k, p.num_devices), np.inf)
    last = np.full((k, p.num_devices), np.inf)
    np.minimum.at(first, group, head.astype(np.float64))
    np.minimum.at(last, group, tail.astype(np.float64))
    open_ = (blocked == 0) & (first + load + last <= horizon)
    if not open_.any(axis=1).all():
        return False
    return not _least_most_load(open_, load) > horizon


def _least_most_load(open_: np.ndarray, load: np.ndarray) -> float:
    """A lower bound of the least most-loaded device over fractional assignments of the
    groups to their open devices: the LP (HiGHS) gives the devices' multipliers ``mu``,
    and the bound is their Lagrangian value ``sum_g min_d mu_d load[g, d]`` (``mu`` on the
    simplex, :func:`~hetsched.schedule.bounds.load.priced_cheapest`), valid for any ``mu``
    (weak duality), computed here, so no solver tolerance can lift it; 0 where HiGHS gives
    no optimum."""
    k, num_devices = open_.shape
    g, d = np.nonzero(open_)
    cols = np.arange(g.size)
    one_each = csr_matrix((np.ones(g.size), (g, cols)), shape=(k, g.size + 1))
    per_device = csr_matrix(
        (np.concatenate([load[g, d], -np.ones(num_devices)]),
         (np.concatenate([d, np.arange(num_devices)]),
          np.concatenate([cols, np.full(num_devices, g.size)]))),
        shape=(num_devices, g.size + 1),
    )  # fmt: skip
    cost = np.zeros(g.size + 1)
    cost[-1] = 1.0  # minimise the most load
    res = linprog(
        cost,
        A_ub=per_device,
        b_ub=np.zeros(num_devices),
        A_eq=one_each,
        b_eq=np.ones(k),
        bounds=[(0, 1)] * g.size + [(0, None)],
        method="highs",
    )
    if res.status != 0:
        return 0.0
    mu = np.clip(-np.asarray(res.ineqlin.marginals), 0.0, None)
    if mu.sum() <= 0:
        return 0.0
    mu = mu / mu.sum()
    _, priced = priced_cheapest(np.where(open_, load, np.inf), mu)
    return float(math.fsum(priced)) * (1 - 1e-12)
