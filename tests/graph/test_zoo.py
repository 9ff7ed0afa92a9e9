"""Model zoo: every model builds, exports and imports; sizes; seeds; bad names."""

from __future__ import annotations

import functools
from typing import Any

import pytest

torch = pytest.importorskip("torch")

from hetsched.errors import UsageError  # noqa: E402
from hetsched.graph import zoo  # noqa: E402
from hetsched.graph.fusion import fuse  # noqa: E402
from hetsched.graph.torch_import import from_torch  # noqa: E402

NAMES = [m.name for m in zoo.list_models()]
MUST_HAVE = {
    "decode": {"matmul", "attention", "norm", "data_movement"},
    "gpt": {"matmul", "attention", "norm"},
    "mamba": {"matmul", "conv", "norm", "elementwise"},
    "mlp": {"matmul", "norm"},
    "resnet": {"conv", "norm", "matmul"},
    "unet": {"conv", "attention", "norm", "data_movement"},
}


@functools.cache
def _tiny(name: str, heads: str | None = None) -> tuple[Any, tuple[Any, ...], Any]:
    """(model, args, graph) of a tiny zoo model, exported once per test session."""
    model, args = zoo.build(name, "tiny", heads=heads)
    return model, args, from_torch(model, args, name=f"{name}-tiny")


def test_list_models() -> None:
    assert NAMES == ["decode", "gpt", "mamba", "mlp", "resnet", "unet"]
    assert all(m.description and m.inputs for m in zoo.list_models())


@pytest.mark.parametrize("name", NAMES)
def test_tiny_models_import(name: str) -> None:
    g = _tiny(name)[2]
    assert g.name == f"{name}-tiny"
    assert 10 <= len(g.nodes) < 100
    assert MUST_HAVE[name] <= set(g.category_histogram())
    assert g.total_flops > 0 and g.meta["param_bytes_total"] > 0
    assert all(n.module for n in g.nodes if n.category in ("matmul", "conv", "norm"))


@pytest.mark.parametrize(
    ("name", "heads"),
    [("gpt", "split"), ("decode", None), ("decode", "split")]
    + [(name, None) for name in ("resnet", "unet", "mamba", "mlp")],
)
def test_matmul_conv_attention_flops_match_torch_counter(name: str, heads: str | None) -> None:
    from torch.nn.attention import SDPBackend, sdpa_kernel
    from torch.utils.flop_counter import FlopCounterMode

    model, args, g = _tiny(name, heads)
    # torch's counter has no formula for CPU flash attention: count the math kernel's matmuls
    with sdpa_kernel(SDPBackend.MATH), FlopCounterMode(display=False) as fc:
        model(*args)
    ours = sum(n.flops for n in g.nodes if n.category in ("matmul", "conv", "attention"))
    assert ours == fc.get_total_flops()


def test_gpt_split_heads_make_per_head_ops() -> None:
    fused, split = _tiny("gpt")[2], _tiny("gpt", "split")[2]
    layers, heads = 2, 2
    assert fused.category_histogram()["attention"] == layers
    assert "attention" not in split.category_histogram()
    softmax = [n for n in split.nodes if n.op == "aten.softmax.int"]
    assert len(softmax) == layers * heads
    assert len({n.module for n in softmax}) == layers * heads  # one module per head
    flops = lambda g: sum(  # noqa: E731
        n.flops for n in g.nodes if n.category in ("matmul", "attention")
    )
    assert flops(fused) == flops(split)  # same arithmetic, different granularity


def test_decode_reads_each_layers_cache_and_returns_it_extended() -> None:
    model, args, g = _tiny("decode")
    layers, heads, length, hd = 2, 2, 64, 32
    idx, *cache = args
    assert tuple(idx.shape) == (1, 1)
    assert [tuple(c.shape) for c in cache] == [(1, heads, length, hd)] * (2 * layers)
    f = fuse(g)
    assert (len(g.nodes), len(f.nodes)) == (30, 24)
    assert g.meta["inputs"] == ["idx", *(f"cache_{i}" for i in range(2 * layers))]
    attention = [n for n in g.nodes if n.category == "attention"]
    assert len(attention) == layers
    cache_bytes, entry = 4 * length * heads * hd, 4 * heads * hd
    for att in attention:  # q from the qkv projection, k and v from one cat each
        cats = [p for p in g.predecessors(att.name) if g.node(p).op == "aten.cat.default"]
        assert len(cats) == 2
        for c in map(g.node, cats):  # each cat reads the cache and one new entry
            assert c.shape == (1, heads, length + 1, hd)
            assert c.bytes_read == cache_bytes + entry == c.out_bytes
        assert att.flops == 4 * (length + 1) * heads * hd  # q.k and p.v over L + 1 positions
        assert att.bytes_read > 2 * cache_bytes
    cats = [n.name for n in g.nodes if n.op == "aten.cat.default"]
    assert g.meta["outputs"][1:] == cats  # the extended caches come out, in layer order
    out = model(*args)
    assert len(out) == 1 + 2 * layers
    assert all(torch.equal(o[:, :, :length], c) for o, c in zip(out[1:], cache, strict=True))


@pytest.mark.parametrize("heads", ["fused", "split"])
def test_decode_steps_equal_gpt_on_the_whole_sequence(heads: str) -> None:
    """Decoding token by token from an empty cache gives the logits that a causal GPT with
    the same weights computes for every position of the sequence at once."""
    from hetsched.graph._zoo_models import GPT

    n = 16  # gpt tiny's positions; a cache of n - 1 gives decode as many
    gpt, (ids,) = zoo.build("gpt", "tiny", seq=n, heads=heads, seed=3)
    model, (_, *cache) = zoo.build("decode", "tiny", seq=n - 1, heads=heads)
    model.load_state_dict(gpt.state_dict())
    assert isinstance(gpt, GPT)
    cache = [c[:, :, :0] for c in cache]
    steps = []
    with torch.no_grad():
        full = gpt(ids)
        for t in range(n):
            logits, *cache = model(ids[:, t : t + 1], *cache)
            steps.append(logits)
    assert [c.shape[2] for c in cache] == [n] * len(cache)
    torch.testing.assert_close(torch.cat(steps, dim=1), full)


def test_decode_solves_on_edge_soc() -> None:
    import hetsched

    g = fuse(_tiny("decode")[2])
    plan = hetsched.solve(g, "edge-soc", time_limit=2, fuse=False)
    assert set(plan.assignment) == {n.name for n in g.nodes}
    hetsched.validate(plan, hetsched.build_problem(g, "edge-soc"))
    assert plan.makespan > 0


def test_build_is_seeded_eval_and_leaves_rng_alone() -> None:
    torch.manual_seed(123)
    before = torch.rand(1)
    torch.manual_seed(123)
    m1, a1 = zoo.build("mlp", "tiny", seed=1)
    after = torch.rand(1)
    assert torch.equal(before, after)
    m2, a2 = zoo.build("mlp", "tiny", seed=1)
    m3, _ = zoo.build("mlp", "tiny", seed=2)
    assert not m1.training
    assert torch.equal(a1[0], a2[0])
    w1, w2, w3 = (dict(m.named_parameters())["inp.weight"] for m in (m1, m2, m3))
    assert torch.equal(w1, w2) and not torch.equal(w1, w3)


def test_build_options() -> None:
    _, (idx,) = zoo.build("gpt", "tiny", batch=3, seq=8)
    assert tuple(idx.shape) == (3, 8)
    _, (x, t) = zoo.build("unet", "tiny", batch=2, seq=8)
    assert tuple(x.shape) == (2, 3, 8, 8) and tuple(t.shape) == (2,)
    _, (ids, *cache) = zoo.build("decode", "tiny", batch=2, seq=5)  # seq: the cache length
    assert tuple(ids.shape) == (2, 1) and tuple(cache[0].shape) == (2, 2, 5, 32)
    assert tuple(x.shape) == (2, 3, 8, 8) and tuple(t.shape) == (2,)
    model, (ids,) = zoo.build("gpt", "tiny", seq=40)  # longer than the default context
    assert model(ids).shape == (1, 40, 256)


@pytest.mark.parametrize(
    ("kw", "match"),
    [
        (
            {"name": "vgg"},
            r"unknown model 'vgg' \(zoo models: decode, gpt, mamba, mlp, resnet, unet\)",
        ),
        ({"name": "gpt", "size": "huge"}, r"unknown size 'huge'.*tiny, small, base, large"),
        ({"name": "gpt", "heads": "many"}, "heads must be"),
        ({"name": "gpt", "batch": 0}, "batch and seq must be >= 1"),
    ],
)
def test_bad_requests_raise_usage_error(kw: dict, match: str) -> None:
    with pytest.raises(UsageError, match=match):
        zoo.build(**kw)


def test_mlp_small_is_about_1k_ops() -> None:
    assert 800 <= len(zoo.graph("mlp", "small").nodes) <= 1500


@pytest.mark.slow
@pytest.mark.parametrize("name", ["decode", "gpt", "mamba", "resnet", "unet"])
def test_small_models_are_about_1k_ops(name: str) -> None:
    assert 700 <= len(zoo.graph(name, "small").nodes) <= 2000


@pytest.mark.slow
def test_gpt_base_is_gpt2_small() -> None:
    model, _ = zoo.build("gpt", "base")
    params = sum(p.numel() for p in model.parameters())
    assert 120e6 < params < 130e6  # GPT-2 small: 124M
    g = zoo.graph("gpt", "base")
    assert g.category_histogram()["attention"] == 12


@pytest.mark.slow
@pytest.mark.parametrize("name", NAMES)
def test_large_models_have_10k_ops(name: str) -> None:
    assert len(zoo.graph(name, "large").nodes) >= 10_000
