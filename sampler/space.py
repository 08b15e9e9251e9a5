"""Search-space dimensions that strategies declare and the tuner turns into Optuna distributions.

Kept free of Optuna so that `sampler` stays importable alone.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

__all__ = ["FloatDim", "IntDim", "ChoiceDim", "SearchSpace"]


@dataclass(frozen=True)
class FloatDim:
    """A float in [low, high]. ``scale``: "linear", "log", or "log1m" (log-uniform in 1 - value,
    for thresholds close to 1 such as a confidence of 0.99)."""

    low: float
    high: float
    scale: Literal["linear", "log", "log1m"] = "linear"

    def __post_init__(self) -> None:
        if not self.low < self.high:
            raise ValueError(f"FloatDim needs low < high, got [{self.low}, {self.high}].")
        if self.scale == "log" and self.low <= 0:
            raise ValueError("a log-scale FloatDim needs low > 0.")
        if self.scale == "log1m" and self.high >= 1:
            raise ValueError("a log1m-scale FloatDim needs high < 1.")


@dataclass(frozen=True)
class IntDim:
    """An integer in [low, high], both included, on a grid of ``step`` from ``low``."""

    low: int
    high: int
    step: int = 1

    def __post_init__(self) -> None:
        if not self.low <= self.high:
            raise ValueError(f"IntDim needs low <= high, got [{self.low}, {self.high}].")
        if self.step < 1 or (self.high - self.low) % self.step:
            raise ValueError(f"IntDim needs high - low to be a multiple of step >= 1, got "
                             f"[{self.low}, {self.high}] step {self.step}.")


@dataclass(frozen=True)
class ChoiceDim:
    """One of a fixed set of values."""

    choices: tuple[Any, ...]


SearchSpace = dict[str, FloatDim | IntDim | ChoiceDim]
