"""The operator DAG: :class:`OpNode`, :class:`Tensor`, :class:`Edge` and :class:`OpGraph`.

An :class:`OpGraph` is immutable and validated on construction: unique names, tensors and
edges between existing nodes, non-negative finite sizes, no cycles. Node order is a
deterministic topological order (Kahn's algorithm, ties broken by original insertion position).

Data moves as **tensors**: one producer, one or more consumers, a size. A tensor read by two
ops on one remote device is moved there once. ``edges`` are the derived (producer, consumer)
dependencies with the bytes of every tensor between the pair, for graph algorithms. A graph
given only edges (STG files, ``hetsched.graph/1`` JSON) has one tensor per edge.

Examples
--------
>>> g = OpGraph("demo", [OpNode("a", flops=10.0), OpNode("b", flops=5.0)], [Edge("a", "b", 4.0)])
>>> [n.name for n in g.nodes]
['a', 'b']
>>> g.total_flops
15.0
>>> g.predecessors("b")
('a',)
>>> t = OpGraph("fork", [OpNode("a"), OpNode("b"), OpNode("c")],
...             tensors=[Tensor("a:0", "a", ("b", "c"), 4.0)])
>>> [(e.src, e.dst, e.bytes) for e in t.edges], len(t.tensors)
([('a', 'b', 4.0), ('a', 'c', 4.0)], 1)
"""

from __future__ import annotations

import heapq
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from functools import cached_property
from types import MappingProxyType
from typing import Any

import networkx as nx
import numpy as np

from hetsched.errors import GraphError

__all__ = ["CATEGORIES", "DTYPES", "Edge", "OpGraph", "OpNode", "Tensor"]

# What an op *is* (whether a device runs it is the platform's support predicate): see
# hetsched.graph.optable for how aten ops are placed. ``other`` is an op hetsched does not
# know; ``hetsched ops`` lists them.
CATEGORIES: tuple[str, ...] = (
    "matmul",  # mm, linear, bmm, einsum
    "conv",  # convolutions, transposed too
    "attention",  # scaled dot-product attention, whole
    "elementwise",  # pointwise: activations, arithmetic, comparisons, where
    "reduction",  # sum, mean, amax, var, cumsum, topk, losses
    "norm",  # layer/batch/group/RMS norm
    "softmax",  # softmax, log_softmax
    "pool",  # max/avg pooling, adaptive pools
    "embedding",  # table lookups: reads the rows it gathers
    "index",  # gather, scatter, index, index_put, nonzero, masked_select
    "data_movement",  # cat, copies and casts, pads, repeats, resampling
    "creation",  # arange, full, zeros, *_like: write only
    "other",  # unknown to hetsched
)
# Element types a node or tensor may declare: torch's dtype names and aliases, and the
# short names of the cost model's dtype classes.
DTYPES: tuple[str, ...] = (
    "float32", "float16", "bfloat16", "float64", "int8", "uint8", "int16", "int32", "int64",
    "bool", "complex32", "complex64", "complex128", "uint16", "uint32", "uint64",
    "float8_e4m3fn", "float8_e4m3fnuz", "float8_e5m2", "float8_e5m2fnuz", "float8_e8m0fnu",
    "float4_e2m1fn_x2", "qint8", "quint8", "qint32", "quint4x2", "quint2x4",
    "int1", "int2", "int3", "int4", "int5", "int6", "int7",
    "uint1", "uint2", "uint3", "uint4", "uint5", "uint6", "uint7",
    "bits1x8", "bits2x4", "bits4x2", "bits8", "bits16",
)  # fmt: skip
_DTYPE_ALIASES = frozenset({
    "float", "double", "half", "long", "int", "short", "cfloat", "cdouble", "chalf", "bit",
    "fp32", "fp16", "bf16", "tf32", "fp64",
})  # fmt: skip
_KNOWN_DTYPES = frozenset(DTYPES) | _DTYPE_ALIASES


def _check_dtype(dtype: object, where: str) -> None:
    """A dtype name torch (or the cost model) knows, with or without ``torch.``."""
    if isinstance(dtype, str) and dtype.removeprefix("torch.") in _KNOWN_DTYPES:
        return
    msg = f"{where}: unknown dtype {dtype!r} (expected one of {', '.join(DTYPES)})"
    raise GraphError(msg)


_SIZE_FIELDS = ("flops", "bytes_read", "bytes_written", "param_bytes", "out_bytes")


@dataclass(frozen=True)
class OpNode:
    """One operator of the model.

    Parameters
    ----------
    name : unique node name (the fx node name for imported graphs).
    op : the operator, e.g. ``"aten.mm.default"``.
    category : one of :data:`CATEGORIES`: what the op is.
    flops, bytes_read, bytes_written, param_bytes, out_bytes : sizes, non-negative.
    dtype : element type of the output, one of :data:`DTYPES` (or a torch alias such as
        ``"half"``; a ``"torch."`` prefix is allowed), e.g. ``"float32"``.
    shape : output shape.
    module : ``nn.Module`` path the op came from (``""`` if unknown).
    cost : optional explicit cost per device kind or device name (seconds, or the graph's
        own units); overrides the roofline model.
    parts : for a fused or coarsened op, the ops it is made of (their ``op``, ``category``
        and ``dtype``): a device runs it only if it runs every part.
    """

    name: str
    op: str = "other"
    category: str = "other"
    flops: float = 0.0
    bytes_read: float = 0.0
    bytes_written: float = 0.0
    param_bytes: float = 0.0
    out_bytes: float = 0.0
    dtype: str = "float32"
    shape: tuple[int, ...] = ()
    module: str = ""
    cost: Mapping[str, float] | None = field(default=None, compare=True)
    parts: tuple[OpNode, ...] = ()

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name:
            msg = f"node name must be a non-empty string, got {self.name!r}"
            raise GraphError(msg)
        if self.category not in CATEGORIES:
            msg = (
                f"node {self.name!r}: unknown category {self.category!r} "
                f"(expected one of {', '.join(CATEGORIES)})"
            )
            raise GraphError(msg)
        _check_dtype(self.dtype, f"node {self.name!r}")
        for f in _SIZE_FIELDS:
            v = getattr(self, f)
            if not isinstance(v, int | float) or isinstance(v, bool):
                msg = f"node {self.name!r}: field {f!r} must be a number, got {v!r}"
                raise GraphError(msg)
            if not math.isfinite(v) or v < 0:
                msg = f"node {self.name!r}: field {f!r} must be finite and >= 0, got {v!r}"
                raise GraphError(msg)
        object.__setattr__(self, "shape", tuple(int(s) for s in self.shape))
        if self.cost is not None:
            clean: dict[str, float] = {}
            for k, v in dict(self.cost).items():
                if not isinstance(v, int | float) or isinstance(v, bool):
                    msg = f"node {self.name!r}: cost[{k!r}] must be a number, got {v!r}"
                    raise GraphError(msg)
                if math.isnan(v) or v < 0:
                    msg = f"node {self.name!r}: cost[{k!r}] must be >= 0 (or inf), got {v!r}"
                    raise GraphError(msg)
                clean[str(k)] = float(v)
            object.__setattr__(self, "cost", MappingProxyType(clean))
        object.__setattr__(self, "parts", tuple(self.parts))
        for x in self.parts:
            if not isinstance(x, OpNode):
                msg = f"node {self.name!r}: parts must be OpNodes, got {type(x).__name__}"
                raise GraphError(msg)

    def __hash__(self) -> int:
        return hash(self.name)

    def to_dict(self) -> dict[str, Any]:
        """Plain-JSON form of the node (see :mod:`hetsched.graph.formats`)."""
        d: dict[str, Any] = {
            "name": self.name,
            "op": self.op,
            "category": self.category,
            "flops": self.flops,
            "bytes_read": self.bytes_read,
            "bytes_written": self.bytes_written,
            "param_bytes": self.param_bytes,
            "out_bytes": self.out_bytes,
            "dtype": self.dtype,
            "shape": list(self.shape),
            "module": self.module,
        }
        if self.cost is not None:
            d["cost"] = {k: (v if math.isfinite(v) else "inf") for k, v in self.cost.items()}
        if self.parts:
            d["parts"] = [{"name": x.name, "op": x.op, "category": x.category,
                           "dtype": x.dtype} for x in self.parts]  # fmt: skip
        return d


@dataclass(frozen=True)
class Edge:
    """A tensor flowing from ``src`` to ``dst``; ``bytes`` is its size."""

    src: str
    dst: str
    bytes: float = 0.0

    def __post_init__(self) -> None:
        b = self.bytes
        if not isinstance(b, int | float) or isinstance(b, bool):
            msg = f"edge {self.src!r} -> {self.dst!r}: bytes must be a number, got {b!r}"
            raise GraphError(msg)
        if not math.isfinite(b) or b < 0:
            msg = f"edge {self.src!r} -> {self.dst!r}: bytes must be finite and >= 0, got {b!r}"
            raise GraphError(msg)


@dataclass(frozen=True)
class Tensor:
    """A value one op produces and others read: moved once per destination device.

    ``name`` is unique in its graph; ``dsts`` are the consumers (duplicates are dropped, so an
    op reading one tensor twice, ``x * x``, reads it once).
    """

    name: str
    src: str
    dsts: tuple[str, ...]
    bytes: float = 0.0
    dtype: str = "float32"

    def __post_init__(self) -> None:
        b = self.bytes
        if not isinstance(self.name, str) or not self.name:
            msg = f"tensor name must be a non-empty string, got {self.name!r}"
            raise GraphError(msg)
        if not isinstance(b, int | float) or isinstance(b, bool):
            msg = f"tensor {self.name!r}: bytes must be a number, got {b!r}"
            raise GraphError(msg)
        if not math.isfinite(b) or b < 0:
            msg = f"tensor {self.name!r}: bytes must be finite and >= 0, got {b!r}"
            raise GraphError(msg)
        if isinstance(self.dsts, str):
            msg = f"tensor {self.name!r}: dsts must be a list of node names, got {self.dsts!r}"
            raise GraphError(msg)
        dsts = tuple(dict.fromkeys(str(x) for x in self.dsts))
        if not dsts:
            msg = f"tensor {self.name!r} from {self.src!r} has no consumer"
            raise GraphError(msg)
        _check_dtype(self.dtype, f"tensor {self.name!r}")
        object.__setattr__(self, "dsts", dsts)
        object.__setattr__(self, "bytes", float(b))

    def to_dict(self) -> dict[str, Any]:
        """Plain-JSON form (see :mod:`hetsched.graph.formats`)."""
        return {
            "name": self.name,
            "src": self.src,
            "dsts": list(self.dsts),
            "bytes": self.bytes,
            "dtype": self.dtype,
        }


class OpGraph:
    """An immutable, validated DAG of :class:`OpNode` joined by :class:`Tensor` (or edges).

    Give ``tensors`` (producer, consumers, bytes) or plain ``edges`` (one tensor each), not
    both. ``edges`` is then the merged (producer, consumer) view: bytes of every tensor
    between the pair added. ``nodes`` is a deterministic topological order; ``index[name]``
    gives a node's position in it. ``meta`` carries importer extras (e.g. the fx node names
    each op covers).
    """

    def __init__(
        self,
        name: str,
        nodes: Iterable[OpNode],
        edges: Iterable[Edge] = (),
        *,
        tensors: Iterable[Tensor] | None = None,
        meta: Mapping[str, Any] | None = None,
    ) -> None:
        node_list = list(nodes)
        if not node_list:
            msg = f"graph {name!r} has no nodes"
            raise GraphError(msg)
        by_name: dict[str, OpNode] = {}
        for n in node_list:
            if not isinstance(n, OpNode):
                msg = f"graph {name!r}: expected OpNode, got {type(n).__name__}"
                raise GraphError(msg)
            if n.name in by_name:
                msg = f"graph {name!r}: duplicate node name {n.name!r}"
                raise GraphError(msg)
            by_name[n.name] = n
        edge_list = list(edges)
        if tensors is None:
            tensor_list = _tensors_of_edges(edge_list, name)
        elif edge_list:
            msg = f"graph {name!r}: give tensors or edges, not both"
            raise GraphError(msg)
        else:
            tensor_list = list(tensors)
        merged: dict[tuple[str, str], float] = {}
        seen: set[str] = set()
        for t in tensor_list:
            if not isinstance(t, Tensor):
                msg = f"graph {name!r}: expected Tensor, got {type(t).__name__}"
                raise GraphError(msg)
            if t.name in seen:
                msg = f"graph {name!r}: duplicate tensor name {t.name!r}"
                raise GraphError(msg)
            seen.add(t.name)
            for end in (t.src, *t.dsts):
                if end not in by_name:
                    msg = f"graph {name!r}: tensor {t.name!r} references missing node {end!r}"
                    raise GraphError(msg)
            for d in t.dsts:
                if d == t.src:
                    msg = f"graph {name!r}: self-loop on node {t.src!r}"
                    raise GraphError(msg)
                merged[(t.src, d)] = merged.get((t.src, d), 0.0) + t.bytes
        order = _topological_order([n.name for n in node_list], list(merged), name)
        self.name = name
        self.nodes: tuple[OpNode, ...] = tuple(by_name[x] for x in order)
        self.index: Mapping[str, int] = MappingProxyType({x: i for i, x in enumerate(order)})
        self.edges: tuple[Edge, ...] = tuple(
            Edge(s, d, b)
            for (s, d), b in sorted(
                merged.items(), key=lambda kv: (self.index[kv[0][0]], self.index[kv[0][1]])
            )
        )
        pos = {x: i for i, x in enumerate(order)}
        self.tensors: tuple[Tensor, ...] = tuple(
            Tensor(t.name, t.src, tuple(sorted(t.dsts, key=pos.__getitem__)), t.bytes, t.dtype)
            for t in sorted(tensor_list, key=lambda t: pos[t.src])
        )
        self.meta: Mapping[str, Any] = MappingProxyType(dict(meta or {}))
        preds: dict[str, list[str]] = {x: [] for x in order}
        succs: dict[str, list[str]] = {x: [] for x in order}
        for e in self.edges:
            preds[e.dst].append(e.src)
            succs[e.src].append(e.dst)
        self._preds = {k: tuple(v) for k, v in preds.items()}
        self._succs = {k: tuple(v) for k, v in succs.items()}

    def __len__(self) -> int:
        return len(self.nodes)

    def __repr__(self) -> str:
        return f"OpGraph({self.name!r}, {len(self.nodes)} nodes, {len(self.edges)} edges)"

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, OpGraph):
            return NotImplemented
        return (
            self.name == other.name
            and self.nodes == other.nodes
            and self.edges == other.edges
            and self.tensors == other.tensors
        )

    def __hash__(self) -> int:
        return hash((self.name, len(self.nodes), len(self.edges)))

    @property
    def has_named_tensors(self) -> bool:
        """Whether some tensor has two consumers or a producer has two tensors to one op.

        False for a graph built from plain edges (one tensor per edge).
        """
        return len(self.tensors) != len(self.edges)

    def node(self, name: str) -> OpNode:
        """The node called ``name``; :class:`GraphError` if there is none."""
        try:
            return self.nodes[self.index[name]]
        except KeyError:
            msg = f"graph {self.name!r} has no node {name!r}"
            raise GraphError(msg) from None

    def predecessors(self, name: str) -> tuple[str, ...]:
        return self._preds[name]

    def successors(self, name: str) -> tuple[str, ...]:
        return self._succs[name]

    @cached_property
    def nx(self) -> nx.DiGraph:
        """A networkx view: node attribute ``node`` (the OpNode), edge attribute ``bytes``."""
        g = nx.DiGraph(name=self.name)
        for n in self.nodes:
            g.add_node(n.name, node=n, flops=n.flops)
        for e in self.edges:
            g.add_edge(e.src, e.dst, bytes=e.bytes)
        return g

    @cached_property
    def edge_index(self) -> tuple[np.ndarray, np.ndarray]:
        """``(src, dst)`` integer arrays of the edges, in topological positions."""
        src = np.fromiter(
            (self.index[e.src] for e in self.edges), dtype=np.int64, count=len(self.edges)
        )
        dst = np.fromiter(
            (self.index[e.dst] for e in self.edges), dtype=np.int64, count=len(self.edges)
        )
        return src, dst

    @property
    def total_flops(self) -> float:
        return float(sum(n.flops for n in self.nodes))

    @property
    def total_bytes(self) -> float:
        """Bytes read plus written by every op."""
        return float(sum(n.bytes_read + n.bytes_written for n in self.nodes))

    @property
    def total_edge_bytes(self) -> float:
        return float(sum(e.bytes for e in self.edges))

    @property
    def has_explicit_costs(self) -> bool:
        """True when every node carries an explicit ``cost`` (STG and unit-cost graphs)."""
        return all(n.cost is not None for n in self.nodes)

    def category_histogram(self) -> dict[str, int]:
        """Node count per category, in :data:`CATEGORIES` order (zero counts omitted)."""
        counts = {c: 0 for c in CATEGORIES}
        for n in self.nodes:
            counts[n.category] += 1
        return {c: k for c, k in counts.items() if k}

    def critical_path(self, weight: str = "flops") -> tuple[float, list[str]]:
        """Longest path by a node field (``"flops"`` or an explicit-cost key).

        Returns ``(length, [node names])``.

        Examples
        --------
        >>> g = OpGraph("g", [OpNode("a", flops=1), OpNode("b", flops=2), OpNode("c", flops=5)],
        ...             [Edge("a", "b"), Edge("a", "c")])
        >>> g.critical_path()
        (6.0, ['a', 'c'])
        """
        w = [_node_weight(n, weight) for n in self.nodes]
        best = list(w)
        parent = [-1] * len(w)
        for i, n in enumerate(self.nodes):
            for p in self._preds[n.name]:
                j = self.index[p]
                if best[j] + w[i] > best[i]:
                    best[i] = best[j] + w[i]
                    parent[i] = j
        end = max(range(len(w)), key=lambda i: (best[i], -i))
        path = []
        i = end
        while i >= 0:
            path.append(self.nodes[i].name)
            i = parent[i]
        return float(best[end]), path[::-1]

    def replace(
        self,
        *,
        name: str | None = None,
        nodes: Iterable[OpNode] | None = None,
        tensors: Iterable[Tensor] | None = None,
        meta: Mapping[str, Any] | None = None,
    ) -> OpGraph:
        """A new graph with some parts replaced."""
        return OpGraph(
            self.name if name is None else name,
            self.nodes if nodes is None else nodes,
            tensors=self.tensors if tensors is None else tensors,
            meta=self.meta if meta is None else meta,
        )


def _tensors_of_edges(edges: list[Edge], graph: str) -> list[Tensor]:
    """One tensor per (producer, consumer) pair; parallel edges merge (bytes added)."""
    merged: dict[tuple[str, str], float] = {}
    for e in edges:
        if not isinstance(e, Edge):
            msg = f"graph {graph!r}: expected Edge, got {type(e).__name__}"
            raise GraphError(msg)
        merged[(e.src, e.dst)] = merged.get((e.src, e.dst), 0.0) + float(e.bytes)
    return [Tensor(f"{s}->{d}", s, (d,), b) for (s, d), b in merged.items()]


def _node_weight(n: OpNode, weight: str) -> float:
    if weight in _SIZE_FIELDS:
        return float(getattr(n, weight))
    if n.cost is not None and weight in n.cost:
        return float(n.cost[weight])
    if n.cost is not None and weight == "cost" and n.cost:
        return float(min(n.cost.values()))
    return 0.0


def _topological_order(names: list[str], edges: list[tuple[str, str]], graph: str) -> list[str]:
    position = {x: i for i, x in enumerate(names)}
    indeg = dict.fromkeys(names, 0)
    succ: dict[str, list[str]] = {x: [] for x in names}
    for s, d in edges:
        succ[s].append(d)
        indeg[d] += 1
    ready = [(position[x], x) for x in names if indeg[x] == 0]
    heapq.heapify(ready)
    order: list[str] = []
    while ready:
        _, x = heapq.heappop(ready)
        order.append(x)
        for y in succ[x]:
            indeg[y] -= 1
            if indeg[y] == 0:
                heapq.heappush(ready, (position[y], y))
    if len(order) != len(names):
        left = {x for x in names if indeg[x] > 0}
        sub = nx.DiGraph([(s, d) for s, d in edges if s in left and d in left])
        try:
            cycle = [u for u, _ in nx.find_cycle(sub)]
        except nx.NetworkXNoCycle:  # pragma: no cover - defensive
            cycle = sorted(left)[:5]
        shown = " -> ".join([*cycle[:8], cycle[0]])
        msg = f"graph {graph!r} has a cycle: {shown}"
        raise GraphError(msg)
    return order
