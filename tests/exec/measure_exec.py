"""Measure dispatch overhead and scaled-clock fidelity: ``python -m tests.exec.measure_exec``.

Not a test: prints one line per (model, clock, time_scale) with the median and p99 dispatch
overhead (µs) and realized / planned makespan over several runs.
"""

from __future__ import annotations

import statistics
import sys


def main(reps: int = 5) -> None:
    import numpy as np
    import torch

    from hetsched.exec import execute
    from hetsched.graph import zoo
    from hetsched.graph.torch_import import from_exported
    from hetsched.schedule.latency.heuristics import solve_heft
    from tests.exec.helpers import exported, spread_problem

    cases = {"attention": exported("attention")}
    for name in ("gpt", "resnet"):
        model, args = zoo.build(name, "tiny")
        ep = torch.export.export(model, args)
        cases[name] = (ep, from_exported(ep, name=name), args)
    print(f"torch threads {torch.get_num_threads()}")
    for name, (ep, g, args) in cases.items():
        p = spread_problem(g, seed=1)
        plan = solve_heft(p, time_limit=5, seed=0)
        n_dev = len(set(plan.assignment.values()))
        for clock, scale in (("virtual", 1.0), ("scaled", 1.0), ("scaled", 5.0), ("scaled", 20.0)):
            med, p99, ratio, ok = [], [], [], True
            for _ in range(reps):
                r = execute(plan, p, graph=g, program=ep, inputs=args, clock=clock,
                            time_scale=scale)  # fmt: skip
                med.append(r.dispatch_median_us)
                p99.append(r.dispatch_p99_us)
                ratio.append(r.makespan / plan.makespan)
                ok = ok and bool(r.outputs_match)
            print(
                f"{name:<9} {len(p.names):4d} ops {n_dev} dev  {clock:<7} x{scale:<4g} "
                f"plan {plan.makespan * 1e3:7.2f} ms  dispatch median {statistics.median(med):6.1f}"
                f" us p99 {statistics.median(p99):7.1f} us  realized/planned "
                f"median {np.median(ratio):.4f} max {max(ratio):.4f}  outputs {ok}"
            )


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 5)
