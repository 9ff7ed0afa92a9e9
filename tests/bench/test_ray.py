"""A Ray run (2 local workers) gives the same results as the serial run.

In the default suite (about 10 s on an idle machine, mostly Ray start-up).
"""

from __future__ import annotations

import pytest

from hetsched.bench.instances import random_spec
from hetsched.bench.runner import make_tasks, run_tasks

pytest.importorskip("ray")

_KEYS = ("instance", "solver", "makespan", "lower_bound", "status", "valid")


@pytest.mark.timeout(240)
def test_ray_equals_serial():
    specs = [random_spec(12, 3, c, seed=1) for c in (0.1, 10.0)]
    peers = ("saga-heft", "saga-minmin") if _has_saga() else ()
    tasks = make_tasks(specs, ("heft", "peft", "cpsat"), peers, time_limit=5.0)
    serial = run_tasks(tasks, jobs=1, progress=False)
    par = run_tasks(tasks, jobs=2, progress=False)
    pick = lambda res: [[{k: r.get(k) for k in _KEYS} for r in rs] for rs in res]  # noqa: E731
    assert pick(serial) == pick(par)


def _has_saga() -> bool:
    try:
        import saga  # noqa: F401
    except ImportError:
        return False
    return True
