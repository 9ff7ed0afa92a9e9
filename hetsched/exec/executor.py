"""Run a plan: one thread per device, one transfer engine per link, real torch numerics.

:func:`execute` runs every op on its planned device in the plan's per-device order. An op
starts once its inputs are on its device (produced there or delivered by a transfer), its
device is free and (policy ``"plan"``) its planned start time is reached; it occupies the
device for its planned duration on a clock: ``"virtual"`` (discrete-event, deterministic:
a valid plan is reproduced exactly) or ``"scaled"`` (threads really sleep, ``time_scale``
seconds of wall per second of plan). With a ``program`` each op really evaluates its fx
nodes, so the outputs are real and are checked against eager.

Device failures split the run into phases: at the failure time nothing new starts, the
failed device loses its running op, its in-flight transfers and every result only it
holds; results delivered elsewhere survive. The ops not yet run, plus the lost results
still needed (by those ops, or as graph outputs), are re-planned on the survivors
(:func:`~hetsched.exec.replan.replan_list` by default) and the run goes on.

Examples
--------
>>> import numpy as np
>>> from hetsched.problem import Problem
>>> from hetsched.schedule.latency.heuristics import solve_heft
>>> p = Problem.from_arrays(names=["a", "b", "c"], devices=["x", "y"],
...     exec_time=np.array([[2.0, 3.0], [4.0, 4.0], [4.0, 4.0]]),
...     edges=[(0, 1, 1.0), (0, 2, 1.0)], comm_latency=np.array([[0, 1], [1, 0]]), quantum=1.0)
>>> plan = solve_heft(p, time_limit=1, seed=0)
>>> r = execute(plan, p)
>>> r.makespan == plan.makespan, r.outputs_match
(True, None)
>>> r2 = execute(plan, p, faults=["y@3"])
>>> r2.faults_seen, sorted(set(r2.assignment.values()))
(('y@3',), ['x'])
"""

from __future__ import annotations

import contextlib
import math
import time
import weakref
from collections.abc import Callable, Sequence
from types import MappingProxyType
from typing import Any

import numpy as np

from hetsched.errors import HetschedError, UsageError
from hetsched.exec.engine import Clock, OpTask, Phase, Slot, XferTask
from hetsched.exec.errors import ExecutionError
from hetsched.exec.faults import (
    DeviceFailure,
    Fault,
    OpFailure,
    TransferLoss,
    check_faults,
    parse_faults,
)
from hetsched.exec.program import ProgramRunner, intra_op_threads, make_runner, outputs_close
from hetsched.exec.replan import ReplanRequest, mask_devices, replan_list
from hetsched.exec.result import ExecutionResult, OpRun, TransferRun
from hetsched.plan import Plan, Transfer, validate
from hetsched.problem import Problem

__all__ = ["execute"]

CLOCKS = ("virtual", "scaled")
POLICIES = ("plan", "asap")


def execute(
    plan: Plan,
    problem: Problem,
    *,
    graph: Any = None,
    program: Any = None,
    inputs: Sequence[Any] | None = None,
    clock: str = "virtual",
    time_scale: float = 1.0,
    faults: Sequence[Fault | str] | Fault | str = (),
    replan: Callable[[ReplanRequest], Plan] | None = None,
    watchdog: float = 30.0,
    policy: str = "plan",
    check: bool = True,
    torch_threads: int | None = 1,
) -> ExecutionResult:
    """Run ``plan`` on simulated devices; see the module docstring.

    Parameters
    ----------
    plan, problem : a plan and the problem it is valid for (checked with ``validate``).
    graph : the :class:`~hetsched.graph.opgraph.OpGraph`; its ``meta["fx_nodes"]`` maps ops
        to the fx nodes they cover (without it each op covers the fx node of its name).
    program : ``torch.export.ExportedProgram`` or ``fx.GraphModule`` to evaluate; ``inputs``
        its positional user inputs. Without a program ops only occupy time.
    clock : ``"virtual"`` or ``"scaled"``; ``time_scale`` wall seconds per plan second.
    faults : :class:`DeviceFailure`, :class:`OpFailure`, :class:`TransferLoss` or their
        strings (``"npu1@0.004"``, ``"op:NAME"``, ``"transfer:SRC->DST"``).
    replan : ``request -> Plan`` called after a device failure (default ``replan_list``).
    watchdog : longest any single wait may last, in wall seconds.
    policy : ``"plan"`` (no op or transfer starts before its planned time) or ``"asap"``.
    check : compare the outputs with an eager run of the program.
    torch_threads : torch intra-op threads while the run lasts (restored after); 1 by
        default: the device threads are the parallelism, and intra-op thread pools that
        contend with them cost milliseconds per op on a loaded machine.

    Raises
    ------
    ExecutionError
        If an op raises, a transfer is lost twice, a wait hits the watchdog or no device
        is left for some op; every thread has been joined when it is raised.
    PlanError, UsageError
        For a plan that does not fit ``problem`` or bad arguments.
    """
    validate(plan, problem)
    if clock not in CLOCKS or policy not in POLICIES:
        msg = f"clock must be one of {CLOCKS} and policy one of {POLICIES}"
        raise UsageError(msg)
    if not (math.isfinite(time_scale) and time_scale > 0 and watchdog > 0):
        msg = f"time_scale and watchdog must be positive, got {time_scale!r}, {watchdog!r}"
        raise UsageError(msg)
    specs = parse_faults(faults)
    check_faults(specs, problem)
    runner = make_runner(problem, graph, program, inputs)
    run = _Run(problem, runner, specs, clock, time_scale, watchdog, policy, replan)
    with intra_op_threads(torch_threads if runner is not None else None):
        run.go(plan)
    outputs = runner.outputs() if runner is not None else None
    match = None
    if runner is not None and check:
        eager = _eager_module(program)
        match = outputs_close(outputs, eager(*inputs))  # type: ignore[misc]
    return run.result(plan, outputs, match)


# ExportedProgram.module() generates and compiles a new GraphModule on every call, and
# torch keeps each one's source alive: memoise the eager module per program.
_EAGER_MODULES: weakref.WeakKeyDictionary[Any, Any] = weakref.WeakKeyDictionary()


def _eager_module(program: Any) -> Any:
    if not hasattr(program, "module"):
        return program
    try:
        return _EAGER_MODULES[program]
    except (KeyError, TypeError):
        pass
    module = program.module()
    with contextlib.suppress(TypeError):
        _EAGER_MODULES[program] = module
    return module


class _Run:
    """Phases of one execution and what they realized (all times in problem units)."""

    def __init__(
        self, p: Problem, runner: ProgramRunner | None, specs: Sequence[Fault], clock: str,
        time_scale: float, watchdog: float, policy: str,
        replan: Callable[[ReplanRequest], Plan] | None,
    ) -> None:  # fmt: skip
        self.p, self.runner, self.policy, self.watchdog = p, runner, policy, watchdog
        self.clock = Clock(virtual=clock == "virtual", unit_wall=p.quantum * time_scale)
        self.clock_name, self.time_scale = clock, time_scale
        self.replan = replan or replan_list
        self.failures = sorted(
            (f for f in specs if isinstance(f, DeviceFailure)), key=lambda f: (f.time, f.device)
        )
        self.op_faults = frozenset(f.op for f in specs if isinstance(f, OpFailure))
        self.losses = {(f.src, f.dst): f.times for f in specs if isinstance(f, TransferLoss)}
        self.final: dict[int, tuple[int, float, float]] = {}  # op -> (device, start, finish)
        self.copies: dict[int, dict[int, float]] = {}  # op -> {device: time its result is there}
        self.runs: list[OpRun] = []
        self.xruns: list[TransferRun] = []
        self.overheads: list[float] = []
        self.device_free: dict[int, float] = {}
        self.link_free: dict[int, float] = {}
        self.failed: list[str] = []
        self.seen: list[str] = []
        self.fault_times: dict[str, float] = {}
        self.replans: list[Plan] = []
        self.wall0 = time.perf_counter()
        self.wall = 0.0

    # ------------------------------------------------------------------ phases
    def go(self, plan: Plan) -> None:
        p = self.p
        todo = set(range(p.n))
        t_resume = 0.0
        failures = list(self.failures)
        phase = 0
        while True:
            while failures and failures[0].device in self.failed:
                failures.pop(0)
            fail = failures.pop(0) if failures else None
            cut = fail.time / p.quantum if fail else math.inf
            failing = p.device_index[fail.device] if fail else -1
            ph = self._phase(plan, todo, cut, failing, t_resume, phase)
            ph.run()
            self._absorb(ph, phase)
            todo = {v for v in range(p.n) if v not in self.final}
            end = max((f for _, _, f in self.final.values()), default=0.0)
            if fail is None or (not ph.triggered and not todo and cut >= end):
                break
            self.failed.append(fail.device)
            self.seen.append(str(fail))
            self.fault_times[str(fail)] = fail.time
            for c in self.copies.values():
                c.pop(failing, None)
            todo |= self._lost_needed(todo)
            if not todo:
                break
            t_resume = cut if self.clock.virtual else max(cut, self.clock.now())
            plan = self._replan(todo, t_resume)
            phase += 1
        self.wall = time.perf_counter() - self.wall0

    def _phase(
        self, plan: Plan, todo: set[int], cut: float, failing: int, t_resume: float, phase: int
    ) -> Phase:
        p, q = self.p, self.p.quantum
        asap = self.policy == "asap"
        dev = {v: p.device_index[plan.assignment[p.names[v]]] for v in todo}
        op_rel = {v: t_resume if asap else _units(plan.start[p.names[v]], q) for v in todo}
        tasks = {v: OpTask(v, p.names[v], dev[v], op_rel[v], float(p.dur[v, dev[v]])) for v in todo}
        static: dict[tuple[int, int], Slot] = {}

        def copy_slot(u: int, d: int) -> Slot:
            if (u, d) not in static:
                static[u, d] = Slot()
                static[u, d].set(self.copies[u][d], time.perf_counter())
            return static[u, d]

        edge_of = {
            (int(u), int(v)): k for k, (u, v) in enumerate(zip(p.edge_src, p.edge_dst, strict=True))
        }
        xfers: dict[int, XferTask] = {}
        xkey: dict[int, tuple[float, float, int]] = {}
        planned = [(edge_of[p.index[t.src], p.index[t.dst]], t) for t in plan.transfers]
        for k, t in planned:
            u, v = int(p.edge_src[k]), int(p.edge_dst[k])
            if v in todo:
                a = p.device_index[t.src_device]
                src = tasks[u].done if u in todo and dev[u] == a else copy_slot(u, a)
                rel = t_resume if asap else _units(t.start, q)
                xfers[k] = self._xfer(k, a, dev[v], rel, src)
                xkey[k] = (t.start, t.finish, u)
        for v in sorted(todo):
            for u, k in p.preds[v]:
                if u in todo and dev[u] == dev[v]:
                    tasks[v].inputs.append(tasks[u].done)
                elif u not in todo and dev[v] in self.copies[u]:
                    tasks[v].inputs.append(copy_slot(u, dev[v]))
                else:
                    if k not in xfers:  # a plan may omit zero-cost transfers: add them
                        a, src = (
                            (dev[u], tasks[u].done)
                            if u in todo
                            else self._nearest(u, k, dev[v], copy_slot)
                        )
                        t0 = plan.finish.get(p.names[u], 0.0)
                        xfers[k] = self._xfer(
                            k, a, dev[v], t_resume if asap else _units(t0, q), src
                        )
                        xkey[k] = (t0, t0 + xfers[k].dur * q, u)
                    tasks[v].inputs.append(xfers[k].arrival)
        # Plan order on every device and link: (start, finish, topological index) never puts a
        # consumer before its producer, zero-length ops included.
        order = {v: (plan.start[p.names[v]], plan.finish[p.names[v]], v) for v in todo}
        device_ops: dict[int, list[OpTask]] = {}
        for v in sorted(todo, key=order.__getitem__):
            device_ops.setdefault(dev[v], []).append(tasks[v])
        engines: dict[str, list[XferTask]] = {}
        for x in sorted(xfers.values(), key=lambda x: xkey[x.k]):
            engines.setdefault(self._engine_name(x), []).append(x)
        phase_ = Phase(
            devices=p.devices, device_ops=device_ops, engines=engines,
            device_free=self.device_free, link_free=self.link_free,
            contention=p.link_contention, clock=self.clock, cut=cut, failing=failing,
            run_op=self.runner.run_op if self.runner else None, op_faults=self.op_faults,
            losses=self.losses, watchdog=self.watchdog,
        )  # fmt: skip
        phase_.warmup = self.runner.warmup if self.runner else None
        return phase_

    def _xfer(self, k: int, a: int, b: int, release: float, src: Slot) -> XferTask:
        p = self.p
        return XferTask(
            k=k, src=p.names[int(p.edge_src[k])], dst=p.names[int(p.edge_dst[k])], src_dev=a,
            dst_dev=b, links=p.route_links.get((a, b), ()), release=release,
            dur=float(p.comm[k, a, b]), source=src,
        )  # fmt: skip

    def _nearest(
        self, u: int, k: int, d: int, slot: Callable[[int, int], Slot]
    ) -> tuple[int, Slot]:
        a = min(self.copies[u], key=lambda a: (self.copies[u][a] + self.p.comm[k, a, d], a))
        return a, slot(u, a)

    def _engine_name(self, x: XferTask) -> str:
        p = self.p
        if x.links:
            return p.link_names[x.links[0]]
        return f"{p.devices[x.src_dev]}->{p.devices[x.dst_dev]}"

    def _absorb(self, ph: Phase, phase: int) -> None:
        p = self.p
        for v, d, s, f, status, ovh in ph.op_runs:
            self.runs.append(OpRun(p.names[v], p.devices[d], s, f, status, phase))
            if status == "done":
                self.final[v] = (d, s, f)
                self.copies[v] = {d: f}
                self.overheads.append(ovh)
        for x, s, f, status in ph.xfer_runs:
            self.xruns.append(TransferRun(self._transfer(x, s, f), status, phase))
            u = p.index[x.src]
            if status == "done" and u in self.copies:
                have = self.copies[u]
                have[x.dst_dev] = min(have.get(x.dst_dev, math.inf), f)
        self.device_free.update(ph.device_free)
        self.link_free.update(ph.link_free)

    def _transfer(self, x: XferTask, s: float, f: float) -> Transfer:
        p = self.p
        return Transfer(
            src=x.src, dst=x.dst, bytes=float(p.edge_bytes[x.k]), src_device=p.devices[x.src_dev],
            dst_device=p.devices[x.dst_dev], links=tuple(p.link_names[i] for i in x.links) or
            (self._engine_name(x),), start=s, finish=f,
        )  # fmt: skip

    def _lost_needed(self, todo: set[int]) -> set[int]:
        """Finished ops whose results are needed but survive nowhere (to re-run)."""
        p = self.p
        sinks = [v for v in range(p.n) if not p.succs[v]]
        stack = [*todo, *(v for v in sinks if v in self.final and not self.copies.get(v))]
        out = {v for v in sinks if v in self.final and not self.copies.get(v)}
        while stack:
            v = stack.pop()
            for u, _ in p.preds[v]:
                if u not in todo and u not in out and not self.copies.get(u):
                    out.add(u)
                    stack.append(u)
        for v in out:
            del self.final[v]
            self.copies.pop(v, None)
            if self.runner is not None:
                self.runner.forget(p.names[v])
        return out

    def _replan(self, todo: set[int], t_resume: float) -> Plan:
        p, q = self.p, self.p.quantum
        try:
            masked = mask_devices(p, self.failed)
            request = ReplanRequest(
                problem=masked,
                time=t_resume * q,
                run=tuple(p.names[v] for v in sorted(todo)),
                copies={p.names[u]: {p.devices[d]: t * q for d, t in c.items()}
                        for u, c in self.copies.items() if c},
                device_free={p.devices[d]: t * q for d, t in self.device_free.items()},
                link_free={p.link_names[x]: t * q for x, t in self.link_free.items()},
                failed=tuple(self.failed),
            )  # fmt: skip
            new = self.replan(request)
        except HetschedError as err:
            msg = f"re-planning after the failure of {', '.join(self.failed)} failed: {err}"
            raise ExecutionError(msg) from err
        lacking = [p.names[v] for v in todo if p.names[v] not in new.assignment]
        dead = [x for x in new.assignment.values() if x in self.failed]
        if lacking or dead:
            msg = f"re-plan is unusable: unplaced {lacking[:3]}, on failed devices {dead[:3]}"
            raise ExecutionError(msg)
        self.replans.append(new)
        return new

    # ------------------------------------------------------------------ result
    def result(self, plan: Plan, outputs: Any, match: bool | None) -> ExecutionResult:
        p, q = self.p, self.p.quantum
        names = p.names
        makespan = max((f for _, _, f in self.final.values()), default=0.0)
        busy = dict.fromkeys(p.devices, 0.0)
        for r in self.runs:
            busy[r.device] += r.finish - r.start
        ov = np.asarray(self.overheads) * 1e6
        scale = MappingProxyType
        final = sorted(self.final.items())
        util = {d: (b / makespan if makespan > 0 else 0.0) for d, b in busy.items()}
        delivered = tuple(_rescale(x.transfer, q) for x in self.xruns if x.status == "done")
        return ExecutionResult(
            outputs=outputs,
            assignment=scale({names[v]: p.devices[d] for v, (d, _, _) in final}),
            start=scale({names[v]: s * q for v, (_, s, _) in final}),
            finish=scale({names[v]: f * q for v, (_, _, f) in final}),
            transfers=delivered,
            runs=tuple(OpRun(r.op, r.device, r.start * q, r.finish * q, r.status, r.phase)
                       for r in self.runs),
            transfer_runs=tuple(TransferRun(_rescale(x.transfer, q), x.status, x.phase)
                                for x in self.xruns),
            makespan=makespan * q,
            planned_makespan=plan.makespan,
            lower_bound=plan.lower_bound,
            utilization=scale(util),
            dispatch_median_us=float(np.median(ov)) if ov.size else 0.0,
            dispatch_p99_us=float(np.percentile(ov, 99)) if ov.size else 0.0,
            dispatch_mean_us=float(ov.mean()) if ov.size else 0.0,
            faults_seen=tuple(self.seen),
            replans=tuple(self.replans),
            outputs_match=match,
            clock=self.clock_name,
            time_scale=self.time_scale,
            wall_time=self.wall,
            units=p.units,
            devices=p.devices,
            links=tuple(sorted({x.transfer.links[0] for x in self.xruns if x.transfer.links})),
            fault_times=scale(dict(self.fault_times)),
        )  # fmt: skip


def _units(t: float, q: float) -> float:
    """Plan time to units: integral (exact) when it is a whole number of quanta."""
    u = t / q
    r = round(u)
    return float(r) if abs(u - r) < 1e-6 else u


def _rescale(t: Transfer, q: float) -> Transfer:
    return Transfer(t.src, t.dst, t.bytes, t.src_device, t.dst_device, t.links,
                    t.start * q, t.finish * q)  # fmt: skip
