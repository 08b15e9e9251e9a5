"""The task registry: ``TASKS[name]`` is a ready task object; :func:`get_task` builds one with
options (e.g. a local data folder)."""

from __future__ import annotations

from typing import Any

from ..errors import UsageError
from .arith import ArithTask
from .base import SPLITS, Example, Task, hash_examples
from .cot import CotTask
from .gsm8k import GSM8KTask, extract_number
from .humaneval import HumanEvalTask

__all__ = ["TASKS", "get_task", "Task", "Example", "SPLITS", "hash_examples", "ArithTask",
           "CotTask", "GSM8KTask", "HumanEvalTask", "extract_number"]

_CLASSES: dict[str, type[Task]] = {cls.name: cls for cls in (ArithTask, CotTask, GSM8KTask,
                                                                HumanEvalTask)}

TASKS: dict[str, Task] = {name: cls() for name, cls in _CLASSES.items()}
"""Default instances: ``TASKS["gsm8k"].score(example, completion)`` needs no model. Data loads
lazily, on the first call to ``examples``."""


def get_task(name: str, **options: Any) -> Task:
    """An instance of the task registered as ``name`` (options such as ``data_dir`` pass through)."""
    if name not in _CLASSES:
        raise UsageError(f"unknown task {name!r}; known tasks: {', '.join(sorted(_CLASSES))}.")
    accepted = {k: v for k, v in options.items() if v is not None}
    if not accepted:
        return TASKS[name]
    try:
        return _CLASSES[name](**accepted)
    except TypeError:
        raise UsageError(f"task {name!r} does not take options {', '.join(sorted(accepted))}.") from None
