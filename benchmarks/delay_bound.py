"""The transfer-counting bound against the bounds before it, on the random suite.

For each instance of ``hetsched bench --suite random`` (the sizes, devices and CCRs given,
both cost families): the best of the critical path, load, series and (up to 300 ops) LP
bounds, and :func:`hetsched.schedule.bounds.delays.delay_bound`, with its time; how many
instances it raises, by how much.

    .venv/bin/python benchmarks/delay_bound.py --sizes 30,100,300,1000 --devices 3,5,8 \\
        --ccr 1,10
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time

from hetsched.bench.instances import build_problem
from hetsched.bench.suites import random_suite
from hetsched.schedule.bounds import (
    critical_path_bound,
    load_bound,
    lp_bound,
    series_lower_bound,
)
from hetsched.schedule.bounds.delays import delay_bound


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", default="30,100,300,1000")
    ap.add_argument("--devices", default="3,5,8")
    ap.add_argument("--ccr", default="1,10")
    args = ap.parse_args(argv)
    specs = random_suite(
        sizes=[int(x) for x in args.sizes.split(",")],
        devices=[int(x) for x in args.devices.split(",")],
        ccrs=[float(x) for x in args.ccr.split(",")],
    )
    print("| instance | ops | best bound before | delay bound | change | seconds |")
    print("|---|---|---|---|---|---|")
    raised: dict[str, list[float]] = {}
    counts: dict[str, int] = {}
    for spec in specs:
        p = build_problem(spec)
        lp = lp_bound(p) if p.n <= 300 else 0
        old = max(critical_path_bound(p), load_bound(p), series_lower_bound(p), lp)
        t0 = time.perf_counter()
        new = delay_bound(p)
        secs = time.perf_counter() - t0
        change = 100 * (new / old - 1) if old else 0.0
        ccr = spec.name.split("-")[3]
        counts[ccr] = counts.get(ccr, 0) + 1
        if new > old:
            raised.setdefault(ccr, []).append(change)
        print(f"| {spec.name} | {p.n} | {old} | {new} | {change:+.1f}% | {secs:.3f} |", flush=True)
    for ccr, n in counts.items():
        up = raised.get(ccr, [])
        mean = f"{statistics.mean(up):.1f}%" if up else "-"
        print(f"{ccr}: {len(up)} of {n} raised, mean raise {mean}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
