"""Objective-specific results a plan carries as typed fields, not as a free-form dict.

* :class:`PipelineResult` - a pipeline (throughput) plan: period, its proven bound, stages.
* :class:`ModuloResult` - a modulo schedule: initiation interval, its bounds, op offsets.
* :class:`PeakMemoryResult` - the memory objective: one device's op order, its peak memory
  and the proven bound on it.

A latency plan's result is the plan itself (``makespan``, ``lower_bound``).

Examples
--------
>>> r = PipelineResult(period=2.0, period_bound=2.0, stage={"a": 0}, device_order=("x",))
>>> r.throughput, r.stages
(0.5, 1)
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

__all__ = ["ModuloResult", "PeakMemoryResult", "PipelineResult"]


@dataclass(frozen=True)
class PipelineResult:
    """Steady state of a pipeline: one iteration enters every ``period`` (seconds or units).

    ``stage`` is each op's stage; ``device_order`` the devices in stage order;
    ``utilization`` each device's load / period; ``link_utilization`` the same per link;
    ``memory`` the bytes each device holds; ``latency`` stages x period; ``contiguous``
    whether every device holds one contiguous run of ops.
    """

    period: float
    period_bound: float
    stage: Mapping[str, int] = field(default_factory=dict)
    device_order: tuple[str, ...] = ()
    utilization: Mapping[str, float] = field(default_factory=dict)
    link_utilization: Mapping[str, float] = field(default_factory=dict)
    memory: Mapping[str, float] = field(default_factory=dict)
    latency: float = 0.0
    contiguous: bool = False

    @property
    def stages(self) -> int:
        return len(self.device_order)

    @property
    def throughput(self) -> float:
        """Iterations per second (per unit)."""
        return 1.0 / self.period if self.period > 0 else math.inf

    @property
    def gap(self) -> float:
        return 0.0 if self.period <= 0 else max(0.0, 1 - self.period_bound / self.period)

    def to_dict(self) -> dict[str, Any]:
        return {
            "period": self.period,
            "period_bound": self.period_bound,
            "stage": dict(self.stage),
            "device_order": list(self.device_order),
            "utilization": dict(self.utilization),
            "link_utilization": dict(self.link_utilization),
            "memory": dict(self.memory),
            "latency": self.latency,
            "contiguous": self.contiguous,
        }

    @classmethod
    def from_dict(cls, doc: Mapping[str, Any]) -> PipelineResult:
        return cls(
            period=float(doc["period"]),
            period_bound=float(doc["period_bound"]),
            stage={str(k): int(v) for k, v in dict(doc.get("stage", {})).items()},
            device_order=tuple(str(x) for x in doc.get("device_order", [])),
            utilization={str(k): float(v) for k, v in dict(doc.get("utilization", {})).items()},
            link_utilization={
                str(k): float(v) for k, v in dict(doc.get("link_utilization", {})).items()
            },
            memory={str(k): float(v) for k, v in dict(doc.get("memory", {})).items()},
            latency=float(doc.get("latency", 0.0)),
            contiguous=bool(doc.get("contiguous", False)),
        )


@dataclass(frozen=True)
class ModuloResult:
    """A one-iteration schedule repeated every ``ii`` (seconds or units).

    ``ii_bound`` is the proven floor, ``res_mii``/``rec_mii`` the resource and recurrence
    bounds, ``offset`` each op's start modulo ``ii``, ``carried`` the loop-carried edges
    ``(src, dst, distance)``, ``proved_by`` what proved ``ii`` (or ``""``).
    """

    ii: float
    ii_bound: float
    res_mii: float = 0.0
    rec_mii: float = 0.0
    offset: Mapping[str, float] = field(default_factory=dict)
    carried: tuple[tuple[str, str, int], ...] = ()
    proved_by: str = ""

    @property
    def throughput(self) -> float:
        return 1.0 / self.ii if self.ii > 0 else math.inf

    def to_dict(self) -> dict[str, Any]:
        return {
            "ii": self.ii,
            "ii_bound": self.ii_bound,
            "res_mii": self.res_mii,
            "rec_mii": self.rec_mii,
            "offset": dict(self.offset),
            "carried": [list(c) for c in self.carried],
            "proved_by": self.proved_by,
        }

    @classmethod
    def from_dict(cls, doc: Mapping[str, Any]) -> ModuloResult:
        return cls(
            ii=float(doc["ii"]),
            ii_bound=float(doc["ii_bound"]),
            res_mii=float(doc.get("res_mii", 0.0)),
            rec_mii=float(doc.get("rec_mii", 0.0)),
            offset={str(k): float(v) for k, v in dict(doc.get("offset", {})).items()},
            carried=tuple((str(a), str(b), int(c)) for a, b, c in doc.get("carried", [])),
            proved_by=str(doc.get("proved_by", "")),
        )


@dataclass(frozen=True)
class PeakMemoryResult:
    """The order of ops on ``device`` with the least peak memory found (bytes).

    ``peak`` includes the resident ``weights``; ``peak_bound`` is the proven floor of every
    order's peak; ``baselines`` the peaks of the graph's own order (``topological``) and of
    the memory-aware greedy (``greedy``); ``method`` what found ``order``.
    """

    device: str
    peak: float
    peak_bound: float
    weights: float = 0.0
    order: tuple[str, ...] = ()
    method: str = ""
    baselines: Mapping[str, float] = field(default_factory=dict)

    @property
    def gap(self) -> float:
        return 0.0 if self.peak <= 0 else max(0.0, 1 - self.peak_bound / self.peak)

    def to_dict(self) -> dict[str, Any]:
        return {
            "device": self.device,
            "peak": self.peak,
            "peak_bound": self.peak_bound,
            "weights": self.weights,
            "order": list(self.order),
            "method": self.method,
            "baselines": dict(self.baselines),
        }

    @classmethod
    def from_dict(cls, doc: Mapping[str, Any]) -> PeakMemoryResult:
        return cls(
            device=str(doc["device"]),
            peak=float(doc["peak"]),
            peak_bound=float(doc["peak_bound"]),
            weights=float(doc.get("weights", 0.0)),
            order=tuple(str(x) for x in doc.get("order", [])),
            method=str(doc.get("method", "")),
            baselines={str(k): float(v) for k, v in dict(doc.get("baselines", {})).items()},
        )
