"""Benchmarks: our solvers and anrg-saga peers side by side on suites of instances.

:func:`run_bench` builds a suite, runs every solver and peer on every instance (serially or on
Ray), judges every schedule with our validator and writes the report (see
:mod:`hetsched.bench.output`). The ``hetsched bench`` command is a thin wrapper over it.

Examples
--------
>>> cfg = BenchConfig(suite="random", solvers=("heft",), peers=(), quick=True)
>>> cfg.effective_time_limit()
2.0
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from hetsched.bench.instances import InstanceSpec
from hetsched.errors import UsageError
from hetsched.solver import StopToken

__all__ = ["BenchConfig", "build_suite", "run_bench"]

DEFAULT_SOLVERS = ("heft", "peft", "cpop", "cpsat")
DEFAULT_PEERS = ("saga-heft", "saga-cpop", "saga-minmin", "saga-maxmin", "saga-etf",
                 "saga-fastest", "saga-sufferage", "saga-hbmct")  # fmt: skip


@dataclass(frozen=True)
class BenchConfig:
    """Everything a benchmark run depends on (stored in ``results.json``)."""

    suite: str
    out: str = "bench-out"
    directory: str | None = None
    solvers: Sequence[str] = DEFAULT_SOLVERS
    peers: Sequence[str] = DEFAULT_PEERS
    time_limit: float | None = None
    quick: bool = False
    jobs: int = 1
    workers: int = 1
    ray_address: str | None = None
    seed: int = 0
    hash_seed: int = 0
    graphs: Sequence[str] = ()
    platform: str | None = None
    processors: Sequence[int] | None = None
    sizes: Sequence[int] | None = None
    devices: Sequence[int] | None = None
    ccrs: Sequence[float] | None = None
    betas: Sequence[float] | None = None
    limit: int | None = None
    split: bool = False
    progress: bool = True
    plots: bool = True
    command: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    def effective_time_limit(self) -> float:
        """``time_limit``, else 2 s with ``quick`` and 10 s without."""
        return float(self.time_limit or (2.0 if self.quick else 10.0))


def build_suite(cfg: BenchConfig) -> list[InstanceSpec]:
    """The instances of ``cfg.suite``."""
    from hetsched.bench import suites

    if cfg.split and cfg.suite != "models":
        msg = f"--split applies to --suite models, not {cfg.suite}"
        raise UsageError(msg)
    if cfg.suite == "random":
        return suites.random_suite(
            quick=cfg.quick, sizes=cfg.sizes, devices=cfg.devices, ccrs=cfg.ccrs, betas=cfg.betas
        )
    if cfg.suite == "memory-bound":
        return suites.memory_suite(
            quick=cfg.quick, sizes=cfg.sizes, devices=cfg.devices, ccrs=cfg.ccrs
        )
    if cfg.suite == "stg":
        if not cfg.directory:
            msg = "--suite stg needs --dir (a directory of .stg files with optimal_*proc.csv)"
            raise UsageError(msg)
        return suites.stg_suite(
            cfg.directory, processors=cfg.processors, quick=cfg.quick, limit=cfg.limit
        )
    if cfg.suite == "models":
        return suites.models_suite(quick=cfg.quick, split=cfg.split)
    if cfg.suite == "workflows":
        return suites.workflows_suite(cfg.out, directory=cfg.directory, quick=cfg.quick)
    if cfg.suite == "graphs":
        if not cfg.graphs or not cfg.platform:
            msg = "--suite graphs needs --graphs PATHS and --platform P"
            raise UsageError(msg)
        return suites.graphs_suite(cfg.graphs, cfg.platform)
    msg = f"unknown suite {cfg.suite!r} (choose from {', '.join(suites.SUITES)})"
    raise UsageError(msg)


def run_bench(cfg: BenchConfig, *, stop: StopToken | None = None) -> dict[str, Any]:
    """Run the benchmark of ``cfg`` and write its report to ``cfg.out``; returns the summary
    with ``rows`` and the list of ``files`` written."""
    from hetsched.bench.output import write_outputs
    from hetsched.bench.report import instance_rows, summarize
    from hetsched.bench.runner import make_tasks, run_tasks
    from hetsched.bench.saga_peer import PEERS
    from hetsched.solver import SOLVERS

    bad = [s for s in cfg.solvers if s not in SOLVERS]
    bad += [p for p in cfg.peers if p not in PEERS]
    if bad:
        msg = (
            f"unknown solver or peer {bad[0]!r} (solvers: {', '.join(sorted(SOLVERS))}; "
            f"peers: {', '.join(PEERS)})"
        )
        raise UsageError(msg)
    if cfg.workers < 1:
        raise UsageError(f"--workers must be at least 1, got {cfg.workers}")
    if cfg.peers:
        try:
            import saga  # noqa: F401
        except ImportError as err:
            msg = "peers need anrg-saga: pip install 'hetsched[bench]' (or pass --peers '')"
            raise UsageError(msg) from err
    specs = build_suite(cfg)
    if cfg.limit and cfg.suite != "stg":
        specs = specs[: cfg.limit]
    tasks = make_tasks(
        specs,
        cfg.solvers,
        cfg.peers,
        time_limit=cfg.effective_time_limit(),
        seed=cfg.seed,
        hash_seed=cfg.hash_seed,
        workers=cfg.workers,
    )
    t0 = time.perf_counter()
    results = run_tasks(
        tasks, jobs=cfg.jobs, ray_address=cfg.ray_address, progress=cfg.progress, stop=stop
    )
    wall = time.perf_counter() - t0
    records = [r for rs in results for r in rs]
    rows = instance_rows(records, {s.name: s for s in specs})
    summary = summarize(rows)
    summary["wall_time"] = wall
    summary["interrupted"] = stop is not None and stop.is_set()  # rows: the tasks that ran
    config = asdict(cfg)
    config["time_limit"] = cfg.effective_time_limit()
    files = write_outputs(
        Path(cfg.out),
        config=config,
        specs=[s.to_dict() for s in specs],
        rows=rows,
        summary=summary,
        plots=cfg.plots,
    )
    return {**summary, "rows": rows, "files": files}
