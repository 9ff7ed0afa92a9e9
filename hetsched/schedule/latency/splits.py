"""Tensor-parallel baselines over the split modes of a problem (:mod:`hetsched.costmodel.sharding`).

:func:`fixed_sharding` is the Megatron-LM recipe as a restriction: every op that can split
runs split across the largest group of identical devices it has a split mode on (attention
by heads, linear layers by output features, convolutions by output channels), keeping
tensors sharded along the chains where it can (a linear layer by output features, then
attention by heads or a linear layer by input features), and only the other ops are
placed freely; token splits (sequence parallelism, :mod:`hetsched.costmodel.tokens`) are
not part of it. :func:`without_splits` is the problem before splitting. Both
are restrictions: a solver's plan of either is a plan of the whole problem, and their
bounds are not its bounds. :data:`solve_megatron`, :data:`solve_sequence` (on
:func:`token_sharding`) and :data:`solve_whole` are the portfolio
on each, as solvers (``hetsched bench --suite models --split --solvers
whole,megatron,sequence,portfolio`` sets them side by side).

Examples
--------
>>> from hetsched.graph import OpGraph, OpNode
>>> from hetsched.problem import Problem
>>> fc = OpNode("fc", "aten.linear.default", "matmul", flops=4e9, bytes_read=4.4e6,
...             bytes_written=4e5, param_bytes=4e6, out_bytes=4e5, shape=(100, 1000))
>>> p = Problem.build(OpGraph("g", [fc]), "multi-gpu", split=True)
>>> sorted({int(p.modes.width[k]) for k in range(p.num_modes)})
[1, 2, 4]
>>> fixed = fixed_sharding(p)
>>> [fixed.describe_mode(k).devices for k in range(fixed.num_modes)]
[('gpu0', 'gpu1', 'gpu2', 'gpu3')]
>>> without_splits(p).modes.multi_device
False
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from hetsched.errors import SolverError
from hetsched.plan import Plan
from hetsched.problem import Problem
from hetsched.problem.chains import kept_layout, taken_layout
from hetsched.problem.problem import is_streamed
from hetsched.solver import Capabilities, SolveContext, Solver

__all__ = [
    "any_split_bound_of",
    "fixed_sharding",
    "is_split",
    "is_token_split",
    "on_group",
    "solve_megatron",
    "solve_sequence",
    "solve_whole",
    "split_report",
    "token_sharding",
    "without_splits",
    "without_token_splits",
]


def is_split(problem: Problem) -> np.ndarray:
    """Whether each mode of ``problem`` is a tensor-parallel split."""
    from hetsched.costmodel.sharding import describe_split

    return np.array([describe_split(t) is not None for t in problem.modes.tag], dtype=bool)


def without_splits(problem: Problem) -> Problem:
    """``problem`` without its split modes (every op whole, as before splitting)."""
    split = is_split(problem)
    if not split.any():
        return problem
    return problem.select_modes(np.flatnonzero(~split), name=problem.name)


def is_token_split(problem: Problem) -> np.ndarray:
    """Whether each mode of ``problem`` is a token split (:mod:`hetsched.costmodel.tokens`)."""
    from hetsched.costmodel.sharding import describe_split
    from hetsched.costmodel.tokens import TOKENS

    return np.array([describe_split(t) == TOKENS for t in problem.modes.tag], dtype=bool)


def without_token_splits(problem: Problem) -> Problem:
    """``problem`` without its token splits (sequence parallelism)."""
    tokens = is_token_split(problem)
    if not tokens.any():
        return problem
    return problem.select_modes(np.flatnonzero(~tokens), name=problem.name)


def on_group(problem: Problem, group: tuple[int, ...]) -> Problem:
    """``problem`` with its multi-device modes only across the devices ``group``."""
    m = problem.modes
    keep = [k for k in range(m.num_modes) if m.width[k] == 1 or m.devices_of(k) == group]
    return problem.select_modes(np.array(keep, dtype=np.int64), name=problem.name)


def fixed_sharding(problem: Problem) -> Problem:
    """``problem`` with every op that has split modes restricted to those across its
    widest device group (see the module docstring)."""
    problem = without_token_splits(problem)  # sequence parallelism is not Megatron's recipe
    split = is_split(problem)
    if not split.any():
        return problem
    try:  # Megatron's chains where the problem has them
        return _widest(problem, split, prefer=(taken_layout, kept_layout))
    except SolverError:  # a reader lost its sharded modes (memory): gather instead
        return _widest(problem, split, prefer=())


def token_sharding(problem: Problem) -> Problem:
    """``problem`` with every op that can split by tokens (:mod:`hetsched.costmodel.tokens`)
    restricted to those splits across its widest group, kept sharded wherever its readers
    take them so (sequence parallelism as a fixed recipe); every other op runs whole."""
    tokens = is_token_split(problem)
    sub = problem.select_modes(np.flatnonzero(tokens | ~is_split(problem)), name=problem.name)
    for prefer in ((kept_layout,), ()):
        try:
            return _widest(sub, is_token_split(sub), prefer=prefer)
        except SolverError:  # a reader lost its sharded modes (memory): gather instead
            continue
    return sub


def _widest(
    problem: Problem, split: np.ndarray, *, prefer: tuple[Callable[[str], str | None], ...]
) -> Problem:
    """Each op's modes of ``split`` across its widest group (all its modes where it has
    none), narrowed by each of ``prefer`` in turn to the modes whose tag it finds a
    layout in, where there are any (:mod:`hetsched.problem.chains`)."""
    m = problem.modes
    keep: list[int] = []
    for v in range(problem.n):
        ids = m.ops_modes(v)
        mine = ids[split[ids]]
        if mine.size == 0:
            keep += ids.tolist()
            continue
        mine = mine[m.width[mine] == int(m.width[mine].max())]
        for layout in prefer:
            chosen = mine[[layout(m.tag[k]) is not None for k in mine.tolist()]]
            mine = chosen if chosen.size else mine
        keep += mine.tolist()
    return problem.select_modes(np.array(keep, dtype=np.int64), name=problem.name)


def any_split_bound_of(
    problem: Problem, graph: Any, platform: Any, cost_model: Any = None
) -> float:
    """:func:`~hetsched.schedule.bounds.anysplit.any_split_bound` of ``problem`` (built
    from ``graph`` on ``platform``), in seconds: with the precisions its modes compute in,
    what no split of any op (modelled or not) beats."""
    from hetsched.costmodel.precision import PRECISIONS
    from hetsched.costmodel.sharding import split_floor
    from hetsched.schedule.bounds.anysplit import any_split_bound

    precisions = sorted(set(problem.modes.precision) & set(PRECISIONS))
    floor, work = split_floor(graph, platform, cost_model, precisions=precisions)
    return any_split_bound(problem, floor, work)


def split_report(plan: Plan, problem: Problem) -> dict[str, dict[str, Any]]:
    """For each op ``plan`` runs split: how (``column``, ``channels``, ``heads``,
    ``row``), on which devices, the layout it leaves its output sharded in (``keeps``)
    and reads its input sharded in (``takes``; :mod:`hetsched.problem.chains`), its time
    there and the time of its fastest whole mode on one of those devices, in the same
    precision and with its weights held the same way (what the split saves on the op
    itself; the makespan may gain more or less)."""
    from hetsched.costmodel.sharding import describe_split
    from hetsched.plan import mode_ids

    m = problem.modes
    split = is_split(problem)
    chosen = mode_ids(plan, problem)
    out: dict[str, dict[str, Any]] = {}
    for v, op in enumerate(problem.names):
        how = describe_split(m.tag[int(chosen[v])])
        if how is None:
            continue
        ids = m.ops_modes(v)
        k0 = int(chosen[v])
        streamed = is_streamed(m.tag[k0])
        same = np.array(
            [
                m.precision[k] == m.precision[k0]
                and is_streamed(m.tag[k]) == streamed
                and set(m.devices_of(k)) <= set(m.devices_of(k0))
                for k in ids
            ],
            dtype=bool,
        )
        whole = ids[~split[ids] & same]
        out[op] = {
            "split": how,
            "devices": list(plan.modes[op].devices),
            "keeps": kept_layout(m.tag[k0]),
            "takes": taken_layout(m.tag[k0]),
            "time": plan.finish[op] - plan.start[op],
            "whole": float(m.time[whole].min()) if whole.size else float("inf"),
        }
    return out


def _restricted(restrict: Callable[[Problem], Problem]) -> Callable[..., Plan]:
    """The portfolio on ``restrict(problem)``; the plan keeps only a bound of ``problem``
    itself (a restriction's bound is none of the question's)."""

    def run(problem: Problem, ctx: SolveContext, **_: Any) -> Plan:
        from hetsched.schedule.bounds import quick_lower_bound
        from hetsched.schedule.latency.portfolio import solve_portfolio

        plan = solve_portfolio.within(restrict(problem), ctx.child())
        bound = quick_lower_bound(problem) * problem.quantum
        return plan.with_bound(bound, searched=False)

    return run


solve_megatron = Solver(
    "megatron",
    _restricted(fixed_sharding),
    Capabilities(workers=True, modes=True),
)
"""Baseline: the portfolio with every op that can split split across its widest group."""

solve_whole = Solver(
    "whole",
    _restricted(without_splits),
    Capabilities(workers=True, modes=True),
)
"""Baseline: the portfolio with every op whole (the plan before splits)."""

solve_sequence = Solver(
    "sequence",
    _restricted(token_sharding),
    Capabilities(workers=True, modes=True),
)
"""Baseline: the portfolio with every op that can split by tokens split so across its
widest group (sequence parallelism as a fixed recipe)."""
