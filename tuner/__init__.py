"""tuner: Optuna studies of sampler thresholds per task and model, stored in a database.

    tuner optimize --task arith --trials 30
    tuner export --study arith-tiny-arith-less-qps --best -o arith.json
"""

from __future__ import annotations

from .cache import CachedModel, LogitsCache
from .engine import EvalResult, Evaluator, ExampleOutcome
from .errors import DataError, StorageError, StudyMismatchError, TunerError, UsageError
from .evaluation import Evaluation
from .figures import Baseline, quality_per_step, relative_figures
from .objectives import OBJECTIVES, Objective
from .pareto import front, hypervolume
from .samplers import SAMPLERS
from .spec import StudySpec, load_spec
from .storage import default_url, mask_url, open_storage
from .study import StudyRunner
from .tasks import SPLITS, TASKS, Example, Task, get_task
from .validate import best_trial, export, held_out, validate

__all__ = [
    "TASKS", "get_task", "Task", "Example", "SPLITS", "Evaluator", "EvalResult", "ExampleOutcome",
    "LogitsCache", "CachedModel", "StudySpec", "load_spec", "StudyRunner", "Evaluation",
    "Baseline", "front", "hypervolume", "quality_per_step", "relative_figures", "OBJECTIVES",
    "Objective", "SAMPLERS", "validate", "export", "best_trial", "held_out", "open_storage",
    "default_url", "mask_url", "TunerError", "UsageError", "DataError", "StorageError",
    "StudyMismatchError",
]
