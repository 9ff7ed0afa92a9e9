"""The placement relaxation's bound against every other bound, on the random suite.

For each instance of ``hetsched bench --suite random`` (the sizes, devices and CCRs given,
both cost families): the best of all other bounds (:func:`hetsched.schedule.bounds.lower_bound`)
and :func:`hetsched.schedule.latency.placement.placement_bound` within the time limit,
started from that bound (as the portfolio starts it from its own), whether it proved the
relaxation's optimum (or that bound), and its time; with ``--sequenced S``, then
:func:`~hetsched.schedule.latency.placement.sequenced_bound` (each device's ops in
sequence) from it for ``S`` seconds, as ``--solver bounds`` runs it once the relaxation's
optimum is proved.

    .venv/bin/python benchmarks/placement_bound.py --sizes 20,30,40,50 --devices 3,5,8 \\
        --ccr 10 --time-limit 20 --workers 1
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time

from hetsched.bench.instances import build_problem
from hetsched.bench.suites import random_suite
from hetsched.schedule.bounds import lower_bound
from hetsched.schedule.latency.placement import placement_bound, sequenced_bound


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", default="20,30,40,50")
    ap.add_argument("--devices", default="3,5,8")
    ap.add_argument("--ccr", default="10")
    ap.add_argument("--time-limit", type=float, default=20.0)
    ap.add_argument("--workers", type=int, default=1)
    ap.add_argument("--sequenced", type=float, default=0.0, help="seconds; 0: not run")
    args = ap.parse_args(argv)
    specs = random_suite(
        sizes=[int(x) for x in args.sizes.split(",")],
        devices=[int(x) for x in args.devices.split(",")],
        ccrs=[float(x) for x in args.ccr.split(",")],
    )
    head = "| instance | ops | best other bound | placement | change | proved | seconds |"
    print(head + (" sequenced | proved | seconds |" if args.sequenced else ""))
    print("|---" * (head.count("|") - 1 + (3 if args.sequenced else 0)) + "|")
    raised: list[float] = []
    proved_count = 0
    for spec in specs:
        p = build_problem(spec)
        old = lower_bound(p)
        t0 = time.perf_counter()
        new, proved = placement_bound(
            p, time_limit=args.time_limit, workers=args.workers, floor=old
        )
        secs = time.perf_counter() - t0
        change = 100 * (new / old - 1) if old else 0.0
        proved_count += proved
        if new > old:
            raised.append(change)
        row = f"| {spec.name} | {p.n} | {old} | {new} | {change:+.1f}% | {proved} | {secs:.2f} |"
        if args.sequenced:
            t0 = time.perf_counter()
            seq, seq_proved = sequenced_bound(
                p, time_limit=args.sequenced, workers=args.workers, floor=new
            )
            row += f" {seq} | {seq_proved} | {time.perf_counter() - t0:.2f} |"
        print(row, flush=True)
    mean = f"{statistics.mean(raised):.1f}%" if raised else "-"
    print(f"{len(raised)} of {len(specs)} raised (mean {mean}), {proved_count} proved")
    return 0


if __name__ == "__main__":
    sys.exit(main())
