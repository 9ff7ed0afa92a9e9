"""One skeleton for every solver: limits, seed, a stop token per solve, one status rule.

A solver is a :class:`Solver`: a name, what it honours (:class:`Capabilities`), the options
it takes, and a ``run(problem, ctx, **options) -> Plan`` that writes only its model and
search. :func:`run_solver` is the shared prologue and epilogue: it checks the time limit,
seed and workers, refuses what the solver would ignore (a hint, workers, an unknown option,
link contention or memory it does not model, modes it cannot choose), gives the solve its own
:class:`StopToken` (a compiler calls ``solve`` many times in one process), and stamps the
name, time and interruption on the plan, reports it, and validates it. The status follows
from the plan by one rule (:func:`hetsched.plan.plan_status`).

The registry :data:`SOLVERS` names every latency solver (imported on first use).

Examples
--------
>>> check_time_limit(5)
5.0
>>> check_seed(3)
3
>>> sorted(SOLVERS)  # doctest: +NORMALIZE_WHITESPACE
['anneal', 'bounds', 'clusters', 'cpop', 'cpsat', 'heft', 'lns', 'ls', 'megatron', 'milp',
 'peft', 'portfolio', 'sat', 'sequence', 'whole']
>>> get_solver("heft").capabilities.hint
False
"""

from __future__ import annotations

import importlib
import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

from hetsched.errors import SolverError, UsageError

if TYPE_CHECKING:
    from hetsched.plan import Plan
    from hetsched.problem import Problem

__all__ = [
    "SOLVERS",
    "Capabilities",
    "Progress",
    "ProgressCallback",
    "SolveContext",
    "Solver",
    "StopToken",
    "check_seed",
    "check_time_limit",
    "check_workers",
    "get_solver",
    "report",
    "run_solver",
]


@dataclass(frozen=True)
class Progress:
    """One anytime improvement: best makespan and best bound so far (real time units)."""

    solver: str
    makespan: float
    bound: float
    elapsed: float

    @property
    def gap(self) -> float:
        return 0.0 if self.makespan <= 0 else max(0.0, 1 - self.bound / self.makespan)


ProgressCallback = Callable[[Progress], None]


def report(progress: ProgressCallback | None, event: Progress) -> None:
    """Send ``event`` to ``progress`` if there is one."""
    if progress is not None:
        progress(event)


class StopToken:
    """A cooperative stop flag shared between a signal handler and running solvers.

    Solvers check :meth:`is_set` between steps and register ``on_stop`` callbacks (e.g.
    CP-SAT's ``stop_search``) so that a running search returns its best solution at once.
    """

    def __init__(self) -> None:
        self._event = threading.Event()
        self._callbacks: list[Callable[[], None]] = []
        self._lock = threading.Lock()

    def is_set(self) -> bool:
        return self._event.is_set()

    def set(self) -> None:
        self._event.set()
        with self._lock:
            callbacks = list(self._callbacks)
        for cb in callbacks:
            cb()

    def on_stop(self, cb: Callable[[], None]) -> Callable[[], None]:
        """Register ``cb``; returns a function that unregisters it."""
        with self._lock:
            self._callbacks.append(cb)
        if self._event.is_set():
            cb()

        def remove() -> None:
            with self._lock:
                if cb in self._callbacks:
                    self._callbacks.remove(cb)

        return remove


def check_time_limit(time_limit: object) -> float:
    """A positive finite number of seconds, or :class:`SolverError`."""
    if isinstance(time_limit, bool) or not isinstance(time_limit, int | float):
        msg = f"time limit must be a number of seconds, got {time_limit!r}"
        raise SolverError(msg)
    if not math.isfinite(time_limit) or time_limit <= 0:
        msg = f"time limit must be positive and finite, got {time_limit!r}"
        raise SolverError(msg)
    return float(time_limit)


def check_seed(seed: object) -> int:
    """A non-negative integer seed, or :class:`SolverError`."""
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        msg = f"seed must be a non-negative integer, got {seed!r}"
        raise SolverError(msg)
    return int(seed)


def check_workers(workers: object) -> int:
    """A positive integer number of workers, or :class:`UsageError`."""
    if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
        msg = f"workers must be a positive integer, got {workers!r}"
        raise UsageError(msg)
    return int(workers)


@dataclass(frozen=True)
class Capabilities:
    """What a solver honours. :func:`run_solver` refuses what it would otherwise ignore.

    ``hint``: starts from a given plan. ``workers``: runs parallel workers. ``anytime``:
    reports improvements while it runs. ``exact``: searches the whole problem and can prove
    optimality (an unproven plan is then ``feasible``). ``links``: link contention.
    ``memory``: device capacities. ``modes``: chooses among every mode of an op (precision,
    splits), not only one device-view mode per device. ``structure``: models colocated groups
    and the segment cap (:mod:`hetsched.problem.constraints`) itself; other solvers run on
    :func:`~hetsched.schedule.structure.structure_restriction` and claim the problem's bound.
    """

    hint: bool = False
    workers: bool = False
    anytime: bool = False
    exact: bool = False
    links: bool = True
    memory: bool = True
    modes: bool = False
    structure: bool = False


_KEEP: Any = object()


@dataclass(frozen=True)
class SolveContext:
    """One solve's limits and channels: what :meth:`Solver.run` gets instead of keywords.

    The stop token belongs to this solve (and the sub-solves it starts with :meth:`child`).
    """

    time_limit: float
    seed: int
    stop: StopToken
    workers: int = 1
    progress: ProgressCallback | None = None
    hint: Plan | None = None
    started: float = field(default_factory=time.perf_counter)

    def elapsed(self) -> float:
        return time.perf_counter() - self.started

    def remaining(self) -> float:
        """Seconds left of the time limit (never negative)."""
        return max(0.0, self.time_limit - self.elapsed())

    def expired(self) -> bool:
        """Stopped, or out of time."""
        return self.stop.is_set() or self.remaining() <= 0.0

    def report(self, solver: str, makespan: float, bound: float) -> None:
        """Send an anytime improvement to the progress callback, if there is one."""
        report(self.progress, Progress(solver, makespan, bound, self.elapsed()))

    def child(
        self,
        *,
        time_limit: float | None = None,
        hint: Any = _KEEP,
        seed: int | None = None,
        progress: Any = _KEEP,
    ) -> SolveContext:
        """A sub-solve: same stop token, at most the time left, its own clock."""
        left = self.remaining()
        return SolveContext(
            time_limit=max(1e-3, left if time_limit is None else min(time_limit, left)),
            seed=self.seed if seed is None else seed,
            stop=self.stop,
            workers=self.workers,
            progress=self.progress if progress is _KEEP else progress,
            hint=self.hint if hint is _KEEP else hint,
        )


@dataclass(frozen=True)
class Solver:
    """A solver: its model and search (``run``), what it honours, the options it takes.

    Calling it runs :func:`run_solver`: ``solver(problem, time_limit=..., seed=...)``.
    ``check`` is an extra validator for objective-specific plans (pipelines, modulo).
    """

    name: str
    run: Callable[..., Plan]
    capabilities: Capabilities = field(default_factory=Capabilities)
    options: tuple[str, ...] = ()
    check: Callable[[Plan, Problem], None] | None = None

    def __call__(
        self,
        problem: Problem,
        *,
        time_limit: float = 10.0,
        seed: int = 0,
        hint: Plan | None = None,
        progress: ProgressCallback | None = None,
        workers: int | None = None,
        stop: StopToken | None = None,
        **options: Any,
    ) -> Plan:
        return run_solver(
            self,
            problem,
            time_limit=time_limit,
            seed=seed,
            hint=hint,
            progress=progress,
            workers=workers,
            stop=stop,
            **options,
        )

    def within(self, problem: Problem, ctx: SolveContext, **options: Any) -> Plan:
        """Run as a stage of another solve (its stop token, no validation or report)."""
        return _stamp(self, _run(self, problem, ctx, options), ctx)


# Seconds the validator takes per op (measured: 0.36 s at 10,000 ops on a quiet machine,
# 0.6 s on a busy one), set aside from the time limit (at most VALIDATE_SHARE of it) so
# that the whole call, validation included, ends within it.
VALIDATE_SECONDS_PER_OP = 60e-6
VALIDATE_SHARE = 0.15

# The restriction that pins colocated groups and segments, and the bound a plan over it
# claims (the question's own): imported on first use, as the solvers are (they sit above).
_RESTRICTION = "hetsched.schedule.structure:structure_restriction"
_QUESTION_BOUND = "hetsched.schedule.bounds:quick_lower_bound"


def _load(path: str) -> Any:
    module, attr = path.split(":")
    return getattr(importlib.import_module(module), attr)


def _run(spec: Solver, problem: Problem, ctx: SolveContext, options: dict[str, Any]) -> Plan:
    """``spec.run``; on the structure restriction when the problem has colocated groups or
    a segment cap the solver does not model (its plan then claims the problem's bound, and
    no search of the problem)."""
    rules = problem.constraints
    if rules is None or not rules.structural or spec.capabilities.structure:
        return spec.run(problem, ctx, **options)
    from hetsched.errors import PlanError
    from hetsched.plan import validate

    restricted, how = _load(_RESTRICTION)(problem)
    hint = ctx.hint
    if hint is not None:
        try:
            validate(hint, restricted)
        except PlanError:
            hint = None
    plan = spec.run(restricted, ctx.child(hint=hint), **options)
    bound = _load(_QUESTION_BOUND)(problem) * problem.quantum
    return plan.with_bound(bound, searched=False, stats={**plan.stats, "pinned_by": how})


def run_solver(
    solver: str | Solver,
    problem: Problem,
    *,
    time_limit: float = 10.0,
    seed: int = 0,
    hint: Plan | None = None,
    progress: ProgressCallback | None = None,
    workers: int | None = None,
    stop: StopToken | None = None,
    validate: bool = True,
    **options: Any,
) -> Plan:
    """Solve ``problem`` with ``solver`` (a :class:`Solver` or a name in :data:`SOLVERS`).

    Raises
    ------
    UsageError : a hint, workers or an option the solver does not take.
    SolverError : bad limits, or constraints or modes the solver does not model.
    """
    spec = get_solver(solver) if isinstance(solver, str) else solver
    caps = spec.capabilities
    time_limit = check_time_limit(time_limit)
    seed = check_seed(seed)
    if hint is not None and not caps.hint:
        msg = f"solver {spec.name!r} does not start from a hint"
        raise UsageError(msg)
    if workers is not None and not caps.workers:
        msg = f"solver {spec.name!r} runs on one thread; it takes no workers"
        raise UsageError(msg)
    unknown = sorted(set(options) - set(spec.options))
    if unknown:
        takes = ", ".join(spec.options) or "none"
        msg = f"solver {spec.name!r} takes no option {unknown[0]!r} (its options: {takes})"
        raise UsageError(msg)
    if problem.link_contention and not caps.links:
        msg = f"solver {spec.name!r} does not model link contention; use cpsat or portfolio"
        raise SolverError(msg)
    if problem.use_memory and not caps.memory:
        msg = f"solver {spec.name!r} does not model device memory; use cpsat or portfolio"
        raise SolverError(msg)
    if not caps.modes and not problem.is_device_table:
        msg = (
            f"solver {spec.name!r} chooses one device per op; this problem has other modes "
            "(precision, splits): use heft, cpsat or portfolio"
        )
        raise SolverError(msg)
    # the validation after the solve is part of the time asked for: the search ends early
    reserve = (
        min(VALIDATE_SHARE * time_limit, VALIDATE_SECONDS_PER_OP * problem.n) if validate else 0.0
    )
    ctx = SolveContext(
        time_limit=time_limit - reserve,
        seed=seed,
        stop=stop if stop is not None else StopToken(),
        workers=check_workers(workers) if workers is not None else (2 if caps.workers else 1),
        progress=progress,
        hint=hint,
    )
    plan = _stamp(spec, _run(spec, problem, ctx, options), ctx)
    if progress is not None and not caps.anytime:
        ctx.report(spec.name, plan.objective_value, plan.objective_bound)
    if validate:
        from hetsched.plan import validate as check

        check(plan, problem)
        if spec.check is not None:
            spec.check(plan, problem)
    return plan


def _stamp(spec: Solver, plan: Plan, ctx: SolveContext) -> Plan:
    """The epilogue every plan gets: who solved it, how long, whether it was cut short."""
    return replace(plan, solver=spec.name, solve_time=ctx.elapsed(), interrupted=ctx.stop.is_set())


# name -> "module:attribute" of the Solver. Imported lazily so that one missing optional
# backend does not break the others.
SOLVERS: dict[str, str] = {
    "heft": "hetsched.schedule.latency.heuristics:solve_heft",
    "peft": "hetsched.schedule.latency.heuristics:solve_peft",
    "cpop": "hetsched.schedule.latency.heuristics:solve_cpop",
    "bounds": "hetsched.schedule.latency.boundsolver:solve_bounds",
    "cpsat": "hetsched.schedule.latency.cpsat:solve_cpsat",
    "milp": "hetsched.schedule.latency.milp:solve_milp",
    "sat": "hetsched.schedule.latency.sat:solve_sat",
    "lns": "hetsched.schedule.latency.lns:solve_lns",
    "ls": "hetsched.schedule.latency.localsearch:solve_local_search",
    "clusters": "hetsched.schedule.latency.clusters:solve_clusters",
    "anneal": "hetsched.schedule.latency.anneal:solve_anneal",
    "portfolio": "hetsched.schedule.latency.portfolio:solve_portfolio",
    "megatron": "hetsched.schedule.latency.splits:solve_megatron",
    "whole": "hetsched.schedule.latency.splits:solve_whole",
    "sequence": "hetsched.schedule.latency.splits:solve_sequence",
}


def get_solver(name: str) -> Solver:
    """The solver called ``name``; :class:`UsageError` listing the valid ones."""
    if name not in SOLVERS:
        msg = f"unknown solver {name!r} (choose from {', '.join(sorted(SOLVERS))})"
        raise UsageError(msg)
    module, attr = SOLVERS[name].split(":")
    try:
        found = getattr(importlib.import_module(module), attr)
    except (ModuleNotFoundError, AttributeError) as err:
        msg = f"solver {name!r} is not available in this build ({err})"
        raise UsageError(msg) from err
    if not isinstance(found, Solver):  # pragma: no cover - registry typo
        msg = f"{SOLVERS[name]} is not a Solver"
        raise UsageError(msg)
    return found
