"""tuner: Optuna studies of sampler thresholds per task and model, stored in a database.

    tuner optimize --task arith --trials 30
    tuner export --study arith-tiny-arith-less-qps --best -o arith.json
"""

from __future__ import annotations

from .cache import CachedModel, LogitsCache
from .engine import EvalResult, Evaluator, ExampleOutcome
from .errors import DataError, StorageError, StudyMismatchError, TunerError, UsageError
from .spec import StudySpec, load_spec
from .storage import default_url, mask_url, open_storage
from .study import Baseline, StudyRunner, front, quality_per_step
from .tasks import SPLITS, TASKS, Example, Task, get_task
from .validate import best_trial, export, held_out, validate

__all__ = [
    "TASKS", "get_task", "Task", "Example", "SPLITS", "Evaluator", "EvalResult", "ExampleOutcome",
    "LogitsCache", "CachedModel", "StudySpec", "load_spec", "StudyRunner", "Baseline", "front",
    "quality_per_step", "validate", "export", "best_trial", "held_out", "open_storage",
    "default_url", "mask_url", "TunerError", "UsageError", "DataError", "StorageError",
    "StudyMismatchError",
]
