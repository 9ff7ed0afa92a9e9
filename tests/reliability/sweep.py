"""A bench sweep through the library API, and the check that no result was lost."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any

SWEEP_SOLVERS = ("heft", "peft", "cpop", "cpsat")
# 5 sizes x 4 device counts x 5 betas x 5 CCRs = 500 instances
FULL = {
    "sizes": (8, 10, 12, 15, 20),
    "devices": (2, 3, 4, 5),
    "betas": (0.0, 0.5, 1.0, 1.5, 2.0),
    "ccrs": (0.1, 0.5, 1.0, 5.0, 10.0),
}


def run_sweep(out: Path, *, limit: int | None, time_limit: float = 1.0) -> dict[str, Any]:
    """Run the sweep (first ``limit`` instances) with one job; return the bench summary."""
    from hetsched.bench import BenchConfig, run_bench

    cfg = BenchConfig(suite="random", out=str(out), solvers=SWEEP_SOLVERS, peers=(),
                      time_limit=time_limit, jobs=1, progress=False, plots=False, limit=limit,
                      **FULL)  # fmt: skip
    return run_bench(cfg)


def lost_results(res: dict[str, Any], out: Path) -> dict[str, Any]:
    """Instances, rows, and every (instance, solver) with no valid row, in memory and on disk."""
    doc = json.loads((out / "results.json").read_text())
    names = [s["name"] for s in doc["instances"]]
    seen = Counter((r["instance"], r["solver"]) for r in doc["rows"] if r["valid"])
    missing = [(i, s) for i in names for s in SWEEP_SOLVERS if seen[(i, s)] != 1]
    return {
        "instances": len(names),
        "rows": len(doc["rows"]),
        "rows_in_memory": len(res["rows"]),
        "lost": missing,
        "interrupted": bool(doc["summary"].get("interrupted")),
        "statuses": dict(Counter(r["status"] for r in doc["rows"])),
    }
