"""A bound for the question "could any tensor-parallel split have done better?".

The bounds of a problem with split modes (:mod:`hetsched.costmodel.sharding`) hold over
the splits it models. :func:`any_split_bound` holds over every split of every op across
any devices, modelled or not (Megatron-style chains that stay sharded, row splits,
spatial tiles, elementwise ops following a sharding): each op takes at least its
:func:`~hetsched.costmodel.sharding.split_floor`, transfers are free, so the makespan is
at least the longest path of floors, and at least the least total work spread over every
device. When a target speed-up needs a makespan below it, no way of splitting reaches it
under the cost model.

Examples
--------
>>> import numpy as np
>>> from hetsched.problem import Problem
>>> p = Problem.from_arrays(names=["a", "b", "c"], devices=["x", "y"],
...     exec_time=np.array([[2.0, 3.0], [4.0, 4.0], [4.0, 4.0]]),
...     edges=[(0, 1, 1.0), (0, 2, 1.0)], quantum=1.0)
>>> any_split_bound(p, floor=np.array([1.0, 2.0, 2.5]), work=np.array([2.0, 4.0, 4.0]))
5.0
"""

from __future__ import annotations

import numpy as np

from hetsched.problem import Problem

__all__ = ["any_split_bound"]


def any_split_bound(problem: Problem, floor: np.ndarray, work: np.ndarray) -> float:
    """Seconds (the problem's real time) no schedule beats when any op may split any way:
    the longest path with each op at ``floor`` and free transfers, or the sum of ``work``
    over the number of devices, whichever is larger (see the module docstring)."""
    finish = np.asarray(floor, dtype=np.float64).copy()
    src, dst = problem.edge_src, problem.edge_dst
    for k in np.argsort(dst, kind="stable").tolist():  # preds have smaller indices
        u, v = int(src[k]), int(dst[k])
        finish[v] = max(finish[v], finish[u] + floor[v])
    path = float(finish.max()) if finish.size else 0.0
    return max(path, float(np.sum(work)) / problem.num_devices)
