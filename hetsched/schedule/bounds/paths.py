"""Longest-path bounds: per-device finish and tail times with the transfers support forces."""

from __future__ import annotations

import itertools

import numpy as np

from hetsched.problem import Problem

__all__ = [
    "critical_path_bound",
    "device_finish_times",
    "device_tail_times",
    "heads_and_tails",
    "heads_and_tails_reference",
]

_BIG = np.iinfo(np.int64).max // 8


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
    problem = problem.relaxation()  # bounds of the question asked
    p = problem
    dur = np.where(p.allowed, p.dur, _BIG)
    fin = np.where(p.allowed, p.dur, _BIG).astype(np.int64)
    if first_on is not None:
        fin[0] = _BIG
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
        fin[v] = np.where(p.allowed[v], np.minimum(ready + dur[v], _BIG), _BIG)
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
