"""The memory objective: the order of ops on one device with the least peak memory.

A portfolio run in turn, each step keeping the best order and the best proven bound:

1. the baselines, the graph's own order and Inductor's LPMF greedy;
2. the lower bounds of :mod:`~hetsched.schedule.memory.bounds` (the greedy may already meet
   them: proven);
3. on graphs up to ``max_exact_ops`` ops, the downset DP for a share of the time limit, then
   CP-SAT hinted with the best order for the rest.

The result is never worse than either baseline, every order is checked by
:func:`~hetsched.schedule.memory.instance.check_order`, and an interrupted search still
returns the best order found. Status: ``optimal`` when the peak meets the proven bound,
``feasible`` when an exact search ran without closing the gap, ``heuristic`` otherwise.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from hetsched.errors import SolverError
from hetsched.schedule.memory.bounds import activation_lower_bound
from hetsched.schedule.memory.cpsat import solve_order_cpsat
from hetsched.schedule.memory.dp import downset_dp
from hetsched.schedule.memory.greedy import lpmf_order, topological_order
from hetsched.schedule.memory.instance import MemoryInstance, check_order, peak_of_order

if TYPE_CHECKING:
    from hetsched.graph import OpGraph
    from hetsched.solver import StopToken

__all__ = ["MemoryOrderResult", "min_peak_order"]


@dataclass(frozen=True)
class MemoryOrderResult:
    """The best order found, its peak, the proven bound and the baselines (bytes).

    ``peak``, ``lower_bound`` and the ``baselines`` include the resident ``weights``;
    ``activation_peak`` does not. ``method`` names what produced ``order``: ``topological``,
    ``greedy``, ``dp`` or ``cpsat``.
    """

    name: str
    status: str
    order: tuple[str, ...]
    peak: float
    activation_peak: float
    weights: float
    lower_bound: float
    method: str
    wall_time: float
    interrupted: bool
    baselines: dict[str, float] = field(default_factory=dict)
    notes: tuple[str, ...] = ()

    @property
    def gap(self) -> float:
        """``(peak - lower_bound) / peak`` over activations (0 when proven optimal)."""
        act_bound = self.lower_bound - self.weights
        if self.activation_peak <= 0:
            return 0.0
        return max(0.0, (self.activation_peak - act_bound) / self.activation_peak)


class _Best:
    """The incumbent: the least activation peak seen, its order and who found it."""

    def __init__(self, instance: MemoryInstance) -> None:
        self.instance = instance
        self.order = np.arange(instance.n, dtype=np.int64)
        self.value = float("inf")
        self.method = ""

    def offer(self, order: np.ndarray, method: str) -> float:
        value = peak_of_order(self.instance, order).activation_peak
        if value < self.value:
            self.order, self.value, self.method = np.asarray(order), value, method
        return value


def _check_options(time_limit: float, workers: int, dp_share: float) -> None:
    if not time_limit >= 0:
        msg = f"time_limit must be >= 0, got {time_limit!r}"
        raise SolverError(msg)
    if workers < 1:
        msg = f"workers must be >= 1, got {workers!r}"
        raise SolverError(msg)
    if not 0.0 <= dp_share <= 1.0:
        msg = f"dp_share must be in [0, 1], got {dp_share!r}"
        raise SolverError(msg)


def min_peak_order(
    instance: MemoryInstance | OpGraph,
    *,
    time_limit: float = 60.0,
    seed: int = 0,
    workers: int = 1,
    stop: StopToken | None = None,
    max_exact_ops: int = 400,
    dp_share: float = 0.8,
    max_states: int = 3_000_000,
) -> MemoryOrderResult:
    """The order of ops on one device that minimises peak memory, with a proven bound.

    Parameters
    ----------
    instance : a :class:`MemoryInstance` or an :class:`~hetsched.graph.OpGraph`.
    time_limit : seconds for the exact search (DP and CP-SAT together).
    seed, workers : CP-SAT's random seed and worker threads.
    stop : a stop token; the best order so far is returned when it is set.
    max_exact_ops : above this many ops only the baselines and bounds run.
    dp_share : share of ``time_limit`` the downset DP may use before CP-SAT takes over.
    max_states : the DP gives up past this many states in one round.

    Returns
    -------
    MemoryOrderResult

    Raises
    ------
    SolverError
        For a negative time limit, fewer than one worker or a ``dp_share`` outside [0, 1].

    Examples
    --------
    >>> from hetsched.graph import OpGraph, OpNode, Tensor
    >>> g = OpGraph("branches", [OpNode(x) for x in ("a", "b1", "b2", "c1", "c2")]
    ...             + [OpNode("z", out_bytes=1.0, param_bytes=2.0)],
    ...             tensors=[Tensor("x", "a", ("b1", "b2"), 1.0), Tensor("y1", "b1", ("c1",), 9.0),
    ...                      Tensor("y2", "b2", ("c2",), 9.0), Tensor("s1", "c1", ("z",), 1.0),
    ...                      Tensor("s2", "c2", ("z",), 1.0)])
    >>> r = min_peak_order(g, time_limit=5.0)
    >>> r.status, r.order, r.peak, r.lower_bound, r.weights
    ('optimal', ('a', 'b1', 'c1', 'b2', 'c2', 'z'), 13.0, 13.0, 2.0)
    >>> r.baselines
    {'topological': 21.0, 'greedy': 13.0}
    """
    _check_options(time_limit, workers, dp_share)
    t0 = time.monotonic()
    inst = instance if isinstance(instance, MemoryInstance) else MemoryInstance.from_graph(instance)
    best = _Best(inst)
    w = inst.weights
    topo = best.offer(topological_order(inst), "topological")
    greedy = best.offer(lpmf_order(inst), "greedy")
    lower = activation_lower_bound(inst)
    exact = False
    interrupted = False
    notes: list[str] = []
    if best.value > lower and inst.n > max_exact_ops:
        notes.append(f"{inst.n} ops > max_exact_ops={max_exact_ops}: no exact search")
    elif best.value > lower:
        exact = True
        dp = downset_dp(inst, lower=lower, upper=best.value, stop=stop,
                        deadline=t0 + dp_share * time_limit, max_states=max_states)  # fmt: skip
        lower = max(lower, dp.lower_bound)
        notes.append(f"dp: {dp.states} states, {dp.rounds} rounds, proven={dp.proven}")
        if dp.order is not None:
            best.offer(dp.order, "dp")
        remaining = time_limit - (time.monotonic() - t0)
        if best.value > lower and remaining > 0 and not (stop is not None and stop.is_set()):
            cp = solve_order_cpsat(inst, hint=best.order, lower=lower, time_limit=remaining,
                                   seed=seed, workers=workers, stop=stop)  # fmt: skip
            lower = max(lower, cp.lower_bound)
            notes.append(f"cpsat: {cp.status}")
            if cp.order is not None:
                best.offer(cp.order, "cpsat")
        interrupted = best.value > lower and (
            (stop is not None and stop.is_set()) or time.monotonic() - t0 >= time_limit
        )
    check_order(inst, best.order)
    status = "optimal" if best.value <= lower else ("feasible" if exact else "heuristic")
    return MemoryOrderResult(
        name=inst.name,
        status=status,
        order=tuple(inst.names[i] for i in best.order),
        peak=w + best.value,
        activation_peak=best.value,
        weights=w,
        lower_bound=w + min(lower, best.value),
        method=best.method,
        wall_time=time.monotonic() - t0,
        interrupted=interrupted,
        baselines={"topological": w + topo, "greedy": w + greedy},
        notes=tuple(notes),
    )
