"""Fusion as a compiler pass: fold batch norm into its conv/linear, fuse elementwise epilogues.

What an inference compiler for an NPU does before it places anything:

- **Batch-norm folding.** An inference batch norm (:data:`BATCH_NORM_OPS`) whose input is the
  only use of a conv or linear with weights is folded into it: the weights are rescaled and a
  per-channel bias added, so the batch norm's FLOPs and bytes disappear. The folded op keeps
  the conv's name, op and category; its parameters grow by one bias vector (exact for a
  bias-free conv, the usual one before a batch norm; one vector too many otherwise).
- **Epilogue fusion.** An elementwise op (bias add, activation, residual add, scale) joins the
  group of the op producing one of its inputs when that group's output has no other reader
  and is not a program output, and the group starts with a producer category
  (:data:`EPILOGUE_PRODUCERS`: conv, matmul, norm or another elementwise). A chain grows
  while each link is its producer's only reader.

A fused op is one launch: its FLOPs are its members' (folded batch norms add none); it reads
the tensors entering the group and the members' parameters, and writes the tensors leaving
it, not the intermediates. It keeps the name, op, category and module of its first member
and lists every member it computes in ``parts`` (a folded batch norm is not one: after folding
no device runs it), so a device runs the fused op only if it runs every member. Tensors keep
their identity: a tensor made inside a group and read outside leaves from the fused op; one
read only inside disappears. Joining only a group whose output has no other reader keeps the
graph acyclic (no path can leave the group and come back).

Nodes with an explicit ``cost`` or with ``parts`` (already fused or coarsened) stay as they
are: their fused cost is unknown. ``meta["fx_nodes"]`` of a fused op covers every member's fx
nodes, so the split program of a plan on the fused graph computes what the model computes.
``meta["fused"]`` records the groups; :func:`fuse` returns a graph that has it unchanged.

torch's own conv-bn folding (``torch.fx.experimental.optimization.fuse``,
``torch.nn.utils.fusion.fuse_conv_bn_eval``) rewrites ``nn.Module`` weights; this pass only
costs the folded graph, and the tests check its counts against torch's folded model.

Examples
--------
>>> from hetsched.graph.opgraph import OpGraph, OpNode, Tensor
>>> conv = OpNode("conv", "aten.conv2d.default", "conv", flops=1000.0, bytes_read=120.0,
...               bytes_written=64.0, param_bytes=56.0, out_bytes=64.0, shape=(1, 4, 2, 2))
>>> bn = OpNode("bn", "aten.batch_norm.default", "norm", flops=80.0, bytes_read=128.0,
...             bytes_written=64.0, param_bytes=64.0, out_bytes=64.0, shape=(1, 4, 2, 2))
>>> relu = OpNode("relu", "aten.relu.default", "elementwise", flops=16.0, bytes_read=64.0,
...               bytes_written=64.0, out_bytes=64.0, shape=(1, 4, 2, 2))
>>> head = OpNode("head", "aten.linear.default", "matmul", flops=50.0, bytes_read=100.0)
>>> g = OpGraph("net", [conv, bn, relu, head], tensors=[Tensor("conv", "conv", ("bn",), 64.0),
...     Tensor("bn", "bn", ("relu",), 64.0), Tensor("relu", "relu", ("head",), 64.0)])
>>> f, report = fuse_with_report(g)
>>> [n.name for n in f.nodes], (report.folded, report.epilogues)
(['conv', 'head'], (1, 1))
>>> c = f.node("conv")
>>> c.category, c.flops, c.bytes_read, c.bytes_written, c.param_bytes
('conv', 1016.0, 136.0, 64.0, 72.0)
>>> [p.name for p in c.parts], f.tensors[0].name, dict(f.meta["fused"]["groups"])
(['conv', 'relu'], 'relu', {'conv': ['conv', 'bn', 'relu']})
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from hetsched.errors import UsageError
from hetsched.graph.coarsen import _quotient_tensors
from hetsched.graph.opgraph import OpGraph, OpNode

__all__ = [
    "BATCH_NORM_OPS",
    "EPILOGUE_PRODUCERS",
    "FusionReport",
    "fuse",
    "fuse_with_report",
]

# Inference batch norms (running statistics). ``_native_batch_norm_legit`` and
# ``_native_batch_norm_legit_functional`` compute batch statistics and are never folded.
BATCH_NORM_OPS: frozenset[str] = frozenset(
    {
        "aten.batch_norm",
        "aten._native_batch_norm_legit_no_training",
        "aten.native_batch_norm",
        "aten.cudnn_batch_norm",
        "aten.miopen_batch_norm",
    }
)

EPILOGUE_PRODUCERS: tuple[str, ...] = ("conv", "matmul", "norm", "elementwise")
_FOLD_INTO = ("conv", "matmul")


@dataclass(frozen=True)
class FusionReport:
    """What :func:`fuse_with_report` did."""

    nodes_before: int
    nodes_after: int
    folded: int  # batch norms folded into a conv/linear
    epilogues: int  # elementwise ops fused into a producer
    groups: int  # fused ops with two or more members

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def _packet(op: str) -> str:
    """``"aten.batch_norm.default"`` -> ``"aten.batch_norm"`` (names without overload kept)."""
    parts = op.split(".")
    return ".".join(parts[:-1]) if len(parts) >= 3 else op


def _fixed(n: OpNode) -> bool:
    """A node whose fused cost is unknown: explicit cost, or already made of parts."""
    return n.cost is not None or bool(n.parts)


def _output_ops(graph: OpGraph) -> set[str]:
    """Ops whose result the program returns (``meta["outputs"]`` names fx nodes)."""
    fx = graph.meta.get("fx_nodes") or {}
    owner = {x: op for op, names in fx.items() for x in names}
    outs = set()
    for x in graph.meta.get("outputs") or ():
        op = owner.get(x, x)
        if op in graph.index:
            outs.add(op)
    return outs


def _bias_bytes(bn: OpNode) -> float:
    """Bytes of one per-channel vector of ``bn`` (channels = dim 1, else dim 0)."""
    numel = math.prod(bn.shape) if bn.shape else 0
    if numel <= 0:
        return 0.0
    channels = bn.shape[1] if len(bn.shape) >= 2 else bn.shape[0]
    return min(bn.param_bytes, channels * bn.out_bytes / numel)


class _Groups:
    """Groups being built in topological order: members, outside readers, program outputs."""

    def __init__(self, graph: OpGraph) -> None:
        self.graph = graph
        self.members: dict[str, list[str]] = {}
        self.group_of: dict[str, str] = {}
        self.readers: dict[str, set[str]] = {}  # nodes outside the group reading it
        self.output: dict[str, bool] = {}
        self.folded: set[str] = set()
        self.outputs = _output_ops(graph)

    def add(self, name: str) -> None:
        self.members[name] = [name]
        self.group_of[name] = name
        self.readers[name] = set(self.graph.successors(name))
        self.output[name] = name in self.outputs

    def only_reader(self, group: str, node: str) -> bool:
        """``node`` is the one reader of ``group`` and the program does not return it."""
        return self.readers[group] == {node} and not self.output[group]

    def join(self, group: str, name: str, *, folded: bool = False) -> None:
        """Move singleton ``name`` into ``group`` (its only reader, so no cycle can form)."""
        del self.members[name], self.readers[name]
        self.members[group].append(name)
        self.group_of[name] = group
        self.readers[group] = set(self.graph.successors(name))
        self.output[group] = self.output.pop(name)
        if folded:
            self.folded.add(name)


def _foldable(g: _Groups, bn: OpNode) -> str | None:
    """The group ``bn`` folds into: a lone conv/linear with weights, read only by ``bn``."""
    if _packet(bn.op) not in BATCH_NORM_OPS:
        return None
    preds = g.graph.predecessors(bn.name)
    if len(preds) != 1:
        return None
    p = g.graph.node(preds[0])
    grp = g.group_of[p.name]
    if (
        grp != p.name
        or len(g.members[grp]) != 1
        or p.category not in _FOLD_INTO
        or p.param_bytes <= 0
        or _fixed(p)
        or not g.only_reader(grp, bn.name)
    ):
        return None
    return grp


def _epilogue_target(g: _Groups, node: OpNode, producers: frozenset[str]) -> str | None:
    """The group ``node`` fuses into: that of its latest producer it is the only reader of."""
    best: tuple[int, str] | None = None
    for p in g.graph.predecessors(node.name):
        grp = g.group_of[p]
        anchor = g.graph.node(grp)
        if anchor.category not in producers or _fixed(anchor) or not g.only_reader(grp, node.name):
            continue
        key = (g.graph.index[p], grp)
        if best is None or key > best:
            best = key
    return None if best is None else best[1]


def _fused_node(graph: OpGraph, g: _Groups, group: str, internal: dict[str, float]) -> OpNode:
    """One op for ``group``: summed FLOPs, the group's outside traffic, its members as parts."""
    mnodes = [graph.node(m) for m in g.members[group]]
    inside = set(g.members[group])
    leaving = [
        n
        for n in mnodes
        if n.name in g.outputs
        or not graph.successors(n.name)
        or any(s not in inside for s in graph.successors(n.name))
    ]
    last = leaving[-1] if leaving else mnodes[-1]
    flops = read = params = 0.0
    for n in mnodes:
        if n.name in g.folded:
            bias = _bias_bytes(n)
            read += bias
            params += bias
            continue
        flops += n.flops
        params += n.param_bytes
        read += max(n.param_bytes, n.bytes_read - internal.get(n.name, 0.0))
    a = mnodes[0]
    parts = tuple(
        OpNode(n.name, op=n.op, category=n.category, dtype=n.dtype, shape=n.shape)
        for n in mnodes
        if n.name not in g.folded
    )
    return OpNode(
        a.name,
        op=a.op,
        category=a.category,
        flops=flops,
        bytes_read=read,
        bytes_written=sum(n.bytes_written for n in leaving),
        param_bytes=params,
        out_bytes=sum(n.out_bytes for n in leaving),
        dtype=last.dtype,
        shape=last.shape,
        module=a.module,
        parts=parts,
    )


def fuse_with_report(
    graph: OpGraph,
    *,
    fold_batch_norm: bool = True,
    epilogues: bool = True,
    producers: Iterable[str] = EPILOGUE_PRODUCERS,
) -> tuple[OpGraph, FusionReport]:
    """:func:`fuse`, also returning a :class:`FusionReport`."""
    n0 = len(graph.nodes)
    if "fused" in graph.meta:
        return graph, FusionReport(n0, n0, 0, 0, 0)
    if "coarsen" in graph.meta:
        msg = f"graph {graph.name!r} is coarsened: fuse before coarsening"
        raise UsageError(msg)
    prod = frozenset(producers)
    g = _Groups(graph)
    folded = fused = 0
    for n in graph.nodes:
        g.add(n.name)
        if _fixed(n):
            continue
        target = _foldable(g, n) if fold_batch_norm else None
        if target is not None:
            g.join(target, n.name, folded=True)
            folded += 1
            continue
        if epilogues and n.category == "elementwise":
            target = _epilogue_target(g, n, prod)
            if target is not None:
                g.join(target, n.name)
                fused += 1
    internal: dict[str, float] = {}  # member -> bytes it reads from its own group
    for t in graph.tensors:
        home = g.group_of[t.src]
        for d in t.dsts:
            if g.group_of[d] == home:
                internal[d] = internal.get(d, 0.0) + t.bytes
    nodes = [
        _fused_node(graph, g, grp, internal) if len(ms) > 1 else graph.node(grp)
        for grp, ms in g.members.items()
    ]
    tensors = _quotient_tensors(graph, g.group_of, {x: x for x in g.members})
    groups = {grp: list(ms) for grp, ms in g.members.items() if len(ms) > 1}
    report = FusionReport(n0, len(nodes), folded, fused, len(groups))
    meta = dict(graph.meta)
    old_fx = graph.meta.get("fx_nodes")
    if old_fx is not None:
        meta["fx_nodes"] = {
            grp: [x for m in ms for x in old_fx.get(m, [])] for grp, ms in g.members.items()
        }
    meta["fused"] = {
        **report.to_dict(),
        "groups": groups,
        "folded_ops": sorted(g.folded, key=graph.index.__getitem__),
    }
    return OpGraph(graph.name, nodes, tensors=tensors, meta=meta), report


def fuse(
    graph: OpGraph,
    *,
    fold_batch_norm: bool = True,
    epilogues: bool = True,
    producers: Iterable[str] = EPILOGUE_PRODUCERS,
) -> OpGraph:
    """The graph an inference compiler would place: batch norms folded, epilogues fused.

    Parameters
    ----------
    graph : the graph to fuse (not modified).
    fold_batch_norm : fold inference batch norms into the conv/linear before them.
    epilogues : fuse elementwise ops into their producer's group.
    producers : categories a group may start with for epilogues to join it.

    Returns
    -------
    OpGraph
        Fused ops are named after their first member; ``meta["fused"]`` holds the
        :class:`FusionReport` fields, ``groups`` (fused op -> members) and ``folded_ops``;
        ``meta["fx_nodes"]`` (when present) is merged per group. A graph that already has
        ``meta["fused"]`` is returned as is.

    Raises
    ------
    UsageError
        For a coarsened graph: fusion runs on the graph as imported, before coarsening.
    """
    return fuse_with_report(
        graph, fold_batch_norm=fold_batch_norm, epilogues=epilogues, producers=producers
    )[0]
