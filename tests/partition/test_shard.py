"""Tensor parallelism end to end: split modes from the cost model, solvers against a brute
force over them, bounds that stay bounds, and split programs that compute what the model
computes (apply and the executor, shards on their own threads)."""

from __future__ import annotations

import itertools
import math
from typing import Any

import numpy as np
import pytest
import torch

from hetsched.costmodel import Platform
from hetsched.costmodel.sharding import (
    describe_split,
    shard_node,
    split_floor,
    split_groups,
    split_modes,
)
from hetsched.errors import PlanError, UsageError
from hetsched.exec import execute
from hetsched.exec.program import outputs_close
from hetsched.graph import OpGraph, OpNode, Tensor, fuse, zoo
from hetsched.graph.resolve import import_program
from hetsched.partition import apply
from hetsched.plan import validate
from hetsched.problem import Problem
from hetsched.schedule.bounds import lower_bound
from hetsched.schedule.latency.cpsat import solve_cpsat
from hetsched.schedule.latency.heuristics import solve_heft, solve_peft
from hetsched.schedule.latency.splits import (
    any_split_bound_of,
    fixed_sharding,
    split_report,
    without_splits,
)
from hetsched.shard import shard_program
from tests.problem.test_relaxation import brute_force


# ---------------------------------------------------------------------- the cost model
def linear(name: str, d_in: int, d_out: int, rows: int = 128) -> OpNode:
    return OpNode(
        name, "aten.linear.default", "matmul", flops=2.0 * rows * d_in * d_out,
        bytes_read=4.0 * (rows * d_in + d_in * d_out), bytes_written=4.0 * rows * d_out,
        param_bytes=4.0 * d_in * d_out, out_bytes=4.0 * rows * d_out, shape=(rows, d_out),
    )  # fmt: skip


def chain(widths: list[int], rows: int = 128) -> OpGraph:
    nodes = [linear(f"fc{i}", a, b, rows) for i, (a, b) in enumerate(itertools.pairwise(widths))]
    tensors = [Tensor(x.name, x.name, (y.name,), x.out_bytes) for x, y in itertools.pairwise(nodes)]
    return OpGraph("chain", nodes, tensors=tensors)


def test_groups_are_identical_devices_in_aligned_blocks() -> None:
    assert split_groups(Platform.preset("edge-soc")) == ((2, 3),)
    assert split_groups(Platform.preset("multi-gpu")) == ((1, 2), (3, 4), (1, 2, 3, 4))
    assert split_groups(Platform.preset("workstation")) == ()


def test_a_shard_is_a_kth_of_the_work_and_the_gather_is_paid() -> None:
    fc = linear("fc", 1024, 4096)
    half = shard_node(fc, 2)
    assert half.flops == fc.flops / 2 and half.param_bytes == fc.param_bytes / 2
    assert half.bytes_read == 4.0 * 128 * 1024 + fc.param_bytes / 2  # the whole input
    p = Platform.preset("multi-gpu")
    rows = split_modes(OpGraph("g", [fc]), p)
    pair = next(r for r in rows if r.devices == (1, 2) and r.tag == "split:column")
    ring = 3e-6 + fc.out_bytes / 2 / 300e9  # one step of the ring over NVLink
    assert pair.gather == pytest.approx(ring)
    assert pair.memory == pytest.approx(fc.param_bytes / 2 + fc.out_bytes)
    whole = Problem.build(OpGraph("g", [fc]), p, memory=False).exec_time[0, 1]
    assert pair.time < whole  # compute-bound: half the FLOPs for one NVLink step
    four = next(r for r in rows if len(r.devices) == 4)
    # the graph's output: each GPU sends its quarter to gpu0 over its own NVLink at once,
    # instead of the three steps of a ring all-gather
    assert four.gather == pytest.approx(3e-6 + fc.out_bytes / 4 / 300e9)


def test_only_heavy_ops_split_and_uneven_linears_pay_their_largest_shard() -> None:
    odd = OpNode("fc", "aten.linear.default", "matmul", flops=7e9, param_bytes=7e6, shape=(8, 7))
    relu = OpNode("relu", "aten.relu.default", "elementwise", flops=1e6, shape=(8, 8))
    att = OpNode("att", category="attention", flops=1e9, shape=(1, 3, 8, 8))
    feed = [Tensor("fc", "fc", ("relu",), 1e3)]  # relu reads a split op: it may replicate
    rows = split_modes(OpGraph("g", [odd, relu, att], tensors=feed), Platform.preset("multi-gpu"))
    split = {r.op for r in rows if describe_split(r.tag) != "replica"}
    assert split == {0}  # 3 heads split neither 2 nor 4 ways
    assert {r.op for r in rows if r.tag == "split:replica"} == {1}  # relu: whole on each
    assert shard_node(odd, 2).flops == pytest.approx(4e9)  # 4 of 7 features
    assert shard_node(odd, 4).param_bytes == pytest.approx(2e6)  # 2 of 7
    assert describe_split("split:channels+streamed") == "channels"


# ---------------------------------------------------------------------- solvers and bounds
@pytest.mark.parametrize(
    ("widths", "platform"),
    [([256, 512, 256], "edge-soc"), ([64, 2048, 64], "edge-soc"), ([512, 512], "multi-gpu")],
)
def test_cpsat_reaches_the_brute_force_over_split_modes(widths: list[int], platform: str) -> None:
    p = Problem.build(chain(widths), platform, memory=False, split=True)
    assert p.modes.multi_device
    best = brute_force(p)
    assert best is not None
    assert lower_bound(p) <= best  # a bound that allows splits
    plan = solve_cpsat(p, time_limit=20, seed=0, workers=1)
    validate(plan, p)
    assert plan.status == "optimal" and round(plan.makespan / p.quantum) == best
    for solver in (solve_heft, solve_peft):
        heur = solver(p, time_limit=5, seed=0)
        validate(heur, p)
        assert round(heur.makespan / p.quantum) >= best
    whole = solve_cpsat(without_splits(p), time_limit=20, seed=0, workers=1)
    assert plan.makespan <= whole.makespan + 1e-12  # splits only add choices


@pytest.mark.parametrize("platform", ["edge-soc", "multi-gpu"])
def test_no_modelled_split_beats_the_any_split_floor(platform: str) -> None:
    graph = fuse(zoo.graph("gpt", "tiny"))
    plat = Platform.preset(platform)
    floor, work = split_floor(graph, plat, precisions=["int8"])
    whole = Problem.build(graph, plat, memory=False)
    for v in range(whole.n):  # whole ops, every device: at least the floor and the work
        times = whole.modes.time[whole.modes.ops_modes(v)]
        assert floor[v] <= times.min() * (1 + 1e-9) and work[v] <= times.min() * (1 + 1e-9)
    for row in split_modes(graph, plat):  # the shards alone, without their all-gather
        assert floor[row.op] <= (row.time - row.gather) * (1 + 1e-9)
        assert work[row.op] <= len(row.devices) * (row.time - row.gather) * (1 + 1e-9)


@pytest.mark.parametrize(
    ("widths", "platform"), [([256, 512, 256], "edge-soc"), ([1024, 4096, 1024], "multi-gpu")]
)
def test_the_any_split_bound_is_below_the_exact_optimum(widths: list[int], platform: str) -> None:
    graph = chain(widths, rows=512)
    p = Problem.build(graph, platform, memory=False, split=True)
    plan = solve_cpsat(p, time_limit=20, seed=0, workers=1)
    assert plan.status == "optimal"
    bound = any_split_bound_of(p, graph, Platform.preset(platform))
    assert 0 < bound <= plan.makespan
    whole = Problem.build(graph, platform, memory=False)
    path = sum(whole.modes.time[whole.modes.ops_modes(v)].min() for v in range(whole.n))
    assert bound < path  # each op of the chain may split


def test_splitting_wins_on_a_compute_bound_chain_and_reports_it() -> None:
    p = Problem.build(chain([1024, 4096, 1024], rows=512), "multi-gpu", memory=False, split=True)
    plan = solve_cpsat(p, time_limit=20, seed=0, workers=1)
    whole = solve_cpsat(without_splits(p), time_limit=20, seed=0, workers=1)
    assert plan.makespan < 0.5 * whole.makespan
    report = split_report(plan, p)
    assert report and all(r["time"] < r["whole"] for r in report.values())
    fixed = fixed_sharding(p)
    assert all(len(fixed.describe_mode(k).devices) == 4 for k in range(fixed.num_modes))


# ---------------------------------------------------------------------- the program out
def _split_plan(model: str, platform: str) -> tuple[Any, Any, Any, Problem, Any]:
    net, args = zoo.build(model, "tiny")
    ep = torch.export.export(net, args, strict=False)
    graph = import_program(ep, name=model)
    problem = Problem.build(graph, platform, split=True)
    plan = solve_heft(fixed_sharding(problem), time_limit=5)
    validate(plan, problem)
    return ep, graph, args, problem, plan


@pytest.mark.parametrize(
    ("model", "platform"),
    [(m, "multi-gpu") for m in ("gpt", "resnet", "unet", "mlp", "mamba", "decode")]
    + [("gpt", "edge-soc"), ("resnet", "edge-soc")],
)
def test_split_programs_equal_eager(model: str, platform: str) -> None:
    ep, graph, args, problem, plan = _split_plan(model, platform)
    splits = {op: m for op, m in plan.modes.items() if describe_split(m.tag)}
    assert splits, "the fixed sharding splits every heavy op"
    split = apply(plan, ep, graph)
    assert split.hetsched_splits == {op: m.devices for op, m in splits.items()}
    devices = set(split.hetsched_devices.values())
    assert {d for m in splits.values() for d in m.devices} <= devices  # shards on each
    assert outputs_close(split(*args), ep.module()(*args))
    run = execute(plan, problem, graph=graph, program=ep, inputs=list(args))
    assert run.outputs_match and math.isclose(run.makespan, plan.makespan, rel_tol=1e-9)


@pytest.mark.parametrize("name", ["gpt2", "llama"])
def test_split_huggingface_models_equal_eager(name: str) -> None:
    pytest.importorskip("transformers")
    from tests.models.build import build

    model, args = build(name)
    ep = torch.export.export(model, args, strict=False)
    graph = import_program(ep, name=name)
    problem = Problem.build(graph, "multi-gpu", split=True)
    plan = solve_heft(fixed_sharding(problem), time_limit=5)
    assert any(describe_split(m.tag) for m in plan.modes.values())
    split = apply(plan, ep, graph)
    assert outputs_close(split(*args), ep.module()(*args))
    run = execute(plan, problem, graph=graph, program=ep, inputs=list(args))
    assert run.outputs_match


def test_shard_program_says_what_it_cannot_split() -> None:
    m = torch.nn.Sequential(torch.nn.Linear(4, 6), torch.nn.ReLU())
    gm = torch.export.export(m, (torch.randn(2, 4),)).module()
    with pytest.raises(PlanError, match="op 'relu' cannot be split as planned: 0 linear"):
        shard_program(gm, {"relu": ("relu",)}, {"relu": ("gpu0", "gpu1")})
    with pytest.raises(PlanError, match="dimension 0 of size 6 over 8 devices"):
        shard_program(gm, {"linear": ("linear",)}, {"linear": tuple("abcdefgh")})
    uneven = shard_program(gm, {"linear": ("linear",)}, {"linear": ("a", "b", "c", "d")})
    x = torch.randn(2, 4)
    torch.testing.assert_close(uneven.module(x), m(x))  # shards of 2, 1, 2, 1 features
    kept = {"linear": "split:column+keep:cols"}  # sharded, but the relu reads it whole
    with pytest.raises(PlanError, match="op 'linear' cannot be split as planned: relu reads"):
        shard_program(gm, {"linear": ("linear",), "relu": ("relu",)}, {"linear": ("a", "b")}, kept)


def test_split_is_for_latency_only() -> None:
    import hetsched

    with pytest.raises(UsageError, match="splits apply to objective latency"):
        hetsched.solve(chain([64, 64]), "multi-gpu", split=True, objective="throughput")
    out = hetsched.solve(chain([1024, 4096], rows=512), "multi-gpu", split=True, time_limit=5)
    assert out.stats["splits"] and np.isfinite(out.lower_bound)


def test_the_baselines_are_solvers_and_plans_of_the_whole_problem() -> None:
    from hetsched.solver import run_solver

    p = Problem.build(chain([1024, 4096, 1024], rows=512), "multi-gpu", memory=False, split=True)
    whole = run_solver("whole", p, time_limit=5, workers=1)
    fixed = run_solver("megatron", p, time_limit=5, workers=1)
    best = run_solver("portfolio", p, time_limit=5, workers=1)
    for plan in (whole, fixed, best):
        validate(plan, p)
        assert plan.lower_bound <= best.makespan + 1e-12  # bounds of the whole question
    assert not any(describe_split(m.tag) for m in whole.modes.values())
    assert all(len(m.devices) == 4 for m in fixed.modes.values())
    assert best.makespan <= min(whole.makespan, fixed.makespan) + 1e-12


def test_bench_split_is_for_the_models_suite(tmp_path: Any) -> None:
    from hetsched.bench import BenchConfig, build_suite

    with pytest.raises(UsageError, match="--split applies to --suite models, not random"):
        build_suite(BenchConfig(suite="random", out=str(tmp_path), split=True))
    specs = build_suite(BenchConfig(suite="models", out=str(tmp_path), quick=True, split=True))
    assert specs and all(s.params["split"] and s.name.endswith("+split") for s in specs)
