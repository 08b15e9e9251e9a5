"""The native attention's grouped-query path (Dream: fewer key / value heads than query heads)."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from .fakes import tiny_native


def test_masked_grouped_query_attention_repeats_the_kv_heads_and_computes_the_same(monkeypatch):
    """With a key mask (every padded batch), SDPA's ``enable_gqa`` path has only the math backend
    on CUDA, so the layer repeats the key / value heads instead; without a mask it keeps
    ``enable_gqa``. Each masked call is checked against ``enable_gqa`` on the kv heads it came
    from, and the cache still holds the kv heads."""
    model = tiny_native("dream")             # 4 query heads, 2 key / value heads
    original, calls = F.scaled_dot_product_attention, []

    def spy(q, k, v, attn_mask=None, enable_gqa=False, **kwargs):
        out = original(q, k, v, attn_mask=attn_mask, enable_gqa=enable_gqa, **kwargs)
        calls.append((attn_mask is not None, enable_gqa, k.shape[1]))
        if attn_mask is not None:
            groups = q.shape[1] // 2
            grouped = original(q, k[:, ::groups], v[:, ::groups], attn_mask=attn_mask,
                               enable_gqa=True, **kwargs)
            torch.testing.assert_close(out, grouped, atol=1e-6, rtol=0)
        return out

    monkeypatch.setattr(F, "scaled_dot_product_attention", spy)
    x = torch.randint(1, 40, (2, 9))
    mask = torch.ones_like(x)
    mask[0, :3] = 0
    _, cache = model.full_logits(x, mask, 5)
    model.network(x, torch.arange(9).expand(2, -1))           # no key mask
    assert calls == [(True, False, 4)] * 2 + [(False, True, 2)] * 2
    assert cache.keys[0].shape[1] == 2 and cache.values[0].shape[1] == 2
