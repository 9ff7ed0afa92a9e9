"""Hypothesis profiles for the reliability properties.

``ci`` (default): 25 examples per property. ``nightly``: 500 examples, no deadline; select it
with ``HYPOTHESIS_PROFILE=nightly pytest tests/reliability``. The profile is read by the
property modules (``PROFILE``), not loaded globally, so other tests keep their own settings.
"""

from __future__ import annotations

import os

from hypothesis import HealthCheck, settings

_COMMON = {
    "deadline": None,
    "derandomize": False,
    "suppress_health_check": [HealthCheck.too_slow, HealthCheck.data_too_large],
}
settings.register_profile("ci", max_examples=25, **_COMMON)
settings.register_profile("nightly", max_examples=500, **_COMMON)
PROFILE_NAME = os.environ.get("HYPOTHESIS_PROFILE", "ci")
if PROFILE_NAME not in ("ci", "nightly"):
    PROFILE_NAME = "ci"
