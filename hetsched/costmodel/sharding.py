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
1`` steps, each moving ``1/k`` of the output over the slowest hop of the ring), after which
every device of the mode holds the whole output, so a consumer on any of them reads it
there. Each device holds ``1/k`` of the weights (resident, or streamed where the device
streams weights) and the whole output. With an error budget, splits also compute in the
reduced precisions the op may take (:mod:`hetsched.costmodel.precision`), adding its
error.

Devices split together (:func:`split_groups`): for each kind with at least two identical
devices, aligned blocks of 2, 4, 8, ... of them and all of them (npu0+npu1 on edge-soc;
gpu0+gpu1, gpu2+gpu3 and all four on multi-gpu). An op splits ``k`` ways only when its
split dimension divides by ``k``.

Not modelled (the plan says so, see :func:`describe_split`): keeping a tensor sharded
between consecutive split ops (column then row, without the gather between them), row
splits with a reduction, and spatial tiles of a convolution. :func:`split_floor` is what
no split at all can beat, modelled or not: the floor of the bound that answers "would any
other way of splitting have been faster?"

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
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from hetsched.costmodel.platform import Platform
from hetsched.costmodel.roofline import CostModel
from hetsched.costmodel.table import CostTable, build_cost_table
from hetsched.graph.opgraph import OpGraph, OpNode

__all__ = [
    "SPLIT_PREFIX",
    "SplitMode",
    "describe_split",
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
    """One of ``k`` equal shards of ``node`` (see the module docstring)."""
    kind, _ = split_kind(node) or ("", 0)
    act = max(node.bytes_read - node.param_bytes, 0.0)
    read = act / k if kind == "heads" else act
    return dataclasses.replace(
        node,
        flops=node.flops / k,
        bytes_read=read + node.param_bytes / k,
        bytes_written=node.bytes_written / k,
        param_bytes=node.param_bytes / k,
        out_bytes=node.out_bytes / k,
        parts=tuple(dataclasses.replace(x, flops=x.flops / k) for x in node.parts),
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
    from hetsched.costmodel.precision import convert_bytes, lowered_node

    groups = split_groups(platform)
    kinds = [split_kind(x) for x in graph.nodes]
    if not groups or not any(kinds):
        return []
    base = table
    if base is None:
        base = build_cost_table(graph, platform, cost_model, allow_infeasible=True)
    bw = np.array([d.mem_bandwidth for d in platform.devices])
    out: list[SplitMode] = []
    variants: list[tuple[str | None, np.ndarray]] = [(None, np.zeros(len(graph.nodes)))]
    variants += [(p, np.asarray(e, np.float64)) for p, e in lowered]
    for precision, error in variants:
        nodes = list(graph.nodes)
        if precision is not None:
            nodes = [lowered_node(x, precision) or x for x in graph.nodes]
        for k in sorted({len(g) for g in groups}):
            can = [
                kinds[v] is not None
                and kinds[v][1] % k == 0  # type: ignore[index]
                and kinds[v][1] >= k  # type: ignore[index]
                and math.isfinite(error[v])
                and (precision is None or nodes[v] is not graph.nodes[v])
                for v in range(len(nodes))
            ]
            shards = [shard_node(x, k) if can[v] else x for v, x in enumerate(nodes)]
            twin = OpGraph(graph.name, shards, tensors=graph.tensors, meta=dict(graph.meta))
            cut = build_cost_table(twin, platform, cost_model, allow_infeasible=True)
            streamed = cut.streamed
            for v, x in enumerate(graph.nodes):
                if not can[v]:
                    continue
                kind = kinds[v]
                assert kind is not None
                convert = np.zeros_like(bw)
                if precision is not None:
                    convert = convert_bytes(shard_node(x, k), shards[v]) / bw
                full_out = float(x.out_bytes)
                for g in (g for g in groups if len(g) == k):
                    gather = _gather_time(full_out, g, base.comm_latency, base.comm_inv_bandwidth)
                    if not math.isfinite(gather):
                        continue
                    w = float(shards[v].param_bytes)
                    hold = w + full_out
                    label = precision or x.dtype
                    e = float(error[v])
                    t = max(float(cut.exec[v, d] + convert[d]) for d in g)
                    tag = SPLIT_PREFIX + kind[0]
                    if math.isfinite(t):
                        out.append(SplitMode(v, g, t + gather, hold, w, tag, gather, label, e))
                    if streamed is not None and w > 0:
                        ts = max(float(streamed[v, d] + convert[d]) for d in g)
                        if math.isfinite(ts):
                            out.append(
                                SplitMode(
                                    v, g, ts + gather, hold - w, 0.0, tag + "+streamed",
                                    gather, label, e,
                                )
                            )  # fmt: skip
    out.sort(key=lambda s: (s.op, len(s.devices), s.devices, s.precision, s.tag))
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
