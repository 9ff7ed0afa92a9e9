"""Sequence-parallel splits: an op of a transformer cut by tokens across devices.

A linear layer, a layer norm, an elementwise op or attention computes each token's output
row from that token's input row alone (attention: from that token's query and every
token's keys and values). So ``k`` identical devices can each compute ``1/k`` of the
tokens with the whole weights (``split:tokens``), the way inference engines split a long
prompt (sequence or context parallelism): no partial sums, no all-reduce; each element is
computed by the same arithmetic as in the whole op, in any precision.

A token split occupies its ``k`` devices for the slowest shard (``1/k`` of the FLOPs,
activations and output; the *whole* weights, resident or streamed: each device holds all
of them) plus an all-gather of the output (ring or one-shot, as
:func:`~hetsched.costmodel.sharding.gather_time` prices it), after which every device
holds the whole output. Its output may instead stay sharded by tokens for readers that take it so
(``+keep:tokens`` / ``+from:tokens``, :mod:`hetsched.problem.chains`): a chain of token
splits (norm, projections, attention, MLP, residual adds) moves no activations between
its devices except attention's keys and values: attention reading its input sharded by
tokens all-gathers its keys and values (two thirds of what it reads) before computing its
queries' rows. A mode that reads a whole input takes its slice where it runs.

Which ops (:func:`token_dims`): each op whose fused parts are all linear layers, layer or
RMS norms, elementwise ops or softmax, each with an output of rank >= 2 (tokens on its
second-to-last dim: ``[..., tokens, features]``), or attention with a 4-d output
``[batch, heads, tokens, dim]``, all with as many tokens (at least 2); ``k`` must divide
the tokens (ViT's 197 do not); and only in a region of such ops that holds a linear
layer or attention (an elementwise op of a CNN never splits so). An output stays
sharded only where every reader is such an op with as many tokens.

Examples
--------
>>> from hetsched.costmodel import Platform
>>> from hetsched.graph import fuse, zoo
>>> g = fuse(zoo.graph("gpt", "tiny"))
>>> modes = token_modes(g, Platform.preset("multi-gpu"))
>>> for tag in sorted({m.tag for m in modes}):
...     print(tag)
split:tokens
split:tokens+from:tokens
split:tokens+from:tokens+keep:tokens
split:tokens+keep:tokens
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Sequence

import numpy as np

from hetsched.costmodel.platform import Platform
from hetsched.costmodel.roofline import CostModel
from hetsched.costmodel.sharding import (
    SPLIT_PREFIX,
    SplitMode,
    _held_both_ways,
    _variants,
    gather_time,
    split_groups,
)
from hetsched.costmodel.table import CostTable, build_cost_table
from hetsched.graph.opgraph import OpGraph, OpNode

__all__ = ["TOKENS", "token_dims", "token_modes", "token_shard_node"]

TOKENS = "tokens"
# ops computed token by token, besides the elementwise ones: (canonical aten name)
_TOKEN_WISE = {
    "linear", "addmm", "layer_norm", "native_layer_norm", "rms_norm", "_fused_rms_norm",
    "softmax", "_softmax", "log_softmax", "_log_softmax", "scaled_dot_product_attention",
}  # fmt: skip
_ANCHORS = ("linear", "addmm", "scaled_dot_product_attention")


def _names(node: OpNode) -> list[str]:
    ops = [p.op for p in node.parts] or [node.op]
    return [op.split(".")[1] if op.startswith("aten.") else op for op in ops]


@functools.cache
def _row_wise(name: str) -> bool:
    """Whether the aten op ``name`` computes each row of its output from that row alone."""
    from hetsched.graph.optable import op_kind

    return name in _TOKEN_WISE or op_kind(f"aten.{name}.default").category == "elementwise"


def _token_wise(node: OpNode) -> bool:
    return all(_row_wise(name) for name in _names(node))


def _rows(node: OpNode) -> int | None:
    """Tokens of an op's output (see the module docstring), ``None`` if unknown or none."""
    shape = node.shape
    if node.category == "attention":
        return int(shape[2]) if len(shape) == 4 else None
    return int(shape[-2]) if len(shape) >= 2 else None


def token_dims(graph: OpGraph) -> dict[int, int]:
    """op -> its number of tokens, for each op of ``graph`` that can split by tokens (see
    the module docstring)."""
    tokens: dict[int, int] = {}
    for v, x in enumerate(graph.nodes):
        if x.cost is not None or not _token_wise(x):
            continue
        rows = {_rows(y) for y in (*x.parts, x)}
        if len(rows) == 1 and (s := rows.pop()) is not None and s > 1:
            tokens[v] = s
    # regions (ops linked through tensors among them, as many tokens) with an anchor
    import networkx as nx

    linked = nx.Graph()
    linked.add_nodes_from(tokens)
    for t in graph.tensors:
        u = graph.index[t.src]
        for w in (graph.index[d] for d in t.dsts):
            if u in tokens and w in tokens and tokens[u] == tokens[w]:
                linked.add_edge(u, w)
    out: dict[int, int] = {}
    for region in nx.connected_components(linked):
        if any(n in _ANCHORS for v in region for n in _names(graph.nodes[v])):
            out.update({v: tokens[v] for v in region})
    return dict(sorted(out.items()))


def token_shard_node(node: OpNode, k: int, *, gathers_keys: bool = False) -> OpNode:
    """One of ``k`` token shards of ``node``: ``1/k`` of its FLOPs, activations and
    output, its whole weights; with ``gathers_keys`` (attention reading keys and values
    gathered from every shard) two thirds of its input whole."""
    act = max(node.bytes_read - node.param_bytes, 0.0)
    read = act / 3 / k + act * 2 / 3 if gathers_keys else act / k
    return dataclasses.replace(
        node,
        flops=node.flops / k,
        bytes_read=read + node.param_bytes,
        bytes_written=node.bytes_written / k,
        out_bytes=node.out_bytes / k,
        parts=tuple(dataclasses.replace(x, flops=x.flops / k) for x in node.parts),
    )


def token_modes(
    graph: OpGraph,
    platform: Platform,
    cost_model: CostModel | None = None,
    *,
    lowered: Sequence[tuple[str, np.ndarray]] = (),
    table: CostTable | None = None,
) -> list[SplitMode]:
    """Every token split of every op of ``graph`` on ``platform`` (see the module
    docstring), in the op's own precision and each of ``lowered`` (``(precision, error
    per op)``, as :func:`~hetsched.costmodel.sharding.split_modes` takes them); ``table``:
    ``graph``'s cost table on ``platform`` when the caller has it."""
    groups = split_groups(platform)
    tokens = token_dims(graph)
    if not groups or not tokens:
        return []
    base = table or build_cost_table(graph, platform, cost_model, allow_infeasible=True)
    bw = np.array([d.mem_bandwidth for d in platform.devices])
    outputs = set(graph.meta.get("outputs") or ())
    keeps = {
        v
        for v in tokens
        if graph.nodes[v].name not in outputs
        and (readers := graph.successors(graph.nodes[v].name))
        and all(tokens.get(graph.index[r]) == tokens[v] for r in readers)
    }
    attention = {v for v in tokens if graph.nodes[v].category == "attention"}
    out: list[SplitMode] = []
    for precision, error, nodes, usable in _variants(graph, lowered):
        for k in sorted({len(g) for g in groups}):
            mine = [v for v, s in tokens.items() if s % k == 0 and s >= k and usable[v]]
            if not mine:
                continue
            for gathers in (False, True):
                ops = [v for v in mine if v in attention] if gathers else mine
                if not ops:
                    continue
                shards = list(nodes)
                for v in ops:
                    shards[v] = token_shard_node(nodes[v], k, gathers_keys=gathers)
                cut = _table_of(graph, [shards[v] for v in ops], ops, platform, cost_model)
                for v in ops:
                    out += _modes_of(v, k, gathers, v in attention, v in keeps, graph, groups,
                                     cut, base, shards[v], precision, float(error[v]),
                                     bw)  # fmt: skip
    out.sort(key=lambda s: (s.op, len(s.devices), s.devices, s.precision, s.tag))
    return out


def _table_of(
    graph: OpGraph,
    shards: Sequence[OpNode],
    ops: Sequence[int],
    platform: Platform,
    cost_model: CostModel | None,
) -> CostTable:
    """The cost table of ``shards`` alone (ops ``ops`` of ``graph``), its op times spread
    to ``graph``'s op indices (``inf`` elsewhere): only those rows are read."""
    alone = OpGraph(graph.name, list(shards))
    sub = build_cost_table(alone, platform, cost_model, allow_infeasible=True)

    def spread(times: np.ndarray) -> np.ndarray:
        out = np.full((len(graph.nodes), times.shape[1]), np.inf)
        out[list(ops)] = times
        return out

    streamed = None if sub.streamed is None else spread(sub.streamed)
    return dataclasses.replace(sub, exec=spread(sub.exec), streamed=streamed)


def _modes_of(
    v: int,
    k: int,
    gathers: bool,
    attention: bool,
    keeps: bool,
    graph: OpGraph,
    groups: Sequence[tuple[int, ...]],
    cut: CostTable,
    base: CostTable,
    shard: OpNode,
    precision: str | None,
    error: float,
    bw: np.ndarray,
) -> list[SplitMode]:
    """Op ``v``'s token splits over each group of ``k`` devices: reading its input whole
    or sharded (attention: ``gathers`` its keys and values only when sharded), leaving its
    output gathered or (``keeps``) sharded."""
    from hetsched.costmodel.precision import convert_bytes

    x = graph.nodes[v]
    convert = np.zeros_like(bw)
    if precision is not None:
        own = token_shard_node(x, k, gathers_keys=gathers)
        convert = convert_bytes(own, shard) / bw
    act = max(x.bytes_read - x.param_bytes, 0.0)
    reads = ("+from:" + TOKENS,) if gathers or not attention else ("",)
    out: list[SplitMode] = []
    for g in (g for g in groups if len(g) == k):
        keys = gather_time(act * 2 / 3, g, base, sink=False)
        gather = gather_time(float(x.out_bytes), g, base, sink=not graph.successors(x.name))
        before = keys if gathers else 0.0
        for take in reads:
            tag = SPLIT_PREFIX + TOKENS + take
            held = _held_both_ways(
                v, g, cut, convert, before + gather, float(x.out_bytes),
                float(x.param_bytes), tag, precision or x.dtype, error,
            )  # fmt: skip
            out += held
            if keeps:
                sharded = float(x.out_bytes) / k
                out += [
                    dataclasses.replace(
                        s,
                        time=s.time - gather,
                        memory=s.memory - float(x.out_bytes) + sharded,
                        tag=tag + "+keep:" + TOKENS + s.tag[len(tag) :],
                        gather=before,
                    )
                    for s in held
                ]
    return out
