"""Profiles: a tuned strategy with the decoding settings it was tuned under, as versioned JSON.

A profile is what the tuner exports and production code loads::

    profile = sampler.load_profile("gsm8k-llada.json")
    out = sampler.generate(model, input_ids, profile=profile)

Loading validates everything: unknown keys, wrong types and out-of-range values are errors naming
the key and the allowed values.
"""

from __future__ import annotations

import dataclasses
import json
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

from ._validate import from_mapping, validate_fields
from .errors import ConfigError, ProfileError
from .settings import DecodingSettings
from .strategies import STRATEGIES, Strategy, make_strategy

__all__ = ["Profile", "ModelInfo", "Provenance", "load_profile", "save_profile",
           "PROFILE_FORMAT", "PROFILE_VERSION"]

PROFILE_FORMAT = "less-profile"
PROFILE_VERSION = 1


@dataclass(frozen=True)
class ModelInfo:
    """The model a profile was tuned for."""

    name: str
    adapter: str = "masked_lm"
    logit_shift: bool = False

    def __post_init__(self) -> None:
        validate_fields(self, "profile model")


@dataclass(frozen=True)
class Provenance:
    """Where a profile came from. The storage URL never carries credentials."""

    study: str | None = None
    trial: int | None = None
    storage: str | None = None
    data_hash: str | None = None
    created: str | None = None
    version: str | None = None

    def __post_init__(self) -> None:
        validate_fields(self, "profile provenance")


def _check_metrics(metrics: Any) -> dict[str, float]:
    if not isinstance(metrics, Mapping):
        raise ProfileError(f"profile: `metrics` must be a mapping of name to number, got "
                           f"{type(metrics).__name__}.")
    for key, value in metrics.items():
        if not isinstance(value, (int, float)) or isinstance(value, bool):
            raise ProfileError(f"profile: metric `{key}` must be a number, got {value!r}.")
    return {str(k): float(v) for k, v in metrics.items()}


@dataclass(frozen=True)
class Profile:
    """A tuned strategy plus everything needed to reproduce what it was measured under."""

    strategy: str
    params: dict[str, Any] = field(default_factory=dict)
    decoding: DecodingSettings = field(default_factory=DecodingSettings)
    model: ModelInfo | None = None
    task: str | None = None
    metrics: dict[str, float] = field(default_factory=dict)
    provenance: Provenance = field(default_factory=Provenance)

    def __post_init__(self) -> None:
        if self.strategy not in STRATEGIES:
            raise ProfileError(f"profile: unknown strategy {self.strategy!r}; known strategies: "
                               f"{', '.join(sorted(STRATEGIES))}.")
        # Validate and normalise the params through the strategy's own parameter class.
        params = STRATEGIES[self.strategy].Params.from_dict(self.params).to_dict()
        object.__setattr__(self, "params", params)
        object.__setattr__(self, "metrics", _check_metrics(self.metrics))
        if self.task is not None and not isinstance(self.task, str):
            raise ProfileError(f"profile: `task` must be a string, got {self.task!r}.")

    def make_strategy(self) -> Strategy:
        return make_strategy(self.strategy, self.params)

    def to_dict(self) -> dict[str, Any]:
        return {
            "format": PROFILE_FORMAT,
            "version": PROFILE_VERSION,
            "strategy": self.strategy,
            "params": dict(self.params),
            "decoding": self.decoding.to_dict(),
            "model": None if self.model is None else dataclasses.asdict(self.model),
            "task": self.task,
            "metrics": dict(self.metrics),
            "provenance": dataclasses.asdict(self.provenance),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "Profile":
        if not isinstance(data, Mapping):
            raise ProfileError("profile: the document must be a JSON object.")
        data = dict(data)
        fmt, version = data.pop("format", None), data.pop("version", None)
        if fmt != PROFILE_FORMAT:
            raise ProfileError(f"profile: `format` must be {PROFILE_FORMAT!r}, got {fmt!r}; "
                               "is this a LESS profile?")
        if not isinstance(version, int) or isinstance(version, bool) or version < 1:
            raise ProfileError(f"profile: `version` must be a positive integer, got {version!r}.")
        if version > PROFILE_VERSION:
            raise ProfileError(f"profile: format version {version} is newer than this sampler "
                               f"reads ({PROFILE_VERSION}); upgrade the sampler package.")
        try:
            if "decoding" in data:
                data["decoding"] = DecodingSettings.from_dict(data["decoding"])
            if data.get("model") is not None:
                data["model"] = from_mapping(ModelInfo, data["model"], "profile model")
            if "provenance" in data:
                data["provenance"] = from_mapping(Provenance, data["provenance"] or {},
                                                  "profile provenance")
            return from_mapping(cls, data, "profile")
        except ProfileError:
            raise
        except ConfigError as err:
            raise ProfileError(f"profile: {err}") from None


def load_profile(path: str | os.PathLike) -> Profile:
    """Read and validate a profile file."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ProfileError(f"profile file {str(path)!r} does not exist.") from None
    except OSError as err:
        raise ProfileError(f"cannot read profile file {str(path)!r}: {err.strerror}.") from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as err:
        raise ProfileError(f"profile file {str(path)!r} is not valid JSON: {err.msg} at line "
                           f"{err.lineno}, column {err.colno}.") from None
    try:
        return Profile.from_dict(data)
    except ProfileError as err:
        raise ProfileError(f"{path}: {err}") from None


def save_profile(profile: Profile, path: str | os.PathLike) -> Path:
    """Write ``profile`` as JSON atomically (a temporary file renamed into place)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    text = json.dumps(profile.to_dict(), indent=2, sort_keys=False) + "\n"
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path
