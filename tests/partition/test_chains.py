"""Sharded chains (Megatron-LM's pairs): the cost model's keep/from modes, the one rule the
solvers and the validator share, and split programs that leave tensors sharded between
ops and still compute what the model computes."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest
import torch

from hetsched.costmodel import Platform
from hetsched.costmodel.sharding import chain_links, split_modes
from hetsched.errors import PlanError
from hetsched.exec import execute
from hetsched.exec.program import outputs_close
from hetsched.graph import OpGraph, fuse, zoo
from hetsched.graph.resolve import import_program
from hetsched.partition import apply
from hetsched.plan import Plan, validate
from hetsched.plan.plan import plan_from_schedule
from hetsched.problem import Problem
from hetsched.problem.chains import chain_ok, kept_layout
from hetsched.schedule.explain import explain
from hetsched.schedule.latency.cpsat import solve_cpsat
from hetsched.schedule.latency.heuristics import solve_cpop, solve_heft, solve_peft
from hetsched.schedule.latency.splits import (
    fixed_sharding,
    on_group,
    split_report,
    without_splits,
    without_token_splits,
)
from tests.partition.test_shard import chain
from tests.problem.test_relaxation import brute_force


def test_gpt_blocks_chain_as_megatron_does() -> None:
    graph = fuse(zoo.graph("gpt", "base"))
    links = {
        graph.nodes[u].name: (graph.nodes[v].name, x) for u, (v, x) in chain_links(graph).items()
    }
    assert links["linear"] == ("scaled_dot_product_attention", "qkv")  # queries, keys, values
    assert links["scaled_dot_product_attention"] == ("linear_1", "cols")  # heads -> out proj
    assert links["linear_2"] == ("linear_3", "cols")  # MLP up (+gelu) -> down
    assert "linear_1" not in links and "linear_48" not in links  # read by norms, the output
    rows = split_modes(graph, Platform.preset("multi-gpu"))
    at = {(graph.nodes[r.op].name, r.devices, r.tag): r for r in rows}
    four = (1, 2, 3, 4)
    gathered = at[("linear_2", four, "split:column")]
    kept = at[("linear_2", four, "split:column+keep:cols")]
    assert kept.gather == 0 and kept.time == pytest.approx(gathered.time - gathered.gather)
    assert kept.memory < gathered.memory  # a quarter of the output on each device
    row = at[("linear_3", four, "split:row+from:cols")]
    # one-shot over the NVLink mesh: one latency, each link carrying a quarter both ways
    # (a ring would pay three latencies)
    shot = 3e-6 + 2 * graph.node("linear_3").out_bytes / 4 / 300e9
    assert row.gather == pytest.approx(2 * shot)  # all-reduce: reduce-scatter + all-gather
    head = [r for r in rows if graph.nodes[r.op].name == "linear_48"]  # 50,257 words
    assert {r.devices for r in head} == {(1, 2), (3, 4), four}  # uneven shards


def test_the_rule_holds_for_every_solver_and_the_validator_enforces_it() -> None:
    p = Problem.build(chain([1024, 4096, 1024], rows=512), "multi-gpu", memory=False, split=True)
    p = without_token_splits(p)  # token splits win on these rows (no all-reduce)
    assert p.has_chains and p.chain_rules
    for solver in (solve_heft, solve_peft, solve_cpop):
        for q in (p, fixed_sharding(p)):
            validate(solver(q, time_limit=5), p)
    plan = solve_cpsat(p, time_limit=20, seed=0, workers=1)
    validate(plan, p)
    report = split_report(plan, p)
    assert plan.status == "optimal" and report["fc0"]["keeps"] == "cols"  # Megatron's pair
    assert report["fc1"]["split"] == "row" and report["fc1"]["takes"] == "cols"
    whole = solve_cpsat(without_splits(p), time_limit=20, seed=0, workers=1)
    assert plan.makespan < 0.5 * whole.makespan
    ops = {o.name: o for o in explain(plan, p).ops}  # a chain's ends move together or not
    assert ops["fc1"].runner_up is None and "output kept sharded" in "; ".join(ops["fc0"].decided)
    # fc0 keeps its output sharded, fc1 runs whole: no device holds fc1's input
    k0 = next(k for k in p.modes.ops_modes(0).tolist() if kept_layout(p.modes.tag[k]))
    k1 = int(p.device_mode[1, 1])
    assert not chain_ok(p.modes, k0, k1)
    start = [0, int(p.mode_dur[k0])]
    bad = plan_from_schedule(p, modes=[k0, k1], start=start, solver="test")
    with pytest.raises(PlanError, match=r"leaves its output sharded .* does not read it so"):
        validate(bad, p)


@pytest.mark.parametrize("platform", ["edge-soc", "multi-gpu"])
def test_cpsat_equals_the_brute_force_with_chains(platform: str) -> None:
    p = Problem.build(chain([256, 1024, 256, 512]), platform, memory=False, split=True)
    assert p.has_chains
    best = brute_force(p)
    assert best is not None
    plan = solve_cpsat(p, time_limit=30, seed=0, workers=1)
    validate(plan, p)
    assert plan.status == "optimal" and round(plan.makespan / p.quantum) == best
    assert plan.lower_bound / p.quantum <= best


def test_a_memory_cap_that_drops_readers_drops_their_producers_keep_modes() -> None:
    graph: OpGraph = chain([1024, 4096, 1024], rows=512)
    p = Problem.build(graph, "multi-gpu", memory=False, split=True)
    rows = [k for k in range(p.num_modes) if "from:" in p.modes.tag[k]]
    kept = np.setdiff1d(np.arange(p.num_modes), rows)
    q = p.select_modes(kept)  # no reader left for a sharded output: no producer keeps one
    assert not q.has_chains


# ---------------------------------------------------------------------- the program out
def _pairs(problem: Problem) -> Problem:
    """Splits over gpu0+gpu1 only, Megatron-style: two heads split two ways."""
    return fixed_sharding(on_group(problem, (1, 2)))


def assert_split_runs_as_eager(
    plan: Plan, problem: Problem, ep: Any, graph: OpGraph, args: tuple[Any, ...]
) -> None:
    """The plan's split program equals eager, and its run too, at the plan's makespan."""
    split = apply(plan, ep, graph)
    assert outputs_close(split(*args), ep.module()(*args))
    run = execute(plan, problem, graph=graph, program=ep, inputs=list(args))
    assert run.outputs_match and math.isclose(run.makespan, plan.makespan, rel_tol=1e-9)


def _model(name: str) -> tuple[Any, tuple[Any, ...]]:
    if name == "gpt":
        return zoo.build("gpt", "tiny")
    from tests.models.build import build, need

    need(name)
    return build(name)


@pytest.mark.parametrize(
    ("name", "layouts"),
    [
        ("gpt", {"qkv", "cols"}),
        ("gpt2", {"qkv", "cols"}),
        ("llama", {"cols"}),
        ("mobilenet_v3_small", {"cols"}),  # an in-place hardswish between the classifier's
        ("unet2d-cond", {"cols"}),  # metadata checks on the way to its attention
    ],
)
def test_chained_programs_equal_eager(name: str, layouts: set[str]) -> None:
    model, args = _model(name)
    ep = torch.export.export(model, args, strict=False)
    graph = fuse(import_program(ep, name=name))
    problem = Problem.build(graph, "multi-gpu", split=True)
    plan = solve_heft(_pairs(problem), time_limit=5)
    validate(plan, problem)
    kept = {kept_layout(m.tag) for m in plan.modes.values()} - {None}
    assert kept == layouts
    if name != "mobilenet_v3_small":  # its norms and activations are fused into convs
        assert any(m.tag == "split:replica" for m in plan.modes.values())  # on both GPUs
    assert_split_runs_as_eager(plan, problem, ep, graph, args)


@pytest.mark.parametrize("precision", ["int8", "w8a16", "float16"])
def test_chains_in_reduced_precisions_equal_the_lowered_program(precision: str) -> None:
    from hetsched.costmodel.sharding import chain_links
    from hetsched.precision import measure_sensitivity
    from hetsched.precision.rewrite import lower_program, plan_precisions
    from hetsched.schedule.latency.listsched import retime_modes

    model, args = zoo.build("mlp", "tiny")
    ep = torch.export.export(model, args, strict=False)
    graph = import_program(ep, name="mlp")
    table = measure_sensitivity(ep, graph)
    p = Problem.build(graph, "multi-gpu", errors=table.errors, error_budget=1.0, split=True)
    m = p.modes

    def mode(v: int, want: str, prec: str) -> int:
        return next(
            k for k in m.ops_modes(v).tolist()
            if m.devices_of(k) == (1, 2) and m.tag[k] == want and m.precision[k] == prec
        )  # fmt: skip

    chosen = [int(p.device_mode[v, 1]) for v in range(p.n)]  # whole on gpu0
    pairs = [(u, v) for u, (v, x) in chain_links(graph).items() if x == "cols"]
    for u, v in pairs[::2]:  # producer kept sharded in `precision`, its reader by rows
        chosen[u] = mode(u, "split:column+keep:cols", precision)
        row = "int8" if precision == "int8" else graph.nodes[v].dtype
        chosen[v] = mode(v, "split:row+from:cols", row)
    start, transfers = retime_modes(p, np.array(chosen), list(range(p.n)))
    plan = plan_from_schedule(p, modes=chosen, start=start, transfer_start=transfers, solver="t")
    validate(plan, p)
    split = apply(plan, ep, graph)
    lowered = lower_program(ep, graph, plan_precisions(plan, graph)).module
    assert outputs_close(split(*args), lowered(*args))
    run = execute(plan, p, graph=graph, program=ep, inputs=list(args))
    assert run.outputs_match
