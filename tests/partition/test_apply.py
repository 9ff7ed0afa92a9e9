"""apply(): split programs compute what the eager model computes; bad plans are named."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")

from hetsched.errors import PlanError  # noqa: E402
from hetsched.graph import zoo  # noqa: E402
from hetsched.graph.torch_import import from_exported  # noqa: E402
from hetsched.partition import apply, segment_report  # noqa: E402
from hetsched.problem import ModeSpec, Problem  # noqa: E402
from hetsched.schedule.throughput import capability_greedy, make_pipeline_plan  # noqa: E402


def _plan(name):
    model, args = zoo.build(name, "tiny")
    ep = torch.export.export(model, args)
    g = from_exported(ep, name=name)
    p = Problem.build(g, "edge-soc")
    # A fragmented plan (capability greedy before merging) exercises many segments.
    assign = capability_greedy(p, min_block_size=1)
    plan = make_pipeline_plan(p, assign, solver="test", period_bound=0)
    return model, args, ep, g, plan


@pytest.mark.parametrize("name", [m.name for m in zoo.list_models()])
def test_round_trip_every_zoo_model(name):
    model, args, ep, g, plan = _plan(name)
    split = apply(plan, ep, g)
    with torch.no_grad():
        torch.testing.assert_close(split(*args), model(*args))
    rows = split.hetsched_segments
    assert sum(r["ops"] for r in rows) == len(g.nodes)
    assert set(split.hetsched_devices.values()) <= set(plan.assignment.values())
    assert "segment" in segment_report(split)


def test_plan_for_another_program():
    _, _, ep, g, plan = _plan("mlp")
    other = plan.with_(modes={**plan.modes, "conv2d_99": ModeSpec(("cpu",))})
    with pytest.raises(PlanError, match="conv2d_99"):
        apply(other, ep, g)
    missing = dict(plan.modes)
    missing.pop("relu")
    with pytest.raises(PlanError, match="relu"):
        apply(plan.with_(modes=missing), ep, g)
