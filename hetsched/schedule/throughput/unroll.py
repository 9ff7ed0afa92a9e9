"""A periodic plan as the latency plan of its first ``N`` iterations, to run and check it.

:func:`unrolled_problem` copies every op ``N`` times (``name#i``: iteration ``i``, with
its own tensors) and turns each loop-carried edge ``(u, v, distance)`` into a tensor from
``u#i`` to ``v#(i + distance)`` priced like ``u``'s largest output (as the modulo model
prices it). :func:`unrolled_plan` starts op ``v`` of iteration ``i`` at its offset plus
``i`` periods, on the same mode. The unrolled plan is an ordinary plan: the validator, the
executor and the Gantt chart take it as it is. Memory is not a constraint of the copy (the
periodic plan is checked against the static model); the executor reports what the
overlapping iterations really hold.

Examples
--------
>>> import numpy as np
>>> from hetsched.problem import Problem
>>> from hetsched.schedule.throughput.modulo import solve_modulo
>>> p = Problem.from_arrays(names=["a", "b"], devices=["x", "y"],
...     exec_time=np.array([[2.0, 4.0], [3.0, 3.0]]), edges=[(0, 1, 1.0)], quantum=1.0)
>>> plan = solve_modulo(p, time_limit=5, workers=1)
>>> u = unrolled_problem(p, 3)
>>> u.names
('a#0', 'b#0', 'a#1', 'b#1', 'a#2', 'b#2')
>>> run = unrolled_plan(plan, p, 3)
>>> ii = plan.modulo.ii
>>> [run.start[f"a#{i}"] - run.start["a#0"] for i in range(3)] == [0.0, ii, 2 * ii]
True
"""

from __future__ import annotations

import numpy as np

from hetsched.errors import UsageError
from hetsched.plan import Plan, mode_ids, plan_from_schedule, schedule_arrays, validate
from hetsched.problem import Modes, Problem, Tensors
from hetsched.schedule.throughput.modulo_plan import Carried, carried_comm, carried_index

__all__ = ["iteration_of", "unrolled_plan", "unrolled_problem"]

SEPARATOR = "#"


def iteration_of(name: str) -> tuple[str, int]:
    """``(op, iteration)`` of an unrolled op name.

    >>> iteration_of("linear_1#3")
    ('linear_1', 3)
    """
    op, _, i = name.rpartition(SEPARATOR)
    return op, int(i)


def unrolled_problem(p: Problem, iterations: int, carried: Carried = ()) -> Problem:
    """``iterations`` copies of ``p`` chained by its carried edges (module docstring)."""
    if isinstance(iterations, bool) or not isinstance(iterations, int) or iterations < 1:
        msg = f"iterations must be a positive integer, got {iterations!r}"
        raise UsageError(msg)
    n, m = p.n, p.modes
    rows = [
        (i * n + int(m.op[k]), m.devices_of(k), float(m.time[k]), float(m.memory[k]),
         m.precision[k], m.tag[k], float(m.w[k]), float(m.err[k]))
        for i in range(iterations)
        for k in range(m.num_modes)
    ]  # fmt: skip
    t = p.tensors
    tensors = [
        (i * n + int(t.src[k]), [i * n + int(c) for c in t.consumers(k)], float(t.nbytes[k]),
         f"{t.names[k]}{SEPARATOR}{i}", t.dtype[k])
        for i in range(iterations)
        for k in range(t.num_tensors)
    ]  # fmt: skip
    comm = [p.tensor_comm] * iterations
    d = p.num_devices
    for u, v, dist in carried_index(p, carried):
        for i in range(iterations - dist):
            name = f"carried:{u}->{v}#{i}"
            tensors.append((i * n + u, [(i + dist) * n + v], 0.0, name, "float32"))
            row = np.array([[carried_comm(p, u, a, b) for b in range(d)] for a in range(d)])
            comm.append(row[None, :, :].astype(np.int64))
    return Problem(
        names=tuple(f"{x}{SEPARATOR}{i}" for i in range(iterations) for x in p.names),
        devices=p.devices,
        device_kinds=p.device_kinds,
        quantum=p.quantum,
        units=p.units,
        modes=Modes.build(n * iterations, rows),
        mode_dur=np.tile(p.mode_dur, iterations).astype(np.int64),
        tensors=Tensors.build(n * iterations, tensors),
        tensor_comm=np.concatenate(comm, axis=0),
        route_links=dict(p.route_links),
        link_names=p.link_names,
        capacity=np.full(d, np.inf),
        name=f"{p.name}x{iterations}",
        platform_name=p.platform_name,
    )


def unrolled_plan(plan: Plan, p: Problem, iterations: int, carried: Carried = ()) -> Plan:
    """The first ``iterations`` iterations of the periodic ``plan`` of ``p`` as one plan of
    :func:`unrolled_problem` (validated: a valid periodic plan gives a valid one)."""
    r = plan.modulo
    if r is None:
        msg = f"plan objective {plan.objective!r} has no periodic schedule to unroll"
        raise UsageError(msg)
    u = unrolled_problem(p, iterations, carried or r.carried)
    ii = round(r.ii / p.quantum)
    modes = mode_ids(plan, p)
    start = schedule_arrays(plan, p)[1]
    offsets = np.repeat(np.arange(iterations, dtype=np.int64) * ii, p.n)
    per_op = np.concatenate([modes + i * p.modes.num_modes for i in range(iterations)])
    out = plan_from_schedule(
        u, modes=per_op, start=np.tile(start, iterations) + offsets, solver=plan.solver
    )
    validate(out, u)
    return out
