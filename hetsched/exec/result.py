"""What a run returns: :class:`ExecutionResult` and its per-attempt records.

Examples
--------
>>> r = OpRun("a", "cpu", 0.0, 2.0, "done", 0)
>>> r.duration, r.devices
(2.0, ('cpu',))
>>> OpRun("b", "gpu0", 0.0, 1.0, "done", 0, devices=("gpu0", "gpu1")).devices
('gpu0', 'gpu1')
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from hetsched.plan import Plan, Transfer

__all__ = ["ExecutionResult", "OpRun", "TransferRun"]


@dataclass(frozen=True)
class OpRun:
    """One attempt of an op: ``status`` is ``done`` or ``lost`` (a device of it failed).

    ``devices`` are all the devices its mode held for the attempt (``device`` is the first).
    """

    op: str
    device: str
    start: float
    finish: float
    status: str
    phase: int
    devices: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if not self.devices:
            object.__setattr__(self, "devices", (self.device,))

    @property
    def duration(self) -> float:
        return self.finish - self.start


@dataclass(frozen=True)
class TransferRun:
    """One attempt of a transfer (one tensor to one device): ``done``, or ``lost`` (dropped,
    or an endpoint failed)."""

    transfer: Transfer
    status: str
    phase: int


@dataclass(frozen=True)
class ExecutionResult:
    """The realized run of a plan.

    Times are plan times (seconds, or the graph's units). ``assignment`` (first device),
    ``modes`` (every device of the op's mode), ``start`` and ``finish`` describe the run of
    each op that counted (the last one when it was re-run); ``runs`` and ``transfer_runs``
    hold every attempt, lost ones included. ``transfers`` are the delivered transfers, one
    per (tensor, destination device). ``utilization`` is busy time over makespan per device
    (an op of a multi-device mode keeps each of its devices busy). ``memory`` is the peak
    bytes each device held, as the executor allocated and freed them on its clock (the
    liveness model of :mod:`hetsched.plan.memory`: resident weights throughout, an op's
    outputs from its start to their last use there, a received tensor from its transfer's
    start to its last reader; :mod:`hetsched.exec.memory`): ``plan.memory`` for a plan
    run as planned on the virtual clock; after a device failure, what the phases held
    together (see :mod:`hetsched.exec.memory`).
    Dispatch overhead is the wall time from the moment an op could start (inputs present,
    device free, release time reached) to the moment its worker started it, in µs.
    ``outputs_match`` is None when no program ran, else whether the outputs equal eager.
    """

    outputs: Any
    assignment: Mapping[str, str]
    start: Mapping[str, float]
    finish: Mapping[str, float]
    transfers: tuple[Transfer, ...]
    runs: tuple[OpRun, ...]
    transfer_runs: tuple[TransferRun, ...]
    makespan: float
    planned_makespan: float
    lower_bound: float
    utilization: Mapping[str, float]
    dispatch_median_us: float
    dispatch_p99_us: float
    dispatch_mean_us: float
    faults_seen: tuple[str, ...]
    replans: tuple[Plan, ...]
    outputs_match: bool | None
    clock: str
    time_scale: float
    wall_time: float
    units: str = "s"
    devices: tuple[str, ...] = ()
    links: tuple[str, ...] = ()
    fault_times: Mapping[str, float] = field(default_factory=dict)
    modes: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    memory: Mapping[str, float] = field(default_factory=dict)

    @property
    def slowdown(self) -> float:
        """Realized over planned makespan (1.0 = on plan)."""
        return self.makespan / self.planned_makespan if self.planned_makespan > 0 else 1.0

    def summary(self) -> dict[str, Any]:
        """Headline figures as plain JSON values."""
        return {
            "planned_makespan": self.planned_makespan,
            "makespan": self.makespan,
            "slowdown": self.slowdown,
            "clock": self.clock,
            "outputs_match": self.outputs_match,
            "dispatch_median_us": self.dispatch_median_us,
            "dispatch_p99_us": self.dispatch_p99_us,
            "utilization": dict(self.utilization),
            "memory": dict(self.memory),
            "faults_seen": list(self.faults_seen),
            "replans": len(self.replans),
            "wall_time": self.wall_time,
        }
