"""`tuner finetune-edit`: a smoke LoRA run writes a loadable adapter, merged model and reasoning
map; mistakes are refused in one line before anything is loaded or written."""

from __future__ import annotations

import json
import os

import pytest
import torch

import sampler
from sampler.artifacts import file_sha256
from sampler.edit_map import MAP_FILE, ReasoningMap
from tuner.edit_training import EditTrainConfig, finetune_edit
from tuner.evaluation import Evaluation
from tuner.spec import load_spec
from tuner.tasks import get_task


@pytest.fixture(scope="module")
def finetuned(cot_smoke_dir, tmp_path_factory):
    """A 3-step LoRA fine-tune of the native cot smoke model (seconds)."""
    pytest.importorskip("peft", reason="pip install 'less-tuner[edit]'")
    out = tmp_path_factory.mktemp("edit_ft") / "run"
    seen = []
    summary = finetune_edit(EditTrainConfig(task="cot", out=str(out), model=str(cot_smoke_dir),
                                            steps=3, batch_size=2, rank=2, alpha=4.0, threads=1),
                            progress=lambda done, total, loss: seen.append((done, total)))
    return out, summary, seen


def test_a_smoke_run_writes_a_loadable_adapter_model_and_map(finetuned, cot_smoke_dir):
    from peft import PeftModel

    out, summary, seen = finetuned
    assert seen == [(1, 3), (2, 3), (3, 3)]
    assert sorted(p.name for p in out.iterdir()) == ["adapter", "edit.json", "model", MAP_FILE]
    assert json.loads((out / "edit.json").read_text()) == summary
    # the map: its hash is the one recorded, its provenance names the base model and the data
    assert file_sha256(out / MAP_FILE) == summary["map_sha256"]
    reasoning_map = ReasoningMap.load(out / MAP_FILE, summary["map_sha256"])
    base = sampler.load_model(cot_smoke_dir, device="cpu")
    spec = load_spec("cot").with_overrides(model=str(cot_smoke_dir))
    assert reasoning_map.meta["base_fingerprint"] == Evaluation(spec, model=base).model_fingerprint
    assert reasoning_map.meta["data_hash"] == summary["data_hash"]
    assert reasoning_map.meta["aggregated_steps"] == 2  # optimiser steps 2..3, as the authors
    assert {name.rsplit(".", 1)[-1] for name in reasoning_map.modules} == {"q_proj", "k_proj",
                                                                          "v_proj"}
    assert all(m.update.abs().sum() > 0 and m.lora_a.shape[0] == 2
               for m in reasoning_map.modules.values())
    # the adapter loads over the base network with peft, and merges into the written model
    peft_model = PeftModel.from_pretrained(base.network, str(out / "adapter"))
    merged_net = peft_model.merge_and_unload()
    merged = sampler.load_model(out / "model", device="cpu")
    assert merged.kind == "llada"
    # the map names the merged model it belongs to (decoding with other weights warns)
    assert reasoning_map.meta["model"] == str((out / "model").resolve())
    assert reasoning_map.meta["model_signature"] == merged.weights_signature()
    for name, value in merged.network.state_dict().items():
        assert torch.allclose(value, merged_net.state_dict()[name], atol=1e-6), name
    # and the merged model decodes with the map
    task = get_task("cot")
    ids, attn = task.encode(merged.tokenizer, task.examples("test", 2))
    params = dict(summary["edit_params"], base="threshold", kl_threshold=1e3, scope="generation")
    out_edit = sampler.generate(merged, ids, attention_mask=attn, strategy="edit", params=params,
                                gen_length=64, block_length=32, trace=True)
    assert (out_edit.nfe <= 3).all()  # stops at the first step with a comparison
    assert "early_stop" in {c for row in out_edit.trace.cause_names() for c in row}


@pytest.mark.parametrize("args,message", [
    (["--task", "nope"], "unknown task 'nope'"),
    (["--task", "gsm8k"], "has no training split"),
    (["--task", "arith", "--model", "/no/such/model"], "/no/such/model"),
    (["--task", "arith", "--steps", "1"], "--steps must be >= 2"),
])
def test_mistakes_are_one_line_and_write_nothing(cli, tmp_path, args, message):
    out = tmp_path / "run"
    result = cli(["finetune-edit", *args, "-o", str(out)])
    assert result.exit_code != 0
    assert message in result.stderr and len(result.stderr.strip().splitlines()) == 1
    assert "Traceback" not in result.output
    assert not out.exists() and list(tmp_path.iterdir()) == []


def test_an_existing_output_or_a_missing_folder_is_refused(cli, tmp_path):
    busy = tmp_path / "busy"
    busy.mkdir()
    (busy / "x").write_text("keep")
    result = cli(["finetune-edit", "--task", "arith", "-o", str(busy)])
    assert result.exit_code != 0 and "not an empty folder" in result.stderr
    assert [p.name for p in busy.iterdir()] == ["x"]
    result = cli(["finetune-edit", "--task", "arith", "-o", str(tmp_path / "no" / "run")])
    assert result.exit_code != 0 and "does not exist" in result.stderr


def test_an_unwritable_output_is_refused(cli, tmp_path):
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    try:
        if os.access(locked, os.W_OK):
            pytest.skip("running as a user who can write anywhere")
        result = cli(["finetune-edit", "--task", "arith", "-o", str(locked / "run")])
        assert result.exit_code != 0 and "permission denied" in result.stderr
        assert list(locked.iterdir()) == []
    finally:
        locked.chmod(0o700)
