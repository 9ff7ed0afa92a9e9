"""Golden tests: CP-SAT reaches and proves published STG optima (Kasahara STG set)."""

import csv

import pytest

import hetsched
from hetsched.graph import read_stg
from tests.paths import DATA

STG = DATA / "stg50"


def optima() -> list[tuple[str, int, int]]:
    rows = []
    with open(STG / "optima.csv", newline="") as f:
        for row in csv.reader(f):
            if len(row) == 3 and row[0].strip():
                rows.append((row[0].split("/")[-1], int(row[1]), int(row[2])))
    return rows


@pytest.mark.parametrize(("name", "procs", "optimum"), optima())
def test_cpsat_proves_published_optimum(name, procs, optimum):
    graph = read_stg(STG / name)
    plan = hetsched.solve(graph, f"homogeneous-{procs}", solver="cpsat", time_limit=60, seed=0)
    assert plan.makespan == optimum
    assert plan.status == "optimal"
    assert plan.lower_bound == optimum
