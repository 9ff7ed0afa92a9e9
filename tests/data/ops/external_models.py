"""Factories for the models from outside the zoo that ``external.json`` lists the ops of.

Each ``name()`` returns ``(model, example_args)`` with random weights and a small config, for
``hetsched ops tests/data/ops/external_models.py:NAME`` style factory specs; imports are
lazy, so importing this file needs nothing beyond torch. Regenerate the data file with::

    PYTHONPATH=tests/data/ops:$TV .venv/bin/python tests/data/ops/external_models.py

where ``$TV`` holds torchvision's pure-Python sources (e.g. an unpacked torchvision wheel:
its compiled ops need a CUDA torch, so :func:`_torchvision` stubs their meta registrations;
the three vision models use none of them). Needs ``transformers`` and ``diffusers``.
"""

from __future__ import annotations

import sys
import types
from typing import Any

__all__ = ["MODELS"]


def _ids(vocab: int, seq: int = 16) -> Any:
    import torch

    _stub_torchvision()

    return (torch.randint(0, vocab, (1, seq), generator=torch.Generator().manual_seed(0)),)


def _hf(model: Any) -> Any:
    import torch

    class LastHidden(torch.nn.Module):
        """Return the first output tensor (logits or last hidden state) of a HF model."""

        def __init__(self, inner: Any) -> None:
            super().__init__()
            self.inner = inner

        def forward(self, *args: Any) -> Any:
            out = self.inner(*args)
            return out[0]

    torch.manual_seed(0)
    return LastHidden(model.eval())


def gpt2(layers: int = 2, width: int = 64, vocab: int = 1000, seq: int = 16) -> Any:
    _stub_torchvision()
    from transformers import GPT2Config, GPT2LMHeadModel

    cfg = GPT2Config(n_layer=layers, n_embd=width, n_head=max(1, width // 32), vocab_size=vocab)
    return _hf(GPT2LMHeadModel(cfg)), _ids(vocab, seq)


def gpt2_124m() -> Any:
    """GPT-2 small (124M parameters) at sequence length 64."""
    return gpt2(layers=12, width=768, vocab=50257, seq=64)


def bert() -> Any:
    _stub_torchvision()
    from transformers import BertConfig, BertModel

    cfg = BertConfig(num_hidden_layers=2, hidden_size=64, num_attention_heads=2,
                     intermediate_size=128, vocab_size=1000)  # fmt: skip
    return _hf(BertModel(cfg, add_pooling_layer=False)), _ids(1000)


def _decoder(cls_name: str, cfg_name: str, **extra: Any) -> Any:
    _stub_torchvision()
    import transformers

    cfg = getattr(transformers, cfg_name)(
        num_hidden_layers=2, hidden_size=64, num_attention_heads=4, num_key_value_heads=2,
        intermediate_size=128, vocab_size=1000, **extra)  # fmt: skip
    return _hf(getattr(transformers, cls_name)(cfg)), _ids(1000)


def llama() -> Any:
    return _decoder("LlamaForCausalLM", "LlamaConfig")


def llama_small() -> Any:
    """A 4-layer Llama (hidden 256, 8 heads, 4 KV heads, vocab 32000) at sequence 64."""
    _stub_torchvision()
    import transformers

    cfg = transformers.LlamaConfig(num_hidden_layers=4, hidden_size=256, num_attention_heads=8,
                                   num_key_value_heads=4, intermediate_size=688,
                                   vocab_size=32000)  # fmt: skip
    return _hf(transformers.LlamaForCausalLM(cfg)), _ids(32000, 64)


def mistral() -> Any:
    return _decoder("MistralForCausalLM", "MistralConfig")


def qwen2() -> Any:
    return _decoder("Qwen2ForCausalLM", "Qwen2Config")


def t5_encoder() -> Any:
    _stub_torchvision()
    from transformers import T5Config, T5EncoderModel

    cfg = T5Config(num_layers=2, d_model=64, d_kv=16, num_heads=4, d_ff=128, vocab_size=1000)
    return _hf(T5EncoderModel(cfg)), _ids(1000)


def vit() -> Any:
    import torch

    _stub_torchvision()
    from transformers import ViTConfig, ViTModel

    cfg = ViTConfig(num_hidden_layers=2, hidden_size=64, num_attention_heads=2,
                    intermediate_size=128, image_size=32, patch_size=8)  # fmt: skip
    return _hf(ViTModel(cfg, add_pooling_layer=False)), (torch.randn(1, 3, 32, 32),)


def _stub_torchvision() -> None:
    """Let torchvision (which transformers and diffusers import when present) load without
    its compiled ops: their meta kernels are stubbed; no model here uses them."""
    if "torchvision" not in sys.modules:
        sys.modules["torchvision._meta_registrations"] = types.ModuleType(
            "torchvision._meta_registrations"
        )


def _torchvision() -> Any:
    """``torchvision.models`` without its compiled ops."""
    _stub_torchvision()
    import torchvision.models

    return torchvision.models


def _vision(name: str) -> Any:
    import torch

    torch.manual_seed(0)
    model = getattr(_torchvision(), name)(weights=None).eval()
    return model, (torch.randn(1, 3, 224, 224),)


def resnet18() -> Any:
    return _vision("resnet18")


def mobilenet_v3_small() -> Any:
    return _vision("mobilenet_v3_small")


def efficientnet_b0() -> Any:
    return _vision("efficientnet_b0")


def unet2d_condition() -> Any:
    import torch

    _stub_torchvision()
    from diffusers import UNet2DConditionModel

    torch.manual_seed(0)
    inner = UNet2DConditionModel(
        sample_size=16, in_channels=4, out_channels=4, block_out_channels=(32, 64),
        down_block_types=("CrossAttnDownBlock2D", "DownBlock2D"),
        up_block_types=("UpBlock2D", "CrossAttnUpBlock2D"), layers_per_block=1,
        cross_attention_dim=32, attention_head_dim=8, norm_num_groups=8,
    ).eval()  # fmt: skip

    class Sample(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.inner = inner

        def forward(self, x: Any, t: Any, ctx: Any) -> Any:
            return self.inner(x, t, ctx).sample

    return Sample(), (torch.randn(1, 4, 16, 16), torch.tensor([10]), torch.randn(1, 8, 32))


MODELS = (
    "gpt2", "bert", "llama", "mistral", "qwen2", "t5_encoder", "vit", "resnet18",
    "mobilenet_v3_small", "efficientnet_b0", "unet2d_condition",
)  # fmt: skip


if __name__ == "__main__":  # pragma: no cover - regenerates external.json
    from pathlib import Path

    from hetsched.cli import main

    here = Path(__file__).parent
    specs = [f"external_models:{m}" for m in MODELS]
    sys.exit(main(["ops", *specs, "--json", "-o", str(here / "external.json")]))
