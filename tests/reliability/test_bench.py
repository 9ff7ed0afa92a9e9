"""``hetsched bench``: a signal mid-sweep keeps what finished; a sweep loses no result."""

from __future__ import annotations

import json
import os
import re
import signal
import time

import pytest

from .builders import cli
from .sweep import SWEEP_SOLVERS, lost_results, run_sweep


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_signal_mid_sweep_writes_what_is_done(tmp_path, sig):
    out = tmp_path / "bench"
    # ls (pure Python local search) runs to its time limit: 6 instances x ~2 s.
    proc = cli("bench", "--suite", "random", "--sizes", "30", "--devices", "3",
               "--ccr", "0.1,1,10", "--beta", "0,1", "--solvers", "heft,ls", "--peers", "",
               "--time-limit", "2", "--no-plots", "-o", str(out))  # fmt: skip
    _wait_for_tasks(proc, 3)  # 18 tasks (bound, heft, ls per instance): 3 done
    t0 = time.monotonic()
    proc.send_signal(sig)
    stdout, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 130, (stdout[-500:], stderr[-500:])
    assert time.monotonic() - t0 < 10
    assert "Traceback" not in stderr
    doc = json.loads((out / "results.json").read_text())
    assert doc["summary"]["interrupted"] is True
    assert 0 < len(doc["rows"]) < 12, "some tasks done, not all"
    assert all(r["valid"] for r in doc["rows"])
    assert "Interrupted" in (out / "report.md").read_text()
    assert not list(out.glob(".*.tmp"))


def _wait_for_tasks(proc, k: int, timeout: float = 60.0) -> None:
    """Read the progress bar (stderr) until it shows ``k`` tasks done."""
    seen, t0 = "", time.monotonic()
    while time.monotonic() - t0 < timeout:
        chunk = os.read(proc.stderr.fileno(), 4096).decode(errors="replace")
        if not chunk:
            break
        seen += chunk
        done = [int(m) for m in re.findall(r"\| *(\d+)/18", seen)]
        if done and max(done) >= k:
            return
    proc.kill()
    pytest.fail(f"bench progress never reached {k} tasks: {seen[-300:]!r}")


def test_sweep_of_50_instances_loses_no_result(tmp_path):
    res = run_sweep(tmp_path, limit=50, time_limit=1.0)
    figures = lost_results(res, tmp_path)
    assert figures["instances"] == 50
    assert figures["lost"] == []
    assert figures["rows"] == figures["rows_in_memory"] == 50 * len(SWEEP_SOLVERS)
    assert figures["interrupted"] is False
