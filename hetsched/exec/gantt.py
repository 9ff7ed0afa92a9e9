"""Gantt chart (PNG, matplotlib Agg) of a plan or a run.

Devices are rows, then links; ops are coloured by category when the graph is given (else
by device; an op of a multi-device mode is drawn on each of its devices), transfers drawn
on their links and labelled ``TENSOR@DEVICE`` when there is room, lost attempts hatched in
red; vertical lines mark the makespan, the lower bound, the planned makespan of a run and
device failures.

Examples
--------
>>> import numpy as np, os, tempfile
>>> from hetsched.problem import Problem
>>> from hetsched.plan import plan_from_schedule
>>> p = Problem.from_arrays(names=["a", "b"], devices=["cpu", "gpu"],
...     exec_time=np.array([[4.0, 1.0], [3.0, 2.0]]), edges=[(0, 1, 10.0)],
...     comm_inv_bandwidth=np.array([[0.0, 0.1], [0.1, 0.0]]), quantum=1.0)
>>> plan = plan_from_schedule(p, assign=[1, 0], start=[0, 2], solver="manual")
>>> path = os.path.join(tempfile.mkdtemp(), "g.png")
>>> save_gantt(plan, path)
>>> open(path, "rb").read(4) == b"\\x89PNG"
True
"""

from __future__ import annotations

import io
import os
from typing import Any

from hetsched.exec.result import ExecutionResult
from hetsched.exec.trace import _category, timeline
from hetsched.fileio import write_bytes_atomic
from hetsched.graph.opgraph import CATEGORIES
from hetsched.plan import Plan

__all__ = ["gantt_png", "save_gantt"]

_TRANSFER_COLOUR = "#9e9e9e"


def _time_unit(units: str, span: float) -> tuple[float, str]:
    if units != "s":
        return 1.0, units
    if span < 1e-3:
        return 1e6, "µs"
    if span < 1.0:
        return 1e3, "ms"
    return 1.0, "s"


def gantt_png(
    source: Plan | ExecutionResult, *, graph: Any = None, title: str | None = None
) -> bytes:
    """The Gantt chart of ``source`` as PNG bytes."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.figure import Figure
    from matplotlib.patches import Patch

    tl = timeline(source)
    rows = [*tl.devices, *(f"link {x}" for x in tl.links)]
    y_of = {name: i for i, name in enumerate([*tl.devices, *tl.links])}
    span = max([tl.makespan, *(b.finish for b in tl.bars)]) or 1.0
    k, unit = _time_unit(tl.units, span)
    cmap = matplotlib.colormaps["tab10"]
    by_cat = {c: cmap(i) for i, c in enumerate(CATEGORIES)}
    by_dev = {d: cmap(i % 10) for i, d in enumerate(tl.devices)}
    fig = Figure(figsize=(12, 1.6 + 0.55 * len(rows)), dpi=110)
    ax = fig.add_subplot()
    used: dict[str, Any] = {}
    label_ops = sum(1 for b in tl.bars if b.kind == "op") <= 80
    colour: Any
    for b in tl.bars:
        y = y_of.get(b.row)
        if y is None:
            continue
        if b.kind == "transfer":
            colour, key = _TRANSFER_COLOUR, "transfer"
        elif graph is not None:
            key = _category(graph, b.op or b.name)
            colour = by_cat.get(key, cmap(7))
        else:
            key, colour = b.row, by_dev[b.row]
        lost = b.status == "lost"
        ax.broken_barh(
            [(b.start * k, max((b.finish - b.start) * k, span * k * 1e-4))],
            (y - 0.38, 0.76),
            facecolors="#ffcdd2" if lost else colour,
            edgecolors="#c62828" if lost else "white",
            linewidth=0.6,
            hatch="///" if lost else None,
        )
        used.setdefault("lost" if lost else key, "#ffcdd2" if lost else colour)
        if label_ops and (b.finish - b.start) > 0.04 * span:
            ax.text((b.start + b.finish) / 2 * k, y, b.name, ha="center", va="center",
                    fontsize=7, clip_on=True)  # fmt: skip
    lines = [("makespan", tl.makespan, "black", "--")]
    if tl.lower_bound > 0:
        lines.append(("lower bound", tl.lower_bound, "#2e7d32", ":"))
    if tl.planned is not None:
        lines.append(("planned makespan", tl.planned, "#1565c0", "-."))
    lines += [(f"fault {label}", t, "#c62828", "-") for label, t in tl.faults]
    for label, t, colour, style in lines:
        ax.axvline(
            t * k, color=colour, linestyle=style, linewidth=1.2, label=f"{label} {t * k:.4g}"
        )
    handles: list[Any] = [Patch(facecolor=c, label=name) for name, c in used.items()]
    handles += ax.get_legend_handles_labels()[0]
    ax.legend(handles=handles, loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8,
              frameon=False)  # fmt: skip
    ax.set_yticks(range(len(rows)), rows)
    ax.set_ylim(len(rows) - 0.5, -0.5)
    ax.set_xlim(0, span * k * 1.02)
    ax.set_xlabel(f"time ({unit})")
    ax.grid(axis="x", alpha=0.3)
    ax.set_title(title or tl.title)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    return buf.getvalue()


def save_gantt(
    source: Plan | ExecutionResult,
    path: str | os.PathLike[str],
    *,
    graph: Any = None,
    title: str | None = None,
) -> None:
    """Write :func:`gantt_png` of ``source`` to ``path`` atomically."""
    write_bytes_atomic(path, gantt_png(source, graph=graph, title=title))
