"""hetsched: place and schedule ML operators on heterogeneous machines, with proofs.

Examples
--------
>>> import hetsched
>>> hetsched.__version__
'0.1.0'
"""

from __future__ import annotations

__version__ = "0.1.0"

__all__ = ["__version__"]
