"""Write a plan's tensor-parallel splits into the program: shards that really compute apart.

:func:`shard_program` rewrites the ``fx.GraphModule`` of a program so that each op the plan
runs split ``k`` ways (:mod:`hetsched.costmodel.sharding`) computes as ``k`` shards: its
anchor fx node (``aten.linear``, ``aten.addmm``, ``aten.conv1d``/``conv2d``,
``aten.scaled_dot_product_attention``) is replaced by, for each shard, ``aten.slice`` views
of the weights (rows of a linear weight, columns of an ``addmm`` weight, output channels of
a convolution, with the input channels of a grouped one) or of queries, keys, values (and
a per-head mask) for attention, the same op on those slices, and one ``aten.cat`` of the
shards' outputs (the all-gather). Shard ``i`` belongs to the ``i``-th device of the op's
mode; the cat and the rest of the op run on the first.

Each element of a shard is computed by the same dot product as in the whole op, so the
split program equals the program up to floating-point reassociation inside the kernels.

Examples
--------
>>> import torch
>>> torch.manual_seed(0) and None
>>> m = torch.nn.Sequential(torch.nn.Linear(4, 6), torch.nn.ReLU())
>>> x = torch.randn(3, 4)
>>> gm = torch.export.export(m, (x,)).module()
>>> out = shard_program(gm, {"linear": ("linear",)}, {"linear": ("gpu0", "gpu1")})
>>> out.fx_nodes["linear"][-1], sorted(set(out.devices.values()))
('linear', ['gpu0', 'gpu1'])
>>> torch.testing.assert_close(out.module(x), m(x))
"""

from __future__ import annotations

import operator
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import fx

from hetsched.errors import PlanError

__all__ = ["ShardedProgram", "anchor_targets", "plan_splits", "shard_program"]

_aten = torch.ops.aten
_SLICE = _aten.slice.Tensor
_CAT = _aten.cat.default


def anchor_targets() -> dict[Any, str]:
    """The fx targets a split can cut, and how (``linear``, ``addmm``, ``conv``, ``sdpa``)."""
    return {
        _aten.linear.default: "linear",
        _aten.addmm.default: "addmm",
        _aten.conv1d.default: "conv",
        _aten.conv2d.default: "conv",
        _aten.scaled_dot_product_attention.default: "sdpa",
    }


@dataclass(frozen=True)
class ShardedProgram:
    """The rewritten module; ``fx_nodes`` (op -> its fx nodes, shards included, ending with
    the node named as the anchor was: the cat); ``devices`` (fx node of a shard -> its
    device); ``shards`` (op -> fx node names of each shard, in device order)."""

    module: fx.GraphModule
    fx_nodes: Mapping[str, tuple[str, ...]]
    devices: Mapping[str, str]
    shards: Mapping[str, tuple[tuple[str, ...], ...]]


def plan_splits(plan: Any) -> dict[str, tuple[str, ...]]:
    """op -> its devices, for each op ``plan`` runs split (a ``split:`` mode tag)."""
    from hetsched.costmodel.sharding import describe_split

    return {op: m.devices for op, m in plan.modes.items() if describe_split(m.tag)}


def _shape(gm: fx.GraphModule, node: Any) -> tuple[int, ...] | None:
    if not isinstance(node, fx.Node):
        return None
    val = node.meta.get("val")
    if val is not None and hasattr(val, "shape"):
        return tuple(int(s) for s in val.shape)
    if node.op == "get_attr":
        return tuple(operator.attrgetter(str(node.target))(gm).shape)
    if node.args and _keeps_shape(node):  # a conversion a lowered op inserted
        return _shape(gm, node.args[0])
    return None


def _keeps_shape(node: fx.Node) -> bool:
    """A dtype conversion or fake-quantization: same shape as its first argument."""
    name = node.target if isinstance(node.target, str) else getattr(node.target, "__name__", "")
    return str(name) in ("to", "_to_copy", "type") or "fake_quantize" in str(name)


def _need(cond: bool, op: str, why: str) -> None:
    if not cond:
        msg = f"op {op!r} cannot be split as planned: {why}"
        raise PlanError(msg)


def shard_program(
    program: Any,
    fx_nodes: Mapping[str, Sequence[str]],
    splits: Mapping[str, Sequence[str]],
) -> ShardedProgram:
    """Cut each op of ``splits`` (op -> its devices, one shard each) in a copy of
    ``program`` (an ``fx.GraphModule`` or ``ExportedProgram``); see the module docstring.

    Raises :class:`PlanError` naming the op when it has no single anchor node or its split
    dimension does not divide by the number of devices.
    """
    gm = program.module() if isinstance(program, torch.export.ExportedProgram) else program
    gm = fx.GraphModule(gm, _copy_graph(gm.graph))
    by_name = {n.name: n for n in gm.graph.nodes}
    kinds = anchor_targets()
    out_nodes = {op: tuple(names) for op, names in fx_nodes.items()}
    devices: dict[str, str] = {}
    shards: dict[str, tuple[tuple[str, ...], ...]] = {}
    for op, devs in splits.items():
        k = len(devs)
        anchors = [by_name[x] for x in fx_nodes.get(op, ()) if by_name[x].target in kinds]
        _need(len(anchors) == 1, op, f"{len(anchors)} linear/conv/attention nodes, not one")
        node = anchors[0]
        how = kinds[node.target]
        groups: list[list[fx.Node]] = []
        outs: list[fx.Node] = []
        with gm.graph.inserting_before(node):
            for i in range(k):
                cutter = _Cutter(gm, op, i, k)
                args, kwargs = _shard_args(gm, node, how, cutter, op)
                y = gm.graph.call_function(node.target, tuple(args), kwargs)
                cutter.made.append(y)
                outs.append(y)
                groups.append(cutter.made)
        # the anchor node becomes the cat: the op's output keeps its name and users
        node.target = _CAT
        node.args = (outs, 1 if how in ("conv", "sdpa") else -1)
        node.kwargs = {}
        name = node.name
        for dev, made in zip(devs, groups, strict=True):
            for x in made:
                devices[x.name] = dev
        names = list(out_nodes[op])
        at = names.index(name)
        names[at:at] = [x.name for made in groups for x in made]
        out_nodes[op] = tuple(names)
        shards[op] = tuple(tuple(x.name for x in made) for made in groups)
    gm.graph.lint()
    gm.recompile()
    return ShardedProgram(gm, out_nodes, devices, shards)


class _Cutter:
    """Slices of shard ``i`` of ``k`` (the fx nodes it made, in order)."""

    def __init__(self, gm: fx.GraphModule, op: str, i: int, k: int) -> None:
        self.gm, self.op, self.i, self.k = gm, op, i, k
        self.made: list[fx.Node] = []

    def __call__(self, x: Any, dim: int, size: int) -> fx.Node:
        k, i = self.k, self.i
        _need(size % k == 0, self.op, f"dimension {dim} of size {size} over {k} devices")
        s = self.gm.graph.call_function(_SLICE, (x, dim, i * size // k, (i + 1) * size // k))
        self.made.append(s)
        return s


def _shard_args(
    gm: fx.GraphModule, node: fx.Node, how: str, cut: _Cutter, op: str
) -> tuple[list[Any], dict[str, Any]]:
    """The arguments of one shard of ``node`` (slices made by ``cut``)."""
    args, kwargs = list(node.args), dict(node.kwargs)
    if how in ("linear", "conv"):
        w = _shape(gm, args[1])
        _need(w is not None, op, "unknown weight shape")
        assert w is not None
        args[1] = cut(args[1], 0, w[0])
        if len(args) > 2 and args[2] is not None:
            args[2] = cut(args[2], 0, w[0])
        groups = int(args[6]) if how == "conv" and len(args) > 6 else 1  # type: ignore[arg-type]
        if groups > 1:  # a grouped convolution: its input channels too
            c = _shape(gm, args[0])
            _need(c is not None and groups % cut.k == 0, op, "groups over devices")
            assert c is not None
            args[0] = cut(args[0], 1, c[1])
            args[6] = groups // cut.k
    elif how == "addmm":  # addmm(bias, x, weight[in, out])
        w = _shape(gm, args[2])
        _need(w is not None, op, "unknown weight shape")
        assert w is not None
        if _shape(gm, args[0]) == (w[1],):
            args[0] = cut(args[0], 0, w[1])
        args[2] = cut(args[2], 1, w[1])
    else:  # sdpa: queries, keys, values (and a per-head mask) by heads
        for j in range(3):
            s = _shape(gm, args[j])
            _need(s is not None and len(s) == 4, op, "attention inputs not 4-d")
            assert s is not None
            args[j] = cut(args[j], 1, s[1])
        mask = args[3] if len(args) > 3 else kwargs.get("attn_mask")
        ms = _shape(gm, mask)
        if ms is not None and len(ms) == 4 and ms[1] > 1:
            if len(args) > 3:
                args[3] = cut(mask, 1, ms[1])
            else:
                kwargs["attn_mask"] = cut(mask, 1, ms[1])
    return args, kwargs


def _copy_graph(graph: fx.Graph) -> fx.Graph:
    """A copy of ``graph`` (same node names, metadata and calling convention)."""
    new = fx.Graph(tracer_cls=graph._tracer_cls)
    new._codegen = graph._codegen  # read-only: the calling convention
    out = new.graph_copy(graph, {})
    new.output(out)  # type: ignore[arg-type]
    return new
