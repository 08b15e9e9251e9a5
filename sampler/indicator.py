"""The neural indicator of NI Sampling: a small network that scores each masked position of the
current block by how sure it is that committing its top-1 token now keeps the full-step output.

Inference side only (the sampler uses it without the tuner): the network, the features it reads
from one step's :class:`~sampler.stats.StepStats`, and its file (load / save / score). Training is
``tuner train-indicator`` (:mod:`tuner.indicator_training`).

What follows NI Sampling (Liu, Ning, Wang, Lin, ICLR 2026; the authors' ``ni_sampling/indicator.py``):
the indicator reads the model's **last hidden state** at each masked position plus the **top-k
probabilities** of its prediction, projects each input to a common width, concatenates them, and
runs a stack of pre-norm residual MLP blocks (LayerNorm -> Linear(x4) -> GELU -> dropout -> Linear,
with a linear shortcut where the width changes), then LayerNorm -> Linear to a score. The authors
use two classes and a softmax; one logit and a sigmoid is the same model with half the head.

What differs, and why:

* The authors also feed the model's input embedding of the sampled token and of the 2nd-4th
  tokens. A strategy never sees the model's weights (only the step statistics), and the last
  hidden state already fixes the logits of every token, so the indicator reads, in their place,
  step statistics the loop computes anyway: the top-k probabilities, the entropy, the persistence
  of the top-1 token, where the position lies in its block and relative to the block's first mask,
  whether its neighbours are committed, and how far the block's step budget is spent
  (:data:`FEATURES`).
* Sizes are the file's (:class:`IndicatorConfig`): the authors' LLaDA indicator is 5 blocks of
  width 768 over top-100 probabilities; a few-million-parameter model needs far less.

File format: one safetensors file (tensors only, safe to load: no pickle) whose metadata holds
the format tag, the :class:`IndicatorConfig` as JSON, and the provenance as JSON (the model name
and weight fingerprint, the task, the content hash of the training examples, the decoding
settings, the seed, the training figures). Strategies reference it by path and SHA-256
(:func:`sampler.artifacts.check_artifact`).
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

import torch
from torch import Tensor, nn

from .atomic import atomic_path
from .errors import ConfigError
from .stats import StepStats

__all__ = ["IndicatorConfig", "Indicator", "IndicatorFile", "FEATURES", "FORMAT", "step_features",
           "save_indicator", "load_indicator"]

FORMAT = "less-tuner/ni-indicator/1"
"""The format tag of an indicator file; another tag is refused (written by another version)."""

FEATURES = ("topk_probs", "entropy", "persistence", "offset_in_block", "from_first_mask",
            "masked_in_block", "left_committed", "right_committed", "budget_spent")
"""The step statistics an indicator reads besides the hidden state, in order (``topk_probs`` is
``topk`` numbers, every other one is one number)."""

_PERSISTENCE_CAP = 8


@dataclass(frozen=True)
class IndicatorConfig:
    """The shape of an indicator network.

    Attributes:
        hidden_size: the model's hidden size (D of the last hidden state).
        topk: how many of the top probabilities it reads (the authors: 100 for LLaDA).
        width: the width of its blocks (the authors: 768).
        depth: the number of residual MLP blocks (the authors: 5).
        expansion: the MLP's inner width over ``width`` (the authors: 4).
        dropout: dropout inside the blocks while training (the authors: 0.2).
        features: :data:`FEATURES` when it was written (checked on loading).
    """

    hidden_size: int
    topk: int = 8
    width: int = 64
    depth: int = 2
    expansion: int = 4
    dropout: float = 0.1
    features: tuple[str, ...] = FEATURES

    def __post_init__(self) -> None:
        for name in ("hidden_size", "topk", "width", "depth", "expansion"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ConfigError(f"indicator config: `{name}` must be a positive integer, got "
                                  f"{value!r}.")
        if not isinstance(self.dropout, (int, float)) or not 0 <= self.dropout < 1:
            raise ConfigError(f"indicator config: `dropout` must be in [0, 1), got {self.dropout!r}.")
        object.__setattr__(self, "features", tuple(self.features))

    @property
    def n_features(self) -> int:
        return self.topk + len(FEATURES) - 1

    def to_dict(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        data["features"] = list(self.features)
        return data


class _Block(nn.Module):
    """x -> shortcut(x) + MLP(LayerNorm(x)): the authors' classifier block."""

    def __init__(self, d_in: int, d_out: int, expansion: int, dropout: float) -> None:
        super().__init__()
        self.norm = nn.LayerNorm(d_in)
        self.mlp = nn.Sequential(nn.Linear(d_in, d_in * expansion), nn.GELU(), nn.Dropout(dropout),
                                 nn.Linear(d_in * expansion, d_out), nn.Dropout(dropout))
        self.shortcut = nn.Linear(d_in, d_out) if d_in != d_out else nn.Identity()

    def forward(self, x: Tensor) -> Tensor:
        return self.shortcut(x) + self.mlp(self.norm(x))


class Indicator(nn.Module):
    """The indicator network: (hidden (N, D), features (N, F)) -> logits (N,) of "commit now"."""

    def __init__(self, config: IndicatorConfig) -> None:
        super().__init__()
        self.config = config
        w = config.width
        self.hidden_proj = nn.Linear(config.hidden_size, w)
        self.stats_proj = nn.Linear(config.n_features, w)
        self.blocks = nn.ModuleList(
            _Block(2 * w if i == 0 else w, w, config.expansion, config.dropout)
            for i in range(config.depth))
        self.head = nn.Sequential(nn.LayerNorm(w), nn.Linear(w, 1))

    def forward(self, hidden: Tensor, features: Tensor) -> Tensor:
        x = torch.cat([self.hidden_proj(hidden), self.stats_proj(features)], dim=-1)
        for block in self.blocks:
            x = block(x)
        return self.head(x).squeeze(-1)

    def score(self, stats: StepStats, where: Tensor) -> Tensor:
        """(B, G) probability that committing the top-1 token now keeps the full-step output, at
        the positions ``where`` (B, G) bool (0 elsewhere). Needs ``stats.hidden``."""
        out = torch.zeros_like(stats.confidence)
        if not bool(where.any()):
            return out
        hidden, features = step_features(stats, where, self.config.topk)
        param = next(self.parameters())
        logits = self(hidden.to(param), features.to(param))
        out[where] = torch.sigmoid(logits.float()).to(out.dtype)
        return out


def step_features(stats: StepStats, where: Tensor, topk: int) -> tuple[Tensor, Tensor]:
    """(hidden (N, D), features (N, F)) of the N positions ``where`` (B, G) bool, in
    ``where.nonzero()`` order: what an indicator reads at one step (see :data:`FEATURES`)."""
    if stats.hidden is None:
        raise ConfigError("the indicator reads hidden states, and this step has none: the strategy "
                          "must set needs_hidden = True.")
    b, g = where.nonzero(as_tuple=True)
    settings = stats.settings
    blen, glen = settings.block_length, where.shape[1]
    logits, lse = stats.logits[b, g], stats.lse[b, g]
    vocab = logits.shape[-1]
    k = min(topk, vocab)
    top = (logits.topk(k, dim=-1).values - lse[:, None]).exp()
    if k < topk:
        top = torch.cat([top, top.new_zeros(top.shape[0], topk - k)], dim=-1)
    log_p = logits - lse[:, None]
    entropy = -(log_p.exp() * log_p).sum(-1) / math.log(vocab)
    cand = stats.candidates
    first = cand.int().argmax(-1)  # each row's first candidate (its block's first mask)
    masked = stats.masked
    left = torch.where(g > 0, ~masked[b, (g - 1).clamp_min(0)], torch.ones_like(g, dtype=torch.bool))
    right = torch.where(g < glen - 1, ~masked[b, (g + 1).clamp_max(glen - 1)],
                        torch.ones_like(g, dtype=torch.bool))
    columns = [
        entropy,
        stats.persistence[b, g].clamp_max(_PERSISTENCE_CAP).float() / _PERSISTENCE_CAP,
        (g % blen).float() / blen,
        (g - first[b]).float() / blen,
        cand.sum(-1)[b].float() / blen,
        left.float(),
        right.float(),
        stats.block_step[b].float() / settings.steps_per_block,
    ]
    features = torch.cat([top.float(), torch.stack(columns, dim=-1).float()], dim=-1)
    return stats.hidden[b, g], features


@dataclass(frozen=True)
class IndicatorFile:
    """An indicator read from its file: the network (eval mode), its config and its provenance
    (model name and fingerprint, task, training-data hash, settings, training figures)."""

    indicator: Indicator
    config: IndicatorConfig
    provenance: dict[str, Any]


def save_indicator(indicator: Indicator, path: str | os.PathLike,
                   provenance: Mapping[str, Any]) -> Path:
    """Write ``indicator`` and its ``provenance`` (JSON-able) to ``path`` (safetensors), whole or
    not at all (a temporary file renamed into place)."""
    from safetensors.torch import save_file

    path = Path(path)
    state = {k: v.detach().to("cpu", torch.float32).contiguous()
             for k, v in indicator.state_dict().items()}
    metadata = {"format": FORMAT, "config": json.dumps(indicator.config.to_dict()),
                "provenance": json.dumps(dict(provenance), sort_keys=True)}
    with atomic_path(path) as tmp:
        save_file(state, str(tmp), metadata=metadata)
    return path


def load_indicator(path: str | os.PathLike, sha256: str | None = None) -> IndicatorFile:
    """Read an indicator file; with ``sha256`` the file must have that content hash. A missing,
    changed, foreign or damaged file is a one-line :class:`~sampler.errors.ConfigError`."""
    from safetensors import SafetensorError, safe_open

    from .artifacts import check_artifact

    file = check_artifact(path, sha256, "indicator")
    try:
        with safe_open(str(file), framework="pt") as handle:
            metadata = handle.metadata() or {}
            state = {name: handle.get_tensor(name) for name in handle.keys()}
    except (SafetensorError, OSError, ValueError) as err:
        raise ConfigError(f"indicator file {file} is not a safetensors file ({err}); give a file "
                          "written by `tuner train-indicator`.") from None
    if metadata.get("format") != FORMAT:
        raise ConfigError(f"indicator file {file} has format {metadata.get('format')!r}, not "
                          f"{FORMAT!r}: write it again with this version's `tuner train-indicator`.")
    try:
        raw = json.loads(metadata["config"])
        raw["features"] = tuple(raw.get("features", ()))
        config = IndicatorConfig(**raw)
        provenance = json.loads(metadata.get("provenance", "{}"))
    except (KeyError, TypeError, ValueError) as err:
        raise ConfigError(f"indicator file {file} has a damaged config ({err}).") from None
    if config.features != FEATURES:
        raise ConfigError(f"indicator file {file} reads features {', '.join(config.features)}; this "
                          f"version computes {', '.join(FEATURES)}: train it again.")
    indicator = Indicator(config)
    try:
        indicator.load_state_dict(state, strict=True)
    except RuntimeError as err:
        first = str(err).strip().splitlines()[0]
        raise ConfigError(f"indicator file {file} does not match its config: {first}") from None
    return IndicatorFile(indicator=indicator.eval(), config=config, provenance=provenance)
