"""Turn benchmark records into per-instance rows and a summary per solver.

Reference values per instance: ``best`` = the smallest valid makespan of any solver or peer
(or the published upper bound, if smaller); ``lb`` = the largest proven lower bound (ours,
any solver's, or the published one). A solver's ``ratio`` is makespan / best, ``ratio_heft``
makespan / our HEFT's, ``gap`` (makespan - lb) / makespan. Invalid or missing results count
as losses and are left out of the geometric means (the ``valid`` column says how many).

Examples
--------
>>> recs = [
...   {"instance": "a", "solver": "heft", "makespan": 10.0, "lower_bound": 8.0,
...    "status": "heuristic", "valid": True},
...   {"instance": "a", "solver": "cpsat", "makespan": 9.0, "lower_bound": 9.0,
...    "status": "optimal", "valid": True}]
>>> rows = instance_rows(recs, {})
>>> [(r["solver"], round(r["ratio"], 3), r["gap"]) for r in rows]
[('heft', 1.111, 0.1), ('cpsat', 1.0, 0.0)]
>>> s = summarize(rows)
>>> s["solvers"]["cpsat"]["proved_optimal"], s["wins"]["cpsat"]["heft"]
(1, 1)
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from hetsched.bench.instances import InstanceSpec

__all__ = ["instance_rows", "summarize", "time_to_quality"]

_REL = 1e-9


def _geo(xs: Sequence[float]) -> float | None:
    xs = [x for x in xs if x and x > 0 and math.isfinite(x)]
    return float(math.exp(sum(math.log(x) for x in xs) / len(xs))) if xs else None


def _mean(xs: Sequence[float | None]) -> float | None:
    vals = [x for x in xs if x is not None]
    return float(np.mean(vals)) if vals else None


def instance_rows(
    records: Sequence[Mapping[str, Any]], specs: Mapping[str, InstanceSpec]
) -> list[dict[str, Any]]:
    """Per (instance, solver) rows with ``best``, ``lb``, ``ratio``, ``ratio_heft``, ``gap``."""
    by_inst: dict[str, list[Mapping[str, Any]]] = {}
    for r in records:
        by_inst.setdefault(r["instance"], []).append(r)
    rows = []
    for inst, recs in by_inst.items():
        spec = specs.get(inst)
        ok = [r for r in recs if r.get("valid") and r.get("makespan") is not None]
        cands = [float(r["makespan"]) for r in ok]
        if spec is not None and spec.known_ub is not None:
            cands.append(spec.known_ub)
        best = min(cands) if cands else None
        lb, lb_from = _best_bound(recs, spec)
        heft = next((float(r["makespan"]) for r in ok if r["solver"] == "heft"), None)
        opt = spec.optimum if spec is not None else None
        for r in recs:
            if r["solver"] == "bound":
                continue
            ms = float(r["makespan"]) if r.get("valid") and r.get("makespan") is not None else None
            row = {
                "instance": inst,
                "solver": r["solver"],
                "n": r.get("n"),
                "devices": r.get("devices"),
                "makespan": ms,
                "lower_bound": r.get("lower_bound"),
                "best": best,
                "lb": lb,
                "lb_from": lb_from,
                "optimum": opt,
                "status": r.get("status"),
                "solve_time": r.get("solve_time"),
                "valid": bool(r.get("valid")),
                "ratio": ms / best if ms and best else None,
                "ratio_heft": ms / heft if ms and heft else None,
                "gap": max(0.0, (ms - lb) / ms) if ms and lb is not None else None,
                "reached_opt": bool(ms is not None and opt is not None and ms <= opt * (1 + _REL)),
                "gap_to_opt": (ms - opt) / opt if ms is not None and opt else None,
                "saga_makespan": r.get("saga_makespan"),
                "saga_valid": r.get("saga_valid"),
                "error": r.get("error") or r.get("saga_error"),
                "events": r.get("events", []),
            }
            rows.append(row)
    return rows


def _best_bound(
    recs: Sequence[Mapping[str, Any]], spec: InstanceSpec | None
) -> tuple[float | None, str | None]:
    """The best lower bound of an instance's valid records (and a published one), and where
    it came from: ``task:bound`` (the task and the bound it names, a key of
    :data:`~hetsched.schedule.bounds.BOUND_TITLES`, where it recorded one), the task alone,
    or ``published``."""
    found: list[tuple[float, bool, str]] = []  # value, names its bound (wins a tie), source
    for r in recs:
        if r.get("valid") and r.get("lower_bound"):
            named = r.get("bound_from")
            source = f"{r['solver']}:{named}" if named else str(r["solver"])
            found.append((float(r["lower_bound"]), bool(named), source))
    if spec is not None and spec.known_lb is not None:
        found.append((spec.known_lb, True, "published"))
    if not found:
        return None, None
    value, _, source = max(found, key=lambda found_one: found_one[:2])
    return value, source


def summarize(rows: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """Per-solver summary and the wins/ties/losses matrix (row solver vs column solver)."""
    solvers = list(dict.fromkeys(r["solver"] for r in rows))
    by: dict[str, list[Mapping[str, Any]]] = {s: [] for s in solvers}
    for r in rows:
        by[r["solver"]].append(r)
    out: dict[str, Any] = {}
    for s, rs in by.items():
        ran = [r for r in rs if r["status"] != "skipped"]
        val = [r for r in ran if r["valid"]]
        with_opt = [r for r in ran if r["optimum"] is not None]
        out[s] = {
            "instances": len(ran),
            "valid": len(val),
            "geo_ratio_best": _geo([r["ratio"] for r in val]),
            "geo_ratio_heft": _geo([r["ratio_heft"] for r in val]),
            "best_found": sum(1 for r in val if r["ratio"] is not None and r["ratio"] <= 1 + _REL),
            "proved_optimal": sum(1 for r in val if r["status"] == "optimal"),
            "with_known_opt": len(with_opt),
            "reached_opt": sum(1 for r in with_opt if r["reached_opt"]),
            "mean_gap_to_opt": _mean([r["gap_to_opt"] for r in with_opt]),
            "mean_gap": _mean([r["gap"] for r in val]),
            "mean_time": _mean([r["solve_time"] for r in ran]),
        }
    ms = {(r["instance"], r["solver"]): r["makespan"] for r in rows if r["status"] != "skipped"}
    insts = list(dict.fromkeys(r["instance"] for r in rows))
    wins: dict[str, dict[str, int]] = {a: {} for a in solvers}
    ties: dict[str, dict[str, int]] = {a: {} for a in solvers}
    for a in solvers:
        for b in solvers:
            w = t = 0
            for i in insts:
                if (i, a) not in ms or (i, b) not in ms:
                    continue
                x, y = ms[(i, a)], ms[(i, b)]
                if x is None and y is None:
                    continue
                if y is None or (x is not None and x < y * (1 - _REL)):
                    w += 1
                elif x is not None and abs(x - y) <= _REL * max(x, y):
                    t += 1
            wins[a][b], ties[a][b] = w, t
    return {"solvers": out, "wins": wins, "ties": ties, "instances": len(insts)}


def time_to_quality(
    rows: Sequence[Mapping[str, Any]], solver: str, grid: Sequence[float]
) -> tuple[list[float | None], list[float]]:
    """Geo-mean best-so-far makespan / best known at each time of ``grid``, over instances
    with a solution by then, and the fraction of instances with a solution."""
    rs = [r for r in rows if r["solver"] == solver and r["events"] and r["best"]]
    ratios: list[float | None] = []
    frac: list[float] = []
    for t in grid:
        vals = []
        for r in rs:
            seen = [e[1] for e in r["events"] if e[0] <= t and e[1] and e[1] > 0]
            if seen:
                vals.append(min(seen) / r["best"])
        ratios.append(_geo(vals))
        frac.append(len(vals) / len(rs) if rs else 0.0)
    return ratios, frac
