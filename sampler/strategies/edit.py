"""EDIT: stop denoising once the reasoning map's alignment distribution stops moving."""

from __future__ import annotations

import dataclasses
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from typing import Any, Iterator, Literal, Mapping

import torch
from torch import Tensor

from .._validate import bounded
from ..artifacts import TrainedOn
from ..edit_map import ActivationProbe, ReasoningMap, alignment_distribution, matched_kl
from ..errors import ConfigError
from ..settings import DecodingSettings
from ..space import FloatDim, IntDim, SearchSpace
from ..stats import StepStats
from .base import GenerationContext, Selection, Strategy, StrategyParams

__all__ = ["Edit", "EditParams", "INNER_PREFIX"]

INNER_PREFIX = "base_params."
"""Flat names of the inner strategy's params (``base_params.threshold``): how a search space,
a trial's params and a warm start name them (:meth:`EditParams.from_dict` folds them back)."""

_NOT_INNER = ("edit",)
DEFAULT_BASE = "threshold"


def _inner_class(name: str) -> type[Strategy]:
    from . import STRATEGIES  # the registry imports this module

    if name in _NOT_INNER or name not in STRATEGIES:
        known = ", ".join(sorted(n for n in STRATEGIES if n not in _NOT_INNER))
        raise ConfigError(f"edit params: `base` = {name!r} is not a strategy edit can wrap; "
                          f"known: {known}.")
    return STRATEGIES[name]


@dataclass(frozen=True)
class EditParams(StrategyParams):
    """EDIT's params: the inner strategy (``base`` with ``base_params``), the stop rule
    (``kl_threshold``, ``patience``, ``temperature``, ``scope``) and the map (``map`` path and its
    ``map_sha256``). ``map`` has no default: EDIT decodes only with a trained map (so the tuner
    leaves it out of ``auto`` studies unless listed with its map). Flat ``base_params.<name>`` keys
    are accepted (a tuner trial's params)."""

    map: str = field(metadata={"doc": "path of the reasoning map file (tuner finetune-edit)"})
    base: str = bounded(DEFAULT_BASE, doc="the inner strategy that selects positions at each step")
    base_params: dict = field(default_factory=dict)
    kl_threshold: float = bounded(0.05, low=0.0,
                                  doc="stop when KL(previous || current) alignment < this; 0 never "
                                      "stops (the inner strategy alone)")
    patience: int = bounded(1, low=1, high=64,
                            doc="consecutive steps below the threshold needed to stop (the "
                                "authors' configs: 6)")
    temperature: float = bounded(0.1, low=0.0, low_open=True, high=100.0,
                                 doc="softmax temperature of the alignment distribution")
    scope: Literal["block", "generation"] = bounded(
        "block", choices=("block", "generation"),
        doc="what a stop ends: the current block (the authors' code) or the whole generation")
    map_sha256: str | None = bounded(None, doc="the map file's SHA-256 (None: any content)")

    def __post_init__(self) -> None:
        super().__post_init__()
        inner = _inner_class(self.base)
        # validates the inner params now (unknown keys, ranges), in edit's words
        object.__setattr__(self, "base_params", inner.Params.from_dict(self.base_params).to_dict())

    @classmethod
    def from_dict(cls, data: Mapping[str, Any] | None) -> "EditParams":
        data = dict(data or {})
        flat = {k[len(INNER_PREFIX):]: data.pop(k) for k in list(data)
                if isinstance(k, str) and k.startswith(INNER_PREFIX)}
        if flat:
            nested = data.get("base_params") or {}
            if not isinstance(nested, Mapping):
                raise ConfigError("edit params: `base_params` must be a mapping of the inner "
                                  f"strategy's params, got {type(nested).__name__}.")
            data["base_params"] = {**nested, **flat}
        return super().from_dict(data)


class Edit(Strategy):
    """EDIT (arXiv 2512.00670): run the inner strategy, and once the KL divergence between
    consecutive steps of the reasoning map's alignment distribution over the visible tokens stays
    below ``kl_threshold``, commit every masked position of the block (or of the generation) to
    its current top-1 at once.

    At each step: the inner strategy selects; the map's alignment logits of this step's forward
    pass (read by :class:`~sampler.edit_map.ActivationProbe` hooks, see :mod:`sampler.edit_map`)
    become a distribution per token; ``KL(previous step || this step)`` is averaged over the
    current block's tokens visible in both steps' inputs and over the map's modules; after
    ``patience`` consecutive steps below ``kl_threshold`` the step also writes every remaining
    masked position of the block (``scope="block"``, the authors' code: they then go on with the
    next block) or of the whole generation (``scope="generation"``), with the cause
    ``early_stop``. The authors run ``polish_steps`` (2) more steps on what remains of the block
    instead; here the remaining positions take this step's top-1 (the issue's rule), which spends
    no further pass. Needs the model's forward passes at every step: no block KV cache, and no
    forward-pass reuse in the tuner (``reads_activations``). The map belongs to the fine-tuned
    model it was made with (``tuner finetune-edit``'s ``model/``); decoding with other weights
    (its recorded weights signature) warns once per model
    (:class:`~sampler.artifacts.ModelMismatchWarning`).
    """

    name = "edit"
    Params = EditParams
    reads_activations = True

    def __init__(self, params: EditParams | Mapping[str, Any] | None = None) -> None:
        super().__init__(params)
        self.inner = _inner_class(self.params.base)(self.params.base_params)
        self.needs_reference = self.inner.needs_reference
        self.needs_hidden = self.inner.needs_hidden  # e.g. EDIT around NI Sampling
        self._map: ReasoningMap | None = None
        self.reasoning_map()  # a missing or changed file is refused here, before any decoding
        self._probe: ActivationProbe | None = None
        self.last_kl: Tensor | None = None
        """(B,) the KL of the last step's rows (NaN where no token matched): for inspection."""

    # -- the map and the hooks ------------------------------------------------------------------
    def reasoning_map(self) -> ReasoningMap:
        """The map named by the params, checked against ``map_sha256`` and read once."""
        if self._map is None:
            self._map = ReasoningMap.load(self.params.map, self.params.map_sha256)
            self._trained_on = TrainedOn("the EDIT reasoning map", self.params.map,
                                         self._map.meta)
        return self._map

    @contextmanager
    def attach(self, model: Any) -> Iterator[None]:
        reasoning_map = self.reasoning_map()
        self._trained_on.check(model)  # not the fine-tuned model: a warning, once per model
        probe = ActivationProbe(model.network, reasoning_map,
                                what=f"model {getattr(model, 'name', '?')!r}")
        with ExitStack() as stack:
            stack.enter_context(self.inner.attach(model))
            stack.enter_context(probe.attached())
            self._probe = probe
            try:
                yield
            finally:
                self._probe = None

    # -- the decode -----------------------------------------------------------------------------
    def reset(self, context: GenerationContext) -> None:
        settings = context.settings
        if settings.cache != "none":
            raise ConfigError(f"edit reads every step's activations of the whole generated span; "
                              f"it runs without a block KV cache (cache 'none'), not "
                              f"{settings.cache!r}.")
        self.reasoning_map()
        self.inner.reset(context)
        b, g = context.batch_size, settings.gen_length
        self._blen = settings.block_length
        self._prev: Tensor | None = None  # (M, batch, G, r) alignment distributions
        self._prev_visible = torch.zeros(b, g, dtype=torch.bool, device=context.device)
        self._prev_block = torch.full((b,), -1, dtype=torch.long, device=context.device)
        self._calm = torch.zeros(b, dtype=torch.long, device=context.device)
        self._calls = None if self._probe is None else self._probe.calls

    def observe(self, rows: Tensor, block: Tensor, visible: Tensor, dist: Tensor) -> Tensor:
        """Feed one step's alignment distributions; returns (B,) bool, the rows that stop now.

        ``rows`` (B,) index into the batch; ``block`` (B,) each row's current block; ``visible``
        (B, G) its tokens visible in this step's input (unmasked, in the current block); ``dist``
        (M, B, G, r) the alignment distributions of the M map modules. Exposed so that a test can
        drive the rule with hand-made distributions."""
        if self._prev is None:
            self._prev = torch.full((dist.shape[0], self._prev_visible.shape[0], *dist.shape[2:]),
                                    1.0 / dist.shape[-1], device=dist.device)
        same_block = self._prev_block[rows] == block
        matched = self._prev_visible[rows] & visible & same_block[:, None]
        kl = matched_kl(self._prev[:, rows], dist, matched)
        calm = kl < self.params.kl_threshold  # NaN (nothing matched) is never calm
        count = torch.where(calm, torch.where(same_block, self._calm[rows], 0) + 1, 0)
        self._prev[:, rows] = dist
        self._prev_visible[rows] = visible
        self._prev_block[rows] = block
        self._calm[rows] = count
        self.last_kl = kl
        return count >= self.params.patience

    def select(self, stats: StepStats) -> Selection:
        chosen = self.inner.select(stats)
        sel = chosen if isinstance(chosen, Selection) else Selection(chosen)
        dist = self._step_distributions(stats)
        block = stats.in_block.int().argmax(-1) // self._blen
        visible = ~stats.masked & stats.in_block
        stop = self.observe(stats.rows, block, visible, dist)
        span = stats.candidates if self.params.scope == "block" else stats.masked
        return dataclasses.replace(sel, stop=span & stop[:, None])

    def _step_distributions(self, stats: StepStats) -> Tensor:
        """(M, B, G, r) this step's alignment distributions of the generated span."""
        probe = self._probe
        if probe is None or probe.calls == self._calls:
            raise ConfigError("edit read no activations at this step: decode through "
                              "sampler.generate (which attaches its hooks) and without "
                              "forward-pass reuse (tuner: a strategy with reads_activations).")
        self._calls = probe.calls
        b, g = stats.masked.shape
        if any(x.shape[0] != b or x.shape[1] < g for x in probe.logits):
            raise ConfigError("edit's activations do not match the step's rows (forward passes "
                              "answered from a cache?); decode without forward-pass reuse.")
        logits = torch.stack([x[:, -g:] for x in probe.logits])
        return alignment_distribution(logits, self.params.temperature)

    # -- the tuner ------------------------------------------------------------------------------
    @classmethod
    def search_space(cls, settings: DecodingSettings) -> SearchSpace:
        return cls.search_space_given(settings, {})

    @classmethod
    def search_space_given(cls, settings: DecodingSettings,
                           fixed: Mapping[str, Any]) -> SearchSpace:
        """The space once a study fixed some params (``fixed``, e.g. ``base`` and ``map``):
        ``kl_threshold`` and the dimensions of the inner strategy ``fixed["base"]`` (default
        threshold), named ``base_params.<name>``. ``search_space`` is this with nothing fixed."""
        inner = _inner_class(fixed.get("base", DEFAULT_BASE)).search_space(settings)
        return {"kl_threshold": FloatDim(1e-6, 1.0, "log"), "patience": IntDim(1, 8),
                **{INNER_PREFIX + name: dim for name, dim in inner.items()}}

    @classmethod
    def warm_starts(cls, settings: DecodingSettings) -> list[dict[str, Any]]:
        """The inner strategy's warm starts at the default threshold, then the authors' stop
        (threshold 0.05 held for 6 steps) on the inner defaults; inner params named flat."""
        starts = [{"kl_threshold": 0.05, **{INNER_PREFIX + k: v for k, v in start.items()}}
                  for start in _inner_class(DEFAULT_BASE).warm_starts(settings)]
        return starts + [{"kl_threshold": 0.05, "patience": 6}]
