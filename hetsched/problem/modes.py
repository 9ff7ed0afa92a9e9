"""Execution modes: the ways an op can run, one of which every plan chooses per op.

A *mode* is the set of devices an op occupies together (one device today; several for a
tensor-parallel split), the precision it computes in, a tag naming anything else that
distinguishes it (``""`` by default; ``"streamed"`` for a mode whose weights stream in
instead of staying resident), its duration and the bytes it holds on each of its devices.
Problems built from a graph have one mode per (op, device that supports it), plus a
streamed one where weights can stream (:func:`hetsched.problem.problem.residency_modes`);
precision choice and op splitting add modes, not new solver code paths.

:class:`Modes` stores every mode of a problem as read-only arrays, grouped by op (CSR):
the modes of op ``v`` are ``range(op_start[v], op_start[v + 1])`` and the devices of mode
``m`` are ``devs[dev_start[m]:dev_start[m + 1]]`` (sorted, distinct).

Semantics every solver and the validator share:

* a mode occupies all its devices from the op's start to its end (each device runs one op
  at a time);
* the op's output tensors are complete on every device of its mode when it ends, except
  where the mode keeps them sharded for the next op (:mod:`hetsched.problem.chains`: its
  readers then run on the same devices and read their shards there);
* a tensor reaches a device ``b`` outside the producer's mode from the nearest device of
  that mode (the fastest transfer), and a consumer starts once its inputs are on every
  device of its own mode.

Examples
--------
>>> import numpy as np
>>> m = Modes.device_modes(np.array([[4.0, 1.0], [3.0, np.inf]]), memory=np.array([8.0, 2.0]))
>>> m.num_modes, m.ops_modes(0).tolist(), m.devices_of(1)
(3, [0, 1], (1,))
>>> split = Modes.build(2, [(0, (0,), 4.0), (0, (0, 1), 2.5), (1, (0,), 3.0)])
>>> split.devices_of(1), split.multi_device
((0, 1), True)
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import Any

import numpy as np

from hetsched.errors import SolverError
from hetsched.problem.arrays import frozen, own_frozen

__all__ = ["DEFAULT_PRECISION", "ModeSpec", "Modes"]

DEFAULT_PRECISION = "native"


@dataclass(frozen=True)
class ModeSpec:
    """One mode, by value: what a plan records for an op (device names, precision, tag)."""

    devices: tuple[str, ...]
    precision: str = DEFAULT_PRECISION
    tag: str = ""

    def __str__(self) -> str:
        out = "+".join(self.devices)
        if self.precision != DEFAULT_PRECISION:
            out += f"@{self.precision}"
        return out + (f"[{self.tag}]" if self.tag else "")


@dataclass(frozen=True, eq=False)
class Modes:
    """Every mode of every op, as read-only arrays (see the module docstring).

    ``time`` is real time (seconds or graph units); ``memory`` the bytes the mode can hold on
    each of its devices (its resident weights and its outputs: what a device holds if
    nothing is ever freed, the static envelope of :mod:`hetsched.plan.memory`);
    ``weights`` the part of it held for the whole run (resident weights; 0 for a streamed
    mode). ``weights`` defaults to ``memory``: bytes of unknown kind are held throughout.
    ``error`` is the output error the mode adds (relative L2, additive over ops; 0 for an
    op's own precision), which an error budget limits.
    """

    op_start: np.ndarray
    op: np.ndarray
    dev_start: np.ndarray
    devs: np.ndarray
    time: np.ndarray
    memory: np.ndarray
    precision: tuple[str, ...]
    tag: tuple[str, ...]
    weights: np.ndarray | None = None
    error: np.ndarray | None = None

    def __post_init__(self) -> None:
        n = self.op_start.size - 1
        m = self.op.size
        if n < 0 or self.op_start[0] != 0 or self.op_start[-1] != m:
            msg = "modes: op_start must run from 0 to the number of modes"
            raise SolverError(msg)
        if np.any(np.diff(self.op_start) < 1):
            v = int(np.flatnonzero(np.diff(self.op_start) < 1)[0])
            msg = f"modes: op {v} has no mode"
            raise SolverError(msg)
        if not np.array_equal(self.op, np.repeat(np.arange(n), np.diff(self.op_start))):
            msg = "modes: op of each mode must follow op_start"
            raise SolverError(msg)
        if self.dev_start.size != m + 1 or self.dev_start[0] != 0:
            msg = "modes: dev_start must have one entry per mode plus one, from 0"
            raise SolverError(msg)
        if np.any(np.diff(self.dev_start) < 1) or self.dev_start[-1] != self.devs.size:
            msg = "modes: every mode needs at least one device"
            raise SolverError(msg)
        if self.weights is None:
            object.__setattr__(self, "weights", np.asarray(self.memory, np.float64).copy())
        if self.error is None:
            object.__setattr__(self, "error", np.zeros(m))
        checks = (("time", self.time), ("memory", self.memory), ("weights", self.w))
        for name, arr in (*checks, ("error", self.err)):
            if arr.shape != (m,) or not np.all(np.isfinite(arr)) or np.any(arr < 0):
                msg = f"modes: {name} must be finite and >= 0, one per mode"
                raise SolverError(msg)
        if np.any(self.w > self.memory * (1 + 1e-12)):
            msg = "modes: a mode's weights cannot exceed its memory"
            raise SolverError(msg)
        if len(self.precision) != m or len(self.tag) != m:
            msg = "modes: precision and tag need one entry per mode"
            raise SolverError(msg)
        # devices strictly increasing inside each mode (sorted, distinct)
        inner = np.ones(self.devs.size, dtype=bool)
        inner[self.dev_start[:-1]] = False
        bad = np.flatnonzero(inner[1:] & (np.diff(self.devs) <= 0))
        if bad.size:
            k = int(np.searchsorted(self.dev_start, bad[0] + 1, side="right") - 1)
            ds = tuple(self.devs[self.dev_start[k] : self.dev_start[k + 1]].tolist())
            msg = f"modes: devices of mode {k} must be sorted and distinct, got {ds}"
            raise SolverError(msg)
        self._check_unique()
        own_frozen(
            self, "op_start", "op", "dev_start", "devs", "time", "memory", "weights", "error"
        )

    @property
    def w(self) -> np.ndarray:
        """``weights`` (never None after construction)."""
        assert self.weights is not None
        return self.weights

    @property
    def err(self) -> np.ndarray:
        """``error`` (never None after construction)."""
        assert self.error is not None
        return self.error

    def _check_unique(self) -> None:
        """No op has two modes with the same devices, precision and tag."""
        width = np.diff(self.dev_start)
        labels = {x: i for i, x in enumerate(sorted(set(self.precision) | set(self.tag)))}
        prec = np.array([labels[x] for x in self.precision], dtype=np.int64)
        tag = np.array([labels[x] for x in self.tag], dtype=np.int64)
        one = np.flatnonzero(width == 1)
        keys = np.stack([self.op[one], self.devs[self.dev_start[one]], prec[one], tag[one]], axis=1)
        if one.size and np.unique(keys, axis=0).shape[0] != one.size:
            _, first, counts = np.unique(keys, axis=0, return_index=True, return_counts=True)
            k = int(one[first[np.flatnonzero(counts > 1)[0]]])
            msg = (
                f"modes: op {int(self.op[k])} has two modes on "
                f"{(int(self.devs[self.dev_start[k]]),)} {self.precision[k]!r}"
            )
            raise SolverError(msg)
        seen: set[tuple[int, tuple[int, ...], str, str]] = set()
        for k in np.flatnonzero(width > 1).tolist():
            ds = tuple(self.devs[self.dev_start[k] : self.dev_start[k + 1]].tolist())
            key = (int(self.op[k]), ds, self.precision[k], self.tag[k])
            if key in seen:
                msg = f"modes: op {key[0]} has two modes on {ds} {self.precision[k]!r}"
                raise SolverError(msg)
            seen.add(key)

    # ------------------------------------------------------------------ construction
    @classmethod
    def build(cls, n: int, modes: Iterable[tuple[Any, ...]]) -> Modes:
        """From ``(op, devices, time[, memory, precision, tag, weights, error])`` tuples, any
        order.

        Modes are stored grouped by op, in the order given within each op.
        """
        rows = [tuple(r) for r in modes]
        rows.sort(key=lambda r: int(r[0]))
        counts = np.bincount([int(r[0]) for r in rows], minlength=n) if rows else np.zeros(n)
        if len(counts) > n:
            msg = f"modes: op index {len(counts) - 1} out of range for {n} ops"
            raise SolverError(msg)
        devs = [sorted({int(d) for d in r[1]}) for r in rows]
        return cls(
            op_start=np.concatenate([[0], np.cumsum(counts)]).astype(np.int64),
            op=np.array([int(r[0]) for r in rows], dtype=np.int64),
            dev_start=np.concatenate([[0], np.cumsum([len(d) for d in devs])]).astype(np.int64),
            devs=np.array([d for ds in devs for d in ds], dtype=np.int64),
            time=np.array([float(r[2]) for r in rows], dtype=np.float64),
            memory=np.array([float(r[3]) if len(r) > 3 else 0.0 for r in rows], np.float64),
            precision=tuple(str(r[4]) if len(r) > 4 else DEFAULT_PRECISION for r in rows),
            tag=tuple(str(r[5]) if len(r) > 5 else "" for r in rows),
            weights=np.array(
                [float(r[6]) if len(r) > 6 else float(r[3]) if len(r) > 3 else 0.0 for r in rows],
                np.float64,
            ),
            error=np.array([float(r[7]) if len(r) > 7 else 0.0 for r in rows], np.float64),
        )

    @classmethod
    def device_modes(
        cls,
        exec_time: np.ndarray,
        *,
        memory: np.ndarray | None = None,
        precision: Sequence[str] | None = None,
        weights: np.ndarray | None = None,
    ) -> Modes:
        """One mode per (op, device) with a finite time. ``memory`` and ``weights`` (default:
        ``memory``) are per op."""
        ex = np.asarray(exec_time, dtype=np.float64)
        n = ex.shape[0]
        v_idx, d_idx = np.nonzero(np.isfinite(ex))  # row-major: grouped by op, devices sorted
        counts = np.bincount(v_idx, minlength=n)
        mem = np.zeros(n) if memory is None else np.asarray(memory, dtype=np.float64)
        prec = [DEFAULT_PRECISION] * n if precision is None else list(precision)
        held = mem if weights is None else np.asarray(weights, dtype=np.float64)
        return cls(
            op_start=np.concatenate([[0], np.cumsum(counts)]).astype(np.int64),
            op=v_idx.astype(np.int64),
            dev_start=np.arange(v_idx.size + 1, dtype=np.int64),
            devs=d_idx.astype(np.int64),
            time=ex[v_idx, d_idx].copy(),
            memory=mem[v_idx].copy(),
            precision=tuple(prec[v] for v in v_idx.tolist()),
            tag=("",) * int(v_idx.size),
            weights=held[v_idx].copy(),
        )

    def select(self, keep: np.ndarray) -> Modes:
        """The modes ``keep`` (sorted mode ids); every op must keep at least one."""
        keep = np.asarray(keep, dtype=np.int64)
        return Modes.build(
            self.num_ops,
            [
                (
                    int(self.op[m]),
                    self.devices_of(m),
                    float(self.time[m]),
                    float(self.memory[m]),
                    self.precision[m],
                    self.tag[m],
                    float(self.w[m]),
                    float(self.err[m]),
                )
                for m in keep.tolist()
            ],
        )

    def subset(self, ops: np.ndarray) -> Modes:
        """The modes of ``ops`` (sorted indices), renumbered ``0..len(ops)-1``."""
        ops = np.asarray(ops, dtype=np.int64)
        take = np.concatenate(
            [np.arange(self.op_start[v], self.op_start[v + 1]) for v in ops.tolist()]
        ).astype(np.int64)
        counts = np.diff(self.op_start)[ops]
        widths = np.diff(self.dev_start)[take]
        devs = (
            np.concatenate([self.devs[self.dev_start[k] : self.dev_start[k + 1]] for k in take])
            if take.size
            else np.zeros(0, np.int64)
        )
        return Modes(
            op_start=np.concatenate([[0], np.cumsum(counts)]).astype(np.int64),
            op=np.repeat(np.arange(ops.size), counts).astype(np.int64),
            dev_start=np.concatenate([[0], np.cumsum(widths)]).astype(np.int64),
            devs=devs.astype(np.int64),
            time=self.time[take].copy(),
            memory=self.memory[take].copy(),
            precision=tuple(self.precision[k] for k in take.tolist()),
            tag=tuple(self.tag[k] for k in take.tolist()),
            weights=self.w[take].copy(),
            error=self.err[take].copy(),
        )

    # ------------------------------------------------------------------ views
    @property
    def num_modes(self) -> int:
        return int(self.op.size)

    @property
    def num_ops(self) -> int:
        return int(self.op_start.size - 1)

    def ops_modes(self, v: int) -> np.ndarray:
        """Mode ids of op ``v``."""
        return np.arange(self.op_start[v], self.op_start[v + 1])

    def devices_of(self, m: int) -> tuple[int, ...]:
        """Device indices of mode ``m`` (sorted)."""
        return self.mode_devices[m]

    @cached_property
    def mode_devices(self) -> tuple[tuple[int, ...], ...]:
        """Device tuple of every mode."""
        flat = self.devs.tolist()
        ptr = self.dev_start.tolist()
        return tuple(tuple(flat[ptr[k] : ptr[k + 1]]) for k in range(self.num_modes))

    @cached_property
    def width(self) -> np.ndarray:
        """Number of devices of each mode."""
        return frozen(np.diff(self.dev_start))

    @property
    def multi_device(self) -> bool:
        """Whether some mode occupies more than one device."""
        return bool(np.any(self.width > 1))

    def single(self, num_devices: int) -> np.ndarray:
        """``[n, D]`` id of the fastest single-device mode of each op on each device that adds
        no error (any mode where every mode there adds some), -1 if none.

        Ties go to less memory, then the lower mode id.
        """
        out = np.full((self.num_ops, num_devices), -1, dtype=np.int64)
        one = np.flatnonzero(self.width == 1)
        if one.size:
            lossy = self.err[one] > 0
            pref = one[np.lexsort((one, self.memory[one], self.time[one], lossy))]
            key = self.op[pref] * num_devices + self.devs[self.dev_start[pref]]
            _, first = np.unique(key, return_index=True)  # first = most preferred per pair
            best = pref[first]
            out[self.op[best], self.devs[self.dev_start[best]]] = best
        return frozen(out)

    def is_device_table(self, num_devices: int) -> bool:
        """True when the modes are exactly one single-device mode per allowed (op, device)."""
        return (
            bool(np.all(self.width == 1))
            and int((self.single(num_devices) >= 0).sum()) == self.num_modes
        )

    def fastest(self) -> np.ndarray:
        """Real time of each op's fastest mode."""
        return frozen(np.minimum.reduceat(self.time, self.op_start[:-1]))

    def describe(self, m: int, devices: Sequence[str]) -> ModeSpec:
        """Mode ``m`` by value, with device names."""
        return ModeSpec(
            tuple(devices[d] for d in self.devices_of(m)), self.precision[m], self.tag[m]
        )
