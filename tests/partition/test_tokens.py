"""Sequence-parallel splits (``split:tokens``): cost model, solvers, the split program."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from hetsched.costmodel import Platform
from hetsched.costmodel.sharding import describe_split, split_modes
from hetsched.costmodel.tokens import token_dims, token_modes, token_shard_node
from hetsched.exec import execute
from hetsched.exec.program import outputs_close
from hetsched.graph import fuse, zoo
from hetsched.graph.resolve import import_program
from hetsched.partition import apply
from hetsched.plan import validate
from hetsched.problem import Problem
from hetsched.problem.chains import kept_layout
from hetsched.schedule.latency.cpsat import solve_cpsat
from hetsched.schedule.latency.heuristics import solve_cpop, solve_heft, solve_peft
from hetsched.schedule.latency.splits import fixed_sharding, on_group, token_sharding
from tests.partition.test_chains import _model, assert_split_runs_as_eager
from tests.partition.test_shard import chain
from tests.problem.test_relaxation import brute_force


def test_transformer_blocks_split_by_tokens_and_cnns_do_not() -> None:
    gpt = fuse(zoo.graph("gpt", "tiny"))
    rows = {gpt.nodes[v].name: s for v, s in token_dims(gpt).items()}
    assert rows["layer_norm"] == rows["linear"] == rows["scaled_dot_product_attention"] == 16
    assert rows["linear_1"] == 16  # the output projection and its residual add, fused
    assert "embedding" not in rows  # reads token ids, not rows of features
    assert token_dims(fuse(zoo.graph("resnet", "tiny"))) == {}


def test_a_token_shard_holds_every_weight_and_a_kth_of_the_rows() -> None:
    gpt = fuse(zoo.graph("gpt", "base"))
    fc = gpt.node("linear_2")  # the MLP's up-projection (and its GELU)
    half = token_shard_node(fc, 4)
    assert half.flops == fc.flops / 4 and half.param_bytes == fc.param_bytes
    assert half.out_bytes == fc.out_bytes / 4
    p = Platform.preset("multi-gpu")
    modes = token_modes(gpt, p)
    at = {(gpt.nodes[m.op].name, m.devices, m.tag): m for m in modes}
    four = (1, 2, 3, 4)
    gathered = at[("linear_2", four, "split:tokens+from:tokens")]
    kept = at[("linear_2", four, "split:tokens+from:tokens+keep:tokens")]
    shot = 3e-6 + 2 * fc.out_bytes / 4 / 300e9  # one-shot all-gather over the NVLink mesh
    assert gathered.gather == pytest.approx(shot) and kept.gather == 0
    assert kept.time == pytest.approx(gathered.time - shot)
    assert kept.weights == fc.param_bytes  # every device holds the whole weights
    attn = gpt.node("scaled_dot_product_attention")
    keys = at[("scaled_dot_product_attention", four, "split:tokens+from:tokens+keep:tokens")]
    alone = at[("scaled_dot_product_attention", four, "split:tokens+keep:tokens")]
    reads = attn.bytes_read * 2 / 3  # keys and values, gathered from every shard
    assert keys.gather == pytest.approx(3e-6 + 2 * reads / 4 / 300e9)
    assert alone.gather == 0  # reading its input whole, each device has every key
    assert ("linear_48", four, "split:tokens+from:tokens+keep:tokens") not in at  # the output


def test_a_graph_output_collects_its_shards_on_the_first_device() -> None:
    gpt = fuse(zoo.graph("gpt", "base"))
    head = gpt.node("linear_48")  # 50,257 words, the graph's output
    modes = [m for m in split_modes(gpt, Platform.preset("multi-gpu")) if m.op == 89]
    assert gpt.nodes[89] is head
    four = next(m for m in modes if m.devices == (1, 2, 3, 4) and m.tag == "split:column")
    shard = math.ceil(50257 / 4) * 128 * 4  # the largest shard's bytes
    assert four.gather == pytest.approx(3e-6 + shard / 300e9)  # three NVLinks at once
    ring = 3 * (3e-6 + shard / 300e9)
    mid = next(
        m
        for m in split_modes(gpt, Platform.preset("multi-gpu"))
        if m.op == 10 and m.devices == (1, 2, 3, 4) and m.tag == "split:column"
    )  # the MLP's down-projection, read by the next layer: every GPU needs the whole
    assert mid.gather == pytest.approx(3e-6 + 2 * gpt.nodes[10].out_bytes / 4 / 300e9)
    assert four.gather < ring


def test_megatron_style_baseline_has_no_token_splits() -> None:
    p = Problem.build(fuse(zoo.graph("gpt", "tiny")), "multi-gpu", split=True)
    assert any(describe_split(t) == "tokens" for t in p.modes.tag)
    assert not any(describe_split(t) == "tokens" for t in fixed_sharding(p).modes.tag)


def _tokens_only(problem: Problem, width: int) -> Problem:
    """Sequence parallelism over the first ``width`` GPUs wherever an op has it."""
    return token_sharding(on_group(problem, tuple(range(1, width + 1))))


def test_every_solver_keeps_token_chains_and_cpsat_equals_the_brute_force() -> None:
    graph = chain([256, 1024, 256], rows=64)
    p = Problem.build(graph, "edge-soc", memory=False, split=True)
    assert any(kept_layout(t) == "tokens" for t in p.modes.tag)
    for solver in (solve_heft, solve_peft, solve_cpop):
        validate(solver(p, time_limit=5), p)
    best = brute_force(p)
    assert best is not None
    plan = solve_cpsat(p, time_limit=30, seed=0, workers=1)
    validate(plan, p)
    assert plan.status == "optimal" and round(plan.makespan / p.quantum) == best
    assert plan.lower_bound / p.quantum <= best


@pytest.mark.parametrize(
    ("name", "width"),
    [("gpt", 4), ("gpt2", 2), ("llama", 4), ("bert", 2), ("unet2d-cond", 2)],
)
def test_token_split_programs_equal_eager(name: str, width: int) -> None:
    """Causal attention with its mask offset per shard (gpt), rotary embeddings and
    grouped-query attention (llama), a padding mask (bert), GEGLU (the UNet)."""
    model, args = _model(name)
    ep = torch.export.export(model, args, strict=False)
    graph = fuse(import_program(ep, name=name))
    problem = Problem.build(graph, "multi-gpu", split=True)
    plan = solve_heft(_tokens_only(problem, width), time_limit=5)
    validate(plan, problem)
    kept = sum(1 for m in plan.modes.values() if kept_layout(m.tag) == "tokens")
    assert kept >= 4
    assert_split_runs_as_eager(plan, problem, ep, graph, args)


@pytest.mark.parametrize("precision", ["int8", "float16"])
def test_token_splits_in_reduced_precisions_equal_the_lowered_program(precision: str) -> None:
    from hetsched.precision import measure_sensitivity
    from hetsched.precision.rewrite import lower_program, plan_precisions

    model, args = zoo.build("gpt", "tiny")
    ep = torch.export.export(model, args, strict=False)
    graph = import_program(ep, name="gpt")
    table = measure_sensitivity(ep, graph)
    p = Problem.build(graph, "multi-gpu", errors=table.errors, error_budget=10.0, split=True)
    m = p.modes
    keep: list[int] = []
    for v in range(p.n):  # token splits over gpu0+gpu1, in `precision` where the op has it
        ids = [k for k in m.ops_modes(v).tolist() if describe_split(m.tag[k]) == "tokens"]
        ids = [k for k in ids if m.devices_of(k) == (1, 2)]
        low = [k for k in ids if m.precision[k] == precision]
        keep += low or ids or m.ops_modes(v).tolist()
    plan = solve_heft(p.select_modes(np.array(keep, dtype=np.int64)), time_limit=5)
    validate(plan, p)
    lowered_ops = [o for o, x in plan.modes.items() if x.precision == precision]
    assert len(lowered_ops) >= 4
    assert any(kept_layout(plan.modes[o].tag) == "tokens" for o in lowered_ops)
    split = apply(plan, ep, graph)
    lowered = lower_program(ep, graph, plan_precisions(plan, graph)).module
    assert outputs_close(split(*args), lowered(*args))
    run = execute(plan, p, graph=graph, program=ep, inputs=list(args))
    assert run.outputs_match
