"""Study specs: one TOML file per task in ``studies/``, overridden by command-line flags."""

from __future__ import annotations

import dataclasses
import math
import os
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

from sampler import DecodingSettings, SamplerError

from .errors import UsageError
from .objectives import OBJECTIVES, Objective
from .samplers import SAMPLERS

__all__ = ["StudySpec", "load_spec", "resolve_file_params", "studies_dir", "MAX_SEED",
           "MAX_COUNT"]

MAX_SEED = 2**32 - 1
"""Seeds go to Optuna's samplers and numpy, which take 32-bit seeds."""
MAX_COUNT = 10**7
"""A bound on trials, split sizes and batch size: larger is a typo, not a study."""


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
    strategy: str = "less"             # an arm (see tuner.family), or "auto": several at once
    strategies: list[str] | None = None  # the arms of an "auto" study (default: all tunable)
    objective: str = "qps"             # a name in tuner.objectives.OBJECTIVES
    gamma: float = 4.0
    tolerance: float | None = 1.0
    accuracy_floor: float | None = None
    sampler: str = "tpe"               # a name in tuner.samplers.SAMPLERS
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
        self._check_types()
        checks = [
            (self.objective in OBJECTIVES, f"unknown objective {self.objective!r}; choose one of "
                                           f"{', '.join(OBJECTIVES)}."),
            (self.sampler in SAMPLERS, f"unknown sampler {self.sampler!r}; choose one of "
                                       f"{', '.join(SAMPLERS)}."),
            (self.trials is None or self.trials > 0, f"--trials must be > 0, got {self.trials}."),
            (self.timeout is None or self.timeout > 0, f"--timeout must be > 0, got {self.timeout}."),
            (self.n_tune > 0 and self.n_test > 0, "split sizes (n_tune, n_test) must be > 0."),
            (self.batch_size > 0, f"batch_size must be > 0, got {self.batch_size}."),
            (max(self.trials or 0, self.n_tune, self.n_test, self.batch_size) <= MAX_COUNT,
             f"trials, n_tune, n_test and batch_size must be at most {MAX_COUNT:,}."),
            (self.timeout is None or self.timeout < math.inf, "--timeout must be finite."),
            (0 <= self.seed <= MAX_SEED, f"--seed must be in 0..{MAX_SEED}, got {self.seed}."),
            (0 <= self.gamma <= 100, f"gamma must be in [0, 100], got {self.gamma}."),
            (self.tolerance is None or 0 <= self.tolerance <= 100,
             f"--tolerance must be in [0, 100] points, got {self.tolerance}."),
            (self.accuracy_floor is None or 0 <= self.accuracy_floor <= 1,
             f"--accuracy-floor must be in [0, 1], got {self.accuracy_floor}."),
        ]
        for ok, message in checks:
            if not ok:
                raise UsageError(message)
        if self.objective_spec.needs_floor and not self.floor_given:
            raise UsageError(f"objective `{self.objective}` needs an accuracy floor: give "
                             "--accuracy-floor or --tolerance.")

    @property
    def objective_spec(self) -> Objective:
        """The registered :class:`~tuner.objectives.Objective` this spec names."""
        return OBJECTIVES[self.objective]

    def to_dict(self) -> dict[str, Any]:
        """Plain data (JSON-ready), as stored with a study; :meth:`from_dict` reads it back."""
        data = dataclasses.asdict(self)
        data["decoding"] = self.decoding.to_dict()
        if self.strategies is not None:
            data["strategies"] = list(self.strategies)
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], where: str = "study spec") -> "StudySpec":
        """The spec of :meth:`to_dict`'s data; a one-line UsageError, prefixed ``where``, on
        unknown or bad keys."""
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise UsageError(f"{where}: unknown key `{unknown[0]}`; known keys: "
                             f"{', '.join(sorted(known))}.")
        fields = dict(data)
        if isinstance(fields.get("decoding"), Mapping):
            fields["decoding"] = _decoding(fields["decoding"])
        try:
            return cls(**fields)
        except TypeError as err:
            raise UsageError(f"{where}: {err}") from None

    def _check_types(self) -> None:
        """Each field's type, before any range check (a TOML spec can hold anything)."""
        number = (int, float)
        if self.strategies is not None and (
                isinstance(self.strategies, (str, bytes)) or not isinstance(self.strategies, (list, tuple))
                or not self.strategies or not all(isinstance(a, str) for a in self.strategies)):
            raise UsageError(f"`strategies` must be a non-empty list of strategy names, got "
                             f"{self.strategies!r}.")
        types = {"task": str, "model": (str, type(None)), "strategy": str, "objective": str,
                 "gamma": number, "tolerance": (*number, type(None)),
                 "accuracy_floor": (*number, type(None)), "sampler": str,
                 "trials": (int, type(None)), "timeout": (*number, type(None)), "seed": int,
                 "n_tune": int, "n_test": int, "batch_size": int, "data": (str, type(None)),
                 "decoding": DecodingSettings, "search": Mapping}
        for name, kind in types.items():
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, kind) or (
                    isinstance(value, float) and math.isnan(value)):
                wanted = {str: "a string", int: "an integer", DecodingSettings: "a table",
                          Mapping: "a table"}.get(kind, "a number")
                raise UsageError(f"`{name}` must be {wanted}, got {value!r}.")

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
        if top.get("strategy") not in (None, "auto") and "strategies" not in top:
            top["strategies"] = None  # a single strategy replaces the spec's list of arms
        if top.get("strategies") is not None and isinstance(top["strategies"], tuple):
            top["strategies"] = list(top["strategies"])
        if "accuracy_floor" in top:
            top.setdefault("tolerance", None)
            if flags.get("tolerance") is not None:
                raise UsageError("give --accuracy-floor or --tolerance, not both.")
        new_decoding = self.decoding
        if decoding:
            merged = {**self.decoding.to_dict(), **decoding}
            if "gen_length" in decoding and "block_length" not in decoding:
                merged["block_length"] = min(merged["block_length"], decoding["gen_length"])
            if "max_steps" not in decoding and {"gen_length", "block_length"} & set(decoding):
                merged["max_steps"] = None  # the old budget belongs to the old lengths
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
    if data.get("task", task) != task:
        raise UsageError(f"{file} is the spec of task {data['task']!r}, not {task!r}.")
    data["task"] = task
    if not isinstance(data.get("decoding", {}), Mapping):
        raise UsageError(f"{file}: `decoding` must be a table ([decoding]).")
    data["decoding"] = {**_defaults_for(task).decoding.to_dict(), "max_steps": None,
                        **data.get("decoding", {})}
    if isinstance(data.get("search"), Mapping):  # files named relative to the spec's folder
        data["search"] = resolve_file_params(data["search"], file.resolve().parent)
    return StudySpec.from_dict(data, where=str(file))


def resolve_file_params(search: Mapping[str, Any], folder: str | os.PathLike) -> dict[str, Any]:
    """``search`` (a spec's ``[search]`` table, or ``--params``) with every file param (ni's
    ``indicator``, edit's ``map``; flat, or under a ``[search.<strategy>]`` table) made absolute,
    a relative one taken relative to ``folder``. Stored so, a study names the same file for a
    worker, an export or the dashboard started in another working directory."""
    from sampler.artifacts import map_artifact_paths, path_from_file
    from sampler.strategies import STRATEGIES

    def absolute(path: str) -> str:
        return path_from_file(path, folder)

    out = dict(search)
    for name in STRATEGIES:  # flat keys: a file param of any strategy the study may use
        out = map_artifact_paths(name, out, absolute)
    for key, value in out.items():
        if key in STRATEGIES and isinstance(value, Mapping):
            out[key] = map_artifact_paths(key, value, absolute)
    return out


def _defaults_for(task: str) -> StudySpec:
    from .tasks import TASKS

    t = TASKS[task]
    return StudySpec(task=task, model=t.default_model,
                     decoding=DecodingSettings(gen_length=t.gen_length, block_length=t.block_length))
