"""One model through export -> import -> solve -> apply -> executor, checked against eager.

:func:`run_model` is shared by ``tests/models/test_real_models.py`` and
``benchmarks/real_models.py``; it returns a :class:`ModelRun` (plain numbers and flags) and
raises nothing for a failing stage: the stage and the error are recorded instead.
"""

from __future__ import annotations

import time
import traceback
from dataclasses import asdict, dataclass, field
from typing import Any

from tests.models.build import build

__all__ = ["ModelRun", "import_graph", "run_model"]


@dataclass(frozen=True)
class ModelRun:
    """What one model did at each stage (times in seconds; ``None`` where not reached).

    ``ops_unfused`` is the op count with fusion off and ``fuse`` whether it was on.
    """

    model: str
    ops: int | None = None
    ops_unfused: int | None = None
    fuse: bool | None = None
    unknown: int | None = None
    unknown_ops: tuple[str, ...] = ()
    categories: dict[str, int] = field(default_factory=dict)
    makespan: float | None = None
    lower_bound: float | None = None
    gap: float | None = None
    status: str | None = None
    solver: str | None = None
    devices: dict[str, int] = field(default_factory=dict)
    export_s: float | None = None
    import_s: float | None = None
    solve_s: float | None = None
    exec_s: float | None = None
    split_equal: bool | None = None
    exec_equal: bool | None = None
    exec_makespan: float | None = None
    failed_stage: str | None = None
    error: str | None = None

    @property
    def ok(self) -> bool:
        """Every stage ran, and both the split program and the executor equal eager."""
        return self.failed_stage is None and bool(self.split_equal) and bool(self.exec_equal)

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "ok": self.ok}


def import_graph(ep: Any, name: str, *, fuse: bool = True) -> tuple[Any, int]:
    """``(graph, ops without fusion)``: the graph fused by :func:`hetsched.graph.fusion.fuse`
    when ``fuse`` is true, as imported otherwise."""
    from hetsched.graph import from_exported
    from hetsched.graph.fusion import fuse as fuse_graph

    graph = from_exported(ep, name=name)
    return (fuse_graph(graph) if fuse else graph), len(graph.nodes)


def _equal(got: Any, want: Any) -> bool:
    import torch

    try:
        torch.testing.assert_close(got, want)
    except (AssertionError, TypeError, ValueError):
        return False
    return True


def run_model(
    name: str,
    *,
    platform: str = "edge-soc",
    time_limit: float = 10.0,
    seed: int = 0,
    fuse: bool = True,
) -> ModelRun:
    """Build ``name`` (seed ``seed``), export, import, solve with the portfolio, split, execute.

    Every stage's failure is caught and recorded (``failed_stage``, ``error``) so that one
    model's failure does not hide the others'.
    """
    import torch

    import hetsched
    from hetsched.exec import execute
    from hetsched.partition import apply

    rec: dict[str, Any] = {"model": name}
    stage = "build"
    try:
        model, args = build(name, seed=seed)
        with torch.no_grad():
            want = model(*args)
        stage = "export"
        t0 = time.perf_counter()
        ep = torch.export.export(model, args, strict=False)
        rec["export_s"] = time.perf_counter() - t0
        stage = "import"
        t0 = time.perf_counter()
        graph, unfused = import_graph(ep, name, fuse=fuse)
        rec["import_s"] = time.perf_counter() - t0
        rec["ops"], rec["ops_unfused"] = len(graph.nodes), unfused
        rec["fuse"] = fuse
        other = [n for n in graph.nodes if n.category == "other"]
        rec["unknown"] = len(other)
        rec["unknown_ops"] = tuple(sorted({n.op for n in other}))
        rec["categories"] = graph.category_histogram()
        stage = "solve"
        t0 = time.perf_counter()
        plan = hetsched.solve(graph, platform, time_limit=time_limit, seed=seed, workers=2)
        rec["solve_s"] = time.perf_counter() - t0
        problem = hetsched.build_problem(graph, platform)
        hetsched.validate(plan, problem)
        rec.update(
            makespan=plan.makespan,
            lower_bound=plan.lower_bound,
            gap=plan.gap,
            status=plan.status,
            solver=plan.solver,
            devices=plan.ops_per_device(),
        )
        stage = "apply"
        split = apply(plan, ep, graph)
        with torch.no_grad():
            rec["split_equal"] = _equal(split(*args), want)
        stage = "execute"
        t0 = time.perf_counter()
        result = execute(plan, problem, graph=graph, program=ep, inputs=args)
        rec["exec_s"] = time.perf_counter() - t0
        rec["exec_makespan"] = result.makespan
        rec["exec_equal"] = bool(result.outputs_match) and _equal(result.outputs, want)
    except Exception as err:  # recorded, reported by the caller
        rec["failed_stage"] = stage
        rec["error"] = f"{type(err).__name__}: {err}\n{traceback.format_exc(limit=-3)}"
    return ModelRun(**rec)
