"""What an op costs when it computes in another precision than it was exported with.

A lowered op is an *island*: its floating inputs arrive in their exported precision
(``float32``), are converted to ``precision`` (int8: quantized with their scales; float16 /
bfloat16: cast), the op computes at the device's peak for that precision on operands and
weights of that size, and its output is converted back. ``w8a16`` is weight-only int8: the
weights are stored int8 (per output channel) and widened to float16 as the op reads them,
the activations are cast to float16 and the op computes at the float16 peak; it reads a
quarter of the float32 weight bytes, as int8 does, which is what matters for ops whose
weights dwarf their activations (a language model's linear layers at small batch). So
transfers and the tensors other ops read keep their size; the op's weights shrink (int8: a
quarter of float32), and so do the bytes it reads and writes while it computes. The
conversions are extra passes over its inputs and outputs at the device's memory bandwidth:
the cost of the quantize and dequantize (or cast) ops a compiler inserts, charged to the
op's own device.

:func:`precision_table` is a :class:`~hetsched.costmodel.table.CostTable` of every op in
``precision``, from the same cost model: per-dtype peaks decide the compute term and
whether a device can run it at all (a device without units for the precision: ``inf``).

Examples
--------
>>> from hetsched.costmodel import Platform
>>> from hetsched.graph import OpGraph, OpNode
>>> g = OpGraph("g", [OpNode("mm", category="matmul", flops=2e9, bytes_read=8e6,
...                          bytes_written=4e6, param_bytes=4e6, out_bytes=4e6)])
>>> p = Platform.preset("edge-soc")
>>> fp32 = build_cost_table(g, p)
>>> int8 = precision_table(g, p, "int8")
>>> [round(float(x) * 1e6, 1) for x in fp32.exec[0]]            # cpu, gpu, npu0, npu1
[13534.6, 4468.4, 555.1, 555.1]
>>> [round(float(x) * 1e6, 1) for x in int8.exec[0]]            # the GPU has no int8 units
[6917.1, inf, 93.3, 93.3]
>>> float(int8.weights[0]), float(int8.memory[0])              # int8 weights, fp32 output
(1000000.0, 5000000.0)
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np

from hetsched.costmodel.platform import Platform
from hetsched.costmodel.roofline import CostModel, RooflineCostModel
from hetsched.costmodel.table import CostTable, build_cost_table
from hetsched.graph.opgraph import OpGraph, OpNode

__all__ = [
    "PRECISIONS",
    "WEIGHT_ONLY",
    "convert_bytes",
    "explain_precision",
    "lowered_node",
    "precision_table",
    "size_ratio",
    "weight_ratio",
]

# Weight-only int8: int8 weights widened to float16, float16 activations and compute.
WEIGHT_ONLY = "w8a16"
# Precisions an op may be lowered to, by the name plans record, most aggressive first.
PRECISIONS: tuple[str, ...] = ("int8", WEIGHT_ONLY, "float16", "bfloat16")
# precision -> (dtype it computes in and its activations take, dtype its weights take)
_STORAGE = {
    "int8": ("int8", "int8"),
    WEIGHT_ONLY: ("float16", "int8"),
    "float16": ("float16", "float16"),
    "bfloat16": ("bfloat16", "bfloat16"),
}
_BYTES = {"float32": 4, "float": 4, "float16": 2, "half": 2, "bfloat16": 2, "int8": 1}


def size_ratio(native: str, precision: str) -> float | None:
    """Bytes per activation element in ``precision`` over ``native`` (``None`` unless both
    are known floating types and ``precision`` is narrower).

    >>> size_ratio("float32", "int8"), size_ratio("float32", "w8a16"), size_ratio("int8", "float16")
    (0.25, 0.5, None)
    """
    a = _BYTES.get(native.removeprefix("torch."))
    b = _BYTES.get(_STORAGE.get(precision, (precision,))[0])
    if a is None or b is None or b >= a or native.removeprefix("torch.") == "int8":
        return None
    return b / a


def weight_ratio(native: str, precision: str) -> float | None:
    """Bytes per weight element in ``precision`` over ``native`` (as :func:`size_ratio`).

    >>> weight_ratio("float32", "w8a16"), weight_ratio("float32", "float16")
    (0.25, 0.5)
    """
    if size_ratio(native, precision) is None:
        return None
    return _BYTES[_STORAGE[precision][1]] / _BYTES[native.removeprefix("torch.")]


def lowered_node(node: OpNode, precision: str) -> OpNode | None:
    """``node`` computed in ``precision`` (its bytes scaled), ``None`` if it cannot be.
    Weight-only ``w8a16`` needs weights: an op without them is ``None`` there (it would be
    its ``float16`` mode)."""
    r = size_ratio(node.dtype, precision)
    rw = weight_ratio(node.dtype, precision)
    if r is None or rw is None or (precision == WEIGHT_ONLY and node.param_bytes <= 0):
        return None
    act = max(node.bytes_read - node.param_bytes, 0.0)
    return dataclasses.replace(
        node,
        dtype=_STORAGE[precision][0],
        bytes_read=act * r + node.param_bytes * rw,
        bytes_written=node.bytes_written * r,
        param_bytes=node.param_bytes * rw,
        cost=None,
    )


def convert_bytes(node: OpNode, lowered: OpNode) -> float:
    """Bytes the conversions in and out move: read the wide inputs, write them narrow;
    the same for the output."""
    r = lowered.bytes_written / node.bytes_written if node.bytes_written else 0.0
    act = max(node.bytes_read - node.param_bytes, 0.0)
    return act * (1 + r) + node.bytes_written * (1 + r)


def explain_precision(
    node: OpNode, platform: Platform, precision: str, cost_model: RooflineCostModel | None = None
) -> list[str]:
    """One line per device: ``node`` in ``precision``, its roofline terms and the
    conversions (see the module docstring); empty when it cannot be lowered."""
    low = lowered_node(node, precision)
    if low is None or node.cost is not None:
        return []
    model = cost_model or RooflineCostModel(platform)
    convert = convert_bytes(node, low)
    out = []
    for d in platform.devices:
        e = model.explain(low, d)
        if not math.isfinite(e.total):
            out.append(f"{precision} on {d.name}: unsupported ({e.reason})")
            continue
        extra = convert / d.mem_bandwidth
        out.append(
            f"{precision} on {d.name}: {(e.total + extra) * 1e6:.3f} us = {e.total * 1e6:.3f} us "
            f"({e.bound}-bound: compute {e.compute_time * 1e6:.3f}, memory "
            f"{e.memory_time * 1e6:.3f}, launch {e.overhead * 1e6:.3f}) + conversions "
            f"{extra * 1e6:.3f} us ({convert:.0f} B)"
        )
    return out


def precision_table(
    graph: OpGraph,
    platform: Platform,
    precision: str,
    cost_model: CostModel | None = None,
) -> CostTable:
    """Every op of ``graph`` lowered to ``precision`` (see the module docstring): ``exec``
    and ``streamed`` times with the conversions, ``weights`` in ``precision``, ``memory`` =
    those weights + the op's (unchanged) outputs. Ops that cannot be lowered (integer ops,
    explicit costs, already as narrow) are ``inf`` everywhere."""
    if precision not in PRECISIONS:
        msg = f"unknown precision {precision!r} (choose from {', '.join(PRECISIONS)})"
        raise ValueError(msg)
    lowered = [lowered_node(x, precision) for x in graph.nodes]
    keep = np.array([x is not None and graph.nodes[i].cost is None for i, x in enumerate(lowered)])
    nodes = [x if x is not None else graph.nodes[i] for i, x in enumerate(lowered)]
    twin = OpGraph(graph.name, nodes, tensors=graph.tensors, meta=dict(graph.meta))
    table = build_cost_table(twin, platform, cost_model, allow_infeasible=True)
    bw = np.array([d.mem_bandwidth for d in platform.devices])
    extra = np.array(
        [
            convert_bytes(x, y) if y is not None else 0.0
            for x, y in zip(graph.nodes, lowered, strict=True)
        ]
    )
    convert = extra[:, None] / bw[None, :]
    exec_ = np.where(keep[:, None], table.exec + convert, math.inf)
    streamed = table.streamed if table.streamed is not None else np.full(exec_.shape, math.inf)
    streamed = np.where(keep[:, None], streamed + convert, math.inf)
    for arr in (exec_, streamed):
        arr.setflags(write=False)
    return dataclasses.replace(table, exec=exec_, streamed=streamed)
