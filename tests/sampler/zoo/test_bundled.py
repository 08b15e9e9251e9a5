"""The bundled model: found by its short name, small, and right on a few held-out problems."""

from __future__ import annotations

import json

import pytest
import torch

import sampler
from sampler.errors import ModelError
from sampler.zoo import BUNDLED_MODELS, bundled_path
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
