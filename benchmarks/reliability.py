"""Reliability figures: executor load, a 500-instance bench sweep, CP-SAT determinism.

    .venv/bin/python benchmarks/reliability.py [--runs 1000] [--instances 500] [--out F]

Writes a JSON of the figures (default ``benchmarks/results/reliability.json``) that
RELIABILITY.md quotes. The heavy hypothesis run is separate:
``HYPOTHESIS_PROFILE=nightly .venv/bin/python -m pytest tests/reliability``.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def determinism(seeds: int = 5) -> dict[str, object]:
    """CP-SAT plans over repeated runs: 1 worker vs 4 workers, finished vs time-limited."""
    from hetsched.plan import plan_to_dict
    from hetsched.schedule.latency.cpsat import solve_cpsat
    from tests.families import random_problem

    def fp(plan):
        d = plan_to_dict(plan)
        d.pop("solve_time", None)
        d.pop("stats", None)
        return json.dumps(d, sort_keys=True)

    out: dict[str, object] = {}
    for label, n, limit in (("n12-finishes", 12, 10.0), ("n80-time-limited", 80, 1.0)):
        for workers in (1, 4):
            differ = 0
            for seed in range(seeds):
                p = random_problem(seed, n=n, devices=4, family="layered", ccr=2.0)
                plans = {fp(solve_cpsat(p, time_limit=limit, seed=seed, workers=workers))
                         for _ in range(3)}  # fmt: skip
                differ += len(plans) > 1
            out[f"{label}-workers{workers}"] = f"{differ}/{seeds} instances gave different plans"
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=1000)
    ap.add_argument("--instances", type=int, default=500)
    ap.add_argument("--skip", default="", help="comma list of load,sweep,determinism")
    ap.add_argument("--out", default=str(ROOT / "benchmarks/results/reliability.json"))
    args = ap.parse_args()
    skip = set(args.skip.split(","))
    from tests.reliability.load import run_load
    from tests.reliability.sweep import lost_results, run_sweep

    figures: dict[str, object] = {"started": time.strftime("%Y-%m-%d %H:%M:%S")}
    if "load" not in skip:
        figures["load"] = run_load(args.runs, "mlp")
        print("load", figures["load"], flush=True)
    if "sweep" not in skip:
        with tempfile.TemporaryDirectory() as d:
            t0 = time.perf_counter()
            res = run_sweep(Path(d), limit=args.instances, time_limit=1.0)
            sweep = lost_results(res, Path(d))
            sweep["wall_s"] = round(time.perf_counter() - t0, 1)
            sweep["lost_count"] = len(sweep.pop("lost"))
        figures["sweep"] = sweep
        print("sweep", sweep, flush=True)
    if "determinism" not in skip:
        figures["cpsat_determinism"] = determinism()
        print("determinism", figures["cpsat_determinism"], flush=True)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(figures, indent=1) + "\n")
    print(f"wrote {args.out}")
    lost = figures.get("sweep", {}).get("lost_count", 0)  # type: ignore[union-attr]
    return 1 if lost else 0


if __name__ == "__main__":
    sys.exit(main())
