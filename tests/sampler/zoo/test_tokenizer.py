"""The character tokenizer: round trips, special tokens, saving and loading."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest
import transformers
from transformers import AutoTokenizer

from sampler.zoo.arith import ALPHABET, KINDS, make_problem
from sampler.zoo.cot import ALPHABET as COT_ALPHABET
from sampler.zoo.cot import KINDS as COT_KINDS
from sampler.zoo.cot import make_problem as make_cot_problem
from sampler.zoo.tokenizer import (LLADA_SPECIAL_TOKENS, PORTABLE_CLASSES, SPECIAL_TOKENS,
                                   build_llada_tokenizer, build_tokenizer, save_tokenizer)

ZOO = Path(__file__).resolve().parents[3] / "sampler" / "zoo"


@pytest.fixture(scope="module")
def tokenizer():
    return build_tokenizer()


def test_every_character_is_one_token_and_round_trips(tokenizer):
    for char in ALPHABET:
        ids = tokenizer(char, add_special_tokens=False)["input_ids"]
        assert len(ids) == 1 and ids[0] != tokenizer.unk_token_id, repr(char)
        assert tokenizer.decode(ids) == char
    ids = tokenizer(ALPHABET, add_special_tokens=False)["input_ids"]
    assert len(ids) == len(ALPHABET) and tokenizer.decode(ids) == ALPHABET


def test_generated_problems_round_trip(tokenizer):
    rng = random.Random(0)
    for kind in KINDS:
        for _ in range(100):
            problem = make_problem(rng, kind)
            for text in (problem.question, problem.answer):
                ids = tokenizer(text, add_special_tokens=False)["input_ids"]
                assert tokenizer.decode(ids) == text


def test_prompt_ends_with_sep_and_special_tokens_are_skipped(tokenizer):
    ids = tokenizer("Ann has 3 pens, gets 2. How many now?")["input_ids"]
    assert ids[-1] == tokenizer.sep_token_id
    answer = tokenizer("3+2=5\n#### 5", add_special_tokens=False)["input_ids"]
    padded = answer + [tokenizer.eos_token_id] * 5
    assert tokenizer.decode(padded, skip_special_tokens=True) == "3+2=5\n#### 5"


def test_special_tokens_are_distinct(tokenizer):
    ids = [tokenizer.pad_token_id, tokenizer.unk_token_id, tokenizer.mask_token_id,
           tokenizer.eos_token_id, tokenizer.sep_token_id]
    assert None not in ids and len(set(ids)) == len(SPECIAL_TOKENS)
    assert len(tokenizer) == len(SPECIAL_TOKENS) + len(set(ALPHABET))


def test_save_and_load_with_auto_tokenizer(tokenizer, tmp_path):
    save_tokenizer(tokenizer, tmp_path)
    loaded = AutoTokenizer.from_pretrained(tmp_path)
    assert loaded.mask_token_id == tokenizer.mask_token_id
    assert loaded.eos_token_id == tokenizer.eos_token_id
    assert loaded.padding_side == "left"
    ids = loaded(ALPHABET, add_special_tokens=False)["input_ids"]
    assert loaded.decode(ids) == ALPHABET
    batch = loaded(["ab", "abcd"], padding=True)
    assert batch["attention_mask"][0][:2] == [0, 0]


# ---- the tiny-cot tokenizer: the cot alphabet with LLaDA's conventions ----

@pytest.fixture(scope="module")
def llada_tokenizer():
    return build_llada_tokenizer()


def test_llada_tokenizer_round_trips_every_cot_character(llada_tokenizer):
    tok = llada_tokenizer
    for char in COT_ALPHABET:
        ids = tok(char, add_special_tokens=False)["input_ids"]
        assert len(ids) == 1 and ids[0] != tok.unk_token_id, repr(char)
        assert tok.decode(ids) == char
    ids = tok(COT_ALPHABET, add_special_tokens=False)["input_ids"]
    assert len(ids) == len(COT_ALPHABET) and tok.decode(ids) == COT_ALPHABET
    rng = random.Random(0)
    for kind in COT_KINDS:
        for _ in range(100):
            problem = make_cot_problem(rng, kind)
            for text in (problem.question, problem.answer):
                ids = tok(text, add_special_tokens=False)["input_ids"]
                assert tok.unk_token_id not in ids and tok.decode(ids) == text


def test_llada_tokenizer_pads_with_eos_like_llada(llada_tokenizer, tmp_path):
    tok = llada_tokenizer
    assert tok.pad_token_id == tok.eos_token_id             # LLaDA: pad_token_id == eos_token_id
    ids = [tok.mask_token_id, tok.eos_token_id, tok.sep_token_id, tok.unk_token_id]
    assert None not in ids and len(set(ids)) == 4
    assert len(tok) == len(set(LLADA_SPECIAL_TOKENS.values())) + len(set(COT_ALPHABET))
    save_tokenizer(tok, tmp_path)
    loaded = AutoTokenizer.from_pretrained(tmp_path)
    assert (loaded.mask_token_id, loaded.eos_token_id, loaded.pad_token_id) == (
        tok.mask_token_id, tok.eos_token_id, tok.eos_token_id)
    batch = loaded(["1+2=3", "12+30=42"], padding=True)
    assert batch["input_ids"][0][:3] == [tok.eos_token_id] * 3 and batch["attention_mask"][0][:3] == [0] * 3
    assert loaded.decode(batch["input_ids"][0], skip_special_tokens=True) == "1+2=3"


def _portable(name: str | None) -> bool:
    """A ``tokenizer_class`` transformers 4 resolves as well as 5: one of the names both have."""
    return name not in PORTABLE_CLASSES and (name is None or hasattr(transformers, name))


def test_saved_tokenizers_name_a_class_transformers_4_has_too(tokenizer, tmp_path):
    """transformers 5 writes ``TokenizersBackend``, which transformers 4 cannot load ("Tokenizer
    class TokenizersBackend does not exist"): every bundled model failed to load there."""
    tokenizer.save_pretrained(tmp_path / "plain")
    written = json.loads((tmp_path / "plain" / "tokenizer_config.json").read_text())
    save_tokenizer(tokenizer, tmp_path / "saved")
    saved = json.loads((tmp_path / "saved" / "tokenizer_config.json").read_text())
    assert saved["tokenizer_class"] == PORTABLE_CLASSES.get(written.get("tokenizer_class"),
                                                            written.get("tokenizer_class"))
    assert _portable(saved["tokenizer_class"])
    assert {k: v for k, v in saved.items() if k != "tokenizer_class"} == {
        k: v for k, v in written.items() if k != "tokenizer_class"}
    loaded = AutoTokenizer.from_pretrained(tmp_path / "saved")
    assert loaded(ALPHABET)["input_ids"] == tokenizer(ALPHABET)["input_ids"]


@pytest.mark.parametrize("config", sorted(ZOO.glob("*/tokenizer_config.json")),
                         ids=lambda p: p.parent.name)
def test_bundled_tokenizers_name_a_portable_class(config):
    assert _portable(json.loads(config.read_text()).get("tokenizer_class"))
