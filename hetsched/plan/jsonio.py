"""The ``hetsched.plan/N`` JSON format: write plans atomically, read them strictly."""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from types import MappingProxyType
from typing import Any

import numpy as np

from hetsched.errors import PlanError
from hetsched.fileio import read_json, write_json_atomic
from hetsched.plan.plan import Plan, Transfer

__all__ = ["PLAN_FORMAT", "load_plan", "plan_from_dict", "plan_to_dict", "save_plan"]

PLAN_FORMAT = "hetsched.plan/1"


# ---------------------------------------------------------------------- JSON
def plan_to_dict(plan: Plan) -> dict[str, Any]:
    """The ``hetsched.plan/1`` document of ``plan``."""
    return {
        "format": PLAN_FORMAT,
        "graph": {"name": plan.graph_name, "sha256": plan.graph_sha256},
        "platform": plan.platform,
        "objective": plan.objective,
        "solver": plan.solver,
        "status": plan.status,
        "interrupted": plan.interrupted,
        "units": plan.units,
        "makespan": plan.makespan,
        "lower_bound": plan.lower_bound,
        "gap": plan.gap,
        "solve_time": plan.solve_time,
        "stats": _plain(plan.stats),
        "nodes": [
            {
                "name": x,
                "device": plan.assignment[x],
                "start": plan.start[x],
                "finish": plan.finish[x],
            }
            for x in plan.assignment
        ],
        "transfers": [
            {
                "src": t.src,
                "dst": t.dst,
                "bytes": t.bytes,
                "from": t.src_device,
                "to": t.dst_device,
                "link": list(t.links),
                "start": t.start,
                "finish": t.finish,
            }
            for t in plan.transfers
        ],
    }


def _plain(x: Any) -> Any:
    if isinstance(x, Mapping):
        return {str(k): _plain(v) for k, v in x.items()}
    if isinstance(x, list | tuple):
        return [_plain(v) for v in x]
    if isinstance(x, np.generic):
        return x.item()
    if isinstance(x, float) and not math.isfinite(x):
        return str(x)
    if isinstance(x, str | int | float | bool) or x is None:
        return x
    return str(x)


def plan_from_dict(doc: Any, *, source: str = "<plan>") -> Plan:
    """Read a ``hetsched.plan/1`` document; strict about format and field types."""
    if not isinstance(doc, dict):
        msg = f"{source}: expected a JSON object"
        raise PlanError(msg)
    if doc.get("format") != PLAN_FORMAT:
        msg = f"{source}: unsupported plan format {doc.get('format')!r} (expected {PLAN_FORMAT!r})"
        raise PlanError(msg)
    try:
        nodes = doc["nodes"]
        assignment = {str(n["name"]): str(n["device"]) for n in nodes}
        start = {str(n["name"]): float(n["start"]) for n in nodes}
        finish = {str(n["name"]): float(n["finish"]) for n in nodes}
        transfers = tuple(
            Transfer(
                src=str(t["src"]),
                dst=str(t["dst"]),
                bytes=float(t["bytes"]),
                src_device=str(t["from"]),
                dst_device=str(t["to"]),
                links=tuple(str(x) for x in t.get("link", [])),
                start=float(t["start"]),
                finish=float(t["finish"]),
            )
            for t in doc.get("transfers", [])
        )
        graph = doc.get("graph", {})
        return Plan(
            assignment=MappingProxyType(assignment),
            start=MappingProxyType(start),
            finish=MappingProxyType(finish),
            transfers=transfers,
            makespan=float(doc["makespan"]),
            lower_bound=float(doc.get("lower_bound", 0.0)),
            status=str(doc["status"]),
            solver=str(doc.get("solver", "?")),
            solve_time=float(doc.get("solve_time", 0.0)),
            stats=MappingProxyType(dict(doc.get("stats", {}))),
            objective=str(doc.get("objective", "latency")),
            graph_name=str(graph.get("name", "")),
            graph_sha256=str(graph.get("sha256", "")),
            platform=str(doc.get("platform", "")),
            units=str(doc.get("units", "s")),
            interrupted=bool(doc.get("interrupted", False)),
        )
    except (KeyError, TypeError, ValueError) as err:
        msg = f"{source}: malformed plan ({type(err).__name__}: {err})"
        raise PlanError(msg) from err


def save_plan(plan: Plan, path: str | os.PathLike[str]) -> None:
    """Write ``plan`` as JSON atomically (temp file + rename)."""
    write_json_atomic(path, plan_to_dict(plan))


def load_plan(path: str | os.PathLike[str]) -> Plan:
    return plan_from_dict(read_json(path, error=PlanError), source=str(path))
