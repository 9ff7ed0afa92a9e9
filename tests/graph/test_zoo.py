"""Model zoo: every model builds, exports and imports; sizes; seeds; bad names."""

from __future__ import annotations

import functools
from typing import Any

import pytest

torch = pytest.importorskip("torch")

from hetsched.errors import UsageError  # noqa: E402
from hetsched.graph import zoo  # noqa: E402
from hetsched.graph.torch_import import from_torch  # noqa: E402

NAMES = [m.name for m in zoo.list_models()]
MUST_HAVE = {
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
    assert NAMES == ["gpt", "mamba", "mlp", "resnet", "unet"]
    assert all(m.description and m.inputs for m in zoo.list_models())


@pytest.mark.parametrize("name", NAMES)
def test_tiny_models_import(name: str) -> None:
    g = _tiny(name)[2]
    assert g.name == f"{name}-tiny"
    assert 10 <= len(g.nodes) < 100
    assert MUST_HAVE[name] <= set(g.category_histogram())
    assert g.total_flops > 0 and g.meta["param_bytes_total"] > 0
    assert all(n.module for n in g.nodes if n.category in ("matmul", "conv", "norm"))


@pytest.mark.parametrize("name", ["gpt", "resnet", "unet", "mamba", "mlp"])
def test_matmul_conv_attention_flops_match_torch_counter(name: str) -> None:
    from torch.utils.flop_counter import FlopCounterMode

    model, args, g = _tiny(name, "split" if name == "gpt" else None)
    with FlopCounterMode(display=False) as fc:
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
    model, (ids,) = zoo.build("gpt", "tiny", seq=40)  # longer than the default context
    assert model(ids).shape == (1, 40, 256)


@pytest.mark.parametrize(
    ("kw", "match"),
    [
        ({"name": "vgg"}, r"unknown model 'vgg' \(zoo models: gpt, mamba, mlp, resnet, unet\)"),
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
@pytest.mark.parametrize("name", ["gpt", "mamba", "resnet", "unet"])
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
