"""Exact dynamic programming over downsets (Serenity, Ahn et al., MLSys 2020).

A state is the set ``S`` of ops already run (a downset of the DAG, a Python int bitmask). Its
live bytes depend on ``S`` alone: tensors made in ``S`` with a reader outside, and the outputs
of sinks in ``S``. Running ready op ``v`` next costs ``live(S) + alloc(v)`` at its step; the
value of a state is the least peak over orders of ``S``. Layers of equal ``|S|`` are expanded in
turn, keeping only states whose value fits under a budget.

**Budgets** (Serenity's soft budgeting, made exact): with budget ``tau`` the DP finds the
optimum whenever it is ``<= tau``; when no order fits, the smallest step that was cut off is a
proven lower bound, and the next round raises ``tau``. Steps ``>= upper`` (the best known order)
are always cut, so a round that ends empty at ``tau`` just under ``upper`` proves ``upper``.

**Dominance.** A ready op that frees at least what it allocates and whose step does not exceed
the state's value is run at once (moving it earlier never raises a later step), so chains
and "consume the last reader" ops do not branch.

Examples
--------
>>> from hetsched.graph import OpGraph, OpNode, Tensor
>>> g = OpGraph("branches", [OpNode(x) for x in ("a", "b1", "b2", "c1", "c2")]
...             + [OpNode("z", out_bytes=1.0, param_bytes=2.0)],
...             tensors=[Tensor("x", "a", ("b1", "b2"), 1.0), Tensor("y1", "b1", ("c1",), 9.0),
...                      Tensor("y2", "b2", ("c2",), 9.0), Tensor("s1", "c1", ("z",), 1.0),
...                      Tensor("s2", "c2", ("z",), 1.0)])
>>> from hetsched.schedule.memory.instance import MemoryInstance
>>> out = downset_dp(MemoryInstance.from_graph(g), lower=10.0, upper=19.0, deadline=None)
>>> out.activation_peak, out.lower_bound, out.proven, out.order.tolist()
(11.0, 11.0, True, [0, 1, 3, 2, 4, 5])
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from hetsched.schedule.memory.instance import MemoryInstance

if TYPE_CHECKING:
    from hetsched.solver import StopToken

__all__ = ["DPOutcome", "downset_dp"]


@dataclass(frozen=True)
class DPOutcome:
    """What the DP found: an order better than ``upper`` (or None) and a proven bound.

    ``proven``: the search finished; ``order`` is optimal, or (``order`` None) no order beats
    ``upper``. ``lower_bound`` is a proven activation bound either way.
    """

    order: np.ndarray | None
    activation_peak: float | None
    lower_bound: float
    proven: bool
    states: int
    rounds: int


class _Abort(Exception):
    """The time, the state budget or the stop token ran out."""


@dataclass(frozen=True)
class _Tables:
    alloc: list[float]
    nbytes: list[float]
    inputs: list[list[int]]
    consmask: list[int]
    predmask: list[int]
    succs: list[list[int]]
    initial_ready: int

    @classmethod
    def of(cls, inst: MemoryInstance) -> _Tables:
        n = inst.n
        start, cons = inst.cons_start.tolist(), inst.cons.tolist()
        inputs: list[list[int]] = [[] for _ in range(n)]
        consmask = [0] * inst.src.size
        predmask = [0] * n
        succs: list[set[int]] = [set() for _ in range(n)]
        for t, u in enumerate(inst.src.tolist()):
            for v in cons[start[t] : start[t + 1]]:
                inputs[v].append(t)
                consmask[t] |= 1 << v
                predmask[v] |= 1 << u
                succs[u].add(v)
        ready = sum(1 << v for v in range(n) if predmask[v] == 0)
        return cls(inst.alloc.tolist(), inst.nbytes.tolist(), inputs, consmask, predmask,
                   [sorted(s) for s in succs], ready)  # fmt: skip


# One state: (value, live bytes, ready mask, parent state, op that led here).
_State = tuple[float, float, int, int, int]


def _round(
    tab: _Tables, n: int, tau: float, upper: float, check: _Check
) -> tuple[list[dict[int, _State]], float]:
    """Expand every layer under budget ``tau``; return the layers and the least cut step."""
    layer: dict[int, _State] = {0: (0.0, 0.0, tab.initial_ready, -1, -1)}
    layers = [layer]
    cut = math.inf
    alloc, nbytes, inputs, consmask = tab.alloc, tab.nbytes, tab.inputs, tab.consmask
    for _ in range(n):
        nxt: dict[int, _State] = {}
        for s, (val, live, ready, _p, _v) in layer.items():
            check(len(nxt))
            branch: list[tuple[int, float, float]] = []  # (v, step, freed)
            r = ready
            while r:
                low = r & -r
                r ^= low
                v = low.bit_length() - 1
                step = live + alloc[v]
                if step > tau or step >= upper:
                    cut = min(cut, step)
                    continue
                s2 = s | low
                freed = sum(nbytes[t] for t in inputs[v] if not consmask[t] & ~s2)
                if freed >= alloc[v] and step <= val:
                    branch = [(v, step, freed)]
                    break
                branch.append((v, step, freed))
            for v, step, freed in branch:
                low = 1 << v
                s2 = s | low
                nv = max(val, step)
                old = nxt.get(s2)
                if old is not None:
                    if old[0] > nv:
                        nxt[s2] = (nv, old[1], old[2], s, v)
                    continue
                ready2 = ready ^ low
                for w in tab.succs[v]:
                    if not tab.predmask[w] & ~s2:
                        ready2 |= 1 << w
                nxt[s2] = (nv, step - freed, ready2, s, v)
        if not nxt:
            return layers, cut
        layers.append(nxt)
        check.states += len(nxt)
        layer = nxt
    return layers, cut


class _Check:
    """Raise :class:`_Abort` past the deadline, the state budget or a stop."""

    def __init__(self, deadline: float | None, max_states: int, stop: StopToken | None) -> None:
        self.deadline, self.max_states, self.stop = deadline, max_states, stop
        self.states = 0
        self.calls = 0

    def __call__(self, layer_size: int) -> None:
        self.calls += 1
        if (self.calls - 1) % 1024:  # the first call checks: a deadline already past stops
            return
        if self.states + layer_size > self.max_states:
            raise _Abort
        if self.deadline is not None and time.monotonic() > self.deadline:
            raise _Abort
        if self.stop is not None and self.stop.is_set():
            raise _Abort


def _walk_back(layers: list[dict[int, _State]]) -> tuple[np.ndarray, float]:
    full, = layers[-1]  # fmt: skip
    value = layers[-1][full][0]
    order: list[int] = []
    s = full
    for layer in reversed(layers[1:]):
        _val, _live, _ready, parent, v = layer[s]
        order.append(v)
        s = parent
    return np.array(order[::-1], dtype=np.int64), value


def downset_dp(
    instance: MemoryInstance,
    *,
    lower: float,
    upper: float,
    deadline: float | None,
    max_states: int = 3_000_000,
    stop: StopToken | None = None,
) -> DPOutcome:
    """Search for an order whose activation peak is below ``upper``, optimal if one exists.

    Parameters
    ----------
    instance : the memory instance.
    lower : a proven activation lower bound (the first budget).
    upper : the activation peak of the best known order; only better orders are returned.
    deadline : ``time.monotonic()`` value to give up at (None: no limit).
    max_states : give up when the states of one round exceed this.
    stop : a stop token that interrupts the search.

    Returns
    -------
    DPOutcome
        Unproven (``proven`` False) when interrupted; ``lower_bound`` then holds what the
        finished rounds proved.
    """
    n = instance.n
    tab = _Tables.of(instance)
    tau = lower
    rounds = 0
    total = 0
    while True:
        check = _Check(deadline, max_states, stop)
        rounds += 1
        try:
            layers, cut = _round(tab, n, tau, upper, check)
        except _Abort:
            return DPOutcome(None, None, lower, False, total + check.states, rounds)
        total += sum(len(x) for x in layers)
        if len(layers) == n + 1:
            order, value = _walk_back(layers)
            return DPOutcome(order, value, value, True, total, rounds)
        lower = max(lower, cut)
        if lower >= upper:
            return DPOutcome(None, None, upper, True, total, rounds)
        # raise the budget to the least cut step at least, a quarter of the way to upper
        tau = max(cut, tau + (upper - tau) / 4)
        if tau >= upper:
            tau = math.nextafter(upper, -math.inf)
