"""The full-step baseline of a split, and the figures derived from a result against it."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

__all__ = ["Baseline", "quality_per_step", "relative_figures", "aup_of"]


@dataclass(frozen=True)
class Baseline:
    """Full-step decoding (one token per step, low-confidence order, no block cache) on one
    split: the quality reference every speed-up is measured against. ``tokens_per_forward``:
    its answer tokens per forward pass (None in baselines stored before it was recorded)."""

    accuracy: float
    mean_nfe: float
    n: int
    scores: list[float] = field(default_factory=list, repr=False)
    tokens_per_forward: float | None = None

    def to_json(self) -> str:
        return json.dumps({"accuracy": self.accuracy, "mean_nfe": self.mean_nfe, "n": self.n,
                           "scores": self.scores, "tokens_per_forward": self.tokens_per_forward})

    @classmethod
    def from_json(cls, text: str) -> "Baseline":
        return cls(**json.loads(text))


def quality_per_step(accuracy: float, mean_nfe: float, baseline: Baseline, gamma: float) -> float:
    """speedup x (accuracy / baseline accuracy) ** gamma: SchED's quality-penalised speed score
    (QPS, arXiv 2512.02892, with its gamma = 4 the project's default), the same formula."""
    return (baseline.mean_nfe / mean_nfe) * (accuracy / baseline.accuracy) ** gamma


def aup_of(accuracy: float, tokens_per_forward: float, mean_nfe: float,
           baseline: Baseline) -> float:
    """d3LLM's AUP of one operating point against the full-step baseline (see
    :func:`tuner.aup.trial_aup`): the two-point curve (full-step, this point) in tokens per
    forward x accuracy percent, both counted as d3LLM counts them (answer tokens, not the
    end-of-text fill). A baseline stored without its own tokens per forward is taken to decode
    as many tokens as this point: this point's times its mean NFE over full-step's. 0 where
    d3LLM refuses the curve (accuracy more than 5 points below full-step): the worst value, so
    an objective ranks it last."""
    from .aup import AupError, trial_aup

    if not (tokens_per_forward > 0 and mean_nfe > 0 and baseline.mean_nfe > 0):
        return 0.0
    full_step = baseline.tokens_per_forward
    if full_step is None or not full_step > 0:
        full_step = tokens_per_forward * mean_nfe / baseline.mean_nfe
    try:
        return trial_aup(tokens_per_forward, accuracy, full_step, baseline.accuracy)
    except AupError:
        return 0.0


def relative_figures(accuracy: float, mean_nfe: float, baseline: Baseline,
                     gamma: float, tokens_per_forward: float | None = None) -> dict[str, Any]:
    """The figures of a result relative to its baseline: speed-up (full-step NFE over this NFE),
    quality per step, the baseline's own accuracy and NFE, and with ``tokens_per_forward`` the
    AUP (:func:`aup_of`). Trials, validation, ``tuner eval`` and the dashboard all derive them
    here."""
    figures = {"speedup": baseline.mean_nfe / mean_nfe,
               "quality_per_step": quality_per_step(accuracy, mean_nfe, baseline, gamma),
               "baseline_accuracy": baseline.accuracy, "baseline_mean_nfe": baseline.mean_nfe}
    if tokens_per_forward is not None:
        figures["aup"] = aup_of(accuracy, tokens_per_forward, mean_nfe, baseline)
    return figures
