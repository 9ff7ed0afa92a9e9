"""Helpers for tests of programs with a plan's precisions written in."""

from __future__ import annotations

from typing import Any

import torch
from torch.utils import _pytree as pytree

from hetsched.plan import Plan
from hetsched.precision import calibration_inputs
from hetsched.precision.interpreter import PrecisionInterpreter
from hetsched.precision.runs import Measurer
from hetsched.problem import ModeSpec


def mixed_precisions(table: Any) -> dict[str, str]:
    """The ops with an int8 entry take int8, w8a16 (weight-only, where measured) and
    float16 in turn, the rest with a float16 entry float16."""
    out: dict[str, str] = {}
    int8 = [op for op in table.ops if "int8" in table.precisions(op)]
    for i, op in enumerate(int8):
        turn = ("int8", "w8a16", "float16")[i % 3]
        out[op] = turn if turn in table.precisions(op) else "float16"
    for op in table.ops:
        if op not in out and "float16" in table.precisions(op):
            out[op] = "float16"
    assert {"int8", "w8a16", "float16"} <= set(out.values())
    return out


def manual_plan(graph: Any, precisions: dict[str, str]) -> Plan:
    """Ops alternate between two devices, each in its precision (not validated)."""
    modes = {
        n.name: ModeSpec(("cpu" if i % 3 else "gpu",), precisions.get(n.name, "native"))
        for i, n in enumerate(graph.nodes)
    }
    t = dict.fromkeys(modes, 0.0)
    return Plan(modes=modes, start=t, finish=t, transfers=(), makespan=0.0, lower_bound=0.0,
                solver="manual")  # fmt: skip


def interpreted(ep: Any, graph: Any, precisions: dict[str, str], args: Any,
                samples: int = 2) -> list[torch.Tensor]:  # fmt: skip
    """User outputs of ``PrecisionInterpreter`` with the changes ``measure_error`` makes."""
    example = ep.example_inputs[0]
    with torch.no_grad():
        changes = Measurer(ep, graph, calibration_inputs(example, samples)).changes(precisions)
        interp = PrecisionInterpreter(ep, changes)
        return leaves(interp.outputs(interp.run(*interp.flat_inputs(args))))


def leaves(x: Any) -> list[torch.Tensor]:
    return [t for t in pytree.tree_leaves(x) if isinstance(t, torch.Tensor)]


def assert_exact(got: Any, want: Any) -> None:
    got, want = leaves(got), leaves(want)
    assert len(got) == len(want)
    for a, b in zip(got, want, strict=True):
        torch.testing.assert_close(a, b, rtol=0, atol=0)
