"""Eleven models nobody here wrote, small and with random weights, for export -> solve -> run.

Each builder returns ``(model, example_args)`` with the model in eval mode, its weights drawn
after ``torch.manual_seed(seed)``, and nothing downloaded (``HF_HUB_OFFLINE=1``):

* HuggingFace ``transformers`` from configs (2 layers, hidden 64): ``gpt2``, ``bert``,
  ``llama`` (grouped-query attention), ``mistral``, ``qwen2``, ``t5-encoder``, ``vit``; each
  wrapped to return ``last_hidden_state`` with ``use_cache=False``;
* ``torchvision`` 0.28's own builders: ``resnet18``, ``mobilenet_v3_small``,
  ``efficientnet_b0`` (10 classes, 64x64 images), loaded through :func:`torchvision_models`;
* a ``diffusers`` ``UNet2DConditionModel`` (two blocks of 32/64 channels, 8x8 latents),
  ``unet2d-cond``, wrapped to return ``sample``.

Used by ``tests/models/test_real_models.py`` and ``benchmarks/real_models.py``.

Installing
----------
``pip install -e '.[models]'`` brings ``transformers`` and ``diffusers``. torchvision is
installed apart, outside ``site-packages``::

    .venv/bin/pip install --no-deps --target .venv/vendor torchvision==0.28.0

Why apart: torchvision 0.28 is the release built for torch 2.13, but its compiled ops
(``_C.so``) link ``libtorch_cuda.so``, which the CPU torch lacks; ``import torchvision`` then
fails in ``torchvision/__init__.py`` when ``_meta_registrations`` registers fake kernels for
``torchvision::nms`` and friends, ops that were never defined. Worse, once torchvision is
importable from ``site-packages``, ``transformers`` sees it as available and
``from transformers import GPT2Model`` fails with the same error. In ``.venv/vendor`` it is
invisible to everything except :func:`torchvision_models`.
"""

from __future__ import annotations

import importlib.util
import os
import sys
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any

__all__ = [
    "HF_MODELS",
    "MODELS",
    "TORCHVISION_MODELS",
    "build",
    "need",
    "requirement",
    "torchvision_dir",
    "torchvision_models",
]

HF_MODELS = ("gpt2", "bert", "llama", "mistral", "qwen2", "t5-encoder", "vit")
TORCHVISION_MODELS = ("resnet18", "mobilenet_v3_small", "efficientnet_b0")
MODELS = (*HF_MODELS, *TORCHVISION_MODELS, "unet2d-cond")

_TV_ENV = "HETSCHED_TORCHVISION_DIR"


def torchvision_dir() -> Path | None:
    """Where the torchvision package to load lies: ``$HETSCHED_TORCHVISION_DIR``, else
    ``<venv>/vendor``, else an importable ``torchvision`` (one on ``sys.path``); None if none.
    """
    for root in (os.environ.get(_TV_ENV), str(Path(sys.prefix) / "vendor")):
        if root and (Path(root) / "torchvision" / "__init__.py").is_file():
            return Path(root) / "torchvision"
    spec = importlib.util.find_spec("torchvision") if "torchvision" not in sys.modules else None
    if spec is not None and spec.submodule_search_locations:
        return Path(next(iter(spec.submodule_search_locations)))
    return None


def torchvision_models() -> ModuleType:
    """``torchvision.models`` with torchvision's package ``__init__`` left unrun.

    The shim: ``torchvision`` is registered in ``sys.modules`` as a package whose
    ``__path__`` is the real one but whose ``__init__`` never runs, so importing
    ``torchvision.models`` loads the real pure-Python builders (and the ``ops``,
    ``transforms`` and ``utils`` modules they import) while skipping what needs the compiled
    ops: ``_meta_registrations`` / ``_autograd_registrations`` (kernels for ``torchvision::nms``,
    ``roi_align``, ... which a CPU torch never defines), ``datasets`` and ``io``.
    ``torchvision.extension`` still tries ``_C.so``, fails quietly and records that the
    compiled ops are missing; only detection ops (nms, roi_align) would need them, and they
    raise when called. A torchvision imported normally before (a matching build) is used as is.

    This changes process state: later ``import torchvision`` in the same process gets this
    package (``transformers`` then uses its pure-Python transforms, which work).

    Raises
    ------
    ImportError
        When no torchvision is installed (see the module docstring for the command).
    """
    if "torchvision.models" in sys.modules:
        return sys.modules["torchvision.models"]
    if "torchvision" not in sys.modules:
        where = torchvision_dir()
        if where is None:
            msg = (
                "torchvision not found: .venv/bin/pip install --no-deps --target .venv/vendor "
                f"torchvision==0.28.0 (or set {_TV_ENV})"
            )
            raise ImportError(msg)
        spec = importlib.util.spec_from_file_location(
            "torchvision", where / "__init__.py", submodule_search_locations=[str(where)]
        )
        assert spec is not None
        package = importlib.util.module_from_spec(spec)  # created, deliberately not executed
        from importlib.metadata import PathDistribution

        dist = next(where.parent.glob("torchvision-*.dist-info"), None)
        package.__version__ = (  # type: ignore[attr-defined]
            PathDistribution(dist).version if dist else "unknown"
        )
        sys.modules["torchvision"] = package
    import torchvision.models

    return torchvision.models


def _wrap(model: Any, attr: str) -> Any:
    import torch

    class Wrapped(torch.nn.Module):
        """Return ``model(*args).<attr>`` so that the output is one tensor."""

        def __init__(self) -> None:
            super().__init__()
            self.inner = model

        def forward(self, *args: Any) -> Any:
            return getattr(self.inner(*args), attr)

    Wrapped.__name__ = Wrapped.__qualname__ = f"{type(model).__name__}_{attr}"
    return Wrapped().eval()


def _ids(vocab: int, seq: int = 16) -> Any:
    import torch

    g = torch.Generator().manual_seed(1)
    return torch.randint(0, vocab, (1, seq), generator=g)


_DEC = {  # decoder-only LMs share one small shape
    "vocab_size": 256,
    "hidden_size": 64,
    "intermediate_size": 128,
    "num_hidden_layers": 2,
    "num_attention_heads": 4,
    "num_key_value_heads": 2,
    "max_position_embeddings": 64,
    "use_cache": False,
}


def _gpt2() -> tuple[Any, tuple[Any, ...]]:
    from transformers import GPT2Config, GPT2Model

    cfg = GPT2Config(
        vocab_size=256,
        n_positions=64,
        n_embd=64,
        n_layer=2,
        n_head=2,
        use_cache=False,
        bos_token_id=255,
        eos_token_id=255,
    )
    return _wrap(GPT2Model(cfg), "last_hidden_state"), (_ids(256),)


def _bert() -> tuple[Any, tuple[Any, ...]]:
    from transformers import BertConfig, BertModel

    cfg = BertConfig(
        vocab_size=256,
        hidden_size=64,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=128,
        max_position_embeddings=64,
        use_cache=False,
    )
    return _wrap(BertModel(cfg, add_pooling_layer=False), "last_hidden_state"), (_ids(256),)


def _decoder(kind: str) -> tuple[Any, tuple[Any, ...]]:
    import transformers

    config_cls, model_cls = {
        "llama": ("LlamaConfig", "LlamaModel"),
        "mistral": ("MistralConfig", "MistralModel"),
        "qwen2": ("Qwen2Config", "Qwen2Model"),
    }[kind]
    cfg = getattr(transformers, config_cls)(**_DEC)
    model = getattr(transformers, model_cls)(cfg)
    return _wrap(model, "last_hidden_state"), (_ids(256),)


def _t5_encoder() -> tuple[Any, tuple[Any, ...]]:
    from transformers import T5Config, T5EncoderModel

    cfg = T5Config(
        vocab_size=256, d_model=64, d_kv=16, d_ff=128, num_layers=2, num_heads=4, use_cache=False
    )
    return _wrap(T5EncoderModel(cfg), "last_hidden_state"), (_ids(256),)


def _vit() -> tuple[Any, tuple[Any, ...]]:
    import torch
    from transformers import ViTConfig, ViTModel

    cfg = ViTConfig(
        hidden_size=64,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=128,
        image_size=32,
        patch_size=8,
    )
    x = torch.randn(1, 3, 32, 32, generator=torch.Generator().manual_seed(1))
    return _wrap(ViTModel(cfg, add_pooling_layer=False), "last_hidden_state"), (x,)


def _torchvision(name: str) -> tuple[Any, tuple[Any, ...]]:
    import torch

    model = getattr(torchvision_models(), name)(weights=None, num_classes=10).eval()
    x = torch.randn(1, 3, 64, 64, generator=torch.Generator().manual_seed(1))
    return model, (x,)


def _unet() -> tuple[Any, tuple[Any, ...]]:
    import torch
    from diffusers import UNet2DConditionModel

    model = UNet2DConditionModel(
        sample_size=8,
        in_channels=4,
        out_channels=4,
        down_block_types=("CrossAttnDownBlock2D", "DownBlock2D"),
        up_block_types=("UpBlock2D", "CrossAttnUpBlock2D"),
        block_out_channels=(32, 64),
        layers_per_block=1,
        norm_num_groups=8,
        cross_attention_dim=32,
        attention_head_dim=8,
    )
    g = torch.Generator().manual_seed(1)
    sample = torch.randn(1, 4, 8, 8, generator=g)
    timestep = torch.tensor([10])
    context = torch.randn(1, 4, 32, generator=g)
    return _wrap(model, "sample"), (sample, timestep, context)


_BUILDERS: dict[str, Callable[[], tuple[Any, tuple[Any, ...]]]] = {
    "gpt2": _gpt2,
    "bert": _bert,
    "llama": lambda: _decoder("llama"),
    "mistral": lambda: _decoder("mistral"),
    "qwen2": lambda: _decoder("qwen2"),
    "t5-encoder": _t5_encoder,
    "vit": _vit,
    "resnet18": lambda: _torchvision("resnet18"),
    "mobilenet_v3_small": lambda: _torchvision("mobilenet_v3_small"),
    "efficientnet_b0": lambda: _torchvision("efficientnet_b0"),
    "unet2d-cond": _unet,
}


def need(name: str) -> None:
    """Skip the calling test when the package model ``name`` needs is missing."""
    import pytest

    package = requirement(name)
    if package == "torchvision":
        if torchvision_dir() is None:
            pytest.skip(
                "torchvision not installed: pip install --no-deps --target .venv/vendor "
                "torchvision==0.28.0"
            )
    else:
        pytest.importorskip(package)


def requirement(name: str) -> str:
    """The package ``name`` needs: ``transformers``, ``torchvision`` or ``diffusers``."""
    if name in HF_MODELS:
        return "transformers"
    if name in TORCHVISION_MODELS:
        return "torchvision"
    return "diffusers"


def build(name: str, *, seed: int = 0) -> tuple[Any, tuple[Any, ...]]:
    """``(model, example_args)`` for one of :data:`MODELS`, weights drawn from ``seed``.

    Raises
    ------
    KeyError
        For a name not in :data:`MODELS`.
    ImportError
        When the package the model needs is missing.
    """
    import torch

    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    builder = _BUILDERS[name]
    torch.manual_seed(seed)
    model, args = builder()
    return model.eval(), args
