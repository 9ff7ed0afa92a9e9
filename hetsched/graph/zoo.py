"""A model zoo of plain-torch models with seeded random weights (no downloads).

Every model exports with ``torch.export``. Sizes: ``tiny`` (tests, < 100 ops after import),
``small`` (~1k ops), ``base`` (realistic widths: GPT-2-small, ResNet-34, the DDPM CIFAR UNet,
Mamba-130m) and ``large`` (>= 10k ops after import). ``gpt`` computes attention heads with one
``scaled_dot_product_attention`` op (``heads="fused"``) or head by head (``heads="split"``,
per-head q/k/v projections, ``q@k^T``, mask, softmax, ``@v``); the default is ``"split"`` for
``small`` and ``large`` and ``"fused"`` otherwise. ``decode`` is one decoding step of ``gpt``
(same layers, widths, heads and parameter names): one new token attends to a KV cache of
``L`` past positions per layer, passed in as inputs (``L``: tiny 64, small 512, base 1024,
large 2048; ``seq`` sets it), and the caches with its k/v appended come out. torch is
imported lazily.

Examples
--------
>>> [m.name for m in list_models()]
['decode', 'gpt', 'mamba', 'mlp', 'resnet', 'unet']
>>> model, args = build("mlp", "tiny", batch=2)
>>> tuple(args[0].shape), model.training
((2, 64), False)
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from hetsched.errors import UsageError

if TYPE_CHECKING:  # pragma: no cover
    from torch import nn

    from hetsched.graph.opgraph import OpGraph

__all__ = ["SIZES", "ModelInfo", "build", "graph", "list_models"]

SIZES: tuple[str, ...] = ("tiny", "small", "base", "large")


@dataclass(frozen=True)
class ModelInfo:
    """A zoo entry: ``name``, one-line ``description`` and what ``inputs`` it takes."""

    name: str
    description: str
    inputs: str


_INFO = {
    "decode": ModelInfo(
        "decode",
        "one decode step of gpt with a KV cache: the new token's k/v are appended to each "
        "layer's cache of L positions and it attends to all of them (L = 64/512/1024/2048)",
        "token ids (batch, 1), then keys and values (batch, heads, L, d/heads) per layer",
    ),
    "gpt": ModelInfo(
        "gpt",
        "GPT-style decoder: token+position embedding, causal multi-head attention, GELU MLP, "
        "pre-LayerNorm (base = GPT-2 small; large = 48 layers, split heads)",
        "token ids (batch, seq)",
    ),
    "mamba": ModelInfo(
        "mamba",
        "Mamba-style selective state space LM: in_proj, causal depthwise conv1d, "
        "input-dependent dt/B/C, unrolled scan over seq, gated output, RMSNorm",
        "token ids (batch, seq)",
    ),
    "mlp": ModelInfo(
        "mlp",
        "residual MLP: input Linear, blocks of LayerNorm-Linear-GELU-Linear-add, head",
        "features (batch, 64|128|768) or (batch, seq, ...) when seq is given",
    ),
    "resnet": ModelInfo(
        "resnet",
        "ResNet-style CNN with BasicBlocks (CIFAR layout; base = ResNet-34 on 224x224)",
        "images (batch, 3, side, side); seq sets the side",
    ),
    "unet": ModelInfo(
        "unet",
        "UNet diffusion denoiser: sinusoidal timestep MLP, ResBlocks with GroupNorm, conv "
        "down/up path with skips, self-attention (bottleneck and chosen levels)",
        "images (batch, 3, side, side) and timesteps (batch,); seq sets the side",
    ),
}

# name -> size -> hyper-parameters
_CONFIGS: dict[str, dict[str, dict[str, Any]]] = {
    "decode": {  # gpt's sizes; cache: past positions L per layer
        "tiny": dict(layers=2, d=64, heads=2, cache=64, vocab=256, split=False),
        "small": dict(layers=12, d=256, heads=8, cache=512, vocab=2048, split=True),
        "base": dict(layers=12, d=768, heads=12, cache=1024, vocab=50257, split=False),
        "large": dict(layers=48, d=1024, heads=32, cache=2048, vocab=50257, split=True),
    },
    "gpt": {
        "tiny": dict(layers=2, d=64, heads=2, seq=16, vocab=256, split=False),
        "small": dict(layers=12, d=256, heads=8, seq=64, vocab=2048, split=True),
        "base": dict(layers=12, d=768, heads=12, seq=128, vocab=50257, split=False),
        "large": dict(layers=48, d=1024, heads=32, seq=128, vocab=50257, split=True),
    },
    "mamba": {
        "tiny": dict(layers=2, d=32, state=8, seq=6, vocab=256),
        "small": dict(layers=8, d=128, state=16, seq=32, vocab=2048),
        "base": dict(layers=24, d=768, state=16, seq=32, vocab=50257),
        "large": dict(layers=48, d=1024, state=16, seq=64, vocab=50257),
    },
    "mlp": {
        "tiny": dict(blocks=4, d=64, hidden=128, out=10),
        "small": dict(blocks=200, d=128, hidden=256, out=10),
        "base": dict(blocks=12, d=768, hidden=3072, out=1000),
        "large": dict(blocks=2000, d=128, hidden=256, out=10),
    },
    "resnet": {
        "tiny": dict(widths=(8, 16), blocks=(1, 1), side=16, classes=10, imagenet=False),
        "small": dict(
            widths=(16, 32, 64), blocks=(48, 48, 48), side=32, classes=10, imagenet=False
        ),
        "base": dict(
            widths=(64, 128, 256, 512), blocks=(3, 4, 6, 3), side=224, classes=1000, imagenet=True
        ),
        "large": dict(
            widths=(16, 32, 64), blocks=(480, 480, 480), side=32, classes=10, imagenet=False
        ),
    },
    "unet": {
        "tiny": dict(ch=16, mults=(1, 2), nres=1, attn=(), side=16, groups=4, heads=1, up_extra=0),
        "small": dict(
            ch=32, mults=(1, 2, 2, 2), nres=7, attn=(1, 2, 3), side=32, groups=8, heads=4
        ),
        "base": dict(ch=128, mults=(1, 2, 2, 2), nres=2, attn=(1,), side=32, groups=32, heads=1),
        "large": dict(
            ch=32, mults=(1, 2, 2, 2), nres=80, attn=(0, 1, 2, 3), side=32, groups=8, heads=4
        ),
    },
}


def list_models() -> list[ModelInfo]:
    """The zoo's models, sorted by name."""
    return [_INFO[k] for k in sorted(_INFO)]


def _config(name: str, size: str) -> dict[str, Any]:
    if name not in _CONFIGS:
        msg = f"unknown model {name!r} (zoo models: {', '.join(sorted(_CONFIGS))})"
        raise UsageError(msg)
    if size not in _CONFIGS[name]:
        msg = f"unknown size {size!r} for model {name!r} (sizes: {', '.join(SIZES)})"
        raise UsageError(msg)
    return dict(_CONFIGS[name][size])


def build(
    name: str,
    size: str = "tiny",
    *,
    batch: int = 1,
    seq: int | None = None,
    heads: str | None = None,
    seed: int = 0,
) -> tuple[nn.Module, tuple[Any, ...]]:
    """Build a zoo model (eval mode, weights from ``seed``) and example inputs for it.

    Parameters
    ----------
    name : a name from :func:`list_models`.
    size : one of :data:`SIZES`.
    batch : batch size of the example inputs.
    seq : sequence length (gpt, mamba), cache length ``L`` (decode), image side (resnet,
        unet), or token count (mlp: inputs become ``(batch, seq, d)``); default from the size.
    heads : ``"fused"`` or ``"split"`` attention heads (gpt and decode; default depends on
        size).
    seed : seeds weights and inputs; the caller's RNG state is left untouched.

    Raises
    ------
    UsageError
        Unknown name, size or heads mode, or a non-positive batch/seq.
    """
    import torch

    cfg = _config(name, size)
    if heads not in (None, "fused", "split"):
        msg = f"heads must be 'fused' or 'split', got {heads!r}"
        raise UsageError(msg)
    if batch < 1 or (seq is not None and seq < 1):
        msg = f"batch and seq must be >= 1, got batch={batch}, seq={seq}"
        raise UsageError(msg)
    import hetsched.graph._zoo_models as zm

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        if name == "gpt":
            if heads is not None:
                cfg["split"] = heads == "split"
            t = seq or cfg["seq"]
            cfg["seq"] = max(t, cfg["seq"])
            model: nn.Module = zm.GPT(**cfg)
            args: tuple[Any, ...] = (torch.randint(0, cfg["vocab"], (batch, t)),)
        elif name == "decode":
            if heads is not None:
                cfg["split"] = heads == "split"
            length = cfg.pop("cache")
            length = seq or length
            model = zm.Decode(**cfg, seq=length + 1)
            hd = cfg["d"] // cfg["heads"]
            cache = (torch.randn(batch, cfg["heads"], length, hd) for _ in range(2 * cfg["layers"]))
            args = (torch.randint(0, cfg["vocab"], (batch, 1)), *cache)
        elif name == "mamba":
            t = cfg.pop("seq")
            t = seq or t
            model = zm.Mamba(**cfg)
            args = (torch.randint(0, cfg["vocab"], (batch, t)),)
        elif name == "mlp":
            model = zm.MLP(**cfg)
            shape = (batch, cfg["d"]) if seq is None else (batch, seq, cfg["d"])
            args = (torch.randn(*shape),)
        elif name == "resnet":
            side = cfg.pop("side")
            side = seq or side
            model = zm.ResNet(**cfg)
            args = (torch.randn(batch, 3, side, side),)
        else:
            side = cfg.pop("side")
            side = seq or side
            model = zm.UNet(**cfg)
            args = (torch.randn(batch, 3, side, side), torch.randint(0, 1000, (batch,)).float())
    return model.eval(), args


def graph(name: str, size: str = "tiny", **kw: Any) -> OpGraph:
    """Build a zoo model and import it with :func:`~hetsched.graph.torch_import.from_torch`.

    The graph is named ``f"{name}-{size}"``; keyword arguments go to :func:`build`.

    Examples
    --------
    >>> g = graph("mlp", "tiny")
    >>> g.name, len(g.nodes), g.category_histogram()
    ('mlp-tiny', 23, {'matmul': 10, 'elementwise': 9, 'norm': 4})
    """
    from hetsched.graph.torch_import import from_torch

    model, args = build(name, size, **kw)
    return from_torch(model, args, name=f"{name}-{size}")
