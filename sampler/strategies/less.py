"""LESS: commit a masked position once it is mutually stable (confident, persistent, settled)."""

from __future__ import annotations

import math
from dataclasses import dataclass

from torch import Tensor

from .._validate import bounded
from ..settings import MAX_TOKENS, DecodingSettings
from ..space import FloatDim, IntDim, SearchSpace
from ..stats import StepStats
from .base import Strategy, StrategyParams

__all__ = ["Less", "LessParams"]


@dataclass(frozen=True)
class LessParams(StrategyParams):
    tau_conf: float = bounded(0.9, low=0.0, high=1.0, doc="minimum top-1 probability")
    window: int = bounded(2, low=1, high=MAX_TOKENS,
                          doc="steps the top-1 token must have persisted (1 = no check); at most "
                              "MAX_TOKENS, the largest step budget")
    js_delta: float = bounded(1e-3, low=0.0, doc="maximum JS divergence (nats) to the previous step")


class Less(Strategy):
    """Commit every masked position of the block whose top-1 probability >= ``tau_conf``, whose
    top-1 token stayed the same for the last ``window`` steps, and whose predicted distribution moved
    by a Jensen-Shannon divergence <= ``js_delta`` since the previous step (LESS, mutually stable
    adaptive sampling). The JS divergence is computed only where the two cheap conditions hold and
    its cheap lower bound does not already exceed ``js_delta``.
    """

    name = "less"
    Params = LessParams

    def select(self, stats: StepStats) -> Tensor:
        p = self.params
        ready = stats.candidates & (stats.confidence >= p.tau_conf) & (stats.persistence >= p.window)
        # Skip the exact JS where the bound rules it out (a margin keeps rounding from deciding).
        ready &= stats.js_lower_bound <= p.js_delta * (1 + 1e-3) + 1e-7
        return ready & (stats.js_at(ready) <= p.js_delta)

    @classmethod
    def search_space(cls, settings: DecodingSettings) -> SearchSpace:
        return {
            "tau_conf": FloatDim(0.5, 0.99, "log1m"),
            "window": IntDim(1, min(6, max(1, settings.block_length // 2))),
            "js_delta": FloatDim(1e-4, min(5e-2, math.log(2)), "log"),
        }

    @classmethod
    def warm_starts(cls, settings: DecodingSettings) -> list[dict[str, float]]:
        return [
            *super().warm_starts(settings),
            {"tau_conf": 0.9, "window": 1, "js_delta": math.log(2)},  # Fast-dLLM-like: confidence only
            {"tau_conf": 0.6, "window": 2, "js_delta": 0.015 / 4},     # KLASS-like (JS ~ KL / 4)
        ]
