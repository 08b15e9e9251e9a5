"""The denoising loop: one loop for every strategy.

x = prompt + gen_length masks. At each step the loop runs the model once on the sequences still
active, computes the step statistics once, asks the strategy which masked positions of each
sequence's current block to commit, applies the shared progress rule, writes the tokens, and drops
sequences that have nothing left to decode (they cost no further forward passes). Blocks advance
per sequence: a sequence moves to its next block as soon as its current one is fully committed.

With a block KV cache (``settings.cache`` ``prefix`` / ``dual``) a sequence's first step in each
block is a full pass that refreshes its cache; its later steps in that block compute only the
block's logits (see :class:`_CachedForward`). Rows at different blocks share one batch: the rows
starting a block take the full pass, the others the cached one, and each is counted one NFE.

A strategy with ``needs_hidden`` (NI Sampling's indicator) also gets the model's last hidden
state of the generated span in :attr:`StepStats.hidden`, from the same passes (``span_hidden``,
``full_logits(hidden=True)``, ``cached_logits(hidden=True)``); every other strategy runs the plain
calls, which never collect them.
"""

from __future__ import annotations

import torch
from torch import Tensor

from .errors import ConfigError
from .models import DiffusionModel
from .output import GenerateOutput, Trace
from .settings import DecodingSettings
from .stats import StatsTracker, StepStats
from .step import decide
from .strategies.base import GenerationContext, Strategy

__all__ = ["denoise"]

class _CachedForward:
    """The model calls of one `denoise` under a block cache, and the cache they share."""

    def __init__(self, model: DiffusionModel, settings: DecodingSettings, prompt_length: int,
                 hidden: bool = False) -> None:
        self.model, self.mode = model, settings.cache
        self.blen, self.plen = settings.block_length, prompt_length
        self.hidden = hidden  # also the last hidden states (only for a strategy that reads them)
        self.kv = None

    def step(self, tracker: StatsTracker, x: Tensor, attn: Tensor | None, block: Tensor,
             **common: Tensor) -> StepStats:
        """Run the model for the active rows ``x`` (B, L) at their blocks ``block`` (B,)."""
        starting = common["block_step"] == 0
        full, part = starting.nonzero().flatten(), (~starting).nonzero().flatten()
        full_logits = part_logits = None
        extra: dict[str, Tensor] = {}
        if full.numel():
            sub = None if attn is None else attn[full]
            if self.hidden:
                full_logits, kv, extra["full_hidden"] = self.model.full_logits(
                    x[full], sub, self.plen, hidden=True)
            else:
                full_logits, kv = self.model.full_logits(x[full], sub, self.plen)
            if self.kv is None:
                self.kv = kv
            else:
                self.kv.write_rows(full, kv)
        columns = block[part, None] * self.blen + torch.arange(self.blen, device=x.device)
        if part.numel():
            # every active row runs (the cache is batched); the rows refreshed above are dropped
            start = self.plen + block * self.blen
            if self.hidden:
                logits, hidden = self.model.cached_logits(self.kv, x, attn, start, self.blen,
                                                          self.mode, hidden=True)
                extra["part_hidden"] = hidden[part]
            else:
                logits = self.model.cached_logits(self.kv, x, attn, start, self.blen, self.mode)
            part_logits = logits[part]
        return tracker.observe(full, full_logits, part, columns, part_logits, **common, **extra)

    def keep_rows(self, index: Tensor) -> None:
        if self.kv is not None:
            self.kv.keep_rows(index)


@torch.inference_mode()
def denoise(model: DiffusionModel, input_ids: Tensor, strategy: Strategy, settings: DecodingSettings,
            *, attention_mask: Tensor | None = None, trace: bool = False,
            generator: torch.Generator | None = None, reference: Tensor | None = None) -> GenerateOutput:
    """Decode ``gen_length`` tokens after each (left-padded) prompt of ``input_ids`` (B, P)."""
    hidden = strategy.needs_hidden
    if hidden and not model.supports_hidden:
        raise ConfigError(f"strategy `{strategy.name}` reads the model's hidden states, which model "
                          f"{model.name!r} ({model.kind} adapter) cannot give; use a masked-LM or "
                          "native LLaDA / Dream model.")
    batch, plen = input_ids.shape
    glen, blen = settings.gen_length, settings.block_length
    device = input_ids.device
    x = torch.cat([input_ids, torch.full((batch, glen), model.mask_id, dtype=input_ids.dtype,
                                         device=device)], dim=1)
    attn = None
    if attention_mask is not None and not bool(attention_mask.all()):
        attn = torch.cat([attention_mask, attention_mask.new_ones(batch, glen)], dim=1)
    nfe = torch.zeros(batch, dtype=torch.long, device=device)
    record = Trace.empty(batch, glen, device) if trace else None

    strategy.reset(GenerationContext(batch_size=batch, settings=settings, reference=reference,
                                     generator=generator, device=device, eos_id=model.eos_id))
    tracker = StatsTracker(settings, model.mask_id)
    block_of = torch.arange(glen, device=device) // blen
    active = torch.arange(batch, device=device)
    block = torch.zeros(batch, dtype=torch.long, device=device)
    block_step = torch.zeros(batch, dtype=torch.long, device=device)
    cached = _CachedForward(model, settings, plen, hidden) if settings.cache != "none" else None

    while active.numel():
        xa = x[active]
        gen = xa[:, plen:]
        masked = gen == model.mask_id
        current = masked.int().argmax(-1) // blen  # the block of each row's first mask
        block_step = torch.where(current == block, block_step, 0)
        block = current

        common = dict(masked=masked, in_block=block_of == block[:, None], rows=active,
                      block_step=block_step)
        attn_a = None if attn is None else attn[active]
        if cached is None and hidden:
            logits, states = model.span_hidden(xa, attn_a, plen)
            stats = tracker.update(logits, hidden=states, **common)
        elif cached is None:
            stats = tracker.update(model.span_logits(xa, attn_a, plen), **common)
        else:
            stats = cached.step(tracker, xa, attn_a, block, **common)
        nfe[active] += 1

        decision = decide(strategy, stats, gen, settings, mask_id=model.mask_id,
                          eos_id=model.eos_id, generator=generator)
        gen = decision.generated
        x[active, plen:] = gen
        if record is not None:
            _record(record, stats, decision.cause, nfe)

        block_step = block_step + 1
        keep = (gen == model.mask_id).any(-1).nonzero().flatten()
        if keep.numel() < active.numel():
            active, block, block_step = active[keep], block[keep], block_step[keep]
            tracker.keep_rows(keep)
            if cached is not None:
                cached.keep_rows(keep)

    return GenerateOutput(sequences=x, nfe=nfe, prompt_length=plen, settings=settings,
                          trace=record)


def _record(record: Trace, stats: StepStats, cause: Tensor, nfe: Tensor) -> None:
    """Write the moment of commitment of every position committed at this step into ``record``."""
    done = cause >= 0
    if not done.any():
        return
    r, c = done.nonzero(as_tuple=True)
    rows = stats.rows[r]
    record.step[rows, c] = nfe[rows]
    record.confidence[rows, c] = stats.confidence[r, c]
    record.persistence[rows, c] = stats.persistence[r, c]
    record.js[rows, c] = stats.js_at(done)[r, c]
    record.cause[rows, c] = cause[r, c].to(torch.uint8)
