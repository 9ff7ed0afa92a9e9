"""``hetsched bench``: our solvers and anrg-saga peers side by side on a suite."""

from __future__ import annotations

import argparse
import shlex
import sys
from typing import Any

__all__ = ["register"]


def _names(text: str) -> tuple[str, ...]:
    return tuple(x.strip() for x in text.split(",") if x.strip())


def _ints(text: str) -> tuple[int, ...]:
    return tuple(int(x) for x in _names(text))


def _floats(text: str) -> tuple[float, ...]:
    return tuple(float(x) for x in _names(text))


def register(sub: Any) -> None:
    from hetsched.bench import DEFAULT_PEERS, DEFAULT_SOLVERS

    p = sub.add_parser(
        "bench",
        help="benchmark solvers and peer schedulers on a suite",
        description=(
            "Run solvers and anrg-saga peers on a suite; validate every schedule; write "
            "report.md, CSV, JSON and PNG plots to OUTDIR."
        ),
    )
    p.add_argument(
        "--suite",
        required=True,
        choices=("random", "memory-bound", "stg", "models", "workflows", "graphs"),
    )
    p.add_argument("--dir", default=None, help="stg: .stg + optima CSVs; workflows: WfFormat JSONs")
    p.add_argument("--solvers", type=_names, default=DEFAULT_SOLVERS, help="comma list")
    p.add_argument("--peers", type=_names, default=DEFAULT_PEERS, help="comma list ('' = none)")
    p.add_argument("--time-limit", type=float, default=None, metavar="SEC",
                   help="per solver and instance (default 10, --quick 2)")  # fmt: skip
    p.add_argument("--quick", action="store_true", help="a small suite (< 2 minutes)")
    p.add_argument("--jobs", type=int, default=1, help="parallel tasks (Ray when > 1)")
    p.add_argument("--workers", type=int, default=1,
                   help="threads per exact solver (CP-SAT workers; default 1)")  # fmt: skip
    p.add_argument("--ray-address", default=None, help="an existing Ray cluster")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--hash-seed", type=int, default=0, help="PYTHONHASHSEED for saga peers")
    p.add_argument("--graphs", type=lambda s: tuple(s.split(",")), default=(),
                   help="graphs suite: comma list of graph files")  # fmt: skip
    p.add_argument("--platform", default=None, help="graphs suite: preset or TOML")
    p.add_argument("--processors", type=_ints, default=None, help="stg: e.g. 2,4,8")
    p.add_argument("--sizes", type=_ints, default=None, help="random: op counts, e.g. 50,100")
    p.add_argument("--devices", type=_ints, default=None, help="random: device counts")
    p.add_argument("--ccr", type=_floats, default=None, help="random: CCRs, e.g. 0.1,1,10")
    p.add_argument("--beta", type=_floats, default=None, help="random: noise (0 = related)")
    p.add_argument("--limit", type=int, default=None, help="first N instances (stg: graphs)")
    p.add_argument("--split", action="store_true",
                   help="models: tensor-parallel split modes (solvers whole, megatron, "
                   "sequence: the baselines without splits, with Megatron-style fixed "
                   "sharding and with sequence parallelism)")  # fmt: skip
    p.add_argument("--no-plots", action="store_true")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.add_argument("-o", "--output", required=True, metavar="OUTDIR")
    p.set_defaults(func=run_bench_cmd)


def run_bench_cmd(args: argparse.Namespace) -> int:
    from hetsched.bench import BenchConfig, run_bench
    from hetsched.bench.output import summary_markdown
    from hetsched.fileio import check_output_dir

    check_output_dir(args.output)  # before the suite runs: a bad path must not cost it
    cfg = BenchConfig(
        suite=args.suite,
        out=args.output,
        directory=args.dir,
        solvers=args.solvers,
        peers=args.peers,
        time_limit=args.time_limit,
        quick=args.quick,
        jobs=args.jobs,
        workers=args.workers,
        ray_address=args.ray_address,
        seed=args.seed,
        hash_seed=args.hash_seed,
        graphs=args.graphs,
        platform=args.platform,
        processors=args.processors,
        sizes=args.sizes,
        devices=args.devices,
        ccrs=args.ccr,
        betas=args.beta,
        limit=args.limit,
        split=args.split,
        progress=not args.quiet,
        plots=not args.no_plots,
        command="hetsched " + shlex.join(sys.argv[1:]),
    )
    from hetsched.cli import EXIT_INTERRUPTED
    from hetsched.cli.solve_cmds import run_in_worker, stop_on_signals
    from hetsched.solver import StopToken

    with stop_on_signals(StopToken()) as stop:
        res = run_in_worker(lambda: run_bench(cfg, stop=stop))
    print(summary_markdown(res))
    print(f"wrote {', '.join(res['files'])} to {args.output} in {res['wall_time']:.1f} s")
    if res.get("interrupted"):
        print("interrupted: the report holds the tasks that finished", file=sys.stderr)
        return EXIT_INTERRUPTED
    return 0
