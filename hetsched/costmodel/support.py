"""Capability as a composable predicate: which ops a device can run.

A predicate is called as ``pred(node, device) -> bool``; :meth:`Support.why_not` gives the
reason for a refusal. Predicates combine with :func:`all_of` and :func:`any_of`, in the style
of torch.fx ``OperatorSupportBase`` / ``chain`` / ``any_chain``. The built-in predicates look
only at a few node fields (listed in ``Support.fields``), so a cost table evaluates each one
once per distinct ``(op, category, dtype)`` instead of once per node; a wrapped plain
function (:func:`predicate`) is evaluated per node.

Built-in predicates also have a plain-data form (``to_spec``/``from_spec``) used by the
platform TOML files, e.g. ``{categories = ["conv", "matmul"]}``; a ``reason`` key
(:func:`because`) says why the device runs what it runs and is quoted in every refusal.

:func:`~hetsched.costmodel.device.is_supported` is the full check used by the cost models:
the device's predicate *and* the device having compute units for the node's dtype (see
:func:`hetsched.costmodel.device.dtype_class`).

Examples
--------
>>> from hetsched.graph import OpNode
>>> npu = all_of(categories("conv", "matmul"), decline_if_dtype("int64"))
>>> npu(OpNode("c", category="conv"), None)
True
>>> npu(OpNode("s", category="reduction"), None)
False
>>> npu.why_not(OpNode("s", category="reduction"), None)
"category 'reduction' not in {conv, matmul}"
>>> from_spec(npu.to_spec()) == npu
True
>>> mac = from_spec({"categories": ["conv", "matmul"], "reason": "a MAC array only"})
>>> mac.why_not(OpNode("s", category="softmax"), None)
"category 'softmax' not in {conv, matmul} (a MAC array only)"
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from hetsched.errors import PlatformError
from hetsched.graph.opgraph import CATEGORIES, OpNode

__all__ = [
    "Support",
    "all_of",
    "any_of",
    "because",
    "categories",
    "decline_if_dtype",
    "everything",
    "from_spec",
    "not_categories",
    "not_ops",
    "ops",
    "predicate",
]


class Support:
    """Base of every support predicate.

    Subclasses implement :meth:`why_not` (``None`` when supported). ``fields`` names the
    node attributes the answer depends on; ``None`` means "any" (evaluate per node).
    """

    fields: frozenset[str] | None = frozenset()

    def why_not(self, node: OpNode, device: Any) -> str | None:  # pragma: no cover - abstract
        raise NotImplementedError

    def __call__(self, node: OpNode, device: Any) -> bool:
        return self.why_not(node, device) is None

    def to_spec(self) -> dict[str, Any]:
        """Plain-data form for TOML; :class:`PlatformError` for custom predicates."""
        msg = f"support predicate {self!r} has no TOML form"
        raise PlatformError(msg)


@dataclass(frozen=True)
class _Everything(Support):
    def why_not(self, node: OpNode, device: Any) -> str | None:
        return None

    def to_spec(self) -> dict[str, Any]:
        return {}


@dataclass(frozen=True)
class _Set(Support):
    field: str
    values: frozenset[str]
    negate: bool
    key: str

    @property
    def fields(self) -> frozenset[str]:  # type: ignore[override]
        return frozenset({self.field})

    def _match(self, value: str) -> bool:
        if self.field != "op":
            return value in self.values
        # "aten.mm" matches "aten.mm.default": an op name also matches its overloads.
        return value in self.values or value.rsplit(".", 1)[0] in self.values

    def why_not(self, node: OpNode, device: Any) -> str | None:
        value = str(getattr(node, self.field))
        if self._match(value) != self.negate:
            return None
        shown = ", ".join(sorted(self.values))
        rel = "in" if self.negate else "not in"
        return f"{self.field} {value!r} {rel} {{{shown}}}"

    def to_spec(self) -> dict[str, Any]:
        return {self.key: sorted(self.values)}


@dataclass(frozen=True)
class _Combine(Support):
    parts: tuple[Support, ...]
    any: bool

    @property
    def fields(self) -> frozenset[str] | None:  # type: ignore[override]
        out: set[str] = set()
        for p in self.parts:
            if p.fields is None:
                return None
            out |= p.fields
        return frozenset(out)

    def why_not(self, node: OpNode, device: Any) -> str | None:
        reasons = []
        for p in self.parts:
            r = p.why_not(node, device)
            if r is None and self.any:
                return None
            if r is not None:
                if not self.any:
                    return r
                reasons.append(r)
        return " and ".join(reasons) if self.any else None

    def to_spec(self) -> dict[str, Any]:
        return {"any_of" if self.any else "all_of": [p.to_spec() for p in self.parts]}


@dataclass(frozen=True)
class _Function(Support):
    fn: Callable[[OpNode, Any], bool]
    reason: str
    fields: frozenset[str] | None = None  # type: ignore[assignment]

    def why_not(self, node: OpNode, device: Any) -> str | None:
        return None if self.fn(node, device) else self.reason


@dataclass(frozen=True)
class _Reasoned(Support):
    pred: Support
    reason: str

    @property
    def fields(self) -> frozenset[str] | None:  # type: ignore[override]
        return self.pred.fields

    def why_not(self, node: OpNode, device: Any) -> str | None:
        r = self.pred.why_not(node, device)
        return None if r is None else f"{r} ({self.reason})"

    def to_spec(self) -> dict[str, Any]:
        return {**self.pred.to_spec(), "reason": self.reason}


def because(pred: Support, reason: str) -> Support:
    """``pred`` with the reason a device supports what it does, quoted in every refusal.

    >>> from hetsched.graph import OpNode
    >>> p = because(categories("conv"), "a convolution engine")
    >>> p.why_not(OpNode("m", category="matmul"), None)
    "category 'matmul' not in {conv} (a convolution engine)"
    """
    if not isinstance(reason, str) or not reason.strip():
        msg = f"a support reason must be a non-empty string, got {reason!r}"
        raise PlatformError(msg)
    return _Reasoned(pred, reason.strip())


def everything() -> Support:
    """Supports every op (the default)."""
    return _Everything()


def _strs(name: str, values: tuple[str, ...]) -> frozenset[str]:
    if not values or not all(isinstance(v, str) for v in values):
        msg = f"{name}() needs one or more strings, got {values!r}"
        raise PlatformError(msg)
    return frozenset(values)


def categories(*names: str) -> Support:
    """Supports ops whose ``category`` is one of ``names``."""
    bad = sorted(set(names) - set(CATEGORIES))
    if bad:
        msg = f"unknown op category {bad[0]!r} (expected one of {', '.join(CATEGORIES)})"
        raise PlatformError(msg)
    return _Set("category", _strs("categories", names), False, "categories")


def not_categories(*names: str) -> Support:
    """Supports ops whose ``category`` is not one of ``names``."""
    categories(*names)  # validates
    return _Set("category", _strs("not_categories", names), True, "not_categories")


def ops(*names: str) -> Support:
    """Supports ops whose ``op`` is one of ``names`` (``"aten.mm"`` covers its overloads)."""
    return _Set("op", _strs("ops", names), False, "ops")


def not_ops(*names: str) -> Support:
    """Declines ops whose ``op`` is one of ``names``."""
    return _Set("op", _strs("not_ops", names), True, "not_ops")


def decline_if_dtype(*dtypes: str) -> Support:
    """Declines ops whose output ``dtype`` is one of ``dtypes`` (``"torch."`` prefix ignored)."""
    clean = tuple(d.removeprefix("torch.") for d in _strs("decline_if_dtype", dtypes))
    return _DType(frozenset(clean))


@dataclass(frozen=True)
class _DType(Support):
    declined: frozenset[str]
    fields: frozenset[str] = frozenset({"dtype"})  # type: ignore[assignment]

    def why_not(self, node: OpNode, device: Any) -> str | None:
        d = node.dtype.removeprefix("torch.")
        return f"dtype {d!r} declined" if d in self.declined else None

    def to_spec(self) -> dict[str, Any]:
        return {"decline_dtypes": sorted(self.declined)}


def all_of(*preds: Support) -> Support:
    """Supported when every predicate agrees (``chain`` in torch.fx)."""
    return preds[0] if len(preds) == 1 else _Combine(tuple(preds), False)


def any_of(*preds: Support) -> Support:
    """Supported when at least one predicate agrees (``any_chain`` in torch.fx)."""
    return preds[0] if len(preds) == 1 else _Combine(tuple(preds), True)


def predicate(
    fn: Callable[[OpNode, Any], bool], *, reason: str = "declined by predicate"
) -> Support:
    """Wrap a plain ``fn(node, device) -> bool`` (evaluated per node, no TOML form).

    >>> from hetsched.graph import OpNode
    >>> small = predicate(lambda n, d: n.flops < 100, reason="too big")
    >>> small(OpNode("a", flops=5), None), small.why_not(OpNode("b", flops=500), None)
    (True, 'too big')
    """
    return _Function(fn, reason)


_SPEC_KEYS: dict[str, Callable[..., Support]] = {
    "categories": categories,
    "not_categories": not_categories,
    "ops": ops,
    "not_ops": not_ops,
    "decline_dtypes": decline_if_dtype,
}


def from_spec(spec: Mapping[str, Any], *, where: str = "supports") -> Support:
    """Build a predicate from its TOML form; several keys in one table mean :func:`all_of`,
    and a ``reason`` key (a string) is :func:`because`."""
    if not isinstance(spec, Mapping):
        msg = f"{where}: expected a table, got {type(spec).__name__}"
        raise PlatformError(msg)
    if "reason" in spec:
        reason = spec["reason"]
        if not isinstance(reason, str) or not reason.strip():
            msg = f"{where}.reason: expected a non-empty string, got {reason!r}"
            raise PlatformError(msg)
        rest = {k: v for k, v in spec.items() if k != "reason"}
        return because(from_spec(rest, where=where), reason)
    parts: list[Support] = []
    for key, value in spec.items():
        if key in ("all_of", "any_of"):
            if not isinstance(value, list) or not value:
                msg = f"{where}.{key}: expected a non-empty list of tables"
                raise PlatformError(msg)
            subs = [from_spec(v, where=f"{where}.{key}[{i}]") for i, v in enumerate(value)]
            parts.append(all_of(*subs) if key == "all_of" else any_of(*subs))
        elif key in _SPEC_KEYS:
            if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
                msg = f"{where}.{key}: expected a list of strings, got {value!r}"
                raise PlatformError(msg)
            try:
                parts.append(_SPEC_KEYS[key](*value))
            except PlatformError as err:
                msg = f"{where}.{key}: {err}"
                raise PlatformError(msg) from err
        else:
            known = ", ".join(sorted([*_SPEC_KEYS, "all_of", "any_of", "reason"]))
            msg = f"{where}: unknown key {key!r} (expected one of {known})"
            raise PlatformError(msg)
    return everything() if not parts else all_of(*parts)
