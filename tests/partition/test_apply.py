"""apply(): split programs compute what the eager model computes; bad plans are named."""

from __future__ import annotations

import random

import pytest

torch = pytest.importorskip("torch")

from hetsched.errors import PlanError  # noqa: E402
from hetsched.graph import zoo  # noqa: E402
from hetsched.graph.fusion import fuse  # noqa: E402
from hetsched.graph.torch_import import from_exported  # noqa: E402
from hetsched.partition import apply, segment_report  # noqa: E402
from hetsched.plan import Plan  # noqa: E402
from hetsched.problem import ModeSpec, Problem  # noqa: E402
from hetsched.schedule.throughput import capability_greedy, make_pipeline_plan  # noqa: E402


def _plan(name, *, fused=False):
    model, args = zoo.build(name, "tiny")
    ep = torch.export.export(model, args)
    g = from_exported(ep, name=name)
    if fused:
        g = fuse(g)
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


def _manual(devices):
    modes = {op: ModeSpec((d,)) for op, d in devices.items()}
    t = dict.fromkeys(devices, 0.0)
    return Plan(
        modes=modes, start=t, finish=t, transfers=(), makespan=0.0, lower_bound=0.0, solver="manual"
    )


def _check_split(plan, ep, g, model, args):
    split = apply(plan, ep, g)
    with torch.no_grad():
        torch.testing.assert_close(split(*args), model(*args))
    assert sum(r["ops"] for r in split.hetsched_segments) == len(g.nodes)
    return split


@pytest.mark.parametrize("name", [m.name for m in zoo.list_models()])
def test_fused_plans_split_equal_to_eager(name):
    model, args, ep, g, plan = _plan(name, fused=True)
    assert g.meta["fused"]["groups"]  # something fused
    _check_split(plan, ep, g, model, args)
    rng = random.Random(0)
    for _ in range(3):  # scattered devices: fused members interleave with other segments
        devices = {op: rng.choice(["cpu", "gpu", "npu0"]) for op in plan.assignment}
        _check_split(_manual(devices), ep, g, model, args)


def test_conv_bn_relu_net_splits_equal_to_eager():
    from tests.partition.nets import ConvBnNet

    model, args = ConvBnNet.build()
    ep = torch.export.export(model, args)
    g = fuse(from_exported(ep, name="net"))
    assert g.meta["fused"]["folded"] == 3 and len(g.nodes) == 4
    for k in range(len(g.nodes)):  # each op alone on the GPU, the rest on the CPU
        devices = {n.name: ("gpu" if i == k else "cpu") for i, n in enumerate(g.nodes)}
        split = _check_split(_manual(devices), ep, g, model, args)
        assert "gpu" in split.hetsched_devices.values()


def test_a_fused_op_interleaved_with_a_branch_stays_one_piece():
    """``linear``'s group ends with ``add``, which reads ``mean``; the program computes
    ``mean`` between ``relu`` and ``add``. Cutting the fx order would put ``add`` in a
    segment before ``mean``'s while ``mean`` reads that segment's ``mul``: a cycle."""
    from tests.partition.nets import LateBranchNet

    model, args = LateBranchNet.build()
    ep = torch.export.export(model, args)
    g = fuse(from_exported(ep, name="late"))
    assert dict(g.meta["fused"]["groups"]) == {"linear": ["linear", "relu", "add"]}
    plan = _manual({"mul": "cpu", "linear": "cpu", "mean": "gpu"})
    split = _check_split(plan, ep, g, model, args)
    assert list(split.hetsched_devices.values()) == ["cpu", "gpu", "cpu"]


def test_fx_groups_that_depend_on_each_other_are_named():
    from tests.partition.nets import LateBranchNet

    model, args = LateBranchNet.build()
    ep = torch.export.export(model, args)
    g = from_exported(ep, name="late")
    fx = dict(g.meta["fx_nodes"])
    # a bogus map: "mul" also claims "add", which reads "mean", which reads "mul"
    bad = g.replace(meta={**g.meta, "fx_nodes": {**fx, "mul": [*fx["mul"], "add"],
                                                  "add": []}})  # fmt: skip
    plan = _manual({op: ("gpu" if op == "mean" else "cpu") for op in fx})
    with pytest.raises(PlanError, match="do not form a DAG"):
        apply(plan, ep, bad)
