"""Exact minimum-peak order with CP-SAT: positions, tensor lifetimes and one cumulative.

Op ``v`` runs in the unit slot ``[pos_v, pos_v + 1)``; a tensor lives in the interval from its
producer's slot to ``end_t >= pos_d + 1`` for every reader ``d``; a graph output from its op's
slot to ``n``. A cumulative over the tensor intervals, with the tensors' bytes as demands and
the objective as capacity, bounds the live bytes at every position. Demands are floored to
integers and divided by their gcd, so the proven bound stays valid for fractional sizes.

Examples
--------
>>> from hetsched.graph import OpGraph, OpNode, Tensor
>>> g = OpGraph("branches", [OpNode(x) for x in ("a", "b1", "b2", "c1", "c2")]
...             + [OpNode("z", out_bytes=1.0, param_bytes=2.0)],
...             tensors=[Tensor("x", "a", ("b1", "b2"), 1.0), Tensor("y1", "b1", ("c1",), 9.0),
...                      Tensor("y2", "b2", ("c2",), 9.0), Tensor("s1", "c1", ("z",), 1.0),
...                      Tensor("s2", "c2", ("z",), 1.0)])
>>> from hetsched.schedule.memory.instance import MemoryInstance
>>> out = solve_order_cpsat(MemoryInstance.from_graph(g), hint=[0, 1, 2, 3, 4, 5], lower=0.0,
...                         time_limit=5.0, seed=0, workers=1)
>>> out.order.tolist(), out.lower_bound, out.proven
([0, 1, 3, 2, 4, 5], 11.0, True)
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from hetsched.errors import SolverError
from hetsched.schedule.cpsolver import new_cp_solver, solve_cp
from hetsched.schedule.memory.bounds import reachability
from hetsched.schedule.memory.instance import MemoryInstance

if TYPE_CHECKING:
    from collections.abc import Sequence

    from hetsched.solver import StopToken

__all__ = ["CPOutcome", "solve_order_cpsat"]


@dataclass(frozen=True)
class CPOutcome:
    """CP-SAT's best order (None if none found), its proven activation bound, and the status."""

    order: np.ndarray | None
    lower_bound: float
    proven: bool
    status: str


@dataclass
class _Vars:
    op_to_pos: list[Any] = field(default_factory=list)
    tensor_to_end: dict[int, Any] = field(default_factory=dict)
    intervals: list[Any] = field(default_factory=list)
    demands: list[int] = field(default_factory=list)
    cap: Any = None


def _scale(instance: MemoryInstance) -> tuple[np.ndarray, np.ndarray, int]:
    """Integer demands of tensors and outputs (floored) over their gcd, and the gcd."""
    t = np.floor(instance.nbytes).astype(np.int64)
    s = np.floor(instance.sink_bytes).astype(np.int64)
    g = int(np.gcd.reduce(np.concatenate([t[t > 0], s[s > 0], [0]])))
    g = max(g, 1)
    return t // g, s // g, g


def _add_positions(model: Any, v: _Vars, instance: MemoryInstance) -> None:
    # pos_v in [#ancestors, n - 1 - #descendants]; one op per slot
    n = instance.n
    reach = reachability(instance) if n <= 2000 else np.eye(n, dtype=bool)
    anc, desc = reach.sum(axis=0) - 1, reach.sum(axis=1) - 1
    for i, name in enumerate(instance.names):
        v.op_to_pos.append(model.new_int_var(int(anc[i]), n - 1 - int(desc[i]), f"pos_{name}"))
    slots = [model.new_fixed_size_interval_var(p, 1, f"slot_{instance.names[i]}")
             for i, p in enumerate(v.op_to_pos)]  # fmt: skip
    model.add_no_overlap(slots)
    model.add_all_different(v.op_to_pos)


def _add_precedence(model: Any, v: _Vars, instance: MemoryInstance) -> None:
    # pos_u + 1 <= pos_w for every producer u of a tensor read by w
    for u, w in instance.edges():
        model.add(v.op_to_pos[u] + 1 <= v.op_to_pos[w])


def _add_lifetimes(model: Any, v: _Vars, instance: MemoryInstance, dt: np.ndarray,
                   ds: np.ndarray) -> None:  # fmt: skip
    # tensor t lives over [pos_src, end_t), end_t >= pos_d + 1 for every reader d
    n = instance.n
    start = instance.cons_start.tolist()
    cons = instance.cons.tolist()
    for t, u in enumerate(instance.src.tolist()):
        if dt[t] <= 0:
            continue
        end = model.new_int_var(1, n, f"end_t{t}")
        for d in cons[start[t] : start[t + 1]]:
            model.add(end >= v.op_to_pos[d] + 1)
        size = model.new_int_var(1, n, f"life_t{t}")
        v.intervals.append(model.new_interval_var(v.op_to_pos[u], size, end, f"live_t{t}"))
        v.demands.append(int(dt[t]))
        v.tensor_to_end[t] = end
    # an output lives over [pos_v, n)
    for i in np.flatnonzero(ds > 0).tolist():
        size = model.new_int_var(1, n, f"life_out_{instance.names[i]}")
        out = model.new_interval_var(v.op_to_pos[i], size, n, f"out_{instance.names[i]}")
        v.intervals.append(out)
        v.demands.append(int(ds[i]))


def _add_memory(model: Any, v: _Vars, lower: int, upper: int) -> None:
    # sum of demands of the intervals alive at any position <= cap
    v.cap = model.new_int_var(lower, max(lower, upper), "peak")
    model.add_cumulative(v.intervals, v.demands, v.cap)
    model.minimize(v.cap)


def _add_hint(
    model: Any, v: _Vars, instance: MemoryInstance, hint: Sequence[int] | np.ndarray
) -> None:
    pos = np.empty(instance.n, dtype=np.int64)
    pos[np.asarray(hint, dtype=np.int64)] = np.arange(instance.n)
    for i, p in enumerate(v.op_to_pos):
        model.add_hint(p, int(pos[i]))
    start = instance.cons_start
    for t, end in v.tensor_to_end.items():
        model.add_hint(end, int(pos[instance.cons[start[t] : start[t + 1]]].max()) + 1)


def solve_order_cpsat(
    instance: MemoryInstance,
    *,
    hint: Sequence[int] | np.ndarray,
    lower: float,
    time_limit: float,
    seed: int,
    workers: int,
    stop: StopToken | None = None,
    export_path: str | None = None,
) -> CPOutcome:
    """Minimise the activation peak with CP-SAT, hinted with ``hint`` (a valid order).

    ``lower`` is a proven activation bound (the objective's floor). ``export_path`` writes
    the model there (OR-Tools' ``export_to_file``) for debugging.
    """
    from ortools.sat.python import cp_model

    model = cp_model.CpModel()
    dt, ds, g = _scale(instance)
    v = _Vars()
    _add_positions(model, v, instance)
    _add_precedence(model, v, instance)
    _add_lifetimes(model, v, instance, dt, ds)
    upper = int(dt.sum() + ds.sum())
    integral = bool(np.all(dt * g == instance.nbytes) and np.all(ds * g == instance.sink_bytes))
    # the bound holds for the floored demands only when flooring changed nothing
    floor = min(math.floor(lower / g), upper) if integral else 0
    _add_memory(model, v, floor, upper)
    _add_hint(model, v, instance, hint)
    if export_path is not None:
        model.export_to_file(export_path)
    solver = new_cp_solver(time_limit=time_limit, workers=workers, seed=seed)
    status = solve_cp(solver, model, stop)
    if status == cp_model.OPTIMAL:
        name = "optimal"
    elif status == cp_model.FEASIBLE:
        name = "feasible"
    elif status == cp_model.UNKNOWN:
        return CPOutcome(None, lower, False, "unknown")
    else:
        msg = f"CP-SAT memory order of {instance.name!r}: unexpected status {status}"
        raise SolverError(msg)
    pos = np.array([solver.value(p) for p in v.op_to_pos], dtype=np.int64)
    order = np.argsort(pos, kind="stable")
    bound = max(lower, float(solver.best_objective_bound) * g)
    return CPOutcome(order, bound, name == "optimal", name)
