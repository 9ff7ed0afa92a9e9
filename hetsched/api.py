"""The small public surface: :func:`solve` a graph on a platform, get a validated plan.

Examples
--------
>>> from hetsched.graph import OpGraph, OpNode, Edge
>>> g = OpGraph("toy", [OpNode("a", cost={"*": 2.0}), OpNode("b", cost={"*": 3.0}),
...                     OpNode("c", cost={"*": 3.0})], [Edge("a", "b"), Edge("a", "c")])
>>> plan = solve(g, "homogeneous-2", time_limit=5)
>>> plan.makespan, plan.status
(5.0, 'optimal')
>>> solve(42)
Traceback (most recent call last):
...
hetsched.errors.UsageError: cannot solve an object of type 'int': give an OpGraph, a torch.export...
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from hetsched.errors import UsageError
from hetsched.plan import Plan
from hetsched.problem import Problem
from hetsched.problem.constraints import Constraints
from hetsched.solver import ProgressCallback, StopToken, run_solver

if TYPE_CHECKING:
    from hetsched.graph.opgraph import OpGraph

__all__ = [
    "OBJECTIVES",
    "as_graph",
    "build_problem",
    "op_errors",
    "program_of",
    "solve",
    "with_measured_error",
]

OBJECTIVES = ("latency", "throughput", "modulo", "memory")

_WHAT = (
    "give an OpGraph, a torch.export.ExportedProgram, an nn.Module or fx.GraphModule with "
    "example_args=(...), a (model, example_args) pair, or a graph file / zoo model name"
)


def as_graph(
    graph: Any, example_args: Any = None, *, name: str | None = None, fuse: bool = True
) -> OpGraph:
    """The :class:`~hetsched.graph.OpGraph` of what ``solve`` was given.

    An ``OpGraph`` as is; an ``ExportedProgram`` imported; an ``nn.Module`` or
    ``fx.GraphModule`` exported with ``example_args`` (also as a ``(model, args)`` pair);
    a string or path as the CLI reads it (zoo model, ``module:factory``, ``.json``/``.stg``).
    Programs are fused as the CLI fuses them unless ``fuse`` is False (split the program
    with the same graph). torch is not imported for any of this: a torch object means torch
    is loaded already.
    """
    from hetsched.graph.opgraph import OpGraph

    if isinstance(graph, OpGraph) and example_args is None:
        return graph
    if isinstance(graph, str | os.PathLike) and example_args is None:
        from hetsched.graph.resolve import load_graph_spec

        return load_graph_spec(os.fspath(graph), fuse=fuse)
    torch = sys.modules.get("torch")
    if torch is not None:
        if isinstance(graph, tuple) and len(graph) == 2 and example_args is None:
            graph, example_args = graph
        exported = sys.modules.get("torch.export")
        if exported is not None and isinstance(graph, exported.ExportedProgram):
            if example_args is not None:
                msg = "an ExportedProgram holds its example inputs: drop example_args"
                raise UsageError(msg)
            from hetsched.graph.resolve import import_program

            return import_program(graph, name=name or "exported", fuse=fuse)
        if isinstance(graph, torch.nn.Module):
            kind = "fx.GraphModule" if isinstance(graph, torch.fx.GraphModule) else "nn.Module"
            if example_args is None:
                msg = (
                    f"an {kind} is exported before it is solved: pass its example inputs, "
                    "solve(model, platform, example_args=(x,)), or a torch.export program"
                )
                raise UsageError(msg)
            from hetsched.graph.resolve import import_program

            args = example_args if isinstance(example_args, tuple) else (example_args,)
            program = torch.export.export(graph, args, strict=False)
            return import_program(program, name=name or type(graph).__name__, fuse=fuse)
    if example_args is not None:
        msg = f"example_args apply to an nn.Module or fx.GraphModule, not a {type(graph).__name__}"
        raise UsageError(msg)
    msg = f"cannot solve an object of type {type(graph).__name__!r}: {_WHAT}"
    raise UsageError(msg)


def build_problem(
    graph: Any,
    platform: Any = "edge-soc",
    *,
    cost_model: Any = None,
    memory: bool | None = None,
    link_contention: bool = False,
    error_budget: float | None = None,
    sensitivity: Any = None,
    split: bool = False,
    constraints: Constraints | None = None,
    ports: bool = False,
) -> Problem:
    """Compile ``graph`` (see :func:`as_graph`) on ``platform`` (a ``Platform``, a preset
    name or a platform TOML path); with an ``error_budget``, per-op errors from
    ``sensitivity`` (see :func:`op_errors`); with ``split``, tensor-parallel split modes;
    with ``constraints``, the user's pins, forbids, groups and segment cap."""
    from hetsched.costmodel import Platform

    g = as_graph(graph)
    errors = op_errors(g, sensitivity) if error_budget else None
    return Problem.build(
        g,
        Platform.resolve(platform),
        cost_model,
        memory=memory,
        link_contention=link_contention,
        errors=errors,
        error_budget=error_budget,
        split=split,
        constraints=constraints,
        ports=ports,
    )


def op_errors(graph: OpGraph, sensitivity: Any = None) -> Mapping[str, Mapping[str, float]]:
    """``{op: {precision: error}}`` for an error budget: from ``sensitivity`` (a
    :class:`~hetsched.precision.SensitivityTable` or its JSON path, checked to be this
    graph's) or, without one, from the graph's own ``meta["sensitivity"]``.

    Raises
    ------
    UsageError : no errors anywhere, or a table measured on another graph.
    """
    from hetsched.precision.table import SensitivityTable, from_graph_meta

    if sensitivity is None:
        table = from_graph_meta(graph)
        if table is None:
            msg = (
                f"an error budget needs per-op errors for graph {graph.name!r}: measure them "
                "(hetsched sensitivity MODEL -o table.json) and pass the table"
            )
            raise UsageError(msg)
    elif isinstance(sensitivity, SensitivityTable):
        table = sensitivity
    elif isinstance(sensitivity, str | os.PathLike):
        table = SensitivityTable.load(sensitivity)
    else:
        msg = f"sensitivity must be a SensitivityTable or a path, not {type(sensitivity).__name__}"
        raise UsageError(msg)
    table.check_for(graph)
    return table.errors


def solve(
    graph: Any,
    platform: Any = "edge-soc",
    *,
    example_args: Any = None,
    fuse: bool = True,
    objective: str = "latency",
    solver: str = "portfolio",
    time_limit: float = 10.0,
    seed: int = 0,
    cost_model: Any = None,
    memory: bool | None = None,
    link_contention: bool = False,
    ports: bool = False,
    error_budget: float | None = None,
    sensitivity: Any = None,
    program: Any = None,
    split: bool = False,
    constraints: Constraints | None = None,
    workers: int | None = None,
    progress: ProgressCallback | None = None,
    stop: StopToken | None = None,
    **options: Any,
) -> Plan:
    """Place and schedule every op of ``graph`` on ``platform``; return a validated plan.

    Parameters
    ----------
    graph : the operator DAG (see :mod:`hetsched.graph`), or what :func:`as_graph` turns
        into one: a ``torch.export.ExportedProgram``; an ``nn.Module`` or ``fx.GraphModule``
        with ``example_args`` (its positional inputs); a graph file or zoo model name.
        Programs are fused (:mod:`hetsched.graph.fusion`) unless ``fuse`` is False.
    platform : a ``Platform``, a preset name (``hetsched platforms`` lists them) or a
        platform TOML path, as ``--platform`` takes.
    objective : ``"latency"`` (makespan of one inference), ``"throughput"`` (pipeline
        period), ``"modulo"`` (initiation interval of repeated iterations) or ``"memory"``
        (the order of every op on one device, option ``device``, with the least peak memory).
    solver : one of :data:`hetsched.solver.SOLVERS` for latency.
    time_limit, seed : explicit solver parameters; ``workers`` for solvers that run parallel
        workers (default 2 there; an error for the others).
    memory : plans fit every device's memory at every instant (tensor lifetimes, weights
        resident or streamed); by default on when the platform declares capacities.
    link_contention : transfers on one link never overlap.
    ports : one-port transfers: a device sends one transfer and receives one at a time.
    error_budget, sensitivity : precision as a decision: each op may compute in int8 / w8a16
        (weight-only int8) / float16 / bfloat16 where a device can, as long as the per-op
        output errors of the plan add up to at most ``error_budget`` (relative L2); the
        errors come from ``sensitivity`` (:func:`op_errors`), measured from the program when
        none is given (cached). ``None`` or 0: every op as exported. With a program at hand
        (``program``, the ``ExportedProgram`` ``graph`` came from, or one ``graph`` is or
        names) the budget is on the error measured end to end on held-out inputs
        (``plan.measured_error``): the portfolio solves with the budget, measures, and
        solves again while the measurement leaves room
        (:func:`hetsched.precision.front.solve_measured`).
    split : heavy ops may also run tensor-parallel, cut across identical devices (linear
        layers by output features, convolutions by output channels, attention by heads;
        :mod:`hetsched.costmodel.sharding`); ``partition.apply`` and the executor run the
        shards. Latency objective only.
    constraints : the user's rules (:class:`~hetsched.problem.constraints.Constraints`): pin
        ops (names, module paths or patterns) to devices or device kinds, forbid devices,
        colocate groups of ops, cap the segments along the op order. Every solver honours
        them and the plan records them; colocation and the cap are latency-only.
    stop : a :class:`~hetsched.solver.StopToken` that cuts this solve short (it returns its
        best plan so far, marked ``interrupted``); each solve gets a fresh one by default.

    Raises
    ------
    InfeasibleError : an op no device supports, memory that cannot fit.
    UsageError, SolverError : bad arguments, or an option the solver does not take.
    """
    if objective not in OBJECTIVES:
        msg = f"unknown objective {objective!r} (choose from {', '.join(OBJECTIVES)})"
        raise UsageError(msg)
    if error_budget is not None:
        from hetsched.problem.problem import check_error_budget

        check_error_budget(error_budget)
    if error_budget and objective != "latency":
        msg = f"an error budget applies to objective latency, not {objective}"
        raise UsageError(msg)
    if split and objective != "latency":
        msg = f"tensor-parallel splits apply to objective latency, not {objective}"
        raise UsageError(msg)
    structural = constraints is not None and (constraints.colocate or constraints.max_segments)
    if structural and objective != "latency":
        msg = f"colocate and max_segments apply to objective latency, not {objective}"
        raise UsageError(msg)
    if objective == "modulo":  # before the graph is built or exported
        from hetsched.schedule.throughput import check_iterations

        options["iterations"] = check_iterations(options.get("iterations"))
    if error_budget and program is None:
        program = program_of(graph, example_args)
        if program is not None and not isinstance(graph, str | os.PathLike):
            graph, example_args = program, None  # export once: the graph comes from it
    graph = as_graph(graph, example_args, fuse=fuse)
    if constraints is None and graph.meta.get("constraints"):
        source = f"graph {graph.name!r} meta.constraints"
        constraints = Constraints.from_dict(graph.meta["constraints"], source=source)
    if error_budget and sensitivity is None and program is not None:
        from hetsched.graph.opgraph import OpGraph as _OpGraph
        from hetsched.precision import from_graph_meta, measure_sensitivity

        if isinstance(graph, _OpGraph) and from_graph_meta(graph) is None:
            sensitivity = measure_sensitivity(program, graph)  # cached by graph hash
    problem = build_problem(
        graph,
        platform,
        cost_model=cost_model,
        memory=memory,
        link_contention=link_contention,
        error_budget=error_budget,
        sensitivity=sensitivity,
        split=split,
        constraints=constraints,
        ports=ports,
    )
    if objective == "memory":
        from hetsched.schedule.memory import solve_peak_memory

        if solver not in ("portfolio", "memory"):
            msg = f"--objective memory has one solver (memory), not {solver!r}"
            raise UsageError(msg)
        return solve_peak_memory(
            problem,
            time_limit=time_limit,
            seed=seed,
            progress=progress,
            workers=workers,
            stop=stop,
            **options,
        )
    if objective != "latency":
        from hetsched.schedule.throughput import solve_objective

        return solve_objective(
            problem,
            graph,
            objective=objective,
            solver=solver,
            time_limit=time_limit,
            seed=seed,
            progress=progress,
            workers=workers,
            stop=stop,
            **options,
        )
    if program is not None and error_budget and solver == "portfolio":
        plan = _solve_measured(
            graph, platform, program, error_budget, sensitivity, time_limit, seed, split,
            constraints,
        )  # fmt: skip
    else:
        plan = run_solver(
            solver,
            problem,
            time_limit=time_limit,
            seed=seed,
            progress=progress,
            workers=workers,
            stop=stop,
            **options,
        )
        if program is not None and plan.error > 0:
            plan = with_measured_error(plan, program, graph, error_budget)
    if split:
        from hetsched.costmodel import Platform
        from hetsched.schedule.latency.splits import any_split_bound_of, split_report

        any_split = any_split_bound_of(problem, graph, Platform.resolve(platform), cost_model)
        stats = {"splits": split_report(plan, problem), "any_split_bound": any_split}
        plan = plan.with_(stats={**plan.stats, **stats})
    return plan


def _solve_measured(
    graph: OpGraph,
    platform: Any,
    program: Any,
    budget: float,
    sensitivity: Any,
    time_limit: float,
    seed: int,
    split: bool = False,
    constraints: Constraints | None = None,
) -> Plan:
    """The fastest plan measured within ``budget`` end to end (see
    :func:`hetsched.precision.front.solve_measured`); a second solve at most per round."""
    from hetsched.costmodel import Platform
    from hetsched.precision import SensitivityTable, measure_plan_error
    from hetsched.precision.front import solve_measured

    table = sensitivity
    if not isinstance(table, SensitivityTable):
        errors = op_errors(graph, sensitivity)
        from hetsched.graph.formats import graph_sha256

        table = SensitivityTable(graph.name, graph_sha256(graph), errors=errors)
    plan, tried = solve_measured(
        graph,
        Platform.resolve(platform),
        table,
        budget,
        lambda p: measure_plan_error(p, program, graph),
        time_limit=time_limit,
        seed=seed,
        split=split,
        constraints=constraints,
    )
    stats = {**plan.stats, "budget_rounds": [list(x) for x in tried]}
    return plan.with_(stats=stats)


def with_measured_error(plan: Plan, program: Any, graph: OpGraph, budget: float | None) -> Plan:
    """``plan`` with its error measured end to end on held-out inputs
    (:func:`hetsched.precision.measure_plan_error`); a measured error over ``budget`` is
    said loudly (a warning) and recorded in ``stats["over_budget"]``."""
    import warnings

    from hetsched.precision import measure_plan_error

    measured = measure_plan_error(plan, program, graph)
    stats = dict(plan.stats)
    if budget is not None and measured > budget:
        stats["over_budget"] = True
        warnings.warn(
            f"plan's measured error {measured:.4g} on held-out inputs exceeds its error budget "
            f"{budget:.4g} (predicted {plan.error:.4g}): lower the budget",
            stacklevel=2,
        )
    return plan.with_(measured_error=measured, stats=stats)


def program_of(graph: Any, example_args: Any = None) -> Any | None:
    """The ``torch.export.ExportedProgram`` behind what ``solve`` was given, when there is
    one (a program; a module or ``(model, args)`` exported; a zoo name or
    ``module:factory`` built and exported), else ``None`` (a graph or a graph file)."""
    if isinstance(graph, str | os.PathLike) and example_args is None:
        from hetsched.graph.resolve import is_factory_spec, load_program_spec
        from hetsched.graph.zoo import list_models

        spec = os.fspath(graph)
        if spec not in {m.name for m in list_models()} and not is_factory_spec(spec):
            return None
        graph, example_args = load_program_spec(spec)
    torch = sys.modules.get("torch")
    if torch is None:
        return None
    if isinstance(graph, tuple) and len(graph) == 2 and example_args is None:
        graph, example_args = graph
    if isinstance(graph, torch.export.ExportedProgram):
        return graph
    if isinstance(graph, torch.nn.Module) and example_args is not None:
        args = example_args if isinstance(example_args, tuple) else (example_args,)
        return torch.export.export(graph, args, strict=False)
    return None
