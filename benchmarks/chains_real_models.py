"""Megatron-style plans of eleven models nobody here wrote, split 2 and 4 ways: the split
program with its sharded chains against eager.

For each model of ``tests/models/build.py`` (HuggingFace, torchvision, diffusers; random
weights): ``torch.export``, import, fuse, split modes on multi-gpu; then, for gpu0+gpu1 and
for all four GPUs, HEFT on the Megatron-style restriction (every op that can split splits
across that group, keeping tensors sharded along the chains where it can:
:func:`~hetsched.schedule.latency.splits.fixed_sharding`), the plan validated against the
whole problem, ``partition.apply`` checked against eager and ``exec.execute`` run on the
virtual clock. A plan is made to use as many chains as the model has: what the rewrite of
the program must cope with.

``--recipe tokens``: sequence parallelism instead (every op that can split by tokens
does, kept sharded wherever its readers take it so:
:func:`~hetsched.schedule.latency.splits.token_sharding`).

Run::

    .venv/bin/python benchmarks/chains_real_models.py [--models gpt2,llama] [--recipe tokens]

Prints a markdown table and exits 1 if any model failed.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def main(argv: list[str] | None = None) -> int:
    import torch

    from hetsched.exec import execute
    from hetsched.exec.program import outputs_close
    from hetsched.graph import fuse
    from hetsched.graph.resolve import import_program
    from hetsched.partition import apply
    from hetsched.plan import validate
    from hetsched.problem import Problem
    from hetsched.problem.chains import kept_layout
    from hetsched.schedule.latency.heuristics import solve_heft
    from hetsched.schedule.latency.splits import fixed_sharding, on_group, token_sharding
    from tests.models.build import MODELS, build

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", default=",".join(MODELS))
    ap.add_argument("--recipe", choices=("megatron", "tokens"), default="megatron")
    args = ap.parse_args(argv)
    recipe = fixed_sharding if args.recipe == "megatron" else token_sharding
    print("| model | GPUs | ops | split ops | kept sharded | layouts | split = eager "
          "| run = eager | s |")  # fmt: skip
    print("|---|---|---|---|---|---|---|---|---|")
    failed = 0
    for name in args.models.split(","):
        t0 = time.perf_counter()
        try:
            model, inputs = build(name)
            ep = torch.export.export(model, inputs, strict=False)
            graph = fuse(import_program(ep, name=name))
            problem = Problem.build(graph, "multi-gpu", split=True)
            for group in ((1, 2), (1, 2, 3, 4)):
                plan = solve_heft(recipe(on_group(problem, group)), time_limit=5)
                validate(plan, problem)
                kept = [x for x in plan.modes.values() if kept_layout(x.tag)]
                layouts = sorted({kept_layout(x.tag) for x in kept} - {None})
                split = apply(plan, ep, graph)
                same = outputs_close(split(*inputs), ep.module()(*inputs))
                run = execute(plan, problem, graph=graph, program=ep, inputs=list(inputs))
                failed += not (same and run.outputs_match)
                print(
                    f"| {name} | {len(group)} | {len(graph.nodes)} | "
                    f"{sum(len(x.devices) > 1 for x in plan.modes.values())} | {len(kept)} | "
                    f"{', '.join(layouts) or '—'} | {same} | {run.outputs_match} | "
                    f"{time.perf_counter() - t0:.1f} |",
                    flush=True,
                )
        except Exception as err:  # a row per model, whatever failed
            failed += 1
            print(f"| {name} | — | — | — | — | — | {type(err).__name__}: {err} | — | — |")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
