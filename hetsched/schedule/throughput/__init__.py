"""Throughput: how fast the graph streams when it repeats (pipeline partitions, modulo).

* :data:`~hetsched.schedule.throughput.steady.solve_steady` - the throughput objective:
  the best periodic schedule over every assignment, never worse than the latency plan run
  back to back or the pipeline, with both and the baselines side by side.
* :data:`solve_pipeline` - minimum pipeline period (a restriction: one stage per device),
  exact (CP-SAT), against the PipeDream
  DP, equal-split and capability-greedy baselines (:mod:`.baselines`, also solvers of their
  own: :data:`BASELINE_SOLVERS`).
* :data:`hetsched.schedule.throughput.modulo.solve_modulo` - minimum initiation interval.
* :func:`solve_objective` - what :func:`hetsched.solve` calls for ``objective != "latency"``.

Every plan is a :class:`~hetsched.plan.Plan`; a throughput plan carries its
:class:`~hetsched.plan.PipelineResult` in ``plan.pipeline``, a modulo plan its
:class:`~hetsched.plan.ModuloResult` in ``plan.modulo``.

Examples
--------
>>> from hetsched.graph import OpGraph, OpNode, Edge
>>> from hetsched.problem import Problem
>>> g = OpGraph("toy", [OpNode("a", cost={"*": 2.0}), OpNode("b", cost={"*": 3.0})],
...             [Edge("a", "b")], meta={"units": "units"})
>>> p = Problem.build(g, "homogeneous-2")
>>> plan = solve_objective(p, g, objective="throughput", time_limit=5, workers=1)
>>> plan.modulo.ii, plan.status
(3.0, 'optimal')
>>> solve_objective(p, g, objective="throughput", solver="pipeline", time_limit=5,
...                 workers=1).stats["restriction"]
'pipeline stages, one per device in a fixed order'
"""

from __future__ import annotations

from dataclasses import replace
from functools import partial
from typing import TYPE_CHECKING, Any

from hetsched.errors import UsageError
from hetsched.schedule.throughput.baselines import (
    BASELINES,
    Baseline,
    capability_greedy,
    dp_partition,
    equal_split,
    run_baselines,
)
from hetsched.schedule.throughput.pipecost import (
    PipelineCost,
    channels,
    is_contiguous,
    pipeline_cost,
    simple_period_bound,
)
from hetsched.schedule.throughput.pipeline import build_pipeline_model
from hetsched.schedule.throughput.pipeplan import (
    make_pipeline_plan,
    pipeline_result,
    validate_pipeline,
)
from hetsched.schedule.throughput.pipesolve import (
    BASELINE_SOLVERS,
    pipeline_solver,
    solve_pipeline,
)
from hetsched.solver import ProgressCallback, StopToken, run_solver

if TYPE_CHECKING:
    from hetsched.graph.opgraph import OpGraph
    from hetsched.plan import Plan
    from hetsched.problem import Problem

__all__ = [
    "BASELINES",
    "BASELINE_SOLVERS",
    "Baseline",
    "PipelineCost",
    "build_pipeline_model",
    "capability_greedy",
    "channels",
    "check_iterations",
    "demo_cases",
    "dp_partition",
    "equal_split",
    "is_contiguous",
    "make_pipeline_plan",
    "pipeline_cost",
    "pipeline_result",
    "pipeline_solver",
    "run_baselines",
    "simple_period_bound",
    "solve_objective",
    "solve_pipeline",
    "validate_pipeline",
]

_EXACT = ("portfolio", "cpsat", "steady", "modulo")
# Throughput options that ask for the pipeline family (one stage per device), a restriction.
_RESTRICTIONS = {"contiguous", "stages", "max_latency", "min_block_size", "export_model"}


def check_iterations(iterations: Any) -> int:
    """The modulo check's iteration count: ``None`` means 4; anything but an int >= 1 is a
    :class:`UsageError` (``0`` too: it is not "the default")."""
    if iterations is None:
        return 4
    if isinstance(iterations, bool) or not isinstance(iterations, int) or iterations < 1:
        msg = f"iterations must be a positive integer, got {iterations!r}"
        raise UsageError(msg)
    return iterations


def solve_objective(
    problem: Problem,
    graph: OpGraph | None = None,
    *,
    objective: str,
    solver: str = "portfolio",
    time_limit: float = 10.0,
    seed: int = 0,
    progress: ProgressCallback | None = None,
    workers: int | None = None,
    stop: StopToken | None = None,
    **options: Any,
) -> Plan:
    """Solve ``problem`` for ``objective`` ``"throughput"`` or ``"modulo"``; validated plan.

    Both ask one question, the best steady-state period over every assignment
    (:data:`~hetsched.schedule.throughput.steady.solve_steady`: a periodic schedule, never
    worse than the latency plan run back to back or the pipeline; the plan's objective is
    the name asked). The pipeline family (one stage per device in a fixed order) is a
    restriction, solved when asked for: ``solver="pipeline"`` (exact, hinted by the
    baselines), a baseline name (``dp``, ``equal-ops``, ``equal-flops``, ``capability``), or
    any of its options; its plan says so in ``stats["restriction"]``. ``graph`` gives the
    equal-FLOPs baseline its FLOPs. Each solve runs through
    :func:`~hetsched.solver.run_solver` with its own stop token (or ``stop``).
    ``workers``: CP-SAT threads of the exact solvers (default 2); the baselines refuse it.

    Pipeline options: ``contiguous``, ``stages``, ``max_latency`` (s, also checked on the
    plan), ``min_block_size`` (the capability baseline's shortest run), ``export_model``
    (exact only). Periodic options: ``carried`` [(src, dst, distance)], ``iterations`` (how
    many the unrolled check runs, default 4).
    """
    run = partial(
        run_solver, problem=problem, time_limit=time_limit, seed=seed, progress=progress,
        stop=stop,
    )  # fmt: skip
    asked = {k for k, v in options.items() if v is not None and v is not False}
    if objective == "throughput" and (solver not in _EXACT or asked & _RESTRICTIONS):
        spec = pipeline_solver(solver)
        if graph is not None:
            options["graph"] = graph
        check = partial(validate_pipeline, max_latency=options.get("max_latency"))
        plan = run(replace(spec, check=check), workers=workers, **options)
        restriction = "contiguous pipeline stages" if options.get("contiguous") else (
            "pipeline stages, one per device in a fixed order"
        )  # fmt: skip
        return replace(plan, stats={**plan.stats, "restriction": restriction})
    if objective in ("throughput", "modulo"):
        from hetsched.schedule.throughput.modulo import validate_modulo
        from hetsched.schedule.throughput.steady import solve_steady

        if solver not in _EXACT:
            msg = f"objective 'modulo' is solved by CP-SAT; solver {solver!r} does not apply"
            raise UsageError(msg)
        iterations = check_iterations(options.pop("iterations", None))
        check = partial(validate_modulo, iterations=iterations)
        options = {k: v for k, v in options.items() if k not in _RESTRICTIONS}  # all unset
        if graph is not None:
            options["graph"] = graph
        spec = replace(solve_steady, check=check)
        return run(spec, workers=workers, objective=objective, **options)
    msg = f"solve_objective handles 'throughput' and 'modulo', not {objective!r}"
    raise UsageError(msg)


def __getattr__(name: str) -> Any:
    # demo_cases builds zoo graphs: import on first use.
    if name == "demo_cases":
        from hetsched.schedule.throughput.demo import demo_cases

        return demo_cases
    msg = f"module {__name__!r} has no attribute {name!r}"
    raise AttributeError(msg)
