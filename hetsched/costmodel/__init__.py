"""hetsched.costmodel: devices, platforms, cost models and the cost table."""

from hetsched.costmodel.device import Device, Link, is_supported
from hetsched.costmodel.measured import MeasuredCostModel
from hetsched.costmodel.platform import DEFAULT_PLATFORM, Platform
from hetsched.costmodel.roofline import CostModel, OpCostExplanation, RooflineCostModel
from hetsched.costmodel.support import (
    Support,
    all_of,
    any_of,
    because,
    categories,
    decline_if_dtype,
    everything,
    not_categories,
    not_ops,
    ops,
    predicate,
)
from hetsched.costmodel.table import CostTable, build_cost_table

__all__ = [
    "DEFAULT_PLATFORM",
    "CostModel",
    "CostTable",
    "Device",
    "Link",
    "MeasuredCostModel",
    "OpCostExplanation",
    "Platform",
    "RooflineCostModel",
    "Support",
    "all_of",
    "any_of",
    "because",
    "build_cost_table",
    "categories",
    "decline_if_dtype",
    "everything",
    "is_supported",
    "not_categories",
    "not_ops",
    "ops",
    "predicate",
]
