"""Chrome trace event JSON (opens in Perfetto / chrome://tracing) of a plan or a run.

One track per device and one per link (``tid``), ``"X"`` events with ``ts``/``dur`` in µs.
Plan times in seconds map to µs; graphs in their own units map one unit to one µs (noted
in ``otherData``). Runs add lost attempts (category ``lost``) and instant events for
faults.

Examples
--------
>>> import numpy as np
>>> from hetsched.problem import Problem
>>> from hetsched.plan import plan_from_schedule
>>> p = Problem.from_arrays(names=["a", "b"], devices=["cpu", "gpu"],
...     exec_time=np.array([[4.0, 1.0], [3.0, 2.0]]), edges=[(0, 1, 10.0)],
...     comm_inv_bandwidth=np.array([[0.0, 0.1], [0.1, 0.0]]), quantum=1.0)
>>> plan = plan_from_schedule(p, assign=[1, 0], start=[0, 2], solver="manual", status="feasible")
>>> doc = chrome_trace(plan)
>>> [(e["name"], e["tid"], e["ts"], e["dur"]) for e in doc["traceEvents"] if e["ph"] == "X"]
[('a', 2, 0.0, 1000000.0), ('b', 1, 2000000.0, 3000000.0), ('a->b', 3, 1000000.0, 1000000.0)]
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

from hetsched.exec.result import ExecutionResult
from hetsched.fileio import write_json_atomic
from hetsched.plan import Plan

__all__ = ["Bar", "Timeline", "chrome_trace", "save_trace", "timeline"]


@dataclass(frozen=True)
class Bar:
    """One interval on one row: an op on a device or a transfer on a link."""

    name: str
    row: str
    start: float
    finish: float
    kind: str  # "op" or "transfer"
    status: str = "done"


@dataclass(frozen=True)
class Timeline:
    """What the trace and the Gantt chart draw, from a plan or a run."""

    title: str
    devices: tuple[str, ...]
    links: tuple[str, ...]
    bars: tuple[Bar, ...]
    makespan: float
    lower_bound: float
    planned: float | None
    faults: tuple[tuple[str, float], ...]
    units: str


def timeline(source: Plan | ExecutionResult) -> Timeline:
    """Rows and bars of a :class:`~hetsched.plan.Plan` or an :class:`ExecutionResult`."""
    bars: list[Bar] = []
    faults: tuple[tuple[str, float], ...] = ()
    planned: float | None = None
    if isinstance(source, Plan):
        for x in sorted(source.assignment, key=lambda x: (source.start[x], x)):
            bars.append(Bar(x, source.assignment[x], source.start[x], source.finish[x], "op"))
        xfers = [(t, "done") for t in source.transfers]
        title = f"{source.graph_name or 'plan'} ({source.solver}, {source.status})"
        devices = tuple(dict.fromkeys(sorted(source.assignment.values())))
        makespan, lb, units = source.makespan, source.lower_bound, source.units
    else:
        for r in source.runs:
            bars.append(Bar(r.op, r.device, r.start, r.finish, "op", r.status))
        xfers = [(x.transfer, x.status) for x in source.transfer_runs]
        title = f"run ({source.clock} clock)"
        planned, faults = source.planned_makespan, tuple(source.fault_times.items())
        devices = source.devices or tuple(sorted({b.row for b in bars}))
        makespan, lb, units = source.makespan, source.lower_bound, source.units
    links: dict[str, None] = {}
    for t, status in xfers:
        for link in t.links or (f"{t.src_device}->{t.dst_device}",):
            links[link] = None
            bars.append(Bar(f"{t.src}->{t.dst}", link, t.start, t.finish, "transfer", status))
    return Timeline(title, devices, tuple(links), tuple(bars), makespan, lb, planned, faults, units)


def chrome_trace(source: Plan | ExecutionResult, *, graph: Any = None) -> dict[str, Any]:
    """The Chrome trace document of ``source``; op categories come from ``graph``."""
    tl = timeline(source)
    scale = 1e6 if tl.units == "s" else 1.0
    rows = {name: i + 1 for i, name in enumerate((*tl.devices, *tl.links))}
    events: list[dict[str, Any]] = [
        {"ph": "M", "name": "process_name", "pid": 1, "tid": 0, "args": {"name": tl.title}}
    ]
    for name, tid in rows.items():
        label = name if name in tl.devices else f"link {name}"
        events.append({"ph": "M", "name": "thread_name", "pid": 1, "tid": tid,
                       "args": {"name": label}})  # fmt: skip
        events.append({"ph": "M", "name": "thread_sort_index", "pid": 1, "tid": tid,
                       "args": {"sort_index": tid}})  # fmt: skip
    for b in tl.bars:
        if b.row not in rows:
            rows[b.row] = len(rows) + 1
        cat = b.kind if b.kind == "transfer" else _category(graph, b.name)
        events.append({
            "name": b.name, "cat": "lost" if b.status == "lost" else cat, "ph": "X",
            "ts": b.start * scale, "dur": (b.finish - b.start) * scale, "pid": 1,
            "tid": rows[b.row], "args": {"row": b.row, "start": b.start, "finish": b.finish,
                                         "status": b.status},
        })  # fmt: skip
    for label, t in tl.faults:
        events.append({"name": f"fault {label}", "ph": "i", "s": "g", "ts": t * scale,
                       "pid": 1, "tid": 0})  # fmt: skip
    other = {"makespan": tl.makespan, "lower_bound": tl.lower_bound, "units": tl.units,
             "us_per_unit": scale if tl.units == "s" else 1.0}  # fmt: skip
    if tl.planned is not None:
        other["planned_makespan"] = tl.planned
    return {"traceEvents": events, "displayTimeUnit": "ms", "otherData": other}


def _category(graph: Any, name: str) -> str:
    if graph is None:
        return "op"
    try:
        return str(graph.node(name).category)
    except Exception:  # an op the graph does not have (foreign plan): plain "op"
        return "op"


def save_trace(
    source: Plan | ExecutionResult, path: str | os.PathLike[str], *, graph: Any = None
) -> None:
    """Write :func:`chrome_trace` of ``source`` to ``path`` atomically."""
    write_json_atomic(path, chrome_trace(source, graph=graph))
