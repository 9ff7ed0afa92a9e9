"""The longest path over modes, with the sharded-chain rule (:mod:`hetsched.problem.chains`).

The device-view relaxation the other bounds use lets each op take its fastest mode alone:
a linear layer kept sharded by tokens and, after it, attention reading queries, keys and
values sharded by heads, which no plan can do (a mode that keeps its output sharded
binds its readers' modes). Here each op's finish is computed per mode:

``f(v, k) = dur(k) + max over inputs u of min over modes j of u that may feed k of
(f(u, j) + delay(j, k))``

with ``delay(j, k)`` the least time the tensor takes to reach every device of ``k`` that
``j`` does not hold it on (from the nearest device of ``j``). In any plan, each op ``v``
in its mode ``s(v)`` ends no earlier than ``f(v, s(v))`` (by induction over the
topological order: its inputs' modes are among those minimised over), so the makespan is
at least ``max over v of min over k of f(v, k)``.

Examples
--------
>>> from hetsched.problem import Modes, Problem, Tensors
>>> modes = Modes.build(2, [(0, (0, 1), 2.0, 0, "native", "split:column+keep:cols"),
...                         (0, (0,), 4.0), (1, (0, 1), 5.0, 0, "native", "split:row+from:cols"),
...                         (1, (0,), 1.0)])
>>> p = Problem.from_modes(names=["a", "b"], devices=["x", "y"], modes=modes,
...     tensors=Tensors.build(2, [(0, (1,), 1.0)]), quantum=1.0)
>>> chain_path_bound(p)   # 2 + 5 with the chain, 4 + 1 without: never 2 + 1
5
"""

from __future__ import annotations

import numpy as np

from hetsched.problem import Problem
from hetsched.problem.chains import kept_layout

__all__ = ["chain_path_bound"]

_BIG = np.iinfo(np.int64).max // 8


def chain_path_bound(problem: Problem) -> int:
    """The bound of the module docstring, in integer units of ``problem`` (a bound of the
    real problem when ``problem`` is its rounded-down twin); 0 without sharded chains."""
    p = problem
    if not p.has_chains:
        return 0
    m = p.modes
    member = np.zeros((m.num_modes, p.num_devices), dtype=bool)
    for k in range(m.num_modes):
        member[k, list(m.devices_of(k))] = True
    follow = {(k, v): ok for k, v, ok in p.chain_rules}
    keeps = np.array([kept_layout(t) is not None for t in m.tag], dtype=bool)
    dur = np.asarray(p.mode_dur, dtype=np.int64)
    finish: list[np.ndarray] = []
    for v in range(p.n):  # ops are in topological order
        ids = m.ops_modes(v)
        start = np.zeros(ids.size, dtype=np.int64)
        for u, e in p.preds[v]:
            uids = m.ops_modes(u)
            comm = np.minimum(np.asarray(p.comm[e], dtype=np.int64), _BIG)
            # nearest[j, b]: the tensor reaches b from mode j's nearest device (0 on it)
            nearest = np.where(member[uids][:, :, None], comm[None, :, :], _BIG).min(axis=1)
            nearest[member[uids]] = 0
            delay = np.where(member[ids][None, :, :], nearest[:, None, :], 0).max(axis=2)
            cand = finish[u][:, None] + delay
            for row in np.flatnonzero(keeps[uids]).tolist():
                ok = np.isin(ids, follow.get((int(uids[row]), v), ()))
                cand[row, ~ok] = _BIG
            start = np.maximum(start, cand.min(axis=0))
        finish.append(np.minimum(start + dur[ids], _BIG))
    return int(max(int(f.min()) for f in finish)) if finish else 0
