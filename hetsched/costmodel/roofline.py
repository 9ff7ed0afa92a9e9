"""The cost-model protocol and the roofline model.

Roofline time of ``node`` on device ``d`` (seconds)::

    compute  = (flops + peak·ramp_time) / (peak · eff_compute[category])   (0 if flops == 0)
    memory   = (bytes_read + bytes_written) / (mem_bandwidth · eff_memory[category])
    op_time  = launch_overhead + max(compute, memory)

``peak`` is the device's peak for the node's dtype class
(:func:`~hetsched.costmodel.device.dtype_class`); ``peak·ramp_time`` is the size-dependent
factor (matmul, conv and attention only; 0 for other categories): an op reaches
``flops / (flops + peak·ramp_time)`` of its category efficiency, so small matmuls and
convolutions stay far from peak (defaults in :mod:`hetsched.costmodel.device`). An op the
device refuses costs ``math.inf``.

An explicit ``node.cost`` overrides everything (support included): the value under the
device's name, else its kind, else ``"*"`` is the time (seconds, or the graph's own units).

Examples
--------
>>> from hetsched.costmodel import Platform
>>> from hetsched.graph import OpNode
>>> m = RooflineCostModel(Platform.preset("edge-soc"))
>>> mm = OpNode("mm", category="matmul", flops=2e9, bytes_read=8e6, bytes_written=4e6)
>>> round(m.op_time(mm, "npu0") * 1e3, 3)   # ms
0.555
>>> m.explain(mm, "npu0").bound
'compute'
>>> m.op_time(OpNode("s", category="index"), "npu0")
inf
>>> m.transfer_time(1e6, "npu0", "gpu") == 5e-6 + 10e-6 + 1e6 * (2 / 34.1e9)
True
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Protocol, runtime_checkable

from hetsched.costmodel.device import (
    RAMP_CATEGORIES,
    Device,
    dtype_class,
    peak_for,
    unsupported_reason,
)
from hetsched.costmodel.platform import Platform
from hetsched.graph.opgraph import OpNode

__all__ = ["CostModel", "OpCostExplanation", "RooflineCostModel", "explicit_cost", "route_terms"]


@dataclass(frozen=True)
class OpCostExplanation:
    """The terms behind one ``op_time``: ``total == overhead + max(compute, memory)``.

    For an explicit cost, ``bound == "explicit"`` and ``total == explicit``; for an
    unsupported op, ``bound == "unsupported"``, ``total == inf`` and ``reason`` says why.
    """

    node: str
    device: str
    total: float
    bound: str
    compute_time: float = 0.0
    memory_time: float = 0.0
    overhead: float = 0.0
    peak_flops: float = 0.0
    dtype_class: str | None = None
    compute_efficiency: float = 0.0
    size_factor: float = 0.0
    bandwidth: float = 0.0
    memory_efficiency: float = 0.0
    explicit: float | None = None
    reason: str | None = None

    def __str__(self) -> str:
        head = f"{self.node} on {self.device}: "
        if self.bound == "unsupported":
            return head + f"unsupported ({self.reason})"
        if self.bound == "explicit":
            return head + f"{self.total:.6g} (explicit cost)"
        return head + "\n".join([
            f"{self.total:.6g} s ({self.bound}-bound)",
            f"  compute  {self.compute_time:.6g} s = flops at {self.peak_flops:.4g} FLOP/s "
            f"{self.dtype_class} x eff {self.compute_efficiency:g} x size {self.size_factor:.3f}",
            f"  memory   {self.memory_time:.6g} s = bytes at {self.bandwidth:.4g} B/s "
            f"x eff {self.memory_efficiency:g}",
            f"  overhead {self.overhead:.6g} s",
        ])  # fmt: skip


@runtime_checkable
class CostModel(Protocol):
    """What solvers need from a cost model (duck typed). Devices by object or name."""

    def op_time(self, node: OpNode, device: Device | str) -> float: ...

    def transfer_time(self, nbytes: float, src: Device | str, dst: Device | str) -> float: ...

    def memory_bytes(self, node: OpNode) -> float: ...

    def explain(self, node: OpNode, device: Device | str) -> OpCostExplanation: ...


def explicit_cost(node: OpNode, device: Device) -> float | None:
    """``node.cost`` under the device's name, else kind, else ``"*"`` (``None`` if absent)."""
    if node.cost is None:
        return None
    for key in (device.name, device.kind, "*"):
        if key in node.cost:
            return node.cost[key]
    return None


class RooflineCostModel:
    """Roofline op times over a :class:`Platform` (see the module docs for the formula).

    Parameters
    ----------
    platform : the devices and links.
    efficiency : optional compute-efficiency overrides ``{device name or kind: {category:
        fraction}}``, applied on top of each device's own (name beats kind).
    """

    def __init__(
        self,
        platform: Platform,
        *,
        efficiency: Mapping[str, Mapping[str, float]] | None = None,
    ) -> None:
        self.platform = platform
        self.efficiency = dict(efficiency or {})
        resolved = {}
        for d in platform.devices:
            extra = {**self.efficiency.get(d.kind, {}), **self.efficiency.get(d.name, {})}
            if extra:
                d = replace(d, efficiency={**(d.efficiency or {}), **extra})
            resolved[d.name] = d
        self._devices = resolved

    def __repr__(self) -> str:
        return f"RooflineCostModel({self.platform.name!r})"

    def device(self, device: Device | str) -> Device:
        """The platform's device (with this model's efficiency overrides applied)."""
        name = device.name if isinstance(device, Device) else device
        if name not in self._devices:
            self.platform.device(name)  # raises, listing valid names
        return self._devices[name]

    def op_time(self, node: OpNode, device: Device | str) -> float:
        """Seconds to run ``node`` on ``device``; ``math.inf`` when unsupported."""
        d = self.device(device)
        explicit = explicit_cost(node, d)
        if explicit is not None:
            return explicit
        peak = peak_for(d, node.dtype)
        if peak is None or d.supports.why_not(node, d) is not None:
            return math.inf
        compute, memory = self._terms(node, d, peak)
        return d.launch_overhead + max(compute, memory)

    @staticmethod
    def _terms(node: OpNode, d: Device, peak: float) -> tuple[float, float]:
        # Same operations, in the same order, as the vectorised table (exact agreement).
        eff_c = d.compute_efficiency(node.category)
        eff_m = d.bandwidth_efficiency(node.category)
        ramp = peak * d.ramp(node.category) if node.category in RAMP_CATEGORIES else 0.0
        compute = (node.flops + ramp) / (peak * eff_c) if node.flops > 0 else 0.0
        memory = (node.bytes_read + node.bytes_written) / (d.mem_bandwidth * eff_m)
        return compute, memory

    def explain(self, node: OpNode, device: Device | str) -> OpCostExplanation:
        """The roofline terms of :meth:`op_time` (or the explicit cost, or why unsupported)."""
        d = self.device(device)
        explicit = explicit_cost(node, d)
        if explicit is not None:
            return OpCostExplanation(node.name, d.name, explicit, "explicit", explicit=explicit)
        reason = unsupported_reason(node, d)
        peak = peak_for(d, node.dtype)
        if reason is not None or peak is None:
            return OpCostExplanation(node.name, d.name, math.inf, "unsupported", reason=reason)
        compute, memory = self._terms(node, d, peak)
        ramp = peak * d.ramp(node.category) if node.category in RAMP_CATEGORIES else 0.0
        return OpCostExplanation(
            node.name, d.name, d.launch_overhead + max(compute, memory),
            "compute" if compute >= memory and node.flops > 0 else "memory",
            compute_time=compute, memory_time=memory, overhead=d.launch_overhead,
            peak_flops=peak, dtype_class=dtype_class(node.dtype, d.kind)[0],
            compute_efficiency=d.compute_efficiency(node.category),
            size_factor=node.flops / (node.flops + ramp) if node.flops > 0 else 0.0,
            bandwidth=d.mem_bandwidth, memory_efficiency=d.bandwidth_efficiency(node.category),
        )  # fmt: skip

    def transfer_time(self, nbytes: float, src: Device | str, dst: Device | str) -> float:
        """Sum over the route of ``latency + nbytes / bandwidth`` (0 on the same device).

        Computed as ``Σlatency + nbytes · Σ(1/bandwidth)``, exactly as the cost table does.
        """
        latency, inv = route_terms(self.platform, src, dst)
        return latency + nbytes * inv

    def memory_bytes(self, node: OpNode) -> float:
        """Bytes a node holds on its device: ``param_bytes + out_bytes``."""
        return node.param_bytes + node.out_bytes


def route_terms(platform: Platform, src: Device | str, dst: Device | str) -> tuple[float, float]:
    """``(Σ latency, Σ 1/bandwidth)`` over the route from ``src`` to ``dst``."""
    latency = inv = 0.0
    for link in platform.route(src, dst):
        latency += link.latency
        inv += 1.0 / link.bandwidth
    return latency, inv
