"""Measured op times that override a fallback cost model for the ops they cover.

A table is CSV (header ``node,device,seconds``; ``op`` may replace ``node``) or JSON (a list
of such objects, or ``{"rows": [...]}``). ``node`` matches a node name first and an op name
(``aten.mm.default``) second; ``device`` matches a device name first and a kind second.
Repeated rows for one key keep their median. Lookup order for ``(node, device)``: node name
on device name, node name on kind, op on device name, op on kind, then the fallback.

Examples
--------
>>> from hetsched.costmodel import Platform
>>> from hetsched.costmodel.roofline import RooflineCostModel
>>> from hetsched.graph import OpNode
>>> fb = RooflineCostModel(Platform.preset("edge-soc"))
>>> m = MeasuredCostModel([{"node": "aten.mm.default", "device": "gpu", "seconds": 1e-3}], fb)
>>> m.op_time(OpNode("mm1", op="aten.mm.default", category="matmul", flops=1e6), "gpu")
0.001
>>> m.op_time(OpNode("x", category="matmul", flops=1e6), "gpu") == fb.op_time(
...     OpNode("x", category="matmul", flops=1e6), "gpu")
True
"""

from __future__ import annotations

import csv
import io
import json
import math
import os
import statistics
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from hetsched.costmodel.device import Device
from hetsched.costmodel.roofline import CostModel, OpCostExplanation
from hetsched.errors import PlatformError
from hetsched.graph.opgraph import OpNode

__all__ = ["MeasuredCostModel", "read_measurements"]


def read_measurements(source: str | os.PathLike[str]) -> list[dict[str, Any]]:
    """Rows of a CSV or JSON measurement file."""
    p = Path(source)
    try:
        text = p.read_text(encoding="utf-8")
    except OSError as err:
        msg = f"{p}: cannot read measurements: {err}"
        raise PlatformError(msg) from err
    if p.suffix.lower() == ".json":
        try:
            doc = json.loads(text)
        except json.JSONDecodeError as err:
            msg = f"{p}: not valid JSON (line {err.lineno}: {err.msg})"
            raise PlatformError(msg) from err
        rows = doc.get("rows") if isinstance(doc, dict) else doc
        if not isinstance(rows, list):
            msg = f"{p}: expected a list of rows"
            raise PlatformError(msg)
        return rows
    return list(csv.DictReader(io.StringIO(text)))


class MeasuredCostModel:
    """Measured per-op times where available, ``fallback`` elsewhere.

    Parameters
    ----------
    table : a CSV/JSON path, or rows ``{"node" | "op", "device", "seconds"}``.
    fallback : the cost model for uncovered ops; also answers transfers and memory.
    """

    def __init__(
        self, table: str | os.PathLike[str] | Iterable[Mapping[str, Any]], fallback: CostModel
    ) -> None:
        rows = read_measurements(table) if isinstance(table, str | os.PathLike) else list(table)
        self.fallback = fallback
        self.platform = getattr(fallback, "platform", None)
        samples: dict[tuple[str, str, str], list[float]] = {}
        for i, row in enumerate(rows):
            if not isinstance(row, Mapping):
                msg = f"measurement row #{i}: expected an object, got {type(row).__name__}"
                raise PlatformError(msg)
            kind = "node" if row.get("node") not in (None, "") else "op"
            name, dev, sec = row.get(kind), row.get("device"), row.get("seconds")
            try:
                t = float(sec)  # type: ignore[arg-type]
            except (TypeError, ValueError):
                t = math.nan
            if not name or not dev or math.isnan(t) or t < 0:
                msg = (
                    f"measurement row #{i}: needs node (or op), device and seconds >= 0, "
                    f"got {dict(row)!r}"
                )
                raise PlatformError(msg)
            samples.setdefault((kind, str(name), str(dev)), []).append(t)
        self.times: dict[tuple[str, str, str], float] = {
            k: statistics.median(v) for k, v in samples.items()
        }

    def __repr__(self) -> str:
        return f"MeasuredCostModel({len(self.times)} entries, fallback={self.fallback!r})"

    def _device(self, device: Device | str) -> Device:
        if isinstance(device, Device):
            return device
        if self.platform is None:  # pragma: no cover - fallback without a platform
            msg = f"device {device!r}: pass a Device (the fallback has no platform)"
            raise PlatformError(msg)
        return self.platform.device(device)  # type: ignore[no-any-return]

    def measured(self, node: OpNode, device: Device | str) -> float | None:
        """The measured time for ``node`` on ``device``, or ``None``."""
        d = self._device(device)
        t = self.times
        for key in (
            ("node", node.name, d.name), ("node", node.name, d.kind),
            ("node", node.op, d.name), ("node", node.op, d.kind),
            ("op", node.op, d.name), ("op", node.op, d.kind),
        ):  # fmt: skip
            if key in t:
                return t[key]
        return None

    def op_time(self, node: OpNode, device: Device | str) -> float:
        m = self.measured(node, device)
        return self.fallback.op_time(node, device) if m is None else m

    def explain(self, node: OpNode, device: Device | str) -> OpCostExplanation:
        m = self.measured(node, device)
        if m is None:
            return self.fallback.explain(node, device)
        name = self._device(device).name
        return OpCostExplanation(node.name, name, m, "explicit", explicit=m, reason="measured")

    def transfer_time(self, nbytes: float, src: Device | str, dst: Device | str) -> float:
        return self.fallback.transfer_time(nbytes, src, dst)

    def memory_bytes(self, node: OpNode) -> float:
        return self.fallback.memory_bytes(node)
