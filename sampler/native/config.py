"""The shape of a native model, read from the fields of an official config.json.

LLaDA (an OLMo-style config: ``d_model``, ``n_heads``, ``block_type`` ...) and Dream (a Qwen2-style
config: ``hidden_size``, ``num_key_value_heads`` ...) are both Llama-style stacks of pre-norm
blocks (RMSNorm, rotary attention, SwiGLU MLP) with bidirectional attention; :class:`NativeConfig`
is what the two have in common, and :data:`ARCHITECTURES` turns each family's config into it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Mapping

from ..errors import ModelError

__all__ = ["NativeConfig", "ARCHITECTURES", "native_config"]


@dataclass(frozen=True)
class NativeConfig:
    """Sizes and constants of a bidirectional Llama-style transformer."""

    family: str
    vocab_size: int
    hidden_size: int
    num_layers: int
    num_heads: int
    num_kv_heads: int
    intermediate_size: int
    rope_theta: float
    rms_norm_eps: float
    qkv_bias: bool
    tie_embeddings: bool
    max_positions: int

    @property
    def head_dim(self) -> int:
        return self.hidden_size // self.num_heads


def _require(config: Mapping[str, Any], family: str, *names: str) -> list[Any]:
    missing = [n for n in names if config.get(n) is None]
    if missing:
        raise ModelError(f"{family} config.json lacks `{missing[0]}`; it is not a complete "
                         f"{family} checkpoint config.")
    return [config[n] for n in names]


def _llada(config: Mapping[str, Any]) -> NativeConfig:
    """LLaDA-8B-Base / -Instruct / LLaDA-1.5 (``model_type: llada``, OLMo field names)."""
    d_model, n_heads, n_layers = _require(config, "LLaDA", "d_model", "n_heads", "n_layers")
    unsupported = {"block_type": ("llama",), "layer_norm_type": ("rms",),
                   "activation_type": ("silu", "swiglu"), "rope": (True,),
                   "alibi": (False, None), "attention_layer_norm": (False, None),
                   "input_emb_norm": (False, None), "scale_logits": (False, None),
                   "include_bias": (False, None)}
    for key, allowed in unsupported.items():
        if key in config and config[key] not in allowed:
            raise ModelError(f"LLaDA config has {key} = {config[key]!r}; the native LLaDA "
                             f"implementation supports {', '.join(map(repr, allowed))} only.")
    hidden = config.get("mlp_hidden_size") or config.get("mlp_ratio", 4) * d_model
    vocab = config.get("embedding_size") or config.get("vocab_size")
    return NativeConfig(
        family="llada", vocab_size=int(vocab), hidden_size=int(d_model), num_layers=int(n_layers),
        num_heads=int(n_heads), num_kv_heads=int(config.get("n_kv_heads") or n_heads),
        intermediate_size=int(hidden), rope_theta=float(config.get("rope_theta", 10000.0)),
        rms_norm_eps=float(config.get("rms_norm_eps", 1e-5)),
        qkv_bias=bool(config.get("include_qkv_bias", False)),
        tie_embeddings=bool(config.get("weight_tying", False)),
        max_positions=int(config.get("max_sequence_length", 4096)))


def _dream(config: Mapping[str, Any]) -> NativeConfig:
    """Dream-v0-Base / -Instruct-7B (``model_type: Dream``, Qwen2 field names)."""
    hidden, heads, layers, inter, vocab = _require(
        config, "Dream", "hidden_size", "num_attention_heads", "num_hidden_layers",
        "intermediate_size", "vocab_size")
    if config.get("hidden_act", "silu") != "silu":
        raise ModelError(f"Dream config has hidden_act = {config['hidden_act']!r}; the native Dream "
                         "implementation supports 'silu' only.")
    rope = config.get("rope_scaling")
    if rope and (rope.get("rope_type") or rope.get("type")) not in (None, "default"):
        raise ModelError(f"Dream config asks for rope_scaling {rope!r}; the native Dream "
                         "implementation supports default rotary embeddings only.")
    return NativeConfig(
        family="dream", vocab_size=int(vocab), hidden_size=int(hidden), num_layers=int(layers),
        num_heads=int(heads), num_kv_heads=int(config.get("num_key_value_heads") or heads),
        intermediate_size=int(inter), rope_theta=float(config.get("rope_theta", 10000.0)),
        rms_norm_eps=float(config.get("rms_norm_eps", 1e-6)), qkv_bias=True,
        tie_embeddings=bool(config.get("tie_word_embeddings", False)),
        max_positions=int(config.get("max_position_embeddings", 32768)))


ARCHITECTURES: dict[str, Callable[[Mapping[str, Any]], NativeConfig]] = {
    "llada": _llada,
    "dream": _dream,
}
"""config.json ``model_type`` (lower-cased) -> the reader of that family's config."""


def native_config(config: Mapping[str, Any], family: str | None = None) -> NativeConfig:
    """The :class:`NativeConfig` of an official config.json; unknown architectures are refused.
    ``family`` reads the config as that family's whatever its ``model_type`` says."""
    model_type = family or str(config.get("model_type", "")).lower()
    if model_type not in ARCHITECTURES:
        raise ModelError(f"no native implementation of model_type {config.get('model_type')!r}; "
                         f"native architectures: {', '.join(sorted(ARCHITECTURES))}.")
    return ARCHITECTURES[model_type](config)
