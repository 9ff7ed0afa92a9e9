"""Roofline model: limits, explain, explicit costs, transfers, measured overrides."""

from __future__ import annotations

import json
import math

import pytest

from hetsched.costmodel import (
    CostModel,
    Device,
    MeasuredCostModel,
    Platform,
    RooflineCostModel,
    categories,
)
from hetsched.costmodel.device import dtype_class
from hetsched.errors import PlatformError
from hetsched.graph import OpNode

CPU = Device("cpu", "cpu", {"fp32": 1e11, "fp16": 1e11}, 1e10, launch_overhead=1e-6)
NPU = Device("npu", "asic", {"int8": 1e13, "fp16": 4e12}, 1e11, supports=categories("conv"))


@pytest.fixture
def model() -> RooflineCostModel:
    return RooflineCostModel(Platform("t", (CPU, NPU)))


def test_protocol(model) -> None:
    assert isinstance(model, CostModel)


def test_compute_bound_scales_with_flops(model) -> None:
    o = CPU.launch_overhead
    a = OpNode("a", category="matmul", flops=1e10, bytes_read=1e3)
    b = OpNode("b", category="matmul", flops=2e10, bytes_read=1e3)
    ta, tb = model.op_time(a, "cpu") - o, model.op_time(b, "cpu") - o
    assert model.explain(a, "cpu").bound == "compute"
    assert tb / ta == pytest.approx(2.0, rel=1e-3)  # ramp makes it a hair under 2
    eff = CPU.compute_efficiency("matmul")
    assert ta == pytest.approx(1e10 / (1e11 * eff), rel=1e-3)


def test_memory_bound_scales_with_bytes(model) -> None:
    o = CPU.launch_overhead
    a = OpNode("a", category="elementwise", flops=1e3, bytes_read=1e8, bytes_written=1e8)
    b = OpNode("b", category="elementwise", flops=1e3, bytes_read=2e8, bytes_written=2e8)
    assert model.explain(a, "cpu").bound == "memory"
    ta, tb = model.op_time(a, "cpu") - o, model.op_time(b, "cpu") - o
    assert tb == pytest.approx(2 * ta)
    assert ta == pytest.approx(2e8 / (1e10 * CPU.bandwidth_efficiency("elementwise")))


def test_small_matmuls_do_not_hit_peak(model) -> None:
    small = model.explain(OpNode("s", category="matmul", flops=1e4), "cpu")
    big = model.explain(OpNode("b", category="matmul", flops=1e12), "cpu")
    assert small.size_factor < 0.2 < 0.99 < big.size_factor
    flat = model.explain(OpNode("e", category="elementwise", flops=1e4), "cpu")
    assert flat.size_factor == 1.0


@pytest.mark.parametrize("dev", ["cpu", "npu"])
@pytest.mark.parametrize(
    "node",
    [
        OpNode("mm", category="matmul", flops=3e9, bytes_read=1e7, bytes_written=4e6),
        OpNode("cv", category="conv", flops=1e7, bytes_read=9e7, dtype="float16"),
        OpNode("z", category="data_movement", bytes_read=4e6, bytes_written=4e6),
        OpNode("r", category="reduction", flops=1e6, bytes_read=4e6, dtype="int64"),
    ],
)
def test_explain_terms_sum_to_op_time(model, node, dev) -> None:
    ex = model.explain(node, dev)
    t = model.op_time(node, dev)
    assert ex.total == t
    if math.isinf(t):
        assert ex.bound == "unsupported" and ex.reason
    else:
        assert ex.overhead + max(ex.compute_time, ex.memory_time) == t
        assert str(ex).startswith(f"{node.name} on {dev}")


def test_unsupported_is_inf_with_reason(model) -> None:
    node = OpNode("n", category="norm", dtype="float16")
    assert math.isinf(model.op_time(node, "npu"))
    assert "category 'norm' not in {conv}" in (model.explain(node, "npu").reason or "")
    fp32 = OpNode("c", category="conv")
    assert "no fp32 units" in (model.explain(fp32, NPU).reason or "")


def test_dtype_mapping() -> None:
    assert dtype_class("torch.bfloat16") == ("bf16", 1.0)
    assert dtype_class("bool", "gpu") == ("fp32", 1.0)
    assert dtype_class("float64", "cpu") == ("fp32", 0.5)
    assert dtype_class("float64", "asic") == (None, 0.0)
    assert dtype_class("uint8", "asic") == ("int8", 1.0)


def test_explicit_cost_precedence(model) -> None:
    node = OpNode("x", category="other", cost={"npu": 3.0, "asic": 4.0, "cpu": 1.0, "*": 9.0})
    assert model.op_time(node, "npu") == 3.0 and model.op_time(node, "cpu") == 1.0
    by_kind = OpNode("y", category="other", cost={"asic": 4.0, "*": 9.0})
    assert model.op_time(by_kind, "npu") == 4.0 and model.op_time(by_kind, "cpu") == 9.0
    assert model.explain(by_kind, "npu").bound == "explicit"
    refuse = OpNode("z", cost={"cpu": math.inf, "*": 2.0})
    assert math.isinf(model.op_time(refuse, CPU))


def test_device_by_name_or_object(model) -> None:
    node = OpNode("mm", category="matmul", flops=1e9)
    assert model.op_time(node, CPU) == model.op_time(node, "cpu")
    with pytest.raises(PlatformError, match="no device 'gpu'"):
        model.op_time(node, "gpu")


def test_efficiency_override() -> None:
    p = Platform("t", (CPU, NPU))
    node = OpNode("mm", category="matmul", flops=1e12)
    slow = RooflineCostModel(p, efficiency={"cpu": {"matmul": 0.1}})
    assert slow.op_time(node, "cpu") > RooflineCostModel(p).op_time(node, "cpu") * 5


def test_transfer_times() -> None:
    p = Platform.preset("edge-soc")
    m = RooflineCostModel(p)
    assert m.transfer_time(1e6, "gpu", "gpu") == 0.0
    assert m.transfer_time(1e6, "cpu", "gpu") == pytest.approx(10e-6 + 1e6 / 34.1e9)
    two_hops = m.transfer_time(1e6, "npu0", "npu1")
    assert two_hops == pytest.approx(2 * (5e-6 + 1e6 / 34.1e9))
    q = Platform("q", (CPU, NPU))  # no links at all
    with pytest.raises(PlatformError, match="no route from 'cpu' to 'npu'"):
        RooflineCostModel(q).transfer_time(1.0, "cpu", "npu")


def test_memory_bytes(model) -> None:
    assert model.memory_bytes(OpNode("a", param_bytes=10, out_bytes=5, bytes_read=99)) == 15


def test_measured_overrides(tmp_path, model) -> None:
    csv = tmp_path / "m.csv"
    csv.write_text("node,device,seconds\nmm1,cpu,0.5\nmm1,cpu,0.7\nmm1,cpu,0.6\naten.mm,asic,2\n")
    m = MeasuredCostModel(csv, model)
    mm1 = OpNode("mm1", op="aten.mm", category="conv", flops=1e9, dtype="float16")
    other = OpNode("mm2", op="aten.addmm", category="conv", flops=1e9, dtype="float16")
    assert m.op_time(mm1, "cpu") == 0.6  # median of repeats
    assert m.op_time(mm1, "npu") == 2.0  # op name on device kind
    assert m.op_time(other, "cpu") == model.op_time(other, "cpu")
    assert m.explain(mm1, "cpu").reason == "measured"
    js = tmp_path / "m.json"
    js.write_text(json.dumps({"rows": [{"op": "aten.addmm", "device": "npu", "seconds": 1}]}))
    assert MeasuredCostModel(js, model).op_time(other, "npu") == 1.0
    with pytest.raises(PlatformError, match="row #0"):
        MeasuredCostModel([{"node": "x", "device": "cpu", "seconds": "fast"}], model)
