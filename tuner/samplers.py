"""How a study proposes its next trial: one registry of Optuna samplers, by name."""

from __future__ import annotations

import warnings
from typing import Callable

import optuna

from .errors import UsageError

__all__ = ["SAMPLERS", "make_sampler"]

SAMPLERS: dict[str, Callable[[int | None], optuna.samplers.BaseSampler]] = {
    "tpe": lambda seed: optuna.samplers.TPESampler(seed=seed),
    "gp": lambda seed: optuna.samplers.GPSampler(seed=seed),
    "nsga2": lambda seed: optuna.samplers.NSGAIISampler(seed=seed),
    "random": lambda seed: optuna.samplers.RandomSampler(seed=seed),
}
"""Name -> factory(seed); the first is the default."""


def make_sampler(name: str, seed: int | None) -> optuna.samplers.BaseSampler:
    """The sampler registered as ``name``, seeded."""
    if name not in SAMPLERS:
        raise UsageError(f"unknown sampler {name!r}; choose one of {', '.join(SAMPLERS)}.")
    with warnings.catch_warnings():  # GP is "experimental" in Optuna 5
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        return SAMPLERS[name](seed)
