"""The full-step baseline of a split, and the figures derived from a result against it."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

__all__ = ["Baseline", "quality_per_step", "relative_figures"]


@dataclass(frozen=True)
class Baseline:
    """Full-step decoding (one token per step, low-confidence order, no block cache) on one
    split: the quality reference every speed-up is measured against."""

    accuracy: float
    mean_nfe: float
    n: int
    scores: list[float] = field(default_factory=list, repr=False)

    def to_json(self) -> str:
        return json.dumps({"accuracy": self.accuracy, "mean_nfe": self.mean_nfe, "n": self.n,
                           "scores": self.scores})

    @classmethod
    def from_json(cls, text: str) -> "Baseline":
        return cls(**json.loads(text))


def quality_per_step(accuracy: float, mean_nfe: float, baseline: Baseline, gamma: float) -> float:
    """speedup x (accuracy / baseline accuracy) ** gamma."""
    return (baseline.mean_nfe / mean_nfe) * (accuracy / baseline.accuracy) ** gamma


def relative_figures(accuracy: float, mean_nfe: float, baseline: Baseline,
                     gamma: float) -> dict[str, Any]:
    """The figures of a result relative to its baseline: speed-up (full-step NFE over this NFE),
    quality per step, and the baseline's own accuracy and NFE. Trials, validation, ``tuner
    eval`` and the dashboard all derive them here."""
    return {"speedup": baseline.mean_nfe / mean_nfe,
            "quality_per_step": quality_per_step(accuracy, mean_nfe, baseline, gamma),
            "baseline_accuracy": baseline.accuracy, "baseline_mean_nfe": baseline.mean_nfe}
