"""Fixed step budget: LLaDA's low_confidence / random remasking and Dream's scores."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch
from torch import Tensor

from .._validate import bounded
from ..errors import ConfigError
from ..settings import MAX_TOKENS, DecodingSettings
from ..space import ChoiceDim, IntDim, SearchSpace
from ..stats import StepStats
from .base import GenerationContext, Selection, Strategy, StrategyParams, top_k_mask

__all__ = ["Fixed", "FixedParams", "SCORES"]

SCORES = ("low_confidence", "random", "maskgit_plus", "topk_margin", "entropy")
_DREAM_EPS = 1e-3


@dataclass(frozen=True)
class FixedParams(StrategyParams):
    steps: int = bounded(128, low=1, high=MAX_TOKENS,
                         doc="total steps, split evenly over the blocks; at most MAX_TOKENS, "
                             "the largest step budget")
    score: Literal[SCORES] = bounded("low_confidence", choices=SCORES, doc="how positions are ranked")
    schedule: Literal["even", "dream"] = bounded("even", choices=("even", "dream"),
                                                 doc="tokens per step: LLaDA's even split or Dream's")


class Fixed(Strategy):
    """Commit a fixed number of the block's masked positions per step, the best-scored first.

    ``steps`` is split evenly over the blocks. ``schedule="even"`` spreads a block's masks evenly
    over its steps, the remainder on the first ones (LLaDA, Nie et al. 2025); ``"dream"`` commits
    int(n * (1 - s / t)) on timesteps linspace(1, 1e-3) (Dream, Ye et al. 2025). Scores:
    ``low_confidence`` and ``maskgit_plus`` rank by top-1 probability, ``topk_margin`` by
    top-1 minus top-2 probability, ``entropy`` by negative entropy, ``random`` uniformly.
    """

    name = "fixed"
    Params = FixedParams

    def reset(self, context: GenerationContext) -> None:
        s = context.settings
        if self.params.steps % s.num_blocks or self.params.steps < s.num_blocks:
            raise ConfigError(f"fixed params: `steps` ({self.params.steps}) must be a positive "
                              f"multiple of the number of blocks ({s.num_blocks}).")
        if self.params.steps > s.max_steps:
            raise ConfigError(f"fixed params: `steps` ({self.params.steps}) exceeds the decoding "
                              f"budget `max_steps` ({s.max_steps}); raise max_steps or lower steps.")
        self._steps_per_block = self.params.steps // s.num_blocks
        self._generator = context.generator

    def _scores(self, stats: StepStats) -> Tensor:
        score = self.params.score
        if score in ("low_confidence", "maskgit_plus"):
            return stats.confidence
        if score == "topk_margin":
            return stats.margin
        if score == "entropy":
            return -stats.entropy
        device = stats.confidence.device
        return torch.rand(stats.confidence.shape, generator=self._generator,
                          device=device if self._generator is None else self._generator.device).to(device)

    def _count(self, stats: StepStats) -> Tensor:
        """(B,) number of positions to commit at this step of each row's block."""
        left = stats.candidates.sum(-1)
        s, n = stats.block_step, self._steps_per_block
        steps_left = (n - s).clamp_min(1)
        if self.params.schedule == "even":
            return (left + steps_left - 1) // steps_left  # ceil: the remainder goes first
        t = 1 - s.double() * (1 - _DREAM_EPS) / n
        t_next = 1 - (s + 1).double() * (1 - _DREAM_EPS) / n
        count = (left.double() * (1 - t_next / t)).floor().long()
        return torch.where(steps_left <= 1, left, count)

    def select(self, stats: StepStats) -> Selection:
        scores = self._scores(stats)
        return Selection(top_k_mask(scores, stats.candidates, self._count(stats)), priority=scores)

    @classmethod
    def search_space(cls, settings: DecodingSettings) -> SearchSpace:
        nb = settings.num_blocks
        return {
            "steps": IntDim(nb, settings.max_steps, step=nb),
            "score": ChoiceDim(("low_confidence", "topk_margin", "entropy")),
        }

    @classmethod
    def warm_starts(cls, settings: DecodingSettings) -> list[dict[str, object]]:
        # the default's 128 steps mean nothing for another gen_length: start at a quarter of it
        return [{**cls.Params().to_dict(), "steps": settings.gen_length // 4}]

    @staticmethod
    def full_step(settings: DecodingSettings) -> "Fixed":
        """One token per step in low-confidence order: the quality ceiling (NFE = gen_length)."""
        return Fixed(FixedParams(steps=settings.gen_length, score="low_confidence"))


