"""The training script: batch layout, schedule, and smoke runs that write loadable models (tiny-arith's
ModernBERT; tiny-cot's native LLaDA, saved as an official LLaDA checkpoint)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from transformers import AutoModelForMaskedLM, AutoTokenizer

import sampler
from sampler.zoo import cot
from sampler.zoo.arith import GEN_LENGTH
from sampler.zoo.tokenizer import build_llada_tokenizer, build_tokenizer
from sampler.zoo.train import (SMOKE, CotTrainConfig, TrainConfig, build_llada, encode_batch,
                               learning_rate, llada_config, llada_state_dict, main, parse_args)

ZOO = Path(__file__).resolve().parents[3] / "sampler" / "zoo"


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
    for folder in (tmp_path / "m", ZOO / "tiny_arith"):
        _every_layer_global_in_transformers_4_too(json.loads((folder / "config.json").read_text()))
    assert json.loads((tmp_path / "m" / "tokenizer_config.json").read_text())[
        "tokenizer_class"] == "PreTrainedTokenizerFast"


def _every_layer_global_in_transformers_4_too(config: dict) -> None:
    """transformers 5 reads ModernBERT's attention pattern from ``layer_types``; 4 reads
    ``global_attn_every_n_layers`` (default 3: layers 1, 2, 4, 5 ... local, with a window of
    ``local_attention`` and another rope theta), so without it the same weights decoded wrong
    answers there (test_bundled's full-step problems failed under transformers 4.56)."""
    assert config["layer_types"] == ["full_attention"] * config["num_hidden_layers"]
    assert config["global_attn_every_n_layers"] == 1


# ---- --task cot: the native LLaDA architecture, saved as an official LLaDA checkpoint ----

def test_cot_flags_take_the_cot_recipe_defaults():
    cfg = parse_args(["--out", "x", "--task", "cot"])
    assert isinstance(cfg, CotTrainConfig) and cfg.task == "cot" and not cfg.amp
    assert (cfg.layers, cfg.hidden, cfg.batch_size, cfg.steps) == (6, 256, 64, 10000)
    smoke = parse_args(["--out", "x", "--task", "cot", "--smoke"])
    assert smoke.steps == 3 and smoke.layers == 1 and isinstance(smoke, CotTrainConfig)
    assert type(parse_args(["--out", "x"])) is TrainConfig        # arith's config is unchanged
    with pytest.raises(SystemExit):
        parse_args(["--out", "x", "--task", "cot", "--amp"])     # autocast is for CUDA only


def test_cot_default_size_is_about_five_million_parameters():
    cfg = CotTrainConfig(out="")
    network = build_llada(cfg, build_llada_tokenizer())
    assert 4.5e6 < sum(p.numel() for p in network.parameters()) < 6e6


def test_every_native_weight_has_a_llada_name_that_loads_back(tmp_path):
    """The saved names are LLaDA's and the native loader maps them back onto the same tensors."""
    from safetensors.torch import save_file

    from sampler.native import load_native_network

    cfg = CotTrainConfig(out="", **{k: v for k, v in SMOKE.items() if k in ("layers", "hidden",
                                                                            "heads", "intermediate")})
    tok = build_llada_tokenizer()
    torch.manual_seed(0)
    network = build_llada(cfg, tok)
    state = llada_state_dict(network)
    assert all(name.startswith("model.transformer.") for name in state)
    assert "model.transformer.blocks.0.attn_out.weight" in state
    save_file(state, tmp_path / "model.safetensors")
    config = llada_config(cfg, tok)
    loaded = load_native_network(tmp_path, config, device=torch.device("cpu"), dtype=torch.float32)
    for name, value in network.state_dict().items():
        assert torch.equal(loaded.state_dict()[name], value), name


def test_cot_batches_hold_the_whole_generation_length():
    tok = build_llada_tokenizer()
    ids, attention, start = encode_batch(tok, ["Ann has 23 pens, Bob has 41. How many in all?"],
                                         ["23+41=64\n#### 64"], cot.GEN_LENGTH)
    assert ids.shape[1] - start == cot.GEN_LENGTH and attention.all()
    with pytest.raises(ValueError, match="does not fit"):
        encode_batch(tok, ["q"], ["1" * 200], cot.GEN_LENGTH)


def test_cot_smoke_run_writes_a_llada_checkpoint(cot_smoke_dir):
    from safetensors import safe_open

    config = json.loads((cot_smoke_dir / "config.json").read_text())
    assert config["model_type"] == "llada" and config["architectures"] == ["LLaDAModelLM"]
    assert {"d_model", "n_heads", "n_layers", "mlp_hidden_size", "embedding_size"} <= set(config)
    assert config["pad_token_id"] == config["eos_token_id"] != config["mask_token_id"]
    with safe_open(cot_smoke_dir / "model.safetensors", framework="pt") as f:
        names = set(f.keys())
    assert "model.transformer.wte.weight" in names and "model.transformer.ff_out.weight" in names
    summary = json.loads((cot_smoke_dir / "training.json").read_text())
    assert summary["config"]["task"] == "cot" and summary["steps_done"] == 3
    assert summary["final_loss"] > 0 and summary["steps_per_second"] > 0 and summary["hardware"]


def test_cot_smoke_model_loads_as_llada_and_decodes_with_every_cache(cot_smoke_dir):
    import sampler

    model = sampler.load_model(str(cot_smoke_dir), device="cpu")
    assert isinstance(model, sampler.LLaDAModel) and model.kind == "llada"
    assert model.mask_id == model.tokenizer.mask_token_id
    assert model.eos_id == model.pad_id == model.tokenizer.eos_token_id
    problems = cot.make_splits(n_train=0)["test"][:3]
    batch = model.tokenizer([p.question for p in problems], padding=True, return_tensors="pt")
    for cache in ("none", "prefix", "dual"):
        out = sampler.generate(model, batch.input_ids, attention_mask=batch.attention_mask,
                               strategy="threshold", params={"threshold": 0.9},
                               gen_length=cot.GEN_LENGTH, block_length=cot.BLOCK_LENGTH,
                               eos_fill=True, cache=cache)
        assert out.sequences.shape == (3, batch.input_ids.shape[1] + cot.GEN_LENGTH)
        assert not (out.sequences == model.mask_id).any()
        assert ((out.nfe >= 1) & (out.nfe <= cot.GEN_LENGTH)).all()


# ---- stopping and resuming a long run ----

def _smoke(out, *extra):
    # --smoke's tiny size, but four steps and a checkpoint every two (--smoke would override them)
    return ["--task", "cot", "--out", str(out), "--threads", "1", "--steps", "4",
            "--save-every", "2", "--batch-size", "8", "--layers", "1", "--hidden", "32",
            "--heads", "2", "--intermediate", "64", "--warmup", "1", "--log-every", "1", *extra]


def _weights(folder):
    from safetensors.torch import load_file

    return load_file(folder / "model.safetensors")


def test_a_run_stopped_by_sigterm_and_resumed_ends_with_the_uninterrupted_weights(
        tmp_path, monkeypatch, capsys):
    import signal

    from sampler.zoo import train as train_module

    threads = torch.get_num_threads()
    try:
        main(_smoke(tmp_path / "straight"))
        real_loss, calls = train_module.diffusion_loss, []

        def loss_then_sigterm(*args, **kwargs):
            calls.append(1)
            if len(calls) == 3:  # during step 3: it finishes, is checkpointed, and the run stops
                signal.raise_signal(signal.SIGTERM)
            return real_loss(*args, **kwargs)

        monkeypatch.setattr(train_module, "diffusion_loss", loss_then_sigterm)
        stopped = main(_smoke(tmp_path / "split")) or train_module.json.loads(
            (tmp_path / "split" / "training.json").read_text())
        assert stopped["steps_done"] == 3 and (tmp_path / "split" / "checkpoint.pt").is_file()
        assert "--resume" in capsys.readouterr().out
        monkeypatch.setattr(train_module, "diffusion_loss", real_loss)
        main(_smoke(tmp_path / "split", "--resume", "--log-every", "2"))
    finally:
        torch.set_num_threads(threads)
    assert "resumed at step 3" in capsys.readouterr().out
    summary = json.loads((tmp_path / "split" / "training.json").read_text())
    assert summary["steps_done"] == 4 and summary["resumes"] == 1
    assert not (tmp_path / "split" / "checkpoint.pt").exists()  # removed once complete
    straight, split = _weights(tmp_path / "straight"), _weights(tmp_path / "split")
    assert straight.keys() == split.keys()
    for name in straight:
        assert torch.equal(straight[name], split[name]), name
    assert json.loads((tmp_path / "straight" / "training.json").read_text())["log"]


def test_stop_after_saves_that_step_s_model_and_a_resume_ends_like_a_straight_run(
        tmp_path, capsys):
    threads = torch.get_num_threads()
    try:
        main(_smoke(tmp_path / "straight"))
        main(_smoke(tmp_path / "split", "--stop-after", "3"))  # not a --save-every step
        summary = json.loads((tmp_path / "split" / "training.json").read_text())
        assert summary["steps_done"] == 3 and summary["config"]["steps"] == 4
        assert (tmp_path / "split" / "checkpoint.pt").is_file()
        assert "stopped at step 3/4" in capsys.readouterr().out
        with pytest.raises(SystemExit) as exit_:  # a step the run has reached already
            parse_args(_smoke(tmp_path / "split", "--resume", "--stop-after", "3"))
        assert exit_.value.code == 2 and "is at step 3 already" in capsys.readouterr().err
        main(_smoke(tmp_path / "split", "--resume"))
    finally:
        torch.set_num_threads(threads)
    straight, split = _weights(tmp_path / "straight"), _weights(tmp_path / "split")
    for name in straight:
        assert torch.equal(straight[name], split[name]), name


@pytest.mark.parametrize("value", ["-1", "5"])
def test_stop_after_outside_the_run_is_one_line(tmp_path, capsys, value):
    with pytest.raises(SystemExit) as exit_:
        parse_args(_smoke(tmp_path / "x", "--stop-after", value))
    assert exit_.value.code == 2 and "--stop-after must be a step in 1..--steps (4)" in \
        capsys.readouterr().err


def test_resume_refuses_a_missing_checkpoint_or_other_settings_in_one_line(tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_:
        parse_args(_smoke(tmp_path / "none", "--resume"))
    assert exit_.value.code == 2
    assert "holds no checkpoint.pt" in capsys.readouterr().err
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "checkpoint.pt").write_bytes(b"")
    cfg = parse_args(_smoke(tmp_path / "run"))
    (tmp_path / "run" / "training.json").write_text(json.dumps({"config": {
        **train_module_fields(cfg), "lr": 0.5}}))
    with pytest.raises(SystemExit):
        parse_args(_smoke(tmp_path / "run", "--resume"))
    err = capsys.readouterr().err
    last = err.strip().splitlines()[-1]  # argparse: the usage, then one line naming the problem
    assert last.startswith("python -m sampler.zoo.train: error: --resume") and "--lr 0.5 (not" in last
    # the operational flags may change
    assert parse_args(_smoke(tmp_path / "run", "--resume", "--threads", "2", "--lr",
                             "0.5")).resume


def train_module_fields(cfg):
    from sampler.zoo.train import recipe_fields

    return recipe_fields(cfg)


# ---- the held-out probe ----

def test_the_probes_mask_computed_numbers_or_copied_ones_and_score_them():
    from sampler.zoo.train import probe_plans

    answer = "31-21=10\n49+87=136\n10+136=146\n#### 146"
    plans = probe_plans(answer)

    def shown(name):
        masked, _ = plans[name]
        return "".join("_" if i in masked else c for i, c in enumerate(answer))

    def scored(name):
        return [answer[s[0]:s[-1] + 1] for s in plans[name][1]]

    assert shown("arith") == "31-21=__\n49+87=___\n__+___=___\n#### ___"
    assert scored("arith") == ["10", "136"]  # not 146: its operands are hidden
    assert shown("copy") == "__-__=10\n__+__=136\n10+136=146\n#### 146"
    assert scored("copy") == ["31", "21", "49", "87"]  # 10 and 136 are computed, not copied
    assert probe_plans("6,8\n#### 68") == {"arith": ([], []), "copy": ([], [])}


def test_the_probe_is_logged_changes_nothing_trained_and_moves_only_with_the_weights(
        tmp_path, monkeypatch):
    from sampler.zoo import train as train_module

    monkeypatch.setattr(train_module, "PROBE_SIZE", 8)
    threads = torch.get_num_threads()
    try:
        main(_smoke(tmp_path / "plain", "--save-every", "0"))
        main(_smoke(tmp_path / "probed", "--save-every", "0", "--eval-every", "2"))
    finally:
        torch.set_num_threads(threads)
    plain, probed = _weights(tmp_path / "plain"), _weights(tmp_path / "probed")
    for name in plain:
        assert torch.equal(plain[name], probed[name]), name
    log = json.loads((tmp_path / "probed" / "training.json").read_text())["log"]
    figures = {entry["step"]: entry for entry in log if "val_loss" in entry}
    assert sorted(figures) == [2, 4]
    assert all(0 <= figures[s][k] <= 1 for s in (2, 4) for k in ("arith_acc", "copy_acc"))
    assert all(figures[s]["val_loss"] > 0 for s in (2, 4))
    assert not any("val_loss" in e for e in
                   json.loads((tmp_path / "plain" / "training.json").read_text())["log"])

    model = sampler.load_model(tmp_path / "probed", device="cpu")
    cfg = train_module.CotTrainConfig(out="")
    recipe = train_module.RECIPES["cot"]

    def logits_of(ids, attention, start):
        return recipe.logits(cfg, model.network.eval(), ids, attention, start)

    problems = recipe.held_out(cfg)[:8]
    first = train_module.probe(logits_of, model.tokenizer, problems, cfg.eps, cot.GEN_LENGTH)
    assert first == train_module.probe(logits_of, model.tokenizer, problems, cfg.eps,
                                       cot.GEN_LENGTH)
    assert first == {k: figures[4][k] for k in ("val_loss", "arith_acc", "copy_acc")}


def test_every_flag_has_help_with_its_default(capsys):
    from dataclasses import fields

    from sampler.zoo.train import HELP

    names = {f.name for f in fields(CotTrainConfig)} - {"out", "task"}
    assert names <= HELP.keys(), sorted(names - HELP.keys())
    with pytest.raises(SystemExit):
        parse_args(["--task", "cot", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "examples per step (each a fresh problem) (default: 64)" in text
