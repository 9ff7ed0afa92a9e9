"""Longest-path bounds: per-device finish and tail times with the transfers support forces."""

from __future__ import annotations

import itertools
import math
from time import perf_counter as time_now

import numpy as np

from hetsched.problem import Problem

__all__ = [
    "critical_path_bound",
    "device_finish_times",
    "device_tail_times",
    "heads_and_tails",
    "heads_and_tails_reference",
    "priced_path_bound",
    "priced_path_within",
    "prices_bind",
    "serial_horizon",
]

_BIG = np.iinfo(np.int64).max // 8


def device_finish_times(
    problem: Problem,
    *,
    first_on: int | None = None,
    pairs: int = 0,
    durations: np.ndarray | None = None,
) -> np.ndarray:
    """``H[v, d]``: earliest finish of ``v`` if placed on ``d`` (inf where not allowed).

    ``first_on``: op 0 is pinned to that device and finishes at 0, so the other finishes
    count from its end (a segment after a series cut on a given device).

    ``pairs``: also take, for every two of the ``pairs`` latest-arriving inputs of ``v``,
    the least time both can have arrived over every pair of devices for them. Two inputs
    made on one device run one after the other there: the later ends no earlier than the
    earlier head plus both durations (an attention head's q and k linears on one NPU: its
    ``matmul`` waits for both, not for one).

    ``durations``: real ``[n, D]`` times to use instead of the relaxation's (``inf``: not
    allowed); the result is then real, ``inf`` where not allowed.
    """
    problem = problem.relaxation()  # bounds of the question asked
    p = problem
    big: float
    if durations is None:
        allowed, big = p.allowed, _BIG
        dur = np.where(allowed, p.dur, big)
    else:
        allowed, big = np.isfinite(durations), np.inf
        dur = np.asarray(durations, dtype=np.float64)
    fin = dur.copy()
    if first_on is not None:
        fin[0] = big
        fin[0, first_on] = 0
    for v in range(0 if first_on is None else 1, p.n):
        ready = np.zeros(p.num_devices, dtype=np.int64)
        arrivals = []
        for u, comm in _by_neighbour(p, p.preds[v]):
            # arrival on each device b from each device a: fin[u, a] + comm[a, b]
            arr = fin[u][:, None] + comm
            ready = np.maximum(ready, arr.min(axis=0))
            if pairs:
                arrivals.append((fin[u] - dur[u], dur[u], comm, arr))
        if len(arrivals) > 1:
            ready = np.maximum(ready, _pair_ready(arrivals, pairs))
        fin[v] = np.where(allowed[v], np.minimum(ready + dur[v], big), big)
    return fin


def _by_neighbour(p: Problem, edges: tuple[tuple[int, int], ...]) -> list[tuple[int, np.ndarray]]:
    """``(neighbour op, transfer times)`` once per neighbour: the tensors between two ops
    move in parallel, so the pair's delay is the slowest of them (and one op is one input
    for the pairing below, however many of its tensors the other reads)."""
    if len(edges) < 2:
        return [(u, p.comm[k]) for u, k in edges]
    out: dict[int, np.ndarray] = {}
    for u, k in edges:
        out[u] = p.comm[k] if u not in out else np.maximum(out[u], p.comm[k])
    return list(out.items())


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
    problem = problem.relaxation()  # bounds of the question asked
    p = problem
    dur = np.where(p.allowed, p.dur, _BIG)
    tail_d = np.where(p.allowed, p.dur, _BIG).astype(np.int64)
    for v in range(p.n - 1, -1, -1):
        after = np.zeros(p.num_devices, dtype=np.int64)
        departures = []
        for s, comm in _by_neighbour(p, p.succs[v]):
            # from the end of v on d to the end, through s on b: comm[d, b] + tail[s, b]
            via = comm.T + tail_d[s][:, None]
            after = np.maximum(after, via.min(axis=0))
            if pairs:
                departures.append((tail_d[s] - dur[s], dur[s], comm.T, via))
        if len(departures) > 1:
            after = np.maximum(after, _pair_ready(departures, pairs))
        tail_d[v] = np.where(p.allowed[v], np.minimum(dur[v] + after, _BIG), _BIG)
    return tail_d


def critical_path_bound(problem: Problem) -> int:
    """Longest path with every op on its best device and unavoidable transfers."""
    problem = problem.relaxation()  # bounds of the question asked
    fin = device_finish_times(problem)
    return int(fin.min(axis=1).max())


def priced_path_bound(problem: Problem, *, points: int = 24) -> int:
    """:func:`priced_path_within` over its whole grid of prices.

    A chain whose every op could halve its time for half the budget:

    >>> from hetsched.problem import Modes, Tensors
    >>> modes = Modes.build(3, [m for v in range(3) for m in (
    ...     (v, (0,), 8.0), (v, (0,), 4.0, 0.0, "int8", "", 0.0, 0.5))])
    >>> p = Problem.from_modes(names=["a", "b", "c"], devices=["npu"], modes=modes,
    ...     tensors=Tensors.build(3, [(0, (1,), 1.0), (1, (2,), 1.0)]), quantum=1.0,
    ...     error_budget=1.0)
    >>> critical_path_bound(p), priced_path_bound(p)   # two ops at 4, one at 8
    (12, 16)
    """
    return priced_path_within(problem, points=points)[0]


def priced_path_within(
    problem: Problem, *, points: int = 24, deadline: float | None = None
) -> tuple[int, bool]:
    """The longest path when the error budget or the devices' memory binds: their
    Lagrangian relaxation.

    For any price ``lam >= 0`` per unit of error and ``mu >= 0`` per byte of weights kept
    resident on a device whose memory cannot hold them all, give each mode the time ``dur
    + lam * error + mu * resident bytes`` and take the longest path with transfers as
    :func:`critical_path_bound` does (each op on its best device, now by priced time).
    Along any path of a plan the priced times add up to at most its real times plus
    ``lam`` times the errors of all its modes (at most ``lam * budget``) plus ``mu``
    times the weights resident on those devices (held for the whole run, so at most ``mu
    *`` their capacities); so that longest path minus both bounds every plan. The bound
    is the best over a grid of prices spread over the modes' time saved per unit of
    error and per byte kept resident (prices of 0 are the critical path), coarse to fine,
    until ``deadline`` (a ``time.perf_counter()`` instant; each price's bound holds on its
    own). Returns the bound (0 when neither binds) and whether every price was tried.
    """
    p = problem
    budget = p.error_budget_units if p.has_error_modes else None
    owner, device, held = _rows(p)  # one row per (mode, device of it)
    tight = _weights_overflow(p, owner, device, held)
    if (budget is None and not tight.any()) or p.n == 0:  # nothing to price
        return 0, True
    held = np.where(tight[device], held, 0.0)
    time = np.repeat(p.mode_dur.astype(np.float64), p.modes.width)
    error = np.repeat(p.mode_error_units.astype(np.float64), p.modes.width)
    lams = _prices(owner, time, error, points) if budget is not None else [0.0]
    # a resident weight saves time against the same op streamed in the same precision
    _, same = np.unique(np.stack([owner, error]), axis=1, return_inverse=True)
    mus = _prices(same.reshape(-1), time, held, points // 3) if tight.any() else [0.0]
    capacity = float(p.capacity[tight].sum())
    best = critical_path_bound(p)
    grid = [(lam, mu) for lam in _coarse_first(lams) for mu in _coarse_first(mus)]
    for lam, mu in grid[1:]:  # the first is (0, 0): the critical path
        if deadline is not None and time_now() > deadline:
            return best, False
        priced = np.full((p.n, p.num_devices), np.inf)
        np.minimum.at(priced, (owner, device), time + lam * error + mu * held)
        fin = device_finish_times(p, durations=priced)
        value = float(fin.min(axis=1).max()) - lam * (budget or 0) - mu * capacity
        best = max(best, math.ceil(value - 1e-9))
    return best, True


def _coarse_first(values: list[float]) -> list[float]:
    """``values`` (0 first, then ascending) with 0 kept first and the rest in an order that
    halves the spacing each round (the lowest, the middle, the quarters, ...), so a grid cut
    off early still spans the range."""
    rest, out, step = values[1:], values[:1], len(values)
    seen: set[int] = set()
    while step >= 1 and len(seen) < len(rest):
        for i in range(0, len(rest), step):
            if i not in seen:
                seen.add(i)
                out.append(rest[i])
        step //= 2
    out += [rest[i] for i in range(len(rest)) if i not in seen]
    return out


def prices_bind(problem: Problem) -> bool:
    """Whether :func:`priced_path_within` has something to price: an error budget, or a
    device whose capacity cannot hold every op's largest resident weights."""
    return problem.has_error_modes or bool(_weights_overflow(problem, *_rows(problem)).any())


def _rows(p: Problem) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(op, device, resident weights)`` of every (mode, device of it)."""
    width = p.modes.width
    return np.repeat(p.modes.op, width), p.modes.devs, np.repeat(p.modes.w, width).astype(float)


def _weights_overflow(
    p: Problem, owner: np.ndarray, device: np.ndarray, held: np.ndarray
) -> np.ndarray:
    """Per device: whether its capacity cannot hold every op's largest resident weights."""
    if not p.use_memory:
        return np.zeros(p.num_devices, dtype=bool)
    most = np.zeros((p.n, p.num_devices))
    np.maximum.at(most, (owner, device), held)
    return most.sum(axis=0) > p.capacity


def _prices(group: np.ndarray, time: np.ndarray, cost: np.ndarray, count: int) -> list[float]:
    """0 and ``count`` prices spread (by quantile, in log) over the time each row saves per
    unit of ``cost`` against the fastest costless row of its ``group``."""
    free = cost == 0
    fastest = np.full(int(group.max()) + 1, np.inf)
    np.minimum.at(fastest, group[free], time[free])
    dear = ~free
    ratio = (fastest[group[dear]] - time[dear]) / cost[dear]
    ratio = ratio[np.isfinite(ratio) & (ratio > 0)]
    if ratio.size == 0:
        return [0.0]
    grid = np.exp(np.unique(np.quantile(np.log(ratio), np.linspace(0.0, 1.0, max(count, 2)))))
    return [0.0, *grid.tolist()]


def heads_and_tails(problem: Problem) -> tuple[np.ndarray, np.ndarray]:
    """Earliest start (head) and minimal remaining time including the op itself (tail).

    Any schedule satisfies ``start[v] >= head[v]`` and ``makespan >= start[v] + tail[v]``.
    """
    problem = problem.relaxation()  # bounds of the question asked
    from hetsched.schedule.bounds.levels import heads_and_tails_fast

    # Level-by-level numpy (equal to the per-op loop; tested in tests/schedule/test_scale.py).
    return heads_and_tails_fast(problem)


def heads_and_tails_reference(problem: Problem) -> tuple[np.ndarray, np.ndarray]:
    """The per-op loop :func:`heads_and_tails` is tested against (slow; tests only)."""
    problem = problem.relaxation()  # bounds of the question asked
    p = problem
    fin = device_finish_times(p)
    dur = np.where(p.allowed, p.dur, _BIG)
    # earliest start over the devices the op may use (fin - dur is 0 on the others)
    head = np.maximum(0, np.where(p.allowed, fin - dur, _BIG).min(axis=1))
    return head.astype(np.int64), device_tail_times(p).min(axis=1)


def serial_horizon(p: Problem) -> int:
    """A makespan every plan's mode choice can meet: ops one after another, each in its
    slowest mode, every edge's transfer in between at its slowest."""
    slowest = np.maximum.reduceat(p.mode_dur, p.modes.op_start[:-1])
    comm = int(p.comm.max(axis=(1, 2)).sum()) if p.num_edges else 0
    return int(slowest.sum()) + comm
