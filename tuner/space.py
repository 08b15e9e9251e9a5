"""Turn a strategy's declared search space (plus spec overrides) into Optuna suggestions.

A ``log1m`` dimension (a threshold near 1) is searched as ``1-<name>`` on a log scale, so that
0.99 and 0.999 are as far apart as 0.9 and 0.99; the strategy receives ``<name>`` itself.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any, Mapping

import optuna

from sampler import STRATEGIES, ChoiceDim, DecodingSettings, FloatDim, IntDim, SearchSpace

from .errors import UsageError

__all__ = ["search_space", "suggest", "to_internal", "warm_starts"]


def search_space(strategy: str, settings: DecodingSettings,
                 overrides: Mapping[str, Any] | None = None) -> tuple[SearchSpace, dict[str, Any]]:
    """(dimensions to search, fixed params) for ``strategy`` after the spec's ``[search]`` table."""
    if strategy not in STRATEGIES:
        raise UsageError(f"unknown strategy {strategy!r}; known strategies: "
                         f"{', '.join(sorted(STRATEGIES))}.")
    space = dict(STRATEGIES[strategy].search_space(settings))
    fixed: dict[str, Any] = {}
    for name, value in (overrides or {}).items():
        if name not in space:
            raise UsageError(f"[search] names `{name}`, which strategy {strategy!r} does not search; "
                             f"it searches: {', '.join(space) or 'nothing'}.")
        if isinstance(value, Mapping):
            unknown = set(value) - {"low", "high"}
            if unknown:
                raise UsageError(f"[search] {name}: only `low` and `high` may be set, not "
                                 f"{', '.join(sorted(unknown))}.")
            try:
                space[name] = dataclasses.replace(space[name], **value)
            except (TypeError, ValueError) as err:
                raise UsageError(f"[search] {name}: {err}") from None
        else:
            fixed[name] = value
            del space[name]
    return space, fixed


def _internal_name(name: str, dim: Any) -> str:
    return f"1-{name}" if isinstance(dim, FloatDim) and dim.scale == "log1m" else name


def suggest(trial: optuna.Trial, space: SearchSpace, fixed: Mapping[str, Any]) -> dict[str, Any]:
    """The strategy params of this trial."""
    params = dict(fixed)
    for name, dim in space.items():
        if isinstance(dim, FloatDim):
            if dim.scale == "log1m":
                gap = trial.suggest_float(_internal_name(name, dim), 1 - dim.high, 1 - dim.low, log=True)
                params[name] = 1 - gap
            else:
                params[name] = trial.suggest_float(name, dim.low, dim.high, log=dim.scale == "log")
        elif isinstance(dim, IntDim):
            params[name] = trial.suggest_int(name, dim.low, dim.high, step=dim.step)
        elif isinstance(dim, ChoiceDim):
            params[name] = trial.suggest_categorical(name, list(dim.choices))
    return params


def to_internal(params: Mapping[str, Any], space: SearchSpace) -> dict[str, Any]:
    """Strategy params -> Optuna params (for enqueueing), clipped into the search ranges."""
    out: dict[str, Any] = {}
    for name, dim in space.items():
        if name not in params:
            continue
        value = params[name]
        if isinstance(dim, FloatDim):
            value = min(max(float(value), dim.low), dim.high)
            out[_internal_name(name, dim)] = 1 - value if dim.scale == "log1m" else value
        elif isinstance(dim, IntDim):
            value = min(max(int(value), dim.low), dim.high)
            out[name] = dim.low + (value - dim.low) // dim.step * dim.step
        elif value in dim.choices:
            out[name] = value
    return out


# Published settings worth trying first, beside each strategy's own defaults.
_EXTRA_WARM_STARTS: dict[str, list[dict[str, Any]]] = {
    "less": [
        {"tau_conf": 0.9, "window": 1, "js_delta": math.log(2)},   # Fast-dLLM-like: confidence only
        {"tau_conf": 0.6, "window": 2, "js_delta": 0.015 / 4},      # KLASS-like (JS ~ KL / 4)
    ],
    "klass": [{"tau": 0.9, "kappa": 0.001, "history": 2}],          # the Dream GSM8K script
    "entropy_bound": [{"gamma": 0.15}],                              # SGLang's default
}


def warm_starts(strategy: str, space: SearchSpace, settings: DecodingSettings) -> list[dict[str, Any]]:
    """Optuna params of the strategy's defaults and of published settings, deduplicated."""
    cls = STRATEGIES[strategy]
    defaults = cls.Params().to_dict()
    if strategy == "fixed":
        defaults["steps"] = settings.gen_length // 4
    points = [defaults, *_EXTRA_WARM_STARTS.get(strategy, [])]
    out: list[dict[str, Any]] = []
    for point in points:
        internal = to_internal(point, space)
        if internal and internal not in out:
            out.append(internal)
    return out
