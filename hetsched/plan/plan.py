"""Plans: where and when every op runs, every transfer, and how good it is proven to be.

A :class:`Plan` is a frozen result; :func:`~hetsched.plan.validate.validate` re-checks it
against a :class:`~hetsched.problem.Problem` independently of the solver that produced it.

Examples
--------
>>> import numpy as np
>>> from hetsched.problem import Problem
>>> p = Problem.from_arrays(names=["a", "b"], devices=["cpu", "gpu"],
...     exec_time=np.array([[4.0, 1.0], [3.0, 2.0]]), edges=[(0, 1, 10.0)],
...     comm_inv_bandwidth=np.array([[0.0, 0.1], [0.1, 0.0]]), quantum=1.0)
>>> plan = plan_from_schedule(p, assign=[1, 1], start=[0, 1], solver="manual", status="feasible")
>>> plan.makespan, dict(plan.assignment)
(3.0, {'a': 'gpu', 'b': 'gpu'})
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from types import MappingProxyType
from typing import Any

import numpy as np

from hetsched.errors import PlanError
from hetsched.problem import Problem

__all__ = [
    "STATUSES",
    "Plan",
    "Transfer",
    "check_membership",
    "plan_from_schedule",
    "schedule_arrays",
]

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


def check_membership(plan: Plan, problem: Problem) -> None:
    missing = [x for x in problem.names if x not in plan.assignment]
    if missing:
        msg = f"plan does not place op {missing[0]!r} ({len(missing)} ops unplaced)"
        raise PlanError(msg)
    extra = [x for x in plan.assignment if x not in problem.index]
    if extra:
        msg = f"plan places op {extra[0]!r}, which is not in graph {problem.name!r}"
        raise PlanError(msg)
    for name, dev in plan.assignment.items():
        if dev not in problem.device_index:
            msg = (
                f"plan puts op {name!r} on device {dev!r}, which is not on platform "
                f"{problem.platform_name or '?'!r} (devices: {', '.join(problem.devices)})"
            )
            raise PlanError(msg)
        if name not in plan.start or name not in plan.finish:
            msg = f"plan has no start/finish time for op {name!r}"
            raise PlanError(msg)
