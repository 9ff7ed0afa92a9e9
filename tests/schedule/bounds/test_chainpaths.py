"""The longest path over modes with the sharded-chain rule: below every optimum, above the
device-view critical path where chains bind."""

from __future__ import annotations

import numpy as np
import pytest

from hetsched.graph import fuse, zoo
from hetsched.plan import validate
from hetsched.problem import Problem
from hetsched.schedule.bounds import critical_path_bound, lower_bound, quick_lower_bound
from hetsched.schedule.bounds.chainpaths import chain_path_bound
from hetsched.schedule.latency.heuristics import solve_heft
from tests.partition.test_shard import chain
from tests.problem.test_relaxation import brute_force


@pytest.mark.parametrize(
    ("widths", "rows", "platform"),
    [
        ([256, 1024, 256], 64, "edge-soc"),
        ([256, 1024, 256, 512], 128, "multi-gpu"),
        ([1024, 4096, 1024], 512, "multi-gpu"),
        ([512, 512, 2048], 32, "edge-soc"),
    ],
)
def test_below_the_brute_force_optimum(widths: list[int], rows: int, platform: str) -> None:
    p = Problem.build(chain(widths, rows=rows), platform, memory=False, split=True)
    assert p.has_chains
    best = brute_force(p)
    assert best is not None
    twin = p.floored
    assert chain_path_bound(twin) <= best
    assert chain_path_bound(twin) >= critical_path_bound(twin)
    assert lower_bound(p) <= best


def test_a_chain_binds_its_readers_where_the_relaxation_mixed_modes() -> None:
    """gpt base on four GPUs: the relaxation took projections kept sharded by tokens and,
    after them, attention reading by heads (no keys to gather), which no plan can do."""
    p = Problem.build(fuse(zoo.graph("gpt", "base")), "multi-gpu", split=True)
    twin = p.floored
    chained = chain_path_bound(twin)
    assert chained > 1.03 * critical_path_bound(twin)
    assert quick_lower_bound(p) >= chained
    plan = solve_heft(p, time_limit=10)
    validate(plan, p)
    assert plan.makespan >= chained * p.quantum
    assert chain_path_bound(p.without_chains().floored) == 0  # nothing to bind


def test_no_chains_no_bound() -> None:
    p = Problem.build(chain([64, 64]), "edge-soc", memory=False)
    assert chain_path_bound(p) == 0
    assert np.isfinite(lower_bound(p))
