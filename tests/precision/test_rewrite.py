"""lower_program: a plan's precisions written into the fx program compute what the
PrecisionInterpreter computes, on inputs the calibration never saw."""

from __future__ import annotations

from typing import Any

import pytest

torch = pytest.importorskip("torch")

from hetsched.errors import UsageError  # noqa: E402
from hetsched.precision import (  # noqa: E402
    calibration_inputs,
    held_out_inputs,
    lower_program,
    plan_precisions,
)
from tests.precision.lowering import (  # noqa: E402
    assert_exact,
    interpreted,
    leaves,
    manual_plan,
    mixed_precisions,
)


def test_lowered_program_equals_interpreter(program: Any, measured: Any) -> None:
    ep, graph, args = program
    precs = mixed_precisions(measured)
    low = lower_program(ep, graph, precs)
    assert dict(low.precisions) == precs
    eager = ep.module()
    with torch.no_grad():
        for x in held_out_inputs(args, 2):
            got = low.module(*x)
            assert_exact(got, interpreted(ep, graph, precs, x))
            assert not all(
                torch.equal(a, b) for a, b in zip(leaves(got), leaves(eager(*x)), strict=True)
            )


def test_inserted_nodes_belong_to_their_op(program: Any, measured: Any) -> None:
    ep, graph, _ = program
    precs = mixed_precisions(measured)
    low = lower_program(ep, graph, precs)
    names = {n.name for n in low.module.graph.nodes}
    listed = [x for xs in low.fx_nodes.values() for x in xs]
    assert set(listed) <= names and len(listed) == len(set(listed))
    base = {x for xs in graph.meta["fx_nodes"].values() for x in xs}
    new = set(listed) - base
    assert new and all(n.startswith(("to", "fake_quantize")) for n in new)
    assert any(str(n.target).startswith("hetsched_int8_") for n in low.module.graph.nodes
               if n.op == "get_attr")  # fmt: skip


def test_nothing_lowered_is_the_program(gpt_tiny: Any) -> None:
    ep, graph, args = gpt_tiny
    low = lower_program(ep, graph, {op.name: "native" for op in graph.nodes})
    assert not low.changes and not low.precisions
    with torch.no_grad():
        torch.testing.assert_close(low.module(*args), ep.module()(*args), rtol=0, atol=0)


def test_plan_precisions_skip_the_exported_ones(gpt_tiny: Any) -> None:
    _, graph, _ = gpt_tiny
    ops = [n.name for n in graph.nodes]
    plan = manual_plan(graph, {ops[0]: "float32", ops[1]: "int8", ops[2]: "native"})
    assert plan_precisions(plan, graph) == {ops[1]: "int8"}


def test_explicit_calibration_changes_the_scales(gpt_tiny: Any) -> None:
    ep, graph, args = gpt_tiny
    op = next(n.name for n in graph.nodes if n.category == "matmul")
    default = lower_program(ep, graph, {op: "int8"})
    same = lower_program(ep, graph, {op: "int8"}, calibration=calibration_inputs(args, 2))
    other = lower_program(ep, graph, {op: "int8"}, calibration=held_out_inputs(args, 3))
    assert dict(same.changes) == dict(default.changes)
    assert dict(other.changes) != dict(default.changes)


def test_bad_requests_are_usage_errors(gpt_tiny: Any) -> None:
    ep, graph, _ = gpt_tiny
    op = graph.nodes[1].name
    with pytest.raises(UsageError, match="unknown precision"):
        lower_program(ep, graph, {op: "int4"})
    with pytest.raises(UsageError, match="no op"):
        lower_program(ep, graph, {"nope": "int8"})
    with pytest.raises(UsageError, match="ExportedProgram"):
        lower_program(ep.module(), graph, {op: "float16"})
    with pytest.raises(UsageError, match="at least one"):
        lower_program(ep, graph, {op: "float16"}, calibration=[])


def test_held_out_inputs_exclude_the_calibration(gpt_tiny: Any) -> None:
    _, _, args = gpt_tiny
    calib = calibration_inputs(args, 3)
    held = held_out_inputs(args, 3)
    no_example = calibration_inputs(args, 2, include_example=False)
    assert len(held) == 3 and len(no_example) == 2
    assert torch.equal(no_example[0][0], calib[1][0])  # same seed, same draws
    for h in held:
        assert not any(torch.equal(h[0], c[0]) for c in calib)
    with pytest.raises(UsageError, match="seed 0"):
        held_out_inputs(args, 2, seed=0)
