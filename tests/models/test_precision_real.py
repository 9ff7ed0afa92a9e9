"""A model nobody here wrote, with precision as a decision: HuggingFace GPT-2 (2 layers,
hidden 64, random weights) through sensitivity, a solve under an error budget, the split
program and the executor, whose outputs carry the plan's precisions."""

from __future__ import annotations

import os

import pytest

from tests.models.build import build


def test_gpt2_with_an_error_budget(tmp_path) -> None:  # type: ignore[no-untyped-def]
    pytest.importorskip("transformers")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import torch

    import hetsched
    from hetsched.api import build_problem
    from hetsched.exec import execute
    from hetsched.graph.resolve import import_program
    from hetsched.partition import apply
    from hetsched.precision import (
        held_out_inputs,
        lower_program,
        measure_sensitivity,
        plan_precisions,
    )

    model, args = build("gpt2")
    ep = torch.export.export(model, args, strict=False)
    graph = import_program(ep, name="gpt2")
    table = measure_sensitivity(ep, graph, samples=2, cache_dir=tmp_path)
    assert set(table.ops) and all(e >= 0 for row in table.errors.values() for e in row.values())
    plan = hetsched.solve(
        graph, "edge-soc", error_budget=0.01, sensitivity=table, program=ep, time_limit=1
    )
    lowered = plan_precisions(plan, graph)
    # the budget is on the error measured end to end (the solvers add noise powers, and
    # the measurement decides)
    assert lowered and plan.measured_error is not None and plan.measured_error <= 0.01
    x = held_out_inputs(args, 1)[0]
    split = apply(plan, ep, graph)
    expect = lower_program(ep, graph, lowered).module(*x)
    torch.testing.assert_close(split(*x), expect, rtol=0, atol=0)
    problem = build_problem(graph, "edge-soc", error_budget=float("inf"), sensitivity=table)
    run = execute(plan, problem, graph=graph, program=ep, inputs=list(x))
    assert run.outputs_match
