"""Lower bounds on the activation peak of every order (weights not included).

* **Outputs.** At the last position every graph output is live: the sum of the sink bytes.
* **Forced liveness.** While op ``v`` runs, every tensor made by ``v`` or an ancestor of ``v``
  and read by ``v`` or a descendant of ``v`` is live, in every order (its producer has run,
  its last reader has not finished); so is ``v``'s own sink output. The bound is the max over
  ops. It includes ``v``'s inputs and outputs. Reachability is a dense boolean matrix, so above
  ``max_dense`` ops only the inputs and outputs of each op count.

Examples
--------
>>> from hetsched.graph import OpGraph, OpNode, Tensor
>>> g = OpGraph("diamond", [OpNode("a"), OpNode("b"), OpNode("c"), OpNode("d")],
...             tensors=[Tensor("x", "a", ("b", "c"), 4.0), Tensor("y", "b", ("d",), 2.0),
...                      Tensor("z", "c", ("d",), 3.0)])
>>> from hetsched.schedule.memory.instance import MemoryInstance
>>> activation_lower_bound(MemoryInstance.from_graph(g))
7.0
"""

from __future__ import annotations

import numpy as np

from hetsched.schedule.memory.instance import MemoryInstance

__all__ = ["activation_lower_bound", "reachability"]


def reachability(instance: MemoryInstance) -> np.ndarray:
    """``R[u, v]``: ``u == v`` or a path leads from ``u`` to ``v`` (dense, ``n x n``)."""
    n = instance.n
    reach = np.eye(n, dtype=bool)
    succs: list[list[int]] = [[] for _ in range(n)]
    for u, v in instance.edges():
        succs[u].append(v)
    for u in range(n - 1, -1, -1):  # reverse topological order: successors are done
        for v in succs[u]:
            reach[u] |= reach[v]
    return reach


def _io_bound(instance: MemoryInstance) -> float:
    """Max over ops of its inputs + its outputs + its sink output."""
    per_op = instance.alloc.copy()
    np.add.at(per_op, instance.cons, np.repeat(instance.nbytes, np.diff(instance.cons_start)))
    return float(per_op.max(initial=0.0))


def activation_lower_bound(instance: MemoryInstance, *, max_dense: int = 2000) -> float:
    """The best of the bounds in the module docstring."""
    outputs = float(instance.sink_bytes.sum())
    if instance.n > max_dense or instance.src.size == 0:
        return max(outputs, _io_bound(instance))
    reach = reachability(instance)
    # made_before[v, t]: the producer of t is v or an ancestor of v
    made_before = reach[instance.src, :].T
    # read_after[v, t]: some reader of t is v or a descendant of v
    read_after = np.logical_or.reduceat(reach[:, instance.cons], instance.cons_start[:-1], axis=1)
    forced = (made_before & read_after).astype(float) @ instance.nbytes + instance.sink_bytes
    return max(outputs, float(forced.max(initial=0.0)))
