"""Profiles: a tuned strategy with the decoding settings it was tuned under, as versioned JSON.

A profile is what the tuner exports and production code loads::

    profile = sampler.load_profile("gsm8k-llada.json")
    out = sampler.generate(model, input_ids, profile=profile)

Loading validates everything: unknown keys, wrong types and out-of-range values are errors naming
the key and the allowed values; whatever a file holds, loading either returns a :class:`Profile` or
raises :class:`~sampler.errors.ProfileError` (a :class:`~sampler.errors.SamplerError`), in one line.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

from ._validate import check_choice, from_mapping, short, show_key, validate_fields
from .artifacts import map_artifact_paths, path_for_file, path_from_file
from .atomic import write_text_atomically
from .errors import ConfigError, ProfileError
from .models import ADAPTERS
from .settings import DecodingSettings
from .strategies import STRATEGIES, Strategy, make_strategy

__all__ = ["Profile", "ModelInfo", "Provenance", "load_profile", "save_profile",
           "PROFILE_FORMAT", "PROFILE_VERSION"]

PROFILE_FORMAT = "less-profile"
PROFILE_VERSION = 2
"""2: `less` defaults to the authors' rule (coarse top-8 JS, history per block); a version-1
profile of `less` (or of `edit` over it) is read with the rule it was tuned with (`drift="exact"`,
`history="carry"`), so it decodes as it did."""

_V1_LESS = {"drift": "exact", "history": "carry"}
"""What a version-1 profile's `less` params meant: the variants that were then the only rule."""


@dataclass(frozen=True)
class ModelInfo:
    """The model a profile was tuned for. ``adapter``: one of :data:`sampler.ADAPTERS`."""

    name: str
    adapter: str = "masked_lm"
    logit_shift: bool = False

    def __post_init__(self) -> None:
        validate_fields(self, "profile model")
        check_choice("profile model", "adapter", self.adapter, tuple(sorted(ADAPTERS)))


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
    """Measured figures (accuracy, NFE, speed-up, seconds, ...): finite and non-negative."""
    if not isinstance(metrics, Mapping):
        raise ProfileError(f"profile: `metrics` must be a mapping of name to number, got "
                           f"{type(metrics).__name__}.")
    out = {}
    for key, value in metrics.items():
        if not isinstance(key, str):
            raise ProfileError(f"profile: metric names must be strings, got {key!r}.")
        if not isinstance(value, (int, float)) or isinstance(value, bool):
            raise ProfileError(f"profile: metric `{show_key(key)}` must be a number, got "
                               f"{short(value)}.")
        try:
            number = float(value)
        except OverflowError:  # an int beyond float range
            number = math.inf
        if not math.isfinite(number) or number < 0:
            raise ProfileError(f"profile: metric `{show_key(key)}` = {short(value)} must be a "
                               "finite, non-negative number.")
        out[key] = number
    return out


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
        if not isinstance(self.strategy, str):
            raise ProfileError(f"profile: `strategy` must be a strategy name (a string), got "
                               f"{type(self.strategy).__name__} {short(self.strategy)}.")
        if self.strategy not in STRATEGIES:
            raise ProfileError(f"profile: unknown strategy {short(self.strategy)}; known "
                               f"strategies: {', '.join(sorted(STRATEGIES))}.")
        if not isinstance(self.params, Mapping):  # 0, "", false or [] are not "no params"
            raise ProfileError(f"profile: `params` must be a mapping of parameter to value, got "
                               f"{type(self.params).__name__} {short(self.params)}.")
        for name, kind in (("decoding", DecodingSettings), ("model", (ModelInfo, type(None))),
                           ("provenance", Provenance)):
            if not isinstance(getattr(self, name), kind):
                raise ProfileError(f"profile: `{name}` must be a mapping, got "
                                   f"{type(getattr(self, name)).__name__}.")
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
        if version == 1:
            data["params"] = _upgrade_v1_params(data.get("strategy"), data.get("params", {}))
        try:
            if "decoding" in data:
                data["decoding"] = DecodingSettings.from_dict(data["decoding"])
            if data.get("model") is not None:
                data["model"] = from_mapping(ModelInfo, data["model"], "profile model")
            if data.get("provenance") is not None:  # null: no provenance recorded
                data["provenance"] = from_mapping(Provenance, data["provenance"],
                                                  "profile provenance")
            else:
                data.pop("provenance", None)
            return from_mapping(cls, data, "profile")
        except ProfileError:
            raise
        except ConfigError as err:  # one prefix: "profile: ...", never "profile: profile: ..."
            text = str(err)
            raise ProfileError(text if text.startswith("profile") else f"profile: {text}") from None


def _upgrade_v1_params(strategy: Any, params: Any) -> Any:
    """A version-1 profile's params, with the `less` rule it was tuned with made explicit."""
    if not isinstance(params, Mapping):
        return params  # from_mapping refuses it with its own message
    params = dict(params)
    if strategy == "less":
        return {**_V1_LESS, **params}
    if strategy == "edit" and params.get("base") == "less":
        nested = params.get("base_params")
        if isinstance(nested, Mapping):
            params["base_params"] = {**_V1_LESS, **nested}
        elif nested is None:
            params["base_params"] = dict(_V1_LESS)
    return params


_MAX_PROFILE_BYTES = 16 * 1024 * 1024
"""The largest profile file read (a real one is a few KiB)."""


def load_profile(path: str | os.PathLike) -> Profile:
    """Read and validate a profile file (UTF-8 JSON). Every problem, from a missing file to a
    value out of range, raises :class:`ProfileError` naming the file and what is wrong."""
    if not isinstance(path, (str, os.PathLike)) or isinstance(path, bool):
        raise ProfileError(f"load_profile takes the path of a profile file, got "
                           f"{type(path).__name__}.")
    try:
        path = Path(path)
        if path.stat().st_size > _MAX_PROFILE_BYTES:
            raise ProfileError(f"profile file {str(path)!r} is larger than "
                               f"{_MAX_PROFILE_BYTES // 2**20} MiB; it is not a profile.")
        raw = path.read_bytes()
    except FileNotFoundError:
        raise ProfileError(f"profile file {str(path)!r} does not exist.") from None
    except (OSError, ValueError) as err:  # a directory, no permission, a NUL byte in the name
        reason = getattr(err, "strerror", None) or str(err)
        raise ProfileError(f"cannot read profile file {str(path)!r}: {reason}.") from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as err:
        raise ProfileError(f"profile file {str(path)!r} is not UTF-8 text (byte {err.start}); "
                           "profiles are UTF-8 JSON.") from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as err:
        raise ProfileError(f"profile file {str(path)!r} is not valid JSON: {err.msg} at line "
                           f"{err.lineno}, column {err.colno}.") from None
    except RecursionError:
        raise ProfileError(f"profile file {str(path)!r} is nested too deeply to be a "
                           "profile.") from None
    except ValueError as err:  # e.g. an integer of more than 4300 digits
        raise ProfileError(f"profile file {str(path)!r} holds a value JSON cannot read: "
                           f"{str(err).splitlines()[0][:100]}") from None
    try:
        profile = Profile.from_dict(data)
    except ProfileError as err:
        raise ProfileError(f"{path}: {err}") from None
    except RecursionError:  # deep nesting inside a value, e.g. in params
        raise ProfileError(f"{path}: profile: a value is nested too deeply.") from None
    # the files it names (an indicator, a map): relative to the profile's folder, not to the
    # working directory (see sampler.artifacts)
    folder = os.path.dirname(os.path.abspath(path))
    params = map_artifact_paths(profile.strategy, profile.params,
                                lambda name: path_from_file(name, folder))
    return profile if params == profile.params else dataclasses.replace(profile, params=params)


def save_profile(profile: Profile, path: str | os.PathLike) -> Path:
    """Write ``profile`` as JSON atomically (a temporary file renamed into place), with the
    permissions a new file gets under the umask (0644 under the usual 022), not the temporary
    file's 0600. A file param (ni's ``indicator``, edit's ``map``) is written relative to the
    profile's folder when the file lies in it or below, else absolute; :func:`load_profile` reads
    a relative one relative to the profile's folder, whatever the working directory."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    data = profile.to_dict()
    # the files it names: relative to the profile's folder when in it (the folder can move)
    folder = os.path.abspath(path.parent)
    data["params"] = map_artifact_paths(profile.strategy, data["params"],
                                        lambda name: path_for_file(name, folder))
    write_text_atomically(path, json.dumps(data, indent=2, sort_keys=False) + "\n")
    return path
