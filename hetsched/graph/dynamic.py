"""Dynamic shapes of an exported program: the size each symbolic dimension is costed at.

A dimension exported with ``torch.export.Dim`` is a symbol (``s77``); the importer costs it at
the upper bound the ``Dim`` declares, or, when it declares none, at the example's size, and
says which in ``graph.meta["dynamic_shapes"]``. A size only known at run time (``nonzero``'s
row count, ``u0``) is bound by the importer when it meets the op producing it (see
``graph.meta["data_dependent"]``). torch is imported lazily.

Examples
--------
>>> import torch
>>> from torch.export import Dim, export
>>> ep = export(torch.nn.Linear(8, 4), (torch.randn(3, 8),),
...             dynamic_shapes={"input": {0: Dim("batch", max=64)}})
>>> sizes, info = symbol_sizes(ep)
>>> [(v["size"], v["basis"], v["example"], v["input"]) for v in info.values()]
[(64, 'Dim upper bound', 3, 'input.shape[0]')]
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Any

from hetsched.graph.flops import SymbolSizes, tensors_in

if TYPE_CHECKING:  # pragma: no cover
    import torch

__all__ = ["finite_upper", "symbol_sizes", "value_range"]

# Bounds torch gives a symbol it knows nothing about (int_oo, or the int64 maximum).
_UNBOUNDED = sys.maxsize - 1


def finite_upper(vr: Any) -> int | None:
    """The upper end of a torch ``ValueRanges`` when it is a real bound, else ``None``."""
    upper = getattr(vr, "upper", None)
    if not getattr(upper, "is_Integer", isinstance(upper, int)):  # int_oo, oo, symbolic
        return None
    value = int(upper)  # type: ignore[arg-type]
    return value if 0 <= value < _UNBOUNDED else None


def value_range(val: Any, symbol: Any) -> Any:
    """The range torch's shape environment knows for ``symbol`` (``None`` if none)."""
    for t in tensors_in(val):
        for d in t.shape:
            env = getattr(getattr(d, "node", None), "shape_env", None)
            if env is not None:
                return env.var_to_range.get(symbol)
    return None


def _example(dim: Any) -> int | None:
    hint = getattr(getattr(dim, "node", None), "hint", None)
    return int(hint) if hint is not None else None


def symbol_sizes(ep: torch.export.ExportedProgram) -> tuple[SymbolSizes, dict[str, Any]]:
    """The size of each input's symbolic dimension, and what was assumed (for ``meta``).

    Returns ``(sizes, info)``: ``info[symbol]`` holds ``size``, ``basis`` (``"Dim upper
    bound"`` or ``"example size (no upper bound)"``), ``range`` (``[low, high]``, ``high``
    ``None`` when unbounded), ``example`` (the example input's size) and ``input`` (the first
    input dimension that is exactly that symbol, e.g. ``"x.shape[0]"``; ``""`` if none).
    """
    user = set(ep.graph_signature.user_inputs)
    where: dict[str, tuple[str, int | None]] = {}
    for n in ep.graph.nodes:
        if n.op != "placeholder" or n.name not in user:
            continue
        for t in tensors_in(n.meta.get("val")):
            for i, d in enumerate(t.shape):
                expr = getattr(getattr(d, "node", None), "expr", None)
                if expr is not None and getattr(expr, "is_Symbol", False):
                    where.setdefault(str(expr), (f"{n.name}.shape[{i}]", _example(d)))
    sizes = SymbolSizes()
    info: dict[str, Any] = {}
    for sym, vr in sorted(ep.range_constraints.items(), key=lambda kv: str(kv[0])):
        name = str(sym)
        if name not in where:  # a data-dependent size: bound where it is produced
            continue
        source, example = where[name]
        upper = finite_upper(vr)
        low = int(vr.lower) if getattr(vr.lower, "is_Integer", False) else 0
        if upper is not None:
            size, basis = upper, "Dim upper bound"
        else:
            size, basis = example or 1, "example size (no upper bound)"
        sizes.bind(name, size)
        info[name] = {"size": size, "basis": basis, "range": [low, upper],
                      "example": example, "input": source}  # fmt: skip
    return sizes, info
