"""The evaluation engine: run one strategy over a split, batched, and measure it.

Prompts are encoded once per evaluator and reused by every trial. Forward passes are reused
across trials through a :class:`~tuner.cache.LogitsCache` (exact: keyed by the token state).
Racing stops a trial as soon as it can no longer reach an accuracy floor even if every remaining
example were right; the result then says so and keeps the examples it used.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

import torch
from torch import Tensor

import sampler
from sampler import DecodingSettings, DiffusionModel, Strategy

from .cache import CachedModel, LogitsCache
from .tasks import Example, Task

__all__ = ["Evaluator", "EvalResult", "ExampleOutcome", "percentile"]


def percentile(values: Sequence[float], q: float) -> float:
    """The q-th percentile (0-100) with linear interpolation; NaN for no values."""
    if not values:
        return math.nan
    ordered = sorted(values)
    pos = (len(ordered) - 1) * q / 100
    lo, hi = math.floor(pos), math.ceil(pos)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (pos - lo)


@dataclass(frozen=True)
class ExampleOutcome:
    id: str
    score: float
    nfe: int
    completion: str


@dataclass(frozen=True)
class EvalResult:
    """Figures of one strategy on one split. ``complete`` is False when racing stopped it early;
    then the figures cover the ``n`` examples used, out of ``n_total``."""

    accuracy: float
    mean_nfe: float
    p95_nfe: float
    tokens_per_forward: float
    wall_s: float
    n: int
    n_total: int
    complete: bool
    outcomes: list[ExampleOutcome]
    forward_rows: int
    cache_hits: int
    tokens: Tensor | None = field(default=None, repr=False)

    @property
    def total_nfe(self) -> int:
        return sum(o.nfe for o in self.outcomes)

    @property
    def cache_hit_rate(self) -> float:
        total = self.cache_hits + self.forward_rows
        return self.cache_hits / total if total else 0.0

    def metrics(self) -> dict[str, float]:
        """The scalar figures, as stored with a trial."""
        return {"accuracy": self.accuracy, "mean_nfe": self.mean_nfe, "p95_nfe": self.p95_nfe,
                "tokens_per_forward": self.tokens_per_forward, "wall_s": self.wall_s,
                "n_examples": float(self.n), "complete": float(self.complete),
                "forward_rows": float(self.forward_rows), "cache_hit_rate": self.cache_hit_rate}


class Evaluator:
    """Evaluates strategies of one model on one list of examples under fixed decoding settings."""

    def __init__(self, model: DiffusionModel, task: Task, examples: Sequence[Example],
                 settings: DecodingSettings, *, batch_size: int = 32,
                 cache: LogitsCache | None = None) -> None:
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}.")
        self.model, self.task, self.examples, self.settings = model, task, list(examples), settings
        self.cache = cache
        self._batches: list[tuple[int, Tensor, Tensor]] = []
        for start in range(0, len(self.examples), batch_size):
            chunk = self.examples[start:start + batch_size]
            ids, attn = task.encode(model.tokenizer, chunk)
            self._batches.append((start, ids, attn))

    def run(self, strategy: Strategy, *, floor: float | None = None, reference: Tensor | None = None,
            generator_seed: int = 0, keep_tokens: bool = False,
            progress: Callable[[int, int], Any] | None = None) -> EvalResult:
        """Decode every example with ``strategy``; stop early when ``floor`` becomes unreachable.

        ``reference`` (n, gen_length) is passed to the oracle. ``progress(done, total)`` is called
        after each batch.
        """
        model: DiffusionModel = self.model
        cached = None
        if self.cache is not None:
            cached = CachedModel.wrap(self.model, self.cache)
            model = cached
        hits_before = self.cache.hits if self.cache is not None else 0
        generator = torch.Generator(device=self.model.device).manual_seed(generator_seed)
        n_total = len(self.examples)
        outcomes: list[ExampleOutcome] = []
        tokens: list[Tensor] = []
        rows_plain = 0
        right = 0.0
        started = time.perf_counter()
        complete = True
        for start, ids, attn in self._batches:
            ref = None if reference is None else reference[start:start + ids.shape[0]]
            out = sampler.generate(model, ids, attention_mask=attn, strategy=strategy,
                                   generator=generator, reference=ref,
                                   **self.settings.to_dict())
            texts = self.model.tokenizer.batch_decode(out.generated, skip_special_tokens=True)
            for i, text in enumerate(texts):
                example = self.examples[start + i]
                score = float(self.task.score(example, text))
                right += score
                outcomes.append(ExampleOutcome(example.id, score, int(out.nfe[i]), text))
            rows_plain += int(out.nfe.sum())
            if keep_tokens:
                tokens.append(out.generated.cpu())
            if progress is not None:
                progress(len(outcomes), n_total)
            if floor is not None and (right + n_total - len(outcomes)) / n_total < floor - 1e-12:
                complete = len(outcomes) == n_total
                break
        wall = time.perf_counter() - started
        nfes = [o.nfe for o in outcomes]
        n = len(outcomes)
        return EvalResult(
            accuracy=right / n,
            mean_nfe=sum(nfes) / n,
            p95_nfe=percentile(nfes, 95),
            tokens_per_forward=self.settings.gen_length * n / sum(nfes),
            wall_s=wall,
            n=n,
            n_total=n_total,
            complete=complete,
            outcomes=outcomes,
            forward_rows=cached.rows_computed if cached is not None else rows_plain,
            cache_hits=(self.cache.hits - hits_before) if self.cache is not None else 0,
            tokens=torch.cat(tokens) if tokens else None,
        )
