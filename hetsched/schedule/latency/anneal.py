"""Simulated annealing over devices and dispatch order, for communication-heavy graphs.

When a transfer costs ten times an op, a good plan is a balance no greedy move finds: the
cluster moves (:mod:`~hetsched.schedule.latency.clusters`) keep only moves that do not
lengthen the schedule and stop in the first local optimum. This search walks on through
worse schedules, with the probability of taking one falling as the temperature does
(Kirkpatrick, Gelatt and Vecchi, *Optimization by Simulated Annealing*, Science 1983). A
state is a device per op and a global dispatch order (topological); its cost is the
makespan of the schedule :class:`~hetsched.schedule.latency.listsched.Retimer` builds from
it, plus a small share of the mean finish time so that moves which free a device earlier
count before the makespan falls. The Metropolis draw is made first: a trial is re-timed only
until its makespan shows the draw rejects it, and not at all where the busy time of the
device a move fills already does (the same plan; on load-bound schedules, 30-100 ops at
CCR 1 on 3 devices, 35-39% fewer trials re-timed; 0-7% at CCR 10). The moves: one op to
another device (more often the device of one of its neighbours, to take a transfer off),
one op with the neighbours that share its device to a neighbour's device, and one op to
another place in the order between its last input and its first consumer.

The temperature starts at a multiple of the makespan per op and falls quadratically to
zero over the budget. The multiple follows the number of moves the budget allows per op
(one evaluation is a linear pass over the graph): hot when there are many, cold when there
are few, since a hot search with few moves ends worse than it started. Never worse than its
start. The moves run in a loop compiled with numba
(:mod:`~hetsched.schedule.latency.annealkernel`: about 1 us per move at 100 ops, 6 us at
1,000), and in Python where it does not apply (link contention, a memory limit); both draw
the same uniforms and give the same plan.

Examples
--------
>>> import numpy as np
>>> from hetsched.problem import Problem
>>> from hetsched.schedule.latency.heuristics import solve_heft
>>> rng = np.random.default_rng(0)
>>> n = 40
>>> edges = [(i, j, float(rng.integers(50, 150)))
...          for j in range(1, n) for i in rng.choice(j, size=min(j, 2), replace=False)]
>>> p = Problem.from_arrays(names=[f"t{i}" for i in range(n)], devices=["a", "b", "c"],
...     exec_time=rng.integers(5, 20, size=(n, 3)).astype(float), edges=edges,
...     comm_inv_bandwidth=np.ones((3, 3)) - np.eye(3), quantum=1.0)
>>> h = solve_heft(p)
>>> plan = anneal(p, h, moves=20_000, seed=0)
>>> plan.makespan < h.makespan
True
"""

from __future__ import annotations

import logging
import math
import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor
from typing import TYPE_CHECKING

import numpy as np

from hetsched.plan import Plan, overflow, plan_from_schedule, schedule_arrays
from hetsched.problem import Problem
from hetsched.schedule.bounds import quick_lower_bound
from hetsched.schedule.latency.heuristics import solve_heft
from hetsched.schedule.latency.listsched import MoveTables, Retimer, priority_order, retime
from hetsched.solver import Capabilities, SolveContext, Solver, StopToken

if TYPE_CHECKING:
    from hetsched.schedule.latency.annealkernel import Kernel

log_ = logging.getLogger(__name__)

# Uniform draws per move (the compiled loop takes the same ones): the op, the kind of move,
# neighbour's device or any, the device or place, the Metropolis draw.
DRAWS = 5

__all__ = [
    "COMPILED_MAX_MOVES_PER_OP",
    "COMPILED_MOVE_SECONDS",
    "MAX_MOVES_PER_OP",
    "MIN_MOVES_PER_OP",
    "MOVE_SECONDS",
    "NOT_COMPILED",
    "TIE_WEIGHT",
    "anneal",
    "compiles",
    "compiling",
    "kernel_ready",
    "moves_for",
    "moves_within",
    "ready_within",
    "solve_anneal",
    "start_temperature",
    "warm_up",
    "warm_up_now",
]

# Weight of the mean finish time (per op) in the cost: breaks the makespan's plateaus.
TIE_WEIGHT = 0.1
# Start temperature, in makespan per op, by moves per op the budget allows: MOVES_PER_HEAT
# moves per op for each unit, between MIN_HEAT and MAX_HEAT. Measured on the random suite's
# CCR-10 graphs (4 s from the cluster moves' plan, two seeds): on the 100-op 8-device related
# graph the best runs started near 4 (1,221 and 1,578 against 1,597 at 0.5); at 300 ops
# near 0.5 (2,472-3,435 against little or no gain at 4). With the compiled loop (1,000 to
# 16,000 moves per op from HEFT, two seeds, heats 1/2/4/8 on five 100- and 300-op graphs):
# 2 best or level in 9 of 15 rows, 4 in 2; at 300 ops on 8 devices and 16,000 moves per op
# 2,168 against 2,281 at 4 (related) and, at 4,000, 2,130 against 2,565 (unrelated).
MOVES_PER_HEAT = 250.0
MIN_HEAT = 0.5
MAX_HEAT = 2.0
# Move mix: device moves, then group moves, the rest order moves; a device move takes a
# neighbour's device this often.
DEVICE_MOVES = 0.55
GROUP_MOVES = 0.15
NEIGHBOUR_DEVICE = 0.6
# Below this many moves per op the search does not start (at 1,000 ops on the random
# suite's CCR-10 graphs, 30 s: about 7 per op, and the plans were within 0.1% of those
# without it).
MIN_MOVES_PER_OP = 20.0
# Seconds one move costs per op and edge of the graph, to turn a budget into moves: in
# Python (the move loop for link contention and memory limits) measured 0.09-0.13 us on the
# random suite's CCR-10 graphs at 100-1,000 ops on 3 and 8 devices (each trial re-timed from
# the first place of the order it changes); in the compiled loop 1.6-3.3 ns.
MOVE_SECONDS = 1.5e-7
COMPILED_MOVE_SECONDS = 4e-9
# At most this many moves per op: in Python about 3 s at 100 ops (at 60 s and CCR 1,
# annealing for 30% of the time cost CP-SAT the proof of a 100-op graph); compiled about
# 10 s at 100 ops (the 10 s CCR-10 bench: 20,000 -> 100,000 per op, mean gap 22.3% -> 21.3%).
MAX_MOVES_PER_OP = 1000
COMPILED_MAX_MOVES_PER_OP = 100_000
# Moves between clock reads: in Python, and in the compiled loop.
CHECK_EVERY = 200
COMPILED_CHECK_EVERY = 2000


def start_temperature(makespan: int, n: int, moves_per_op: float) -> float:
    """Start temperature (units) for a search that can afford ``moves_per_op`` moves per op.

    >>> start_temperature(1500, 100, 1000.0), start_temperature(3400, 300, 60.0)
    (30.0, 5.666666666666667)
    """
    heat = min(MAX_HEAT, max(MIN_HEAT, moves_per_op / MOVES_PER_HEAT))
    return heat * makespan / n


class _State:
    """Devices, order and cost of the current schedule, and the best one seen: annealing in
    Python, for graphs the compiled loop does not take (link contention, a memory limit).
    A trial re-times only from the first place of the order it changes
    (:meth:`~hetsched.schedule.latency.listsched.Retimer.resume`)."""

    def __init__(self, p: Problem, assign: list[int], order: list[int]) -> None:
        n = p.n
        self.p = p
        self.retimer = Retimer(p)
        self.graph = MoveTables.of(p)
        self.assign = assign
        self.order = order
        self.pos = [0] * n  # each op's place in the order
        for i, v in enumerate(order):
            self.pos[v] = i
        timing = self.retimer.resume(assign, order)
        assert timing is not None  # no cap
        self.timing = timing
        self.cost, self.makespan = _cost(self.timing[0])
        self.load = [0] * p.num_devices  # each device's busy time: no trial ends before it
        for v, d in enumerate(assign):
            self.load[d] += self.retimer.dur[v][d]
        self.best_assign, self.best_order = list(assign), list(order)
        self.evaluations = 0
        self.trial = self.timing  # the timing of the last evaluation

    def run(
        self,
        draws: np.ndarray,
        done: int,
        moves: int,
        heat: float,
        shares: tuple[float, float, float],
    ) -> None:
        """Moves ``done`` .. ``done + len(draws) - 1`` of ``moves``, one row of ``draws``
        each (as :meth:`~hetsched.schedule.latency.annealkernel.Kernel.run`)."""
        for m, u in enumerate(draws.tolist()):
            t = 1.0 - (done + m) / moves
            _move(self, u, heat * t * t, shares)

    def evaluate(
        self, assign: list[int], order: list[int], first: int, cap: float
    ) -> tuple[float, int] | None:
        """Cost and makespan of ``(assign, order)``, which agrees with the current state
        before place ``first`` of the order; ``None`` once its makespan shows its cost
        will be above ``cap`` (:meth:`~hetsched.schedule.latency.listsched.Retimer.resume`)."""
        trial = self.retimer.resume(assign, order, base=self.timing, first=first, cap=cap)
        if trial is None:
            return None
        self.trial = trial
        return _cost(trial[0])

    def fits(self, assign: list[int]) -> bool:
        p = self.p
        if not p.use_memory:
            return True
        return overflow(p, p.device_mode[np.arange(p.n), np.array(assign)]) is None


def _cost(fin: list[int]) -> tuple[float, int]:
    """The search's cost of a schedule with these finish times, and its makespan."""
    makespan = max(fin)
    return makespan + TIE_WEIGHT * sum(fin) / (len(fin) * len(fin)), makespan


def moves_within(problem: Problem, seconds: float) -> int:
    """The moves to make in ``seconds``, by a fixed cost per move and per op and edge
    (:data:`COMPILED_MOVE_SECONDS` where the compiled loop runs, else :data:`MOVE_SECONDS`),
    so that the search, hence the plan, does not depend on the machine.

    >>> import numpy as np
    >>> p = Problem.from_arrays(names=["a", "b"], devices=["x", "y"],
    ...     exec_time=np.ones((2, 2)), edges=[(0, 1, 1.0)], quantum=1.0)
    >>> moves_within(p, 1.0)
    83333333
    """
    per_move = COMPILED_MOVE_SECONDS if compiles(problem) else MOVE_SECONDS
    return int(seconds / (per_move * (problem.n + problem.num_edges)))


def moves_for(problem: Problem, seconds: float) -> int:
    """The moves an annealing run given ``seconds`` makes: :func:`moves_within`, at most
    :data:`COMPILED_MAX_MOVES_PER_OP` per op where the compiled loop runs, else
    :data:`MAX_MOVES_PER_OP`.

    >>> import numpy as np
    >>> p = Problem.from_arrays(names=["a", "b"], devices=["x", "y"],
    ...     exec_time=np.ones((2, 2)), edges=[(0, 1, 1.0)], quantum=1.0)
    >>> moves_for(p, 1.0), moves_for(p, 1e-7)
    (200000, 8)
    """
    most = COMPILED_MAX_MOVES_PER_OP if compiles(problem) else MAX_MOVES_PER_OP
    return min(moves_within(problem, seconds), most * problem.n)


def anneal(
    problem: Problem,
    start: Plan,
    *,
    moves: int,
    seed: int = 0,
    time_limit: float | None = None,
    stop: StopToken | None = None,
    compiled: bool | None = None,
    heat: float | None = None,
) -> Plan:
    """Anneal from ``start`` for ``moves`` moves (fewer if ``time_limit`` seconds pass,
    compiling the loop included, or ``stop`` is set first): the best plan seen, or
    ``start`` when none beats it. The same seed and moves give the same plan, compiled or
    not. ``problem`` must be a device view.
    ``compiled``: run the moves in the compiled loop
    (:mod:`~hetsched.schedule.latency.annealkernel`); by default wherever it applies (no link
    contention, no memory limit) and numba is installed. ``heat``: the start temperature in
    makespan per op (default :func:`start_temperature`'s, by the moves per op)."""
    p = problem
    n = p.n
    # the clock starts before the state is built: compiling (or loading) the loop counts
    deadline = None if time_limit is None else time.perf_counter() + time_limit
    if compiled is None:
        compiled = compiles(p)
    if compiled:  # compiled (or loaded) once per process, here if not before
        warm_up().result()
        compiled = not _BROKEN
    assign_arr, start_arr = schedule_arrays(start, p)
    order = priority_order(p, start_arr + np.arange(n) * 1e-6)  # the plan's, as clusters'
    assign0 = [int(x) for x in assign_arr]
    state: _State | Kernel = _kernel(p, assign0, order) if compiled else _State(p, assign0, order)
    first = state.makespan
    stats: dict[str, object] = {"start_makespan": first, "moves": 0, "compiled": compiled}
    if moves < MIN_MOVES_PER_OP * n:  # too few to walk anywhere: give the time back
        return start.with_(stats={**start.stats, "anneal": {**stats, "skipped": moves}})
    draws = np.random.default_rng(seed)
    initial = start_temperature(first, n, moves / n) if heat is None else heat * first / n
    shares = (DEVICE_MOVES, GROUP_MOVES, NEIGHBOUR_DEVICE)
    check_every = COMPILED_CHECK_EVERY if compiled else CHECK_EVERY
    done = 0
    while done < moves:
        if (stop is not None and stop.is_set()) or (
            deadline is not None and time.perf_counter() > deadline
        ):
            stats["stopped"] = "time"
            break
        block = draws.random((min(check_every, moves - done), DRAWS))
        state.run(block, done, moves, initial, shares)
        done += len(block)
    stats.update(moves=done, evaluations=state.evaluations)
    if state.makespan >= first:
        return start.with_(stats={**start.stats, "anneal": stats})
    assign = np.array(state.best_assign, dtype=np.int64)
    start_times, xfer = retime(p, assign, list(state.best_order))
    return plan_from_schedule(
        p,
        assign=assign,
        start=start_times,
        solver="anneal",
        lower_bound=quick_lower_bound(p) * p.quantum,
        stats=stats,
        transfer_start=xfer or None,
        baselines=start.baselines,
    )


def compiles(problem: Problem) -> bool:
    """Whether annealing on ``problem`` runs in the compiled loop: no link contention, no
    memory limit, and numba installed."""
    if problem.link_contention or problem.use_memory or _BROKEN:
        return False
    return _numba_installed()


def _numba_installed() -> bool:
    try:
        import numba  # noqa: F401
    except ImportError:  # numba is a dependency; without it, Python
        return False
    return True


# numba failed to compile the loop in this process (:func:`_compile`): Python from then on.
_BROKEN = False


_WARMING: Future[None] | None = None
_WARMING_LOCK = threading.Lock()


def warm_up() -> Future[None]:
    """Compile (or load from numba's cache) the compiled loop in a thread of its own, once
    per process, from the first call: its future. Solvers start it as they start, so that
    the seconds a fresh environment takes to compile (3-10 s measured on 2 cores; the cache
    0.35-0.7 s) pass beside their heuristics, not inside the annealing's time, and return
    when their time is up whether it has ended or not (a process exits once it has: the
    next one loads it). Beside Python on the main thread it costs that thread little: five
    HEFT runs at 300 ops took 0.29 s alone, 0.32 s beside a compile. numba's import and
    its registries are loaded first, on the caller's thread (:func:`_load_numba`)."""
    global _WARMING
    with _WARMING_LOCK:
        if _WARMING is None:
            if _load_numba():
                pool = ThreadPoolExecutor(1, thread_name_prefix="hetsched-compile")
                _WARMING = pool.submit(_compile)
                pool.shutdown(wait=False)
            else:  # annealing in Python (_BROKEN): nothing to wait for
                _WARMING = Future()
                _WARMING.set_result(None)
        return _WARMING


def compiling() -> bool:
    """Whether the compile :func:`warm_up` started is still running."""
    return _WARMING is not None and not _WARMING.done()


def _load_numba() -> bool:
    """Import numba and load its typing and lowering registries (0.5-0.6 s here, once per
    process); ``False`` where that fails (annealing runs in Python in this process then,
    :data:`_BROKEN`). numba loads them on its first compile, reading ``math.pow`` and the
    builtins as they are then; a non-strict ``torch.export`` replaces those while it traces
    (a lambda and ``functools.partial`` objects), so a first compile on a thread beside one
    failed, and every compile after it in that process (reproduced: numba's registries
    loaded inside ``torch.export``'s patch fail at once). Here, on the thread that starts a
    solve, they are the real ones, and so are the ``min`` and ``max`` the loop's module
    binds as it is imported (:mod:`~hetsched.schedule.latency.annealkernel`)."""
    global _BROKEN
    try:
        from numba.core.registry import cpu_target

        import hetsched.schedule.latency.annealkernel  # noqa: F401

        cpu_target.target_context.refresh()
    except ImportError:  # numba is a dependency; without it, :func:`_compile` says so
        return True
    except Exception as err:  # e.g. a solve started inside a torch.export trace
        log_.warning("numba did not load (%s): annealing in Python", err)
        _BROKEN = True
        return False
    return True


def _compile() -> None:
    """:func:`~hetsched.schedule.latency.annealkernel.compile_kernel`; if numba fails,
    annealing runs in Python in this process from then on (:func:`compiles`): the same
    plans per seed and moves, fewer moves per second."""
    global _BROKEN
    try:
        from hetsched.schedule.latency.annealkernel import compile_kernel

        compile_kernel()
    except Exception as err:  # any failure: the moves in Python give the same plans
        log_.warning("numba did not compile the annealing loop (%s): annealing in Python", err)
        _BROKEN = True


# What annealing says (``stats["anneal"]``) when the loop it would run is still compiling
# at the end of its time.
NOT_COMPILED = "no time left after compiling"


def ready_within(problem: Problem, timeout: float, stop: StopToken | None = None) -> bool:
    """Whether annealing on ``problem`` can start within ``timeout`` seconds: at once in
    Python, else once the compiled loop is ready (:func:`kernel_ready`)."""
    return not compiles(problem) or kernel_ready(timeout, stop)


def kernel_ready(timeout: float, stop: StopToken | None = None) -> bool:
    """Whether the compiled loop is ready (:func:`warm_up`, started if it was not) within
    ``timeout`` seconds: ``False`` if it is still compiling then, or ``stop`` is set first."""
    warming = warm_up()
    deadline = time.perf_counter() + timeout
    while not (stop is not None and stop.is_set()):
        try:
            warming.result(timeout=max(0.0, min(0.05, deadline - time.perf_counter())))
        except TimeoutError:
            if time.perf_counter() >= deadline:
                return False
            continue
        return True
    return False


def warm_up_now() -> None:
    """Wait for the compiled loop (:func:`warm_up`) where numba is installed: a benchmark's
    warm-up, so that its timed solves do not pay a fresh environment's compile."""
    if _numba_installed():
        warm_up().result()


def _kernel(p: Problem, assign: list[int], order: list[int]) -> Kernel:
    from hetsched.schedule.latency.annealkernel import Kernel

    return Kernel(p, MoveTables.of(p), assign=assign, order=order, tie_weight=TIE_WEIGHT)


def _move(
    state: _State, u: list[float], temperature: float, shares: tuple[float, float, float]
) -> None:
    """Try one random move, drawn from the uniforms ``u`` (:data:`DRAWS` of them); take it
    if the cost falls, or by the Metropolis rule."""
    device_share, group_share, neighbour_share = shares
    assign, order, g = state.assign, state.order, state.graph
    n = len(assign)
    v = min(int(u[0] * n), n - 1)
    r = u[1]
    neighbours = g.neighbours[v]
    if r < device_share + group_share:
        grouped = r >= device_share
        if not neighbours and grouped:
            return
        if neighbours and (grouped or u[2] < neighbour_share):
            device = assign[neighbours[_pick(u[3], len(neighbours))]]
        else:
            device = g.allowed[v][_pick(u[3], len(g.allowed[v]))]
        if device == assign[v]:
            return
        group = [v]
        if grouped:  # the op and its neighbours on its device
            group += [x for x in neighbours if assign[x] == assign[v]]
        if any(device not in g.allowed[x] for x in group):
            return
        old = [assign[x] for x in group]
        for x in group:
            assign[x] = device
        first = min(state.pos[x] for x in group)
        dur, load = state.retimer.dur, state.load
        busy = load[device] + sum(dur[x][device] for x in group)
        if not (
            state.fits(assign) and _accept(state, assign, order, first, u[4], temperature, busy)
        ):
            for x, d in zip(group, old, strict=True):
                assign[x] = d
            return
        for x, d in zip(group, old, strict=True):
            load[d] -= dur[x][d]
            load[device] += dur[x][device]
        return
    # an order move: v anywhere between its last input and its first consumer
    pos = state.pos
    lo = max((pos[u] for u in g.preds[v]), default=-1) + 1
    hi = min((pos[w] for w in g.succs[v]), default=n) - 1
    i = pos[v]
    if hi <= lo:
        return
    j = lo + _pick(u[3], hi - lo + 1)
    if j == i:
        return
    trial = order[:i] + order[i + 1 :]
    trial.insert(j, v)
    if _accept(state, assign, trial, min(i, j), u[4], temperature):
        state.order = trial
        for k in range(min(i, j), max(i, j) + 1):
            pos[trial[k]] = k


def _pick(draw: float, k: int) -> int:
    """An index below ``k`` from a uniform draw in [0, 1)."""
    return min(int(draw * k), k - 1)


def _accept(
    state: _State,
    assign: list[int],
    order: list[int],
    first: int,
    draw: float,
    temperature: float,
    floor: int = 0,
) -> bool:
    """Evaluate ``(assign, order)`` (the current state's before place ``first``); if taken,
    it becomes the current state's timing and cost (and the best, if its makespan is the
    lowest yet). The Metropolis rule (a rise ``delta`` is taken with probability
    ``exp(-delta / temperature)``, ``draw`` the uniform) is drawn first, as the most the
    cost may rise, so that the re-timing stops as soon as the makespan alone rises more,
    and does not start where ``floor`` (a least makespan of the trial: the busy time of the
    device a move fills) already does."""
    rise = 0.0 if temperature <= 0 else math.inf if draw <= 0 else -temperature * math.log(draw)
    if floor > state.cost + rise:
        return False
    state.evaluations += 1
    found = state.evaluate(assign, order, first, cap=state.cost + rise)
    if found is None:
        return False
    cost, makespan = found
    delta = cost - state.cost
    if delta > 0 and not delta < rise:
        return False
    state.cost = cost
    state.timing = state.trial
    if makespan < state.makespan:
        state.makespan = makespan
        state.best_assign, state.best_order = list(assign), list(order)
    return True


def _anneal(problem: Problem, ctx: SolveContext) -> Plan:
    """Anneal from the hint (default: HEFT) for the time limit."""
    p = problem
    hint = ctx.hint if ctx.hint is not None else solve_heft.within(p, ctx.child())
    if not p.is_device_table:  # moves are between devices: one mode per (op, device)
        return hint.with_(stats={**hint.stats, "anneal": "needs one mode per (op, device)"})
    if not ready_within(p, ctx.remaining(), ctx.stop):  # (a fresh environment)
        return hint.with_(stats={**hint.stats, "anneal": NOT_COMPILED})
    budget = ctx.remaining()
    moves = moves_for(p, budget)
    return anneal(p, hint, moves=moves, seed=ctx.seed, time_limit=budget, stop=ctx.stop)


solve_anneal = Solver("anneal", _anneal, Capabilities(hint=True, anytime=True))
