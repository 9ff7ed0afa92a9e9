"""The ``hetsched.plan/N`` JSON format: write plans atomically, read them strictly.

Version 2 records each op's mode (``device``, ``devices`` when it occupies several,
``precision``, ``tag``; ``weights``: ``resident`` or ``streamed``, from the tag), one
transfer per (tensor, destination device), each device's peak live ``memory`` (bytes), the
``baselines``, the predicted output ``error`` of the modes' precisions (when not 0) and the
``pipeline``/``modulo``/``peak_memory`` results as their own fields.
``graph`` names the graph the plan is for: ``name``, ``sha256`` and ``ops`` (its op count,
so a plan run on another version of a graph, coarsened or fused, can say so). Version 1
files (one device per op, one transfer per edge) still load.

Examples
--------
>>> import numpy as np
>>> from hetsched.plan.plan import plan_from_schedule
>>> from hetsched.problem import Problem
>>> p = Problem.from_arrays(names=["a", "b"], devices=["cpu", "gpu"],
...     exec_time=np.array([[4.0, 1.0], [3.0, 2.0]]), edges=[(0, 1, 10.0)], quantum=1.0)
>>> plan = plan_from_schedule(p, assign=[1, 0], start=[0, 1], solver="manual")
>>> doc = plan_to_dict(plan)
>>> doc["format"], doc["nodes"][1]["device"], doc["transfers"][0]["tensor"]
('hetsched.plan/2', 'cpu', 'a->b')
>>> plan_from_dict(doc) == plan
True
"""

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
from hetsched.plan.results import ModuloResult, PeakMemoryResult, PipelineResult
from hetsched.problem import DEFAULT_PRECISION, ModeSpec
from hetsched.problem.problem import is_streamed

__all__ = ["PLAN_FORMAT", "load_plan", "plan_from_dict", "plan_to_dict", "save_plan"]

PLAN_FORMAT = "hetsched.plan/2"
_READS = ("hetsched.plan/1", PLAN_FORMAT)


def plan_to_dict(plan: Plan) -> dict[str, Any]:
    """The ``hetsched.plan/2`` document of ``plan``."""
    doc: dict[str, Any] = {
        "format": PLAN_FORMAT,
        "graph": {"name": plan.graph_name, "sha256": plan.graph_sha256, "ops": len(plan.modes)},
        "platform": plan.platform,
        "objective": plan.objective,
        "solver": plan.solver,
        "status": plan.status,
        "searched": plan.searched,
        "interrupted": plan.interrupted,
        "units": plan.units,
        "makespan": plan.makespan,
        "lower_bound": plan.lower_bound,
        "gap": plan.gap,
        "optimal_tolerance": plan.tolerance,
        "solve_time": plan.solve_time,
        "memory": dict(plan.memory),
        "baselines": dict(plan.baselines),
        "stats": _plain(plan.stats),
        "nodes": [_node(x, m, plan) for x, m in plan.modes.items()],
        "transfers": [
            {
                "tensor": t.tensor,
                "src": t.src,
                "dsts": list(t.dsts),
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
    if plan.pipeline is not None:
        doc["pipeline"] = plan.pipeline.to_dict()
    if plan.modulo is not None:
        doc["modulo"] = plan.modulo.to_dict()
    if plan.peak_memory is not None:
        doc["peak_memory"] = plan.peak_memory.to_dict()
    if plan.constraints:
        doc["constraints"] = _plain(plan.constraints)
    if plan.error:
        doc["error"] = plan.error
    if plan.measured_error is not None:
        doc["measured_error"] = plan.measured_error
    return doc


def _node(name: str, mode: ModeSpec, plan: Plan) -> dict[str, Any]:
    out: dict[str, Any] = {"name": name, "device": mode.devices[0]}
    if len(mode.devices) > 1:
        out["devices"] = list(mode.devices)
    out["precision"] = mode.precision
    if mode.tag:
        out["tag"] = mode.tag
    out["weights"] = "streamed" if is_streamed(mode.tag) else "resident"  # from the tag
    out["start"] = plan.start[name]
    out["finish"] = plan.finish[name]
    return out


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
    """Read a ``hetsched.plan/1`` or ``/2`` document; strict about format and field types."""
    if not isinstance(doc, dict):
        msg = f"{source}: expected a JSON object"
        raise PlanError(msg)
    fmt = doc.get("format")
    if fmt not in _READS:
        msg = f"{source}: unsupported plan format {fmt!r} (this version reads {', '.join(_READS)})"
        raise PlanError(msg)
    try:
        nodes = doc["nodes"]
        modes = {
            str(n["name"]): ModeSpec(
                tuple(str(d) for d in n.get("devices", [n["device"]])),
                str(n.get("precision", DEFAULT_PRECISION)),
                str(n.get("tag", "")),
            )
            for n in nodes
        }
        start = {str(n["name"]): float(n["start"]) for n in nodes}
        finish = {str(n["name"]): float(n["finish"]) for n in nodes}
        transfers = tuple(_transfer(t, fmt) for t in doc.get("transfers", []))
        graph = doc.get("graph", {})
        if "ops" in graph and int(graph["ops"]) != len(modes):
            msg = f"{source}: graph.ops says {graph['ops']} ops but the plan places {len(modes)}"
            raise PlanError(msg)
        status = str(doc["status"])
        plan = Plan(
            modes=MappingProxyType(modes),
            start=MappingProxyType(start),
            finish=MappingProxyType(finish),
            transfers=transfers,
            makespan=float(doc["makespan"]),
            lower_bound=float(doc.get("lower_bound", 0.0)),
            solver=str(doc.get("solver", "?")),
            searched=bool(doc.get("searched", status != "heuristic")),
            solve_time=float(doc.get("solve_time", 0.0)),
            stats=MappingProxyType(dict(doc.get("stats", {}))),
            objective=str(doc.get("objective", "latency")),
            graph_name=str(graph.get("name", "")),
            graph_sha256=str(graph.get("sha256", "")),
            platform=str(doc.get("platform", "")),
            units=str(doc.get("units", "s")),
            interrupted=bool(doc.get("interrupted", False)),
            memory=MappingProxyType({str(k): float(v) for k, v in doc.get("memory", {}).items()}),
            baselines=MappingProxyType(
                {str(k): float(v) for k, v in doc.get("baselines", {}).items()}
            ),
            pipeline=PipelineResult.from_dict(doc["pipeline"]) if "pipeline" in doc else None,
            modulo=ModuloResult.from_dict(doc["modulo"]) if "modulo" in doc else None,
            peak_memory=(
                PeakMemoryResult.from_dict(doc["peak_memory"]) if "peak_memory" in doc else None
            ),
            error=float(doc.get("error", 0.0)),
            tolerance=float(doc.get("optimal_tolerance", 0.0)),
            constraints=MappingProxyType(dict(doc.get("constraints", {}))),
            measured_error=(
                float(doc["measured_error"]) if doc.get("measured_error") is not None else None
            ),
        )
    except (KeyError, TypeError, ValueError, AttributeError) as err:
        msg = f"{source}: malformed plan ({type(err).__name__}: {err})"
        raise PlanError(msg) from err
    if plan.status != status and fmt == PLAN_FORMAT:
        msg = (
            f"{source}: plan says status {status!r} but its value and bound make it {plan.status!r}"
        )
        raise PlanError(msg)
    return plan


def _transfer(t: Mapping[str, Any], fmt: str) -> Transfer:
    dsts = t["dsts"] if fmt == PLAN_FORMAT else [t["dst"]]
    return Transfer(
        tensor=str(t["tensor"]) if fmt == PLAN_FORMAT else "",
        src=str(t["src"]),
        dsts=tuple(str(x) for x in dsts),
        bytes=float(t["bytes"]),
        src_device=str(t["from"]),
        dst_device=str(t["to"]),
        links=tuple(str(x) for x in t.get("link", [])),
        start=float(t["start"]),
        finish=float(t["finish"]),
    )


def save_plan(plan: Plan, path: str | os.PathLike[str]) -> None:
    """Write ``plan`` as JSON atomically (temp file + rename)."""
    write_json_atomic(path, plan_to_dict(plan))


def load_plan(path: str | os.PathLike[str]) -> Plan:
    """Read a plan file (:func:`plan_from_dict`)."""
    return plan_from_dict(read_json(path, error=PlanError), source=str(path))
