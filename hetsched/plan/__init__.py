"""Plans: where and when every op runs, validated independently, saved as JSON.

* :class:`Plan`, :class:`Transfer`, :func:`plan_from_schedule`, the status rule (:mod:`.plan`);
* :class:`PipelineResult`, :class:`ModuloResult` - typed objective results (:mod:`.results`);
* the one memory model (:mod:`.memory`);
* :func:`validate` - the independent checker (:mod:`.validate`);
* :func:`save_plan` / :func:`load_plan` - the ``hetsched.plan/N`` format (:mod:`.jsonio`).
"""

from hetsched.plan.jsonio import PLAN_FORMAT, load_plan, plan_from_dict, plan_to_dict, save_plan
from hetsched.plan.memory import MemoryTracker, overflow, static_usage
from hetsched.plan.plan import (
    STATUSES,
    Plan,
    Transfer,
    check_membership,
    mode_array,
    mode_ids,
    plan_from_schedule,
    plan_status,
    plan_transfer_starts,
    schedule_arrays,
)
from hetsched.plan.results import ModuloResult, PeakMemoryResult, PipelineResult
from hetsched.plan.validate import validate

__all__ = [
    "PLAN_FORMAT",
    "STATUSES",
    "MemoryTracker",
    "ModuloResult",
    "PeakMemoryResult",
    "PipelineResult",
    "Plan",
    "Transfer",
    "check_membership",
    "load_plan",
    "mode_array",
    "mode_ids",
    "overflow",
    "plan_from_dict",
    "plan_from_schedule",
    "plan_status",
    "plan_to_dict",
    "plan_transfer_starts",
    "save_plan",
    "schedule_arrays",
    "static_usage",
    "validate",
]
