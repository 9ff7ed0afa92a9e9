"""Benchmark instances: small picklable specs, and the Problems they build.

An :class:`InstanceSpec` names how to build a :class:`~hetsched.problem.Problem` (a seeded
random DAG, an STG file on ``P`` processors, a zoo model on a preset, a workflow JSON, a
user graph on a platform). Specs travel to workers (Ray or serial) and are rebuilt there,
so every worker sees bit-identical problems.

Random DAGs (``kind="random"``) follow the layered generator of the HEFT paper (Topcuoglu,
Hariri & Wu 2002): ``n`` ops in about ``sqrt(n)/alpha`` layers, each op fed by the layer
above plus random forward edges (out-degree up to ``outdeg``). Costs are *related machines
plus noise*: op ``i`` has an integer work ``c_i`` in [1, 40], device ``d`` an integer
slowness ``m_d`` in {1..4} (device 0 is the fastest, ``m_0 = 1``), and

``exec[i, d] = c_i * m_d``                         (``beta = 0``: related machines, exact)
``exec[i, d] = round(c_i * m_d * U(1-beta/2, 1+beta/2))`` (``beta > 0``: unrelated)

Transfers: integer size ``s_k`` per edge, symmetric integer inverse bandwidth ``r_ab`` in
{1, 2} (``r_01 = 1``), ``comm[k, a, b] = s_k * r_ab``; sizes are scaled so that mean transfer
time / mean execution time is the requested CCR. Everything is an integer with quantum 1,
so a peer that models ``time = cost / speed`` and ``size / bandwidth`` (anrg-saga) sees
exactly our instance when ``beta = 0``.

Examples
--------
>>> spec = random_spec(20, 3, 1.0, seed=1)
>>> p = build_problem(spec)
>>> p.n, p.num_devices, p.quantum
(20, 3, 1.0)
>>> bool((p.edge_src < p.edge_dst).all())
True
>>> build_problem(spec).dur.tolist() == p.dur.tolist()
True
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from hetsched.errors import UsageError
from hetsched.problem import Problem

__all__ = ["InstanceSpec", "build_problem", "memory_bound", "random_arrays", "random_spec"]


@dataclass(frozen=True)
class InstanceSpec:
    """How to build one benchmark instance.

    ``kind`` is ``random``, ``stg``, ``model``, ``workflow`` or ``graph``; ``params`` holds
    the kind's arguments (plain JSON values). ``optimum`` / ``known_lb`` / ``known_ub`` are
    published values (STG optima CSVs), ``None`` when unknown.
    """

    name: str
    suite: str
    kind: str
    params: dict[str, Any] = field(default_factory=dict)
    optimum: float | None = None
    known_lb: float | None = None
    known_ub: float | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "suite": self.suite,
            "kind": self.kind,
            "params": dict(self.params),
            "optimum": self.optimum,
            "known_lb": self.known_lb,
            "known_ub": self.known_ub,
        }


def random_spec(
    n: int,
    devices: int,
    ccr: float,
    *,
    seed: int,
    beta: float = 0.0,
    alpha: float = 1.0,
    outdeg: int = 3,
    suite: str = "random",
    hold: float | None = None,
) -> InstanceSpec:
    """Spec of one seeded random layered DAG (see the module docstring); with ``hold``, a
    memory-bound one: each op holds weights, the devices but the slowest hold ``hold`` of
    them all together (:func:`memory_bound`)."""
    fam = "related" if beta == 0 else f"unrel{beta:g}"
    name = f"rnd-n{n}-d{devices}-ccr{ccr:g}-{fam}-a{alpha:g}-s{seed}"
    params = dict(n=n, devices=devices, ccr=ccr, seed=seed, beta=beta, alpha=alpha, outdeg=outdeg)
    if hold is not None:
        if not 0 < hold <= 1:
            msg = f"hold must be in (0, 1], got {hold!r}"
            raise UsageError(msg)
        name += f"-hold{hold:g}"
        params["hold"] = hold
    return InstanceSpec(name, suite, "random", params)


def memory_bound(problem: Problem, hold: float, seed: int) -> Problem:
    """``problem`` with weights that bind: op ``i`` holds ``work_i x U(0.5, 1.5)`` MiB (its
    duration on the fastest device as work) for the whole run; the slowest device (the host)
    holds any amount, the others ``hold`` of all weights together, in equal shares.

    >>> p = memory_bound(build_problem(random_spec(20, 3, 1.0, seed=0)), 0.3, seed=0)
    >>> p.use_memory, int((p.capacity[:2] * 2 / p.modes.memory.max()).round().min()) > 0
    (True, True)
    """
    rng = np.random.default_rng(seed + 7919)
    work = problem.dur.min(axis=1).astype(float)
    weights = work * rng.uniform(0.5, 1.5, problem.n) * 2**20
    host = int(np.argmax(problem.dur.sum(axis=0)))  # the slowest device
    others = problem.num_devices - 1
    cap = np.full(problem.num_devices, hold * weights.sum() / max(1, others))
    cap[host] = np.inf
    return problem.with_memory(cap, op_memory=weights)


def random_arrays(
    n: int,
    devices: int,
    ccr: float,
    *,
    seed: int,
    beta: float = 0.0,
    alpha: float = 1.0,
    outdeg: int = 3,
) -> dict[str, Any]:
    """The random instance as arrays, with the related-machine factors saga needs.

    Returns a dict with ``exec`` (int ``[n, D]``), ``edges`` (``(u, v, size)``), ``inv_bw``
    (int ``[D, D]``), ``work`` (``c_i``) and ``slowness`` (``m_d``).
    """
    if n < 2 or devices < 1 or ccr < 0 or alpha <= 0 or outdeg < 1:
        msg = f"bad random DAG parameters n={n} devices={devices} ccr={ccr} alpha={alpha}"
        raise UsageError(msg)
    rng = np.random.default_rng(seed)
    n_layers = max(2, min(n, round(math.sqrt(n) / alpha)))
    layer = np.sort(np.concatenate([np.arange(n_layers), rng.integers(0, n_layers, n - n_layers)]))
    first = {int(lv): int(np.flatnonzero(layer == lv)[0]) for lv in np.unique(layer)}
    edges: set[tuple[int, int]] = set()
    for v in range(n):
        lv = int(layer[v])
        if lv > 0:  # one input from the layer above keeps the DAG layered and connected
            above = np.flatnonzero(layer == lv - 1)
            edges.add((int(rng.choice(above)), v))
    for u in range(n):
        later = np.arange(first.get(int(layer[u]) + 1, n), n)
        if later.size:
            k = int(rng.integers(0, min(outdeg, later.size) + 1))
            for v in rng.choice(later, size=k, replace=False):
                edges.add((u, int(v)))
    work = rng.integers(1, 41, n)
    slowness = np.concatenate([[1], rng.integers(1, 5, devices - 1)]).astype(np.int64)
    exec_ = work[:, None] * slowness[None, :]
    if beta > 0:
        noise = rng.uniform(1 - beta / 2, 1 + beta / 2, exec_.shape)
        exec_ = np.maximum(1, np.round(exec_ * noise)).astype(np.int64)
    inv_bw = np.ones((devices, devices), dtype=np.int64)
    for a in range(devices):
        for b in range(a + 1, devices):
            if (a, b) != (0, 1):
                inv_bw[a, b] = inv_bw[b, a] = int(rng.integers(1, 3))
    np.fill_diagonal(inv_bw, 0)
    elist = sorted(edges)
    mean_r = float(inv_bw[~np.eye(devices, dtype=bool)].mean()) if devices > 1 else 1.0
    scale = ccr * float(exec_.mean()) / mean_r
    sizes = np.round(rng.uniform(0, 2 * scale, len(elist))).astype(np.int64)
    return {
        "exec": exec_,
        "edges": [(u, v, int(s)) for (u, v), s in zip(elist, sizes, strict=True)],
        "inv_bw": inv_bw,
        "work": work,
        "slowness": slowness,
    }


def _random_problem(spec: InstanceSpec) -> Problem:
    p = spec.params
    arr = random_arrays(
        p["n"],
        p["devices"],
        p["ccr"],
        seed=p["seed"],
        beta=p.get("beta", 0.0),
        alpha=p.get("alpha", 1.0),
        outdeg=p.get("outdeg", 3),
    )
    d = p["devices"]
    problem = Problem.from_arrays(
        names=[f"t{i}" for i in range(p["n"])],
        devices=[f"d{j}" for j in range(d)],
        exec_time=arr["exec"].astype(float),
        edges=[(u, v, float(s)) for u, v, s in arr["edges"]],
        comm_latency=np.zeros((d, d)),
        comm_inv_bandwidth=arr["inv_bw"].astype(float),
        quantum=1.0,
        units="u",
        name=spec.name,
        platform_name=f"related-{d}" if p.get("beta", 0.0) == 0 else f"unrelated-{d}",
    )
    hold = p.get("hold")
    return problem if hold is None else memory_bound(problem, float(hold), int(p["seed"]))


def build_problem(spec: InstanceSpec) -> Problem:
    """Build the :class:`Problem` of ``spec`` (deterministic)."""
    if spec.kind == "random":
        return _random_problem(spec)
    if spec.kind == "stg":
        from hetsched.costmodel import Platform
        from hetsched.graph.formats import read_stg

        g = read_stg(spec.params["path"])
        return Problem.build(g, Platform.preset(f"homogeneous-{spec.params['processors']}"))
    if spec.kind == "model":
        from hetsched.graph import zoo

        g = zoo.graph(spec.params["model"], spec.params.get("size", "tiny"))
        return Problem.build(g, spec.params["platform"], split=bool(spec.params.get("split")))
    if spec.kind == "workflow":
        from hetsched.bench.workflows import workflow_problem

        return workflow_problem(spec.params["path"], spec.params.get("devices", 4))
    if spec.kind == "graph":
        from pathlib import Path

        from hetsched.costmodel import Platform
        from hetsched.graph.formats import load

        plat = spec.params["platform"]
        platform = Platform.load(plat) if Path(plat).is_file() else Platform.preset(plat)
        return Problem.build(load(spec.params["path"]), platform)
    msg = f"unknown instance kind {spec.kind!r}"
    raise UsageError(msg)
