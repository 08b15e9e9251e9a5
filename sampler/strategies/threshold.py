"""Fast-dLLM confidence threshold."""

from __future__ import annotations

from dataclasses import dataclass

from torch import Tensor

from .._validate import bounded
from ..settings import DecodingSettings
from ..space import FloatDim, SearchSpace
from ..stats import StepStats
from .base import Strategy, StrategyParams

__all__ = ["Threshold", "ThresholdParams"]


@dataclass(frozen=True)
class ThresholdParams(StrategyParams):
    threshold: float = bounded(0.9, low=0.0, high=1.0, doc="minimum top-1 probability")


class Threshold(Strategy):
    """Commit every masked position of the block whose top-1 probability >= ``threshold``
    (Fast-dLLM, Wu et al. 2025, "parallel decoding by confidence"); the loop adds the most
    confident one when none passes."""

    name = "threshold"
    Params = ThresholdParams

    def select(self, stats: StepStats) -> Tensor:
        return stats.candidates & (stats.confidence >= self.params.threshold)

    @classmethod
    def search_space(cls, settings: DecodingSettings) -> SearchSpace:
        return {"threshold": FloatDim(0.5, 0.99, "log1m")}
