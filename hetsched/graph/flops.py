"""Operator categories and FLOP counts for aten ops, from torch's own formulas.

FLOPs come from :data:`torch.utils.flop_counter.flop_registry` evaluated on shapes (never by
running the op). ``linear``, ``matmul``, ``conv*d``/``conv_transpose*d`` and
``scaled_dot_product_attention`` (kept whole by ``torch.export``) are counted with torch's
``mm``/``bmm``, ``convolution`` and SDPA formulas on the same shapes. Ops without a formula get
a per-element estimate:

============== ====================================================================
category       FLOPs without a torch formula
============== ====================================================================
elementwise    1 per output element
norm           5 per output element (mean, variance, normalize, scale, shift)
reduction      1 per input element; softmax / log_softmax: 5 per element
other kinds    0 (views, data movement, factories)
============== ====================================================================

torch is imported lazily (inside functions).

Examples
--------
>>> classify_op("addmm"), classify_op("layer_norm")
('matmul', 'norm')
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

__all__ = [
    "as_int",
    "classify_op",
    "dtype_name",
    "node_flops",
    "op_name",
    "shape_of",
    "tensor_bytes",
    "tensors_in",
]


_CATEGORY_TABLE: dict[str, str] = {}
for _cat, _names in {
    "matmul": "mm addmm bmm baddbmm addbmm matmul linear mv addmv dot vdot einsum bilinear "
    "_scaled_mm _int_mm tensordot outer addr inner",
    "conv": "convolution _convolution conv1d conv2d conv3d conv_transpose1d conv_transpose2d "
    "conv_transpose3d cudnn_convolution cudnn_convolution_transpose convolution_overrideable "
    "_slow_conv2d_forward mkldnn_convolution conv_tbc slow_conv3d slow_conv_transpose2d",
    "attention": "scaled_dot_product_attention _scaled_dot_product_flash_attention "
    "_scaled_dot_product_efficient_attention _scaled_dot_product_cudnn_attention "
    "_scaled_dot_product_flash_attention_for_cpu _scaled_dot_product_attention_math "
    "_flash_attention_forward _efficient_attention_forward flex_attention",
    "norm": "layer_norm native_layer_norm batch_norm native_batch_norm _native_batch_norm_legit "
    "_native_batch_norm_legit_no_training _native_batch_norm_legit_functional "
    "_batch_norm_with_update _batch_norm_no_update group_norm native_group_norm instance_norm "
    "rms_norm _fused_rms_norm local_response_norm",
    "reduction": "sum mean amax amin max min argmax argmin prod var std var_mean std_mean norm "
    "linalg_vector_norm logsumexp cumsum cumprod softmax _softmax log_softmax _log_softmax "
    "_safe_softmax all any count_nonzero topk mode median nansum nanmean aminmax avg_pool1d "
    "avg_pool2d avg_pool3d adaptive_avg_pool1d adaptive_avg_pool2d adaptive_avg_pool3d max_pool1d "
    "max_pool2d max_pool3d max_pool2d_with_indices adaptive_max_pool2d _adaptive_avg_pool2d",
    "data_movement": "cat concat stack hstack vstack clone contiguous copy _to_copy to index "
    "index_select gather scatter scatter_add scatter_reduce index_put index_add index_copy "
    "slice_scatter select_scatter diagonal_scatter as_strided_scatter embedding embedding_bag "
    "repeat repeat_interleave tile flip roll constant_pad_nd pad reflection_pad1d "
    "reflection_pad2d reflection_pad3d replication_pad1d replication_pad2d replication_pad3d "
    "upsample_nearest1d upsample_nearest2d upsample_nearest3d _upsample_nearest_exact2d "
    "pixel_shuffle pixel_unshuffle masked_select nonzero take reshape flatten unflatten "
    "view_copy expand_copy permute_copy transpose_copy t_copy unfold_copy narrow_copy "
    "im2col col2im channel_shuffle",
}.items():
    for _n in _names.split():
        _CATEGORY_TABLE[_n] = _cat
_SOFTMAX = frozenset({"softmax", "_softmax", "log_softmax", "_log_softmax", "_safe_softmax"})
_PER_ELEMENT = {"elementwise": 1.0, "norm": 5.0}


def classify_op(packet: str, *, pointwise: bool = False) -> str:
    """Category of an aten op from its packet name (``"mm"``, ``"layer_norm"``, ...).

    ``pointwise`` is torch's ``Tag.pointwise`` of the overload: it turns ``max.other`` into
    elementwise and is the fallback for ops not in the table; anything else is ``"other"``.

    Examples
    --------
    >>> classify_op("addmm"), classify_op("rms_norm"), classify_op("gelu", pointwise=True)
    ('matmul', 'norm', 'elementwise')
    >>> classify_op("max", pointwise=True), classify_op("max"), classify_op("arange")
    ('elementwise', 'reduction', 'other')
    """
    cat = _CATEGORY_TABLE.get(packet)
    if cat is not None and cat != "reduction":
        return cat
    if pointwise:
        return "elementwise"
    return cat or "other"


# ----------------------------------------------------------------------------- small helpers


def as_int(x: Any) -> int:
    if isinstance(x, int):
        return x
    node = getattr(x, "node", None)  # SymInt: use the size hint, never guard
    hint = getattr(node, "hint", None)
    if hint is not None:
        return int(hint)
    try:
        return int(x)
    except Exception:  # unbacked symbol: no honest number exists
        return 1


def shape_of(t: Any) -> tuple[int, ...]:
    """Concrete shape of a tensor (symbolic sizes replaced by their hints)."""
    shape = tuple(t.shape)
    if all(type(d) is int for d in shape):
        return shape
    return tuple(as_int(d) for d in shape)


def tensor_bytes(t: Any) -> int:
    return math.prod(shape_of(t)) * t.dtype.itemsize


def tensors_in(val: Any) -> list[Any]:
    import torch

    if isinstance(val, torch.Tensor):
        return [val]
    if isinstance(val, list | tuple):
        return [v for v in val if isinstance(v, torch.Tensor)]
    return []


def dtype_name(dtype: Any) -> str:
    return str(dtype).removeprefix("torch.")


def op_name(target: Any) -> tuple[str, str]:
    """``("aten.mm.default", "mm")`` for an OpOverload; a readable name otherwise."""
    schema = getattr(target, "_schema", None)
    if schema is not None:
        ns, _, packet = schema.name.partition("::")
        overload = schema.overload_name or "default"
        return f"{ns}.{packet}.{overload}", packet
    name = getattr(target, "__name__", None) or str(target)
    return name, name


# ----------------------------------------------------------------------------- FLOPs


def _registry() -> dict[Any, Callable[..., Any]]:
    from torch.utils.flop_counter import flop_registry

    return flop_registry  # type: ignore[no-any-return]


def _formula(packet: Any) -> Callable[..., Any]:
    """torch's shape formula for ``packet``, without its pytree wrapper (which is slow)."""
    f = _registry()[packet]
    return getattr(f, "__wrapped__", f)


def _shapes(x: Any) -> Any:
    if hasattr(x, "shape") and hasattr(x, "dtype"):
        return shape_of(x)
    if isinstance(x, list | tuple):
        return type(x)(_shapes(v) for v in x)
    return x


def _registered(packet: Any, args: Sequence[Any], kwargs: dict[str, Any], out: Any) -> float:
    f = _registry()[packet]
    inner = getattr(f, "__wrapped__", None)
    if inner is None:  # a "raw" formula: it wants the tensors themselves
        return float(as_int(f(*args, out_val=out, **kwargs)))
    shaped = {k: _shapes(v) for k, v in kwargs.items()}
    return float(as_int(inner(*(_shapes(a) for a in args), out_shape=_shapes(out), **shaped)))


def _broadcast(a: tuple[int, ...], b: tuple[int, ...]) -> tuple[int, ...]:
    n = max(len(a), len(b))
    a, b = (1,) * (n - len(a)) + a, (1,) * (n - len(b)) + b
    return tuple(x if y == 1 else y for x, y in zip(a, b, strict=True))


def _mm_like(args: Sequence[Any], _out: Any, packet: str) -> float:
    import torch

    aten = torch.ops.aten
    if packet == "linear":  # x[..., K] @ W[N, K]^T  ==  mm((M, K), (K, N)); bias not counted
        x, w = shape_of(args[0]), shape_of(args[1])
        m = math.prod(x[:-1]) if len(x) > 1 else 1
        return float(_formula(aten.mm)((m, x[-1]), (x[-1], w[0] if len(w) > 1 else 1)))
    a, b = shape_of(args[0]), shape_of(args[1])  # matmul / mv / dot: broadcast batch, then bmm
    a2 = (1, *a) if len(a) == 1 else a
    b2 = (*b, 1) if len(b) == 1 else b
    batch = math.prod(_broadcast(a2[:-2], b2[:-2]))
    return float(_formula(aten.bmm)((batch, a2[-2], a2[-1]), (batch, b2[-2], b2[-1])))


def _conv_like(args: Sequence[Any], out: Any, packet: str) -> float:
    import torch

    transposed = "transpose" in packet
    conv = _formula(torch.ops.aten.convolution)
    return float(
        conv(
            shape_of(args[0]),
            shape_of(args[1]),
            None,
            None,
            None,
            None,
            transposed,
            out_shape=shape_of(out),
        )
    )


def _sdpa_like(args: Sequence[Any], _out: Any, _packet: str) -> float:
    import torch

    q, k, v = (shape_of(a) for a in args[:3])
    q, k, v = ((*([1] * (4 - len(s))), *s) if len(s) < 4 else s for s in (q, k, v))
    q, k, v = ((math.prod(s[:-3]), *s[-3:]) for s in (q, k, v))
    sdpa = _formula(torch.ops.aten._scaled_dot_product_efficient_attention)
    return float(sdpa(q, k, v, out_shape=None))


_ADAPTERS: dict[str, Callable[[Sequence[Any], Any, str], float]] = {
    **dict.fromkeys(("linear", "matmul", "mv", "dot", "vdot"), _mm_like),
    **dict.fromkeys(
        ("conv1d", "conv2d", "conv3d", "conv_transpose1d", "conv_transpose2d", "conv_transpose3d"),
        _conv_like,
    ),
    "scaled_dot_product_attention": _sdpa_like,
}


def node_flops(
    target: Any, args: Sequence[Any], kwargs: dict[str, Any], out: Any, category: str
) -> float:
    """FLOPs of one op applied to ``args``/``kwargs`` (tensors, FakeTensors or shapes).

    Uses torch's registered formula for the op's overload packet, an adapter onto torch's
    ``mm``/``bmm``/``convolution``/SDPA formulas for ops ``torch.export`` keeps whole, or the
    per-element estimate of the module docstring. Never runs the op.

    Examples
    --------
    >>> import torch
    >>> a, b = torch.empty(3, 5), torch.empty(5, 7)
    >>> node_flops(torch.ops.aten.mm.default, (a, b), {}, torch.empty(3, 7), "matmul")
    210.0
    >>> node_flops(torch.ops.aten.relu.default, (a,), {}, a, "elementwise")
    15.0
    """
    packet = getattr(target, "overloadpacket", None)
    reg = _registry()
    name = op_name(target)[1]
    try:
        if packet is not None and packet in reg:
            return _registered(packet, args, kwargs, out)
        if name in _ADAPTERS:
            return _ADAPTERS[name](args, out, name)
    except Exception:  # a formula that rejects these shapes: fall back to the estimate
        pass
    outs = tensors_in(out)
    if category in _PER_ELEMENT and outs:
        return _PER_ELEMENT[category] * math.prod(shape_of(outs[0]))
    if category == "reduction":
        ins = [a for a in args if hasattr(a, "shape") and hasattr(a, "dtype")]
        n = math.prod(shape_of(ins[0])) if ins else 0
        return float(5 * n if name in _SOFTMAX else n)
    return 0.0
