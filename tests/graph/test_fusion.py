"""Fusion: batch-norm folding and epilogues on hand-built graphs and the zoo, support of a
fused op, torch's own conv-bn folding as the oracle, properties on random DAGs."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from hetsched.errors import UsageError
from hetsched.graph.coarsen import coarsen
from hetsched.graph.fusion import fuse, fuse_with_report
from hetsched.graph.opgraph import CATEGORIES, Edge, OpGraph, OpNode, Tensor

SHAPE = (1, 4, 2, 2)  # 16 float32 elements: 64 bytes, 4 channels
FX = {"conv": ["conv"], "bn": ["bn", "getitem"], "relu": ["relu"], "head": ["head"]}


def _conv(name: str = "conv", **kw: object) -> OpNode:
    base = dict(op="aten.conv2d.default", category="conv", flops=1000.0, bytes_read=120.0,
                bytes_written=64.0, param_bytes=56.0, out_bytes=64.0, shape=SHAPE)  # fmt: skip
    return OpNode(name, **{**base, **kw})  # type: ignore[arg-type]


def _bn(name: str = "bn", op: str = "aten.batch_norm.default") -> OpNode:
    return OpNode(name, op=op, category="norm", flops=80.0, bytes_read=128.0,
                  bytes_written=64.0, param_bytes=64.0, out_bytes=64.0, shape=SHAPE)  # fmt: skip


def _ew(name: str, op: str = "aten.relu.default", reads: float = 64.0, **kw: object) -> OpNode:
    base = dict(op=op, category="elementwise", flops=16.0, bytes_read=reads,
                bytes_written=64.0, out_bytes=64.0, shape=SHAPE)  # fmt: skip
    return OpNode(name, **{**base, **kw})  # type: ignore[arg-type]


def _t(src: str, *dsts: str) -> Tensor:
    return Tensor(src, src, dsts, 64.0)


def _conv_bn_relu() -> OpGraph:
    head = OpNode("head", op="aten.linear.default", category="matmul", flops=50.0)
    return OpGraph(
        "cbr",
        [_conv(), _bn(), _ew("relu"), head],
        tensors=[_t("conv", "bn"), _t("bn", "relu"), _t("relu", "head")],
        meta={"fx_nodes": FX, "outputs": ["head"]},
    )


def test_batch_norm_folds_into_conv_and_relu_fuses() -> None:
    f, report = fuse_with_report(_conv_bn_relu())
    assert [n.name for n in f.nodes] == ["conv", "head"]
    assert (report.nodes_before, report.nodes_after) == (4, 2)
    assert (report.folded, report.epilogues, report.groups) == (1, 1, 1)
    c = f.node("conv")
    # bn's FLOPs vanish; reads: conv's input and weights + one bias vector (4 x 4 bytes);
    # relu reads only what the group made; one output written
    assert (c.op, c.category, c.flops) == ("aten.conv2d.default", "conv", 1016.0)
    assert (c.bytes_read, c.bytes_written, c.param_bytes, c.out_bytes) == (136.0, 64.0, 72.0, 64.0)
    assert [(p.name, p.category) for p in c.parts] == [("conv", "conv"), ("relu", "elementwise")]
    assert f.tensors == (Tensor("relu", "conv", ("head",), 64.0),)
    assert dict(f.meta["fx_nodes"])["conv"] == ["conv", "bn", "getitem", "relu"]
    fused = f.meta["fused"]
    assert fused["groups"] == {"conv": ["conv", "bn", "relu"]} and fused["folded_ops"] == ["bn"]


def test_fusing_again_changes_nothing_and_coarsened_graphs_are_refused() -> None:
    f = fuse(_conv_bn_relu())
    again, report = fuse_with_report(f)
    assert again is f and report.nodes_before == report.nodes_after
    with pytest.raises(UsageError, match="fuse before coarsening"):
        fuse(coarsen(_conv_bn_relu()))


def test_no_fold_when_the_conv_has_another_reader_or_no_weights() -> None:
    shared = OpGraph(
        "s",
        [_conv(), _bn(), _ew("relu")],
        tensors=[Tensor("conv", "conv", ("bn", "relu"), 64.0), _t("bn", "relu")],
    )
    f, report = fuse_with_report(shared)
    assert report.folded == 0 and {n.name for n in f.nodes} == {"conv", "bn"}
    assert dict(f.meta["fused"]["groups"]) == {"bn": ["bn", "relu"]}  # an epilogue of the norm
    weightless = OpGraph("w", [_conv(param_bytes=0.0), _bn()], tensors=[_t("conv", "bn")])
    assert fuse_with_report(weightless)[1].folded == 0


def test_no_fold_of_a_training_batch_norm_or_one_after_an_activation() -> None:
    legit = OpGraph("t", [_conv(), _bn(op="aten._native_batch_norm_legit.default")],
                    tensors=[_t("conv", "bn")])  # fmt: skip
    assert fuse_with_report(legit)[1].folded == 0
    no_training = _bn(op="aten._native_batch_norm_legit_no_training.default")
    assert fuse_with_report(legit.replace(nodes=[_conv(), no_training]))[1].folded == 1
    after = OpGraph(
        "a", [_conv(), _ew("relu"), _bn()], tensors=[_t("conv", "relu"), _t("relu", "bn")]
    )
    f, report = fuse_with_report(after)
    assert report.folded == 0 and [n.name for n in f.nodes] == ["conv", "bn"]


def _residual() -> OpGraph:
    """``x`` feeds ``mm`` and the residual ``add``; ``add`` feeds ``gelu`` and the output."""
    mm = OpNode("mm", op="aten.linear.default", category="matmul", flops=500.0,
                bytes_read=96.0, bytes_written=64.0, param_bytes=32.0, out_bytes=64.0)  # fmt: skip
    return OpGraph(
        "res",
        [
            _ew("x", "aten.mul.Tensor"),
            mm,
            _ew("add", "aten.add.Tensor", reads=128.0),
            _ew("gelu", "aten.gelu.default"),
            _ew("tail", "aten.neg.default"),
        ],
        tensors=[_t("x", "mm", "add"), _t("mm", "add"), _t("add", "gelu"), _t("gelu", "tail")],
        meta={"outputs": ["add", "tail"]},
    )


def test_residual_add_fuses_into_matmul_but_not_past_a_program_output() -> None:
    f, report = fuse_with_report(_residual())
    # x has two readers: nothing fuses into it; add is a program output: gelu stays out
    assert dict(f.meta["fused"]["groups"]) == {"mm": ["mm", "add"], "gelu": ["gelu", "tail"]}
    assert report.epilogues == 2
    mm = f.node("mm")
    assert (mm.flops, mm.bytes_read, mm.bytes_written) == (516.0, 96.0 + 64.0, 64.0)
    assert {(t.name, t.src, t.dsts) for t in f.tensors} == {
        ("x", "x", ("mm",)), ("add", "mm", ("gelu",))}  # fmt: skip


def test_switches_and_fixed_nodes() -> None:
    g = _conv_bn_relu()
    assert fuse_with_report(g, fold_batch_norm=False)[1].folded == 0
    only_fold = fuse(g, epilogues=False)
    assert [n.name for n in only_fold.nodes] == ["conv", "relu", "head"]
    assert [p.name for p in only_fold.node("conv").parts] == ["conv"]
    assert len(fuse(g, producers=()).nodes) == 3
    costed = g.replace(nodes=[_conv(cost={"cpu": 1.0}), _bn(), _ew("relu"), g.node("head")])
    f = fuse(costed)  # an explicit cost cannot be fused: the others still can
    assert [n.name for n in f.nodes] == ["conv", "bn", "head"]


def test_a_fused_op_runs_only_where_every_member_runs() -> None:
    from hetsched.costmodel import Platform
    from hetsched.costmodel.device import unsupported_reason
    from hetsched.problem import Problem

    npu = Platform.preset("edge-soc").device("npu0")
    g = OpGraph(
        "d",
        [_conv(), _ew("up", "aten._to_copy.default", dtype="float64"),
         _ew("down", "aten._to_copy.default")],
        tensors=[_t("conv", "up"), _t("up", "down")],
    )  # fmt: skip
    assert unsupported_reason(g.node("conv"), npu) is None
    assert unsupported_reason(g.node("down"), npu) is None
    assert unsupported_reason(g.node("up"), npu) is not None
    f = fuse(g)
    (node,) = f.nodes
    assert node.dtype == "float32" and [p.name for p in node.parts] == ["conv", "up", "down"]
    why = unsupported_reason(node, npu)
    assert why is not None and "'up'" in why
    p = Problem.build(f, "edge-soc")
    assert not any(p.allowed[0, p.device_index[d]] for d in p.devices if d.startswith("npu"))
    assert p.allowed[0, p.device_index["cpu"]]


def _random_dag(seed: int, n: int = 50) -> OpGraph:
    rng = random.Random(seed)
    cats = [*CATEGORIES, "elementwise", "elementwise", "elementwise", "conv", "norm"]
    nodes = []
    for i in range(n):
        cat = rng.choice(cats)
        op = "aten.batch_norm.default" if cat == "norm" and rng.random() < 0.6 else f"op{i}"
        params = float(rng.choice([0, 0, 8]))
        nodes.append(OpNode(
            f"n{i}", op=op, category=cat, flops=float(rng.randint(0, 100)),
            bytes_read=params + rng.randint(0, 80), bytes_written=float(rng.randint(0, 50)),
            param_bytes=params, out_bytes=float(rng.randint(1, 50)), shape=(1, 2, 2),
        ))  # fmt: skip
    tensors = []
    for i in range(n - 1):
        if rng.random() < 0.9:
            k = rng.choice([1, 1, 1, 2, 3])
            dsts = rng.sample(range(i + 1, min(n, i + 8)), min(k, min(n, i + 8) - i - 1))
            tensors.append(Tensor(f"t{i}", f"n{i}", tuple(f"n{j}" for j in dsts), 4.0))
    fx = {x.name: [x.name] for x in nodes}
    return OpGraph(
        f"r{seed}", nodes, tensors=tensors, meta={"fx_nodes": fx, "outputs": [f"n{n - 1}"]}
    )


@pytest.mark.parametrize("seed", range(20))
def test_random_dags_stay_consistent(seed: int) -> None:
    g = _random_dag(seed)
    f, report = fuse_with_report(g)  # OpGraph's constructor rejects cycles
    groups = {x.name: f.meta["fused"]["groups"].get(x.name, [x.name]) for x in f.nodes}
    group_of = {m: grp for grp, ms in groups.items() for m in ms}
    assert sorted(group_of) == sorted(x.name for x in g.nodes)  # a partition
    folded = set(f.meta["fused"]["folded_ops"])
    assert report.folded == len(folded)
    assert report.nodes_before - report.nodes_after == report.folded + report.epilogues
    assert f.total_flops == pytest.approx(g.total_flops - sum(g.node(b).flops for b in folded))
    assert sum(x.bytes_read for x in f.nodes) <= sum(x.bytes_read for x in g.nodes) + 1e-9
    expect = {}
    for t in g.tensors:
        outside = {group_of[d] for d in t.dsts} - {group_of[t.src]}
        if outside:
            expect[t.name] = (group_of[t.src], outside)
    assert {t.name: (t.src, set(t.dsts)) for t in f.tensors} == expect
    for grp, ms in groups.items():
        node = f.node(grp)
        assert node.flops >= 0 and dict(f.meta["fx_nodes"])[grp] == ms
        if len(ms) > 1:
            assert [p.name for p in node.parts] == [m for m in ms if m not in folded]
            # every member after the first is an elementwise epilogue or a folded batch norm
            assert all(g.node(m).category == "elementwise" or m in folded for m in ms[1:])
            # only the last member's output leaves the group
            assert all(set(g.successors(m)) <= set(ms) for m in ms[:-1])


# ---------------------------------------------------------------------------- torch models

GOLDEN = {  # zoo model (tiny) -> ops before, after, batch norms folded
    "resnet": (21, 8, 6),
    "unet": (79, 51, 0),
    "gpt": (26, 20, 0),
    "decode": (30, 24, 0),
}


@pytest.mark.parametrize("name", sorted(GOLDEN))
def test_zoo_op_counts(name: str) -> None:
    pytest.importorskip("torch")
    from hetsched.graph import zoo

    g = zoo.graph(name, "tiny")
    f, report = fuse_with_report(g)
    assert (report.nodes_before, report.nodes_after, report.folded) == GOLDEN[name]
    assert not any(n.op.startswith("aten.batch_norm") for n in f.nodes)
    fx = sorted(x for xs in f.meta["fx_nodes"].values() for x in xs)
    assert fx == sorted(x for xs in g.meta["fx_nodes"].values() for x in xs)
    assert f.total_flops <= g.total_flops and f.total_bytes < g.total_bytes


def test_resnet_blocks_fuse_like_a_compiler() -> None:
    pytest.importorskip("torch")
    from hetsched.graph import zoo

    f = fuse(zoo.graph("resnet", "tiny"))
    groups = f.meta["fused"]["groups"]
    # conv + bn + residual add + relu is one op; the residual comes in as a tensor
    assert groups["conv2d_2"] == ["conv2d_2", "batch_norm_2", "add", "relu_2"]
    assert [p.op for p in f.node("conv2d_2").parts] == [
        "aten.conv2d.default", "aten.add.Tensor", "aten.relu.default"]  # fmt: skip


def test_folding_matches_torchs_conv_bn_fusion() -> None:
    """torch.fx.experimental.optimization.fuse folds the modules; exported and imported, it
    is the graph this pass makes of the unfolded model: ops, FLOPs, bytes and weights."""
    torch = pytest.importorskip("torch")
    from torch.fx.experimental.optimization import fuse as torch_fuse

    from hetsched.graph.torch_import import from_torch
    from tests.partition.nets import ConvBnNet

    model, args = ConvBnNet.build()
    ours = fuse(from_torch(model, args, name="net"))
    folded_by_torch = torch_fuse(model)
    assert not any(isinstance(m, torch.nn.modules.batchnorm._BatchNorm)
                   for m in folded_by_torch.modules())  # fmt: skip
    theirs = fuse(from_torch(folded_by_torch, args, name="net"))
    assert len(ours.nodes) == len(theirs.nodes) == 4
    for a, b in zip(ours.nodes, theirs.nodes, strict=True):
        assert (a.op, a.category) == (b.op, b.category)
        got = (a.flops, a.bytes_read, a.bytes_written, a.param_bytes, a.out_bytes)
        assert got == (b.flops, b.bytes_read, b.bytes_written, b.param_bytes, b.out_bytes)


def test_edges_only_graph_fuses() -> None:
    g = OpGraph("e", [_conv(), _ew("relu")], [Edge("conv", "relu", 64.0)])
    (node,) = fuse(g).nodes
    assert node.bytes_read == 120.0 and node.flops == 1016.0


def test_fusion_is_on_by_default_at_import_and_files_keep_what_they_hold(tmp_path: Path) -> None:
    pytest.importorskip("torch")
    from hetsched.cli import main
    from hetsched.graph.formats import load
    from hetsched.graph.resolve import load_graph_spec

    fused, plain = tmp_path / "fused.json", tmp_path / "plain.json"
    assert main(["export", "resnet", "-o", str(fused)]) == 0
    assert main(["export", "resnet", "--no-fuse", "-o", str(plain)]) == 0
    assert (len(load(fused).nodes), len(load(plain).nodes)) == (8, 21)
    assert load(fused).meta["fused"]["folded"] == 6 and "fused" not in load(plain).meta
    assert len(load_graph_spec(str(plain)).nodes) == 21  # not fused on reading
    assert load_graph_spec(str(fused)) == load(fused)
    assert len(load_graph_spec("resnet", fuse=False).nodes) == 21
