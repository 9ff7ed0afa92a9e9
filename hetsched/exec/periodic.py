"""Run ``N`` iterations of a periodic (throughput) plan and measure its period.

:func:`execute_periodic` unrolls the plan (:mod:`hetsched.schedule.throughput.unroll`:
op ``v`` of iteration ``i`` starts ``i`` periods after its offset, on the same mode) and
runs the copy with the executor: iterations overlap on the devices as the plan says, each
with its own inputs and its own values (one program runner per iteration), and each
iteration's outputs are checked against eager PyTorch on its inputs. The measured period
is the mean time between consecutive iterations' last finishes; on the virtual clock a
valid plan reproduces its planned period exactly.

Examples
--------
>>> import numpy as np
>>> from hetsched.problem import Problem
>>> from hetsched.schedule.throughput.modulo import solve_modulo
>>> p = Problem.from_arrays(names=["a", "b", "c"], devices=["x", "y"],
...     exec_time=np.array([[2.0, 4.0], [3.0, 3.0], [2.0, 2.0]]),
...     edges=[(0, 1, 1.0), (1, 2, 1.0)], quantum=1.0)
>>> plan = solve_modulo(p, time_limit=5, workers=1)
>>> r = execute_periodic(plan, p, iterations=5)
>>> r.measured_period == r.planned_period == plan.modulo.ii, len(r.periods)
(True, 4)
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from hetsched.errors import UsageError
from hetsched.exec.executor import eager_module, execute_with
from hetsched.exec.program import ProgramRunner, make_runner, outputs_close
from hetsched.exec.result import ExecutionResult
from hetsched.plan import Plan
from hetsched.problem import Problem
from hetsched.schedule.throughput.modulo import validate_modulo
from hetsched.schedule.throughput.unroll import iteration_of, unrolled_plan, unrolled_problem

__all__ = ["PeriodicRun", "execute_periodic"]


@dataclass(frozen=True)
class PeriodicRun:
    """``N`` iterations of a periodic plan, as run: the planned and measured periods (plan
    time), the time between consecutive iterations' last finishes (``periods``), each
    iteration's latency (first start to last finish), its outputs against eager
    (``None`` without a program) and the executor's result for the unrolled run."""

    iterations: int
    planned_period: float
    measured_period: float
    periods: tuple[float, ...]
    latencies: tuple[float, ...]
    outputs_match: tuple[bool | None, ...]
    run: ExecutionResult


class _Iterations:
    """One program runner per iteration: ``op#i`` runs ``op`` in runner ``i``."""

    def __init__(self, runners: Sequence[ProgramRunner]) -> None:
        self.runners = list(runners)

    def run_op(self, op: str) -> None:
        name, i = iteration_of(op)
        self.runners[i].run_op(name)

    def forget(self, op: str) -> None:
        name, i = iteration_of(op)
        self.runners[i].forget(name)

    def warmup(self) -> None:
        self.runners[0].warmup()


def execute_periodic(
    plan: Plan,
    problem: Problem,
    *,
    iterations: int = 4,
    graph: Any = None,
    program: Any = None,
    inputs: Sequence[Sequence[Any]] | None = None,
    clock: str = "virtual",
    time_scale: float = 1.0,
    watchdog: float = 30.0,
    policy: str = "plan",
    check: bool = True,
    torch_threads: int | None = 1,
) -> PeriodicRun:
    """Run ``iterations`` iterations of the periodic ``plan`` (see the module docstring).

    ``inputs``: one input tuple per iteration (with a ``program``). Loop-carried edges
    run on the clock only: their values cross iterations, which one program cannot say.
    The other arguments are :func:`~hetsched.exec.executor.execute`'s.
    """
    if plan.modulo is None:
        msg = f"plan objective {plan.objective!r} is not periodic: run it with execute()"
        raise UsageError(msg)
    validate_modulo(plan, problem, iterations=iterations)
    unrolled = unrolled_problem(problem, iterations, plan.modulo.carried)
    runs = unrolled_plan(plan, problem, iterations)
    runner = None
    runners: list[ProgramRunner] = []
    if program is not None:
        if plan.modulo.carried:
            msg = "real numerics of a plan with loop-carried edges are not supported"
            raise UsageError(msg)
        if inputs is None or len(inputs) != iterations:
            got = "none" if inputs is None else len(inputs)
            msg = f"give one input tuple per iteration ({iterations}), got {got}"
            raise UsageError(msg)
        for args in inputs:
            one = make_runner(problem, graph, program, tuple(args))
            assert one is not None
            runners.append(one)
        runner = _Iterations(runners)
    res = execute_with(
        runs, unrolled, runner, clock=clock, time_scale=time_scale, watchdog=watchdog,
        policy=policy, torch_threads=torch_threads,
    )  # fmt: skip
    first = np.full(iterations, np.inf)
    last = np.zeros(iterations)
    for name, t in res.finish.items():
        i = iteration_of(name)[1]
        last[i] = max(last[i], t)
        first[i] = min(first[i], res.start[name])
    periods = np.diff(last)
    match: list[bool | None] = [None] * iterations
    if runners and check:
        eager = eager_module(program)
        pairs = zip(runners, inputs or (), strict=True)
        match = [outputs_close(r.outputs(), eager(*a)) for r, a in pairs]
    return PeriodicRun(
        iterations=iterations,
        planned_period=plan.modulo.ii,
        measured_period=float(periods.mean()) if periods.size else 0.0,
        periods=tuple(float(x) for x in periods),
        latencies=tuple(float(x) for x in last - first),
        outputs_match=tuple(match),
        run=res,
    )
