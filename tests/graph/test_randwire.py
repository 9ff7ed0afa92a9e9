"""RandWire models build, run, export and import."""

from __future__ import annotations

import networkx as nx
import torch

from hetsched.graph import from_torch, fuse
from hetsched.graph.randwire import randwire, randwire_wiring


def test_wiring_is_a_dag_oriented_by_id() -> None:
    edges = randwire_wiring(16, 4, 0.75, seed=3)
    assert all(u < v for u, v in edges)
    g = nx.DiGraph(edges)
    assert nx.is_directed_acyclic_graph(g)
    assert len(edges) == 16 * 4 // 2
    assert randwire_wiring(16, 4, 0.75, seed=3) == edges


def test_randwire_exports_imports_and_fuses() -> None:
    model, args = randwire(nodes=8, channels=4, image=8, seed=1)
    with torch.no_grad():
        y = model(*args)
    assert tuple(y.shape) == (1, 4, 8, 8)
    g = from_torch(model, args, name="rw")
    f = fuse(g)
    cats = f.category_histogram()
    assert cats["conv"] == 9  # the stem and one conv per node
    assert len(f.nodes) < len(g.nodes)
    assert all(t.bytes == 4 * 4 * 8 * 8 for t in f.tensors)
