"""A bidirectional Llama-style transformer with a block KV cache: LLaDA and Dream without remote code.

Every block is ``x + o(attn(rmsnorm(x)))`` then ``x + down(silu(gate(h)) * up(h))`` with
``h = rmsnorm(x)``; attention is rotary (rotate-half form, angles and rotation in float32), never
causal, and grouped when the model has fewer key/value heads than query heads. Module names follow
Qwen2 (which Dream's checkpoints use as they are); LLaDA's names are mapped on loading.

Two ways to call it (shapes: B rows, T input positions, L cached positions, V vocabulary):

* plain: ``model(input_ids (B, T), positions (B, T), key_mask (B, T) | None)``; with
  ``collect=True`` the keys and values of every layer come back as a :class:`BlockKVCache`;
* cached: ``model(input_ids (B, Q), positions (B, Q), cache=cache, query_index=(B, Q))`` runs only
  the Q query positions: their keys and values are written into the cache at columns
  ``query_index`` and they attend over all L cached positions (``cache.key_mask``). This is
  Fast-dLLM's block cache: the positions outside the queries keep the keys/values of the last full
  pass, an approximation for a bidirectional model.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .config import NativeConfig

__all__ = ["BidirectionalTransformer", "BlockKVCache"]


@dataclass(eq=False)
class BlockKVCache:
    """Post-rotary keys and values of every layer for B rows of L positions.

    Attributes:
        keys, values: per layer, (B, H_kv, L, D) in the model's dtype.
        key_mask: (B, L) bool, False on left padding; None when no row is padded.
    """

    keys: list[Tensor]
    values: list[Tensor]
    key_mask: Tensor | None

    @property
    def rows(self) -> int:
        return self.keys[0].shape[0]

    def keep_rows(self, index: Tensor) -> None:
        """Keep only rows ``index`` (B',) of the cache, in that order."""
        self.keys = [k[index] for k in self.keys]
        self.values = [v[index] for v in self.values]
        if self.key_mask is not None:
            self.key_mask = self.key_mask[index]

    def write_rows(self, index: Tensor, fresh: "BlockKVCache") -> None:
        """Overwrite rows ``index`` with the rows of ``fresh`` (same layers, same length)."""
        for mine, theirs in zip(self.keys + self.values, fresh.keys + fresh.values):
            mine.index_copy_(0, index, theirs)
        if fresh.key_mask is not None or self.key_mask is not None:
            if self.key_mask is None:
                self.key_mask = torch.ones(self.keys[0].shape[0], self.keys[0].shape[2],
                                           dtype=torch.bool, device=self.keys[0].device)
            new = (fresh.key_mask if fresh.key_mask is not None
                   else torch.ones_like(self.key_mask[: index.numel()]))
            self.key_mask.index_copy_(0, index, new)


class RMSNorm(nn.Module):
    def __init__(self, size: int, eps: float) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.ones(size))
        self.eps = eps

    def forward(self, x: Tensor) -> Tensor:
        h = x.float()
        h = h * torch.rsqrt(h.pow(2).mean(-1, keepdim=True) + self.eps)
        return self.weight * h.to(x.dtype)


def _rotate_half(x: Tensor) -> Tensor:
    x1, x2 = x.chunk(2, dim=-1)
    return torch.cat((-x2, x1), dim=-1)


class Attention(nn.Module):
    def __init__(self, config: NativeConfig) -> None:
        super().__init__()
        d, hd = config.hidden_size, config.head_dim
        self.heads, self.kv_heads, self.head_dim = config.num_heads, config.num_kv_heads, hd
        self.q_proj = nn.Linear(d, config.num_heads * hd, bias=config.qkv_bias)
        self.k_proj = nn.Linear(d, config.num_kv_heads * hd, bias=config.qkv_bias)
        self.v_proj = nn.Linear(d, config.num_kv_heads * hd, bias=config.qkv_bias)
        self.o_proj = nn.Linear(config.num_heads * hd, d, bias=False)

    def forward(self, h: Tensor, cos: Tensor, sin: Tensor, key_mask: Tensor | None,
                cached: tuple[Tensor, Tensor] | None, query_index: Tensor | None
                ) -> tuple[Tensor, Tensor, Tensor]:
        b, t, _ = h.shape
        q = self.q_proj(h).view(b, t, self.heads, self.head_dim).transpose(1, 2)
        k = self.k_proj(h).view(b, t, self.kv_heads, self.head_dim).transpose(1, 2)
        v = self.v_proj(h).view(b, t, self.kv_heads, self.head_dim).transpose(1, 2)
        q = (q.float() * cos + _rotate_half(q.float()) * sin).to(h.dtype)
        k = (k.float() * cos + _rotate_half(k.float()) * sin).to(h.dtype)
        if cached is not None:
            where = query_index[:, None, :, None].expand(b, self.kv_heads, t, self.head_dim)
            k = cached[0].scatter_(2, where, k)
            v = cached[1].scatter_(2, where, v)
        mask = None if key_mask is None else key_mask[:, None, None, :]
        keys, values, gqa = k, v, self.heads != self.kv_heads
        if gqa and mask is not None:
            # SDPA's grouped-query path with a mask has only the math backend on CUDA (flash
            # takes no mask, memory-efficient and cuDNN no GQA): repeat the key / value heads and
            # keep the fused kernels, as transformers does. The cache keeps the kv heads.
            groups = self.heads // self.kv_heads
            keys, values, gqa = k.repeat_interleave(groups, 1), v.repeat_interleave(groups, 1), False
        out = F.scaled_dot_product_attention(q, keys, values, attn_mask=mask, enable_gqa=gqa)
        return self.o_proj(out.transpose(1, 2).reshape(b, t, -1)), k, v


class MLP(nn.Module):
    def __init__(self, config: NativeConfig) -> None:
        super().__init__()
        d, m = config.hidden_size, config.intermediate_size
        self.gate_proj = nn.Linear(d, m, bias=False)
        self.up_proj = nn.Linear(d, m, bias=False)
        self.down_proj = nn.Linear(m, d, bias=False)

    def forward(self, h: Tensor) -> Tensor:
        return self.down_proj(F.silu(self.gate_proj(h)) * self.up_proj(h))


class Block(nn.Module):
    def __init__(self, config: NativeConfig) -> None:
        super().__init__()
        self.input_layernorm = RMSNorm(config.hidden_size, config.rms_norm_eps)
        self.self_attn = Attention(config)
        self.post_attention_layernorm = RMSNorm(config.hidden_size, config.rms_norm_eps)
        self.mlp = MLP(config)

    def forward(self, x: Tensor, cos: Tensor, sin: Tensor, key_mask: Tensor | None,
                cached: tuple[Tensor, Tensor] | None, query_index: Tensor | None
                ) -> tuple[Tensor, Tensor, Tensor]:
        att, k, v = self.self_attn(self.input_layernorm(x), cos, sin, key_mask, cached, query_index)
        x = x + att
        return x + self.mlp(self.post_attention_layernorm(x)), k, v


class BidirectionalTransformer(nn.Module):
    """The network of a native LLaDA or Dream model (see the module docstring for the calls)."""

    def __init__(self, config: NativeConfig) -> None:
        super().__init__()
        self.config = config
        self.embed_tokens = nn.Embedding(config.vocab_size, config.hidden_size)
        self.layers = nn.ModuleList(Block(config) for _ in range(config.num_layers))
        self.norm = RMSNorm(config.hidden_size, config.rms_norm_eps)
        self.lm_head = nn.Linear(config.hidden_size, config.vocab_size, bias=False)
        if config.tie_embeddings:
            self.lm_head.weight = self.embed_tokens.weight

    def _rotary(self, positions: Tensor) -> tuple[Tensor, Tensor]:
        """(B, 1, T, D) float32 cos and sin for ``positions`` (B, T)."""
        dim = self.config.head_dim
        exponent = torch.arange(0, dim, 2, device=positions.device, dtype=torch.float32) / dim
        inv_freq = 1.0 / (self.config.rope_theta ** exponent)
        angles = positions.float()[..., None] * inv_freq
        angles = torch.cat((angles, angles), dim=-1)[:, None]
        return angles.cos(), angles.sin()

    def forward(self, input_ids: Tensor, positions: Tensor, key_mask: Tensor | None = None, *,
                cache: BlockKVCache | None = None, query_index: Tensor | None = None,
                collect: bool = False, logits_index: Tensor | None = None,
                output_hidden: bool = False) -> tuple[Tensor, ...]:
        """Logits (B, S, V) of the positions ``logits_index`` (B, S) of the input (all of them
        when None), and the collected cache when ``collect`` (else None); with ``output_hidden``
        a third item, the last hidden state (B, S, D) of the same positions (after the final
        norm: the input of the output head, as ``hidden_states[-1]`` in transformers)."""
        x = self.embed_tokens(input_ids)
        cos, sin = self._rotary(positions)
        if cache is not None:
            key_mask = cache.key_mask
        keys, values = [], []
        for i, layer in enumerate(self.layers):
            cached = None if cache is None else (cache.keys[i], cache.values[i])
            x, k, v = layer(x, cos, sin, key_mask, cached, query_index)
            if collect:
                keys.append(k)
                values.append(v)
        if logits_index is not None:
            x = x.gather(1, logits_index[..., None].expand(-1, -1, x.shape[-1]))
        hidden = self.norm(x)
        cache_out = BlockKVCache(keys, values, key_mask) if collect else None
        if output_hidden:
            return self.lm_head(hidden), cache_out, hidden
        return self.lm_head(hidden), cache_out
