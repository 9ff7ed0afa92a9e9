"""Shared fixtures: random small pipeline instances."""

from __future__ import annotations

import numpy as np
import pytest

from hetsched.problem import Problem


def random_problem(
    seed: int,
    n: int = 6,
    d: int = 3,
    *,
    unsupported: float = 0.15,
    memory: bool = False,
    shared: bool = False,
) -> Problem:
    """A random DAG in topological order with heterogeneous times and transfer costs.

    ``shared``: each op's output is one tensor read by all its successors (else one tensor
    per edge).
    """
    rng = np.random.default_rng(seed)
    ex = rng.integers(1, 10, size=(n, d)).astype(float)
    mask = rng.random((n, d)) < unsupported
    mask[np.arange(n), rng.integers(0, d, size=n)] = False
    ex[mask] = np.inf
    edges = [(u, v, float(rng.integers(1, 4))) for v in range(1, n) for u in range(v)
             if rng.random() < (0.6 if u == v - 1 else 0.2)]  # fmt: skip
    lat = rng.integers(0, 3, size=(d, d)).astype(float)
    np.fill_diagonal(lat, 0)
    inv = np.full((d, d), 0.5)
    np.fill_diagonal(inv, 0)
    mem = rng.integers(1, 5, size=n).astype(float)
    cap = np.full(d, float(mem.sum()) * 0.6) if memory else None
    data: dict = {"edges": edges}
    if shared:
        by_src: dict[int, list] = {}
        for u, v, b in edges:
            by_src.setdefault(u, []).append((v, b))
        data = {
            "tensors": [(u, [v for v, _ in out], max(b for _, b in out))
                        for u, out in sorted(by_src.items())]
        }  # fmt: skip
    return Problem.from_arrays(
        names=[f"op{i}" for i in range(n)], devices=[f"dev{j}" for j in range(d)],
        exec_time=ex, comm_latency=lat, comm_inv_bandwidth=inv, quantum=1.0,
        memory_bytes=mem, capacity=cap, use_memory=memory, name=f"rand{seed}", **data,
    )  # fmt: skip


@pytest.fixture(scope="session")
def mlp_tiny():
    from hetsched.graph import zoo

    return zoo.graph("mlp", "tiny")
