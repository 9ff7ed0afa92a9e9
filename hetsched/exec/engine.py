"""One phase of a run: a worker thread per device and a transfer engine per link.

Internal to :mod:`hetsched.exec.executor`. Times are in the problem's integer units (as
floats). Every piece of data has a :class:`Slot`: a ``threading.Event`` plus the time the
data became available, set once by its producer. A device worker runs its ops in order; each
op waits on the slots of its inputs, starts at ``max(inputs, device free, release)``, runs
its fx nodes and occupies the device for its duration. An op whose mode spans several
devices is in the order of each of them: its first device *leads* (waits until every other
device of the mode has *joined*, i.e. reached the op with its previous ops done, and until
every input is on every device; computes once; sets the op's slot), the others wait for the
op to finish, so the op holds all its devices from start to finish. An engine moves tensors
over one link (or device pair): one task per (tensor, destination device), which waits for
the source slot, occupies the route and sets the arrival slot that every reader on that
device waits on. With a virtual clock the times are computed from the slots (a
discrete-event replay whose result does not depend on thread timing); with a scaled clock
threads sleep until wall-clock deadlines and times are read from the clock.

Workers report what devices hold to a :class:`~hetsched.exec.memory.DeviceMemory`: an op's
outputs from its start on each device of its mode, a receive buffer from a transfer's first
start, and the end of each use (an op's finish, a transfer's delivery), with the times of
the run's clock; it frees a buffer when its last use has ended.

A phase may end at a *cut* (a device failure at time ``cut``): nothing starts at or after
it, the failing device loses the op it is running and the transfers it sends or receives,
and ops already running elsewhere complete. Data not produced by the cut is marked *cut*
so that every waiter wakes up. Any error aborts the phase: every slot is released and every
sleep interrupted, so all threads return.
"""

from __future__ import annotations

import heapq
import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from hetsched.exec.errors import ExecutionError, InjectedFault
from hetsched.exec.memory import DeviceMemory

__all__ = ["Clock", "OpTask", "Phase", "Slot", "XferTask"]

OK, CUT = 0, 1
SPIN = 300e-6  # seconds before a deadline when a sleeping worker starts yielding


class Slot:
    """Availability of one tensor on one device: set once with ``(time, wall, state)``."""

    __slots__ = ("event", "state", "time", "wall")

    def __init__(self) -> None:
        self.event = threading.Event()
        self.state = OK
        self.time = 0.0
        self.wall = 0.0

    def set(self, t: float, wall: float, state: int = OK) -> None:
        self.time, self.wall, self.state = t, wall, state
        self.event.set()


class Clock:
    """Virtual (times are computed) or scaled real time (``unit_wall`` s of wall per unit)."""

    def __init__(self, *, virtual: bool, unit_wall: float) -> None:
        self.virtual = virtual
        self.unit_wall = unit_wall
        self.t0 = time.perf_counter()
        self.started = False

    def start(self) -> None:
        """Time 0 is now (called once, when the first phase's threads are all up)."""
        if not self.started:
            self.t0, self.started = time.perf_counter(), True

    def now(self) -> float:
        return (time.perf_counter() - self.t0) / self.unit_wall

    def wall(self, t: float) -> float:
        return self.t0 + t * self.unit_wall


@dataclass(eq=False)
class OpTask:
    """One op in its mode: ``devices[0]`` leads, the others join (module docstring);
    ``nbytes`` its outputs on each of them."""

    v: int
    name: str
    mode: int
    devices: tuple[int, ...]
    release: float
    dur: float
    nbytes: float
    inputs: list[Slot] = field(default_factory=list)
    done: Slot = field(default_factory=Slot)
    joined: dict[int, Slot] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.joined = {d: Slot() for d in self.devices[1:]}


@dataclass(eq=False)
class XferTask:
    """One tensor to one device; ``dsts`` are the ops that read it there."""

    tensor: int
    name: str
    src: str
    dsts: list[str]
    src_dev: int
    dst_dev: int
    links: tuple[int, ...]
    release: float
    dur: float
    nbytes: float
    source: Slot
    arrival: Slot = field(default_factory=Slot)


class _Stop(Exception):
    """The phase was aborted; the worker returns quietly."""


class Phase:
    """Run device workers and engines once; see the module docstring."""

    def __init__(
        self,
        *,
        devices: tuple[str, ...],
        device_ops: dict[int, list[OpTask]],
        engines: dict[str, list[XferTask]],
        device_free: dict[int, float],
        link_free: dict[int, float],
        contention: bool,
        clock: Clock,
        cut: float,
        failing: int,
        run_op: Callable[[str], None] | None,
        op_faults: frozenset[str],
        losses: dict[tuple[int, int], int],
        memory: DeviceMemory,
        watchdog: float,
    ) -> None:
        self.devices = devices
        self.device_ops = device_ops
        self.engines = engines
        self.device_free = dict(device_free)
        self.link_free = dict(link_free)
        self.contention = contention
        self.clock = clock
        self.cut = cut
        self.failing = failing
        self.run_op = run_op
        self.op_faults = op_faults
        self.losses = losses
        self.memory = memory
        self.watchdog = watchdog
        self.op_runs: list[tuple[OpTask, float, float, str, float]] = []
        self.xfer_runs: list[tuple[XferTask, float, float, str]] = []
        self.triggered = False
        self._abort = threading.Event()
        self.warmup: Callable[[], None] | None = None
        self._lock = threading.Lock()
        self._error: ExecutionError | None = None

    # ------------------------------------------------------------------ control
    def run(self) -> None:
        """Start every worker, join them all, raise the first error."""
        threads = [
            threading.Thread(target=self._guard, args=(self._device, d, ops),
                             name=f"hetsched-dev-{self.devices[d]}", daemon=True)
            for d, ops in sorted(self.device_ops.items())
        ] + [
            threading.Thread(target=self._guard, args=(self._engine, key, tasks),
                             name=f"hetsched-link-{key}", daemon=True)
            for key, tasks in sorted(self.engines.items())
        ]  # fmt: skip
        # Workers warm up (thread-local torch state), then start together: the clock starts
        # when the last one arrives.
        self._ready = threading.Barrier(len(threads), action=self.clock.start)
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        if self._error is not None:
            raise self._error

    def _all_slots(self) -> list[Slot]:
        out = [t.done for ops in self.device_ops.values() for t in ops]
        out += [s for ops in self.device_ops.values() for t in ops for s in t.joined.values()]
        return out + [x.arrival for xs in self.engines.values() for x in xs]

    def _fail(self, err: ExecutionError) -> None:
        with self._lock:
            if self._error is None:
                self._error = err
            self._abort.set()
        for s in self._all_slots():
            s.event.set()

    def _guard(self, fn: Callable[..., None], *args: object) -> None:
        try:
            if self.warmup is not None:
                self.warmup()
            self._ready.wait(self.watchdog)
            fn(*args)
        except _Stop:
            pass
        except ExecutionError as err:
            self._fail(err)
        except BaseException as err:  # every failure must end the run cleanly
            self._fail(ExecutionError(f"executor thread failed: {type(err).__name__}: {err}"))

    def _wait(self, slot: Slot, what: str, *, timeout: float | None = None) -> bool:
        limit = self.watchdog if timeout is None else min(timeout, self.watchdog)
        ok = slot.event.wait(max(0.0, limit))
        if self._abort.is_set():
            raise _Stop
        if not ok and (timeout is None or timeout >= self.watchdog):
            msg = f"watchdog: {what} waited more than {self.watchdog:g} s"
            raise ExecutionError(msg)
        return ok

    def _sleep_until(self, t: float) -> None:
        """Scaled clock only: sleep until unit time ``t`` (interrupted by an abort).

        Timed waits oversleep by ~0.1 ms (more on a loaded machine), which would add up
        along every chain of ops: sleep until ``SPIN`` before the deadline, then yield the
        CPU in a loop (``time.sleep(0)``) until it passes.
        """
        target = self.clock.wall(t)
        delay = target - time.perf_counter()
        if delay > SPIN:
            self._abort.wait(delay - SPIN)
        while time.perf_counter() < target and not self._abort.is_set():
            time.sleep(0)
        if self._abort.is_set():
            raise _Stop

    # ------------------------------------------------------------------ device worker
    def _device(self, d: int, ops: list[OpTask]) -> None:
        self.device_free[d] = self._device_loop(d, ops, self.device_free.get(d, 0.0))

    def _device_loop(self, d: int, ops: list[OpTask], free_t: float) -> float:
        dev = self.devices[d]
        free_wall = time.perf_counter()
        virtual = self.clock.virtual
        for i, task in enumerate(ops):
            if task.devices[0] != d:  # another device leads: hold this one until it ends
                task.joined[d].set(free_t, free_wall)
                self._wait(task.done, f"op {task.name!r} on {dev!r}")
                if task.done.state != OK:
                    self._halt(d, ops[i + 1 :])
                    return free_t
                free_t, free_wall = task.done.time, task.done.wall
                continue
            # an op of zero duration holds no device (as the validator reads a plan): it
            # waits for its inputs and release only, not for the op before it to end
            instant = task.dur == 0 and len(task.devices) == 1
            ready_t, ready_wall = (
                (task.release if instant else max(free_t, task.release)),
                free_wall,
            )
            halted = False
            for slot in (*task.joined.values(), *task.inputs):
                self._wait(slot, f"op {task.name!r} on {dev!r}")
                if slot.state != OK:
                    halted = True
                    break
                ready_t = max(ready_t, slot.time)
                ready_wall = max(ready_wall, slot.wall)
            if halted or ready_t >= self.cut:
                self._halt(d, ops[i:])
                return free_t
            if virtual:
                start = ready_t
            else:
                self._sleep_until(ready_t)
                ready_wall = max(ready_wall, self.clock.wall(ready_t))
                start = max(self.clock.now(), ready_t)
                if start >= self.cut:
                    self._halt(d, ops[i:])
                    return free_t
            wall_start = time.perf_counter()
            overhead = max(0.0, wall_start - ready_wall)
            end = start + task.dur
            self.memory.op_started(task.v, task.devices, task.nbytes, start)
            if self.failing in task.devices and end > self.cut:
                if not virtual:
                    self._sleep_until(self.cut)
                self.memory.op_lost(task.v, task.devices, self.cut)
                self.op_runs.append((task, start, self.cut, "lost", overhead))
                self._halt(d, ops[i:])
                return free_t
            self._compute(task, dev)
            if virtual:
                finish = end
            else:
                self._sleep_until(end)
                finish = max(self.clock.now(), end)
            self.op_runs.append((task, start, finish, "done", overhead))
            self.memory.op_finished(task.v, finish)
            free_t, free_wall = max(finish, free_t) if instant else finish, time.perf_counter()
            task.done.set(finish, free_wall)
        return free_t

    def _compute(self, task: OpTask, dev: str) -> None:
        try:
            if task.name in self.op_faults:
                msg = f"injected failure in op {task.name!r}"
                raise InjectedFault(msg)
            if self.run_op is not None:
                self.run_op(task.name)
        except ExecutionError:
            raise
        except Exception as err:
            msg = f"op {task.name!r} on device {dev!r} raised {type(err).__name__}: {err}"
            raise ExecutionError(msg, op=task.name, device=dev) from err

    def _halt(self, d: int, rest: list[OpTask]) -> None:
        """Device ``d`` runs nothing more: cut the ops it leads, leave the others it joins."""
        self.triggered = True
        now = time.perf_counter()
        for t in rest:
            (t.done if t.devices[0] == d else t.joined[d]).set(math.inf, now, CUT)

    # ------------------------------------------------------------------ transfer engine
    def _engine(self, key: str, tasks: list[XferTask]) -> None:
        pending: list[tuple[float, int, XferTask, float, int]] = []
        seq = 0
        for task in tasks:
            what = f"transfer of {task.name!r} to {self.devices[task.dst_dev]!r} on {key!r}"
            while not self._wait_or_deliver(task.source, pending, what):
                pass
            if task.source.state != OK:
                self._cut_xfer(task)
                continue
            start = max(task.source.time, task.release)
            if self.contention:
                with self._lock:
                    start = max(start, *(self.link_free.get(x, 0.0) for x in task.links))
            if not self.clock.virtual:
                self._idle_until(start, pending)
                start = max(start, self.clock.now())
            if start >= self.cut:
                self._cut_xfer(task)
                continue
            seq += 1
            self._launch(task, start, 0, pending, seq)
        while pending:
            self._idle_until(pending[0][0], pending)

    def _launch(
        self, task: XferTask, start: float, attempt: int,
        pending: list[tuple[float, int, XferTask, float, int]], seq: int,
    ) -> None:  # fmt: skip
        end = start + task.dur
        self.memory.transfer_started(task.tensor, task.dst_dev, task.nbytes, start)
        if self.contention:
            with self._lock:
                for x in task.links:
                    self.link_free[x] = max(self.link_free.get(x, 0.0), end)
        dies = self.failing in (task.src_dev, task.dst_dev) and end > self.cut
        due = min(end, self.cut) if dies else end
        if self.clock.virtual:
            self._deliver(task, start, due, attempt, pending, seq)
        else:
            heapq.heappush(pending, (due, seq, task, start, attempt))

    def _deliver(
        self, task: XferTask, start: float, due: float, attempt: int,
        pending: list[tuple[float, int, XferTask, float, int]], seq: int,
    ) -> None:  # fmt: skip
        wall = time.perf_counter()
        if not self.clock.virtual:
            due = max(due, self.clock.now())
        if self.failing in (task.src_dev, task.dst_dev) and start + task.dur > self.cut:
            self.xfer_runs.append((task, start, self.cut, "lost"))
            self.memory.transfer_finished(task.tensor, task.dst_dev, self.cut)
            self._cut_xfer(task)
            return
        key = (task.tensor, task.dst_dev)
        if self.losses.get(key, 0) > 0:
            self.losses[key] -= 1
            self.xfer_runs.append((task, start, due, "lost"))
            if attempt >= 1:
                msg = (
                    f"transfer of tensor {task.name!r} from {task.src!r} to "
                    f"{', '.join(task.dsts)} ({self.devices[task.src_dev]} -> "
                    f"{self.devices[task.dst_dev]}) was lost twice"
                )
                raise ExecutionError(msg, op=task.dsts[0], device=self.devices[task.dst_dev])
            if due >= self.cut:
                self.memory.transfer_finished(task.tensor, task.dst_dev, due)
                self._cut_xfer(task)
                return
            self._launch(task, due, attempt + 1, pending, seq)
            return
        self.xfer_runs.append((task, start, due, "done"))
        self.memory.transfer_finished(task.tensor, task.dst_dev, due)
        task.arrival.set(due, wall)

    def _cut_xfer(self, task: XferTask) -> None:
        self.triggered = True
        task.arrival.set(math.inf, time.perf_counter(), CUT)

    def _wait_or_deliver(
        self, slot: Slot, pending: list[tuple[float, int, XferTask, float, int]], what: str
    ) -> bool:
        """Wait for ``slot``, delivering due transfers meanwhile; True once it is set."""
        if not pending:
            return self._wait(slot, what)
        delay = self.clock.wall(pending[0][0]) - time.perf_counter()
        if delay > 0 and self._wait(slot, what, timeout=delay):
            return True
        due, seq, task, start, attempt = heapq.heappop(pending)
        self._deliver(task, start, due, attempt, pending, seq)
        return slot.event.is_set()

    def _idle_until(self, t: float, pending: list[tuple[float, int, XferTask, float, int]]) -> None:
        """Scaled clock: sleep until ``t``, delivering due transfers on the way."""
        while pending and pending[0][0] <= t:
            due, seq, task, start, attempt = heapq.heappop(pending)
            self._sleep_until(due)
            self._deliver(task, start, due, attempt, pending, seq)
        self._sleep_until(t)
