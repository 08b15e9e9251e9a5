"""Exact reuse of forward passes across the trials of a study.

With greedy decoding a model's logits depend only on the current token state of a sequence, so a
row seen before (same tokens, same padding) needs no new forward pass: every trial's first step is
the same, and nearby thresholds share long prefixes of their trajectories. The cache is keyed by
the row's exact bytes (no hash collisions can alias two states), bounded in bytes, and evicts the
least recently used rows.
"""

from __future__ import annotations

from collections import OrderedDict

import torch
from torch import Tensor

from sampler import DiffusionModel

__all__ = ["LogitsCache", "CachedModel", "DEFAULT_BYTES", "POLICIES"]


DEFAULT_BYTES = 1 << 30
"""The cache's default bound: 1 GiB (``tuner optimize --reuse-gib``)."""

POLICIES = ("shallow", "lru")
"""Which row a full cache evicts. ``shallow`` (the default): the row with the fewest masked
positions (the deepest state of a trajectory), the least recently used among those; ``lru``: the
least recently used row. Trials of a study share the states near the start of their trajectories
(every trial's first step is the same, nearby thresholds agree for a while), so a cache too small
for a whole study keeps part of its value by keeping the shallow states, where LRU, each trial's
rows pushing out the previous trial's, keeps none: see BENCHMARKS.md."""


class LogitsCache:
    """Row state -> logits of the last ``tail`` positions, bounded by ``max_bytes``; a full cache
    evicts by ``policy`` (:data:`POLICIES`). ``masked`` in :meth:`put` is a row's masked
    positions (more = shallower)."""

    def __init__(self, max_bytes: int = DEFAULT_BYTES, policy: str = "shallow") -> None:
        if max_bytes <= 0:
            raise ValueError(f"max_bytes must be > 0, got {max_bytes}.")
        if policy not in POLICIES:
            raise ValueError(f"policy must be one of {', '.join(POLICIES)}, got {policy!r}.")
        self.max_bytes, self.policy = max_bytes, policy
        self._rows: dict[bytes, tuple[Tensor, int]] = {}
        # eviction order: masked positions -> keys, least recently used first (one bucket for lru)
        self._order: dict[int, OrderedDict[bytes, None]] = {}
        self.bytes = 0
        self.hits = 0
        self.misses = 0
        self.evictions = 0

    def __len__(self) -> int:
        return len(self._rows)

    def get(self, key: bytes) -> Tensor | None:
        value = self.peek(key)
        if value is None:
            self.misses += 1
        else:
            self.hits += 1
        return value

    def peek(self, key: bytes) -> Tensor | None:
        """:meth:`get` without counting a hit or a miss (a second value of a row already
        counted)."""
        entry = self._rows.get(key)
        if entry is None:
            return None
        self._order[entry[1]].move_to_end(key)
        return entry[0]

    def put(self, key: bytes, value: Tensor, masked: int = 0) -> None:
        """Keep ``value`` under ``key``; ``masked``: the row's masked positions (its shallowness,
        for the ``shallow`` policy)."""
        size = _size(key, value)
        if size > self.max_bytes or key in self._rows:
            return
        bucket = masked if self.policy == "shallow" else 0
        self._rows[key] = (value, bucket)
        self._order.setdefault(bucket, OrderedDict())[key] = None
        self.bytes += size
        while self.bytes > self.max_bytes:
            self._evict()

    def _evict(self) -> None:
        bucket = min(b for b, keys in self._order.items() if keys)
        old_key, _ = self._order[bucket].popitem(last=False)
        old, _ = self._rows.pop(old_key)
        self.bytes -= _size(old_key, old)
        self.evictions += 1

    def counters(self) -> tuple[int, int]:
        """(hits, misses) so far."""
        return self.hits, self.misses

    def summary(self) -> str:
        """One line for the end of a study: how much the cache answered, and whether it was full."""
        looked = self.hits + self.misses
        if not looked:
            return "forward-pass reuse: nothing looked up"
        line = (f"forward-pass reuse: {self.hits / looked:.1%} of {looked:,} model rows answered "
                f"from the cache ({len(self):,} rows, {self.bytes / 2**30:.2f} of "
                f"{self.max_bytes / 2**30:.2f} GiB")
        if not self.evictions:
            return line + ")"
        return (line + f"; {self.evictions:,} evicted: a larger --reuse-gib may reuse more, "
                       "memory on the model's device)")


def _size(key: bytes, value: Tensor) -> int:
    return value.numel() * value.element_size() + len(key)


def _delegated(name: str) -> property:
    return property(lambda self: getattr(self.inner, name), doc=f"The wrapped model's `{name}`.")


def _keys(x: Tensor, attention_mask: Tensor | None) -> list[bytes]:
    rows = x.cpu()
    if attention_mask is not None:
        rows = torch.cat([rows, attention_mask.to(rows.dtype).cpu()], dim=1)
    data = rows.contiguous().numpy()
    return [data[i].tobytes() for i in range(data.shape[0])]


class CachedModel(DiffusionModel):
    """A model adapter whose :meth:`span_logits` answers from a :class:`LogitsCache` where it can.

    It wraps the model rather than copying it: every attribute (network, tokenizer, ids, name,
    kind, logit shift, cache support, ...) is the wrapped model's. Built with :meth:`wrap`;
    ``rows_computed`` counts the rows the wrapped model really ran.
    """

    def __init__(self, inner: DiffusionModel, cache: LogitsCache) -> None:  # no dataclass fields
        self.inner, self.cache, self.rows_computed = inner, cache, 0

    @classmethod
    def wrap(cls, model: DiffusionModel, cache: LogitsCache) -> "CachedModel":
        return cls(model, cache)

    def __getattr__(self, name: str):  # the wrapped model's instance attributes
        if name == "inner":
            raise AttributeError(name)
        return getattr(self.inner, name)

    def __repr__(self) -> str:
        return f"CachedModel({self.inner.name!r}, {self.inner.kind})"

    def forward(self, x: Tensor, attention_mask: Tensor | None) -> Tensor:
        self.rows_computed += x.shape[0]
        return self.inner(x, attention_mask)

    # Under a block KV cache a step's logits depend on the token state at the block's refresh as
    # well as on the current one, so these pass through without reuse (every row is computed).
    def full_logits(self, x: Tensor, attention_mask: Tensor | None, start: int):
        self.rows_computed += x.shape[0]
        return self.inner.full_logits(x, attention_mask, start)

    def cached_logits(self, cache, x: Tensor, attention_mask: Tensor | None, block_start: Tensor,
                      block_length: int, mode: str) -> Tensor:
        self.rows_computed += x.shape[0]
        return self.inner.cached_logits(cache, x, attention_mask, block_start, block_length, mode)

    def _masked(self, x: Tensor) -> list[int]:
        """Each row's masked positions: how shallow its state is (the cache's eviction order)."""
        return (x == self.inner.mask_id).sum(-1).tolist()

    def span_logits(self, x: Tensor, attention_mask: Tensor | None, start: int) -> Tensor:
        keys = _keys(x, attention_mask)
        found = [self.cache.get(k) for k in keys]
        missing = [i for i, v in enumerate(found) if v is None]
        if missing:
            index = torch.tensor(missing, device=x.device)
            fresh = self.inner.span_logits(
                x[index], None if attention_mask is None else attention_mask[index], start)
            self.rows_computed += len(missing)
            masked = self._masked(x)
            for j, i in enumerate(missing):
                found[i] = fresh[j].clone()
                self.cache.put(keys[i], found[i], masked[i])
        # a fresh tensor: the loop may write into it without touching the cache
        return torch.stack(found).to(x.device)

    def span_hidden(self, x: Tensor, attention_mask: Tensor | None, start: int
                    ) -> tuple[Tensor, Tensor]:
        """:meth:`span_logits` with the last hidden states (for ``ni``), reused the same way: a
        row's logits under its usual key, its hidden states under a key of their own."""
        keys = _keys(x, attention_mask)
        found = [(self.cache.get(k), self.cache.peek(k + b"|hidden")) for k in keys]
        missing = [i for i, (lg, hd) in enumerate(found) if lg is None or hd is None]
        if missing:
            index = torch.tensor(missing, device=x.device)
            logits, hidden = self.inner.span_hidden(
                x[index], None if attention_mask is None else attention_mask[index], start)
            self.rows_computed += len(missing)
            masked = self._masked(x)
            for j, i in enumerate(missing):
                found[i] = (logits[j].clone(), hidden[j].clone())
                self.cache.put(keys[i], found[i][0], masked[i])
                self.cache.put(keys[i] + b"|hidden", found[i][1], masked[i])
        return (torch.stack([lg for lg, _ in found]).to(x.device),
                torch.stack([hd for _, hd in found]).to(x.device))


# Attributes DiffusionModel defines at class level (field defaults, ClassVars such as `kind`) would
# shadow __getattr__: they are the wrapped model's too.
for _name, _value in vars(DiffusionModel).items():
    if not _name.startswith("_") and (isinstance(_value, property) or not callable(_value)):
        setattr(CachedModel, _name, _delegated(_name))
