"""FLOP counts for aten ops, from torch's own formulas, and the shape helpers behind them.

FLOPs come from :data:`torch.utils.flop_counter.flop_registry` evaluated on shapes (never by
running the op). ``linear``, ``matmul``, ``conv*d``/``conv_transpose*d`` and
``scaled_dot_product_attention`` (kept whole by ``torch.export``) are counted with torch's
``mm``/``bmm``, ``convolution`` and SDPA formulas on the same shapes; an in-place variant
(``addmm_``) with its out-of-place op's formula. Ops without a formula get a per-element
estimate (:func:`~hetsched.graph.optable.op_kind` says which applies):

============== ====================================================================
source         FLOPs without a torch formula
============== ====================================================================
pointwise      1 per output element (elementwise ops)
table          norm: 5 per output element (mean, variance, normalize, scale, shift);
               inference batch norm 2 (scale, shift); RMS norm 4.
               softmax / log_softmax: 5 per element (max, subtract, exp, sum, divide).
               reduction: 1 per input element (var/std 3, logsumexp 4, vector norm 2).
               pool: output elements x kernel area (adaptive pools: 1 per input element).
               FFT: 5 n log2 n per transformed signal of n points.
none           0 (views, data movement, index, embedding, factories)
============== ====================================================================

Symbolic sizes (dynamic shapes) take the value a :class:`SymbolSizes` gives them (the
importer's choice: the ``Dim``'s upper bound, else the example size); without one, the
example's size hint. torch is imported lazily (inside functions).

Examples
--------
>>> classify_op("addmm"), classify_op("layer_norm"), classify_op("softmax")
('matmul', 'norm', 'softmax')
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from hetsched.graph.optable import ADAPTED, op_kind, words

__all__ = [
    "SymbolSizes",
    "as_int",
    "classify_op",
    "dtype_name",
    "node_flops",
    "op_name",
    "shape_of",
    "tensor_bytes",
    "tensors_in",
]


def classify_op(packet: str, *, pointwise: bool = False) -> str:
    """Category of an aten op from its packet name (``"mm"``, ``"layer_norm"``, ...).

    ``pointwise`` (torch's ``Tag.pointwise`` of an overload) makes an op the table and tags
    do not place elementwise. See :func:`hetsched.graph.optable.op_kind` for the rules.

    Examples
    --------
    >>> classify_op("addmm"), classify_op("rms_norm"), classify_op("gelu", pointwise=True)
    ('matmul', 'norm', 'elementwise')
    >>> classify_op("max"), classify_op("arange"), classify_op("hardswish_")
    ('reduction', 'creation', 'elementwise')
    >>> classify_op("some_unknown_op"), classify_op("some_unknown_op", pointwise=True)
    ('other', 'elementwise')
    """
    cat = op_kind(f"aten.{packet}").category
    return "elementwise" if pointwise and cat == "other" else cat


# ----------------------------------------------------------------------------- sizes


class SymbolSizes:
    """The size every symbolic dimension of one import is costed at.

    ``values`` maps a symbol's name (``"s77"``, ``"u0"``) to a size; a symbol not in it falls
    back to its example size hint (and to 1 for a data-dependent one with no hint). Owned by
    one import: the importer adds the data-dependent sizes it assumes as it meets them.

    >>> SymbolSizes({"s0": 64}).values
    {'s0': 64}
    """

    def __init__(self, values: Mapping[str, int] | None = None) -> None:
        self.values: dict[str, int] = dict(values or {})
        self._memo: dict[Any, int] = {}

    def size(self, x: Any) -> int:
        """The value of a SymInt (or int) under these sizes."""
        if isinstance(x, int):
            return x
        node = getattr(x, "node", None)
        expr = getattr(node, "expr", None)
        if expr is None:
            return _hint(x)
        hit = self._memo.get(expr)
        if hit is None:
            free: set[Any] = getattr(expr, "free_symbols", set())
            if free and all(str(f) in self.values for f in free):
                hit = int(expr.xreplace({f: self.values[str(f)] for f in free}))
            else:
                hit = _hint(x)
            self._memo[expr] = hit
        return hit

    def bind(self, symbol: str, size: int) -> None:
        """Cost ``symbol`` at ``size`` from now on."""
        self.values[symbol] = int(size)
        self._memo.clear()


def _hint(x: Any) -> int:
    node = getattr(x, "node", None)  # SymInt: use the size hint, never guard
    hint = getattr(node, "hint", None)
    if hint is not None:
        return int(hint)
    try:
        return int(x)
    except Exception:  # unbacked symbol and no size chosen: no honest number exists
        return 1


# ----------------------------------------------------------------------------- small helpers


def as_int(x: Any, sizes: SymbolSizes | None = None) -> int:
    """An int for a size: itself, or a SymInt under ``sizes`` (else its example hint)."""
    if isinstance(x, int):
        return x
    return sizes.size(x) if sizes is not None else _hint(x)


def shape_of(t: Any, sizes: SymbolSizes | None = None) -> tuple[int, ...]:
    """Concrete shape of a tensor (symbolic sizes under ``sizes``, else their hints)."""
    shape = tuple(t.shape)
    if all(type(d) is int for d in shape):
        return shape
    return tuple(as_int(d, sizes) for d in shape)


def tensor_bytes(t: Any, sizes: SymbolSizes | None = None) -> int:
    return math.prod(shape_of(t, sizes)) * t.dtype.itemsize


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


class _Shapes:
    """Shape arithmetic of one FLOP count (symbolic sizes resolved by ``sizes``)."""

    def __init__(self, sizes: SymbolSizes | None) -> None:
        self.sizes = sizes

    def of(self, t: Any) -> tuple[int, ...]:
        return shape_of(t, self.sizes)

    def tree(self, x: Any) -> Any:
        if hasattr(x, "shape") and hasattr(x, "dtype"):
            return self.of(x)
        if isinstance(x, list | tuple):
            return type(x)(self.tree(v) for v in x)
        return x

    def numel(self, t: Any) -> int:
        return math.prod(self.of(t))


def _registered(
    packet: Any, args: Sequence[Any], kwargs: dict[str, Any], out: Any, sh: _Shapes
) -> float:
    f = _registry()[packet]
    inner = getattr(f, "__wrapped__", None)
    if inner is None:  # a "raw" formula: it wants the tensors themselves
        return float(as_int(f(*args, out_val=out, **kwargs), sh.sizes))
    shaped = {k: sh.tree(v) for k, v in kwargs.items()}
    flops = inner(*(sh.tree(a) for a in args), out_shape=sh.tree(out), **shaped)
    return float(as_int(flops, sh.sizes))


def _broadcast(a: tuple[int, ...], b: tuple[int, ...]) -> tuple[int, ...]:
    n = max(len(a), len(b))
    a, b = (1,) * (n - len(a)) + a, (1,) * (n - len(b)) + b
    return tuple(x if y == 1 else y for x, y in zip(a, b, strict=True))


def _mm_like(args: Sequence[Any], _out: Any, packet: str, sh: _Shapes) -> float:
    import torch

    aten = torch.ops.aten
    if packet == "linear":  # x[..., K] @ W[N, K]^T  ==  mm((M, K), (K, N)); bias not counted
        x, w = sh.of(args[0]), sh.of(args[1])
        m = math.prod(x[:-1]) if len(x) > 1 else 1
        return float(_formula(aten.mm)((m, x[-1]), (x[-1], w[0] if len(w) > 1 else 1)))
    if packet == "addmv":  # bias + M @ v
        args = args[1:]
    if packet == "outer":  # a (n,) x b (m,) -> (n, m): one multiply per element
        return float(sh.numel(args[0]) * sh.numel(args[1]))
    a, b = sh.of(args[0]), sh.of(args[1])  # matmul / mv / dot: broadcast batch, then bmm
    a2 = (1, *a) if len(a) == 1 else a
    b2 = (*b, 1) if len(b) == 1 else b
    batch = math.prod(_broadcast(a2[:-2], b2[:-2]))
    return float(_formula(aten.bmm)((batch, a2[-2], a2[-1]), (batch, b2[-2], b2[-1])))


def _conv_like(args: Sequence[Any], out: Any, packet: str, sh: _Shapes) -> float:
    import torch

    transposed = "transpose" in packet
    conv = _formula(torch.ops.aten.convolution)
    x, w, o = sh.of(args[0]), sh.of(args[1]), sh.of(tensors_in(out)[0])
    return float(conv(x, w, None, None, None, None, transposed, out_shape=o))


def _sdpa_like(args: Sequence[Any], _out: Any, _packet: str, sh: _Shapes) -> float:
    import torch

    q, k, v = (sh.of(a) for a in args[:3])
    q, k, v = ((*([1] * (4 - len(s))), *s) if len(s) < 4 else s for s in (q, k, v))
    q, k, v = ((math.prod(s[:-3]), *s[-3:]) for s in (q, k, v))
    sdpa = _formula(torch.ops.aten._scaled_dot_product_efficient_attention)
    return float(sdpa(q, k, v, out_shape=None))


_Adapter = Callable[[Sequence[Any], Any, str, _Shapes], float]
_ADAPTERS: dict[str, _Adapter] = {
    **dict.fromkeys(("linear", "matmul", "mv", "dot", "vdot", "inner", "outer", "addmv"),
                    _mm_like),
    **dict.fromkeys(("conv1d", "conv2d", "conv3d", "conv_transpose1d", "conv_transpose2d",
                     "conv_transpose3d"), _conv_like),
    **dict.fromkeys(("scaled_dot_product_attention", "_scaled_dot_product_flash_attention_for_cpu",
                     "_scaled_dot_product_attention_math",
                     "_scaled_dot_product_fused_attention_overrideable"), _sdpa_like),
}  # fmt: skip
assert set(_ADAPTERS) == ADAPTED  # the table and the adapters agree

# Per-element FLOPs of the "table" source (see the module docs): (FLOPs, counted on).
_PER_ELEMENT: dict[str, tuple[float, str]] = {
    "norm": (5.0, "out"), "softmax": (5.0, "out"), "reduction": (1.0, "in"),
    "pool": (1.0, "in"), "elementwise": (1.0, "out"),
}  # fmt: skip
_PER_OP: dict[str, float] = {
    "_native_batch_norm_legit_no_training": 2.0, "_batch_norm_no_update": 2.0,
    "rms_norm": 4.0, "_fused_rms_norm": 4.0, "var": 3.0, "std": 3.0, "var_mean": 3.0,
    "std_mean": 3.0, "logsumexp": 4.0, "linalg_vector_norm": 2.0, "norm": 2.0,
}  # fmt: skip
_POOLS_WITH_KERNEL = words(
    "avg_pool1d avg_pool2d avg_pool3d max_pool1d max_pool2d max_pool3d max_pool1d_with_indices "
    "max_pool2d_with_indices max_pool3d_with_indices lp_pool1d lp_pool2d"
)


def _estimate(name: str, category: str, args: Sequence[Any], out: Any, sh: _Shapes) -> float:
    outs = tensors_in(out)
    ins = [a for a in args if hasattr(a, "shape") and hasattr(a, "dtype")]
    if name.startswith("_fft") and ins:  # 5 n log2 n per signal of n points (last dim)
        n = max(sh.of(ins[0])[-1] if sh.of(ins[0]) else 1, 2)
        return 5.0 * sh.numel(ins[0]) * math.log2(n)
    if name in _POOLS_WITH_KERNEL and outs and len(args) > 1:
        kernel = args[1] if isinstance(args[1], list | tuple) else [args[1]]
        return float(sh.numel(outs[0]) * math.prod(as_int(k, sh.sizes) for k in kernel))
    if name == "batch_norm" and len(args) > 5 and args[5] is False:
        per, on = 2.0, "out"  # inference: a per-channel scale and shift
    elif category not in _PER_ELEMENT:
        return 0.0
    else:
        per, on = _PER_ELEMENT[category]
        per = _PER_OP.get(name, per)
    base = (outs if on == "out" else ins)[:1]
    return per * sh.numel(base[0]) if base else 0.0


def node_flops(
    target: Any,
    args: Sequence[Any],
    kwargs: dict[str, Any],
    out: Any,
    category: str | None = None,
    *,
    sizes: SymbolSizes | None = None,
) -> float:
    """FLOPs of one op applied to ``args``/``kwargs`` (tensors, FakeTensors or shapes).

    Uses torch's registered formula for the op (or for the out-of-place op of an in-place
    variant), an adapter onto torch's ``mm``/``bmm``/``convolution``/SDPA formulas for ops
    ``torch.export`` keeps whole, or the per-element estimate of the module docstring for the
    op's own category (:func:`~hetsched.graph.optable.op_kind`; ``category`` only for an op
    hetsched does not know). Never runs the op. Symbolic sizes take their value in ``sizes``.

    Examples
    --------
    >>> import torch
    >>> a, b = torch.empty(3, 5), torch.empty(5, 7)
    >>> node_flops(torch.ops.aten.mm.default, (a, b), {}, torch.empty(3, 7), "matmul")
    210.0
    >>> node_flops(torch.ops.aten.relu.default, (a,), {}, a, "elementwise")
    15.0
    >>> node_flops(torch.ops.aten.hardswish_.default, (a,), {}, a)
    15.0
    """
    import torch

    kind = op_kind(target)
    cat = category if kind.category == "other" and category is not None else kind.category
    sh = _Shapes(sizes)
    reg = _registry()
    packet = getattr(target, "overloadpacket", None)
    try:
        if packet is not None and packet in reg:
            return _registered(packet, args, kwargs, out, sh)
        formula = kind.flops == "flop_counter"
        canon = getattr(torch.ops.aten, kind.canonical, None) if formula else None
        if canon is not None and canon in reg:
            return _registered(canon, args, kwargs, out, sh)
        if kind.canonical in _ADAPTERS and kind.flops == "flop_counter":
            return _ADAPTERS[kind.canonical](args, out, kind.canonical, sh)
    except Exception:  # a formula that rejects these shapes: fall back to the estimate
        pass
    return _estimate(kind.canonical, cat, args, out, sh)
