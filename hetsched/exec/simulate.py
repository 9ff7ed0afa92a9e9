"""Discrete-event replay of a plan under other or noisy durations, vectorised over samples.

The replay keeps the plan's assignment and its order on every device and link; each op
starts when its inputs have arrived and its device is free (policy ``"asap"``, a self-timed
run) or additionally not before its planned start (policy ``"plan"``, as
:func:`~hetsched.exec.executor.execute` runs by default). All samples advance together:
one numpy vector per event.

Examples
--------
>>> import numpy as np
>>> from hetsched.problem import Problem
>>> from hetsched.schedule.latency.heuristics import solve_heft
>>> p = Problem.from_arrays(names=["a", "b", "c"], devices=["x", "y"],
...     exec_time=np.array([[2.0, 3.0], [4.0, 4.0], [4.0, 4.0]]),
...     edges=[(0, 1, 1.0), (0, 2, 1.0)], comm_latency=np.array([[0, 1], [1, 0]]), quantum=1.0)
>>> plan = solve_heft(p, time_limit=1, seed=0)
>>> float(simulate(plan, p).makespan[0]) == plan.makespan
True
>>> r = robustness(plan, p, noise=0.2, samples=200, seed=1)
>>> r["planned"], r["median"] > 0.8 * r["planned"]
(7.0, True)
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from hetsched.errors import UsageError
from hetsched.plan import Plan, schedule_arrays
from hetsched.problem import Problem

__all__ = ["Simulation", "robustness", "simulate"]

DISTRIBUTIONS = ("lognormal", "uniform")


@dataclass(frozen=True)
class Simulation:
    """Replayed times (plan time units) of every sample: ``start``/``finish`` are ``[S, n]``."""

    makespan: np.ndarray
    start: np.ndarray
    finish: np.ndarray
    planned: float


def _factors(
    rng: np.random.Generator, noise: float, shape: tuple[int, int], dist: str
) -> np.ndarray:
    if noise == 0:
        return np.ones(shape)
    if dist == "lognormal":  # median 1, log-sd = noise
        return np.exp(rng.normal(0.0, noise, size=shape))
    return rng.uniform(1.0 - noise, 1.0 + noise, size=shape)


def simulate(
    plan: Plan,
    problem: Problem,
    *,
    exec_time: np.ndarray | None = None,
    comm_time: np.ndarray | None = None,
    noise: float = 0.0,
    samples: int = 1,
    seed: int = 0,
    dist: str = "lognormal",
    policy: str = "asap",
) -> Simulation:
    """Replay ``plan`` with durations from ``exec_time`` (``[n, D]``, plan time) and
    ``comm_time`` (``[E, D, D]``), defaulting to ``problem``'s, times multiplicative noise.

    ``noise`` is the log-sd of a median-1 lognormal factor (``dist="lognormal"``) or the
    half-width of a uniform factor ``1 ± noise`` (``dist="uniform"``), drawn per op and per
    transfer and sample from ``numpy.random.default_rng(seed)``.

    Raises
    ------
    UsageError
        For a negative noise, a uniform noise of 1 or more, no samples, an unknown
        distribution or policy, or duration arrays of the wrong shape.
    """
    if dist not in DISTRIBUTIONS or policy not in ("asap", "plan"):
        msg = f"dist must be one of {DISTRIBUTIONS} and policy 'asap' or 'plan'"
        raise UsageError(msg)
    if not (noise >= 0 and samples >= 1) or (dist == "uniform" and noise >= 1):
        msg = f"need noise >= 0 (< 1 for uniform) and samples >= 1, got {noise!r}, {samples!r}"
        raise UsageError(msg)
    p, q = problem, problem.quantum
    assign, _ = schedule_arrays(plan, p)
    ex = p.dur.astype(float) if exec_time is None else np.asarray(exec_time, float) / q
    cm = p.comm.astype(float) if comm_time is None else np.asarray(comm_time, float) / q
    if ex.shape != p.dur.shape or cm.shape != p.comm.shape:
        msg = f"duration arrays must have shapes {p.dur.shape} and {p.comm.shape}"
        raise UsageError(msg)
    rng = np.random.default_rng(seed)
    nodes = np.arange(p.n)
    op_dur = ex[nodes, assign][None, :] * _factors(rng, noise, (samples, p.n), dist)
    k_all = np.arange(p.num_edges)
    edge_comm = cm[k_all, assign[p.edge_src], assign[p.edge_dst]]
    x_dur = edge_comm[None, :] * _factors(rng, noise, (samples, p.num_edges), dist)
    events = _events(plan, p, assign, policy == "plan")
    start = np.zeros((samples, p.n))
    finish = np.zeros((samples, p.n))
    arrive = np.zeros((samples, p.num_edges))
    dev_free = np.zeros((samples, p.num_devices))
    link_free = np.zeros((samples, max(1, len(p.link_names))))
    contention = p.link_contention and bool(p.link_names)
    for _, kind, i, rel in events:
        if kind == 0:  # op i
            d = int(assign[i])
            t = np.maximum(dev_free[:, d], rel)
            for u, k in p.preds[i]:
                t = np.maximum(t, finish[:, u] if assign[u] == d else arrive[:, k])
            start[:, i] = t
            finish[:, i] = dev_free[:, d] = t + op_dur[:, i]
        else:  # transfer over edge i
            u = int(p.edge_src[i])
            t = np.maximum(finish[:, u], rel)
            route = p.route_links.get((int(assign[u]), int(assign[p.edge_dst[i]])), ())
            if contention and route:
                t = np.maximum(t, link_free[:, list(route)].max(axis=1))
                link_free[:, list(route)] = (t + x_dur[:, i])[:, None]
            arrive[:, i] = t + x_dur[:, i]
    return Simulation(finish.max(axis=1) * q, start * q, finish * q, plan.makespan)


def _events(
    plan: Plan, p: Problem, assign: np.ndarray, release: bool
) -> list[tuple[tuple[float, float, int], int, int, float]]:
    """Ops and transfers in an order consistent with dependencies and the plan's orders."""
    q = p.quantum
    out: list[tuple[tuple[float, float, int], int, int, float]] = []
    for i, x in enumerate(p.names):
        s, f = plan.start[x] / q, plan.finish[x] / q
        out.append(((s, f, 2 * i), 0, i, s if release else 0.0))
    planned = {(t.src, t.dst): t for t in plan.transfers}
    for k in range(p.num_edges):
        u, v = int(p.edge_src[k]), int(p.edge_dst[k])
        if assign[u] == assign[v]:
            continue
        t = planned.get((p.names[u], p.names[v]))
        s = t.start / q if t else plan.finish[p.names[u]] / q
        f = t.finish / q if t else s + float(p.comm[k, assign[u], assign[v]])
        out.append(((s, f, 2 * u + 1), 1, k, s if release else 0.0))
    out.sort(key=lambda e: e[0])
    return out


def robustness(
    plan: Plan,
    problem: Problem,
    noise: float = 0.1,
    samples: int = 100,
    seed: int = 0,
    *,
    dist: str = "lognormal",
    policy: str = "asap",
) -> dict[str, float]:
    """Makespan statistics of ``plan`` under noise: ``median``, ``p95``, ``mean``, ``worst``,
    ``planned`` and ``slowdown_p95`` (``p95 / planned``), in plan time."""
    ms = simulate(plan, problem, noise=noise, samples=samples, seed=seed, dist=dist,
                  policy=policy).makespan  # fmt: skip
    planned = float(plan.makespan)
    p95 = float(np.percentile(ms, 95))
    return {
        "median": float(np.median(ms)),
        "p95": p95,
        "mean": float(ms.mean()),
        "worst": float(ms.max()),
        "planned": planned,
        "slowdown_p95": p95 / planned if planned > 0 else 1.0,
    }
