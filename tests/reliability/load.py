"""The executor under load: N consecutive runs of a zoo model plan in one process.

Measures threads (``threading.active_count``) and memory (RSS from ``/proc/self/status``,
Python heap from ``tracemalloc``) before, during and after; the slope is a least-squares
fit of RSS over the second half of the runs (after caches have warmed).
"""

from __future__ import annotations

import gc
import threading
import time
import tracemalloc
from typing import Any

import numpy as np


def rss_kib() -> int:
    with open("/proc/self/status", encoding="ascii") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def zoo_case(model: str = "mlp") -> dict[str, Any]:
    """Exported zoo model, its graph, the edge-soc problem and a HEFT plan."""
    import torch

    import hetsched
    from hetsched.graph import zoo
    from hetsched.graph.torch_import import from_exported
    from hetsched.problem import Problem

    torch.manual_seed(0)
    module, args = zoo.build(model, "tiny")
    ep = torch.export.export(module.eval(), args)
    graph = from_exported(ep, name=model)
    problem = Problem.build(graph, "edge-soc")
    plan = hetsched.solve(graph, "edge-soc", solver="heft", time_limit=5)
    return {"ep": ep, "graph": graph, "problem": problem, "plan": plan, "inputs": args}


def run_load(runs: int, model: str = "mlp", *, trace_heap: bool = True) -> dict[str, Any]:
    """Execute the plan ``runs`` times; return thread and memory figures."""
    from hetsched.exec import execute

    case = zoo_case(model)
    kw = {"graph": case["graph"], "program": case["ep"], "inputs": case["inputs"]}
    execute(case["plan"], case["problem"], **kw)  # warm-up: lazy imports, torch caches
    gc.collect()
    threads_before = threading.active_count()
    if trace_heap:
        tracemalloc.start()
    heap0 = tracemalloc.get_traced_memory()[0] if trace_heap else 0
    rss, max_threads, mismatches = [rss_kib()], threads_before, 0
    t0 = time.perf_counter()
    for _ in range(runs):
        res = execute(case["plan"], case["problem"], **kw)
        mismatches += res.outputs_match is False
        max_threads = max(max_threads, threading.active_count())
        rss.append(rss_kib())
    wall = time.perf_counter() - t0
    gc.collect()
    heap1 = tracemalloc.get_traced_memory()[0] if trace_heap else 0
    if trace_heap:
        tracemalloc.stop()
    half = rss[len(rss) // 2 :]
    slope = float(np.polyfit(np.arange(len(half)), half, 1)[0]) if len(half) > 2 else 0.0
    return {
        "model": model,
        "ops": case["problem"].n,
        "runs": runs,
        "wall_s": round(wall, 2),
        "ms_per_run": round(1e3 * wall / max(runs, 1), 2),
        "threads_before": threads_before,
        "threads_after": threading.active_count(),
        "threads_max_between_runs": max_threads,
        "rss_kib_first": rss[0],
        "rss_kib_last": rss[-1],
        "rss_growth_kib": rss[-1] - rss[0],
        "rss_slope_kib_per_run_2nd_half": round(slope, 3),
        "heap_growth_bytes": heap1 - heap0,
        "output_mismatches": int(mismatches),
    }
