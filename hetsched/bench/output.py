"""Write a benchmark's results: Markdown, CSV, JSON and PNG plots, each file atomically.

Examples
--------
>>> _fmt(1.23456), _fmt(None), _fmt(3)
('1.235', '-', '3')
>>> print(md_table(["a", "b"], [[1, None]]))
| a | b |
|---|---|
| 1 | - |
"""

from __future__ import annotations

import csv
import io
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from hetsched.bench.report import time_to_quality
from hetsched.fileio import write_bytes_atomic, write_json_atomic, write_text_atomic

__all__ = ["md_table", "summary_markdown", "write_outputs"]

_ROW_COLS = (
    "instance", "solver", "n", "devices", "makespan", "lower_bound", "best", "lb", "lb_from",
    "optimum", "ratio", "ratio_heft", "gap", "status", "solve_time", "valid", "saga_makespan",
    "saga_valid", "error",
)  # fmt: skip
_SUM_COLS = (
    "instances", "valid", "geo_ratio_best", "geo_ratio_heft", "best_found", "proved_optimal",
    "with_known_opt", "reached_opt", "mean_gap_to_opt", "mean_gap", "mean_time",
)  # fmt: skip


def _fmt(x: Any) -> str:
    if x is None:
        return "-"
    if isinstance(x, float):
        return f"{x:.4g}" if abs(x) >= 1000 else f"{x:.3f}"
    return str(x)


def md_table(head: Sequence[str], body: Sequence[Sequence[Any]]) -> str:
    """A GitHub Markdown table."""
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    lines += ["| " + " | ".join(_fmt(x) for x in row) + " |" for row in body]
    return "\n".join(lines)


def summary_markdown(summary: Mapping[str, Any], title: str = "Summary") -> str:
    """Summary and wins/ties/losses tables as Markdown."""
    sol = summary["solvers"]
    names = list(sol)
    parts = [f"### {title} ({summary['instances']} instances)", ""]
    parts.append(
        md_table(["solver", *_SUM_COLS], [[s, *(sol[s][c] for c in _SUM_COLS)] for s in names])
    )
    parts += ["", "Wins/ties/losses of the row solver against the column solver:", ""]
    body = []
    for a in names:
        row: list[Any] = [a]
        for b in names:
            w, t = summary["wins"][a][b], summary["ties"][a][b]
            row.append("" if a == b else f"{w}/{t}/{summary['wins'][b][a]}")
        body.append(row)
    parts.append(md_table(["", *names], body))
    return "\n".join(parts) + "\n"


def _csv(rows: Sequence[Mapping[str, Any]], cols: Sequence[str]) -> str:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(cols)
    for r in rows:
        w.writerow(["" if r.get(c) is None else r.get(c) for c in cols])
    return buf.getvalue()


def _png(fig: Any, path: Path) -> None:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, bbox_inches="tight")
    write_bytes_atomic(path, buf.getvalue())


def _plots(rows: Sequence[Mapping[str, Any]], summary: Mapping[str, Any], out: Path) -> list[str]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    names = list(summary["solvers"])
    ratios = {s: [r["ratio"] for r in rows if r["solver"] == s and r["ratio"]] for s in names}
    totals = {s: summary["solvers"][s]["instances"] for s in names}
    written = []
    fig, ax = plt.subplots(figsize=(7, 4.5))
    hi = max([max(v) for v in ratios.values() if v] + [1.05])
    taus = np.linspace(1.0, min(hi, 3.0), 300)
    for s in names:
        v = np.sort(ratios[s])
        if totals[s]:
            ax.step(taus, np.searchsorted(v, taus, side="right") / totals[s], where="post", label=s)
    ax.set(xlabel="τ (makespan / best known)", ylabel="fraction of instances ≤ τ",
           title="Performance profile", ylim=(0, 1.02))  # fmt: skip
    ax.legend(fontsize=7, ncol=2)
    _png(fig, out / "profile.png")
    written.append("profile.png")
    plt.close(fig)
    fig, ax = plt.subplots(figsize=(max(6, 0.6 * len(names)), 4.5))
    ax.boxplot([ratios[s] or [np.nan] for s in names], showfliers=True)
    ax.set_xticks(range(1, len(names) + 1), names, rotation=45, ha="right", fontsize=8)
    ax.set(ylabel="makespan / best known", title="Ratio distribution")
    _png(fig, out / "ratios.png")
    written.append("ratios.png")
    plt.close(fig)
    anytime = [s for s in names if any(r["events"] for r in rows if r["solver"] == s)]
    if anytime:
        tmax = max(e[0] for r in rows for e in r["events"]) or 1.0
        grid = list(np.geomspace(min(1e-3, tmax), max(tmax, 1e-3), 60))
        fig, ax = plt.subplots(figsize=(7, 4.5))
        for s in anytime:
            ys, _ = time_to_quality(rows, s, grid)
            ax.plot(grid, [np.nan if y is None else y for y in ys], label=s)
        ax.set_xscale("log")
        ax.set(xlabel="seconds", ylabel="geo-mean best-so-far / best known",
               title="Time to quality (instances with a solution by then)")  # fmt: skip
        ax.legend(fontsize=8)
        _png(fig, out / "time_to_quality.png")
        written.append("time_to_quality.png")
        plt.close(fig)
    return written


def write_outputs(
    out_dir: str | os.PathLike[str],
    *,
    config: Mapping[str, Any],
    specs: Sequence[Mapping[str, Any]],
    rows: Sequence[Mapping[str, Any]],
    summary: Mapping[str, Any],
    plots: bool = True,
) -> list[str]:
    """Write ``results.json``, ``instances.csv``, ``summary.csv``, ``report.md`` and plots."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    write_json_atomic(
        out / "results.json",
        {
            "format": "hetsched.bench/1",
            "config": dict(config),
            "instances": list(specs),
            "rows": list(rows),
            "summary": dict(summary),
        },
    )
    write_text_atomic(out / "instances.csv", _csv(rows, _ROW_COLS))
    srows = [{"solver": s, **v} for s, v in summary["solvers"].items()]
    write_text_atomic(out / "summary.csv", _csv(srows, ("solver", *_SUM_COLS)))
    files = ["results.json", "instances.csv", "summary.csv", "report.md"]
    if plots and rows:
        files += _plots(rows, summary, out)
    cmd = config.get("command", "")
    md = [f"# hetsched bench: {config.get('suite')}", "", f"`{cmd}`", ""]
    if summary.get("interrupted"):
        md += ["**Interrupted**: only the tasks that finished are reported.", ""]
    md.append(summary_markdown(summary))
    md += ["### Per instance", ""]
    md.append(md_table(_ROW_COLS[:-1], [[r.get(c) for c in _ROW_COLS[:-1]] for r in rows]))
    errs = [r for r in rows if r.get("error")]
    if errs:
        md += ["", "### Errors and rejected schedules", ""]
        md += [f"- {r['instance']} / {r['solver']}: {str(r['error'])[:200]}" for r in errs]
    md += ["", *[f"![{f}]({f})" for f in files if f.endswith(".png")]]
    write_text_atomic(out / "report.md", "\n".join(md) + "\n")
    return files
