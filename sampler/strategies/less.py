"""LESS: commit a masked position once it is mutually stable (confident, persistent, settled)."""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor

from .._validate import bounded
from ..settings import MAX_TOKENS, DecodingSettings
from ..space import ChoiceDim, FloatDim, IntDim, SearchSpace
from ..stats import COARSE_TOPK, StepStats
from .base import GenerationContext, Strategy, StrategyParams

__all__ = ["Less", "LessParams", "FRONTIER_LOOKAHEAD", "FRONTIER_PATIENCE", "EOS_CONF",
           "EOS_CONF_ANNEAL", "EOS_CONF_FLOOR", "EOS_JS_MULT"]

# The authors' Dream sampler (``commit="frontier"``), its constants as their code sets them.
FRONTIER_LOOKAHEAD = 16
"""How far past the frontier (positions) a passing position may be committed instead of it."""
FRONTIER_PATIENCE = 2
"""Consecutive steps a row may commit past its frontier before the frontier itself is forced."""
EOS_CONF, EOS_CONF_ANNEAL, EOS_CONF_FLOOR = 0.9, 0.1, 0.55
"""An end-of-text top-1 also needs confidence >= max(EOS_CONF_FLOOR, EOS_CONF - EOS_CONF_ANNEAL x
progress) (their "asymmetric EOS tightening", paper Sec. 4.3)..."""
EOS_JS_MULT = 0.5
"""... and a drift <= EOS_JS_MULT x js_delta."""


@dataclass(frozen=True)
class LessParams(StrategyParams):
    tau_conf: float = bounded(0.75, low=0.0, high=1.0, doc="minimum top-1 probability")
    window: int = bounded(3, low=1, high=MAX_TOKENS,
                          doc="consecutive observations (this step included) with the same top-1 "
                              "token (1 = no check; the authors' persistence_len + 1); at most "
                              "MAX_TOKENS, the largest step budget")
    js_delta: float = bounded(0.04, low=0.0,
                              doc="maximum JS divergence (nats) to the previous step")
    drift: str = bounded("coarse", choices=("coarse", "exact"),
                         doc="the JS divergence: `coarse` between the two steps' own top-8 lists "
                             "(the authors'), `exact` over the whole vocabulary")
    history: str = bounded("block", choices=("block", "carry"),
                           doc="`block`: persistence and the previous distribution count from the "
                               "current block's first step (the authors'); `carry`: from the "
                               "first step of the generation")
    commit: str = bounded("all", choices=("all", "frontier"),
                          doc="`all`: every position of the block that passes (the authors' "
                              "LLaDA sampler); `frontier`: their Dream sampler's order: the run "
                              "of passing positions from the leftmost masked one, a look-ahead "
                              "past it, the leftmost itself as fallback, and a stricter test "
                              "for an end-of-text top-1")
    # ---- extensions (off at their defaults: the published rule) ----
    tau_instant: float | None = bounded(
        None, low=0.0, high=1.0,
        doc="extension: commit at first sight when the top-1 probability >= this (no persistence "
            "or JS check); None = off")
    relax: float = bounded(
        0.0, low=0.0, high=1.0,
        doc="extension: the confidence threshold is tau_conf * (1 - relax * p), p the fraction of "
            "the block already committed; 0 = off")


class Less(Strategy):
    """Commit every masked position of the block whose top-1 probability >= ``tau_conf``, whose
    top-1 token stayed the same for the last ``window`` steps, and whose predicted distribution moved
    by a Jensen-Shannon divergence <= ``js_delta`` since the previous step (LESS, mutually stable
    adaptive sampling, arXiv 2606.16908). The JS divergence is computed only where the two cheap
    conditions hold.

    The defaults are the authors' rule and settings, read from their public code
    (github.com/amr-mohamedd/LESS-Is-More, ``llada_sampling/llada_less.py`` and ``less_core.py``;
    no code is taken from it): ``tau_conf`` 0.75, ``js_delta`` 0.04, their ``persistence_len`` 2,
    which is ``window`` 3 here (their buffer holds the P previous top-1 tokens and all must equal
    the current one: P + 1 observations, the current included); the drift is their coarse top-8
    JS (:func:`~sampler.stats.coarse_js_divergence`, ``drift="coarse"``); and the history restarts
    at every block (``history="block"``): at a block's first step no position has a previous
    observation, so the JS test fails everywhere and only the fallback (``min_commit``, their
    one most confident position when steps = gen_length) commits, and persistence counts only the
    block's own steps. Their LLaDA sampler is what this follows; their Dream sampler adds rules of
    its own (a left-to-right frontier, EOS tightening and an early stop) that this does not have.
    ``drift="exact"`` (the full-vocabulary JS, with a cheap Pinsker lower bound skipping it where
    it cannot pass) and ``history="carry"`` (persistence and the previous distribution carried
    across blocks) are this project's first reading of the paper, kept as switchable variants.

    ``commit="frontier"`` is the authors' **Dream** sampler (``dream_sampling/less.py``, read for
    its rule, nothing taken from it), which commits in a different order from the same test. Per
    row and step, with the *frontier* the leftmost masked position of the block: if the frontier
    passes, the run of consecutive masked positions from it that all pass is committed (up to the
    first masked position that fails; positions that pass beyond that are left); otherwise, if the
    row has committed past its frontier fewer than ``FRONTIER_PATIENCE`` (2) steps in a row, the
    most confident passing position among the ``FRONTIER_LOOKAHEAD`` (16) after the frontier is
    committed instead (the leftmost on a tie); otherwise the frontier itself is, whatever its
    confidence. A position whose top-1 is the end-of-text token passes only if its confidence is
    also >= max(0.55, 0.9 - 0.1 x progress) and its drift <= 0.5 x ``js_delta`` (progress =
    (block step + 1) / steps per block: their (step + 1) / steps on Dream's single block). Every
    step commits at least one position per row, so the progress rule's fallback never fires.
    Where this differs from their code: their statistics come from the model's own logit dtype
    (bfloat16 on Dream; float32 here); their EOS early stop fills what is left with one more,
    uncounted, forward pass (here: ``eos_fill`` writes EOS after the first committed one, no pass,
    and every pass is counted); with ``temperature`` > 0 they write the frontier fallback's argmax
    (here: sampled like every commit); they run Dream as one block (``block_length`` =
    ``gen_length``), with blocks the frontier is the current block's.

    Extensions, beyond the published rule (each off at its default, and then the decoding is
    bit-identical to published LESS: the code path is skipped, not computed with a neutral value);
    the tuner switches them on only in an extended study (``less+ext``, see :meth:`extensions`):

    - ``tau_instant`` (default ``None``, off): an instant-commit ceiling. A candidate whose top-1
      probability >= ``tau_instant`` is committed at once, whatever its persistence and JS (LESS
      needs two observations of a position, so it can never commit at the first step of a block
      what a confidence threshold commits at once). Off is ``None`` rather than 1.0 because a
      float32 softmax saturates: a top-1 probability of exactly 1.0 occurs (a logit gap above
      about 17 nats), so a ceiling of 1.0 would still fire; only "no ceiling" never does.
    - ``relax`` (default 0, off): a progress-dependent confidence threshold. At each step the
      threshold is ``tau_conf * (1 - relax * p)``, where ``p`` = the fraction of the current
      block's positions already committed before this step (1 - masked / block length, per
      sequence, from ``StepStats.masked`` and ``in_block``). The threshold relaxes linearly as the
      block fills, down to ``tau_conf * (1 - relax)`` just before the block's last position; a
      full relax of 1 lets the last positions pass on persistence and JS alone. The threshold is
      computed in the confidence's precision (float32), a monotone rounding.

    Both are monotone: a lower ``tau_instant`` (``None`` being +inf) or a larger ``relax`` never
    commits fewer positions on the same statistics.
    """

    name = "less"
    Params = LessParams
    _eos_id: int | None = None  # the model's EOS id (reset), for commit="frontier"'s EOS test
    _wait: Tensor | None = None  # (batch,) steps each row committed past its frontier in a row

    def reset(self, context: GenerationContext) -> None:
        self._eos_id = context.eos_id
        self._wait = torch.zeros(context.batch_size, dtype=torch.long, device=context.device)

    def select(self, stats: StepStats) -> Tensor:
        p = self.params
        threshold = p.tau_conf if not p.relax else self._relaxed(stats)
        persistence = stats.persistence
        if p.history == "block":  # only this block's observations count (block_step: before this)
            persistence = torch.minimum(persistence, stats.block_step[:, None] + 1)
        ready = stats.candidates & (stats.confidence >= threshold) & (persistence >= p.window)
        if p.history == "block":  # the block's first step has no previous observation in it
            ready &= (stats.block_step > 0)[:, None]
        if p.drift == "coarse":
            drift = stats.coarse_js_at(ready, COARSE_TOPK)
        else:
            # Skip the exact JS where the bound rules it out (a margin keeps rounding from deciding).
            ready &= stats.js_lower_bound <= p.js_delta * (1 + 1e-3) + 1e-7
            drift = stats.js_at(ready)
        ready &= drift <= p.js_delta
        if p.commit == "frontier" and self._eos_id is not None:
            ready &= self._eos_test(stats, drift)
        if p.tau_instant is not None:
            ready |= stats.candidates & (stats.confidence >= p.tau_instant)
        return self._frontier(stats, ready) if p.commit == "frontier" else ready

    def _eos_test(self, stats: StepStats, drift: Tensor) -> Tensor:
        """(B, G) False where the top-1 is end-of-text and the stricter EOS test fails."""
        progress = (stats.block_step + 1).double() / stats.settings.steps_per_block
        floor = torch.clamp(EOS_CONF - EOS_CONF_ANNEAL * progress, min=EOS_CONF_FLOOR)
        strict = ((stats.confidence >= floor.to(stats.confidence.dtype)[:, None])
                  & (drift <= EOS_JS_MULT * self.params.js_delta))
        return (stats.top1 != self._eos_id) | strict

    def _frontier(self, stats: StepStats, ready: Tensor) -> Tensor:
        """The Dream sampler's commits from the passing positions ``ready`` (see the class)."""
        cand = stats.candidates
        b, g = cand.shape
        pos = torch.arange(g, device=cand.device).expand(b, g)
        beyond = torch.full_like(pos, g)
        front = torch.where(cand, pos, beyond).min(-1).values  # g: no masked position
        has = front < g
        front_ready = ready.gather(1, front.clamp_max(g - 1)[:, None])[:, 0] & has
        after = pos >= front[:, None]
        first_fail = torch.where(cand & ~ready & after, pos, beyond).min(-1).values
        run = cand & after & (pos < first_fail[:, None]) & front_ready[:, None]
        if self._wait is None or self._wait.numel() <= int(stats.rows.max()):
            self._wait = torch.zeros(int(stats.rows.max()) + 1, dtype=torch.long,
                                     device=cand.device)  # select() without reset()
        wait = self._wait[stats.rows]
        ahead = (ready & cand & (pos > front[:, None])
                 & (pos <= front[:, None] + FRONTIER_LOOKAHEAD))
        look = has & ~front_ready & (wait < FRONTIER_PATIENCE) & ahead.any(-1)
        best = torch.where(ahead, stats.confidence, -math.inf).argmax(-1)  # first max: leftmost
        pick = (pos == best[:, None]) & look[:, None]
        forced = (pos == front[:, None]) & (has & ~front_ready & ~look)[:, None]
        self._wait[stats.rows] = torch.where(has, torch.where(look, wait + 1, 0), wait)
        return run | pick | forced

    def _relaxed(self, stats: StepStats) -> Tensor:
        """(B, 1) the confidence threshold tau_conf * (1 - relax * p) of each row's block."""
        block = stats.in_block.sum(-1)
        left = (stats.masked & stats.in_block).sum(-1)
        progress = 1 - left.double() / block.clamp_min(1).double()
        threshold = self.params.tau_conf * (1 - self.params.relax * progress)
        return threshold.to(stats.confidence.dtype)[:, None]

    @classmethod
    def search_space(cls, settings: DecodingSettings) -> SearchSpace:
        return {
            "tau_conf": FloatDim(0.5, 0.99, "log1m"),
            "window": IntDim(1, min(6, max(1, settings.block_length // 2))),
            "js_delta": FloatDim(1e-4, 0.2, "log"),
        }

    @classmethod
    def extensions(cls, settings: DecodingSettings) -> SearchSpace:
        """The instant-commit ceiling (near 1, on a log scale of 1 - value), the threshold's
        relaxation over the block (from a slight 5% to a full one), and the two variants of the
        published rule (switched on: the exact JS, the history carried across blocks)."""
        return {
            "tau_instant": FloatDim(0.9, 0.9999, "log1m"),
            "relax": FloatDim(0.05, 1.0),
            "drift": ChoiceDim(("exact",)),
            "history": ChoiceDim(("carry",)),
        }

    @classmethod
    def warm_starts(cls, settings: DecodingSettings) -> list[dict[str, float]]:
        return [
            *super().warm_starts(settings),
            {"tau_conf": 0.9, "window": 1, "js_delta": math.log(2)},  # Fast-dLLM-like: confidence only
            {"tau_conf": 0.6, "window": 2, "js_delta": 0.015 / 4},     # KLASS-like (JS ~ KL / 4)
        ]
