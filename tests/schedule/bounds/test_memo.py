"""Bounds are computed once per problem, also when two threads ask for one at once."""

from __future__ import annotations

import threading
import time

from hetsched.bench.instances import build_problem, random_spec
from hetsched.schedule import bounds
from hetsched.schedule.bounds import quick_lower_bound


def test_a_bound_asked_for_by_two_threads_at_once_is_computed_once() -> None:
    p = build_problem(random_spec(30, 3, 10.0, seed=0, beta=1.0))
    computed: list[int] = []
    started = threading.Event()

    def slow(_q: object) -> int:
        computed.append(1)
        started.set()
        time.sleep(0.2)  # the other thread asks meanwhile
        return 42

    values: list[int] = []
    first = threading.Thread(target=lambda: values.append(bounds._memo(p, "slow", slow)))
    first.start()
    assert started.wait(10)
    values.append(bounds._memo(p, "slow", slow))  # waits for the first thread's value
    first.join()
    assert values == [42, 42] and computed == [1]


def test_the_quick_bound_from_two_threads_equals_it_from_one() -> None:
    alone = quick_lower_bound(build_problem(random_spec(100, 8, 10.0, seed=0, beta=1.0)))
    p = build_problem(random_spec(100, 8, 10.0, seed=0, beta=1.0))
    found: list[int] = []
    threads = [threading.Thread(target=lambda: found.append(quick_lower_bound(p))) for _ in "ab"]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert found == [alone, alone]
