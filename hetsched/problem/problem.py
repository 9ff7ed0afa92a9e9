"""The compiled, integer-scaled scheduling problem every solver shares.

A :class:`Problem` is built once from ``(graph, platform, cost model)``: every op's execution
*modes* (:mod:`~hetsched.problem.modes`; today one per device that supports it) with integer
durations in a time quantum, every *tensor* (:mod:`~hetsched.problem.tensors`) with its
integer transfer time between each pair of devices, device capacities and links. Durations
are rounded *up*, so an integer schedule is also feasible in real time; the quantum keeps the
rounding error below 0.1% of the makespan (:func:`~hetsched.problem.quantum.choose_quantum`).
A bound of the rounded-up model is not one of the real problem: bounds are computed on the
:attr:`Problem.floored` twin (everything rounded *down*), whose optimum is at most the real one.

A Problem is immutable for real: its arrays are read-only and its invariants are checked on
construction (including ``dataclasses.replace``), so bounds cached for it cannot go stale.

Derived *device views* serve the solvers that think in (op, device) pairs: ``dur[v, d]``,
``allowed[v, d]`` and ``exec_time[v, d]`` describe the fastest single-device mode of ``v``
on ``d``; ``comm[e, a, b]`` is the transfer time of edge ``e``'s tensor. On a problem whose
modes are exactly one per (op, device) they are the whole problem; otherwise they are a
restriction (plans over them are feasible), and :meth:`Problem.relaxation` is the device
view that lower bounds are computed on.

Examples
--------
>>> import numpy as np
>>> p = Problem.from_arrays(
...     names=["a", "b"], devices=["cpu", "gpu"],
...     exec_time=np.array([[4.0, 1.0], [3.0, 2.0]]),
...     edges=[(0, 1, 10.0)], comm_latency=np.zeros((2, 2)),
...     comm_inv_bandwidth=np.array([[0.0, 0.1], [0.1, 0.0]]), quantum=1.0)
>>> p.dur.tolist()
[[4, 1], [3, 2]]
>>> int(p.comm[0, 0, 1]), int(p.comm[0, 1, 1])
(1, 0)
>>> p.single_device_makespan("gpu")
3.0
>>> p.dur[0, 0] = 7
Traceback (most recent call last):
...
ValueError: assignment destination is read-only
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

import numpy as np

from hetsched.errors import InfeasibleError, SolverError, UsageError
from hetsched.problem.arrays import frozen, own_frozen
from hetsched.problem.chains import chain_ok, close_chains, kept_layout
from hetsched.problem.constraints import Constraints, ResolvedConstraints
from hetsched.problem.modes import Modes, ModeSpec
from hetsched.problem.quantum import ROUNDING_TOLERANCE, choose_quantum
from hetsched.problem.tensors import Tensors

if TYPE_CHECKING:
    from hetsched.graph.opgraph import OpGraph

__all__ = [
    "ERROR_UNIT",
    "MAX_HORIZON",
    "STREAMED",
    "Problem",
    "check_error_budget",
    "is_streamed",
    "residency_modes",
]

# Integer horizons above this risk overflow in CP-SAT/MIP arithmetic (sums of durations).
MAX_HORIZON = 2**40
_EPS = 1e-9
# Errors and budgets are counted in integers of this many units of relative error (ops'
# errors rounded up, the budget down): every solver and the validator add the same integers.
ERROR_UNIT = 1e-9
_BIG = np.iinfo(np.int64).max


@dataclass(frozen=True, eq=False)
class Problem:
    """Integer-scaled scheduling instance (see the module docstring).

    Attributes
    ----------
    names : op names in topological order (op ``i`` is ``names[i]``).
    devices, device_kinds : device names and kinds, in platform order.
    quantum : real time (seconds, or graph units) of one integer time unit.
    units : ``"s"`` or the graph's own unit label.
    modes : every execution mode of every op; ``mode_dur`` their integer durations.
    tensors : every tensor; ``tensor_comm[t, a, b]`` its integer transfer time from device
        ``a`` to ``b`` (0 on the diagonal).
    route_links : link indices used by a transfer from ``a`` to ``b``; ``link_names``.
    capacity : bytes per device (``inf`` = no limit).
    use_memory, link_contention : which optional constraints are on.
    error_budget : the most output error the modes of a plan may add together (the sum of
        ``modes.error``, in units of :data:`ERROR_UNIT`: :attr:`mode_error_units`); ``None``
        for no limit.
    constraints : the user's pins, forbids, colocated groups and segment cap
        (:mod:`~hetsched.problem.constraints`; pins and forbids already removed the modes
        they rule out), ``None`` for none.
    tensor_comm_floor : the real transfer times rounded *down* (``None``: not known, taken as
        ``tensor_comm - 1`` where positive; dropped when it does not fit ``tensor_comm``),
        for :attr:`floored`.
    """

    names: tuple[str, ...]
    devices: tuple[str, ...]
    device_kinds: tuple[str, ...]
    quantum: float
    units: str
    modes: Modes
    mode_dur: np.ndarray
    tensors: Tensors
    tensor_comm: np.ndarray
    route_links: Mapping[tuple[int, int], tuple[int, ...]]
    link_names: tuple[str, ...]
    capacity: np.ndarray
    use_memory: bool = False
    link_contention: bool = False
    error_budget: float | None = None
    name: str = "problem"
    platform_name: str = ""
    graph_sha256: str = ""
    meta: Mapping[str, Any] = field(default_factory=dict)
    tensor_comm_floor: np.ndarray | None = None
    constraints: ResolvedConstraints | None = None

    def __post_init__(self) -> None:
        n, d = len(self.names), len(self.devices)
        if n == 0 or d == 0:
            msg = "problem needs at least one node and one device"
            raise SolverError(msg)
        if len(set(self.names)) != n:
            msg = "problem: op names must be unique"
            raise SolverError(msg)
        if len(self.device_kinds) != d:
            msg = "problem: one kind per device"
            raise SolverError(msg)
        if not (self.quantum > 0 and math.isfinite(self.quantum)):
            msg = f"time quantum must be positive and finite, got {self.quantum!r}"
            raise SolverError(msg)
        if self.modes.num_ops != n:
            msg = f"problem: modes cover {self.modes.num_ops} ops, the problem has {n}"
            raise SolverError(msg)
        if self.modes.devs.size and (self.modes.devs.min() < 0 or self.modes.devs.max() >= d):
            msg = "problem: a mode names a device index out of range"
            raise SolverError(msg)
        dur = np.asarray(self.mode_dur)
        if dur.shape != (self.modes.num_modes,) or dur.dtype != np.int64 or np.any(dur < 0):
            msg = "problem: mode_dur must be non-negative int64, one per mode"
            raise SolverError(msg)
        t = self.tensors.num_tensors
        if self.tensors.cons.size and self.tensors.cons.max() >= n:
            msg = "problem: a tensor consumer is out of range"
            raise SolverError(msg)
        comm = np.asarray(self.tensor_comm)
        if comm.shape != (t, d, d) or comm.dtype != np.int64 or np.any(comm < 0):
            msg = f"problem: tensor_comm must be non-negative int64 of shape {(t, d, d)}"
            raise SolverError(msg)
        if t and np.any(comm[:, np.arange(d), np.arange(d)] != 0):
            msg = "problem: a transfer to the same device must take 0"
            raise SolverError(msg)
        cap = np.asarray(self.capacity)
        if cap.shape != (d,) or np.any(np.isnan(cap)) or np.any(cap < 0):
            msg = f"problem: capacity must be {d} non-negative numbers"
            raise SolverError(msg)
        if self.error_budget is not None:
            check_error_budget(self.error_budget)
        low = self.tensor_comm_floor
        if low is not None and (np.shape(low) != comm.shape or np.any(low > comm)):
            # stale (``dataclasses.replace`` with other tensors): not known any more
            object.__setattr__(self, "tensor_comm_floor", None)
        own_frozen(self, "mode_dur", "tensor_comm", "capacity")
        if self.tensor_comm_floor is not None:
            own_frozen(self, "tensor_comm_floor")
        object.__setattr__(self, "route_links", MappingProxyType(dict(self.route_links)))
        object.__setattr__(self, "meta", MappingProxyType(dict(self.meta)))

    # ------------------------------------------------------------------ construction
    @classmethod
    def build(
        cls,
        graph: OpGraph,
        platform: Any,
        cost_model: Any = None,
        *,
        memory: bool | None = None,
        link_contention: bool = False,
        quantum: float | None = None,
        errors: Mapping[str, Mapping[str, float]] | None = None,
        error_budget: float | None = None,
        split: bool = False,
        constraints: Constraints | None = None,
        ports: bool = False,
    ) -> Problem:
        """Compile ``graph`` on ``platform`` (a ``Platform`` or preset name).

        ``memory``: whether plans must fit every device's capacity at every instant
        (:mod:`hetsched.plan.memory`); by default on when some device declares a finite
        capacity. ``errors[op][precision]``: the output error an op adds when it computes in
        ``precision`` (``int8``, ``float16``, ``bfloat16``: a sensitivity table); with a
        positive ``error_budget`` each op may also run in those precisions
        (:mod:`hetsched.costmodel.precision`) as long as the errors of a plan's modes add
        up to at most the budget. Without a budget, or with 0, every op runs as exported.
        ``split``: heavy ops may also run tensor-parallel across identical devices
        (:mod:`hetsched.costmodel.sharding`: linear layers by output features,
        convolutions by output channels, attention by heads). ``constraints``: the user's
        pins, forbids, colocated groups and segment cap (:meth:`with_constraints`).
        ``ports``: one-port transfers (:meth:`with_ports`)."""
        from hetsched.costmodel import Platform, build_cost_table
        from hetsched.graph.formats import graph_sha256

        if isinstance(platform, str):
            platform = Platform.preset(platform)
        table = build_cost_table(graph, platform, cost_model)
        if memory is None:
            memory = bool(np.isfinite(table.capacity).any())
        index = {x.name: i for i, x in enumerate(graph.nodes)}
        tensors = Tensors.build(
            len(graph.nodes),
            [
                (index[t.src], [index[x] for x in t.dsts], t.bytes, t.name, t.dtype)
                for t in graph.tensors
            ],
        )
        if error_budget is not None:
            check_error_budget(error_budget)
        lowered = (
            _lowered_tables(graph, platform, cost_model, errors) if errors and error_budget else []
        )
        splits = []
        if split:
            from hetsched.costmodel.sharding import split_modes
            from hetsched.costmodel.tokens import token_modes

            low = [(p, e) for p, _, e in lowered]
            splits = split_modes(graph, platform, cost_model, lowered=low, table=table)
            splits += token_modes(graph, platform, cost_model, lowered=low, table=table)
        modes = residency_modes(
            table, [x.dtype for x in graph.nodes], memory=memory, lowered=lowered, splits=splits
        )
        built = cls.from_modes(
            names=[x.name for x in graph.nodes],
            devices=list(table.device_names),
            device_kinds=list(table.device_kinds),
            modes=modes,
            tensors=tensors,
            comm_latency=table.comm_latency,
            comm_inv_bandwidth=table.comm_inv_bandwidth,
            route_links=table.route_links,
            link_names=table.link_names,
            capacity=table.capacity,
            use_memory=memory,
            link_contention=link_contention,
            quantum=quantum,
            units=table.units,
            error_budget=error_budget if lowered else None,
            name=graph.name,
            platform_name=platform.name,
            graph_sha256=graph_sha256(graph),
        )
        if constraints:
            built = built.with_constraints(constraints, [x.module for x in graph.nodes])
        return built.with_ports() if ports else built

    @classmethod
    def from_arrays(
        cls,
        *,
        names: Sequence[str],
        devices: Sequence[str],
        exec_time: np.ndarray,
        edges: Sequence[tuple[int, int, float]] = (),
        tensors: Sequence[tuple[int, Sequence[int], float]] | None = None,
        comm_latency: np.ndarray | None = None,
        comm_inv_bandwidth: np.ndarray | None = None,
        device_kinds: Sequence[str] | None = None,
        route_links: Mapping[tuple[int, int], tuple[int, ...]] | None = None,
        link_names: Sequence[str] = (),
        memory_bytes: np.ndarray | None = None,
        capacity: np.ndarray | None = None,
        use_memory: bool = False,
        link_contention: bool = False,
        quantum: float | None = None,
        units: str = "s",
        name: str = "problem",
        platform_name: str = "",
        graph_sha256: str = "",
    ) -> Problem:
        """One mode per (op, device) with a finite ``exec_time[op, device]`` (tests, peers).

        Data moves as ``edges`` (index triples, one tensor each) or as ``tensors``
        ``(producer, consumers, bytes)``, not both.
        """
        n, d = len(names), len(devices)
        ex = np.asarray(exec_time, dtype=np.float64)
        if ex.shape != (n, d):
            msg = f"exec_time has shape {ex.shape}, expected ({n}, {d})"
            raise SolverError(msg)
        if n == 0 or d == 0:
            msg = "problem needs at least one node and one device"
            raise SolverError(msg)
        if np.isnan(ex).any() or (ex < 0).any():
            i, j = np.argwhere(np.isnan(ex) | (ex < 0))[0]
            msg = f"node {names[i]!r} on {devices[j]!r}: execution time {ex[i, j]!r} is invalid"
            raise InfeasibleError(msg)
        bad = np.flatnonzero(~np.isfinite(ex).any(axis=1))
        if bad.size:
            msg = f"op {names[bad[0]]!r} is supported by no device (tried {', '.join(devices)})"
            raise InfeasibleError(msg)
        if tensors is not None and len(edges):
            msg = "give edges or tensors, not both"
            raise SolverError(msg)
        for u, v, _b in edges:
            if int(u) >= int(v):
                msg = f"edge {names[int(u)]!r} -> {names[int(v)]!r} is not in topological order"
                raise SolverError(msg)
        rows: list[tuple[int, tuple[int, ...], float, str]] = []
        if tensors is None:
            rows = [
                (int(u), (int(v),), float(b), f"{names[int(u)]}->{names[int(v)]}")
                for u, v, b in edges
            ]
        else:
            count: dict[int, int] = {}
            for row in tensors:
                u, cs, b = int(row[0]), row[1], float(row[2])
                k = count[u] = count.get(u, -1) + 1
                label = str(row[3]) if len(row) > 3 else f"{names[u]}:{k}"  # type: ignore[misc]
                rows.append((u, tuple(int(c) for c in cs), b, label))
        tens = Tensors.build(n, rows)
        return cls.from_modes(
            names=names,
            devices=devices,
            device_kinds=device_kinds,
            modes=Modes.device_modes(ex, memory=memory_bytes),
            tensors=tens,
            comm_latency=comm_latency,
            comm_inv_bandwidth=comm_inv_bandwidth,
            route_links=route_links,
            link_names=link_names,
            capacity=capacity,
            use_memory=use_memory,
            link_contention=link_contention,
            quantum=quantum,
            units=units,
            name=name,
            platform_name=platform_name,
            graph_sha256=graph_sha256,
        )

    @classmethod
    def from_modes(
        cls,
        *,
        names: Sequence[str],
        devices: Sequence[str],
        modes: Modes,
        tensors: Tensors,
        comm_latency: np.ndarray | None = None,
        comm_inv_bandwidth: np.ndarray | None = None,
        device_kinds: Sequence[str] | None = None,
        route_links: Mapping[tuple[int, int], tuple[int, ...]] | None = None,
        link_names: Sequence[str] = (),
        capacity: np.ndarray | None = None,
        use_memory: bool = False,
        link_contention: bool = False,
        quantum: float | None = None,
        units: str = "s",
        name: str = "problem",
        platform_name: str = "",
        graph_sha256: str = "",
        error_budget: float | None = None,
    ) -> Problem:
        """The general constructor: real-time modes and tensors, scaled to integer units.

        With ``use_memory``, modes that cannot fit their devices alone are dropped
        (:class:`InfeasibleError` if an op loses every mode).
        """
        d = len(devices)
        lat = np.zeros((d, d)) if comm_latency is None else np.asarray(comm_latency, float)
        inv = (
            np.zeros((d, d))
            if comm_inv_bandwidth is None
            else np.asarray(comm_inv_bandwidth, float)
        )
        comm_real = lat[None, :, :] + tensors.nbytes[:, None, None] * inv[None, :, :]
        comm_real[:, np.arange(d), np.arange(d)] = 0.0
        if not np.isfinite(comm_real).all() or (comm_real < 0).any():
            t, a, b = np.argwhere(~np.isfinite(comm_real) | (comm_real < 0))[0]
            src = names[int(tensors.src[t])]
            dst = names[int(tensors.consumers(int(t))[0])]
            msg = (
                f"edge {src!r} -> {dst!r}: no valid transfer from {devices[a]!r} to {devices[b]!r}"
            )
            raise InfeasibleError(msg)
        cap = np.full(d, np.inf) if capacity is None else np.asarray(capacity, float).copy()
        if use_memory:
            modes = _fitting_modes(modes, cap, names)
        if any(kept_layout(t) for t in modes.tag):
            keep = close_chains(
                modes, _consumers(tensors, len(names)), np.ones(modes.num_modes, bool)
            )
            modes = modes.select(np.flatnonzero(keep)) if not keep.all() else modes
        q = quantum if quantum is not None else _quantum(modes, comm_real, tensors)
        if not (q > 0 and math.isfinite(q)):
            msg = f"time quantum must be positive and finite, got {q!r}"
            raise SolverError(msg)
        scaled_max = max(float(modes.time.max(initial=0.0)), float(comm_real.max(initial=0.0)))
        if scaled_max / q > MAX_HORIZON:
            msg = (
                f"durations overflow the integer time scale: a duration of {scaled_max:g} is "
                f"{scaled_max / q:.3g} quanta of {q:g} (limit {MAX_HORIZON}): absurd cost"
            )
            raise SolverError(msg)
        mode_dur = np.ceil(modes.time / q - _EPS).astype(np.int64)
        comm = np.ceil(comm_real / q - _EPS).astype(np.int64)
        comm_floor = np.minimum(np.floor(comm_real / q + _EPS).astype(np.int64), comm)
        horizon = int(np.maximum.reduceat(mode_dur, modes.op_start[:-1]).sum())
        horizon += int(comm.max(axis=(1, 2)).sum()) if comm.size else 0
        if horizon > MAX_HORIZON:
            msg = (
                f"durations overflow the integer time scale: horizon {horizon} units of {q:g} "
                f"exceeds {MAX_HORIZON}; a cost or size is absurdly large"
            )
            raise SolverError(msg)
        kinds = tuple(device_kinds) if device_kinds is not None else tuple("cpu" for _ in devices)
        return cls(
            names=tuple(names),
            devices=tuple(devices),
            device_kinds=kinds,
            quantum=float(q),
            units=units,
            modes=modes,
            mode_dur=mode_dur,
            tensors=tensors,
            tensor_comm=comm,
            route_links=dict(route_links or {}),
            link_names=tuple(link_names),
            capacity=cap,
            use_memory=use_memory,
            link_contention=link_contention,
            error_budget=error_budget,
            name=name,
            platform_name=platform_name,
            graph_sha256=graph_sha256,
            tensor_comm_floor=comm_floor,
        )

    # ------------------------------------------------------------------ error budget
    @cached_property
    def mode_error_units(self) -> np.ndarray:
        """Each mode's error in integer :data:`ERROR_UNIT` (rounded up)."""
        return frozen(np.ceil(self.modes.err / ERROR_UNIT - 1e-6).astype(np.int64))

    @property
    def error_budget_units(self) -> int | None:
        """The budget in integer :data:`ERROR_UNIT` (rounded down), ``None`` without one."""
        if self.error_budget is None:
            return None
        if math.isinf(self.error_budget):
            return 2**62
        return math.floor(self.error_budget / ERROR_UNIT + 1e-6)

    @property
    def has_error_modes(self) -> bool:
        """Whether some mode adds error (precision is a decision)."""
        return bool(np.any(self.modes.err > 0))

    # ------------------------------------------------------------------ sizes and indices
    @property
    def n(self) -> int:
        return len(self.names)

    @property
    def num_devices(self) -> int:
        return len(self.devices)

    @property
    def num_edges(self) -> int:
        return int(self.edge_src.size)

    @property
    def num_modes(self) -> int:
        return self.modes.num_modes

    @cached_property
    def index(self) -> Mapping[str, int]:
        return MappingProxyType({x: i for i, x in enumerate(self.names)})

    @cached_property
    def device_index(self) -> Mapping[str, int]:
        return MappingProxyType({x: i for i, x in enumerate(self.devices)})

    # ------------------------------------------------------------------ edges (derived)
    @property
    def edge_src(self) -> np.ndarray:
        """Producer op of each (tensor, consumer) edge."""
        return self.tensors.edge_src

    @property
    def edge_dst(self) -> np.ndarray:
        return self.tensors.edge_dst

    @property
    def edge_tensor(self) -> np.ndarray:
        """The tensor each edge carries."""
        return self.tensors.edge_tensor

    @cached_property
    def edge_bytes(self) -> np.ndarray:
        return frozen(self.tensors.nbytes[self.edge_tensor])

    @cached_property
    def comm(self) -> np.ndarray:
        """``[E, D, D]`` integer transfer time of each edge's tensor between device pairs."""
        return frozen(self.tensor_comm[self.edge_tensor])

    @cached_property
    def preds(self) -> tuple[tuple[tuple[int, int], ...], ...]:
        """``preds[v]`` = ((u, edge id), ...)."""
        out: list[list[tuple[int, int]]] = [[] for _ in range(self.n)]
        for k, (u, v) in enumerate(
            zip(self.edge_src.tolist(), self.edge_dst.tolist(), strict=True)
        ):
            out[v].append((u, k))
        return tuple(tuple(x) for x in out)

    @cached_property
    def succs(self) -> tuple[tuple[tuple[int, int], ...], ...]:
        """``succs[u]`` = ((v, edge id), ...)."""
        out: list[list[tuple[int, int]]] = [[] for _ in range(self.n)]
        for k, (u, v) in enumerate(
            zip(self.edge_src.tolist(), self.edge_dst.tolist(), strict=True)
        ):
            out[u].append((v, k))
        return tuple(tuple(x) for x in out)

    # ------------------------------------------------------------------ modes and device views
    @cached_property
    def has_chains(self) -> bool:
        """Whether some mode keeps its output sharded (:mod:`~hetsched.problem.chains`)."""
        return any(kept_layout(t) is not None for t in self.modes.tag)

    @cached_property
    def chain_rules(self) -> tuple[tuple[int, int, np.ndarray], ...]:
        """``(mode, consumer, modes of the consumer that may follow it)`` for every mode
        that keeps its output sharded and every op reading it."""
        out = []
        for k, tag in enumerate(self.modes.tag):
            if kept_layout(tag) is None:
                continue
            for v, _ in self.succs[int(self.modes.op[k])]:
                ids = self.modes.ops_modes(v)
                ok = np.array([j for j in ids.tolist() if chain_ok(self.modes, k, j)], np.int64)
                out.append((k, v, frozen(ok)))
        return tuple(out)

    def without_chains(self) -> Problem:
        """The problem without the modes that keep outputs sharded (a restriction);
        :class:`SolverError` if some op has no other mode."""
        if not self.has_chains:
            return self
        keep = [k for k, t in enumerate(self.modes.tag) if kept_layout(t) is None]
        return self.select_modes(np.array(keep, dtype=np.int64))

    @cached_property
    def is_device_table(self) -> bool:
        """True when the modes are exactly one single-device mode per allowed (op, device).

        Then the device views are the whole problem, and a solver that works on them solves
        the question asked; otherwise they are a restriction.
        """
        return self.modes.is_device_table(self.num_devices)

    @cached_property
    def device_mode(self) -> np.ndarray:
        """``[n, D]`` the fastest single-device mode of each op on each device (-1: none)."""
        return self.modes.single(self.num_devices)

    @cached_property
    def allowed(self) -> np.ndarray:
        """``[n, D]`` whether the op has a single-device mode on the device."""
        return frozen(self.device_mode >= 0)

    @cached_property
    def dur(self) -> np.ndarray:
        """``[n, D]`` integer duration of :attr:`device_mode` (0 where not allowed)."""
        dm = self.device_mode
        return frozen(np.where(dm >= 0, self.mode_dur[np.maximum(dm, 0)], 0).astype(np.int64))

    @cached_property
    def exec_time(self) -> np.ndarray:
        """``[n, D]`` real time of :attr:`device_mode` (``inf`` where not allowed)."""
        dm = self.device_mode
        return frozen(np.where(dm >= 0, self.modes.time[np.maximum(dm, 0)], np.inf))

    @cached_property
    def dev_memory(self) -> np.ndarray:
        """``[n, D]`` bytes :attr:`device_mode` holds on its device (0 where not allowed)."""
        dm = self.device_mode
        return frozen(np.where(dm >= 0, self.modes.memory[np.maximum(dm, 0)], 0.0))

    @cached_property
    def memory(self) -> np.ndarray:
        """Bytes each op holds on whichever device view it runs on (the largest of them)."""
        return frozen(self.dev_memory.max(axis=1))

    @cached_property
    def allowed_devices(self) -> tuple[tuple[int, ...], ...]:
        return tuple(tuple(np.flatnonzero(row).tolist()) for row in self.allowed)

    @cached_property
    def min_dur(self) -> np.ndarray:
        """Fastest duration of each op over all its modes (int64 ``[n]``)."""
        return frozen(np.minimum.reduceat(self.mode_dur, self.modes.op_start[:-1]))

    def mode_of(self, v: int, spec: ModeSpec) -> int:
        """The id of op ``v``'s mode ``spec``; :class:`KeyError` if it has none such."""
        return self._mode_ids[(v, spec)]

    @cached_property
    def _mode_ids(self) -> Mapping[tuple[int, ModeSpec], int]:
        return {
            (int(self.modes.op[m]), self.modes.describe(m, self.devices)): m
            for m in range(self.num_modes)
        }

    def restrict(self, keep: np.ndarray, *, name: str | None = None) -> Problem:
        """The same problem with only the modes whose every device ``keep[op, device]`` allows.

        ``keep`` is a bool ``[n, D]`` mask (pin an op: one ``True`` in its row; lose a device:
        a ``False`` column). :class:`InfeasibleError` names an op left with no mode.
        """
        keep = np.asarray(keep, dtype=bool)
        if keep.shape != (self.n, self.num_devices):
            msg = f"restrict: mask has shape {keep.shape}, expected {(self.n, self.num_devices)}"
            raise SolverError(msg)
        ok = np.array(
            [
                bool(keep[int(self.modes.op[m]), list(self.modes.devices_of(m))].all())
                for m in range(self.num_modes)
            ],
            dtype=bool,
        )
        left = np.bincount(self.modes.op[ok], minlength=self.n)
        if np.any(left == 0):
            v = int(np.flatnonzero(left == 0)[0])
            msg = f"op {self.names[v]!r} has no mode left on the devices it may use"
            raise InfeasibleError(msg)
        if ok.all():
            return self
        return self.select_modes(np.flatnonzero(ok), name=name)

    def select_modes(self, kept: np.ndarray, *, name: str | None = None) -> Problem:
        """The same problem with only the modes ``kept`` (sorted ids; every op keeps one)."""
        kept = np.asarray(kept, dtype=np.int64)
        if self.has_chains:
            mask = np.zeros(self.num_modes, dtype=bool)
            mask[kept] = True
            kept = np.flatnonzero(close_chains(self.modes, _consumers(self.tensors, self.n), mask))
        return dataclasses.replace(
            self,
            modes=self.modes.select(kept),
            mode_dur=self.mode_dur[kept].copy(),
            name=self.name if name is None else name,
        )

    def with_constraints(
        self, constraints: Constraints, modules: Sequence[str] | None = None
    ) -> Problem:
        """The problem under the user's ``constraints`` (``modules``: each op's module path,
        for selectors): modes a pin or forbid rules out are dropped, groups and the segment
        cap recorded. :class:`InfeasibleError` naming the rules that leave an op, or a
        colocated group, no device."""
        from hetsched.problem.constraints import check_devices_left

        resolved = constraints.resolve(
            self.names, modules or [""] * self.n, self.devices, self.device_kinds
        )
        keep = np.array(
            [resolved.allowed[int(self.modes.op[m]), list(self.modes.devices_of(m))].all()
             for m in range(self.num_modes)], dtype=bool
        )  # fmt: skip
        supported = np.zeros((self.n, self.num_devices), dtype=bool)
        for m in np.flatnonzero(keep).tolist():
            supported[int(self.modes.op[m]), list(self.modes.devices_of(m))] = True
        check_devices_left(resolved, supported, self.names)
        base = self if keep.all() else self.select_modes(np.flatnonzero(keep))
        return dataclasses.replace(base, constraints=resolved)

    def with_ports(self) -> Problem:
        """One-port transfers: each device sends at most one transfer and receives at most one
        at a time (DMA engines; the published placement MILPs). Every transfer also holds its
        source's out-port and its destination's in-port, modelled as two more links on its
        route, and link contention is turned on (real links keep contending only if they
        already did), so every solver and the validator that handle links handle ports.

        >>> import numpy as np
        >>> p = Problem.from_arrays(names=["a", "b"], devices=["x", "y"],
        ...     exec_time=np.ones((2, 2)), edges=[(0, 1, 1.0)], quantum=1.0).with_ports()
        >>> p.link_contention, [p.link_names[k] for k in p.route_links[(0, 1)]]
        (True, ['x.out', 'y.in'])
        """
        d = self.num_devices
        base = len(self.link_names)
        routes = {}
        for a in range(d):
            for b in range(d):
                if a != b:
                    own = tuple(self.route_links.get((a, b), ())) if self.link_contention else ()
                    routes[(a, b)] = (*own, base + a, base + d + b)
        ports = [f"{x}.out" for x in self.devices] + [f"{x}.in" for x in self.devices]
        return dataclasses.replace(
            self,
            route_links=routes,
            link_names=(*self.link_names, *ports),
            link_contention=True,
        )

    def with_memory(self, capacity: np.ndarray, op_memory: np.ndarray | None = None) -> Problem:
        """Memory constraints on: device ``capacity`` (bytes), and, if given, the bytes each
        op holds in every one of its modes. Modes that cannot fit alone are dropped."""
        cap = np.asarray(capacity, dtype=np.float64).copy()
        modes = self.modes
        if op_memory is not None:
            mem = np.asarray(op_memory, dtype=np.float64)
            if mem.shape != (self.n,):
                msg = f"op_memory has shape {mem.shape}, expected ({self.n},)"
                raise SolverError(msg)
            modes = dataclasses.replace(
                modes, memory=mem[modes.op].copy(), weights=mem[modes.op].copy()
            )
        fit = _fitting_modes(modes, cap, self.names)
        kept = (
            np.arange(self.num_modes)
            if fit is modes
            else np.array([self._mode_key_index[k] for k in _mode_keys(fit)], dtype=np.int64)
        )
        return dataclasses.replace(
            self, modes=fit, mode_dur=self.mode_dur[kept].copy(), capacity=cap, use_memory=True
        )

    @cached_property
    def _mode_key_index(self) -> Mapping[tuple[int, tuple[int, ...], str, str], int]:
        return {k: m for m, k in enumerate(_mode_keys(self.modes))}

    def describe_mode(self, m: int) -> ModeSpec:
        """Mode ``m`` by value (device names, precision, tag)."""
        return self.modes.describe(m, self.devices)

    def single_device_makespan(self, device: str) -> float | None:
        """Real time with every op on ``device`` (no transfers); None if it refuses an op."""
        d = self.device_index[device]
        if not self.allowed[:, d].all():
            return None
        return float(self.dur[:, d].sum()) * self.quantum

    # ------------------------------------------------------------------ relaxation for bounds
    def relaxation(self) -> Problem:
        """:attr:`relaxed`: the device-view problem lower bounds are computed on."""
        return self.relaxed

    @cached_property
    def relaxed(self) -> Problem:
        """A device-view problem whose optimum is at most this problem's: bounds go here.

        Each op may run on any device of any of its modes, for the fastest such mode's
        duration, alone; a tensor moves for free between devices that share a mode of its
        producer and otherwise from the nearest of them. Any schedule of this problem maps
        to one of the relaxation (each op on one device of its mode) with the same times.
        Returns ``self`` when the modes are already one per (op, device).
        """
        if self.is_device_table:
            return self
        d = self.num_devices
        rows = []
        co = np.zeros((self.n, d, d), dtype=bool)  # co[v, a, b]: a, b share a mode of v
        for v in range(self.n):
            co[v, np.arange(d), np.arange(d)] = True
            best: dict[int, tuple[int, float, float]] = {}
            for m in self.modes.ops_modes(v).tolist():
                devs = self.modes.devices_of(m)
                for a in devs:
                    cand = (
                        int(self.mode_dur[m]),
                        float(self.modes.memory[m]),
                        float(self.modes.time[m]),
                    )
                    if a not in best or cand < best[a]:
                        best[a] = cand
                    co[v, a, list(devs)] = True
            rows += [(v, (a,), *best[a]) for a in sorted(best)]
        modes = Modes.build(self.n, [(v, ds, time, mem) for v, ds, _, mem, time in rows])
        mode_dur = np.array([r[2] for r in rows], dtype=np.int64)
        # comm[t, a, b] = 0 when a and b share a mode of t's producer, else the cheapest
        # transfer to b from a device sharing a mode with a.
        comm = self.tensor_comm.copy()
        for t in range(self.tensors.num_tensors):
            share = co[int(self.tensors.src[t])]
            via = np.where(share[:, :, None], self.tensor_comm[t][None, :, :], _BIG)
            comm[t] = np.where(share, 0, via.min(axis=1))
        return dataclasses.replace(
            self,
            modes=modes,
            mode_dur=mode_dur,
            tensor_comm=comm,
            tensor_comm_floor=comm if self.exact else None,
            use_memory=False,
            link_contention=False,
            name=f"{self.name}/relaxed",
        )

    # ------------------------------------------------------------------ rounding
    @cached_property
    def mode_dur_floor(self) -> np.ndarray:
        """Each mode's real duration rounded *down* to whole quanta (at most ``mode_dur``)."""
        low = np.floor(self.modes.time / self.quantum + _EPS).astype(np.int64)
        return frozen(np.clip(low, 0, self.mode_dur))

    @cached_property
    def exact(self) -> bool:
        """Whether every duration and transfer is a whole number of quanta (to 1e-9 of one):
        then the integer model *is* the real problem, and its bounds are the real ones."""
        low = self.tensor_comm_floor
        return (
            low is not None
            and bool(np.array_equal(low, self.tensor_comm))
            and bool(np.array_equal(self.mode_dur_floor, self.mode_dur))
        )

    @property
    def tolerance(self) -> float:
        """The relative tolerance of ``optimal`` for plans of this problem: 0 when
        :attr:`exact`, else :data:`~hetsched.problem.quantum.ROUNDING_TOLERANCE`."""
        return 0.0 if self.exact else ROUNDING_TOLERANCE

    @cached_property
    def floored(self) -> Problem:
        """The twin with every duration and transfer rounded *down*: bounds go here.

        Any real-valued schedule of this problem, its times divided by the quantum and
        rounded down, is a schedule of the twin (rounding down keeps every ``a <= b`` and
        only shortens durations, so precedence, device and link order and memory liveness
        hold), so the twin's optimum, times the quantum, is at most the real optimum; any
        bound of the twin is a bound of the real problem. ``self`` when :attr:`exact`.
        """
        if self.exact:
            return self
        comm = self.tensor_comm_floor
        if comm is None:
            comm = np.maximum(self.tensor_comm - 1, 0)
        dur = self.mode_dur_floor
        return dataclasses.replace(
            self,
            modes=dataclasses.replace(self.modes, time=dur * self.quantum),
            mode_dur=dur.copy(),
            tensor_comm=comm.copy(),
            tensor_comm_floor=comm.copy(),
            name=f"{self.name}/floored",
        )

    # ------------------------------------------------------------------ symmetry
    @cached_property
    def device_groups(self) -> tuple[tuple[int, ...], ...]:
        """Classes of interchangeable devices: same modes, same transfer costs to others.

        Used for symmetry breaking. Two devices ``a, b`` are interchangeable when swapping them
        maps the problem onto itself.
        """
        d = self.num_devices
        groups: list[list[int]] = []
        for a in range(d):
            for g in groups:
                if self._interchangeable(g[0], a):
                    g.append(a)
                    break
            else:
                groups.append([a])
        return tuple(tuple(g) for g in groups)

    def _interchangeable(self, a: int, b: int) -> bool:
        if self.modes.multi_device or not self.is_device_table:
            return False
        if not np.array_equal(self.allowed[:, a], self.allowed[:, b]):
            return False
        if not np.array_equal(self.dur[:, a], self.dur[:, b]):
            return False
        if not np.array_equal(self.dev_memory[:, a], self.dev_memory[:, b]):
            return False
        if self.capacity[a] != self.capacity[b]:
            return False
        perm = np.arange(self.num_devices)
        perm[a], perm[b] = b, a
        tc = self.tensor_comm
        if tc.size and not np.array_equal(tc, tc[:, perm][:, :, perm]):
            return False
        return not (self.link_contention and self.route_links)


STREAMED = "streamed"


def is_streamed(tag: str) -> bool:
    """Whether a mode ``tag`` streams its weights (``streamed``, or a split's ``+streamed``).

    >>> is_streamed("streamed"), is_streamed("split:column+streamed"), is_streamed("split:heads")
    (True, True, False)
    """
    return tag == STREAMED or tag.endswith("+" + STREAMED)


def check_error_budget(budget: float) -> float:
    """``budget`` if it is a number >= 0 (``inf``: no limit), else :class:`UsageError`."""
    if isinstance(budget, bool) or not isinstance(budget, int | float) or not budget >= 0:
        msg = f"error budget must be a number >= 0, got {budget!r}"
        raise UsageError(msg)
    return float(budget)


def _lowered_tables(
    graph: Any, platform: Any, cost_model: Any, errors: Mapping[str, Mapping[str, float]]
) -> list[tuple[str, Any, np.ndarray]]:
    """``(precision, table, error per op)`` for each precision ``errors`` names."""
    from hetsched.costmodel.device import peak_for
    from hetsched.costmodel.precision import PRECISIONS, precision_table

    names = {x.name for x in graph.nodes}
    unknown = sorted(set(errors) - names)
    if unknown:
        msg = f"errors name op {unknown[0]!r}, which graph {graph.name!r} does not have"
        raise UsageError(msg)
    out = []
    for p in sorted({q for row in errors.values() for q in row}):
        if p not in PRECISIONS:
            msg = f"unknown precision {p!r} in the errors (choose from {', '.join(PRECISIONS)})"
            raise UsageError(msg)
        if not any(peak_for(d, p) for d in platform.devices):
            msg = f"no device of {platform.name!r} computes in {p}"
            raise UsageError(msg)
        err = np.array([float(errors.get(x.name, {}).get(p, np.inf)) for x in graph.nodes])
        bad = [x.name for x, e in zip(graph.nodes, err, strict=True) if np.isnan(e) or e < 0]
        if bad:
            msg = f"error of op {bad[0]!r} in {p} must be a number >= 0"
            raise UsageError(msg)
        out.append((p, precision_table(graph, platform, p, cost_model), err))
    return out


def residency_modes(
    table: Any,
    precision: Sequence[str],
    *,
    memory: bool,
    lowered: Sequence[tuple[str, Any, np.ndarray]] = (),
    splits: Sequence[Any] = (),
) -> Modes:
    """The modes of a cost table: each op on each device that runs it with its weights
    resident, and, where the device can stream weights (``table.streamed`` finite), with
    them streamed (tag ``"streamed"``: slower, holding only the op's outputs) when that can
    matter:

    * always when the weights alone exceed the device's capacity (they cannot stay: the
      resident mode is then dropped, with or without memory constraints);
    * with ``memory``, when everything the device might hold (every mode it could run plus a
      buffer for each tensor its ops read) exceeds its capacity. Otherwise every plan's
      weights fit resident, which is faster, so streamed modes could never help.

    ``lowered`` adds, for each ``(precision, table, error)``, the same modes from ``table``
    (the ops computed in ``precision``: :func:`hetsched.costmodel.precision.precision_table`)
    for every op whose ``error[v]`` is finite, each adding that error.

    >>> import numpy as np
    >>> from types import SimpleNamespace
    >>> t = SimpleNamespace(exec=np.array([[1.0, 1.0]]), streamed=np.array([[np.inf, 4.0]]),
    ...     memory=np.array([12.0]), weights=np.array([10.0]), capacity=np.array([99.0, 8.0]),
    ...     edge_dst=np.zeros(0, int), edge_bytes=np.zeros(0))
    >>> m = residency_modes(t, ["float32"], memory=False)
    >>> [(m.devices_of(k), m.tag[k], float(m.time[k])) for k in range(m.num_modes)]
    [((0,), '', 1.0), ((1,), 'streamed', 4.0)]
    """
    ex = np.asarray(table.exec, dtype=np.float64)
    streamed = getattr(table, "streamed", None)
    mem = np.asarray(table.memory, dtype=np.float64)
    weights = getattr(table, "weights", None)
    w = None if weights is None else np.asarray(weights, dtype=np.float64)
    no_stream = streamed is None or w is None or not np.isfinite(streamed).any()
    if no_stream and not lowered and not splits:
        return Modes.device_modes(ex, memory=mem, precision=precision, weights=w)
    if w is None:
        w = mem
    cap = np.asarray(table.capacity, dtype=np.float64)
    n, nd = ex.shape
    tight = np.zeros(nd, dtype=bool)
    if memory:
        allowed = np.isfinite(ex)
        inputs = np.asarray(table.edge_bytes, np.float64)[:, None] * allowed[table.edge_dst]
        tight = (mem[:, None] * allowed).sum(axis=0) + inputs.sum(axis=0) > cap
    rows: list[tuple[Any, ...]] = []
    variants = [(list(precision), table, np.zeros(n))]
    variants += [([p] * n, t, np.asarray(e, np.float64)) for p, t, e in lowered]
    for labels, t, error in variants:
        ex_t = np.asarray(t.exec, dtype=np.float64)
        st_t = getattr(t, "streamed", None)
        st_t = np.full(ex_t.shape, np.inf) if st_t is None else np.asarray(st_t, np.float64)
        mem_t = np.asarray(t.memory, dtype=np.float64)
        w_t = np.asarray(getattr(t, "weights", None) if t is not table else w, np.float64)
        can_stream = np.isfinite(st_t) & np.isfinite(ex_t)
        too_big = can_stream & (w_t[:, None] > cap[None, :] * (1 + 1e-12))
        for v in np.flatnonzero(np.isfinite(error)).tolist():
            e = float(error[v])
            for d in np.flatnonzero(np.isfinite(ex_t[v])).tolist():
                if not too_big[v, d]:
                    rows.append((v, (d,), ex_t[v, d], mem_t[v], labels[v], "", w_t[v], e))
                if can_stream[v, d] and (too_big[v, d] or tight[d]):
                    out = mem_t[v] - w_t[v]
                    rows.append((v, (d,), st_t[v, d], out, labels[v], STREAMED, 0.0, e))
    for x in splits:  # tensor-parallel modes (:mod:`hetsched.costmodel.sharding`)
        streamed = is_streamed(x.tag)
        if streamed and not any(tight[d] for d in x.devices):
            continue
        if not streamed and any(x.weights > cap[d] * (1 + 1e-12) for d in x.devices):
            continue
        rows.append((x.op, x.devices, x.time, x.memory, x.precision, x.tag, x.weights, x.error))
    return Modes.build(n, rows)


def _fitting_modes(modes: Modes, cap: np.ndarray, names: Sequence[str]) -> Modes:
    """The modes whose bytes fit each of their devices alone."""
    keep = [
        m
        for m in range(modes.num_modes)
        if all(modes.memory[m] <= cap[d] + _EPS for d in modes.devices_of(m))
    ]
    ops_left = set(modes.op[keep].tolist())
    for v in range(modes.num_ops):
        if v not in ops_left:
            need = float(modes.memory[modes.ops_modes(v)].min())
            msg = (
                f"op {names[v]!r} needs {need:.0f} bytes, more than the memory of every "
                f"device that supports it"
            )
            raise InfeasibleError(msg)
    if len(keep) == modes.num_modes:
        return modes
    return modes.select(np.array(keep, dtype=np.int64))


def _mode_keys(modes: Modes) -> list[tuple[int, tuple[int, ...], str, str]]:
    return [
        (int(modes.op[m]), modes.devices_of(m), modes.precision[m], modes.tag[m])
        for m in range(modes.num_modes)
    ]


def _consumers(tensors: Tensors, n: int) -> list[list[int]]:
    """The ops reading each op's outputs."""
    out: list[list[int]] = [[] for _ in range(n)]
    for t in range(tensors.num_tensors):
        out[int(tensors.src[t])] += [int(c) for c in tensors.consumers(t).tolist()]
    return out


def _quantum(modes: Modes, comm_real: np.ndarray, tensors: Tensors) -> float:
    """:func:`choose_quantum` over every mode's time (fastest per op on the path)."""
    from hetsched.problem.quantum import choose_quantum_fast

    width = int(np.diff(modes.op_start).max())
    table = np.full((modes.num_ops, width), np.inf)
    slot = np.arange(modes.num_modes) - modes.op_start[modes.op]
    table[modes.op, slot] = modes.time
    src, dst = tensors.edge_src, tensors.edge_dst
    pick = choose_quantum_fast if modes.num_ops > 2000 else choose_quantum
    return pick(table, comm_real, src, dst)
