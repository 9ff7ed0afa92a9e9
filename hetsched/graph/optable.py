"""What an aten op *is*: its category, where its FLOP count comes from, what it reads.

torch's own information first, a small table only for what torch cannot tell:

1. **Variants map to their op.** An in-place overload (``Tag.inplace``, ``relu_``,
   ``hardswish_``, ``add_``) and a backward (``avg_pool2d_backward``) are classified as the
   out-of-place forward op; an ``.out`` overload is its packet; aliases (``__and__``,
   ``divide``, ``arccos``) are the op they name.
2. **The table** (:data:`OP_TABLE`) for what no tag says: norms, softmax, pooling,
   embedding and gather/scatter/index, data movement (``cat``, ``to``, pads), factories,
   the matmul/conv/attention ops ``torch.export`` keeps whole (``linear``, ``conv2d``,
   ``scaled_dot_product_attention``), untagged reductions (``cumsum``, ``topk``) and the few
   pointwise ops torch leaves untagged (``hardswish``, ``where.ScalarOther``).
3. **torch.utils.flop_counter**: an op with a registered formula is a matmul, conv or
   attention by the formula's name (``mm_flop``, ``conv_flop``, ``sdpa_flop``).
4. **Tags**: ``Tag.reduction`` is a reduction, ``Tag.pointwise`` (on the overload, or on a
   sibling overload of a packet that has no reduction) elementwise, ``Tag.view_copy`` data
   movement.
5. **Schema**: an op with no tensor argument that returns a tensor creates one (``creation``).

Anything else is ``other``: an op hetsched knows nothing about (``hetsched ops`` lists them).

FLOP sources (:attr:`OpKind.flops`): ``flop_counter`` (torch's formula), ``pointwise``
(one per output element), ``table`` (a per-element count of :mod:`hetsched.graph.flops`)
or ``none`` (0 FLOPs: data movement, index, creation). Reads (:attr:`OpKind.reads`):
``all`` (every input in full), ``gathered`` (the first input only where gathered: the
output's worth of rows, plus the indices in full) or ``shape`` (inputs give only a shape).

Examples
--------
>>> import torch
>>> aten = torch.ops.aten
>>> op_kind(aten.hardswish_.default)
OpKind(category='elementwise', flops='pointwise', reads='all', canonical='hardswish')
>>> op_kind(aten.addmm.default).category, op_kind(aten.addmm.default).flops
('matmul', 'flop_counter')
>>> op_kind(aten.embedding.default).reads, op_kind(aten.zeros_like.default).category
('gathered', 'creation')
>>> op_kind("aten.where.ScalarOther").category, op_kind("aten.no_such_op.default").category
('elementwise', 'other')

:func:`op_uses` tabulates the ops of some graphs (``hetsched ops`` prints it).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # pragma: no cover
    from hetsched.graph.opgraph import OpGraph

__all__ = [
    "ADAPTED",
    "FLOP_SOURCES",
    "OP_TABLE",
    "OpKind",
    "OpUse",
    "op_kind",
    "op_uses",
    "resolve_op",
    "words",
]

FLOP_SOURCES: tuple[str, ...] = ("flop_counter", "pointwise", "table", "none")


def words(text: str) -> frozenset[str]:
    """The set of space-separated names in ``text``."""
    return frozenset(text.split())


# Ops torch.export keeps whole that torch's ``mm``/``bmm``/``convolution``/SDPA formulas count
# once their shapes are adapted (:mod:`hetsched.graph.flops`).
ADAPTED: frozenset[str] = words(
    "linear matmul mv dot vdot inner outer addmv conv1d conv2d conv3d conv_transpose1d "
    "conv_transpose2d conv_transpose3d scaled_dot_product_attention "
    "_scaled_dot_product_flash_attention_for_cpu _scaled_dot_product_attention_math "
    "_scaled_dot_product_fused_attention_overrideable"
)


def _table(spec: dict[str, str]) -> dict[str, str]:
    return {name: cat for cat, names in spec.items() for name in names.split()}


# Packet name -> category, for what torch's tags and flop formulas do not say.
OP_TABLE: dict[str, str] = _table(
    {
        "matmul": "linear matmul mv dot vdot einsum bilinear tensordot outer addr inner addmv "
        "addbmm _int_mm _addmm_activation _cdist_forward _pdist_forward cdist _euclidean_dist "
        "_weight_int8pack_mm _weight_int4pack_mm _fft_r2c _fft_c2r _fft_c2c",
        "conv": "conv1d conv2d conv3d conv_transpose1d conv_transpose2d conv_transpose3d "
        "_convolution_mode conv_tbc mkldnn_convolution slow_conv3d slow_conv_transpose2d "
        "slow_conv_transpose3d cudnn_convolution_transpose _slow_conv2d_forward",
        "attention": "scaled_dot_product_attention _scaled_dot_product_flash_attention_for_cpu "
        "_scaled_dot_product_attention_math _scaled_dot_product_fused_attention_overrideable "
        "_native_multi_head_attention",
        "norm": "layer_norm native_layer_norm batch_norm native_batch_norm "
        "_native_batch_norm_legit _native_batch_norm_legit_no_training "
        "_native_batch_norm_legit_functional _batch_norm_with_update "
        "_batch_norm_with_update_functional _batch_norm_no_update cudnn_batch_norm "
        "miopen_batch_norm group_norm native_group_norm instance_norm rms_norm "
        "_fused_rms_norm local_response_norm _weight_norm_interface",
        "softmax": "softmax _softmax log_softmax _log_softmax _safe_softmax",
        "reduction": "cumsum cumprod cummax cummin logcumsumexp topk sort argsort msort kthvalue "
        "median nanmedian mode count_nonzero histc bincount searchsorted bucketize trace mse_loss "
        "l1_loss huber_loss smooth_l1_loss nll_loss nll_loss2d cross_entropy_loss "
        "binary_cross_entropy binary_cross_entropy_with_logits soft_margin_loss kl_div "
        "margin_ranking_loss hinge_embedding_loss multi_margin_loss multilabel_margin_loss dist",
        "pool": "avg_pool1d avg_pool2d avg_pool3d max_pool1d max_pool2d max_pool3d "
        "max_pool1d_with_indices max_pool2d_with_indices max_pool3d_with_indices "
        "adaptive_avg_pool1d adaptive_avg_pool2d adaptive_avg_pool3d _adaptive_avg_pool2d "
        "_adaptive_avg_pool3d adaptive_max_pool1d adaptive_max_pool2d adaptive_max_pool3d "
        "fractional_max_pool2d max_unpool2d max_unpool3d lp_pool1d lp_pool2d",
        "embedding": "embedding embedding_bag _embedding_bag _embedding_bag_forward_only "
        "embedding_renorm embedding_dense",
        "index": "index _unsafe_index _unsafe_masked_index index_select gather take scatter "
        "scatter_add scatter_reduce index_put _unsafe_index_put index_add index_copy index_fill "
        "index_reduce masked_scatter masked_select nonzero nonzero_static nonzero_numpy argwhere "
        "_unique _unique2 unique_dim unique_consecutive grid_sampler_2d grid_sampler_3d "
        "affine_grid_generator one_hot put",
        "data_movement": "cat concat concatenate stack hstack vstack dstack _chunk_cat clone "
        "contiguous copy _to_copy to _to_dense type_as repeat repeat_interleave tile flip roll "
        "rot90 constant_pad_nd pad reflection_pad1d reflection_pad2d reflection_pad3d "
        "replication_pad1d replication_pad2d replication_pad3d upsample_nearest1d "
        "upsample_nearest2d upsample_nearest3d _upsample_nearest_exact1d "
        "_upsample_nearest_exact2d _upsample_nearest_exact3d upsample_linear1d "
        "upsample_bilinear2d upsample_bicubic2d upsample_trilinear3d _upsample_bilinear2d_aa "
        "_upsample_bicubic2d_aa pixel_shuffle pixel_unshuffle channel_shuffle "
        "native_channel_shuffle im2col col2im unfold slice_scatter select_scatter "
        "diagonal_scatter as_strided_scatter block_diag diag diag_embed _reshape_copy reshape "
        "flatten unflatten view view_as expand expand_as permute transpose t select slice narrow "
        "squeeze unsqueeze diagonal as_strided alias split split_with_sizes tensor_split chunk "
        "unsafe_chunk unsafe_split unbind movedim broadcast_to swapaxes",
        "creation": "arange full full_like zeros zeros_like ones ones_like empty empty_like "
        "empty_strided empty_permuted new_empty new_empty_strided new_full new_ones new_zeros "
        "fill zero scalar_tensor linspace logspace eye rand rand_like randn randn_like randint "
        "randint_like randperm normal uniform tril_indices triu_indices hann_window",
        "elementwise": "hardswish where masked_fill dropout native_dropout alpha_dropout "
        "feature_dropout bernoulli prelu _prelu_kernel glu _masked_scale _add_relu "
        "rrelu_with_noise cauchy exponential geometric log_normal tril triu diff",
    }
)
# Ops whose first input is read only where the output gathers it (the indices in full).
_GATHERED = words(
    "embedding embedding_bag _embedding_bag _embedding_bag_forward_only index _unsafe_index "
    "index_select gather take"
)
# Ops whose inputs give only a shape (and dtype): nothing is read.
_SHAPE_ONLY = words(
    "full_like zeros_like ones_like empty_like rand_like randn_like randint_like new_empty "
    "new_empty_strided new_full new_ones new_zeros"
)
# Names that are another op's (torch's Python-level aliases).
_ALIASES: dict[str, str] = {
    "__and__": "bitwise_and", "__or__": "bitwise_or", "__xor__": "bitwise_xor",
    "__lshift__": "bitwise_left_shift", "__rshift__": "bitwise_right_shift",
    "absolute": "abs", "arccos": "acos", "arccosh": "acosh", "arcsin": "asin",
    "arcsinh": "asinh", "arctan": "atan", "arctan2": "atan2", "arctanh": "atanh",
    "divide": "div", "multiply": "mul", "subtract": "sub", "negative": "neg", "fix": "trunc",
    "greater": "gt", "greater_equal": "ge", "less": "lt", "less_equal": "le",
    "not_equal": "ne", "clip": "clamp", "special_ndtr": "erf", "floor_divide": "div",
}  # fmt: skip
_PER_ELEMENT_CATEGORIES = frozenset({"norm", "softmax", "reduction", "pool"})


@dataclass(frozen=True)
class OpKind:
    """How hetsched sees one aten op (see the module docs).

    ``category`` is one of :data:`~hetsched.graph.opgraph.CATEGORIES`; ``flops`` one of
    :data:`FLOP_SOURCES`; ``reads`` ``all``, ``gathered`` or ``shape``; ``canonical`` the
    out-of-place packet name the op was classified as.
    """

    category: str
    flops: str
    reads: str
    canonical: str


def resolve_op(op: Any) -> Any:
    """The torch ``OpOverload`` (or packet) named by ``op``, or ``op`` itself if not a string.

    ``"aten.mm.default"``, ``"aten.mm"`` and ``"aten::mm"`` resolve; ``None`` if torch has no
    such op.

    >>> str(resolve_op("aten.hardswish_.default")), resolve_op("aten.nope.default")
    ('aten.hardswish_.default', None)
    """
    if not isinstance(op, str):
        return op
    import torch

    parts = op.replace("::", ".").split(".")
    if len(parts) < 2 or parts[0] not in ("aten", "prims", "quantized_decomposed"):
        return None
    try:
        packet = getattr(getattr(torch.ops, parts[0]), parts[1])
        return getattr(packet, parts[2]) if len(parts) > 2 else packet
    except (AttributeError, RuntimeError):
        return None


def _tags(op: Any) -> set[str]:
    return {str(t).rsplit(".", 1)[-1] for t in getattr(op, "tags", ())}


def _overloads(packet: Any) -> list[Any]:
    try:
        return [getattr(packet, o) for o in packet.overloads()]
    except (AttributeError, RuntimeError):
        return []


def _packet_of(op: Any) -> Any:
    return getattr(op, "overloadpacket", op)


def _name(op: Any) -> str:
    schema = getattr(op, "_schema", None)
    if schema is not None:
        return str(schema.name.partition("::")[2])
    name = getattr(op, "__name__", None) or str(op)
    return str(name).rsplit(".", 1)[-1]


def _aten(name: str) -> Any:
    import torch

    try:
        return getattr(torch.ops.aten, name)
    except (AttributeError, RuntimeError):
        return None


def _canonical(op: Any) -> tuple[str, Any, bool]:
    """``(packet name, torch object, backward)`` of the out-of-place forward op ``op`` is."""
    name, backward = _name(op), False
    for _ in range(3):
        base = name
        if name in _ALIASES:
            base = _ALIASES[name]
        elif name.startswith("__i") and f"__{name[3:]}" in _ALIASES:
            base = _ALIASES[f"__{name[3:]}"]  # __iand__ -> bitwise_and
        elif name.endswith("_backward"):
            base, backward = name.removesuffix("_backward"), True
        elif name.endswith("_") and not name.endswith("__") and _aten(name[:-1]) is not None:
            base = name[:-1]  # the in-place variant of an out-of-place op
        if base == name:
            break
        name = base
        op = _aten(name) or op
    return name, op, backward


def _registry_category(packet: Any) -> str | None:
    from torch.utils.flop_counter import flop_registry

    f = flop_registry.get(packet)
    if f is None:
        return None
    fname = getattr(f, "__wrapped__", f).__name__
    if "conv" in fname:
        return "conv"
    if "attention" in fname or "sdpa" in fname:
        return "attention"
    return "matmul"


def _tag_category(op: Any, packet: Any) -> str | None:
    own = _tags(op)
    if "reduction" in own:
        return "reduction"
    if "pointwise" in own:
        return "elementwise"
    if "view_copy" in own:
        return "data_movement"
    siblings = [_tags(o) for o in _overloads(packet)]
    if any("reduction" in t for t in siblings):
        return "reduction"
    if any("pointwise" in t for t in siblings):
        return "elementwise"
    return None


def _creates(op: Any) -> bool:
    schema = getattr(op, "_schema", None)
    if schema is None or not schema.returns:
        return False
    tensor_args = [a for a in schema.arguments if "Tensor" in str(a.type)]
    return not tensor_args and "Tensor" in str(schema.returns[0].type)


def op_kind(op: Any) -> OpKind:
    """Classify an aten op: an ``OpOverload``, a packet, or a name like ``"aten.mm.default"``.

    A packet or bare name (no overload) is classified by its packet-level information;
    unknown names give category ``other`` and FLOP source ``none``.
    """
    target = resolve_op(op)
    if target is None:
        parts = str(op).replace("::", ".").split(".")
        packet = parts[1] if len(parts) > 1 else parts[0]
        cat = OP_TABLE.get(packet, "other")
        return OpKind(cat, _flop_source(cat, packet, formula=False), "all", packet)
    own = _registry_category(_packet_of(target))
    if own is not None:  # torch counts this very op (backward ops included)
        return OpKind(own, "flop_counter", "all", _name(target))
    name, canon, backward = _canonical(target)
    registered = None if backward else _registry_category(_packet_of(canon))
    if registered is not None:
        cat = registered
    elif name in OP_TABLE:
        cat = OP_TABLE[name]
    else:
        # an op mapped to another is classified by that op's tags, not its own
        tagged = _tag_category(canon, _packet_of(canon))
        cat = tagged or ("creation" if _creates(canon) else "other")
    formula = registered is not None or (name in ADAPTED and not backward)
    reads = "gathered" if name in _GATHERED else "shape" if name in _SHAPE_ONLY else "all"
    return OpKind(cat, _flop_source(cat, name, formula=formula), reads, name)


def _flop_source(category: str, name: str, *, formula: bool) -> str:
    if formula:
        return "flop_counter"
    if category == "elementwise":
        return "pointwise"
    if category in _PER_ELEMENT_CATEGORIES or name.startswith("_fft"):
        return "table"
    return "none"


@dataclass(frozen=True)
class OpUse:
    """One op as seen in some graphs: how often, in which, and how hetsched sees it.

    ``category`` is the nodes' own (the most common one when graphs disagree); ``flops`` the
    FLOP source :func:`op_kind` gives the op (``none`` for an op torch does not know).
    """

    op: str
    count: int
    graphs: tuple[str, ...]
    category: str
    flops: str

    @property
    def unknown(self) -> bool:
        return self.category == "other"


def op_uses(graphs: Iterable[OpGraph]) -> list[OpUse]:
    """Every op of ``graphs`` (the parts of fused or coarsened nodes counted one by one),
    unknown ops first, then by category and op name.

    >>> from hetsched.graph.opgraph import OpGraph, OpNode
    >>> g = OpGraph("g", [OpNode("a", "aten.relu_.default", "elementwise"),
    ...                   OpNode("b", "aten.relu_.default", "elementwise"),
    ...                   OpNode("c", "my.op", "other")])
    >>> [(u.op, u.count, u.category, u.flops) for u in op_uses([g])]
    [('my.op', 1, 'other', 'none'), ('aten.relu_.default', 2, 'elementwise', 'pointwise')]
    """
    counts: dict[str, int] = {}
    seen_in: dict[str, dict[str, None]] = {}
    cats: dict[str, dict[str, int]] = {}
    for g in graphs:
        for node in g.nodes:
            for n in node.parts or (node,):
                counts[n.op] = counts.get(n.op, 0) + 1
                seen_in.setdefault(n.op, {})[g.name] = None
                by_cat = cats.setdefault(n.op, {})
                by_cat[n.category] = by_cat.get(n.category, 0) + 1
    rows = []
    for op, k in counts.items():
        cat = max(sorted(cats[op]), key=lambda c: cats[op][c])
        rows.append(OpUse(op, k, tuple(seen_in[op]), cat, op_kind(op).flops))
    return sorted(rows, key=lambda u: (not u.unknown, u.category, u.op))
