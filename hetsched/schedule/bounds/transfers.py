"""The LP relaxation that pays for the edges it cuts: a bound for unrelated devices at CCR 10.

The load LP puts each op where it runs fastest. On devices whose speeds differ op by op
(unrelated), an op's fastest device is rarely its neighbours', and on a graph whose
transfers cost ten times its ops no schedule can follow those choices: every edge whose
ends sit apart delays its consumer by a transfer. Here the LP keeps, beside each op's
fractional assignment ``x[v, d]``, a cut share per edge ``u -> v``,

``z[u, v] = sum over d of w[u, v, d]``, ``w[u, v, d] >= x[u, d] - x[v, d]``, ``w >= 0``

(the total variation distance of the two ends' mixes: 1 when they run on different
devices, 0 when on the same), and the consumer starts after the producer's duration plus
``z`` times the cheapest transfer of the edge's tensor between two distinct devices its
ends may use (:func:`~hetsched.schedule.bounds.delays.cheapest_remote`). With each device's
load and each op's finish at most ``T``, the least ``T`` is a lower bound: every schedule
is a solution with integral ``x`` and ``z`` its cut edges.

Spreading one common mix over every op cuts nothing (``z = 0``; ops that cannot use every
device take the mix over theirs), so the LP is never above that mix's value: the load it
balances, or the longest path of mixed durations (and the transfers the restricted ops'
mixes pay). Where that is already at or below a proven bound (related devices, whose
fastest device is the same for every op) the LP cannot help and is not solved.

Examples
--------
>>> import numpy as np
>>> from hetsched.problem import Problem
>>> p = Problem.from_arrays(names=list("abc"), devices=["x", "y"],
...     exec_time=np.array([[1.0, 4.0], [4.0, 1.0], [1.0, 4.0]]),
...     edges=[(0, 1, 10.0), (1, 2, 10.0)], comm_latency=np.array([[0, 10], [10, 0]]),
...     quantum=1.0)
>>> from hetsched.schedule.bounds import lp_bound
>>> lp_bound(p), transfer_lp_bound(p)   # b on y between a and c on x costs two transfers
(3, 6)
"""

from __future__ import annotations

import numpy as np

from hetsched.problem import Problem
from hetsched.schedule.bounds.delays import cheapest_remote
from hetsched.schedule.bounds.load import AssignmentLP, least_horizon_within

__all__ = [
    "TRANSFER_LP_MAX_OPS",
    "common_mix_value",
    "transfer_lp_bound",
    "transfer_lp_can_beat",
    "transfer_lp_within",
]

# Above this many ops the LP (ops x devices assignments, edges x devices cut shares) is
# not built.
TRANSFER_LP_MAX_OPS = 3000


def transfer_lp_bound(problem: Problem, *, floor: int = 0, time_limit: float | None = None) -> int:
    """The LP's least ``T`` (units, rounded up; see the module docstring); 0 when it cannot
    beat a positive ``floor`` (:func:`common_mix_value`), above
    :data:`TRANSFER_LP_MAX_OPS` ops, or when its LP is not solved within
    ``time_limit`` seconds."""
    return transfer_lp_within(problem, floor=floor, time_limit=time_limit)[0]


def transfer_lp_within(
    problem: Problem, *, floor: int = 0, time_limit: float | None = None
) -> tuple[int, bool]:
    """:func:`transfer_lp_bound`, and whether it is final: ``False`` where the LP solver stopped at
    ``time_limit`` (then 0)."""
    p = problem.relaxation()  # bounds of the question asked
    if not transfer_lp_can_beat(p, floor):
        return 0, True
    lp = AssignmentLP.build(p)
    solver, mix = lp.solver, lp.mix
    for (u, v), c in _dearest_cuts(p).items():
        delay = 0
        if c > 0:
            shares = []
            for d, x in mix[u].items():
                w = solver.NumVar(0, 1, "")
                solver.Add(w >= x - mix[v][d] if d in mix[v] else w >= x)
                shares.append(w)
            delay = c * solver.Sum(shares)
        solver.Add(lp.starts[v] >= lp.starts[u] + lp.dur[u] + delay)
    return least_horizon_within(solver, lp.t, lp.load, time_limit=time_limit)


def transfer_lp_can_beat(problem: Problem, floor: int = 0) -> bool:
    """Whether the LP is built at all (at most :data:`TRANSFER_LP_MAX_OPS` ops, two devices,
    an edge) and can end above a positive ``floor`` (:func:`common_mix_value`, an upper
    bound of its optimum, is above it)."""
    p = problem.relaxation()
    if p.n > TRANSFER_LP_MAX_OPS or p.num_devices < 2 or p.num_edges == 0:
        return False
    return floor <= 0 or common_mix_value(p) > floor


def common_mix_value(problem: Problem) -> float:
    """The LP's value at one device mix for every op, restricted to each op's devices and
    scaled to one: the mix that balances the load when every op may use every device
    (``1 / W_d`` per device, ``W_d`` all the work on ``d``). Its load, or its longest path
    of mixed durations plus each edge's transfer times the total variation distance of its
    ends' mixes (0 where both ends use every device), whichever is longer: an upper bound
    of :func:`transfer_lp_bound` (a solution of its LP).

    >>> import numpy as np
    >>> p = Problem.from_arrays(names=list("ab"), devices=["x", "y"],
    ...     exec_time=np.array([[2.0, 4.0], [2.0, 4.0]]), edges=[(0, 1, 1.0)], quantum=1.0)
    >>> round(common_mix_value(p), 6)   # related devices: mix 2:1, load 8/3, path 2 x 8/3
    5.333333
    """
    p = problem.relaxation()
    allowed = p.allowed
    dur = np.where(allowed, p.dur, 0).astype(float)
    work = dur.sum(axis=0)
    if (work <= 0).any():
        return 0.0
    mix = np.where(allowed, 1.0 / work, 0.0)
    mix /= mix.sum(axis=1, keepdims=True)
    mixed = (mix * dur).sum(axis=1)
    cut = _edge_cuts(p)
    apart = 0.5 * np.abs(mix[p.edge_src] - mix[p.edge_dst]).sum(axis=1)
    delay = (cut * apart).tolist()
    src, dst, took = p.edge_src.tolist(), p.edge_dst.tolist(), mixed.tolist()
    finish = list(took)
    for k in np.argsort(p.edge_dst, kind="stable").tolist():  # ops are topologically indexed
        u, v = src[k], dst[k]
        finish[v] = max(finish[v], finish[u] + delay[k] + took[v])
    return float(max((mix * dur).sum(axis=0).max(), max(finish, default=0.0)))


def _edge_cuts(p: Problem) -> np.ndarray:
    """Per edge, the cheapest transfer of its tensor between two distinct devices its ends
    may use (units; 0 where the two can only share a device)."""
    remote = cheapest_remote(p)
    return np.where(np.isfinite(remote), remote, 0.0).astype(np.int64)


def _dearest_cuts(p: Problem) -> dict[tuple[int, int], int]:
    """Per producer-consumer pair, the dearest of its tensors' :func:`_edge_cuts`."""
    out: dict[tuple[int, int], int] = {}
    pairs = zip(p.edge_src.tolist(), p.edge_dst.tolist(), strict=True)
    for pair, c in zip(pairs, _edge_cuts(p).tolist(), strict=True):
        out[pair] = max(out.get(pair, 0), c)
    return out
