"""What every strategy shares: the base class, the parameter base class, and selection helpers.

A strategy only *selects* which masked positions of the current block to commit at this step, from
the :class:`~sampler.stats.StepStats` the loop computed. It never calls the model and never changes
its inputs. The loop then applies the shared progress rule (at least ``min_commit`` per step, and
everything left when the block's step budget runs out).
"""

from __future__ import annotations

import dataclasses
from abc import ABC, abstractmethod
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from typing import Any, ClassVar, Mapping

import torch
from torch import Tensor

from .._validate import from_mapping, validate_fields
from ..errors import ConfigError
from ..settings import DecodingSettings
from ..space import SearchSpace
from ..stats import StepStats

__all__ = ["Strategy", "StrategyParams", "Selection", "GenerationContext", "top_k_mask",
           "leading_count_mask"]


@dataclass(frozen=True)
class StrategyParams:
    """Base of every strategy's parameters: validated on creation, unknown keys rejected."""

    def __post_init__(self) -> None:
        validate_fields(self, f"{self._owner()} params")

    @classmethod
    def _owner(cls) -> str:
        return cls.__qualname__.removesuffix("Params").lower() or "strategy"

    @classmethod
    def from_dict(cls, data: Mapping[str, Any] | None) -> "StrategyParams":
        return from_mapping(cls, {} if data is None else data, f"{cls._owner()} params")

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


@dataclass(frozen=True)
class GenerationContext:
    """What a strategy learns once per `generate` call.

    Attributes:
        batch_size: number of sequences in the call.
        settings: the decoding settings.
        reference: (batch_size, gen_length) long reference tokens, or None (only the oracle uses it).
        generator: the random generator of the call (for random scores), or None.
        device: where the model's logits live.
        eos_id: the model's end-of-text id, or None (rules with an EOS-specific test read it).
    """

    batch_size: int
    settings: DecodingSettings
    device: torch.device = torch.device("cpu")
    reference: Tensor | None = None
    generator: torch.Generator | None = None
    eos_id: int | None = None


@dataclass(frozen=True)
class Selection:
    """A strategy's answer. ``commit``: (B, G) bool. ``tokens``: (B, G) long tokens to write at the
    committed positions instead of the loop's own choice, or None. ``priority``: (B, G) float, the
    order in which the shared progress rule forces extra commits (``min_commit``), highest first;
    None ranks by top-1 probability. A strategy that ranks positions by a score of its own (e.g.
    Dream's entropy) passes it, so a forced commit follows the strategy's order. ``stop``: (B, G)
    bool, masked positions an early-termination rule (EDIT) writes at once, in the current block or
    beyond it; they are recorded with the cause ``early_stop``; None: none."""

    commit: Tensor
    tokens: Tensor | None = None
    priority: Tensor | None = None
    stop: Tensor | None = None


class Strategy(ABC):
    """Base class. Subclasses set ``name`` and ``Params`` and implement :meth:`select`."""

    name: ClassVar[str]
    Params: ClassVar[type[StrategyParams]]
    tunable: ClassVar[bool] = True
    """Whether the tuner searches this strategy (the oracle needs a reference decode: it is not)."""
    needs_reference: ClassVar[bool] = False
    """Whether `generate` must be given ``reference`` tokens (the oracle: a full-step decode)."""
    needs_hidden: ClassVar[bool] = False
    """Whether the loop must give :attr:`StepStats.hidden` (the model's last hidden state of the
    generated span, e.g. for NI Sampling's indicator); the others never pay for it."""
    reads_activations: ClassVar[bool] = False
    """Whether the strategy reads the model's internals at every step (EDIT, through
    :meth:`attach`): the tuner then runs every forward pass instead of reusing cached logits."""

    def __init__(self, params: StrategyParams | Mapping[str, Any] | None = None) -> None:
        if params is None or isinstance(params, Mapping):
            params = self.Params.from_dict(params)
        elif not isinstance(params, self.Params):
            raise ConfigError(f"strategy `{self.name}` takes {self.Params.__name__}, "
                              f"got {type(params).__name__}.")
        self.params = params

    def reset(self, context: GenerationContext) -> None:
        """Start of a `generate` call: check settings and clear any history."""

    def attach(self, model: Any) -> AbstractContextManager:
        """Called by `generate` with the model it decodes with; the whole decode (the loop, and
        :meth:`reset` in it) runs inside the returned context manager (e.g. forward hooks that
        read activations, removed when the decode ends). Nothing for most strategies."""
        return nullcontext()

    @abstractmethod
    def select(self, stats: StepStats) -> Selection | Tensor:
        """Return the positions to commit, a (B, G) bool tensor or a :class:`Selection`."""

    @classmethod
    @abstractmethod
    def search_space(cls, settings: DecodingSettings) -> SearchSpace:
        """The ranges the tuner searches for this strategy under ``settings``."""

    @classmethod
    def search_space_given(cls, settings: DecodingSettings,
                           fixed: Mapping[str, Any]) -> SearchSpace:
        """The ranges to search once a study fixed ``fixed`` params (e.g. EDIT's inner strategy
        decides which inner params there are to search). Most strategies' space does not depend
        on them: :meth:`search_space`."""
        return cls.search_space(settings)

    @classmethod
    def extensions(cls, settings: DecodingSettings) -> SearchSpace:
        """Optional params beyond the published rule, each off at its default (so the strategy
        with default params is exactly the published one). The tuner searches them only in an
        extended study (arm ``<name>+ext``), switching each on or off per trial and searching its
        range here when on. Empty for most strategies."""
        return {}

    @classmethod
    def warm_starts(cls, settings: DecodingSettings) -> list[dict[str, Any]]:
        """Params the tuner tries first under ``settings``, before its own search: the defaults,
        then any published settings (a subclass adds them). The tuner clips each into its search
        ranges and drops duplicates."""
        return [cls.Params().to_dict()]

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.params})"


def top_k_mask(scores: Tensor, allowed: Tensor, k: Tensor) -> Tensor:
    """(B, G) bool: the ``k[b]`` highest-scoring allowed positions of each row b.

    ``scores`` (B, G) float, ``allowed`` (B, G) bool, ``k`` (B,) long (clipped to what is allowed).
    Ties are broken towards lower positions.
    """
    ranked = scores.masked_fill(~allowed, -torch.inf)
    order = ranked.argsort(dim=-1, descending=True, stable=True)
    rank = torch.empty_like(order).scatter_(-1, order, torch.arange(order.shape[-1], device=order.device)
                                            .expand_as(order))
    return allowed & (rank < k[:, None])


def leading_count_mask(values: Tensor, allowed: Tensor, ok: "callable", *, descending: bool) -> Tensor:
    """(B, G) bool: the longest leading run of sorted allowed ``values`` for which ``ok`` holds.

    Sorts each row's allowed values (descending or ascending), calls ``ok(sorted_values, n)`` with
    n = 1, 2, ... as a (B, G) tensor, and commits the first positions up to the last n where ``ok``
    is true. ``ok`` must be monotone (true, then false) along the sorted order.
    """
    fill = -torch.inf if descending else torch.inf
    ordered, order = values.masked_fill(~allowed, fill).sort(dim=-1, descending=descending, stable=True)
    n = torch.arange(1, values.shape[-1] + 1, device=values.device).expand_as(ordered)
    count = (ok(ordered, n) & allowed.gather(-1, order)).sum(-1)
    rank = torch.empty_like(order).scatter_(-1, order, n - 1)
    return allowed & (rank < count[:, None])
