"""Brute-force optimum of tiny instances, written independently of every solver.

Every assignment x every topological order; each order is dispatched semi-actively (each op
starts as early as its inputs and its device allow, devices run ops in the order's
sequence). Some optimal schedule is semi-active with per-device orders taken from one global
topological order (sort an optimal schedule's ops by start time, ties by index), so the
minimum over this enumeration is the optimum. Link contention is not supported.
Also the instance builders the exact-solver tests share (random tiny DAGs, STG graphs).
"""

from __future__ import annotations

import csv
import itertools
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from hetsched.graph.formats import read_stg
from hetsched.plan import Plan, plan_from_schedule
from hetsched.problem import Problem

__all__ = [
    "brute_force_makespan",
    "naive_plan",
    "random_tiny_problem",
    "semi_active_optimum",
    "stg_optima",
    "stg_problem",
    "topological_orders",
]


def topological_orders(n: int, preds: list[list[int]]) -> Iterator[list[int]]:
    """All topological orders of the DAG ``preds`` (lists of predecessor indices)."""
    placed = [False] * n
    order: list[int] = []

    def rec() -> Iterator[list[int]]:
        if len(order) == n:
            yield list(order)
            return
        for v in range(n):
            if not placed[v] and all(placed[u] for u in preds[v]):
                placed[v] = True
                order.append(v)
                yield from rec()
                order.pop()
                placed[v] = False

    return rec()


def device_bytes(p: Problem, assign: Sequence[int], j: int) -> float:
    """Static residency, written out independently of hetsched.plan.memory: the bytes of the
    ops on ``j`` plus one copy of each tensor an op on ``j`` reads from another device."""
    own = sum(p.memory[v] for v in range(len(p.names)) if assign[v] == j)
    received = set()
    for k in range(len(p.edge_src)):
        u, v = int(p.edge_src[k]), int(p.edge_dst[k])
        if assign[v] == j and assign[u] != j:
            received.add(int(p.edge_tensor[k]))
    return own + sum(float(p.tensors.nbytes[t]) for t in received)


def brute_force_makespan(p: Problem, accept: Callable[[Sequence[int]], bool] | None = None) -> int:
    """The optimal makespan (integer units) of ``p`` by exhaustive enumeration, over the
    assignments ``accept`` takes (all by default)."""
    n, d = len(p.names), len(p.devices)
    preds: list[list[tuple[int, int]]] = [[] for _ in range(n)]
    for k in range(len(p.edge_src)):
        preds[int(p.edge_dst[k])].append((int(p.edge_src[k]), k))
    choices = [[j for j in range(d) if p.allowed[v, j]] for v in range(n)]
    assignments = [
        a
        for a in itertools.product(*choices)
        if not (p.use_memory and any(device_bytes(p, a, j) > p.capacity[j] for j in range(d)))
        and (accept is None or accept(a))
    ]
    best = semi_active_optimum(
        d, preds, assignments, lambda v, j: int(p.dur[v, j]), lambda k, a, b: int(p.comm[k, a, b])
    )
    assert best is not None
    return int(best)


def semi_active_optimum(
    d: int,
    preds: list[list[tuple[int, Any]]],
    assignments: Iterable[Sequence[int]],
    dur: Callable[[int, int], float],
    comm: Callable[[Any, int, int], float],
) -> float | None:
    """The least makespan over ``assignments`` x every topological order, each dispatched
    semi-actively: ``preds[v]`` lists ``(u, key)``, an input from ``u`` on device ``a`` to
    ``v`` on ``b`` arrives ``comm(key, a, b)`` after ``u`` ends; ``dur(v, j)`` is ``v``'s
    time on ``j``. ``None`` when there is no assignment."""
    n = len(preds)
    orders = list(topological_orders(n, [[u for u, _ in pr] for pr in preds]))
    best = None
    for assign in assignments:
        for order in orders:
            free = [0.0] * d
            finish = [0.0] * n
            for v in order:
                j = assign[v]
                ready = free[j]
                for u, key in preds[v]:
                    ready = max(ready, finish[u] + comm(key, assign[u], j))
                finish[v] = ready + dur(v, j)
                free[j] = max(free[j], finish[v])
            span = max(finish)
            if best is None or span < best:
                best = span
    return best


def random_tiny_problem(seed: int, *, n: int = 6, devices: int = 3) -> Problem:
    """Random DAG, heterogeneous integer durations (some unsupported), random transfers."""
    rng = np.random.default_rng(seed)
    ex = rng.integers(1, 7, size=(n, devices)).astype(float)
    ex[rng.random((n, devices)) < 0.2] = np.inf
    for v in range(n):
        if not np.isfinite(ex[v]).any():
            ex[v, rng.integers(devices)] = float(rng.integers(1, 7))
    edges = [
        (u, v, float(rng.integers(0, 3)))
        for u in range(n)
        for v in range(u + 1, n)
        if rng.random() < 0.35
    ]
    lat = rng.integers(0, 3, size=(devices, devices)).astype(float)
    inv = rng.integers(0, 2, size=(devices, devices)).astype(float)
    np.fill_diagonal(lat, 0.0)
    return Problem.from_arrays(
        names=[f"op{i}" for i in range(n)],
        devices=[f"d{j}" for j in range(devices)],
        exec_time=ex,
        edges=edges,
        comm_latency=lat,
        comm_inv_bandwidth=inv,
        quantum=1.0,
        name=f"tiny{seed}",
    )


def naive_plan(p: Problem, assign: list[int] | None = None) -> Plan:
    """A poor but feasible warm start: ops in index order on ``assign`` (default: each on
    its first allowed device)."""
    n = len(p.names)
    if assign is None:
        assign = [int(np.flatnonzero(p.allowed[v])[0]) for v in range(n)]
    free = [0] * len(p.devices)
    start = [0] * n
    finish = [0] * n
    for v in range(n):
        j = assign[v]
        ready = free[j]
        for k in np.flatnonzero(p.edge_dst == v):
            u = int(p.edge_src[k])
            ready = max(ready, finish[u] + int(p.comm[k, assign[u], j]))
        start[v], finish[v] = ready, ready + int(p.dur[v, j])
        free[j] = finish[v]
    return plan_from_schedule(p, assign=assign, start=start, solver="naive")


STG_DIR = Path(__file__).resolve().parent / "data" / "stg50"


def stg_problem(name: str, processors: int) -> Problem:
    """An STG graph of ``tests/data/stg50`` on identical processors with free transfers."""
    g = read_stg(STG_DIR / name)
    index = {node.name: i for i, node in enumerate(g.nodes)}
    cost = [(node.cost or {})["*"] for node in g.nodes]
    return Problem.from_arrays(
        names=[node.name for node in g.nodes],
        devices=[f"p{i}" for i in range(processors)],
        exec_time=np.array([[c] * processors for c in cost]),
        edges=[(index[e.src], index[e.dst], 0.0) for e in g.edges],
        quantum=1.0,
        units="stg",
        name=g.name,
    )


def stg_optima() -> dict[tuple[str, int], int]:
    """``(file name, processors) -> published optimal makespan`` from ``optima.csv``."""
    out = {}
    with open(STG_DIR / "optima.csv", encoding="utf-8") as fh:
        for row in csv.reader(fh):
            if len(row) == 3:
                out[(row[0].rsplit("/", 1)[-1], int(row[1]))] = int(row[2])
    return out
