"""What the presets' devices run, and why; per-category costs of the new categories."""

from __future__ import annotations

import pytest

from hetsched.cli import main
from hetsched.costmodel import Platform, RooflineCostModel, because, categories
from hetsched.costmodel.device import DEFAULT_COMPUTE_EFFICIENCY, DEFAULT_MEMORY_EFFICIENCY
from hetsched.costmodel.support import from_spec
from hetsched.errors import PlatformError
from hetsched.graph import OpNode
from hetsched.graph.opgraph import CATEGORIES

PRESETS = ("edge-soc", "workstation", "multi-gpu")


@pytest.mark.parametrize("name", PRESETS)
def test_every_restricted_device_says_why(name) -> None:
    for d in Platform.preset(name).devices:
        spec = d.supports.to_spec()
        if spec:  # a device that does not run every op
            assert isinstance(spec.get("reason"), str) and len(spec["reason"]) > 20, d.name
    plat = Platform.preset(name)
    assert Platform.from_toml(plat.to_toml()) == plat


def test_efficiencies_cover_every_category() -> None:
    for table in (DEFAULT_COMPUTE_EFFICIENCY, DEFAULT_MEMORY_EFFICIENCY):
        for kind, effs in table.items():
            assert tuple(effs) == CATEGORIES, kind
            assert all(0 < v <= 1 for v in effs.values())


@pytest.mark.parametrize(
    ("category", "runs"),
    [
        ("conv", True), ("matmul", True), ("elementwise", True), ("norm", True),
        ("pool", True), ("softmax", True), ("reduction", True), ("attention", False),
        ("embedding", False), ("index", False), ("data_movement", False),
        ("creation", False), ("other", False),
    ],
)  # fmt: skip
def test_edge_soc_npu(category, runs) -> None:
    npu = Platform.preset("edge-soc").device("npu0")
    node = OpNode("x", category=category, flops=1e6, bytes_read=1e6)
    why = npu.supports.why_not(node, npu)
    assert (why is None) == runs
    if why is not None:
        assert "FSD NPU" in why  # the reason is quoted in the refusal


def test_workstation_accelerator_refuses_data_dependent_shapes() -> None:
    plat = Platform.preset("workstation")
    model = RooflineCostModel(plat)
    for cat in CATEGORIES[:-1]:
        assert model.op_time(OpNode("x", category=cat, bytes_read=1e3), "acc") < 1.0
    nz = OpNode("nz", "aten.nonzero.default", "index")
    assert model.op_time(nz, "acc") == float("inf")
    assert "static-graph compiler" in model.explain(nz, "acc").reason
    assert model.op_time(OpNode("o", category="other"), "acc") == float("inf")


def test_reason_spec() -> None:
    p = from_spec({"categories": ["conv"], "reason": "a convolution engine"})
    assert p == because(categories("conv"), "a convolution engine")
    assert from_spec(p.to_spec()) == p
    with pytest.raises(PlatformError, match="reason"):
        from_spec({"categories": ["conv"], "reason": 3})
    with pytest.raises(PlatformError, match="reason"):
        because(categories("conv"), " ")


def test_cost_explain_inplace_activation_is_pointwise(capsys, tmp_path) -> None:
    torch = pytest.importorskip("torch")
    from hetsched.graph import save
    from hetsched.graph.torch_import import from_torch

    class CatAct(torch.nn.Module):  # after a cat, which no fusion pass folds it into
        def forward(self, x):
            return torch.nn.functional.hardswish(torch.cat([x, x], 1), inplace=True)

    path = tmp_path / "m.json"
    save(from_torch(CatAct(), (torch.randn(1, 4, 8, 8),)), path)
    assert main(["cost", str(path), "--explain", "hardswish_"]) == 0
    out = capsys.readouterr().out
    head = out.splitlines()[0]
    assert "aten.hardswish_.default [elementwise, float32] flops=512" in head
    native = out.split("\nint8 on")[0]  # the exported precision's terms, then the lowered ones
    assert "hardswish_ on npu0: " in native and "unsupported" not in native
    assert "int8 on npu0: " in out and "int8 on gpu: unsupported (no int8 units" in out
