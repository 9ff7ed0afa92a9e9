"""Why each op went where it went: cost there, the runner-up, what a move would cost.

:func:`explain` takes a plan and its problem (and the graph, for module paths and fused
parts) and reports, for every op: its device(s), precision and what else its mode decided
(split, quantized, weights streamed, fused), its time there, the *runner-up* (the fastest
mode on another device set) with its time, the makespan of the plan re-timed with only that
op moved to the runner-up (same dispatch order: what moving it alone costs; a re-solve with
the op pinned there can only do as well or better), and, for every other device, what ruled
it out: a user's rule, no support (or no memory to hold it), or simply more time. A summary
per module (the first ``depth`` parts of the ``nn.Module`` path) fits on one screen.

Examples
--------
>>> import numpy as np
>>> from hetsched.problem import Problem
>>> from hetsched.schedule.latency.heuristics import solve_heft
>>> p = Problem.from_arrays(names=["a", "b"], devices=["cpu", "gpu"],
...     exec_time=np.array([[4.0, 1.0], [3.0, np.inf]]), edges=[(0, 1, 1.0)], quantum=1.0)
>>> e = explain(solve_heft(p, time_limit=5), p)
>>> [(o.name, o.devices, o.runner_up, o.move_makespan) for o in e.ops]
[('a', ('gpu',), 'cpu', 7.0), ('b', ('cpu',), None, None)]
>>> e.ops[1].excluded
{'gpu': 'does not support it'}
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from hetsched.costmodel.sharding import describe_split
from hetsched.plan import Plan, mode_ids, schedule_arrays
from hetsched.problem import DEFAULT_PRECISION, Problem
from hetsched.problem.chains import chain_ok, kept_layout
from hetsched.problem.problem import is_streamed
from hetsched.schedule.latency.listsched import priority_order, retime_modes

if TYPE_CHECKING:
    from hetsched.graph.opgraph import OpGraph

__all__ = ["Explanation", "ModuleSummary", "OpExplanation", "explain"]

# Above this many ops the per-op re-timing (one pass over the graph per op) is skipped.
MOVE_MAX_OPS = 5000


@dataclass(frozen=True)
class OpExplanation:
    """One op's decision and its alternatives (times in the plan's units)."""

    name: str
    module: str
    devices: tuple[str, ...]
    precision: str
    decided: tuple[str, ...]
    time: float
    runner_up: str | None
    runner_up_time: float | None
    move_makespan: float | None
    excluded: Mapping[str, str] = field(default_factory=dict)

    def move_cost(self, makespan: float) -> float | None:
        """How much longer the plan gets with this op moved to its runner-up."""
        return None if self.move_makespan is None else self.move_makespan - makespan


@dataclass(frozen=True)
class ModuleSummary:
    """Ops of one module (path prefix): devices, op time, decisions, the dearest move."""

    module: str
    ops: int
    devices: Mapping[str, int]
    time: float
    decided: Mapping[str, int]
    dearest_move: float | None


@dataclass(frozen=True)
class Explanation:
    """Every op's :class:`OpExplanation` and the per-module :class:`ModuleSummary`."""

    makespan: float
    units: str
    ops: tuple[OpExplanation, ...]
    modules: tuple[ModuleSummary, ...]

    def to_dict(self) -> dict[str, Any]:
        return {
            "makespan": self.makespan,
            "units": self.units,
            "ops": [asdict(o) for o in self.ops],
            "modules": [asdict(m) for m in self.modules],
        }

    def module_table(self, fmt: Any = str) -> str:
        """The per-module summary as text (``fmt`` formats a time)."""
        lines = [f"{'module':<24} {'ops':>4}  {'devices':<32} {'op time':>10}  "
                 f"{'dearest move':>12}  decided"]  # fmt: skip
        for m in self.modules:
            devs = ", ".join(f"{d} {k}" for d, k in m.devices.items())
            move = "-" if m.dearest_move is None else "+" + fmt(m.dearest_move)
            done = ", ".join(f"{k} {v}" for k, v in m.decided.items()) or "-"
            lines.append(f"{m.module[:24]:<24} {m.ops:>4}  {devs[:32]:<32} {fmt(m.time):>10}  "
                         f"{move:>12}  {done}")  # fmt: skip
        return "\n".join(lines)

    def op_table(self, fmt: Any = str) -> str:
        """Every op: device, time, runner-up and the makespan cost of moving it."""
        lines = [f"{'op':<28} {'device':<10} {'time':>9}  {'runner-up':<10} {'time':>9}  "
                 f"{'move cost':>10}  decided / ruled out"]  # fmt: skip
        for o in self.ops:
            cost = o.move_cost(self.makespan)
            move = "-" if cost is None else ("+" if cost >= 0 else "") + fmt(cost)
            alt_t = "-" if o.runner_up_time is None else fmt(o.runner_up_time)
            why = list(o.decided) + [f"{d}: {r}" for d, r in o.excluded.items()
                                     if not r.startswith(("slower", "runner-up"))]  # fmt: skip
            lines.append(
                f"{o.name[:28]:<28} {'+'.join(o.devices)[:10]:<10} {fmt(o.time):>9}  "
                f"{(o.runner_up or '-')[:10]:<10} {alt_t:>9}  {move:>10}  {'; '.join(why)}"
            )
        return "\n".join(lines)


def explain(
    plan: Plan, problem: Problem, graph: OpGraph | None = None, *, depth: int = 2
) -> Explanation:
    """Explain ``plan`` of ``problem`` (module docstring); ``graph`` gives module paths
    and fused parts; ``depth`` path parts name a module in the summary."""
    q = problem.quantum
    modes = mode_ids(plan, problem)
    _, raw = schedule_arrays(plan, problem)
    order = priority_order(problem, raw)
    nodes = {x.name: x for x in graph.nodes} if graph is not None else {}
    ops = []
    for v, name in enumerate(problem.names):
        m = int(modes[v])
        node = nodes.get(name)
        alt = _runner_up(problem, v, m, modes)
        moved = None
        if alt is not None and problem.n <= MOVE_MAX_OPS:
            trial = modes.copy()
            trial[v] = alt
            start, _ = retime_modes(problem, trial, order)
            moved = float((start + problem.mode_dur[trial]).max()) * q
        ops.append(
            OpExplanation(
                name=name,
                module=node.module if node is not None else "",
                devices=tuple(problem.devices[d] for d in problem.modes.devices_of(m)),
                precision=problem.modes.precision[m],
                decided=_decided(problem, m, node),
                time=float(problem.mode_dur[m]) * q,
                runner_up=None if alt is None else problem.devices[_first(problem, alt)],
                runner_up_time=None if alt is None else float(problem.mode_dur[alt]) * q,
                move_makespan=moved,
                excluded=_excluded(problem, v, m, alt),
            )
        )
    return Explanation(plan.makespan, plan.units, tuple(ops), _modules(ops, plan.makespan, depth))


def _first(p: Problem, m: int) -> int:
    return int(p.modes.devs[p.modes.dev_start[m]])


def _runner_up(p: Problem, v: int, chosen: int, modes: np.ndarray) -> int | None:
    """The fastest mode of ``v`` on another device set than ``chosen``'s that the plan's
    other modes (``modes``) allow: a sharded chain's ends move together or not at all
    (``None``: none)."""
    here = tuple(p.modes.devices_of(chosen))

    def follows(k: int) -> bool:
        ins = all(chain_ok(p.modes, int(modes[u]), k) for u, _ in p.preds[v])
        return ins and all(chain_ok(p.modes, k, int(modes[w])) for w, _ in p.succs[v])

    others = [
        k
        for k in p.modes.ops_modes(v).tolist()
        if tuple(p.modes.devices_of(k)) != here and (not p.has_chains or follows(k))
    ]
    return min(others, key=lambda k: (int(p.mode_dur[k]), k)) if others else None


def _decided(p: Problem, m: int, node: Any) -> tuple[str, ...]:
    out = []
    devs = p.modes.devices_of(m)
    if len(devs) > 1:
        where = "+".join(p.devices[d] for d in devs)
        tag = p.modes.tag[m]
        if describe_split(tag) == "replica":
            out.append(f"whole on each of {where}")
        else:
            how = describe_split(tag) or "split"
            out.append(f"{how} split over {where}")
            if kept_layout(tag):
                out.append("output kept sharded for the next op")
    precision = p.modes.precision[m]
    if precision not in (DEFAULT_PRECISION, getattr(node, "dtype", DEFAULT_PRECISION)):
        out.append(precision)
    if is_streamed(p.modes.tag[m]):
        out.append("weights streamed")
    parts = getattr(node, "parts", ())
    if len(parts) > 1:
        out.append(f"fused {len(parts)} ops")
    return tuple(out)


def _excluded(p: Problem, v: int, chosen: int, alt: int | None) -> dict[str, str]:
    """Why each device the op does not use is not used."""
    used = set(p.modes.devices_of(chosen))
    best: dict[int, int] = {}
    for k in p.modes.ops_modes(v).tolist():
        devs = p.modes.devices_of(k)
        if len(devs) == 1:
            d = devs[0]
            best[d] = min(best.get(d, int(p.mode_dur[k])), int(p.mode_dur[k]))
    rules = p.constraints
    out = {}
    for d in range(p.num_devices):
        if d in used:
            continue
        name = p.devices[d]
        if rules is not None and not rules.allowed[v, d]:
            out[name] = f"ruled out by {rules.rules_of(v)}"
        elif d not in best:
            out[name] = "does not support it" + (" or cannot hold it" if p.use_memory else "")
        elif alt is not None and d == _first(p, alt):
            out[name] = "runner-up"
        else:
            out[name] = f"slower ({best[d] * p.quantum:.3g} {p.units})"
    return out


def _modules(ops: list[OpExplanation], makespan: float, depth: int) -> tuple[ModuleSummary, ...]:
    groups: dict[str, list[OpExplanation]] = {}
    for o in ops:
        key = ".".join(o.module.split(".")[:depth]) if o.module else "(no module)"
        groups.setdefault(key, []).append(o)
    out = []
    for key, members in groups.items():
        devices: dict[str, int] = {}
        decided: dict[str, int] = {}
        for o in members:
            devices["+".join(o.devices)] = devices.get("+".join(o.devices), 0) + 1
            for x in o.decided:
                tag = {"weights": "streamed"}.get(x.split(" ")[0], x.split(" ")[0])
                decided[tag] = decided.get(tag, 0) + 1
        costs = [c for o in members if (c := o.move_cost(makespan)) is not None]
        out.append(
            ModuleSummary(
                module=key,
                ops=len(members),
                devices=dict(sorted(devices.items(), key=lambda kv: -kv[1])),
                time=float(np.sum([o.time for o in members])),
                decided=decided,
                dearest_move=max(costs) if costs else None,
            )
        )
    return tuple(out)
