"""STG suite on the bundled instances with published optima."""

from __future__ import annotations

import shutil
from pathlib import Path

from hetsched.bench import BenchConfig, run_bench

DATA = Path(__file__).parents[1] / "data" / "stg50"
# from ../shared/benchmarks/stg50/optimal_{2,4}proc.csv
ROWS = {2: "50/rand0000.stg,2,131\n50/rand0001.stg,2,149\n",
        4: "50/rand0000.stg,4,66\n50/rand0001.stg,4,94\n"}  # fmt: skip


def test_stg_suite_reaches_and_proves_optima(tmp_path):
    d = tmp_path / "stg"
    d.mkdir()
    for name in ("rand0000", "rand0001"):
        shutil.copy(DATA / f"{name}.stg", d)
    for p, text in ROWS.items():
        (d / f"optimal_{p}proc.csv").write_text(text)
    cfg = BenchConfig(
        suite="stg", directory=str(d), out=str(tmp_path / "out"), solvers=("heft", "cpsat"),
        peers=(), time_limit=4.0, progress=False, plots=False,
    )  # fmt: skip
    res = run_bench(cfg)
    assert res["instances"] == 4
    cp = res["solvers"]["cpsat"]
    assert cp["with_known_opt"] == 4 and cp["reached_opt"] == 4
    assert cp["mean_gap_to_opt"] == 0.0
    rows = [r for r in res["rows"] if r["solver"] == "cpsat"]
    assert {r["optimum"] for r in rows} == {131.0, 149.0, 66.0, 94.0}
    assert all(r["makespan"] >= r["optimum"] for r in res["rows"] if r["valid"])
