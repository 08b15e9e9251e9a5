"""Decoding settings: everything besides the strategy that changes what a threshold means."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, Literal, Mapping

import torch

from ._validate import bounded, from_mapping, validate_fields
from .errors import ConfigError

__all__ = ["DecodingSettings", "CACHE_MODES", "MAX_TOKENS", "MAX_TEMPERATURE"]

MAX_TOKENS = 1 << 20
"""The largest ``gen_length``, ``block_length``, ``max_steps``, ``min_commit`` and ``js_topk``
(1,048,576), and of the strategies' step counts: far beyond any model's context or vocabulary, low
enough that a typo (``2**64``, ``1e40``) is refused instead of allocating."""

MAX_TEMPERATURE = 10.0
"""The largest sampling temperature: at 10 the softmax of any model is already close to uniform
(noise, not text); ``inf`` and ``1e308`` are refused instead of decoding noise."""

CACHE_MODES = ("none", "prefix", "dual")
"""Block KV cache modes, as in Fast-dLLM. ``none``: every step is a full forward pass. At the first
step of each block one full pass refreshes the cache; the block's later steps then run only the
block and everything after it against the cached keys/values of the prefix (``prefix``), or only
the block against the cached keys/values of prefix and suffix (``dual``). An approximation for a
bidirectional model, so it is a setting a profile records and the tuner can search."""

_WHERE = "decoding settings"


@dataclass(frozen=True)
class DecodingSettings:
    """How the loop decodes; a tuned profile records these because thresholds do not transfer.

    ``block_length`` and ``max_steps`` default to ``gen_length`` (one block; a budget that never
    binds when at least one token is committed per step). ``cache`` is one of :data:`CACHE_MODES`
    and needs a model that supports it (the native LLaDA and Dream models). ``max_steps`` is the total budget and is
    split evenly over the blocks: when a sequence reaches its block's share, everything still masked
    in that block is committed at once.

    Upper bounds: the lengths, ``max_steps``, ``min_commit`` and ``js_topk`` at most
    :data:`MAX_TOKENS`; ``temperature`` in [0, :data:`MAX_TEMPERATURE`]. Every float is finite.
    """

    gen_length: int = bounded(128, low=1, high=MAX_TOKENS, doc="generated tokens after the prompt")
    block_length: int | None = bounded(None, low=1, high=MAX_TOKENS,
                                       doc="semi-autoregressive block size")
    max_steps: int | None = bounded(None, low=1, high=MAX_TOKENS, doc="step budget over all blocks")
    temperature: float = bounded(0.0, low=0.0, high=MAX_TEMPERATURE,
                                 doc="0 = argmax; > 0 samples tokens")
    min_commit: int = bounded(1, low=1, high=MAX_TOKENS, doc="at least this many commits per step")
    eos_fill: bool = bounded(False, doc="fill everything after a committed EOS at once")
    js_topk: int | None = bounded(None, low=1, high=MAX_TOKENS,
                                  doc="JS over the top-k tokens + one rest bucket")
    js_dtype: Literal["float32", "float64"] = bounded("float32", choices=("float32", "float64"),
                                                      doc="precision of the JS divergence")
    cache: Literal["none", "prefix", "dual"] = bounded("none", choices=CACHE_MODES,
                                                       doc="block KV cache (Fast-dLLM)")

    def __post_init__(self) -> None:
        validate_fields(self, _WHERE)
        if self.block_length is None:
            object.__setattr__(self, "block_length", self.gen_length)
        if self.gen_length % self.block_length:
            raise ConfigError(f"{_WHERE}: `gen_length` ({self.gen_length}) must be a multiple of "
                              f"`block_length` ({self.block_length}).")
        if self.max_steps is None:
            object.__setattr__(self, "max_steps", self.gen_length)
        if self.max_steps % self.num_blocks:
            raise ConfigError(f"{_WHERE}: `max_steps` ({self.max_steps}) must be a multiple of the "
                              f"number of blocks ({self.num_blocks} = gen_length / block_length).")

    @property
    def num_blocks(self) -> int:
        return self.gen_length // self.block_length

    @property
    def steps_per_block(self) -> int:
        return self.max_steps // self.num_blocks

    @property
    def torch_js_dtype(self) -> torch.dtype:
        return getattr(torch, self.js_dtype)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "DecodingSettings":
        return from_mapping(cls, data, _WHERE)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)
