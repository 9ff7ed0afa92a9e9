"""Baseline orders: the graph's own topological order and Inductor's greedy LPMF order.

LPMF ("least peak memory first") is the greedy ``torch.compile`` reorders with
(``torch._inductor.memory.topological_sort_lpmf``), reimplemented on a
:class:`~hetsched.schedule.memory.instance.MemoryInstance`. It tracks the live bytes and the
peak so far; among the ready ops, an op whose allocation fits under the peak so far is
preferred, then the op with the smallest ``allocated - freed`` (freed: the inputs it is the last
remaining reader of), then the lowest index.

Examples
--------
>>> from hetsched.graph import OpGraph, OpNode, Tensor
>>> g = OpGraph("two", [OpNode("a"), OpNode("big"), OpNode("small"), OpNode("z")],
...             tensors=[Tensor("x", "a", ("big", "small"), 1.0),
...                      Tensor("b", "big", ("z",), 9.0), Tensor("s", "small", ("z",), 1.0)])
>>> from hetsched.schedule.memory.instance import MemoryInstance
>>> inst = MemoryInstance.from_graph(g)
>>> [inst.names[i] for i in lpmf_order(inst)]
['a', 'small', 'big', 'z']
"""

from __future__ import annotations

import numpy as np

from hetsched.schedule.memory.instance import MemoryInstance

__all__ = ["lpmf_order", "topological_order"]


def topological_order(instance: MemoryInstance) -> np.ndarray:
    """The graph's own order (for an imported graph, the export's): ``0..n-1``."""
    return np.arange(instance.n, dtype=np.int64)


def lpmf_order(instance: MemoryInstance) -> np.ndarray:
    """Inductor's LPMF greedy order (see the module docstring)."""
    n = instance.n
    alloc = instance.alloc.tolist()
    src = instance.src.tolist()
    nbytes = instance.nbytes.tolist()
    start = instance.cons_start.tolist()
    cons = instance.cons.tolist()
    inputs: list[list[int]] = [[] for _ in range(n)]
    for t in range(len(src)):
        for v in cons[start[t] : start[t + 1]]:
            inputs[v].append(t)
    indeg = [0] * n
    succs: list[set[int]] = [set() for _ in range(n)]
    for t, u in enumerate(src):
        for v in cons[start[t] : start[t + 1]]:
            if v not in succs[u]:
                succs[u].add(v)
                indeg[v] += 1
    left = [start[t + 1] - start[t] for t in range(len(src))]
    to_free = [0.0] * n
    for t in range(len(src)):
        if left[t] == 1:
            to_free[cons[start[t]]] += nbytes[t]
    ready = {v for v in range(n) if indeg[v] == 0}
    live = 0.0
    peak = float(instance.sink_bytes.sum())  # the outputs all live at the end
    order: list[int] = []
    while ready:
        gap = peak - live
        v = min(ready, key=lambda x: (alloc[x] if alloc[x] > gap else 0.0,
                                      alloc[x] - to_free[x], x))  # fmt: skip
        ready.remove(v)
        order.append(v)
        live += alloc[v]
        peak = max(peak, live)
        live -= to_free[v]
        for w in succs[v]:
            indeg[w] -= 1
            if indeg[w] == 0:
                ready.add(w)
        for t in inputs[v]:
            left[t] -= 1
            if left[t] == 1:
                for w in cons[start[t] : start[t + 1]]:
                    to_free[w] += nbytes[t]
    return np.array(order, dtype=np.int64)
