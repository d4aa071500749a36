"""Cost optimisation: the cheapest model that is good enough, pre-call estimates, advice.

``CostOptimizer(pricing)`` is the entry point (the brief's class); ``ModelCatalogue`` holds the
sourced model data (``data/models.toml``); ``Recommendation`` and ``CostEstimate`` are the
structured results. See docs/optimizer.md.
"""

from __future__ import annotations

from costwarden.optimizer.catalogue import (
    CAPABILITIES,
    TASKS,
    Figure,
    ModelCatalogue,
    ModelInfo,
    Source,
    normalize_task,
)
from costwarden.optimizer.cost_optimizer import CostOptimizer
from costwarden.optimizer.estimate import CostEstimate
from costwarden.optimizer.recommend import Recommendation
from costwarden.optimizer.select import TASK_PROFILES, Option, Selection, TokenProfile

__all__ = [
    "CAPABILITIES",
    "TASKS",
    "TASK_PROFILES",
    "CostEstimate",
    "CostOptimizer",
    "Figure",
    "ModelCatalogue",
    "ModelInfo",
    "Option",
    "Recommendation",
    "Selection",
    "Source",
    "TokenProfile",
    "normalize_task",
]
