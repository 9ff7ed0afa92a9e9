"""Discrete-event replay of a plan under other or noisy durations, vectorised over samples.

The replay keeps the plan's modes, its transfers (one per tensor and destination device)
and its order on every device and link; each op starts when each input is on every device of
its mode and all of them are free (policy ``"asap"``, a self-timed run) or additionally not
before its planned start (policy ``"plan"``, as :func:`~hetsched.exec.executor.execute`
runs by default). All samples advance together: one numpy vector per event.

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

import math
from dataclasses import dataclass

import numpy as np

from hetsched.errors import UsageError
from hetsched.plan import Plan, Transfer, mode_ids
from hetsched.plan.plan import nearest_source
from hetsched.problem import Problem

__all__ = ["Simulation", "check_noise", "planned_transfers", "robustness", "simulate"]

DISTRIBUTIONS = ("lognormal", "uniform")


def check_noise(noise: float, samples: int, dist: str = "lognormal") -> None:
    """Raise :class:`UsageError` for what :func:`simulate` refuses (commands call it first)."""
    if dist not in DISTRIBUTIONS:
        msg = f"dist must be one of {DISTRIBUTIONS}, got {dist!r}"
        raise UsageError(msg)
    if not (math.isfinite(noise) and noise >= 0) or (dist == "uniform" and noise >= 1):
        bound = " and < 1 for uniform noise" if dist == "uniform" else ""
        msg = f"noise must be a finite number >= 0{bound}, got {noise!r}"
        raise UsageError(msg)
    if isinstance(samples, bool) or not isinstance(samples, int) or samples < 1:
        msg = f"samples must be an integer >= 1, got {samples!r}"
        raise UsageError(msg)


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
    """Replay ``plan`` with durations from ``exec_time`` and ``comm_time`` (plan time),
    defaulting to ``problem``'s, times multiplicative noise.

    ``exec_time`` is per mode (``[num_modes]``) or, for plans whose every op runs on one
    device, per (op, device) (``[n, D]``); ``comm_time`` is per tensor (``[T, D, D]``).
    ``noise`` is the log-sd of a median-1 lognormal factor (``dist="lognormal"``) or the
    half-width of a uniform factor ``1 ± noise`` (``dist="uniform"``), drawn per op and per
    transfer and sample from ``numpy.random.default_rng(seed)``.

    Raises
    ------
    UsageError
        For a negative noise, a uniform noise of 1 or more, no samples, an unknown
        distribution or policy, or duration arrays of the wrong shape.
    """
    if policy not in ("asap", "plan"):
        msg = f"policy must be 'asap' or 'plan', got {policy!r}"
        raise UsageError(msg)
    check_noise(noise, samples, dist)
    p, q = problem, problem.quantum
    m = mode_ids(plan, p)
    devs = [p.modes.devices_of(int(k)) for k in m]
    base = _op_durations(p, m, exec_time)
    cm = p.tensor_comm.astype(float) if comm_time is None else np.asarray(comm_time, float) / q
    if cm.shape != p.tensor_comm.shape:
        msg = f"comm_time must have shape {p.tensor_comm.shape} (tensor, device, device)"
        raise UsageError(msg)
    xfers = _transfers(plan, p, m)
    rng = np.random.default_rng(seed)
    op_dur = base[None, :] * _factors(rng, noise, (samples, p.n), dist)
    x_base = np.array([cm[t, a, b] for t, a, b, _ in xfers], dtype=float)
    x_dur = x_base[None, :] * _factors(rng, noise, (samples, len(xfers)), dist)
    slot = {(t, b): j for j, (t, _a, b, _s) in enumerate(xfers)}
    release = policy == "plan"
    events: list[tuple[tuple[float, float, int], int, int, float]] = []
    for i, x in enumerate(p.names):
        s, f = plan.start[x] / q, plan.finish[x] / q
        events.append(((s, f, 2 * i), 0, i, s if release else 0.0))
    for j, (tx, ax, bx, sx) in enumerate(xfers):
        u = int(p.tensors.src[tx])
        fx = sx + float(p.tensor_comm[tx, ax, bx])
        events.append(((sx, fx, 2 * u + 1), 1, j, sx if release else 0.0))
    events.sort(key=lambda e: e[0])
    start = np.zeros((samples, p.n))
    finish = np.zeros((samples, p.n))
    arrive = np.zeros((samples, len(xfers)))
    dev_free = np.zeros((samples, p.num_devices))
    link_free = np.zeros((samples, max(1, len(p.link_names))))
    contention = p.link_contention and bool(p.link_names)
    for _, kind, i, rel in events:
        if kind == 0:  # op i: every input on every device of its mode, all of them free
            on = list(devs[i])
            t = np.maximum(dev_free[:, on].max(axis=1), rel)
            for u, k in p.preds[i]:
                tensor = int(p.edge_tensor[k])
                for b in on:
                    got = finish[:, u] if b in devs[u] else arrive[:, slot[tensor, b]]
                    t = np.maximum(t, got)
            start[:, i] = t
            finish[:, i] = t + op_dur[:, i]
            dev_free[:, on] = finish[:, i][:, None]
        else:  # transfer i
            tensor, a, b, _ = xfers[i]
            t = np.maximum(finish[:, int(p.tensors.src[tensor])], rel)
            route = list(p.route_links.get((a, b), ()))
            if contention and route:
                t = np.maximum(t, link_free[:, route].max(axis=1))
                link_free[:, route] = (t + x_dur[:, i])[:, None]
            arrive[:, i] = t + x_dur[:, i]
    return Simulation(finish.max(axis=1) * q, start * q, finish * q, plan.makespan)


def _op_durations(p: Problem, m: np.ndarray, exec_time: np.ndarray | None) -> np.ndarray:
    """Duration (units) of each op in its mode."""
    if exec_time is None:
        return p.mode_dur[m].astype(float)
    ex = np.asarray(exec_time, float) / p.quantum
    if ex.shape == (p.num_modes,):
        return ex[m]  # type: ignore[no-any-return]
    if ex.shape == p.dur.shape and np.all(p.modes.width[m] == 1):
        return ex[np.arange(p.n), p.modes.devs[p.modes.dev_start[m]]]  # type: ignore[no-any-return]
    msg = (
        f"exec_time must have shape ({p.num_modes},) (per mode) or {p.dur.shape} (per op and "
        "device, for a plan whose ops each run on one device)"
    )
    raise UsageError(msg)


def _transfers(plan: Plan, p: Problem, m: np.ndarray) -> list[tuple[int, int, int, float]]:
    """``(tensor, source, destination, planned start in units)`` of every transfer the plan
    needs; one it omits leaves from the fastest source when its producer ends."""
    q = p.quantum
    planned = planned_transfers(plan, p)
    need: set[tuple[int, int]] = set()
    for u, c, t in zip(
        p.edge_src.tolist(), p.edge_dst.tolist(), p.edge_tensor.tolist(), strict=True
    ):
        have = p.modes.devices_of(int(m[u]))
        need.update((t, b) for b in p.modes.devices_of(int(m[c])) if b not in have)
    out = []
    for t, b in sorted(need):
        u = int(p.tensors.src[t])
        have = p.modes.devices_of(int(m[u]))
        x = planned.get((t, b))
        a = p.device_index.get(x.src_device, -1) if x else -1
        if a not in have:
            a = nearest_source(p, t, have, b)
        out.append((t, a, b, x.start / q if x else plan.finish[p.names[u]] / q))
    return out


def planned_transfers(plan: Plan, p: Problem) -> dict[tuple[int, int], Transfer]:
    """The plan's transfers by ``(tensor, destination device)`` index; a transfer of a
    first-format plan (no tensor name, one reader) is the tensor of its edge."""
    tensor_id = {x: t for t, x in enumerate(p.tensors.names)}
    edge_tensor = {
        (p.names[u], p.names[v]): t
        for u, v, t in zip(
            p.edge_src.tolist(), p.edge_dst.tolist(), p.edge_tensor.tolist(), strict=True
        )
    }
    out = {}
    for x in plan.transfers:
        t = tensor_id.get(x.tensor, -1)
        if t < 0 and not x.tensor and len(x.dsts) == 1:
            t = edge_tensor.get((x.src, x.dsts[0]), -1)
        b = p.device_index.get(x.dst_device, -1)
        if t >= 0 and b >= 0:
            out[t, b] = x
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
