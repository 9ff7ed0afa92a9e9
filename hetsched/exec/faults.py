"""Fault specifications for :func:`~hetsched.exec.executor.execute`.

Three kinds: a device that fails at a time (its running op and everything it still holds
are lost, the rest of the graph is re-planned on the survivors), an op that raises (the run
stops with :class:`~hetsched.exec.errors.ExecutionError`) and a lost transfer (retried once;
lost twice is an error). A transfer moves one tensor to one device; a loss names it by the
tensor and the device (``transfer:TENSOR@DEVICE``) or by an edge (``transfer:SRC->DST``: the
transfer that brings ``SRC``'s tensor to ``DST``'s device, however many ops read it there).

Examples
--------
>>> parse_fault("npu1@0.004")
DeviceFailure(device='npu1', time=0.004)
>>> parse_fault("op:linear_1")
OpFailure(op='linear_1')
>>> parse_fault("transfer:relu->linear_2x2")
TransferLoss(src='relu', dst='linear_2', times=2, tensor='', device='')
>>> parse_fault("transfer:relu@gpu")
TransferLoss(src='', dst='', times=1, tensor='relu', device='gpu')
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from hetsched.errors import UsageError

if TYPE_CHECKING:
    from hetsched.problem import Problem

__all__ = [
    "DeviceFailure",
    "Fault",
    "OpFailure",
    "TransferLoss",
    "check_faults",
    "parse_fault",
    "parse_faults",
]


@dataclass(frozen=True)
class DeviceFailure:
    """Device ``device`` stops for good at ``time`` (plan time: seconds or graph units)."""

    device: str
    time: float

    def __post_init__(self) -> None:
        if not (math.isfinite(self.time) and self.time >= 0):
            msg = f"device failure time must be finite and >= 0, got {self.time!r}"
            raise UsageError(msg)

    def __str__(self) -> str:
        return f"{self.device}@{self.time:g}"


@dataclass(frozen=True)
class OpFailure:
    """Op ``op`` raises :class:`~hetsched.exec.errors.InjectedFault` when it runs."""

    op: str

    def __str__(self) -> str:
        return f"op:{self.op}"


@dataclass(frozen=True)
class TransferLoss:
    """A transfer is lost ``times`` times (1: one retry saves it).

    Either the transfer of ``tensor`` to ``device``, or (``src``/``dst`` ops) the one that
    brings ``src``'s tensor to the device of ``dst`` that lacks it (the first such device of
    a multi-device mode).
    """

    src: str = ""
    dst: str = ""
    times: int = 1
    tensor: str = ""
    device: str = ""

    def __post_init__(self) -> None:
        if self.times < 1:
            msg = f"transfer loss count must be >= 1, got {self.times!r}"
            raise UsageError(msg)
        if bool(self.tensor and self.device) == bool(self.src and self.dst):
            msg = "a transfer loss names an edge (src, dst) or a tensor and a device, not both"
            raise UsageError(msg)

    def __str__(self) -> str:
        what = f"{self.tensor}@{self.device}" if self.tensor else f"{self.src}->{self.dst}"
        return f"transfer:{what}" + (f"x{self.times}" if self.times > 1 else "")


Fault = DeviceFailure | OpFailure | TransferLoss

_DEVICE = re.compile(r"^([^@\s]+)@([0-9.eE+-]+)$")
_TRANSFER = re.compile(r"^transfer:(.+?)->(.+?)(?:x(\d+))?$")
_TENSOR = re.compile(r"^transfer:(.+)@([^@]+?)(?:x(\d+))?$")


def parse_fault(text: str) -> Fault:
    """Parse ``DEV@T``, ``op:NAME``, ``transfer:TENSOR@DEVICE[xN]`` or ``transfer:SRC->DST[xN]``.

    Raises
    ------
    UsageError
        If ``text`` matches none of the forms.
    """
    s = text.strip()
    if s.startswith("op:") and len(s) > 3:
        return OpFailure(s[3:])
    m = _TENSOR.match(s)
    if m:
        return TransferLoss(tensor=m.group(1), device=m.group(2), times=int(m.group(3) or 1))
    m = _TRANSFER.match(s)
    if m:
        return TransferLoss(m.group(1), m.group(2), int(m.group(3) or 1))
    m = _DEVICE.match(s)
    if m:
        try:
            t = float(m.group(2))
        except ValueError:
            t = math.nan
        if math.isfinite(t):
            return DeviceFailure(m.group(1), t)
    msg = (
        f"cannot parse fault {text!r} "
        "(expected DEV@TIME, op:NAME, transfer:TENSOR@DEVICE or transfer:SRC->DST)"
    )
    raise UsageError(msg)


def parse_faults(faults: object) -> tuple[Fault, ...]:
    """Faults given as specs or strings, as a tuple of specs."""
    if faults is None:
        return ()
    single = isinstance(faults, str | DeviceFailure | OpFailure | TransferLoss)
    if not single and not isinstance(faults, Iterable):
        msg = f"faults must be a fault spec or a sequence of them, got {faults!r}"
        raise UsageError(msg)
    items: Iterable[object] = [faults] if single else faults  # type: ignore[assignment]
    out: list[Fault] = []
    for f in items:
        if isinstance(f, str):
            out.append(parse_fault(f))
        elif isinstance(f, DeviceFailure | OpFailure | TransferLoss):
            out.append(f)
        else:
            msg = f"not a fault spec: {f!r}"
            raise UsageError(msg)
    return tuple(out)


def check_faults(specs: Sequence[Fault], p: Problem) -> None:
    """Raise :class:`UsageError` for a fault naming a device, op, edge or tensor ``p`` lacks."""
    edges = {
        (p.names[int(u)], p.names[int(v)]) for u, v in zip(p.edge_src, p.edge_dst, strict=True)
    }
    tensors = set(p.tensors.names)
    for f in specs:
        if isinstance(f, DeviceFailure):
            ok = f.device in p.device_index
        elif isinstance(f, OpFailure):
            ok = f.op in p.index
        elif f.tensor:
            ok = f.tensor in tensors and f.device in p.device_index
        else:
            ok = (f.src, f.dst) in edges
        if not ok:
            msg = f"fault {f} names something {p.name!r} on {p.platform_name or '?'!r} lacks"
            raise UsageError(msg)
