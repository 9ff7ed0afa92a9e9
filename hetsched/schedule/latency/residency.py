"""Weights resident or streamed, decided after placement: a heuristic for tight memories.

A list scheduler that may keep each op's weights resident fills a small SRAM with the first
weights it meets (each resident mode is a little faster than its streamed twin), and an op
that needs room later (GPT-2's 26 MB of logits on a 32 MiB NPU) is pushed onto a far slower
device: on gpt base (edge-soc, memory on) HEFT's fp32 plan is 33.8 ms, while with every NPU
weight streamed it is 15.3 ms. So the heuristics here place and order the ops with every
weight streamed (:func:`streamed_restriction`), then :func:`make_resident` keeps weights
resident, most time saved per byte first, wherever the plan's live memory leaves room, and
re-times the plan in the same order (never later: every op keeps its device and order and
only gets shorter). A list scheduler also leaves a second identical device idle when the
first finishes each op as early (GPT-2's whole NPU chain on npu0), so half the SRAM holds
no weights: :func:`spread_runs` moves whole runs of ops (cut where an input arrives from
another device anyway, as around attention on the GPU) onto the twin devices, so that
:func:`make_resident` can fill every SRAM.

Examples
--------
>>> import numpy as np
>>> from hetsched.problem import Modes, Problem, Tensors
>>> modes = Modes.build(1, [(0, (0,), 2.0, 8.0, "float32", "", 8.0),
...                         (0, (0,), 5.0, 0.0, "float32", "streamed", 0.0)])
>>> p = Problem.from_modes(names=["a"], devices=["npu"], modes=modes,
...     tensors=Tensors.build(1, []), quantum=1.0).with_memory(np.array([10.0]))
>>> sub = streamed_restriction(p)
>>> [sub.modes.tag[k] for k in range(sub.num_modes)]
['streamed']
>>> from hetsched.solver import run_solver
>>> plan = make_resident(run_solver("heft", sub), p)
>>> plan.makespan, plan.modes["a"].tag
(2.0, '')
"""

from __future__ import annotations

import numpy as np

from hetsched.plan import Plan, mode_ids
from hetsched.problem import Problem
from hetsched.problem.problem import STREAMED, is_streamed

__all__ = ["make_resident", "resident_twins", "spread_runs", "streamed_restriction", "twin_devices"]


def resident_twins(problem: Problem) -> np.ndarray:
    """For each mode, the id of its resident twin (same op, devices, precision, error and
    split, weights held) if it is a streamed mode that has one, else -1."""
    m = problem.modes
    err = m.err
    twin = np.full(m.num_modes, -1, dtype=np.int64)
    if not any(_resident_tag(t) is not None for t in m.tag):
        return twin
    for v in range(problem.n):
        ids = m.ops_modes(v).tolist()
        resident = {
            (m.devices_of(k), m.precision[k], float(err[k]), m.tag[k]): k
            for k in ids
            if _resident_tag(m.tag[k]) is None
        }
        for k in ids:
            tag = _resident_tag(m.tag[k])
            if tag is not None:
                key = (m.devices_of(k), m.precision[k], float(err[k]), tag)
                twin[k] = resident.get(key, -1)
    return twin


def _resident_tag(tag: str) -> str | None:
    """The tag of the resident twin of a streamed mode's ``tag``; ``None`` if not streamed.

    >>> _resident_tag("streamed"), _resident_tag("split:column+streamed"), _resident_tag("")
    ('', 'split:column', None)
    """
    if not is_streamed(tag):
        return None
    return tag.removesuffix(STREAMED).removesuffix("+")


def streamed_restriction(problem: Problem) -> Problem | None:
    """``problem`` with only the streamed mode wherever an op has both (its weights never
    take a device's memory for the whole run); ``None`` when no op has both."""
    twin = resident_twins(problem)
    if not np.any(twin >= 0):
        return None
    keep = np.ones(problem.num_modes, dtype=bool)
    keep[twin[twin >= 0]] = False
    return problem.select_modes(np.flatnonzero(keep), name=problem.name)


def make_resident(plan: Plan, problem: Problem) -> Plan:
    """``plan`` (of ``problem`` or a restriction of it) with streamed weights made resident
    where its live memory leaves room, most time saved per byte first, re-timed in its own
    order and validated in ``problem``. It claims no bound (``plan``'s may be a
    restriction's).

    Each round takes every candidate that fits the room the current plan leaves on its
    device (peak live bytes against capacity), re-times, and keeps the result if it is
    valid and no slower; a round that fails retries with the first half of its batch.
    """
    from hetsched.schedule.latency.warmstart import carry_plan

    current = carry_plan(plan, problem)
    if current is None:  # no bound of a restriction is one of ``problem``
        return plan.with_(lower_bound=0.0, searched=False)
    twin = resident_twins(problem)
    m, w = problem.modes, problem.modes.w
    rejected = np.zeros(problem.n, dtype=bool)
    while True:
        modes = mode_ids(current, problem)
        cand = [v for v in range(problem.n) if twin[modes[v]] >= 0 and not rejected[v]]
        dur = problem.mode_dur
        saved = np.array([dur[modes[v]] - dur[twin[modes[v]]] for v in cand])
        size = np.array([max(float(w[twin[modes[v]]]), 1.0) for v in cand])
        room = {
            d: float(problem.capacity[i]) - current.memory.get(d, 0.0)
            for i, d in enumerate(problem.devices)
        }
        batch: list[int] = []
        for j in np.argsort(-saved / size, kind="stable").tolist() if cand else []:
            v = cand[j]
            if saved[j] <= 0:
                rejected[v] = True
                continue
            devs = [problem.devices[i] for i in m.devices_of(int(modes[v]))]
            if all(size[j] <= room[d] for d in devs):
                for d in devs:
                    room[d] -= size[j]
                batch.append(v)
        if not batch:
            return current
        while batch:
            chosen = modes.copy()
            chosen[batch] = twin[modes[batch]]
            trial = carry_plan(current, problem, modes=chosen)
            if trial is not None and _fits(trial, problem) and trial.makespan <= current.makespan:
                current = trial
                break
            if len(batch) == 1:
                rejected[batch[0]] = True
            batch = batch[: len(batch) // 2]


def _fits(plan: Plan, problem: Problem) -> bool:
    """Whether ``plan``'s live peak fits every device's capacity."""
    from hetsched.plan.memory import within

    peak = np.array([plan.memory.get(d, 0.0) for d in problem.devices])
    return bool(np.all(within(peak, problem.capacity)))


def twin_devices(problem: Problem) -> list[tuple[int, ...]]:
    """Classes of two or more devices every op can run on alike: the same single-device
    modes (precision, tag, time, weights) on each."""
    m = problem.modes
    rows: dict[int, list[tuple[object, ...]]] = {d: [] for d in range(problem.num_devices)}
    for k in range(m.num_modes):
        devs = m.devices_of(k)
        if len(devs) == 1:
            key = (int(m.op[k]), m.precision[k], m.tag[k], float(m.time[k]), float(m.w[k]))
            rows[devs[0]].append(key)
    classes: dict[tuple[object, ...], list[int]] = {}
    for d, keys in rows.items():
        if keys:
            classes.setdefault(tuple(sorted(keys, key=repr)), []).append(d)
    return [tuple(c) for c in classes.values() if len(c) > 1]


def spread_runs(plan: Plan, problem: Problem) -> list[Plan]:
    """``plan`` with the ops of each class of twin devices (:func:`twin_devices`) that
    leaves one of them idle spread over the class, in two patterns: runs dealt out in turn,
    and the runs cut into one contiguous share per device with about equal weights. A run is
    the ops of one device in start order up to the next op that receives an input from
    another device. Each re-timed in the plan's order (those that break memory or a rule are
    left out)."""
    from hetsched.schedule.latency.warmstart import carry_plan

    m = problem.modes
    modes = mode_ids(plan, problem)
    twin = resident_twins(problem)
    by_key = {
        (int(m.op[k]), m.devices_of(k), m.precision[k], m.tag[k], float(m.err[k])): k
        for k in range(m.num_modes)
    }
    out = []
    busy = {d for k in modes.tolist() for d in m.devices_of(int(k))}
    for group in twin_devices(problem):
        if all(d in busy for d in group):  # every twin already works: nothing left idle
            continue
        ops = sorted(
            (v for v in range(problem.n) if m.devices_of(int(modes[v]))[0] in group
             and len(m.devices_of(int(modes[v]))) == 1),
            key=lambda v: plan.start[problem.names[v]],
        )  # fmt: skip
        runs = _runs(problem, ops, modes)
        if len(runs) < 2:
            continue
        held = m.w[modes] + np.where(twin[modes] >= 0, m.w[np.maximum(twin[modes], 0)], 0.0)
        weight = np.array([float(held[run].sum()) for run in runs])
        cum = np.cumsum(weight) - weight / 2
        total = max(float(weight.sum()), 1.0)
        patterns = (
            [group[i % len(group)] for i in range(len(runs))],
            [group[min(int(c / total * len(group)), len(group) - 1)] for c in cum],
        )
        for pattern in patterns:
            chosen = modes.copy()
            for run, d in zip(runs, pattern, strict=True):
                for v in run:
                    k = int(modes[v])
                    key = (v, (d,), m.precision[k], m.tag[k], float(m.err[k]))
                    chosen[v] = by_key.get(key, k)
            if np.array_equal(chosen, modes):
                continue
            moved = carry_plan(plan, problem, modes=chosen)
            if moved is not None:
                out.append(moved.with_(solver=plan.solver))
    return out


def _runs(problem: Problem, ops: list[int], modes: np.ndarray) -> list[list[int]]:
    """``ops`` (start order) cut before each op with an input from another device."""
    m = problem.modes
    runs: list[list[int]] = []
    for v in ops:
        here = m.devices_of(int(modes[v]))
        from_away = any(m.devices_of(int(modes[u])) != here for u, _ in problem.preds[v])
        if not runs or from_away:
            runs.append([])
        runs[-1].append(v)
    return runs
