"""Loading native LLaDA / Dream checkpoints from folders laid out like the official ones, and every
way a checkpoint can be wrong."""

from __future__ import annotations

import json
import logging
import re
import shutil

import pytest
import torch
from safetensors.torch import save_file

import sampler
from sampler import DreamModel, LLaDAModel, ModelError
from sampler.zoo import bundled_path

from .fakes import tiny_native

# native name -> official name (the inverse of the loader's table, written out by hand)
TO_LLADA = [
    (r"embed_tokens\.", "model.transformer.wte."), (r"norm\.", "model.transformer.ln_f."),
    (r"lm_head\.", "model.transformer.ff_out."),
    (r"layers\.(\d+)\.self_attn\.([qkv])_proj\.", r"model.transformer.blocks.\1.\2_proj."),
    (r"layers\.(\d+)\.self_attn\.o_proj\.", r"model.transformer.blocks.\1.attn_out."),
    (r"layers\.(\d+)\.mlp\.gate_proj\.", r"model.transformer.blocks.\1.ff_proj."),
    (r"layers\.(\d+)\.mlp\.up_proj\.", r"model.transformer.blocks.\1.up_proj."),
    (r"layers\.(\d+)\.mlp\.down_proj\.", r"model.transformer.blocks.\1.ff_out."),
    (r"layers\.(\d+)\.input_layernorm\.", r"model.transformer.blocks.\1.attn_norm."),
    (r"layers\.(\d+)\.post_attention_layernorm\.", r"model.transformer.blocks.\1.ff_norm."),
]

CONFIGS = {
    "llada": {"model_type": "llada", "architectures": ["LLaDAModelLM"], "d_model": 32,
              "n_heads": 4, "n_kv_heads": 4, "n_layers": 2, "mlp_hidden_size": 48,
              "embedding_size": 50, "vocab_size": 50, "rope_theta": 10000.0, "rms_norm_eps": 1e-5,
              "max_sequence_length": 128, "block_type": "llama", "activation_type": "silu",
              "layer_norm_type": "rms", "rope": True, "include_bias": False,
              "include_qkv_bias": False, "weight_tying": False, "mask_token_id": 49,
              "eos_token_id": 48, "pad_token_id": 48},
    "dream": {"model_type": "Dream", "architectures": ["DreamModel"], "hidden_size": 32,
              "num_attention_heads": 4, "num_key_value_heads": 2, "num_hidden_layers": 2,
              "intermediate_size": 48, "vocab_size": 50, "rope_theta": 10000.0,
              "rms_norm_eps": 1e-5, "max_position_embeddings": 128, "hidden_act": "silu",
              "tie_word_embeddings": False, "mask_token_id": 49, "eos_token_id": 48,
              "pad_token_id": 48},
}


def _official_name(family: str, name: str) -> str:
    if family == "dream":
        return name if name.startswith("lm_head") else f"model.{name}"
    for pattern, repl in TO_LLADA:
        m = re.match(pattern, name)
        if m:
            return m.expand(repl) + name[m.end():]
    raise AssertionError(name)


def _save(folder, family, *, shards=1, edit=None):
    """A checkpoint folder of a tiny native model under official names, with a tokenizer."""
    model = tiny_native(family)
    state = {_official_name(family, k): v.contiguous() for k, v in model.network.state_dict().items()}
    if edit:
        edit(state)
    folder.mkdir(parents=True, exist_ok=True)
    names = sorted(state)
    if shards == 1:
        save_file(state, folder / "model.safetensors")
    else:
        weight_map = {}
        for i in range(shards):
            file = f"model-{i + 1:05d}-of-{shards:05d}.safetensors"
            part = {n: state[n] for n in names[i::shards]}
            save_file(part, folder / file)
            weight_map.update({n: file for n in part})
        (folder / "model.safetensors.index.json").write_text(json.dumps(
            {"metadata": {"total_size": 0}, "weight_map": weight_map}))
    (folder / "config.json").write_text(json.dumps(CONFIGS[family]))
    for name in ("tokenizer.json", "tokenizer_config.json"):  # any tokenizer will do here
        shutil.copy(bundled_path("tiny-arith") / name, folder / name)
    return model


@pytest.mark.parametrize("family,cls,shards", [("llada", LLaDAModel, 2), ("dream", DreamModel, 1)])
def test_a_checkpoint_folder_loads_natively_and_gives_the_same_logits(tmp_path, family, cls, shards):
    original = _save(tmp_path, family, shards=shards)
    model = sampler.load_model(tmp_path, device="cpu")
    assert isinstance(model, cls) and not model.trust_remote_code
    assert (model.mask_id, model.eos_id, model.max_length) == (49, 48, 128)
    x = torch.randint(1, 40, (2, 9))
    assert torch.equal(model(x), original(x))
    out = sampler.generate(model, x, strategy="threshold", gen_length=8, block_length=4,
                           cache="dual")
    assert out.sequences.shape == (2, 17)


@pytest.mark.parametrize("family", ["llada", "dream"])
def test_loading_a_native_checkpoint_makes_transformers_warn_nothing(tmp_path, family):
    """transformers knows no 'llada' / 'Dream' config without remote code; guessing one for the
    tokenizer used to print a 'model of type llada to instantiate a model of type' warning."""
    _save(tmp_path, family)
    records = []
    handler = logging.Handler(logging.WARNING)
    handler.emit = records.append
    logger = logging.getLogger("transformers")
    logger.addHandler(handler)
    try:
        sampler.load_model(tmp_path, device="cpu")
    finally:
        logger.removeHandler(handler)
    assert [r.getMessage() for r in records] == []


def test_bfloat16_loading_casts_every_tensor(tmp_path):
    _save(tmp_path, "llada")
    model = sampler.load_model(tmp_path, device="cpu", dtype="bfloat16")
    assert {p.dtype for p in model.network.parameters()} == {torch.bfloat16}
    assert not any(p.is_meta for p in model.network.parameters())


def _drop(name):
    return lambda state: state.pop(name)


def _add(name):
    return lambda state: state.__setitem__(name, torch.zeros(2))


def _reshape(name):
    return lambda state: state.__setitem__(name, state[name][:-1].contiguous())


@pytest.mark.parametrize("edit,message", [
    (_drop("model.transformer.blocks.1.ff_norm.weight"),
     r"lacks parameter 'layers.1.post_attention_layernorm.weight' \(1 missing"),
    (_add("model.transformer.blocks.0.extra.weight"),
     r"unexpected parameter 'model.transformer.blocks.0.extra.weight'"),
    (_reshape("model.transformer.blocks.0.q_proj.weight"),
     r"'model.transformer.blocks.0.q_proj.weight' .* has shape \(31, 32\), expected \(32, 32\)"),
])
def test_a_broken_checkpoint_names_the_first_bad_parameter(tmp_path, edit, message):
    _save(tmp_path, "llada", edit=edit)
    with pytest.raises(ModelError, match=message):
        sampler.load_model(tmp_path, device="cpu")


def test_a_missing_shard_is_named(tmp_path):
    _save(tmp_path, "llada", shards=2)
    (tmp_path / "model-00002-of-00002.safetensors").unlink()
    with pytest.raises(ModelError, match="shard model-00002-of-00002.safetensors .* is missing"):
        sampler.load_model(tmp_path, device="cpu")


def test_an_unsupported_llada_variant_is_refused_before_loading(tmp_path):
    _save(tmp_path, "llada")
    config = {**CONFIGS["llada"], "block_type": "sequential"}
    (tmp_path / "config.json").write_text(json.dumps(config))
    with pytest.raises(ModelError, match="block_type = 'sequential'.*supports 'llama' only"):
        sampler.load_model(tmp_path, device="cpu")


def test_forcing_a_native_adapter_onto_another_architecture_is_one_clear_error():
    with pytest.raises(ModelError, match="native dream implementation has no such weight"):
        sampler.load_model("tiny-arith", device="cpu", adapter="dream")


def test_a_config_that_is_not_json_is_one_clear_error(tmp_path):
    _save(tmp_path, "dream")
    (tmp_path / "config.json").write_text("{not json")
    with pytest.raises(ModelError, match="config.json is not valid JSON"):
        sampler.load_model(tmp_path, device="cpu")


@pytest.mark.parametrize("kwargs,message", [({"device": "bogus"}, "unknown device 'bogus'"),
                                            ({"dtype": "nosuch"}, "unknown dtype 'nosuch'")])
def test_a_bad_device_or_dtype_is_one_clear_error(kwargs, message):
    with pytest.raises(ModelError, match=message):
        sampler.load_model("tiny-arith", **kwargs)


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the machine without a GPU")
def test_cuda_without_a_gpu_is_one_clear_error():
    with pytest.raises(ModelError, match="no CUDA GPU"):
        sampler.load_model("tiny-arith", device="cuda")
