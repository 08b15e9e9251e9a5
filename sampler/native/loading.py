"""Load an official LLaDA / Dream checkpoint into the native network, by parameter name.

The network is built on the ``meta`` device (no memory), then every tensor is read from the
safetensors files one at a time, cast to the target dtype on the target device and assigned: 16 GB
of bfloat16 weights never pass through 32 GB of float32. Sharded checkpoints
(``model.safetensors.index.json``) are read shard by shard. Nothing is assigned before every name
and shape has been checked, so a bad checkpoint is refused whole, naming the first missing,
unexpected or wrongly shaped parameter.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any, Mapping

import torch

from ..errors import ModelError
from .config import native_config
from .modeling import BidirectionalTransformer

__all__ = ["load_native_network", "RENAMES", "checkpoint_files"]

RENAMES: dict[str, list[tuple[str, str]]] = {
    "llada": [
        (r"model\.transformer\.wte\.", "embed_tokens."),
        (r"model\.transformer\.ln_f\.", "norm."),
        (r"model\.transformer\.ff_out\.", "lm_head."),
        (r"model\.transformer\.blocks\.(\d+)\.([qkv])_proj\.", r"layers.\1.self_attn.\2_proj."),
        (r"model\.transformer\.blocks\.(\d+)\.attn_out\.", r"layers.\1.self_attn.o_proj."),
        (r"model\.transformer\.blocks\.(\d+)\.ff_proj\.", r"layers.\1.mlp.gate_proj."),
        (r"model\.transformer\.blocks\.(\d+)\.up_proj\.", r"layers.\1.mlp.up_proj."),
        (r"model\.transformer\.blocks\.(\d+)\.ff_out\.", r"layers.\1.mlp.down_proj."),
        (r"model\.transformer\.blocks\.(\d+)\.attn_norm\.", r"layers.\1.input_layernorm."),
        (r"model\.transformer\.blocks\.(\d+)\.ff_norm\.", r"layers.\1.post_attention_layernorm."),
    ],
    "dream": [
        (r"model\.", ""),
        (r"lm_head\.", "lm_head."),
    ],
}
"""Per family: (checkpoint-name prefix pattern, native-name prefix) rules, first match wins."""


def _native_name(family: str, name: str) -> str | None:
    for pattern, replacement in RENAMES[family]:
        match = re.match(pattern, name)
        if match:
            return match.expand(replacement) + name[match.end():]
    return None


def checkpoint_files(folder: Path) -> dict[str, Path]:
    """Checkpoint tensor name -> the safetensors file holding it."""
    index = folder / "model.safetensors.index.json"
    if index.is_file():
        try:
            weight_map = json.loads(index.read_text())["weight_map"]
        except (ValueError, KeyError, TypeError) as err:
            raise ModelError(f"{index} is not a safetensors index ({err.__class__.__name__}).") from None
        missing = sorted({f for f in weight_map.values() if not (folder / f).is_file()})
        if missing:
            raise ModelError(f"checkpoint shard {missing[0]} named in {index.name} is missing "
                             f"from {folder}.")
        return {name: folder / file for name, file in weight_map.items()}
    single = folder / "model.safetensors"
    if not single.is_file():
        raise ModelError(f"no model.safetensors or model.safetensors.index.json in {folder}; the "
                         "native loader reads safetensors checkpoints only.")
    from safetensors import safe_open

    with safe_open(single, framework="pt") as f:
        return {name: single for name in f.keys()}


def _plan(network: BidirectionalTransformer, family: str,
          files: Mapping[str, Path]) -> dict[Path, list[tuple[str, str]]]:
    """Check names and shapes against the checkpoint headers; (file -> [(ckpt, native)])."""
    from safetensors import safe_open

    expected = {n: tuple(p.shape) for n, p in network.named_parameters()}
    tied = network.config.tie_embeddings
    plan: dict[Path, list[tuple[str, str]]] = {}
    seen = set()
    by_file: dict[Path, list[str]] = {}
    for name, file in files.items():
        by_file.setdefault(file, []).append(name)
    for file, names in by_file.items():
        with safe_open(file, framework="pt") as f:
            for name in sorted(names):
                native = _native_name(family, name)
                if tied and native == "lm_head.weight":
                    continue  # a tied head is the embedding; a saved copy of it is redundant
                if native is None or native not in expected:
                    raise ModelError(f"unexpected parameter {name!r} in {file.name}: the native "
                                     f"{family} implementation has no such weight.")
                shape = tuple(f.get_slice(name).get_shape())
                if shape != expected[native]:
                    raise ModelError(f"parameter {name!r} in {file.name} has shape {shape}, "
                                     f"expected {expected[native]} from config.json.")
                seen.add(native)
                plan.setdefault(file, []).append((name, native))
    missing = [n for n in expected if n not in seen]
    if missing:
        raise ModelError(f"checkpoint lacks parameter {missing[0]!r} "
                         f"({len(missing)} missing in all).")
    return plan


def load_native_network(folder: Path, config: Mapping[str, Any], *, device: torch.device,
                        dtype: torch.dtype, family: str | None = None) -> BidirectionalTransformer:
    """The native network of the checkpoint in ``folder``, on ``device`` in ``dtype`` (read as
    ``family`` when given, else as its config's ``model_type``)."""
    from safetensors import safe_open

    cfg = native_config(config, family)
    with torch.device("meta"):
        network = BidirectionalTransformer(cfg)
    plan = _plan(network, cfg.family, checkpoint_files(folder))
    state: dict[str, torch.Tensor] = {}
    for file, names in plan.items():
        # straight onto the GPU where there is one: one tensor at a time, never the whole model
        with safe_open(file, framework="pt", device=str(device)) as f:
            for name, native in names:
                state[native] = f.get_tensor(name).to(device=device, dtype=dtype)
    if cfg.tie_embeddings:
        state.setdefault("lm_head.weight", state["embed_tokens.weight"])
    network.load_state_dict(state, strict=True, assign=True)
    if cfg.tie_embeddings:
        network.lm_head.weight = network.embed_tokens.weight
    return network.eval()
