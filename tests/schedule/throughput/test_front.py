"""The period-latency front: monotone, every point a valid periodic plan whose run keeps its
period, both ends where they belong, and the command that prints and draws it."""

from __future__ import annotations

import itertools
import json

import pytest

from hetsched.cli import main
from hetsched.errors import UsageError
from hetsched.exec import execute_periodic
from hetsched.schedule.throughput.front import period_latency_front
from hetsched.schedule.throughput.modulo import validate_modulo
from tests.schedule.throughput.conftest import random_problem


@pytest.mark.parametrize("seed", range(4))
def test_the_front_is_monotone_and_every_point_runs(seed: int) -> None:
    p = random_problem(40 + seed, n=9, d=3)
    front = period_latency_front(p, points=5, time_limit=6, workers=1, seed=seed)
    assert front
    for a, b in itertools.pairwise(front):
        assert a.period < b.period and a.latency > b.latency
    for x in front:
        assert x.latency_bound <= x.latency + 1e-9
        validate_modulo(x.plan, p, iterations=6)
        run = execute_periodic(x.plan, p, iterations=3)
        assert run.measured_period == pytest.approx(x.period)
        assert max(run.latencies) == pytest.approx(x.latency)


def test_the_front_refuses_problems_with_more_modes_than_devices() -> None:
    from tests.exec.test_memory import random_weights_problem

    with pytest.raises(UsageError, match="one mode per"):
        period_latency_front(random_weights_problem(0), time_limit=2)


def test_throughput_front_command(tmp_path, capsys) -> None:
    out, png = tmp_path / "front.json", tmp_path / "front.png"
    assert main(["throughput-front", "mlp", "--points", "4", "--time-limit", "8",
                 "-o", str(out), "--plot", str(png)]) == 0  # fmt: skip
    text = capsys.readouterr().out
    assert "period" in text and "latency" in text
    doc = json.loads(out.read_text())
    assert doc["points"] and png.stat().st_size > 0
    periods = [x["period"] for x in doc["points"]]
    assert periods == sorted(periods)
    assert main(["throughput-front", "mlp", "--points", "1"]) == 2
    assert "--points must be >= 2" in capsys.readouterr().err
