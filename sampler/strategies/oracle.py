"""The oracle: the lower bound on steps for samplers that keep the full-step answer."""

from __future__ import annotations

from dataclasses import dataclass

from torch import Tensor

from ..errors import ConfigError
from ..settings import DecodingSettings
from ..space import SearchSpace
from ..stats import StepStats
from .base import GenerationContext, Selection, Strategy, StrategyParams

__all__ = ["Oracle", "OracleParams"]


@dataclass(frozen=True)
class OracleParams(StrategyParams):
    """The oracle has no parameters; its reference tokens come with the `generate` call."""


class Oracle(Strategy):
    """Commit every masked position of the block whose current argmax already equals the reference
    (full-step) token; when none does, the loop's progress rule commits the most confident one.
    Every committed position receives the reference token, so the output equals the reference and
    the NFE is the lower bound of any trajectory-preserving rule."""

    name = "oracle"
    Params = OracleParams
    tunable = False
    needs_reference = True

    def reset(self, context: GenerationContext) -> None:
        ref = context.reference
        want = (context.batch_size, context.settings.gen_length)
        if ref is None:
            raise ConfigError("the oracle needs reference tokens: pass reference= (the generated "
                              "part of a full-step run, shape batch x gen_length) to generate().")
        if tuple(ref.shape) != want:
            raise ConfigError(f"oracle reference has shape {tuple(ref.shape)}, expected {want} "
                              "(batch x gen_length).")
        self._reference = ref.to(context.device)

    def select(self, stats: StepStats) -> Selection:
        ref = self._reference[stats.rows]
        return Selection(commit=stats.candidates & (stats.top1 == ref), tokens=ref)

    @classmethod
    def search_space(cls, settings: DecodingSettings) -> SearchSpace:
        return {}
