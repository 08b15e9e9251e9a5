"""Fast-dLLM factor rule."""

from __future__ import annotations

from dataclasses import dataclass

from torch import Tensor

from .._validate import bounded
from ..settings import DecodingSettings
from ..space import FloatDim, SearchSpace
from ..stats import StepStats
from .base import Strategy, StrategyParams, leading_count_mask

__all__ = ["Factor", "FactorParams"]


@dataclass(frozen=True)
class FactorParams(StrategyParams):
    factor: float = bounded(1.0, low=0.0, low_open=True, doc="f in (n + 1)(1 - c_n) < f")


class Factor(Strategy):
    """Sort the block's masked confidences c_1 >= c_2 >= ... and commit the longest leading run
    of n positions with (n + 1)(1 - c_n) < ``factor`` (Fast-dLLM factor-based parallel decoding)."""

    name = "factor"
    Params = FactorParams

    def select(self, stats: StepStats) -> Tensor:
        f = self.params.factor
        return leading_count_mask(stats.confidence, stats.candidates,
                                  lambda c, n: (n + 1) * (1 - c) < f, descending=True)

    @classmethod
    def search_space(cls, settings: DecodingSettings) -> SearchSpace:
        return {"factor": FloatDim(0.05, 4.0, "log")}
