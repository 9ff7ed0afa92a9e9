"""torch.export importer: nodes, FLOPs, bytes, routing through views, meta, errors."""

from __future__ import annotations

import subprocess
import sys
from typing import Any

import pytest

torch = pytest.importorskip("torch")
from torch import nn  # noqa: E402
from torch.nn import functional as F  # noqa: E402

from hetsched.errors import GraphError  # noqa: E402
from hetsched.graph.flops import classify_op, node_flops  # noqa: E402
from hetsched.graph.opgraph import Edge  # noqa: E402
from hetsched.graph.torch_import import from_exported, from_fx, from_torch  # noqa: E402


class _Views(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.lin = nn.Linear(8, 16)
        self.register_buffer("scale", torch.full((16,), 2.0))

    def forward(self, x: Any) -> tuple[Any, ...]:
        y = self.lin(x) * self.scale  # (2, 4, 16)
        a, b = y.split(8, dim=-1)  # views + getitems
        z = a.transpose(1, 2).reshape(2, 32)  # view, then a copy (not contiguous)
        vals, idx = y.max(dim=-1)  # multi-output op
        return a + b, z, vals, idx


def test_linear_flops_are_2mnk_exactly() -> None:
    m, k, n = 15, 8, 4
    g = from_torch(nn.Linear(k, n), (torch.randn(3, 5, k),), name="lin")
    (node,) = g.nodes
    assert node.op == "aten.linear.default" and node.category == "matmul"
    assert node.flops == 2 * m * n * k
    assert node.param_bytes == (n * k + n) * 4
    assert node.bytes_read == (m * k + n * k + n) * 4
    assert node.out_bytes == node.bytes_written == m * n * 4
    assert node.shape == (3, 5, 4) and node.dtype == "float32"


@pytest.mark.parametrize(
    ("fn", "shapes", "expected"),
    [
        (torch.mm, [(3, 5), (5, 7)], 2 * 3 * 5 * 7),
        (torch.matmul, [(2, 6, 3, 5), (5, 7)], 2 * 12 * 3 * 5 * 7),
        (torch.bmm, [(4, 3, 5), (4, 5, 7)], 2 * 4 * 3 * 5 * 7),
    ],
)
def test_matmul_family_flops(fn, shapes, expected) -> None:
    class M(nn.Module):
        def forward(self, a, b):
            return fn(a, b)

    g = from_torch(M(), tuple(torch.randn(*s) for s in shapes))
    assert [n.category for n in g.nodes] == ["matmul"]
    assert g.nodes[0].flops == expected


def test_conv_and_sdpa_flops_match_torch_flop_counter() -> None:
    from torch.utils.flop_counter import FlopCounterMode

    conv = nn.Conv2d(3, 8, 3, padding=1)
    x = torch.randn(2, 3, 8, 8)
    with FlopCounterMode(display=False) as fc:
        conv(x)
    g = from_torch(conv, (x,))
    assert g.nodes[0].category == "conv" and g.nodes[0].flops == fc.get_total_flops()

    class Attn(nn.Module):
        def forward(self, q, k, v):
            return F.scaled_dot_product_attention(q, k, v)

    q = torch.randn(2, 4, 16, 8)
    g = from_torch(Attn(), (q, q.clone(), q.clone()))
    assert g.nodes[0].category == "attention"
    assert g.nodes[0].flops == 2 * (2 * 2 * 4 * 16 * 16 * 8)  # q@k^T and p@v


def test_views_and_getitems_are_routed_not_nodes() -> None:
    g = from_torch(_Views(), (torch.randn(2, 4, 8),), name="views")
    names = {n.name for n in g.nodes}
    assert names == {"linear", "mul", "reshape", "max_1", "add"}
    assert {n.category for n in g.nodes} == {"matmul", "elementwise", "data_movement", "reduction"}
    edges = {(e.src, e.dst): e.bytes for e in g.edges}
    half = 2 * 4 * 8 * 4  # one split half, in bytes
    # split halves a and b both come from mul: one edge carrying both tensors
    assert edges[("mul", "add")] == 2 * half
    # through split/getitem/transpose: one tensor (mul's output) with add, reshape and max as
    # readers; its size is what its largest reader (add: both halves) reads
    assert edges[("mul", "reshape")] == 2 * half
    assert edges[("mul", "max_1")] == 2 * half
    assert g.node("mul").param_bytes == 16 * 4  # the buffer
    mx = g.node("max_1")  # values + int64 indices
    assert mx.out_bytes == 2 * 4 * 4 + 2 * 4 * 8
    fx_nodes = g.meta["fx_nodes"]
    assert {"split", "getitem", "getitem_1"} <= set(fx_nodes["mul"])
    assert {"getitem_2", "getitem_3"} <= set(fx_nodes["max_1"])
    assert g.meta["source"] == "torch.export"
    assert g.meta["inputs"] == ["x"]
    assert g.meta["outputs"] == ["add", "reshape", "getitem_2", "getitem_3"]
    assert g.meta["param_bytes_total"] == (16 * 8 + 16 + 16) * 4


def test_every_fx_node_is_covered_once() -> None:
    ep = torch.export.export(_Views(), (torch.randn(2, 4, 8),))
    g = from_exported(ep)
    covered = [x for xs in g.meta["fx_nodes"].values() for x in xs]
    covered += g.meta.get("unowned", [])
    calls = [n.name for n in ep.graph.nodes if n.op == "call_function"]
    assert sorted(covered) == sorted(calls)


def test_views_of_parameters_go_to_their_consumer() -> None:
    class M(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.w = nn.Parameter(torch.randn(6, 4))
            self.c = torch.ones(3)  # a lifted tensor constant

        def forward(self, x):
            return x @ self.w.t(), self.c * 2

    g = from_torch(M(), (torch.randn(2, 4),))
    mm = next(n for n in g.nodes if n.category == "matmul")
    assert mm.param_bytes == 6 * 4 * 4 and mm.flops == 2 * 2 * 6 * 4
    assert any(x.startswith(("t", "permute")) for x in g.meta["fx_nodes"][mm.name][1:])
    mul = next(n for n in g.nodes if n.category == "elementwise")
    assert mul.param_bytes == 3 * 4


def test_from_fx_matches_from_torch() -> None:
    model = nn.Sequential(nn.Linear(8, 8), nn.ReLU(), nn.Linear(8, 2)).eval()
    x = torch.randn(3, 8)
    gm = torch.fx.symbolic_trace(model)
    a, b = from_fx(gm, (x,)), from_torch(model, (x,))
    assert [n.op for n in a.nodes] == [n.op for n in b.nodes]
    assert a.total_flops == b.total_flops == 2 * 3 * 8 * 8 + 3 * 8 + 2 * 3 * 8 * 2


def test_dynamic_shapes_use_size_hints() -> None:
    batch = torch.export.Dim("batch")
    g = from_torch(nn.Linear(4, 3), (torch.randn(5, 4),), dynamic_shapes=({0: batch},))
    assert g.nodes[0].flops == 2 * 5 * 4 * 3 and g.nodes[0].shape == (5, 3)


def test_untraceable_model_raises_graph_error_naming_it() -> None:
    class DataDependent(nn.Module):
        def forward(self, x):
            if x.sum() > 0:
                return x + 1
            return x - 1

    with pytest.raises(GraphError, match=r"could not trace model 'DataDependent'") as info:
        from_torch(DataDependent(), (torch.randn(3),))
    assert "\n" not in str(info.value)


def test_view_only_program_is_a_graph_error() -> None:
    class OnlyViews(nn.Module):
        def forward(self, x):
            return x.view(-1).unsqueeze(0)

    with pytest.raises(GraphError, match="no compute ops"):
        from_torch(OnlyViews(), (torch.randn(2, 2),))


def test_flop_estimates_without_torch_formula() -> None:
    x = torch.empty(4, 10)
    aten = torch.ops.aten
    assert node_flops(aten.gelu.default, (x,), {}, x, "elementwise") == 40
    assert node_flops(aten.layer_norm.default, (x, [10]), {}, x, "norm") == 200
    assert node_flops(aten.sum.dim_IntList, (x, [1]), {}, torch.empty(4), "reduction") == 40
    assert node_flops(aten.softmax.int, (x, -1), {}, x, "reduction") == 200
    assert node_flops(aten.cat.default, ([x, x],), {}, torch.empty(8, 10), "data_movement") == 0
    assert classify_op("_scaled_dot_product_flash_attention_for_cpu") == "attention"
    assert classify_op("some_unknown_op") == "other"


def test_graph_modules_import_without_torch() -> None:
    code = (
        "import sys\n"
        "import hetsched.graph, hetsched.graph.torch_import, hetsched.graph.zoo\n"
        "import hetsched.graph.coarsen, hetsched.graph.resolve, hetsched.graph.summary\n"
        "import hetsched.cli.graph_cmds\n"
        "assert 'torch' not in sys.modules, 'torch imported eagerly'\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_constants_detach_and_expand_move_no_data() -> None:
    class M(nn.Module):
        def forward(self, x):
            c = torch.tensor([1.0, 2.0])  # lift_fresh_copy + detach_ of a constant
            return (x.detach() + c).expand(3, 2).sum(0)

    g = from_torch(M(), (torch.randn(2),))
    assert [n.op for n in g.nodes] == ["aten.add.Tensor", "aten.sum.dim_IntList"]
    add, total = g.nodes
    assert add.bytes_read == 16 and add.param_bytes == 8  # x and the constant
    assert total.bytes_read == 8  # the expanded view reads only the 2 real elements
    assert g.edges == (Edge(add.name, total.name, 8.0),)


def test_a_tensor_read_by_two_ops_is_one_tensor_with_two_consumers() -> None:
    class Fork(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.a, self.b = nn.Linear(8, 8), nn.Linear(8, 8)

        def forward(self, x):
            y = torch.relu(x)
            return self.a(y) + self.b(y) + y  # y feeds both linears and a residual add

    g = from_torch(Fork(), (torch.randn(4, 8),))
    y = {t.name: t for t in g.tensors}["relu"]
    assert y.src == "relu" and set(y.dsts) == {"linear", "linear_1", "add_1"}
    assert y.bytes == 4 * 8 * 4 and y.dtype == "float32"
    assert sum(t.src == "relu" for t in g.tensors) == 1
    assert g.has_named_tensors  # three edges leave relu, one tensor
    assert {(e.src, e.dst) for e in g.edges} >= {("relu", "linear"), ("relu", "linear_1")}


def test_an_op_reading_a_tensor_twice_is_one_consumer() -> None:
    class Square(nn.Module):
        def forward(self, x):
            y = torch.relu(x)
            return y * y

    g = from_torch(Square(), (torch.randn(4, 8),))
    assert [(t.name, t.src, t.dsts, t.bytes) for t in g.tensors] == [
        ("relu", "relu", ("mul",), 4 * 8 * 4.0)
    ]
    assert g.edges == (Edge("relu", "mul", 4 * 8 * 4.0),)
    assert g.node("mul").bytes_read == 4 * 8 * 4


def test_getitems_of_one_op_are_separate_tensors_with_their_dtypes() -> None:
    """Items of an op's tuple output are tensors of their own, named ``op[i]``; items of a
    view's tuple (split) are views of one tensor."""

    class Max(nn.Module):
        def forward(self, x):
            v, i = torch.relu(x).max(-1)
            return v + i, v * 2

    g = from_torch(Max(), (torch.randn(4, 8),))
    outs = {t.name: (t.dsts, t.bytes, t.dtype) for t in g.tensors if t.src == "max_1"}
    assert outs == {
        "max_1[0]": (("add", "mul"), 16.0, "float32"),
        "max_1[1]": (("add",), 32.0, "int64"),
    }
    assert {(e.src, e.dst): e.bytes for e in g.edges}[("max_1", "add")] == 16.0 + 32.0
    views = from_torch(_Views(), (torch.randn(2, 4, 8),))
    assert len({t.name for t in views.tensors}) == len(views.tensors)  # unique names
    half = 2 * 4 * 8 * 4
    shared = {t.name: (t.src, t.dsts, t.bytes) for t in views.tensors}
    # split's items are views of mul's output: one tensor, read by add (a, b) and by the
    # reshape of a's transpose; its size is the whole output (the views add up to more)
    assert shared["mul"] == ("mul", ("reshape", "max_1", "add"), 2 * half)


def test_views_of_one_output_are_one_tensor() -> None:
    """Two readers of two views of one output on one device need its storage once."""

    class TwoViews(nn.Module):
        def forward(self, x: Any) -> Any:
            y = torch.relu(x)  # (4, 8)
            return y.t() @ y, y.reshape(8, 4).sum()

    g = from_torch(TwoViews(), (torch.randn(4, 8),))
    ts = [t for t in g.tensors if t.src == "relu"]
    assert len(ts) == 1
    assert ts[0].bytes == 4 * 8 * 4  # the distinct views add up to more; the output is 128 B
    assert len(ts[0].dsts) == 2
