"""Step statistics: formulas against direct float64 computations."""

from __future__ import annotations

import math

import torch

from sampler import DecodingSettings, StatsTracker, js_divergence


def _direct_js(p, q):
    m = 0.5 * (p + q)

    def kl(a, b):
        return torch.where(a > 0, a * (a.log() - b.log()), 0.0).sum(-1)

    return 0.5 * kl(p, m) + 0.5 * kl(q, m)


def _update(tracker, logits):
    b, g, _ = logits.shape
    return tracker.update(logits, masked=torch.ones(b, g, dtype=torch.bool),
                          in_block=torch.ones(b, g, dtype=torch.bool), rows=torch.arange(b),
                          block_step=torch.zeros(b, dtype=torch.long))


def test_js_matches_the_definition_and_is_bounded():
    gen = torch.Generator().manual_seed(0)
    a, b = torch.randn(4, 5, 50, generator=gen) * 3, torch.randn(4, 5, 50, generator=gen) * 3
    js = js_divergence(a, a.logsumexp(-1), b, b.logsumexp(-1), dtype=torch.float64)
    expected = _direct_js(a.double().softmax(-1), b.double().softmax(-1))
    assert torch.allclose(js.double(), expected, atol=1e-6)
    assert (js >= 0).all() and (js <= math.log(2) + 1e-6).all()
    same = js_divergence(a, a.logsumexp(-1), a, a.logsumexp(-1))
    assert torch.allclose(same, torch.zeros_like(same), atol=1e-6)


def test_topk_js_approximates_the_full_one_on_peaked_distributions():
    gen = torch.Generator().manual_seed(1)
    base = torch.randn(8, 1000, generator=gen)
    base[:, 0] += 12                                     # a confident token, as in decoding
    moved = base + 0.05 * torch.randn(8, 1000, generator=gen)
    full = js_divergence(moved, moved.logsumexp(-1), base, base.logsumexp(-1))
    top = js_divergence(moved, moved.logsumexp(-1), base, base.logsumexp(-1), topk=32)
    assert torch.allclose(top, full, rtol=0.5, atol=1e-5)
    assert (top <= full + 1e-7).all()                   # merging buckets never increases JS


def test_tracker_history_persistence_and_first_step():
    tracker = StatsTracker(DecodingSettings(gen_length=3), mask_id=9)
    gen = torch.Generator().manual_seed(2)
    l1 = torch.randn(1, 3, 10, generator=gen)
    s1 = _update(tracker, l1.clone())
    assert s1.persistence.tolist() == [[1, 1, 1]] and torch.isinf(s1.js).all()
    assert torch.isinf(s1.kl).all()
    l2 = l1.clone()
    l2[0, 2] = torch.randn(10, generator=gen) * 5        # position 2 changes, the others do not
    s2 = _update(tracker, l2.clone())
    top1_changed = bool(s2.top1[0, 2] != s1.top1[0, 2])
    assert s2.persistence[0, :2].tolist() == [2, 2]
    assert s2.persistence[0, 2].item() == (1 if top1_changed else 2)
    assert torch.allclose(s2.js[0, :2], torch.zeros(2), atol=1e-6) and s2.js[0, 2] > 0
    where = torch.tensor([[False, True, True]])
    at = s2.js_at(where)
    assert torch.isnan(at[0, 0]) and torch.allclose(at[0, 1:], s2.js[0, 1:])


def test_js_at_in_chunks_matches_the_full_computation(monkeypatch):
    """js_at computes JS a few positions at a time; the chunks must add up to the full tensor."""
    import sampler.stats as stats

    monkeypatch.setattr(stats, "_JS_CHUNK_ELEMENTS", 30)  # 3 positions of 10 tokens per chunk
    tracker = StatsTracker(DecodingSettings(gen_length=8), mask_id=9)
    gen = torch.Generator().manual_seed(3)
    l1 = torch.randn(2, 8, 10, generator=gen)
    _update(tracker, l1.clone())
    s2 = _update(tracker, (l1 + torch.randn(2, 8, 10, generator=gen)).clone())
    where = torch.rand(2, 8, generator=gen) < 0.7
    at = s2.js_at(where)
    assert torch.isnan(at[~where]).all()
    assert torch.allclose(at[where], s2.js[where], atol=1e-6)


def test_mask_token_is_excluded_from_the_statistics():
    tracker = StatsTracker(DecodingSettings(gen_length=2), mask_id=0)
    logits = torch.zeros(1, 2, 4)
    logits[..., 0] = 50.0
    s = _update(tracker, logits)
    assert (s.top1 != 0).all() and torch.allclose(s.confidence, torch.full((1, 2), 1 / 3))
    assert torch.allclose(s.entropy, torch.full((1, 2), math.log(3)), atol=1e-5)


def test_margin_and_entropy():
    tracker = StatsTracker(DecodingSettings(gen_length=1), mask_id=3)
    probs = torch.tensor([[[0.6, 0.3, 0.1, 1e-9]]])
    s = _update(tracker, probs.log())
    assert torch.allclose(s.margin, torch.tensor([[0.3]]), atol=1e-5)
    h = -(probs[..., :3] * probs[..., :3].log()).sum(-1)
    assert torch.allclose(s.entropy, h, atol=1e-5)


def test_js_lower_bound_never_exceeds_js():
    gen = torch.Generator().manual_seed(4)
    tracker = StatsTracker(DecodingSettings(gen_length=64), mask_id=0)
    base = torch.randn(2, 64, 30, generator=gen) * 3
    _update(tracker, base.clone())
    for scale in (0.01, 0.3, 3.0):
        moved = base + scale * torch.randn(2, 64, 30, generator=gen)
        s = _update(tracker, moved.clone())
        assert (s.js_lower_bound <= s.js + 1e-6).all()
        assert s.js_lower_bound.max() > 0
        base = moved
