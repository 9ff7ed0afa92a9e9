"""Plans: the mode and start of every op, every transfer, and how good it is proven to be.

A :class:`Plan` is a frozen result: for every op the mode it runs in (devices, precision:
:class:`~hetsched.problem.ModeSpec`) and its start and finish, every transfer (one tensor to
one device, once), the makespan, a proven lower bound, and a status derived from them by one
rule (:func:`plan_status`). :func:`~hetsched.plan.validate.validate` re-checks a plan against
its :class:`~hetsched.problem.Problem` independently of the solver that produced it.

Examples
--------
>>> import numpy as np
>>> from hetsched.problem import Problem
>>> p = Problem.from_arrays(names=["a", "b"], devices=["cpu", "gpu"],
...     exec_time=np.array([[4.0, 1.0], [3.0, 2.0]]), edges=[(0, 1, 10.0)],
...     comm_inv_bandwidth=np.array([[0.0, 0.1], [0.1, 0.0]]), quantum=1.0)
>>> plan = plan_from_schedule(p, assign=[1, 1], start=[0, 1], solver="manual")
>>> plan.makespan, dict(plan.assignment), plan.status
(3.0, {'a': 'gpu', 'b': 'gpu'}, 'heuristic')
>>> plan.with_(lower_bound=3.0).status
'optimal'
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from functools import cached_property
from types import MappingProxyType
from typing import Any

import numpy as np

from hetsched.errors import PlanError
from hetsched.plan.memory import memory_profile
from hetsched.plan.results import ModuloResult, PeakMemoryResult, PipelineResult
from hetsched.problem import DEFAULT_PRECISION, ModeSpec, Problem

__all__ = [
    "STATUSES",
    "Plan",
    "Transfer",
    "check_membership",
    "mode_array",
    "mode_ids",
    "nearest_source",
    "plan_from_schedule",
    "plan_status",
    "plan_transfer_starts",
    "schedule_arrays",
    "transfer_record",
]

STATUSES = ("optimal", "feasible", "heuristic")
# Relative tolerance of "makespan equals the bound" (float seconds round-trip).
_TIGHT = 1e-9


def plan_status(value: float, bound: float, *, searched: bool, tolerance: float = 0.0) -> str:
    """The one status rule, for every solver and objective.

    ``optimal``: the value is proven (it does not exceed a lower bound of the question
    asked by more than the relative ``tolerance``: 0 where the integer model is the real
    problem, :data:`~hetsched.problem.quantum.ROUNDING_TOLERANCE` where durations were
    rounded to whole quanta). ``feasible``: not proven, but an exact search over the whole
    problem ran (the gap is what it could not close in time). ``heuristic``: not proven, and
    no exact search over the whole problem ran (list schedulers, local search, LNS).

    >>> plan_status(5.0, 5.0, searched=False), plan_status(5.0, 4.0, searched=True)
    ('optimal', 'feasible')
    >>> plan_status(5.004, 5.0, searched=True, tolerance=0.001)
    'optimal'
    """
    if value <= bound * (1 + max(tolerance, _TIGHT)) + 1e-15:
        return "optimal"
    return "feasible" if searched else "heuristic"


@dataclass(frozen=True)
class Transfer:
    """One tensor moved to one device, once, however many ops read it there.

    ``dsts`` are the consumers on ``dst_device`` that read it; ``src`` is its producer.
    """

    tensor: str
    src: str
    dsts: tuple[str, ...]
    bytes: float
    src_device: str
    dst_device: str
    links: tuple[str, ...]
    start: float
    finish: float


@dataclass(frozen=True)
class Plan:
    """Where (``modes``) and when (``start``/``finish``) each op runs (module docstring).

    ``assignment`` (op -> device; the first device of a multi-device mode) is derived from
    ``modes``. ``status`` is derived from the objective's value and bound and ``searched``
    (:func:`plan_status`). ``memory`` is each device's peak live bytes
    (:mod:`hetsched.plan.memory`). ``error`` is the output error its modes' precisions are
    predicted to add (the sum of their errors); ``measured_error`` the one measured end to
    end on held-out inputs, when the program was at hand. ``baselines`` are the heuristic
    makespans the solver started from; ``pipeline``/``modulo``/``peak_memory`` carry the
    results of those objectives. ``stats`` holds solver diagnostics only. ``tolerance`` is
    the relative tolerance of ``optimal`` (:func:`plan_status`): 0 when every duration was a
    whole number of quanta, else the rounding tolerance; ``lower_bound`` is always a bound
    of the real-valued problem (computed on :attr:`~hetsched.problem.Problem.floored`).
    ``constraints`` are the user's rules the plan was made under (their file form,
    :meth:`~hetsched.problem.constraints.Constraints.to_dict`). Times are in
    seconds, or the graph's own ``units``.
    """

    modes: Mapping[str, ModeSpec]
    start: Mapping[str, float]
    finish: Mapping[str, float]
    transfers: tuple[Transfer, ...]
    makespan: float
    lower_bound: float
    solver: str
    searched: bool = False
    solve_time: float = 0.0
    stats: Mapping[str, Any] = field(default_factory=dict)
    objective: str = "latency"
    graph_name: str = ""
    graph_sha256: str = ""
    platform: str = ""
    units: str = "s"
    interrupted: bool = False
    memory: Mapping[str, float] = field(default_factory=dict)
    baselines: Mapping[str, float] = field(default_factory=dict)
    pipeline: PipelineResult | None = None
    modulo: ModuloResult | None = None
    peak_memory: PeakMemoryResult | None = None
    error: float = 0.0
    measured_error: float | None = None
    tolerance: float = 0.0
    constraints: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.objective == "throughput" and self.pipeline is None and self.modulo is None:
            msg = "a throughput plan needs its pipeline or periodic (modulo) result"
            raise PlanError(msg)
        if self.objective == "modulo" and self.modulo is None:
            msg = "a modulo plan needs its modulo result"
            raise PlanError(msg)
        if self.objective == "memory" and self.peak_memory is None:
            msg = "a memory plan needs its peak-memory result"
            raise PlanError(msg)

    @cached_property
    def assignment(self) -> Mapping[str, str]:
        """Op -> device (the first device of its mode)."""
        return MappingProxyType({x: m.devices[0] for x, m in self.modes.items()})

    @property
    def objective_value(self) -> float:
        """Makespan (latency), period (throughput), initiation interval (modulo) or peak
        bytes of the ordered device (memory)."""
        if self.pipeline is not None and self.objective == "throughput":
            return self.pipeline.period
        if self.modulo is not None and self.objective in ("modulo", "throughput"):
            return self.modulo.ii
        if self.peak_memory is not None and self.objective == "memory":
            return self.peak_memory.peak
        return self.makespan

    @property
    def objective_bound(self) -> float:
        """The proven lower bound of :attr:`objective_value`."""
        if self.pipeline is not None and self.objective == "throughput":
            return self.pipeline.period_bound
        if self.modulo is not None and self.objective in ("modulo", "throughput"):
            return self.modulo.ii_bound
        if self.peak_memory is not None and self.objective == "memory":
            return self.peak_memory.peak_bound
        return self.lower_bound

    @property
    def status(self) -> str:
        """``optimal`` | ``feasible`` | ``heuristic`` (:func:`plan_status`)."""
        return plan_status(
            self.objective_value,
            self.objective_bound,
            searched=self.searched,
            tolerance=self.tolerance,
        )

    @property
    def gap(self) -> float:
        """Relative gap ``(makespan - bound) / makespan`` of one iteration (0 when proven)."""
        if self.makespan <= 0:
            return 0.0
        return max(0.0, (self.makespan - self.lower_bound) / self.makespan)

    @property
    def objective_gap(self) -> float:
        """Relative gap of the objective's value to its bound."""
        v = self.objective_value
        return 0.0 if v <= 0 else max(0.0, (v - self.objective_bound) / v)

    def ops_per_device(self) -> dict[str, int]:
        """How many ops each device runs (an op of a multi-device mode counts on each)."""
        out: dict[str, int] = {}
        for m in self.modes.values():
            for dev in m.devices:
                out[dev] = out.get(dev, 0) + 1
        return dict(sorted(out.items()))

    def with_(self, **changes: Any) -> Plan:
        """A copy with some fields changed (the status follows)."""
        return replace(self, **changes)

    def with_bound(self, bound: float, **changes: Any) -> Plan:
        """A copy whose lower bound is ``bound`` (at most its makespan), with ``changes``; the
        note of which bound gave the old one (``stats["bound_from"]``) goes with it."""
        stats = {k: v for k, v in changes.pop("stats", self.stats).items() if k != "bound_from"}
        return self.with_(lower_bound=min(bound, self.makespan), stats=stats, **changes)


# ---------------------------------------------------------------------- construction
def plan_from_schedule(
    problem: Problem,
    *,
    start: Sequence[int] | np.ndarray,
    solver: str,
    assign: Sequence[int] | np.ndarray | None = None,
    modes: Sequence[int] | np.ndarray | None = None,
    searched: bool = False,
    lower_bound: float = 0.0,
    solve_time: float = 0.0,
    stats: Mapping[str, Any] | None = None,
    transfer_start: Mapping[tuple[int, int], int] | None = None,
    objective: str = "latency",
    interrupted: bool = False,
    baselines: Mapping[str, float] | None = None,
    pipeline: PipelineResult | None = None,
    modulo: ModuloResult | None = None,
    peak_memory: PeakMemoryResult | None = None,
) -> Plan:
    """Build a :class:`Plan` from integer arrays: a mode id per op (``modes``), or a device
    index per op (``assign``: the op's device-view mode there), and a start unit per op.

    ``lower_bound`` is in integer units. Each tensor goes once to each device that reads it
    and does not hold it, from the producer's device that reaches it fastest; it starts
    when the producer finishes unless ``transfer_start[(tensor, device)]`` says otherwise
    (link contention).
    """
    m = mode_array(problem, assign=assign, modes=modes)
    s = np.asarray(start, dtype=np.int64)
    q = problem.quantum
    fin = s + problem.mode_dur[m]
    moves = _transfers(problem, m, fin, transfer_start)
    transfers = [transfer_record(problem, t, a, b, readers, t0) for t, a, b, readers, t0 in moves]
    makespan = int(fin.max()) if fin.size else 0
    sends = {(t, b): (t0, t0 + int(problem.tensor_comm[t, a, b]), a) for t, a, b, _, t0 in moves}
    usage = memory_profile(problem, m, s, fin, sends).peak
    return Plan(
        modes=MappingProxyType(
            {problem.names[i]: problem.describe_mode(int(m[i])) for i in range(problem.n)}
        ),
        start=MappingProxyType({problem.names[i]: float(s[i]) * q for i in range(problem.n)}),
        finish=MappingProxyType({problem.names[i]: float(fin[i]) * q for i in range(problem.n)}),
        transfers=tuple(transfers),
        makespan=makespan * q,
        lower_bound=float(lower_bound) * q,
        solver=solver,
        searched=searched,
        solve_time=float(solve_time),
        stats=MappingProxyType(dict(stats or {})),
        objective=objective,
        graph_name=problem.name,
        graph_sha256=problem.graph_sha256,
        platform=problem.platform_name,
        units=problem.units,
        interrupted=interrupted,
        memory=MappingProxyType(
            {problem.devices[d]: float(usage[d]) for d in range(problem.num_devices)}
        ),
        baselines=MappingProxyType(dict(baselines or {})),
        pipeline=pipeline,
        modulo=modulo,
        peak_memory=peak_memory,
        error=float(problem.modes.err[m].sum()),
        tolerance=problem.tolerance,
        constraints=(
            MappingProxyType(problem.constraints.spec.to_dict())
            if problem.constraints is not None
            else MappingProxyType({})
        ),
    )


def transfer_record(
    problem: Problem, t: int, a: int, b: int, readers: Sequence[int], start: int
) -> Transfer:
    """The :class:`Transfer` of tensor ``t`` from device ``a`` to ``b`` for ops ``readers``,
    starting at unit ``start`` (real times out)."""
    q = problem.quantum
    return Transfer(
        tensor=problem.tensors.names[t],
        src=problem.names[int(problem.tensors.src[t])],
        dsts=tuple(problem.names[c] for c in readers),
        bytes=float(problem.tensors.nbytes[t]),
        src_device=problem.devices[a],
        dst_device=problem.devices[b],
        links=tuple(problem.link_names[i] for i in problem.route_links.get((a, b), ())),
        start=start * q,
        finish=(start + int(problem.tensor_comm[t, a, b])) * q,
    )


def mode_array(
    problem: Problem,
    *,
    assign: Sequence[int] | np.ndarray | None = None,
    modes: Sequence[int] | np.ndarray | None = None,
) -> np.ndarray:
    """Mode id per op from ``modes`` or from device indices ``assign`` (device views)."""
    if (assign is None) == (modes is None):
        msg = "give the ops' modes or their devices (assign), exactly one"
        raise PlanError(msg)
    if modes is not None:
        m = np.asarray(modes, dtype=np.int64)
    else:
        a = np.asarray(assign, dtype=np.int64)
        m = problem.device_mode[np.arange(problem.n), a]
        if np.any(m < 0):
            v = int(np.flatnonzero(m < 0)[0])
            msg = (
                f"node {problem.names[v]!r} is placed on {problem.devices[int(a[v])]!r}, "
                "which does not support it"
            )
            raise PlanError(msg)
    if m.shape != (problem.n,) or np.any(problem.modes.op[m] != np.arange(problem.n)):
        msg = "every op needs one of its own modes"
        raise PlanError(msg)
    return m


def _transfers(
    problem: Problem,
    m: np.ndarray,
    fin: np.ndarray,
    transfer_start: Mapping[tuple[int, int], int] | None,
) -> list[tuple[int, int, int, tuple[int, ...], int]]:
    """``(tensor, from device, to device, readers there, start)`` of every transfer."""
    need: dict[tuple[int, int], list[int]] = {}
    if problem.modes.multi_device:
        devs = problem.modes.mode_devices
        for k in range(problem.num_edges):
            u, c = int(problem.edge_src[k]), int(problem.edge_dst[k])
            have = devs[int(m[u])]
            for b in devs[int(m[c])]:
                if b not in have:
                    need.setdefault((int(problem.edge_tensor[k]), b), []).append(c)
        source = [devs[int(x)] for x in m]
    else:
        first = problem.modes.devs[problem.modes.dev_start[m]]
        a_e, b_e = first[problem.edge_src], first[problem.edge_dst]
        cross = np.flatnonzero(a_e != b_e)
        for t, b, c in zip(
            problem.edge_tensor[cross].tolist(),
            b_e[cross].tolist(),
            problem.edge_dst[cross].tolist(),
            strict=True,
        ):
            need.setdefault((t, b), []).append(c)
        source = [(int(x),) for x in first]
    out = []
    for (t, b), readers in sorted(need.items()):
        u = int(problem.tensors.src[t])
        a = nearest_source(problem, t, source[u], b)
        t0 = int(fin[u])
        if transfer_start and (t, b) in transfer_start:
            t0 = int(transfer_start[(t, b)])
        out.append((t, a, b, tuple(readers), t0))
    return out


def nearest_source(problem: Problem, tensor: int, have: Sequence[int], b: int) -> int:
    """The device of ``have`` that sends ``tensor`` to ``b`` fastest (ties: lowest index)."""
    return min(have, key=lambda a: (int(problem.tensor_comm[tensor, a, b]), a))


def mode_ids(plan: Plan, problem: Problem) -> np.ndarray:
    """The problem's mode id of every op's mode in ``plan``; :class:`PlanError` if it has none.

    A mode recorded with the default precision and no tag (as plans of the first format
    are read) matches the op's device-view mode on that device.
    """
    check_membership(plan, problem)
    out = np.empty(problem.n, dtype=np.int64)
    for i, name in enumerate(problem.names):
        spec = plan.modes[name]
        try:
            out[i] = problem.mode_of(i, spec)
            continue
        except KeyError:
            pass
        m = -1
        if len(spec.devices) == 1 and spec.precision == DEFAULT_PRECISION and not spec.tag:
            m = int(problem.device_mode[i, problem.device_index[spec.devices[0]]])
        if m < 0:
            why = "does not support it" if len(spec.devices) == 1 else "has no such mode"
            if len(spec.devices) == 1 and problem.use_memory:
                why = "does not support it or cannot hold it"
            msg = f"node {name!r} is placed on {str(spec)!r}, which {why}"
            raise PlanError(msg)
        out[i] = m
    return out


def plan_transfer_starts(problem: Problem, plan: Plan) -> dict[tuple[int, int], int]:
    """Transfer start (units) per ``(tensor, destination device)``, as ``plan`` has them."""
    tensor_id = {x: t for t, x in enumerate(problem.tensors.names)}
    out = {}
    for x in plan.transfers:
        t = tensor_id.get(x.tensor)
        b = problem.device_index.get(x.dst_device)
        if t is not None and b is not None:
            out[(t, b)] = round(x.start / problem.quantum)
    return out


def schedule_arrays(plan: Plan, problem: Problem) -> tuple[np.ndarray, np.ndarray]:
    """``(assign, start)`` integer arrays of ``plan``: first device index and start unit.

    Raises :class:`PlanError` if the plan names an op or device the problem does not have.
    """
    check_membership(plan, problem)
    assign = np.array(
        [problem.device_index[plan.assignment[x]] for x in problem.names], dtype=np.int64
    )
    start = np.array([round(plan.start[x] / problem.quantum) for x in problem.names], np.int64)
    return assign, start


def check_membership(plan: Plan, problem: Problem) -> None:
    """Every op of the problem, and only those, placed on devices the platform has."""
    missing = [x for x in problem.names if x not in plan.modes]
    if missing:
        msg = f"plan does not place op {missing[0]!r} ({len(missing)} ops unplaced)"
        raise PlanError(msg)
    extra = [x for x in plan.modes if x not in problem.index]
    if extra:
        msg = f"plan places op {extra[0]!r}, which is not in graph {problem.name!r}"
        raise PlanError(msg)
    for name, spec in plan.modes.items():
        for dev in spec.devices:
            if dev not in problem.device_index:
                msg = (
                    f"plan puts op {name!r} on device {dev!r}, which is not on platform "
                    f"{problem.platform_name or '?'!r} (devices: {', '.join(problem.devices)})"
                )
                raise PlanError(msg)
        if name not in plan.start or name not in plan.finish:
            msg = f"plan has no start/finish time for op {name!r}"
            raise PlanError(msg)
