"""Benchmark suites: lists of :class:`~hetsched.bench.instances.InstanceSpec`.

* ``random``: seeded layered DAGs, sizes x devices x CCR x {related, unrelated} families.
* ``memory-bound``: the same DAGs whose weights the fast devices hold only 20-50% of.
* ``stg``: ``.stg`` files of a directory with published optima (``optimal_{P}proc.csv``,
  rows ``path,processors,optimal`` or ``path,processors,lb,ub``).
* ``models``: zoo models on each preset platform (skipped when the zoo is not available).
* ``workflows``: WfCommons recipes generated offline, or the ``*.json`` files of ``--dir``.
* ``graphs``: the user's own graph files on one platform.

Examples
--------
>>> [s.name for s in random_suite(quick=True)][:2]
['rnd-n20-d3-ccr0.1-related-a1-s0', 'rnd-n20-d3-ccr1-related-a1-s0']
>>> read_optima_rows(["50/rand0000.stg,2,131", "50/rand0060.stg,2,157,165"])
{('rand0000', 2): (131.0, 131.0), ('rand0060', 2): (157.0, 165.0)}
"""

from __future__ import annotations

import itertools
import os
import warnings
from collections.abc import Iterable, Sequence
from pathlib import Path

from hetsched.bench.instances import InstanceSpec, random_spec
from hetsched.errors import UsageError

__all__ = [
    "SUITES",
    "graphs_suite",
    "memory_suite",
    "models_suite",
    "random_suite",
    "read_optima_rows",
    "stg_suite",
    "workflows_suite",
]

SUITES = ("random", "memory-bound", "stg", "models", "workflows", "graphs")


def random_suite(
    *,
    quick: bool = False,
    sizes: Sequence[int] | None = None,
    devices: Sequence[int] | None = None,
    ccrs: Sequence[float] | None = None,
    betas: Sequence[float] | None = None,
    seeds: Sequence[int] = (0,),
) -> list[InstanceSpec]:
    """The random suite (defaults: 20-1000 ops, 3/5/8 devices, CCR 0.1/1/10, beta 0/1)."""
    if quick:
        sizes, devices, betas = sizes or (20, 50), devices or (3,), betas or (0.0, 1.0)
    sizes = sizes or (20, 50, 100, 300, 1000)
    devices = devices or (3, 5, 8)
    ccrs = ccrs or (0.1, 1.0, 10.0)
    betas = betas if betas is not None else (0.0, 1.0)
    return [
        random_spec(n, d, c, seed=s, beta=b)
        for n, d, b, s, c in itertools.product(sizes, devices, betas, seeds, ccrs)
    ]


def memory_suite(
    *,
    quick: bool = False,
    sizes: Sequence[int] | None = None,
    devices: Sequence[int] | None = None,
    ccrs: Sequence[float] | None = None,
    holds: Sequence[float] = (0.2, 0.5),
    seeds: Sequence[int] = (0,),
) -> list[InstanceSpec]:
    """Memory-bound random DAGs (defaults: 30-500 ops, 3/5 devices, CCR 1, unrelated
    costs, the fast devices holding 20% and 50% of the weights).

    >>> [s.name for s in memory_suite(quick=True)][:1]
    ['rnd-n30-d3-ccr1-unrel1-a1-s0-hold0.2']
    """
    sizes = sizes or ((30, 100) if quick else (30, 100, 300, 500))
    devices = devices or ((3,) if quick else (3, 5))
    ccrs = ccrs or (1.0,)
    return [
        random_spec(n, d, c, seed=s, beta=1.0, hold=h, suite="memory-bound")
        for n, d, s, c, h in itertools.product(sizes, devices, seeds, ccrs, holds)
    ]


def read_optima_rows(rows: Iterable[str]) -> dict[tuple[str, int], tuple[float, float]]:
    """``{(graph stem, P): (lb, ub)}`` from optima CSV rows (``lb == ub`` when optimal)."""
    out: dict[tuple[str, int], tuple[float, float]] = {}
    for row in rows:
        parts = [x.strip() for x in row.split(",")]
        if len(parts) < 3 or not parts[1].isdigit():
            continue  # header or blank
        key = (Path(parts[0]).stem, int(parts[1]))
        lb = float(parts[2])
        out[key] = (lb, float(parts[3]) if len(parts) > 3 else lb)
    return out


def stg_suite(
    directory: str | os.PathLike[str],
    *,
    processors: Sequence[int] | None = None,
    quick: bool = False,
    limit: int | None = None,
) -> list[InstanceSpec]:
    """STG instances of ``directory`` on the processor counts with an optima CSV."""
    root = Path(directory)
    files = sorted(root.glob("*.stg"))
    if not files:
        msg = f"{root}: no .stg files"
        raise UsageError(msg)
    optima: dict[tuple[str, int], tuple[float, float]] = {}
    for csv in sorted(root.glob("*.csv")):
        optima.update(read_optima_rows(csv.read_text(encoding="utf-8").splitlines()))
    procs = sorted(processors or {p for _, p in optima} or {2, 4, 8})
    if quick:
        files, limit = files[:3], None
        procs = procs[:2]
    if limit:
        files = files[:limit]
    specs = []
    for p in procs:
        for f in files:
            lb, ub = optima.get((f.stem, p), (None, None))
            specs.append(
                InstanceSpec(
                    f"{f.stem}-p{p}",
                    "stg",
                    "stg",
                    {"path": str(f), "processors": p},
                    optimum=lb if lb is not None and lb == ub else None,
                    known_lb=lb,
                    known_ub=ub,
                )
            )
    return specs


def models_suite(
    *, quick: bool = False, size: str = "tiny", split: bool = False
) -> list[InstanceSpec]:
    """Zoo models on every preset platform (with ``split``, with tensor-parallel split
    modes); empty if the zoo is not present."""
    try:
        from hetsched.costmodel import Platform
        from hetsched.graph import zoo
    except ImportError:
        return []
    names = [m.name for m in zoo.list_models()]
    platforms = [p for p in Platform.presets() if p != "homogeneous-N"]
    if quick:
        names, platforms = [x for x in names if x in ("mlp", "gpt")], platforms[:1]
    extra = {"split": True} if split else {}
    return [
        InstanceSpec(
            f"{m}-{size}@{pl}{'+split' if split else ''}",
            "models",
            "model",
            {"model": m, "size": size, "platform": pl, **extra},
        )
        for m in names
        for pl in platforms
    ]


def workflows_suite(
    out_dir: str | os.PathLike[str],
    *,
    directory: str | os.PathLike[str] | None = None,
    quick: bool = False,
    sizes: Sequence[int] = (100, 300),
    devices: int = 4,
    seed: int = 0,
) -> list[InstanceSpec]:
    """WfFormat JSON files of ``directory``, else recipes generated into ``out_dir``."""
    from hetsched.bench import workflows as wf

    if directory is not None:
        paths = sorted(Path(directory).glob("*.json"))
    else:
        recipes = ("montage", "epigenomics") if quick else wf.RECIPES
        sizes = (100,) if quick else sizes
        paths = []
        for r, n in itertools.product(recipes, sizes):
            path = Path(out_dir) / "workflows" / f"{r}-{n}-s{seed}.json"
            if not path.exists():
                try:
                    wf.generate(r, n, seed, path)
                except ValueError as err:  # a recipe's smallest graph is bigger than n
                    warnings.warn(f"workflow {r}-{n} skipped: {err}", stacklevel=2)
                    continue
            paths.append(path)
    return [
        InstanceSpec(p.stem, "workflows", "workflow", {"path": str(p), "devices": devices})
        for p in paths
    ]


def graphs_suite(paths: Sequence[str], platform: str) -> list[InstanceSpec]:
    """The user's graph files (``.stg`` or ``hetsched.graph/1`` or ``/2`` JSON) on ``platform``."""
    return [
        InstanceSpec(
            f"{Path(p).stem}@{Path(platform).stem}",
            "graphs",
            "graph",
            {"path": str(p), "platform": platform},
        )
        for p in paths
    ]
