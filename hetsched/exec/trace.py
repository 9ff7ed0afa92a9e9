"""Chrome trace event JSON (opens in Perfetto / chrome://tracing) of a plan or a run.

One track per device and one per link (``tid``), ``"X"`` events with ``ts``/``dur`` in µs.
An op whose mode spans several devices has an event on each of them. A transfer event is
named by its tensor and its destination device (one per tensor and device, whatever the
number of readers there, which its ``args`` list). Plan times in seconds map to µs; graphs
in their own units map one unit to one µs (noted in ``otherData``). Runs add lost attempts
(category ``lost``) and instant events for faults.

Examples
--------
>>> import numpy as np
>>> from hetsched.problem import Problem
>>> from hetsched.plan import plan_from_schedule
>>> p = Problem.from_arrays(names=["a", "b"], devices=["cpu", "gpu"],
...     exec_time=np.array([[4.0, 1.0], [3.0, 2.0]]), edges=[(0, 1, 10.0)],
...     comm_inv_bandwidth=np.array([[0.0, 0.1], [0.1, 0.0]]), quantum=1.0)
>>> plan = plan_from_schedule(p, assign=[1, 0], start=[0, 2], solver="manual")
>>> doc = chrome_trace(plan)
>>> [(e["name"], e["tid"], e["ts"], e["dur"]) for e in doc["traceEvents"] if e["ph"] == "X"]
[('a', 2, 0.0, 1000000.0), ('b', 1, 2000000.0, 3000000.0), ('a->b@cpu', 3, 1000000.0, 1000000.0)]
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from hetsched.exec.result import ExecutionResult
from hetsched.fileio import write_json_atomic
from hetsched.plan import Plan, Transfer

__all__ = ["Bar", "Timeline", "chrome_trace", "save_trace", "timeline"]


@dataclass(frozen=True)
class Bar:
    """One interval on one row: an op on a device or a transfer on a link.

    ``op`` is the op's name (of a transfer: its producer); ``detail`` what a trace viewer
    shows besides (a transfer's tensor, devices, readers and bytes).
    """

    name: str
    row: str
    start: float
    finish: float
    kind: str  # "op" or "transfer"
    status: str = "done"
    op: str = ""
    detail: tuple[tuple[str, Any], ...] = field(default=())


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
        for x in sorted(source.modes, key=lambda x: (source.start[x], x)):
            bars += _op_bars(x, source.modes[x].devices, source.start[x], source.finish[x], "done")
        xfers = [(t, "done") for t in source.transfers]
        title = f"{source.graph_name or 'plan'} ({source.solver}, {source.status})"
        devices = tuple(sorted({d for m in source.modes.values() for d in m.devices}))
        makespan, lb, units = source.makespan, source.lower_bound, source.units
    else:
        for r in source.runs:
            bars += _op_bars(r.op, r.devices, r.start, r.finish, r.status)
        xfers = [(x.transfer, x.status) for x in source.transfer_runs]
        title = f"run ({source.clock} clock)"
        planned, faults = source.planned_makespan, tuple(source.fault_times.items())
        devices = source.devices or tuple(sorted({b.row for b in bars}))
        makespan, lb, units = source.makespan, source.lower_bound, source.units
    links: dict[str, None] = {}
    for t, status in xfers:
        for link in t.links or (f"{t.src_device}->{t.dst_device}",):
            links[link] = None
            bars.append(_transfer_bar(t, link, status))
    return Timeline(title, devices, tuple(links), tuple(bars), makespan, lb, planned, faults, units)


def _op_bars(
    op: str, devices: Iterable[str], start: float, finish: float, status: str
) -> list[Bar]:
    """One bar per device the op's mode holds."""
    devices = tuple(devices)
    detail = (("devices", list(devices)),) if len(devices) > 1 else ()
    return [Bar(op, d, start, finish, "op", status, op, detail) for d in devices]


def _transfer_bar(t: Transfer, row: str, status: str) -> Bar:
    """A transfer, named ``TENSOR@DEVICE`` (the tensor, or for a transfer of a first-format
    plan that names none, its edge)."""
    tensor = t.tensor or f"{t.src}->{','.join(t.dsts)}"
    detail = (
        ("tensor", tensor), ("src", t.src), ("dsts", list(t.dsts)), ("bytes", t.bytes),
        ("src_device", t.src_device), ("dst_device", t.dst_device),
    )  # fmt: skip
    return Bar(
        f"{tensor}@{t.dst_device}", row, t.start, t.finish, "transfer", status, t.src, detail
    )


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
        args = {"row": b.row, "start": b.start, "finish": b.finish, "status": b.status}
        events.append({
            "name": b.name, "cat": "lost" if b.status == "lost" else cat, "ph": "X",
            "ts": b.start * scale, "dur": (b.finish - b.start) * scale, "pid": 1,
            "tid": rows[b.row], "args": {**args, **dict(b.detail)},
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
