"""Op coverage: every core ATen op and the common non-core ones have a known category.

Also ``hetsched ops`` over the zoo and the op lists of the external models
(``tests/data/ops/external.json``, made by ``tests/data/ops/external_models.py``).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")

from hetsched.cli import main  # noqa: E402
from hetsched.graph import OpGraph, OpNode, save  # noqa: E402
from hetsched.graph.opgraph import CATEGORIES  # noqa: E402
from hetsched.graph.optable import FLOP_SOURCES, op_kind, op_uses, resolve_op  # noqa: E402

aten = torch.ops.aten
EXTERNAL = Path(__file__).parents[1] / "data" / "ops" / "external.json"
EXTERNAL_MODELS = (
    "gpt2", "bert", "llama", "mistral", "qwen2", "t5_encoder", "vit", "resnet18",
    "mobilenet_v3_small", "efficientnet_b0", "unet2d_cond",
)  # fmt: skip


def _overloads_tagged(tag):
    out = []
    for name in dir(aten):
        try:
            packet = getattr(aten, name)
            names = packet.overloads()
        except (AttributeError, RuntimeError, TypeError):
            continue
        for o in names:
            op = getattr(packet, o)
            if tag in op.tags:
                out.append(op)
    return out


def _returns_tensor(op) -> bool:
    rets = op._schema.returns
    return bool(rets) and "Tensor" in str(rets[0].type)


def test_every_core_aten_op_has_a_category() -> None:
    core = [op for op in _overloads_tagged(torch.Tag.core) if _returns_tensor(op)]
    assert len(core) > 150
    unknown = [str(op) for op in core if op_kind(op).category == "other"]
    assert unknown == []
    for op in core:
        kind = op_kind(op)
        assert kind.category in CATEGORIES and kind.flops in FLOP_SOURCES, op


def test_inplace_variants_are_their_out_of_place_op() -> None:
    checked = 0
    for op in _overloads_tagged(torch.Tag.inplace):
        name = op._schema.name.partition("::")[2]
        base = getattr(aten, name[:-1], None)
        if base is None or not name.endswith("_"):
            continue
        overload = op._overloadname
        if overload not in base.overloads():
            continue
        want = op_kind(getattr(base, overload))
        if want.category == "other":
            continue
        got = op_kind(op)
        assert (got.category, got.flops) == (want.category, want.flops), op
        checked += 1
    assert checked > 100


@pytest.mark.parametrize(
    ("op", "category", "flops"),
    [
        (aten.hardswish_.default, "elementwise", "pointwise"),
        (aten.relu_.default, "elementwise", "pointwise"),
        (aten.add_.Tensor, "elementwise", "pointwise"),
        (aten.silu_.default, "elementwise", "pointwise"),
        (aten._native_batch_norm_legit_no_training.default, "norm", "table"),
        (aten.scaled_dot_product_attention.default, "attention", "flop_counter"),
        (aten._scaled_dot_product_flash_attention.default, "attention", "flop_counter"),
        (aten._scaled_dot_product_efficient_attention.default, "attention", "flop_counter"),
        (aten._scaled_dot_product_flash_attention_for_cpu.default, "attention", "flop_counter"),
        (aten.embedding.default, "embedding", "none"),
        (aten.index.Tensor, "index", "none"),
        (aten.where.self, "elementwise", "pointwise"),
        (aten.where.ScalarOther, "elementwise", "pointwise"),
        (aten.where.ScalarSelf, "elementwise", "pointwise"),
        (aten.gather.default, "index", "none"),
        (aten.scatter.src, "index", "none"),
        (aten.nonzero.default, "index", "none"),
        (aten.cat.default, "data_movement", "none"),
        (aten.split.Tensor, "data_movement", "none"),
        (aten.to.dtype, "data_movement", "none"),
        (aten.softmax.int, "softmax", "table"),
        (aten._softmax.default, "softmax", "table"),
        (aten._log_softmax.default, "softmax", "table"),
        (aten.mean.dim, "reduction", "table"),
        (aten.var_mean.correction, "reduction", "table"),
        (aten.rsqrt.default, "elementwise", "pointwise"),
        (aten.layer_norm.default, "norm", "table"),
        (aten.group_norm.default, "norm", "table"),
        (aten.native_layer_norm.default, "norm", "table"),
        (aten.native_group_norm.default, "norm", "table"),
        (aten.rms_norm.default, "norm", "table"),
        (aten.max_pool2d.default, "pool", "table"),
        (aten.adaptive_avg_pool2d.default, "pool", "table"),
        (aten.arange.default, "creation", "none"),
        (aten.full.default, "creation", "none"),
        (aten.zeros_like.default, "creation", "none"),
        (aten.conv2d.default, "conv", "flop_counter"),
        (aten.conv_transpose2d.input, "conv", "flop_counter"),
        (aten.convolution.default, "conv", "flop_counter"),
        (aten.linear.default, "matmul", "flop_counter"),
        (aten.matmul.default, "matmul", "flop_counter"),
        (aten.addmm_.default, "matmul", "flop_counter"),
        (aten.baddbmm.default, "matmul", "flop_counter"),
        (aten.__and__.Tensor, "elementwise", "pointwise"),
        (aten.max.dim, "reduction", "table"),
        (aten.max.other, "elementwise", "pointwise"),
        (aten.clone.default, "data_movement", "none"),
    ],
)
def test_common_ops(op, category, flops) -> None:
    kind = op_kind(op)
    assert (kind.category, kind.flops) == (category, flops)
    assert op_kind(str(op)).category == category  # the same from its name (graph JSON)


def test_unknown_names_and_gathers() -> None:
    assert op_kind("aten.no_such_op.default").category == "other"
    assert op_kind("my_namespace.thing").flops == "none"
    assert resolve_op("aten::mm") is aten.mm
    assert op_kind(aten.embedding.default).reads == "gathered"
    assert op_kind(aten.new_zeros.default).reads == "shape"


def test_external_models_ops_are_known() -> None:
    doc = json.loads(EXTERNAL.read_text())
    assert doc["format"] == "hetsched.ops/1"
    assert sorted(doc["graphs"]) == sorted(EXTERNAL_MODELS)
    ops = {op for counts in doc["graphs"].values() for op in counts}
    assert len(ops) > 30
    unknown = sorted(op for op in ops if op_kind(op).category == "other")
    assert unknown == []
    assert doc["graphs"]["mobilenet_v3_small"]["aten.hardswish_.default"] == 19
    assert op_kind("aten.hardswish_.default").flops == "pointwise"


def test_op_uses_counts_parts() -> None:
    part = OpNode("a", "aten.relu_.default", "elementwise")
    g = OpGraph("g", [OpNode("f", "aten.conv2d.default", "conv", parts=(
        OpNode("c", "aten.conv2d.default", "conv"), part))])  # fmt: skip
    assert [(u.op, u.count) for u in op_uses([g])] == [
        ("aten.conv2d.default", 1), ("aten.relu_.default", 1)]  # fmt: skip


def test_ops_command_zoo_has_no_unknown_op(capsys) -> None:
    assert main(["ops", "--zoo", "--size", "tiny"]) == 0
    out = capsys.readouterr()
    assert out.out.rstrip().endswith("6 graph(s); 0 unknown")
    assert "aten.embedding.default" in out.out and "UNKNOWN" not in out.out
    assert "warning" not in out.err


def test_ops_command_unknown_is_loud(capsys, tmp_path) -> None:
    g = OpGraph("g", [OpNode("a", "aten.relu.default", "elementwise", flops=4.0),
                      OpNode("b", "aten.lstm.input", "other")])  # fmt: skip
    path = tmp_path / "g.json"
    save(g, path)
    assert main(["ops", str(path)]) == 1
    out = capsys.readouterr()
    assert "aten.lstm.input" in out.out.splitlines()[1] and "UNKNOWN" in out.out
    assert "warning: unknown op aten.lstm.input (1x in g)" in out.err
    target = tmp_path / "ops.json"
    assert main(["ops", str(path), "--json", "-o", str(target)]) == 1
    doc = json.loads(target.read_text())
    assert doc["graphs"]["g"] == {"aten.lstm.input": 1, "aten.relu.default": 1}
    assert doc["ops"]["aten.relu.default"]["flops"] == "pointwise"
    capsys.readouterr()
    assert main(["ops"]) == 2
    assert "at least one GRAPH" in capsys.readouterr().err
