"""Support predicates and their combinators."""

from __future__ import annotations

import pytest

from hetsched.costmodel import (
    Device,
    all_of,
    any_of,
    categories,
    decline_if_dtype,
    everything,
    is_supported,
    not_categories,
    not_ops,
    ops,
    predicate,
)
from hetsched.costmodel.support import from_spec
from hetsched.errors import PlatformError
from hetsched.graph import OpNode

CONV = OpNode("c", op="aten.conv2d.default", category="conv")
SUM = OpNode("s", op="aten.sum.dim_IntList", category="reduction")
IDX = OpNode("i", op="aten.arange.default", category="other", dtype="torch.int64")


def test_leaf_predicates() -> None:
    assert categories("conv")(CONV, None) and not categories("conv")(SUM, None)
    assert not_categories("conv")(SUM, None) and not not_categories("conv")(CONV, None)
    assert ops("aten.conv2d")(CONV, None)  # base name covers overloads
    assert ops("aten.conv2d.default")(CONV, None) and not ops("aten.mm")(CONV, None)
    assert not_ops("aten.sum")(CONV, None) and not not_ops("aten.sum")(SUM, None)
    assert decline_if_dtype("int64")(CONV, None) and not decline_if_dtype("int64")(IDX, None)
    assert everything()(IDX, None)


def test_combinators_and_reasons() -> None:
    pred = all_of(categories("conv", "reduction"), not_ops("aten.sum"))
    assert pred(CONV, None) and not pred(SUM, None)
    assert "aten.sum" in (pred.why_not(SUM, None) or "")
    either = any_of(categories("conv"), decline_if_dtype("float32"))
    assert either(CONV, None) and either(IDX, None) and not either(SUM, None)
    assert " and " in (either.why_not(SUM, None) or "")
    assert all_of(categories("conv")) == categories("conv")


def test_fields_allow_grouping() -> None:
    assert all_of(categories("conv"), ops("x"), decline_if_dtype("int8")).fields == {
        "category",
        "op",
        "dtype",
    }
    custom = predicate(lambda n, _d: n.flops < 10)
    assert custom.fields is None and any_of(custom, categories("conv")).fields is None


@pytest.mark.parametrize(
    "pred",
    [
        categories("conv", "matmul"),
        all_of(not_categories("other"), not_ops("aten.nonzero")),
        any_of(ops("aten.mm"), all_of(categories("norm"), decline_if_dtype("float16"))),
        everything(),
    ],
)
def test_spec_round_trip(pred) -> None:
    assert from_spec(pred.to_spec()) == pred


def test_bad_specs() -> None:
    with pytest.raises(PlatformError, match="unknown op category 'convolution'"):
        categories("convolution")
    with pytest.raises(PlatformError, match="unknown key 'cats'"):
        from_spec({"cats": ["conv"]})
    with pytest.raises(PlatformError, match="expected a list of strings"):
        from_spec({"ops": "aten.mm"})
    with pytest.raises(PlatformError, match="no TOML form"):
        predicate(lambda _n, _d: True).to_spec()


def test_is_supported_checks_dtype_units() -> None:
    npu = Device("npu", "asic", {"int8": 1e12, "fp16": 5e11}, 1e11, supports=categories("conv"))
    assert not is_supported(CONV, npu)  # fp32 conv: no fp32 units
    assert is_supported(OpNode("h", category="conv", dtype="float16"), npu)
    assert not is_supported(OpNode("h", category="norm", dtype="float16"), npu)
    cpu = Device("cpu", "cpu", {"fp32": 1e11}, 1e10)
    assert is_supported(IDX, cpu)  # integer ops run on the fp32/int units of a CPU
    assert not is_supported(OpNode("q", dtype="int8"), cpu)  # no int8 peak listed


def test_a_fused_op_runs_only_where_every_part_runs() -> None:
    from hetsched.costmodel import Platform
    from hetsched.costmodel.device import unsupported_reason
    from hetsched.graph import OpGraph
    from hetsched.graph.formats import from_dict, to_dict

    npu = Platform.preset("edge-soc").device("npu0")
    conv = OpNode("conv", category="conv", dtype="int8")
    fused = OpNode(
        "conv", category="conv", dtype="int8",
        parts=(conv, OpNode("cat", op="aten.cat.default", category="data_movement", dtype="int8")),
    )  # fmt: skip
    assert unsupported_reason(conv, npu) is None
    why = unsupported_reason(fused, npu)
    assert why is not None and why.startswith("its part 'cat'")
    g = OpGraph("g", [fused])
    assert from_dict(to_dict(g)) == g  # parts survive the JSON round trip
