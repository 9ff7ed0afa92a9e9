"""apply() with a plan that lowers ops: the split program carries the plan's precisions
(the PrecisionInterpreter's numerics, exactly) and the executor computes the same."""

from __future__ import annotations

from typing import Any

import pytest

torch = pytest.importorskip("torch")

from hetsched.api import build_problem  # noqa: E402
from hetsched.exec import execute  # noqa: E402
from hetsched.partition import apply, segment_report  # noqa: E402
from hetsched.precision import held_out_inputs, measure_sensitivity, plan_precisions  # noqa: E402
from hetsched.schedule.latency.heuristics import solve_heft  # noqa: E402
from tests.precision.conftest import _program  # noqa: E402
from tests.precision.lowering import (  # noqa: E402
    assert_exact,
    interpreted,
    leaves,
    manual_plan,
    mixed_precisions,
)

MODELS = ["gpt", "resnet", "cnn"]  # two zoo models (fused graphs) and one from outside it


@pytest.fixture(scope="module", params=MODELS)
def measured_program(request: pytest.FixtureRequest) -> tuple[Any, Any, Any, Any]:
    ep, graph, args = _program(request.param)
    return ep, graph, args, measure_sensitivity(ep, graph, example_args=args, cache=False)


def _differs(a: Any, b: Any) -> bool:
    return not all(torch.equal(x, y) for x, y in zip(leaves(a), leaves(b), strict=True))


def test_split_carries_int8_and_float16(measured_program: Any) -> None:
    ep, graph, args, table = measured_program
    precs = mixed_precisions(table)
    split = apply(manual_plan(graph, precs), ep, graph)
    assert split.hetsched_precisions == precs
    assert len(split.hetsched_devices) >= 2
    assert "segment" in segment_report(split)
    eager = ep.module()
    with torch.no_grad():
        for x in held_out_inputs(args, 2):
            got = split(*x)
            assert_exact(got, interpreted(ep, graph, precs, x))
            assert _differs(got, eager(*x))


def test_no_lowered_op_is_eager_exactly(measured_program: Any) -> None:
    ep, graph, args, _ = measured_program
    split = apply(manual_plan(graph, {}), ep, graph)
    assert split.hetsched_precisions == {}
    with torch.no_grad():
        for x in held_out_inputs(args, 2):
            assert_exact(split(*x), ep.module()(*x))


def test_executor_outputs_equal_the_split_program(measured_program: Any) -> None:
    ep, graph, args, table = measured_program
    p = build_problem(graph, "edge-soc", error_budget=0.05, sensitivity=table)
    plan = solve_heft(p, time_limit=5, seed=0)
    precs = plan_precisions(plan, graph)
    assert "int8" in precs.values()
    split = apply(plan, ep, graph)
    x = held_out_inputs(args, 1)[0]
    r = execute(plan, p, graph=graph, program=ep, inputs=x)
    assert r.outputs_match is True
    with torch.no_grad():
        want = split(*x)
        torch.testing.assert_close(r.outputs, want, rtol=0, atol=0)
        assert_exact(want, interpreted(ep, graph, precs, x))
        assert _differs(r.outputs, ep.module()(*x))


def test_executor_and_split_share_a_given_calibration(measured_program: Any) -> None:
    ep, graph, args, table = measured_program
    p = build_problem(graph, "edge-soc", error_budget=0.05, sensitivity=table)
    plan = solve_heft(p, time_limit=5, seed=0)
    x = held_out_inputs(args, 1)[0]
    r = execute(plan, p, graph=graph, program=ep, inputs=x, calibration=[args])
    with torch.no_grad():
        want = apply(plan, ep, graph, calibration=[args])(*x)
    torch.testing.assert_close(r.outputs, want, rtol=0, atol=0)
