"""anrg-saga peer schedulers on our instances, and their schedules judged by our validator.

saga models ``time = cost / speed`` for tasks and ``time = size / bandwidth`` on an
undirected network. :func:`saga_input` fits that model to a :class:`Problem` in integer
time units: the fastest device is the reference (speed 1), ``cost_i`` its duration,
``1/speed_d`` the median duration ratio; ``size_k`` is the cheapest transfer of edge ``k``,
``1/bandwidth_ab`` the median ratio. The fit is **exact** (``exact=True``) for related
machines with related links (the random suite at ``beta=0``, STG), and an approximation
otherwise (unrelated costs, latencies, unsupported ops, whose cost is the fastest one).

Every saga schedule is turned into two plans:

* ``own``: saga's float times as they are (units x quantum). Reported only if our validator
  accepts them, which needs the fit to be exact.
* ``retimed``: saga's assignment and per-device order (by saga's start times), re-timed to
  the earliest integer start times in our model
  (:func:`~hetsched.schedule.latency.listsched.retime`).
  Always comparable with our solvers; equal to or better than ``own`` when the fit is exact.

saga breaks ties by set iteration order, so results depend on ``PYTHONHASHSEED``;
:func:`run_peers` runs saga in a subprocess with a fixed hash seed unless the current process
already has it.

Examples
--------
>>> import numpy as np
>>> p = Problem.from_arrays(names=["a", "b"], devices=["x", "y"],
...     exec_time=np.array([[2.0, 4.0], [3.0, 6.0]]), edges=[(0, 1, 5.0)],
...     comm_inv_bandwidth=np.array([[0.0, 2.0], [2.0, 0.0]]), quantum=1.0)
>>> doc = saga_input(p)
>>> doc["exact"], doc["speeds"], doc["costs"]
(True, [1.0, 0.5], [2.0, 3.0])
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from types import MappingProxyType
from typing import Any

import numpy as np

from hetsched.errors import HetschedError
from hetsched.plan import Plan, plan_from_schedule, validate
from hetsched.problem import ModeSpec, Problem

__all__ = ["PEERS", "run_peers", "run_saga", "saga_input", "saga_plans"]

# our name -> (saga class, max tasks it is run on; 0 = no limit)
PEERS: dict[str, tuple[str, int]] = {
    "saga-heft": ("HeftScheduler", 0),
    "saga-cpop": ("CpopScheduler", 0),
    "saga-minmin": ("MinMinScheduler", 0),
    "saga-maxmin": ("MaxMinScheduler", 0),
    "saga-etf": ("ETFScheduler", 0),
    "saga-fastest": ("FastestNodeScheduler", 0),
    "saga-sufferage": ("SufferageScheduler", 0),
    "saga-hbmct": ("HbmctScheduler", 0),
    "saga-mct": ("MCTScheduler", 0),
    "saga-met": ("METScheduler", 0),
    "saga-olb": ("OLBScheduler", 0),
    "saga-gdl": ("GDLScheduler", 0),
    "saga-bil": ("BILScheduler", 0),
    "saga-bruteforce": ("BruteForceScheduler", 6),
    "saga-smt": ("SMTScheduler", 15),
}


def _median_ratio(num: np.ndarray, den: np.ndarray) -> float:
    ok = (den > 0) & np.isfinite(num)
    return float(np.median(num[ok] / den[ok])) if ok.any() else 1.0


def saga_input(problem: Problem) -> dict[str, Any]:
    """saga's view of ``problem`` in integer units (JSON-able), and whether it is exact."""
    p = problem
    dur = np.where(p.allowed, p.dur, np.inf).astype(float)
    ref = int(np.argmin(np.where(np.isfinite(dur), dur, 0).sum(axis=0) + (~p.allowed).sum(0)))
    slow = np.array([_median_ratio(dur[:, d], dur[:, ref]) for d in range(p.num_devices)])
    slow[ref] = 1.0
    cost = np.where(np.isfinite(dur[:, ref]), dur[:, ref], np.nanmin(dur / slow, axis=1))
    pred = cost[:, None] * slow[None, :]
    exact = bool(np.all(p.allowed) and np.allclose(pred, dur, rtol=1e-12, atol=1e-9))
    d = p.num_devices
    off = ~np.eye(d, dtype=bool)
    comm = p.comm.astype(float)
    size = comm[:, off].min(axis=1) if d > 1 and p.num_edges else np.zeros(p.num_edges)
    inv = np.ones((d, d))
    for a in range(d):
        for b in range(a + 1, d):
            r = _median_ratio(comm[:, a, b] + comm[:, b, a], 2 * size) if size.any() else 1.0
            inv[a, b] = inv[b, a] = max(r, 1e-12)
    if p.num_edges:
        exact = exact and bool(np.allclose(size[:, None, None] * inv[None] * off, comm))
    return {
        "tasks": list(p.names),
        "costs": cost.tolist(),
        "nodes": list(p.devices),
        "speeds": (1.0 / slow).tolist(),
        "edges": [
            [p.names[int(u)], p.names[int(v)], float(s)]
            for u, v, s in zip(p.edge_src, p.edge_dst, size, strict=True)
        ],
        "bandwidth": [
            [p.devices[a], p.devices[b], 1.0 / inv[a, b]]
            for a in range(d)
            for b in range(a, d)
            if a != b
        ],
        "exact": exact,
    }


def run_saga(doc: dict[str, Any], peers: list[str]) -> dict[str, Any]:
    """Run saga schedulers in this process on a :func:`saga_input` document.

    Returns ``{peer: {"mapping": {task: [node, start, end]}, "makespan", "time"} | {"error"}}``.
    Exceptions inside saga are caught and reported per peer.
    """
    import logging

    from saga import Network, TaskGraph
    from saga import schedulers as ss

    logging.getLogger().setLevel(logging.ERROR)

    def network(self_bw: float) -> Any:
        return Network.create(
            nodes=list(zip(doc["nodes"], doc["speeds"], strict=True)),
            edges=[tuple(e) for e in doc["bandwidth"]] + [(x, x, self_bw) for x in doc["nodes"]],
        )

    # z3 (SMT) cannot take an infinite self-link bandwidth: a huge finite one instead.
    nets = {"inf": network(float("inf")), "big": network(1e15)}
    tg = TaskGraph.create(
        tasks=list(zip(doc["tasks"], doc["costs"], strict=True)),
        dependencies=[tuple(e) for e in doc["edges"]],
    )
    out: dict[str, Any] = {}
    for peer in peers:
        t0 = time.perf_counter()
        try:
            net = nets["big" if peer == "saga-smt" else "inf"]
            sched = getattr(ss, PEERS[peer][0])().schedule(net, tg)
            mapping = {
                t.name: [node, float(t.start), float(t.end)]
                for node, tasks in sched.mapping.items()
                for t in tasks
            }
            out[peer] = {
                "mapping": mapping,
                "makespan": float(sched.makespan),
                "time": time.perf_counter() - t0,
            }
        except Exception as err:
            out[peer] = {"error": f"{type(err).__name__}: {err}", "time": time.perf_counter() - t0}
    return out


def run_peers(problem: Problem, peers: list[str], *, hash_seed: int = 0) -> dict[str, Any]:
    """:func:`run_saga` with ``PYTHONHASHSEED=hash_seed``: in-process if already set, else in
    a subprocess. Returns the saga input document under ``"_input"`` too."""
    doc = saga_input(problem)
    if os.environ.get("PYTHONHASHSEED") == str(hash_seed):
        res = run_saga(doc, peers)
    else:
        env = dict(os.environ, PYTHONHASHSEED=str(hash_seed))
        proc = subprocess.run(
            [sys.executable, "-m", "hetsched.bench.saga_peer"],
            input=json.dumps({"doc": doc, "peers": peers}),
            capture_output=True,
            text=True,
            env=env,
            check=False,
        )
        if proc.returncode != 0:
            tail = proc.stderr.strip().splitlines()[-1:] or ["no output"]
            res = {peer: {"error": f"saga subprocess failed: {tail[0]}"} for peer in peers}
        else:
            res = json.loads(proc.stdout)
    res["_input"] = doc
    return res


def saga_plans(problem: Problem, peer: str, result: dict[str, Any]) -> dict[str, Any]:
    """Judge one peer's result; returns ``{"own": Plan|None, "own_error", "retimed": Plan|None,
    "error"}``. Never raises for a broken schedule: the violation is returned as text."""
    from hetsched.schedule.latency.listsched import priority_order, retime

    out: dict[str, Any] = {"own": None, "own_error": None, "retimed": None, "error": None}
    if "error" in result:
        out["error"] = result["error"]
        return out
    mapping = {k: v for k, v in result["mapping"].items() if not k.startswith("__")}
    missing = [x for x in problem.names if x not in mapping]
    if missing:
        out["error"] = (
            f"saga schedule misses {len(missing)} of {problem.n} ops (e.g. {missing[0]!r})"
        )
        return out
    q = problem.quantum
    own = Plan(
        modes=MappingProxyType({x: ModeSpec((mapping[x][0],)) for x in problem.names}),
        start=MappingProxyType({x: mapping[x][1] * q for x in problem.names}),
        finish=MappingProxyType({x: mapping[x][2] * q for x in problem.names}),
        transfers=(),
        makespan=max(mapping[x][2] for x in problem.names) * q,
        lower_bound=0.0,
        solver=peer,
        solve_time=float(result.get("time", 0.0)),
        graph_name=problem.name,
        graph_sha256=problem.graph_sha256,
        platform=problem.platform_name,
        units=problem.units,
    )
    try:
        validate(own, problem, tol=1e-6)
        out["own"] = own
    except HetschedError as err:
        out["own_error"] = str(err)
    try:
        assign = np.array([problem.device_index[mapping[x][0]] for x in problem.names])
        key = np.array([mapping[x][1] for x in problem.names])
        start, xfer = retime(problem, assign, priority_order(problem, key))
        plan = plan_from_schedule(
            problem,
            assign=assign,
            start=start,
            solver=peer,
            solve_time=float(result.get("time", 0.0)),
            transfer_start=xfer,
        )
        validate(plan, problem)
        out["retimed"] = plan
    except (HetschedError, KeyError, ValueError) as err:
        out["error"] = f"{type(err).__name__}: {err}"
    return out


if __name__ == "__main__":  # the subprocess side of run_peers
    req = json.loads(sys.stdin.read())
    sys.stdout.write(json.dumps(run_saga(req["doc"], req["peers"])))
