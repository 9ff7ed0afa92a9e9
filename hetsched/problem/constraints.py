"""What the user decides for the solvers: pin, forbid, colocate, and a cap on segments.

* **pin** ``OPS=DEVICES``: every op ``OPS`` selects runs only on ``DEVICES`` (all devices of
  its mode, for a split).
* **forbid** ``OPS=DEVICES``: no mode of those ops uses those devices.
* **colocate** ``OPS``: the ops ``OPS`` selects run on one device (the same device set).
* **max_segments** ``K``: along the graph's op order, the device changes at most ``K - 1``
  times (the pieces a compiler emits: ``hetsched partition`` cuts the program there).

``OPS`` is an op name, an ``nn.Module`` path (the op and everything under it:
``layers.0.attn``), or a shell pattern over both (``*attn*``); ``DEVICES`` is a comma list of
device names, kinds (``asic``) or patterns over names (``npu*``). Pins and forbids restrict
each op's modes (every solver honours a mode restriction); colocation and the segment cap
are constraints of the exact solvers and restrictions of the heuristics
(:mod:`hetsched.schedule.structure`). A selector that matches no op, or a device that does
not exist, is an error, as is a set of rules that leaves an op no device or a group no
common device: the message names the rules.

Examples
--------
>>> c = Constraints.parse(pins=["mm*=npu*"], forbid=["relu=gpu"], colocate=["mm1,relu"])
>>> c.pins[0], c.colocate[0]
(Rule(ops='mm*', devices=('npu*',), label="pin 'mm*=npu*'"), ('mm1', 'relu'))
>>> r = c.resolve(["mm0", "mm1", "relu"], ["", "", ""], ["cpu", "gpu", "npu0"],
...               ["cpu", "gpu", "asic"])
>>> r.allowed.astype(int).tolist(), r.groups
([[0, 0, 1], [0, 0, 1], [1, 0, 1]], ((1, 2),))
"""

from __future__ import annotations

import fnmatch
import itertools
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from hetsched.errors import InfeasibleError, UsageError

__all__ = [
    "Constraints",
    "ResolvedConstraints",
    "Rule",
    "check_devices_left",
    "count_segments",
    "select_ops",
]


def count_segments(devices: Sequence[Any]) -> int:
    """Segments of a device sequence along the op order: 1 + the number of changes.

    >>> count_segments(["cpu", "cpu", "npu0", "cpu"])
    3
    """
    return int(len(devices) > 0) + sum(a != b for a, b in itertools.pairwise(devices))


@dataclass(frozen=True)
class Rule:
    """Ops (a selector) and devices (names or kinds), with the label errors name it by."""

    ops: str
    devices: tuple[str, ...]
    label: str


def _rule(kind: str, text: str) -> Rule:
    ops, sep, devs = text.partition("=")
    devices = tuple(d.strip() for d in devs.split(",") if d.strip())
    if not sep or not ops.strip() or not devices:
        msg = f"{kind} {text!r}: expected OPS=DEVICES (e.g. 'layers.0.*=npu0,npu1')"
        raise UsageError(msg)
    return Rule(ops.strip(), devices, f"{kind} {text.strip()!r}")


@dataclass(frozen=True)
class Constraints:
    """The user's rules, as written (see the module docstring); :meth:`resolve` applies
    them to one graph and platform."""

    pins: tuple[Rule, ...] = ()
    forbids: tuple[Rule, ...] = ()
    colocate: tuple[tuple[str, ...], ...] = ()
    max_segments: int | None = None

    def __post_init__(self) -> None:
        if self.max_segments is not None and (
            isinstance(self.max_segments, bool)
            or not isinstance(self.max_segments, int)
            or self.max_segments < 1
        ):
            msg = f"max_segments must be a positive integer, got {self.max_segments!r}"
            raise UsageError(msg)

    @classmethod
    def parse(
        cls,
        *,
        pins: Iterable[str] = (),
        forbid: Iterable[str] = (),
        colocate: Iterable[str | Sequence[str]] = (),
        max_segments: int | None = None,
    ) -> Constraints:
        """From the CLI's strings: ``OPS=DEVICES`` rules, comma lists of ops to colocate."""
        groups = []
        for g in colocate:
            items = g.split(",") if isinstance(g, str) else list(g)
            group = tuple(x.strip() for x in items if str(x).strip())
            if not group:
                msg = f"colocate {g!r}: name at least one op (a comma list of selectors)"
                raise UsageError(msg)
            groups.append(group)
        return cls(
            pins=tuple(_rule("pin", p) for p in pins),
            forbids=tuple(_rule("forbid", f) for f in forbid),
            colocate=tuple(groups),
            max_segments=max_segments,
        )

    @classmethod
    def from_dict(cls, doc: Any, *, source: str = "constraints") -> Constraints:
        """From a graph or plan file's ``constraints`` object (:meth:`to_dict`)."""
        if not isinstance(doc, Mapping):
            msg = f"{source}: expected an object with pin, forbid, colocate, max_segments"
            raise UsageError(msg)
        unknown = sorted(set(doc) - {"pin", "forbid", "colocate", "max_segments"})
        if unknown:
            msg = f"{source}: unknown field {unknown[0]!r} (pin, forbid, colocate, max_segments)"
            raise UsageError(msg)

        def strings(key: str) -> list[Any]:
            val = doc.get(key, [])
            if not isinstance(val, list):
                msg = f"{source}: {key} must be a list"
                raise UsageError(msg)
            return val

        return cls.parse(
            pins=[str(x) for x in strings("pin")],
            forbid=[str(x) for x in strings("forbid")],
            colocate=strings("colocate"),
            max_segments=doc.get("max_segments"),
        )

    def to_dict(self) -> dict[str, Any]:
        """The file form: ``{"pin": [...], "forbid": [...], "colocate": [[...]], ...}``."""
        out: dict[str, Any] = {}
        if self.pins:
            out["pin"] = [f"{r.ops}={','.join(r.devices)}" for r in self.pins]
        if self.forbids:
            out["forbid"] = [f"{r.ops}={','.join(r.devices)}" for r in self.forbids]
        if self.colocate:
            out["colocate"] = [list(g) for g in self.colocate]
        if self.max_segments is not None:
            out["max_segments"] = self.max_segments
        return out

    def __bool__(self) -> bool:
        return bool(self.pins or self.forbids or self.colocate or self.max_segments)

    def resolve(
        self,
        names: Sequence[str],
        modules: Sequence[str],
        devices: Sequence[str],
        kinds: Sequence[str],
    ) -> ResolvedConstraints:
        """Op and device indices of every rule; :class:`UsageError` for a selector that
        matches no op or a device that does not exist."""
        n, d = len(names), len(devices)
        allowed = np.ones((n, d), dtype=bool)
        why: dict[int, list[str]] = {}
        for rule in self.pins:
            ops = select_ops(rule.ops, names, modules, rule.label)
            mask = _device_mask(rule, devices, kinds)
            allowed[ops] &= mask[None, :]
            for v in ops.tolist():
                why.setdefault(v, []).append(rule.label)
        for rule in self.forbids:
            ops = select_ops(rule.ops, names, modules, rule.label)
            allowed[ops] &= ~_device_mask(rule, devices, kinds)[None, :]
            for v in ops.tolist():
                why.setdefault(v, []).append(rule.label)
        groups, labels = [], []
        for g in self.colocate:
            label = f"colocate {','.join(g)!r}"
            ops = np.unique(np.concatenate([select_ops(x, names, modules, label) for x in g]))
            if ops.size > 1:
                groups.append(tuple(int(v) for v in ops))
                labels.append(label)
        return ResolvedConstraints(
            allowed=allowed,
            why={v: tuple(x) for v, x in why.items()},
            groups=tuple(groups),
            group_labels=tuple(labels),
            max_segments=self.max_segments,
            spec=self,
        )


def select_ops(
    selector: str, names: Sequence[str], modules: Sequence[str], label: str = ""
) -> np.ndarray:
    """Indices of the ops ``selector`` names: an op name, a module path (and everything
    under it), or a shell pattern over names and module paths.

    >>> select_ops("layers.0", ["a", "b", "c"], ["layers.0.fc", "layers.1.fc", "layers.0"])
    array([0, 2])
    """
    hits = [
        i
        for i, (x, m) in enumerate(zip(names, modules, strict=True))
        if x == selector
        or (m and (m == selector or m.startswith(selector + ".")))
        or fnmatch.fnmatchcase(x, selector)
        or (m and fnmatch.fnmatchcase(m, selector))
    ]
    if not hits:
        msg = f"{label or repr(selector)}: {selector!r} matches no op name or module path"
        raise UsageError(msg)
    return np.array(hits, dtype=np.int64)


def _device_mask(rule: Rule, devices: Sequence[str], kinds: Sequence[str]) -> np.ndarray:
    mask = np.zeros(len(devices), dtype=bool)
    for x in rule.devices:
        hit = np.array([x in (dv, k) or fnmatch.fnmatchcase(dv, x)
                        for dv, k in zip(devices, kinds, strict=True)])  # fmt: skip
        if not hit.any():
            msg = (
                f"{rule.label}: no device or device kind {x!r} "
                f"(devices: {', '.join(devices)}; kinds: {', '.join(sorted(set(kinds)))})"
            )
            raise UsageError(msg)
        mask |= hit
    return mask


@dataclass(frozen=True, eq=False)
class ResolvedConstraints:
    """The rules on one problem: ``allowed[v, d]`` (pins and forbids), the rules that touch
    each op (``why``), colocated op groups and their labels, the segment cap, and the
    user's ``spec`` (written into plans)."""

    allowed: np.ndarray
    why: Mapping[int, tuple[str, ...]] = field(default_factory=dict)
    groups: tuple[tuple[int, ...], ...] = ()
    group_labels: tuple[str, ...] = ()
    max_segments: int | None = None
    spec: Constraints = field(default_factory=Constraints)

    def __post_init__(self) -> None:
        self.allowed.setflags(write=False)

    @property
    def structural(self) -> bool:
        """Whether some rule couples ops (colocation, the segment cap): more than a mode
        restriction."""
        return bool(self.groups) or self.max_segments is not None

    def rules_of(self, v: int) -> str:
        """The rules on op ``v``, for messages (``"no rule"`` when none)."""
        return ", ".join(self.why.get(v, ())) or "no rule"


def check_devices_left(
    resolved: ResolvedConstraints, supported: np.ndarray, names: Sequence[str]
) -> None:
    """:class:`InfeasibleError` naming the rules when they leave an op no supported device,
    or a colocated group no device every member may use."""
    ok = supported & resolved.allowed
    empty = np.flatnonzero(~ok.any(axis=1))
    if empty.size:
        v = int(empty[0])
        msg = (
            f"op {names[v]!r} has no device left: {resolved.rules_of(v)} leave(s) no device "
            "that supports it"
        )
        raise InfeasibleError(msg)
    for group, label in zip(resolved.groups, resolved.group_labels, strict=True):
        common = ok[list(group)].all(axis=0)
        if not common.any():
            touched = sorted({r for v in group for r in resolved.why.get(v, ())})
            extra = f" with {', '.join(touched)}" if touched else ""
            msg = f"{label}{extra}: no device supports every op of the group"
            raise InfeasibleError(msg)
