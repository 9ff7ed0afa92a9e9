"""The compiled, integer-scaled scheduling problem every solver shares.

A :class:`Problem` is built once from ``(graph, platform, cost model)``: execution times
per (op, device) become integers in a time quantum, transfers per (edge, device pair)
likewise, unsupported pairs are masked out. Durations are rounded *up*, so an integer
schedule is also feasible in real time; the quantum is chosen so that the rounding error
stays below 0.1% of the makespan (see :func:`choose_quantum`).

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
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from typing import TYPE_CHECKING, Any

import numpy as np

from hetsched.errors import InfeasibleError, SolverError
from hetsched.problem.quantum import choose_quantum

if TYPE_CHECKING:
    from hetsched.graph.opgraph import OpGraph

__all__ = ["MAX_HORIZON", "Problem"]

# Integer horizons above this risk overflow in CP-SAT/MIP arithmetic (sums of durations).
MAX_HORIZON = 2**40
_EPS = 1e-9


@dataclass(frozen=True, eq=False)
class Problem:
    """Integer-scaled scheduling instance.

    Attributes
    ----------
    names : node names in topological order (node ``i`` is ``names[i]``).
    devices, device_kinds : device names and kinds, in platform order.
    quantum : real time (seconds, or graph units) of one integer time unit.
    units : ``"s"`` or the graph's own unit label.
    exec_time : float ``[n, D]`` real execution time, ``inf`` where unsupported.
    allowed : bool ``[n, D]``; ``dur`` int64 ``[n, D]`` (0 where not allowed).
    edge_src, edge_dst, edge_bytes : the data edges.
    comm : int64 ``[E, D, D]`` transfer duration of edge ``e`` from device ``a`` to ``b``
        (0 on the diagonal).
    route_links : link indices used by a transfer from ``a`` to ``b``; ``link_names``.
    memory : bytes each op holds on its device; ``capacity`` per device (``inf`` = no limit).
    use_memory, link_contention : which optional constraints are on.
    """

    names: tuple[str, ...]
    devices: tuple[str, ...]
    device_kinds: tuple[str, ...]
    quantum: float
    units: str
    exec_time: np.ndarray
    allowed: np.ndarray
    dur: np.ndarray
    edge_src: np.ndarray
    edge_dst: np.ndarray
    edge_bytes: np.ndarray
    comm: np.ndarray
    route_links: Mapping[tuple[int, int], tuple[int, ...]]
    link_names: tuple[str, ...]
    memory: np.ndarray
    capacity: np.ndarray
    use_memory: bool = False
    link_contention: bool = False
    name: str = "problem"
    platform_name: str = ""
    graph_sha256: str = ""
    meta: Mapping[str, Any] = field(default_factory=dict)

    # ------------------------------------------------------------------ construction
    @classmethod
    def build(
        cls,
        graph: OpGraph,
        platform: Any,
        cost_model: Any = None,
        *,
        memory: bool = False,
        link_contention: bool = False,
        quantum: float | None = None,
    ) -> Problem:
        """Compile ``graph`` on ``platform`` (a ``Platform`` or preset name)."""
        from hetsched.costmodel import Platform, build_cost_table
        from hetsched.graph.formats import graph_sha256

        if isinstance(platform, str):
            platform = Platform.preset(platform)
        table = build_cost_table(graph, platform, cost_model)
        edges = list(
            zip(
                table.edge_src.tolist(),
                table.edge_dst.tolist(),
                table.edge_bytes.tolist(),
                strict=True,
            )
        )
        return cls.from_arrays(
            names=[n.name for n in graph.nodes],
            devices=list(table.device_names),
            device_kinds=list(table.device_kinds),
            exec_time=table.exec,
            edges=edges,
            comm_latency=table.comm_latency,
            comm_inv_bandwidth=table.comm_inv_bandwidth,
            route_links=table.route_links,
            link_names=table.link_names,
            memory_bytes=table.memory,
            capacity=table.capacity,
            use_memory=memory,
            link_contention=link_contention,
            quantum=quantum,
            units=table.units,
            name=graph.name,
            platform_name=platform.name,
            graph_sha256=graph_sha256(graph),
        )

    @classmethod
    def from_arrays(
        cls,
        *,
        names: Sequence[str],
        devices: Sequence[str],
        exec_time: np.ndarray,
        edges: Sequence[tuple[int, int, float]] = (),
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
        """Build from plain arrays (tests, benchmarks, peers). ``edges`` are index triples."""
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
        allowed = np.isfinite(ex)
        bad = np.flatnonzero(~allowed.any(axis=1))
        if bad.size:
            msg = f"op {names[bad[0]]!r} is supported by no device (tried {', '.join(devices)})"
            raise InfeasibleError(msg)
        e_arr = np.asarray(edges, dtype=np.float64).reshape(-1, 3)
        src = e_arr[:, 0].astype(np.int64)
        dst = e_arr[:, 1].astype(np.int64)
        nbytes = e_arr[:, 2]
        if (src >= dst).any():
            k = int(np.flatnonzero(src >= dst)[0])
            msg = f"edge {names[src[k]]!r} -> {names[dst[k]]!r} is not in topological order"
            raise SolverError(msg)
        lat = np.zeros((d, d)) if comm_latency is None else np.asarray(comm_latency, float)
        inv = (
            np.zeros((d, d))
            if comm_inv_bandwidth is None
            else np.asarray(comm_inv_bandwidth, float)
        )
        comm_real = lat[None, :, :] + nbytes[:, None, None] * inv[None, :, :]
        comm_real[:, np.arange(d), np.arange(d)] = 0.0
        if not np.isfinite(comm_real).all() or (comm_real < 0).any():
            k, a, b = np.argwhere(~np.isfinite(comm_real) | (comm_real < 0))[0]
            msg = (
                f"edge {names[src[k]]!r} -> {names[dst[k]]!r}: no valid transfer from "
                f"{devices[a]!r} to {devices[b]!r}"
            )
            raise InfeasibleError(msg)
        q = quantum if quantum is not None else choose_quantum(ex, comm_real, src, dst)
        if not (q > 0 and math.isfinite(q)):
            msg = f"time quantum must be positive and finite, got {q!r}"
            raise SolverError(msg)
        scaled_max = max(float(np.where(allowed, ex, 0.0).max()), float(comm_real.max(initial=0.0)))
        if scaled_max / q > MAX_HORIZON:
            msg = (
                f"durations overflow the integer time scale: a duration of {scaled_max:g} is "
                f"{scaled_max / q:.3g} quanta of {q:g} (limit {MAX_HORIZON}): absurd cost"
            )
            raise SolverError(msg)
        dur = np.where(allowed, np.ceil(np.where(allowed, ex, 0.0) / q - _EPS), 0).astype(np.int64)
        comm = np.ceil(comm_real / q - _EPS).astype(np.int64)
        horizon = int(dur.max(axis=1).sum()) + int(comm.max(axis=(1, 2)).sum() if len(comm) else 0)
        if horizon > MAX_HORIZON:
            msg = (
                f"durations overflow the integer time scale: horizon {horizon} units of {q:g} "
                f"exceeds {MAX_HORIZON}; a cost or size is absurdly large"
            )
            raise SolverError(msg)
        mem = np.zeros(n) if memory_bytes is None else np.asarray(memory_bytes, float)
        cap = np.full(d, np.inf) if capacity is None else np.asarray(capacity, float)
        if use_memory:
            fits = mem[:, None] <= cap[None, :] + _EPS
            alone = np.flatnonzero(~(fits & allowed).any(axis=1))
            if alone.size:
                i = int(alone[0])
                msg = (
                    f"op {names[i]!r} needs {mem[i]:.0f} bytes, more than the memory of every "
                    f"device that supports it"
                )
                raise InfeasibleError(msg)
            allowed = allowed & fits
        kinds = tuple(device_kinds) if device_kinds is not None else tuple("cpu" for _ in devices)
        return cls(
            names=tuple(names),
            devices=tuple(devices),
            device_kinds=kinds,
            quantum=float(q),
            units=units,
            exec_time=ex,
            allowed=allowed,
            dur=dur,
            edge_src=src,
            edge_dst=dst,
            edge_bytes=nbytes,
            comm=comm,
            route_links=dict(route_links or {}),
            link_names=tuple(link_names),
            memory=mem,
            capacity=cap,
            use_memory=use_memory,
            link_contention=link_contention,
            name=name,
            platform_name=platform_name,
            graph_sha256=graph_sha256,
        )

    # ------------------------------------------------------------------ views
    @property
    def n(self) -> int:
        return len(self.names)

    @property
    def num_devices(self) -> int:
        return len(self.devices)

    @property
    def num_edges(self) -> int:
        return int(self.edge_src.size)

    @cached_property
    def index(self) -> dict[str, int]:
        return {x: i for i, x in enumerate(self.names)}

    @cached_property
    def device_index(self) -> dict[str, int]:
        return {x: i for i, x in enumerate(self.devices)}

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

    @cached_property
    def allowed_devices(self) -> tuple[tuple[int, ...], ...]:
        return tuple(tuple(np.flatnonzero(row).tolist()) for row in self.allowed)

    @cached_property
    def min_dur(self) -> np.ndarray:
        """Fastest allowed duration of each op (int64 ``[n]``)."""
        big = np.iinfo(np.int64).max
        return np.where(self.allowed, self.dur, big).min(axis=1)

    def single_device_makespan(self, device: str) -> float | None:
        """Real time with every op on ``device`` (no transfers); None if it refuses an op."""
        d = self.device_index[device]
        if not self.allowed[:, d].all():
            return None
        return float(self.dur[:, d].sum()) * self.quantum

    @cached_property
    def device_groups(self) -> tuple[tuple[int, ...], ...]:
        """Classes of interchangeable devices: same durations, same transfer costs to others.

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
        if not np.array_equal(self.allowed[:, a], self.allowed[:, b]):
            return False
        if not np.array_equal(self.dur[:, a], self.dur[:, b]):
            return False
        if self.capacity[a] != self.capacity[b]:
            return False
        perm = np.arange(self.num_devices)
        perm[a], perm[b] = b, a
        if self.num_edges and not np.array_equal(self.comm, self.comm[:, perm][:, :, perm]):
            return False
        return not (self.link_contention and self.route_links)
