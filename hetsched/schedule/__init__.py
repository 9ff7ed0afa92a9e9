"""When ops run: lower bounds, latency solvers and throughput (pipeline + modulo) solvers.

* :mod:`hetsched.schedule.bounds` - lower bounds on the makespan.
* :mod:`hetsched.schedule.latency` - one inference as fast as possible: list schedulers,
  CP-SAT, MILP, SAT, local and large-neighbourhood search, decompositions, the portfolio.
* :mod:`hetsched.schedule.throughput` - repeated inferences: pipeline partitions and modulo
  schedules.
"""
