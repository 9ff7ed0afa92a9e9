"""The one memory model: the bytes every device holds, for any choice of modes.

Static residency: for the whole run a device holds

* the bytes of every mode that occupies it (``Modes.memory``: the op's weights and outputs),
  on each of the mode's devices, and
* one receive buffer per tensor it gets from another device, however many of its ops read
  it (a tensor its producer's mode already holds there costs nothing more).

The validator, every solver that honours capacities (by these functions, or by encoding the
same sums: :func:`linear_terms`), and the pipeline partitioner use this model, with one
tolerance rule (:func:`within`).

Examples
--------
>>> import numpy as np
>>> from hetsched.problem import Problem
>>> p = Problem.from_arrays(names=["a", "b", "c"], devices=["x", "y"],
...     exec_time=np.ones((3, 2)), tensors=[(0, (1, 2), 8.0)],
...     memory_bytes=np.array([10.0, 1.0, 1.0]), quantum=1.0)
>>> m = p.device_mode[np.arange(3), [0, 1, 1]]
>>> static_usage(p, m).tolist()  # y holds b, c and one copy of a's tensor
[10.0, 10.0]
"""

from __future__ import annotations

import numpy as np

from hetsched.problem import Problem

__all__ = ["MemoryTracker", "linear_terms", "overflow", "received", "static_usage", "within"]

_REL = 1e-12


def within(used: np.ndarray | float, capacity: np.ndarray | float) -> np.ndarray | bool:
    """The one tolerance rule: ``used <= capacity`` up to float rounding."""
    return np.asarray(used) <= np.asarray(capacity) * (1 + _REL)  # type: ignore[no-any-return]


def received(problem: Problem, op_mode: np.ndarray) -> list[tuple[int, int]]:
    """``(tensor, device)`` of every receive buffer: a device that reads a tensor it does not
    produce. Sorted."""
    devs = problem.modes.mode_devices
    m = np.asarray(op_mode, dtype=np.int64)
    if not problem.modes.multi_device:
        first = problem.modes.devs[problem.modes.dev_start[:-1]]
        a = first[m[problem.edge_src]]
        b = first[m[problem.edge_dst]]
        cross = a != b
        pairs = np.unique(np.stack([problem.edge_tensor[cross], b[cross]], axis=1), axis=0)
        return [(int(t), int(d)) for t, d in pairs]
    out: set[tuple[int, int]] = set()
    for k in range(problem.num_edges):
        have = devs[int(m[problem.edge_src[k]])]
        for b2 in devs[int(m[problem.edge_dst[k]])]:
            if b2 not in have:
                out.add((int(problem.edge_tensor[k]), b2))
    return sorted(out)


def static_usage(problem: Problem, op_mode: np.ndarray) -> np.ndarray:
    """Bytes each device holds for the whole run under ``op_mode`` (mode id per op)."""
    m = np.asarray(op_mode, dtype=np.int64)
    modes = problem.modes
    usage = np.zeros(problem.num_devices)
    if modes.multi_device:
        flat = np.concatenate([modes.devs[modes.dev_start[k] : modes.dev_start[k + 1]] for k in m])
        np.add.at(usage, flat, np.repeat(modes.memory[m], modes.width[m]))
    else:
        np.add.at(usage, modes.devs[modes.dev_start[m]], modes.memory[m])
    for t, b in received(problem, m):
        usage[b] += problem.tensors.nbytes[t]
    return usage


def overflow(problem: Problem, op_mode: np.ndarray) -> int | None:
    """The first device over its capacity under ``op_mode``, or ``None`` (also without
    memory constraints)."""
    if not problem.use_memory:
        return None
    bad = np.flatnonzero(~within(static_usage(problem, op_mode), problem.capacity))
    return int(bad[0]) if bad.size else None


def linear_terms(problem: Problem) -> tuple[np.ndarray, list[tuple[int, int, np.ndarray]]]:
    """The model as linear terms for exact solvers, on device views.

    Returns ``(op_bytes[n, D], buffers)``: placing op ``v`` on ``d`` costs ``op_bytes[v, d]``
    there; each ``(tensor, device b, consumers)`` costs the tensor's bytes on ``b`` when some
    consumer runs on ``b`` and the producer does not (``recv >= on[c, b] - on[src, b]``).
    Only pairs where that can happen are listed.
    """
    buffers = []
    allowed = problem.allowed
    for t in range(problem.tensors.num_tensors):
        if problem.tensors.nbytes[t] <= 0:
            continue
        u = int(problem.tensors.src[t])
        cons = problem.tensors.consumers(t)
        for b in range(problem.num_devices):
            readers = cons[allowed[cons, b]]
            if readers.size and not (allowed[u, b] and allowed[u].sum() == 1):
                buffers.append((t, b, readers))
    return problem.dev_memory, buffers


class MemoryTracker:
    """Incremental :func:`static_usage` for list schedulers that place producers first."""

    def __init__(self, problem: Problem) -> None:
        self.p = problem
        self.used = np.zeros(problem.num_devices)
        self.mode = np.full(problem.n, -1, dtype=np.int64)
        self.buffers: set[tuple[int, int]] = set()

    def extra(self, v: int, m: int) -> tuple[np.ndarray, list[tuple[int, int]]]:
        """Bytes added per device, and the new receive buffers, if ``v`` runs in mode ``m``."""
        p = self.p
        add = np.zeros(p.num_devices)
        devs = p.modes.devices_of(m)
        add[list(devs)] += p.modes.memory[m]
        new = []
        for u, k in p.preds[v]:
            mu = int(self.mode[u])
            if mu < 0:
                continue
            have = p.modes.devices_of(mu)
            t = int(p.edge_tensor[k])
            for b in devs:
                if b not in have and (t, b) not in self.buffers and (t, b) not in new:
                    new.append((t, b))
                    add[b] += p.tensors.nbytes[t]
        return add, new

    def fits(self, v: int, m: int) -> bool:
        """Whether ``v`` in mode ``m`` keeps every device within capacity (always without
        memory constraints)."""
        if not self.p.use_memory:
            return True
        add, _ = self.extra(v, m)
        return bool(np.all(within(self.used + add, self.p.capacity)))

    def place(self, v: int, m: int) -> None:
        add, new = self.extra(v, m)
        self.used += add
        self.buffers.update(new)
        self.mode[v] = m
