"""Fake denoisers with controlled logits, and a tiny randomly initialised masked LM."""

from __future__ import annotations

from typing import Callable

import torch
import transformers
from torch import Tensor

from sampler.models import MaskedLMModel

VOCAB = 12
MASK, EOS, PAD = 1, 2, 0


class FakeModel(MaskedLMModel):
    """A denoiser whose logits come from ``fn(x, call) -> (B, L, V)``; counts its calls."""

    def __init__(self, fn: Callable[[Tensor, int], Tensor], *, vocab: int = VOCAB,
                 eos_id: int | None = EOS, max_length: int | None = 512, mask_id: int = MASK) -> None:
        super().__init__(network=torch.nn.Linear(1, 1), tokenizer=None, mask_id=mask_id,
                         eos_id=eos_id, pad_id=PAD, name="fake", max_length=max_length)
        self.fn, self.vocab, self.calls, self.batch_sizes = fn, vocab, 0, []

    def forward(self, x: Tensor, attention_mask: Tensor | None) -> Tensor:
        self.calls += 1
        self.batch_sizes.append(x.shape[0])
        return self.fn(x, self.calls)

    def forward_hidden(self, x: Tensor, attention_mask: Tensor | None) -> tuple[Tensor, Tensor]:
        """A fake's last hidden state is its logits (size VOCAB), for strategies that read one."""
        logits = self.forward(x, attention_mask)
        return logits, logits.clone()


def peaked(tokens: Tensor, confidence: Tensor, vocab: int = VOCAB) -> Tensor:
    """Logits whose softmax puts ``confidence`` on ``tokens`` and spreads the rest evenly.

    tokens (..., ) long, confidence (..., ) float in (1/vocab, 1). Returns (..., vocab)."""
    rest = (1 - confidence) / (vocab - 1)
    probs = rest[..., None].expand(*tokens.shape, vocab).clone()
    probs.scatter_(-1, tokens[..., None], confidence[..., None])
    return probs.clamp_min(1e-12).log()


def positional_model(answer: Tensor, confidence: Tensor, **kw) -> FakeModel:
    """A fake whose prediction at generated position j is answer[j] with confidence[j], always.

    answer, confidence: (G,). Prompt positions get uniform logits."""
    def fn(x: Tensor, call: int) -> Tensor:
        b, length = x.shape
        g = answer.shape[0]
        out = torch.zeros(b, length, VOCAB)
        out[:, length - g:] = peaked(answer, confidence)
        return out

    return FakeModel(fn, **kw)


def random_model(seed: int = 0, **kw) -> FakeModel:
    """A fake with fresh random logits at every call (a seeded, call-dependent stream) that also
    depend on the current tokens, so that committing changes later predictions."""
    def fn(x: Tensor, call: int) -> Tensor:
        g = torch.Generator().manual_seed(seed * 1000 + call)
        base = torch.randn(x.shape[0], x.shape[1], VOCAB, generator=g) * 3
        return base + 0.5 * torch.nn.functional.one_hot(x.roll(1, dims=1) % VOCAB, VOCAB)

    return FakeModel(fn, **kw)


def tiny_bert(seed: int = 0, vocab: int = 40) -> MaskedLMModel:
    """A tiny randomly initialised BertForMaskedLM behind the masked-LM adapter."""
    torch.manual_seed(seed)
    config = transformers.BertConfig(vocab_size=vocab, hidden_size=32, num_hidden_layers=2,
                                     num_attention_heads=2, intermediate_size=64,
                                     max_position_embeddings=64)
    net = transformers.BertForMaskedLM(config).eval()
    return MaskedLMModel(network=net, tokenizer=None, mask_id=3, eos_id=2, pad_id=0,
                         name="tiny-bert", max_length=64)


def tiny_native(family: str = "llada", *, seed: int = 0, vocab: int = 50, std: float = 0.3,
                tie: bool = False):
    """A tiny randomly initialised native LLaDA (4 heads) or Dream (4 query / 2 key-value heads,
    q/k/v biases) network behind its adapter; mask id vocab - 1, EOS vocab - 2."""
    from sampler.models import ADAPTERS
    from sampler.native import BidirectionalTransformer, NativeConfig

    torch.manual_seed(seed)
    config = NativeConfig(family=family, vocab_size=vocab, hidden_size=32, num_layers=2,
                          num_heads=4, num_kv_heads=4 if family == "llada" else 2,
                          intermediate_size=48, rope_theta=10000.0, rms_norm_eps=1e-5,
                          qkv_bias=family == "dream", tie_embeddings=tie, max_positions=128)
    net = BidirectionalTransformer(config).eval()
    for param in net.parameters():
        torch.nn.init.normal_(param, std=std)
    return ADAPTERS[family](network=net, tokenizer=None, mask_id=vocab - 1, eos_id=vocab - 2,
                            pad_id=0, name=f"tiny-{family}", max_length=128)


def fake_indicator_params(folder, *, hidden_size: int = VOCAB, seed: int = 0,
                          bias: float = 0.0, provenance: dict | None = None) -> dict:
    """`ni` params for a seeded random indicator written into ``folder``, reading hidden states
    of ``hidden_size`` (a fake's: its logits); ``bias`` shifts every score's logit;
    ``provenance`` is what the file records (default: a model name only)."""
    from pathlib import Path

    from sampler.artifacts import file_sha256
    from sampler.indicator import Indicator, IndicatorConfig, save_indicator

    torch.manual_seed(seed)
    indicator = Indicator(IndicatorConfig(hidden_size=hidden_size, topk=4, width=16, depth=1))
    with torch.no_grad():
        indicator.head[1].bias.add_(bias)
    path = save_indicator(indicator, Path(folder) / f"indicator-{hidden_size}-{seed}-{bias}.st",
                          provenance or {"model": "fake"})
    return {"indicator": str(path), "indicator_sha256": file_sha256(path), "theta": 0.5,
            "prob_threshold": 0.95}
