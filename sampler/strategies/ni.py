"""NI Sampling: a trained neural indicator decides which masked positions to commit."""

from __future__ import annotations

from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor

from .._validate import bounded
from ..artifacts import TrainedOn
from ..errors import ConfigError
from ..settings import DecodingSettings
from ..space import FloatDim, SearchSpace
from ..stats import StepStats
from .base import GenerationContext, Strategy, StrategyParams

__all__ = ["Ni", "NiParams"]


@dataclass(frozen=True)
class NiParams(StrategyParams):
    indicator: str = bounded("", doc="path of the indicator file (`tuner train-indicator -o`)")
    indicator_sha256: str = bounded("", doc="the file's SHA-256 (hex); a changed file is refused")
    theta: float = bounded(0.89, low=0.0, high=1.0,
                           doc="commit where the indicator's score is above this (1: never)")
    prob_threshold: float = bounded(0.95, low=0.0, high=1.0,
                                    doc="also commit where the top-1 probability is above this "
                                        "(1: never)")


class Ni(Strategy):
    """NI Sampling (Liu et al., ICLR 2026): commit every masked position of the block whose
    indicator score is above ``theta``, together with every one whose top-1 probability is above
    ``prob_threshold``; the shared progress rule adds the most confident position(s) when neither
    commits ``min_commit`` (the authors' third term, the top-k of the step schedule: with one
    step per token it is one token per step, i.e. ``min_commit`` 1).

    As the authors' ``ni_generate``: the indicator reads the last hidden state and the step's
    probabilities at every masked position (:mod:`sampler.indicator`), and both thresholds are
    strict (``>``), so 1 switches a rule off; their defaults are the authors' GSM8K setting
    (indicator 0.89, probability 0.95). Differences: only the current block's positions are
    candidates (the authors' indicator may commit a masked position of a later block), and at a
    temperature above 0 every commit writes the loop's sampled token (the authors write the
    greedy token where the indicator commits).

    The indicator file is referenced by path and SHA-256 and read once, when the strategy is
    made: a missing or changed file is one :class:`ConfigError` line before anything decodes.
    Decoding with a model other than the one the indicator was trained on (its recorded weights
    signature) warns once per model (:class:`~sampler.artifacts.ModelMismatchWarning`).
    """

    name = "ni"
    Params = NiParams
    needs_hidden = True

    def __init__(self, params: NiParams | dict | None = None) -> None:
        super().__init__(params)
        from ..indicator import load_indicator

        p = self.params
        if not p.indicator:
            raise ConfigError("strategy `ni` needs `indicator`, the path of an indicator file "
                              "(write one with `tuner train-indicator`), and `indicator_sha256`.")
        if not p.indicator_sha256:
            from ..artifacts import check_artifact, file_sha256

            actual = file_sha256(check_artifact(p.indicator, None, "indicator"))
            raise ConfigError(f"strategy `ni` needs `indicator_sha256`, the SHA-256 of "
                              f"{p.indicator} (so a profile names exactly its file): it is "
                              f"{actual}.")
        loaded = load_indicator(p.indicator, p.indicator_sha256)
        self.indicator, self.provenance = loaded.indicator, loaded.provenance
        self._device: torch.device | None = None
        self.trained_on = TrainedOn("the ni indicator", p.indicator, self.provenance)

    def attach(self, model: Any) -> AbstractContextManager:
        self.trained_on.check(model)  # another model's weights: a warning, once per model
        return nullcontext()

    def reset(self, context: GenerationContext) -> None:
        if self._device != context.device:
            self.indicator = self.indicator.to(context.device)
            self._device = context.device

    def select(self, stats: StepStats) -> Tensor:
        p = self.params
        cand = stats.candidates
        commit = cand & (stats.confidence > p.prob_threshold)
        if p.theta < 1.0 and bool(cand.any()):
            size = self.indicator.config.hidden_size
            if stats.hidden is None or stats.hidden.shape[-1] != size:
                got = None if stats.hidden is None else stats.hidden.shape[-1]
                raise ConfigError(f"the `ni` indicator {p.indicator} reads hidden states of size "
                                  f"{size}, the model gives {got}: it was trained for another "
                                  "model; train one for this model (tuner train-indicator).")
            commit |= cand & (self.indicator.score(stats, cand) > p.theta)
        return commit

    @classmethod
    def search_space(cls, settings: DecodingSettings) -> SearchSpace:
        return {"theta": FloatDim(0.3, 0.995, "log1m"),
                "prob_threshold": FloatDim(0.7, 0.999, "log1m")}
