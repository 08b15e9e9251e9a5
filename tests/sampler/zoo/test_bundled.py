"""The bundled models: found by their short names, small, and right on a few held-out problems."""

from __future__ import annotations

import json

import pytest
import torch

import sampler
from sampler.errors import ModelError
from sampler.zoo import BUNDLED_MODELS, TRAIN_COMMANDS, bundled_path
from sampler.zoo.arith import BLOCK_LENGTH, GEN_LENGTH, make_splits, score


def test_short_name_resolves_to_the_package_folder():
    path = bundled_path("tiny-arith")
    assert path == BUNDLED_MODELS["tiny-arith"] and path.parent.name == "zoo"
    for name in ("config.json", "model.safetensors", "tokenizer.json", "README.md"):
        assert (path / name).is_file(), name


def test_unknown_name_lists_the_bundled_ones():
    with pytest.raises(ModelError, match="tiny-arith"):
        bundled_path("huge-arith")


def test_bundled_folder_is_small_and_declares_its_mask_token():
    path = bundled_path("tiny-arith")
    assert sum(f.stat().st_size for f in path.iterdir()) <= 20 * 2**20
    config = json.loads((path / "config.json").read_text())
    tokenizer = json.loads((path / "tokenizer.json").read_text())
    mask = next(t["id"] for t in tokenizer["added_tokens"] if t["content"] == "[MASK]")
    assert config["mask_token_id"] == mask


@pytest.fixture(scope="module")
def model():
    return sampler.load_model("tiny-arith", device="cpu")


def test_loads_by_short_name(model):
    assert model.mask_id == model.tokenizer.mask_token_id
    assert model.eos_id == model.tokenizer.eos_token_id


HELD_OUT = (0, 1, 2, 3, 4, 5, 6, 7)
"""Indices into the seed-0 ``test`` split (never trained on); they cover all three kinds."""


@pytest.mark.slow
def test_full_step_decoding_answers_fixed_held_out_problems(model):
    test_split = make_splits(seed=0, n_train=0)["test"]
    problems = [test_split[i] for i in HELD_OUT]
    assert {p.kind for p in problems} == {"arith", "split", "order"}
    batch = model.tokenizer([p.question for p in problems], padding=True, return_tensors="pt")
    out = sampler.generate(model, batch.input_ids, attention_mask=batch.attention_mask,
                           strategy="fixed", params={"steps": GEN_LENGTH, "score": "low_confidence"},
                           gen_length=GEN_LENGTH, block_length=BLOCK_LENGTH, temperature=0.0)
    texts = model.tokenizer.batch_decode(out.sequences[:, batch.input_ids.shape[1]:],
                                         skip_special_tokens=True)
    assert [score(p, t) for p, t in zip(problems, texts)] == [1.0] * len(problems), texts
    assert torch.equal(out.nfe, torch.full_like(out.nfe, GEN_LENGTH))


# ---- tiny-cot: a miniature LLaDA, trained by the recipe in its folder ----

COT = BUNDLED_MODELS["tiny-cot"]
COT_PRESENT = (COT / "config.json").is_file()
needs_tiny_cot = pytest.mark.skipif(
    not COT_PRESENT, reason="tiny-cot is not trained yet: sampler/zoo/tiny_cot holds only its recipe "
                            "(its README.md: the training command, and where the run stands)")


def test_tiny_cot_is_registered_with_its_recipe():
    assert COT.parent.name == "zoo" and COT.name == "tiny_cot"
    assert "--task cot" in TRAIN_COMMANDS["tiny-cot"]
    card = (COT / "README.md").read_text()
    assert "python -m sampler.zoo.train --task cot" in card
    assert "python -m sampler.zoo.evaluate --model tiny-cot" in card


@pytest.mark.skipif(COT_PRESENT, reason="tiny-cot is bundled")
def test_missing_tiny_cot_names_its_training_command():
    with pytest.raises(ModelError, match=r"tiny-cot.*`python -m sampler\.zoo\.train --task cot"):
        sampler.load_model("tiny-cot")


@needs_tiny_cot
def test_tiny_cot_is_a_small_llada_checkpoint():
    assert sum(f.stat().st_size for f in COT.iterdir()) <= 40 * 2**20
    config = json.loads((COT / "config.json").read_text())
    assert config["model_type"] == "llada"
    model = sampler.load_model("tiny-cot", device="cpu")
    assert model.kind == "llada" and model.supports_cache
    assert model.mask_id == model.tokenizer.mask_token_id


COT_HELD_OUT = range(16)
"""The first problems of the seed-0 ``cot`` test split (never trained on)."""


@needs_tiny_cot
@pytest.mark.slow
def test_tiny_cot_solves_fixed_held_out_problems():
    from sampler.zoo import cot

    model = sampler.load_model("tiny-cot", device="cpu")
    test_split = cot.make_splits(seed=0, n_train=0)["test"]
    problems = [test_split[i] for i in COT_HELD_OUT]
    batch = model.tokenizer([p.question for p in problems], padding=True, return_tensors="pt")
    out = sampler.generate(model, batch.input_ids, attention_mask=batch.attention_mask,
                           strategy="fixed", params={"steps": cot.GEN_LENGTH},
                           gen_length=cot.GEN_LENGTH, block_length=cot.BLOCK_LENGTH,
                           eos_fill=True, temperature=0.0)
    texts = model.tokenizer.batch_decode(out.sequences[:, batch.input_ids.shape[1]:],
                                         skip_special_tokens=True)
    solved = [cot.score(p, t) for p, t in zip(problems, texts)]
    # full-step accuracy is 60-85% by design: at least half of these, not all of them
    assert sum(solved) >= len(problems) // 2, texts
