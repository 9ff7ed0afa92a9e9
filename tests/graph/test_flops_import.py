"""FLOPs and bytes of imported ops, dynamic shapes, data-dependent outputs and dtypes."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")

from torch.export import Dim, export  # noqa: E402
from torch.utils.flop_counter import FlopCounterMode  # noqa: E402

from hetsched.errors import GraphError  # noqa: E402
from hetsched.graph import OpNode, Tensor  # noqa: E402
from hetsched.graph.flops import node_flops  # noqa: E402
from hetsched.graph.summary import format_summary, summarize  # noqa: E402
from hetsched.graph.torch_import import from_exported, from_torch  # noqa: E402

aten = torch.ops.aten


def _torch_flops(model, *args) -> int:
    with FlopCounterMode(display=False) as mode:
        model(*args)
    return mode.get_total_flops()


def test_matmul_conv_attention_flops_equal_torch_flop_counter() -> None:
    class M(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.conv = torch.nn.Conv2d(3, 8, 3, padding=1)
            self.lin = torch.nn.Linear(8, 16)

        def forward(self, x, q):
            y = self.conv(x).mean((2, 3))
            a = torch.nn.functional.scaled_dot_product_attention(q, q, q)
            return self.lin(y), a

    m, args = M().eval(), (torch.randn(2, 3, 8, 8), torch.randn(1, 2, 6, 4))
    g = from_torch(m, args)
    by_cat = {c: sum(n.flops for n in g.nodes if n.category == c) for c in g.category_histogram()}
    # torch's own count in eager mode: conv + linear (its CPU SDPA kernel has no formula)
    assert by_cat["conv"] + by_cat["matmul"] == _torch_flops(m, *args)
    assert by_cat["attention"] == 4 * 2 * 6 * 6 * 4  # torch's SDPA formula: 4 B H L S E


def test_per_element_estimates() -> None:
    x = torch.empty(4, 10)
    img = torch.empty(1, 2, 8, 8)
    assert node_flops(aten.hardswish_.default, (x,), {}, x) == 40
    assert node_flops(aten.softmax.int, (x, -1), {}, x) == 200
    assert node_flops(aten.var_mean.correction, (x, [1]), {}, (x, x)) == 120
    out = torch.empty(1, 2, 3, 3)
    assert node_flops(aten.max_pool2d.default, (img, [3, 3], [2, 2]), {}, out) == 18 * 9
    w = torch.empty(2)
    bn = (img, w, w, w, w, False, 0.1, 1e-5)
    assert node_flops(aten.batch_norm.default, (*bn, False), {}, img) == 2 * 128
    assert node_flops(aten._native_batch_norm_legit_no_training.default, bn[:5], {},
                      (img, w, w)) == 2 * 128  # fmt: skip
    assert node_flops(aten.embedding.default, (x, torch.zeros(3, dtype=torch.long)), {},
                      torch.empty(3, 10)) == 0  # fmt: skip
    assert (
        node_flops(
            aten.addmm_.default,
            (torch.empty(3, 7), torch.empty(3, 5), torch.empty(5, 7)),
            {},
            torch.empty(3, 7),
        )
        == 210
    )


def test_embedding_reads_only_the_rows_it_gathers() -> None:
    class Lookup(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.emb = torch.nn.Embedding(5000, 64)

        def forward(self, idx):
            return self.emb(idx) * 2.0

    g = from_torch(Lookup(), (torch.zeros(1, 8, dtype=torch.long),))
    e = g.node("embedding")
    assert e.category == "embedding"
    assert e.param_bytes == 5000 * 64 * 4  # the table stays where the lookup runs
    assert e.bytes_read == 8 * 64 * 4 + 8 * 8  # the rows gathered and the indices
    assert e.bytes_written == 8 * 64 * 4


def test_gather_on_an_activation_moves_the_whole_source() -> None:
    class Pick(torch.nn.Module):
        def forward(self, x, idx):
            return torch.gather(x.relu(), 1, idx)

    g = from_torch(Pick(), (torch.randn(4, 100), torch.zeros(4, 2, dtype=torch.long)))
    gather = g.node("gather")
    assert gather.bytes_read == 4 * 2 * 4 + 4 * 2 * 8  # rows read + the indices
    relu_out = next(t for t in g.tensors if t.src == "relu")
    assert relu_out.bytes == 4 * 100 * 4  # which rows is known only at run time


def test_inplace_activation_is_pointwise_with_flops() -> None:
    m = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 1), torch.nn.Hardswish(inplace=True)).eval()
    g = from_torch(m, (torch.randn(1, 3, 4, 4),))
    h = g.node("hardswish_")
    assert (h.op, h.category, h.flops) == ("aten.hardswish_.default", "elementwise", 64.0)


def test_dynamic_dims_cost_at_the_declared_bound() -> None:
    lin = torch.nn.Linear(8, 8)
    ep = export(lin, (torch.randn(4, 8),), dynamic_shapes={"input": {0: Dim("b", max=64)}})
    g = from_exported(ep)
    assert g.node("linear").shape == (64, 8)
    assert g.node("linear").flops == 2 * 64 * 8 * 8
    (info,) = g.meta["dynamic_shapes"].values()
    assert info == {"size": 64, "basis": "Dim upper bound", "range": [info["range"][0], 64],
                    "example": 4, "input": "input.shape[0]"}  # fmt: skip
    ep = export(lin, (torch.randn(5, 8),), dynamic_shapes={"input": {0: Dim("b")}})
    g = from_exported(ep)
    (info,) = g.meta["dynamic_shapes"].values()
    assert g.node("linear").shape == (5, 8)
    assert (info["size"], info["basis"], info["range"][1]) == (
        5, "example size (no upper bound)", None)  # fmt: skip
    assert "example size (no upper bound)" in format_summary(summarize(g))


def test_data_dependent_outputs_are_marked() -> None:
    class NZ(torch.nn.Module):
        def forward(self, y):
            return torch.nonzero(y), torch.masked_select(y, y > 0)

    g = from_torch(NZ(), (torch.randn(5, 3),))
    dd = g.meta["data_dependent"]
    assert set(dd) == {"nonzero", "masked_select"}
    assert dd["nonzero"]["op"] == "aten.nonzero.default"
    assert dd["nonzero"]["shape"][1] == "2" and dd["nonzero"]["shape"][0].startswith("u")
    assert list(dd["nonzero"]["assumed"].values()) == [15]  # at most every element
    assert g.node("nonzero").shape == (15, 2)  # not a silent (1, 2)
    assert g.node("nonzero").bytes_written == 15 * 2 * 8
    assert g.node("masked_select").shape == (15,)
    assert "depends on the data" in format_summary(summarize(g))
    static = from_torch(torch.nn.ReLU(), (torch.randn(2),))
    assert "data_dependent" not in static.meta and "dynamic_shapes" not in static.meta


@pytest.mark.parametrize("dtype", ["float128", "fp8", "", "torch.floaty"])
def test_unknown_dtype_is_one_line_error(dtype) -> None:
    with pytest.raises(GraphError) as err:
        OpNode("a", dtype=dtype)
    msg = str(err.value)
    assert "\n" not in msg and f"unknown dtype {dtype!r}" in msg
    assert "float32" in msg and "bfloat16" in msg and "int64" in msg
    with pytest.raises(GraphError, match="tensor 't': unknown dtype"):
        Tensor("t", "a", ("b",), 4.0, dtype)


@pytest.mark.parametrize("dtype", ["float32", "torch.float16", "half", "bf16", "int64", "bool"])
def test_known_dtypes(dtype) -> None:
    assert OpNode("a", dtype=dtype).dtype == dtype


def test_dtype_check_reads_graph_json(tmp_path) -> None:
    import json

    from hetsched.graph import load

    path = tmp_path / "g.json"
    path.write_text(json.dumps({"format": "hetsched.graph/1", "name": "g", "edges": [],
                                "nodes": [{"name": "a", "dtype": "float128"}]}))  # fmt: skip
    with pytest.raises(GraphError, match="unknown dtype 'float128'"):
        load(path)
