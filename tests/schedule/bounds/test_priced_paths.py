"""The priced longest path: a Lagrangian bound for the error budget and resident weights,
below the brute-force optimum, above the plain critical path where either binds."""

from __future__ import annotations

import numpy as np
import pytest

from hetsched.problem import Modes, Problem, Tensors
from hetsched.schedule.bounds import critical_path_bound, lower_bound, priced_path_bound
from tests.plan.test_liveness import brute_force_live, live_problem
from tests.problem.test_precision_modes import brute_force_budget, tiny

SEEDS = range(16)


@pytest.mark.parametrize("seed", SEEDS)
def test_below_the_live_optimum_when_weights_compete_for_memory(seed: int) -> None:
    p = live_problem(seed)
    best = brute_force_live(p)
    if best is None:
        pytest.skip("no schedule fits this instance")
    assert priced_path_bound(p) <= best


@pytest.mark.parametrize("seed", range(12))
def test_below_the_optimum_within_the_error_budget(seed: int) -> None:
    p = tiny(seed)
    assert priced_path_bound(p) <= brute_force_budget(p)


def test_it_binds_where_the_budget_does() -> None:
    raised = [s for s in range(12) if priced_path_bound(tiny(s)) > critical_path_bound(tiny(s))]
    assert len(raised) >= 6, raised


def weight_chain(capacity: float) -> Problem:
    """Three ops in a chain on one NPU, each 2 with its 4 bytes of weights resident or 5
    streamed; ``capacity`` bytes of SRAM."""
    resident, streamed = (2.0, 4.0, "native", "", 4.0), (5.0, 0.0, "native", "streamed", 0.0)
    rows = [(v, (0,), *r) for v in range(3) for r in (resident, streamed)]
    return Problem.from_modes(
        names=["a", "b", "c"], devices=["npu"], modes=Modes.build(3, rows),
        tensors=Tensors.build(3, [(0, (1,), 0.0), (1, (2,), 0.0)]),
        capacity=np.array([capacity]), use_memory=True, quantum=1.0,
    )  # fmt: skip


def test_it_binds_where_memory_holds_two_weights_of_three() -> None:
    p = weight_chain(8.0)
    assert brute_force_live(p) == 2 + 2 + 5
    assert critical_path_bound(p) == 6
    # at 3/4 per byte both modes cost 5: 3 * 5 - 8 * 3/4 = 9
    assert priced_path_bound(p) == lower_bound(p) == 9
    assert priced_path_bound(weight_chain(12.0)) == 0  # every weight fits: nothing to price
