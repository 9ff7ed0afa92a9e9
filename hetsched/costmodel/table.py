"""The cost table: every op on every device, every edge between every device pair, as arrays.

:func:`build_cost_table` evaluates the roofline with numpy over node-field arrays (support
predicates once per distinct ``(op, category, dtype)``), so a 10k-node graph on 5 devices
takes a few tens of milliseconds; ``exec`` equals ``RooflineCostModel.op_time`` exactly.

Transfers: edge ``e`` from device ``a`` to ``b`` takes
``comm_latency[a, b] + edge_bytes[e] * comm_inv_bandwidth[a, b]``, both summed over the
route's hops (two-hop routes through the host are store-and-forward: the whole tensor
lands in host memory before the second hop starts). Diagonals are 0; a pair with no
route has ``comm_latency = inf`` and no ``route_links`` entry.

Examples
--------
>>> from hetsched.costmodel import Platform
>>> from hetsched.graph import Edge, OpGraph, OpNode
>>> g = OpGraph("g", [OpNode("a", category="conv", flops=1e9, bytes_read=1e6),
...                   OpNode("b", category="index", bytes_read=1e6)], [Edge("a", "b", 4e6)])
>>> t = build_cost_table(g, Platform.preset("edge-soc"))
>>> t.device_names
('cpu', 'gpu', 'npu0', 'npu1')
>>> bool(np.isinf(t.exec[1, 2]))       # NPUs refuse gathers
True
>>> [t.link_names[i] for i in t.route_links[2, 1]]
['cpu<->npu0', 'cpu<->gpu']
>>> float(t.transfer_time(0, 0, 1)) == 10e-6 + 4e6 / 34.1e9
True
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from hetsched.costmodel.device import RAMP_CATEGORIES, Device, peak_for, unsupported_reason
from hetsched.costmodel.measured import MeasuredCostModel
from hetsched.costmodel.platform import Platform
from hetsched.costmodel.roofline import CostModel, RooflineCostModel, explicit_cost
from hetsched.errors import InfeasibleError
from hetsched.graph.opgraph import CATEGORIES, OpGraph, OpNode

__all__ = ["CostTable", "build_cost_table"]

_GROUP_FIELDS = frozenset({"op", "category", "dtype"})


@dataclass(frozen=True, eq=False)
class CostTable:
    """Per-op and per-transfer costs as read-only numpy arrays (rows in ``graph.nodes`` order).

    ``exec[n, d]`` seconds (inf = unsupported) with the op's weights resident in the
    device's memory; ``streamed[n, d]`` seconds when they stream in from the device's
    backing memory at its ``stream_bandwidth`` instead (inf where the device has no such
    path, the op has no weights, or its cost is explicit); ``memory[n]`` (weights and
    outputs: ``out_bytes``, at least the largest tensor the op produces), ``weights[n]`` and
    ``capacity[d]`` bytes; ``units`` is ``"s"``, or the graph's
    own units when every cost is explicit (STG).
    """

    node_names: tuple[str, ...]
    device_names: tuple[str, ...]
    device_kinds: tuple[str, ...]
    exec: np.ndarray
    edge_src: np.ndarray
    edge_dst: np.ndarray
    edge_bytes: np.ndarray
    comm_latency: np.ndarray
    comm_inv_bandwidth: np.ndarray
    route_links: dict[tuple[int, int], tuple[int, ...]]
    link_names: tuple[str, ...]
    memory: np.ndarray
    capacity: np.ndarray
    units: str = "s"
    streamed: np.ndarray | None = None
    weights: np.ndarray | None = None

    @property
    def n_nodes(self) -> int:
        return int(self.exec.shape[0])

    @property
    def n_devices(self) -> int:
        return int(self.exec.shape[1])

    def transfer_time(self, edge: int, a: int, b: int) -> float:
        """Seconds for edge ``edge`` when its source runs on ``a`` and its target on ``b``."""
        if a == b:
            return 0.0
        lat = self.comm_latency[a, b]
        return float(lat + self.edge_bytes[edge] * self.comm_inv_bandwidth[a, b])

    def comm_times(self) -> np.ndarray:
        """``[E, D, D]`` transfer times of every edge between every device pair."""
        return self.comm_latency[None, :, :] + (
            self.edge_bytes[:, None, None] * self.comm_inv_bandwidth[None, :, :]
        )


def _roofline_exec(
    nodes: tuple[OpNode, ...], model: RooflineCostModel
) -> tuple[np.ndarray, np.ndarray]:
    """``(resident, streamed)`` times (see :class:`CostTable`)."""
    n = len(nodes)
    devices = [model.device(d.name) for d in model.platform.devices]
    cat_of = {c: i for i, c in enumerate(CATEGORIES)}
    flops = np.fromiter((x.flops for x in nodes), np.float64, n)
    nbytes = np.fromiter((x.bytes_read + x.bytes_written for x in nodes), np.float64, n)
    wbytes = np.fromiter((min(x.param_bytes, x.bytes_read) for x in nodes), np.float64, n)
    cat = np.fromiter((cat_of[x.category] for x in nodes), np.int64, n)
    # Nodes grouped by (op, category, dtype): built-in predicates look only at these.
    groups: dict[tuple[str, str, str], int] = {}
    grp = np.fromiter(
        (groups.setdefault((x.op, x.category, x.dtype), len(groups)) for x in nodes), np.int64, n
    )
    rep = np.unique(grp, return_index=True)[1]  # first node of each group, by group id
    dtypes = sorted({k[2] for k in groups})
    dtype_grp = np.array([dtypes.index(k[2]) for k in groups], np.int64)
    out = np.empty((n, len(devices)), np.float64)
    streamed = np.full((n, len(devices)), math.inf)
    for j, d in enumerate(devices):
        peaks_by_dtype = [peak_for(d, t) for t in dtypes]
        peak = np.array([p or math.nan for p in peaks_by_dtype], np.float64)[dtype_grp][grp]
        eff_c = np.array([d.compute_efficiency(c) for c in CATEGORIES])[cat]
        eff_m = np.array([d.bandwidth_efficiency(c) for c in CATEGORIES])[cat]
        with np.errstate(invalid="ignore", divide="ignore"):
            ramp_c = [d.ramp(c) if c in RAMP_CATEGORIES else 0.0 for c in CATEGORIES]
            ramp = peak * np.array(ramp_c)[cat]
            compute = np.where(flops > 0, (flops + ramp) / (peak * eff_c), 0.0)
        memory = nbytes / (d.mem_bandwidth * eff_m)
        col = d.launch_overhead + np.maximum(compute, memory)
        col[_unsupported(nodes, d, grp, rep, peaks_by_dtype, dtype_grp)] = math.inf
        out[:, j] = col
        if d.stream_bandwidth is not None:
            slow = (nbytes - wbytes) / (d.mem_bandwidth * eff_m) + wbytes / (
                d.stream_bandwidth * eff_m
            )
            st = d.launch_overhead + np.maximum(compute, slow)
            streamed[:, j] = np.where(np.isfinite(col) & (wbytes > 0), st, math.inf)
    return out, streamed


def _unsupported(
    nodes: tuple[OpNode, ...],
    d: Device,
    grp: np.ndarray,
    rep: np.ndarray,
    peaks_by_dtype: list[float | None],
    dtype_grp: np.ndarray,
) -> np.ndarray:
    no_units = np.array([p is None for p in peaks_by_dtype], bool)[dtype_grp]
    fields = d.supports.fields
    if fields is not None and fields <= _GROUP_FIELDS:
        refused = np.array([not d.supports(nodes[i], d) for i in rep.tolist()], bool)
        out = (refused | no_units)[grp]
    else:
        out = np.fromiter((not d.supports(x, d) for x in nodes), bool, len(nodes))
        out |= no_units[grp]
    for i, x in enumerate(nodes):  # a fused op runs only where all its parts do
        if x.parts and not out[i]:
            out[i] = unsupported_reason(x, d) is not None
    return out


def _generic_exec(
    nodes: tuple[OpNode, ...], model: CostModel, devices: tuple[Device, ...]
) -> np.ndarray:
    return np.array([[model.op_time(x, d) for d in devices] for x in nodes], np.float64)


def _exec(graph: OpGraph, platform: Platform, model: CostModel) -> tuple[np.ndarray, np.ndarray]:
    """``(resident, streamed)`` times. A measured or non-roofline time streams by adding the
    weights' slower read to it (no overlap with compute assumed)."""
    nodes = graph.nodes
    if isinstance(model, MeasuredCostModel):
        out, _ = _exec(graph, platform, model.fallback)
        for i, x in enumerate(nodes):
            for j, d in enumerate(platform.devices):
                m = model.measured(x, d)
                if m is not None:
                    out[i, j] = m
        return out, _added_streaming(nodes, platform.devices, out)
    if type(model).op_time is not RooflineCostModel.op_time:
        out = _generic_exec(nodes, model, platform.devices)
        return out, _added_streaming(nodes, platform.devices, out)
    assert isinstance(model, RooflineCostModel)
    out, streamed = _roofline_exec(nodes, model)
    for i, x in enumerate(nodes):
        if x.cost is not None:
            for j, d in enumerate(platform.devices):
                e = explicit_cost(x, d)
                if e is not None:
                    out[i, j] = e
                    streamed[i, j] = math.inf
    return out, streamed


def _added_streaming(
    nodes: tuple[OpNode, ...], devices: tuple[Device, ...], resident: np.ndarray
) -> np.ndarray:
    w = np.fromiter((min(x.param_bytes, x.bytes_read) for x in nodes), np.float64, len(nodes))
    out = np.full(resident.shape, math.inf)
    for j, d in enumerate(devices):
        if d.stream_bandwidth is not None:
            extra = w * (1.0 / d.stream_bandwidth - 1.0 / d.mem_bandwidth)
            out[:, j] = np.where(
                np.isfinite(resident[:, j]) & (w > 0), resident[:, j] + extra, math.inf
            )
    for i, x in enumerate(nodes):
        if x.cost is not None:
            out[i] = math.inf
    return out


def build_cost_table(
    graph: OpGraph,
    platform: Platform,
    cost_model: CostModel | None = None,
    *,
    allow_infeasible: bool = False,
) -> CostTable:
    """Evaluate ``cost_model`` (default: roofline on ``platform``) over the whole graph.

    Raises
    ------
    InfeasibleError
        A node no device can run (unless ``allow_infeasible``): names the op, every device
        and its reason.
    """
    model: CostModel = RooflineCostModel(platform) if cost_model is None else cost_model
    ex, streamed = _exec(graph, platform, model)
    devs = platform.devices
    bad = np.flatnonzero(np.isinf(ex).all(axis=1)) if len(devs) else np.array([], np.int64)
    if bad.size and not allow_infeasible:
        x = graph.nodes[int(bad[0])]
        why = "; ".join(f"{d.name}: {model.explain(x, d).reason}" for d in devs)
        more = f" (and {bad.size - 1} more ops)" if bad.size > 1 else ""
        msg = f"op {x.name!r} ({x.op}, {x.category}, {x.dtype}) runs on no device{more}: {why}"
        raise InfeasibleError(msg)
    n_dev = len(devs)
    latency = np.zeros((n_dev, n_dev))
    inv_bw = np.zeros((n_dev, n_dev))
    link_id = {id(link): k for k, link in enumerate(platform.links)}
    routes: dict[tuple[int, int], tuple[int, ...]] = {}
    for a, da in enumerate(devs):
        for b, db in enumerate(devs):
            if a == b:
                continue
            if not platform.has_route(da, db):
                latency[a, b] = math.inf
                continue
            hops = platform.route(da, db)
            for link in hops:
                latency[a, b] += link.latency
                inv_bw[a, b] += 1.0 / link.bandwidth
            routes[a, b] = tuple(link_id[id(link)] for link in hops)
    src, dst = (a.copy() for a in graph.edge_index)
    if type(model).memory_bytes is RooflineCostModel.memory_bytes:
        mem = np.fromiter((x.param_bytes + x.out_bytes for x in graph.nodes), np.float64)
    else:
        mem = np.array([model.memory_bytes(x) for x in graph.nodes], np.float64)
    weights = np.fromiter((x.param_bytes for x in graph.nodes), np.float64, len(graph.nodes))
    # an op holds at least its weights and the largest tensor it produces
    index = {x.name: i for i, x in enumerate(graph.nodes)}
    largest = np.zeros(len(graph.nodes))
    for t in graph.tensors:
        largest[index[t.src]] = max(largest[index[t.src]], t.bytes)
    mem = np.maximum(mem, weights + largest)
    weights = np.minimum(weights, mem)
    arrays = [
        ex,
        src,
        dst,
        np.array([e.bytes for e in graph.edges], np.float64),
        latency,
        inv_bw,
        mem,
        streamed,
        weights,
    ]
    for arr in arrays:
        arr.setflags(write=False)
    units = str(graph.meta.get("units", "s")) if graph.has_explicit_costs else "s"
    return CostTable(
        node_names=tuple(x.name for x in graph.nodes),
        device_names=tuple(d.name for d in devs),
        device_kinds=tuple(d.kind for d in devs),
        exec=ex, edge_src=src, edge_dst=dst, edge_bytes=arrays[3],
        comm_latency=latency, comm_inv_bandwidth=inv_bw, route_links=routes,
        link_names=tuple(link.name for link in platform.links),
        memory=mem, capacity=np.array([d.mem_capacity for d in devs], np.float64),
        units=units, streamed=streamed, weights=weights,
    )  # fmt: skip
