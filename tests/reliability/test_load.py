"""The executor under load (modest: 50 runs); benchmarks/reliability.py runs 1000."""

from __future__ import annotations

from .load import run_load


def test_50_executor_runs_no_thread_or_memory_growth():
    f = run_load(50, "mlp")
    assert f["output_mismatches"] == 0
    assert f["threads_after"] == f["threads_before"], f
    assert f["threads_max_between_runs"] == f["threads_before"], f  # all joined every run
    assert f["heap_growth_bytes"] < 50 * 64 * 1024, f  # < 64 KiB per run of Python heap
    assert f["rss_growth_kib"] < 64 * 1024, f
