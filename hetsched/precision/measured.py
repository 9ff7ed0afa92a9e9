"""A plan's output error, measured end to end on held-out inputs.

:func:`measure_plan_error` writes the plan's precisions into the program
(:func:`~hetsched.precision.rewrite.lower_program`, with activation scales from the
calibration inputs, as the split program and the executor run it) and compares its float
outputs with the exported program's on :func:`~hetsched.precision.held_out_inputs`: inputs
neither the sensitivity measurement nor the calibration saw.

Examples
--------
>>> import torch
>>> from hetsched.graph import fuse, from_exported
>>> torch.manual_seed(0) and None
>>> m = torch.nn.Sequential(torch.nn.Linear(16, 16), torch.nn.ReLU(), torch.nn.Linear(16, 4))
>>> ep = torch.export.export(m, (torch.randn(8, 16),))
>>> g = fuse(from_exported(ep))
>>> first = g.nodes[0].name
>>> error_of(ep, g, {}) == 0.0
True
>>> 0 < error_of(ep, g, {first: "int8"}) < 0.1
True
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from hetsched.precision.sensitivity import (
    HELD_OUT_SEED,
    _prepare,
    held_out_inputs,
    intra_op_threads,
)

if TYPE_CHECKING:  # pragma: no cover
    from hetsched.graph.opgraph import OpGraph
    from hetsched.plan import Plan

__all__ = ["error_of", "measure_plan_error"]


def error_of(
    program: Any,
    graph: OpGraph,
    precisions: Mapping[str, str],
    *,
    samples: int = 4,
    seed: int = HELD_OUT_SEED,
    threads: int | None = 1,
) -> float:
    """Relative L2 error of the float outputs with ``precisions`` (op -> precision) written
    into ``program``, against the program as exported, over ``samples`` held-out inputs."""
    import torch

    from hetsched.precision.rewrite import lower_program
    from hetsched.precision.runs import Measurer, output_error

    if not precisions:
        return 0.0
    ep, graph, example = _prepare(program, graph, None)
    with intra_op_threads(threads), torch.no_grad():
        lowered = lower_program(ep, graph, precisions)
        reference = ep.module()
        inputs = held_out_inputs(example, samples, seed=seed)
        ref = Measurer.flat([[reference(*x)] for x in inputs])
        out = Measurer.flat([[lowered.module(*x)] for x in inputs])
    return output_error(ref, out)[0]


def measure_plan_error(
    plan: Plan, program: Any, graph: OpGraph, *, samples: int = 4, seed: int = HELD_OUT_SEED
) -> float:
    """The error of ``plan``'s precisions, end to end on held-out inputs (:func:`error_of`)."""
    from hetsched.precision.rewrite import plan_precisions

    return error_of(program, graph, plan_precisions(plan, graph), samples=samples, seed=seed)
