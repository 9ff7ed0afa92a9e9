"""Random tiny DAGs with random tensor sizes for the memory-order tests."""

from __future__ import annotations

import random

from hetsched.graph import OpGraph, OpNode, Tensor


def random_dag(seed: int, *, max_ops: int = 8) -> OpGraph:
    """A connected-ish random DAG of 3..max_ops ops, multi-reader tensors, sinks with outputs."""
    rng = random.Random(seed)
    n = rng.randint(3, max_ops)
    names = [f"v{i}" for i in range(n)]
    tensors: list[Tensor] = []
    for u in range(n - 1):
        later = list(range(u + 1, n))
        k = rng.randint(0 if u else 1, min(3, len(later)))
        readers = rng.sample(later, k)
        if readers:
            size = float(rng.choice([1, 2, 3, 5, 8, 13]))
            tensors.append(Tensor(f"t{u}", names[u], tuple(names[r] for r in readers), size))
    has_out = {t.src for t in tensors}
    nodes = [
        OpNode(x, param_bytes=float(rng.randint(0, 3)),
               out_bytes=0.0 if x in has_out else float(rng.randint(0, 4)))
        for x in names
    ]  # fmt: skip
    return OpGraph(f"rand{seed}", nodes, tensors=tensors)
