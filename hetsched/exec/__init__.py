"""hetsched.exec: run plans on simulated devices with real torch numerics.

:func:`execute` runs a plan with one thread per device and per link (virtual or scaled
real time, device/op/transfer faults, re-planning); :func:`execute_periodic` runs ``N``
overlapping iterations of a throughput plan and measures its period; :func:`simulate` and
:func:`robustness` replay a plan under other or noisy durations; :func:`chrome_trace`
and :func:`save_gantt` draw plans and runs.
"""

from hetsched.exec.errors import ExecutionError, InjectedFault
from hetsched.exec.executor import execute
from hetsched.exec.faults import DeviceFailure, Fault, OpFailure, TransferLoss, parse_fault
from hetsched.exec.gantt import gantt_png, save_gantt
from hetsched.exec.periodic import PeriodicRun, execute_periodic
from hetsched.exec.replan import ReplanRequest, mask_devices, replan_list
from hetsched.exec.result import ExecutionResult, OpRun, TransferRun
from hetsched.exec.simulate import Simulation, robustness, simulate
from hetsched.exec.trace import chrome_trace, save_trace

__all__ = [
    "DeviceFailure",
    "ExecutionError",
    "ExecutionResult",
    "Fault",
    "InjectedFault",
    "OpFailure",
    "OpRun",
    "PeriodicRun",
    "ReplanRequest",
    "Simulation",
    "TransferLoss",
    "TransferRun",
    "chrome_trace",
    "execute",
    "execute_periodic",
    "gantt_png",
    "mask_devices",
    "parse_fault",
    "replan_list",
    "robustness",
    "save_gantt",
    "save_trace",
    "simulate",
]
