"""EB-sampler: entropy-bounded parallel unmasking."""

from __future__ import annotations

from dataclasses import dataclass

from torch import Tensor

from .._validate import bounded
from ..settings import DecodingSettings
from ..space import FloatDim, SearchSpace
from ..stats import StepStats
from .base import Strategy, StrategyParams, leading_count_mask

__all__ = ["EntropyBound", "EntropyBoundParams"]


@dataclass(frozen=True)
class EntropyBoundParams(StrategyParams):
    gamma: float = bounded(0.1, low=0.0, doc="bound on summed entropy minus the largest one (nats)")


class EntropyBound(Strategy):
    """Sort the block's masked positions by entropy ascending and commit the largest prefix whose
    summed entropy minus its largest entropy is <= ``gamma`` (EB-sampler, Ben-Hamu et al. 2025)."""

    name = "entropy_bound"
    Params = EntropyBoundParams

    def select(self, stats: StepStats) -> Tensor:
        gamma = self.params.gamma
        # Sorted ascending, the prefix sum minus its largest term is the sum of the n - 1 smallest.
        return leading_count_mask(stats.entropy, stats.candidates,
                                  lambda h, n: (h.cumsum(-1) - h) <= gamma, descending=False)

    @classmethod
    def search_space(cls, settings: DecodingSettings) -> SearchSpace:
        return {"gamma": FloatDim(1e-3, 2.0, "log")}

    @classmethod
    def warm_starts(cls, settings: DecodingSettings) -> list[dict[str, float]]:
        return [*super().warm_starts(settings), {"gamma": 0.15}]  # SGLang's default
