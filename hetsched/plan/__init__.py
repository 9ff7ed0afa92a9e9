"""Plans: where and when every op runs, validated independently, saved as JSON.

* :class:`Plan`, :class:`Transfer`, :func:`plan_from_schedule` (:mod:`.plan`);
* :func:`validate` - the independent checker (:mod:`.validate`);
* :func:`save_plan` / :func:`load_plan` - the ``hetsched.plan/N`` format (:mod:`.jsonio`).
"""

from hetsched.plan.jsonio import PLAN_FORMAT, load_plan, plan_from_dict, plan_to_dict, save_plan
from hetsched.plan.plan import (
    STATUSES,
    Plan,
    Transfer,
    check_membership,
    plan_from_schedule,
    schedule_arrays,
)
from hetsched.plan.validate import validate

__all__ = [
    "PLAN_FORMAT",
    "STATUSES",
    "Plan",
    "Transfer",
    "check_membership",
    "load_plan",
    "plan_from_dict",
    "plan_from_schedule",
    "plan_to_dict",
    "save_plan",
    "schedule_arrays",
    "validate",
]
