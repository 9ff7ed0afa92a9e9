"""Tensors with identity: one producer, many consumers, moved once per destination device.

:class:`Tensors` holds every tensor of a problem as read-only arrays: its producer op, its
size, its dtype and its consumers (CSR: the consumers of tensor ``t`` are
``cons[cons_start[t]:cons_start[t + 1]]``). The *edges* every solver walks are the derived
(tensor, consumer) pairs, sorted by (producer, consumer, tensor); an edge knows its tensor,
so a transfer is charged once per (tensor, destination device) however many consumers read
it there.

Examples
--------
>>> t = Tensors.build(3, [(0, (1, 2), 8.0)])
>>> t.num_tensors, t.edge_src.tolist(), t.edge_dst.tolist(), t.edge_tensor.tolist()
(1, [0, 0], [1, 2], [0, 0])
>>> Tensors.from_edges(3, [(0, 1, 8.0), (0, 2, 8.0)]).num_tensors
2
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import Any

import numpy as np

from hetsched.errors import SolverError
from hetsched.problem.arrays import frozen, own_frozen

__all__ = ["Tensors"]


@dataclass(frozen=True, eq=False)
class Tensors:
    """Every tensor of a problem (see the module docstring). Ops are topologically indexed."""

    src: np.ndarray
    nbytes: np.ndarray
    cons_start: np.ndarray
    cons: np.ndarray
    names: tuple[str, ...]
    dtype: tuple[str, ...]

    def __post_init__(self) -> None:
        t = self.src.size
        if self.nbytes.shape != (t,) or self.cons_start.shape != (t + 1,):
            msg = "tensors: src, nbytes and cons_start disagree on the number of tensors"
            raise SolverError(msg)
        if t and (self.cons_start[0] != 0 or self.cons_start[-1] != self.cons.size):
            msg = "tensors: cons_start must run from 0 to the number of consumers"
            raise SolverError(msg)
        if np.any(np.diff(self.cons_start) < 1):
            k = int(np.flatnonzero(np.diff(self.cons_start) < 1)[0])
            msg = f"tensors: tensor {self.names[k]!r} has no consumer"
            raise SolverError(msg)
        if not np.all(np.isfinite(self.nbytes)) or np.any(self.nbytes < 0):
            msg = "tensors: sizes must be finite and >= 0"
            raise SolverError(msg)
        if len(self.names) != t or len(self.dtype) != t:
            msg = "tensors: names and dtype need one entry per tensor"
            raise SolverError(msg)
        owner = np.repeat(self.src, np.diff(self.cons_start))
        if np.any(self.cons <= owner):
            k = int(np.flatnonzero(self.cons <= owner)[0])
            msg = (
                f"tensors: consumer {int(self.cons[k])} of a tensor made by op {int(owner[k])} "
                "is not after it in topological order"
            )
            raise SolverError(msg)
        own_frozen(self, "src", "nbytes", "cons_start", "cons")

    # ------------------------------------------------------------------ construction
    @classmethod
    def build(cls, n: int, tensors: Iterable[tuple[Any, ...]]) -> Tensors:
        """From ``(producer, consumers, bytes[, name, dtype])`` tuples over ``n`` ops."""
        rows = [tuple(r) for r in tensors]
        src = np.array([int(r[0]) for r in rows], dtype=np.int64)
        cons = [sorted({int(c) for c in r[1]}) for r in rows]
        top = max((max(c) for c in cons if c), default=-1)
        if rows and (src.min() < 0 or src.max() >= n or top >= n):
            msg = f"tensors: op index out of range for {n} ops"
            raise SolverError(msg)
        return cls(
            src=src,
            nbytes=np.array([float(r[2]) for r in rows], dtype=np.float64),
            cons_start=np.concatenate([[0], np.cumsum([len(c) for c in cons])]).astype(np.int64),
            cons=np.array([c for cs in cons for c in cs], dtype=np.int64),
            names=tuple(str(r[3]) if len(r) > 3 else f"t{k}" for k, r in enumerate(rows)),
            dtype=tuple(str(r[4]) if len(r) > 4 else "float32" for r in rows),
        )

    @classmethod
    def from_edges(cls, n: int, edges: Sequence[tuple[int, int, float]]) -> Tensors:
        """One tensor per edge ``(src, dst, bytes)``: graphs that name no tensors."""
        return cls.build(n, [(int(u), (int(v),), float(b)) for u, v, b in edges])

    def subset(self, ops: np.ndarray, n: int) -> tuple[Tensors, np.ndarray]:
        """Tensors among ``ops`` (sorted op indices of ``n`` ops), outside consumers dropped.

        Returns the subset (ops renumbered ``0..len(ops)-1``) and the ids of the kept tensors.
        """
        ops = np.asarray(ops, dtype=np.int64)
        local = np.full(n, -1, dtype=np.int64)
        local[ops] = np.arange(ops.size)
        owner = np.repeat(np.arange(self.num_tensors), np.diff(self.cons_start))
        inside = (local[self.cons] >= 0) & (local[self.src[owner]] >= 0)
        counts = np.bincount(owner[inside], minlength=self.num_tensors)
        kept = np.flatnonzero(counts > 0)
        sub = Tensors(
            src=local[self.src[kept]],
            nbytes=self.nbytes[kept].copy(),
            cons_start=np.concatenate([[0], np.cumsum(counts[kept])]).astype(np.int64),
            cons=local[self.cons[inside]],
            names=tuple(self.names[k] for k in kept.tolist()),
            dtype=tuple(self.dtype[k] for k in kept.tolist()),
        )
        return sub, kept

    # ------------------------------------------------------------------ views
    @property
    def num_tensors(self) -> int:
        return int(self.src.size)

    def consumers(self, t: int) -> np.ndarray:
        return self.cons[self.cons_start[t] : self.cons_start[t + 1]]

    @cached_property
    def _edges(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        tensor = np.repeat(np.arange(self.num_tensors), np.diff(self.cons_start))
        src = self.src[tensor]
        order = np.lexsort((tensor, self.cons, src))
        return (
            frozen(src[order].astype(np.int64)),
            frozen(self.cons[order].astype(np.int64)),
            frozen(tensor[order].astype(np.int64)),
        )

    @property
    def edge_src(self) -> np.ndarray:
        """Producer of each (tensor, consumer) edge, edges sorted by (src, dst, tensor)."""
        return self._edges[0]

    @property
    def edge_dst(self) -> np.ndarray:
        return self._edges[1]

    @property
    def edge_tensor(self) -> np.ndarray:
        return self._edges[2]
