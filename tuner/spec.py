"""Study specs: one TOML file per task in ``studies/``, overridden by command-line flags."""

from __future__ import annotations

import dataclasses
import os
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Mapping

from sampler import DecodingSettings, SamplerError

from .errors import UsageError

__all__ = ["StudySpec", "load_spec", "studies_dir", "OBJECTIVES", "SAMPLERS"]

OBJECTIVES = ("qps", "pareto", "budget")
SAMPLERS = ("tpe", "gp", "nsga2", "random")


def studies_dir() -> Path:
    """``./studies`` when it exists, else the repository's ``studies/`` beside the package."""
    here = Path.cwd() / "studies"
    if here.is_dir():
        return here
    return Path(__file__).resolve().parent.parent / "studies"


@dataclass(frozen=True)
class StudySpec:
    """Everything that defines a study. ``decoding`` are the sampler's settings; ``search`` maps a
    param to a fixed value or to ``{low, high}`` overriding the strategy's own range."""

    task: str
    model: str | None = None
    strategy: str = "less"
    objective: Literal["qps", "pareto", "budget"] = "qps"
    gamma: float = 4.0
    tolerance: float | None = 1.0
    accuracy_floor: float | None = None
    sampler: Literal["tpe", "gp", "nsga2", "random"] = "tpe"
    trials: int | None = 30
    timeout: float | None = None
    seed: int = 0
    n_tune: int = 200
    n_test: int = 500
    batch_size: int = 32
    data: str | None = None
    decoding: DecodingSettings = field(default_factory=DecodingSettings)
    search: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        checks = [
            (self.objective in OBJECTIVES, f"unknown objective {self.objective!r}; choose one of "
                                           f"{', '.join(OBJECTIVES)}."),
            (self.sampler in SAMPLERS, f"unknown sampler {self.sampler!r}; choose one of "
                                       f"{', '.join(SAMPLERS)}."),
            (self.trials is None or self.trials > 0, f"--trials must be > 0, got {self.trials}."),
            (self.timeout is None or self.timeout > 0, f"--timeout must be > 0, got {self.timeout}."),
            (self.n_tune > 0 and self.n_test > 0, "split sizes (n_tune, n_test) must be > 0."),
            (self.batch_size > 0, f"batch_size must be > 0, got {self.batch_size}."),
            (self.gamma >= 0, f"gamma must be >= 0, got {self.gamma}."),
            (self.tolerance is None or self.tolerance >= 0,
             f"--tolerance must be >= 0 points, got {self.tolerance}."),
            (self.accuracy_floor is None or 0 <= self.accuracy_floor <= 1,
             f"--accuracy-floor must be in [0, 1], got {self.accuracy_floor}."),
            (self.objective != "budget" or self.floor_given,
             "objective `budget` needs an accuracy floor: give --accuracy-floor or --tolerance."),
        ]
        for ok, message in checks:
            if not ok:
                raise UsageError(message)

    @property
    def floor_given(self) -> bool:
        return self.accuracy_floor is not None or self.tolerance is not None

    def floor(self, baseline_accuracy: float) -> float | None:
        """The accuracy floor: absolute when given, else baseline minus the tolerance (points)."""
        if self.accuracy_floor is not None:
            return self.accuracy_floor
        if self.tolerance is not None:
            return max(0.0, baseline_accuracy - self.tolerance / 100)
        return None

    def with_overrides(self, **flags: Any) -> "StudySpec":
        """A copy with every flag that is not None applied (decoding keys go into ``decoding``)."""
        decoding_keys = {f.name for f in dataclasses.fields(DecodingSettings)}
        decoding = {k: v for k, v in flags.items() if k in decoding_keys and v is not None}
        top = {k: v for k, v in flags.items() if k not in decoding_keys and v is not None}
        if "accuracy_floor" in top:
            top.setdefault("tolerance", None)
            if flags.get("tolerance") is not None:
                raise UsageError("give --accuracy-floor or --tolerance, not both.")
        new_decoding = self.decoding
        if decoding:
            merged = {**self.decoding.to_dict(), **decoding}
            if "gen_length" in decoding and "block_length" not in decoding:
                merged["block_length"] = min(merged["block_length"], decoding["gen_length"])
            if "max_steps" not in decoding:
                merged["max_steps"] = None
            new_decoding = _decoding(merged)
        return dataclasses.replace(self, decoding=new_decoding, **top)


def _decoding(data: Mapping[str, Any]) -> DecodingSettings:
    try:
        return DecodingSettings.from_dict(data)
    except SamplerError as err:
        raise UsageError(str(err)) from None


def load_spec(task: str, path: str | os.PathLike | None = None) -> StudySpec:
    """The spec of ``task`` from ``path``, or ``studies/<task>.toml``, or the task's defaults."""
    from .tasks import get_task

    get_task(task)  # unknown task names fail here, with the list of known ones
    file = Path(path) if path else studies_dir() / f"{task}.toml"
    if not file.is_file():
        if path:
            raise UsageError(f"study spec {file} does not exist.")
        return _defaults_for(task)
    try:
        data = tomllib.loads(file.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError) as err:
        raise UsageError(f"cannot read study spec {file}: {err}") from None
    known = {f.name for f in dataclasses.fields(StudySpec)}
    for key in data:
        if key not in known:
            raise UsageError(f"{file}: unknown key `{key}`; known keys: {', '.join(sorted(known))}.")
    if data.get("task", task) != task:
        raise UsageError(f"{file} is the spec of task {data['task']!r}, not {task!r}.")
    data["task"] = task
    data["decoding"] = _decoding({**_defaults_for(task).decoding.to_dict(),
                                  "max_steps": None, **data.get("decoding", {})})
    try:
        return StudySpec(**data)
    except TypeError as err:
        raise UsageError(f"{file}: {err}") from None


def _defaults_for(task: str) -> StudySpec:
    from .tasks import TASKS

    t = TASKS[task]
    return StudySpec(task=task, model=t.default_model,
                     decoding=DecodingSettings(gen_length=t.gen_length, block_length=t.block_length))
