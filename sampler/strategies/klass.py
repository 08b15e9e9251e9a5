"""KLASS: KL-adaptive stability sampling."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from .._validate import bounded
from ..settings import MAX_TOKENS, DecodingSettings
from ..space import FloatDim, IntDim, SearchSpace
from ..stats import StepStats
from .base import GenerationContext, Strategy, StrategyParams

__all__ = ["Klass", "KlassParams"]


@dataclass(frozen=True)
class KlassParams(StrategyParams):
    tau: float = bounded(0.6, low=0.0, high=1.0, doc="top-1 probability must exceed this")
    kappa: float = bounded(0.015, low=0.0, doc="KL bound between consecutive steps (nats)")
    history: int = bounded(2, low=1, high=MAX_TOKENS,
                           doc="steps the KL must have stayed below kappa; at most MAX_TOKENS, "
                               "the largest step budget")


class Klass(Strategy):
    """Commit every masked position of the block whose top-1 probability > ``tau`` and whose KL
    divergence between consecutive steps stayed below ``kappa`` for the last ``history`` steps
    (KLASS, Kim et al. 2025). Defaults are the LLaDA GSM8K script's."""

    name = "klass"
    Params = KlassParams

    def reset(self, context: GenerationContext) -> None:
        # Consecutive steps with KL < kappa, per position of the caller's batch.
        self._stable = torch.zeros(context.batch_size, context.settings.gen_length, dtype=torch.long,
                                   device=context.device)

    def select(self, stats: StepStats) -> Tensor:
        p = self.params
        before = self._stable[stats.rows]
        stable = torch.where(stats.kl < p.kappa, before + 1, 0)
        if stats.observed is not None:  # under a block cache, count observations, not steps
            stable = torch.where(stats.observed, stable, before)
        self._stable = self._stable.index_copy(0, stats.rows, stable)
        return stats.candidates & (stats.confidence > p.tau) & (stable >= p.history)

    @classmethod
    def search_space(cls, settings: DecodingSettings) -> SearchSpace:
        return {
            "tau": FloatDim(0.5, 0.99, "log1m"),
            "kappa": FloatDim(1e-4, 5e-2, "log"),
            "history": IntDim(1, 4),
        }

    @classmethod
    def warm_starts(cls, settings: DecodingSettings) -> list[dict[str, float]]:
        # the setting of KLASS's Dream GSM8K script
        return [*super().warm_starts(settings), {"tau": 0.9, "kappa": 0.001, "history": 2}]
