"""The block KV cache (``cache = "prefix" | "dual"``): Fast-dLLM's semantics on tiny native models."""

from __future__ import annotations

import pytest
import torch

import sampler
from sampler import ConfigError, DecodingSettings, StatsTracker, make_strategy

from .fakes import random_model, tiny_bert, tiny_native

FAMILIES = ["llada", "dream"]
MODES = ["prefix", "dual"]
MASK = 49


def _batch(seed: int = 1):
    """Three prompts of 7 tokens, the first left-padded by 3."""
    g = torch.Generator().manual_seed(seed)
    x = torch.randint(1, 40, (3, 7), generator=g)
    mask = torch.ones_like(x)
    mask[0, :3], x[0, :3] = 0, 0
    return x, mask


@pytest.mark.parametrize("family", FAMILIES)
@pytest.mark.parametrize("mode", MODES)
def test_a_cached_pass_right_after_the_refresh_gives_the_full_pass_logits(family, mode):
    model = tiny_native(family)
    x, mask = _batch()
    seq = torch.cat([x, torch.full((3, 8), MASK)], dim=1)
    attn = torch.cat([mask, torch.ones(3, 8, dtype=torch.long)], dim=1)
    full, kv = model.full_logits(seq, attn, 7)
    blocks = torch.tensor([0, 1, 0])
    cached = model.cached_logits(kv, seq, attn, 7 + 4 * blocks, 4, mode)
    expected = torch.stack([full[i, 4 * b:4 * b + 4] for i, b in enumerate(blocks.tolist())])
    torch.testing.assert_close(cached, expected, atol=1e-5, rtol=0)


@pytest.mark.parametrize("family", FAMILIES)
def test_the_full_pass_of_the_cache_gives_the_plain_logits(family):
    model = tiny_native(family)
    x, mask = _batch()
    seq = torch.cat([x, torch.full((3, 8), MASK)], dim=1)
    attn = torch.cat([mask, torch.ones(3, 8, dtype=torch.long)], dim=1)
    torch.testing.assert_close(model.full_logits(seq, attn, 7)[0], model.span_logits(seq, attn, 7),
                               atol=1e-6, rtol=0)


@pytest.mark.parametrize("family", FAMILIES)
def test_an_uncached_pass_applies_the_output_head_to_the_span_only(family):
    """cache = none: the logits (and hidden states) of positions ``start`` onwards are those of
    the whole forward pass, but the head never sees the prompt (for LLaDA-8B, B x prompt x 126k
    logits made and dropped at every step)."""
    from sampler.models import DiffusionModel

    model = tiny_native(family)
    x, mask = _batch()
    seq = torch.cat([x, torch.full((3, 8), MASK)], dim=1)
    attn = torch.cat([mask, torch.ones(3, 8, dtype=torch.long)], dim=1)
    rows = []
    hook = model.network.lm_head.register_forward_hook(lambda m, args, out: rows.append(
        args[0].shape[1]))
    try:
        logits = model.span_logits(seq, attn, 7)
        logits_h, hidden = model.span_hidden(seq, attn, 7)
    finally:
        hook.remove()
    assert rows == [8, 8]
    whole = DiffusionModel.span_logits(model, seq, attn, 7)  # the head over every position
    whole_h = DiffusionModel.span_hidden(model, seq, attn, 7)
    torch.testing.assert_close(logits, whole, atol=1e-6, rtol=0)
    torch.testing.assert_close(logits_h, whole_h[0], atol=1e-6, rtol=0)
    torch.testing.assert_close(hidden, whole_h[1], atol=1e-6, rtol=0)


STRATEGIES = [("threshold", {"threshold": 0.3}), ("less", {"tau_conf": 0.3, "window": 2}),
              ("klass", {"tau": 0.3, "kappa": 0.05, "history": 1}), ("factor", {"factor": 2.0}),
              ("entropy_bound", {"gamma": 1.0}), ("fixed", {"steps": 6})]


@pytest.mark.parametrize("family", FAMILIES)
@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("name,params", STRATEGIES)
def test_a_padded_batch_decodes_each_row_as_it_would_alone(family, mode, name, params):
    """Rows that are at different blocks, finish early and are left-padded share one cache."""
    model = tiny_native(family, std=0.5)
    x, mask = _batch()
    kw = dict(strategy=name, params=params, gen_length=12, block_length=4, cache=mode,
              eos_fill=True)
    out = sampler.generate(model, x, attention_mask=mask, **kw)
    for i in range(3):
        alone = sampler.generate(model, x[i:i + 1, mask[i].bool()], **kw)
        assert torch.equal(out.generated[i], alone.generated[0]), f"row {i}"
        assert out.nfe[i] == alone.nfe[0]
    assert not (out.generated == MASK).any()


@pytest.mark.parametrize("mode", MODES)
def test_the_cache_changes_what_later_steps_see_but_not_the_first_step_of_a_block(mode):
    """A block's first step is a full pass in every mode, so one-token-per-step decoding of a
    one-token block is identical with and without the cache; longer blocks may differ."""
    model = tiny_native("llada", std=0.5)
    x, mask = _batch()
    kw = dict(strategy="fixed", params={"steps": 8}, gen_length=8, block_length=1)
    plain = sampler.generate(model, x, attention_mask=mask, **kw)
    cached = sampler.generate(model, x, attention_mask=mask, cache=mode, **kw)
    assert torch.equal(plain.generated, cached.generated)


def test_rows_at_their_blocks_first_step_are_observed_whole_and_the_others_only_in_their_block():
    model = tiny_native("llada", std=0.5)
    x, mask = _batch()
    seen = []

    class Spy(sampler.Strategy):
        name, Params = "spy", make_strategy("threshold").Params

        def select(self, stats):
            seen.append((stats.block_step.clone(), stats.observed.clone(), stats.in_block.clone(),
                         stats.has_prev, stats.persistence.clone()))
            return stats.candidates & (stats.confidence >= 0.3)

        @classmethod
        def search_space(cls, settings):
            return {}

    sampler.generate(model, x, attention_mask=mask, strategy=Spy(), gen_length=12,
                     block_length=4, cache="dual")
    assert seen[0][3] is None and seen[0][1].all()  # first step: everything, no history yet
    for block_step, observed, in_block, has_prev, persistence in seen[1:]:
        for r in range(block_step.shape[0]):
            if block_step[r] == 0:
                assert observed[r].all()
            else:
                assert torch.equal(observed[r], in_block[r])
    # a position's persistence only grows when it is observed
    for (_, _, _, _, before), (_, observed, _, _, after) in zip(seen, seen[1:]):
        if before.shape == after.shape:
            assert torch.equal(after[~observed], before[~observed])


def test_the_tracker_keeps_unobserved_positions_and_compares_observations():
    settings = DecodingSettings(gen_length=4, block_length=2, cache="dual")
    tracker = StatsTracker(settings, mask_id=9)
    common = dict(masked=torch.ones(1, 4, dtype=torch.bool), rows=torch.tensor([0]),
                  block_step=torch.tensor([0]), in_block=torch.tensor([[True, True, False, False]]))
    first = torch.randn(1, 4, 10)
    none = torch.empty(0, dtype=torch.long)
    s0 = tracker.observe(torch.tensor([0]), first, none, torch.empty(0, 2, dtype=torch.long), None,
                         **common)
    assert torch.isinf(s0.js).all()
    block = torch.randn(1, 2, 10)
    s1 = tracker.observe(none, None, torch.tensor([0]), torch.tensor([[0, 1]]), block,
                         **{**common, "block_step": torch.tensor([1])})
    assert torch.equal(s1.observed, torch.tensor([[True, True, False, False]]))
    torch.testing.assert_close(s1.logits[0, 2:], first[0, 2:])  # kept from its last observation
    assert torch.isfinite(s1.js[0, :2]).all() and torch.isinf(s1.js[0, 2:]).all()
    assert torch.isinf(s1.js_at(torch.ones(1, 4, dtype=torch.bool))[0, 2:]).all()
    assert torch.isinf(s1.kl[0, 2:]).all()


def test_a_model_without_a_cache_refuses_it_in_one_line():
    for model in (tiny_bert(), random_model()):
        with pytest.raises(ConfigError, match="needs a model with a block KV cache.*cache='none'"):
            sampler.generate(model, torch.tensor([[5, 6]]), strategy="threshold", gen_length=4,
                             cache="dual")


def test_an_unknown_cache_mode_is_refused():
    with pytest.raises(ConfigError, match="`cache` = 'full' is not one of 'none', 'prefix', 'dual'"):
        DecodingSettings(cache="full")


def test_the_cache_mode_travels_in_a_profile(tmp_path):
    profile = sampler.Profile(strategy="threshold", decoding=DecodingSettings(gen_length=8,
                                                                              cache="prefix"))
    sampler.save_profile(profile, tmp_path / "p.json")
    assert sampler.load_profile(tmp_path / "p.json").decoding.cache == "prefix"


def test_the_trace_is_recorded_under_the_cache():
    model = tiny_native("dream", std=0.5)
    out = sampler.generate(model, torch.tensor([[3, 4, 5]]), strategy="threshold",
                           params={"threshold": 0.3}, gen_length=8, block_length=4, cache="dual",
                           trace=True)
    assert (out.trace.step >= 1).all() and (out.trace.step <= out.nfe[0]).all()
