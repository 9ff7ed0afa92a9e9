"""Devices, links, dtype classes and the default roofline efficiencies.

Dtype mapping (:func:`dtype_class`): a node's dtype string (``"float32"``,
``"torch.float32"``, ``"half"``, ...) selects which peak of ``Device.peak_flops`` applies:

* ``float32``/``float``/``tf32`` → ``fp32``; ``float16``/``half`` → ``fp16``;
  ``bfloat16`` → ``bf16``; ``int8``/``uint8``/quantized 8-bit → ``int8``.
* Integer and bool ops (``int64``, ``int32``, ``int16``, ``bool``: indices, masks, shapes)
  run on the general-purpose fp32/integer ALUs of a ``cpu`` or ``gpu`` at the ``fp32`` rate;
  an ``asic`` has no such units and refuses them.
* ``float64`` runs at half the ``fp32`` rate on a cpu/gpu and is refused by an ``asic``.
* Unknown dtype strings (complex, float8, ...) are treated as ``fp32``.

A device lacking the selected peak (e.g. a GPU without ``int8``) does not support the op.

Examples
--------
>>> dtype_class("torch.float16")
('fp16', 1.0)
>>> dtype_class("int64", "cpu")
('fp32', 1.0)
>>> dtype_class("int64", "asic")
(None, 0.0)
>>> d = Device("npu", "asic", {"int8": 36e12, "fp16": 9e12}, 68e9)
>>> peak_for(d, "float32") is None, peak_for(d, "float16")
(True, 9000000000000.0)
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from hetsched.costmodel.support import Support, everything
from hetsched.errors import PlatformError
from hetsched.graph.opgraph import CATEGORIES, OpNode

__all__ = [
    "DEFAULT_COMPUTE_EFFICIENCY",
    "DEFAULT_MEMORY_EFFICIENCY",
    "DEFAULT_RAMP_TIME",
    "DTYPES",
    "KINDS",
    "RAMP_CATEGORIES",
    "Device",
    "Link",
    "dtype_class",
    "is_supported",
    "peak_for",
    "unsupported_reason",
]

KINDS: tuple[str, ...] = ("cpu", "gpu", "asic")
DTYPES: tuple[str, ...] = ("fp32", "fp16", "bf16", "int8")

_DTYPE_ALIASES = {
    "float32": "fp32",
    "float": "fp32",
    "fp32": "fp32",
    "tf32": "fp32",
    "float16": "fp16",
    "half": "fp16",
    "fp16": "fp16",
    "bfloat16": "bf16",
    "bf16": "bf16",
    "w8a16": "fp16",  # weight-only int8: computes in float16
    "int8": "int8",
    "uint8": "int8",
    "qint8": "int8",
    "quint8": "int8",
}
_INTEGER = {"int64", "int32", "int16", "long", "int", "short", "bool", "uint16", "uint32"}
_DOUBLE = {"float64", "double", "fp64"}

# Fraction of peak FLOP/s reached by a large op of each category (compute term), by kind.
# Figures are typical of well-tuned libraries: GEMM ~70-80 % (oneDNN/cuBLAS), direct/implicit
# GEMM convolution a little lower, fused attention ~50 %, and vector ops far lower because
# they rarely saturate FMA units (softmax's exp lower still). They matter only when the
# compute term wins; ops with no FLOPs (embedding, index, data movement, creation) never.
DEFAULT_COMPUTE_EFFICIENCY: Mapping[str, Mapping[str, float]] = MappingProxyType(
    {
        "cpu": {"matmul": 0.7, "conv": 0.5, "attention": 0.45, "elementwise": 0.25,
                "reduction": 0.25, "norm": 0.2, "softmax": 0.15, "pool": 0.25,
                "embedding": 0.2, "index": 0.2, "data_movement": 0.2, "creation": 0.2,
                "other": 0.2},
        "gpu": {"matmul": 0.75, "conv": 0.6, "attention": 0.5, "elementwise": 0.5,
                "reduction": 0.4, "norm": 0.35, "softmax": 0.3, "pool": 0.4,
                "embedding": 0.3, "index": 0.3, "data_movement": 0.3, "creation": 0.3,
                "other": 0.25},
        "asic": {"matmul": 0.8, "conv": 0.8, "attention": 0.4, "elementwise": 0.3,
                 "reduction": 0.2, "norm": 0.3, "softmax": 0.2, "pool": 0.3,
                 "embedding": 0.1, "index": 0.1, "data_movement": 0.2, "creation": 0.2,
                 "other": 0.1},
    }
)  # fmt: skip
# Fraction of peak memory bandwidth reached (memory term): STREAM-like ~60-80 %; strided
# permutes (data_movement), row gathers (embedding: contiguous rows) and element gathers
# and scatters (index: one element per address) lower; write-only fills (creation) high.
DEFAULT_MEMORY_EFFICIENCY: Mapping[str, Mapping[str, float]] = MappingProxyType(
    {
        "cpu": {"matmul": 0.6, "conv": 0.6, "attention": 0.5, "elementwise": 0.6,
                "reduction": 0.6, "norm": 0.5, "softmax": 0.5, "pool": 0.6,
                "embedding": 0.4, "index": 0.3, "data_movement": 0.4, "creation": 0.7,
                "other": 0.4},
        "gpu": {"matmul": 0.8, "conv": 0.75, "attention": 0.7, "elementwise": 0.8,
                "reduction": 0.7, "norm": 0.7, "softmax": 0.7, "pool": 0.75,
                "embedding": 0.6, "index": 0.5, "data_movement": 0.6, "creation": 0.8,
                "other": 0.5},
        "asic": {"matmul": 0.7, "conv": 0.7, "attention": 0.5, "elementwise": 0.6,
                 "reduction": 0.5, "norm": 0.5, "softmax": 0.5, "pool": 0.6,
                 "embedding": 0.4, "index": 0.3, "data_movement": 0.4, "creation": 0.6,
                 "other": 0.3},
    }
)  # fmt: skip
# Size-dependent factor, for matmul, conv and attention only (the ops whose tiling needs
# a large problem to fill the machine): an op with ``flops`` work reaches
# ``flops / (flops + peak·ramp_time)`` of its category efficiency, i.e. compute time =
# (flops + peak·ramp_time) / (peak·eff). Half efficiency at ~1 µs of peak work on a CPU
# (a ~100³ GEMM on a desktop socket), ~3 µs on a GPU (a ~400³ GEMM on an RTX 4090: SM
# occupancy), ~2 µs on an NPU array.
RAMP_CATEGORIES: frozenset[str] = frozenset({"matmul", "conv", "attention"})
DEFAULT_RAMP_TIME: Mapping[str, float] = MappingProxyType({"cpu": 1e-6, "gpu": 3e-6, "asic": 2e-6})


_NUMBERS = (
    ("mem_bandwidth", True),
    ("mem_capacity", True),
    ("launch_overhead", False),
    ("ramp_time", False),
    ("stream_bandwidth", True),
)


def _check_number(value: Any, where: str, *, positive: bool, allow_inf: bool) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        msg = f"{where} must be a number, got {value!r}"
        raise PlatformError(msg)
    v = float(value)
    if math.isnan(v) or (math.isinf(v) and not allow_inf) or v < 0 or (positive and v == 0):
        need = "> 0" if positive else ">= 0"
        msg = f"{where} must be {need}{'' if allow_inf else ' and finite'}, got {value!r}"
        raise PlatformError(msg)
    return v


def _check_table(
    table: Mapping[str, Any] | None, where: str, keys: tuple[str, ...], *, unit: bool
) -> Mapping[str, float] | None:
    if table is None:
        return None
    if not isinstance(table, Mapping):
        msg = f"{where} must be a table, got {type(table).__name__}"
        raise PlatformError(msg)
    clean: dict[str, float] = {}
    for k, v in table.items():
        if k not in keys:
            msg = f"{where}: unknown key {k!r} (expected one of {', '.join(keys)})"
            raise PlatformError(msg)
        clean[k] = _check_number(v, f"{where}.{k}", positive=True, allow_inf=not unit)
        if unit and clean[k] > 1.0:
            msg = f"{where}.{k} must be in (0, 1], got {v!r}"
            raise PlatformError(msg)
    return MappingProxyType(clean)


@dataclass(frozen=True)
class Device:
    """One compute device.

    Parameters
    ----------
    name : unique within a platform, e.g. ``"npu0"``.
    kind : ``"cpu"``, ``"gpu"`` or ``"asic"``.
    peak_flops : FLOP/s per dtype class (``fp32``, ``fp16``, ``bf16``, ``int8``); a missing
        class is unsupported.
    mem_bandwidth : bytes/s of the device's memory.
    mem_capacity : bytes (``math.inf`` = unlimited).
    stream_bandwidth : bytes/s at which weights that do not stay in the device's memory
        stream in from a backing memory (an NPU's SRAM fed from shared DRAM); ``None`` when
        the device has no such path (its weights always live in ``mem_capacity``).
    launch_overhead : seconds added to every op (dispatch, kernel launch).
    supports : a :class:`~hetsched.costmodel.support.Support` predicate.
    efficiency, memory_efficiency : per-category overrides of the default efficiencies.
    ramp_time : override of the kind's size-dependent factor (see module docs): seconds,
        or a table of seconds per category (matmul/conv/attention; others use the default).
    """

    name: str
    kind: str
    peak_flops: Mapping[str, float]
    mem_bandwidth: float
    mem_capacity: float = math.inf
    launch_overhead: float = 0.0
    supports: Support = field(default_factory=everything)
    stream_bandwidth: float | None = None
    efficiency: Mapping[str, float] | None = None
    memory_efficiency: Mapping[str, float] | None = None
    ramp_time: float | Mapping[str, float] | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name:
            msg = f"device name must be a non-empty string, got {self.name!r}"
            raise PlatformError(msg)
        w = f"device {self.name!r}"
        if self.kind not in KINDS:
            msg = f"{w}: unknown kind {self.kind!r} (expected one of {', '.join(KINDS)})"
            raise PlatformError(msg)
        peaks = _check_table(self.peak_flops, f"{w}: peak_flops", DTYPES, unit=False)
        bad = next((k for k, v in (peaks or {}).items() if math.isinf(v)), None)
        if bad is not None:
            msg = f"{w}: peak_flops.{bad} must be finite"
            raise PlatformError(msg)
        if not peaks:
            msg = f"{w}: peak_flops needs at least one of {', '.join(DTYPES)}"
            raise PlatformError(msg)
        set_ = object.__setattr__
        set_(self, "peak_flops", peaks)
        for attr, positive in _NUMBERS:
            v = getattr(self, attr)
            if attr == "ramp_time" and isinstance(v, Mapping):
                keys = tuple(sorted(RAMP_CATEGORIES))
                set_(self, attr, _check_table(v, f"{w}: ramp_time", keys, unit=False))
            elif v is not None or attr not in ("ramp_time", "stream_bandwidth"):
                finite = attr in ("launch_overhead", "ramp_time", "stream_bandwidth")
                set_(self, attr, _check_number(v, f"{w}: {attr}", positive=positive,
                                               allow_inf=not finite))  # fmt: skip
        if not isinstance(self.supports, Support):
            msg = f"{w}: supports must be a Support predicate, got {self.supports!r}"
            raise PlatformError(msg)
        for attr in ("efficiency", "memory_efficiency"):
            set_(self, attr, _check_table(getattr(self, attr), f"{w}: {attr}", CATEGORIES,
                                          unit=True))  # fmt: skip

    def __hash__(self) -> int:
        return hash((self.name, self.kind))

    def compute_efficiency(self, category: str) -> float:
        """Large-op fraction of peak FLOP/s for ``category`` (override, else kind default)."""
        if self.efficiency is not None and category in self.efficiency:
            return self.efficiency[category]
        return DEFAULT_COMPUTE_EFFICIENCY[self.kind][category]

    def bandwidth_efficiency(self, category: str) -> float:
        """Fraction of peak bandwidth reached for ``category``."""
        if self.memory_efficiency is not None and category in self.memory_efficiency:
            return self.memory_efficiency[category]
        return DEFAULT_MEMORY_EFFICIENCY[self.kind][category]

    def ramp(self, category: str = "matmul") -> float:
        """Seconds of peak work at which an op of ``category`` reaches half its efficiency."""
        r = self.ramp_time
        if isinstance(r, Mapping):
            return r.get(category, DEFAULT_RAMP_TIME[self.kind])
        return DEFAULT_RAMP_TIME[self.kind] if r is None else r


@dataclass(frozen=True)
class Link:
    """A transfer path between two devices (bidirectional unless ``directed``).

    >>> Link("cpu", "gpu", 25e9, 5e-6).connects("gpu", "cpu")
    True
    >>> Link("cpu", "gpu", 25e9, 5e-6, directed=True).connects("gpu", "cpu")
    False
    """

    src: str
    dst: str
    bandwidth: float
    latency: float = 0.0
    directed: bool = False

    def __post_init__(self) -> None:
        w = f"link {self.src!r} -> {self.dst!r}"
        if self.src == self.dst:
            msg = f"{w}: a link must join two different devices"
            raise PlatformError(msg)
        object.__setattr__(self, "bandwidth", _check_number(
            self.bandwidth, f"{w}: bandwidth", positive=True, allow_inf=True))  # fmt: skip
        object.__setattr__(self, "latency", _check_number(
            self.latency, f"{w}: latency", positive=False, allow_inf=False))  # fmt: skip
        if not isinstance(self.directed, bool):
            msg = f"{w}: directed must be true or false, got {self.directed!r}"
            raise PlatformError(msg)

    @property
    def name(self) -> str:
        return f"{self.src}{'->' if self.directed else '<->'}{self.dst}"

    def connects(self, a: str, b: str) -> bool:
        """True when data can flow from ``a`` to ``b`` over this link."""
        return (self.src, self.dst) == (a, b) or (
            not self.directed and (self.src, self.dst) == (b, a)
        )

    def time(self, nbytes: float) -> float:
        """``latency + nbytes / bandwidth``."""
        return self.latency + nbytes * (1.0 / self.bandwidth)


def dtype_class(dtype: str, kind: str = "cpu") -> tuple[str | None, float]:
    """``(peak key, rate factor)`` for a node dtype on a device kind (``None`` = refused)."""
    d = dtype.removeprefix("torch.").lower()
    if d in _DTYPE_ALIASES:
        return _DTYPE_ALIASES[d], 1.0
    if d in _INTEGER:
        return ("fp32", 1.0) if kind != "asic" else (None, 0.0)
    if d in _DOUBLE:
        return ("fp32", 0.5) if kind != "asic" else (None, 0.0)
    return "fp32", 1.0


def peak_for(device: Device, dtype: str) -> float | None:
    """Peak FLOP/s of ``device`` for ``dtype``, or ``None`` if it has no units for it."""
    key, factor = dtype_class(dtype, device.kind)
    if key is None or key not in device.peak_flops:
        return None
    return device.peak_flops[key] * factor


def unsupported_reason(node: OpNode, device: Device) -> str | None:
    """Why ``device`` cannot run ``node`` (``None`` if it can); explicit costs not consulted.

    A fused or coarsened op runs only where every one of its ``parts`` runs.
    """
    for x in (node, *node.parts):
        why = _own_reason(x, device)
        if why is not None:
            return why if x is node else f"its part {x.name!r} ({x.op}): {why}"
    return None


def _own_reason(node: OpNode, device: Device) -> str | None:
    if peak_for(device, node.dtype) is None:
        key, _ = dtype_class(node.dtype, device.kind)
        have = ", ".join(device.peak_flops)
        unit = f"{key} units" if key else "integer/fp64 units"
        return f"no {unit} for dtype {node.dtype!r} (has {have})"
    return device.supports.why_not(node, device)


def is_supported(node: OpNode, device: Any) -> bool:
    """The device's predicate and its dtype units agree (explicit costs are not consulted).

    >>> from hetsched.costmodel import Platform
    >>> from hetsched.graph import OpNode
    >>> npu = Platform.preset("edge-soc").device("npu0")
    >>> is_supported(OpNode("c", category="conv"), npu)
    True
    >>> is_supported(OpNode("r", category="index"), npu)
    False
    """
    return unsupported_reason(node, device) is None
