"""What each simulated device holds while a run goes on: allocations and frees, by event.

Internal to :mod:`hetsched.exec`. The executor keeps its own account of the liveness model
of :mod:`hetsched.plan.memory`, from the events it runs, not from a schedule. Three kinds of
buffer, each keyed ``(kind, id, device)``:

* ``("weights", mode, d)``: an op's resident weights in its mode, loaded on every device of
  the mode when the run (or, after a failure, the phase that places the op there) begins,
  and held until the run ends;
* ``("outputs", op, d)``: an op's outputs on each device of its mode, allocated when the op
  starts;
* ``("received", tensor, d)``: a tensor delivered to a device, allocated when the first
  attempt of its transfer starts (one buffer, however often the transfer is retried).

Before a phase runs, the executor names every buffer's *users* (:meth:`DeviceMemory.need`):
the op itself for its outputs, every op that reads a buffer on its device, every transfer
out of it or into it, and, for an op no op reads and for weights, the end of the run. Each
user releases its buffers when it finishes (:meth:`DeviceMemory.release`); when the last one
has, the buffer is freed at the latest of their finish times.

Threads of a virtual clock do not run in time order (one device may compute its op at time
9 before another computes its op at time 4), so no running level is kept while threads run:
every buffer records its ``[begin, end)`` on the run's clock, and :attr:`DeviceMemory.peak`
sweeps them in time order, frees before allocations at the same instant (intervals are
half-open: bytes freed at ``x`` can be reused by what starts at ``x``), a buffer held for no
time counting for nothing, the same sweep rule as :func:`~hetsched.plan.memory.memory_profile`.

**After a device failure** (:meth:`DeviceMemory.interrupt`) the peak is the bytes the
executor held, on its clock, across all phases: everything on the failed device is lost at
the failure; an op lost there frees its outputs on all its devices at the failure; uses the
failure cancelled (ops and transfers that never started) are dropped, and a buffer left
without users is freed at the failure or its last finished use, whichever is later. A later
phase that reads a surviving copy keeps it on (a copy still held when the phase resumes) or
counts it again from the resume time (a copy the first plan had already freed: the executor
reads it from where the first plan left it). Weights of ops moved by a re-plan are loaded on
their new devices at the resume time; the old ones stay until the run ends. A re-run op's
outputs are new buffers. Every interval ends no earlier than it begins, so no device ever
holds a negative number of bytes.
"""

from __future__ import annotations

import math
import threading
from dataclasses import dataclass, field

from hetsched.plan.memory import Live, peaks

__all__ = ["END", "DeviceMemory", "Key", "User"]

Key = tuple[str, int, int]  # (kind, mode / op / tensor, device)
User = tuple[str, int, int]  # ("op", op, -1), ("xfer", tensor, destination device), END
END: User = ("end", -1, -1)  # the end of the run: what is held throughout


@dataclass(eq=False)
class _Buffer:
    """One allocation; ``begin`` is None until allocated, ``end`` None while held."""

    key: Key
    users: set[User] = field(default_factory=set)
    item: int = -1
    nbytes: float = 0.0
    begin: float | None = None
    end: float | None = None
    last: float = -math.inf  # latest finish of a released use


class DeviceMemory:
    """Buffers of a run and the peak each device held (thread-safe; module docstring).

    Examples
    --------
    >>> mem = DeviceMemory(1)
    >>> for user in (("op", 0, -1), ("op", 1, -1)):
    ...     mem.need(("outputs", 0, 0), user)
    >>> mem.need(("outputs", 1, 0), ("op", 1, -1))
    >>> mem.op_started(0, (0,), 4.0, 0.0)
    >>> mem.op_finished(0, 2.0)
    >>> mem.op_started(1, (0,), 3.0, 2.0)
    >>> mem.op_finished(1, 5.0)  # frees both outputs at 5
    >>> mem.close(5.0)
    >>> mem.peak, [(x.what, x.item, x.begin, x.end) for x in mem.intervals]
    ([7.0], [('outputs', 0, 0.0, 5.0), ('outputs', 1, 2.0, 5.0)])
    """

    def __init__(self, num_devices: int) -> None:
        self.num_devices = num_devices
        self._live: dict[Key, _Buffer] = {}  # allocated and held, or named and not yet allocated
        self._freed: dict[Key, _Buffer] = {}  # the latest freed buffer of each key
        self._all: list[_Buffer] = []  # every buffer allocated, in allocation order
        self._uses: dict[User, dict[Key, None]] = {}  # the buffers each user holds (ordered)
        self._lock = threading.Lock()

    # ------------------------------------------------------------------ set-up (one thread)
    def need(self, key: Key, user: User) -> None:
        """``user`` will use buffer ``key`` (produced in the coming phase)."""
        with self._lock:
            self._attach(self._live.get(key) or self._new(key), user)

    def need_copy(self, key: Key, user: User, nbytes: float, item: int, t: float) -> None:
        """``user`` will use ``key``, a copy an earlier phase left, from resume time ``t``."""
        with self._lock:
            buf = self._live.get(key)
            old = self._freed.get(key)
            if buf is None and old is not None and old.end is not None and old.end >= t:
                del self._freed[key]  # still held when the phase resumes: keep it on
                old.end = None
                buf = self._live[key] = old
            if buf is None:
                buf = self._new(key)
            if buf.begin is None:
                self._allocate(buf, nbytes, item, t)
            self._attach(buf, user)

    # ------------------------------------------------------------------ events (any thread)
    def allocate(self, key: Key, nbytes: float, item: int, t: float) -> None:
        """Buffer ``key`` exists from time ``t`` (nothing if it is held already)."""
        with self._lock:
            buf = self._live.get(key) or self._new(key)
            if buf.begin is None:
                self._allocate(buf, nbytes, item, t)

    def release(self, user: User, t: float) -> None:
        """``user`` finished at ``t``: each buffer it was the last user of is freed."""
        with self._lock:
            for key in self._uses.pop(user, {}):
                buf = self._live.get(key)
                if buf is None or user not in buf.users:
                    continue
                buf.users.discard(user)
                buf.last = max(buf.last, t)
                if not buf.users and buf.begin is not None:
                    self._free(buf, buf.last)

    def op_started(self, v: int, devices: tuple[int, ...], nbytes: float, t: float) -> None:
        """Op ``v`` starts at ``t``: its outputs on each device of its mode."""
        for d in devices:
            self.allocate(("outputs", v, d), nbytes, v, t)

    def op_finished(self, v: int, t: float) -> None:
        """Op ``v`` finished at ``t``: it no longer uses its inputs or its outputs."""
        self.release(("op", v, -1), t)

    def op_lost(self, v: int, devices: tuple[int, ...], t: float) -> None:
        """Op ``v`` was lost at ``t`` (a failure): its partial outputs go everywhere."""
        self.release(("op", v, -1), t)
        with self._lock:
            for d in devices:
                buf = self._live.get(("outputs", v, d))
                if buf is not None and buf.begin is not None:
                    self._free(buf, t)

    def transfer_started(self, tensor: int, device: int, nbytes: float, t: float) -> None:
        """A transfer of ``tensor`` to ``device`` starts at ``t``: its receive buffer."""
        self.allocate(("received", tensor, device), nbytes, tensor, t)

    def transfer_finished(self, tensor: int, device: int, t: float) -> None:
        """The transfer of ``tensor`` to ``device`` ended at ``t`` (delivered or lost)."""
        self.release(("xfer", tensor, device), t)

    # ------------------------------------------------------------------ between phases
    def interrupt(self, cut: float, failing: int) -> None:
        """A phase ended at ``cut`` when device ``failing`` failed (module docstring)."""
        with self._lock:
            for user, keys in self._uses.items():  # uses the failure cancelled
                for key in keys:
                    buf = self._live.get(key)
                    if buf is not None:
                        buf.users.discard(user)
            self._uses.clear()
            for buf in list(self._live.values()):
                if buf.begin is None:
                    if not buf.users:
                        del self._live[buf.key]
                elif buf.key[2] == failing:
                    self._free(buf, cut)  # lost with the device
                elif not buf.users:
                    self._free(buf, max(buf.last, cut))

    def close(self, end: float) -> None:
        """The run ended at ``end``: everything still held is freed then."""
        with self._lock:
            for buf in list(self._live.values()):
                if buf.begin is None:
                    del self._live[buf.key]
                else:
                    self._free(buf, max(buf.last, end))
            self._uses.clear()

    # ------------------------------------------------------------------ results
    @property
    def intervals(self) -> tuple[Live, ...]:
        """Every buffer allocated, as :class:`~hetsched.plan.memory.Live` (open ones end at
        infinity)."""
        with self._lock:
            return tuple(
                Live(
                    b.key[2],
                    float(b.begin),
                    math.inf if b.end is None else b.end,
                    b.nbytes,
                    b.key[0],
                    b.item,
                )
                for b in self._all
                if b.begin is not None
            )

    @property
    def peak(self) -> list[float]:
        """The most bytes each device held at any instant (the model's own sweep,
        :func:`~hetsched.plan.memory.peaks`)."""
        return peaks(self.intervals, self.num_devices)[0].tolist()

    # ------------------------------------------------------------------ internals (locked)
    def _new(self, key: Key) -> _Buffer:
        buf = self._live[key] = _Buffer(key)
        return buf

    def _attach(self, buf: _Buffer, user: User) -> None:
        buf.users.add(user)
        if user != END:  # the end of the run releases nothing: close() frees what is left
            self._uses.setdefault(user, {})[buf.key] = None

    def _allocate(self, buf: _Buffer, nbytes: float, item: int, t: float) -> None:
        buf.nbytes, buf.item, buf.begin = float(nbytes), item, float(t)
        self._all.append(buf)

    def _free(self, buf: _Buffer, t: float) -> None:
        assert buf.begin is not None
        buf.end = max(float(t), buf.begin)
        buf.users.clear()
        del self._live[buf.key]
        self._freed[buf.key] = buf
