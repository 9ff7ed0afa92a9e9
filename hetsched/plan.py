"""Plans: where and when every op runs, every transfer, and how good it is proven to be.

A :class:`Plan` is a frozen result. :func:`validate` re-checks it against a
:class:`~hetsched.problem.Problem` independently of the solver that produced it and raises
:class:`~hetsched.errors.PlanError` naming the first violation. Plans serialise to the
``hetsched.plan/1`` JSON format.

Examples
--------
>>> import numpy as np
>>> from hetsched.problem import Problem
>>> p = Problem.from_arrays(names=["a", "b"], devices=["cpu", "gpu"],
...     exec_time=np.array([[4.0, 1.0], [3.0, 2.0]]), edges=[(0, 1, 10.0)],
...     comm_inv_bandwidth=np.array([[0.0, 0.1], [0.1, 0.0]]), quantum=1.0)
>>> plan = plan_from_schedule(p, assign=[1, 1], start=[0, 1], solver="manual", status="feasible")
>>> plan.makespan
3.0
>>> validate(plan, p)
>>> bad = plan_from_schedule(p, assign=[1, 0], start=[0, 1], solver="manual", status="feasible")
>>> validate(bad, p)
Traceback (most recent call last):
...
hetsched.errors.PlanError: node 'b' on 'cpu' starts at 1 but its input from 'a' on 'gpu' ...
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from types import MappingProxyType
from typing import Any

import numpy as np

from hetsched.errors import PlanError
from hetsched.fileio import read_json, write_json_atomic
from hetsched.problem import Problem
from hetsched.validate import check_membership, validate

__all__ = [
    "PLAN_FORMAT",
    "STATUSES",
    "Plan",
    "Transfer",
    "load_plan",
    "plan_from_dict",
    "plan_from_schedule",
    "plan_to_dict",
    "save_plan",
    "schedule_arrays",
    "validate",
]

PLAN_FORMAT = "hetsched.plan/1"
STATUSES = ("optimal", "feasible", "heuristic")


@dataclass(frozen=True)
class Transfer:
    """A tensor moved between devices for edge ``src -> dst``."""

    src: str
    dst: str
    bytes: float
    src_device: str
    dst_device: str
    links: tuple[str, ...]
    start: float
    finish: float


@dataclass(frozen=True)
class Plan:
    """Where (``assignment``) and when (``start``/``finish``) each op runs.

    ``status`` is ``optimal`` (proven), ``feasible`` (exact solver, not proven) or
    ``heuristic``; ``interrupted`` is set when the solve was cut short by a signal.
    Times are in seconds, or the graph's own units (``units``) for unit-cost graphs.
    """

    assignment: Mapping[str, str]
    start: Mapping[str, float]
    finish: Mapping[str, float]
    transfers: tuple[Transfer, ...]
    makespan: float
    lower_bound: float
    status: str
    solver: str
    solve_time: float = 0.0
    stats: Mapping[str, Any] = field(default_factory=dict)
    objective: str = "latency"
    graph_name: str = ""
    graph_sha256: str = ""
    platform: str = ""
    units: str = "s"
    interrupted: bool = False

    def __post_init__(self) -> None:
        if self.status not in STATUSES:
            msg = f"plan status must be one of {STATUSES}, got {self.status!r}"
            raise PlanError(msg)

    @property
    def gap(self) -> float:
        """Relative gap ``(makespan - bound) / makespan`` (0 when proven optimal)."""
        if self.makespan <= 0:
            return 0.0
        return max(0.0, (self.makespan - self.lower_bound) / self.makespan)

    def ops_per_device(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for dev in self.assignment.values():
            out[dev] = out.get(dev, 0) + 1
        return dict(sorted(out.items()))

    def with_(self, **changes: Any) -> Plan:
        """A copy with some fields changed."""
        return replace(self, **changes)


# ---------------------------------------------------------------------- construction
def plan_from_schedule(
    problem: Problem,
    *,
    assign: Sequence[int] | np.ndarray,
    start: Sequence[int] | np.ndarray,
    solver: str,
    status: str,
    lower_bound: float = 0.0,
    solve_time: float = 0.0,
    stats: Mapping[str, Any] | None = None,
    transfer_start: Mapping[int, int] | None = None,
    objective: str = "latency",
    interrupted: bool = False,
) -> Plan:
    """Build a :class:`Plan` from integer arrays (device index and start unit per op).

    ``lower_bound`` is in integer units. Transfers start when the producer finishes unless
    ``transfer_start`` (edge id -> unit) says otherwise (link contention).
    """
    a = np.asarray(assign, dtype=np.int64)
    s = np.asarray(start, dtype=np.int64)
    q = problem.quantum
    nodes = np.arange(problem.n)
    fin = s + problem.dur[nodes, a]
    transfers = []
    for k in range(problem.num_edges):
        u, v = int(problem.edge_src[k]), int(problem.edge_dst[k])
        da, db = int(a[u]), int(a[v])
        if da == db:
            continue
        t0 = int(transfer_start[k]) if transfer_start and k in transfer_start else int(fin[u])
        links = tuple(problem.link_names[i] for i in problem.route_links.get((da, db), ()))
        transfers.append(
            Transfer(
                src=problem.names[u],
                dst=problem.names[v],
                bytes=float(problem.edge_bytes[k]),
                src_device=problem.devices[da],
                dst_device=problem.devices[db],
                links=links,
                start=t0 * q,
                finish=(t0 + int(problem.comm[k, da, db])) * q,
            )
        )
    makespan = int(fin.max()) if fin.size else 0
    return Plan(
        assignment=MappingProxyType(
            {problem.names[i]: problem.devices[a[i]] for i in range(problem.n)}
        ),
        start=MappingProxyType({problem.names[i]: float(s[i]) * q for i in range(problem.n)}),
        finish=MappingProxyType({problem.names[i]: float(fin[i]) * q for i in range(problem.n)}),
        transfers=tuple(transfers),
        makespan=makespan * q,
        lower_bound=float(lower_bound) * q,
        status=status,
        solver=solver,
        solve_time=float(solve_time),
        stats=MappingProxyType(dict(stats or {})),
        objective=objective,
        graph_name=problem.name,
        graph_sha256=problem.graph_sha256,
        platform=problem.platform_name,
        units=problem.units,
        interrupted=interrupted,
    )


def schedule_arrays(plan: Plan, problem: Problem) -> tuple[np.ndarray, np.ndarray]:
    """``(assign, start)`` integer arrays of ``plan`` in ``problem``'s indexing.

    Raises :class:`PlanError` if the plan names an op or device the problem does not have.
    """
    assign = np.empty(problem.n, dtype=np.int64)
    start = np.empty(problem.n, dtype=np.int64)
    check_membership(plan, problem)
    for i, name in enumerate(problem.names):
        assign[i] = problem.device_index[plan.assignment[name]]
        start[i] = round(plan.start[name] / problem.quantum)
    return assign, start


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
