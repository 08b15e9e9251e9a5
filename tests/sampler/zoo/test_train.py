"""The training script: batch layout, schedule, and a smoke run that writes a loadable model."""

from __future__ import annotations

import json

import pytest
import torch
from transformers import AutoModelForMaskedLM, AutoTokenizer

from sampler.zoo.arith import GEN_LENGTH
from sampler.zoo.tokenizer import build_tokenizer
from sampler.zoo.train import TrainConfig, encode_batch, learning_rate, main, parse_args


def test_batch_layout_is_left_padded_prompt_then_answer_padded_with_eos():
    tok = build_tokenizer()
    ids, attention, start = encode_batch(tok, ["Ann has 3 pens, gets 2. How many now?", "Hi?"],
                                         ["3+2=5\n#### 5", "1,2\n#### 12"])
    assert ids.shape == (2, start + GEN_LENGTH) and attention.shape == ids.shape
    assert (ids[:, start - 1] == tok.sep_token_id).all()
    assert tok.decode(ids[0, start:], skip_special_tokens=True) == "3+2=5\n#### 5"
    assert (ids[0, start + len("3+2=5\n#### 5"):] == tok.eos_token_id).all()
    pad = int((attention[1] == 0).sum())
    assert pad > 0 and (ids[1, :pad] == tok.pad_token_id).all() and attention[1, pad:].all()


def test_learning_rate_warms_up_then_decays_to_the_floor():
    cfg = TrainConfig(out="", steps=100, warmup=10, lr=1e-3, min_lr_ratio=0.1)
    assert learning_rate(cfg, 0) == pytest.approx(1e-4)
    assert learning_rate(cfg, 9) == pytest.approx(1e-3)
    assert learning_rate(cfg, 99) == pytest.approx(1e-4, rel=0.01)
    rates = [learning_rate(cfg, s) for s in range(10, 100)]
    assert all(a >= b for a, b in zip(rates, rates[1:]))


def test_smoke_flag_overrides_size_and_steps():
    cfg = parse_args(["--out", "x", "--smoke"])
    assert cfg.steps == 3 and cfg.layers == 1
    assert parse_args(["--out", "x", "--steps", "7", "--lr", "0.01"]).steps == 7


def test_smoke_run_writes_a_loadable_model(tmp_path, capsys):
    threads = torch.get_num_threads()
    try:
        main(["--out", str(tmp_path / "m"), "--smoke", "--threads", "1"])
    finally:
        torch.set_num_threads(threads)
    log = capsys.readouterr().out
    assert log.startswith("config: ") and "step      3/3" in log

    model = AutoModelForMaskedLM.from_pretrained(tmp_path / "m")
    tok = AutoTokenizer.from_pretrained(tmp_path / "m")
    assert model.config.mask_token_id == tok.mask_token_id
    assert model.config.eos_token_id == tok.eos_token_id
    assert model.config.vocab_size == len(tok)
    ids = tok(["Ann has 3 pens, gets 2. How many now?"], return_tensors="pt").input_ids
    assert model(input_ids=ids).logits.shape == (1, ids.shape[1], len(tok))
    summary = json.loads((tmp_path / "m" / "training.json").read_text())
    assert summary["config"]["steps"] == 3 and summary["final_loss"] > 0
