"""optimize -> validate -> export -> sampler.load_profile -> generate, on the bundled model."""

from __future__ import annotations

import json

import pytest
import torch
from typer.testing import CliRunner

import sampler
from tuner.cli import app

runner = CliRunner()
SMALL = ["--n-tune", "40", "--trials", "4", "--seed", "0"]


def _ok(args):
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.stdout + result.stderr
    return result.stdout


@pytest.mark.slow
def test_optimize_validate_export_and_decode(storage, tmp_path):
    out = _ok(["optimize", "--task", "arith", *SMALL, "--study", "e2e"])
    assert "Pareto front of e2e" in out
    _ok(["studies"])
    shown = _ok(["show", "e2e"])
    assert shown.count("COMPLETE") == 4
    _ok(["validate", "--study", "e2e"])
    path = tmp_path / "arith.json"
    exported = _ok(["export", "--study", "e2e", "--best", "-o", str(path)])
    assert "held-out accuracy" in exported

    profile = sampler.load_profile(path)
    assert profile.task == "arith" and profile.model.name == "tiny-arith"
    assert profile.provenance.study == "e2e" and "sqlite" in profile.provenance.storage
    assert {"accuracy", "mean_nfe", "speedup"} <= set(profile.metrics)

    model = sampler.load_model("tiny-arith", device="cpu")
    from tuner import TASKS

    examples = TASKS["arith"].examples("test", 8)
    ids, attn = TASKS["arith"].encode(model.tokenizer, examples)
    decoded = sampler.generate(model, ids, attention_mask=attn, profile=profile)
    assert (decoded.nfe < profile.decoding.gen_length).all()

    # resuming with other settings is refused, naming the difference
    result = runner.invoke(app, ["optimize", "--task", "arith", *SMALL, "--study", "e2e",
                                 "--objective", "pareto"])
    assert result.exit_code == 1 and "created with objective = 'qps', not 'pareto'" in result.stderr

    # a resumed study runs more trials and keeps the old ones
    _ok(["optimize", "--task", "arith", *SMALL[:2], "--trials", "2", "--study", "e2e"])
    assert _ok(["show", "e2e"]).count("COMPLETE") == 6


@pytest.mark.slow
def test_eval_json_keys(storage):
    out = _ok(["eval", "--task", "arith", "--strategy", "threshold", "--params",
               json.dumps({"threshold": 0.9}), "--n", "20", "--json"])
    figures = json.loads(out)
    for key in ("accuracy", "mean_nfe", "p95_nfe", "speedup", "tokens_per_forward", "wall_s", "n",
                "gen_length", "block_length", "strategy", "params"):
        assert key in figures
    assert figures["n"] == 20 and figures["strategy"] == "threshold"
    assert torch.tensor(figures["mean_nfe"]) > 0
