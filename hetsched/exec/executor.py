"""Run a plan: one thread per device, one transfer engine per link, real torch numerics.

:func:`execute` runs every op in its planned mode, in the plan's order on every device. An
op starts once each input tensor is on every device of its mode (produced there, or
delivered by a transfer), all those devices are free and (policy ``"plan"``) its planned
start time is reached; it holds all of them for its planned duration on a clock:
``"virtual"`` (discrete-event, deterministic: a valid plan is reproduced exactly) or
``"scaled"`` (threads really sleep, ``time_scale`` seconds of wall per second of plan).
A transfer moves one tensor to one device once, however many ops read it there. With a
``program`` each op really evaluates its fx nodes, once (on its first device) however many
devices its mode spans, so the outputs are real and are checked against eager. The run
allocates and frees each device's memory as its events happen (:mod:`hetsched.exec.memory`:
weights, op outputs until their last use, received tensors until their last reader) and
reports the peak: ``plan.memory`` exactly, for a plan run as planned on the virtual clock.

Device failures split the run into phases: at the failure time nothing new starts, the
failed device loses its running op, its in-flight transfers and every tensor only it
holds; tensors held elsewhere survive. The ops not yet run, plus the producers of lost
tensors still needed (by those ops, or as graph outputs), are re-planned on the survivors
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
>>> r.makespan == plan.makespan, r.outputs_match, dict(r.memory) == dict(plan.memory)
(True, None, True)
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

from hetsched.costmodel.sharding import describe_split
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
from hetsched.exec.memory import END, DeviceMemory, User
from hetsched.exec.program import OpRunner, make_runner, outputs_close
from hetsched.exec.replan import ReplanRequest, mask_devices, replan_list
from hetsched.exec.result import ExecutionResult, OpRun, TransferRun
from hetsched.exec.simulate import planned_transfers
from hetsched.plan import Plan, Transfer, validate
from hetsched.plan.plan import nearest_source
from hetsched.precision.sensitivity import intra_op_threads
from hetsched.problem import DEFAULT_PRECISION, ModeSpec, Problem

__all__ = ["check_run_options", "execute"]

CLOCKS = ("virtual", "scaled")
POLICIES = ("plan", "asap")


def check_run_options(
    *,
    clock: str = "virtual",
    time_scale: float = 1.0,
    watchdog: float = 30.0,
    policy: str = "plan",
) -> None:
    """Raise :class:`UsageError` for options :func:`execute` refuses (commands call it first)."""
    if clock not in CLOCKS or policy not in POLICIES:
        msg = f"clock must be one of {CLOCKS} and policy one of {POLICIES}"
        raise UsageError(msg)
    for name, value in (("time scale", time_scale), ("watchdog", watchdog)):
        if not (math.isfinite(value) and value > 0):
            msg = f"{name} must be a finite number > 0, got {value!r}"
            raise UsageError(msg)


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
    calibration: Sequence[Sequence[Any]] | None = None,
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
        strings (``"npu1@0.004"``, ``"op:NAME"``, ``"transfer:TENSOR@DEVICE"``,
        ``"transfer:SRC->DST"``).
    replan : ``request -> Plan`` called after a device failure (default ``replan_list``).
    watchdog : longest any single wait may last, in wall seconds.
    policy : ``"plan"`` (no op or transfer starts before its planned time) or ``"asap"``.
    check : compare the outputs with an eager run of the program (of the program with the
        plan's precisions written in, when the plan lowers ops).
    torch_threads : torch intra-op threads while the run lasts (restored after); 1 by
        default: the device threads are the parallelism, and intra-op thread pools that
        contend with them cost milliseconds per op on a loaded machine.
    calibration : user input tuples for int8 activation scales when the plan lowers ops
        (:func:`~hetsched.precision.rewrite.lower_program`; default: the ones
        ``measure_sensitivity`` uses). Ops run in their planned precision: the program is
        rewritten once, for the plan's precisions, before the run (ops re-planned after a
        failure keep them).

    Raises
    ------
    ExecutionError
        If an op raises, a transfer is lost twice, a wait hits the watchdog or no device
        is left for some op; every thread has been joined when it is raised.
    PlanError, UsageError
        For a plan that does not fit ``problem`` or bad arguments.
    """
    check_run_options(clock=clock, time_scale=time_scale, watchdog=watchdog, policy=policy)
    validate(plan, problem)
    specs = parse_faults(faults)
    check_faults(specs, problem)
    program, fx_nodes, reference, shards = _lowered(plan, graph, program, calibration)
    runner = make_runner(problem, graph, program, inputs, fx_nodes=fx_nodes, shards=shards)
    run = _Run(problem, runner, specs, clock, time_scale, watchdog, policy, replan)
    with intra_op_threads(torch_threads if runner is not None else None):
        run.go(plan)
    outputs = runner.outputs() if runner is not None else None
    match = None
    if runner is not None and check:
        eager = eager_module(reference)
        match = outputs_close(outputs, eager(*inputs))  # type: ignore[misc]
    return run.result(plan, outputs, match)


def execute_with(
    plan: Plan,
    problem: Problem,
    runner: OpRunner | None,
    *,
    clock: str = "virtual",
    time_scale: float = 1.0,
    watchdog: float = 30.0,
    policy: str = "plan",
    torch_threads: int | None = 1,
) -> ExecutionResult:
    """:func:`execute` with a runner of the caller's (several programs at once, say: the
    iterations of a periodic plan, :mod:`hetsched.exec.periodic`); no faults, no output
    check (the caller's runner holds the outputs)."""
    check_run_options(clock=clock, time_scale=time_scale, watchdog=watchdog, policy=policy)
    validate(plan, problem)
    run = _Run(problem, runner, (), clock, time_scale, watchdog, policy, None)
    with intra_op_threads(torch_threads if runner is not None else None):
        run.go(plan)
    return run.result(plan, None, None)


def _lowered(
    plan: Plan, graph: Any, program: Any, calibration: Sequence[Sequence[Any]] | None
) -> tuple[Any, Any, Any, Any]:
    """(program to run, op -> fx nodes or None, program to check against, op -> shards'
    fx nodes or None): the plan's precisions and tensor-parallel splits written into the
    first, its precisions alone into the third (the splits must not change what it
    computes)."""
    if program is None:
        return program, None, program, None
    if graph is None:
        lowered = [op for op, m in plan.modes.items() if m.precision != DEFAULT_PRECISION]
        split = [op for op, m in plan.modes.items() if describe_split(m.tag)]
        if split:
            msg = f"op {split[0]!r} runs split: running a program's shards needs its graph"
            raise UsageError(msg)
        if lowered:
            msg = (
                f"op {lowered[0]!r} runs at {plan.modes[lowered[0]].precision}: running a "
                "program at a plan's precisions needs its graph"
            )
            raise UsageError(msg)
        return program, None, program, None
    from hetsched.precision.rewrite import lower_program, plan_precisions
    from hetsched.shard import plan_split_tags, plan_splits, shard_program

    precisions = plan_precisions(plan, graph)
    splits = plan_splits(plan)
    if not precisions and not splits:
        return program, None, program, None
    low = lower_program(program, graph, precisions, calibration=calibration)
    reference = low.module if precisions else program
    if not splits:
        return low.module, low.fx_nodes, reference, None
    sharded = shard_program(low.module, low.fx_nodes, splits, plan_split_tags(plan))
    return sharded.module, sharded.fx_nodes, reference, sharded.shards


# ExportedProgram.module() generates and compiles a new GraphModule on every call, and
# torch keeps each one's source alive: memoise the eager module per program.
_EAGER_MODULES: weakref.WeakKeyDictionary[Any, Any] = weakref.WeakKeyDictionary()


def eager_module(program: Any) -> Any:
    """The eager module of an exported program (cached per program), or ``program``."""
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
    """Phases of one execution and what they realized (all times in problem units).

    ``held[op]`` maps each surviving device of the op's mode to the time its outputs are
    there; ``delivered[tensor]`` each surviving device a transfer brought it to.
    """

    def __init__(
        self, p: Problem, runner: OpRunner | None, specs: Sequence[Fault], clock: str,
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
        tensor_id = {x: t for t, x in enumerate(p.tensors.names)}
        # Losses by (tensor, device); those named by an edge bind to the first transfer that
        # serves the edge's consumer.
        self.losses: dict[tuple[int, int], int] = {}
        self.edge_losses: dict[tuple[int, int], int] = {}
        for f in specs:
            if isinstance(f, TransferLoss) and f.tensor:
                key = (tensor_id[f.tensor], p.device_index[f.device])
                self.losses[key] = self.losses.get(key, 0) + f.times
            elif isinstance(f, TransferLoss):
                key = (p.index[f.src], p.index[f.dst])
                self.edge_losses[key] = self.edge_losses.get(key, 0) + f.times
        self.final: dict[int, tuple[int, float, float]] = {}  # op -> (mode, start, finish)
        self.held: dict[int, dict[int, float]] = {}
        self.delivered: dict[int, dict[int, float]] = {}
        self.memory = DeviceMemory(p.num_devices)
        self.read = np.zeros(p.n, dtype=bool)  # ops whose outputs some op reads
        self.read[p.tensors.src] = True
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

    def tensor_at(self, t: int) -> dict[int, float]:
        """Surviving devices holding tensor ``t`` of a finished producer, and since when."""
        out = dict(self.held.get(int(self.p.tensors.src[t]), {}))
        for d, x in self.delivered.get(t, {}).items():
            out[d] = min(out.get(d, math.inf), x)
        return out

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
            ph = self._phase(plan, todo, cut, failing, t_resume)
            ph.run()
            self._absorb(ph, phase)
            todo = {v for v in range(p.n) if v not in self.final}
            end = max((f for _, _, f in self.final.values()), default=0.0)
            if fail is None or (not ph.triggered and not todo and cut >= end):
                break
            self.failed.append(fail.device)
            self.memory.interrupt(cut, failing)
            self.seen.append(str(fail))
            self.fault_times[str(fail)] = fail.time
            for where in (*self.held.values(), *self.delivered.values()):
                where.pop(failing, None)
            todo |= self._lost_needed(todo)
            if not todo:
                break
            t_resume = cut if self.clock.virtual else max(cut, self.clock.now())
            plan = self._replan(todo, t_resume)
            phase += 1
        self.memory.close(max((f for _, _, f in self.final.values()), default=0.0))
        self.wall = time.perf_counter() - self.wall0

    def _phase(
        self, plan: Plan, todo: set[int], cut: float, failing: int, t_resume: float
    ) -> Phase:
        p, q, mem = self.p, self.p.quantum, self.memory
        asap = self.policy == "asap"
        tasks: dict[int, OpTask] = {}
        for v in sorted(todo):
            m = _mode_of(p, v, plan.modes[p.names[v]])
            release = t_resume if asap else _units(plan.start[p.names[v]], q)
            tasks[v] = OpTask(
                v, p.names[v], m, p.modes.devices_of(m), release, float(p.mode_dur[m]),
                float(p.modes.memory[m] - p.modes.w[m]),
            )  # fmt: skip
            for d in tasks[v].devices:
                mem.need(("outputs", v, d), ("op", v, -1))
                if not self.read[v]:  # nobody reads it: its outputs stay to the end
                    mem.need(("outputs", v, d), END)
                mem.need(("weights", m, d), END)
                mem.allocate(("weights", m, d), float(p.modes.w[m]), v, t_resume)
        static: dict[tuple[int, int], Slot] = {}

        def copy_slot(t: int, d: int) -> Slot:
            if (t, d) not in static:
                static[t, d] = Slot()
                static[t, d].set(self.tensor_at(t)[d], time.perf_counter())
            return static[t, d]

        planned = planned_transfers(plan, p)
        xfers: dict[tuple[int, int], XferTask] = {}
        order_x: dict[tuple[int, int], tuple[float, float, int, int, int]] = {}
        for v in sorted(todo):
            for u, k in p.preds[v]:
                t = int(p.edge_tensor[k])
                for b in tasks[v].devices:
                    if u in todo and b in tasks[u].devices:
                        tasks[v].inputs.append(tasks[u].done)
                        mem.need(("outputs", u, b), ("op", v, -1))
                        continue
                    if u not in todo and b in self.tensor_at(t):
                        tasks[v].inputs.append(copy_slot(t, b))
                        self._need_copy(t, b, ("op", v, -1), t_resume)
                        continue
                    if (t, b) not in xfers:
                        x, t0 = self._xfer(t, b, tasks.get(u), planned.get((t, b)), copy_slot)
                        x.release = t_resume if asap else max(t_resume, _units(t0, q))
                        xfers[t, b] = x
                        order_x[t, b] = (t0, t0 + x.dur * q, u, t, b)
                        mem.need(("received", t, b), ("xfer", t, b))
                        if u in todo:
                            mem.need(("outputs", u, x.src_dev), ("xfer", t, b))
                        else:
                            self._need_copy(t, x.src_dev, ("xfer", t, b), t_resume)
                    mem.need(("received", t, b), ("op", v, -1))
                    lost = self.edge_losses.pop((u, v), 0)
                    if lost:
                        self.losses[t, b] = self.losses.get((t, b), 0) + lost
                    xfers[t, b].dsts.append(p.names[v])
                    tasks[v].inputs.append(xfers[t, b].arrival)
        # Plan order on every device and link: (start, finish, topological index) never puts a
        # consumer before its producer, zero-length ops included; every device of a mode sees
        # its ops in the same order, so the devices of a multi-device op never wait in a cycle.
        order = {v: (plan.start[p.names[v]], plan.finish[p.names[v]], v) for v in todo}
        device_ops: dict[int, list[OpTask]] = {}
        for v in sorted(todo, key=order.__getitem__):
            for d in tasks[v].devices:
                device_ops.setdefault(d, []).append(tasks[v])
        engines: dict[str, list[XferTask]] = {}
        for key in sorted(xfers, key=order_x.__getitem__):
            engines.setdefault(self._engine_name(xfers[key]), []).append(xfers[key])
        phase_ = Phase(
            devices=p.devices, device_ops=device_ops, engines=engines,
            device_free=self.device_free, link_free=self.link_free,
            contention=p.link_contention, clock=self.clock, cut=cut, failing=failing,
            run_op=self.runner.run_op if self.runner else None, op_faults=self.op_faults,
            losses=self.losses, memory=self.memory, watchdog=self.watchdog,
        )  # fmt: skip
        phase_.warmup = self.runner.warmup if self.runner else None
        return phase_

    def _xfer(
        self, t: int, b: int, producer: OpTask | None, planned: Transfer | None,
        copy_slot: Callable[[int, int], Slot],
    ) -> tuple[XferTask, float]:  # fmt: skip
        """The transfer of tensor ``t`` to device ``b`` and its planned start (plan time):
        from the producer running in this phase, or from a surviving copy. A plan may omit a
        transfer (a zero-cost one, or a custom re-planner's): it is added, from the source
        that delivers first, starting when the producer ends."""
        p, q = self.p, self.p.quantum
        u = int(p.tensors.src[t])
        a_plan = p.device_index.get(planned.src_device, -1) if planned else -1
        if producer is not None:
            have = producer.devices
            a = a_plan if a_plan in have else nearest_source(p, t, have, b)
            src = producer.done
            t0 = planned.start if planned else producer.release * q + producer.dur * q
        else:
            where = self.tensor_at(t)
            a = (
                a_plan
                if a_plan in where
                else min(where, key=lambda a: (where[a] + p.tensor_comm[t, a, b], a))
            )
            src = copy_slot(t, a)
            t0 = planned.start if planned else where[a] * q
        x = XferTask(
            tensor=t, name=p.tensors.names[t], src=p.names[u], dsts=[], src_dev=a, dst_dev=b,
            links=p.route_links.get((a, b), ()), release=0.0,
            dur=float(p.tensor_comm[t, a, b]), nbytes=float(p.tensors.nbytes[t]), source=src,
        )  # fmt: skip
        return x, t0

    def _need_copy(self, t: int, d: int, user: User, t_resume: float) -> None:
        """``user`` reads tensor ``t`` on ``d`` from a copy an earlier phase left there: its
        producer's outputs, or the buffer a transfer delivered."""
        p, u = self.p, int(self.p.tensors.src[t])
        if d in self.held.get(u, {}):
            m = self.final[u][0]
            nbytes = float(p.modes.memory[m] - p.modes.w[m])
            self.memory.need_copy(("outputs", u, d), user, nbytes, u, t_resume)
        else:
            nbytes = float(p.tensors.nbytes[t])
            self.memory.need_copy(("received", t, d), user, nbytes, t, t_resume)

    def _engine_name(self, x: XferTask) -> str:
        p = self.p
        if x.links:
            return p.link_names[x.links[0]]
        return f"{p.devices[x.src_dev]}->{p.devices[x.dst_dev]}"

    def _absorb(self, ph: Phase, phase: int) -> None:
        p = self.p
        for task, s, f, status, ovh in ph.op_runs:
            on = tuple(p.devices[d] for d in task.devices)
            self.runs.append(OpRun(task.name, on[0], s, f, status, phase, devices=on))
            if status == "done":
                self.final[task.v] = (task.mode, s, f)
                self.held[task.v] = dict.fromkeys(task.devices, f)
                self.overheads.append(ovh)
        for x, s, f, status in ph.xfer_runs:
            self.xruns.append(TransferRun(self._transfer(x, s, f), status, phase))
            if status == "done":
                have = self.delivered.setdefault(x.tensor, {})
                have[x.dst_dev] = min(have.get(x.dst_dev, math.inf), f)
        self.device_free.update(ph.device_free)
        self.link_free.update(ph.link_free)

    def _transfer(self, x: XferTask, s: float, f: float) -> Transfer:
        p, q = self.p, self.p.quantum
        return Transfer(
            tensor=x.name, src=x.src, dsts=tuple(x.dsts), bytes=x.nbytes,
            src_device=p.devices[x.src_dev], dst_device=p.devices[x.dst_dev],
            links=tuple(p.link_names[i] for i in x.links) or (self._engine_name(x),),
            start=s * q, finish=f * q,
        )  # fmt: skip

    def _lost_needed(self, todo: set[int]) -> set[int]:
        """Finished ops to re-run: producers of tensors needed (by ``todo``) that survive
        nowhere, and graph outputs whose devices all failed; recursively."""
        p = self.p
        out = {v for v in range(p.n) if not p.succs[v] and v in self.final and not self.held[v]}
        stack = [*todo, *out]
        while stack:
            v = stack.pop()
            for u, k in p.preds[v]:
                if u not in todo and u not in out and not self.tensor_at(int(p.edge_tensor[k])):
                    out.add(u)
                    stack.append(u)
        for v in out:
            del self.final[v]
            self.held.pop(v, None)
            if self.runner is not None:
                self.runner.forget(p.names[v])
        return out

    def _replan(self, todo: set[int], t_resume: float) -> Plan:
        p, q = self.p, self.p.quantum
        copies = {}
        for t in range(p.tensors.num_tensors):
            where = self.tensor_at(t) if int(p.tensors.src[t]) in self.final else {}
            if where:
                copies[p.tensors.names[t]] = {p.devices[d]: x * q for d, x in where.items()}
        try:
            masked = mask_devices(p, self.failed)
            request = ReplanRequest(
                problem=masked,
                time=t_resume * q,
                run=tuple(p.names[v] for v in sorted(todo)),
                copies=copies,
                device_free={p.devices[d]: t * q for d, t in self.device_free.items()},
                link_free={p.link_names[x]: t * q for x, t in self.link_free.items()},
                failed=tuple(self.failed),
            )  # fmt: skip
            new = self.replan(request)
            lacking = [p.names[v] for v in todo if p.names[v] not in new.modes]
            dead = [d for x in new.modes.values() for d in x.devices if d in self.failed]
            if lacking or dead:
                msg = f"unplaced {lacking[:3]}, on failed devices {dead[:3]}"
                raise ExecutionError(msg)
            for v in todo:
                _mode_of(p, v, new.modes[p.names[v]])
        except HetschedError as err:
            msg = f"re-planning after the failure of {', '.join(self.failed)} failed: {err}"
            raise ExecutionError(msg) from err
        self.replans.append(new)
        return new

    # ------------------------------------------------------------------ result
    def result(self, plan: Plan, outputs: Any, match: bool | None) -> ExecutionResult:
        p, q = self.p, self.p.quantum
        names = p.names
        makespan = max((f for _, _, f in self.final.values()), default=0.0)
        busy = dict.fromkeys(p.devices, 0.0)
        for r in self.runs:
            for d in r.devices:
                busy[d] += r.finish - r.start
        ov = np.asarray(self.overheads) * 1e6
        scale = MappingProxyType
        final = sorted(self.final.items())
        util = {d: (b / makespan if makespan > 0 else 0.0) for d, b in busy.items()}
        delivered = tuple(x.transfer for x in self.xruns if x.status == "done")
        on = {v: tuple(p.devices[d] for d in p.modes.devices_of(m)) for v, (m, _, _) in final}
        return ExecutionResult(
            outputs=outputs,
            assignment=scale({names[v]: on[v][0] for v, _ in final}),
            start=scale({names[v]: s * q for v, (_, s, _) in final}),
            finish=scale({names[v]: f * q for v, (_, _, f) in final}),
            transfers=delivered,
            runs=tuple(OpRun(r.op, r.device, r.start * q, r.finish * q, r.status, r.phase,
                             devices=r.devices) for r in self.runs),
            transfer_runs=tuple(self.xruns),
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
            modes=scale({names[v]: on[v] for v, _ in final}),
            memory=scale({p.devices[d]: float(x) for d, x in enumerate(self.memory.peak)}),
        )  # fmt: skip


def _mode_of(p: Problem, v: int, spec: ModeSpec) -> int:
    """The problem's mode id of op ``v``'s mode ``spec`` (a plain device name matches the
    op's device-view mode there); :class:`ExecutionError` if it has none such."""
    try:
        return p.mode_of(v, spec)
    except KeyError:
        pass
    d = p.device_index.get(spec.devices[0], -1) if len(spec.devices) == 1 else -1
    if d >= 0 and spec.precision == DEFAULT_PRECISION and not spec.tag and p.allowed[v, d]:
        return int(p.device_mode[v, d])
    msg = f"op {p.names[v]!r} has no mode {str(spec)!r}"
    raise ExecutionError(msg, op=p.names[v])


def _units(t: float, q: float) -> float:
    """Plan time to units: integral (exact) when it is a whole number of quanta."""
    u = t / q
    r = round(u)
    return float(r) if abs(u - r) < 1e-6 else u
