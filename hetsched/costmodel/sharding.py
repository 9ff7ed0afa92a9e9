"""Tensor-parallel split modes: one heavy op cut k ways across devices of one kind.

An op that holds weights and produces independent output slices can run as ``k`` shards
on ``k`` identical devices at once (Megatron-LM's intra-layer parallelism):

* ``column``: a linear layer (category ``matmul`` with weights) by output features: each
  device reads the whole input and ``1/k`` of the weight rows and writes ``1/k`` of the
  features;
* ``channels``: a convolution by output channels, the same way;
* ``heads``: attention by heads: each device computes ``1/k`` of the heads from its slice
  of queries, keys and values.

A split mode occupies all ``k`` devices for its duration: the slowest shard (the roofline
of the shard: ``1/k`` of the FLOPs, weights and output; the whole input for ``column`` and
``channels``, ``1/k`` of it for ``heads``) plus an all-gather of the output (a ring: ``k -
1`` steps, each moving ``1/k`` of the output over the slowest hop of the ring; or, where
it is faster, one-shot: every device sends its ``1/k`` straight to every other at once,
transfers that share a link one after another on it: :func:`gather_time`), after which
every device of the mode holds the whole output, so a consumer on any of them reads it
there; an op nobody reads (a graph output) may instead collect its shards on its first
device, each other device sending its shard straight there (:func:`gather_time`). Each
device holds ``1/k`` of the weights (resident, or streamed where the device streams
weights) and the whole output. With an error budget, splits also compute in the reduced
precisions the op may take (:mod:`hetsched.costmodel.precision`), adding its error.

Devices split together (:func:`split_groups`): for each kind with at least two identical
devices, aligned blocks of 2, 4, 8, ... of them and all of them (npu0+npu1 on edge-soc;
gpu0+gpu1, gpu2+gpu3 and all four on multi-gpu). A linear layer splits ``k`` ways into
shards of ``floor`` or ``ceil(n / k)`` features (GPT-2's 50,257-word head); attention and
convolutions only when ``k`` divides their heads or channels.

Sharded chains (:func:`chain_modes`, Megatron-LM's pairs): a split whose single consumer
can read its output where it lies also runs without the all-gather, leaving the output
sharded (``+keep:LAYOUT``, :mod:`hetsched.problem.chains`): a linear layer split by
output features feeding attention (``qkv``: each device's slice holds its heads' queries,
keys and values) or a linear layer (``cols``), and attention split by heads feeding a
linear layer (``cols``). The reader takes the layout (``+from:LAYOUT``): attention by
heads, or a linear layer split by *input* features (``row``: each device multiplies its
slice of the input by its slice of the weight columns, an all-reduce (a reduce-scatter
and an all-gather, ring or one-shot) sums the partial outputs, after which every device
holds the whole output). With an
error budget, chains come in the reduced precisions too (row splits in int8 only, whose
partial products sum in float32).

Replicas (:func:`replica_modes`, ``split:replica``): a norm or elementwise op next to an
op that can split, computed whole on every device of a group at once, as Megatron-LM
computes its layer norms, so that the split ops after it read it where they run.

Not modelled: spatial tiles of a convolution, convolutions by input channels, and
sharded norms (sequence parallelism). :func:`split_floor` is what no split at all can
beat, modelled or not: the floor of the bound that answers "would any other way of
splitting have been faster?"

Examples
--------
>>> from hetsched.costmodel import Platform
>>> from hetsched.graph import OpGraph, OpNode
>>> lin = OpNode("fc", "aten.linear.default", "matmul", flops=2e9, bytes_read=4.2e6,
...              bytes_written=4e5, param_bytes=4e6, out_bytes=4e5, shape=(100, 1000))
>>> p = Platform.preset("multi-gpu")
>>> split_groups(p)
((1, 2), (3, 4), (1, 2, 3, 4))
>>> split_kind(lin)
('column', 1000)
>>> rows = split_modes(OpGraph("g", [lin]), p)
>>> [(r.devices, r.tag) for r in rows][:2]
[((1, 2), 'split:column'), ((3, 4), 'split:column')]
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from hetsched.costmodel.platform import Platform
from hetsched.costmodel.roofline import CostModel
from hetsched.costmodel.table import CostTable, build_cost_table
from hetsched.graph.opgraph import OpGraph, OpNode

__all__ = [
    "REPLICATED",
    "SPLIT_PREFIX",
    "SplitMode",
    "chain_links",
    "chain_modes",
    "describe_split",
    "gather_time",
    "replica_modes",
    "shard_node",
    "split_floor",
    "split_groups",
    "split_kind",
    "split_modes",
]

SPLIT_PREFIX = "split:"
_KIND_OF_CATEGORY = {"matmul": "column", "conv": "channels", "attention": "heads"}


@dataclass(frozen=True)
class SplitMode:
    """One split mode of one op: its devices, duration (shards + all-gather), the bytes
    each device holds (``memory``) and for the whole run (``weights``), the tag the plan
    records (``split:KIND``, ``+streamed`` when the weights stream), the precision its
    shards compute in and the error that adds."""

    op: int
    devices: tuple[int, ...]
    time: float
    memory: float
    weights: float
    tag: str
    gather: float
    precision: str = "float32"
    error: float = 0.0


def split_kind(node: OpNode) -> tuple[str, int] | None:
    """``(kind, size of the split dimension)`` of an op that can split, else ``None``:
    weights and a known output shape for ``column``/``channels``, a 4-d output
    ``[batch, heads, seq, dim]`` for ``heads``; never an op with an explicit cost."""
    kind = _KIND_OF_CATEGORY.get(node.category)
    if kind is None or node.cost is not None or not node.shape:
        return None
    if kind == "column" and node.param_bytes > 0:
        return kind, int(node.shape[-1])
    if kind == "channels" and node.param_bytes > 0 and len(node.shape) >= 3:
        return kind, int(node.shape[1])
    if kind == "heads" and len(node.shape) == 4:
        return kind, int(node.shape[1])
    return None


def shard_node(node: OpNode, k: int) -> OpNode:
    """The largest of ``k`` shards of ``node`` (see the module docstring): ``1/k`` of it,
    or ``ceil(n / k) / n`` of a linear layer's ``n`` output features that ``k`` does not
    divide."""
    kind, size = split_kind(node) or ("", 0)
    share = math.ceil(size / k) / size if kind == "column" else 1 / k
    act = max(node.bytes_read - node.param_bytes, 0.0)
    read = act / k if kind == "heads" else act
    return dataclasses.replace(
        node,
        flops=node.flops * share,
        bytes_read=read + node.param_bytes * share,
        bytes_written=node.bytes_written * share,
        param_bytes=node.param_bytes * share,
        out_bytes=node.out_bytes * share,
        parts=tuple(dataclasses.replace(x, flops=x.flops * share) for x in node.parts),
    )


def split_groups(platform: Platform) -> tuple[tuple[int, ...], ...]:
    """Device index groups that can split an op (see the module docstring)."""
    by_kind: dict[tuple[object, ...], list[int]] = {}
    for i, d in enumerate(platform.devices):
        key = (d.kind, tuple(sorted(d.peak_flops.items())), d.mem_bandwidth, d.mem_capacity)
        by_kind.setdefault(key, []).append(i)
    groups: list[tuple[int, ...]] = []
    for members in by_kind.values():
        m = len(members)
        k = 2
        while k < m:
            groups += [tuple(members[i : i + k]) for i in range(0, m - k + 1, k)]
            k *= 2
        if m >= 2:
            groups.append(tuple(members))
    return tuple(groups)


def _gather_time(
    out_bytes: float, group: Sequence[int], latency: np.ndarray, inv_bw: np.ndarray
) -> float:
    """A ring all-gather of ``out_bytes`` over ``group``: ``k - 1`` steps, each moving
    ``1/k`` of it over the ring's slowest hop."""
    k = len(group)
    hops = [(group[i], group[(i + 1) % k]) for i in range(k)]
    step = max(latency[a, b] + out_bytes / k * inv_bw[a, b] for a, b in hops)
    return (k - 1) * step


def _collect_time(out_bytes: float, group: Sequence[int], table: CostTable) -> float:
    """Every device of ``group`` but the first sends its ``1/k`` of ``out_bytes`` to the
    first: at once where their routes share no link, else one after another."""
    k = len(group)
    first, senders = group[0], group[1:]
    times = [
        table.comm_latency[j, first] + out_bytes / k * table.comm_inv_bandwidth[j, first]
        for j in senders
    ]
    links = [table.route_links.get((j, first), ()) for j in senders]
    apart = sum(len(x) for x in links) == len(set().union(*links))
    return float(max(times) if apart else sum(times))


def _direct_time(out_bytes: float, group: Sequence[int], table: CostTable) -> float:
    """A one-shot all-gather: every device of ``group`` sends its ``1/k`` of ``out_bytes``
    to every other at once, the transfers that share a link (both ways of one, or
    routes through a common hop) one after another on it."""
    k = len(group)
    pairs = [(a, b) for a in group for b in group if a != b]
    load: dict[int, int] = {}
    for a, b in pairs:
        for link in table.route_links.get((a, b), ()):
            load[link] = load.get(link, 0) + 1
    latency = max(float(table.comm_latency[a, b]) for a, b in pairs)
    slowest = max(float(table.comm_inv_bandwidth[a, b]) for a, b in pairs)
    return latency + max(load.values(), default=1) * out_bytes / k * slowest


def gather_time(out_bytes: float, group: Sequence[int], table: CostTable, *, sink: bool) -> float:
    """The all-gather that leaves a split op's whole output on every device of ``group``:
    the faster of a ring (:func:`_gather_time`: ``k - 1`` latencies) and a one-shot
    exchange over direct links (:func:`_direct_time`: one latency, each link carrying
    its share both ways; what inference runtimes do for small tensors over NVLink); for
    an op nobody reads (``sink``: a graph output), also collecting the shards on the
    first device only, where the split program puts the op's output."""
    ring = _gather_time(out_bytes, group, table.comm_latency, table.comm_inv_bandwidth)
    best = min(ring, _direct_time(out_bytes, group, table))
    return min(best, _collect_time(out_bytes, group, table)) if sink else best


def _variants(
    graph: OpGraph, lowered: Sequence[tuple[str, np.ndarray]], only: Sequence[str] | None = None
) -> list[tuple[str | None, np.ndarray, list[OpNode], np.ndarray]]:
    """``(precision, error per op, ops in it, which ops may run in it)``: the ops' own
    (``None``, no error) and each of ``lowered`` (in ``only``, when given): an op whose
    error is finite and that lowers."""
    from hetsched.costmodel.precision import lowered_node

    n = len(graph.nodes)
    out: list[tuple[str | None, np.ndarray, list[OpNode], np.ndarray]] = [
        (None, np.zeros(n), list(graph.nodes), np.ones(n, dtype=bool))
    ]
    for precision, errors in lowered:
        if only is not None and precision not in only:
            continue
        error = np.asarray(errors, np.float64)
        low = [lowered_node(x, precision) for x in graph.nodes]
        usable = np.array([x is not None for x in low], dtype=bool) & np.isfinite(error)
        nodes = [y or x for x, y in zip(graph.nodes, low, strict=True)]
        out.append((precision, error, nodes, usable))
    return out


def _held_both_ways(
    v: int,
    group: tuple[int, ...],
    cut: CostTable,
    convert: np.ndarray,
    collective: float,
    out_bytes: float,
    weights: float,
    tag: str,
    precision: str,
    error: float,
) -> list[SplitMode]:
    """Op ``v`` over ``group``: the slowest shard (times of ``cut``, plus its conversions)
    plus ``collective`` (its all-gather or all-reduce), with its ``weights`` resident and,
    where the devices stream them, streamed; each device holds the whole output."""
    modes = []
    t = max(float(cut.exec[v, d] + convert[d]) for d in group)
    if math.isfinite(t):
        modes.append(
            SplitMode(v, group, t + collective, weights + out_bytes, weights, tag, collective,
                      precision, error)
        )  # fmt: skip
    if cut.streamed is not None and weights > 0:
        ts = max(float(cut.streamed[v, d] + convert[d]) for d in group)
        if math.isfinite(ts):
            modes.append(
                SplitMode(v, group, ts + collective, out_bytes, 0.0, tag + "+streamed",
                          collective, precision, error)
            )  # fmt: skip
    return modes


def split_modes(
    graph: OpGraph,
    platform: Platform,
    cost_model: CostModel | None = None,
    *,
    lowered: Sequence[tuple[str, np.ndarray]] = (),
    table: CostTable | None = None,
) -> list[SplitMode]:
    """Every split mode of every op of ``graph`` on ``platform`` (see the module
    docstring), by op, then group. ``lowered`` adds, for each ``(precision, error per
    op)``, the same splits computed in ``precision`` (each shard an island as in
    :mod:`hetsched.costmodel.precision`: it converts the input it reads and the slice it
    writes) for every op whose error is finite. ``table``: ``graph``'s cost table on
    ``platform`` when the caller has it (its routes price the all-gathers)."""
    from hetsched.costmodel.precision import convert_bytes

    groups = split_groups(platform)
    kinds = [split_kind(x) for x in graph.nodes]
    if not groups or not any(kinds):
        return []
    base = table
    if base is None:
        base = build_cost_table(graph, platform, cost_model, allow_infeasible=True)
    bw = np.array([d.mem_bandwidth for d in platform.devices])
    out: list[SplitMode] = []
    for precision, error, nodes, usable in _variants(graph, lowered):
        for k in sorted({len(g) for g in groups}):
            can = [
                kinds[v] is not None
                and (kinds[v][1] % k == 0 or kinds[v][0] == "column")  # type: ignore[index]
                and kinds[v][1] >= k  # type: ignore[index]
                and usable[v]
                for v in range(len(nodes))
            ]
            shards = [shard_node(x, k) if can[v] else x for v, x in enumerate(nodes)]
            twin = OpGraph(graph.name, shards, tensors=graph.tensors, meta=dict(graph.meta))
            cut = build_cost_table(twin, platform, cost_model, allow_infeasible=True)
            for v, x in enumerate(graph.nodes):
                if not can[v]:
                    continue
                kind = kinds[v]
                assert kind is not None
                convert = np.zeros_like(bw)
                if precision is not None:
                    convert = convert_bytes(shard_node(x, k), shards[v]) / bw
                largest = float(shard_node(x, k).out_bytes)  # in the op's own dtype
                sink = not graph.successors(x.name)
                for g in (g for g in groups if len(g) == k):
                    gather = gather_time(largest * k, g, base, sink=sink)
                    if math.isfinite(gather):
                        out += _held_both_ways(
                            v, g, cut, convert, gather, float(x.out_bytes),
                            float(shards[v].param_bytes), SPLIT_PREFIX + kind[0],
                            precision or x.dtype, float(error[v]),
                        )  # fmt: skip
    out += chain_modes(graph, platform, out, cost_model, lowered=lowered, table=base)
    out += replica_modes(graph, platform, base)
    out.sort(key=lambda s: (s.op, len(s.devices), s.devices, s.precision, s.tag))
    return out


REPLICATED = ("norm", "elementwise")


def replica_modes(graph: OpGraph, platform: Platform, table: CostTable) -> list[SplitMode]:
    """``split:replica`` modes: a norm or elementwise op computed whole on every device of
    a group at once (each holds its weights and the whole output), so that the split ops
    around it read it where they run instead of waiting for copies (Megatron-LM computes
    its layer norms so on every device). Only ops next to one that can split (what they
    save is a copy to or from a split); the slowest device's time; in the op's own
    precision, weights resident."""
    splittable = {i for i, x in enumerate(graph.nodes) if split_kind(x) is not None}
    near: set[int] = set()
    for t in graph.tensors:
        ends = {graph.index[t.src], *(graph.index[d] for d in t.dsts)}
        if ends & splittable:
            near |= ends
    out: list[SplitMode] = []
    for v, x in enumerate(graph.nodes):
        if x.category not in REPLICATED or x.cost is not None or v not in near:
            continue
        for g in split_groups(platform):
            slowest = max(float(table.exec[v, d]) for d in g)
            if math.isfinite(slowest):
                w = float(table.weights[v]) if table.weights is not None else 0.0
                mem = float(table.memory[v])
                tag = SPLIT_PREFIX + "replica"
                out.append(SplitMode(v, g, slowest, mem, w, tag, 0.0, x.dtype))
    return out


def chain_links(graph: OpGraph) -> dict[int, tuple[int, str]]:
    """``producer -> (consumer, layout)`` of every pair of ops that can run as a sharded
    chain (see the module docstring): the producer splits (``column`` or ``heads``) and
    has one consumer, which reads only this producer's output sharded: attention split
    by heads whose queries, keys and values the producer's features hold (``qkv``), or a
    linear layer that multiplies the producer's output (``cols``: its input features are
    the producer's; ``meta["matmul_inputs"]`` of an imported graph says which input it
    multiplies)."""
    kinds = [split_kind(x) for x in graph.nodes]
    links: dict[int, tuple[int, str]] = {}
    for u, node in enumerate(graph.nodes):
        vs = graph.successors(node.name)
        if kinds[u] is None or len(vs) != 1 or kinds[u][0] not in ("column", "heads"):  # type: ignore[index]
            continue
        v = graph.index[vs[0]]
        a, b = graph.nodes[u], graph.nodes[v]
        features = _out_features(a)
        if kinds[u][0] == "column" and kinds[v] is not None and kinds[v][0] == "heads":  # type: ignore[index]
            if features == 3 * _head_features(b):
                links[u] = (v, "qkv")
        elif (
            kinds[v] is not None
            and kinds[v][0] == "column"  # type: ignore[index]
            and _reads_features(b, features)
            and _multiplies(graph, u, v)
        ):
            links[u] = (v, "cols")
    taken = [v for v, _ in links.values()]
    return {u: (v, x) for u, (v, x) in links.items() if taken.count(v) == 1}


def _multiplies(graph: OpGraph, u: int, v: int) -> bool:
    """Whether linear layer ``v`` multiplies ``u``'s output (not only reads it in an op
    fused with it): from the program's ``matmul_inputs`` where the graph was imported,
    else when ``u`` is all ``v`` reads."""
    reads = graph.meta.get("matmul_inputs")
    fx_nodes = graph.meta.get("fx_nodes")
    if not reads or not fx_nodes:
        return graph.predecessors(graph.nodes[v].name) == (graph.nodes[u].name,)
    mine = [reads[x] for x in fx_nodes.get(graph.nodes[v].name, ()) if x in reads]
    theirs = set(fx_nodes.get(graph.nodes[u].name, ()))
    return len(mine) == 1 and mine[0] in theirs


def _out_features(node: OpNode) -> int:
    """Output features of a linear layer, or heads times head size of attention."""
    kind = split_kind(node)
    return int(node.shape[-1]) if kind is not None and kind[0] == "column" else _head_features(node)


def _head_features(node: OpNode) -> int:
    """Heads times head size of an attention output ``[batch, heads, seq, dim]``."""
    return int(node.shape[1]) * int(node.shape[3]) if len(node.shape) == 4 else -1


def _reads_features(node: OpNode, features: int) -> bool:
    """Whether a linear layer's weights are ``[out, features]`` (and a bias)."""
    out = int(node.shape[-1])
    return features > 0 and any(
        math.isclose(node.param_bytes, s * (features + bias) * out)
        for s in (1, 2, 4, 8)
        for bias in (0, 1)
    )


def row_shard_node(node: OpNode, k: int) -> OpNode:
    """One of ``k`` shards of a linear layer split by input features: ``1/k`` of the
    FLOPs, weights and input, the whole (partial) output."""
    act = max(node.bytes_read - node.param_bytes, 0.0)
    return dataclasses.replace(
        node,
        flops=node.flops / k,
        bytes_read=act / k + node.param_bytes / k,
        param_bytes=node.param_bytes / k,
        parts=tuple(dataclasses.replace(x, flops=x.flops / k) for x in node.parts),
    )


def _all_reduce_time(out_bytes: float, group: Sequence[int], table: CostTable) -> float:
    """An all-reduce: a reduce-scatter and an all-gather, each as a ring (``k - 1``
    steps) or one-shot over direct links (:func:`gather_time`; a reduce-scatter moves
    the same shares the other way)."""
    return 2 * gather_time(out_bytes, group, table, sink=False)


def chain_modes(
    graph: OpGraph,
    platform: Platform,
    splits: Sequence[SplitMode],
    cost_model: CostModel | None = None,
    *,
    lowered: Sequence[tuple[str, np.ndarray]] = (),
    table: CostTable | None = None,
) -> list[SplitMode]:
    """The modes of sharded chains (see the module docstring), from ``splits`` (the split
    modes of :func:`split_modes`) and the row splits of the linear layers that read a
    sharded input, in their own precision and each of ``lowered`` (as in
    :func:`split_modes`)."""
    links = chain_links(graph)
    if not links:
        return []
    takes = {v: x for v, x in links.values()}
    out: list[SplitMode] = []
    for s in splits:  # producers, and attention reading queries, keys, values sharded
        k = len(s.devices)
        if _out_features(graph.nodes[s.op]) % k:
            continue
        tail = "+streamed" if s.tag.endswith("+streamed") else ""
        base = s.tag.removesuffix(tail)
        out_k = float(graph.nodes[s.op].out_bytes) / k
        froms = [""]
        if takes.get(s.op) == "qkv":
            froms.append("+from:qkv")
            out.append(dataclasses.replace(s, tag=base + "+from:qkv" + tail))
        if s.op in links:
            hold = s.memory - float(graph.nodes[s.op].out_bytes) + out_k
            for f in froms:
                tag = base + f + "+keep:" + links[s.op][1] + tail
                out.append(
                    dataclasses.replace(s, time=s.time - s.gather, memory=hold, tag=tag, gather=0.0)
                )
    rows = {v: _out_features(graph.nodes[u]) for u, (v, x) in links.items() if x == "cols"}
    if rows:
        out += _row_modes(graph, platform, rows, cost_model, lowered, table)
    out.sort(key=lambda s: (s.op, len(s.devices), s.devices, s.precision, s.tag))
    return out


# Reduced precisions a row split may compute in: int8 computes in float32 (fake-quantized
# inputs), so its partial products sum as the whole op's do; float16, bfloat16 and w8a16
# round each partial product to 16 bits and the sum differs from the whole op's (7e-4
# relative on mlp tiny), an error the per-op sensitivity did not measure.
_ROW_PRECISIONS = ("int8",)


def _row_modes(
    graph: OpGraph,
    platform: Platform,
    rows: Mapping[int, int],
    cost_model: CostModel | None,
    lowered: Sequence[tuple[str, np.ndarray]],
    table: CostTable | None,
) -> list[SplitMode]:
    """``split:row+from:cols`` modes of the linear layers ``rows`` (op -> its input
    features): the slowest shard plus an all-reduce of the output (in the op's own
    dtype: a lowered shard converts its partial output back, as an island does)."""
    from hetsched.costmodel.precision import convert_bytes

    base = table or build_cost_table(graph, platform, cost_model, allow_infeasible=True)
    bw = np.array([d.mem_bandwidth for d in platform.devices])
    out: list[SplitMode] = []
    for precision, error, nodes, usable in _variants(graph, lowered, _ROW_PRECISIONS):
        for g in split_groups(platform):
            k = len(g)
            mine = [v for v, f in rows.items() if f % k == 0 and usable[v]]
            if not mine:
                continue
            cut_nodes = [row_shard_node(x, k) if v in mine else x for v, x in enumerate(nodes)]
            twin = OpGraph(graph.name, cut_nodes, tensors=graph.tensors, meta=dict(graph.meta))
            cut = build_cost_table(twin, platform, cost_model, allow_infeasible=True)
            for v in mine:
                x = graph.nodes[v]
                convert = np.zeros_like(bw)
                if precision is not None:
                    convert = convert_bytes(row_shard_node(x, k), cut_nodes[v]) / bw
                full_out = float(x.out_bytes)
                reduce = _all_reduce_time(full_out, g, base)
                if math.isfinite(reduce):
                    out += _held_both_ways(
                        v, g, cut, convert, reduce, full_out, float(cut_nodes[v].param_bytes),
                        SPLIT_PREFIX + "row+from:cols", precision or x.dtype, float(error[v]),
                    )  # fmt: skip
    return out


def split_floor(
    graph: OpGraph,
    platform: Platform,
    cost_model: CostModel | None = None,
    *,
    precisions: Sequence[str] = (),
) -> tuple[np.ndarray, np.ndarray]:
    """``(floor, work)`` per op in seconds, in the op's own dtype or any of
    ``precisions``: ``floor`` is a time no execution of the op can beat, whole or split
    any way across any devices (shards of any size, on devices of any kind, transfers
    and conversions free); ``work`` the least device time it takes in all (summed over
    the devices that run a share).

    With the roofline model (:mod:`hetsched.costmodel.roofline`) a share ``f`` of an op
    on device ``d`` takes ``L + max(r + f a, f b)``: ``L`` the launch overhead, ``r``
    the size ramp (it does not shrink with the share: small shards only lose), ``a`` and
    ``b`` the op's compute and memory time there (resident weights: streaming only
    adds). The floor is the least ``T`` at which the shares every device can finish by
    ``T`` cover the op (a bisection); the work is at least ``min L + min max(a, b)``. An
    op with an explicit cost cannot split: its fastest device. Another cost model is
    taken as ``L + f (time - L)``, a bound only where its times scale so.

    >>> from hetsched.graph import OpGraph, OpNode
    >>> mm = OpNode("mm", category="matmul", flops=4e10, bytes_read=8e6, bytes_written=4e6)
    >>> p = Platform.preset("multi-gpu")
    >>> floor, work = split_floor(OpGraph("g", [mm]), p)
    >>> round(floor[0] * 1e6), round(work[0] * 1e6)   # whole on one GPU: 2744 µs
    (657, 2740)
    >>> round(split_floor(OpGraph("g", [mm]), p, precisions=["int8"])[0][0] * 1e6)
    30
    """
    from hetsched.costmodel.precision import lowered_node

    n = len(graph.nodes)
    floor = np.full(n, np.inf)
    work = np.full(n, np.inf)
    fixed = np.array([x.cost is not None for x in graph.nodes], dtype=bool)
    variants: list[list[OpNode | None]] = [list(graph.nodes)]
    variants += [[lowered_node(x, q) for x in graph.nodes] for q in precisions]
    for nodes in variants:
        keep = np.array([x is not None for x in nodes], dtype=bool)
        twin = [x if x is not None else graph.nodes[i] for i, x in enumerate(nodes)]
        launch, ramp, compute, memory = _share_terms(graph, twin, platform, cost_model)
        usable = np.isfinite(memory) & keep[:, None]
        whole = np.where(usable, launch + np.maximum(ramp + compute, memory), np.inf).min(axis=1)
        l_min = np.where(usable, launch, np.inf).min(axis=1)
        lo, hi = l_min.copy(), whole.copy()
        for _ in range(60):  # the covered share is monotone in T
            t = (lo + hi) / 2
            covered = _shares_by(t[:, None], launch, ramp, compute, memory, usable).sum(axis=1)
            done = covered >= 1.0
            hi = np.where(done, t, hi)
            lo = np.where(done, lo, t)
        least = np.where(usable, np.maximum(compute, memory), np.inf).min(axis=1)
        floor = np.minimum(floor, np.where(fixed, whole, lo))
        work = np.minimum(work, np.where(fixed, whole, l_min + least))
    return floor, work


def _share_terms(
    graph: OpGraph, nodes: Sequence[OpNode], platform: Platform, cost_model: CostModel | None
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """``(L, r, a, b)`` of :func:`split_floor` per (op, device), from the cost tables of
    three twins of ``nodes`` (no FLOPs; no bytes; no bytes and a vanishing FLOP count);
    ``b`` is ``inf`` where the device cannot run the op."""
    from hetsched.costmodel.roofline import RooflineCostModel

    def times(make: Callable[[OpNode], OpNode]) -> np.ndarray:
        twin = OpGraph(graph.name, [make(x) for x in nodes], tensors=graph.tensors)
        return build_cost_table(twin, platform, cost_model, allow_infeasible=True).exec

    launch = np.array([d.launch_overhead for d in platform.devices])[None, :]
    base = times(lambda x: x)
    if cost_model is not None and type(cost_model).op_time is not RooflineCostModel.op_time:
        zero = np.zeros_like(base)
        return launch + zero, zero, zero, base - launch
    memory = times(lambda x: dataclasses.replace(x, flops=0.0)) - launch
    memory = np.where(np.isfinite(base), memory, np.inf)
    full = times(lambda x: dataclasses.replace(x, bytes_read=0.0, bytes_written=0.0)) - launch
    ramp = (
        times(
            lambda x: dataclasses.replace(
                x, bytes_read=0.0, bytes_written=0.0, flops=min(x.flops, 1e-9)
            )
        )
        - launch
    )
    ramp = np.where(np.isfinite(ramp), ramp, 0.0)
    compute = np.where(np.isfinite(full), np.maximum(full - ramp, 0.0), 0.0)
    return launch + np.zeros_like(base), ramp, compute, memory


def _shares_by(
    t: np.ndarray,
    launch: np.ndarray,
    ramp: np.ndarray,
    compute: np.ndarray,
    memory: np.ndarray,
    usable: np.ndarray,
) -> np.ndarray:
    """The largest share of each op each device finishes by ``t`` (see :func:`split_floor`)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        by_compute = np.where(compute > 0, (t - launch - ramp) / compute, np.inf)
        by_compute = np.where(t - launch - ramp >= 0, by_compute, 0.0)
        by_memory = np.where(memory > 0, (t - launch) / memory, np.inf)
        by_memory = np.where(t - launch >= 0, by_memory, 0.0)
    share = np.clip(np.minimum(by_compute, by_memory), 0.0, 1.0)
    return np.where(usable, share, 0.0)


def describe_split(tag: str) -> str | None:
    """The split of a mode tag (``"column"``, ``"channels"``, ``"heads"``), else ``None``.

    >>> describe_split("split:heads+streamed"), describe_split("streamed")
    ('heads', None)
    """
    for part in tag.split("+"):
        if part.startswith(SPLIT_PREFIX):
            return part[len(SPLIT_PREFIX) :]
    return None
