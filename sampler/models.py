"""Model adapters: one small protocol over every kind of masked diffusion LM.

An adapter gives logits aligned so that position i predicts token i, plus the mask / eos / pad ids.
Implementations: any ``AutoModelForMaskedLM`` (incl. the bundled model), LLaDA (remote code,
``model(x).logits``) and Dream (remote code, logits shifted right by one position).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import torch
from torch import Tensor

from .errors import ModelError

__all__ = ["DiffusionModel", "MaskedLMModel", "LLaDAModel", "DreamModel", "ADAPTERS",
           "load_model", "adapter_for"]


@dataclass(eq=False)
class DiffusionModel:
    """A network with its tokenizer and special ids. Call it: ``model(x, attention_mask) -> logits``
    with x (B, L) long and logits (B, L, V), position i predicting token i."""

    network: torch.nn.Module
    tokenizer: Any
    mask_id: int
    eos_id: int | None
    pad_id: int
    name: str = "unnamed"
    max_length: int | None = None
    kind: ClassVar[str] = "masked_lm"
    logit_shift: ClassVar[bool] = False
    trust_remote_code: ClassVar[bool] = False
    auto_class: ClassVar[str] = "AutoModelForMaskedLM"

    @property
    def device(self) -> torch.device:
        return next(self.network.parameters()).device

    def forward(self, x: Tensor, attention_mask: Tensor | None) -> Tensor:
        kwargs = {} if attention_mask is None else {"attention_mask": attention_mask}
        return self.network(input_ids=x, **kwargs).logits

    def __call__(self, x: Tensor, attention_mask: Tensor | None = None) -> Tensor:
        return self.forward(x, attention_mask)

    def span_logits(self, x: Tensor, attention_mask: Tensor | None, start: int) -> Tensor:
        """(B, L - start, V) logits of positions ``start`` onwards: what the loop reads."""
        return self.forward(x, attention_mask)[:, start:]


class MaskedLMModel(DiffusionModel):
    """Any ``AutoModelForMaskedLM`` (BERT, ModernBERT, the bundled tiny-arith, ...)."""


class LLaDAModel(DiffusionModel):
    """LLaDA-8B and relatives: remote code, ``model(x, attention_mask=...).logits``."""

    kind = "llada"
    trust_remote_code = True
    auto_class = "AutoModel"

    def forward(self, x: Tensor, attention_mask: Tensor | None) -> Tensor:
        if attention_mask is None:  # older remote code takes no attention_mask at all
            return self.network(x).logits
        return self.network(x, attention_mask=attention_mask).logits


class DreamModel(DiffusionModel):
    """Dream-7B: remote code; its output i predicts token i + 1, so the adapter shifts right."""

    kind = "dream"
    logit_shift = True
    trust_remote_code = True
    auto_class = "AutoModel"

    def forward(self, x: Tensor, attention_mask: Tensor | None) -> Tensor:
        if attention_mask is None:
            logits = self.network(x).logits
        else:  # Dream takes a pairwise (B, 1, L, L) mask and explicit positions under padding
            keep = attention_mask.bool()
            pairwise = keep[:, None, None, :] & keep[:, None, :, None]
            positions = (attention_mask.long().cumsum(-1) - 1).clamp_min(0)
            logits = self.network(x, attention_mask=pairwise, position_ids=positions).logits
        return torch.cat([logits[:, :1], logits[:, :-1]], dim=1)


ADAPTERS: dict[str, type[DiffusionModel]] = {
    cls.kind: cls for cls in (MaskedLMModel, LLaDAModel, DreamModel)
}
_MODEL_TYPES = {"llada": "llada", "dream": "dream"}  # config.model_type (lower-cased) -> adapter


def adapter_for(model_type: str | None, forced: str | None = None) -> type[DiffusionModel]:
    """The adapter class for a config's ``model_type``, or the one named by ``forced``."""
    if forced is not None:
        if forced not in ADAPTERS:
            raise ModelError(f"unknown model adapter {forced!r}; known adapters: "
                             f"{', '.join(sorted(ADAPTERS))}.")
        return ADAPTERS[forced]
    return ADAPTERS[_MODEL_TYPES.get((model_type or "").lower(), "masked_lm")]


def _raw_config(path: str) -> dict[str, Any]:
    """The config.json of a local folder or hub id as a plain dict, without running remote code."""
    local = Path(path) / "config.json"
    if local.is_file():
        return json.loads(local.read_text())
    from transformers import PretrainedConfig

    try:
        config, _ = PretrainedConfig.get_config_dict(path)
    except (OSError, ValueError) as err:
        raise ModelError(f"cannot find model {path!r}: not a bundled name, a local folder with a "
                         f"config.json, or a reachable hub id ({err.__class__.__name__}).") from None
    return config


def _special_id(name: str, config: dict[str, Any], tokenizer: Any) -> int | None:
    value = config.get(f"{name}_token_id")
    if value is None:
        value = getattr(tokenizer, f"{name}_token_id", None)
    if isinstance(value, list):
        value = value[0] if value else None
    return value


def _resolve_path(name_or_path: str | os.PathLike) -> tuple[str, str]:
    """(path, display name) for a bundled short name, a local folder, or a hub id."""
    from . import zoo

    name = str(name_or_path)
    if name in zoo.BUNDLED_MODELS:
        return str(zoo.bundled_path(name)), name
    return name, name


def load_model(name_or_path: str | os.PathLike, *, device: str | torch.device | None = None,
               dtype: torch.dtype | str | None = None, adapter: str | None = None) -> DiffusionModel:
    """Load a diffusion LM and its tokenizer behind the adapter its config calls for.

    ``name_or_path``: a bundled short name (``"tiny-arith"``), a local folder, or a hub id.
    ``device`` defaults to CUDA when available; ``dtype`` to bfloat16 on CUDA for remote-code
    models and float32 otherwise. ``adapter`` forces one of :data:`ADAPTERS`.
    """
    import transformers

    path, display = _resolve_path(name_or_path)
    config = _raw_config(path)
    cls = adapter_for(config.get("model_type"), adapter)
    device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
    if isinstance(dtype, str):
        dtype = getattr(torch, dtype)
    if dtype is None:
        dtype = torch.bfloat16 if (device.type == "cuda" and cls.trust_remote_code) else torch.float32
    auto = getattr(transformers, cls.auto_class)
    try:
        tokenizer = transformers.AutoTokenizer.from_pretrained(
            path, trust_remote_code=cls.trust_remote_code)
        network = auto.from_pretrained(path, trust_remote_code=cls.trust_remote_code, dtype=dtype)
    except (OSError, ValueError) as err:
        raise ModelError(f"cannot load model {display!r} as {cls.kind}: {err}") from None
    network.to(device).eval()
    mask_id = _special_id("mask", config, tokenizer)
    if mask_id is None:
        raise ModelError(f"model {display!r} defines no mask token (neither config.mask_token_id "
                         "nor tokenizer.mask_token_id): it is not a masked diffusion LM.")
    eos_id = _special_id("eos", config, tokenizer)
    pad_id = _special_id("pad", config, tokenizer)
    max_length = config.get("max_position_embeddings") or config.get("max_sequence_length")
    return cls(network=network, tokenizer=tokenizer, mask_id=int(mask_id),
               eos_id=None if eos_id is None else int(eos_id),
               pad_id=int(pad_id if pad_id is not None else (eos_id if eos_id is not None else 0)),
               name=display, max_length=max_length)
