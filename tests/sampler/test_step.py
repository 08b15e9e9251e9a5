"""The public step decision: what the loop writes at a step, replayed outside the loop."""

from __future__ import annotations

import torch

from sampler import CAUSES, DecodingSettings, StatsTracker, decide, make_strategy
from sampler.strategies.base import GenerationContext

MASK, EOS = 9, 8


def _stats(logits: torch.Tensor, masked: torch.Tensor, settings: DecodingSettings, block_step=0):
    tracker = StatsTracker(settings, MASK)
    gen = logits.shape[1]
    block_of = torch.arange(gen) // settings.block_length
    return tracker.update(logits, masked=masked, in_block=(block_of == 0)[None].expand_as(masked),
                          rows=torch.arange(logits.shape[0]),
                          block_step=torch.full((logits.shape[0],), block_step))


def _peaked(tokens: list[int], probs: list[float], vocab: int = 10) -> torch.Tensor:
    """(1, G, V) logits whose argmax at position j is tokens[j] with probability ~probs[j]."""
    rows = []
    for tok, p in zip(tokens, probs):
        row = torch.full((vocab,), (1 - p) / (vocab - 1)).log()
        row[tok] = torch.tensor(p).log()
        rows.append(row)
    return torch.stack(rows)[None]


def test_rule_min_commit_and_eos_fill_causes():
    settings = DecodingSettings(gen_length=4, eos_fill=True)
    strategy = make_strategy("threshold", {"threshold": 0.9})
    strategy.reset(GenerationContext(batch_size=1, settings=settings))
    logits = _peaked([3, EOS, 4, 5], [0.95, 0.5, 0.4, 0.3])
    masked = torch.ones(1, 4, dtype=torch.bool)
    generated = torch.full((1, 4), MASK)
    d = decide(strategy, _stats(logits, masked, settings), generated, settings, mask_id=MASK,
               eos_id=EOS)
    # position 0 passes the threshold; min_commit 1 is already met; nothing else is committed
    assert d.generated.tolist() == [[3, MASK, MASK, MASK]]
    assert d.cause.tolist() == [[CAUSES.index("rule"), -1, -1, -1]]
    # with a threshold no position reaches, the most confident one is forced, then EOS fills
    strict = make_strategy("threshold", {"threshold": 0.99})
    strict.reset(GenerationContext(batch_size=1, settings=settings))
    logits = _peaked([3, EOS, 4, 5], [0.5, 0.9, 0.4, 0.3])
    d = decide(strict, _stats(logits, masked, settings), generated, settings, mask_id=MASK,
               eos_id=EOS)
    assert d.generated.tolist() == [[MASK, EOS, EOS, EOS]]
    assert d.cause.tolist() == [[-1, CAUSES.index("min_commit"), CAUSES.index("eos_fill"),
                                 CAUSES.index("eos_fill")]]
    assert d.written.tolist() == [[False, True, True, True]]
    assert d.commit.tolist() == [[False, True, False, False]]


def test_budget_commits_everything_on_the_last_step_and_inputs_are_untouched():
    settings = DecodingSettings(gen_length=4, max_steps=2)
    strategy = make_strategy("threshold", {"threshold": 0.99})
    strategy.reset(GenerationContext(batch_size=1, settings=settings))
    logits = _peaked([1, 2, 3, 4], [0.6, 0.5, 0.4, 0.3])
    masked = torch.tensor([[False, True, True, True]])
    generated = torch.tensor([[7, MASK, MASK, MASK]])
    before = generated.clone()
    d = decide(strategy, _stats(logits, masked, settings, block_step=1), generated, settings,
               mask_id=MASK)
    assert torch.equal(generated, before)
    assert d.generated.tolist() == [[7, 2, 3, 4]]
    # the block's last allowed step: everything left is the budget's (min_commit has no say)
    assert d.cause.tolist() == [[-1] + [CAUSES.index("budget")] * 3]
