"""Op costs per precision: weight-only int8 (w8a16) reads int8 weights and computes in
float16, so it pays where weights dominate the bytes and never where compute does."""

from __future__ import annotations

import math

import pytest

from hetsched.costmodel import Platform
from hetsched.costmodel.precision import PRECISIONS, lowered_node, precision_table
from hetsched.graph import OpGraph, OpNode

CPU, GPU, NPU0 = 0, 1, 2


def _graph() -> OpGraph:
    gemv = OpNode(
        "gemv",
        category="matmul",
        flops=2 * 4096 * 4096,
        bytes_read=4 * 4096 * 4097,
        bytes_written=4 * 4096,
        param_bytes=4 * 4096 * 4096,
        out_bytes=4 * 4096,
    )
    gemm = OpNode(
        "gemm",
        category="matmul",
        flops=2 * 2048 * 512 * 512,
        bytes_read=4 * (2048 * 512 + 512 * 512),
        bytes_written=4 * 2048 * 512,
        param_bytes=4 * 512 * 512,
        out_bytes=4 * 2048 * 512,
    )
    act = OpNode(
        "gelu", category="elementwise", flops=8e6, bytes_read=4e6, bytes_written=4e6, out_bytes=4e6
    )
    return OpGraph("g", [gemv, gemm, act])  # fmt: skip


@pytest.fixture(scope="module")
def tables() -> dict[str, object]:
    g, p = _graph(), Platform.preset("edge-soc")
    return {q: precision_table(g, p, q) for q in PRECISIONS}


def test_weight_only_stores_int8_weights_and_half_activations() -> None:
    gemv = _graph().nodes[0]
    w8 = lowered_node(gemv, "w8a16")
    i8 = lowered_node(gemv, "int8")
    f16 = lowered_node(gemv, "float16")
    assert w8 is not None and i8 is not None and f16 is not None
    assert w8.param_bytes == i8.param_bytes == gemv.param_bytes / 4
    assert w8.bytes_written == f16.bytes_written == gemv.bytes_written / 2
    assert w8.dtype == "float16"  # it computes at the float16 peak
    assert lowered_node(_graph().nodes[2], "w8a16") is None  # no weights: it is float16


def test_weight_bound_ops_gain_compute_bound_ops_do_not(tables: dict) -> None:  # type: ignore[type-arg]
    w8, f16, i8 = tables["w8a16"], tables["float16"], tables["int8"]
    # gemv: weight bytes dominate; w8a16 between int8 and float16 on every device
    for d in (CPU, NPU0):
        assert i8.exec[0, d] <= w8.exec[0, d] < f16.exec[0, d]
    assert w8.exec[0, GPU] < f16.exec[0, GPU] and math.isinf(i8.exec[0, GPU])
    # gemm on the NPU: compute-bound in float16, so weight-only int8 gains nothing there
    assert w8.exec[1, NPU0] == pytest.approx(f16.exec[1, NPU0], rel=1e-9)
    assert w8.weights[0] == i8.weights[0] == f16.weights[0] / 2
    assert all(math.isinf(x) for x in w8.exec[2])  # no weights: no w8a16 mode
