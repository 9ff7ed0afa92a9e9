"""Costs of real models under one version of hetsched: unknown ops, embedding bytes, makespan.

Run it once with the code before a change and once after, on the same machine::

    git worktree add /tmp/base 982165c
    .venv/bin/python benchmarks/op_costs_before_after.py /tmp/base   # before
    .venv/bin/python benchmarks/op_costs_before_after.py .           # after

``root`` is the hetsched checkout to import; the models come from this checkout's
``tests/models/build.py`` (plus GPT-2 124M from ``transformers``, 64 tokens). Each graph is
imported without fusion and solved with the portfolio on edge-soc (10 s, seed 0, 2 workers).
"""

from __future__ import annotations

import importlib.util
import os
import sys
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parents[1]


def _builder() -> Any:
    spec = importlib.util.spec_from_file_location("model_builders", HERE / "tests/models/build.py")
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod.build


def main(root: str) -> None:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    sys.path.insert(0, str(Path(root).resolve()))
    import torch
    from transformers import GPT2Config, GPT2Model

    import hetsched
    from hetsched.graph.torch_import import from_exported
    from hetsched.problem import Problem
    from hetsched.schedule.latency.portfolio import solve_portfolio

    print("hetsched from", hetsched.__file__)

    def report(name: str, graph: Any) -> None:
        emb = [n for n in graph.nodes if "embedding" in n.op]
        cats: dict[str, int] = {}
        for n in graph.nodes:
            cats[n.category] = cats.get(n.category, 0) + 1
        plan = solve_portfolio(Problem.build(graph, "edge-soc"), time_limit=10, seed=0, workers=2)
        print(
            f"{name}: ops {len(graph.nodes)} other {cats.get('other', 0)} "
            f"emb_read_MB {sum(n.bytes_read for n in emb) / 1e6:.2f} "
            f"makespan_us {plan.makespan * 1e6:.1f} bound_us {plan.lower_bound * 1e6:.1f} "
            f"status {plan.status}",
            flush=True,
        )

    class LastHidden(torch.nn.Module):
        def __init__(self, m: torch.nn.Module) -> None:
            super().__init__()
            self.m = m

        def forward(self, ids: torch.Tensor) -> torch.Tensor:
            return self.m(input_ids=ids, use_cache=False).last_hidden_state

    cfg = GPT2Config()
    torch.manual_seed(0)
    ids = torch.randint(0, cfg.vocab_size, (1, 64), generator=torch.Generator().manual_seed(0))
    ep = torch.export.export(LastHidden(GPT2Model(cfg).eval()), (ids,), strict=False)
    report("gpt2-124m", from_exported(ep, name="gpt2"))
    build = _builder()
    for name in ["llama", "mobilenet_v3_small", "t5-encoder"]:
        model, args = build(name)
        report(name, from_exported(torch.export.export(model, args, strict=False), name=name))


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else str(HERE))
