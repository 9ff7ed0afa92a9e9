"""Per-device heads and tails (with pairs of inputs serialised): valid in every schedule."""

from __future__ import annotations

import numpy as np
import pytest

from hetsched.problem import Problem
from hetsched.schedule.bounds import device_finish_times, device_heads_tails, device_tail_times
from hetsched.schedule.latency.listsched import priority_order, retime
from tests.bruteforce import random_tiny_problem
from tests.families import FAMILIES, random_problem, series_problem


def _join() -> Problem:
    """``a`` and ``b`` (3 units, only on x) feed ``c``; ``c`` feeds ``d`` and ``e``
    (3 units, only on x)."""
    inf = np.inf
    return Problem.from_arrays(
        names=list("abcde"),
        devices=["x", "y"],
        exec_time=np.array([[3.0, inf], [3.0, inf], [1.0, 1.0], [3.0, inf], [3.0, inf]]),
        edges=[(0, 2, 1.0), (1, 2, 1.0), (2, 3, 1.0), (2, 4, 1.0)],
        comm_latency=np.array([[0.0, 2.0], [2.0, 0.0]]),
        quantum=1.0,
    )


def test_two_inputs_made_on_one_device_arrive_one_after_the_other() -> None:
    p = _join()
    # alone, each input ends at 3; on the one device they share, the later ends at 6
    assert device_finish_times(p)[2].tolist() == [4, 6]
    assert device_finish_times(p, pairs=8)[2].tolist() == [7, 9]
    # mirrored: d and e both wait for c and share x
    assert device_tail_times(p)[2].tolist() == [4, 6]
    assert device_tail_times(p, pairs=8)[2].tolist() == [7, 9]


def _problem(seed: int) -> Problem:
    kind = seed % 6
    if kind < 4:
        return random_problem(seed, n=6 + seed % 10, family=FAMILIES[kind], devices=2 + seed % 3)
    if kind == 4:
        return random_tiny_problem(seed, n=5 + seed % 6, devices=2 + seed % 3)
    return series_problem(seed, segments=2, width=2 + seed % 3, devices=2 + seed % 2)


@pytest.mark.parametrize("seed", range(60))
def test_heads_and_tails_hold_in_every_list_schedule(seed: int) -> None:
    # every (assignment, topological order) dispatched as early as possible is a schedule:
    # none starts an op before its head or leaves less than its tail after it
    p = _problem(seed)
    head, tail = device_heads_tails(p)
    rng = np.random.default_rng(seed)
    ops = np.arange(p.n)
    for _ in range(40):
        assign = np.array([rng.choice(np.flatnonzero(p.allowed[v])) for v in range(p.n)])
        start, _ = retime(p, assign, priority_order(p, rng.random(p.n)))
        finish = start + p.dur[ops, assign]
        assert (start >= head[ops, assign]).all()
        assert (finish.max() - finish >= tail[ops, assign]).all()
