"""Graph families for parametrized solver tests: chains, fork-join, diamonds, layered DAGs."""

from __future__ import annotations

import dataclasses
import itertools

import numpy as np

from hetsched.problem import Problem

FAMILIES = ("chain", "fork_join", "diamond", "layered")


def whole_quanta(p: Problem) -> Problem:
    """The instance whose transfer times are ``p``'s rounded up to whole units: an integer
    instance (:attr:`~hetsched.problem.Problem.exact`), so the integer model is the question
    and exact solvers prove it (integer durations stay as they are)."""
    assert np.array_equal(p.mode_dur_floor, p.mode_dur), "durations must be whole units"
    return dataclasses.replace(p, tensor_comm_floor=p.tensor_comm.copy())


def family_edges(family: str, n: int, rng: np.random.Generator) -> list[tuple[int, int]]:
    if family == "chain":
        return [(i, i + 1) for i in range(n - 1)]
    if family == "fork_join":
        mid = list(range(1, n - 1))
        return [(0, i) for i in mid] + [(i, n - 1) for i in mid]
    if family == "diamond":
        edges = []
        for i in range(0, n - 3, 3):
            edges += [(i, i + 1), (i, i + 2), (i + 1, i + 3), (i + 2, i + 3)]
        return edges
    if family == "layered":
        width = max(2, int(np.sqrt(n)))
        layers = [list(range(i, min(i + width, n))) for i in range(0, n, width)]
        edges = []
        for a, b in itertools.pairwise(layers):
            for v in b:
                k = int(rng.integers(1, min(3, len(a)) + 1))
                edges += [(int(u), v) for u in rng.choice(a, size=k, replace=False)]
        return edges
    raise ValueError(family)


def random_problem(
    seed: int,
    *,
    n: int = 8,
    devices: int = 3,
    family: str = "layered",
    ccr: float = 1.0,
    unsupported: float = 0.15,
    uniform_links: bool = False,
) -> Problem:
    """A heterogeneous problem in integer units (quantum 1), seeded."""
    rng = np.random.default_rng(seed)
    edges = family_edges(family, n, rng)
    base = rng.integers(1, 10, size=n).astype(float)
    speed = rng.uniform(0.5, 2.0, size=devices)
    ex = np.round(base[:, None] * speed[None, :] * rng.uniform(0.7, 1.3, size=(n, devices)))
    ex = np.maximum(ex, 1.0)
    mask = rng.random((n, devices)) < unsupported
    mask[np.arange(n), rng.integers(0, devices, size=n)] = False
    ex[mask] = np.inf
    mean_w = float(base.mean())
    data = rng.integers(1, 10, size=len(edges)).astype(float)
    if uniform_links:
        inv = np.full((devices, devices), ccr * mean_w / 5.0)
    else:
        inv = rng.uniform(0.2, 2.0, size=(devices, devices)) * ccr * mean_w / 5.0
        inv = (inv + inv.T) / 2
    np.fill_diagonal(inv, 0.0)
    lat = np.where(np.eye(devices, dtype=bool), 0.0, 1.0)
    problem = Problem.from_arrays(
        names=[f"t{i}" for i in range(n)],
        devices=[f"d{j}" for j in range(devices)],
        exec_time=ex,
        edges=[(u, v, d) for (u, v), d in zip(edges, data, strict=True)],
        comm_latency=lat,
        comm_inv_bandwidth=inv,
        quantum=1.0,
        units="u",
        name=f"{family}-{n}-{seed}",
    )
    return whole_quanta(problem)


def two_op_link_contention_problem() -> Problem:
    """Two ops on two devices joined by one link, with link contention on."""
    return Problem.from_arrays(
        names=["a", "b"],
        devices=["x", "y"],
        exec_time=np.ones((2, 2)),
        edges=[(0, 1, 1.0)],
        comm_latency=np.array([[0, 1], [1, 0]]),
        route_links={(0, 1): (0,), (1, 0): (0,)},
        link_names=["l"],
        link_contention=True,
        quantum=1.0,
    )


def series_problem(
    seed: int, *, segments: int = 2, width: int = 2, devices: int = 2, depth: int = 1
) -> Problem:
    """Cut ops joined by ``width`` parallel chains of ``depth`` ops, with residual edges from
    each cut to the next (they jump over the chains): the shape of a transformer layer."""
    rng = np.random.default_rng(seed)
    edges: list[tuple[int, int]] = []
    cut = 0
    n = 1
    for _ in range(segments):
        ends = []
        for _ in range(width):
            prev = cut
            for _ in range(depth):
                edges.append((prev, n))
                prev = n
                n += 1
            ends.append(prev)
        edges += [(e, n) for e in ends]
        if rng.random() < 0.7:
            edges.append((cut, n))  # residual
        cut = n
        n += 1
    ex = rng.integers(1, 6, size=(n, devices)).astype(float)
    mask = rng.random((n, devices)) < 0.2
    mask[np.arange(n), rng.integers(0, devices, size=n)] = False
    ex[mask] = np.inf
    lat = rng.integers(0, 3, size=(devices, devices)).astype(float)
    lat = (lat + lat.T) / 2
    np.fill_diagonal(lat, 0.0)
    problem = Problem.from_arrays(
        names=[f"s{i}" for i in range(n)],
        devices=[f"d{j}" for j in range(devices)],
        exec_time=ex,
        edges=[(u, v, 1.0) for u, v in sorted(edges)],
        comm_latency=lat,
        quantum=1.0,
        units="u",
        name=f"series-{segments}x{width}x{depth}-{seed}",
    )
    return whole_quanta(problem)
