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

Sharded chains (:mod:`hetsched.problem.chains`): an op that keeps its output sharded has no
cat; each shard runs its own copy of the op's later nodes (views with the sharded dim cut
``k`` ways, transposes, splits, elementwise ops, other operands sliced to match), and the
reader takes those copies where they are: attention by heads, or a linear layer by input
features (each shard its slice of the input times its slice of the weight columns; the
anchor node becomes the sum of the partial outputs and the bias: the all-reduce). A
linear layer that feeds queries, keys and values gives each shard its heads' block of
every section the later ``split`` cuts. What the rewrite cannot shard raises
:class:`PlanError` naming the op and the node.

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

import dataclasses
import math
import operator
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import fx

from hetsched.errors import PlanError

__all__ = ["ShardedProgram", "anchor_targets", "plan_split_tags", "plan_splits", "shard_program"]

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
    device); ``shards`` (op -> fx node names of each shard, in device order);
    ``replicas`` (fx node of a replicated op -> device -> its copy there)."""

    module: fx.GraphModule
    fx_nodes: Mapping[str, tuple[str, ...]]
    devices: Mapping[str, str]
    shards: Mapping[str, tuple[tuple[str, ...], ...]]
    replicas: Mapping[str, Mapping[str, str]] = dataclasses.field(default_factory=dict)


def plan_splits(plan: Any) -> dict[str, tuple[str, ...]]:
    """op -> its devices, for each op ``plan`` runs split (a ``split:`` mode tag)."""
    from hetsched.costmodel.sharding import describe_split

    return {op: m.devices for op, m in plan.modes.items() if describe_split(m.tag)}


def plan_split_tags(plan: Any) -> dict[str, str]:
    """op -> its mode's tag, for each op ``plan`` runs split."""
    from hetsched.costmodel.sharding import describe_split

    return {op: m.tag for op, m in plan.modes.items() if describe_split(m.tag)}


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
    tags: Mapping[str, str] | None = None,
) -> ShardedProgram:
    """Cut each op of ``splits`` (op -> its devices, one shard each) in a copy of
    ``program`` (an ``fx.GraphModule`` or ``ExportedProgram``); see the module docstring.
    ``tags`` (op -> its mode's tag) marks the sharded chains (``keep:``, ``from:``,
    ``split:row``; :mod:`hetsched.problem.chains`).

    Raises :class:`PlanError` naming the op when it has no single anchor node, its split
    dimension does not divide by the number of devices, or a sharded chain's nodes are
    not ones the rewrite can shard.
    """
    gm = program.module() if isinstance(program, torch.export.ExportedProgram) else program
    gm = fx.GraphModule(gm, _copy_graph(gm.graph))
    rewrite = _Rewrite(gm, {op: tuple(names) for op, names in fx_nodes.items()})
    order = {n.name: i for i, n in enumerate(gm.graph.nodes)}
    first = {
        op: min((order[x] for x in fx_nodes.get(op, ()) if x in order), default=0) for op in splits
    }
    for op in sorted(splits, key=first.__getitem__):  # producers before their readers
        rewrite.op(op, tuple(splits[op]), (tags or {}).get(op, ""))
    rewrite.finish()
    gm.graph.lint()
    gm.recompile()
    replicas = {
        n.name: {d: c.name for d, c in zip(devs, copies, strict=True)}
        for n, (copies, devs) in rewrite.replicas.items()
    }
    return ShardedProgram(gm, rewrite.out_nodes, rewrite.devices, rewrite.shards, replicas)


class _Rewrite:
    """One program's rewrite: the fx nodes each op now covers, each shard's device, and
    the values left sharded (original fx node -> one node per shard, sharded dim)."""

    def __init__(self, gm: fx.GraphModule, out_nodes: dict[str, tuple[str, ...]]) -> None:
        self.gm = gm
        self.by_name = {n.name: n for n in gm.graph.nodes}
        self.out_nodes = out_nodes
        self.devices: dict[str, str] = {}
        self.shards: dict[str, tuple[tuple[str, ...], ...]] = {}
        self.sharded: dict[fx.Node, tuple[list[fx.Node], int]] = {}
        self.replaced: set[fx.Node] = set()
        # replicated values: original fx node -> (its copy on each device, the devices)
        self.replicas: dict[fx.Node, tuple[list[fx.Node], tuple[str, ...]]] = {}
        self._order = {n: i for i, n in enumerate(gm.graph.nodes)}

    def op(self, op: str, devs: tuple[str, ...], tag: str) -> None:
        from hetsched.costmodel.sharding import describe_split
        from hetsched.problem.chains import kept_layout

        kinds = anchor_targets()
        k = len(devs)
        mine = [self.by_name[x] for x in self.out_nodes.get(op, ())]
        split = describe_split(tag)
        if split == "replica":
            self._replica(op, devs, mine)
            return
        if split == "tokens":
            self._tokens(op, devs, mine, kept_layout(tag) is not None)
            return
        anchors = [n for n in mine if n.target in kinds]
        _need(len(anchors) == 1, op, f"{len(anchors)} linear/conv/attention nodes, not one")
        node = anchors[0]
        how = kinds[node.target]
        keep = kept_layout(tag)
        groups: list[list[fx.Node]] = [[] for _ in range(k)]
        at = mine.index(node)
        for n in mine[:at]:  # a reader's own nodes on the way to its anchor
            if any(a in self.sharded for a in n.all_input_nodes):
                self._replicate(n, groups, op)
        outs: list[fx.Node] = []
        with self.gm.graph.inserting_before(node):
            for i in range(k):
                cutter = _Cutter(self.gm, op, i, k)
                if split == "row":
                    y = self._row_shard(node, how, cutter, op, devs)
                else:
                    given = self._given(node, how, i, op)
                    sections = _sections(self.gm, node, keep) if keep and how != "sdpa" else None
                    here = [self._local(a, i, devs) for a in node.args]
                    args, kwargs = _shard_args(
                        self.gm, node, how, cutter, op, given, sections, here
                    )
                    y = self.gm.graph.call_function(node.target, tuple(args), kwargs)
                    cutter.made.append(y)
                outs.append(y)
                groups[i] += cutter.made
        if split == "row":
            self._reduce(node, how, outs)
        elif keep:
            self.sharded[node] = (
                outs,
                1 if how == "sdpa" else len(_known_shape(self.gm, node)) - 1,
            )
            self.replaced.add(node)
            for n in mine[at + 1 :]:
                if any(a in self.sharded for a in n.all_input_nodes):
                    self._replicate(n, groups, op)
            inside = set(mine).union(*groups)
            leaving = [n for n in mine if any(u not in inside for u in n.users)]
            bad = [n.name for n in leaving if n not in self.sharded]
            _need(not bad, op, f"{', '.join(bad)} leave(s) the op whole")
        else:  # the anchor node becomes the cat: the op's output keeps its name and users
            node.target = _CAT
            node.args = (outs, 1 if how in ("conv", "sdpa") else -1)
            node.kwargs = {}
        names = [n.name for n in mine]
        names[at:at] = [x.name for made in groups for x in made]
        self._record(op, devs, groups, names)

    def _record(
        self, op: str, devs: tuple[str, ...], groups: list[list[fx.Node]], names: Sequence[str]
    ) -> None:
        """Op ``op`` now covers the fx nodes ``names``; ``groups[i]`` are shard ``i``'s, on
        ``devs[i]``."""
        for dev, made in zip(devs, groups, strict=True):
            self.devices.update(dict.fromkeys((x.name for x in made), dev))
        self.out_nodes[op] = tuple(names)
        self.shards[op] = tuple(tuple(x.name for x in made) for made in groups)

    def _replica(self, op: str, devs: tuple[str, ...], mine: list[fx.Node]) -> None:
        """The op's nodes once more on each further device (the first keeps the
        originals), each copy right after its original; a copy reads the copies of
        replicated inputs on its own device."""
        k = len(devs)
        copies: dict[fx.Node, list[fx.Node]] = {}
        local: list[dict[fx.Node, fx.Node]] = [{} for _ in range(k)]
        for n in sorted(mine, key=self._order.__getitem__):
            copies[n] = [n]
            after = n
            for i in range(1, k):

                def here(a: fx.Node, i: int = i) -> Any:
                    return local[i][a] if a in local[i] else self._local(a, i, devs)

                with self.gm.graph.inserting_after(after):
                    c = self.gm.graph.node_copy(n, here)
                local[i][n] = after = c
                copies[n].append(c)
        groups = [[copies[n][i] for n in copies] for i in range(k)]
        for n, cs in copies.items():
            self.replicas[n] = (cs, devs)
        self._record(op, devs, groups, [x.name for g in groups for x in g])

    def _tokens(self, op: str, devs: tuple[str, ...], mine: list[fx.Node], keep: bool) -> None:
        """An op split by tokens: each node that reads a value sharded by tokens once per
        shard; a node that starts the op from a whole input takes each shard's slice of
        it; unless the op keeps its output sharded, what leaves it is the cat of its
        shards (the all-gather)."""
        k = len(devs)
        groups: list[list[fx.Node]] = [[] for _ in range(k)]
        sliced: list[fx.Node] = []
        keys = _keys_only(mine)
        prep = self._prep(mine, keys)
        barrier = next((n for n in mine if n not in keys and n not in prep), None)
        gathers: list[fx.Node] = []
        for n in mine:  # whole, before any shard runs (keys and values from gathers)
            if barrier is not None and n in prep:
                barrier.prepend(n)
            elif barrier is not None and n in keys:
                gathers += self._gathered(n, barrier)
        for n in mine:
            if n in keys or n in prep:
                continue
            if not any(a in self.sharded for a in n.all_input_nodes):
                entry = _token_entry(self.gm, n)
                if entry is None:
                    continue
                a, dim = entry
                size = _known_shape(self.gm, a)[dim]
                parts = []
                with self.gm.graph.inserting_before(n):
                    for i in range(k):
                        cut = _Cutter(self.gm, op, i, k)
                        parts.append(cut(self._local(a, i, devs), dim, size))
                        groups[i] += cut.made
                self.sharded[a] = (parts, dim)
                sliced.append(a)
            self._token_copy(n, groups, op, devs)
        for a in sliced:  # whole values other ops read whole
            del self.sharded[a]
        inside = set(mine).union(*groups)
        leaving = [n for n in mine if any(u not in inside for u in n.users)]
        if keep:
            bad = [n.name for n in leaving if n not in self.sharded]
            _need(not bad, op, f"{', '.join(bad)} leave(s) the op whole")
        else:
            for n in leaving:  # the all-gather: the node becomes the cat of its shards
                if n in self.sharded:
                    parts, dim = self.sharded.pop(n)
                    n.op, n.target, n.args, n.kwargs = "call_function", _CAT, (parts, dim), {}
                    self.replaced.discard(n)
        names = {n.name for n in [*mine, *gathers, *(x for g in groups for x in g)]}
        self._record(op, devs, groups, [n.name for n in self.gm.graph.nodes if n.name in names])

    def _prep(self, mine: list[fx.Node], keys: set[fx.Node]) -> set[fx.Node]:
        """The nodes of a token-split op that stay whole: they read neither a sharded
        value nor the rows the op slices, nor any other node of the op (a weight's
        conversion to the op's precision)."""
        prep: set[fx.Node] = set()
        inside = set(mine)
        for n in mine:
            ins = n.all_input_nodes
            if n in keys or any(a in self.sharded for a in ins):
                continue
            if _token_entry(self.gm, n) is None and all(a in prep for a in ins if a in inside):
                prep.add(n)
        return prep

    def _gathered(self, n: fx.Node, barrier: fx.Node) -> list[fx.Node]:
        """``n`` (on the way to attention's keys or values only) computed whole from the
        cat of each sharded input, moved before ``barrier`` (the op's first other node):
        every shard reads the whole keys and values, and no shard reads another's. The
        cats it made."""
        made = []
        for a in n.all_input_nodes:
            if a in self.sharded:
                parts, dim = self.sharded[a]
                with self.gm.graph.inserting_before(barrier):
                    made.append(self.gm.graph.call_function(_CAT, (parts, dim)))
                n.replace_input_with(a, made[-1])
        barrier.prepend(n)
        return made

    def _token_copy(
        self, n: fx.Node, groups: list[list[fx.Node]], op: str, devs: tuple[str, ...]
    ) -> None:
        """One copy of ``n`` per shard, ``n`` reading values sharded by tokens: a view or
        elementwise op as in any chain; a linear layer, norm or softmax on its shard
        (none may reduce over the tokens); attention on its shard of queries with every
        shard's keys and values (gathered), its causal mask offset to its rows."""
        name = _fx_name(n)
        if name == "cat":
            self._token_cat(n, groups, op)
            return
        if name not in _TOKEN_OPS:
            self._replicate(n, groups, op)
            return
        at = 1 if name == "addmm" else 0
        src = n.args[at]
        rank = len(_known_shape(self.gm, n))
        copies = []
        dim = rank - 2
        with self.gm.graph.inserting_before(n):
            for i in range(len(groups)):
                cut = _Cutter(self.gm, op, i, len(groups))
                args = [self._local(a, i, devs) for a in n.args]
                kwargs = dict(n.kwargs)
                if name == "scaled_dot_product_attention":
                    self._token_attention(n, args, kwargs, cut)
                else:
                    _need(isinstance(src, fx.Node) and src in self.sharded, op,
                          f"{n.name} ({name}) reads a sharded value after a whole one")  # fmt: skip
                    assert isinstance(src, fx.Node)
                    parts, dim = self.sharded[src]
                    others = [a for j, a in enumerate(n.args) if j != at]
                    _need(not any(a in self.sharded for a in others if isinstance(a, fx.Node)),
                          op, f"{n.name} ({name}) reads two sharded values")  # fmt: skip
                    _need(_keeps_tokens(n, name, dim, rank), op,
                          f"{n.name} ({name}) reduces over the sharded dim {dim}")  # fmt: skip
                    args[at] = parts[i]
                c = self.gm.graph.create_node(n.op, n.target, tuple(args), kwargs)  # type: ignore[arg-type]
                groups[i] += [*cut.made, c]
                copies.append(c)
        self.sharded[n] = (copies, dim)
        self.replaced.add(n)

    def _token_cat(self, n: fx.Node, groups: list[list[fx.Node]], op: str) -> None:
        """One copy per shard of a cat along another dim than the sharded one: each
        shard's part of every tensor (its slice of a whole one)."""
        items = list(n.args[0])  # type: ignore[arg-type]
        out = _known_shape(self.gm, n)
        along = int(n.args[1]) % len(out) if len(n.args) > 1 else 0  # type: ignore[arg-type]
        dims = {self.sharded[x][1] for x in items if x in self.sharded}
        _need(len(dims) == 1 and along not in dims, op, f"{n.name} concatenates along the shards")
        dim = dims.pop()
        copies = []
        with self.gm.graph.inserting_before(n):
            for i in range(len(groups)):
                cut = _Cutter(self.gm, op, i, len(groups))
                mine = [
                    self.sharded[x][0][i] if x in self.sharded else cut(x, dim, out[dim])
                    for x in items
                ]
                c = self.gm.graph.call_function(n.target, (mine, *n.args[1:]), dict(n.kwargs))  # type: ignore[arg-type]
                groups[i] += [*cut.made, c]
                copies.append(c)
        self.sharded[n] = (copies, dim)
        self.replaced.add(n)

    def _token_attention(
        self, n: fx.Node, args: list[Any], kwargs: dict[str, Any], cut: _Cutter
    ) -> None:
        """Shard ``cut.i`` of attention by tokens, into ``args``/``kwargs``: its rows of
        the queries, every row of the keys and values (a cat of their shards where they
        are sharded), its rows of a mask, an explicit causal mask offset to its rows."""
        op, k, i = cut.op, cut.k, cut.i
        q = n.args[0]
        qs = _known_shape(self.gm, q)
        rows, dim = qs[-2], len(qs) - 2
        if q in self.sharded:
            parts, d = self.sharded[q]  # type: ignore[index]
            _need(d == dim, op, f"{n.name}: queries sharded on dim {d}")
            args[0] = parts[i]
        else:
            args[0] = cut(args[0], dim, rows)
        for j in (1, 2):
            x = n.args[j]
            if isinstance(x, fx.Node) and x in self.sharded:
                parts, d = self.sharded[x]
                _need(d == len(_known_shape(self.gm, x)) - 2, op, f"{n.name}: keys sharded on {d}")
                c = self.gm.graph.call_function(_CAT, (parts, d))
                cut.made.append(c)
                args[j] = c
        lo, hi = i * rows // k, (i + 1) * rows // k
        in_args = len(args) > 3
        mask = args[3] if in_args else kwargs.get("attn_mask")
        ms = _shape(self.gm, n.args[3] if in_args else kwargs.get("attn_mask"))
        if ms is not None and len(ms) >= 2 and ms[-2] == rows and rows > 1:
            mask = cut(mask, len(ms) - 2, rows)
        causal = bool(args[5] if len(args) > 5 else kwargs.get("is_causal", False))
        if causal:
            _need(mask is None, op, f"{n.name}: a causal mask and another")
            keys = _known_shape(self.gm, n.args[1])[-2]
            ones = self.gm.graph.call_function(
                _aten.new_ones.default, (args[0], [hi - lo, keys]), {"dtype": torch.bool}
            )
            mask = self.gm.graph.call_function(_aten.tril.default, (ones, lo))
            cut.made += [ones, mask]
            if len(args) > 5:
                args[5] = False
            else:
                kwargs["is_causal"] = False
        if in_args:
            args[3] = mask
        elif mask is not None:
            kwargs["attn_mask"] = mask

    def _local(self, a: Any, i: int, devs: tuple[str, ...]) -> Any:
        """Shard ``i``'s own copy of ``a`` where ``a`` is replicated on ``devs``."""
        hit = self.replicas.get(a) if isinstance(a, fx.Node) else None
        return hit[0][i] if hit is not None and hit[1] == devs else a

    def _given(self, node: fx.Node, how: str, i: int, op: str) -> dict[int, fx.Node]:
        """Attention's queries, keys and values already sharded by heads: shard ``i``'s
        (its copies of replicated arguments come from :meth:`_local`)."""
        out = {}
        for j, a in enumerate(node.args[:3]):
            if isinstance(a, fx.Node) and a in self.sharded:
                parts, dim = self.sharded[a]
                _need(how == "sdpa" and dim == 1, op, f"its input {a.name} is sharded on dim {dim}")
                out[j] = parts[i]
        return out

    def _row_shard(
        self, node: fx.Node, how: str, cut: _Cutter, op: str, devs: tuple[str, ...]
    ) -> fx.Node:
        """Shard ``cut.i`` of a linear layer split by input features: its slice of the
        input times its slice of the weight, no bias (the partial output)."""
        _need(how in ("linear", "addmm"), op, "a row split needs a linear layer")
        x = self._local(node.args[0] if how == "linear" else node.args[1], cut.i, devs)
        w = node.args[1] if how == "linear" else node.args[2]
        ws = _shape(self.gm, w)
        _need(ws is not None and len(ws) == 2, op, "unknown weight shape")
        assert ws is not None and isinstance(x, fx.Node)
        features = ws[1] if how == "linear" else ws[0]
        if x in self.sharded:
            parts, dim = self.sharded[x]
            _need(
                dim == len(_known_shape(self.gm, x)) - 1, op, "its input is not sharded by features"
            )
            xi: Any = parts[cut.i]
        else:
            xs = _known_shape(self.gm, x)
            xi = cut(x, len(xs) - 1, xs[-1])
        wi = cut(w, 1 if how == "linear" else 0, features)
        if how == "linear":
            y = self.gm.graph.call_function(_aten.linear.default, (xi, wi))
        else:
            y = self.gm.graph.call_function(_aten.mm.default, (xi, wi))
        cut.made.append(y)
        return y

    def _reduce(self, node: fx.Node, how: str, partials: list[fx.Node]) -> None:
        """``node`` becomes the sum of the partial outputs (plus its bias): the all-reduce."""
        bias = node.args[2] if how == "linear" and len(node.args) > 2 else None
        if how == "addmm":
            bias = node.args[0]
        total: Any = partials[0]
        with self.gm.graph.inserting_before(node):
            for y in partials[1:-1] if bias is None else partials[1:]:
                total = self.gm.graph.call_function(_aten.add.Tensor, (total, y))
        last = partials[-1] if bias is None else bias
        node.target = _aten.add.Tensor
        node.args = (total, last)
        node.kwargs = {}

    def _replicate(self, n: fx.Node, groups: list[list[fx.Node]], op: str) -> None:
        """One copy of ``n`` per shard, on the shards of its sharded input."""
        at = next(j for j, a in enumerate(n.args) if isinstance(a, fx.Node) and a in self.sharded)
        src = n.args[at]
        assert isinstance(src, fx.Node)
        parts, dim = self.sharded[src]
        k = len(parts)
        args, new_dim = _shard_view(self.gm, n, at, dim, k, op)
        kwargs = dict(n.kwargs)
        if "assert_tensor_metadata" in str(n.target):  # the shard's own size and strides
            kwargs = {x: y for x, y in kwargs.items() if x not in ("size", "stride")}
        copies = []
        with self.gm.graph.inserting_before(n):
            for i, p in enumerate(parts):
                cut = _Cutter(self.gm, op, i, k)
                a = [
                    p if j == at else self._operand(x, new_dim, i, cut, n, op)
                    for j, x in enumerate(args)
                ]
                c = self.gm.graph.create_node(n.op, n.target, tuple(a), kwargs)  # type: ignore[arg-type]
                groups[i] += [*cut.made, c]
                copies.append(c)
        self.sharded[n] = (copies, new_dim)
        self.replaced.add(n)

    def _operand(self, x: Any, dim: int, i: int, cut: _Cutter, n: fx.Node, op: str) -> Any:
        """Shard ``i``'s part of another operand of elementwise ``n`` whose output is
        sharded on ``dim``: its own shard if it is sharded the same way (dims aligned as
        broadcasting aligns them), its slice along ``dim`` if whole, itself if it
        broadcasts along ``dim`` (or is not a tensor)."""
        if not isinstance(x, fx.Node):
            return x
        out = _known_shape(self.gm, n)
        shape = _known_shape(self.gm, x)
        if x in self.sharded:
            parts, d = self.sharded[x]
            aligned = d + len(out) - len(shape)
            _need(aligned == dim, op, f"{n.name} reads values sharded on dims {dim} and {aligned}")
            return parts[i]
        at = dim - (len(out) - len(shape))  # numpy broadcasting aligns trailing dims
        if at < 0 or shape[at] == 1:
            return x
        _need(shape[at] == out[dim], op, f"{n.name} reads {x.name} of another shape")
        return cut(x, at, shape[at])

    def finish(self) -> None:
        """Drop the whole-tensor nodes the shards replaced (none may still be read)."""
        for n in reversed(list(self.gm.graph.nodes)):
            if n not in self.replaced:
                continue
            if n.users:
                op = next((o for o, xs in self.out_nodes.items() if n.name in xs), "?")
                _need(False, op, f"{next(iter(n.users)).name} reads {n.name} whole")
            self.gm.graph.erase_node(n)
        gone = {n.name for n in self.replaced}
        self.out_nodes = {
            op: tuple(x for x in xs if x not in gone) for op, xs in self.out_nodes.items()
        }


# fx ops a token split runs on each shard's rows that are not views or elementwise
_TOKEN_OPS = {
    "linear", "addmm", "layer_norm", "rms_norm", "softmax", "_softmax", "log_softmax",
    "_log_softmax", "scaled_dot_product_attention",
}  # fmt: skip


def _fx_name(n: fx.Node) -> str:
    return str(getattr(n.target, "__name__", n.target)).split(".")[0]


def _keeps_tokens(n: fx.Node, name: str, dim: int, rank: int) -> bool:
    """Whether ``n`` computes each row along ``dim`` (of its rank-``rank`` output) alone."""
    if name in ("linear",):
        return dim < rank - 1
    if name == "addmm":
        return dim == 0
    if name in ("layer_norm", "rms_norm"):
        return dim < rank - len(n.args[1])  # type: ignore[arg-type]
    return int(n.args[1]) % rank != dim  # type: ignore[arg-type]  # softmax


def _keys_only(mine: Sequence[fx.Node]) -> set[fx.Node]:
    """The nodes of an op that lead only to its attention's keys or values (not to its
    queries nor out of the op)."""
    attention = [n for n in mine if _fx_name(n) == "scaled_dot_product_attention"]
    inside = set(mine) - set(attention)  # what reaches attention's inputs, not through it

    def upstream(starts: Sequence[Any]) -> set[fx.Node]:
        seen: set[fx.Node] = set()
        todo = [x for x in starts if isinstance(x, fx.Node) and x in inside]
        while todo:
            x = todo.pop()
            if x not in seen:
                seen.add(x)
                todo += [a for a in x.all_input_nodes if a in inside]
        return seen

    kv = upstream([a for n in attention for a in n.args[1:3]])
    rest = [n for n in mine if n not in kv and n not in attention]
    return kv - upstream([*(n.args[0] for n in attention), *rest])


def _token_entry(gm: fx.GraphModule, n: fx.Node) -> tuple[fx.Node, int] | None:
    """The whole input of ``n`` a token split slices, and along which dim (its tokens:
    second to last of the output, aligned as broadcasting aligns), when ``n`` computes
    rows (a linear layer, norm, softmax, attention or elementwise op), else ``None``."""
    name = _fx_name(n)
    if name not in _TOKEN_OPS and not _elementwise(n, name):
        return None
    out = _shape(gm, n)
    if out is None or len(out) < 2:
        return None
    for j, a in enumerate(n.args):
        shape = _shape(gm, a) if isinstance(a, fx.Node) and a.op != "get_attr" else None
        if shape is None or (name == "addmm" and j != 1):
            continue
        if len(shape) >= 2 and shape[-2] == out[-2]:
            assert isinstance(a, fx.Node)
            return a, len(shape) - 2
    return None


def _known_shape(gm: fx.GraphModule, node: Any) -> tuple[int, ...]:
    """:func:`_shape`, which a sharded chain cannot do without."""
    shape = _shape(gm, node)
    if shape is None:
        msg = f"fx node {node.name!r} has no shape (export the program with torch.export)"
        raise PlanError(msg)
    return shape


def _sections(gm: fx.GraphModule, node: fx.Node, layout: str) -> list[int]:
    """Output features of a linear layer, in the sections its output is split into (one
    section unless a ``split`` along the features follows it)."""
    out = _known_shape(gm, node)
    users = list(node.users)
    while (
        len(users) == 1 and users[0].target in _VIEWS and _known_shape(gm, users[0])[-1] == out[-1]
    ):
        users = list(users[0].users)  # addmm's [rows, features] back to [batch, seq, ...]
    for u in users:
        if u.target in (_aten.split.Tensor, _aten.split_with_sizes.default):
            a: Any = u.args
            rank = len(_known_shape(gm, a[0]))
            dim = int(a[2]) if len(a) > 2 else 0
            if dim % rank == rank - 1:
                size = a[1]
                if isinstance(size, int):
                    return [min(size, out[-1] - j) for j in range(0, out[-1], size)]
                return [int(x) for x in size]
    if layout == "qkv":
        msg = f"fx node {node.name!r}: queries, keys and values are not split from it"
        raise PlanError(msg)
    return [out[-1]]


_VIEWS = (_aten.view.default, _aten.reshape.default, _aten._unsafe_view.default)
# same-shape ops that are not elementwise in the op table: copies, conversions (a lowered
# op's islands), fake quantization
_SAME = {
    "clone", "contiguous", "alias", "detach", "to", "_to_copy", "type",
    "fake_quantize_per_tensor_affine", "fake_quantize_per_channel_affine",
}  # fmt: skip


def _elementwise(n: fx.Node, name: str) -> bool:
    """Whether ``n`` computes each output element from the same element of its inputs."""
    from hetsched.graph.optable import op_kind

    if name in _SAME:
        return True
    return n.op == "call_function" and op_kind(n.target).category == "elementwise"


def _shard_view(
    gm: fx.GraphModule, n: fx.Node, at: int, dim: int, k: int, op: str
) -> tuple[tuple[Any, ...], int]:
    """Arguments of one shard's copy of ``n`` (argument ``at`` sharded on ``dim`` ``k``
    ways; only elementwise ops may have it anywhere but first) and the dim its output is
    sharded on."""
    name = getattr(n.target, "__name__", str(n.target)).split(".")[0]
    args: tuple[Any, ...] = tuple(n.args)
    if name == "getitem":  # an item of a split's outputs
        return args, dim
    if name == "_assert_tensor_metadata":  # a check of the whole tensor: its dtype only
        return (args[0],), dim
    if _elementwise(n, name):  # other tensors are sliced or broadcast
        return args, dim + len(_known_shape(gm, n)) - len(_known_shape(gm, args[at]))
    _need(at == 0, op, f"{n.name} ({name}) reads a sharded value after a whole one")
    if name in ("view", "reshape", "_unsafe_view"):
        src, out = _known_shape(gm, args[0]), _known_shape(gm, n)
        prefix = math.prod(src[:dim])
        for b in range(len(out)):
            if math.prod(out[:b]) == prefix and out[b] % k == 0:
                shape = [*out[:b], out[b] // k, *out[b + 1 :]]
                return (args[0], shape), b
        _need(False, op, f"{n.name} reshapes the sharded dim away")
    if name in ("unsqueeze", "squeeze"):
        rank = len(_known_shape(gm, n if name == "unsqueeze" else args[0]))
        dims = args[1] if len(args) > 1 else None
        if name == "squeeze":
            src = _known_shape(gm, args[0])
            gone = [d for d in range(rank) if src[d] == 1] if dims is None else dims
            gone = [int(d) % rank for d in ([gone] if isinstance(gone, int) else gone)]
            _need(dim not in gone, op, f"{n.name} squeezes the sharded dim away")
            return args, dim - sum(d < dim for d in gone)
        at = int(dims) % rank  # type: ignore[arg-type]
        return args, dim + 1 if at <= dim else dim
    if name == "expand":  # leading dims may be added; the sharded one keeps its size
        grow = len(_known_shape(gm, n)) - len(_known_shape(gm, args[0]))
        sizes = list(args[1])  # type: ignore[call-overload]
        sizes[dim + grow] = -1
        return (args[0], sizes, *args[2:]), dim + grow
    if name in ("slice", "chunk"):
        rank = len(_known_shape(gm, args[0]))
        j = 1 if name == "slice" else 2  # slice(x, dim, ...), chunk(x, chunks, dim)
        along = int(args[j]) % rank if len(args) > j else 0  # type: ignore[call-overload]
        _need(along != dim, op, f"{n.name} cuts the sharded dim")
        return args, dim
    if name == "transpose":
        rank = len(_known_shape(gm, n))
        a, b = (int(x) % rank for x in args[1:3])
        return args, b if dim == a else a if dim == b else dim
    if name == "permute":
        rank = len(_known_shape(gm, n))
        dims = [int(x) % rank for x in args[1]]
        return args, dims.index(dim)
    if name in ("split", "split_with_sizes"):
        rank = len(_known_shape(gm, args[0]))
        along = int(args[2]) % rank if len(args) > 2 else 0
        if along != dim:
            return args, dim
        sizes = [args[1]] if isinstance(args[1], int) else list(args[1])
        _need(all(int(x) % k == 0 for x in sizes), op, f"{n.name} splits shards unevenly")
        cut = args[1] // k if isinstance(args[1], int) else [int(x) // k for x in sizes]
        return (args[0], cut, *args[2:]), dim
    _need(False, op, f"{n.name} ({name}) cannot run on a sharded value")
    raise AssertionError  # unreachable


class _Cutter:
    """Slices of shard ``i`` of ``k`` (the fx nodes it made, in order)."""

    def __init__(self, gm: fx.GraphModule, op: str, i: int, k: int) -> None:
        self.gm, self.op, self.i, self.k = gm, op, i, k
        self.made: list[fx.Node] = []

    def __call__(self, x: Any, dim: int, size: int, *, even: bool = True) -> fx.Node:
        """Slice ``i`` of ``x`` along ``dim`` (of ``size``): ``k`` equal ones, or where
        ``even`` is false, ``k`` of ``floor`` or ``ceil(size / k)``."""
        k = self.k
        _need(
            size >= k and (size % k == 0 or not even),
            self.op,
            f"dimension {dim} of size {size} over {k} devices",
        )
        return self._block(x, dim, 0, size)

    def _block(self, x: Any, dim: int, at: int, size: int) -> fx.Node:
        """Slice ``i`` of ``k`` of the ``size`` elements from ``at`` of ``x`` along ``dim``."""
        k, i = self.k, self.i
        s = self.gm.graph.call_function(
            _SLICE, (x, dim, at + i * size // k, at + (i + 1) * size // k)
        )
        self.made.append(s)
        return s

    def blocks(self, x: Any, dim: int, sections: Sequence[int]) -> fx.Node:
        """Block ``i`` of ``k`` of every section of ``x`` along ``dim``, concatenated."""
        parts, at = [], 0
        for size in sections:
            _need(size % self.k == 0, self.op, f"a section of {size} over {self.k} devices")
            parts.append(self._block(x, dim, at, size))
            at += size
        if len(parts) == 1:
            return parts[0]
        c = self.gm.graph.call_function(_CAT, (parts, dim))
        self.made.append(c)
        return c


def _shard_args(
    gm: fx.GraphModule,
    node: fx.Node,
    how: str,
    cut: _Cutter,
    op: str,
    given: Mapping[int, fx.Node] | None = None,
    sections: Sequence[int] | None = None,
    here: Sequence[Any] | None = None,
) -> tuple[list[Any], dict[str, Any]]:
    """The arguments of one shard of ``node`` (slices made by ``cut``). ``given``:
    arguments already sharded (attention's queries, keys, values from a sharded chain);
    ``sections``: a linear layer's output features in the sections a later split cuts
    them into, each shard taking its block of every section (its heads' queries, keys and
    values), for an output left sharded. ``here``: ``node``'s arguments as the shard's
    device holds them (its copies of replicated ones)."""
    args, kwargs = list(node.args if here is None else here), dict(node.kwargs)
    if how in ("linear", "conv"):
        w = _shape(gm, args[1])
        _need(w is not None, op, "unknown weight shape")
        assert w is not None
        column = how == "linear"
        for j in (1, 2) if len(args) > 2 and args[2] is not None else (1,):
            if sections is not None:
                args[j] = cut.blocks(args[j], 0, sections)
            else:
                args[j] = cut(args[j], 0, w[0], even=not column)
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
            args[0] = (
                cut.blocks(args[0], 0, sections) if sections else cut(args[0], 0, w[1], even=False)
            )
        args[2] = (
            cut.blocks(args[2], 1, sections) if sections else cut(args[2], 1, w[1], even=False)
        )
    else:  # sdpa: queries, keys, values (and a per-head mask) by heads
        for j in range(3):
            if given and j in given:
                args[j] = given[j]
                continue
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
