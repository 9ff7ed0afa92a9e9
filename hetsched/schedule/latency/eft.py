"""A fast earliest-finish-time list schedule: the first plan on graphs where HEFT takes seconds.

* :func:`eft_schedule` - EFT without insertion, devices steered by a penalty per (op, device).
* :func:`first_plan` - the best of a few EFT variants (load-LP multipliers, slow devices
  forbidden), re-timed; well under 5 s at 10k ops.

Examples
--------
>>> import numpy as np
>>> from hetsched.problem import Problem
>>> p = Problem.from_arrays(names=["a", "b", "c"], devices=["x", "y"],
...     exec_time=np.array([[2.0, 3.0], [4.0, 4.0], [4.0, 4.0]]),
...     edges=[(0, 1, 1.0), (0, 2, 1.0)], quantum=1.0)
>>> first_plan(p).makespan
6.0
"""

from __future__ import annotations

import math

import numpy as np

from hetsched.plan import MemoryTracker, Plan, overflow, plan_from_schedule
from hetsched.problem import Problem
from hetsched.schedule.bounds.levels import heads_and_tails_fast
from hetsched.schedule.bounds.load import load_dual
from hetsched.schedule.latency.listsched import priority_order, retime

__all__ = [
    "eft_schedule",
    "first_plan",
    "fits_memory",
]

_BIG = np.iinfo(np.int64).max // 8


def eft_schedule(
    p: Problem, order: list[int], penalty: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Earliest-finish-time list schedule without insertion; ``(assign, start)``.

    Each op goes to the device minimising ``finish + penalty[v, d]`` (default 0); with
    ``p.use_memory``, a device whose capacity the op would overflow only when all do.
    Transfers are not shared here; :func:`first_plan` re-times the result exactly.
    """
    assign = np.zeros(p.n, dtype=np.int64)
    start = np.zeros(p.n, dtype=np.int64)
    fin = np.zeros(p.n, dtype=np.int64)
    dev_free = np.zeros(p.num_devices, dtype=np.int64)
    memory = MemoryTracker(p) if p.use_memory else None
    dur = np.where(p.allowed, p.dur, _BIG)
    preds = p.preds
    for v in order:
        pv = preds[v]
        if pv:
            us = np.fromiter((u for u, _ in pv), np.int64, len(pv))
            ks = np.fromiter((k for _, k in pv), np.int64, len(pv))
            ready = (fin[us][:, None] + p.comm[ks, assign[us], :]).max(axis=0)
            s = np.maximum(ready, dev_free)
        else:
            s = dev_free
        f = s + dur[v]
        score = f if penalty is None else f + penalty[v]
        if memory is not None:
            full = [
                not p.allowed[v, d] or not memory.fits(v, int(p.device_mode[v, d]))
                for d in range(p.num_devices)
            ]
            score = np.where(full, score + 1e18, score)
        d = int(score.argmin())
        assign[v], start[v], fin[v] = d, s[d], f[d]
        dev_free[d] = f[d]
        if memory is not None:
            memory.place(v, int(p.device_mode[v, d]))
    return assign, start


def fits_memory(p: Problem, assign: np.ndarray) -> bool:
    """Whether every device holds what ``assign`` puts there (always, without memory)."""
    return overflow(p, p.device_mode[np.arange(p.n), assign]) is None


def first_plan(
    p: Problem,
    *,
    lower_bound: int = 0,
    alphas: tuple[float, ...] = (0.0, 2.0, 8.0),
    gammas: tuple[float, ...] = (3.0, math.inf),
) -> Plan:
    """Best of a few EFT list schedules by upward rank, re-timed; well under 5 s at 10k ops.

    The rank is the optimistic tail (fastest device, cheapest transfer). Variants steer the
    device choice with the load LP's dual multipliers ``lambda`` (penalty ``alpha *``
    reduced cost ``lambda_d dur[v,d] - min_e lambda_e dur[v,e]``) and forbid devices more
    than ``gamma`` times slower than an op's fastest, so greedy finish times do not pile
    work onto slow devices. ``stats["variant"]`` names the winner.
    """
    _, tail = heads_and_tails_fast(p)
    order = priority_order(p, -tail.astype(np.float64))
    _, lam = load_dual(p, iterations=100)
    w = np.where(p.allowed, p.dur, np.inf) * lam[None, :]
    red = np.where(np.isfinite(w), w - w.min(axis=1, keepdims=True), 0.0)
    ratio = np.where(p.allowed, p.dur, np.inf) / np.maximum(p.min_dur, 1)[:, None]
    best: tuple[int, np.ndarray, np.ndarray, dict[tuple[int, int], int], str] | None = None
    for gamma in gammas:
        forbid = np.where(ratio > gamma, 1e15, 0.0)
        for alpha in alphas:
            assign, start = eft_schedule(p, order, alpha * red + forbid)
            start, xfer = retime(p, assign, priority_order(p, start))
            ms = int((start + p.dur[np.arange(p.n), assign]).max())
            if not fits_memory(p, assign):
                ms += _BIG  # over capacity: only if no variant fits
            if best is None or ms < best[0]:
                best = (ms, assign, start, xfer, f"alpha={alpha:g},gamma={gamma:g}")
    assert best is not None
    _, assign, start, xfer, variant = best
    return plan_from_schedule(
        p,
        assign=assign,
        start=start,
        solver="eft",
        lower_bound=lower_bound,
        transfer_start=xfer,
        stats={"variant": variant},
    )
