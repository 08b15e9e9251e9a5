"""Decode problems of a bundled task through the sampler: what the model card's evaluation
(:mod:`sampler.zoo.evaluate`) and the demo (:mod:`sampler.demo`) share."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

from torch import Tensor

from ..generate import generate
from ..models import DiffusionModel
from ..settings import DecodingSettings
from ..strategies import Strategy
from .problems import Problem

__all__ = ["Decoded", "decode"]


@dataclass(frozen=True)
class Decoded:
    """The completions of a batch (special tokens dropped), their tokens (B, G) and NFE (B,)."""

    texts: list[str]
    generated: Tensor
    nfe: Tensor


def decode(model: DiffusionModel, problems: Sequence[Problem], strategy: Strategy,
           settings: DecodingSettings, *, reference: Tensor | None = None) -> Decoded:
    """Decode the questions of ``problems`` (one batch, left-padded) with ``strategy`` under
    ``settings``; ``reference`` (B, G) for the oracle."""
    tok = model.tokenizer
    batch = tok([p.question for p in problems], padding=True, return_tensors="pt")
    out = generate(model, batch.input_ids.to(model.device),
                   attention_mask=batch.attention_mask.to(model.device), strategy=strategy,
                   settings=settings, reference=reference)
    return Decoded(tok.batch_decode(out.generated, skip_special_tokens=True), out.generated,
                   out.nfe.cpu())
