"""The evaluation engine: run one strategy over a split, batched, and measure it.

Prompts are encoded once per evaluator and reused by every trial. Forward passes are reused
across trials through a :class:`~tuner.cache.LogitsCache` (exact: keyed by the token state).
Racing stops a trial as soon as it can no longer reach an accuracy floor even if every remaining
example were right; the result then says so and keeps the examples it used.

Only decoding is timed (``sampler.generate``, with the device synchronised before and after each
batch): prompts are encoded before the clock starts, and detokenising and scoring completions (the
task's cost, not the sampler's) run outside it. A run with a cache reuses forward passes, so its
timings are not what the strategy costs in production; its result says so
(``timed_with_reuse``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping, Sequence

import torch
from torch import Tensor

import sampler
from sampler import DecodingSettings, DiffusionModel, Strategy

from .cache import CachedModel, LogitsCache
from .tasks import Example, Task
from .timing import Stopwatch

__all__ = ["Evaluator", "EvalResult", "ExampleOutcome", "percentile", "TIMING_METRICS",
           "production_timing"]

TIMING_METRICS = ("wall_s", "seconds_per_example", "tokens_per_second", "timed_with_reuse")
"""The metrics that describe time: production cost only where ``timed_with_reuse`` is 0."""


def production_timing(figures: Mapping[str, Any]) -> bool:
    """Whether a metrics dict's timings come from a plain decode (no forward-pass reuse), i.e.
    are what its strategy costs in production."""
    return figures.get("timed_with_reuse") == 0 and "tokens_per_second" in figures


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
    then the figures cover the ``n`` examples used, out of ``n_total``.

    ``wall_s`` is the seconds spent decoding the ``n`` examples (``sampler.generate`` only, device
    synchronised; encoding prompts, detokenising and scoring excluded), in batches of the
    evaluator's batch size. ``generated_tokens`` counts the tokens of the completions: generated
    tokens that are not special tokens (the end-of-text fill and padding after an answer are not
    counted, as in Fast-dLLM's throughput). ``tokens_per_forward`` is those tokens over the forward
    passes (``generated_tokens / total_nfe``): Fast-dLLM's "token per step" and d3LLM's TPF, which
    both count the answer's tokens up to its end, not ``gen_length``. ``timed_with_reuse`` is True
    when forward passes were reused across trials (a study's trials): such timings are not
    production cost.
    """

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
    generated_tokens: int
    timed_with_reuse: bool
    tokens: Tensor | None = field(default=None, repr=False)

    @property
    def seconds_per_example(self) -> float:
        """Decoding seconds per example (``wall_s / n``), at the evaluator's batch size."""
        return self.wall_s / self.n

    @property
    def tokens_per_second(self) -> float:
        """Completion tokens decoded per second (``generated_tokens / wall_s``)."""
        return self.generated_tokens / self.wall_s if self.wall_s > 0 else math.nan

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
                "seconds_per_example": self.seconds_per_example,
                "tokens_per_second": self.tokens_per_second,
                "timed_with_reuse": float(self.timed_with_reuse),
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
        self.prompt_length = max((ids.shape[1] for _, ids, _ in self._batches), default=0)
        """The longest encoded prompt, in tokens."""
        self._special = torch.tensor(sorted(set(model.tokenizer.all_special_ids)),
                                     device=model.device)

    def run(self, strategy: Strategy, *, settings: DecodingSettings | None = None,
            floor: float | None = None, reference: Tensor | None = None,
            generator_seed: int = 0, keep_tokens: bool = False,
            progress: Callable[[int, int], Any] | None = None) -> EvalResult:
        """Decode every example with ``strategy``; stop early when ``floor`` becomes unreachable.

        ``settings`` replaces the evaluator's decoding settings for this run (a trial that searches
        a decoding setting such as ``cache``); they must keep its ``gen_length``. Under a block KV
        cache nothing is reused (a step's logits then depend on the state at the block's refresh
        too), so the run is timed as in production. ``reference`` (n, gen_length) is passed to the
        oracle. ``progress(done, total)`` is called with 0 before the first batch (so that a bar
        knows its total at once) and after each batch.
        """
        settings = settings or self.settings
        if settings.gen_length != self.settings.gen_length:
            raise ValueError(f"settings.gen_length {settings.gen_length} != the evaluator's "
                             f"{self.settings.gen_length}.")
        # a strategy that reads the model's activations (EDIT) needs every pass to run
        reuse = (self.cache is not None and settings.cache == "none"
                 and not strategy.reads_activations)
        model = CachedModel.wrap(self.model, self.cache) if reuse else self.model
        hits_before = self.cache.hits if reuse else 0
        generator = torch.Generator(device=self.model.device).manual_seed(generator_seed)
        n_total = len(self.examples)
        outcomes: list[ExampleOutcome] = []
        tokens: list[Tensor] = []
        rows = generated = 0
        right = 0.0
        stopwatch = Stopwatch(self.model.device)
        if progress is not None:
            progress(0, n_total)
        for start, ids, attn in self._batches:
            ref = None if reference is None else reference[start:start + ids.shape[0]]
            with stopwatch:
                out = sampler.generate(model, ids, attention_mask=attn, strategy=strategy,
                                       settings=settings, generator=generator, reference=ref)
            generated += int((~torch.isin(out.generated, self._special)).sum())
            scored = self._score(start, out)
            right += sum(o.score for o in scored)
            outcomes += scored
            rows += int(out.nfe.sum())
            if keep_tokens:
                tokens.append(out.generated.cpu())
            if progress is not None:
                progress(len(outcomes), n_total)
            if floor is not None and (right + n_total - len(outcomes)) / n_total < floor - 1e-12:
                break
        nfes = [o.nfe for o in outcomes]
        n = len(outcomes)
        return EvalResult(
            accuracy=right / n, mean_nfe=sum(nfes) / n,
            p95_nfe=percentile(nfes, 95), tokens_per_forward=generated / sum(nfes),
            wall_s=stopwatch.seconds, n=n, n_total=n_total, complete=n == n_total,
            outcomes=outcomes, forward_rows=model.rows_computed if reuse else rows,
            cache_hits=(self.cache.hits - hits_before) if reuse else 0,
            generated_tokens=generated, timed_with_reuse=reuse,
            tokens=torch.cat(tokens) if tokens else None,
        )

    def _score(self, start: int, out: sampler.GenerateOutput) -> list[ExampleOutcome]:
        """The outcomes of one decoded batch whose first example is ``start``: its completions
        (special tokens dropped) scored by the task."""
        texts = self.model.tokenizer.batch_decode(out.generated, skip_special_tokens=True)
        outcomes = []
        for i, text in enumerate(texts):
            example = self.examples[start + i]
            outcomes.append(ExampleOutcome(example.id, float(self.task.score(example, text)),
                                           int(out.nfe[i]), text))
        return outcomes
