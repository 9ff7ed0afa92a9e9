"""The single-device memory instance and the peak of an order of its ops.

Semantics: the one memory model (:mod:`hetsched.plan.memory`) for a plan that runs every
op on one device, one at a time, in a topological order (op ``v`` at position ``p(v)``):

* an op's outputs (its mode's ``memory - weights``: ``out_bytes``, at least its largest
  tensor) occupy memory from its start to the end of its last reader, i.e. at positions
  ``p(v) .. max p(reader)`` inclusive; an op no op reads keeps them to the end of the run;
* resident weights are held for the whole run: a constant.

``peak(order) = weights + max_i live(i)``, the live peak of that plan.

Examples
--------
>>> from hetsched.graph import OpGraph, OpNode, Tensor
>>> g = OpGraph("fork", [OpNode("a", param_bytes=1.0), OpNode("b", out_bytes=2.0),
...                      OpNode("c", out_bytes=3.0)],
...             tensors=[Tensor("x", "a", ("b", "c"), 4.0)])
>>> inst = MemoryInstance.from_graph(g)
>>> live_bytes(inst, [0, 1, 2]).tolist()
[4.0, 6.0, 9.0]
>>> p = peak_of_order(inst, ["a", "c", "b"])
>>> p.peak, p.activation_peak, p.weights, p.position
(10.0, 9.0, 1.0, 2)
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from hetsched.errors import PlanError

if TYPE_CHECKING:
    from hetsched.graph import OpGraph
    from hetsched.problem import Problem

__all__ = ["MemoryInstance", "Order", "PeakReport", "check_order", "live_bytes", "peak_of_order"]

# An order of ops: indices (a sequence or an integer array) or names.
Order = Sequence[int] | Sequence[str] | np.ndarray


@dataclass(frozen=True, eq=False)
class MemoryInstance:
    """Integer-indexed arrays of one graph's memory: ops in topological order ``0..n-1``.

    Attributes
    ----------
    name : graph name.
    names : op names; op ``i`` is ``names[i]`` and ``0..n-1`` is a topological order.
    src : producer of each tensor, shape ``(T,)``.
    nbytes : bytes of each tensor, shape ``(T,)``.
    cons_start, cons : consumers of tensor ``t`` are ``cons[cons_start[t]:cons_start[t+1]]``
        (CSR, at least one each).
    sink_bytes : bytes an op without outgoing tensor holds to the end, shape ``(n,)``
        (0 for ops with outgoing tensors).
    weights : bytes of all weights, resident for the whole run.
    """

    name: str
    names: tuple[str, ...]
    src: np.ndarray
    nbytes: np.ndarray
    cons_start: np.ndarray
    cons: np.ndarray
    sink_bytes: np.ndarray
    weights: float

    def __post_init__(self) -> None:
        n, t = len(self.names), self.src.size
        if self.nbytes.shape != (t,) or self.cons_start.shape != (t + 1,):
            msg = f"memory instance {self.name!r}: tensor arrays disagree on their length"
            raise PlanError(msg)
        if self.sink_bytes.shape != (n,):
            msg = f"memory instance {self.name!r}: sink_bytes must have one entry per op"
            raise PlanError(msg)
        if t and np.any(np.diff(self.cons_start) < 1):
            msg = f"memory instance {self.name!r}: every tensor needs a consumer"
            raise PlanError(msg)
        owner = np.repeat(self.src, np.diff(self.cons_start))
        if np.any(self.cons <= owner):
            msg = f"memory instance {self.name!r}: ops must be indexed in topological order"
            raise PlanError(msg)
        for a in (self.src, self.nbytes, self.cons_start, self.cons, self.sink_bytes):
            a.flags.writeable = False

    @property
    def n(self) -> int:
        """Number of ops."""
        return len(self.names)

    @property
    def index(self) -> dict[str, int]:
        """Op name -> index."""
        return {x: i for i, x in enumerate(self.names)}

    @property
    def alloc(self) -> np.ndarray:
        """Bytes an op allocates when it starts: its outgoing tensors and its sink output."""
        out = self.sink_bytes.astype(float).copy()
        np.add.at(out, self.src, self.nbytes)
        return out

    def edges(self) -> list[tuple[int, int]]:
        """The (producer, consumer) dependencies, sorted and without duplicates."""
        owner = np.repeat(self.src, np.diff(self.cons_start))
        return sorted({(int(u), int(v)) for u, v in zip(owner, self.cons, strict=True)})

    @classmethod
    def from_graph(cls, graph: OpGraph) -> MemoryInstance:
        """The instance of an :class:`~hetsched.graph.OpGraph` (its node order) on one
        device: :meth:`from_problem` of the graph built on a one-device platform."""
        from hetsched.costmodel import Platform
        from hetsched.problem import Problem

        return cls.from_problem(Problem.build(graph, Platform.homogeneous(1), memory=False), 0)

    @classmethod
    def from_problem(cls, problem: Problem, device: int | str = 0) -> MemoryInstance:
        """The instance of ``problem`` with every op on ``device`` (index or name), in its
        device-view mode there, counted as the one memory model counts a plan
        (:mod:`hetsched.plan.memory`): each op's outputs (its mode's ``memory - weights``)
        from its start until its last reader ends, to the end when none reads them; its
        resident weights throughout. An order's peak is then the live peak of the plan that
        runs the ops in that order on ``device``.
        """
        d = problem.device_index[device] if isinstance(device, str) else int(device)
        modes = problem.device_mode[:, d]
        if np.any(modes < 0):
            v = int(np.flatnonzero(modes < 0)[0])
            msg = f"op {problem.names[v]!r} does not run on {problem.devices[d]!r}"
            raise PlanError(msg)
        weights = problem.modes.w[modes]
        outputs = problem.modes.memory[modes] - weights
        t = problem.tensors
        readers: list[set[int]] = [set() for _ in range(problem.n)]
        for k in range(t.num_tensors):
            readers[int(t.src[k])].update(t.consumers(k).tolist())
        src = np.array([v for v in range(problem.n) if readers[v]], dtype=np.int64)
        cons = [sorted(readers[v]) for v in src.tolist()]
        return cls(
            name=problem.name,
            names=tuple(problem.names),
            src=src,
            nbytes=outputs[src].astype(float),
            cons_start=np.concatenate([[0], np.cumsum([len(c) for c in cons])]).astype(np.int64),
            cons=np.array([x for c in cons for x in c], dtype=np.int64),
            sink_bytes=np.where([bool(r) for r in readers], 0.0, outputs),
            weights=float(weights.sum()),
        )


@dataclass(frozen=True)
class PeakReport:
    """The peak of one order: ``peak = weights + activation_peak``, first at ``position``."""

    peak: float
    activation_peak: float
    weights: float
    position: int


def _as_indices(instance: MemoryInstance, order: Order) -> np.ndarray:
    if len(order) and isinstance(order[0], str):
        index = instance.index
        try:
            return np.array([index[str(x)] for x in order], dtype=np.int64)
        except KeyError as err:
            msg = f"order names an op not in {instance.name!r}: {err.args[0]!r}"
            raise PlanError(msg) from err
    return np.asarray(order, dtype=np.int64).reshape(-1)


def check_order(instance: MemoryInstance, order: Order) -> np.ndarray:
    """Positions ``p[v]`` of a valid order; raise :class:`PlanError` if it is not one.

    Valid: every op exactly once, every producer before each of its consumers.
    """
    idx = _as_indices(instance, order)
    n = instance.n
    if idx.size != n or np.any(idx < 0) or np.any(idx >= n) or np.unique(idx).size != n:
        msg = f"order of {instance.name!r} must hold each of its {n} ops exactly once"
        raise PlanError(msg)
    pos = np.empty(n, dtype=np.int64)
    pos[idx] = np.arange(n)
    owner = np.repeat(instance.src, np.diff(instance.cons_start))
    bad = np.flatnonzero(pos[owner] >= pos[instance.cons])
    if bad.size:
        u, v = instance.names[owner[bad[0]]], instance.names[instance.cons[bad[0]]]
        msg = f"order of {instance.name!r} runs {v!r} before its producer {u!r}"
        raise PlanError(msg)
    return pos


def live_bytes(instance: MemoryInstance, order: Order) -> np.ndarray:
    """Activation bytes live at every position of ``order`` (weights not included)."""
    pos = check_order(instance, order)
    n = instance.n
    diff = np.zeros(n + 1)
    if instance.src.size:
        last = np.maximum.reduceat(pos[instance.cons], instance.cons_start[:-1])
        # a tensor is live from its producer's position to its last consumer's, inclusive
        np.add.at(diff, pos[instance.src], instance.nbytes)
        np.add.at(diff, last + 1, -instance.nbytes)
    # an output stays from its producer's position to the end
    np.add.at(diff, pos, instance.sink_bytes)
    return np.cumsum(diff[:n])


def peak_of_order(instance: MemoryInstance, order: Order) -> PeakReport:
    """The peak memory of running ``order`` (op indices or names) on one device.

    Raises
    ------
    PlanError
        When ``order`` is not a topological order of every op.

    Examples
    --------
    >>> from hetsched.graph import OpGraph, OpNode, Edge
    >>> g = OpGraph("chain", [OpNode("a"), OpNode("b", out_bytes=1.0)], [Edge("a", "b", 5.0)])
    >>> peak_of_order(MemoryInstance.from_graph(g), ["a", "b"]).peak
    6.0
    """
    live = live_bytes(instance, order)
    i = int(np.argmax(live))
    act = float(live[i])
    return PeakReport(instance.weights + act, act, instance.weights, i)
