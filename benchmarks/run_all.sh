#!/bin/sh
# The benchmark runs reported in BENCHMARKS.md. Run from the repository root with the bench
# extras installed (pip install -e '.[bench]'). PYTHONHASHSEED=0 lets saga peers run in-process
# (saga breaks ties by set order; with another hash seed they run in a subprocess with 0).
set -e
cd benchmarks/results
B="env PYTHONHASHSEED=0 ../../.venv/bin/hetsched bench --quiet --jobs 1"
$B --suite random --quick -o random-quick
$B --suite random --sizes 50,100,300 --devices 3,8 --solvers heft,peft,cpop,cpsat \
   --time-limit 10 -o random-50-300
$B --suite stg --dir ../../../shared/benchmarks/stg50 --processors 2,4,8 --limit 20 \
   --solvers heft,peft,cpop,cpsat,milp,sat --time-limit 10 -o stg50-p248
$B --suite stg --dir ../../../shared/benchmarks/stg50 --processors 2,4,8 --limit 60 \
   --solvers heft,peft,cpop,cpsat,milp,sat \
   --peers saga-heft,saga-cpop,saga-minmin,saga-etf,saga-hbmct --time-limit 10 -o stg50-p248-60
$B --suite random --sizes 5,6 --devices 2 --beta 0 --solvers heft,cpsat,milp,sat \
   --peers saga-heft,saga-bruteforce,saga-smt --time-limit 10 -o tiny-exact
$B --suite workflows --quick --solvers heft,peft,cpsat --peers saga-heft,saga-cpop \
   --time-limit 3 -o workflows-quick
