"""What a reduced precision does to one argument of one fx node: the single rule.

Both ways of running a program at a plan's precisions use this module, so they compute the
same numbers: :class:`~hetsched.precision.interpreter.PrecisionInterpreter` applies a
:class:`Convert` to a value while it interprets, and
:func:`~hetsched.precision.rewrite.lower_program` writes the same conversion into the fx
graph (a cast, a fake-quantized weight buffer, a fake-quantize call).

- ``float16`` / ``bfloat16``: every floating tensor argument is cast to that dtype.
- ``int8``: weights (input-independent floating tensors of two or more dimensions) are
  fake-quantized per output channel, symmetric (:func:`fake_quant_weight`); activations
  entering the op from outside it per tensor, affine quint8, with calibrated scale and zero
  point (:func:`activation_qparams`, :func:`fake_quant_activation`). One-dimensional weights
  stay float; scaled-dot-product attention quantizes only ``q``, ``k`` and ``v``.
- ``w8a16`` (weight-only int8): weights fake-quantized per output channel as for int8 and
  then cast to float16, every other floating argument cast to float16.

Examples
--------
>>> import torch
>>> w = torch.tensor([[1.0, -0.5], [0.25, 2.0]])
>>> fake_quant_weight(w, 0)[0, 0].item() == 1.0
True
>>> scale, zero = activation_qparams([torch.tensor([0.0, 2.55])])
>>> round(scale, 6), zero
(0.01, 0)
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import fx

from hetsched.costmodel.precision import WEIGHT_ONLY

__all__ = [
    "LOW_DTYPES",
    "Convert",
    "NodeChange",
    "activation_qparams",
    "convert_rule",
    "fake_quant_activation",
    "fake_quant_weight",
    "weight_axis",
]

LOW_DTYPES = {"float16": torch.float16, "bfloat16": torch.bfloat16}
_SDPA_QUANTIZED_ARGS = 3  # q, k, v
_ACT_QMIN, _ACT_QMAX = 0, 255  # quint8, per tensor, affine


@dataclass(frozen=True)
class NodeChange:
    """How one compute fx node runs: ``precision``, the fx names of the arguments made
    inside its op (int8 leaves them as they are) and the calibrated ``(scale, zero_point)``
    of each activation argument int8 quantizes."""

    precision: str
    internal: frozenset[str] = frozenset()
    act_qparams: Mapping[str, tuple[float, int]] = field(default_factory=dict)


@dataclass(frozen=True)
class Convert:
    """One conversion of a floating tensor argument: ``kind`` is ``"cast"`` (to
    ``dtype``), ``"weight"`` (per-channel along ``axis``) or ``"activation"`` (per tensor
    with ``scale`` and ``zero_point``)."""

    kind: str
    dtype: torch.dtype | None = None
    axis: int = 0
    scale: float = 1.0
    zero_point: int = 0

    def __call__(self, v: torch.Tensor) -> torch.Tensor:
        """The converted value of ``v`` (a quantized weight cast to ``dtype`` if given)."""
        if self.kind == "cast":
            return v.to(self.dtype)
        if self.kind == "weight":
            q = fake_quant_weight(v, self.axis)
            return q if self.dtype is None else q.to(self.dtype)
        return fake_quant_activation(v, self.scale, self.zero_point)


def weight_axis(node: fx.Node, index: int, ndim: int) -> int:
    """The output-channel axis of weight argument ``index`` of ``node``."""
    name = str(getattr(node.target, "__name__", node.target))
    if "conv_transpose" in name:
        return 1 if ndim > 1 else 0
    if name.startswith(("mm", "bmm", "matmul", "addmm", "baddbmm")) and index >= 1:
        return ndim - 1  # the right operand: (in, out)
    return 0


def convert_rule(
    node: fx.Node, index: int, arg: str, change: NodeChange, *, constant: bool, ndim: int
) -> Convert | None:
    """How changed ``node`` converts its floating tensor argument ``arg`` (fx name) at
    position ``index`` (``-1``: a keyword), or None to leave it as it is.

    ``constant``: ``arg`` does not depend on the user inputs (a weight or a view of one);
    ``ndim``: its number of dimensions.
    """
    low = LOW_DTYPES.get(change.precision)
    if low is not None:
        return Convert("cast", dtype=low)
    if change.precision == WEIGHT_ONLY:
        if constant and ndim >= 2:
            return Convert("weight", dtype=torch.float16, axis=weight_axis(node, index, ndim))
        return Convert("cast", dtype=torch.float16)
    if constant:
        return Convert("weight", axis=weight_axis(node, index, ndim)) if ndim >= 2 else None
    is_sdpa = "scaled_dot_product" in str(node.target)
    if arg in change.internal or (is_sdpa and not 0 <= index < _SDPA_QUANTIZED_ARGS):
        return None
    qp = change.act_qparams.get(arg)
    if qp is None:  # not calibrated (non-finite values): left as it is
        return None
    return Convert("activation", scale=qp[0], zero_point=qp[1])


def fake_quant_weight(w: torch.Tensor, axis: int) -> torch.Tensor:
    """Per-channel symmetric int8 fake quantization along ``axis`` (range -127..127)."""
    from torch.ao.quantization import PerChannelMinMaxObserver

    obs = PerChannelMinMaxObserver(
        ch_axis=axis, dtype=torch.qint8, qscheme=torch.per_channel_symmetric,
        quant_min=-127, quant_max=127,
    )  # fmt: skip
    obs(w.detach().float())
    scale, zero = obs.calculate_qparams()
    out = torch.fake_quantize_per_channel_affine(
        w.float(), scale.float(), zero.to(torch.int32), axis, -127, 127
    )
    return out.to(w.dtype)


def activation_qparams(values: Iterable[Any]) -> tuple[float, int] | None:
    """Per-tensor quint8 ``(scale, zero_point)`` of an activation over its calibration
    ``values`` (:class:`~torch.ao.quantization.MinMaxObserver`); None when a value is not a
    finite tensor."""
    from torch.ao.quantization import MinMaxObserver

    values = list(values)
    if not all(isinstance(v, torch.Tensor) and bool(torch.isfinite(v).all()) for v in values):
        return None
    obs = MinMaxObserver(dtype=torch.quint8, qscheme=torch.per_tensor_affine)
    for v in values:
        obs(v.detach().float())
    scale, zero = obs.calculate_qparams()
    return float(scale), int(zero)


def fake_quant_activation(v: torch.Tensor, scale: float, zero_point: int) -> torch.Tensor:
    """Per-tensor quint8 fake quantization of ``v``."""
    return torch.fake_quantize_per_tensor_affine(v, scale, zero_point, _ACT_QMIN, _ACT_QMAX)
