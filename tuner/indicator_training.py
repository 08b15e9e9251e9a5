"""Train the neural indicator of NI Sampling for one model and task (``tuner train-indicator``).

Recipe (what follows NI Sampling, Liu et al., ICLR 2026, and what is ours):

1. **Data**: prompts of the task's *training* split only (the generator's training set for the
   bundled tasks), never the ``tune`` / ``test`` splits the thresholds are searched and validated
   on.
2. **Reference**: each prompt is decoded full-step (one token per step, low-confidence order);
   its output y* is the trajectory to preserve.
3. **States** (the trajectory-preserving order): the paper's finding is that committing, at each
   step, every position whose prediction is already right cuts the steps by an order of magnitude
   without changing the answer. We roll out that order (the oracle: commit every masked position
   of the block whose top-1 equals y*, writing y*) and slower members of the same family (each
   such position committed with probability ``keep`` < 1), which visit the states between
   full-step and the oracle; every one of these trajectories ends at y*. With ``rounds`` = 2 the
   indicator trained on them then decodes the same prompts itself (``ni``), and its own states are
   added (so it also learns the states its mistakes lead to), and it is trained again on all.
4. **Labels** (trajectory-preserving): a masked position of the current block is positive at a
   step when committing its top-1 token now keeps the full-step output there (top-1 == y*), and
   negative otherwise.
5. **Objective**: binary cross-entropy of the indicator's score against that label; negatives
   weigh ``neg_weight`` (a wrong commit can change the answer, a missed one costs a step).

The authors have not published their training code; steps 3 (the keep family, the second round)
and 5 (the negative weight) are our reading of "trajectory-preserving", stated here so that the
model card can say what was run. The network and its inputs are in :mod:`sampler.indicator`.
"""

from __future__ import annotations

import dataclasses
import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

import torch
from torch import Tensor

import sampler
from sampler import DecodingSettings, Selection, Strategy, StrategyParams
from sampler.indicator import Indicator, IndicatorConfig, save_indicator, step_features
from sampler.space import SearchSpace
from sampler.stats import StepStats
from sampler.strategies.base import GenerationContext

from .errors import UsageError
from .tasks import Example, Task, hash_examples

__all__ = ["TrainingOptions", "TrainingResult", "training_examples", "collect_rows",
           "fit_indicator", "train_indicator", "write_indicator", "Rows"]

Progress = Callable[[str, int, int], Any]
"""``progress(phase, done, total)``: phases ``reference``, ``trajectories``, ``training``."""


@dataclass(frozen=True)
class TrainingOptions:
    """How an indicator is trained (every field is written into the file's provenance)."""

    n_examples: int = 400
    epochs: int = 6
    batch_rows: int = 512
    lr: float = 2e-3
    weight_decay: float = 1e-4
    neg_weight: float = 2.0
    keep: tuple[float, ...] = (1.0, 0.5, 0.25)
    rounds: int = 2
    theta: float = 0.5
    val_fraction: float = 0.1
    seed: int = 0
    topk: int = 8
    width: int = 64
    depth: int = 2
    dropout: float = 0.1
    threads: int = 1
    """CPU threads while fitting (the network is small: more threads mostly wait on each other)."""

    def __post_init__(self) -> None:
        counts = {"n_examples": (1, 10**6), "epochs": (1, 10**4), "batch_rows": (1, 10**7),
                  "rounds": (1, 2), "topk": (1, 4096), "width": (1, 8192), "depth": (1, 64),
                  "threads": (1, 1024)}
        for name, (low, high) in counts.items():
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high:
                raise UsageError(f"indicator training: `{name}` must be an integer in "
                                 f"[{low}, {high}], got {value!r}.")
        reals = {"lr": (0.0, 10.0), "weight_decay": (0.0, 10.0), "neg_weight": (0.0, 1e3),
                 "theta": (0.0, 1.0), "val_fraction": (0.0, 0.9), "dropout": (0.0, 0.99)}
        for name, (low, high) in reals.items():
            value = getattr(self, name)
            if (not isinstance(value, (int, float)) or isinstance(value, bool)
                    or not math.isfinite(value) or not low <= value <= high):
                raise UsageError(f"indicator training: `{name}` must be a number in "
                                 f"[{low}, {high}], got {value!r}.")
        if self.lr == 0:
            raise UsageError("indicator training: `lr` must be above 0.")
        keep = tuple(self.keep)
        if not keep or any(not isinstance(k, (int, float)) or not 0 < k <= 1 for k in keep):
            raise UsageError(f"indicator training: `keep` must list numbers in (0, 1], got "
                             f"{self.keep!r}.")
        object.__setattr__(self, "keep", keep)
        if not 0 <= self.seed < 2**32:
            raise UsageError(f"indicator training: `seed` must be in [0, 2**32), got {self.seed}.")


@dataclass
class Rows:
    """Training rows: one per (trajectory, step, masked position of the block)."""

    hidden: list[Tensor] = field(default_factory=list)    # (n, D) float16
    features: list[Tensor] = field(default_factory=list)  # (n, F) float32
    labels: list[Tensor] = field(default_factory=list)    # (n,) bool
    example: list[Tensor] = field(default_factory=list)   # (n,) long, the example's index

    def __len__(self) -> int:
        return sum(int(x.shape[0]) for x in self.labels)

    def tensors(self) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        return (torch.cat(self.hidden), torch.cat(self.features), torch.cat(self.labels),
                torch.cat(self.example))


@dataclass(frozen=True)
class TrainingResult:
    """The trained indicator and what its file's provenance records."""

    indicator: Indicator
    provenance: dict[str, Any]


def training_examples(task: Task, n: int) -> list[Example]:
    """The first ``n`` examples of ``task``'s training split (what its bundled model was trained
    on, disjoint from ``tune`` and ``test``). Tasks without a training split are refused."""
    module = getattr(task, "module", None)
    if module is None or not hasattr(module, "make_splits"):
        raise UsageError(f"task {task.name!r} has no training split to train an indicator on "
                         "(tasks with one: the bundled arith and cot).")
    problems = module.make_splits(seed=getattr(task, "seed", 0), n_train=n)["train"]
    return [Example(id=f"train-{i}", prompt=p.question, answer=p.answer, meta={"problem": p})
            for i, p in enumerate(problems)]


class _Recorder(Strategy):
    """Decodes with one policy of the training family and records every step's rows.

    ``keep`` in (0, 1]: the trajectory-preserving family (commit each position whose top-1 equals
    the reference with probability ``keep``, writing the reference tokens); ``indicator``: the
    indicator being trained, as ``ni`` decodes with it (its own states, for the second round)."""

    name = "indicator-recorder"
    Params = StrategyParams
    tunable = False
    needs_hidden = True
    needs_reference = True

    def __init__(self, rows: Rows, topk: int, *, keep: float | None = None,
                 indicator: Indicator | None = None, theta: float = 0.5, seed: int = 0) -> None:
        super().__init__(StrategyParams())
        self.rows, self.topk, self.keep = rows, topk, keep
        self.indicator, self.theta = indicator, theta
        self.random = torch.Generator().manual_seed(seed)
        self._next = 0

    def reset(self, context: GenerationContext) -> None:
        self._offset, self._next = self._next, self._next + context.batch_size
        self._reference = context.reference
        if self.indicator is not None:
            self.indicator = self.indicator.to(context.device)

    def select(self, stats: StepStats) -> Selection | Tensor:
        cand = stats.candidates
        ref = self._reference[stats.rows]
        right = stats.top1 == ref
        if bool(cand.any()):
            hidden, features = step_features(stats, cand, self.topk)
            self.rows.hidden.append(hidden.to("cpu", torch.float16))
            self.rows.features.append(features.cpu())
            self.rows.labels.append(right[cand].cpu())
            self.rows.example.append((stats.rows[cand.nonzero()[:, 0]] + self._offset).cpu())
        if self.indicator is not None:
            score = self.indicator.score(stats, cand)
            return cand & (score > self.theta)
        draw = torch.rand(cand.shape, generator=self.random).to(cand.device)
        return Selection(commit=cand & right & (draw < self.keep), tokens=ref)

    @classmethod
    def search_space(cls, settings: DecodingSettings) -> SearchSpace:
        return {}


def collect_rows(model, task: Task, examples: Sequence[Example], settings: DecodingSettings,
                 reference: Tensor, rows: Rows, *, topk: int, keep: Sequence[float] = (),
                 indicator: Indicator | None = None, theta: float = 0.5, seed: int = 0,
                 batch_size: int = 32, progress: Progress | None = None) -> dict[str, float]:
    """Roll out the training policies on ``examples`` and append their rows to ``rows``; returns
    each policy's accuracy and mean NFE (how far the family is from full-step)."""
    from .engine import Evaluator

    evaluator = Evaluator(model, task, examples, settings, batch_size=batch_size)
    policies: list[tuple[str, dict[str, Any]]] = [(f"keep={k:g}", {"keep": k}) for k in keep]
    if indicator is not None:
        policies.append((f"indicator>{theta:g}", {"indicator": indicator.eval(), "theta": theta}))
    figures: dict[str, float] = {}
    total = len(policies) * len(examples)
    for i, (label, kwargs) in enumerate(policies):
        recorder = _Recorder(rows, topk, seed=seed + i, **kwargs)
        done = i * len(examples)
        report = (None if progress is None
                  else lambda d, _t, done=done: progress("trajectories", done + d, total))
        result = evaluator.run(recorder, reference=reference, progress=report)
        figures[f"{label} accuracy"] = result.accuracy
        figures[f"{label} mean_nfe"] = result.mean_nfe
    return figures


def fit_indicator(rows: Rows, config: IndicatorConfig, options: TrainingOptions, *,
                  indicator: Indicator | None = None, device: str | torch.device = "cpu",
                  progress: Progress | None = None) -> tuple[Indicator, dict[str, float]]:
    """Train an indicator (a fresh one, or ``indicator`` further) on ``rows`` with the weighted
    binary cross-entropy of the module docstring; the rows of a ``val_fraction`` of the examples
    are held out. Returns the indicator (eval mode) and its figures (initial and final losses,
    held-out loss, accuracy, precision and recall at 0.5)."""
    threads = torch.get_num_threads()
    if torch.device(device).type == "cpu":
        torch.set_num_threads(min(threads, options.threads))
    try:
        return _fit(rows, config, options, indicator, device, progress)
    finally:
        torch.set_num_threads(threads)


def _fit(rows: Rows, config: IndicatorConfig, options: TrainingOptions,
         indicator: Indicator | None, device: str | torch.device,
         progress: Progress | None) -> tuple[Indicator, dict[str, float]]:
    hidden, features, labels, example = rows.tensors()
    if labels.numel() == 0:
        raise UsageError("no training rows were collected (every example decoded in one step?).")
    generator = torch.Generator().manual_seed(options.seed)
    torch.manual_seed(options.seed)
    ids = example.unique()
    shuffled = ids[torch.randperm(ids.numel(), generator=generator)]
    held = shuffled[:int(ids.numel() * options.val_fraction)]
    val = torch.isin(example, held)
    train = (~val).nonzero().flatten()
    val = val.nonzero().flatten()
    net = (indicator or Indicator(config)).to(device)
    opt = torch.optim.AdamW(net.parameters(), lr=options.lr, weight_decay=options.weight_decay)
    steps = options.epochs * math.ceil(train.numel() / options.batch_rows)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=options.lr, total_steps=max(steps, 1))

    def loss_of(index: Tensor) -> Tensor:
        y = labels[index].to(device).float()
        logits = net(hidden[index].to(device).float(), features[index].to(device))
        weight = torch.where(y > 0, 1.0, options.neg_weight)
        return torch.nn.functional.binary_cross_entropy_with_logits(logits, y, weight=weight)

    def evaluate(index: Tensor) -> dict[str, float]:
        net.eval()
        with torch.no_grad():
            losses, hits, tp, fp, fn, n = 0.0, 0, 0, 0, 0, 0
            for start in range(0, index.numel(), 8192):
                part = index[start:start + 8192]
                y = labels[part].to(device)
                logits = net(hidden[part].to(device).float(), features[part].to(device))
                weight = torch.where(y, 1.0, options.neg_weight)
                losses += float(torch.nn.functional.binary_cross_entropy_with_logits(
                    logits, y.float(), weight=weight, reduction="sum"))
                guess = logits > 0
                hits += int((guess == y).sum())
                tp += int((guess & y).sum())
                fp += int((guess & ~y).sum())
                fn += int((~guess & y).sum())
                n += part.numel()
        net.train()
        return {"loss": losses / max(n, 1), "accuracy": hits / max(n, 1),
                "precision": tp / max(tp + fp, 1), "recall": tp / max(tp + fn, 1)}

    figures = {"rows": float(labels.numel()), "positive_rate": float(labels.float().mean()),
               "initial_train_loss": evaluate(train)["loss"]}
    net.train()
    done = 0
    for _ in range(options.epochs):
        order = train[torch.randperm(train.numel(), generator=generator)]
        for start in range(0, order.numel(), options.batch_rows):
            loss = loss_of(order[start:start + options.batch_rows])
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
            done += 1
            if progress is not None:
                progress("training", done, steps)
    final = evaluate(train)
    figures["final_train_loss"] = final["loss"]
    if val.numel():
        figures.update({f"val_{k}": v for k, v in evaluate(val).items()})
    return net.eval(), figures


def train_indicator(evaluation, options: TrainingOptions = TrainingOptions(), *,
                    progress: Progress | None = None) -> TrainingResult:
    """Train an indicator for ``evaluation``'s model on its task's training split, under its
    spec's decoding settings (without a block cache). ``evaluation``: a
    :class:`tuner.evaluation.Evaluation` (model, task, spec, model fingerprint)."""
    started = time.perf_counter()
    task, spec = evaluation.task, evaluation.spec
    examples = training_examples(task, options.n_examples)  # refuses a task without one first
    model = evaluation.model
    if not model.supports_hidden:
        raise UsageError(f"model {evaluation.model_name!r} ({model.kind} adapter) cannot give the "
                         "hidden states an indicator reads.")
    settings = dataclasses.replace(spec.decoding, cache="none")
    from .engine import Evaluator

    full = sampler.strategies.Fixed.full_step(settings)
    reference_run = Evaluator(model, task, examples, settings, batch_size=spec.batch_size).run(
        full, keep_tokens=True,
        progress=None if progress is None else lambda d, t: progress("reference", d, t))
    reference = reference_run.tokens
    rows = Rows()
    common = dict(topk=options.topk, theta=options.theta, seed=options.seed,
                  batch_size=spec.batch_size, progress=progress)
    figures: dict[str, Any] = {"full_step accuracy": reference_run.accuracy,
                               "full_step mean_nfe": reference_run.mean_nfe}
    figures.update(collect_rows(model, task, examples, settings, reference, rows,
                                keep=options.keep, **common))
    hidden_size = rows.hidden[0].shape[-1] if rows.hidden else 1
    config = IndicatorConfig(hidden_size=int(hidden_size), topk=options.topk, width=options.width,
                             depth=options.depth, dropout=options.dropout)
    device = model.device
    indicator, fit = fit_indicator(rows, config, options, device=device, progress=progress)
    figures["round 1"] = fit
    if options.rounds > 1:
        figures.update(collect_rows(model, task, examples, settings, reference, rows,
                                    indicator=indicator, **common))
        indicator, fit = fit_indicator(rows, config, options, device=device, progress=progress)
        figures["round 2"] = fit
    provenance = {
        "model": evaluation.model_name, "model_fingerprint": evaluation.model_fingerprint,
        "model_signature": model.weights_signature(),
        "adapter": model.kind, "task": task.name, "split": "train",
        "n_examples": len(examples), "data_hash": hash_examples(examples),
        "decoding": settings.to_dict(), "options": dataclasses.asdict(options),
        "figures": figures, "train_seconds": round(time.perf_counter() - started, 1),
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "sampler_version": sampler.__version__, "torch": torch.__version__,
        "device": str(device),
    }
    return TrainingResult(indicator=indicator.cpu(), provenance=provenance)


def write_indicator(result: TrainingResult, path: str | Path) -> Path:
    """Write a trained indicator's file (see :func:`sampler.indicator.save_indicator`)."""
    return save_indicator(result.indicator, path, result.provenance)
