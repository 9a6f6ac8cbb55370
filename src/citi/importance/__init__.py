"""Component importance: hook-based scores (``scores``) and the multi-ability run (``run``)."""

from citi.importance.run import ImportanceConfig, run_importance
from citi.importance.scores import (
    SCORES,
    ImportanceHooks,
    combine_general,
    compute_importance,
    importance_sums,
    normalize,
    ranks,
)

__all__ = [
    "SCORES",
    "ImportanceConfig",
    "ImportanceHooks",
    "combine_general",
    "compute_importance",
    "importance_sums",
    "normalize",
    "ranks",
    "run_importance",
]
