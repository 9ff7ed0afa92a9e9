"""Run benchmark tasks serially or on Ray, one code path, results in a fixed order.

A task is ``(instance, what)`` where ``what`` is one of our solvers, ``"peers"`` (all saga
peers of the instance, in one saga process) or ``"bound"`` (the instance's lower bound). Each
task returns plain-dict records, one per solver, so results are identical whether they come
from this process or a Ray worker. Exact solvers get ``workers=1`` (``--workers`` to
change) and the run's seed; CP-SAT is then deterministic whenever it finishes before its
time limit.

Examples
--------
>>> from hetsched.bench.instances import random_spec
>>> t = Task(random_spec(20, 3, 1.0, seed=0), "heft", time_limit=1.0)
>>> [r["solver"] for r in run_task(t)], run_task(t)[0]["valid"]
(['heft'], True)
"""

from __future__ import annotations

import dataclasses
import functools
import json
import os
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from hetsched.bench.instances import InstanceSpec, build_problem
from hetsched.errors import HetschedError
from hetsched.plan import Plan, validate
from hetsched.problem import Problem
from hetsched.solver import Progress, StopToken

__all__ = ["Task", "make_tasks", "run_task", "run_tasks"]

_MAX_EVENTS = 200


@dataclass(frozen=True)
class Task:
    """One unit of work: ``what`` (a solver name, ``"peers"`` or ``"bound"``) on ``spec``."""

    spec: InstanceSpec
    what: str
    time_limit: float = 10.0
    seed: int = 0
    peers: tuple[str, ...] = ()
    hash_seed: int = 0
    workers: int = 1
    meta: dict[str, Any] = field(default_factory=dict)


def make_tasks(
    specs: Sequence[InstanceSpec],
    solvers: Sequence[str],
    peers: Sequence[str],
    *,
    time_limit: float,
    seed: int = 0,
    hash_seed: int = 0,
    workers: int = 1,
) -> list[Task]:
    """The bound, every solver (exact ones with ``workers`` threads), and the peers (if
    any) on every instance."""
    tasks = []
    for s in specs:
        tasks.append(Task(s, "bound", time_limit, seed))
        tasks.extend(Task(s, name, time_limit, seed, workers=workers) for name in solvers)
        if peers:
            tasks.append(Task(s, "peers", time_limit, seed, tuple(peers), hash_seed))
    return tasks


@functools.lru_cache(maxsize=8)
def _problem(key: str) -> Problem:
    d = json.loads(key)
    spec = InstanceSpec(
        d["name"], d["suite"], d["kind"], d["params"], d["optimum"], d["known_lb"], d["known_ub"]
    )
    return build_problem(spec)


def _base(task: Task, problem: Problem, solver: str) -> dict[str, Any]:
    return {
        "instance": task.spec.name,
        "suite": task.spec.suite,
        "solver": solver,
        "n": problem.n,
        "devices": problem.num_devices,
        "edges": problem.num_edges,
        "quantum": problem.quantum,
        "makespan": None,
        "lower_bound": None,
        "status": "error",
        "solve_time": None,
        "valid": False,
        "error": None,
        "events": [],
    }


def _plan_fields(rec: dict[str, Any], plan: Plan, problem: Problem) -> None:
    rec.update(
        makespan=plan.makespan,
        lower_bound=plan.lower_bound,
        bound_from=plan.stats.get("bound_from") if isinstance(plan.stats, Mapping) else None,
        status=plan.status,
        solve_time=plan.solve_time,
        interrupted=plan.interrupted,
    )
    try:
        validate(plan, problem)
        rec["valid"] = True
    except HetschedError as err:
        rec["error"] = f"invalid plan: {err}"


def _run_solver(task: Task, problem: Problem, stop: StopToken | None = None) -> dict[str, Any]:
    from hetsched.solver import get_solver

    rec = _base(task, problem, task.what)
    events: list[list[float]] = []
    if task.what in ("portfolio", "anneal"):  # numba's one-off compile is not the solve's
        from hetsched.schedule.latency.anneal import warm_up_now

        warm_up_now()

    def on_progress(ev: Progress) -> None:
        events.append([round(ev.elapsed, 4), ev.makespan, ev.bound])

    t0 = time.perf_counter()
    try:
        solver = get_solver(task.what)
        plan = solver(
            problem,
            time_limit=task.time_limit,
            seed=task.seed,
            progress=on_progress,
            workers=task.workers if solver.capabilities.workers else None,
            stop=stop,
        )
        _plan_fields(rec, plan, problem)
    except HetschedError as err:
        rec["error"] = f"{type(err).__name__}: {err}"
        rec["solve_time"] = time.perf_counter() - t0
    rec["wall_time"] = time.perf_counter() - t0
    if len(events) > _MAX_EVENTS:  # keep the first, the last and an even sample between
        step = len(events) / _MAX_EVENTS
        events = [events[int(i * step)] for i in range(_MAX_EVENTS - 1)] + [events[-1]]
    rec["events"] = events
    return rec


def _run_peers(task: Task, problem: Problem) -> list[dict[str, Any]]:
    from hetsched.bench.saga_peer import PEERS, run_peers, saga_plans

    todo = [p for p in task.peers if PEERS[p][1] == 0 or problem.n <= PEERS[p][1]]
    res = run_peers(problem, todo, hash_seed=task.hash_seed) if todo else {"_input": {}}
    exact = bool(res["_input"].get("exact", False))
    out = []
    for peer in task.peers:
        rec = _base(task, problem, peer)
        rec.update(saga_exact_fit=exact, saga_makespan=None, saga_valid=False, saga_error=None)
        if peer not in todo:
            rec.update(status="skipped", error=f"skipped: {problem.n} ops > {PEERS[peer][1]}")
            out.append(rec)
            continue
        r = res.get(peer, {"error": "no result"})
        judged = saga_plans(problem, peer, r)
        if r.get("makespan") is not None:  # saga ran in integer units
            rec["saga_makespan"] = float(r["makespan"]) * problem.quantum
        rec["solve_time"] = r.get("time")
        if judged["own"] is not None:
            rec["saga_valid"] = True
        else:
            rec["saga_error"] = judged["own_error"] or judged["error"]
        if judged["retimed"] is not None:
            _plan_fields(rec, judged["retimed"], problem)
            rec["solve_time"] = r.get("time")
        else:
            rec["error"] = judged["error"]
        out.append(rec)
    return out


def run_task(task: Task, stop: StopToken | None = None) -> list[dict[str, Any]]:
    """Run one task; never raises for a solver's or a peer's failure (it is a record).

    ``stop`` interrupts its solve (the solve returns its best plan so far)."""
    try:
        problem = _problem(json.dumps(task.spec.to_dict(), sort_keys=True))
    except (HetschedError, ImportError, OSError) as err:
        return [
            {
                "instance": task.spec.name,
                "suite": task.spec.suite,
                "solver": task.what,
                "status": "error",
                "valid": False,
                "error": f"cannot build instance: {type(err).__name__}: {err}",
            }
        ]
    if task.what == "bound":
        from hetsched.schedule.bounds import bound_source, lower_bound

        rec = _base(task, problem, "bound")
        t0 = time.perf_counter()
        lb = lower_bound(problem, use_lp=problem.n <= 2000)
        rec.update(lower_bound=lb * problem.quantum, status="bound", valid=True)
        rec["bound_from"] = bound_source(problem, lb)
        rec["solve_time"] = time.perf_counter() - t0
        return [rec]
    if task.what == "peers":
        return _run_peers(task, problem)
    # a fresh object: bounds are memoised per problem, and those the bound task (or an
    # earlier solver) computed must not come free within this solve's budget
    return [_run_solver(task, dataclasses.replace(problem), stop)]


def run_tasks(
    tasks: Sequence[Task],
    *,
    jobs: int = 1,
    ray_address: str | None = None,
    progress: bool = True,
    stop: StopToken | None = None,
) -> list[list[dict[str, Any]]]:
    """Run ``tasks``; results in task order. Serial for ``jobs == 1`` without an address,
    else on Ray (local ``num_cpus=jobs``, or the cluster at ``ray_address``). Once ``stop``
    is set no new task starts (a serial run's current solve returns its best plan); tasks
    not run get an empty list."""
    stop = stop if stop is not None else StopToken()
    from tqdm import tqdm

    bar = tqdm(total=len(tasks), desc="bench", unit="task", disable=not progress, leave=False)
    results: list[list[dict[str, Any]] | None] = [None] * len(tasks)
    if jobs <= 1 and not ray_address:
        for i, t in enumerate(tasks):
            if stop.is_set():
                break
            bar.set_postfix_str(f"{t.spec.name[:28]} {t.what}")
            results[i] = run_task(t, stop=stop)
            bar.update()
    else:
        import ray

        hash_seed = str(tasks[0].hash_seed) if tasks else "0"
        env = {"env_vars": {"PYTHONHASHSEED": hash_seed}}
        started = not ray.is_initialized()
        if started:
            init: dict[str, Any] = {"runtime_env": env, "log_to_driver": False}
            if ray_address:
                init["address"] = ray_address
            else:
                init.update(num_cpus=jobs, include_dashboard=False)
            os.environ.setdefault("RAY_DEDUP_LOGS", "0")
            ray.init(**init)
        remote = ray.remote(num_cpus=1)(run_task)
        futures = {remote.remote(t): i for i, t in enumerate(tasks)}
        pending = list(futures)
        try:
            while pending and not stop.is_set():
                done, pending = ray.wait(pending, num_returns=1, timeout=0.5)
                for f in done:
                    results[futures[f]] = ray.get(f)
                    bar.update()
            for f in pending:
                ray.cancel(f, force=True)
        finally:
            if started:
                ray.shutdown()
    bar.close()
    return [r or [] for r in results]
